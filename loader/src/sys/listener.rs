//! Raw calls of the terminal-signal listener (`crate::tty_listener`).
//!
//! Everything the listener process runs after the clone is here and is a bare system
//! call or a libc function that POSIX lists as async-signal-safe: no allocation, no
//! lock, no logging. The listener may be cloned from a multi-threaded loader, whose
//! other threads could hold the allocator's lock at the moment of the copy.

use nix::errno::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Blocks every signal of the calling thread (SIGKILL and SIGSTOP cannot be blocked).
pub(crate) fn block_all_signals() -> Result<(), Errno> {
    // SAFETY: a zeroed sigset_t is a valid value; sigfillset and sigprocmask only touch
    // the local set (both are async-signal-safe).
    let r = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut())
    };
    Errno::result(r).map(drop)
}

/// Sets the disposition of `sig` to SIG_DFL (undoing an inherited SIG_IGN).
pub(crate) fn default_disposition(sig: i32) -> Result<(), Errno> {
    // SAFETY: a zeroed sigaction is SIG_DFL with an empty mask and no flags; SIG_DFL
    // runs no code of ours.
    let r = unsafe {
        let dfl: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, &dfl, std::ptr::null_mut())
    };
    Errno::result(r).map(drop)
}

/// `close_range(first, last, 0)`; an empty range is nothing to do.
fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    if first > last {
        return Ok(());
    }
    // SAFETY: close_range takes integers only; the caller gives up every descriptor in
    // the range (the listener keeps no Rust object referring to them).
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    Errno::result(r).map(drop)
}

/// Closes every descriptor of the calling process except `a` and `b`
/// (`close_range`, Linux 5.9).
pub(crate) fn close_all_except(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> Result<(), Errno> {
    let (x, y) = (a.as_raw_fd(), b.as_raw_fd());
    let lo = u32::try_from(x.min(y)).map_err(|_| Errno::EBADF)?;
    let hi = u32::try_from(x.max(y)).map_err(|_| Errno::EBADF)?;
    if lo > 0 {
        close_range(0, lo - 1)?;
    }
    close_range(lo + 1, hi.saturating_sub(1))?;
    if hi < u32::MAX {
        close_range(hi + 1, u32::MAX)?;
    }
    Ok(())
}

/// `setsid()`: a new session and process group led by the caller; returns its id.
pub(crate) fn setsid() -> Result<i32, Errno> {
    // SAFETY: no arguments.
    let r = unsafe { libc::setsid() };
    Errno::result(r)
}

/// `getpid()`.
pub(crate) fn getpid() -> i32 {
    // SAFETY: no arguments; cannot fail.
    unsafe { libc::getpid() }
}

/// `TIOCSCTTY` with argument 0: makes `tty` the controlling terminal of the caller's
/// session (the caller must lead a session that has none; the terminal must have no
/// session, since argument 0 never steals it).
pub(crate) fn set_controlling_terminal(tty: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument, no pointer.
    let r = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY, 0 as libc::c_int) };
    Errno::result(r).map(drop)
}

/// `TIOCSPGRP` (tcsetpgrp): makes `pgrp` the terminal's foreground process group.
pub(crate) fn set_foreground(tty: BorrowedFd<'_>, pgrp: i32) -> Result<(), Errno> {
    let pgrp: libc::pid_t = pgrp;
    // SAFETY: TIOCSPGRP reads one pid_t through the valid pointer.
    let r = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSPGRP, &pgrp) };
    Errno::result(r).map(drop)
}

/// `signalfd4(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC)`.
pub(crate) fn signalfd(mask: &libc::sigset_t) -> Result<OwnedFd, Errno> {
    // SAFETY: the kernel reads the signal set from the valid pointer.
    let r = unsafe { libc::signalfd(-1, mask, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    let fd = Errno::result(r)?;
    // SAFETY: the kernel returned a new descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What [`wait_events`] saw.
pub(crate) struct Events {
    /// The signalfd has signals to read.
    pub(crate) signals: bool,
    /// The pipe's write end reports POLLERR (or POLLHUP/POLLNVAL): no reader is left.
    pub(crate) reader_gone: bool,
}

/// Waits without a time limit (`ppoll`, no signal mask change) until `sigfd` is
/// readable or `pipe_writer` reports an error. The write end is polled for no event:
/// `poll` always reports POLLERR, which a pipe's write end shows once its last read end
/// is closed.
pub(crate) fn wait_events(
    sigfd: BorrowedFd<'_>,
    pipe_writer: BorrowedFd<'_>,
) -> Result<Events, Errno> {
    let mut fds = [
        libc::pollfd {
            fd: sigfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: pipe_writer.as_raw_fd(),
            events: 0,
            revents: 0,
        },
    ];
    // SAFETY: `fds` holds two live pollfd structs, and their number is passed; null
    // timeout and signal mask pointers mean "no limit" and "keep the mask".
    let r = unsafe {
        libc::syscall(
            libc::SYS_ppoll,
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<libc::sigset_t>(),
            0usize,
        )
    };
    Errno::result(r)?;
    let gone = libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;
    Ok(Events {
        signals: fds[0].revents & (libc::POLLIN | gone) != 0,
        reader_gone: fds[1].revents & gone != 0,
    })
}

/// Reads one signal from a non-blocking signalfd: its number, or None when none is
/// pending.
pub(crate) fn read_signal(sigfd: BorrowedFd<'_>) -> Result<Option<u32>, Errno> {
    // SAFETY: signalfd_siginfo is plain data; all zeroes is a valid value.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    loop {
        // SAFETY: the kernel writes at most `size` bytes into the live local.
        let r = unsafe {
            libc::read(
                sigfd.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        match Errno::result(r) {
            Ok(n) if n as usize == size => return Ok(Some(info.ssi_signo)),
            Ok(_) => return Err(Errno::EIO),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `bytes` (at most PIPE_BUF, so one atomic write on a pipe), retrying
/// EINTR.
pub(crate) fn write_all(fd: BorrowedFd<'_>, bytes: &[u8]) -> Result<(), Errno> {
    let mut done = 0;
    while done < bytes.len() {
        let rest = &bytes[done..];
        // SAFETY: the kernel reads `rest.len()` bytes from the live slice.
        let r = unsafe { libc::write(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
        match Errno::result(r) {
            Ok(n) => done += n as usize,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> Result<(), Errno> {
    // SAFETY: integer arguments and a null siginfo pointer (the kernel fills in a
    // kill()-like siginfo).
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    Errno::result(r).map(drop)
}
