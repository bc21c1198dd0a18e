//! The errors of building, installing and serving seccomp programs (its own file: the
//! build script compiles the fixed programs with this module's compiler, see
//! `loader/build.rs`).

use std::io;

use super::bpf::Action;

/// Errors of building, installing and serving seccomp programs.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A rule names a negative, x32 or otherwise impossible syscall number.
    #[error("{0} is not a valid syscall number for a seccomp rule")]
    InvalidSyscall(i64),
    /// A syscall name the tables do not classify (or this architecture lacks).
    #[error("{0:?} is not a system call the sandbox's seccomp tables know")]
    UnknownSyscall(String),
    /// A rule tests an argument index above 5.
    #[error("rule for syscall {nr} tests argument {arg}; syscalls have arguments 0..=5")]
    InvalidArgument {
        /// Syscall number.
        nr: i64,
        /// Argument index.
        arg: u8,
    },
    /// The rules of one syscall compile to more than a BPF jump can skip (255).
    #[error("the rules of syscall {nr} need {len} instructions or values; at most 255 fit")]
    GroupTooLarge {
        /// Syscall number.
        nr: i64,
        /// Instructions or values.
        len: usize,
    },
    /// seccompiler refused the rules or the program.
    #[error("compiling with seccompiler: {0}")]
    Compile(#[from] seccompiler::BackendError),
    /// A rule seccompiler has no way to express (its USER_NOTIF action, a masked not-in
    /// test).
    #[error("seccompiler cannot express {what}{}", nr.map(|n| format!(" (syscall {n})")).unwrap_or_default())]
    Inexpressible {
        /// Syscall number, if the rule has one.
        nr: Option<i64>,
        /// What it cannot express.
        what: &'static str,
    },
    /// A rule compiled into the guard whose action would lose to what seccompiler's
    /// program, stacked with it, returns for the same syscall (see
    /// [`deny_filter`](super::deny_filter)).
    #[error("the {action:?} rule for syscall {nr} would be overridden by seccompiler's program")]
    Overridden {
        /// Syscall number.
        nr: i64,
        /// The rule's action.
        action: Action,
    },
    /// The program is longer than the kernel accepts.
    #[error("the program has {0} instructions; the kernel accepts at most 4096")]
    FilterTooLarge(usize),
    /// capget failed.
    #[error("reading the capabilities: {0}")]
    Capabilities(#[source] io::Error),
    /// Reading or setting `no_new_privs` failed.
    #[error("setting no_new_privs: {0}")]
    NoNewPrivs(#[source] io::Error),
    /// seccomp(SECCOMP_SET_MODE_FILTER) failed (EBUSY with a listener: the chain already
    /// has one; EINVAL: a flag this kernel lacks).
    #[error("installing the seccomp filter: {0}")]
    Install(#[source] io::Error),
    /// TSYNC: a thread of the process could not take the filter (it has diverged with
    /// filters of its own).
    #[error("thread {tid} could not be synchronised to the seccomp filter")]
    ThreadSync {
        /// The thread.
        tid: i64,
    },
    /// SECCOMP_GET_NOTIF_SIZES failed.
    #[error("querying the kernel's notification sizes: {0}")]
    NotifSizes(#[source] io::Error),
    /// SECCOMP_IOCTL_NOTIF_RECV failed.
    #[error("receiving a seccomp notification: {0}")]
    Recv(#[source] io::Error),
    /// RECV found the pending notification withdrawn (ENOENT): its task was interrupted
    /// by a signal or died before the notification was read.
    #[error("the seccomp notification was withdrawn before it was read")]
    NotificationWithdrawn,
    /// SEND found notification `id` no longer pending (ENOENT): its task was interrupted
    /// by a signal (and restarts or fails the syscall) or died.
    #[error("seccomp notification {id} is no longer pending")]
    TargetGone {
        /// The notification.
        id: u64,
    },
    /// SECCOMP_IOCTL_NOTIF_SEND failed otherwise.
    #[error("answering seccomp notification {id}: {source}")]
    Respond {
        /// The notification.
        id: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A [`Response::Error`](super::Response::Error) outside 1..=4095.
    #[error("errno {0} is not in 1..=4095")]
    InvalidErrno(i32),
    /// SECCOMP_IOCTL_NOTIF_SET_FLAGS failed.
    #[error("setting seccomp listener flags: {0}")]
    SetFlags(#[source] io::Error),
    /// Passing the listener fd over a socket failed.
    #[error("passing the seccomp listener fd: {0}")]
    PassFd(#[source] io::Error),
}

impl SeccompError {
    /// The errno behind the error, if a system call failed; lets a `pre_exec` closure
    /// report it without allocating (`io::Error::from_raw_os_error`).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            SeccompError::Capabilities(e)
            | SeccompError::NoNewPrivs(e)
            | SeccompError::Install(e)
            | SeccompError::NotifSizes(e)
            | SeccompError::Recv(e)
            | SeccompError::SetFlags(e)
            | SeccompError::PassFd(e)
            | SeccompError::Respond { source: e, .. } => e.raw_os_error(),
            SeccompError::NotificationWithdrawn | SeccompError::TargetGone { .. } => {
                Some(libc::ENOENT)
            }
            _ => None,
        }
    }
}
