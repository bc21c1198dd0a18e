//! The scenario format: a small line-oriented language a person can read and write.
//!
//! ```text
//! # A background reader gets SIGTTIN and stops.
//! scenario bg-read-stops
//! init fork sh              # actor `sh` is a new child of `init`
//! sh setsid
//! sh open tty               # opens the terminal O_RDWR; result: the fd
//! sh fork job
//! job setpgid 0 0
//! job read 0 16             # fd 0 of `job` (inherited), up to 16 bytes
//! sh wait4 job untraced
//! type hello^M              # bytes typed at the terminal (^X escapes)
//! ```
//!
//! Every non-comment line is one step: `ACTOR OP ARGS…`, or a terminal step: `type`,
//! `winsize ROWS COLS`, `hangup`. PID arguments may be numbers, actor names (their
//! PID), `-NAME` (minus their PID), or `pgid:NAME` / `-pgid:NAME` for the
//! actor's process group ID at the time of the step.

use sandbox_sentry::sigaction::{SA_NOCLDSTOP, SA_NOCLDWAIT, SA_NODEFER, SA_RESETHAND, SA_RESTART};
use sandbox_sentry::wait;
use sandbox_sentry::{Handler, SigSet, Signal};
use std::fmt;

/// A parse error with its line number.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

/// A PID-valued argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PidArg {
    Num(i32),
    Actor(String),
    NegActor(String),
    PgidOf(String),
    NegPgidOf(String),
}

/// Terminal local/input flags a scenario may switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TermFlag {
    Icanon,
    Echo,
    Isig,
    Tostop,
    Noflsh,
    Icrnl,
    Echoctl,
    Ixon,
    Ixany,
}

impl TermFlag {
    pub const ALL: [TermFlag; 9] = [
        TermFlag::Icanon,
        TermFlag::Echo,
        TermFlag::Isig,
        TermFlag::Tostop,
        TermFlag::Noflsh,
        TermFlag::Icrnl,
        TermFlag::Echoctl,
        TermFlag::Ixon,
        TermFlag::Ixany,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TermFlag::Icanon => "icanon",
            TermFlag::Echo => "echo",
            TermFlag::Isig => "isig",
            TermFlag::Tostop => "tostop",
            TermFlag::Noflsh => "noflsh",
            TermFlag::Icrnl => "icrnl",
            TermFlag::Echoctl => "echoctl",
            TermFlag::Ixon => "ixon",
            TermFlag::Ixany => "ixany",
        }
    }

    fn parse(s: &str) -> Option<TermFlag> {
        TermFlag::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// `tcflow` actions (TCXONC) on output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowOp {
    /// TCOOFF.
    OutputOff,
    /// TCOON.
    OutputOn,
}

impl FlowOp {
    pub fn name(self) -> &'static str {
        match self {
            FlowOp::OutputOff => "ooff",
            FlowOp::OutputOn => "oon",
        }
    }
}

/// `sigprocmask` how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskHow {
    Block,
    Unblock,
    Set,
}

/// `waitid` id type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    All,
    Pid,
    Pgid,
}

/// One operation performed by an actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// fork(): the child becomes actor `child`.
    Fork {
        child: String,
    },
    /// A new thread of the actor's process, actor `child`.
    Thread {
        child: String,
    },
    /// execve of the puppet itself (handlers reset, ignored stay ignored).
    Exec,
    Setpgid {
        pid: PidArg,
        pgid: PidArg,
    },
    Setsid,
    Getpgid {
        pid: PidArg,
    },
    Getsid {
        pid: PidArg,
    },
    /// open the terminal's slave.
    Open {
        noctty: bool,
        nonblock: bool,
        wronly: bool,
    },
    /// open("/dev/tty").
    OpenDevTty,
    Close {
        fd: i32,
    },
    Dup {
        fd: i32,
    },
    Tcsetpgrp {
        fd: i32,
        pgrp: PidArg,
    },
    Tcgetpgrp {
        fd: i32,
    },
    Tcgetsid {
        fd: i32,
    },
    Tiocsctty {
        fd: i32,
        steal: bool,
    },
    Tiocnotty {
        fd: i32,
    },
    Sigaction {
        sig: Signal,
        handler: Handler,
        flags: u32,
    },
    Sigprocmask {
        how: MaskHow,
        set: SigSet,
    },
    Kill {
        pid: PidArg,
        sig: i32,
    },
    Killpg {
        pgrp: PidArg,
        sig: i32,
    },
    Tgkill {
        tgid: PidArg,
        tid: PidArg,
        sig: i32,
    },
    Read {
        fd: i32,
        count: usize,
    },
    Write {
        fd: i32,
        data: Vec<u8>,
    },
    /// tcflow(fd, TCOOFF|TCOON).
    Tcflow {
        fd: i32,
        action: FlowOp,
    },
    /// tcsetattr(TCSANOW) with flags switched on/off.
    Stty {
        fd: i32,
        on: Vec<TermFlag>,
        off: Vec<TermFlag>,
    },
    /// exit_group(code).
    Exit {
        code: i32,
    },
    /// exit(code) of this thread only.
    ThreadExit {
        code: i32,
    },
    Wait4 {
        pid: PidArg,
        options: i32,
    },
    Waitid {
        kind: IdKind,
        id: PidArg,
        options: i32,
    },
}

