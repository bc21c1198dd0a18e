//! The `sandbox` command.
//!
//! - `sandbox run [--tty] -- PROGRAM [ARGS]`: runs a program in a sandbox whose job
//!   control is decided by the sentry (see `sandbox-loader`).
//! - `sandbox run -d [--name ID] -- PROGRAM`: a long-running sandbox, and the
//!   lifecycle verbs `exec`, `kill`, `wait`, `ps`, `list`, `delete` (see
//!   `sandbox_cli::daemon` and `sandbox_cli::client`).
//! - `sandbox demo`: a job-control session played on the sentry model and narrated
//!   event by event.

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use sandbox_sentry::wait::{WCONTINUED, WUNTRACED};
use sandbox_sentry::{
    Blocking, Event, Handler, Kernel, OpenFlags, Pid, Signal, SysResult, TtyId, WaitInfo,
};
use std::io::Write;

/// `eprintln!` that cannot panic (see [`Stderr`]).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(Stderr, $($arg)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "sandbox",
    version,
    about = "A process sandbox with Linux-exact job control"
)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

// The options every subcommand takes (a plain comment: clap would take a doc comment
// for the command's about).
#[derive(clap::Args, Debug, PartialEq, Eq)]
struct Globals {
    /// Log level: error, warn, info, debug, trace or off (default: warn, so warnings
    /// are shown). RUST_LOG works too. Logs go to stderr, or to the file named by
    /// SANDBOX_LOG_FILE.
    #[arg(long, global = true, value_name = "LEVEL", value_parser = ["error", "warn", "info", "debug", "trace", "off"])]
    log_level: Option<String>,
    /// Show errors only (the same as --log-level error).
    #[arg(short, long, global = true, conflicts_with = "log_level")]
    quiet: bool,
    /// Log format: text for people, json (one object a line) for machines.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// The state directory of long-running sandboxes (`run -d`): default
    /// /run/sandbox as root, else $XDG_RUNTIME_DIR/sandbox.
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<std::path::PathBuf>,
    /// OCI runtime verbs (runc's flag): also append errors to FILE (JSON lines with
    /// --log-format json).
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<std::path::PathBuf>,
    /// runc's flag: cgroups through systemd. Not supported (refused).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// runc's flag: accepted (the same as --log-level debug).
    #[arg(long, global = true)]
    debug: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run PROGRAM in a sandbox: new PID, mount, UTS, IPC and network namespaces, the
    /// host root behind a throwaway writable overlay (read-only with --read-only or
    /// without root) with a private /tmp, a fresh /proc (kernel settings read-only) and
    /// a minimal /dev, seccomp, no capabilities, at most 4096 processes (--pids-limit). Exit status: the program's, 128+N if it was killed by signal N, 125 for
    /// a sandbox error, 126 if PROGRAM cannot be executed, 127 if it is not found.
    Run(Box<RunArgs>),
    /// Run PROGRAM in the running sandbox ID (started with `run -d`): in a session of
    /// its own, with the sandbox's namespaces, filesystem and seccomp filters. Exit
    /// status: the program's, 128+N if killed by signal N, 125/126/127 as `run`.
    Exec(Box<ExecArgs>),
    /// OCI runtime: create container ID from the bundle (its config.json), its
    /// program held before exec until `start` (see docs/OCI.md).
    Create(Box<sandbox_cli::oci::CreateArgs>),
    /// OCI runtime: let created container ID run its program.
    Start { id: String },
    /// OCI runtime: print the state of container ID (runtime-spec state JSON).
    State { id: String },
    /// OCI runtime: freeze every process of container ID.
    Pause { id: String },
    /// OCI runtime: thaw container ID.
    Resume { id: String },
    /// OCI runtime: print what this runtime supports (runtime-spec features JSON).
    Features,
    /// Send a signal to a process of sandbox ID by delivery mode (default: SIGTERM to
    /// the first program).
    Kill {
        /// Every process of the sandbox (OCI's `kill --all`; the same as --mode all).
        #[arg(short, long)]
        all: bool,
        /// The sandbox PID to signal (default: the first program).
        #[arg(long)]
        pid: Option<i32>,
        /// process: that process; foreground: the foreground process group of its
        /// terminal (the process itself if the terminal has none; an error without a
        /// terminal); all: every process of the sandbox but init, frozen meanwhile so
        /// that none escapes by forking (SIGKILL returns once they are gone).
        #[arg(long, value_enum, default_value = "process")]
        mode: KillModeArg,
        id: String,
        /// A signal name (TERM, SIGTERM, any case) or number.
        #[arg(default_value = "TERM", value_parser = sandbox_cli::client::parse_signal)]
        signal: i32,
    },
    /// Wait until a process of sandbox ID ends (default: the first program); print
    /// nothing, exit with its status (128+N for signal N). An exec'd PID's status can
    /// be waited for once.
    Wait {
        #[arg(long)]
        pid: Option<i32>,
        id: String,
    },
    /// List the processes of sandbox ID as the sentry sees them: PID PPID PGID SID
    /// TTY STAT COMMAND (STAT: R running, S sleeping, T stopped, Z zombie, + in the
    /// foreground group of its terminal).
    Ps {
        #[arg(long)]
        json: bool,
        id: String,
    },
    /// List the long-running sandboxes: ID, supervisor PID, status (created,
    /// running, stopped: the first program ended, dead: the supervisor is gone),
    /// creation time, command.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove sandbox ID: kill every process, reap them, remove its cgroups and its
    /// state. A running sandbox (its first program alive) is refused without
    /// --force.
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// The supervisor of `run -d` (internal).
    #[command(name = "__supervise", hide = true)]
    Supervise {
        #[arg(long)]
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Play a shell session on the job-control kernel model and show every event:
    /// a foreground job, ^Z, `jobs`, `bg`, `fg`, ^C.
    Demo {
        /// Print the kernel's raw events as JSON lines instead of the narration.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script for SHELL (bash, zsh, fish, elvish, powershell)
    /// on standard output, e.g. `sandbox completions bash >
    /// /usr/share/bash-completion/completions/sandbox`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a manual page (roff) on standard output: `sandbox man >
    /// /usr/local/share/man/man1/sandbox.1`, `sandbox man run > .../sandbox-run.1`.
    Man {
        /// The subcommand whose page to print (default: the main page).
        subcommand: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum KillModeArg {
    Process,
    Foreground,
    All,
}

#[derive(clap::Args)]
struct ExecArgs {
    /// Give the process a terminal: `--tty` (or `--tty=borrow`) borrows the invoking
    /// terminal (sentry-enforced job control, as `run --tty`); `--tty=pty` (or -t)
    /// gives it a pty of the sandbox's own, proxied to the invoking terminal in raw
    /// mode. Without it, the process gets this command's stdin, stdout and stderr.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "borrow")]
    tty: Option<TtyArg>,
    /// The same as --tty=pty.
    #[arg(short = 't', conflicts_with_all = ["tty", "console_socket"])]
    pty: bool,
    /// Accepted for docker's `-it`: standard input is always passed.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Give the process a pty and send its master to the unix socket PATH
    /// (SCM_RIGHTS); nothing is proxied. OCI's `--tty --console-socket PATH` means
    /// the same.
    #[arg(long, value_name = "PATH")]
    console_socket: Option<std::path::PathBuf>,
    /// OCI runtime: the process to run, as an OCI process JSON file (instead of
    /// PROGRAM).
    #[arg(long, value_name = "FILE")]
    process: Option<std::path::PathBuf>,
    /// OCI runtime: write the PID whose exit status is the process's here.
    #[arg(long, value_name = "FILE")]
    pid_file: Option<std::path::PathBuf>,
    /// OCI runtime: return at once (the process's status is that of the PID written
    /// to --pid-file).
    #[arg(short = 'd', long)]
    detach: bool,
    /// Set an environment variable on top of the first program's environment:
    /// KEY=VALUE, or KEY alone for this command's value of KEY (skipped if unset);
    /// repeatable.
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]", value_parser = parse_exec_env)]
    envs: Vec<String>,
    /// Working directory inside the sandbox (default: /).
    #[arg(short = 'w', long)]
    cwd: Option<std::path::PathBuf>,
    /// Run as `UID[:GID]` (numeric; GID defaults to UID).
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    user: Option<String>,
    /// The sandbox.
    id: String,
    /// The program and its arguments.
    #[arg(
        required_unless_present = "process",
        trailing_var_arg = true,
        value_name = "PROGRAM"
    )]
    command: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Detach: start a long-running sandbox, print its ID once PROGRAM runs and
    /// return; a supervisor process stays (out of this terminal and session), and
    /// `sandbox exec/kill/wait/ps/delete ID` act on it. Not with --tty or --tty-fd
    /// (use --console-socket for a terminal).
    #[arg(short = 'd', long, conflicts_with_all = ["tty", "pty", "tty_fd"])]
    detach: bool,
    /// The ID of the detached sandbox (letters, digits, '_', '.', '-'; default: 12
    /// random hex digits).
    #[arg(long, value_name = "ID", requires = "detach")]
    name: Option<String>,
    /// Give the sandbox a terminal. `--tty` (or `--tty=borrow`) borrows the invoking
    /// terminal (stdin must be one): the sandbox's processes hold it, and the sandbox's
    /// session gets it as controlling terminal with Linux-exact job control decided and
    /// enforced by the sentry. It can never become their host controlling terminal, it
    /// takes no faked input, and its modes are restored when `sandbox` ends (even on
    /// SIGKILL); but a hostile program racing threads can read what you type while it
    /// is in the background, or change the terminal's modes meanwhile. `--tty=pty`
    /// gives the sandbox a pty of its own as real controlling terminal (the sentry
    /// approves every job-control change, the host enforces) and proxies it to the
    /// invoking terminal, put in raw mode meanwhile: no sandbox process ever holds
    /// your terminal. Use it (or -t) for programs you do not trust (docs/SECURITY.md).
    /// Without --tty, stdio is
    /// passed through untouched.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "borrow")]
    tty: Option<TtyArg>,
    /// The same as --tty=pty (docker's -t: a pseudo-terminal of the sandbox's own).
    #[arg(short = 't', conflicts_with_all = ["tty", "tty_fd", "console_socket"])]
    pty: bool,
    /// Accepted for docker's `-it`: standard input is always passed to the program.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Borrow the terminal open on descriptor N (not necessarily the invoking one) and
    /// make it the program's stdio. When `sandbox` is not in that terminal's
    /// foreground group, a small listener process takes it as controlling terminal to
    /// receive ^C, ^\, ^Z, resizes and hangup, which the sandbox's foreground group
    /// then gets (the terminal must not be anyone's controlling terminal then).
    #[arg(long, value_name = "N", conflicts_with_all = ["tty", "console_socket"])]
    tty_fd: Option<i32>,
    /// Give the sandbox a pty of its own and send its master to the unix socket PATH
    /// (SCM_RIGHTS), as OCI runtimes do; nothing is proxied.
    #[arg(long, value_name = "PATH", conflicts_with = "tty")]
    console_socket: Option<std::path::PathBuf>,
    /// Where signals sent to `sandbox` go: auto (the terminal's foreground process
    /// group with --tty, else the program), process (the program), foreground, all
    /// (every sandbox process).
    #[arg(long, value_enum, default_value = "auto")]
    signal_mode: SignalModeArg,
    /// Bind-mount a host path: `SRC[:DST][:ro|rw]` (DST defaults to SRC; read-write
    /// unless `:ro`); a missing DST is created inside the sandbox. Repeatable.
    #[arg(short = 'v', long = "bind", value_name = "SRC[:DST][:ro]", value_parser = parse_bind_rw)]
    binds: Vec<sandbox_loader::mounts::Bind>,
    /// Bind-mount a host path read-only: `SRC[:DST]`. Repeatable.
    #[arg(long = "ro-bind", value_name = "SRC[:DST]", value_parser = parse_bind_ro)]
    ro_binds: Vec<sandbox_loader::mounts::Bind>,
    /// Use DIR as the root filesystem instead of the host's (mounted read-only).
    #[arg(long, value_name = "DIR")]
    rootfs: Option<std::path::PathBuf>,
    /// Keep the host's network namespace.
    #[arg(long)]
    share_net: bool,
    /// Hostname inside the sandbox.
    #[arg(long)]
    hostname: Option<String>,
    /// Set an environment variable (KEY=VALUE); repeatable. The program otherwise
    /// inherits sandbox's environment.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    envs: Vec<String>,
    /// Run the program as `UID[:GID]` (numeric; GID defaults to UID).
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    user: Option<String>,
    /// A resource limit for the program: `NAME=SOFT[:HARD]` with NAME one of as, core,
    /// cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio,
    /// rttime, sigpending, stack (any case, with or without RLIMIT_); SOFT and HARD are
    /// numbers or `unlimited` (HARD defaults to SOFT). Repeatable.
    #[arg(long = "rlimit", value_name = "NAME=SOFT[:HARD]", value_parser = parse_rlimit)]
    rlimits: Vec<(i32, u64, u64)>,
    /// Let the program keep capability CAP (repeatable; with or without CAP_, any
    /// case). By default it has none, as root too. `docker-default` adds Docker's
    /// default set: CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID
    /// SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE.
    #[arg(long = "cap-add", value_name = "CAP")]
    cap_add: Vec<String>,
    /// Most processes and threads the sandbox may have at once, its init included
    /// (pids cgroup; without root, RLIMIT_NPROC on the program). 0: no limit.
    #[arg(long, value_name = "N", default_value_t = sandbox_loader::DEFAULT_PIDS_LIMIT)]
    pids_limit: u64,
    /// Memory limit for the whole sandbox (memory cgroup): bytes, or with a suffix
    /// k, m, g (powers of 1024), e.g. 512m, 1g.
    #[arg(short = 'm', long, value_name = "SIZE", value_parser = parse_size)]
    memory: Option<u64>,
    /// Keep the root read-only (by default, as root, writes anywhere succeed and
    /// vanish with the sandbox: a tmpfs overlay over the host root or --rootfs;
    /// without root the root is always read-only).
    #[arg(long)]
    read_only: bool,
    /// Working directory inside the sandbox (default: the caller's, when the sandbox
    /// shows it, else /).
    #[arg(short = 'w', long)]
    cwd: Option<std::path::PathBuf>,
    /// Do not install the program's seccomp policy (the job-control notify filter
    /// stays).
    #[arg(long)]
    no_seccomp: bool,
    /// Let the program make system call NAME although the seccomp policy denies it
    /// (e.g. bpf, perf_event_open); repeatable.
    #[arg(long = "seccomp-allow", value_name = "NAME")]
    seccomp_allow: Vec<String>,
    /// Do not confine the loader itself with its seccomp allow-list (debugging: lets
    /// strace, gdb and extra logging work inside the loader).
    #[arg(long)]
    no_loader_seccomp: bool,
    /// First process-creation method to try (later ones are fallbacks).
    #[arg(long, value_enum, default_value = "clone3", hide = true)]
    spawn: SpawnArg,
    /// With -d: the cgroup hierarchy that freezes the sandbox for `kill --mode all`
    /// (auto: the v1 freezer when mounted, else v2; v2 tests that path on hybrid
    /// hosts).
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        hide = true,
        requires = "detach"
    )]
    freezer: FreezerArg,
    /// The terminal starts as nobody's controlling terminal inside the sandbox (the
    /// conformance harness: its Linux runs start with a fresh pty).
    #[arg(long, hide = true)]
    tty_unattached: bool,
    /// The program and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "PROGRAM")]
    command: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TtyArg {
    Borrow,
    Pty,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum SignalModeArg {
    Auto,
    Process,
    Foreground,
    All,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum FreezerArg {
    Auto,
    V2,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum SpawnArg {
    Clone3,
    Clone,
    Fork,
}

/// `SRC[:DST][:ro|rw]` for `--bind`/`-v`.
fn parse_bind_rw(s: &str) -> Result<sandbox_loader::mounts::Bind, String> {
    parse_bind(s, false)
}

/// `SRC[:DST]` for `--ro-bind` (always read-only).
fn parse_bind_ro(s: &str) -> Result<sandbox_loader::mounts::Bind, String> {
    parse_bind(s, true)
}

fn parse_bind(s: &str, read_only: bool) -> Result<sandbox_loader::mounts::Bind, String> {
    let mut parts: Vec<&str> = s.split(':').collect();
    let mut read_only = read_only;
    if parts.len() > 1 {
        match parts.last().copied() {
            Some("ro") => {
                read_only = true;
                parts.pop();
            }
            Some("rw") if !read_only => {
                parts.pop();
            }
            _ => {}
        }
    }
    let (src, dst) = match parts.as_slice() {
        [src] if !src.is_empty() => (*src, *src),
        [src, dst] if !src.is_empty() && !dst.is_empty() => (*src, *dst),
        _ => return Err("expected SRC[:DST][:ro] (paths cannot contain ':')".into()),
    };
    if !dst.starts_with('/') {
        return Err(format!("the target {dst:?} must be an absolute path"));
    }
    Ok(sandbox_loader::mounts::Bind {
        source: src.into(),
        target: dst.into(),
        read_only,
    })
}

/// `KEY=VALUE` with a non-empty key.
fn parse_env(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((key, _)) if !key.is_empty() && !key.contains('\0') => Ok(s.to_string()),
        Some(_) => Err("the name before '=' is empty".into()),
        None => Err("expected KEY=VALUE".into()),
    }
}

/// `KEY=VALUE`, or `KEY` for this process's value of KEY (docker's `-e KEY`; an
/// unset KEY gives an empty string, dropped by `exec`).
fn parse_exec_env(s: &str) -> Result<String, String> {
    if s.contains('=') {
        return parse_env(s);
    }
    if s.is_empty() || s.contains('\0') {
        return Err("expected KEY or KEY=VALUE".into());
    }
    Ok(std::env::var(s)
        .map(|v| format!("{s}={v}"))
        .unwrap_or_default())
}

/// `NAME=SOFT[:HARD]` → (RLIMIT_*, soft, hard).
fn parse_rlimit(s: &str) -> Result<(i32, u64, u64), String> {
    use nix::sys::resource::Resource as R;
    let (name, value) = s.split_once('=').ok_or("expected NAME=SOFT[:HARD]")?;
    let lower = name.to_ascii_lowercase();
    let short = lower.strip_prefix("rlimit_").unwrap_or(&lower);
    let resource = match short {
        "as" => R::RLIMIT_AS,
        "core" => R::RLIMIT_CORE,
        "cpu" => R::RLIMIT_CPU,
        "data" => R::RLIMIT_DATA,
        "fsize" => R::RLIMIT_FSIZE,
        "locks" => R::RLIMIT_LOCKS,
        "memlock" => R::RLIMIT_MEMLOCK,
        "msgqueue" => R::RLIMIT_MSGQUEUE,
        "nice" => R::RLIMIT_NICE,
        "nofile" => R::RLIMIT_NOFILE,
        "nproc" => R::RLIMIT_NPROC,
        "rss" => R::RLIMIT_RSS,
        "rtprio" => R::RLIMIT_RTPRIO,
        "rttime" => R::RLIMIT_RTTIME,
        "sigpending" => R::RLIMIT_SIGPENDING,
        "stack" => R::RLIMIT_STACK,
        _ => return Err(format!("unknown limit {name:?}")),
    };
    let number = |v: &str| -> Result<u64, String> {
        if v.eq_ignore_ascii_case("unlimited") {
            Ok(nix::sys::resource::RLIM_INFINITY)
        } else {
            v.parse()
                .map_err(|_| format!("{v:?} is not a number or 'unlimited'"))
        }
    };
    let (soft, hard) = match value.split_once(':') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => {
            let v = number(value)?;
            (v, v)
        }
    };
    if soft > hard {
        return Err(format!(
            "the soft limit {soft} is above the hard limit {hard}"
        ));
    }
    Ok((resource as i32, soft, hard))
}

/// `512m`, `1g`, `4096`, `64k` → bytes (suffixes are powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || "expected a size such as 512m or 1g".to_string();
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, shift) = match lower.char_indices().last() {
        Some((i, 'k')) => (&lower[..i], 10),
        Some((i, 'm')) => (&lower[..i], 20),
        Some((i, 'g')) => (&lower[..i], 30),
        Some((i, 't')) => (&lower[..i], 40),
        _ => (lower, 0),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let bytes = n.checked_mul(1u64 << shift).ok_or_else(bad)?;
    if bytes == 0 {
        return Err(bad());
    }
    Ok(bytes)
}

