//! Processes executed into a running sandbox through the library.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_loader::{ExecEvent, ExecSpec, ExecTerminal, Sandbox, SandboxSpec};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::time::Duration;

fn pipe() -> (std::fs::File, OwnedFd) {
    let (r, w) = nix::unistd::pipe().unwrap();
    (std::fs::File::from(r), w)
}

fn null() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

#[test]
fn exec_with_stdio_runs_inside_and_is_waited_for_once() {
    if !sandbox_tests::require_root() {
        return;
    }
    let mut spec = SandboxSpec::new(vec!["sleep".into(), "100".into()]);
    spec.hostname = Some("inside".into());
    let sandbox = Sandbox::start(spec).unwrap();
    let program = sandbox.program_pid().unwrap();
    assert_eq!(program, 2);
    let (mut out, w) = pipe();
    let err = w.try_clone().unwrap();
    let mut e = ExecSpec::new(
        vec![
            "sh".into(),
            "-c".into(),
            "echo $(hostname) $$ $PPID $(ps -o sid= -p $$); exit 7".into(),
        ],
        ExecTerminal::Stdio([null(), w, err]),
    );
    e.cwd = Some("/tmp".into());
    let h = sandbox.exec(e).unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    let words: Vec<&str> = text.split_whitespace().collect();
    // In the sandbox's UTS and PID namespaces, PPID 0 (its parent is outside), its
    // own session.
    assert_eq!(
        words,
        ["inside", &h.pid().to_string(), "0", &h.pid().to_string()]
    );
    assert_eq!(sandbox.wait_pid(h.pid()).unwrap(), 7 << 8);
    assert!(matches!(
        sandbox.wait_pid(h.pid()),
        Err(sandbox_loader::LoaderError::PidAlreadyWaited(_))
    ));
    assert_eq!(
        h.events().recv_timeout(Duration::from_secs(10)).unwrap(),
        ExecEvent::Exited {
            wait_status: 7 << 8
        }
    );
    // A program that does not exist: 127 as for run.
    let missing = sandbox.exec(ExecSpec::new(
        vec!["no-such-program-here".into()],
        ExecTerminal::Stdio([null(), null(), null()]),
    ));
    match missing {
        Err(e) => assert_eq!(e.exit_code(), 127, "{e}"),
        Ok(_) => panic!("a missing program was executed"),
    }
    // The first program is unaffected.
    let ps = sandbox.processes().unwrap();
    assert!(
        ps.iter().any(|p| p.pid == 2 && p.command == "sleep 100"),
        "{ps:?}"
    );
    sandbox.destroy().unwrap();
    let out = sandbox.wait().unwrap();
    assert!(
        out.lockstep_violations.is_empty(),
        "{:?}",
        out.lockstep_violations
    );
}
