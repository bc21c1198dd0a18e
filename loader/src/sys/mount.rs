//! The "new mount API" calls nix has no wrapper for: `open_tree(2)`, `move_mount(2)` and
//! `mount_setattr(2)` (Linux ≥ 5.12 for all three).
//!
//! They let [`crate::mounts`] take a *detached* copy of a host path first (resolved
//! against the host's view, while it is still there), adjust it (read-only), and attach
//! it later anywhere, e.g. after `pivot_root`.
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::NixPath;

/// `OPEN_TREE_CLONE` (linux/mount.h): return a detached copy of the mount at the path
/// instead of an `O_PATH` descriptor of the original.
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `MOVE_MOUNT_F_EMPTY_PATH`: the source of `move_mount` is the descriptor itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
/// `MOVE_MOUNT_T_SYMLINKS`: follow a symbolic link in the target's last component.
const MOVE_MOUNT_T_SYMLINKS: libc::c_uint = 0x10;
/// `MOUNT_ATTR_RDONLY`: the mount (not the filesystem) is read-only.
const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// `struct mount_attr` (linux/mount.h, `MOUNT_ATTR_SIZE_VER0`).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached copy of the mount tree at `path` (`open_tree(OPEN_TREE_CLONE)`): the
/// mount alone, or with every mount below it when `recursive` (`AT_RECURSIVE`, which is
/// also the only way to copy a subtree holding mounts locked by a user namespace).
///
/// The copy is a new mount in no namespace until [`attach`]; dropping the descriptor
/// unmounts it. Requires `CAP_SYS_ADMIN` in the user namespace owning the caller's mount
/// namespace, and `path` in that namespace. The caller's tree should be private first:
/// a copy of a shared mount joins its peer group.
pub(crate) fn clone_tree(path: &Path, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let ret = path.with_nix_path(|cpath| {
        // SAFETY: open_tree reads the NUL-terminated path, which lives for the call, and
        // returns a new descriptor or -1; no memory of ours is written.
        unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, cpath.as_ptr(), flags) }
    })?;
    let fd = Errno::result(ret)?;
    let raw = libc::c_int::try_from(fd).map_err(|_| Errno::EOVERFLOW)?;
    // SAFETY: the kernel just returned `raw` as a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Attaches the detached tree `tree` (from [`clone_tree`]) on `target`, which must exist
/// and have the same kind (directory on directory, file on file). Symbolic links in
/// `target` are followed, the last component included, as `mount(2)` does; they
/// resolve against the caller's root, so call this after `pivot_root` for paths that
/// must stay inside the new root.
pub(crate) fn attach(tree: OwnedFd, target: &Path) -> Result<(), Errno> {
    let empty = c"";
    let ret = target.with_nix_path(|ctarget| {
        // SAFETY: both paths are NUL-terminated strings alive for the call; `tree` is an
        // open descriptor we own for its duration.
        unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                tree.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_FDCWD,
                ctarget.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS,
            )
        }
    })?;
    Errno::result(ret).map(drop)
    // `tree` is closed here; an attached mount stays mounted.
}

/// Makes the mount behind the descriptor `tree` read-only, and every mount below it when
/// `recursive` (`mount_setattr(AT_EMPTY_PATH [| AT_RECURSIVE], MOUNT_ATTR_RDONLY)`). Works
/// on detached trees. Setting read-only is always allowed; only clearing it can be
/// refused (a mount locked read-only by a user namespace).
pub(crate) fn set_read_only_fd(tree: BorrowedFd<'_>, recursive: bool) -> Result<(), Errno> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    setattr_rdonly(tree.as_raw_fd(), Path::new(""), flags)
}

/// Makes the mount at `path` read-only (that mount alone, not the ones below it).
pub(crate) fn set_read_only_path(path: &Path) -> Result<(), Errno> {
    setattr_rdonly(libc::AT_FDCWD, path, 0)
}

fn setattr_rdonly(dirfd: libc::c_int, path: &Path, flags: libc::c_uint) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let ret = path.with_nix_path(|cpath| {
        // SAFETY: `cpath` and `attr` live for the call; the kernel only reads `attr`
        // (its size is passed alongside, so the layout version is explicit).
        unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                dirfd,
                cpath.as_ptr(),
                flags,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        }
    })?;
    Errno::result(ret).map(drop)
}
