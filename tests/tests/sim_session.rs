//! Whole sessions: a simulated bash (`sandbox_tests::Shell`) on the sentry, each test
//! checking the exact sequence of signals, stops and wait results Linux produces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_sentry::wait::{WNOHANG, WUNTRACED};
use sandbox_sentry::{
    termios, Blocking, Disposition, Errno, Event, ExitStatus, Kernel, Pid, SetTermiosAction,
    SiCode, Signal, SignalTarget,
};
use sandbox_tests::{JobState, Shell};

/// Signals generated in `events`, as (target process, signal), whether queued or
/// discarded at generation (a SIG_DFL SIGCONT is discarded once it has continued its
/// target; a SIG_DFL SIGWINCH is discarded).
fn generated(events: &[Event]) -> Vec<(Pid, Signal)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SignalGenerated {
                target: SignalTarget::Process(p),
                sig,
                ..
            } => Some((*p, *sig)),
            _ => None,
        })
        .collect()
}

#[test]
fn sleep_then_ctrl_c_kills_job_and_returns_to_prompt_with_130() {
    let mut sh = Shell::start().unwrap();
    let j = sh.run(1, true).unwrap();
    let job = sh.job(j).unwrap().pgid;
    assert_eq!(sh.foreground(), Some(job));
    // The shell waits: nothing yet.
    assert_eq!(sh.wait(j, false).unwrap(), JobState::Running);
    sh.k.take_events();
    sh.type_keys(b"\x03").unwrap();
    let ev = sh.k.take_events();
    // SIGINT from the terminal (SI_KERNEL) to the job only, then its death and the
    // shell's SIGCHLD.
    assert!(ev.contains(&Event::SignalGenerated {
        target: SignalTarget::Process(job),
        sig: Signal::SIGINT,
        code: SiCode::Kernel,
        queued: true
    }));
    assert_eq!(
        generated(&ev),
        vec![(job, Signal::SIGINT), (sh.pid, Signal::SIGCHLD)]
    );
    assert!(ev.contains(&Event::Exited {
        pid: job,
        status: ExitStatus::Signaled {
            sig: Signal::SIGINT,
            core: false
        }
    }));
    assert_eq!(sh.wait(j, false).unwrap(), JobState::Done(130));
    assert_eq!(
        sh.foreground(),
        Some(sh.pid),
        "the shell has the terminal back"
    );
    assert!(sh.k.thread_group(job).is_none(), "reaped");
}

#[test]
fn ctrl_backslash_kills_with_sigquit_and_131() {
    let mut sh = Shell::start().unwrap();
    let j = sh.run(1, true).unwrap();
    sh.type_keys(b"\x1c").unwrap();
    assert_eq!(sh.wait(j, false).unwrap(), JobState::Done(131));
}

#[test]
fn ctrl_z_jobs_fg_bg() {
    let mut sh = Shell::start().unwrap();
    let j = sh.run(1, true).unwrap();
    let job = sh.job(j).unwrap().pgid;
    sh.type_keys(b"\x1a").unwrap();
    assert_eq!(
        sh.wait(j, false).unwrap(),
        JobState::Stopped(Signal::SIGTSTP)
    );
    assert_eq!(sh.jobs(), vec![JobState::Stopped(Signal::SIGTSTP)]);
    assert_eq!(sh.foreground(), Some(sh.pid));
    assert!(sh.k.thread_group(job).unwrap().stopped);

    // fg: the terminal goes to the job, which continues.
    sh.k.take_events();
    sh.fg(j).unwrap();
    let ev = sh.k.take_events();
    assert!(ev.contains(&Event::ForegroundChanged {
        tty: sh.tty,
        pgrp: Some(job)
    }));
    assert!(ev.contains(&Event::Continued { pid: job }));
    assert!(!sh.k.thread_group(job).unwrap().stopped);
    assert_eq!(sh.wait(j, false).unwrap(), JobState::Running);

    // ^Z again, then bg: running, but the shell keeps the terminal.
    sh.type_keys(b"\x1a").unwrap();
    assert_eq!(
        sh.wait(j, false).unwrap(),
        JobState::Stopped(Signal::SIGTSTP)
    );
    sh.bg(j).unwrap();
    assert!(!sh.k.thread_group(job).unwrap().stopped);
    assert_eq!(sh.foreground(), Some(sh.pid));
    assert_eq!(sh.jobs(), vec![JobState::Running]);
    // ^C now goes to the shell's group, not to the background job.
    sh.k.take_events();
    sh.type_keys(b"\x03").unwrap();
    assert_eq!(
        generated(&sh.k.take_events()),
        vec![(sh.pid, Signal::SIGINT)]
    );
    assert!(sh.k.thread_group(job).unwrap().is_alive());
    // `kill %1`.
    sh.k.kill(sh.pid, -job, Signal::SIGTERM.number()).unwrap();
    assert_eq!(sh.wait(j, false).unwrap(), JobState::Done(128 + 15));
}

