//! The puppet: a real Linux process (or thread) that performs scenario operations one
//! at a time, as the Linux executor tells it over its control socket.
//!
//! The `conformance-puppet` binary has no Rust runtime start-up (`#![no_main]`), so that
//! nothing but the scenario touches its signal dispositions, its mask or descriptors 0–2
//! (Rust's start-up would ignore SIGPIPE and open /dev/null on closed standard fds).
//!
//! Protocol (lines over a unix stream socket; the executor's side is
//! [`crate::linux_exec`]):
//! - puppet → executor: `hello NAME TID TGID` once connected (IDs as the puppet sees
//!   them, in the scenario's PID namespace); `sig N` each time a scenario handler runs
//!   (sent from the handler, on the thread that runs it); `ret RESULT` when an operation
//!   returns; `fatal MESSAGE` if the puppet itself fails.
//! - executor → puppet: `op OPERATION` (the scenario text of one operation, PIDs
//!   already resolved to numbers).
//!
//! RESULT is `ok`, `err ERRNO`, `num N`, `pid PID`, `child NAME`, `data TEXT` (escaped
//! as in scenarios) or `wait none` / `wait PID exited|killed|dumped|stopped|continued N`.
//!
//! Each thread's control socket sits at a descriptor ≥ [`CONTROL_FD_MIN`], close-on-exec,
//! so the scenario's own descriptors are numbered as in a fresh process. Signals are
//! blocked while a new process or thread connects, so that no handler report goes to
//! the wrong socket; the scenario's mask is restored before the first operation.

use crate::scenario::{self, FlowOp, IdKind, MaskHow, Op, PidArg, TermFlag};
use crate::sys::{self, Action, WaitReport};
use sandbox_sentry::Handler;
use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::io::Write as _;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::sync::OnceLock;

/// Control sockets live at or above this descriptor.
pub const CONTROL_FD_MIN: i32 = 500;

struct Config {
    socket: String,
    tty: String,
    /// `open tty` without `noctty` is followed by TIOCSCTTY(fd, 0), its result
    /// ignored: the borrowed-terminal executor's puppets (see
    /// `linux_exec::SandboxTty::Borrowed`).
    explicit_ctty: bool,
}

/// The argument that turns [`Config::explicit_ctty`] on.
const EXPLICIT_CTTY: &str = "explicit-ctty";

static CONFIG: OnceLock<Config> = OnceLock::new();

