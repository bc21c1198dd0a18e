//! Running a program in a sandbox: the spec, the start-up sequence and the
//! supervision loop.
//!
//! Start-up:
//! 1. The loader compiles the seccomp programs, opens the control channel and queues
//!    init's plan on it (a typed message, `crate::control`).
//! 2. It spawns init (see [`crate::spawn`]) in new PID, mount, UTS, IPC and (unless
//!    shared) network namespaces: the clone child only execs the loader's own binary
//!    as the entry point (`crate::sys::entry`), which reads the plan and runs init.
//! 3. init takes a session of its own, builds the filesystem view and forks the
//!    program, which takes a process group of its own, installs the deny filter and
//!    the notify filter, and passes the notification listener back before exec.
//! 4. The loader registers the program in the sentry — init's session has the
//!    borrowed terminal as controlling terminal, the program's group is its foreground
//!    group — and starts answering notifications.
//!
//! Then one `poll` loop (over a `PollSet` of named sources) serves: the control
//! channel, the loader's signals (read from a signalfd and forwarded by delivery mode),
//! init's pidfd, pidfds of session leaders holding the terminal, the handle's requests
//! and the control sockets of exec helpers; notifications are answered by notification
//! threads. Every request that reads or changes the sentry goes through the container
//! core (`crate::core`). The loader never stops on
//! SIGTSTP/SIGTTIN/SIGTTOU itself, except for the suspend pass-through: when the
//! sandbox's foreground job stops after a ^Z and no job-control shell manages the
//! terminal (nobody has ever called TIOCSPGRP), the loader stops itself with SIGTSTP
//! so that the user's shell shows the job stopped; on SIGCONT it continues the job.

use crate::capability::CapSet;
use crate::control::{self, Message};
use crate::core::{Core, ExecContext, ExecTarget, ExecWatch, Notifier};
use crate::exec::{ExecEvent, ExecHandle, ExecSpec, ProcessInfo};
use crate::init::{self, InitPlan, InitProgram, ProgramPlan, StdioPlan};
use crate::mounts::{Bind, FsSpec, RootMode};
use crate::seccomp::{self, Listener, NotifyOptions};
use crate::spawn::{self, SpawnError, SpawnMethod};
use crate::supervisor::{NotifyStats, Supervisor};
use crate::sys::entry::EntryExec;
use crate::sys::tty as systty;
use crate::tracker::Tracker;
use crate::tty_restorer::Restorer;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use parking_lot::Mutex;
use sandbox_sentry::{DeliveryMode, Pid};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where signals sent to the loader go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalMode {
    /// The terminal's foreground process group with a terminal, else the program.
    Auto,
    /// The program.
    Process,
    /// The foreground process group of the program's terminal (the program itself if
    /// it has none).
    Foreground,
    /// Every process of the sandbox except init.
    All,
}

/// The default [`SandboxSpec::pids_limit`]: enough for builds and shells, few enough
/// that a fork bomb stops long before the host's limits.
pub const DEFAULT_PIDS_LIMIT: u64 = 4096;

/// What to run and how.
#[derive(Debug)]
pub struct SandboxSpec {
    /// Program and arguments; the program is looked up in PATH.
    pub argv: Vec<String>,
    /// The program's whole environment (`KEY=VALUE`).
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// Without `cwd`: start in this directory if the sandbox shows it, else in `/`
    /// (`sandbox run` passes the caller's working directory).
    pub caller_cwd: Option<PathBuf>,
    /// Run the program as this user and group (numeric, inside the sandbox's user
    /// namespace if it has one); supplementary groups are cleared.
    pub user: Option<(u32, u32)>,
    /// Resource limits for the program: (RLIMIT_* resource, soft, hard). They bind
    /// whatever the uid, since the program has no CAP_SYS_RESOURCE (unless added).
    pub rlimits: Vec<(i32, u64, u64)>,
    /// Capabilities the program keeps (effective, permitted, inheritable, ambient and
    /// bounding sets); empty by default, as root or not. See [`crate::capability`].
    pub capabilities: CapSet,
    /// Most processes and threads the sandbox may have at once, init included: the
    /// pids cgroup controller (see [`crate::cgroup`]); without root, `RLIMIT_NPROC` on
    /// the program instead (counted per uid in the sandbox's user namespace). `None`: no limit. Default [`DEFAULT_PIDS_LIMIT`].
    pub pids_limit: Option<u64>,
    /// Memory limit in bytes for the whole sandbox (memory cgroup controller, as root;
    /// no fallback: without root, or without a writable memory cgroup, it is not
    /// enforced, with a warning).
    pub memory_limit: Option<u64>,
    pub hostname: Option<String>,
    pub rootfs: Option<PathBuf>,
    /// Writable through a throwaway overlay (the default, as root), or read-only
    /// (always read-only when the loader is not root: see [`RootMode`]).
    pub root_mode: RootMode,
    pub binds: Vec<Bind>,
    /// Stay in the host's network namespace.
    pub share_net: bool,
    /// Join this network namespace (e.g. `/run/netns/NAME`, `/proc/PID/ns/net`)
    /// instead of creating one: init opens it and calls `setns(CLONE_NEWNET)` before
    /// it builds the filesystem (needs CAP_SYS_ADMIN over the namespace: root).
    pub join_netns: Option<PathBuf>,
    /// The program's file mode creation mask (`umask(2)`); `None`: inherited.
    pub umask: Option<u32>,
    /// Supplementary groups of the program when [`SandboxSpec::user`] is set (cleared
    /// otherwise).
    pub additional_gids: Vec<u32>,
    /// Kernel filesystems mounted after the binds ([`crate::mounts::KernelMount`]).
    pub kernel_mounts: Vec<crate::mounts::KernelMount>,
    /// Paths hidden and made read-only in addition to the built-in lists
    /// ([`crate::mounts::MASKED_PATHS`], [`crate::mounts::READ_ONLY_PATHS`]).
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    /// A further seccomp filter (an OCI profile: [`crate::oci::seccomp_filter`]),
    /// installed right before exec, after the program's policy and the notify filter:
    /// the kernel runs every filter and the most severe action wins, so it can only
    /// refuse more.
    pub extra_seccomp: Option<seccomp::Filter>,
    /// Hold the program before its exec until a byte can be read from this descriptor
    /// (the read end of a pipe): an OCI runtime's `create` then `start`. End of file
    /// instead (the write end closed unwritten) ends the program without exec (exit
    /// 125). Everything else (namespaces, filesystem, filters, credentials) is done
    /// before it waits.
    pub start_gate: Option<OwnedFd>,
    /// Create init as a child of the loader's parent (`CLONE_PARENT`), not of the
    /// loader: an OCI runtime's container process, which the runtime's caller (conmon,
    /// a child subreaper that inherits it when `create` exits) waits for and whose
    /// namespaces `podman top` reads. The loader watches init through its pidfd and
    /// takes the program's status from init's report. Not with the fork spawn method
    /// (`SpawnError`), whose intermediate process would be the parent.
    pub clone_parent: bool,
    /// A terminal to borrow (the program's stdio should refer to it as well).
    pub terminal: Option<OwnedFd>,
    /// Start the terminal-signal listener on the borrowed `terminal`: for a terminal
    /// the loader is not the foreground of (an embedder's pty slave, `--tty-fd`), whose
    /// ^C, ^\, ^Z, resizes and hangup would otherwise reach nobody. The terminal must
    /// not be anyone's controlling terminal yet (see [`crate::tty_listener`]).
    pub terminal_listener: bool,
    /// Make the borrowed `terminal` the program's stdin, stdout and stderr (otherwise
    /// the program inherits the loader's).
    pub terminal_stdio: bool,
    /// Give the sandbox a pty of its own instead (`--tty=pty`, console sockets); not
    /// together with `terminal`.
    pub owned_pty: Option<OwnedPty>,
    pub signal_mode: SignalMode,
    /// Install the program's seccomp policy ([`seccomp::program_filter`]: an
    /// allow-list, known dangerous syscalls EPERM, unknown numbers ENOSYS); the notify
    /// filter is always installed.
    pub seccomp: bool,
    /// Syscalls (names as in [`seccomp::ALLOW_SYSCALLS`] and
    /// [`seccomp::DENY_SYSCALLS`], e.g. `"bpf"`) the program may make although the
    /// policy denies them; an unknown name fails the spawn
    /// ([`seccomp::SeccompError::UnknownSyscall`]).
    pub seccomp_allow: Vec<String>,
    /// The first spawn method tried.
    pub spawn_method: SpawnMethod,
    /// Once the sandbox runs, confine the loader process itself to the system calls
    /// its supervision needs (an allow-list on every thread, as gVisor's
    /// `filter.Install`). It stays for the life of the process, so it is off by
    /// default for embedders; the `sandbox` command turns it on.
    pub loader_seccomp: bool,
    /// Take over the process's signals (SIGINT, SIGQUIT, SIGTSTP, SIGWINCH, SIGHUP,
    /// SIGTERM, SIGUSR1/2, SIGCONT, SIGTTIN, SIGTTOU, SIGCHLD: blocked in the calling
    /// thread and every thread started after, and read from a signalfd) and forward
    /// them by `signal_mode`, as a command-line sandbox does; this also enables the
    /// suspend pass-through and stopping the loader when the sandbox, as a job of the
    /// user's shell, reads the terminal from the background. Off by default: an
    /// embedder's own signal handling is left alone and it signals the sandbox with
    /// [`Sandbox::signal`].
    pub forward_signals: bool,
    /// Append every lockstep violation (host and sentry disagree: a bug) to this file
    /// the moment it is found (tests use it; it survives a SIGKILL of the loader).
    pub lockstep_report: Option<PathBuf>,
    /// Whose controlling terminal the sandbox's terminal (borrowed or owned) is at the
    /// start (see [`TerminalAttach`]).
    pub terminal_attach: TerminalAttach,
}

