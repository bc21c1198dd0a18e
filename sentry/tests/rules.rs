//! Per-rule tests for wait, kill selectors, threads, exec, clone flags, reaping,
//! controlling terminals and delivery modes. Each test states the Linux rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_sentry::sigaction::{SA_NOCLDWAIT, SA_RESETHAND};
use sandbox_sentry::wait::*;
use sandbox_sentry::*;

fn ready(r: SysResult<Blocking<Option<WaitInfo>>>) -> Option<WaitInfo> {
    match r.unwrap() {
        Blocking::Ready(w) => w,
        Blocking::WouldBlock(_) => panic!("would block"),
    }
}

fn delivered(k: &mut Kernel, tid: Pid) -> Vec<Signal> {
    k.take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::SignalDelivered {
                tid: t,
                sig,
                disposition: Disposition::Handler { .. },
            } if t == tid => Some(sig),
            _ => None,
        })
        .collect()
}

// ---- wait ----------------------------------------------------------------------

#[test]
fn wait_with_no_children_is_echild_even_with_wnohang() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    assert_eq!(k.wait4(p, -1, 0), Err(Errno::ECHILD));
    assert_eq!(k.wait4(p, -1, WNOHANG), Err(Errno::ECHILD));
}

#[test]
fn wnohang_with_living_children_returns_zero() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    k.fork(p).unwrap();
    assert_eq!(k.wait4(p, -1, WNOHANG), Ok(Blocking::Ready(None)));
}

#[test]
fn wait4_rejects_unknown_options_and_waitid_needs_an_event_kind() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    k.fork(p).unwrap();
    assert_eq!(
        k.wait4(p, -1, WNOWAIT),
        Err(Errno::EINVAL),
        "WNOWAIT is waitid-only"
    );
    assert_eq!(k.waitid(p, IdType::All, 0, WNOHANG), Err(Errno::EINVAL));
    assert_eq!(k.waitid(p, IdType::Pid, 0, WEXITED), Err(Errno::EINVAL));
    assert_eq!(k.waitid(p, IdType::Pgid, -1, WEXITED), Err(Errno::EINVAL));
    assert_eq!(k.wait4(p, i32::MIN, 0), Err(Errno::ESRCH));
}

#[test]
fn exit_status_encodings() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let a = k.fork(p).unwrap();
    k.exit_group(a, 300).unwrap(); // only the low 8 bits survive
    let w = ready(k.wait4(p, a, 0)).unwrap();
    assert!(status::exited(w.wait_status));
    assert_eq!(status::exit_status(w.wait_status), 300 & 0xff);
    assert_eq!((w.code, w.status), (SiCode::ChildExited, 44));
    let b = k.fork(p).unwrap();
    k.kill(p, b, Signal::SIGTERM.number()).unwrap();
    let w = ready(k.wait4(p, b, 0)).unwrap();
    assert!(status::signaled(w.wait_status) && !status::core_dump(w.wait_status));
    assert_eq!(status::term_sig(w.wait_status), 15);
    assert_eq!(w.code, SiCode::ChildKilled);
}

#[test]
fn core_signal_sets_wcoredump_only_when_cores_are_dumped() {
    for (dumps, core) in [(false, false), (true, true)] {
        let mut k = Kernel::with_config(KernelConfig {
            core_dumps: dumps,
            ..KernelConfig::default()
        });
        let p = k.fork(Kernel::INIT).unwrap();
        let c = k.fork(p).unwrap();
        k.kill(p, c, Signal::SIGQUIT.number()).unwrap();
        let w = ready(k.wait4(p, c, 0)).unwrap();
        assert_eq!(status::core_dump(w.wait_status), core);
        assert_eq!(w.code == SiCode::ChildDumped, core);
    }
}

#[test]
fn wnowait_leaves_the_zombie_for_the_next_wait() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let c = k.fork(p).unwrap();
    k.exit_group(c, 1).unwrap();
    assert_eq!(
        ready(k.waitid(p, IdType::Pid, c, WEXITED | WNOWAIT))
            .unwrap()
            .pid,
        c
    );
    assert!(k.thread_group(c).is_some());
    assert_eq!(ready(k.waitid(p, IdType::All, 0, WEXITED)).unwrap().pid, c);
    assert!(k.thread_group(c).is_none());
}

#[test]
fn zombie_is_not_waitable_with_only_wstopped() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let c = k.fork(p).unwrap();
    k.exit_group(c, 0).unwrap();
    assert_eq!(
        k.waitid(p, IdType::All, 0, WSTOPPED | WNOHANG),
        Err(Errno::ECHILD)
    );
}

#[test]
fn wait_selectors_pid_pgid_and_own_group() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let same = k.fork(p).unwrap();
    let other = k.fork(p).unwrap();
    k.setpgid(p, other, other).unwrap();
    k.exit_group(same, 1).unwrap();
    k.exit_group(other, 2).unwrap();
    assert_eq!(ready(k.wait4(p, -other, WNOHANG)).unwrap().pid, other);
    assert_eq!(
        ready(k.wait4(p, 0, WNOHANG)).unwrap().pid,
        same,
        "0: the caller's group"
    );
    assert_eq!(k.wait4(p, same, 0), Err(Errno::ECHILD));
}

#[test]
fn waitid_p_pgid_zero_means_the_callers_group() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let c = k.fork(p).unwrap();
    k.exit_group(c, 0).unwrap();
    assert_eq!(ready(k.waitid(p, IdType::Pgid, 0, WEXITED)).unwrap().pid, c);
}

