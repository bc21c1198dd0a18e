//! Signal numbers, signal sets and the default action of each signal (Linux x86_64
//! numbering, `kernel/signal.c`'s `SIG_KERNEL_*_MASK` classification).

use crate::errno::Errno;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Highest signal number (`_NSIG`).
pub const NSIG: u8 = 64;
/// First real-time signal number as the kernel counts (`SIGRTMIN`); glibc reserves 32
/// and 33 for itself but the kernel treats 32..=64 as real-time (queued) signals.
pub const SIGRTMIN: u8 = 32;

/// A valid signal number, 1..=64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Signal(u8);

macro_rules! signals {
    ($($name:ident = $val:expr;)*) => {
        impl Signal {
            $(pub const $name: Signal = Signal($val);)*

            /// The symbolic name (`"SIGINT"`); real-time signals are `"SIGRT<n>"`.
            pub fn name(self) -> String {
                match self.0 {
                    $($val => stringify!($name).to_string(),)*
                    n => format!("SIGRT{}", n - SIGRTMIN),
                }
            }

            /// Parses `"SIGINT"`, `"INT"`, `"SIGRT<n>"` (what [`Signal::name`] gives for a
            /// real-time signal) or a number.
            pub fn from_name(name: &str) -> Option<Signal> {
                let bare = name.strip_prefix("SIG").unwrap_or(name);
                if let Some(rt) = bare.strip_prefix("RT") {
                    let n = rt.parse::<i32>().ok()?;
                    return Signal::new(SIGRTMIN as i32 + n).ok().filter(|s| s.is_realtime());
                }
                match bare {
                    $(n if n == &stringify!($name)[3..] => Some(Signal($val)),)*
                    _ => bare.parse::<i32>().ok().and_then(|n| Signal::new(n).ok()),
                }
            }
        }
    };
}

signals! {
    SIGHUP = 1; SIGINT = 2; SIGQUIT = 3; SIGILL = 4; SIGTRAP = 5; SIGABRT = 6;
    SIGBUS = 7; SIGFPE = 8; SIGKILL = 9; SIGUSR1 = 10; SIGSEGV = 11; SIGUSR2 = 12;
    SIGPIPE = 13; SIGALRM = 14; SIGTERM = 15; SIGSTKFLT = 16; SIGCHLD = 17;
    SIGCONT = 18; SIGSTOP = 19; SIGTSTP = 20; SIGTTIN = 21; SIGTTOU = 22; SIGURG = 23;
    SIGXCPU = 24; SIGXFSZ = 25; SIGVTALRM = 26; SIGPROF = 27; SIGWINCH = 28;
    SIGIO = 29; SIGPWR = 30; SIGSYS = 31;
}

/// What the kernel does with a signal whose disposition is `SIG_DFL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DefaultAction {
    /// Terminate the thread group.
    Terminate,
    /// Terminate and dump core.
    CoreDump,
    /// Discard the signal.
    Ignore,
    /// Stop the thread group (group stop).
    Stop,
    /// Continue the thread group (the continuing itself happens at generation time).
    Continue,
}

impl Signal {
    /// Validates a signal number: 1..=64, else `EINVAL`.
    pub fn new(n: i32) -> Result<Signal, Errno> {
        if (1..=NSIG as i32).contains(&n) {
            Ok(Signal(n as u8))
        } else {
            Err(Errno::EINVAL)
        }
    }

    /// The signal number.
    pub fn number(self) -> i32 {
        self.0 as i32
    }

    /// Real-time signals queue every instance; standard ones coalesce.
    pub fn is_realtime(self) -> bool {
        self.0 >= SIGRTMIN
    }

    /// The default action (`SIG_KERNEL_{IGNORE,STOP,COREDUMP}_MASK`; everything else
    /// terminates, real-time signals included).
    pub fn default_action(self) -> DefaultAction {
        match self {
            Signal::SIGCHLD | Signal::SIGURG | Signal::SIGWINCH => DefaultAction::Ignore,
            Signal::SIGCONT => DefaultAction::Continue,
            Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU => {
                DefaultAction::Stop
            }
            Signal::SIGQUIT
            | Signal::SIGILL
            | Signal::SIGTRAP
            | Signal::SIGABRT
            | Signal::SIGBUS
            | Signal::SIGFPE
            | Signal::SIGSEGV
            | Signal::SIGXCPU
            | Signal::SIGXFSZ
            | Signal::SIGSYS => DefaultAction::CoreDump,
            _ => DefaultAction::Terminate,
        }
    }

    /// SIGKILL and SIGSTOP cannot be caught, blocked or ignored.
    pub fn is_unblockable(self) -> bool {
        self == Signal::SIGKILL || self == Signal::SIGSTOP
    }

    /// The four stop signals (`SIG_KERNEL_STOP_MASK`).
    pub fn is_stop(self) -> bool {
        self.default_action() == DefaultAction::Stop
    }

    /// Ignored by default (`SIG_KERNEL_IGNORE_MASK`: SIGCONT, SIGCHLD, SIGWINCH, SIGURG).
    pub fn is_default_ignored(self) -> bool {
        matches!(
            self.default_action(),
            DefaultAction::Ignore | DefaultAction::Continue
        )
    }

    /// Every valid signal in ascending order.
    pub fn all() -> impl Iterator<Item = Signal> {
        (1..=NSIG).map(Signal)
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A set of signals (`sigset_t`): bit `n-1` for signal `n`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SigSet(pub u64);

impl SigSet {
    pub const EMPTY: SigSet = SigSet(0);
    pub const FULL: SigSet = SigSet(u64::MAX);

    fn bit(sig: Signal) -> u64 {
        1u64 << (sig.0 - 1)
    }

    pub fn of(sigs: &[Signal]) -> SigSet {
        let mut s = SigSet::EMPTY;
        for &sig in sigs {
            s.add(sig);
        }
        s
    }

    pub fn contains(self, sig: Signal) -> bool {
        self.0 & Self::bit(sig) != 0
    }

    pub fn add(&mut self, sig: Signal) {
        self.0 |= Self::bit(sig);
    }

    pub fn remove(&mut self, sig: Signal) {
        self.0 &= !Self::bit(sig);
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: SigSet) -> SigSet {
        SigSet(self.0 | other.0)
    }

    pub fn difference(self, other: SigSet) -> SigSet {
        SigSet(self.0 & !other.0)
    }

    /// The set with SIGKILL and SIGSTOP removed, as `sigprocmask` stores it.
    pub fn without_unblockable(self) -> SigSet {
        let mut s = self;
        s.remove(Signal::SIGKILL);
        s.remove(Signal::SIGSTOP);
        s
    }

    /// Members in ascending order.
    pub fn iter(self) -> impl Iterator<Item = Signal> {
        Signal::all().filter(move |&s| self.contains(s))
    }

    /// Lowest member.
    pub fn first(self) -> Option<Signal> {
        if self.0 == 0 {
            None
        } else {
            Some(Signal(self.0.trailing_zeros() as u8 + 1))
        }
    }
}

impl fmt::Debug for SigSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}
