//! The no-root policy (`sandbox_tests::require_root`) as a developer without root meets
//! it: this binary re-executes itself as uid 65534 (`setpriv`), running only
//! `probe_needing_root`, and looks at what `cargo test` would show.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

/// Set in the re-executed child: `probe_needing_root` runs only then.
const CHILD_ENV: &str = "SANDBOX_TESTS_ROOT_POLICY_CHILD";
const RAN: &str = "probe went on past require_root";

/// A test that needs root, as every such test is written.
#[test]
fn probe_needing_root() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    if !sandbox_tests::require_root() {
        return;
    }
    println!("{RAN}");
}

/// The probe as uid 65534, with `extra_env`; stdout and stderr together.
fn probe_as_nobody(extra_env: &[(&str, &str)]) -> (Output, String) {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "probe_needing_root", "--nocapture"])
        .env(CHILD_ENV, "1")
        .env_remove(sandbox_tests::SKIP_ROOT_VAR);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run setpriv (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

#[test]
fn without_root_a_root_test_fails_unless_skipping_is_asked_for() {
    // Dropping to another user takes root.
    if !sandbox_tests::require_root() {
        return;
    }

    // Default: the test fails, and says why.
    let (out, text) = probe_as_nobody(&[]);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("probe_needing_root needs root")
            && text.contains("SANDBOX_TESTS_SKIP_ROOT=1"),
        "{text}"
    );
    assert!(!text.contains(RAN), "{text}");

    // Asked to skip: it passes without running, and the skip is on stdout even though
    // libtest captures a passing test's output (here --nocapture shows everything; the
    // line is written past the capture, see require_root).
    let (out, text) = probe_as_nobody(&[(sandbox_tests::SKIP_ROOT_VAR, "1")]);
    assert!(out.status.success(), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SKIPPED (not root): probe_needing_root"),
        "{text}"
    );
    assert!(!text.contains(RAN), "{text}");

    // Any other value is not a request to skip.
    let (out, text) = probe_as_nobody(&[(sandbox_tests::SKIP_ROOT_VAR, "yes")]);
    assert!(!out.status.success(), "{text}");
}

/// The skip line shows in `cargo test`'s ordinary (capturing) output.
#[test]
fn a_skip_shows_without_nocapture() {
    if !sandbox_tests::require_root() {
        return;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "probe_needing_root"])
        .env(CHILD_ENV, "1")
        .env(sandbox_tests::SKIP_ROOT_VAR, "1")
        .output()
        .expect("run setpriv (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("SKIPPED (not root): probe_needing_root"),
        "{stdout}"
    );
}
