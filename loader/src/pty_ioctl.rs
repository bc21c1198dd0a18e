//! TIOCSETD and TIOCVHANGUP on the sandbox's own ptys: performed by the supervisor.
//!
//! A program that opens `/dev/ptmx` in the sandbox gets a pty of the sandbox's own
//! devpts instance (`crate::mounts`); Linux lets it set that pty's line discipline and,
//! with CAP_SYS_ADMIN, hang it up. The same two requests on the user's terminal would
//! break or hang up the user's session, and a checked CONTINUE cannot tell the two
//! apart (another thread can `dup2` the terminal onto the checked number between the
//! check and the kernel's run of the call: seccomp_unotify(2)). So the notify filter
//! sends both to the supervisor (`seccomp::SUPERVISED_IOCTLS`), which never answers
//! CONTINUE for them:
//!
//! 1. it takes the caller's very file with `pidfd_getfd` (a pidfd of the calling
//!    *thread*, `PIDFD_THREAD`, whose descriptor table may be its own), after checking
//!    that the notification is still pending (the thread number is the caller's);
//! 2. it checks that file: a devpts file (`fstatfs`) of the sandbox's instance
//!    (`st_dev` of init's `/dev/pts`), a pty slave (major 136-143) or the instance's
//!    `ptmx` (5:2, a master). Anything else fails: ENOTTY for a file that is no
//!    character device (what the kernel says of a tty request there), EPERM for every
//!    other device — the borrowed terminal, a host terminal, `/dev/tty` and
//!    `/dev/console` (their inode says nothing of the terminal behind them);
//! 3. it makes the checks Linux makes against the caller's credentials (the supervisor
//!    runs with every capability: the kernel's own checks would be made against it);
//! 4. it performs the request on that file and answers with the result.
//!
//! Whatever a racing thread puts at the descriptor's number, only the file checked is
//! acted on: the request behaves as if it had run at the moment of the `pidfd_getfd`.
//!
//! # The rules (Linux's `tty_ioctl`, `tiocsetd`, `tty_set_ldisc`, `tty_ldisc_get`)
//!
//! - TIOCVHANGUP: `capable(CAP_SYS_ADMIN)`, i.e. CAP_SYS_ADMIN in the caller's
//!   effective set and the caller in the initial user namespace; otherwise EPERM. The
//!   supervisor reads CapEff from `/proc/TID/status` and compares the caller's user
//!   namespace with its own (and the kernel then checks the supervisor's own
//!   `capable()` when it performs the call, so a loader outside the initial user
//!   namespace gets EPERM as its callers would). A rootless sandbox is never capable.
//!   On the owned `--tty=pty` terminal the sentry plays the hangup too (the session
//!   loses its terminal; the host has sent the SIGHUP/SIGCONT itself).
//! - TIOCSETD(disc): on a slave that is the caller's controlling terminal, from a
//!   background group, the background rule first (`tty_check_change`: SIGTTOU to the
//!   caller's group and a restart, EIO for an orphaned group, nothing when SIGTTOU is
//!   ignored or blocked); then the argument (EFAULT); then `disc` outside
//!   `0..NR_LDISCS` is EINVAL. N_TTY is performed. Another discipline: if the host
//!   kernel has not registered it (`/proc/tty/ldiscs`), Linux refuses a caller without
//!   CAP_SYS_MODULE when `dev.tty.ldisc_autoload` is 0 (EPERM) and otherwise loads the
//!   module: the sandbox never loads one and answers EINVAL, as a kernel without that
//!   discipline does (LTP's pty04/pty05 then skip). A registered discipline other than
//!   the current one is refused with EPERM: each discipline's `open` checks the
//!   capabilities of the process that runs it, which would be the supervisor's, and
//!   those disciplines (SLIP, SLCAN, GSM, HDLC, ...) are kernel attack surface the
//!   sandbox does not offer. Setting the current discipline again is a no-op (0).
//!
//! TIOCGETD is not notified at all: it reads, and changes nothing.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;

use crate::procfs;
use crate::seccomp::{Notification, Response, ERESTARTSYS};
use crate::supervisor::{Binding, Supervisor};
use crate::sys::tty as systty;