#[test]
fn wclone_selects_children_without_sigchld_exit_signal_and_wall_selects_all() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    // SIGUSR1's default action would kill the parent when the child dies.
    k.set_handler(p, Signal::SIGUSR1, Handler::Catch, 0)
        .unwrap();
    let args = CloneArgs {
        exit_signal: Some(Signal::SIGUSR1),
        ..CloneArgs::FORK
    };
    let c = k.clone_task(p, args).unwrap();
    k.exit_group(c, 0).unwrap();
    assert_eq!(k.wait4(p, -1, WNOHANG), Err(Errno::ECHILD));
    assert_eq!(ready(k.wait4(p, -1, __WCLONE | WNOHANG)).unwrap().pid, c);
    let d = k.clone_task(p, args).unwrap();
    k.exit_group(d, 0).unwrap();
    assert_eq!(ready(k.wait4(p, -1, __WALL)).unwrap().pid, d);
}

#[test]
fn exit_signal_zero_sends_nothing_and_leaves_a_clone_zombie() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    k.set_handler(p, Signal::SIGCHLD, Handler::Catch, 0)
        .unwrap();
    let c = k
        .clone_task(
            p,
            CloneArgs {
                exit_signal: None,
                ..CloneArgs::FORK
            },
        )
        .unwrap();
    k.take_events();
    k.exit_group(c, 0).unwrap();
    assert!(delivered(&mut k, p).is_empty());
    assert!(k.thread_group(c).unwrap().is_zombie());
}

#[test]
fn wnothread_sees_only_children_of_the_calling_thread() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let t = k.spawn_thread(p).unwrap();
    let c = k.fork(t).unwrap();
    k.exit_group(c, 0).unwrap();
    assert_eq!(k.wait4(p, -1, __WNOTHREAD | WNOHANG), Err(Errno::ECHILD));
    assert_eq!(
        ready(k.wait4(p, -1, WNOHANG)).unwrap().pid,
        c,
        "any thread's children"
    );
}

#[test]
fn blocking_wait_wakes_when_a_child_exits() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let c = k.fork(p).unwrap();
    assert_eq!(k.wait4(p, -1, 0), Ok(Blocking::WouldBlock(BlockOn::Wait)));
    k.take_events();
    k.exit_group(c, 5).unwrap();
    assert!(k.take_events().contains(&Event::Wakeup {
        tid: p,
        on: BlockOn::Wait
    }));
    assert_eq!(
        status::exit_status(ready(k.wait4(p, -1, 0)).unwrap().wait_status),
        5
    );
}

#[test]
fn sa_nocldwait_reaps_automatically_but_still_signals() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    k.set_handler(p, Signal::SIGCHLD, Handler::Catch, SA_NOCLDWAIT)
        .unwrap();
    let c = k.fork(p).unwrap();
    k.take_events();
    k.exit_group(c, 0).unwrap();
    assert_eq!(delivered(&mut k, p), vec![Signal::SIGCHLD]);
    assert!(k.thread_group(c).is_none());
}

// ---- kill ------------------------------------------------------------------------

#[test]
fn kill_selectors_and_errors() {
    let mut k = Kernel::new();
    let a = k.fork(Kernel::INIT).unwrap();
    let b = k.fork(Kernel::INIT).unwrap();
    for p in [a, b] {
        k.set_handler(p, Signal::SIGUSR1, Handler::Catch, 0)
            .unwrap();
    }
    assert_eq!(k.kill(a, b, 65), Err(Errno::EINVAL));
    assert_eq!(k.kill(a, 9999, 0), Err(Errno::ESRCH));
    assert_eq!(k.kill(a, b, 0), Ok(()));
    assert_eq!(
        k.kill(a, -9999, Signal::SIGUSR1.number()),
        Err(Errno::ESRCH)
    );
    assert_eq!(k.kill(a, i32::MIN, 0), Err(Errno::ESRCH));
    // -1: everyone but init and the caller.
    k.take_events();
    k.kill(a, -1, Signal::SIGUSR1.number()).unwrap();
    let ev = k.take_events();
    let targets: Vec<Pid> = ev
        .iter()
        .filter_map(|e| match e {
            Event::SignalGenerated {
                target: SignalTarget::Process(p),
                ..
            } => Some(*p),
            _ => None,
        })
        .collect();
    assert_eq!(targets, vec![b]);
    // 0: the caller's group (a and b are both in init's group 1, init included).
    k.kill(a, 0, Signal::SIGUSR1.number()).unwrap();
    assert_eq!(delivered(&mut k, b), vec![Signal::SIGUSR1]);
    assert!(k.thread_group(Kernel::INIT).unwrap().is_alive());
}

#[test]
fn kill_minus_one_with_nobody_else_is_esrch() {
    let mut k = Kernel::new();
    let a = k.fork(Kernel::INIT).unwrap();
    assert_eq!(k.kill(a, -1, 0), Err(Errno::ESRCH));
}

