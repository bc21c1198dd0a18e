//! The sandbox's init (PID 1 of its PID namespace) and the program's last steps before
//! exec, and the exec helper ([`exec_helper_main`]) that starts a process in a running
//! sandbox. Everything here runs in a process started through the entry point
//! (`crate::sys::entry`), from the plan it received (`crate::control`).
//!
//! init: once the user namespace's maps are written (rootless), makes itself
//! non-dumpable (`PR_SET_DUMPABLE` 0: the kernel's `ptrace_may_access` then refuses
//! ptrace, `process_vm_readv`/`writev`, `pidfd_getfd`, `kcmp` and
//! `/proc/1/{mem,environ,fd/*}` to any process without CAP_SYS_PTRACE over it, which
//! the program never has) and sets `no_new_privs`; takes a session of its own (so that
//! no sandbox process is ever in the user's session: the borrowed terminal can never
//! become its host controlling terminal), builds the filesystem view, waits until the
//! loader has moved it into the sandbox's cgroups ([`crate::cgroup`]; so that the
//! program and all it starts are counted from their first instruction), forks the
//! holder, confines itself to its own seccomp allow-list ([`seccomp::init_filter`]:
//! waiting, reaping, signalling, reporting), reaps every orphan, and exits once the
//! holder has reported the program's end — which kills whatever is left in the
//! namespace. It also exits when the loader goes away: its control socket hangs up.
//! (PR_SET_PDEATHSIG would not do: with the fork fallback init's parent is an
//! intermediate process that exits at once.) As PID 1 of its namespace it gets no
//! signal from inside that it has no handler for (it has none): SIGSTOP and SIGKILL
//! from the program do nothing.
//!
//! The holder: init's child (PID 3), non-dumpable and `no_new_privs` like init (both
//! are inherited across fork), leader of the program's session (setsid). With an
//! owned pty, its session's controlling terminal, whose hangup SIGHUP it passes on to
//! the program's group (with SIGCONT) as a shell passes it to its jobs. It forks the
//! program (PID 2), blocks every signal it can, installs its own allow-list
//! ([`seccomp::holder_filter`]: wait, signal, report), waits for the program and reports its stops,
//! continuations and end on the control socket, and exits with the program's code.
//! Why a holder: a process group is orphaned when no member has a parent in another
//! group of the same session (Linux `will_become_orphaned_pgrp`). The program's group
//! must not be (Linux discards SIGTSTP, SIGTTIN and SIGTTOU for an orphaned group:
//! vim's ^Z, a forwarded SIGTSTP would do nothing), so its parent must be in its
//! session; but a process whose parent exits is reparented to init, and a group left
//! behind that way must be orphaned as on a real machine, where init is in a session
//! of its own (a stopped job left behind gets SIGHUP and SIGCONT). So init has its
//! session and the holder, a parent that lives as long as the program, has the
//! program's. The program can signal the holder (it is not PID 1): init continues it
//! when it stops, and when it dies before reporting the program's end, the program
//! (then init's child) is watched and reported by init.
//!
//! PIDs: init forks the holder with `clone3` `set_tid` = 3 and the holder forks the
//! program with `set_tid` = 2 (both have CAP_SYS_ADMIN in the PID namespace's owner);
//! where the kernel refuses `set_tid`, plain forks: the holder is then PID 2 and the
//! program PID 3.
//!
//! The program: a process group of its own in the holder's session, default signal
//! dispositions and an empty mask, `no_new_privs` (always: no execve inside gains a
//! privilege from set-user-ID bits or file capabilities), its seccomp policy
//! ([`seccomp::program_filter`]), then the notify filter whose listener goes to the
//! loader, the resource limits, then its
//! credentials: the bounding set cut to [`ProgramPlan::capabilities`], the user and group
//! (`--user`, checked with getresuid/getresgid afterwards), and exactly the kept
//! capabilities in the effective, permitted, inheritable and ambient sets (none by
//! default, as root too: rlimits then bind it, and it cannot ptrace init or the
//! holder), then exec. The program is dumpable again after its exec (the kernel resets
//! it when the real and effective ids agree), so it can debug itself and its children.
//! In the sentry, the holder's session has the borrowed terminal as controlling
//! terminal and the program's group in the foreground. The program is deliberately
//! not a session leader: a session-leader program would be in an orphaned group.

