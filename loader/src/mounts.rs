//! The sandbox's filesystem view, built by its init process.
//!
//! [`setup_filesystem`] runs in the sandbox's init: PID 1 of a new PID namespace, in new
//! mount and UTS namespaces (and, when the loader is not root, a new user namespace whose
//! maps [`crate::userns::write_id_maps`] wrote). It builds this view and changes nothing
//! in the host's mount namespace:
//!
//! | path | what | why |
//! |------|------|-----|
//! | `/` | [`RootMode::Overlay`] (the default as root): an overlay whose lower layer is a read-only copy of the host root's own filesystem (or [`FsSpec::rootfs`]'s) and whose upper layer is a tmpfs; the filesystems mounted below the root are attached on it read-only. [`RootMode::ReadOnly`] (`--read-only`, and always without root): a recursive copy of the root, read-only recursively. [`RootMode::Writable`] (an OCI bundle's root only, never the host's): the rootfs itself, recursively, writable | programs see the host's files; writes succeed and vanish with the sandbox, or fail with `EROFS`; the host's files never change (a writable OCI root is the container's own layer) |
//! | `/tmp` | private tmpfs, mode 1777, `nosuid,nodev` | a writable scratch area that vanishes with the sandbox |
//! | `/proc` | a fresh proc of the sandbox's PID namespace, `nosuid,nodev,noexec` | `ps`, `/proc/self` and PID 1 are the sandbox's |
//! | `/proc/sys`, `/proc/sysrq-trigger`, `/proc/irq`, `/proc/bus`, `/proc/fs` | bound onto themselves, `ro,nosuid,nodev,noexec` ([`READ_ONLY_PATHS`]) | they change the whole machine (`kernel.core_pattern` runs a command as host root) |
//! | `/proc/kcore`, `/proc/keys`, `/proc/timer_list`, `/proc/sched_debug`, `/proc/latency_stats`, `/proc/timer_stats`, `/proc/acpi`, `/proc/scsi`, `/proc/asound`, `/sys/firmware`, `/sys/devices/virtual/powercap` | masked ([`MASKED_PATHS`]): `/dev/null` bound over files, an empty read-only tmpfs over directories; skipped where the host has none | host memory, other users' keys, kernel addresses, firmware tables |
//! | `/dev` | tmpfs (`nosuid,noexec`), read-only once built; contents below | only the devices programs need |
//! | `/sys` | host root: the host's sysfs, read-only; with the overlay (the default as root) without what the host mounted below it (its cgroup hierarchies, tracefs, ...), with a read-only root as it comes with the recursive bind. [`FsSpec::rootfs`]: left out unless a bind puts it there (an OCI `sysfs` mount: the host's `/sys`, read-only) | see below |
//! | binds | [`FsSpec::binds`] in order, on top of all the above | `--bind` (writable) / `--ro-bind` |
//! | kernel mounts | [`FsSpec::kernel_mounts`] (`tmpfs`, `mqueue`: [`KERNEL_MOUNT_TYPES`]) after the binds | OCI `mounts` |
//! | more masked / read-only paths | [`FsSpec::masked_paths`], [`FsSpec::readonly_paths`] as the lists above | OCI `maskedPaths` / `readonlyPaths` |
//!
//! `/dev` holds exactly:
//!
//! | entry | what | why |
//! |-------|------|-----|
//! | `null`, `zero`, `full`, `random`, `urandom` | in the host's user namespace (root), nodes made with `mknod` (mode 0666, the numbers of Linux's devices.txt); in a user namespace, bind mounts of the host's nodes | programs expect them; `mknod` is refused in a user namespace (and a device node on a tmpfs mounted there is unusable); as root a node costs no mount to make and to tear down (six fewer mounts: about 0.1 ms of start-up and exit) |
//! | `tty` | bind of [`FsSpec::terminal`]; without one, the `/dev/tty` node (5, 0) made or bound as above | see below |
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
//! gets no `/sys`: it is meant to be self-contained. With the overlay the host's sysfs
//! comes alone: the cgroup hierarchies the host mounts below it list every host
//! process in their `tasks` files, tracefs shows the host kernel's trace buffers to
//! the owner uid 0 even without capabilities, and each mount costs start-up and exit
//! time (13 mounts on a cgroup v1 machine).
//!
//! The host root is copied with the mounts below it (e.g. a separate `/home`), all
//! read-only; `/tmp`, `/proc` and `/dev` are covered by the sandbox's own. With the
//! overlay, only the root's own filesystem is writable (overlayfs does not look into
//! mounts below its lower layer, so each of those is attached on the merged view at its
//! place, read-only). Without root the overlay is not used: overlayfs refuses a lower
//! layer holding mounts locked by the user namespace, and files of unmapped owners
//! could not be copied up anyway.
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
//! 3. The root copy is attached on the host's `/tmp` (in this namespace only) — with
//!    the overlay, a tmpfs is mounted there holding the lower copy, the upper and work
//!    directories and the merged view, on which the filesystems below the root are
//!    attached — then `pivot_root(".", ".")` makes it the root, a fresh `/proc` is mounted, and the old
//!    root is detached (`umount2(MNT_DETACH)`). `/proc` comes before the detach because
//!    in a user namespace the kernel only allows a new proc mount while a fully visible
//!    one exists in the namespace; the old root holds one even when `rootfs` has none.
//!    The detach is made by a child of init ([`OldRootDetach`]): the call waits for an
//!    RCU grace period after the mounts are gone, and init builds on meanwhile; init
//!    reaps the child before it forks anything of the program's.
//! 4. `/tmp` and `/dev` are built, the binds are attached and the kernel mounts made,
//!    then the kernel files above are made read-only or masked (after `/dev`: masking
//!    binds its `/dev/null`; after the binds: no bind uncovers them). From step 3 on every
//!    path is resolved inside the new root, so a symbolic link in a bind target cannot
//!    point outside it.
//! 5. `/dev` is made read-only, the hostname is set, and the working directory changed.
//!
//! A bind target that does not exist is created (directories for a directory source,
//! an empty file otherwise, with missing parents) inside the sandbox: on the overlay
//! (never on the host), under `/tmp`, or under an earlier writable bind. With a
//! read-only root a target missing from the host root fails with
//! [`MountError::BindTarget`] (`EROFS`) instead of creating anything on the host. A
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

