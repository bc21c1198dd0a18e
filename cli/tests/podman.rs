//! podman driving `sandbox` as its OCI runtime, scenario by scenario against runc in
//! the same test: runc is the reference for everything observable (output, exit
//! codes, states, timings), job control inside the container is the sentry's.
//!
//! The test builds its own image (`podman import` of a busybox-static directory) and
//! writes its own containers.conf (CONTAINERS_CONF) registering the built `sandbox`
//! binary as the runtime `sandbox`. Without podman it prints a SKIPPED line, and fails
//! under CI (`CI` set), where .ci/run installs podman, conmon, runc and busybox-static.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_tests::term::{keys, processes_with_arg, until, Term, DEFAULT_TIMEOUT};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The runtimes every scenario runs on: the reference first.
const RUNTIMES: [&str; 2] = ["runc", "sandbox"];

/// The image the test builds.
const IMAGE: &str = "localhost/sandbox-e2e-bb:latest";

/// How long one podman command may take.
const PODMAN_TIMEOUT: Duration = Duration::from_secs(60);

struct Podman {
    conf: PathBuf,
}

static PODMAN: OnceLock<Option<Podman>> = OnceLock::new();

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// podman set up for the tests, or `None` (SKIPPED printed) without podman.
fn podman() -> Option<&'static Podman> {
    PODMAN
        .get_or_init(|| {
            if !sandbox_tests::require_root() {
                return None;
            }
            for p in ["podman", "conmon", "runc", "busybox"] {
                if !have(p) && !Path::new("/usr/libexec/podman/conmon").exists() {
                    let msg = format!("SKIPPED: {p} is not installed (apt-get install podman conmon runc busybox-static)");
                    eprintln!("{msg}");
                    let _ = writeln!(std::io::stdout(), "{msg}");
                    assert!(std::env::var_os("CI").is_none(), "{msg}: CI must have it");
                    return None;
                }
            }
            Some(setup())
        })
        .as_ref()
}

fn setup() -> Podman {
    let dir = std::env::temp_dir().join(format!("sandbox-podman-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // No runtime can raise a hard limit without CAP_SYS_RESOURCE: podman's defaults
    // (1048576) are lowered to what this process has, and NPROC to pid_max.
    let (_, nofile) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let nofile = nofile.min(20000);
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let nproc = pid_max.min(32768);
    let conf = dir.join("containers.conf");
    std::fs::write(
        &conf,
        format!(
            "[containers]\n\
             default_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n\
             [engine]\n\
             runtime_supports_json = [\"crun\", \"runc\", \"kata\", \"runsc\", \"krun\", \"sandbox\"]\n\
             [engine.runtimes]\n\
             sandbox = [\"{}\"]\n",
            env!("CARGO_BIN_EXE_sandbox")
        ),
    )
    .unwrap();
    // Containers an earlier, interrupted run left behind (a killed `run -it --rm`).
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "podman ps -aq --filter ancestor={IMAGE} | xargs -r podman rm -f -t 0 >/dev/null 2>&1"
        ))
        .env("CONTAINERS_CONF", &conf)
        .status();
    // The image: busybox-static and the applets the scenarios use.
    let root = dir.join("image");
    for d in ["bin", "etc", "proc", "dev", "tmp", "sys", "root"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "ls", "sleep", "cat", "echo", "ps", "stty", "kill", "true", "id", "date", "grep",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C {} -c . | podman import -q - {IMAGE} >/dev/null",
            root.display()
        ))
        .env("CONTAINERS_CONF", &conf)
        .status()
        .unwrap();
    assert!(status.success(), "podman import");
    Podman { conf }
}