use crate::capability::CapSet;
use crate::control;
use crate::mounts::{self, FsSpec};
use crate::seccomp::{self, Filter};
use crate::sys::clone::{self, Forked};
use crate::sys::signal;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

/// How the program gets its standard descriptors.
pub(crate) enum StdioPlan {
    /// Those of its parent (init: the loader's).
    Inherit,
    /// A terminal (a borrowed one) as stdin, stdout and stderr.
    Terminal(OwnedFd),
    /// These three.
    Three([OwnedFd; 3]),
}

/// The program's last steps before execve: the same for the sandbox's first program
/// and for an exec'd process.
pub(crate) struct ProgramPlan {
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// Working directory (an exec'd process; the first program's is set up with the
    /// filesystem view).
    pub cwd: Option<std::path::PathBuf>,
    /// The program's policy ([`seccomp::program_filter`]), unless switched off.
    pub deny: Option<Filter>,
    pub notify: Filter,
    /// The program's user and group.
    pub user: Option<(u32, u32)>,
    /// Its supplementary groups (with `user`).
    pub additional_gids: Vec<u32>,
    /// Its umask.
    pub umask: Option<u32>,
    /// A further filter installed right before exec (an OCI profile).
    pub extra_seccomp: Option<Filter>,
    /// The program waits for a byte on it before exec (see
    /// [`crate::SandboxSpec::start_gate`]).
    pub start_gate: Option<OwnedFd>,
    /// The program's resource limits (resource, soft, hard).
    pub rlimits: Vec<(i32, u64, u64)>,
    /// The capabilities the program keeps (none by default).
    pub capabilities: CapSet,
    pub stdio: StdioPlan,
    /// Owned-pty mode: a pty in the sandbox's own devpts becomes the session's
    /// controlling terminal, its master goes to the loader (`M`), the slave is the
    /// program's stdio, with the program's group in the foreground. Created by init
    /// for the first program, by the exec'd process itself (a session leader) otherwise.
    pub pty: Option<PtyInit>,
}

/// What init needs to build the sandbox (the first message on its control socket; the
/// program's part, [`InitProgram`], follows).
pub(crate) struct InitPlan {
    pub fs: FsSpec,
    /// The loader creates the sandbox's cgroups while init builds the filesystem, then
    /// sends the `tasks` file of each v1 cgroup (`J`: init writes `0` to it, moving
    /// itself with no global lock, see [`crate::cgroup::SandboxCgroup`]), moves init
    /// into the v2 ones itself, and sends `G`: init waits for it before it forks the
    /// program.
    pub wait_for_cgroup: bool,
    /// A network namespace init joins before building the filesystem.
    pub join_netns: Option<std::path::PathBuf>,
}

/// The program's part of init's plan ([`crate::control::Message::Program`]), which the
/// loader builds while init builds the filesystem; init waits for it before it forks
/// the holder.
pub(crate) struct InitProgram {
    pub program: ProgramPlan,
    /// init's own allow-list ([`seccomp::init_filter`]), installed once the holder is
    /// forked.
    pub init_filter: Filter,
    /// The holder's ([`seccomp::holder_filter`]), installed once the program is forked.
    pub holder_filter: Filter,
    /// The sandbox's network namespace, created by the loader while init builds the
    /// filesystem (as root; rootless, init is cloned into a new one): init joins it
    /// before it forks the holder.
    pub netns: Option<OwnedFd>,
}

/// What an exec helper needs (the first message on its control socket).
pub(crate) struct ExecPlan {
    pub program: ProgramPlan,
    /// The sandbox's init: the namespaces to join.
    pub init_pidfd: OwnedFd,
    /// `CLONE_NEW*` flags of the namespaces to join (those init was created in).
    pub namespaces: u64,
    /// The helper's own allow-list, installed once the process is forked.
    pub helper_filter: Filter,
}

impl std::fmt::Debug for InitPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitPlan")
            .field("wait_for_cgroup", &self.wait_for_cgroup)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for InitProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitProgram")
            .field("argv", &self.program.argv)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ExecPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecPlan")
            .field("argv", &self.program.argv)
            .finish_non_exhaustive()
    }
}

/// The owned pty's initial settings (the user's terminal's, when proxying).
pub(crate) struct PtyInit {
    pub termios: Option<libc::termios>,
    pub winsize: Option<libc::winsize>,
    /// Whether init's session takes the pty as controlling terminal (and the
    /// program's group its foreground), or nobody's it is at the start.
    pub attach: crate::TerminalAttach,
}

