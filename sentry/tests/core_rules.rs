//! Core job-control rules, one test each, with the Linux rule stated. The broader
//! per-area suites live beside this file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_sentry::sigaction::{SA_NOCLDSTOP, SA_RESTART};
use sandbox_sentry::wait::{status, WCONTINUED, WNOHANG, WUNTRACED};
use sandbox_sentry::*;

/// A shell in its own session holding a fresh pty as controlling terminal (fd 0).
fn shell() -> (Kernel, TtyId, Pid) {
    let mut k = Kernel::new();
    let tty = k.create_pty();
    let sh = k.fork(Kernel::INIT).unwrap();
    k.setsid(sh).unwrap();
    assert_eq!(k.open_tty(sh, tty, OpenFlags::RDWR).unwrap(), 0);
    (k, tty, sh)
}

/// A job forked by `sh` into its own process group (both sides call setpgid).
fn job(k: &mut Kernel, sh: Pid) -> Pid {
    let j = k.fork(sh).unwrap();
    k.setpgid(j, 0, 0).unwrap();
    k.setpgid(sh, j, j).unwrap();
    j
}

fn stopped_by(k: &Kernel, pid: Pid) -> bool {
    k.thread_group(pid).unwrap().stopped
}

#[test]
fn session_leader_open_without_noctty_acquires_terminal() {
    let (k, tty, sh) = shell();
    let t = k.tty(tty).unwrap();
    assert_eq!((t.session, t.pgrp), (Some(sh), Some(sh)));
    assert_eq!(k.thread_group(sh).unwrap().tty, Some(tty));
}

#[test]
fn background_read_sends_sigttin_to_whole_group_and_restarts() {
    let (mut k, _tty, sh) = shell();
    let j = job(&mut k, sh);
    let sibling = k.fork(j).unwrap(); // same group as j
    assert_eq!(k.read(j, 0, 10), Err(Errno::ERESTARTSYS));
    assert!(stopped_by(&k, j));
    assert!(
        stopped_by(&k, sibling),
        "SIGTTIN goes to the caller's whole group"
    );
}

/// The reading thread is marked as having a signal pending (`__tty_check_change`): it
/// takes its process's SIGTTIN, so a handler without SA_RESTART runs on it and its read
/// fails with EINTR; the main thread, idle, does not take it.
#[test]
fn background_read_by_a_second_thread_runs_the_handler_on_that_thread() {
    let (mut k, _tty, sh) = shell();
    let j = job(&mut k, sh);
    let t = k.spawn_thread(j).unwrap();
    k.set_handler(j, Signal::SIGTTIN, Handler::Catch, 0)
        .unwrap();
    k.take_events();
    assert_eq!(k.read(t, 0, 10), Err(Errno::ERESTARTSYS));
    let ran_on: Vec<Pid> = k
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::SignalDelivered {
                tid,
                sig: Signal::SIGTTIN,
                ..
            } => Some(*tid),
            _ => None,
        })
        .collect();
    assert_eq!(ran_on, vec![t]);
    assert!(!stopped_by(&k, j));
}

#[test]
fn background_read_with_sigttin_blocked_is_eio_even_with_other_signals_in_mask() {
    let (mut k, _tty, sh) = shell();
    let j = job(&mut k, sh);
    k.sigprocmask(
        j,
        SigmaskHow::Block,
        Some(SigSet::of(&[Signal::SIGTTIN, Signal::SIGUSR1])),
    )
    .unwrap();
    assert_eq!(k.read(j, 0, 10), Err(Errno::EIO));
    assert!(!stopped_by(&k, j));
}

#[test]
fn background_read_by_orphaned_group_is_eio() {
    let (mut k, _tty, sh) = shell();
    let j = job(&mut k, sh);
    let grandchild = k.fork(j).unwrap();
    k.setpgid(grandchild, 0, 0).unwrap();
    // grandchild's group {grandchild}: its parent j is in another group of the same
    // session, so it is not orphaned yet.
    k.exit_group(j, 0).unwrap();
    // Now its parent is init (other session): orphaned.
    assert!(k.is_orphaned_pgrp(grandchild));
    assert_eq!(k.read(grandchild, 0, 10), Err(Errno::EIO));
}

