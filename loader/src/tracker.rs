//! Keeping the sentry in lockstep with the host's processes.
//!
//! Processes are created, exec'd and reaped natively; the sentry learns about them
//! lazily and from events, never by walking the whole tree on the common path.
//! Numbers: the seccomp notification names a thread by its PID in the loader's
//! namespace ("host"); the sentry speaks the sandbox's namespace ("ns"), the numbers
//! the programs see and pass to setpgid. `/proc/PID/status` (NSpid, NStgid, NSpgid,
//! NSsid) gives both, so translation is one read per new thread, cached.
//!
//! How each change is learnt:
//! - **Birth**: a process is adopted when it first makes a notified call (its
//!   ancestors first, each from its own `/proc/PID/status` and `stat`), or when its
//!   parent names it in setpgid ([`Tracker::ensure_child`]: only the caller's
//!   `task/*/children` are read). A process that never makes a notified call and is
//!   never named stays unknown to the sentry; the host still runs it.
//! - **Exit and reap**: every adopted process is watched by a pidfd in an epoll set
//!   (edge-triggered). Linux makes a pidfd readable when its process exits (a zombie)
//!   and wakes it again with `EPOLLHUP` when the process is reaped
//!   (`pidfd_poll`; the reap wakes `wait_pidfd`). [`Tracker::observe`] drains the set:
//!   a zombie's exit status is read from its `/proc/PID/stat` (it cannot be reused
//!   before the reap), its known children are re-parented as the host did (one read
//!   each), and a reaped process is forgotten: its pidfd closed, its host and sandbox
//!   numbers dropped, so a later process given the same number (a PID wrap-around, or
//!   `ns_last_pid` written inside the sandbox) is adopted afresh.
//! - **Reuse**: a number can only be reused after its holder was reaped, which the
//!   epoll set reported before; a thread (not watched) whose number a new thread or
//!   process takes is dropped from the sentry then ([`Tracker::translate`]).
//!
//! What the sentry does not know can only matter where a group's existence or an
//! orphan test decides: the supervisor re-checks a refusal (EPERM) and the background
//! rules with a full walk ([`Tracker::reconcile`]), and checks a setsid the sentry
//! allows against the host (`kill(-pid, 0)`). The full walk (`/proc/PID/task/TID/children`
//! from init) also compares every process's group and session with the sentry's; a
//! difference is a lockstep violation (a bug), unless a setpgid/setsid the sentry
//! approved may not have run on the host yet (the caller has not made another notified
//! call since). Should a pidfd not be available (out of descriptors), every
//! [`Tracker::observe`] falls back to the full walk.

use crate::procfs::{self, ProcInfo};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use sandbox_sentry::{ExitStatus, HostProcess, Kernel, Pid, Signal, TtyId};
use std::collections::{BTreeSet, HashMap};
use std::os::fd::OwnedFd;

/// Descriptors of the loader's soft limit the tracker leaves for everything else.
const RESERVED_DESCRIPTORS: usize = 256;

/// The `inflight` key of an approved foreground change on an owned pty (the first
/// program's; see [`foreground_key`]).
pub(crate) const FOREGROUND: Pid = -1;

/// The `inflight` key of an approved foreground change on the owned pty `tty` (one per
/// terminal: two shells' changes must not overwrite each other's).
pub(crate) fn foreground_key(tty: u32) -> Pid {
    FOREGROUND.saturating_sub(Pid::try_from(tty).unwrap_or(Pid::MAX))
}

/// A thread as the sentry names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NsThread {
    pub tid: Pid,
    pub tgid: Pid,
}

/// An adopted process watched for its exit and reap.
#[derive(Debug)]
struct Watched {
    ns: Pid,
    /// Registered in the tracker's epoll set; closing it unregisters it.
    _pidfd: OwnedFd,
}

