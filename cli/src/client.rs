//! The client side of the lifecycle verbs: `run -d`, `kill`, `wait`, `ps`, `list`,
//! `delete`, `exec`. Each returns the process's exit status; errors are
//! [`ClientError`]s, whose [`ClientError::exit_code`] follows `run`'s convention
//! (125 for the sandbox's errors, 126/127 for a program that cannot be executed or
//! is not found).

use crate::daemon::{self, Readiness};
use crate::protocol::{self, ErrorKind, KillMode, ProtocolError, Request, Response};
use crate::state::{self, SandboxState, StateError, StateRoot, Status};
use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

/// Why a verb failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    #[error("{message}")]
    Remote { kind: ErrorKind, message: String },
    #[error("sandbox {0:?} is dead (its supervisor is gone): `sandbox delete {0}` cleans it up")]
    Dead(String),
    #[error("the supervisor answered out of turn: {0:?}")]
    Unexpected(Box<Response>),
    #[error("{0}")]
    Other(String),
    #[error("{message}")]
    Start { message: String, exit_code: i32 },
}

impl ClientError {
    /// 127 not found, 126 not executable, 125 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Remote {
                kind: ErrorKind::NotFound,
                ..
            } => 127,
            ClientError::Remote {
                kind: ErrorKind::CannotExecute,
                ..
            } => 126,
            ClientError::Start { exit_code, .. } => *exit_code,
            _ => 125,
        }
    }
}

/// The shell's `$?` for a wait status: the exit code, or 128 + N for signal N.
pub fn shell_code(wait_status: i32) -> i32 {
    if libc::WIFSIGNALED(wait_status) {
        128 + libc::WTERMSIG(wait_status)
    } else {
        libc::WEXITSTATUS(wait_status)
    }
}

/// Connects to the supervisor of `id` (an unknown or dead sandbox is an error).
pub fn connect(root: &StateRoot, id: &str) -> Result<OwnedFd, ClientError> {
    let st = root.read(id)?;
    if st.status == Status::Dead {
        return Err(ClientError::Dead(id.to_string()));
    }
    let sock = root.dir(id)?.join("sock");
    protocol::connect(&sock).map_err(|e| match e {
        ProtocolError::Socket(nix::Error::ENOENT) => StateError::Unknown(id.to_string()).into(),
        ProtocolError::Socket(nix::Error::ECONNREFUSED) => ClientError::Dead(id.to_string()),
        e => e.into(),
    })
}

/// Sends one request and returns the answer (an error answer as `Err`).
pub fn request(root: &StateRoot, id: &str, req: &Request) -> Result<Response, ClientError> {
    let conn = connect(root, id)?;
    protocol::send(conn.as_fd(), req, &[])?;
    let (resp, _fds) = protocol::recv::<Response>(conn.as_fd()).map_err(|e| match e {
        ProtocolError::Closed => ClientError::Other(format!(
            "sandbox {id:?}: the supervisor closed the connection without answering (did it die?)"
        )),
        e => e.into(),
    })?;
    match resp {
        Response::Error { kind, message } => Err(ClientError::Remote { kind, message }),
        r => Ok(r),
    }
}

/// `sandbox run -d`: creates the state directory, starts the supervisor (re-executing
/// this binary with `__supervise`), and returns once it reports: prints the ID and
/// returns 0, or returns the start-up error.
pub fn run_detached(
    root: &StateRoot,
    name: Option<String>,
    cli_args: Vec<OsString>,
) -> Result<i32, ClientError> {
    let id = match name {
        Some(n) => n,
        None => state::random_id()?,
    };
    let dir = root.create_sandbox(&id)?;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg("__supervise")
        .arg("--root")
        .arg(&root.root)
        .arg("--id")
        .arg(&id)
        .arg("--")
        .args(cli_args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            daemon::remove_state_dir(&dir);
            return Err(ClientError::Other(format!(
                "cannot start the supervisor: {e}"
            )));
        }
    };
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    match serde_json::from_str::<Readiness>(line.trim()) {
        Ok(Readiness::Ready { id, .. }) => {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "{id}");
            let _ = out.flush();
            Ok(0)
        }
        Ok(Readiness::Failed { message, exit_code }) => {
            // The supervisor removed the directory before it reported; reap it.
            let _ = child.wait();
            Err(ClientError::Start { message, exit_code })
        }
        Err(_) => {
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            daemon::remove_state_dir(&dir);
            let last = log.lines().last().unwrap_or("no message").to_string();
            Err(ClientError::Other(format!(
                "the supervisor ended before the sandbox ran: {last}"
            )))
        }
    }
}

/// `sandbox kill`.
pub fn kill(
    root: &StateRoot,
    id: &str,
    pid: Option<i32>,
    mode: KillMode,
    signal: i32,
) -> Result<i32, ClientError> {
    request(root, id, &Request::Kill { pid, mode, signal })?;
    Ok(0)
}

/// `sandbox wait`: the shell's status of the process.
pub fn wait(root: &StateRoot, id: &str, pid: Option<i32>) -> Result<i32, ClientError> {
    if pid.is_none() {
        // A stopped sandbox whose supervisor died still has its status on record.
        let st = root.read(id)?;
        if let (Status::Dead, Some(s)) = (st.status, st.exit_status) {
            return Ok(shell_code(s));
        }
    }
    match request(root, id, &Request::Wait { pid })? {
        Response::Exited { wait_status } => Ok(shell_code(wait_status)),
        r => Err(ClientError::Unexpected(Box::new(r))),
    }
}

