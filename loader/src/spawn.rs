//! Spawning the sandbox's first process into new namespaces.
//!
//! In order of preference:
//! 1. `clone3` with `CLONE_CLEAR_SIGHAND | CLONE_PIDFD` and exit signal SIGCHLD: the
//!    child runs none of the loader's signal handlers, and the loader gets a pidfd.
//! 2. `clone` (when clone3 fails with ENOSYS, EINVAL or E2BIG: an old kernel, or a
//!    seccomp profile such as Docker's that refuses clone3): no flag clears handlers,
//!    so signals are blocked around the call and the child resets every caught
//!    handler to SIG_DFL before unblocking (as qemu_fork does).
//! 3. `fork` (when clone with namespace flags is refused too): the same sanitising,
//!    then the child calls `unshare`; a new PID namespace applies only to the
//!    unsharer's children, so it forks once more and the grandchild is the namespace's
//!    PID 1. The loader becomes a child subreaper so that the grandchild is its child
//!    (to wait for it) once the intermediate process exits.
//!
//! The child of the clone (and the intermediate process of the fork fallback) makes
//! only system calls — no allocation, no lock — so spawning is sound from any thread
//! of a multi-threaded process: the sandbox passes a `child` that only `execveat`s the
//! loader's own binary (see `crate::sys::entry`).

use crate::sys::clone::{self, Forked};
use crate::sys::signal;
use nix::errno::Errno;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

/// How the first process was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnMethod {
    Clone3,
    Clone,
    Fork,
}

impl SpawnMethod {
    pub fn name(self) -> &'static str {
        match self {
            SpawnMethod::Clone3 => "clone3",
            SpawnMethod::Clone => "clone",
            SpawnMethod::Fork => "fork",
        }
    }
}

/// Why spawning failed.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot create the sandbox process with {method}: {errno}")]
    Create { method: &'static str, errno: Errno },
    #[error("cannot open a pidfd for the sandbox process: {0}")]
    Pidfd(Errno),
    #[error("the intermediate process of the fork fallback failed: {0}")]
    Intermediate(String),
    /// Every method failed to create the namespaces (the last one's errno).
    #[error("cannot create the sandbox's namespaces: {errno}{}", namespace_hint(*.errno, *.user_namespace))]
    Namespaces { errno: Errno, user_namespace: bool },
}

/// What to check when namespaces are refused, as bubblewrap explains it.
fn namespace_hint(errno: Errno, user_namespace: bool) -> &'static str {
    match errno {
        Errno::EPERM | Errno::EACCES | Errno::ENOSPC if user_namespace => {
            " (this system does not let unprivileged users create user namespaces: \
             check /proc/sys/user/max_user_namespaces, the sysctls \
             kernel.unprivileged_userns_clone and \
             kernel.apparmor_restrict_unprivileged_userns, or run sandbox as root)"
        }
        Errno::EPERM | Errno::EACCES => {
            " (creating namespaces needs CAP_SYS_ADMIN; a container or seccomp profile \
             around sandbox may refuse it)"
        }
        Errno::ENOSPC => " (a namespace limit in /proc/sys/user/ is exhausted)",
        Errno::EINVAL | Errno::ENOSYS => " (the kernel lacks a namespace type sandbox needs)",
        _ => "",
    }
}

/// The spawned process, seen from the loader.
#[derive(Debug)]
pub struct Spawned {
    /// Its PID in the loader's PID namespace.
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub method: SpawnMethod,
}

/// `CLONE_CLEAR_SIGHAND` (Linux 5.5), a 64-bit clone3 flag.
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

fn falls_back(e: Errno) -> bool {
    matches!(
        e,
        Errno::ENOSYS | Errno::EINVAL | Errno::E2BIG | Errno::EPERM
    )
}

/// Creates a process in the namespaces `ns_flags` (CLONE_NEW*) running `child`, whose
/// return value is its exit code. `first` forces a starting method (tests and
/// debugging); later methods are still tried when it fails.
pub fn spawn(
    ns_flags: u64,
    first: SpawnMethod,
    child: &mut dyn FnMut() -> i32,
) -> Result<Spawned, SpawnError> {
    let mut method = first;
    loop {
        let attempt = match method {
            SpawnMethod::Clone3 => spawn_clone3(ns_flags, child),
            SpawnMethod::Clone => spawn_clone(ns_flags, child),
            SpawnMethod::Fork => return spawn_fork(ns_flags, child),
        };
        match attempt {
            Ok(s) => return Ok(s),
            Err(SpawnError::Create { errno, method: m }) if falls_back(errno) => {
                tracing::info!(method = m, %errno, "spawn method unavailable; falling back");
                method = match method {
                    SpawnMethod::Clone3 => SpawnMethod::Clone,
                    _ => SpawnMethod::Fork,
                };
            }
            Err(e) => return Err(e),
        }
    }
}

