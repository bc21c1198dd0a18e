//! The control protocol between `sandbox` clients (`exec`, `kill`, `wait`, `ps`,
//! `delete`, ...) and a sandbox's supervisor (`sandbox run -d`): one module, used by
//! both ends.
//!
//! Transport: the supervisor's `SOCK_SEQPACKET` unix socket (`<state dir>/<ID>/sock`),
//! so every message is one packet and message boundaries are the kernel's. A message
//! is a frame: a 4-byte big-endian length, then that many bytes of JSON, an
//! [`Envelope`] `{"version": 1, "body": {...}}`. Descriptors (an exec's stdio or
//! terminal) travel with the message as `SCM_RIGHTS`, at most [`MAX_FDS`].
//!
//! Rules the decoder enforces (each is a [`ProtocolError`], answered with an error and
//! never fatal to the supervisor): at most [`MAX_MESSAGE`] bytes of JSON; the length
//! field equals the bytes received (a truncated or padded frame is refused); the
//! version is [`VERSION`]; the body is a known request with known fields only.
//!
//! A connection carries one request and its answer. The exception is
//! [`Request::Exec`]: after its [`Response::Started`] the client may send
//! [`Request::Resize`] and [`Request::Signal`] for that process (each acknowledged
//! with [`Response::Ok`] once done, or an error), and the supervisor sends
//! [`Response::ProcessStopped`] and [`Response::ProcessContinued`] as the process
//! stops and continues, and [`Response::Exited`] when it ends. Anything else is out
//! of order.

use serde::{Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;
/// Most bytes of JSON in one message.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Most descriptors passed with one message.
pub const MAX_FDS: usize = 3;
/// Bytes of the length field.
const HEADER: usize = 4;

/// Why a message could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("truncated message: {0} bytes, shorter than the 4-byte length field")]
    NoHeader(usize),
    #[error("message of {0} bytes exceeds the limit of {MAX_MESSAGE}")]
    TooLong(usize),
    #[error(
        "truncated or padded message: the length field says {declared} bytes, {actual} arrived"
    )]
    LengthMismatch { declared: usize, actual: usize },
    #[error("malformed message: {0}")]
    Json(String),
    #[error("unsupported protocol version {0} (this build speaks {VERSION})")]
    Version(u32),
    #[error("too many descriptors with one message (at most {MAX_FDS})")]
    TooManyFds,
    #[error("the peer closed the connection")]
    Closed,
    #[error("socket: {0}")]
    Socket(nix::Error),
}

/// The frame around every message.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T> {
    pub version: u32,
    pub body: T,
}

/// Delivery modes of [`Request::Kill`] (gVisor's loader's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KillMode {
    /// The process named (default: the first program).
    Process,
    /// The foreground process group of that process's terminal (the process itself
    /// when its terminal has no foreground group).
    Foreground,
    /// Every process of the sandbox but init.
    All,
}

/// How an exec'd process gets its terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecTty {
    /// The three descriptors passed are its stdin, stdout and stderr.
    Stdio,
    /// The one descriptor passed is a terminal it borrows (sentry-enforced).
    Borrow,
    /// A pty of the sandbox's own: its master comes back with
    /// [`Response::Started`] (or goes to `console_socket`).
    Pty,
}

/// Starting a process in the running sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    /// `KEY=VALUE` entries added to (or replacing in) the first program's environment.
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub user: Option<(u32, u32)>,
    pub tty: ExecTty,
    pub console_socket: Option<String>,
    /// (rows, cols) of the client's terminal for a pty.
    pub winsize: Option<(u16, u16)>,
    /// The capabilities the process keeps (bits; at most the sandbox's); absent: the
    /// sandbox's (OCI `exec`).
    #[serde(default)]
    pub capabilities: Option<u64>,
}

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The sandbox's state file as the supervisor sees it.
    State,
    /// Send `signal` by `mode` (`pid`: a sandbox PID; none: the first program).
    Kill {
        pid: Option<i32>,
        mode: KillMode,
        signal: i32,
    },
    /// The wait status of `pid` (none: the first program) once it has ended.
    Wait {
        pid: Option<i32>,
    },
    /// The sandbox's processes (the sentry's view).
    Ps,
    /// A new process in the sandbox; descriptors as [`ExecRequest::tty`] says.
    Exec(ExecRequest),
    /// After `Exec` on the same connection: the client's terminal was resized.
    Resize {
        rows: u16,
        cols: u16,
    },
    /// After `Exec` on the same connection: a signal the client received, for the
    /// foreground group of its process's terminal.
    Signal {
        signal: i32,
    },
    /// Kill everything, remove the state; refused while the first program runs
    /// unless `force`.
    Delete {
        force: bool,
    },
    /// OCI `start`: let the created (held) first program exec.
    Start,
    /// OCI `pause` / `resume`: freeze or thaw every process of the sandbox.
    Pause,
    Resume,
}

/// A process as [`Request::Ps`] lists it: the loader's own description.
pub use sandbox_loader::ProcessInfo as Process;

