//! A hostile program against the user's terminal, as the attacker would go at it.
//!
//! Every attack runs on a throwaway pty made by the test (never the real terminal),
//! whose session is a test child's (a shell's, as a user's would be). The attacker is
//! `attacks/term_attack.c`, compiled here with `cc`: racing threads need real threads
//! and raw system calls.
//!
//! What is promised and by what (see `loader/src/supervisor.rs`):
//! - the terminal never becomes a sandbox process's host controlling terminal, even
//!   with threads swapping the descriptor under the supervisor's check: the host kernel
//!   refuses the steal (the terminal is the user's session's; no CAP_SYS_ADMIN);
//! - Linux AIO cannot reach a borrowed terminal (io_setup/io_submit: ENOSYS, decided by
//!   the filter); preadv2 and splice from the background stop with SIGTTIN like read;
//! - whatever the program did to the terminal's modes is undone when the sandbox ends,
//!   normally or by a signal sent to `sandbox`, SIGKILL included (the restorer
//!   process, `loader/src/tty_restorer.rs`);
//! - with `--tty=pty` no sandbox process holds the user's terminal at all, so a racing
//!   background reader gets nothing typed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sandbox_tests::term::{Launcher, ProcInfo, Shell, Signal, Term, DEFAULT_TIMEOUT};

fn sandbox_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sandbox")
}

/// The attacker, compiled once into the target's tmp directory (visible inside the
/// sandbox, whose /tmp is its own; readable by uid 65534).
fn attacker() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/attacks/term_attack.c");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("term_attack");
        let o = Command::new("cc")
            .args(["-O2", "-Wall", "-pthread", "-o"])
            .arg(&out)
            .arg(&src)
            .output()
            .expect("cc is needed to build the attacker (apt-get install gcc)");
        assert!(
            o.status.success(),
            "building the attacker failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out.to_string_lossy().into_owned()
    })
}

/// `--ro-bind DIR` for the attacker's directory: the checkout may be under the host's
/// `/tmp`, which the sandbox's own `/tmp` covers.
fn bind_attacker() -> String {
    let dir = Path::new(attacker()).parent().unwrap_or(Path::new("/"));
    format!("--ro-bind {}", dir.display())
}

/// `sandbox run --tty -- attacker MODE`, as root or dropped to uid 65534 with setpriv.
fn sandbox_cmd(tty: &str, rootless: bool, mode: &str) -> String {
    let run = format!(
        "{} run {tty} {} -- {} {mode}",
        sandbox_bin(),
        bind_attacker(),
        attacker()
    );
    if rootless {
        format!("setpriv --reuid 65534 --regid 65534 --clear-groups {run}")
    } else {
        run
    }
}

/// A bash on a fresh pty: the pty's session is bash's, as a user's shell's is.
fn user_shell() -> sandbox_tests::term::ShellSession {
    Launcher::Direct.shell(Shell::Bash)
}

fn tcgetsid(fd: BorrowedFd<'_>) -> i32 {
    let mut sid: libc::pid_t = 0;
    // SAFETY (test): TIOCGSID writes one pid_t; on a master it reports the slave's.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGSID, &mut sid) };
    assert_eq!(r, 0, "TIOCGSID: {}", std::io::Error::last_os_error());
    sid
}

/// After an attack: the pty is still the user's shell's controlling terminal, and ^C
/// typed on it still reaches the shell's foreground job.
fn assert_shell_keeps_terminal(s: &sandbox_tests::term::ShellSession, what: &str) {
    assert_eq!(
        tcgetsid(s.master_fd()),
        s.pid(),
        "{what}: the terminal's session is no longer the shell's"
    );
    let line = s.start("sleep 100").unwrap();
    s.wait_foreground(&["sleep", "100"]).unwrap();
    s.send("\x03").unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(s.last_status().unwrap(), 130, "{what}: ^C reached the job");
}

