//! Raw seccomp system calls: installing a classic-BPF filter, the user-notification
//! ioctls, and handing the listener fd over a unix socket (SCM_RIGHTS).
//!
//! Everything used between `fork` and `exec` (`has_cap_sys_admin`, `no_new_privs`,
//! `set_no_new_privs`, `set_mode_filter`, `send_fd`) is a bare system call: no
//! allocation, no lock, no logging, so it is async-signal-safe.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::seccomp::Instruction;

// `Instruction` is passed to the kernel as `struct sock_filter`: same fields, same order.
const _: () = assert!(size_of::<Instruction>() == size_of::<libc::sock_filter>());
const _: () =
    assert!(std::mem::align_of::<Instruction>() == std::mem::align_of::<libc::sock_filter>());

/// Bit of `CAP_SYS_ADMIN` in the first word of the capability sets.
const CAP_SYS_ADMIN_BIT: u32 = 1 << 21;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Whether the calling thread has `CAP_SYS_ADMIN` in its effective set (in its own user
/// namespace, which is where seccomp checks it). Async-signal-safe.
pub(crate) fn has_cap_sys_admin() -> io::Result<bool> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capget reads `header` and writes two `CapData` (the version 3 layout) into
    // `data`, both live, correctly sized locals.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(data[0].effective & CAP_SYS_ADMIN_BIT != 0)
}

/// Whether `no_new_privs` is set on the calling thread. Async-signal-safe.
pub(crate) fn no_new_privs() -> io::Result<bool> {
    // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointer; the remaining arguments must be 0.
    let rc = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc == 1)
}

/// Sets `no_new_privs` on the calling thread (inherited by children, kept over execve,
/// never cleared). Async-signal-safe.
pub(crate) fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes the value 1 and no pointer.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`. Returns the system call's value: 0,
/// a new listener fd (with `SECCOMP_FILTER_FLAG_NEW_LISTENER`), or with
/// `SECCOMP_FILTER_FLAG_TSYNC` the id of a thread that could not be synchronised.
/// Async-signal-safe.
pub(crate) fn set_mode_filter(program: &[Instruction], flags: libc::c_ulong) -> io::Result<i64> {
    let len =
        u16::try_from(program.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads the program; `Instruction` has the layout of
        // `sock_filter` (asserted above).
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `len` live instructions for the duration of the call; the
    // kernel copies the program and does not keep the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

/// Wraps a listener fd returned by [`set_mode_filter`].
pub(crate) fn owned_listener(raw: i64) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(raw).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the kernel just created `fd` for us (SECCOMP_FILTER_FLAG_NEW_LISTENER); no
    // one else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The kernel's sizes of `struct seccomp_notif`, `struct seccomp_notif_resp` and
/// `struct seccomp_data` (`SECCOMP_GET_NOTIF_SIZES`).
pub(crate) fn notif_sizes() -> io::Result<libc::seccomp_notif_sizes> {
    let mut sizes = libc::seccomp_notif_sizes {
        seccomp_notif: 0,
        seccomp_notif_resp: 0,
        seccomp_data: 0,
    };
    // SAFETY: the kernel writes one `struct seccomp_notif_sizes` into `sizes`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_NOTIF_SIZES,
            0,
            &mut sizes as *mut libc::seccomp_notif_sizes,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sizes)
}

/// `ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, buf)`. The caller zeroes `buf` (the kernel
/// refuses a non-zero buffer) and makes it at least the kernel's
/// `sizeof(struct seccomp_notif)` long. One attempt: EINTR is the caller's to retry.
pub(crate) fn notif_recv(fd: BorrowedFd<'_>, buf: &mut [u64]) -> io::Result<()> {
    // SAFETY: `buf` is a live, 8-byte aligned buffer at least as long as the kernel's
    // `struct seccomp_notif` (the caller sized it with SECCOMP_GET_NOTIF_SIZES).
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            buf.as_mut_ptr(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, buf)`; `buf` holds a `struct seccomp_notif_resp`
/// padded with zeroes to at least the kernel's size of it.
pub(crate) fn notif_send(fd: BorrowedFd<'_>, buf: &[u64]) -> io::Result<()> {
    // SAFETY: the kernel reads its `struct seccomp_notif_resp` from `buf`, which is live
    // and at least that long (sized by the caller with SECCOMP_GET_NOTIF_SIZES).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, buf.as_ptr()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id)`: Ok when the notification is still
/// pending, ENOENT when it is not.
pub(crate) fn notif_id_valid(fd: BorrowedFd<'_>, id: u64) -> io::Result<()> {
    // SAFETY: the kernel reads one u64 from `&id`.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &id as *const u64,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags)` (the flags are passed by value).
pub(crate) fn notif_set_flags(fd: BorrowedFd<'_>, flags: u64) -> io::Result<()> {
    // SAFETY: SET_FLAGS takes its argument by value; no memory is touched.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Control buffer for one SCM_RIGHTS fd, aligned for `struct cmsghdr`.
#[repr(C, align(8))]
struct CmsgBuf([u8; 64]);

/// Space for one fd in a control message.
fn one_fd_space() -> usize {
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    unsafe { libc::CMSG_SPACE(size_of::<libc::c_int>() as libc::c_uint) as usize }
}

/// Sends `fd` over the unix socket `sock` as an SCM_RIGHTS message with one data byte.
/// Async-signal-safe (the message lives on the stack); retries EINTR.
pub(crate) fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: byte.len(),
    };
    let mut control = CmsgBuf([0; 64]);
    let space = one_fd_space();
    if space > control.0.len() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: an all-zero msghdr is a valid empty message; the fields set below point
    // at live locals (`iov`, `control`) that outlive the sendmsg call.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` has a control buffer of `space` bytes, enough for one header with one
    // int, so CMSG_FIRSTHDR is non-null and CMSG_DATA points inside `control`.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::c_int>() as libc::c_uint) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd.as_raw_fd());
    }
    loop {
        // SAFETY: `msg` and everything it points at are live for the call.
        let rc = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if rc >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Receives one fd sent with [`send_fd`] (close-on-exec). Fds beyond the first in the
/// same message are closed. End of stream without an fd is `UnexpectedEof`; a message
/// without an fd is `InvalidData`. Honours the socket's receive timeout (`WouldBlock`).
pub(crate) fn recv_fd(sock: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: byte.len(),
    };
    let mut control = CmsgBuf([0; 64]);
    // SAFETY: as in `send_fd`: a zeroed msghdr whose pointers are set to live locals.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    let n = loop {
        // SAFETY: `msg` describes live buffers of the sizes given.
        let rc = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if rc >= 0 {
            break rc;
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    };
    let mut first: Option<OwnedFd> = None;
    // SAFETY: the kernel filled `control` with `msg.msg_controllen` bytes of well-formed
    // control messages; CMSG_FIRSTHDR/NXTHDR stay inside it, and every fd in an
    // SCM_RIGHTS payload is a new descriptor that we now own.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let header = libc::CMSG_LEN(0) as usize;
                let payload = ((*cmsg).cmsg_len as usize).saturating_sub(header);
                let count = payload / size_of::<libc::c_int>();
                let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                for i in 0..count {
                    let raw = std::ptr::read_unaligned(data.add(i));
                    let owned = OwnedFd::from_raw_fd(raw);
                    if first.is_none() {
                        first = Some(owned);
                    }
                    // Any further fd is dropped, hence closed.
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    match first {
        Some(fd) => Ok(fd),
        None if n == 0 => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
        None => Err(io::Error::from(io::ErrorKind::InvalidData)),
    }
}
