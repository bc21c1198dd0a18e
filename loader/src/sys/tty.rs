//! Terminal ioctls on the loader's own descriptor of the borrowed terminal.

use nix::errno::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

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

/// `TIOCGSID`: the terminal's session (host numbers). On a pty master it is the
/// slave's, asked by anyone (the caller's own controlling terminal is not required).
pub(crate) fn tcgetsid(fd: BorrowedFd<'_>) -> Result<i32, Errno> {
    let mut sid: libc::pid_t = 0;
    // SAFETY: TIOCGSID writes one pid_t through the valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGSID, &mut sid) };
    Errno::result(r)?;
    Ok(sid)
}

/// Whether the terminal is hung up (poll reports POLLHUP at once).
pub(crate) fn hung_up(fd: BorrowedFd<'_>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP))
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
/// With `ctty` false the slave is opened O_NOCTTY and stays nobody's controlling
/// terminal.
pub(crate) fn open_owned_pty(
    termios: Option<&libc::termios>,
    winsize: Option<&libc::winsize>,
    ctty: bool,
) -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd), Errno> {
    use nix::fcntl::OFlag;
    use std::os::fd::AsFd;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let noctty = if ctty {
        OFlag::empty()
    } else {
        OFlag::O_NOCTTY
    };
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_CLOEXEC | noctty,
        nix::sys::stat::Mode::empty(),
    )?;
    if ctty {
        // SAFETY: TIOCSCTTY with arg 0 takes no pointer.
        let r = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
        Errno::result(r)?;
    }
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

/// The raw-mode version of `t` (cfmakeraw), for a terminal proxied to a pty.
pub(crate) fn raw(t: &libc::termios) -> libc::termios {
    let mut r = *t;
    // SAFETY: cfmakeraw only edits the struct it is given.
    unsafe { libc::cfmakeraw(&mut r) };
    r
}

// Requests the libc crate does not name on every target.
const TIOCGLCKTRMIOS: libc::c_ulong = 0x5456;
const TIOCSLCKTRMIOS: libc::c_ulong = 0x5457;
const TIOCEXCL: libc::c_ulong = 0x540C;
const TIOCNXCL: libc::c_ulong = 0x540D;
/// `_IOR('T', 0x40, int)`.
const TIOCGEXCL: libc::c_ulong = 0x8004_5440;

/// `TIOCGLCKTRMIOS`: the terminal's locked termios (a set bit or non-zero control
/// character is locked: TCSETS* keep the current value there).
pub(crate) fn get_locked(fd: BorrowedFd<'_>) -> Result<libc::termios, Errno> {
    // SAFETY: a zeroed termios is a valid value of this plain-data struct.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGLCKTRMIOS writes one kernel struct termios through the valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), TIOCGLCKTRMIOS, &mut t) };
    Errno::result(r)?;
    Ok(t)
}

/// `TIOCSLCKTRMIOS`: Linux requires CAP_SYS_ADMIN (in the initial user namespace).
pub(crate) fn set_locked(fd: BorrowedFd<'_>, t: &libc::termios) -> Result<(), Errno> {
    // SAFETY: TIOCSLCKTRMIOS reads one kernel struct termios through the valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), TIOCSLCKTRMIOS, t) };
    Errno::result(r).map(drop)
}

/// `TIOCGEXCL`: whether the terminal is in exclusive mode (further opens fail with
/// EBUSY without CAP_SYS_ADMIN).
pub(crate) fn get_exclusive(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    let mut v: libc::c_int = 0;
    // SAFETY: TIOCGEXCL writes one int through the valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), TIOCGEXCL, &mut v) };
    Errno::result(r)?;
    Ok(v != 0)
}

/// `TIOCEXCL` (true) or `TIOCNXCL` (false).
pub(crate) fn set_exclusive(fd: BorrowedFd<'_>, on: bool) -> Result<(), Errno> {
    let req = if on { TIOCEXCL } else { TIOCNXCL };
    // SAFETY: TIOCEXCL/TIOCNXCL take no argument.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req, 0) };
    Errno::result(r).map(drop)
}

/// `TCXONC(TCOON)`: restarts output suspended by `tcflow(TCOOFF)` (or a typed ^S).
pub(crate) fn restart_output(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: TCXONC takes an integer argument, no pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCXONC, libc::TCOON) };
    Errno::result(r).map(drop)
}

/// What a program holding a terminal can change and its user would be left with: the
/// termios, the locked termios, the window size and exclusive mode, read when the
/// sandbox starts. Output flow (`TCOOFF`) cannot be read: [`SavedTerminal::restore`]
/// restarts output unconditionally. Packet mode belongs to a pty master, which no
/// sandbox process holds for the user's terminal. The foreground process group is not
/// here: only a process of the terminal's session can change it (the host refuses
/// TIOCSPGRP from another session, and the supervisor emulates it anyway), so what it
/// is at the end is the user's shell's doing.
#[derive(Clone, Copy)]
pub(crate) struct SavedTerminal {
    pub termios: libc::termios,
    /// None when it could not be read (then it is not restored).
    pub locked: Option<libc::termios>,
    /// None: the size is not restored (an owned pty's proxy: only the user resizes the
    /// user's terminal then, and a resize during the run must stay).
    pub winsize: Option<libc::winsize>,
    pub exclusive: Option<bool>,
}