/// Counters for the performance notes and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrackerStats {
    /// Processes adopted into the sentry.
    pub adopted: u64,
    /// Exits and reaps learnt from pidfd events.
    pub events: u64,
    /// Full walks of the process tree.
    pub full_walks: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Host PID of the sandbox's init.
    pub init_host: i32,
    /// Host PIDs of exec'd processes: walked like init (their parent, an exec helper,
    /// is outside the sandbox's PID namespace; PPID 0 inside).
    roots: BTreeSet<i32>,
    by_host: HashMap<i32, NsThread>,
    /// ns PID → host PID, for every process and thread seen (also used for process
    /// group IDs: a group's ID is its leader's PID in each namespace).
    to_host: HashMap<Pid, i32>,
    /// Group numbers of leaders reaped since the sentry's signals were last sent: ns
    /// → host. A leader's death may make the sentry signal its group (a session
    /// leader's hang-up SIGHUP to its foreground group, often its own) whose members it
    /// never saw; the host keeps the number while any member is left, so `kill(-host)`
    /// still reaches them. Emptied after every send ([`Tracker::signals_sent`]).
    reaped_groups: HashMap<Pid, i32>,
    /// Processes whose group or session may lag on the host: target → approving caller.
    inflight: HashMap<Pid, Pid>,
    /// Lockstep violations found so far.
    pub violations: Vec<String>,
    /// A file each violation is appended to as soon as it is found.
    pub report: Option<std::path::PathBuf>,
    /// The pidfds of adopted processes (None: epoll unavailable, every observe walks).
    epoll: Option<Epoll>,
    /// Watched processes by host PID (the epoll data).
    watched: HashMap<i32, Watched>,
    /// Adopted processes without a pidfd: while there are any, observe walks.
    unwatched: BTreeSet<Pid>,
    /// At most this many pidfds: the rest of the descriptor limit stays for the
    /// loader's own work (/proc reads above all, without which nothing is decided).
    max_watched: usize,
    pub stats: TrackerStats,
    /// The sandbox's terminals: a foreground group's number keeps its host
    /// translation while a terminal names it (Linux keeps an empty foreground
    /// group's number on the terminal until another is set).
    pub ttys: Vec<TtyId>,
}

