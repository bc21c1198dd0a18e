//! The control protocol between the loader and the processes it starts (the
//! sandbox's init, and the helper of each exec'd process), encoded and decoded here
//! for both ends. One `SOCK_SEQPACKET` socket pair per process started; one message
//! per packet: a tag byte and its fields in a fixed binary layout (integers
//! little-endian, strings and lists length-prefixed); descriptors travel beside it as
//! SCM_RIGHTS, referred to by their index. Decoding never panics: a malformed or
//! truncated packet is a [`ProtocolError`].
//!
//! From init (or an exec helper): [`Message::ProgramPid`], [`Message::ProgramEnded`],
//! [`Message::SetupFailed`], [`Message::PtyMaster`], [`Message::ProgramStopped`],
//! [`Message::ProgramContinued`]. From the program (or exec'd process) before its
//! execve: [`Message::Listener`] or [`Message::ExecFailed`]. From the loader:
//! [`Message::Init`] / [`Message::Exec`] (the plan, first), [`Message::Program`]
//! (init's: the program's part of its plan, once init runs), [`Message::Go`],
//! [`Message::JoinCgroup`].

use crate::capability::CapSet;
use crate::init::{ExecPlan, InitPlan, InitProgram, ProgramPlan, PtyInit, StdioPlan};
use crate::mounts::{Bind, FsSpec, RootMode};
use crate::seccomp::{Filter, Instruction};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::ffi::CString;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// A message on the control channel.
#[derive(Debug)]
pub(crate) enum Message {
    /// From init / an exec helper: the program was forked (its PID: in the sandbox from
    /// init, in the loader's namespace from an exec helper).
    ProgramPid(i32),
    /// The program ended with this wait status (init or the helper exits next).
    ProgramEnded(i32),
    SetupFailed(String),
    /// The program's seccomp listener.
    Listener(OwnedFd),
    /// The program's execve failed with this errno.
    ExecFailed(i32),
    /// From the loader: the user namespace's maps are written / the sandbox's cgroups
    /// are ready.
    Go,
    /// From the loader: the `tasks` file of a v1 cgroup of the sandbox, for init to
    /// join by writing `0` to it.
    JoinCgroup(OwnedFd),
    /// The owned pty's master.
    PtyMaster(OwnedFd),
    /// The program stopped (signal) / continued.
    ProgramStopped(i32),
    ProgramContinued,
    /// From an exec'd process: its PID in the sandbox (it leads its own session and
    /// process group, so they have the same number).
    SandboxPid(i32),
    /// The program has exec'd (or died before): the close-on-exec pipe it held closed.
    Executed,
    /// From the loader to init, first: what init needs to build the sandbox.
    Init(Box<InitPlan>),
    /// From the loader to init, once init runs: the program's part of its plan.
    Program(Box<InitProgram>),
    /// From the loader to an exec helper, first: the process to execute.
    Exec(Box<ExecPlan>),
}

