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
