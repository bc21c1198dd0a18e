//! The program's seccomp policy as a hostile program meets it: `sandbox run -- python3`
//! making raw syscalls (x86_64 numbers) and reporting what the kernel answered.
#![cfg(target_arch = "x86_64")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};

use sandbox_tests::python::{interpreter as python, SYSCALL_PRELUDE as PRELUDE};

fn sandbox(options: &[&str], body: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .arg("run")
        .args(options)
        .arg("--")
        .arg(python())
        .arg("-c")
        .arg(format!("{PRELUDE}\n{body}"))
        .stdin(Stdio::null())
        .output()
        .expect("run sandbox")
}

fn results(options: &[&str], body: &str) -> HashMap<String, i64> {
    let out = sandbox(options, body);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().parse().unwrap()))
        .collect()
}

const EPERM: i64 = -(libc::EPERM as i64);
const ENOSYS: i64 = -(libc::ENOSYS as i64);

#[test]
fn escapes_and_kernel_attack_surface_fail_with_eperm() {
    let body = r#"
res["mount"] = sc(165, b"none", b"/tmp", b"tmpfs", 0, 0)
res["umount2"] = sc(166, b"/proc", 2)
res["unshare_newuser"] = sc(272, 0x10000000)
res["unshare_newns"] = sc(272, 0x20000)
# clone(CLONE_NEWNS | SIGCHLD): if it ever succeeded, the child leaves at once.
r = sc(56, 0x20000 | 17, 0, 0, 0, 0)
if r == 0:
    os._exit(0)
res["clone_newns"] = r
params = ctypes.create_string_buffer(120)
res["io_uring_setup"] = sc(425, 4, params)
res["bpf"] = sc(321, 0, ctypes.create_string_buffer(128), 128)
res["keyctl"] = sc(250, 0, -3, 0)
res["add_key"] = sc(248, b"user", b"x", b"y", 1, -3)
res["userfaultfd"] = sc(323, 1)
res["perf_event_open"] = sc(298, ctypes.create_string_buffer(128), 0, -1, -1, 0)
res["open_by_handle_at"] = sc(304, -100, ctypes.create_string_buffer(136), 0)
res["name_to_handle_at"] = sc(303, -100, b"/", 0, 0, 0)
res["kexec_load"] = sc(246, 0, 0, 0, 0)
res["init_module"] = sc(175, 0, 0, b"")
res["finit_module"] = sc(313, 0, b"", 0)
res["pivot_root"] = sc(155, b"/", b"/")
res["setns"] = sc(308, 0, 0)
res["fsopen"] = sc(430, b"tmpfs", 0)
res["open_tree"] = sc(428, -100, b"/", 1)
res["open_tree_attr"] = sc(467, -100, b"/", 1, 0, 0)
res["swapon"] = sc(167, b"/x", 0)
res["settimeofday"] = sc(164, 0, 0)
res["iopl"] = sc(172, 3)
res["modify_ldt"] = sc(154, 0, 0, 0)
res["personality_no_aslr"] = sc(135, 0x0040000)
res["lsm_set_self_attr"] = sc(460, 0, 0, 0, 0)
report()
"#;
    let r = results(&[], body);
    let mut wrong: Vec<String> = r
        .iter()
        .filter(|(_, &v)| v != EPERM)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    wrong.sort();
    assert!(wrong.is_empty(), "not EPERM: {wrong:?}");
    assert_eq!(r.len(), 27, "{r:?}");
}

#[test]
fn numbers_the_policy_does_not_know_fail_with_enosys() {
    let body = r#"
res["nr_1000"] = sc(1000)
res["nr_400_unassigned"] = sc(400)
res["nr_470_newer"] = sc(470)
res["nr_512_x32_only"] = sc(512)
res["x32_getpid"] = sc(0x40000000 | 39)
res["x32_mount"] = sc(0x40000000 | 165, 0, 0, 0, 0, 0)
res["clone3"] = sc(435, ctypes.create_string_buffer(88), 88)
report()
"#;
    let r = results(&[], body);
    for (k, v) in &r {
        assert_eq!(*v, ENOSYS, "{k}: {r:?}");
    }
    assert_eq!(r.len(), 7, "{r:?}");
}

