//! The loader benchmark (`cli/examples/loader_bench.rs`) still runs: `--quick` against
//! this build's `sandbox`, with every table filled, every terminal write notified, and
//! the `cat` throughput measured in every terminal mode.
//!
//! `cargo test -p sandbox-cli` builds the example before running the tests; with
//! `--test bench_smoke` alone, build it first (`cargo build -p sandbox-cli --examples`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn example() -> PathBuf {
    let sandbox = PathBuf::from(env!("CARGO_BIN_EXE_sandbox"));
    let exe = sandbox
        .parent()
        .expect("target directory")
        .join("examples")
        .join("loader_bench");
    assert!(
        exe.is_file(),
        "{} missing: run `cargo test -p sandbox-cli` (which builds the examples) or \
         `cargo build -p sandbox-cli --examples` first",
        exe.display()
    );
    exe
}

/// The example's quick mode, run once for all the tests of this file (two benches at
/// once would disturb each other, and take twice as long).
fn quick_output() -> &'static (bool, String, String) {
    static OUT: OnceLock<(bool, String, String)> = OnceLock::new();
    OUT.get_or_init(|| run_quick(Duration::from_secs(60)))
}

/// Runs the example's quick mode, killing it after `limit`.
fn run_quick(limit: Duration) -> (bool, String, String) {
    let out_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench_smoke.out");
    let err_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench_smoke.err");
    let mut child = Command::new(example())
        .args(["--quick", "--sandbox", env!("CARGO_BIN_EXE_sandbox")])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start loader_bench");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "loader_bench --quick ran for more than {limit:?}; output so far:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.success(),
        std::fs::read_to_string(&out_path).unwrap(),
        std::fs::read_to_string(&err_path).unwrap(),
    )
}

/// The numbers of the table rows that follow the line starting with `title`: the last
/// three words of each row.
fn table(out: &str, title: &str) -> Vec<(String, Vec<f64>)> {
    table_n(out, title, 3)
}

/// The last `cols` words of each row of the table that follows the line starting with
/// `title`, as numbers (a trailing `x` of a ratio dropped), with the row's name.
fn table_n(out: &str, title: &str, cols: usize) -> Vec<(String, Vec<f64>)> {
    let mut lines = out.lines().skip_while(|l| !l.starts_with(title)).skip(2); // title, column headers
    let mut rows = Vec::new();
    for l in lines.by_ref() {
        if !l.starts_with("   ") || l.trim_start().starts_with("=>") {
            break;
        }
        let words: Vec<&str> = l.split_whitespace().collect();
        let n = words.len();
        assert!(n > cols, "short row {l:?}");
        let nums: Vec<f64> = words[n - cols..]
            .iter()
            .map(|w| w.trim_end_matches('x').parse::<f64>())
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("row {l:?}: {e}"));
        rows.push((words[..n - cols].join(" "), nums));
    }
    rows
}

#[test]
fn loader_bench_quick_runs_and_reports_every_measurement() {
    let (ok, out, err) = quick_output();
    assert!(*ok, "loader_bench --quick failed:\n{out}\n{err}");

    let startup = table(out, "1. start-up");
    let names: Vec<&str> = startup.iter().map(|(n, _)| n.as_str()).collect();
    // The peers with the same namespaces (unshare with all of them, bwrap) are rows
    // when installed (.ci/run installs both).
    let mut expected = vec!["true", "unshare --pid --fork true (baseline)"];
    expected.push("unshare -pfmiun --mount-proc true");
    let has_bwrap = std::process::Command::new("bwrap")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_bwrap {
        expected
            .push("bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev --tmpfs /tmp true");
    }
    expected.extend([
        "floor: the same namespaces, read-only root, /proc /dev /tmp",
        "floor: the same, overlay root",
        "sandbox run -- true",
        "sandbox run --tty -- true (on a pty)",
        "sandbox run --read-only -- true",
    ]);
    assert_eq!(names, expected, "{out}");
    for (name, v) in &startup {
        // Wall times of real processes: positive, and min <= median.
        assert!(
            v[0] > 0.0 && v[1] > 0.0 && v[1] <= v[0],
            "{name}: {v:?}\n{out}"
        );
    }
    // The baseline's ratio to itself.
    assert_eq!(startup[1].1[2], 1.0, "{out}");

    for (title, rows) in [
        ("2. terminal writes", 3),
        ("2b.", 6),
        ("3. fork+exec", 6),
        ("5. setpgid", 4),
    ] {
        let t = table(out, title);
        assert_eq!(t.len(), rows, "{title}:\n{out}");
        assert!(
            t.iter().all(|(_, v)| v.iter().all(|x| x.is_finite())),
            "{out}"
        );
    }

    // Every one of the N writes of the --tty run went through the loader (plus the
    // few reads of the dynamic loader), and all were answered at once: the writer is
    // in the foreground.
    let line = out
        .lines()
        .find(|l| l.starts_with("loader: a --tty run of "))
        .unwrap_or_else(|| panic!("no loader statistics:\n{out}"));
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(nums.len() >= 3, "{line}");
    let (writes, total, fast) = (nums[0], nums[1], nums[2]);
    assert!(writes > 0 && total >= writes, "{line}");
    assert_eq!(total, fast, "{line}");
    assert!(out.contains("kernel features:"), "{out}");
}

