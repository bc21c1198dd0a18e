//! The sandbox's filesystem view, built by its init process.
//!
//! [`setup_filesystem`] runs in the sandbox's init: PID 1 of a new PID namespace, in new
//! mount and UTS namespaces (and, when the loader is not root, a new user namespace whose
//! maps [`crate::userns::write_id_maps`] wrote). It builds this view and changes nothing
//! in the host's mount namespace:
//!
//! | path | what | why |
//! |------|------|-----|
//! | `/` | recursive bind of the host root (or [`FsSpec::rootfs`]), read-only recursively | programs see the host's files but cannot change them |
//! | `/tmp` | private tmpfs, mode 1777, `nosuid,nodev` | a writable scratch area that vanishes with the sandbox |
//! | `/proc` | a fresh proc of the sandbox's PID namespace, `nosuid,nodev,noexec` | `ps`, `/proc/self` and PID 1 are the sandbox's |
//! | `/proc/sys`, `/proc/sysrq-trigger`, `/proc/irq`, `/proc/bus`, `/proc/fs` | bound onto themselves, `ro,nosuid,nodev,noexec` ([`READ_ONLY_PATHS`]) | they change the whole machine (`kernel.core_pattern` runs a command as host root) |
//! | `/proc/kcore`, `/proc/keys`, `/proc/timer_list`, `/proc/sched_debug`, `/proc/latency_stats`, `/proc/timer_stats`, `/proc/acpi`, `/proc/scsi`, `/proc/asound`, `/sys/firmware`, `/sys/devices/virtual/powercap` | masked ([`MASKED_PATHS`]): `/dev/null` bound over files, an empty read-only tmpfs over directories; skipped where the host has none | host memory, other users' keys, kernel addresses, firmware tables |
//! | `/dev` | tmpfs (`nosuid,noexec`), read-only once built; contents below | only the devices programs need |
//! | `/sys` | host root: the host's sysfs, read-only (it comes with the recursive bind). [`FsSpec::rootfs`]: left out | see below |
//! | binds | [`FsSpec::binds`] in order, on top of all the above | `--bind` (writable) / `--ro-bind` |
//!
//! `/dev` holds exactly:
//!
//! | entry | what | why |
//! |-------|------|-----|
//! | `null`, `zero`, `full`, `random`, `urandom` | bind mounts of the host's nodes | programs expect them; `mknod` is refused in a user namespace (and a device node on a tmpfs mounted there is unusable), so binds are used as root too |
//! | `tty` | bind of [`FsSpec::terminal`], or of the host's `/dev/tty` without one | see below |
//! | `console` | bind of [`FsSpec::terminal`] (only when set) | where init and logging programs expect the terminal |
//! | `pts/` | a devpts instance of its own (`newinstance,ptmxmode=0666,mode=0620`) | ptys made inside are numbered from 0 and invisible to the host |
//! | `ptmx` | symlink to `pts/ptmx` | opening it allocates a pty of that instance |
//! | `shm/` | tmpfs, mode 1777, `nosuid,nodev` | `shm_open`, `sem_open` |
//! | `fd`, `stdin`, `stdout`, `stderr` | symlinks to `/proc/self/fd`, `/proc/self/fd/0`, `…/1`, `…/2` | shells and programs use these names |
//!
//! `/dev/tty` normally means "the opener's controlling terminal". A borrowed terminal
//! belongs to the user's session, so no sandboxed process can have it as its host
//! controlling terminal and the host's `/dev/tty` would fail with `ENXIO`. Binding the
//! terminal itself there makes `open("/dev/tty")` return the borrowed terminal. Limit:
//! this is right only because the sandbox has a single session that owns the terminal
//! (the sentry's view); a second session inside the sandbox that opened `/dev/tty`
//! would also get that terminal instead of `ENXIO` or its own.
//!
//! `/sys` is kept read-only rather than hidden because programs read it (glibc's
//! `sysconf(_SC_NPROCESSORS_CONF)` reads `/sys/devices/system/cpu`; `lscpu`, block
//! device sizes) and nothing in it is writable; it shows host hardware and the network
//! devices of the namespace that mounted it (the host's). In a user namespace it could
//! be covered but not unmounted (the kernel locks it to the root). A separate rootfs
//! gets no `/sys`: it is meant to be self-contained.
//!
//! The host root is copied with the mounts below it (e.g. a separate `/home`), all
//! read-only; `/tmp`, `/proc` and `/dev` are covered by the sandbox's own.
//!
//! How it is built (order matters):
//! 1. Every mount in the namespace becomes private, recursively, so no later mount
//!    propagates to the host (a new mount namespace still shares peer groups with the
//!    host when no user namespace was created with it; `pivot_root` also refuses
//!    shared mounts).
//! 2. Every host path the view needs (the root, the device nodes, the terminal, each
//!    bind source) is copied into a *detached* mount (`open_tree(OPEN_TREE_CLONE)`)
//!    while the host view is still there; read-only copies are made read-only
//!    (`mount_setattr`, recursively) before they are attached. A missing bind source is
//!    reported here, before anything is mounted.
//! 3. The root copy is attached on the host's `/tmp` (in this namespace only),
//!    `pivot_root(".", ".")` makes it the root, a fresh `/proc` is mounted, and the old
//!    root is detached (`umount2(MNT_DETACH)`). `/proc` comes before the detach because
//!    in a user namespace the kernel only allows a new proc mount while a fully visible
//!    one exists in the namespace; the old root holds one even when `rootfs` has none.
//! 4. `/tmp` and `/dev` are built, the kernel files above are made read-only or
//!    masked (after `/dev`: masking binds its `/dev/null`), then the binds are attached. From step 3 on every
//!    path is resolved inside the new root, so a symbolic link in a bind target cannot
//!    point outside it.
//! 5. `/dev` is made read-only, the hostname is set, and the working directory changed.
//!
//! A bind target that does not exist is created (directories for a directory source,
//! an empty file otherwise, with missing parents) — but only where the sandbox may
//! write: the root is read-only by then, so a target missing from the host root fails
//! with [`MountError::BindTarget`] (`EROFS`) instead of creating anything on the host.
//! Targets under `/tmp`, or under an earlier writable bind, can be created. A
//! [`FsSpec::rootfs`] must contain the directories `/proc`, `/dev` and `/tmp`.
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, Mode, SFlag};

