//! `sandbox run --console-socket PATH`: the sandbox gets a pty of its own whose master
//! is sent to PATH (SCM_RIGHTS), as OCI runtimes hand a console to their caller. The
//! caller is then the terminal: what it writes is typed, ^C is a signal from the pty's
//! line discipline, closing the master hangs the pty up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Console {
    child: Child,
    master: std::fs::File,
    seen: String,
}

fn start(program: &[&str]) -> Console {
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
    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    use std::os::fd::AsRawFd;
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
    let fd = fd.expect("a descriptor on the console socket");
    // SAFETY (test): SCM_RIGHTS gave us this descriptor.
    let master: std::fs::File = unsafe { OwnedFd::from_raw_fd(fd) }.into();
    let _ = std::fs::remove_dir_all(&dir);
    Console {
        child,
        master,
        seen: String::new(),
    }
}

impl Console {
    /// Reads the pty until `want` appears (10 s at most).
    fn expect(&mut self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while !self.seen.contains(want) {
            assert!(Instant::now() < deadline, "no {want:?} in {:?}", self.seen);
            let fd = std::os::fd::AsFd::as_fd(&self.master);
            let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
            if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)).unwrap() == 0 {
                continue;
            }
            match self.master.read(&mut buf) {
                Ok(0) | Err(_) => panic!("pty closed before {want:?}: {:?}", self.seen),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    }

    fn exit_code(mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "sandbox did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
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
    let mut c = start(&["sh", "-c", "tty; echo ready; read x; echo got-$x; exit 3"]);
    // The pty is the sandbox's own: /dev/pts/0 of its devpts.
    c.expect("/dev/pts/0");
    c.expect("ready");
    c.master.write_all(b"typed\n").unwrap();
    c.expect("got-typed");
    assert_eq!(c.exit_code(), 3);
}

#[test]
fn ctrl_c_written_to_the_master_interrupts_the_foreground() {
    let mut c = start(&["sh", "-c", "echo ready; sleep 100"]);
    c.expect("ready");
    std::thread::sleep(Duration::from_millis(200));
    c.master.write_all(b"\x03").unwrap();
    // sh and sleep are the foreground group: SIGINT from the line discipline.
    assert_eq!(c.exit_code(), 130);
}

#[test]
fn closing_the_master_hangs_up_the_sandbox() {
    let mut c = start(&["sh", "-c", "echo ready; sleep 100"]);
    c.expect("ready");
    let Console { child, master, .. } = c;
    drop(master);
    let c = Console {
        child,
        master: std::fs::File::open("/dev/null").unwrap(),
        seen: String::new(),
    };
    assert_eq!(c.exit_code(), 128 + libc::SIGHUP);
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
    let child = cmd.spawn().unwrap();
    drop(pty.slave);
    let mut c = Console {
        child,
        master: pty.master.into(),
        seen: String::new(),
    };
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
    assert_eq!(c.exit_code(), 130);
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
    let child = cmd.spawn().unwrap();
    drop(pty.slave);
    let mut c = Console {
        child,
        master: pty.master.into(),
        seen: String::new(),
    };
    c.expect("ready");
    let Console { child, master, .. } = c;
    drop(master);
    let c = Console {
        child,
        master: std::fs::File::open("/dev/null").unwrap(),
        seen: String::new(),
    };
    assert_eq!(c.exit_code(), 9);
}