/// Exit code of init when setup fails (the loader reports the message it sent).
pub(crate) const SETUP_FAILED: i32 = 125;

/// Sends a message on the control channel; a failure means the loader is gone, which
/// the caller finds out on its next step.
fn report(control: RawFd, m: control::Message) {
    let _ = control::send(control, &m);
}

fn failed(control: RawFd, what: String) -> i32 {
    report(control, control::Message::SetupFailed(what));
    SETUP_FAILED
}

pub(crate) fn init_main(plan: &InitPlan, control: RawFd) -> i32 {
    // No logging from here on: the loader's log file is one of the descriptors closed
    // below, and a failed log write would be reported on the terminal.
    let _quiet = tracing::dispatcher::set_default(&tracing::Dispatch::none());
    // Nothing of the loader's process stays open here but the control channel and the
    // standard descriptors (the loader's own end of the channel included: while any
    // copy is open, init would not see the loader go away). The program's descriptors
    // (its terminal, an OCI start gate) come later, with its part of the plan.
    if let Err(e) = crate::sys::fd::close_all_except(&[control]) {
        return failed(control, format!("close_range: {e}"));
    }
    let fail = |what: String| failed(control, what);
    // Out of the program's reach from here on (the loader has written the user
    // namespace's maps, which needs init's /proc files to be the caller's): without
    // CAP_SYS_PTRACE over init, nobody may ptrace it, read or write its memory, take
    // its descriptors (pidfd_getfd) or compare them (kcmp), or open /proc/1/mem,
    // environ or fd. The program, though forked from init, is dumpable again after its
    // execve (the kernel resets it when the real and effective ids agree).
    if let Err(e) = crate::sys::process::set_not_dumpable() {
        return fail(format!("prctl(PR_SET_DUMPABLE, 0): {e}"));
    }
    if let Err(e) = crate::sys::process::set_no_new_privs() {
        return fail(format!("prctl(PR_SET_NO_NEW_PRIVS): {e}"));
    }
    if let Err(e) = nix::unistd::setsid() {
        return fail(format!("setsid: {e}"));
    }
    if let Some(path) = &plan.join_netns {
        // Resolved in the host's view: the filesystem is not built yet.
        if let Err(e) = crate::sys::process::join_netns(path) {
            return fail(format!(
                "joining the network namespace {}: {e}",
                path.display()
            ));
        }
    }
    let old_root = match mounts::setup_filesystem(&plan.fs) {
        Ok(detach) => detach,
        Err(e) => return fail(e.to_string()),
    };
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    // The holder leads the session that owns the terminal: a hangup sends it SIGHUP,
    // which it passes to the program's group as a shell passes it to its jobs (blocked
    // here already, so that the holder, which shares this signalfd, never misses one).
    chld.add(Signal::SIGHUP);
    if let Err(e) = chld.thread_block() {
        return fail(format!("blocking SIGCHLD: {e}"));
    }
    let sigfd = match SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
        Ok(fd) => fd,
        Err(e) => return fail(format!("signalfd: {e}")),
    };
    // The program's part of the plan, and (in the sandbox's cgroups before the program
    // exists: everything it starts is counted) the cgroups.
    let mut program_plan: Option<Box<InitProgram>> = None;
    let mut in_cgroup = !plan.wait_for_cgroup;
    while program_plan.is_none() || !in_cgroup {
        // (A plan-sized packet, so received as a plan is.)
        match control::recv_plan(control) {
            Ok(Some(control::Message::Program(p))) => program_plan = Some(p),
            Ok(Some(control::Message::JoinCgroup(tasks))) => {
                if let Err(e) = nix::unistd::write(&tasks, b"0") {
                    return fail(format!("joining the sandbox's cgroup: {e}"));
                }
            }
            Ok(Some(control::Message::Go)) if !in_cgroup => in_cgroup = true,
            _ if program_plan.is_none() => {
                return fail("the loader did not send the program's plan".into())
            }
            _ => return fail("the loader did not place init in the sandbox's cgroup".into()),
        }
    }
    let Some(mut prog) = program_plan else {
        return fail("the loader did not send the program's plan".into());
    };
    if let Some(netns) = prog.netns.take() {
        if let Err(e) = crate::sys::process::enter_netns(&netns) {
            return fail(format!("joining the sandbox's network namespace: {e}"));
        }
    }
    // The old root is gone before anything of the program's exists (and the child that
    // detached it, whose PID the program's may take, reaped).
    if let Err(e) = old_root.finish() {
        return fail(e.to_string());
    }
    // The holder tells init the program's PID, then (last thing before it exits) that
    // the program's end is reported.
    let (from_holder, to_init) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return fail(format!("pipe2: {e}")),
    };
    let holder = match fork_as(HOLDER_PID) {
        Ok(Forked::Child) => {
            drop(from_holder);
            clone::exit_now(holder_main(&prog, control, &sigfd, to_init))
        }
        Ok(Forked::Parent { pid, .. }) => pid,
        Err(e) => return fail(format!("fork: {e}")),
    };
    drop(to_init);
    let mut pid = [0u8; 4];
    let program = match read_exact(from_holder.as_fd(), &mut pid) {
        Ok(()) => i32::from_ne_bytes(pid),
        // The holder failed (and said why on the control socket).
        Err(_) => {
            let _ = waitpid(nix::unistd::Pid::from_raw(holder), None);
            return SETUP_FAILED;
        }
    };
    // Never blocks later: the program holds a copy of the write end until its exec
    // (close-on-exec), which may wait for an OCI start.
    if let Err(e) = nix::fcntl::fcntl(
        &from_holder,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    ) {
        return fail(format!("fcntl: {e}"));
    }
    // From here on init only waits, reaps, signals and reports.
    if let Err(e) = seccomp::install(&prog.init_filter) {
        return fail(format!("installing init's seccomp filter: {e}"));
    }
    let mut watch = Watch {
        control,
        sigfd: &sigfd,
        program,
        executed: None,
        reap_all: true,
        forward_hangup: false,
        holder: Some(Holder {
            pid: holder,
            done: from_holder,
        }),
    };
    watch.run()
}