use crate::sys::mount as raw;

mod dev;

/// A host path made visible inside the sandbox (`--bind` / `--ro-bind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Host path (file or directory), resolved in the host's view; must exist.
    pub source: PathBuf,
    /// Absolute path inside the sandbox; created if missing (see the module docs).
    pub target: PathBuf,
    /// Make the bind and every mount below it read-only.
    pub read_only: bool,
}

/// What the sandbox's filesystem view contains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsSpec {
    /// Directory to use as `/`; `None`: the host root. Read-only in both cases.
    pub rootfs: Option<PathBuf>,
    /// Binds applied inside the new root, in order (a later one may sit inside an
    /// earlier one).
    pub binds: Vec<Bind>,
    /// Host path of the borrowed terminal device (e.g. `/dev/pts/3`), bound at
    /// `/dev/console` and `/dev/tty`.
    pub terminal: Option<PathBuf>,
    /// Hostname of the sandbox's UTS namespace.
    pub hostname: Option<String>,
    /// Working directory after the switch, inside the sandbox (default `/`).
    pub cwd: Option<PathBuf>,
}

/// A step of [`setup_filesystem`] that failed, with the path it was working on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// A bind target must be absolute.
    #[error("bind target {} is not an absolute path", target.display())]
    RelativeBindTarget { target: PathBuf },
    /// `mount(MS_REC|MS_PRIVATE)` on `/` failed.
    #[error("making the mounts under / private (recursive): {source}")]
    Propagation { source: Errno },
    /// The new root could not be copied (`open_tree`) or made read-only.
    #[error("preparing the new root from {}: {step}: {source}", path.display())]
    Root {
        path: PathBuf,
        step: &'static str,
        source: Errno,
    },
    /// A bind source could not be opened (missing, or not reachable).
    #[error("bind source {} cannot be used: {step}: {source}", path.display())]
    BindSource {
        path: PathBuf,
        step: &'static str,
        source: Errno,
    },
    /// A missing bind target could not be created (`EROFS` when it would be on the
    /// read-only root).
    #[error("bind target {} does not exist and cannot be created: {source}", target.display())]
    BindTarget { target: PathBuf, source: Errno },
    /// A host device node (or the terminal) could not be copied for `/dev`.
    #[error("host device {} for /dev/{name}: {source}", path.display())]
    Device {
        name: &'static str,
        path: PathBuf,
        source: Errno,
    },
    /// The terminal path names no character device.
    #[error("terminal {} is not a character device", path.display())]
    NotATerminal { path: PathBuf },
    /// A prepared mount could not be attached at its place (`move_mount`).
    #[error("attaching {} at {}: {source}", from.display(), target.display())]
    Attach {
        from: PathBuf,
        target: PathBuf,
        source: Errno,
    },
    /// Mounting a filesystem (`tmpfs`, `proc`, `devpts`) failed.
    #[error("mounting {fstype} at {}: {source}", target.display())]
    Mount {
        fstype: &'static str,
        target: PathBuf,
        source: Errno,
    },
    /// Creating a file, directory or symbolic link of the layout failed.
    #[error("creating {}: {source}", path.display())]
    Create { path: PathBuf, source: Errno },
    /// `pivot_root` into the new root failed.
    #[error("pivot_root into the new root (from {}): {source}", root.display())]
    PivotRoot { root: PathBuf, source: Errno },
    /// The old root could not be detached.
    #[error("detaching the old root: {source}")]
    DetachOldRoot { source: Errno },
    /// A mount could not be made read-only.
    #[error("making {} read-only: {source}", path.display())]
    ReadOnly { path: PathBuf, source: Errno },
    /// `sethostname` failed.
    #[error("setting the hostname to {name:?}: {source}")]
    Hostname { name: String, source: Errno },
    /// `chdir` to the working directory failed.
    #[error("changing directory to {}: {source}", path.display())]
    Chdir { path: PathBuf, source: Errno },
}