/// How the root is made visible.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RootMode {
    /// Writes anywhere succeed and vanish with the sandbox: an overlay whose upper
    /// layer is a tmpfs over the read-only root (as runsc's default, or Docker's
    /// writable layer). Filesystems mounted below the root (a separate `/home`, `/sys`)
    /// stay read-only. Where the root holds mounts locked by a user namespace (the
    /// loader is not root), overlayfs cannot use it and the root is read-only instead.
    #[default]
    Overlay,
    /// The root and everything below it read-only (`--read-only`).
    ReadOnly,
    /// [`FsSpec::rootfs`] itself, with the mounts below it, writable: changes stay in
    /// that directory (an OCI bundle's root, the container's own layer, which the
    /// runtime's caller made for it). Refused for the host root
    /// ([`MountError::WritableHostRoot`]).
    Writable,
}

/// A filesystem mounted inside the sandbox (OCI `mounts` of a kernel filesystem type),
/// after the binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelMount {
    /// Filesystem type: one of [`KERNEL_MOUNT_TYPES`].
    pub fstype: &'static str,
    /// Absolute path inside the sandbox; a missing directory is created.
    pub target: PathBuf,
    /// `MS_*` flags (`MS_RDONLY`, `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC`, ...).
    pub flags: u64,
    /// Filesystem options (`mode=755,size=65536k`).
    pub data: String,
}

/// The filesystem types a [`KernelMount`] may have: none of them reaches host data
/// (mqueue belongs to the sandbox's own IPC namespace).
pub const KERNEL_MOUNT_TYPES: &[&str] = &["tmpfs", "mqueue"];

