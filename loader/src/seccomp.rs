//! The sandbox's seccomp programs and the user-notification listener.
//!
//! # Five filters
//!
//! | filter | installed on | programs | listed syscalls | everything else |
//! |---|---|---|---|---|
//! | [`program_filter`] | every sandboxed process, just before exec | ours | ALLOW ([`ALLOW_SYSCALLS`], the argument-conditioned rows of [`DENY_SYSCALLS`] when their condition fails, `--seccomp-allow` names); EPERM ([`DENY_SYSCALLS`], [`DENY_IOCTLS`]); clone3: ENOSYS | ENOSYS (numbers the tables do not know, x32 numbers) |
//! | [`notify_filter`] | the sandbox's first process, with a listener | ours | USER_NOTIF ([`NOTIFY_SYSCALLS`], [`NOTIFY_IOCTLS`], [`SUPERVISED_IOCTLS`], with `tty_io` also [`TTY_IO_SYSCALLS`]) | ALLOW |
//! | [`init_filter`] | init, right after it forks the holder; an exec helper, right after it forks its process | ours | ALLOW ([`INIT_SYSCALLS`]) | EPERM |
//! | [`holder_filter`] | the holder (the program's parent, leader of its session), right after it forks the program | ours | ALLOW ([`HOLDER_SYSCALLS`]) | EPERM |
//! | [`allow_filter`] | the loader itself once set up | ours | ALLOW ([`LOADER_SYSCALLS`], [`LOADER_IOCTLS`], extras); clone3: ENOSYS | EPERM |
//!
//! [`deny_filter`] (the deny list alone, everything else allowed) is the program's
//! policy without its allow-list; the sandbox no longer installs it. It refuses
//! [`SUPERVISED_IOCTLS`] too, which the program's policy leaves to the notify filter
//! (the supervisor performs them on sandbox ptys only, `crate::pty_ioctl`).
//!
//! The rules are tables of data ([`SyscallRule`], [`IoctlRule`]), each row with its
//! reason. A [`Filter`] is one program or a stack of them, installed together.
//! [`ALLOW_SYSCALLS`] and [`DENY_SYSCALLS`] classify every syscall of Linux 6.18 on
//! x86_64 ([`syscall_by_name`] finds a row; a test checks them against the kernel
//! headers and the `libc` crate). On aarch64 the syscalls of the old x86_64 table
//! (open, fork, ...) are [`ABSENT`] rows; that build is not tested here.
//!
//! # The compiler
//!
//! Every filter the sandbox installs is one program of our own compiler (the `bpf`
//! module's `ProgramBuilder`): the architecture (a foreign one: KILL_PROCESS), x32
//! numbers (ENOSYS), then a binary search over the syscall numbers whose leaves either
//! return the action of a syscall decided by its number alone, or jump to the argument
//! checks of a syscall that has some (the first check that holds decides; none: the
//! table's default). A lookup costs about 2·log2(runs of numbers) instructions whatever
//! the number. What installing a program costs matters as much: the kernel runs every
//! new filter over every syscall number of both ABIs to fill its per-syscall action
//! cache (Linux ≥ 5.11, `seccomp_cache_prepare`), one emulated instruction at a time,
//! and compiles it to native code. Measured on Linux 6.18 (`cargo run --release -p
//! sandbox-loader --example filter_cost`): a chain of 101 `JEQ`s costs 306 µs to install,
//! a one-instruction program 13 µs; the loader's allow-list compiled by seccompiler (a
//! guard and a 545-instruction chain, the shape every table had before) 343 µs, as one
//! searched program of 246 instructions 78 µs; init's 126 → 40 µs, the holder's 122 →
//! 39 µs, the program's policy (two programs of 173 and 159 instructions) 117 → 63 µs.
//!
//! seccompiler compiles [`deny_filter`] (a guard of ours, then its program; the `stack`
//! module): one match action, one default, argument tests on the low 32 bits, a chain
//! of tests one syscall after the other.
//!
//! Every program refuses foreign architectures (KILL_PROCESS: e.g. `int 0x80` from an
//! x86_64 process, which reports AUDIT_ARCH_I386 and different numbers). Argument tests
//! read the low 32 bits of an argument: the ioctl request is compared as the kernel uses
//! it (`unsigned int`), so `TIOCSTI | 1 << 32` is TIOCSTI to the filter as it is to the
//! kernel (CVE-2019-10063). Every program decides on the syscall number alone except
//! for the rows with argument checks (ioctl, and a few conditioned rows), so the
//! kernel's action cache lets every other allowed syscall through without running the
//! programs. Measured (x86_64, Linux 6.18, best of runs): getppid and a 1-byte read of
//! /dev/zero cost the same as under the old deny list (cached), ioctl(TCGETS) too
//! (about 230 ns against 180 ns without the policy).
//!
//! [`Filter::action_for`] runs a compiled filter (all its programs, combined as the
//! kernel combines them) on a synthetic syscall, so its decisions can be checked without
//! installing it.
//!
//! # How they stack
//!
//! Filters accumulate: a process keeps every filter installed by itself and its
//! ancestors, across fork and exec, and none can be removed. For each syscall the kernel
//! runs all of them and applies the most severe result: KILL_PROCESS, KILL_THREAD,
//! TRAP, ERRNO, USER_NOTIF, TRACE, LOG, ALLOW; of equally severe results (two ERRNOs
//! with different errnos), that of the filter installed last. ERRNO beats USER_NOTIF beats ALLOW, so
//! the policy and the notify filter can be installed in either order: a denied syscall is
//! never notified, and a notified one is never denied unless it is on the deny list
//! too (the TIOCSTI family: refused outright). TIOCSETD and TIOCVHANGUP
//! ([`SUPERVISED_IOCTLS`]) are on no deny list of the program's policy, so that they
//! reach the supervisor. A task's filter chain can have only one
//! listener (EBUSY otherwise), which rules out a notify filter inside an environment
//! that already installed one.
//!
//! # Installing
//!
//! [`install`], [`install_with_listener`] and [`install_with_listener_killable`] act on
//! the calling thread (installing a stack's programs in order, the listener on the last
//! one; if one fails, those before it stay installed) and are async-signal-safe (bare syscalls, no allocation, no
//! logging): compile the [`Filter`] before forking, install between fork and exec.
//! [`install_all_threads`] synchronises every thread of the process (TSYNC), for the
//! loader's own lock-down.
//!
//! Seccomp requires either `no_new_privs` or CAP_SYS_ADMIN in the caller's user
//! namespace (so an unprivileged process cannot install a filter that makes a setuid
//! program fail in unexpected places). The install functions set `no_new_privs` only
//! when the caller lacks CAP_SYS_ADMIN: a root sandbox keeps setuid programs and file
//! capabilities working, and a filter installed by a privileged caller adds no
//! risk. A caller that wants `no_new_privs` regardless sets it before installing
//! (`prctl(PR_SET_NO_NEW_PRIVS)`); the install functions then leave it as is.
//!
//! Order in the sandbox's first process: install the program's policy, then the notify
//! filter with a listener, send the listener with [`send_listener`] (sendmsg is not
//! notified), then exec. After the notify filter is installed, every notified syscall
//! (with `tty_io`: every `write`, e.g. an error report on a pipe) waits for the loader
//! to answer; nothing but the exec should follow it.
//!
//! # Serving notifications
//!
//! [`Listener`] receives [`Notification`]s and answers them with a [`Response`]:
//! `Continue` (the host runs the syscall: how approved setpgid/setsid keep the host in
//! lockstep with the sentry), `Return(value)` or `Error(errno)`. For job control, send
//! SIGTTIN/SIGTTOU to the caller's group and answer `Error(ERESTARTSYS)`: the caller
//! stops, and after SIGCONT restarts the syscall, which notifies again. A notified task
//! waits interruptibly: a signal that arrives before the answer withdraws the
//! notification (the answer then fails with [`SeccompError::TargetGone`]) and restarts
//! the syscall under a new id. With [`install_with_listener_killable`] (Linux 5.19) the
//! task ignores all but fatal signals once its notification has been received, so an
//! answer, once the notification is read, always lands.
//!
//! The memory of a notified process is read and written with [`read_bytes`],
//! [`write_bytes`], [`read_i32`] and [`write_i32`] (process_vm_readv/writev). The
//! caller's other threads can change that memory before a `Continue`d syscall reads it:
//! decisions must not rest on memory contents alone.
//!
//! # Linux AIO and a borrowed terminal
//!
//! With `tty_io`, `io_setup` and `io_submit` fail with ENOSYS (rows of
//! [`TTY_IO_SYSCALLS`] answered by the filter itself): an iocb names its fd in memory
//! (checked on Linux 6.18: an AIO read of a pty slave returns its input), which no check
//! can pin. Without `tty_io` AIO stays (databases and emulators use it on files).

