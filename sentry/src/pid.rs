//! Process identifiers. The model has one PID namespace; every number the sentry
//! speaks is a PID of that namespace (the loader translates at the boundary).

/// A task ID, thread-group ID, process-group ID or session ID.
pub type Pid = i32;

/// Linux's default `pid_max`.
pub const PID_MAX_DEFAULT: Pid = 4_194_304;
/// Once the allocator has wrapped, numbers below this are skipped (`RESERVED_PIDS`).
pub const RESERVED_PIDS: Pid = 300;
