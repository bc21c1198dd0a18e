//! Credentials and resource limits of the program, set just before exec.

use nix::errno::Errno;
use std::os::fd::OwnedFd;

/// `setrlimit(resource, {soft, hard})`.
pub(crate) fn set_rlimit(resource: i32, soft: u64, hard: u64) -> Result<(), Errno> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit; an invalid resource number is EINVAL.
    let r = unsafe { libc::setrlimit(resource as libc::__rlimit_resource_t, &lim) };
    Errno::result(r).map(drop)
}

/// Sets the supplementary groups to `groups` (none: cleared), then the real, effective
/// and saved group and user IDs (group first: afterwards the privilege to change it is
/// gone).
pub(crate) fn become_user(uid: u32, gid: u32, groups: &[u32]) -> Result<(), Errno> {
    let groups: Vec<nix::unistd::Gid> = groups
        .iter()
        .map(|&g| nix::unistd::Gid::from_raw(g))
        .collect();
    match nix::unistd::setgroups(&groups) {
        // In a user namespace whose setgroups is "deny" (rootless sandboxes) the
        // supplementary groups cannot change; they stay as they were.
        Err(Errno::EPERM) if groups.is_empty() && setgroups_denied() => {}
        r => r?,
    }
    let g = nix::unistd::Gid::from_raw(gid);
    nix::unistd::setresgid(g, g, g)?;
    let u = nix::unistd::Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u)
}

