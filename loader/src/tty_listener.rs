//! A listener for terminal-generated signals on a terminal the loader does not control.
//!
//! With a borrowed terminal the sandbox's job control is the sentry's, but the signals
//! the terminal itself generates — ^C, ^\ and ^Z from the line discipline, SIGWINCH on
//! a resize, SIGHUP on a hangup — are sent by the kernel to processes chosen by the
//! host's job control. In the usual case the loader is in the terminal's host
//! foreground process group and receives them. When it is not (an embedder passes a
//! terminal fd, e.g. the slave of a pty it created, that no session has as its
//! controlling terminal), nobody would. [`TtyListener`] starts a small process that
//! receives them and reports each one to the loader on a pipe.
//!
//! # The Linux rules it rests on
//!
//! - **A terminal's signals go to its foreground process group.** With ISIG set, the
//!   line discipline sends SIGINT for VINTR (^C), SIGQUIT for VQUIT (^\) and SIGTSTP
//!   for VSUSP (^Z) to the terminal's foreground process group, and TIOCSWINSZ sends
//!   SIGWINCH to it when the size changes. A foreground group exists only for a
//!   terminal that is some session's controlling terminal.
//! - **TIOCSCTTY succeeds only on a terminal without a session.** A session leader
//!   without a controlling terminal makes the terminal its controlling terminal with
//!   TIOCSCTTY (argument 0: never steal it from another session, which argument 1 lets
//!   a CAP_SYS_ADMIN caller do). If the terminal already belongs to a session the call
//!   fails with EPERM: [`ListenerError::TerminalHasSession`]. The session's group then
//!   becomes the foreground group; the listener also sets it with TIOCSPGRP.
//! - **A hangup signals the controlling process.** When the terminal hangs up (for a
//!   pty slave: its master is closed), the kernel sends SIGHUP and SIGCONT to the session
//!   leader and SIGHUP to the foreground group: the listener is both.
//! - **POLLERR on a pipe's write end means no reader is left.** `poll` reports POLLERR
//!   for a pipe's write end once every read end is closed, even when no event was asked
//!   for: the listener learns that the loader is gone (crashed, killed) without writing.
//! - **Blocked signals are queued, even those whose action is to ignore them**
//!   (SIGWINCH's default), and a signalfd reads them; blocked, SIGTSTP never stops the
//!   listener. A standard signal is pending at most once: two ^C typed before the
//!   listener reads the first are one message.
//! - **A session leader's exit frees its controlling terminal**: when the listener dies
//!   (or [`TtyListener`] is dropped) the terminal has no session again, so another
//!   listener can take it.
//!
//! # The listener process
//!
//! Created by [`crate::spawn::spawn`] without namespace flags: `clone3` with
//! CLONE_CLEAR_SIGHAND (none of the loader's handlers survive in the child), else
//! `clone`, else `fork`, with signals blocked around the call and caught handlers reset
//! in the child. The loader may be multi-threaded, so the child runs only bare system
//! calls (see `crate::sys::listener`); everything else — the seccomp program, the
//! saved termios, the signal set — is prepared before the clone. The child:
//!
//! 1. blocks every signal and resets the five it reports to SIG_DFL;
//! 2. closes every descriptor but the terminal and the pipe's write end (close_range);
//! 3. `setsid`, TIOCSCTTY on the terminal, TIOCSPGRP to its own group;
//! 4. opens a signalfd for SIGINT, SIGQUIT, SIGTSTP, SIGWINCH and SIGHUP;
//! 5. installs its own seccomp allow-list (ppoll, read, write, ioctl(TCSETS), exit,
//!    exit_group, restart_syscall; anything else fails with EPERM, a foreign
//!    architecture kills);
//! 6. reports ready (or the step that failed and its errno) on the pipe;
//! 7. then, for ever: writes one byte per signal to the pipe; after SIGHUP it exits;
//!    when the pipe's write end reports POLLERR (or a write fails with EPIPE) it
//!    restores the termios the terminal had when [`TtyListener::start`] was called and
//!    exits.
//!
//! After a SIGHUP it does not restore the termios: the loader is alive and owns the
//! terminal's state (and after a real hangup the terminal refuses ioctls anyway).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};

use crate::seccomp::{Filter, SeccompError};
use crate::spawn::{SpawnError, SpawnMethod};
use crate::sys::listener as sys;

