//! Programs at the terminal: full-screen ones (less, vim), `ps` showing sessions and
//! process groups, and the exit status of the program the terminal was started with.
//!
//! As in `e2e_jobs.rs`, each scenario runs directly on a pty (`direct_*`, the
//! reference) and through `sandbox run --tty --` (`sandbox_*`, ignored for now).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_tests::e2e;
use sandbox_tests::term::{until, Launcher, Screen, Shell, Signal, DEFAULT_TIMEOUT};

/// The first entry of /etc/services (e.g. "tcpmux" and "1/tcp"): what `less` must show.
fn first_service() -> (String, String) {
    let text = std::fs::read_to_string("/etc/services")
        .expect("/etc/services (Debian package netbase) is needed");
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .expect("an entry in /etc/services");
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or_default().to_string();
    let port = words.next().unwrap_or_default().to_string();
    (name, port)
}

/// `less /etc/services` shows the file on the alternate screen, pages on a space,
/// and `q` returns to a working prompt.
fn pager(l: &Launcher, shell: Shell) {
    let s = l.shell(shell);
    let (name, port) = first_service();
    let first_entry = |sc: &Screen| {
        sc.rows()
            .iter()
            .any(|r| r.starts_with(&name) && r.contains(&port))
    };

    let line = s.start("less /etc/services").unwrap();
    // The first page is drawn when the pager's prompt is on the last row.
    s.wait_for(
        until(
            "less showing /etc/services and its prompt",
            |sc: &Screen| {
                sc.alternate_screen()
                    && first_entry(sc)
                    && sc
                        .rows()
                        .last()
                        .is_some_and(|r| r.contains("/etc/services") || r.trim_end() == ":")
            },
        ),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    // Raw keys reach less: a space shows the next page.
    s.send(" ").unwrap();
    s.wait_for(
        until("the next page", |sc: &Screen| {
            sc.alternate_screen() && !first_entry(sc)
        }),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    s.send("q").unwrap();
    let screen = s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    assert!(!screen.alternate_screen());
    assert_eq!(s.last_status().unwrap(), 0);
    assert_eq!(s.run("echo after-less").unwrap(), "after-less");
}

/// `vim -u NONE` opens (a screen of `~`), takes typed text, `:q!` returns, and the
/// terminal is back in its normal modes (canonical input, echo).
fn editor(l: &Launcher, shell: Shell) {
    let s = l.shell(shell);
    let line = s.start("vim -u NONE -i NONE").unwrap();
    s.wait_for(
        until("vim's empty buffer (rows of ~)", |sc: &Screen| {
            sc.rows().iter().filter(|r| r.trim_end() == "~").count() >= 10
        }),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    s.send("ityped-in-vim\x1b").unwrap();
    s.wait_for(
        until("the typed text on the first row", |sc: &Screen| {
            sc.rows()
                .first()
                .is_some_and(|r| r.trim_end() == "typed-in-vim")
        }),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    s.send(":q!\r").unwrap();
    let screen = s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    assert!(!screen.alternate_screen());
    assert_eq!(s.run("echo after-vim").unwrap(), "after-vim");
    let modes = s.run("stty -a").unwrap();
    let flags: Vec<&str> = modes.split([' ', ';', '\n']).collect();
    for flag in ["icanon", "echo", "isig"] {
        assert!(flags.contains(&flag), "{flag} not restored:\n{modes}");
    }
}

/// One row of `ps -o pid,pgid,sid,tpgid,comm`.
#[derive(Debug)]
struct PsRow {
    pid: i32,
    pgid: i32,
    sid: i32,
    tpgid: i32,
    comm: String,
}

fn parse_ps(out: &str) -> Vec<PsRow> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 5 {
                return None;
            }
            Some(PsRow {
                pid: f[0].parse().ok()?,
                pgid: f[1].parse().ok()?,
                sid: f[2].parse().ok()?,
                tpgid: f[3].parse().ok()?,
                comm: f[4].to_string(),
            })
        })
        .collect()
}

/// `ps -o pid,pgid,sid,tpgid,comm` run from the shell: the shell leads its process
/// group, and its session directly on a pty (pid = pgid = sid) or is in the session
/// of the sandbox's holder (3); ps runs in a process group of its own in the shell's session.
///
/// Directly on a pty, TPGID (the terminal's foreground group) is ps's group on both
/// rows: ps is the foreground job. Through the sandbox the host's /proc cannot show
/// the emulated controlling terminal (a known limit), so TPGID may be -1 there;
/// it must be ps's group or -1.
fn ps_view(l: &Launcher, shell: Shell) {
    let s = l.shell(shell);
    let shell_pid = s.shell_pid().unwrap();
    let out = s.run("ps -o pid,pgid,sid,tpgid,comm").unwrap();
    let rows = parse_ps(&out);
    let find = |comm: &str| {
        rows.iter()
            .find(|r| r.comm == comm)
            .unwrap_or_else(|| panic!("no {comm} in ps output:\n{out}"))
    };
    let sh = find(shell.name());
    let ps = find("ps");
    assert_eq!(sh.pid, shell_pid, "{out}");
    if l.is_sandbox() {
        // The sandbox's session is the holder's (PID 3, init's child and the shell's
        // parent); the shell leads its own group in it, so that its group is not
        // orphaned (see docs/LOADER.md).
        assert_eq!(
            (sh.pgid, sh.sid),
            (sh.pid, 3),
            "shell: pid = pgid, session 3\n{out}"
        );
    } else {
        assert_eq!(
            (sh.pgid, sh.sid),
            (sh.pid, sh.pid),
            "shell: pid = pgid = sid\n{out}"
        );
    }
    assert_eq!(ps.pgid, ps.pid, "ps leads its own group\n{out}");
    assert_ne!(ps.pgid, sh.pgid, "{out}");
    assert_eq!(ps.sid, sh.sid, "ps in the shell's session\n{out}");
    if l.is_owned_pty() {
        // The pty is the sandbox session's real controlling terminal: exact.
        assert_eq!(ps.tpgid, ps.pgid, "ps is the foreground job\n{out}");
        assert_eq!(
            sh.tpgid, ps.pgid,
            "one terminal, one foreground group\n{out}"
        );
    } else if l.is_sandbox() {
        for r in [sh, ps] {
            assert!(
                r.tpgid == ps.pgid || r.tpgid == -1,
                "TPGID must be ps's group or -1:\n{out}"
            );
        }
    } else {
        assert_eq!(ps.tpgid, ps.pgid, "ps is the foreground job\n{out}");
        assert_eq!(
            sh.tpgid, ps.pgid,
            "one terminal, one foreground group\n{out}"
        );
    }
}

/// `exit 3` ends the program on the terminal with status 3.
fn exit_status(l: &Launcher, shell: Shell) {
    let s = l.shell(shell);
    s.start("exit 3").unwrap();
    let status = s.wait_exit(DEFAULT_TIMEOUT).unwrap();
    assert_eq!(status.code(), Some(3), "{status:?}");
}

/// The shell killed by a signal: directly, the terminal's child ends by that signal;
/// through the sandbox, `sandbox` exits with 128 + N.
///
/// Interactive bash and dash ignore SIGTERM whatever `trap` says, so they get SIGHUP
/// (on which they exit by re-raising it); zsh ignores SIGTERM until `trap - TERM`.
fn killed_by_signal(l: &Launcher, shell: Shell) {
    let (cmd, sig) = match shell {
        Shell::Bash | Shell::Dash => ("kill -HUP $$", Signal::SIGHUP),
        Shell::Zsh => ("trap - TERM; kill -TERM $$", Signal::SIGTERM),
        Shell::Fish => ("kill -TERM $fish_pid", Signal::SIGTERM),
    };
    let s = l.shell(shell);
    s.start(cmd).unwrap();
    let status = s.wait_exit(DEFAULT_TIMEOUT).unwrap();
    if l.is_sandbox() {
        assert_eq!(status.code(), Some(128 + sig as i32), "{status:?}");
    } else {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(sig as i32), "{status:?}");
    }
}