/// `/proc/self/setgroups` says `deny`: setgroups(2) is refused in this user namespace.
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// `prctl(PR_SET_DUMPABLE, 0)`: the kernel's `ptrace_may_access` then refuses ptrace,
/// `process_vm_readv`/`writev`, `pidfd_getfd`, `kcmp` and `/proc/PID/{mem,environ,fd}`
/// to any caller without CAP_SYS_PTRACE in the user namespace of this process's memory
/// (same uid or not), and `/proc/PID` files belong to root. A later `execve` makes the
/// process dumpable again (when its real and effective ids agree and the file is
/// readable). Async-signal-safe.
pub(crate) fn set_not_dumpable() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    Errno::result(r).map(drop)
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`: from now on (and across exec, inherited by every
/// child) execve never grants privileges: no set-user-ID/set-group-ID bits, no file
/// capabilities. It cannot be unset. Async-signal-safe.
pub(crate) fn set_no_new_privs() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    Errno::result(r).map(drop)
}

/// `prctl(PR_SET_KEEPCAPS, on)`: whether the permitted set survives a change of every
/// uid from 0 to non-zero (the effective set is cleared either way). Cleared at exec.
pub(crate) fn set_keep_caps(on: bool) -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) };
    Errno::result(r).map(drop)
}

/// Removes from the calling thread's bounding set every capability not in `keep` (a
/// bit mask, bit N = capability N), up to the kernel's last capability
/// (`PR_CAPBSET_READ` fails with EINVAL past it). Needs CAP_SETPCAP in the effective
/// set. The bounding set limits what any later `execve` can put in the permitted set.
pub(crate) fn drop_bounding_except(keep: u64) -> Result<(), Errno> {
    for cap in 0..64u32 {
        // SAFETY: prctl with integer arguments only.
        let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
        if present < 0 {
            // EINVAL: past the last capability this kernel knows.
            break;
        }
        if present == 1 && keep & (1u64 << cap) == 0 {
            // SAFETY: prctl with integer arguments only.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            Errno::result(r)?;
        }
    }
    Ok(())
}

/// `_LINUX_CAPABILITY_VERSION_3` (linux/capability.h): two 32-bit data words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets the calling thread's effective, permitted and inheritable sets to exactly
/// `caps` (`capset(2)`). Allowed when `caps` is within the current permitted set (and,
/// for the inheritable set, within the bounding set).
pub(crate) fn set_capabilities(caps: u64) -> Result<(), Errno> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let word = |shift: u32| {
        let w = (caps >> shift) as u32;
        CapData {
            effective: w,
            permitted: w,
            inheritable: w,
        }
    };
    let data = [word(0), word(32)];
    // SAFETY: `header` and `data` (two words, as version 3 requires) are valid for the
    // call; the kernel reads `data` and may write the preferred version into `header`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    Errno::result(r).map(drop)
}

/// Clears the ambient set, then raises every capability of `caps` in it (each must be
/// in the permitted and inheritable sets). Ambient capabilities stay in the permitted
/// and effective sets across an `execve` of a file without file capabilities, for any
/// uid (the way to hand a capability to a non-root program).
pub(crate) fn set_ambient(caps: u64) -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    Errno::result(r)?;
    for cap in (0..64u32).filter(|c| caps & (1u64 << c) != 0) {
        // SAFETY: prctl with integer arguments only.
        let r = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                cap as libc::c_ulong,
                0,
                0,
            )
        };
        Errno::result(r)?;
    }
    Ok(())
}

/// The calling thread's real, effective and saved user and group ids.
pub(crate) fn ids() -> Result<([u32; 3], [u32; 3]), Errno> {
    let u = nix::unistd::getresuid()?;
    let g = nix::unistd::getresgid()?;
    Ok((
        [u.real.as_raw(), u.effective.as_raw(), u.saved.as_raw()],
        [g.real.as_raw(), g.effective.as_raw(), g.saved.as_raw()],
    ))
}

/// `setns(pidfd, flags)` (Linux 5.8): joins, at once, the namespaces `flags`
/// (`CLONE_NEW*`) of the process `pidfd` refers to. A new PID namespace applies to the
/// caller's children only; a mount namespace sets the caller's root and working
/// directory to that namespace's root. Joining a user namespace needs a
/// single-threaded caller.
pub(crate) fn setns_pidfd(pidfd: std::os::fd::BorrowedFd<'_>, flags: u64) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    let flags = libc::c_int::try_from(flags).map_err(|_| Errno::EINVAL)?;
    // SAFETY: setns takes a descriptor and integer flags; no memory is passed.
    let r = unsafe { libc::setns(pidfd.as_raw_fd(), flags) };
    Errno::result(r).map(drop)
}

/// Joins the network namespace at `path` (`open` + `setns(CLONE_NEWNET)`).
pub(crate) fn join_netns(path: &std::path::Path) -> Result<(), Errno> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    enter_netns(&fd)
}

/// A new network namespace, as a descriptor: the calling thread moves into it
/// (`unshare(CLONE_NEWNET)` acts on the thread alone), so call it on a thread that
/// ends next. Creating a namespace registers its loopback device and sysctl tables,
/// about a quarter of a millisecond.
pub(crate) fn new_netns() -> Result<OwnedFd, Errno> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
    nix::fcntl::open(
        "/proc/thread-self/ns/net",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
}

/// Joins the network namespace `netns` (a namespace descriptor).
pub(crate) fn enter_netns(netns: &OwnedFd) -> Result<(), Errno> {
    nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
}

/// Makes `/proc/self/cmdline` show `title` (NUL-separated words) instead of the
/// arguments this process was started with, and blanks its environment strings: the
/// argument and environment areas of the stack (`arg_start`..`arg_end`,
/// `env_start`..`env_end` in `/proc/self/stat`) are overwritten, the title truncated
/// to the area and the rest zeroed. For a process that carries on from a fork of the
/// loader instead of an exec: the loader's command line (which may hold `-e NAME=value`)
/// would otherwise be readable by anyone who can list its `/proc` entry.
pub(crate) fn retitle(title: &[u8]) -> Result<(), Errno> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|_| Errno::EIO)?;
    // Fields after the command name, which may contain spaces and parentheses: the
    // first one is field 3 (state) of proc(5).
    let (_, after) = stat.rsplit_once(')').ok_or(Errno::EIO)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| -> Result<usize, Errno> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<usize>().ok())
            .ok_or(Errno::EIO)
    };
    let (arg_start, arg_end) = (field(48)?, field(49)?);
    let (env_start, env_end) = (field(50)?, field(51)?);
    if arg_start == 0 || arg_end <= arg_start || env_end < env_start {
        return Err(Errno::EIO);
    }
    let args = arg_end - arg_start;
    let n = title.len().min(args.saturating_sub(1));
    // SAFETY: the kernel reports [arg_start, arg_end) and [env_start, env_end) as this
    // process's argument and environment strings, which live in its own mapped,
    // writable stack and are not borrowed by any Rust reference; the writes stay
    // inside those ranges. The C library's argv/environ pointers keep pointing into
    // them, at NUL-terminated bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(title.as_ptr(), arg_start as *mut u8, n);
        std::ptr::write_bytes((arg_start + n) as *mut u8, 0, args - n);
        std::ptr::write_bytes(env_start as *mut u8, 0, env_end - env_start);
    }
    Ok(())
}