/// setsid, then TIOCSCTTY(1) on the borrowed terminal, then the same with two threads
/// dup2'ing a pipe and the terminal onto the descriptor a third thread keeps passing to
/// TIOCSCTTY (the supervisor's check and the kernel's run see different files). The
/// terminal must stay the shell's.
fn steal_attempts(rootless: bool) {
    for mode in ["steal", "steal-race"] {
        let s = user_shell();
        let out = s
            .run_timeout(
                &sandbox_cmd("--tty", rootless, mode),
                Duration::from_secs(30),
            )
            .unwrap();
        assert!(
            out.contains("host controlling terminal: none"),
            "{mode} (rootless: {rootless}): {out}"
        );
        assert_eq!(s.last_status().unwrap(), 0, "{mode}: {out}");
        assert_shell_keeps_terminal(&s, mode);
    }
}

/// Without root the program's capabilities are those of a user namespace: the host
/// kernel refuses to steal the user's terminal whatever the race.
#[test]
fn tiocsctty_steal_refused_rootless() {
    if !sandbox_tests::require_root() {
        return;
    }
    steal_attempts(true);
}

/// As root: the plain TIOCSCTTY is emulated (the host never runs it); the racing one
/// reaches the host, which refuses it only because the program has no CAP_SYS_ADMIN
/// (the capability drop of the sandbox's init).
#[test]
fn tiocsctty_steal_refused_as_root() {
    if !sandbox_tests::require_root() {
        return;
    }
    steal_attempts(false);
}

/// Linux AIO from a background job of the sandbox: io_setup and io_submit fail with
/// ENOSYS under `--tty` (an iocb's fd cannot be checked); without a borrowed terminal
/// (`--tty=pty`) AIO is there.
#[test]
fn aio_refused_on_a_borrowed_terminal_only() {
    let s = user_shell();
    let out = s.run(&sandbox_cmd("--tty", false, "aio")).unwrap();
    assert!(
        out.contains("io_setup: Function not implemented"),
        "--tty: {out}"
    );
    assert!(
        out.contains("io_submit: Function not implemented"),
        "--tty: {out}"
    );
    // The pty is the session's real controlling terminal: the host stops the
    // background AIO read itself.
    let out = s.run(&sandbox_cmd("--tty=pty", false, "aio")).unwrap();
    assert!(out.contains("io_setup: ok"), "--tty=pty keeps AIO: {out}");
    assert!(
        out.contains("aio in the background: stopped by Stopped (tty input)"),
        "--tty=pty: {out}"
    );
}

/// preadv2 at offset -1 and splice from the terminal by a background job stop it with
/// SIGTTIN, as read does.
#[test]
fn background_preadv2_and_splice_stop_with_sigttin() {
    let s = user_shell();
    for mode in ["bg-preadv2", "bg-splice"] {
        let how = mode.trim_start_matches("bg-");
        let out = s.run(&sandbox_cmd("--tty", false, mode)).unwrap();
        assert!(
            out.contains(&format!(
                "{how} in the background: stopped by Stopped (tty input)"
            )),
            "{mode}: {out}"
        );
        assert!(!out.contains("read input"), "{mode}: {out}");
    }
}

/// The positional forms (pread64, preadv, pwrite64, pwritev, and preadv2/pwritev2 at
/// an offset other than -1) are not notified: a terminal is a stream, so the host
/// kernel fails them with ESPIPE before the terminal is touched, from the background
/// too, and nobody is stopped (as on Linux, where no job-control check runs either).
#[test]
fn background_positional_io_is_espipe_from_the_kernel() {
    let s = user_shell();
    let linux = s.run(&format!("{} bg-positional", attacker())).unwrap();
    let sandboxed = s
        .run(&sandbox_cmd("--tty", false, "bg-positional"))
        .unwrap();
    for (out, run) in [(&linux, "Linux"), (&sandboxed, "sandbox")] {
        positional_refused(out, run);
    }
    assert_shell_keeps_terminal(&s, "positional I/O");
}

fn positional_refused(out: &str, run: &str) {
    for call in [
        "pread64",
        "preadv",
        "preadv2 at offset 0",
        "pwrite64",
        "pwritev",
        "pwritev2 at offset 0",
    ] {
        assert!(
            out.contains(&format!("{call}: ESPIPE")),
            "{run}: {call}: {out}"
        );
    }
    assert!(
        out.contains("positional in the background: not stopped"),
        "{run}: {out}"
    );
    assert!(!out.contains("moved bytes"), "{run}: {out}");
}

