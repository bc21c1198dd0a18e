//! Terminals: the TTY object and its job-control rules (Linux
//! `drivers/tty/tty_jobctrl.c`, the job-control parts of `tty_io.c` and `n_tty.c`).
//!
//! A [`Tty`] records its session (the session it is the controlling terminal of) and its
//! foreground process group. Two kinds share this job-control core:
//! - [`TtyKind::Emulated`]: a pty pair simulated end to end, with the line discipline
//!   of [`crate::ldisc`]; the "master" methods play the terminal emulator.
//! - [`TtyKind::HostBacked`]: bytes and termios live on a host fd the loader owns; the
//!   sentry only decides (the `tty_check_*` methods and the ioctls) and the loader
//!   reports termios changes with [`Kernel::tty_set_termios_observed`].
//!
//! The rules (all from the caller's point of view; "background" means the caller's
//! terminal is this TTY, the TTY has a foreground group, and the caller is not in it):
//! - Background read: SIGTTIN to the caller's process group and ERESTARTSYS; EIO
//!   instead if SIGTTIN is ignored or blocked by the caller, or its group is orphaned.
//! - Background write with TOSTOP, and background TCSETS*/TCFLSH/TIOCSPGRP
//!   (`tty_check_change`): SIGTTOU and ERESTARTSYS; allowed if SIGTTOU is ignored or
//!   blocked; EIO if the group is orphaned (TIOCSPGRP turns that EIO into ENOTTY).
//!   The signalled call has no effect.
//! - A caller whose controlling terminal is another one (or none) is never checked.
//! - "Blocked" means SIGTTIN/SIGTTOU is a member of the thread's mask.
//!
//! Lock order, for a reader used to Linux: the model has no locks; each call runs to
//! completion, which is what Linux's tasklist_lock → siglock → ctrl.lock order ensures.

use crate::errno::{Errno, SysResult};
use crate::event::{BlockOn, Event};
use crate::file::{FileId, OpenFlags};
use crate::kernel::Kernel;
use crate::ldisc::{LdiscEffect, LdiscRead, LineDiscipline};
use crate::pending::{SiCode, SigInfo};
use crate::pid::Pid;
use crate::sigaction::Handler;
use crate::signal::Signal;
use crate::termios::{Termios, Winsize};
use serde::{Deserialize, Serialize};

/// Identifies a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TtyId(pub u32);

/// Where a terminal's bytes live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TtyKind {
    /// Simulated pty with the sentry's line discipline.
    Emulated,
    /// A host terminal fd; the sentry makes the job-control decisions only.
    HostBacked,
}

/// A terminal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tty {
    pub id: TtyId,
    pub name: String,
    pub kind: TtyKind,
    /// A pty slave (`TTY_DRIVER_TYPE_PTY`). Decides what a session leader's exit does:
    /// SIGHUP to the foreground group (pty) or a hangup of the session (other ttys).
    pub is_pty: bool,
    pub termios: Termios,
    pub winsize: Winsize,
    /// The session this is the controlling terminal of.
    pub session: Option<Pid>,
    /// The foreground process group (a PID number, as Linux keeps a `struct pid`).
    pub pgrp: Option<Pid>,
    /// Emulated only: the pty master is open (closing it hangs the slave up).
    pub master_open: bool,
    pub ldisc: LineDiscipline,
}

/// The outcome of a call that may block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocking<T> {
    Ready(T),
    /// The call would sleep; the kernel records what the thread waits on and emits
    /// [`Event::Wakeup`] when a retry can make progress.
    WouldBlock(BlockOn),
}

impl<T> Blocking<T> {
    pub fn ready(self) -> Option<T> {
        match self {
            Blocking::Ready(t) => Some(t),
            Blocking::WouldBlock(_) => None,
        }
    }
}

/// `tcsetattr` actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetTermiosAction {
    /// TCSETS / TCSANOW.
    Now,
    /// TCSETSW / TCSADRAIN.
    Drain,
    /// TCSETSF / TCSAFLUSH: also discards unread input.
    Flush,
}

/// `tcflow` actions on output (TCXONC's TCOOFF and TCOON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlowAction {
    /// TCOOFF: suspend output.
    OutputOff,
    /// TCOON: restart output suspended by TCOOFF.
    OutputOn,
}

/// `tcflush` queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlushQueue {
    Input,
    Output,
    Both,
}

impl Kernel {
    // ---- creation and inspection ---------------------------------------------------

