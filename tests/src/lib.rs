//! A simulated interactive shell that does on the sentry what bash does for job
//! control, so that whole sessions can be played and checked.
//!
//! What it does, as bash does:
//! - At start: its own session (`setsid`), the terminal opened without O_NOCTTY (it
//!   becomes the controlling terminal), SIGTSTP/SIGTTIN/SIGTTOU/SIGQUIT ignored, a
//!   SIGINT handler and a SA_RESTART SIGCHLD handler.
//! - For each job: `fork` every process of the pipeline; each child calls
//!   `setpgid(0, pgid)` and the shell calls `setpgid(child, pgid)` (both sides, to win
//!   the race either way); a foreground job gets the terminal (`tcsetpgrp`) before the
//!   children run; each child restores SIG_DFL for what the shell ignored and execs.
//! - Waiting: `wait4(-pgid, WUNTRACED)`; when the foreground job has stopped or ended
//!   the shell takes the terminal back (`tcsetpgrp` to its own group).
//! - `fg`: terminal to the job, then SIGCONT to its group; `bg`: SIGCONT only.

pub mod console;
pub mod python;
pub mod term;

/// The environment variable that turns [`require_root`]'s failure into a skip.
pub const SKIP_ROOT_VAR: &str = "SANDBOX_TESTS_SKIP_ROOT";

/// The one policy for tests that need root (namespaces of every kind, mounts, `setpriv`
/// to another user). Returns true when the effective UID is 0: the test goes on.
///
/// Otherwise the test FAILS (a panic naming the test): CI runs as root, and a test that
/// quietly passes without running is lost coverage nobody sees. With
/// `SANDBOX_TESTS_SKIP_ROOT=1` it returns false instead (the caller returns at once)
/// after writing `SKIPPED (not root): <test>` to the process's standard output
/// directly, not through `println!`, so that libtest's capture does not hide it: the
/// line shows in `cargo test`'s output whether the test passes or not.
#[track_caller]
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let test = current_test();
    if std::env::var_os(SKIP_ROOT_VAR).is_some_and(|v| v == "1") {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "SKIPPED (not root): {test}");
        let _ = out.flush();
        return false;
    }
    panic!(
        "{test} needs root (effective UID 0) and the effective UID is {}; \
         run the tests as root, or set {SKIP_ROOT_VAR}=1 to skip such tests visibly",
        nix::unistd::geteuid()
    );
}

/// The running test: libtest names each test's thread after it; on the main thread
/// (`--test-threads=1` may run tests there), the caller's source location.
#[track_caller]
fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => {
            let at = std::panic::Location::caller();
            format!("the test at {}:{}", at.file(), at.line())
        }
    }
}

use sandbox_sentry::sigaction::SA_RESTART;
use sandbox_sentry::wait::{status, WNOHANG, WUNTRACED};
use sandbox_sentry::{
    Blocking, Errno, Handler, Kernel, OpenFlags, Pid, SigAction, SigSet, Signal, SysResult, TtyId,
};

/// Signals an interactive shell ignores and its jobs must get back as SIG_DFL.
pub const SHELL_IGNORED: [Signal; 4] = [
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGQUIT,
];

/// What the shell knows about one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    /// Every live process of the job is stopped; the signal that stopped the last one.
    Stopped(Signal),
    /// Every process has ended; `$?` is the last process's shell status.
    Done(i32),
}

/// One job: a pipeline of processes in one process group.
#[derive(Clone, Debug)]
pub struct Job {
    pub pgid: Pid,
    pub procs: Vec<Pid>,
    pub state: JobState,
    /// Processes not yet reaped.
    live: Vec<Pid>,
    stopped: Vec<Pid>,
    last_status: i32,
}

/// The shell and its kernel.
pub struct Shell {
    pub k: Kernel,
    pub tty: TtyId,
    /// The shell's PID (and process group, and session).
    pub pid: Pid,
    /// Its terminal descriptor.
    pub fd: i32,
    pub jobs: Vec<Job>,
}

impl Shell {
    /// A login shell started by init on a fresh terminal.
    pub fn start() -> SysResult<Shell> {
        let mut k = Kernel::new();
        let tty = k.create_pty();
        let pid = k.fork(Kernel::INIT)?;
        Shell::become_interactive(&mut k, pid)?;
        k.setsid(pid)?;
        let fd = k.open_tty(pid, tty, OpenFlags::RDWR)?;
        k.take_events();
        Ok(Shell {
            k,
            tty,
            pid,
            fd,
            jobs: Vec::new(),
        })
    }

    /// A shell running inside an existing process (a nested shell): it already has the
    /// terminal as controlling terminal through fd `fd`.
    pub fn nested(k: Kernel, tty: TtyId, pid: Pid, fd: i32) -> SysResult<Shell> {
        let mut k = k;
        Shell::become_interactive(&mut k, pid)?;
        Ok(Shell {
            k,
            tty,
            pid,
            fd,
            jobs: Vec::new(),
        })
    }

