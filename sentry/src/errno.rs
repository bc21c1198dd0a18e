//! Linux error numbers, as the sentry answers them.
//!
//! The values are Linux's (x86_64 and every asm-generic architecture agree on these).
//! `ERESTARTSYS` and `ERESTARTNOINTR` are kernel-internal codes that never reach user
//! space on Linux; the sentry returns them because its callers (the loader answering a
//! seccomp notification, or a simulation driver) must know that the call is to be
//! restarted once the signal that was just generated has been handled.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A Linux errno value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $val:expr, $msg:expr;)*) => {
        impl Errno {
            $(#[doc = $msg] pub const $name: Errno = Errno($val);)*

            /// The symbolic name (`"EPERM"`), or `None` for a number this table lacks.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// Parses a symbolic name such as `"EPERM"`.
            pub fn from_name(name: &str) -> Option<Errno> {
                match name {
                    $(stringify!($name) => Some(Errno::$name),)*
                    _ => None,
                }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted";
    ENOENT = 2, "No such file or directory";
    ESRCH = 3, "No such process";
    EINTR = 4, "Interrupted system call";
    EIO = 5, "Input/output error";
    ENXIO = 6, "No such device or address";
    EBADF = 9, "Bad file descriptor";
    ECHILD = 10, "No child processes";
    EAGAIN = 11, "Resource temporarily unavailable";
    EACCES = 13, "Permission denied";
    EFAULT = 14, "Bad address";
    EBUSY = 16, "Device or resource busy";
    EEXIST = 17, "File exists";
    EINVAL = 22, "Invalid argument";
    EMFILE = 24, "Too many open files";
    ENOTTY = 25, "Inappropriate ioctl for device";
    ENOSYS = 38, "Function not implemented";
    ERESTARTSYS = 512, "Kernel-internal: restart the call after the signal is handled (EINTR for a handler without SA_RESTART)";
    ERESTARTNOINTR = 513, "Kernel-internal: always restart the call";
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for Errno {}

/// The result of a system call in the model.
pub type SysResult<T> = Result<T, Errno>;
