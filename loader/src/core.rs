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

use crate::control::{self, Message};
use crate::exec::{ExecEvent, ExecHandle, ExecSpec, ExecTerminal, ProcessInfo};
use crate::init::{ExecPlan, ProgramPlan, PtyInit, StdioPlan};
use crate::sandbox::{LoaderError, SignalMode};
use crate::seccomp::{self, Filter, NotifyOptions};
use crate::supervisor::{termios_from_host, winsize_from_host, Binding, Supervisor, Terminal};
use crate::sys::tty as systty;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use parking_lot::{Condvar, Mutex};
use sandbox_sentry::{DeliveryMode, HostProcess, Kernel, OpenFlags, Pid};
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What every exec'd process gets from the sandbox's spec (compiled once at start).
pub(crate) struct ExecContext {
    pub deny: Option<Filter>,
    pub rlimits: Vec<(i32, u64, u64)>,
    pub capabilities: crate::capability::CapSet,
    pub helper_filter: Filter,
    pub rootless: bool,
    /// The sandbox's further filter ([`crate::SandboxSpec::extra_seccomp`]): an exec'd
    /// process gets it too, as runc gives a container's profile to `exec`.
    pub extra_seccomp: Option<Filter>,
}

/// The sandbox as an exec'd process joins it.
pub(crate) struct ExecTarget {
    pub context: ExecContext,
    /// `CLONE_NEW*` flags init was created with.
    pub namespaces: u64,
    pub init_pidfd: OwnedFd,
}

/// A running exec'd process, watched by the supervision loop through its helper.
pub(crate) struct ExecWatch {
    pub pid: Pid,
    pub control: OwnedFd,
    pub helper: OwnedFd,
    pub events: crossbeam_channel::Sender<ExecEvent>,
}

/// A notification thread (see [`crate::sandbox::notify_thread`]): it waits in the
/// receive ioctl and is stopped by a signal of its own.
pub(crate) struct Notifier {
    stop: Arc<AtomicBool>,
    /// The thread's ID once it runs (0 before), and whether it waits without a poll.
    tid: Arc<std::sync::atomic::AtomicI32>,
    blocking: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Notifier {
    /// Starts answering the notifications of `listener`.
    pub fn start(
        listener: crate::seccomp::Listener,
        sup: Arc<Mutex<Supervisor>>,
    ) -> std::io::Result<Notifier> {
        let stop = Arc::new(AtomicBool::new(false));
        let tid = Arc::new(std::sync::atomic::AtomicI32::new(0));
        let blocking = Arc::new(AtomicBool::new(false));
        let (flag, t_tid, t_blocking) = (stop.clone(), tid.clone(), blocking.clone());
        let thread = std::thread::Builder::new()
            .name("sandbox-notify".into())
            .spawn(move || crate::sandbox::notify_thread(listener, sup, flag, t_tid, t_blocking))?;
        Ok(Notifier {
            stop,
            tid,
            blocking,
            thread: Some(thread),
        })
    }

    /// Stops it and waits for it: sets its flag and, while it waits in the receive,
    /// signals it until it has ended (a signal sent between its look at the flag and
    /// the receive would be lost; the next one is not).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let Some(t) = self.thread.take() else {
            return;
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let wake = crate::sys::signal::wakeup_signal();
        let me = std::process::id() as i32;
        while !t.is_finished() {
            let tid = self.tid.load(Ordering::Acquire);
            if self.blocking.load(Ordering::Acquire) && tid > 0 {
                let _ = crate::sys::signal::tgkill(me, tid, wake);
            }
            if std::time::Instant::now() > deadline {
                tracing::warn!("the notification thread did not stop: left behind");
                return;
            }
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        let _ = t.join();
    }
}

/// The borrowed terminal of the first program, as found at start.
pub(crate) struct BorrowedInfo<'a> {
    pub fd: OwnedFd,
    pub path: &'a std::path::Path,
    pub termios: &'a libc::termios,
    pub winsize: &'a libc::winsize,
    pub stat: &'a libc::stat,
}