/// Whose controlling terminal the sandbox's terminal is when the program starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TerminalAttach {
    /// The sandbox's session's (init leads it), with the program's group in the
    /// foreground, as for a program a shell started.
    #[default]
    Session,
    /// Nobody's: a session leader inside acquires it as on Linux (an owned pty by
    /// opening it; a borrowed terminal with TIOCSCTTY only, see docs/LOADER.md). The
    /// conformance harness starts this way, as its Linux runs start with a fresh pty.
    Unattached,
}

impl SandboxSpec {
    /// A spec for `argv` with the loader's environment and defaults everywhere else.
    pub fn new(argv: Vec<String>) -> SandboxSpec {
        SandboxSpec {
            argv,
            env: std::env::vars().map(|(k, v)| format!("{k}={v}")).collect(),
            cwd: None,
            caller_cwd: None,
            user: None,
            rlimits: Vec::new(),
            capabilities: CapSet::EMPTY,
            pids_limit: Some(DEFAULT_PIDS_LIMIT),
            memory_limit: None,
            hostname: None,
            rootfs: None,
            root_mode: RootMode::Overlay,
            binds: Vec::new(),
            share_net: false,
            join_netns: None,
            umask: None,
            additional_gids: Vec::new(),
            kernel_mounts: Vec::new(),
            masked_paths: Vec::new(),
            readonly_paths: Vec::new(),
            extra_seccomp: None,
            start_gate: None,
            clone_parent: false,
            terminal: None,
            owned_pty: None,
            terminal_listener: false,
            terminal_stdio: false,
            signal_mode: SignalMode::Auto,
            seccomp: true,
            seccomp_allow: Vec::new(),
            spawn_method: SpawnMethod::Clone3,
            loader_seccomp: false,
            lockstep_report: None,
            forward_signals: false,
            terminal_attach: TerminalAttach::Session,
        }
    }
}

/// An owned pty: created in the sandbox's own devpts, the sandbox session's real
/// controlling terminal. Its master goes to `console_socket` (as OCI runtimes hand a
/// console to their caller) or is proxied to `proxy` (the user's terminal, in raw mode
/// meanwhile), or both are absent and the pty is only the sandbox's.
#[derive(Debug, Default)]
pub struct OwnedPty {
    pub proxy: Option<OwnedFd>,
    pub console_socket: Option<PathBuf>,
    /// Where the proxied pty's output goes, when not to `proxy` itself: `sandbox run
    /// --tty=pty` passes its standard output, so that `> file` captures the program's
    /// output as with `docker run -t` (input still comes from `proxy`).
    pub output: Option<OwnedFd>,
}

/// Why the sandbox could not run the program.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    #[error("no program given")]
    NoProgram,
    #[error(transparent)]
    KernelTooOld(#[from] crate::host_kernel::TooOld),
    #[error("invalid argument or environment string (contains NUL): {0:?}")]
    Nul(String),
    #[error(
        "cannot run as {uid}:{gid} without root: the sandbox's user namespace maps only \
         0:0 (which is you)"
    )]
    UnmappedUser { uid: u32, gid: u32 },
    #[error("a borrowed terminal and an owned pty cannot be used together")]
    TwoTerminals,
    #[error("console socket {path}: {err}")]
    ConsoleSocket { path: PathBuf, err: String },
    #[error("the terminal is not usable: {0}")]
    Terminal(nix::Error),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("{0}: {1}")]
    Sys(&'static str, nix::Error),
    #[error("sandbox setup failed: {0}")]
    Setup(String),
    #[error("{program}: command not found")]
    NotFound { program: String },
    #[error("{program}: cannot execute: {errno}")]
    CannotExecute { program: String, errno: nix::Error },
    #[error("the sandbox ended before starting the program")]
    EndedEarly,
    #[error("the sandbox has ended")]
    Ended,
    #[error("the sandbox was already waited for")]
    AlreadyWaited,
    /// uid or gid 4294967295 (`(uid_t)-1`), which setresuid/setresgid read as "leave
    /// unchanged": the program would keep init's ids (root).
    #[error("invalid user {uid}:{gid}: 4294967295 ((uid_t)-1) means \"unchanged\" to the kernel")]
    InvalidUser { uid: u32, gid: u32 },
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error("no process {0} in the sandbox")]
    NoSuchProcess(i32),
    #[error("process {0} was already waited for")]
    PidAlreadyWaited(i32),
    #[error("process {0} has no controlling terminal")]
    NoTerminal(i32),
    #[error("signal not delivered: {0}")]
    Signal(#[from] sandbox_sentry::DeliveryError),
    #[error("signal not delivered: {0}")]
    NotDelivered(String),
}

impl LoaderError {
    /// The conventional exit status: 127 not found, 126 not executable, 125 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            LoaderError::NotFound { .. } => 127,
            LoaderError::CannotExecute { .. } => 126,
            _ => 125,
        }
    }
}

/// How the program ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    /// The program's wait status word.
    pub wait_status: i32,
    pub spawn_method: SpawnMethod,
    pub stats: NotifyStats,
    /// Lockstep violations detected (host and sentry disagreed): always a bug.
    pub lockstep_violations: Vec<String>,
    /// Whether the kernel supports synchronous wake-up of the supervisor.
    pub sync_wakeup: bool,
}

impl RunOutcome {
    /// The shell's `$?`: the exit code, or 128 + N when killed by signal N.
    pub fn exit_code(&self) -> i32 {
        init::shell_code(self.wait_status)
    }
}

/// Signals the loader takes over (blocked and read from a signalfd).
const FORWARDED: &[Signal] = &[
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTSTP,
    Signal::SIGWINCH,
    Signal::SIGHUP,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCONT,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGCHLD,
];

/// Restores the user's terminal (everything [`systty::SavedTerminal`] holds) and the
/// loader's signal mask on every exit path the loader lives through: the program's
/// end, whatever ended it, a setup failure (dropped with the error), SIGTERM/SIGHUP at
/// the loader (forwarded; the loader restores when the sandbox ends).
/// A loader killed with SIGKILL is covered by the [`Restorer`] process.
struct Restore {
    tty: Option<(OwnedFd, systty::SavedTerminal)>,
    restorer: Option<Restorer>,
    mask: Option<SigSet>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some((fd, saved)) = &self.tty {
            // From a background job a termios change would stop us: SIGTTOU blocked.
            let mut ttou = SigSet::empty();
            ttou.add(nix::sys::signal::Signal::SIGTTOU);
            let old = ttou.thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK);
            let report = saved.restore(fd.as_fd());
            if report.hung_up() {
                tracing::debug!(?report, "the terminal hung up: nothing to restore");
            } else if report != systty::RestoreReport::default() {
                tracing::warn!(?report, "the terminal could not be restored entirely");
            }
            if let Ok(old) = old {
                let _ = old.thread_set_mask();
            }
        }
        if let Some(r) = &mut self.restorer {
            r.dismiss();
        }
        if let Some(m) = &self.mask {
            let _ = m.thread_set_mask();
        }
    }
}

pub(crate) fn dup(fd: &OwnedFd) -> Result<OwnedFd, LoaderError> {
    fd.try_clone()
        .map_err(|e| LoaderError::Sys("dup", nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))
}

/// Copies bytes between the user's terminal and an owned pty's master.
struct Proxy {
    /// The user's terminal: input, raw mode, window size.
    user: OwnedFd,
    /// Where the pty's output is written (the user's terminal, or the caller's stdout).
    output: OwnedFd,
    master: Option<OwnedFd>,
    raw: libc::termios,
    cooked: libc::termios,
}

pub(crate) fn cstrings(v: &[String]) -> Result<Vec<CString>, LoaderError> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| LoaderError::Nul(s.clone())))
        .collect()
}

/// Runs the program to completion in a new sandbox, taking over the process's signals
/// for the duration (see [`SandboxSpec::forward_signals`]), and returns how it ended.
/// The calling thread must be the process's only thread (see [`crate::spawn`]).
pub fn run(mut spec: SandboxSpec) -> Result<RunOutcome, LoaderError> {
    spec.forward_signals = true;
    Sandbox::start(spec)?.wait()
}

