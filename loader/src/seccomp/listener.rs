//! The user-notification listener: receiving notifications and answering them.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use super::SeccompError;
use crate::sys::seccomp as sys;

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6).
const SYNC_WAKE_UP: u64 = 1;

/// Largest valid errno (`MAX_ERRNO`): values above it are not errors to user space.
const MAX_ERRNO: i32 = 4095;

/// Kernel-internal errno that, returned from a syscall with a signal pending, makes the
/// kernel handle the signal and then restart the syscall (or fail it with EINTR when a
/// handler without SA_RESTART ran). With no signal pending it would leak to user space
/// as errno 512: send the signal first.
pub const ERESTARTSYS: i32 = 512;

/// One syscall waiting for the listener's answer (`struct seccomp_notif`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Cookie that names this notification in [`Listener::respond`] and
    /// [`Listener::id_valid`].
    pub id: u64,
    /// The calling thread as seen from the PID namespace of the thread that called
    /// [`Listener::recv`] (0 if it is not visible there).
    pub pid: u32,
    /// Syscall number.
    pub nr: i64,
    /// `AUDIT_ARCH_*` of the call.
    pub arch: u32,
    /// Address of the syscall instruction.
    pub instruction_pointer: u64,
    /// Raw arguments. Pointers point into the caller's memory; read it with
    /// [`read_bytes`](crate::seccomp::read_bytes) and check [`Listener::id_valid`]
    /// afterwards. Memory can change between that read and the syscall running on
    /// `Continue` (another thread of the caller may write it), so never approve on the
    /// strength of memory contents alone.
    pub args: [u64; 6],
}

impl Notification {
    /// The ioctl request as the kernel uses it: the low 32 bits of the second argument
    /// (`unsigned int cmd`). Compare this, never the full `args[1]`, against
    /// [`NOTIFY_IOCTLS`](crate::seccomp::NOTIFY_IOCTLS).
    pub fn ioctl_cmd(&self) -> u32 {
        self.args[1] as u32
    }

    fn decode(words: &[u64]) -> Notification {
        let halves = |w: u64| {
            let b = w.to_ne_bytes();
            (
                u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            )
        };
        // struct seccomp_notif { u64 id; u32 pid; u32 flags;
        //   struct seccomp_data { i32 nr; u32 arch; u64 ip; u64 args[6]; } }
        let (pid, _flags) = halves(words[1]);
        let (nr, arch) = halves(words[2]);
        let mut args = [0u64; 6];
        args.copy_from_slice(&words[4..10]);
        Notification {
            id: words[0],
            pid,
            nr: i64::from(nr as i32),
            arch,
            instruction_pointer: words[3],
            args,
        }
    }
}

/// The answer to a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// Run the syscall as the caller made it (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
    Continue,
    /// Do not run it; it returns this value.
    Return(i64),
    /// Do not run it; it fails with this positive errno (1..=4095, kernel-internal codes
    /// such as [`ERESTARTSYS`] included).
    Error(i32),
}

/// Our and the kernel's sizes of the notification structures.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    notif_words: usize,
    resp_words: usize,
}

fn sizes() -> Result<Sizes, SeccompError> {
    static SIZES: OnceLock<Result<Sizes, i32>> = OnceLock::new();
    let cached = SIZES.get_or_init(|| {
        let kernel = sys::notif_sizes().map_err(|e| e.raw_os_error().unwrap_or(libc::EINVAL))?;
        let notif = usize::from(kernel.seccomp_notif).max(size_of::<libc::seccomp_notif>());
        let resp =
            usize::from(kernel.seccomp_notif_resp).max(size_of::<libc::seccomp_notif_resp>());
        Ok(Sizes {
            notif_words: notif.div_ceil(8),
            resp_words: resp.div_ceil(8),
        })
    });
    cached
        .as_ref()
        .map(|s| *s)
        .map_err(|&errno| SeccompError::NotifSizes(io::Error::from_raw_os_error(errno)))
}

/// Words of stack buffer used when the kernel's structures fit (they are 80 and 24
/// bytes today).
const STACK_WORDS: usize = 32;

/// Owner of a seccomp listener fd (from [`install_with_listener`]).
///
/// [`recv`](Self::recv) blocks until a notification is pending, whatever O_NONBLOCK
/// says: poll the fd for POLLIN first. POLLHUP means no task uses the filter any more.
/// Each notification must be answered (or its task ends): until then the task sleeps,
/// interruptibly unless the filter was installed with
/// [`install_with_listener_killable`](super::install_with_listener_killable). When
/// every listener fd is closed, pending and future notified syscalls fail with ENOSYS.
///
/// [`install_with_listener`]: super::install_with_listener
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
}