/// The sentry for a new sandbox (host mode: the signals it generates are sent by the
/// loader), with the borrowed terminal registered as a host-backed terminal.
pub(crate) fn new_kernel(
    borrowed: Option<BorrowedInfo<'_>>,
    init_host: i32,
) -> (Kernel, Option<Terminal>) {
    let mut k = Kernel::with_config(sandbox_sentry::KernelConfig {
        host_signals: true,
        ..sandbox_sentry::KernelConfig::default()
    });
    let tty = borrowed.map(|b| {
        let name = b
            .path
            .to_string_lossy()
            .trim_start_matches("/dev/")
            .to_string();
        let id = k.create_host_tty(
            &name,
            systty::is_pty_slave(b.stat.st_rdev),
            termios_from_host(b.termios),
            winsize_from_host(b.winsize),
        );
        Terminal {
            id,
            binding: Binding::Borrowed,
            fd: Some(b.fd),
            identity: (b.stat.st_dev, b.stat.st_ino),
            leader_host: init_host,
            hung_up: false,
        }
    });
    (k, tty)
}

/// The foreground job of the first program's terminal, for the suspend pass-through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ForegroundJob {
    /// A job-control shell has set the foreground group: it manages stops itself.
    ManagedByShell,
    /// No terminal, no foreground group, or an empty one.
    None,
    Running,
    /// Every member is stopped (host state `T`).
    Stopped,
}

/// Exit statuses of the sandbox's first program and exec'd processes.
#[derive(Debug, Default)]
pub(crate) struct ExitTable {
    /// The first program, once registered.
    pub program: Option<Pid>,
    /// The program's parent, leader of its session (init's child), once registered:
    /// like init, not a target of a signal to every process.
    pub holder: Option<Pid>,
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
    target: ExecTarget,
    /// The sandbox's cgroups (exec helpers join them); removed when the supervision
    /// ends.
    pub cgroup: Mutex<Option<crate::cgroup::SandboxCgroup>>,
    /// Notification threads of exec'd processes.
    pub notifiers: Mutex<Vec<Notifier>>,
    /// Hands exec'd processes to the supervision loop.
    watches: crossbeam_channel::Sender<ExecWatch>,
    wake: Arc<nix::sys::eventfd::EventFd>,
    /// Serialises exec (one helper at a time joins the sandbox).
    exec_lock: Mutex<()>,
}

impl Core {
    pub fn new(
        sup: Arc<Mutex<Supervisor>>,
        target: ExecTarget,
        cgroup: Option<crate::cgroup::SandboxCgroup>,
        watches: crossbeam_channel::Sender<ExecWatch>,
        wake: Arc<nix::sys::eventfd::EventFd>,
    ) -> Core {
        Core {
            sup,
            exits: Mutex::new(ExitTable::default()),
            changed: Condvar::new(),
            target,
            cgroup: Mutex::new(cgroup),
            notifiers: Mutex::new(Vec::new()),
            watches,
            wake,
            exec_lock: Mutex::new(()),
        }
    }

    /// A process whose status is kept started.
    pub fn started(&self, pid: Pid) {
        let mut e = self.exits.lock();
        e.running.insert(pid);
        e.waited.remove(&pid);
        e.exited.remove(&pid);
        self.changed.notify_all();
    }

    /// A process registered by a failed exec: nothing to wait for.
    fn forget(&self, pid: Pid) {
        let mut e = self.exits.lock();
        e.running.remove(&pid);
        self.changed.notify_all();
    }