/// `TIOCSETD` (low 32 bits of the request, as the filter compares it).
pub(crate) const TIOCSETD: u32 = 0x5423;
/// `TIOCVHANGUP`.
pub(crate) const TIOCVHANGUP: u32 = 0x5437;

/// The line discipline every terminal starts with.
const N_TTY: i32 = 0;
/// Line disciplines are numbered below this (`include/uapi/linux/tty.h`).
const NR_LDISCS: i32 = 31;
/// Whether a file system is a devpts.
fn is_devpts(fs: &nix::sys::statfs::Statfs) -> bool {
    fs.filesystem_type() == nix::sys::statfs::DEVPTS_SUPER_MAGIC
}
/// Majors of Unix98 pty slaves (`UNIX98_PTY_SLAVE_MAJOR` and the 7 after it).
const PTY_SLAVE_MAJORS: std::ops::RangeInclusive<u32> = 136..=143;
/// Capability numbers (`include/uapi/linux/capability.h`).
const CAP_SYS_MODULE: u32 = 16;
const CAP_SYS_ADMIN: u32 = 21;

/// Whether the notify filter sent `cmd` for the supervisor to perform.
pub(crate) fn is_supervised(cmd: u32) -> bool {
    matches!(cmd, TIOCSETD | TIOCVHANGUP)
}

/// Which end of a sandbox pty a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PtyEnd {
    /// The instance's `ptmx`: a master.
    Master,
    /// A slave, with its device number.
    Slave { rdev: u64 },
}

/// A file of the caller's, taken with `pidfd_getfd`, found to be a pty of the
/// sandbox's devpts instance.
struct SandboxPty {
    file: OwnedFd,
    end: PtyEnd,
    /// (`st_dev`, `st_ino`): how the sandbox's own terminals are recognised.
    identity: (u64, u64),
}

/// `st_dev` of the sandbox's devpts instance: init's `/dev/pts` (through
/// `/proc/INIT/root`), which must be a devpts. Read once: the program cannot mount
/// (no CAP_SYS_ADMIN, `mount` denied by its policy).
pub(crate) fn sandbox_devpts(init_host: i32) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let path = format!("/proc/{init_host}/root/dev/pts");
    let fs = nix::sys::statfs::statfs(path.as_str()).ok()?;
    if !is_devpts(&fs) {
        tracing::warn!(%path, "the sandbox's /dev/pts is no devpts");
        return None;
    }
    std::fs::metadata(&path).ok().map(|m| m.dev())
}

impl Supervisor {
    /// Answers TIOCSETD or TIOCVHANGUP (see the module documentation). Never CONTINUE.
    pub(crate) fn supervised_ioctl(&mut self, n: &Notification) -> Response {
        let host_tid = n.pid as i32;
        let cmd = n.args[1] as u32;
        let r = self
            .sandbox_pty(host_tid, n.args[0] as i32)
            .and_then(|pty| match cmd {
                TIOCVHANGUP => self.vhangup(host_tid, &pty),
                _ => self.setd(host_tid, &pty, n.args[2]),
            });
        match r {
            Ok(resp) => resp,
            Err(e) => {
                tracing::debug!(cmd, errno = %e, "supervised terminal ioctl refused");
                Response::Error(e as i32)
            }
        }
    }

