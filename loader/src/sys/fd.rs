//! Descriptor helpers.

use std::os::fd::{BorrowedFd, RawFd};

/// Borrows a raw descriptor that the caller keeps open for as long as it uses the
/// result (the loader's own long-lived descriptors).
pub(crate) fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: callers pass descriptors they own and keep open while borrowed (init's
    // control socket lives until init exits).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Marks every descriptor from `first` up close-on-exec (`close_range` with
/// CLOSE_RANGE_CLOEXEC, Linux 5.11).
pub(crate) fn cloexec_from(first: u32) -> Result<(), nix::Error> {
    // SAFETY: close_range only changes descriptor flags; no memory is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    nix::errno::Errno::result(r).map(drop)
}

/// Duplicates `fd` onto descriptors 0, 1 and 2 (not close-on-exec).
pub(crate) fn onto_stdio(fd: RawFd) -> Result<(), nix::Error> {
    for target in 0..3 {
        // SAFETY: dup2 takes two descriptor numbers; `fd` is open.
        nix::errno::Errno::result(unsafe { libc::dup2(fd, target) })?;
    }
    Ok(())
}

/// Duplicates `fds` onto descriptors 0, 1 and 2 in order (not close-on-exec). A
/// source that is itself one of 0-2 is moved out of the way first.
pub(crate) fn onto_each_stdio(fds: &[std::os::fd::OwnedFd; 3]) -> Result<(), nix::Error> {
    use std::os::fd::AsRawFd;
    let mut high = [0; 3];
    for (h, f) in high.iter_mut().zip(fds) {
        // SAFETY: F_DUPFD_CLOEXEC takes a descriptor and an integer; `f` is open.
        *h = nix::errno::Errno::result(unsafe {
            libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3)
        })?;
    }
    for (target, &h) in high.iter().enumerate() {
        // SAFETY: dup2 takes two descriptor numbers; `h` is open.
        nix::errno::Errno::result(unsafe { libc::dup2(h, target as i32) })?;
    }
    Ok(())
}

/// Closes every descriptor from 3 up except those in `keep` (close_range over the
/// gaps). For init, which never execs, so close-on-exec would not do: a descriptor of
/// the embedder's (a pty master, say) must not stay open in the sandbox.
pub(crate) fn close_all_except(keep: &[RawFd]) -> Result<(), nix::Error> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&f| u32::try_from(f).ok())
        .filter(|&f| f >= 3)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first: u32 = 3;
    for k in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if k > first {
            let last = if k == u32::MAX { u32::MAX } else { k - 1 };
            // SAFETY: close_range closes descriptors only; no memory is passed.
            let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
            nix::errno::Errno::result(r)?;
        }
        first = k.saturating_add(1);
    }
    Ok(())
}

/// Takes ownership of a descriptor that SCM_RIGHTS just delivered to this process.
pub(crate) fn own_received(fd: RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: the kernel installed this descriptor for us in recvmsg; nothing else in
    // the process knows its number, so this is its only owner.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// Sets close-on-exec on `fd`.
pub(crate) fn set_cloexec(fd: RawFd) -> Result<(), nix::Error> {
    // SAFETY: F_SETFD takes a descriptor and an integer.
    nix::errno::Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }).map(drop)
}