/// `sandbox run`: returns the exit status. With `detached` (the supervisor of `run
/// -d`), serves the sandbox until `delete` instead.
fn run(args: RunArgs, detached: Option<sandbox_cli::daemon::Detached>) -> Result<i32> {
    use sandbox_loader::{SandboxSpec, SignalMode, SpawnMethod};
    use std::os::fd::AsFd;
    let mut spec = SandboxSpec::new(args.command);
    for e in &args.envs {
        let key = e.split('=').next().unwrap_or_default();
        spec.env.retain(|kv| kv.split('=').next() != Some(key));
        spec.env.push(e.clone());
    }
    spec.binds.extend(args.binds);
    spec.binds.extend(args.ro_binds);
    if let Some(u) = &args.user {
        let bad = || anyhow!("bad --user {u:?}: expected UID[:GID]");
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            None => {
                let id: u32 = u.parse().map_err(|_| bad())?;
                (id, id)
            }
        };
        if uid == u32::MAX || gid == u32::MAX {
            return Err(anyhow!(
                "bad --user {u:?}: 4294967295 is (uid_t)-1, which the kernel reads as \"unchanged\""
            ));
        }
        spec.user = Some((uid, gid));
    }
    spec.rlimits = args.rlimits;
    for c in &args.cap_add {
        spec.capabilities
            .add(c)
            .map_err(|e| anyhow!("bad --cap-add {c:?}: {e}"))?;
    }
    spec.pids_limit = (args.pids_limit != 0).then_some(args.pids_limit);
    spec.memory_limit = args.memory;
    spec.rootfs = args.rootfs;
    if args.read_only {
        spec.root_mode = sandbox_loader::mounts::RootMode::ReadOnly;
    }
    spec.share_net = args.share_net;
    spec.hostname = args.hostname;
    spec.cwd = args.cwd;
    spec.caller_cwd = std::env::current_dir().ok();
    spec.seccomp = !args.no_seccomp;
    for name in &args.seccomp_allow {
        match sandbox_loader::seccomp::syscall_by_name(name) {
            Some(rule) if rule.nr != sandbox_loader::seccomp::ABSENT => {}
            _ => {
                return Err(anyhow!(
                    "bad --seccomp-allow {name:?}: not a system call name the sandbox knows"
                ))
            }
        }
    }
    spec.seccomp_allow = args.seccomp_allow;
    spec.loader_seccomp = !args.no_loader_seccomp;
    // Tests collect lockstep violations in a file (the screen is not checked).
    spec.lockstep_report = std::env::var_os("SANDBOX_LOCKSTEP_REPORT").map(Into::into);
    spec.signal_mode = match args.signal_mode {
        SignalModeArg::Auto => SignalMode::Auto,
        SignalModeArg::Process => SignalMode::Process,
        SignalModeArg::Foreground => SignalMode::Foreground,
        SignalModeArg::All => SignalMode::All,
    };
    if args.tty_unattached {
        spec.terminal_attach = sandbox_loader::TerminalAttach::Unattached;
    }
    spec.spawn_method = match args.spawn {
        SpawnArg::Clone3 => SpawnMethod::Clone3,
        SpawnArg::Clone => SpawnMethod::Clone,
        SpawnArg::Fork => SpawnMethod::Fork,
    };
    let tty = if args.pty {
        Some(TtyArg::Pty)
    } else {
        args.tty
    };
    if let Some(mode) = tty {
        let stdin = std::io::stdin();
        if !nix::unistd::isatty(stdin.as_fd()).unwrap_or(false) {
            return Err(anyhow!("--tty needs a terminal on standard input"));
        }
        let fd = stdin.as_fd().try_clone_to_owned()?;
        match mode {
            TtyArg::Borrow => spec.terminal = Some(fd),
            TtyArg::Pty => {
                spec.owned_pty = Some(sandbox_loader::OwnedPty {
                    proxy: Some(fd),
                    console_socket: None,
                    // `> file` captures the output, as with `docker run -t`.
                    output: Some(std::io::stdout().as_fd().try_clone_to_owned()?),
                })
            }
        }
    }
    if let Some(n) = args.tty_fd {
        // Open the same terminal again through /proc (no unsafe descriptor juggling;
        // O_NOCTTY: this never makes it the loader's controlling terminal).
        use std::os::unix::fs::OpenOptionsExt;
        let fd: std::os::fd::OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NOCTTY.bits())
            .open(format!("/proc/self/fd/{n}"))
            .map_err(|e| anyhow!("--tty-fd {n}: {e}"))?
            .into();
        if !nix::unistd::isatty(&fd).unwrap_or(false) {
            return Err(anyhow!("--tty-fd {n}: not a terminal"));
        }
        let ours = nix::unistd::getpgrp();
        let fronted = nix::unistd::tcgetpgrp(&fd).is_ok_and(|fg| fg == ours);
        spec.terminal_listener = !fronted;
        spec.terminal_stdio = true;
        spec.terminal = Some(fd);
    }
    if let Some(path) = args.console_socket {
        spec.owned_pty = Some(sandbox_loader::OwnedPty {
            proxy: None,
            console_socket: Some(path),
            output: None,
        });
    }
    if let Some(d) = detached {
        return Ok(sandbox_cli::daemon::serve(spec, d, None));
    }
    match sandbox_loader::run(spec) {
        Ok(out) => {
            tracing::info!(
                status = out.exit_code(),
                method = out.spawn_method.name(),
                notifications = out.stats.notifications,
                fast_path = out.stats.fast_path,
                adopted = out.stats.adopted,
                exit_events = out.stats.exit_events,
                full_walks = out.stats.full_walks,
                "sandbox finished"
            );
            if !out.lockstep_violations.is_empty() {
                say!(
                    "sandbox: {} lockstep violation(s) between host and sentry (a bug):",
                    out.lockstep_violations.len()
                );
                for v in &out.lockstep_violations {
                    say!("sandbox:   {v}");
                }
            }
            Ok(out.exit_code())
        }
        Err(e) => {
            say!("sandbox: {e}");
            Ok(e.exit_code())
        }
    }
}