impl Sandbox {
    /// Creates the sandbox and starts the program; supervision runs on a thread of its
    /// own until the program ends. Spawning clones this process without exec: call it
    /// while no other thread can hold a lock the child needs (the allocator's), e.g.
    /// before starting threads, or from a process whose threads are idle.
    pub fn start(mut spec: SandboxSpec) -> Result<Sandbox, LoaderError> {
        let started = Instant::now();
        crate::host_kernel::check()?;
        if spec.argv.is_empty() {
            return Err(LoaderError::NoProgram);
        }
        if let Some((uid, gid)) = spec.user {
            if (uid, gid) != (0, 0) && !nix::unistd::geteuid().is_root() {
                return Err(LoaderError::UnmappedUser { uid, gid });
            }
        }
        let argv = cstrings(&spec.argv)?;
        let env = cstrings(&spec.env)?;
        if let Some((uid, gid)) = spec.user {
            if uid == u32::MAX || gid == u32::MAX {
                return Err(LoaderError::InvalidUser { uid, gid });
            }
        }
        for cap in spec.capabilities.dangerous() {
            tracing::warn!(
                capability = cap,
                "the program keeps CAP_{cap}, which voids a guarantee of the sandbox"
            );
        }
        let rootless = !nix::unistd::geteuid().is_root();
        let limits = crate::cgroup::Limits {
            pids: spec.pids_limit,
            memory: spec.memory_limit,
        };
        // As root the loader creates the sandbox's cgroups right after the spawn, while
        // init builds the filesystem (off the start-up path), and init joins them
        // before it forks the program. Rootless there is no cgroup to write: the
        // process limit becomes RLIMIT_NPROC on the program.
        let join_cgroup = !rootless && (limits.pids.is_some() || limits.memory.is_some());
        let mut rlimits = spec.rlimits.clone();
        if rootless {
            if let Some(n) = limits.pids {
                let nproc = libc::RLIMIT_NPROC as i32;
                if !rlimits.iter().any(|r| r.0 == nproc) {
                    // The limit holds (the program has no CAP_SYS_RESOURCE or
                    // CAP_SYS_ADMIN): no warning for what every rootless run does.
                    tracing::info!(
                        limit = n,
                        "rootless: limiting processes with RLIMIT_NPROC (per uid in the sandbox's user namespace)"
                    );
                    rlimits.push((nproc, n, n));
                }
            }
            if let Some(bytes) = limits.memory {
                tracing::warn!(
                    bytes,
                    "rootless: no writable memory cgroup, the memory limit is not enforced"
                );
            }
        }
        let terminal = spec.terminal.take();
        let owned = spec.owned_pty.take();
        if terminal.is_some() && owned.is_some() {
            return Err(LoaderError::TwoTerminals);
        }
        // The console socket is connected before anything starts (as runc does), so a
        // wrong path is reported as such rather than as its consequences.
        let console_socket = match owned.as_ref().and_then(|o| o.console_socket.as_ref()) {
            Some(path) => Some(ConsoleSocket {
                stream: std::os::unix::net::UnixStream::connect(path).map_err(|e| {
                    LoaderError::ConsoleSocket {
                        path: path.clone(),
                        err: e.to_string(),
                    }
                })?,
                path: path.clone(),
            }),
            None => None,
        };
        let proxy = owned.as_ref().and_then(|o| o.proxy.as_ref());
        let proxy_state = match proxy {
            Some(fd) => Some((
                systty::tcgets(fd.as_fd()).map_err(LoaderError::Terminal)?,
                systty::get_winsize(fd.as_fd()).map_err(LoaderError::Terminal)?,
            )),
            None => None,
        };
        // The borrowed terminal: its device, path, termios and size.
        let tty_info = match &terminal {
            Some(fd) => {
                let termios = systty::tcgets(fd.as_fd()).map_err(LoaderError::Terminal)?;
                let ws = systty::get_winsize(fd.as_fd()).map_err(LoaderError::Terminal)?;
                let st = nix::sys::stat::fstat(fd.as_fd()).map_err(LoaderError::Terminal)?;
                let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                    .map_err(|_| LoaderError::Terminal(nix::Error::ENOTTY))?;
                Some((termios, ws, st, path))
            }
            None => None,
        };
        let mut restore = Restore {
            tty: None,
            restorer: None,
            mask: None,
        };
        if let Some(fd) = &terminal {
            let saved =
                systty::SavedTerminal::save(fd.as_fd(), true).map_err(LoaderError::Terminal)?;
            restore.tty = Some((dup(fd)?, saved));
        }
        if let Some(fd) = proxy {
            // The proxy only switches raw mode on and off; the size is the user's.
            let saved =
                systty::SavedTerminal::save(fd.as_fd(), false).map_err(LoaderError::Terminal)?;
            restore.tty = Some((dup(fd)?, saved));
        }

        phase(started, "checked the spec");
        let fs = FsSpec {
            rootfs: spec.rootfs.clone(),
            root_mode: spec.root_mode,
            binds: spec.binds.clone(),
            terminal: tty_info.as_ref().map(|t| t.3.clone()),
            hostname: spec.hostname.clone(),
            cwd: spec.cwd.clone(),
            caller_cwd: spec.caller_cwd.clone(),
            kernel_mounts: spec.kernel_mounts.clone(),
            masked_paths: spec.masked_paths.clone(),
            readonly_paths: spec.readonly_paths.clone(),
        };
        let (ours, theirs) = control::pair().map_err(|e| LoaderError::Sys("socketpair", e))?;
        // What init needs to build the sandbox, first; the program's part (built
        // meanwhile) follows once init runs.
        let plan = InitPlan {
            fs,
            wait_for_cgroup: join_cgroup,
            join_netns: spec.join_netns.clone(),
        };
        // Rootless, init is created in a new user namespace: its clone child waits for
        // the uid maps (`G`) before it execs the entry point, and the plan follows.
        let wait_for_maps = rootless;
        let mut plan = Some(Message::Init(Box::new(plan)));
        if !wait_for_maps {
            // The plan waits in the socket: init reads it as soon as it runs.
            if let Some(p) = plan.take() {
                control::send(ours.as_raw_fd(), &p)
                    .map_err(|e| LoaderError::Sys("control channel", e))?;
            }
        }
        // Take over the forwarded signals before the sandbox (and any thread of ours)
        // exists, if asked to.
        let sigfd = if spec.forward_signals {
            let mut set = SigSet::empty();
            for &s in FORWARDED {
                set.add(s);
            }
            let old = set
                .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
                .map_err(|e| LoaderError::Sys("sigprocmask", e))?;
            restore.mask = Some(old);
            Some(
                SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
                    .map_err(|e| LoaderError::Sys("signalfd", e))?,
            )
        } else {
            None
        };

        // The terminal-signal listener, before any thread of ours exists and before the

        // loader's own seccomp (it needs setsid and TIOCSCTTY).

        let tty_listener = match (&terminal, spec.terminal_listener) {
            (Some(fd), true) => Some(
                crate::tty_listener::TtyListener::start(fd.as_fd())
                    .map_err(|e| LoaderError::Setup(format!("terminal-signal listener: {e}")))?,
            ),

            _ => None,
        };

        let mut ns =
            (libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC)
                as u64;
        // A namespace to join is joined by init (setns), none is created for it. A new
        // one is created, as root, by a thread of the loader while init builds the
        // filesystem, and joined by init before it forks the holder (creating one is
        // about half of the spawn's cost otherwise); rootless, the clone creates it
        // (owned by the sandbox's user namespace).
        let new_netns = !spec.share_net && spec.join_netns.is_none();
        let netns_by_thread = new_netns && !rootless;
        if new_netns && rootless {
            ns |= libc::CLONE_NEWNET as u64;
        }
        if wait_for_maps {
            // Not root: a user namespace whose root is the caller.
            ns |= libc::CLONE_NEWUSER as u64;
        }
        if spec.clone_parent {
            ns |= libc::CLONE_PARENT as u64;
        }
        let spawned = {
            // The child execs the entry point, or runs init in place when this
            // process has one thread (see `crate::sys::entry`); init resets the mask
            // it inherits.
            crate::sys::entry::ensure_linked();
            let entry = EntryExec::new(crate::entry::INIT, theirs.as_raw_fd(), wait_for_maps)
                .map_err(|e| LoaderError::Sys("/proc/self/exe", e))?;
            tracing::debug!(start = ?entry.start(), "starting init");
            let mut child = || entry.run();
            spawn::spawn(ns, spec.spawn_method, &mut child)?
        };
        drop(theirs);
        tracing::info!(
            pid = spawned.pid,
            method = spawned.method.name(),
            "sandbox init started"
        );
        phase(started, "init spawned");
        raise_nofile_limit();
        // The loader's own allow-list (built at build time: copied, see
        // `seccomp::precompiled`), installed by the supervisor thread before its loop
        // starts.
        let loader_filter = spec
            .loader_seccomp
            .then(|| seccomp::allow_filter(seccomp::LOADER_EXTRA_SYSCALLS));
        // Restores the terminal if the loader is killed with SIGKILL. Started before any
        // thread of ours, and while init builds the sandbox (the program cannot touch
        // the terminal before that is done), so that the fork costs no start-up time;
        // it holds the state saved above, from before the sandbox existed.
        if let Some((fd, saved)) = &restore.tty {
            match Restorer::start(fd.as_fd(), *saved) {
                Ok(r) => restore.restorer = Some(r),
                Err(e) => {
                    return Err(abandon_init(
                        &spawned.pidfd,
                        LoaderError::Setup(format!("terminal restorer: {e}")),
                    ));
                }
            }
        }
        if wait_for_maps {
            let maps = crate::userns::write_id_maps(
                nix::unistd::Pid::from_raw(spawned.pid),
                nix::unistd::geteuid(),
                nix::unistd::getegid(),
            );
            if let Err(e) = maps {
                return Err(abandon_init(
                    &spawned.pidfd,
                    LoaderError::Setup(format!("user namespace: {e}")),
                ));
            }
            control::send(ours.as_raw_fd(), &Message::Go)
                .map_err(|e| LoaderError::Sys("control channel", e))?;
            if let Some(p) = plan.take() {
                control::send(ours.as_raw_fd(), &p)
                    .map_err(|e| LoaderError::Sys("control channel", e))?;
            }
        }
        // The program's part of the plan, built while init builds the
        // filesystem (init needs it only once that is done); the network namespace is
        // created meanwhile (joined before the loader's own filter, installed on every
        // thread, exists).
        let netns = netns_by_thread.then(|| {
            std::thread::spawn(|| {
                crate::sys::sched::make_background();
                crate::sys::process::new_netns()
            })
        });
        let program = (|| {
            let deny = if spec.seccomp {
                if !spec.seccomp_allow.is_empty() {
                    tracing::info!(allow = ?spec.seccomp_allow, "seccomp policy: denials lifted");
                }
                Some(seccomp::program_filter(&spec.seccomp_allow)?)
            } else {
                None
            };
            let notify = seccomp::notify_filter(&NotifyOptions {
                tty_io: terminal.is_some(),
            })?;
            let init_filter = seccomp::init_filter()?;
            let exec_context = ExecContext {
                deny: deny.clone(),
                rlimits: rlimits.clone(),
                capabilities: spec.capabilities,
                helper_filter: init_filter.clone(),
                rootless,
                extra_seccomp: spec.extra_seccomp.clone(),
            };
            let program = InitProgram {
                program: ProgramPlan {
                    argv,
                    env,
                    cwd: None,
                    deny,
                    notify,
                    user: spec.user,
                    additional_gids: spec.additional_gids.clone(),
                    umask: spec.umask,
                    extra_seccomp: spec.extra_seccomp.take(),
                    start_gate: spec.start_gate.take(),
                    rlimits,
                    capabilities: spec.capabilities,
                    stdio: match (&terminal, spec.terminal_stdio) {
                        (Some(t), true) => StdioPlan::Terminal(dup(t)?),
                        _ => StdioPlan::Inherit,
                    },
                    pty: owned.as_ref().map(|_| crate::init::PtyInit {
                        termios: proxy_state.map(|(t, _)| t),
                        winsize: proxy_state.map(|(_, w)| w),
                        attach: spec.terminal_attach,
                    }),
                },
                init_filter,
                holder_filter: seccomp::holder_filter()?,
                // Joined below, once the cgroups are placed.
                netns: None,
            };
            Ok::<_, LoaderError>((program, exec_context))
        })();
        let (mut program, exec_context) = match program {
            Ok(p) => p,
            Err(e) => {
                return Err(abandon_init(&spawned.pidfd, e));
            }
        };
        phase(started, "program's plan built");
        let cgroup = if join_cgroup {
            match place_init(ours.as_raw_fd(), spawned.pid, limits) {
                Ok(c) => c,
                Err(e) => {
                    return Err(abandon_init(&spawned.pidfd, e));
                }
            }
        } else {
            None
        };
        phase(started, "cgroups placed");
        // The network namespace (its thread runs when a CPU is free: at the latest
        // while this one waits for it here), then the program's part of the plan.
        if let Some(thread) = netns {
            let created = thread
                .join()
                .map_err(|_| LoaderError::Setup("network namespace: panicked".into()))
                .and_then(|r| r.map_err(|e| LoaderError::Sys("unshare(CLONE_NEWNET)", e)));
            match created {
                Ok(fd) => program.netns = Some(fd),
                Err(e) => {
                    return Err(abandon_init(&spawned.pidfd, e));
                }
            }
        }
        // A send that fails means init has ended (it failed to build the sandbox): what
        // it reported is read next, as for the cgroups (`place_init`).
        if let Err(e) = control::send(ours.as_raw_fd(), &Message::Program(Box::new(program))) {
            tracing::debug!(%e, "init ended before reading the program's plan");
        }
        phase(started, "program's plan sent");

        let (k, tty) = match (&terminal, &tty_info) {
            (Some(fd), Some((t, ws, st, path))) => crate::core::new_kernel(
                Some(crate::core::BorrowedInfo {
                    fd: dup(fd)?,
                    path,
                    termios: t,
                    winsize: ws,
                    stat: st,
                }),
                spawned.pid,
            ),
            _ => crate::core::new_kernel(None, spawned.pid),
        };
        let sup = Arc::new(Mutex::new(Supervisor {
            k,
            main: tty.as_ref().map(|t| t.id),
            terminals: tty.into_iter().collect(),
            procs: Tracker::new(spawned.pid).with_report(spec.lockstep_report.clone()),
            stats: NotifyStats::default(),
            leaders: Vec::new(),
            tiocspgrp_seen: false,
            stop_signal_seen: false,
            loader_pgrp: nix::unistd::getpgrp().as_raw(),
            job_of_user_shell: spec.forward_signals,
            host_foreground: None,
            current: None,
            events: None,
            devpts: None,
            wake: nix::sys::eventfd::EventFd::from_flags(
                nix::sys::eventfd::EfdFlags::EFD_CLOEXEC
                    | nix::sys::eventfd::EfdFlags::EFD_NONBLOCK,
            )
            .ok(),
            winsize_source: match proxy {
                Some(fd) => Some(dup(fd)?),
                None => None,
            },
        }));
        let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
        let (ev_tx, ev_rx) = crossbeam_channel::unbounded();
        let (watch_tx, watch_rx) = crossbeam_channel::unbounded();
        let cmd_wake = Arc::new(
            nix::sys::eventfd::EventFd::from_flags(
                nix::sys::eventfd::EfdFlags::EFD_CLOEXEC
                    | nix::sys::eventfd::EfdFlags::EFD_NONBLOCK,
            )
            .map_err(|e| LoaderError::Sys("eventfd", e))?,
        );
        let core = Arc::new(Core::new(
            sup.clone(),
            ExecTarget {
                context: exec_context,
                // init's namespaces to join: a joined network namespace too; never
                // CLONE_PARENT (a spawn flag, not a namespace).
                namespaces: (ns & !(libc::CLONE_PARENT as u64))
                    | if spec.join_netns.is_some() || netns_by_thread {
                        libc::CLONE_NEWNET as u64
                    } else {
                        0
                    },
                init_pidfd: dup(&spawned.pidfd)?,
            },
            cgroup,
            watch_tx,
            cmd_wake.clone(),
        ));
        let mut lp = Loop {
            started,
            loader_filter,
            core: core.clone(),
            sup: sup.clone(),
            new_execs: watch_rx,
            execs: Vec::new(),
            notifier: None,
            control: Some(ours),
            program: None,
            program_status: None,
            setup_error: None,
            exec_error: None,
            mode: spec.signal_mode,
            loader_seccomp: spec.loader_seccomp,
            terminal_attach: spec.terminal_attach,
            // CAP_SYS_ADMIN in the initial user namespace (TIOCSCTTY's steal needs it).
            program_privileged: !rootless && spec.capabilities.names().any(|n| n == "SYS_ADMIN"),
            watch_stop: None,
            stopped_self: false,
            early_signals: Vec::new(),
            sync_wakeup: false,
            console_socket,
            commands: None,
            events: None,
            forward_signals: spec.forward_signals,
            tty_listener,
            proxy: match (proxy, &proxy_state) {
                (Some(fd), Some((t, _))) => Some(Proxy {
                    user: dup(fd)?,
                    output: match owned.as_ref().and_then(|o| o.output.as_ref()) {
                        Some(out) => dup(out)?,
                        None => dup(fd)?,
                    },
                    master: None,
                    raw: systty::raw(t),
                    cooked: *t,
                }),
                _ => None,
            },
        };
        if let Some(p) = &lp.proxy {
            // The user's keys go to the pty as they are: its line discipline does the rest.
            let _ = systty::tcsets(p.user.as_fd(), &p.raw);
        }
        lp.commands = Some((cmd_rx, cmd_wake.clone()));
        lp.events = Some(ev_tx.clone());
        sup.lock().events = Some(ev_tx);
        let init_pid = spawned.pid;
        let pidfd = spawned.pidfd.try_clone().map_err(|e| {
            LoaderError::Sys("dup", nix::Error::from_raw(e.raw_os_error().unwrap_or(0)))
        })?;
        let program_name = spec.argv[0].clone();
        let old_mask = restore.mask.take();
        let thread = std::thread::Builder::new()
            .name("sandbox-supervisor".into())
            .spawn(move || {
                // Restores the terminal's termios however the loop ends.
                let _restore = restore;
                // Confined before anything of the sandbox is served: the filter's
                // installation (the kernel runs it over every system call number for
                // its action cache) overlaps init's building of the sandbox instead
                // of delaying the loop's answer to the program's first events.
                if lp.loader_seccomp {
                    lp.confine_loader();
                }
                let served = lp.serve(sigfd.as_ref(), &spawned.pidfd);
                phase(lp.started, "init reaped");
                lp.stop_notifier();
                lp.core.ended();
                // Removed once init is reaped (every sandbox process is gone then).
                drop(lp.core.cgroup.lock().take());
                let init_status = served?;
                let sup = sup.lock();
                if let Some(e) = lp.setup_error.take() {
                    return Err(LoaderError::Setup(e));
                }
                if let Some(errno) = lp.exec_error {
                    let program = program_name;
                    let errno = nix::Error::from_raw(errno);
                    return Err(if errno == nix::Error::ENOENT {
                        LoaderError::NotFound { program }
                    } else {
                        LoaderError::CannotExecute { program, errno }
                    });
                }
                let wait_status = match lp.program_status {
                    Some(s) => s,
                    None if init_status == 0 => return Err(LoaderError::EndedEarly),
                    None => init_status,
                };
                Ok(RunOutcome {
                    wait_status,
                    spawn_method: spawned.method,
                    stats: NotifyStats {
                        adopted: sup.procs.stats.adopted,
                        exit_events: sup.procs.stats.events,
                        full_walks: sup.procs.stats.full_walks,
                        ..sup.stats
                    },
                    lockstep_violations: sup.procs.violations.clone(),
                    sync_wakeup: lp.sync_wakeup,
                })
            })
            .map_err(|e| LoaderError::Setup(format!("cannot start the supervisor thread: {e}")))?;
        Ok(Sandbox {
            thread: Mutex::new(Some(thread)),
            commands: cmd_tx,
            wake: cmd_wake,
            events: ev_rx,
            pidfd,
            init_pid,
            old_mask,
            core,
        })
    }

