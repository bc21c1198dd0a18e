//! The program's allow-list policy and init's own filter.
//!
//! Every syscall number of the architecture is classified once: allowed
//! ([`ALLOW_SYSCALLS`]) or denied ([`DENY_SYSCALLS`]; rows with an argument condition
//! deny only when it holds). [`program_filter`](super::program_filter) compiles the
//! classification into one program (the `bpf` module's compiler, a binary search over the
//! numbers): foreign architectures KILL_PROCESS; for ioctl, the requests of
//! [`DENY_IOCTLS`] EPERM (TIOCSETD and TIOCVHANGUP are not among them: the notify filter
//! sends them to the supervisor, which performs them on the sandbox's own ptys only — see
//! `SUPERVISED_IOCTLS`); the argument-conditioned rows of [`DENY_SYSCALLS`] EPERM when
//! their condition holds, ALLOW otherwise; the rows of [`DENY_SYSCALLS`] denied whatever
//! the arguments EPERM; [`ALLOW_SYSCALLS`] and the caller's extras ALLOW; every other
//! number ENOSYS — x32 numbers and clone3 (whose flags are out of a filter's reach: glibc
//! then falls back to clone) included.
//!
//! So a denied syscall gets EPERM, a number neither table knows — newer than the
//! tables, never assigned, or x32 — gets ENOSYS (glibc and musl then fall back to older
//! syscalls, as with runc's default for unknown syscalls), and an allowed syscall runs.
//! The program decides on the syscall number alone except for the argument-conditioned
//! rows and ioctl, so the kernel's per-syscall action cache lets every other allowed
//! syscall through without running it.

use libc::c_long;

use super::bpf::{Action, Filter, ProgramBuilder, SyscallRule, When, ABSENT};
use super::tables::{allow, arch, x86_64_only, DENY_IOCTLS, DENY_SYSCALLS, ENOSYS, EPERM};
use super::SeccompError;

const IO: &str = "reading and writing open files, pipes and sockets";
const FD: &str = "file descriptor bookkeeping";
const PATH: &str = "file system calls, confined by the sandbox's mount namespace and the \
     kernel's permission checks";
const XATTR: &str = "extended attributes (ACLs, capabilities of files, user.*): permission \
     checked by the kernel";
const MEM: &str = "memory management of the caller's own address space";
const NUMA: &str = "NUMA placement of the caller's own memory";
const PROC: &str = "creating, running and reaping the program's own processes";
const SIG: &str = "signals; the kernel confines them to processes the caller may signal";
const TIME: &str = "reading clocks, sleeping and timers (setting clocks is denied)";
const POLL: &str = "waiting for descriptors";
const FUTEX: &str = "locks and thread synchronisation";
const NET: &str = "sockets; the sandbox has its own network namespace unless --share-net";
const IPC: &str = "System V and POSIX IPC, confined by the sandbox's IPC namespace";
const ID: &str = "credentials: reads, or changes the kernel allows only with capabilities \
     the program does not have (or within its own ids)";
const SCHED: &str = "scheduling of the caller's own threads (raising priority needs \
     CAP_SYS_NICE)";
const AIO: &str = "Linux AIO (databases, emulators): see the module docs' known gap";
const SELF: &str = "per-process state of the caller";
const TRACE: &str = "debugging the program's own children (gdb, strace); the kernel's ptrace \
     access checks protect init (non-dumpable) and everything outside the PID namespace";
const RESTRICT: &str = "a program restricting itself further (browsers, systemd services)";

