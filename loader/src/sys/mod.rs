//! Raw system call wrappers. Every `unsafe` block of the crate lives in this module
//! tree, each with a `// SAFETY:` comment.

pub(crate) mod clone;
pub(crate) mod entry;
pub(crate) mod fd;
pub(crate) mod listener;
pub(crate) mod memory;
pub(crate) mod mount;
pub(crate) mod process;
pub(crate) mod sched;
pub(crate) mod seccomp;
pub(crate) mod signal;
pub(crate) mod tty;