    /// The caller's file at `fd`, if it is a pty of the sandbox's devpts.
    fn sandbox_pty(&mut self, host_tid: i32, fd: i32) -> Result<SandboxPty, Errno> {
        use std::os::unix::fs::MetadataExt;
        let pidfd = match crate::sys::clone::pidfd_open_thread(host_tid) {
            Ok(fd) => fd,
            // Before Linux 6.9 (no PIDFD_THREAD): the process's pidfd, whose descriptor
            // table is the caller's when the caller leads its thread group; pidfd_open
            // refuses any other thread (EINVAL), which is then refused.
            Err(Errno::EINVAL) => crate::sys::clone::pidfd_open(host_tid).map_err(|e| match e {
                Errno::ESRCH => Errno::ESRCH,
                _ => Errno::EPERM,
            })?,
            Err(Errno::ESRCH) => return Err(Errno::ESRCH),
            Err(e) => {
                tracing::warn!(%e, "pidfd_open of a sandbox thread failed");
                return Err(Errno::EPERM);
            }
        };
        // The pidfd names the thread that made the call only if the call is still
        // pending (the number may have been reused otherwise).
        if !self.caller_valid() {
            return Err(Errno::ESRCH);
        }
        let file = crate::sys::clone::pidfd_getfd(&pidfd, fd).map_err(|e| match e {
            Errno::EBADF => Errno::EBADF,
            other => {
                tracing::warn!(%other, "pidfd_getfd of a sandbox process failed");
                Errno::EPERM
            }
        })?;
        let meta = std::fs::File::from(file.try_clone().map_err(|_| Errno::EMFILE)?)
            .metadata()
            .map_err(|_| Errno::EPERM)?;
        if meta.mode() & libc::S_IFMT != libc::S_IFCHR {
            // Not a terminal at all: the kernel's answer to a tty request.
            return Err(Errno::ENOTTY);
        }
        if self.devpts.is_none() {
            self.devpts = sandbox_devpts(self.procs.init_host);
        }
        let on_devpts = nix::sys::statfs::fstatfs(file.as_fd()).is_ok_and(|fs| is_devpts(&fs));
        if !on_devpts || self.devpts != Some(meta.dev()) {
            return Err(Errno::EPERM);
        }
        let rdev = meta.rdev();
        let end = if rdev == libc::makedev(5, 2) {
            PtyEnd::Master
        } else if PTY_SLAVE_MAJORS.contains(&libc::major(rdev)) {
            PtyEnd::Slave { rdev }
        } else {
            return Err(Errno::EPERM);
        };
        let identity = (meta.dev(), meta.ino());
        // Belt and braces: never a terminal the loader borrowed.
        if self
            .terminals
            .iter()
            .any(|t| t.binding == Binding::Borrowed && t.identity == identity)
        {
            return Err(Errno::EPERM);
        }
        Ok(SandboxPty {
            file,
            end,
            identity,
        })
    }

    /// TIOCVHANGUP: `capable(CAP_SYS_ADMIN)` for the caller, then the hangup.
    fn vhangup(&mut self, host_tid: i32, pty: &SandboxPty) -> Result<Response, Errno> {
        if !self.capable_in_initial_userns(host_tid, CAP_SYS_ADMIN)? {
            return Err(Errno::EPERM);
        }
        systty::tiocvhangup(pty.file.as_fd())?;
        tracing::info!(?pty.end, "a sandbox pty hung up by its program (TIOCVHANGUP)");
        // The owned terminal: the sentry plays the hangup (the session loses it); the
        // host has sent the leader's SIGHUP and SIGCONT already. Its master stays open
        // (the pty can be opened again), so the loader keeps proxying it.
        let owned = self
            .terminals
            .iter()
            .find(|t| t.binding == Binding::OwnedPty && t.identity == pty.identity)
            .map(|t| t.id);
        if let Some(id) = owned {
            // At once, under the lock a reconcile takes too: it compares the host's
            // foreground group (none now) with the sentry's.
            let _ = self.k.tty_hangup(id);
            let dropped = self.k.take_host_signals();
            tracing::debug!(?dropped, "owned pty hung up: signals sent by the host");
            self.drain_events();
        }
        Ok(Response::Return(0))
    }

    /// TIOCSETD: the background rule, the argument, then the discipline.
    fn setd(&mut self, host_tid: i32, pty: &SandboxPty, arg: u64) -> Result<Response, Errno> {
        if let PtyEnd::Slave { rdev } = pty.end {
            if let Some(resp) = self.background_change(host_tid, rdev)? {
                return Ok(resp);
            }
        }
        let disc = crate::seccomp::read_i32(host_tid as u32, arg).map_err(|_| Errno::EFAULT)?;
        if !self.caller_valid() {
            return Err(Errno::ESRCH);
        }
        if !(0..NR_LDISCS).contains(&disc) {
            return Err(Errno::EINVAL);
        }
        if disc == N_TTY {
            systty::tiocsetd(pty.file.as_fd(), N_TTY)?;
            return Ok(Response::Return(0));
        }
        if !ldisc_registered(disc) {
            let may_load =
                ldisc_autoload() || self.capable_in_initial_userns(host_tid, CAP_SYS_MODULE)?;
            // Linux: EPERM, or a module load the sandbox never makes (EINVAL: a kernel
            // without that discipline).
            return Err(if may_load {
                Errno::EINVAL
            } else {
                Errno::EPERM
            });
        }
        if systty::tiocgetd(pty.file.as_fd())? == disc {
            return Ok(Response::Return(0));
        }
        tracing::info!(disc, "line discipline refused on a sandbox pty");
        Err(Errno::EPERM)
    }

