//! Signal delivery (Linux `get_signal`, `do_signal_stop`, `do_notify_parent_cldstop`):
//! what a thread does with the signals it dequeues, group stop and continue.
//!
//! The model delivers as soon as a signal can be delivered: a thread group that is
//! running dequeues every unblocked pending signal right away, as a thread returning to
//! user mode would. Rules:
//! - Each thread dequeues its private signals before the shared ones, lowest number
//!   first; the leader (then the other threads in creation order) takes shared signals
//!   it does not block — except that a thread whose own call raised the signal (a
//!   background terminal access, which marks the caller TIF_SIGPENDING) goes first — but a shared signal that woke a thread blocked in a call waits
//!   for that thread (Linux wakes one thread for it; the others, asleep, do not take
//!   it). Handlers are taken to run to completion one at a time (what a
//!   handler installed with a full `sa_mask` sees on Linux), except when a stop signal
//!   the handler's mask leaves unblocked (SIGSTOP always) is pending too: Linux sets
//!   up the handler's frame, keeps dequeuing and stops before returning to user mode,
//!   so the handler runs only after SIGCONT, before any signal its mask blocks.
//! - SIGKILL kills the group even when it is stopped. Other signals wait while the
//!   group is stopped.
//! - Default action stop (SIGSTOP; SIGTSTP/SIGTTIN/SIGTTOU with SIG_DFL): the whole
//!   group stops, the parent gets SIGCHLD with CLD_STOPPED unless its SIGCHLD action has
//!   SA_NOCLDSTOP, and a WUNTRACED waiter can collect it once. SIGTSTP, SIGTTIN and
//!   SIGTTOU are discarded instead when the group is orphaned.
//! - Default action terminate/core: the group dies with that signal.
//! - SIGCONT continues a stopped group when it is generated (see [`crate::kill`]); the
//!   parent gets CLD_CONTINUED (unless SA_NOCLDSTOP) and a WCONTINUED waiter can collect
//!   it once.
//! - A thread blocked in a system call is not delivered to: it is woken
//!   ([`Event::Wakeup`]) and its retry completes if it can (a wait that finds the child
//!   whose exit sent the SIGCHLD, a read that finds the input), the signal being
//!   delivered on return; otherwise the retry delivers the signal and fails with
//!   `ERESTARTSYS`: EINTR after a handler without SA_RESTART, else a restart (after
//!   SIGCONT if the signal stopped the group). This is Linux's order: a woken task
//!   re-checks its condition before `signal_pending()`. SA_RESETHAND resets the action
//!   to SIG_DFL.
//! - Init discards signals with SIG_DFL that reached its queue while blocked.

use crate::errno::Errno;
use crate::event::{BlockOn, Disposition, Event, SignalTarget};
use crate::exit::ExitStatus;
use crate::kernel::Kernel;
use crate::pending::{SiCode, SigInfo};
use crate::pid::Pid;
use crate::sigaction::{Handler, SigAction, SA_NOCLDSTOP, SA_NODEFER, SA_RESETHAND, SA_RESTART};
use crate::signal::{DefaultAction, SigSet, Signal};
use serde::{Deserialize, Serialize};

/// A handler whose frame is set up but which has not run yet: the thread stopped on
/// its way back to user mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub signo: Signal,
    /// Blocked until the handler returns (on top of the thread's mask).
    pub mask: SigSet,
    /// The action's SA_RESTART: whether the interrupted call is restarted.
    pub restart: bool,
}

impl Kernel {
    /// Starts a batch: signals generated until the matching [`Kernel::end_batch`] are
    /// queued first and delivered afterwards, and processes killed by them exit after
    /// every target has acted on its signals. On Linux the caller of kill() queues the
    /// signal to every target before any of them runs, and a target killed by one
    /// signal ignores those that a dying neighbour sends afterwards (its group is
    /// already exiting); the SIGCHLDs of children that die together coalesce.
    pub(crate) fn begin_batch(&mut self) {
        self.batch_depth += 1;
    }

