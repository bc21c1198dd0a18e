//! A control group per sandbox, for limits that bind whatever the program's uid and
//! capabilities: the number of processes (pids controller) and memory.
//!
//! The loader creates one cgroup per sandbox, named `sandbox-<loader pid>-<n>`, under
//! the cgroup the loader itself is in (`/proc/self/cgroup`), in each hierarchy that has
//! a controller it needs (`/proc/self/mountinfo`):
//!
//! | limit | cgroup v1 | cgroup v2 |
//! |-------|-----------|-----------|
//! | processes | `pids.max` in the `pids` hierarchy | `pids.max` |
//! | memory | `memory.limit_in_bytes`, and `memory.memsw.limit_in_bytes` to the same value when present (no escape to swap) | `memory.max`, and `memory.swap.max` = 0 when present |
//!
//! A v1 hierarchy of the controller is preferred (a controller bound to v1 is absent
//! from v2). On v2 the controller must be listed in the parent's `cgroup.controllers`;
//! it is enabled in the parent's `cgroup.subtree_control` if needed (which the kernel
//! refuses when the parent has processes of its own and is not the root).
//!
//! Right after the spawn the loader writes init's pid into each cgroup's
//! `cgroup.procs` (opened before), while init builds the filesystem, and then tells
//! init, which waits for that before it forks the program: the program and everything
//! it starts are in the cgroup from their first instruction. (Moving a process between
//! cgroups waits for an RCU grace period, a few milliseconds; overlapped with init's
//! set-up it costs start-up little. Init writing `0` itself costs that time in full.)
//! `pids.max` counts every process and thread of the sandbox, init included. Once the
//! sandbox has ended (init reaped: the kernel has then killed and reaped every other
//! process of its PID namespace), the directories are removed. A loader killed with
//! SIGKILL leaves its (empty) directories behind; the next sandbox created under the
//! same parent removes every `sandbox-<pid>-*` whose loader process is gone.
//!
//! When no hierarchy is writable (a caller without root), `create` returns the
//! limits it could not place; the caller falls back to `RLIMIT_NPROC` for processes.

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The limits asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// `pids.max`: processes and threads of the sandbox, init included.
    pub pids: Option<u64>,
    /// Memory in bytes.
    pub memory: Option<u64>,
}

/// A step that failed, with the path.
#[derive(Debug, thiserror::Error)]
#[error("cgroup {}: {step}: {source}", path.display())]
pub struct CgroupError {
    pub path: PathBuf,
    pub step: &'static str,
    pub source: std::io::Error,
}

/// The sandbox's cgroups (one directory per hierarchy used), removed on drop.
///
/// How init joins them. A write of a PID to `cgroup.procs` takes the kernel's global
/// `cgroup_threadgroup_rwsem` for writing, which waits for an RCU grace period (about
/// 10 ms measured on this 2-CPU VM, per sandbox: the first migration after a quiet
/// moment). A v1 hierarchy also has `tasks`, where writing `0` moves only the calling
/// thread and takes no global lock: init, single-threaded, writes `0` there itself
/// (the loader passes it the descriptors, [`SandboxCgroup::self_join`]) before it forks
/// the program — no grace period. A v2 hierarchy has no such file for a domain cgroup;
/// the loader writes init's PID to `cgroup.procs` ([`SandboxCgroup::add_process`]).
/// The loader creates the cgroups right after spawning init, while init builds the
/// filesystem; init waits for the loader's `G` before forking the program.
#[derive(Debug)]
pub(crate) struct SandboxCgroup {
    dirs: Vec<PathBuf>,
    /// v2: `cgroup.procs` of the sandbox's cgroup, for the loader to write init's PID.
    procs: Vec<(PathBuf, OwnedFd)>,
    /// v1: `tasks` of the sandbox's cgroup, for init to write `0` (itself).
    tasks: Vec<OwnedFd>,
}

