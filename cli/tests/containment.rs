//! A hostile program must not get out: attacks written as the program would try them,
//! as root and as an unprivileged caller (a user namespace, through `setpriv`).
//!
//! Nothing here changes the machine: writability of host settings is detected by
//! opening for writing (which must fail), never by writing; markers live in temporary
//! directories; limits are exercised inside the sandbox's own cgroup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sandbox_tests::term::{processes_with_arg, ProcInfo};

/// Who starts `sandbox`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Root,
    /// uid 65534 through `setpriv`: the sandbox gets a user namespace.
    Unprivileged,
}

const CALLERS: [Caller; 2] = [Caller::Root, Caller::Unprivileged];

fn command(caller: Caller) -> Command {
    match caller {
        Caller::Root => Command::new(env!("CARGO_BIN_EXE_sandbox")),
        Caller::Unprivileged => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
                .arg(env!("CARGO_BIN_EXE_sandbox"));
            c
        }
    }
}

/// How long any sandbox here may take: an attack that wedges the sandbox (a stopped
/// init used to hang it forever) fails the test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(60);

fn sandbox(caller: Caller, args: &[&str]) -> Output {
    let child = command(caller)
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sandbox");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.expect("wait for sandbox"),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            // Its output, if the sandbox's processes let go of the pipes.
            let out = rx
                .recv_timeout(Duration::from_secs(10))
                .ok()
                .map(|o| o.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()));
            panic!("{caller:?} {args:?}: sandbox did not end within {DEADLINE:?}: {out:?}");
        }
    }
}

/// Runs `python3 -c SCRIPT` in a sandbox with `args` before the `--`.
fn python(caller: Caller, args: &[&str], script: &str) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--", "python3", "-c", script]);
    sandbox(caller, &all)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `KEY VALUE` lines printed by a script.
fn facts(o: &Output) -> std::collections::BTreeMap<String, String> {
    stdout(o)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Python prelude: raw system calls through ctypes, each result printed as
/// `NAME ok` or `NAME ERRNAME`.
const PRELUDE: &str = r#"
import ctypes, errno, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def res(name, r):
    e = ctypes.get_errno()
    print(name, "ok" if r >= 0 else errno.errorcode.get(e, str(e)), flush=True)
def oserr(name, f):
    try:
        f()
        print(name, "ok", flush=True)
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, str(e.errno)), flush=True)
"#;

