//! Open file descriptions of terminals and per-process descriptor tables.
//!
//! Several descriptors (0, 1 and 2 usually) and several processes (after fork) share
//! one open file description; a hangup marks every description open on the terminal at
//! that moment as hung up (Linux swaps in `hung_up_tty_fops`): reads return 0, writes
//! and most ioctls fail with EIO, TIOCSPGRP with ENOTTY. Descriptions opened later are
//! unaffected.

use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;
use crate::pid::Pid;
use crate::tty::TtyId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Identifies an open file description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileId(pub u64);

/// Flags of `open(2)` that matter to terminals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenFlags {
    pub read: bool,
    pub write: bool,
    /// O_NOCTTY: never acquire a controlling terminal by this open.
    pub noctty: bool,
    /// O_NONBLOCK: reads with nothing to read fail with EAGAIN.
    pub nonblock: bool,
    /// O_CLOEXEC.
    pub cloexec: bool,
}

impl OpenFlags {
    /// O_RDWR.
    pub const RDWR: OpenFlags = OpenFlags {
        read: true,
        write: true,
        noctty: false,
        nonblock: false,
        cloexec: false,
    };

    /// O_RDWR|O_NOCTTY.
    pub const RDWR_NOCTTY: OpenFlags = OpenFlags {
        noctty: true,
        ..OpenFlags::RDWR
    };

    /// O_WRONLY.
    pub const WRONLY: OpenFlags = OpenFlags {
        read: false,
        ..OpenFlags::RDWR
    };

    pub fn with_nonblock(self) -> OpenFlags {
        OpenFlags {
            nonblock: true,
            ..self
        }
    }
}

/// An open file description of a terminal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenFile {
    pub tty: TtyId,
    pub flags: OpenFlags,
    /// Opened before a hangup of its terminal.
    pub hung_up: bool,
    /// Descriptors referring to it, in every process.
    pub refs: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdEntry {
    pub file: FileId,
    pub cloexec: bool,
}

/// A process's descriptor table (only terminal descriptors are modelled).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdTable {
    pub fds: BTreeMap<i32, FdEntry>,
}

impl FdTable {
    fn lowest_free(&self) -> i32 {
        let mut fd = 0;
        for &used in self.fds.keys() {
            if used != fd {
                break;
            }
            fd += 1;
        }
        fd
    }
}

/// Most descriptors a process may hold (RLIMIT_NOFILE's usual soft limit).
pub const FD_LIMIT: usize = 1024;

impl Kernel {
    pub(crate) fn install_fd(&mut self, tgid: Pid, file: FileId, cloexec: bool) -> SysResult<i32> {
        let g = self.group_mut(tgid)?;
        if g.fds.fds.len() >= FD_LIMIT {
            return Err(Errno::EMFILE);
        }
        let fd = g.fds.lowest_free();
        g.fds.fds.insert(fd, FdEntry { file, cloexec });
        Ok(fd)
    }

    pub(crate) fn new_file(&mut self, tty: TtyId, flags: OpenFlags) -> FileId {
        let id = FileId(self.next_file);
        self.next_file += 1;
        self.files.insert(
            id,
            OpenFile {
                tty,
                flags,
                hung_up: false,
                refs: 0,
            },
        );
        id
    }

    pub(crate) fn file_ref(&mut self, file: FileId) {
        if let Some(f) = self.files.get_mut(&file) {
            f.refs += 1;
        }
    }

    pub(crate) fn file_unref(&mut self, file: FileId) {
        let gone = match self.files.get_mut(&file) {
            Some(f) => {
                f.refs = f.refs.saturating_sub(1);
                f.refs == 0
            }
            None => return,
        };
        if gone {
            self.files.remove(&file);
        }
    }

    /// The open file description behind descriptor `fd` of the caller's process.
    pub fn fd_file(&self, tid: Pid, fd: i32) -> SysResult<(FileId, &OpenFile)> {
        let tgid = self.caller_tgid(tid)?;
        let entry = self.group(tgid)?.fds.fds.get(&fd).ok_or(Errno::EBADF)?;
        let file = self.files.get(&entry.file).ok_or(Errno::EBADF)?;
        Ok((entry.file, file))
    }

    /// `close(fd)`.
    pub fn close(&mut self, tid: Pid, fd: i32) -> SysResult<()> {
        let tgid = self.caller_tgid(tid)?;
        let entry = self
            .group_mut(tgid)?
            .fds
            .fds
            .remove(&fd)
            .ok_or(Errno::EBADF)?;
        self.file_unref(entry.file);
        Ok(())
    }

    /// `dup(fd)`: lowest free descriptor, same open file description, no CLOEXEC.
    pub fn dup(&mut self, tid: Pid, fd: i32) -> SysResult<i32> {
        let (file, _) = self.fd_file(tid, fd)?;
        let tgid = self.caller_tgid(tid)?;
        let new = self.install_fd(tgid, file, false)?;
        self.file_ref(file);
        Ok(new)
    }

    /// `dup2(old, new)`.
    pub fn dup2(&mut self, tid: Pid, old: i32, new: i32) -> SysResult<i32> {
        let (file, _) = self.fd_file(tid, old)?;
        if new < 0 || new as usize >= FD_LIMIT {
            return Err(Errno::EBADF);
        }
        if old == new {
            return Ok(new);
        }
        let tgid = self.caller_tgid(tid)?;
        let replaced = self.group_mut(tgid)?.fds.fds.insert(
            new,
            FdEntry {
                file,
                cloexec: false,
            },
        );
        self.file_ref(file);
        if let Some(old_entry) = replaced {
            self.file_unref(old_entry.file);
        }
        Ok(new)
    }

    /// Descriptors of a process (for inspection).
    pub fn fds(&self, tgid: Pid) -> Vec<i32> {
        self.groups
            .get(&tgid)
            .map(|g| g.fds.fds.keys().copied().collect())
            .unwrap_or_default()
    }

    pub(crate) fn close_all_fds(&mut self, tgid: Pid) {
        let entries: Vec<FdEntry> = match self.groups.get_mut(&tgid) {
            Some(g) => std::mem::take(&mut g.fds.fds).into_values().collect(),
            None => return,
        };
        for e in entries {
            self.file_unref(e.file);
        }
    }

    pub(crate) fn close_cloexec_fds(&mut self, tgid: Pid) {
        let closing: Vec<FdEntry> = match self.groups.get_mut(&tgid) {
            Some(g) => {
                let (close, keep): (BTreeMap<i32, FdEntry>, BTreeMap<i32, FdEntry>) =
                    std::mem::take(&mut g.fds.fds)
                        .into_iter()
                        .partition(|(_, e)| e.cloexec);
                g.fds.fds = keep;
                close.into_values().collect()
            }
            None => return,
        };
        for e in closing {
            self.file_unref(e.file);
        }
    }

    /// Copies a descriptor table for fork (every description gains a reference).
    pub(crate) fn fork_fds(&mut self, from: Pid) -> FdTable {
        let table = self
            .groups
            .get(&from)
            .map(|g| g.fds.clone())
            .unwrap_or_default();
        for e in table.fds.values() {
            if let Some(f) = self.files.get_mut(&e.file) {
                f.refs += 1;
            }
        }
        table
    }
}