/// A signal the terminal generated, as reported by the listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TtySignal {
    /// SIGINT: VINTR (^C) with ISIG.
    Interrupt,
    /// SIGQUIT: VQUIT (^\) with ISIG.
    Quit,
    /// SIGTSTP: VSUSP (^Z) with ISIG.
    Suspend,
    /// SIGWINCH: the window size changed (TIOCSWINSZ with a new size).
    WindowChanged,
    /// SIGHUP: the terminal hung up. The listener exits after reporting it.
    Hangup,
}

impl TtySignal {
    /// Every signal the listener reports.
    pub const ALL: [TtySignal; 5] = [
        TtySignal::Interrupt,
        TtySignal::Quit,
        TtySignal::Suspend,
        TtySignal::WindowChanged,
        TtySignal::Hangup,
    ];

    /// The signal the kernel sent to the listener.
    pub fn signal(self) -> Signal {
        match self {
            TtySignal::Interrupt => Signal::SIGINT,
            TtySignal::Quit => Signal::SIGQUIT,
            TtySignal::Suspend => Signal::SIGTSTP,
            TtySignal::WindowChanged => Signal::SIGWINCH,
            TtySignal::Hangup => Signal::SIGHUP,
        }
    }

    fn from_signo(signo: u32) -> Option<TtySignal> {
        TtySignal::ALL
            .into_iter()
            .find(|s| s.signal() as i32 as u32 == signo)
    }

    /// Its byte on the pipe.
    fn code(self) -> u8 {
        match self {
            TtySignal::Interrupt => b'C',
            TtySignal::Quit => b'\\',
            TtySignal::Suspend => b'Z',
            TtySignal::WindowChanged => b'W',
            TtySignal::Hangup => b'H',
        }
    }

    fn from_code(code: u8) -> Option<TtySignal> {
        TtySignal::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// First byte on the pipe: the listener is ready.
const READY: u8 = b'+';
/// First byte on the pipe: setup failed; a step byte and the errno (i32, little
/// endian) follow in the same write.
const FAILED: u8 = b'!';
/// How long [`TtyListener::start`] waits for the listener's first message.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The listener's exit codes.
const EXIT_DONE: i32 = 0;
const EXIT_SETUP: i32 = 1;
const EXIT_BROKEN: i32 = 2;

/// A step of the listener's setup, reported when it fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupStep {
    /// Blocking its signals and resetting their dispositions.
    Signals,
    /// Closing the descriptors it inherited (close_range).
    CloseDescriptors,
    /// setsid.
    Session,
    /// TIOCSCTTY.
    ControllingTerminal,
    /// TIOCSPGRP.
    Foreground,
    /// signalfd.
    SignalFd,
    /// Installing its seccomp filter.
    Seccomp,
    /// Writing its first message.
    Report,
}

impl SetupStep {
    const ALL: [SetupStep; 8] = [
        SetupStep::Signals,
        SetupStep::CloseDescriptors,
        SetupStep::Session,
        SetupStep::ControllingTerminal,
        SetupStep::Foreground,
        SetupStep::SignalFd,
        SetupStep::Seccomp,
        SetupStep::Report,
    ];

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(code: u8) -> Option<SetupStep> {
        SetupStep::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl std::fmt::Display for SetupStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SetupStep::Signals => "block its signals",
            SetupStep::CloseDescriptors => "close the descriptors it inherited",
            SetupStep::Session => "create a session (setsid)",
            SetupStep::ControllingTerminal => {
                "make the terminal its controlling terminal (TIOCSCTTY)"
            }
            SetupStep::Foreground => "make its group the terminal's foreground group (TIOCSPGRP)",
            SetupStep::SignalFd => "create its signalfd",
            SetupStep::Seccomp => "install its seccomp filter",
            SetupStep::Report => "report to the loader",
        })
    }
}