/// What [`create`] could do.
#[derive(Debug)]
pub(crate) struct Placement {
    pub cgroup: Option<SandboxCgroup>,
    /// Limits no writable hierarchy could hold.
    pub unplaced: Limits,
}

impl SandboxCgroup {
    /// Moves the process `pid` (the loader's PID namespace) into every cgroup of the
    /// sandbox, then closes the `cgroup.procs` descriptors.
    pub fn add_process(&mut self, pid: i32) -> Result<(), CgroupError> {
        let text = pid.to_string();
        for (path, fd) in self.procs.drain(..) {
            let mut file = fs::File::from(fd);
            file.write_all(text.as_bytes())
                .map_err(|source| CgroupError {
                    path,
                    step: "moving init into it",
                    source,
                })?;
        }
        Ok(())
    }

    /// Moves the process `pid` (the loader's PID namespace; an exec helper, before it
    /// forks the process it executes) into every cgroup of the sandbox, v1 or v2, by
    /// writing its `cgroup.procs`.
    pub fn move_process(&self, pid: i32) -> Result<(), CgroupError> {
        let text = pid.to_string();
        for dir in &self.dirs {
            let path = dir.join("cgroup.procs");
            fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|source| CgroupError {
                    path,
                    step: "moving an exec helper into it",
                    source,
                })?;
        }
        Ok(())
    }

    /// Whether the loader must move init ([`SandboxCgroup::add_process`]): some
    /// hierarchy is v2.
    pub fn needs_loader_move(&self) -> bool {
        !self.procs.is_empty()
    }

    /// The v1 `tasks` descriptors init writes `0` to (see the type's docs); they stay
    /// open in the loader until the sandbox has started.
    pub fn self_join(&self) -> Vec<RawFd> {
        self.tasks.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// Closes the loader's copies of the join descriptors (init has its own).
    pub fn close_join_descriptors(&mut self) {
        self.procs.clear();
        self.tasks.clear();
    }
}

impl Drop for SandboxCgroup {
    fn drop(&mut self) {
        self.close_join_descriptors();
        for dir in self.dirs.iter().rev() {
            remove_dir(dir);
        }
    }
}

/// Removes an empty cgroup directory; retries for a moment while the kernel still
/// counts a dying process in it (EBUSY).
fn remove_dir(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => {
                tracing::debug!(dir = %dir.display(), "cgroup removed");
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the sandbox's cgroup");
                return;
            }
        }
    }
}

/// A controller of a hierarchy: where the loader's own cgroup is.
#[derive(Debug, Clone)]
struct Hierarchy {
    /// The loader's cgroup directory in it.
    dir: PathBuf,
    v2: bool,
}

/// The mounted cgroup hierarchies, from `/proc/self/mountinfo` and `/proc/self/cgroup`.
struct Mounts {
    /// (v1 controller names, mount point, mount root, hierarchy path of ours)
    v1: Vec<(Vec<String>, PathBuf, String)>,
    v2: Option<(PathBuf, String)>,
    /// `/proc/self/cgroup`: (controllers, path); v2 has empty controllers.
    membership: Vec<(Vec<String>, String)>,
}