impl Op {
    /// The operation with every PID argument replaced by `f` of it (executors resolve
    /// actor names to numbers once, when the call is made, as the kernel reads its
    /// arguments once).
    pub fn map_pids(&self, f: impl Fn(&PidArg) -> PidArg) -> Op {
        match self {
            Op::Setpgid { pid, pgid } => Op::Setpgid {
                pid: f(pid),
                pgid: f(pgid),
            },
            Op::Getpgid { pid } => Op::Getpgid { pid: f(pid) },
            Op::Getsid { pid } => Op::Getsid { pid: f(pid) },
            Op::Tcsetpgrp { fd, pgrp } => Op::Tcsetpgrp {
                fd: *fd,
                pgrp: f(pgrp),
            },
            Op::Kill { pid, sig } => Op::Kill {
                pid: f(pid),
                sig: *sig,
            },
            Op::Killpg { pgrp, sig } => Op::Killpg {
                pgrp: f(pgrp),
                sig: *sig,
            },
            Op::Tgkill { tgid, tid, sig } => Op::Tgkill {
                tgid: f(tgid),
                tid: f(tid),
                sig: *sig,
            },
            Op::Wait4 { pid, options } => Op::Wait4 {
                pid: f(pid),
                options: *options,
            },
            Op::Waitid { kind, id, options } => Op::Waitid {
                kind: *kind,
                id: f(id),
                options: *options,
            },
            other => other.clone(),
        }
    }
}

/// One step of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Actor {
        actor: String,
        op: Op,
    },
    /// Bytes typed at the terminal.
    Type(Vec<u8>),
    /// The terminal is resized.
    Winsize {
        rows: u16,
        cols: u16,
    },
    /// The terminal (pty master) is closed.
    Hangup,
}

/// A scenario: a name and its steps (with their source text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    pub name: String,
    pub steps: Vec<Step>,
}

fn err(line: usize, msg: impl Into<String>) -> ParseError {
    ParseError {
        line,
        msg: msg.into(),
    }
}

fn parse_int(line: usize, s: &str) -> Result<i32, ParseError> {
    s.parse::<i32>()
        .map_err(|_| err(line, format!("expected a number, found `{s}`")))
}

fn parse_pid(s: &str) -> PidArg {
    if let Ok(n) = s.parse::<i32>() {
        PidArg::Num(n)
    } else if let Some(a) = s.strip_prefix("-pgid:") {
        PidArg::NegPgidOf(a.to_string())
    } else if let Some(a) = s.strip_prefix("pgid:") {
        PidArg::PgidOf(a.to_string())
    } else if let Some(a) = s.strip_prefix('-') {
        PidArg::NegActor(a.to_string())
    } else {
        PidArg::Actor(s.to_string())
    }
}

fn parse_sig(line: usize, s: &str) -> Result<i32, ParseError> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    Signal::from_name(s)
        .map(|s| s.number())
        .ok_or_else(|| err(line, format!("unknown signal `{s}`")))
}

fn parse_signal(line: usize, s: &str) -> Result<Signal, ParseError> {
    let n = parse_sig(line, s)?;
    Signal::new(n).map_err(|_| err(line, format!("invalid signal `{s}`")))
}