/// Why the listener could not start, or its pipe could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// The descriptor is not a terminal (TCGETS: ENOTTY).
    #[error("the descriptor given to the terminal listener is not a terminal")]
    NotATerminal,
    /// TCGETS failed otherwise.
    #[error("reading the terminal's termios: {0}")]
    Termios(Errno),
    /// The listener's seccomp program could not be built.
    #[error("building the terminal listener's seccomp filter: {0}")]
    Filter(#[from] SeccompError),
    /// pipe2 or fcntl on the pipe failed.
    #[error("creating the terminal listener's pipe: {0}")]
    Pipe(Errno),
    /// No spawn method could create the process.
    #[error("starting the terminal listener: {0}")]
    Spawn(#[from] SpawnError),
    /// TIOCSCTTY failed with EPERM: the terminal is some session's controlling terminal
    /// (perhaps the loader's own), and only a terminal without a session can become
    /// the listener's.
    #[error(
        "the terminal is already the controlling terminal of a session (TIOCSCTTY: EPERM); \
         the terminal listener needs a terminal that no session has"
    )]
    TerminalHasSession,
    /// Another setup step failed in the listener.
    #[error("the terminal listener could not {step}: {errno}")]
    Setup {
        /// The step.
        step: SetupStep,
        /// Its error.
        errno: Errno,
    },
    /// The listener said nothing within the time limit.
    #[error("the terminal listener did not report within {0:?}")]
    NoReply(Duration),
    /// The listener exited before reporting (its wait status, as far as known).
    #[error("the terminal listener exited before it was ready ({0})")]
    Died(String),
    /// The pipe carried a byte the protocol does not have.
    #[error("the terminal listener sent an unexpected message byte {0:#04x}")]
    Protocol(u8),
    /// Reading the pipe failed.
    #[error("reading the terminal listener's pipe: {0}")]
    Read(Errno),
    /// The listener has exited (after a hangup, killed, or failing): its pipe is at end
    /// of file.
    #[error("the terminal listener has exited")]
    Gone,
    /// [`TtyListener::shutdown`]: the listener did not exit in time (it was killed).
    #[error("the terminal listener did not exit within {0:?} of its pipe being closed")]
    ShutdownTimeout(Duration),
}

/// The listener process: killed and reaped when dropped.
#[derive(Debug)]
struct Process {
    pid: i32,
    pidfd: OwnedFd,
}

impl Process {
    /// Waits (without reaping) up to `timeout` for the process to exit.
    fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) if left.is_zero() => return false,
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => return true,
                Err(_) => return false,
            }
        }
    }

    /// Its wait status once it has exited, without reaping it.
    fn status(&self) -> String {
        match waitid(
            Id::PIDFd(self.pidfd.as_fd()),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        ) {
            Ok(st) => format!("{st:?}"),
            Err(e) => format!("wait status unknown: {e}"),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The pidfd refers to our unreaped child: no other process can have its PID.
        if let Err(e) = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL) {
            if e != Errno::ESRCH {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), Signal::SIGKILL);
            }
        }
        loop {
            match waitid(Id::PIDFd(self.pidfd.as_fd()), WaitPidFlag::WEXITED) {
                Err(Errno::EINTR) => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(pid = self.pid, %e, "cannot reap the terminal listener");
                    break;
                }
            }
        }
    }
}

/// A running listener (see the [module documentation](self)). Start it before the
/// loader confines itself with [`crate::seccomp::allow_filter`]: the child inherits
/// that filter, which refuses setsid and TIOCSCTTY. Dropping it kills
/// (SIGKILL, through its pidfd) and reaps the listener process, which frees the
/// terminal's session.
#[derive(Debug)]
pub struct TtyListener {
    process: Process,
    /// The pipe's read end, non-blocking.
    reader: OwnedFd,
    /// The pipe reached end of file.
    closed: bool,
    method: SpawnMethod,
}

/// What the listener's child needs, prepared before the clone.
struct Plan<'a> {
    tty: BorrowedFd<'a>,
    writer: BorrowedFd<'a>,
    signals: SigSet,
    filter: Filter,
    termios: libc::termios,
}

impl TtyListener {
    /// Starts the listener for `tty`, a terminal that no session has as its controlling
    /// terminal (e.g. a pty slave opened with O_NOCTTY by a process that is not a
    /// session leader). When this returns, the listener's group is the terminal's
    /// foreground group. The listener keeps its own copy of the descriptor; the
    /// caller's is not needed afterwards.
    pub fn start(tty: BorrowedFd<'_>) -> Result<TtyListener, ListenerError> {
        TtyListener::start_with_method(tty, SpawnMethod::Clone3)
    }