    /// Waits for the program to end and returns how it ended (once; later calls fail
    /// with [`LoaderError::AlreadyWaited`]). Restores the calling thread's signal mask
    /// if [`SandboxSpec::forward_signals`] changed it (call it from the thread that
    /// called [`Sandbox::start`]).
    pub fn wait(&self) -> Result<RunOutcome, LoaderError> {
        let thread = self
            .thread
            .lock()
            .take()
            .ok_or(LoaderError::AlreadyWaited)?;
        let r = thread
            .join()
            .unwrap_or_else(|_| Err(LoaderError::Setup("the supervisor thread panicked".into())));
        if let Some(m) = &self.old_mask {
            let _ = m.thread_set_mask();
        }
        r
    }

    /// Sends signal `sig` by delivery mode: to the program ([`SignalMode::Process`]),
    /// to the foreground process group of its terminal ([`SignalMode::Foreground`],
    /// [`SignalMode::Auto`] with a terminal), or to every process but init
    /// ([`SignalMode::All`]). Once the program runs, a signal that reaches nobody is
    /// an error (as with [`Sandbox::kill`]); before, it is queued and sent as soon as
    /// the program is supervised.
    pub fn signal(&self, mode: SignalMode, sig: i32) -> Result<(), LoaderError> {
        if self.core.program_if_started().is_some() {
            return self.core.kill(None, mode, sig);
        }
        self.command(Command::Signal(mode, sig))
    }