#[test]
fn kill_of_a_thread_id_signals_its_process_and_tgkill_checks_the_group() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let t = k.spawn_thread(p).unwrap();
    k.set_handler(p, Signal::SIGUSR1, Handler::Catch, 0)
        .unwrap();
    k.take_events();
    k.kill(Kernel::INIT, t, Signal::SIGUSR1.number()).unwrap();
    assert!(k.take_events().contains(&Event::SignalGenerated {
        target: SignalTarget::Process(p),
        sig: Signal::SIGUSR1,
        code: SiCode::User,
        queued: true
    }));
    k.tgkill(Kernel::INIT, p, t, Signal::SIGUSR1.number())
        .unwrap();
    assert_eq!(
        delivered(&mut k, t),
        vec![Signal::SIGUSR1],
        "the named thread takes it"
    );
    assert_eq!(
        k.tgkill(Kernel::INIT, Kernel::INIT, t, 0),
        Err(Errno::ESRCH)
    );
    assert_eq!(k.tgkill(Kernel::INIT, 0, t, 0), Err(Errno::EINVAL));
    assert_eq!(k.tkill(Kernel::INIT, -3, 0), Err(Errno::EINVAL));
    assert_eq!(k.killpg(Kernel::INIT, -3, 0), Err(Errno::EINVAL));
}

#[test]
fn ignored_signal_is_discarded_at_generation_unless_blocked() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    k.set_handler(p, Signal::SIGUSR1, Handler::Ignore, 0)
        .unwrap();
    k.kill(Kernel::INIT, p, Signal::SIGUSR1.number()).unwrap();
    assert!(k.sigpending(p).unwrap().is_empty());
    k.sigprocmask(p, SigmaskHow::Block, Some(SigSet::of(&[Signal::SIGUSR1])))
        .unwrap();
    k.kill(Kernel::INIT, p, Signal::SIGUSR1.number()).unwrap();
    assert!(k.sigpending(p).unwrap().contains(Signal::SIGUSR1));
}

#[test]
fn setting_sig_ign_discards_pending_instances() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    k.sigprocmask(p, SigmaskHow::Block, Some(SigSet::of(&[Signal::SIGUSR2])))
        .unwrap();
    k.kill(Kernel::INIT, p, Signal::SIGUSR2.number()).unwrap();
    k.set_handler(p, Signal::SIGUSR2, Handler::Ignore, 0)
        .unwrap();
    assert!(k.sigpending(p).unwrap().is_empty());
}

#[test]
fn sigkill_and_sigstop_cannot_be_caught_or_blocked() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    assert_eq!(
        k.set_handler(p, Signal::SIGKILL, Handler::Ignore, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        k.set_handler(p, Signal::SIGSTOP, Handler::Catch, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(k.sigaction(p, 0, None), Err(Errno::EINVAL));
    k.sigprocmask(p, SigmaskHow::SetMask, Some(SigSet::FULL))
        .unwrap();
    let mask = k.sigprocmask(p, SigmaskHow::Block, None).unwrap();
    assert!(!mask.contains(Signal::SIGKILL) && !mask.contains(Signal::SIGSTOP));
}

#[test]
fn unblocking_delivers_pending_lowest_first_private_before_shared() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    for s in [Signal::SIGUSR1, Signal::SIGUSR2, Signal::SIGHUP] {
        k.set_handler(p, s, Handler::Catch, 0).unwrap();
    }
    let all = SigSet::of(&[Signal::SIGUSR1, Signal::SIGUSR2, Signal::SIGHUP]);
    k.sigprocmask(p, SigmaskHow::Block, Some(all)).unwrap();
    k.kill(Kernel::INIT, p, Signal::SIGUSR2.number()).unwrap();
    k.kill(Kernel::INIT, p, Signal::SIGHUP.number()).unwrap();
    k.tkill(Kernel::INIT, p, Signal::SIGUSR1.number()).unwrap();
    k.take_events();
    k.sigprocmask(p, SigmaskHow::Unblock, Some(all)).unwrap();
    // SIGUSR1 is private (tkill): first; then the shared ones, lowest first.
    assert_eq!(
        delivered(&mut k, p),
        vec![Signal::SIGUSR1, Signal::SIGHUP, Signal::SIGUSR2]
    );
}

#[test]
fn a_stop_the_handler_mask_lets_through_acts_before_the_handler_runs() {
    // Linux sets up a handler's frame (blocking its sa_mask) and keeps dequeuing before
    // it returns to user mode: SIGSTOP, which no mask blocks, or a default-action stop
    // signal the handler's sa_mask leaves unblocked, stops the process before the
    // handler has run; the handler runs after SIGCONT.
    for (stop, mask, stop_first) in [
        (Signal::SIGSTOP, SigSet::FULL, true),
        (Signal::SIGTSTP, SigSet::EMPTY, true),
        (Signal::SIGTSTP, SigSet::of(&[Signal::SIGTSTP]), false),
    ] {
        let mut k = Kernel::new();
        let sh = k.fork(Kernel::INIT).unwrap();
        k.setsid(sh).unwrap();
        let job = k.fork(sh).unwrap();
        k.setpgid(job, 0, 0).unwrap();
        let _child = k.fork(job).unwrap();
        let act = SigAction {
            handler: Handler::Catch,
            flags: 0,
            mask,
        };
        k.sigaction(job, Signal::SIGUSR1.number(), Some(act))
            .unwrap();
        // Both signals arrive while the job sleeps in wait; its retry delivers them.
        assert!(matches!(k.wait4(job, -1, 0), Ok(Blocking::WouldBlock(_))));
        k.kill(Kernel::INIT, job, Signal::SIGUSR1.number()).unwrap();
        k.kill(Kernel::INIT, job, stop.number()).unwrap();
        k.take_events();
        assert_eq!(k.wait4(job, -1, 0), Err(Errno::ERESTARTSYS));
        let acted: Vec<(Signal, Disposition)> = k
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::SignalDelivered {
                    tid,
                    sig,
                    disposition,
                } if tid == job => Some((sig, disposition)),
                _ => None,
            })
            .collect();
        let handler = (Signal::SIGUSR1, Disposition::Handler { restart: false });
        if stop_first {
            assert_eq!(acted, vec![(stop, Disposition::Stop)], "{stop:?}");
            // The frame blocks the handler's mask until the handler has run: a
            // SIGTERM sent meanwhile waits for it when the mask has it, and kills the
            // process before the handler runs when it does not.
            k.kill(Kernel::INIT, job, Signal::SIGTERM.number()).unwrap();
            k.kill(Kernel::INIT, job, Signal::SIGCONT.number()).unwrap();
            let mask_blocks_term = mask.contains(Signal::SIGTERM);
            let ran: Vec<Signal> = if mask_blocks_term {
                vec![Signal::SIGUSR1]
            } else {
                vec![]
            };
            assert_eq!(delivered(&mut k, job), ran, "{stop:?}");
            assert!(k.thread_group(job).unwrap().is_zombie());
            continue;
        } else {
            assert_eq!(acted, vec![handler, (stop, Disposition::Stop)]);
        }
        assert!(k.thread_group(job).unwrap().stopped);
    }
}