#[test]
fn background_tcsetpgrp_is_signalled_and_does_not_change_foreground() {
    let (mut k, tty, sh) = shell();
    let j = job(&mut k, sh);
    assert_eq!(k.tcsetpgrp(j, 0, j), Err(Errno::ERESTARTSYS));
    assert_eq!(k.tty(tty).unwrap().pgrp, Some(sh));
    assert!(stopped_by(&k, j));
}

#[test]
fn background_tcsetpgrp_with_sigttou_ignored_succeeds() {
    let (mut k, tty, sh) = shell();
    let j = job(&mut k, sh);
    k.set_handler(j, Signal::SIGTTOU, Handler::Ignore, 0)
        .unwrap();
    k.tcsetpgrp(j, 0, j).unwrap();
    assert_eq!(k.tty(tty).unwrap().pgrp, Some(j));
}

#[test]
fn background_write_stops_only_with_tostop() {
    let (mut k, _tty, sh) = shell();
    let j = job(&mut k, sh);
    assert_eq!(k.write(j, 0, b"hi"), Ok(Blocking::Ready(2)));
    let mut t = k.tcgetattr(sh, 0).unwrap();
    t.lflag |= termios::TOSTOP;
    k.tcsetattr(sh, 0, SetTermiosAction::Now, t).unwrap();
    assert_eq!(k.write(j, 0, b"hi"), Err(Errno::ERESTARTSYS));
    let w = k
        .wait4(sh, j, WUNTRACED)
        .unwrap()
        .ready()
        .flatten()
        .unwrap();
    assert_eq!(status::stop_sig(w.wait_status), Signal::SIGTTOU.number());
}

#[test]
fn background_tcsetattr_raises_sigttou_without_tostop_and_changes_nothing() {
    let (mut k, tty, sh) = shell();
    let j = job(&mut k, sh);
    let mut t = k.tcgetattr(j, 0).unwrap();
    t.lflag &= !termios::ECHO;
    assert_eq!(
        k.tcsetattr(j, 0, SetTermiosAction::Now, t),
        Err(Errno::ERESTARTSYS)
    );
    assert!(k.tty(tty).unwrap().termios.lflag(termios::ECHO));
    assert!(stopped_by(&k, j));
}

#[test]
fn ctrl_z_stops_foreground_job_and_shell_wait_reports_it_once() {
    let (mut k, tty, sh) = shell();
    let j = job(&mut k, sh);
    k.tcsetpgrp(sh, 0, j).unwrap();
    k.master_write(tty, b"\x1a").unwrap();
    let w = k
        .wait4(sh, -1, WUNTRACED | WNOHANG)
        .unwrap()
        .ready()
        .flatten()
        .unwrap();
    assert_eq!(w.pid, j);
    assert!(status::stopped(w.wait_status));
    assert_eq!(status::stop_sig(w.wait_status), Signal::SIGTSTP.number());
    // Reported once only.
    assert_eq!(
        k.wait4(sh, -1, WUNTRACED | WNOHANG),
        Ok(Blocking::Ready(None))
    );
}

#[test]
fn sigcont_continues_and_wcontinued_reports_0xffff() {
    let (mut k, _tty, sh) = shell();
    let j = job(&mut k, sh);
    k.kill(sh, j, Signal::SIGSTOP.number()).unwrap();
    k.kill(sh, -j, Signal::SIGCONT.number()).unwrap();
    assert!(!stopped_by(&k, j));
    let w = k
        .wait4(sh, j, WUNTRACED | WCONTINUED | WNOHANG)
        .unwrap()
        .ready()
        .flatten()
        .unwrap();
    assert!(status::continued(w.wait_status));
}

#[test]
fn stop_signal_discards_pending_sigcont_and_sigcont_discards_pending_stops() {
    let (mut k, _tty, sh) = shell();
    let j = job(&mut k, sh);
    let all = SigSet::of(&[Signal::SIGCONT, Signal::SIGTSTP]);
    k.sigprocmask(j, SigmaskHow::Block, Some(all)).unwrap();
    k.kill(sh, j, Signal::SIGCONT.number()).unwrap();
    k.kill(sh, j, Signal::SIGTSTP.number()).unwrap();
    assert_eq!(k.sigpending(j).unwrap(), SigSet::of(&[Signal::SIGTSTP]));
    k.kill(sh, j, Signal::SIGCONT.number()).unwrap();
    assert_eq!(k.sigpending(j).unwrap(), SigSet::of(&[Signal::SIGCONT]));
}

