//! The kernel: one PID namespace holding every task, thread group, process group,
//! session, terminal and open file, plus the event stream.
//!
//! The model is single-threaded and deterministic: each method is one system call (or
//! one outside stimulus) performed to completion. System calls name their caller by
//! thread ID. A caller that does not exist, or has exited, gets `ESRCH`; a caller whose
//! thread group is stopped cannot be making a system call, and gets `ERESTARTNOINTR`
//! (the call would be restarted once it runs again).
//!
//! Objects and the files that hold their rules: [`crate::task`], [`crate::thread_group`],
//! [`crate::process_group`], [`crate::session`], [`crate::tty`], [`crate::file`];
//! operations: [`crate::clone`] (fork/clone/exec), [`crate::exit`], [`crate::kill`]
//! (generation), [`crate::delivery`] (delivery, group stop/continue, SIGCHLD),
//! [`crate::wait`], [`crate::delivery_mode`].

use crate::errno::{Errno, SysResult};
use crate::event::Event;
use crate::file::{FileId, OpenFile};
use crate::pid::{Pid, PID_MAX_DEFAULT, RESERVED_PIDS};
use crate::process_group::ProcessGroup;
use crate::session::Session;
use crate::signal::SigSet;
use crate::task::Task;
use crate::thread_group::ThreadGroup;
use crate::tty::{Tty, TtyId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Settings that differ between the places a job-control kernel runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelConfig {
    /// Whether PID 1 is the *global* init. Linux skips children of the global init when
    /// deciding whether a process group is orphaned; a PID-namespace init (every
    /// sandbox, and the conformance harness) is not skipped. Default false.
    pub init_is_global: bool,
    /// Whether core-dumping signals set WCOREDUMP (false: as with RLIMIT_CORE 0).
    pub core_dumps: bool,
    /// Highest PID + 1.
    pub pid_max: Pid,
    /// Record events (on by default; benchmarks turn it off).
    pub record_events: bool,
    /// Host mode (see [`crate::host`]): signals are delivered by the host kernel; the
    /// sentry puts the ones it generates in the host outbox instead of acting on them.
    #[serde(default)]
    pub host_signals: bool,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            init_is_global: false,
            core_dumps: false,
            pid_max: PID_MAX_DEFAULT,
            record_events: true,
            host_signals: false,
        }
    }
}

/// The job-control kernel. `Clone` forks a whole scenario; [`Kernel::snapshot`] and
/// [`Kernel::restore`] move it through serde.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kernel {
    pub(crate) config: KernelConfig,
    pub(crate) tasks: BTreeMap<Pid, Task>,
    pub(crate) groups: BTreeMap<Pid, ThreadGroup>,
    pub(crate) pgrps: BTreeMap<Pid, ProcessGroup>,
    pub(crate) sessions: BTreeMap<Pid, Session>,
    pub(crate) ttys: BTreeMap<TtyId, Tty>,
    pub(crate) files: BTreeMap<FileId, OpenFile>,
    pub(crate) last_pid: Pid,
    pub(crate) next_file: u64,
    pub(crate) next_tty: u32,
    pub(crate) next_child_key: u64,
    pub(crate) events: Vec<Event>,
    /// Tasks that have not exited (kept so that the count is O(1)).
    pub(crate) live_tasks: usize,
    /// Next [`crate::task::Task::block_seq`].
    #[serde(default)]
    pub(crate) next_block_seq: u64,
    /// Open batches (see [`Kernel::begin_batch`]); zero between system calls.
    #[serde(skip)]
    pub(crate) batch_depth: u32,
    /// Groups with signals to act on at the end of the batch, in order.
    #[serde(skip)]
    pub(crate) dirty: Vec<Pid>,
    /// Groups killed during the batch whose threads exit at its end.
    #[serde(skip)]
    pub(crate) doomed: Vec<Pid>,
    /// Host mode: signals for the loader to send (see [`crate::host`]).
    #[serde(default)]
    pub(crate) host_outbox: Vec<crate::host::HostSignal>,
    /// See [`Kernel::reverse_batch_order`].
    #[serde(skip)]
    pub(crate) batch_order_reversed: bool,
    /// A thread marked as having a signal pending (`set_thread_flag(TIF_SIGPENDING)`)
    /// while the signal its own call raised is delivered: it dequeues first in its
    /// process (see [`Kernel::kill_pgrp_from_caller`]).
    #[serde(skip)]
    pub(crate) sigpending_caller: Option<Pid>,
}

/// A serialized kernel state.
pub type Snapshot = Kernel;

impl Kernel {
    /// A kernel with `init` (PID 1): leader of session 1 and process group 1, no
    /// controlling terminal, default dispositions. (In a real PID namespace init's
    /// session is outside the namespace until it calls setsid; a sandbox's init does.)
    pub fn new() -> Kernel {
        Kernel::with_config(KernelConfig::default())
    }

