//! Host mode: the sentry as the job-control authority over real processes.
//!
//! In simulation the sentry is the whole truth. Over real processes (the loader) the
//! host kernel runs the programs and delivers their signals; the sentry decides the
//! job-control questions the host cannot answer for a *borrowed* terminal (whose
//! session is the user's, never the sandbox's): who the foreground process group is,
//! whether a read, write or termios change from the background must stop the caller,
//! and what a session leader's exit or a window change sends. The split:
//!
//! - [`KernelConfig::host_signals`](crate::KernelConfig::host_signals) is set: a signal the sentry *generates* is not
//!   queued or acted on in the model (the host will deliver it, running whatever
//!   handler the program really has); it is put in the host outbox
//!   ([`Kernel::take_host_signals`]) for the loader to send. A signal to a whole process
//!   group stays one entry ([`HostTarget::ProcessGroup`]), sent with one `kill(-pgid)`
//!   as Linux's `kill_pgrp` does.
//! - Signals the host kernel sends on its own are not generated at all in host mode:
//!   SIGCHLD and exit signals (`do_notify_parent`), and SIGHUP/SIGCONT to a newly
//!   orphaned process group with stopped members (`kill_orphaned_pgrp`) — the host's
//!   process tree, groups and sessions equal the sentry's, so the host finds the same
//!   orphans.
//! - Processes are created, exec'd, reparented, killed and reaped natively; the loader
//!   reports what it observes ([`Kernel::host_adopt`], [`Kernel::host_exited`],
//!   [`Kernel::host_reaped`], [`Kernel::host_set_parent`]) and the signal state the
//!   background rules read ([`Kernel::host_set_signal_state`]). A session leader's
//!   death is observed too: its terminal's foreground group then gets SIGHUP through
//!   the outbox, which the host cannot do for a terminal it does not know is the
//!   session's.
//! - Process groups and sessions change only through calls the sentry approved
//!   (setpgid, setsid), so the model's values are what the host executes.
//!
//! Process IDs are those of the sandbox's PID namespace throughout.

use crate::errno::{Errno, SysResult};
use crate::exit::ExitStatus;
use crate::kernel::Kernel;
use crate::pid::Pid;
use crate::process_group::ProcessGroup;
use crate::session::Session;
use crate::sigaction::{Handler, SigAction, SigHandlers};
use crate::signal::{SigSet, Signal};
use crate::task::Task;
use crate::thread_group::ThreadGroup;
use crate::tty::TtyId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Who a host signal goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostTarget {
    /// A process (`kill(pid)`).
    Process(Pid),
    /// One thread (`tgkill`).
    Thread(Pid),
    /// Every member of a process group (`kill(-pgid)`).
    ProcessGroup(Pid),
}

/// A signal the loader must send on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSignal {
    pub target: HostTarget,
    pub sig: Signal,
}

/// What the loader observed about a process it reports to the sentry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostProcess {
    pub pid: Pid,
    /// The parent process (None only for init).
    pub parent: Option<Pid>,
    pub pgid: Pid,
    pub sid: Pid,
    /// The process has exec'd since its fork (`PF_FORKNOEXEC` clear).
    pub did_exec: bool,
}

impl Kernel {
    /// Whether the kernel runs in host mode.
    pub fn host_mode(&self) -> bool {
        self.config.host_signals
    }

    /// Takes the signals the loader has to send on the host, in generation order.
    pub fn take_host_signals(&mut self) -> Vec<HostSignal> {
        std::mem::take(&mut self.host_outbox)
    }

    /// Whether signals wait for the loader ([`Kernel::take_host_signals`]).
    pub fn has_host_signals(&self) -> bool {
        !self.host_outbox.is_empty()
    }

    pub(crate) fn host_send(&mut self, target: HostTarget, sig: Signal) {
        tracing::debug!(?target, ?sig, "sentry: host signal");
        self.host_outbox.push(HostSignal { target, sig });
    }

