//! Runs a scenario on the sentry model and records its trace.
//!
//! The model answers each system call at once; this executor plays the part of the
//! tasks' system-call loop: a call that would block is left pending and retried when
//! the kernel reports a wakeup; a call answered `ERESTARTSYS` after the kernel sent
//! the caller's group SIGTTIN/SIGTTOU is restarted once the group is continued (or
//! fails with EINTR if a handler without SA_RESTART runs first), as Linux's signal
//! return path does.

use crate::scenario::{FlowOp, IdKind, MaskHow, Op, PidArg, Scenario, Step, TermFlag};
use crate::trace::{ActorState, StepRecord, Trace};
use sandbox_sentry::termios::{ECHO, ECHOCTL, ICANON, ICRNL, ISIG, IXANY, IXON, NOFLSH, TOSTOP};
use sandbox_sentry::wait::{IdType, WaitInfo};
use sandbox_sentry::{
    Blocking, Disposition, Errno, Event, FlowAction, Kernel, OpenFlags, Pid, SetTermiosAction,
    SigmaskHow, TtyId,
};
use std::collections::BTreeMap;

/// Most restarts of one call in one step before the executor calls it a livelock
/// (Linux would spin forever: e.g. a background read with a SA_RESTART SIGTTIN handler).
const MAX_RESTARTS: u32 = 8;

/// What the race check needs from the start of a step.
struct StepStart {
    /// Actors blocked in wait4/waitid, with their process.
    waiters: Vec<(String, Pid)>,
    /// Every live process: whether it is stopped, and its parent.
    live: BTreeMap<Pid, (bool, Option<Pid>)>,
}

/// The TID of an actor whose thread is gone for good (no process has it).
const GONE_TID: Pid = i32::MAX;

#[derive(Clone, Debug)]
struct Actor {
    name: String,
    tid: Pid,
}

#[derive(Clone, Debug)]
struct Pending {
    /// The operation as the scenario wrote it (for the trace).
    op: Op,
    /// With PIDs resolved when the call was made (what a retry passes again).
    exec_op: Op,
    /// The call's group was stopped while in it: restart (or EINTR) after SIGCONT.
    restart_on_continue: bool,
    continued: bool,
    /// The call completed but its process stopped before returning to user mode: the
    /// result is seen once it continues.
    deferred: Option<String>,
}

enum Outcome {
    Done(String),
    /// Completed, but the process is stopped: returns after SIGCONT.
    Deferred(String),
    Pending,
    NoReturn,
}

#[derive(Clone)]
struct Run {
    k: Kernel,
    tty: TtyId,
    actors: Vec<Actor>,
    pending: BTreeMap<String, Pending>,
    rec: StepRecord,
    /// Pending reads that a signal interrupted during the current step.
    interrupted_reads: usize,
}

/// Runs `s` on a fresh kernel.
pub fn run(s: &Scenario) -> Trace {
    let mut k = Kernel::new();
    let tty = k.create_pty();
    k.take_events();
    let mut r = Run {
        k,
        tty,
        actors: vec![Actor {
            name: "init".into(),
            tid: Kernel::INIT,
        }],
        pending: BTreeMap::new(),
        rec: StepRecord::default(),
        interrupted_reads: 0,
    };
    let mut trace = Trace::default();
    for step in &s.steps {
        // The same step with the targets of each signal sent to several processes
        // acting and dying in the opposite order: if anything differs, the outcome on
        // Linux is scheduling.
        let mut alt = r.clone();
        alt.k.reverse_batch_order(true);
        let mut rec = r.play(step);
        let alt_rec = alt.play(step);
        if rec.race.is_none() && (rec.lines() != alt_rec.lines() || r.digest() != alt.digest()) {
            rec.race = Some("the outcome depends on the order in which woken processes run".into());
            if !rec.same_outcome(&alt_rec) {
                rec.alternative = Some(Box::new(alt_rec));
            }
        }
        trace.steps.push(rec);
    }
    trace
}

