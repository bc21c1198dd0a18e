//! The sandbox's seccomp rules, written as data, and the three filters built from them.

#[cfg(test)]
use super::bpf::ABSENT;
use super::bpf::{Action, Filter, IoctlRule, ProgramBuilder, SyscallRule, When};
use super::stack::StackBuilder;
use super::SeccompError;

/// Terminal and seccomp ioctl request numbers as the kernel compares them (`unsigned
/// int`; values of the asm-generic layout shared by x86_64 and aarch64).
pub mod ioctls {
    /// Get termios.
    pub const TCGETS: u32 = 0x5401;
    /// Set termios now.
    pub const TCSETS: u32 = 0x5402;
    /// Set termios after output drains.
    pub const TCSETSW: u32 = 0x5403;
    /// Set termios after output drains, discarding pending input.
    pub const TCSETSF: u32 = 0x5404;
    /// Set termio (old struct) now.
    pub const TCSETA: u32 = 0x5406;
    /// Set termio after output drains.
    pub const TCSETAW: u32 = 0x5407;
    /// Set termio after drain, flushing input.
    pub const TCSETAF: u32 = 0x5408;
    /// tcdrain / tcsendbreak (old form).
    pub const TCSBRK: u32 = 0x5409;
    /// tcflow.
    pub const TCXONC: u32 = 0x540A;
    /// tcflush.
    pub const TCFLSH: u32 = 0x540B;
    /// Make the terminal the controlling terminal.
    pub const TIOCSCTTY: u32 = 0x540E;
    /// tcgetpgrp.
    pub const TIOCGPGRP: u32 = 0x540F;
    /// tcsetpgrp.
    pub const TIOCSPGRP: u32 = 0x5410;
    /// Bytes in the output queue.
    pub const TIOCOUTQ: u32 = 0x5411;
    /// Fake input.
    pub const TIOCSTI: u32 = 0x5412;
    /// Get window size.
    pub const TIOCGWINSZ: u32 = 0x5413;
    /// Set window size.
    pub const TIOCSWINSZ: u32 = 0x5414;
    /// Bytes in the input queue.
    pub const FIONREAD: u32 = 0x541B;
    /// Linux console multiplexer (selection, paste, ...).
    pub const TIOCLINUX: u32 = 0x541C;
    /// Redirect console output.
    pub const TIOCCONS: u32 = 0x541D;
    /// Non-blocking I/O on/off.
    pub const FIONBIO: u32 = 0x5421;
    /// Give up the controlling terminal.
    pub const TIOCNOTTY: u32 = 0x5422;
    /// Set line discipline.
    pub const TIOCSETD: u32 = 0x5423;
    /// Get line discipline.
    pub const TIOCGETD: u32 = 0x5424;
    /// tcsendbreak with a duration in deciseconds.
    pub const TCSBRKP: u32 = 0x5425;
    /// Start sending a break.
    pub const TIOCSBRK: u32 = 0x5427;
    /// Stop sending a break.
    pub const TIOCCBRK: u32 = 0x5428;
    /// tcgetsid.
    pub const TIOCGSID: u32 = 0x5429;
    /// Get termios2.
    pub const TCGETS2: u32 = 0x802C_542A;
    /// Set termios2 now.
    pub const TCSETS2: u32 = 0x402C_542B;
    /// Set termios2 after drain.
    pub const TCSETSW2: u32 = 0x402C_542C;
    /// Set termios2 after drain, flushing input.
    pub const TCSETSF2: u32 = 0x402C_542D;
    /// Number of a pty (on the master).
    pub const TIOCGPTN: u32 = 0x8004_5430;
    /// Lock/unlock a pty (on the master).
    pub const TIOCSPTLCK: u32 = 0x4004_5431;
    /// Hang up the terminal for every user of it.
    pub const TIOCVHANGUP: u32 = 0x5437;
    /// Open the peer of a pty master.
    pub const TIOCGPTPEER: u32 = 0x5441;
    /// Clear close-on-exec.
    pub const FIONCLEX: u32 = 0x5450;
    /// Exclusive mode on.
    pub const TIOCEXCL: u32 = 0x540C;
    /// Exclusive mode off.
    pub const TIOCNXCL: u32 = 0x540D;
    /// Read exclusive mode.
    pub const TIOCGEXCL: u32 = 0x8004_5440;
    /// Read the locked termios.
    pub const TIOCGLCKTRMIOS: u32 = 0x5456;
    /// Set the locked termios (CAP_SYS_ADMIN).
    pub const TIOCSLCKTRMIOS: u32 = 0x5457;
    /// Set close-on-exec.
    pub const FIOCLEX: u32 = 0x5451;

    /// SECCOMP_IOCTL_NOTIF_RECV (`_IOWR('!', 0, struct seccomp_notif)`).
    pub const SECCOMP_IOCTL_NOTIF_RECV: u32 = 0xC050_2100;
    /// SECCOMP_IOCTL_NOTIF_SEND (`_IOWR('!', 1, struct seccomp_notif_resp)`).
    pub const SECCOMP_IOCTL_NOTIF_SEND: u32 = 0xC018_2101;
    /// SECCOMP_IOCTL_NOTIF_ID_VALID (`_IOW('!', 2, __u64)`).
    pub const SECCOMP_IOCTL_NOTIF_ID_VALID: u32 = 0x4008_2102;
    /// The first definition of ID_VALID (`_IOR`), which the kernel still accepts.
    pub const SECCOMP_IOCTL_NOTIF_ID_VALID_WRONG_DIR: u32 = 0x8008_2102;
    /// SECCOMP_IOCTL_NOTIF_ADDFD (`_IOW('!', 3, struct seccomp_notif_addfd)`).
    pub const SECCOMP_IOCTL_NOTIF_ADDFD: u32 = 0x4018_2103;
    /// SECCOMP_IOCTL_NOTIF_SET_FLAGS (`_IOW('!', 4, __u64)`).
    pub const SECCOMP_IOCTL_NOTIF_SET_FLAGS: u32 = 0x4008_2104;
}

use ioctls::*;

/// Namespace flags of clone/unshare. `CLONE_NEWTIME` (0x80) is only meaningful to
/// unshare and clone3: in clone()'s flags that bit belongs to the exit signal.
const CLONE_NS_FLAGS: u32 = 0x0002_0000 // CLONE_NEWNS
    | 0x0200_0000 // CLONE_NEWCGROUP
    | 0x0400_0000 // CLONE_NEWUTS
    | 0x0800_0000 // CLONE_NEWIPC
    | 0x1000_0000 // CLONE_NEWUSER
    | 0x2000_0000 // CLONE_NEWPID
    | 0x4000_0000; // CLONE_NEWNET
const UNSHARE_NS_FLAGS: u32 = CLONE_NS_FLAGS | 0x80; // + CLONE_NEWTIME
const CLONE_THREAD: u32 = 0x0001_0000;

/// `S_IFMT` and the device node types of it.
const S_IFMT: u32 = 0o170_000;
const DEVICE_NODE_TYPES: &[u32] = &[0o020_000 /* S_IFCHR */, 0o060_000 /* S_IFBLK */];