#[test]
fn cat_in_background_stops_on_tty_input_then_fg_reads_typed_line() {
    let mut sh = Shell::start().unwrap();
    let j = sh.run(1, false).unwrap();
    let cat = sh.job(j).unwrap().procs[0];
    // cat reads its terminal from the background: SIGTTIN to its group, and the
    // read is to be restarted.
    assert_eq!(sh.k.read(cat, 0, 100), Err(Errno::ERESTARTSYS));
    assert_eq!(
        sh.wait(j, true).unwrap(),
        JobState::Stopped(Signal::SIGTTIN),
        "[1]+ Stopped (tty input)"
    );
    // fg: after SIGCONT the read restarts in the foreground and waits for a line.
    sh.fg(j).unwrap();
    assert_eq!(
        sh.k.read(cat, 0, 100),
        Ok(Blocking::WouldBlock(sandbox_sentry::BlockOn::TtyRead(
            sh.tty
        )))
    );
    sh.k.take_events();
    sh.type_keys(b"hello\r").unwrap();
    assert!(sh.k.take_events().contains(&Event::Wakeup {
        tid: cat,
        on: sandbox_sentry::BlockOn::TtyRead(sh.tty)
    }));
    assert_eq!(
        sh.k.read(cat, 0, 100),
        Ok(Blocking::Ready(b"hello\n".to_vec()))
    );
    assert_eq!(sh.k.master_read(sh.tty).unwrap(), b"hello\r\n", "echoed");
    // ^D: cat reads end of file and exits 0.
    sh.type_keys(b"\x04").unwrap();
    assert_eq!(sh.k.read(cat, 0, 100), Ok(Blocking::Ready(vec![])));
    sh.k.exit_group(cat, 0).unwrap();
    assert_eq!(sh.wait(j, false).unwrap(), JobState::Done(0));
}

#[test]
fn stty_tostop_makes_background_write_stop_with_sigttou() {
    let mut sh = Shell::start().unwrap();
    let j = sh.run(1, false).unwrap();
    let echo = sh.job(j).unwrap().procs[0];
    // Without tostop a background job writes.
    assert_eq!(sh.k.write(echo, 0, b"hi\n"), Ok(Blocking::Ready(3)));
    assert_eq!(sh.k.master_read(sh.tty).unwrap(), b"hi\r\n");
    // `stty tostop` by the shell (foreground: allowed).
    let mut t = sh.k.tcgetattr(sh.pid, sh.fd).unwrap();
    t.lflag |= termios::TOSTOP;
    sh.k.tcsetattr(sh.pid, sh.fd, SetTermiosAction::Drain, t)
        .unwrap();
    assert_eq!(sh.k.write(echo, 0, b"hi\n"), Err(Errno::ERESTARTSYS));
    assert_eq!(
        sh.wait(j, true).unwrap(),
        JobState::Stopped(Signal::SIGTTOU),
        "[1]+ Stopped (tty output)"
    );
    assert!(
        sh.k.master_read(sh.tty).unwrap().is_empty(),
        "nothing was written"
    );
    // fg: the write restarts in the foreground and goes through.
    sh.fg(j).unwrap();
    assert_eq!(sh.k.write(echo, 0, b"hi\n"), Ok(Blocking::Ready(3)));
}

#[test]
fn pipeline_stops_and_resumes_as_one_job() {
    let mut sh = Shell::start().unwrap();
    let j = sh.run(2, true).unwrap(); // sleep 100 | cat
    let (pgid, procs) = {
        let job = sh.job(j).unwrap();
        (job.pgid, job.procs.clone())
    };
    assert_eq!(sh.k.getpgid(sh.pid, procs[1]), Ok(pgid));
    sh.k.take_events();
    sh.type_keys(b"\x1a").unwrap();
    let ev = sh.k.take_events();
    for &p in &procs {
        assert!(ev.contains(&Event::Stopped {
            pid: p,
            sig: Signal::SIGTSTP
        }));
    }
    // The shell gets one report per process; the job is stopped after both.
    let mut reports = Vec::new();
    while let Ok(Blocking::Ready(Some(w))) = sh.k.wait4(sh.pid, -pgid, WUNTRACED | WNOHANG) {
        reports.push(w.pid);
    }
    assert_eq!(reports, procs);
    // Replay through the shell's bookkeeping from the same state.
    let mut sh2 = Shell::start().unwrap();
    let j2 = sh2.run(2, true).unwrap();
    sh2.type_keys(b"\x1a").unwrap();
    assert_eq!(
        sh2.wait(j2, false).unwrap(),
        JobState::Stopped(Signal::SIGTSTP)
    );
    sh2.k.take_events();
    sh2.fg(j2).unwrap();
    let ev = sh2.k.take_events();
    let continued: Vec<Pid> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Continued { pid } => Some(*pid),
            _ => None,
        })
        .collect();
    assert_eq!(
        continued,
        sh2.job(j2).unwrap().procs,
        "one SIGCONT resumes both"
    );
    sh2.type_keys(b"\x03").unwrap();
    assert_eq!(sh2.wait(j2, false).unwrap(), JobState::Done(130));
}