/// Why a packet could not be decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProtocolError {
    #[error("control message truncated")]
    Truncated,
    #[error("unknown control message tag {0:#x}")]
    UnknownTag(u8),
    #[error("control message field invalid: {0}")]
    Invalid(&'static str),
    #[error("control message names descriptor {0}, which did not come with it")]
    MissingDescriptor(u32),
    #[error("control message has {0} bytes left over")]
    Trailing(usize),
    #[error("control channel: {0}")]
    Sys(#[from] nix::Error),
}

const TAG_PID: u8 = b'P';
const TAG_ENDED: u8 = b'E';
const TAG_FAILED: u8 = b'F';
const TAG_LISTENER: u8 = b'L';
const TAG_EXEC_FAILED: u8 = b'X';
const TAG_GO: u8 = b'G';
/// [`Message::Go`] as it is on the wire (one byte), for a reader that makes raw
/// system calls only (`crate::sys::entry`).
pub(crate) const GO_BYTE: u8 = TAG_GO;
const TAG_JOIN: u8 = b'J';
const TAG_MASTER: u8 = b'M';
const TAG_STOPPED: u8 = b'S';
const TAG_CONTINUED: u8 = b'C';
const TAG_INIT: u8 = b'I';
const TAG_EXECUTED: u8 = b'D';
const TAG_SANDBOX_PID: u8 = b'N';
const TAG_EXEC: u8 = b'R';
const TAG_PROGRAM: u8 = b'Q';

/// Most descriptors one message carries (an exec plan: init's pidfd and three stdio).
const MAX_FDS: usize = 8;
/// Largest packet: a plan with its seccomp programs (a few thousand instructions).
const MAX_PACKET: usize = 1 << 20;

/// Creates the pair (both ends close-on-exec).
pub(crate) fn pair() -> nix::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

/// Encodes and sends one message. Uses `sendmsg`, which the sandbox's notify filter
/// never intercepts.
pub(crate) fn send(fd: RawFd, m: &Message) -> nix::Result<()> {
    let (bytes, fds) = encode(m);
    send_raw(fd, &bytes, &fds)
}

fn send_raw(fd: RawFd, bytes: &[u8], fds: &[RawFd]) -> nix::Result<()> {
    let iov = [std::io::IoSlice::new(bytes)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() {
        &[]
    } else {
        &[ControlMessage::ScmRights(fds)]
    };
    sendmsg::<()>(fd, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None).map(drop)
}

/// Sends [`Message::JoinCgroup`] with a descriptor the caller keeps.
pub(crate) fn send_join(fd: RawFd, tasks: RawFd) -> nix::Result<()> {
    send_raw(fd, &[TAG_JOIN, 0, 0, 0, 0], &[tasks])
}

/// Sends one descriptor with a text over a stream socket (an OCI console socket: the
/// one SCM_RIGHTS helper of the crate).
pub(crate) fn send_fd_stream(fd: RawFd, text: &str, pass: RawFd) -> nix::Result<()> {
    send_raw(fd, text.as_bytes(), &[pass])
}

/// Receives one message; `Ok(None)` at end of stream (every sender has gone).
pub(crate) fn recv(fd: RawFd) -> Result<Option<Message>, ProtocolError> {
    let mut buf = vec![0u8; 4096];
    let (n, fds) = match recv_raw(fd, &mut buf)? {
        Some(r) => r,
        None => return Ok(None),
    };
    decode(&buf[..n], fds).map(Some)
}

/// Receives a plan (a large packet: its size is peeked first).
pub(crate) fn recv_plan(fd: RawFd) -> Result<Option<Message>, ProtocolError> {
    let mut probe = [0u8; 1];
    // MSG_TRUNC with MSG_PEEK: the packet's real length, the packet left queued.
    let len = nix::sys::socket::recv(fd, &mut probe, MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC)?;
    let mut buf = vec![0u8; len.clamp(1, MAX_PACKET)];
    let (n, fds) = match recv_raw(fd, &mut buf)? {
        Some(r) => r,
        None => return Ok(None),
    };
    decode(&buf[..n], fds).map(Some)
}

type Received = Option<(usize, Vec<OwnedFd>)>;

fn recv_raw(fd: RawFd, buf: &mut [u8]) -> Result<Received, ProtocolError> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(list) = c {
            fds.extend(list.into_iter().map(crate::sys::fd::own_received));
        }
    }
    if msg.flags.contains(MsgFlags::MSG_TRUNC) {
        return Err(ProtocolError::Truncated);
    }
    let n = msg.bytes;
    if n == 0 && fds.is_empty() {
        return Ok(None);
    }
    Ok(Some((n, fds)))
}

/// A message as bytes and the descriptors that go with it.
pub(crate) fn encode(m: &Message) -> (Vec<u8>, Vec<RawFd>) {
    let mut w = Writer::default();
    match m {
        Message::ProgramPid(p) => w.tag(TAG_PID).i32(*p),
        Message::ProgramEnded(s) => w.tag(TAG_ENDED).i32(*s),
        Message::SetupFailed(s) => w.tag(TAG_FAILED).str(s),
        Message::Listener(fd) => w.tag(TAG_LISTENER).fd(fd),
        Message::ExecFailed(e) => w.tag(TAG_EXEC_FAILED).i32(*e),
        Message::Go => w.tag(TAG_GO),
        Message::JoinCgroup(fd) => w.tag(TAG_JOIN).fd(fd),
        Message::PtyMaster(fd) => w.tag(TAG_MASTER).fd(fd),
        Message::ProgramStopped(s) => w.tag(TAG_STOPPED).i32(*s),
        Message::ProgramContinued => w.tag(TAG_CONTINUED),
        Message::Executed => w.tag(TAG_EXECUTED),
        Message::SandboxPid(p) => w.tag(TAG_SANDBOX_PID).i32(*p),
        Message::Init(p) => {
            w.tag(TAG_INIT);
            w.fs(&p.fs);
            w.bool(p.wait_for_cgroup);
            w.opt_path(&p.join_netns)
        }
        Message::Program(p) => {
            w.tag(TAG_PROGRAM);
            w.program(&p.program);
            w.filter(&p.init_filter);
            w.filter(&p.holder_filter);
            w.bool(p.netns.is_some());
            if let Some(fd) = &p.netns {
                w.fd(fd);
            }
            &mut w
        }
        Message::Exec(p) => {
            w.tag(TAG_EXEC);
            w.program(&p.program);
            w.fd(&p.init_pidfd)
                .u64(p.namespaces)
                .filter(&p.helper_filter)
        }
    };
    (w.buf, w.fds)
}

