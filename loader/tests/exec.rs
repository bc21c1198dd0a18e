//! Processes executed into a running sandbox through the library.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_loader::{ExecEvent, ExecSpec, ExecTerminal, Sandbox, SandboxSpec};
use sandbox_tests::console::PtyReader;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::time::Duration;

fn pipe() -> (std::fs::File, OwnedFd) {
    let (r, w) = nix::unistd::pipe().unwrap();
    (std::fs::File::from(r), w)
}

fn null() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

#[test]
fn exec_with_stdio_runs_inside_and_is_waited_for_once() {
    if !sandbox_tests::require_root() {
        return;
    }
    let mut spec = SandboxSpec::new(vec!["sleep".into(), "100".into()]);
    spec.hostname = Some("inside".into());
    let sandbox = Sandbox::start(spec).unwrap();
    let program = sandbox.program_pid().unwrap();
    assert_eq!(program, 2);
    let (mut out, w) = pipe();
    let err = w.try_clone().unwrap();
    let mut e = ExecSpec::new(
        vec![
            "sh".into(),
            "-c".into(),
            "echo $(hostname) $$ $PPID $(ps -o sid= -p $$); exit 7".into(),
        ],
        ExecTerminal::Stdio([null(), w, err]),
    );
    e.cwd = Some("/tmp".into());
    let h = sandbox.exec(e).unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    let words: Vec<&str> = text.split_whitespace().collect();
    // In the sandbox's UTS and PID namespaces, PPID 0 (its parent is outside), its
    // own session.
    assert_eq!(
        words,
        ["inside", &h.pid().to_string(), "0", &h.pid().to_string()]
    );
    assert_eq!(sandbox.wait_pid(h.pid()).unwrap(), 7 << 8);
    assert!(matches!(
        sandbox.wait_pid(h.pid()),
        Err(sandbox_loader::LoaderError::PidAlreadyWaited(_))
    ));
    assert_eq!(
        h.events().recv_timeout(Duration::from_secs(10)).unwrap(),
        ExecEvent::Exited {
            wait_status: 7 << 8
        }
    );
    // A program that does not exist: 127 as for run.
    let missing = sandbox.exec(ExecSpec::new(
        vec!["no-such-program-here".into()],
        ExecTerminal::Stdio([null(), null(), null()]),
    ));
    match missing {
        Err(e) => assert_eq!(e.exit_code(), 127, "{e}"),
        Ok(_) => panic!("a missing program was executed"),
    }
    // Its stops and continuations are events of its handle.
    let (input, mut feed) = nix::unistd::pipe().unwrap();
    let h = sandbox
        .exec(ExecSpec::new(
            vec![
                "sh".into(),
                "-c".into(),
                "kill -STOP $$; read x; exit 5".into(),
            ],
            ExecTerminal::Stdio([input, null(), null()]),
        ))
        .unwrap();
    let next = || h.events().recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(next(), ExecEvent::Stopped { sig: libc::SIGSTOP });
    sandbox
        .kill(
            Some(h.pid()),
            sandbox_loader::SignalMode::Process,
            libc::SIGCONT,
        )
        .unwrap();
    // It waits for a line: the continuation is reported before its end.
    assert_eq!(next(), ExecEvent::Continued);
    std::io::Write::write_all(
        &mut std::fs::File::from(std::mem::replace(&mut feed, null())),
        b"go\n",
    )
    .unwrap();
    assert_eq!(
        next(),
        ExecEvent::Exited {
            wait_status: 5 << 8
        }
    );
    assert_eq!(sandbox.wait_pid(h.pid()).unwrap(), 5 << 8);
    // Signals to a process that is gone are errors.
    assert!(sandbox
        .kill(
            Some(h.pid()),
            sandbox_loader::SignalMode::Process,
            libc::SIGTERM
        )
        .is_err());
    // The first program is unaffected.
    let ps = sandbox.processes().unwrap();
    assert!(
        ps.iter().any(|p| p.pid == 2 && p.command == "sleep 100"),
        "{ps:?}"
    );
    sandbox.destroy().unwrap();
    let out = sandbox.wait().unwrap();
    assert!(
        out.lockstep_violations.is_empty(),
        "{:?}",
        out.lockstep_violations
    );
}