/// `sandbox ps`.
pub fn ps(root: &StateRoot, id: &str, json: bool) -> Result<i32, ClientError> {
    let processes = match request(root, id, &Request::Ps)? {
        Response::Processes { processes } => processes,
        r => return Err(ClientError::Unexpected(Box::new(r))),
    };
    let mut out = std::io::stdout().lock();
    if json {
        let text = serde_json::to_string_pretty(&processes)
            .map_err(|e| ClientError::Other(e.to_string()))?;
        let _ = writeln!(out, "{text}");
        return Ok(0);
    }
    let _ = writeln!(
        out,
        "{:>7} {:>7} {:>7} {:>7} {:<8} {:<4} COMMAND",
        "PID", "PPID", "PGID", "SID", "TTY", "STAT"
    );
    for p in processes {
        let stat = format!("{}{}", p.state, if p.foreground { "+" } else { "" });
        let _ = writeln!(
            out,
            "{:>7} {:>7} {:>7} {:>7} {:<8} {:<4} {}",
            p.pid,
            p.ppid,
            p.pgid,
            p.sid,
            p.tty.as_deref().unwrap_or("?"),
            stat,
            p.command
        );
    }
    Ok(0)
}

/// `sandbox list`.
pub fn list(root: &StateRoot, json: bool) -> Result<i32, ClientError> {
    let mut states: Vec<SandboxState> = Vec::new();
    for id in root.ids()? {
        match root.read(&id) {
            Ok(st) => states.push(st),
            // Being created or deleted right now.
            Err(StateError::Unknown(_)) => {}
            Err(e) => tracing::warn!(%e, "skipping a sandbox"),
        }
    }
    let mut out = std::io::stdout().lock();
    if json {
        let text =
            serde_json::to_string_pretty(&states).map_err(|e| ClientError::Other(e.to_string()))?;
        let _ = writeln!(out, "{text}");
        return Ok(0);
    }
    let _ = writeln!(
        out,
        "{:<20} {:>8} {:<8} {:<21} COMMAND",
        "ID", "PID", "STATUS", "CREATED"
    );
    for st in states {
        let _ = writeln!(
            out,
            "{:<20} {:>8} {:<8} {:<21} {}",
            st.id,
            st.pid,
            st.status.name(),
            st.created,
            st.argv.join(" ")
        );
    }
    Ok(0)
}

/// `sandbox delete`.
pub fn delete(root: &StateRoot, id: &str, force: bool) -> Result<i32, ClientError> {
    let dir = root.dir(id)?;
    let st = root.read(id)?;
    if st.status == Status::Dead {
        delete_dead(&dir, &st);
        return Ok(0);
    }
    // Held open: the supervisor's exit releases its lock, which we then take.
    let lock = state::open_lock(&dir)?;
    match request(root, id, &Request::Delete { force }) {
        Ok(_) => {}
        Err(ClientError::Dead(_)) => {
            delete_dead(&dir, &st);
            return Ok(0);
        }
        Err(e) => return Err(e),
    }
    // The supervisor answers, then exits: wait until it has.
    let _ = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive);
    Ok(0)
}

/// Cleans up after a dead supervisor: kills whatever its cgroups still hold (init
/// exits when the supervisor dies, and the rest of its PID namespace with it; this
/// covers processes still exiting), removes the cgroups and the state directory.
pub fn delete_dead(dir: &std::path::Path, st: &SandboxState) {
    for cg in &st.cgroups {
        let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
        for p in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    for cg in st.cgroups.iter().rev() {
        crate::freezer::remove_cgroup(cg);
    }
    daemon::remove_state_dir(dir);
}

/// Parses a signal: a number, or a name with or without `SIG` (any case).
pub fn parse_signal(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=libc::SIGRTMAX()).contains(&n) {
            return Ok(n);
        }
        return Err(format!("invalid signal number {n}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| format!("unknown signal {s:?}"))
}

/// The default state root's path, for `--help`.
pub fn default_root_help() -> PathBuf {
    StateRoot::new(None)
        .map(|r| r.root)
        .unwrap_or_else(|_| PathBuf::from("/run/sandbox"))
}

/// `sandbox exec`: starts the process, then waits on the same connection for its
/// end and returns the shell's status.
pub fn exec(root: &StateRoot, id: &str, req: protocol::ExecRequest) -> Result<i32, ClientError> {
    use protocol::ExecTty;
    let conn = connect(root, id)?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let fds: Vec<std::os::fd::BorrowedFd<'_>> = match req.tty {
        ExecTty::Stdio => vec![stdin.as_fd(), stdout.as_fd(), stderr.as_fd()],
        ExecTty::Borrow => {
            if !nix::unistd::isatty(stdin.as_fd()).unwrap_or(false) {
                return Err(ClientError::Other(
                    "--tty needs a terminal on standard input".into(),
                ));
            }
            vec![stdin.as_fd()]
        }
        ExecTty::Pty => Vec::new(),
    };
    protocol::send(conn.as_fd(), &Request::Exec(req), &fds)?;
    loop {
        let (resp, _fds) = protocol::recv::<Response>(conn.as_fd()).map_err(|e| match e {
            ProtocolError::Closed => ClientError::Other(format!(
                "sandbox {id:?}: the supervisor closed the connection (did it die?)"
            )),
            e => e.into(),
        })?;
        match resp {
            Response::Started { pid } => tracing::debug!(pid, "exec'd"),
            Response::Exited { wait_status } => return Ok(shell_code(wait_status)),
            Response::Error { kind, message } => return Err(ClientError::Remote { kind, message }),
            r => return Err(ClientError::Unexpected(Box::new(r))),
        }
    }
}