impl MountError {
    /// The `errno` behind the failure, if a system call failed.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            MountError::RelativeBindTarget { .. } | MountError::NotATerminal { .. } => None,
            MountError::Propagation { source }
            | MountError::Root { source, .. }
            | MountError::BindSource { source, .. }
            | MountError::BindTarget { source, .. }
            | MountError::Device { source, .. }
            | MountError::Attach { source, .. }
            | MountError::Mount { source, .. }
            | MountError::Create { source, .. }
            | MountError::PivotRoot { source, .. }
            | MountError::DetachOldRoot { source }
            | MountError::ReadOnly { source, .. }
            | MountError::Hostname { source, .. }
            | MountError::Chdir { source, .. } => Some(*source),
        }
    }
}

/// Where the new root is attached before `pivot_root` (in this mount namespace only).
/// Any existing directory of the host root would do; `/tmp` exists everywhere.
const ANCHOR: &str = "/tmp";

/// Builds the sandbox's filesystem view described in the module docs. Call it once, in
/// the sandbox's init (PID 1 of its PID namespace, in its own mount and UTS namespaces);
/// on error the namespace is left half-built and the caller should exit.
pub fn setup_filesystem(spec: &FsSpec) -> Result<(), MountError> {
    tracing::debug!(?spec, "building the sandbox filesystem");
    if let Some(bind) = spec.binds.iter().find(|b| !b.target.is_absolute()) {
        return Err(MountError::RelativeBindTarget {
            target: bind.target.clone(),
        });
    }
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|source| MountError::Propagation { source })?;

    let host = HostCopies::take(spec)?;
    enter_new_root(host.root, &host.root_path)?;
    mount_fs(
        "tmpfs",
        "/tmp",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "mode=1777",
    )?;
    dev::build(host.dev)?;
    harden_kernel_files(spec.rootfs.is_none())?;
    for bind in host.binds {
        bind.attach()?;
    }
    dev::seal()?;

    if let Some(name) = &spec.hostname {
        nix::unistd::sethostname(name).map_err(|source| MountError::Hostname {
            name: name.clone(),
            source,
        })?;
    }
    let cwd = spec.cwd.as_deref().unwrap_or(Path::new("/"));
    nix::unistd::chdir(cwd).map_err(|source| MountError::Chdir {
        path: cwd.to_path_buf(),
        source,
    })?;
    tracing::debug!("sandbox filesystem ready");
    Ok(())
}