/// What the sandbox's filesystem view contains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsSpec {
    /// Directory to use as `/`; `None`: the host root. Never written: see [`RootMode`].
    pub rootfs: Option<PathBuf>,
    /// Read-only, or writable through a throwaway overlay.
    pub root_mode: RootMode,
    /// Binds applied inside the new root, in order (a later one may sit inside an
    /// earlier one).
    pub binds: Vec<Bind>,
    /// Host path of the borrowed terminal device (e.g. `/dev/pts/3`), bound at
    /// `/dev/console` and `/dev/tty`.
    pub terminal: Option<PathBuf>,
    /// Hostname of the sandbox's UTS namespace.
    pub hostname: Option<String>,
    /// Working directory after the switch, inside the sandbox; failing to enter it is
    /// an error.
    pub cwd: Option<PathBuf>,
    /// Without `cwd`: the caller's working directory, entered if it exists inside the
    /// sandbox (as bubblewrap keeps it when visible), else `/`.
    pub caller_cwd: Option<PathBuf>,
    /// Kernel filesystems mounted after the binds, in order.
    pub kernel_mounts: Vec<KernelMount>,
    /// Paths hidden in addition to [`MASKED_PATHS`] (absolute, inside the sandbox;
    /// missing ones are skipped).
    pub masked_paths: Vec<PathBuf>,
    /// Paths made read-only in addition to [`READ_ONLY_PATHS`] (missing ones are
    /// skipped).
    pub readonly_paths: Vec<PathBuf>,
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
    /// [`RootMode::Writable`] without a [`FsSpec::rootfs`]: the host root is never
    /// writable.
    #[error("a writable root needs a root directory of its own (the host root is never writable)")]
    WritableHostRoot,
    /// A [`KernelMount`] of a type not in [`KERNEL_MOUNT_TYPES`], or a relative path.
    #[error("mount of {fstype} at {}: not allowed", target.display())]
    KernelMountRefused { fstype: String, target: PathBuf },
}

impl MountError {
    /// The `errno` behind the failure, if a system call failed.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            MountError::RelativeBindTarget { .. }
            | MountError::NotATerminal { .. }
            | MountError::WritableHostRoot
            | MountError::KernelMountRefused { .. } => None,
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

/// Top-level directories the sandbox mounts its own filesystems on.
const COVERED: [&str; 3] = ["proc", "dev", "tmp"];

/// Where the new root is attached before `pivot_root` (in this mount namespace only).
/// Any existing directory of the host root would do; `/tmp` exists everywhere.
const ANCHOR: &str = "/tmp";

/// Builds the sandbox's filesystem view described in the module docs. Call it once, in
/// the sandbox's init (PID 1 of its PID namespace, in its own mount and UTS namespaces);
/// on error the namespace is left half-built and the caller should exit.
pub fn setup_filesystem(spec: &FsSpec) -> Result<OldRootDetach, MountError> {
    tracing::debug!(?spec, "building the sandbox filesystem");
    if let Some(bind) = spec.binds.iter().find(|b| !b.target.is_absolute()) {
        return Err(MountError::RelativeBindTarget {
            target: bind.target.clone(),
        });
    }
    check_spec(spec)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|source| MountError::Propagation { source })?;

    let host = HostCopies::take(spec)?;
    let detach = enter_new_root(host.root, &host.root_path)?;
    mount_fs(
        "tmpfs",
        "/tmp",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "mode=1777",
    )?;
    dev::build(host.dev)?;
    let with_sys =
        spec.rootfs.is_none() || spec.binds.iter().any(|b| b.target == Path::new("/sys"));
    for bind in host.binds {
        bind.attach()?;
    }
    for m in &spec.kernel_mounts {
        mount_kernel(m)?;
    }
    // After the binds and mounts, so that none of them uncovers what is hidden.
    harden_kernel_files(with_sys, &spec.masked_paths, &spec.readonly_paths)?;
    dev::seal()?;

    if let Some(name) = &spec.hostname {
        nix::unistd::sethostname(name).map_err(|source| MountError::Hostname {
            name: name.clone(),
            source,
        })?;
    }
    let visible = |p: &&PathBuf| {
        nix::sys::stat::stat(p.as_path())
            .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
    };
    let cwd = match (&spec.cwd, spec.caller_cwd.as_ref().filter(visible)) {
        (Some(cwd), _) => cwd.as_path(),
        (None, Some(caller)) => caller.as_path(),
        (None, None) => Path::new("/"),
    };
    nix::unistd::chdir(cwd).map_err(|source| MountError::Chdir {
        path: cwd.to_path_buf(),
        source,
    })?;
    tracing::debug!("sandbox filesystem ready");
    Ok(detach)
}

