//! Signal generation (Linux `kernel/signal.c`: `kill_something_info`,
//! `__send_signal_locked`, `prepare_signal`, `sig_ignored`) and the calls that change
//! dispositions and masks.
//!
//! Rules:
//! - `kill(pid > 0)`: the process containing task `pid` (a thread ID works too);
//!   `kill(0)`: every process of the caller's group; `kill(-1)`: every process except
//!   init and the caller's own (ESRCH if there is none); `kill(-pgid)`: every process of
//!   that group (ESRCH if empty). A zombie accepts a signal and ignores it.
//!   Signal 0 only checks that the target exists. An invalid signal is EINVAL once a
//!   target is found (no target: ESRCH, whatever the signal).
//! - `tkill(tid)`/`tgkill(tgid, tid)`: one thread (EINVAL for IDs ≤ 0, ESRCH if the
//!   thread is not in that thread group, then EINVAL for an invalid signal).
//! - At generation a stop signal discards pending SIGCONT, and SIGCONT discards
//!   pending stop signals and continues a stopped group at once, even if SIGCONT is
//!   blocked or ignored (the continue is reported to the parent as CLD_CONTINUED).
//! - A signal that is ignored (SIG_IGN, or SIG_DFL with a default action of ignore)
//!   and not blocked is discarded at generation; a blocked one is queued.
//! - Init ignores every signal it has no handler for when it comes from inside its
//!   namespace; from outside, SIGKILL and SIGSTOP still work (SIGNAL_UNKILLABLE).
//! - A second instance of a pending standard signal is dropped; real-time signals queue.
//! - A process that is exiting or dead ignores signals.
//! - A fatal signal without a core dump (SIG_DFL, default action terminate) kills the
//!   process as it is generated when a thread would take it at once
//!   (`complete_signal`); the process then ignores every later signal.
//! - A signal for several processes is queued to all of them before any acts; the
//!   sender, if it is one of them, acts first (and dies first if it is killed), then
//!   the others in the order Linux reaches and wakes them: a process group's most
//!   recent member first (`kill_pgrp`), every process in creation order (`kill(-1)`).

use crate::errno::{Errno, SysResult};
use crate::event::{Disposition, Event, SignalTarget};
use crate::exit::ExitStatus;
use crate::kernel::Kernel;
use crate::pending::{SiCode, SigInfo};
use crate::pid::Pid;
use crate::sigaction::{Handler, SigAction};
use crate::signal::{DefaultAction, SigSet, Signal};

/// `sigprocmask`'s `how`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigmaskHow {
    Block,
    Unblock,
    SetMask,
}

/// Parses a signal number where 0 means "check only".
fn signal_arg(sig: i32) -> SysResult<Option<Signal>> {
    if sig == 0 {
        Ok(None)
    } else {
        Signal::new(sig).map(Some)
    }
}

impl Kernel {
    /// `kill(pid, sig)` by thread `tid`.
    pub fn kill(&mut self, tid: Pid, pid: Pid, sig: i32) -> SysResult<()> {
        // The signal number is checked per target, after the lookup (ESRCH first).
        let parsed = signal_arg(sig);
        let caller = self.caller_tgid(tid)?;
        let user = |signo| SigInfo {
            signo,
            code: SiCode::User,
            pid: caller,
            status: 0,
        };
        if pid > 0 {
            let tgid = self.tasks.get(&pid).ok_or(Errno::ESRCH)?.tgid;
            if let Some(sig) = parsed? {
                self.send_signal(SignalTarget::Process(tgid), user(sig), false);
            }
            return Ok(());
        }
        if pid == i32::MIN {
            return Err(Errno::ESRCH);
        }
        if pid == -1 {
            let targets: Vec<Pid> = self
                .groups
                .keys()
                .copied()
                .filter(|&p| p > 1 && p != caller)
                .collect();
            if targets.is_empty() {
                return Err(Errno::ESRCH);
            }
            if let Some(sig) = parsed? {
                self.send_to_members(targets, user(sig), None);
            }
            return Ok(());
        }
        let pgid = if pid == 0 {
            self.group(caller)?.pgid
        } else {
            -pid
        };
        let members = self.pgrp_wake_order(pgid);
        if members.is_empty() {
            return Err(Errno::ESRCH);
        }
        if let Some(sig) = parsed? {
            self.send_to_members(members, user(sig), Some(caller));
        }
        Ok(())
    }

