//! The OCI runtime command line (runtime-spec "Runtime and Lifecycle", runc's flags),
//! as podman and conmon drive it, on the long-running sandbox of [`crate::daemon`]:
//! `create`, `start`, `state`, `kill`, `delete`, `exec`, `pause`, `resume`, `features`.
//!
//! - `create --bundle DIR --pid-file F [--console-socket S] ID` maps the bundle's
//!   `config.json` ([`sandbox_loader::oci`]), creates the state directory and starts
//!   the supervisor as `run -d` does, with three differences ([`daemon::OciServe`]):
//!   the supervisor keeps the stdio `create` was given (conmon's pipes: the
//!   container's stdio) and logs to the state directory's `log`; the first program is
//!   held before its exec until `start`; and the supervisor exits when the first
//!   program ends, with its status (killing itself with the same signal). `create`
//!   writes the supervisor's PID to `--pid-file` and returns once the program waits
//!   at the gate: the supervisor is then the child of `create`'s parent if that is a
//!   subreaper (conmon), which waits for it and so gets the container's exit status.
//! - `kill ID SIG` goes to the first program; a signal it has no handler for (but
//!   SIGKILL and SIGSTOP) is dropped, as Linux drops it for a PID namespace's init:
//!   `podman stop` of a program without a SIGTERM handler waits for its timeout's
//!   SIGKILL as with runc. `--all` signals every process of the sandbox.
//! - `state ID` prints the runtime-spec state JSON: `created`, `running`, `paused`
//!   (the sandbox's freezer cgroup is frozen), `stopped` (the first program ended, or
//!   the supervisor is gone); `pid` is init's while it runs.
//! - Errors: printed on stderr and, with `--log FILE`, appended to FILE (as JSON
//!   lines `{"level":"error","msg":...,"time":...}` with `--log-format json`, which
//!   podman reads to show the cause).

use crate::client::{self, ClientError};
use crate::daemon::{self, Readiness};
use crate::protocol::{Request, Response};
use crate::state::{self, StateRoot, Status};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

/// The environment variable naming the readiness pipe of an OCI `create`'s
/// supervisor (`/proc/CLIENT/fd/N`).
pub const READY_ENV: &str = "SANDBOX_OCI_READY";

/// The environment variable naming the pipe on which an `exec --detach`'s child
/// reports that its process has started (`/proc/PARENT/fd/N`).
pub const EXEC_READY_ENV: &str = "SANDBOX_OCI_EXEC_READY";

/// In the child of `exec --detach`: tells the parent the process has started (once).
pub fn report_exec_started() {
    if let Some(path) = std::env::var_os(EXEC_READY_ENV) {
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(path) {
            let _ = f.write_all(b"1");
        }
    }
}

/// `exec --detach`: runs this command again without `--detach` as a child (the
/// attached client, whose exit status is the process's), waits until its process has
/// started, and writes the child's PID to `pid_file`. conmon, a subreaper, inherits
/// the child when this command exits.
pub fn exec_detached(
    argv: &[std::ffi::OsString],
    pid_file: Option<&Path>,
) -> Result<i32, OciCliError> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| OciCliError::Other(format!("pipe: {e}")))?;
    let ready = format!("/proc/{}/fd/{}", std::process::id(), write.as_raw_fd());
    let rest = argv
        .iter()
        .skip(1)
        .filter(|a| a.as_os_str() != "--detach" && a.as_os_str() != "-d");
    let mut child = std::process::Command::new("/proc/self/exe")
        .args(rest)
        .env(EXEC_READY_ENV, ready)
        .spawn()
        .map_err(|e| OciCliError::Other(format!("exec --detach: {e}")))?;
    loop {
        let mut fds = [nix::poll::PollFd::new(
            read.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)) {
            Ok(n) if n > 0 => break,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(OciCliError::Other(format!("poll: {e}"))),
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Ended before its process started: its error is on our stderr already.
            return Ok(status.code().unwrap_or(1));
        }
    }
    drop(write);
    if let Some(pid_file) = pid_file {
        std::fs::write(pid_file, child.id().to_string())
            .map_err(|e| OciCliError::Other(format!("--pid-file: {e}")))?;
    }
    Ok(0)
}

/// The OCI facts of a sandbox kept in its state directory.
pub const OCI_FILE: &str = "oci.json";

/// The runtime-spec version the state JSON reports.
pub const OCI_VERSION: &str = "1.0.2";

/// What `state` needs beyond the sandbox's own state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OciFacts {
    pub bundle: PathBuf,
    pub annotations: BTreeMap<String, String>,
}

/// The runtime-spec state of a container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub status: String,
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
}