    /// Ends a batch; the outermost one delivers, round after round, until nothing is
    /// left to do (a round's exits can generate the next round's signals).
    pub(crate) fn end_batch(&mut self) {
        self.batch_depth = self.batch_depth.saturating_sub(1);
        if self.batch_depth > 0 {
            return;
        }
        self.batch_depth = 1;
        loop {
            let round = std::mem::take(&mut self.dirty);
            for &tgid in &round {
                self.run_delivery(tgid);
            }
            let exits = std::mem::take(&mut self.doomed);
            if round.is_empty() && exits.is_empty() {
                break;
            }
            for tgid in exits {
                self.finish_group_exit(tgid);
            }
        }
        self.batch_depth = 0;
    }

    /// For differential testing: the targets of a signal sent to several processes
    /// act and die in the opposite order (the sender last, not first). Linux's order is
    /// the order in which the woken processes run, which is scheduling; a harness that
    /// runs a step both ways learns whether its outcome depends on it.
    #[doc(hidden)]
    pub fn reverse_batch_order(&mut self, on: bool) {
        self.batch_order_reversed = on;
    }

    /// Inside a batch: the processes that got signals to act on (or were killed) since
    /// the dirty and doomed lists had the given lengths act (and die) in `order`; the
    /// others keep their places after them.
    pub(crate) fn order_batch_tail(&mut self, dirty: usize, doomed: usize, order: &[Pid]) {
        let ranks: std::collections::BTreeMap<Pid, usize> =
            order.iter().enumerate().map(|(i, &p)| (p, i)).collect();
        let rank = |p: &Pid| ranks.get(p).copied().unwrap_or(usize::MAX);
        if let Some(tail) = self.dirty.get_mut(dirty..) {
            tail.sort_by_key(rank);
        }
        if let Some(tail) = self.doomed.get_mut(doomed..) {
            tail.sort_by_key(rank);
        }
    }

    /// Inside a batch: `tgid` acts on its signals now and, if they kill it, finishes
    /// dying, before the other targets of the batch act.
    pub(crate) fn act_first(&mut self, tgid: Pid) {
        self.dirty.retain(|&p| p != tgid);
        self.run_delivery(tgid);
        if let Some(i) = self.doomed.iter().position(|&p| p == tgid) {
            self.doomed.remove(i);
            self.finish_group_exit(tgid);
        }
    }

    /// `tgid` has signals to act on: now, or at the end of the batch.
    pub(crate) fn mark_for_delivery(&mut self, tgid: Pid) {
        if self.batch_depth == 0 {
            self.run_delivery(tgid);
        } else if !self.dirty.contains(&tgid) {
            self.dirty.push(tgid);
        }
    }

