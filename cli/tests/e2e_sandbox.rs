//! What only the sandbox does: signals sent to `sandbox` itself, terminal attacks
//! refused, its own exit statuses, and no process outliving it.
//!
//! These have no direct twin (a shell alone on a pty behaves differently on purpose).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use sandbox_tests::term::{
    output_with_timeout, processes_with_arg, Launcher, ProcInfo, Shell, Signal, DEFAULT_TIMEOUT,
    MARKER_VAR,
};

fn sandbox() -> Launcher {
    Launcher::sandbox(env!("CARGO_BIN_EXE_sandbox"))
}

/// SIGINT sent to the `sandbox` process from outside (as `kill -INT`, not a key)
/// while `sleep 100` runs in the foreground reaches the terminal's foreground group:
/// the sleep dies (`$?` = 130) and the shell lives on.
#[test]
fn sandbox_signal_from_outside() {
    let s = sandbox().shell(Shell::Bash);
    let line = s.start("sleep 100").unwrap();
    s.wait_foreground(&["sleep", "100"]).unwrap();
    s.kill(Signal::SIGINT).unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(s.last_status().unwrap(), 130);
    assert_eq!(s.run("echo still-here").unwrap(), "still-here");
}

/// TIOCSTI (faking typed input on the borrowed terminal) is refused with EPERM.
#[test]
fn sandbox_tiocsti_refused() {
    let s = sandbox().shell(Shell::Bash);
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    // Had the "x" been injected, it would sit on the next prompt line and the wait
    // for an empty prompt would fail.
    let out = s
        .run(&format!(
            "{python} -c 'import fcntl,termios; fcntl.ioctl(0, termios.TIOCSTI, \"x\")'"
        ))
        .unwrap();
    assert!(out.contains("PermissionError"), "{out}");
    assert_ne!(s.last_status().unwrap(), 0);
}

fn run_sandbox(args: &[&str]) -> std::process::Output {
    output_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_sandbox")).args(args),
        DEFAULT_TIMEOUT,
    )
    .unwrap()
}