/// Personalities Docker's default profile allows: PER_LINUX, PER_LINUX32, UNAME26,
/// UNAME26|PER_LINUX32, and 0xffffffff (query only).
const SAFE_PERSONALITIES: &[u32] = &[0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// Syscall numbers that only some architectures have.
pub(super) mod arch {
    use libc::c_long;

    #[cfg(target_arch = "x86_64")]
    mod imp {
        use libc::c_long;
        pub const IOPL: c_long = libc::SYS_iopl;
        pub const IOPERM: c_long = libc::SYS_ioperm;
        pub const MKNOD: c_long = libc::SYS_mknod;
        pub const POLL: c_long = libc::SYS_poll;
        pub const DUP2: c_long = libc::SYS_dup2;
        pub const ARCH_PRCTL: c_long = libc::SYS_arch_prctl;
        /// io_pgetevents (Linux 4.18), which the libc crate does not name.
        pub const IO_PGETEVENTS: c_long = 333;
        // Obsolete module syscalls the libc crate does not name (syscall_64.tbl).
        pub const CREATE_MODULE: c_long = 174;
        pub const GET_KERNEL_SYMS: c_long = 177;
        pub const QUERY_MODULE: c_long = 178;
    }
    #[cfg(not(target_arch = "x86_64"))]
    mod imp {
        use crate::seccomp::ABSENT;
        use libc::c_long;
        pub const IOPL: c_long = ABSENT;
        pub const IOPERM: c_long = ABSENT;
        pub const MKNOD: c_long = ABSENT;
        pub const POLL: c_long = ABSENT;
        pub const DUP2: c_long = ABSENT;
        pub const ARCH_PRCTL: c_long = ABSENT;
        /// io_pgetevents in include/uapi/asm-generic/unistd.h.
        pub const IO_PGETEVENTS: c_long = 292;
        pub const CREATE_MODULE: c_long = ABSENT;
        pub const GET_KERNEL_SYMS: c_long = ABSENT;
        pub const QUERY_MODULE: c_long = ABSENT;
    }
    pub use imp::*;
    /// Syscalls newer than the `libc` crate's tables (numbers ≥ 424 are the same on
    /// every architecture: include/uapi/asm-generic/unistd.h).
    pub const CACHESTAT: c_long = 451;
    pub const FCHMODAT2: c_long = 452;
    pub const MAP_SHADOW_STACK: c_long = 453;
    pub const FUTEX_WAKE: c_long = 454;
    pub const FUTEX_WAIT: c_long = 455;
    pub const FUTEX_REQUEUE: c_long = 456;
    pub const STATMOUNT: c_long = 457;
    pub const LISTMOUNT: c_long = 458;
    pub const LSM_GET_SELF_ATTR: c_long = 459;
    pub const LSM_SET_SELF_ATTR: c_long = 460;
    pub const LSM_LIST_MODULES: c_long = 461;
    pub const SETXATTRAT: c_long = 463;
    pub const GETXATTRAT: c_long = 464;
    pub const LISTXATTRAT: c_long = 465;
    pub const REMOVEXATTRAT: c_long = 466;
    /// open_tree_attr (Linux 6.15).
    pub const OPEN_TREE_ATTR: c_long = 467;
    pub const FILE_GETATTR: c_long = 468;
    pub const FILE_SETATTR: c_long = 469;
}

pub(super) const EPERM: Action = Action::Errno(libc::EPERM as u16);
pub(super) const ENOSYS: Action = Action::Errno(libc::ENOSYS as u16);

pub(super) const fn deny(
    name: &'static str,
    nr: libc::c_long,
    reason: &'static str,
) -> SyscallRule {
    SyscallRule {
        name,
        nr,
        when: When::Always,
        action: EPERM,
        reason,
    }
}

pub(super) const fn allow(
    name: &'static str,
    nr: libc::c_long,
    reason: &'static str,
) -> SyscallRule {
    SyscallRule {
        name,
        nr,
        when: When::Always,
        action: Action::Allow,
        reason,
    }
}

const MOUNT: &str = "changes the mount tree the sandbox set up (mounts are made before the \
     filter is installed); could uncover or remount host paths";
const NAMESPACES: &str = "creating namespaces (user namespaces above all) opens kernel attack \
     surface a sandboxed program does not need; non-namespace flags (CLONE_FILES, CLONE_FS, \
     CLONE_SYSVSEM, threads, plain fork) stay allowed";
const KEYS: &str = "kernel keyrings are not namespaced: the host users' keys would be in reach";
const TIME: &str = "the system clock is not namespaced (read-only adjtimex queries fail too)";
const MODULES: &str = "loading or unloading kernel code";
const IO_URING: &str = "large kernel attack surface, and its reads and writes would bypass the \
     notify filter's tty_io interception";
const QUOTA: &str = "disk quotas are host-wide";
const OBSOLETE: &str = "removed from Linux or never implemented (ENOSYS from the kernel)";

/// `libc::SYS_<name>` on x86_64, [`ABSENT`](super::ABSENT) elsewhere: for the syscalls
/// of the old x86_64 table that the asm-generic table (aarch64) does not have.
#[cfg(target_arch = "x86_64")]
macro_rules! x86_64_only {
    ($sys:ident) => {
        libc::$sys
    };
}
#[cfg(not(target_arch = "x86_64"))]
macro_rules! x86_64_only {
    ($sys:ident) => {
        $crate::seccomp::ABSENT
    };
}
pub(super) use x86_64_only;

/// The deny list (modelled on Docker's default profile): syscalls a sandboxed program
/// must not make once the sandbox is set up, EPERM (clone3: ENOSYS). Together with
/// [`ALLOW_SYSCALLS`](super::ALLOW_SYSCALLS) it classifies every syscall of the
/// architecture (see [`program_filter`](super::program_filter)); a row with an argument
/// condition (clone, unshare, mknod, mknodat, personality) denies only when the
/// condition holds and allows the call otherwise. [`deny_filter`] installs it alone,
/// with everything else allowed. Deliberately NOT here (allowed):
/// - `ptrace`, `process_vm_readv/writev`: since Linux 4.8 seccomp re-checks a syscall
///   after a tracer changes it, so tracing cannot bypass the filters, and the kernel
///   confines them to processes the caller may trace (Docker allows them likewise);
/// - `chroot`, `sethostname`, `setdomainname`: confined by the sandbox's mount and UTS
///   namespaces;
/// - `setpgid`, `setsid` and job-control ioctls: those go to the sentry
///   ([`notify_filter`](super::notify_filter)).
pub const DENY_SYSCALLS: &[SyscallRule] = &[
    // Mount tree.
    deny("mount", libc::SYS_mount, MOUNT),
    deny("umount2", libc::SYS_umount2, MOUNT),
    deny("pivot_root", libc::SYS_pivot_root, MOUNT),
    deny("open_tree", libc::SYS_open_tree, MOUNT),
    deny("open_tree_attr", arch::OPEN_TREE_ATTR, MOUNT),
    deny("move_mount", libc::SYS_move_mount, MOUNT),
    deny("fsopen", libc::SYS_fsopen, MOUNT),
    deny("fsconfig", libc::SYS_fsconfig, MOUNT),
    deny("fsmount", libc::SYS_fsmount, MOUNT),
    deny("fspick", libc::SYS_fspick, MOUNT),
    deny("mount_setattr", libc::SYS_mount_setattr, MOUNT),
    // Namespaces.
    SyscallRule {
        name: "unshare",
        nr: libc::SYS_unshare,
        when: When::ArgAnyBit {
            arg: 0,
            mask: UNSHARE_NS_FLAGS,
        },
        action: EPERM,
        reason: NAMESPACES,
    },
    SyscallRule {
        name: "clone",
        nr: libc::SYS_clone,
        when: When::ArgAnyBit {
            arg: 0,
            mask: CLONE_NS_FLAGS,
        },
        action: EPERM,
        reason: NAMESPACES,
    },
    SyscallRule {
        name: "clone3",
        nr: libc::SYS_clone3,
        when: When::Always,
        action: ENOSYS,
        reason: "its flags are in memory, out of seccomp's reach; ENOSYS (not EPERM) makes \
             glibc fall back to clone, whose flags are checked (Docker does the same)",
    },
    deny(
        "setns",
        libc::SYS_setns,
        "joining another namespace (through an inherited fd) would leave the sandbox",
    ),
    // Kernel code and kernel attack surface.
    deny("init_module", libc::SYS_init_module, MODULES),
    deny("finit_module", libc::SYS_finit_module, MODULES),
    deny("delete_module", libc::SYS_delete_module, MODULES),
    deny(
        "kexec_load",
        libc::SYS_kexec_load,
        "replaces the running kernel",
    ),
    deny(
        "kexec_file_load",
        libc::SYS_kexec_file_load,
        "replaces the running kernel",
    ),
    deny(
        "bpf",
        libc::SYS_bpf,
        "eBPF programs and maps: kernel attack surface and kernel memory reads",
    ),
    deny(
        "perf_event_open",
        libc::SYS_perf_event_open,
        "performance counters leak host activity and are a frequent exploit vector",
    ),
    deny(
        "userfaultfd",
        libc::SYS_userfaultfd,
        "lets a process pause kernel copies at chosen points, a building block of race exploits",
    ),
    deny("io_uring_setup", libc::SYS_io_uring_setup, IO_URING),
    deny("io_uring_enter", libc::SYS_io_uring_enter, IO_URING),
    deny("io_uring_register", libc::SYS_io_uring_register, IO_URING),
    deny(
        "iopl",
        arch::IOPL,
        "raw I/O port access (x86): direct hardware access",
    ),
    deny(
        "ioperm",
        arch::IOPERM,
        "raw I/O port access (x86): direct hardware access",
    ),
    deny(
        "open_by_handle_at",
        libc::SYS_open_by_handle_at,
        "opens files by handle, bypassing the sandbox's root (the 'shocker' container escape)",
    ),
    deny(
        "fanotify_init",
        libc::SYS_fanotify_init,
        "mount- and filesystem-wide marks watch (and can block) files beyond the sandbox",
    ),
    SyscallRule {
        name: "mknod",
        nr: arch::MKNOD,
        when: When::ArgIn {
            arg: 1,
            mask: S_IFMT,
            values: DEVICE_NODE_TYPES,
        },
        action: EPERM,
        reason: "device nodes: without a device cgroup, root in the sandbox could make a node \
             for a host disk; fifos, sockets and files stay allowed",
    },
    SyscallRule {
        name: "mknodat",
        nr: libc::SYS_mknodat,
        when: When::ArgIn {
            arg: 2,
            mask: S_IFMT,
            values: DEVICE_NODE_TYPES,
        },
        action: EPERM,
        reason: "device nodes, as mknod",
    },
    SyscallRule {
        name: "personality",
        nr: libc::SYS_personality,
        when: When::ArgNotIn {
            arg: 0,
            mask: u32::MAX,
            values: SAFE_PERSONALITIES,
        },
        action: EPERM,
        reason: "flags such as ADDR_NO_RANDOMIZE and READ_IMPLIES_EXEC weaken exploit \
             mitigations for what the process executes next; the values Docker allows pass",
    },
    // Host-wide state.
    deny("add_key", libc::SYS_add_key, KEYS),
    deny("keyctl", libc::SYS_keyctl, KEYS),
    deny("request_key", libc::SYS_request_key, KEYS),
    deny(
        "reboot",
        libc::SYS_reboot,
        "halting or rebooting (in a PID namespace it would end the sandbox's init instead; \
             denied all the same)",
    ),
    deny("swapon", libc::SYS_swapon, "swap is host-wide"),
    deny("swapoff", libc::SYS_swapoff, "swap is host-wide"),
    deny("settimeofday", libc::SYS_settimeofday, TIME),
    deny("clock_settime", libc::SYS_clock_settime, TIME),
    deny("clock_adjtime", libc::SYS_clock_adjtime, TIME),
    deny("adjtimex", libc::SYS_adjtimex, TIME),
    deny(
        "acct",
        libc::SYS_acct,
        "process accounting writes host-wide records into a chosen file",
    ),
    deny("quotactl", libc::SYS_quotactl, QUOTA),
    deny("quotactl_fd", libc::SYS_quotactl_fd, QUOTA),
    deny(
        "nfsservctl",
        libc::SYS_nfsservctl,
        "NFS server control (gone since Linux 3.1; denied in case it returns)",
    ),
    deny(
        "lookup_dcookie",
        libc::SYS_lookup_dcookie,
        "kernel profiling interface that resolves kernel paths (obsolete)",
    ),
    deny(
        "vhangup",
        libc::SYS_vhangup,
        "hangs up the current terminal for every process that uses it",
    ),
    deny(
        "syslog",
        libc::SYS_syslog,
        "reads or clears the host's kernel log",
    ),
    deny(
        "name_to_handle_at",
        libc::SYS_name_to_handle_at,
        "file handles only serve open_by_handle_at (denied); a handle names a file \
             outside any mount's view",
    ),
    deny(
        "modify_ldt",
        x86_64_only!(SYS_modify_ldt),
        "16-bit segments (x86): old kernel attack surface no 64-bit program needs",
    ),
    deny(
        "migrate_pages",
        libc::SYS_migrate_pages,
        "moves another process's memory between NUMA nodes",
    ),
    deny(
        "move_pages",
        libc::SYS_move_pages,
        "moves or inspects another process's pages on NUMA nodes",
    ),
    deny(
        "lsm_set_self_attr",
        arch::LSM_SET_SELF_ATTR,
        "changes the caller's LSM (AppArmor, SELinux) context",
    ),
    // Gone or never implemented: nothing a program can use, classified so that they
    // are refused as known.
    deny("create_module", arch::CREATE_MODULE, OBSOLETE),
    deny("get_kernel_syms", arch::GET_KERNEL_SYMS, OBSOLETE),
    deny("query_module", arch::QUERY_MODULE, OBSOLETE),
    deny("uselib", x86_64_only!(SYS_uselib), OBSOLETE),
    deny("_sysctl", x86_64_only!(SYS__sysctl), OBSOLETE),
    deny("getpmsg", x86_64_only!(SYS_getpmsg), OBSOLETE),
    deny("putpmsg", x86_64_only!(SYS_putpmsg), OBSOLETE),
    deny("afs_syscall", x86_64_only!(SYS_afs_syscall), OBSOLETE),
    deny("tuxcall", x86_64_only!(SYS_tuxcall), OBSOLETE),
    deny("security", x86_64_only!(SYS_security), OBSOLETE),
    deny("vserver", x86_64_only!(SYS_vserver), OBSOLETE),
    deny("epoll_ctl_old", x86_64_only!(SYS_epoll_ctl_old), OBSOLETE),
    deny("epoll_wait_old", x86_64_only!(SYS_epoll_wait_old), OBSOLETE),
];

/// Terminal ioctls refused by [`deny_filter`] (EPERM), compared on the request's low
/// 32 bits.
pub const DENY_IOCTLS: &[IoctlRule] = &[
    IoctlRule {
        name: "TIOCSTI",
        cmd: TIOCSTI,
        reason: "pushes bytes into the terminal's input: commands typed into the user's shell \
             once the sandbox exits",
    },
    IoctlRule {
        name: "TIOCLINUX",
        cmd: TIOCLINUX,
        reason: "console selection and paste (TIOCL_SETSEL/PASTESEL) inject input like TIOCSTI",
    },
    IoctlRule {
        name: "TIOCCONS",
        cmd: TIOCCONS,
        reason: "redirects the host console's output to this terminal",
    },
];

/// Terminal ioctls the supervisor performs itself, on the very file the caller holds
/// (`pidfd_getfd`), when that file is a pty of the sandbox's own devpts instance, after
/// the checks Linux would make against the caller (`crate::pty_ioctl`); on any other file
/// they fail (EPERM), so the borrowed terminal and every host terminal are out of reach
/// whatever a racing thread puts at the descriptor's number.
/// [`notify_filter`](super::notify_filter) sends them to the supervisor; [`deny_filter`],
/// which has none, refuses them (EPERM). The program's policy
/// ([`program_filter`](super::program_filter)) leaves them to the notify filter, which
/// the sandbox installs on every program it runs.
pub const SUPERVISED_IOCTLS: &[IoctlRule] = &[
    IoctlRule {
        name: "TIOCSETD",
        cmd: TIOCSETD,
        reason: "line discipline: N_TTY on the sandbox's own ptys; other disciplines are \
             kernel attack surface (module loading, network devices) and never reach a \
             borrowed or host terminal",
    },
    IoctlRule {
        name: "TIOCVHANGUP",
        cmd: TIOCVHANGUP,
        reason: "hangs up every description of the terminal: only a sandbox pty, and only for a \
             caller with CAP_SYS_ADMIN in the initial user namespace (as Linux)",
    },
];

/// Job-control terminal ioctls sent to the sentry by
/// [`notify_filter`](super::notify_filter): the ones the kernel checks against the
/// caller's session/foreground group (tty_check_change: termios and break/flush/flow
/// changes from a background group get SIGTTOU) and the ones that read or change session,
/// controlling terminal and foreground group.
pub const NOTIFY_IOCTLS: &[IoctlRule] = &[
    IoctlRule {
        name: "TIOCSPGRP",
        cmd: TIOCSPGRP,
        reason: "tcsetpgrp: the sentry owns the foreground group",
    },
    IoctlRule {
        name: "TIOCGPGRP",
        cmd: TIOCGPGRP,
        reason: "tcgetpgrp: answered from the sentry's foreground group",
    },
    IoctlRule {
        name: "TIOCSCTTY",
        cmd: TIOCSCTTY,
        reason: "acquiring a controlling terminal",
    },
    IoctlRule {
        name: "TIOCNOTTY",
        cmd: TIOCNOTTY,
        reason: "giving up the controlling terminal (SIGHUP/SIGCONT for a session leader)",
    },
    IoctlRule {
        name: "TIOCGSID",
        cmd: TIOCGSID,
        reason: "tcgetsid: answered from the sentry's session",
    },
    IoctlRule {
        name: "TCSETS",
        cmd: TCSETS,
        reason: "tcsetattr: SIGTTOU from the background",
    },
    IoctlRule {
        name: "TCSETSW",
        cmd: TCSETSW,
        reason: "tcsetattr(TCSADRAIN): SIGTTOU from the background",
    },
    IoctlRule {
        name: "TCSETSF",
        cmd: TCSETSF,
        reason: "tcsetattr(TCSAFLUSH): SIGTTOU from the background",
    },
    IoctlRule {
        name: "TCSETA",
        cmd: TCSETA,
        reason: "termio set: SIGTTOU from the background",
    },
    IoctlRule {
        name: "TCSETAW",
        cmd: TCSETAW,
        reason: "termio set: SIGTTOU from the background",
    },
    IoctlRule {
        name: "TCSETAF",
        cmd: TCSETAF,
        reason: "termio set: SIGTTOU from the background",
    },
    IoctlRule {
        name: "TCSETS2",
        cmd: TCSETS2,
        reason: "termios2 set: SIGTTOU from the background",
    },
    IoctlRule {
        name: "TCSETSW2",
        cmd: TCSETSW2,
        reason: "termios2 set: SIGTTOU from the background",
    },
    IoctlRule {
        name: "TCSETSF2",
        cmd: TCSETSF2,
        reason: "termios2 set: SIGTTOU from the background",
    },
    IoctlRule {
        name: "TCFLSH",
        cmd: TCFLSH,
        reason: "tcflush: SIGTTOU from the background",
    },
    IoctlRule {
        name: "TCXONC",
        cmd: TCXONC,
        reason: "tcflow: SIGTTOU from the background",
    },
    IoctlRule {
        name: "TCSBRK",
        cmd: TCSBRK,
        reason: "tcdrain/tcsendbreak: SIGTTOU from the background",
    },
    IoctlRule {
        name: "TCSBRKP",
        cmd: TCSBRKP,
        reason: "tcsendbreak: SIGTTOU from the background",
    },
    IoctlRule {
        name: "TIOCSBRK",
        cmd: TIOCSBRK,
        reason: "break on: SIGTTOU from the background",
    },
    IoctlRule {
        name: "TIOCCBRK",
        cmd: TIOCCBRK,
        reason: "break off: SIGTTOU from the background",
    },
];

/// Syscalls [`notify_filter`](super::notify_filter) always sends to the sentry.
pub const NOTIFY_SYSCALLS: &[SyscallRule] = &[
    SyscallRule {
        name: "setpgid",
        nr: libc::SYS_setpgid,
        when: When::Always,
        action: Action::UserNotif,
        reason: "process groups are the sentry's decision (approved, then run by the host)",
    },
    SyscallRule {
        name: "setsid",
        nr: libc::SYS_setsid,
        when: When::Always,
        action: Action::UserNotif,
        reason: "sessions are the sentry's decision (approved, then run by the host)",
    },
    SyscallRule {
        name: "kill",
        nr: libc::SYS_kill,
        when: When::ArgIn {
            arg: 1,
            mask: u32::MAX,
            values: STOP_SIGNALS,
        },
        action: Action::UserNotif,
        reason:
            "a program stopping its own job (vim's ^Z): the suspend pass-through watches for it",
    },
    SyscallRule {
        name: "tgkill",
        nr: libc::SYS_tgkill,
        when: When::ArgIn {
            arg: 2,
            mask: u32::MAX,
            values: STOP_SIGNALS,
        },
        action: Action::UserNotif,
        reason: "as kill (raise(SIGTSTP))",
    },
    SyscallRule {
        name: "tkill",
        nr: libc::SYS_tkill,
        when: When::ArgIn {
            arg: 1,
            mask: u32::MAX,
            values: STOP_SIGNALS,
        },
        action: Action::UserNotif,
        reason: "as kill",
    },
];

/// SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU: a kill with one of them is rare and tells the
/// supervisor that a job may be stopping.
const STOP_SIGNALS: &[u32] = &[
    libc::SIGSTOP as u32,
    libc::SIGTSTP as u32,
    libc::SIGTTIN as u32,
    libc::SIGTTOU as u32,
];

/// Data syscalls [`notify_filter`](super::notify_filter) sends to the sentry when
/// `tty_io` is set (a borrowed terminal), so that it can apply the background rules
/// (SIGTTIN on reads, SIGTTOU on writes with TOSTOP) to its terminal; the supervisor
/// answers `Continue` for any other fd (and for a caller in the foreground, without
/// looking at the fd). Every way to move bytes through a terminal fd is listed:
/// - `read`, `readv`, `write`, `writev`;
/// - `preadv2`/`pwritev2` when the low word of the offset is all ones (offset -1 uses
///   the current position and works on a tty like `readv`/`writev`; the few other
///   offsets with that low word are notified too and decided as reads and writes);
/// - not `pread64`, `preadv`, `pwrite64`, `pwritev`, nor `preadv2`/`pwritev2` at any
///   other offset: every terminal is opened non-seekable (`tty_open` and `ptmx_open`
///   call `nonseekable_open`, which clears FMODE_PREAD and FMODE_PWRITE), so the host
///   kernel fails these with ESPIPE before the driver is reached, from the foreground
///   or the background alike and with no job-control check (a background reader is
///   not stopped on Linux either). Notifying them cost three notifications per exec
///   of a dynamically linked program (the dynamic loader reads its libraries with
///   `pread64`);
/// - `sendfile`/`splice`: the tty driver supports splicing in both directions;
/// - `copy_file_range` (Linux falls back to splicing for some files), `tee` and
///   `vmsplice` (pipes only today): notified so that a kernel that accepts a tty there
///   still meets the background rules;
/// - Linux AIO: `io_setup` and `io_submit` fail with ENOSYS (an answer from the filter,
///   so no race): an iocb names its fd in memory, which a filter cannot see and the
///   caller can rewrite after any check. glibc's POSIX AIO uses threads and plain
///   pread/pwrite; libaio users fall back when `io_setup` is ENOSYS. Only here: without
///   a borrowed terminal (no terminal, `--tty=pty`) AIO stays;
/// - io_uring is refused by the sandbox's policy.
pub const TTY_IO_SYSCALLS: &[SyscallRule] = &[
    notify_io("read", libc::SYS_read, "SIGTTIN/EIO for background readers"),
    notify_io(
        "write",
        libc::SYS_write,
        "SIGTTOU for background writers under TOSTOP",
    ),
    notify_io("readv", libc::SYS_readv, "as read"),
    notify_io("writev", libc::SYS_writev, "as write"),
    SyscallRule {
        when: AT_CURRENT_POSITION,
        ..notify_io(
            "preadv2",
            libc::SYS_preadv2,
            "offset -1 reads at the current position, so it works on a tty",
        )
    },
    SyscallRule {
        when: AT_CURRENT_POSITION,
        ..notify_io(
            "pwritev2",
            libc::SYS_pwritev2,
            "offset -1 writes at the current position, so it works on a tty",
        )
    },
    notify_io(
        "sendfile",
        libc::SYS_sendfile,
        "reads its in_fd and writes its out_fd, a tty on either side",
    ),
    notify_io(
        "splice",
        libc::SYS_splice,
        "moves data between a pipe and a tty in either direction",
    ),
    notify_io(
        "tee",
        libc::SYS_tee,
        "pipes only today; checked as splice if that changes",
    ),
    notify_io(
        "vmsplice",
        libc::SYS_vmsplice,
        "pipes only today; checked as a read and a write of its fd if that changes",
    ),
    notify_io(
        "copy_file_range",
        libc::SYS_copy_file_range,
        "reads fd_in and writes fd_out; a tty is refused today, checked anyway",
    ),
    SyscallRule {
        name: "io_setup",
        nr: libc::SYS_io_setup,
        when: When::Always,
        action: ENOSYS,
        reason: "Linux AIO names its fds in memory (iocbs) the caller can rewrite after any \
             check: a background read of the borrowed terminal; ENOSYS makes libaio users \
             fall back",
    },
    SyscallRule {
        name: "io_submit",
        nr: libc::SYS_io_submit,
        when: When::Always,
        action: ENOSYS,
        reason: "as io_setup (a context set up before the filter, e.g. inherited, is useless \
             too)",
    },
];

const fn notify_io(name: &'static str, nr: libc::c_long, reason: &'static str) -> SyscallRule {
    SyscallRule {
        name,
        nr,
        when: When::Always,
        action: Action::UserNotif,
        reason,
    }
}

/// When a `preadv2`/`pwritev2` is notified: the offset's low word (argument 3; on
/// x86_64 the whole offset, `pos_h` is ignored) is all ones, as offset -1's is.
const AT_CURRENT_POSITION: When = When::ArgIn {
    arg: 3,
    mask: u32::MAX,
    values: &[u32::MAX],
};

/// Ioctl requests the loader itself may make under [`allow_filter`](super::allow_filter).
pub const LOADER_IOCTLS: &[IoctlRule] = &[
    IoctlRule {
        name: "SECCOMP_IOCTL_NOTIF_RECV",
        cmd: SECCOMP_IOCTL_NOTIF_RECV,
        reason: "receive notifications",
    },
    IoctlRule {
        name: "SECCOMP_IOCTL_NOTIF_SEND",
        cmd: SECCOMP_IOCTL_NOTIF_SEND,
        reason: "answer notifications",
    },
    IoctlRule {
        name: "SECCOMP_IOCTL_NOTIF_ID_VALID",
        cmd: SECCOMP_IOCTL_NOTIF_ID_VALID,
        reason: "check a notification is still pending",
    },
    IoctlRule {
        name: "SECCOMP_IOCTL_NOTIF_ID_VALID (old _IOR number)",
        cmd: SECCOMP_IOCTL_NOTIF_ID_VALID_WRONG_DIR,
        reason: "same request, older number",
    },
    IoctlRule {
        name: "SECCOMP_IOCTL_NOTIF_ADDFD",
        cmd: SECCOMP_IOCTL_NOTIF_ADDFD,
        reason: "install an fd in a notified process",
    },
    IoctlRule {
        name: "SECCOMP_IOCTL_NOTIF_SET_FLAGS",
        cmd: SECCOMP_IOCTL_NOTIF_SET_FLAGS,
        reason: "synchronous wake-up",
    },
    IoctlRule {
        name: "TCGETS",
        cmd: TCGETS,
        reason: "read termios (isatty, saving the user's terminal)",
    },
    IoctlRule {
        name: "TCSETS",
        cmd: TCSETS,
        reason: "set termios",
    },
    IoctlRule {
        name: "TCSETSW",
        cmd: TCSETSW,
        reason: "set termios after drain",
    },
    IoctlRule {
        name: "TCSETSF",
        cmd: TCSETSF,
        reason: "set termios after drain, flush input (restoring the user's terminal)",
    },
    IoctlRule {
        name: "TIOCGWINSZ",
        cmd: TIOCGWINSZ,
        reason: "window size",
    },
    IoctlRule {
        name: "TIOCSWINSZ",
        cmd: TIOCSWINSZ,
        reason: "propagate window size to a pty",
    },
    IoctlRule {
        name: "TIOCGPGRP",
        cmd: TIOCGPGRP,
        reason: "host foreground group",
    },
    IoctlRule {
        name: "TIOCSPGRP",
        cmd: TIOCSPGRP,
        reason: "set host foreground group of an owned pty",
    },
    IoctlRule {
        name: "TIOCGSID",
        cmd: TIOCGSID,
        reason: "host session of a terminal",
    },
    IoctlRule {
        name: "TIOCGPTN",
        cmd: TIOCGPTN,
        reason: "pty number",
    },
    IoctlRule {
        name: "TIOCSPTLCK",
        cmd: TIOCSPTLCK,
        reason: "unlock a new pty",
    },
    IoctlRule {
        name: "TIOCGPTPEER",
        cmd: TIOCGPTPEER,
        reason: "open the slave of an owned pty",
    },
    IoctlRule {
        name: "FIONREAD",
        cmd: FIONREAD,
        reason: "bytes available",
    },
    IoctlRule {
        name: "FIONBIO",
        cmd: FIONBIO,
        reason: "non-blocking mode",
    },
    IoctlRule {
        name: "FIOCLEX",
        cmd: FIOCLEX,
        reason: "close-on-exec",
    },
    IoctlRule {
        name: "FIONCLEX",
        cmd: FIONCLEX,
        reason: "close-on-exec",
    },
    IoctlRule {
        name: "TIOCGLCKTRMIOS",
        cmd: TIOCGLCKTRMIOS,
        reason: "restoring the user's terminal: read its locked termios",
    },
    IoctlRule {
        name: "TIOCSLCKTRMIOS",
        cmd: TIOCSLCKTRMIOS,
        reason: "restoring the user's terminal: unlock what the program locked",
    },
    IoctlRule {
        name: "TIOCGEXCL",
        cmd: TIOCGEXCL,
        reason: "restoring the user's terminal: read exclusive mode",
    },
    IoctlRule {
        name: "TIOCEXCL",
        cmd: TIOCEXCL,
        reason: "restoring the user's terminal: exclusive mode as it was",
    },
    IoctlRule {
        name: "TIOCNXCL",
        cmd: TIOCNXCL,
        reason: "restoring the user's terminal: exclusive mode as it was",
    },
    IoctlRule {
        name: "TCXONC",
        cmd: TCXONC,
        reason: "restoring the user's terminal: restart output a program suspended",
    },
    IoctlRule {
        name: "TIOCGETD",
        cmd: TIOCGETD,
        reason: "a sandbox pty's line discipline, for a TIOCSETD performed for the program",
    },
    IoctlRule {
        name: "TIOCSETD",
        cmd: TIOCSETD,
        reason: "TIOCSETD(N_TTY) performed for the program on its own sandbox pty",
    },
    IoctlRule {
        name: "TIOCVHANGUP",
        cmd: TIOCVHANGUP,
        reason: "TIOCVHANGUP performed for a capable program on its own sandbox pty",
    },
];

const LOADER: &str = "poll-based supervisor";

/// The loader's own allow-list once it has set up (see
/// [`allow_filter`](super::allow_filter)): what a poll()-based supervisor needs to serve
/// notifications, signal and reap sandboxed processes, read /proc, proxy a terminal and
/// run Rust std and threads. Hot syscalls come first. Anything else fails with EPERM.
pub const LOADER_SYSCALLS: &[SyscallRule] = &[
    allow("read", libc::SYS_read, "I/O"),
    allow("write", libc::SYS_write, "I/O"),
    allow("poll", arch::POLL, LOADER),
    allow("ppoll", libc::SYS_ppoll, LOADER),
    SyscallRule {
        name: "ioctl",
        nr: libc::SYS_ioctl,
        when: When::ArgIn {
            arg: 1,
            mask: u32::MAX,
            values: LOADER_IOCTL_CMDS,
        },
        action: Action::Allow,
        reason: "seccomp notify and terminal ioctls only (LOADER_IOCTLS)",
    },
    allow(
        "futex",
        libc::SYS_futex,
        "locks, condition variables, thread join",
    ),
    allow(
        "process_vm_readv",
        libc::SYS_process_vm_readv,
        "read notified processes' memory",
    ),
    allow(
        "process_vm_writev",
        libc::SYS_process_vm_writev,
        "write results into it",
    ),
    allow("readv", libc::SYS_readv, "I/O"),
    allow("writev", libc::SYS_writev, "I/O"),
    allow(
        "pread64",
        libc::SYS_pread64,
        "reading /proc files at an offset",
    ),
    allow("lseek", libc::SYS_lseek, "I/O"),
    allow(
        "recvmsg",
        libc::SYS_recvmsg,
        "fd passing (SCM_RIGHTS), control sockets",
    ),
    allow(
        "sendmsg",
        libc::SYS_sendmsg,
        "fd passing (SCM_RIGHTS), control sockets",
    ),
    allow("recvfrom", libc::SYS_recvfrom, "socket reads"),
    allow("sendto", libc::SYS_sendto, "socket writes"),
    allow(
        "kill",
        libc::SYS_kill,
        "signals to sandboxed processes and groups",
    ),
    allow("tgkill", libc::SYS_tgkill, "thread signals (also abort)"),
    allow("tkill", libc::SYS_tkill, "thread signals"),
    allow(
        "pidfd_open",
        libc::SYS_pidfd_open,
        "watch sandboxed processes",
    ),
    allow(
        "pidfd_send_signal",
        libc::SYS_pidfd_send_signal,
        "race-free signals",
    ),
    allow(
        "pidfd_getfd",
        libc::SYS_pidfd_getfd,
        "fetch an fd (e.g. a listener) from a process",
    ),
    allow("waitid", libc::SYS_waitid, "reap children"),
    allow("wait4", libc::SYS_wait4, "reap children"),
    allow("openat", libc::SYS_openat, "/proc/PID/status, ptys"),
    allow("close", libc::SYS_close, "fds"),
    allow("close_range", libc::SYS_close_range, "fds"),
    allow("newfstatat", libc::SYS_newfstatat, "stat"),
    allow("fstat", libc::SYS_fstat, "stat"),
    allow("statx", libc::SYS_statx, "stat (Rust std)"),
    allow(
        "fstatfs",
        libc::SYS_fstatfs,
        "is a program's descriptor on a devpts (crate::pty_ioctl)",
    ),
    allow(
        "statfs",
        libc::SYS_statfs,
        "the sandbox's devpts instance (crate::pty_ioctl)",
    ),
    allow(
        "readlinkat",
        libc::SYS_readlinkat,
        "/proc/PID/fd, /proc/PID/exe",
    ),
    allow("getdents64", libc::SYS_getdents64, "list /proc"),
    allow("fcntl", libc::SYS_fcntl, "fd flags"),
    allow("dup", libc::SYS_dup, "fds"),
    allow("dup2", arch::DUP2, "fds"),
    allow("dup3", libc::SYS_dup3, "fds"),
    allow("pipe2", libc::SYS_pipe2, "self-pipes"),
    allow("eventfd2", libc::SYS_eventfd2, "wake-ups"),
    allow(
        "signalfd4",
        libc::SYS_signalfd4,
        "signals as fds in the poll set",
    ),
    allow("rt_sigaction", libc::SYS_rt_sigaction, "signal handling"),
    allow(
        "rt_sigprocmask",
        libc::SYS_rt_sigprocmask,
        "signal handling",
    ),
    allow(
        "rt_sigreturn",
        libc::SYS_rt_sigreturn,
        "return from a signal handler",
    ),
    allow(
        "rt_sigtimedwait",
        libc::SYS_rt_sigtimedwait,
        "synchronous signal wait",
    ),
    allow(
        "sigaltstack",
        libc::SYS_sigaltstack,
        "Rust std's stack-overflow handler",
    ),
    allow(
        "restart_syscall",
        libc::SYS_restart_syscall,
        "restarted sleeps",
    ),
    allow("mmap", libc::SYS_mmap, "allocation"),
    allow("munmap", libc::SYS_munmap, "allocation"),
    allow("mremap", libc::SYS_mremap, "allocation"),
    allow(
        "mprotect",
        libc::SYS_mprotect,
        "allocation, thread guard pages",
    ),
    allow("madvise", libc::SYS_madvise, "allocation"),
    allow("brk", libc::SYS_brk, "allocation"),
    allow(
        "clock_gettime",
        libc::SYS_clock_gettime,
        "time (when the vDSO is unavailable)",
    ),
    allow("gettimeofday", libc::SYS_gettimeofday, "time"),
    allow("clock_nanosleep", libc::SYS_clock_nanosleep, "sleep"),
    allow("nanosleep", libc::SYS_nanosleep, "sleep"),
    allow("sched_yield", libc::SYS_sched_yield, "spin loops"),
    allow(
        "sched_getaffinity",
        libc::SYS_sched_getaffinity,
        "available_parallelism",
    ),
    allow("getpid", libc::SYS_getpid, "identity"),
    allow("gettid", libc::SYS_gettid, "identity"),
    allow("getppid", libc::SYS_getppid, "identity"),
    allow("getuid", libc::SYS_getuid, "identity"),
    allow("geteuid", libc::SYS_geteuid, "identity"),
    allow("getgid", libc::SYS_getgid, "identity"),
    allow("getegid", libc::SYS_getegid, "identity"),
    allow("getpgid", libc::SYS_getpgid, "host process groups"),
    allow("getsid", libc::SYS_getsid, "host sessions"),
    allow("getrandom", libc::SYS_getrandom, "HashMap seeds"),
    allow(
        "rseq",
        libc::SYS_rseq,
        "glibc registers it for every thread",
    ),
    allow("set_robust_list", libc::SYS_set_robust_list, "new threads"),
    allow("set_tid_address", libc::SYS_set_tid_address, "new threads"),
    allow(
        "arch_prctl",
        arch::ARCH_PRCTL,
        "thread-local storage of new threads (x86_64)",
    ),
    SyscallRule {
        name: "clone",
        nr: libc::SYS_clone,
        when: When::ArgAnyBit {
            arg: 0,
            mask: CLONE_THREAD,
        },
        action: Action::Allow,
        reason: "threads only (CLONE_THREAD); no new processes once locked down",
    },
    SyscallRule {
        name: "clone3",
        nr: libc::SYS_clone3,
        when: When::Always,
        action: ENOSYS,
        reason: "flags out of reach; ENOSYS makes glibc's pthread_create fall back to clone",
    },
    allow("exit", libc::SYS_exit, "thread exit"),
    allow("exit_group", libc::SYS_exit_group, "process exit"),
];

/// The request numbers of [`LOADER_IOCTLS`] (kept equal by a test).
const LOADER_IOCTL_CMDS: &[u32] = &[
    SECCOMP_IOCTL_NOTIF_RECV,
    SECCOMP_IOCTL_NOTIF_SEND,
    SECCOMP_IOCTL_NOTIF_ID_VALID,
    SECCOMP_IOCTL_NOTIF_ID_VALID_WRONG_DIR,
    SECCOMP_IOCTL_NOTIF_ADDFD,
    SECCOMP_IOCTL_NOTIF_SET_FLAGS,
    TCGETS,
    TCSETS,
    TCSETSW,
    TCSETSF,
    TIOCGWINSZ,
    TIOCSWINSZ,
    TIOCGPGRP,
    TIOCSPGRP,
    TIOCGSID,
    TIOCGPTN,
    TIOCSPTLCK,
    TIOCGPTPEER,
    FIONREAD,
    FIONBIO,
    FIOCLEX,
    FIONCLEX,
    TIOCGLCKTRMIOS,
    TIOCSLCKTRMIOS,
    TIOCGEXCL,
    TIOCEXCL,
    TIOCNXCL,
    TCXONC,
    TIOCGETD,
    TIOCSETD,
    TIOCVHANGUP,
];

/// The deny filter: [`DENY_SYSCALLS`], [`DENY_IOCTLS`] and [`SUPERVISED_IOCTLS`] fail
/// (EPERM, clone3 ENOSYS), everything else is allowed; foreign architectures are killed
/// and x32 numbers get ENOSYS. Two programs: a guard (clone3, x32, architecture), then
/// seccompiler's compilation of the EPERM rows (see the module documentation of
/// [`seccomp`](super)).
pub fn deny_filter() -> Result<Filter, SeccompError> {
    let mut b = StackBuilder::new(EPERM, Action::Allow);
    // No supervisor answers for this filter: the supervised requests are refused too.
    b.ioctls(DENY_IOCTLS.iter().chain(SUPERVISED_IOCTLS).map(|r| r.cmd))?;
    for rule in DENY_SYSCALLS {
        b.rule(rule)?;
    }
    b.compile()
}

/// What [`notify_filter`](super::notify_filter) sends to the sentry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotifyOptions {
    /// Also notify the data syscalls of [`TTY_IO_SYSCALLS`], for a borrowed terminal
    /// whose background rules the sentry enforces. Off for an owned pty, where the host
    /// enforces them.
    pub tty_io: bool,
}

