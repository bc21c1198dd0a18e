//! Creating tasks and replacing programs (Linux `kernel/fork.c`, `fs/exec.c`).
//!
//! Rules:
//! - A new process gets a new PID, a copy of its creator's handler table (or, with
//!   CLONE_CLEAR_SIGHAND, caught signals reset to SIG_DFL and ignored ones kept), the
//!   creating thread's blocked mask, empty pending sets, and its creator's process
//!   group, session, controlling terminal and descriptors.
//! - Its parent is the creator, or the creator's parent with CLONE_PARENT (which init
//!   may not use: EINVAL); its exit signal is the one asked for, or with CLONE_PARENT
//!   the creator's own.
//! - A new thread joins the creator's process; threads have no exit signal and are
//!   released as soon as they exit.
//! - execve: every other thread exits and the caller takes the leader's TID; caught
//!   signals reset to SIG_DFL, ignored ones stay ignored, flags and masks are cleared;
//!   blocked mask and pending signals are kept; close-on-exec descriptors are closed;
//!   the process is marked as having exec'd (setpgid from its parent now fails with
//!   EACCES).

use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;
use crate::pid::Pid;
use crate::signal::Signal;
use crate::task::Task;
use crate::thread_group::ThreadGroup;
use serde::{Deserialize, Serialize};

/// What `clone` creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneArgs {
    /// CLONE_THREAD|CLONE_SIGHAND|CLONE_VM: a thread in the caller's process.
    pub thread: bool,
    /// CLONE_PARENT: the new process is the caller's sibling.
    pub parent: bool,
    /// CLONE_CLEAR_SIGHAND.
    pub clear_sighand: bool,
    /// The exit signal (fork: SIGCHLD; None: 0). Ignored for threads.
    pub exit_signal: Option<Signal>,
}

impl CloneArgs {
    /// `fork()`.
    pub const FORK: CloneArgs = CloneArgs {
        thread: false,
        parent: false,
        clear_sighand: false,
        exit_signal: Some(Signal::SIGCHLD),
    };

    /// `pthread_create()`.
    pub const THREAD: CloneArgs = CloneArgs {
        thread: true,
        parent: false,
        clear_sighand: false,
        exit_signal: None,
    };
}

impl Kernel {
    /// `fork()`: returns the child's PID.
    pub fn fork(&mut self, tid: Pid) -> SysResult<Pid> {
        self.clone_task(tid, CloneArgs::FORK)
    }

    /// A new thread in the caller's process; returns its TID.
    pub fn spawn_thread(&mut self, tid: Pid) -> SysResult<Pid> {
        self.clone_task(tid, CloneArgs::THREAD)
    }

    /// `clone`/`clone3`.
    pub fn clone_task(&mut self, tid: Pid, args: CloneArgs) -> SysResult<Pid> {
        let tgid = self.caller_tgid(tid)?;
        if args.thread && args.clear_sighand {
            return Err(Errno::EINVAL);
        }
        if args.parent && tgid == Kernel::INIT {
            return Err(Errno::EINVAL);
        }
        let blocked = self.tasks.get(&tid).ok_or(Errno::ESRCH)?.blocked;
        let new = self.alloc_pid()?;
        if args.thread {
            self.tasks.insert(new, Task::new(new, tgid, blocked));
            self.live_tasks += 1;
            self.group_mut(tgid)?.threads.push(new);
            return Ok(new);
        }
        let creator = self.group(tgid)?;
        let (parent, parent_thread, exit_signal) = if args.parent {
            let parent = creator.parent.ok_or(Errno::EINVAL)?;
            (parent, creator.parent_thread, creator.exit_signal)
        } else {
            (tgid, tid, args.exit_signal)
        };
        let mut handlers = creator.handlers.clone();
        if args.clear_sighand {
            handlers.reset_for_exec();
        }
        let (pgid, sid, tty, privileged) =
            (creator.pgid, creator.sid, creator.tty, creator.privileged);
        let parent_exec_id = self.group(parent)?.exec_id;
        let fds = self.fork_fds(tgid);
        let key = self.next_child_key();
        self.tasks.insert(new, Task::new(new, new, blocked));
        self.live_tasks += 1;
        self.groups.insert(
            new,
            ThreadGroup {
                parent: Some(parent),
                parent_thread,
                child_key: key,
                tty,
                exit_signal,
                parent_exec_id,
                privileged,
                handlers,
                fds,
                ..ThreadGroup::new(new, pgid, sid)
            },
        );
        self.group_mut(parent)?.children.insert(key, new);
        if let Some(pg) = self.pgrps.get_mut(&pgid) {
            pg.join(new);
        }
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.members.insert(new);
        }
        Ok(new)
    }

    /// `execve()` succeeding in thread `tid`. Returns the caller's TID afterwards (the
    /// thread-group ID: a non-leader that execs takes over the leader's TID).
    pub fn execve(&mut self, tid: Pid) -> SysResult<Pid> {
        let tgid = self.caller_tgid(tid)?;
        // de_thread: every other thread goes away silently.
        let others: Vec<Pid> = self
            .group(tgid)?
            .threads
            .iter()
            .copied()
            .filter(|&t| t != tid)
            .collect();
        for t in others {
            if self.tasks.remove(&t).is_some() {
                self.live_tasks -= 1;
            }
        }
        if tid != tgid {
            let mut task = self.tasks.remove(&tid).ok_or(Errno::ESRCH)?;
            task.tid = tgid;
            self.tasks.insert(tgid, task);
        }
        // Children of the threads that went away now belong to the one thread left.
        let children: Vec<Pid> = self.group(tgid)?.children.values().copied().collect();
        for c in children {
            if let Some(cg) = self.groups.get_mut(&c) {
                cg.parent_thread = tgid;
            }
        }
        let g = self.group_mut(tgid)?;
        g.threads = vec![tgid];
        g.handlers.reset_for_exec();
        g.did_exec = true;
        g.exec_id += 1;
        self.close_cloexec_fds(tgid);
        Ok(tgid)
    }

    /// `prctl(PR_SET_CHILD_SUBREAPER, on)`.
    pub fn set_child_subreaper(&mut self, tid: Pid, on: bool) -> SysResult<()> {
        let tgid = self.caller_tgid(tid)?;
        self.group_mut(tgid)?.subreaper = on;
        Ok(())
    }

    /// Whether the process may steal terminals (CAP_SYS_ADMIN). Processes inherit it.
    pub fn set_privileged(&mut self, tgid: Pid, on: bool) -> SysResult<()> {
        self.group_mut(tgid)?.privileged = on;
        Ok(())
    }
}
