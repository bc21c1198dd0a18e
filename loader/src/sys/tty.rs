//! Terminal ioctls on the loader's own descriptor of the borrowed terminal.

use nix::errno::Errno;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `TCGETS`: the kernel's `struct termios` (not glibc's wider one).
pub(crate) fn tcgets(fd: BorrowedFd<'_>) -> Result<libc::termios, Errno> {
    // SAFETY: a zeroed termios is a valid value of this plain-data struct.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: TCGETS writes one struct termios through the valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCGETS, &mut t) };
    Errno::result(r)?;
    Ok(t)
}

/// `TCSETS` (TCSANOW).
pub(crate) fn tcsets(fd: BorrowedFd<'_>, t: &libc::termios) -> Result<(), Errno> {
    // SAFETY: TCSETS reads one struct termios through the valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCSETS, t) };
    Errno::result(r).map(drop)
}

/// `TIOCGPGRP`: the terminal's foreground process group (host numbers).
pub(crate) fn tcgetpgrp(fd: BorrowedFd<'_>) -> Result<i32, Errno> {
    let mut pgrp: libc::pid_t = 0;
    // SAFETY: TIOCGPGRP writes one pid_t through the valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGPGRP, &mut pgrp) };
    Errno::result(r)?;
    Ok(pgrp)
}

/// `TIOCGWINSZ`.
pub(crate) fn get_winsize(fd: BorrowedFd<'_>) -> Result<libc::winsize, Errno> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize through the valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    Errno::result(r)?;
    Ok(ws)
}

/// `TIOCGPTN` is not needed: whether a terminal is a pty slave is read from its
/// device number (UNIX98 pty slaves have majors 136-143).
pub(crate) fn is_pty_slave(rdev: u64) -> bool {
    let major = libc::major(rdev);
    (136..=143).contains(&major)
}
