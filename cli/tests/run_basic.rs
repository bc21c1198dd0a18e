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
    // The checkout may live under /tmp, which the sandbox replaces: bind the file in.
    let dir = f.parent().unwrap().to_str().unwrap();
    let o = sandbox(&["--ro-bind", dir, "--", f.to_str().unwrap()]);
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
         touch /usr/sandbox-run-basic-test && echo usr-written; \
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
    // The root is writable through a throwaway overlay: the host never sees the file.
    assert!(out.contains("usr-written"), "{out}");
    assert!(!std::path::Path::new("/usr/sandbox-run-basic-test").exists());
    assert!(out.contains("tmp-ok"), "{out}");
    // init, sh, ls, grep (and nothing of the host's).
    let n: usize = lines.last().unwrap().trim().parse().unwrap();
    assert!(n <= 5, "{out}");
}

/// The program has a network namespace of its own, with only a loopback device; with
/// --share-net, the host's.
#[test]
fn program_has_its_own_network() {
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    let host = host.to_string_lossy();
    let script = "readlink /proc/self/ns/net; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '";
    let o = sandbox(&["--", "sh", "-c", script]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("net:["), "{out}");
    assert_ne!(lines[0], host, "{out}");
    assert_eq!(lines[1..], ["lo"], "{out}");
    let o = sandbox(&["--share-net", "--", "sh", "-c", script]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().next(), Some(&*host), "{}", stdout(&o));
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

/// Runs `sandbox run -- sh -c 'echo $$'` under a seccomp filter that refuses what the
/// named spawn methods need, and returns (exit code, stdout, the method the loader
/// logged).
fn run_under_filter(refuse_clone3: bool, refuse_clone_newpid: bool) -> (i32, String, String) {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    use std::collections::BTreeMap;
    use std::os::unix::process::CommandExt;
    let mut programs: Vec<BpfProgram> = Vec::new();
    if refuse_clone3 {
        let f = SeccompFilter::new(
            BTreeMap::from([(libc::SYS_clone3, vec![])]),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            TargetArch::x86_64,
        )
        .unwrap();
        programs.push(f.try_into().unwrap());
    }
    if refuse_clone_newpid {
        let newpid = libc::CLONE_NEWPID as u64;
        let cond = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(newpid),
            newpid,
        )
        .unwrap();
        let f = SeccompFilter::new(
            BTreeMap::from([(libc::SYS_clone, vec![SeccompRule::new(vec![cond]).unwrap()])]),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EINVAL as u32),
            TargetArch::x86_64,
        )
        .unwrap();
        programs.push(f.try_into().unwrap());
    }
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "spawn-{refuse_clone3}-{refuse_clone_newpid}-{}.log",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&log);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandbox"));
    cmd.args(["run", "--", "sh", "-c", "echo $$"])
        .env("SANDBOX_LOG_FILE", &log)
        .env("RUST_LOG", "sandbox_loader=info")
        .stdin(Stdio::null());
    // SAFETY (test): apply_filter only makes prctl/seccomp calls on prebuilt programs.
    unsafe {
        cmd.pre_exec(move || {
            for p in &programs {
                seccompiler::apply_filter(p).map_err(|_| std::io::Error::other("seccomp"))?;
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let method = text
        .lines()
        .filter(|l| l.contains("sandbox init started"))
        .find_map(|l| l.split("method=").nth(1))
        .map(|m| m.trim_matches('"').to_string())
        .unwrap_or_default();
    (code(&o), stdout(&o), method)
}

/// With clone3 refused (by the filter, which init inherits), init and the holder
/// cannot choose PIDs (`set_tid`) either: plain forks make the holder PID 2 and the
/// program PID 3 (docs/LOADER.md, "PIDs").
#[test]
fn clone3_refused_falls_back_to_clone() {
    let (rc, out, method) = run_under_filter(true, false);
    assert_eq!(rc, 0);
    assert_eq!(out.trim(), "3");
    assert_eq!(method, "clone");
}

#[test]
fn clone_with_namespaces_refused_falls_back_to_fork() {
    let (rc, out, method) = run_under_filter(true, true);
    assert_eq!(rc, 0);
    assert_eq!(out.trim(), "3");
    assert_eq!(method, "fork");
}

#[test]
fn clone3_is_the_first_choice() {
    let (rc, out, method) = run_under_filter(false, false);
    assert_eq!(rc, 0);
    assert_eq!(out.trim(), "2");
    assert_eq!(method, "clone3");
}

/// Without root, the sandbox gets a user namespace whose root is the caller: the
/// program sees uid 0, PID 2, and still gets job control decided by the sentry.
#[test]
fn unprivileged_caller_gets_a_user_namespace() {
    // Root is needed to drop to an unprivileged user with setpriv.
    if !sandbox_tests::require_root() {
        return;
    }
    for method in ["clone3", "clone", "fork"] {
        let o = Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_sandbox"))
            .args(["run", "--spawn", method, "--", "sh", "-c"])
            .arg("echo $(id -u) $$; setsid sh -c 'ps -o sid= -p $$'; exit 5")
            .stdin(Stdio::null())
            .output()
            .expect("setpriv (util-linux)");
        assert_eq!(code(&o), 5, "{method}: {}", stderr(&o));
        let out = stdout(&o);
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("0 2"), "{method}: {out}");
        let sid: i32 = lines.next().unwrap_or("").trim().parse().unwrap_or(0);
        assert!(sid > 2, "{method}: setsid inside works: {out}");
    }
}

/// Descriptors the caller leaves open (here fd 7, inherited by `sandbox`) do not reach
/// the sandboxed program: only stdio does.
#[test]
fn inherited_descriptors_do_not_reach_the_program() {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandbox"));
    cmd.args(["run", "--", "sh", "-c", "ls /proc/self/fd"])
        .stdin(Stdio::null());
    // SAFETY (test): dup2 is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::dup2(2, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let fds: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    // 0-2, and the directory ls is reading.
    assert!(!fds.contains(&"7".to_string()), "{fds:?}");
    assert!(fds.len() <= 4, "{fds:?}");
}

/// Signals sent to `sandbox` go where `--signal-mode` says: `process` to the program
/// only, `all` to every sandbox process. (`auto` without a terminal is `process`.)
#[test]
fn signal_modes() {
    use std::io::{BufRead, BufReader};
    // Each shell prints a ready line once its trap is set; the test signals only after
    // both lines arrived (a deadline guards against a hang).
    // When the child is signalled too ("all"), the program waits for it before
    // exiting: the sandbox ends with the program, and the child's trap runs only after
    // its current `sleep`.
    let child = "sh -c \"trap 'echo child-got; exit 0' USR1; echo child-ready; while :; do sleep 0.02; done\" &";
    for (mode, want_child) in [("process", false), ("all", true), ("auto", false)] {
        let on_usr1 = if want_child {
            "echo program-got; wait; exit 0"
        } else {
            "echo program-got; exit 0"
        };
        let script = format!(
            "trap '{on_usr1}' USR1; {child} echo program-ready; while :; do sleep 0.02; done"
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .args(["run", "--signal-mode", mode, "--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.by_ref() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut seen = Vec::new();
        while !(seen.iter().any(|l| l == "program-ready")
            && seen.iter().any(|l| l == "child-ready"))
        {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => seen.push(l),
                Err(e) => {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    panic!("{mode}: no ready lines ({e}); got {seen:?}");
                }
            }
        }
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
        let status = child.wait().unwrap();
        seen.extend(rx.iter());
        let out = seen.join("\n");
        assert!(out.contains("program-got"), "{mode}: {out}");
        assert_eq!(out.contains("child-got"), want_child, "{mode}: {out}");
        assert_eq!(status.code(), Some(0), "{mode}");
    }
}

/// `--user` and `--rlimit` apply to the program.
#[test]
fn user_and_resource_limits() {
    let o = sandbox(&[
        "--user",
        "65534:65534",
        "--rlimit",
        "nofile=64:128",
        "--",
        "sh",
        "-c",
        "id -u; id -g; ulimit -Sn; ulimit -Hn",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "65534\n65534\n64\n128\n");
    let o = sandbox(&["--user", "nobody", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("UID"), "{}", stderr(&o));
}

/// Where user namespaces are refused to an unprivileged caller, the error names the
/// cause and what to check (as bubblewrap does), not an internal step of a fallback.
#[test]
fn refused_user_namespaces_are_explained() {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    use std::collections::BTreeMap;
    use std::os::unix::process::CommandExt;
    if !sandbox_tests::require_root() {
        return;
    }
    let newuser = libc::CLONE_NEWUSER as u64;
    let has_newuser = || {
        SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(newuser),
            newuser,
        )
        .unwrap()])
        .unwrap()
    };
    // What a system without unprivileged user namespaces answers: clone3 unknown to the
    // filter (so glibc and the loader fall back), clone and unshare with CLONE_NEWUSER
    // refused with EPERM.
    let refuse_clone3: BpfProgram = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, vec![])]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TargetArch::x86_64,
    )
    .unwrap()
    .try_into()
    .unwrap();
    let refuse_userns: BpfProgram = SeccompFilter::new(
        BTreeMap::from([
            (libc::SYS_clone, vec![has_newuser()]),
            (libc::SYS_unshare, vec![has_newuser()]),
        ]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        TargetArch::x86_64,
    )
    .unwrap()
    .try_into()
    .unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_sandbox"))
        .args(["run", "--", "true"])
        .stdin(Stdio::null());
    // SAFETY (test): apply_filter only makes prctl/seccomp calls on prebuilt programs.
    unsafe {
        cmd.pre_exec(move || {
            for p in [&refuse_clone3, &refuse_userns] {
                seccompiler::apply_filter(p).map_err(|_| std::io::Error::other("seccomp"))?;
            }
            Ok(())
        });
    }
    let o = cmd.output().expect("setpriv (util-linux)");
    let err = stderr(&o);
    assert_eq!(code(&o), 125, "{err}");
    assert!(
        err.contains("cannot create the sandbox's namespaces: EPERM"),
        "{err}"
    );
    assert!(err.contains("max_user_namespaces"), "{err}");
    assert!(!err.contains("intermediate"), "{err}");
}

/// `/dev`'s nodes work for any user (made with mknod as root, mode 0666 whatever the
/// umask; bound from the host rootless).
#[test]
fn device_nodes_serve_any_user() {
    let o = sandbox(&[
        "--user",
        "65534",
        "--",
        "sh",
        "-c",
        "umask 077; echo x > /dev/null && echo null; head -c 3 /dev/zero | wc -c; \
         head -c 5 /dev/urandom | wc -c; echo x > /dev/full || echo full-refused",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["null", "3", "5", "full-refused"], "{out}");
}
