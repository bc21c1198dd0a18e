//! A task: one thread of execution (`struct task_struct`'s per-thread half).
//!
//! Per-thread state is the blocked mask, the private pending set, the thread's own exit
//! code and what it is blocked on. Everything shared by a process lives in its
//! [`crate::thread_group::ThreadGroup`].

use crate::event::BlockOn;
use crate::exit::ExitStatus;
use crate::pending::SigPending;
use crate::pid::Pid;
use crate::signal::SigSet;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub tid: Pid,
    pub tgid: Pid,
    /// `sigprocmask` mask (never contains SIGKILL or SIGSTOP).
    pub blocked: SigSet,
    /// Signals aimed at this thread (tkill/tgkill).
    pub pending: SigPending,
    /// The thread's exit status, once it has exited.
    pub exit_status: Option<ExitStatus>,
    /// A blocking system call this thread is waiting in.
    pub blocked_on: Option<BlockOn>,
    /// A deliverable signal woke the thread in its blocking call: the call's retry
    /// completes if it can, else fails with `ERESTARTSYS` and the signal is delivered.
    #[serde(default)]
    pub signal_wakeup: bool,
    /// When the thread started waiting in `blocked_on` (a kernel-wide sequence number):
    /// readers of one terminal are served in this order.
    #[serde(default)]
    pub block_seq: u64,
    /// A handler frame set up before the thread stopped: the handler runs after
    /// SIGCONT (see [`crate::delivery`]).
    #[serde(default)]
    pub frame: Option<crate::delivery::Frame>,
    /// While blocked in wait: the children whose changes wake it.
    #[serde(default)]
    pub wait_filter: Option<crate::wait::WaitFilter>,
}

impl Task {
    pub(crate) fn new(tid: Pid, tgid: Pid, blocked: SigSet) -> Task {
        Task {
            tid,
            tgid,
            blocked,
            pending: SigPending::default(),
            exit_status: None,
            blocked_on: None,
            signal_wakeup: false,
            block_seq: 0,
            frame: None,
            wait_filter: None,
        }
    }

    /// Whether the thread has exited (a thread-group leader stays as a zombie task
    /// until its whole group is gone).
    pub fn has_exited(&self) -> bool {
        self.exit_status.is_some()
    }
}