fn errno_text(e: Errno) -> String {
    format!("{e}")
}

impl Run {
    /// Performs one step and records it.
    fn play(&mut self, step: &Step) -> StepRecord {
        self.rec = StepRecord {
            step: step.to_string(),
            ..StepRecord::default()
        };
        let waiters = self.blocked_waiters();
        let readers = self.pending_reads();
        self.interrupted_reads = 0;
        self.rec.result = self.step(step);
        self.process_events();
        self.rec.race = self.waiter_race(&waiters);
        if self.rec.race.is_none() && readers >= 2 && self.interrupted_reads > 0 {
            // n_tty_read holds the terminal's read lock while it sleeps; an interrupted
            // reader drops it, and whether it takes it back before the next reader
            // (woken by the unlock) is scheduling.
            self.rec.race = Some("a signal interrupted one of several waiting readers".into());
        }
        if let Ok(out) = self.k.master_read(self.tty) {
            self.rec.output = crate::scenario::encode_text(&out);
        }
        self.rec.states = self.states();
        self.rec.normalize();
        std::mem::take(&mut self.rec)
    }

    /// What later steps could observe of the kernel: each process's state, exit
    /// status, parent, groups, stop and continue reports, pending signals, and the
    /// order of its children (which waits follow).
    fn digest(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in self.k.processes() {
            let Some(g) = self.k.thread_group(p) else {
                continue;
            };
            let children: Vec<Pid> = g.children.values().copied().collect();
            let mut pending = g.shared_pending.set();
            let mut frames = Vec::new();
            for t in &g.threads {
                if let Some(task) = self.k.task(*t) {
                    pending = pending.union(task.pending.set());
                    frames.extend(task.frame.map(|f| f.signo));
                }
            }
            out.push(format!(
                "{p}: zombie {:?} exit {:?} parent {:?} pgid {} sid {} stopped {} report {:?} \
                 continued {} pending {:?} frames {frames:?} children {children:?}",
                g.zombie,
                g.group_exit,
                g.parent,
                g.pgid,
                g.sid,
                g.stopped,
                g.stop_report,
                g.continued_report,
                pending,
            ));
        }
        out
    }

    fn actor(&self, name: &str) -> Option<&Actor> {
        self.actors.iter().find(|a| a.name == name)
    }

    fn actor_of_tid(&self, tid: Pid) -> Option<String> {
        self.actors
            .iter()
            .find(|a| a.tid == tid)
            .map(|a| a.name.clone())
    }

    /// A PID as a trace shows it: the actor with that PID, else the number.
    fn pid_text(&self, pid: Pid) -> String {
        if pid <= 0 {
            return pid.to_string();
        }
        self.actor_of_tid(pid).unwrap_or_else(|| pid.to_string())
    }

    fn resolve(&self, a: &PidArg) -> Pid {
        let pid_of = |n: &str| self.actor(n).map(|a| a.tid).unwrap_or(i32::MAX);
        let pgid_of = |n: &str| {
            self.actor(n)
                .and_then(|a| self.k.task(a.tid))
                .and_then(|t| self.k.thread_group(t.tgid))
                .map(|g| g.pgid)
                .unwrap_or(i32::MAX)
        };
        match a {
            PidArg::Num(n) => *n,
            PidArg::Actor(n) => pid_of(n),
            PidArg::NegActor(n) => -pid_of(n),
            PidArg::PgidOf(n) => pgid_of(n),
            PidArg::NegPgidOf(n) => -pgid_of(n),
        }
    }

    fn state(&self, a: &Actor) -> ActorState {
        let Some(t) = self.k.task(a.tid) else {
            return ActorState::Gone;
        };
        let Some(g) = self.k.thread_group(t.tgid) else {
            return ActorState::Gone;
        };
        if g.is_zombie() {
            return ActorState::Zombie;
        }
        if t.has_exited() {
            return ActorState::Gone;
        }
        if g.stopped {
            return ActorState::Stopped;
        }
        if self.pending.contains_key(&a.name) {
            return ActorState::Blocked;
        }
        ActorState::Running
    }

