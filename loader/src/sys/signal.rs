//! Signal mask and disposition wrappers used around process creation.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// Blocks every signal; returns the previous mask.
pub(crate) fn block_all() -> Result<SigSet, nix::Error> {
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )?;
    Ok(old)
}

/// Sets the signal mask.
pub(crate) fn set_mask(mask: &SigSet) -> Result<(), nix::Error> {
    nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(mask), None)
}

/// What CLONE_CLEAR_SIGHAND does, by hand (qemu_fork-style sanitising for the spawn
/// fallbacks): every caught signal goes back to SIG_DFL; ignored signals stay ignored.
pub(crate) fn clear_caught_handlers() {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code of ours; we read the old action to
        // put back SIG_IGN where it was set.
        let old = unsafe { sigaction(sig, &dfl) };
        if let Ok(old) = old {
            if matches!(old.handler(), SigHandler::SigIgn) {
                let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
                // SAFETY: as above, SIG_IGN runs no code.
                let _ = unsafe { sigaction(sig, &ign) };
            }
        }
    }
    for n in libc::SIGRTMIN()..=libc::SIGRTMAX() {
        // SAFETY: plain libc calls with a valid signal number; SIG_DFL runs no code.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(n, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction != libc::SIG_IGN
                && old.sa_sigaction != libc::SIG_DFL
            {
                libc::signal(n, libc::SIG_DFL);
            }
        }
    }
}

/// Resets every catchable signal to SIG_DFL (for a program about to exec).
pub(crate) fn reset_all_to_default() {
    for n in 1..=libc::SIGRTMAX() {
        if n == libc::SIGKILL || n == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL for a valid signal number; errors for numbers glibc reserves
        // are ignored.
        unsafe {
            libc::signal(n, libc::SIG_DFL);
        }
    }
}

/// `tgkill(tgid, tid, sig)`.
pub(crate) fn tgkill(tgid: i32, tid: i32, sig: i32) -> nix::Result<()> {
    // SAFETY: plain system call with integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, sig) };
    nix::errno::Errno::result(r).map(drop)
}

/// Stops the calling process with `sig` (a stop signal the caller keeps blocked):
/// raises it, unblocks it so that its default action runs, and blocks it again once
/// the process is continued.
/// Returns false if `sig` is not a signal.
pub(crate) fn stop_self(sig: i32) -> bool {
    let Ok(s) = Signal::try_from(sig) else {
        return false;
    };
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_DFL runs no code of ours.
    let _ = unsafe { sigaction(s, &dfl) };
    let _ = nix::sys::signal::raise(s);
    let mut one = SigSet::empty();
    one.add(s);
    let _ = one.thread_unblock();
    let _ = one.thread_block();
    true
}

/// The real-time signal that interrupts the notification thread's blocking receive
/// when the sandbox ends (`crate::sandbox`): sent to that thread only (tgkill).
pub(crate) fn wakeup_signal() -> i32 {
    libc::SIGRTMAX() - 3
}

extern "C" fn do_nothing(_: libc::c_int) {}

/// Installs a handler that does nothing for `sig`, without SA_RESTART, so that a
/// blocking call the signal interrupts fails with EINTR. Refuses (false) when the
/// process already has another disposition for it (an embedder's): the caller then
/// does without.
pub(crate) fn install_wakeup_handler(sig: i32) -> bool {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock();
    let ours = do_nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: sigaction reads and writes the two live, zero-initialised structures
    // (a valid value of the plain C struct); the handler installed runs no code.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
            return false;
        }
        if old.sa_sigaction == ours {
            return true;
        }
        if old.sa_sigaction != libc::SIG_DFL {
            return false;
        }
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = ours;
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaction(sig, &act, std::ptr::null_mut()) == 0
    }
}

/// Unblocks `sig` in the calling thread only.
pub(crate) fn unblock_in_thread(sig: i32) -> bool {
    // SAFETY: the set is a live local initialised by sigemptyset; pthread_sigmask
    // changes only the calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) == 0
    }
}

/// The calling thread's ID.
pub(crate) fn gettid() -> i32 {
    // SAFETY: no arguments; cannot fail.
    unsafe { libc::gettid() }
}
