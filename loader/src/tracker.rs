//! Keeping the sentry in lockstep with the host's processes.
//!
//! Processes are created, exec'd and reaped natively; the sentry learns about them
//! lazily. Numbers: the seccomp notification names a thread by its PID in the loader's
//! namespace ("host"); the sentry speaks the sandbox's namespace ("ns"), the numbers
//! the programs see and pass to setpgid. `/proc/PID/status` (NSpid, NStgid, NSpgid,
//! NSsid) gives both, so translation is one read per thread, cached. Host PIDs are
//! allocated cyclically up to pid_max (4M), so a cached number is not reused by another
//! process within any realistic sandbox lifetime; entries of processes found gone are
//! dropped at the next reconcile.
//!
//! `reconcile` walks the sandbox's process tree from init (`/proc/PID/task/TID/children`)
//! and brings the sentry up to date: new processes adopted (parents first), deaths and
//! reaps reported, reparenting applied. It also compares every process's process group
//! and session with the sentry's; a difference is a lockstep violation (a bug), unless
//! a setpgid/setsid the sentry approved may not have run on the host yet (the caller
//! has not made another notified call since).

use crate::procfs::{self, ProcInfo};
use sandbox_sentry::{ExitStatus, HostProcess, Kernel, Pid, Signal};
use std::collections::{BTreeSet, HashMap};

/// The `inflight` key of an approved foreground change on an owned pty.
pub(crate) const FOREGROUND: Pid = -1;

/// A thread as the sentry names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NsThread {
    pub tid: Pid,
    pub tgid: Pid,
}

#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Host PID of the sandbox's init.
    pub init_host: i32,
    by_host: HashMap<i32, NsThread>,
    /// ns PID → host PID, for every process and thread seen (also used for process
    /// group IDs: a group's ID is its leader's PID in each namespace).
    to_host: HashMap<Pid, i32>,
    /// Processes whose group or session may lag on the host: target → approving caller.
    inflight: HashMap<Pid, Pid>,
    /// Lockstep violations found so far.
    pub violations: Vec<String>,
    /// A file each violation is appended to as soon as it is found.
    pub report: Option<std::path::PathBuf>,
}

impl Tracker {
    pub fn new(init_host: i32) -> Tracker {
        let mut t = Tracker {
            init_host,
            ..Tracker::default()
        };
        t.by_host.insert(init_host, NsThread { tid: 1, tgid: 1 });
        t.to_host.insert(1, init_host);
        t
    }

    /// Appends violations to `report` as they are found.
    pub fn with_report(mut self, report: Option<std::path::PathBuf>) -> Tracker {
        self.report = report;
        self
    }

    fn remember(&mut self, info: &ProcInfo) -> NsThread {
        let t = NsThread {
            tid: info.ns_pid,
            tgid: info.ns_tgid,
        };
        self.by_host.insert(info.host_pid, t);
        self.to_host.insert(info.ns_pid, info.host_pid);
        if info.ns_tgid != info.ns_pid {
            self.to_host.insert(info.ns_tgid, info.host_tgid);
        }
        t
    }

    /// The host PID of a sandbox PID (process, thread or group leader), if seen.
    pub fn host_pid(&self, ns: Pid) -> Option<i32> {
        self.to_host.get(&ns).copied()
    }

    /// A thread already translated.
    pub fn cached(&self, host_tid: i32) -> Option<NsThread> {
        self.by_host.get(&host_tid).copied()
    }

    /// Translates a notified thread, reading /proc the first time.
    pub fn translate(&mut self, host_tid: i32) -> Option<NsThread> {
        if let Some(t) = self.by_host.get(&host_tid) {
            return Some(*t);
        }
        let info = procfs::read(host_tid).ok()?;
        Some(self.remember(&info))
    }

    /// Makes sure the sentry knows the notified thread (and its process and ancestors).
    pub fn ensure_known(&mut self, k: &mut Kernel, host_tid: i32) -> Option<NsThread> {
        let t = self.translate(host_tid)?;
        if k.thread_group(t.tgid).is_none() {
            let host_tgid = self.host_pid(t.tgid)?;
            self.adopt(k, host_tgid, 0)?;
        }
        if t.tid != t.tgid && k.task(t.tid).is_none() {
            let _ = k.host_adopt_thread(t.tgid, t.tid);
        }
        Some(t)
    }

    /// Makes sure the sentry knows the sandbox process `ns` (by finding it on the host).
    /// `ns` may also be a thread of a known process that never made a notified call:
    /// it is adopted as that thread (setpgid on a thread other than its process's
    /// leader is EINVAL on Linux, not the ESRCH of an unknown PID).
    pub fn ensure_process(&mut self, k: &mut Kernel, ns: Pid) -> bool {
        if k.thread_group(ns).is_some() || k.task(ns).is_some() {
            return true;
        }
        self.reconcile(k);
        if k.thread_group(ns).is_some() {
            return true;
        }
        self.adopt_thread(k, ns)
    }

    /// Finds `ns` among the threads of the known processes and adopts it.
    fn adopt_thread(&mut self, k: &mut Kernel, ns: Pid) -> bool {
        let processes: Vec<(Pid, i32)> = self
            .by_host
            .iter()
            .filter(|(_, t)| t.tid == t.tgid && k.thread_group(t.tgid).is_some())
            .map(|(h, t)| (t.tgid, *h))
            .collect();
        for (tgid, host) in processes {
            let Ok(tids) = procfs::threads(host) else {
                continue;
            };
            for tid in tids.into_iter().filter(|&t| t != host) {
                let Ok(info) = procfs::read(tid) else {
                    continue;
                };
                if info.ns_pid == ns && info.ns_tgid == tgid {
                    self.remember(&info);
                    return k.host_adopt_thread(tgid, ns).is_ok();
                }
            }
        }
        false
    }

