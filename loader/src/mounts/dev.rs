//! The sandbox's `/dev` (its contents are tabled in the parent module's docs).
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::{fstat, Mode, SFlag};

use super::{create_empty_file, mount_fs, MountError};
use crate::sys::mount as raw;

/// Host device nodes bound into `/dev` under the same name.
const HOST_NODES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// Symbolic links of `/dev`: (name, link target).
const SYMLINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// Detached copies of the host nodes `/dev` will hold, taken in the host's view.
pub(super) struct HostNodes(Vec<Node>);

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
    /// Copies the host's `null`, `zero`, `full`, `random`, `urandom`, and either the
    /// terminal (twice: `tty` and `console`) or the host's `/dev/tty`.
    pub(super) fn take(terminal: Option<&Path>) -> Result<Self, MountError> {
        let mut nodes = HOST_NODES
            .iter()
            .map(|name| Node::take(name, &Path::new("/dev").join(name)))
            .collect::<Result<Vec<_>, _>>()?;
        match terminal {
            None => nodes.push(Node::take("tty", Path::new("/dev/tty"))?),
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
                nodes.push(tty);
                nodes.push(Node::take("console", term)?);
            }
        }
        Ok(HostNodes(nodes))
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
    for node in nodes.0 {
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
