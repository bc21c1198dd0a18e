//! Tests of `tty_listener` on real ptys: the test opens a pty pair (the slave with
//! O_NOCTTY, so no session of the test has it as controlling terminal), starts the
//! listener on the slave and plays the user's terminal on the master.
//!
//! The loader-death test re-executes this test binary (`--exact
//! loader_death_restores_the_termios_and_ends_the_listener`) as a stand-in loader that
//! starts a listener and is then killed with SIGKILL.
//!
//! None of this needs root. Every wait has a time limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
use sandbox_loader::tty_listener::{ListenerError, TtyListener, TtySignal};
use sandbox_loader::SpawnMethod;

const TIMEOUT: Duration = Duration::from_secs(10);
const CHILD_ENV: &str = "SANDBOX_TTY_LISTENER_LOADER";

/// A new pty: (master, slave), the slave opened with O_NOCTTY.
fn pty() -> (OwnedFd, OwnedFd) {
    let master =
        nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).unwrap();
    nix::pty::grantpt(&master).unwrap();
    nix::pty::unlockpt(&master).unwrap();
    let name = nix::pty::ptsname_r(&master).unwrap();
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    (master.into(), slave)
}

/// Waits until the listener has reported `want`; returns everything it reported.
fn wait_for(listener: &mut TtyListener, want: TtySignal) -> Vec<TtySignal> {
    let deadline = Instant::now() + TIMEOUT;
    let mut got = Vec::new();
    loop {
        got.extend(listener.read().unwrap());
        if got.contains(&want) {
            return got;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {want:?} within {TIMEOUT:?}; got {got:?}"
        );
        let mut fds = [PollFd::new(listener.fd(), PollFlags::POLLIN)];
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }
}

fn type_byte(master: &OwnedFd, byte: u8) {
    assert_eq!(nix::unistd::write(master, &[byte]).unwrap(), 1);
}

fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one struct winsize through the valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(r, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
}

/// Fields of /proc/PID/stat after the command name: state, ppid, pgrp, session,
/// tty_nr, tpgid, ...; None once the process is gone.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

fn echo_is_on(fd: BorrowedFd<'_>) -> bool {
    tcgetattr(fd)
        .unwrap()
        .local_flags
        .contains(LocalFlags::ECHO)
}

fn set_echo(fd: BorrowedFd<'_>, on: bool) {
    let mut t = tcgetattr(fd).unwrap();
    t.local_flags.set(LocalFlags::ECHO, on);
    tcsetattr(fd, SetArg::TCSANOW, &t).unwrap();
}