    /// One signal to several processes, as one batch (see [`Kernel::begin_batch`]).
    /// The sender, if it is one of them, acts on it first, and dies first if it kills
    /// it: it is running, and takes its signal on its way out of the system call, while
    /// the others were asleep and act once woken (Linux 6.18 on the conformance
    /// harness: a child sending its group SIGTSTP or SIGTTOU stops, and its parent in
    /// the group gets the SIGCHLD, before the parent acts on its own signal; a session
    /// leader sending its group SIGQUIT dies, and its child dies of the leader's SIGHUP).
    ///
    /// `members` is the order in which they act (and die); the signal is queued to
    /// them in ascending PID order, which nothing observes.
    pub(crate) fn send_to_members(
        &mut self,
        members: Vec<Pid>,
        info: SigInfo,
        sender: Option<Pid>,
    ) {
        let sender = sender.filter(|s| members.contains(s));
        let mut order: Vec<Pid> = members
            .iter()
            .copied()
            .filter(|&m| Some(m) != sender)
            .collect();
        if self.batch_order_reversed {
            order.reverse();
            order.extend(sender);
        } else if let Some(s) = sender {
            order.insert(0, s);
        }
        self.begin_batch();
        let (dirty, doomed) = (self.dirty.len(), self.doomed.len());
        let mut queue = members;
        queue.sort_unstable();
        for &p in &queue {
            self.send_signal(SignalTarget::Process(p), info, false);
        }
        self.order_batch_tail(dirty, doomed, &order);
        if let (Some(s), false) = (sender, self.batch_order_reversed) {
            self.act_first(s);
        }
        self.end_batch();
    }

    /// `killpg(pgrp, sig)` (glibc: EINVAL for a negative group, else `kill(-pgrp)`).
    pub fn killpg(&mut self, tid: Pid, pgrp: Pid, sig: i32) -> SysResult<()> {
        if pgrp < 0 {
            return Err(Errno::EINVAL);
        }
        self.kill(tid, -pgrp, sig)
    }

    /// `tkill(tid, sig)`.
    pub fn tkill(&mut self, tid: Pid, target: Pid, sig: i32) -> SysResult<()> {
        self.tgkill_inner(tid, None, target, sig)
    }

    /// `tgkill(tgid, tid, sig)`.
    pub fn tgkill(&mut self, tid: Pid, tgid: Pid, target: Pid, sig: i32) -> SysResult<()> {
        if tgid <= 0 {
            return Err(Errno::EINVAL);
        }
        self.tgkill_inner(tid, Some(tgid), target, sig)
    }

    fn tgkill_inner(
        &mut self,
        tid: Pid,
        tgid: Option<Pid>,
        target: Pid,
        sig: i32,
    ) -> SysResult<()> {
        if target <= 0 {
            return Err(Errno::EINVAL);
        }
        let caller = self.caller_tgid(tid)?;
        let t = self.tasks.get(&target).ok_or(Errno::ESRCH)?;
        if tgid.is_some_and(|g| g != t.tgid) {
            return Err(Errno::ESRCH);
        }
        if t.has_exited() {
            // A group leader that exited stays in the PID table until its process is
            // reaped: `do_send_specific` finds it, checks the signal, and the send
            // itself changes nothing (an -ESRCH from it is turned into 0). An exited
            // thread that is not the leader is released at once: ESRCH.
            if target == t.tgid && self.groups.contains_key(&target) {
                signal_arg(sig)?;
                return Ok(());
            }
            return Err(Errno::ESRCH);
        }
        let sig = signal_arg(sig)?;
        if let Some(sig) = sig {
            let info = SigInfo {
                signo: sig,
                code: SiCode::Tkill,
                pid: caller,
                status: 0,
            };
            self.send_signal(SignalTarget::Thread(target), info, false);
        }
        Ok(())
    }