    /// Linux's `tty_check_change` for a change of the caller's controlling terminal
    /// (`rdev`, a sandbox pty slave) from a background group: `Some(answer)` when the
    /// call must not go on.
    fn background_change(&mut self, host_tid: i32, rdev: u64) -> Result<Option<Response>, Errno> {
        let info = procfs::read(host_tid).map_err(|_| Errno::ESRCH)?;
        if !self.caller_valid() {
            return Err(Errno::ESRCH);
        }
        let own_ctty = info.tty_nr != 0 && info.tty_nr == procfs::tty_nr(rdev);
        if !own_ctty || info.host_tpgid <= 0 || info.host_tpgid == info.host_pgid {
            return Ok(None);
        }
        let bit = 1u64 << (libc::SIGTTOU - 1);
        if (info.sig_blocked | info.sig_ignored) & bit != 0 {
            return Ok(None);
        }
        self.reconcile();
        let orphaned = self
            .procs
            .ns_pid(info.host_pgid)
            .is_some_and(|pg| self.k.is_orphaned_pgrp(pg));
        if orphaned {
            return Err(Errno::EIO);
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(-info.host_pgid),
            nix::sys::signal::Signal::SIGTTOU,
        );
        self.stats.stopped_callers += 1;
        Ok(Some(Response::Error(ERESTARTSYS)))
    }

    /// Linux's `capable(cap)` for the calling thread: `cap` in its effective set
    /// (`CapEff` of `/proc/TID/status`) and the thread in the initial user namespace —
    /// the loader's own, when the loader is in it (an identity `uid_map`).
    fn capable_in_initial_userns(&self, host_tid: i32, cap: u32) -> Result<bool, Errno> {
        let status = std::fs::read_to_string(format!("/proc/{host_tid}/status"))
            .map_err(|_| Errno::ESRCH)?;
        let ns_same = same_user_namespace(host_tid);
        if !self.caller_valid() {
            return Err(Errno::ESRCH);
        }
        let eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0);
        Ok(eff & (1u64 << cap) != 0 && ns_same && loader_in_initial_userns())
    }
}

/// Whether the thread's user namespace is the loader's.
fn same_user_namespace(host_tid: i32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    match (
        id(&format!("/proc/{host_tid}/ns/user")),
        id("/proc/self/ns/user"),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Whether the loader runs in the initial user namespace: its `uid_map` is the
/// identity over every uid.
fn loader_in_initial_userns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
        let fields: Vec<&str> = m.split_whitespace().collect();
        fields == ["0", "0", "4294967295"]
    })
}

/// Whether the host kernel has line discipline `disc` registered (`/proc/tty/ldiscs`:
/// one "name number" line each).
fn ldisc_registered(disc: i32) -> bool {
    std::fs::read_to_string("/proc/tty/ldiscs").is_ok_and(|s| {
        s.lines().any(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<i32>().ok())
                == Some(disc)
        })
    })
}

/// `dev.tty.ldisc_autoload`: whether a caller without CAP_SYS_MODULE may make the
/// kernel load a discipline's module (absent: the kernel's default, on).
fn ldisc_autoload() -> bool {
    std::fs::read_to_string("/proc/sys/dev/tty/ldisc_autoload").map_or(true, |s| s.trim() != "0")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_the_two_requests_are_supervised() {
        assert!(is_supervised(TIOCSETD));
        assert!(is_supervised(TIOCVHANGUP));
        assert!(!is_supervised(libc::TIOCGETD as u32));
        assert!(!is_supervised(libc::TIOCSTI as u32));
        assert_eq!(TIOCSETD, libc::TIOCSETD as u32);
        assert_eq!(TIOCVHANGUP, libc::TIOCVHANGUP as u32);
    }

    /// N_TTY is always there; a number no kernel assigns is not.
    #[test]
    fn registered_disciplines_come_from_proc() {
        assert!(ldisc_registered(N_TTY));
        assert!(!ldisc_registered(NR_LDISCS + 5));
    }
}