    /// Adopts the host process `host_pid` after its ancestors.
    fn adopt(&mut self, k: &mut Kernel, host_pid: i32, depth: u32) -> Option<Pid> {
        if depth > 64 {
            return None;
        }
        let info = procfs::read(host_pid).ok()?;
        let me = self.remember(&info);
        if k.thread_group(me.tgid).is_some() {
            return Some(me.tgid);
        }
        let parent = if info.host_ppid == 0 {
            None
        } else {
            match self.translate(info.host_ppid) {
                Some(p) if k.thread_group(p.tgid).is_some() => Some(p.tgid),
                Some(_) => Some(self.adopt(k, info.host_ppid, depth + 1)?),
                None => None,
            }
        };
        let p = HostProcess {
            pid: me.tgid,
            parent,
            pgid: info.ns_pgid,
            sid: info.ns_sid,
            did_exec: info.did_exec,
        };
        tracing::debug!(?p, host = host_pid, "adopting process");
        if k.host_adopt(p).is_err() {
            return None;
        }
        if info.is_zombie() {
            let _ = k.host_exited(me.tgid, exit_status(info.exit_code));
        }
        Some(me.tgid)
    }

    /// A setpgid/setsid approved for `target` by `caller` may not have run yet.
    pub fn approved(&mut self, caller: Pid, target: Pid) {
        self.inflight.insert(target, caller);
    }

    /// Whether an approved foreground change may not have run on the host yet.
    pub fn foreground_in_flight(&self) -> bool {
        self.inflight.contains_key(&FOREGROUND)
    }

    /// The sandbox PID whose host PID is `host` (a process group's ID), if seen.
    pub fn ns_pid(&self, host: i32) -> Option<Pid> {
        self.to_host
            .iter()
            .find(|(_, &h)| h == host)
            .map(|(&ns, _)| ns)
    }

    /// Records a lockstep violation.
    pub fn violation(&mut self, msg: String) {
        tracing::error!("{msg}");
        if let Some(path) = &self.report {
            use std::io::Write as _;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "{msg}");
            }
        }
        self.violations.push(msg);
    }

    /// `caller` made a new notified call: its earlier approved call has completed.
    pub fn caller_returned(&mut self, caller: Pid) {
        self.inflight.retain(|_, c| *c != caller);
    }

    /// Brings the sentry up to date with the host (see the module documentation).
    pub fn reconcile(&mut self, k: &mut Kernel) {
        let mut seen: BTreeSet<Pid> = BTreeSet::new();
        seen.insert(1);
        let mut queue = vec![self.init_host];
        let mut infos: Vec<ProcInfo> = Vec::new();
        while let Some(host) = queue.pop() {
            if let Ok(children) = procfs::children(host) {
                for c in children {
                    if let Ok(info) = procfs::read(c) {
                        queue.push(c);
                        infos.push(info);
                    }
                }
            }
        }
        // Parents before children: the walk is top-down, adopt in that order.
        for info in &infos {
            let me = self.remember(info);
            seen.insert(me.tgid);
            let parent = self.translate(info.host_ppid).map(|p| p.tgid);
            match k.thread_group(me.tgid) {
                None => {
                    let _ = self.adopt(k, info.host_pid, 0);
                }
                Some(g) => {
                    let alive = g.is_alive();
                    let (pgid, sid, model_parent) = (g.pgid, g.sid, g.parent);
                    if alive && !g.did_exec && info.did_exec && !info.is_zombie() {
                        // An execve since the sentry adopted it (exec is not notified):
                        // its parent's setpgid on it is EACCES from now on.
                        let _ = k.host_exec_observed(me.tgid);
                    }
                    if alive && info.is_zombie() {
                        let _ = k.host_exited(me.tgid, exit_status(info.exit_code));
                    }
                    if let Some(p) = parent {
                        if model_parent != Some(p) && k.thread_group(p).is_some() {
                            let _ = k.host_set_parent(me.tgid, p);
                        }
                    }
                    if alive
                        && !info.is_zombie()
                        && !self.inflight.contains_key(&me.tgid)
                        && (pgid, sid) != (info.ns_pgid, info.ns_sid)
                    {
                        let msg = format!(
                            "lockstep violation: process {} is in group {} session {} on the \
                             host but in group {pgid} session {sid} in the sentry",
                            me.tgid, info.ns_pgid, info.ns_sid
                        );
                        self.violation(msg);
                    }
                }
            }
        }
        // Gone from the host: died and reaped.
        let gone: Vec<Pid> = k
            .processes()
            .into_iter()
            .filter(|p| !seen.contains(p))
            .collect();
        for p in gone {
            if k.thread_group(p).is_some_and(|g| g.is_alive()) {
                let _ = k.host_exited(p, ExitStatus::Exited(0));
            }
            let _ = k.host_reaped(p);
            self.inflight.remove(&p);
        }
        let live: BTreeSet<Pid> = seen;
        self.inflight.retain(|_, c| live.contains(c));
    }
}

/// The sentry's exit status from a wait status word.
pub(crate) fn exit_status(raw: i32) -> ExitStatus {
    if raw & 0x7f == 0 {
        ExitStatus::Exited(((raw >> 8) & 0xff) as u8)
    } else {
        match Signal::new(raw & 0x7f) {
            Ok(sig) => ExitStatus::Signaled {
                sig,
                core: raw & 0x80 != 0,
            },
            Err(_) => ExitStatus::Exited(0),
        }
    }
}
