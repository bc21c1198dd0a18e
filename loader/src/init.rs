//! The sandbox's init (PID 1 of its PID namespace) and the program's last steps before
//! exec. Everything here runs in the spawned child.
//!
//! init: once the user namespace's maps are written (rootless), makes itself
//! non-dumpable (`PR_SET_DUMPABLE` 0: the kernel's `ptrace_may_access` then refuses
//! ptrace, `process_vm_readv`/`writev`, `pidfd_getfd`, `kcmp` and
//! `/proc/1/{mem,environ,fd/*}` to any process without CAP_SYS_PTRACE over it, which
//! the program never has) and sets `no_new_privs`; takes a session of its own (so that
//! no sandbox process is ever in the user's session: the borrowed terminal can never
//! become its host controlling terminal; with an owned pty, that session's controlling
//! terminal, whose hangup SIGHUP init passes on to the program's group as a shell
//! passes it to its jobs), builds the filesystem view, waits until the loader has moved
//! it into the sandbox's cgroups ([`crate::cgroup`]; so that the program and all it
//! starts are counted from their first instruction), forks the program, confines
//! itself to its own seccomp allow-list ([`seccomp::init_filter`]: waiting, reaping,
//! signalling, reporting), reaps every orphan, reports the program's end, and exits — which kills whatever is left in the
//! namespace. It also exits when the loader goes away: its control socket hangs up.
//! (PR_SET_PDEATHSIG would not do: with the fork fallback init's parent is an
//! intermediate process that exits at once.) As PID 1 of its namespace it gets no
//! signal from inside that it has no handler for (it has none): SIGSTOP and SIGKILL
//! from the program do nothing.
//!
//! The program: a process group of its own in init's session, default signal
//! dispositions and an empty mask, `no_new_privs` (always: no execve inside gains a
//! privilege from set-user-ID bits or file capabilities), its seccomp policy
//! ([`seccomp::program_filter`]), then the notify filter whose listener goes to the
//! loader, the resource limits, then its
//! credentials: the bounding set cut to [`InitPlan::capabilities`], the user and group
//! (`--user`, checked with getresuid/getresgid afterwards), and exactly the kept
//! capabilities in the effective, permitted, inheritable and ambient sets (none by
//! default, as root too: rlimits then bind it, and it cannot ptrace init), then exec.
//! The program is dumpable again after its exec (the kernel resets it when the real and
//! effective ids agree), so it can debug itself and its children. In the sentry, init's
//! session has the borrowed terminal as controlling terminal and the program's group in
//! the foreground. The program is deliberately not a session leader: its group's parent
//! (init) is then in the same session, so the group is not orphaned and stop signals
//! work on it (vim's ^Z, a forwarded SIGTSTP), as for a program started by a shell; a
//! session-leader program would be in an orphaned group, where Linux discards SIGTSTP,
//! SIGTTIN and SIGTTOU.

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
use std::os::fd::{AsFd, AsRawFd, RawFd};