/// Syscalls the sandboxed program may make whatever their arguments (beyond these,
/// the argument-conditioned rows of [`DENY_SYSCALLS`] are allowed when their condition
/// does not hold). Together with [`DENY_SYSCALLS`] this classifies every syscall of
/// Linux 6.18 on x86_64; a test parses the kernel headers and the `libc` crate to keep
/// it so.
pub const ALLOW_SYSCALLS: &[SyscallRule] = &[
    // I/O.
    allow("read", libc::SYS_read, IO),
    allow("write", libc::SYS_write, IO),
    allow("pread64", libc::SYS_pread64, IO),
    allow("pwrite64", libc::SYS_pwrite64, IO),
    allow("readv", libc::SYS_readv, IO),
    allow("writev", libc::SYS_writev, IO),
    allow("preadv", libc::SYS_preadv, IO),
    allow("pwritev", libc::SYS_pwritev, IO),
    allow("preadv2", libc::SYS_preadv2, IO),
    allow("pwritev2", libc::SYS_pwritev2, IO),
    allow("lseek", libc::SYS_lseek, IO),
    allow("sendfile", libc::SYS_sendfile, IO),
    allow("splice", libc::SYS_splice, IO),
    allow("tee", libc::SYS_tee, IO),
    allow("vmsplice", libc::SYS_vmsplice, IO),
    allow("copy_file_range", libc::SYS_copy_file_range, IO),
    allow("readahead", libc::SYS_readahead, IO),
    allow("fadvise64", libc::SYS_fadvise64, IO),
    allow("sync_file_range", libc::SYS_sync_file_range, IO),
    allow("fallocate", libc::SYS_fallocate, IO),
    allow("fsync", libc::SYS_fsync, IO),
    allow("fdatasync", libc::SYS_fdatasync, IO),
    allow("sync", libc::SYS_sync, IO),
    allow("syncfs", libc::SYS_syncfs, IO),
    allow("flock", libc::SYS_flock, IO),
    allow("truncate", libc::SYS_truncate, IO),
    allow("ftruncate", libc::SYS_ftruncate, IO),
    allow(
        "cachestat",
        arch::CACHESTAT,
        "page cache statistics of a file the caller has open",
    ),
    // Descriptors.
    allow("close", libc::SYS_close, FD),
    allow("close_range", libc::SYS_close_range, FD),
    allow("dup", libc::SYS_dup, FD),
    allow("dup2", x86_64_only!(SYS_dup2), FD),
    allow("dup3", libc::SYS_dup3, FD),
    allow("fcntl", libc::SYS_fcntl, FD),
    allow("pipe", x86_64_only!(SYS_pipe), FD),
    allow("pipe2", libc::SYS_pipe2, FD),
    allow(
        "ioctl",
        libc::SYS_ioctl,
        "terminal and device control; the dangerous terminal requests are DENY_IOCTLS",
    ),
    allow("eventfd", x86_64_only!(SYS_eventfd), FD),
    allow("eventfd2", libc::SYS_eventfd2, FD),
    allow("memfd_create", libc::SYS_memfd_create, "anonymous files"),
    allow(
        "memfd_secret",
        libc::SYS_memfd_secret,
        "memory hidden from the kernel's direct map, for the caller's own secrets",
    ),
    // Paths and metadata.
    allow("open", x86_64_only!(SYS_open), PATH),
    allow("openat", libc::SYS_openat, PATH),
    allow("openat2", libc::SYS_openat2, PATH),
    allow("creat", x86_64_only!(SYS_creat), PATH),
    allow("stat", x86_64_only!(SYS_stat), PATH),
    allow("fstat", libc::SYS_fstat, PATH),
    allow("lstat", x86_64_only!(SYS_lstat), PATH),
    allow("newfstatat", libc::SYS_newfstatat, PATH),
    allow("statx", libc::SYS_statx, PATH),
    allow("statfs", libc::SYS_statfs, PATH),
    allow("fstatfs", libc::SYS_fstatfs, PATH),
    allow(
        "ustat",
        x86_64_only!(SYS_ustat),
        "file system statistics (obsolete)",
    ),
    allow(
        "sysfs",
        x86_64_only!(SYS_sysfs),
        "file system type names (obsolete)",
    ),
    allow("access", x86_64_only!(SYS_access), PATH),
    allow("faccessat", libc::SYS_faccessat, PATH),
    allow("faccessat2", libc::SYS_faccessat2, PATH),
    allow("getdents", x86_64_only!(SYS_getdents), PATH),
    allow("getdents64", libc::SYS_getdents64, PATH),
    allow("getcwd", libc::SYS_getcwd, PATH),
    allow("chdir", libc::SYS_chdir, PATH),
    allow("fchdir", libc::SYS_fchdir, PATH),
    allow(
        "chroot",
        libc::SYS_chroot,
        "needs CAP_SYS_CHROOT; confined by the sandbox's mount namespace",
    ),
    allow("rename", x86_64_only!(SYS_rename), PATH),
    allow("renameat", x86_64_only!(SYS_renameat), PATH),
    allow("renameat2", libc::SYS_renameat2, PATH),
    allow("mkdir", x86_64_only!(SYS_mkdir), PATH),
    allow("mkdirat", libc::SYS_mkdirat, PATH),
    allow("rmdir", x86_64_only!(SYS_rmdir), PATH),
    allow("link", x86_64_only!(SYS_link), PATH),
    allow("linkat", libc::SYS_linkat, PATH),
    allow("unlink", x86_64_only!(SYS_unlink), PATH),
    allow("unlinkat", libc::SYS_unlinkat, PATH),
    allow("symlink", x86_64_only!(SYS_symlink), PATH),
    allow("symlinkat", libc::SYS_symlinkat, PATH),
    allow("readlink", x86_64_only!(SYS_readlink), PATH),
    allow("readlinkat", libc::SYS_readlinkat, PATH),
    allow("chmod", x86_64_only!(SYS_chmod), PATH),
    allow("fchmod", libc::SYS_fchmod, PATH),
    allow("fchmodat", libc::SYS_fchmodat, PATH),
    allow("fchmodat2", arch::FCHMODAT2, PATH),
    allow("chown", x86_64_only!(SYS_chown), PATH),
    allow("fchown", libc::SYS_fchown, PATH),
    allow("lchown", x86_64_only!(SYS_lchown), PATH),
    allow("fchownat", libc::SYS_fchownat, PATH),
    allow("umask", libc::SYS_umask, PATH),
    allow("utime", x86_64_only!(SYS_utime), PATH),
    allow("utimes", x86_64_only!(SYS_utimes), PATH),
    allow("futimesat", x86_64_only!(SYS_futimesat), PATH),
    allow("utimensat", libc::SYS_utimensat, PATH),
    allow("setxattr", libc::SYS_setxattr, XATTR),
    allow("lsetxattr", libc::SYS_lsetxattr, XATTR),
    allow("fsetxattr", libc::SYS_fsetxattr, XATTR),
    allow("getxattr", libc::SYS_getxattr, XATTR),
    allow("lgetxattr", libc::SYS_lgetxattr, XATTR),
    allow("fgetxattr", libc::SYS_fgetxattr, XATTR),
    allow("listxattr", libc::SYS_listxattr, XATTR),
    allow("llistxattr", libc::SYS_llistxattr, XATTR),
    allow("flistxattr", libc::SYS_flistxattr, XATTR),
    allow("removexattr", libc::SYS_removexattr, XATTR),
    allow("lremovexattr", libc::SYS_lremovexattr, XATTR),
    allow("fremovexattr", libc::SYS_fremovexattr, XATTR),
    allow("setxattrat", arch::SETXATTRAT, XATTR),
    allow("getxattrat", arch::GETXATTRAT, XATTR),
    allow("listxattrat", arch::LISTXATTRAT, XATTR),
    allow("removexattrat", arch::REMOVEXATTRAT, XATTR),
    allow(
        "file_getattr",
        arch::FILE_GETATTR,
        "inode flags and project ids, as the FS_IOC_FSGETXATTR ioctl",
    ),
    allow(
        "file_setattr",
        arch::FILE_SETATTR,
        "inode flags, as the FS_IOC_FSSETXATTR ioctl (permission checked)",
    ),
    allow(
        "statmount",
        arch::STATMOUNT,
        "mount information as /proc/self/mountinfo shows it; another mount namespace \
             needs CAP_SYS_ADMIN over it",
    ),
    allow(
        "listmount",
        arch::LISTMOUNT,
        "mount ids as /proc/self/mountinfo shows them; another mount namespace needs \
             CAP_SYS_ADMIN over it",
    ),
    allow(
        "inotify_init",
        x86_64_only!(SYS_inotify_init),
        "file watches",
    ),
    allow("inotify_init1", libc::SYS_inotify_init1, "file watches"),
    allow(
        "inotify_add_watch",
        libc::SYS_inotify_add_watch,
        "file watches",
    ),
    allow(
        "inotify_rm_watch",
        libc::SYS_inotify_rm_watch,
        "file watches",
    ),
    allow(
        "fanotify_mark",
        libc::SYS_fanotify_mark,
        "acts only on an fanotify descriptor, which fanotify_init (denied) creates",
    ),
    // Memory.
    allow("mmap", libc::SYS_mmap, MEM),
    allow("munmap", libc::SYS_munmap, MEM),
    allow("mremap", libc::SYS_mremap, MEM),
    allow("mprotect", libc::SYS_mprotect, MEM),
    allow("madvise", libc::SYS_madvise, MEM),
    allow("brk", libc::SYS_brk, MEM),
    allow("msync", libc::SYS_msync, MEM),
    allow("mincore", libc::SYS_mincore, MEM),
    allow("mlock", libc::SYS_mlock, "bounded by RLIMIT_MEMLOCK"),
    allow("mlock2", libc::SYS_mlock2, "bounded by RLIMIT_MEMLOCK"),
    allow("munlock", libc::SYS_munlock, MEM),
    allow("mlockall", libc::SYS_mlockall, "bounded by RLIMIT_MEMLOCK"),
    allow("munlockall", libc::SYS_munlockall, MEM),
    allow("remap_file_pages", libc::SYS_remap_file_pages, MEM),
    allow("pkey_mprotect", libc::SYS_pkey_mprotect, MEM),
    allow("pkey_alloc", libc::SYS_pkey_alloc, MEM),
    allow("pkey_free", libc::SYS_pkey_free, MEM),
    allow(
        "mseal",
        libc::SYS_mseal,
        "seals the caller's own mappings (glibc hardening)",
    ),
    allow(
        "map_shadow_stack",
        arch::MAP_SHADOW_STACK,
        "shadow stacks of the caller's threads (glibc CET)",
    ),
    allow(
        "membarrier",
        libc::SYS_membarrier,
        "memory barriers across the caller's threads",
    ),
    allow(
        "process_madvise",
        libc::SYS_process_madvise,
        "madvise on a process the caller may ptrace (others need CAP_SYS_NICE)",
    ),
    allow(
        "process_mrelease",
        libc::SYS_process_mrelease,
        "frees the memory of a process already killed (OOM daemons)",
    ),
    allow("mbind", libc::SYS_mbind, NUMA),
    allow("set_mempolicy", libc::SYS_set_mempolicy, NUMA),
    allow("get_mempolicy", libc::SYS_get_mempolicy, NUMA),
    allow(
        "set_mempolicy_home_node",
        libc::SYS_set_mempolicy_home_node,
        NUMA,
    ),
    // Processes.
    allow("fork", x86_64_only!(SYS_fork), PROC),
    allow("vfork", x86_64_only!(SYS_vfork), PROC),
    allow("execve", libc::SYS_execve, PROC),
    allow("execveat", libc::SYS_execveat, PROC),
    allow("exit", libc::SYS_exit, PROC),
    allow("exit_group", libc::SYS_exit_group, PROC),
    allow("wait4", libc::SYS_wait4, PROC),
    allow("waitid", libc::SYS_waitid, PROC),
    allow(
        "setpgid",
        libc::SYS_setpgid,
        "job control: decided by the sentry (notify filter)",
    ),
    allow(
        "setsid",
        libc::SYS_setsid,
        "job control: decided by the sentry (notify filter)",
    ),
    allow("getpid", libc::SYS_getpid, SELF),
    allow("getppid", libc::SYS_getppid, SELF),
    allow("gettid", libc::SYS_gettid, SELF),
    allow("getpgrp", x86_64_only!(SYS_getpgrp), SELF),
    allow("getpgid", libc::SYS_getpgid, SELF),
    allow("getsid", libc::SYS_getsid, SELF),
    allow(
        "set_tid_address",
        libc::SYS_set_tid_address,
        "thread start-up",
    ),
    allow(
        "set_robust_list",
        libc::SYS_set_robust_list,
        "thread start-up",
    ),
    allow(
        "get_robust_list",
        libc::SYS_get_robust_list,
        "another process's list needs ptrace access",
    ),
    allow(
        "rseq",
        libc::SYS_rseq,
        "glibc registers it for every thread",
    ),
    allow(
        "arch_prctl",
        x86_64_only!(SYS_arch_prctl),
        "thread-local storage (x86_64)",
    ),
    allow(
        "set_thread_area",
        x86_64_only!(SYS_set_thread_area),
        "thread-local storage (x86 GDT entries)",
    ),
    allow(
        "get_thread_area",
        x86_64_only!(SYS_get_thread_area),
        "thread-local storage (x86 GDT entries)",
    ),
    allow(
        "prctl",
        libc::SYS_prctl,
        "per-process settings; the privileged ones need capabilities the program lacks",
    ),
    allow("seccomp", libc::SYS_seccomp, RESTRICT),
    allow(
        "landlock_create_ruleset",
        libc::SYS_landlock_create_ruleset,
        RESTRICT,
    ),
    allow("landlock_add_rule", libc::SYS_landlock_add_rule, RESTRICT),
    allow(
        "landlock_restrict_self",
        libc::SYS_landlock_restrict_self,
        RESTRICT,
    ),
    allow("capget", libc::SYS_capget, ID),
    allow("capset", libc::SYS_capset, ID),
    allow("uname", libc::SYS_uname, SELF),
    allow(
        "sethostname",
        libc::SYS_sethostname,
        "needs CAP_SYS_ADMIN; confined by the sandbox's UTS namespace",
    ),
    allow(
        "setdomainname",
        libc::SYS_setdomainname,
        "needs CAP_SYS_ADMIN; confined by the sandbox's UTS namespace",
    ),
    allow(
        "sysinfo",
        libc::SYS_sysinfo,
        "memory and load figures (top, free)",
    ),
    allow("times", libc::SYS_times, SELF),
    allow("getrusage", libc::SYS_getrusage, SELF),
    allow("getrlimit", libc::SYS_getrlimit, SELF),
    allow(
        "setrlimit",
        libc::SYS_setrlimit,
        "raising a hard limit needs CAP_SYS_RESOURCE",
    ),
    allow(
        "prlimit64",
        libc::SYS_prlimit64,
        "another process's limits need its credentials or CAP_SYS_RESOURCE",
    ),
    allow("getpriority", libc::SYS_getpriority, SCHED),
    allow("setpriority", libc::SYS_setpriority, SCHED),
    allow("sched_yield", libc::SYS_sched_yield, SCHED),
    allow("sched_setparam", libc::SYS_sched_setparam, SCHED),
    allow("sched_getparam", libc::SYS_sched_getparam, SCHED),
    allow("sched_setscheduler", libc::SYS_sched_setscheduler, SCHED),
    allow("sched_getscheduler", libc::SYS_sched_getscheduler, SCHED),
    allow(
        "sched_get_priority_max",
        libc::SYS_sched_get_priority_max,
        SCHED,
    ),
    allow(
        "sched_get_priority_min",
        libc::SYS_sched_get_priority_min,
        SCHED,
    ),
    allow(
        "sched_rr_get_interval",
        libc::SYS_sched_rr_get_interval,
        SCHED,
    ),
    allow("sched_setaffinity", libc::SYS_sched_setaffinity, SCHED),
    allow("sched_getaffinity", libc::SYS_sched_getaffinity, SCHED),
    allow("sched_setattr", libc::SYS_sched_setattr, SCHED),
    allow("sched_getattr", libc::SYS_sched_getattr, SCHED),
    allow("getcpu", libc::SYS_getcpu, SCHED),
    allow("ioprio_set", libc::SYS_ioprio_set, SCHED),
    allow("ioprio_get", libc::SYS_ioprio_get, SCHED),
    allow(
        "lsm_get_self_attr",
        arch::LSM_GET_SELF_ATTR,
        "reads the caller's LSM context (as /proc/self/attr)",
    ),
    allow(
        "lsm_list_modules",
        arch::LSM_LIST_MODULES,
        "names the active LSMs",
    ),
    allow("ptrace", libc::SYS_ptrace, TRACE),
    allow("process_vm_readv", libc::SYS_process_vm_readv, TRACE),
    allow("process_vm_writev", libc::SYS_process_vm_writev, TRACE),
    allow("kcmp", libc::SYS_kcmp, TRACE),
    allow("pidfd_open", libc::SYS_pidfd_open, PROC),
    allow("pidfd_getfd", libc::SYS_pidfd_getfd, TRACE),
    // Credentials.
    allow("getuid", libc::SYS_getuid, ID),
    allow("geteuid", libc::SYS_geteuid, ID),
    allow("getgid", libc::SYS_getgid, ID),
    allow("getegid", libc::SYS_getegid, ID),
    allow("getresuid", libc::SYS_getresuid, ID),
    allow("getresgid", libc::SYS_getresgid, ID),
    allow("getgroups", libc::SYS_getgroups, ID),
    allow("setuid", libc::SYS_setuid, ID),
    allow("setgid", libc::SYS_setgid, ID),
    allow("setreuid", libc::SYS_setreuid, ID),
    allow("setregid", libc::SYS_setregid, ID),
    allow("setresuid", libc::SYS_setresuid, ID),
    allow("setresgid", libc::SYS_setresgid, ID),
    allow("setfsuid", libc::SYS_setfsuid, ID),
    allow("setfsgid", libc::SYS_setfsgid, ID),
    allow("setgroups", libc::SYS_setgroups, ID),
    // Signals.
    allow("kill", libc::SYS_kill, SIG),
    allow("tkill", libc::SYS_tkill, SIG),
    allow("tgkill", libc::SYS_tgkill, SIG),
    allow("pidfd_send_signal", libc::SYS_pidfd_send_signal, SIG),
    allow("rt_sigqueueinfo", libc::SYS_rt_sigqueueinfo, SIG),
    allow("rt_tgsigqueueinfo", libc::SYS_rt_tgsigqueueinfo, SIG),
    allow("rt_sigaction", libc::SYS_rt_sigaction, SIG),
    allow("rt_sigprocmask", libc::SYS_rt_sigprocmask, SIG),
    allow("rt_sigreturn", libc::SYS_rt_sigreturn, SIG),
    allow("rt_sigpending", libc::SYS_rt_sigpending, SIG),
    allow("rt_sigtimedwait", libc::SYS_rt_sigtimedwait, SIG),
    allow("rt_sigsuspend", libc::SYS_rt_sigsuspend, SIG),
    allow("sigaltstack", libc::SYS_sigaltstack, SIG),
    allow("signalfd", x86_64_only!(SYS_signalfd), SIG),
    allow("signalfd4", libc::SYS_signalfd4, SIG),
    allow("pause", x86_64_only!(SYS_pause), SIG),
    allow("restart_syscall", libc::SYS_restart_syscall, SIG),
    // Time.
    allow("alarm", x86_64_only!(SYS_alarm), TIME),
    allow("getitimer", libc::SYS_getitimer, TIME),
    allow("setitimer", libc::SYS_setitimer, TIME),
    allow("nanosleep", libc::SYS_nanosleep, TIME),
    allow("clock_nanosleep", libc::SYS_clock_nanosleep, TIME),
    allow("clock_gettime", libc::SYS_clock_gettime, TIME),
    allow("clock_getres", libc::SYS_clock_getres, TIME),
    allow("gettimeofday", libc::SYS_gettimeofday, TIME),
    allow("time", x86_64_only!(SYS_time), TIME),
    allow("timer_create", libc::SYS_timer_create, TIME),
    allow("timer_settime", libc::SYS_timer_settime, TIME),
    allow("timer_gettime", libc::SYS_timer_gettime, TIME),
    allow("timer_getoverrun", libc::SYS_timer_getoverrun, TIME),
    allow("timer_delete", libc::SYS_timer_delete, TIME),
    allow("timerfd_create", libc::SYS_timerfd_create, TIME),
    allow("timerfd_settime", libc::SYS_timerfd_settime, TIME),
    allow("timerfd_gettime", libc::SYS_timerfd_gettime, TIME),
    // Waiting.
    allow("poll", x86_64_only!(SYS_poll), POLL),
    allow("ppoll", libc::SYS_ppoll, POLL),
    allow("select", x86_64_only!(SYS_select), POLL),
    allow("pselect6", libc::SYS_pselect6, POLL),
    allow("epoll_create", x86_64_only!(SYS_epoll_create), POLL),
    allow("epoll_create1", libc::SYS_epoll_create1, POLL),
    allow("epoll_ctl", libc::SYS_epoll_ctl, POLL),
    allow("epoll_wait", x86_64_only!(SYS_epoll_wait), POLL),
    allow("epoll_pwait", libc::SYS_epoll_pwait, POLL),
    allow("epoll_pwait2", libc::SYS_epoll_pwait2, POLL),
    allow("futex", libc::SYS_futex, FUTEX),
    allow("futex_waitv", libc::SYS_futex_waitv, FUTEX),
    allow("futex_wake", arch::FUTEX_WAKE, FUTEX),
    allow("futex_wait", arch::FUTEX_WAIT, FUTEX),
    allow("futex_requeue", arch::FUTEX_REQUEUE, FUTEX),
    // Sockets.
    allow("socket", libc::SYS_socket, NET),
    allow("socketpair", libc::SYS_socketpair, NET),
    allow("connect", libc::SYS_connect, NET),
    allow("accept", libc::SYS_accept, NET),
    allow("accept4", libc::SYS_accept4, NET),
    allow("bind", libc::SYS_bind, NET),
    allow("listen", libc::SYS_listen, NET),
    allow("shutdown", libc::SYS_shutdown, NET),
    allow("getsockname", libc::SYS_getsockname, NET),
    allow("getpeername", libc::SYS_getpeername, NET),
    allow("setsockopt", libc::SYS_setsockopt, NET),
    allow("getsockopt", libc::SYS_getsockopt, NET),
    allow("sendto", libc::SYS_sendto, NET),
    allow("recvfrom", libc::SYS_recvfrom, NET),
    allow("sendmsg", libc::SYS_sendmsg, NET),
    allow("recvmsg", libc::SYS_recvmsg, NET),
    allow("sendmmsg", libc::SYS_sendmmsg, NET),
    allow("recvmmsg", libc::SYS_recvmmsg, NET),
    // IPC.
    allow("shmget", libc::SYS_shmget, IPC),
    allow("shmat", libc::SYS_shmat, IPC),
    allow("shmctl", libc::SYS_shmctl, IPC),
    allow("shmdt", libc::SYS_shmdt, IPC),
    allow("semget", libc::SYS_semget, IPC),
    allow("semop", libc::SYS_semop, IPC),
    allow("semctl", libc::SYS_semctl, IPC),
    allow("semtimedop", libc::SYS_semtimedop, IPC),
    allow("msgget", libc::SYS_msgget, IPC),
    allow("msgsnd", libc::SYS_msgsnd, IPC),
    allow("msgrcv", libc::SYS_msgrcv, IPC),
    allow("msgctl", libc::SYS_msgctl, IPC),
    allow("mq_open", libc::SYS_mq_open, IPC),
    allow("mq_unlink", libc::SYS_mq_unlink, IPC),
    allow("mq_timedsend", libc::SYS_mq_timedsend, IPC),
    allow("mq_timedreceive", libc::SYS_mq_timedreceive, IPC),
    allow("mq_notify", libc::SYS_mq_notify, IPC),
    allow("mq_getsetattr", libc::SYS_mq_getsetattr, IPC),
    // Asynchronous I/O.
    allow("io_setup", libc::SYS_io_setup, AIO),
    allow("io_destroy", libc::SYS_io_destroy, AIO),
    allow("io_getevents", libc::SYS_io_getevents, AIO),
    allow("io_pgetevents", arch::IO_PGETEVENTS, AIO),
    allow("io_submit", libc::SYS_io_submit, AIO),
    allow("io_cancel", libc::SYS_io_cancel, AIO),
    // Randomness.
    allow("getrandom", libc::SYS_getrandom, "random numbers"),
];

