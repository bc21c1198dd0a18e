//! TIOCSETD and TIOCVHANGUP on ptys a sandboxed program made itself behave as on
//! Linux, and never reach the user's terminal (see `loader/src/pty_ioctl.rs`).
//!
//! The probe is `attacks/pty_ioctl.c`, compiled here with `cc`. Linux's answers are
//! not written down: the same probe runs on the host (as an unprivileged process, or
//! as root with every capability) and its findings are compared with those of the
//! sandbox (no capabilities, or `--cap-add SYS_ADMIN`). Deviations, each asserted
//! here and documented in `loader/src/pty_ioctl.rs`: a line discipline other than
//! N_TTY that the kernel has registered (N_NULL on most kernels) is refused with
//! EPERM where Linux lets anyone take it, and TIOCSETD on a character device that is
//! not a sandbox pty (`/dev/null`) is EPERM, not ENOTTY.
//!
//! The attack: threads `dup2` the borrowed terminal (a throwaway pty whose session is
//! a test shell's) and a pty of the program's own onto one descriptor number while
//! another thread keeps asking TIOCVHANGUP (with CAP_SYS_ADMIN kept, so that a hangup
//! reaching the wrong file would succeed) and TIOCSETD(N_NULL) on it: the program's
//! own pty is hung up, the borrowed terminal keeps its line discipline, its session
//! and its shell.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use sandbox_tests::term::{output_with_timeout, Launcher, Shell, DEFAULT_TIMEOUT};

fn sandbox_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sandbox")
}

/// The probe, compiled once into the target's tmp directory (readable by uid 65534).
fn probe() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/attacks/pty_ioctl.c");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pty_ioctl");
        let o = Command::new("cc")
            .args(["-O2", "-Wall", "-pthread", "-o"])
            .arg(&out)
            .arg(&src)
            .output()
            .expect("cc is needed to build the probe (apt-get install gcc)");
        assert!(
            o.status.success(),
            "building the probe failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out.to_string_lossy().into_owned()
    })
}

/// The probe's directory, bound read-only into the sandbox (the checkout may be under
/// the host's `/tmp`, which the sandbox's own `/tmp` covers).
fn probe_dir() -> String {
    Path::new(probe())
        .parent()
        .unwrap_or(Path::new("/"))
        .to_string_lossy()
        .into_owned()
}

/// `setpriv` arguments that make an unprivileged process: uid 65534, no capability
/// in any set.
const UNPRIVILEGED: &[&str] = &[
    "--reuid",
    "65534",
    "--regid",
    "65534",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
];