    /// Lets every thread of `tgid` act on its deliverable pending signals.
    pub(crate) fn run_delivery(&mut self, tgid: Pid) {
        loop {
            let Some(g) = self.groups.get(&tgid) else {
                return;
            };
            if !g.is_alive() || g.group_exit.is_some() {
                return;
            }
            let sigkill = g.shared_pending.contains(Signal::SIGKILL)
                || g.threads.iter().any(|t| {
                    self.tasks
                        .get(t)
                        .is_some_and(|t| t.pending.contains(Signal::SIGKILL))
                });
            if sigkill {
                let tid = g.threads.first().copied().unwrap_or(tgid);
                self.emit(Event::SignalDelivered {
                    tid,
                    sig: Signal::SIGKILL,
                    disposition: Disposition::Terminate,
                });
                self.do_group_exit(
                    tgid,
                    ExitStatus::Signaled {
                        sig: Signal::SIGKILL,
                        core: false,
                    },
                );
                return;
            }
            if g.stopped {
                return;
            }
            let mut next = None;
            let mut woken = Vec::new();
            // Shared signals left to a thread woken in its blocking call: Linux wakes
            // one thread for a shared signal (`complete_signal`), and the others, asleep,
            // do not take it.
            let mut claimed = crate::signal::SigSet::EMPTY;
            let mut run_frame = None;
            let mut set_up_frame = None;
            // A caller marked as having a signal pending takes its process's signals
            // first, on its way out of its call.
            let first = self.sigpending_caller.filter(|c| g.threads.contains(c));
            let threads = first
                .into_iter()
                .chain(g.threads.iter().copied().filter(|&t| Some(t) != first));
            for tid in threads {
                let Some(t) = self.tasks.get(&tid) else {
                    continue;
                };
                // A handler frame set up before a stop blocks its mask until it runs.
                let blocked = t.frame.map_or(t.blocked, |f| t.blocked.union(f.mask));
                let private = t.pending.next_unblocked(blocked);
                let shared = g
                    .shared_pending
                    .set()
                    .difference(claimed)
                    .difference(blocked)
                    .first();
                if private.is_none() && shared.is_none() {
                    if t.frame.is_some() {
                        run_frame = Some(tid);
                        break;
                    }
                    continue;
                }
                let candidate = private.or(shared);
                let fatal = candidate.is_some_and(|sig| self.is_fatal(g, sig));
                if let (Some(on), false) = (t.blocked_on, fatal) {
                    // In a blocking call: wake it; its retry returns first if it can.
                    // (A fatal signal acts at once, as complete_signal makes it a
                    // group exit.)
                    if !t.signal_wakeup {
                        woken.push((tid, on));
                    }
                    claimed = claimed.union(g.shared_pending.set().difference(t.blocked));
                    continue;
                }
                next = match (private, shared) {
                    (Some(sig), _) => Some((tid, sig, true)),
                    (None, Some(sig)) => Some((tid, sig, false)),
                    (None, None) => None,
                };
                if let Some((_, sig, _)) = next {
                    if t.frame.is_none() && self.stop_before_handler(g, t, sig) {
                        set_up_frame = next.take();
                    }
                }
                break;
            }
            for (tid, on) in woken {
                if let Some(t) = self.tasks.get_mut(&tid) {
                    t.signal_wakeup = true;
                }
                self.emit(Event::Wakeup { tid, on });
            }
            if let Some(tid) = run_frame {
                // Back in user mode after SIGCONT: the handler whose frame was set up
                // before the stop runs now.
                if let Some(f) = self.tasks.get_mut(&tid).and_then(|t| t.frame.take()) {
                    self.emit(Event::SignalDelivered {
                        tid,
                        sig: f.signo,
                        disposition: Disposition::Handler { restart: f.restart },
                    });
                }
                continue;
            }
            if let Some((tid, sig, private)) = set_up_frame {
                if !self.set_up_frame(tgid, tid, sig, private) {
                    return;
                }
                continue;
            }
            let Some((tid, sig, private)) = next else {
                return;
            };
            let info = self.dequeue(tgid, tid, sig, private);
            let Some(info) = info else {
                return;
            };
            self.handle_signal(tgid, tid, info);
        }
    }

    /// The signals a handler's frame blocks until the handler returns: the action's
    /// `sa_mask` and, without SA_NODEFER, the signal itself.
    fn handler_mask(act: &SigAction, sig: Signal) -> SigSet {
        let mut mask = act.mask;
        if !act.has_flag(SA_NODEFER) {
            mask.add(sig);
        }
        mask
    }

    /// Whether a stop takes effect before the handler of `sig` runs. Returning to user
    /// mode, Linux sets up the handler's frame (blocking the handler's mask) and keeps
    /// dequeuing: a pending stop signal that this mask does not block (SIGSTOP always,
    /// as no mask blocks it) stops the group before the handler has run. The handler
    /// runs after SIGCONT, before any signal its mask blocks (one that arrived while
    /// the process was stopped waits for it too).
    fn stop_before_handler(
        &self,
        g: &crate::thread_group::ThreadGroup,
        t: &crate::task::Task,
        sig: Signal,
    ) -> bool {
        let act = g.handlers.get(sig);
        if act.handler != Handler::Catch {
            return false;
        }
        let mask = t.blocked.union(Self::handler_mask(&act, sig));
        let would_stop = |s: Signal| {
            !mask.contains(s)
                && (s == Signal::SIGSTOP
                    || (g.handlers.get(s).handler == Handler::Default
                        && g.tgid != Kernel::INIT
                        && !self.is_orphaned_pgrp(g.pgid)))
        };
        [
            Signal::SIGSTOP,
            Signal::SIGTSTP,
            Signal::SIGTTIN,
            Signal::SIGTTOU,
        ]
        .into_iter()
        .any(|s| (t.pending.contains(s) || g.shared_pending.contains(s)) && would_stop(s))
    }

