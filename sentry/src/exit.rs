//! Death of threads and processes (Linux `kernel/exit.c`): exit, exit_group, fatal
//! signals, reparenting, orphaned process groups, notifying the parent, reaping.
//!
//! Order of a process's death, as `do_exit` runs it for the last thread:
//! 1. A session leader disassociates its controlling terminal (`disassociate_ctty(1)`):
//!    a pty gets SIGHUP sent to its foreground group; another terminal is hung up.
//! 2. Its children are reparented (`forget_original_parent`): to another live thread of
//!    the same process if a thread exits alone, else to the nearest living ancestor
//!    marked child subreaper, else to init; a reparented child's exit signal becomes
//!    SIGCHLD, a zombie child is reported to its new parent, and each child's process
//!    group is checked for becoming orphaned with stopped members (SIGHUP then SIGCONT).
//! 3. Its own process group is checked the same way (`kill_orphaned_pgrp`).
//! 4. The parent gets the exit signal (`do_notify_parent`): SIGCHLD is not sent when
//!    the parent ignores it; if the parent ignores SIGCHLD or set SA_NOCLDWAIT the child
//!    is reaped at once; a non-SIGCHLD exit signal becomes SIGCHLD if the parent exec'd
//!    since the fork.
//!
//! When init dies, every other process of the namespace is killed with SIGKILL and
//! released (`zap_pid_ns_processes`).

use crate::errno::SysResult;
use crate::event::{BlockOn, Event, SignalTarget};
use crate::kernel::Kernel;
use crate::pending::{SiCode, SigInfo};
use crate::pid::Pid;
use crate::sigaction::{Handler, SA_NOCLDWAIT};
use crate::signal::Signal;
use serde::{Deserialize, Serialize};

/// How a thread or process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    /// exit(code) / exit_group(code): the low 8 bits.
    Exited(u8),
    /// Killed by a signal (with a core dump if `core`).
    Signaled { sig: Signal, core: bool },
}

impl ExitStatus {
    /// The `wait4` status word (`WIFEXITED`/`WIFSIGNALED` encoding).
    pub fn wait_status(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => (c as i32) << 8,
            ExitStatus::Signaled { sig, core } => sig.number() | if core { 0x80 } else { 0 },
        }
    }

    /// `si_code` for SIGCHLD and waitid.
    pub fn si_code(self) -> SiCode {
        match self {
            ExitStatus::Exited(_) => SiCode::ChildExited,
            ExitStatus::Signaled { core: true, .. } => SiCode::ChildDumped,
            ExitStatus::Signaled { .. } => SiCode::ChildKilled,
        }
    }

    /// `si_status` for SIGCHLD and waitid.
    pub fn si_status(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c as i32,
            ExitStatus::Signaled { sig, .. } => sig.number(),
        }
    }

    /// The shell's `$?` for this status: the code, or 128 + the signal.
    pub fn shell_status(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c as i32,
            ExitStatus::Signaled { sig, .. } => 128 + sig.number(),
        }
    }
}

impl Kernel {
    /// `exit(code)` (SYS_exit): only the calling thread exits. The process dies with its
    /// last thread; its status is then the leader thread's own.
    pub fn exit_thread(&mut self, tid: Pid, code: i32) -> SysResult<()> {
        self.caller_tgid(tid)?;
        self.begin_batch();
        self.do_exit_thread(tid, ExitStatus::Exited(code as u8));
        self.end_batch();
        Ok(())
    }

    /// `exit_group(code)` (what `exit(3)` calls): every thread exits.
    pub fn exit_group(&mut self, tid: Pid, code: i32) -> SysResult<()> {
        let tgid = self.caller_tgid(tid)?;
        self.begin_batch();
        self.do_group_exit(tgid, ExitStatus::Exited(code as u8));
        self.end_batch();
        Ok(())
    }

    /// Kills a whole thread group (exit_group, or a fatal signal). The group is exiting
    /// from now on (later signals are ignored); its threads exit at once, or at the end
    /// of the current batch (see [`Kernel::begin_batch`]).
    pub(crate) fn do_group_exit(&mut self, tgid: Pid, status: ExitStatus) {
        match self.groups.get_mut(&tgid) {
            Some(g) if g.group_exit.is_none() && g.is_alive() => g.group_exit = Some(status),
            _ => return,
        }
        if self.batch_depth > 0 {
            self.doomed.push(tgid);
        } else {
            self.finish_group_exit(tgid);
        }
    }

    /// Every thread of a group whose `group_exit` is set exits.
    pub(crate) fn finish_group_exit(&mut self, tgid: Pid) {
        let Some((status, threads)) = self
            .groups
            .get(&tgid)
            .and_then(|g| g.group_exit.map(|st| (st, g.threads.clone())))
        else {
            return;
        };
        for t in threads {
            self.do_exit_thread(t, status);
        }
    }

