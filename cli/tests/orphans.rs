//! Groups left behind by an exiting parent are orphaned as on Linux: a job whose
//! parent exits is reparented to the sandbox's init (PID 1, in a session of its own),
//! so its group has no parent in its session any more; Linux then sends SIGHUP and
//! SIGCONT to the group when it has a stopped member (`kill_orphaned_pgrp`), so a
//! stopped job does not stay stopped forever.
//!
//! Each case runs the same program on the host (the reference: a fresh session, on a
//! fresh pty or with no terminal) and inside `sandbox run` (no terminal, `--tty` on a
//! throwaway pty, `--tty=pty`), and the outcomes must be the same and be Linux's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use sandbox_tests::term::{output_with_timeout, Launcher, DEFAULT_TIMEOUT};

/// The program: a "shell" (a child) starts a job in a process group of its own, the
/// job stops itself (SIGSTOP), the shell sees it stopped and exits, leaving the job
/// behind (`reader` mode: the job is not stopped; once its parent has gone it reads
/// the terminal, from the background, and reports the errno). The program then reports what the job went through, over a pipe the job
/// holds: the names of the signals its handlers saw (`trap` mode), `running` once it
/// runs again, and `gone` at end of file (it died or exited); `still-stopped` if
/// nothing happened within the deadline (argv[2] seconds). One line, `RESULT: ...`.
const LEFT_BEHIND: &str = r#"
import errno, os, select, signal, sys, time
mode, wait_s = sys.argv[1], float(sys.argv[2])
# The reference is Linux with default dispositions: a caller started under nohup (or
# anything else that ignores SIGHUP) would hand its SIG_IGN down through exec.
signal.signal(signal.SIGHUP, signal.SIG_DFL)
signal.signal(signal.SIGCONT, signal.SIG_DFL)
rd, wr = os.pipe()
shell = os.fork()
if shell == 0:
    shell_pid = os.getpid()
    job = os.fork()
    if job == 0:
        os.setpgid(0, 0)
        if mode == "reader":
            # A background job left behind reads the terminal once its parent is gone.
            deadline = time.monotonic() + wait_s
            while os.getppid() == shell_pid and time.monotonic() < deadline:
                time.sleep(0.01)
            try:
                os.read(0, 1)
                os.write(wr, b"read\n")
            except OSError as e:
                os.write(wr, (errno.errorcode[e.errno] + "\n").encode())
            os._exit(0)
        if mode == "trap":
            def seen(s, f):
                os.write(wr, (signal.Signals(s).name + "\n").encode())
            signal.signal(signal.SIGHUP, seen)
            signal.signal(signal.SIGCONT, seen)
        os.kill(os.getpid(), signal.SIGSTOP)
        os.write(wr, b"running\n")
        os._exit(0)
    try:
        os.setpgid(job, job)
    except OSError:
        pass
    if mode != "reader":
        os.waitpid(job, os.WUNTRACED)
    os._exit(0)
os.close(wr)
os.waitpid(shell, 0)
out = []
deadline = time.monotonic() + wait_s
while True:
    left = deadline - time.monotonic()
    if left <= 0 or not select.select([rd], [], [], left)[0]:
        out.append("still-stopped")
        break
    b = os.read(rd, 100)
    if not b:
        out.append("gone")
        break
    out += b.decode().split()
print("RESULT:", " ".join(out), flush=True)
"#;

/// How long the program waits for the job to move (Linux signals it at once, when
/// the shell exits; this only bounds a failure).
const WAIT_S: &str = "20";

/// What Linux does: default dispositions, the job dies of SIGHUP; with handlers, it
/// sees SIGHUP then SIGCONT and runs on.
fn expected(mode: &str) -> &'static str {
    match mode {
        "trap" => "SIGHUP SIGCONT running gone",
        // A background read by an orphaned group: EIO, no SIGTTIN (it would stop
        // forever: nobody is left to continue it).
        "reader" => "EIO gone",
        _ => "gone",
    }
}