const INIT: &str = "init's loop after it forked the program";

/// init's own allow-list, installed right after it forks the program: everything it
/// does from then on (poll its control socket and signalfd, reap, pass SIGHUP on,
/// report on the control socket, allocate, exit). Anything else fails with EPERM
/// (foreign architectures are killed, x32 numbers get EPERM).
pub const INIT_SYSCALLS: &[SyscallRule] = &[
    allow("poll", x86_64_only!(SYS_poll), INIT),
    allow("ppoll", libc::SYS_ppoll, INIT),
    allow("read", libc::SYS_read, "the signalfd"),
    allow(
        "wait4",
        libc::SYS_wait4,
        "reaping the program and orphans (waitpid)",
    ),
    allow("waitid", libc::SYS_waitid, "reaping"),
    allow(
        "kill",
        libc::SYS_kill,
        "SIGHUP and SIGCONT to the program's group",
    ),
    allow(
        "sendmsg",
        libc::SYS_sendmsg,
        "reports on the control socket",
    ),
    allow("sendto", libc::SYS_sendto, "reports on the control socket"),
    allow(
        "recvmsg",
        libc::SYS_recvmsg,
        "the control socket (read on hangup)",
    ),
    allow("write", libc::SYS_write, "reports"),
    allow(
        "close",
        libc::SYS_close,
        "descriptors dropped on the way out",
    ),
    allow(
        "fcntl",
        libc::SYS_fcntl,
        "std's check that a descriptor is open before it is closed (debug builds)",
    ),
    allow("rt_sigprocmask", libc::SYS_rt_sigprocmask, INIT),
    allow("rt_sigreturn", libc::SYS_rt_sigreturn, "signal frames"),
    allow(
        "restart_syscall",
        libc::SYS_restart_syscall,
        "interrupted waits",
    ),
    allow("brk", libc::SYS_brk, "the allocator"),
    allow("mmap", libc::SYS_mmap, "the allocator"),
    allow("munmap", libc::SYS_munmap, "the allocator"),
    allow("mremap", libc::SYS_mremap, "the allocator"),
    allow("madvise", libc::SYS_madvise, "the allocator"),
    allow("mprotect", libc::SYS_mprotect, "the allocator"),
    allow("futex", libc::SYS_futex, "the allocator's and std's locks"),
    allow("getpid", libc::SYS_getpid, INIT),
    allow("gettid", libc::SYS_gettid, INIT),
    allow("clock_gettime", libc::SYS_clock_gettime, INIT),
    allow("exit", libc::SYS_exit, "init's end"),
    allow("exit_group", libc::SYS_exit_group, "init's end"),
];

