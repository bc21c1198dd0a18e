//! sandbox-loader: runs real programs in a sandbox whose job control is decided by the
//! sentry (`sandbox-sentry`). See `docs/LOADER.md` for the architecture.
//!
//! Layout (one concept per module):
//! - [`sandbox`]: the spec, start-up and the supervision loop ([`run`]).
//! - [`spawn`]: creating init in new namespaces (clone3, clone, fork fallbacks).
//! - `init`: the sandbox's PID 1 and the program's last steps before exec.
//! - `supervisor`: the sentry's answers to notified system calls, host signals.
//! - `tracker`: keeping the sentry in lockstep with the host's processes.
//! - [`seccomp`]: the sandbox's seccomp programs (deny list, notify filter, the
//!   loader's own allow-list) and the user-notification listener.
//! - [`mounts`]: the sandbox's filesystem view (read-only host root, /tmp, /proc, /dev).
//! - [`userns`]: the uid/gid maps of the sandbox's user namespace (non-root loader).
//! - [`procfs`]: what `/proc` says about a process.
//! - [`tty_listener`]: a process that receives a terminal's signals for the loader when
//!   the loader is not in that terminal's foreground group.
//! - `sys`: every raw system call wrapper (`unsafe` lives only there).
pub use sandbox_sentry as sentry;

pub(crate) mod control;
pub(crate) mod init;
pub mod mounts;
pub mod procfs;
pub mod sandbox;
pub mod seccomp;
pub mod spawn;
pub(crate) mod supervisor;
pub(crate) mod sys;
pub(crate) mod tracker;
pub mod tty_listener;
pub mod userns;

pub use sandbox::{run, LoaderError, OwnedPty, RunOutcome, SandboxSpec, SignalMode};
pub use spawn::SpawnMethod;
pub use supervisor::NotifyStats;