impl Mounts {
    fn read() -> Option<Mounts> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
        let cgroup = fs::read_to_string("/proc/self/cgroup").ok()?;
        Some(Mounts::parse(&mountinfo, &cgroup))
    }

    /// From the text of `/proc/self/mountinfo` and `/proc/self/cgroup`.
    fn parse(mountinfo: &str, cgroup: &str) -> Mounts {
        let mut v1 = Vec::new();
        let mut v2 = None;
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let (Some(root), Some(point), Some(fstype)) = (l.get(3), l.get(4), r.first()) else {
                continue;
            };
            match *fstype {
                "cgroup2" => v2 = Some((PathBuf::from(point), root.to_string())),
                "cgroup" => {
                    let opts = r.get(2).copied().unwrap_or("");
                    let names = opts.split(',').map(str::to_string).collect();
                    v1.push((names, PathBuf::from(point), root.to_string()));
                }
                _ => {}
            }
        }
        let membership = cgroup
            .lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ':');
                let _id = it.next()?;
                let ctrls = it.next()?;
                let path = it.next()?;
                let ctrls = ctrls
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect();
                Some((ctrls, path.to_string()))
            })
            .collect();
        Mounts { v1, v2, membership }
    }

    /// Where `controller` can be used: its v1 hierarchy, else v2 if the controller is
    /// available to the loader's v2 cgroup's children.
    fn find(&self, controller: &str) -> Option<Hierarchy> {
        let h = self.locate(controller)?;
        if !h.v2 {
            return Some(h);
        }
        let available = fs::read_to_string(h.dir.join("cgroup.controllers")).ok()?;
        available
            .split_whitespace()
            .any(|c| c == controller)
            .then_some(h)
    }

    /// The loader's cgroup directory in the v1 hierarchy of `controller`, or else in
    /// the v2 hierarchy (whether v2 has the controller is not checked here).
    fn locate(&self, controller: &str) -> Option<Hierarchy> {
        let join = |point: &Path, root: &str, path: &str| {
            let rel = path.strip_prefix(root).unwrap_or(path);
            point.join(rel.trim_start_matches('/'))
        };
        if let Some((_, point, root)) = self
            .v1
            .iter()
            .find(|(n, ..)| n.iter().any(|c| c == controller))
        {
            let (_, path) = self
                .membership
                .iter()
                .find(|(c, _)| c.iter().any(|c| c == controller))?;
            return Some(Hierarchy {
                dir: join(point, root, path),
                v2: false,
            });
        }
        let (point, root) = self.v2.as_ref()?;
        let (_, path) = self.membership.iter().find(|(c, _)| c.is_empty())?;
        Some(Hierarchy {
            dir: join(point, root, path),
            v2: true,
        })
    }
}

/// (file, value) pairs of one cgroup.
type LimitFiles = Vec<(&'static str, String)>;

static SERIAL: AtomicU32 = AtomicU32::new(0);

/// Creates the sandbox's cgroup(s) holding `limits`. A hierarchy that is missing or
/// not writable leaves its limits in [`Placement::unplaced`]; an error is returned
/// only when a created cgroup refuses a limit.
pub(crate) fn create(limits: Limits) -> Result<Placement, CgroupError> {
    let mut placement = Placement {
        cgroup: None,
        unplaced: limits,
    };
    if limits.pids.is_none() && limits.memory.is_none() {
        return Ok(placement);
    }
    let Some(mounts) = Mounts::read() else {
        return Ok(placement);
    };
    // Per hierarchy: the limit files to write.
    let mut wanted: Vec<(Hierarchy, LimitFiles)> = Vec::new();
    let mut add =
        |h: Hierarchy, files: LimitFiles| match wanted.iter_mut().find(|(w, _)| w.dir == h.dir) {
            Some(w) => w.1.extend(files),
            None => wanted.push((h, files)),
        };
    if let Some(n) = limits.pids {
        if let Some(h) = mounts.find("pids") {
            add(h, vec![("pids.max", n.to_string())]);
        }
    }
    if let Some(bytes) = limits.memory {
        if let Some(h) = mounts.find("memory") {
            let files = if h.v2 {
                vec![
                    ("memory.max", bytes.to_string()),
                    ("memory.swap.max", "0".into()),
                ]
            } else {
                vec![
                    ("memory.limit_in_bytes", bytes.to_string()),
                    ("memory.memsw.limit_in_bytes", bytes.to_string()),
                ]
            };
            add(h, files);
        }
    }
    let name = format!(
        "sandbox-{}-{}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    );
    let mut cg = SandboxCgroup {
        dirs: Vec::new(),
        procs: Vec::new(),
        tasks: Vec::new(),
    };
    for (h, files) in &wanted {
        remove_stale(&h.dir);
        if h.v2 {
            let controllers: Vec<&str> = files
                .iter()
                .filter_map(|(f, _)| f.split('.').next())
                .collect();
            if enable_v2(&h.dir, &controllers).is_err() {
                continue;
            }
        }
        let dir = h.dir.join(&name);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "cgroup not writable");
                continue;
            }
        }
        cg.dirs.push(dir.clone());
        for (file, value) in files {
            let path = dir.join(file);
            if !path.exists() && matches!(*file, "memory.memsw.limit_in_bytes" | "memory.swap.max")
            {
                continue;
            }
            write_file(&path, value).map_err(|source| CgroupError {
                path: path.clone(),
                step: "setting the limit",
                source,
            })?;
            match file.split('.').next() {
                Some("pids") => placement.unplaced.pids = None,
                Some("memory") => placement.unplaced.memory = None,
                _ => {}
            }
        }
        let join = dir.join(if h.v2 { "cgroup.procs" } else { "tasks" });
        let file = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&join)
            .map_err(|source| CgroupError {
                path: join.clone(),
                step: "open",
                source,
            })?;
        if h.v2 {
            cg.procs.push((join, file.into()));
        } else {
            cg.tasks.push(file.into());
        }
        tracing::info!(dir = %dir.display(), ?files, "sandbox cgroup created");
    }
    if !cg.dirs.is_empty() {
        placement.cgroup = Some(cg);
    }
    Ok(placement)
}

