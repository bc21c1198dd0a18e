//! Linux capabilities the program may keep ([`crate::SandboxSpec::capabilities`]).
//!
//! By default the program runs with no capability at all, as root or not: before its
//! `execve` it empties its bounding set (so nothing it executes can get one back), its
//! effective, permitted and inheritable sets and its ambient set. A capability in
//! [`CapSet`] is left in the bounding set and put in the permitted, effective,
//! inheritable and ambient sets, so that it survives `execve` for uid 0 and for any
//! other uid (`--user`).

use std::fmt;
use std::str::FromStr;

/// Capability names in number order (linux/capability.h), without `CAP_`.
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The set Docker gives a container by default (`--cap-add docker-default`).
pub const DOCKER_DEFAULT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Capabilities that void a guarantee of the sandbox when the program keeps them:
/// mounts and namespaces (SYS_ADMIN), tracing init or reading other processes'
/// memory (SYS_PTRACE), kernel modules (SYS_MODULE), raw I/O ports and devices
/// (SYS_RAWIO), reading any file by handle outside the view (DAC_READ_SEARCH:
/// `open_by_handle_at`), network configuration with `--share-net` (NET_ADMIN), BPF,
/// and the limits and the kernel's log (SYS_RESOURCE, SYSLOG, SYS_BOOT, SYS_TIME).
pub const DANGEROUS: &[&str] = &[
    "SYS_ADMIN",
    "SYS_PTRACE",
    "SYS_MODULE",
    "SYS_RAWIO",
    "DAC_READ_SEARCH",
    "NET_ADMIN",
    "BPF",
    "PERFMON",
    "SYS_RESOURCE",
    "SYSLOG",
    "SYS_BOOT",
    "SYS_TIME",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "LINUX_IMMUTABLE",
];

/// A set of capabilities: bit N is capability N.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CapSet(u64);

/// A capability name that is neither known nor `docker-default`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability {0:?} (expected a name such as NET_BIND_SERVICE or CAP_CHOWN, or docker-default)")]
pub struct UnknownCapability(pub String);

impl CapSet {
    /// No capability.
    pub const EMPTY: CapSet = CapSet(0);

    /// The set with the raw mask `bits` (bit N = capability N).
    pub fn from_bits(bits: u64) -> CapSet {
        CapSet(bits)
    }

    /// The raw mask (bit N = capability N).
    pub fn bits(self) -> u64 {
        self.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Adds the capability named `name`: with or without `CAP_`, any case; or the
    /// whole [`DOCKER_DEFAULT`] preset for `docker-default`.
    pub fn add(&mut self, name: &str) -> Result<(), UnknownCapability> {
        if name.eq_ignore_ascii_case("docker-default") {
            for n in DOCKER_DEFAULT {
                self.0 |= 1 << number(n).ok_or_else(|| UnknownCapability(name.into()))?;
            }
            return Ok(());
        }
        let bare = name.to_ascii_uppercase();
        let bare = bare.strip_prefix("CAP_").unwrap_or(&bare);
        let n = number(bare).ok_or_else(|| UnknownCapability(name.into()))?;
        self.0 |= 1 << n;
        Ok(())
    }

    /// The names in the set (without `CAP_`).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        NAMES
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
    }

    /// The members of [`DANGEROUS`] in the set.
    pub fn dangerous(self) -> impl Iterator<Item = &'static str> {
        self.names().filter(|n| DANGEROUS.contains(n))
    }
}

impl FromStr for CapSet {
    type Err = UnknownCapability;
    /// One name (or `docker-default`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = CapSet::EMPTY;
        set.add(s)?;
        Ok(set)
    }
}

impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.names().collect();
        write!(f, "{}", names.join(","))
    }
}

fn number(name: &str) -> Option<u32> {
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_parse_with_or_without_prefix_in_any_case() {
        let mut s = CapSet::EMPTY;
        s.add("net_bind_service").unwrap();
        s.add("CAP_CHOWN").unwrap();
        s.add("cap_sys_admin").unwrap();
        assert_eq!(s.bits(), 1 << 10 | 1 << 0 | 1 << 21);
        assert_eq!(s.dangerous().collect::<Vec<_>>(), ["SYS_ADMIN"]);
        assert!(s.add("CAP_FLY").is_err());
    }

    #[test]
    fn docker_default_is_fourteen_capabilities() {
        let s: CapSet = "docker-default".parse().unwrap();
        assert_eq!(s.bits().count_ones(), 14);
        assert_eq!(s.dangerous().count(), 0);
        assert!(s.names().any(|n| n == "NET_RAW"));
    }
}
