//! `wait4` and `waitid` (Linux `kernel/exit.c`: `do_wait`, `wait_consider_task`).
//!
//! Rules:
//! - Children are considered in the order they joined the parent (fork order, then
//!   reparented ones); with `__WNOTHREAD` only children of the calling thread.
//! - Selection: a PID, a process group (`-pgid`, or 0 for the caller's), or any child.
//!   `__WCLONE` selects children whose exit signal is not SIGCHLD, the default selects
//!   the others, `__WALL` selects both.
//! - A dead child (zombie) is reported with WEXITED (always on for wait4) and reaped
//!   unless WNOWAIT; a zombie is not waitable without WEXITED.
//! - A stopped child is reported once with WUNTRACED/WSTOPPED (status `sig<<8|0x7f`,
//!   CLD_STOPPED), a continued one once with WCONTINUED (status 0xffff, CLD_CONTINUED);
//!   WNOWAIT leaves the report for the next waiter.
//! - No selected child at all: ECHILD. Selected children but no event: 0 with WNOHANG,
//!   else the caller blocks (the model answers `WouldBlock` and emits
//!   [`crate::event::Event::Wakeup`] when a child changes state or a signal arrives).
//!   A retry that finds a child to report returns it even if a signal is pending (the
//!   waiter's SIGCHLD handler runs after the wait returns); one that finds nothing
//!   delivers the signal and fails with `ERESTARTSYS` (EINTR after a handler without
//!   SA_RESTART, else the wait is restarted).
//! - Invalid options: EINVAL. `waitid` needs one of WEXITED/WSTOPPED/WCONTINUED;
//!   P_PID needs a positive ID; P_PGID a non-negative one (0: the caller's group).

use crate::errno::{Errno, SysResult};
use crate::event::BlockOn;
use crate::exit::ExitStatus;
use crate::kernel::Kernel;
use crate::pending::SiCode;
use crate::pid::Pid;
use crate::signal::Signal;
use crate::tty::Blocking;
use serde::{Deserialize, Serialize};

pub const WNOHANG: i32 = 0x0000_0001;
pub const WUNTRACED: i32 = 0x0000_0002;
pub const WSTOPPED: i32 = WUNTRACED;
pub const WEXITED: i32 = 0x0000_0004;
pub const WCONTINUED: i32 = 0x0000_0008;
pub const WNOWAIT: i32 = 0x0100_0000;
pub const __WNOTHREAD: i32 = 0x2000_0000;
pub const __WALL: i32 = 0x4000_0000;
pub const __WCLONE: i32 = 0x8000_0000_u32 as i32;

/// `waitid`'s `idtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdType {
    /// P_ALL.
    All,
    /// P_PID.
    Pid,
    /// P_PGID.
    Pgid,
}

/// Which children a wait selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Selector {
    Any,
    Pid(Pid),
    Pgid(Pid),
}

/// Which children a blocked waiter is waiting for: only their changes wake it
/// (Linux's `child_wait_callback`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitFilter {
    pub(crate) sel: Selector,
    pub(crate) nothread: bool,
}

impl WaitFilter {
    /// Whether a change of child `pid` (in group `pgid`, forked by thread
    /// `parent_thread`) wakes waiter `waiter`.
    pub(crate) fn wakes(&self, waiter: Pid, pid: Pid, pgid: Pid, parent_thread: Pid) -> bool {
        let selected = match self.sel {
            Selector::Any => true,
            Selector::Pid(p) => p == pid,
            Selector::Pgid(g) => g == pgid,
        };
        selected && (!self.nothread || parent_thread == waiter)
    }
}

/// What a successful wait reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitInfo {
    /// The child.
    pub pid: Pid,
    /// CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_STOPPED or CLD_CONTINUED.
    pub code: SiCode,
    /// `si_status`: exit code or signal number.
    pub status: i32,
    /// The `wait4` status word.
    pub wait_status: i32,
}

impl WaitInfo {
    fn exited(pid: Pid, s: ExitStatus) -> WaitInfo {
        WaitInfo {
            pid,
            code: s.si_code(),
            status: s.si_status(),
            wait_status: s.wait_status(),
        }
    }
}

/// Decoders for a `wait4` status word (the `<sys/wait.h>` macros).
pub mod status {
    pub fn exited(s: i32) -> bool {
        s & 0x7f == 0
    }
    pub fn exit_status(s: i32) -> i32 {
        (s >> 8) & 0xff
    }
    pub fn signaled(s: i32) -> bool {
        ((s & 0x7f) + 1) as i8 >> 1 > 0
    }
    pub fn term_sig(s: i32) -> i32 {
        s & 0x7f
    }
    pub fn core_dump(s: i32) -> bool {
        s & 0x80 != 0
    }
    pub fn stopped(s: i32) -> bool {
        s & 0xff == 0x7f
    }
    pub fn stop_sig(s: i32) -> i32 {
        (s >> 8) & 0xff
    }
    pub fn continued(s: i32) -> bool {
        s == 0xffff
    }
}

impl Kernel {
    /// `wait4(pid, options)`. `Ready(None)` is the 0 a WNOHANG call returns.
    pub fn wait4(
        &mut self,
        tid: Pid,
        pid: Pid,
        options: i32,
    ) -> SysResult<Blocking<Option<WaitInfo>>> {
        if options & !(WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL) != 0 {
            return Err(Errno::EINVAL);
        }
        if pid == i32::MIN {
            return Err(Errno::ESRCH);
        }
        let tgid = self.caller_tgid(tid)?;
        let sel = match pid {
            -1 => Selector::Any,
            p if p < 0 => Selector::Pgid(-p),
            0 => Selector::Pgid(self.group(tgid)?.pgid),
            p => Selector::Pid(p),
        };
        self.do_wait(tid, tgid, sel, options | WEXITED)
    }

