//! Processes executed into a running sandbox ([`crate::Sandbox::exec`]) and the
//! sandbox's process table as the sentry sees it ([`crate::Sandbox::processes`]).
//!
//! An exec'd process joins the namespaces of the sandbox's init (setns through init's
//! pidfd), its cgroups, its filesystem view, and installs the same seccomp policy and
//! a notify filter of its own whose notifications the sandbox's supervisor answers. It
//! starts in a session of its own (Linux: `setsid` by a process that is not a group
//! leader), with the terminal asked for ([`ExecTerminal`]). Its parent is outside the
//! sandbox's PID namespace, so inside it has PPID 0, as a process `runc exec` starts;
//! its orphaned children are reparented to the sandbox's init, the namespace's child
//! reaper. Its exit status is kept until [`crate::Sandbox::wait_pid`] takes it, once.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// What to execute in a running sandbox.
#[derive(Debug)]
pub struct ExecSpec {
    /// Program and arguments; the program is looked up in the `PATH` of `env`.
    pub argv: Vec<String>,
    /// The process's whole environment (`KEY=VALUE`).
    pub env: Vec<String>,
    /// Its working directory inside the sandbox (default `/`).
    pub cwd: Option<PathBuf>,
    /// Run as this user and group (numeric, in the sandbox's user namespace if it has
    /// one); supplementary groups are cleared.
    pub user: Option<(u32, u32)>,
    /// The capabilities the process keeps: at most the sandbox's (bits outside them are
    /// dropped); `None`: the sandbox's. An OCI `exec` of a non-root process passes
    /// none, as runc gives such a process none.
    pub capabilities: Option<crate::capability::CapSet>,
    pub terminal: ExecTerminal,
}

impl ExecSpec {
    /// A spec for `argv` with the loader's environment, stdio passed through from the
    /// given descriptors, and defaults everywhere else.
    pub fn new(argv: Vec<String>, terminal: ExecTerminal) -> ExecSpec {
        ExecSpec {
            argv,
            env: std::env::vars().map(|(k, v)| format!("{k}={v}")).collect(),
            cwd: None,
            user: None,
            capabilities: None,
            terminal,
        }
    }
}

/// The terminal of an exec'd process.
#[derive(Debug)]
pub enum ExecTerminal {
    /// stdin, stdout and stderr passed through (descriptors given by the caller, e.g.
    /// received over a socket); no controlling terminal.
    Stdio([OwnedFd; 3]),
    /// Borrow the caller's terminal (`exec --tty`): it becomes the process's stdio and,
    /// in the sentry, its session's controlling terminal with the process's group in
    /// the foreground; the sentry enforces job control on it through notifications, as
    /// for `run --tty`. The terminal's termios and size are restored when the process
    /// ends.
    Borrowed(OwnedFd),
    /// A new pty in the sandbox's own devpts (`exec --tty=pty`), the real controlling
    /// terminal of the process's session: its master is sent to `console_socket`
    /// (SCM_RIGHTS) or returned by [`ExecHandle::pty_master`] for the caller to proxy.
    Pty {
        console_socket: Option<PathBuf>,
        /// The pty's initial size (rows, columns).
        winsize: Option<(u16, u16)>,
    },
}

/// What happens to an exec'd process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecEvent {
    /// Stopped by signal `sig`.
    Stopped {
        sig: i32,
    },
    Continued,
    /// Ended with this wait status (it is also kept for [`crate::Sandbox::wait_pid`]).
    Exited {
        wait_status: i32,
    },
}

/// A process executed into a sandbox (see [`crate::Sandbox::exec`]). Dropping the
/// handle leaves the process running: the sandbox keeps tracking it (its status for
/// [`crate::Sandbox::wait_pid`]) until it ends or the sandbox is destroyed.
#[derive(Debug)]
pub struct ExecHandle {
    pub(crate) pid: i32,
    pub(crate) host_pid: i32,
    pub(crate) pty_master: parking_lot::Mutex<Option<OwnedFd>>,
    pub(crate) events: crossbeam_channel::Receiver<ExecEvent>,
}

impl ExecHandle {
    /// Its PID in the sandbox.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Its PID in the caller's PID namespace.
    pub fn host_pid(&self) -> i32 {
        self.host_pid
    }

    /// The master of its pty ([`ExecTerminal::Pty`] without a console socket), once:
    /// the caller proxies it. Closing every copy of it hangs the pty up.
    pub fn pty_master(&self) -> Option<OwnedFd> {
        self.pty_master.lock().take()
    }

    /// Its stops, continuations and end.
    pub fn events(&self) -> &crossbeam_channel::Receiver<ExecEvent> {
        &self.events
    }
}

/// One process of the sandbox, as the sentry sees it (`ps`; serialised as is by the
/// `sandbox` command's control protocol).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessInfo {
    /// PID, parent, process group and session in the sandbox's PID namespace (PPID 0
    /// for init and for exec'd processes, whose parent is outside it).
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// Its controlling terminal (`pts/0`, or the borrowed terminal's name).
    pub tty: Option<String>,
    /// As `ps` prints STAT's first letter (from the host's `/proc/PID/stat`): R, S, D,
    /// T (stopped), t (traced), Z (zombie), ...
    pub state: char,
    /// Its process group is the foreground group of its controlling terminal (`+`).
    pub foreground: bool,
    /// Its command line (`/proc/PID/cmdline`, or `[comm]` when empty).
    pub command: String,
}
