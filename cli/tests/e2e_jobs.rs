//! Job control as a person at a terminal sees it: ^C, ^\, ^Z, `jobs`, `bg`, `fg`,
//! background reads and writes, window resizes, pipelines and nested shells.
//!
//! Every scenario runs twice: `direct_*` with the shell itself on a pty (the
//! reference: Linux's own job control) and `sandbox_*` through `sandbox run --tty --`
//! (ignored until the sandbox can run shells). Shell-specific wording is in
//! [`Words`]; everything else is the same for bash, zsh, fish and dash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_tests::e2e;
use sandbox_tests::term::{keys, until, Launcher, Screen, Shell, ShellSession, DEFAULT_TIMEOUT};

/// How each shell words job states (in its `jobs` listing and its notifications).
struct Words {
    /// Printed when the foreground job stops on ^Z.
    suspended: &'static str,
    /// A stopped job in `jobs`.
    stopped: &'static str,
    /// A running job in `jobs`.
    running: &'static str,
    /// A job stopped by SIGTTIN / SIGTTOU in `jobs` (fish does not tell them apart
    /// from any other stop: plain `stopped`).
    tty_input: &'static str,
    tty_output: &'static str,
}

fn words(shell: Shell) -> Words {
    match shell {
        Shell::Bash => Words {
            suspended: "Stopped",
            stopped: "Stopped",
            running: "Running",
            tty_input: "Stopped (tty input)",
            tty_output: "Stopped (tty output)",
        },
        Shell::Zsh => Words {
            suspended: "suspended",
            stopped: "suspended",
            running: "running",
            tty_input: "suspended (tty input)",
            tty_output: "suspended (tty output)",
        },
        Shell::Fish => Words {
            suspended: "has stopped",
            stopped: "stopped",
            running: "running",
            tty_input: "stopped",
            tty_output: "stopped",
        },
        Shell::Dash => Words {
            suspended: "Stopped",
            stopped: "Stopped",
            running: "Running",
            tty_input: "Stopped (tty input)",
            tty_output: "Stopped (tty output)",
        },
    }
}

/// The command listing jobs with the reason of each stop: bash says "Stopped (tty
/// input)" only in its long listing (plain `jobs` says "Stopped").
fn jobs_cmd(shell: Shell) -> &'static str {
    match shell {
        Shell::Fish => "jobs",
        _ => "jobs -l",
    }
}

/// Checks `$?` after `fg` of a job that ^C ended. fish's `fg` builtin returns 0
/// whatever became of the job, so there is nothing to check.
fn assert_fg_interrupted(s: &ShellSession) {
    if s.current() != Shell::Fish {
        assert_eq!(s.last_status().unwrap(), 130, "{}", s.screen());
    }
}

/// The line of `out` that mentions `what`; fails with the whole output otherwise.
fn line_with<'a>(out: &'a str, what: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no line with {what:?} in:\n{out}"))
}

/// Waits until no process of the session runs `argv` any more.
fn wait_gone(s: &ShellSession, argv: &[&str]) {
    s.wait_until(&format!("{argv:?} to end"), DEFAULT_TIMEOUT, || {
        !s.processes().iter().any(|p| p.cmdline == argv)
    })
    .unwrap();
}

/// Waits until every process of the session running `argv` is stopped (state T).
fn wait_stopped(s: &ShellSession, argv: &[&str]) {
    s.wait_until(&format!("{argv:?} to be stopped"), DEFAULT_TIMEOUT, || {
        let procs: Vec<_> = s
            .processes()
            .into_iter()
            .filter(|p| p.cmdline == argv)
            .collect();
        !procs.is_empty() && procs.iter().all(|p| p.state == 'T')
    })
    .unwrap();
}

const SLEEP: &[&str] = &["sleep", "100"];

/// ^C at `sleep 100` ends it (SIGINT) and `$?` is 130; ^\ (SIGQUIT) gives 131.
fn interrupt_and_quit(l: &Launcher, shell: Shell) {
    let s = l.shell(shell);

    let line = s.start("sleep 100").unwrap();
    s.wait_foreground(SLEEP).unwrap();
    s.send(keys::CTRL_C).unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    wait_gone(&s, SLEEP);
    assert_eq!(s.last_status().unwrap(), 130, "{}", s.screen());

    let line = s.start("sleep 100").unwrap();
    s.wait_foreground(SLEEP).unwrap();
    s.send(keys::CTRL_BACKSLASH).unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    wait_gone(&s, SLEEP);
    assert_eq!(s.last_status().unwrap(), 131, "{}", s.screen());

    // The shell itself survived both.
    assert_eq!(s.run("echo alive").unwrap(), "alive");
}