fn init_logging(cli: &Cli) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = match (cli.globals.quiet, cli.globals.log_level.as_deref()) {
        (true, _) => EnvFilter::new("error"),
        (false, Some(l)) => EnvFilter::new(l),
        (false, None) if cli.globals.debug => EnvFilter::new("debug"),
        (false, None) => {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"))
        }
    };
    // SANDBOX_LOG_FILE: log to a file (appending) instead of stderr, which with --tty
    // is the user's screen.
    let file = std::env::var_os("SANDBOX_LOG_FILE").and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    // Colour only on a terminal, never in a file or a pipe.
    let ansi = file.is_none() && std::io::stderr().is_terminal();
    let writer = match file {
        Some(f) => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(f)),
        None => tracing_subscriber::fmt::writer::BoxMakeWriter::new(|| Stderr),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let _ = match cli.globals.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Renders the main manual page, or that of one subcommand (`sandbox-run(1)`).
fn man_page(subcommand: Option<&str>) -> Result<()> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let page = match subcommand {
        None => cmd,
        Some(name) => {
            let sub = cmd
                .find_subcommand(name)
                .ok_or_else(|| anyhow!("man: no subcommand {name:?}"))?
                .clone();
            sub.name(format!("sandbox-{name}"))
        }
    };
    clap_mangen::Man::new(page)
        .render(&mut std::io::stdout())
        .map_err(anyhow::Error::from)
}