/// What a podman command did.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Podman {
    fn command(&self, runtime: &str) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &self.conf)
            .arg("--runtime")
            .arg(runtime)
            .stdin(Stdio::null());
        c
    }

    /// Runs `podman --runtime RUNTIME ARGS`, at most [`PODMAN_TIMEOUT`].
    fn run(&self, runtime: &str, args: &[&str]) -> Ran {
        let args = runtime_args(runtime, args);
        let child = self
            .command(runtime)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out: Output = match rx.recv_timeout(PODMAN_TIMEOUT) {
            Ok(out) => out.unwrap(),
            Err(_) => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                panic!("podman --runtime {runtime} {args:?} did not end in {PODMAN_TIMEOUT:?}");
            }
        };
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Like [`Podman::run`], failing unless the command succeeds; its stdout, trimmed.
    fn ok(&self, runtime: &str, args: &[&str]) -> String {
        let r = self.run(runtime, args);
        assert_eq!(r.code, 0, "podman --runtime {runtime} {args:?}: {r:?}");
        r.stdout.trim().to_owned()
    }

    /// A detached container running `cmd`, removed (forcibly) on drop.
    fn detached<'a>(&'a self, runtime: &'a str, cmd: &[&str]) -> Container<'a> {
        let mut args = vec!["run", "-d", IMAGE];
        args.extend_from_slice(cmd);
        let id = self.ok(runtime, &args);
        Container {
            podman: self,
            runtime,
            id,
        }
    }

    fn state(&self, runtime: &str, id: &str) -> String {
        self.ok(runtime, &["inspect", "-f", "{{.State.Status}}", id])
    }
}

/// Debian's runsc needs its own `--network=none` (podman's `--runtime-flag`).
fn runtime_args<'a>(runtime: &str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    if runtime == "runsc" {
        v.insert(0, "--runtime-flag=network=none");
    }
    v
}

struct Container<'a> {
    podman: &'a Podman,
    runtime: &'a str,
    id: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self
            .podman
            .run(self.runtime, &["rm", "-f", "-t", "0", &self.id]);
    }
}

/// Runs `scenario` on every runtime and asserts that each gives what runc gave.
fn agree<T: std::fmt::Debug + PartialEq>(name: &str, scenario: impl Fn(&Podman, &str) -> T) {
    let Some(p) = podman() else { return };
    let reference = scenario(p, RUNTIMES[0]);
    // SANDBOX_PODMAN_ONLY_RUNC=1: the reference half alone (to check a scenario itself).
    if std::env::var_os("SANDBOX_PODMAN_ONLY_RUNC").is_some_and(|v| v == "1") {
        eprintln!("{name}: runc gave {reference:?} (sandbox not run: SANDBOX_PODMAN_ONLY_RUNC=1)");
        return;
    }
    for runtime in &RUNTIMES[1..] {
        let got = scenario(p, runtime);
        assert_eq!(got, reference, "{name}: {runtime} differs from runc");
    }
    // SANDBOX_PODMAN_ALSO=runsc: measure more runtimes (docs/OCI.md's table), printed,
    // not asserted.
    for extra in std::env::var("SANDBOX_PODMAN_ALSO")
        .unwrap_or_default()
        .split(',')
    {
        if extra.is_empty() {
            continue;
        }
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(p, extra)));
        let verdict = match got {
            Ok(v) if v == reference => "agrees with runc".to_owned(),
            Ok(v) => format!("differs: {v:?}"),
            Err(e) => format!(
                "fails: {}",
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or("")
            ),
        };
        println!("MEASURED {name} | {extra} | {verdict}");
    }
}

#[test]
fn run_rm_echo() {
    agree("run --rm echo hi", |p, rt| {
        let r = p.run(rt, &["run", "--rm", IMAGE, "echo", "hi"]);
        assert_eq!((r.code, r.stdout.as_str()), (0, "hi\n"), "{rt}: {r:?}");
        (r.code, r.stdout)
    });
}

#[test]
fn run_exit_status() {
    agree("run --rm sh -c 'exit 3'", |p, rt| {
        let r = p.run(rt, &["run", "--rm", IMAGE, "sh", "-c", "exit 3"]);
        assert_eq!(r.code, 3, "{rt}: {r:?}");
        r.code
    });
}