/// The PID the holder asks for (the program's is 2, as it was when init forked it).
const HOLDER_PID: i32 = 3;
/// The PID the program asks for (and the child that detaches the old root takes
/// before it: [`crate::mounts::OldRootDetach`]).
pub(crate) const PROGRAM_PID: i32 = 2;

/// A fork whose child is `pid` in the sandbox's PID namespace (init and the holder
/// have CAP_SYS_ADMIN in its user namespace); a plain fork (the next free PID) when
/// the kernel refuses `set_tid` (before Linux 5.5, or a seccomp profile around the
/// loader that refuses clone3): the holder is then PID 2 and the program PID 3.
fn fork_as(pid: i32) -> Result<Forked, nix::errno::Errno> {
    match clone::fork_with_pid(pid) {
        Ok(f) => Ok(f),
        Err(_) => clone::fork(),
    }
}

fn read_exact(fd: std::os::fd::BorrowedFd<'_>, buf: &mut [u8]) -> Result<(), nix::errno::Errno> {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd, &mut buf[got..]) {
            Ok(0) => return Err(nix::errno::Errno::EPIPE),
            Ok(n) => got += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The holder: init's child, leader of the program's session (so that the program's
/// group, whose parent is in the same session, is not orphaned, while processes
/// reparented to init, in another session, are, as on Linux). It creates the owned
/// pty (its session's controlling terminal), forks the program, confines itself to
/// its allow-list ([`seccomp::holder_filter`]: wait, signal, report), blocks every
/// signal it can (nothing the program sends it but SIGKILL and SIGSTOP acts: init
/// continues it when it stops, and takes over the program when it dies), passes a
/// hangup's SIGHUP on to the program's group, reports the program's stops and end
/// like init did, and exits with the program's code.
fn holder_main(plan: &InitProgram, control: RawFd, sigfd: &SignalFd, to_init: OwnedFd) -> i32 {
    let fail = |what: String| failed(control, what);
    if let Err(e) = nix::unistd::setsid() {
        return fail(format!("setsid (the program's session): {e}"));
    }
    let slave = match &plan.program.pty {
        Some(p) => match open_pty(control, p) {
            Ok(slave) => Some(slave),
            Err(e) => return fail(e),
        },
        None => None,
    };
    let slave_fd = slave.as_ref().map(|s| s.as_raw_fd());
    let program = match fork_as(PROGRAM_PID) {
        Ok(Forked::Child) => clone::exit_now(program_main(
            &plan.program,
            control,
            Session::HoldersSession,
            slave_fd,
        )),
        Ok(Forked::Parent { pid, .. }) => pid,
        Err(e) => return fail(format!("fork: {e}")),
    };
    // A pty that starts as nobody's controlling terminal may have no slave open for a
    // while (the program may close its stdio before a session leader opens the pty):
    // the holder keeps one, so that the loader's master never reads EIO meanwhile (the
    // proxy ends there). Otherwise the program's descriptors are the only ones.
    let _held_slave = match plan.program.pty.as_ref().map(|p| p.attach) {
        Some(crate::TerminalAttach::Unattached) => slave,
        _ => {
            drop(slave);
            None
        }
    };
    let kill_program = || {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(program), Signal::SIGKILL);
    };
    if let Err(e) = signal::block_all() {
        kill_program();
        return fail(format!("blocking signals: {e}"));
    }
    if let Err(e) = nix::unistd::write(&to_init, &program.to_ne_bytes()) {
        kill_program();
        return fail(format!("telling init the program's PID: {e}"));
    }
    if let Err(e) = seccomp::install(&plan.holder_filter) {
        kill_program();
        return fail(format!("installing the holder's seccomp filter: {e}"));
    }
    report(control, control::Message::ProgramPid(program));
    let mut watch = Watch {
        control,
        sigfd,
        program,
        executed: None,
        reap_all: false,
        forward_hangup: true,
        holder: None,
    };
    let code = watch.run();
    // The program's end is reported: init may end the sandbox when the holder is gone.
    let _ = nix::unistd::write(&to_init, b"e");
    code
}

/// init's view of the holder.
struct Holder {
    pid: i32,
    /// The holder writes a byte on it once the program's end is reported.
    done: OwnedFd,
}

/// The program's parent (the holder, or an exec helper) waits for it and reports;
/// init waits for the holder (and, should the holder die first, for the program,
/// which is then init's child).
struct Watch<'a> {
    control: RawFd,
    sigfd: &'a SignalFd,
    /// The program's PID (as the watcher sees it).
    program: i32,
    /// A pipe whose write end only the program holds, close-on-exec: end of file once
    /// it has exec'd (or died). Reported as [`control::Message::Executed`].
    executed: Option<OwnedFd>,
    /// Reap every child (init: orphans of the namespace), not only the program.
    reap_all: bool,
    /// SIGHUP (the session's terminal hung up) goes on to the program's group, with
    /// SIGCONT, as a shell passes it to its jobs (the holder).
    forward_hangup: bool,
    /// init: the holder, while it lives.
    holder: Option<Holder>,
}