/// Everything init needs, prepared before the spawn.
pub(crate) struct InitPlan {
    pub fs: FsSpec,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// The program's policy ([`seccomp::program_filter`]), unless switched off.
    pub deny: Option<Filter>,
    pub notify: Filter,
    /// init's own allow-list ([`seccomp::init_filter`]), installed once the program is
    /// forked.
    pub init_filter: Filter,
    /// init's end of the control channel.
    pub control: RawFd,
    /// init is in a new user namespace: wait for the loader to write its uid/gid maps
    /// (the loader sends `G`) before doing anything that needs its capabilities.
    pub wait_for_maps: bool,
    /// The program's user and group.
    pub user: Option<(u32, u32)>,
    /// The program's resource limits (resource, soft, hard).
    pub rlimits: Vec<(i32, u64, u64)>,
    /// The capabilities the program keeps (none by default).
    pub capabilities: CapSet,
    /// The loader creates the sandbox's cgroups while init builds the filesystem, then
    /// sends the `tasks` file of each v1 cgroup (`J`: init writes `0` to it, moving
    /// itself with no global lock, see [`crate::cgroup::SandboxCgroup`]), moves init
    /// into the v2 ones itself, and sends `G`: init waits for it before it forks the
    /// program.
    pub wait_for_cgroup: bool,
    /// Make this descriptor (a borrowed terminal) the program's stdio.
    pub stdio: Option<RawFd>,
    /// Owned-pty mode: init creates a pty in the sandbox's own devpts, makes it the
    /// session's controlling terminal, sends the master to the loader (`M`) and gives
    /// the slave to the program as stdio, with the program's group in the foreground.
    pub owned_pty: Option<PtyInit>,
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

pub(crate) fn init_main(plan: &InitPlan) -> i32 {
    // No logging from here on: the loader's log file is one of the descriptors closed
    // below, and a failed log write would be reported on the terminal.
    let _quiet = tracing::dispatcher::set_default(&tracing::Dispatch::none());
    // Nothing of the loader's process stays open here but the control channel and the
    // terminal (the loader's own end of the channel included: while any copy is open,
    // init would not see the loader go away).
    let mut keep = vec![plan.control];
    keep.extend(plan.stdio);
    if let Err(e) = crate::sys::fd::close_all_except(&keep) {
        let _ = control::send(plan.control, &format!("F close_range: {e}"), None);
        return SETUP_FAILED;
    }
    let fail = |what: String| {
        let _ = control::send(plan.control, &format!("F {what}"), None);
        SETUP_FAILED
    };
    if plan.wait_for_maps {
        match control::recv(plan.control) {
            Ok(Some(control::Message::Go)) => {}
            _ => return fail("the loader did not map the user namespace".into()),
        }
    }
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
    if let Err(e) = mounts::setup_filesystem(&plan.fs) {
        return fail(e.to_string());
    }
    let slave = match &plan.owned_pty {
        Some(p) => match crate::sys::tty::open_owned_pty(
            p.termios.as_ref(),
            p.winsize.as_ref(),
            p.attach == crate::TerminalAttach::Session,
        ) {
            Ok((master, slave)) => {
                if let Err(e) = control::send(plan.control, "M", Some(master.as_raw_fd())) {
                    return fail(format!("passing the pty master: {e}"));
                }
                drop(master);
                Some(slave)
            }
            Err(e) => return fail(format!("creating the sandbox's pty: {e}")),
        },
        None => None,
    };
    let slave_fd = slave.as_ref().map(|s| s.as_raw_fd());
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    // init leads the session that owns the terminal: a hangup sends it SIGHUP, which it
    // passes to the program's group as a shell passes it to its jobs.
    chld.add(Signal::SIGHUP);
    if let Err(e) = chld.thread_block() {
        return fail(format!("blocking SIGCHLD: {e}"));
    }
    let sigfd = match SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
        Ok(fd) => fd,
        Err(e) => return fail(format!("signalfd: {e}")),
    };
    if plan.wait_for_cgroup {
        // In the sandbox's cgroups before the program exists: everything it starts is
        // counted.
        loop {
            match control::recv(plan.control) {
                Ok(Some(control::Message::JoinCgroup(tasks))) => {
                    if let Err(e) = nix::unistd::write(&tasks, b"0") {
                        return fail(format!("joining the sandbox's cgroup: {e}"));
                    }
                }
                Ok(Some(control::Message::Go)) => break,
                _ => return fail("the loader did not place init in the sandbox's cgroup".into()),
            }
        }
    }
    let program = match clone::fork() {
        Ok(Forked::Child) => clone::exit_now(program_main(plan, slave_fd)),
        Ok(Forked::Parent { pid, .. }) => pid,
        Err(e) => return fail(format!("fork: {e}")),
    };
    // From here on init only waits, reaps, signals and reports.
    if let Err(e) = seccomp::install(&plan.init_filter) {
        return fail(format!("installing init's seccomp filter: {e}"));
    }
    let _ = control::send(plan.control, &format!("P {program}"), None);
    loop {
        let ctl = crate::sys::fd::borrow(plan.control);
        let mut fds = [
            PollFd::new(ctl, PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return SETUP_FAILED,
        }
        let hup = fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR));
        if hup {
            // The loader is gone: take the namespace down with us.
            return 128 + libc::SIGKILL;
        }
        while let Ok(Some(si)) = sigfd.read_signal() {
            if si.ssi_signo == libc::SIGHUP as u32 {
                let group = nix::unistd::Pid::from_raw(-program);
                let _ = nix::sys::signal::kill(group, Signal::SIGHUP);
                let _ = nix::sys::signal::kill(group, Signal::SIGCONT);
            }
        }
        loop {
            let flags = WaitPidFlag::WNOHANG | WaitPidFlag::WUNTRACED | WaitPidFlag::WCONTINUED;
            match waitpid(None, Some(flags)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(WaitStatus::Stopped(p, sig)) if p.as_raw() == program => {
                    let _ = control::send(plan.control, &format!("S {}", sig as i32), None);
                }
                Ok(WaitStatus::Continued(p)) if p.as_raw() == program => {
                    let _ = control::send(plan.control, "C", None);
                }
                Ok(WaitStatus::Stopped(..)) | Ok(WaitStatus::Continued(..)) => {}
                Ok(st) => {
                    if st.pid().map(|p| p.as_raw()) == Some(program) {
                        let raw = raw_status(st);
                        let _ = control::send(plan.control, &format!("E {raw}"), None);
                        return shell_code(raw);
                    }
                }
            }
        }
    }
}