/// The numbers in the line that starts with `prefix`.
fn numbers_of_line(out: &str, prefix: &str) -> Vec<u64> {
    let line = out
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?}:\n{out}"));
    line.split_whitespace()
        .filter_map(|w| w.trim_end_matches(':').parse().ok())
        .collect()
}

#[test]
fn loader_bench_quick_measures_cat_throughput_in_every_terminal_mode() {
    let (ok, out, err) = quick_output();
    // The bench fails unless the terminal received every byte of the file, and nothing
    // else, in every run.
    assert!(*ok, "loader_bench --quick failed:\n{out}\n{err}");

    let title = "4. cat of a 4000000-byte file";
    let t = table_n(out, title, 5);
    let names: Vec<&str> = t.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "cat, direct (baseline)",
            "sandbox run -- cat (stdio passed through)",
            "sandbox run --tty -- cat (every read, write notified)",
            "sandbox run --tty=pty -- cat (loader proxies)",
        ],
        "{out}"
    );
    for (name, v) in &t {
        let [median, best, cpu, ratio, best_ratio] = v[..] else {
            panic!("{name}: {v:?}");
        };
        // Rates of real transfers: positive and finite; the fastest run's rate is at
        // least the median's; some CPU was spent.
        assert!(
            median > 0.0 && median.is_finite() && best >= median && cpu > 0.0,
            "{name}: {v:?}\n{out}"
        );
        assert!(ratio > 0.0 && best_ratio > 0.0, "{name}: {v:?}\n{out}");
    }
    // The baseline's ratios to itself.
    assert_eq!((t[0].1[3], t[0].1[4]), (1.0, 1.0), "{out}");

    // With --tty the loader answers cat's reads and writes (all at once: cat is in the
    // foreground); with --tty=pty it is notified of none of them.
    let tty = numbers_of_line(out, "loader: a --tty run of the cat of ");
    let pty = numbers_of_line(out, "loader: a --tty=pty run of the cat of ");
    assert_eq!(tty.len(), 3, "{tty:?}\n{out}");
    assert_eq!(pty.len(), 3, "{pty:?}\n{out}");
    assert_eq!(tty[0], 4_000_000, "{out}");
    // At least one read and one write of the file.
    assert!(tty[1] >= 2 && tty[1] == tty[2], "{out}");
    assert!(pty[1] < tty[1], "{out}");
}

/// The start-up table's floor rows time a real sandbox: `--bare-sandbox` runs its
/// command as PID 2 of a new PID namespace with only a loopback interface, on a root
/// that refuses writes (EROFS, a host directory included) and with its exit code passed
/// through; `--bare-sandbox-overlay`'s writes succeed inside and never reach the host.
/// The bench and the test may live under the host's `/tmp`, which the bare sandbox
/// covers with its own: the command still runs, and the marker directory is on the
/// host's `/var/tmp`.
#[test]
fn the_start_up_floor_runs_its_command_contained() {
    let dir = PathBuf::from("/var/tmp").join(format!("bench-smoke-floor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("marker");
    // $$ is the shell's PID; /proc/net/dev lists a header of two lines and the
    // interfaces; dash reports a failed redirection with the errno's text.
    let script = format!(
        "echo pid=$$; echo ifaces=$(($(wc -l < /proc/net/dev) - 2)); \
         if err=$( {{ echo x > '{}'; }} 2>&1 ); then echo wrote; else echo \"refused: $err\"; fi; \
         exit 7",
        marker.display()
    );
    let runs = [
        ("--bare-sandbox", "refused"),
        ("--bare-sandbox-overlay", "wrote"),
    ]
    .map(|(mode, write)| {
        let out = Command::new(example())
            .args([mode, "/bin/sh", "-c", &script])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let marker_left = marker.exists();
        (mode, write, out, marker_left)
    });
    let _ = std::fs::remove_dir_all(&dir);
    for (mode, write, out, marker_left) in runs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "{mode}: {stdout}{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{mode}: {stdout}{stderr}");
        assert_eq!(
            lines[..2],
            ["pid=2", "ifaces=1"],
            "{mode}: {stdout}{stderr}"
        );
        if write == "refused" {
            assert!(
                lines[2].starts_with("refused:") && lines[2].contains("Read-only file system"),
                "{mode}: {stdout}{stderr}"
            );
        } else {
            assert_eq!(lines[2], write, "{mode}: {stdout}{stderr}");
        }
        assert!(!marker_left, "{mode} wrote {}", marker.display());
    }
}
