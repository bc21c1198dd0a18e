//! The supervisor of a long-running sandbox (`sandbox run -d`).
//!
//! The `run -d` client creates the sandbox's state directory and re-executes the
//! `sandbox` binary (`/proc/self/exe`) with a hidden subcommand, so that the
//! supervisor starts as a fresh single-threaded process (the caller's process may have
//! threads, and spawning init clones without exec). The supervisor:
//! 1. calls `setsid` (no controlling terminal, out of the caller's session and process
//!    group), keeps `/dev/null` as stdin and sends stdout and stderr (its log, and the
//!    first program's output) to `<dir>/log`; the pipe it was started with on stdout
//!    becomes its readiness channel;
//! 2. takes the `lock` (see [`crate::state`]) and binds the control socket `sock`
//!    (mode 0600, in a 0700 directory);
//! 3. joins the sandbox's freezer cgroup ([`crate::freezer`]), starts the sandbox,
//!    and leaves the cgroup again;
//! 4. writes `state.json` and reports readiness — or the start-up error with its exit
//!    status (125, 126, 127) — on the pipe, which the client prints;
//! 5. serves requests ([`crate::protocol`]) until `delete`: one thread per connection,
//!    each peer checked with `SO_PEERCRED` (the owner's uid or root).
//!
//! When the first program ends the sandbox is `stopped` (its status is kept for
//! `wait`); `delete` kills what is left, waits for it, removes the cgroups and the
//! state directory, answers, and exits. A supervisor killed with SIGKILL takes the
//! sandbox with it (init exits when its control socket hangs up, and the kernel kills
//! the rest of its PID namespace); its lock is released, so `list` shows the sandbox
//! `dead` and `delete` cleans up (see [`crate::client::delete_dead`]).

use crate::freezer::{self, Freezer};
use crate::protocol::{self, ErrorKind, KillMode, ProtocolError, Request, Response};
use crate::state::{self, SandboxState, Status};
use parking_lot::{Condvar, Mutex};
use sandbox_loader::{Sandbox, SandboxSpec, SignalMode};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Most connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the supervisor reports on its readiness pipe (one JSON line).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    Ready { id: String, init_pid: i32 },
    Failed { message: String, exit_code: i32 },
}

/// The readiness pipe, until used.
static READY: Mutex<Option<fs::File>> = Mutex::new(None);

/// Reports readiness or failure to the `run -d` client (once; later calls do nothing).
pub fn report(r: &Readiness) {
    if let Some(mut pipe) = READY.lock().take() {
        if let Ok(mut line) = serde_json::to_vec(r) {
            line.push(b'\n');
            let _ = pipe.write_all(&line);
        }
    }
}

/// Errors of the supervisor's own set-up.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("{0}: {1}")]
    Sys(&'static str, nix::Error),
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    #[error("the sandbox's supervisor is running already")]
    Locked,
}

/// A supervisor between its set-up ([`prepare`]) and its sandbox's start ([`serve`]).
pub struct Detached {
    pub id: String,
    pub dir: PathBuf,
    lock: nix::fcntl::Flock<fs::File>,
    listener: OwnedFd,
}

/// Step 1 and 2 of the module's list. Call first in the supervisor process.
pub fn prepare(root: &state::StateRoot, id: &str) -> Result<Detached, DaemonError> {
    // The pipe to the client is our stdout: keep a copy for the report.
    let ready = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| DaemonError::Io("dup", e))?;
    *READY.lock() = Some(fs::File::from(ready));
    nix::unistd::setsid().map_err(|e| DaemonError::Sys("setsid", e))?;
    let dir = root.dir(id)?;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(dir.join("log"))
        .map_err(|e| DaemonError::Io("log", e))?;
    nix::unistd::dup2_stdout(&log).map_err(|e| DaemonError::Sys("dup2", e))?;
    nix::unistd::dup2_stderr(&log).map_err(|e| DaemonError::Sys("dup2", e))?;
    let lock = nix::fcntl::Flock::lock(
        state::open_lock(&dir)?,
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .map_err(|_| DaemonError::Locked)?;
    let listener = listen(&dir.join("sock"))?;
    Ok(Detached {
        id: id.to_string(),
        dir,
        lock,
        listener,
    })
}

