//! Sessions and `setsid`/`getsid`.
//!
//! A session lives while any process (zombies included) belongs to it. Its controlling
//! terminal is recorded on both sides, as in Linux: the terminal's `session`
//! ([`crate::tty::Tty`]) and each member process's `tty` (a process that was already in
//! the session when the leader acquired the terminal does not get it; its children
//! created afterwards inherit the creator's).

use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;
use crate::pid::Pid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub sid: Pid,
    /// Thread-group IDs of every member process.
    pub members: BTreeSet<Pid>,
}

impl Kernel {
    /// `setsid()` (kernel/sys.c `ksys_setsid`): fails with EPERM when a process group
    /// with the caller's PID already exists (so a group leader, and a session leader,
    /// cannot call it). Otherwise the caller becomes leader of a new session and of a
    /// new process group, both numbered with its PID, and has no controlling terminal.
    pub fn setsid(&mut self, tid: Pid) -> SysResult<Pid> {
        let tgid = self.caller_tgid(tid)?;
        if self.pgrps.contains_key(&tgid) {
            return Err(Errno::EPERM);
        }
        let old_sid = self.group(tgid)?.sid;
        self.sessions.entry(tgid).or_insert_with(|| Session {
            sid: tgid,
            members: BTreeSet::new(),
        });
        self.move_session(tgid, old_sid, tgid);
        self.change_pgrp(tgid, tgid, tgid);
        let g = self.group_mut(tgid)?;
        g.session_leader = true;
        g.tty = None;
        g.tty_old_pgrp = None;
        Ok(tgid)
    }

    /// `getsid(pid)`: 0 means the caller; ESRCH if there is no such task.
    pub fn getsid(&self, tid: Pid, pid: Pid) -> SysResult<Pid> {
        let tgid = if pid == 0 {
            self.caller_tgid(tid)?
        } else {
            self.tasks.get(&pid).ok_or(Errno::ESRCH)?.tgid
        };
        Ok(self.group(tgid)?.sid)
    }

    fn move_session(&mut self, tgid: Pid, old: Pid, new: Pid) {
        if let Ok(g) = self.group_mut(tgid) {
            g.sid = new;
        }
        self.detach_from_session(tgid, old);
        if let Some(s) = self.sessions.get_mut(&new) {
            s.members.insert(tgid);
        }
    }

    pub(crate) fn detach_from_session(&mut self, tgid: Pid, sid: Pid) {
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.members.remove(&tgid);
            if s.members.is_empty() {
                self.sessions.remove(&sid);
            }
        }
    }

    /// `session_clear_tty`: every process of the session loses its controlling terminal.
    pub(crate) fn session_clear_tty(&mut self, sid: Pid) {
        let members: Vec<Pid> = self
            .sessions
            .get(&sid)
            .map(|s| s.members.iter().copied().collect())
            .unwrap_or_default();
        for m in members {
            if let Some(g) = self.groups.get_mut(&m) {
                g.tty = None;
            }
        }
    }

    /// Processes of a session, ascending.
    pub fn session_members(&self, sid: Pid) -> Vec<Pid> {
        self.sessions
            .get(&sid)
            .map(|s| s.members.iter().copied().collect())
            .unwrap_or_default()
    }
}
