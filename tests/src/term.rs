//! Driving programs through a pseudo-terminal as a person would, and reading the screen.
//!
//! [`Term`] starts a program as the session leader of a fresh pty (the pty becomes its
//! controlling terminal, as a terminal emulator or `sshd` does), feeds everything the
//! program writes to a `vt100` screen on a reader thread, and lets a test type keys,
//! resize the window, signal the program and wait for what appears. Every wait has a
//! timeout, and a timeout reports the screen as it was. No wait is a fixed delay: each
//! waits for a condition — the screen, or the processes as /proc shows them (state,
//! foreground group, the system call a process is blocked in, pending signals) where
//! the sandbox keeps the fact from the host (see [`ShellSession::wait_foreground`] and
//! [`ShellSession::resize_delivered`]).
//!
//! [`Shell`] knows how to start bash, zsh, fish and dash without user configuration and
//! with a prompt that is easy to recognise; [`ShellSession`] types commands and waits for
//! the next prompt. [`Launcher`] runs the same shell either directly on the pty (the
//! reference: real Linux job control) or through `sandbox run --tty --`, so one scenario
//! checks both.
//!
//! Signal characters are the defaults of a fresh pty: ^C = VINTR (`"\x03"`), ^\ = VQUIT
//! (`"\x1c"`), ^Z = VSUSP (`"\x1a"`), ^D = VEOF (`"\x04"`).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
pub use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Default time to wait for something to appear: generous, for a loaded 2-core machine.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed for a shell to start and print its first prompt.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Default window size of a [`ShellSession`].
pub const DEFAULT_ROWS: u16 = 40;
pub const DEFAULT_COLS: u16 = 120;

/// Name of the environment variable that marks every process started from one
/// [`Term`], so that the whole tree can be found (and killed) even where it left the
/// parent/child links or the session.
pub const MARKER_VAR: &str = "SANDBOX_E2E_TERM";

/// Keys.
pub mod keys {
    /// ^C: VINTR, SIGINT to the foreground process group.
    pub const CTRL_C: &str = "\x03";
    /// ^\: VQUIT, SIGQUIT to the foreground process group.
    pub const CTRL_BACKSLASH: &str = "\x1c";
    /// ^Z: VSUSP, SIGTSTP to the foreground process group.
    pub const CTRL_Z: &str = "\x1a";
    /// ^D: VEOF, end of file for a canonical read.
    pub const CTRL_D: &str = "\x04";
    /// Escape.
    pub const ESC: &str = "\x1b";
}

// ---------------------------------------------------------------------------------
// Screen snapshots and patterns
// ---------------------------------------------------------------------------------

/// A snapshot of the terminal's screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Screen {
    rows: Vec<String>,
    cursor: (u16, u16),
    size: (u16, u16),
    alternate: bool,
    /// Rows that have scrolled off the top of the normal screen since the start.
    scrolled: u64,
    /// The terminal's master side has reached end of file (every slave is closed).
    closed: bool,
}

impl Screen {
    /// Every visible row, without trailing blanks.
    pub fn rows(&self) -> &[String] {
        &self.rows
    }

    /// The visible text: rows joined by newlines, trailing empty rows dropped.
    pub fn text(&self) -> String {
        let last = self
            .rows
            .iter()
            .rposition(|r| !r.trim_end().is_empty())
            .map_or(0, |i| i + 1);
        self.rows[..last]
            .iter()
            .map(|r| r.trim_end())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether `needle` appears on one visible row.
    pub fn contains(&self, needle: &str) -> bool {
        self.rows.iter().any(|r| r.contains(needle))
    }

    /// (row, col) of the cursor, from 0.
    pub fn cursor(&self) -> (u16, u16) {
        self.cursor
    }

    /// (rows, cols).
    pub fn size(&self) -> (u16, u16) {
        self.size
    }

    /// Whether a full-screen program switched to the alternate screen.
    pub fn alternate_screen(&self) -> bool {
        self.alternate
    }

    /// Whether every process closed the terminal (the master read end of file).
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// The row the cursor is on.
    pub fn cursor_row(&self) -> &str {
        self.rows
            .get(usize::from(self.cursor.0))
            .map_or("", String::as_str)
    }

    /// The text of the cursor's row left of the cursor.
    pub fn before_cursor(&self) -> String {
        self.cursor_row()
            .chars()
            .take(usize::from(self.cursor.1))
            .collect()
    }

    /// The cursor's row counted from the first row ever shown on the normal screen
    /// (rows that scrolled off count), so that positions compare across scrolling.
    pub fn cursor_line(&self) -> u64 {
        self.scrolled + u64::from(self.cursor.0)
    }

    /// The visible rows strictly between absolute lines `after` and `before`
    /// ([`Screen::cursor_line`] numbering), trimmed; rows that scrolled off are lost.
    pub fn lines_between(&self, after: u64, before: u64) -> Vec<String> {
        (after.saturating_add(1)..before)
            .filter_map(|abs| abs.checked_sub(self.scrolled))
            .filter_map(|i| usize::try_from(i).ok())
            .filter_map(|i| self.rows.get(i))
            .map(|r| r.trim_end().to_string())
            .collect()
    }
}

impl fmt::Display for Screen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (rows, cols) = self.size;
        writeln!(
            f,
            "+--- screen {rows}x{cols}, cursor at row {} col {}{}{} ---",
            self.cursor.0,
            self.cursor.1,
            if self.alternate {
                ", alternate screen"
            } else {
                ""
            },
            if self.closed { ", terminal closed" } else { "" }
        )?;
        for line in self.text().lines() {
            writeln!(f, "| {line}")?;
        }
        write!(f, "+---")
    }
}

/// Something to wait for on the screen.
pub trait Pattern {
    fn matches(&self, screen: &Screen) -> bool;
    /// What is waited for, for error messages.
    fn describe(&self) -> String;
}

/// Text on one visible row.
impl Pattern for &str {
    fn matches(&self, screen: &Screen) -> bool {
        screen.contains(self)
    }
    fn describe(&self) -> String {
        format!("{self:?} on the screen")
    }
}