impl Watch<'_> {
    /// Serves until the program ends; returns the watcher's exit code.
    fn run(&mut self) -> i32 {
        loop {
            let ctl = crate::sys::fd::borrow(self.control);
            let mut fds = vec![
                PollFd::new(ctl, PollFlags::POLLIN),
                PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN),
            ];
            if let Some(p) = &self.executed {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return SETUP_FAILED,
            }
            let hup = fds[0]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR));
            let executed = fds
                .get(2)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty());
            drop(fds);
            if hup {
                // The loader is gone: take the program down with us (init: the whole
                // namespace, by exiting).
                let program = nix::unistd::Pid::from_raw(self.program);
                let _ = nix::sys::signal::kill(program, Signal::SIGKILL);
                // Reaped here: an exec helper's child must not outlive it as a zombie
                // (it would be reparented outside the sandbox's view).
                let _ = waitpid(program, None);
                return 128 + libc::SIGKILL;
            }
            if executed {
                self.executed = None;
                report(self.control, control::Message::Executed);
            }
            while let Ok(Some(si)) = self.sigfd.read_signal() {
                if self.forward_hangup && si.ssi_signo == libc::SIGHUP as u32 {
                    let group = nix::unistd::Pid::from_raw(-self.program);
                    let _ = nix::sys::signal::kill(group, Signal::SIGHUP);
                    let _ = nix::sys::signal::kill(group, Signal::SIGCONT);
                }
            }
            loop {
                let flags = WaitPidFlag::WNOHANG | WaitPidFlag::WUNTRACED | WaitPidFlag::WCONTINUED;
                let which = if self.reap_all {
                    None
                } else {
                    Some(nix::unistd::Pid::from_raw(self.program))
                };
                let st = match waitpid(which, Some(flags)) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(st) => st,
                };
                let pid = st.pid().map(|p| p.as_raw());
                if let (Some(h), Some(pid)) = (&self.holder, pid) {
                    if pid == h.pid {
                        if let Some(code) = self.holder_changed(st) {
                            return code;
                        }
                        continue;
                    }
                }
                match st {
                    WaitStatus::Stopped(p, sig) if p.as_raw() == self.program => {
                        report(self.control, control::Message::ProgramStopped(sig as i32));
                    }
                    WaitStatus::Continued(p) if p.as_raw() == self.program => {
                        report(self.control, control::Message::ProgramContinued);
                    }
                    WaitStatus::Stopped(..) | WaitStatus::Continued(..) => {}
                    st => {
                        if pid == Some(self.program) {
                            let raw = raw_status(st);
                            if self.executed.take().is_some() {
                                report(self.control, control::Message::Executed);
                            }
                            report(self.control, control::Message::ProgramEnded(raw));
                            return shell_code(raw);
                        }
                    }
                }
            }
        }
    }

    /// init: the holder stopped, continued or ended. Returns init's exit code when the
    /// sandbox is done (the holder reported the program's end, or could not start it).
    fn holder_changed(&mut self, st: WaitStatus) -> Option<i32> {
        let h = self.holder.as_ref()?;
        match st {
            // Stopped by a signal from the program (it cannot block SIGSTOP): it must
            // go on watching the program.
            WaitStatus::Stopped(..) => {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(h.pid), Signal::SIGCONT);
                None
            }
            WaitStatus::Continued(..) => None,
            st => {
                // Ended. It wrote its byte before exiting if it reported the program's
                // end; if it was killed before, the program (when it still lives) is
                // init's child now and init watches it. A program init cannot wait for
                // is gone already (reaped by the holder).
                let mut byte = [0u8; 1];
                let reported = matches!(nix::unistd::read(h.done.as_fd(), &mut byte), Ok(1));
                // ECHILD: not init's child (reaped by the holder); the status, if any,
                // stays for the loop (WNOWAIT).
                let orphaned_program = nix::sys::wait::waitid(
                    nix::sys::wait::Id::Pid(nix::unistd::Pid::from_raw(self.program)),
                    WaitPidFlag::WNOHANG
                        | WaitPidFlag::WNOWAIT
                        | WaitPidFlag::WEXITED
                        | WaitPidFlag::WSTOPPED
                        | WaitPidFlag::WCONTINUED,
                )
                .is_ok();
                self.holder = None;
                if reported || !orphaned_program {
                    return Some(match st {
                        WaitStatus::Exited(_, code) => code,
                        st => shell_code(raw_status(st)),
                    });
                }
                None
            }
        }
    }
}

