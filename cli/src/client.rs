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
    let lock = std::fs::File::open(dir.join("lock")).ok();
    match request(root, id, &Request::Delete { force }) {
        Ok(_) => {}
        Err(ClientError::Dead(_)) => {
            delete_dead(&dir, &st);
            return Ok(0);
        }
        Err(e) => return Err(e),
    }
    // The supervisor answers, then exits: wait until it has.
    if let Some(lock) = lock {
        let _ = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockShared);
    }
    Ok(0)
}

/// Cleans up after a dead supervisor: kills whatever its cgroups still hold (init
/// exits when the supervisor dies, and the rest of its PID namespace with it; this
/// covers processes still exiting), removes the cgroups and the state directory.
pub fn delete_dead(dir: &std::path::Path, st: &SandboxState) {
    // Only cgroups surely still the sandbox's are touched: the freezer cgroup named
    // after the ID (which this state directory keeps taken), and the loader's
    // `sandbox-<pid>-<n>` while that PID is free (the name may be another loader's
    // after PID reuse; the loader's own clean-up removes it later). Every process of
    // the sandbox is in one of them.
    let freezer_name = format!("sandbox.{}", st.id);
    let ours = |cg: &&std::path::PathBuf| {
        let name = cg
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == freezer_name {
            return true;
        }
        name.strip_prefix("sandbox-")
            .and_then(|rest| rest.split('-').next())
            .is_some_and(|pid| pid == st.pid.to_string() && !runs(pid))
    };
    for cg in st.cgroups.iter().filter(ours) {
        let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
        for p in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // A supervisor killed during `kill --mode all` leaves the sandbox frozen, and
        // a frozen process (init too) dies only once thawed.
        let _ = std::fs::write(cg.join("freezer.state"), "THAWED");
        let _ = std::fs::write(cg.join("cgroup.freeze"), "0");
    }
    for cg in st.cgroups.iter().rev().filter(ours) {
        crate::freezer::remove_cgroup(cg);
    }
    daemon::remove_state_dir(dir);
}

