//! The sandbox's `/dev` (its contents are tabled in the parent module's docs).
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::{fstat, Mode, SFlag};

use super::{create_empty_file, mount_fs, MountError};
use crate::sys::mount as raw;

/// Device nodes of `/dev`, with their numbers (Linux's devices.txt): made with
/// `mknod` where init may (in the host's user namespace: a node costs no mount to make
/// and to tear down), else the host's nodes bound under the same name.
const HOST_NODES: [(&str, u64, u64); 5] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
];

/// `/dev/tty` (the caller's controlling terminal) when no terminal is borrowed.
const TTY: (&str, u64, u64) = ("tty", 5, 0);

/// The inode number of the initial user namespace (`PROC_USER_INIT_INO`).
const INITIAL_USER_NS: u64 = 0xEFFF_FFFD;

/// Symbolic links of `/dev`: (name, link target).
const SYMLINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// The nodes `/dev` will hold: detached copies of host nodes, taken in the host's view,
/// and nodes to make.
pub(super) struct HostNodes {
    bound: Vec<Node>,
    made: Vec<(&'static str, u64, u64)>,
}

struct Node {
    name: &'static str,
    host: PathBuf,
    tree: OwnedFd,
}

impl Node {
    fn take(name: &'static str, host: &Path) -> Result<Self, MountError> {
        let tree = raw::clone_tree(host, false).map_err(|source| MountError::Device {
            name,
            path: host.to_path_buf(),
            source,
        })?;
        Ok(Node {
            name,
            host: host.to_path_buf(),
            tree,
        })
    }
}

impl HostNodes {
    /// `null`, `zero`, `full`, `random`, `urandom`, and either the terminal (bound,
    /// twice: `tty` and `console`) or `/dev/tty`: made in the host's user namespace
    /// (root), the host's bound otherwise (a user namespace may not make device nodes).
    pub(super) fn take(terminal: Option<&Path>) -> Result<Self, MountError> {
        let make =
            nix::sys::stat::stat("/proc/self/ns/user").is_ok_and(|st| st.st_ino == INITIAL_USER_NS);
        let mut nodes = HostNodes {
            bound: Vec::new(),
            made: Vec::new(),
        };
        let add = |nodes: &mut HostNodes, (name, major, minor): (&'static str, u64, u64)| {
            if make {
                nodes.made.push((name, major, minor));
                Ok(())
            } else {
                let node = Node::take(name, &Path::new("/dev").join(name))?;
                nodes.bound.push(node);
                Ok::<_, MountError>(())
            }
        };
        for node in HOST_NODES {
            add(&mut nodes, node)?;
        }
        match terminal {
            None => add(&mut nodes, TTY)?,
            Some(term) => {
                let tty = Node::take("tty", term)?;
                let stat = fstat(tty.tree.as_fd()).map_err(|source| MountError::Device {
                    name: "tty",
                    path: term.to_path_buf(),
                    source,
                })?;
                if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR {
                    return Err(MountError::NotATerminal {
                        path: term.to_path_buf(),
                    });
                }
                nodes.bound.push(tty);
                nodes.bound.push(Node::take("console", term)?);
            }
        }
        Ok(nodes)
    }
}

/// Mounts the `/dev` tmpfs and fills it (after `pivot_root`: paths are the sandbox's).
pub(super) fn build(nodes: HostNodes) -> Result<(), MountError> {
    mount_fs(
        "tmpfs",
        "/dev",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "mode=0755,size=64k",
    )?;
    for (name, major, minor) in nodes.made {
        let path = Path::new("/dev").join(name);
        let make = || {
            nix::sys::stat::mknod(
                &path,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(major, minor),
            )?;
            // Whatever the umask.
            nix::sys::stat::fchmodat(
                nix::fcntl::AT_FDCWD,
                &path,
                Mode::from_bits_truncate(0o666),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
        };
        make().map_err(|source| MountError::Create {
            path: path.clone(),
            source,
        })?;
    }
    for node in nodes.bound {
        let path = Path::new("/dev").join(node.name);
        create_empty_file(&path).map_err(|source| MountError::Create {
            path: path.clone(),
            source,
        })?;
        raw::attach(node.tree, &path).map_err(|source| MountError::Attach {
            from: node.host,
            target: path,
            source,
        })?;
    }
    make_dir("/dev/shm")?;
    mount_fs(
        "tmpfs",
        "/dev/shm",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "mode=1777",
    )?;
    make_dir("/dev/pts")?;
    mount_fs(
        "devpts",
        "/dev/pts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620",
    )?;
    for (name, target) in SYMLINKS {
        let path = Path::new("/dev").join(name);
        nix::unistd::symlinkat(target, nix::fcntl::AT_FDCWD, &path)
            .map_err(|source| MountError::Create { path, source })?;
    }
    Ok(())
}

/// Makes the `/dev` tmpfs read-only once everything (binds included) is in place; the
/// mounts inside it (`pts`, `shm`, the device binds) keep their own flags.
pub(super) fn seal() -> Result<(), MountError> {
    raw::set_read_only_path(Path::new("/dev")).map_err(|source| MountError::ReadOnly {
        path: PathBuf::from("/dev"),
        source,
    })
}

fn make_dir(path: &str) -> Result<(), MountError> {
    nix::unistd::mkdir(path, Mode::from_bits_truncate(0o755)).map_err(|source: Errno| {
        MountError::Create {
            path: PathBuf::from(path),
            source,
        }
    })
}