#[test]
fn the_sender_of_a_group_signal_acts_on_it_first() {
    // kill(0, SIGTSTP) by a child: it stops on its way out of kill(), before its
    // parent in the same group (asleep, woken by the signal) acts; the parent then has
    // the child's CLD_STOPPED SIGCHLD pending with its SIGTSTP, and its handler (full
    // mask: SIGTSTP blocked while it runs) runs before it stops. The same holds for a
    // background tcsetpgrp's SIGTTOU.
    for tcsetpgrp in [false, true] {
        let mut k = Kernel::new();
        let tty = k.create_pty();
        let sh = k.fork(Kernel::INIT).unwrap();
        k.setsid(sh).unwrap();
        let fd = k.open_tty(sh, tty, OpenFlags::RDWR).unwrap();
        let p1 = k.fork(sh).unwrap();
        k.setpgid(p1, 0, 0).unwrap();
        let act = SigAction {
            handler: Handler::Catch,
            flags: 0,
            mask: SigSet::FULL,
        };
        k.sigaction(p1, Signal::SIGCHLD.number(), Some(act))
            .unwrap();
        let p2 = k.fork(p1).unwrap();
        k.take_events();
        let stop = if tcsetpgrp {
            assert_eq!(k.tcsetpgrp(p2, fd, p2), Err(Errno::ERESTARTSYS));
            Signal::SIGTTOU
        } else {
            k.kill(p2, 0, Signal::SIGTSTP.number()).unwrap();
            Signal::SIGTSTP
        };
        let acted: Vec<(Pid, Signal)> = k
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::SignalDelivered { tid, sig, .. } if tid == p1 || tid == p2 => {
                    Some((tid, sig))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            acted,
            vec![(p2, stop), (p1, Signal::SIGCHLD), (p1, stop)],
            "tcsetpgrp: {tcsetpgrp}"
        );
    }
}

#[test]
fn a_sender_dies_first_and_a_fatal_signal_without_core_makes_the_others_ignore_its_hangup() {
    // A session leader sends its foreground group a fatal signal. It dies first, on
    // its way out of kill(), and its exit sends the group SIGHUP. SIGTERM made the
    // child a dying process when it was generated (complete_signal): the SIGHUP is
    // ignored. SIGQUIT dumps core, so it waits for delivery: the SIGHUP (lower) wins.
    for (sig, dies_of) in [
        (Signal::SIGTERM, Signal::SIGTERM),
        (Signal::SIGQUIT, Signal::SIGHUP),
    ] {
        let mut k = Kernel::new();
        let tty = k.create_pty();
        let sh = k.fork(Kernel::INIT).unwrap();
        k.setsid(sh).unwrap();
        k.open_tty(sh, tty, OpenFlags::RDWR).unwrap();
        let child = k.fork(sh).unwrap();
        k.kill(sh, 0, sig.number()).unwrap();
        let w = ready(k.wait4(Kernel::INIT, child, 0)).unwrap();
        assert_eq!(w.wait_status, dies_of.number(), "{sig:?}");
        let w = ready(k.wait4(Kernel::INIT, sh, 0)).unwrap();
        assert_eq!(w.wait_status, sig.number());
    }
}

#[test]
fn a_group_signal_reaches_the_most_recent_member_first() {
    // kill_pgrp walks the group's PID list from its head, where Linux adds each
    // process that joins: ^C wakes the grandchild, the child, then the shell, and they
    // die in that order (Linux runs them in about that order; which one dies first is
    // scheduling, so the conformance generator avoids depending on it).
    let mut k = Kernel::new();
    let tty = k.create_pty();
    let sh = k.fork(Kernel::INIT).unwrap();
    k.setsid(sh).unwrap();
    k.open_tty(sh, tty, OpenFlags::RDWR).unwrap();
    let p1 = k.fork(sh).unwrap();
    let p2 = k.fork(p1).unwrap();
    k.take_events();
    k.master_write(tty, b"\x03").unwrap();
    let died: Vec<Pid> = k
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Exited { pid, .. } => Some(pid),
            _ => None,
        })
        .collect();
    assert_eq!(died, vec![p2, p1, sh]);
    // The grandchild reached init (when the child died) before the child did.
    let order: Vec<Pid> = (0..3)
        .map(|_| ready(k.wait4(Kernel::INIT, -1, 0)).unwrap().pid)
        .collect();
    assert_eq!(order, vec![sh, p2, p1]);
}