/// Every host path the view needs, copied as detached mounts (step 2).
struct HostCopies {
    root_path: PathBuf,
    root: OwnedFd,
    dev: dev::HostNodes,
    binds: Vec<HeldBind>,
}

impl HostCopies {
    fn take(spec: &FsSpec) -> Result<Self, MountError> {
        let root_path = spec.rootfs.clone().unwrap_or_else(|| PathBuf::from("/"));
        let root_err = |step, source| MountError::Root {
            path: root_path.clone(),
            step,
            source,
        };
        let root = raw::clone_tree(&root_path, true).map_err(|e| root_err("open_tree", e))?;
        raw::set_read_only_fd(root.as_fd(), true)
            .map_err(|e| root_err("mount_setattr(RDONLY, recursive)", e))?;
        let dev = dev::HostNodes::take(spec.terminal.as_deref())?;
        let binds = spec
            .binds
            .iter()
            .map(HeldBind::take)
            .collect::<Result<_, _>>()?;
        Ok(HostCopies {
            root_path,
            root,
            dev,
            binds,
        })
    }
}

/// Step 3: the root copy becomes `/`, with a fresh `/proc`, and the old root goes.
fn enter_new_root(root: OwnedFd, root_path: &Path) -> Result<(), MountError> {
    raw::attach(root, Path::new(ANCHOR)).map_err(|source| MountError::Attach {
        from: root_path.to_path_buf(),
        target: PathBuf::from(ANCHOR),
        source,
    })?;
    let pivot_err = |source| MountError::PivotRoot {
        root: root_path.to_path_buf(),
        source,
    };
    nix::unistd::chdir(ANCHOR).map_err(pivot_err)?;
    // With new_root == put_old the old root ends up stacked on the new one, at "/";
    // lookups start below it, and "." (our working directory) reaches it for umount2.
    nix::unistd::pivot_root(".", ".").map_err(pivot_err)?;
    mount_fs(
        "proc",
        "/proc",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        "",
    )?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|source| MountError::DetachOldRoot { source })?;
    nix::unistd::chdir("/").map_err(|source| MountError::Chdir {
        path: PathBuf::from("/"),
        source,
    })
}