fn listen(path: &std::path::Path) -> Result<OwnedFd, DaemonError> {
    use nix::sys::socket::{bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    let _ = fs::remove_file(path);
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| DaemonError::Sys("socket", e))?;
    let addr = UnixAddr::new(path).map_err(|e| DaemonError::Sys("socket path", e))?;
    bind(sock.as_raw_fd(), &addr).map_err(|e| DaemonError::Sys("bind", e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| DaemonError::Io("chmod", e))?;
    let backlog = Backlog::new(128).map_err(|e| DaemonError::Sys("listen", e))?;
    listen(&sock, backlog).map_err(|e| DaemonError::Sys("listen", e))?;
    Ok(sock)
}

/// Removes the state directory's files and the directory.
pub fn remove_state_dir(dir: &std::path::Path) {
    for f in ["state.json", "state.json.tmp", "sock", "log", "lock"] {
        let _ = fs::remove_file(dir.join(f));
    }
    if let Err(e) = fs::remove_dir(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the state directory");
        }
    }
}

/// The supervisor's shared state.
struct Shared {
    sandbox: Sandbox,
    dir: PathBuf,
    state: Mutex<SandboxState>,
    /// The first program's wait status, once it has ended.
    ended: Condvar,
    freezer: Option<Freezer>,
    /// The first program has a terminal (an owned pty given to a console socket).
    has_terminal: bool,
    connections: AtomicUsize,
    /// Serialises `kill --mode all` and `delete`.
    big_lock: Mutex<()>,
}

/// Steps 3 to 5: starts the sandbox, reports, serves until `delete`; returns the
/// process's exit status.
pub fn serve(mut spec: SandboxSpec, det: Detached) -> i32 {
    let has_terminal = spec.owned_pty.is_some();
    // The supervisor makes calls the loader's own allow-list does not cover (accept,
    // the state files, cgroups): it is not confined.
    spec.loader_seccomp = false;
    spec.forward_signals = false;
    let argv = spec.argv.clone();
    let freezer = Freezer::create(&det.id);
    if let Some(f) = &freezer {
        if let Err(e) = f.join() {
            tracing::warn!(%e, "kill --mode all will not freeze");
        }
    }
    let started = Sandbox::start(spec);
    if let Some(f) = &freezer {
        if let Err(e) = f.leave() {
            tracing::warn!(%e, "the supervisor could not leave the freezer cgroup");
        }
    }
    let sandbox = match started {
        Ok(s) => s,
        Err(e) => {
            if let Some(f) = &freezer {
                freezer::remove_cgroup(&f.dir);
            }
            remove_state_dir(&det.dir);
            report(&Readiness::Failed {
                message: e.to_string(),
                exit_code: e.exit_code(),
            });
            return e.exit_code();
        }
    };
    let init_pid = sandbox.init_pid();
    let mut cgroups = freezer::sandbox_cgroups_of(init_pid);
    if let Some(f) = &freezer {
        if !cgroups.contains(&f.dir) {
            cgroups.push(f.dir.clone());
        }
    }
    let st = SandboxState {
        id: det.id.clone(),
        pid: std::process::id() as i32,
        init_pid,
        status: Status::Running,
        created: state::now_rfc3339(),
        argv,
        owner: nix::unistd::geteuid().as_raw(),
        exit_status: None,
        cgroups,
    };
    if let Err(e) = state::write_state(&det.dir, &st) {
        let _ = sandbox.destroy();
        let _ = sandbox.wait();
        remove_state_dir(&det.dir);
        report(&Readiness::Failed {
            message: e.to_string(),
            exit_code: 125,
        });
        return 125;
    }
    let shared = Arc::new(Shared {
        sandbox,
        dir: det.dir.clone(),
        state: Mutex::new(st),
        ended: Condvar::new(),
        freezer,
        has_terminal,
        connections: AtomicUsize::new(0),
        big_lock: Mutex::new(()),
    });
    {
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("first-program".into())
            .spawn(move || {
                let status = match shared.sandbox.wait() {
                    Ok(out) => out.wait_status,
                    Err(e) => {
                        tracing::warn!(%e, "the sandbox ended with an error");
                        // As if killed: 128 + SIGKILL for the shell.
                        libc::SIGKILL
                    }
                };
                tracing::info!(status, "the first program ended");
                let mut st = shared.state.lock();
                st.status = Status::Stopped;
                st.exit_status = Some(status);
                if let Err(e) = state::write_state(&shared.dir, &st) {
                    tracing::warn!(%e, "cannot update the state file");
                }
                shared.ended.notify_all();
            });
        if let Err(e) = spawned {
            tracing::error!(%e, "cannot start the waiting thread");
        }
    }
    report(&Readiness::Ready {
        id: det.id.clone(),
        init_pid,
    });
    let _lock = det.lock;
    accept_loop(&shared, det.listener.as_fd())
}

