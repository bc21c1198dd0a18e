//! Host mode: the sentry decides, the host delivers. Each test states the Linux rule
//! and checks that the sentry asks the loader to send exactly the signals Linux would
//! send for a terminal, and none that the host kernel sends by itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_sentry::*;

/// A sandbox as the loader sets it up: init (1), the program (2) a session leader whose
/// controlling terminal is the borrowed host terminal, in the foreground.
fn sandbox() -> (Kernel, TtyId) {
    let mut k = Kernel::with_config(KernelConfig {
        host_signals: true,
        ..KernelConfig::default()
    });
    let tty = k.create_host_tty("pts/7", true, Termios::default(), Winsize::default());
    k.host_adopt(HostProcess {
        pid: 2,
        parent: Some(1),
        pgid: 2,
        sid: 2,
        did_exec: true,
    })
    .unwrap();
    k.open_tty(2, tty, OpenFlags::RDWR).unwrap();
    assert_eq!(k.tty(tty).unwrap().pgrp, Some(2));
    (k, tty)
}

fn adopt(k: &mut Kernel, pid: Pid, parent: Pid) {
    let pg = k.thread_group(parent).unwrap();
    let (pgid, sid) = (pg.pgid, pg.sid);
    k.host_adopt(HostProcess {
        pid,
        parent: Some(parent),
        pgid,
        sid,
        did_exec: false,
    })
    .unwrap();
}

fn pg(pgid: Pid, sig: Signal) -> HostSignal {
    HostSignal {
        target: HostTarget::ProcessGroup(pgid),
        sig,
    }
}

/// A background job reading its controlling terminal: SIGTTIN to its process group
/// and ERESTARTSYS (n_tty `job_control`). The host must send the signal: one
/// `kill(-pgid)`; the model itself does not stop anything.
#[test]
fn background_read_asks_host_for_sigttin_to_the_group() {
    let (mut k, tty) = sandbox();
    adopt(&mut k, 10, 2);
    k.setpgid(10, 0, 0).unwrap();
    assert_eq!(k.tty_check_read(10, tty), Err(Errno::ERESTARTSYS));
    assert_eq!(k.take_host_signals(), vec![pg(10, Signal::SIGTTIN)]);
    assert!(!k.thread_group(10).unwrap().stopped);
    // The foreground reads freely.
    assert_eq!(k.tty_check_read(2, tty), Ok(()));
    assert!(k.take_host_signals().is_empty());
}

/// A background read by a thread other than its process's main thread: Linux queues
/// SIGTTIN to the group and marks the reading thread as having a signal pending, so
/// that thread takes its process's copy (a handler without SA_RESTART then makes the
/// read fail with EINTR). A host `kill(-pgid)` would let the host pick the main
/// thread: the loader is asked for a `tgkill` of the reader and a `kill` of each other
/// member instead.
#[test]
fn background_read_by_a_second_thread_directs_its_process_copy_at_that_thread() {
    let (mut k, tty) = sandbox();
    adopt(&mut k, 10, 2);
    k.setpgid(10, 0, 0).unwrap();
    adopt(&mut k, 12, 10);
    k.host_adopt_thread(10, 11).unwrap();
    assert_eq!(k.tty_check_read(11, tty), Err(Errno::ERESTARTSYS));
    let mut sent = k.take_host_signals();
    sent.sort_by_key(|s| format!("{:?}", s.target));
    assert_eq!(
        sent,
        vec![
            HostSignal {
                target: HostTarget::Process(12),
                sig: Signal::SIGTTIN
            },
            HostSignal {
                target: HostTarget::Thread(11),
                sig: Signal::SIGTTIN
            },
        ]
    );
    // The main thread reading: one kill(-pgid), as before.
    assert_eq!(k.tty_check_read(10, tty), Err(Errno::ERESTARTSYS));
    assert_eq!(k.take_host_signals(), vec![pg(10, Signal::SIGTTIN)]);
}

