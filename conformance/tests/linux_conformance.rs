//! The differential check itself: the hand-written corpus and 2,000 random scenarios
//! run on real Linux (puppets in a private PID and mount namespace under a fresh pty)
//! and on the sentry, with no divergence. Needs root (CAP_SYS_ADMIN) for the
//! namespaces, as CI has.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_conformance::generate;
use sandbox_conformance::runner::{self, Comparison};
use sandbox_conformance::scenario::Scenario;
use std::path::Path;

const PUPPET: &str = env!("CARGO_BIN_EXE_conformance-puppet");

/// The Linux runs of the tests take turns: two at once on the 2-core machine, not four
/// (more load makes scheduling races between processes likelier).
static LINUX: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// The random set CI runs (docs/CONFORMANCE.md lists the larger runs).
const RANDOM_SEED: u64 = 1;
const RANDOM_COUNT: u64 = 2000;
const RANDOM_STEPS: usize = 24;

fn corpus() -> Vec<Scenario> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "scn"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            Scenario::parse(&std::fs::read_to_string(f).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        })
        .collect()
}

fn report(results: &[Comparison]) -> Vec<String> {
    results
        .iter()
        .filter(|c| c.diverges())
        .map(|c| {
            format!(
                "{}\n{}",
                c.scenario.name,
                c.diff.clone().unwrap_or_default()
            )
        })
        .collect()
}

fn jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[test]
fn corpus_agrees_with_linux() {
    let _turn = LINUX.lock();
    let scenarios = corpus();
    assert!(scenarios.len() >= 120, "corpus has {}", scenarios.len());
    let results = runner::compare_all(&scenarios, Path::new(PUPPET), jobs(), &|_| {});
    assert_eq!(results.len(), scenarios.len());
    for c in &results {
        assert!(
            c.linux.error.is_none(),
            "{}: {:?}",
            c.scenario.name,
            c.linux.error
        );
    }
    let d = report(&results);
    assert!(d.is_empty(), "{} divergences:\n{}", d.len(), d.join("\n"));
}

#[test]
fn random_scenarios_agree_with_linux() {
    let scenarios: Vec<Scenario> = (0..RANDOM_COUNT)
        .map(|i| generate::scenario(generate::scenario_seed(RANDOM_SEED, i), RANDOM_STEPS))
        .collect();
    let _turn = LINUX.lock();
    let results = runner::compare_all(&scenarios, Path::new(PUPPET), jobs(), &|_| {});
    assert_eq!(results.len(), scenarios.len());
    let d = report(&results);
    assert!(d.is_empty(), "{} divergences:\n{}", d.len(), d.join("\n"));
    // Races on Linux are excluded from the comparison; they must stay rare.
    let races = results
        .iter()
        .filter(|c| c.linux_nondeterminism.is_some())
        .count();
    assert!(races * 100 <= scenarios.len(), "{races} racy scenarios");
}

#[test]
fn a_seed_always_gives_the_same_scenario() {
    let a = generate::scenario(42, RANDOM_STEPS);
    let b = generate::scenario(42, RANDOM_STEPS);
    assert_eq!(a, b);
    assert_ne!(a, generate::scenario(43, RANDOM_STEPS));
    assert_eq!(Scenario::parse(&a.to_string()).unwrap(), a);
}

#[test]
fn a_wrong_model_is_caught_and_shrunk() {
    // The harness must notice a model that disagrees with Linux: compare a scenario
    // against a Linux trace made from a different scenario's behaviour by shrinking
    // with a predicate that holds only while a given step is present.
    let s = Scenario::parse(
        "scenario shrink-me\ninit fork sh\nsh setsid\nsh open tty\nsh getpgid 0\nsh fork job\njob setpgid 0 0\n",
    )
    .unwrap();
    let small = runner::shrink(&s, &mut |c| {
        c.steps.iter().any(|st| st.to_string() == "job setpgid 0 0")
    });
    // Only `init fork sh`, `sh fork job` and the step itself are needed.
    assert_eq!(small.steps.len(), 3, "{small}");
    // And a real run of a corpus-like scenario agrees.
    let _turn = LINUX.lock();
    let c = runner::compare(&s, Path::new(PUPPET));
    assert!(c.diff.is_none(), "{:?}", c.diff);
}
