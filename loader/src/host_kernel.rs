//! The oldest Linux the loader runs on, checked before anything starts.
//!
//! Linux 5.19 is the floor: the notify filter is installed with
//! `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (5.19), without which a notified call could
//! be interrupted after the supervisor received it and its answer would be lost.
//! Everything else the loader needs is older (pidfd_getfd 5.6, close_range 5.9,
//! CLONE_CLEAR_SIGHAND 5.5 with a fallback) or optional
//! (`SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`, 6.6: without it every notified call is
//! slower, and the loader warns).

/// The minimum (major, minor).
pub const MINIMUM: (u32, u32) = (5, 19);

/// The running kernel is older than [`MINIMUM`].
#[derive(Debug, thiserror::Error)]
#[error(
    "this kernel ({release}) is too old: sandbox needs Linux {}.{} or newer \
     (seccomp user notification with killable waits)",
    MINIMUM.0,
    MINIMUM.1
)]
pub struct TooOld {
    pub release: String,
}

/// (major, minor) of a release string such as `6.18.44-fc-v669` or `5.15.0-91-generic`.
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Checks a release string against [`MINIMUM`]; one that cannot be parsed passes (the
/// features themselves then report what is missing).
pub fn check_release(release: &str) -> Result<(), TooOld> {
    match parse_release(release) {
        Some(v) if v < MINIMUM => Err(TooOld {
            release: release.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Checks the running kernel.
pub fn check() -> Result<(), TooOld> {
    match nix::sys::utsname::uname() {
        Ok(u) => check_release(&u.release().to_string_lossy()),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_below_the_floor_are_refused_with_the_version_named() {
        for old in [
            "5.15.0-91-generic",
            "4.19.0",
            "5.4.0-150-generic",
            "5.18.19",
        ] {
            let e = check_release(old).err().map(|e| e.to_string());
            let e = e.unwrap_or_default();
            assert!(e.contains(old) && e.contains("5.19"), "{old}: {e:?}");
        }
        for new in ["5.19.0", "6.1.0-28-amd64", "6.18.44-fc-v669", "10.0"] {
            assert!(check_release(new).is_ok(), "{new}");
        }
        assert_eq!(parse_release("6.18.44-fc-v669"), Some((6, 18)));
        assert!(check_release("weird").is_ok());
    }

    #[test]
    fn this_machine_passes() {
        assert!(check().is_ok());
    }
}
