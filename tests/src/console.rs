//! Being a console: receiving a pty master over a unix socket (SCM_RIGHTS), reading
//! what the program writes until an expected text appears, waiting for a process to
//! start or end. Shared by the console-socket, `--tty-fd` and hypervisor-console tests
//! and the embedder's.

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::fs::File;
use std::io::{self, IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::term::ProcInfo;

/// Receives one descriptor sent with SCM_RIGHTS on `sock`.
pub fn recv_fd(sock: &impl AsRawFd) -> io::Result<OwnedFd> {
    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )?;
    let mut fd = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            fd = fds.first().copied();
        }
    }
    let fd = fd.ok_or_else(|| io::Error::other("no descriptor in the message"))?;
    // SAFETY: SCM_RIGHTS installed this descriptor for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A pty master and everything read from it so far.
pub struct PtyReader {
    pub master: File,
    pub seen: String,
}

impl PtyReader {
    pub fn new(master: impl Into<File>) -> PtyReader {
        PtyReader {
            master: master.into(),
            seen: String::new(),
        }
    }

    /// Types `s` (writes it to the master).
    pub fn send(&mut self, s: &str) {
        use std::io::Write;
        if let Err(e) = self.master.write_all(s.as_bytes()) {
            panic!("writing to the pty master: {e}");
        }
    }

    /// Reads until `want` appears in what was not consumed yet, then consumes
    /// everything up to and including it (so that the next prompt is a new one).
    pub fn next(&mut self, want: &str) {
        self.expect(want);
        if let Some(at) = self.seen.find(want) {
            self.seen.drain(..at + want.len());
        }
    }

    /// Reads until `want` has appeared (10 s at most); panics with what was read if it
    /// does not, or if the pty closes first.
    pub fn expect(&mut self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while !self.seen.contains(want) {
            assert!(Instant::now() < deadline, "no {want:?} in {:?}", self.seen);
            let mut fds = [nix::poll::PollFd::new(
                self.master.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => panic!("poll: {e}"),
            }
            match self.master.read(&mut buf) {
                Ok(0) | Err(_) => panic!("pty closed before {want:?}: {:?}", self.seen),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    }
}

/// Waits (10 s at most) for `child` to end and returns its exit code (-1 if a signal
/// ended it); panics if it does not end.
pub fn exit_code(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st.code().unwrap_or(-1),
            Ok(None) => {}
            Err(e) => panic!("wait: {e}"),
        }
        assert!(Instant::now() < deadline, "the process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (10 s at most) until a descendant of host process `ancestor` (through PID
/// namespaces: /proc's parent links are the host's) has exec'd `argv` and `ready`
/// holds for it, and returns it; panics with the processes seen if none does.
pub fn wait_descendant(
    ancestor: i32,
    argv: &[&str],
    ready: impl Fn(&ProcInfo) -> bool,
) -> ProcInfo {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = ProcInfo::all();
        let descends = |p: &ProcInfo| {
            let mut at = p.ppid;
            for _ in 0..all.len() {
                if at == ancestor {
                    return true;
                }
                match all.iter().find(|q| q.pid == at) {
                    Some(q) if q.ppid != at => at = q.ppid,
                    _ => return false,
                }
            }
            false
        };
        if let Some(p) = all
            .iter()
            .find(|p| p.state != 'Z' && p.cmdline == argv && descends(p) && ready(p))
        {
            return p.clone();
        }
        let mine: Vec<&ProcInfo> = all.iter().filter(|p| descends(p)).collect();
        assert!(
            Instant::now() < deadline,
            "no descendant of {ancestor} running {argv:?} (and ready) within 10 s: {mine:#?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
