//! The sandbox executor: the corpus and a bounded random batch played by the puppets
//! inside `sandbox run --tty=pty` and `sandbox run --tty`, compared with Linux in the
//! same process-tree shape, with no divergence and no lockstep violation (a violation
//! the loader reports makes the sandbox's trace end in an error line, which differs).
//! The only divergences allowed are the documented limits of the borrowed terminal:
//! open() of it (`/dev/tty` opens it without a controlling terminal, a hung-up one
//! reopens with EIO), and only in the scenarios listed in [`BORROWED_OPEN_LIMITS`].
//!
//! Needs root (namespaces, as the Linux executor) and the `sandbox` binary of this
//! workspace built from the current sources (`cargo test --workspace` builds it; with
//! `-p sandbox-conformance` alone, `cargo build --bin sandbox` first): a missing or
//! stale binary fails the test rather than skipping it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_conformance::generate;
use sandbox_conformance::linux_exec::SandboxTty;
use sandbox_conformance::runner::{self, Comparison, Executor};
use sandbox_conformance::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const PUPPET: &str = env!("CARGO_BIN_EXE_conformance-puppet");

/// The runs of this binary's tests take turns (two at once on the 2-core machine).
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
const RANDOM_SEED: u64 = 1;
/// Per terminal mode: about 45 s each on the 2-core machine (debug build).
const RANDOM_COUNT: u64 = 150;
const RANDOM_STEPS: usize = 24;
const JOBS: usize = 2;

/// Corpus scenarios that open the borrowed terminal where Linux would refuse:
/// `/dev/tty` without a controlling terminal (ENXIO on Linux; inside `--tty` it is a
/// bind of the borrowed terminal) or the terminal after a hangup (ENOENT on Linux, the
/// devpts node being gone; EIO through the bind). docs/LOADER.md, "Known limits".
const BORROWED_OPEN_LIMITS: &[&str] = &[
    "sess-setsid-new-session-has-no-terminal",
    "tty-devtty-enxio-without-controlling-terminal",
    "tty-existing-members-do-not-get-terminal",
    "tty-hangup-reopen-fails",
    "tty-hangup-signals-leader-and-kills-files",
    "tty-leader-exit-sighup-to-foreground",
    "tty-open-by-non-leader-does-not-acquire",
    "tty-open-noctty-does-not-acquire",
    "tty-open-of-other-sessions-terminal-not-acquired",
    "tty-open-wronly-does-not-acquire",
    "tty-tiocnotty-by-leader-hangs-up-foreground",
    "tty-tiocnotty-by-member-detaches-only-itself",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The newest modification time of the `.rs` files under `dir`.
fn newest_source(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let t = if p.is_dir() {
            newest_source(&p)
        } else if p.extension().is_some_and(|x| x == "rs") {
            e.metadata().unwrap().modified().unwrap()
        } else {
            continue;
        };
        newest = newest.max(t);
    }
    newest
}

/// The workspace's `sandbox` binary, built no earlier than its sources changed.
fn sandbox() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let bin = target.join(profile).join("sandbox");
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: build it (cargo build --bin sandbox, or run cargo test --workspace)",
                bin.display()
            )
        });
    let sources = ["cli/src", "loader/src", "sentry/src"]
        .iter()
        .map(|d| newest_source(&workspace().join(d)))
        .max()
        .unwrap();
    assert!(
        built >= sources,
        "{} is older than the loader's sources: rebuild it (cargo build --bin sandbox)",
        bin.display()
    );
    bin
}

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
        .map(|f| Scenario::parse(&std::fs::read_to_string(f).unwrap()).unwrap())
        .collect()
}

fn random() -> Vec<Scenario> {
    (0..RANDOM_COUNT)
        .map(|i| generate::scenario(generate::scenario_seed(RANDOM_SEED, i), RANDOM_STEPS))
        .collect()
}

fn run(scenarios: &[Scenario], tty: SandboxTty) -> Vec<Comparison> {
    let executor = Executor::Sandbox {
        sandbox: sandbox(),
        tty,
    };
    let _turn = TURN.lock();
    let results = runner::compare_all_with(scenarios, Path::new(PUPPET), &executor, JOBS, &|_| {});
    assert_eq!(results.len(), scenarios.len());
    for c in &results {
        assert!(
            c.linux.error.is_none(),
            "{} (linux): {:?}",
            c.scenario.name,
            c.linux.error
        );
    }
    results
}