/// Compiles the program of [`super::notify_filter`] (see [`super::program_filter`]).
pub fn notify_filter(options: &NotifyOptions) -> Result<Filter, SeccompError> {
    let mut b = ProgramBuilder::new(Action::Allow);
    if options.tty_io {
        // Hot path first.
        for rule in TTY_IO_SYSCALLS {
            b.rule(rule)?;
        }
    }
    b.ioctls(
        NOTIFY_IOCTLS.iter().chain(SUPERVISED_IOCTLS).map(|r| r.cmd),
        Action::UserNotif,
    )?;
    for rule in NOTIFY_SYSCALLS {
        b.rule(rule)?;
    }
    b.compile()
}

/// System calls the supervision needs beyond [`LOADER_SYSCALLS`] (found with
/// `strace -f` on `sandbox run --tty`; a missing one fails with EPERM, not a kill).
pub const LOADER_EXTRA_SYSCALLS: &[libc::c_long] = &[
    libc::SYS_readlink,
    // The notification thread becomes real-time after the loader may be confined.
    libc::SYS_sched_setscheduler,
    // SECCOMP_GET_NOTIF_SIZES on the first receive; a filter can only restrict further.
    libc::SYS_seccomp,
    // Removing the sandbox's cgroup once it has ended.
    libc::SYS_rmdir,
    // The tracker's pidfds of the sandbox's processes (`crate::tracker`).
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
];

