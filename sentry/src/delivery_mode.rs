//! Signals from outside the sandbox, by delivery mode (as gVisor's loader offers them):
//! to one process, to the foreground process group of a process's terminal, or to every
//! process. The sender is outside the PID namespace: `si_pid` is 0 and init can be
//! stopped or killed with SIGSTOP/SIGKILL even without handlers.

use crate::event::SignalTarget;
use crate::kernel::Kernel;
use crate::pending::{SiCode, SigInfo};
use crate::pid::Pid;
use crate::signal::Signal;
use crate::tty::TtyId;
use serde::{Deserialize, Serialize};

/// Where an outside signal goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryMode {
    /// The process `pid` (0: init).
    Process,
    /// The foreground process group of `pid`'s controlling terminal. With
    /// `fallback_to_process`, a process without a terminal gets the signal itself.
    ForegroundProcessGroup { fallback_to_process: bool },
    /// Every process of the namespace, init included.
    AllProcesses,
}

/// Why an outside signal could not be delivered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("invalid signal number {0}")]
    InvalidSignal(i32),
    #[error("no process with PID {0}")]
    NoSuchProcess(Pid),
    #[error("process {0} has no controlling terminal")]
    NoTerminal(Pid),
    #[error("terminal {tty:?} of process {pid} has no foreground process group")]
    NoForegroundProcessGroup { pid: Pid, tty: TtyId },
}

impl Kernel {
    /// The foreground process group of `pid`'s controlling terminal.
    pub fn foreground_process_group_of(&self, pid: Pid) -> Result<Pid, DeliveryError> {
        let pid = if pid == 0 { Kernel::INIT } else { pid };
        let g = self
            .groups
            .get(&pid)
            .filter(|g| g.is_alive())
            .ok_or(DeliveryError::NoSuchProcess(pid))?;
        let tty = g.tty.ok_or(DeliveryError::NoTerminal(pid))?;
        self.ttys
            .get(&tty)
            .and_then(|t| t.pgrp)
            .ok_or(DeliveryError::NoForegroundProcessGroup { pid, tty })
    }

    /// Sends `sig` from outside the namespace. Returns the processes it was sent to.
    pub fn deliver_signal(
        &mut self,
        mode: DeliveryMode,
        pid: Pid,
        sig: i32,
    ) -> Result<Vec<Pid>, DeliveryError> {
        let signal = Signal::new(sig).map_err(|_| DeliveryError::InvalidSignal(sig))?;
        let pid = if pid == 0 { Kernel::INIT } else { pid };
        let targets = match mode {
            DeliveryMode::Process => {
                if !self.groups.get(&pid).is_some_and(|g| g.is_alive()) {
                    return Err(DeliveryError::NoSuchProcess(pid));
                }
                vec![pid]
            }
            DeliveryMode::ForegroundProcessGroup {
                fallback_to_process,
            } => match self.foreground_process_group_of(pid) {
                Ok(pgid) if self.config.host_signals => {
                    self.host_send(crate::host::HostTarget::ProcessGroup(pgid), signal);
                    return Ok(self.pgrp_members(pgid));
                }
                Ok(pgid) => self.pgrp_members(pgid),
                Err(DeliveryError::NoTerminal(p)) if fallback_to_process => vec![p],
                Err(e) => return Err(e),
            },
            DeliveryMode::AllProcesses => self
                .groups
                .iter()
                .filter(|(_, g)| g.is_alive())
                .map(|(&p, _)| p)
                .collect(),
        };
        let info = SigInfo {
            signo: signal,
            code: SiCode::User,
            pid: 0,
            status: 0,
        };
        for &p in &targets {
            self.send_signal(SignalTarget::Process(p), info, true);
        }
        Ok(targets)
    }
}
