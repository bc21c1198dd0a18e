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
//! An OCI `create` ([`crate::oci`]) is `run -d` with the first program held before
//! its `execve` ([`OciServe`]: the state's [`Status::Created`], reported ready at that
//! point); a `start` request on the same socket releases it.
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
use sandbox_loader::{ExecEvent, ExecSpec, ExecTerminal, Sandbox, SandboxSpec, SignalMode};
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
    /// Which cgroup hierarchy freezes the sandbox (tests force v2 on hybrid hosts).
    pub freezer: freezer::Preference,
    lock: nix::fcntl::Flock<fs::File>,
    listener: OwnedFd,
}

/// Step 1 and 2 of the module's list. Call first in the supervisor process.
pub fn prepare(root: &state::StateRoot, id: &str) -> Result<Detached, DaemonError> {
    // An OCI `create` passes the readiness pipe by path (the client's descriptor in
    // /proc) and keeps our stdio for the container: see `crate::oci`.
    let oci_ready = std::env::var_os(crate::oci::READY_ENV);
    let ready = match &oci_ready {
        Some(path) => fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| DaemonError::Io("readiness pipe", e))?
            .into(),
        // The pipe to the client is our stdout: keep a copy for the report.
        None => std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| DaemonError::Io("dup", e))?,
    };
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
    if oci_ready.is_none() {
        nix::unistd::dup2_stdout(&log).map_err(|e| DaemonError::Sys("dup2", e))?;
        nix::unistd::dup2_stderr(&log).map_err(|e| DaemonError::Sys("dup2", e))?;
    }
    let lock = nix::fcntl::Flock::lock(
        state::open_lock(&dir)?,
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .map_err(|_| DaemonError::Locked)?;
    let listener = listen(&dir.join("sock"))?;
    Ok(Detached {
        id: id.to_string(),
        dir,
        freezer: freezer::Preference::Auto,
        lock,
        listener,
    })
}

