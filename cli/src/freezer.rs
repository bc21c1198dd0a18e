//! A freezer cgroup per long-running sandbox, so that `kill --mode all` reaches every
//! process: frozen, no process can fork a child the signal would miss.
//!
//! The cgroup v1 `freezer` hierarchy is used when mounted (`freezer.state`:
//! `FROZEN`/`THAWED`), else cgroup v2 (`cgroup.freeze`, `cgroup.events`), in a
//! directory `sandbox.<ID>` under the supervisor's own cgroup of that hierarchy.
//!
//! Placement: the supervisor joins the cgroup *before* it spawns the sandbox's init
//! (processes inherit their parent's cgroup), so init and everything it forks are in
//! it from their first instruction; once the sandbox runs the supervisor moves itself
//! back to its own cgroup. The kernel freezes every task of the cgroup; a task in a
//! killable wait (a seccomp notification awaiting its answer) freezes once answered.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait for the kernel to report the cgroup frozen or emptied.
const SETTLE: Duration = Duration::from_secs(5);

/// The sandbox's freezer cgroup.
#[derive(Debug, Clone)]
pub struct Freezer {
    pub dir: PathBuf,
    /// The supervisor's own cgroup in the same hierarchy.
    home: PathBuf,
    v2: bool,
}

/// Errors of the freezer.
#[derive(Debug, thiserror::Error)]
#[error("freezer cgroup {}: {step}: {source}", path.display())]
pub struct FreezerError {
    pub path: PathBuf,
    pub step: &'static str,
    pub source: std::io::Error,
}

fn err<'a>(path: &'a Path, step: &'static str) -> impl FnOnce(std::io::Error) -> FreezerError + 'a {
    move |source| FreezerError {
        path: path.to_path_buf(),
        step,
        source,
    }
}

/// (mount point, v2) of the hierarchy to use, and our cgroup path in it.
fn hierarchy() -> Option<(PathBuf, bool, String)> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let cgroups = fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut v1 = None;
    let mut v2 = None;
    for line in mountinfo.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let rfields: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(mount)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        match rfields.first().copied() {
            Some("cgroup")
                if rfields
                    .get(2)
                    .is_some_and(|o| o.split(',').any(|o| o == "freezer")) =>
            {
                v1 = Some((PathBuf::from(mount), root.to_string()));
            }
            Some("cgroup2") if v2.is_none() => v2 = Some((PathBuf::from(mount), root.to_string())),
            _ => {}
        }
    }
    let own = |pred: &dyn Fn(&str) -> bool| {
        cgroups.lines().find_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrl, path) = (it.next()?, it.next()?, it.next()?);
            pred(ctrl).then(|| path.to_string())
        })
    };
    let (mount, root, v2flag, path) = if let Some((m, r)) = v1 {
        let p = own(&|c: &str| c.split(',').any(|c| c == "freezer"))?;
        (m, r, false, p)
    } else {
        let (m, r) = v2?;
        let p = own(&|c: &str| c.is_empty())?;
        (m, r, true, p)
    };
    // Our path relative to the mount's root.
    let rel = path
        .strip_prefix(root.trim_end_matches('/'))
        .unwrap_or(&path);
    Some((mount, v2flag, rel.trim_start_matches('/').to_string()))
}

