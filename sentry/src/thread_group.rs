//! A thread group: a process (`struct signal_struct` plus the group-wide parts of
//! `task_struct`).
//!
//! Linux rules kept in this object:
//! - A process's parent, children, process group, session, controlling terminal,
//!   handler table and shared pending set are per thread group.
//! - Job-control stop state is per group: `stopped` is `SIGNAL_STOP_STOPPED`,
//!   `stop_report` is the `group_exit_code` a WUNTRACED waiter consumes once, and
//!   `continued_report` is `SIGNAL_STOP_CONTINUED` for a WCONTINUED waiter.
//! - A group is alive while any thread is; then it is a zombie until reaped.

use crate::exit::ExitStatus;
use crate::file::FdTable;
use crate::pending::SigPending;
use crate::pid::Pid;
use crate::sigaction::SigHandlers;
use crate::signal::Signal;
use crate::tty::TtyId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadGroup {
    pub tgid: Pid,
    /// Live (not exited) threads in creation order; the leader (tid == tgid) first
    /// while it lives.
    pub threads: Vec<Pid>,
    /// The parent process (`real_parent`'s group); None for init.
    pub parent: Option<Pid>,
    /// The parent thread (`real_parent` itself), for `__WNOTHREAD`.
    pub parent_thread: Pid,
    /// Children in the order they joined (Linux's `children` list order).
    pub children: BTreeMap<u64, Pid>,
    /// This process's key in its parent's `children`.
    pub child_key: u64,
    pub pgid: Pid,
    pub sid: Pid,
    /// `signal->leader`: this process created its session.
    pub session_leader: bool,
    /// `signal->tty`: the controlling terminal.
    pub tty: Option<TtyId>,
    /// `signal->tty_old_pgrp`: foreground group recorded at a hangup, signalled when the
    /// session leader later exits without a terminal.
    pub tty_old_pgrp: Option<Pid>,
    /// The signal sent to the parent on death (None: `exit_signal` 0, no signal).
    pub exit_signal: Option<Signal>,
    /// Cleared by execve (`PF_FORKNOEXEC`): setpgid by the parent fails with EACCES once set.
    pub did_exec: bool,
    /// `self_exec_id`, bumped by each execve.
    pub exec_id: u64,
    /// The parent's `self_exec_id` when this process was created (`parent_exec_id`).
    pub parent_exec_id: u64,
    /// PR_SET_CHILD_SUBREAPER.
    pub subreaper: bool,
    /// CAP_SYS_ADMIN (TIOCSCTTY steal).
    pub privileged: bool,
    pub handlers: SigHandlers,
    pub shared_pending: SigPending,
    /// `SIGNAL_STOP_STOPPED`.
    pub stopped: bool,
    /// The stop signal not yet reported to a WUNTRACED/WSTOPPED waiter.
    pub stop_report: Option<Signal>,
    /// `SIGNAL_STOP_CONTINUED`, not yet reported to a WCONTINUED waiter.
    pub continued_report: bool,
    /// `SIGNAL_GROUP_EXIT`'s `group_exit_code`, once the group is exiting as a whole.
    pub group_exit: Option<ExitStatus>,
    /// The final status once every thread has exited (zombie).
    pub zombie: Option<ExitStatus>,
    pub fds: FdTable,
}

impl ThreadGroup {
    /// A process with one thread (`tgid`) in group `pgid` of session `sid`, and every
    /// other field in its initial state: no parent, children, terminal or exit signal,
    /// default handlers, nothing pending, running, no descriptors. Creators set what
    /// differs (see `clone.rs`, the host's adoption in `host.rs`, init in `kernel.rs`).
    pub(crate) fn new(tgid: Pid, pgid: Pid, sid: Pid) -> ThreadGroup {
        ThreadGroup {
            tgid,
            threads: vec![tgid],
            parent: None,
            parent_thread: 0,
            children: BTreeMap::new(),
            child_key: 0,
            pgid,
            sid,
            session_leader: false,
            tty: None,
            tty_old_pgrp: None,
            exit_signal: None,
            did_exec: false,
            exec_id: 0,
            parent_exec_id: 0,
            subreaper: false,
            privileged: false,
            handlers: SigHandlers::default(),
            shared_pending: SigPending::default(),
            stopped: false,
            stop_report: None,
            continued_report: false,
            group_exit: None,
            zombie: None,
            fds: FdTable::default(),
        }
    }

    /// Whether at least one thread is alive.
    pub fn is_alive(&self) -> bool {
        self.zombie.is_none() && !self.threads.is_empty()
    }

    pub fn is_zombie(&self) -> bool {
        self.zombie.is_some()
    }
}
