//! Throughput and memory of the sentry, against the host kernel doing the real system
//! calls in the same run.
//!
//! `cargo run --release -p sandbox-sentry --example sentry_bench [-- --quick]`

use sandbox_sentry::wait::{WCONTINUED, WUNTRACED};
use sandbox_sentry::{Handler, Kernel, KernelConfig, OpenFlags, Pid, Signal};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live heap bytes.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged and only keeps a count.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Row {
    name: &'static str,
    ops: u64,
    secs: f64,
}

impl Row {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

/// Runs `f` (which performs `per_call` operations) until `min` has passed.
fn measure(name: &'static str, min: Duration, per_call: u64, mut f: impl FnMut()) -> Row {
    let start = Instant::now();
    let mut ops = 0;
    while start.elapsed() < min {
        for _ in 0..64 {
            f();
            ops += per_call;
        }
    }
    Row {
        name,
        ops,
        secs: start.elapsed().as_secs_f64(),
    }
}

fn quiet_kernel() -> Kernel {
    Kernel::with_config(KernelConfig {
        record_events: false,
        ..KernelConfig::default()
    })
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            eprintln!("benchmark step failed: {e:?}");
            std::process::exit(1);
        }
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let min = Duration::from_millis(if quick { 100 } else { 400 });
    let mut rows = Vec::new();