fn pidfd_open(pid: i32) -> OwnedFd {
    // SAFETY: plain system call with integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(r >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
    // SAFETY: the kernel returned a new descriptor that we now own.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

/// Whether the process behind `pidfd` exits within the time limit.
fn exits_in_time(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let ms = u16::try_from(TIMEOUT.as_millis()).unwrap();
    poll(&mut fds, PollTimeout::from(ms)).unwrap() == 1
}

fn signals_of_the_terminal_reach_the_listener(method: SpawnMethod) {
    let (master, slave) = pty();
    let mut l = TtyListener::start_with_method(slave.as_fd(), method).unwrap();
    assert_eq!(l.spawn_method(), method);
    assert_eq!(
        l.read().unwrap(),
        vec![],
        "nothing before anything is typed"
    );
    for (byte, want) in [
        (0x03, TtySignal::Interrupt),
        (0x1c, TtySignal::Quit),
        (0x1a, TtySignal::Suspend),
        // ^Z did not stop the listener: it still reports.
        (0x03, TtySignal::Interrupt),
    ] {
        type_byte(&master, byte);
        assert_eq!(wait_for(&mut l, want), vec![want], "byte {byte:#04x}");
    }
    set_winsize(master.as_fd(), 40, 132);
    assert_eq!(
        wait_for(&mut l, TtySignal::WindowChanged),
        vec![TtySignal::WindowChanged]
    );
    // An ordinary character is input, not a signal.
    type_byte(&master, b'x');
    type_byte(&master, 0x03);
    assert_eq!(
        wait_for(&mut l, TtySignal::Interrupt),
        vec![TtySignal::Interrupt]
    );
}

#[test]
fn terminal_signals_reach_the_listener_clone3() {
    signals_of_the_terminal_reach_the_listener(SpawnMethod::Clone3);
}

#[test]
fn terminal_signals_reach_the_listener_clone() {
    signals_of_the_terminal_reach_the_listener(SpawnMethod::Clone);
}

#[test]
fn terminal_signals_reach_the_listener_fork() {
    signals_of_the_terminal_reach_the_listener(SpawnMethod::Fork);
}

#[test]
fn listener_leads_the_terminals_session_and_foreground_group() {
    let (_master, slave) = pty();
    let l = TtyListener::start(slave.as_fd()).unwrap();
    let pid = l.pid();
    let f = stat_fields(pid).unwrap();
    let num = |i: usize| f[i].parse::<i64>().unwrap();
    assert_eq!(num(1), i64::from(std::process::id()), "ppid");
    assert_eq!(num(2), i64::from(pid), "pgrp");
    assert_eq!(num(3), i64::from(pid), "session");
    assert_eq!(
        num(5),
        i64::from(pid),
        "tpgid: the terminal's foreground group"
    );
    // tty_nr: the slave is the session's controlling terminal.
    let tty_nr = num(4) as u64;
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    let rdev = nix::sys::stat::fstat(slave.as_fd()).unwrap().st_rdev;
    assert_eq!(
        (major, minor),
        (u64::from(libc::major(rdev)), u64::from(libc::minor(rdev)))
    );
    // It kept only the terminal, the pipe and its signalfd.
    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| std::fs::read_link(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(fds.len(), 3, "{fds:?}");
    // It runs under its own seccomp filter, with the reported signals blocked.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap()
    };
    assert_eq!(field("Seccomp:"), "2", "filter mode");
    let blocked = u64::from_str_radix(&field("SigBlk:"), 16).unwrap();
    for sig in [
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTSTP,
        libc::SIGWINCH,
        libc::SIGHUP,
    ] {
        assert_ne!(blocked & (1 << (sig - 1)), 0, "signal {sig} blocked");
    }
}

#[test]
fn dropping_the_listener_kills_it_and_frees_the_terminal() {
    let (master, slave) = pty();
    let l = TtyListener::start(slave.as_fd()).unwrap();
    let pid = l.pid();
    assert!(stat_fields(pid).is_some());
    drop(l);
    assert!(
        stat_fields(pid).is_none(),
        "no process left (killed and reaped)"
    );
    // The dead session leader released the terminal: another listener can take it.
    let mut again = TtyListener::start(slave.as_fd()).unwrap();
    assert_ne!(again.pid(), pid);
    type_byte(&master, 0x03);
    assert_eq!(
        wait_for(&mut again, TtySignal::Interrupt),
        vec![TtySignal::Interrupt]
    );
}

#[test]
fn a_terminal_with_a_session_is_refused() {
    let (master, slave) = pty();
    let mut first = TtyListener::start(slave.as_fd()).unwrap();
    let err = TtyListener::start(slave.as_fd()).unwrap_err();
    assert!(matches!(err, ListenerError::TerminalHasSession), "{err:?}");
    assert!(
        err.to_string()
            .contains("already the controlling terminal of a session"),
        "{err}"
    );
    // The refused listener is gone; the first still has the terminal.
    let f = stat_fields(first.pid()).unwrap();
    assert_eq!(f[5], first.pid().to_string(), "tpgid unchanged");
    type_byte(&master, 0x03);
    assert_eq!(
        wait_for(&mut first, TtySignal::Interrupt),
        vec![TtySignal::Interrupt]
    );
}

#[test]
fn a_descriptor_that_is_not_a_terminal_is_refused() {
    let null = std::fs::File::open("/dev/null").unwrap();
    let err = TtyListener::start(null.as_fd()).unwrap_err();
    assert!(matches!(err, ListenerError::NotATerminal), "{err:?}");
}

#[test]
fn shutdown_restores_the_termios_found_at_start() {
    let (_master, slave) = pty();
    set_echo(slave.as_fd(), false);
    let l = TtyListener::start(slave.as_fd()).unwrap();
    let pid = l.pid();
    set_echo(slave.as_fd(), true);
    assert!(echo_is_on(slave.as_fd()));
    l.shutdown(TIMEOUT).unwrap();
    assert!(!echo_is_on(slave.as_fd()), "the listener put -echo back");
    assert!(stat_fields(pid).is_none(), "reaped");
}

#[test]
fn hangup_is_reported_and_ends_the_listener() {
    let (master, slave) = pty();
    let mut l = TtyListener::start(slave.as_fd()).unwrap();
    let pidfd = pidfd_open(l.pid());
    drop(master);
    assert_eq!(wait_for(&mut l, TtySignal::Hangup), vec![TtySignal::Hangup]);
    assert!(exits_in_time(&pidfd), "the listener exits after a hangup");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match l.read() {
            Err(ListenerError::Gone) => break,
            Ok(v) => assert!(v.is_empty(), "{v:?}"),
            Err(e) => panic!("{e}"),
        }
        assert!(Instant::now() < deadline, "no end of file");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(l.is_gone());
    assert!(matches!(l.read(), Err(ListenerError::Gone)));
}

/// The stand-in loader: starts a listener on its stdin (the slave), prints its PID and
/// waits to be killed.
fn stand_in_loader() -> ! {
    let code = match TtyListener::start(std::io::stdin().as_fd()) {
        Ok(l) => {
            println!("LISTENER {}", l.pid());
            std::thread::sleep(Duration::from_secs(60));
            drop(l);
            3
        }
        Err(e) => {
            println!("ERROR {e}");
            2
        }
    };
    std::process::exit(code)
}

#[test]
fn loader_death_restores_the_termios_and_ends_the_listener() {
    if std::env::var_os(CHILD_ENV).is_some() {
        stand_in_loader();
    }
    // The orphaned listener is reparented to this process, which reaps it below.
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let (_master, slave) = pty();
    set_echo(slave.as_fd(), false);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "loader_death_restores_the_termios_and_ends_the_listener",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The harness's "test NAME ... " precedes it on the same line.
            if let Some(at) = line.find("LISTENER ").or_else(|| line.find("ERROR ")) {
                let _ = tx.send(line[at..].to_owned());
                break;
            }
        }
    });
    let line = rx.recv_timeout(TIMEOUT);
    let line = match line {
        Ok(l) => l,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the stand-in loader said nothing: {e}");
        }
    };
    let pid: i32 = match line.strip_prefix("LISTENER ") {
        Some(p) => p.parse().unwrap(),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{line}");
        }
    };
    let pidfd = pidfd_open(pid);
    assert_eq!(stat_fields(pid).unwrap()[5], pid.to_string(), "tpgid");
    set_echo(slave.as_fd(), true);

    // The loader dies without a chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(
        exits_in_time(&pidfd),
        "the listener exits once its reader is gone"
    );
    assert!(!echo_is_on(slave.as_fd()), "the listener put -echo back");
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    assert_eq!(
        status,
        nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 0)
    );
}