/// What went wrong, for the client's exit status and message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request could not be decoded.
    Malformed,
    /// The peer is not the sandbox's owner (nor root).
    Unauthorized,
    /// Not valid on this connection now.
    OutOfOrder,
    /// No such process in the sandbox.
    NoSuchProcess,
    /// The process's status was already waited for.
    AlreadyWaited,
    /// The process has no controlling terminal (`--mode foreground`).
    NoTerminal,
    /// The sandbox's first program has ended.
    Stopped,
    /// The sandbox still runs (delete without force).
    Running,
    /// The program was not found (exit 127).
    NotFound,
    /// The program could not be executed (exit 126).
    CannotExecute,
    /// This supervisor cannot do it.
    Unsupported,
    /// Anything else (exit 125).
    Failed,
}

/// The supervisor's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Ok,
    State(crate::state::SandboxState),
    /// The exec'd process runs (sandbox PID); a pty's master comes with it.
    Started {
        pid: i32,
    },
    /// The process ended with this wait status.
    Exited {
        wait_status: i32,
    },
    /// During an exec: the process itself stopped (by `signal`) / continued.
    ProcessStopped {
        signal: i32,
    },
    ProcessContinued,
    Processes {
        processes: Vec<Process>,
    },
    Error {
        kind: ErrorKind,
        message: String,
    },
}

impl Response {
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
        Response::Error {
            kind,
            message: message.into(),
        }
    }
}

/// Encodes `body` as one frame.
pub fn encode<T: Serialize>(body: &T) -> Result<Vec<u8>, ProtocolError> {
    let json = serde_json::to_vec(&Envelope {
        version: VERSION,
        body,
    })
    .map_err(|e| ProtocolError::Json(e.to_string()))?;
    if json.len() > MAX_MESSAGE {
        return Err(ProtocolError::TooLong(json.len()));
    }
    let len = u32::try_from(json.len()).map_err(|_| ProtocolError::TooLong(json.len()))?;
    let mut frame = Vec::with_capacity(HEADER + json.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&json);
    Ok(frame)
}

/// Decodes one frame (see the module's rules). Never panics, whatever the bytes.
pub fn decode<T: serde::de::DeserializeOwned>(frame: &[u8]) -> Result<T, ProtocolError> {
    let (header, json) = match frame.split_first_chunk::<HEADER>() {
        Some(split) => split,
        None => return Err(ProtocolError::NoHeader(frame.len())),
    };
    let declared = u32::from_be_bytes(*header) as usize;
    if declared > MAX_MESSAGE {
        return Err(ProtocolError::TooLong(declared));
    }
    if declared != json.len() {
        return Err(ProtocolError::LengthMismatch {
            declared,
            actual: json.len(),
        });
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        version: u32,
        body: serde_json::Value,
    }
    let raw: Raw = serde_json::from_slice(json).map_err(|e| ProtocolError::Json(e.to_string()))?;
    if raw.version != VERSION {
        return Err(ProtocolError::Version(raw.version));
    }
    serde_json::from_value(raw.body).map_err(|e| ProtocolError::Json(e.to_string()))
}

/// Sends `body` (and descriptors) as one packet.
pub fn send<T: Serialize>(
    sock: BorrowedFd<'_>,
    body: &T,
    fds: &[BorrowedFd<'_>],
) -> Result<(), ProtocolError> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    if fds.len() > MAX_FDS {
        return Err(ProtocolError::TooManyFds);
    }
    let frame = encode(body)?;
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let cmsgs: &[ControlMessage] = if raw.is_empty() {
        &[]
    } else {
        &[ControlMessage::ScmRights(&raw)]
    };
    let iov = [IoSlice::new(&frame)];
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::Error::EINTR) => continue,
            Err(nix::Error::EPIPE) | Err(nix::Error::ECONNRESET) => {
                return Err(ProtocolError::Closed)
            }
            Err(e) => return Err(ProtocolError::Socket(e)),
        }
    }
}

/// Receives one packet: the raw frame and the descriptors that came with it (owned
/// here, close-on-exec). `Closed` at end of stream. A packet longer than a frame can
/// be, or with more than [`MAX_FDS`] descriptors, is an error (the descriptors that
/// did arrive are closed).
pub fn recv_frame(sock: BorrowedFd<'_>) -> Result<(Vec<u8>, Vec<OwnedFd>), ProtocolError> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = vec![0u8; HEADER + MAX_MESSAGE + 1];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(nix::Error::EINTR) => continue,
            Err(nix::Error::ECONNRESET) => return Err(ProtocolError::Closed),
            Err(nix::Error::EAGAIN) => return Err(ProtocolError::Socket(nix::Error::ETIMEDOUT)),
            Err(e) => return Err(ProtocolError::Socket(e)),
        };
        let mut fds = Vec::new();
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(received) = c {
                    fds.extend(received.into_iter().map(crate::sys::own_received));
                }
            }
        }
        let n = msg.bytes;
        let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
        let ctrunc = msg.flags.contains(MsgFlags::MSG_CTRUNC);
        if truncated {
            return Err(ProtocolError::TooLong(n));
        }
        if ctrunc || fds.len() > MAX_FDS {
            return Err(ProtocolError::TooManyFds);
        }
        if n == 0 && fds.is_empty() {
            return Err(ProtocolError::Closed);
        }
        buf.truncate(n);
        return Ok((buf, fds));
    }
}

