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
    let mut before = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `before` is a valid sched_param to fill.
    let policy = unsafe { libc::sched_getscheduler(0) };
    // SAFETY: as above.
    let got = policy >= 0 && unsafe { libc::sched_getparam(0, &mut before) } == 0;
    let idle = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `idle` is a valid sched_param.
    let set = got && unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &idle) } == 0;
    let spawned = spawn();
    if set {
        // SAFETY: the policy and parameters the thread had, read above.
        unsafe { libc::sched_setscheduler(0, policy, &before) };
    }
    spawned
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy() -> i32 {
        // SAFETY: pid 0 is the calling thread.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn a_background_thread_is_idle_and_the_caller_keeps_its_policy() {
        let before = policy();
        let child = spawn_in_background(|| std::thread::spawn(policy))
            .join()
            .unwrap();
        assert_eq!(child, libc::SCHED_IDLE);
        assert_eq!(policy(), before);
    }
}