/// Every host path the view needs, copied as detached mounts (step 2).
struct HostCopies {
    root_path: PathBuf,
    root: RootCopy,
    dev: dev::HostNodes,
    binds: Vec<HeldBind>,
}

/// The root, copied for its [`RootMode`].
enum RootCopy {
    /// The root with every mount below it, as is: read-only ([`RootMode::ReadOnly`])
    /// or writable ([`RootMode::Writable`]).
    ReadOnly(OwnedFd),
    /// The root's own mount alone (the overlay's lower layer: overlayfs does not look
    /// into mounts below its layers), and each filesystem mounted directly below the
    /// root, with the mounts below it, all read-only, to be attached on the overlay at
    /// the same relative path.
    Overlay {
        lower: OwnedFd,
        submounts: Vec<(PathBuf, OwnedFd)>,
    },
}

impl HostCopies {
    fn take(spec: &FsSpec) -> Result<Self, MountError> {
        let root_path = spec.rootfs.clone().unwrap_or_else(|| PathBuf::from("/"));
        let root_err = |step, source| MountError::Root {
            path: root_path.clone(),
            step,
            source,
        };
        let read_only_copy = |path: &Path, recursive: bool| -> Result<OwnedFd, MountError> {
            let tree = raw::clone_tree(path, recursive).map_err(|e| root_err("open_tree", e))?;
            raw::set_read_only_fd(tree.as_fd(), true)
                .map_err(|e| root_err("mount_setattr(RDONLY, recursive)", e))?;
            Ok(tree)
        };
        let root = match spec.root_mode {
            RootMode::ReadOnly => RootCopy::ReadOnly(read_only_copy(&root_path, true)?),
            RootMode::Writable => RootCopy::ReadOnly(
                raw::clone_tree(&root_path, true).map_err(|e| root_err("open_tree", e))?,
            ),
            RootMode::Overlay => match raw::clone_tree(&root_path, false) {
                // In a user namespace the mounts below the root are locked to it, and
                // the root's mount alone cannot be copied (EINVAL): read-only root.
                Err(Errno::EINVAL) => RootCopy::ReadOnly(read_only_copy(&root_path, true)?),
                Err(e) => return Err(root_err("open_tree", e)),
                Ok(lower) => {
                    raw::set_read_only_fd(lower.as_fd(), true)
                        .map_err(|e| root_err("mount_setattr(RDONLY, recursive)", e))?;
                    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
                        .map_err(|e| root_err("reading /proc/self/mountinfo", io_errno(&e)))?;
                    // /proc, /dev and /tmp are covered by the sandbox's own: what the
                    // host mounted there is not copied (fewer mounts to make and detach).
                    let submounts = top_submounts(&mountinfo, &root_path)
                        .into_iter()
                        .filter(|rel| !COVERED.iter().any(|c| rel.starts_with(c)))
                        .map(|rel| {
                            // The host's sysfs alone: not what the host mounted below
                            // it (its cgroup hierarchies, whose `tasks` files list
                            // every host process; tracefs; ...).
                            let recursive = !(spec.rootfs.is_none() && rel == Path::new("sys"));
                            let tree = read_only_copy(&root_path.join(&rel), recursive)?;
                            Ok((rel, tree))
                        })
                        .collect::<Result<_, MountError>>()?;
                    RootCopy::Overlay { lower, submounts }
                }
            },
        };
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
fn enter_new_root(root: RootCopy, root_path: &Path) -> Result<OldRootDetach, MountError> {
    let attach = |tree: OwnedFd, from: &Path, target: &Path| {
        raw::attach(tree, target).map_err(|source| MountError::Attach {
            from: from.to_path_buf(),
            target: target.to_path_buf(),
            source,
        })
    };
    let new_root = match root {
        RootCopy::ReadOnly(tree) => {
            attach(tree, root_path, Path::new(ANCHOR))?;
            PathBuf::from(ANCHOR)
        }
        RootCopy::Overlay { lower, submounts } => {
            // A tmpfs on the anchor holds the layers: the lower copy, the (empty)
            // upper layer and overlayfs's work directory, and the merged view. It is
            // detached with the old root below; the overlay keeps what it uses.
            mount_fs(
                "tmpfs",
                ANCHOR,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                "mode=0700",
            )?;
            let anchor = Path::new(ANCHOR);
            for dir in ["lower", "upper", "work", "root"] {
                let path = anchor.join(dir);
                nix::unistd::mkdir(&path, Mode::from_bits_truncate(0o755))
                    .map_err(|source| MountError::Create { path, source })?;
            }
            attach(lower, root_path, &anchor.join("lower"))?;
            let data =
                format!("lowerdir={ANCHOR}/lower,upperdir={ANCHOR}/upper,workdir={ANCHOR}/work");
            let merged = anchor.join("root");
            tracing::debug!(data, "mount overlay");
            mount(
                Some("overlay"),
                &merged,
                Some("overlay"),
                MsFlags::empty(),
                Some(data.as_str()),
            )
            .map_err(|source| MountError::Mount {
                fstype: "overlay",
                target: merged.clone(),
                source,
            })?;
            for (rel, tree) in submounts {
                attach(tree, &root_path.join(&rel), &merged.join(&rel))?;
            }
            merged
        }
    };
    let pivot_err = |source| MountError::PivotRoot {
        root: root_path.to_path_buf(),
        source,
    };
    nix::unistd::chdir(&new_root).map_err(pivot_err)?;
    // With new_root == put_old the old root ends up stacked on the new one, at "/";
    // lookups start below it, and "." (our working directory) reaches it for umount2.
    nix::unistd::pivot_root(".", ".").map_err(pivot_err)?;
    mount_fs(
        "proc",
        "/proc",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        "",
    )?;
    let detach = OldRootDetach::start()?;
    nix::unistd::chdir("/").map_err(|source| MountError::Chdir {
        path: PathBuf::from("/"),
        source,
    })?;
    Ok(detach)
}

/// The old root's detach (step 3), made by a child of init so that init need not wait
/// for its end.
///
/// `umount2(MNT_DETACH)` takes the old root and every mount below it out of the
/// namespace at once, then waits for an expedited RCU grace period before it lets
/// go of them (0.1–0.6 ms here, more than the rest of step 3). The child, which shares
/// init's mount namespace and working directory (the old root, stacked on the new
/// one), makes the call and exits; init goes on building the filesystem and receives
/// the program's plan meanwhile, and [`OldRootDetach::finish`] reaps the child before
/// anything of the program's exists. Until then the child's working directory is the
/// old root, so nothing untrusted may run before `finish` (and a drop without `finish`
/// waits as well).
#[must_use = "the old root stays reachable until the detach is finished"]
pub struct OldRootDetach {
    child: Option<nix::unistd::Pid>,
}

impl OldRootDetach {
    /// Starts the detach in a child; where no child can be made, detaches here.
    ///
    /// The child takes the program's PID ([`crate::init::PROGRAM_PID`], free again
    /// once init has reaped it): a PID asked for (`clone3` with `set_tid`) leaves the
    /// numbers later forks get as they were. Where PIDs cannot be chosen (no `clone3`),
    /// a child would shift them (docs/LOADER.md, "PIDs"), so the detach is made here.
    fn start() -> Result<Self, MountError> {
        use crate::sys::clone::{self, Forked};
        match clone::fork_with_pid(crate::init::PROGRAM_PID) {
            Ok(Forked::Child) => clone::exit_now(match umount2(".", MntFlags::MNT_DETACH) {
                Ok(()) => 0,
                Err(e) => e as i32,
            }),
            Ok(Forked::Parent { pid, .. }) => Ok(Self {
                child: Some(nix::unistd::Pid::from_raw(pid)),
            }),
            // (init logs nothing: its log is closed.)
            Err(_) => {
                umount2(".", MntFlags::MNT_DETACH)
                    .map_err(|source| MountError::DetachOldRoot { source })?;
                Ok(Self { child: None })
            }
        }
    }

    /// Waits for the detach to be complete (the child reaped); its failure, if any.
    pub fn finish(mut self) -> Result<(), MountError> {
        self.wait()
    }

    fn wait(&mut self) -> Result<(), MountError> {
        use nix::sys::wait::{waitpid, WaitStatus};
        let Some(child) = self.child.take() else {
            return Ok(());
        };
        let source = loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
                Ok(WaitStatus::Exited(_, code)) => break Errno::from_raw(code),
                Ok(_) => break Errno::ECHILD,
                Err(Errno::EINTR) => continue,
                Err(e) => break e,
            }
        };
        Err(MountError::DetachOldRoot { source })
    }
}