const HOLDER: &str = "the holder's loop after it forked the program";

/// The holder's own allow-list (the program's parent, leader of its session; see
/// `crate::init`), installed right after it forks the program: everything it does
/// from then on (poll its control socket and signalfd, wait for the program, pass a
/// hangup's SIGHUP and SIGCONT to the program's group, report on the control socket,
/// tell init the end is reported, allocate, exit). Anything else fails with EPERM
/// (foreign architectures are killed, x32 numbers get EPERM).
pub const HOLDER_SYSCALLS: &[SyscallRule] = &[
    allow("poll", x86_64_only!(SYS_poll), HOLDER),
    allow("ppoll", libc::SYS_ppoll, HOLDER),
    allow("read", libc::SYS_read, "the signalfd"),
    allow(
        "wait4",
        libc::SYS_wait4,
        "waiting for the program (waitpid)",
    ),
    allow(
        "kill",
        libc::SYS_kill,
        "SIGHUP and SIGCONT to the program's group; SIGKILL when the loader is gone",
    ),
    allow(
        "sendmsg",
        libc::SYS_sendmsg,
        "reports on the control socket",
    ),
    allow("sendto", libc::SYS_sendto, "reports on the control socket"),
    allow(
        "recvmsg",
        libc::SYS_recvmsg,
        "the control socket (read on hangup)",
    ),
    allow(
        "write",
        libc::SYS_write,
        "reports; the byte that tells init the program's end is reported",
    ),
    allow(
        "close",
        libc::SYS_close,
        "descriptors dropped on the way out",
    ),
    allow(
        "fcntl",
        libc::SYS_fcntl,
        "std's check that a descriptor is open before it is closed (debug builds)",
    ),
    allow("rt_sigprocmask", libc::SYS_rt_sigprocmask, HOLDER),
    allow("rt_sigreturn", libc::SYS_rt_sigreturn, "signal frames"),
    allow(
        "restart_syscall",
        libc::SYS_restart_syscall,
        "interrupted waits",
    ),
    allow("brk", libc::SYS_brk, "the allocator"),
    allow("mmap", libc::SYS_mmap, "the allocator"),
    allow("munmap", libc::SYS_munmap, "the allocator"),
    allow("mremap", libc::SYS_mremap, "the allocator"),
    allow("madvise", libc::SYS_madvise, "the allocator"),
    allow("mprotect", libc::SYS_mprotect, "the allocator"),
    allow("futex", libc::SYS_futex, "the allocator's and std's locks"),
    allow("getpid", libc::SYS_getpid, HOLDER),
    allow("gettid", libc::SYS_gettid, HOLDER),
    allow("clock_gettime", libc::SYS_clock_gettime, HOLDER),
    allow("exit", libc::SYS_exit, "the holder's end"),
    allow("exit_group", libc::SYS_exit_group, "the holder's end"),
];