/// Decodes `^X` (control characters), `^?` (DEL), `\n`, `\r`, `\t`, `\\`, `\s`
/// (space) and `\xHH`.
pub fn decode_text(line: usize, s: &str) -> Result<Vec<u8>, ParseError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'^' if i + 1 < b.len() => {
                let c = b[i + 1];
                out.push(if c == b'?' {
                    0x7f
                } else {
                    c.to_ascii_uppercase() ^ 0x40
                });
                i += 2;
            }
            b'\\' if i + 1 < b.len() => {
                match b[i + 1] {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b's' => out.push(b' '),
                    b'\\' => out.push(b'\\'),
                    b'^' => out.push(b'^'),
                    b'x' if i + 3 < b.len() => {
                        let hex = std::str::from_utf8(&b[i + 2..i + 4])
                            .map_err(|_| err(line, "bad \\x escape"))?;
                        let v = u8::from_str_radix(hex, 16)
                            .map_err(|_| err(line, format!("bad \\x escape `{hex}`")))?;
                        out.push(v);
                        i += 2;
                    }
                    other => {
                        return Err(err(line, format!("unknown escape `\\{}`", other as char)))
                    }
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Encodes bytes in the form `decode_text` reads.
pub fn encode_text(data: &[u8]) -> String {
    let mut s = String::new();
    for &c in data {
        match c {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b' ' => s.push_str("\\s"),
            b'\\' => s.push_str("\\\\"),
            b'^' => s.push_str("\\^"),
            0x7f => s.push_str("^?"),
            c if c < 0x20 => {
                s.push('^');
                s.push((c ^ 0x40) as char);
            }
            c if c.is_ascii_graphic() => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

fn parse_wait_options(line: usize, s: &str) -> Result<i32, ParseError> {
    let mut o = 0;
    if s == "0" || s == "none" {
        return Ok(0);
    }
    for w in s.split(',') {
        o |= match w {
            "nohang" => wait::WNOHANG,
            "untraced" | "stopped" => wait::WUNTRACED,
            "exited" => wait::WEXITED,
            "continued" => wait::WCONTINUED,
            "nowait" => wait::WNOWAIT,
            "nothread" => wait::__WNOTHREAD,
            "all" => wait::__WALL,
            "clone" => wait::__WCLONE,
            other => return Err(err(line, format!("unknown wait option `{other}`"))),
        };
    }
    Ok(o)
}

fn wait_options_text(o: i32) -> String {
    let names = [
        (wait::WNOHANG, "nohang"),
        (wait::WUNTRACED, "untraced"),
        (wait::WEXITED, "exited"),
        (wait::WCONTINUED, "continued"),
        (wait::WNOWAIT, "nowait"),
        (wait::__WNOTHREAD, "nothread"),
        (wait::__WALL, "all"),
        (wait::__WCLONE, "clone"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| o & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(",")
    }
}

fn sig_list(line: usize, s: &str) -> Result<SigSet, ParseError> {
    let mut set = SigSet::EMPTY;
    if s == "none" {
        return Ok(set);
    }
    for w in s.split(',') {
        set.add(parse_signal(line, w)?);
    }
    Ok(set)
}

fn fd_arg(line: usize, w: &[&str], i: usize) -> Result<i32, ParseError> {
    let s = w.get(i).ok_or_else(|| err(line, "missing fd"))?;
    parse_int(line, s)
}

fn word<'a>(line: usize, w: &[&'a str], i: usize, what: &str) -> Result<&'a str, ParseError> {
    w.get(i)
        .copied()
        .ok_or_else(|| err(line, format!("missing {what}")))
}

/// Parses one operation given as words (as a puppet receives it).
pub fn parse_op_words(w: &[&str]) -> Result<Op, ParseError> {
    parse_op(0, w)
}

/// Parses one operation (the words after the actor name).
fn parse_op(line: usize, w: &[&str]) -> Result<Op, ParseError> {
    let op = word(line, w, 0, "operation")?;
    let arity = |n: usize| -> Result<(), ParseError> {
        if w.len() != n + 1 {
            Err(err(line, format!("`{op}` takes {n} argument(s)")))
        } else {
            Ok(())
        }
    };
    Ok(match op {
        "fork" => {
            arity(1)?;
            Op::Fork {
                child: w[1].to_string(),
            }
        }
        "thread" => {
            arity(1)?;
            Op::Thread {
                child: w[1].to_string(),
            }
        }
        "exec" => {
            arity(0)?;
            Op::Exec
        }
        "setpgid" => {
            arity(2)?;
            Op::Setpgid {
                pid: parse_pid(w[1]),
                pgid: parse_pid(w[2]),
            }
        }
        "setsid" => {
            arity(0)?;
            Op::Setsid
        }
        "getpgid" => {
            arity(1)?;
            Op::Getpgid {
                pid: parse_pid(w[1]),
            }
        }
        "getsid" => {
            arity(1)?;
            Op::Getsid {
                pid: parse_pid(w[1]),
            }
        }
        "open" => {
            let what = word(line, w, 1, "what to open (tty or devtty)")?;
            let mut noctty = false;
            let mut nonblock = false;
            let mut wronly = false;
            for f in &w[2..] {
                match *f {
                    "noctty" => noctty = true,
                    "nonblock" => nonblock = true,
                    "wronly" => wronly = true,
                    other => return Err(err(line, format!("unknown open flag `{other}`"))),
                }
            }
            match what {
                "tty" => Op::Open {
                    noctty,
                    nonblock,
                    wronly,
                },
                "devtty" if !noctty && !nonblock && !wronly => Op::OpenDevTty,
                other => return Err(err(line, format!("cannot open `{other}`"))),
            }
        }
        "close" => {
            arity(1)?;
            Op::Close {
                fd: fd_arg(line, w, 1)?,
            }
        }
        "dup" => {
            arity(1)?;
            Op::Dup {
                fd: fd_arg(line, w, 1)?,
            }
        }
        "tcsetpgrp" => {
            arity(2)?;
            Op::Tcsetpgrp {
                fd: fd_arg(line, w, 1)?,
                pgrp: parse_pid(w[2]),
            }
        }
        "tcgetpgrp" => {
            arity(1)?;
            Op::Tcgetpgrp {
                fd: fd_arg(line, w, 1)?,
            }
        }
        "tcgetsid" => {
            arity(1)?;
            Op::Tcgetsid {
                fd: fd_arg(line, w, 1)?,
            }
        }
        "tiocsctty" => {
            arity(2)?;
            Op::Tiocsctty {
                fd: fd_arg(line, w, 1)?,
                steal: parse_int(line, w[2])? == 1,
            }
        }
        "tiocnotty" => {
            arity(1)?;
            Op::Tiocnotty {
                fd: fd_arg(line, w, 1)?,
            }
        }
        "sigaction" => {
            let sig = parse_signal(line, word(line, w, 1, "signal")?)?;
            let handler = match word(line, w, 2, "handler")? {
                "default" => Handler::Default,
                "ignore" => Handler::Ignore,
                "handler" => Handler::Catch,
                other => return Err(err(line, format!("unknown handler `{other}`"))),
            };
            let mut flags = 0;
            for f in &w[3..] {
                flags |= match *f {
                    "restart" => SA_RESTART,
                    "nocldstop" => SA_NOCLDSTOP,
                    "nocldwait" => SA_NOCLDWAIT,
                    "resethand" => SA_RESETHAND,
                    "nodefer" => SA_NODEFER,
                    other => return Err(err(line, format!("unknown sigaction flag `{other}`"))),
                };
            }
            Op::Sigaction {
                sig,
                handler,
                flags,
            }
        }
        "sigprocmask" => {
            arity(2)?;
            let how = match w[1] {
                "block" => MaskHow::Block,
                "unblock" => MaskHow::Unblock,
                "set" => MaskHow::Set,
                other => return Err(err(line, format!("unknown sigprocmask how `{other}`"))),
            };
            Op::Sigprocmask {
                how,
                set: sig_list(line, w[2])?,
            }
        }
        "kill" => {
            arity(2)?;
            Op::Kill {
                pid: parse_pid(w[1]),
                sig: parse_sig(line, w[2])?,
            }
        }
        "killpg" => {
            arity(2)?;
            Op::Killpg {
                pgrp: parse_pid(w[1]),
                sig: parse_sig(line, w[2])?,
            }
        }
        "tgkill" => {
            arity(3)?;
            Op::Tgkill {
                tgid: parse_pid(w[1]),
                tid: parse_pid(w[2]),
                sig: parse_sig(line, w[3])?,
            }
        }
        "read" => {
            arity(2)?;
            let count = parse_int(line, w[2])?;
            if !(1..=4096).contains(&count) {
                return Err(err(line, "read count must be 1..=4096"));
            }
            Op::Read {
                fd: fd_arg(line, w, 1)?,
                count: count as usize,
            }
        }
        "write" => {
            arity(2)?;
            Op::Write {
                fd: fd_arg(line, w, 1)?,
                data: decode_text(line, w[2])?,
            }
        }
        "tcflow" => {
            arity(2)?;
            let action = match w[2] {
                "ooff" => FlowOp::OutputOff,
                "oon" => FlowOp::OutputOn,
                other => return Err(err(line, format!("unknown tcflow action `{other}`"))),
            };
            Op::Tcflow {
                fd: fd_arg(line, w, 1)?,
                action,
            }
        }
        "stty" => {
            let fd = fd_arg(line, w, 1)?;
            let mut on = Vec::new();
            let mut off = Vec::new();
            for f in &w[2..] {
                let (list, name) = if let Some(n) = f.strip_prefix('-') {
                    (&mut off, n)
                } else {
                    (&mut on, f.strip_prefix('+').unwrap_or(f))
                };
                list.push(
                    TermFlag::parse(name)
                        .ok_or_else(|| err(line, format!("unknown terminal flag `{name}`")))?,
                );
            }
            Op::Stty { fd, on, off }
        }
        "exit" => {
            arity(1)?;
            Op::Exit {
                code: parse_int(line, w[1])?,
            }
        }
        "thread_exit" => {
            arity(1)?;
            Op::ThreadExit {
                code: parse_int(line, w[1])?,
            }
        }
        "wait4" => {
            arity(2)?;
            Op::Wait4 {
                pid: parse_pid(w[1]),
                options: parse_wait_options(line, w[2])?,
            }
        }
        "waitid" => {
            arity(3)?;
            let kind = match w[1] {
                "all" => IdKind::All,
                "pid" => IdKind::Pid,
                "pgid" => IdKind::Pgid,
                other => return Err(err(line, format!("unknown waitid idtype `{other}`"))),
            };
            Op::Waitid {
                kind,
                id: parse_pid(w[2]),
                options: parse_wait_options(line, w[3])?,
            }
        }
        other => return Err(err(line, format!("unknown operation `{other}`"))),
    })
}

impl Scenario {
    /// Parses scenario text.
    pub fn parse(text: &str) -> Result<Scenario, ParseError> {
        let mut name = None;
        let mut steps = Vec::new();
        let mut actors: Vec<String> = vec!["init".to_string()];
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let w: Vec<&str> = content.split_whitespace().collect();
            match w[0] {
                "scenario" => {
                    if w.len() != 2 {
                        return Err(err(line, "`scenario` takes a name"));
                    }
                    if name.is_some() {
                        return Err(err(line, "a second `scenario` line"));
                    }
                    name = Some(w[1].to_string());
                }
                "type" => {
                    if w.len() != 2 {
                        return Err(err(
                            line,
                            "`type` takes one word of text (use \\s for space)",
                        ));
                    }
                    steps.push(Step::Type(decode_text(line, w[1])?));
                }
                "winsize" => {
                    if w.len() != 3 {
                        return Err(err(line, "`winsize` takes ROWS COLS"));
                    }
                    let rows = parse_int(line, w[1])?;
                    let cols = parse_int(line, w[2])?;
                    let (Ok(rows), Ok(cols)) = (u16::try_from(rows), u16::try_from(cols)) else {
                        return Err(err(line, "window size out of range"));
                    };
                    steps.push(Step::Winsize { rows, cols });
                }
                "hangup" => {
                    if w.len() != 1 {
                        return Err(err(line, "`hangup` takes no argument"));
                    }
                    steps.push(Step::Hangup);
                }
                actor => {
                    if !actors.iter().any(|a| a == actor) {
                        return Err(err(
                            line,
                            format!("unknown actor `{actor}` (create it with fork or thread)"),
                        ));
                    }
                    let op = parse_op(line, &w[1..])?;
                    if let Op::Fork { child } | Op::Thread { child } = &op {
                        if actors.iter().any(|a| a == child) || child == "init" {
                            return Err(err(line, format!("actor `{child}` already exists")));
                        }
                        if child.parse::<i32>().is_ok()
                            || child.starts_with('-')
                            || child.contains(':')
                        {
                            return Err(err(line, format!("`{child}` cannot be an actor name")));
                        }
                        actors.push(child.clone());
                    }
                    steps.push(Step::Actor {
                        actor: actor.to_string(),
                        op,
                    });
                }
            }
        }
        let name = name.ok_or_else(|| err(0, "missing `scenario NAME` line"))?;
        Ok(Scenario { name, steps })
    }
}

impl fmt::Display for PidArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidArg::Num(n) => write!(f, "{n}"),
            PidArg::Actor(a) => write!(f, "{a}"),
            PidArg::NegActor(a) => write!(f, "-{a}"),
            PidArg::PgidOf(a) => write!(f, "pgid:{a}"),
            PidArg::NegPgidOf(a) => write!(f, "-pgid:{a}"),
        }
    }
}