    /// The terminal was resized (an embedder's console): the sandbox's terminal takes
    /// the new size and its foreground group gets SIGWINCH if it changed.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), LoaderError> {
        self.command(Command::Resize(rows, cols))
    }

    /// Kills every process of the sandbox (SIGKILL to init, which takes its PID
    /// namespace down with it). [`Sandbox::wait`] then returns.
    pub fn destroy(&self) -> Result<(), LoaderError> {
        crate::sys::clone::pidfd_kill(&self.pidfd)
            .map_err(|e| LoaderError::Sys("pidfd_send_signal", e))
    }

    /// What happens in the sandbox: the program stopped, continued or exited, the
    /// terminal's foreground process group changed.
    pub fn events(&self) -> &crossbeam_channel::Receiver<SandboxEvent> {
        &self.events
    }

    /// init's PID in the caller's PID namespace.
    pub fn init_pid(&self) -> i32 {
        self.init_pid
    }

    /// The first program's PID in the sandbox, once it runs (blocks until its filters
    /// are installed and the supervisor answers it); [`LoaderError::EndedEarly`] if the
    /// sandbox ended before (then [`Sandbox::wait`] says why).
    pub fn program_pid(&self) -> Result<i32, LoaderError> {
        self.core.program()
    }

    /// Executes a new process in the running sandbox (see [`crate::exec`]). Returns
    /// once it runs: its execve done, or failed with [`LoaderError::NotFound`] (127)
    /// or [`LoaderError::CannotExecute`] (126) as for the first program. Waits for the
    /// first program to run first. Callable from any thread, concurrently.
    ///
    /// A shell with a pty of its own, proxied by the caller:
    ///
    /// ```no_run
    /// use sandbox_loader::{ExecSpec, ExecTerminal, Sandbox, SandboxSpec, SignalMode};
    /// use std::io::{Read, Write};
    ///
    /// let sandbox = Sandbox::start(SandboxSpec::new(vec!["sleep".into(), "infinity".into()]))?;
    /// let mut spec = ExecSpec::new(
    ///     vec!["bash".into(), "-i".into()],
    ///     ExecTerminal::Pty { console_socket: None, winsize: Some((24, 80)) },
    /// );
    /// spec.env = vec!["PATH=/usr/bin:/bin".into(), "TERM=xterm".into()];
    /// let shell = sandbox.exec(spec)?;
    /// let mut master = std::fs::File::from(shell.pty_master().expect("a pty"));
    /// master.write_all(b"echo hello from $$; sleep 100\n").expect("typing");
    /// // ^C typed by the user, as an exec client forwards it: the shell's foreground job.
    /// sandbox.kill(Some(shell.pid()), SignalMode::Foreground, libc::SIGINT)?;
    /// master.write_all(b"exit 3\n").expect("typing");
    /// let mut screen = Vec::new();
    /// let _ = master.read_to_end(&mut screen); // EIO once the pty is closed
    /// assert_eq!(sandbox.wait_pid(shell.pid())?, 3 << 8);
    /// sandbox.destroy()?;
    /// # Ok::<(), sandbox_loader::LoaderError>(())
    /// ```
    pub fn exec(&self, spec: ExecSpec) -> Result<ExecHandle, LoaderError> {
        self.core.exec(spec)
    }

    /// Sends signal `sig` to `pid` (the first program when `None`) by delivery mode:
    /// the process ([`SignalMode::Process`]); the foreground process group of its
    /// controlling terminal, or the process itself when it has none
    /// ([`SignalMode::Foreground`], [`SignalMode::Auto`] with a terminal); every
    /// process but init ([`SignalMode::All`]). A signal that reaches nobody (no such
    /// process, a terminal without foreground group, the host refusing it) is an error.
    pub fn kill(&self, pid: Option<i32>, mode: SignalMode, sig: i32) -> Result<(), LoaderError> {
        self.core.kill(pid, mode, sig)
    }

    /// Waits for the process `pid` of the sandbox (the first program or an exec'd
    /// process) to end and returns its wait status, once: a second call fails with
    /// [`LoaderError::PidAlreadyWaited`].
    pub fn wait_pid(&self, pid: i32) -> Result<i32, LoaderError> {
        self.core.wait_pid(pid)
    }

    /// Every process of the sandbox as the sentry sees it (`ps`).
    pub fn processes(&self) -> Result<Vec<ProcessInfo>, LoaderError> {
        self.core.processes()
    }

    /// Resizes the controlling terminal of `pid` (its foreground group gets SIGWINCH
    /// if the size changed).
    pub fn resize_pid(&self, pid: i32, rows: u16, cols: u16) -> Result<(), LoaderError> {
        self.core.resize_pid(pid, rows, cols)
    }

    fn command(&self, c: Command) -> Result<(), LoaderError> {
        self.commands.send(c).map_err(|_| LoaderError::Ended)?;
        let _ = self.wake.write(1);
        Ok(())
    }
}

/// A running sandbox (see [`Sandbox::start`]).
pub struct Sandbox {
    thread: Mutex<Option<std::thread::JoinHandle<Result<RunOutcome, LoaderError>>>>,
    commands: crossbeam_channel::Sender<Command>,
    wake: Arc<nix::sys::eventfd::EventFd>,
    events: crossbeam_channel::Receiver<SandboxEvent>,
    pidfd: OwnedFd,
    init_pid: i32,
    old_mask: Option<SigSet>,
    core: Arc<Core>,
}

// The daemon serves requests from threads: the handle must be shareable.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Sandbox>();
};

impl Drop for Sandbox {
    /// A sandbox dropped while running is destroyed: nothing outlives its handle.
    fn drop(&mut self) {
        if self.thread.get_mut().is_some() {
            let _ = self.destroy();
            let _ = self.wait();
        }
    }
}

/// An event of a running sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SandboxEvent {
    /// The program (PID 2) stopped by signal `sig`.
    ProgramStopped { sig: i32 },
    /// The program continued.
    ProgramContinued,
    /// The program ended with this wait status.
    ProgramExited { wait_status: i32 },
    /// The foreground process group of the sandbox's terminal changed (sandbox PIDs).
    ForegroundChanged { pgrp: Option<Pid> },
}

/// A request to the supervision loop.
enum Command {
    Signal(SignalMode, i32),
    Resize(u16, u16),
}

/// The notification thread: it does nothing but receive notifications and answer
/// them (under the supervisor's lock), so that a notification is received as soon as
/// it is posted. Until it is received, a signal with a handler interrupts the waiting
/// call (-ERESTARTSYS, so EINTR without SA_RESTART) — something Linux never does to a
/// non-blocking call such as tcsetpgrp; once received, the listener's killable-wait
/// flag holds every signal but SIGKILL until the answer.
///
/// It waits in the receive ioctl itself, with no poll in front (one system call per
/// notification, and the kernel's synchronous wake-up hands the CPU straight to it).
/// The kernel never ends that wait when the filter's last task is gone, so the thread
/// is stopped by a signal of its own ([`crate::sys::signal::wakeup_signal`], a handler
/// that does nothing, sent to this thread only); where the process already uses that
/// signal (an embedder's), it polls before each receive instead. One thread per
/// listener: the first program's and each exec'd process's ([`crate::core::Notifier`]).
///
/// Whether the notification thread runs SCHED_FIFO (when the loader may:
/// CAP_SYS_NICE). Measured with `loader_bench --only writes` (docs/PERFORMANCE.md,
/// 2 CPUs), per notified call: idle, SCHED_FIFO 5.0–5.1 µs against 4.2 µs at nice 0 or
/// -20 (the bare listener too: 4.3 against 3.2 µs; a real-time wake-up does not get
/// the caller's own CPU as a synchronous fair-class one does); with four CPU-bound
/// loops beside it, 4.3 against 4.5 (nice -20) and 4.7 µs (nice 0); at load 8–9 from
/// other work, 5.6–6.8 against 6.6–11.9 µs (nice 0). It stays, because receiving at
/// once is what job control needs: a notification not yet received can be interrupted
/// by a caught signal (EINTR, a shell then turns job control off, docs/LOADER.md "Known
/// limits"). At nice -20, zsh lost job control that way in two end-to-end tests of
/// one full `cargo test` run ("can't set tty pgrp: interrupt"); with SCHED_FIFO it
/// does not.
const REALTIME_NOTIFY_THREAD: bool = true;

