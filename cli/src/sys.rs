//! The few raw descriptor operations of the command's library. Every `unsafe` block
//! of the crate lives here, each with a `// SAFETY:` comment.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a descriptor that SCM_RIGHTS just delivered to this process.
pub(crate) fn own_received(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed this descriptor for us in recvmsg; nothing else in
    // the process knows its number, so this is its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `accept4(SOCK_CLOEXEC)` on a listening socket.
pub(crate) fn accept(listener: RawFd) -> nix::Result<OwnedFd> {
    let fd = nix::sys::socket::accept4(listener, nix::sys::socket::SockFlag::SOCK_CLOEXEC)?;
    // SAFETY: accept4 just returned this new descriptor; we are its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Dies of `signal`: its disposition set back to the default (the Rust runtime
/// ignores SIGPIPE), unblocked in this thread, and raised. Returns only if that did
/// not end the process (a signal whose default action is not to terminate).
pub(crate) fn die_of(signal: nix::sys::signal::Signal) {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_DFL runs no code of ours in signal context; the process is
    // about to end.
    let _ = unsafe { sigaction(signal, &dfl) };
    let mut set = SigSet::empty();
    set.add(signal);
    let _ = set.thread_unblock();
    let _ = nix::sys::signal::raise(signal);
}
