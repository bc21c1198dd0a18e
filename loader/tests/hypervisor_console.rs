//! The example embedder (`examples/hypervisor_console.rs`) driven as a hypervisor's
//! console client would: it receives the pty master over a unix socket, and typing,
//! ^C, a resize (TIOCSWINSZ on the master) and hanging up (closing it) reach the
//! sandboxed program through a borrowed terminal the loader does not front — the
//! terminal-signal listener's case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

struct Console {
    child: Child,
    master: std::fs::File,
    seen: String,
}

fn start(name: &str, script: &str) -> Console {
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
    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            fd = fds.first().copied();
        }
    }
    // SAFETY (test): SCM_RIGHTS gave us this descriptor.
    let master: std::fs::File = unsafe { OwnedFd::from_raw_fd(fd.expect("the master")) }.into();
    let _ = std::fs::remove_file(&sock);
    Console {
        child,
        master,
        seen: String::new(),
    }
}

impl Console {
    fn expect(&mut self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while !self.seen.contains(want) {
            assert!(Instant::now() < deadline, "no {want:?} in {:?}", self.seen);
            let mut fds = [nix::poll::PollFd::new(
                self.master.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)).unwrap() == 0 {
                continue;
            }
            match self.master.read(&mut buf) {
                Ok(0) | Err(_) => panic!("pty closed before {want:?}: {:?}", self.seen),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    }

    fn exit_code(child: &mut Child) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the console did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn root() -> bool {
    let ok = nix::unistd::geteuid().is_root();
    if !ok {
        eprintln!("skipped: needs root");
    }
    ok
}

/// Typing reaches the program.
#[test]
fn console_client_types() {
    if !root() {
        return;
    }
    let mut c = start("type", "echo ready; read x; echo got-$x; exit 4");
    c.expect("ready");
    c.master.write_all(b"typed\n").unwrap();
    c.expect("got-typed");
    assert_eq!(Console::exit_code(&mut c.child), 4);
}

/// ^C at the console: SIGINT to the sandbox's foreground group.
#[test]
fn console_client_interrupts() {
    if !root() {
        return;
    }
    let mut c = start("intr", "echo ready; sleep 100");
    c.expect("ready");
    std::thread::sleep(Duration::from_millis(200));
    c.master.write_all(b"\x03").unwrap();
    assert_eq!(Console::exit_code(&mut c.child), 130);
}

/// A resize: SIGWINCH to the foreground group, and the new size on the terminal.
#[test]
fn console_client_resizes() {
    if !root() {
        return;
    }
    let mut c = start(
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
    assert_eq!(Console::exit_code(&mut c.child), 5);
}

/// Hanging up (the client closes the master): SIGHUP.
#[test]
fn console_client_hangs_up() {
    if !root() {
        return;
    }
    let mut c = start("hup", "echo ready; sleep 100");
    c.expect("ready");
    let Console {
        mut child, master, ..
    } = c;
    drop(master);
    assert_eq!(Console::exit_code(&mut child), 128 + libc::SIGHUP);
}
