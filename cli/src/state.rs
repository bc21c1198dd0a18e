//! The state directory of long-running sandboxes (`sandbox run -d`).
//!
//! The root is `--root DIR`, else `/run/sandbox` for root and
//! `$XDG_RUNTIME_DIR/sandbox` otherwise; it is created mode 0700. Each sandbox has a
//! directory `<root>/<ID>` (mode 0700, created by the `run -d` client: `mkdir` fails
//! when the ID is taken) holding:
//! - `state.json`: a [`SandboxState`], replaced atomically (write + rename);
//! - `sock`: the supervisor's control socket ([`crate::protocol`]), mode 0600; the
//!   supervisor also checks every peer's `SO_PEERCRED` uid (owner or root);
//! - `lock`: the supervisor holds an exclusive `flock` on it for its whole life. The
//!   kernel drops it when the process dies, however it dies, so a lock anyone can
//!   take means the supervisor is gone: the sandbox is [`Status::Dead`] (a PID in the
//!   state file could have been reused);
//! - `log`: the supervisor's log (and the first program's stdout and stderr).

use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The lifecycle of a sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The supervisor is setting it up (or, later, holds the program before exec).
    Created,
    /// The first program runs.
    Running,
    /// The first program has ended; the supervisor keeps its status until `delete`.
    Stopped,
    /// The supervisor is gone without cleaning up (killed); `delete` cleans.
    Dead,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Dead => "dead",
        }
    }
}

/// `state.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxState {
    pub id: String,
    /// The supervisor process (host PID).
    pub pid: i32,
    /// The sandbox's init (host PID; 0 until it runs).
    pub init_pid: i32,
    pub status: Status,
    /// RFC 3339, UTC.
    pub created: String,
    /// The first program and its arguments.
    pub argv: Vec<String>,
    /// The uid that may use the control socket (besides root).
    pub owner: u32,
    /// The first program's wait status once it has ended.
    pub exit_status: Option<i32>,
    /// cgroup directories of the sandbox (removed by `delete` if the supervisor could
    /// not).
    pub cgroups: Vec<PathBuf>,
}

/// Errors of the state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no state directory: $XDG_RUNTIME_DIR is not set (use --root DIR)")]
    NoRuntimeDir,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no sandbox named {0:?}")]
    Unknown(String),
    #[error("a sandbox named {0:?} exists already")]
    Exists(String),
    #[error("invalid sandbox ID {0:?}: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit")]
    BadId(String),
    #[error("{}: malformed state file: {err}", path.display())]
    Malformed { path: PathBuf, err: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `id` is a valid sandbox ID (it names a directory: no `/`, no `..`).
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A new random ID: 12 hex digits from the kernel's random source.
pub fn random_id() -> Result<String, StateError> {
    let mut bytes = [0u8; 6];
    let mut f = fs::File::open("/dev/urandom").map_err(io(Path::new("/dev/urandom")))?;
    std::io::Read::read_exact(&mut f, &mut bytes).map_err(io(Path::new("/dev/urandom")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The state directory root.
#[derive(Clone, Debug)]
pub struct StateRoot {
    pub root: PathBuf,
}

impl StateRoot {
    /// `--root`, else the default for this user (not created yet).
    pub fn new(root: Option<PathBuf>) -> Result<StateRoot, StateError> {
        let root = match root {
            Some(r) => r,
            None if nix::unistd::geteuid().is_root() => PathBuf::from("/run/sandbox"),
            None => std::env::var_os("XDG_RUNTIME_DIR")
                .filter(|v| !v.is_empty())
                .map(|v| PathBuf::from(v).join("sandbox"))
                .ok_or(StateError::NoRuntimeDir)?,
        };
        Ok(StateRoot { root })
    }

    /// Creates the root (0700) if needed.
    pub fn create(&self) -> Result<(), StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(io(&self.root))
    }

    /// The directory of sandbox `id` (which must be valid).
    pub fn dir(&self, id: &str) -> Result<PathBuf, StateError> {
        if !valid_id(id) {
            return Err(StateError::BadId(id.to_string()));
        }
        Ok(self.root.join(id))
    }

    /// Creates the directory of a new sandbox (0700); fails if the ID is taken.
    pub fn create_sandbox(&self, id: &str) -> Result<PathBuf, StateError> {
        let dir = self.dir(id)?;
        self.create()?;
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StateError::Exists(id.to_string()))
            }
            Err(e) => Err(io(&dir)(e)),
        }
    }

    /// The IDs of every sandbox, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.root)(e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| valid_id(id))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The recorded state of `id`, with the status `Dead` when its supervisor is
    /// gone (see [`supervisor_alive`]).
    pub fn read(&self, id: &str) -> Result<SandboxState, StateError> {
        let dir = self.dir(id)?;
        let path = dir.join("state.json");
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::Unknown(id.to_string()))
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let mut state: SandboxState =
            serde_json::from_slice(&text).map_err(|e| StateError::Malformed {
                path: path.clone(),
                err: e.to_string(),
            })?;
        if !supervisor_alive(&dir) {
            state.status = Status::Dead;
        }
        Ok(state)
    }
}

/// Writes `state.json` atomically (a temporary file renamed over it).
pub fn write_state(dir: &Path, state: &SandboxState) -> Result<(), StateError> {
    let tmp = dir.join("state.json.tmp");
    let path = dir.join("state.json");
    let json = serde_json::to_vec_pretty(state).map_err(|e| StateError::Malformed {
        path: path.clone(),
        err: e.to_string(),
    })?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(&json).map_err(io(&tmp))?;
    fs::rename(&tmp, &path).map_err(io(&path))
}

/// Opens the `lock` file of a sandbox directory (created if missing).
pub fn open_lock(dir: &Path) -> Result<fs::File, StateError> {
    let path = dir.join("lock");
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(io(&path))
}

/// Whether the supervisor of the sandbox in `dir` is alive: someone holds `lock`. A
/// missing lock file means it is gone; a lock file we may not open (not the owner)
/// tells nothing, and counts as alive.
pub fn supervisor_alive(dir: &Path) -> bool {
    let f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(dir.join("lock"))
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
        Err(_) => return true,
    };
    match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockSharedNonblock) {
        Ok(_unlocked_on_drop) => false,
        Err((_, _)) => true,
    }
}

/// Now as RFC 3339 UTC (seconds).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_id("web-1.a_b"));
        assert!(!valid_id(""));
        assert!(!valid_id(".."));
        assert!(!valid_id("a/b"));
        assert!(!valid_id("-x"));
        assert!(!valid_id(&"a".repeat(65)));
        let id = random_id().unwrap();
        assert_eq!(id.len(), 12);
        assert!(valid_id(&id));
    }

    #[test]
    fn rfc3339_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20"), "{t}");
    }
}