    /// Takes `sig` off thread `tid`'s private pending set or its process's shared one.
    fn dequeue(&mut self, tgid: Pid, tid: Pid, sig: Signal, private: bool) -> Option<SigInfo> {
        if private {
            self.tasks
                .get_mut(&tid)
                .and_then(|t| t.pending.dequeue(sig))
        } else {
            self.groups
                .get_mut(&tgid)
                .and_then(|g| g.shared_pending.dequeue(sig))
        }
    }

    /// Dequeues `sig` and sets up its handler's frame on `tid` (see
    /// [`Kernel::stop_before_handler`]): the handler runs once the thread gets back to
    /// user mode. SA_RESETHAND resets the action now, as setting up the frame does.
    /// Returns whether the frame was set up.
    fn set_up_frame(&mut self, tgid: Pid, tid: Pid, sig: Signal, private: bool) -> bool {
        let info = self.dequeue(tgid, tid, sig, private);
        let (Some(_), Some(g)) = (info, self.groups.get_mut(&tgid)) else {
            return false;
        };
        let act = g.handlers.get(sig);
        if act.has_flag(SA_RESETHAND) {
            g.handlers.set(
                sig,
                SigAction {
                    handler: Handler::Default,
                    ..act
                },
            );
        }
        let Some(t) = self.tasks.get_mut(&tid) else {
            return false;
        };
        t.frame = Some(Frame {
            signo: sig,
            mask: Self::handler_mask(&act, sig),
            restart: act.has_flag(SA_RESTART),
        });
        true
    }

    /// Whether delivering `sig` would kill the group (SIG_DFL with a terminating
    /// default action, and not init's handler-less immunity).
    fn is_fatal(&self, g: &crate::thread_group::ThreadGroup, sig: Signal) -> bool {
        g.handlers.get(sig).handler == Handler::Default
            && g.tgid != Kernel::INIT
            && matches!(
                sig.default_action(),
                DefaultAction::Terminate | DefaultAction::CoreDump
            )
    }

    fn handle_signal(&mut self, tgid: Pid, tid: Pid, info: SigInfo) {
        let sig = info.signo;
        let Some(g) = self.groups.get(&tgid) else {
            return;
        };
        let act = g.handlers.get(sig);
        let pgid = g.pgid;
        let disposition = match act.handler {
            Handler::Catch => Disposition::Handler {
                restart: act.has_flag(SA_RESTART),
            },
            Handler::Ignore => Disposition::Ignored,
            Handler::Default if tgid == Kernel::INIT && !sig.is_unblockable() => {
                Disposition::Ignored
            }
            Handler::Default => match sig.default_action() {
                DefaultAction::Ignore | DefaultAction::Continue => Disposition::Ignored,
                DefaultAction::Stop => {
                    if sig != Signal::SIGSTOP && self.is_orphaned_pgrp(pgid) {
                        Disposition::Ignored
                    } else {
                        Disposition::Stop
                    }
                }
                DefaultAction::Terminate => Disposition::Terminate,
                DefaultAction::CoreDump if self.config.core_dumps => Disposition::CoreDump,
                DefaultAction::CoreDump => Disposition::Terminate,
            },
        };
        self.emit(Event::SignalDelivered {
            tid,
            sig,
            disposition,
        });
        match disposition {
            Disposition::Handler { .. } => {
                if act.has_flag(SA_RESETHAND) {
                    if let Some(g) = self.groups.get_mut(&tgid) {
                        g.handlers.set(
                            sig,
                            SigAction {
                                handler: Handler::Default,
                                ..act
                            },
                        );
                    }
                }
            }
            Disposition::Ignored => {}
            Disposition::Stop => self.do_signal_stop(tgid, sig),
            Disposition::Terminate | Disposition::CoreDump => self.do_group_exit(
                tgid,
                ExitStatus::Signaled {
                    sig,
                    core: disposition == Disposition::CoreDump,
                },
            ),
        }
    }