    /// `rt_sigaction(sig, act)`: returns the old action. EINVAL for an invalid signal
    /// or an attempt to change SIGKILL/SIGSTOP. A new action that ignores the signal
    /// discards its pending instances in every thread.
    pub fn sigaction(
        &mut self,
        tid: Pid,
        sig: i32,
        act: Option<SigAction>,
    ) -> SysResult<SigAction> {
        let sig = Signal::new(sig)?;
        let tgid = self.caller_tgid(tid)?;
        if act.is_some() && sig.is_unblockable() {
            return Err(Errno::EINVAL);
        }
        let old = self.group(tgid)?.handlers.get(sig);
        if let Some(mut act) = act {
            act.mask = act.mask.without_unblockable();
            let g = self.group_mut(tgid)?;
            g.handlers.set(sig, act);
            if act.ignores(sig) {
                let mask = SigSet::of(&[sig]);
                g.shared_pending.discard(mask);
                let threads = g.threads.clone();
                for t in threads {
                    if let Some(task) = self.tasks.get_mut(&t) {
                        task.pending.discard(mask);
                    }
                }
            }
        }
        Ok(old)
    }

    /// Shorthand for `signal(sig, handler)` with the given flags.
    pub fn set_handler(
        &mut self,
        tid: Pid,
        sig: Signal,
        handler: Handler,
        flags: u32,
    ) -> SysResult<SigAction> {
        self.sigaction(
            tid,
            sig.number(),
            Some(SigAction {
                handler,
                flags,
                mask: SigSet::EMPTY,
            }),
        )
    }

    /// `rt_sigprocmask(how, set)`: returns the old mask. SIGKILL and SIGSTOP are
    /// silently left out. Unblocking lets pending signals be delivered at once.
    pub fn sigprocmask(
        &mut self,
        tid: Pid,
        how: SigmaskHow,
        set: Option<SigSet>,
    ) -> SysResult<SigSet> {
        let tgid = self.caller_tgid(tid)?;
        let task = self.task_mut(tid)?;
        let old = task.blocked;
        if let Some(set) = set {
            let new = match how {
                SigmaskHow::Block => old.union(set),
                SigmaskHow::Unblock => old.difference(set),
                SigmaskHow::SetMask => set,
            };
            task.blocked = new.without_unblockable();
            self.run_delivery(tgid);
        }
        Ok(old)
    }

    /// `rt_sigpending()`: the caller's private and its process's shared pending sets.
    pub fn sigpending(&self, tid: Pid) -> SysResult<SigSet> {
        let tgid = self.caller_tgid(tid)?;
        let t = self.tasks.get(&tid).ok_or(Errno::ESRCH)?;
        Ok(t.pending
            .set()
            .union(self.group(tgid)?.shared_pending.set()))
    }

    /// A signal generated by the kernel itself (SI_KERNEL) for every process of a
    /// group (`kill_pgrp(pgrp, sig, 1)`). Returns whether the group had members.
    pub(crate) fn kill_pgrp_info(&mut self, pgid: Pid, info: SigInfo) -> bool {
        self.kill_pgrp_info_from(pgid, info, None)
    }