    pub fn with_config(config: KernelConfig) -> Kernel {
        let mut k = Kernel {
            config,
            tasks: BTreeMap::new(),
            groups: BTreeMap::new(),
            pgrps: BTreeMap::new(),
            sessions: BTreeMap::new(),
            ttys: BTreeMap::new(),
            files: BTreeMap::new(),
            last_pid: 0,
            next_file: 1,
            next_tty: 0,
            next_child_key: 0,
            events: Vec::new(),
            live_tasks: 1,
            next_block_seq: 0,
            batch_depth: 0,
            dirty: Vec::new(),
            doomed: Vec::new(),
            host_outbox: Vec::new(),
            batch_order_reversed: false,
            sigpending_caller: None,
        };
        let init = k.alloc_pid().unwrap_or(1);
        k.tasks.insert(init, Task::new(init, init, SigSet::EMPTY));
        k.groups.insert(
            init,
            ThreadGroup {
                session_leader: true,
                did_exec: true,
                privileged: true,
                ..ThreadGroup::new(init, init, init)
            },
        );
        k.pgrps.insert(
            init,
            ProcessGroup {
                pgid: init,
                sid: init,
                members: BTreeSet::from([init]),
                joined: BTreeMap::from([(init, 0)]),
                next_join: 1,
            },
        );
        k.sessions.insert(
            init,
            Session {
                sid: init,
                members: BTreeSet::from([init]),
            },
        );
        k
    }

    /// The PID of init.
    pub const INIT: Pid = 1;

    pub fn config(&self) -> &KernelConfig {
        &self.config
    }

    pub fn set_record_events(&mut self, on: bool) {
        self.config.record_events = on;
    }

    /// Takes every event recorded since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Events recorded and not yet taken.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub(crate) fn emit(&mut self, e: Event) {
        if self.config.record_events {
            tracing::trace!(event = ?e, "sentry event");
            self.events.push(e);
        }
    }

    /// Serializable copy of the whole state.
    pub fn snapshot(&self) -> Snapshot {
        self.clone()
    }

    /// A kernel from a snapshot.
    pub fn restore(snapshot: Snapshot) -> Kernel {
        snapshot
    }

    // ---- lookups -------------------------------------------------------------------

    pub fn task(&self, tid: Pid) -> Option<&Task> {
        self.tasks.get(&tid)
    }

    pub fn thread_group(&self, tgid: Pid) -> Option<&ThreadGroup> {
        self.groups.get(&tgid)
    }

    pub fn process_group(&self, pgid: Pid) -> Option<&ProcessGroup> {
        self.pgrps.get(&pgid)
    }

    pub fn session(&self, sid: Pid) -> Option<&Session> {
        self.sessions.get(&sid)
    }

    /// Thread-group IDs of every process (zombies included), ascending.
    pub fn processes(&self) -> Vec<Pid> {
        self.groups.keys().copied().collect()
    }

    /// Number of live tasks (threads that have not exited).
    pub fn live_task_count(&self) -> usize {
        self.live_tasks
    }

    pub(crate) fn group(&self, tgid: Pid) -> SysResult<&ThreadGroup> {
        self.groups.get(&tgid).ok_or(Errno::ESRCH)
    }

    pub(crate) fn group_mut(&mut self, tgid: Pid) -> SysResult<&mut ThreadGroup> {
        self.groups.get_mut(&tgid).ok_or(Errno::ESRCH)
    }

    pub(crate) fn task_mut(&mut self, tid: Pid) -> SysResult<&mut Task> {
        self.tasks.get_mut(&tid).ok_or(Errno::ESRCH)
    }

    /// The thread group of a caller that can run a system call now.
    pub(crate) fn caller_tgid(&self, tid: Pid) -> SysResult<Pid> {
        let t = self.tasks.get(&tid).ok_or(Errno::ESRCH)?;
        if t.has_exited() {
            return Err(Errno::ESRCH);
        }
        let g = self.group(t.tgid)?;
        if g.group_exit.is_some() || !g.is_alive() {
            return Err(Errno::ESRCH);
        }
        if g.stopped {
            return Err(Errno::ERESTARTNOINTR);
        }
        Ok(t.tgid)
    }

    /// Whether a PID number is in use as a task, process-group or session ID.
    pub(crate) fn pid_in_use(&self, pid: Pid) -> bool {
        self.tasks.contains_key(&pid)
            || self.pgrps.contains_key(&pid)
            || self.sessions.contains_key(&pid)
    }

    /// Cyclic allocation as `alloc_pid` does: the next free number after the last one
    /// handed out, wrapping to `RESERVED_PIDS` (or 1 before the first wrap) at pid_max.
    pub(crate) fn alloc_pid(&mut self) -> SysResult<Pid> {
        let max = self.config.pid_max.max(2);
        let min = if self.last_pid >= RESERVED_PIDS && max > RESERVED_PIDS + 1 {
            RESERVED_PIDS
        } else {
            1
        };
        let mut candidate = self.last_pid + 1;
        for _ in 0..max {
            if candidate >= max {
                candidate = min;
            }
            if !self.pid_in_use(candidate) {
                self.last_pid = candidate;
                return Ok(candidate);
            }
            candidate += 1;
        }
        Err(Errno::EAGAIN)
    }

    pub(crate) fn next_child_key(&mut self) -> u64 {
        self.next_child_key += 1;
        self.next_child_key
    }
}

impl Default for Kernel {
    fn default() -> Self {
        Kernel::new()
    }
}