#[test]
fn a_shared_signal_that_woke_a_thread_blocked_in_a_call_waits_for_it() {
    // complete_signal wakes one thread for a process-directed signal; the other
    // threads, asleep, do not take it. The leader, blocked in wait4, is woken by its
    // child's SIGCHLD: its wait returns the child, then its handler runs.
    let mut k = Kernel::new();
    let sh = k.fork(Kernel::INIT).unwrap();
    k.set_handler(sh, Signal::SIGCHLD, Handler::Catch, 0)
        .unwrap();
    let t1 = k.spawn_thread(sh).unwrap();
    let c = k.fork(sh).unwrap();
    assert!(matches!(k.wait4(sh, -1, 0), Ok(Blocking::WouldBlock(_))));
    k.take_events();
    k.kill(t1, c, Signal::SIGKILL.number()).unwrap();
    assert!(delivered(&mut k, t1).is_empty());
    assert_eq!(ready(k.wait4(sh, -1, 0)).unwrap().pid, c);
    assert_eq!(delivered(&mut k, sh), vec![Signal::SIGCHLD]);
}

#[test]
fn a_session_leaders_tiocnotty_lets_it_die_before_the_rest_of_its_group() {
    // TIOCNOTTY by a session leader sends SIGHUP to the foreground group, its own: the
    // leader takes it on its way out of the ioctl and dies first, so its child (killed
    // too) has been handed to init, which does not ignore SIGCHLD, and stays a zombie.
    let mut k = Kernel::new();
    let tty = k.create_pty();
    let sh = k.fork(Kernel::INIT).unwrap();
    k.setsid(sh).unwrap();
    let fd = k.open_tty(sh, tty, OpenFlags::RDWR).unwrap();
    k.set_handler(sh, Signal::SIGCHLD, Handler::Ignore, 0)
        .unwrap();
    let p1 = k.fork(sh).unwrap();
    k.ioctl_tiocnotty(sh, fd).unwrap();
    let g = k.thread_group(p1).unwrap();
    assert!(g.is_zombie());
    assert_eq!(g.parent, Some(Kernel::INIT));
}

#[test]
fn realtime_signals_queue_every_instance_standard_ones_coalesce() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let rt = Signal::new(40).unwrap();
    k.set_handler(p, rt, Handler::Catch, 0).unwrap();
    k.set_handler(p, Signal::SIGUSR1, Handler::Catch, 0)
        .unwrap();
    k.sigprocmask(
        p,
        SigmaskHow::Block,
        Some(SigSet::of(&[rt, Signal::SIGUSR1])),
    )
    .unwrap();
    for _ in 0..3 {
        k.kill(Kernel::INIT, p, 40).unwrap();
        k.kill(Kernel::INIT, p, Signal::SIGUSR1.number()).unwrap();
    }
    k.take_events();
    k.sigprocmask(p, SigmaskHow::SetMask, Some(SigSet::EMPTY))
        .unwrap();
    assert_eq!(delivered(&mut k, p), vec![Signal::SIGUSR1, rt, rt, rt]);
}

#[test]
fn sa_resethand_restores_default_after_one_delivery() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    k.set_handler(p, Signal::SIGUSR1, Handler::Catch, SA_RESETHAND)
        .unwrap();
    k.kill(Kernel::INIT, p, Signal::SIGUSR1.number()).unwrap();
    assert!(k.thread_group(p).unwrap().is_alive());
    k.kill(Kernel::INIT, p, Signal::SIGUSR1.number()).unwrap();
    assert!(k.thread_group(p).unwrap().is_zombie());
}

#[test]
fn group_stop_stops_every_thread_and_a_thread_cannot_run() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let t = k.spawn_thread(p).unwrap();
    k.tkill(Kernel::INIT, t, Signal::SIGSTOP.number()).unwrap();
    assert!(k.thread_group(p).unwrap().stopped);
    assert_eq!(k.getpgrp(p), Err(Errno::ERESTARTNOINTR));
    assert_eq!(k.getpgrp(t), Err(Errno::ERESTARTNOINTR));
}

// ---- lifecycle -------------------------------------------------------------------

#[test]
fn fork_inherits_groups_terminal_handlers_and_mask_but_not_pending() {
    let mut k = Kernel::new();
    let tty = k.create_pty();
    let p = k.fork(Kernel::INIT).unwrap();
    k.setsid(p).unwrap();
    k.open_tty(p, tty, OpenFlags::RDWR).unwrap();
    k.set_handler(p, Signal::SIGUSR1, Handler::Catch, 0)
        .unwrap();
    k.sigprocmask(p, SigmaskHow::Block, Some(SigSet::of(&[Signal::SIGUSR2])))
        .unwrap();
    k.kill(Kernel::INIT, p, Signal::SIGUSR2.number()).unwrap();
    let c = k.fork(p).unwrap();
    let (pg, cg) = (k.thread_group(p).unwrap(), k.thread_group(c).unwrap());
    assert_eq!((cg.pgid, cg.sid, cg.tty), (pg.pgid, pg.sid, pg.tty));
    assert_eq!(cg.handlers.get(Signal::SIGUSR1).handler, Handler::Catch);
    assert!(!cg.session_leader);
    assert_eq!(k.task(c).unwrap().blocked, SigSet::of(&[Signal::SIGUSR2]));
    assert!(k.sigpending(c).unwrap().is_empty());
    assert_eq!(k.fds(c), vec![0]);
}