/// Standard error that never fails: a write error (the terminal hung up, a closed
/// pipe) loses the message instead of panicking, as `eprintln!` and the log writer
/// would; the exit status still tells what happened.
struct Stderr;

impl std::io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Exit status for the sandbox's own errors, usage errors included (as Docker's).
const EXIT_SANDBOX_ERROR: i32 = 125;

impl Cli {
    /// The command line `args` (the program's name first) parsed. `run`, the command
    /// whose start-up time counts, by a parser that knows only `run` (building the
    /// whole parser, every subcommand's options and help, costs about 0.3 ms of the
    /// command's start); anything else, and anything that parser refuses or answers
    /// with help, by the whole parser, whose answers and errors are the ones shown.
    fn parse_from_args(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
        if let Some(cli) = Cli::parse_run(&args) {
            return Ok(cli);
        }
        Cli::try_parse_from(args)
    }

    /// `args` parsed as `sandbox [OPTIONS] run ...`; `None` for anything else.
    fn parse_run(args: &[std::ffi::OsString]) -> Option<Cli> {
        use clap::{Args, FromArgMatches};
        if !args.iter().skip(1).any(|a| a == "run") {
            return None;
        }
        let run = RunArgs::augment_args(clap::Command::new("run"));
        let cmd = Globals::augment_args(clap::Command::new("sandbox"))
            .subcommand(run)
            .subcommand_required(true);
        let matches = cmd.try_get_matches_from(args).ok()?;
        let ("run", sub) = matches.subcommand()? else {
            return None;
        };
        let globals = Globals::from_arg_matches(&matches).ok()?;
        let run = RunArgs::from_arg_matches(sub).ok()?;
        Some(Cli {
            globals,
            command: Command::Run(Box::new(run)),
        })
    }
}

