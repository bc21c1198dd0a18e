//! The example embedder (`examples/hypervisor_console.rs`) driven as a hypervisor's
//! console client would: it receives the pty master over a unix socket, and typing,
//! ^C, a resize (TIOCSWINSZ on the master) and hanging up (closing it) reach the
//! sandboxed program through a borrowed terminal the loader does not front — the
//! terminal-signal listener's case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_tests::console::{exit_code, recv_fd, wait_descendant, PtyReader};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};

fn example() -> std::path::PathBuf {
    let me = std::env::current_exe().unwrap();
    let dir = me.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join("examples").join("hypervisor_console");
    assert!(
        bin.exists(),
        "{} missing: build it with `cargo build -p sandbox-loader --examples` (cargo test does)",
        bin.display()
    );
    bin
}

/// Starts the example serving a console on a socket, and takes the master from it.
fn start(name: &str, script: &str) -> (Child, PtyReader) {
    let sock = std::env::temp_dir().join(format!("hv-console-{}-{name}.sock", std::process::id()));
    let mut child = Command::new(example())
        .arg(&sock)
        .args(["sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // "console ready on ..." once the socket listens.
    let mut out = child.stdout.take().unwrap();
    let mut line = [0u8; 256];
    let n = out.read(&mut line).unwrap();
    assert!(String::from_utf8_lossy(&line[..n]).contains("console ready"));
    let conn = UnixStream::connect(&sock).unwrap();
    let master = recv_fd(&conn).expect("the master");
    let _ = std::fs::remove_file(&sock);
    (child, PtyReader::new(master))
}

/// Typing reaches the program.
#[test]
fn console_client_types() {
    if !sandbox_tests::require_root() {
        return;
    }
    let (mut child, mut c) = start("type", "echo ready; read x; echo got-$x; exit 4");
    c.expect("ready");
    c.master.write_all(b"typed\n").unwrap();
    c.expect("got-typed");
    assert_eq!(exit_code(&mut child), 4);
}

/// ^C at the console: SIGINT to the sandbox's foreground group.
#[test]
fn console_client_interrupts() {
    if !sandbox_tests::require_root() {
        return;
    }
    let (mut child, mut c) = start("intr", "echo ready; sleep 100");
    c.expect("ready");
    // sleep runs: the program's group, the sentry's foreground group from the start,
    // is now sleep's (sh has forked it, or exec'd it as its last command).
    wait_descendant(child.id() as i32, &["sleep", "100"], |_| true);
    c.master.write_all(b"\x03").unwrap();
    assert_eq!(exit_code(&mut child), 130);
}

/// A resize: SIGWINCH to the foreground group, and the new size on the terminal.
#[test]
fn console_client_resizes() {
    if !sandbox_tests::require_root() {
        return;
    }
    let (mut child, mut c) = start(
        "winch",
        "trap 'stty size; exit 5' WINCH; echo ready; while :; do sleep 0.05; done",
    );
    c.expect("ready");
    let ws = libc::winsize {
        ws_row: 33,
        ws_col: 77,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY (test): TIOCSWINSZ reads one winsize through a valid pointer.
    assert_eq!(
        unsafe { libc::ioctl(c.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
        0
    );
    c.expect("33 77");
    assert_eq!(exit_code(&mut child), 5);
}

/// Hanging up (the client closes the master): SIGHUP.
#[test]
fn console_client_hangs_up() {
    if !sandbox_tests::require_root() {
        return;
    }
    let (mut child, mut c) = start("hup", "echo ready; sleep 100");
    c.expect("ready");
    drop(c);
    assert_eq!(exit_code(&mut child), 128 + libc::SIGHUP);
}
