//! Running scenarios on two executors, in parallel, and shrinking divergences.
//!
//! [`Executor::Model`] compares the sentry model with Linux (the `init` actor PID 1 of
//! its namespace); [`Executor::Sandbox`] compares the puppets inside `sandbox run`
//! with Linux in the same process-tree shape ([`linux_exec::Target::LinuxReaper`]).

use crate::linux_exec::{SandboxTty, Target};
use crate::scenario::Scenario;
use crate::trace::{self, Trace};
use crate::{linux_exec, sentry_exec};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What a scenario's Linux run is compared with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Executor {
    /// The sentry model.
    Model,
    /// The same puppets inside `sandbox run` (the binary at `sandbox`).
    Sandbox { sandbox: PathBuf, tty: SandboxTty },
}

impl Executor {
    /// The name traces and reports give it.
    pub fn name(&self) -> &'static str {
        match self {
            Executor::Model => "sentry",
            Executor::Sandbox {
                tty: SandboxTty::Borrowed,
                ..
            } => "sandbox-borrowed",
            Executor::Sandbox {
                tty: SandboxTty::Owned,
                ..
            } => "sandbox-pty",
        }
    }

    /// The Linux shape this executor is compared with.
    fn reference(&self) -> Target {
        match self {
            Executor::Model => Target::Linux,
            Executor::Sandbox { tty, .. } => Target::LinuxReaper {
                explicit_ctty: *tty == SandboxTty::Borrowed,
            },
        }
    }

    /// Whether this is the borrowed-terminal sandbox executor.
    pub fn is_borrowed(&self) -> bool {
        matches!(
            self,
            Executor::Sandbox {
                tty: SandboxTty::Borrowed,
                ..
            }
        )
    }

    fn play(&self, s: &Scenario, puppet: &Path) -> Trace {
        match self {
            Executor::Model => sentry_exec::run(s),
            Executor::Sandbox { sandbox, tty } => linux_exec::run_on(
                s,
                puppet,
                &Target::Sandbox {
                    sandbox: sandbox.clone(),
                    tty: *tty,
                },
            ),
        }
    }
}

/// One scenario's run on both executors.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub scenario: Scenario,
    pub linux: Trace,
    /// The compared executor's trace (the model's, or the sandbox's).
    pub sentry: Trace,
    /// Which executor `sentry` comes from.
    pub executor_name: &'static str,
    /// The readable diff when the traces differ.
    pub diff: Option<String>,
    /// When the traces differ: how two Linux runs of the scenario differed from each
    /// other, if they did, or the step where the traces first differ if the model
    /// finds that step's outcome to be scheduling and each side took one of its two
    /// ways ([`scheduling_dependent_step`]) (the scenario races on Linux; not counted
    /// as a divergence).
    pub linux_nondeterminism: Option<String>,
    /// Sandbox executors, when the traces differ and Linux agreed with itself: how the
    /// first sandbox run differed from Linux, if a later sandbox run agreed with Linux
    /// (the sandbox's run raced; not counted as a divergence, reported).
    pub candidate_nondeterminism: Option<String>,
}

/// Sandbox runs of a diverging scenario made to check that the sandbox agrees with
/// itself (the model is deterministic and is not rerun).
pub const SANDBOX_RERUNS: usize = 2;

/// Linux runs of a diverging scenario made to check that Linux agrees with itself.
pub const LINUX_RERUNS: usize = 4;

/// Runs `s` on Linux and on the sentry and compares the traces.
pub fn compare(s: &Scenario, puppet: &Path) -> Comparison {
    compare_with(s, puppet, &Executor::Model)
}