/// Arguments of `create`.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the PID conmon waits for here (the sandbox's init).
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// With process.terminal: send the pty's master over this unix socket.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc's command line; the sandbox never passes descriptors on.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc's command line (no effect).
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for runc's command line (no effect).
    #[arg(long)]
    pub no_new_keyring: bool,
    pub id: String,
}

/// Errors of the OCI verbs.
#[derive(Debug, thiserror::Error)]
pub enum OciCliError {
    #[error(transparent)]
    Config(#[from] sandbox_loader::oci::OciError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("{0}")]
    Other(String),
}

impl OciCliError {
    /// The exit status: the client's, else 1 (runc's).
    pub fn exit_code(&self) -> i32 {
        match self {
            OciCliError::Client(e) => e.exit_code(),
            _ => 1,
        }
    }
}

/// Appends an error to the `--log` file: a JSON line with `json`, else text.
pub fn log_error(log: Option<&Path>, json: bool, msg: &str) {
    let Some(path) = log else { return };
    let line = if json {
        serde_json::json!({"level": "error", "msg": msg, "time": state::now_rfc3339()}).to_string()
    } else {
        format!("time=\"{}\" level=error msg={msg:?}", state::now_rfc3339())
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// `create`: starts the supervisor (the process re-executed with `__supervise`,
/// whose command line is this one), waits for it to hold the program at the start
/// gate, and writes its PID to `--pid-file`.
pub fn create(
    root: &StateRoot,
    args: &CreateArgs,
    argv: Vec<std::ffi::OsString>,
) -> Result<i32, OciCliError> {
    let bundle = std::fs::canonicalize(&args.bundle)
        .map_err(|e| OciCliError::Other(format!("bundle {}: {e}", args.bundle.display())))?;
    // Refusals (unsupported fields) before anything exists.
    let spec = sandbox_loader::oci::load(&bundle)?;
    let container = sandbox_loader::oci::container_spec(&spec, &bundle)?;
    if let (Some(root), Some(argv0)) = (&container.spec.rootfs, container.spec.argv.first()) {
        if let Err(e) = sandbox_loader::oci::check_executable(root, argv0, &container.spec.env) {
            // The --log line podman reads says which (127 / 126).
            return Err(OciCliError::Other(e.to_string()));
        }
    }
    if container.terminal && args.console_socket.is_none() {
        return Err(OciCliError::Other(
            "process.terminal is true but no --console-socket was given".into(),
        ));
    }
    let dir = root.create_sandbox(&args.id)?;
    let facts = OciFacts {
        bundle: bundle.clone(),
        annotations: container.annotations.clone(),
    };
    let facts_json =
        serde_json::to_vec(&facts).map_err(|e| OciCliError::Other(format!("oci.json: {e}")))?;
    if let Err(e) = std::fs::write(dir.join(OCI_FILE), facts_json) {
        daemon::remove_state_dir(&dir);
        return Err(OciCliError::Other(format!("oci.json: {e}")));
    }
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| OciCliError::Other(format!("pipe: {e}")))?;
    let ready_path = format!("/proc/{}/fd/{}", std::process::id(), write.as_raw_fd());
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg("__supervise")
        .arg("--root")
        .arg(&root.root)
        .arg("--id")
        .arg(&args.id)
        .arg("--")
        .args(argv)
        .env(READY_ENV, &ready_path)
        .env("SANDBOX_LOG_FILE", dir.join("log"));
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            daemon::remove_state_dir(&dir);
            return Err(OciCliError::Other(format!(
                "cannot start the supervisor: {e}"
            )));
        }
    };
    // Our write end stays open (the supervisor opens it through /proc): the report
    // comes, or the supervisor ends without one.
    let reported = loop {
        let mut fds = [nix::poll::PollFd::new(
            read.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)) {
            Ok(n) if n > 0 => break true,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break false,
        }
        if !matches!(child.try_wait(), Ok(None)) {
            // Ended: whatever it wrote before is still readable.
            let mut fds = [nix::poll::PollFd::new(
                read.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            break nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).is_ok_and(|n| n > 0);
        }
    };
    drop(write);
    let mut line = String::new();
    if reported {
        let _ = std::io::BufReader::new(std::fs::File::from(read)).read_line(&mut line);
    }
    match serde_json::from_str::<Readiness>(line.trim()) {
        Ok(Readiness::Ready { init_pid, .. }) => {
            if let Some(pid_file) = &args.pid_file {
                std::fs::write(pid_file, init_pid.to_string())
                    .map_err(|e| OciCliError::Other(format!("--pid-file: {e}")))?;
            }
            Ok(0)
        }
        Ok(Readiness::Failed { message, exit_code }) => {
            let _ = child.wait();
            Err(ClientError::Start { message, exit_code }.into())
        }
        Err(_) => {
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            daemon::remove_state_dir(&dir);
            let last = log.lines().last().unwrap_or("no message").to_string();
            Err(OciCliError::Other(format!(
                "the supervisor ended before the container was created: {last}"
            )))
        }
    }
}

/// In the supervisor of `create`: maps the bundle again and serves.
pub fn supervise_create(args: &CreateArgs, det: daemon::Detached) -> Result<i32, OciCliError> {
    let bundle = std::fs::canonicalize(&args.bundle)
        .map_err(|e| OciCliError::Other(format!("bundle {}: {e}", args.bundle.display())))?;
    let spec = sandbox_loader::oci::load(&bundle)?;
    let mut container = sandbox_loader::oci::container_spec(&spec, &bundle)?;
    if container.terminal {
        container.spec.owned_pty = Some(sandbox_loader::OwnedPty {
            proxy: None,
            console_socket: args.console_socket.clone(),
            output: None,
        });
    }
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| OciCliError::Other(format!("pipe: {e}")))?;
    container.spec.start_gate = Some(read);
    container.spec.clone_parent = true;
    Ok(daemon::serve(
        container.spec,
        det,
        Some(daemon::OciServe { gate: write }),
    ))
}