    /// Adds a process the sentry has not seen (it was forked natively). Its parent must
    /// be known already (adopt ancestors first). Its process group and session are
    /// created if the model has none (they were inherited from before the model
    /// existed); its controlling terminal is its parent's when the parent is known and
    /// of the same session (fork copies it), else its session's, if the session has
    /// one.
    /// Adopting a known PID is `EEXIST`.
    pub fn host_adopt(&mut self, p: HostProcess) -> SysResult<()> {
        if self.groups.contains_key(&p.pid) || self.tasks.contains_key(&p.pid) {
            return Err(Errno::EEXIST);
        }
        let (parent_thread, handlers, parent_exec_id, privileged) = match p.parent {
            Some(parent) => {
                let pg = self.group(parent)?;
                (
                    pg.threads.first().copied().unwrap_or(parent),
                    pg.handlers.clone(),
                    pg.exec_id,
                    pg.privileged,
                )
            }
            None => (0, SigHandlers::default(), 0, true),
        };
        // fork copies the parent's controlling terminal: a known parent of the same
        // session gives its own (none after its TIOCNOTTY); otherwise the session's.
        let tty = match p.parent.and_then(|pp| self.groups.get(&pp)) {
            Some(pg) if pg.sid == p.sid => pg.tty,
            _ => self
                .ttys
                .values()
                .find(|t| t.session == Some(p.sid))
                .map(|t| t.id),
        };
        let key = self.next_child_key();
        self.tasks
            .insert(p.pid, Task::new(p.pid, p.pid, SigSet::EMPTY));
        self.live_tasks += 1;
        self.groups.insert(
            p.pid,
            ThreadGroup {
                parent: p.parent,
                parent_thread,
                child_key: key,
                session_leader: p.pid == p.sid,
                tty,
                exit_signal: Some(Signal::SIGCHLD),
                did_exec: p.did_exec,
                parent_exec_id,
                privileged,
                handlers,
                ..ThreadGroup::new(p.pid, p.pgid, p.sid)
            },
        );
        if let Some(parent) = p.parent {
            self.group_mut(parent)?.children.insert(key, p.pid);
        }
        self.sessions
            .entry(p.sid)
            .or_insert_with(|| Session {
                sid: p.sid,
                members: BTreeSet::new(),
            })
            .members
            .insert(p.pid);
        self.pgrps
            .entry(p.pgid)
            .or_insert_with(|| ProcessGroup::new(p.pgid, p.sid))
            .join(p.pid);
        Ok(())
    }

    /// Adds a thread `tid` of the known process `tgid`.
    pub fn host_adopt_thread(&mut self, tgid: Pid, tid: Pid) -> SysResult<()> {
        if self.tasks.contains_key(&tid) {
            return Err(Errno::EEXIST);
        }
        let g = self.group_mut(tgid)?;
        if !g.is_alive() {
            return Err(Errno::ESRCH);
        }
        g.threads.push(tid);
        self.tasks.insert(tid, Task::new(tid, tgid, SigSet::EMPTY));
        self.live_tasks += 1;
        Ok(())
    }

    /// A thread of a live process has exited natively (the process lives on).
    pub fn host_thread_exited(&mut self, tid: Pid) -> SysResult<()> {
        let task = self.tasks.get(&tid).ok_or(Errno::ESRCH)?;
        let tgid = task.tgid;
        if tid == tgid || task.has_exited() {
            return Err(Errno::EINVAL);
        }
        self.tasks.remove(&tid);
        self.live_tasks -= 1;
        self.group_mut(tgid)?.threads.retain(|&t| t != tid);
        Ok(())
    }

