//! The supervisor: answers the sandbox's notified system calls with the sentry's
//! decisions, forwards signals, and watches the sandbox's processes.
//!
//! Sentry decides, host executes:
//! - setsid / setpgid: the sentry applies the call; if it succeeds the host runs the
//!   same call (CONTINUE), so host groups and sessions equal the sentry's; if it fails
//!   the caller gets the sentry's errno and the host never runs it.
//! - Job-control ioctls on the borrowed terminal (TIOCSPGRP, TIOCGPGRP, TIOCGSID,
//!   TIOCSCTTY, TIOCNOTTY) are emulated entirely: the host terminal belongs to the
//!   user's session and its host foreground group stays the loader's.
//! - Termios changes, flushes and breaks on the borrowed terminal pass the sentry's
//!   background check (`tty_check_change`) and then run on the host.
//! - read/write on the borrowed terminal, and every other data path of
//!   `seccomp::TTY_IO_SYSCALLS` (readv/writev, the p*v2 and offset forms, sendfile,
//!   splice, tee, vmsplice, copy_file_range — each side by its direction): a caller
//!   in the foreground (or whose controlling terminal is not this one) continues at
//!   once, without a look at the fd; a background caller is checked by the sentry,
//!   which may answer EIO or send SIGTTIN/SIGTTOU to the caller's group and answer
//!   ERESTARTSYS, so the caller stops and restarts the call after SIGCONT, exactly as
//!   in Linux. Linux AIO is refused by the filter itself (ENOSYS).
//!
//! # What a CONTINUE after a check holds against a hostile program
//!
//! Nothing (seccomp_unotify(2)): between the check of a descriptor and the kernel's
//! run of the CONTINUE'd call another thread of the caller can `dup2` the terminal onto
//! the checked number. So in borrowed mode the background rules on read/write and on
//! termios changes are exact for programs that do not race, and a racing program can
//! read typed input or change the terminal's modes from the background. What does not
//! rest on a CONTINUE: the terminal never becomes a sandbox process's host controlling
//! terminal (TIOCSCTTY is answered here without the host running it, and a racing
//! TIOCSCTTY is refused by the host kernel: the terminal is the user's session's and
//! the program has no CAP_SYS_ADMIN); TIOCSPGRP/TIOCNOTTY never reach the host either
//! (and the host refuses them to another session); TIOCSTI, TIOCLINUX, TIOCCONS
//! are ERRNO rows of the program's policy; TIOCSETD and TIOCVHANGUP are performed by
//! the supervisor itself on the caller's very file (`pidfd_getfd`) when that file is a
//! pty of the sandbox's own devpts, and refused on any other (`crate::pty_ioctl`);
//! the terminal's modes are restored whole when the sandbox ends (`crate::sandbox`). `--tty=pty` gives the
//! sandbox a pty of its own: no sandbox process holds the user's terminal at all.
//! - The same ioctls and I/O on any other terminal (a pty the sandbox made itself)
//!   continue: the host is the sandbox's kernel for those.
//!
//! Every signal the sentry generates (SIGTTIN/SIGTTOU, SIGWINCH, SIGHUP at a session
//! leader's death, terminal signals forwarded from the user) is sent on the host.

use crate::procfs;
use crate::seccomp::{Listener, Notification, Response};
use crate::sys::tty as systty;
use crate::tracker::{NsThread, Tracker};
use sandbox_sentry::{Errno, HostTarget, Kernel, Pid, Termios, TtyId, Winsize};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// How a sandbox terminal is bound to the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Binding {
    /// A terminal of the caller's (`--tty`, `exec --tty`): never a sandbox process's
    /// host controlling terminal; the sentry enforces job control on it through
    /// notifications and emulates its job-control ioctls.
    Borrowed,
    /// A pty in the sandbox's own devpts, the real controlling terminal of its session:
    /// the host enforces the background rules and sends the terminal's signals; the
    /// sentry approves every job-control change first and the host then runs it.
    OwnedPty,
}

/// A terminal of the sandbox, bound to one session in the sentry.
pub(crate) struct Terminal {
    pub id: TtyId,
    pub binding: Binding,
    /// The loader's descriptor of it (a borrowed terminal, or an owned pty's master;
    /// none for a master handed out: holding it would keep the pty from hanging up).
    pub fd: Option<OwnedFd>,
    /// (`st_dev`, `st_ino`) of the device node: how a sandbox descriptor is recognised
    /// as this terminal.
    pub identity: (u64, u64),
    /// Host PID of its session's leader (init for the first program's terminal), whose
    /// `/proc` stat shows an owned pty's host foreground group.
    pub leader_host: i32,
    /// An owned pty the loader hung up (the user's terminal went away): every
    /// description of it is hung up, the host answers for it.
    pub hung_up: bool,
}

// Terminal ioctls the notify filter sends us (low 32 bits of the command).
const TCSETS: u32 = 0x5402;
const TCSETSW: u32 = 0x5403;
const TCSETSF: u32 = 0x5404;
const TCSETA: u32 = 0x5406;
const TCSETAW: u32 = 0x5407;
const TCSETAF: u32 = 0x5408;
const TCSBRK: u32 = 0x5409;
const TCXONC: u32 = 0x540A;
const TCFLSH: u32 = 0x540B;
const TIOCSCTTY: u32 = 0x540E;
const TIOCGPGRP: u32 = 0x540F;
const TIOCSPGRP: u32 = 0x5410;
const TIOCNOTTY: u32 = 0x5422;
const TCSBRKP: u32 = 0x5425;
const TIOCSBRK: u32 = 0x5427;
const TIOCCBRK: u32 = 0x5428;
const TIOCGSID: u32 = 0x5429;
const TCSETS2: u32 = 0x402C542B;
const TCSETSW2: u32 = 0x402C542C;
const TCSETSF2: u32 = 0x402C542D;

