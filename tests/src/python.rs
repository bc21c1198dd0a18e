//! Raw system calls from test programs: python3 with ctypes, run directly or inside a
//! sandbox (the host root, python included, is visible there).

use std::process::Command;
use std::sync::OnceLock;

/// The real python3 interpreter (not a pyenv shim script, which would add a process
/// and a shell between the test and the program it means to run).
pub fn interpreter() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "python3".to_string())
    })
}

/// A prelude for test scripts: `sc(nr, *args)` makes a raw system call with 64-bit
/// integer (or ctypes) arguments and returns its result, or -errno; results put in the
/// dict `res` are printed as `key=value` lines by `report()`.
pub const SYSCALL_PRELUDE: &str = r#"
import os, sys, ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.mmap.restype = ctypes.c_void_p
def sc(nr, *args):
    conv = [ctypes.c_ulong(a & 0xffffffffffffffff) if isinstance(a, int) else a for a in args]
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *conv)
    return r if r >= 0 else -ctypes.get_errno()
res = {}
def report():
    for k, v in res.items():
        print(f"{k}={int(v)}")
    sys.stdout.flush()
"#;