fn listen(path: &std::path::Path) -> Result<OwnedFd, DaemonError> {
    use nix::sys::socket::{
        bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
    };
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
    for f in [
        "state.json",
        "state.json.tmp",
        "sock",
        "log",
        "lock",
        crate::oci::OCI_FILE,
    ] {
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
    /// The first program's environment: exec'd processes start from it.
    env: Vec<String>,
    connections: AtomicUsize,
    /// Serialises `kill --mode all` and `delete`.
    big_lock: Mutex<()>,
    /// OCI mode (`create`): the write end of the start gate until `start`.
    oci: Option<Mutex<Option<OwnedFd>>>,
}

/// How an OCI `create`'s supervisor differs from `run -d`'s: the first program is
/// held before its exec until `start` (the write end of
/// [`SandboxSpec::start_gate`]'s pipe); the supervisor is ready (and `created`) once
/// the program waits there (`create` has checked that the program exists, as runc
/// does). The process the runtime's
/// caller (conmon) waits for is init (see [`crate::oci`]).
pub struct OciServe {
    pub gate: OwnedFd,
}

/// Steps 3 to 5: starts the sandbox, reports, serves until `delete`; returns the
/// process's exit status.
pub fn serve(mut spec: SandboxSpec, det: Detached, oci: Option<OciServe>) -> i32 {
    let env = spec.env.clone();
    // The supervisor makes calls the loader's own allow-list does not cover (accept,
    // the state files, cgroups): it is not confined.
    spec.loader_seccomp = false;
    spec.forward_signals = false;
    let argv = spec.argv.clone();
    let rootless = !nix::unistd::geteuid().is_root();
    let loader_uses_v2 = !rootless
        && ((spec.pids_limit.is_some() && !freezer::v1_controller("pids"))
            || (spec.memory_limit.is_some() && !freezer::v1_controller("memory")));
    let mut freezer = Freezer::create(&det.id, loader_uses_v2, det.freezer);
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
    // Ready once the program runs (OCI: waits at the start gate); a start-up failure
    // is reported with its status. A program that ran and has already ended (`run -d
    // -- true`) is a stopped sandbox.
    let mut ended_early = None;
    let announced = sandbox.program_pid().is_ok();
    if !(announced && (oci.is_some() || program_execed(&sandbox))) {
        let failure = match sandbox.wait() {
            Ok(out) if announced => {
                ended_early = Some(out.wait_status);
                None
            }
            Ok(out) => Some((
                "the sandbox ended before its program ran".to_string(),
                if out.exit_code() == 0 {
                    125
                } else {
                    out.exit_code()
                },
            )),
            Err(e) => Some((e.to_string(), e.exit_code())),
        };
        if let Some((message, exit_code)) = failure {
            if let Some(f) = &freezer {
                freezer::remove_cgroup(&f.dir);
            }
            remove_state_dir(&det.dir);
            report(&Readiness::Failed { message, exit_code });
            return exit_code;
        }
    }
    let init_pid = sandbox.init_pid();
    if freezer.is_none() {
        freezer = Freezer::of_sandbox(init_pid);
    }
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
        status: if ended_early.is_some() {
            Status::Stopped
        } else if oci.is_some() {
            Status::Created
        } else {
            Status::Running
        },
        created: state::now_rfc3339(),
        argv,
        owner: nix::unistd::geteuid().as_raw(),
        exit_status: ended_early,
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
        env,
        connections: AtomicUsize::new(0),
        big_lock: Mutex::new(()),
        oci: oci.map(|o| Mutex::new(Some(o.gate))),
    });
    if ended_early.is_none() {
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("first-program".into())
            .spawn(move || {
                let status = match shared.sandbox.wait() {
                    Ok(out) => out.wait_status,
                    Err(e) => {
                        tracing::warn!(%e, "the sandbox ended with an error");
                        if shared.oci.is_some() {
                            // An OCI container's stderr is its caller's (conmon's): the
                            // user sees why, as with runc's message.
                            let _ = writeln!(std::io::stderr(), "sandbox: {e}");
                        }
                        // An exit with the error's status (125, 126, 127).
                        (e.exit_code() & 0xff) << 8
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

/// Waits until the first program has executed (its executable is no longer this
/// binary, which the holder, init's fork, forked it from) — true — or has ended (an exec failure: 126,
/// 127) — false. The loader announces the program once its filters are installed,
/// just before its `execve`; the exec's outcome comes later.
fn program_execed(sandbox: &Sandbox) -> bool {
    use std::os::unix::fs::MetadataExt;
    let identity = |path: &str| fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let ours = identity("/proc/self/exe");
    let init = sandbox.init_pid();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(sandbox_loader::SandboxEvent::ProgramExited { .. }) = sandbox.events().try_recv()
        {
            return false;
        }
        let children = |pid: &str| {
            fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default()
        };
        // The program is init's grandchild: init forks the holder of the program's
        // session (a fork of init: never a new executable), which forks the program.
        let holders = children(&init.to_string());
        let candidates: Vec<String> = holders.split_whitespace().map(children).collect();
        let init_cmdline = fs::read(format!("/proc/{init}/cmdline")).ok();
        for c in candidates.iter().flat_map(|c| c.split_whitespace()) {
            let exe = identity(&format!("/proc/{c}/exe"));
            // Before its execve the program is a fork of init: the same executable
            // (this binary) and the same command line. The program may be this
            // binary too (a nested `sandbox`): its command line tells then.
            // (Empty while the process exits, after a failed execve: no evidence.)
            let cmdline = fs::read(format!("/proc/{c}/cmdline"))
                .ok()
                .filter(|c| !c.is_empty());
            let new_exe = exe.is_some() && exe != ours;
            let new_cmdline =
                cmdline.is_some() && init_cmdline.is_some() && cmdline != init_cmdline;
            if new_exe || new_cmdline {
                return true;
            }
        }
        if std::time::Instant::now() > deadline {
            // Something else is wrong; the program was announced: carry on.
            tracing::warn!("cannot tell whether the first program has executed");
            return true;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Why a peer is refused.
#[derive(Debug)]
enum Refusal {
    /// Neither the owner nor root.
    Stranger,
    /// A process of a sandbox (in a PID namespace below ours): a sandboxed program
    /// that can see a supervisor's socket (a bind mount, `--read-only` over the host
    /// root) must not drive it — or another sandbox's.
    Sandboxed,
}

/// Whether the peer may use the socket: its uid is the owner's or root's, and it is
/// not inside a sandbox. The PID namespace of the peer (the process that connected,
/// as `SO_PEERCRED` names it) must be ours; a peer whose PID is 0 to us is in an
/// ancestor namespace, outside every sandbox. The namespace is read from
/// `/proc/PID/ns/pid`, and the peer's pidfd (`SO_PEERPIDFD`) must still be alive
/// afterwards, so that the PID was not reused meanwhile. (Kernels before 6.5 have no
/// `SO_PEERPIDFD`: the check is then racy against PID reuse, and says so in the log.)
fn authorised(conn: &OwnedFd, owner: u32) -> Result<Result<(), Refusal>, nix::Error> {
    let cred = nix::sys::socket::getsockopt(conn, nix::sys::socket::sockopt::PeerCredentials)?;
    if cred.uid() != owner && cred.uid() != 0 {
        return Ok(Err(Refusal::Stranger));
    }
    let pid = cred.pid();
    if pid == 0 {
        return Ok(Ok(()));
    }
    let pidfd = crate::sys::peer_pidfd(conn.as_fd());
    if let Err(e) = &pidfd {
        tracing::info!(%e, "no SO_PEERPIDFD: the peer's namespace check is racy");
    }
    let ns = |p: &str| fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let ours = ns("self");
    let theirs = ns(&pid.to_string());
    let same = ours.is_some() && ours == theirs;
    let still_there = match &pidfd {
        Ok(fd) => crate::sys::pidfd_alive(fd.as_fd()),
        Err(_) => true,
    };
    if same && still_there {
        Ok(Ok(()))
    } else {
        Ok(Err(Refusal::Sandboxed))
    }
}

fn answer(conn: &OwnedFd, r: &Response) {
    if let Err(e) = protocol::send(conn.as_fd(), r, &[]) {
        tracing::debug!(%e, "cannot answer a client");
    }
}

/// Serves one connection: one request (see [`crate::protocol`]).
fn connection(shared: &Arc<Shared>, conn: OwnedFd) {
    let owner = shared.state.lock().owner;
    let timeout = nix::sys::time::TimeVal::new(REQUEST_TIMEOUT.as_secs() as i64, 0);
    let _ =
        nix::sys::socket::setsockopt(&conn, nix::sys::socket::sockopt::ReceiveTimeout, &timeout);
    match authorised(&conn, owner) {
        Ok(Ok(())) => {}
        Ok(Err(why)) => {
            tracing::warn!(?why, "a client was refused");
            // Read (and drop) its request first: closing with it unread would reset
            // the connection, and the client would see no answer.
            drop(protocol::recv_frame(conn.as_fd()));
            let message = match why {
                Refusal::Stranger => {
                    "permission denied: only the sandbox's owner or root may use it"
                }
                Refusal::Sandboxed => {
                    "permission denied: a process inside a sandbox may not use a supervisor"
                }
            };
            answer(&conn, &Response::error(ErrorKind::Unauthorized, message));
            return;
        }
        Err(e) => {
            tracing::warn!(%e, "SO_PEERCRED failed; client refused");
            return;
        }
    }
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
        Request::Wait { pid } => wait(shared, pid),
        Request::Ps => processes(shared),
        Request::Exec(req) => return exec(shared, conn, req, fds),
        Request::Resize { .. } | Request::Signal { .. } => Response::error(
            ErrorKind::OutOfOrder,
            "out of order: resize and signal follow an exec on the same connection",
        ),
        Request::Delete { force } => return delete(shared, conn, force),
        Request::Start => start(shared),
        Request::Pause => freeze(shared, true),
        Request::Resume => freeze(shared, false),
    };
    drop(fds);
    answer(&conn, &response);
}

/// OCI `start`: opens the start gate once.
fn start(shared: &Arc<Shared>) -> Response {
    let Some(gate) = &shared.oci else {
        return Response::error(ErrorKind::Failed, "start: not a created (OCI) sandbox");
    };
    let Some(gate) = gate.lock().take() else {
        return Response::error(
            ErrorKind::Failed,
            "start: the container was started already",
        );
    };
    if let Err(e) = nix::unistd::write(&gate, b"1") {
        return Response::error(ErrorKind::Failed, format!("start: {e}"));
    }
    {
        let mut st = shared.state.lock();
        if st.status == Status::Created {
            st.status = Status::Running;
            if let Err(e) = state::write_state(&shared.dir, &st) {
                tracing::warn!(%e, "cannot update the state file");
            }
        }
    }
    Response::Ok
}

/// OCI `pause` / `resume`: the sandbox's freezer cgroup.
fn freeze(shared: &Arc<Shared>, frozen: bool) -> Response {
    let _guard = shared.big_lock.lock();
    let Some(f) = &shared.freezer else {
        return Response::error(ErrorKind::Unsupported, "no freezer cgroup: cannot pause");
    };
    match if frozen { f.freeze() } else { f.thaw() } {
        Ok(()) => Response::Ok,
        Err(e) => Response::error(ErrorKind::Failed, e.to_string()),
    }
}

fn valid_signal(sig: i32) -> bool {
    (1..=libc::SIGRTMAX()).contains(&sig)
}

/// A loader error as an answer.
fn loader_error(e: &sandbox_loader::LoaderError) -> Response {
    use sandbox_loader::LoaderError as L;
    let kind = match e {
        L::NoSuchProcess(_) => ErrorKind::NoSuchProcess,
        L::PidAlreadyWaited(_) => ErrorKind::AlreadyWaited,
        L::NoTerminal(_) => ErrorKind::NoTerminal,
        L::NotFound { .. } => ErrorKind::NotFound,
        L::CannotExecute { .. } => ErrorKind::CannotExecute,
        L::Ended => ErrorKind::Stopped,
        _ => ErrorKind::Failed,
    };
    Response::error(kind, e.to_string())
}

fn kill(shared: &Arc<Shared>, pid: Option<i32>, mode: KillMode, sig: i32) -> Response {
    if !valid_signal(sig) {
        return Response::error(ErrorKind::Failed, format!("invalid signal {sig}"));
    }
    let status = shared.state.lock().status;
    let created = status == Status::Created && shared.oci.is_some();
    if status != Status::Running && !created {
        return Response::error(ErrorKind::Stopped, "the sandbox's first program has ended");
    }
    if shared.oci.is_some() && pid.is_none() && mode == KillMode::Process {
        // The first program is the container's PID 1 to its caller: Linux delivers a
        // signal from outside a PID namespace to its init only if init handles it
        // (SIGKILL and SIGSTOP always).
        if let Some(host_pid) = crate::oci::first_program(shared.sandbox.init_pid()) {
            if !crate::oci::init_would_take(host_pid, sig) {
                tracing::info!(
                    sig,
                    "signal to PID 1 without a handler: ignored, as Linux does"
                );
                return Response::Ok;
            }
        }
    }
    let mode = match mode {
        KillMode::Process => SignalMode::Process,
        KillMode::Foreground => {
            // gVisor's rule: no terminal is an error; a terminal without a foreground
            // group falls back to the process (the loader does that).
            if let Err(r) = has_terminal(shared, pid) {
                return r;
            }
            SignalMode::Foreground
        }
        KillMode::All => return kill_all(shared, sig),
    };
    match shared.sandbox.kill(pid, mode, sig) {
        Ok(()) => Response::Ok,
        Err(e) => loader_error(&e),
    }
}

/// Whether `pid` (the first program when `None`) has a controlling terminal.
fn has_terminal(shared: &Arc<Shared>, pid: Option<i32>) -> Result<(), Response> {
    let target = match pid {
        Some(p) => p,
        None => shared.sandbox.program_pid().map_err(|e| loader_error(&e))?,
    };
    let procs = shared.sandbox.processes().map_err(|e| loader_error(&e))?;
    match procs.iter().find(|p| p.pid == target) {
        None => Err(Response::error(
            ErrorKind::NoSuchProcess,
            format!("no process {target} in the sandbox"),
        )),
        Some(p) if p.tty.is_none() => Err(Response::error(
            ErrorKind::NoTerminal,
            format!("process {target} has no controlling terminal (--mode foreground needs one)"),
        )),
        Some(_) => Ok(()),
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
    // SIGKILL while frozen goes straight to every process of the cgroup (below); the
    // sentry's `All` is sent once they are thawed (it waits for its SIGKILLs to take
    // effect, which frozen processes cannot do).
    let kill_later = frozen && sig == libc::SIGKILL;
    let mut r = if kill_later {
        Ok(())
    } else {
        shared.sandbox.kill(None, SignalMode::All, sig)
    };
    if let (Some(f), true) = (&shared.freezer, frozen) {
        // Every process the cgroup holds (frozen: none can fork meanwhile) gets the
        // signal: SIGKILL all of them; another signal those the sentry has not
        // registered yet (a child forked a moment ago), which its `All` missed.
        let known: Vec<i32> = match shared.sandbox.processes() {
            Ok(list) => list.iter().map(|p| p.pid).collect(),
            Err(_) => Vec::new(),
        };
        if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
            for p in f.procs() {
                if p == init {
                    continue;
                }
                let unknown = sandbox_pid(p).is_none_or(|n| !known.contains(&n));
                if sig == libc::SIGKILL || unknown {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), s);
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
    if kill_later {
        // Everything is dying already: a signal that reaches nobody is no error here.
        if let Err(e) = shared.sandbox.kill(None, SignalMode::All, sig) {
            tracing::debug!(%e, "SIGKILL to all after the cgroup's");
        }
        r = Ok(());
    }
    if sig == libc::SIGKILL {
        if let Some(f) = &shared.freezer {
            if !f.wait_until_only(&[init]) {
                return Response::error(
                    ErrorKind::Failed,
                    "processes of the sandbox survived SIGKILL (still exiting)",
                );
            }
            return Response::Ok;
        }
        // No freezer (rootless): as far as the sentry sees, until only init is left.
        if r.is_ok() && !only_init_left(shared) {
            return Response::error(
                ErrorKind::Failed,
                "processes of the sandbox survived SIGKILL (still exiting)",
            );
        }
    }
    match r {
        Ok(()) => Response::Ok,
        Err(e) => loader_error(&e),
    }
}

/// Waits (a few seconds at most) until the sentry sees no process but init (zombies
/// aside); false on timeout.
fn only_init_left(shared: &Arc<Shared>) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match shared.sandbox.processes() {
            Ok(list) if list.iter().all(|p| p.pid == 1 || p.state == 'Z') => return true,
            Ok(_) => {}
            Err(_) => return true,
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The PID in its own (innermost) PID namespace of host process `host`: the last
/// field of `NSpid` in `/proc/PID/status`.
fn sandbox_pid(host: i32) -> Option<i32> {
    let status = fs::read_to_string(format!("/proc/{host}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| v.split_whitespace().last())
        .and_then(|n| n.parse().ok())
}

fn wait(shared: &Arc<Shared>, pid: Option<i32>) -> Response {
    if let Some(p) = pid {
        return match shared.sandbox.wait_pid(p) {
            Ok(wait_status) => Response::Exited { wait_status },
            Err(e) => loader_error(&e),
        };
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

fn processes(shared: &Arc<Shared>) -> Response {
    match shared.sandbox.processes() {
        Ok(processes) => Response::Processes { processes },
        Err(e) => loader_error(&e),
    }
}

/// Builds the loader's exec spec from a request and the descriptors that came with it.
fn exec_spec(
    shared: &Arc<Shared>,
    req: protocol::ExecRequest,
    fds: Vec<OwnedFd>,
) -> Result<ExecSpec, Response> {
    use protocol::ExecTty;
    let bad = |m: &str| Response::error(ErrorKind::Malformed, m.to_string());
    if req.argv.is_empty() {
        return Err(bad("exec: no program given"));
    }
    let terminal = match (req.tty, fds.len()) {
        (ExecTty::Stdio, 3) => {
            let mut it = fds.into_iter();
            match (it.next(), it.next(), it.next()) {
                (Some(a), Some(b), Some(c)) => ExecTerminal::Stdio([a, b, c]),
                _ => return Err(bad("exec: stdio needs 3 descriptors")),
            }
        }
        (ExecTty::Stdio, _) => return Err(bad("exec: stdio needs 3 descriptors")),
        (ExecTty::Borrow, 1) => {
            let Some(fd) = fds.into_iter().next() else {
                return Err(bad("exec --tty needs the terminal's descriptor"));
            };
            if !nix::unistd::isatty(&fd).unwrap_or(false) {
                return Err(bad("exec --tty: the descriptor passed is not a terminal"));
            }
            ExecTerminal::Borrowed(fd)
        }
        (ExecTty::Borrow, _) => {
            return Err(bad("exec --tty needs exactly the terminal's descriptor"))
        }
        (ExecTty::Pty, 0) => ExecTerminal::Pty {
            console_socket: req.console_socket.map(PathBuf::from),
            winsize: req.winsize,
        },
        (ExecTty::Pty, _) => return Err(bad("exec --tty=pty takes no descriptor")),
    };
    let mut env = shared.env.clone();
    for e in req.env {
        let key = e.split('=').next().unwrap_or_default().to_string();
        env.retain(|kv| kv.split('=').next() != Some(key.as_str()));
        env.push(e);
    }
    Ok(ExecSpec {
        argv: req.argv,
        env,
        cwd: req.cwd.map(PathBuf::from),
        user: req.user,
        capabilities: req.capabilities.map(sandbox_loader::CapSet::from_bits),
        terminal,
    })
}

/// `exec`: starts the process, answers `Started` (with a pty's master), then serves
/// `Resize`/`Signal` from the client until the process ends, and answers `Exited`.
/// A client gone before it got `Started` leaves nothing behind: the process is killed
/// and reaped.
fn exec(shared: &Arc<Shared>, conn: OwnedFd, req: protocol::ExecRequest, fds: Vec<OwnedFd>) {
    if shared.state.lock().status != Status::Running {
        answer(
            &conn,
            &Response::error(ErrorKind::Stopped, "the sandbox's first program has ended"),
        );
        return;
    }
    let spec = match exec_spec(shared, req, fds) {
        Ok(s) => s,
        Err(r) => return answer(&conn, &r),
    };
    let started = {
        // In the freezer cgroup from its first instruction (see `Freezer::thread_join`);
        // no `kill --mode all` freezes meanwhile.
        let _no_freeze = shared.big_lock.lock();
        let joined = shared.freezer.as_ref().is_some_and(Freezer::thread_join);
        let started = shared.sandbox.exec(spec);
        if joined {
            if let Some(f) = &shared.freezer {
                f.thread_leave();
            }
        }
        started
    };
    let handle = match started {
        Ok(h) => h,
        Err(e) => return answer(&conn, &loader_error(&e)),
    };
    if let Some(f) = &shared.freezer {
        f.adopt(handle.host_pid());
    }
    let pid = handle.pid();
    let master = handle.pty_master();
    let passed: Vec<std::os::fd::BorrowedFd<'_>> = master.iter().map(|m| m.as_fd()).collect();
    if let Err(e) = protocol::send(conn.as_fd(), &Response::Started { pid }, &passed) {
        tracing::info!(pid, %e, "the exec client left before the process was announced: killing its session");
        // Its process group on the host first (its children there, known to the
        // sentry or not yet), then whatever else the sentry sees in its session.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(handle.host_pid()),
            nix::sys::signal::Signal::SIGKILL,
        );
        kill_session(shared, pid);
        let _ = shared.sandbox.wait_pid(pid);
        return;
    }
    drop(master);
    // The client's requests for this process, until it ends.
    let reader = {
        let s = shared.clone();
        let c = match conn.try_clone() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%e, "cannot serve the exec client's requests");
                return;
            }
        };
        std::thread::Builder::new()
            .name("exec-client".into())
            .spawn(move || exec_requests(&s, &c, pid))
    };
    let status = loop {
        match handle.events().recv() {
            Ok(ExecEvent::Exited { wait_status }) => break Some(wait_status),
            Ok(ExecEvent::Stopped { sig }) => {
                answer(&conn, &Response::ProcessStopped { signal: sig })
            }
            Ok(ExecEvent::Continued) => answer(&conn, &Response::ProcessContinued),
            Err(_) => break None,
        }
    };
    // The sandbox ended before the process's end was reported: the kernel killed it
    // with SIGKILL, as every process of a PID namespace whose init is gone.
    let response = Response::Exited {
        wait_status: status.unwrap_or(libc::SIGKILL),
    };
    answer(&conn, &response);
    let _ = nix::sys::socket::shutdown(conn.as_raw_fd(), nix::sys::socket::Shutdown::Both);
    if let Ok(t) = reader {
        let _ = t.join();
    }
}

/// SIGKILL to every process of the session `sid` (an exec'd process and whatever it
/// started), until none is left (a process may fork while the list is read).
fn kill_session(shared: &Arc<Shared>, sid: i32) {
    for _ in 0..100 {
        let members: Vec<i32> = match shared.sandbox.processes() {
            Ok(list) => list
                .iter()
                .filter(|p| p.sid == sid && p.state != 'Z')
                .map(|p| p.pid)
                .collect(),
            Err(_) => return,
        };
        if members.is_empty() {
            return;
        }
        for p in members {
            let _ = shared
                .sandbox
                .kill(Some(p), SignalMode::Process, libc::SIGKILL);
        }
        std::thread::yield_now();
    }
    tracing::warn!(
        sid,
        "processes of an abandoned exec's session survived SIGKILL"
    );
}

fn exec_requests(shared: &Arc<Shared>, conn: &OwnedFd, pid: i32) {
    let _ = nix::sys::socket::setsockopt(
        conn,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(0, 0),
    );
    loop {
        let r = match protocol::recv::<Request>(conn.as_fd()) {
            Ok((Request::Resize { rows, cols }, _)) => shared.sandbox.resize_pid(pid, rows, cols),
            Ok((Request::Signal { signal }, _)) if valid_signal(signal) => {
                // ^C at the client's terminal: for the foreground group of its process's
                // terminal, or the process itself without one.
                let mode = if has_terminal(shared, Some(pid)).is_ok() {
                    SignalMode::Foreground
                } else {
                    SignalMode::Process
                };
                shared.sandbox.kill(Some(pid), mode, signal)
            }
            Ok((Request::Signal { signal }, _)) => {
                answer(
                    conn,
                    &Response::error(ErrorKind::Failed, format!("invalid signal {signal}")),
                );
                continue;
            }
            Ok((r, _)) => {
                tracing::info!(?r, "out-of-order request during an exec");
                answer(
                    conn,
                    &Response::error(
                        ErrorKind::OutOfOrder,
                        "out of order: only resize and signal may follow an exec",
                    ),
                );
                continue;
            }
            Err(ProtocolError::Closed) | Err(ProtocolError::Socket(_)) => return,
            Err(e) => {
                tracing::info!(%e, "malformed request during an exec");
                answer(conn, &Response::error(ErrorKind::Malformed, e.to_string()));
                continue;
            }
        };
        // Answered once done: the client waits for it, so that what it does next
        // (and what a test sees it do) comes after the signal or the resize.
        match r {
            Ok(()) => answer(conn, &Response::Ok),
            Err(e) => {
                tracing::debug!(pid, %e, "exec client request failed");
                answer(conn, &loader_error(&e));
            }
        }
    }
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
    // The other clients (exec, wait) have their answers — the processes ended — before
    // the supervisor goes (a second at most).
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while shared.connections.load(Ordering::SeqCst) > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    answer(&conn, &Response::Ok);
    drop(conn);
    drop(guard);
    tracing::info!("sandbox deleted; the supervisor exits");
    std::process::exit(0);
}