fn accept_loop(shared: &Arc<Shared>, listener: std::os::fd::BorrowedFd<'_>) -> i32 {
    loop {
        let conn = match crate::sys::accept(listener.as_raw_fd()) {
            Ok(c) => c,
            Err(nix::Error::EINTR) | Err(nix::Error::ECONNABORTED) => continue,
            Err(nix::Error::EMFILE) | Err(nix::Error::ENFILE) | Err(nix::Error::ENOMEM) => {
                // Out of descriptors: let the running connections finish.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => {
                tracing::error!(%e, "accept failed; the supervisor stops serving");
                return 125;
            }
        };
        if shared.connections.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let _ = protocol::send(
                conn.as_fd(),
                &Response::error(ErrorKind::Failed, "too many connections; try again"),
                &[],
            );
            continue;
        }
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("connection".into())
            .spawn(move || {
                connection(&s, conn);
                s.connections.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(%e, "cannot start a connection thread");
        }
    }
}

/// Whether the peer may use the socket: its uid is the owner's or root's.
fn authorised(conn: &OwnedFd, owner: u32) -> Result<bool, nix::Error> {
    let cred = nix::sys::socket::getsockopt(conn, nix::sys::socket::sockopt::PeerCredentials)?;
    Ok(cred.uid() == owner || cred.uid() == 0)
}

fn answer(conn: &OwnedFd, r: &Response) {
    if let Err(e) = protocol::send(conn.as_fd(), r, &[]) {
        tracing::debug!(%e, "cannot answer a client");
    }
}

/// Serves one connection: one request (see [`crate::protocol`]).
fn connection(shared: &Arc<Shared>, conn: OwnedFd) {
    let owner = shared.state.lock().owner;
    match authorised(&conn, owner) {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("a client that is neither the owner nor root was refused");
            answer(
                &conn,
                &Response::error(
                    ErrorKind::Unauthorized,
                    "permission denied: only the sandbox's owner or root may use it",
                ),
            );
            return;
        }
        Err(e) => {
            tracing::warn!(%e, "SO_PEERCRED failed; client refused");
            return;
        }
    }
    let timeout = nix::sys::time::TimeVal::new(REQUEST_TIMEOUT.as_secs() as i64, 0);
    let _ = nix::sys::socket::setsockopt(&conn, nix::sys::socket::sockopt::ReceiveTimeout, &timeout);
    let (request, fds) = match protocol::recv::<Request>(conn.as_fd()) {
        Ok(r) => r,
        Err(ProtocolError::Closed) => return,
        Err(e) => {
            tracing::info!(%e, "malformed request");
            answer(&conn, &Response::error(ErrorKind::Malformed, e.to_string()));
            return;
        }
    };
    tracing::debug!(?request, "request");
    let response = match request {
        Request::State => Response::State(shared.state.lock().clone()),
        Request::Kill { pid, mode, signal } => kill(shared, pid, mode, signal),
        Request::Wait { pid } => wait(shared, &conn, pid),
        Request::Ps => processes(shared),
        Request::Exec(req) => return exec(shared, conn, req, fds),
        Request::Resize { .. } | Request::Signal { .. } => Response::error(
            ErrorKind::OutOfOrder,
            "out of order: resize and signal follow an exec on the same connection",
        ),
        Request::Delete { force } => return delete(shared, conn, force),
    };
    drop(fds);
    answer(&conn, &response);
}

fn valid_signal(sig: i32) -> bool {
    (1..=libc::SIGRTMAX()).contains(&sig)
}

fn kill(shared: &Arc<Shared>, pid: Option<i32>, mode: KillMode, sig: i32) -> Response {
    if !valid_signal(sig) {
        return Response::error(ErrorKind::Failed, format!("invalid signal {sig}"));
    }
    if shared.state.lock().status != Status::Running {
        return Response::error(ErrorKind::Stopped, "the sandbox's first program has ended");
    }
    if let Some(p) = pid {
        return kill_pid(shared, p, mode, sig);
    }
    let r = match mode {
        KillMode::Process => shared.sandbox.signal(SignalMode::Process, sig),
        KillMode::Foreground if !shared.has_terminal => {
            return Response::error(
                ErrorKind::NoSuchProcess,
                "the first program has no terminal (--mode foreground needs one)",
            )
        }
        KillMode::Foreground => shared.sandbox.signal(SignalMode::Foreground, sig),
        KillMode::All => return kill_all(shared, sig),
    };
    match r {
        Ok(()) => Response::Ok,
        Err(e) => Response::error(ErrorKind::Failed, e.to_string()),
    }
}