/// What the attacker changes and the user would be left with.
#[derive(Debug, PartialEq)]
struct TermState {
    termios: (u32, u32, u32, u32, Vec<u8>),
    locked: (u32, u32, u32, u32, Vec<u8>),
    winsize: (u16, u16),
    exclusive: bool,
}

fn termios_ioctl(fd: BorrowedFd<'_>, req: libc::c_ulong) -> (u32, u32, u32, u32, Vec<u8>) {
    // SAFETY (test): zeroed plain data; the ioctl writes one kernel termios.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY (test): as above.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req, &mut t) };
    assert_eq!(r, 0, "termios ioctl {req:#x}");
    (t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag, t.c_cc.to_vec())
}

fn winsize(fd: BorrowedFd<'_>) -> (u16, u16) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY (test): TIOCGWINSZ writes one winsize.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    assert_eq!(r, 0);
    (ws.ws_row, ws.ws_col)
}

/// The slave's path, from the master's pty number.
fn slave_path(t: &Term) -> String {
    let mut n: libc::c_uint = 0;
    // SAFETY (test): TIOCGPTN writes one unsigned int.
    let r = unsafe { libc::ioctl(t.master_fd().as_raw_fd(), libc::TIOCGPTN, &mut n) };
    assert_eq!(r, 0);
    format!("/dev/pts/{n}")
}

fn state(t: &Term) -> TermState {
    const TIOCGLCKTRMIOS: libc::c_ulong = 0x5456;
    const TIOCGEXCL: libc::c_ulong = 0x8004_5440;
    let m = t.master_fd();
    // Exclusive mode is the slave's flag: read it on a slave descriptor (root opens an
    // exclusive terminal anyway).
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(slave_path(t))
        .unwrap();
    let mut excl: libc::c_int = 0;
    // SAFETY (test): TIOCGEXCL writes one int.
    let r = unsafe { libc::ioctl(slave.as_raw_fd(), TIOCGEXCL, &mut excl) };
    assert_eq!(r, 0);
    TermState {
        termios: termios_ioctl(m, libc::TCGETS),
        locked: termios_ioctl(m, TIOCGLCKTRMIOS),
        winsize: winsize(m),
        exclusive: excl != 0,
    }
}

/// Waits for `cond` with a deadline.
fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A `sh` (the pty's session leader, no job control: it touches no terminal mode) that
/// waits for a line, runs `sandbox`, then prints how it ended.
fn sh_running(cmd: &str) -> Term {
    let script = format!("read go; {cmd}; echo EXITED:$?; exec sleep 1000");
    Term::spawn(&["/bin/sh", "-c", &script], &[], 24, 80).unwrap()
}

fn loader_of(t: &Term) -> i32 {
    let mut pid = 0;
    wait_for("the sandbox process", DEFAULT_TIMEOUT, || {
        pid = ProcInfo::all()
            .into_iter()
            .find(|p| p.ppid == t.pid() && p.comm == "sandbox")
            .map_or(0, |p| p.pid);
        pid != 0
    });
    pid
}

/// The attacker turns output off (TCOOFF), clears ECHO and ICANON and locks them
/// cleared (TIOCSLCKTRMIOS, which needs CAP_SYS_ADMIN: without it that step fails and
/// the rest still applies), sets exclusive mode and a window size of 11x22. Then it
/// exits, or waits to be ended by a signal sent to `sandbox`. Afterwards every one of
/// these is as before (the shell's `EXITED` line appearing proves output restarted).
fn damage_undone(tty: &str, end: Option<Signal>) {
    let then = if end.is_some() { "wait" } else { "exit" };
    let t = sh_running(&sandbox_cmd(tty, false, &format!("damage {then}")));
    let before = state(&t);
    t.send("go\n").unwrap();
    if let Some(sig) = end {
        let loader = loader_of(&t);
        // Every change made: the attacker sits in pause(2).
        wait_for("the attacker in pause()", DEFAULT_TIMEOUT, || {
            ProcInfo::all().iter().any(|p| {
                p.cmdline.first().is_some_and(|a| a == attacker())
                    && std::fs::read_to_string(format!("/proc/{}/syscall", p.pid))
                        .is_ok_and(|s| s.split(' ').next() == Some(&libc::SYS_pause.to_string()))
            })
        });
        if sig == Signal::SIGKILL {
            // As a shell's `kill -9 %1`: every process of the loader's group (here
            // that of the non-interactive sh, which is spared).
            let pgrp = ProcInfo::read(loader).unwrap().pgrp;
            for p in ProcInfo::all() {
                if p.pgrp == pgrp && p.pid != t.pid() {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid), sig);
                }
            }
        } else {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(loader), sig).unwrap();
        }
    }
    t.wait_for("EXITED:", DEFAULT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{tty} {end:?}: {e}"));
    // After a SIGKILL the restorer process acts when the loader's descriptors close,
    // which may be just after the shell learns of the death.
    let deadline = Instant::now() + DEFAULT_TIMEOUT;
    while state(&t) != before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        state(&t),
        before,
        "{tty} {end:?}: the terminal is not as it was"
    );
}

