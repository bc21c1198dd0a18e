//! Traces: what one executor observed, as normalized text lines (PIDs replaced by actor
//! names), so that two executors' traces can be compared line by line.
//!
//! For each step:
//! ```text
//! step 5: job read 0 16
//!   result: pending            # value, errno name, `pending` (blocked or stopped), `noreturn`
//!   done sh: wait4 job untraced => job stopped SIGTTIN   # an earlier pending call returned
//!   signal sh: SIGCHLD         # a handler ran (per actor, in order)
//!   output: hello\n            # bytes the terminal output during the step
//!   state: init=running sh=blocked job=stopped
//! ```
//! Within a step, lines of different actors are sorted by actor (their relative order
//! is scheduling, not semantics); each actor's own lines keep their order.

use sandbox_sentry::{SiCode, Signal};
use std::fmt;

/// A signal number as traces show it: its name, or the number if it has none.
pub fn signal_name(n: i32) -> String {
    Signal::new(n)
        .map(|s| s.name())
        .unwrap_or_else(|_| n.to_string())
}

/// A wait report as traces show it: `WHO exited CODE`, `WHO killed SIG`,
/// `WHO dumped SIG`, `WHO stopped SIG` or `WHO continued`.
pub fn wait_line(who: &str, code: SiCode, status: i32) -> String {
    match code {
        SiCode::ChildExited => format!("{who} exited {status}"),
        SiCode::ChildKilled => format!("{who} killed {}", signal_name(status)),
        SiCode::ChildDumped => format!("{who} dumped {}", signal_name(status)),
        SiCode::ChildStopped => format!("{who} stopped {}", signal_name(status)),
        SiCode::ChildContinued => format!("{who} continued"),
        other => format!("{who} {other:?}"),
    }
}

/// State of an actor after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ActorState {
    /// Ready for its next operation.
    Running,
    /// In a system call that has not returned.
    Blocked,
    /// Its process is stopped.
    Stopped,
    /// Dead, not reaped.
    Zombie,
    /// Reaped (or an exited thread).
    Gone,
}

impl fmt::Display for ActorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActorState::Running => "running",
            ActorState::Blocked => "blocked",
            ActorState::Stopped => "stopped",
            ActorState::Zombie => "zombie",
            ActorState::Gone => "gone",
        })
    }
}

/// What happened during one step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepRecord {
    pub step: String,
    pub result: String,
    /// (actor, line) pairs; sorted by actor when rendered.
    pub done: Vec<(String, String)>,
    pub signals: Vec<(String, String)>,
    pub output: String,
    pub states: Vec<(String, ActorState)>,
    /// Set by the sentry executor when the step's outcome on Linux depends on
    /// scheduling (not part of the trace's lines; the generator leaves such steps out).
    pub race: Option<String>,
    /// With a `race` found by playing the step with the woken processes acting in the
    /// other order: the step as it went that way (what Linux does when the targets of
    /// a signal run before its sender, e.g. on an idle CPU).
    pub alternative: Option<Box<StepRecord>>,
}

impl StepRecord {
    /// The step's lines as [`Trace::lines`] shows them.
    pub fn lines(&self) -> Vec<String> {
        let t = Trace {
            steps: vec![self.clone()],
            error: None,
        };
        t.lines()
    }

    /// Whether two records show the same step alike (their lines; the race notes of
    /// the model are no part of them).
    pub fn same_outcome(&self, other: &StepRecord) -> bool {
        self.lines() == other.lines()
    }

    /// Removes what is a race on Linux rather than semantics: when an actor is dead at
    /// the end of the step, whether its call's reply got out before it died depends on
    /// scheduling (it may die from another process's exit, e.g. a session leader's
    /// SIGHUP, on the other CPU). So the step's result is `noreturn` and a dead actor's
    /// `done` lines are dropped, in every executor; and an actor's repeated handler
    /// runs for one signal within the step are shown once.
    pub fn normalize(&mut self) {
        let dead = |name: &str| {
            self.states
                .iter()
                .any(|(n, st)| n == name && matches!(st, ActorState::Zombie | ActorState::Gone))
        };
        let actor = self.step.split_whitespace().next().unwrap_or("");
        let terminal = matches!(actor, "type" | "winsize" | "hangup");
        if !terminal && dead(actor) && !self.result.starts_with("skipped") {
            self.result = "noreturn".into();
        }
        // How many instances of one signal coalesce while its target has not run yet
        // is scheduling too: repeated handler runs of the same signal in one actor
        // during one step are shown once.
        let mut signals: Vec<(String, String)> = Vec::new();
        for (a, sig) in &self.signals {
            if !signals.iter().any(|(b, s2)| b == a && s2 == sig) {
                signals.push((a.clone(), sig.clone()));
            }
        }
        self.signals = signals;
        let done: Vec<(String, String)> = self
            .done
            .iter()
            .filter(|(a, _)| !dead(a))
            .cloned()
            .collect();
        self.done = done;
    }
}

/// A whole run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub steps: Vec<StepRecord>,
    /// Set when the executor could not run the scenario at all (not a divergence in
    /// semantics; reported separately).
    pub error: Option<String>,
}

fn sorted(v: &[(String, String)]) -> Vec<(String, String)> {
    let mut v = v.to_vec();
    // Stable: keeps each actor's own order.
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

impl Trace {
    /// The normalized text lines.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            out.push(format!("step {}: {}", i + 1, s.step));
            out.push(format!("  result: {}", s.result));
            for (a, l) in sorted(&s.done) {
                out.push(format!("  done {a}: {l}"));
            }
            for (a, l) in sorted(&s.signals) {
                out.push(format!("  signal {a}: {l}"));
            }
            if !s.output.is_empty() {
                out.push(format!("  output: {}", s.output));
            }
            let states: Vec<String> = s.states.iter().map(|(a, st)| format!("{a}={st}")).collect();
            out.push(format!("  state: {}", states.join(" ")));
        }
        if let Some(e) = &self.error {
            out.push(format!("error: {e}"));
        }
        out
    }
}

/// The first difference between two traces, with context, or None if they agree.
pub fn diff(left_name: &str, left: &Trace, right_name: &str, right: &Trace) -> Option<String> {
    let a = left.lines();
    let b = right.lines();
    let first = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))?;
    let start = a[..first.min(a.len())]
        .iter()
        .rposition(|l| l.starts_with("step "))
        .unwrap_or(0);
    let mut s = String::new();
    for l in &a[start..first.min(a.len())] {
        s.push_str(&format!("    {l}\n"));
    }
    let end_a = (first + 6).min(a.len());
    let end_b = (first + 6).min(b.len());
    for l in a.get(first..end_a).unwrap_or(&[]) {
        s.push_str(&format!("  - {l}   [{left_name}]\n"));
    }
    for l in b.get(first..end_b).unwrap_or(&[]) {
        s.push_str(&format!("  + {l}   [{right_name}]\n"));
    }
    Some(s)
}
