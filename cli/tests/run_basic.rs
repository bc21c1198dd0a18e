//! `sandbox run` without a terminal: exit statuses, isolation, spawn fallbacks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};

fn sandbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sandbox")
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

#[test]
fn exit_status_is_the_programs() {
    assert_eq!(code(&sandbox(&["--", "true"])), 0);
    assert_eq!(code(&sandbox(&["--", "false"])), 1);
    assert_eq!(code(&sandbox(&["--", "sh", "-c", "exit 3"])), 3);
}

#[test]
fn killed_by_signal_is_128_plus_n() {
    let o = sandbox(&["--", "sh", "-c", "kill -INT $$"]);
    assert_eq!(code(&o), 130, "{}", stderr(&o));
    let o = sandbox(&["--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(code(&o), 143, "{}", stderr(&o));
}

#[test]
fn missing_program_is_127_with_one_line() {
    let o = sandbox(&["--", "no-such-program-xyz"]);
    assert_eq!(code(&o), 127);
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no-such-program-xyz"), "{err}");
}

#[test]
fn non_executable_is_126() {
    let f = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("not-executable");
    std::fs::write(&f, "echo should not run\n").unwrap();
    let o = sandbox(&["--", f.to_str().unwrap()]);
    assert_eq!(code(&o), 126, "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn program_runs_isolated() {
    let host_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let o = sandbox(&[
        "--hostname",
        "inside",
        "--",
        "sh",
        "-c",
        "echo pid=$$; readlink /proc/self/ns/pid; hostname; \
         touch /usr/sandbox-test 2>/dev/null && echo usr-writable; \
         touch /tmp/x && echo tmp-ok; ls /proc | grep -c '^[0-9]'",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "pid=2",
        "the program is init's first child: {out}"
    );
    assert_ne!(lines[1], host_ns.to_string_lossy(), "{out}");
    assert_eq!(lines[2], "inside");
    assert!(!out.contains("usr-writable"), "{out}");
    assert!(out.contains("tmp-ok"), "{out}");
    // init, sh, ls, grep (and nothing of the host's).
    let n: usize = lines.last().unwrap().trim().parse().unwrap();
    assert!(n <= 5, "{out}");
}

#[test]
fn job_control_calls_are_decided_by_the_sentry() {
    // setsid from a process-group leader is EPERM; from a fresh child it works, and the
    // host agrees (ps shows the new session).
    let o = sandbox(&[
        "--",
        "sh",
        "-c",
        "setsid sh -c 'ps -o pid=,pgid=,sid= -p $$'; \
         python3 -c 'import os; os.setpgid(0, 0); os.setsid()' 2>&1 | tail -1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let first: Vec<i32> = out
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(first[0], first[1], "{out}");
    assert_eq!(first[0], first[2], "{out}");
    assert!(
        out.contains("[Errno 1]"),
        "a group leader's setsid is EPERM: {out}"
    );
    assert!(!stderr(&o).contains("lockstep"), "{}", stderr(&o));
}

#[test]
fn every_spawn_method_works() {
    for m in ["clone3", "clone", "fork"] {
        let o = sandbox(&["--spawn", m, "--", "sh", "-c", "echo $$; exit 7"]);
        assert_eq!(code(&o), 7, "{m}: {}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "2", "{m}");
    }
}

#[test]
fn bad_arguments_are_clear_errors() {
    let o = sandbox(&["--env", "NOEQUALS", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("KEY=VALUE"), "{}", stderr(&o));
    let o = sandbox(&["--bind", "/no/such/dir", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("/no/such/dir"), "{}", stderr(&o));
    let o = sandbox(&["--tty", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("terminal"), "{}", stderr(&o));
}