impl Pattern for String {
    fn matches(&self, screen: &Screen) -> bool {
        screen.contains(self)
    }
    fn describe(&self) -> String {
        format!("{self:?} on the screen")
    }
}

/// A described predicate on the screen: `wait_for(until("vim's tildes", |s| ...), t)`.
pub struct Until<F> {
    what: String,
    pred: F,
}

/// A predicate on the screen, described for error messages.
pub fn until<F: Fn(&Screen) -> bool>(what: impl Into<String>, pred: F) -> Until<F> {
    Until {
        what: what.into(),
        pred,
    }
}

impl<F: Fn(&Screen) -> bool> Pattern for Until<F> {
    fn matches(&self, screen: &Screen) -> bool {
        (self.pred)(screen)
    }
    fn describe(&self) -> String {
        self.what.clone()
    }
}

/// What went wrong while waiting: the screen at the time says why.
pub struct TimeoutError {
    pub waited_for: String,
    pub elapsed: Duration,
    pub screen: Screen,
    /// Extra facts (the child's exit status, the processes of the terminal).
    pub note: String,
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.screen.closed {
            "the terminal closed before"
        } else {
            "timed out after"
        };
        writeln!(
            f,
            "waiting for {}: {how} {:.1?}",
            self.waited_for, self.elapsed
        )?;
        if !self.note.is_empty() {
            writeln!(f, "{}", self.note)?;
        }
        write!(f, "{}", self.screen)
    }
}

// `unwrap()` prints Debug: make it the readable form.
impl fmt::Debug for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for TimeoutError {}

// ---------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------

/// One process as the host's /proc shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i32,
    pub comm: String,
    /// R, S, T (stopped), t (traced), Z...
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    pub tty_nr: i32,
    pub tpgid: i32,
    /// argv, NUL-separated arguments turned into a list.
    pub cmdline: Vec<String>,
}

impl ProcInfo {
    /// Reads /proc/PID; None if the process is gone.
    pub fn read(pid: i32) -> Option<ProcInfo> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat.get(open + 1..close)?.to_string();
        let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
        let num = |i: usize| rest.get(i).and_then(|s| s.parse::<i32>().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|&c| c == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        Some(ProcInfo {
            pid,
            comm,
            state: rest.first()?.chars().next()?,
            ppid: num(1)?,
            pgrp: num(2)?,
            session: num(3)?,
            tty_nr: num(4)?,
            tpgid: num(5)?,
            cmdline,
        })
    }

    /// Every process on the host.
    pub fn all() -> Vec<ProcInfo> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(ProcInfo::read)
            .collect()
    }

    /// Whether the process's environment holds `var=value`.
    pub fn has_env(pid: i32, var: &str, value: &str) -> bool {
        let want = format!("{var}={value}");
        std::fs::read(format!("/proc/{pid}/environ"))
            .map(|b| b.split(|&c| c == 0).any(|e| e == want.as_bytes()))
            .unwrap_or(false)
    }

    /// The system call thread `tid` of process `pid` is blocked in: the first field of
    /// `/proc/PID/task/TID/syscall` (Linux fills it in only for a thread that is not
    /// running). None if the thread runs, is gone, or the file is not readable (it
    /// needs ptrace access to the process).
    pub fn blocked_syscall(pid: i32, tid: i32) -> Option<i64> {
        ProcInfo::blocked_call(pid, tid).map(|(nr, _)| nr)
    }

    /// As [`ProcInfo::blocked_syscall`], with the call's six arguments.
    pub fn blocked_call(pid: i32, tid: i32) -> Option<(i64, Vec<u64>)> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
        let mut fields = s.split_whitespace();
        let nr = fields.next()?.parse().ok()?;
        let args = fields
            .take(6)
            .filter_map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
            .collect();
        Some((nr, args))
    }

    /// Whether thread `tid` of `pid` waits for a seccomp user-notification answer (its
    /// `wchan` is the kernel's `seccomp_do_user_notification`): then the system call
    /// [`ProcInfo::blocked_syscall`] shows has not run yet.
    pub fn in_seccomp_notification(pid: i32, tid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/wchan"))
            .is_ok_and(|w| w.starts_with("seccomp"))
    }

    /// Whether the process (its main thread) is blocked in the host kernel in one of
    /// `calls`, not held in a seccomp notification.
    pub fn blocked_in(pid: i32, calls: &[libc::c_long]) -> bool {
        ProcInfo::blocked_syscall(pid, pid).is_some_and(|n| calls.contains(&n))
            && !ProcInfo::in_seccomp_notification(pid, pid)
    }

    /// Whether `sig` is pending for the process as a whole (`ShdPnd` in
    /// /proc/PID/status: a signal sent to the process or its group that no thread has
    /// taken yet, e.g. one blocked everywhere and waiting for a signalfd read).
    pub fn shared_signal_pending(pid: i32, sig: Signal) -> bool {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            return false;
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("ShdPnd:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .is_some_and(|mask| mask & (1u64 << (sig as i32 - 1)) != 0)
    }

    /// The thread IDs of the process.
    pub fn threads(pid: i32) -> Vec<i32> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the process has ended (gone, or a zombie waiting to be reaped).
    pub fn is_gone(pid: i32) -> bool {
        match ProcInfo::read(pid) {
            Some(p) => p.state == 'Z' || p.state == 'X',
            None => true,
        }
    }
}

/// Processes (not zombies) whose argv contains `marker` as one argument.
pub fn processes_with_arg(marker: &str) -> Vec<ProcInfo> {
    ProcInfo::all()
        .into_iter()
        .filter(|p| p.state != 'Z' && p.cmdline.iter().any(|a| a == marker))
        .collect()
}

// ---------------------------------------------------------------------------------
// The terminal
// ---------------------------------------------------------------------------------

/// Answers the queries a terminal answers (cursor position, status, primary device
/// attributes), as a real terminal emulator would; counts rows scrolled off.
#[derive(Default)]
struct Emulator {
    replies: Vec<u8>,
    scrolled: u64,
}