    /// As [`start`](Self::start), trying the spawn methods from `first` on (tests,
    /// debugging, environments where clone3 is known to be refused).
    pub fn start_with_method(
        tty: BorrowedFd<'_>,
        first: SpawnMethod,
    ) -> Result<TtyListener, ListenerError> {
        let termios = crate::sys::tty::tcgets(tty).map_err(|e| match e {
            Errno::ENOTTY => ListenerError::NotATerminal,
            e => ListenerError::Termios(e),
        })?;
        let filter = listener_filter()?;
        let (reader, writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(ListenerError::Pipe)?;
        let mut signals = SigSet::empty();
        for s in TtySignal::ALL {
            signals.add(s.signal());
        }
        let plan = Plan {
            tty,
            writer: writer.as_fd(),
            signals,
            filter,
            termios,
        };
        let spawned = crate::spawn::spawn(0, first, &mut || listener_main(&plan))?;
        drop(plan);
        drop(writer);
        let mut listener = TtyListener {
            process: Process {
                pid: spawned.pid,
                pidfd: spawned.pidfd,
            },
            reader,
            closed: false,
            method: spawned.method,
        };
        // On error, dropping `listener` kills and reaps the process.
        listener.handshake()?;
        let flags =
            fcntl(listener.reader.as_fd(), FcntlArg::F_GETFL).map_err(ListenerError::Pipe)?;
        fcntl(
            listener.reader.as_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        )
        .map_err(ListenerError::Pipe)?;
        tracing::debug!(
            pid = listener.process.pid,
            method = listener.method.name(),
            "terminal listener started"
        );
        Ok(listener)
    }

    /// Reads the listener's first message (blocking, with a time limit).
    fn handshake(&mut self) -> Result<(), ListenerError> {
        let mut fds = [PollFd::new(self.reader.as_fd(), PollFlags::POLLIN)];
        let ms = u16::try_from(READY_TIMEOUT.as_millis()).unwrap_or(u16::MAX);
        loop {
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => return Err(ListenerError::NoReply(READY_TIMEOUT)),
                Ok(_) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(ListenerError::Read(e)),
            }
        }
        let mut first = [0u8; 1];
        if self.read_exact(&mut first)? {
            // End of file: the listener died. Wait for its status (it is exiting).
            return Err(ListenerError::Died(self.process.status()));
        }
        match first[0] {
            READY => Ok(()),
            FAILED => {
                let mut rest = [0u8; 5];
                if self.read_exact(&mut rest)? {
                    return Err(ListenerError::Died(self.process.status()));
                }
                let errno =
                    Errno::from_raw(i32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]));
                match SetupStep::from_code(rest[0]) {
                    Some(SetupStep::ControllingTerminal) if errno == Errno::EPERM => {
                        Err(ListenerError::TerminalHasSession)
                    }
                    Some(step) => Err(ListenerError::Setup { step, errno }),
                    None => Err(ListenerError::Protocol(rest[0])),
                }
            }
            other => Err(ListenerError::Protocol(other)),
        }
    }

    /// Fills `buf` from the (still blocking) pipe; true at end of file.
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<bool, ListenerError> {
        let mut done = 0;
        while done < buf.len() {
            match nix::unistd::read(self.reader.as_fd(), &mut buf[done..]) {
                Ok(0) => return Ok(true),
                Ok(n) => done += n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(ListenerError::Read(e)),
            }
        }
        Ok(false)
    }

    /// The pipe's read end: readable (POLLIN) when messages are waiting or the listener
    /// has exited. Poll it, then call [`read`](Self::read).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.reader.as_fd()
    }

    /// Drains the messages waiting, without blocking: `Ok(vec![])` if there are none.
    /// Once the listener has exited, the messages it sent before are returned first;
    /// then every call fails with [`ListenerError::Gone`]; stop polling [`fd`](Self::fd)
    /// then (at end of file it stays readable).
    pub fn read(&mut self) -> Result<Vec<TtySignal>, ListenerError> {
        if self.closed {
            return Err(ListenerError::Gone);
        }
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match nix::unistd::read(self.reader.as_fd(), &mut buf) {
                Ok(0) => {
                    self.closed = true;
                    return if out.is_empty() {
                        Err(ListenerError::Gone)
                    } else {
                        Ok(out)
                    };
                }
                Ok(n) => {
                    for &b in &buf[..n] {
                        match TtySignal::from_code(b) {
                            Some(s) => out.push(s),
                            None => {
                                tracing::warn!(
                                    byte = b,
                                    "unexpected byte from the terminal listener"
                                )
                            }
                        }
                    }
                }
                Err(Errno::EAGAIN) => return Ok(out),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(ListenerError::Read(e)),
            }
        }
    }

    /// Whether the listener's pipe has reached end of file (the listener exited).
    pub fn is_gone(&self) -> bool {
        self.closed
    }

    /// The listener's PID (in the caller's PID namespace).
    pub fn pid(&self) -> i32 {
        self.process.pid
    }

    /// How the listener process was created.
    pub fn spawn_method(&self) -> SpawnMethod {
        self.method
    }

    /// Stops the listener the way the loader's death would: closes the pipe's read
    /// end, so the listener restores the termios the terminal had at
    /// [`start`](Self::start) and exits; waits up to `timeout` for it, then kills it if
    /// it is still there, and reaps it.
    pub fn shutdown(self, timeout: Duration) -> Result<(), ListenerError> {
        let TtyListener {
            process, reader, ..
        } = self;
        drop(reader);
        let exited = process.wait_exit(timeout);
        drop(process);
        if exited {
            Ok(())
        } else {
            Err(ListenerError::ShutdownTimeout(timeout))
        }
    }
}

