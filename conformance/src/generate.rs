//! Random scenarios: seeded, reproducible, and runnable on Linux without hanging.
//!
//! A scenario is grown one step at a time. After each step the prefix is played on the
//! sentry executor, and the next operation is given only to an actor that is running
//! there (so steps are rarely skipped). Steps are drawn with weights that favour job
//! control: process groups, sessions, the terminal's foreground group, signals with
//! every selector, stops and continues, waits, reads and writes from the foreground and
//! the background, and typed control characters.
//!
//! What is never generated, because Linux itself would misbehave or the outcome would
//! depend on scheduling:
//! - `init` exiting (the namespace would die with it);
//! - a SA_RESTART handler for SIGTTIN or SIGTTOU (a background read or write would
//!   restart forever);
//! - a process-directed signal to a process with more than one live thread when a
//!   handler could run in either thread (which thread Linux picks depends on which
//!   one already has a signal pending) — threads only make calls of their own;
//! - a step whose outcome depends on which of several woken processes runs first (the
//!   sentry executor marks it, [`crate::trace::StepRecord`]'s `race`): a process
//!   blocked in a wait killed while a child of it dies or stops (the woken waiter
//!   rescans its children before it acts on its fatal signal, so whether it reaps the
//!   child first is scheduling), a blocked wait returning while several of the
//!   waiter's children change state (it returns the first one to change), a signal
//!   interrupting one of several readers waiting on the terminal (whether it takes the
//!   read lock back before the next reader is scheduling), a stopped process that
//!   continues and dies in the step while a wait is blocked (it reports the continue
//!   on its own way to dying: whether the woken waiter sees it first is scheduling),
//!   or processes dying together whose children go to one new parent (the order of its
//!   children, which later waits follow, is the order in which they died). Such a step
//!   is dropped and another drawn.
//!
//! The same seed always gives the same scenario: [`scenario`] is a pure function of the
//! seed (the generator's PRNG is SplitMix64).

use crate::scenario::{FlowOp, IdKind, MaskHow, Op, PidArg, Scenario, Step, TermFlag};
use crate::sentry_exec;
use crate::trace::ActorState;
use sandbox_sentry::sigaction::{SA_NOCLDSTOP, SA_NOCLDWAIT, SA_RESETHAND, SA_RESTART};
use sandbox_sentry::wait::{
    __WALL, __WCLONE, __WNOTHREAD, WCONTINUED, WEXITED, WNOHANG, WNOWAIT, WUNTRACED,
};
use sandbox_sentry::{Handler, SigSet, Signal};

/// SplitMix64: small, fast, and fully determined by its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent as usize
    }

    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }

    /// An index drawn with the given weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(total as usize) as u32;
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

/// The seed of the `index`-th scenario of a run started with `seed`.
pub fn scenario_seed(seed: u64, index: u64) -> u64 {
    let mut r = Rng::new(seed ^ index.wrapping_mul(0xa076_1d64_78bd_642f));
    r.next_u64()
}

const SIGNALS: [Signal; 14] = [
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGCONT,
    Signal::SIGSTOP,
    Signal::SIGCHLD,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTERM,
    Signal::SIGKILL,
    Signal::SIGWINCH,
];

/// Typed input. The last three reach line-discipline paths the others miss (measured
/// with `-C instrument-coverage` over a `--sentry-only` run, docs/CONFORMANCE.md):
/// VLNEXT, erasing a tab and a control character. Flow control is typed from
/// [`FLOW_TYPED`].
const TYPED: [&[u8]; 21] = [
    b"abc\n",
    b"x",
    b"\x03",
    b"\x1a",
    b"\x1c",
    b"\x04",
    b"hi\x7f\n",
    b"\n",
    b"ab\x15cd\n",
    b"one two\x17x\n",
    b"q\r",
    b"z\x03",
    b"\x1ay",
    b"a\tb\n",
    b"\x16\x03\n",
    b"a\t\x7f\n",
    b"\x01\x7f\n",
    // VREPRINT, an erase at the start of a line, VWERASE over trailing blanks, and a
    // carriage return that reaches the output (echoed without ICRNL).
    b"ab\x12\n",
    b"\x7fa\n",
    b"ab \x17\n",
    b"\r",
];