#[test]
fn nested_shell_runs_its_own_job_and_hands_the_terminal_back() {
    let mut outer = Shell::start().unwrap();
    let j = outer.run(1, true).unwrap(); // `bash`
    let inner_pid = outer.job(j).unwrap().procs[0];
    let k = std::mem::replace(&mut outer.k, Kernel::new());
    let mut inner = Shell::nested(k, outer.tty, inner_pid, outer.fd).unwrap();
    // The inner shell is in the foreground group; its job takes the terminal.
    let ij = inner.run(1, true).unwrap();
    let inner_job = inner.job(ij).unwrap().pgid;
    assert_eq!(inner.foreground(), Some(inner_job));
    inner.type_keys(b"\x1a").unwrap();
    assert_eq!(
        inner.wait(ij, false).unwrap(),
        JobState::Stopped(Signal::SIGTSTP)
    );
    assert_eq!(
        inner.foreground(),
        Some(inner_pid),
        "inner shell took it back"
    );
    // The inner shell exits with its job stopped: the job's group is orphaned with a
    // stopped member, so it gets SIGHUP then SIGCONT and dies of the SIGHUP.
    inner.k.take_events();
    inner.k.exit_group(inner_pid, 0).unwrap();
    let ev = inner.k.take_events();
    let to_job: Vec<Signal> = generated(&ev)
        .into_iter()
        .filter(|(p, _)| *p == inner_job)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(to_job, vec![Signal::SIGHUP, Signal::SIGCONT]);
    assert_eq!(
        inner.k.thread_group(inner_job).unwrap().zombie,
        Some(ExitStatus::Signaled {
            sig: Signal::SIGHUP,
            core: false
        })
    );
    // Back in the outer shell: its job (the inner shell) is done; it takes the
    // terminal back.
    outer.k = inner.k;
    assert_eq!(outer.wait(j, false).unwrap(), JobState::Done(0));
    assert_eq!(outer.foreground(), Some(outer.pid));
    // The orphan was reparented to init, which can reap it.
    let w = outer.k.wait4(Kernel::INIT, inner_job, 0).unwrap();
    assert!(matches!(w, Blocking::Ready(Some(_))));
}

#[test]
fn session_leader_exit_with_stopped_job_hangs_it_up() {
    let mut sh = Shell::start().unwrap();
    let j = sh.run(1, true).unwrap();
    let job = sh.job(j).unwrap().pgid;
    sh.type_keys(b"\x1a").unwrap();
    assert_eq!(
        sh.wait(j, false).unwrap(),
        JobState::Stopped(Signal::SIGTSTP)
    );
    sh.k.take_events();
    sh.k.exit_group(sh.pid, 0).unwrap();
    let ev = sh.k.take_events();
    // The terminal's foreground group was the shell's own (dying) group; the stopped
    // job's group is orphaned: SIGHUP then SIGCONT, and SIGHUP kills it.
    let to_job: Vec<Signal> = generated(&ev)
        .into_iter()
        .filter(|(p, _)| *p == job)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(to_job, vec![Signal::SIGHUP, Signal::SIGCONT]);
    assert!(ev.contains(&Event::SignalDelivered {
        tid: job,
        sig: Signal::SIGHUP,
        disposition: Disposition::Terminate
    }));
    let t = sh.k.tty(sh.tty).unwrap();
    assert_eq!((t.session, t.pgrp), (None, None), "terminal disassociated");
    assert_eq!(sh.k.thread_group(job).unwrap().parent, Some(Kernel::INIT));
}

#[test]
fn session_leader_exit_with_running_foreground_job_sends_it_sighup() {
    let mut sh = Shell::start().unwrap();
    let j = sh.run(1, true).unwrap();
    let job = sh.job(j).unwrap().pgid;
    sh.k.take_events();
    sh.k.exit_group(sh.pid, 0).unwrap();
    // A pty: SIGHUP to the foreground group (no SIGCONT; checked on Linux 6.18).
    let to_job: Vec<Signal> = generated(&sh.k.take_events())
        .into_iter()
        .filter(|(p, _)| *p == job)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(to_job, vec![Signal::SIGHUP]);
}

#[test]
fn window_resize_sends_sigwinch_to_foreground_job_only() {
    let mut sh = Shell::start().unwrap();
    let j = sh.run(1, true).unwrap();
    let job = sh.job(j).unwrap().pgid;
    sh.k.take_events();
    let ws = sandbox_sentry::Winsize {
        rows: 40,
        cols: 100,
        xpixel: 0,
        ypixel: 0,
    };
    sh.k.master_set_winsize(sh.tty, ws).unwrap();
    assert_eq!(
        generated(&sh.k.take_events()),
        vec![(job, Signal::SIGWINCH)]
    );
    assert_eq!(sh.k.window_size(job, 0), Ok(ws), "`stty size` follows");
    // The same size again: no signal.
    sh.k.master_set_winsize(sh.tty, ws).unwrap();
    assert!(generated(&sh.k.take_events()).is_empty());
}