e2e!(direct_less_bash, sandbox_less_bash, pty_less_bash: pager(Shell::Bash));
e2e!(direct_less_zsh, sandbox_less_zsh, pty_less_zsh: pager(Shell::Zsh));
e2e!(direct_less_fish, sandbox_less_fish, pty_less_fish: pager(Shell::Fish));
e2e!(direct_less_dash, sandbox_less_dash, pty_less_dash: pager(Shell::Dash));

e2e!(direct_vim_bash, sandbox_vim_bash, pty_vim_bash: editor(Shell::Bash));
e2e!(direct_vim_zsh, sandbox_vim_zsh, pty_vim_zsh: editor(Shell::Zsh));
e2e!(direct_vim_fish, sandbox_vim_fish, pty_vim_fish: editor(Shell::Fish));
e2e!(direct_vim_dash, sandbox_vim_dash, pty_vim_dash: editor(Shell::Dash));

e2e!(direct_ps_bash, sandbox_ps_bash, pty_ps_bash: ps_view(Shell::Bash));
e2e!(direct_ps_zsh, sandbox_ps_zsh, pty_ps_zsh: ps_view(Shell::Zsh));
e2e!(direct_ps_fish, sandbox_ps_fish, pty_ps_fish: ps_view(Shell::Fish));
e2e!(direct_ps_dash, sandbox_ps_dash, pty_ps_dash: ps_view(Shell::Dash));