fn sigset_text(s: SigSet) -> String {
    if s.is_empty() {
        "none".into()
    } else {
        s.iter().map(|s| s.name()).collect::<Vec<_>>().join(",")
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sig = crate::trace::signal_name;
        match self {
            Op::Fork { child } => write!(f, "fork {child}"),
            Op::Thread { child } => write!(f, "thread {child}"),
            Op::Exec => write!(f, "exec"),
            Op::Setpgid { pid, pgid } => write!(f, "setpgid {pid} {pgid}"),
            Op::Setsid => write!(f, "setsid"),
            Op::Getpgid { pid } => write!(f, "getpgid {pid}"),
            Op::Getsid { pid } => write!(f, "getsid {pid}"),
            Op::Open {
                noctty,
                nonblock,
                wronly,
            } => {
                write!(f, "open tty")?;
                if *noctty {
                    write!(f, " noctty")?;
                }
                if *nonblock {
                    write!(f, " nonblock")?;
                }
                if *wronly {
                    write!(f, " wronly")?;
                }
                Ok(())
            }
            Op::OpenDevTty => write!(f, "open devtty"),
            Op::Close { fd } => write!(f, "close {fd}"),
            Op::Dup { fd } => write!(f, "dup {fd}"),
            Op::Tcsetpgrp { fd, pgrp } => write!(f, "tcsetpgrp {fd} {pgrp}"),
            Op::Tcgetpgrp { fd } => write!(f, "tcgetpgrp {fd}"),
            Op::Tcgetsid { fd } => write!(f, "tcgetsid {fd}"),
            Op::Tiocsctty { fd, steal } => write!(f, "tiocsctty {fd} {}", u8::from(*steal)),
            Op::Tiocnotty { fd } => write!(f, "tiocnotty {fd}"),
            Op::Sigaction {
                sig,
                handler,
                flags,
            } => {
                let h = match handler {
                    Handler::Default => "default",
                    Handler::Ignore => "ignore",
                    Handler::Catch => "handler",
                };
                write!(f, "sigaction {sig} {h}")?;
                for (bit, name) in [
                    (SA_RESTART, "restart"),
                    (SA_NOCLDSTOP, "nocldstop"),
                    (SA_NOCLDWAIT, "nocldwait"),
                    (SA_RESETHAND, "resethand"),
                    (SA_NODEFER, "nodefer"),
                ] {
                    if flags & bit != 0 {
                        write!(f, " {name}")?;
                    }
                }
                Ok(())
            }
            Op::Sigprocmask { how, set } => {
                let h = match how {
                    MaskHow::Block => "block",
                    MaskHow::Unblock => "unblock",
                    MaskHow::Set => "set",
                };
                write!(f, "sigprocmask {h} {}", sigset_text(*set))
            }
            Op::Kill { pid, sig: s } => write!(f, "kill {pid} {}", sig(*s)),
            Op::Killpg { pgrp, sig: s } => write!(f, "killpg {pgrp} {}", sig(*s)),
            Op::Tgkill { tgid, tid, sig: s } => write!(f, "tgkill {tgid} {tid} {}", sig(*s)),
            Op::Read { fd, count } => write!(f, "read {fd} {count}"),
            Op::Write { fd, data } => write!(f, "write {fd} {}", encode_text(data)),
            Op::Tcflow { fd, action } => write!(f, "tcflow {fd} {}", action.name()),
            Op::Stty { fd, on, off } => {
                write!(f, "stty {fd}")?;
                for x in on {
                    write!(f, " +{}", x.name())?;
                }
                for x in off {
                    write!(f, " -{}", x.name())?;
                }
                Ok(())
            }
            Op::Exit { code } => write!(f, "exit {code}"),
            Op::ThreadExit { code } => write!(f, "thread_exit {code}"),
            Op::Wait4 { pid, options } => write!(f, "wait4 {pid} {}", wait_options_text(*options)),
            Op::Waitid { kind, id, options } => {
                let k = match kind {
                    IdKind::All => "all",
                    IdKind::Pid => "pid",
                    IdKind::Pgid => "pgid",
                };
                write!(f, "waitid {k} {id} {}", wait_options_text(*options))
            }
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Actor { actor, op } => write!(f, "{actor} {op}"),
            Step::Type(t) => write!(f, "type {}", encode_text(t)),
            Step::Winsize { rows, cols } => write!(f, "winsize {rows} {cols}"),
            Step::Hangup => write!(f, "hangup"),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scenario {}", self.name)?;
        for s in &self.steps {
            writeln!(f, "{s}")?;
        }
        Ok(())
    }
}