    fn do_exit_thread(&mut self, tid: Pid, status: ExitStatus) {
        let Some(task) = self.tasks.get_mut(&tid) else {
            return;
        };
        if task.has_exited() {
            return;
        }
        task.exit_status = Some(status);
        self.live_tasks -= 1;
        task.blocked_on = None;
        task.pending = Default::default();
        let tgid = task.tgid;
        let Some(g) = self.groups.get_mut(&tgid) else {
            return;
        };
        g.threads.retain(|&t| t != tid);
        let group_dead = g.threads.is_empty();
        let next_thread = g.threads.first().copied();
        if !group_dead {
            // Children of this thread now belong to another live thread of the group.
            if let Some(next) = next_thread {
                let children: Vec<Pid> = g.children.values().copied().collect();
                for c in children {
                    if let Some(cg) = self.groups.get_mut(&c) {
                        if cg.parent_thread == tid {
                            cg.parent_thread = next;
                        }
                    }
                }
            }
            if tid != tgid {
                self.tasks.remove(&tid);
            }
            return;
        }
        if tid != tgid {
            self.tasks.remove(&tid);
        }
        self.process_died(tgid, status);
    }

    /// The last thread of `tgid` has exited with `last`. Without a group exit, the
    /// process's status is the last thread's code (Linux 6.18, checked with the
    /// conformance harness: the leader's own earlier `exit()` code is not used).
    fn process_died(&mut self, tgid: Pid, last: ExitStatus) {
        let Some(g) = self.groups.get(&tgid) else {
            return;
        };
        let status = g.group_exit.unwrap_or(last);
        if let Some(g) = self.groups.get_mut(&tgid) {
            g.group_exit.get_or_insert(status);
            g.stopped = false;
            g.stop_report = None;
            g.continued_report = false;
            g.shared_pending = Default::default();
        }
        self.disassociate_ctty(tgid, true);
        self.close_all_fds(tgid);
        if tgid == Kernel::INIT {
            self.zap_namespace();
        } else {
            self.forget_original_parent(tgid);
        }
        self.kill_orphaned_pgrp(tgid, None);
        if let Some(g) = self.groups.get_mut(&tgid) {
            g.zombie = Some(status);
        }
        self.emit(Event::Exited { pid: tgid, status });
        if self.do_notify_parent(tgid) {
            self.release(tgid, None);
        }
    }

    /// `forget_original_parent`: hand every child to the new reaper.
    fn forget_original_parent(&mut self, father: Pid) {
        let children: Vec<Pid> = match self.groups.get_mut(&father) {
            Some(g) => std::mem::take(&mut g.children).into_values().collect(),
            None => return,
        };
        if children.is_empty() {
            return;
        }
        let reaper = self.find_new_reaper(father);
        for child in children {
            let key = self.next_child_key();
            let reaper_thread = self
                .groups
                .get(&reaper)
                .and_then(|r| r.threads.first().copied())
                .unwrap_or(reaper);
            if let Some(cg) = self.groups.get_mut(&child) {
                cg.parent = Some(reaper);
                cg.parent_thread = reaper_thread;
                cg.child_key = key;
                cg.exit_signal = Some(Signal::SIGCHLD);
            }
            if let Some(r) = self.groups.get_mut(&reaper) {
                r.children.insert(key, child);
            }
            let zombie = self.groups.get(&child).is_some_and(|c| c.is_zombie());
            if zombie && self.do_notify_parent(child) {
                self.release(child, None);
                continue;
            }
            self.kill_orphaned_pgrp(child, Some(father));
        }
    }

    /// `find_new_reaper`: the nearest living ancestor with PR_SET_CHILD_SUBREAPER,
    /// else init.
    fn find_new_reaper(&self, father: Pid) -> Pid {
        let mut p = self.groups.get(&father).and_then(|g| g.parent);
        while let Some(pid) = p {
            if pid == Kernel::INIT {
                break;
            }
            let Some(g) = self.groups.get(&pid) else {
                break;
            };
            if g.subreaper && g.is_alive() && g.group_exit.is_none() {
                return pid;
            }
            p = g.parent;
        }
        Kernel::INIT
    }

    /// `kill_orphaned_pgrp(tsk, parent)`: on exit (`father` None) the dying process is
    /// ignored and its own parent is the outside link checked; on reparent (`father` =
    /// the dying parent) the child's group is checked as it is now.
    pub(crate) fn kill_orphaned_pgrp(&mut self, tgid: Pid, father: Option<Pid>) {
        if self.config.host_signals {
            return; // the host finds the same orphans (see crate::host)
        }
        let Some(g) = self.groups.get(&tgid) else {
            return;
        };
        let (pgid, sid) = (g.pgid, g.sid);
        let (parent, ignored) = match father {
            None => (g.parent, Some(tgid)),
            Some(f) => (Some(f), None),
        };
        let Some(parent) = parent.and_then(|p| self.groups.get(&p)) else {
            return;
        };
        if parent.pgid != pgid
            && parent.sid == sid
            && self.will_become_orphaned_pgrp(pgid, ignored)
            && self.has_stopped_jobs(pgid)
        {
            // SIGHUP reaches the stopped members only (Linux 6.18, checked with the
            // conformance harness: `life-orphaning-hup-only-to-stopped-members`; a
            // running member, with a handler or without, sees SIGCONT alone).
            let stopped: Vec<Pid> = self
                .pgrp_wake_order(pgid)
                .into_iter()
                .filter(|m| self.groups.get(m).is_some_and(|g| g.stopped))
                .collect();
            self.send_to_members(stopped, SigInfo::kernel(Signal::SIGHUP), None);
            self.kill_pgrp_info(pgid, SigInfo::kernel(Signal::SIGCONT));
        }
    }