/// The exec helper: started by the loader (outside the sandbox), it joins the
/// sandbox's namespaces through init's pidfd, forks the process to execute (which is
/// then in the sandbox's PID namespace, with PPID 0 there, in a session of its own),
/// confines itself to its allow-list, waits for the process and reports it like init
/// reports the first program. It dies with the loader (its control socket hangs up:
/// it kills the process first). Non-dumpable: nothing in the sandbox can see it (it
/// is outside the sandbox's PID namespace) or trace it.
pub(crate) fn exec_helper_main(plan: &ExecPlan, control: RawFd) -> i32 {
    let _quiet = tracing::dispatcher::set_default(&tracing::Dispatch::none());
    let fail = |what: String| failed(control, what);
    if let Err(e) = crate::sys::process::set_not_dumpable() {
        return fail(format!("prctl(PR_SET_DUMPABLE, 0): {e}"));
    }
    if let Err(e) = crate::sys::process::set_no_new_privs() {
        return fail(format!("prctl(PR_SET_NO_NEW_PRIVS): {e}"));
    }
    if let Err(e) = crate::sys::process::setns_pidfd(plan.init_pidfd.as_fd(), plan.namespaces) {
        return fail(format!("joining the sandbox's namespaces: {e}"));
    }
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    if let Err(e) = chld.thread_block() {
        return fail(format!("blocking SIGCHLD: {e}"));
    }
    let sigfd = match SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
        Ok(fd) => fd,
        Err(e) => return fail(format!("signalfd: {e}")),
    };
    let (executed_rd, executed_wr) =
        match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK) {
            Ok(p) => p,
            Err(e) => return fail(format!("pipe2: {e}")),
        };
    let program = match clone::fork() {
        Ok(Forked::Child) => {
            drop(executed_rd);
            clone::exit_now(program_main(&plan.program, control, Session::Own, None))
        }
        Ok(Forked::Parent { pid, .. }) => pid,
        Err(e) => return fail(format!("fork: {e}")),
    };
    drop(executed_wr);
    if let Err(e) = seccomp::install(&plan.helper_filter) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(program), Signal::SIGKILL);
        return fail(format!("installing the exec helper's seccomp filter: {e}"));
    }
    report(control, control::Message::ProgramPid(program));
    let mut watch = Watch {
        control,
        sigfd: &sigfd,
        program,
        executed: Some(executed_rd),
        reap_all: false,
        forward_hangup: false,
        holder: None,
    };
    watch.run()
}

