//! `sandbox run --console-socket PATH`: the sandbox gets a pty of its own whose master
//! is sent to PATH (SCM_RIGHTS), as OCI runtimes hand a console to their caller. The
//! caller is then the terminal: what it writes is typed, ^C is a signal from the pty's
//! line discipline, closing the master hangs the pty up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_tests::console::{exit_code, recv_fd, wait_descendant, PtyReader};
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::process::{Child, Command, Stdio};

/// `sandbox run --console-socket PATH -- PROGRAM`, and the master it sends.
fn start(program: &[&str]) -> (Child, PtyReader) {
    let dir = std::env::temp_dir().join(format!(
        "sandbox-console-{}-{}",
        std::process::id(),
        program.join("_").len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("console.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["run", "--console-socket"])
        .arg(&path)
        .arg("--")
        .args(program)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let (conn, _) = listener.accept().unwrap();
    let master = recv_fd(&conn).expect("a descriptor on the console socket");
    let _ = std::fs::remove_dir_all(&dir);
    (child, PtyReader::new(master))
}

/// A pty pair whose master is close-on-exec: the other tests of this binary spawn
/// processes concurrently, and an inherited copy of the master would keep the pty from
/// ever hanging up.
fn cloexec_pty() -> nix::pty::OpenptyResult {
    let pty = nix::pty::openpty(None, None).unwrap();
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .unwrap();
    }
    pty
}

#[test]
fn console_socket_receives_a_working_master() {
    let (mut child, mut c) = start(&["sh", "-c", "tty; echo ready; read x; echo got-$x; exit 3"]);
    // The pty is the sandbox's own: /dev/pts/0 of its devpts.
    c.expect("/dev/pts/0");
    c.expect("ready");
    c.master.write_all(b"typed\n").unwrap();
    c.expect("got-typed");
    assert_eq!(exit_code(&mut child), 3);
}

#[test]
fn ctrl_c_written_to_the_master_interrupts_the_foreground() {
    let (mut child, mut c) = start(&["sh", "-c", "echo ready; sleep 100"]);
    c.expect("ready");
    // The sandbox's pty is a host pty: its foreground group (tpgid) is the host
    // kernel's, the one its line discipline signals. Wait for sleep to run in it.
    wait_descendant(child.id() as i32, &["sleep", "100"], |p| p.tpgid == p.pgrp);
    c.master.write_all(b"\x03").unwrap();
    // sh and sleep are the foreground group: SIGINT from the line discipline.
    assert_eq!(exit_code(&mut child), 130);
}

#[test]
fn closing_the_master_hangs_up_the_sandbox() {
    let (mut child, mut c) = start(&["sh", "-c", "echo ready; sleep 100"]);
    c.expect("ready");
    drop(c);
    assert_eq!(exit_code(&mut child), 128 + libc::SIGHUP);
}

/// `--tty-fd N`: a terminal nobody fronts (a pty slave passed as fd 3, no session has it)
/// becomes the program's stdio; the terminal-signal listener makes ^C at the master and a
/// resize reach the sandbox's foreground group.
#[test]
fn tty_fd_that_nobody_fronts_still_delivers_signals() {
    use std::os::fd::{AsFd, AsRawFd};
    use std::os::unix::process::CommandExt;
    let pty = cloexec_pty();
    let slave = pty.slave.as_raw_fd();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandbox"));
    cmd.args([
        "run",
        "--tty-fd",
        "3",
        "--",
        "sh",
        "-c",
        "trap 'stty size' WINCH; echo ready; while :; do sleep 0.05; done",
    ])
    .stdin(Stdio::null());
    // SAFETY (test): dup2 is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(slave, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(pty.slave);
    let mut c = PtyReader::new(pty.master);
    c.expect("ready");
    let ws = libc::winsize {
        ws_row: 31,
        ws_col: 71,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY (test): TIOCSWINSZ reads one winsize through a valid pointer.
    assert_eq!(
        unsafe { libc::ioctl(c.master.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) },
        0
    );
    c.expect("31 71");
    c.master.write_all(b"\x03").unwrap();
    assert_eq!(exit_code(&mut child), 130);
}

/// `--tty=pty`: when the user's terminal hangs up (its master closes), the sandbox's
/// own pty is hung up too, so the sandbox's session gets SIGHUP and nothing is left
/// running.
#[test]
fn pty_mode_hangs_up_when_the_users_terminal_does() {
    use std::os::fd::AsRawFd;
    let pty = cloexec_pty();
    let slave = pty.slave.as_raw_fd();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandbox"));
    cmd.args([
        "run",
        "--tty=pty",
        "--",
        "sh",
        "-c",
        "trap 'exit 9' HUP; echo ready; while :; do sleep 0.05; done",
    ]);
    // SAFETY (test): dup2 is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            for t in 0..3 {
                if libc::dup2(slave, t) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(pty.slave);
    let mut c = PtyReader::new(pty.master);
    c.expect("ready");
    drop(c);
    assert_eq!(exit_code(&mut child), 9);
}