/// Typed flow control (IXON): VSTOP and VSTART, alone and within a batch (the echoes
/// of a batch are held with it). One typed step in five, so that output is stopped for
/// part of many scenarios without starving the other typed input.
const FLOW_TYPED: [&[u8]; 4] = [b"\x13", b"\x11", b"x\x13", b"\x11y"];

/// `tcflow` on the terminal: TCOOFF or TCOON (the output stop only TCOON ends).
fn tcflow_op(rng: &mut Rng) -> Op {
    Op::Tcflow {
        fd: 0,
        action: if rng.chance(50) {
            FlowOp::OutputOff
        } else {
            FlowOp::OutputOn
        },
    }
}

/// What a typed step types.
fn typed_input(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(20) {
        rng.pick(&FLOW_TYPED).to_vec()
    } else {
        rng.pick(&TYPED).to_vec()
    }
}

/// Signal numbers beyond [`SIGNALS`]: real-time signals (from glibc's SIGRTMIN, 34: 32
/// and 33 are glibc's own), which queue and show as `SIGRTn` in traces, and 65, one past
/// the last signal (kill, tgkill and sigaction fail with EINVAL).
const EXTRA_SIGNALS: [i32; 4] = [34, 40, 64, 65];

/// A signal number for kill, killpg or tgkill. Stops and SIGCONT are drawn more often
/// than the others: a stopped member is what makes an exit that orphans a group send
/// SIGHUP and SIGCONT, and a continue is what `WCONTINUED` reports (uniform draws
/// stopped a process in fewer than one scenario in ten and continued one in a
/// thousand).
fn signal_number(rng: &mut Rng) -> i32 {
    match rng.below(20) {
        0 | 1 => Signal::SIGSTOP.number(),
        2 | 3 => Signal::SIGCONT.number(),
        4 => Signal::SIGTSTP.number(),
        5 => *rng.pick(&EXTRA_SIGNALS),
        _ => rng.pick(&SIGNALS).number(),
    }
}

const MAX_PROCESSES: usize = 6;
/// Most steps dropped from one scenario because they would race on Linux.
const MAX_DROPPED: usize = 64;
const MAX_THREADS: usize = 2;

struct Actors {
    /// (name, is a thread) in creation order, `init` first.
    list: Vec<(String, bool)>,
    next_process: usize,
    next_thread: usize,
    /// (child, the process that forked it), for processes forked by the scenario.
    forked_by: Vec<(String, String)>,
}