    // ---- host baselines (real system calls) ----
    // SAFETY: setpgid(0, 0) on ourselves; harmless (we may already lead our group).
    rows.push(measure("host setpgid(0,0) syscall", min, 1, || unsafe {
        libc::setpgid(0, 0);
    }));
    // SAFETY: getpgid(0) reads our own process group.
    rows.push(measure("host getpgid(0) syscall", min, 1, || unsafe {
        libc::getpgid(0);
    }));
    // SAFETY: signal 0 to ourselves only checks existence.
    rows.push(measure("host kill(self, 0) syscall", min, 1, || unsafe {
        libc::kill(libc::getpid(), 0);
    }));
    rows.push(measure("host fork+_exit+waitpid", min, 1, || {
        // SAFETY: the child only calls _exit; the parent reaps it.
        unsafe {
            let pid = libc::fork();
            if pid == 0 {
                libc::_exit(0);
            }
            if pid > 0 {
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }));

    // ---- the model ----
    let mut k = quiet_kernel();
    let sh = ok(k.fork(Kernel::INIT));
    ok(k.setsid(sh));
    let kids: Vec<Pid> = (0..10).map(|_| ok(k.fork(sh))).collect();
    let a = kids[0];
    ok(k.setpgid(sh, a, a));
    let mut i = 0usize;
    rows.push(measure(
        "model setpgid (move child between groups)",
        min,
        1,
        || {
            let c = kids[1 + i % 9];
            let target = if i.is_multiple_of(2) { a } else { c };
            let _ = k.setpgid(sh, c, target);
            i += 1;
        },
    ));
    rows.push(measure("model getpgid", min, 1, || {
        let _ = k.getpgid(sh, a);
    }));
    for &c in &kids {
        ok(k.set_handler(c, Signal::SIGUSR1, Handler::Catch, 0));
    }
    rows.push(measure(
        "model kill(pid, SIGUSR1) to a handler",
        min,
        1,
        || {
            let _ = k.kill(sh, a, Signal::SIGUSR1.number());
        },
    ));
    for &c in &kids[1..] {
        let _ = k.setpgid(sh, c, a);
    }
    rows.push(measure(
        "model kill(-pgid) to a group of 10",
        min,
        1,
        || {
            let _ = k.kill(sh, -a, Signal::SIGUSR1.number());
        },
    ));
    rows.push(measure(
        "model SIGSTOP+SIGCONT+2 wait4 reports",
        min,
        4,
        || {
            let _ = k.kill(sh, a, Signal::SIGSTOP.number());
            let _ = k.wait4(sh, a, WUNTRACED | WCONTINUED);
            let _ = k.kill(sh, a, Signal::SIGCONT.number());
            let _ = k.wait4(sh, a, WUNTRACED | WCONTINUED);
        },
    ));
    rows.push(measure("model fork+exit_group+wait4 reap", min, 3, || {
        if let Ok(c) = k.fork(sh) {
            let _ = k.exit_group(c, 0);
            let _ = k.wait4(sh, c, 0);
        }
    }));
    let tty = k.create_pty();
    let fd = ok(k.open_tty(sh, tty, OpenFlags::RDWR));
    rows.push(measure(
        "model tcsetpgrp between two groups",
        min,
        1,
        || {
            let g = if i.is_multiple_of(2) { a } else { sh };
            let _ = k.tcsetpgrp(sh, fd, g);
            i += 1;
        },
    ));
    let mut with_events = Kernel::new();
    let s2 = ok(with_events.fork(Kernel::INIT));
    let c2 = ok(with_events.fork(s2));
    ok(with_events.set_handler(c2, Signal::SIGUSR1, Handler::Catch, 0));
    rows.push(measure(
        "model kill to a handler, events recorded",
        min,
        1,
        || {
            let _ = with_events.kill(s2, c2, Signal::SIGUSR1.number());
            with_events.take_events();
        },
    ));
    // The job-control mix: what a shell does per foreground job.
    rows.push(measure(
        "model job-control mix (shell runs a job)",
        min,
        7,
        || {
            if let Ok(j) = k.fork(sh) {
                let _ = k.setpgid(j, 0, 0);
                let _ = k.setpgid(sh, j, j);
                let _ = k.tcsetpgrp(sh, fd, j);
                let _ = k.exit_group(j, 0);
                let _ = k.wait4(sh, -1, WUNTRACED);
                let _ = k.tcsetpgrp(sh, fd, sh);
            }
        },
    ));

    println!(
        "{:<48} {:>12} {:>14} {:>10}",
        "operation", "ops", "ops/s", "ns/op"
    );
    for r in &rows {
        println!(
            "{:<48} {:>12} {:>14.0} {:>10.1}",
            r.name,
            r.ops,
            r.rate(),
            1e9 / r.rate()
        );
    }
    let rate = |n: &str| {
        rows.iter()
            .find(|r| r.name == n)
            .map(Row::rate)
            .unwrap_or(0.0)
    };
    println!();
    println!(
        "ratios: model setpgid / host setpgid = {:.1}x; model kill / host kill(0) = {:.1}x; \
         model fork+exit+reap / host fork+exit+waitpid = {:.1}x",
        rate("model setpgid (move child between groups)") / rate("host setpgid(0,0) syscall"),
        rate("model kill(pid, SIGUSR1) to a handler") / rate("host kill(self, 0) syscall"),
        rate("model fork+exit_group+wait4 reap") / rate("host fork+_exit+waitpid"),
    );

    // ---- memory: 100,000 live tasks ----
    drop(k);
    drop(with_events);
    let before_bytes = LIVE.load(Ordering::Relaxed);
    let before_rss = vm_rss_kib();
    let mut big = quiet_kernel();
    let mut parents = Vec::new();
    for _ in 0..100 {
        let p = ok(big.fork(Kernel::INIT));
        ok(big.setsid(p));
        parents.push(p);
    }
    // 100 sessions, each with processes in groups of 10; half the processes carry a
    // second thread, until 100,000 tasks are alive.
    let mut n = 0usize;
    while big.live_task_count() < 100_000 {
        let p = parents[n % parents.len()];
        let c = ok(big.fork(p));
        if n.is_multiple_of(10) {
            ok(big.setpgid(p, c, c));
        }
        if n.is_multiple_of(2) && big.live_task_count() < 100_000 {
            ok(big.spawn_thread(c));
        }
        n += 1;
    }
    let live = big.live_task_count();
    let bytes = LIVE.load(Ordering::Relaxed) - before_bytes;
    let rss = vm_rss_kib().saturating_sub(before_rss);
    println!();
    println!(
        "memory: {live} live tasks: {:.1} MiB allocated ({:.0} bytes/task), RSS grew {:.1} MiB",
        bytes as f64 / 1048576.0,
        bytes as f64 / live as f64,
        rss as f64 / 1024.0
    );
    let class = [
        "model setpgid (move child between groups)",
        "model kill(pid, SIGUSR1) to a handler",
        "model SIGSTOP+SIGCONT+2 wait4 reports",
        "model fork+exit_group+wait4 reap",
    ];
    let slowest = class.iter().map(|n| rate(n)).fold(f64::INFINITY, f64::min);
    println!(
        "{} setpgid/kill/wait class: slowest {:.0} ops/s (target >= 1,000,000)",
        if slowest >= 1e6 { "PASS" } else { "FAIL" },
        slowest
    );
    println!(
        "{} 100,000 live tasks: {:.1} MiB (target < 200 MB)",
        if live >= 100_000 && bytes < 200_000_000 {
            "PASS"
        } else {
            "FAIL"
        },
        bytes as f64 / 1048576.0
    );
}
