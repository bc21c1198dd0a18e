//! The control channel between the loader and the sandbox's init: one
//! `SOCK_SEQPACKET` socket pair created before the spawn. Messages are short text
//! records, one per packet; the program's seccomp listener travels as SCM_RIGHTS.
//!
//! From init: `P <pid>` (the program was forked, its PID in the sandbox),
//! `E <wait status>` (the program ended; init exits next), `F <text>` (setup failed),
//! `M` with the owned pty's master, `S <sig>` / `C` (the program stopped/continued).
//! From the program, before exec: `L` with the listener descriptor, or
//! `X <errno>` when exec failed. From the loader: `G` once it has written the uid/gid
//! maps of a new user namespace.

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::io::IoSliceMut;
use std::os::fd::{OwnedFd, RawFd};

/// A message on the control channel.
#[derive(Debug)]
pub(crate) enum Message {
    ProgramPid(i32),
    ProgramEnded(i32),
    SetupFailed(String),
    Listener(OwnedFd),
    ExecFailed(i32),
    /// From the loader: the user namespace's maps are written / the sandbox's cgroups
    /// are ready.
    Go,
    /// From the loader: the `tasks` file of a v1 cgroup of the sandbox, for init to
    /// join by writing `0` to it.
    JoinCgroup(OwnedFd),
    /// From init: the owned pty's master.
    PtyMaster(OwnedFd),
    /// From init: the program stopped (signal) / continued.
    ProgramStopped(i32),
    ProgramContinued,
}

/// Creates the pair (both ends close-on-exec).
pub(crate) fn pair() -> nix::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

/// Sends a text record (and optionally a descriptor). Uses `sendmsg`, which the
/// sandbox's notify filter never intercepts.
pub(crate) fn send(fd: RawFd, text: &str, pass: Option<RawFd>) -> nix::Result<()> {
    let iov = [std::io::IoSlice::new(text.as_bytes())];
    let fds;
    let cmsgs: &[ControlMessage] = match pass {
        Some(f) => {
            fds = [f];
            &[ControlMessage::ScmRights(&fds)]
        }
        None => &[],
    };
    sendmsg::<()>(fd, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None).map(drop)
}

/// Receives one message; `Ok(None)` at end of stream (every sender has gone).
pub(crate) fn recv(fd: RawFd) -> nix::Result<Option<Message>> {
    let mut buf = [0u8; 512];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut passed = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                let owned = crate::sys::fd::own_received(f);
                if passed.is_none() {
                    passed = Some(owned);
                }
            }
        }
    }
    let n = msg.bytes;
    if n == 0 && passed.is_none() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    let (tag, rest) = text.split_once(' ').unwrap_or((text.as_str(), ""));
    let num = || rest.trim().parse::<i32>().unwrap_or(0);
    Ok(Some(match (tag, passed) {
        ("L", Some(fd)) => Message::Listener(fd),
        ("M", Some(fd)) => Message::PtyMaster(fd),
        ("J", Some(fd)) => Message::JoinCgroup(fd),
        ("P", _) => Message::ProgramPid(num()),
        ("E", _) => Message::ProgramEnded(num()),
        ("X", _) => Message::ExecFailed(num()),
        ("G", _) => Message::Go,
        ("S", _) => Message::ProgramStopped(num()),
        ("C", _) => Message::ProgramContinued,
        _ => Message::SetupFailed(rest.to_string()),
    }))
}

/// Sends `text` with one descriptor over a stream socket (a console socket).
pub(crate) fn send_stream(fd: RawFd, text: &str, pass: RawFd) -> nix::Result<()> {
    send(fd, text, Some(pass))
}