/// Counters for the performance notes and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotifyStats {
    pub notifications: u64,
    pub fast_path: u64,
    pub stopped_callers: u64,
    /// Processes the tracker adopted into the sentry.
    pub adopted: u64,
    /// Exits and reaps learnt from pidfd events.
    pub exit_events: u64,
    /// Full walks of the process tree (`/proc`) the tracker made.
    pub full_walks: u64,
}

pub(crate) struct Supervisor {
    pub k: Kernel,
    /// Every terminal of the sandbox: the first program's and those of exec'd
    /// processes.
    pub terminals: Vec<Terminal>,
    /// The first program's terminal (the one the loader's own signals and SIGWINCH
    /// concern).
    pub main: Option<TtyId>,
    pub procs: Tracker,
    pub stats: NotifyStats,
    /// Session leaders holding the borrowed terminal, watched for their death.
    pub leaders: Vec<(Pid, OwnedFd)>,
    /// Some process has set the terminal's foreground group: a job-control shell
    /// manages it (no suspend pass-through).
    pub tiocspgrp_seen: bool,
    /// A sandbox process sent a stop signal with kill/tkill/tgkill since the loop last
    /// looked (starts the suspend pass-through watch).
    pub stop_signal_seen: bool,
    /// The loader's own process group (read before the loader's allow-list forbids
    /// getpgrp).
    pub loader_pgrp: i32,
    /// Wakes the main loop (it polls this eventfd) when a notification needs its
    /// attention.
    pub wake: Option<nix::sys::eventfd::EventFd>,
    /// The main terminal is an owned pty proxied to the user's terminal: where window
    /// sizes come from.
    pub winsize_source: Option<OwnedFd>,
    /// The loader is a job of the user's shell (it forwards the process's signals):
    /// it may stop itself when the sandbox reads the terminal from the background.
    pub job_of_user_shell: bool,
    /// Whether the loader's process group is the borrowed terminal's foreground group
    /// on the host, for writes: known since the last refresh (None: not yet asked).
    /// A job changes between foreground and background only through a stop and a
    /// SIGCONT (`fg`, `bg`), or its shell's SIGTTIN/SIGTTOU/SIGCHLD traffic, so the
    /// loop refreshes it when the loader receives one of those
    /// ([`Supervisor::refresh_host_foreground`]) instead of a tcgetpgrp per write.
    /// Reads (where a stale answer would let a background job take typed input) ask
    /// the terminal every time.
    pub host_foreground: Option<bool>,
    /// The notification being answered: (listener, id), for
    /// `SECCOMP_IOCTL_NOTIF_ID_VALID` checks (see [`Supervisor::caller_valid`]).
    pub current: Option<(std::os::fd::RawFd, u64)>,
    /// Where foreground changes are reported (the [`crate::Sandbox`] handle's events).
    pub events: Option<crossbeam_channel::Sender<crate::SandboxEvent>>,
    /// `st_dev` of the sandbox's devpts instance, read at the first TIOCSETD or
    /// TIOCVHANGUP (see `crate::pty_ioctl`).
    pub devpts: Option<u64>,
}

impl Supervisor {
    pub fn terminal(&self, id: TtyId) -> Option<&Terminal> {
        self.terminals.iter().find(|t| t.id == id)
    }

    pub fn main_terminal(&self) -> Option<&Terminal> {
        self.main.and_then(|id| self.terminal(id))
    }

    pub fn main_terminal_mut(&mut self) -> Option<&mut Terminal> {
        let id = self.main?;
        self.terminals.iter_mut().find(|t| t.id == id)
    }

    fn binding(&self, id: TtyId) -> Binding {
        self.terminal(id).map_or(Binding::Borrowed, |t| t.binding)
    }

    /// Answers one notification.
    pub fn handle(&mut self, listener: &Listener, n: &Notification) {
        self.stats.notifications += 1;
        self.current = Some((listener.as_fd().as_raw_fd(), n.id));
        let resp = self.decide(n);
        self.current = None;
        self.drain_events();
        tracing::debug!(nr = n.nr, pid = n.pid, args = ?&n.args[..3], ?resp, "notification answered");
        if let Err(e) = listener.respond(n.id, resp) {
            tracing::debug!(%e, "notification answer not delivered (caller gone)");
        }
    }

    /// Whether the notification being answered is still pending: its task is still the
    /// one that made the call (`SECCOMP_IOCTL_NOTIF_ID_VALID`). Checked after every read
    /// of the caller's state (`/proc/PID/...`, its memory: the PID may have been reused
    /// if it died) and before every write into its memory (seccomp_unotify(2)).
    pub(crate) fn caller_valid(&self) -> bool {
        match self.current {
            Some((fd, id)) => Listener::id_valid_on(crate::sys::fd::borrow(fd), id),
            None => true,
        }
    }