mod bpf;
mod error;
mod listener;
mod precompiled;
mod program;
mod stack;
mod tables;

use std::io;
use std::os::fd::OwnedFd;

pub use crate::sys::memory::{read_bytes, read_i32, write_bytes, write_i32, MemoryError};
use crate::sys::seccomp as sys;
pub(crate) use bpf::profile_filter;
pub use bpf::{
    Action, ArgCmp, ArgOp, Filter, Instruction, IoctlRule, ProfileRule, SyscallRule, When, ABSENT,
    AUDIT_ARCH_I386, AUDIT_ARCH_NATIVE, MAX_INSTRUCTIONS, X32_SYSCALL_BIT,
};
pub use error::SeccompError;
pub use listener::{recv_listener, send_listener, Listener, Notification, Response, ERESTARTSYS};
pub use precompiled::{allow_filter, holder_filter, init_filter, notify_filter, program_filter};
pub use program::{syscall_by_name, ALLOW_SYSCALLS, HOLDER_SYSCALLS, INIT_SYSCALLS};
pub use tables::{
    deny_filter, ioctls, NotifyOptions, DENY_IOCTLS, DENY_SYSCALLS, LOADER_EXTRA_SYSCALLS,
    LOADER_IOCTLS, LOADER_SYSCALLS, NOTIFY_IOCTLS, NOTIFY_SYSCALLS, SUPERVISED_IOCTLS,
    TTY_IO_SYSCALLS,
};