    fn become_interactive(k: &mut Kernel, pid: Pid) -> SysResult<()> {
        for sig in SHELL_IGNORED {
            k.set_handler(pid, sig, Handler::Ignore, 0)?;
        }
        k.set_handler(pid, Signal::SIGINT, Handler::Catch, 0)?;
        k.sigaction(
            pid,
            Signal::SIGCHLD.number(),
            Some(SigAction {
                handler: Handler::Catch,
                flags: SA_RESTART,
                mask: SigSet::EMPTY,
            }),
        )?;
        Ok(())
    }

    /// Starts a job of `n` processes (a pipeline); returns its index.
    pub fn run(&mut self, n: usize, foreground: bool) -> SysResult<usize> {
        let mut procs = Vec::new();
        let mut pgid = 0;
        for _ in 0..n.max(1) {
            let child = self.k.fork(self.pid)?;
            if pgid == 0 {
                pgid = child;
            }
            // The child's side, then the shell's side (bash does both).
            self.k.setpgid(child, 0, pgid)?;
            self.k.setpgid(self.pid, child, pgid)?;
            if foreground && procs.is_empty() {
                self.k.tcsetpgrp(self.pid, self.fd, pgid)?;
            }
            for sig in SHELL_IGNORED {
                self.k.set_handler(child, sig, Handler::Default, 0)?;
            }
            self.k
                .set_handler(child, Signal::SIGINT, Handler::Default, 0)?;
            self.k.execve(child)?;
            procs.push(child);
        }
        self.jobs.push(Job {
            pgid,
            live: procs.clone(),
            procs,
            state: JobState::Running,
            stopped: Vec::new(),
            last_status: 0,
        });
        Ok(self.jobs.len() - 1)
    }

    /// Collects wait reports for job `j` (blocking `wait4(-pgid, WUNTRACED)`; with
    /// `nohang`, WNOHANG) until the job stops or ends, or the wait would block. A
    /// foreground job that stopped or ended gets the terminal taken back.
    pub fn wait(&mut self, j: usize, nohang: bool) -> SysResult<JobState> {
        let pgid = self.job(j)?.pgid;
        loop {
            let opts = WUNTRACED | if nohang { WNOHANG } else { 0 };
            let w = match self.k.wait4(self.pid, -pgid, opts) {
                Ok(Blocking::Ready(Some(w))) => w,
                Ok(Blocking::Ready(None)) | Ok(Blocking::WouldBlock(_)) => break,
                Err(Errno::ECHILD) => break,
                Err(e) => return Err(e),
            };
            let job = self.job_mut(j)?;
            if status::stopped(w.wait_status) {
                if !job.stopped.contains(&w.pid) {
                    job.stopped.push(w.pid);
                }
                if job.stopped.len() == job.live.len() {
                    let sig = Signal::new(status::stop_sig(w.wait_status))?;
                    job.state = JobState::Stopped(sig);
                    break;
                }
            } else {
                job.live.retain(|&p| p != w.pid);
                job.stopped.retain(|&p| p != w.pid);
                job.last_status = if status::exited(w.wait_status) {
                    status::exit_status(w.wait_status)
                } else {
                    128 + status::term_sig(w.wait_status)
                };
                if job.live.is_empty() {
                    job.state = JobState::Done(job.last_status);
                    break;
                }
            }
        }
        let state = self.job(j)?.state.clone();
        if state != JobState::Running && self.k.tcgetpgrp(self.pid, self.fd)? == pgid {
            self.k.tcsetpgrp(self.pid, self.fd, self.pid)?;
        }
        Ok(state)
    }

    /// `fg %j`.
    pub fn fg(&mut self, j: usize) -> SysResult<()> {
        let pgid = self.job(j)?.pgid;
        self.k.tcsetpgrp(self.pid, self.fd, pgid)?;
        self.cont(j)
    }

    /// `bg %j`.
    pub fn bg(&mut self, j: usize) -> SysResult<()> {
        self.cont(j)
    }

    fn cont(&mut self, j: usize) -> SysResult<()> {
        let pgid = self.job(j)?.pgid;
        self.k.kill(self.pid, -pgid, Signal::SIGCONT.number())?;
        let job = self.job_mut(j)?;
        job.stopped.clear();
        job.state = JobState::Running;
        Ok(())
    }

    /// `jobs`: each job's state.
    pub fn jobs(&self) -> Vec<JobState> {
        self.jobs.iter().map(|j| j.state.clone()).collect()
    }

    pub fn job(&self, j: usize) -> SysResult<&Job> {
        self.jobs.get(j).ok_or(Errno::ESRCH)
    }

    fn job_mut(&mut self, j: usize) -> SysResult<&mut Job> {
        self.jobs.get_mut(j).ok_or(Errno::ESRCH)
    }

    /// Bytes typed at the terminal.
    pub fn type_keys(&mut self, bytes: &[u8]) -> SysResult<()> {
        self.k.master_write(self.tty, bytes)
    }

    /// The terminal's current foreground process group.
    pub fn foreground(&self) -> Option<Pid> {
        self.k.tty(self.tty).and_then(|t| t.pgrp)
    }
}
