//! The loader's process tracker (loader/src/tracker.rs): the sentry learns exits and
//! reaps from events and new processes from their notified calls, stays exact when a
//! sandbox PID is reused, and does so without walking /proc on the common path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_tests::python;
use std::process::{Command, Output, Stdio};

fn sandbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sandbox")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A counter of the loader's "sandbox finished" log line.
fn finished_field(log: &str, key: &str) -> u64 {
    let line = log
        .lines()
        .rfind(|l| l.contains("sandbox finished"))
        .unwrap_or_else(|| panic!("no 'sandbox finished' line in:\n{log}"));
    let at = line
        .find(&format!(" {key}="))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + key.len()
        + 2;
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// A sandbox PID given to a new process after its former holder was reaped (what a
/// PID wrap-around does; forced here with clone3's `set_tid`, which needs
/// CAP_CHECKPOINT_RESTORE in the sandbox's PID namespace only — no host setting is
/// touched) names a new process: the sentry must not answer with the old one's facts.
/// The first holder made itself a process-group leader; the second is not one, so its
/// setsid() must succeed (a sentry still holding the first would refuse it, EPERM).
#[test]
fn a_reused_sandbox_pid_is_a_new_process() {
    if !sandbox_tests::require_root() {
        return;
    }
    let script = r#"
import os, sys, ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def clone3_with_pid(pid):
    tid = (ctypes.c_int * 1)(pid)
    # struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, stack,
    # stack_size, tls, set_tid, set_tid_size, cgroup
    args = struct.pack("11Q", 0, 0, 0, 0, 17, 0, 0, 0, ctypes.addressof(tid), 1, 0)
    buf = ctypes.create_string_buffer(args, len(args))
    r = libc.syscall(435, buf, len(args))
    return r if r >= 0 else -ctypes.get_errno()
r, w = os.pipe()
for round in range(3):
    c1 = os.fork()
    if c1 == 0:
        os.setpgid(0, 0)   # notified: the sentry knows c1 as a group leader
        os._exit(0)
    os.waitpid(c1, 0)
    c2 = clone3_with_pid(c1)
    if c2 == 0:
        try:
            os.setsid(); res = "0"
        except OSError as e:
            res = f"-{e.errno}"
        os.write(w, f"setsid={res} sid={os.getsid(0)} pid={os.getpid()}\n".encode())
        os._exit(0)
    if c2 < 0:
        print(f"clone3={c2}"); sys.exit(1)
    os.waitpid(c2, 0)
    print(f"c1={c1} c2={c2}", os.read(r, 200).decode().strip())
"#;
    let o = sandbox(&[
        "run",
        "--cap-add",
        "CHECKPOINT_RESTORE",
        "--seccomp-allow",
        "clone3",
        "--",
        python::interpreter(),
        "-c",
        script,
    ]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}\n{err}");
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        let c1 = f[0].strip_prefix("c1=").unwrap();
        assert_eq!(f[1], format!("c2={c1}"), "the PID was not reused: {l}");
        assert_eq!(
            f[2], "setsid=0",
            "the new holder's setsid was refused: {l}\n{err}"
        );
        assert_eq!(f[3], format!("sid={c1}"), "{l}");
    }
    assert!(!err.contains("lockstep"), "{err}");
}

/// Processes that come and go (see [`exits_and_reaps_are_learnt_from_events`]).
const GROUPS_SCRIPT: &str = r#"
import os
kids = []
for i in range(60):
    c = os.fork()
    if c == 0:
        os.setpgid(0, 0)
        os._exit(0)
    kids.append(c)
for c in kids:
    os.waitid(os.P_PID, c, os.WEXITED | os.WNOWAIT)
res = []
def attempt(name, pgid):
    try:
        os.setpgid(0, pgid); res.append(f"{name}=0")
    except OSError as e:
        res.append(f"{name}=-{e.errno}")
attempt("zombie_group", kids[0])
attempt("own_group", 0)
for c in kids:
    os.waitpid(c, 0)
attempt("reaped_group", kids[1])
attempt("own_group_again", 0)
print(" ".join(res))
"#;

/// What [`GROUPS_SCRIPT`] prints when the sandbox answers as Linux does.
const GROUPS_EXPECTED: &str = "zombie_group=0 own_group=0 reaped_group=-1 own_group_again=0";

/// Processes that come and go: a group whose members have exited but are not reaped
/// still exists (joining it works), once they are reaped it does not (EPERM), as in
/// Linux; the loader learnt the 60 adoptions and the exits and reaps from events, with
/// no walk of /proc other than the one EPERM's re-check makes, and no lockstep
/// violation.
#[test]
fn exits_and_reaps_are_learnt_from_events() {
    if !sandbox_tests::require_root() {
        return;
    }
    let o = sandbox(&[
        "--log-level",
        "info",
        "run",
        "--",
        python::interpreter(),
        "-c",
        GROUPS_SCRIPT,
    ]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert_eq!(out.trim(), GROUPS_EXPECTED, "{err}");
    assert!(finished_field(&err, "adopted") >= 60, "{err}");
    assert!(finished_field(&err, "exit_events") >= 60, "{err}");
    assert!(finished_field(&err, "full_walks") <= 1, "{err}");
    assert!(!err.contains("lockstep"), "{err}");
}

/// Short of descriptors for a pidfd per process (the loader's limit at 300, of which
/// the tracker leaves 256 for everything else), the loader falls back to walking /proc
/// before each decision, and the answers stay Linux's.
#[test]
fn out_of_descriptors_the_tracker_walks_and_stays_exact() {
    if !sandbox_tests::require_root() {
        return;
    }
    let o = Command::new("prlimit")
        .arg("--nofile=300:300")
        .arg(env!("CARGO_BIN_EXE_sandbox"))
        .args(["--log-level", "info", "run", "--"])
        .args([python::interpreter(), "-c", GROUPS_SCRIPT])
        .stdin(Stdio::null())
        .output()
        .expect("prlimit (util-linux) runs the sandbox");
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert_eq!(out.trim(), GROUPS_EXPECTED, "{err}");
    assert!(finished_field(&err, "full_walks") > 1, "{err}");
    assert!(!err.contains("lockstep"), "{err}");
}