fn report(results: &[Comparison], allowed: &dyn Fn(&Comparison) -> bool) -> Vec<String> {
    results
        .iter()
        .filter(|c| c.diverges() && !allowed(c))
        .map(|c| {
            format!(
                "{}\n{}",
                c.scenario.name,
                c.diff.clone().unwrap_or_default()
            )
        })
        .collect()
}

/// Races on Linux or in the sandbox (a rerun agreed with Linux) are not counted as
/// divergences; they must stay rare.
fn assert_races_rare(results: &[Comparison]) {
    let linux = results
        .iter()
        .filter(|c| c.linux_nondeterminism.is_some())
        .count();
    let sandbox: Vec<&str> = results
        .iter()
        .filter(|c| c.candidate_nondeterminism.is_some())
        .map(|c| c.scenario.name.as_str())
        .collect();
    assert!(
        (linux + sandbox.len()) * 20 <= results.len().max(20),
        "{linux} scenarios raced on Linux, {} in the sandbox: {sandbox:?}",
        sandbox.len()
    );
}

#[test]
fn corpus_agrees_with_linux_inside_the_sandbox_with_an_owned_pty() {
    let results = run(&corpus(), SandboxTty::Owned);
    let d = report(&results, &|_| false);
    assert!(d.is_empty(), "{} divergences:\n{}", d.len(), d.join("\n"));
    assert_races_rare(&results);
}

#[test]
fn corpus_agrees_with_linux_inside_the_sandbox_with_a_borrowed_terminal() {
    let results = run(&corpus(), SandboxTty::Borrowed);
    let d = report(&results, &|c| {
        BORROWED_OPEN_LIMITS.contains(&c.scenario.name.as_str())
            && c.stops_at_a_borrowed_open_limit()
    });
    assert!(d.is_empty(), "{} divergences:\n{}", d.len(), d.join("\n"));
    assert_races_rare(&results);
}

#[test]
fn random_scenarios_agree_with_linux_inside_the_sandbox_with_an_owned_pty() {
    let results = run(&random(), SandboxTty::Owned);
    let d = report(&results, &|_| false);
    assert!(d.is_empty(), "{} divergences:\n{}", d.len(), d.join("\n"));
    assert_races_rare(&results);
}

#[test]
fn random_scenarios_agree_with_linux_inside_the_sandbox_with_a_borrowed_terminal() {
    // The borrowed terminal's open() limits show in random scenarios as in the corpus.
    let results = run(&random(), SandboxTty::Borrowed);
    let d = report(&results, &Comparison::stops_at_a_borrowed_open_limit);
    assert!(d.is_empty(), "{} divergences:\n{}", d.len(), d.join("\n"));
    assert_races_rare(&results);
}

#[test]
fn a_parents_setpgid_after_its_childs_exec_is_eacces_inside_the_sandbox() {
    // The child is known to the loader before its exec (its puppet's control-socket
    // reads and writes are notified with --tty): the exec must still be seen, or the
    // sentry approves the move, the host refuses it and the loader reports a
    // lockstep violation (an error line in the sandbox's trace).
    let s = Scenario::parse(
        "scenario eacces\ninit fork sh\nsh setsid\nsh fork job\nsh setpgid job job\n\
         job exec\nsh setpgid job sh\nsh getpgid job\n",
    )
    .unwrap();
    let executor = Executor::Sandbox {
        sandbox: sandbox(),
        tty: SandboxTty::Borrowed,
    };
    let _turn = TURN.lock();
    let c = runner::compare_with(&s, Path::new(PUPPET), &executor);
    assert!(c.sentry.error.is_none(), "{:?}", c.sentry.error);
    assert!(c.diff.is_none(), "{:?}", c.diff);
    let step = c
        .sentry
        .steps
        .iter()
        .find(|st| st.step == "sh setpgid job sh");
    assert_eq!(step.map(|st| st.result.as_str()), Some("EACCES"));
}
