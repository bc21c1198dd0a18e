//! Process creation: raw `clone3`, `clone` and `fork`, each returning in both the
//! parent and the child as `fork` does (no separate child stack: the child runs on a
//! copy of the caller's stack).
//!
//! The child of these calls must only run code that is safe after a fork in the
//! caller: the loader calls them while single-threaded (see `crate::spawn`).

use nix::errno::Errno;
use std::os::fd::{FromRawFd, OwnedFd};

/// Which side of a fork we are on.
pub(crate) enum Forked {
    Child,
    Parent { pid: i32, pidfd: Option<OwnedFd> },
}

/// `struct clone_args`, version 2 (88 bytes, Linux 5.7+).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `clone3(flags | CLONE_PIDFD)` with the given exit signal.
pub(crate) fn clone3(flags: u64, exit_signal: i32) -> Result<Forked, Errno> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: exit_signal as u64,
        ..CloneArgs::default()
    };
    // `pidfd` outlives the call.
    match raw_clone3(&mut args)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid,
            // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor we now own.
            pidfd: (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) }),
        }),
    }
}

/// The `clone3` system call with `args` (whose pointers must outlive the call): 0 in
/// the child, the child's PID in the parent.
fn raw_clone3(args: &mut CloneArgs) -> Result<i32, Errno> {
    // SAFETY: `args` is a valid, fully initialised clone_args of the size passed, whose
    // pointers the caller keeps alive for the call; with no stack given, the child
    // continues on a copy of this stack, exactly as after fork().
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        pid => Ok(pid as i32),
    }
}

/// A fork (exit signal SIGCHLD) whose child gets the PID `tid` in the caller's PID
/// namespace: `clone3` with `set_tid` (Linux 5.5). Linux allows it only to a caller
/// with CAP_SYS_ADMIN in the user namespace that owns that PID namespace (else EPERM),
/// and fails with EEXIST when `tid` is taken; older kernels say ENOSYS (or E2BIG,
/// EINVAL).
pub(crate) fn fork_with_pid(tid: i32) -> Result<Forked, Errno> {
    let tids: [libc::pid_t; 1] = [tid];
    let mut args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: tids.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // `tids` (one level: the caller's namespace) outlives the call.
    match raw_clone3(&mut args)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent { pid, pidfd: None }),
    }
}

/// `clone(flags | CLONE_PIDFD | exit_signal)` with no new stack (fork-like).
pub(crate) fn clone(flags: u64, exit_signal: i32) -> Result<Forked, Errno> {
    let mut pidfd: libc::c_int = -1;
    let full = flags | libc::CLONE_PIDFD as u64 | exit_signal as u64;
    // SAFETY: x86_64 argument order is (flags, stack, parent_tid, child_tid, tls); a
    // null stack makes the child continue on a copy of this one; with CLONE_PIDFD the
    // kernel writes the pidfd through the parent_tid pointer, which is valid.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            full,
            0usize,
            &mut pidfd as *mut libc::c_int,
            0usize,
            0usize,
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor we now own.
            pidfd: (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) }),
        }),
    }
}

/// Plain `fork()`.
pub(crate) fn fork() -> Result<Forked, Errno> {
    // SAFETY: the loader forks while single-threaded (crate::spawn documents this), so
    // the child may run ordinary code.
    match unsafe { libc::fork() } {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent { pid, pidfd: None }),
    }
}

/// `pidfd_open(pid, 0)`.
pub(crate) fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: plain system call with integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a new descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// `pidfd_open(tid, PIDFD_THREAD)` (Linux 6.9): a pidfd of the thread `tid` itself,
/// through which `pidfd_getfd` reaches that thread's descriptor table (a thread may
/// have one of its own: `unshare(CLONE_FILES)`).
pub(crate) fn pidfd_open_thread(tid: i32) -> Result<OwnedFd, Errno> {
    // PIDFD_THREAD is O_EXCL.
    // SAFETY: plain system call with integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, libc::O_EXCL) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a new descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// `pidfd_getfd(pidfd, fd, 0)`: a descriptor of the same open file description as
/// the target's `fd` (close-on-exec). Needs ptrace access (PTRACE_MODE_ATTACH) to it.
pub(crate) fn pidfd_getfd(pidfd: &OwnedFd, fd: i32) -> Result<OwnedFd, Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain system call with integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a new descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// `pidfd_send_signal(pidfd, SIGKILL, NULL, 0)`.
pub(crate) fn pidfd_kill(pidfd: &OwnedFd) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor, a null siginfo (allowed), no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Ends the current process at once, without running Rust or libc exit handlers (for
/// children of a fork).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is always safe to call.
    unsafe { libc::_exit(code) }
}
