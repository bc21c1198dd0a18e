//! Signal dispositions (`struct sigaction`) and the per-process handler table.
//!
//! Linux rules kept here:
//! - SIGKILL and SIGSTOP cannot be caught or ignored (`rt_sigaction` → `EINVAL`).
//! - Setting a disposition that ignores a signal (SIG_IGN, or SIG_DFL for a signal whose
//!   default is to ignore) discards its pending instances in every thread
//!   (`do_sigaction`); the kernel object doing that is [`crate::Kernel::sigaction`].
//! - `execve` and `CLONE_CLEAR_SIGHAND` reset caught signals to SIG_DFL, keep SIG_IGN, and
//!   clear every action's flags and mask (`flush_signal_handlers(t, 0)`).

use crate::signal::{SigSet, Signal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SA_NOCLDSTOP: u32 = 0x0000_0001;
pub const SA_NOCLDWAIT: u32 = 0x0000_0002;
pub const SA_SIGINFO: u32 = 0x0000_0004;
pub const SA_ONSTACK: u32 = 0x0800_0000;
pub const SA_RESTART: u32 = 0x1000_0000;
pub const SA_NODEFER: u32 = 0x4000_0000;
pub const SA_RESETHAND: u32 = 0x8000_0000;

/// `sa_handler`: SIG_DFL, SIG_IGN or a user function (whose address the model ignores).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Handler {
    #[default]
    Default,
    Ignore,
    Catch,
}

/// One signal's action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigAction {
    pub handler: Handler,
    /// `SA_*` flags.
    pub flags: u32,
    /// Signals blocked while the handler runs.
    pub mask: SigSet,
}

impl SigAction {
    pub const DEFAULT: SigAction = SigAction {
        handler: Handler::Default,
        flags: 0,
        mask: SigSet::EMPTY,
    };

    /// A SIG_DFL action.
    pub fn default_action() -> SigAction {
        SigAction::DEFAULT
    }

    /// A SIG_IGN action.
    pub fn ignore() -> SigAction {
        SigAction {
            handler: Handler::Ignore,
            ..SigAction::DEFAULT
        }
    }

    /// A caught signal with the given flags.
    pub fn catch(flags: u32) -> SigAction {
        SigAction {
            handler: Handler::Catch,
            flags,
            mask: SigSet::EMPTY,
        }
    }

    pub fn has_flag(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// `sig_handler_ignored`: SIG_IGN, or SIG_DFL for a default-ignored signal.
    pub fn ignores(&self, sig: Signal) -> bool {
        match self.handler {
            Handler::Ignore => true,
            Handler::Default => sig.is_default_ignored(),
            Handler::Catch => false,
        }
    }
}

/// A process's handler table (`struct sighand_struct`). Only actions that differ from
/// SIG_DFL-with-no-flags are stored, so a fresh process costs nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigHandlers {
    actions: BTreeMap<Signal, SigAction>,
}

impl SigHandlers {
    pub fn get(&self, sig: Signal) -> SigAction {
        self.actions
            .get(&sig)
            .copied()
            .unwrap_or(SigAction::DEFAULT)
    }

    pub fn set(&mut self, sig: Signal, action: SigAction) {
        if action == SigAction::DEFAULT {
            self.actions.remove(&sig);
        } else {
            self.actions.insert(sig, action);
        }
    }

    /// `flush_signal_handlers(t, force_default = 0)`: used by execve and
    /// CLONE_CLEAR_SIGHAND. Caught → SIG_DFL; SIG_IGN stays; flags and masks cleared.
    pub fn reset_for_exec(&mut self) {
        let ignored: Vec<Signal> = self
            .actions
            .iter()
            .filter(|(_, a)| a.handler == Handler::Ignore)
            .map(|(s, _)| *s)
            .collect();
        self.actions.clear();
        for sig in ignored {
            self.actions.insert(sig, SigAction::ignore());
        }
    }
}
