//! The command line behaves as users of docker, runc and bubblewrap expect: usage
//! errors exit 125 and name what is wrong, logging is visible and machine-readable on
//! request, no colour codes in pipes, and a closed pipe ends `sandbox` quietly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};

fn sandbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sandbox")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn usage_errors_exit_125_and_name_the_problem() {
    for (args, names) in [
        (&["--bogus"][..], "--bogus"),
        (&["run"][..], "PROGRAM"),
        (
            &["run", "--signal-mode", "nope", "--", "true"][..],
            "--signal-mode",
        ),
        (
            &["--log-level", "bogus", "run", "--", "true"][..],
            "--log-level",
        ),
        (
            &["--log-format", "xml", "run", "--", "true"][..],
            "--log-format",
        ),
        (&["frobnicate"][..], "frobnicate"),
    ] {
        let o = sandbox(args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(names), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    for args in [&["--help"][..], &["run", "--help"][..], &["--version"][..]] {
        let o = sandbox(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(!o.stdout.is_empty(), "{args:?}");
        assert!(o.stderr.is_empty(), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn json_logs_are_one_object_a_line_without_colour() {
    let o = sandbox(&[
        "--log-format",
        "json",
        "--log-level",
        "info",
        "run",
        "--",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stderr(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty(), "info logging produced nothing");
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.get("level").is_some(), "{l}");
    }
}

#[test]
fn no_colour_codes_into_a_pipe() {
    let o = sandbox(&["--log-level", "info", "run", "--", "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("INFO"), "{}", stderr(&o));
    assert!(!stderr(&o).contains('\u{1b}'), "{:?}", stderr(&o));
}

#[test]
fn quiet_silences_info_and_warnings() {
    let o = sandbox(&["-q", "run", "--", "true"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    let o = sandbox(&["-q", "--log-level", "info", "run", "--", "true"]);
    assert_eq!(o.status.code(), Some(125), "-q and --log-level conflict");
}

/// runc's `--debug` is the same as `--log-level debug` (before or after the subcommand).
#[test]
fn debug_flag_logs_at_debug_level() {
    let logs = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("run sandbox");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        stderr(&o)
    };
    for args in [
        &["--debug", "run", "--", "true"][..],
        &["run", "--debug", "--", "true"][..],
    ] {
        let err = logs(args);
        assert!(err.contains("sandbox phase"), "{args:?}: {err}");
    }
    let err = logs(&["run", "--", "true"]);
    assert!(!err.contains("sandbox phase"), "{err}");
}

/// `sandbox demo | head`: the reader is gone; `sandbox` ends as a process killed by
/// SIGPIPE would (status 141), printing nothing.
#[test]
fn closed_pipe_ends_quietly() {
    let (rd, wr) = std::io::pipe().unwrap();
    drop(rd);
    let o = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["demo", "--json"])
        .stdin(Stdio::null())
        .stdout(wr)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(141), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
}

/// Completions and manual pages come from the CLI definition itself, so they list the
/// options `sandbox` really has.
#[test]
fn completions_and_man_pages_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let o = sandbox(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("signal-mode"), "{shell}");
    }
    let o = sandbox(&["man"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains(".TH sandbox 1"));
    let o = sandbox(&["man", "run"]);
    assert_eq!(o.status.code(), Some(0));
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(page.contains(".TH sandbox-run 1"), "{page}");
    assert!(page.contains("signal\\-mode"), "{page}");
    let o = sandbox(&["man", "nope"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("nope"));
}

/// A console socket that cannot be reached is reported as such, not as a consequence
/// (the pty's foreground group failing after the master was dropped).
#[test]
fn unreachable_console_socket_is_named() {
    let o = sandbox(&["run", "--console-socket", "/nonexistent/sock", "--", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("console socket /nonexistent/sock"), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(!err.contains("ENOTTY"), "{err}");
}

/// `sandbox run --tty=pty -- echo x > file` writes the file, as `docker run -t … >
/// file` does: the pty's output goes to standard output, the terminal only gives input.
#[test]
fn pty_output_follows_standard_output() {
    use std::io::Read;
    use std::os::fd::AsFd;
    let pty = nix::pty::openpty(None, None).unwrap();
    let out = std::env::temp_dir().join(format!("sandbox-pty-out-{}", std::process::id()));
    let file = std::fs::File::create(&out).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["run", "--tty=pty", "--", "echo", "to-the-file"])
        .stdin(pty.slave.as_fd().try_clone_to_owned().unwrap())
        .stdout(file)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let written = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert_eq!(written, "to-the-file\r\n");
    // Nothing reached the terminal: the master has nothing to read.
    drop(pty.slave);
    nix::fcntl::fcntl(
        pty.master.as_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let mut screen = Vec::new();
    let _ = std::fs::File::from(pty.master).read_to_end(&mut screen);
    assert!(
        !String::from_utf8_lossy(&screen).contains("to-the-file"),
        "{screen:?}"
    );
}

/// Structured options are checked when parsed, and the error names the option.
#[test]
fn structured_options_are_validated_by_name() {
    for (args, option, why) in [
        (&["--env", "=x"][..], "--env", "empty"),
        (&["-e", "NOEQUALS"][..], "--env", "KEY=VALUE"),
        (
            &["--rlimit", "nofile=10:5"][..],
            "--rlimit",
            "above the hard limit",
        ),
        (&["--rlimit", "bogus=1"][..], "--rlimit", "unknown limit"),
        (&["--rlimit", "nofile=lots"][..], "--rlimit", "not a number"),
        (&["-v", "/tmp:relative"][..], "--bind", "absolute"),
        (&["--bind", "a:b:c:d"][..], "--bind", "SRC[:DST][:ro]"),
        (&["--ro-bind", "/a:/b:rw"][..], "--ro-bind", "SRC[:DST]"),
    ] {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--", "true"]);
        let o = sandbox(&all);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {err}");
        assert!(err.contains(option) && err.contains(why), "{args:?}: {err}");
    }
}

/// Short flags as docker users type them, and limit names in any case.
#[test]
fn short_flags_and_limit_names_work() {
    let src = std::env::temp_dir().join(format!("sandbox-short-{}", std::process::id()));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "bound\n").unwrap();
    let bind = format!("{}:/mnt/short:ro", src.display());
    let o = sandbox(&[
        "run",
        "-e",
        "SHORT=yes",
        "-w",
        "/etc",
        "-v",
        &bind,
        "--rlimit",
        "RLIMIT_NOFILE=64:128",
        "--rlimit",
        "Core=unlimited",
        "--",
        "sh",
        "-c",
        "echo $SHORT; pwd; cat /mnt/short/f; (echo x > /mnt/short/g) 2>/dev/null || echo ro; \
         ulimit -Sn; ulimit -Hn; ulimit -c",
    ]);
    std::fs::remove_dir_all(&src).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "yes\n/etc\nbound\nro\n64\n128\nunlimited\n"
    );
}

/// Rootless, the only mapped id is 0 (the caller): `--user 0` works, other ids are
/// refused with the reason.
#[test]
fn rootless_user_option() {
    if !sandbox_tests::require_root() {
        return;
    }
    let rootless = |user: &str| {
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_sandbox"))
            .args(["run", "--user", user, "--", "id", "-u"])
            .stdin(Stdio::null())
            .output()
            .expect("setpriv (util-linux)")
    };
    let o = rootless("0");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0\n");
    let o = rootless("5:5");
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("maps only 0:0"), "{}", stderr(&o));
}

/// A signal sent to `sandbox` the moment it starts, before its program runs, is not
/// lost: it reaches the program once the program is there (SIGTERM → 143).
#[test]
fn a_signal_before_the_program_runs_is_delivered() {
    for _ in 0..5 {
        let child = Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .args(["run", "--", "sleep", "100"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        // As soon as sandbox has taken over SIGTERM (blocked, read from a signalfd),
        // which is before its program runs.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !sigterm_blocked(child.id()) {
            assert!(
                std::time::Instant::now() < deadline,
                "sandbox never blocked SIGTERM"
            );
            std::thread::yield_now();
        }
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let o = match rx.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(o) => o.unwrap(),
            Err(_) => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                panic!("the early SIGTERM was lost: sandbox still runs after 20 s");
            }
        };
        assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    }
}

/// SIGTERM is in the SigBlk mask of process `pid`'s main thread.
fn sigterm_blocked(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|m| m & (1 << (libc::SIGTERM - 1)) != 0)
}

/// When standard error is a terminal that hangs up, `sandbox` still ends with the
/// program's status (writing a message to a dead terminal must not panic it).
#[test]
fn a_hung_up_stderr_does_not_panic_sandbox() {
    use std::os::fd::AsFd;
    let pty = nix::pty::openpty(None, None).unwrap();
    // The master must not leak into sandbox (it would keep the terminal up).
    nix::fcntl::fcntl(
        pty.master.as_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .unwrap();
    let err = pty.slave.as_fd().try_clone_to_owned().unwrap();
    let o = {
        let child = Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .args(["--log-level", "info", "run", "--", "sh", "-c", "exit 7"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        // Hang the terminal up before sandbox logs anything.
        drop(pty.master);
        drop(pty.slave);
        child.wait_with_output().unwrap()
    };
    assert_eq!(o.status.code(), Some(7));
}

/// A set-up failure in init is always reported, whatever the timing: init may end
/// before reading what the loader sent it (the cgroup descriptors), and the kernel then
/// reports ECONNRESET once before init's last message (lost about 1 run in 80 before).
#[test]
fn setup_failures_are_always_reported() {
    for i in 0..200 {
        let o = sandbox(&["run", "--bind", "/no/such/dir", "--", "true"]);
        assert_eq!(o.status.code(), Some(125), "run {i}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("/no/such/dir"),
            "run {i}: {:?}",
            stderr(&o)
        );
    }
}