#[test]
fn run_missing_program() {
    agree("run of a program the image lacks", |p, rt| {
        let r = p.run(rt, &["run", "--rm", IMAGE, "no-such-program"]);
        assert_eq!(r.code, 127, "{rt}: {r:?}");
        (r.code, r.stderr.contains("no-such-program"))
    });
}

#[test]
fn detached_exec_status() {
    agree("run -d, exec, exec status", |p, rt| {
        let c = p.detached(rt, &["sleep", "1000"]);
        let echo = p.run(rt, &["exec", &c.id, "echo", "from exec"]);
        let status = p.run(rt, &["exec", &c.id, "sh", "-c", "exit 7"]);
        // The container's first process (runc: PID 1; sandbox: PID 2, its init is PID
        // 1 — see docs/OCI.md) is sleep.
        let first = p.run(rt, &["exec", &c.id, "sh", "-c", "cat /proc/[12]/cmdline"]);
        assert_eq!(echo.stdout, "from exec\n", "{rt}: {echo:?}");
        assert_eq!(status.code, 7, "{rt}: {status:?}");
        let first = first.stdout.replace('\0', " ").contains("sleep 1000 ");
        (echo.code, echo.stdout, status.code, first)
    });
}

#[test]
fn kill_and_rm_f() {
    agree("podman kill, rm -f", |p, rt| {
        let c = p.detached(rt, &["sleep", "1000"]);
        p.ok(rt, &["kill", &c.id]);
        let code = p.ok(rt, &["wait", &c.id]);
        let state = p.state(rt, &c.id);
        let second = p.detached(rt, &["sleep", "1000"]);
        let rm = p.run(rt, &["rm", "-f", "-t", "0", &second.id]);
        let gone = p.run(rt, &["inspect", &second.id]).code != 0;
        (code, state, rm.code, gone)
    });
}

#[test]
fn stop_timing() {
    agree(
        "podman stop: PID 1 ignores SIGTERM without a handler",
        |p, rt| {
            // sleep as PID 1 has no handler: SIGTERM is ignored, the timeout's SIGKILL ends it.
            let c = p.detached(rt, &["sleep", "1000"]);
            let start = Instant::now();
            p.ok(rt, &["stop", "-t", "2", &c.id]);
            let slow = start.elapsed();
            let code_slow = p.ok(rt, &["inspect", "-f", "{{.State.ExitCode}}", &c.id]);
            // A handler: SIGTERM ends it at once.
            let c = p.detached(
                rt,
                &[
                    "sh",
                    "-c",
                    "trap 'exit 0' TERM; while true; do sleep 0.1; done",
                ],
            );
            let start = Instant::now();
            p.ok(rt, &["stop", "-t", "10", &c.id]);
            let fast = start.elapsed();
            let code_fast = p.ok(rt, &["inspect", "-f", "{{.State.ExitCode}}", &c.id]);
            assert!(slow >= Duration::from_secs(2), "{rt}: stop took {slow:?}");
            assert!(fast < Duration::from_secs(8), "{rt}: stop took {fast:?}");
            (code_slow, code_fast)
        },
    );
}

#[test]
fn pause_unpause() {
    agree("pause, unpause", |p, rt| {
        let c = p.detached(rt, &["sleep", "1003"]);
        wait_process("1003");
        p.ok(rt, &["pause", &c.id]);
        let paused = p.state(rt, &c.id);
        // Every process of the container is frozen.
        let frozen = processes_with_arg("1003")
            .iter()
            .filter(|pi| pi.comm == "sleep")
            .all(|pi| frozen(pi.pid));
        p.ok(rt, &["unpause", &c.id]);
        let running = p.state(rt, &c.id);
        let exec = p.run(rt, &["exec", &c.id, "true"]).code;
        (paused, frozen, running, exec)
    });
}

