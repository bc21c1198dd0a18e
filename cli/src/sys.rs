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
