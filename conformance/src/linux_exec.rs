//! Runs a scenario on real Linux and records its trace.
//!
//! Every run gets a fresh pty and a fresh PID namespace. The executor starts
//! `conformance-puppet nsroot` after `unshare(CLONE_NEWPID)`; its child is PID 1 of the
//! namespace, the `init` actor (see [`crate::puppet`]). Every actor, process or thread,
//! connects back to the executor's abstract unix socket and performs the operations it
//! is sent. A step is over when the system is quiescent: no message arrived, no terminal
//! output appeared, and every actor thread is sleeping, stopped or dead (read from
//! `/proc/PID/task/TID/stat`) for [`QUIET_ROUNDS`] consecutive polls. A call that has not
//! returned by then is `pending`; it may complete in a later step (a `done` line). A run
//! that does not settle within [`STEP_TIMEOUT`] ends with an error; at the end every
//! process of the namespace is killed with its init.

use crate::scenario::{Op, PidArg, Scenario, Step};
use crate::sys;
use crate::trace::{signal_name, ActorState, StepRecord, Trace};
use sandbox_sentry::{Errno, SiCode};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Consecutive quiet polls (1 ms each) that end a step.
pub const QUIET_ROUNDS: u32 = 3;
/// The same inside `sandbox run --tty=pty`: the pty's output reaches the executor
/// through a kernel worker (the sandbox's pty master), the loader's proxy and the
/// executor's pty, and the first of those is not a process the executor can watch.
pub const QUIET_ROUNDS_RELAYED: u32 = 12;
/// Longest a step may take to settle.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(5);

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where a run's puppets live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Linux: the `init` actor is PID 1 of a fresh PID namespace (the model's shape).
    Linux,
    /// Linux, with PID 1 a non-actor in a session of its own, its child the holder
    /// (PID 3, another session) and the holder's child the program (PID 2, a group of
    /// its own), which forks the `init` actor (a session leader and child subreaper):
    /// the shape the actors have inside `sandbox run`, whose own init is PID 1 (see
    /// `puppet::sandbox_shaped_pid1`, `puppet::reaper_with_init`). The reference of the
    /// sandbox executors; `explicit_ctty` as for [`SandboxTty::Borrowed`].
    LinuxReaper { explicit_ctty: bool },
    /// Inside `sandbox run` (the binary at `sandbox`), the terminal borrowed or owned.
    Sandbox { sandbox: PathBuf, tty: SandboxTty },
}

/// The sandbox's terminal mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxTty {
    /// `sandbox run --tty`: the executor's fresh pty is the borrowed terminal (the
    /// loader leads its session, as a shell's job would be foreground of it). open()
    /// is not notified, so opening a borrowed terminal never makes it the caller's
    /// controlling terminal (a documented limit of the mode): the puppets follow every
    /// `open tty` without `noctty` by TIOCSCTTY(fd, 0), on Linux too, where it
    /// changes nothing (it succeeds exactly when the open acquired the terminal).
    Borrowed,
    /// `sandbox run --tty=pty`: the sandbox's own pty, proxied to the executor's.
    Owned,
}