    /// Whether the supervision has ended.
    pub fn has_ended(&self) -> bool {
        self.exits.lock().ended
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

    /// The first program's PID if it runs already.
    pub fn program_if_started(&self) -> Option<Pid> {
        self.exits.lock().program
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
            None => self.program()?,
        };
        let mut guard = self.sup.lock();
        let sup = &mut *guard;
        sup.procs.reconcile(&mut sup.k);
        let has_tty = sup.k.thread_group(pid).is_some_and(|g| g.tty.is_some());
        let delivered = match crate::sandbox::delivery_mode(mode, has_tty) {
            DeliveryMode::AllProcesses => {
                let mut any = false;
                // In rounds until a round finds no process it has not signalled yet
                // (SIGKILL: none alive), so that a child forked while the signal goes
                // out gets it too; bounded by 2 s (a process that ignores the signal
                // and forks without end). Without a freezer this is the equivalent of
                // freezing the sandbox for the delivery.
                let deadline = Instant::now() + Duration::from_secs(2);
                let mut signalled = HashSet::new();
                // The first program last: its end ends the sandbox (init exits and the
                // kernel kills the rest with SIGKILL before they see this signal). But
                // SIGKILL to the first program first: the rest dies with the sandbox
                // anyway, and a program that waits for its children (a shell) would
                // otherwise see them die and exit 0 before its own SIGKILL arrives.
                let first = self.program_if_started();
                let holder = self.exits.lock().holder;
                let program_first = sig == libc::SIGKILL;
                loop {
                    let mut round = false;
                    let mut order = sup.k.processes();
                    order.sort_by_key(|&p| (Some(p) == first) != program_first);
                    for p in order {
                        let alive = sup.k.thread_group(p).is_some_and(|g| g.is_alive());
                        let again = sig == libc::SIGKILL || !signalled.contains(&p);
                        if p != Kernel::INIT && Some(p) != holder && alive && again {
                            let sent = sup
                                .k
                                .deliver_signal(DeliveryMode::Process, p, sig)
                                .is_ok_and(|v| !v.is_empty());
                            if sent {
                                signalled.insert(p);
                                round = true;
                            }
                        }
                    }
                    any |= round;
                    if !round || Instant::now() > deadline {
                        break;
                    }
                    let _ = sup.send_host_signals();
                    sup.procs.reconcile(&mut sup.k);
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
        match sent {
            // A queued host signal whose target has gone meanwhile (seen after an exec'd
            // session ended: `kill` of the first program then failed with ESRCH though
            // the program got the signal). Linux's kill(2) succeeds when the signal
            // reached its target.
            Err(LoaderError::Sys("kill", nix::Error::ESRCH)) => {
                tracing::debug!(sig, "a queued host signal's target was gone");
                Ok(())
            }
            r => r,
        }
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

    /// The first program has installed its filters: registers it in the sentry with
    /// its parent, the holder (init's child, leader of the program's session: the
    /// holder's session takes the main terminal with the program's group in the
    /// foreground). Returns its sandbox PID.
    /// `attach`: the holder's session takes the main terminal and the program's group
    /// is its foreground (else the terminal starts as nobody's, see
    /// [`crate::TerminalAttach`]).
    /// `privileged`: whether the program counts as privileged in the sentry (it keeps
    /// CAP_SYS_ADMIN); its descendants inherit that.
    pub fn register_program(&self, attach: bool, privileged: bool) -> Option<Pid> {
        let mut guard = self.sup.lock();
        let sup = &mut *guard;
        let init_host = sup.procs.init_host;
        let first_child = |host: i32| {
            crate::procfs::children(host)
                .ok()
                .and_then(|c| c.into_iter().next())
        };
        let holder_host = first_child(init_host)?;
        let holder_info = crate::procfs::read(holder_host).ok()?;
        let host = first_child(holder_host)?;
        let info = crate::procfs::read(host).ok()?;
        let holder = holder_info.ns_pid;
        let p = info.ns_pid;
        let _ = sup.procs.translate(&mut sup.k, holder_info.host_pid);
        let _ = sup.procs.translate(&mut sup.k, info.host_pid);
        // The holder keeps init's privileges (it makes no notified call).
        let held = sup.k.host_adopt(HostProcess {
            pid: holder,
            parent: Some(Kernel::INIT),
            pgid: holder_info.ns_pgid,
            sid: holder_info.ns_sid,
            did_exec: holder_info.did_exec,
        });
        if held.is_ok() {
            sup.procs.watch(holder, holder_info.host_pid);
        }
        // (Adopted already when a reconcile ran before the program's listener came.)
        if sup.k.thread_group(holder).is_some() {
            self.exits.lock().holder = Some(holder);
        }
        for t in sup.terminals.iter_mut().filter(|t| Some(t.id) == sup.main) {
            t.leader_host = holder_info.host_pid;
        }
        if let Some(id) = sup.main.filter(|_| attach) {
            if let Err(e) = sup.k.open_tty(holder, id, OpenFlags::RDWR) {
                tracing::error!(%e, "could not give the sandbox's session its terminal");
            }
        }
        let adopted = sup.k.host_adopt(HostProcess {
            pid: p,
            parent: Some(holder),
            pgid: info.ns_pgid,
            sid: info.ns_sid,
            did_exec: info.did_exec,
        });
        if adopted.is_ok() {
            sup.procs.watch(p, info.host_pid);
            // The sentry's init is privileged; the program has no capability but the
            // kept ones.
            let _ = sup.k.set_privileged(p, privileged);
        }
        if let (Ok(()), Some(id), true) = (adopted, sup.main, attach) {
            if let Err(e) = sup.k.tiocspgrp(holder, id, info.ns_pgid) {
                tracing::error!(%e, "could not put the program in the foreground");
            }
        }
        Some(p)
    }

    /// The holder created the first program's pty (`pts/n`): registers it as the main
    /// terminal, an owned pty led by the holder (init's child). `keep` is the loader's copy of the master
    /// (none when it went to a console socket).
    pub fn register_main_pty(
        &self,
        n: u32,
        identity: (u64, u64),
        termios: Option<&libc::termios>,
        ws: Option<&libc::winsize>,
        keep: Option<OwnedFd>,
    ) {
        let mut sup = self.sup.lock();
        let id = sup.k.create_host_tty(
            &format!("pts/{n}"),
            true,
            termios
                .map(termios_from_host)
                .unwrap_or_else(sandbox_sentry::Termios::linux_default),
            ws.map(winsize_from_host).unwrap_or_default(),
        );
        // The holder (init's only child until it forks the program); once the program
        // is registered this is checked again.
        let leader_host = crate::procfs::children(sup.procs.init_host)
            .ok()
            .and_then(|c| c.into_iter().next())
            .unwrap_or(sup.procs.init_host);
        sup.terminals.push(Terminal {
            id,
            binding: Binding::OwnedPty,
            fd: keep,
            identity,
            leader_host,
            hung_up: false,
        });
        sup.main = Some(id);
    }

    /// The state of the main terminal's foreground job (see [`ForegroundJob`]).
    pub fn main_foreground_job(&self) -> ForegroundJob {
        let sup = self.sup.lock();
        if sup.tiocspgrp_seen {
            return ForegroundJob::ManagedByShell;
        }
        let Some(tty) = sup.main else {
            return ForegroundJob::None;
        };
        let Some(fg) = sup.k.tty(tty).and_then(|t| t.pgrp) else {
            return ForegroundJob::None;
        };
        let members = sup.k.pgrp_members(fg);
        if members.is_empty() {
            return ForegroundJob::None;
        }
        let all_stopped = members.iter().all(|&m| {
            sup.procs
                .host_pid(m)
                .and_then(|h| crate::procfs::read(h).ok())
                .is_some_and(|i| i.state == 'T')
        });
        if all_stopped {
            ForegroundJob::Stopped
        } else {
            ForegroundJob::Running
        }
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

/// How long an exec may take to reach the process's execve.
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// The pieces of an exec'd process's terminal, prepared before it starts.
enum PreparedTerminal {
    None,
    Borrowed {
        fd: OwnedFd,
        name: String,
        is_pty: bool,
        identity: (u64, u64),
        termios: libc::termios,
        winsize: libc::winsize,
    },
    Pty {
        console: Option<(std::path::PathBuf, std::os::unix::net::UnixStream)>,
    },
}

impl Core {
    /// Executes a process in the sandbox (see [`crate::Sandbox::exec`]).
    pub fn exec(&self, spec: ExecSpec) -> Result<ExecHandle, LoaderError> {
        if spec.argv.is_empty() {
            return Err(LoaderError::NoProgram);
        }
        if let Some((uid, gid)) = spec.user {
            if uid == u32::MAX || gid == u32::MAX {
                return Err(LoaderError::InvalidUser { uid, gid });
            }
            if (uid, gid) != (0, 0) && self.target.context.rootless {
                return Err(LoaderError::UnmappedUser { uid, gid });
            }
        }
        let argv = crate::sandbox::cstrings(&spec.argv)?;
        let env = crate::sandbox::cstrings(&spec.env)?;
        let ctx = &self.target.context;
        let (stdio, prepared, pty, tty_io) = match spec.terminal {
            ExecTerminal::Stdio(fds) => {
                (StdioPlan::Three(fds), PreparedTerminal::None, None, false)
            }
            ExecTerminal::Borrowed(fd) => {
                let termios = systty::tcgets(fd.as_fd()).map_err(LoaderError::Terminal)?;
                let winsize = systty::get_winsize(fd.as_fd()).map_err(LoaderError::Terminal)?;
                let st = nix::sys::stat::fstat(fd.as_fd()).map_err(LoaderError::Terminal)?;
                let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                    .map_err(|_| LoaderError::Terminal(nix::Error::ENOTTY))?;
                let name = path
                    .to_string_lossy()
                    .trim_start_matches("/dev/")
                    .to_string();
                let stdio = StdioPlan::Terminal(crate::sandbox::dup(&fd)?);
                (
                    stdio,
                    PreparedTerminal::Borrowed {
                        fd,
                        name,
                        is_pty: systty::is_pty_slave(st.st_rdev),
                        identity: (st.st_dev, st.st_ino),
                        termios,
                        winsize,
                    },
                    None,
                    true,
                )
            }
            ExecTerminal::Pty {
                console_socket,
                winsize,
            } => {
                // Connected first, as runc does: a wrong path is reported as such.
                let console = match console_socket {
                    Some(path) => Some((
                        path.clone(),
                        std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
                            LoaderError::ConsoleSocket {
                                path: path.clone(),
                                err: e.to_string(),
                            }
                        })?,
                    )),
                    None => None,
                };
                let pty = PtyInit {
                    termios: None,
                    winsize: winsize.map(|(rows, cols)| libc::winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    }),
                    attach: crate::TerminalAttach::Session,
                };
                (
                    StdioPlan::Inherit,
                    PreparedTerminal::Pty { console },
                    Some(pty),
                    false,
                )
            }
        };
        let plan = ExecPlan {
            program: ProgramPlan {
                argv,
                env,
                cwd: Some(spec.cwd.unwrap_or_else(|| "/".into())),
                deny: ctx.deny.clone(),
                notify: seccomp::notify_filter(&NotifyOptions { tty_io })?,
                user: spec.user,
                additional_gids: Vec::new(),
                umask: None,
                extra_seccomp: ctx.extra_seccomp.clone(),
                start_gate: None,
                rlimits: ctx.rlimits.clone(),
                capabilities: match spec.capabilities {
                    Some(c) => {
                        crate::capability::CapSet::from_bits(c.bits() & ctx.capabilities.bits())
                    }
                    None => ctx.capabilities,
                },
                stdio,
                pty,
            },
            init_pidfd: crate::sandbox::dup(&self.target.init_pidfd)?,
            namespaces: self.target.namespaces,
            helper_filter: ctx.helper_filter.clone(),
        };
        // Into a running sandbox: once the first program has set itself up (its group
        // is in the sentry as on the host) and while it runs.
        self.program()?;
        if self.has_ended() {
            return Err(LoaderError::Ended);
        }
        let _one_at_a_time = self.exec_lock.lock();
        let (ours, theirs) = control::pair().map_err(|e| LoaderError::Sys("socketpair", e))?;
        crate::sys::entry::ensure_linked();
        let entry =
            crate::sys::entry::EntryExec::new(crate::entry::EXEC, theirs.as_raw_fd(), false)
                .map_err(|e| LoaderError::Sys("/proc/self/exe", e))?;
        let helper = {
            let mut child = || entry.run();
            crate::spawn::spawn(0, crate::spawn::SpawnMethod::Clone3, &mut child)?
        };
        drop(theirs);
        let kill_helper = |e: LoaderError| {
            let _ = crate::sys::clone::pidfd_kill(&helper.pidfd);
            let _ = crate::sandbox::wait_pidfd(&helper.pidfd);
            e
        };
        // In the sandbox's cgroups before it forks the process.
        if let Some(c) = self.cgroup.lock().as_ref() {
            if let Err(e) = c.move_process(helper.pid) {
                return Err(kill_helper(e.into()));
            }
        }
        if let Err(e) = control::send(ours.as_raw_fd(), &Message::Exec(Box::new(plan))) {
            return Err(kill_helper(LoaderError::Sys("control channel", e)));
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let deadline = Instant::now() + EXEC_TIMEOUT;
        let mut host_pid = None;
        let mut ns_pid = None;
        let mut master = None;
        let mut listener = None;
        let mut sandbox_pid = None;
        let mut unregistered = None;
        let mut failure: Option<LoaderError> = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                failure.get_or_insert(LoaderError::Setup("exec: timed out".into()));
                break;
            }
            let mut fds = [PollFd::new(ours.as_fd(), PollFlags::POLLIN)];
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(nix::Error::EINTR) => continue,
                Ok(_) => {}
                Err(e) => {
                    failure.get_or_insert(LoaderError::Sys("poll", e));
                    break;
                }
            }
            let got = control::recv(ours.as_raw_fd());
            tracing::trace!(?got, "exec helper says");
            match got {
                Ok(Some(Message::ProgramPid(p))) => host_pid = Some(p),
                Ok(Some(Message::SandboxPid(p))) => sandbox_pid = Some(p),
                Ok(Some(Message::PtyMaster(fd))) => master = Some(fd),
                // The process and its parent report independently: the listener may
                // come before the PID.
                Ok(Some(Message::Listener(fd))) => listener = Some(fd),
                Ok(Some(Message::SetupFailed(e))) => {
                    failure.get_or_insert(LoaderError::Setup(e));
                }
                Ok(Some(Message::ExecFailed(errno))) => {
                    let program = spec.argv[0].clone();
                    let errno = nix::Error::from_raw(errno);
                    failure.get_or_insert(if errno == nix::Error::ENOENT {
                        LoaderError::NotFound { program }
                    } else {
                        LoaderError::CannotExecute { program, errno }
                    });
                }
                // Registered, or it died before its execve: the helper reports how
                // next.
                Ok(Some(Message::Executed)) if ns_pid.is_some() => break,
                Ok(Some(Message::Executed)) => {}
                Ok(Some(Message::ProgramStopped(sig))) => {
                    let _ = tx.send(ExecEvent::Stopped { sig });
                }
                Ok(Some(Message::ProgramContinued)) => {
                    let _ = tx.send(ExecEvent::Continued);
                }
                Ok(Some(Message::ProgramEnded(st))) => {
                    failure.get_or_insert(LoaderError::Setup(format!(
                        "exec: the process ended before its execve ({})",
                        crate::init::describe_status(st)
                    )));
                    break;
                }
                Ok(Some(other)) => {
                    tracing::warn!(?other, "exec helper: unexpected message");
                }
                Err(nix_err) => {
                    failure.get_or_insert(LoaderError::Setup(format!("exec helper: {nix_err}")));
                    break;
                }
                Ok(None) => {
                    failure.get_or_insert(LoaderError::EndedEarly);
                    break;
                }
            }
            if let (Some(h), Some(p), true) = (host_pid, sandbox_pid, listener.is_some()) {
                let Some(fd) = listener.take() else {
                    continue;
                };
                // Registered before the process's first notified call is answered.
                match self.register(h, p, &prepared, master.as_ref(), fd) {
                    Ok(p) => ns_pid = Some(p),
                    // Gone already (its execve failed and it exited, say): what the
                    // helper reports next says why.
                    Err(e) => unregistered = Some(e),
                }
            }
        }
        if let Some(e) = failure.or(unregistered) {
            if let Some(p) = ns_pid {
                self.forget(p);
            }
            // The helper kills the process when its control socket hangs up.
            drop(ours);
            let _ = crate::sandbox::wait_pidfd(&helper.pidfd);
            return Err(e);
        }
        let (Some(pid), Some(host)) = (ns_pid, host_pid) else {
            drop(ours);
            let _ = crate::sandbox::wait_pidfd(&helper.pidfd);
            return Err(LoaderError::Setup(format!(
                "exec: the process never ran (helper reported {host_pid:?}, the process \
                 {sandbox_pid:?})"
            )));
        };
        let mut handed = None;
        if let (
            PreparedTerminal::Pty {
                console: Some((path, stream)),
            },
            Some(m),
        ) = (&prepared, master.as_ref())
        {
            if let Err(e) = control::send_fd_stream(stream.as_raw_fd(), "console", m.as_raw_fd()) {
                tracing::warn!(%e, path = %path.display(), "console socket: the pty master was not sent");
            }
        } else {
            handed = master;
        }
        let watch = ExecWatch {
            pid,
            control: ours,
            helper: helper.pidfd,
            events: tx,
        };
        if self.watches.send(watch).is_err() {
            return Err(LoaderError::Ended);
        }
        let _ = self.wake.write(1);
        Ok(ExecHandle {
            pid,
            host_pid: host,
            pty_master: parking_lot::Mutex::new(handed),
            events: rx,
        })
    }

    /// Registers an exec'd process in the sentry (a process with no parent in the
    /// namespace, leading its own session, with its terminal as the session's
    /// controlling terminal and its group in the foreground) and starts answering its
    /// notifications. Returns its sandbox PID.
    /// The process may have run and ended already (a short program that makes no
    /// notified call): the tracker then finds it gone at the next reconcile.
    fn register(
        &self,
        host: i32,
        pid: Pid,
        prepared: &PreparedTerminal,
        master: Option<&OwnedFd>,
        listener: OwnedFd,
    ) -> Result<Pid, LoaderError> {
        let mut guard = self.sup.lock();
        let sup = &mut *guard;
        sup.procs.add_root(host);
        let _ = sup.procs.translate(&mut sup.k, host);
        if sup.k.thread_group(pid).is_none() {
            sup.k
                .host_adopt(HostProcess {
                    pid,
                    parent: None,
                    pgid: pid,
                    sid: pid,
                    did_exec: false,
                })
                .map_err(|e| {
                    LoaderError::Setup(format!("exec: the sentry refused the process: {e}"))
                })?;
            sup.procs.watch(pid, host);
        }
        let tty = match prepared {
            PreparedTerminal::None => None,
            PreparedTerminal::Borrowed {
                fd,
                name,
                is_pty,
                identity,
                termios,
                winsize,
            } => {
                let id = sup.k.create_host_tty(
                    name,
                    *is_pty,
                    termios_from_host(termios),
                    winsize_from_host(winsize),
                );
                sup.terminals.push(Terminal {
                    id,
                    binding: Binding::Borrowed,
                    fd: Some(crate::sandbox::dup(fd)?),
                    identity: *identity,
                    leader_host: host,
                    hung_up: false,
                });
                Some(id)
            }
            PreparedTerminal::Pty { console } => {
                let m = master.ok_or_else(|| LoaderError::Setup("exec: no pty master".into()))?;
                let n = systty::pty_number(m.as_fd()).map_err(LoaderError::Terminal)?;
                let identity = systty::peer_identity(m.as_fd()).map_err(LoaderError::Terminal)?;
                let termios = systty::tcgets(m.as_fd()).ok();
                let ws = systty::get_winsize(m.as_fd()).ok();
                let id = sup.k.create_host_tty(
                    &format!("pts/{n}"),
                    true,
                    termios
                        .as_ref()
                        .map(termios_from_host)
                        .unwrap_or_else(sandbox_sentry::Termios::linux_default),
                    ws.as_ref().map(winsize_from_host).unwrap_or_default(),
                );
                sup.terminals.push(Terminal {
                    id,
                    binding: Binding::OwnedPty,
                    // A master handed to a console socket is not kept: closing the
                    // client's copy must hang the pty up.
                    fd: if console.is_some() {
                        None
                    } else {
                        Some(crate::sandbox::dup(m)?)
                    },
                    identity,
                    leader_host: host,
                    hung_up: false,
                });
                Some(id)
            }
        };
        if let Some(id) = tty {
            if let Err(e) = sup.k.open_tty(pid, id, OpenFlags::RDWR) {
                tracing::error!(%e, "could not give the exec'd session its terminal");
            }
            if let Err(e) = sup.k.tiocspgrp(pid, id, pid) {
                tracing::error!(%e, "could not put the exec'd process in the foreground");
            }
            // A borrowed terminal's changes are emulated: nothing went to the host.
            let _ = sup.k.take_host_signals();
            sup.drain_events();
        }
        drop(guard);
        self.started(pid);
        let listener = crate::seccomp::Listener::from_fd(listener);
        let _ = listener.set_sync_wakeup();
        let notifier = Notifier::start(listener, self.sup.clone())
            .map_err(|e| LoaderError::Setup(format!("cannot start a notification thread: {e}")))?;
        self.notifiers.lock().push(notifier);
        Ok(pid)
    }
}