    fn decide(&mut self, n: &Notification) -> Response {
        let host_tid = n.pid as i32;
        if n.nr == libc::SYS_ioctl && crate::pty_ioctl::is_supervised(n.args[1] as u32) {
            // Performed here on the caller's own file, never continued.
            return self.supervised_ioctl(n);
        }
        if self.procs.cached(host_tid).is_none() {
            if let Some(fds) = io_fds(n) {
                if self.unknown_caller_continues(host_tid) {
                    for (fd, write) in fds.into_iter().flatten() {
                        self.wait_for_host_foreground(host_tid, fd, write);
                    }
                    self.stats.fast_path += 1;
                    return Response::Continue;
                }
            }
        }
        // A caller the sentry knows is decided from the sentry alone: nothing is read
        // about it that a reused PID could have changed, and an answer to a call whose
        // caller died is refused by the kernel, so it needs no ID_VALID check.
        let known = self.procs.known(&self.k, host_tid).is_some();
        let Some(t) = self.tracked(|procs, k| procs.ensure_known(k, host_tid)) else {
            // Gone already, or not ours: let the kernel handle it.
            return Response::Continue;
        };
        if !known && !self.caller_valid() {
            // What /proc said may be another process's (the PID reused): decide nothing.
            return Response::Continue;
        }
        self.procs.caller_returned(t.tid);
        match n.nr {
            libc::SYS_setsid => self.setsid(t),
            libc::SYS_setpgid => self.setpgid(t, n.args[0] as i32, n.args[1] as i32),
            libc::SYS_ioctl => self.ioctl(t, host_tid, n),
            // preadv2/pwritev2 come at the current position (offset -1) only; the
            // positional forms are not notified (a tty is ESPIPE to them).
            libc::SYS_read | libc::SYS_readv | libc::SYS_preadv2 => {
                self.io(t, host_tid, n.args[0] as i32, false)
            }
            libc::SYS_write | libc::SYS_writev | libc::SYS_pwritev2 => {
                self.io(t, host_tid, n.args[0] as i32, true)
            }
            // sendfile(out, in, ..): writes `out`, reads `in`.
            libc::SYS_sendfile => self.io_pair(t, host_tid, n.args[1] as i32, n.args[0] as i32),
            // splice(in, off_in, out, ..) and copy_file_range(in, off_in, out, ..).
            libc::SYS_splice | libc::SYS_copy_file_range => {
                self.io_pair(t, host_tid, n.args[0] as i32, n.args[2] as i32)
            }
            // tee(in, out, ..).
            libc::SYS_tee => self.io_pair(t, host_tid, n.args[0] as i32, n.args[1] as i32),
            // vmsplice(fd, ..): reads or writes `fd` depending on its pipe end.
            libc::SYS_vmsplice => self.io_pair(t, host_tid, n.args[0] as i32, n.args[0] as i32),
            libc::SYS_kill | libc::SYS_tkill | libc::SYS_tgkill => {
                self.stop_signal_seen = true;
                if let Some(w) = &self.wake {
                    // The main loop watches for the job stopping.
                    let _ = w.write(1);
                }
                Response::Continue
            }
            _ => Response::Continue,
        }
    }

    /// A caller the sentry does not know yet (a new program's first reads): when the
    /// host says, for every sandbox terminal, that it is in the terminal's foreground
    /// group, or in another session than the terminal's (so the terminal is not its controlling terminal),
    /// its I/O continues as Linux would let it, and it is not adopted: no /proc read,
    /// two system calls (getsid, getpgid of the waiting caller, whose number cannot be
    /// reused while it waits). Its group and session are the host's, which equal the
    /// sentry's for every process (they change only through calls the sentry decides,
    /// whose targets it then knows).
    fn unknown_caller_continues(&self, host_tid: i32) -> bool {
        let caller = nix::unistd::Pid::from_raw(host_tid);
        // (sid, pgid) of the caller, asked once, only if a terminal has a session.
        let mut ids: Option<(i32, i32)> = None;
        for term in &self.terminals {
            let Some(tty) = self.k.tty(term.id) else {
                continue;
            };
            let Some(session) = tty.session else {
                continue;
            };
            let Some(session_host) = self.procs.host_pid(session) else {
                return false;
            };
            let (sid, pgid) = match ids {
                Some(v) => v,
                None => {
                    let (Ok(sid), Ok(pgid)) = (
                        nix::unistd::getsid(Some(caller)),
                        nix::unistd::getpgid(Some(caller)),
                    ) else {
                        return false;
                    };
                    *ids.insert((sid.as_raw(), pgid.as_raw()))
                }
            };
            if sid != session_host {
                continue;
            }
            match tty.pgrp.and_then(|p| self.procs.host_pid(p)) {
                Some(fg) if pgid == fg => continue,
                _ => return false,
            }
        }
        true
    }

    fn errno(e: Errno) -> Response {
        Response::Error(e.0)
    }