    /// [`Kernel::kill_pgrp_info`] on behalf of `sender`, the process whose system call
    /// raised the signal (a background terminal access, a session leader's TIOCNOTTY):
    /// if it is in the group, it acts on the signal first.
    pub(crate) fn kill_pgrp_info_from(
        &mut self,
        pgid: Pid,
        info: SigInfo,
        sender: Option<Pid>,
    ) -> bool {
        let members = self.pgrp_wake_order(pgid);
        let any = !members.is_empty();
        if self.config.host_signals {
            // One kill(-pgid) on the host (see crate::host).
            if any {
                self.host_send(crate::host::HostTarget::ProcessGroup(pgid), info.signo);
            }
            return any;
        }
        self.send_to_members(members, info, sender);
        any
    }

    /// The signal of a background terminal access (`__tty_check_change`) in host
    /// mode. Linux queues it to the caller's group (`kill_pgrp`) and marks the calling
    /// thread as having a signal pending, so that this thread, not the thread the
    /// kernel would wake, takes its process's copy on its way out of the call (a
    /// handler without SA_RESTART then interrupts the caller's call: EINTR). The model
    /// lets the caller dequeue first in its process. A host `kill(-pgid)` leaves that
    /// choice to the host, which picks the main thread when another thread called; so
    /// in host mode, when the caller is not its process's main thread, its process's
    /// copy is sent to the calling thread (`tgkill`) and each other member gets its own
    /// `kill`, in the order Linux wakes them.
    pub(crate) fn kill_pgrp_from_caller(&mut self, pgid: Pid, sig: Signal, tid: Pid) -> bool {
        let tgid = self.tasks.get(&tid).map(|t| t.tgid);
        if !self.config.host_signals {
            self.sigpending_caller = Some(tid);
            let any = self.kill_pgrp_info_from(pgid, SigInfo::kernel(sig), tgid);
            self.sigpending_caller = None;
            return any;
        }
        if tgid == Some(tid) || tgid.is_none() {
            return self.kill_pgrp_info_from(pgid, SigInfo::kernel(sig), tgid);
        }
        let members = self.pgrp_wake_order(pgid);
        for m in &members {
            let target = if Some(*m) == tgid {
                crate::host::HostTarget::Thread(tid)
            } else {
                crate::host::HostTarget::Process(*m)
            };
            self.host_send(target, sig);
        }
        !members.is_empty()
    }

    pub(crate) fn send_signal_info(&mut self, target: SignalTarget, info: SigInfo) {
        self.send_signal(target, info, false);
    }

    /// `__send_signal_locked`. `force`: the sender is outside the namespace (it may
    /// SIGKILL/SIGSTOP init).
    pub(crate) fn send_signal(&mut self, target: SignalTarget, info: SigInfo, force: bool) {
        let sig = info.signo;
        if self.config.host_signals {
            let t = match target {
                SignalTarget::Process(p) => crate::host::HostTarget::Process(p),
                SignalTarget::Thread(t) => crate::host::HostTarget::Thread(t),
            };
            self.host_send(t, sig);
            return;
        }
        let (tgid, mask_tid) = match target {
            SignalTarget::Process(p) => (p, p),
            SignalTarget::Thread(t) => match self.tasks.get(&t) {
                Some(task) => (task.tgid, t),
                None => return,
            },
        };
        let prepared = self.prepare_signal(tgid, mask_tid, sig, force);
        // Whether a thread takes it at once (before it is queued, so that the test
        // sees only signals that were pending before this one).
        let fatal_taker = if prepared {
            self.fatal_at_generation(target, tgid, sig)
        } else {
            None
        };
        let queued = prepared
            && match target {
                SignalTarget::Process(p) => self
                    .groups
                    .get_mut(&p)
                    .is_some_and(|g| g.shared_pending.enqueue(info)),
                SignalTarget::Thread(t) => self
                    .tasks
                    .get_mut(&t)
                    .is_some_and(|task| task.pending.enqueue(info)),
            };
        self.emit(Event::SignalGenerated {
            target,
            sig,
            code: info.code,
            queued,
        });
        self.begin_batch();
        if let (true, Some(tid)) = (queued, fatal_taker) {
            self.emit(Event::SignalDelivered {
                tid,
                sig,
                disposition: Disposition::Terminate,
            });
            self.do_group_exit(tgid, ExitStatus::Signaled { sig, core: false });
        }
        self.mark_for_delivery(tgid);
        self.end_batch();
    }