/// A random scenario named `random-SEED` with about `len` steps.
pub fn scenario(seed: u64, len: usize) -> Scenario {
    let mut rng = Rng::new(seed);
    let mut s = Scenario {
        name: format!("random-{seed}"),
        steps: Vec::new(),
    };
    let mut actors = Actors {
        list: vec![("init".into(), false)],
        next_process: 1,
        next_thread: 1,
        forked_by: vec![("sh".into(), "init".into())],
    };
    // A shell-like start most of the time: a session leader with the terminal.
    let step = |a: &str, op: Op| Step::Actor {
        actor: a.into(),
        op,
    };
    s.steps.push(step("init", Op::Fork { child: "sh".into() }));
    actors.list.push(("sh".into(), false));
    if rng.chance(90) {
        s.steps.push(step("sh", Op::Setsid));
        if rng.chance(90) {
            s.steps.push(step(
                "sh",
                Op::Open {
                    noctty: false,
                    nonblock: false,
                    wronly: false,
                },
            ));
        }
    }
    if rng.chance(40) {
        // A job, as a shell starts one: a child in a group of its own (linked to the
        // session only through the shell, so the shell's exit can orphan it), half of
        // the time with a second member. The draws below then stop, continue, block
        // and give handlers to its members before a parent exits.
        s.steps.push(step("sh", Op::Fork { child: "p1".into() }));
        s.steps.push(step(
            "p1",
            Op::Setpgid {
                pid: PidArg::Num(0),
                pgid: PidArg::Num(0),
            },
        ));
        actors.list.push(("p1".into(), false));
        actors.forked_by.push(("p1".into(), "sh".into()));
        actors.next_process = 2;
        if rng.chance(50) {
            s.steps.push(step("p1", Op::Fork { child: "p2".into() }));
            actors.list.push(("p2".into(), false));
            actors.forked_by.push(("p2".into(), "p1".into()));
            actors.next_process = 3;
        }
        // A member with handlers for what an orphaning sends (else it dies of SIGHUP).
        for sig in [Signal::SIGHUP, Signal::SIGCONT] {
            if rng.chance(35) {
                let member = if actors.next_process == 3 && rng.chance(50) {
                    "p2"
                } else {
                    "p1"
                };
                s.steps.push(step(
                    member,
                    Op::Sigaction {
                        sig,
                        handler: Handler::Catch,
                        flags: if rng.chance(50) { SA_RESTART } else { 0 },
                    },
                ));
            }
        }
    }
    if rng.chance(50) {
        s.steps.push(step(
            "sh",
            Op::Sigaction {
                sig: Signal::SIGCHLD,
                handler: Handler::Catch,
                flags: if rng.chance(50) { SA_RESTART } else { 0 },
            },
        ));
    }
    let mut hung_up = false;
    let mut dropped = 0;
    loop {
        let trace = sentry_exec::run(&s);
        let Some(last) = trace.steps.last() else {
            break;
        };
        if last.race.is_some() && dropped < MAX_DROPPED {
            // The step's outcome would be scheduling on Linux: draw another one.
            dropped += 1;
            match s.steps.pop() {
                Some(Step::Hangup) => hung_up = false,
                Some(Step::Actor {
                    op: Op::Fork { child } | Op::Thread { child },
                    ..
                }) => actors.list.retain(|(n, _)| *n != child),
                _ => {}
            }
            continue;
        }
        if s.steps.len() >= len {
            break;
        }
        let running: Vec<String> = last
            .states
            .iter()
            .filter(|(_, st)| *st == ActorState::Running)
            .map(|(n, _)| n.clone())
            .collect();
        let alive: Vec<String> = last
            .states
            .iter()
            .filter(|(_, st)| !matches!(st, ActorState::Gone))
            .map(|(n, _)| n.clone())
            .collect();
        let stopped: Vec<String> = last
            .states
            .iter()
            .filter(|(_, st)| *st == ActorState::Stopped)
            .map(|(n, _)| n.clone())
            .collect();
        let terminal = running.is_empty() || rng.chance(14);
        if terminal {
            if hung_up {
                if running.is_empty() {
                    break;
                }
                continue;
            }
            match rng.weighted(&[80, 15, 3]) {
                0 => s.steps.push(Step::Type(typed_input(&mut rng))),
                1 => s.steps.push(Step::Winsize {
                    rows: 20 + rng.below(5) as u16,
                    cols: 80,
                }),
                _ => {
                    s.steps.push(Step::Hangup);
                    hung_up = true;
                }
            }
            continue;
        }
        let actor = rng.pick(&running).clone();
        let op = gen_op(&mut rng, &actor, &mut actors, &alive, &stopped);
        // Once a thread exists, a process-directed signal could be taken by either of
        // its process's threads: such signals are left out (conservatively, for all).
        let threads_exist = actors.list.iter().any(|(_, t)| *t);
        if threads_exist && aims_at_threaded(&op) {
            continue;
        }
        s.steps.push(step(&actor, op));
    }
    s
}