/// Whether process `pid` exists and is not a zombie (a zombie's PID is not reused).
fn runs(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
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

/// Signals `sandbox exec` forwards to its process (see [`exec`]).
const EXEC_FORWARDED: [nix::sys::signal::Signal; 6] = [
    nix::sys::signal::Signal::SIGINT,
    nix::sys::signal::Signal::SIGQUIT,
    nix::sys::signal::Signal::SIGTSTP,
    nix::sys::signal::Signal::SIGWINCH,
    nix::sys::signal::Signal::SIGTERM,
    nix::sys::signal::Signal::SIGHUP,
];

/// Puts the terminal in raw mode and restores it on drop.
struct RawMode {
    fd: OwnedFd,
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enter(fd: std::os::fd::BorrowedFd<'_>) -> Option<RawMode> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSADRAIN, &raw).ok()?;
        Some(RawMode {
            fd: fd.try_clone_to_owned().ok()?,
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            &self.fd,
            nix::sys::termios::SetArg::TCSADRAIN,
            &self.saved,
        );
    }
}

/// Writes all of `buf` to `fd` (a blocking descriptor).
fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut buf: &[u8]) {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(0) => return,
            Ok(n) => buf = &buf[n..],
            Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}

/// `sandbox exec`: starts the process (passing this command's stdio, or its
/// terminal), then until the process ends: forwards SIGINT, SIGQUIT, SIGTSTP,
/// SIGTERM and SIGHUP it receives to the foreground group of the process's terminal
/// (the process itself without one) and SIGWINCH as the terminal's new size; with
/// `--tty=pty` proxies the pty's master to this terminal, in raw mode meanwhile
/// (restored on every exit). Returns the shell's status of the process.
pub fn exec(
    root: &StateRoot,
    id: &str,
    mut req: protocol::ExecRequest,
) -> Result<i32, ClientError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signal::SigSet;
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use protocol::ExecTty;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let on_tty = nix::unistd::isatty(stdin.as_fd()).unwrap_or(false);
    let fds: Vec<std::os::fd::BorrowedFd<'_>> = match req.tty {
        ExecTty::Stdio => vec![stdin.as_fd(), stdout.as_fd(), stderr.as_fd()],
        ExecTty::Borrow => {
            if !on_tty {
                return Err(ClientError::Other(
                    "--tty needs a terminal on standard input".into(),
                ));
            }
            vec![stdin.as_fd()]
        }
        ExecTty::Pty => Vec::new(),
    };
    let proxy = req.tty == ExecTty::Pty && req.console_socket.is_none();
    if proxy && on_tty {
        req.winsize = crate::sys::winsize(stdin.as_fd());
    }
    let borrowed = req.tty == ExecTty::Borrow;
    // Taken over before the request: a ^C from now on is forwarded, not fatal.
    let mut set = SigSet::empty();
    for s in EXEC_FORWARDED {
        set.add(s);
    }
    let old_mask = set
        .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
        .map_err(|e| ClientError::Other(format!("sigprocmask: {e}")))?;
    struct Unblock(SigSet);
    impl Drop for Unblock {
        fn drop(&mut self) {
            let _ = self.0.thread_set_mask();
        }
    }
    let _unblock = Unblock(old_mask);
    let sigfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| ClientError::Other(format!("signalfd: {e}")))?;
    let conn = connect(root, id)?;
    protocol::send(conn.as_fd(), &Request::Exec(req), &fds)?;
    drop(fds);
    let closed = || {
        ClientError::Other(format!(
            "sandbox {id:?}: the supervisor closed the connection (did it die?)"
        ))
    };
    let (first, mut passed) = protocol::recv::<Response>(conn.as_fd()).map_err(|e| match e {
        ProtocolError::Closed => closed(),
        e => e.into(),
    })?;
    match first {
        Response::Started { pid } => {
            tracing::debug!(pid, "exec'd");
            // OCI `exec --detach` runs this client as its child and returns once the
            // process has started (its pty master is with the console socket).
            crate::oci::report_exec_started();
        }
        Response::Error { kind, message } => return Err(ClientError::Remote { kind, message }),
        r => return Err(ClientError::Unexpected(Box::new(r))),
    }
    let mut master = if proxy { passed.pop() } else { None };
    drop(passed);
    let mut raw = match (&master, on_tty) {
        (Some(_), true) => RawMode::enter(stdin.as_fd()),
        _ => None,
    };
    if let Some(m) = &master {
        let _ = nix::fcntl::fcntl(
            m,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
    }
    // Suspend pass-through (as `run --tty`): with a terminal, when the process itself
    // stops (vim's ^Z), this command stops too, so that the invoking shell shows the
    // job stopped; continued (`fg`), it continues the process.
    let pass_through = on_tty && (borrowed || master.is_some());
    let mut stdin_open = master.is_some();
    let mut buf = vec![0u8; 16 * 1024];
    let send = |req: &Request| -> Result<bool, ClientError> {
        match protocol::send(conn.as_fd(), req, &[]) {
            Ok(()) => Ok(true),
            Err(ProtocolError::Closed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    };
    let recv = || -> Result<Response, ClientError> {
        protocol::recv::<Response>(conn.as_fd())
            .map(|(r, _)| r)
            .map_err(|e| match e {
                ProtocolError::Closed => closed(),
                e => e.into(),
            })
    };
    // Messages that arrived while an acknowledgement was awaited.
    let mut queued: std::collections::VecDeque<Response> = std::collections::VecDeque::new();
    // Sends a request and waits for its acknowledgement (the signal sent, the size
    // set), queueing what else comes meanwhile.
    let request = |req: &Request,
                   queued: &mut std::collections::VecDeque<Response>|
     -> Result<(), ClientError> {
        if !send(req)? {
            return Ok(());
        }
        loop {
            let ended = queued.iter().any(|r| matches!(r, Response::Exited { .. }));
            match recv() {
                Ok(Response::Ok) => return Ok(()),
                Ok(Response::Error { message, .. }) => {
                    tracing::debug!(%message, "forwarding failed");
                    return Ok(());
                }
                Ok(other) => queued.push_back(other),
                // The process ended (the supervisor said so) and the connection with
                // it, before the acknowledgement: nothing is missing.
                Err(_) if ended => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    };
    loop {
        while let Some(resp) = queued.pop_front() {
            match resp {
                Response::Exited { wait_status } => {
                    // What the process wrote last is still in the pty.
                    if let Some(m) = &master {
                        while let Ok(n) = nix::unistd::read(m, &mut buf) {
                            if n == 0 {
                                break;
                            }
                            write_all(stdout.as_fd(), &buf[..n]);
                        }
                    }
                    return Ok(shell_code(wait_status));
                }
                Response::ProcessStopped { signal } if pass_through => {
                    tracing::debug!(signal, "the process stopped: stopping too");
                    // The invoking terminal as it was while we are stopped.
                    let was_raw = raw.take().is_some();
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::this(),
                        nix::sys::signal::Signal::SIGSTOP,
                    );
                    // Continued.
                    if was_raw {
                        raw = RawMode::enter(stdin.as_fd());
                    }
                    request(
                        &Request::Signal {
                            signal: libc::SIGCONT,
                        },
                        &mut queued,
                    )?;
                }
                Response::ProcessStopped { .. } | Response::ProcessContinued | Response::Ok => {}
                Response::Error { kind, message } => {
                    return Err(ClientError::Remote { kind, message })
                }
                r => return Err(ClientError::Unexpected(Box::new(r))),
            }
        }
        let mut pfds = vec![
            PollFd::new(conn.as_fd(), PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(m) = &master {
            pfds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                pfds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut pfds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(ClientError::Other(format!("poll: {e}"))),
        }
        let ready = |i: usize| {
            pfds.get(i)
                .and_then(|p| p.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (conn_ready, sig_ready, master_ready, stdin_ready) =
            (ready(0), ready(1), ready(2), ready(3));
        drop(pfds);
        if sig_ready {
            while let Ok(Some(info)) = sigfd.read_signal() {
                let Ok(sig) = nix::sys::signal::Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                let req = if sig == nix::sys::signal::Signal::SIGWINCH {
                    match crate::sys::winsize(stdin.as_fd()) {
                        Some((rows, cols)) if proxy || borrowed => Request::Resize { rows, cols },
                        _ => continue,
                    }
                } else {
                    Request::Signal { signal: sig as i32 }
                };
                request(&req, &mut queued)?;
            }
        }
        if master_ready {
            if let Some(m) = &master {
                match nix::unistd::read(m, &mut buf) {
                    Ok(0) | Err(nix::Error::EIO) => master = None,
                    Ok(n) => write_all(stdout.as_fd(), &buf[..n]),
                    Err(_) => {}
                }
            }
        }
        if stdin_ready {
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(0) | Err(nix::Error::EIO) => stdin_open = false,
                Ok(n) => {
                    if let Some(m) = &master {
                        write_all(m.as_fd(), &buf[..n]);
                    }
                }
                Err(_) => {}
            }
        }
        if conn_ready {
            queued.push_back(recv()?);
        }
    }
}
