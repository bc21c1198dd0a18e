//! The fixed seccomp programs, compiled once at build time (`loader/build.rs`, from
//! this module's siblings: the same tables and compiler) and only copied here; the
//! others (`--seccomp-allow` names, a loader allow-list with other extras) and every
//! program of a cross build are compiled when asked for, as the siblings do.

use super::bpf::{Filter, Instruction};
use super::tables::{NotifyOptions, LOADER_EXTRA_SYSCALLS};
use super::{program, tables, SeccompError};

mod generated {
    use super::Instruction;
    include!(concat!(env!("OUT_DIR"), "/precompiled_seccomp.rs"));
}

/// An owned copy of built programs; `None` where the build made none.
fn copy(programs: Option<&[&[Instruction]]>) -> Option<Filter> {
    Filter::from_programs(programs?.iter().map(|p| p.to_vec()).collect())
}

/// The program's seccomp policy: [`ALLOW_SYSCALLS`](super::ALLOW_SYSCALLS) run,
/// [`DENY_SYSCALLS`](super::DENY_SYSCALLS) and [`DENY_IOCTLS`](super::DENY_IOCTLS) fail
/// with EPERM (clone3 with ENOSYS), every other number with ENOSYS; foreign architectures
/// are killed, x32 numbers get ENOSYS. The syscalls named in `allow` (as in the tables,
/// e.g. `"bpf"`) are allowed whatever their arguments, their denial lifted (ioctl requests
/// of [`DENY_IOCTLS`](super::DENY_IOCTLS) stay refused). One program (see the module
/// documentation).
///
/// Without `allow` names, the build script's compilation is copied.
pub fn program_filter<S: AsRef<str>>(allow: &[S]) -> Result<Filter, SeccompError> {
    let built = if allow.is_empty() {
        generated::PROGRAM
    } else {
        None
    };
    copy(built).map_or_else(|| program::program_filter(allow), Ok)
}

/// The notify program: [`NOTIFY_SYSCALLS`](super::NOTIFY_SYSCALLS), ioctls whose request is
/// in [`NOTIFY_IOCTLS`](super::NOTIFY_IOCTLS) or
/// [`SUPERVISED_IOCTLS`](super::SUPERVISED_IOCTLS), and with `tty_io` the
/// [`TTY_IO_SYSCALLS`](super::TTY_IO_SYSCALLS), return SECCOMP_RET_USER_NOTIF; everything
/// else is allowed.
///
/// The build script's compilation is copied.
pub fn notify_filter(options: &NotifyOptions) -> Result<Filter, SeccompError> {
    let built = match options {
        NotifyOptions { tty_io: false } => generated::NOTIFY,
        NotifyOptions { tty_io: true } => generated::NOTIFY_TTY_IO,
    };
    copy(built).map_or_else(|| tables::notify_filter(options), Ok)
}

/// init's filter ([`INIT_SYSCALLS`](super::INIT_SYSCALLS); everything else EPERM, foreign
/// architectures killed). EPERM rather than a kill: init checks every result, and a syscall
/// missing from the table then shows as an error report instead of the whole sandbox dying
/// with SIGSYS.
///
/// The build script's compilation is copied.
pub fn init_filter() -> Result<Filter, SeccompError> {
    copy(generated::INIT).map_or_else(program::init_filter, Ok)
}

/// The holder's filter ([`HOLDER_SYSCALLS`](super::HOLDER_SYSCALLS); everything else EPERM,
/// foreign architectures killed), for the same reason as
/// [`init_filter`](super::init_filter).
///
/// The build script's compilation is copied.
pub fn holder_filter() -> Result<Filter, SeccompError> {
    copy(generated::HOLDER).map_or_else(program::holder_filter, Ok)
}

/// The loader's own lock-down program: [`LOADER_SYSCALLS`](super::LOADER_SYSCALLS) (as
/// conditioned there) plus `extra` (allowed whatever their arguments) are allowed,
/// everything else fails with EPERM, so a missing entry shows up as an error rather than a
/// kill (clone3: ENOSYS; x32 numbers: ENOSYS; foreign architectures are killed). One
/// program of our compiler (a binary search over the numbers). Install it on every thread
/// with [`install_all_threads`](super::install_all_threads)(super::install_all_threads).
///
/// With `extra` = [`LOADER_EXTRA_SYSCALLS`] (the loader's own), the build script's
/// compilation is copied.
pub fn allow_filter(extra: &[libc::c_long]) -> Result<Filter, SeccompError> {
    let built = if extra == LOADER_EXTRA_SYSCALLS {
        generated::LOADER
    } else {
        None
    };
    copy(built).map_or_else(|| tables::allow_filter(extra), Ok)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The build script's programs are exactly what the compiler makes now, and on the
    /// build's own architecture there are all of them.
    #[test]
    fn built_programs_are_the_compilers() {
        let built = [
            generated::PROGRAM,
            generated::NOTIFY,
            generated::NOTIFY_TTY_IO,
            generated::INIT,
            generated::HOLDER,
            generated::LOADER,
        ];
        let compiled = [
            program::program_filter::<&str>(&[]).unwrap(),
            tables::notify_filter(&NotifyOptions { tty_io: false }).unwrap(),
            tables::notify_filter(&NotifyOptions { tty_io: true }).unwrap(),
            program::init_filter().unwrap(),
            program::holder_filter().unwrap(),
            tables::allow_filter(LOADER_EXTRA_SYSCALLS).unwrap(),
        ];
        for (built, compiled) in built.into_iter().zip(compiled) {
            assert_eq!(copy(built), Some(compiled));
        }
    }

    /// What the crate hands out is the built copy where one applies, and a fresh
    /// compilation where none does.
    #[test]
    fn callers_get_the_built_program_or_a_compiled_one() {
        assert_eq!(
            program_filter::<&str>(&[]).unwrap(),
            program::program_filter::<&str>(&[]).unwrap()
        );
        let lifted = program_filter(&["bpf"]).unwrap();
        assert_eq!(lifted, program::program_filter(&["bpf"]).unwrap());
        assert_ne!(lifted, program_filter::<&str>(&[]).unwrap());
        let other = allow_filter(&[libc::SYS_uname]).unwrap();
        assert_eq!(other, tables::allow_filter(&[libc::SYS_uname]).unwrap());
        assert_ne!(other, allow_filter(LOADER_EXTRA_SYSCALLS).unwrap());
    }
}
