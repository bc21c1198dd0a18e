//! The Linux system calls the puppets and the Linux executor make, as small safe
//! wrappers. Every `unsafe` block of the crate is here.
//!
//! Results are `Result<T, i32>` with the raw errno: the executors compare errno
//! numbers with the sentry's, so nothing is translated. Where glibc's wrapper would add
//! behaviour of its own (signal masks, `sigaction` restorers aside), the raw system
//! call is used.

use std::ffi::{CStr, CString};

/// A raw errno value.
pub type Errno = i32;
/// A system call result.
pub type Res<T> = Result<T, Errno>;

fn errno() -> Errno {
    // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

fn set_errno(v: Errno) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = v }
}

fn check(r: libc::c_long) -> Res<libc::c_long> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

fn check_int(r: libc::c_int) -> Res<i32> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// Number of signals in a kernel sigset (64 on every Linux architecture we run on).
const KERNEL_SIGSET_SIZE: usize = 8;

/// `rt_sigprocmask(how, set)` on the calling thread; returns the old mask (bit n-1 is
/// signal n).
pub fn sigprocmask(how: i32, set: Option<u64>) -> Res<u64> {
    let mut old: u64 = 0;
    let set_ptr = set.as_ref().map_or(std::ptr::null(), |s| s as *const u64);
    // SAFETY: the kernel reads 8 bytes from `set_ptr` (or nothing when null) and writes
    // 8 bytes to `old`, both valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            set_ptr,
            &mut old as *mut u64,
            KERNEL_SIGSET_SIZE,
        )
    };
    check(r).map(|_| old)
}

/// What a `sigaction` installs.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    Default,
    Ignore,
    /// The given SA_SIGINFO handler.
    Handler(extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)),
}

/// `sigaction(sig, action, flags)` with a full `sa_mask` (SA_SIGINFO is added for a
/// handler). Returns whether the previous action was SIG_IGN.
pub fn sigaction(sig: i32, action: Action, flags: i32) -> Res<bool> {
    // SAFETY: sigaction is plain old data; all-zero is a valid value.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: sa_mask is a valid sigset_t to fill.
    unsafe { libc::sigfillset(&mut sa.sa_mask) };
    sa.sa_flags = flags;
    sa.sa_sigaction = match action {
        Action::Default => libc::SIG_DFL,
        Action::Ignore => libc::SIG_IGN,
        Action::Handler(h) => {
            sa.sa_flags |= libc::SA_SIGINFO;
            h as usize
        }
    };
    // SAFETY: old is written by the kernel.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; glibc supplies the restorer.
    let r = unsafe { libc::sigaction(sig, &sa, &mut old) };
    check_int(r).map(|_| old.sa_sigaction == libc::SIG_IGN)
}

/// The kernel's `struct sigaction` (x86_64 and the generic layout).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Resets every catchable signal to SIG_DFL without flags (a puppet's fresh start). The
/// raw system call is used because glibc refuses its internal signals 32 and 33.
pub fn reset_all_signals() {
    let dfl = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `dfl` is valid for reads and has the kernel's layout; the old action
        // is not requested.
        let _ = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                KERNEL_SIGSET_SIZE,
            )
        };
    }
}

/// `fork()`. In the child only async-signal-safe work may follow while other threads
/// exist (the puppets keep to that: they reconnect and go on).
pub fn fork() -> Res<i32> {
    // SAFETY: fork has no memory-safety preconditions; callers keep the child's work
    // simple.
    check_int(unsafe { libc::fork() })
}

/// A fork whose child gets PID `tid` in the caller's PID namespace (`clone3` with
/// `set_tid`; needs CAP_SYS_ADMIN over the namespace); a plain fork when refused, as
/// the sandbox's init does.
pub fn fork_with_pid(tid: i32) -> Res<i32> {
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
    let tids: [libc::pid_t; 1] = [tid];
    let mut args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: tids.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed and `tids` outlives the
    // call; with no stack the child continues on a copy of this one, as after fork.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match check(r) {
        Ok(pid) => Ok(pid as i32),
        Err(_) => fork(),
    }
}

pub fn gettid() -> i32 {
    // SAFETY: no arguments.
    unsafe { libc::gettid() }
}

pub fn getpid() -> i32 {
    // SAFETY: no arguments.
    unsafe { libc::getpid() }
}

pub fn setsid() -> Res<i32> {
    // SAFETY: no arguments.
    check_int(unsafe { libc::setsid() })
}

pub fn setpgid(pid: i32, pgid: i32) -> Res<()> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::setpgid(pid, pgid) }).map(|_| ())
}

pub fn getpgid(pid: i32) -> Res<i32> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::getpgid(pid) })
}

pub fn getsid(pid: i32) -> Res<i32> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::getsid(pid) })
}

