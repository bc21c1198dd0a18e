//! Descriptor helpers.

use std::os::fd::{BorrowedFd, RawFd};

/// Borrows a raw descriptor that the caller keeps open for as long as it uses the
/// result (the loader's own long-lived descriptors).
pub(crate) fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: callers pass descriptors they own and keep open while borrowed (init's
    // control socket lives until init exits).
    unsafe { BorrowedFd::borrow_raw(fd) }
}