/// ptrace, process_vm_readv, pidfd_getfd, kcmp and /proc/1 against init: all refused;
/// SIGSTOP and SIGKILL to PID 1 from inside change nothing; the program itself is
/// dumpable (it may debug itself and its children). init's command line, which anyone
/// may read, is not the loader's (whose `-e NAME=value` options may hold secrets).
#[test]
fn init_is_out_of_reach() {
    if !sandbox_tests::require_root() {
        return;
    }
    let script = format!(
        "{PRELUDE}{}",
        r#"
PTRACE_ATTACH, PTRACE_SEIZE = 16, 0x4206
res("ptrace_attach", libc.ptrace(PTRACE_ATTACH, 1, 0, 0))
res("ptrace_seize", libc.ptrace(PTRACE_SEIZE, 1, 0, 0))
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(4096)
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 4096)
remote = iovec(0x10000, 4096)
res("process_vm_readv", libc.process_vm_readv(1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))
res("process_vm_writev", libc.process_vm_writev(1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))
pidfd = libc.syscall(434, 1, 0)  # pidfd_open
res("pidfd_open", pidfd)
res("pidfd_getfd", libc.syscall(438, pidfd, 0, 0))
res("kcmp", libc.syscall(312, 1, os.getpid(), 0, 0, 0))  # KCMP_FILE
oserr("proc1_mem", lambda: open("/proc/1/mem", "rb").read(1))
oserr("proc1_environ", lambda: open("/proc/1/environ", "rb").read())
oserr("proc1_fd0", lambda: os.readlink("/proc/1/fd/0"))
oserr("proc1_fd0_open", lambda: open("/proc/1/fd/0", "rb"))
print("proc1_cmdline", open("/proc/1/cmdline", "rb").read().rstrip(b"\0").replace(b"\0", b" ").decode(), flush=True)
print("secret_in_env", os.environ.get("SANDBOX_TEST_SECRET", "none"), flush=True)
print("dumpable", libc.prctl(3, 0, 0, 0, 0), flush=True)  # PR_GET_DUMPABLE
res("kill_stop", libc.kill(1, signal.SIGSTOP))
res("kill_kill", libc.kill(1, signal.SIGKILL))
state = [l.split()[1] for l in open("/proc/1/status") if l.startswith("State:")][0]
print("init_state", state, flush=True)
# What the program may do: trace its own child.
child = os.fork()
if child == 0:
    signal.pause()
    os._exit(0)
res("ptrace_own_child", libc.ptrace(PTRACE_ATTACH, child, 0, 0))
os.waitpid(child, 0)
os.kill(child, signal.SIGKILL)
print("end", "reached", flush=True)
sys.exit(7)
"#
    );
    // Docker's default capabilities do not include a way to init either.
    let secret = "SANDBOX_TEST_SECRET=s3cr3t-only-for-the-program";
    let runs: [(Caller, &[&str]); 3] = [
        (Caller::Root, &["-e", secret]),
        (Caller::Root, &["--cap-add", "docker-default"]),
        (Caller::Unprivileged, &["-e", secret]),
    ];
    for (caller, args) in runs {
        let o = python(caller, args, &script);
        let f = facts(&o);
        let why = format!("{caller:?} {args:?}: {f:?} {}", stderr(&o));
        assert_eq!(code(&o), 7, "the sandbox still ends normally: {why}");
        for call in [
            "ptrace_attach",
            "ptrace_seize",
            "process_vm_readv",
            "process_vm_writev",
        ] {
            assert_eq!(f[call], "EPERM", "{call}: {why}");
        }
        assert_eq!(f["pidfd_open"], "ok", "{why}");
        assert_eq!(f["pidfd_getfd"], "EPERM", "{why}");
        assert_eq!(f["kcmp"], "EPERM", "{why}");
        for file in ["proc1_mem", "proc1_environ", "proc1_fd0", "proc1_fd0_open"] {
            assert!(
                f[file] == "EACCES" || f[file] == "EPERM",
                "{file} must be refused: {why}"
            );
        }
        assert!(
            f["proc1_cmdline"].starts_with("sandbox-loader:entry init "),
            "init shows the entry point's command line: {why}"
        );
        if args.contains(&secret) {
            assert_eq!(
                f["secret_in_env"], "s3cr3t-only-for-the-program",
                "the program gets its -e: {why}"
            );
        }
        assert!(
            !f["proc1_cmdline"].contains("s3cr3t") && !f["proc1_cmdline"].contains("run"),
            "{why}"
        );
        assert_eq!(
            f["dumpable"], "1",
            "the program is dumpable after exec: {why}"
        );
        // kill() reports success, but PID 1 ignores signals it has no handler for.
        assert_eq!(f["init_state"], "S", "{why}");
        assert_eq!(f["ptrace_own_child"], "ok", "{why}");
        assert_eq!(f["end"], "reached", "{why}");
    }
}