fn spawn_clone3(ns_flags: u64, child: &mut dyn FnMut() -> i32) -> Result<Spawned, SpawnError> {
    let flags = ns_flags | CLONE_CLEAR_SIGHAND;
    match clone::clone3(flags, libc::SIGCHLD) {
        Ok(Forked::Child) => clone::exit_now(child()),
        Ok(Forked::Parent { pid, pidfd }) => finish(pid, pidfd, SpawnMethod::Clone3),
        Err(errno) => Err(SpawnError::Create {
            method: "clone3",
            errno,
        }),
    }
}

fn spawn_clone(ns_flags: u64, child: &mut dyn FnMut() -> i32) -> Result<Spawned, SpawnError> {
    let old = signal::block_all().map_err(|errno| SpawnError::Create {
        method: "clone",
        errno,
    })?;
    match clone::clone(ns_flags, libc::SIGCHLD) {
        Ok(Forked::Child) => {
            signal::clear_caught_handlers();
            let _ = signal::set_mask(&old);
            clone::exit_now(child())
        }
        Ok(Forked::Parent { pid, pidfd }) => {
            let _ = signal::set_mask(&old);
            finish(pid, pidfd, SpawnMethod::Clone)
        }
        Err(errno) => {
            let _ = signal::set_mask(&old);
            Err(SpawnError::Create {
                method: "clone",
                errno,
            })
        }
    }
}

fn finish(pid: i32, pidfd: Option<OwnedFd>, method: SpawnMethod) -> Result<Spawned, SpawnError> {
    let pidfd = match pidfd {
        Some(fd) => fd,
        None => clone::pidfd_open(pid).map_err(SpawnError::Pidfd)?,
    };
    Ok(Spawned { pid, pidfd, method })
}

fn spawn_fork(ns_flags: u64, child: &mut dyn FnMut() -> i32) -> Result<Spawned, SpawnError> {
    let create = |errno| SpawnError::Create {
        method: "fork",
        errno,
    };
    if ns_flags & libc::CLONE_PARENT as u64 != 0 {
        // The intermediate process would be init's parent, not ours.
        return Err(create(nix::errno::Errno::EINVAL));
    }
    let needs_grandchild = ns_flags & libc::CLONE_NEWPID as u64 != 0;
    if needs_grandchild {
        nix::sys::prctl::set_child_subreaper(true).map_err(create)?;
    }
    let (mut rd, mut wr) = std::io::pipe().map_err(|e| create(io_errno(&e)))?;
    let old = signal::block_all().map_err(create)?;
    match clone::fork() {
        Ok(Forked::Child) => {
            drop(rd);
            signal::clear_caught_handlers();
            let flags = nix::sched::CloneFlags::from_bits_truncate(ns_flags as i32);
            if let Err(e) = nix::sched::unshare(flags) {
                write_record(&mut wr, b'U', e as i64);
                clone::exit_now(1);
            }
            if !needs_grandchild {
                let _ = signal::set_mask(&old);
                let _ = wr.write_all(b"P 0");
                drop(wr);
                clone::exit_now(child());
            }
            match clone::fork() {
                Ok(Forked::Child) => {
                    drop(wr);
                    let _ = signal::set_mask(&old);
                    clone::exit_now(child())
                }
                Ok(Forked::Parent { pid, .. }) => {
                    write_record(&mut wr, b'P', i64::from(pid));
                    clone::exit_now(0)
                }
                Err(e) => {
                    write_record(&mut wr, b'E', e as i64);
                    clone::exit_now(1)
                }
            }
        }
        Ok(Forked::Parent { pid: mid, .. }) => {
            let _ = signal::set_mask(&old);
            drop(wr);
            let mut msg = String::new();
            let read = rd.read_to_string(&mut msg);
            if needs_grandchild {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(mid), None);
            }
            read.map_err(|e| SpawnError::Intermediate(e.to_string()))?;
            let pid = match msg.split_once(' ') {
                Some(("U", errno)) => {
                    let errno = errno.parse().map(Errno::from_raw).unwrap_or(Errno::EINVAL);
                    return Err(SpawnError::Namespaces {
                        errno,
                        user_namespace: ns_flags & libc::CLONE_NEWUSER as u64 != 0,
                    });
                }
                Some(("P", "0")) => mid,
                Some(("P", p)) => p
                    .parse()
                    .map_err(|_| SpawnError::Intermediate(format!("bad message {msg:?}")))?,
                _ => return Err(SpawnError::Intermediate(msg)),
            };
            finish(pid, None, SpawnMethod::Fork)
        }
        Err(errno) => {
            let _ = signal::set_mask(&old);
            Err(create(errno))
        }
    }
}

/// Writes `<tag> <n>` without allocating (the child of a fork of a possibly
/// multi-threaded process may not take the allocator's lock).
fn write_record(w: &mut impl Write, tag: u8, n: i64) {
    let mut buf = [0u8; 24];
    buf[0] = tag;
    buf[1] = b' ';
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut v = n.unsigned_abs();
    loop {
        digits[len] = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut at = 2;
    if n < 0 {
        buf[at] = b'-';
        at += 1;
    }
    for d in digits[..len].iter().rev() {
        buf[at] = *d;
        at += 1;
    }
    let _ = w.write_all(&buf[..at]);
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