#[test]
fn terminal_restored_after_the_program_exits() {
    damage_undone("--tty", None);
}

#[test]
fn terminal_restored_after_sigterm_and_sighup_to_sandbox() {
    damage_undone("--tty", Some(Signal::SIGTERM));
    damage_undone("--tty", Some(Signal::SIGHUP));
}

/// SIGKILL leaves the loader no chance: its restorer process puts the terminal back.
#[test]
fn terminal_restored_after_sigkill_of_sandbox() {
    damage_undone("--tty", Some(Signal::SIGKILL));
}

/// `--tty=pty`: the attacker damages only its own pty; the user's terminal leaves the
/// proxy's raw mode however `sandbox` ends.
#[test]
fn pty_mode_restores_the_user_terminal() {
    damage_undone("--tty=pty", None);
    damage_undone("--tty=pty", Some(Signal::SIGTERM));
    damage_undone("--tty=pty", Some(Signal::SIGHUP));
    damage_undone("--tty=pty", Some(Signal::SIGKILL));
}

/// `--tty=pty`: no descriptor of any sandbox process refers to the user's terminal
/// (compared by device and inode with the throwaway pty's slave).
#[test]
fn pty_mode_holds_no_descriptor_of_the_user_terminal() {
    let t = sh_running(&sandbox_cmd("--tty=pty", false, "fds"));
    let slave = std::fs::metadata(slave_path(&t)).unwrap();
    let user = format!("{} {}", slave.dev(), slave.ino());
    t.send("go\n").unwrap();
    t.wait_for("EXITED:", DEFAULT_TIMEOUT).unwrap();
    let text = t.screen_text();
    assert!(text.contains("fds: end"), "{text}");
    let fds: Vec<&str> = text.lines().filter(|l| l.starts_with("fd ")).collect();
    assert!(fds.len() >= 3, "{text}");
    for l in fds {
        assert!(
            !l.ends_with(&format!(": {user}")),
            "{l} is the user's terminal"
        );
    }
}

/// `--tty=pty`: a background reader with two threads dup2'ing a pipe and the terminal
/// onto the descriptor it reads never gets what the user types.
#[test]
fn pty_mode_racing_background_reader_gets_no_input() {
    let t = sh_running(&sandbox_cmd("--tty=pty", false, "race-read"));
    t.send("go\n").unwrap();
    t.wait_for("race read: started", DEFAULT_TIMEOUT).unwrap();
    t.send("secret-typed-input\r").unwrap();
    t.wait_for("EXITED:", Duration::from_secs(30)).unwrap();
    let text = t.screen_text();
    assert!(text.contains("race read: reaped"), "{text}");
    assert!(!text.contains("GOT INPUT"), "{text}");
}

/// A setup failure (here a root filesystem that does not exist) after the proxy put
/// the user's terminal in raw mode: the terminal is restored all the same.
#[test]
fn setup_failure_restores_the_user_terminal() {
    for tty in ["--tty", "--tty=pty"] {
        let cmd = format!(
            "{} run {tty} --rootfs /nonexistent-sandbox-root {} -- {} damage exit",
            sandbox_bin(),
            bind_attacker(),
            attacker()
        );
        let t = sh_running(&cmd);
        let before = state(&t);
        t.send("go\n").unwrap();
        t.wait_for("EXITED:", DEFAULT_TIMEOUT).unwrap();
        let text = t.screen_text();
        assert!(text.contains("EXITED:125"), "{tty}: {text}");
        assert_eq!(state(&t), before, "{tty}: the terminal is not as it was");
    }
}