#[test]
fn sigcont_continues_even_when_blocked() {
    let (mut k, _tty, sh) = shell();
    let j = job(&mut k, sh);
    k.sigprocmask(j, SigmaskHow::Block, Some(SigSet::of(&[Signal::SIGCONT])))
        .unwrap();
    k.kill(sh, j, Signal::SIGSTOP.number()).unwrap();
    assert!(stopped_by(&k, j));
    k.kill(sh, j, Signal::SIGCONT.number()).unwrap();
    assert!(!stopped_by(&k, j));
}

#[test]
fn stopped_process_keeps_sigterm_pending_until_continued_then_dies() {
    let (mut k, _tty, sh) = shell();
    let j = job(&mut k, sh);
    k.kill(sh, j, Signal::SIGSTOP.number()).unwrap();
    k.kill(sh, j, Signal::SIGTERM.number()).unwrap();
    assert!(k.thread_group(j).unwrap().is_alive());
    k.kill(sh, j, Signal::SIGCONT.number()).unwrap();
    assert_eq!(
        k.thread_group(j).unwrap().zombie,
        Some(ExitStatus::Signaled {
            sig: Signal::SIGTERM,
            core: false
        })
    );
}

#[test]
fn sigkill_kills_a_stopped_process() {
    let (mut k, _tty, sh) = shell();
    let j = job(&mut k, sh);
    k.kill(sh, j, Signal::SIGSTOP.number()).unwrap();
    k.kill(sh, j, Signal::SIGKILL.number()).unwrap();
    let w = k.wait4(sh, j, 0).unwrap().ready().flatten().unwrap();
    assert_eq!(status::term_sig(w.wait_status), Signal::SIGKILL.number());
}

#[test]
fn orphaned_group_discards_default_sigtstp_but_not_sigstop() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    k.setsid(p).unwrap();
    // p's group has no parent in another group of its session: orphaned.
    assert!(k.is_orphaned_pgrp(p));
    k.kill(Kernel::INIT, p, Signal::SIGTSTP.number()).unwrap();
    assert!(!stopped_by(&k, p));
    k.kill(Kernel::INIT, p, Signal::SIGSTOP.number()).unwrap();
    assert!(stopped_by(&k, p));
}

#[test]
fn parent_exit_orphaning_group_with_stopped_member_sends_sighup_then_sigcont() {
    let (mut k, _tty, sh) = shell();
    let j = job(&mut k, sh);
    k.set_handler(j, Signal::SIGHUP, Handler::Catch, 0).unwrap();
    k.kill(sh, j, Signal::SIGSTOP.number()).unwrap();
    k.take_events();
    k.exit_group(sh, 0).unwrap();
    let sigs: Vec<Signal> = k
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::SignalGenerated {
                target: SignalTarget::Process(p),
                sig,
                ..
            } if p == j => Some(sig),
            _ => None,
        })
        .collect();
    assert_eq!(sigs, vec![Signal::SIGHUP, Signal::SIGCONT]);
    assert!(!stopped_by(&k, j));
    assert_eq!(k.thread_group(j).unwrap().parent, Some(Kernel::INIT));
}

#[test]
fn parent_exit_without_stopped_members_sends_nothing() {
    let (mut k, _tty, sh) = shell();
    let j = job(&mut k, sh);
    k.take_events();
    k.exit_group(sh, 0).unwrap();
    assert!(!k.take_events().iter().any(|e| matches!(e,
        Event::SignalGenerated { target: SignalTarget::Process(p), .. } if *p == j)));
}