    /// `complete_signal`: a fatal signal (SIG_DFL, default action terminate without a
    /// core dump) takes the whole process down as it is generated, when a thread would
    /// take it now: one that does not block it and, unless it is SIGKILL, is not
    /// stopped and has no other signal pending (Linux's `wants_signal`; the leader is
    /// tried first, a thread-directed signal only tries its thread). From then on the
    /// process ignores every other signal, such as the SIGHUP a dying session leader
    /// sends it. A core-dumping signal, or one that finds no such thread, is left to
    /// delivery. Returns the thread that takes it.
    fn fatal_at_generation(&self, target: SignalTarget, tgid: Pid, sig: Signal) -> Option<Pid> {
        let g = self.groups.get(&tgid)?;
        if g.group_exit.is_some() || !g.is_alive() {
            return None;
        }
        if g.handlers.get(sig).handler != Handler::Default
            || sig.default_action() != DefaultAction::Terminate
        {
            return None;
        }
        let wants = |tid: Pid| {
            let Some(t) = self.tasks.get(&tid) else {
                return false;
            };
            if t.has_exited() || t.blocked.contains(sig) {
                return false;
            }
            if sig == Signal::SIGKILL {
                return true;
            }
            !g.stopped
                && t.pending.next_unblocked(t.blocked).is_none()
                && g.shared_pending.next_unblocked(t.blocked).is_none()
        };
        match target {
            SignalTarget::Thread(t) => wants(t).then_some(t),
            SignalTarget::Process(_) => g.threads.iter().copied().find(|&t| wants(t)),
        }
    }

    /// `prepare_signal`: stop/continue side effects at generation, then whether the
    /// signal is to be queued.
    fn prepare_signal(&mut self, tgid: Pid, mask_tid: Pid, sig: Signal, force: bool) -> bool {
        let Some(g) = self.groups.get_mut(&tgid) else {
            return false;
        };
        if g.group_exit.is_some() || !g.is_alive() {
            return false;
        }
        if sig.is_stop() {
            let cont = SigSet::of(&[Signal::SIGCONT]);
            self.discard_everywhere(tgid, cont);
        } else if sig == Signal::SIGCONT {
            let stops = SigSet::of(&[
                Signal::SIGSTOP,
                Signal::SIGTSTP,
                Signal::SIGTTIN,
                Signal::SIGTTOU,
            ]);
            self.discard_everywhere(tgid, stops);
            self.continue_group(tgid);
        }
        !self.sig_ignored(tgid, mask_tid, sig, force)
    }

    fn discard_everywhere(&mut self, tgid: Pid, set: SigSet) {
        let Some(g) = self.groups.get_mut(&tgid) else {
            return;
        };
        g.shared_pending.discard(set);
        for t in g.threads.clone() {
            if let Some(task) = self.tasks.get_mut(&t) {
                task.pending.discard(set);
            }
        }
    }

    /// `sig_ignored` / `sig_task_ignored`.
    fn sig_ignored(&self, tgid: Pid, mask_tid: Pid, sig: Signal, force: bool) -> bool {
        let blocked = self
            .tasks
            .get(&mask_tid)
            .map(|t| t.blocked)
            .unwrap_or_default();
        if blocked.contains(sig) {
            return false;
        }
        let Some(g) = self.groups.get(&tgid) else {
            return true;
        };
        let act = g.handlers.get(sig);
        if tgid == Kernel::INIT {
            if self.config.init_is_global && sig.is_unblockable() {
                return true;
            }
            if act.handler == Handler::Default && !(force && sig.is_unblockable()) {
                return true;
            }
        }
        act.ignores(sig)
    }
}