/// Whether the cgroup freezer holds `pid` (its state in /proc is D or S while frozen,
/// so the cgroup is asked: v2 `cgroup.freeze`... or v1 `freezer.state`).
fn frozen(pid: i32) -> bool {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        if controllers == "freezer" {
            let state =
                std::fs::read_to_string(format!("/sys/fs/cgroup/freezer{path}/freezer.state"));
            return state.is_ok_and(|s| s.trim() == "FROZEN");
        }
        if controllers.is_empty() {
            for root in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
                if let Ok(s) = std::fs::read_to_string(format!("{root}{path}/cgroup.events")) {
                    if s.lines().any(|l| l == "frozen 1") {
                        return true;
                    }
                }
            }
        }
    }
    false
}

#[test]
fn top_lists_the_container_processes() {
    agree("podman top", |p, rt| {
        let c = p.detached(rt, &["sh", "-c", "sleep 1001 & sleep 1002"]);
        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        loop {
            let top = p.ok(rt, &["top", &c.id, "args"]);
            let found = ["sleep 1001", "sleep 1002"].map(|s| top.contains(s));
            if found == [true, true] || Instant::now() > deadline {
                // The container's processes only: not the host's (kernel threads).
                let host = top.contains("kthreadd") || top.lines().count() > 6;
                return (found, host, top.lines().next().unwrap_or("").to_owned());
            }
            std::thread::yield_now();
        }
    });
}

/// Waits until a process whose argv holds `arg` exists (on the host's /proc: the
/// container's processes are the host's).
fn wait_process(arg: &str) -> i32 {
    let deadline = Instant::now() + DEFAULT_TIMEOUT;
    loop {
        if let Some(p) = processes_with_arg(arg).first() {
            return p.pid;
        }
        assert!(Instant::now() < deadline, "no process with argument {arg}");
        std::thread::yield_now();
    }
}

/// Waits until process `pid` has ended (or is a zombie).
fn wait_gone(pid: i32) {
    let deadline = Instant::now() + DEFAULT_TIMEOUT;
    while sandbox_tests::term::ProcInfo::read(pid).is_some_and(|p| p.state != 'Z') {
        assert!(Instant::now() < deadline, "process {pid} did not end");
        std::thread::yield_now();
    }
}

/// Job control in busybox's interactive sh on the container's terminal: ^C, ^Z / fg,
/// a resize, then `exit CODE`. Returns what the user saw at each step.
fn job_control(term: &Term, tag: &str, code: i32) -> Vec<String> {
    let mut seen = Vec::new();
    term.wait_for("# ", Duration::from_secs(30)).unwrap();
    let interrupted = format!("{tag}1");
    term.send(&format!("sleep {interrupted}\r")).unwrap();
    let pid = wait_process(&interrupted);
    term.send(keys::CTRL_C).unwrap();
    // ^C flushes typed-ahead input: type on once the job is gone.
    wait_gone(pid);
    term.send("echo rc=$?\r").unwrap();
    term.wait_for("rc=130", DEFAULT_TIMEOUT).unwrap();
    seen.push("rc=130".to_owned());

    let stopped = format!("{tag}2");
    term.send(&format!("sleep {stopped}\r")).unwrap();
    let pid = wait_process(&stopped);
    term.send(keys::CTRL_Z).unwrap();
    term.wait_for("Stopped", DEFAULT_TIMEOUT).unwrap();
    seen.push("Stopped".to_owned());
    term.send("fg\r").unwrap();
    let deadline = Instant::now() + DEFAULT_TIMEOUT;
    while sandbox_tests::term::ProcInfo::read(pid).is_some_and(|p| p.state == 'T') {
        assert!(Instant::now() < deadline, "fg did not continue the job");
        std::thread::yield_now();
    }
    term.send(keys::CTRL_C).unwrap();
    wait_gone(pid);
    term.send("echo fg=$?\r").unwrap();
    term.wait_for("fg=130", DEFAULT_TIMEOUT).unwrap();
    seen.push("fg=130".to_owned());

    term.resize(33, 97).unwrap();
    // podman passes the resize on to conmon, which sets the container's pty: ask
    // again until it has arrived.
    let deadline = Instant::now() + DEFAULT_TIMEOUT;
    loop {
        term.send("stty size\r").unwrap();
        if term.wait_for("33 97", Duration::from_millis(500)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the resize never reached the container: {}",
            term.screen()
        );
    }
    seen.push("33 97".to_owned());

    term.send(&format!("exit {code}\r")).unwrap();
    let status = term.wait_exit(Duration::from_secs(30)).unwrap();
    seen.push(format!("exit {:?}", status.code()));
    seen
}

