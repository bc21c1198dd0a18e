//! sandbox-sentry: a deterministic, host-free model of Linux job control.
pub mod errno;
pub mod ldisc;
pub mod signal;
pub mod termios;