/// The holder of the program's session (the program's parent, PID 3, init's child)
/// is as out of reach as init: no ptrace, no memory access, no descriptors, no
/// /proc/PID/{mem,environ,fd}, its own seccomp filter. It is not PID 1, so the
/// program can signal it: a SIGSTOP is undone (init continues it), and after a
/// SIGKILL the program, reparented to init, still has its end reported (the sandbox's
/// exit code is the program's).
#[test]
fn session_holder_is_out_of_reach() {
    if !sandbox_tests::require_root() {
        return;
    }
    let script = format!(
        "{PRELUDE}{}",
        r#"
import time
h = os.getppid()
print("holder", h, flush=True)
PTRACE_ATTACH, PTRACE_SEIZE = 16, 0x4206
res("ptrace_attach", libc.ptrace(PTRACE_ATTACH, h, 0, 0))
res("ptrace_seize", libc.ptrace(PTRACE_SEIZE, h, 0, 0))
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(4096)
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 4096)
remote = iovec(0x10000, 4096)
res("process_vm_readv", libc.process_vm_readv(h, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))
pidfd = libc.syscall(434, h, 0)  # pidfd_open
res("pidfd_getfd", libc.syscall(438, pidfd, 0, 0))
oserr("proc_mem", lambda: open(f"/proc/{h}/mem", "rb").read(1))
oserr("proc_environ", lambda: open(f"/proc/{h}/environ", "rb").read())
oserr("proc_fd0", lambda: os.readlink(f"/proc/{h}/fd/0"))
def status(pid, key):
    return [l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith(key + ":")][0]
print("seccomp", status(h, "Seccomp"), flush=True)
print("nonewprivs", status(h, "NoNewPrivs"), flush=True)
def until(cond):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if cond():
            return "yes"
        time.sleep(0.01)
    return "no"
res("kill_stop", libc.kill(h, signal.SIGSTOP))
# Stopped, then continued by init.
print("continued", until(lambda: status(h, "State") != "T"), flush=True)
res("kill_kill", libc.kill(h, signal.SIGKILL))
print("reparented", until(lambda: os.getppid() == 1), flush=True)
sys.exit(7)
"#
    );
    for caller in CALLERS {
        let o = python(caller, &[], &script);
        let f = facts(&o);
        let why = format!("{caller:?}: {f:?} {}", stderr(&o));
        assert_eq!(
            code(&o),
            7,
            "the program's end is reported after the holder's death: {why}"
        );
        assert_eq!(f["holder"], "3", "{why}");
        for call in [
            "ptrace_attach",
            "ptrace_seize",
            "process_vm_readv",
            "pidfd_getfd",
        ] {
            assert_eq!(f[call], "EPERM", "{call}: {why}");
        }
        for file in ["proc_mem", "proc_environ", "proc_fd0"] {
            assert!(
                f[file] == "EACCES" || f[file] == "EPERM",
                "{file} must be refused: {why}"
            );
        }
        assert_eq!(f["seccomp"], "2", "{why}");
        assert_eq!(f["nonewprivs"], "1", "{why}");
        assert_eq!(f["kill_stop"], "ok", "{why}");
        assert_eq!(f["continued"], "yes", "{why}");
        assert_eq!(f["kill_kill"], "ok", "{why}");
        assert_eq!(f["reparented"], "yes", "{why}");
    }
}

/// Capability sets of the program's process, from /proc/self/status.
const CAPS_SCRIPT: &str = r#"
for l in open("/proc/self/status"):
    k = l.split(":")[0]
    if k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Uid"):
        print(k, l.split()[1])
import socket
s = socket.socket()
try:
    s.bind(("0.0.0.0", 80))
    print("bind80 ok")
except OSError as e:
    print("bind80", e.errno)
"#;

/// The program has no capability at all by default, whoever starts it, and
/// `no_new_privs`; `--cap-add` keeps exactly the named one, also for `--user`, and it
/// works (binding port 80).
#[test]
fn no_capabilities_unless_added() {
    if !sandbox_tests::require_root() {
        return;
    }
    let sets = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"];
    for (caller, user) in [
        (Caller::Root, None),
        (Caller::Root, Some("1000")),
        // Rootless, only uid 0 is mapped in the sandbox's user namespace.
        (Caller::Unprivileged, None),
    ] {
        let mut args = vec![];
        if let Some(u) = user {
            args.extend(["--user", u]);
        }
        let o = python(caller, &args, CAPS_SCRIPT);
        let f = facts(&o);
        let why = format!("{caller:?} {user:?}: {f:?} {}", stderr(&o));
        assert_eq!(code(&o), 0, "{why}");
        for set in sets {
            assert_eq!(f[set], "0000000000000000", "{set}: {why}");
        }
        assert_eq!(f["NoNewPrivs"], "1", "{why}");
        assert_eq!(f["bind80"], libc::EACCES.to_string(), "{why}");
        assert_eq!(f["Uid"], user.unwrap_or("0"), "{why}");

        // CAP_NET_BIND_SERVICE is bit 10; the option takes any spelling.
        args.extend(["--cap-add", "cap_net_bind_service"]);
        let o = python(caller, &args, CAPS_SCRIPT);
        let f = facts(&o);
        let why = format!(
            "{caller:?} {user:?} + NET_BIND_SERVICE: {f:?} {}",
            stderr(&o)
        );
        assert_eq!(code(&o), 0, "{why}");
        for set in sets {
            assert_eq!(f[set], "0000000000000400", "{set}: {why}");
        }
        assert_eq!(f["bind80"], "ok", "{why}");
    }
}

