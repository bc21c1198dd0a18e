//! Scheduling policy of the calling thread.

/// Makes the calling thread SCHED_FIFO at the lowest real-time priority, so that it
/// runs as soon as it is woken. Needs CAP_SYS_NICE; returns whether it worked.
pub(crate) fn make_realtime() -> bool {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
}