/// The row of `name` in [`ALLOW_SYSCALLS`] or [`DENY_SYSCALLS`] (the first one, for a
/// syscall with several argument-conditioned rows); `None` for a name the tables do not
/// classify. The row's `nr` is [`ABSENT`] for a syscall this architecture lacks.
pub fn syscall_by_name(name: &str) -> Option<&'static SyscallRule> {
    ALLOW_SYSCALLS
        .iter()
        .chain(DENY_SYSCALLS)
        .find(|r| r.name == name)
}

/// Compiles the program of [`super::program_filter`] (the public entry, which copies
/// the build script's compilation where there is one).
pub fn program_filter<S: AsRef<str>>(allow: &[S]) -> Result<Filter, SeccompError> {
    let mut lifted = Vec::with_capacity(allow.len());
    for name in allow {
        let name = name.as_ref();
        let rule =
            syscall_by_name(name).ok_or_else(|| SeccompError::UnknownSyscall(name.to_owned()))?;
        if rule.nr == ABSENT {
            return Err(SeccompError::UnknownSyscall(name.to_owned()));
        }
        lifted.push(rule.nr);
    }
    // Per syscall, the first check that holds decides: the refused ioctl requests,
    // then the conditioned denials (their syscall allowed when none holds), then the
    // denials whatever the arguments; the allow-list and the lifted names after them.
    let mut b = ProgramBuilder::new(ENOSYS);
    b.ioctls(DENY_IOCTLS.iter().map(|r| r.cmd), EPERM)?;
    let mut allowed: Vec<c_long> = Vec::new();
    for rule in DENY_SYSCALLS {
        if lifted.contains(&rule.nr) {
            continue;
        }
        match (rule.action, rule.when) {
            (EPERM, When::Always) => b.rule(rule)?,
            (EPERM, _) => {
                b.rule(rule)?;
                allowed.push(rule.nr);
            }
            // clone3's ENOSYS: what a number without a row gets.
            (ENOSYS, When::Always) => b.rule(rule)?,
            (action, _) => {
                return Err(SeccompError::Overridden {
                    nr: rule.nr,
                    action,
                })
            }
        }
    }
    allowed.extend(ALLOW_SYSCALLS.iter().map(|r| r.nr));
    allowed.extend(lifted);
    for nr in allowed {
        if nr != ABSENT {
            b.always(nr, Action::Allow)?;
        }
    }
    b.compile()
}