pub(crate) fn notify_thread(
    listener: Listener,
    sup: Arc<Mutex<Supervisor>>,
    stop: Arc<AtomicBool>,
    tid: Arc<AtomicI32>,
    blocking: Arc<AtomicBool>,
) {
    use crate::sys::signal as sig;
    let wake = sig::wakeup_signal();
    let wait_in_receive = sig::install_wakeup_handler(wake) && sig::unblock_in_thread(wake);
    blocking.store(wait_in_receive, Ordering::Release);
    tid.store(sig::gettid(), Ordering::Release);
    if !wait_in_receive {
        tracing::info!("notification thread polls before each receive (its signal is taken)");
    }
    if REALTIME_NOTIFY_THREAD && !crate::sys::sched::make_realtime() {
        tracing::info!("notification thread not real-time (no CAP_SYS_NICE)");
    }
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let mut hup = false;
        if !wait_in_receive {
            let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(0) | Err(nix::Error::EINTR) => continue,
                Ok(_) => {}
                Err(_) => return,
            }
            let rev = fds[0].revents().unwrap_or(PollFlags::empty());
            hup = rev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL);
            if !rev.contains(PollFlags::POLLIN) {
                if hup {
                    // Every filtered process is gone.
                    return;
                }
                continue;
            }
        }
        // Any failure other than a notification withdrawn by its caller, or the wake-up
        // signal, ends the thread, as does a hang-up: it must never spin.
        match listener.recv_interruptible() {
            Ok(Some(n)) => sup.lock().handle(&listener, &n),
            Ok(None) => {}
            Err(seccomp::SeccompError::NotificationWithdrawn) if !hup => {
                // Also what the receive returns at once, every time, once no task uses
                // the filter any more (Linux 6.x): a hang-up then, and the end.
                let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
                let gone = matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
                    && fds[0].revents().is_some_and(|r| {
                        r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL)
                            && !r.contains(PollFlags::POLLIN)
                    });
                if gone {
                    tracing::debug!("every filtered process is gone");
                    return;
                }
                tracing::debug!("notification withdrawn before it was read")
            }
            Err(e) => {
                tracing::debug!(%e, "notification listener done");
                return;
            }
        }
    }
}

/// The tracker holds a pidfd per sandbox process it knows (`crate::tracker`): the
/// loader's soft limit of descriptors goes up to its hard limit (the loader waits with
/// poll and epoll, never select). Called after init is spawned, so the sandbox's
/// processes keep the limits they were given.
fn raise_nofile_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                Ok(()) => tracing::debug!(from = soft, to = hard, "descriptor limit raised"),
                Err(e) => tracing::debug!(%e, "descriptor limit not raised"),
            }
        }
    }
}

/// Start-up and teardown timing, behind `--log-level debug`: microseconds since
/// [`Sandbox::start`] was called (`loader_bench` reads these lines).
fn phase(started: Instant, name: &'static str) {
    tracing::debug!(
        phase = name,
        us = started.elapsed().as_micros() as u64,
        "sandbox phase"
    );
}

/// The state of the supervision loop.
struct Loop {
    /// When [`Sandbox::start`] was called (for [`phase`]).
    started: Instant,
    /// The loader's allow-list, compiled during start-up (see `confine_loader`).
    loader_filter: Option<Result<seccomp::Filter, seccomp::SeccompError>>,
    core: Arc<Core>,
    sup: Arc<Mutex<Supervisor>>,
    /// Exec'd processes handed over by [`Core::exec`], and those watched.
    new_execs: crossbeam_channel::Receiver<ExecWatch>,
    execs: Vec<ExecWatch>,
    notifier: Option<Notifier>,
    control: Option<OwnedFd>,
    /// The program (sandbox PID).
    program: Option<Pid>,
    program_status: Option<i32>,
    setup_error: Option<String>,
    exec_error: Option<i32>,
    mode: SignalMode,
    loader_seccomp: bool,
    /// Whether the program's session takes the terminal at the start.
    terminal_attach: TerminalAttach,
    /// The program keeps CAP_SYS_ADMIN (the sentry's `privileged`).
    program_privileged: bool,
    /// After a forwarded SIGTSTP: until when to watch for the pass-through.
    watch_stop: Option<Instant>,
    stopped_self: bool,
    /// Signals for the sandbox that arrived before the program was registered and
    /// supervised: forwarded, in order, as soon as it is.
    early_signals: Vec<(SignalMode, i32)>,
    sync_wakeup: bool,
    /// Owned pty: hand the master to this socket (connected at start).
    console_socket: Option<ConsoleSocket>,
    /// Owned pty: proxy it to the user's terminal.
    proxy: Option<Proxy>,
    /// Requests from the [`Sandbox`] handle, and the eventfd that announces them.
    commands: Option<(
        crossbeam_channel::Receiver<Command>,
        Arc<nix::sys::eventfd::EventFd>,
    )>,
    events: Option<crossbeam_channel::Sender<SandboxEvent>>,
    /// The loader takes over the process's signals (the `sandbox` command).
    forward_signals: bool,
    /// Reports the borrowed terminal's signals when the loader is not its foreground.
    tty_listener: Option<crate::tty_listener::TtyListener>,
}

impl Loop {
    /// Stops the notification thread: sets its flag and, while it waits in the
    /// receive, signals it until it has ended (a signal sent between its look at the
    /// flag and the receive would be lost; the next one is not).
    fn stop_notifier(&mut self) {
        if let Some(mut n) = self.notifier.take() {
            n.stop();
        }
        let others = std::mem::take(&mut *self.core.notifiers.lock());
        for mut n in others {
            n.stop();
        }
    }

    /// Serves until init exits; returns init's wait status.
    fn serve(
        &mut self,
        sigfd: Option<&SignalFd>,
        init_pidfd: &OwnedFd,
    ) -> Result<i32, LoaderError> {
        loop {
            let timeout = if self.watch_stop.is_some() {
                PollTimeout::from(20u16)
            } else {
                PollTimeout::NONE
            };
            // Every descriptor polled below stays open until the dispatch is done: the
            // registry is rebuilt each round from what the loop owns.
            let wake = self.sup.lock().wake.as_ref().map(|w| w.as_fd().as_raw_fd());
            let leaders: Vec<std::os::fd::RawFd> = self
                .sup
                .lock()
                .leaders
                .iter()
                .map(|(_, fd)| fd.as_raw_fd())
                .collect();
            // Registered in the order they are served: init's messages first (the
            // program's listener before any signal is forwarded), the pty's output
            // before the user's input.
            let mut set = PollSet::default();
            set.add(init_pidfd.as_raw_fd(), Source::Init);
            if let Some(c) = &self.control {
                set.add(c.as_raw_fd(), Source::Control);
            }
            if let Some(p) = &self.proxy {
                if let Some(m) = &p.master {
                    set.add(m.as_raw_fd(), Source::ProxyOutput);
                    set.add(p.user.as_raw_fd(), Source::ProxyInput);
                }
            }
            if let Some(f) = sigfd {
                set.add(f.as_fd().as_raw_fd(), Source::Signals);
            }
            if let Some((_, w)) = &self.commands {
                set.add(w.as_fd().as_raw_fd(), Source::Commands);
            }
            if let Some(l) = &self.tty_listener {
                set.add(l.fd().as_raw_fd(), Source::TtyListener);
            }
            for (i, &fd) in leaders.iter().enumerate() {
                set.add(fd, Source::Leader(i));
            }
            if let Some(w) = wake {
                set.add(w, Source::Wake);
            }
            for (i, w) in self.execs.iter().enumerate() {
                set.add(w.control.as_raw_fd(), Source::Exec(i));
            }
            let ready = match set.poll(timeout) {
                Ok(r) => r,
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(LoaderError::Sys("poll", e)),
            };
            let mut init_done = false;
            let mut dead_leaders = Vec::new();
            let mut exec_ready = Vec::new();
            for source in ready {
                match source {
                    Source::Init => init_done = true,
                    Source::Control => self.control_message(),
                    Source::ProxyOutput => self.pty_output(),
                    Source::ProxyInput => self.user_input(),
                    Source::Signals => {
                        if let Some(f) = sigfd {
                            while let Ok(Some(si)) = f.read_signal() {
                                self.host_signal(si.ssi_signo as i32);
                            }
                        }
                    }
                    Source::Commands => self.commands(),
                    Source::TtyListener => self.terminal_signals(),
                    Source::Leader(i) => dead_leaders.push(i),
                    Source::Exec(i) => exec_ready.push(i),
                    Source::Wake => {
                        let mut sup = self.sup.lock();
                        if let Some(w) = &sup.wake {
                            let _ = w.read();
                        }
                        if std::mem::take(&mut sup.stop_signal_seen) && sup.main.is_some() {
                            self.watch_stop = Some(Instant::now() + Duration::from_secs(2));
                        }
                    }
                }
            }
            // Leaders' pidfds are removed only by this thread (leader_died).
            for i in dead_leaders.into_iter().rev() {
                self.sup.lock().leader_died(i);
            }
            for i in exec_ready.into_iter().rev() {
                self.exec_message(i);
            }
            self.execs.extend(self.new_execs.try_iter());
            if self.watch_stop.is_some() {
                self.check_pass_through();
            }
            if init_done {
                // Whatever init said last is already queued on the control channel.
                while self.control.is_some() {
                    self.control_message();
                }
                self.drain_pty();
                self.drain_execs();
                return wait_pidfd(init_pidfd);
            }
        }
    }

    /// An exec helper reported: the process stopped, continued or ended; end of file
    /// once the helper has exited (it is reaped then).
    fn exec_message(&mut self, i: usize) {
        let Some(w) = self.execs.get(i) else {
            return;
        };
        let done = match control::recv(w.control.as_raw_fd()) {
            Ok(Some(Message::ProgramStopped(sig))) => {
                let _ = w.events.send(ExecEvent::Stopped { sig });
                false
            }
            Ok(Some(Message::ProgramContinued)) => {
                let _ = w.events.send(ExecEvent::Continued);
                false
            }
            Ok(Some(Message::ProgramEnded(st))) => {
                self.core.exited(w.pid, st);
                let _ = w.events.send(ExecEvent::Exited { wait_status: st });
                false
            }
            Ok(Some(other)) => {
                tracing::debug!(?other, "exec helper: message ignored");
                false
            }
            Ok(None) | Err(_) => true,
        };
        if done {
            let w = self.execs.remove(i);
            let _ = wait_pidfd(&w.helper);
            tracing::debug!(pid = w.pid, "exec helper reaped");
        }
    }