impl vt100::Callbacks for Emulator {
    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        _i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        let first = params.first().and_then(|p| p.first()).copied().unwrap_or(0);
        match (i1, c, first) {
            // DSR 6: cursor position report, 1-based.
            (None, 'n', 6) => {
                let (row, col) = screen.cursor_position();
                self.replies
                    .extend_from_slice(format!("\x1b[{};{}R", row + 1, col + 1).as_bytes());
            }
            // DSR 5: terminal status "OK".
            (None, 'n', 5) => self.replies.extend_from_slice(b"\x1b[0n"),
            // DA1: a VT100 with advanced video option.
            (None, 'c', 0) => self.replies.extend_from_slice(b"\x1b[?1;2c"),
            _ => {}
        }
    }

    fn on_scroll(&mut self, _contents: vt100::capture::RowContents<'_>, alternate_screen: bool) {
        if !alternate_screen {
            self.scrolled += 1;
        }
    }
}

struct State {
    parser: vt100::Parser<Emulator>,
    /// Everything the program wrote, raw.
    transcript: Vec<u8>,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic on the reader thread leaves the state usable: take it anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn snapshot(st: &State) -> Screen {
    let screen = st.parser.screen();
    let (rows, cols) = screen.size();
    Screen {
        rows: screen.rows(0, cols.get()).collect(),
        cursor: screen.cursor_position(),
        size: (rows.get(), cols.get()),
        alternate: screen.alternate_screen(),
        scrolled: st.parser.callbacks().scrolled,
        closed: st.closed,
    }
}

fn nonzero(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).unwrap_or(std::num::NonZeroU16::MIN)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A program running as the session leader of its own pty, with the pty as its
/// controlling terminal; the test holds the master side.
pub struct Term {
    master: File,
    child: Mutex<Child>,
    pid: i32,
    status: Mutex<Option<ExitStatus>>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    /// Unique value of [`MARKER_VAR`] in the environment of the child.
    marker: String,
    home: PathBuf,
}

impl Term {
    /// Starts `argv` on a new `rows`×`cols` pty. The environment is cleared and then
    /// made of: PATH (the test's), HOME and XDG_* (a fresh empty directory, also the
    /// working directory), TERM=xterm-256color, LANG=C.UTF-8, [`MARKER_VAR`], then `env`.
    pub fn spawn<S: AsRef<OsStr>>(
        argv: &[S],
        env: &[(&str, &str)],
        rows: u16,
        cols: u16,
    ) -> io::Result<Term> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty argv"))?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let marker = format!("{}-{id}", std::process::id());
        let home = std::env::temp_dir().join(format!("sandbox-e2e-{marker}"));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home)?;
        Term::start(
            program.as_ref(),
            args,
            env,
            rows,
            cols,
            marker,
            home.clone(),
        )
        .inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&home);
        })
    }

    fn start<S: AsRef<OsStr>>(
        program: &OsStr,
        args: &[S],
        env: &[(&str, &str)],
        rows: u16,
        cols: u16,
        marker: String,
        home: PathBuf,
    ) -> io::Result<Term> {
        // The master is opened close-on-exec so that no other test's child inherits
        // it (which would keep the terminal from hanging up).
        let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .map_err(io::Error::from)?;
        nix::pty::grantpt(&master).map_err(io::Error::from)?;
        nix::pty::unlockpt(&master).map_err(io::Error::from)?;
        let slave_name = nix::pty::ptsname_r(&master).map_err(io::Error::from)?;
        let master: File = OwnedFd::from(master).into();
        sys::set_winsize(master.as_fd(), rows, cols)?;
        // std opens with O_CLOEXEC; stdio redirection in the child clears it on 0, 1, 2.
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&slave_name)?;

        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("TERM", "xterm-256color")
            .env("LANG", "C.UTF-8")
            .env(MARKER_VAR, &marker)
            .env("SANDBOX_LOCKSTEP_REPORT", home.join(LOCKSTEP_REPORT))
            .current_dir(&home)
            .stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave));
        for (k, v) in env {
            cmd.env(k, v);
        }
        // Debugging a failing test: the sandbox's log goes to a file, never the screen.
        if let Some(f) = std::env::var_os("SANDBOX_LOG_FILE") {
            cmd.env("SANDBOX_LOG_FILE", f);
            if let Some(l) = std::env::var_os("RUST_LOG") {
                cmd.env("RUST_LOG", l);
            }
        }
        sys::become_session_leader_on_stdin(&mut cmd);
        let child = cmd.spawn()?;
        // `cmd` still holds the slave descriptors: drop them now so that the master
        // reads end of file when the child's session has closed the terminal.
        drop(cmd);

        let parser =
            vt100::Parser::new_with_callbacks(nonzero(rows), nonzero(cols), 0, Emulator::default());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                parser,
                transcript: Vec::new(),
                closed: false,
            }),
            changed: Condvar::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            let master = master.try_clone()?;
            std::thread::Builder::new()
                .name(format!("pty-reader-{marker}"))
                .spawn(move || read_loop(master, shared, stop))?
        };
        Ok(Term {
            master,
            // PIDs fit in i32 on Linux (pid_max ≤ 2^22).
            pid: i32::try_from(child.id()).unwrap_or(i32::MAX),
            child: Mutex::new(child),
            status: Mutex::new(None),
            shared,
            stop,
            reader: Some(reader),
            marker,
            home,
        })
    }

    /// Types `s`.
    pub fn send(&self, s: &str) -> io::Result<()> {
        self.send_bytes(s.as_bytes())
    }

    /// Types raw bytes.
    pub fn send_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        (&self.master).write_all(bytes)
    }

    /// The screen now.
    pub fn screen(&self) -> Screen {
        snapshot(&self.shared.lock())
    }

    /// The visible text now.
    pub fn screen_text(&self) -> String {
        self.screen().text()
    }

    /// Everything the program wrote so far, escape sequences included.
    pub fn transcript(&self) -> Vec<u8> {
        self.shared.lock().transcript.clone()
    }

    /// Waits until `pattern` matches the screen; fails after `timeout`, or at once
    /// when the terminal has closed and the pattern still does not match.
    pub fn wait_for<P: Pattern>(
        &self,
        pattern: P,
        timeout: Duration,
    ) -> Result<Screen, TimeoutError> {
        let start = Instant::now();
        let mut st = self.shared.lock();
        loop {
            let screen = snapshot(&st);
            if pattern.matches(&screen) {
                return Ok(screen);
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout || screen.closed {
                drop(st);
                return Err(TimeoutError {
                    waited_for: pattern.describe(),
                    elapsed,
                    screen,
                    note: self.describe_processes(),
                });
            }
            let left = (timeout - elapsed).min(Duration::from_millis(200));
            st = self
                .shared
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The master side of the pty (for ioctls a test makes on the terminal from
    /// outside: TIOCGSID, TIOCGLCKTRMIOS, TIOCGWINSZ report the slave's).
    pub fn master_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.master.as_fd()
    }

    /// The terminal's current modes (read through the master).
    pub fn termios(&self) -> io::Result<nix::sys::termios::Termios> {
        nix::sys::termios::tcgetattr(self.master.as_fd()).map_err(io::Error::from)
    }

    /// Waits until `cond` holds (polled every 10 ms), for conditions outside the
    /// screen (processes, exit). The error shows the screen.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut() -> bool,
    ) -> Result<(), TimeoutError> {
        let start = Instant::now();
        loop {
            if cond() {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(self.error(what, start.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// An error about `what`, carrying the current screen and processes.
    pub fn error(&self, what: &str, elapsed: Duration) -> TimeoutError {
        TimeoutError {
            waited_for: what.to_string(),
            elapsed,
            screen: self.screen(),
            note: self.describe_processes(),
        }
    }

    /// Resizes the window: TIOCSWINSZ on the master (the kernel sends SIGWINCH to the
    /// terminal's foreground process group) and the screen model follows.
    pub fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        {
            let mut st = self.shared.lock();
            st.parser.set_size(nonzero(rows), nonzero(cols));
        }
        sys::set_winsize(self.master.as_fd(), rows, cols)
    }

    /// PID of the program started on the terminal.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The terminal's foreground process group as the host kernel sees it
    /// (TIOCGPGRP on the master reports the slave's).
    pub fn foreground_pgrp(&self) -> Option<i32> {
        nix::unistd::tcgetpgrp(self.master.as_fd())
            .ok()
            .map(|p| p.as_raw())
    }

    /// Sends `sig` to the program started on the terminal.
    pub fn kill(&self, sig: Signal) -> io::Result<()> {
        nix::sys::signal::kill(Pid::from_raw(self.pid()), sig).map_err(io::Error::from)
    }

    /// Waits for the program started on the terminal to end and reaps it.
    pub fn wait_exit(&self, timeout: Duration) -> Result<ExitStatus, TimeoutError> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.try_status() {
                return Ok(s);
            }
            if start.elapsed() >= timeout {
                return Err(self.error("the program to exit", start.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The child's exit status if it has ended (reaping it).
    pub fn try_status(&self) -> Option<ExitStatus> {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if status.is_none() {
            let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
            *status = child.try_wait().ok().flatten();
        }
        *status
    }

    /// The value of [`MARKER_VAR`] in this terminal's processes.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// The fresh directory used as HOME and working directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Every live process started from this terminal: the child, its descendants,
    /// the members of its session, and any process carrying this terminal's marker
    /// in its environment.
    pub fn processes(&self) -> Vec<ProcInfo> {
        let root = self.pid();
        let all = ProcInfo::all();
        let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in &all {
            children.entry(p.ppid).or_default().push(p.pid);
        }
        let mut keep: BTreeSet<i32> = BTreeSet::new();
        // Once the child is reaped its PID may be reused: no tree from it then. (A
        // session ID stays allocated while the session has members, so matching on
        // it is safe.)
        let mut todo = if self.try_status().is_none() {
            vec![root]
        } else {
            Vec::new()
        };
        while let Some(p) = todo.pop() {
            if keep.insert(p) {
                todo.extend(children.get(&p).into_iter().flatten());
            }
        }
        all.into_iter()
            .filter(|p| p.state != 'Z')
            .filter(|p| {
                keep.contains(&p.pid)
                    || p.session == root
                    || ProcInfo::has_env(p.pid, MARKER_VAR, &self.marker)
            })
            .collect()
    }

    /// One line per process of the terminal, for error messages.
    pub fn describe_processes(&self) -> String {
        let mut s = match self.try_status() {
            Some(st) => format!("the terminal's program {} ended: {st}\n", self.pid),
            None => String::new(),
        };
        s.push_str("processes (pid ppid pgrp sid tpgid state argv):");
        for p in self.processes() {
            s.push_str(&format!(
                "\n  {} {} {} {} {} {} {}",
                p.pid,
                p.ppid,
                p.pgrp,
                p.session,
                p.tpgid,
                p.state,
                p.cmdline.join(" ")
            ));
        }
        s
    }

    /// Waits for a process of this terminal whose argv equals `argv` and returns it.
    pub fn wait_process(&self, argv: &[&str], timeout: Duration) -> Result<ProcInfo, TimeoutError> {
        let mut found = None;
        self.wait_until(&format!("a process {argv:?}"), timeout, || {
            found = self.processes().into_iter().find(|p| p.cmdline == argv);
            found.is_some()
        })?;
        found.ok_or_else(|| self.error("a process", Duration::ZERO))
    }

    /// Kills every process of the terminal (SIGKILL) until none is left, and reaps
    /// the child.
    pub fn kill_all(&self) {
        for _ in 0..50 {
            let victims: Vec<i32> = self
                .processes()
                .into_iter()
                .map(|p| p.pid)
                .filter(|&p| p != std::process::id() as i32)
                .collect();
            for &p in &victims {
                let _ = nix::sys::signal::kill(Pid::from_raw(p), Signal::SIGKILL);
            }
            if victims.is_empty() && self.try_status().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        // A sandboxed session must end without any disagreement between the host and
        // the sentry (the loader appends each one to this file as it finds it).
        let report = std::fs::read_to_string(self.home.join(LOCKSTEP_REPORT)).unwrap_or_default();
        // The child's own process group first (cheap and immediate; not once the
        // child is reaped, when its PID may name someone else's group), then the tree.
        if self.try_status().is_none() {
            let _ = nix::sys::signal::kill(Pid::from_raw(-self.pid()), Signal::SIGKILL);
        }
        self.kill_all();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let _ = std::fs::remove_dir_all(&self.home);
        if !report.is_empty() && !std::thread::panicking() {
            panic!("the sandbox reported lockstep violations:\n{report}");
        }
    }
}

/// File (in the session's HOME) where `sandbox` appends lockstep violations.
const LOCKSTEP_REPORT: &str = "lockstep-violations.txt";

fn read_loop(mut master: File, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let mut buf = [0u8; 8192];
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::from(50u16)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let n = match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // EIO: every slave descriptor is closed.
            Err(_) => break,
        };
        let replies = {
            let mut st = shared.lock();
            st.parser.process(&buf[..n]);
            st.transcript.extend_from_slice(&buf[..n]);
            std::mem::take(&mut st.parser.callbacks_mut().replies)
        };
        shared.changed.notify_all();
        if !replies.is_empty() {
            let _ = master.write_all(&replies);
        }
    }
    shared.lock().closed = true;
    shared.changed.notify_all();
}

/// The few calls std and nix do not wrap safely.
mod sys {
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd};
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// In the child, between fork and exec: every signal's disposition back to
    /// SIG_DFL, as a terminal emulator starts a login shell (an ignored disposition
    /// survives exec: a test runner started as a background job of a non-interactive
    /// shell ignores SIGINT and SIGQUIT, and so would every job of the shells started
    /// here, making ^C do nothing); a new session (`setsid`); then standard input, the
    /// pty slave, becomes its controlling terminal (`TIOCSCTTY`: a session leader
    /// without a controlling terminal may take one that has no session). std has
    /// already emptied the signal mask.
    pub(super) fn become_session_leader_on_stdin(cmd: &mut Command) {
        // SAFETY: the closure runs in the forked child before exec; it only calls
        // signal, setsid and ioctl, which are async-signal-safe, and allocates nothing
        // (io::Error::last_os_error builds an OS-code value without allocating).
        unsafe {
            cmd.pre_exec(|| {
                // The standard signals, 1 to 31.
                for sig in 1..32 {
                    // SIGKILL and SIGSTOP (and unused numbers) refuse: nothing to reset.
                    if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                        libc::signal(sig, libc::SIG_DFL);
                    }
                }
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// TIOCSWINSZ: sets the window size; on a pty master the kernel sends SIGWINCH to
    /// the slave's foreground process group when the size changes.
    pub(super) fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: `fd` is an open descriptor borrowed for the duration of the call and
        // `ws` is a valid winsize that outlives it; TIOCSWINSZ only reads it.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// Shells
// ---------------------------------------------------------------------------------

/// The interactive shells the scenarios run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Dash,
}

impl Shell {
    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
            Shell::Dash => "dash",
        }
    }

    /// The prompt, unique to the shell and free of anything a command prints.
    pub fn prompt(self) -> String {
        format!("{}-e2e$ ", self.name())
    }

    /// argv that starts the shell interactive, without user configuration, with
    /// [`Shell::prompt`].
    pub fn argv(self) -> Vec<String> {
        let v: &[&str] = match self {
            Shell::Bash => &["bash", "--norc", "--noprofile", "-i"],
            // -f: no startup files. PROMPT_SP would print a marker line for partial
            // output; the scenarios do not need it.
            Shell::Zsh => &["zsh", "-f", "-i", "+o", "promptsp"],
            // -C runs after (no) configuration: a fixed prompt, no greeting, no
            // right prompt, no autosuggestions, no mode indicator.
            Shell::Fish => &[
                "fish",
                "--no-config",
                "-i",
                "-C",
                "function fish_prompt; printf '%s' 'fish-e2e$ '; end; \
                 function fish_right_prompt; end; \
                 function fish_mode_prompt; end; \
                 set -g fish_greeting ''; \
                 set -g fish_autosuggestion_enabled 0",
            ],
            Shell::Dash => &["dash", "-i"],
        };
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Environment the shell needs besides [`Term::spawn`]'s.
    pub fn env(self) -> Vec<(String, String)> {
        let mut env = vec![("PS1".to_string(), self.prompt())];
        match self {
            Shell::Bash | Shell::Zsh => {
                env.push(("HISTFILE".into(), "/dev/null".into()));
                env.push(("PS2".into(), "> ".into()));
            }
            Shell::Fish => {}
            Shell::Dash => env.push(("PS2".into(), "> ".into())),
        }
        env
    }

    /// The expression that expands to the last command's status.
    pub fn status_expr(self) -> &'static str {
        match self {
            Shell::Fish => "$status",
            _ => "$?",
        }
    }

    /// The expression that expands to the shell's own PID.
    pub fn pid_expr(self) -> &'static str {
        match self {
            Shell::Fish => "$fish_pid",
            _ => "$$",
        }
    }

    /// Whether the shell is installed (found on PATH).
    pub fn installed(self) -> bool {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(self.name()).is_file()))
    }
}

/// How a scenario starts its program on the terminal.
#[derive(Clone, Debug)]
pub enum Launcher {
    /// The program itself is the pty's session leader: real Linux job control.
    Direct,
    /// `SANDBOX run --tty -- PROGRAM...` (the borrowed terminal).
    Sandbox(PathBuf),
    /// `SANDBOX run --tty=pty -- PROGRAM...` (a pty of the sandbox's own, proxied).
    SandboxPty(PathBuf),
    /// `SANDBOX --root ROOT exec --tty[=pty] -e ... ID -- PROGRAM...`: a process
    /// executed into the running sandbox ID (`run -d`), on the borrowed terminal or,
    /// with `pty`, a pty of the sandbox's own proxied by the exec client. The
    /// terminal's environment ([`Term::spawn`]'s and the shell's) is passed with `-e`.
    SandboxExec {
        bin: PathBuf,
        root: PathBuf,
        id: String,
        pty: bool,
    },
}

/// The variables a [`Launcher::SandboxExec`] passes to the exec'd process.
const EXEC_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "TERM",
    "LANG",
    MARKER_VAR,
    "SANDBOX_LOCKSTEP_REPORT",
    "PS1",
    "PS2",
    "HISTFILE",
];

impl Launcher {
    /// The sandbox launcher for the `sandbox` binary at `bin`.
    pub fn sandbox(bin: impl Into<PathBuf>) -> Launcher {
        Launcher::Sandbox(bin.into())
    }

    /// The sandbox launcher with an owned pty (`--tty=pty`).
    pub fn sandbox_pty(bin: impl Into<PathBuf>) -> Launcher {
        Launcher::SandboxPty(bin.into())
    }

    pub fn is_sandbox(&self) -> bool {
        !matches!(self, Launcher::Direct)
    }

    /// `sandbox exec` (see [`Launcher::SandboxExec`]).
    pub fn is_exec(&self) -> bool {
        matches!(self, Launcher::SandboxExec { .. })
    }

    /// Through the sandbox with a pty of its own: the host sees the real controlling
    /// terminal, so TPGID and `tty` are exact.
    pub fn is_owned_pty(&self) -> bool {
        matches!(
            self,
            Launcher::SandboxPty(_) | Launcher::SandboxExec { pty: true, .. }
        )
    }

    /// The argv that runs `program` this way.
    pub fn argv(&self, program: &[String]) -> Vec<String> {
        match self {
            Launcher::Direct => program.to_vec(),
            Launcher::SandboxExec { bin, root, id, pty } => {
                let mut v = vec![
                    bin.to_string_lossy().into_owned(),
                    "--root".to_string(),
                    root.to_string_lossy().into_owned(),
                    "exec".to_string(),
                    if *pty { "--tty=pty" } else { "--tty" }.to_string(),
                ];
                for var in EXEC_ENV {
                    v.push("-e".to_string());
                    v.push(var.to_string());
                }
                v.push(id.clone());
                v.push("--".to_string());
                v.extend_from_slice(program);
                v
            }
            Launcher::Sandbox(bin) | Launcher::SandboxPty(bin) => {
                let tty = if self.is_owned_pty() {
                    "--tty=pty"
                } else {
                    "--tty"
                };
                let mut v = vec![
                    bin.to_string_lossy().into_owned(),
                    "run".to_string(),
                    tty.to_string(),
                    "--".to_string(),
                ];
                v.extend_from_slice(program);
                v
            }
        }
    }

    /// Starts `program` on a new terminal this way.
    pub fn spawn(
        &self,
        program: &[String],
        env: &[(&str, &str)],
        rows: u16,
        cols: u16,
    ) -> io::Result<Term> {
        Term::spawn(&self.argv(program), env, rows, cols)
    }

    /// Starts `shell` on a new [`DEFAULT_ROWS`]×[`DEFAULT_COLS`] terminal and waits for
    /// its first prompt. Panics (the test fails) when the shell is not installed or
    /// does not start.
    #[track_caller]
    pub fn shell(&self, shell: Shell) -> ShellSession {
        assert!(
            shell.installed(),
            "{} is not installed (apt-get install -y zsh fish dash procps)",
            shell.name()
        );
        let env = shell.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let term = match self.spawn(&shell.argv(), &env, DEFAULT_ROWS, DEFAULT_COLS) {
            Ok(t) => t,
            Err(e) => panic!("starting {:?}: {e}", self.argv(&shell.argv())),
        };
        let session = ShellSession {
            term,
            shell,
            prompt: shell.prompt(),
            current: shell,
            sandboxed: self.is_sandbox(),
            owned_pty: self.is_owned_pty(),
            exec_client: self.is_exec(),
        };
        if let Err(e) = session.wait_prompt(STARTUP_TIMEOUT) {
            panic!("{} did not show its first prompt: {e}", shell.name());
        }
        session
    }
}

/// An interactive shell on a [`Term`].
pub struct ShellSession {
    pub term: Term,
    pub shell: Shell,
    /// The prompt now expected (see [`ShellSession::set_prompt`]).
    prompt: String,
    /// The shell now reading commands at the terminal.
    current: Shell,
    /// Started through `sandbox run`.
    sandboxed: bool,
    /// Started through `sandbox run --tty=pty` (or `exec --tty=pty`).
    owned_pty: bool,
    /// Started through `sandbox exec`.
    exec_client: bool,
}

impl std::ops::Deref for ShellSession {
    type Target = Term;
    fn deref(&self) -> &Term {
        &self.term
    }
}

impl std::ops::DerefMut for ShellSession {
    fn deref_mut(&mut self) -> &mut Term {
        &mut self.term
    }
}

impl ShellSession {
    /// The prompt now expected.
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// The shell now reading commands (see [`ShellSession::set_prompt`]).
    pub fn current(&self) -> Shell {
        self.current
    }

    /// Expects `shell` with `prompt` at the terminal from now on (a nested shell, then
    /// the outer one again).
    pub fn set_prompt(&mut self, shell: Shell, prompt: &str) {
        self.current = shell;
        self.prompt = prompt.to_string();
    }

    /// Whether `screen` shows an empty prompt with the cursor right after it.
    pub fn at_prompt(&self, screen: &Screen) -> bool {
        !screen.alternate_screen() && screen.before_cursor() == self.prompt
    }

    /// Waits for an empty prompt with the cursor after it.
    pub fn wait_prompt(&self, timeout: Duration) -> Result<Screen, TimeoutError> {
        let desc = format!("an empty prompt {:?} at the cursor", self.prompt);
        self.term
            .wait_for(until(desc, |s: &Screen| self.at_prompt(s)), timeout)
    }

    /// Waits for an empty prompt on a line below absolute line `line`.
    pub fn wait_prompt_after(&self, line: u64, timeout: Duration) -> Result<Screen, TimeoutError> {
        let desc = format!("a new prompt {:?} below line {line}", self.prompt);
        self.term.wait_for(
            until(desc, move |s: &Screen| {
                self.at_prompt(s) && s.cursor_line() > line
            }),
            timeout,
        )
    }

    /// Types `cmd` and Enter, then waits for the next prompt; returns what appeared
    /// between the command line and that prompt (trimmed lines).
    pub fn run(&self, cmd: &str) -> Result<String, TimeoutError> {
        self.run_timeout(cmd, DEFAULT_TIMEOUT)
    }

    pub fn run_timeout(&self, cmd: &str, timeout: Duration) -> Result<String, TimeoutError> {
        self.wait_prompt(timeout)?;
        let line = self.type_line(cmd, timeout)?;
        let screen = self.wait_prompt_after(line, timeout)?;
        Ok(output_between(&screen, line))
    }

    /// Types `cmd` and Enter at the prompt without waiting for the next prompt (for
    /// foreground jobs); returns the absolute line where the command line ends, for
    /// [`ShellSession::wait_prompt_after`] and [`ShellSession::output_since`].
    pub fn start(&self, cmd: &str) -> Result<u64, TimeoutError> {
        self.wait_prompt(DEFAULT_TIMEOUT)?;
        self.type_line(cmd, DEFAULT_TIMEOUT)
    }

    /// Types `cmd`, waits for its echo at the cursor (so that a prompt the shell
    /// redraws meanwhile, e.g. after a job notification, is not taken for the next
    /// one), then Enter. Returns the absolute line of the cursor after the echo.
    fn type_line(&self, cmd: &str, timeout: Duration) -> Result<u64, TimeoutError> {
        let io_err = |e: io::Error| {
            self.term
                .error(&format!("typing {cmd:?}: {e}"), Duration::ZERO)
        };
        let start = self.term.screen().cursor_line();
        self.term.send(cmd).map_err(io_err)?;
        let want = cmd.trim_end().to_string();
        let echoed = self.term.wait_for(
            until(
                format!("the echo of {cmd:?} at the cursor"),
                move |s: &Screen| typed_text(s, start).trim_end().ends_with(&want),
            ),
            timeout,
        )?;
        self.term.send("\r").map_err(io_err)?;
        Ok(echoed.cursor_line())
    }

    /// `echo` of the last status ($? or $status).
    pub fn last_status(&self) -> Result<i32, TimeoutError> {
        let out = self.run(&format!("echo status={}", self.current.status_expr()))?;
        out.lines()
            .find_map(|l| l.trim().strip_prefix("status=")?.parse().ok())
            .ok_or_else(|| self.term.error("a status=N line", Duration::ZERO))
    }

    /// The shell's own PID as it sees it.
    pub fn shell_pid(&self) -> Result<i32, TimeoutError> {
        let out = self.run(&format!("echo pid={}", self.current.pid_expr()))?;
        out.lines()
            .find_map(|l| l.trim().strip_prefix("pid=")?.parse().ok())
            .ok_or_else(|| self.term.error("a pid=N line", Duration::ZERO))
    }

    /// Waits until a process of this terminal running `argv` is in the foreground
    /// and not stopped, so that keys typed now reach it.
    ///
    /// - Directly on the pty, and through the sandbox with a pty of its own
    ///   (`--tty=pty`, where the sandbox's terminal is a host pty whose TIOCSPGRP the
    ///   host runs): the process's terminal's foreground group as the host kernel
    ///   keeps it (TIOCGPGRP on our master; `tpgid` in /proc/PID/stat for the
    ///   sandbox's pty) is the process's group. That terminal's line discipline is
    ///   what turns ^C into SIGINT.
    /// - Through the sandbox on the borrowed terminal (`--tty`), the foreground group
    ///   is the sentry's alone and invisible from the host (the host terminal's stays
    ///   the loader's; ^C reaches the loader, which sends SIGINT to the sentry's
    ///   foreground group). What is visible: the shell that started the job (the
    ///   process's parent) is blocked in the host kernel waiting for its children
    ///   (`wait4`: bash, dash; `rt_sigsuspend`: zsh; `sem_wait`: fish's main thread;
    ///   see `shell_waits_for_job`), not in a seccomp notification. A job-control
    ///   shell gives the job the terminal (`tcsetpgrp`) before it waits for it — for
    ///   a new job and for `fg` alike (bash, zsh and dash also do it in the child
    ///   before exec) — and TIOCSPGRP is a notified call the sentry has applied when
    ///   it returns; so a shell seen waiting has made the job's group the sentry's
    ///   foreground group. (Seeing the job's process alone is not enough: after
    ///   `bg`, `fg` finds it already running in its own group.)
    pub fn wait_foreground(&self, argv: &[&str]) -> Result<ProcInfo, TimeoutError> {
        let mut found = None;
        let borrowed = self.sandboxed && !self.owned_pty;
        let owned = self.owned_pty;
        self.term.wait_until(
            &format!("a process {argv:?} in the foreground"),
            DEFAULT_TIMEOUT,
            || {
                let procs = self.term.processes();
                found = procs
                    .iter()
                    .find(|p| p.cmdline == argv && !matches!(p.state, 'T' | 't' | 'Z'))
                    .cloned();
                let Some(p) = &found else { return false };
                if borrowed {
                    // The group leader exists and is not a shell of this session, and
                    // the shell waits for its job (see above).
                    procs
                        .iter()
                        .find(|l| l.pid == p.pgrp)
                        .is_some_and(|l| l.pgrp != l.session)
                        && shell_waits_for_job(p.ppid)
                } else if owned {
                    p.tpgid == p.pgrp
                } else {
                    self.term.foreground_pgrp() == Some(p.pgrp)
                }
            },
        )?;
        found.ok_or_else(|| self.term.error("a foreground process", Duration::ZERO))
    }

    /// Resizes the window ([`Term::resize`]) and, through the sandbox, waits until the
    /// sandbox has passed the change on, so that what is typed next reaches the shell
    /// after its SIGWINCH, as on a real terminal (where TIOCSWINSZ on the master
    /// signals the foreground group before it returns).
    ///
    /// Through the sandbox the window belongs to `sandbox` (the loader): the resize
    /// sends SIGWINCH to it, pending process-wide (every loader thread blocks it; one
    /// reads it from a signalfd). The loader then sets the size of the sandbox's own
    /// pty (`--tty=pty`: the host kernel signals the sandbox's foreground group in that
    /// call) or has the sentry send SIGWINCH to its foreground group (`--tty`), and its
    /// loops go back to waiting (docs/LOADER.md). So: SIGWINCH no longer pending at
    /// the loader (taken), and then every loader thread but the main one (which only
    /// joins the supervisor thread) seen blocked in `poll`/`ppoll` (the iteration
    /// that took it, forwarding included, is over) or, for the notification thread,
    /// in the `ioctl` that receives the next notification.
    pub fn resize_delivered(&self, rows: u16, cols: u16) -> Result<(), TimeoutError> {
        self.term
            .resize(rows, cols)
            .map_err(|e| self.term.error(&format!("resizing: {e}"), Duration::ZERO))?;
        if !self.sandboxed {
            return Ok(());
        }
        let loader = self.term.pid();
        let exec_client = self.exec_client;
        self.term.wait_until(
            "the sandbox to take the SIGWINCH and pass it on",
            DEFAULT_TIMEOUT,
            || {
                // `sandbox exec` (one thread) takes the signal, sends the new size to
                // the supervisor and waits for its acknowledgement (the size set, the
                // SIGWINCH sent) before it polls again.
                let client_done = !exec_client
                    || ProcInfo::blocked_syscall(loader, loader)
                        .is_some_and(|n| n == libc::SYS_poll || n == libc::SYS_ppoll);
                client_done
                    && !ProcInfo::shared_signal_pending(loader, Signal::SIGWINCH)
                    && ProcInfo::threads(loader)
                        .into_iter()
                        .filter(|&t| t != loader)
                        .all(|t| {
                            ProcInfo::blocked_syscall(loader, t).is_some_and(|n| {
                                n == libc::SYS_poll || n == libc::SYS_ppoll || n == libc::SYS_ioctl
                            })
                        })
            },
        )
    }

    /// Output of the last command: lines between absolute line `start` (the command)
    /// and the prompt at the cursor.
    pub fn output_since(&self, start: u64) -> String {
        output_between(&self.term.screen(), start)
    }
}

/// Whether the job-control shell `pid` is blocked waiting for its foreground job (see
/// [`ShellSession::wait_foreground`]), in the host kernel (not held in a seccomp
/// notification): bash and dash in `wait4` (or `waitid`), zsh in `rt_sigsuspend`,
/// fish's main thread in `sem_wait` on the semaphore its SIGCHLD topic monitor posts:
/// a `futex` FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME. (Only that
/// one: before it gives a job the terminal, fish's main thread also blocks briefly in
/// plain FUTEX_WAIT for its I/O threads, as `strace -f` shows.)
fn shell_waits_for_job(pid: i32) -> bool {
    const FISH_JOB_WAIT: u64 =
        (libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as u64;
    if ProcInfo::in_seccomp_notification(pid, pid) {
        return false;
    }
    match ProcInfo::blocked_call(pid, pid) {
        Some((nr, _)) if nr == libc::SYS_wait4 || nr == libc::SYS_waitid => true,
        Some((nr, _)) if nr == libc::SYS_rt_sigsuspend => true,
        Some((nr, args)) if nr == libc::SYS_futex => args.get(1) == Some(&FISH_JOB_WAIT),
        _ => false,
    }
}

/// The text from the start of absolute line `start` to the cursor, rows joined
/// without separators (a long command line wraps onto the next rows).
fn typed_text(screen: &Screen, start: u64) -> String {
    let cursor = screen.cursor_line();
    let mut text = String::new();
    for abs in start..cursor {
        if let Some(row) = abs
            .checked_sub(screen.scrolled)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| screen.rows.get(i))
        {
            text.push_str(row);
        }
    }
    text.push_str(&screen.before_cursor());
    text
}

fn output_between(screen: &Screen, start: u64) -> String {
    screen.lines_between(start, screen.cursor_line()).join("\n")
}

/// Runs `cmd` (no terminal) and collects its output, killing it after `timeout`.
pub fn output_with_timeout(
    cmd: &mut Command,
    timeout: Duration,
) -> io::Result<std::process::Output> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child_output_with_timeout(child, timeout)
        .map_err(|e| io::Error::new(e.kind(), format!("{cmd:?}: {e}")))
}

/// Waits for `child` to end and returns its output (read meanwhile, so that a full
/// pipe never blocks it); after `timeout` it is killed and the result is `TimedOut`.
pub fn child_output_with_timeout(
    mut child: std::process::Child,
    timeout: Duration,
) -> io::Result<std::process::Output> {
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if start.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("still running after {timeout:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Two tests for one scenario `fn scenario(l: &Launcher, ...)`: `$direct` runs it with
/// [`Launcher::Direct`] (the reference, real Linux), `$sandbox` with
/// `sandbox run --tty --` (ignored until the sandbox can run it; write `ready` before
/// the names to run both).
///
/// ```ignore
/// e2e!(direct_interrupt_bash, sandbox_interrupt_bash: interrupt(Shell::Bash));
/// e2e!(ready direct_interrupt_bash, sandbox_interrupt_bash: interrupt(Shell::Bash));
/// ```
#[macro_export]
macro_rules! e2e {
    ($direct:ident, $sandbox:ident, $pty:ident : $scenario:ident ( $($arg:expr),* $(,)? )) => {
        #[test]
        fn $direct() {
            $scenario(&$crate::term::Launcher::Direct $(, $arg)*)
        }
        #[test]
        fn $sandbox() {
            $scenario(
                &$crate::term::Launcher::sandbox(env!("CARGO_BIN_EXE_sandbox"))
                $(, $arg)*
            )
        }
        #[test]
        fn $pty() {
            $scenario(
                &$crate::term::Launcher::sandbox_pty(env!("CARGO_BIN_EXE_sandbox"))
                $(, $arg)*
            )
        }
    };
}