impl Freezer {
    /// Creates `sandbox.<id>` (an empty leftover of the same name is reused). `None`
    /// when no freezer hierarchy is writable (without root): `kill --mode all` then
    /// signals without freezing.
    pub fn create(id: &str) -> Option<Freezer> {
        let (mount, v2, rel) = hierarchy()?;
        let home = mount.join(rel);
        let dir = home.join(format!("sandbox.{id}"));
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                tracing::info!(dir = %dir.display(), error = %e, "no freezer cgroup: kill --mode all will not freeze");
                return None;
            }
        }
        Some(Freezer { dir, home, v2 })
    }

    /// Moves the calling process (all its threads) into the cgroup.
    pub fn join(&self) -> Result<(), FreezerError> {
        write(
            &self.dir.join("cgroup.procs"),
            &std::process::id().to_string(),
            "joining",
        )
    }

    /// Moves the calling process back to its own cgroup.
    pub fn leave(&self) -> Result<(), FreezerError> {
        write(
            &self.home.join("cgroup.procs"),
            &std::process::id().to_string(),
            "leaving",
        )
    }

    /// The host PIDs in the cgroup.
    pub fn procs(&self) -> Vec<i32> {
        fs::read_to_string(self.dir.join("cgroup.procs"))
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Freezes every process and waits until the kernel reports them frozen (at most
    /// a few seconds: a warning, and the caller carries on).
    pub fn freeze(&self) -> Result<(), FreezerError> {
        if self.v2 {
            write(&self.dir.join("cgroup.freeze"), "1", "freezing")?;
        } else {
            write(&self.dir.join("freezer.state"), "FROZEN", "freezing")?;
        }
        let deadline = Instant::now() + SETTLE;
        while !self.frozen() {
            if Instant::now() > deadline {
                tracing::warn!(dir = %self.dir.display(), "the cgroup did not freeze in time");
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    fn frozen(&self) -> bool {
        if self.v2 {
            fs::read_to_string(self.dir.join("cgroup.events"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "frozen 1"))
        } else {
            fs::read_to_string(self.dir.join("freezer.state")).is_ok_and(|t| t.trim() == "FROZEN")
        }
    }

    pub fn thaw(&self) -> Result<(), FreezerError> {
        if self.v2 {
            write(&self.dir.join("cgroup.freeze"), "0", "thawing")
        } else {
            write(&self.dir.join("freezer.state"), "THAWED", "thawing")
        }
    }

    /// Waits until only processes of `keep` are left in the cgroup; false on timeout.
    pub fn wait_until_only(&self, keep: &[i32]) -> bool {
        let deadline = Instant::now() + SETTLE;
        loop {
            if self.procs().iter().all(|p| keep.contains(p)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Removes an empty cgroup directory, retrying while the kernel still counts a dying
/// process in it (EBUSY).
pub fn remove_cgroup(dir: &Path) {
    let deadline = Instant::now() + SETTLE;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a cgroup of the sandbox");
                return;
            }
        }
    }
}

fn write(path: &Path, text: &str, step: &'static str) -> Result<(), FreezerError> {
    fs::write(path, text).map_err(err(path, step))
}

/// The cgroup directories of process `pid` created for a sandbox (the loader's
/// `sandbox-<pid>-<n>` and the freezer's `sandbox.<ID>`), as host paths.
pub fn sandbox_cgroups_of(pid: i32) -> Vec<PathBuf> {
    let (Ok(mountinfo), Ok(cgroups)) = (
        fs::read_to_string("/proc/self/mountinfo"),
        fs::read_to_string(format!("/proc/{pid}/cgroup")),
    ) else {
        return Vec::new();
    };
    // (controllers or "" for v2, mount point, mount root)
    let mut mounts: Vec<(Vec<String>, PathBuf, String)> = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let rfields: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(mount)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        match rfields.first().copied() {
            Some("cgroup") => {
                let opts = rfields.get(2).copied().unwrap_or_default();
                let ctrls = opts
                    .split(',')
                    .map(|o| o.strip_prefix("name=").unwrap_or(o).to_string())
                    .collect();
                mounts.push((ctrls, PathBuf::from(mount), root.to_string()));
            }
            Some("cgroup2") => mounts.push((Vec::new(), PathBuf::from(mount), root.to_string())),
            _ => {}
        }
    }
    let mut dirs = Vec::new();
    for l in cgroups.lines() {
        let mut it = l.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let last = path.rsplit('/').next().unwrap_or_default();
        if !(last.starts_with("sandbox-") || last.starts_with("sandbox.")) {
            continue;
        }
        let ctrls: Vec<String> = ctrl
            .split(',')
            .filter(|c| !c.is_empty())
            .map(|c| c.strip_prefix("name=").unwrap_or(c).to_string())
            .collect();
        let found = mounts.iter().find(|(m, _, _)| {
            if ctrls.is_empty() {
                m.is_empty()
            } else {
                !m.is_empty() && ctrls.iter().all(|c| m.contains(c))
            }
        });
        if let Some((_, mount, root)) = found {
            let rel = path
                .strip_prefix(root.trim_end_matches('/'))
                .unwrap_or(path);
            let dir = mount.join(rel.trim_start_matches('/'));
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs
}
