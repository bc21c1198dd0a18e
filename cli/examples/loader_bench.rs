//! What running a program under `sandbox run` costs: start-up, a write to the borrowed
//! terminal (every one a seccomp user notification with `--tty`), fork+exec, and the
//! throughput of `cat` of a large file to the terminal with each terminal mode (none,
//! `--tty`, `--tty=pty`).
//!
//! ```sh
//! cargo build --release -p sandbox-cli
//! cargo run --release -p sandbox-cli --example loader_bench            # ~1 minute
//! cargo run --release -p sandbox-cli --example loader_bench -- --quick # a few seconds
//! ```
//!
//! `--compare PATH` adds, in the same run, the start-up and notified-call rows of another
//! build of `sandbox` (e.g. an earlier commit's, built in a worktree), so that a change's
//! cost is a ratio measured side by side.
//!
//! The `sandbox` binary is taken from `--sandbox PATH`, else `$SANDBOX_BIN`, else next to
//! this example's directory (`target/<profile>/sandbox`). Every figure is a median (and
//! a minimum) over repetitions interleaved between the variants, and every ratio is
//! against a baseline measured in the same run. Per-operation costs are
//! `(T(n) - T(0)) / n`: the same command with n operations and with none, so start-up
//! cancels out.
//!
//! The terminal runs create a pseudo-terminal, start the command as the leader of a new
//! session whose controlling terminal is the pty slave (fds 0-2; as a terminal emulator
//! does) and drain the master on a thread, so that writes never block for long.
//!
//! `loader_bench --writer N` (used by the bench itself) makes N one-byte `write(1)`
//! calls and nothing else in between.
//!
//! `loader_bench --bare-sandbox[-overlay] PROG [ARGS...]` (the start-up table's floor
//! rows) runs PROG in the least a sandbox with `sandbox run`'s namespaces, root,
//! `/proc`, `/dev` and `/tmp` takes, in straight-line system calls: no seccomp, no
//! cgroups, no supervisor (`sys::bare_sandbox`).
//!
//! The `cat` file (100 MB of `x`, 4 MB with `--quick`: no newline, so that the
//! terminals' output processing changes nothing and every byte can be counted) is
//! written to a directory of its own under `$TMPDIR` (default `/tmp`), bound read-only
//! into the sandbox (whose `/tmp` is private), and removed at the end.