fn shell_env() -> Vec<String> {
    vec![
        format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
        "PS1=PROMPT$ ".into(),
        "TERM=dumb".into(),
        "HOME=/tmp".into(),
    ]
}

fn bash() -> Vec<String> {
    ["bash", "--norc", "--noprofile", "-i"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Waits (10 s at most) until the sandbox's process table satisfies `cond`.
fn wait_processes(
    s: &Sandbox,
    what: &str,
    cond: impl Fn(&[sandbox_loader::ProcessInfo]) -> bool,
) -> Vec<sandbox_loader::ProcessInfo> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ps = s.processes().unwrap();
        if cond(&ps) {
            return ps;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within 10 s: {ps:#?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn find<'a>(
    ps: &'a [sandbox_loader::ProcessInfo],
    command: &str,
) -> Option<&'a sandbox_loader::ProcessInfo> {
    ps.iter().find(|p| p.command == command && p.state != 'Z')
}

/// An exec'd `bash -i` on a pty of its own: ^C and ^Z typed on that pty reach the job
/// in its foreground, `fg` resumes it, the first program never notices, and a signal by
/// foreground delivery mode to the shell reaches its foreground job only.
#[test]
fn exec_bash_on_its_own_pty_has_job_control() {
    if !sandbox_tests::require_root() {
        return;
    }
    let sandbox = Sandbox::start(SandboxSpec::new(vec!["sleep".into(), "1000".into()])).unwrap();
    sandbox.program_pid().unwrap();
    let mut e = ExecSpec::new(
        bash(),
        ExecTerminal::Pty {
            console_socket: None,
            winsize: Some((30, 100)),
        },
    );
    e.env = shell_env();
    let h = sandbox.exec(e).unwrap();
    let master = h.pty_master().expect("the pty's master");
    assert!(h.pty_master().is_none(), "the master is handed out once");
    let mut term = PtyReader::new(master);
    term.next("PROMPT$ ");
    let ps = sandbox.processes().unwrap();
    let shell = ps.iter().find(|p| p.pid == h.pid()).unwrap();
    assert_eq!((shell.ppid, shell.sid), (0, h.pid()), "{ps:#?}");
    assert_eq!(shell.tty.as_deref(), Some("pts/0"));

    // ^C to a foreground job.
    term.send("sleep 500\n");
    let ps = wait_processes(&sandbox, "sleep 500 in the foreground", |ps| {
        find(ps, "sleep 500").is_some_and(|p| p.foreground && p.pgid != h.pid())
    });
    let job = find(&ps, "sleep 500").unwrap().pid;
    term.send("\x03");
    term.next("PROMPT$ ");
    wait_processes(&sandbox, "sleep 500 gone", |ps| {
        ps.iter().all(|p| p.pid != job || p.state == 'Z')
    });

    // ^Z stops the job, fg resumes it in the foreground, ^C ends it.
    term.send("sleep 501\n");
    wait_processes(&sandbox, "sleep 501 in the foreground", |ps| {
        find(ps, "sleep 501").is_some_and(|p| p.foreground)
    });
    term.send("\x1a");
    term.next("Stopped");
    wait_processes(&sandbox, "sleep 501 stopped", |ps| {
        find(ps, "sleep 501").is_some_and(|p| p.state == 'T' && !p.foreground)
    });
    term.send("fg\n");
    wait_processes(&sandbox, "sleep 501 running in the foreground", |ps| {
        find(ps, "sleep 501").is_some_and(|p| p.state != 'T' && p.foreground)
    });
    // The library's foreground delivery mode, as `sandbox kill --mode foreground`.
    sandbox
        .kill(
            Some(h.pid()),
            sandbox_loader::SignalMode::Foreground,
            libc::SIGINT,
        )
        .unwrap();
    term.next("PROMPT$ ");
    let ps = wait_processes(&sandbox, "sleep 501 gone", |ps| {
        find(ps, "sleep 501").is_none()
    });
    // Neither the shell nor the first program got anything.
    assert!(
        ps.iter().any(|p| p.pid == h.pid() && p.state != 'Z'),
        "{ps:#?}"
    );
    assert!(
        find(&ps, "sleep 1000").is_some_and(|p| p.pid == 2),
        "{ps:#?}"
    );

    term.send("exit 4\n");
    assert_eq!(sandbox.wait_pid(h.pid()).unwrap(), 4 << 8);
    sandbox.destroy().unwrap();
    let out = sandbox.wait().unwrap();
    assert!(
        out.lockstep_violations.is_empty(),
        "{:?}",
        out.lockstep_violations
    );
}

/// Two exec'd shells on two ptys at once: a signal by foreground delivery mode to one
/// reaches that shell's foreground job and nothing else; ^C typed on one pty never
/// reaches the other shell's job or the first program.
#[test]
fn two_exec_shells_never_signal_each_other() {
    if !sandbox_tests::require_root() {
        return;
    }
    let sandbox = Sandbox::start(SandboxSpec::new(vec!["sleep".into(), "1000".into()])).unwrap();
    sandbox.program_pid().unwrap();
    let start = |rows| {
        let mut e = ExecSpec::new(
            bash(),
            ExecTerminal::Pty {
                console_socket: None,
                winsize: Some((rows, 80)),
            },
        );
        e.env = shell_env();
        let h = sandbox.exec(e).unwrap();
        let mut t = PtyReader::new(h.pty_master().unwrap());
        t.next("PROMPT$ ");
        (h, t)
    };
    let (a, mut ta) = start(20);
    let (b, mut tb) = start(21);
    let ps = sandbox.processes().unwrap();
    let tty = |pid| ps.iter().find(|p| p.pid == pid).unwrap().tty.clone();
    assert_ne!(
        tty(a.pid()),
        tty(b.pid()),
        "each shell has its own terminal"
    );
    ta.send("sleep 601\n");
    tb.send("sleep 602\n");
    wait_processes(&sandbox, "both jobs in their foregrounds", |ps| {
        find(ps, "sleep 601").is_some_and(|p| p.foreground)
            && find(ps, "sleep 602").is_some_and(|p| p.foreground)
    });
    sandbox
        .kill(
            Some(a.pid()),
            sandbox_loader::SignalMode::Foreground,
            libc::SIGTERM,
        )
        .unwrap();
    ta.next("PROMPT$ ");
    let ps = wait_processes(&sandbox, "sleep 601 gone", |ps| {
        find(ps, "sleep 601").is_none()
    });
    assert!(
        find(&ps, "sleep 602").is_some_and(|p| p.state != 'T'),
        "{ps:#?}"
    );
    // ^C typed on b's pty: b's job only.
    tb.send("\x03");
    tb.next("PROMPT$ ");
    ta.send("sleep 603\n");
    let ps = wait_processes(&sandbox, "sleep 602 gone, 603 running", |ps| {
        find(ps, "sleep 602").is_none() && find(ps, "sleep 603").is_some_and(|p| p.foreground)
    });
    assert!(find(&ps, "sleep 1000").is_some(), "{ps:#?}");
    // A resize reaches only that terminal's foreground group.
    sandbox.resize_pid(b.pid(), 33, 99).unwrap();
    tb.send("stty size\n");
    tb.next("33 99");
    ta.send("\x03");
    ta.next("PROMPT$ ");
    ta.send("stty size\n");
    ta.next("20 80");
    // Foreground mode to a process without terminal falls back to the process.
    assert!(matches!(
        sandbox.kill(
            Some(99999),
            sandbox_loader::SignalMode::Foreground,
            libc::SIGTERM
        ),
        Err(sandbox_loader::LoaderError::Signal(_))
    ));
    ta.send("exit\n");
    tb.send("exit 9\n");
    assert_eq!(sandbox.wait_pid(a.pid()).unwrap(), 0);
    assert_eq!(sandbox.wait_pid(b.pid()).unwrap(), 9 << 8);
    sandbox.destroy().unwrap();
    let out = sandbox.wait().unwrap();
    assert!(
        out.lockstep_violations.is_empty(),
        "{:?}",
        out.lockstep_violations
    );
}

/// An exec'd `bash -i` borrowing a terminal (`exec --tty`): the sentry runs its job
/// control (bash's tcsetpgrp is emulated), and signals forwarded by the exec client in
/// foreground mode (^C, ^Z it received) reach the job bash runs, which `fg` resumes.
#[test]
fn exec_bash_on_a_borrowed_terminal_has_job_control() {
    if !sandbox_tests::require_root() {
        return;
    }
    let sandbox = Sandbox::start(SandboxSpec::new(vec!["sleep".into(), "1000".into()])).unwrap();
    sandbox.program_pid().unwrap();
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut e = ExecSpec::new(bash(), ExecTerminal::Borrowed(pty.slave));
    e.env = shell_env();
    let h = sandbox.exec(e).unwrap();
    assert!(h.pty_master().is_none());
    let mut term = PtyReader::new(pty.master);
    term.next("PROMPT$ ");
    term.send("sleep 700\n");
    wait_processes(&sandbox, "sleep 700 in the sentry's foreground", |ps| {
        find(ps, "sleep 700").is_some_and(|p| p.foreground && p.pgid != h.pid())
    });
    let fg = sandbox_loader::SignalMode::Foreground;
    sandbox.kill(Some(h.pid()), fg, libc::SIGTSTP).unwrap();
    term.next("Stopped");
    wait_processes(
        &sandbox,
        "sleep 700 stopped, bash in the foreground",
        |ps| {
            find(ps, "sleep 700").is_some_and(|p| p.state == 'T' && !p.foreground)
                && ps.iter().any(|p| p.pid == h.pid() && p.foreground)
        },
    );
    term.send("fg\n");
    wait_processes(&sandbox, "sleep 700 resumed in the foreground", |ps| {
        find(ps, "sleep 700").is_some_and(|p| p.state != 'T' && p.foreground)
    });
    sandbox.kill(Some(h.pid()), fg, libc::SIGINT).unwrap();
    term.next("PROMPT$ ");
    let ps = wait_processes(&sandbox, "sleep 700 gone", |ps| {
        find(ps, "sleep 700").is_none()
    });
    assert!(
        find(&ps, "sleep 1000").is_some_and(|p| p.state != 'T'),
        "{ps:#?}"
    );
    // A background job reading the terminal stops with SIGTTIN (the sentry's rule).
    term.send("cat &\n");
    term.next("PROMPT$ ");
    wait_processes(&sandbox, "cat stopped by SIGTTIN", |ps| {
        find(ps, "cat").is_some_and(|p| p.state == 'T')
    });
    // `wait` reaps it: bash refuses to exit while it believes a job is stopped.
    term.send("kill -9 %1; wait\n");
    term.next("PROMPT$ ");
    wait_processes(&sandbox, "cat gone", |ps| find(ps, "cat").is_none());
    term.send("exit 3\n");
    assert_eq!(sandbox.wait_pid(h.pid()).unwrap(), 3 << 8);
    sandbox.destroy().unwrap();
    let out = sandbox.wait().unwrap();
    assert!(
        out.lockstep_violations.is_empty(),
        "{:?}",
        out.lockstep_violations
    );
}

/// The sentry's process table agrees with the host's /proc (sandbox PIDs, parents,
/// groups, sessions) for the first program, its children and exec'd processes.
#[test]
fn processes_agree_with_proc() {
    if !sandbox_tests::require_root() {
        return;
    }
    let sandbox = Sandbox::start(SandboxSpec::new(vec![
        "sh".into(),
        "-c".into(),
        "sleep 1001 & setsid sleep 1002 & wait".into(),
    ]))
    .unwrap();
    let h = sandbox
        .exec(ExecSpec::new(
            vec!["sh".into(), "-c".into(), "sleep 1003 & wait".into()],
            ExecTerminal::Stdio([null(), null(), null()]),
        ))
        .unwrap();
    let ps = wait_processes(&sandbox, "every sleep running", |ps| {
        ["sleep 1001", "sleep 1002", "sleep 1003"]
            .iter()
            .all(|c| find(ps, c).is_some())
    });
    // The host's view: every process in init's PID namespace.
    let init_ns = std::fs::read_link(format!("/proc/{}/ns/pid", sandbox.init_pid())).unwrap();
    let mut host = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_link(format!("/proc/{pid}/ns/pid"))
            .ok()
            .as_ref()
            != Some(&init_ns)
        {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |k: &str| -> Vec<i32> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| {
                    v.split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        let last = |k: &str| field(k).last().copied().unwrap_or(-1);
        let ppid_host = field("PPid:").first().copied().unwrap_or(0);
        let ppid = std::fs::read_to_string(format!("/proc/{ppid_host}/status"))
            .ok()
            .filter(|_| {
                std::fs::read_link(format!("/proc/{ppid_host}/ns/pid"))
                    .ok()
                    .as_ref()
                    == Some(&init_ns)
            })
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .and_then(|v| v.split_whitespace().last()?.parse().ok())
            })
            .unwrap_or(0);
        host.push((last("NSpid:"), ppid, last("NSpgid:"), last("NSsid:")));
    }
    host.sort();
    let mut sentry: Vec<_> = ps.iter().map(|p| (p.pid, p.ppid, p.pgid, p.sid)).collect();
    sentry.sort();
    assert_eq!(sentry, host);
    assert!(ps
        .iter()
        .any(|p| p.pid == h.pid() && p.ppid == 0 && p.sid == h.pid()));
    sandbox.destroy().unwrap();
    sandbox.wait().unwrap();
    // Destroyed: the exec'd process is gone too, and its status was kept.
    assert_eq!(sandbox.wait_pid(h.pid()).unwrap(), libc::SIGKILL);
}

/// Several sandboxes started at once from threads of one process (the start is sound
/// whatever the other threads do: the clone child only execs), each with an exec.
#[test]
fn concurrent_starts_from_threads() {
    if !sandbox_tests::require_root() {
        return;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A thread that allocates all the time, as an embedder's threads do.
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut v: Vec<Vec<u8>> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                v.push(vec![1; 4096]);
                if v.len() > 64 {
                    v.clear();
                }
            }
        })
    };
    let threads: Vec<_> = (0..6)
        .map(|i| {
            std::thread::spawn(move || {
                let spec = SandboxSpec::new(vec!["sleep".into(), format!("{}", 1000 + i)]);
                let sandbox = Sandbox::start(spec).unwrap();
                let (mut out, ow) = pipe();
                let h = sandbox
                    .exec(ExecSpec::new(
                        vec!["sh".into(), "-c".into(), format!("echo {i}")],
                        ExecTerminal::Stdio([null(), ow, null()]),
                    ))
                    .unwrap();
                let mut text = String::new();
                out.read_to_string(&mut text).unwrap();
                assert_eq!(text.trim(), i.to_string());
                assert_eq!(sandbox.wait_pid(h.pid()).unwrap(), 0);
                sandbox
                    .kill(None, sandbox_loader::SignalMode::Process, libc::SIGTERM)
                    .unwrap();
                sandbox.wait().unwrap().exit_code()
            })
        })
        .collect();
    let codes: Vec<i32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
    assert_eq!(codes, vec![128 + libc::SIGTERM; 6]);
}

