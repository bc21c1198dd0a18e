//! Reading what the host knows about a process from `/proc` (the loader's view: host
//! PIDs), with the sandbox-namespace numbers from the `NS*` lines of `status`.

use std::fs;
use std::io;

/// `PF_FORKNOEXEC` in `/proc/PID/stat` field 9: forked and not yet exec'd.
const PF_FORKNOEXEC: u64 = 0x40;
/// `PF_EXITING` in the same flags: set at the start of `do_exit`.
const PF_EXITING: u64 = 0x4;

/// The parts of `/proc/PID/status` and `/proc/PID/stat` the supervisor needs. `ns`
/// values are those of the innermost PID namespace (the sandbox's), `host` values the
/// loader's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    pub host_pid: i32,
    pub state: char,
    pub host_tgid: i32,
    pub host_ppid: i32,
    pub ns_pid: i32,
    pub ns_tgid: i32,
    pub ns_pgid: i32,
    pub ns_sid: i32,
    pub host_pgid: i32,
    pub host_sid: i32,
    /// SigBlk: the thread's mask.
    pub sig_blocked: u64,
    /// SigIgn: the process's ignored signals.
    pub sig_ignored: u64,
    /// `PF_FORKNOEXEC` is clear.
    pub did_exec: bool,
    /// `PF_EXITING` is set: the process is in `do_exit` (a session leader there has
    /// already given up its controlling terminal before it becomes a zombie).
    pub exiting: bool,
    /// For a zombie: the wait status (stat field 52).
    pub exit_code: i32,
    /// The foreground group of its controlling terminal, host numbers (stat field 8;
    /// -1 without one).
    pub host_tpgid: i32,
    /// Its controlling terminal's device number as /proc encodes it (stat field 7; 0
    /// without one): see [`tty_nr`].
    pub tty_nr: u32,
}

/// A character device number as `/proc/PID/stat`'s `tty_nr` encodes it (the kernel's
/// `new_encode_dev`: minor's low byte, major, then minor's high bits).
pub fn tty_nr(rdev: u64) -> u32 {
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

impl ProcInfo {
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }
}

fn last_field(v: &str) -> Option<i32> {
    v.split_whitespace().last()?.parse().ok()
}

fn first_field(v: &str) -> Option<i32> {
    v.split_whitespace().next()?.parse().ok()
}

fn bad(what: &str, pid: i32) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected /proc/{pid}/{what}"),
    )
}

/// Reads a thread's (or process's) information. `ENOENT` once it has been reaped.
pub fn read(host_pid: i32) -> io::Result<ProcInfo> {
    let status = fs::read_to_string(format!("/proc/{host_pid}/status"))?;
    let stat = fs::read_to_string(format!("/proc/{host_pid}/stat"))?;
    let mut info = ProcInfo {
        host_pid,
        state: '?',
        host_tgid: 0,
        host_ppid: 0,
        ns_pid: 0,
        ns_tgid: 0,
        ns_pgid: 0,
        ns_sid: 0,
        host_pgid: 0,
        host_sid: 0,
        sig_blocked: 0,
        sig_ignored: 0,
        did_exec: true,
        exiting: false,
        exit_code: 0,
        host_tpgid: -1,
        tty_nr: 0,
    };
    for line in status.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k {
            "State" => info.state = v.trim().chars().next().unwrap_or('?'),
            "Tgid" => info.host_tgid = first_field(v).unwrap_or(0),
            "PPid" => info.host_ppid = first_field(v).unwrap_or(0),
            "NStgid" => info.ns_tgid = last_field(v).unwrap_or(0),
            "NSpid" => info.ns_pid = last_field(v).unwrap_or(0),
            "NSpgid" => {
                info.ns_pgid = last_field(v).unwrap_or(0);
                info.host_pgid = first_field(v).unwrap_or(0);
            }
            "NSsid" => {
                info.ns_sid = last_field(v).unwrap_or(0);
                info.host_sid = first_field(v).unwrap_or(0);
            }
            "SigBlk" => info.sig_blocked = u64::from_str_radix(v.trim(), 16).unwrap_or(0),
            "SigIgn" => info.sig_ignored = u64::from_str_radix(v.trim(), 16).unwrap_or(0),
            _ => {}
        }
    }
    // stat: "pid (comm) state ppid pgrp session tty_nr tpgid flags ..."; comm may hold
    // spaces and parentheses, so split after the last ')'.
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| bad("stat", host_pid))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); flags is field 9 → fields[6]; exit_code is 52.
    let flags: u64 = fields
        .get(6)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| bad("stat", host_pid))?;
    info.did_exec = flags & PF_FORKNOEXEC == 0;
    info.exiting = flags & PF_EXITING != 0;
    info.host_tpgid = fields.get(5).and_then(|f| f.parse().ok()).unwrap_or(-1);
    info.tty_nr = fields.get(4).and_then(|f| f.parse().ok()).unwrap_or(0);
    info.exit_code = fields.get(49).and_then(|f| f.parse().ok()).unwrap_or(0);
    if info.ns_pid == 0 {
        return Err(bad("status", host_pid));
    }
    Ok(info)
}

/// The host PIDs of every child of every thread of `host_pid`.
pub fn children(host_pid: i32) -> io::Result<Vec<i32>> {
    let mut out = Vec::new();
    for tid in threads(host_pid)? {
        if let Ok(s) = fs::read_to_string(format!("/proc/{host_pid}/task/{tid}/children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    Ok(out)
}

/// The host TIDs of the threads of `host_pid`.
pub fn threads(host_pid: i32) -> io::Result<Vec<i32>> {
    let mut out = Vec::new();
    for e in fs::read_dir(format!("/proc/{host_pid}/task"))? {
        if let Some(t) = e?.file_name().to_str().and_then(|s| s.parse().ok()) {
            out.push(t);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// What a process's descriptor refers to, as (`st_dev`, `st_ino`): a file's identity.
/// (Not `st_rdev`: every devpts instance numbers its ptys the same way, so the sandbox's
/// own /dev/pts/3 has the same device number as the host's /dev/pts/3.)
pub fn fd_identity(host_pid: i32, fd: i32) -> io::Result<(u64, u64)> {
    fd_stat(host_pid, fd).map(|(dev, ino, _)| (dev, ino))
}

/// (`st_dev`, `st_ino`, `st_rdev`) of what a process's descriptor refers to.
pub fn fd_stat(host_pid: i32, fd: i32) -> io::Result<(u64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(format!("/proc/{host_pid}/fd/{fd}"))?;
    Ok((m.dev(), m.ino(), m.rdev()))
}

/// Whether a process's descriptor is open for reading (`flags` of /proc/PID/fdinfo).
pub fn fd_readable(host_pid: i32, fd: i32) -> bool {
    let Ok(s) = fs::read_to_string(format!("/proc/{host_pid}/fdinfo/{fd}")) else {
        return false;
    };
    s.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .is_some_and(|f| f & libc::O_ACCMODE as u32 != libc::O_WRONLY as u32)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = std::process::id() as i32;
        let info = read(me).unwrap();
        assert_eq!(info.host_tgid, me);
        assert_eq!(info.host_pgid, nix::unistd::getpgrp().as_raw());
        assert!(info.did_exec);
        assert!(threads(me).unwrap().contains(&me));
    }

    #[test]
    fn forked_child_has_not_exec_d_and_is_listed() {
        let me = std::process::id() as i32;
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Let it exec.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let info = read(pid).unwrap();
        assert_eq!(info.host_ppid, me);
        assert!(info.did_exec);
        assert!(children(me).unwrap().contains(&pid));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(read(pid).is_err());
    }
}