impl Tracker {
    pub fn new(init_host: i32) -> Tracker {
        let epoll = match Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!(%e, "no epoll set: processes are tracked by walking /proc");
                None
            }
        };
        let max_watched =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map(|(soft, _)| usize::try_from(soft).unwrap_or(usize::MAX))
                .unwrap_or(1024)
                .saturating_sub(RESERVED_DESCRIPTORS);
        let mut t = Tracker {
            init_host,
            epoll,
            max_watched,
            ..Tracker::default()
        };
        t.by_host.insert(init_host, NsThread { tid: 1, tgid: 1 });
        t.to_host.insert(1, init_host);
        t
    }

    /// An exec'd process: a root of the process tree besides init.
    pub fn add_root(&mut self, host_pid: i32) {
        self.roots.insert(host_pid);
    }

    /// Appends violations to `report` as they are found.
    pub fn with_report(mut self, report: Option<std::path::PathBuf>) -> Tracker {
        self.report = report;
        self
    }

    /// Records a thread's numbers. A sandbox number held by another host thread before
    /// means that one is gone (numbers are reused only after the reap): it is dropped.
    fn remember(&mut self, k: &mut Kernel, info: &ProcInfo) -> NsThread {
        let t = NsThread {
            tid: info.ns_pid,
            tgid: info.ns_tgid,
        };
        if let Some(old) = self.to_host.get(&info.ns_pid).copied() {
            if old != info.host_pid {
                self.stale(k, info.ns_pid, old);
            }
        }
        self.by_host.insert(info.host_pid, t);
        self.to_host.insert(info.ns_pid, info.host_pid);
        if info.ns_tgid != info.ns_pid {
            self.to_host.insert(info.ns_tgid, info.host_tgid);
        }
        t
    }

    /// `ns` was held by host thread `old_host`, which is gone.
    fn stale(&mut self, k: &mut Kernel, ns: Pid, old_host: i32) {
        tracing::debug!(
            ns,
            old_host,
            "sandbox PID reused: forgetting its former holder"
        );
        if self.watched.contains_key(&old_host) {
            self.died(k, old_host, true);
        }
        self.by_host.remove(&old_host);
        match k.task(ns).map(|t| t.tgid) {
            Some(tgid) if tgid != ns => {
                let _ = k.host_thread_exited(ns);
            }
            Some(_) if k.thread_group(ns).is_some_and(|g| g.is_alive()) => {
                let _ = k.host_exited(ns, ExitStatus::Exited(0));
                let _ = k.host_reaped(ns);
            }
            Some(_) => {
                let _ = k.host_reaped(ns);
            }
            None => {}
        }
        if self.to_host.get(&ns) == Some(&old_host) {
            self.to_host.remove(&ns);
        }
    }

    /// The host PID of a sandbox PID (process, thread or group leader), if seen.
    pub fn host_pid(&self, ns: Pid) -> Option<i32> {
        self.to_host.get(&ns).copied()
    }

    /// The host number of process group `pg`: its leader's host PID, also when the
    /// leader was reaped since the sentry's signals were last sent.
    pub fn group_host_pid(&self, pg: Pid) -> Option<i32> {
        self.host_pid(pg)
            .or_else(|| self.reaped_groups.get(&pg).copied())
    }

    /// The sentry's signals have been sent: reaped leaders' numbers are dropped.
    pub fn signals_sent(&mut self) {
        self.reaped_groups.clear();
    }

    /// A thread already translated.
    pub fn cached(&self, host_tid: i32) -> Option<NsThread> {
        self.by_host.get(&host_tid).copied()
    }

    /// Translates a notified thread, reading /proc the first time.
    pub fn translate(&mut self, k: &mut Kernel, host_tid: i32) -> Option<NsThread> {
        if let Some(t) = self.by_host.get(&host_tid) {
            return Some(*t);
        }
        let info = procfs::read(host_tid).ok()?;
        Some(self.remember(k, &info))
    }

    /// The notified thread, if the sentry knows it already (two lookups, nothing read
    /// from /proc): what [`Tracker::ensure_known`] returns without reading anything.
    pub fn known(&self, k: &Kernel, host_tid: i32) -> Option<NsThread> {
        self.cached(host_tid).filter(|t| k.task(t.tid).is_some())
    }

    /// Makes sure the sentry knows the notified thread (and its process and ancestors).
    /// A known thread costs two lookups ([`Tracker::known`]); a new one, the reads of
    /// its (and its unknown ancestors') /proc files, after the pending exits and reaps
    /// are applied.
    pub fn ensure_known(&mut self, k: &mut Kernel, host_tid: i32) -> Option<NsThread> {
        if let Some(t) = self.known(k, host_tid) {
            return Some(t);
        }
        if self.cached(host_tid).is_none() {
            self.observe(k);
        }
        let t = self.translate(k, host_tid)?;
        if k.thread_group(t.tgid).is_none() {
            let host_tgid = self.host_pid(t.tgid)?;
            self.adopt(k, host_tgid, 0)?;
        }
        if t.tid != t.tgid && k.task(t.tid).is_none() {
            let _ = k.host_adopt_thread(t.tgid, t.tid);
        }
        Some(t)
    }

    /// Makes sure the sentry knows `ns` if it is the process `caller` or one of its
    /// children: reads only the caller's children lists, and /proc of the unknown ones.
    /// `ns` may also be a thread of a known process that never made a notified call:
    /// it is adopted as that thread (setpgid on a thread other than its process's
    /// leader is EINVAL on Linux, not the ESRCH of an unknown PID). False when `ns` is
    /// none of these (setpgid's ESRCH).
    pub fn ensure_child(&mut self, k: &mut Kernel, caller: Pid, ns: Pid) -> bool {
        if k.thread_group(ns).is_some() || k.task(ns).is_some() {
            return true;
        }
        let Some(host) = self.host_pid(caller) else {
            return false;
        };
        if let Ok(children) = procfs::children(host) {
            for c in children {
                if !self.by_host.contains_key(&c) {
                    let _ = self.adopt(k, c, 0);
                }
            }
        }
        if k.thread_group(ns).is_some() {
            return true;
        }
        self.adopt_thread(k, ns)
    }

    /// The sandbox process `ns` may have exec'd since the sentry adopted it (execve is
    /// not notified): one read of its own `/proc` files (PF_FORKNOEXEC cleared), so
    /// that its parent's setpgid on it is EACCES, as on Linux.
    pub fn refresh_exec(&mut self, k: &mut Kernel, ns: Pid) {
        let Some(g) = k.thread_group(ns) else {
            return;
        };
        if g.did_exec {
            return;
        }
        let Some(host) = self.host_pid(ns) else {
            return;
        };
        // A zombie keeps its flags until it is reaped: an exec'd child that died is
        // still EACCES to its parent's setpgid (Linux checks the exec before the group).
        if let Ok(info) = procfs::read(host) {
            if info.ns_pid == ns && info.did_exec {
                let _ = k.host_exec_observed(ns);
            }
        }
    }

    /// Makes sure the sentry knows the sandbox process `ns` (by finding it on the host,
    /// with a full walk when it is not known yet). `ns` may also be a thread of a known
    /// process that never made a notified call: it is adopted as that thread.
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
                    self.remember(k, &info);
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
        // The pidfd first: the /proc read then describes the process it watches.
        let pidfd = if self.watched.len() < self.max_watched {
            crate::sys::clone::pidfd_open(host_pid)
        } else {
            Err(nix::errno::Errno::EMFILE)
        };
        if matches!(pidfd, Err(nix::errno::Errno::ESRCH)) {
            return None;
        }
        let info = procfs::read(host_pid).ok()?;
        let me = self.remember(k, &info);
        if k.thread_group(me.tgid).is_some() {
            return Some(me.tgid);
        }
        let parent = if info.host_ppid == 0 || self.roots.contains(&host_pid) {
            None
        } else {
            match self.translate(k, info.host_ppid) {
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
        self.stats.adopted += 1;
        self.watch_fd(me.tgid, info.host_tgid, pidfd.ok());
        if info.is_zombie() {
            let _ = k.host_exited(me.tgid, exit_status(info.exit_code));
        }
        Some(me.tgid)
    }

    /// Watches the adopted process `ns` (host PID `host`) for its exit and reap.
    pub fn watch(&mut self, ns: Pid, host: i32) {
        let fd = if self.watched.len() < self.max_watched {
            crate::sys::clone::pidfd_open(host).ok()
        } else {
            None
        };
        self.watch_fd(ns, host, fd);
    }

    fn watch_fd(&mut self, ns: Pid, host: i32, pidfd: Option<OwnedFd>) {
        let registered = match (&self.epoll, pidfd) {
            (Some(ep), Some(fd)) => {
                let ev = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, host as u64);
                match ep.add(&fd, ev) {
                    Ok(()) => Some(fd),
                    Err(e) => {
                        tracing::debug!(%e, ns, "pidfd not watched");
                        None
                    }
                }
            }
            _ => None,
        };
        match registered {
            Some(fd) => {
                self.watched.insert(host, Watched { ns, _pidfd: fd });
            }
            None => {
                tracing::debug!(
                    ns,
                    host,
                    "process not watched: /proc walks until it is gone"
                );
                self.unwatched.insert(ns);
            }
        }
    }

    /// Applies the exits and reaps the kernel reported since the last call (one
    /// `epoll_wait` when nothing happened). Falls back to [`Tracker::reconcile`] while
    /// some adopted process has no pidfd.
    pub fn observe(&mut self, k: &mut Kernel) {
        if self.epoll.is_none() || !self.unwatched.is_empty() {
            self.reconcile(k);
            return;
        }
        let mut events = [EpollEvent::empty(); 32];
        loop {
            let n = match &self.epoll {
                Some(ep) => match ep.wait(&mut events, EpollTimeout::ZERO) {
                    Ok(n) => n,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        tracing::warn!(%e, "epoll_wait failed: walking /proc");
                        self.reconcile(k);
                        return;
                    }
                },
                None => return,
            };
            for ev in &events[..n] {
                let reaped = ev.events().contains(EpollFlags::EPOLLHUP);
                self.stats.events += 1;
                self.died(k, ev.data() as i32, reaped);
            }
            if n < events.len() {
                return;
            }
        }
    }

    /// The watched process `host` exited (a zombie) or was reaped.
    fn died(&mut self, k: &mut Kernel, host: i32, mut reaped: bool) {
        let Some(ns) = self.watched.get(&host).map(|w| w.ns) else {
            return;
        };
        let alive = k.thread_group(ns).is_some_and(|g| g.is_alive());
        if alive {
            // Not reaped yet, so the number is still this process's.
            let status = if reaped {
                ExitStatus::Exited(0)
            } else {
                match procfs::read(host) {
                    Ok(i) if i.ns_tgid == ns && i.is_zombie() => exit_status(i.exit_code),
                    Ok(_) => ExitStatus::Exited(0),
                    Err(_) => {
                        reaped = true;
                        ExitStatus::Exited(0)
                    }
                }
            };
            let orphans: Vec<Pid> = k
                .thread_group(ns)
                .map(|g| g.children.values().copied().collect())
                .unwrap_or_default();
            tracing::debug!(ns, host, ?status, reaped, "process exited");
            let _ = k.host_exited(ns, status);
            // The host chose the orphans' new parent (init or a subreaper).
            for c in orphans {
                let Some(ch) = self.host_pid(c) else { continue };
                let Ok(info) = procfs::read(ch) else { continue };
                if info.ns_tgid != c {
                    continue;
                }
                if let Some(p) = self.cached(info.host_ppid).map(|p| p.tgid) {
                    if k.thread_group(p).is_some() {
                        let _ = k.host_set_parent(c, p);
                    }
                }
            }
        }
        if reaped {
            self.forget(k, ns, host);
        }
    }

    /// The process `ns` (host `host`) was reaped: out of the sentry and the tables.
    fn forget(&mut self, k: &mut Kernel, ns: Pid, host: i32) {
        tracing::debug!(ns, host, "process reaped");
        let threads: Vec<Pid> = k
            .thread_group(ns)
            .map(|g| g.threads.clone())
            .unwrap_or_default();
        if k.thread_group(ns).is_some_and(|g| g.is_alive()) {
            let _ = k.host_exited(ns, ExitStatus::Exited(0));
        }
        let _ = k.host_reaped(ns);
        self.watched.remove(&host);
        self.roots.remove(&host);
        self.unwatched.remove(&ns);
        self.inflight.remove(&ns);
        self.inflight.retain(|_, c| *c != ns);
        for t in threads.into_iter().chain(std::iter::once(ns)) {
            if let Some(h) = self.to_host.get(&t).copied() {
                self.by_host.remove(&h);
                // A group's or session's number outlives its leader while members
                // remain (Linux keeps the number allocated until then).
                let in_use = t == ns
                    && (!k.pgrp_members(ns).is_empty()
                        || k.session(ns).is_some_and(|s| !s.members.is_empty())
                        || self
                            .ttys
                            .iter()
                            .filter_map(|id| k.tty(*id))
                            .any(|tty| tty.pgrp == Some(ns)));
                if !in_use {
                    if let Some(h) = self.to_host.remove(&t) {
                        if t == ns {
                            self.reaped_groups.insert(ns, h);
                        }
                    }
                }
            }
        }
    }

    /// A setpgid/setsid approved for `target` by `caller` may not have run yet.
    pub fn approved(&mut self, caller: Pid, target: Pid) {
        self.inflight.insert(target, caller);
    }

    /// Whether an approved foreground change may not have run on the host yet.
    pub fn foreground_in_flight(&self, key: Pid) -> bool {
        self.inflight.contains_key(&key)
    }

    /// The sandbox PID whose host PID is `host` (a process group's ID), if seen.
    pub fn ns_pid(&self, host: i32) -> Option<Pid> {
        if let Some(t) = self.by_host.get(&host) {
            return Some(t.tid);
        }
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
        if !self.inflight.is_empty() {
            self.inflight.retain(|_, c| *c != caller);
        }
    }

    /// Walks the whole tree and brings the sentry up to date with the host (see the
    /// module documentation): for the decisions where an unknown process could matter.
    pub fn reconcile(&mut self, k: &mut Kernel) {
        self.stats.full_walks += 1;
        let mut seen: BTreeSet<Pid> = BTreeSet::new();
        seen.insert(1);
        let mut queue = vec![self.init_host];
        let mut infos: Vec<ProcInfo> = Vec::new();
        let roots: Vec<i32> = self.roots.iter().copied().collect();
        for r in roots {
            match procfs::read(r) {
                Ok(info) => {
                    queue.push(r);
                    infos.push(info);
                }
                Err(_) => {
                    self.roots.remove(&r);
                }
            }
        }
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
            let me = self.remember(k, info);
            seen.insert(me.tgid);
            let parent = if self.roots.contains(&info.host_pid) {
                None
            } else {
                self.translate(k, info.host_ppid).map(|p| p.tgid)
            };
            match k.thread_group(me.tgid) {
                None => {
                    let _ = self.adopt(k, info.host_pid, 0);
                }
                Some(g) => {
                    let alive = g.is_alive();
                    let (pgid, sid, model_parent) = (g.pgid, g.sid, g.parent);
                    if !g.did_exec && info.did_exec {
                        // An execve since the sentry adopted it (exec is not notified):
                        // its parent's setpgid on it is EACCES from now on, and stays so
                        // while it is a zombie (its flags outlive its exit).
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
            match self.host_pid(p) {
                Some(h) => self.forget(k, p, h),
                None => {
                    if k.thread_group(p).is_some_and(|g| g.is_alive()) {
                        let _ = k.host_exited(p, ExitStatus::Exited(0));
                    }
                    let _ = k.host_reaped(p);
                    self.unwatched.remove(&p);
                }
            }
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
