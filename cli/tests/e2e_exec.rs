//! `sandbox exec --tty` and `--tty=pty` on real ptys: an interactive bash executed
//! into a running sandbox (`run -d`) has the job control of `run --tty` (^C, ^Z, `fg`,
//! `cat &` stopping on input, resizes), on its own terminal: two exec'd shells at once
//! never see each other's ^C or resize, nor does the sandbox's first program; `kill
//! --mode foreground --pid SHELL` reaches that shell's foreground job only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_tests::term::{keys, until, Launcher, Screen, Shell, ShellSession, DEFAULT_TIMEOUT};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_sandbox");

/// A running sandbox (`run -d`), deleted at the end.
struct Running {
    root: PathBuf,
    id: String,
}

impl Running {
    fn start(name: &str) -> Running {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("e2e-exec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let r = Running {
            root,
            id: name.to_string(),
        };
        let o = r.cli(&["run", "-d", "--name", name, "--", "sleep", "100000"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        r
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn launcher(&self, pty: bool) -> Launcher {
        Launcher::SandboxExec {
            bin: BIN.into(),
            root: self.root.clone(),
            id: self.id.clone(),
            pty,
        }
    }

    /// The first program still runs (and the sandbox with it).
    fn assert_first_program_alive(&self) {
        let o = self.cli(&["ps", "--json", &self.id]);
        let procs: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
        let p = procs.iter().find(|p| p["pid"] == 2).expect("PID 2");
        assert_eq!(p["command"], "sleep 100000");
        assert_ne!(p["state"], "Z");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.cli(&["delete", "--force", &self.id]);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn wait_gone(s: &ShellSession, argv: &[&str]) {
    s.wait_until(&format!("{argv:?} to end"), DEFAULT_TIMEOUT, || {
        !s.processes().iter().any(|p| p.cmdline == argv)
    })
    .unwrap();
}

fn wait_stopped(s: &ShellSession, argv: &[&str]) {
    s.wait_until(&format!("{argv:?} to be stopped"), DEFAULT_TIMEOUT, || {
        let procs: Vec<_> = s
            .processes()
            .into_iter()
            .filter(|p| p.cmdline == argv)
            .collect();
        !procs.is_empty() && procs.iter().all(|p| p.state == 'T')
    })
    .unwrap();
}

fn line_with<'a>(out: &'a str, what: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no line with {what:?} in:\n{out}"))
}

/// ^C ends the foreground job (130), ^Z stops it, `fg` resumes it, ^C ends it.
fn interrupt_suspend_fg(s: &ShellSession) {
    let sleep: &[&str] = &["sleep", "100"];
    let line = s.start("sleep 100").unwrap();
    s.wait_foreground(sleep).unwrap();
    s.send(keys::CTRL_C).unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    wait_gone(s, sleep);
    assert_eq!(s.last_status().unwrap(), 130, "{}", s.screen());

    let line = s.start("sleep 100").unwrap();
    s.wait_foreground(sleep).unwrap();
    s.send(keys::CTRL_Z).unwrap();
    let screen = s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    let said = screen.lines_between(line, screen.cursor_line()).join("\n");
    assert!(said.contains("Stopped"), "no Stopped after ^Z:\n{screen}");
    wait_stopped(s, sleep);
    let line = s.start("fg").unwrap();
    s.wait_foreground(sleep).unwrap();
    s.send(keys::CTRL_C).unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    wait_gone(s, sleep);
    assert_eq!(s.last_status().unwrap(), 130, "{}", s.screen());
    assert_eq!(s.run("echo alive").unwrap(), "alive");
}

/// `cat &` stops on its read (SIGTTIN); `fg` gives it the terminal and ^D ends it.
fn background_read(s: &ShellSession) {
    let cat: &[&str] = &["cat"];
    s.run("cat &").unwrap();
    wait_stopped(s, cat);
    let jobs = s.run("jobs -l").unwrap();
    assert!(
        line_with(&jobs, "cat").contains("Stopped (tty input)"),
        "jobs:\n{jobs}"
    );
    let line = s.start("fg").unwrap();
    s.wait_foreground(cat).unwrap();
    s.send("through-cat\r").unwrap();
    s.wait_for(
        until("two lines \"through-cat\"", |sc: &Screen| {
            sc.lines_between(line, sc.cursor_line() + 1)
                .iter()
                .filter(|r| r.as_str() == "through-cat")
                .count()
                == 2
        }),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    s.send(keys::CTRL_D).unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    wait_gone(s, cat);
}

const TRAP: &str = "trap 'echo sig\"\"winch' WINCH";

fn saw_winch(s: &ShellSession, since: u64) -> bool {
    let sc = s.screen();
    sc.lines_between(since - 1, sc.cursor_line() + 1)
        .iter()
        .any(|r| r == "sigwinch" || r.ends_with("$ sigwinch"))
}

/// The trap's output follows the prompt: Enter draws a fresh one.
fn fresh_prompt(s: &ShellSession) {
    let now = s.screen().cursor_line();
    s.send("\r").unwrap();
    s.wait_prompt_after(now, DEFAULT_TIMEOUT).unwrap();
}

/// A resize reaches the shell at its prompt (its trap runs), and `stty size` agrees.
fn resize(s: &ShellSession) {
    s.run(TRAP).unwrap();
    let line = s.screen().cursor_line();
    s.resize_delivered(30, 100).unwrap();
    s.wait_until("sigwinch from the trap", DEFAULT_TIMEOUT, || {
        saw_winch(s, line)
    })
    .unwrap();
    fresh_prompt(s);
    assert_eq!(s.run("stty size").unwrap(), "30 100");
    s.run("trap - WINCH").unwrap();
}

fn jobs(pty: bool, name: &str) {
    let sb = Running::start(name);
    let s = sb.launcher(pty).shell(Shell::Bash);
    interrupt_suspend_fg(&s);
    background_read(&s);
    resize(&s);
    sb.assert_first_program_alive();
    // `exit`: the client ends with the shell's status.
    s.send("exit 7\r").unwrap();
    let st = s.term.wait_exit(DEFAULT_TIMEOUT).unwrap();
    assert_eq!(st.code(), Some(7));
    sb.assert_first_program_alive();
}

#[test]
fn exec_tty_bash_job_control() {
    if !sandbox_tests::require_root() {
        return;
    }
    jobs(false, "jobs-borrow");
}

#[test]
fn exec_pty_bash_job_control() {
    if !sandbox_tests::require_root() {
        return;
    }
    jobs(true, "jobs-pty");
}

/// Two exec'd shells at once: ^C and a resize on one never reach the other, nor the
/// first program; `kill --mode foreground --pid` names one shell's foreground job.
fn two_shells(pty: bool, name: &str) {
    let sb = Running::start(name);
    let a = sb.launcher(pty).shell(Shell::Bash);
    let b = sb.launcher(pty).shell(Shell::Bash);
    let a_pid = a.shell_pid().unwrap();
    let b_pid = b.shell_pid().unwrap();
    assert_ne!(a_pid, b_pid);
    // B runs a job in its foreground; A has a WINCH trap at its prompt.
    let b_sleep: &[&str] = &["sleep", "101"];
    let b_line = b.start("sleep 101").unwrap();
    b.wait_foreground(b_sleep).unwrap();
    a.run(TRAP).unwrap();
    let a_line = a.screen().cursor_line();

    // ^C on A (at its prompt, with a job of its own running): only A's job.
    let a_sleep: &[&str] = &["sleep", "100"];
    let line = a.start("sleep 100").unwrap();
    a.wait_foreground(a_sleep).unwrap();
    a.send(keys::CTRL_C).unwrap();
    a.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    wait_gone(&a, a_sleep);
    assert_eq!(a.last_status().unwrap(), 130);
    b.wait_foreground(b_sleep).unwrap();
    sb.assert_first_program_alive();

    // A resize of B's terminal: nothing at A.
    b.resize_delivered(20, 70).unwrap();
    assert_eq!(a.run("echo after-resize").unwrap(), "after-resize");
    assert!(
        !saw_winch(&a, a_line),
        "A got B's SIGWINCH:\n{}",
        a.screen()
    );
    b.wait_foreground(b_sleep).unwrap();

    // A resize of A's terminal: at A.
    a.resize_delivered(25, 90).unwrap();
    a.wait_until("A's trap", DEFAULT_TIMEOUT, || saw_winch(&a, a_line))
        .unwrap();
    fresh_prompt(&a);

    // kill --mode foreground --pid <B's shell>: B's sleep, not B, not A.
    let o = sb.cli(&[
        "kill",
        "--mode",
        "foreground",
        "--pid",
        &b_pid.to_string(),
        &sb.id,
        "INT",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    b.wait_prompt_after(b_line, DEFAULT_TIMEOUT).unwrap();
    wait_gone(&b, b_sleep);
    assert_eq!(b.last_status().unwrap(), 130);
    assert_eq!(a.run("echo a-alive").unwrap(), "a-alive");
    assert_eq!(b.run("echo b-alive").unwrap(), "b-alive");
    sb.assert_first_program_alive();
}

#[test]
fn two_exec_tty_shells_at_once() {
    if !sandbox_tests::require_root() {
        return;
    }
    two_shells(false, "two-borrow");
}

#[test]
fn two_exec_pty_shells_at_once() {
    if !sandbox_tests::require_root() {
        return;
    }
    two_shells(true, "two-pty");
}
