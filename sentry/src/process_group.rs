//! Process groups and the system calls that move processes between them
//! (`setpgid`, `getpgid`, `getpgrp`).
//!
//! A process group lives while any process (zombies included, until reaped) has it as
//! its process group. It is *orphaned* when no member has a parent that is in a
//! different process group of the same session (POSIX; Linux's
//! `will_become_orphaned_pgrp`, which skips exited members and, in the initial PID
//! namespace only, children of init).

use crate::errno::{Errno, SysResult};
use crate::kernel::Kernel;
use crate::pid::Pid;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessGroup {
    pub pgid: Pid,
    pub sid: Pid,
    /// Thread-group IDs of the members.
    pub members: BTreeSet<Pid>,
    /// When each member joined (fork or setpgid; larger is later). Linux adds a
    /// process to the head of its group's PID list, so `kill_pgrp` reaches the most
    /// recent member first: the order in which the members are woken, act and die.
    #[serde(default)]
    pub joined: BTreeMap<Pid, u64>,
    /// The next value of `joined`.
    #[serde(default)]
    pub next_join: u64,
}

impl ProcessGroup {
    pub(crate) fn new(pgid: Pid, sid: Pid) -> ProcessGroup {
        ProcessGroup {
            pgid,
            sid,
            members: BTreeSet::new(),
            joined: BTreeMap::new(),
            next_join: 0,
        }
    }

    pub(crate) fn join(&mut self, tgid: Pid) {
        if self.members.insert(tgid) {
            self.joined.insert(tgid, self.next_join);
            self.next_join += 1;
        }
    }

    pub(crate) fn leave(&mut self, tgid: Pid) {
        self.members.remove(&tgid);
        self.joined.remove(&tgid);
    }
}

impl Kernel {
    /// `setpgid(pid, pgid)` called by thread `tid` (kernel/sys.c):
    /// - `pid` 0 means the caller, `pgid` 0 means `pid`; negative `pgid` → EINVAL.
    /// - `pid` must name a task (ESRCH) that is a thread-group leader (EINVAL).
    /// - It must be the caller or one of its children (ESRCH); a child must be in the
    ///   caller's session (EPERM) and must not have exec'd (EACCES).
    /// - A session leader cannot change its group (EPERM).
    /// - Joining another group requires that group to exist in the caller's session
    ///   (EPERM).
    pub fn setpgid(&mut self, tid: Pid, pid: Pid, pgid: Pid) -> SysResult<()> {
        let caller = self.caller_tgid(tid)?;
        let pid = if pid == 0 { caller } else { pid };
        let pgid = if pgid == 0 { pid } else { pgid };
        if pgid < 0 {
            return Err(Errno::EINVAL);
        }
        let target_task = self.tasks.get(&pid).ok_or(Errno::ESRCH)?;
        if target_task.tgid != pid {
            return Err(Errno::EINVAL);
        }
        let caller_sid = self.group(caller)?.sid;
        let target = self.group(pid)?;
        if target.parent == Some(caller) {
            if target.sid != caller_sid {
                return Err(Errno::EPERM);
            }
            if target.did_exec {
                return Err(Errno::EACCES);
            }
        } else if pid != caller {
            return Err(Errno::ESRCH);
        }
        if target.session_leader {
            return Err(Errno::EPERM);
        }
        if pgid != pid {
            match self.pgrps.get(&pgid) {
                Some(g) if g.sid == caller_sid => {}
                _ => return Err(Errno::EPERM),
            }
        }
        if target.pgid != pgid {
            let sid = target.sid;
            self.change_pgrp(pid, pgid, sid);
        }
        Ok(())
    }

    /// `getpgid(pid)`: 0 means the caller; ESRCH if no such task.
    pub fn getpgid(&self, tid: Pid, pid: Pid) -> SysResult<Pid> {
        let tgid = if pid == 0 {
            self.caller_tgid(tid)?
        } else {
            self.tasks.get(&pid).ok_or(Errno::ESRCH)?.tgid
        };
        Ok(self.group(tgid)?.pgid)
    }

    /// `getpgrp()`.
    pub fn getpgrp(&self, tid: Pid) -> SysResult<Pid> {
        self.getpgid(tid, 0)
    }

    /// Moves process `tgid` into group `pgid` of session `sid`, creating the group if
    /// needed and destroying the old one if it empties. Orphan status of both groups
    /// may change; Linux does not signal on setpgid, so neither does the model.
    pub(crate) fn change_pgrp(&mut self, tgid: Pid, pgid: Pid, sid: Pid) {
        let Some(g) = self.groups.get_mut(&tgid) else {
            return;
        };
        let old = std::mem::replace(&mut g.pgid, pgid);
        self.detach_from_pgrp(tgid, old);
        let pg = self
            .pgrps
            .entry(pgid)
            .or_insert_with(|| ProcessGroup::new(pgid, sid));
        pg.join(tgid);
    }

    pub(crate) fn detach_from_pgrp(&mut self, tgid: Pid, pgid: Pid) {
        if let Some(pg) = self.pgrps.get_mut(&pgid) {
            pg.leave(tgid);
            if pg.members.is_empty() {
                self.pgrps.remove(&pgid);
            }
        }
    }

    /// `will_become_orphaned_pgrp(pgrp, ignored)`: true when no member other than
    /// `ignored` (and no exited member) has a parent in a different group of the same
    /// session.
    pub(crate) fn will_become_orphaned_pgrp(&self, pgid: Pid, ignored: Option<Pid>) -> bool {
        let Some(pg) = self.pgrps.get(&pgid) else {
            return true;
        };
        for &m in &pg.members {
            if Some(m) == ignored {
                continue;
            }
            let Some(g) = self.groups.get(&m) else {
                continue;
            };
            if !g.is_alive() {
                continue;
            }
            let Some(parent) = g.parent.and_then(|p| self.groups.get(&p)) else {
                continue;
            };
            if self.config.init_is_global && parent.tgid == 1 {
                continue;
            }
            if parent.pgid != pgid && parent.sid == g.sid {
                return false;
            }
        }
        true
    }

    /// Whether process group `pgid` is orphaned now.
    pub fn is_orphaned_pgrp(&self, pgid: Pid) -> bool {
        self.will_become_orphaned_pgrp(pgid, None)
    }

    /// `has_stopped_jobs`.
    pub(crate) fn has_stopped_jobs(&self, pgid: Pid) -> bool {
        self.pgrps.get(&pgid).is_some_and(|pg| {
            pg.members
                .iter()
                .any(|m| self.groups.get(m).is_some_and(|g| g.stopped))
        })
    }

    /// Members of a process group (thread-group IDs), ascending.
    pub fn pgrp_members(&self, pgid: Pid) -> Vec<Pid> {
        self.pgrps
            .get(&pgid)
            .map(|pg| pg.members.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Members of a process group in the order `kill_pgrp` reaches them: the most
    /// recent to join first (members without a join time, as in a snapshot taken
    /// before it was kept, last, ascending).
    pub(crate) fn pgrp_wake_order(&self, pgid: Pid) -> Vec<Pid> {
        let Some(pg) = self.pgrps.get(&pgid) else {
            return Vec::new();
        };
        let mut order: Vec<Pid> = pg.members.iter().copied().collect();
        order.sort_by_key(|m| std::cmp::Reverse(pg.joined.get(m).copied()));
        order
    }
}