/// Decodes one packet and the descriptors that came with it. Descriptors the message
/// does not name are closed.
pub(crate) fn decode(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<Message, ProtocolError> {
    let mut r = Reader {
        buf: bytes,
        fds: fds.into_iter().map(Some).collect(),
    };
    let m = match r.u8()? {
        TAG_PID => Message::ProgramPid(r.i32()?),
        TAG_ENDED => Message::ProgramEnded(r.i32()?),
        TAG_FAILED => Message::SetupFailed(r.str()?),
        TAG_LISTENER => Message::Listener(r.fd()?),
        TAG_EXEC_FAILED => Message::ExecFailed(r.i32()?),
        TAG_GO => Message::Go,
        TAG_JOIN => Message::JoinCgroup(r.fd()?),
        TAG_MASTER => Message::PtyMaster(r.fd()?),
        TAG_STOPPED => Message::ProgramStopped(r.i32()?),
        TAG_CONTINUED => Message::ProgramContinued,
        TAG_EXECUTED => Message::Executed,
        TAG_SANDBOX_PID => Message::SandboxPid(r.i32()?),
        TAG_INIT => Message::Init(Box::new(InitPlan {
            fs: r.fs()?,
            wait_for_cgroup: r.bool()?,
            join_netns: r.opt(Reader::path)?,
        })),
        TAG_PROGRAM => Message::Program(Box::new(InitProgram {
            program: r.program()?,
            init_filter: r.filter()?,
            holder_filter: r.filter()?,
            netns: if r.bool()? { Some(r.fd()?) } else { None },
        })),
        TAG_EXEC => Message::Exec(Box::new(ExecPlan {
            program: r.program()?,
            init_pidfd: r.fd()?,
            namespaces: r.u64()?,
            helper_filter: r.filter()?,
        })),
        t => return Err(ProtocolError::UnknownTag(t)),
    };
    if !r.buf.is_empty() {
        return Err(ProtocolError::Trailing(r.buf.len()));
    }
    Ok(m)
}

#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
    fds: Vec<RawFd>,
}