impl Listener {
    /// Takes ownership of a listener fd.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Listener { fd }
    }

    /// Gives the fd back.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Asks the kernel to wake the notified task on the CPU of the answering thread and
    /// to switch to it at once (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6): a
    /// round trip costs microseconds instead of tens of microseconds. `Ok(false)` when
    /// the kernel lacks the flag (EINVAL or ENOTTY): it still works, slower.
    pub fn set_sync_wakeup(&self) -> Result<bool, SeccompError> {
        match sys::notif_set_flags(self.fd.as_fd(), SYNC_WAKE_UP) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTTY)) => Ok(false),
            Err(e) => Err(SeccompError::SetFlags(e)),
        }
    }

    /// Receives the next notification, blocking until there is one (see the type's
    /// documentation). Retries EINTR. [`SeccompError::NotificationWithdrawn`] when the
    /// pending notification went away before it was read (its task was interrupted by a
    /// signal or died): poll again.
    pub fn recv(&self) -> Result<Notification, SeccompError> {
        let sizes = sizes()?;
        let mut stack = [0u64; STACK_WORDS];
        let mut heap = Vec::new();
        let buf: &mut [u64] = if sizes.notif_words <= STACK_WORDS {
            &mut stack[..sizes.notif_words]
        } else {
            heap.resize(sizes.notif_words, 0);
            &mut heap
        };
        loop {
            // The kernel refuses a buffer that is not zeroed.
            buf.fill(0);
            match sys::notif_recv(self.fd.as_fd(), buf) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    return Err(SeccompError::NotificationWithdrawn)
                }
                Err(e) => return Err(SeccompError::Recv(e)),
            }
        }
        let notification = Notification::decode(buf);
        tracing::trace!(
            id = notification.id,
            pid = notification.pid,
            nr = notification.nr,
            "seccomp notification"
        );
        Ok(notification)
    }

    /// Whether notification `id` is still pending (its task is still waiting for the
    /// answer). Any failure of the check counts as "no".
    pub fn id_valid(&self, id: u64) -> bool {
        Self::id_valid_on(self.fd.as_fd(), id)
    }

    /// [`Listener::id_valid`] on a borrowed listener descriptor.
    pub fn id_valid_on(fd: BorrowedFd<'_>, id: u64) -> bool {
        sys::notif_id_valid(fd, id).is_ok()
    }

    /// Answers notification `id`. [`SeccompError::TargetGone`] when it is no longer
    /// pending: its task was interrupted by a signal (it will restart the syscall, which
    /// notifies again under a new id, or fail with EINTR) or died.
    pub fn respond(&self, id: u64, response: Response) -> Result<(), SeccompError> {
        let (val, error, flags): (i64, i32, u32) = match response {
            Response::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
            Response::Return(val) => (val, 0, 0),
            Response::Error(errno) if (1..=MAX_ERRNO).contains(&errno) => (0, -errno, 0),
            Response::Error(errno) => return Err(SeccompError::InvalidErrno(errno)),
        };
        let sizes = sizes()?;
        let mut stack = [0u64; STACK_WORDS];
        let mut heap = Vec::new();
        let buf: &mut [u64] = if sizes.resp_words <= STACK_WORDS {
            &mut stack[..sizes.resp_words]
        } else {
            heap.resize(sizes.resp_words, 0);
            &mut heap
        };
        // struct seccomp_notif_resp { u64 id; i64 val; i32 error; u32 flags; }
        let e = error.to_ne_bytes();
        let f = flags.to_ne_bytes();
        buf[0] = id;
        buf[1] = val as u64;
        buf[2] = u64::from_ne_bytes([e[0], e[1], e[2], e[3], f[0], f[1], f[2], f[3]]);
        tracing::trace!(id, ?response, "seccomp response");
        match sys::notif_send(self.fd.as_fd(), buf) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                Err(SeccompError::TargetGone { id })
            }
            Err(source) => Err(SeccompError::Respond { id, source }),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<OwnedFd> for Listener {
    fn from(fd: OwnedFd) -> Self {
        Listener::from_fd(fd)
    }
}

/// Sends a listener fd over the unix socket `sock` (SCM_RIGHTS, one data byte).
/// Async-signal-safe: call it between fork and exec, right after
/// [`install_with_listener`](super::install_with_listener) (sendmsg is never notified).
pub fn send_listener(sock: BorrowedFd<'_>, listener: BorrowedFd<'_>) -> Result<(), SeccompError> {
    sys::send_fd(sock, listener).map_err(SeccompError::PassFd)
}

/// Receives a listener fd sent with [`send_listener`]. Honours the socket's receive
/// timeout; end of stream without an fd (the sender died or failed before sending)
/// is an `UnexpectedEof` [`SeccompError::PassFd`].
pub fn recv_listener(sock: BorrowedFd<'_>) -> Result<Listener, SeccompError> {
    sys::recv_fd(sock)
        .map(Listener::from_fd)
        .map_err(SeccompError::PassFd)
}