/// Runs `s` on Linux and on `executor` and compares the traces.
pub fn compare_with(s: &Scenario, puppet: &Path, executor: &Executor) -> Comparison {
    let reference = executor.reference();
    let sandboxed = *executor != Executor::Model;
    // In the sandbox shape the `init` actor is not PID 1: a signal the model's init
    // would be immune to can kill it, and who reaps its orphans then, at which pace
    // (the namespace's PID 1, or the sandbox's init), is no rule: the traces are
    // compared up to the step where the Linux run's `init` died.
    let cut = |linux: &Trace, other: &Trace| -> (Trace, Trace) {
        if !sandboxed {
            return (linux.clone(), other.clone());
        }
        let end = linux
            .steps
            .iter()
            .position(|st| {
                st.states.iter().any(|(a, state)| {
                    a == "init"
                        && matches!(state, trace::ActorState::Zombie | trace::ActorState::Gone)
                })
            })
            .unwrap_or(usize::MAX);
        let keep = |t: &Trace| {
            let mut t = t.clone();
            t.steps.truncate(end);
            t
        };
        (keep(linux), keep(other))
    };
    let (linux, sentry) = cut(
        &linux_exec::run_on(s, puppet, &reference),
        &executor.play(s, puppet),
    );
    let diff = trace::diff("linux", &linux, executor.name(), &sentry);
    // A documented limit is no race: rerunning it would only take time.
    let limit = diff
        .as_deref()
        .is_some_and(|d| executor.is_borrowed() && first_difference_is_an_open_limit(d));
    let mut linux_nondeterminism = None;
    if diff.is_some() && !limit {
        let model = match executor {
            Executor::Model => None,
            _ => Some(sentry_exec::run(s)),
        };
        linux_nondeterminism =
            scheduling_dependent_step(&linux, &sentry, model.as_ref().unwrap_or(&sentry));
    }
    if diff.is_some() && !limit && linux_nondeterminism.is_none() {
        for _ in 0..LINUX_RERUNS {
            let (again, _) = cut(
                &linux_exec::run_on(s, puppet, &reference),
                &Trace::default(),
            );
            let (first, _) = cut(&linux, &Trace::default());
            if let Some(d) = trace::diff("linux", &first, "linux again", &again) {
                linux_nondeterminism = Some(d);
                break;
            }
        }
    }
    let mut candidate_nondeterminism = None;
    if diff.is_some() && linux_nondeterminism.is_none() && sandboxed && !limit {
        for _ in 0..SANDBOX_RERUNS {
            let (_, again) = cut(&linux, &executor.play(s, puppet));
            if trace::diff("linux", &linux, executor.name(), &again).is_none() {
                candidate_nondeterminism = diff.clone();
                break;
            }
        }
    }
    Comparison {
        scenario: s.clone(),
        linux,
        sentry,
        executor_name: executor.name(),
        candidate_nondeterminism,
        diff,
        linux_nondeterminism,
    }
}

/// Compares every scenario with `jobs` runs at a time; `report` sees each comparison
/// as it finishes (in any order). Returns the comparisons in input order.
pub fn compare_all(
    scenarios: &[Scenario],
    puppet: &Path,
    jobs: usize,
    report: &(dyn Fn(&Comparison) + Sync),
) -> Vec<Comparison> {
    compare_all_with(scenarios, puppet, &Executor::Model, jobs, report)
}

