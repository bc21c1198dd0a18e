//! Scheduling policy of the calling thread.

/// Makes the calling thread SCHED_FIFO at the lowest real-time priority, so that it
/// runs as soon as it is woken. Needs CAP_SYS_NICE; returns whether it worked.
pub(crate) fn make_realtime() -> bool {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
}

/// Runs `spawn` (which starts a thread) with the calling thread SCHED_IDLE, so that the
/// new thread is SCHED_IDLE from its first instruction (threads inherit the policy):
/// it runs only on a CPU that has nothing else to run, so work done in the background
/// never delays what waits for a CPU. The calling thread's policy is restored after.
pub(crate) fn spawn_in_background<T>(spawn: impl FnOnce() -> T) -> T {
    let idle = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `idle` is a valid sched_param.
    let set = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &idle) == 0 };
    let spawned = spawn();
    if set {
        let normal = libc::sched_param { sched_priority: 0 };
        // SAFETY: as above.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &normal) };
    }
    spawned
}
