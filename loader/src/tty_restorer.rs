//! The terminal restorer: puts the user's terminal back even when the loader is killed
//! with SIGKILL.
//!
//! The loader restores the terminal it borrowed or proxied on every exit it lives
//! through (`crate::sandbox`). SIGKILL (the OOM killer, `kill -9`) leaves it no chance:
//! the terminal would keep whatever modes the program left (no echo, locked termios,
//! output stopped) or the proxy's raw mode. `Restorer::start` creates, before the
//! sandbox exists, a small process that holds a descriptor of the terminal and the
//! state saved at start-up (`SavedTerminal`) and blocks reading a pipe whose only
//! write end the loader holds:
//!
//! - the loader dies, however: the kernel closes its descriptors, the read returns end
//!   of file, and the restorer restores the terminal and exits;
//! - the loader ends cleanly: it restores the terminal itself, then writes one byte
//!   ([`Restorer::dismiss`]); the restorer exits without acting.
//!
//! # The Linux rules it rests on
//!
//! - A pipe's read returns end of file once every write end is closed, and a dying
//!   process's descriptors are closed before its parent is told of its death. No
//!   other process keeps the write end: it is close-on-exec, the sandbox's init closes
//!   every descriptor it inherited but two (it never execs), and so does the
//!   terminal-signal listener.
//! - A shell's `kill -9 %1` sends SIGKILL to the job's process group: the restorer takes
//!   a process group of its own (setpgid), so it survives that. It stays in the user's
//!   session, in the background of the terminal.
//! - Blocked signals are not delivered: the restorer blocks everything (SIGKILL and
//!   SIGSTOP cannot be blocked), so a hangup or a signal sent to its group does not end
//!   it. With SIGTTOU blocked a termios change from a background group is allowed
//!   (tty_check_change).
//! - TIOCSLCKTRMIOS needs CAP_SYS_ADMIN: a root loader's restorer has it; a rootless
//!   loader's has not, and neither has its program, which then cannot have changed it.
//!
//! # The process
//!
//! Created by [`crate::spawn::spawn`] like the terminal-signal listener (clone3 with
//! CLONE_CLEAR_SIGHAND, else clone, else fork), it runs bare system calls only
//! (everything is prepared before the clone): it blocks every signal, takes a process
//! group of its own, closes every
//! descriptor but the terminal and the pipe's read end, installs its own seccomp
//! allow-list ([`RESTORER_SYSCALLS`] and the restoring ioctls; anything else fails with
//! EPERM, a foreign architecture kills) and reads.
//!
//! Limit: after a SIGKILL the user's shell, told of the loader's death, may set its own
//! terminal modes (bash's readline) just before the restorer puts back the modes the
//! terminal had when `sandbox` started; the next prompt sets them again.

use crate::seccomp::{Filter, SeccompError};
use crate::spawn::{SpawnError, SpawnMethod};
use crate::sys::listener as sys;
use crate::sys::tty::SavedTerminal;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// System calls the restorer may make after installing its filter (plus the ioctls of
/// [`RESTORER_IOCTLS`]).
pub const RESTORER_SYSCALLS: &[(&str, libc::c_long, &str)] = &[
    (
        "read",
        libc::SYS_read,
        "wait for the loader's byte or end of file",
    ),
    ("exit_group", libc::SYS_exit_group, "exit"),
    ("exit", libc::SYS_exit, "exit"),
    (
        "restart_syscall",
        libc::SYS_restart_syscall,
        "a read resumed after a stop (SIGSTOP/SIGCONT)",
    ),
];

/// Ioctl requests the restorer may make: those of `SavedTerminal::restore`.
pub const RESTORER_IOCTLS: &[u32] = &[
    crate::seccomp::ioctls::TIOCGLCKTRMIOS,
    crate::seccomp::ioctls::TIOCSLCKTRMIOS,
    crate::seccomp::ioctls::TCSETS,
    crate::seccomp::ioctls::TIOCSWINSZ,
    crate::seccomp::ioctls::TIOCEXCL,
    crate::seccomp::ioctls::TIOCNXCL,
    crate::seccomp::ioctls::TCXONC,
];

/// The byte that tells the restorer the loader has restored the terminal itself.
const DISMISS: u8 = b'x';