#[test]
fn setpgid_rules() {
    let (mut k, _tty, sh) = shell();
    let c = k.fork(sh).unwrap();
    assert_eq!(k.setpgid(sh, c, -1), Err(Errno::EINVAL));
    assert_eq!(k.setpgid(sh, 9999, 0), Err(Errno::ESRCH));
    assert_eq!(
        k.setpgid(c, Kernel::INIT, 0),
        Err(Errno::ESRCH),
        "not self nor child"
    );
    assert_eq!(k.setpgid(sh, 0, 0), Err(Errno::EPERM), "session leader");
    assert_eq!(
        k.setpgid(sh, c, 4242),
        Err(Errno::EPERM),
        "no such group in the session"
    );
    let t = k.spawn_thread(c).unwrap();
    assert_eq!(
        k.setpgid(sh, t, 0),
        Err(Errno::EINVAL),
        "not a thread-group leader"
    );
    k.execve(c).unwrap();
    assert_eq!(k.setpgid(sh, c, c), Err(Errno::EACCES));
    let other = k.fork(sh).unwrap();
    k.setsid(other).unwrap();
    // A child in another session.
    assert_eq!(k.setpgid(sh, other, other), Err(Errno::EPERM));
}

#[test]
fn setsid_by_group_leader_is_eperm_and_new_session_has_no_terminal() {
    let (mut k, _tty, sh) = shell();
    assert_eq!(k.setsid(sh), Err(Errno::EPERM));
    let c = k.fork(sh).unwrap();
    assert_eq!(
        k.thread_group(c).unwrap().tty,
        k.thread_group(sh).unwrap().tty
    );
    assert_eq!(k.setsid(c), Ok(c));
    assert_eq!(k.thread_group(c).unwrap().tty, None);
    assert_eq!((k.getsid(c, 0), k.getpgid(c, 0)), (Ok(c), Ok(c)));
}

#[test]
fn exit_wakes_a_blocked_wait_which_returns_the_child_before_the_sigchld_handler_runs() {
    // Linux: the exit queues SIGCHLD and wakes the waiter; do_wait rescans, finds the
    // zombie and returns it; the handler runs on the way back to user mode.
    for flags in [0, SA_RESTART] {
        let (mut k, _tty, sh) = shell();
        let c = k.fork(sh).unwrap();
        k.set_handler(sh, Signal::SIGCHLD, Handler::Catch, flags)
            .unwrap();
        assert!(matches!(
            k.wait4(sh, -1, 0),
            Ok(Blocking::WouldBlock(BlockOn::Wait))
        ));
        k.take_events();
        k.exit_group(c, 7).unwrap();
        let ev = k.take_events();
        assert!(
            ev.iter()
                .any(|e| matches!(e, Event::Wakeup { tid, .. } if *tid == sh)),
            "{ev:?}"
        );
        assert!(
            !ev.iter()
                .any(|e| matches!(e, Event::SignalDelivered { tid, .. } if *tid == sh)),
            "the handler waits for the blocked call: {ev:?}"
        );
        let w = k.wait4(sh, -1, 0).unwrap();
        assert!(matches!(w, Blocking::Ready(Some(ref i)) if i.pid == c && i.status == 7));
        let ev = k.take_events();
        assert!(
            ev.contains(&Event::SignalDelivered {
                tid: sh,
                sig: Signal::SIGCHLD,
                disposition: Disposition::Handler {
                    restart: flags != 0
                }
            }),
            "{ev:?}"
        );
    }
}

#[test]
fn unrelated_handled_signal_makes_a_blocked_wait_fail_with_erestartsys_after_the_handler() {
    // The caller turns ERESTARTSYS into EINTR without SA_RESTART, a restart with it.
    for flags in [0, SA_RESTART] {
        let (mut k, _tty, sh) = shell();
        let _c = k.fork(sh).unwrap();
        k.set_handler(sh, Signal::SIGUSR1, Handler::Catch, flags)
            .unwrap();
        assert!(matches!(
            k.wait4(sh, -1, 0),
            Ok(Blocking::WouldBlock(BlockOn::Wait))
        ));
        k.take_events();
        k.kill(Kernel::INIT, sh, Signal::SIGUSR1.number()).unwrap();
        let ev = k.take_events();
        assert!(ev.contains(&Event::Wakeup {
            tid: sh,
            on: BlockOn::Wait
        }));
        assert_eq!(k.wait4(sh, -1, 0), Err(Errno::ERESTARTSYS));
        assert!(k.take_events().contains(&Event::SignalDelivered {
            tid: sh,
            sig: Signal::SIGUSR1,
            disposition: Disposition::Handler {
                restart: flags != 0
            }
        }));
        // The restarted wait blocks again: nothing is pending any more.
        assert!(matches!(
            k.wait4(sh, -1, 0),
            Ok(Blocking::WouldBlock(BlockOn::Wait))
        ));
    }
}