    /// Creates an emulated pty pair (master open) and returns the slave terminal.
    pub fn create_pty(&mut self) -> TtyId {
        let id = TtyId(self.next_tty);
        self.next_tty += 1;
        let name = format!("pts/{}", id.0);
        self.ttys
            .insert(id, Tty::new(id, name, TtyKind::Emulated, true));
        id
    }

    /// Registers a host terminal whose data path the loader owns.
    pub fn create_host_tty(
        &mut self,
        name: &str,
        is_pty: bool,
        termios: Termios,
        winsize: Winsize,
    ) -> TtyId {
        let id = TtyId(self.next_tty);
        self.next_tty += 1;
        let mut t = Tty::new(id, name.to_string(), TtyKind::HostBacked, is_pty);
        t.termios = termios;
        t.winsize = winsize;
        self.ttys.insert(id, t);
        id
    }

    pub fn tty(&self, id: TtyId) -> Option<&Tty> {
        self.ttys.get(&id)
    }

    pub(crate) fn tty_ref(&self, id: TtyId) -> SysResult<&Tty> {
        self.ttys.get(&id).ok_or(Errno::ENXIO)
    }

    fn tty_mut(&mut self, id: TtyId) -> SysResult<&mut Tty> {
        self.ttys.get_mut(&id).ok_or(Errno::ENXIO)
    }

    /// The loader reports the host terminal's current termios (after a TCSETS it let
    /// through, or when it imports the terminal).
    pub fn tty_set_termios_observed(&mut self, id: TtyId, termios: Termios) -> SysResult<()> {
        self.tty_mut(id)?.termios = termios;
        Ok(())
    }

    // ---- the job-control core ------------------------------------------------------

    /// `is_ignored(sig)` of tty_jobctrl.c: in the caller thread's mask, or SIG_IGN.
    fn tty_sig_ignored(&self, tid: Pid, tgid: Pid, sig: Signal) -> SysResult<bool> {
        let blocked = self.tasks.get(&tid).ok_or(Errno::ESRCH)?.blocked;
        let handler = self.group(tgid)?.handlers.get(sig).handler;
        Ok(blocked.contains(sig) || handler == Handler::Ignore)
    }

    /// `__tty_check_change(tty, sig)`.
    fn tty_job_control(&mut self, tid: Pid, tty: TtyId, sig: Signal) -> SysResult<()> {
        let tgid = self.caller_tgid(tid)?;
        let (ctty, pgid) = {
            let g = self.group(tgid)?;
            (g.tty, g.pgid)
        };
        if ctty != Some(tty) {
            return Ok(());
        }
        let fg = self.tty_ref(tty)?.pgrp;
        match fg {
            Some(fg) if fg != pgid => {}
            _ => return Ok(()),
        }
        if self.tty_sig_ignored(tid, tgid, sig)? {
            return if sig == Signal::SIGTTIN {
                Err(Errno::EIO)
            } else {
                Ok(())
            };
        }
        if self.is_orphaned_pgrp(pgid) {
            return Err(Errno::EIO);
        }
        self.kill_pgrp_from_caller(pgid, sig, tid);
        Err(Errno::ERESTARTSYS)
    }

    /// Job-control check for a read of `tty` by `tid` (n_tty `job_control`).
    pub fn tty_check_read(&mut self, tid: Pid, tty: TtyId) -> SysResult<()> {
        self.tty_job_control(tid, tty, Signal::SIGTTIN)
    }

    /// Job-control check for a write: only with TOSTOP (n_tty_write).
    pub fn tty_check_write(&mut self, tid: Pid, tty: TtyId) -> SysResult<()> {
        if self.tty_ref(tty)?.termios.lflag(crate::termios::TOSTOP) {
            self.tty_job_control(tid, tty, Signal::SIGTTOU)
        } else {
            self.caller_tgid(tid).map(|_| ())
        }
    }

    /// `tty_check_change`: the check before TCSETS*, TCFLSH, TCXONC and TIOCSPGRP.
    pub fn tty_check_change(&mut self, tid: Pid, tty: TtyId) -> SysResult<()> {
        self.tty_job_control(tid, tty, Signal::SIGTTOU)
    }

