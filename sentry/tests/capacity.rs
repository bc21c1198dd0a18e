//! The model holds 100,000 live tasks and gives every resource back when they die.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_sentry::wait::WNOHANG;
use sandbox_sentry::{Blocking, Kernel, KernelConfig};

#[test]
fn hundred_thousand_live_tasks_then_all_reaped_leaves_only_init() {
    let mut k = Kernel::with_config(KernelConfig {
        record_events: false,
        ..KernelConfig::default()
    });
    let mut parents = Vec::new();
    for _ in 0..50 {
        let p = k.fork(Kernel::INIT).unwrap();
        k.setsid(p).unwrap();
        parents.push(p);
    }
    let mut n = 0usize;
    while k.live_task_count() < 100_000 {
        let p = parents[n % parents.len()];
        let c = k.fork(p).unwrap();
        if n.is_multiple_of(10) {
            k.setpgid(p, c, c).unwrap();
        }
        if n.is_multiple_of(2) && k.live_task_count() < 100_000 {
            k.spawn_thread(c).unwrap();
        }
        n += 1;
    }
    assert_eq!(k.live_task_count(), 100_000);
    // The parents die: their children go to init, which reaps everything.
    for &p in &parents {
        k.exit_group(p, 0).unwrap();
    }
    for pid in k.processes() {
        if pid != Kernel::INIT {
            let _ = k.kill(Kernel::INIT, pid, 9);
        }
    }
    while let Ok(Blocking::Ready(Some(_))) = k.wait4(Kernel::INIT, -1, WNOHANG) {}
    assert_eq!(k.processes(), vec![Kernel::INIT]);
    assert_eq!(k.live_task_count(), 1);
    assert!(k.process_group(parents[0]).is_none());
    assert!(k.session(parents[0]).is_none());
}