/// `start`.
pub fn start(root: &StateRoot, id: &str) -> Result<i32, OciCliError> {
    client::request(root, id, &Request::Start)?;
    Ok(0)
}

/// `pause` / `resume`.
pub fn pause(root: &StateRoot, id: &str, frozen: bool) -> Result<i32, OciCliError> {
    client::request(
        root,
        id,
        if frozen {
            &Request::Pause
        } else {
            &Request::Resume
        },
    )?;
    Ok(0)
}

/// Whether the sandbox's freezer cgroup (among `cgroups`) is frozen.
fn frozen(cgroups: &[PathBuf]) -> bool {
    cgroups.iter().any(|d| {
        std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            || std::fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
    })
}

/// The runtime-spec state of `id`.
pub fn oci_state(root: &StateRoot, id: &str) -> Result<OciState, OciCliError> {
    let dir = root.dir(id)?;
    let facts: OciFacts = std::fs::read(dir.join(OCI_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| OciCliError::Other(format!("container {id} does not exist")))?;
    let alive = state::supervisor_alive(&dir);
    let st = match client::request(root, id, &Request::State) {
        Ok(Response::State(st)) => st,
        _ => root.read(id)?,
    };
    let (status, pid) = match st.status {
        _ if !alive => ("stopped", 0),
        Status::Created => ("created", st.init_pid),
        Status::Running if frozen(&st.cgroups) => ("paused", st.init_pid),
        Status::Running => ("running", st.init_pid),
        Status::Stopped | Status::Dead => ("stopped", 0),
    };
    Ok(OciState {
        oci_version: OCI_VERSION.into(),
        id: id.to_string(),
        status: status.into(),
        pid,
        bundle: facts.bundle,
        annotations: facts.annotations,
    })
}

/// `state ID`: the JSON on stdout.
pub fn state(root: &StateRoot, id: &str) -> Result<i32, OciCliError> {
    let st = oci_state(root, id)?;
    let text =
        serde_json::to_string_pretty(&st).map_err(|e| OciCliError::Other(format!("state: {e}")))?;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{text}");
    Ok(0)
}

/// `features`: what this runtime supports (runtime-spec features.md).
pub fn features() -> i32 {
    let f = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": [],
        "mountOptions": ["bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "rprivate", "private", "rslave", "slave"],
        "linux": {
            "namespaces": ["pid", "network", "ipc", "uts", "mount"],
            "capabilities": sandbox_loader::CapSet::from_bits(u64::MAX)
                .names()
                .map(|n| format!("CAP_{n}"))
                .collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": [if cfg!(target_arch = "x86_64") { "SCMP_ARCH_X86_64" } else { "SCMP_ARCH_AARCH64" }]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {"org.opencontainers.runtime-spec.features.sandbox": "job control decided by the sentry"}
    });
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{f:#}");
    0
}

/// The host PID of the first program: the oldest child of init's oldest child (the
/// holder of the program's session).
pub fn first_program(init_pid: i32) -> Option<i32> {
    let oldest_child = |pid: i32| -> Option<i32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    oldest_child(oldest_child(init_pid)?)
}

/// Whether Linux would deliver `sig`, sent from outside its PID namespace, to a
/// namespace init in the state of process `pid`: SIGKILL and SIGSTOP always, any
/// other signal only if the process handles it (`SigCgt` of /proc/PID/status).
pub fn init_would_take(pid: i32, sig: i32) -> bool {
    if sig == libc::SIGKILL || sig == libc::SIGSTOP {
        return true;
    }
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    let caught = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    match caught {
        Some(mask) if (1..=64).contains(&sig) => mask & (1u64 << (sig - 1)) != 0,
        _ => true,
    }
}