    /// The sandbox has ended: every exec'd process is gone (killed with the namespace);
    /// collect what their helpers report, for a few seconds at most.
    fn drain_execs(&mut self) {
        self.execs.extend(self.new_execs.try_iter());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.execs.is_empty() && Instant::now() < deadline {
            let mut set = PollSet::default();
            for (i, w) in self.execs.iter().enumerate() {
                set.add(w.control.as_raw_fd(), Source::Exec(i));
            }
            let ready = match set.poll(PollTimeout::from(100u16)) {
                Ok(r) => r,
                Err(_) => break,
            };
            for source in ready.into_iter().rev() {
                if let Source::Exec(i) = source {
                    self.exec_message(i);
                }
            }
        }
        for w in std::mem::take(&mut self.execs) {
            // A helper that did not report in time: the process is gone anyway.
            tracing::warn!(pid = w.pid, "exec helper did not report the end");
            drop(w.control);
            let _ = wait_pidfd(&w.helper);
        }
    }

    /// The terminal-signal listener reported what the terminal's line discipline did:
    /// the sentry's terminal does the same to its foreground group.
    fn terminal_signals(&mut self) {
        use crate::tty_listener::TtySignal;
        let Some(l) = &mut self.tty_listener else {
            return;
        };
        let got = match l.read() {
            Ok(v) => v,
            Err(e) => {
                tracing::info!(%e, "terminal-signal listener gone");
                self.tty_listener = None;
                return;
            }
        };
        for s in got {
            match s {
                TtySignal::WindowChanged => self.sup.lock().resized(),
                other => self.forward_by(SignalMode::Foreground, other.signal() as i32),
            }
        }
    }

    /// Serves the [`Sandbox`] handle's requests.
    fn commands(&mut self) {
        let Some((rx, wake)) = &self.commands else {
            return;
        };
        let _ = wake.read();
        let pending: Vec<Command> = rx.try_iter().collect();
        for c in pending {
            match c {
                Command::Signal(mode, sig) => self.forward_by(mode, sig),
                Command::Resize(rows, cols) => self.sup.lock().set_size(rows, cols),
            }
        }
    }

    fn event(&self, e: SandboxEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(e);
        }
    }

    fn control_message(&mut self) {
        let Some(c) = &self.control else {
            return;
        };
        match control::recv(c.as_raw_fd()) {
            Ok(Some(Message::Listener(fd))) => {
                phase(self.started, "program about to exec (listener received)");
                self.start_listening(fd);
                phase(self.started, "supervising");
            }
            Ok(Some(Message::ProgramPid(p))) => self.program = Some(p),
            Ok(Some(Message::ProgramEnded(st))) => {
                phase(self.started, "program ended (status known)");
                self.program_status = Some(st);
                if let Some(p) = self.program {
                    self.core.exited(p, st);
                }
                self.event(SandboxEvent::ProgramExited { wait_status: st });
            }
            Ok(Some(Message::ProgramStopped(sig))) => {
                self.event(SandboxEvent::ProgramStopped { sig })
            }
            Ok(Some(Message::ProgramContinued)) => self.event(SandboxEvent::ProgramContinued),
            Ok(Some(Message::SetupFailed(e))) => self.fail_setup(e),
            Ok(Some(Message::ExecFailed(e))) => self.exec_error = Some(e),
            // Messages for init, never sent to the loader.
            Ok(Some(
                Message::Go
                | Message::JoinCgroup(_)
                | Message::Init(_)
                | Message::Program(_)
                | Message::Exec(_)
                | Message::Executed
                | Message::SandboxPid(_),
            )) => {}
            Ok(Some(Message::PtyMaster(fd))) => self.owned_pty(fd),
            // init ended with a message of ours unread (a `J` or `G` sent while it was
            // failing): the kernel reports ECONNRESET once, before what init sent
            // last (its `F`), which the next receive returns.
            Err(control::ProtocolError::Sys(nix::Error::ECONNRESET)) => {}
            Ok(None) | Err(_) => self.control = None,
        }
    }

    /// Shows what the sandbox wrote last, before the loader ends.
    fn drain_pty(&mut self) {
        for _ in 0..1024 {
            let Some(m) = self.proxy.as_ref().and_then(|p| p.master.as_ref()) else {
                return;
            };
            let mut fds = [PollFd::new(m.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(n) if n > 0 => self.pty_output(),
                _ => return,
            }
        }
    }

    /// The sandbox wrote to its pty: show it on the user's terminal. EIO once every
    /// slave descriptor is closed: the proxy is done.
    fn pty_output(&mut self) {
        let Some(p) = &mut self.proxy else {
            return;
        };
        let Some(m) = &p.master else {
            return;
        };
        let mut buf = [0u8; 8192];
        match nix::unistd::read(m, &mut buf) {
            Ok(0) | Err(nix::Error::EIO) => p.master = None,
            Ok(n) => {
                if write_all(p.output.as_fd(), &buf[..n]).is_err() {
                    p.master = None;
                }
            }
            Err(_) => {}
        }
    }

    /// The user typed: pass it to the pty, whose line discipline makes ^C, ^Z and ^\
    /// signals for the sandbox natively. A suspend character starts the watch for the
    /// suspend pass-through. End of file on the user's terminal (it hung up) closes the
    /// master, which hangs the pty up.
    fn user_input(&mut self) {
        let Some(p) = &mut self.proxy else {
            return;
        };
        let Some(m) = &p.master else {
            return;
        };
        let mut buf = [0u8; 4096];
        match nix::unistd::read(&p.user, &mut buf) {
            Ok(0) | Err(nix::Error::EIO) => {
                // The user's terminal hung up: hang the sandbox's pty up too (close
                // every master descriptor the loader holds).
                p.master = None;
                self.sup.lock().hang_up_owned();
            }
            Ok(n) => {
                let t = systty::tcgets(m.as_fd()).ok();
                let suspend = t.is_some_and(|t| {
                    t.c_lflag & libc::ISIG != 0 && buf[..n].contains(&t.c_cc[libc::VSUSP])
                });
                let _ = write_all(m.as_fd(), &buf[..n]);
                if suspend {
                    self.watch_stop = Some(Instant::now() + Duration::from_secs(2));
                }
            }
            Err(_) => {}
        }
    }

    /// init created the owned pty: register it in the sentry, then hand the master out
    /// or proxy it.
    fn owned_pty(&mut self, master: OwnedFd) {
        let n = match systty::pty_number(master.as_fd()) {
            Ok(n) => n,
            Err(e) => {
                self.fail_setup(format!("the sandbox's pty: {e}"));
                return;
            }
        };
        // Through the master, not /proc/INIT/root/dev/pts/N: init may be gone already
        // (a program that exits at once).
        let identity = match systty::peer_identity(master.as_fd()) {
            Ok(id) => id,
            Err(e) => {
                self.fail_setup(format!("the sandbox's pty pts/{n}: {e}"));
                return;
            }
        };
        let termios = systty::tcgets(master.as_fd()).ok();
        let ws = systty::get_winsize(master.as_fd()).ok();
        let keep = if let Some(console) = &self.console_socket {
            if let Err(e) =
                control::send_fd_stream(console.stream.as_raw_fd(), "console", master.as_raw_fd())
            {
                self.fail_setup(format!("console socket {}: {e}", console.path.display()));
            }
            None
        } else {
            master.try_clone().ok()
        };
        self.core
            .register_main_pty(n, identity, termios.as_ref(), ws.as_ref(), keep);
        if let Some(p) = &mut self.proxy {
            p.master = Some(master);
        }
    }

    /// Records why set-up failed; the first cause is kept (what fails after it is
    /// usually its consequence).
    fn fail_setup(&mut self, e: String) {
        if self.setup_error.is_none() {
            self.setup_error = Some(e);
        } else {
            tracing::debug!(later = %e, "set-up failure after the first");
        }
    }

    /// The program installed its filters: register it in the sentry and start
    /// answering its notifications.
    fn start_listening(&mut self, fd: OwnedFd) {
        let listener = Listener::from_fd(fd);
        match listener.set_sync_wakeup() {
            Ok(true) => self.sync_wakeup = true,
            _ => tracing::warn!(
                "this kernel lacks SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6): \
                 every notified system call will be slower"
            ),
        }
        let attach = self.terminal_attach == TerminalAttach::Session;
        if let Some(p) = self.core.register_program(attach, self.program_privileged) {
            self.program = Some(p);
        }
        match Notifier::start(listener, self.sup.clone()) {
            Ok(n) => {
                self.notifier = Some(n);
                if let Some(p) = self.program {
                    self.core.program_started(p);
                }
                for (mode, signo) in std::mem::take(&mut self.early_signals) {
                    self.forward_by(mode, signo);
                }
            }
            Err(e) => {
                tracing::error!(%e, "cannot start the notification thread");
                self.fail_setup(format!("cannot start the notification thread: {e}"));
            }
        }
    }

    /// Installs the loader's allow-list on every thread (see
    /// [`SandboxSpec::loader_seccomp`]).
    fn confine_loader(&mut self) {
        let r = self
            .loader_filter
            .take()
            .unwrap_or_else(|| seccomp::allow_filter(seccomp::LOADER_EXTRA_SYSCALLS))
            .and_then(|f| seccomp::install_all_threads(&f));
        match r {
            Ok(()) => tracing::info!("loader confined by its seccomp allow-list"),
            Err(e) => tracing::warn!(%e, "loader seccomp allow-list not installed"),
        }
    }

    /// The user's terminal proxied to an owned pty is hung up (POLLHUP).
    fn user_terminal_hung_up(&self) -> bool {
        self.proxy
            .as_ref()
            .is_some_and(|p| p.master.is_some() && systty::hung_up(p.user.as_fd()))
    }

    fn host_signal(&mut self, signo: i32) {
        let Ok(sig) = Signal::try_from(signo) else {
            return;
        };
        tracing::debug!(?sig, "loader received a signal");
        let has_tty = self.sup.lock().main.is_some();
        if matches!(
            sig,
            Signal::SIGCHLD | Signal::SIGTTIN | Signal::SIGTTOU | Signal::SIGCONT
        ) && has_tty
        {
            // The user's shell may have moved the loader's job (see
            // Supervisor::host_foreground).
            self.sup.lock().refresh_host_foreground();
        }
        match sig {
            Signal::SIGCHLD | Signal::SIGTTIN | Signal::SIGTTOU => {}
            Signal::SIGWINCH if has_tty => self.sup.lock().resized(),
            Signal::SIGCONT => {
                if self.stopped_self {
                    self.stopped_self = false;
                    self.forward(signo);
                }
            }
            Signal::SIGHUP if self.user_terminal_hung_up() => {
                // The user's terminal went away: the owned pty hangs up as with it (the
                // host signals its session's leader), nothing is forwarded.
                if let Some(p) = &mut self.proxy {
                    p.master = None;
                }
                self.sup.lock().hang_up_owned();
            }
            Signal::SIGHUP if self.sup.lock().borrowed_tty_hung_up() => {
                // The borrowed terminal itself went away: as Linux's hangup, its
                // session's leader gets SIGHUP and SIGCONT and the session loses it.
                let mut guard = self.sup.lock();
                let sup = &mut *guard;
                if let Some(id) = sup.main {
                    sup.reconcile();
                    let _ = sup.k.tty_hangup(id);
                    let _ = sup.send_host_signals();
                }
            }
            _ => {
                self.forward(signo);
                if sig == Signal::SIGTSTP && has_tty {
                    self.watch_stop = Some(Instant::now() + Duration::from_secs(2));
                }
            }
        }
    }

    fn forward(&mut self, signo: i32) {
        self.forward_by(self.mode, signo)
    }

    fn forward_by(&mut self, mode: SignalMode, signo: i32) {
        let Some(program) = self.program.filter(|_| self.notifier.is_some()) else {
            self.early_signals.push((mode, signo));
            return;
        };
        // The terminal's foreground group is that of whichever session holds it now
        // (its leader's terminal), not necessarily the program's.
        let target = {
            let mut guard = self.sup.lock();
            let sup = &mut *guard;
            let foreground =
                mode == SignalMode::Foreground || (mode == SignalMode::Auto && sup.main.is_some());
            if foreground {
                sup.observe();
                sup.main
                    .and_then(|id| sup.k.tty(id))
                    .and_then(|t| t.session)
                    .unwrap_or(program)
            } else {
                program
            }
        };
        if let Err(e) = self.core.kill(Some(target), mode, signo) {
            tracing::warn!(%e, "signal not forwarded");
        }
    }

    /// Suspend pass-through (see the module documentation).
    fn check_pass_through(&mut self) {
        let Some(deadline) = self.watch_stop else {
            return;
        };
        if !self.forward_signals {
            // An embedder's process is never stopped by the sandbox.
            self.watch_stop = None;
            return;
        }
        if Instant::now() > deadline {
            self.watch_stop = None;
            return;
        }
        match self.core.main_foreground_job() {
            crate::core::ForegroundJob::ManagedByShell => {
                self.watch_stop = None;
                return;
            }
            crate::core::ForegroundJob::Stopped => {}
            crate::core::ForegroundJob::None | crate::core::ForegroundJob::Running => return,
        }
        self.watch_stop = None;
        tracing::info!("foreground job stopped without a job-control shell: suspending");
        self.stopped_self = true;
        if let Some(p) = &self.proxy {
            let _ = systty::tcsets(p.user.as_fd(), &p.cooked);
        }
        crate::sys::signal::stop_self(libc::SIGTSTP);
        // Continued (the user's `fg`): raw again; the SIGCONT itself is forwarded by the
        // loop.
        if let Some(p) = &self.proxy {
            let _ = systty::tcsets(p.user.as_fd(), &p.raw);
        }
    }
}