/// Where the `sandbox` binary is: `$SANDBOX_BIN`, else `sandbox` next to the running
/// executable (or one directory up, for test binaries in `deps/`), else in the
/// workspace's `target/release` or `target/debug`.
pub fn default_sandbox() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SANDBOX_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        dir.join("sandbox"),
        dir.join("../sandbox"),
        workspace.join("target/release/sandbox"),
        workspace.join("target/debug/sandbox"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// Held while a run forks its namespace root and while a run closes its pty master:
/// between fork and exec the child holds copies of every descriptor of this process,
/// and a copy of another run's master would delay that run's hangup.
static FORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Where the puppet binary is: `$CONFORMANCE_PUPPET`, else `conformance-puppet` next to
/// the running executable (or one directory up, for test binaries in `deps/`).
pub fn default_puppet() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CONFORMANCE_PUPPET") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [
        dir.join("conformance-puppet"),
        dir.join("../conformance-puppet"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    /// The actor this connection belongs to (after its hello).
    actor: Option<String>,
    closed: bool,
}

struct Actor {
    name: String,
    ns_tid: i32,
    ns_tgid: i32,
    host_tgid: i32,
    host_tid: i32,
    /// The operation sent and not yet answered, with the step it was sent in.
    outstanding: Option<(Op, usize)>,
}

struct Run {
    listener: UnixListener,
    conns: Vec<Conn>,
    actors: Vec<Actor>,
    master: Option<i32>,
    /// The executor's own descriptor of the slave (O_NOCTTY): polling it makes the
    /// kernel process typed input now (n_tty_poll flushes the tty's buffer work), so
    /// that echoes and signals from typed characters belong to the step that typed them.
    slave: Option<i32>,
    /// The namespace root, or the `sandbox` process.
    nsroot: Child,
    /// Sandbox runs: the directory bound into the sandbox (the control socket, the
    /// loader's lockstep report and log).
    dir: Option<PathBuf>,
    /// Sandbox runs with an owned pty: the executor's descriptor of the sandbox's pty
    /// slave (opened through init's root once the `init` actor is known), polled like
    /// `slave` so that the inner line discipline works at once too.
    inner_slave: Option<i32>,
    /// Quiet polls that end a step.
    quiet_rounds: u32,
    /// Sandbox runs: the host PID of the program (the `init` actor's parent), killed
    /// at the end.
    program: Option<i32>,
    /// Sandbox runs: host processes whose threads must be asleep too for quiescence
    /// (the loader, which relays signals and, with an owned pty, the bytes).
    watched: Vec<i32>,
    step_no: usize,
    rec: StepRecord,
    /// Result of the current step's operation, once it returned.
    result: Option<String>,
    /// Actors whose hello is awaited (a fork or thread in progress).
    expected: Vec<String>,
    fatal: Option<String>,
}

/// Runs `s` on Linux with the puppet at `puppet`.
pub fn run(s: &Scenario, puppet: &Path) -> Trace {
    run_on(s, puppet, &Target::Linux)
}

/// Runs `s` with the puppet at `puppet` on `target`.
pub fn run_on(s: &Scenario, puppet: &Path, target: &Target) -> Trace {
    let mut trace = Trace::default();
    let mut r = match Run::start(puppet, target) {
        Ok(r) => r,
        Err(e) => {
            trace.error = Some(e);
            return trace;
        }
    };
    for (i, step) in s.steps.iter().enumerate() {
        r.step_no = i;
        r.rec = StepRecord {
            step: step.to_string(),
            ..StepRecord::default()
        };
        r.result = None;
        let immediate = r.step(step);
        if let Err(e) = r.settle() {
            trace.error = Some(format!("step {}: {e}", i + 1));
            break;
        }
        r.rec.result = match immediate {
            Some(text) => text,
            None => r.result_of_step(step),
        };
        r.rec.states = r
            .actors
            .iter()
            .map(|a| (a.name.clone(), r.state(a)))
            .collect();
        r.rec.normalize();
        // A dead actor's unanswered call is gone with it.
        for idx in 0..r.actors.len() {
            if matches!(
                r.state(&r.actors[idx]),
                ActorState::Zombie | ActorState::Gone
            ) {
                r.actors[idx].outstanding = None;
            }
        }
        trace.steps.push(std::mem::take(&mut r.rec));
        if let Some(f) = r.fatal.take() {
            trace.error = Some(format!("step {}: puppet failed: {f}", i + 1));
            break;
        }
    }
    let violations = r.finish();
    if !violations.is_empty() && trace.error.is_none() {
        trace.error = Some(format!(
            "lockstep violations reported by the loader: {violations}"
        ));
    }
    trace
}

fn errno_text(e: i32) -> String {
    Errno(e).to_string()
}

/// A field of /proc/PID/…/status such as `NSpgid:`: its last value (innermost
/// namespace).
fn status_field(path: &str, field: &str) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().last()?.parse().ok()
}

