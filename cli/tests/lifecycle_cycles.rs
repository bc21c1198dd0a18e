//! 200 `run -d` / `exec` / `delete` cycles leave no process, mount, socket, state
//! file, cgroup or open descriptor behind. A test binary of its own: the descriptor
//! count is this process's, which concurrent tests would disturb.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;
use std::path::Path;
use std::time::{Duration, Instant};
use util::*;

/// How many processes are in a cgroup whose name starts with `prefix` (every
/// process of a sandbox is in its freezer cgroup `sandbox.<ID>`, whatever its
/// command line).
fn in_cgroup(prefix: &str) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name();
        if name.to_string_lossy().parse::<i32>().is_err() {
            continue;
        }
        if let Ok(c) = std::fs::read_to_string(e.path().join("cgroup")) {
            if c.lines().any(|l| l.contains(&format!("/{prefix}"))) {
                n += 1;
            }
        }
    }
    n
}

/// Counts what a sandbox could leave behind.
#[derive(Debug, PartialEq, Eq)]
struct Leftovers {
    fds: usize,
    mounts: usize,
    sockets: usize,
    state_entries: usize,
    cgroups: usize,
    processes: usize,
}

fn leftovers(root: &Root, marker: &str) -> Leftovers {
    let count_dir = |p: &Path| std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0);
    let root_s = root.dir.to_string_lossy().into_owned();
    let sockets = std::fs::read_to_string("/proc/net/unix")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&root_s))
        .count();
    let mut cgroups = 0;
    for hier in [
        "/sys/fs/cgroup/freezer",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup",
    ] {
        if let Ok(d) = std::fs::read_dir(hier) {
            cgroups += d
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("sandbox.{marker}"))
                })
                .count();
        }
    }
    Leftovers {
        fds: count_dir(Path::new("/proc/self/fd")),
        // Mounts of this (the host's) namespace naming the state root or a sandbox
        // of this test (other helpers' mounts come and go meanwhile).
        mounts: std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&root_s) || l.contains(marker))
            .count(),
        sockets,
        state_entries: count_dir(&root.dir),
        cgroups,
        processes: with_marker(marker).len() + in_cgroup(&format!("sandbox.{marker}")),
    }
}

#[test]
fn two_hundred_cycles_leave_nothing_behind() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("cycles");
    let marker = format!("cyc{}", std::process::id());
    // The root exists from the first sandbox on.
    root.start(&format!("{marker}-warmup"), &["sleep", "1000"]);
    assert_eq!(
        code(&root.run(&["delete", "-f", &format!("{marker}-warmup")])),
        0
    );
    let before = leftovers(&root, &marker);
    assert_eq!(before.state_entries, 0);
    let started = Instant::now();
    for i in 0..200 {
        let id = format!("{marker}-{i}");
        let o = root.run(&[
            "run",
            "-d",
            "--name",
            &id,
            "--",
            "sh",
            "-c",
            &format!("sleep 1000; : {marker}"),
        ]);
        assert_eq!(code(&o), 0, "cycle {i}: {}", err(&o));
        let o = root.run(&["exec", &id, "--", "true"]);
        assert_eq!(code(&o), 0, "cycle {i}: exec: {}", err(&o));
        let o = root.run(&["delete", "--force", &id]);
        assert_eq!(code(&o), 0, "cycle {i}: {}", err(&o));
    }
    let elapsed = started.elapsed();
    let after = leftovers(&root, &marker);
    assert_eq!(before, after, "something was left behind");
    assert!(
        elapsed < Duration::from_secs(90),
        "200 cycles took {elapsed:?}"
    );
    println!("200 cycles in {elapsed:?}");
}
