//! The container core: the single owner of the sandbox's sentry model and process
//! tracker (inside [`Supervisor`]), and of what the sandbox's processes left behind
//! (exit statuses kept until waited for). Every request of the [`crate::Sandbox`]
//! handle that reads or changes the sentry goes through here; the notification
//! threads and the supervision loop lock the same supervisor.
//!
//! Linux rules kept here:
//! - a signal sent by delivery mode goes to the process, to the foreground process
//!   group of that process's controlling terminal (the process itself when it has
//!   none, as gVisor's loader does), or to every process but init (a signal from
//!   outside would kill init and with it the namespace); a signal that reaches nobody
//!   is an error;
//! - a process's exit status is reported to one waiter, once (`wait4` reaps).

use crate::exec::ProcessInfo;
use crate::sandbox::{LoaderError, SignalMode};
use crate::supervisor::Supervisor;
use parking_lot::{Condvar, Mutex};
use sandbox_sentry::{DeliveryMode, Kernel, Pid};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Exit statuses of the sandbox's first program and exec'd processes.
#[derive(Debug, Default)]
pub(crate) struct ExitTable {
    /// The first program, once registered.
    pub program: Option<Pid>,
    /// Processes whose end is awaited (the program, exec'd processes).
    pub running: HashSet<Pid>,
    /// Ended, not yet waited for: PID → wait status.
    pub exited: HashMap<Pid, i32>,
    /// Waited for already.
    pub waited: HashSet<Pid>,
    /// The supervision has ended: nothing more will be recorded.
    pub ended: bool,
}

pub(crate) struct Core {
    pub sup: Arc<Mutex<Supervisor>>,
    exits: Mutex<ExitTable>,
    changed: Condvar,
}

impl Core {
    pub fn new(sup: Arc<Mutex<Supervisor>>) -> Core {
        Core {
            sup,
            exits: Mutex::new(ExitTable::default()),
            changed: Condvar::new(),
        }
    }

    /// The first program is registered (sandbox PID).
    pub fn program_started(&self, pid: Pid) {
        let mut e = self.exits.lock();
        e.program = Some(pid);
        e.running.insert(pid);
        self.changed.notify_all();
    }

    /// A process whose status is kept ended with `wait_status`.
    pub fn exited(&self, pid: Pid, wait_status: i32) {
        let mut e = self.exits.lock();
        if e.running.remove(&pid) {
            e.exited.insert(pid, wait_status);
        }
        self.changed.notify_all();
    }

    /// The supervision has ended.
    pub fn ended(&self) {
        let mut e = self.exits.lock();
        e.ended = true;
        self.changed.notify_all();
    }

    /// The first program's PID, once it runs (blocks until then).
    pub fn program(&self) -> Result<Pid, LoaderError> {
        let mut e = self.exits.lock();
        loop {
            if let Some(p) = e.program {
                return Ok(p);
            }
            if e.ended {
                return Err(LoaderError::EndedEarly);
            }
            self.changed.wait(&mut e);
        }
    }

    /// Waits for `pid` to end and takes its wait status (once).
    pub fn wait_pid(&self, pid: Pid) -> Result<i32, LoaderError> {
        let mut e = self.exits.lock();
        loop {
            if let Some(st) = e.exited.remove(&pid) {
                e.waited.insert(pid);
                return Ok(st);
            }
            if e.waited.contains(&pid) {
                return Err(LoaderError::PidAlreadyWaited(pid));
            }
            if !e.running.contains(&pid) {
                return Err(LoaderError::NoSuchProcess(pid));
            }
            if e.ended {
                return Err(LoaderError::Ended);
            }
            self.changed.wait(&mut e);
        }
    }

    /// Sends `sig` by `mode` to `pid` (the first program when `None`).
    pub fn kill(&self, pid: Option<Pid>, mode: SignalMode, sig: i32) -> Result<(), LoaderError> {
        let pid = match pid {
            Some(p) => p,
            None => {
                let e = self.exits.lock();
                match e.program {
                    Some(p) => p,
                    None if e.ended => return Err(LoaderError::Ended),
                    None => return Err(LoaderError::NotStarted),
                }
            }
        };
        let mut guard = self.sup.lock();
        let sup = &mut *guard;
        sup.procs.reconcile(&mut sup.k);
        let has_tty = sup.k.thread_group(pid).is_some_and(|g| g.tty.is_some());
        let delivered = match crate::sandbox::delivery_mode(mode, has_tty) {
            DeliveryMode::AllProcesses => {
                let mut any = false;
                for p in sup.k.processes() {
                    if p != Kernel::INIT && sup.k.thread_group(p).is_some_and(|g| g.is_alive()) {
                        any |= sup
                            .k
                            .deliver_signal(DeliveryMode::Process, p, sig)
                            .is_ok_and(|v| !v.is_empty());
                    }
                }
                if any {
                    Ok(())
                } else {
                    Err(LoaderError::NotDelivered(format!(
                        "signal {sig}: no process in the sandbox but init"
                    )))
                }
            }
            mode => match sup.k.deliver_signal(mode, pid, sig) {
                Ok(v) if v.is_empty() => Err(LoaderError::NotDelivered(format!(
                    "signal {sig} to {pid}: no process to deliver it to"
                ))),
                Ok(_) => Ok(()),
                Err(e) => Err(LoaderError::Signal(e)),
            },
        };
        let sent = sup.send_host_signals();
        delivered?;
        sent
    }

    /// Every process of the sandbox, as the sentry sees it (after a reconcile with the
    /// host), with its state and command line from the host's `/proc`.
    pub fn processes(&self) -> Result<Vec<ProcessInfo>, LoaderError> {
        let mut guard = self.sup.lock();
        let sup = &mut *guard;
        sup.procs.reconcile(&mut sup.k);
        let mut out = Vec::new();
        for pid in sup.k.processes() {
            let Some(g) = sup.k.thread_group(pid) else {
                continue;
            };
            let tty = g.tty.and_then(|t| sup.k.tty(t));
            let Some(host) = sup.procs.host_pid(pid) else {
                continue;
            };
            let state = match crate::procfs::read(host) {
                Ok(i) => i.state,
                // Gone between the reconcile and now.
                Err(_) => continue,
            };
            out.push(ProcessInfo {
                pid,
                ppid: g.parent.unwrap_or(0),
                pgid: g.pgid,
                sid: g.sid,
                tty: tty.map(|t| t.name.clone()),
                state,
                foreground: tty.is_some_and(|t| t.pgrp == Some(g.pgid)),
                command: command_line(host),
            });
        }
        out.sort_by_key(|p| p.pid);
        Ok(out)
    }

    /// Sets the size of `pid`'s controlling terminal (SIGWINCH to its foreground group
    /// if it changed).
    pub fn resize_pid(&self, pid: Pid, rows: u16, cols: u16) -> Result<(), LoaderError> {
        let mut sup = self.sup.lock();
        let tty = sup
            .k
            .thread_group(pid)
            .filter(|g| g.is_alive())
            .ok_or(LoaderError::NoSuchProcess(pid))?
            .tty
            .ok_or(LoaderError::NoTerminal(pid))?;
        sup.set_size_of(tty, rows, cols)
    }
}

/// `/proc/PID/cmdline` with spaces, or `[comm]` for a process without one.
fn command_line(host: i32) -> String {
    match std::fs::read(format!("/proc/{host}/cmdline")) {
        Ok(b) if !b.is_empty() => b
            .split(|&c| c == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        _ => std::fs::read_to_string(format!("/proc/{host}/comm"))
            .map(|c| format!("[{}]", c.trim_end()))
            .unwrap_or_default(),
    }
}
