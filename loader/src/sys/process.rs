//! Credentials and resource limits of the program, set just before exec.

use nix::errno::Errno;

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

/// Clears supplementary groups, then sets the real, effective and saved group and user
/// IDs (group first: afterwards the privilege to change it is gone).
pub(crate) fn become_user(uid: u32, gid: u32) -> Result<(), Errno> {
    match nix::unistd::setgroups(&[]) {
        // In a user namespace whose setgroups is "deny" (rootless sandboxes) the
        // supplementary groups cannot change; they stay as they were.
        Err(Errno::EPERM) if setgroups_denied() => {}
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
