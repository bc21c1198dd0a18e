//! The event stream: what happened inside the kernel, in order. Tests assert on it;
//! the loader consumes it to keep the host in lockstep.

use crate::exit::ExitStatus;
use crate::pending::SiCode;
use crate::pid::Pid;
use crate::signal::Signal;
use crate::tty::TtyId;
use serde::{Deserialize, Serialize};

/// Where a generated signal was aimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignalTarget {
    /// A thread group (shared pending set).
    Process(Pid),
    /// One thread (private pending set).
    Thread(Pid),
}

/// What delivery did with a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Disposition {
    /// A user handler ran. `restart` is the action's SA_RESTART flag: a system call the
    /// thread was blocked in is restarted if set, else fails with EINTR.
    Handler { restart: bool },
    /// Discarded: ignored, or a default-action stop signal for an orphaned group.
    Ignored,
    /// Started a group stop.
    Stop,
    /// Killed the thread group.
    Terminate,
    /// Killed the thread group with a core dump (when the kernel config dumps cores).
    CoreDump,
}

/// Why a blocked system call can make progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockOn {
    /// wait4/waitid with no child event yet.
    Wait,
    /// A read of a TTY with nothing to read yet.
    TtyRead(TtyId),
    /// A write to a TTY whose output is stopped (VSTOP with IXON, or TCOOFF).
    TtyWrite(TtyId),
}

/// One kernel event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A signal was generated. `queued` is false when it was discarded at generation
    /// (ignored and not blocked, already pending, or the target is exiting).
    SignalGenerated {
        target: SignalTarget,
        sig: Signal,
        code: SiCode,
        queued: bool,
    },
    /// A thread dequeued a signal and acted on it.
    SignalDelivered {
        tid: Pid,
        sig: Signal,
        disposition: Disposition,
    },
    /// A thread group completed a group stop.
    Stopped { pid: Pid, sig: Signal },
    /// A stopped thread group was continued by SIGCONT.
    Continued { pid: Pid },
    /// A thread group died (it is a zombie now, or about to be reaped automatically).
    Exited { pid: Pid, status: ExitStatus },
    /// A zombie was released: by a parent's wait (`by` = the waiting process) or
    /// automatically (`by` = None: SIGCHLD ignored or SA_NOCLDWAIT, or namespace death).
    Reaped { pid: Pid, by: Option<Pid> },
    /// A terminal was hung up (its files return EOF/EIO from now on).
    TtyHangup { tty: TtyId },
    /// A terminal's foreground process group changed (None: cleared).
    ForegroundChanged { tty: TtyId, pgrp: Option<Pid> },
    /// A terminal's session changed (None: it is nobody's controlling terminal now).
    ControllingSessionChanged { tty: TtyId, session: Option<Pid> },
    /// A blocked system call can make progress, or a signal arrived for its thread:
    /// retry it (the retry returns, blocks again, or fails with `ERESTARTSYS` after
    /// delivering the signal).
    Wakeup { tid: Pid, on: BlockOn },
}