#[test]
fn cap_add_names_are_checked_and_dangerous_ones_warned() {
    if !sandbox_tests::require_root() {
        return;
    }
    let o = sandbox(Caller::Root, &["--cap-add", "CAP_FLY", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("--cap-add"), "{}", stderr(&o));
    let o = sandbox(
        Caller::Root,
        &[
            "--cap-add",
            "docker-default",
            "--",
            "grep",
            "CapEff",
            "/proc/self/status",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE
    // NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    assert_eq!(
        stdout(&o).split_whitespace().nth(1),
        Some("00000000a80425fb")
    );
    let o = sandbox(Caller::Root, &["--cap-add", "sys_admin", "--", "true"]);
    assert_eq!(code(&o), 0);
    assert!(
        stderr(&o).contains("WARN") && stderr(&o).contains("keeps CAP_SYS_ADMIN"),
        "{}",
        stderr(&o)
    );
}

/// /proc/sys and friends cannot be written (detected by opening for writing, never by
/// writing), the masked files read empty, / cannot be remounted writable, and a host
/// directory not bound writable cannot get a file.
#[test]
fn kernel_files_and_host_files_cannot_be_changed() {
    if !sandbox_tests::require_root() {
        return;
    }
    // A host directory the sandbox shows (not under the host's /tmp, which the
    // sandbox's own /tmp covers: the checkout may live there) and does not bind.
    let host_dir =
        Path::new("/var/tmp").join(format!("sandbox-containment-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&host_dir);
    std::fs::create_dir_all(&host_dir).unwrap();
    let marker = host_dir.join("marker");
    let script = format!(
        "{PRELUDE}{}",
        r#"
for name, path in [("core_pattern", "/proc/sys/kernel/core_pattern"),
                   ("sysrq", "/proc/sysrq-trigger"),
                   ("sysctl_dir", "/proc/sys/vm/drop_caches")]:
    if os.path.exists(path):
        oserr(name, lambda: os.close(os.open(path, os.O_WRONLY)))
for l in open("/proc/self/mountinfo"):
    fields = l.split()
    if fields[4] == "/proc/sys":
        print("proc_sys_mount", fields[5].split(",")[0])
print("core_pattern_read", "ok" if open("/proc/sys/kernel/core_pattern").read() else "empty")
for path in sys.argv[2:]:
    if os.path.isdir(path):
        print("masked", path, len(os.listdir(path)))
    elif os.path.exists(path):
        print("masked", path, len(open(path, "rb").read()))
res("remount_rw", libc.mount(None, b"/", None, 32, None))  # MS_REMOUNT
res("remount_rw_bind", libc.mount(None, b"/", None, 32 | 4096, None))  # MS_REMOUNT|MS_BIND
oserr("host_marker", lambda: open(sys.argv[1], "w").write("escaped"))
"#
    );
    let masked = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/acpi",
        "/proc/scsi",
        "/proc/asound",
        "/sys/firmware",
    ];
    for caller in CALLERS {
        let mut args = vec!["--", "python3", "-c", &script];
        let m = marker.to_str().unwrap();
        args.push(m);
        args.extend(masked);
        let o = sandbox(caller, &args);
        let out = stdout(&o);
        let f = facts(&o);
        let why = format!("{caller:?}: {out} {}", stderr(&o));
        assert_eq!(code(&o), 0, "{why}");
        // Rootless the files' owner (host root) is not mapped: EACCES comes first;
        // the mount is read-only all the same (below).
        let refused =
            |k: &str| f[k] == "EROFS" || (caller == Caller::Unprivileged && f[k] == "EACCES");
        assert!(refused("core_pattern"), "{why}");
        assert!(refused("sysctl_dir"), "{why}");
        if Path::new("/proc/sysrq-trigger").exists() {
            assert!(refused("sysrq"), "{why}");
        }
        assert_eq!(f["proc_sys_mount"], "ro", "{why}");
        assert_eq!(f["core_pattern_read"], "ok", "still readable: {why}");
        for path in masked {
            let host_has = std::fs::metadata(path).is_ok_and(|m| {
                !m.is_dir() || { std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some()) }
            });
            if host_has {
                assert!(
                    out.contains(&format!("masked {path} 0\n")),
                    "{path} is not empty inside: {why}"
                );
            }
        }
        assert_eq!(f["remount_rw"], "EPERM", "{why}");
        assert_eq!(f["remount_rw_bind"], "EPERM", "{why}");
        // As root the root is a throwaway overlay: the write succeeds inside and never
        // reaches the host. Rootless the root is read-only (and the directory's owner
        // unmapped).
        if caller == Caller::Unprivileged {
            assert!(
                f["host_marker"] == "EROFS" || f["host_marker"] == "EACCES",
                "{why}"
            );
        } else {
            assert_eq!(f["host_marker"], "ok", "{why}");
        }
        assert!(!marker.exists(), "a file was created on the host: {why}");
    }
    let _ = std::fs::remove_dir_all(&host_dir);
}

/// The cgroup (v1 hierarchy or v2) directory a `N:CONTROLLERS:PATH` line of
/// /proc/self/cgroup names, in the host's view.
fn cgroup_dir(line: &str) -> PathBuf {
    let mut it = line.splitn(3, ':');
    let _ = it.next();
    let controllers = it.next().unwrap_or("");
    let path = it.next().unwrap_or("").trim();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let point = mountinfo
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let opts = r.nth(1)?;
            let matches = if controllers.is_empty() {
                fstype == "cgroup2"
            } else {
                fstype == "cgroup"
                    && controllers
                        .split(',')
                        .all(|c| opts.split(',').any(|o| o == c))
            };
            matches.then(|| point.to_string())
        })
        .expect("the hierarchy is mounted");
    Path::new(&point).join(path.trim_start_matches('/'))
}

