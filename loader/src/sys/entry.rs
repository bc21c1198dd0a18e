//! The entry point of the processes the loader starts (the sandbox's init, exec
//! helpers): the child of clone3/clone only clears close-on-exec on its control socket
//! and `execveat`s the loader's own binary (`/proc/self/exe`, opened once before any
//! clone) with `argv[0]` = [`ARGV0`], `argv[1]` = the role, `argv[2]` = the control
//! socket's number. A constructor in `.init_array` — run by the C library before
//! `main`, so no embedder or test binary has to change its `main` — recognises that
//! `argv[0]` and runs [`crate::entry::main`] instead, then exits. The child of the
//! clone thus runs nothing but raw system calls (no allocation, no lock), which is sound
//! whatever the other threads of the loader's process do.
//!
//! glibc passes `argc`/`argv` to `.init_array` functions of the executable; with
//! another C library the constructor reads `/proc/self/cmdline` instead.

use nix::errno::Errno;
use std::ffi::{c_char, c_int, CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

/// `argv[0]` of a process started through the entry point (never a program's name:
/// it has a colon and a NUL-free marker no shell would produce by accident).
pub(crate) const ARGV0: &CStr = c"sandbox-loader:entry";

/// Runs before `main` in every binary that links the loader (see the module docs).
#[used]
#[link_section = ".init_array"]
static ENTRY: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = entry;

extern "C" fn entry(argc: c_int, argv: *const *const c_char, _envp: *const *const c_char) {
    let Some((role, fd)) = arguments(argc, argv) else {
        return;
    };
    let code = crate::entry::main(&role, &fd);
    crate::sys::clone::exit_now(code)
}

/// The role and descriptor arguments, if this process was started as an entry.
#[cfg(target_env = "gnu")]
fn arguments(argc: c_int, argv: *const *const c_char) -> Option<(Vec<u8>, Vec<u8>)> {
    if argc != 3 || argv.is_null() {
        return None;
    }
    // SAFETY: glibc calls `.init_array` functions of the executable with main's argc and
    // argv: `argc` valid NUL-terminated strings followed by a null pointer.
    let args: Vec<&CStr> = (0..3)
        .map(|i| unsafe { *argv.add(i) })
        .take_while(|p| !p.is_null())
        // SAFETY: each non-null entry is a NUL-terminated string (see above).
        .map(|p| unsafe { CStr::from_ptr(p) })
        .collect();
    match args.as_slice() {
        [a0, role, fd] if *a0 == ARGV0 => Some((role.to_bytes().to_vec(), fd.to_bytes().to_vec())),
        _ => None,
    }
}

#[cfg(not(target_env = "gnu"))]
fn arguments(_argc: c_int, _argv: *const *const c_char) -> Option<(Vec<u8>, Vec<u8>)> {
    let cmdline = std::fs::read("/proc/self/cmdline").ok()?;
    let mut parts = cmdline.split(|&b| b == 0);
    if parts.next()? != ARGV0.to_bytes() {
        return None;
    }
    Some((parts.next()?.to_vec(), parts.next()?.to_vec()))
}

/// Keeps [`ENTRY`] in the final binary: a `#[used]` static of a library is only
/// linked if its object file is; referring to it from the start-up path makes sure.
pub(crate) fn ensure_linked() {
    std::hint::black_box(&ENTRY);
}

/// `/proc/self/exe`, opened once (`O_PATH`, close-on-exec).
fn exe() -> Result<RawFd, Errno> {
    static EXE: OnceLock<Result<OwnedFd, Errno>> = OnceLock::new();
    match EXE.get_or_init(|| {
        nix::fcntl::open(
            "/proc/self/exe",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
    }) {
        Ok(fd) => Ok(fd.as_raw_fd()),
        Err(e) => Err(*e),
    }
}

/// How the child of the clone becomes its role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryStart {
    /// `execveat` of the entry point: the only sound way when the loader's process has
    /// other threads (one of them may hold the allocator's lock at the clone).
    Exec,
    /// The role runs in the child of the clone itself: the loader's process had one
    /// thread when the start was prepared, so the child's copy of its memory is
    /// consistent (nothing was half-done by another thread). Not in a new user
    /// namespace (see [`EntryExec::new`]). Saves the exec of the
    /// loader's binary — dynamic loading, relocation, the runtime's start — on the
    /// start-up path of `sandbox run`. The role closes every descriptor it does not
    /// keep (init never relies on close-on-exec) and logs nothing.
    InPlace,
}

impl EntryStart {
    /// [`EntryStart::InPlace`] when this process has exactly one thread, read from
    /// `/proc/self/task` (anything unreadable or unexpected means [`EntryStart::Exec`]).
    fn for_this_process() -> EntryStart {
        match std::fs::read_dir("/proc/self/task").map(|dir| dir.take(2).count()) {
            Ok(1) => EntryStart::InPlace,
            _ => EntryStart::Exec,
        }
    }
}

/// An `execveat` of the entry point, prepared before the clone so that the child
/// only makes system calls (or, in a single-threaded loader, the role run in place:
/// [`EntryStart::InPlace`]).
pub(crate) struct EntryExec {
    exe: RawFd,
    control: RawFd,
    /// Wait for the loader's `G` (one-byte packet) before the exec: a process created
    /// in a new user namespace must exec only once its uid maps are written, or the
    /// kernel computes its capabilities after exec for an unmapped uid (none).
    wait_for_go: bool,
    /// How the child becomes the role.
    start: EntryStart,
    _strings: Vec<CString>,
    argv: [*const c_char; 4],
    envp: Vec<*const c_char>,
}

impl EntryExec {
    /// `role` names what the process does ([`crate::entry::main`]); `control` is the
    /// child's end of its control socket (close-on-exec in the loader).
    pub(crate) fn new(role: &str, control: RawFd, wait_for_go: bool) -> Result<EntryExec, Errno> {
        let exe = exe()?;
        let role = CString::new(role).map_err(|_| Errno::EINVAL)?;
        let fd = CString::new(control.to_string()).map_err(|_| Errno::EINVAL)?;
        // The entry needs no environment of the loader's but the dynamic loader's.
        let env: Vec<CString> = std::env::var_os("LD_LIBRARY_PATH")
            .and_then(|v| {
                use std::os::unix::ffi::OsStrExt;
                let mut s = b"LD_LIBRARY_PATH=".to_vec();
                s.extend_from_slice(v.as_bytes());
                CString::new(s).ok()
            })
            .into_iter()
            .collect();
        let mut strings = vec![ARGV0.to_owned(), role, fd];
        let argv = [
            strings[0].as_ptr(),
            strings[1].as_ptr(),
            strings[2].as_ptr(),
            std::ptr::null(),
        ];
        let mut envp: Vec<*const c_char> = env.iter().map(|s| s.as_ptr()).collect();
        envp.push(std::ptr::null());
        strings.extend(env);
        Ok(EntryExec {
            exe,
            control,
            wait_for_go,
            // In a new user namespace the exec is what makes the namespace the owner
            // of the process's memory (`mm->user_ns`): the caller's exec helpers,
            // capable there and not in the initial namespace, could not otherwise
            // access the non-dumpable init (setns through its pidfd is refused).
            start: if wait_for_go {
                EntryStart::Exec
            } else {
                EntryStart::for_this_process()
            },
            _strings: strings,
            argv,
            envp,
        })
    }

    /// How the child will start ([`EntryStart`]).
    pub(crate) fn start(&self) -> EntryStart {
        self.start
    }

    /// In the child of a clone: becomes the role — in place ([`EntryStart::InPlace`]),
    /// or by keeping the control socket open across exec and execing the entry point,
    /// making only system calls (async-signal-safe). Returns the role's exit code, or
    /// 127 when the exec failed.
    pub(crate) fn run(&self) -> i32 {
        if self.wait_for_go {
            let mut go = 0u8;
            // SAFETY: read into one valid byte; the control socket is open.
            let n = unsafe { libc::read(self.control, (&raw mut go).cast(), 1) };
            if n != 1 || go != crate::control::GO_BYTE {
                return 125;
            }
        }
        if self.start == EntryStart::InPlace {
            if let (Some(role), Some(fd)) = (self._strings.get(1), self._strings.get(2)) {
                // The command line anyone may read is the entry's, as after the exec
                // (if it cannot be replaced, the exec below is made after all).
                let mut title = ARGV0.to_bytes_with_nul().to_vec();
                title.extend_from_slice(role.to_bytes_with_nul());
                title.extend_from_slice(fd.to_bytes_with_nul());
                if crate::sys::process::retitle(&title).is_ok() {
                    return crate::entry::main(role.to_bytes(), fd.to_bytes());
                }
            }
        }
        // SAFETY: fcntl on our own copy of the descriptor table (the child's).
        unsafe { libc::fcntl(self.control, libc::F_SETFD, 0) };
        // SAFETY: argv and envp are null-terminated arrays of pointers to NUL-terminated
        // strings owned by `self`, alive for the call; "" with AT_EMPTY_PATH executes
        // the file `exe` refers to.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                self.exe,
                c"".as_ptr(),
                self.argv.as_ptr(),
                self.envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        127
    }
}