/// [`compare_all`] against `executor`.
pub fn compare_all_with(
    scenarios: &[Scenario],
    puppet: &Path,
    executor: &Executor,
    jobs: usize,
    report: &(dyn Fn(&Comparison) + Sync),
) -> Vec<Comparison> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Comparison>>> = Mutex::new(vec![None; scenarios.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(s) = scenarios.get(i) else {
                    break;
                };
                let c = compare_with(s, puppet, executor);
                report(&c);
                if let Ok(mut r) = results.lock() {
                    r[i] = Some(c);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

/// Where `linux` and `other` first differ, if `model` (the sentry's trace of the same
/// scenario) found that step's outcome to depend on the order in which the woken
/// processes run (a signal's targets acting before or after its sender, which on
/// Linux is whether a CPU is free for them at once) and each side's step is one of the
/// model's two outcomes: that step, described. The traces are not compared after it:
/// the two sides then go on from different states.
pub fn scheduling_dependent_step(linux: &Trace, other: &Trace, model: &Trace) -> Option<String> {
    let i = linux
        .steps
        .iter()
        .zip(&other.steps)
        .position(|(l, o)| !l.same_outcome(o))?;
    let step = model.steps.get(i)?;
    let alternative = step.alternative.as_deref()?;
    let allowed = |r: &trace::StepRecord| r.same_outcome(step) || r.same_outcome(alternative);
    (allowed(&linux.steps[i]) && allowed(&other.steps[i])).then(|| {
        format!(
            "step {}: {}: the woken processes ran in the other order ({})",
            i + 1,
            step.step,
            step.race.as_deref().unwrap_or("scheduling")
        )
    })
}

impl Comparison {
    /// A divergence: the traces differ, Linux agreed with itself and no rerun of the
    /// sandbox agreed with Linux.
    pub fn diverges(&self) -> bool {
        self.diff.is_some()
            && self.linux_nondeterminism.is_none()
            && self.candidate_nondeterminism.is_none()
    }

    /// A divergence of the borrowed-terminal executor whose first difference is one
    /// of the documented open() limits of `sandbox run --tty` (docs/LOADER.md, "Known
    /// limits"): an `open devtty` that is ENXIO on Linux (inside, `/dev/tty` is a bind
    /// of the borrowed terminal), or an `open tty` that is ENOENT on Linux (after a
    /// hangup the devpts node is gone; the bind reopens with EIO). The traces are not
    /// compared after that step.
    pub fn stops_at_a_borrowed_open_limit(&self) -> bool {
        self.executor_name == "sandbox-borrowed"
            && self
                .diff
                .as_deref()
                .is_some_and(first_difference_is_an_open_limit)
    }
}

/// Whether the first differing step of a [`trace::diff`] is an `open devtty` that is
/// ENXIO on Linux or an `open tty` that is ENOENT on Linux.
fn first_difference_is_an_open_limit(diff: &str) -> bool {
    let step = diff.lines().find(|l| l.trim_start().starts_with("step "));
    let linux = diff.lines().find(|l| l.starts_with("  - "));
    match (step, linux) {
        (Some(step), Some(linux)) => {
            (step.contains(" open devtty") && linux.contains("result: ENXIO"))
                || (step.contains(" open tty") && linux.contains("result: ENOENT"))
        }
        _ => false,
    }
}

/// Reduces `s` to a smaller scenario for which `diverges` still holds: removes runs of
/// steps (8, 4, 2, then single steps) while the result still parses (every actor is
/// created before use) and still diverges, until nothing more can go.
pub fn shrink(s: &Scenario, diverges: &mut dyn FnMut(&Scenario) -> bool) -> Scenario {
    let mut best = s.clone();
    loop {
        let mut changed = false;
        for size in [8usize, 4, 2, 1] {
            let mut i = 0;
            while i < best.steps.len() {
                let mut cand = best.clone();
                let end = (i + size).min(cand.steps.len());
                cand.steps.drain(i..end);
                let valid = !cand.steps.is_empty() && Scenario::parse(&cand.to_string()).is_ok();
                if valid && diverges(&cand) {
                    best = cand;
                    changed = true;
                } else {
                    i += 1;
                }
            }
        }
        if !changed {
            return best;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn corpus_scenario(name: &str) -> Scenario {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(format!("{name}.scn"));
        Scenario::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// The sender-acts-first scenarios' last step: the model plays it both ways, and
    /// what Linux showed when the woken targets ran first (seen in full test runs,
    /// e.g. `fg-bg-sender-acts-first-tcsetpgrp` on CI: only `sh`'s SIGCHLD handler ran)
    /// is the model's other way, so it is a race, not a divergence; any other outcome
    /// of that step, or a difference at a step the model plays one way only, is still
    /// a divergence.
    #[test]
    fn a_step_linux_plays_the_other_way_is_a_race_and_nothing_else_is() {
        for (name, linux_lines) in [
            (
                "fg-bg-sender-acts-first-tcsetpgrp",
                vec![
                    "step 1: p2 tcsetpgrp 0 pgid:p2",
                    "  result: pending",
                    "  signal sh: SIGCHLD",
                    "  state: init=running sh=running p1=stopped p2=stopped",
                ],
            ),
            (
                "sig-sender-acts-first-kill",
                vec![
                    "step 1: p2 kill 0 SIGTSTP",
                    "  result: pending",
                    "  state: init=running sh=running p1=stopped p2=stopped",
                ],
            ),
        ] {
            let model = sentry_exec::run(&corpus_scenario(name));
            let last = model.steps.len() - 1;
            let other_way = *model.steps[last].alternative.clone().unwrap();
            assert_eq!(other_way.lines(), linux_lines, "{name}");
            let mut linux = model.clone();
            linux.steps[last] = other_way.clone();
            assert!(
                scheduling_dependent_step(&linux, &model, &model).is_some(),
                "{name}"
            );
            // A sandbox that took the other way while Linux did not: the same.
            assert!(
                scheduling_dependent_step(&model, &linux, &model).is_some(),
                "{name}"
            );
            // A third outcome is a divergence.
            let mut third = other_way;
            third.states.pop();
            linux.steps[last] = third;
            assert!(
                scheduling_dependent_step(&linux, &model, &model).is_none(),
                "{name}"
            );
            // So is a difference at a step the model plays one way only.
            let mut linux = model.clone();
            linux.steps[0].result = "EPERM".into();
            assert!(
                scheduling_dependent_step(&linux, &model, &model).is_none(),
                "{name}"
            );
        }
    }
}