/// Compiles the program of [`super::init_filter`] (see [`super::program_filter`]).
pub fn init_filter() -> Result<Filter, SeccompError> {
    eperm_allow_list(INIT_SYSCALLS)
}

/// Compiles the program of [`super::holder_filter`] (see [`super::program_filter`]).
pub fn holder_filter() -> Result<Filter, SeccompError> {
    eperm_allow_list(HOLDER_SYSCALLS)
}

/// `rules` allowed, everything else EPERM (foreign architectures killed).
fn eperm_allow_list(rules: &[SyscallRule]) -> Result<Filter, SeccompError> {
    let mut b = ProgramBuilder::new(EPERM);
    for rule in rules {
        b.rule(rule)?;
    }
    b.compile()
}

/// Numbers of every row of `table` that exists on this architecture.
#[cfg(test)]
fn numbers(table: &[SyscallRule]) -> Vec<c_long> {
    table
        .iter()
        .filter(|r| r.nr != ABSENT)
        .map(|r| r.nr)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::bpf::{AUDIT_ARCH_I386, AUDIT_ARCH_NATIVE, X32_SYSCALL_BIT};
    use super::super::When;
    use super::*;

    fn act(f: &Filter, nr: c_long, args: [u64; 6]) -> Option<Action> {
        f.action_for(AUDIT_ARCH_NATIVE, nr as i32, args)
    }

    #[test]
    fn every_syscall_is_classified_once() {
        let allowed = numbers(ALLOW_SYSCALLS);
        let mut seen = std::collections::HashSet::new();
        for nr in &allowed {
            assert!(seen.insert(*nr), "{nr} allowed twice");
        }
        for rule in DENY_SYSCALLS {
            assert!(
                !allowed.contains(&rule.nr) || rule.nr == ABSENT,
                "{} both allowed and denied",
                rule.name
            );
        }
        for table in [ALLOW_SYSCALLS, INIT_SYSCALLS, HOLDER_SYSCALLS] {
            for rule in table {
                assert!(!rule.reason.is_empty(), "{} has no reason", rule.name);
                assert_eq!(rule.action, Action::Allow, "{}", rule.name);
            }
        }
    }

    #[test]
    fn notified_syscalls_are_allowed_by_the_policy() {
        let f = program_filter::<&str>(&[]).unwrap();
        let notified = super::super::NOTIFY_SYSCALLS
            .iter()
            .chain(super::super::TTY_IO_SYSCALLS);
        for rule in notified.filter(|r| r.nr != ABSENT) {
            assert_eq!(
                act(&f, rule.nr, [0; 6]),
                Some(Action::Allow),
                "{}",
                rule.name
            );
        }
        for rule in super::super::NOTIFY_IOCTLS
            .iter()
            .chain(super::super::SUPERVISED_IOCTLS)
        {
            let args = [0, u64::from(rule.cmd), 0, 0, 0, 0];
            assert_eq!(
                act(&f, libc::SYS_ioctl, args),
                Some(Action::Allow),
                "{}",
                rule.name
            );
        }
    }

    #[test]
    fn program_filter_decisions() {
        let f = program_filter::<&str>(&[]).unwrap();
        assert_eq!(f.programs().len(), 1);
        let z = [0u64; 6];
        for rule in ALLOW_SYSCALLS.iter().filter(|r| r.nr != ABSENT) {
            assert_eq!(act(&f, rule.nr, z), Some(Action::Allow), "{}", rule.name);
        }
        for rule in DENY_SYSCALLS.iter().filter(|r| r.nr != ABSENT) {
            if rule.when == When::Always {
                assert_eq!(act(&f, rule.nr, z), Some(rule.action), "{}", rule.name);
            }
        }
        // Conditioned rows: denied with the condition, allowed without.
        assert_eq!(
            act(&f, libc::SYS_clone, [17, 0, 0, 0, 0, 0]),
            Some(Action::Allow)
        );
        assert_eq!(
            act(&f, libc::SYS_clone, [0x1000_0000 | 17, 0, 0, 0, 0, 0]),
            Some(EPERM)
        );
        assert_eq!(
            act(&f, libc::SYS_unshare, [0x400, 0, 0, 0, 0, 0]),
            Some(Action::Allow)
        );
        assert_eq!(
            act(&f, libc::SYS_unshare, [0x2_0000, 0, 0, 0, 0, 0]),
            Some(EPERM)
        );
        assert_eq!(
            act(&f, libc::SYS_personality, [8, 0, 0, 0, 0, 0]),
            Some(Action::Allow)
        );
        let ioctl = |cmd: u32| {
            act(
                &f,
                libc::SYS_ioctl,
                [0, u64::from(cmd) | 1 << 32, 0, 0, 0, 0],
            )
        };
        for rule in DENY_IOCTLS {
            assert_eq!(ioctl(rule.cmd), Some(EPERM), "{}", rule.name);
        }
        // Left to the notify filter, whose USER_NOTIF an ERRNO here would beat.
        for rule in super::super::SUPERVISED_IOCTLS {
            assert_eq!(ioctl(rule.cmd), Some(Action::Allow), "{}", rule.name);
        }
        assert_eq!(ioctl(super::super::ioctls::TIOCGETD), Some(Action::Allow));
        assert_eq!(ioctl(super::super::ioctls::TIOCGWINSZ), Some(Action::Allow));
        // Numbers nobody classified: ENOSYS.
        for nr in [335, 387, 423, 470, 511, 512, 1000] {
            assert_eq!(act(&f, nr, z), Some(ENOSYS), "{nr}");
        }
        assert_eq!(act(&f, libc::SYS_clone3, z), Some(ENOSYS));
        if cfg!(target_arch = "x86_64") {
            for nr in [libc::SYS_getpid, libc::SYS_mount, libc::SYS_ioctl] {
                let x32 = (X32_SYSCALL_BIT as i32) | nr as i32;
                assert_eq!(
                    f.action_for(AUDIT_ARCH_NATIVE, x32, z),
                    Some(ENOSYS),
                    "x32 {nr}"
                );
            }
        }
        assert_eq!(
            f.action_for(AUDIT_ARCH_I386, libc::SYS_getpid as i32, z),
            Some(Action::KillProcess)
        );
    }

    #[test]
    fn allowed_names_lift_their_denial() {
        let f = program_filter(&["bpf", "clone", "clone3", "mount"]).unwrap();
        let z = [0u64; 6];
        assert_eq!(act(&f, libc::SYS_bpf, z), Some(Action::Allow));
        assert_eq!(act(&f, libc::SYS_mount, z), Some(Action::Allow));
        assert_eq!(act(&f, libc::SYS_clone3, z), Some(Action::Allow));
        assert_eq!(
            act(&f, libc::SYS_clone, [0x1000_0000 | 17, 0, 0, 0, 0, 0]),
            Some(Action::Allow)
        );
        assert_eq!(act(&f, libc::SYS_umount2, z), Some(EPERM));
        assert_eq!(act(&f, 1000, z), Some(ENOSYS));
        // Allowing an allowed syscall changes nothing.
        let g = program_filter(&["read"]).unwrap();
        assert_eq!(act(&g, libc::SYS_read, z), Some(Action::Allow));
        assert!(matches!(
            program_filter(&["no_such_call"]),
            Err(SeccompError::UnknownSyscall(n)) if n == "no_such_call"
        ));
    }

    #[test]
    fn holder_filter_decisions() {
        let f = holder_filter().unwrap();
        let z = [0u64; 6];
        for rule in HOLDER_SYSCALLS.iter().filter(|r| r.nr != ABSENT) {
            assert_eq!(act(&f, rule.nr, z), Some(Action::Allow), "{}", rule.name);
        }
        for nr in [
            libc::SYS_execve,
            libc::SYS_openat,
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_ptrace,
            libc::SYS_mount,
            libc::SYS_socket,
            libc::SYS_ioctl,
            libc::SYS_seccomp,
            libc::SYS_setsid,
            libc::SYS_setpgid,
            libc::SYS_waitid,
            libc::SYS_prctl,
        ] {
            assert_eq!(act(&f, nr, z), Some(EPERM), "{nr}");
        }
    }

    #[test]
    fn init_filter_decisions() {
        let f = init_filter().unwrap();
        let z = [0u64; 6];
        for rule in INIT_SYSCALLS.iter().filter(|r| r.nr != ABSENT) {
            assert_eq!(act(&f, rule.nr, z), Some(Action::Allow), "{}", rule.name);
        }
        for nr in [
            libc::SYS_execve,
            libc::SYS_openat,
            libc::SYS_clone,
            libc::SYS_ptrace,
            libc::SYS_mount,
            libc::SYS_socket,
            libc::SYS_ioctl,
            libc::SYS_seccomp,
            libc::SYS_setsid,
        ] {
            assert_eq!(act(&f, nr, z), Some(EPERM), "{nr}");
        }
        assert_eq!(act(&f, libc::SYS_clone3, z), Some(EPERM));
    }
}