const FORK_BOMB: &str = r#"
import os, sys
lines = [l for l in open("/proc/self/cgroup") if ":pids:" in l or l.startswith("0::")]
print("cgroup", lines[0].strip() if lines else "none", flush=True)
hold_r, hold_w = os.pipe()
n = 0
for i in range(500):
    try:
        pid = os.fork()
    except OSError as e:
        print("stopped_by", e.errno, flush=True)
        break
    if pid == 0:
        os.close(hold_w)
        os.read(hold_r, 1)  # blocks until the sandbox ends
        os._exit(0)
    n += 1
print("forks", n, flush=True)
# Exit with the children still alive: the sandbox's end must take them.
"#;

/// A fork bomb is bounded by `--pids-limit` (as root by the pids cgroup, which is gone
/// afterwards; rootless by RLIMIT_NPROC), and the sandbox still ends.
#[test]
fn fork_bomb_is_bounded() {
    if !sandbox_tests::require_root() {
        return;
    }
    for caller in CALLERS {
        let o = python(caller, &["--pids-limit", "40"], FORK_BOMB);
        let f = facts(&o);
        let why = format!("{caller:?}: {f:?} {}", stderr(&o));
        assert_eq!(code(&o), 0, "{why}");
        let forks: u32 = f["forks"].parse().unwrap();
        assert!(forks <= 40, "{why}");
        assert!(forks >= 10, "the limit is not absurdly low: {why}");
        assert_eq!(f["stopped_by"], libc::EAGAIN.to_string(), "{why}");
        if caller == Caller::Root {
            let line = &f["cgroup"];
            assert!(line.contains("sandbox-"), "in its own cgroup: {why}");
            let dir = cgroup_dir(line);
            assert!(!dir.exists(), "{} is left behind: {why}", dir.display());
        }
    }
    // --pids-limit 0: no limit of ours (the 60 forks all succeed).
    let o = python(
        Caller::Root,
        &["--pids-limit", "0"],
        &FORK_BOMB.replace("range(500)", "range(60)"),
    );
    let f = facts(&o);
    assert_eq!(f["forks"], "60", "{f:?} {}", stderr(&o));
    assert!(
        !f["cgroup"].contains("sandbox-"),
        "no cgroup of its own: {f:?}"
    );
}