#[test]
fn execve_resets_caught_keeps_ignored_mask_and_pending() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    k.set_handler(p, Signal::SIGUSR1, Handler::Catch, 0)
        .unwrap();
    k.set_handler(p, Signal::SIGINT, Handler::Ignore, 0)
        .unwrap();
    k.sigprocmask(p, SigmaskHow::Block, Some(SigSet::of(&[Signal::SIGUSR2])))
        .unwrap();
    k.kill(Kernel::INIT, p, Signal::SIGUSR2.number()).unwrap();
    k.execve(p).unwrap();
    let g = k.thread_group(p).unwrap();
    assert_eq!(g.handlers.get(Signal::SIGUSR1).handler, Handler::Default);
    assert_eq!(g.handlers.get(Signal::SIGINT).handler, Handler::Ignore);
    assert!(k.sigpending(p).unwrap().contains(Signal::SIGUSR2));
    assert!(k.task(p).unwrap().blocked.contains(Signal::SIGUSR2));
}

#[test]
fn exec_by_a_thread_ends_other_threads_and_takes_the_leader_tid() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let t1 = k.spawn_thread(p).unwrap();
    let t2 = k.spawn_thread(p).unwrap();
    assert_eq!(k.execve(t2), Ok(p));
    assert_eq!(k.thread_group(p).unwrap().threads, vec![p]);
    assert!(k.task(t1).is_none() && k.task(t2).is_none());
}

#[test]
fn clone_clear_sighand_resets_caught_but_keeps_ignored() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    k.set_handler(p, Signal::SIGUSR1, Handler::Catch, 0)
        .unwrap();
    k.set_handler(p, Signal::SIGUSR2, Handler::Ignore, 0)
        .unwrap();
    let c = k
        .clone_task(
            p,
            CloneArgs {
                clear_sighand: true,
                ..CloneArgs::FORK
            },
        )
        .unwrap();
    let g = k.thread_group(c).unwrap();
    assert_eq!(g.handlers.get(Signal::SIGUSR1).handler, Handler::Default);
    assert_eq!(g.handlers.get(Signal::SIGUSR2).handler, Handler::Ignore);
    let bad = CloneArgs {
        clear_sighand: true,
        ..CloneArgs::THREAD
    };
    assert_eq!(k.clone_task(p, bad), Err(Errno::EINVAL));
}

#[test]
fn clone_parent_makes_a_sibling_and_init_may_not_use_it() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let sib = k
        .clone_task(
            p,
            CloneArgs {
                parent: true,
                ..CloneArgs::FORK
            },
        )
        .unwrap();
    assert_eq!(k.thread_group(sib).unwrap().parent, Some(Kernel::INIT));
    let init_try = k.clone_task(
        Kernel::INIT,
        CloneArgs {
            parent: true,
            ..CloneArgs::FORK
        },
    );
    assert_eq!(init_try, Err(Errno::EINVAL));
}

#[test]
fn leader_thread_exit_keeps_process_alive_and_the_last_threads_code_is_the_status() {
    // Linux 6.18 (conformance scenario life-leader-thread-exit-status-is-leader-code and
    // a C check): leader exit(3), then the last thread exit(9): the parent sees 9.
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let t = k.spawn_thread(p).unwrap();
    k.exit_thread(p, 3).unwrap();
    assert!(k.thread_group(p).unwrap().is_alive());
    k.exit_thread(t, 9).unwrap();
    let w = ready(k.wait4(Kernel::INIT, p, 0)).unwrap();
    assert_eq!(status::exit_status(w.wait_status), 9);
}

#[test]
fn orphans_go_to_the_nearest_subreaper_else_init_with_exit_signal_sigchld() {
    let mut k = Kernel::new();
    let sub = k.fork(Kernel::INIT).unwrap();
    k.set_child_subreaper(sub, true).unwrap();
    let mid = k.fork(sub).unwrap();
    let leaf = k
        .clone_task(
            mid,
            CloneArgs {
                exit_signal: Some(Signal::SIGUSR1),
                ..CloneArgs::FORK
            },
        )
        .unwrap();
    k.exit_group(mid, 0).unwrap();
    let g = k.thread_group(leaf).unwrap();
    assert_eq!(
        (g.parent, g.exit_signal),
        (Some(sub), Some(Signal::SIGCHLD))
    );
    let other = k.fork(Kernel::INIT).unwrap();
    let leaf2 = k.fork(other).unwrap();
    k.exit_group(other, 0).unwrap();
    assert_eq!(k.thread_group(leaf2).unwrap().parent, Some(Kernel::INIT));
}

#[test]
fn zombie_child_of_a_dying_parent_is_reported_to_init() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let c = k.fork(p).unwrap();
    k.exit_group(c, 4).unwrap();
    k.exit_group(p, 0).unwrap();
    let mut got = vec![];
    while let Ok(Blocking::Ready(Some(w))) = k.wait4(Kernel::INIT, -1, WNOHANG) {
        got.push(w.pid);
    }
    got.sort();
    assert_eq!(got, vec![p, c]);
}