fn program(mode: &str) -> Vec<String> {
    vec![
        sandbox_tests::python::interpreter().to_string(),
        "-c".to_string(),
        LEFT_BEHIND.to_string(),
        mode.to_string(),
        WAIT_S.to_string(),
    ]
}

fn result_of(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("RESULT:"))
        .map(|r| r.trim().to_string())
        .unwrap_or_else(|| panic!("no RESULT line in {text:?}"))
}

/// No terminal: on the host in a fresh session (`setsid`), and in `sandbox run`.
fn without_terminal(mode: &str) {
    let argv = program(mode);
    let host = output_with_timeout(
        Command::new("setsid").arg("--wait").args(&argv),
        DEFAULT_TIMEOUT * 2,
    )
    .unwrap();
    let host = result_of(&String::from_utf8_lossy(&host.stdout));
    let inside = output_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .args(["run", "--"])
            .args(&argv),
        DEFAULT_TIMEOUT * 2,
    )
    .unwrap();
    assert_eq!(
        inside.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&inside.stderr)
    );
    let inside = result_of(&String::from_utf8_lossy(&inside.stdout));
    assert_eq!(host, expected(mode), "Linux itself");
    assert_eq!(inside, host, "inside the sandbox, as on Linux");
}

/// On a fresh pty: the program leads the pty's session on the host (the reference),
/// or is run by `sandbox run --tty[=pty]` on it. The sandboxed session must end with
/// no lockstep violation (checked when the terminal is dropped).
fn on_a_pty(launcher: &Launcher, mode: &str) -> String {
    let t = launcher.spawn(&program(mode), &[], 24, 200).unwrap();
    let screen = t
        .wait_for("RESULT:", DEFAULT_TIMEOUT * 2)
        .unwrap_or_else(|e| panic!("{launcher:?}: {e}"));
    let r = result_of(&screen.text());
    let status = t.wait_exit(DEFAULT_TIMEOUT).unwrap();
    assert_eq!(status.code(), Some(0), "{launcher:?}");
    r
}

fn on_ptys(mode: &str) {
    let host = on_a_pty(&Launcher::Direct, mode);
    assert_eq!(host, expected(mode), "Linux itself");
    let bin = env!("CARGO_BIN_EXE_sandbox");
    for launcher in [Launcher::sandbox(bin), Launcher::sandbox_pty(bin)] {
        let inside = on_a_pty(&launcher, mode);
        assert_eq!(inside, host, "{launcher:?}: as on Linux");
    }
}

/// A stopped job left behind dies of the SIGHUP its orphaned group gets.
#[test]
fn stopped_job_left_behind_dies_of_sighup_without_terminal() {
    without_terminal("default");
}

/// With handlers, it sees SIGHUP then SIGCONT and runs again.
#[test]
fn stopped_job_left_behind_gets_sighup_then_sigcont_without_terminal() {
    without_terminal("trap");
}

#[test]
fn stopped_job_left_behind_dies_of_sighup_on_a_terminal() {
    on_ptys("default");
}

#[test]
fn stopped_job_left_behind_gets_sighup_then_sigcont_on_a_terminal() {
    on_ptys("trap");
}

/// `$$` and `$PPID` of the program: PID 2, whose parent is the holder of its session
/// (PID 3, init's child); the program's group is its own, in the holder's session.
#[test]
fn program_is_pid_2_child_of_the_session_holder() {
    let o = output_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_sandbox")).args([
            "run",
            "--",
            "sh",
            "-c",
            "echo $$ $PPID $(cut -d' ' -f5,6 /proc/$$/stat) $(cut -d' ' -f4,5,6 /proc/$PPID/stat)",
        ]),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    // pid ppid pgrp session, then the holder's ppid pgrp session.
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "2 3 2 3 1 3 3");
}

/// A background job left behind that reads the terminal gets EIO (its group is
/// orphaned), instead of stopping with SIGTTIN.
#[test]
fn background_job_left_behind_reading_the_terminal_gets_eio() {
    on_ptys("reader");
}