fn write_file(path: &Path, value: &str) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

/// Enables `controllers` for the children of the v2 cgroup `dir`.
fn enable_v2(dir: &Path, controllers: &[&str]) -> std::io::Result<()> {
    let enabled = fs::read_to_string(dir.join("cgroup.subtree_control"))?;
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write_file(&dir.join("cgroup.subtree_control"), &missing.join(" ")).inspect_err(|e| {
        tracing::debug!(dir = %dir.display(), error = %e, "cannot enable cgroup v2 controllers");
    })
}

/// Removes the `sandbox-<pid>-<n>` cgroups under `parent` whose loader is gone (a
/// loader killed with SIGKILL cannot remove its own). A cgroup that still has
/// processes cannot be removed (EBUSY) and stays.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("sandbox-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        if !alive && fs::remove_dir(entry.path()).is_ok() {
            tracing::info!(dir = %entry.path().display(), "removed a stale sandbox cgroup");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
8:pids:/
4:memory:/process_api/abc
1:cpu,cpuacct:/x
0::/
";

    #[test]
    fn v1_controllers_are_preferred_and_found_under_our_cgroup() {
        let m = Mounts::parse(HYBRID_MOUNTS, HYBRID_CGROUP);
        let pids = m.locate("pids").map(|h| (h.dir, h.v2));
        assert_eq!(pids, Some((PathBuf::from("/sys/fs/cgroup/pids"), false)));
        let mem = m.locate("memory").map(|h| (h.dir, h.v2));
        assert_eq!(
            mem,
            Some((
                PathBuf::from("/sys/fs/cgroup/memory/process_api/abc"),
                false
            ))
        );
        let cpu = m.locate("cpuacct").map(|h| h.dir);
        assert_eq!(cpu, Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/x")));
        // Not bound to v1: v2.
        let io = m.locate("io").map(|h| (h.dir, h.v2));
        assert_eq!(io, Some((PathBuf::from("/sys/fs/cgroup/unified"), true)));
    }

    #[test]
    fn v2_only_with_a_mount_root_below_the_hierarchy_root() {
        // A cgroup namespace or a bind of a sub-hierarchy: the mount shows /user.slice.
        let mounts = "30 25 0:26 /user.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let m = Mounts::parse(mounts, "0::/user.slice/user-1000.slice/session-3.scope\n");
        let pids = m.locate("pids").map(|h| (h.dir, h.v2));
        assert_eq!(
            pids,
            Some((
                PathBuf::from("/sys/fs/cgroup/user-1000.slice/session-3.scope"),
                true
            ))
        );
    }
}