thread_local! {
    /// This thread's control socket (read by the signal handler: a plain TLS load).
    static CTRL: Cell<i32> = const { Cell::new(-1) };
    /// Bytes received and not yet consumed as a line.
    static INBUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static NAME: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The scenario handler: reports the signal on this thread's control socket.
extern "C" fn on_signal(sig: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let fd = CTRL.with(|c| c.get());
    if fd < 0 {
        return;
    }
    // "sig NN\n" without allocating.
    let mut buf = [0u8; 16];
    buf[..4].copy_from_slice(b"sig ");
    let mut n = 4;
    let s = sig.clamp(0, 99) as u8;
    if s >= 10 {
        buf[n] = b'0' + s / 10;
        n += 1;
    }
    buf[n] = b'0' + s % 10;
    buf[n + 1] = b'\n';
    sys::send_nosignal(fd, &buf[..n + 2]);
}

fn send_line(line: &str) {
    let fd = CTRL.with(|c| c.get());
    let mut v = line.as_bytes().to_vec();
    v.push(b'\n');
    sys::send_nosignal(fd, &v);
}

fn fatal(msg: &str) -> ! {
    send_line(&format!("fatal {msg}"));
    sys::exit_group(99)
}

/// Connects a new control socket, moves it to a high descriptor and says hello.
fn connect(name: &str) -> Result<(), String> {
    let cfg = CONFIG.get().ok_or("no configuration")?;
    let s = connect_socket(&cfg.socket)?;
    let low = s.into_raw_fd();
    let fd = sys::dup_at_least(low, CONTROL_FD_MIN).map_err(|e| format!("dup: {e}"))?;
    let _ = sys::close(low);
    adopt(fd, name);
    Ok(())
}

/// The executor's socket: a path when `socket` starts with `/` (the sandbox executor:
/// the sandbox has a network namespace of its own, where abstract names are not the
/// executor's), else an abstract name.
fn connect_socket(socket: &str) -> Result<UnixStream, String> {
    if socket.starts_with('/') {
        return UnixStream::connect(socket).map_err(|e| format!("connect {socket}: {e}"));
    }
    let addr = SocketAddr::from_abstract_name(socket.as_bytes())
        .map_err(|e| format!("socket address: {e}"))?;
    UnixStream::connect_addr(&addr).map_err(|e| format!("connect: {e}"))
}

/// Makes `fd` this thread's control socket and says hello.
fn adopt(fd: i32, name: &str) {
    CTRL.with(|c| c.set(fd));
    INBUF.with(|b| b.borrow_mut().clear());
    NAME.with(|n| *n.borrow_mut() = name.to_string());
    send_line(&format!("hello {name} {} {}", sys::gettid(), sys::getpid()));
}

/// Reads the next command line (retrying when a handler interrupts the read).
fn next_line() -> Option<String> {
    let fd = CTRL.with(|c| c.get());
    loop {
        let line = INBUF.with(|b| {
            let mut b = b.borrow_mut();
            let pos = b.iter().position(|&c| c == b'\n')?;
            let line: Vec<u8> = b.drain(..=pos).collect();
            Some(String::from_utf8_lossy(&line[..pos]).into_owned())
        });
        if line.is_some() {
            return line;
        }
        let mut buf = [0u8; 4096];
        match sys::read(fd, &mut buf) {
            Ok(0) => return None,
            Ok(n) => INBUF.with(|b| b.borrow_mut().extend_from_slice(&buf[..n])),
            Err(libc::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Serves operations until the executor goes away.
fn serve() -> ! {
    while let Some(line) = next_line() {
        let Some(text) = line.strip_prefix("op ") else {
            fatal(&format!("unexpected command `{line}`"));
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let op = match scenario::parse_op_words(&words) {
            Ok(op) => op,
            Err(e) => fatal(&format!("bad operation `{text}`: {e}")),
        };
        let result = perform(&op);
        send_line(&format!("ret {result}"));
    }
    sys::exit_group(0)
}

fn num(p: &PidArg) -> i32 {
    match p {
        PidArg::Num(n) => *n,
        // The executor resolves names; an unresolved one cannot name a process.
        _ => i32::MAX,
    }
}

fn unit(r: sys::Res<()>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("err {e}"),
    }
}

fn with<T>(r: sys::Res<T>, f: impl FnOnce(T) -> String) -> String {
    match r {
        Ok(v) => f(v),
        Err(e) => format!("err {e}"),
    }
}

fn wait_text(r: sys::Res<Option<(i32, WaitReport)>>) -> String {
    with(r, |w| match w {
        None => "wait none".into(),
        Some((pid, rep)) => match rep {
            WaitReport::Exited(c) => format!("wait {pid} exited {c}"),
            WaitReport::Killed(s) => format!("wait {pid} killed {s}"),
            WaitReport::Dumped(s) => format!("wait {pid} dumped {s}"),
            WaitReport::Stopped(s) => format!("wait {pid} stopped {s}"),
            WaitReport::Continued => format!("wait {pid} continued 0"),
        },
    })
}

fn perform(op: &Op) -> String {
    match op {
        Op::Fork { child } => fork(child),
        Op::Thread { child } => thread(child),
        Op::Exec => exec(),
        Op::Setpgid { pid, pgid } => unit(sys::setpgid(num(pid), num(pgid))),
        Op::Setsid => with(sys::setsid(), |p| format!("pid {p}")),
        Op::Getpgid { pid } => with(sys::getpgid(num(pid)), |p| format!("pid {p}")),
        Op::Getsid { pid } => with(sys::getsid(num(pid)), |p| format!("pid {p}")),
        Op::Open {
            noctty,
            nonblock,
            wronly,
        } => {
            let mut flags = if *wronly {
                libc::O_WRONLY
            } else {
                libc::O_RDWR
            };
            if *noctty {
                flags |= libc::O_NOCTTY;
            }
            if *nonblock {
                flags |= libc::O_NONBLOCK;
            }
            let path = CONFIG.get().map(|c| c.tty.clone()).unwrap_or_default();
            let Ok(path) = CString::new(path) else {
                return "err 22".into();
            };
            let explicit = !*noctty && CONFIG.get().is_some_and(|c| c.explicit_ctty);
            with(sys::open(&path, flags), |fd| {
                if explicit {
                    // On Linux a no-op: TIOCSCTTY(0) succeeds exactly where this open
                    // made the terminal the caller's (or it already was), and fails
                    // without effect everywhere else.
                    let _ = sys::tiocsctty(fd, false);
                }
                format!("num {fd}")
            })
        }
        Op::OpenDevTty => with(sys::open(c"/dev/tty", libc::O_RDWR), |fd| {
            format!("num {fd}")
        }),
        Op::Close { fd } => {
            if *fd >= CONTROL_FD_MIN {
                return "err 9".into();
            }
            unit(sys::close(*fd))
        }
        Op::Dup { fd } => with(sys::dup(*fd), |fd| format!("num {fd}")),
        Op::Tcsetpgrp { fd, pgrp } => unit(sys::tcsetpgrp(*fd, num(pgrp))),
        Op::Tcgetpgrp { fd } => with(sys::tcgetpgrp(*fd), |p| format!("pid {p}")),
        Op::Tcgetsid { fd } => with(sys::tcgetsid(*fd), |p| format!("pid {p}")),
        Op::Tiocsctty { fd, steal } => unit(sys::tiocsctty(*fd, *steal)),
        Op::Tiocnotty { fd } => unit(sys::tiocnotty(*fd)),
        Op::Sigaction {
            sig,
            handler,
            flags,
        } => {
            let action = match handler {
                Handler::Default => Action::Default,
                Handler::Ignore => Action::Ignore,
                Handler::Catch => Action::Handler(on_signal),
            };
            unit(sys::sigaction(sig.number(), action, *flags as i32).map(|_| ()))
        }
        Op::Sigprocmask { how, set } => {
            let how = match how {
                MaskHow::Block => libc::SIG_BLOCK,
                MaskHow::Unblock => libc::SIG_UNBLOCK,
                MaskHow::Set => libc::SIG_SETMASK,
            };
            let bits = set.iter().fold(0u64, |m, s| m | (1u64 << (s.number() - 1)));
            unit(sys::sigprocmask(how, Some(bits)).map(|_| ()))
        }
        Op::Kill { pid, sig } => unit(sys::kill(num(pid), *sig)),
        Op::Killpg { pgrp, sig } => unit(sys::killpg(num(pgrp), *sig)),
        Op::Tgkill { tgid, tid, sig } => unit(sys::tgkill(num(tgid), num(tid), *sig)),
        Op::Read { fd, count } => {
            let mut buf = vec![0u8; *count];
            with(sys::read(*fd, &mut buf), |n| {
                format!("data {}", scenario::encode_text(&buf[..n]))
            })
        }
        Op::Write { fd, data } => with(sys::write(*fd, data), |n| format!("num {n}")),
        Op::Tcflow { fd, action } => unit(sys::tcflow(
            *fd,
            match action {
                FlowOp::OutputOff => libc::TCOOFF,
                FlowOp::OutputOn => libc::TCOON,
            },
        )),
        Op::Stty { fd, on, off } => match sys::tcgetattr(*fd) {
            Err(e) => format!("err {e}"),
            Ok(mut t) => {
                for (list, set) in [(on, true), (off, false)] {
                    for f in list {
                        let (bits, input) = match f {
                            TermFlag::Icanon => (libc::ICANON, false),
                            TermFlag::Echo => (libc::ECHO, false),
                            TermFlag::Isig => (libc::ISIG, false),
                            TermFlag::Tostop => (libc::TOSTOP, false),
                            TermFlag::Noflsh => (libc::NOFLSH, false),
                            TermFlag::Echoctl => (libc::ECHOCTL, false),
                            TermFlag::Icrnl => (libc::ICRNL, true),
                            TermFlag::Ixon => (libc::IXON, true),
                            TermFlag::Ixany => (libc::IXANY, true),
                        };
                        let field = if input {
                            &mut t.c_iflag
                        } else {
                            &mut t.c_lflag
                        };
                        if set {
                            *field |= bits;
                        } else {
                            *field &= !bits;
                        }
                    }
                }
                unit(sys::tcsetattr_now(*fd, &t))
            }
        },
        Op::Exit { code } => sys::exit_group(*code),
        Op::ThreadExit { code } => sys::exit_thread(*code),
        Op::Wait4 { pid, options } => wait_text(sys::wait4(num(pid), *options)),
        Op::Waitid { kind, id, options } => {
            let idtype = match kind {
                IdKind::All => libc::P_ALL,
                IdKind::Pid => libc::P_PID,
                IdKind::Pgid => libc::P_PGID,
            };
            wait_text(sys::waitid(idtype, num(id), *options))
        }
    }
}

const ALL_SIGNALS: u64 = u64::MAX;

fn fork(child: &str) -> String {
    let Ok(old) = sys::sigprocmask(libc::SIG_SETMASK, Some(ALL_SIGNALS)) else {
        return "err 22".into();
    };
    match sys::fork() {
        Ok(0) => {
            // Drop every inherited control socket (the parent's and its threads').
            sys::close_from(CONTROL_FD_MIN as u32);
            CTRL.with(|c| c.set(-1));
            if connect(child).is_err() {
                sys::exit_group(98);
            }
            let _ = sys::sigprocmask(libc::SIG_SETMASK, Some(old));
            serve()
        }
        Ok(_) => {
            let _ = sys::sigprocmask(libc::SIG_SETMASK, Some(old));
            format!("child {child}")
        }
        Err(e) => {
            let _ = sys::sigprocmask(libc::SIG_SETMASK, Some(old));
            format!("err {e}")
        }
    }
}

fn thread(child: &str) -> String {
    let Ok(old) = sys::sigprocmask(libc::SIG_SETMASK, Some(ALL_SIGNALS)) else {
        return "err 22".into();
    };
    let name = child.to_string();
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let spawned = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let r = connect(&name);
            let ok = r.is_ok();
            let _ = tx.send(r);
            if !ok {
                return;
            }
            let _ = sys::sigprocmask(libc::SIG_SETMASK, Some(old));
            serve()
        });
    let result = match spawned {
        Err(_) => "err 11".to_string(),
        Ok(_) => match rx.recv() {
            Ok(Ok(())) => format!("child {child}"),
            Ok(Err(e)) => fatal(&e),
            Err(_) => fatal("thread start"),
        },
    };
    let _ = sys::sigprocmask(libc::SIG_SETMASK, Some(old));
    result
}

fn exec() -> String {
    let fd = CTRL.with(|c| c.get());
    let name = NAME.with(|n| n.borrow().clone());
    let Some(cfg) = CONFIG.get() else {
        return "err 22".into();
    };
    // Other threads' sockets go (their threads end with the exec); ours stays open.
    if sys::set_cloexec(fd, false).is_err() {
        return "err 9".into();
    }
    let args: Vec<CString> = [
        "conformance-puppet",
        "exec",
        &cfg.socket,
        &cfg.tty,
        &name,
        &fd.to_string(),
        if cfg.explicit_ctty { EXPLICIT_CTTY } else { "" },
    ]
    .iter()
    .filter_map(|a| CString::new(*a).ok())
    .collect();
    let e = sys::execv(c"/proc/self/exe", &args);
    let _ = sys::set_cloexec(fd, true);
    format!("err {e}")
}

/// The puppet binary's entry point: `conformance-puppet nsroot SOCKET pid1|reaper`
/// (run by the executor after `unshare(CLONE_NEWPID|CLONE_NEWNS)`: makes the pty, forks
/// the namespace's init puppet and waits; with `reaper`, PID 1 takes the sandbox's
/// shape, `reaper_with_init`), `conformance-puppet sandboxroot SOCKET TTY` (the program
/// of `sandbox run`, in the same shape) or `conformance-puppet exec SOCKET TTY NAME FD`
/// (a puppet after its execve). Each form takes `explicit-ctty` last to make every
/// `open tty` without `noctty` followed by TIOCSCTTY(fd, 0) (the borrowed-terminal
/// executor).
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    std::panic::set_hook(Box::new(|p| {
        send_line(&format!("fatal panic: {p}"));
        let _ = std::io::stderr().flush();
    }));
    sys::no_core_dumps();
    match arg(1).as_str() {
        "nsroot" => nsroot(&arg(2), arg(3) == "reaper", arg(4) == EXPLICIT_CTTY),
        "sandboxroot" => {
            let _ = CONFIG.set(Config {
                socket: arg(2),
                tty: arg(3),
                explicit_ctty: arg(4) == EXPLICIT_CTTY,
            });
            reaper_with_init()
        }
        "exec" => {
            let _ = CONFIG.set(Config {
                socket: arg(2),
                tty: arg(3),
                explicit_ctty: arg(6) == EXPLICIT_CTTY,
            });
            let Ok(fd) = arg(5).parse::<i32>() else {
                return 2;
            };
            let _ = sys::set_cloexec(fd, true);
            adopt(fd, &arg(4));
            send_line("ret ok");
            serve()
        }
        _ => {
            eprintln!("conformance-puppet: run by the conformance harness only");
            2
        }
    }
}

/// The namespace root: in its own mount namespace (the executor unshared it with the
/// PID namespace), mounts a private devpts instance, creates the scenario's pty there
/// and sends the master to the executor, then forks init.
fn nsroot(socket: &str, reaper: bool, explicit_ctty: bool) -> i32 {
    if sys::private_devpts().is_err() {
        return 4;
    }
    let Ok((master, tty)) = sys::open_pty_master() else {
        return 5;
    };
    let _ = CONFIG.set(Config {
        socket: socket.to_string(),
        tty,
        explicit_ctty,
    });
    let Ok(addr) = SocketAddr::from_abstract_name(socket.as_bytes()) else {
        return 6;
    };
    let Ok(s) = UnixStream::connect_addr(&addr) else {
        return 6;
    };
    if sys::send_fd(s.as_raw_fd(), master).is_err() {
        return 7;
    }
    drop(s);
    let _ = sys::close(master);
    match sys::fork() {
        Ok(0) => {
            // PID 1 of the new namespace: a clean process, leader of its own session.
            sys::die_with_parent();
            if reaper {
                return sandbox_shaped_pid1();
            }
            sys::reset_all_signals();
            let _ = sys::sigprocmask(libc::SIG_SETMASK, Some(0));
            sys::close_from(0);
            let _ = sys::setsid();
            if connect("init").is_err() {
                return 3;
            }
            serve()
        }
        Ok(pid) => {
            sys::close_from(0);
            loop {
                match sys::wait4(pid, libc::__WALL) {
                    Err(libc::EINTR) => continue,
                    _ => return 0,
                }
            }
        }
        Err(_) => 3,
    }
}

/// PID 1 in the sandbox's shape: like the sandbox's init, it leads a session of its
/// own and forks the holder (PID 3), which leads the program's session and forks the
/// "program" (PID 2, a group of its own in the holder's session, running
/// [`reaper_with_init`]) and waits for it; PID 1 reaps every orphan handed to it, and
/// ends (taking the namespace with it) when the holder ends.
fn sandbox_shaped_pid1() -> i32 {
    let _ = sys::sigprocmask(libc::SIG_SETMASK, Some(ALL_SIGNALS));
    sys::close_from(0);
    let _ = sys::setsid();
    match sys::fork_with_pid(3) {
        Ok(0) => {
            sys::die_with_parent();
            let _ = sys::setsid();
            match sys::fork_with_pid(2) {
                Ok(0) => {
                    sys::die_with_parent();
                    let _ = sys::setpgid(0, 0);
                    reaper_with_init()
                }
                Ok(program) => loop {
                    match sys::wait4(program, libc::__WALL) {
                        Err(libc::EINTR) => continue,
                        _ => return 0,
                    }
                },
                Err(_) => 3,
            }
        }
        Ok(holder) => loop {
            match sys::wait4(-1, libc::__WALL) {
                Ok(Some((pid, _))) if pid == holder => return 0,
                Err(libc::ECHILD) => return 0,
                _ => continue,
            }
        },
        Err(_) => 3,
    }
}

/// The `init` actor one level down, as it must be inside `sandbox run` (whose PID 1 is
/// the sandbox's own init and whose program is in the session of init's child, the
/// holder): this process
/// (a non-actor) blocks every signal it can, closes its descriptors and forks the
/// `init` actor, which takes a session of its own, becomes a child subreaper (so that
/// orphans are handed to it, as to the namespace's init) and serves; this process then
/// reaps what it is handed and stays until the executor kills it. The Linux reference run of the sandbox executors
/// uses the same shape (`nsroot SOCKET reaper`), so that both runs have the same
/// process tree: the actors never see a PID-1 init. The `init` actor also drops every
/// capability, as the sandbox's program has none.
fn reaper_with_init() -> i32 {
    let _ = sys::sigprocmask(libc::SIG_SETMASK, Some(ALL_SIGNALS));
    sys::close_from(0);
    match sys::fork() {
        Ok(0) => {
            sys::die_with_parent();
            sys::reset_all_signals();
            let _ = sys::sigprocmask(libc::SIG_SETMASK, Some(0));
            let _ = sys::setsid();
            sys::set_child_subreaper();
            // Sandbox processes have no capability (CAP_SYS_ADMIN decides TIOCSCTTY's
            // steal): the Linux reference of that shape has none either.
            sys::drop_all_capabilities();
            if connect("init").is_err() {
                return 3;
            }
            serve()
        }
        // Reaps whatever is handed to it (as PID 1, in the Linux shape) and stays, also
        // after the `init` actor's death (the scenario goes on without it, as the
        // sandbox does: its init reaps the orphans); the executor ends the run.
        Ok(_) => loop {
            if let Err(libc::ECHILD) = sys::wait4(-1, libc::__WALL) {
                let _ = sys::poll_in(&[], -1);
            }
        },
        Err(_) => 3,
    }
}