#[test]
fn newest_syscalls_get_their_classified_answer() {
    let body = r#"
# listmount(LSMT_ROOT): the sandbox's own mounts.
req = ctypes.create_string_buffer(struct.pack("<IIQQ", 24, 0, 0xffffffffffffffff, 0))
ids = (ctypes.c_uint64 * 256)()
n = sc(458, req, ids, 256, 0)
res["listmount_count"] = n
# statmount(first mount, STATMOUNT_SB_BASIC).
if n > 0:
    req = ctypes.create_string_buffer(struct.pack("<IIQQ", 24, 0, ids[0], 1))
    out = ctypes.create_string_buffer(4096)
    res["statmount"] = sc(457, req, out, 4096, 0)
# mseal on a fresh page: sealed, so munmap then fails with EPERM.
page = libc.mmap(None, 4096, 3, 0x22, -1, 0)
res["mseal"] = sc(462, page, 4096, 0)
res["munmap_sealed"] = sc(11, page, 4096)
# setxattrat(AT_FDCWD, file, 0, "user.sandbox", {value, size, flags}, 16) in /tmp.
path = b"/tmp/xattr-probe"
open(path, "w").close()
value = ctypes.create_string_buffer(b"1", 1)
args = ctypes.create_string_buffer(struct.pack("<QII", ctypes.addressof(value), 1, 0))
res["setxattrat"] = sc(463, -100, path, 0, b"user.sandbox", args, 16)
res["xattr_is_set"] = 1 if os.getxattr(path, "user.sandbox") == b"1" else 0
res["fchmodat2"] = sc(452, -100, path, 0o600, 0)
res["cachestat_fd_missing"] = sc(451, 9999, 0, 0, 0)
res["lsm_set_self_attr"] = sc(460, 0, 0, 0, 0)
report()
"#;
    let r = results(&[], body);
    assert!(r["listmount_count"] > 0, "{r:?}");
    assert_eq!(r["statmount"], 0, "{r:?}");
    assert_eq!(r["mseal"], 0, "{r:?}");
    assert_eq!(r["munmap_sealed"], EPERM, "the kernel's seal, {r:?}");
    assert_eq!(r["setxattrat"], 0, "{r:?}");
    assert_eq!(r["xattr_is_set"], 1, "{r:?}");
    assert_eq!(r["fchmodat2"], 0, "{r:?}");
    assert_eq!(r["cachestat_fd_missing"], -(libc::EBADF as i64), "{r:?}");
    assert_eq!(r["lsm_set_self_attr"], EPERM, "denied, {r:?}");
}

#[test]
fn seccomp_allow_lets_one_syscall_through() {
    // name_to_handle_at of "/" with a too-small handle: the kernel answers EOVERFLOW
    // (and writes the size it needs); the policy alone answers EPERM.
    let body = r#"
h = ctypes.create_string_buffer(struct.pack("<Ii", 0, 0) + b"\0" * 128)
mnt = ctypes.c_int(0)
res["name_to_handle_at"] = sc(303, -100, b"/", h, ctypes.byref(mnt), 0)
res["modify_ldt"] = sc(154, 0, 0, 0)
report()
"#;
    // --read-only: "/" is then the host's own filesystem, which has file handles (the
    // default overlay answers EOPNOTSUPP).
    let denied = results(&["--read-only"], body);
    assert_eq!(denied["name_to_handle_at"], EPERM, "{denied:?}");
    let allowed = results(
        &["--read-only", "--seccomp-allow", "name_to_handle_at"],
        body,
    );
    assert_eq!(
        allowed["name_to_handle_at"],
        -(libc::EOVERFLOW as i64),
        "{allowed:?}"
    );
    assert_eq!(
        allowed["modify_ldt"], EPERM,
        "only the named syscall, {allowed:?}"
    );
}

#[test]
fn unknown_seccomp_allow_name_is_a_sandbox_error() {
    let out = sandbox(&["--seccomp-allow", "no_such_syscall"], "print('ran')");
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--seccomp-allow") && err.contains("no_such_syscall"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ran"));
}

#[test]
fn no_seccomp_switches_the_policy_off() {
    let r = results(
        &["--no-seccomp"],
        "res['nr_1000'] = sc(1000)\nres['modify_ldt'] = sc(154, 0, 0, 0)\nreport()",
    );
    // The kernel's own answers: 1000 does not exist; reading an empty LDT returns 0.
    assert_eq!(r["nr_1000"], ENOSYS, "{r:?}");
    assert_eq!(r["modify_ldt"], 0, "{r:?}");
}

#[test]
fn ordinary_programs_keep_what_they_need() {
    let body = r#"
import signal, socket, subprocess, threading
# ptrace on its own child (gdb, strace).
pid = os.fork()
if pid == 0:
    signal.pause()
    os._exit(0)
res["ptrace_seize_own_child"] = sc(101, 0x4206, pid, 0, 0)
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
# Threads, sockets, pipes, a shell pipeline.
t = threading.Thread(target=lambda: None); t.start(); t.join()
a, b = socket.socketpair(); a.send(b"x"); res["socketpair"] = len(b.recv(1))
res["pipeline"] = int(subprocess.run(["sh", "-c", "echo 41 | (read n; exit $((n + 1)))"]).returncode)
# fork as glibc makes it (clone3 ENOSYS, then clone) and a plain unshare of files.
res["unshare_files"] = sc(272, 0x400)
report()
"#;
    let r = results(&[], body);
    assert_eq!(r["ptrace_seize_own_child"], 0, "{r:?}");
    assert_eq!(r["socketpair"], 1, "{r:?}");
    assert_eq!(r["pipeline"], 42, "{r:?}");
    assert_eq!(r["unshare_files"], 0, "{r:?}");
}

/// init (PID 1 of the sandbox) runs under its own filter: /proc/1/status counts it.
#[test]
fn init_runs_under_its_own_filter() {
    let out = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args([
            "run",
            "--",
            "sh",
            "-c",
            "grep ^Seccomp /proc/1/status; exit 5",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run sandbox");
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert_eq!(field("Seccomp:"), "2", "filter mode: {text}");
    // Its allow-list (more if init inherited others); 0 without it.
    let filters: u32 = field("Seccomp_filters:").parse().unwrap();
    assert!(filters >= 1, "{text}");
}