/// SIGTTIN ignored or blocked by the reader: EIO, no signal. The loader reports the
/// host's mask and ignored set before asking.
#[test]
fn background_read_with_sigttin_ignored_is_eio() {
    let (mut k, tty) = sandbox();
    adopt(&mut k, 10, 2);
    k.setpgid(10, 0, 0).unwrap();
    k.host_set_signal_state(10, SigSet::EMPTY, SigSet::of(&[Signal::SIGTTIN]))
        .unwrap();
    assert_eq!(k.tty_check_read(10, tty), Err(Errno::EIO));
    k.host_set_signal_state(10, SigSet::of(&[Signal::SIGTTIN]), SigSet::EMPTY)
        .unwrap();
    assert_eq!(k.tty_check_read(10, tty), Err(Errno::EIO));
    k.host_set_signal_state(10, SigSet::EMPTY, SigSet::EMPTY)
        .unwrap();
    assert_eq!(k.tty_check_read(10, tty), Err(Errno::ERESTARTSYS));
    assert_eq!(k.take_host_signals(), vec![pg(10, Signal::SIGTTIN)]);
}

/// A session leader holding a pty dies: SIGHUP to the foreground group
/// (`disassociate_ctty(1)`), through the host, because the host does not know the
/// terminal is this session's. SIGCHLD to the parent is the host's own business.
#[test]
fn session_leader_exit_hangs_up_foreground_through_host() {
    let (mut k, tty) = sandbox();
    adopt(&mut k, 10, 2);
    k.setpgid(10, 0, 0).unwrap();
    k.tiocspgrp(2, tty, 10).unwrap();
    k.host_exited(2, ExitStatus::Exited(0)).unwrap();
    assert_eq!(k.take_host_signals(), vec![pg(10, Signal::SIGHUP)]);
    assert_eq!(k.tty(tty).unwrap().session, None);
    // The job was reparented to init; once reaped on the host, the leader is gone.
    assert_eq!(k.thread_group(10).unwrap().parent, Some(1));
    k.host_reaped(2).unwrap();
    assert!(k.thread_group(2).is_none());
}

/// An exit that orphans a process group with stopped members: the host kernel sends
/// SIGHUP and SIGCONT itself (its process tree is the same), so the sentry must not
/// ask for them again.
#[test]
fn orphaned_group_signals_are_left_to_the_host() {
    let (mut k, _tty) = sandbox();
    adopt(&mut k, 10, 2);
    k.setpgid(10, 0, 0).unwrap();
    adopt(&mut k, 11, 10);
    k.host_exited(10, ExitStatus::Exited(0)).unwrap();
    assert!(k.take_host_signals().is_empty());
    assert_eq!(k.thread_group(11).unwrap().parent, Some(1));
}

/// A child adopted after it exec'd cannot have its group changed by its parent:
/// EACCES (setpgid); one that has not exec'd can.
#[test]
fn adopted_child_that_exec_d_is_eacces_for_setpgid() {
    let (mut k, _tty) = sandbox();
    k.host_adopt(HostProcess {
        pid: 20,
        parent: Some(2),
        pgid: 2,
        sid: 2,
        did_exec: true,
    })
    .unwrap();
    assert_eq!(k.setpgid(2, 20, 20), Err(Errno::EACCES));
    adopt(&mut k, 21, 2);
    assert_eq!(k.setpgid(2, 21, 21), Ok(()));
    // Adopted processes share their session's controlling terminal.
    assert!(k.thread_group(21).unwrap().tty.is_some());
    assert_eq!(
        k.host_adopt(HostProcess {
            pid: 21,
            parent: Some(2),
            pgid: 2,
            sid: 2,
            did_exec: false
        }),
        Err(Errno::EEXIST)
    );
}

/// A window-size change sends SIGWINCH to the foreground group; a change to the same
/// size sends nothing (tty_do_resize).
#[test]
fn resize_sends_sigwinch_to_foreground_via_host() {
    let (mut k, tty) = sandbox();
    let ws = Winsize {
        rows: 40,
        cols: 100,
        xpixel: 0,
        ypixel: 0,
    };
    k.tty_set_winsize(tty, ws).unwrap();
    assert_eq!(k.take_host_signals(), vec![pg(2, Signal::SIGWINCH)]);
    k.tty_set_winsize(tty, ws).unwrap();
    assert!(k.take_host_signals().is_empty());
}