    /// TIOCSPGRP (`tcsetpgrp`): background callers go through `tty_check_change` (its
    /// EIO becomes ENOTTY); then the terminal must be the caller's controlling terminal
    /// of the caller's session (ENOTTY); `pgrp` < 0 is EINVAL; it must name an existing
    /// PID (ESRCH) whose process group, or whose process, is in the caller's session
    /// (EPERM).
    pub fn tiocspgrp(&mut self, tid: Pid, tty: TtyId, pgrp: Pid) -> SysResult<()> {
        match self.tty_check_change(tid, tty) {
            Err(Errno::EIO) => return Err(Errno::ENOTTY),
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        if pgrp < 0 {
            return Err(Errno::EINVAL);
        }
        let tgid = self.caller_tgid(tid)?;
        let (ctty, sid) = {
            let g = self.group(tgid)?;
            (g.tty, g.sid)
        };
        if ctty != Some(tty) || self.tty_ref(tty)?.session != Some(sid) {
            return Err(Errno::ENOTTY);
        }
        let target_sid = if let Some(pg) = self.pgrps.get(&pgrp) {
            pg.sid
        } else if let Some(t) = self.tasks.get(&pgrp) {
            self.group(t.tgid)?.sid
        } else if self.pid_in_use(pgrp) {
            // A session ID with neither group nor task of that number left.
            -1
        } else {
            return Err(Errno::ESRCH);
        };
        if target_sid != sid {
            return Err(Errno::EPERM);
        }
        self.set_foreground(tty, Some(pgrp));
        Ok(())
    }

    pub(crate) fn set_foreground(&mut self, tty: TtyId, pgrp: Option<Pid>) {
        if let Some(t) = self.ttys.get_mut(&tty) {
            if t.pgrp != pgrp {
                t.pgrp = pgrp;
                self.emit(Event::ForegroundChanged { tty, pgrp });
            }
        }
    }

    fn set_tty_session(&mut self, tty: TtyId, session: Option<Pid>) {
        if let Some(t) = self.ttys.get_mut(&tty) {
            if t.session != session {
                t.session = session;
                self.emit(Event::ControllingSessionChanged { tty, session });
            }
        }
    }

    /// TIOCGPGRP (`tcgetpgrp`): ENOTTY unless this is the caller's controlling
    /// terminal; 0 when there is no foreground group.
    pub fn tiocgpgrp(&self, tid: Pid, tty: TtyId) -> SysResult<Pid> {
        let tgid = self.caller_tgid(tid)?;
        if self.group(tgid)?.tty != Some(tty) {
            return Err(Errno::ENOTTY);
        }
        Ok(self.tty_ref(tty)?.pgrp.unwrap_or(0))
    }

    /// TIOCGSID (`tcgetsid`): ENOTTY unless this is the caller's controlling terminal
    /// and it has a session.
    pub fn tiocgsid(&self, tid: Pid, tty: TtyId) -> SysResult<Pid> {
        let tgid = self.caller_tgid(tid)?;
        if self.group(tgid)?.tty != Some(tty) {
            return Err(Errno::ENOTTY);
        }
        self.tty_ref(tty)?.session.ok_or(Errno::ENOTTY)
    }

    /// TIOCSCTTY: a session leader without a controlling terminal takes `tty`. Already
    /// ours: success. Not a session leader, or already has one: EPERM. The terminal
    /// belongs to another session: EPERM unless `steal` (arg 1) and the caller has
    /// CAP_SYS_ADMIN, which takes it from every process of that session. A descriptor
    /// opened without read access needs CAP_SYS_ADMIN (EPERM).
    pub fn tiocsctty(
        &mut self,
        tid: Pid,
        tty: TtyId,
        steal: bool,
        readable: bool,
    ) -> SysResult<()> {
        let tgid = self.caller_tgid(tid)?;
        let (leader, sid, ctty, privileged) = {
            let g = self.group(tgid)?;
            (g.session_leader, g.sid, g.tty, g.privileged)
        };
        let tty_session = self.tty_ref(tty)?.session;
        if leader && tty_session == Some(sid) {
            return Ok(());
        }
        if !leader || ctty.is_some() {
            return Err(Errno::EPERM);
        }
        if let Some(other) = tty_session {
            if steal && privileged {
                self.session_clear_tty(other);
            } else {
                return Err(Errno::EPERM);
            }
        }
        if !readable && !privileged {
            return Err(Errno::EPERM);
        }
        self.proc_set_tty(tgid, tty);
        Ok(())
    }

    /// `__proc_set_tty`: the process's controlling terminal becomes `tty`, whose
    /// session and foreground group become the process's.
    pub(crate) fn proc_set_tty(&mut self, tgid: Pid, tty: TtyId) {
        let Some(g) = self.groups.get_mut(&tgid) else {
            return;
        };
        g.tty = Some(tty);
        g.tty_old_pgrp = None;
        let (sid, pgid) = (g.sid, g.pgid);
        self.set_tty_session(tty, Some(sid));
        self.set_foreground(tty, Some(pgid));
    }

    /// TIOCNOTTY: ENOTTY unless `tty` is the caller's controlling terminal. A session
    /// leader disassociates the whole session (SIGHUP then SIGCONT to the foreground
    /// group, the terminal loses its session and foreground group, every member loses
    /// its controlling terminal); anyone else only drops its own.
    pub fn tiocnotty(&mut self, tid: Pid, tty: TtyId) -> SysResult<()> {
        let tgid = self.caller_tgid(tid)?;
        if self.group(tgid)?.tty != Some(tty) {
            return Err(Errno::ENOTTY);
        }
        if self.group(tgid)?.session_leader {
            self.disassociate_ctty(tgid, false);
        }
        self.group_mut(tgid)?.tty = None;
        Ok(())
    }

    /// `disassociate_ctty(on_exit)` for session leader `tgid`.
    pub(crate) fn disassociate_ctty(&mut self, tgid: Pid, on_exit: bool) {
        let Some(g) = self.groups.get(&tgid) else {
            return;
        };
        if !g.session_leader {
            return;
        }
        let (ctty, sid, old_pgrp) = (g.tty, g.sid, g.tty_old_pgrp);
        let sender = if on_exit {
            SigInfo::kernel(Signal::SIGHUP)
        } else {
            SigInfo {
                signo: Signal::SIGHUP,
                code: SiCode::User,
                pid: tgid,
                status: 0,
            }
        };
        match ctty {
            Some(tty) => {
                let is_pty = self.ttys.get(&tty).is_some_and(|t| t.is_pty);
                if on_exit && !is_pty {
                    self.tty_hangup_inner(tty, true);
                } else if let Some(fg) = self.ttys.get(&tty).and_then(|t| t.pgrp) {
                    // TIOCNOTTY: the caller, if it is in that group, acts first.
                    let caller = (!on_exit).then_some(tgid);
                    self.kill_pgrp_info_from(fg, sender, caller);
                    if !on_exit {
                        self.kill_pgrp_info_from(
                            fg,
                            SigInfo {
                                signo: Signal::SIGCONT,
                                ..sender
                            },
                            caller,
                        );
                    }
                }
            }
            None => {
                if on_exit {
                    if let Some(old) = old_pgrp {
                        if let Some(g) = self.groups.get_mut(&tgid) {
                            g.tty_old_pgrp = None;
                        }
                        self.kill_pgrp_info(old, sender);
                        self.kill_pgrp_info(
                            old,
                            SigInfo {
                                signo: Signal::SIGCONT,
                                ..sender
                            },
                        );
                    }
                }
                return;
            }
        }
        if let Some(g) = self.groups.get_mut(&tgid) {
            g.tty_old_pgrp = None;
        }
        let ctty = self.groups.get(&tgid).and_then(|g| g.tty).or(ctty);
        if let Some(tty) = ctty {
            self.set_tty_session(tty, None);
            self.set_foreground(tty, None);
        }
        self.session_clear_tty(sid);
    }

    /// Hangs a terminal up (its pty master was closed, or the host terminal went away):
    /// every open description is hung up, each process of its session loses it as
    /// controlling terminal, each session leader among them gets SIGHUP then SIGCONT
    /// and remembers the foreground group, and the terminal loses its session and
    /// foreground group (`__tty_hangup(tty, 0)`).
    pub fn tty_hangup(&mut self, tty: TtyId) -> SysResult<()> {
        self.tty_ref(tty)?;
        self.tty_hangup_inner(tty, false);
        Ok(())
    }

    fn tty_hangup_inner(&mut self, tty: TtyId, exit_session: bool) {
        for f in self.files.values_mut() {
            if f.tty == tty {
                f.hung_up = true;
            }
        }
        self.emit(Event::TtyHangup { tty });
        let (session, fg) = match self.ttys.get(&tty) {
            Some(t) => (t.session, t.pgrp),
            None => return,
        };
        if let Some(sid) = session {
            for m in self.session_members(sid) {
                let Some(g) = self.groups.get_mut(&m) else {
                    continue;
                };
                if g.tty == Some(tty) {
                    g.tty = None;
                }
                if !g.session_leader {
                    continue;
                }
                if fg.is_some() {
                    g.tty_old_pgrp = fg;
                }
                self.send_signal_info(
                    crate::event::SignalTarget::Process(m),
                    SigInfo::kernel(Signal::SIGHUP),
                );
                self.send_signal_info(
                    crate::event::SignalTarget::Process(m),
                    SigInfo::kernel(Signal::SIGCONT),
                );
            }
        }
        if exit_session {
            if let Some(fg) = fg {
                self.kill_pgrp_info(fg, SigInfo::kernel(Signal::SIGHUP));
            }
        }
        self.set_tty_session(tty, None);
        self.set_foreground(tty, None);
        self.wake_readers(tty);
        // Writers asleep while output was stopped see the hangup (EIO) or their signal.
        self.wake_writers(tty);
    }

    /// The reader (or writer, after `on`) of a terminal that has waited longest,
    /// other than `tid` if `tid` came earlier (or is not waiting).
    fn earlier_waiter(&self, on: BlockOn, tid: Pid) -> Option<Pid> {
        let mine = self
            .tasks
            .get(&tid)
            .filter(|t| t.blocked_on == Some(on))
            .map_or(u64::MAX, |t| t.block_seq);
        self.tasks
            .values()
            .filter(|t| t.tid != tid && t.blocked_on == Some(on) && t.block_seq < mine)
            .min_by_key(|t| t.block_seq)
            .map(|t| t.tid)
    }

    /// After a reader took its turn: the next one may find input left.
    fn wake_next_reader(&mut self, tty: TtyId) {
        let on = BlockOn::TtyRead(tty);
        let Some(next) = self
            .tasks
            .values()
            .filter(|t| t.blocked_on == Some(on))
            .min_by_key(|t| t.block_seq)
            .map(|t| t.tid)
        else {
            return;
        };
        let readable = self
            .ttys
            .get(&tty)
            .is_some_and(|t| t.ldisc.readable(&t.termios));
        if readable {
            self.emit(Event::Wakeup { tid: next, on });
        }
    }

    /// Output restarted (`start_tty` → `tty_wakeup`) or the terminal hung up: every
    /// writer asleep in `n_tty_write` retries, the one that has waited longest first.
    fn wake_writers(&mut self, tty: TtyId) {
        let on = BlockOn::TtyWrite(tty);
        let mut waiting: Vec<(u64, Pid)> = self
            .tasks
            .values()
            .filter(|t| t.blocked_on == Some(on))
            .map(|t| (t.block_seq, t.tid))
            .collect();
        waiting.sort_unstable();
        for (_, tid) in waiting {
            self.emit(Event::Wakeup { tid, on });
        }
    }

    fn wake_readers(&mut self, tty: TtyId) {
        let on = BlockOn::TtyRead(tty);
        let waiting: Vec<Pid> = self
            .tasks
            .values()
            .filter(|t| t.blocked_on == Some(on))
            .map(|t| t.tid)
            .collect();
        // The reader stays in its read (`blocked_on` is kept): its retry continues the
        // same call, without a new job-control check, as n_tty_read loops.
        for tid in waiting {
            self.emit(Event::Wakeup { tid, on });
        }
    }

    /// TIOCSWINSZ (no job-control check in Linux): a changed size sends SIGWINCH to the
    /// foreground process group.
    pub fn tty_set_winsize(&mut self, tty: TtyId, ws: Winsize) -> SysResult<()> {
        let t = self.tty_mut(tty)?;
        if t.winsize == ws {
            return Ok(());
        }
        t.winsize = ws;
        if let Some(fg) = t.pgrp {
            self.kill_pgrp_info(fg, SigInfo::kernel(Signal::SIGWINCH));
        }
        Ok(())
    }

    // ---- descriptors -----------------------------------------------------------------

    /// `open()` of a terminal. Without O_NOCTTY, a session leader that has no
    /// controlling terminal acquires this one if it belongs to no session and the open
    /// is for reading (`tty_open_proc_set_tty`). A pty slave whose master is closed
    /// cannot be opened: its devpts node went away with the master (ENOENT).
    pub fn open_tty(&mut self, tid: Pid, tty: TtyId, flags: OpenFlags) -> SysResult<i32> {
        let tgid = self.caller_tgid(tid)?;
        let t = self.tty_ref(tty)?;
        if t.kind == TtyKind::Emulated && !t.master_open {
            return Err(Errno::ENOENT);
        }
        let tty_session = t.session;
        let file = self.new_file(tty, flags);
        let fd = match self.install_fd(tgid, file, flags.cloexec) {
            Ok(fd) => fd,
            Err(e) => {
                self.files.remove(&file);
                return Err(e);
            }
        };
        self.file_ref(file);
        let g = self.group(tgid)?;
        if !flags.noctty
            && g.session_leader
            && g.tty.is_none()
            && tty_session.is_none()
            && flags.read
        {
            self.proc_set_tty(tgid, tty);
        }
        Ok(fd)
    }

    /// `open("/dev/tty")`: the caller's controlling terminal (never acquires one);
    /// ENXIO without one.
    pub fn open_controlling_tty(&mut self, tid: Pid, flags: OpenFlags) -> SysResult<i32> {
        let tgid = self.caller_tgid(tid)?;
        let tty = self.group(tgid)?.tty.ok_or(Errno::ENXIO)?;
        self.open_tty(
            tid,
            tty,
            OpenFlags {
                noctty: true,
                ..flags
            },
        )
    }

    /// The terminal behind `fd`, failing as a hung-up description's ioctl does.
    fn fd_tty_for_ioctl(
        &self,
        tid: Pid,
        fd: i32,
        hung_up_errno: Errno,
    ) -> SysResult<(FileId, TtyId)> {
        let (id, f) = self.fd_file(tid, fd)?;
        if f.hung_up {
            return Err(hung_up_errno);
        }
        Ok((id, f.tty))
    }

    /// `read(fd, count)` on an emulated terminal: job-control check (unless this is
    /// the continuation of a read the thread was already blocked in), then the line
    /// discipline. A hung-up description reads 0 bytes (end of file), except for the
    /// read that was blocked when the master closed: EIO.
    pub fn read(&mut self, tid: Pid, fd: i32, count: usize) -> SysResult<Blocking<Vec<u8>>> {
        let (_, f) = self.fd_file(tid, fd)?;
        if !f.flags.read {
            return Err(Errno::EBADF);
        }
        let (tty, nonblock, hung_up) = (f.tty, f.flags.nonblock, f.hung_up);
        let on = BlockOn::TtyRead(tty);
        let continuing = self
            .tasks
            .get(&tid)
            .is_some_and(|t| t.blocked_on == Some(on));
        if hung_up {
            // A reader asleep when the master closed sees the other side gone (EIO,
            // n_tty_read's TTY_OTHER_CLOSED check); a read started after the hangup
            // reads end of file.
            let other_closed = self.tty_ref(tty).is_ok_and(|t| t.is_pty && !t.master_open);
            self.syscall_return(tid);
            return if continuing && other_closed {
                Err(Errno::EIO)
            } else {
                Ok(Blocking::Ready(Vec::new()))
            };
        }
        if !continuing {
            self.tty_check_read(tid, tty)?;
        }
        if self.tty_ref(tty)?.kind != TtyKind::Emulated {
            return Err(Errno::EINVAL);
        }
        // Readers take turns (n_tty_read's atomic_read_lock, held while it sleeps): a
        // reader that came earlier and is still waiting is served first.
        if self.earlier_waiter(on, tid).is_some() {
            if nonblock {
                self.syscall_return(tid);
                return Err(Errno::EAGAIN);
            }
            self.block_or_restart(tid, on)?;
            return Ok(Blocking::WouldBlock(on));
        }
        let t = self.tty_mut(tty)?;
        let termios = t.termios;
        match t.ldisc.read(&termios, count) {
            LdiscRead::Data(d) => {
                self.syscall_return(tid);
                self.wake_next_reader(tty);
                Ok(Blocking::Ready(d))
            }
            LdiscRead::Eof => {
                self.syscall_return(tid);
                self.wake_next_reader(tty);
                Ok(Blocking::Ready(Vec::new()))
            }
            LdiscRead::WouldBlock => {
                if nonblock {
                    self.syscall_return(tid);
                    return Err(Errno::EAGAIN);
                }
                self.block_or_restart(tid, on)?;
                Ok(Blocking::WouldBlock(on))
            }
        }
    }

    /// `write(fd, data)` on an emulated terminal (`tty_write` → `n_tty_write`):
    /// - The TOSTOP job-control check is made once, when the call starts; a writer
    ///   woken from its sleep does not make it again (a restarted call does).
    /// - While output is stopped (VSTOP with IXON, or TCOOFF) nothing is written: the
    ///   call sleeps until output restarts, or fails with EAGAIN on an O_NONBLOCK
    ///   description. Writers hold the terminal's write lock while they sleep, so
    ///   they complete in the order they came.
    /// - A woken writer first checks for a signal (ERESTARTSYS: EINTR, a restart, or
    ///   a stop and a restart after SIGCONT), then for a hangup (EIO), then writes.
    /// - A hung-up description fails with EIO.
    /// - At the start of the call (not when woken) the held echoes go out first.
    pub fn write(&mut self, tid: Pid, fd: i32, data: &[u8]) -> SysResult<Blocking<usize>> {
        let (_, f) = self.fd_file(tid, fd)?;
        if !f.flags.write {
            return Err(Errno::EBADF);
        }
        let (tty, nonblock, hung_up) = (f.tty, f.flags.nonblock, f.hung_up);
        let on = BlockOn::TtyWrite(tty);
        let continuing = self
            .tasks
            .get(&tid)
            .is_some_and(|t| t.blocked_on == Some(on));
        if continuing {
            // n_tty_write's loop: a pending signal ends the call before anything else.
            self.block_or_restart(tid, on)?;
        }
        if hung_up {
            if continuing {
                self.syscall_return(tid);
            }
            return Err(Errno::EIO);
        }
        if !continuing {
            self.tty_check_write(tid, tty)?;
        }
        if self.tty_ref(tty)?.kind != TtyKind::Emulated {
            return Err(Errno::EINVAL);
        }
        if !continuing {
            self.tty_mut(tty)?.ldisc.start_write();
        }
        let stopped = self.tty_ref(tty)?.ldisc.output_stopped();
        if stopped || self.earlier_waiter(on, tid).is_some() {
            if nonblock {
                if continuing {
                    self.syscall_return(tid);
                }
                return Err(Errno::EAGAIN);
            }
            self.block_or_restart(tid, on)?;
            return Ok(Blocking::WouldBlock(on));
        }
        let t = self.tty_mut(tty)?;
        let termios = t.termios;
        let n = t.ldisc.write(&termios, data);
        if continuing {
            self.syscall_return(tid);
            // The write lock passes to the next writer.
            self.wake_writers(tty);
        }
        Ok(Blocking::Ready(n))
    }

    /// `tcflow(fd, TCOOFF|TCOON)` (TCXONC): `tty_check_change` first. TCOOFF stops
    /// output until TCOON (VSTART does not end it); TCOON ends only a TCOOFF stop and
    /// wakes the writers, leaving held echoes for the next write or echo.
    pub fn tcflow(&mut self, tid: Pid, fd: i32, action: FlowAction) -> SysResult<()> {
        let (_, tty) = self.fd_tty_for_ioctl(tid, fd, Errno::EIO)?;
        self.tty_check_change(tid, tty)?;
        let t = self.tty_mut(tty)?;
        match action {
            FlowAction::OutputOff => t.ldisc.tco_stop(),
            FlowAction::OutputOn => {
                if t.ldisc.tco_start() {
                    self.wake_writers(tty);
                }
            }
        }
        Ok(())
    }

    /// `tcsetpgrp(fd, pgrp)`.
    pub fn tcsetpgrp(&mut self, tid: Pid, fd: i32, pgrp: Pid) -> SysResult<()> {
        let (_, tty) = self.fd_tty_for_ioctl(tid, fd, Errno::ENOTTY)?;
        self.tiocspgrp(tid, tty, pgrp)
    }

    /// `tcgetpgrp(fd)`.
    pub fn tcgetpgrp(&self, tid: Pid, fd: i32) -> SysResult<Pid> {
        let (_, tty) = self.fd_tty_for_ioctl(tid, fd, Errno::EIO)?;
        self.tiocgpgrp(tid, tty)
    }

    /// `tcgetsid(fd)`.
    pub fn tcgetsid(&self, tid: Pid, fd: i32) -> SysResult<Pid> {
        let (_, tty) = self.fd_tty_for_ioctl(tid, fd, Errno::EIO)?;
        self.tiocgsid(tid, tty)
    }

    /// `ioctl(fd, TIOCSCTTY, steal)`.
    pub fn ioctl_tiocsctty(&mut self, tid: Pid, fd: i32, steal: bool) -> SysResult<()> {
        let (_, f) = self.fd_file(tid, fd)?;
        if f.hung_up {
            return Err(Errno::EIO);
        }
        let (tty, readable) = (f.tty, f.flags.read);
        self.tiocsctty(tid, tty, steal, readable)
    }

    /// `ioctl(fd, TIOCNOTTY)`.
    pub fn ioctl_tiocnotty(&mut self, tid: Pid, fd: i32) -> SysResult<()> {
        let (_, tty) = self.fd_tty_for_ioctl(tid, fd, Errno::EIO)?;
        self.tiocnotty(tid, tty)
    }

    /// `tcgetattr(fd)`.
    pub fn tcgetattr(&self, tid: Pid, fd: i32) -> SysResult<Termios> {
        let (_, tty) = self.fd_tty_for_ioctl(tid, fd, Errno::EIO)?;
        Ok(self.tty_ref(tty)?.termios)
    }

    /// `tcsetattr(fd, action, termios)`: `tty_check_change` first (a background caller
    /// gets SIGTTOU and nothing changes).
    pub fn tcsetattr(
        &mut self,
        tid: Pid,
        fd: i32,
        action: SetTermiosAction,
        termios: Termios,
    ) -> SysResult<()> {
        let (_, tty) = self.fd_tty_for_ioctl(tid, fd, Errno::EIO)?;
        self.tty_check_change(tid, tty)?;
        let t = self.tty_mut(tty)?;
        let old = t.termios;
        t.termios = termios;
        let started = t.ldisc.set_termios(&old, &termios);
        if action == SetTermiosAction::Flush {
            t.ldisc.flush_input();
        }
        if t.ldisc.readable(&termios) {
            self.wake_readers(tty);
        }
        if started {
            self.wake_writers(tty);
        }
        Ok(())
    }

    /// `tcflush(fd, queue)`: `tty_check_change` first.
    pub fn tcflush(&mut self, tid: Pid, fd: i32, queue: FlushQueue) -> SysResult<()> {
        let (_, tty) = self.fd_tty_for_ioctl(tid, fd, Errno::EIO)?;
        self.tty_check_change(tid, tty)?;
        let t = self.tty_mut(tty)?;
        if matches!(queue, FlushQueue::Input | FlushQueue::Both) {
            t.ldisc.flush_input();
        }
        if matches!(queue, FlushQueue::Output | FlushQueue::Both) {
            t.ldisc.take_output();
        }
        Ok(())
    }

    /// `ioctl(fd, TIOCSWINSZ, ws)`.
    pub fn set_window_size(&mut self, tid: Pid, fd: i32, ws: Winsize) -> SysResult<()> {
        let (_, tty) = self.fd_tty_for_ioctl(tid, fd, Errno::EIO)?;
        self.tty_set_winsize(tty, ws)
    }

    /// `ioctl(fd, TIOCGWINSZ)`.
    pub fn window_size(&self, tid: Pid, fd: i32) -> SysResult<Winsize> {
        let (_, tty) = self.fd_tty_for_ioctl(tid, fd, Errno::EIO)?;
        Ok(self.tty_ref(tty)?.winsize)
    }

    /// `isatty`/`ttyname`-style lookup: the terminal behind a descriptor.
    pub fn fd_tty(&self, tid: Pid, fd: i32) -> SysResult<TtyId> {
        Ok(self.fd_file(tid, fd)?.1.tty)
    }

    // ---- the master side (the terminal emulator) ---------------------------------------

    /// Bytes typed at the terminal: the line discipline processes them; ISIG
    /// characters signal the foreground group (SI_KERNEL).
    pub fn master_write(&mut self, tty: TtyId, input: &[u8]) -> SysResult<()> {
        let t = self.tty_mut(tty)?;
        if t.kind != TtyKind::Emulated || !t.master_open {
            return Err(Errno::EIO);
        }
        let termios = t.termios;
        let effects = t.ldisc.receive(&termios, input);
        let readable = t.ldisc.readable(&termios);
        for e in effects {
            match e {
                LdiscEffect::Signal(sig) => {
                    if let Some(fg) = self.ttys.get(&tty).and_then(|t| t.pgrp) {
                        self.kill_pgrp_info(fg, SigInfo::kernel(sig));
                    }
                }
                LdiscEffect::OutputStarted => self.wake_writers(tty),
            }
        }
        if readable {
            self.wake_readers(tty);
        }
        Ok(())
    }

    /// Everything the terminal has output (program writes and echoes) since the last
    /// call.
    pub fn master_read(&mut self, tty: TtyId) -> SysResult<Vec<u8>> {
        Ok(self.tty_mut(tty)?.ldisc.take_output())
    }

    /// The terminal was resized (TIOCSWINSZ on the master).
    pub fn master_set_winsize(&mut self, tty: TtyId, ws: Winsize) -> SysResult<()> {
        self.tty_set_winsize(tty, ws)
    }

    /// Closes the pty master: the slave is hung up (`pty_close` → `tty_vhangup`).
    pub fn master_close(&mut self, tty: TtyId) -> SysResult<()> {
        let t = self.tty_mut(tty)?;
        if !t.master_open {
            return Err(Errno::EBADF);
        }
        t.master_open = false;
        self.tty_hangup(tty)
    }
}

impl Tty {
    fn new(id: TtyId, name: String, kind: TtyKind, is_pty: bool) -> Tty {
        Tty {
            id,
            name,
            kind,
            is_pty,
            termios: Termios::linux_default(),
            winsize: Winsize::default(),
            session: None,
            pgrp: None,
            master_open: kind == TtyKind::Emulated,
            ldisc: LineDiscipline::new(),
        }
    }
}