    fn states(&self) -> Vec<(String, ActorState)> {
        self.actors
            .iter()
            .map(|a| (a.name.clone(), self.state(a)))
            .collect()
    }

    fn step(&mut self, step: &Step) -> String {
        match step {
            Step::Type(bytes) => self
                .k
                .master_write(self.tty, bytes)
                .map_or_else(errno_text, |_| "ok".into()),
            Step::Winsize { rows, cols } => self
                .k
                .master_set_winsize(
                    self.tty,
                    sandbox_sentry::Winsize {
                        rows: *rows,
                        cols: *cols,
                        xpixel: 0,
                        ypixel: 0,
                    },
                )
                .map_or_else(errno_text, |_| "ok".into()),
            Step::Hangup => self
                .k
                .master_close(self.tty)
                .map_or_else(errno_text, |_| "ok".into()),
            Step::Actor { actor, op } => {
                let Some(a) = self.actor(actor).cloned() else {
                    return "skipped (no such actor)".into();
                };
                let st = self.state(&a);
                if st != ActorState::Running {
                    return format!("skipped (actor {st})");
                }
                let exec_op = op.map_pids(|p| PidArg::Num(self.resolve(p)));
                let out = self.call(&a, &exec_op, 0);
                match self.after_call(&a, out) {
                    Outcome::Done(s) => s,
                    Outcome::NoReturn => "noreturn".into(),
                    out @ (Outcome::Pending | Outcome::Deferred(_)) => {
                        let deferred = match out {
                            Outcome::Deferred(s) => Some(s),
                            _ => None,
                        };
                        self.pending.insert(
                            a.name.clone(),
                            Pending {
                                op: op.clone(),
                                exec_op,
                                restart_on_continue: false,
                                continued: false,
                                deferred,
                            },
                        );
                        "pending".into()
                    }
                }
            }
        }
    }

    /// Actors blocked in wait4/waitid, and every live process (and whether it is
    /// stopped), at the start of a step.
    fn blocked_waiters(&self) -> StepStart {
        let mut waiters = Vec::new();
        for (name, p) in &self.pending {
            if p.deferred.is_some() || !matches!(p.op, Op::Wait4 { .. } | Op::Waitid { .. }) {
                continue;
            }
            if let Some(t) = self.actor(name).and_then(|a| self.k.task(a.tid)) {
                waiters.push((name.clone(), t.tgid));
            }
        }
        let live = self
            .k
            .processes()
            .into_iter()
            .filter_map(|p| self.k.thread_group(p))
            .filter(|g| !g.is_zombie())
            .map(|g| (g.tgid, (g.stopped, g.parent)))
            .collect();
        StepStart { waiters, live }
    }

    /// Reads pending (blocked, not stopped) at the start of a step.
    fn pending_reads(&self) -> usize {
        self.pending
            .values()
            .filter(|p| p.deferred.is_none() && matches!(p.op, Op::Read { .. }))
            .count()
    }