/// ^Z stops `sleep 100` (the shell says so and `jobs` lists it stopped), `bg`
/// resumes it in the background (`jobs`: running), `fg` brings it back and ^C ends
/// it.
fn suspend_bg_fg(l: &Launcher, shell: Shell) {
    let w = words(shell);
    let s = l.shell(shell);

    let line = s.start("sleep 100").unwrap();
    s.wait_foreground(SLEEP).unwrap();
    s.send(keys::CTRL_Z).unwrap();
    let screen = s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    let said = screen.lines_between(line, screen.cursor_line()).join("\n");
    assert!(
        said.contains(w.suspended),
        "no {:?} after ^Z:\n{screen}",
        w.suspended
    );
    wait_stopped(&s, SLEEP);

    let jobs = s.run(jobs_cmd(shell)).unwrap();
    assert!(
        line_with(&jobs, "sleep 100").contains(w.stopped),
        "jobs:\n{jobs}"
    );

    let line = s.start("bg").unwrap();
    if shell == Shell::Zsh {
        // zsh 5.9 sometimes prints `bg`'s "continued" line and then waits for input
        // without drawing a new prompt (reproduced on a plain pty without the sandbox,
        // about 1 run in 25 under load: a zsh bug, not job control). Enter makes it
        // draw one; what is checked here is the job, not that prompt.
        let grace = std::time::Duration::from_secs(3);
        if s.wait_prompt_after(line, grace).is_err() {
            s.send("\n").unwrap();
            s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
        }
    } else {
        s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    }
    s.wait_until("sleep to run again", DEFAULT_TIMEOUT, || {
        s.processes()
            .iter()
            .any(|p| p.cmdline == SLEEP && p.state != 'T')
    })
    .unwrap();
    let jobs = s.run(jobs_cmd(shell)).unwrap();
    assert!(
        line_with(&jobs, "sleep 100").contains(w.running),
        "jobs:\n{jobs}"
    );

    let line = s.start("fg").unwrap();
    s.wait_foreground(SLEEP).unwrap();
    s.send(keys::CTRL_C).unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    wait_gone(&s, SLEEP);
    assert_fg_interrupted(&s);
    assert!(!s.run("jobs").unwrap().contains("sleep"), "{}", s.screen());
}