impl Drop for OldRootDetach {
    fn drop(&mut self) {
        let _ = self.wait();
    }
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

/// Makes [`READ_ONLY_PATHS`] and `more_read_only` read-only (bind onto itself, then
/// remount `ro,nosuid,nodev,noexec`) and covers [`MASKED_PATHS`] and `more_masked`;
/// paths that do not exist are skipped. Needs the sandbox's `/proc` and `/dev/null`.
/// The `/sys` paths of the built-in lists only when the sandbox sees the host's `/sys`
/// (`with_sys`).
fn harden_kernel_files(
    with_sys: bool,
    more_masked: &[PathBuf],
    more_read_only: &[PathBuf],
) -> Result<(), MountError> {
    let ro_flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    let read_only = READ_ONLY_PATHS
        .iter()
        .map(Path::new)
        .chain(more_read_only.iter().map(PathBuf::as_path));
    for path in read_only {
        if std::fs::symlink_metadata(path).is_err() {
            continue;
        }
        let err = |source| MountError::ReadOnly {
            path: path.to_path_buf(),
            source,
        };
        let none = None::<&str>;
        mount(
            Some(path),
            path,
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )
        .map_err(err)?;
        mount(none, path, none, ro_flags, none).map_err(err)?;
    }
    // One empty read-only tmpfs serves every masked directory: the first is mounted,
    // the others are binds of it (a superblock fewer to create and tear down each).
    let mut empty_dir: Option<&Path> = None;
    let built_in = MASKED_PATHS
        .iter()
        .filter(|p| with_sys || !p.starts_with("/sys/"))
        .map(Path::new);
    for path in built_in.chain(more_masked.iter().map(PathBuf::as_path)) {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        let err = |fstype, source| MountError::Mount {
            fstype,
            target: path.to_path_buf(),
            source,
        };
        let none = None::<&str>;
        if meta.is_dir() {
            match empty_dir {
                // The superblock is read-only: so is every bind of it.
                Some(first) => mount(Some(first), path, none, MsFlags::MS_BIND, none)
                    .map_err(|e| err("bind of an empty tmpfs", e))?,
                None => {
                    mount(
                        Some("tmpfs"),
                        path,
                        Some("tmpfs"),
                        MsFlags::MS_RDONLY
                            | MsFlags::MS_NOSUID
                            | MsFlags::MS_NODEV
                            | MsFlags::MS_NOEXEC,
                        Some("mode=0555"),
                    )
                    .map_err(|e| err("tmpfs", e))?;
                    empty_dir = Some(path);
                }
            }
        } else {
            mount(Some("/dev/null"), path, none, MsFlags::MS_BIND, none)
                .map_err(|e| err("bind of /dev/null", e))?;
        }
    }
    Ok(())
}

/// What [`setup_filesystem`] refuses before it changes anything: a writable host root,
/// a kernel mount of a type not in [`KERNEL_MOUNT_TYPES`] or at a relative path.
fn check_spec(spec: &FsSpec) -> Result<(), MountError> {
    if spec.root_mode == RootMode::Writable && spec.rootfs.is_none() {
        return Err(MountError::WritableHostRoot);
    }
    if let Some(m) = spec
        .kernel_mounts
        .iter()
        .find(|m| !m.target.is_absolute() || !KERNEL_MOUNT_TYPES.contains(&m.fstype))
    {
        return Err(MountError::KernelMountRefused {
            fstype: m.fstype.to_owned(),
            target: m.target.clone(),
        });
    }
    Ok(())
}

/// Mounts a [`KernelMount`] (its type checked by [`setup_filesystem`]), creating a
/// missing target directory.
fn mount_kernel(m: &KernelMount) -> Result<(), MountError> {
    if !m.target.exists() {
        create_mount_point(&m.target, true).map_err(|source| MountError::Create {
            path: m.target.clone(),
            source,
        })?;
    }
    tracing::debug!(fstype = m.fstype, target = ?m.target, data = m.data, "mount");
    let data = (!m.data.is_empty()).then_some(m.data.as_str());
    mount(
        Some(m.fstype),
        &m.target,
        Some(m.fstype),
        MsFlags::from_bits_truncate(m.flags),
        data,
    )
    .map_err(|source| MountError::Mount {
        fstype: m.fstype,
        target: m.target.clone(),
        source,
    })
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

/// The mount points of the filesystems mounted directly below `root` (none of them
/// below another), relative to `root`, from a `/proc/PID/mountinfo` text. Copying each
/// recursively copies the rest.
fn top_submounts(mountinfo: &str, root: &Path) -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter_map(|p| p.strip_prefix(root).ok().map(Path::to_path_buf))
        .filter(|rel| !rel.as_os_str().is_empty())
        .collect();
    points.sort();
    points.dedup();
    let mut top: Vec<PathBuf> = Vec::new();
    for p in points {
        if !top.iter().any(|t| p.starts_with(t)) {
            top.push(p);
        }
    }
    top
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_root_is_never_writable_and_kernel_mounts_are_few() {
        let writable_host = FsSpec {
            root_mode: RootMode::Writable,
            ..FsSpec::default()
        };
        assert!(matches!(
            check_spec(&writable_host),
            Err(MountError::WritableHostRoot)
        ));
        let writable_bundle = FsSpec {
            root_mode: RootMode::Writable,
            rootfs: Some("/bundle/rootfs".into()),
            ..FsSpec::default()
        };
        assert!(check_spec(&writable_bundle).is_ok());
        let mount = |fstype, target: &str| FsSpec {
            kernel_mounts: vec![KernelMount {
                fstype,
                target: target.into(),
                flags: 0,
                data: String::new(),
            }],
            ..FsSpec::default()
        };
        assert!(check_spec(&mount("mqueue", "/dev/mqueue")).is_ok());
        assert!(check_spec(&mount("tmpfs", "/scratch")).is_ok());
        for (fstype, target) in [
            ("proc", "/x"),
            ("sysfs", "/sys"),
            ("ext4", "/mnt"),
            ("tmpfs", "rel"),
        ] {
            assert!(
                matches!(
                    check_spec(&mount(fstype, target)),
                    Err(MountError::KernelMountRefused { .. })
                ),
                "{fstype} at {target}"
            );
        }
    }

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
23 22 0:5 / /dev rw - devtmpfs devtmpfs rw
24 23 0:6 / /dev/pts rw - devpts devpts rw
25 22 0:7 / /proc rw - proc proc rw
26 25 0:8 / /proc/sys/fs/binfmt_misc rw - autofs systemd-1 rw
27 22 0:9 / /home/my\\040files rw - ext4 /dev/vdb rw
28 22 0:10 / /srv/root-a rw - tmpfs tmpfs rw
29 22 0:11 / /srv/root-a rw - tmpfs tmpfs rw
";

    #[test]
    fn top_submounts_are_the_outermost_below_the_root() {
        let got = top_submounts(MOUNTINFO, Path::new("/"));
        let want: Vec<PathBuf> = ["dev", "home/my files", "proc", "srv/root-a"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(got, want);
        // Below another root: only what is under it, relative to it.
        assert_eq!(
            top_submounts(MOUNTINFO, Path::new("/proc")),
            vec![PathBuf::from("sys/fs/binfmt_misc")]
        );
        assert!(top_submounts(MOUNTINFO, Path::new("/srv/root-a")).is_empty());
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo("/a\\040b\\011c\\134d"), "/a b\tc\\d");
        assert_eq!(unescape_mountinfo("/plain\\"), "/plain\\");
        assert_eq!(unescape_mountinfo("/x\\09"), "/x\\09");
    }
}