fn podman_term(p: &Podman, rt: &str, args: &[&str]) -> Term {
    let conf = p.conf.to_str().unwrap();
    let mut argv = vec!["podman", "--runtime", rt];
    argv.extend(runtime_args(rt, args));
    Term::spawn(&argv, &[("CONTAINERS_CONF", conf)], 24, 80).unwrap()
}

#[test]
fn run_it_job_control() {
    agree("run -it sh: ^C, ^Z/fg, resize, exit 3", |p, rt| {
        let term = podman_term(p, rt, &["run", "-it", "--rm", IMAGE, "sh"]);
        let tag = if rt == "runc" { "71" } else { "72" };
        let seen = job_control(&term, tag, 3);
        assert_eq!(
            seen.last().unwrap(),
            "exit Some(3)",
            "{rt}: {}",
            term.screen()
        );
        seen
    });
}

#[test]
fn exec_it_job_control() {
    agree("exec -it sh into a running container", |p, rt| {
        let c = p.detached(rt, &["sleep", "1000"]);
        let term = podman_term(p, rt, &["exec", "-it", &c.id, "sh"]);
        let tag = if rt == "runc" { "81" } else { "82" };
        let seen = job_control(&term, tag, 4);
        assert_eq!(
            seen.last().unwrap(),
            "exit Some(4)",
            "{rt}: {}",
            term.screen()
        );
        // The container goes on, and `rm -f` (SIGKILL to its first program) ends it.
        let state = p.state(rt, &c.id);
        let rm = p.run(rt, &["rm", "-f", "-t", "0", &c.id]);
        assert_eq!(rm.code, 0, "{rt}: rm -f after exec -it: {rm:?}");
        (seen, state, rm.code)
    });
}

#[test]
fn terminal_window_size_and_tty() {
    agree("run -it: the container's terminal", |p, rt| {
        let term = podman_term(
            p,
            rt,
            &[
                "run",
                "-it",
                "--rm",
                IMAGE,
                "sh",
                "-c",
                "tty; stty size; read x",
            ],
        );
        term.wait_for(
            until("tty and size", |s| {
                s.contains("/dev/pts/0") && s.contains("24 80")
            }),
            Duration::from_secs(30),
        )
        .unwrap();
        term.send("\r").unwrap();
        term.wait_exit(Duration::from_secs(30)).unwrap().code()
    });
}

#[test]
fn exec_user_workdir_env_and_capabilities() {
    agree("exec -u 1000 -w /tmp -e FOO=bar, and as root", |p, rt| {
        let c = p.detached(rt, &["sleep", "1000"]);
        let script = "pwd; echo $FOO; id -u; grep CapEff /proc/self/status";
        let other = p.run(
            rt,
            &[
                "exec", "-u", "1000", "-w", "/tmp", "-e", "FOO=bar", &c.id, "sh", "-c", script,
            ],
        );
        let root = p.run(rt, &["exec", &c.id, "grep", "CapEff", "/proc/self/status"]);
        // A non-root process keeps no capability (none is in its ambient set).
        assert!(
            other.stdout.contains("CapEff:\t0000000000000000"),
            "{rt}: {other:?}"
        );
        (other.code, other.stdout, root.stdout)
    });
}