/// Whether a signal-sending op could reach a multi-threaded process through a
/// process-directed selector.
fn aims_at_threaded(op: &Op) -> bool {
    match op {
        Op::Kill { sig, .. } | Op::Killpg { sig, .. } => {
            // SIGKILL acts on the whole process whatever the thread. (SIGSTOP too, but
            // whether the sending thread returns before the group stop depends on which
            // thread takes it; SIGCONT continues the whole process, but a SIGCONT
            // handler runs in one thread, and which is scheduling:
            // random-5387650923511164432, seed 1.)
            !matches!(*sig, 0 | 9)
        }
        _ => false,
    }
}

fn pid_arg(rng: &mut Rng, actor: &str, alive: &[String]) -> PidArg {
    let other = rng.pick(alive).clone();
    match rng.weighted(&[30, 15, 20, 10, 10, 5, 5, 5]) {
        0 => PidArg::Actor(other),
        1 => PidArg::Actor(actor.to_string()),
        2 => PidArg::PgidOf(other),
        3 => PidArg::Num(0),
        4 => PidArg::NegPgidOf(other),
        5 => PidArg::NegActor(other),
        6 => PidArg::Num(-1),
        _ => PidArg::Num(99_999),
    }
}

fn wait_options(rng: &mut Rng, waitid: bool) -> i32 {
    let mut o = 0;
    if rng.chance(40) {
        o |= WNOHANG;
    }
    if rng.chance(50) {
        o |= WUNTRACED;
    }
    if rng.chance(30) {
        o |= WCONTINUED;
    }
    if waitid {
        if rng.chance(70) {
            o |= WEXITED;
        }
        if rng.chance(10) {
            o |= WNOWAIT;
        }
    } else if rng.chance(4) {
        o |= WNOWAIT; // not a wait4 option: EINVAL
    }
    // Which children by exit signal and by thread (every child here has SIGCHLD, so
    // __WCLONE alone selects none of them).
    match rng.below(16) {
        0 => o |= __WNOTHREAD,
        1 => o |= __WCLONE,
        2 => o |= __WALL,
        _ => {}
    }
    o
}