/// tcsetpgrp from the background: SIGTTOU to the caller's group and ERESTARTSYS;
/// with SIGTTOU ignored it is allowed (tty_check_change).
#[test]
fn background_tcsetpgrp_stops_unless_sigttou_ignored() {
    let (mut k, tty) = sandbox();
    adopt(&mut k, 10, 2);
    k.setpgid(10, 0, 0).unwrap();
    assert_eq!(k.tiocspgrp(10, tty, 10), Err(Errno::ERESTARTSYS));
    assert_eq!(k.take_host_signals(), vec![pg(10, Signal::SIGTTOU)]);
    k.host_set_signal_state(10, SigSet::EMPTY, SigSet::of(&[Signal::SIGTTOU]))
        .unwrap();
    assert_eq!(k.tiocspgrp(10, tty, 10), Ok(()));
    assert_eq!(k.tty(tty).unwrap().pgrp, Some(10));
}

/// Signals from outside by delivery mode go to the foreground group as one group kill.
#[test]
fn outside_signal_to_foreground_group() {
    let (mut k, _tty) = sandbox();
    k.deliver_signal(
        DeliveryMode::ForegroundProcessGroup {
            fallback_to_process: false,
        },
        2,
        Signal::SIGINT.number(),
    )
    .unwrap();
    assert_eq!(k.take_host_signals(), vec![pg(2, Signal::SIGINT)]);
}

/// An acquisition the model did not see (an owned pty opened by a session leader:
/// open() is not notified): members forked before it was learnt got no terminal at
/// adoption; the host shows they hold it (Linux: forked after the open, they inherited
/// it), and `host_set_tty` records that, so that their job-control calls are checked
/// against it. Only the holding session's members can be given it.
#[test]
fn host_set_tty_gives_a_member_its_sessions_terminal_and_no_one_else() {
    let mut k = Kernel::with_config(KernelConfig {
        host_signals: true,
        ..KernelConfig::default()
    });
    let tty = k.create_host_tty("pts/0", true, Termios::default(), Winsize::default());
    k.host_adopt(HostProcess {
        pid: 3,
        parent: Some(1),
        pgid: 3,
        sid: 3,
        did_exec: true,
    })
    .unwrap();
    adopt(&mut k, 4, 3);
    k.host_adopt(HostProcess {
        pid: 5,
        parent: Some(1),
        pgid: 5,
        sid: 5,
        did_exec: true,
    })
    .unwrap();
    // The session leader's open acquires it; the member adopted earlier has none.
    k.open_tty(3, tty, OpenFlags::RDWR).unwrap();
    assert_eq!(k.thread_group(4).unwrap().tty, None);
    assert_eq!(k.tiocgpgrp(4, tty), Err(Errno::ENOTTY));
    k.host_set_tty(4, tty).unwrap();
    assert_eq!(k.tiocgpgrp(4, tty), Ok(3));
    // Another session cannot be given a terminal it does not hold.
    assert_eq!(k.host_set_tty(5, tty), Err(Errno::EINVAL));
    assert_eq!(k.thread_group(5).unwrap().tty, None);
}

/// An execve the model did not see (exec is not notified): once the host shows it,
/// the parent's setpgid on the child is EACCES (Linux: `p->did_exec`), and the child's
/// threads are left alone (the host adopts and drops them).
#[test]
fn an_exec_observed_on_the_host_makes_the_parents_setpgid_eacces() {
    let (mut k, _tty) = sandbox();
    adopt(&mut k, 10, 2);
    k.host_adopt_thread(10, 11).unwrap();
    k.host_exec_observed(10).unwrap();
    assert_eq!(k.setpgid(2, 10, 0), Err(Errno::EACCES));
    assert!(k.task(11).is_some(), "threads are the host's business");
    // The child itself still can.
    assert_eq!(k.setpgid(10, 0, 0), Ok(()));
}
