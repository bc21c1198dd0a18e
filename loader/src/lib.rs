//! sandbox-loader: runs real programs in a sandbox whose job control is decided by the
//! sentry (`sandbox-sentry`).
//!
//! Layout (one concept per module):
//! - [`seccomp`]: the sandbox's seccomp programs (deny list, notify filter, the
//!   loader's own allow-list) and the user-notification listener.
//! - [`mounts`]: the sandbox's filesystem view (read-only host root, /tmp, /proc, /dev).
//! - [`userns`]: the uid/gid maps of the sandbox's user namespace (non-root loader).
//! - `sys`: every raw system call wrapper (`unsafe` lives only there).
pub use sandbox_sentry as sentry;

pub mod mounts;
pub mod procfs;
pub mod seccomp;
pub mod spawn;
pub(crate) mod sys;
pub mod userns;
