//! The loader as a library: one embedder's view (start, events, signal by delivery
//! mode, destroy, wait). One test in this file: `Sandbox::start` clones the process,
//! which must not happen while another test thread allocates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_loader::{Sandbox, SandboxEvent, SandboxSpec, SignalMode};
use sandbox_tests::console::wait_descendant;
use std::time::Duration;

fn next_event(s: &Sandbox) -> SandboxEvent {
    s.events()
        .recv_timeout(Duration::from_secs(10))
        .expect("an event within 10 s")
}

#[test]
fn embedder_controls_a_sandbox() {
    if !sandbox_tests::require_root() {
        return;
    }
    // A program that stops and continues as it is told, then is destroyed.
    let spec = SandboxSpec::new(vec!["sleep".into(), "100".into()]);
    let sandbox = Sandbox::start(spec).unwrap();
    assert!(sandbox.init_pid() > 1);
    // The program (init's child) has exec'd: a stop is now the program's.
    wait_descendant(sandbox.init_pid(), &["sleep", "100"], |_| true);

    sandbox.signal(SignalMode::Process, libc::SIGSTOP).unwrap();
    assert_eq!(
        next_event(&sandbox),
        SandboxEvent::ProgramStopped { sig: libc::SIGSTOP }
    );
    sandbox.signal(SignalMode::Process, libc::SIGCONT).unwrap();
    assert_eq!(next_event(&sandbox), SandboxEvent::ProgramContinued);

    sandbox.destroy().unwrap();
    let out = sandbox.wait().unwrap();
    // init was killed, and with it the program.
    assert_eq!(out.exit_code(), 128 + libc::SIGKILL);
    assert!(sandbox.wait().is_err(), "a sandbox is waited for once");

    // A second sandbox, ended by a signal the embedder sends by delivery mode; the
    // embedder's own signal handling is untouched (no mask change in this thread).
    let before = nix::sys::signal::SigSet::thread_get_mask().unwrap();
    let spec = SandboxSpec::new(vec!["sh".into(), "-c".into(), "sleep 100".into()]);
    let sandbox = Sandbox::start(spec).unwrap();
    // sh runs sleep (forked, or exec'd as its last command): SIGTERM to every process
    // of the sandbox now reaches the program's, not a half-started one.
    wait_descendant(sandbox.init_pid(), &["sleep", "100"], |_| true);
    sandbox.signal(SignalMode::All, libc::SIGTERM).unwrap();
    let out = sandbox.wait().unwrap();
    assert_eq!(out.exit_code(), 128 + libc::SIGTERM);
    assert_eq!(nix::sys::signal::SigSet::thread_get_mask().unwrap(), before);
    assert!(
        out.lockstep_violations.is_empty(),
        "{:?}",
        out.lockstep_violations
    );
}