/// The state letter of /proc/…/stat.
fn stat_state(path: &str) -> Option<char> {
    let text = std::fs::read_to_string(path).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

impl Run {
    fn start(puppet: &Path, target: &Target) -> Result<Run, String> {
        if let Target::Sandbox { sandbox, tty } = target {
            return Self::start_sandbox(puppet, sandbox, *tty);
        }
        let id = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("sandbox-conformance-{}-{id}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|e| format!("socket address: {e}"))?;
        let listener = UnixListener::bind_addr(&addr).map_err(|e| format!("bind: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("listener: {e}"))?;
        let mut cmd = Command::new(puppet);
        cmd.arg("nsroot")
            .arg(&name)
            .arg(match target {
                Target::LinuxReaper { .. } => "reaper",
                _ => "pid1",
            })
            .arg(match target {
                Target::LinuxReaper {
                    explicit_ctty: true,
                } => "explicit-ctty",
                _ => "",
            })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: the closure runs in the forked child before exec and makes only
        // async-signal-safe system calls.
        unsafe {
            cmd.pre_exec(|| {
                sys::die_with_parent();
                sys::unshare_pid_namespace().map_err(std::io::Error::from_raw_os_error)?;
                sys::unshare_mount_namespace().map_err(std::io::Error::from_raw_os_error)
            });
        }
        let spawned = {
            let _guard = FORK_LOCK.lock();
            cmd.spawn()
        };
        let mut nsroot = spawned.map_err(|e| format!("starting {}: {e}", puppet.display()))?;
        // The namespace root sends the master of its private pty first.
        let master = match accept_master(&listener) {
            Ok(m) => m,
            Err(e) => {
                let _ = nsroot.kill();
                let status = nsroot.wait().ok().and_then(|s| s.code());
                return Err(format!(
                    "{e} (nsroot exit status {status:?}; root is needed)"
                ));
            }
        };
        let _ = sys::set_nonblocking(master);
        let slave = sys::open_peer(
            master,
            libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
        .ok();
        let r = Run {
            listener,
            conns: Vec::new(),
            actors: Vec::new(),
            master: Some(master),
            slave,
            nsroot,
            dir: None,
            quiet_rounds: QUIET_ROUNDS,
            program: None,
            inner_slave: None,
            watched: Vec::new(),
            step_no: 0,
            rec: StepRecord::default(),
            result: None,
            expected: vec!["init".into()],
            fatal: None,
        };
        r.await_init()
    }

    /// Waits for the `init` actor's hello.
    fn await_init(mut self) -> Result<Run, String> {
        let r = &mut self;
        if let Err(e) = r.settle() {
            r.finish();
            return Err(format!("starting init: {e}"));
        }
        if r.actors.is_empty() {
            r.finish();
            return Err("init did not connect".into());
        }
        r.rec = StepRecord::default();
        Ok(self)
    }

    /// Starts `sandbox run --tty[=pty]` on a fresh pty with the puppet's
    /// `sandboxroot` as the program. The pty is the loader's controlling terminal and
    /// the loader's group its foreground (as for a job a shell started); the terminal
    /// starts as nobody's controlling terminal inside the sandbox (the hidden
    /// `--tty-unattached`), as the Linux executor's fresh pty is.
    fn start_sandbox(puppet: &Path, sandbox: &Path, tty: SandboxTty) -> Result<Run, String> {
        let id = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("sandbox-conformance-{}-{id}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let fail = |e: String| {
            let _ = std::fs::remove_dir_all(&dir);
            e
        };
        let listener =
            UnixListener::bind(dir.join("ctl")).map_err(|e| fail(format!("bind: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| fail(format!("listener: {e}")))?;
        let (master, slave_path) =
            sys::open_pty_master().map_err(|e| fail(format!("pty: {}", errno_text(e))))?;
        let Ok(slave_c) = std::ffi::CString::new(slave_path.clone()) else {
            let _ = sys::close(master);
            return Err(fail("pty path".into()));
        };
        let stdio = match sys::open(&slave_c, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = sys::close(master);
                return Err(fail(format!("opening {slave_path}: {}", errno_text(e))));
            }
        };
        let tty_arg = match tty {
            SandboxTty::Borrowed => "--tty",
            SandboxTty::Owned => "--tty=pty",
        };
        // Inside: the borrowed terminal is bound at /dev/console (and /dev/tty); an owned
        // pty is the first of the sandbox's own devpts.
        let inner_tty = match tty {
            SandboxTty::Borrowed => "/dev/console",
            SandboxTty::Owned => "/dev/pts/0",
        };
        let puppet_dir = puppet.parent().unwrap_or(Path::new("/"));
        let mut cmd = Command::new(sandbox);
        cmd.arg("run")
            .arg(tty_arg)
            .arg("--tty-unattached")
            .arg("-v")
            .arg(format!("{}:/conformance", dir.display()))
            // The puppet's directory at its own path, read-only: the host root does not
            // show it when it is under /tmp (a checkout there: the sandbox's /tmp is its
            // own).
            .arg("-v")
            .arg(format!(
                "{}:{}:ro",
                puppet_dir.display(),
                puppet_dir.display()
            ))
            .arg("--")
            .arg(puppet)
            .arg("sandboxroot")
            .arg("/conformance/ctl")
            .arg(inner_tty)
            .arg(match tty {
                SandboxTty::Borrowed => "explicit-ctty",
                SandboxTty::Owned => "",
            })
            .env("SANDBOX_LOCKSTEP_REPORT", dir.join("lockstep"))
            .env("SANDBOX_LOG_FILE", dir.join("log"))
            .env_remove("RUST_LOG");
        // SAFETY: `stdio` is open; Stdio takes each duplicate's ownership.
        let dup = |fd: i32| -> Result<Stdio, String> {
            let d = sys::dup(fd).map_err(|e| format!("dup: {}", errno_text(e)))?;
            let _ = sys::set_cloexec(d, true);
            // SAFETY: `d` is a descriptor just duplicated, owned by nobody else.
            Ok(Stdio::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(d) }))
        };
        let (i, o, e) = match (dup(stdio), dup(stdio), dup(stdio)) {
            (Ok(i), Ok(o), Ok(e)) => (i, o, e),
            _ => {
                let _ = sys::close(master);
                let _ = sys::close(stdio);
                return Err(fail("dup".into()));
            }
        };
        cmd.stdin(i).stdout(o).stderr(e);
        // SAFETY: the closure runs in the forked child before exec and makes only
        // async-signal-safe system calls.
        unsafe {
            cmd.pre_exec(|| {
                sys::die_with_parent();
                sys::setsid().map_err(std::io::Error::from_raw_os_error)?;
                sys::tiocsctty(0, false).map_err(std::io::Error::from_raw_os_error)
            });
        }
        let spawned = {
            let _guard = FORK_LOCK.lock();
            cmd.spawn()
        };
        let _ = sys::close(stdio);
        let nsroot = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = sys::close(master);
                return Err(fail(format!("starting {}: {e}", sandbox.display())));
            }
        };
        let _ = sys::set_nonblocking(master);
        let slave = sys::open_peer(
            master,
            libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
        .ok();
        let loader = nsroot.id() as i32;
        let r = Run {
            listener,
            conns: Vec::new(),
            actors: Vec::new(),
            master: Some(master),
            slave,
            nsroot,
            dir: Some(dir),
            quiet_rounds: match tty {
                SandboxTty::Borrowed => QUIET_ROUNDS,
                SandboxTty::Owned => QUIET_ROUNDS_RELAYED,
            },
            program: None,
            inner_slave: None,
            watched: vec![loader],
            step_no: 0,
            rec: StepRecord::default(),
            result: None,
            expected: vec!["init".into()],
            fatal: None,
        };
        let mut r = r.await_init()?;
        r.program = r
            .actors
            .first()
            .and_then(|init| status_field(&format!("/proc/{}/status", init.host_tgid), "PPid:"));
        // The sandbox's init reaps what the `init` actor leaves behind, and the holder
        // of the program's session (the program's parent, init's child) waits for the
        // program: both must be asleep too when a step ends.
        let parent = |p: i32| status_field(&format!("/proc/{p}/status"), "PPid:");
        if let Some(holder) = r.program.and_then(parent) {
            r.watched.push(holder);
            if let Some(init) = parent(holder) {
                r.watched.push(init);
            }
        }
        if tty == SandboxTty::Owned {
            if let Some(init) = r.actors.first() {
                let path = format!("/proc/{}/root/dev/pts/0", init.host_tgid);
                if let Ok(p) = std::ffi::CString::new(path) {
                    r.inner_slave = sys::open(
                        &p,
                        libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC,
                    )
                    .ok();
                }
            }
        }
        Ok(r)
    }

    /// Ends the run; returns the loader's lockstep violations (sandbox runs).
    fn finish(&mut self) -> String {
        if let Some(init) = self.actors.iter().find(|a| a.name == "init") {
            if init.host_tgid > 0 {
                let _ = sys::kill(init.host_tgid, libc::SIGKILL);
            }
        }
        if let Some(p) = self.program.take() {
            let _ = sys::kill(p, libc::SIGKILL);
        }
        if self.dir.is_some() {
            // The program's death ends the sandbox: the loader's own end (not a
            // SIGKILL) is the normal one.
            let deadline = Instant::now() + STEP_TIMEOUT;
            while Instant::now() < deadline {
                match self.nsroot.try_wait() {
                    Ok(None) => {
                        let _ = self.pump();
                    }
                    _ => break,
                }
            }
        }
        let _ = self.nsroot.kill();
        let _ = self.nsroot.wait();
        for fd in [self.inner_slave.take(), self.slave.take()]
            .into_iter()
            .flatten()
        {
            let _ = sys::close(fd);
        }
        if let Some(m) = self.master.take() {
            let _guard = FORK_LOCK.lock();
            let _ = sys::close(m);
        }
        let mut violations = String::new();
        if let Some(dir) = self.dir.take() {
            violations = std::fs::read_to_string(dir.join("lockstep")).unwrap_or_default();
            let _ = std::fs::remove_dir_all(&dir);
        }
        violations.trim().replace('\n', "; ")
    }

    fn actor_idx(&self, name: &str) -> Option<usize> {
        self.actors.iter().position(|a| a.name == name)
    }

    fn pid_text(&self, pid: i32) -> String {
        if pid <= 0 {
            return pid.to_string();
        }
        self.actors
            .iter()
            .find(|a| a.ns_tid == pid)
            .map(|a| a.name.clone())
            .unwrap_or_else(|| pid.to_string())
    }

    fn task_path(a: &Actor, file: &str) -> String {
        format!("/proc/{}/task/{}/{file}", a.host_tgid, a.host_tid)
    }

    fn resolve(&self, p: &PidArg) -> i32 {
        let tid_of = |n: &str| {
            self.actor_idx(n)
                .map_or(i32::MAX, |i| self.actors[i].ns_tid)
        };
        let pgid_of = |n: &str| {
            self.actor_idx(n)
                .and_then(|i| {
                    let a = &self.actors[i];
                    if a.host_tid <= 0 {
                        return None;
                    }
                    status_field(&Self::task_path(a, "status"), "NSpgid:")
                })
                .unwrap_or(i32::MAX)
        };
        match p {
            PidArg::Num(n) => *n,
            PidArg::Actor(n) => tid_of(n),
            PidArg::NegActor(n) => tid_of(n).wrapping_neg(),
            PidArg::PgidOf(n) => pgid_of(n),
            PidArg::NegPgidOf(n) => pgid_of(n).wrapping_neg(),
        }
    }

    /// The op with every PID argument resolved to a number.
    fn resolved(&self, op: &Op) -> Op {
        op.map_pids(|p| PidArg::Num(self.resolve(p)))
    }

    fn state(&self, a: &Actor) -> ActorState {
        if a.host_tid <= 0 {
            return ActorState::Gone;
        }
        let Some(c) = stat_state(&Self::task_path(a, "stat")) else {
            return ActorState::Gone;
        };
        match c {
            'Z' | 'X' | 'x' => {
                if a.ns_tid != a.ns_tgid || self.other_threads_alive(a) {
                    ActorState::Gone
                } else {
                    ActorState::Zombie
                }
            }
            'T' | 't' => ActorState::Stopped,
            _ if a.outstanding.is_some() => ActorState::Blocked,
            _ => ActorState::Running,
        }
    }

    fn other_threads_alive(&self, a: &Actor) -> bool {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{}/task", a.host_tgid)) else {
            return false;
        };
        dir.flatten().any(|e| {
            let tid = e.file_name().to_string_lossy().into_owned();
            tid != a.host_tgid.to_string()
                && stat_state(&format!("/proc/{}/task/{tid}/stat", a.host_tgid))
                    .is_some_and(|c| !matches!(c, 'Z' | 'X' | 'x'))
        })
    }

    /// Whether every actor thread is asleep, stopped or dead.
    fn quiescent(&self) -> bool {
        let watched_asleep = self.watched.iter().all(|pid| {
            let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                return true;
            };
            dir.flatten().all(|e| {
                let tid = e.file_name().to_string_lossy().into_owned();
                stat_state(&format!("/proc/{pid}/task/{tid}/stat"))
                    .is_none_or(|c| matches!(c, 'S' | 'T' | 't' | 'Z' | 'X' | 'x' | 'I'))
            })
        });
        watched_asleep
            && self.actors.iter().all(|a| {
                a.host_tid <= 0
                    || stat_state(&Self::task_path(a, "stat"))
                        .is_none_or(|c| matches!(c, 'S' | 'T' | 't' | 'Z' | 'X' | 'x' | 'I'))
            })
    }

    fn send(&mut self, actor: usize, line: &str) -> bool {
        let name = self.actors[actor].name.clone();
        let Some(c) = self
            .conns
            .iter_mut()
            .find(|c| c.actor.as_deref() == Some(&name) && !c.closed)
        else {
            return false;
        };
        use std::io::Write;
        let mut data = line.as_bytes().to_vec();
        data.push(b'\n');
        (&c.stream).write_all(&data).is_ok()
    }

    /// Performs a step. Returns its result when known at once.
    fn step(&mut self, step: &Step) -> Option<String> {
        match step {
            Step::Type(bytes) => Some(match self.master {
                None => "skipped (terminal closed)".into(),
                Some(m) => match sys::write(m, bytes) {
                    Ok(_) => "ok".into(),
                    Err(e) => errno_text(e),
                },
            }),
            Step::Winsize { rows, cols } => Some(match self.master {
                None => "skipped (terminal closed)".into(),
                Some(m) => match sys::set_winsize(m, *rows, *cols) {
                    Ok(()) => "ok".into(),
                    Err(e) => errno_text(e),
                },
            }),
            Step::Hangup => Some(match self.master.take() {
                None => "skipped (terminal closed)".into(),
                Some(m) => {
                    let _guard = FORK_LOCK.lock();
                    for fd in [self.slave.take(), self.inner_slave.take()]
                        .into_iter()
                        .flatten()
                    {
                        let _ = sys::close(fd);
                    }
                    match sys::close(m) {
                        Ok(()) => "ok".into(),
                        Err(e) => errno_text(e),
                    }
                }
            }),
            Step::Actor { actor, op } => {
                let Some(i) = self.actor_idx(actor) else {
                    return Some("skipped (no such actor)".into());
                };
                let st = self.state(&self.actors[i]);
                if st != ActorState::Running {
                    return Some(format!("skipped (actor {st})"));
                }
                if let Op::Fork { child } | Op::Thread { child } = op {
                    self.expected.push(child.clone());
                }
                let text = format!("op {}", self.resolved(op));
                self.actors[i].outstanding = Some((op.clone(), self.step_no));
                if !self.send(i, &text) {
                    self.actors[i].outstanding = None;
                    return Some("skipped (puppet unreachable)".into());
                }
                None
            }
        }
    }

    fn result_of_step(&mut self, step: &Step) -> String {
        if let Some(r) = self.result.take() {
            return r;
        }
        let Step::Actor { actor, .. } = step else {
            return "ok".into();
        };
        let Some(i) = self.actor_idx(actor) else {
            return "skipped (no such actor)".into();
        };
        match self.state(&self.actors[i]) {
            ActorState::Zombie | ActorState::Gone => {
                self.actors[i].outstanding = None;
                "noreturn".into()
            }
            _ => "pending".into(),
        }
    }

    /// Waits until the system is quiescent, handling messages and terminal output.
    fn settle(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut quiet = 0;
        loop {
            if Instant::now() > deadline {
                let waiting: Vec<String> = self
                    .actors
                    .iter()
                    .filter(|a| {
                        stat_state(&Self::task_path(a, "stat"))
                            .is_some_and(|c| c == 'R' || c == 'D')
                    })
                    .map(|a| a.name.clone())
                    .collect();
                return Err(format!(
                    "did not settle within {STEP_TIMEOUT:?} (expected hellos: {:?}, running: {waiting:?})",
                    self.expected
                ));
            }
            let active = self.pump()?;
            if active || !self.expected.is_empty() || !self.quiescent() {
                quiet = 0;
                continue;
            }
            quiet += 1;
            if quiet >= self.quiet_rounds {
                return Ok(());
            }
        }
    }

    /// One poll round: accepts connections, reads messages and terminal output.
    /// Returns whether anything happened.
    fn pump(&mut self) -> Result<bool, String> {
        let mut fds = vec![self.listener.as_raw_fd()];
        fds.extend(
            self.conns
                .iter()
                .filter(|c| !c.closed)
                .map(|c| c.stream.as_raw_fd()),
        );
        let ready = match sys::poll_in(&fds, 1) {
            Ok(r) => r,
            Err(libc::EINTR) => return Ok(true),
            Err(e) => return Err(format!("poll: {}", errno_text(e))),
        };
        let mut active = false;
        if ready.first().is_some_and(|&r| r != 0) {
            while let Ok((stream, _)) = self.listener.accept() {
                let _ = stream.set_nonblocking(true);
                self.conns.push(Conn {
                    stream,
                    buf: Vec::new(),
                    actor: None,
                    closed: false,
                });
                active = true;
            }
        }
        for ci in 0..self.conns.len() {
            if self.conns[ci].closed {
                continue;
            }
            let mut buf = [0u8; 4096];
            loop {
                use std::io::Read;
                match (&self.conns[ci].stream).read(&mut buf) {
                    Ok(0) => {
                        self.conns[ci].closed = true;
                        active = true;
                        break;
                    }
                    Ok(n) => {
                        self.conns[ci].buf.extend_from_slice(&buf[..n]);
                        active = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        self.conns[ci].closed = true;
                        break;
                    }
                }
            }
            while let Some(pos) = self.conns[ci].buf.iter().position(|&c| c == b'\n') {
                let line: Vec<u8> = self.conns[ci].buf.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line[..pos]).into_owned();
                self.message(ci, &line);
            }
        }
        if let Some(s) = self.slave {
            let _ = sys::poll_in(&[s], 0);
        }
        if let Some(s) = self.inner_slave {
            let _ = sys::poll_in(&[s], 0);
        }
        if let Some(m) = self.master {
            let mut buf = [0u8; 4096];
            while let Ok(n) = sys::read(m, &mut buf) {
                if n == 0 {
                    break;
                }
                self.rec
                    .output
                    .push_str(&crate::scenario::encode_text(&buf[..n]));
                active = true;
            }
        }
        Ok(active)
    }

    fn message(&mut self, ci: usize, line: &str) {
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            "hello" => {
                let w: Vec<&str> = rest.split_whitespace().collect();
                let (Some(name), Some(tid), Some(tgid)) = (
                    w.first(),
                    w.get(1).and_then(|s| s.parse::<i32>().ok()),
                    w.get(2).and_then(|s| s.parse::<i32>().ok()),
                ) else {
                    self.fatal = Some(format!("bad hello `{line}`"));
                    return;
                };
                let host_tgid = sys::peer_pid(self.conns[ci].stream.as_raw_fd()).unwrap_or(-1);
                let host_tid = if tid == tgid {
                    host_tgid
                } else {
                    find_host_tid(host_tgid, tid).unwrap_or(-1)
                };
                self.conns[ci].actor = Some(name.to_string());
                self.expected.retain(|e| e != name);
                if tid == tgid {
                    // After an exec by a non-leader thread, the old leader is gone.
                    for a in self.actors.iter_mut() {
                        if a.name != *name && a.host_tgid == host_tgid && a.ns_tid == tid {
                            a.ns_tid = i32::MAX;
                            a.host_tid = -1;
                        }
                    }
                }
                match self.actor_idx(name) {
                    Some(i) => {
                        let a = &mut self.actors[i];
                        a.ns_tid = tid;
                        a.ns_tgid = tgid;
                        a.host_tgid = host_tgid;
                        a.host_tid = host_tid;
                    }
                    None => self.actors.push(Actor {
                        name: name.to_string(),
                        ns_tid: tid,
                        ns_tgid: tgid,
                        host_tgid,
                        host_tid,
                        outstanding: None,
                    }),
                }
            }
            "sig" => {
                let Some(name) = self.conns[ci].actor.clone() else {
                    return;
                };
                let n = rest.trim().parse::<i32>().unwrap_or(0);
                self.rec.signals.push((name, signal_name(n)));
            }
            "ret" => {
                let Some(name) = self.conns[ci].actor.clone() else {
                    return;
                };
                let Some(i) = self.actor_idx(&name) else {
                    return;
                };
                let text = self.result_text(rest);
                match self.actors[i].outstanding.take() {
                    Some((_, step)) if step == self.step_no => self.result = Some(text),
                    Some((op, _)) => self.rec.done.push((name, format!("{op} => {text}"))),
                    None => {}
                }
            }
            "fatal" => self.fatal = Some(rest.to_string()),
            _ => self.fatal = Some(format!("unknown message `{line}`")),
        }
    }

    /// Formats a puppet's result as the sentry executor does.
    fn result_text(&mut self, r: &str) -> String {
        let w: Vec<&str> = r.split_whitespace().collect();
        let int = |i: usize| w.get(i).and_then(|s| s.parse::<i32>().ok()).unwrap_or(0);
        match w.first().copied() {
            Some("ok") => "ok".into(),
            Some("err") => errno_text(int(1)),
            Some("num") => int(1).to_string(),
            Some("pid") => self.pid_text(int(1)),
            Some("child") => {
                let name = w.get(1).copied().unwrap_or("").to_string();
                name
            }
            Some("data") => format!("\"{}\"", w.get(1).copied().unwrap_or("")),
            Some("wait") => {
                if w.get(1) == Some(&"none") {
                    return "none".into();
                }
                let code = match w.get(2).copied() {
                    Some("exited") => SiCode::ChildExited,
                    Some("killed") => SiCode::ChildKilled,
                    Some("dumped") => SiCode::ChildDumped,
                    Some("stopped") => SiCode::ChildStopped,
                    _ => SiCode::ChildContinued,
                };
                crate::trace::wait_line(&self.pid_text(int(1)), code, int(3))
            }
            _ => format!("?{r}"),
        }
    }
}

/// Accepts the namespace root's connection and receives the pty master from it.
fn accept_master(listener: &UnixListener) -> Result<i32, String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(STEP_TIMEOUT));
                return sys::recv_fd(stream.as_raw_fd())
                    .map_err(|e| format!("receiving the pty: {}", errno_text(e)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err("the namespace root did not connect".into());
                }
                let _ = sys::poll_in(&[listener.as_raw_fd()], 10);
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    }
}

/// The host TID of the thread of host process `tgid` whose innermost namespace TID is
/// `ns_tid`.
fn find_host_tid(tgid: i32, ns_tid: i32) -> Option<i32> {
    let dir = std::fs::read_dir(format!("/proc/{tgid}/task")).ok()?;
    dir.flatten().find_map(|e| {
        let tid: i32 = e.file_name().to_string_lossy().parse().ok()?;
        (status_field(&format!("/proc/{tgid}/task/{tid}/status"), "NSpid:") == Some(ns_tid))
            .then_some(tid)
    })
}
