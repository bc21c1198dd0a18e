//! Seccomp programs and the user-notification listener (see issue 4).