e2e!(direct_exit_status_bash, sandbox_exit_status_bash, pty_exit_status_bash: exit_status(Shell::Bash));
e2e!(direct_exit_status_zsh, sandbox_exit_status_zsh, pty_exit_status_zsh: exit_status(Shell::Zsh));
e2e!(direct_exit_status_fish, sandbox_exit_status_fish, pty_exit_status_fish: exit_status(Shell::Fish));
e2e!(direct_exit_status_dash, sandbox_exit_status_dash, pty_exit_status_dash: exit_status(Shell::Dash));

e2e!(direct_killed_bash, sandbox_killed_bash, pty_killed_bash: killed_by_signal(Shell::Bash));
e2e!(direct_killed_zsh, sandbox_killed_zsh, pty_killed_zsh: killed_by_signal(Shell::Zsh));
e2e!(direct_killed_fish, sandbox_killed_fish, pty_killed_fish: killed_by_signal(Shell::Fish));
e2e!(direct_killed_dash, sandbox_killed_dash, pty_killed_dash: killed_by_signal(Shell::Dash));

/// A running sandbox (`sandbox run -d`) and the launcher of a shell executed into it
/// (`sandbox exec --tty` or `--tty=pty`); the sandbox is deleted on drop.
struct ExecInto {
    root: std::path::PathBuf,
    id: String,
}

impl ExecInto {
    fn start(name: &str) -> ExecInto {
        let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("e2e-programs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .arg("--root")
            .arg(&root)
            .args(["run", "-d", "--name", name, "--", "sleep", "100000"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        ExecInto {
            root,
            id: name.to_string(),
        }
    }

    fn launcher(&self, pty: bool) -> Launcher {
        Launcher::SandboxExec {
            bin: env!("CARGO_BIN_EXE_sandbox").into(),
            root: self.root.clone(),
            id: self.id.clone(),
            pty,
        }
    }
}

impl Drop for ExecInto {
    fn drop(&mut self) {
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .output();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn exec_tty_less_and_vim_bash() {
    if !sandbox_tests::require_root() {
        return;
    }
    let sb = ExecInto::start("progs-borrow");
    pager(&sb.launcher(false), Shell::Bash);
    editor(&sb.launcher(false), Shell::Bash);
}

#[test]
fn exec_pty_less_and_vim_bash() {
    if !sandbox_tests::require_root() {
        return;
    }
    let sb = ExecInto::start("progs-pty");
    pager(&sb.launcher(true), Shell::Bash);
    editor(&sb.launcher(true), Shell::Bash);
}