#[test]
fn parent_exec_turns_a_custom_exit_signal_into_sigchld() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    k.set_handler(p, Signal::SIGUSR1, Handler::Catch, 0)
        .unwrap();
    let c = k
        .clone_task(
            p,
            CloneArgs {
                exit_signal: Some(Signal::SIGUSR1),
                ..CloneArgs::FORK
            },
        )
        .unwrap();
    k.execve(p).unwrap();
    k.set_handler(p, Signal::SIGCHLD, Handler::Catch, 0)
        .unwrap();
    k.take_events();
    k.exit_group(c, 0).unwrap();
    assert_eq!(delivered(&mut k, p), vec![Signal::SIGCHLD]);
}

#[test]
fn process_group_lives_while_a_zombie_member_remains() {
    let mut k = Kernel::new();
    let p = k.fork(Kernel::INIT).unwrap();
    let leader = k.fork(p).unwrap();
    k.setpgid(p, leader, leader).unwrap();
    k.exit_group(leader, 0).unwrap();
    let other = k.fork(p).unwrap();
    assert_eq!(
        k.setpgid(p, other, leader),
        Ok(()),
        "zombie keeps the group"
    );
    k.exit_group(other, 0).unwrap();
    ready(k.wait4(p, -1, 0));
    ready(k.wait4(p, -1, 0));
    assert!(k.process_group(leader).is_none());
    assert_eq!(k.getpgid(p, leader), Err(Errno::ESRCH));
}

// ---- controlling terminal ---------------------------------------------------------

#[test]
fn ctty_acquired_only_by_a_session_leader_without_one_and_not_with_noctty() {
    let mut k = Kernel::new();
    let tty = k.create_pty();
    let p = k.fork(Kernel::INIT).unwrap();
    k.setsid(p).unwrap();
    k.open_tty(p, tty, OpenFlags::RDWR_NOCTTY).unwrap();
    assert_eq!(k.thread_group(p).unwrap().tty, None);
    k.open_tty(p, tty, OpenFlags::WRONLY).unwrap();
    assert_eq!(k.thread_group(p).unwrap().tty, None, "write-only open");
    let c = k.fork(p).unwrap();
    k.open_tty(c, tty, OpenFlags::RDWR).unwrap();
    assert_eq!(k.thread_group(c).unwrap().tty, None, "not a session leader");
    k.open_tty(p, tty, OpenFlags::RDWR).unwrap();
    assert_eq!(k.thread_group(p).unwrap().tty, Some(tty));
    // Pre-existing members do not get it; later children do.
    assert_eq!(k.thread_group(c).unwrap().tty, None);
    let d = k.fork(p).unwrap();
    assert_eq!(k.thread_group(d).unwrap().tty, Some(tty));
    assert_eq!(
        k.open_controlling_tty(c, OpenFlags::RDWR),
        Err(Errno::ENXIO)
    );
    assert!(k.open_controlling_tty(d, OpenFlags::RDWR).is_ok());
}

#[test]
fn tiocsctty_rules_and_steal() {
    let mut k = Kernel::new();
    let tty = k.create_pty();
    let a = k.fork(Kernel::INIT).unwrap();
    k.setsid(a).unwrap();
    let fd = k.open_tty(a, tty, OpenFlags::RDWR).unwrap();
    assert_eq!(k.ioctl_tiocsctty(a, fd, false), Ok(()), "already ours");
    let b = k.fork(Kernel::INIT).unwrap();
    let bfd = k.open_tty(b, tty, OpenFlags::RDWR).unwrap();
    assert_eq!(
        k.ioctl_tiocsctty(b, bfd, false),
        Err(Errno::EPERM),
        "not a leader"
    );
    k.setsid(b).unwrap();
    assert_eq!(
        k.ioctl_tiocsctty(b, bfd, false),
        Err(Errno::EPERM),
        "another session's"
    );
    k.set_privileged(b, false).unwrap();
    assert_eq!(
        k.ioctl_tiocsctty(b, bfd, true),
        Err(Errno::EPERM),
        "steal needs privilege"
    );
    k.set_privileged(b, true).unwrap();
    assert_eq!(k.ioctl_tiocsctty(b, bfd, true), Ok(()));
    assert_eq!(k.thread_group(a).unwrap().tty, None);
    assert_eq!(k.tty(tty).unwrap().session, Some(b));
}

#[test]
fn tiocnotty_by_leader_hangs_up_foreground_and_session() {
    let mut k = Kernel::new();
    let tty = k.create_pty();
    let s = k.fork(Kernel::INIT).unwrap();
    k.setsid(s).unwrap();
    let fd = k.open_tty(s, tty, OpenFlags::RDWR).unwrap();
    let j = k.fork(s).unwrap();
    k.setpgid(s, j, j).unwrap();
    k.tcsetpgrp(s, fd, j).unwrap();
    k.set_handler(j, Signal::SIGHUP, Handler::Catch, 0).unwrap();
    assert_eq!(
        k.ioctl_tiocnotty(j, 0),
        Ok(()),
        "a member drops only its own"
    );
    assert_eq!(k.thread_group(s).unwrap().tty, Some(tty));
    k.take_events();
    k.ioctl_tiocnotty(s, fd).unwrap();
    let ev = k.take_events();
    let sigs: Vec<(Signal, SiCode)> = ev
        .iter()
        .filter_map(|e| match e {
            Event::SignalGenerated {
                target: SignalTarget::Process(p),
                sig,
                code,
                ..
            } if *p == j => Some((*sig, *code)),
            _ => None,
        })
        .collect();
    assert_eq!(
        sigs,
        vec![
            (Signal::SIGHUP, SiCode::User),
            (Signal::SIGCONT, SiCode::User)
        ]
    );
    assert_eq!(k.tty(tty).unwrap().session, None);
    assert_eq!(k.ioctl_tiocnotty(s, fd), Err(Errno::ENOTTY));
}

