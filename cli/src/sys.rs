//! The few raw descriptor operations of the command's library. Every `unsafe` block
//! of the crate lives here, each with a `// SAFETY:` comment.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a descriptor that SCM_RIGHTS just delivered to this process.
pub(crate) fn own_received(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed this descriptor for us in recvmsg; nothing else in
    // the process knows its number, so this is its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `accept4(SOCK_CLOEXEC)` on a listening socket.
pub(crate) fn accept(listener: RawFd) -> nix::Result<OwnedFd> {
    let fd = nix::sys::socket::accept4(listener, nix::sys::socket::SockFlag::SOCK_CLOEXEC)?;
    // SAFETY: accept4 just returned this new descriptor; we are its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The window size (rows, columns) of the terminal `fd` (`TIOCGWINSZ`).
pub(crate) fn winsize(fd: std::os::fd::BorrowedFd<'_>) -> Option<(u16, u16)> {
    use std::os::fd::AsRawFd;
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` to the pointer, which points to
    // a live, writable `libc::winsize`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some((ws.ws_row, ws.ws_col))
}

/// `SO_PEERPIDFD` (Linux 6.5): the asm-generic value, which x86_64 and aarch64 use.
const SO_PEERPIDFD: libc::c_int = 77;

/// A pidfd of the process that connected the socket `sock` (`SO_PEERPIDFD`); it
/// refers to that very process, whatever happens to its PID.
pub(crate) fn peer_pidfd(sock: std::os::fd::BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes (one c_int) to `fd`, which is a
    // live, writable c_int, and updates `len`.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut fd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    nix::errno::Errno::result(r)?;
    if fd < 0 {
        return Err(nix::Error::EBADF);
    }
    // SAFETY: the kernel just installed this new descriptor for us; we own it alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether the process of `pidfd` still exists (a zombie counts): its PID cannot have
/// been reused meanwhile.
pub(crate) fn pidfd_alive(pidfd: std::os::fd::BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal with signal 0 and no siginfo only checks that the
    // process exists and may be signalled; no memory is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    // EPERM: it exists, but we may not signal it.
    r == 0 || nix::errno::Errno::last() == nix::errno::Errno::EPERM
}