impl Writer {
    fn tag(&mut self, t: u8) -> &mut Self {
        self.buf.push(t);
        self
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(v as u8)
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn len(&mut self, n: usize) -> &mut Self {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX))
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.len(b.len());
        self.buf.extend_from_slice(b);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
    fn path(&mut self, p: &std::path::Path) -> &mut Self {
        use std::os::unix::ffi::OsStrExt;
        self.bytes(p.as_os_str().as_bytes())
    }
    fn opt_path(&mut self, p: &Option<PathBuf>) -> &mut Self {
        match p {
            Some(p) => self.u8(1).path(p),
            None => self.u8(0),
        }
    }
    fn fd(&mut self, fd: &OwnedFd) -> &mut Self {
        let i = self.fds.len();
        self.fds.push(fd.as_raw_fd());
        self.len(i)
    }
    fn cstrings(&mut self, v: &[CString]) -> &mut Self {
        self.len(v.len());
        for s in v {
            self.bytes(s.as_bytes());
        }
        self
    }
    fn filter(&mut self, f: &Filter) -> &mut Self {
        self.len(f.programs().len());
        for p in f.programs() {
            self.len(p.len());
            for i in p {
                self.buf.extend_from_slice(&i.code.to_le_bytes());
                self.buf.push(i.jt);
                self.buf.push(i.jf);
                self.buf.extend_from_slice(&i.k.to_le_bytes());
            }
        }
        self
    }
    fn termios(&mut self, t: &libc::termios) -> &mut Self {
        self.u32(t.c_iflag)
            .u32(t.c_oflag)
            .u32(t.c_cflag)
            .u32(t.c_lflag)
            .u8(t.c_line);
        self.bytes(&t.c_cc);
        self.u32(t.c_ispeed).u32(t.c_ospeed)
    }
    fn fs(&mut self, fs: &FsSpec) -> &mut Self {
        self.opt_path(&fs.rootfs);
        self.u8(match fs.root_mode {
            RootMode::Overlay => 0,
            RootMode::ReadOnly => 1,
            RootMode::Writable => 2,
        });
        self.len(fs.binds.len());
        for b in &fs.binds {
            self.path(&b.source).path(&b.target).bool(b.read_only);
        }
        self.opt_path(&fs.terminal);
        match &fs.hostname {
            Some(h) => self.u8(1).str(h),
            None => self.u8(0),
        };
        self.opt_path(&fs.cwd).opt_path(&fs.caller_cwd);
        self.len(fs.kernel_mounts.len());
        for m in &fs.kernel_mounts {
            self.str(m.fstype).path(&m.target).u64(m.flags).str(&m.data);
        }
        self.len(fs.masked_paths.len());
        for p in &fs.masked_paths {
            self.path(p);
        }
        self.len(fs.readonly_paths.len());
        for p in &fs.readonly_paths {
            self.path(p);
        }
        self
    }
    fn program(&mut self, p: &ProgramPlan) -> &mut Self {
        self.cstrings(&p.argv).cstrings(&p.env).opt_path(&p.cwd);
        match &p.deny {
            Some(f) => self.u8(1).filter(f),
            None => self.u8(0),
        };
        self.filter(&p.notify);
        match p.user {
            Some((u, g)) => self.u8(1).u32(u).u32(g),
            None => self.u8(0),
        };
        self.len(p.rlimits.len());
        for &(r, soft, hard) in &p.rlimits {
            self.i32(r).u64(soft).u64(hard);
        }
        self.u64(p.capabilities.bits());
        self.len(p.additional_gids.len());
        for &g in &p.additional_gids {
            self.u32(g);
        }
        match p.umask {
            Some(m) => self.u8(1).u32(m),
            None => self.u8(0),
        };
        match &p.extra_seccomp {
            Some(f) => self.u8(1).filter(f),
            None => self.u8(0),
        };
        match &p.start_gate {
            Some(fd) => self.u8(1).fd(fd),
            None => self.u8(0),
        };
        match &p.stdio {
            StdioPlan::Inherit => self.u8(0),
            StdioPlan::Terminal(fd) => self.u8(1).fd(fd),
            StdioPlan::Three([a, b, c]) => self.u8(2).fd(a).fd(b).fd(c),
        };
        match &p.pty {
            None => self.u8(0),
            Some(pty) => {
                self.u8(1);
                match &pty.termios {
                    Some(t) => self.u8(1).termios(t),
                    None => self.u8(0),
                };
                match &pty.winsize {
                    Some(w) => self
                        .u8(1)
                        .u32(u32::from(w.ws_row))
                        .u32(u32::from(w.ws_col))
                        .u32(u32::from(w.ws_xpixel))
                        .u32(u32::from(w.ws_ypixel)),
                    None => self.u8(0),
                };
                self.u8(match pty.attach {
                    crate::TerminalAttach::Session => 0,
                    crate::TerminalAttach::Unattached => 1,
                })
            }
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    fds: Vec<Option<OwnedFd>>,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ProtocolError> {
        if self.buf.len() < n {
            return Err(ProtocolError::Truncated);
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>()?[0])
    }
    fn bool(&mut self) -> Result<bool, ProtocolError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ProtocolError::Invalid("boolean")),
        }
    }
    fn u16(&mut self) -> Result<u16, ProtocolError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, ProtocolError> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, ProtocolError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// A count of items each at least `min` bytes long: bounded by what is left, so a
    /// lying count cannot make the decoder allocate much.
    fn count(&mut self, min: usize) -> Result<usize, ProtocolError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min.max(1)) > self.buf.len() {
            return Err(ProtocolError::Truncated);
        }
        Ok(n)
    }
    fn bytes(&mut self) -> Result<Vec<u8>, ProtocolError> {
        let n = self.count(1)?;
        Ok(self.take(n)?.to_vec())
    }
    fn str(&mut self) -> Result<String, ProtocolError> {
        String::from_utf8(self.bytes()?).map_err(|_| ProtocolError::Invalid("UTF-8 text"))
    }
    fn path(&mut self) -> Result<PathBuf, ProtocolError> {
        use std::os::unix::ffi::OsStringExt;
        let b = self.bytes()?;
        if b.contains(&0) {
            return Err(ProtocolError::Invalid("path with NUL"));
        }
        Ok(PathBuf::from(std::ffi::OsString::from_vec(b)))
    }
    fn opt<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ProtocolError>,
    ) -> Result<Option<T>, ProtocolError> {
        if self.bool()? {
            f(self).map(Some)
        } else {
            Ok(None)
        }
    }
    fn fd(&mut self) -> Result<OwnedFd, ProtocolError> {
        let i = self.u32()?;
        self.fds
            .get_mut(i as usize)
            .and_then(Option::take)
            .ok_or(ProtocolError::MissingDescriptor(i))
    }
    fn cstrings(&mut self) -> Result<Vec<CString>, ProtocolError> {
        let n = self.count(4)?;
        (0..n)
            .map(|_| {
                CString::new(self.bytes()?).map_err(|_| ProtocolError::Invalid("NUL in a string"))
            })
            .collect()
    }
    fn filter(&mut self) -> Result<Filter, ProtocolError> {
        let n = self.count(4)?;
        let mut programs = Vec::with_capacity(n);
        for _ in 0..n {
            let len = self.count(8)?;
            let mut p = Vec::with_capacity(len);
            for _ in 0..len {
                p.push(Instruction {
                    code: self.u16()?,
                    jt: self.u8()?,
                    jf: self.u8()?,
                    k: self.u32()?,
                });
            }
            programs.push(p);
        }
        Filter::from_programs(programs).ok_or(ProtocolError::Invalid("empty seccomp filter"))
    }
    fn termios(&mut self) -> Result<libc::termios, ProtocolError> {
        let (c_iflag, c_oflag, c_cflag, c_lflag, c_line) = (
            self.u32()?,
            self.u32()?,
            self.u32()?,
            self.u32()?,
            self.u8()?,
        );
        let cc = self.bytes()?;
        let mut c_cc = [0u8; libc::NCCS];
        if cc.len() != c_cc.len() {
            return Err(ProtocolError::Invalid("termios control characters"));
        }
        c_cc.copy_from_slice(&cc);
        Ok(libc::termios {
            c_iflag,
            c_oflag,
            c_cflag,
            c_lflag,
            c_line,
            c_cc,
            c_ispeed: self.u32()?,
            c_ospeed: self.u32()?,
        })
    }
    fn winsize(&mut self) -> Result<libc::winsize, ProtocolError> {
        let mut v = [0u16; 4];
        for x in &mut v {
            *x = u16::try_from(self.u32()?).map_err(|_| ProtocolError::Invalid("window size"))?;
        }
        Ok(libc::winsize {
            ws_row: v[0],
            ws_col: v[1],
            ws_xpixel: v[2],
            ws_ypixel: v[3],
        })
    }
    fn fs(&mut self) -> Result<FsSpec, ProtocolError> {
        let rootfs = self.opt(Self::path)?;
        let root_mode = match self.u8()? {
            0 => RootMode::Overlay,
            1 => RootMode::ReadOnly,
            2 => RootMode::Writable,
            _ => return Err(ProtocolError::Invalid("root mode")),
        };
        let n = self.count(9)?;
        let mut binds = Vec::with_capacity(n);
        for _ in 0..n {
            binds.push(Bind {
                source: self.path()?,
                target: self.path()?,
                read_only: self.bool()?,
            });
        }
        let terminal = self.opt(Self::path)?;
        let hostname = self.opt(Self::str)?;
        let cwd = self.opt(Self::path)?;
        let caller_cwd = self.opt(Self::path)?;
        let n = self.count(8)?;
        let mut kernel_mounts = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.str()?;
            let fstype = crate::mounts::KERNEL_MOUNT_TYPES
                .iter()
                .copied()
                .find(|t| *t == name)
                .ok_or(ProtocolError::Invalid("kernel mount type"))?;
            kernel_mounts.push(crate::mounts::KernelMount {
                fstype,
                target: self.path()?,
                flags: self.u64()?,
                data: self.str()?,
            });
        }
        let n = self.count(4)?;
        let masked_paths = (0..n).map(|_| self.path()).collect::<Result<_, _>>()?;
        let n = self.count(4)?;
        let readonly_paths = (0..n).map(|_| self.path()).collect::<Result<_, _>>()?;
        Ok(FsSpec {
            rootfs,
            root_mode,
            binds,
            terminal,
            hostname,
            cwd,
            caller_cwd,
            kernel_mounts,
            masked_paths,
            readonly_paths,
        })
    }
    fn program(&mut self) -> Result<ProgramPlan, ProtocolError> {
        let argv = self.cstrings()?;
        let env = self.cstrings()?;
        let cwd = self.opt(Self::path)?;
        let deny = self.opt(Self::filter)?;
        let notify = self.filter()?;
        let user = self.opt(|r| Ok((r.u32()?, r.u32()?)))?;
        let n = self.count(20)?;
        let mut rlimits = Vec::with_capacity(n);
        for _ in 0..n {
            rlimits.push((self.i32()?, self.u64()?, self.u64()?));
        }
        let capabilities = CapSet::from_bits(self.u64()?);
        let n = self.count(4)?;
        let additional_gids = (0..n).map(|_| self.u32()).collect::<Result<_, _>>()?;
        let umask = self.opt(Self::u32)?;
        let extra_seccomp = self.opt(Self::filter)?;
        let start_gate = self.opt(Self::fd)?;
        let stdio = match self.u8()? {
            0 => StdioPlan::Inherit,
            1 => StdioPlan::Terminal(self.fd()?),
            2 => StdioPlan::Three([self.fd()?, self.fd()?, self.fd()?]),
            _ => return Err(ProtocolError::Invalid("stdio")),
        };
        let pty = self.opt(|r| {
            Ok(PtyInit {
                termios: r.opt(Self::termios)?,
                winsize: r.opt(Self::winsize)?,
                attach: match r.u8()? {
                    0 => crate::TerminalAttach::Session,
                    1 => crate::TerminalAttach::Unattached,
                    _ => return Err(ProtocolError::Invalid("terminal attach")),
                },
            })
        })?;
        Ok(ProgramPlan {
            argv,
            env,
            cwd,
            deny,
            notify,
            user,
            additional_gids,
            umask,
            extra_seccomp,
            start_gate,
            rlimits,
            capabilities,
            stdio,
            pty,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn program_plan() -> Message {
        let program = ProgramPlan {
            argv: vec![CString::new("sh").unwrap(), CString::new("-c").unwrap()],
            env: vec![CString::new("A=b").unwrap()],
            cwd: Some("/tmp".into()),
            deny: Some(crate::seccomp::program_filter::<&str>(&[]).unwrap()),
            notify: crate::seccomp::notify_filter(&crate::seccomp::NotifyOptions { tty_io: true })
                .unwrap(),
            user: Some((1000, 100)),
            additional_gids: vec![5, 27],
            umask: Some(0o27),
            extra_seccomp: Some(crate::seccomp::init_filter().unwrap()),
            start_gate: None,
            rlimits: vec![(7, 10, 20)],
            capabilities: CapSet::from_bits(0b101),
            stdio: StdioPlan::Inherit,
            pty: Some(PtyInit {
                termios: None,
                winsize: Some(libc::winsize {
                    ws_row: 30,
                    ws_col: 100,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                }),
                attach: crate::TerminalAttach::Unattached,
            }),
        };
        Message::Program(Box::new(InitProgram {
            program,
            init_filter: crate::seccomp::init_filter().unwrap(),
            holder_filter: crate::seccomp::holder_filter().unwrap(),
            netns: None,
        }))
    }

    fn init_plan() -> Message {
        Message::Init(Box::new(InitPlan {
            fs: FsSpec {
                rootfs: Some("/bundle/rootfs".into()),
                root_mode: RootMode::Writable,
                binds: vec![Bind {
                    source: "/a".into(),
                    target: "/b".into(),
                    read_only: true,
                }],
                terminal: None,
                hostname: Some("h".into()),
                cwd: None,
                caller_cwd: Some("/x".into()),
                kernel_mounts: vec![crate::mounts::KernelMount {
                    fstype: "mqueue",
                    target: "/dev/mqueue".into(),
                    flags: libc::MS_NOSUID,
                    data: "mode=1777".into(),
                }],
                masked_paths: vec!["/sys/dev/block".into()],
                readonly_paths: vec!["/proc/bus".into()],
            },
            wait_for_cgroup: true,
            join_netns: Some("/run/netns/n1".into()),
        }))
    }

    #[test]
    fn a_plan_round_trips() {
        let m = init_plan();
        let (bytes, fds) = encode(&m);
        assert!(fds.is_empty());
        let Message::Init(back) = decode(&bytes, Vec::new()).unwrap() else {
            panic!("not an init plan");
        };
        let Message::Init(orig) = m else {
            unreachable!()
        };
        assert_eq!(back.fs, orig.fs);
        assert_eq!(back.join_netns, orig.join_netns);
        assert!(back.wait_for_cgroup);

        let m = program_plan();
        let (bytes, fds) = encode(&m);
        assert!(fds.is_empty());
        let Message::Program(back) = decode(&bytes, Vec::new()).unwrap() else {
            panic!("not the program's plan");
        };
        let Message::Program(orig) = m else {
            unreachable!()
        };
        assert_eq!(back.program.argv, orig.program.argv);
        assert_eq!(back.program.env, orig.program.env);
        assert_eq!(back.program.deny, orig.program.deny);
        assert_eq!(back.program.notify, orig.program.notify);
        assert_eq!(back.program.user, orig.program.user);
        assert_eq!(back.program.rlimits, orig.program.rlimits);
        assert_eq!(back.program.capabilities, orig.program.capabilities);
        assert_eq!(back.program.additional_gids, [5, 27]);
        assert_eq!(back.program.umask, Some(0o27));
        assert_eq!(back.program.extra_seccomp, orig.program.extra_seccomp);
        assert!(back.program.start_gate.is_none());
        assert_eq!(back.init_filter, orig.init_filter);
        assert_eq!(back.holder_filter, orig.holder_filter);
        let pty = back.program.pty.unwrap();
        assert_eq!(pty.attach, crate::TerminalAttach::Unattached);
        let w = pty.winsize.unwrap();
        assert_eq!((w.ws_row, w.ws_col), (30, 100));
    }

    #[test]
    fn small_messages_round_trip() {
        for m in [
            Message::ProgramPid(7),
            Message::ProgramEnded(0x0900),
            Message::SetupFailed("no /proc".into()),
            Message::ExecFailed(2),
            Message::Go,
            Message::ProgramStopped(19),
            Message::ProgramContinued,
            Message::Executed,
            Message::SandboxPid(3),
        ] {
            let (bytes, _) = encode(&m);
            let back = decode(&bytes, Vec::new()).unwrap();
            assert_eq!(format!("{m:?}"), format!("{back:?}"));
        }
        // A descriptor the message names but that did not come with it.
        let (bytes, _) = encode(&Message::Listener(
            std::fs::File::open("/dev/null").unwrap().into(),
        ));
        assert!(matches!(
            decode(&bytes, Vec::new()),
            Err(ProtocolError::MissingDescriptor(0))
        ));
    }

    /// A bounded fuzz test of the decoder: random packets, and every truncation and
    /// many single-byte corruptions of a real plan, decode to a message or an error,
    /// never a panic (and quickly: a lying length cannot make it allocate much).
    #[test]
    fn the_decoder_never_panics() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for plan in [init_plan(), program_plan()] {
            let (good, _) = encode(&plan);
            for n in (0..good.len()).step_by(7) {
                let _ = decode(&good[..n], Vec::new());
            }
            for _ in 0..2_000 {
                let mut b = good.clone();
                let at = (next() as usize) % b.len();
                b[at] = next() as u8;
                let _ = decode(&b, Vec::new());
            }
        }
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(first) = b.first_mut() {
                // Mostly valid tags, so that the fields get decoded.
                *first = b"PEFLXGJMSCIRDNQ"[(next() % 15) as usize];
            }
            let _ = decode(&b, Vec::new());
        }
    }
}