    /// Whether the step's outcome on Linux depends on which woken process ran first:
    /// - a process blocked in a wait died while a child of it died or stopped (the
    ///   woken waiter rescans its children before it acts on its fatal signal: it
    ///   reaps the child first or not);
    /// - a blocked wait returned while two or more children changed state (it returns
    ///   the first to change, which is scheduling).
    ///
    /// Children are the waiter's at the start of the step or at its end (a child that
    /// was reparented to it during the step counts).
    fn waiter_race(&self, start: &StepStart) -> Option<String> {
        let dead = |p: Pid| self.k.thread_group(p).is_none_or(|g| g.is_zombie());
        let changed = |p: Pid, was_stopped: bool| {
            dead(p)
                || self
                    .k
                    .thread_group(p)
                    .is_some_and(|g| g.stopped != was_stopped)
        };
        for (actor, tgid) in &start.waiters {
            let changed: Vec<Pid> = start
                .live
                .iter()
                .filter(|&(&c, &(was_stopped, parent))| {
                    let child_now = self
                        .k
                        .thread_group(c)
                        .is_some_and(|g| g.parent == Some(*tgid));
                    (child_now || parent == Some(*tgid)) && changed(c, was_stopped)
                })
                .map(|(&c, _)| c)
                .collect();
            if dead(*tgid) && !changed.is_empty() {
                return Some(format!(
                    "{actor} died blocked in a wait while its child {} changed state",
                    self.pid_text(changed[0])
                ));
            }
            let returned = self.pending.get(actor).is_none_or(|p| p.deferred.is_some());
            if returned && changed.len() >= 2 {
                return Some(format!(
                    "{actor}'s wait returned while {} of its children changed state",
                    changed.len()
                ));
            }
            // A stopped process continued and died in the step (SIGHUP and SIGCONT to
            // an orphaned stopped group): it reports its continue to its parent, which
            // may be the waiter by then, on its own way to dying, so whether the woken
            // waiter sees the continue before the exit completes (or the child is
            // reaped) is scheduling.
            if let Some((&c, _)) = start
                .live
                .iter()
                .find(|&(&c, &(was_stopped, _))| was_stopped && dead(c))
            {
                return Some(format!(
                    "{actor} was blocked in a wait while {} continued and died",
                    self.pid_text(c)
                ));
            }
        }
        None
    }

    fn wait_text(&self, w: Option<WaitInfo>) -> String {
        let Some(w) = w else {
            return "none".into();
        };
        crate::trace::wait_line(&self.pid_text(w.pid), w.code, w.status)
    }

    /// A call that completed returns to its caller once the caller runs: at once, after
    /// SIGCONT if it stopped, never if it died.
    fn after_call(&self, a: &Actor, out: Outcome) -> Outcome {
        let Outcome::Done(s) = out else {
            return out;
        };
        let a = self.actor(&a.name).cloned().unwrap_or_else(|| a.clone());
        match self.state(&a) {
            ActorState::Zombie | ActorState::Gone => Outcome::NoReturn,
            ActorState::Stopped => Outcome::Deferred(s),
            _ => Outcome::Done(s),
        }
    }