/// Errors of starting the restorer.
#[derive(Debug, thiserror::Error)]
pub enum RestorerError {
    #[error("cannot create the restorer's pipe: {0}")]
    Pipe(Errno),
    #[error(transparent)]
    Filter(#[from] SeccompError),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

/// A running restorer (see the [module documentation](self)).
#[derive(Debug)]
pub struct Restorer {
    /// The pipe's write end: closing it without [`Restorer::dismiss`] makes the
    /// restorer act.
    writer: Option<OwnedFd>,
    pid: i32,
}

/// What the child needs, prepared before the clone.
struct Plan<'a> {
    tty: BorrowedFd<'a>,
    reader: BorrowedFd<'a>,
    saved: SavedTerminal,
    filter: Filter,
}

impl Restorer {
    /// Starts a restorer for `tty` with the state `saved`. Call it while no other
    /// thread of the process can hold a lock the child needs (it runs no Rust code but
    /// bare system calls, but the clone itself takes no lock either way).
    pub(crate) fn start(
        tty: BorrowedFd<'_>,
        saved: SavedTerminal,
    ) -> Result<Restorer, RestorerError> {
        let filter = restorer_filter()?;
        let (reader, writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(RestorerError::Pipe)?;
        let plan = Plan {
            tty,
            reader: reader.as_fd(),
            saved,
            filter,
        };
        let spawned = crate::spawn::spawn(0, SpawnMethod::Clone3, &mut || restorer_main(&plan))?;
        drop(plan);
        drop(reader);
        // Its pidfd is not kept: the restorer outlives the loader on purpose, and the
        // loader never waits for it (it exits at once when dismissed; whoever reaps
        // the loader's orphans reaps it).
        tracing::debug!(pid = spawned.pid, "terminal restorer started");
        Ok(Restorer {
            writer: Some(writer),
            pid: spawned.pid,
        })
    }

    /// The restorer's process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The loader has restored the terminal: the restorer exits without acting.
    pub fn dismiss(&mut self) {
        if let Some(w) = self.writer.take() {
            let _ = sys::write_all(w.as_fd(), &[DISMISS]);
        }
    }
}

/// The architecture seccompiler checks.
#[cfg(target_arch = "x86_64")]
const TARGET: seccompiler::TargetArch = seccompiler::TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const TARGET: seccompiler::TargetArch = seccompiler::TargetArch::aarch64;

/// The restorer's filter: [`RESTORER_SYSCALLS`] and ioctls whose request (low 32 bits,
/// as the kernel reads it) is in [`RESTORER_IOCTLS`] are allowed; anything else fails
/// with EPERM; a foreign architecture kills.
fn restorer_filter() -> Result<Filter, SeccompError> {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule,
    };
    let mut rules = std::collections::BTreeMap::new();
    for &(_, nr, _) in RESTORER_SYSCALLS {
        rules.insert(nr, Vec::new());
    }
    let mut ioctl = Vec::new();
    for &cmd in RESTORER_IOCTLS {
        let c = SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, cmd.into())?;
        ioctl.push(SeccompRule::new(vec![c])?);
    }
    rules.insert(libc::SYS_ioctl, ioctl);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        TARGET,
    )?;
    Ok(Filter::from(BpfProgram::try_from(filter)?))
}

/// Exit codes of the restorer (for debugging; nobody waits for them).
const EXIT_DISMISSED: i32 = 0;
const EXIT_RESTORED: i32 = 1;
const EXIT_SETUP: i32 = 2;

/// The restorer's code (async-signal-safe: bare system calls only).
fn restorer_main(plan: &Plan<'_>) -> i32 {
    if sys::block_all_signals().is_err()
        || crate::sys::tty::new_process_group().is_err()
        || sys::close_all_except(plan.tty, plan.reader).is_err()
        || crate::seccomp::install(&plan.filter).is_err()
    {
        // Without its confinement it does nothing rather than run unconfined; the
        // loader still restores on every exit it lives through.
        return EXIT_SETUP;
    }
    loop {
        match crate::sys::tty::read_byte(plan.reader) {
            Ok(Some(DISMISS)) => return EXIT_DISMISSED,
            Ok(Some(_)) => {}
            Err(Errno::EINTR) => {}
            // End of file (the loader is gone) or a broken pipe: restore.
            Ok(None) | Err(_) => {
                let _ = plan.saved.restore(plan.tty);
                return EXIT_RESTORED;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::seccomp::{Action, AUDIT_ARCH_NATIVE};

    fn act(f: &Filter, nr: libc::c_long, args: [u64; 6]) -> Option<Action> {
        f.action_for(AUDIT_ARCH_NATIVE, nr as i32, args)
    }

    #[test]
    fn filter_allows_only_reading_and_restoring() {
        let f = restorer_filter().unwrap();
        let z = [0u64; 6];
        let eperm = Some(Action::Errno(libc::EPERM as u16));
        for &(name, nr, _) in RESTORER_SYSCALLS {
            assert_eq!(act(&f, nr, z), Some(Action::Allow), "{name}");
        }
        for &cmd in RESTORER_IOCTLS {
            let args = [0, u64::from(cmd), 0, 0, 0, 0];
            assert_eq!(
                act(&f, libc::SYS_ioctl, args),
                Some(Action::Allow),
                "{cmd:#x}"
            );
        }
        let sti = [0, u64::from(crate::seccomp::ioctls::TIOCSTI), 0, 0, 0, 0];
        assert_eq!(act(&f, libc::SYS_ioctl, sti), eperm);
        for nr in [
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_kill,
        ] {
            assert_eq!(act(&f, nr, z), eperm, "{nr}");
        }
    }
}
