//! Terminal ioctls on the loader's own descriptor of the borrowed terminal.

use nix::errno::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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

/// Opens a new pty in this mount namespace's /dev/ptmx (the sandbox's own devpts, so
/// the slave is /dev/pts/N there), sets its termios and size, and opens the slave
/// without O_NOCTTY: a session leader without a controlling terminal (init) acquires it.
/// TIOCSCTTY makes that explicit. Returns (master, slave).
pub(crate) fn open_owned_pty(
    termios: Option<&libc::termios>,
    winsize: Option<&libc::winsize>,
) -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd), Errno> {
    use nix::fcntl::OFlag;
    use std::os::fd::AsFd;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: TIOCSCTTY with arg 0 takes no pointer.
    let r = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(r)?;
    if let Some(t) = termios {
        tcsets(slave.as_fd(), t)?;
    }
    if let Some(ws) = winsize {
        set_winsize(slave.as_fd(), ws)?;
    }
    let master: std::os::fd::OwnedFd = master.into();
    Ok((master, slave))
}

/// Makes `fd` (a controlling terminal) stdio of the calling process and puts its
/// process group in the foreground (SIGTTOU blocked meanwhile, as a shell does).
pub(crate) fn take_foreground(fd: RawFd) -> Result<(), Errno> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    for target in 0..3 {
        // SAFETY: dup2 onto stdio; `fd` is a valid open descriptor.
        Errno::result(unsafe { libc::dup2(fd, target) })?;
    }
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    let old = ttou.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
    let me = nix::unistd::getpgrp();
    // SAFETY: TIOCSPGRP reads one pid_t through the valid pointer.
    let r = unsafe { libc::ioctl(0, libc::TIOCSPGRP, &me.as_raw()) };
    let _ = old.thread_set_mask();
    Errno::result(r).map(drop)
}

/// `TIOCSWINSZ`.
pub(crate) fn set_winsize(fd: BorrowedFd<'_>, ws: &libc::winsize) -> Result<(), Errno> {
    // SAFETY: TIOCSWINSZ reads one struct winsize through the valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws) };
    Errno::result(r).map(drop)
}

/// `TIOCGPTN`: the pty number of a master.
pub(crate) fn pty_number(master: BorrowedFd<'_>) -> Result<u32, Errno> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through the valid pointer.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) };
    Errno::result(r)?;
    Ok(n)
}

/// `TIOCGPTPEER` (Linux 4.13): opens the slave of `master` (`O_RDWR | O_NOCTTY |
/// O_CLOEXEC`) without a path, so it works whatever mount namespace the pty's devpts
/// lives in, and whether or not its creator still exists.
pub(crate) fn open_peer(master: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags by value and returns a new descriptor.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    let fd = Errno::result(r)?;
    // SAFETY: the kernel just returned `fd` as a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The raw-mode version of `t` (cfmakeraw), for a terminal proxied to a pty.
pub(crate) fn raw(t: &libc::termios) -> libc::termios {
    let mut r = *t;
    // SAFETY: cfmakeraw only edits the struct it is given.
    unsafe { libc::cfmakeraw(&mut r) };
    r
}
