//! Memory of another process (typically the target of a seccomp notification), read and
//! written with `process_vm_readv(2)` / `process_vm_writev(2)`.
//!
//! Linux rules: access needs ptrace-attach permission over the target
//! (`PTRACE_MODE_ATTACH_REALCREDS`), otherwise EPERM; a target that no longer exists is
//! ESRCH; an unmapped remote range is EFAULT. A transfer may stop short where a remote
//! page is missing; these helpers resume after a short transfer and report the fault
//! if the rest is unmapped.
//!
//! A pid can be reused once its process is gone. After reading the memory of a notified
//! process, check `Listener::id_valid` before acting on what was read: while the
//! notification is pending the target cannot have exited, so the pid still names it.

use std::io;

/// Why reading or writing another process's memory failed.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The process does not exist (any more): ESRCH.
    #[error("process {pid} does not exist")]
    ProcessGone {
        /// The process.
        pid: u32,
    },
    /// Part of the remote range is not mapped (or not accessible that way): EFAULT.
    #[error("{len} bytes at {addr:#x} are not accessible in process {pid}")]
    BadAddress {
        /// The process.
        pid: u32,
        /// Start of the range that could not be transferred.
        addr: u64,
        /// Its length.
        len: usize,
    },
    /// The caller may not ptrace-attach to the process: EPERM.
    #[error("not permitted to access the memory of process {pid}")]
    PermissionDenied {
        /// The process.
        pid: u32,
    },
    /// The kernel transferred nothing and reported no error.
    #[error("transfer stopped after {done} of {wanted} bytes at {addr:#x} in process {pid}")]
    Short {
        /// The process.
        pid: u32,
        /// Start of the requested range.
        addr: u64,
        /// Bytes transferred.
        done: usize,
        /// Bytes requested.
        wanted: usize,
    },
    /// The pid does not fit a `pid_t`, or the range wraps around the address space.
    #[error("invalid pid {pid} or address range {addr:#x}+{len}")]
    Invalid {
        /// The process.
        pid: u32,
        /// Start of the range.
        addr: u64,
        /// Its length.
        len: usize,
    },
    /// Any other failure of the system call.
    #[error("process_vm_{op} on process {pid}: {source}")]
    Io {
        /// `readv` or `writev`.
        op: &'static str,
        /// The process.
        pid: u32,
        /// The error.
        #[source]
        source: io::Error,
    },
}

#[derive(Clone, Copy)]
enum Direction {
    Read,
    Write,
}

/// One `process_vm_readv`/`process_vm_writev` call for a single local and remote range.
fn transfer_once(
    dir: Direction,
    pid: libc::pid_t,
    local: *mut u8,
    len: usize,
    remote: u64,
) -> io::Result<usize> {
    let local_iov = libc::iovec {
        iov_base: local.cast(),
        iov_len: len,
    };
    let remote_iov = libc::iovec {
        iov_base: remote as usize as *mut libc::c_void,
        iov_len: len,
    };
    let rc = match dir {
        // SAFETY: `local` points at `len` writable bytes owned by the caller for the
        // duration of the call; the remote range is only accessed by the kernel, which
        // checks it against the target's address space.
        Direction::Read => unsafe { libc::process_vm_readv(pid, &local_iov, 1, &remote_iov, 1, 0) },
        // SAFETY: `local` points at `len` readable bytes (the kernel only reads them for
        // a write); the remote range is checked by the kernel.
        Direction::Write => unsafe {
            libc::process_vm_writev(pid, &local_iov, 1, &remote_iov, 1, 0)
        },
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as usize)
}

fn transfer(
    dir: Direction,
    pid: u32,
    addr: u64,
    local: *mut u8,
    len: usize,
) -> Result<(), MemoryError> {
    let raw_pid = libc::pid_t::try_from(pid).unwrap_or(0);
    if raw_pid <= 0 || addr.checked_add(len as u64).is_none() {
        return Err(MemoryError::Invalid { pid, addr, len });
    }
    let op = match dir {
        Direction::Read => "readv",
        Direction::Write => "writev",
    };
    let mut done = 0usize;
    while done < len {
        let at = addr + done as u64;
        // `done < len` keeps the pointer inside the caller's buffer.
        let ptr = local.wrapping_add(done);
        match transfer_once(dir, raw_pid, ptr, len - done, at) {
            Ok(0) => {
                return Err(MemoryError::Short {
                    pid,
                    addr,
                    done,
                    wanted: len,
                })
            }
            Ok(n) => done += n,
            Err(e) => {
                return Err(match e.raw_os_error() {
                    Some(libc::ESRCH) => MemoryError::ProcessGone { pid },
                    Some(libc::EFAULT) => MemoryError::BadAddress {
                        pid,
                        addr: at,
                        len: len - done,
                    },
                    Some(libc::EPERM) => MemoryError::PermissionDenied { pid },
                    _ => MemoryError::Io { op, pid, source: e },
                })
            }
        }
    }
    Ok(())
}

/// Reads `buf.len()` bytes at `addr` in process `pid` (a pid as seen from the caller's
/// PID namespace, like [`Notification::pid`](crate::seccomp::Notification)).
pub fn read_bytes(pid: u32, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
    transfer(Direction::Read, pid, addr, buf.as_mut_ptr(), buf.len())
}

/// Writes `data` at `addr` in process `pid`. Writes go through the target's page tables
/// like ptrace pokes: they succeed on any writable mapping of the target.
pub fn write_bytes(pid: u32, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
    // The kernel only reads from the local buffer of a process_vm_writev.
    transfer(
        Direction::Write,
        pid,
        addr,
        data.as_ptr().cast_mut(),
        data.len(),
    )
}

/// Reads a native-endian `int` at `addr` in process `pid` (e.g. the `pid_t` argument of
/// TIOCSPGRP).
pub fn read_i32(pid: u32, addr: u64) -> Result<i32, MemoryError> {
    let mut bytes = [0u8; 4];
    read_bytes(pid, addr, &mut bytes)?;
    Ok(i32::from_ne_bytes(bytes))
}

/// Writes a native-endian `int` at `addr` in process `pid` (e.g. the result of
/// TIOCGPGRP or TIOCGSID).
pub fn write_i32(pid: u32, addr: u64, value: i32) -> Result<(), MemoryError> {
    write_bytes(pid, addr, &value.to_ne_bytes())
}