/// `cat &` stops on its read from the terminal (SIGTTIN: "Stopped (tty input)");
/// `fg` gives it the terminal, a typed line comes back through cat, ^D ends it.
fn background_read(l: &Launcher, shell: Shell) {
    let w = words(shell);
    let s = l.shell(shell);
    let cat: &[&str] = &["cat"];

    s.run("cat &").unwrap();
    wait_stopped(&s, cat);
    let jobs = s.run(jobs_cmd(shell)).unwrap();
    assert!(
        line_with(&jobs, "cat").contains(w.tty_input),
        "expected {:?} in jobs:\n{jobs}",
        w.tty_input
    );

    let line = s.start("fg").unwrap();
    s.wait_foreground(cat).unwrap();
    s.send("through-cat\r").unwrap();
    // The terminal's echo, then cat's copy.
    s.wait_for(
        until("two lines \"through-cat\"", |sc: &Screen| {
            sc.lines_between(line, sc.cursor_line() + 1)
                .iter()
                .filter(|r| r.as_str() == "through-cat")
                .count()
                == 2
        }),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    s.send(keys::CTRL_D).unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    wait_gone(&s, cat);
    assert_eq!(s.last_status().unwrap(), 0);
}

/// A background job whose reader is a process the job's leader forked (`sh -c 'cat;
/// true'`: the sandbox never saw `cat` before its first read, and its group is the
/// job's, not the foreground): the read stops the job (SIGTTIN) as in Linux, and `fg`
/// lets it read.
fn background_read_by_grandchild(l: &Launcher, shell: Shell) {
    let w = words(shell);
    let s = l.shell(shell);
    let cat: &[&str] = &["cat"];

    s.run("sh -c 'cat; true' &").unwrap();
    wait_stopped(&s, cat);
    let jobs = s.run(jobs_cmd(shell)).unwrap();
    assert!(
        line_with(&jobs, "cat").contains(w.tty_input),
        "expected {:?} in jobs:\n{jobs}",
        w.tty_input
    );

    let line = s.start("fg").unwrap();
    s.wait_foreground(cat).unwrap();
    s.send("via-grandchild\r").unwrap();
    s.wait_for(
        until("two lines \"via-grandchild\"", |sc: &Screen| {
            sc.lines_between(line, sc.cursor_line() + 1)
                .iter()
                .filter(|r| r.as_str() == "via-grandchild")
                .count()
                == 2
        }),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    s.send(keys::CTRL_D).unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    wait_gone(&s, cat);
}

/// With `stty tostop` a background `echo hi` stops on its write (SIGTTOU: "Stopped
/// (tty output)") and `fg` lets it print; with `stty -tostop` it prints at once.
fn background_write(l: &Launcher, shell: Shell) {
    let w = words(shell);
    let s = l.shell(shell);
    // fish runs a builtin `echo &` inside itself (no process): use the external one.
    // And fish puts its own terminal modes (without TOSTOP) back while it reads a
    // command line, so TOSTOP applies only while a foreground job runs: give it one.
    let echo = if shell == Shell::Fish {
        "command echo hi & sleep 1"
    } else {
        "echo hi &"
    };

    s.run("stty tostop").unwrap();
    s.run(echo).unwrap();
    s.wait_until("a stopped process", DEFAULT_TIMEOUT, || {
        s.processes().iter().any(|p| p.state == 'T')
    })
    .unwrap();
    let jobs = s.run(jobs_cmd(shell)).unwrap();
    assert!(
        line_with(&jobs, "echo hi").contains(w.tty_output),
        "expected {:?} in jobs:\n{jobs}",
        w.tty_output
    );
    let out = s.run("fg").unwrap();
    assert!(
        out.lines().any(|l| l == "hi"),
        "fg printed:\n{out}\nscreen:\n{}",
        s.screen_text()
    );
    s.wait_until("no stopped process", DEFAULT_TIMEOUT, || {
        !s.processes().iter().any(|p| p.state == 'T')
    })
    .unwrap();

    s.run("stty -tostop").unwrap();
    let line = s.start(echo).unwrap();
    // "hi" may land after a prompt the shell already drew ("dash-e2e$ hi").
    s.wait_for(
        until("a line ending in \"hi\"", |sc: &Screen| {
            sc.lines_between(line, sc.cursor_line() + 1)
                .iter()
                .any(|r| r == "hi" || r.ends_with("$ hi"))
        }),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    // Back to a clean prompt (an empty line).
    let now = s.screen().cursor_line();
    s.send("\r").unwrap();
    s.wait_prompt_after(now, DEFAULT_TIMEOUT).unwrap();
    assert!(
        !s.processes().iter().any(|p| p.state == 'T'),
        "{}",
        s.describe_processes()
    );
}

/// A resize delivers SIGWINCH to the shell waiting at its prompt (its trap runs) and
/// `stty size` reports the new size.
fn resize(l: &Launcher, shell: Shell) {
    let s = l.shell(shell);
    // The output "sigwinch" differs from the command line (`sig""winch`).
    let trap = if shell == Shell::Fish {
        "function on_winch --on-signal WINCH; echo sig''winch; end"
    } else {
        "trap 'echo sig\"\"winch' WINCH"
    };
    let line = {
        s.run(trap).unwrap();
        s.screen().cursor_line()
    };
    let saw_winch = |sc: &Screen| {
        sc.lines_between(line - 1, sc.cursor_line() + 1)
            .iter()
            .any(|r| r == "sigwinch" || r.ends_with("$ sigwinch"))
    };
    // Through the sandbox SIGWINCH reaches the shell a moment after the resize (the
    // loader passes it on): this returns once it has.
    s.resize_delivered(30, 100).unwrap();
    if shell != Shell::Dash {
        // bash, zsh and fish run the trap while they wait for input.
        s.wait_for(until("sigwinch from the trap", saw_winch), DEFAULT_TIMEOUT)
            .unwrap();
    }
    // dash runs traps only once it has read a command line: give it one (the signal
    // came before it, so the trap runs after this line).
    let now = s.screen().cursor_line();
    s.send("\r").unwrap();
    s.wait_prompt_after(now, DEFAULT_TIMEOUT).unwrap();
    s.wait_for(until("sigwinch from the trap", saw_winch), DEFAULT_TIMEOUT)
        .unwrap();
    assert_eq!(s.run("stty size").unwrap(), "30 100");

    // A second resize, without the trap.
    let untrap = if shell == Shell::Fish {
        "functions -e on_winch"
    } else {
        "trap - WINCH"
    };
    s.run(untrap).unwrap();
    // The shell has its SIGWINCH before anything is typed (fish redraws its prompt on
    // it), as on a real terminal.
    s.resize_delivered(35, 90).unwrap();
    assert_eq!(s.run("stty size").unwrap(), "35 90");
}

/// `sleep 100 | cat` is one job: ^Z stops both, `jobs` lists one stopped job,
/// `fg` resumes both, ^C ends both.
fn pipeline(l: &Launcher, shell: Shell) {
    let w = words(shell);
    let s = l.shell(shell);
    let cat: &[&str] = &["cat"];

    let line = s.start("sleep 100 | cat").unwrap();
    let sleep = s.wait_foreground(SLEEP).unwrap();
    let cat_proc = s.wait_foreground(cat).unwrap();
    assert_eq!(
        sleep.pgrp, cat_proc.pgrp,
        "one process group for the pipeline"
    );
    s.send(keys::CTRL_Z).unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    wait_stopped(&s, SLEEP);
    wait_stopped(&s, cat);

    // The short listing: one line per job (the long one has a line per process).
    let jobs = s.run("jobs").unwrap();
    let listed: Vec<&str> = jobs
        .lines()
        .filter(|l| l.contains("sleep 100") || l.contains(w.stopped))
        .collect();
    assert_eq!(listed.len(), 1, "one job expected in:\n{jobs}");
    assert!(
        listed[0].contains("sleep 100 | cat") && listed[0].contains(w.stopped),
        "jobs:\n{jobs}"
    );

    let line = s.start("fg").unwrap();
    s.wait_foreground(SLEEP).unwrap();
    s.wait_foreground(cat).unwrap();
    s.send(keys::CTRL_C).unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    wait_gone(&s, SLEEP);
    wait_gone(&s, cat);
    assert_fg_interrupted(&s);
}

/// A bash started inside the shell takes the terminal, runs and suspends its own
/// job, and on `exit` hands the terminal back: the outer shell's prompt works, a
/// foreground `sleep 1` runs to the end and ^C still interrupts.
fn nested_shell(l: &Launcher, shell: Shell) {
    let mut s = l.shell(shell);
    let outer = s.prompt().to_string();
    let inner = "inner-e2e$ ";
    let line = s
        .start(&format!(
            "env PS1='{inner}' HISTFILE=/dev/null bash --norc --noprofile -i"
        ))
        .unwrap();
    s.set_prompt(Shell::Bash, inner);
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();

    let line = s.start("sleep 100").unwrap();
    s.wait_foreground(SLEEP).unwrap();
    s.send(keys::CTRL_Z).unwrap();
    let screen = s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    assert!(screen.contains("Stopped"), "{screen}");
    wait_stopped(&s, SLEEP);
    let line = s.start("fg").unwrap();
    s.wait_foreground(SLEEP).unwrap();
    s.send(keys::CTRL_C).unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    wait_gone(&s, SLEEP);
    assert_eq!(s.last_status().unwrap(), 130);

    let line = s.start("exit").unwrap();
    s.set_prompt(shell, &outer);
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(s.run("echo outer-ok").unwrap(), "outer-ok");
    s.run("sleep 1").unwrap();
    assert_eq!(s.last_status().unwrap(), 0);
    let line = s.start("sleep 100").unwrap();
    s.wait_foreground(SLEEP).unwrap();
    s.send(keys::CTRL_C).unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(s.last_status().unwrap(), 130);
}

e2e!(direct_interrupt_bash, sandbox_interrupt_bash, pty_interrupt_bash: interrupt_and_quit(Shell::Bash));
e2e!(direct_interrupt_zsh, sandbox_interrupt_zsh, pty_interrupt_zsh: interrupt_and_quit(Shell::Zsh));
e2e!(direct_interrupt_fish, sandbox_interrupt_fish, pty_interrupt_fish: interrupt_and_quit(Shell::Fish));
e2e!(direct_interrupt_dash, sandbox_interrupt_dash, pty_interrupt_dash: interrupt_and_quit(Shell::Dash));

e2e!(direct_suspend_bash, sandbox_suspend_bash, pty_suspend_bash: suspend_bg_fg(Shell::Bash));
e2e!(direct_suspend_zsh, sandbox_suspend_zsh, pty_suspend_zsh: suspend_bg_fg(Shell::Zsh));
e2e!(direct_suspend_fish, sandbox_suspend_fish, pty_suspend_fish: suspend_bg_fg(Shell::Fish));
e2e!(direct_suspend_dash, sandbox_suspend_dash, pty_suspend_dash: suspend_bg_fg(Shell::Dash));

e2e!(direct_background_read_bash, sandbox_background_read_bash, pty_background_read_bash: background_read(Shell::Bash));
e2e!(direct_background_read_zsh, sandbox_background_read_zsh, pty_background_read_zsh: background_read(Shell::Zsh));
e2e!(direct_background_read_fish, sandbox_background_read_fish, pty_background_read_fish: background_read(Shell::Fish));
e2e!(direct_background_read_dash, sandbox_background_read_dash, pty_background_read_dash: background_read(Shell::Dash));
e2e!(direct_background_read_by_grandchild_bash, sandbox_background_read_by_grandchild_bash, pty_background_read_by_grandchild_bash: background_read_by_grandchild(Shell::Bash));
e2e!(direct_background_read_by_grandchild_zsh, sandbox_background_read_by_grandchild_zsh, pty_background_read_by_grandchild_zsh: background_read_by_grandchild(Shell::Zsh));
e2e!(direct_background_read_by_grandchild_fish, sandbox_background_read_by_grandchild_fish, pty_background_read_by_grandchild_fish: background_read_by_grandchild(Shell::Fish));
e2e!(direct_background_read_by_grandchild_dash, sandbox_background_read_by_grandchild_dash, pty_background_read_by_grandchild_dash: background_read_by_grandchild(Shell::Dash));

e2e!(direct_background_write_bash, sandbox_background_write_bash, pty_background_write_bash: background_write(Shell::Bash));
e2e!(direct_background_write_zsh, sandbox_background_write_zsh, pty_background_write_zsh: background_write(Shell::Zsh));
e2e!(direct_background_write_fish, sandbox_background_write_fish, pty_background_write_fish: background_write(Shell::Fish));
e2e!(direct_background_write_dash, sandbox_background_write_dash, pty_background_write_dash: background_write(Shell::Dash));

e2e!(direct_resize_bash, sandbox_resize_bash, pty_resize_bash: resize(Shell::Bash));
e2e!(direct_resize_zsh, sandbox_resize_zsh, pty_resize_zsh: resize(Shell::Zsh));
e2e!(direct_resize_fish, sandbox_resize_fish, pty_resize_fish: resize(Shell::Fish));
e2e!(direct_resize_dash, sandbox_resize_dash, pty_resize_dash: resize(Shell::Dash));

e2e!(direct_pipeline_bash, sandbox_pipeline_bash, pty_pipeline_bash: pipeline(Shell::Bash));
e2e!(direct_pipeline_zsh, sandbox_pipeline_zsh, pty_pipeline_zsh: pipeline(Shell::Zsh));
e2e!(direct_pipeline_fish, sandbox_pipeline_fish, pty_pipeline_fish: pipeline(Shell::Fish));
e2e!(direct_pipeline_dash, sandbox_pipeline_dash, pty_pipeline_dash: pipeline(Shell::Dash));

e2e!(direct_nested_bash, sandbox_nested_bash, pty_nested_bash: nested_shell(Shell::Bash));
e2e!(direct_nested_in_zsh, sandbox_nested_in_zsh, pty_nested_in_zsh: nested_shell(Shell::Zsh));
e2e!(direct_nested_in_fish, sandbox_nested_in_fish, pty_nested_in_fish: nested_shell(Shell::Fish));
e2e!(direct_nested_in_dash, sandbox_nested_in_dash, pty_nested_in_dash: nested_shell(Shell::Dash));