/// "NAME: RESULT" lines of the probe.
fn findings(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn run(cmd: &mut Command) -> BTreeMap<String, String> {
    let o = output_with_timeout(cmd, Duration::from_secs(60)).unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{cmd:?}: {:?}\n{out}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    findings(&out)
}

/// The probe on the host, unprivileged or as root with every capability.
fn on_linux(mode: &str, unprivileged: bool) -> BTreeMap<String, String> {
    if unprivileged {
        run(Command::new("setpriv")
            .args(UNPRIVILEGED)
            .args([probe(), mode]))
    } else {
        run(Command::new(probe()).arg(mode))
    }
}

/// The probe in a sandbox, started by root or (rootless) by uid 65534.
fn in_sandbox(mode: &str, extra: &[&str], rootless: bool) -> BTreeMap<String, String> {
    let dir = probe_dir();
    let mut args = vec!["run", "--ro-bind", &dir];
    args.extend(extra);
    args.extend(["--", probe(), mode]);
    if rootless {
        run(Command::new("setpriv")
            .args(UNPRIVILEGED)
            .arg(sandbox_bin())
            .args(&args))
    } else {
        run(Command::new(sandbox_bin()).args(&args))
    }
}

/// What the sandbox answers differently from Linux, on purpose.
const DEVIATIONS: &[&str] = &["setd N_NULL slave", "setd on /dev/null"];

/// Every finding but the deviations is Linux's; the deviations are as documented.
fn assert_as_linux(linux: &BTreeMap<String, String>, sandbox: &BTreeMap<String, String>) {
    let strip = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.iter()
            .filter(|(k, _)| !DEVIATIONS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    assert_eq!(
        strip(sandbox),
        strip(linux),
        "sandbox (left) and Linux (right) differ"
    );
    let n_null_registered = std::fs::read_to_string("/proc/tty/ldiscs")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("27"));
    if n_null_registered {
        assert_eq!(sandbox["setd N_NULL slave"], "EPERM", "{sandbox:?}");
    } else {
        assert_eq!(sandbox["setd N_NULL slave"], linux["setd N_NULL slave"]);
    }
    assert_eq!(sandbox["setd on /dev/null"], "EPERM", "{sandbox:?}");
    assert_eq!(linux["setd on /dev/null"], "ENOTTY", "{linux:?}");
}

/// A program without capabilities, on a pty it made: N_TTY can be set on either end
/// and read back, an unknown or unavailable discipline, a bad pointer, a pipe and a
/// closed descriptor get Linux's errors, and TIOCVHANGUP is EPERM — as for an
/// unprivileged process on the host. As root and rootless.
#[test]
fn own_pty_ldisc_and_hangup_as_linux_without_capabilities() {
    if !sandbox_tests::require_root() {
        return;
    }
    let linux = on_linux("own-pty", true);
    assert_eq!(linux["setd N_TTY slave"], "ok", "{linux:?}");
    assert_eq!(linux["vhangup slave"], "EPERM", "{linux:?}");
    for rootless in [false, true] {
        let sandbox = in_sandbox("own-pty", &[], rootless);
        assert_as_linux(&linux, &sandbox);
    }
}

/// With CAP_SYS_ADMIN kept (as root), TIOCVHANGUP on its own pty hangs it up: a
/// write to the slave then fails with EIO and a read sees end of file — as for root
/// on the host.
#[test]
fn own_pty_hangup_as_linux_with_cap_sys_admin() {
    if !sandbox_tests::require_root() {
        return;
    }
    let linux = on_linux("own-pty", false);
    assert_eq!(linux["vhangup slave"], "ok", "{linux:?}");
    let sandbox = in_sandbox("own-pty", &["--cap-add", "SYS_ADMIN"], false);
    assert_as_linux(&linux, &sandbox);
    assert_eq!(sandbox["slave write after hangup"], "EIO", "{sandbox:?}");
}

fn tcgetsid(fd: BorrowedFd<'_>) -> i32 {
    let mut sid: libc::pid_t = 0;
    // SAFETY (test): TIOCGSID writes one pid_t; on a master it reports the slave's.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGSID, &mut sid) };
    assert_eq!(r, 0, "TIOCGSID: {}", std::io::Error::last_os_error());
    sid
}

fn tiocgetd(fd: BorrowedFd<'_>) -> i32 {
    let mut d: libc::c_int = -1;
    // SAFETY (test): TIOCGETD writes one int.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGETD, &mut d) };
    assert_eq!(r, 0, "TIOCGETD: {}", std::io::Error::last_os_error());
    d
}

/// Whether a descriptor of the terminal was hung up (poll reports POLLHUP or POLLERR
/// at once, as Linux's hung-up file operations do).
fn hung_up(fd: BorrowedFd<'_>) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY (test): one valid pollfd, no wait.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR) != 0
}

/// Threads swap the borrowed terminal and the program's own pty at the descriptor
/// another thread passes to TIOCVHANGUP and TIOCSETD(N_NULL), for two seconds, with
/// CAP_SYS_ADMIN kept (so the host would let a hangup of the borrowed terminal
/// through). The supervisor acts only on the file it took from the caller and
/// checked: the program's pty is hung up, the borrowed terminal never is, its line
/// discipline stays N_TTY, and the shell keeps it (its session, ^C to its job).
#[test]
fn racing_threads_never_hang_up_or_change_the_borrowed_terminal() {
    if !sandbox_tests::require_root() {
        return;
    }
    let s = Launcher::Direct.shell(Shell::Bash);
    let mut n: libc::c_uint = 0;
    // SAFETY (test): TIOCGPTN writes one unsigned int.
    let r = unsafe { libc::ioctl(s.master_fd().as_raw_fd(), libc::TIOCGPTN, &mut n) };
    assert_eq!(r, 0);
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(format!("/dev/pts/{n}"))
        .unwrap();
    use std::os::fd::AsFd;
    assert_eq!(tiocgetd(slave.as_fd()), 0);
    let cmd = format!(
        "{} run --tty --cap-add SYS_ADMIN --ro-bind {} -- {} race",
        sandbox_bin(),
        probe_dir(),
        probe()
    );
    let out = s.run_timeout(&cmd, Duration::from_secs(60)).unwrap();
    assert_eq!(s.last_status().unwrap(), 0, "{out}");
    let f = findings(&out);
    let count = |k: &str| -> u64 {
        f.get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k} missing: {out}"))
    };
    // Both files were at the number when the supervisor took it: its own pty was hung
    // up, the borrowed terminal refused.
    assert!(count("vhangup ok") >= 1, "own pty never hung up: {out}");
    assert!(count("vhangup refused") >= 1, "race not exercised: {out}");
    assert_eq!(count("setd N_NULL ok"), 0, "{out}");
    assert_eq!(
        f.get("borrowed getd").map(String::as_str),
        Some("0"),
        "{out}"
    );
    // A thread with a descriptor table of its own holds its own pty at the number
    // where the process's table has the borrowed terminal: each call is judged on the
    // file of the caller's own table (performed on the pty, refused on the terminal).
    let cmd = cmd.replace(" race", " private-table");
    let out = s.run_timeout(&cmd, Duration::from_secs(60)).unwrap();
    assert_eq!(s.last_status().unwrap(), 0, "{out}");
    let f = findings(&out);
    let get = |k: &str| f.get(k).map(String::as_str);
    assert_eq!(get("private table vhangup"), Some("ok"), "{out}");
    assert_eq!(get("own pty write after"), Some("EIO"), "{out}");
    assert_eq!(get("shared table vhangup"), Some("EPERM"), "{out}");
    assert_eq!(
        tiocgetd(slave.as_fd()),
        0,
        "the borrowed terminal's ldisc changed"
    );
    assert!(!hung_up(slave.as_fd()), "the borrowed terminal was hung up");
    assert_eq!(
        tcgetsid(s.master_fd()),
        s.pid(),
        "the terminal's session is no longer the shell's"
    );
    let line = s.start("sleep 100").unwrap();
    s.wait_foreground(&["sleep", "100"]).unwrap();
    s.send("\x03").unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(s.last_status().unwrap(), 130, "^C reached the job");
}

