//! Running scenarios on both executors, in parallel, and shrinking divergences.

use crate::scenario::Scenario;
use crate::trace::{self, Trace};
use crate::{linux_exec, sentry_exec};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// One scenario's run on both executors.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub scenario: Scenario,
    pub linux: Trace,
    pub sentry: Trace,
    /// The readable diff when the traces differ.
    pub diff: Option<String>,
    /// When the traces differ: how two Linux runs of the scenario differed from each
    /// other, if they did (the scenario races on Linux; not counted as a divergence).
    pub linux_nondeterminism: Option<String>,
}

/// Linux runs of a diverging scenario made to check that Linux agrees with itself.
pub const LINUX_RERUNS: usize = 4;

/// Runs `s` on Linux and on the sentry and compares the traces.
pub fn compare(s: &Scenario, puppet: &Path) -> Comparison {
    let sentry = sentry_exec::run(s);
    let linux = linux_exec::run(s, puppet);
    let diff = trace::diff("linux", &linux, "sentry", &sentry);
    let mut linux_nondeterminism = None;
    if diff.is_some() {
        for _ in 0..LINUX_RERUNS {
            let again = linux_exec::run(s, puppet);
            if let Some(d) = trace::diff("linux", &linux, "linux again", &again) {
                linux_nondeterminism = Some(d);
                break;
            }
        }
    }
    Comparison {
        scenario: s.clone(),
        linux,
        sentry,
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
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Comparison>>> = Mutex::new(vec![None; scenarios.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(s) = scenarios.get(i) else {
                    break;
                };
                let c = compare(s, puppet);
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

impl Comparison {
    /// A divergence: the traces differ and Linux agreed with itself.
    pub fn diverges(&self) -> bool {
        self.diff.is_some() && self.linux_nondeterminism.is_none()
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