#[test]
fn tcsetpgrp_errors() {
    let mut k = Kernel::new();
    let tty = k.create_pty();
    let s = k.fork(Kernel::INIT).unwrap();
    k.setsid(s).unwrap();
    let fd = k.open_tty(s, tty, OpenFlags::RDWR).unwrap();
    assert_eq!(k.tcsetpgrp(s, fd, -1), Err(Errno::EINVAL));
    assert_eq!(k.tcsetpgrp(s, fd, 9999), Err(Errno::ESRCH));
    assert_eq!(
        k.tcsetpgrp(s, fd, Kernel::INIT),
        Err(Errno::EPERM),
        "other session"
    );
    let c = k.fork(s).unwrap();
    assert_eq!(
        k.tcsetpgrp(s, fd, c),
        Ok(()),
        "a PID of the session (not a group) works"
    );
    assert_eq!(k.tcgetpgrp(s, fd), Ok(c));
    let outsider = k.fork(Kernel::INIT).unwrap();
    let ofd = k.open_tty(outsider, tty, OpenFlags::RDWR_NOCTTY).unwrap();
    assert_eq!(k.tcsetpgrp(outsider, ofd, outsider), Err(Errno::ENOTTY));
    assert_eq!(k.tcgetpgrp(outsider, ofd), Err(Errno::ENOTTY));
    assert_eq!(k.tcgetsid(outsider, ofd), Err(Errno::ENOTTY));
    assert_eq!(k.tcgetsid(s, fd), Ok(s));
    // A reader from another session is not subject to job control.
    assert!(matches!(
        k.read(outsider, ofd, 1),
        Ok(Blocking::WouldBlock(_))
    ));
}

#[test]
fn nonblocking_read_with_nothing_typed_is_eagain() {
    let mut k = Kernel::new();
    let tty = k.create_pty();
    let s = k.fork(Kernel::INIT).unwrap();
    k.setsid(s).unwrap();
    let fd = k.open_tty(s, tty, OpenFlags::RDWR.with_nonblock()).unwrap();
    assert_eq!(k.read(s, fd, 1), Err(Errno::EAGAIN));
}

#[test]
fn descriptors_share_one_terminal_through_dup_and_fork() {
    let mut k = Kernel::new();
    let tty = k.create_pty();
    let s = k.fork(Kernel::INIT).unwrap();
    k.setsid(s).unwrap();
    // Like a shell, survive the hangup's SIGHUP.
    k.set_handler(s, Signal::SIGHUP, Handler::Catch, 0).unwrap();
    assert_eq!(k.open_tty(s, tty, OpenFlags::RDWR), Ok(0));
    assert_eq!(k.dup(s, 0), Ok(1));
    assert_eq!(k.dup2(s, 0, 2), Ok(2));
    let c = k.fork(s).unwrap();
    k.close(s, 0).unwrap();
    assert_eq!(k.write(c, 2, b"x"), Ok(Blocking::Ready(1)));
    assert_eq!(k.fd_tty(s, 1), Ok(tty));
    assert_eq!(k.close(s, 0), Err(Errno::EBADF));
    // Hangup reaches every description open at the time.
    k.master_close(tty).unwrap();
    assert_eq!(k.write(c, 0, b"x"), Err(Errno::EIO));
    assert_eq!(k.write(s, 1, b"x"), Err(Errno::EIO));
}

// ---- delivery modes ----------------------------------------------------------------

#[test]
fn delivery_modes() {
    let mut k = Kernel::new();
    let tty = k.create_pty();
    let s = k.fork(Kernel::INIT).unwrap();
    k.setsid(s).unwrap();
    k.open_tty(s, tty, OpenFlags::RDWR).unwrap();
    let j = k.fork(s).unwrap();
    k.setpgid(s, j, j).unwrap();
    k.tcsetpgrp(s, 0, j).unwrap();
    assert_eq!(
        k.deliver_signal(
            DeliveryMode::ForegroundProcessGroup {
                fallback_to_process: false
            },
            s,
            0
        ),
        Err(DeliveryError::InvalidSignal(0))
    );
    let fg = DeliveryMode::ForegroundProcessGroup {
        fallback_to_process: false,
    };
    assert_eq!(
        k.deliver_signal(fg, s, Signal::SIGWINCH.number()),
        Ok(vec![j])
    );
    assert_eq!(
        k.deliver_signal(fg, 4242, 1),
        Err(DeliveryError::NoSuchProcess(4242))
    );
    assert_eq!(
        k.deliver_signal(fg, Kernel::INIT, 1),
        Err(DeliveryError::NoTerminal(1))
    );
    let fb = DeliveryMode::ForegroundProcessGroup {
        fallback_to_process: true,
    };
    assert_eq!(
        k.deliver_signal(fb, Kernel::INIT, Signal::SIGWINCH.number()),
        Ok(vec![1])
    );
    assert_eq!(
        k.deliver_signal(DeliveryMode::AllProcesses, 0, Signal::SIGWINCH.number()),
        Ok(vec![Kernel::INIT, s, j])
    );
    k.ioctl_tiocnotty(s, 0).unwrap();
    // s is still alive but has no terminal now.
    assert_eq!(
        k.deliver_signal(fg, s, 1),
        Err(DeliveryError::NoTerminal(s))
    );
}