    /// `waitid(idtype, id, options)`. `Ready(None)` is WNOHANG's "no child changed
    /// state" (return 0 with `si_pid` 0).
    pub fn waitid(
        &mut self,
        tid: Pid,
        idtype: IdType,
        id: Pid,
        options: i32,
    ) -> SysResult<Blocking<Option<WaitInfo>>> {
        let allowed =
            WNOHANG | WNOWAIT | WEXITED | WSTOPPED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL;
        if options & !allowed != 0 || options & (WEXITED | WSTOPPED | WCONTINUED) == 0 {
            return Err(Errno::EINVAL);
        }
        let tgid = self.caller_tgid(tid)?;
        let sel = match idtype {
            IdType::All => Selector::Any,
            IdType::Pid if id <= 0 => return Err(Errno::EINVAL),
            IdType::Pid => Selector::Pid(id),
            IdType::Pgid if id < 0 => return Err(Errno::EINVAL),
            IdType::Pgid if id == 0 => Selector::Pgid(self.group(tgid)?.pgid),
            IdType::Pgid => Selector::Pgid(id),
        };
        self.do_wait(tid, tgid, sel, options)
    }

    /// `do_wait`: a report, `WouldBlock`, or `ERESTARTSYS` when a signal woke the
    /// waiter and no child had anything to report (the signal has been delivered).
    fn do_wait(
        &mut self,
        tid: Pid,
        tgid: Pid,
        sel: Selector,
        options: i32,
    ) -> SysResult<Blocking<Option<WaitInfo>>> {
        match self.scan_children(tid, tgid, sel, options) {
            Ok(Blocking::WouldBlock(on)) => {
                self.block_or_restart(tid, on)?;
                self.task_mut(tid)?.wait_filter = Some(WaitFilter {
                    sel,
                    nothread: options & __WNOTHREAD != 0,
                });
                Ok(Blocking::WouldBlock(on))
            }
            other => {
                self.syscall_return(tid);
                other
            }
        }
    }

    fn scan_children(
        &mut self,
        tid: Pid,
        tgid: Pid,
        sel: Selector,
        options: i32,
    ) -> SysResult<Blocking<Option<WaitInfo>>> {
        // Scan without mutating (Linux walks the children list under tasklist_lock),
        // then act on the first child with something to report.
        enum Found {
            Zombie(Pid, ExitStatus),
            Stopped(Pid, Signal),
            Continued(Pid),
        }
        let mut any_eligible = false;
        let mut found = None;
        let group = self.group(tgid)?;
        let single;
        let candidates: &mut dyn Iterator<Item = &Pid> = match sel {
            // Only one child can match a PID: look it up instead of walking the list.
            Selector::Pid(p) => {
                single = [p];
                &mut single.iter().filter(|c| {
                    self.groups
                        .get(c)
                        .is_some_and(|cg| cg.parent == Some(tgid) && cg.tgid == **c)
                })
            }
            _ => &mut group.children.values(),
        };
        for &c in candidates {
            let Some(cg) = self.groups.get(&c) else {
                continue;
            };
            if options & __WNOTHREAD != 0 && cg.parent_thread != tid {
                continue;
            }
            let selected = match sel {
                Selector::Any => true,
                Selector::Pid(p) => c == p,
                Selector::Pgid(g) => cg.pgid == g,
            };
            if !selected {
                continue;
            }
            let clone_child = cg.exit_signal != Some(Signal::SIGCHLD);
            if options & __WALL == 0 && clone_child != (options & __WCLONE != 0) {
                continue;
            }
            if let Some(st) = cg.zombie {
                if options & WEXITED == 0 {
                    continue;
                }
                found = Some(Found::Zombie(c, st));
                break;
            }
            any_eligible = true;
            if options & WSTOPPED != 0 && cg.stopped {
                if let Some(sig) = cg.stop_report {
                    found = Some(Found::Stopped(c, sig));
                    break;
                }
            }
            if options & WCONTINUED != 0 && cg.continued_report {
                found = Some(Found::Continued(c));
                break;
            }
        }
        let consume = options & WNOWAIT == 0;
        match found {
            Some(Found::Zombie(c, st)) => {
                if consume {
                    self.release(c, Some(tgid));
                }
                return Ok(Blocking::Ready(Some(WaitInfo::exited(c, st))));
            }
            Some(Found::Stopped(c, sig)) => {
                if consume {
                    if let Some(cg) = self.groups.get_mut(&c) {
                        cg.stop_report = None;
                    }
                }
                return Ok(Blocking::Ready(Some(WaitInfo {
                    pid: c,
                    code: SiCode::ChildStopped,
                    status: sig.number(),
                    wait_status: (sig.number() << 8) | 0x7f,
                })));
            }
            Some(Found::Continued(c)) => {
                if consume {
                    if let Some(cg) = self.groups.get_mut(&c) {
                        cg.continued_report = false;
                    }
                }
                return Ok(Blocking::Ready(Some(WaitInfo {
                    pid: c,
                    code: SiCode::ChildContinued,
                    status: Signal::SIGCONT.number(),
                    wait_status: 0xffff,
                })));
            }
            None => {}
        }
        if !any_eligible {
            self.task_mut(tid)?.blocked_on = None;
            return Err(Errno::ECHILD);
        }
        if options & WNOHANG != 0 {
            return Ok(Blocking::Ready(None));
        }
        Ok(Blocking::WouldBlock(BlockOn::Wait))
    }
}