/// The program's credentials: the bounding set cut to [`InitPlan::capabilities`]
/// (while CAP_SETPCAP is still effective), the user and group (keeping the permitted
/// set across the uid change), checked, then exactly the kept capabilities in the
/// effective, permitted, inheritable and ambient sets, so they survive execve for any
/// uid; with none kept every set is empty.
fn drop_privileges(plan: &InitPlan) -> Result<(), String> {
    use crate::sys::process as p;
    let keep = plan.capabilities.bits();
    p::drop_bounding_except(keep).map_err(|e| format!("dropping the bounding set: {e}"))?;
    if let Some((uid, gid)) = plan.user {
        p::set_keep_caps(true).map_err(|e| format!("prctl(PR_SET_KEEPCAPS): {e}"))?;
        p::become_user(uid, gid).map_err(|e| format!("running as {uid}:{gid}: {e}"))?;
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

/// The wait status word for a final status.
fn raw_status(st: WaitStatus) -> i32 {
    match st {
        WaitStatus::Exited(_, code) => (code & 0xff) << 8,
        WaitStatus::Signaled(_, sig, core) => sig as i32 | if core { 0x80 } else { 0 },
        _ => 0,
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

fn program_main(plan: &InitPlan, pty_slave: Option<RawFd>) -> i32 {
    let fail = |what: String| {
        let _ = control::send(plan.control, &format!("F {what}"), None);
        SETUP_FAILED
    };
    if let Err(e) =
        nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0))
    {
        return fail(format!("setpgid: {e}"));
    }
    if let Some(fd) = plan.stdio {
        if let Err(e) = crate::sys::fd::onto_stdio(fd) {
            return fail(format!("the terminal as stdio: {e}"));
        }
    }
    let attached = plan
        .owned_pty
        .as_ref()
        .is_some_and(|p| p.attach == crate::TerminalAttach::Session);
    if let Some(slave) = pty_slave {
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
    if let Err(e) = control::send(plan.control, "L", Some(listener.as_raw_fd())) {
        return fail(format!("passing the seccomp listener: {e}"));
    }
    drop(listener);
    for &(resource, soft, hard) in &plan.rlimits {
        if let Err(e) = crate::sys::process::set_rlimit(resource, soft, hard) {
            return fail(format!("setrlimit({resource}): {e}"));
        }
    }
    // Last, after everything that needs privileges (the filters are installed).
    if let Err(e) = drop_privileges(plan) {
        return fail(e);
    }
    let Some(prog) = plan.argv.first() else {
        return fail("no program given".into());
    };
    let err = match nix::unistd::execvpe(prog, &plan.argv, &plan.env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let _ = control::send(plan.control, &format!("X {}", err as i32), None);
    if err == nix::errno::Errno::ENOENT {
        127
    } else {
        126
    }
}
