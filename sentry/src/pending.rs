//! Pending signals (`struct sigpending`): a set for quick tests plus the queued
//! `siginfo`s. Standard signals coalesce (a second instance while one is pending is
//! dropped, `legacy_queue`); real-time signals queue every instance.

use crate::pid::Pid;
use crate::signal::{SigSet, Signal};
use serde::{Deserialize, Serialize};

/// `si_code` values the model produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SiCode {
    /// `SI_USER`: kill(2).
    User,
    /// `SI_KERNEL`: the kernel (terminal signals, hangups, orphaned groups).
    Kernel,
    /// `SI_TKILL`: tkill(2)/tgkill(2).
    Tkill,
    /// `CLD_EXITED`.
    ChildExited,
    /// `CLD_KILLED`.
    ChildKilled,
    /// `CLD_DUMPED`.
    ChildDumped,
    /// `CLD_STOPPED`.
    ChildStopped,
    /// `CLD_CONTINUED`.
    ChildContinued,
}

impl SiCode {
    /// The numeric `si_code`.
    pub fn raw(self) -> i32 {
        match self {
            SiCode::User => 0,
            SiCode::Kernel => 0x80,
            SiCode::Tkill => -6,
            SiCode::ChildExited => 1,
            SiCode::ChildKilled => 2,
            SiCode::ChildDumped => 3,
            SiCode::ChildStopped => 5,
            SiCode::ChildContinued => 6,
        }
    }
}

/// The parts of `siginfo_t` the model tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigInfo {
    pub signo: Signal,
    pub code: SiCode,
    /// Sender (SI_USER/SI_TKILL), the child (CLD_*), or 0 (SI_KERNEL / outside the
    /// namespace).
    pub pid: Pid,
    /// For CLD_*: exit code or signal number.
    pub status: i32,
}

impl SigInfo {
    pub fn kernel(signo: Signal) -> SigInfo {
        SigInfo {
            signo,
            code: SiCode::Kernel,
            pid: 0,
            status: 0,
        }
    }
}

/// One pending set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigPending {
    set: SigSet,
    queue: Vec<SigInfo>,
}

impl SigPending {
    pub fn set(&self) -> SigSet {
        self.set
    }

    pub fn contains(&self, sig: Signal) -> bool {
        self.set.contains(sig)
    }

    /// Queues `info`; returns false when a standard signal was already pending and this
    /// instance was dropped.
    pub fn enqueue(&mut self, info: SigInfo) -> bool {
        if !info.signo.is_realtime() && self.set.contains(info.signo) {
            return false;
        }
        self.set.add(info.signo);
        self.queue.push(info);
        true
    }

    /// Removes every pending instance of each signal in `sigs`.
    pub fn discard(&mut self, sigs: SigSet) {
        if self.set.0 & sigs.0 == 0 {
            return;
        }
        self.set = self.set.difference(sigs);
        self.queue.retain(|i| !sigs.contains(i.signo));
    }

    /// Dequeues the first instance of `sig`.
    pub fn dequeue(&mut self, sig: Signal) -> Option<SigInfo> {
        let pos = self.queue.iter().position(|i| i.signo == sig)?;
        let info = self.queue.remove(pos);
        if !self.queue.iter().any(|i| i.signo == sig) {
            self.set.remove(sig);
        }
        Some(info)
    }

    /// `next_signal`: the lowest pending signal not in `blocked`.
    pub fn next_unblocked(&self, blocked: SigSet) -> Option<Signal> {
        self.set.difference(blocked).first()
    }
}
