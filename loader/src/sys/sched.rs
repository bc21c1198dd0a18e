//! Scheduling policy of the calling thread.

/// Makes the calling thread SCHED_FIFO at the lowest real-time priority, so that it
/// runs as soon as it is woken. Needs CAP_SYS_NICE; returns whether it worked.
pub(crate) fn make_realtime() -> bool {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
}

/// Makes the calling thread SCHED_IDLE: it runs only on a CPU that has nothing else
/// to run, so work done in the background never delays what waits for a CPU. For a
/// thread of its own, as its first step (setting it on the spawning thread, for the new
/// one to inherit, would stall the spawner on a loaded machine). Returns whether it
/// worked.
pub(crate) fn make_background() -> bool {
    let idle = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `idle` is a valid sched_param.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &idle) == 0 }
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
    fn a_background_thread_is_idle_and_its_spawner_keeps_its_policy() {
        let before = policy();
        let child = std::thread::spawn(|| (make_background(), policy()))
            .join()
            .unwrap();
        assert_eq!(child, (true, libc::SCHED_IDLE));
        assert_eq!(policy(), before);
    }
}