fn main() {
    let cli = match Cli::parse_from_args(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() {
                EXIT_SANDBOX_ERROR
            } else {
                0
            });
        }
    };
    // The supervisor of `run -d` logs as its command line (after `--`) says.
    let inner = match &cli.command {
        Command::Supervise { args, .. } => Cli::parse_from_args(
            std::iter::once(std::ffi::OsString::from("sandbox"))
                .chain(args.iter().map(Into::into))
                .collect(),
        )
        .ok(),
        _ => None,
    };
    init_logging(inner.as_ref().unwrap_or(&cli));
    let oci = OciGlobals {
        root: cli.globals.root.clone(),
        log: cli.globals.log.clone(),
        json: cli.globals.log_format == LogFormat::Json,
        systemd_cgroup: cli.globals.systemd_cgroup,
    };
    let result = match cli.command {
        Command::Demo { json } => demo(json),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "sandbox", &mut std::io::stdout());
            Ok(())
        }
        Command::Man { subcommand } => man_page(subcommand.as_deref()),
        Command::Run(args) if args.detach => {
            // The supervisor gets this very command line back.
            let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
            verb(&cli.globals.root, |root| {
                sandbox_cli::client::run_detached(root, args.name.clone(), argv)
            })
        }
        Command::Run(args) => match run(*args, None) {
            Ok(code) => std::process::exit(code),
            Err(e) => Err(e),
        },
        Command::Supervise { id, args } => supervise(&cli.globals.root, &id, args),
        Command::Exec(args) if args.process.is_some() => {
            let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
            oci_verb(&oci, |root| oci_exec(root, *args, argv))
        }
        Command::Exec(args) => verb(&cli.globals.root, |root| exec(root, *args)),
        Command::Create(ref args) => {
            let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
            let args = args.clone();
            oci_verb(&oci, |root| sandbox_cli::oci::create(root, &args, argv))
        }
        Command::Start { ref id } => oci_verb(&oci, |root| sandbox_cli::oci::start(root, id)),
        Command::State { ref id } => oci_verb(&oci, |root| sandbox_cli::oci::state(root, id)),
        Command::Pause { ref id } => oci_verb(&oci, |root| sandbox_cli::oci::pause(root, id, true)),
        Command::Resume { ref id } => {
            oci_verb(&oci, |root| sandbox_cli::oci::pause(root, id, false))
        }
        Command::Features => std::process::exit(sandbox_cli::oci::features()),
        Command::Kill {
            all,
            pid,
            mode,
            ref id,
            signal,
        } if oci.log.is_some() || all => oci_verb(&oci, |root| {
            let mode = if all {
                sandbox_cli::protocol::KillMode::All
            } else {
                match mode {
                    KillModeArg::Process => sandbox_cli::protocol::KillMode::Process,
                    KillModeArg::Foreground => sandbox_cli::protocol::KillMode::Foreground,
                    KillModeArg::All => sandbox_cli::protocol::KillMode::All,
                }
            };
            Ok(sandbox_cli::client::kill(root, id, pid, mode, signal)?)
        }),
        Command::Kill {
            all: _,
            pid,
            mode,
            id,
            signal,
        } => verb(&cli.globals.root, |root| {
            let mode = match mode {
                KillModeArg::Process => sandbox_cli::protocol::KillMode::Process,
                KillModeArg::Foreground => sandbox_cli::protocol::KillMode::Foreground,
                KillModeArg::All => sandbox_cli::protocol::KillMode::All,
            };
            sandbox_cli::client::kill(root, &id, pid, mode, signal)
        }),
        Command::Wait { pid, id } => verb(&cli.globals.root, |root| {
            sandbox_cli::client::wait(root, &id, pid)
        }),
        Command::Ps { json, id } => verb(&cli.globals.root, |root| {
            sandbox_cli::client::ps(root, &id, json)
        }),
        Command::List { json } => verb(&cli.globals.root, |root| {
            sandbox_cli::client::list(root, json)
        }),
        Command::Delete { force, ref id } if oci.log.is_some() || force => {
            oci_verb(&oci, |root| {
                // As runc's (and `rm -f`): `delete --force` of a sandbox that is gone
                // is no error (podman deletes after every failed create).
                let gone = root.dir(id).map(|d| !d.exists()).unwrap_or(false);
                if force && gone {
                    return Ok(0);
                }
                Ok(sandbox_cli::client::delete(root, id, force)?)
            })
        }
        Command::Delete { force, id } => verb(&cli.globals.root, |root| {
            sandbox_cli::client::delete(root, &id, force)
        }),
    };
    if let Err(e) = result {
        // `sandbox demo | head`: the reader went away; end quietly, as a process
        // killed by SIGPIPE would (128 + 13).
        let broken_pipe = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if broken_pipe {
            std::process::exit(128 + nix::sys::signal::Signal::SIGPIPE as i32);
        }
        say!("sandbox: {e:#}");
        std::process::exit(EXIT_SANDBOX_ERROR);
    }
}