/// Which session the program is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Session {
    /// The holder's, in a process group of its own (the first program).
    HoldersSession,
    /// A new one it leads (an exec'd process).
    Own,
}

/// Creates the owned pty (the caller leads its session: the slave becomes its
/// controlling terminal) and sends its master to the loader; returns the slave.
fn open_pty(control: RawFd, p: &PtyInit) -> Result<OwnedFd, String> {
    let (master, slave) = crate::sys::tty::open_owned_pty(
        p.termios.as_ref(),
        p.winsize.as_ref(),
        p.attach == crate::TerminalAttach::Session,
    )
    .map_err(|e| format!("creating the sandbox's pty: {e}"))?;
    control::send(control, &control::Message::PtyMaster(master))
        .map_err(|e| format!("passing the pty master: {e}"))?;
    Ok(slave)
}

/// The program's credentials: the bounding set cut to [`ProgramPlan::capabilities`]
/// (while CAP_SETPCAP is still effective), the user and group (keeping the permitted
/// set across the uid change), checked, then exactly the kept capabilities in the
/// effective, permitted, inheritable and ambient sets, so they survive execve for any
/// uid; with none kept every set is empty.
fn drop_privileges(plan: &ProgramPlan) -> Result<(), String> {
    use crate::sys::process as p;
    let keep = plan.capabilities.bits();
    p::drop_bounding_except(keep).map_err(|e| format!("dropping the bounding set: {e}"))?;
    if let Some((uid, gid)) = plan.user {
        p::set_keep_caps(true).map_err(|e| format!("prctl(PR_SET_KEEPCAPS): {e}"))?;
        p::become_user(uid, gid, &plan.additional_gids)
            .map_err(|e| format!("running as {uid}:{gid}: {e}"))?;
        let (uids, gids) = p::ids().map_err(|e| format!("getresuid: {e}"))?;
        if uids != [uid; 3] || gids != [gid; 3] {
            return Err(format!(
                "running as {uid}:{gid}: the ids are {uids:?}:{gids:?} after setting them"
            ));
        }
        p::set_keep_caps(false).map_err(|e| format!("prctl(PR_SET_KEEPCAPS): {e}"))?;
    }
    p::set_capabilities(keep).map_err(|e| format!("capset: {e}"))?;
    p::set_ambient(keep).map_err(|e| format!("ambient capabilities: {e}"))?;
    Ok(())
}

/// The wait status word for a final status (the one place it is encoded).
pub(crate) fn raw_status(st: WaitStatus) -> i32 {
    match st {
        WaitStatus::Exited(_, code) => (code & 0xff) << 8,
        WaitStatus::Signaled(_, sig, core) => sig as i32 | if core { 0x80 } else { 0 },
        _ => 0,
    }
}

/// A wait status in words ("exit code 3", "killed by signal 9").
pub(crate) fn describe_status(raw: i32) -> String {
    if raw & 0x7f == 0 {
        format!("exit code {}", (raw >> 8) & 0xff)
    } else {
        format!("killed by signal {}", raw & 0x7f)
    }
}

/// `$?` for a wait status: the code, or 128 + the signal.
pub(crate) fn shell_code(raw: i32) -> i32 {
    if raw & 0x7f == 0 {
        (raw >> 8) & 0xff
    } else {
        128 + (raw & 0x7f)
    }
}