/// `sandbox run` exits with the program's status: its exit code, 128 + N when a
/// signal killed it, 127 when the program does not exist (with a one-line message),
/// 126 when it is not executable.
#[test]
fn sandbox_exit_statuses() {
    let out = run_sandbox(&["run", "--", "false"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    let out = run_sandbox(&["run", "--", "sh", "-c", "kill -INT $$"]);
    assert_eq!(out.status.code(), Some(130), "{out:?}");

    let out = run_sandbox(&["run", "--", "/nonexistent/e2e-no-such-program"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "one line of explanation expected:\n{stderr}"
    );
    assert!(
        lines[0].contains("e2e-no-such-program"),
        "the message names the program:\n{stderr}"
    );

    // Not under /tmp: the sandbox has a private /tmp.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sandbox-e2e-noexec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("not-executable");
    std::fs::write(&file, "#!/bin/sh\necho should not run\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let bind = dir.to_str().unwrap();
    let out = run_sandbox(&["run", "--ro-bind", bind, "--", file.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(126), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("should not run"));
}

/// `kill -9` of the `sandbox` process leaves none of its processes alive: neither the
/// shell, nor its foreground job, nor a background job.
#[test]
fn sandbox_kill9_leaves_nothing() {
    let s = sandbox().shell(Shell::Bash);
    // A duration no other process uses, to find the sleeps on the host.
    let marker = format!("1234.{}", std::process::id());
    s.run(&format!("sleep {marker} &")).unwrap();
    s.start(&format!("sleep {marker}")).unwrap();
    s.wait_until("both sleeps", DEFAULT_TIMEOUT, || {
        processes_with_arg(&marker).len() == 2
    })
    .unwrap();
    let term_marker = s.marker().to_string();

    s.kill(Signal::SIGKILL).unwrap();
    s.wait_exit(DEFAULT_TIMEOUT).unwrap();

    let start = Instant::now();
    let left = loop {
        let left: Vec<ProcInfo> = ProcInfo::all()
            .into_iter()
            .filter(|p| p.state != 'Z')
            .filter(|p| {
                p.cmdline.iter().any(|a| a == &marker)
                    || ProcInfo::has_env(p.pid, MARKER_VAR, &term_marker)
            })
            .collect();
        if left.is_empty() || start.elapsed() > Duration::from_secs(5) {
            break left;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        left.is_empty(),
        "processes left 5 s after kill -9 of sandbox: {left:#?}"
    );
}

/// `sandbox` started as a background job of the user's shell: a sandboxed program
/// reading the terminal stops the whole job ("Stopped (tty input)", as for any
/// background reader), and `fg` lets the read go on with what the user types. With
/// `vim` run directly in the sandbox, ^Z stops `sandbox` itself (suspend pass-through)
/// and `fg` brings vim back.
#[test]
fn sandbox_as_a_job_of_the_users_shell() {
    let s = Launcher::Direct.shell(Shell::Bash);
    let bin = env!("CARGO_BIN_EXE_sandbox");
    s.run(&format!("{bin} run --tty -- sh -c 'read x; echo got-$x' &"))
        .unwrap();
    s.wait_until("the sandbox job stopped", DEFAULT_TIMEOUT, || {
        s.processes()
            .iter()
            .any(|p| p.state == 'T' && p.cmdline.first().is_some_and(|a| a == bin))
    })
    .unwrap();
    let jobs = s.run("jobs -l").unwrap();
    assert!(jobs.contains("Stopped (tty input)"), "{jobs}");
    let line = s.start("fg").unwrap();
    // The terminal's real foreground is now the sandbox job (the loader's group); its
    // reader is inside: wait for the loader to run again and for the reader's `read`
    // to have been let through (blocked in the host's read of the terminal, no longer
    // held in a seccomp notification).
    s.wait_until("the sandbox job running", DEFAULT_TIMEOUT, || {
        s.processes().iter().any(|p| {
            // The loader: the shell's child (the terminal restorer runs the same binary).
            p.ppid == s.pid()
                && p.state != 'T'
                && p.pgrp == p.pid
                && p.cmdline.first().is_some_and(|a| a == bin)
        })
    })
    .unwrap();
    s.wait_until(
        "the sandboxed sh reading the terminal",
        DEFAULT_TIMEOUT,
        || {
            s.processes().iter().any(|p| {
                p.cmdline == ["sh", "-c", "read x; echo got-$x"]
                    && ProcInfo::blocked_in(p.pid, &[libc::SYS_read])
            })
        },
    )
    .unwrap();
    s.send("typed\r").unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    assert!(s.screen_text().contains("got-typed"), "{}", s.screen_text());

    // Suspend pass-through: vim directly in the sandbox, ^Z.
    let line = s
        .start(&format!("{bin} run --tty -- vim -u NONE -i NONE"))
        .unwrap();
    s.wait_for(
        sandbox_tests::term::until("vim's empty buffer", |sc| {
            sc.rows().iter().filter(|r| r.starts_with('~')).count() > 3
        }),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    s.send("\x1a").unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    let jobs = s.run("jobs -l").unwrap();
    assert!(jobs.contains("Stopped"), "sandbox stopped with vim: {jobs}");
    let line = s.start("fg").unwrap();
    s.wait_for(
        sandbox_tests::term::until("vim back", |sc| {
            sc.rows().iter().filter(|r| r.starts_with('~')).count() > 3
        }),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    s.send(":q!\r").unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(s.last_status().unwrap(), 0);
}

/// `--tty=pty` puts the user's terminal in raw mode while the sandbox runs and restores
/// it on every exit path: here SIGTERM and SIGHUP sent to `sandbox` itself (forwarded
/// to the sandbox's foreground job, which ends, and so does `sandbox`).
#[test]
fn pty_mode_restores_the_users_terminal_when_signalled() {
    let s = Launcher::Direct.shell(Shell::Bash);
    let bin = env!("CARGO_BIN_EXE_sandbox");
    for (sig, status) in [(Signal::SIGTERM, 143), (Signal::SIGHUP, 129)] {
        let line = s
            .start(&format!("{bin} run --tty=pty -- sleep 1234.5"))
            .unwrap();
        let mut loader = 0;
        s.wait_until("the sandbox running sleep", DEFAULT_TIMEOUT, || {
            let procs = s.processes();
            let sleeping = procs
                .iter()
                .any(|p| p.cmdline.first().is_some_and(|a| a == "sleep"));
            // The loader is the shell's child (init and the terminal restorer run the
            // same binary and lead groups of their own too; after a PID wrap they may
            // come first).
            if let Some(p) = procs.iter().find(|p| {
                p.ppid == s.pid() && p.pgrp == p.pid && p.cmdline.first().is_some_and(|a| a == bin)
            }) {
                loader = p.pid;
            }
            sleeping && loader > 0
        })
        .unwrap();
        // Raw while it runs.
        let t = s.termios().unwrap();
        assert!(!t
            .local_flags
            .contains(nix::sys::termios::LocalFlags::ICANON));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(loader), sig).unwrap();
        s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
        assert_eq!(s.last_status().unwrap(), status);
        let modes = s.run("stty -a").unwrap();
        assert!(
            modes.contains(" icanon") && modes.contains(" echo "),
            "cooked again after {sig:?}: {modes}"
        );
    }
}