/// A first program on a borrowed terminal (`run --tty`) and an exec'd shell on a pty of
/// its own: the two terminals, bound differently, each keep their own foreground
/// group, and a signal to one terminal's foreground never reaches the other's.
#[test]
fn borrowed_first_program_and_exec_pty_side_by_side() {
    if !sandbox_tests::require_root() {
        return;
    }
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut spec = SandboxSpec::new(bash());
    spec.env = shell_env();
    spec.terminal = Some(pty.slave);
    spec.terminal_stdio = true;
    let sandbox = Sandbox::start(spec).unwrap();
    let first = sandbox.program_pid().unwrap();
    let mut t1 = PtyReader::new(pty.master);
    t1.next("PROMPT$ ");
    let mut e = ExecSpec::new(
        bash(),
        ExecTerminal::Pty {
            console_socket: None,
            winsize: None,
        },
    );
    e.env = shell_env();
    let h = sandbox.exec(e).unwrap();
    let mut t2 = PtyReader::new(h.pty_master().unwrap());
    t2.next("PROMPT$ ");
    t1.send("sleep 801\n");
    t2.send("sleep 802\n");
    wait_processes(&sandbox, "both jobs in their foregrounds", |ps| {
        find(ps, "sleep 801").is_some_and(|p| p.foreground)
            && find(ps, "sleep 802").is_some_and(|p| p.foreground)
    });
    let fg = sandbox_loader::SignalMode::Foreground;
    sandbox.kill(None, fg, libc::SIGINT).unwrap();
    t1.next("PROMPT$ ");
    let ps = wait_processes(&sandbox, "sleep 801 gone", |ps| {
        find(ps, "sleep 801").is_none()
    });
    assert!(
        find(&ps, "sleep 802").is_some_and(|p| p.foreground),
        "{ps:#?}"
    );
    t2.send("\x03");
    t2.next("PROMPT$ ");
    let ps = wait_processes(&sandbox, "sleep 802 gone", |ps| {
        find(ps, "sleep 802").is_none()
    });
    assert!(ps.iter().any(|p| p.pid == first && p.foreground), "{ps:#?}");
    t2.send("exit 6\n");
    assert_eq!(sandbox.wait_pid(h.pid()).unwrap(), 6 << 8);
    t1.send("exit 7\n");
    let out = sandbox.wait().unwrap();
    assert_eq!(out.exit_code(), 7);
    assert!(
        out.lockstep_violations.is_empty(),
        "{:?}",
        out.lockstep_violations
    );
}

