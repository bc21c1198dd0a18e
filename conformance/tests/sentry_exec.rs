//! The scenario format round-trips and the sentry executor plays scenarios as Linux
//! would (the expected lines here were checked against Linux by hand).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_conformance::scenario::Scenario;
use sandbox_conformance::sentry_exec;

#[test]
fn scenario_text_round_trips() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/bg-read-stops.scn"
    ))
    .unwrap();
    let s = Scenario::parse(&text).unwrap();
    assert_eq!(Scenario::parse(&s.to_string()).unwrap(), s);
}

#[test]
fn parse_errors_name_the_line() {
    let e = Scenario::parse("scenario x\nnobody setsid\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(
        Scenario::parse("init fork a\n").is_err(),
        "missing scenario line"
    );
    assert!(Scenario::parse("scenario x\ninit kill 1 SIGNOPE\n").is_err());
}

#[test]
fn background_read_stops_then_reads_after_fg() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/bg-read-stops.scn"
    ))
    .unwrap();
    let lines = sentry_exec::run(&Scenario::parse(&text).unwrap()).lines();
    let has = |l: &str| lines.iter().any(|x| x == l);
    assert!(has("  state: init=running sh=running job=stopped"));
    assert!(has("  result: job stopped SIGTTIN"));
    assert!(has("  done job: read 0 16 => \"hello\\n\""));
    // The exit wakes the shell's wait4, which returns the child (reaped) before the
    // SIGCHLD handler runs (as Linux does; checked with the Linux executor).
    assert!(has("  done sh: wait4 job untraced => job exited 3"));
    assert!(has("  state: init=running sh=running job=gone"));
}