fn gen_op(
    rng: &mut Rng,
    actor: &str,
    actors: &mut Actors,
    alive: &[String],
    stopped: &[String],
) -> Op {
    let is_thread = actors.list.iter().any(|(n, t)| n == actor && *t);
    let processes = actors.list.iter().filter(|(_, t)| !t).count();
    let threads = actors.list.iter().filter(|(_, t)| *t).count();
    // A process that forked a child now stopped exits now and then: if the child's
    // group loses its last link to the session with that exit, it is orphaned with a
    // stopped member (SIGHUP then SIGCONT to every member, whatever its state). Left
    // to the draw below, that happened in about one scenario in a thousand.
    let stopped_child = actors
        .forked_by
        .iter()
        .any(|(c, p)| p == actor && stopped.contains(c));
    let children: Vec<String> = actors
        .forked_by
        .iter()
        .filter(|(c, p)| p == actor && alive.contains(c))
        .map(|(c, _)| c.clone())
        .collect();
    if stopped_child && actor != "init" && !is_thread && rng.chance(30) {
        return Op::Exit {
            code: rng.below(4) as i32,
        };
    }
    loop {
        let k = rng.weighted(&[
            14, // fork
            1,  // thread
            2,  // exec (before and after setpgid: EACCES once the child has exec'd)
            12, // setpgid
            3,  // setsid
            3,  // getpgid/getsid
            3,  // open
            2,  // close/dup
            9,  // tcsetpgrp
            2,  // tcgetpgrp/tcgetsid
            2,  // tiocsctty/tiocnotty
            7,  // sigaction
            3,  // sigprocmask
            14, // kill/killpg
            6,  // read
            4,  // write
            3,  // stty
            4,  // exit
            10, // wait4/waitid
        ]);
        let op = match k {
            0 if processes < MAX_PROCESSES && !is_thread => {
                let child = format!("p{}", actors.next_process);
                actors.next_process += 1;
                actors.list.push((child.clone(), false));
                actors.forked_by.push((child.clone(), actor.to_string()));
                Op::Fork { child }
            }
            1 if threads < MAX_THREADS && actor != "init" && !is_thread => {
                let child = format!("t{}", actors.next_thread);
                actors.next_thread += 1;
                actors.list.push((child.clone(), true));
                Op::Thread { child }
            }
            2 if actor != "init" => Op::Exec,
            // A group of its own (a job, as a shell makes one), a quarter of the time:
            // a group linked to the session only through its parent, which its
            // parent's exit can orphan.
            3 if rng.chance(25) => Op::Setpgid {
                pid: PidArg::Num(0),
                pgid: PidArg::Num(0),
            },
            3 => Op::Setpgid {
                pid: if !children.is_empty() && rng.chance(25) {
                    // A child of the caller, before or after its exec (EACCES after).
                    PidArg::Actor(rng.pick(&children).clone())
                } else if rng.chance(40) {
                    PidArg::Num(0)
                } else {
                    pid_arg(rng, actor, alive)
                },
                pgid: match rng.below(3) {
                    0 => PidArg::Num(0),
                    1 => PidArg::PgidOf(rng.pick(alive).clone()),
                    _ => PidArg::Actor(rng.pick(alive).clone()),
                },
            },
            4 if actor != "init" => Op::Setsid,
            5 => {
                let pid = pid_arg(rng, actor, alive);
                if rng.chance(50) {
                    Op::Getpgid { pid }
                } else {
                    Op::Getsid { pid }
                }
            }
            6 => {
                if rng.chance(20) {
                    Op::OpenDevTty
                } else {
                    Op::Open {
                        noctty: rng.chance(30),
                        nonblock: rng.chance(20),
                        wronly: rng.chance(10),
                    }
                }
            }
            7 => {
                if rng.chance(50) {
                    Op::Close {
                        fd: rng.below(3) as i32,
                    }
                } else {
                    Op::Dup { fd: 0 }
                }
            }
            8 => Op::Tcsetpgrp {
                fd: 0,
                pgrp: match rng.below(6) {
                    0 => PidArg::Actor(rng.pick(alive).clone()),
                    1 => PidArg::Num(-1),
                    2 => PidArg::Num(99_999),
                    _ => PidArg::PgidOf(rng.pick(alive).clone()),
                },
            },
            9 => {
                if rng.chance(60) {
                    Op::Tcgetpgrp { fd: 0 }
                } else {
                    Op::Tcgetsid { fd: 0 }
                }
            }
            10 => {
                if rng.chance(60) {
                    Op::Tiocsctty {
                        fd: 0,
                        steal: rng.chance(30),
                    }
                } else {
                    Op::Tiocnotty { fd: 0 }
                }
            }
            11 => {
                let s = if rng.chance(8) {
                    // A real-time signal (its handler's runs show as `SIGRTn`).
                    match Signal::new(*rng.pick(&EXTRA_SIGNALS[..3])) {
                        Ok(s) => s,
                        Err(_) => continue,
                    }
                } else {
                    *rng.pick(&SIGNALS)
                };
                if (s == Signal::SIGKILL || s == Signal::SIGSTOP) && !rng.chance(10) {
                    // (Sometimes kept: EINVAL.)
                    continue;
                }
                let handler = match rng.below(3) {
                    0 => Handler::Default,
                    1 => Handler::Ignore,
                    _ => Handler::Catch,
                };
                let mut flags = 0;
                if rng.chance(40) && s != Signal::SIGTTIN && s != Signal::SIGTTOU {
                    flags |= SA_RESTART;
                }
                if s == Signal::SIGCHLD {
                    if rng.chance(25) {
                        flags |= SA_NOCLDSTOP;
                    }
                    if rng.chance(15) {
                        flags |= SA_NOCLDWAIT;
                    }
                }
                if handler == Handler::Catch && rng.chance(10) {
                    flags |= SA_RESETHAND;
                }
                Op::Sigaction {
                    sig: s,
                    handler,
                    flags,
                }
            }
            12 => {
                let mut set = SigSet::EMPTY;
                for _ in 0..1 + rng.below(2) {
                    set.add(*rng.pick(&SIGNALS));
                }
                Op::Sigprocmask {
                    how: match rng.below(3) {
                        0 => MaskHow::Block,
                        1 => MaskHow::Unblock,
                        _ => MaskHow::Set,
                    },
                    set,
                }
            }
            13 => {
                let s = if rng.chance(5) { 0 } else { signal_number(rng) };
                if rng.chance(8) && !is_thread {
                    // tgkill to a process's main thread (or a bad ID): a thread-directed
                    // signal, which the other selectors never generate.
                    let p = rng.pick(alive).clone();
                    let process = actors.list.iter().any(|(n, t)| *n == p && !t);
                    if !process {
                        continue;
                    }
                    let (tgid, tid) = match rng.below(8) {
                        0 => (PidArg::Actor(p), PidArg::Num(99_999)),
                        1 => (PidArg::Num(0), PidArg::Actor(p)),
                        // A TID ≤ 0: EINVAL; a thread of another process: ESRCH.
                        2 => (PidArg::Actor(p), PidArg::Num(0)),
                        3 => (PidArg::Actor(p), PidArg::Actor(rng.pick(alive).clone())),
                        _ => (PidArg::Actor(p.clone()), PidArg::Actor(p)),
                    };
                    Op::Tgkill { tgid, tid, sig: s }
                } else if rng.chance(20) {
                    Op::Killpg {
                        pgrp: match rng.below(10) {
                            0 => PidArg::Num(0),
                            1 => PidArg::Num(-1), // EINVAL
                            _ => PidArg::PgidOf(rng.pick(alive).clone()),
                        },
                        sig: s,
                    }
                } else {
                    let stop = s == Signal::SIGSTOP.number() || s == Signal::SIGTSTP.number();
                    let pid =
                        if s == Signal::SIGCONT.number() && !stopped.is_empty() && rng.chance(60) {
                            // Continue what is stopped (the process or its group).
                            let p = rng.pick(stopped).clone();
                            if rng.chance(50) {
                                PidArg::Actor(p)
                            } else {
                                PidArg::NegPgidOf(p)
                            }
                        } else if stop && !children.is_empty() && rng.chance(50) {
                            // Stop a child (or its group), as a shell stops a job: the
                            // caller's exit may then orphan a group with a stopped member.
                            let c = rng.pick(&children).clone();
                            if rng.chance(50) {
                                PidArg::Actor(c)
                            } else {
                                PidArg::NegPgidOf(c)
                            }
                        } else if rng.chance(2) {
                            PidArg::Num(i32::MIN) // ESRCH
                        } else {
                            pid_arg(rng, actor, alive)
                        };
                    Op::Kill { pid, sig: s }
                }
            }
            14 => Op::Read {
                fd: 0,
                count: 1 + rng.below(8),
            },
            15 => Op::Write {
                fd: if rng.chance(80) { 0 } else { 1 },
                data: match rng.below(10) {
                    0..=4 => b"out\n".to_vec(),
                    5..=8 => b"x".to_vec(),
                    _ => b"\rx\r".to_vec(), // a carriage return at column 0 and after
                },
            },
            16 if rng.chance(15) => tcflow_op(rng),
            16 => {
                let f = *rng.pick(&TermFlag::ALL);
                let on = rng.chance(50);
                Op::Stty {
                    fd: 0,
                    on: if on { vec![f] } else { vec![] },
                    off: if on { vec![] } else { vec![f] },
                }
            }
            17 if actor != "init" => {
                if is_thread && rng.chance(50) {
                    Op::ThreadExit {
                        code: rng.below(4) as i32,
                    }
                } else {
                    Op::Exit {
                        code: rng.below(4) as i32,
                    }
                }
            }
            18 => {
                if rng.chance(70) {
                    Op::Wait4 {
                        pid: match rng.below(41) {
                            0..=9 => PidArg::Num(-1),
                            10..=19 => PidArg::Actor(rng.pick(alive).clone()),
                            20..=29 => PidArg::Num(0),
                            30..=39 => PidArg::NegPgidOf(rng.pick(alive).clone()),
                            _ => PidArg::Num(i32::MIN), // ESRCH
                        },
                        options: wait_options(rng, false),
                    }
                } else {
                    let (kind, id) = match rng.below(12) {
                        0..=3 => (IdKind::All, PidArg::Num(0)),
                        4..=7 => (IdKind::Pid, PidArg::Actor(rng.pick(alive).clone())),
                        8..=10 => (IdKind::Pgid, PidArg::PgidOf(rng.pick(alive).clone())),
                        // The ID checks: P_PID needs a positive ID, P_PGID a
                        // non-negative one (EINVAL); P_PGID 0 is the caller's group.
                        _ => match rng.below(3) {
                            0 => (IdKind::Pid, PidArg::Num(0)),
                            1 => (IdKind::Pgid, PidArg::Num(-1)),
                            _ => (IdKind::Pgid, PidArg::Num(0)),
                        },
                    };
                    Op::Waitid {
                        kind,
                        id,
                        options: wait_options(rng, true),
                    }
                }
            }
            _ => continue,
        };
        return op;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_waiter_killed_with_its_child_is_marked_racy() {
        // ^C kills the shell blocked in wait and its child together: whether the woken
        // shell reaps the child before it dies is scheduling on Linux.
        let s = Scenario::parse(
            "scenario r\ninit fork sh\nsh setsid\nsh open tty\nsh fork p1\n\
             sh wait4 0 untraced\ntype ^C\n",
        )
        .unwrap();
        let t = sentry_exec::run(&s);
        assert!(t.steps[4].race.is_none());
        assert!(t.steps[5].race.is_some(), "{:?}", t.steps[5]);
    }

    #[test]
    fn a_wait_returning_while_two_children_change_is_marked_racy() {
        // Two children of init die of one kill(-1) while init waits for any child:
        // which one the wait returns is the first to die on Linux.
        let s = Scenario::parse(
            "scenario r\ninit fork sh\ninit fork a\ninit fork b\n\
             init wait4 -1 none\nsh kill -1 SIGKILL\n",
        )
        .unwrap();
        let t = sentry_exec::run(&s);
        assert!(t.steps[4].race.is_some(), "{:?}", t.steps[4]);
    }

    #[test]
    fn process_directed_signals_but_sigkill_are_kept_from_threaded_processes() {
        let kill = |sig| Op::Kill {
            pid: PidArg::Actor("p1".into()),
            sig,
        };
        // A SIGCONT handler runs in one of the threads: which is scheduling.
        for sig in [libc::SIGCONT, libc::SIGSTOP, libc::SIGTERM, libc::SIGUSR1] {
            assert!(aims_at_threaded(&kill(sig)), "{sig}");
        }
        assert!(!aims_at_threaded(&kill(libc::SIGKILL)));
        assert!(!aims_at_threaded(&kill(0)));
    }

    #[test]
    fn a_stopped_orphan_continuing_and_dying_under_a_blocked_wait_is_marked_racy() {
        // sh's exit orphans p1's stopped group: SIGHUP and SIGCONT. p1 reports its
        // continue to init (its new parent) on its way to dying of SIGHUP; whether
        // init's blocked wait sees the continue or, the child reaped at once (SIGCHLD
        // ignored), ECHILD is scheduling (random-11570846229877738741, seed 1).
        let s = Scenario::parse(
            "scenario r\ninit fork sh\nsh setsid\nsh open tty\nsh fork p1\n\
             p1 setpgid 0 0\np1 sigaction SIGCONT handler\n\
             init sigaction SIGCHLD ignore restart\ninit wait4 -1 untraced,continued\n\
             p1 read 0 7\nsh exit 0\n",
        )
        .unwrap();
        let t = sentry_exec::run(&s);
        assert!(t.steps[8].race.is_none(), "{:?}", t.steps[8]);
        assert!(t.steps[9].race.is_some(), "{:?}", t.steps[9]);
    }

    #[test]
    fn interrupting_one_of_two_waiting_readers_is_marked_racy() {
        // ^Z wakes the session leader's reader; SIGTSTP is discarded (orphaned group)
        // and the read restarts: before or after init's read is scheduling.
        let s = Scenario::parse(
            "scenario r\ninit fork sh\nsh setsid\nsh open tty\ninit open tty noctty\n\
             sh read 0 2\ninit read 0 3\ntype ^Z\n",
        )
        .unwrap();
        let t = sentry_exec::run(&s);
        assert!(t.steps[5].race.is_none());
        assert!(t.steps[6].race.is_some(), "{:?}", t.steps[6]);
    }

    #[test]
    fn outcomes_that_depend_on_the_order_in_which_woken_processes_run_are_marked_racy() {
        // A session leader's SIGQUIT to its group: whether its child dies of it or of
        // the SIGHUP the dying leader sends depends on who dies first.
        let quit = "scenario r\ninit fork sh\nsh setsid\nsh open tty\nsh fork p1\n\
                    sh kill 0 SIGQUIT\n";
        // TIOCNOTTY kills the leader, which ignores SIGCHLD, and its child: the child
        // is reaped at once if it dies first, else it is init's zombie.
        let notty = "scenario r\ninit fork sh\nsh setsid\nsh open tty\n\
                     sh sigaction SIGCHLD ignore\nsh fork p1\nsh tiocnotty 0\n";
        // SIGTSTP from outside to a job whose leader has a SIGCHLD handler: the leader
        // runs its handler for its child's stop only if the child stopped first.
        let tstp = "scenario r\ninit fork sh\nsh setsid\nsh fork a\na setpgid 0 0\n\
                    a sigaction SIGCHLD handler\na fork b\ninit kill -pgid:a SIGTSTP\n";
        for (text, step) in [(quit, 4), (notty, 5), (tstp, 6)] {
            let t = sentry_exec::run(&Scenario::parse(text).unwrap());
            assert!(t.steps[step - 1].race.is_none());
            assert!(t.steps[step].race.is_some(), "{:?}", t.steps[step]);
        }
        // SIGTERM makes each target a dying process as it is generated: the leader's
        // SIGHUP is ignored whatever the order, so the outcome is not a race.
        let term = "scenario r\ninit fork sh\nsh setsid\nsh open tty\nsh fork p1\n\
                    sh kill 0 SIGTERM\n";
        let t = sentry_exec::run(&Scenario::parse(term).unwrap());
        assert!(t.steps[4].race.is_none(), "{:?}", t.steps[4]);
    }

    #[test]
    fn children_of_parents_dying_together_handed_to_init_is_marked_racy() {
        // ^C kills the shell, its child and its grandchild: the child and the
        // grandchild reach init in the order their parents died.
        let s = Scenario::parse(
            "scenario r\ninit fork sh\nsh setsid\nsh open tty\nsh fork p1\n\
             p1 fork p2\ntype ^C\n",
        )
        .unwrap();
        let t = sentry_exec::run(&s);
        assert!(t.steps[4].race.is_none());
        assert!(t.steps[5].race.is_some(), "{:?}", t.steps[5]);
    }

    #[test]
    fn generated_scenarios_have_no_racy_step() {
        for i in 0..300 {
            let s = scenario(scenario_seed(7, i), 24);
            let t = sentry_exec::run(&s);
            assert!(
                t.steps.iter().all(|st| st.race.is_none()),
                "{s}\n{:?}",
                t.steps.iter().find(|st| st.race.is_some())
            );
        }
    }
}