pub fn open(path: &CStr, flags: i32) -> Res<i32> {
    // SAFETY: `path` is NUL-terminated.
    check_int(unsafe { libc::open(path.as_ptr(), flags) })
}

pub fn close(fd: i32) -> Res<()> {
    // SAFETY: closing a descriptor number has no memory-safety effect on Rust objects
    // the caller still uses (callers only close descriptors they own by number).
    check_int(unsafe { libc::close(fd) }).map(|_| ())
}

/// Closes every descriptor from `first` up.
pub fn close_from(first: u32) {
    // SAFETY: integer arguments; descriptors closed are the caller's to drop.
    let _ = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
}

pub fn dup(fd: i32) -> Res<i32> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::dup(fd) })
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, min)`.
pub fn dup_at_least(fd: i32, min: i32) -> Res<i32> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })
}

/// `dup3(old, new, 0)`: `new` without close-on-exec.
pub fn dup2_keep(old: i32, new: i32) -> Res<()> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::dup3(old, new, 0) }).map(|_| ())
}

pub fn set_cloexec(fd: i32, on: bool) -> Res<()> {
    let flags = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) }).map(|_| ())
}

pub fn set_nonblocking(fd: i32) -> Res<()> {
    // SAFETY: integer arguments only.
    let fl = check_int(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) }).map(|_| ())
}

pub fn read(fd: i32, buf: &mut [u8]) -> Res<usize> {
    // SAFETY: `buf` is valid for writes of its length.
    check(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) as libc::c_long })
        .map(|n| n as usize)
}

pub fn write(fd: i32, buf: &[u8]) -> Res<usize> {
    // SAFETY: `buf` is valid for reads of its length.
    check(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) as libc::c_long })
        .map(|n| n as usize)
}

/// `send(fd, buf, MSG_NOSIGNAL)`, async-signal-safe; keeps errno as it was.
pub fn send_nosignal(fd: i32, buf: &[u8]) {
    let saved = errno();
    // SAFETY: `buf` is valid for reads of its length.
    let _ = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    set_errno(saved);
}

fn ioctl_int_ptr(fd: i32, req: libc::c_ulong, v: &mut i32) -> Res<()> {
    // SAFETY: the request reads or writes one int at `v`.
    check_int(unsafe { libc::ioctl(fd, req, v as *mut i32) }).map(|_| ())
}

pub fn tcsetpgrp(fd: i32, pgrp: i32) -> Res<()> {
    let mut p = pgrp;
    ioctl_int_ptr(fd, libc::TIOCSPGRP, &mut p)
}

pub fn tcgetpgrp(fd: i32) -> Res<i32> {
    let mut p = 0;
    ioctl_int_ptr(fd, libc::TIOCGPGRP, &mut p).map(|_| p)
}

pub fn tcgetsid(fd: i32) -> Res<i32> {
    let mut p = 0;
    ioctl_int_ptr(fd, libc::TIOCGSID, &mut p).map(|_| p)
}

pub fn tiocsctty(fd: i32, steal: bool) -> Res<()> {
    // SAFETY: TIOCSCTTY takes an integer argument by value.
    check_int(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, libc::c_int::from(steal)) }).map(|_| ())
}

pub fn tiocnotty(fd: i32) -> Res<()> {
    // SAFETY: TIOCNOTTY takes no argument.
    check_int(unsafe { libc::ioctl(fd, libc::TIOCNOTTY, 0) }).map(|_| ())
}

pub fn tcgetattr(fd: i32) -> Res<libc::termios> {
    // SAFETY: termios is plain old data.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is valid for writes.
    check_int(unsafe { libc::tcgetattr(fd, &mut t) }).map(|_| t)
}

/// `tcflow(fd, action)`: the TCXONC ioctl.
pub fn tcflow(fd: i32, action: i32) -> Res<()> {
    // SAFETY: TCXONC takes its argument by value.
    check_int(unsafe { libc::ioctl(fd, libc::TCXONC, action as libc::c_ulong) }).map(|_| ())
}

pub fn tcsetattr_now(fd: i32, t: &libc::termios) -> Res<()> {
    // SAFETY: `t` is valid for reads.
    check_int(unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) }).map(|_| ())
}

pub fn set_winsize(fd: i32, rows: u16, cols: u16) -> Res<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize.
    check_int(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }).map(|_| ())
}

pub fn kill(pid: i32, sig: i32) -> Res<()> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::kill(pid, sig) }).map(|_| ())
}

pub fn killpg(pgrp: i32, sig: i32) -> Res<()> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::killpg(pgrp, sig) }).map(|_| ())
}

pub fn tgkill(tgid: i32, tid: i32, sig: i32) -> Res<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, sig) }).map(|_| ())
}

/// exit_group(code).
pub fn exit_group(code: i32) -> ! {
    // SAFETY: ends the process; nothing runs afterwards.
    unsafe { libc::_exit(code) }
}

/// exit(code) of the calling thread only (the raw system call).
pub fn exit_thread(code: i32) -> ! {
    loop {
        // SAFETY: ends the calling thread; its Rust stack is never used again (the
        // thread's resources are leaked, as the scenario asks for a bare exit).
        unsafe {
            libc::syscall(libc::SYS_exit, code);
        }
    }
}

/// What a wait reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReport {
    Exited(i32),
    Killed(i32),
    Dumped(i32),
    Stopped(i32),
    Continued,
}

/// `wait4(pid, options)`: `None` for WNOHANG with nothing to report.
pub fn wait4(pid: i32, options: i32) -> Res<Option<(i32, WaitReport)>> {
    let mut status = 0;
    // SAFETY: `status` is valid for writes; rusage not requested.
    let r = check_int(unsafe { libc::wait4(pid, &mut status, options, std::ptr::null_mut()) })?;
    if r == 0 {
        return Ok(None);
    }
    let rep = if libc::WIFEXITED(status) {
        WaitReport::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        if libc::WCOREDUMP(status) {
            WaitReport::Dumped(libc::WTERMSIG(status))
        } else {
            WaitReport::Killed(libc::WTERMSIG(status))
        }
    } else if libc::WIFSTOPPED(status) {
        WaitReport::Stopped(libc::WSTOPSIG(status))
    } else {
        WaitReport::Continued
    };
    Ok(Some((r, rep)))
}

/// `waitid(idtype, id, options)`: `None` when nothing was reported (WNOHANG).
pub fn waitid(idtype: u32, id: i32, options: i32) -> Res<Option<(i32, WaitReport)>> {
    // SAFETY: siginfo_t is plain old data.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is valid for writes; the id is reinterpreted as the kernel does.
    let r = unsafe {
        libc::syscall(
            libc::SYS_waitid,
            idtype,
            id,
            &mut info as *mut libc::siginfo_t,
            options,
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    check(r)?;
    // SAFETY: after a successful waitid the SIGCHLD fields of the union are the ones
    // filled in (zero when nothing was reported).
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    let rep = match info.si_code {
        libc::CLD_EXITED => WaitReport::Exited(status),
        libc::CLD_KILLED => WaitReport::Killed(status),
        libc::CLD_DUMPED => WaitReport::Dumped(status),
        libc::CLD_STOPPED | libc::CLD_TRAPPED => WaitReport::Stopped(status),
        _ => WaitReport::Continued,
    };
    Ok(Some((pid, rep)))
}

/// `prctl(PR_SET_DUMPABLE, 0)`: no core dumps (a core-dumping signal reports CLD_KILLED,
/// as the sentry's default configuration does).
pub fn no_core_dumps() {
    // SAFETY: integer arguments only.
    let _ = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is valid for reads.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &lim) };
}

/// `prctl(PR_SET_PDEATHSIG, SIGKILL)`.
pub fn die_with_parent() {
    // SAFETY: integer arguments only.
    let _ = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
}

/// `prctl(PR_SET_CHILD_SUBREAPER, 1)`: orphaned descendants are handed to the caller.
pub fn set_child_subreaper() {
    // SAFETY: integer arguments only.
    let _ = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Drops every capability for good (bounding set, ambient set, then the effective,
/// permitted and inheritable sets), as processes inside the sandbox have none. Steps
/// that fail (no CAP_SETPCAP: there is nothing to drop) are ignored.
pub fn drop_all_capabilities() {
    for cap in 0..64 {
        // SAFETY: integer arguments only.
        let _ = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
    }
    // SAFETY: integer arguments only.
    let _ = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: `header` and the two `data` entries (version 3) are valid for the call.
    let _ = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
}

/// `unshare(CLONE_NEWPID)`: the caller's next child is PID 1 of a new namespace.
pub fn unshare_pid_namespace() -> Res<()> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::unshare(libc::CLONE_NEWPID) }).map(|_| ())
}

/// `execv(path, args)`; returns only on failure.
pub fn execv(path: &CStr, args: &[CString]) -> Errno {
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: `path` and every argument are NUL-terminated and outlive the call;
    // argv ends with a null pointer.
    unsafe { libc::execv(path.as_ptr(), argv.as_ptr()) };
    errno()
}

/// The peer's PID (in the caller's namespace) of a connected unix socket.
pub fn peer_pid(fd: i32) -> Res<i32> {
    // SAFETY: ucred is plain old data.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes and `len` holds cred's size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    check_int(r).map(|_| cred.pid)
}

/// A new pty master (O_RDWR|O_NOCTTY|O_CLOEXEC), unlocked; returns it and the slave's
/// path.
pub fn open_pty_master() -> Res<(i32, String)> {
    // SAFETY: integer arguments only.
    let m =
        check_int(unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
    // SAFETY: `m` is the master just opened.
    if unsafe { libc::grantpt(m) } < 0 || unsafe { libc::unlockpt(m) } < 0 {
        let e = errno();
        let _ = close(m);
        return Err(e);
    }
    let mut buf = [0 as libc::c_char; 128];
    // SAFETY: `buf` is valid for writes of its length.
    let r = unsafe { libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()) };
    if r != 0 {
        let _ = close(m);
        return Err(r);
    }
    // SAFETY: ptsname_r wrote a NUL-terminated string into `buf`.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Ok((m, name))
}

/// `poll` on (fd, POLLIN) pairs; returns the readiness (revents) of each.
pub fn poll_in(fds: &[i32], timeout_ms: i32) -> Res<Vec<i16>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `p` is valid for reads and writes of its length.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    check_int(r)?;
    Ok(p.iter().map(|x| x.revents).collect())
}

/// `unshare(CLONE_NEWNS)` and make every mount private to the new namespace.
pub fn unshare_mount_namespace() -> Res<()> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::unshare(libc::CLONE_NEWNS) })?;
    // SAFETY: static NUL-terminated strings; null data.
    check_int(unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })
    .map(|_| ())
}

/// Mounts a new devpts instance on /dev/pts and its ptmx on /dev/ptmx (in the caller's
/// mount namespace), so that pty numbers are private: always `/dev/pts/0` first.
pub fn private_devpts() -> Res<()> {
    // SAFETY: static NUL-terminated strings.
    check_int(unsafe {
        libc::mount(
            c"devpts".as_ptr(),
            c"/dev/pts".as_ptr(),
            c"devpts".as_ptr(),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            c"newinstance,ptmxmode=0666,mode=0620".as_ptr().cast(),
        )
    })?;
    // SAFETY: static NUL-terminated strings; a bind mount takes no type or data.
    check_int(unsafe {
        libc::mount(
            c"/dev/pts/ptmx".as_ptr(),
            c"/dev/ptmx".as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    })
    .map(|_| ())
}

/// `ioctl(master, TIOCGPTPEER, flags)`: opens the master's slave without a path.
pub fn open_peer(master: i32, flags: i32) -> Res<i32> {
    // SAFETY: TIOCGPTPEER takes the open flags by value.
    check_int(unsafe { libc::ioctl(master, libc::TIOCGPTPEER, flags) })
}

/// Buffers for a one-byte message carrying one descriptor (SCM_RIGHTS); the `msghdr`
/// built by [`FdMessage::header`] points into them, so they must stay in place.
struct FdMessage {
    byte: [u8; 1],
    iov: libc::iovec,
    control: Vec<u8>,
}

impl FdMessage {
    fn new(byte: u8) -> FdMessage {
        // SAFETY: CMSG_SPACE is a pure computation.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) } as usize;
        FdMessage {
            byte: [byte],
            iov: libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 1,
            },
            control: vec![0u8; space],
        }
    }

    fn header(&mut self) -> libc::msghdr {
        self.iov.iov_base = self.byte.as_mut_ptr().cast();
        // SAFETY: msghdr is plain old data.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut self.iov;
        msg.msg_iovlen = 1;
        msg.msg_control = self.control.as_mut_ptr().cast();
        msg.msg_controllen = self.control.len() as _;
        msg
    }
}

/// Sends `fd` with one byte over a unix socket (SCM_RIGHTS).
pub fn send_fd(sock: i32, fd: i32) -> Res<()> {
    let mut m = FdMessage::new(b'F');
    let msg = m.header();
    // SAFETY: `msg` points at `m.control`, large enough for one SCM_RIGHTS header and
    // fd; CMSG_FIRSTHDR returns a pointer inside it.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<i32>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd);
    }
    // SAFETY: `msg` and everything it points to (in `m`) are valid for the call.
    check(unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } as libc::c_long).map(|_| ())
}

/// Receives a descriptor sent by [`send_fd`] (close-on-exec).
pub fn recv_fd(sock: i32) -> Res<i32> {
    let mut m = FdMessage::new(0);
    let mut msg = m.header();
    // SAFETY: `msg` and its buffers (in `m`) are valid for writes.
    let n =
        check(unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) } as libc::c_long)?;
    if n == 0 {
        return Err(libc::ECONNRESET);
    }
    // SAFETY: the kernel filled the control buffer and msg_controllen; CMSG_FIRSTHDR
    // checks the length.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return Err(libc::EPROTO);
        }
        Ok(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>()))
    }
}