/// `--memory 64m`: a program that fills 200 MB is killed (or fails), and nothing else
/// is touched.
#[test]
fn memory_limit_binds() {
    if !sandbox_tests::require_root() {
        return;
    }
    let o = python(
        Caller::Root,
        &["--memory", "64m"],
        "b = b'x' * (200 << 20)\nprint('allocated', len(b))",
    );
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    assert!(!stdout(&o).contains("allocated"), "{}", stdout(&o));
    // A program within the limit runs.
    let o = python(
        Caller::Root,
        &["--memory", "64m"],
        "b = b'x' * (16 << 20)\nprint('allocated', len(b))",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = sandbox(Caller::Root, &["--memory", "lots", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("--memory"), "{}", stderr(&o));
}

/// `--user` with (uid_t)-1 would leave the ids unchanged (root): refused.
#[test]
fn user_minus_one_is_refused() {
    if !sandbox_tests::require_root() {
        return;
    }
    for user in ["4294967295", "0:4294967295", "4294967295:0"] {
        let o = sandbox(Caller::Root, &["--user", user, "--", "id"]);
        assert_eq!(code(&o), 125, "{user}: {}", stdout(&o));
        assert!(stderr(&o).contains("--user"), "{user}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{user}: the program must not run");
    }
}

/// `--rlimit` binds the program even as root: it has no CAP_SYS_RESOURCE to raise or
/// exceed a hard limit.
#[test]
fn rlimits_bind_root() {
    if !sandbox_tests::require_root() {
        return;
    }
    let script = format!(
        "{PRELUDE}{}",
        r#"
fds = []
try:
    for i in range(100):
        fds.append(os.open("/dev/null", os.O_RDONLY))
    print("nofile unbounded")
except OSError as e:
    print("nofile", errno.errorcode[e.errno])
lim = (ctypes.c_ulong * 2)(4096, 4096)
res("raise_hard", libc.setrlimit(7, lim))  # RLIMIT_NOFILE
for fd in fds:
    os.close(fd)
oserr("fsize", lambda: open("/tmp/big", "wb").write(b"x" * 65536))
"#
    );
    let o = python(
        Caller::Root,
        &["--rlimit", "nofile=32", "--rlimit", "fsize=4096"],
        &script,
    );
    let f = facts(&o);
    let why = format!("{f:?} {}", stderr(&o));
    assert_eq!(code(&o), 0, "{why}");
    assert_eq!(f["nofile"], "EMFILE", "{why}");
    assert_eq!(f["raise_hard"], "EPERM", "{why}");
    assert_eq!(f["fsize"], "EFBIG", "{why}");

    // nproc with --user (no cgroup limit of ours: RLIMIT_NPROC alone).
    let o = python(
        Caller::Root,
        &["--user", "1000", "--pids-limit", "0", "--rlimit", "nproc=8"],
        FORK_BOMB,
    );
    let f = facts(&o);
    let why = format!("{f:?} {}", stderr(&o));
    assert_eq!(code(&o), 0, "{why}");
    assert!(f["forks"].parse::<u32>().unwrap() < 8, "{why}");
    assert_eq!(f["stopped_by"], libc::EAGAIN.to_string(), "{why}");
}

/// Kills the `sandbox` it holds if a test fails before it does (nothing is left
/// running behind a failed test).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// kill -9 of the loader while the program holds a SIGSTOPped child and a ptrace-stopped
/// child: nothing of the sandbox survives. The cgroup the killed loader could not
/// remove is removed by the next sandbox.
#[test]
fn loader_killed_leaves_nothing_even_with_stopped_children() {
    if !sandbox_tests::require_root() {
        return;
    }
    for caller in CALLERS {
        let marker = format!("containment-marker-{}-{caller:?}", std::process::id());
        let script = r#"
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
stopped = os.fork()
if stopped == 0:
    os.kill(os.getpid(), signal.SIGSTOP)
    os._exit(0)
traced = os.fork()
if traced == 0:
    signal.pause()
    os._exit(0)
assert libc.ptrace(16, traced, 0, 0) == 0  # PTRACE_ATTACH: the child stops, traced
os.waitpid(traced, 0)
os.waitpid(stopped, os.WUNTRACED)
lines = [l for l in open("/proc/self/cgroup") if ":pids:" in l or l.startswith("0::")]
print("ready", lines[0].strip() if lines else "none", flush=True)
signal.pause()
"#;
        let mut child = KillOnDrop(
            command(caller)
                .args(["run", "--", "python3", "-c", script, &marker])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .expect("run sandbox"),
        );
        let mut out = BufReader::new(child.0.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let cgroup = line
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("{caller:?}: {line:?}"))
            .trim()
            .to_string();
        let before = processes_with_arg(&marker);
        // The loader, the program and its two children; init (the loader's child,
        // whose command line reads `sandbox-loader:entry init N`) is not counted.
        assert_eq!(before.len(), 4, "{caller:?}: {before:?}");
        let loader = before
            .iter()
            .find(|p| p.comm == "sandbox" || p.comm == "setpriv")
            .map(|p| p.pid)
            .unwrap_or_else(|| panic!("{caller:?}: no loader in {before:?}"));
        let init = ProcInfo::all()
            .into_iter()
            .find(|p| {
                p.ppid == loader
                    && p.cmdline.first().map(String::as_str) == Some("sandbox-loader:entry")
            })
            .unwrap_or_else(|| panic!("{caller:?}: no init under the loader {loader}"))
            .pid;
        let stopped = before.iter().filter(|p| p.state == 'T' || p.state == 't');
        assert_eq!(stopped.count(), 2, "{caller:?}: {before:?}");
        // kill -9 of `sandbox` itself (through setpriv it is the same process: setpriv
        // execs).
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = processes_with_arg(&marker);
            if left.is_empty() && ProcInfo::is_gone(init) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{caller:?}: sandbox processes survive the loader: {left:?}"
            );
            std::thread::yield_now();
        }
        if caller == Caller::Root {
            assert!(cgroup.contains("sandbox-"), "{cgroup}");
            // The killed loader could not remove its cgroup; the next sandbox does (one
            // started meanwhile by a test running in parallel may have done so already).
            let stale = cgroup_dir(&cgroup);
            let o = sandbox(Caller::Root, &["--", "true"]);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            assert!(!stale.exists(), "the next sandbox removes {stale:?}");
        }
    }
}

/// The host's process list does not leak through `/sys`: as root (the overlay root)
/// the sandbox gets the host's sysfs without the cgroup hierarchies the host mounted
/// below it (each one's `tasks` file lists every host process) or tracefs.
#[test]
fn host_cgroup_hierarchies_are_not_shown() {
    if !sandbox_tests::require_root() {
        return;
    }
    let o = sandbox(
        Caller::Root,
        &[
            "--",
            "sh",
            "-c",
            "ls /sys/devices/system/cpu | grep -c '^cpu[0-9]'; \
             find /sys/fs/cgroup -name tasks -o -name cgroup.procs | wc -l; \
             ls /sys/kernel/tracing | wc -l; \
             awk '$5 ~ /^\\/sys/ && $9 ~ /cgroup|tracefs|debugfs|securityfs/' /proc/self/mountinfo | wc -l",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let n: Vec<u32> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert!(n[0] >= 1, "the CPUs are shown: {out}");
    assert_eq!(n[1..], [0, 0, 0], "no cgroup or tracefs: {out}");
}