/// The listener's seccomp allow-list, once set up: its rows, each with its reason.
const LISTENER_SYSCALLS: &[(&str, libc::c_long, &str)] = &[
    (
        "ppoll",
        libc::SYS_ppoll,
        "wait for signals and for the loader's end of the pipe",
    ),
    ("read", libc::SYS_read, "read the signalfd"),
    ("write", libc::SYS_write, "report to the loader"),
    ("exit_group", libc::SYS_exit_group, "exit"),
    ("exit", libc::SYS_exit, "exit"),
    (
        "restart_syscall",
        libc::SYS_restart_syscall,
        "resume a wait interrupted by SIGSTOP/SIGCONT",
    ),
];

/// The architecture seccompiler checks.
#[cfg(target_arch = "x86_64")]
const TARGET: seccompiler::TargetArch = seccompiler::TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const TARGET: seccompiler::TargetArch = seccompiler::TargetArch::aarch64;

/// Builds the listener's filter: [`LISTENER_SYSCALLS`] and `ioctl(fd, TCSETS, ...)`
/// (restoring the termios; the request compared on its low 32 bits, as the kernel reads
/// it) are allowed, anything else fails with EPERM; a foreign architecture kills. An
/// x32-ABI number matches no row, so it gets EPERM too.
fn listener_filter() -> Result<Filter, SeccompError> {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule,
    };
    let mut rules = std::collections::BTreeMap::new();
    for &(_, nr, _) in LISTENER_SYSCALLS {
        rules.insert(nr, Vec::new());
    }
    let tcsets = SeccompCondition::new(
        1,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Eq,
        u64::from(crate::seccomp::ioctls::TCSETS),
    )?;
    rules.insert(libc::SYS_ioctl, vec![SeccompRule::new(vec![tcsets])?]);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        TARGET,
    )?;
    Ok(Filter::from(BpfProgram::try_from(filter)?))
}

/// The listener process's code (async-signal-safe: bare system calls only); returns
/// its exit code.
fn listener_main(plan: &Plan<'_>) -> i32 {
    match setup(plan) {
        Ok(sigfd) => serve(plan, sigfd.as_fd()),
        Err((step, errno)) => {
            let e = errno as i32;
            let b = e.to_le_bytes();
            let _ = sys::write_all(plan.writer, &[FAILED, step.code(), b[0], b[1], b[2], b[3]]);
            EXIT_SETUP
        }
    }
}

fn setup(plan: &Plan<'_>) -> Result<OwnedFd, (SetupStep, Errno)> {
    let at = |step: SetupStep| move |e: Errno| (step, e);
    sys::block_all_signals().map_err(at(SetupStep::Signals))?;
    for s in TtySignal::ALL {
        sys::default_disposition(s.signal() as i32).map_err(at(SetupStep::Signals))?;
    }
    sys::close_all_except(plan.tty, plan.writer).map_err(at(SetupStep::CloseDescriptors))?;
    sys::setsid().map_err(at(SetupStep::Session))?;
    sys::set_controlling_terminal(plan.tty).map_err(at(SetupStep::ControllingTerminal))?;
    sys::set_foreground(plan.tty, sys::getpid()).map_err(at(SetupStep::Foreground))?;
    let sigfd = sys::signalfd(plan.signals.as_ref()).map_err(at(SetupStep::SignalFd))?;
    crate::seccomp::install(&plan.filter).map_err(|e| {
        let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL));
        (SetupStep::Seccomp, errno)
    })?;
    sys::write_all(plan.writer, &[READY]).map_err(at(SetupStep::Report))?;
    Ok(sigfd)
}