    /// A blocking call of `tid` found nothing to return: if a signal is deliverable,
    /// clears the block, delivers and returns `ERESTARTSYS`; else marks the thread
    /// blocked on `on` and returns `Ok`.
    pub(crate) fn block_or_restart(&mut self, tid: Pid, on: BlockOn) -> Result<(), Errno> {
        let tgid = self.tasks.get(&tid).map(|t| t.tgid).ok_or(Errno::ESRCH)?;
        let deliverable = {
            let g = self.groups.get(&tgid).ok_or(Errno::ESRCH)?;
            let t = self.tasks.get(&tid).ok_or(Errno::ESRCH)?;
            t.pending.next_unblocked(t.blocked).is_some()
                || g.shared_pending.next_unblocked(t.blocked).is_some()
        };
        let seq = self.next_block_seq;
        if let Some(t) = self.tasks.get_mut(&tid) {
            t.signal_wakeup = false;
            if deliverable {
                t.blocked_on = None;
            } else if t.blocked_on != Some(on) {
                t.blocked_on = Some(on);
                t.block_seq = seq;
                self.next_block_seq += 1;
            }
        }
        if deliverable {
            self.run_delivery(tgid);
            return Err(Errno::ERESTARTSYS);
        }
        Ok(())
    }

    /// A system call of `tid` returns: signals that arrived while it was blocked are
    /// delivered now.
    pub(crate) fn syscall_return(&mut self, tid: Pid) {
        let Some(t) = self.tasks.get_mut(&tid) else {
            return;
        };
        t.blocked_on = None;
        t.signal_wakeup = false;
        let tgid = t.tgid;
        self.run_delivery(tgid);
    }

    /// Group stop: every thread stops; the parent is told.
    fn do_signal_stop(&mut self, tgid: Pid, sig: Signal) {
        let Some(g) = self.groups.get_mut(&tgid) else {
            return;
        };
        g.stopped = true;
        g.stop_report = Some(sig);
        g.continued_report = false;
        // A thread blocked in a system call leaves it to stop; the call is restarted
        // after SIGCONT.
        for t in g.threads.clone() {
            if let Some(task) = self.tasks.get_mut(&t) {
                task.blocked_on = None;
            }
        }
        self.emit(Event::Stopped { pid: tgid, sig });
        self.notify_parent_cldstop(tgid, SiCode::ChildStopped, sig);
    }

    /// The continue half of `prepare_signal(SIGCONT)`.
    pub(crate) fn continue_group(&mut self, tgid: Pid) {
        let Some(g) = self.groups.get_mut(&tgid) else {
            return;
        };
        if !g.stopped {
            return;
        }
        g.stopped = false;
        g.stop_report = None;
        g.continued_report = true;
        self.emit(Event::Continued { pid: tgid });
        self.notify_parent_cldstop(tgid, SiCode::ChildContinued, Signal::SIGCONT);
    }

    /// `do_notify_parent_cldstop`.
    fn notify_parent_cldstop(&mut self, tgid: Pid, code: SiCode, sig: Signal) {
        let Some(parent) = self.groups.get(&tgid).and_then(|g| g.parent) else {
            return;
        };
        let Some(pg) = self.groups.get(&parent) else {
            return;
        };
        if !pg.handlers.get(Signal::SIGCHLD).has_flag(SA_NOCLDSTOP) {
            self.send_signal_info(
                SignalTarget::Process(parent),
                SigInfo {
                    signo: Signal::SIGCHLD,
                    code,
                    pid: tgid,
                    status: sig.number(),
                },
            );
        }
        self.wake_parent(parent, tgid);
    }
}