#[test]
fn sa_nocldstop_suppresses_stop_sigchld() {
    let (mut k, _tty, sh) = shell();
    let j = job(&mut k, sh);
    k.set_handler(sh, Signal::SIGCHLD, Handler::Catch, SA_NOCLDSTOP)
        .unwrap();
    k.take_events();
    k.kill(sh, j, Signal::SIGSTOP.number()).unwrap();
    assert!(!k.take_events().iter().any(|e| matches!(
        e,
        Event::SignalGenerated {
            sig: Signal::SIGCHLD,
            ..
        }
    )));
}

#[test]
fn sigchld_ignored_children_are_reaped_automatically() {
    let (mut k, _tty, sh) = shell();
    k.set_handler(sh, Signal::SIGCHLD, Handler::Ignore, 0)
        .unwrap();
    let c = k.fork(sh).unwrap();
    k.exit_group(c, 0).unwrap();
    assert!(k.thread_group(c).is_none());
    assert_eq!(k.wait4(sh, -1, 0), Err(Errno::ECHILD));
}

#[test]
fn init_ignores_handlerless_signals_from_inside_but_dies_of_outside_sigkill() {
    let mut k = Kernel::new();
    let c = k.fork(Kernel::INIT).unwrap();
    k.kill(c, Kernel::INIT, Signal::SIGKILL.number()).unwrap();
    assert!(k.thread_group(Kernel::INIT).unwrap().is_alive());
    k.deliver_signal(DeliveryMode::Process, 0, Signal::SIGKILL.number())
        .unwrap();
    assert!(k.thread_group(Kernel::INIT).unwrap().is_zombie());
    assert!(k.thread_group(c).is_none(), "the namespace died with init");
}

#[test]
fn session_leader_exit_sends_sighup_to_pty_foreground_and_detaches_terminal() {
    let (mut k, tty, sh) = shell();
    let j = job(&mut k, sh);
    k.tcsetpgrp(sh, 0, j).unwrap();
    k.take_events();
    k.exit_group(sh, 0).unwrap();
    let ev = k.take_events();
    assert!(ev.contains(&Event::SignalGenerated {
        target: SignalTarget::Process(j),
        sig: Signal::SIGHUP,
        code: SiCode::Kernel,
        queued: true,
    }));
    let t = k.tty(tty).unwrap();
    assert_eq!((t.session, t.pgrp), (None, None));
}

#[test]
fn master_close_hangs_up_open_files_and_signals_session_leader() {
    let (mut k, tty, sh) = shell();
    k.set_handler(sh, Signal::SIGHUP, Handler::Catch, 0)
        .unwrap();
    k.take_events();
    k.master_close(tty).unwrap();
    let ev = k.take_events();
    assert!(ev.contains(&Event::SignalDelivered {
        tid: sh,
        sig: Signal::SIGHUP,
        disposition: Disposition::Handler { restart: false },
    }));
    assert_eq!(k.read(sh, 0, 10), Ok(Blocking::Ready(vec![])));
    assert_eq!(k.write(sh, 0, b"x"), Err(Errno::EIO));
    assert_eq!(k.tcsetpgrp(sh, 0, sh), Err(Errno::ENOTTY));
    assert_eq!(k.tcgetpgrp(sh, 0), Err(Errno::EIO));
    assert_eq!(k.open_tty(sh, tty, OpenFlags::RDWR), Err(Errno::ENOENT));
}

#[test]
fn snapshot_round_trips_through_json_and_behaves_the_same() {
    let (mut k, tty, sh) = shell();
    let j = job(&mut k, sh);
    k.tcsetpgrp(sh, 0, j).unwrap();
    let json = serde_json::to_string(&k.snapshot()).unwrap();
    let mut restored = Kernel::restore(serde_json::from_str(&json).unwrap());
    assert_eq!(restored, k);
    for kk in [&mut k, &mut restored] {
        kk.master_write(tty, b"\x03").unwrap();
    }
    assert_eq!(restored, k);
    assert!(k.thread_group(j).unwrap().is_zombie());
}