/// The listener's loop: one byte per signal; exits after SIGHUP, and restores the
/// termios and exits when the loader's end of the pipe is gone.
fn serve(plan: &Plan<'_>, sigfd: BorrowedFd<'_>) -> i32 {
    let restore = || {
        let _ = crate::sys::tty::tcsets(plan.tty, &plan.termios);
    };
    loop {
        let events = match sys::wait_events(sigfd, plan.writer) {
            Ok(ev) => ev,
            Err(Errno::EINTR) => continue,
            Err(_) => {
                restore();
                return EXIT_BROKEN;
            }
        };
        if events.signals {
            loop {
                match sys::read_signal(sigfd) {
                    Ok(Some(signo)) => {
                        let Some(sig) = TtySignal::from_signo(signo) else {
                            continue;
                        };
                        match sys::write_all(plan.writer, &[sig.code()]) {
                            Ok(()) => {}
                            Err(Errno::EPIPE) => {
                                restore();
                                return EXIT_DONE;
                            }
                            Err(_) => {
                                restore();
                                return EXIT_BROKEN;
                            }
                        }
                        if sig == TtySignal::Hangup {
                            return EXIT_DONE;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        restore();
                        return EXIT_BROKEN;
                    }
                }
            }
        }
        if events.reader_gone {
            restore();
            return EXIT_DONE;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::seccomp::{Action, AUDIT_ARCH_I386, AUDIT_ARCH_NATIVE, X32_SYSCALL_BIT};

    fn act(f: &Filter, nr: libc::c_long, args: [u64; 6]) -> Option<Action> {
        f.action_for(AUDIT_ARCH_NATIVE, nr as i32, args)
    }

    #[test]
    fn filter_allows_only_what_the_loop_needs() {
        let f = listener_filter().unwrap();
        let z = [0u64; 6];
        for &(name, nr, _) in LISTENER_SYSCALLS {
            assert_eq!(act(&f, nr, z), Some(Action::Allow), "{name}");
        }
        let ioctl = |cmd: u64| act(&f, libc::SYS_ioctl, [0, cmd, 0, 0, 0, 0]);
        let tcsets = u64::from(crate::seccomp::ioctls::TCSETS);
        assert_eq!(ioctl(tcsets), Some(Action::Allow));
        // The kernel reads the request as an unsigned int: high bits do not matter.
        assert_eq!(ioctl(tcsets | 1 << 32), Some(Action::Allow));
        let eperm = Some(Action::Errno(libc::EPERM as u16));
        for cmd in [
            libc::TIOCSTI,
            libc::TIOCSPGRP,
            libc::TIOCSCTTY,
            libc::TCGETS,
        ] {
            assert_eq!(ioctl(cmd), eperm, "ioctl {cmd:#x}");
        }
        for nr in [
            libc::SYS_execve,
            libc::SYS_openat,
            libc::SYS_kill,
            libc::SYS_clone,
            libc::SYS_setsid,
            libc::SYS_socket,
            libc::SYS_poll,
        ] {
            assert_eq!(act(&f, nr, z), eperm, "syscall {nr}");
        }
        // x32 numbers match no row.
        let x32 = (X32_SYSCALL_BIT as libc::c_long) | libc::SYS_write;
        assert_eq!(act(&f, x32, z), eperm);
        // A foreign architecture is killed.
        assert_eq!(
            f.action_for(AUDIT_ARCH_I386, 4, z),
            Some(Action::KillProcess)
        );
    }

    #[test]
    fn codes_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for s in TtySignal::ALL {
            assert!(seen.insert(s.code()));
            assert_ne!(s.code(), READY);
            assert_ne!(s.code(), FAILED);
            assert_eq!(TtySignal::from_code(s.code()), Some(s));
            assert_eq!(TtySignal::from_signo(s.signal() as i32 as u32), Some(s));
        }
        for step in SetupStep::ALL {
            assert_eq!(SetupStep::from_code(step.code()), Some(step));
        }
        assert_eq!(TtySignal::from_signo(libc::SIGTERM as u32), None);
    }
}