/// What the supervision loop polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// init's pidfd: readable once it has exited.
    Init,
    /// The loader's signalfd (`forward_signals`).
    Signals,
    /// Requests of the [`Sandbox`] handle (and new exec'd processes).
    Commands,
    /// init's control socket.
    Control,
    /// The notification threads want the loop's attention.
    Wake,
    /// The user's terminal (owned pty proxy).
    ProxyInput,
    /// The owned pty's master (proxy).
    ProxyOutput,
    /// The terminal-signal listener.
    TtyListener,
    /// The pidfd of a session leader holding the borrowed terminal (index into the
    /// supervisor's list).
    Leader(usize),
    /// The control socket of an exec helper (index into the loop's list).
    Exec(usize),
}

/// A poll set whose entries are named by their [`Source`]: the loop registers what
/// it owns and gets back the sources that are ready, in registration order.
#[derive(Default)]
struct PollSet {
    fds: Vec<PollFd<'static>>,
    sources: Vec<Source>,
}

impl PollSet {
    /// `fd` must stay open until [`PollSet::poll`] has returned (the loop's own
    /// descriptors, which only the loop closes).
    fn add(&mut self, fd: std::os::fd::RawFd, source: Source) {
        self.fds
            .push(PollFd::new(crate::sys::fd::borrow(fd), PollFlags::POLLIN));
        self.sources.push(source);
    }

    /// Waits; returns the ready sources (any event: readable, hang-up, error).
    fn poll(mut self, timeout: PollTimeout) -> nix::Result<Vec<Source>> {
        poll(&mut self.fds, timeout)?;
        Ok(self
            .fds
            .iter()
            .zip(&self.sources)
            .filter(|(f, _)| f.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, &s)| s)
            .collect())
    }
}

/// The sentry's delivery mode for a signal mode.
pub(crate) fn delivery_mode(mode: SignalMode, has_tty: bool) -> DeliveryMode {
    let fg = DeliveryMode::ForegroundProcessGroup {
        fallback_to_process: true,
    };
    match mode {
        SignalMode::Auto if has_tty => fg,
        SignalMode::Auto | SignalMode::Process => DeliveryMode::Process,
        SignalMode::Foreground => fg,
        SignalMode::All => DeliveryMode::AllProcesses,
    }
}

/// Connects to an OCI-style console socket and sends it the pty master (SCM_RIGHTS).
/// A console socket (`--console-socket`), connected before the sandbox starts.
struct ConsoleSocket {
    path: PathBuf,
    stream: std::os::unix::net::UnixStream,
}

fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Creates the sandbox's cgroups and has init join them: the `tasks` file of each v1
/// cgroup goes to init (`J`), which writes `0` to it; a v2 cgroup gets init's PID in
/// `cgroup.procs` from the loader; then `G`, which init waits for before it forks the
/// program. Limits no writable hierarchy can hold are warned about.
fn place_init(
    control: std::os::fd::RawFd,
    init: i32,
    limits: crate::cgroup::Limits,
) -> Result<Option<crate::cgroup::SandboxCgroup>, LoaderError> {
    // A send that fails means init has ended (it failed to build the sandbox): what
    // it said is on the control channel, for the supervision loop to report.
    let gone = |e: nix::Error| tracing::debug!(%e, "init ended before joining its cgroups");
    let placement = crate::cgroup::create(limits)?;
    if let Some(n) = placement.unplaced.pids {
        tracing::warn!(
            limit = n,
            "no writable pids cgroup: the process limit is not enforced"
        );
    }
    if let Some(bytes) = placement.unplaced.memory {
        tracing::warn!(
            bytes,
            "no writable memory cgroup: the memory limit is not enforced"
        );
    }
    let mut cgroup = placement.cgroup;
    if let Some(c) = &mut cgroup {
        for tasks in c.self_join() {
            if let Err(e) = control::send_join(control, tasks) {
                gone(e);
                c.close_join_descriptors();
                return Ok(cgroup);
            }
        }
        if c.needs_loader_move() {
            c.add_process(init)?;
        }
        c.close_join_descriptors();
    }
    if let Err(e) = control::send(control, &Message::Go) {
        gone(e);
    }
    Ok(cgroup)
}

/// `e`, once init (spawned, not yet running the program) is killed and reaped: a
/// start that fails after the spawn leaves nothing behind.
fn abandon_init(pidfd: &OwnedFd, e: LoaderError) -> LoaderError {
    let _ = crate::sys::clone::pidfd_kill(pidfd);
    let _ = wait_pidfd(pidfd);
    e
}

/// init's wait status, once it has ended. An init that is not our child
/// ([`SandboxSpec::clone_parent`]: its parent reaps it) cannot be waited for: once its
/// pidfd says it has ended, SIGKILL stands for "ended" (the program's own status
/// comes from init's report).
pub(crate) fn wait_pidfd(pidfd: &OwnedFd) -> Result<i32, LoaderError> {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    loop {
        match waitid(Id::PIDFd(pidfd.as_fd()), WaitPidFlag::WEXITED) {
            Err(nix::Error::ECHILD) => {
                let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => return Ok(libc::SIGKILL),
                    Err(nix::Error::EINTR) => continue,
                    Err(e) => return Err(LoaderError::Sys("poll", e)),
                }
            }
            Ok(st @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                return Ok(init::raw_status(st))
            }
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(LoaderError::Sys("waitid", e)),
        }
    }
}
