//! The sandbox's root: writable by default as root, every write vanishing with the
//! sandbox (nothing reaches the host); read-only with `--read-only`; bind targets
//! created inside the sandbox when missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};

fn sandbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sandbox")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A path on the host root that must not exist before or after.
fn marker(name: &str) -> std::path::PathBuf {
    let p = std::path::PathBuf::from(format!(
        "/var/sandbox-fs-test-{name}-{}",
        std::process::id()
    ));
    assert!(!p.exists());
    p
}

#[test]
fn writes_anywhere_succeed_and_vanish() {
    if !sandbox_tests::require_root() {
        return;
    }
    let m = marker("write");
    let script = format!(
        "echo inside > {m} && cat {m} && mkdir -p /opt/sandbox-fs-test/sub && \
         echo x >> /etc/hostname.sandbox-test && rm -f /etc/hostname.sandbox-test && \
         ls -d /opt/sandbox-fs-test/sub",
        m = m.display()
    );
    let o = sandbox(&["--", "sh", "-c", &script]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "inside\n/opt/sandbox-fs-test/sub\n");
    assert!(!m.exists(), "a write inside reached the host");
    assert!(!std::path::Path::new("/opt/sandbox-fs-test").exists());
    // A second sandbox starts from the host's files again.
    let o = sandbox(&["--", "sh", "-c", &format!("test ! -e {}", m.display())]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the first sandbox's write survived it"
    );
}

#[test]
fn filesystems_below_the_root_stay_read_only() {
    if !sandbox_tests::require_root() {
        return;
    }
    let o = sandbox(&["--", "sh", "-c", "touch /sys/sandbox-test 2>&1; echo rc=$?"]);
    let out = text(&o.stdout);
    assert!(
        out.contains("Read-only file system") && out.contains("rc=1"),
        "{out}"
    );
}

#[test]
fn read_only_keeps_the_root_read_only() {
    let m = marker("ro");
    let o = sandbox(&[
        "--read-only",
        "--",
        "sh",
        "-c",
        &format!("(echo x > {}) 2>&1; echo rc=$?", m.display()),
    ]);
    let out = text(&o.stdout);
    assert!(
        out.contains("Read-only file system") && out.contains("rc=2"),
        "{out}"
    );
    assert!(!m.exists());
    // /tmp stays writable.
    let o = sandbox(&[
        "--read-only",
        "--",
        "sh",
        "-c",
        "echo y > /tmp/f && cat /tmp/f",
    ]);
    assert_eq!(text(&o.stdout), "y\n", "{}", text(&o.stderr));
}

#[test]
fn missing_bind_targets_are_created_inside_only() {
    if !sandbox_tests::require_root() {
        return;
    }
    let src = tempdir("bindsrc");
    std::fs::write(src.join("file"), "from-host\n").unwrap();
    let target = format!("/sandbox-fs-test-target-{}", std::process::id());
    let o = sandbox(&[
        "--ro-bind",
        &format!("{}:{target}", src.display()),
        "--",
        "cat",
        &format!("{target}/file"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "from-host\n");
    assert!(
        !std::path::Path::new(&target).exists(),
        "the target was created on the host"
    );
    std::fs::remove_dir_all(&src).unwrap();
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sandbox-fs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The program starts in the caller's working directory when the sandbox shows it (as
/// bubblewrap keeps it), else in `/`; `--cwd` is exact.
#[test]
fn working_directory_is_the_callers_when_visible() {
    let run_in = |dir: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "pwd"]);
        let o = Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .args(&args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    assert_eq!(
        run_in(std::path::Path::new("/usr/share"), &[]),
        "/usr/share\n"
    );
    // The caller's /tmp directory is not visible (the sandbox's /tmp is its own).
    let private = tempdir("cwd");
    assert_eq!(run_in(&private, &[]), "/\n");
    assert_eq!(run_in(&private, &["--cwd", "/etc"]), "/etc\n");
    std::fs::remove_dir_all(&private).unwrap();
}