/// `--tty=pty`: a program with CAP_SYS_ADMIN hangs up its own controlling terminal
/// (the sandbox's pty) as on Linux: its session leader (init) gets SIGHUP and passes
/// it to the program's group, which dies of it; the loader, whose master stays open,
/// reports that end (128 + SIGHUP) and gives the user's shell its terminal back.
#[test]
fn owned_pty_hangup_ends_the_program_and_the_loader_reports_it() {
    if !sandbox_tests::require_root() {
        return;
    }
    let s = Launcher::Direct.shell(Shell::Bash);
    let cmd = format!(
        "{} run --tty=pty --cap-add SYS_ADMIN --ro-bind {} -- {} hangup-stdin",
        sandbox_bin(),
        probe_dir(),
        probe()
    );
    let out = s.run_timeout(&cmd, Duration::from_secs(60)).unwrap();
    assert_eq!(s.last_status().unwrap(), 128 + libc::SIGHUP, "{out}");
    assert_eq!(tcgetsid(s.master_fd()), s.pid(), "{out}");
    let line = s.start("sleep 100").unwrap();
    s.wait_foreground(&["sleep", "100"]).unwrap();
    s.send("\x03").unwrap();
    s.wait_prompt_after(line, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(s.last_status().unwrap(), 130, "^C reached the job");
}

/// TIOCSETD on the caller's controlling terminal (a pty of its session's) from a
/// background group: SIGTTOU stops the group, or with SIGTTOU ignored the call goes
/// on — Linux's `tty_check_change`, which the supervisor makes for the caller before
/// it performs the call (its own would pass: the pty is not the loader's terminal).
#[test]
fn background_tiocsetd_meets_sigttou_as_linux() {
    if !sandbox_tests::require_root() {
        return;
    }
    let linux = on_linux("bg-setd", true);
    assert_eq!(
        linux.get("bg setd").map(String::as_str),
        Some("stopped by TTOU"),
        "{linux:?}"
    );
    for rootless in [false, true] {
        let sandbox = in_sandbox("bg-setd", &[], rootless);
        assert_eq!(sandbox, linux, "rootless: {rootless}");
    }
}
