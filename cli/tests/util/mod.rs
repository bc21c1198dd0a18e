//! Helpers of the lifecycle tests: a state root of the test's own, running the
//! `sandbox` command, waiting for conditions, finding processes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sandbox");

/// A state root of the test's own, removed (with whatever is left) at the end.
pub struct Root {
    pub dir: PathBuf,
}

impl Root {
    pub fn new(name: &str) -> Root {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("lifecycle-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Root { dir }
    }

    /// A state root the host root shows inside a sandbox: not under `/tmp`, which a
    /// sandbox replaces with its own (the checkout, and so `CARGO_TARGET_TMPDIR`, may be
    /// under `/tmp`).
    pub fn visible_inside(name: &str) -> Root {
        let dir =
            Path::new("/var/tmp").join(format!("sandbox-lifecycle-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Root { dir }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(&self.dir).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs the command to its end (a minute at most: a hung verb fails the test).
    pub fn run(&self, args: &[&str]) -> Output {
        let child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sandbox");
        wait_output(child, 60)
    }

    pub fn state(&self, id: &str) -> serde_json::Value {
        let text = std::fs::read(self.dir.join(id).join("state.json")).expect("state.json");
        serde_json::from_slice(&text).unwrap()
    }

    pub fn list(&self) -> Vec<serde_json::Value> {
        let o = self.run(&["list", "--json"]);
        assert_eq!(code(&o), 0, "{}", err(&o));
        serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout).unwrap()
    }

    pub fn status(&self, id: &str) -> Option<String> {
        self.list()
            .into_iter()
            .find(|s| s["id"] == id)
            .map(|s| s["status"].as_str().unwrap().to_string())
    }

    /// `run -d --name id -- argv`, asserting it succeeds and prints the ID.
    pub fn start(&self, id: &str, argv: &[&str]) -> serde_json::Value {
        let mut args = vec!["run", "-d", "--name", id, "--"];
        args.extend_from_slice(argv);
        let o = self.run(&args);
        assert_eq!(code(&o), 0, "run -d: {}", err(&o));
        assert_eq!(out(&o), format!("{id}\n"));
        self.state(id)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.run(&["delete", "--force", &id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Waits for `cond` until a deadline (polling: these are other processes' states).
pub fn until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn alive(pid: i64) -> bool {
    // A zombie is gone for our purposes (it runs nothing); so is a missing process.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Host PIDs of processes whose command line contains `marker`.
pub fn with_marker(marker: &str) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid as u32 == std::process::id() {
            continue;
        }
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if String::from_utf8_lossy(&c).contains(marker) && alive(pid.into()) {
                v.push(pid);
            }
        }
    }
    v
}

/// Waits for `child` to end (at most `secs` seconds: then it is killed and the test
/// fails) and returns its output (read meanwhile, so that a full pipe never blocks it).
pub fn wait_output(child: std::process::Child, secs: u64) -> Output {
    match sandbox_tests::term::child_output_with_timeout(child, Duration::from_secs(secs)) {
        Ok(out) => out,
        Err(e) => panic!("a client: {e}"),
    }
}