    /// Performs `op` for actor `a`. `restarts` counts restarts within this step.
    fn call(&mut self, a: &Actor, op: &Op, restarts: u32) -> Outcome {
        let tid = a.tid;
        let ok = |r: Result<(), Errno>| match r {
            Ok(()) => Ok("ok".to_string()),
            Err(e) => Err(e),
        };
        let result: Result<String, Errno> = match op {
            Op::Fork { child } | Op::Thread { child } => {
                let r = if matches!(op, Op::Fork { .. }) {
                    self.k.fork(tid)
                } else {
                    self.k.spawn_thread(tid)
                };
                r.map(|pid| {
                    self.actors.push(Actor {
                        name: child.clone(),
                        tid: pid,
                    });
                    child.clone()
                })
            }
            Op::Exec => {
                // The process's other threads go away; the caller takes the leader's TID.
                let tgid = self.k.task(tid).map(|t| t.tgid);
                let siblings: Vec<String> = self
                    .actors
                    .iter()
                    .filter(|x| x.name != a.name)
                    .filter(|x| self.k.task(x.tid).map(|t| t.tgid) == tgid && tgid.is_some())
                    .map(|x| x.name.clone())
                    .collect();
                self.k.execve(tid).map(|new_tid| {
                    for x in self.actors.iter_mut() {
                        if x.name == a.name {
                            x.tid = new_tid;
                        } else if siblings.contains(&x.name) {
                            x.tid = GONE_TID;
                        }
                    }
                    "ok".into()
                })
            }
            Op::Setpgid { pid, pgid } => {
                let (p, g) = (self.resolve(pid), self.resolve(pgid));
                ok(self.k.setpgid(tid, p, g))
            }
            Op::Setsid => self.k.setsid(tid).map(|s| self.pid_text(s)),
            Op::Getpgid { pid } => {
                let p = self.resolve(pid);
                self.k.getpgid(tid, p).map(|g| self.pid_text(g))
            }
            Op::Getsid { pid } => {
                let p = self.resolve(pid);
                self.k.getsid(tid, p).map(|g| self.pid_text(g))
            }
            Op::Open {
                noctty,
                nonblock,
                wronly,
            } => {
                let flags = OpenFlags {
                    read: !wronly,
                    write: true,
                    noctty: *noctty,
                    nonblock: *nonblock,
                    cloexec: false,
                };
                self.k
                    .open_tty(tid, self.tty, flags)
                    .map(|fd| fd.to_string())
            }
            Op::OpenDevTty => self
                .k
                .open_controlling_tty(tid, OpenFlags::RDWR)
                .map(|fd| fd.to_string()),
            Op::Close { fd } => ok(self.k.close(tid, *fd)),
            Op::Dup { fd } => self.k.dup(tid, *fd).map(|fd| fd.to_string()),
            Op::Tcsetpgrp { fd, pgrp } => {
                let g = self.resolve(pgrp);
                ok(self.k.tcsetpgrp(tid, *fd, g))
            }
            Op::Tcgetpgrp { fd } => self.k.tcgetpgrp(tid, *fd).map(|g| self.pid_text(g)),
            Op::Tcgetsid { fd } => self.k.tcgetsid(tid, *fd).map(|g| self.pid_text(g)),
            Op::Tiocsctty { fd, steal } => ok(self.k.ioctl_tiocsctty(tid, *fd, *steal)),
            Op::Tiocnotty { fd } => ok(self.k.ioctl_tiocnotty(tid, *fd)),
            Op::Sigaction {
                sig,
                handler,
                flags,
            } => {
                let act = sandbox_sentry::SigAction {
                    handler: *handler,
                    flags: *flags,
                    mask: sandbox_sentry::SigSet::FULL,
                };
                self.k
                    .sigaction(tid, sig.number(), Some(act))
                    .map(|_| "ok".into())
            }
            Op::Sigprocmask { how, set } => {
                let how = match how {
                    MaskHow::Block => SigmaskHow::Block,
                    MaskHow::Unblock => SigmaskHow::Unblock,
                    MaskHow::Set => SigmaskHow::SetMask,
                };
                self.k
                    .sigprocmask(tid, how, Some(*set))
                    .map(|_| "ok".into())
            }
            Op::Kill { pid, sig } => {
                let p = self.resolve(pid);
                ok(self.k.kill(tid, p, *sig))
            }
            Op::Killpg { pgrp, sig } => {
                let p = self.resolve(pgrp);
                ok(self.k.killpg(tid, p, *sig))
            }
            Op::Tgkill { tgid, tid: t, sig } => {
                let (g, t) = (self.resolve(tgid), self.resolve(t));
                ok(self.k.tgkill(tid, g, t, *sig))
            }
            Op::Read { fd, count } => match self.k.read(tid, *fd, *count) {
                Ok(Blocking::Ready(d)) => Ok(format!("\"{}\"", crate::scenario::encode_text(&d))),
                Ok(Blocking::WouldBlock(_)) => return Outcome::Pending,
                Err(e) => Err(e),
            },
            Op::Write { fd, data } => match self.k.write(tid, *fd, data) {
                Ok(Blocking::Ready(n)) => Ok(n.to_string()),
                Ok(Blocking::WouldBlock(_)) => return Outcome::Pending,
                Err(e) => Err(e),
            },
            Op::Tcflow { fd, action } => {
                let a = match action {
                    FlowOp::OutputOff => FlowAction::OutputOff,
                    FlowOp::OutputOn => FlowAction::OutputOn,
                };
                ok(self.k.tcflow(tid, *fd, a))
            }
            Op::Stty { fd, on, off } => match self.k.tcgetattr(tid, *fd) {
                Ok(mut t) => {
                    let bit = |f: &TermFlag| match f {
                        TermFlag::Icanon => (ICANON, false),
                        TermFlag::Echo => (ECHO, false),
                        TermFlag::Isig => (ISIG, false),
                        TermFlag::Tostop => (TOSTOP, false),
                        TermFlag::Noflsh => (NOFLSH, false),
                        TermFlag::Echoctl => (ECHOCTL, false),
                        TermFlag::Icrnl => (ICRNL, true),
                        TermFlag::Ixon => (IXON, true),
                        TermFlag::Ixany => (IXANY, true),
                    };
                    for f in on {
                        match bit(f) {
                            (b, false) => t.lflag |= b,
                            (b, true) => t.iflag |= b,
                        }
                    }
                    for f in off {
                        match bit(f) {
                            (b, false) => t.lflag &= !b,
                            (b, true) => t.iflag &= !b,
                        }
                    }
                    ok(self.k.tcsetattr(tid, *fd, SetTermiosAction::Now, t))
                }
                Err(e) => Err(e),
            },
            Op::Exit { code } => {
                return match self.k.exit_group(tid, *code) {
                    Ok(()) => Outcome::NoReturn,
                    Err(e) => Outcome::Done(errno_text(e)),
                }
            }
            Op::ThreadExit { code } => {
                return match self.k.exit_thread(tid, *code) {
                    Ok(()) => Outcome::NoReturn,
                    Err(e) => Outcome::Done(errno_text(e)),
                }
            }
            Op::Wait4 { pid, options } => {
                let p = self.resolve(pid);
                match self.k.wait4(tid, p, *options) {
                    Ok(Blocking::Ready(w)) => Ok(self.wait_text(w)),
                    Ok(Blocking::WouldBlock(_)) => return Outcome::Pending,
                    Err(e) => Err(e),
                }
            }
            Op::Waitid { kind, id, options } => {
                let idtype = match kind {
                    IdKind::All => IdType::All,
                    IdKind::Pid => IdType::Pid,
                    IdKind::Pgid => IdType::Pgid,
                };
                let i = self.resolve(id);
                match self.k.waitid(tid, idtype, i, *options) {
                    Ok(Blocking::Ready(w)) => Ok(self.wait_text(w)),
                    Ok(Blocking::WouldBlock(_)) => return Outcome::Pending,
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(s) => Outcome::Done(s),
            Err(Errno::ERESTARTSYS) => self.after_restartsys(a, op, restarts),
            Err(e) => Outcome::Done(errno_text(e)),
        }
    }

    /// The kernel signalled the caller's group and answered ERESTARTSYS.
    fn after_restartsys(&mut self, a: &Actor, op: &Op, restarts: u32) -> Outcome {
        if matches!(op, Op::Read { .. }) && self.pending.contains_key(&a.name) {
            self.interrupted_reads += 1;
        }
        // A handler that ran on this thread decides: EINTR, or restart with SA_RESTART.
        let handled = self.k.events().iter().rev().find_map(|e| match e {
            Event::SignalDelivered {
                tid,
                disposition: Disposition::Handler { restart },
                ..
            } if *tid == a.tid => Some(*restart),
            _ => None,
        });
        match handled {
            Some(false) => Outcome::Done("EINTR".into()),
            Some(true) if restarts < MAX_RESTARTS => self.call(a, op, restarts + 1),
            Some(true) => Outcome::Done("livelock".into()),
            None => match self.state(a) {
                ActorState::Zombie | ActorState::Gone => Outcome::NoReturn,
                // Stopped: restart after SIGCONT.
                ActorState::Stopped => Outcome::Pending,
                _ if restarts < MAX_RESTARTS => self.call(a, op, restarts + 1),
                _ => Outcome::Done("livelock".into()),
            },
        }
    }

    /// Applies the kernel's events to the recorded trace and to pending calls, until
    /// nothing more happens.
    fn process_events(&mut self) {
        for _ in 0..64 {
            let events = self.k.take_events();
            if events.is_empty() {
                break;
            }
            let mut retry: Vec<String> = Vec::new();
            for e in events {
                match e {
                    Event::SignalDelivered {
                        tid,
                        sig,
                        disposition: Disposition::Handler { restart },
                    } => {
                        let Some(name) = self.actor_of_tid(tid) else {
                            continue;
                        };
                        self.rec.signals.push((name.clone(), sig.name()));
                        if let Some(p) = self.pending.get_mut(&name) {
                            if p.continued {
                                // Back from a stop with a handler to run first.
                                p.continued = false;
                                if restart {
                                    retry.push(name);
                                } else {
                                    if let Some(p) = self.pending.remove(&name) {
                                        self.rec.done.push((name, format!("{} => EINTR", p.op)));
                                    }
                                }
                            }
                        }
                    }
                    Event::Wakeup { tid, .. } => {
                        if let Some(name) = self.actor_of_tid(tid) {
                            retry.push(name);
                        }
                    }
                    Event::Stopped { pid, .. } => {
                        for a in self.actors_of_process(pid) {
                            if let Some(p) = self.pending.get_mut(&a) {
                                p.restart_on_continue = true;
                            }
                        }
                    }
                    Event::Continued { pid } => {
                        for a in self.actors_of_process(pid) {
                            if self.pending.get(&a).is_some_and(|p| p.deferred.is_some()) {
                                if let Some(p) = self.pending.remove(&a) {
                                    let r = p.deferred.unwrap_or_default();
                                    self.rec.done.push((a, format!("{} => {r}", p.op)));
                                }
                                continue;
                            }
                            if let Some(p) = self.pending.get_mut(&a) {
                                if p.restart_on_continue {
                                    p.restart_on_continue = false;
                                    p.continued = true;
                                    retry.push(a);
                                }
                            }
                        }
                    }
                    Event::Exited { pid, .. } => {
                        for a in self.actors_of_process(pid) {
                            self.pending.remove(&a);
                        }
                    }
                    _ => {}
                }
            }
            let mut seen = std::collections::BTreeSet::new();
            retry.retain(|n| seen.insert(n.clone()));
            for name in retry {
                self.retry(&name);
            }
        }
    }

    fn actors_of_process(&self, tgid: Pid) -> Vec<String> {
        self.actors
            .iter()
            .filter(|a| self.k.task(a.tid).is_some_and(|t| t.tgid == tgid))
            .map(|a| a.name.clone())
            .collect()
    }

    fn retry(&mut self, name: &str) {
        let Some(p) = self.pending.get(name).cloned() else {
            return;
        };
        let Some(a) = self.actor(name).cloned() else {
            return;
        };
        if p.deferred.is_some()
            || matches!(
                self.state(&a),
                ActorState::Stopped | ActorState::Zombie | ActorState::Gone
            )
        {
            return;
        }
        if p.continued {
            // Wait for the handler check in this batch; a plain restart otherwise.
            if let Some(pp) = self.pending.get_mut(name) {
                pp.continued = false;
            }
        }
        let out = self.call(&a, &p.exec_op, 0);
        match self.after_call(&a, out) {
            Outcome::Done(s) => {
                self.pending.remove(name);
                self.rec
                    .done
                    .push((name.to_string(), format!("{} => {s}", p.op)));
            }
            Outcome::Deferred(s) => {
                if let Some(pp) = self.pending.get_mut(name) {
                    pp.deferred = Some(s);
                }
            }
            Outcome::NoReturn => {
                self.pending.remove(name);
            }
            Outcome::Pending => {}
        }
    }
}