use anyhow::{anyhow, bail, Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest any one measured command may run before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the drain thread may take to see the terminal closed after the command
/// exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Sizes and repetition counts of one run.
struct Plan {
    quick: bool,
    startup_reps: usize,
    write_reps: usize,
    writes: u64,
    fork_reps: usize,
    forks: u64,
    cat_reps: usize,
    cat_bytes: u64,
    setpgid_reps: usize,
    setpgid_calls: u32,
    /// `--only a,b`: the sections to run (startup, writes, fork, setpgid, cat); all
    /// when empty.
    only: Vec<String>,
}

impl Plan {
    fn runs(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

impl Plan {
    fn full() -> Plan {
        Plan {
            quick: false,
            startup_reps: 21,
            write_reps: 9,
            writes: 100_000,
            fork_reps: 11,
            forks: 300,
            cat_reps: 9,
            cat_bytes: 100_000_000,
            setpgid_reps: 7,
            setpgid_calls: 20_000,
            only: Vec::new(),
        }
    }

    fn quick() -> Plan {
        Plan {
            quick: true,
            startup_reps: 3,
            write_reps: 3,
            writes: 20_000,
            fork_reps: 3,
            forks: 30,
            cat_reps: 3,
            cat_bytes: 4_000_000,
            setpgid_reps: 3,
            setpgid_calls: 2_000,
            only: Vec::new(),
        }
    }
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("loader_bench: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut plan = Plan::full();
    let mut sandbox: Option<PathBuf> = std::env::var_os("SANDBOX_BIN").map(PathBuf::from);
    let mut compare: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--writer" | "--writer-null" => {
                let n = args.next().context("--writer needs a count")?;
                let n: u64 = n.parse().with_context(|| format!("bad count {n:?}"))?;
                return writer(n, a == "--writer-null");
            }
            "--bare-null" | "--bare-null-fifo" | "--bare-null-nice" | "--bare-null-poll" => {
                let n = args.next().context("--bare-null needs a count")?;
                let n: u64 = n.parse().with_context(|| format!("bad count {n:?}"))?;
                let sched = match a.as_str() {
                    "--bare-null-fifo" => ListenerSched::Fifo,
                    "--bare-null-nice" => ListenerSched::Nice,
                    _ => ListenerSched::Normal,
                };
                return bare_notified_writer(n, sched, a == "--bare-null-poll");
            }
            "--bare-exec" => {
                let script = args.next().context("--bare-exec needs a script")?;
                return bare_notified_exec(&script);
            }
            "--bare-sandbox" | "--bare-sandbox-overlay" => {
                let argv = args
                    .by_ref()
                    .map(std::ffi::CString::new)
                    .collect::<Result<Vec<_>, _>>()
                    .context("a NUL in the command")?;
                if argv.is_empty() {
                    bail!("--bare-sandbox needs a program");
                }
                let root = if a == "--bare-sandbox-overlay" {
                    sys::BareRoot::Overlay
                } else {
                    sys::BareRoot::ReadOnly
                };
                let code = sys::bare_sandbox(&argv, root).context("bare sandbox")?;
                std::process::exit(code);
            }
            "--setpgid" => {
                let live = args.next().context("--setpgid needs LIVE and N")?;
                let n = args.next().context("--setpgid needs LIVE and N")?;
                let live: u32 = live
                    .parse()
                    .with_context(|| format!("bad count {live:?}"))?;
                let n: u32 = n.parse().with_context(|| format!("bad count {n:?}"))?;
                let per_call = sys::setpgid_loop(live, n).context("setpgid loop")?;
                println!("{per_call:e}");
                return Ok(());
            }
            "--quick" => {
                let only = std::mem::take(&mut plan.only);
                plan = Plan {
                    only,
                    ..Plan::quick()
                };
            }
            "--only" => {
                let list = args.next().context("--only needs a list of sections")?;
                plan.only = list.split(',').map(str::to_string).collect();
            }
            "--sandbox" => sandbox = Some(args.next().context("--sandbox needs a path")?.into()),
            "--compare" => compare = Some(args.next().context("--compare needs a path")?.into()),
            "-h" | "--help" => {
                println!(
                    "usage: loader_bench [--quick] [--only startup,writes,fork,setpgid,cat] \
                     [--sandbox PATH] [--compare PATH]\n\
                     (build the sandbox first: cargo build --release -p sandbox-cli)"
                );
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let sandbox = match sandbox {
        Some(p) => p,
        None => default_sandbox()?,
    };
    if !sandbox.is_file() {
        bail!(
            "no sandbox binary at {} (build it with `cargo build --release -p sandbox-cli`, \
             or pass --sandbox PATH / set SANDBOX_BIN)",
            sandbox.display()
        );
    }
    let me = std::env::current_exe().context("cannot find this program's path")?;
    if let Some(c) = compare.as_ref().filter(|c| !c.is_file()) {
        bail!("--compare: no sandbox binary at {}", c.display());
    }
    Bench::new(sandbox, compare, me, plan)?.run()
}

/// `target/<profile>/examples/loader_bench` → `target/<profile>/sandbox`.
fn default_sandbox() -> Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find this program's path")?;
    let profile_dir = me
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot locate the target directory from {}", me.display()))?;
    Ok(profile_dir.join("sandbox"))
}

/// N one-byte writes to standard output (or /dev/null), unbuffered: exactly N `write`
/// system calls.
fn writer(n: u64, to_null: bool) -> Result<()> {
    let mut out = if to_null {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .context("/dev/null")?
    } else {
        File::from(std::io::stdout().as_fd().try_clone_to_owned()?)
    };
    for _ in 0..n {
        if out.write(b"x")? != 1 {
            bail!("short write");
        }
    }
    Ok(())
}

/// How the bare listener's thread is scheduled.
#[derive(Clone, Copy, Debug)]
enum ListenerSched {
    /// SCHED_OTHER at nice 0.
    Normal,
    /// SCHED_FIFO, priority 1.
    Fifo,
    /// SCHED_OTHER at nice -20.
    Nice,
}

/// The floor of a notified call: a child whose `write(2)` calls are all notified
/// (nothing else is) makes N one-byte writes to /dev/null; this process answers each
/// with CONTINUE from a thread blocked in the receive ioctl (no poll, no lock, no
/// decision), with synchronous wake-up, optionally SCHED_FIFO or at nice -20.
fn bare_notified_writer(n: u64, sched: ListenerSched, poll_first: bool) -> Result<()> {
    bare_listener(sys::NotifiedJob::Writes(n), sched, poll_first)
}

/// The floor of `--tty`'s fork+exec row: `sh -c SCRIPT` with every `read(2)` of its
/// processes notified (as `--tty` notifies them: a filter cannot tell a terminal from
/// the libraries the dynamic loader reads) and answered by a bare SCHED_FIFO listener.
fn bare_notified_exec(script: &str) -> Result<()> {
    let argv = ["/bin/sh", "-c", script]
        .iter()
        .map(|a| std::ffi::CString::new(*a))
        .collect::<Result<Vec<_>, _>>()
        .context("a NUL in the script")?;
    bare_listener(sys::NotifiedJob::Exec(argv), ListenerSched::Fifo, false)
}

fn bare_listener(job: sys::NotifiedJob, sched: ListenerSched, poll_first: bool) -> Result<()> {
    use sandbox_loader::seccomp::{Listener, Response, SeccompError};
    let (child, fd) = sys::fork_notified(job).context("notified child")?;
    let listener = Listener::from_fd(fd);
    listener.set_sync_wakeup().context("sync wake-up")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let scheduled = match sched {
            ListenerSched::Normal => true,
            ListenerSched::Fifo => sys::make_realtime(),
            ListenerSched::Nice => sys::make_favoured(),
        };
        let _ = tx.send(scheduled);
        loop {
            if poll_first {
                let mut fds = [nix::poll::PollFd::new(
                    listener.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                if nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE).is_err() {
                    return;
                }
            }
            match listener.recv() {
                Ok(note) => {
                    let _ = listener.respond(note.id, Response::Continue);
                }
                Err(SeccompError::NotificationWithdrawn) => continue,
                Err(_) => return,
            }
        }
    });
    if !rx.recv().unwrap_or(false) {
        bail!("cannot set the listener thread's scheduling ({sched:?})");
    }
    sys::start_and_wait(child).context("notified child")?;
    // The listener thread stays blocked in its receive: the process ends with it.
    std::process::exit(0)
}

mod sys {
    //! The bench's unsafe operations: making the child a session leader whose
    //! controlling terminal is its standard input, reading the CPU time of the
    //! children waited for, the bare listeners' children and the bare sandbox.
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::time::Duration;

    /// User + system CPU time of every child of this process that has terminated and
    /// been waited for, and of their own waited-for descendants (`getrusage(2)`,
    /// `RUSAGE_CHILDREN`: a process's times are added to its parent's children times
    /// when the parent reaps it).
    pub fn children_cpu_time() -> std::io::Result<Duration> {
        let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes one `struct rusage` to the pointer, which points to
        // a properly sized and aligned buffer that lives across the call.
        let r = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, ru.as_mut_ptr()) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: getrusage succeeded, so it filled the structure (which was zeroed,
        // a valid value of this plain C struct, anyway).
        let ru = unsafe { ru.assume_init() };
        let tv = |t: libc::timeval| {
            Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
                + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
        };
        Ok(tv(ru.ru_utime) + tv(ru.ru_stime))
    }

    /// `--setpgid LIVE N`: forks LIVE children, each of which makes one notified call
    /// (joins its own process group: setpgid(0, getpgid(0))) so that a sandbox knows
    /// it, and then blocks on a pipe; then times N `setpgid(0, 0)` calls of this
    /// process and returns the mean seconds per call. The children end at the pipe's
    /// end-of-file and are waited for.
    pub fn setpgid_loop(live: u32, n: u32) -> std::io::Result<f64> {
        let err = std::io::Error::last_os_error;
        let mut hold = [0i32; 2];
        let mut ready = [0i32; 2];
        // SAFETY: pipe2 writes two descriptors into each live two-element array.
        if unsafe { libc::pipe2(hold.as_mut_ptr(), libc::O_CLOEXEC) } < 0
            || unsafe { libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC) } < 0
        {
            return Err(err());
        }
        let mut forked = 0;
        let mut failure = None;
        for _ in 0..live {
            // SAFETY: this mode runs single-threaded (nothing else was started); the
            // child only makes async-signal-safe system calls and _exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: plain system calls on descriptors and a stack byte.
                unsafe {
                    libc::close(hold[1]);
                    libc::setpgid(0, libc::getpgid(0));
                    let b = 1u8;
                    libc::write(ready[1], (&b as *const u8).cast(), 1);
                    let mut b = 0u8;
                    libc::read(hold[0], (&mut b as *mut u8).cast(), 1);
                    libc::_exit(0);
                }
            }
            if pid < 0 {
                failure = Some(err());
                break;
            }
            forked += 1;
        }
        // SAFETY: closing our copy of the write end: the reads below see EOF once
        // every child has written (or died).
        unsafe { libc::close(ready[1]) };
        let mut got = 0;
        while got < forked {
            let mut buf = [0u8; 256];
            // SAFETY: reads into a live local buffer of the given size.
            let r = unsafe { libc::read(ready[0], buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                break;
            }
            got += r as u32;
        }
        let start = std::time::Instant::now();
        let mut bad = 0;
        for _ in 0..n {
            // SAFETY: no pointers.
            if unsafe { libc::setpgid(0, 0) } != 0 {
                bad += 1;
            }
        }
        let elapsed = start.elapsed();
        // SAFETY: closing the last write end releases the children; then wait for
        // them all (waitpid with a null status pointer).
        unsafe {
            libc::close(hold[1]);
            while libc::waitpid(-1, std::ptr::null_mut(), 0) > 0 {}
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if bad > 0 || got < forked {
            return Err(std::io::Error::other(format!(
                "{bad} setpgid calls failed, {got} of {forked} children ready"
            )));
        }
        Ok(elapsed.as_secs_f64() / f64::from(n.max(1)))
    }

    /// The root of [`bare_sandbox`].
    #[derive(Clone, Copy)]
    pub enum BareRoot {
        /// A recursive bind of the host's `/`, its top mount read-only (bwrap's
        /// `--ro-bind / /`; `sandbox run --read-only`).
        ReadOnly,
        /// An overlay: the host root's filesystem (a bind of `/`) below, a tmpfs above
        /// (`sandbox run`'s default root, without the filesystems mounted below `/`).
        Overlay,
    }

    /// The floor of `sandbox run -- PROG`'s start-up: the least a process must do to
    /// run `argv` (PROG, its path, first) in the sandbox's namespaces (PID, mount, UTS,
    /// IPC, network) with a root of its own and the sandbox's `/proc`, `/dev` and
    /// `/tmp`, in straight-line system calls with nothing to decide: `unshare`, then a child (PID 1) that
    /// makes its mounts private, builds the root on a staging tmpfs, `pivot_root`s
    /// into it, detaches the old root, mounts proc, a `/dev` tmpfs with six device
    /// nodes and a `/tmp` tmpfs, forks PROG and waits for it. Left out: seccomp,
    /// cgroups, the masked and read-only `/proc` paths, devpts, the supervisor.
    /// Returns PROG's exit code (128 + signal), or the step that failed (100 and up).
    pub fn bare_sandbox(argv: &[std::ffi::CString], root: BareRoot) -> std::io::Result<i32> {
        let flags = libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWPID;
        // SAFETY: no pointers.
        if unsafe { libc::unshare(flags) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let ptrs = null_terminated(argv);
        let env: Vec<std::ffi::CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.into_encoded_bytes();
                kv.push(b'=');
                kv.extend(v.into_encoded_bytes());
                std::ffi::CString::new(kv).ok()
            })
            .collect();
        let envp = null_terminated(&env);
        // SAFETY: this mode runs single-threaded; the child makes only system calls on
        // static strings, `argv` and `env` (and `ptrs`, `envp` into them), which live
        // across the fork, and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: see above.
            unsafe { libc::_exit(bare_init(&ptrs, &envp, root)) }
        }
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        wait_code(pid)
    }

    /// The pointers of `strings`, null-terminated: an `argv` or `envp` for exec, valid
    /// while `strings` lives.
    fn null_terminated(strings: &[std::ffi::CString]) -> Vec<*const libc::c_char> {
        strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    }

    /// `waitpid` for `pid`: its exit code, or 128 + the signal that killed it.
    fn wait_code(pid: i32) -> std::io::Result<i32> {
        let mut status = 0;
        // SAFETY: waits for our own child; status points to a live local.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            return Err(std::io::Error::last_os_error());
        }
        Ok(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        })
    }

    /// PID 1 of [`bare_sandbox`]: 0 and up is PROG's code; 100 + the step that failed.
    /// `argv` and `envp` are null-terminated, their strings NUL-terminated. PROG is
    /// opened (`O_PATH`) before the root changes and run from that descriptor
    /// (`fexecve`), so that it runs wherever it is on the host (under the host's `/tmp`,
    /// which the sandbox covers, too).
    fn bare_init(
        argv: &[*const libc::c_char],
        envp: &[*const libc::c_char],
        root: BareRoot,
    ) -> i32 {
        use std::ffi::CStr;
        // SAFETY: argv[0] is a NUL-terminated string that lives across the call.
        let prog = unsafe { libc::open(argv[0], libc::O_PATH) };
        if prog < 0 {
            return 100;
        }
        let none: *const libc::c_char = std::ptr::null();
        let mount = |src: &CStr,
                     dst: &CStr,
                     fstype: Option<&CStr>,
                     flags: libc::c_ulong,
                     data: Option<&CStr>| {
            // SAFETY: every pointer is a NUL-terminated string that lives across the
            // call, or null where mount(2) allows it.
            unsafe {
                libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    fstype.map_or(none, CStr::as_ptr),
                    flags,
                    data.map_or(std::ptr::null(), |d| d.as_ptr().cast()),
                ) == 0
            }
        };
        let mkdir = |path: &CStr| {
            // SAFETY: a NUL-terminated string that lives across the call.
            unsafe { libc::mkdir(path.as_ptr(), 0o755) == 0 }
        };
        let nosuid_nodev = libc::MS_NOSUID | libc::MS_NODEV;
        if !mount(c"none", c"/", None, libc::MS_REC | libc::MS_PRIVATE, None) {
            return 101;
        }
        if !mount(c"tmpfs", c"/tmp", Some(c"tmpfs"), nosuid_nodev, None) {
            return 102;
        }
        let new_root = match root {
            BareRoot::ReadOnly => {
                if !mkdir(c"/tmp/root") {
                    return 103;
                }
                if !mount(c"/", c"/tmp/root", None, libc::MS_BIND | libc::MS_REC, None) {
                    return 104;
                }
                let ro = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
                if !mount(c"none", c"/tmp/root", None, ro, None) {
                    return 105;
                }
                c"/tmp/root"
            }
            BareRoot::Overlay => {
                for dir in [c"/tmp/lower", c"/tmp/upper", c"/tmp/work", c"/tmp/merged"] {
                    if !mkdir(dir) {
                        return 103;
                    }
                }
                if !mount(c"/", c"/tmp/lower", None, libc::MS_BIND, None) {
                    return 104;
                }
                let options = c"lowerdir=/tmp/lower,upperdir=/tmp/upper,workdir=/tmp/work";
                if !mount(
                    c"overlay",
                    c"/tmp/merged",
                    Some(c"overlay"),
                    0,
                    Some(options),
                ) {
                    return 105;
                }
                c"/tmp/merged"
            }
        };
        // SAFETY: NUL-terminated strings that live across the calls.
        unsafe {
            if libc::chdir(new_root.as_ptr()) != 0 {
                return 106;
            }
            if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0 {
                return 107;
            }
            if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0 {
                return 108;
            }
            if libc::chdir(c"/".as_ptr()) != 0 {
                return 109;
            }
        }
        let noexec = nosuid_nodev | libc::MS_NOEXEC;
        if !mount(c"proc", c"/proc", Some(c"proc"), noexec, None) {
            return 110;
        }
        if !mount(
            c"tmpfs",
            c"/dev",
            Some(c"tmpfs"),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            None,
        ) {
            return 111;
        }
        // SAFETY: no pointers.
        unsafe { libc::umask(0) };
        let nodes: [(&CStr, u32, u32); 6] = [
            (c"/dev/null", 1, 3),
            (c"/dev/zero", 1, 5),
            (c"/dev/full", 1, 7),
            (c"/dev/random", 1, 8),
            (c"/dev/urandom", 1, 9),
            (c"/dev/tty", 5, 0),
        ];
        for (path, major, minor) in nodes {
            let mode = libc::S_IFCHR | 0o666;
            // SAFETY: a NUL-terminated string that lives across the call.
            if unsafe { libc::mknod(path.as_ptr(), mode, libc::makedev(major, minor)) } != 0 {
                return 112;
            }
        }
        if !mount(c"tmpfs", c"/tmp", Some(c"tmpfs"), nosuid_nodev, None) {
            return 113;
        }
        // SAFETY: PID 1 is single-threaded; the child only execs or _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: `argv` and `envp` are null-terminated arrays of NUL-terminated
            // strings that live across the call; `prog` is an open descriptor.
            unsafe {
                libc::fexecve(prog, argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
        }
        if pid < 0 {
            return 114;
        }
        wait_code(pid).unwrap_or(115)
    }

    /// What the child of [`fork_notified`] does once its listener is in place.
    pub enum NotifiedJob {
        /// N one-byte `write(2)`s to /dev/null (the only calls notified), then exit.
        Writes(u64),
        /// `execv` of the given program and arguments, its `read(2)` calls (and those
        /// of every process it starts) notified.
        Exec(Vec<std::ffi::CString>),
    }

    /// Forks a child that installs a seccomp filter notifying one system call (and
    /// nothing else: `write` for [`NotifiedJob::Writes`], `read` for
    /// [`NotifiedJob::Exec`]), sends the listener back, waits for a go byte, then does
    /// its job. Returns its PID and the listener.
    pub fn fork_notified(job: NotifiedJob) -> std::io::Result<(i32, std::os::fd::OwnedFd)> {
        use std::os::fd::{AsFd, FromRawFd, OwnedFd};
        let notified = match job {
            NotifiedJob::Writes(_) => libc::SYS_write,
            NotifiedJob::Exec(_) => libc::SYS_read,
        };
        let argv = match &job {
            NotifiedJob::Exec(args) => null_terminated(args),
            NotifiedJob::Writes(_) => Vec::new(),
        };
        let mut sv = [0i32; 2];
        // SAFETY: socketpair writes two descriptors into the live array.
        if unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr(),
            )
        } < 0
        {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: socketpair returned two new descriptors that we own.
        let (mine, theirs) = unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
        const RET_NOTIFY: u32 = 0x7fc0_0000; // SECCOMP_RET_USER_NOTIF
        const RET_ALLOW: u32 = 0x7fff_0000;
        let prog = [
            // A = seccomp_data.nr
            libc::sock_filter {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 0,
            },
            libc::sock_filter {
                code: 0x15,
                jt: 0,
                jf: 1,
                k: notified as u32,
            },
            libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: RET_NOTIFY,
            },
            libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: RET_ALLOW,
            },
        ];
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr().cast_mut(),
        };
        // SAFETY: the child makes only async-signal-safe system calls (prctl, seccomp,
        // sendmsg through send_listener, read, write, execv) and _exits; `prog`,
        // `fprog`, `argv` (and the strings it points into) and the descriptors live
        // across the fork.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            use std::os::fd::AsRawFd;
            // SAFETY: see above.
            unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(2);
                }
                let fd = libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                    &fprog as *const libc::sock_fprog,
                );
                if fd < 0 {
                    libc::_exit(3);
                }
                let listener = std::os::fd::BorrowedFd::borrow_raw(fd as i32);
                if sandbox_loader::seccomp::send_listener(theirs.as_fd(), listener).is_err() {
                    libc::_exit(4);
                }
                let mut go = 0u8;
                if libc::read(theirs.as_raw_fd(), (&mut go as *mut u8).cast(), 1) != 1 {
                    libc::_exit(5);
                }
                match &job {
                    NotifiedJob::Writes(n) => {
                        let b = b'x';
                        for _ in 0..*n {
                            if libc::write(null.as_raw_fd(), (&b as *const u8).cast(), 1) != 1 {
                                libc::_exit(6);
                            }
                        }
                        libc::_exit(0);
                    }
                    NotifiedJob::Exec(_) => {
                        libc::execv(argv[0], argv.as_ptr());
                        libc::_exit(7);
                    }
                }
            }
        }
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        drop(theirs);
        let listener = sandbox_loader::seccomp::recv_listener(mine.as_fd())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        GO.with(|g| *g.borrow_mut() = Some(mine));
        Ok((pid, listener.into_fd()))
    }

    thread_local! {
        static GO: std::cell::RefCell<Option<std::os::fd::OwnedFd>> = const { std::cell::RefCell::new(None) };
    }

    /// Lets the child of [`fork_notified_writer`] start and waits for it to succeed.
    pub fn start_and_wait(pid: i32) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let sock = GO.with(|g| g.borrow_mut().take());
        let Some(sock) = sock else {
            return Err(std::io::Error::other("no child to start"));
        };
        let go = 1u8;
        // SAFETY: writes one byte from a live local.
        if unsafe { libc::write(sock.as_raw_fd(), (&go as *const u8).cast(), 1) } != 1 {
            return Err(std::io::Error::last_os_error());
        }
        match wait_code(pid)? {
            0 => Ok(()),
            code => Err(std::io::Error::other(format!(
                "notified child ended with code {code} (128 + N: signal N)"
            ))),
        }
    }

    /// Makes the calling thread SCHED_FIFO (priority 1), as the loader's notification
    /// thread is.
    pub fn make_realtime() -> bool {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
    }

    /// Makes the calling thread nice -20 (SCHED_OTHER with the largest weight), the
    /// alternative to SCHED_FIFO measured for the loader's notification thread.
    pub fn make_favoured() -> bool {
        // SAFETY: gettid has no arguments and cannot fail.
        let tid = unsafe { libc::gettid() };
        // SAFETY: setpriority on the calling thread's id, with a valid nice value.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, -20) == 0 }
    }

    /// In the child, between fork and exec: `setsid()` (a new session, no controlling
    /// terminal), then `ioctl(0, TIOCSCTTY, 0)`: a session leader without a controlling
    /// terminal acquires the terminal it names, whose foreground process group becomes
    /// the leader's group.
    pub fn become_terminal_session_leader(cmd: &mut Command) {
        // SAFETY: the closure runs in the forked child before exec; it only makes two
        // async-signal-safe system calls (setsid, ioctl) and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// Kills a measured command that runs for longer than [`RUN_TIMEOUT`], from a thread
/// that lives as long as the bench (so that arming it costs no thread creation inside
/// a timed interval).
struct Watchdog {
    tx: mpsc::Sender<Option<(i32, Instant)>>,
}

impl Watchdog {
    fn new() -> Watchdog {
        let (tx, rx) = mpsc::channel::<Option<(i32, Instant)>>();
        std::thread::spawn(move || {
            let mut armed: Option<(i32, Instant)> = None;
            loop {
                let msg = match armed {
                    None => match rx.recv() {
                        Ok(m) => m,
                        Err(_) => return,
                    },
                    Some((pid, deadline)) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(m) => m,
                            Err(mpsc::RecvTimeoutError::Timeout) => {
                                eprintln!("loader_bench: pid {pid} ran too long: killing it");
                                let _ = nix::sys::signal::kill(
                                    nix::unistd::Pid::from_raw(pid),
                                    nix::sys::signal::Signal::SIGKILL,
                                );
                                None
                            }
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                };
                armed = msg;
            }
        });
        Watchdog { tx }
    }

    fn arm(&self, pid: u32) {
        let pid = i32::try_from(pid).unwrap_or(i32::MAX);
        let _ = self.tx.send(Some((pid, Instant::now() + RUN_TIMEOUT)));
    }

    fn disarm(&self) {
        let _ = self.tx.send(None);
    }
}

/// What a pty's master received while a command ran.
struct Drained {
    /// Number of `x` bytes (what the writer writes).
    xs: u64,
    /// Start of anything else (error messages).
    other: Vec<u8>,
}

/// The terminal mode of a `sandbox run`.
#[derive(Clone, Copy, PartialEq)]
enum Term {
    /// No `--tty`: standard I/O passed through.
    None,
    /// `--tty`: the invoking terminal is borrowed; every read and write notified.
    Borrow,
    /// `--tty=pty`: a pty of the sandbox's own, proxied by the loader.
    Pty,
}

/// How a command is started.
#[derive(Clone, Copy, PartialEq)]
enum Stdio3 {
    /// stdin, stdout and stderr /dev/null.
    Null,
    /// A fresh pty, controlling terminal of the command's new session.
    Pty,
}

struct Bench {
    sandbox: PathBuf,
    /// `--compare PATH`: another build of `sandbox` (e.g. an earlier commit's), whose
    /// start-up and notified-call rows are measured in the same run.
    compare: Option<PathBuf>,
    me: PathBuf,
    plan: Plan,
    watchdog: Watchdog,
}

/// A variant of a per-operation measurement: its name and its command for a count.
type Variant<'a> = (&'static str, Box<dyn Fn(u64) -> Vec<String> + 'a>);

/// One row of a table: a name and the measured values (seconds, or per-operation
/// seconds).
struct Row {
    name: String,
    median: f64,
    min: f64,
}

impl Bench {
    fn new(sandbox: PathBuf, compare: Option<PathBuf>, me: PathBuf, plan: Plan) -> Result<Bench> {
        Ok(Bench {
            sandbox,
            compare,
            me,
            plan,
            watchdog: Watchdog::new(),
        })
    }

    /// Runs `argv` to completion and returns its wall time (from just before the
    /// spawn to the return of `wait`). A failing command is an error.
    fn time(&self, argv: &[String], stdio: Stdio3) -> Result<(Duration, Option<Drained>)> {
        self.time_env(argv, stdio, &[])
    }

    /// [`Bench::time`] with extra environment variables.
    fn time_env(
        &self,
        argv: &[String],
        stdio: Stdio3,
        env: &[(&str, &Path)],
    ) -> Result<(Duration, Option<Drained>)> {
        let (prog, rest) = argv.split_first().context("empty command")?;
        let mut cmd = Command::new(prog);
        cmd.args(rest);
        cmd.envs(env.iter().copied());
        let mut drain = None;
        match stdio {
            Stdio3::Null => {
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
            }
            Stdio3::Pty => {
                let ws = nix::pty::Winsize {
                    ws_row: 24,
                    ws_col: 80,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                let pty = nix::pty::openpty(Some(&ws), None).context("openpty")?;
                // openpty's descriptors are inherited across exec: only the three
                // standard ones may reach the command (a leaked master would hide the
                // end of the terminal from the drain thread... and the program).
                close_on_exec(&pty.master)?;
                close_on_exec(&pty.slave)?;
                let slave: OwnedFd = pty.slave;
                cmd.stdin(Stdio::from(slave.try_clone()?))
                    .stdout(Stdio::from(slave.try_clone()?))
                    .stderr(Stdio::from(slave));
                sys::become_terminal_session_leader(&mut cmd);
                drain = Some(spawn_drain(pty.master));
            }
        }
        let start = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {prog}"))?;
        self.watchdog.arm(child.id());
        let status = child.wait();
        let elapsed = start.elapsed();
        self.watchdog.disarm();
        // The parent's copies of the slave are in `cmd`: close them so that the master
        // sees the end once the command's processes are gone.
        drop(cmd);
        let status = status.with_context(|| format!("waiting for {prog}"))?;
        let drained = match drain {
            Some(rx) => Some(
                rx.recv_timeout(DRAIN_TIMEOUT)
                    .map_err(|_| anyhow!("the terminal stayed open after {prog} exited"))?
                    .context("reading the pty master")?,
            ),
            None => None,
        };
        if !status.success() {
            let said = drained
                .as_ref()
                .map(|d| String::from_utf8_lossy(&d.other).into_owned())
                .unwrap_or_default();
            bail!("`{}` failed: {status} {said}", argv.join(" "));
        }
        Ok((elapsed, drained))
    }

    /// `sandbox run [--tty] -- PROGRAM...`.
    fn sandbox_argv(&self, tty: bool, program: &[&str]) -> Vec<String> {
        let term = if tty { Term::Borrow } else { Term::None };
        self.sandbox_argv_with(term, &[], program)
    }

    /// `sandbox run` with terminal mode `term`, `ro_binds` (and this program's
    /// directory) bound read-only, and `program`.
    fn sandbox_argv_with(&self, term: Term, ro_binds: &[&Path], program: &[&str]) -> Vec<String> {
        self.argv_of(&self.sandbox, term, ro_binds, program)
    }

    /// [`Bench::sandbox_argv_with`] for the binary `bin`.
    fn argv_of(&self, bin: &Path, term: Term, ro_binds: &[&Path], program: &[&str]) -> Vec<String> {
        let mut v = vec![bin.display().to_string(), "run".into()];
        match term {
            Term::None => {}
            Term::Borrow => v.push("--tty".into()),
            Term::Pty => v.push("--tty=pty".into()),
        }
        // The sandbox has a private /tmp: when this program lives there (a checkout
        // under /tmp), bind its directory in so that the sandbox can run it.
        for dir in self.me.parent().into_iter().chain(ro_binds.iter().copied()) {
            v.push("--ro-bind".into());
            v.push(dir.display().to_string());
        }
        v.push("--".into());
        v.extend(program.iter().map(|s| s.to_string()));
        v
    }

    fn run(&self) -> Result<()> {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into());
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!(
            "loader_bench{}: sandbox {}; Linux {kernel}, {cpus} CPUs",
            if self.plan.quick { " --quick" } else { "" },
            self.sandbox.display()
        );
        println!(
            "figures: median and minimum over the runs; ratio = median / the baseline's median"
        );
        let t0 = Instant::now();
        let load_before = loadavg();
        if self.plan.runs("startup") {
            self.startup()?;
        }
        if self.plan.runs("writes") {
            self.terminal_writes()?;
        }
        if self.plan.runs("fork") {
            self.fork_exec()?;
        }
        if self.plan.runs("setpgid") {
            self.setpgid_by_live()?;
        }
        if self.plan.runs("cat") {
            let data = CatFile::create(self.plan.cat_bytes)?;
            self.cat_throughput(&data)?;
            self.loader_report(&data)?;
        }
        println!(
            "bench time {:.1} s; load average (1 min) {} before, {} after",
            t0.elapsed().as_secs_f64(),
            load_before,
            loadavg()
        );
        Ok(())
    }

    /// 1. Wall time of `sandbox run -- true` and friends.
    fn startup(&self) -> Result<()> {
        let reps = self.plan.startup_reps;
        let mut variants: Vec<(String, Vec<String>, Stdio3)> = vec![
            ("true".into(), vec!["true".into()], Stdio3::Null),
            (
                "unshare --pid --fork true (baseline)".into(),
                ["unshare", "--pid", "--fork", "true"]
                    .map(String::from)
                    .to_vec(),
                Stdio3::Null,
            ),
            (
                "unshare -pfmiun --mount-proc true".into(),
                ["unshare", "-pfmiun", "--mount-proc", "true"]
                    .map(String::from)
                    .to_vec(),
                Stdio3::Null,
            ),
            (
                "bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev --tmpfs /tmp true"
                    .into(),
                [
                    "bwrap",
                    "--unshare-all",
                    "--ro-bind",
                    "/",
                    "/",
                    "--proc",
                    "/proc",
                    "--dev",
                    "/dev",
                    "--tmpfs",
                    "/tmp",
                    "true",
                ]
                .map(String::from)
                .to_vec(),
                Stdio3::Null,
            ),
            (
                "floor: the same namespaces, read-only root, /proc /dev /tmp".into(),
                self.bare_sandbox_argv("--bare-sandbox", &["/bin/true"]),
                Stdio3::Null,
            ),
            (
                "floor: the same, overlay root".into(),
                self.bare_sandbox_argv("--bare-sandbox-overlay", &["/bin/true"]),
                Stdio3::Null,
            ),
            (
                "sandbox run -- true".into(),
                self.sandbox_argv(false, &["true"]),
                Stdio3::Null,
            ),
            (
                "sandbox run --tty -- true (on a pty)".into(),
                self.sandbox_argv(true, &["true"]),
                Stdio3::Pty,
            ),
        ];
        variants.push((
            "sandbox run --read-only -- true".into(),
            {
                let mut v = self.sandbox_argv(false, &["true"]);
                v.insert(2, "--read-only".into());
                v
            },
            Stdio3::Null,
        ));
        // bwrap is a peer, not a requirement: without it (not installed) its row goes.
        let has_bwrap = Command::new("bwrap")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has_bwrap {
            println!("(no bwrap on PATH: its start-up row is left out)");
            variants.retain(|(name, _, _)| !name.starts_with("bwrap"));
        }
        if let Some(c) = &self.compare {
            variants.push((
                "--compare: sandbox run -- true".into(),
                self.argv_of(c, Term::None, &[], &["true"]),
                Stdio3::Null,
            ));
            variants.push((
                "--compare: sandbox run --tty -- true (on a pty)".into(),
                self.argv_of(c, Term::Borrow, &[], &["true"]),
                Stdio3::Pty,
            ));
        }
        let mut samples = vec![Vec::new(); variants.len()];
        // One untimed round first: page cache, binaries' pages.
        for (_, argv, stdio) in &variants {
            self.time(argv, *stdio)?;
        }
        for _ in 0..reps {
            for (i, (_, argv, stdio)) in variants.iter().enumerate() {
                samples[i].push(self.time(argv, *stdio)?.0.as_secs_f64());
            }
        }
        let rows = variants
            .iter()
            .zip(&samples)
            .map(|((name, _, _), s)| Row {
                name: name.clone(),
                median: median(s),
                min: min(s),
            })
            .collect::<Vec<_>>();
        println!();
        println!("1. start-up: wall time of the whole command, {reps} runs each");
        print_table(&rows, 1, "ms", 1e3);
        self.startup_phases()
    }

    /// This bench's own minimal sandbox (`mode`: `--bare-sandbox` or
    /// `--bare-sandbox-overlay`, see [`sys::bare_sandbox`]) running `cmd`.
    fn bare_sandbox_argv(&self, mode: &str, cmd: &[&str]) -> Vec<String> {
        let mut v = vec![self.me.display().to_string(), mode.to_string()];
        v.extend(cmd.iter().map(|a| a.to_string()));
        v
    }

    /// 1b. Where `sandbox run -- true`'s time goes: the loader's phase lines
    /// (`--log-level debug`: microseconds since `Sandbox::start`), medians.
    fn startup_phases(&self) -> Result<()> {
        let reps = self.plan.startup_reps;
        let log = std::env::temp_dir().join(format!("loader_bench.{}.phases", std::process::id()));
        let mut argv = vec![
            self.sandbox.display().to_string(),
            "--log-level".into(),
            "debug".into(),
        ];
        argv.extend(self.sandbox_argv(false, &["true"]).into_iter().skip(1));
        let mut phases: Vec<(String, Vec<f64>)> = Vec::new();
        let mut walls = Vec::new();
        for _ in 0..reps {
            let _ = std::fs::remove_file(&log);
            let (wall, _) = self.time_env(&argv, Stdio3::Null, &[("SANDBOX_LOG_FILE", &log)])?;
            walls.push(wall.as_secs_f64() * 1e3);
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            for line in text.lines().filter(|l| l.contains("sandbox phase")) {
                let name = line
                    .split("phase=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next());
                let us = line
                    .split(" us=")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|v| v.parse::<f64>().ok());
                if let (Some(name), Some(us)) = (name, us) {
                    match phases.iter_mut().find(|(n, _)| n == name) {
                        Some((_, v)) => v.push(us / 1e3),
                        None => phases.push((name.to_string(), vec![us / 1e3])),
                    }
                }
            }
        }
        let _ = std::fs::remove_file(&log);
        println!();
        println!(
            "1b. sandbox run -- true by phase (--log-level debug; ms since Sandbox::start), \
             {reps} runs, medians"
        );
        let mut last = 0.0;
        for (name, v) in &phases {
            let at = median(v);
            println!("   {name:<52} at {at:>7.2} ms  (+{:.2})", at - last);
            last = at;
        }
        let wall = median(&walls);
        println!(
            "   {:<52} at {wall:>7.2} ms  (+{:.2}: process start before, exit after)",
            "whole command (wall)",
            wall - last
        );
        Ok(())
    }

    /// 2. One-byte writes to the terminal.
    fn terminal_writes(&self) -> Result<()> {
        let n = self.plan.writes;
        let reps = self.plan.write_reps;
        let me = self.me.display().to_string();
        // `--writer N`: to standard output (the pty); `--writer-null N`: to /dev/null.
        let writer = |mode: &str, count: u64| vec![me.clone(), mode.into(), count.to_string()];
        let sandboxed = |tty: bool, mode: &str, count: u64| {
            let mut v = self.sandbox_argv(tty, &[]);
            v.extend(writer(mode, count));
            v
        };
        let to_pty: Vec<Variant> = vec![
            ("direct (baseline)", Box::new(|c| writer("--writer", c))),
            (
                "sandbox run -- (writes not notified)",
                Box::new(|c| sandboxed(false, "--writer", c)),
            ),
            (
                "sandbox run --tty -- (every write notified)",
                Box::new(|c| sandboxed(true, "--writer", c)),
            ),
        ];
        let rows = self.per_op(&to_pty, n, reps, Stdio3::Pty, |count, d| {
            expect_xs(d, count)
        })?;
        println!();
        println!(
            "2. terminal writes: {n} one-byte write(1) calls to a pty (nothing else in the \
             loop), {reps} runs each; cost = (T({n}) - T(0)) / {n}"
        );
        print_table(&rows, 0, "µs/write", 1e6);

        // The same with /dev/null as the file: what the notification itself costs,
        // without the terminal and the thread draining it.
        let mut to_null: Vec<Variant> = vec![
            (
                "direct (baseline)",
                Box::new(|c| writer("--writer-null", c)),
            ),
            (
                "sandbox run --tty -- (every write notified)",
                Box::new(|c| sandboxed(true, "--writer-null", c)),
            ),
            (
                "bare listener answering CONTINUE (floor)",
                Box::new(|c| writer("--bare-null", c)),
            ),
            (
                "bare listener, SCHED_FIFO thread",
                Box::new(|c| writer("--bare-null-fifo", c)),
            ),
            (
                "bare listener, poll before each receive",
                Box::new(|c| writer("--bare-null-poll", c)),
            ),
            (
                "bare listener, nice -20 thread",
                Box::new(|c| writer("--bare-null-nice", c)),
            ),
        ];
        if let Some(bin) = &self.compare {
            let me = me.clone();
            to_null.push((
                "--compare: sandbox run --tty -- (every write notified)",
                Box::new(move |c| {
                    let mut v = self.argv_of(bin, Term::Borrow, &[], &[]);
                    v.extend([me.clone(), "--writer-null".into(), c.to_string()]);
                    v
                }),
            ));
        }
        let rows = self.per_op(&to_null, n, reps, Stdio3::Pty, |_, d| expect_xs(d, 0))?;
        println!();
        println!(
            "2b. the same {n} writes to /dev/null (still on a pty, so --tty applies), \
             {reps} runs each"
        );
        print_table(&rows, 0, "µs/write", 1e6);
        if let [direct, notified, bare, bare_fifo, ..] = &rows[..] {
            println!(
                "   => one notified system call answered CONTINUE: {:.2} µs (median), {:.2} µs (min) more",
                (notified.median - direct.median) * 1e6,
                (notified.min - direct.min) * 1e6
            );
            println!(
                "   => the floor (bare listener): {:.2} µs more, {:.2} µs with SCHED_FIFO; \
                 the loader's notified call / the floor's: {:.2}x",
                (bare.median - direct.median) * 1e6,
                (bare_fifo.median - direct.median) * 1e6,
                notified.median / bare.median
            );
        }
        Ok(())
    }

    /// 3. fork+exec of /bin/true from a shell loop.
    fn fork_exec(&self) -> Result<()> {
        let m = self.plan.forks;
        let script =
            |count: u64| format!("i=0; while [ $i -lt {count} ]; do /bin/true; i=$((i+1)); done");
        let direct = move |c: u64| vec!["sh".to_string(), "-c".into(), script(c)];
        let sandboxed = |tty: bool, c: u64| {
            let s = script(c);
            self.sandbox_argv(tty, &["sh", "-c", &s])
        };
        // The floor of the sandbox's share: the same loop in the bench's bare sandbox
        // (`--bare-sandbox-overlay`: the namespaces and the overlay root, no seccomp,
        // no cgroup, no supervisor).
        let bare = |c: u64| {
            let s = script(c);
            self.bare_sandbox_argv("--bare-sandbox-overlay", &["/bin/sh", "-c", &s])
        };
        let me = self.me.display().to_string();
        let plain: Vec<Variant> = vec![
            ("direct (baseline)", Box::new(direct)),
            ("sandbox run --", Box::new(move |c| sandboxed(false, c))),
            ("floor: the bare sandbox, overlay root", Box::new(bare)),
        ];
        let reps = self.plan.fork_reps;
        let mut rows = self.per_op(&plain, m, reps, Stdio3::Null, |_, _| Ok(()))?;
        // With --tty, on a pty: ld.so's read() of libc in every /bin/true is notified
        // (a filter cannot tell it from a read of the terminal); the floor of that is
        // the same loop with read(2) notified to a bare SCHED_FIFO listener, directly
        // and in the bare sandbox.
        let tty: Vec<Variant> = vec![
            (
                "sandbox run --tty -- (on a pty)",
                Box::new(move |c| sandboxed(true, c)),
            ),
            (
                "direct, read(2) notified to a bare listener (floor)",
                Box::new({
                    let me = me.clone();
                    move |c| vec![me.clone(), "--bare-exec".into(), script(c)]
                }),
            ),
            (
                "floor: the bare sandbox, read(2) notified to a bare listener",
                Box::new(move |c| {
                    let s = script(c);
                    self.bare_sandbox_argv("--bare-sandbox-overlay", &[&me, "--bare-exec", &s])
                }),
            ),
        ];
        rows.extend(self.per_op(&tty, m, reps, Stdio3::Pty, |_, _| Ok(()))?);
        println!();
        println!(
            "3. fork+exec: sh -c 'while ...; do /bin/true; done', {m} iterations, {reps} runs \
             each; cost = (T({m}) - T(0)) / {m}"
        );
        print_table(&rows, 0, "µs/fork+exec", 1e6);
        Ok(())
    }

    /// 4. Throughput of `cat` of a large file to the terminal, with each terminal mode.
    fn cat_throughput(&self, data: &CatFile) -> Result<()> {
        let reps = self.plan.cat_reps;
        let bytes = data.bytes;
        let file = data.path.display().to_string();
        let binds = [data.dir.as_path()];
        let cat = |term: Term| self.sandbox_argv_with(term, &binds, &["cat", &file]);
        let variants: Vec<(&str, Vec<String>)> = vec![
            ("cat, direct (baseline)", vec!["cat".into(), file.clone()]),
            ("sandbox run -- cat (stdio passed through)", cat(Term::None)),
            (
                "sandbox run --tty -- cat (every read, write notified)",
                cat(Term::Borrow),
            ),
            (
                "sandbox run --tty=pty -- cat (loader proxies)",
                cat(Term::Pty),
            ),
        ];
        // One untimed round first: the file and the binaries in the page cache.
        for (_, argv) in &variants {
            let (_, d) = self.time(argv, Stdio3::Pty)?;
            expect_xs(d, bytes)?;
        }
        let mut wall = vec![Vec::new(); variants.len()];
        let mut cpu = vec![Vec::new(); variants.len()];
        for _ in 0..reps {
            for (i, (_, argv)) in variants.iter().enumerate() {
                let before = sys::children_cpu_time().context("getrusage")?;
                let (t, d) = self.time(argv, Stdio3::Pty)?;
                let after = sys::children_cpu_time().context("getrusage")?;
                expect_xs(d, bytes)?;
                wall[i].push(t.as_secs_f64());
                cpu[i].push(after.saturating_sub(before).as_secs_f64());
            }
        }
        let mb = bytes as f64 / 1e6;
        let (base, base_best) = (mb / median(&wall[0]), mb / min(&wall[0]));
        println!();
        println!(
            "4. cat of a {bytes}-byte file (all `x`, no newline) to a pty, {reps} runs each; \
             every byte checked at the terminal"
        );
        println!(
            "   {:<54} {:>11} {:>10} {:>7} {:>7} {:>10}",
            "", "median MB/s", "best MB/s", "CPU ms", "ratio", "best ratio"
        );
        for (i, (name, _)) in variants.iter().enumerate() {
            let (rate, best) = (mb / median(&wall[i]), mb / min(&wall[i]));
            println!(
                "   {:<54} {:>11.1} {:>10.1} {:>7.1} {:>6.2}x {:>9.2}x",
                name,
                rate,
                best,
                median(&cpu[i]) * 1e3,
                rate / base,
                best / base_best
            );
        }
        println!(
            "   => MB/s = {mb} MB / wall time of the whole command (best: the fastest run); \
             CPU = median user+system time of the command and its descendants; \
             ratio = MB/s / direct's"
        );
        let extra = |i: usize| {
            format!(
                "{:+.1} ms, {:+.1} ms CPU",
                (min(&wall[i]) - min(&wall[0])) * 1e3,
                (median(&cpu[i]) - median(&cpu[0])) * 1e3
            )
        };
        println!(
            "   => more than direct (fastest runs; CPU medians): no tty {}; --tty {}; \
             --tty=pty {}",
            extra(1),
            extra(2),
            extra(3)
        );
        Ok(())
    }

    /// Section 5: a notified setpgid(0, 0) with 10, 100 and 1,000 live processes in the
    /// sandbox, each known to the loader (each made one notified call), timed inside
    /// the program (`--setpgid LIVE N`).
    fn setpgid_by_live(&self) -> Result<()> {
        let n = self.plan.setpgid_calls;
        let reps = self.plan.setpgid_reps;
        let me = self.me.display().to_string();
        let mode = |live: u32| {
            vec![
                me.clone(),
                "--setpgid".into(),
                live.to_string(),
                n.to_string(),
            ]
        };
        let sandboxed = |live: u32| {
            let mut v = self.sandbox_argv(false, &[]);
            v.extend(mode(live));
            v
        };
        let variants: Vec<(String, Vec<String>)> = vec![
            ("native, 1,000 live processes (baseline)".into(), mode(1000)),
            ("sandbox run --, 10 live processes".into(), sandboxed(10)),
            ("sandbox run --, 100 live processes".into(), sandboxed(100)),
            (
                "sandbox run --, 1,000 live processes".into(),
                sandboxed(1000),
            ),
        ];
        let mut samples = vec![Vec::new(); variants.len()];
        for _ in 0..reps {
            for (i, (_, argv)) in variants.iter().enumerate() {
                samples[i].push(self.inner_figure(argv)?);
            }
        }
        let rows: Vec<Row> = variants
            .iter()
            .zip(&samples)
            .map(|((name, _), s)| Row {
                name: name.clone(),
                median: median(s),
                min: min(s),
            })
            .collect();
        println!();
        println!(
            "5. setpgid(0, 0) by the program, {n} calls timed inside it, with live processes \
             in the sandbox (each known to the loader), {reps} runs each"
        );
        print_table(&rows, 0, "µs/call", 1e6);
        if let [_, ten, _, thousand] = &rows[..] {
            println!(
                "   => 1,000 live processes / 10: {:.2}x",
                thousand.median / ten.median
            );
        }
        Ok(())
    }

    /// Runs `argv` (standard input and error /dev/null) and returns the number its
    /// standard output ends with.
    fn inner_figure(&self, argv: &[String]) -> Result<f64> {
        let (prog, rest) = argv.split_first().context("empty command")?;
        let out = Command::new(prog)
            .args(rest)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .with_context(|| format!("cannot start {prog}"))?;
        if !out.status.success() {
            bail!("`{}` failed: {}", argv.join(" "), out.status);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .last()
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("`{}` printed no figure: {text:?}", argv.join(" ")))
    }

    /// Measures every variant with `n` operations and with 0, interleaved, and returns
    /// the per-operation costs. `check` validates each run's terminal output.
    fn per_op(
        &self,
        variants: &[Variant<'_>],
        n: u64,
        reps: usize,
        stdio: Stdio3,
        check: impl Fn(u64, Option<Drained>) -> Result<()>,
    ) -> Result<Vec<Row>> {
        let mut full = vec![Vec::new(); variants.len()];
        let mut empty = vec![Vec::new(); variants.len()];
        for (_, argv) in variants {
            self.time(&argv(0), stdio)?;
        }
        for _ in 0..reps {
            for (i, (_, argv)) in variants.iter().enumerate() {
                let (t, d) = self.time(&argv(n), stdio)?;
                check(n, d)?;
                full[i].push(t.as_secs_f64());
                let (t, d) = self.time(&argv(0), stdio)?;
                check(0, d)?;
                empty[i].push(t.as_secs_f64());
            }
        }
        let n = n as f64;
        Ok(variants
            .iter()
            .enumerate()
            .map(|(i, (name, _))| Row {
                name: name.to_string(),
                median: (median(&full[i]) - median(&empty[i])) / n,
                min: (min(&full[i]) - min(&empty[i])) / n,
            })
            .collect())
    }

    /// A `--tty` run of `program` with the loader's log on; returns the log.
    fn logged_tty_run(&self, program: &[String]) -> Result<String> {
        self.logged_run(Term::Borrow, &[], program)
    }

    /// A run of `program` on a pty, with terminal mode `term`, `ro_binds` and the
    /// loader's log on; returns the log.
    fn logged_run(&self, term: Term, ro_binds: &[&Path], program: &[String]) -> Result<String> {
        let log = std::env::temp_dir().join(format!("loader_bench.{}.log", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let mut argv = vec![
            self.sandbox.display().to_string(),
            "--log-level".into(),
            "info".into(),
        ];
        argv.extend(
            self.sandbox_argv_with(term, ro_binds, &[])
                .into_iter()
                .skip(1),
        );
        argv.extend(program.iter().cloned());
        let r = self.time_env(&argv, Stdio3::Pty, &[("SANDBOX_LOG_FILE", &log)]);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        r?;
        Ok(text)
    }

    /// Extra `--tty` runs with the loader's log on: how many notifications it
    /// answered, and whether the kernel offered synchronous wake-up.
    fn loader_report(&self, data: &CatFile) -> Result<()> {
        let n = self.plan.writes;
        let m = self.plan.forks;
        println!();
        let writes = self.logged_tty_run(&[
            self.me.display().to_string(),
            "--writer".into(),
            n.to_string(),
        ])?;
        match stats(&writes) {
            Some((total, fast)) => println!(
                "loader: a --tty run of {n} writes: {total} notifications answered, {fast} of \
                 them at once (caller in the foreground)"
            ),
            None => println!("loader: no statistics in its log (older sandbox?)"),
        }
        let script = format!("i=0; while [ $i -lt {m} ]; do /bin/true; i=$((i+1)); done");
        let forks = self.logged_tty_run(&["sh".into(), "-c".into(), script])?;
        if let Some((total, fast)) = stats(&forks) {
            println!(
                "loader: a --tty run of the {m} fork+exec loop: {total} notifications \
                 answered, {fast} of them at once"
            );
        }
        let cat = ["cat".to_string(), data.path.display().to_string()];
        let binds = [data.dir.as_path()];
        for (term, flag) in [(Term::Borrow, "--tty"), (Term::Pty, "--tty=pty")] {
            let log = self.logged_run(term, &binds, &cat)?;
            if let Some((total, fast)) = stats(&log) {
                println!(
                    "loader: a {flag} run of the cat of {} bytes: {total} notifications \
                     answered, {fast} of them at once",
                    data.bytes
                );
            }
        }
        let finished = writes.contains("sandbox finished");
        let sync = if writes.contains("SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP") {
            "NO (Linux < 6.6: every notification costs a scheduler round trip)"
        } else if finished {
            "yes"
        } else {
            "unknown"
        };
        let rt = if writes.contains("not real-time") {
            "no (no CAP_SYS_NICE)"
        } else if finished {
            "yes (SCHED_FIFO)"
        } else {
            "unknown"
        };
        println!(
            "kernel features: seccomp notification sync wake-up: {sync}; real-time notification thread: {rt}"
        );
        Ok(())
    }
}

/// The file that the throughput runs `cat`: `bytes` bytes of `x` in a directory of its
/// own (bound into the sandbox), removed when dropped.
struct CatFile {
    dir: PathBuf,
    path: PathBuf,
    bytes: u64,
}

impl CatFile {
    fn create(bytes: u64) -> Result<CatFile> {
        let dir = std::env::temp_dir().join(format!("loader_bench.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        // From here on the directory is removed on every path out.
        let file = CatFile {
            path: dir.join("x.data"),
            dir,
            bytes,
        };
        let mut f = std::io::BufWriter::new(
            File::create(&file.path).with_context(|| format!("{}", file.path.display()))?,
        );
        let block = vec![b'x'; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            let k = usize::try_from(left.min(block.len() as u64)).unwrap_or(block.len());
            f.write_all(&block[..k])
                .with_context(|| format!("writing {}", file.path.display()))?;
            left -= k as u64;
        }
        f.flush()
            .with_context(|| format!("writing {}", file.path.display()))?;
        Ok(file)
    }
}

impl Drop for CatFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `notifications` and `fast_path` from the loader's "sandbox finished" log line.
fn stats(log: &str) -> Option<(u64, u64)> {
    let line = log.lines().rfind(|l| l.contains("sandbox finished"))?;
    let field = |key: &str| -> Option<u64> {
        let at = line.find(&format!(" {key}="))? + key.len() + 2;
        let digits: String = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    Some((field("notifications")?, field("fast_path")?))
}

/// The terminal must have received exactly `count` bytes from the writer (or `cat`),
/// and nothing else.
fn expect_xs(d: Option<Drained>, count: u64) -> Result<()> {
    let d = d.context("no terminal output collected")?;
    if d.xs != count || !d.other.is_empty() {
        bail!(
            "the terminal received {} bytes of {count} written; it also got {:?}",
            d.xs,
            String::from_utf8_lossy(&d.other)
        );
    }
    Ok(())
}

fn close_on_exec(fd: &OwnedFd) -> Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).context("fcntl(F_SETFD)")?;
    Ok(())
}

/// Spawns a thread that reads the pty master until every slave is closed (EIO) and
/// reports what it read.
fn spawn_drain(master: OwnedFd) -> mpsc::Receiver<std::io::Result<Drained>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut f = File::from(master);
        let mut buf = vec![0u8; 1 << 16];
        let mut d = Drained {
            xs: 0,
            other: Vec::new(),
        };
        let r = loop {
            match f.read(&mut buf) {
                Ok(0) => break Ok(d),
                Ok(k) => {
                    let chunk = &buf[..k];
                    // The common case (only `x`s) in one vectorisable pass: the drain
                    // must keep up with `cat`.
                    let xs = chunk.iter().filter(|&&b| b == b'x').count();
                    d.xs += xs as u64;
                    if xs != k {
                        for &b in chunk {
                            if b != b'x' && d.other.len() < 400 {
                                d.other.push(b);
                            }
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // Linux: reading a master whose slaves are all closed fails with EIO.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break Ok(d),
                Err(e) => break Err(e),
            }
        };
        let _ = tx.send(r);
    });
    rx
}

/// The 1-minute load average: figures taken on a busy machine are worth less.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn median(s: &[f64]) -> f64 {
    let mut v = s.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn min(s: &[f64]) -> f64 {
    s.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Prints rows with ratios of medians against row `baseline`.
fn print_table(rows: &[Row], baseline: usize, unit: &str, scale: f64) {
    let base = rows.get(baseline).map_or(f64::NAN, |r| r.median);
    println!(
        "   {:<46} {:>20} {:>20} {:>8}",
        "",
        format!("median {unit}"),
        format!("min {unit}"),
        "ratio"
    );
    for r in rows {
        println!(
            "   {:<46} {:>20.2} {:>20.2} {:>7.2}x",
            r.name,
            r.median * scale,
            r.min * scale,
            r.median / base
        );
    }
}