impl SavedTerminal {
    /// Reads the state of `fd`; only the termios is required.
    pub fn save(fd: BorrowedFd<'_>, with_size: bool) -> Result<SavedTerminal, Errno> {
        Ok(SavedTerminal {
            termios: tcgets(fd)?,
            locked: get_locked(fd).ok(),
            winsize: if with_size {
                get_winsize(fd).ok()
            } else {
                None
            },
            exclusive: get_exclusive(fd).ok(),
        })
    }

    /// Puts it all back, in the order that makes each step possible: the locked
    /// termios first (a locked bit would keep TCSETS from restoring it; needs
    /// CAP_SYS_ADMIN, which a root loader has and a program without it cannot have used
    /// to change it), then the termios, the size, exclusive mode, and output restarted.
    /// Call it with SIGTTOU blocked or ignored (from a background job the termios
    /// change would stop the caller). Async-signal-safe (bare ioctls).
    pub fn restore(&self, fd: BorrowedFd<'_>) -> RestoreReport {
        let mut report = RestoreReport::default();
        if let Some(l) = &self.locked {
            // Only when it changed: setting it needs CAP_SYS_ADMIN, which a rootless
            // loader lacks (and so does its program).
            if get_locked(fd).map_or(true, |now| !same_termios(&now, l)) {
                report.locked = set_locked(fd, l).err();
            }
        }
        report.termios = tcsets(fd, &self.termios).err();
        if let Some(ws) = &self.winsize {
            report.winsize = set_winsize(fd, ws).err();
        }
        if let Some(x) = self.exclusive {
            report.exclusive = set_exclusive(fd, x).err();
        }
        report.flow = restart_output(fd).err();
        report
    }
}

/// Which steps of [`SavedTerminal::restore`] failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RestoreReport {
    pub locked: Option<Errno>,
    pub termios: Option<Errno>,
    pub winsize: Option<Errno>,
    pub exclusive: Option<Errno>,
    pub flow: Option<Errno>,
}

impl RestoreReport {
    /// Every failure was EIO: the terminal was hung up (nothing left to restore).
    pub fn hung_up(&self) -> bool {
        let all = [
            self.locked,
            self.termios,
            self.winsize,
            self.exclusive,
            self.flow,
        ];
        all.iter().any(Option::is_some) && all.iter().all(|e| matches!(e, None | Some(Errno::EIO)))
    }
}

fn same_termios(a: &libc::termios, b: &libc::termios) -> bool {
    a.c_iflag == b.c_iflag
        && a.c_oflag == b.c_oflag
        && a.c_cflag == b.c_cflag
        && a.c_lflag == b.c_lflag
        && a.c_line == b.c_line
        && a.c_cc == b.c_cc
}

/// (`st_dev`, `st_ino`) of a pty master's slave, from the slave opened through the
/// master (`TIOCGPTPEER`, O_NOCTTY: no controlling terminal is acquired): no path, so
/// no race with the mount namespace that created it going away.
pub(crate) fn peer_identity(master: BorrowedFd<'_>) -> Result<(u64, u64), Errno> {
    const TIOCGPTPEER: libc::c_ulong = 0x5441;
    let flags = libc::O_RDONLY | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new descriptor.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), TIOCGPTPEER, flags) };
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let st = nix::sys::stat::fstat(&fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// One blocking `read` of one byte: `None` at end of file. Async-signal-safe.
pub(crate) fn read_byte(fd: BorrowedFd<'_>) -> Result<Option<u8>, Errno> {
    let mut b = 0u8;
    // SAFETY: read writes at most one byte into the valid local.
    let r = unsafe { libc::read(fd.as_raw_fd(), (&mut b as *mut u8).cast(), 1) };
    match Errno::result(r)? {
        0 => Ok(None),
        _ => Ok(Some(b)),
    }
}

/// `setpgid(0, 0)`: the caller leads a process group of its own. Async-signal-safe.
pub(crate) fn new_process_group() -> Result<(), Errno> {
    // SAFETY: integers only.
    let r = unsafe { libc::setpgid(0, 0) };
    Errno::result(r).map(drop)
}

/// `TIOCGETD`: the terminal's line discipline.
pub(crate) fn tiocgetd(fd: BorrowedFd<'_>) -> Result<i32, Errno> {
    let mut disc: libc::c_int = 0;
    // SAFETY: TIOCGETD writes one int through the valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGETD, &mut disc) };
    Errno::result(r)?;
    Ok(disc)
}

/// `TIOCSETD`: sets the terminal's line discipline (the kernel's checks apply to the
/// calling process: see `crate::pty_ioctl`).
pub(crate) fn tiocsetd(fd: BorrowedFd<'_>, disc: i32) -> Result<(), Errno> {
    let disc: libc::c_int = disc;
    // SAFETY: TIOCSETD reads one int through the valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSETD, &disc) };
    Errno::result(r).map(drop)
}

/// `TIOCVHANGUP`: hangs the terminal up for every description of it (CAP_SYS_ADMIN in
/// the initial user namespace).
pub(crate) fn tiocvhangup(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: TIOCVHANGUP takes no argument.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCVHANGUP, 0) };
    Errno::result(r).map(drop)
}