/// Runs an OCI runtime verb and exits with its status; its error is printed and
/// appended to `--log` (see [`sandbox_cli::oci::log_error`]).
/// The global flags the OCI verbs use.
struct OciGlobals {
    root: Option<std::path::PathBuf>,
    log: Option<std::path::PathBuf>,
    json: bool,
    systemd_cgroup: bool,
}

fn oci_verb(
    cli: &OciGlobals,
    f: impl FnOnce(&sandbox_cli::state::StateRoot) -> Result<i32, sandbox_cli::oci::OciCliError>,
) -> Result<()> {
    let fail = |msg: String, code: i32| -> ! {
        say!("sandbox: {msg}");
        sandbox_cli::oci::log_error(cli.log.as_deref(), cli.json, &msg);
        std::process::exit(code)
    };
    if cli.systemd_cgroup {
        fail(
            "--systemd-cgroup is not supported (cgroupfs only)".into(),
            1,
        );
    }
    let root = match sandbox_cli::state::StateRoot::new(cli.root.clone()) {
        Ok(r) => r,
        Err(e) => fail(e.to_string(), 1),
    };
    match f(&root) {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(e.to_string(), e.exit_code()),
    }
}

/// `exec --process FILE` (OCI): the process JSON mapped onto an exec request; with
/// `--detach`, this command runs again without it as a child, whose PID goes to
/// `--pid-file` and whose exit status is the process's.
fn oci_exec(
    root: &sandbox_cli::state::StateRoot,
    args: ExecArgs,
    argv: Vec<std::ffi::OsString>,
) -> Result<i32, sandbox_cli::oci::OciCliError> {
    use sandbox_cli::protocol::{ExecRequest, ExecTty};
    let path = args.process.clone().unwrap_or_default();
    let p = sandbox_loader::oci::exec_process(&path)?;
    if args.detach {
        return sandbox_cli::oci::exec_detached(&argv, args.pid_file.as_deref());
    }
    let req = ExecRequest {
        argv: p.argv,
        env: p.env,
        cwd: Some(p.cwd.to_string_lossy().into_owned()),
        user: Some(p.user),
        tty: if p.terminal || args.console_socket.is_some() {
            ExecTty::Pty
        } else {
            ExecTty::Stdio
        },
        console_socket: args
            .console_socket
            .map(|p| p.to_string_lossy().into_owned()),
        winsize: p.console_size,
        capabilities: Some(p.capabilities.bits()),
    };
    Ok(sandbox_cli::client::exec(root, &args.id, req)?)
}

