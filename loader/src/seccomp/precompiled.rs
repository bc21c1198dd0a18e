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

/// [`program::program_filter`], built at build time when `allow` is empty.
pub fn program_filter<S: AsRef<str>>(allow: &[S]) -> Result<Filter, SeccompError> {
    match copy(generated::PROGRAM) {
        Some(f) if allow.is_empty() => Ok(f),
        _ => program::program_filter(allow),
    }
}

/// [`tables::notify_filter`], built at build time.
pub fn notify_filter(options: &NotifyOptions) -> Result<Filter, SeccompError> {
    let built = match options {
        NotifyOptions { tty_io: false } => generated::NOTIFY,
        NotifyOptions { tty_io: true } => generated::NOTIFY_TTY_IO,
    };
    copy(built).map_or_else(|| tables::notify_filter(options), Ok)
}

/// [`program::init_filter`], built at build time.
pub fn init_filter() -> Result<Filter, SeccompError> {
    copy(generated::INIT).map_or_else(program::init_filter, Ok)
}

/// [`program::holder_filter`], built at build time.
pub fn holder_filter() -> Result<Filter, SeccompError> {
    copy(generated::HOLDER).map_or_else(program::holder_filter, Ok)
}

/// [`tables::allow_filter`], built at build time for [`LOADER_EXTRA_SYSCALLS`] (the
/// loader's own).
pub fn allow_filter(extra: &[libc::c_long]) -> Result<Filter, SeccompError> {
    match copy(generated::LOADER) {
        Some(f) if extra == LOADER_EXTRA_SYSCALLS => Ok(f),
        _ => tables::allow_filter(extra),
    }
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