/// Without root (uid 65534 through setpriv): the exec helper joins the sandbox's user
/// namespace with the others, and the exec'd process is root there, in the sandbox's
/// PID namespace. The test binary runs itself as the unprivileged caller (a copy in a
/// directory that user can read).
#[test]
fn exec_without_root() {
    const CHILD: &str = "SANDBOX_EXEC_ROOTLESS_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let sandbox =
            Sandbox::start(SandboxSpec::new(vec!["sleep".into(), "1000".into()])).unwrap();
        let (mut out, w) = pipe();
        let h = sandbox
            .exec(ExecSpec::new(
                vec!["sh".into(), "-c".into(), "echo $(id -u) $$".into()],
                ExecTerminal::Stdio([null(), w, null()]),
            ))
            .unwrap();
        let mut text = String::new();
        out.read_to_string(&mut text).unwrap();
        assert_eq!(text.trim(), format!("0 {}", h.pid()));
        assert_eq!(sandbox.wait_pid(h.pid()).unwrap(), 0);
        sandbox.destroy().unwrap();
        sandbox.wait().unwrap();
        println!("ROOTLESS-EXEC-OK");
        return;
    }
    if !sandbox_tests::require_root() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sandbox-exec-rootless-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("exec-test");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The copy's write descriptor may live on for a moment in a child another test
    // thread forked meanwhile (until that child's exec): executing the copy then fails
    // with ETXTBSY. Retried until it is gone (a deadline, not a sleep).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let out = loop {
        let out = std::process::Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(&exe)
            .args([
                "--exact",
                "exec_without_root",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("setpriv (util-linux)");
        let busy = String::from_utf8_lossy(&out.stderr).contains("Text file busy");
        if !busy || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::yield_now();
    };
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ROOTLESS-EXEC-OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A signal to all processes (`kill --mode all`) reaches the first program's
/// processes and exec'd ones alike, init excepted.
#[test]
fn signal_to_all_reaches_exec_processes() {
    if !sandbox_tests::require_root() {
        return;
    }
    let sandbox = Sandbox::start(SandboxSpec::new(vec!["sleep".into(), "901".into()])).unwrap();
    let h = sandbox
        .exec(ExecSpec::new(
            vec![
                "sh".into(),
                "-c".into(),
                "sleep 902 & sleep 903 & wait".into(),
            ],
            ExecTerminal::Stdio([null(), null(), null()]),
        ))
        .unwrap();
    wait_processes(&sandbox, "every sleep", |ps| {
        ["sleep 901", "sleep 902", "sleep 903"]
            .iter()
            .all(|c| find(ps, c).is_some())
    });
    sandbox
        .kill(None, sandbox_loader::SignalMode::All, libc::SIGTERM)
        .unwrap();
    assert_eq!(sandbox.wait_pid(h.pid()).unwrap(), libc::SIGTERM);
    assert_eq!(sandbox.wait().unwrap().exit_code(), 128 + libc::SIGTERM);
}

/// An exec'd process is confined like the first program: the same seccomp policy and a
/// notify filter (two filters or more), `no_new_privs`, no capability at all, the
/// sandbox's cgroups and network namespace, and its helper is nowhere in the sandbox's
/// view.
#[test]
fn exec_processes_are_confined_like_the_program() {
    if !sandbox_tests::require_root() {
        return;
    }
    let sandbox = Sandbox::start(SandboxSpec::new(vec!["sleep".into(), "1000".into()])).unwrap();
    let program_host =
        sandbox_tests::console::wait_descendant(sandbox.init_pid(), &["sleep", "1000"], |_| true)
            .pid;
    let (mut out, w) = pipe();
    let h = sandbox
        .exec(ExecSpec::new(
            vec![
                "sh".into(),
                "-c".into(),
                "grep -E '^(Seccomp|Seccomp_filters|NoNewPrivs|CapEff|CapPrm|CapBnd|CapAmb):' /proc/self/status; \
                 cat /proc/self/cgroup | sort; ls /proc | grep -c '^[0-9]'; unshare -U true; echo unshare=$?; \
                 echo netns=$(readlink /proc/self/ns/net)"
                    .into(),
            ],
            ExecTerminal::Stdio([null(), w, null()]),
        ))
        .unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    assert_eq!(sandbox.wait_pid(h.pid()).unwrap(), 0);
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {k} in {text}"))
    };
    assert_eq!(field("Seccomp:"), "2", "{text}");
    assert!(
        field("Seccomp_filters:").parse::<u32>().unwrap() >= 2,
        "{text}"
    );
    assert_eq!(field("NoNewPrivs:"), "1", "{text}");
    for k in ["CapEff:", "CapPrm:", "CapBnd:", "CapAmb:"] {
        assert_eq!(field(k), "0000000000000000", "{k} {text}");
    }
    // The program's cgroups, as the host sees them.
    let mut program_cgroups: Vec<String> =
        std::fs::read_to_string(format!("/proc/{program_host}/cgroup"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
    program_cgroups.sort();
    let exec_cgroups: Vec<&str> = text.lines().filter(|l| l.contains(":/")).collect();
    assert_eq!(exec_cgroups, program_cgroups, "{text}");
    // init, the holder of the program's session, the program, the shell and its
    // children: no helper in the sandbox's /proc.
    assert!(text.lines().any(|l| l == "5" || l == "6"), "{text}");
    // Creating namespaces is denied by the policy.
    assert!(text.contains("unshare=1"), "{text}");
    // The sandbox's network namespace (not the host's), the program's.
    let program_netns = std::fs::read_link(format!("/proc/{program_host}/ns/net")).unwrap();
    let host_netns = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(program_netns, host_netns);
    assert_eq!(field("netns="), program_netns.to_string_lossy(), "{text}");
    sandbox.destroy().unwrap();
    sandbox.wait().unwrap();
}