/// Runs a lifecycle verb and exits with its status (its error printed, with its exit
/// status).
fn verb(
    root: &Option<std::path::PathBuf>,
    f: impl FnOnce(&sandbox_cli::state::StateRoot) -> Result<i32, sandbox_cli::client::ClientError>,
) -> Result<()> {
    let root = sandbox_cli::state::StateRoot::new(root.clone())?;
    match f(&root) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            say!("sandbox: {e}");
            std::process::exit(e.exit_code());
        }
    }
}

/// The hidden `__supervise`: the supervisor process of `run -d`.
fn supervise(
    root: &Option<std::path::PathBuf>,
    id: &str,
    args: Vec<std::ffi::OsString>,
) -> Result<()> {
    use sandbox_cli::daemon::{self, Readiness};
    let fail = |message: String, exit_code: i32| -> ! {
        daemon::report(&Readiness::Failed { message, exit_code });
        std::process::exit(exit_code)
    };
    let root = match sandbox_cli::state::StateRoot::new(root.clone()) {
        Ok(r) => r,
        Err(e) => fail(e.to_string(), EXIT_SANDBOX_ERROR),
    };
    let mut detached = match daemon::prepare(&root, id) {
        Ok(d) => d,
        Err(e) => {
            if let Ok(dir) = root.dir(id) {
                daemon::remove_state_dir(&dir);
            }
            fail(e.to_string(), EXIT_SANDBOX_ERROR)
        }
    };
    let dir = detached.dir.clone();
    let parsed =
        Cli::try_parse_from(std::iter::once(std::ffi::OsString::from("sandbox")).chain(args));
    let code = match parsed.map(|c| c.command) {
        Ok(Command::Create(create_args)) => {
            match sandbox_cli::oci::supervise_create(&create_args, detached) {
                Ok(code) => code,
                Err(e) => {
                    daemon::remove_state_dir(&dir);
                    fail(e.to_string(), e.exit_code())
                }
            }
        }
        Ok(Command::Run(run_args)) => {
            detached.freezer = match run_args.freezer {
                FreezerArg::Auto => sandbox_cli::freezer::Preference::Auto,
                FreezerArg::V2 => sandbox_cli::freezer::Preference::V2,
            };
            match run(*run_args, Some(detached)) {
                Ok(code) => code,
                Err(e) => {
                    daemon::remove_state_dir(&dir);
                    fail(format!("{e:#}"), EXIT_SANDBOX_ERROR)
                }
            }
        }
        _ => {
            daemon::remove_state_dir(&dir);
            fail(
                "__supervise: expected a run or create command line".into(),
                EXIT_SANDBOX_ERROR,
            )
        }
    };
    std::process::exit(code)
}

/// `sandbox exec`.
fn exec(
    root: &sandbox_cli::state::StateRoot,
    args: ExecArgs,
) -> Result<i32, sandbox_cli::client::ClientError> {
    use sandbox_cli::client::ClientError;
    use sandbox_cli::protocol::{ExecRequest, ExecTty};
    let user = match &args.user {
        None => None,
        Some(u) => {
            let bad = || ClientError::Other(format!("bad --user {u:?}: expected UID[:GID]"));
            let (uid, gid) = match u.split_once(':') {
                Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
                None => {
                    let id: u32 = u.parse().map_err(|_| bad())?;
                    (id, id)
                }
            };
            Some((uid, gid))
        }
    };
    let tty = if args.pty || args.console_socket.is_some() {
        ExecTty::Pty
    } else {
        match args.tty {
            Some(TtyArg::Borrow) => ExecTty::Borrow,
            Some(TtyArg::Pty) => ExecTty::Pty,
            None => ExecTty::Stdio,
        }
    };
    let req = ExecRequest {
        argv: args.command,
        env: args.envs.into_iter().filter(|e| !e.is_empty()).collect(),
        cwd: args.cwd.map(|p| p.to_string_lossy().into_owned()),
        user,
        tty,
        console_socket: args
            .console_socket
            .map(|p| p.to_string_lossy().into_owned()),
        winsize: None,
        capabilities: None,
    };
    sandbox_cli::client::exec(root, &args.id, req)
}

/// Converts a model errno into an error naming the step.
fn step<T>(what: &str, r: SysResult<T>) -> Result<T> {
    r.map_err(|e| anyhow!("{what}: {e}"))
}

/// Signals an interactive shell ignores in itself.
const SHELL_IGNORED: [Signal; 4] = [
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGINT,
];

struct Demo {
    k: Kernel,
    tty: TtyId,
    shell: Pid,
    fd: i32,
    json: bool,
    out: std::io::Stdout,
}

impl Demo {
    fn say(&mut self, line: &str) -> Result<()> {
        if !self.json {
            writeln!(self.out, "{line}")?;
        }
        Ok(())
    }

    fn flush_events(&mut self) -> Result<()> {
        for e in self.k.take_events() {
            if self.json {
                writeln!(self.out, "{}", serde_json_line(&e))?;
            } else {
                writeln!(self.out, "    {}", describe(&e))?;
            }
        }
        Ok(())
    }

    /// What bash does to start a foreground job: fork, put the child in its own
    /// group (both sides call setpgid), give it the terminal, exec.
    fn start_job(&mut self, name: &str) -> Result<Pid> {
        let k = &mut self.k;
        let job = step("fork", k.fork(self.shell))?;
        step("setpgid (child)", k.setpgid(job, 0, 0))?;
        step("setpgid (shell)", k.setpgid(self.shell, job, job))?;
        step("tcsetpgrp", k.tcsetpgrp(self.shell, self.fd, job))?;
        // The child undoes the shell's SIG_IGNs, which fork and exec would keep.
        for sig in SHELL_IGNORED {
            step("sigaction", k.set_handler(job, sig, Handler::Default, 0))?;
        }
        step("execve", k.execve(job))?;
        self.say(&format!("$ {name}        # job [1] is process group {job}"))?;
        self.flush_events()?;
        Ok(job)
    }

    fn wait(&mut self) -> Result<Option<WaitInfo>> {
        let r = step(
            "wait4",
            self.k.wait4(self.shell, -1, WUNTRACED | WCONTINUED),
        )?;
        Ok(match r {
            Blocking::Ready(w) => w,
            Blocking::WouldBlock(_) => None,
        })
    }