/// [`recv_frame`] and [`decode`].
pub fn recv<T: serde::de::DeserializeOwned>(
    sock: BorrowedFd<'_>,
) -> Result<(T, Vec<OwnedFd>), ProtocolError> {
    let (frame, fds) = recv_frame(sock)?;
    Ok((decode(&frame)?, fds))
}

/// Connects to a supervisor's socket.
pub fn connect(path: &std::path::Path) -> Result<OwnedFd, ProtocolError> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(ProtocolError::Socket)?;
    let addr = UnixAddr::new(path).map_err(ProtocolError::Socket)?;
    nix::sys::socket::connect(sock.as_fd().as_raw_fd(), &addr).map_err(ProtocolError::Socket)?;
    Ok(sock)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let reqs = [
            Request::State,
            Request::Kill {
                pid: Some(3),
                mode: KillMode::Foreground,
                signal: 2,
            },
            Request::Wait { pid: None },
            Request::Exec(ExecRequest {
                argv: vec!["sh".into()],
                env: vec!["A=B".into()],
                cwd: Some("/".into()),
                user: Some((1, 2)),
                tty: ExecTty::Pty,
                console_socket: None,
                winsize: Some((24, 80)),
                capabilities: None,
            }),
            Request::Delete { force: true },
        ];
        for r in reqs {
            let frame = encode(&r).unwrap();
            assert_eq!(decode::<Request>(&frame).unwrap(), r);
        }
    }

    #[test]
    fn refuses_bad_frames() {
        let frame = encode(&Request::State).unwrap();
        assert!(matches!(
            decode::<Request>(&frame[..frame.len() - 1]),
            Err(ProtocolError::LengthMismatch { .. })
        ));
        assert!(matches!(
            decode::<Request>(&frame[..2]),
            Err(ProtocolError::NoHeader(2))
        ));
        let mut long = frame.clone();
        long[..4].copy_from_slice(&(MAX_MESSAGE as u32 + 1).to_be_bytes());
        assert!(matches!(
            decode::<Request>(&long),
            Err(ProtocolError::TooLong(_))
        ));
        let json = br#"{"version":2,"body":{"type":"state"}}"#;
        let mut v2 = (json.len() as u32).to_be_bytes().to_vec();
        v2.extend_from_slice(json);
        assert!(matches!(
            decode::<Request>(&v2),
            Err(ProtocolError::Version(2))
        ));
        let json = br#"{"version":1,"body":{"type":"wait","pid":null,"x":1}}"#;
        let mut extra = (json.len() as u32).to_be_bytes().to_vec();
        extra.extend_from_slice(json);
        assert!(matches!(
            decode::<Request>(&extra),
            Err(ProtocolError::Json(_))
        ));
    }

    fn frame_of(json: &[u8]) -> Vec<u8> {
        let mut f = (json.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(json);
        f
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Arbitrary bytes: an error or a request, never a panic.
        #[test]
        fn decoder_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode::<Request>(&bytes);
            let _ = decode::<Response>(&bytes);
        }

        /// Arbitrary bytes behind a correct length field reach the JSON parser.
        #[test]
        fn decoder_survives_any_json_body(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode::<Request>(&frame_of(&bytes));
        }

        /// Structured garbage: JSON-ish text built from the protocol's own tokens.
        #[test]
        fn decoder_survives_jsonish(parts in proptest::collection::vec(prop_oneof![
            Just("{".to_string()), Just("}".to_string()), Just("[".to_string()), Just("]".to_string()),
            Just(",".to_string()), Just(":".to_string()), Just("\"version\"".to_string()),
            Just("\"body\"".to_string()), Just("\"type\"".to_string()), Just("\"exec\"".to_string()),
            Just("\"kill\"".to_string()), Just("\"argv\"".to_string()), Just("1".to_string()),
            Just("-1".to_string()), Just("null".to_string()), Just("1e999".to_string()),
            Just("\"\\u0000\"".to_string()), "[a-z]{0,5}".prop_map(|s| format!("\"{s}\"")),
        ], 0..60)) {
            let text = parts.concat();
            let _ = decode::<Request>(&frame_of(text.as_bytes()));
        }

        /// Every request a client can encode decodes to itself.
        #[test]
        fn kill_round_trips(pid in proptest::option::of(any::<i32>()), signal in any::<i32>(), m in 0u8..3) {
            let mode = [KillMode::Process, KillMode::Foreground, KillMode::All][m as usize];
            let r = Request::Kill { pid, mode, signal };
            prop_assert_eq!(decode::<Request>(&encode(&r).unwrap()).unwrap(), r);
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut json = br#"{"version":1,"body":"#.to_vec();
        json.extend(std::iter::repeat_n(b'[', 50_000));
        assert!(decode::<Request>(&frame_of(&json)).is_err());
    }
}