/// Makes seccomp accept a filter from the calling thread: nothing if `no_new_privs` is
/// already set or the thread has CAP_SYS_ADMIN, else sets `no_new_privs`.
fn ensure_filter_permission() -> Result<(), SeccompError> {
    if sys::no_new_privs().map_err(SeccompError::NoNewPrivs)? {
        return Ok(());
    }
    if sys::has_cap_sys_admin().map_err(SeccompError::Capabilities)? {
        return Ok(());
    }
    sys::set_no_new_privs().map_err(SeccompError::NoNewPrivs)
}

/// Installs the programs of `filter` in order, the last one with `last_flags` (the
/// others with `flags`), and returns the last system call's value. A failure leaves the
/// programs before it installed.
fn install_flags(
    filter: &Filter,
    flags: libc::c_ulong,
    last_flags: libc::c_ulong,
) -> Result<i64, SeccompError> {
    ensure_filter_permission()?;
    let mut programs = filter.programs();
    let Some(last) = programs.next_back() else {
        return Err(SeccompError::Install(io::Error::from_raw_os_error(
            libc::EINVAL,
        )));
    };
    for program in programs {
        match sys::set_mode_filter(program, flags).map_err(SeccompError::Install)? {
            0 => {}
            tid => return Ok(tid),
        }
    }
    sys::set_mode_filter(last, last_flags).map_err(SeccompError::Install)
}

/// Installs `filter` (each of its programs, in order) on the calling thread, inherited
/// by its future children and kept across exec. Async-signal-safe.
pub fn install(filter: &Filter) -> Result<(), SeccompError> {
    install_flags(filter, 0, 0).map(|_| ())
}

/// Installs `filter` on every thread of the process (SECCOMP_FILTER_FLAG_TSYNC), as the
/// loader's own lock-down must: a thread left without it would be a way around it.
pub fn install_all_threads(filter: &Filter) -> Result<(), SeccompError> {
    let tsync = libc::SECCOMP_FILTER_FLAG_TSYNC;
    match install_flags(filter, tsync, tsync)? {
        0 => Ok(()),
        tid => Err(SeccompError::ThreadSync { tid }),
    }
}

/// Installs `filter` on the calling thread, its last program with a new listener
/// (SECCOMP_FILTER_FLAG_NEW_LISTENER), and returns the listener fd (close-on-exec).
/// Async-signal-safe. Wrap the fd in a [`Listener`] where it is served.
pub fn install_with_listener(filter: &Filter) -> Result<OwnedFd, SeccompError> {
    let raw = install_flags(filter, 0, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER)?;
    sys::owned_listener(raw).map_err(SeccompError::Install)
}

/// As [`install_with_listener`], and once the listener has received a notification its
/// task waits for the answer ignoring all but fatal signals
/// (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, Linux 5.19; EINVAL before). The answer then
/// always lands, which keeps the sentry and the host in lockstep: with the plain
/// listener, a signal arriving after the sentry decided but before it answered
/// withdraws the notification. Async-signal-safe.
pub fn install_with_listener_killable(filter: &Filter) -> Result<OwnedFd, SeccompError> {
    let raw = install_flags(
        filter,
        0,
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
    )?;
    sys::owned_listener(raw).map_err(SeccompError::Install)
}