    fn setsid(&mut self, t: NsThread) -> Response {
        self.observe();
        // A process group with the caller's number may hold only processes the sentry
        // never saw (the caller led it, left it, and its children stayed): Linux then
        // refuses the setsid. One kill(-pid, 0) tells.
        if self.k.pgrp_members(t.tgid).is_empty() {
            if let Some(h) = self.procs.host_pid(t.tgid) {
                let probe = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-h), None);
                if probe.is_ok() {
                    self.reconcile();
                }
            }
        }
        let mut r = self.k.setsid(t.tid);
        if r.is_err() {
            // A refusal may rest on what the sentry does not know: decide with all of it.
            self.reconcile();
            r = self.k.setsid(t.tid);
        }
        match r {
            Ok(_) => {
                self.procs.approved(t.tid, t.tgid);
                Response::Continue
            }
            Err(e) => Self::errno(e),
        }
    }

    fn setpgid(&mut self, t: NsThread, pid: i32, pgid: i32) -> Response {
        self.observe();
        if pid > 0 {
            self.tracked(|procs, k| {
                procs.ensure_child(k, t.tgid, pid);
                if pid != t.tgid {
                    procs.refresh_exec(k, pid);
                }
            });
        }
        let mut r = self.k.setpgid(t.tid, pid, pgid);
        if r == Err(Errno::ESRCH) && pid > 0 {
            // `pid` may be a thread of a process the sentry never saw (not the caller's
            // child): Linux finds it and answers EINVAL, not ESRCH. A full walk adopts
            // that process; `ensure_process` then finds the thread.
            if self.tracked(|procs, k| procs.ensure_process(k, pid)) {
                r = self.k.setpgid(t.tid, pid, pgid);
            }
        }
        if r == Err(Errno::EPERM) {
            // The group may exist with members the sentry never saw: decide with all.
            self.reconcile();
            r = self.k.setpgid(t.tid, pid, pgid);
        }
        match r {
            Ok(()) => {
                let target = if pid == 0 { t.tgid } else { pid };
                self.procs.approved(t.tid, target);
                Response::Continue
            }
            Err(e) => Self::errno(e),
        }
    }

    /// Whether the caller's descriptor is the sandbox's terminal: its device node, or
    /// `/dev/tty` (5,0) opened by a process whose controlling terminal it is (the
    /// kernel resolves /dev/tty at open, but the descriptor keeps /dev/tty's inode).
    fn is_borrowed_tty(&self, host_tid: i32, fd: i32) -> Option<TtyId> {
        if self.terminals.is_empty() {
            return None;
        }
        let (dev, ino, rdev) = procfs::fd_stat(host_tid, fd).ok()?;
        if !self.caller_valid() {
            return None;
        }
        if let Some(t) = self.terminals.iter().find(|t| t.identity == (dev, ino)) {
            return Some(t.id);
        }
        if rdev == libc::makedev(5, 0) {
            // /dev/tty of an owned pty's session (a borrowed terminal's /dev/tty is a
            // bind of its device: found above).
            let tgid = self.procs.cached(host_tid)?.tgid;
            let ctty = self.k.thread_group(tgid)?.tty?;
            if self.binding(ctty) == Binding::OwnedPty {
                return Some(ctty);
            }
        }
        None
    }

    /// Whether the sentry would check this caller's I/O on `tty` at all: its
    /// controlling terminal is `tty` and it is not in the foreground group.
    fn in_background_of(&self, t: NsThread, tty: TtyId) -> bool {
        let Some(g) = self.k.thread_group(t.tgid) else {
            return false;
        };
        if g.tty != Some(tty) {
            return false;
        }
        match self.k.tty(tty).and_then(|x| x.pgrp) {
            Some(fg) => fg != g.pgid,
            None => false,
        }
    }

    fn io(&mut self, t: NsThread, host_tid: i32, fd: i32, write: bool) -> Response {
        if self.terminals.is_empty() {
            return Response::Continue;
        }
        self.wait_for_host_foreground(host_tid, fd, write);
        // Linux checks a caller's I/O only on its own controlling terminal.
        let Some(tty_id) = self.k.thread_group(t.tgid).and_then(|g| g.tty) else {
            self.stats.fast_path += 1;
            return Response::Continue;
        };
        if !self.in_background_of(t, tty_id) {
            self.stats.fast_path += 1;
            return Response::Continue;
        }
        if self.is_borrowed_tty(host_tid, fd) != Some(tty_id) {
            self.stats.fast_path += 1;
            return Response::Continue;
        }
        let tty = tty_id;
        self.reconcile();
        self.refresh_signal_state(t, host_tid);
        let r = if write {
            self.refresh_termios(tty);
            self.k.tty_check_write(t.tid, tty)
        } else {
            self.k.tty_check_read(t.tid, tty)
        };
        self.answer(r.map(|()| Response::Continue))
    }

    /// A call that reads `input` and writes `output`: both checks apply, the read first.
    fn io_pair(&mut self, t: NsThread, host_tid: i32, input: i32, output: i32) -> Response {
        match self.io(t, host_tid, input, false) {
            Response::Continue => self.io(t, host_tid, output, true),
            other => other,
        }
    }

    /// The whole sandbox is a job of the user's shell. While that job is in the
    /// background of the user's terminal, a sandbox process reading it (or writing it
    /// with TOSTOP) must stop the job, as Linux stops a background job: the loader stops
    /// itself with SIGTTIN/SIGTTOU (the caller waits in its notification meanwhile) and
    /// carries on once the user's `fg` continues it. One ioctl per call when the loader
    /// is in the foreground.
    fn wait_for_host_foreground(&mut self, host_tid: i32, fd: i32, write: bool) {
        if !self.job_of_user_shell {
            return;
        }
        // Twice at most: a stop that did not happen (an orphaned job's stop signals are
        // discarded) must not spin.
        for _ in 0..2 {
            let foreground = match self.host_foreground {
                Some(f) if write => f,
                _ => self.refresh_host_foreground(),
            };
            if foreground {
                return;
            }
            let Some(tfd) = self.main_terminal().and_then(|t| t.fd.as_ref()) else {
                return;
            };
            let tfd = tfd.as_raw_fd();
            // Only the loader's own terminal: the user's shell's job is the loader.
            if self.main.is_none() || self.is_borrowed_tty(host_tid, fd) != self.main {
                return;
            }
            let sig = if write {
                match systty::tcgets(crate::sys::fd::borrow(tfd)) {
                    Ok(t) if t.c_lflag & libc::TOSTOP != 0 => libc::SIGTTOU,
                    _ => return,
                }
            } else {
                libc::SIGTTIN
            };
            tracing::info!(
                sig,
                "sandbox is a background job of the user's terminal: stopping"
            );
            let stopped = crate::sys::signal::stop_self(sig);
            self.refresh_host_foreground();
            if !stopped {
                return;
            }
        }
    }

    /// Asks the borrowed terminal whether the loader's group is its foreground group
    /// (see [`Supervisor::host_foreground`]); a terminal that cannot tell counts as
    /// foreground (nothing to stop for).
    pub fn refresh_host_foreground(&mut self) -> bool {
        let Some(tfd) = self.main_terminal().and_then(|t| t.fd.as_ref()) else {
            return true;
        };
        let foreground =
            !matches!(systty::tcgetpgrp(tfd.as_fd()), Ok(fg) if fg != self.loader_pgrp);
        self.host_foreground = Some(foreground);
        foreground
    }

    fn ioctl(&mut self, t: NsThread, host_tid: i32, n: &Notification) -> Response {
        let fd = n.args[0] as i32;
        let cmd = n.args[1] as u32;
        let arg = n.args[2];
        let Some(tty) = self.is_borrowed_tty(host_tid, fd) else {
            return Response::Continue;
        };
        let owned = self.binding(tty) == Binding::OwnedPty;
        if owned && matches!(cmd, TIOCSPGRP | TIOCSCTTY | TIOCNOTTY) {
            self.observe_host_session(tty);
        }
        let hung_up = match self.terminal(tty) {
            Some(t) if owned => t.hung_up,
            Some(t) => t.fd.as_ref().is_some_and(|f| systty::hung_up(f.as_fd())),
            None => false,
        };
        if hung_up
            && matches!(
                cmd,
                TIOCSPGRP | TIOCGPGRP | TIOCGSID | TIOCSCTTY | TIOCNOTTY
            )
        {
            if owned {
                // The owned pty's master is gone: every description of it is hung up
                // and it cannot be reopened; the host answers (EIO, ENOTTY for
                // TIOCSPGRP) without running the request.
                return Response::Continue;
            }
            // A hung-up borrowed terminal: answered here as `hung_up_tty_ioctl` does,
            // never continued (a terminal that can be reopened, whose session the
            // hangup cleared, must not become a sandbox process's host controlling
            // terminal through a fresh descriptor).
            return Self::errno(if cmd == TIOCSPGRP {
                Errno::ENOTTY
            } else {
                Errno::EIO
            });
        }
        match cmd {
            TCSETS | TCSETSW | TCSETSF | TCSETA | TCSETAW | TCSETAF | TCSETS2 | TCSETSW2
            | TCSETSF2 | TCFLSH | TCXONC | TCSBRK | TCSBRKP | TIOCSBRK | TIOCCBRK => {
                if !self.in_background_of(t, tty) {
                    return Response::Continue;
                }
                self.reconcile();
                self.refresh_signal_state(t, host_tid);
                let r = self.k.tty_check_change(t.tid, tty);
                self.answer_background(owned, r.map(|()| Response::Continue))
            }
            // Owned pty: the host answers queries (its values are the sentry's).
            TIOCGPGRP | TIOCGSID if owned => Response::Continue,
            TIOCGPGRP => {
                let r = self.k.tiocgpgrp(t.tid, tty);
                self.answer_int(host_tid, arg, r)
            }
            TIOCGSID => {
                let r = self.k.tiocgsid(t.tid, tty);
                self.answer_int(host_tid, arg, r)
            }
            TIOCSPGRP => {
                let pgrp = match crate::seccomp::read_i32(host_tid as u32, arg) {
                    Ok(v) => v,
                    Err(_) => return Self::errno(Errno::EFAULT),
                };
                if !self.caller_valid() {
                    return Self::errno(Errno::ESRCH);
                }
                self.observe();
                if pgrp > 0 {
                    // A PID of the session that is not a group is accepted: also a
                    // thread's, which the sentry may not have seen yet.
                    self.tracked(|procs, k| procs.ensure_process(k, pgrp));
                }
                self.refresh_signal_state(t, host_tid);
                let mut r = self.k.tiocspgrp(t.tid, tty, pgrp);
                if r == Err(Errno::EPERM) || r == Err(Errno::ESRCH) {
                    // The group may hold only processes the sentry never saw.
                    self.reconcile();
                    r = self.k.tiocspgrp(t.tid, tty, pgrp);
                }
                if r.is_ok() {
                    self.tiocspgrp_seen = true;
                    if owned {
                        self.procs
                            .approved(t.tid, crate::tracker::foreground_key(tty.0));
                    }
                }
                let done = Self::done(owned);
                self.answer_background(owned, r.map(|()| done))
            }
            TIOCSCTTY => {
                self.reconcile();
                let readable = procfs::fd_readable(host_tid, n.args[0] as i32);
                if !self.caller_valid() {
                    return Self::errno(Errno::ESRCH);
                }
                let r = self.k.tiocsctty(t.tid, tty, arg == 1, readable);
                if r.is_ok() && !owned {
                    self.watch_leader(t.tgid);
                }
                let done = Self::done(owned);
                self.answer(r.map(|()| done))
            }
            TIOCNOTTY => {
                self.reconcile();
                let r = self.k.tiocnotty(t.tid, tty);
                if owned {
                    // The host's own TIOCNOTTY sends the session's SIGHUP/SIGCONT.
                    let _ = self.k.take_host_signals();
                }
                let done = Self::done(owned);
                self.answer(r.map(|()| done))
            }
            _ => Response::Continue,
        }
    }

    /// Owned pty: a session leader without a controlling terminal that opened the pty
    /// without O_NOCTTY acquired it on the host (`tty_open_proc_set_tty`); open() is
    /// not notified, so while the sentry's pty has no session, the session the host
    /// shows (TIOCGSID on the master, which answers for the slave whoever asks) is
    /// adopted before a job-control call that depends on it. The host is the truth
    /// for an owned pty: only one session can hold it there.
    fn observe_host_session(&mut self, tty: TtyId) {
        // A holder that died since the last look has freed it (its leader's exit).
        self.observe();
        if self.k.tty(tty).is_none_or(|x| x.session.is_some()) {
            return;
        }
        let Some(master) = self.terminal(tty).and_then(|t| t.fd.as_ref()) else {
            return;
        };
        let Ok(host_sid) = systty::tcgetsid(master.as_fd()) else {
            return;
        };
        self.reconcile();
        let Some(sid) = self.procs.ns_pid(host_sid) else {
            return;
        };
        self.tracked(|procs, k| procs.ensure_process(k, sid));
        match self.k.open_tty(sid, tty, sandbox_sentry::OpenFlags::RDWR) {
            Ok(_) => tracing::debug!(sid, "the host gave the pty to a session: adopted"),
            Err(e) => {
                tracing::warn!(%e, sid, "could not adopt the pty's session");
                return;
            }
        }
        // Members adopted before now did not get it from their session: the host says
        // which hold it (one that dropped it with TIOCNOTTY does not).
        let Some(want) = procfs::read(host_sid).ok().map(|i| i.tty_nr) else {
            return;
        };
        for member in self.k.session_members(sid) {
            let has = self
                .procs
                .host_pid(member)
                .and_then(|h| procfs::read(h).ok())
                .is_some_and(|i| i.tty_nr == want && want != 0);
            if has {
                let _ = self.k.host_set_tty(member, tty);
            }
        }
    }

    /// The answer to an approved terminal change: emulated entirely on a borrowed
    /// terminal (the host never sees it), run by the host on an owned pty.
    fn done(owned: bool) -> Response {
        if owned {
            Response::Continue
        } else {
            Response::Return(0)
        }
    }

    fn answer_int(&mut self, host_tid: i32, addr: u64, r: Result<Pid, Errno>) -> Response {
        tracing::debug!(?r, "terminal query answered");
        match r {
            // Never into another process's memory (the caller died, its PID reused).
            Ok(_) if !self.caller_valid() => Self::errno(Errno::ESRCH),
            Ok(v) => match crate::seccomp::write_i32(host_tid as u32, addr, v) {
                Ok(()) => Response::Return(0),
                Err(_) => Self::errno(Errno::EFAULT),
            },
            Err(e) => Self::errno(e),
        }
    }

    /// Takes the sentry's events (so that they do not pile up) and reports foreground
    /// changes.
    pub fn drain_events(&mut self) {
        for e in self.k.take_events() {
            if let sandbox_sentry::Event::ForegroundChanged { pgrp, .. } = e {
                if let Some(tx) = &self.events {
                    let _ = tx.send(crate::SandboxEvent::ForegroundChanged { pgrp });
                }
            }
        }
    }

    /// An embedder resized the sandbox's terminal: an owned pty takes the size (the
    /// host sends SIGWINCH); a borrowed terminal's size is the embedder's to set, the
    /// sentry records it and sends SIGWINCH to the foreground group if it changed.
    pub fn set_size(&mut self, rows: u16, cols: u16) {
        let Some(id) = self.main else {
            return;
        };
        self.apply_winsize(
            id,
            libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        );
    }

    /// A new window size for the sandbox's terminal: an owned pty's master takes it
    /// (the host then signals the foreground itself); the sentry records it and, for a
    /// borrowed terminal, sends SIGWINCH to the foreground group if it changed.
    fn apply_winsize(&mut self, id: TtyId, ws: libc::winsize) {
        let Some(tty) = self.terminal(id) else {
            return;
        };
        let owned = tty.binding == Binding::OwnedPty;
        if owned {
            if let Some(fd) = &tty.fd {
                let _ = systty::set_winsize(fd.as_fd(), &ws);
            }
        }
        let _ = self.k.tty_set_winsize(id, winsize_from_host(&ws));
        if owned {
            let _ = self.k.take_host_signals();
        } else {
            let _ = self.send_host_signals();
        }
        self.drain_events();
    }

    /// Applies the exits and reaps the host reported (see `crate::tracker`): the
    /// common path before a decision, no /proc walk.
    pub fn observe(&mut self) {
        self.tracked(|procs, k| procs.observe(k));
        self.check_owned_foregrounds();
    }

    /// Brings the sentry up to date with the host by a full walk (see
    /// `crate::tracker`).
    pub fn reconcile(&mut self) {
        self.tracked(|procs, k| procs.reconcile(k));
        self.check_owned_foregrounds();
    }

    /// Runs a tracker operation, which may observe deaths, births and reaps on the
    /// host, then sends what those make the sentry send (see
    /// [`Supervisor::after_reconcile`]). Every walk of the tracker goes through here:
    /// a death learnt while translating a caller is as much the host's as one learnt
    /// by a full walk.
    fn tracked<R>(&mut self, f: impl FnOnce(&mut Tracker, &mut Kernel) -> R) -> R {
        self.procs.ttys.clear();
        self.procs.ttys.extend(self.terminals.iter().map(|t| t.id));
        let before = self.owned_pty_sessions();
        let r = f(&mut self.procs, &mut self.k);
        // The common case (a known caller, nothing died): nothing to send or drop.
        if self.k.has_host_signals() {
            self.after_reconcile(&before);
        }
        r
    }

    /// Owned ptys: the host's foreground group must be the sentry's.
    fn check_owned_foregrounds(&mut self) {
        for id in self.owned_ptys() {
            self.check_foreground(id);
        }
    }

    /// The sandbox's owned ptys (none without one: no allocation).
    fn owned_ptys(&self) -> Vec<TtyId> {
        self.terminals
            .iter()
            .filter(|t| t.binding == Binding::OwnedPty)
            .map(|t| t.id)
            .collect()
    }

    /// The sessions that hold an owned pty now (none without one: no allocation).
    fn owned_pty_sessions(&self) -> Vec<Pid> {
        self.terminals
            .iter()
            .filter(|t| t.binding == Binding::OwnedPty)
            .filter_map(|t| self.k.tty(t.id).and_then(|x| x.session))
            .collect()
    }

    /// What the observed deaths make the sentry send (a session leader's SIGHUP to its
    /// terminal's foreground group) is sent at once, before the call that made the
    /// loader look is answered — except with an owned pty, whose host kernel has sent
    /// it already. `before`: the sessions that held an owned pty before the deaths were
    /// applied — the leader's death has taken the terminal from its session by now, and
    /// the signals it caused go to that session's groups.
    fn after_reconcile(&mut self, before: &[Pid]) {
        let owned = self.owned_ptys();
        if owned.is_empty() {
            let _ = self.send_host_signals();
            return;
        }
        // What the sentry would send to an owned pty's session the host has sent
        // already; the rest (a borrowed terminal's session) is sent now.
        let (dropped, keep): (Vec<_>, Vec<_>) =
            self.k.take_host_signals().into_iter().partition(|s| {
                self.signal_session_tty(s.target)
                    .is_some_and(|t| owned.contains(&t))
                    || self
                        .signal_session(s.target)
                        .is_some_and(|sid| before.contains(&sid))
            });
        if !dropped.is_empty() {
            tracing::debug!(?dropped, "sent by the host itself (owned pty)");
        }
        let _ = self.send_signals(keep);
    }

    /// The controlling terminal of the session a host signal's target is in.
    fn signal_session_tty(&self, target: HostTarget) -> Option<TtyId> {
        let sid = self.signal_session(target)?;
        self.terminals
            .iter()
            .find(|t| self.k.tty(t.id).is_some_and(|x| x.session == Some(sid)))
            .map(|t| t.id)
    }

    /// The session a host signal's target is in.
    fn signal_session(&self, target: HostTarget) -> Option<Pid> {
        match target {
            HostTarget::ProcessGroup(pg) => self.k.process_group(pg).map(|g| g.sid),
            HostTarget::Process(p) => self.k.thread_group(p).map(|g| g.sid),
            HostTarget::Thread(t) => self
                .k
                .task(t)
                .and_then(|x| self.k.thread_group(x.tgid))
                .map(|g| g.sid),
        }
    }

    /// Owned pty: the host's foreground group (init's terminal's, from /proc) must be
    /// the sentry's, unless an approved change may not have run yet.
    fn check_foreground(&mut self, id: TtyId) {
        if self
            .procs
            .foreground_in_flight(crate::tracker::foreground_key(id.0))
        {
            return;
        }
        let Some(leader_host) = self.terminal(id).map(|t| t.leader_host) else {
            return;
        };
        let Ok(leader) = procfs::read(leader_host) else {
            return;
        };
        // An exiting leader has already dropped the pty (its death is observed next).
        if leader.is_zombie() || leader.exiting {
            return;
        }
        let host = match leader.host_tpgid {
            // A group the tracker has no number for yet (its leader never made a
            // notified call): one read of the leader's /proc.
            h if h > 0 => self
                .procs
                .ns_pid(h)
                .or_else(|| self.procs.translate(&mut self.k, h).map(|t| t.tgid)),
            _ => None,
        };
        let model = self.k.tty(id).and_then(|t| t.pgrp);
        let leader_ns = self.procs.cached(leader_host).map(|t| t.tgid);
        if host != model
            && leader_ns.is_some()
            && self.k.tty(id).is_some_and(|t| t.session == leader_ns)
        {
            self.procs.violation(format!(
                "lockstep violation: the pty's foreground group is {host:?} on the host \
                 but {model:?} in the sentry"
            ));
        }
    }

    /// The answer to a call the background rules stop (`ERESTARTSYS` with SIGTTOU or
    /// SIGTTIN to the caller's group). On an owned pty the host applies the same rule
    /// to the same state: the call continues and the host raises the signal itself,
    /// from the caller's own system call, so that the caller acts on it first as on
    /// Linux (a `kill` from the loader would reach the group's members in another
    /// order); the sentry's copy of the signal is dropped.
    fn answer_background(&mut self, owned: bool, r: Result<Response, Errno>) -> Response {
        if owned && r == Err(Errno::ERESTARTSYS) {
            self.stats.stopped_callers += 1;
            let dropped = self.k.take_host_signals();
            tracing::debug!(?dropped, "background stop left to the host (owned pty)");
            return Response::Continue;
        }
        self.answer(r)
    }

    /// Sends what the sentry generated, then answers.
    fn answer(&mut self, r: Result<Response, Errno>) -> Response {
        if r == Err(Errno::ERESTARTSYS) {
            self.stats.stopped_callers += 1;
        }
        let _ = self.send_host_signals();
        match r {
            Ok(resp) => resp,
            Err(e) => Self::errno(e),
        }
    }

    fn refresh_signal_state(&mut self, t: NsThread, host_tid: i32) {
        if let Ok(info) = procfs::read(host_tid).map_err(drop).and_then(|i| {
            if self.caller_valid() {
                Ok(i)
            } else {
                Err(())
            }
        }) {
            let _ = self.k.host_set_signal_state(
                t.tid,
                sigset_from_proc(info.sig_blocked),
                sigset_from_proc(info.sig_ignored),
            );
        }
    }

    fn refresh_termios(&mut self, id: TtyId) {
        let Some(tty) = self.terminal(id) else {
            return;
        };
        let Some(fd) = &tty.fd else {
            return;
        };
        if let Ok(t) = systty::tcgets(fd.as_fd()) {
            let _ = self.k.tty_set_termios_observed(id, termios_from_host(&t));
        }
    }

    /// Watches a session leader holding the borrowed terminal: at its death the sentry
    /// hangs up the foreground group.
    fn watch_leader(&mut self, tgid: Pid) {
        if self.leaders.iter().any(|(p, _)| *p == tgid) {
            return;
        }
        if let Some(host) = self.procs.host_pid(tgid) {
            if let Ok(fd) = crate::sys::clone::pidfd_open(host) {
                self.leaders.push((tgid, fd));
                // The main loop polls the leaders' pidfds: make it take the new one
                // now, so that the leader's death hangs up the foreground at once.
                if let Some(w) = &self.wake {
                    let _ = w.write(1);
                }
            }
        }
    }

    /// A watched leader's pidfd became readable (it died).
    pub fn leader_died(&mut self, idx: usize) {
        if idx < self.leaders.len() {
            self.leaders.remove(idx);
        }
        self.observe();
        let _ = self.send_host_signals();
    }

    /// The terminal's window size changed (SIGWINCH at the loader): the size is read
    /// from the user's terminal proxied to an owned pty, or from the borrowed terminal.
    pub fn resized(&mut self) {
        let Some(main) = self.main_terminal() else {
            return;
        };
        let id = main.id;
        let source = match main.binding {
            Binding::OwnedPty => self.winsize_source.as_ref(),
            Binding::Borrowed => main.fd.as_ref(),
        };
        if let Some(ws) = source.and_then(|fd| systty::get_winsize(fd.as_fd()).ok()) {
            self.apply_winsize(id, ws);
        }
    }

    /// The user's terminal proxied to the first program's owned pty hung up: hang the
    /// pty up too (close every master descriptor the loader holds); the host sends the
    /// session leader its SIGHUP and SIGCONT, the sentry records the hangup.
    pub fn hang_up_owned(&mut self) {
        self.reconcile();
        let Some(t) = self.main_terminal_mut() else {
            return;
        };
        if t.binding != Binding::OwnedPty {
            return;
        }
        t.fd = None;
        t.hung_up = true;
        let id = t.id;
        let _ = self.k.tty_hangup(id);
        let _ = self.k.take_host_signals();
    }

    /// The borrowed terminal of the first program is hung up (POLLHUP) and a session
    /// inside the sandbox other than init's holds it: the loader's SIGHUP is then that
    /// hangup, which the sentry plays. (When init's session holds it, init relays
    /// SIGHUP to the program's group, as a shell does.)
    pub fn borrowed_tty_hung_up(&self) -> bool {
        let Some(tty) = self.main_terminal() else {
            return false;
        };
        if tty.binding != Binding::Borrowed {
            return false;
        }
        let held_inside = self
            .k
            .tty(tty.id)
            .and_then(|t| t.session)
            .is_some_and(|s| s != Kernel::INIT);
        held_inside
            && tty
                .fd
                .as_ref()
                .is_some_and(|fd| systty::hung_up(fd.as_fd()))
    }

    /// Sets the size of the sandbox terminal `tty` (see [`Supervisor::set_size`]).
    pub fn set_size_of(
        &mut self,
        tty: TtyId,
        rows: u16,
        cols: u16,
    ) -> Result<(), crate::LoaderError> {
        if self.terminal(tty).is_none() {
            return Err(crate::LoaderError::Setup(
                "not a terminal of the sandbox".into(),
            ));
        }
        self.apply_winsize(
            tty,
            libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        );
        Ok(())
    }

    /// Sends every signal in the sentry's host outbox. The first failure is returned
    /// (the others are still sent).
    pub fn send_host_signals(&mut self) -> Result<(), crate::LoaderError> {
        let list = self.k.take_host_signals();
        self.send_signals(list)
    }

    fn send_signals(
        &mut self,
        list: Vec<sandbox_sentry::HostSignal>,
    ) -> Result<(), crate::LoaderError> {
        let mut first = Ok(());
        for s in list {
            let sig = s.sig.number();
            let r = match s.target {
                HostTarget::ProcessGroup(pg) => match self.procs.group_host_pid(pg) {
                    Some(h) => kill(-h, sig),
                    None => {
                        for m in self.k.pgrp_members(pg) {
                            if let Some(h) = self.procs.host_pid(m) {
                                let _ = kill(h, sig);
                            }
                        }
                        Ok(())
                    }
                },
                HostTarget::Process(p) => match self.procs.host_pid(p) {
                    Some(h) => kill(h, sig),
                    None => Err(nix::Error::ESRCH),
                },
                HostTarget::Thread(t) => {
                    let tgid = self.k.task(t).map(|x| x.tgid);
                    match (
                        tgid.and_then(|g| self.procs.host_pid(g)),
                        self.procs.host_pid(t),
                    ) {
                        (Some(g), Some(h)) => tgkill(g, h, sig),
                        _ => Err(nix::Error::ESRCH),
                    }
                }
            };
            tracing::debug!(target = ?s.target, sig = %s.sig.name(), ?r, "host signal sent");
            if let (Err(e), Ok(())) = (r, &first) {
                first = Err(crate::LoaderError::Sys("kill", e));
            }
        }
        self.procs.signals_sent();
        first
    }
}