    /// `do_notify_parent` for a dead process; returns whether it is to be reaped now.
    fn do_notify_parent(&mut self, tgid: Pid) -> bool {
        if self.config.host_signals {
            return false; // the host notifies the parent; reaping is observed
        }
        let Some(g) = self.groups.get(&tgid) else {
            return false;
        };
        let Some(status) = g.zombie else {
            return false;
        };
        let Some(parent) = g.parent else {
            return false;
        };
        let Some(pg) = self.groups.get(&parent) else {
            return true;
        };
        let mut sig = g.exit_signal;
        if sig != Some(Signal::SIGCHLD) && g.parent_exec_id != pg.exec_id {
            sig = Some(Signal::SIGCHLD);
        }
        let pact = pg.handlers.get(Signal::SIGCHLD);
        let mut autoreap = false;
        if sig == Some(Signal::SIGCHLD)
            && (pact.handler == Handler::Ignore || pact.has_flag(SA_NOCLDWAIT))
        {
            autoreap = true;
            if pact.handler == Handler::Ignore {
                sig = None;
            }
        }
        if let Some(sig) = sig {
            self.send_signal_info(
                SignalTarget::Process(parent),
                SigInfo {
                    signo: sig,
                    code: status.si_code(),
                    pid: tgid,
                    status: status.si_status(),
                },
            );
        }
        self.wake_parent(parent, tgid);
        autoreap
    }

    /// `__wake_up_parent`: threads of `parent` blocked in a wait that selects `child`
    /// can retry.
    pub(crate) fn wake_parent(&mut self, parent: Pid, child: Pid) {
        let Some(cg) = self.groups.get(&child) else {
            return;
        };
        let (pgid, parent_thread) = (cg.pgid, cg.parent_thread);
        self.wake_waiters(parent, child, pgid, parent_thread);
    }

    fn wake_waiters(&mut self, parent: Pid, child: Pid, pgid: Pid, parent_thread: Pid) {
        let threads = match self.groups.get(&parent) {
            Some(g) => g.threads.clone(),
            None => return,
        };
        for tid in threads {
            if let Some(t) = self.tasks.get(&tid) {
                // The waiter stays in its wait until its retry (which returns or
                // blocks again); a signal arriving meanwhile waits for that retry.
                let wakes = t
                    .wait_filter
                    .is_none_or(|f| f.wakes(tid, child, pgid, parent_thread));
                if t.blocked_on == Some(BlockOn::Wait) && wakes {
                    self.emit(Event::Wakeup {
                        tid,
                        on: BlockOn::Wait,
                    });
                }
            }
        }
    }

    /// `release_task`: a zombie disappears. `by` is the process that reaped it.
    pub(crate) fn release(&mut self, tgid: Pid, by: Option<Pid>) {
        let Some(g) = self.groups.remove(&tgid) else {
            return;
        };
        self.tasks.remove(&tgid);
        for t in &g.threads {
            self.tasks.remove(t);
        }
        if let Some(parent) = g.parent.and_then(|p| self.groups.get_mut(&p)) {
            parent.children.remove(&g.child_key);
        }
        self.detach_from_pgrp(tgid, g.pgid);
        self.detach_from_session(tgid, g.sid);
        self.emit(Event::Reaped { pid: tgid, by });
        // A parent blocked in wait for this child may now have none left (ECHILD).
        if let Some(parent) = g.parent {
            if by.is_none() {
                self.wake_waiters(parent, tgid, g.pgid, g.parent_thread);
            }
        }
    }

    /// `zap_pid_ns_processes`: init died; everything else is killed and released.
    fn zap_namespace(&mut self) {
        let others: Vec<Pid> = self
            .groups
            .keys()
            .copied()
            .filter(|&p| p != Kernel::INIT)
            .collect();
        for p in &others {
            self.send_signal_info(SignalTarget::Process(*p), SigInfo::kernel(Signal::SIGKILL));
        }
        if let Some(init) = self.groups.get_mut(&Kernel::INIT) {
            init.children.clear();
        }
        for p in others {
            if let Some(g) = self.groups.get_mut(&p) {
                g.parent = None;
            }
            self.release(p, None);
        }
    }
}