/// `kill --mode all`: freeze, signal, thaw; SIGKILL waits until only init is left.
fn kill_all(shared: &Arc<Shared>, sig: i32) -> Response {
    let _guard = shared.big_lock.lock();
    let init = shared.sandbox.init_pid();
    let frozen = match &shared.freezer {
        Some(f) => match f.freeze() {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(%e, "cannot freeze: signalling without");
                false
            }
        },
        None => false,
    };
    let r = shared.sandbox.signal(SignalMode::All, sig);
    if sig == libc::SIGKILL {
        if let Some(f) = &shared.freezer {
            // Every process the cgroup holds, known to the sentry or not yet: frozen,
            // none can fork meanwhile.
            for p in f.procs() {
                if p != init {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
    if frozen {
        if let Some(f) = &shared.freezer {
            if let Err(e) = f.thaw() {
                tracing::error!(%e, "cannot thaw the sandbox");
            }
        }
    }
    if let Err(e) = r {
        return Response::error(ErrorKind::Failed, e.to_string());
    }
    if sig == libc::SIGKILL {
        if let Some(f) = &shared.freezer {
            if !f.wait_until_only(&[init]) {
                return Response::error(
                    ErrorKind::Failed,
                    "processes of the sandbox survived SIGKILL (still exiting)",
                );
            }
        }
    }
    Response::Ok
}

fn kill_pid(_shared: &Arc<Shared>, pid: i32, _mode: KillMode, _sig: i32) -> Response {
    Response::error(
        ErrorKind::Unsupported,
        format!("kill --pid {pid}: this build's loader cannot signal a process by PID yet"),
    )
}

fn wait(shared: &Arc<Shared>, _conn: &OwnedFd, pid: Option<i32>) -> Response {
    if let Some(p) = pid {
        return Response::error(
            ErrorKind::Unsupported,
            format!("wait --pid {p}: this build's loader cannot wait for a process by PID yet"),
        );
    }
    let mut st = shared.state.lock();
    loop {
        if let Some(status) = st.exit_status {
            return Response::Exited {
                wait_status: status,
            };
        }
        shared.ended.wait(&mut st);
    }
}

fn processes(_shared: &Arc<Shared>) -> Response {
    Response::error(
        ErrorKind::Unsupported,
        "ps: this build's loader cannot list the sandbox's processes yet",
    )
}

fn exec(_shared: &Arc<Shared>, conn: OwnedFd, _req: protocol::ExecRequest, fds: Vec<OwnedFd>) {
    drop(fds);
    answer(
        &conn,
        &Response::error(
            ErrorKind::Unsupported,
            "exec: this build's loader cannot start a process in a running sandbox yet",
        ),
    );
}

fn delete(shared: &Arc<Shared>, conn: OwnedFd, force: bool) {
    let guard = shared.big_lock.lock();
    let status = shared.state.lock().status;
    if status == Status::Running && !force {
        answer(
            &conn,
            &Response::error(
                ErrorKind::Running,
                "the sandbox is running: stop it first, or use --force",
            ),
        );
        return;
    }
    tracing::info!(force, "deleting the sandbox");
    if let Err(e) = shared.sandbox.destroy() {
        tracing::debug!(%e, "destroy (init already gone?)");
    }
    {
        let mut st = shared.state.lock();
        while st.exit_status.is_none() {
            shared.ended.wait(&mut st);
        }
    }
    if let Some(f) = &shared.freezer {
        if !f.wait_until_only(&[]) {
            tracing::warn!("processes of the sandbox are still exiting");
        }
    }
    let cgroups = shared.state.lock().cgroups.clone();
    for dir in cgroups.iter().rev() {
        freezer::remove_cgroup(dir);
    }
    remove_state_dir(&shared.dir);
    answer(&conn, &Response::Ok);
    drop(conn);
    drop(guard);
    tracing::info!("sandbox deleted; the supervisor exits");
    std::process::exit(0);
}