/// Kernel interfaces under `/proc` that stay readable but become read-only: writing
/// them changes the whole machine (`/proc/sys`: kernel.core_pattern runs a command as
/// host root on the next crash; `/proc/sysrq-trigger` reboots or crashes it).
pub const READ_ONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Kernel interfaces hidden: files get `/dev/null` bound over them (they read empty),
/// directories an empty read-only tmpfs. They show host memory (`/proc/kcore`), keys of
/// other users (`/proc/keys`), kernel timers and addresses usable to defeat KASLR, and
/// host hardware or firmware tables.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Makes [`READ_ONLY_PATHS`] read-only (bind onto itself, then remount
/// `ro,nosuid,nodev,noexec`) and covers [`MASKED_PATHS`]; paths the kernel does not
/// have are skipped. Needs the sandbox's `/proc` and `/dev/null`. `/sys` paths only
/// when the sandbox sees the host's `/sys` (`with_sys`).
fn harden_kernel_files(with_sys: bool) -> Result<(), MountError> {
    let ro_flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    for path in READ_ONLY_PATHS {
        if !exists(path) {
            continue;
        }
        let err = |source| MountError::ReadOnly {
            path: PathBuf::from(path),
            source,
        };
        let none = None::<&str>;
        mount(
            Some(*path),
            *path,
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )
        .map_err(err)?;
        mount(none, *path, none, ro_flags, none).map_err(err)?;
    }
    for path in MASKED_PATHS {
        if path.starts_with("/sys/") && !with_sys {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        let err = |fstype, source| MountError::Mount {
            fstype,
            target: PathBuf::from(path),
            source,
        };
        let none = None::<&str>;
        if meta.is_dir() {
            mount(
                Some("tmpfs"),
                *path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("mode=0555"),
            )
            .map_err(|e| err("tmpfs", e))?;
        } else {
            mount(Some("/dev/null"), *path, none, MsFlags::MS_BIND, none)
                .map_err(|e| err("bind of /dev/null", e))?;
        }
    }
    Ok(())
}

/// Whether `path` exists (without following a last symbolic link).
fn exists(path: &str) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Mounts a new instance of `fstype` at `target` (an existing directory).
fn mount_fs(
    fstype: &'static str,
    target: &str,
    flags: MsFlags,
    data: &str,
) -> Result<(), MountError> {
    tracing::debug!(fstype, target, data, "mount");
    let data = (!data.is_empty()).then_some(data);
    mount(Some(fstype), target, Some(fstype), flags, data).map_err(|source| MountError::Mount {
        fstype,
        target: PathBuf::from(target),
        source,
    })
}

/// A bind whose source is already copied (detached), waiting for its target.
struct HeldBind {
    source: PathBuf,
    target: PathBuf,
    tree: OwnedFd,
    is_dir: bool,
}

impl HeldBind {
    fn take(bind: &Bind) -> Result<Self, MountError> {
        let err = |step, source| MountError::BindSource {
            path: bind.source.clone(),
            step,
            source,
        };
        let tree = raw::clone_tree(&bind.source, true).map_err(|e| err("open_tree", e))?;
        let stat = fstat(tree.as_fd()).map_err(|e| err("fstat", e))?;
        if bind.read_only {
            raw::set_read_only_fd(tree.as_fd(), true)
                .map_err(|e| err("mount_setattr(RDONLY, recursive)", e))?;
        }
        Ok(HeldBind {
            source: bind.source.clone(),
            target: bind.target.clone(),
            tree,
            is_dir: SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR,
        })
    }

    fn attach(self) -> Result<(), MountError> {
        tracing::debug!(source = ?self.source, target = ?self.target, "bind");
        if !self.target.exists() {
            create_mount_point(&self.target, self.is_dir).map_err(|source| {
                MountError::BindTarget {
                    target: self.target.clone(),
                    source,
                }
            })?;
        }
        raw::attach(self.tree, &self.target).map_err(|source| MountError::Attach {
            from: self.source,
            target: self.target,
            source,
        })
    }
}

/// Creates `path` (a directory, or an empty file) and its missing parents.
fn create_mount_point(path: &Path, dir: bool) -> Result<(), Errno> {
    let errno = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(errno)?;
    }
    if dir {
        nix::unistd::mkdir(path, Mode::from_bits_truncate(0o755))
    } else {
        create_empty_file(path)
    }
}

/// Creates an empty file to mount a file on (its own mode does not matter once covered).
fn create_empty_file(path: &Path) -> Result<(), Errno> {
    use nix::fcntl::{open, OFlag};
    open(
        path,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map(drop)
}