fn program_main(
    plan: &ProgramPlan,
    control: RawFd,
    session: Session,
    pty_slave: Option<RawFd>,
) -> i32 {
    let fail = |what: String| failed(control, what);
    let mut own_slave = None;
    match session {
        Session::HoldersSession => {
            if let Err(e) =
                nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0))
            {
                return fail(format!("setpgid: {e}"));
            }
        }
        Session::Own => {
            let sid = match nix::unistd::setsid() {
                Ok(sid) => sid.as_raw(),
                Err(e) => return fail(format!("setsid: {e}")),
            };
            report(control, control::Message::SandboxPid(sid));
            if let Some(p) = &plan.pty {
                match open_pty(control, p) {
                    Ok(s) => own_slave = Some(s),
                    Err(e) => return fail(e),
                }
            }
        }
    }
    match &plan.stdio {
        StdioPlan::Inherit => {}
        StdioPlan::Terminal(fd) => {
            if let Err(e) = crate::sys::fd::onto_stdio(fd.as_raw_fd()) {
                return fail(format!("the terminal as stdio: {e}"));
            }
        }
        StdioPlan::Three(fds) => {
            if let Err(e) = crate::sys::fd::onto_each_stdio(fds) {
                return fail(format!("stdio: {e}"));
            }
        }
    }
    let attached = plan
        .pty
        .as_ref()
        .is_none_or(|p| p.attach == crate::TerminalAttach::Session);
    if let Some(slave) = pty_slave.or(own_slave.as_ref().map(|s| s.as_raw_fd())) {
        if attached {
            // The owned pty is the session's real controlling terminal: stdio, and this
            // group in the foreground (from the background, so with SIGTTOU blocked: the
            // mask is emptied below).
            if let Err(e) = crate::sys::tty::take_foreground(slave) {
                return fail(format!("the pty's foreground group: {e}"));
            }
        } else if let Err(e) = crate::sys::fd::onto_stdio(slave) {
            return fail(format!("the pty as stdio: {e}"));
        }
    }
    if let Some(dir) = &plan.cwd {
        if let Err(e) = nix::unistd::chdir(dir.as_path()) {
            return fail(format!("cannot enter {}: {e}", dir.display()));
        }
    }
    signal::reset_all_to_default();
    let _ = signal::set_mask(&SigSet::empty());
    // Always, whatever the capabilities: no execve inside the sandbox ever gains a
    // privilege (set-user-ID bits, file capabilities).
    if let Err(e) = crate::sys::process::set_no_new_privs() {
        return fail(format!("prctl(PR_SET_NO_NEW_PRIVS): {e}"));
    }
    if let Some(deny) = &plan.deny {
        if let Err(e) = seccomp::install(deny) {
            return fail(format!("installing the program's seccomp filter: {e}"));
        }
    }
    // Nothing the loader's caller left open reaches the program: every descriptor but
    // stdio closes at exec (the control socket and the listener already do).
    if let Err(e) = crate::sys::fd::cloexec_from(3) {
        return fail(format!("close_range: {e}"));
    }
    let listener = match seccomp::install_with_listener_killable(&plan.notify) {
        Ok(l) => l,
        Err(e) => return fail(format!("installing the seccomp notify filter: {e}")),
    };
    if let Err(e) = control::send(control, &control::Message::Listener(listener)) {
        return fail(format!("passing the seccomp listener: {e}"));
    }
    for &(resource, soft, hard) in &plan.rlimits {
        if let Err(e) = crate::sys::process::set_rlimit(resource, soft, hard) {
            return fail(format!("setrlimit({resource}): {e}"));
        }
    }
    // Last, after everything that needs privileges (the filters are installed).
    if let Err(e) = drop_privileges(plan) {
        return fail(e);
    }
    if let Some(gate) = &plan.start_gate {
        // Created, not started: wait for the runtime's `start` (the descriptor is
        // close-on-exec).
        let mut byte = [0u8; 1];
        let got = loop {
            match nix::unistd::read(gate.as_fd(), &mut byte) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r,
            }
        };
        match got {
            Ok(1) => {}
            Ok(_) => return fail("the container was deleted before it was started".into()),
            Err(e) => return fail(format!("waiting for start: {e}")),
        }
    }
    if let Some(mask) = plan.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    let Some(prog) = plan.argv.first() else {
        return fail("no program given".into());
    };
    // Last of all, as runc does: the profile may refuse what the steps above need.
    // no_new_privs is set, so no privilege is needed.
    if let Some(extra) = &plan.extra_seccomp {
        if let Err(e) = seccomp::install(extra) {
            return fail(format!("installing the OCI seccomp profile: {e}"));
        }
    }
    let err = match nix::unistd::execvpe(prog, &plan.argv, &plan.env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    report(control, control::Message::ExecFailed(err as i32));
    if err == nix::errno::Errno::ENOENT {
        127
    } else {
        126
    }
}