/// Compiles the program of [`super::allow_filter`] (see [`super::program_filter`]).
pub fn allow_filter(extra: &[libc::c_long]) -> Result<Filter, SeccompError> {
    let mut b = ProgramBuilder::new(EPERM);
    for rule in LOADER_SYSCALLS {
        b.rule(rule)?;
    }
    for &nr in extra {
        b.always(nr, Action::Allow)?;
    }
    b.compile()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::bpf::AUDIT_ARCH_NATIVE;
    use super::*;

    fn act(f: &Filter, nr: libc::c_long, args: [u64; 6]) -> Option<Action> {
        f.action_for(AUDIT_ARCH_NATIVE, nr as i32, args)
    }

    #[test]
    fn loader_ioctl_numbers_match_the_table() {
        let table: Vec<u32> = LOADER_IOCTLS.iter().map(|r| r.cmd).collect();
        assert_eq!(table, LOADER_IOCTL_CMDS);
    }

    #[test]
    fn tables_have_reasons_and_no_duplicates() {
        for table in [
            DENY_SYSCALLS,
            NOTIFY_SYSCALLS,
            TTY_IO_SYSCALLS,
            LOADER_SYSCALLS,
        ] {
            let mut seen = std::collections::HashSet::new();
            for rule in table {
                assert!(!rule.reason.is_empty(), "{} has no reason", rule.name);
                if rule.nr != ABSENT {
                    assert!(seen.insert(rule.nr), "{} listed twice", rule.name);
                }
            }
        }
        for table in [DENY_IOCTLS, NOTIFY_IOCTLS, SUPERVISED_IOCTLS, LOADER_IOCTLS] {
            let mut seen = std::collections::HashSet::new();
            for rule in table {
                assert!(!rule.reason.is_empty(), "{} has no reason", rule.name);
                assert!(seen.insert(rule.cmd), "{} listed twice", rule.name);
            }
        }
        // A request is denied, notified as job control, or performed by the
        // supervisor: never two of them (an ERRNO row would hide the notification).
        let mut seen = std::collections::HashSet::new();
        for rule in DENY_IOCTLS
            .iter()
            .chain(NOTIFY_IOCTLS)
            .chain(SUPERVISED_IOCTLS)
        {
            assert!(seen.insert(rule.cmd), "{} in two tables", rule.name);
        }
    }

    /// A borrowed terminal: every data path is notified, Linux AIO is refused by the
    /// filter itself (ENOSYS, no CONTINUE to race); without one, AIO and I/O run freely.
    #[test]
    fn notify_program_tty_io_decisions() {
        let z = [0u64; 6];
        let with = notify_filter(&NotifyOptions { tty_io: true }).unwrap();
        let without = notify_filter(&NotifyOptions { tty_io: false }).unwrap();
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_readv,
            libc::SYS_writev,
            libc::SYS_sendfile,
            libc::SYS_splice,
            libc::SYS_tee,
            libc::SYS_vmsplice,
            libc::SYS_copy_file_range,
        ] {
            assert_eq!(act(&with, nr, z), Some(Action::UserNotif), "{nr}");
            assert_eq!(act(&without, nr, z), Some(Action::Allow), "{nr}");
        }
        // At the current position (offset -1) the vectored calls work on a tty; at any
        // other offset, as the positional ones always, a tty is ESPIPE from the kernel.
        let at = |offset: u64| [0, 0, 1, offset, 0, 0];
        for nr in [libc::SYS_preadv2, libc::SYS_pwritev2] {
            assert_eq!(
                act(&with, nr, at(u64::MAX)),
                Some(Action::UserNotif),
                "{nr}"
            );
            assert_eq!(act(&with, nr, at(0)), Some(Action::Allow), "{nr}");
            assert_eq!(act(&with, nr, at(4096)), Some(Action::Allow), "{nr}");
            assert_eq!(act(&without, nr, at(u64::MAX)), Some(Action::Allow), "{nr}");
        }
        for nr in [
            libc::SYS_pread64,
            libc::SYS_preadv,
            libc::SYS_pwrite64,
            libc::SYS_pwritev,
        ] {
            assert_eq!(act(&with, nr, z), Some(Action::Allow), "{nr}");
        }
        for nr in [libc::SYS_io_setup, libc::SYS_io_submit] {
            assert_eq!(act(&with, nr, z), Some(ENOSYS), "{nr}");
            assert_eq!(act(&without, nr, z), Some(Action::Allow), "{nr}");
        }
        assert_eq!(act(&with, libc::SYS_io_getevents, z), Some(Action::Allow));
    }

    /// TIOCSETD and TIOCVHANGUP reach the supervisor with and without a borrowed
    /// terminal, high bits or not; TIOCGETD runs unnotified.
    #[test]
    fn notify_program_sends_supervised_ioctls() {
        for options in [
            NotifyOptions { tty_io: true },
            NotifyOptions { tty_io: false },
        ] {
            let f = notify_filter(&options).unwrap();
            let ioctl = |cmd: u64| act(&f, libc::SYS_ioctl, [3, cmd, 0, 0, 0, 0]);
            for rule in SUPERVISED_IOCTLS {
                let cmd = u64::from(rule.cmd);
                assert_eq!(ioctl(cmd), Some(Action::UserNotif), "{}", rule.name);
                assert_eq!(
                    ioctl(cmd | 1 << 32),
                    Some(Action::UserNotif),
                    "{}",
                    rule.name
                );
            }
            assert_eq!(ioctl(u64::from(TIOCGETD)), Some(Action::Allow));
            assert_eq!(ioctl(u64::from(TIOCSTI)), Some(Action::Allow));
        }
    }

    #[test]
    fn deny_program_decisions() {
        let f = deny_filter().unwrap();
        let z = [0u64; 6];
        let ioctl = |cmd: u64| act(&f, libc::SYS_ioctl, [0, cmd, 0, 0, 0, 0]);
        for rule in DENY_IOCTLS {
            assert_eq!(ioctl(u64::from(rule.cmd)), Some(EPERM), "{}", rule.name);
            // CVE-2019-10063: high bits must not hide the request.
            assert_eq!(
                ioctl(u64::from(rule.cmd) | 1 << 32),
                Some(EPERM),
                "{} | 1<<32",
                rule.name
            );
        }
        // No supervisor behind this filter: the supervised requests are refused.
        for rule in SUPERVISED_IOCTLS {
            assert_eq!(ioctl(u64::from(rule.cmd)), Some(EPERM), "{}", rule.name);
            assert_eq!(
                ioctl(u64::from(rule.cmd) | 1 << 32),
                Some(EPERM),
                "{} | 1<<32",
                rule.name
            );
        }
        assert_eq!(ioctl(u64::from(TCGETS)), Some(Action::Allow));
        assert_eq!(ioctl(u64::from(TIOCGETD)), Some(Action::Allow));
        assert_eq!(ioctl(u64::from(TIOCSPGRP)), Some(Action::Allow));
        for rule in DENY_SYSCALLS {
            if rule.nr == ABSENT {
                continue;
            }
            if rule.when == When::Always {
                assert_eq!(act(&f, rule.nr, z), Some(rule.action), "{}", rule.name);
            }
        }
        assert_eq!(act(&f, libc::SYS_clone3, z), Some(ENOSYS));
        // Namespace flags of unshare/clone, but not the others.
        assert_eq!(
            act(&f, libc::SYS_unshare, [0x1000_0000, 0, 0, 0, 0, 0]),
            Some(EPERM)
        );
        assert_eq!(
            act(&f, libc::SYS_unshare, [0x80, 0, 0, 0, 0, 0]),
            Some(EPERM)
        );
        assert_eq!(
            act(
                &f,
                libc::SYS_unshare,
                [0x400 /* CLONE_FILES */, 0, 0, 0, 0, 0]
            ),
            Some(Action::Allow)
        );
        // fork: SIGCHLD (17) in the exit-signal byte; thread creation flags.
        assert_eq!(
            act(&f, libc::SYS_clone, [17, 0, 0, 0, 0, 0]),
            Some(Action::Allow)
        );
        assert_eq!(
            act(&f, libc::SYS_clone, [0x3d0f00, 0, 0, 0, 0, 0]),
            Some(Action::Allow)
        );
        assert_eq!(
            act(&f, libc::SYS_clone, [0x2000_0000 | 17, 0, 0, 0, 0, 0]),
            Some(EPERM)
        );
        // Device nodes, not fifos.
        let chr = 0o020_644u64;
        let fifo = 0o010_644u64;
        assert_eq!(
            act(&f, libc::SYS_mknodat, [0, 0, chr, 0, 0, 0]),
            Some(EPERM)
        );
        assert_eq!(
            act(&f, libc::SYS_mknodat, [0, 0, fifo, 0, 0, 0]),
            Some(Action::Allow)
        );
        // personality: safe values and the query pass.
        assert_eq!(
            act(&f, libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]),
            Some(Action::Allow)
        );
        assert_eq!(
            act(&f, libc::SYS_personality, [0x0040_0000, 0, 0, 0, 0, 0]),
            Some(EPERM)
        );
        assert_eq!(act(&f, libc::SYS_getpid, z), Some(Action::Allow));
        assert_eq!(act(&f, libc::SYS_ptrace, z), Some(Action::Allow));
        assert_eq!(act(&f, libc::SYS_setsid, z), Some(Action::Allow));
    }

    #[test]
    fn allow_program_decisions() {
        let f = allow_filter(&[libc::SYS_uname]).unwrap();
        let z = [0u64; 6];
        for rule in LOADER_SYSCALLS {
            if rule.nr != ABSENT && rule.when == When::Always {
                assert_eq!(act(&f, rule.nr, z), Some(rule.action), "{}", rule.name);
            }
        }
        assert_eq!(act(&f, libc::SYS_uname, z), Some(Action::Allow));
        assert_eq!(act(&f, libc::SYS_mkdirat, z), Some(EPERM));
        assert_eq!(act(&f, libc::SYS_execve, z), Some(EPERM));
        let ioctl = |cmd: u64| act(&f, libc::SYS_ioctl, [0, cmd, 0, 0, 0, 0]);
        assert_eq!(
            ioctl(u64::from(SECCOMP_IOCTL_NOTIF_RECV)),
            Some(Action::Allow)
        );
        assert_eq!(ioctl(u64::from(TIOCSTI)), Some(EPERM));
        assert_eq!(
            act(&f, libc::SYS_clone, [0x3d0f00, 0, 0, 0, 0, 0]),
            Some(Action::Allow)
        );
        assert_eq!(act(&f, libc::SYS_clone, [17, 0, 0, 0, 0, 0]), Some(EPERM));
        // An extra syscall that also has a conditional rule: the extra wins.
        let f = allow_filter(&[libc::SYS_ioctl]).unwrap();
        assert_eq!(
            act(&f, libc::SYS_ioctl, [0, u64::from(TIOCSTI), 0, 0, 0, 0]),
            Some(Action::Allow)
        );
        assert!(matches!(
            allow_filter(&[-3]),
            Err(SeccompError::InvalidSyscall(-3))
        ));
    }
}