/// The descriptors a terminal data-path call reads or writes, as (fd, write): None
/// for other calls.
fn io_fds(n: &Notification) -> Option<[Option<(i32, bool)>; 2]> {
    let arg = |i: usize| n.args[i] as i32;
    Some(match n.nr {
        libc::SYS_read | libc::SYS_readv | libc::SYS_preadv2 => [Some((arg(0), false)), None],
        libc::SYS_write | libc::SYS_writev | libc::SYS_pwritev2 => [Some((arg(0), true)), None],
        libc::SYS_sendfile => [Some((arg(1), false)), Some((arg(0), true))],
        libc::SYS_splice | libc::SYS_copy_file_range => {
            [Some((arg(0), false)), Some((arg(2), true))]
        }
        libc::SYS_tee => [Some((arg(0), false)), Some((arg(1), true))],
        libc::SYS_vmsplice => [Some((arg(0), false)), Some((arg(0), true))],
        _ => return None,
    })
}

fn kill(pid: i32, sig: i32) -> nix::Result<()> {
    let sig = nix::sys::signal::Signal::try_from(sig)?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
}

fn tgkill(tgid: i32, tid: i32, sig: i32) -> nix::Result<()> {
    crate::sys::signal::tgkill(tgid, tid, sig)
}

/// /proc's signal sets and the sentry's both have bit N-1 for signal N.
fn sigset_from_proc(mask: u64) -> sandbox_sentry::SigSet {
    sandbox_sentry::SigSet(mask)
}

pub(crate) fn winsize_from_host(ws: &libc::winsize) -> Winsize {
    Winsize {
        rows: ws.ws_row,
        cols: ws.ws_col,
        xpixel: ws.ws_xpixel,
        ypixel: ws.ws_ypixel,
    }
}

pub(crate) fn termios_from_host(t: &libc::termios) -> Termios {
    let mut cc = [0u8; sandbox_sentry::termios::NCCS];
    for (i, c) in cc.iter_mut().enumerate() {
        *c = t.c_cc.get(i).copied().unwrap_or(0);
    }
    Termios {
        iflag: t.c_iflag,
        oflag: t.c_oflag,
        cflag: t.c_cflag,
        lflag: t.c_lflag,
        line: t.c_line,
        cc,
    }
}
