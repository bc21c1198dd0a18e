//! Long-running sandboxes: `run -d` and the lifecycle verbs (`kill`, `wait`, `ps`,
//! `list`, `delete`, `exec`), their error paths, the control socket's defences, and
//! what is left behind (nothing). Each test uses a state root of its own (`--root`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod util;
use util::*;

/// (session id, tty_nr) of a process, from /proc/PID/stat.
fn session_and_tty(pid: i64) -> (i64, i64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest: Vec<&str> = s.rsplit_once(')').unwrap().1.split_whitespace().collect();
    // state ppid pgrp session tty_nr
    (rest[3].parse().unwrap(), rest[4].parse().unwrap())
}

#[test]
fn detached_sandbox_lives_until_deleted() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("basic");
    let marker = format!("lifecycle-basic-{}", std::process::id());
    let st = root.start("web", &["sh", "-c", &format!("sleep 1000; : {marker}")]);
    let sup = st["pid"].as_i64().unwrap();
    assert_eq!(st["status"], "running");
    assert_eq!(st["argv"][0], "sh");
    assert!(st["init_pid"].as_i64().unwrap() > 0);
    // The supervisor is out of our session, with no controlling terminal.
    let (sid, tty) = session_and_tty(sup);
    assert_eq!(sid, sup, "the supervisor leads a session of its own");
    assert_eq!(tty, 0, "the supervisor has no controlling terminal");
    // Only the owner may enter the state.
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(root.dir.clone()), 0o700);
    assert_eq!(mode(root.dir.join("web")), 0o700);
    assert_eq!(mode(root.dir.join("web/sock")), 0o600);
    assert_eq!(root.status("web").as_deref(), Some("running"));
    let program: Vec<i32> = with_marker(&marker)
        .into_iter()
        .filter(|&p| i64::from(p) != sup && i64::from(p) != st["init_pid"].as_i64().unwrap())
        .collect();
    assert_eq!(program.len(), 1, "the program runs: {program:?}");
    // A running sandbox is not deleted without --force.
    let o = root.run(&["delete", "web"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("running"), "{}", err(&o));
    assert_eq!(root.status("web").as_deref(), Some("running"));
    // kill: SIGTERM to the first program by default; wait: its status, 128+15.
    let o = root.run(&["kill", "web"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let o = root.run(&["wait", "web"]);
    assert_eq!(code(&o), 143, "{}", err(&o));
    assert_eq!(out(&o), "", "wait prints nothing");
    // Again: the first program's status stays on record until delete.
    assert_eq!(code(&root.run(&["wait", "web"])), 143);
    assert_eq!(root.status("web").as_deref(), Some("stopped"));
    let o = root.run(&["kill", "web"]);
    assert_eq!(code(&o), 125, "a stopped sandbox takes no signal");
    let o = root.run(&["delete", "web"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(!root.dir.join("web").exists(), "the state is removed");
    // It has released its lock, and ends a moment later.
    until("the supervisor to exit", 10, || !alive(sup));
    assert!(with_marker(&marker).is_empty());
    assert_eq!(root.status("web"), None);
}

#[test]
fn signals_by_name_and_number() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("signals");
    root.start("a", &["sleep", "1000"]);
    assert_eq!(code(&root.run(&["kill", "a", "sigint"])), 0);
    assert_eq!(code(&root.run(&["wait", "a"])), 130);
    root.start("b", &["sleep", "1000"]);
    assert_eq!(code(&root.run(&["kill", "b", "9"])), 0);
    assert_eq!(code(&root.run(&["wait", "b"])), 137);
    root.start("c", &["sleep", "1000"]);
    let o = root.run(&["kill", "c", "NOSUCH"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("unknown signal"), "{}", err(&o));
    let o = root.run(&["kill", "c", "0"]);
    assert_eq!(code(&o), 125, "{}", err(&o));
    assert_eq!(root.status("c").as_deref(), Some("running"));
}

#[test]
fn start_up_errors_reach_the_caller() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("starterr");
    let o = root.run(&["run", "-d", "--name", "x", "--", "no-such-program-xyz"]);
    assert_eq!(code(&o), 127, "{}", err(&o));
    assert!(err(&o).contains("no-such-program-xyz"), "{}", err(&o));
    assert_eq!(out(&o), "", "no ID for a sandbox that did not start");
    assert!(!root.dir.join("x").exists(), "nothing left of it");
    let o = root.run(&["run", "-d", "--name", "x", "--", "/etc/passwd"]);
    assert_eq!(code(&o), 126, "{}", err(&o));
    assert!(!root.dir.join("x").exists());
    let o = root.run(&["run", "-d", "--name", "../x", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("invalid sandbox ID"), "{}", err(&o));
    let o = root.run(&["run", "-d", "--tty", "--", "true"]);
    assert_eq!(code(&o), 125, "-d with a borrowed terminal is refused");
    root.start("x", &["sleep", "1000"]);
    let o = root.run(&["run", "-d", "--name", "x", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("exists already"), "{}", err(&o));
    assert_eq!(
        root.status("x").as_deref(),
        Some("running"),
        "the first one is untouched"
    );
    // Without --name: a generated ID.
    let o = root.run(&["run", "-d", "--", "sleep", "1000"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let id = out(&o).trim().to_string();
    assert_eq!(id.len(), 12, "{id:?}");
    assert_eq!(root.status(&id).as_deref(), Some("running"));
}

#[test]
fn every_verb_refuses_an_unknown_sandbox() {
    let root = Root::new("unknown");
    for args in [
        vec!["kill", "nope"],
        vec!["wait", "nope"],
        vec!["ps", "nope"],
        vec!["delete", "nope"],
        vec!["exec", "nope", "--", "true"],
    ] {
        let o = root.run(&args);
        assert_eq!(code(&o), 125, "{args:?}: {}", err(&o));
        assert!(
            err(&o).contains("no sandbox named \"nope\""),
            "{args:?}: {}",
            err(&o)
        );
    }
    let o = root.run(&["list"]);
    assert_eq!(code(&o), 0, "an empty (missing) root lists nothing");
    assert_eq!(out(&o).lines().count(), 1, "only the header: {}", out(&o));
}

#[test]
fn kill_errors_name_the_problem() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("killerr");
    root.start("k", &["sh", "-c", "sleep 1000 & wait; exec sleep 1001"]);
    // No such PID in the sandbox.
    let o = root.run(&["kill", "--pid", "4000", "k"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("4000"), "{}", err(&o));
    // --mode foreground on a process without a terminal.
    let o = root.run(&["kill", "--mode", "foreground", "k"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("no controlling terminal"), "{}", err(&o));
    // A PID that was there and is gone: sleep (PID 4: the program is PID 2, its parent,
    // the holder of its session, PID 3) killed, then signalled again. PID 4 runs sleep
    // (not sh's child before its exec: that line would show sh).
    let pid4 = |cmd: &str| {
        out(&root.run(&["ps", "k"])).lines().any(|l| {
            l.split_whitespace().next() == Some("4") && (cmd.is_empty() || l.ends_with(cmd))
        })
    };
    until("PID 4 running sleep", 10, || pid4("sleep 1000"));
    let o = root.run(&["kill", "--pid", "4", "k", "KILL"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    until("PID 4 reaped", 10, || !pid4(""));
    let o = root.run(&["kill", "--pid", "4", "k"]);
    assert_eq!(code(&o), 125, "a dead PID: {}", err(&o));
    assert_eq!(
        root.status("k").as_deref(),
        Some("running"),
        "the sandbox still runs"
    );
}

#[test]
fn ps_shows_the_sentrys_view() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("ps");
    // The program is PID 2, its parent (the holder of its session) PID 3; PID 4
    // stops itself; PID 5 sleeps.
    root.start(
        "p",
        &["sh", "-c", "sh -c 'kill -STOP $$' & sleep 1000 & wait"],
    );
    until("a stopped PID 4", 10, || {
        out(&root.run(&["ps", "p"])).lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&"4") && f.get(5) == Some(&"T")
        })
    });
    until("PID 5 running sleep", 10, || {
        out(&root.run(&["ps", "p"]))
            .lines()
            .any(|l| l.split_whitespace().next() == Some("5") && l.ends_with("sleep 1000"))
    });
    let o = root.run(&["ps", "p"]);
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["PID", "PPID", "PGID", "SID", "TTY", "STAT", "COMMAND"]
    );
    let o = root.run(&["ps", "--json", "p"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let procs: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let by_pid = |pid: i32| procs.iter().find(|p| p["pid"] == pid);
    let holder = by_pid(3).expect("the holder is PID 3");
    assert_eq!(holder["ppid"], 1);
    assert_eq!(holder["pgid"], 3);
    assert_eq!(holder["sid"], 3);
    let sh = by_pid(2).expect("the program is PID 2");
    assert_eq!(sh["ppid"], 3);
    assert_eq!(sh["pgid"], 2);
    assert_eq!(sh["sid"], 3);
    let stopped = by_pid(4).expect("the stopped sh is PID 4");
    assert_eq!(stopped["ppid"], 2);
    assert_eq!(stopped["pgid"], 2);
    assert_eq!(stopped["sid"], 3);
    assert_eq!(stopped["state"], "T");
    assert_eq!(stopped["tty"], serde_json::Value::Null);
    let five = by_pid(5).expect("PID 5");
    assert_eq!(five["command"], "sleep 1000");
    assert_eq!(five["state"], "S");
}

/// A raw client of the control socket, as an attacker would write one.
fn raw_conn(root: &Root, id: &str) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let s = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let addr = UnixAddr::new(&root.dir.join(id).join("sock")).unwrap();
    connect(std::os::fd::AsRawFd::as_raw_fd(&s), &addr).unwrap();
    s
}

fn raw_exchange(root: &Root, id: &str, packet: &[u8]) -> serde_json::Value {
    let c = raw_conn(root, id);
    nix::sys::socket::send(
        std::os::fd::AsRawFd::as_raw_fd(&c),
        packet,
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    let mut buf = vec![0u8; 70_000];
    let n = nix::sys::socket::recv(
        std::os::fd::AsRawFd::as_raw_fd(&c),
        &mut buf,
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    assert!(n >= 4, "an answer, not a hang-up");
    let v: serde_json::Value = serde_json::from_slice(&buf[4..n]).unwrap();
    assert_eq!(v["version"], 1);
    v["body"].clone()
}

fn frame(json: &str) -> Vec<u8> {
    let mut f = (json.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(json.as_bytes());
    f
}

#[test]
fn the_socket_answers_garbage_with_errors_and_keeps_running() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("garbage");
    root.start("g", &["sleep", "1000"]);
    let good = frame(r#"{"version":1,"body":{"type":"state"}}"#);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "random bytes",
            b"\x00\x01garbage\xff\xfe".to_vec(),
            "malformed",
        ),
        ("too short for a header", b"\x00\x00".to_vec(), "malformed"),
        ("truncated", good[..good.len() - 3].to_vec(), "malformed"),
        (
            "padded",
            [good.clone(), b"xx".to_vec()].concat(),
            "malformed",
        ),
        (
            "huge length",
            [vec![0xff, 0xff, 0xff, 0xff], b"{}".to_vec()].concat(),
            "malformed",
        ),
        ("not JSON", frame("hello"), "malformed"),
        (
            "wrong version",
            frame(r#"{"version":99,"body":{"type":"state"}}"#),
            "malformed",
        ),
        (
            "unknown request",
            frame(r#"{"version":1,"body":{"type":"reboot"}}"#),
            "malformed",
        ),
        (
            "bad field",
            frame(r#"{"version":1,"body":{"type":"kill","pid":"x","mode":"all","signal":9}}"#),
            "malformed",
        ),
        (
            "oversized",
            frame(&format!(
                r#"{{"version":1,"body":{{"type":"exec","argv":["{}"]}}}}"#,
                "a".repeat(66_000)
            )),
            "malformed",
        ),
        (
            "resize without exec",
            frame(r#"{"version":1,"body":{"type":"resize","rows":1,"cols":1}}"#),
            "out_of_order",
        ),
        (
            "signal without exec",
            frame(r#"{"version":1,"body":{"type":"signal","signal":2}}"#),
            "out_of_order",
        ),
        (
            "invalid signal",
            frame(
                r#"{"version":1,"body":{"type":"kill","pid":null,"mode":"process","signal":999}}"#,
            ),
            "failed",
        ),
        (
            "exec without descriptors",
            frame(
                r#"{"version":1,"body":{"type":"exec","argv":["sh"],"env":[],"cwd":null,"user":null,"tty":"stdio","console_socket":null,"winsize":null}}"#,
            ),
            "malformed",
        ),
    ];
    for (what, packet, kind) in cases {
        let r = raw_exchange(&root, "g", &packet);
        assert_eq!(r["type"], "error", "{what}: {r}");
        assert_eq!(r["kind"], kind, "{what}: {r}");
        assert!(!r["message"].as_str().unwrap().is_empty(), "{what}");
    }
    // A client that connects and leaves, or sends nothing but an empty packet.
    drop(raw_conn(&root, "g"));
    // Still serving, the program untouched.
    let r = raw_exchange(&root, "g", &good);
    assert_eq!(r["type"], "state", "{r}");
    assert_eq!(r["status"], "running");
    assert_eq!(root.status("g").as_deref(), Some("running"));
    assert_eq!(code(&root.run(&["kill", "g", "KILL"])), 0);
    assert_eq!(code(&root.run(&["wait", "g"])), 137);
}

#[test]
fn a_stranger_cannot_use_the_socket() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("stranger");
    root.start("s", &["sleep", "1000"]);
    let nobody = |args: &[&str]| -> Output {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                BIN,
                "--root",
            ])
            .arg(&root.dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // The state is the owner's: uid 65534 cannot even read it.
    let o = nobody(&["kill", "s", "KILL"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("Permission denied"), "{}", err(&o));
    // The socket file refuses a stranger's connect (detected, not changed).
    {
        let sock = root.dir.join("s/sock");
        let o = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c"])
            .arg("import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\ntry:\n s.connect(sys.argv[1]); print('connected')\nexcept PermissionError: print('refused')")
            .arg(&sock)
            .output()
            .unwrap();
        assert_eq!(out(&o).trim(), "refused", "{}", err(&o));
    }
    // Even with the files opened up, the supervisor checks the peer's uid.
    for p in [root.dir.clone(), root.dir.join("s")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for f in ["s/state.json", "s/lock"] {
        std::fs::set_permissions(root.dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(
        root.dir.join("s/sock"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    for args in [
        vec!["kill", "s", "KILL"],
        vec!["delete", "--force", "s"],
        vec!["wait", "s"],
        vec!["ps", "s"],
    ] {
        let o = nobody(&args);
        assert_eq!(code(&o), 125, "{args:?}");
        assert!(
            err(&o).contains("permission denied: only the sandbox's owner"),
            "{args:?}: {}",
            err(&o)
        );
    }
    assert_eq!(
        root.status("s").as_deref(),
        Some("running"),
        "the stranger changed nothing"
    );
}

#[test]
fn a_killed_supervisor_takes_the_sandbox_with_it() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("sigkill");
    let marker = format!("lifecycle-sigkill-{}", std::process::id());
    let st = root.start(
        "z",
        &["sh", "-c", &format!("sleep 1000 & sleep 1000; : {marker}")],
    );
    let sup = st["pid"].as_i64().unwrap();
    let init = st["init_pid"].as_i64().unwrap();
    until("the program", 10, || !with_marker(&marker).is_empty());
    // A request in flight when it dies: the client gets an error, not a hang.
    let waiter = root
        .cmd(&["wait", "z"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let o = waiter.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", err(&o));
    until("every process of the sandbox gone", 10, || {
        with_marker(&marker).is_empty() && !alive(init)
    });
    until("the sandbox listed dead", 10, || {
        root.status("z").as_deref() == Some("dead")
    });
    let o = root.run(&["kill", "z"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("dead"), "{}", err(&o));
    let cgroups: Vec<String> = st["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert!(!cgroups.is_empty());
    let o = root.run(&["delete", "z"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(!root.dir.join("z").exists());
    for c in cgroups {
        assert!(!Path::new(&c).exists(), "{c} removed");
    }
}

#[test]
fn kill_all_leaves_no_forking_process_alive() {
    if !sandbox_tests::require_root() {
        return;
    }
    kill_all_fork_loop("auto");
}

/// The same through cgroup v2's `cgroup.freeze` (this host has a v1 freezer, which
/// `auto` picks).
#[test]
fn kill_all_leaves_no_forking_process_alive_v2_freezer() {
    if !sandbox_tests::require_root() {
        return;
    }
    if !Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists()
        && !Path::new("/sys/fs/cgroup/cgroup.procs").exists()
    {
        panic!("no cgroup v2 hierarchy mounted: the v2 freezer cannot be tested here");
    }
    kill_all_fork_loop("v2");
}

fn kill_all_fork_loop(freezer: &str) {
    let root = Root::new(&format!("forkloop-{freezer}"));
    let o = root.run(&[
        "run",
        "-d",
        "--name",
        "f",
        "--freezer",
        freezer,
        "--pids-limit",
        "300",
        "--",
        "bash",
        "-c",
        // bash (not dash) carries on when a fork fails at the pids limit.
        "while :; do sleep 1000 & done 2>/dev/null",
    ]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let st = root.state("f");
    let init = st["init_pid"].as_i64().unwrap() as i32;
    let freezer = st["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| PathBuf::from(c.as_str().unwrap()))
        .find(|c| c.to_string_lossy().contains("freezer") || c.join("cgroup.freeze").exists())
        .expect("a freezer cgroup");
    // The cgroup is removed once the sandbox has ended (SIGKILL to the first program
    // ends it): then no process is in it.
    let procs = || -> Vec<i32> {
        match std::fs::read_to_string(freezer.join("cgroup.procs")) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => panic!("{}: {e}", freezer.display()),
        }
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
    };
    until("a crowd of processes", 20, || procs().len() > 50);
    let o = root.run(&["kill", "--mode", "all", "f", "KILL"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    // When kill returns, nothing but init is left, and nothing comes back.
    let left: Vec<i32> = procs().into_iter().filter(|&p| p != init).collect();
    assert!(left.is_empty(), "still alive: {left:?}");
    assert_eq!(code(&root.run(&["wait", "f"])), 137);
    let left: Vec<i32> = procs().into_iter().filter(|&p| alive(p.into())).collect();
    assert!(left.is_empty(), "alive after the program ended: {left:?}");
}

#[test]
fn run_d_with_pids_limit_option() {
    if !sandbox_tests::require_root() {
        return;
    }
    // Run options go before `--` as with `run`.
    let root = Root::new("opts");
    let o = root.run(&[
        "run",
        "-d",
        "--name",
        "o",
        "--pids-limit",
        "300",
        "-e",
        "FOO=bar",
        "--",
        "sh",
        "-c",
        "echo $FOO; sleep 1000",
    ]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    until("the program's output in the log", 10, || {
        std::fs::read_to_string(root.dir.join("o/log")).is_ok_and(|l| l.contains("bar"))
    });
}

#[test]
fn list_json_describes_each_sandbox() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("list");
    root.start("one", &["sleep", "1000"]);
    root.start("two", &["true"]);
    until("two stopped", 10, || {
        root.status("two").as_deref() == Some("stopped")
    });
    let all = root.list();
    let ids: Vec<&str> = all.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["one", "two"]);
    for s in &all {
        for key in ["pid", "init_pid", "status", "created", "argv", "owner"] {
            assert!(!s[key].is_null(), "{key} in {s}");
        }
    }
    assert_eq!(all[1]["exit_status"], 0);
    let o = root.run(&["list"]);
    let text = out(&o);
    assert!(
        text.lines()
            .any(|l| l.starts_with("one ") && l.contains("running")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("two ") && l.contains("stopped")),
        "{text}"
    );
    let _ = std::io::stdout().as_fd();
}

#[test]
fn a_sandboxed_program_cannot_drive_a_supervisor() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::visible_inside("inside");
    root.start("victim", &["sleep", "1000"]);
    let sock = root.dir.join("victim/sock");
    // The attacker: root in another sandbox that sees the socket (the host root
    // read-only, or the state root bound in), asking the victim's supervisor to
    // delete it and to exec into it.
    let script = "import socket,struct,sys,json\n\
        for body in ({'type':'delete','force':True},{'type':'kill','pid':None,'mode':'all','signal':9}):\n \
          s=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\n \
          s.connect(sys.argv[1])\n \
          j=json.dumps({'version':1,'body':body}).encode()\n \
          s.send(struct.pack('>I',len(j))+j)\n \
          r=s.recv(70000)\n \
          print(json.loads(r[4:])['body']['message'])\n";
    let root_dir = root.dir.to_string_lossy().into_owned();
    for opts in [vec!["--read-only"], vec!["-v", root_dir.as_str()]] {
        let mut args = vec!["run"];
        args.extend(opts.iter().copied());
        args.extend([
            "--",
            "/usr/bin/python3",
            "-c",
            script,
            sock.to_str().unwrap(),
        ]);
        let o = Command::new(BIN)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(code(&o), 0, "{opts:?}: {}", err(&o));
        let text = out(&o);
        assert_eq!(
            text.lines()
                .filter(|l| l.contains("a process inside a sandbox may not use a supervisor"))
                .count(),
            2,
            "{opts:?}: {text}"
        );
        assert_eq!(
            root.status("victim").as_deref(),
            Some("running"),
            "{opts:?}"
        );
    }
}

#[test]
fn exec_runs_a_process_with_the_callers_stdio() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("exec");
    root.start("x", &["sleep", "1000"]);
    // Output, status, environment, working directory.
    let o = root.run(&[
        "exec",
        "-e",
        "GREETING=hi",
        "-w",
        "/etc",
        "x",
        "--",
        "sh",
        "-c",
        "echo $GREETING from $PWD; echo to-stderr >&2; exit 3",
    ]);
    assert_eq!(code(&o), 3, "{}", err(&o));
    assert_eq!(out(&o), "hi from /etc\n");
    assert_eq!(err(&o), "to-stderr\n");
    // Standard input passes through.
    let mut c = root.cmd(&["exec", "x", "--", "cat"]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"through stdin\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(out(&o), "through stdin\n");
    // Killed by a signal: 128 + N.
    let o = root.run(&["exec", "x", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(code(&o), 143, "{}", err(&o));
    // Not found, not executable.
    let o = root.run(&["exec", "x", "--", "no-such-program-xyz"]);
    assert_eq!(code(&o), 127, "{}", err(&o));
    assert!(err(&o).contains("no-such-program-xyz"), "{}", err(&o));
    let o = root.run(&["exec", "x", "--", "/etc/passwd"]);
    assert_eq!(code(&o), 126, "{}", err(&o));
    // --tty without a terminal.
    let o = root.run(&["exec", "--tty", "x", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("terminal"), "{}", err(&o));
    // An exec'd process leads a session of its own, in the sandbox's PID namespace.
    let o = root.run(&[
        "exec",
        "x",
        "--",
        "sh",
        "-c",
        "echo $$ $(cut -d' ' -f6 /proc/$$/stat)",
    ]);
    let text = out(&o);
    let v: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(v.len(), 2, "{text}");
    assert_eq!(v[0], v[1], "session leader: {text}");
    assert!(v[0].parse::<i32>().unwrap() < 100, "a sandbox PID: {text}");
    // Nothing left but init, the holder of the program's session and the program.
    let o = root.run(&["ps", "--json", "x"]);
    let procs: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(procs.len(), 3, "{procs:?}");
    // Into a stopped sandbox: refused.
    assert_eq!(code(&root.run(&["kill", "x", "KILL"])), 0);
    assert_eq!(code(&root.run(&["wait", "x"])), 137);
    let o = root.run(&["exec", "x", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("ended"), "{}", err(&o));
}

/// The sandbox PID of the process whose command line is `cmd`.
fn pid_of(root: &Root, id: &str, cmd: &str) -> Option<i64> {
    let o = root.run(&["ps", "--json", id]);
    let procs: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).ok()?;
    procs
        .iter()
        .find(|p| p["command"] == cmd)
        .and_then(|p| p["pid"].as_i64())
}

#[test]
fn wait_pid_returns_each_exec_status_once() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("waitpid");
    root.start("w", &["sleep", "1000"]);
    // Two exec'd processes, each ending when its stdin closes.
    let spawn = |status: i32| {
        let mut c = root.cmd(&[
            "exec",
            "w",
            "--",
            "sh",
            "-c",
            &format!("read x; exit {status}"),
        ]);
        c.stdin(Stdio::piped()).stdout(Stdio::null());
        c.spawn().unwrap()
    };
    let mut seven = spawn(7);
    let mut nine = spawn(9);
    let pid = |status: i32| {
        let cmd = format!("sh -c read x; exit {status}");
        let mut found = None;
        until("the exec'd process in ps", 10, || {
            found = pid_of(&root, "w", &cmd);
            found.is_some()
        });
        found.unwrap()
    };
    let (p7, p9) = (pid(7), pid(9));
    // Waiters before the end.
    let waiter = |p: i64| {
        root.cmd(&["wait", "--pid", &p.to_string(), "w"])
            .spawn()
            .unwrap()
    };
    let w7 = waiter(p7);
    let w9 = waiter(p9);
    drop(seven.stdin.take());
    drop(nine.stdin.take());
    assert_eq!(
        seven.wait().unwrap().code(),
        Some(7),
        "the exec client's own status"
    );
    assert_eq!(nine.wait().unwrap().code(), Some(9));
    assert_eq!(w7.wait_with_output().unwrap().status.code(), Some(7));
    assert_eq!(w9.wait_with_output().unwrap().status.code(), Some(9));
    // Once only.
    for p in [p7, p9] {
        let o = root.run(&["wait", "--pid", &p.to_string(), "w"]);
        assert_eq!(code(&o), 125, "a second wait --pid {p}");
        assert!(
            err(&o).contains("already waited") || err(&o).contains("no process"),
            "{}",
            err(&o)
        );
    }
    // A PID that never was.
    let o = root.run(&["wait", "--pid", "4000", "w"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("4000"), "{}", err(&o));
}

#[test]
fn a_client_gone_mid_exec_leaves_no_process() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("midexec");
    root.start("m", &["sleep", "1000"]);
    let marker = format!("gone-mid-exec-{}", std::process::id());
    let req = format!(
        r#"{{"version":1,"body":{{"type":"exec","argv":["sh","-c","sleep 1000; : {marker}"],"env":[],"cwd":null,"user":null,"tty":"stdio","console_socket":null,"winsize":null}}}}"#
    );
    for _ in 0..5 {
        let (r, w) = nix::unistd::pipe().unwrap();
        let c = raw_conn(&root, "m");
        let packet = frame(&req);
        let iov = [std::io::IoSlice::new(&packet)];
        let fds = [
            std::os::fd::AsRawFd::as_raw_fd(&r),
            std::os::fd::AsRawFd::as_raw_fd(&w),
            std::os::fd::AsRawFd::as_raw_fd(&w),
        ];
        nix::sys::socket::sendmsg::<()>(
            std::os::fd::AsRawFd::as_raw_fd(&c),
            &iov,
            &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
            nix::sys::socket::MsgFlags::empty(),
            None,
        )
        .unwrap();
        // Gone before the answer.
        drop(c);
    }
    // Every process started for those requests is killed and reaped: the sandbox
    // holds init, the holder of the program's session and its first program only
    // (and `ps` a header line).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = root.run(&["ps", "m"]);
        let left = with_marker(&marker);
        if out(&o).lines().count() == 4 && left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind:\n{}host: {left:?}",
            out(&o)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(root.status("m").as_deref(), Some("running"));
}

#[test]
fn a_supervisor_killed_while_frozen_is_cleaned_by_delete() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("frozen");
    let marker = format!("frozen-sandbox-{}", std::process::id());
    let st = root.start("fz", &["sh", "-c", &format!("sleep 1000; : {marker}")]);
    let sup = st["pid"].as_i64().unwrap() as i32;
    let freezer = st["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| PathBuf::from(c.as_str().unwrap()))
        .find(|c| c.join("freezer.state").exists() || c.join("cgroup.freeze").exists())
        .expect("a freezer cgroup");
    // As `kill --mode all` would leave it if its supervisor died in the middle.
    if freezer.join("freezer.state").exists() {
        std::fs::write(freezer.join("freezer.state"), "FROZEN").unwrap();
    } else {
        std::fs::write(freezer.join("cgroup.freeze"), "1").unwrap();
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    until("the sandbox listed dead", 10, || {
        root.status("fz").as_deref() == Some("dead")
    });
    let o = root.run(&["delete", "fz"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    until("every process of the sandbox gone", 10, || {
        with_marker(&marker).is_empty()
    });
    assert!(!freezer.exists(), "the freezer cgroup is removed");
    assert!(!root.dir.join("fz").exists());
}

#[test]
fn kill_all_term_reaches_a_forking_crowd() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("forkterm");
    let o = root.run(&[
        "run",
        "-d",
        "--name",
        "t",
        "--pids-limit",
        "300",
        "--",
        "bash",
        "-c",
        // bash (not dash) carries on when a fork fails at the pids limit.
        "while :; do sleep 1000 & done 2>/dev/null",
    ]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let st = root.state("t");
    let init = st["init_pid"].as_i64().unwrap() as i32;
    let freezer = st["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| PathBuf::from(c.as_str().unwrap()))
        .find(|c| c.join("freezer.state").exists() || c.join("cgroup.freeze").exists())
        .expect("a freezer cgroup");
    let alive_in_cgroup = || -> Vec<i32> {
        std::fs::read_to_string(freezer.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.parse::<i32>().unwrap())
            .filter(|&p| p != init && alive(p.into()))
            .collect()
    };
    until("a crowd of processes", 20, || alive_in_cgroup().len() > 50);
    let o = root.run(&["kill", "--mode", "all", "t", "TERM"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    // SIGTERM kills sh and every sleep; none forked past the freeze.
    until("nothing alive", 10, || alive_in_cgroup().is_empty());
    assert_eq!(code(&root.run(&["wait", "t"])), 143);
}

#[test]
fn exec_forwards_the_signals_it_receives() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("fwd");
    root.start("f", &["sleep", "1000"]);
    for (sig, status, marker) in [
        (nix::sys::signal::Signal::SIGINT, 130, "1001"),
        (nix::sys::signal::Signal::SIGTERM, 143, "1002"),
        (nix::sys::signal::Signal::SIGHUP, 129, "1003"),
    ] {
        let client = root
            .cmd(&["exec", "f", "--", "sleep", marker])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let cmd = format!("sleep {marker}");
        until("the exec'd sleep", 10, || {
            pid_of(&root, "f", &cmd).is_some()
        });
        // The signal a terminal's ^C (or a kill) gives `sandbox exec` ends the process
        // in the sandbox, and the client exits with its status.
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(client.id() as i32), sig).unwrap();
        let o = client.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(status), "{sig:?}: {}", err(&o));
        assert_eq!(
            pid_of(&root, "f", &cmd),
            None,
            "{sig:?}: the process is gone"
        );
    }
    assert_eq!(root.status("f").as_deref(), Some("running"));
}

#[test]
fn exec_console_socket_gets_the_pty() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("console");
    root.start("c", &["sleep", "1000"]);
    let path = root.dir.with_extension("console.sock");
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let mut client = root
        .cmd(&[
            "exec",
            "--console-socket",
            path.to_str().unwrap(),
            "c",
            "--",
            "sh",
            "-c",
            "tty; read x; echo got $x",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (conn, _) = listener.accept().unwrap();
    let master = sandbox_tests::console::recv_fd(&conn).unwrap();
    let mut pty = sandbox_tests::console::PtyReader::new(master);
    pty.expect("/dev/pts/");
    {
        use std::io::Write;
        pty.master.write_all(b"hello\r").unwrap();
    }
    pty.expect("got hello");
    assert_eq!(sandbox_tests::console::exit_code(&mut client), 0);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn rootless_state_in_xdg_runtime_dir() {
    if !sandbox_tests::require_root() {
        return;
    }
    // uid 65534 with its own runtime directory: the default state root.
    let runtime =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("xdg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&runtime);
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o777)).unwrap();
    let nobody = |args: &[&str]| -> Output {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "env"])
            .arg(format!("XDG_RUNTIME_DIR={}", runtime.display()))
            .arg(BIN)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // Deleted however the test ends.
    struct Cleanup<'a>(&'a dyn Fn(&[&str]) -> Output);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["delete", "--force", "r"]);
        }
    }
    let _cleanup = Cleanup(&nobody);
    let o = nobody(&[
        "run",
        "-d",
        "--name",
        "r",
        "--",
        "sh",
        "-c",
        "sleep 1000 & sleep 1000 & wait",
    ]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let dir = runtime.join("sandbox/r");
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534);
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let o = nobody(&["exec", "r", "--", "sh", "-c", "echo in-$(id -u)"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert_eq!(out(&o), "in-0\n", "root of the sandbox's user namespace");
    let o = nobody(&["kill", "--mode", "all", "r", "KILL"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let o = nobody(&["wait", "r"]);
    assert_eq!(code(&o), 137, "{}", err(&o));
    let o = nobody(&["delete", "r"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(!dir.exists());
    let _ = std::fs::remove_dir_all(&runtime);
}

#[test]
fn delete_force_ends_the_clients_in_flight() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("inflight");
    root.start("d", &["sleep", "1000"]);
    let execs: Vec<_> = (0..3)
        .map(|i| {
            root.cmd(&["exec", "d", "--", "sleep", &format!("{}", 2000 + i)])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for i in 0..3 {
        let cmd = format!("sleep {}", 2000 + i);
        until("the exec'd sleeps", 10, || {
            pid_of(&root, "d", &cmd).is_some()
        });
    }
    let waiter = root.cmd(&["wait", "d"]).spawn().unwrap();
    // Connected and waiting for the answer before the delete.
    until("the wait client blocked on its answer", 10, || {
        sandbox_tests::term::ProcInfo::blocked_in(
            waiter.id() as i32,
            &[libc::SYS_recvmsg, libc::SYS_recvfrom],
        )
    });
    let o = root.run(&["delete", "--force", "d"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    // Each exec'd process was killed, and its client says so.
    for c in execs {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(137), "{}", err(&o));
    }
    assert_eq!(waiter.wait_with_output().unwrap().status.code(), Some(137));
    assert!(!root.dir.join("d").exists());
}

#[test]
fn many_execs_at_once() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("many");
    root.start("n", &["sleep", "1000"]);
    let clients: Vec<_> = (0..12)
        .map(|i| {
            root.cmd(&[
                "exec",
                "n",
                "--",
                "sh",
                "-c",
                &format!("echo {i}; exit {i}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(i as i32), "{}", err(&o));
        assert_eq!(out(&o), format!("{i}\n"));
    }
}

#[test]
fn run_d_console_socket_and_foreground_kill() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("rdconsole");
    let path = root.dir.with_extension("console.sock");
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let client = root
        .cmd(&[
            "run",
            "-d",
            "--name",
            "cs",
            "--console-socket",
            path.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "read x; echo got $x; sleep 1000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (conn, _) = listener.accept().unwrap();
    let master = sandbox_tests::console::recv_fd(&conn).unwrap();
    let o = client.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert_eq!(out(&o), "cs\n");
    let mut pty = sandbox_tests::console::PtyReader::new(master);
    {
        use std::io::Write;
        pty.master.write_all(b"hello\r").unwrap();
    }
    pty.expect("got hello");
    // ps: the terminal, and `+` on the foreground group (the program's).
    until("sleep in the foreground", 10, || {
        out(&root.run(&["ps", "cs"])).lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(4) == Some(&"pts/0") && f.get(5) == Some(&"S+") && l.ends_with("sleep 1000")
        })
    });
    // The foreground group of the program's terminal: sh and its sleep.
    let o = root.run(&["kill", "--mode", "foreground", "cs", "INT"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert_eq!(code(&root.run(&["wait", "cs"])), 130);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn an_exec_client_survives_its_supervisors_death() {
    if !sandbox_tests::require_root() {
        return;
    }
    let root = Root::new("execsup");
    let st = root.start("x", &["sleep", "1000"]);
    let marker = format!("exec-sup-{}", std::process::id());
    let client = root
        .cmd(&[
            "exec",
            "x",
            "--",
            "sh",
            "-c",
            &format!("sleep 1000; : {marker}"),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // (The client's own command line carries the marker too: ask the sandbox.)
    let cmd = format!("sh -c sleep 1000; : {marker}");
    until("the exec'd process", 10, || {
        pid_of(&root, "x", &cmd).is_some()
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(st["pid"].as_i64().unwrap() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The client learns it (no hang), and the exec'd process died with the sandbox.
    let o = client.wait_with_output().unwrap();
    assert_eq!(code(&o), 125, "{}", err(&o));
    assert!(err(&o).contains("closed the connection"), "{}", err(&o));
    until("the exec'd process gone", 10, || {
        with_marker(&marker).is_empty()
    });
    until("dead", 10, || root.status("x").as_deref() == Some("dead"));
    assert_eq!(code(&root.run(&["delete", "x"])), 0);
}

/// Exec'd processes are in the freezer cgroup too: a forking crowd started by `exec`
/// does not escape `kill --mode all`.
fn kill_all_exec_fork_loop(freezer: &str) {
    let root = Root::new(&format!("execfork-{freezer}"));
    let o = root.run(&[
        "run",
        "-d",
        "--name",
        "e",
        "--freezer",
        freezer,
        "--pids-limit",
        "300",
        "--",
        "sleep",
        "1000",
    ]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let st = root.state("e");
    let init = st["init_pid"].as_i64().unwrap() as i32;
    let freezer_dir = st["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| PathBuf::from(c.as_str().unwrap()))
        .find(|c| c.join("freezer.state").exists() || c.join("cgroup.freeze").exists())
        .expect("a freezer cgroup");
    let client = root
        .cmd(&[
            "exec",
            "e",
            "--",
            "bash",
            "-c",
            // bash carries on when a fork fails at the pids limit.
            "while :; do sleep 1000 & done 2>/dev/null",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let in_freezer = || -> Vec<i32> {
        std::fs::read_to_string(freezer_dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.parse::<i32>().unwrap())
            .filter(|&p| p != init && alive(p.into()))
            .collect()
    };
    until("a crowd in the freezer cgroup", 20, || {
        in_freezer().len() > 50
    });
    let o = root.run(&["kill", "--mode", "all", "e", "KILL"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let left = in_freezer();
    assert!(left.is_empty(), "still alive: {left:?}");
    let o = wait_output(client, 20);
    assert_eq!(code(&o), 137, "{}", err(&o));
    // Nothing of the crowd anywhere in the sandbox, as the sentry and the host see it.
    let ps = out(&root.run(&["ps", "e"]));
    assert!(
        !ps.contains("sleep 1000\n") || ps.lines().count() <= 3,
        "{ps}"
    );
}

#[test]
fn kill_all_reaches_an_exec_fork_loop() {
    if !sandbox_tests::require_root() {
        return;
    }
    kill_all_exec_fork_loop("auto");
}

#[test]
fn kill_all_reaches_an_exec_fork_loop_v2_freezer() {
    if !sandbox_tests::require_root() {
        return;
    }
    kill_all_exec_fork_loop("v2");
}
