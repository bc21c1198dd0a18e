//! The uid/gid maps of the sandbox's user namespace, for a loader that is not root.
//!
//! When the loader runs without privileges, the sandbox's init is cloned into a new user
//! namespace as well, so that it holds the capabilities needed to mount, pivot_root and
//! set the hostname *inside* its namespaces. Until its maps are written every id in it is
//! unmapped (shown as the overflow id 65534) and it may do nothing useful; the parent
//! (the loader) writes them once the child exists, then lets it continue.
//!
//! Linux rules the writer follows (user_namespaces(7)):
//! - Each of `/proc/PID/uid_map` and `/proc/PID/gid_map` can be written once, in a
//!   single `write(2)`.
//! - A writer without `CAP_SETUID`/`CAP_SETGID` over the parent namespace may map one
//!   id only, and it must be its own effective uid (resp. gid), from the namespace that
//!   created the child (the loader's, here).
//! - Such a writer must first write `deny` to `/proc/PID/setgroups`: otherwise the
//!   child, root in its namespace, could drop supplementary groups with `setgroups(2)`
//!   and escape "negative" group permissions (files readable by all but one group).
//!
//! The map chosen is a single line, `0 <outer> 1`: the sandbox's root is the loader's
//! user outside, so files it creates on writable binds belong to the user, and it has
//! no other id to switch to. Programs that call `setgroups` get `EPERM`.
use std::io::Write;
use std::path::PathBuf;

use nix::unistd::{Gid, Pid, Uid};

/// Writing one of the `/proc/PID/{setgroups,uid_map,gid_map}` files failed.
#[derive(Debug, thiserror::Error)]
#[error("writing {content:?} to {}: {source}", path.display())]
pub struct UserNsError {
    /// The file written.
    pub path: PathBuf,
    /// What was written.
    pub content: String,
    /// The error of `open(2)` or `write(2)`.
    pub source: std::io::Error,
}

/// Maps root of `child`'s user namespace to the loader's ids: denies `setgroups`, then
/// writes `0 <outer_uid> 1` to its `uid_map` and `0 <outer_gid> 1` to its `gid_map`.
/// `child` must be in a new user namespace whose maps are still unwritten, and the caller
/// in the parent namespace with `outer_uid`/`outer_gid` its own effective ids (or
/// privileged there). See the module docs for the rules.
pub fn write_id_maps(child: Pid, outer_uid: Uid, outer_gid: Gid) -> Result<(), UserNsError> {
    let dir = PathBuf::from(format!("/proc/{child}"));
    write_once(dir.join("setgroups"), "deny".to_string())?;
    write_once(dir.join("uid_map"), format!("0 {outer_uid} 1\n"))?;
    write_once(dir.join("gid_map"), format!("0 {outer_gid} 1\n"))?;
    tracing::debug!(%child, %outer_uid, %outer_gid, "user namespace maps written");
    Ok(())
}

/// Opens `path` for writing (no create, no truncate) and writes `content` in one call.
fn write_once(path: PathBuf, content: String) -> Result<(), UserNsError> {
    let result = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut file| {
            let written = file.write(content.as_bytes())?;
            if written == content.len() {
                Ok(())
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("short write: {written} of {} bytes", content.len()),
                ))
            }
        });
    result.map_err(|source| UserNsError {
        path,
        content,
        source,
    })
}