    fn take_terminal_back(&mut self) -> Result<()> {
        step(
            "tcsetpgrp",
            self.k.tcsetpgrp(self.shell, self.fd, self.shell),
        )?;
        self.flush_events()
    }
}

fn demo(json: bool) -> Result<()> {
    let mut k = Kernel::new();
    let tty = k.create_pty();
    let shell = step("fork", k.fork(Kernel::INIT))?;
    step("setsid", k.setsid(shell))?;
    let fd = step("open", k.open_tty(shell, tty, OpenFlags::RDWR))?;
    // An interactive bash ignores the keyboard stop signals itself.
    for sig in SHELL_IGNORED {
        step("sigaction", k.set_handler(shell, sig, Handler::Ignore, 0))?;
    }
    k.take_events();
    let mut d = Demo {
        k,
        tty,
        shell,
        fd,
        json,
        out: std::io::stdout(),
    };
    d.say(&format!(
        "shell: PID {shell}, session {shell}, controlling terminal {}",
        d.k.tty(tty).map(|t| t.name.clone()).unwrap_or_default()
    ))?;

    let job = d.start_job("sleep 100")?;
    d.say("^Z typed at the terminal")?;
    step("typing ^Z", d.k.master_write(d.tty, b"\x1a"))?;
    d.flush_events()?;
    let w = d
        .wait()?
        .context("the shell's wait should report the stop")?;
    d.say(&format!(
        "wait4 → pid {} stopped by {}   [1]+  Stopped  sleep 100",
        w.pid,
        Signal::new(w.status).map(|s| s.name()).unwrap_or_default()
    ))?;
    d.take_terminal_back()?;

    d.say("$ bg        # SIGCONT to the group, terminal stays with the shell")?;
    step("kill", d.k.kill(d.shell, -job, Signal::SIGCONT.number()))?;
    d.flush_events()?;
    let w = d
        .wait()?
        .context("the shell's wait should report the continue")?;
    d.say(&format!("wait4 → pid {} continued", w.pid))?;

    d.say("$ fg        # terminal to the job, SIGCONT (already running)")?;
    step("tcsetpgrp", d.k.tcsetpgrp(d.shell, d.fd, job))?;
    step("kill", d.k.kill(d.shell, -job, Signal::SIGCONT.number()))?;
    d.flush_events()?;

    d.say("^C typed at the terminal")?;
    step("typing ^C", d.k.master_write(d.tty, b"\x03"))?;
    d.flush_events()?;
    let w = d
        .wait()?
        .context("the shell's wait should report the death")?;
    d.say(&format!(
        "wait4 → pid {} killed by {}; $? = {}",
        w.pid,
        Signal::new(w.status).map(|s| s.name()).unwrap_or_default(),
        128 + w.status
    ))?;
    d.take_terminal_back()?;
    let fg = step("tcgetpgrp", d.k.tcgetpgrp(d.shell, d.fd))?;
    d.say(&format!("terminal foreground group: {fg} (the shell)"))?;
    Ok(())
}

fn serde_json_line(e: &Event) -> String {
    serde_json::to_string(e).unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
}

fn describe(e: &Event) -> String {
    match e {
        Event::SignalGenerated {
            target,
            sig,
            code,
            queued,
        } => format!(
            "{sig} generated for {target:?} ({code:?}){}",
            if *queued { "" } else { ", discarded" }
        ),
        Event::SignalDelivered {
            tid,
            sig,
            disposition,
        } => format!("task {tid} takes {sig}: {disposition:?}"),
        Event::Stopped { pid, sig } => format!("process {pid} stopped ({sig})"),
        Event::Continued { pid } => format!("process {pid} continued"),
        Event::Exited { pid, status } => format!("process {pid} exited: {status:?}"),
        Event::Reaped { pid, by } => match by {
            Some(by) => format!("process {pid} reaped by {by}"),
            None => format!("process {pid} reaped automatically"),
        },
        Event::TtyHangup { tty } => format!("terminal {tty:?} hung up"),
        Event::ForegroundChanged { tty, pgrp } => {
            format!("terminal {tty:?} foreground group → {pgrp:?}")
        }
        Event::ControllingSessionChanged { tty, session } => {
            format!("terminal {tty:?} session → {session:?}")
        }
        Event::Wakeup { tid, on } => format!("task {tid} can retry {on:?}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn argv(line: &[&str]) -> Vec<std::ffi::OsString> {
        std::iter::once("sandbox")
            .chain(line.iter().copied())
            .map(Into::into)
            .collect()
    }

    /// The `run` parser gives what the whole parser gives, or leaves the line to it.
    #[test]
    fn the_run_parser_agrees_with_the_whole_parser() {
        let lines: &[&[&str]] = &[
            &["run", "--", "true"],
            &["run", "true"],
            &["--log-level", "debug", "run", "--", "sh", "-c", "exit 3"],
            &["run", "--log-level", "info", "--tty", "--", "bash"],
            &["-q", "run", "--tty=pty", "--read-only", "--", "cat"],
            &["--root", "run", "run", "-d", "--", "sleep", "1"],
            &["--log-format", "json", "--debug", "run", "--", "run"],
            &["run", "--seccomp-allow", "bpf", "--", "true", "--help"],
        ];
        for line in lines {
            let fast = Cli::parse_run(&argv(line)).expect("the run parser takes it");
            let whole = Cli::try_parse_from(argv(line)).unwrap();
            assert_eq!(fast.globals, whole.globals, "{line:?}");
            let (Command::Run(a), Command::Run(b)) = (&fast.command, &whole.command) else {
                panic!("{line:?} is not a run");
            };
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{line:?}");
        }
        // Help, version, errors and other subcommands are the whole parser's.
        let refused: &[&[&str]] = &[
            &["run", "--help"],
            &["--help", "run"],
            &["-V", "run"],
            &["run", "--no-such-option", "--", "true"],
            &["exec", "run", "--", "true"],
            &["run"],
            &["list"],
            &["--log-level", "loud", "run", "--", "true"],
        ];
        for line in refused {
            assert!(Cli::parse_run(&argv(line)).is_none(), "{line:?}");
        }
    }
}