    /// The process died on the host (it is a zombie there now). Runs the model's side
    /// of `do_exit`: a session leader's terminal is disassociated (a pty's foreground
    /// group gets SIGHUP, through the outbox), its children go to their new reaper
    /// (corrected by [`Kernel::host_set_parent`] if the host chose otherwise).
    pub fn host_exited(&mut self, tgid: Pid, status: ExitStatus) -> SysResult<()> {
        let g = self.group(tgid)?;
        if !g.is_alive() {
            return Ok(());
        }
        self.do_group_exit(tgid, status);
        Ok(())
    }

    /// The zombie `tgid` was reaped on the host (it no longer exists there).
    pub fn host_reaped(&mut self, tgid: Pid) -> SysResult<()> {
        let g = self.group(tgid)?;
        if g.is_alive() {
            return Err(Errno::EBUSY);
        }
        self.release(tgid, None);
        Ok(())
    }

    /// The host's parent of `tgid` is `parent` (a reparent the model did not predict,
    /// e.g. to a subreaper it did not know of).
    pub fn host_set_parent(&mut self, tgid: Pid, parent: Pid) -> SysResult<()> {
        self.group(parent)?;
        let g = self.group(tgid)?;
        let (old, key) = (g.parent, g.child_key);
        if old == Some(parent) {
            return Ok(());
        }
        if let Some(old) = old.and_then(|o| self.groups.get_mut(&o)) {
            old.children.remove(&key);
        }
        let new_key = self.next_child_key();
        let parent_thread = self
            .groups
            .get(&parent)
            .and_then(|p| p.threads.first().copied())
            .unwrap_or(parent);
        let g = self.group_mut(tgid)?;
        g.parent = Some(parent);
        g.parent_thread = parent_thread;
        g.child_key = new_key;
        self.group_mut(parent)?.children.insert(new_key, tgid);
        Ok(())
    }

    /// The host shows that `tgid` has called execve since it was adopted (exec is not
    /// notified): its parent may no longer change its process group (EACCES). Its
    /// threads are the host's business (they are adopted and dropped as the host shows
    /// them), and so are its dispositions (read from the host before each decision).
    pub fn host_exec_observed(&mut self, tgid: Pid) -> SysResult<()> {
        self.group_mut(tgid)?.did_exec = true;
        Ok(())
    }

    /// The host shows `tty` as the controlling terminal of `tgid`, a member of the
    /// session that holds it (an acquisition the model did not see, e.g. an open()
    /// of an owned pty by the session leader, inherited by children adopted before
    /// the model learnt of it). EINVAL if `tty` is not the session's.
    pub fn host_set_tty(&mut self, tgid: Pid, tty: TtyId) -> SysResult<()> {
        let sid = self.group(tgid)?.sid;
        if self.tty_ref(tty)?.session != Some(sid) {
            return Err(Errno::EINVAL);
        }
        self.group_mut(tgid)?.tty = Some(tty);
        Ok(())
    }

    /// The thread's current signal mask and its process's ignored signals, as the host
    /// shows them (`SigBlk`, `SigIgn` of /proc/PID/status). The background rules read
    /// these.
    pub fn host_set_signal_state(
        &mut self,
        tid: Pid,
        blocked: SigSet,
        ignored: SigSet,
    ) -> SysResult<()> {
        let task = self.task_mut(tid)?;
        task.blocked = blocked.without_unblockable();
        let tgid = task.tgid;
        let g = self.group_mut(tgid)?;
        for sig in Signal::all() {
            let cur = g.handlers.get(sig);
            if ignored.contains(sig) {
                if cur.handler != Handler::Ignore {
                    g.handlers.set(sig, SigAction::ignore());
                }
            } else if cur.handler == Handler::Ignore {
                g.handlers.set(sig, SigAction::default_action());
            }
        }
        Ok(())
    }

    /// Every live process's (pid, pgid, sid), for comparing with the host.
    pub fn host_view(&self) -> Vec<(Pid, Pid, Pid)> {
        self.groups
            .values()
            .filter(|g| g.is_alive())
            .map(|g| (g.tgid, g.pgid, g.sid))
            .collect()
    }
}
