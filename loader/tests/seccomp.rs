//! The seccomp layer against the real kernel: programs installed in child processes
//! (between fork and exec, with pre-compiled filters), a listener served by the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sandbox_loader::seccomp::{
    self, allow_filter, deny_filter, install, install_all_threads, install_with_listener,
    install_with_listener_killable, ioctls, notify_filter, read_bytes, read_i32, recv_listener,
    send_listener, write_bytes, write_i32, Action, Filter, Listener, MemoryError, Notification,
    NotifyOptions, Response, SeccompError, When, AUDIT_ARCH_I386, AUDIT_ARCH_NATIVE, DENY_IOCTLS,
    DENY_SYSCALLS, ERESTARTSYS, NOTIFY_IOCTLS, SUPERVISED_IOCTLS, X32_SYSCALL_BIT,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

const TIMEOUT: Duration = Duration::from_secs(30);

use sandbox_tests::python::{interpreter as python, SYSCALL_PRELUDE as PRELUDE};

fn python_cmd(body: &str) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg("-c").arg(format!("{PRELUDE}\n{body}"));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn os_error(e: SeccompError) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EINVAL))
}

/// Installs `filter` in the child between fork and exec.
fn with_filter(cmd: &mut Command, filter: Filter) {
    // SAFETY: the closure only calls `install`, which is async-signal-safe (bare
    // syscalls on a program compiled before the fork).
    unsafe {
        cmd.pre_exec(move || install(&filter).map_err(os_error));
    }
}

/// Waits for the child with a timeout (killing it on expiry) and collects its output.
fn finish(child: Child) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            panic!("child {pid} did not finish within {TIMEOUT:?}");
        }
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn parse(out: &Output) -> HashMap<String, i64> {
    assert!(
        out.status.success(),
        "child failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(out)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().parse().unwrap()))
        .collect()
}

fn run_python(body: &str, filter: Option<Filter>) -> HashMap<String, i64> {
    let mut cmd = python_cmd(body);
    if let Some(f) = filter {
        with_filter(&mut cmd, f);
    }
    parse(&finish(cmd.spawn().unwrap()))
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

const EPERM: i64 = -(libc::EPERM as i64);
const ENOSYS: i64 = -(libc::ENOSYS as i64);

fn scratch_dir() -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sandbox-seccomp-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------------
// deny_filter

#[test]
fn deny_filter_refuses_terminal_injection_whatever_the_high_bits() {
    let body = format!(
        r#"
import tty
m, s = os.openpty()
tty.setraw(s)
c = ctypes.c_char(b"x")
res["tiocsti"] = sc({ioctl}, s, {sti}, ctypes.byref(c))
res["tiocsti_hi"] = sc({ioctl}, s, {sti} | (1 << 32), ctypes.byref(c))
os.set_blocking(s, False)
try:
    res["injected"] = len(os.read(s, 16))
except BlockingIOError:
    res["injected"] = 0
buf = ctypes.create_string_buffer(256)
res["tcgets"] = sc({ioctl}, s, {tcgets}, buf)
res["tiocgwinsz"] = sc({ioctl}, s, {gwinsz}, buf)
res["tioclinux"] = sc({ioctl}, s, {linux} | (7 << 32), buf)
report()
"#,
        ioctl = libc::SYS_ioctl,
        sti = ioctls::TIOCSTI,
        tcgets = ioctls::TCGETS,
        gwinsz = ioctls::TIOCGWINSZ,
        linux = ioctls::TIOCLINUX,
    );
    let filtered = run_python(&body, Some(deny_filter().unwrap()));
    assert_eq!(filtered["tiocsti"], EPERM);
    assert_eq!(filtered["tiocsti_hi"], EPERM, "CVE-2019-10063: high bits");
    assert_eq!(filtered["tioclinux"], EPERM);
    assert_eq!(filtered["injected"], 0);
    assert_eq!(filtered["tcgets"], 0, "harmless ioctls still work");
    assert_eq!(filtered["tiocgwinsz"], 0);

    if is_root() {
        // Without the filter both requests are TIOCSTI to the kernel (it truncates the
        // request to 32 bits): two bytes arrive. So the filter is what stopped them.
        let plain = run_python(&body, None);
        assert_eq!(plain["tiocsti"], 0);
        assert_eq!(plain["tiocsti_hi"], 0);
        assert_eq!(plain["injected"], 2);
    }
}

#[test]
fn deny_filter_refuses_listed_syscalls_and_lets_programs_run() {
    let dir = scratch_dir();
    let body = format!(
        r#"
import threading
res["unshare_uts"] = sc({unshare}, 0x04000000)
res["unshare_files"] = sc({unshare}, 0x400)
res["keyctl"] = sc({keyctl}, 0, -3, 0)
res["mount"] = sc({mount}, 0, 0, 0, 0, 0)
res["clone3"] = sc({clone3}, 0, 0)
res["setns"] = sc({setns}, -1, 0)
res["bpf"] = sc({bpf}, 9999, 0, 0)
res["mknod_chr"] = sc({mknodat}, -100, ctypes.c_char_p(b"{dir}/null"), 0o20600, 0x103)
res["mknod_fifo"] = sc({mknodat}, -100, ctypes.c_char_p(b"{dir}/fifo"), 0o10600, 0)
res["personality_query"] = sc({personality}, 0xffffffff)
res["personality_norandom"] = sc({personality}, 0x0040000)
ran = []
t = threading.Thread(target=lambda: ran.append(1))
t.start(); t.join()
res["thread"] = len(ran)
report()
"#,
        unshare = libc::SYS_unshare,
        keyctl = libc::SYS_keyctl,
        mount = libc::SYS_mount,
        clone3 = libc::SYS_clone3,
        setns = libc::SYS_setns,
        bpf = libc::SYS_bpf,
        mknodat = libc::SYS_mknodat,
        personality = libc::SYS_personality,
        dir = dir.display(),
    );
    let f = run_python(&body, Some(deny_filter().unwrap()));
    assert_eq!(f["unshare_uts"], EPERM);
    assert_eq!(f["unshare_files"], 0, "non-namespace unshare flags pass");
    assert_eq!(f["keyctl"], EPERM);
    assert_eq!(f["mount"], EPERM);
    assert_eq!(f["clone3"], ENOSYS);
    assert_eq!(f["setns"], EPERM);
    assert_eq!(f["bpf"], EPERM);
    assert_eq!(f["mknod_chr"], EPERM);
    assert_eq!(f["mknod_fifo"], 0, "fifos are not device nodes");
    assert!(f["personality_query"] >= 0);
    assert_eq!(f["personality_norandom"], EPERM);
    assert_eq!(
        f["thread"], 1,
        "threads start: glibc falls back from clone3 to clone"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    if is_root() {
        let dir2 = scratch_dir();
        let plain = run_python(
            &body.replace(&dir.display().to_string(), &dir2.display().to_string()),
            None,
        );
        for key in [
            "unshare_uts",
            "mount",
            "clone3",
            "setns",
            "bpf",
            "mknod_chr",
        ] {
            assert!(
                plain[key] != EPERM && plain[key] != ENOSYS,
                "{key} without the filter gave {}: the test would not show the filter",
                plain[key]
            );
        }
        assert!(plain["personality_norandom"] >= 0);
        std::fs::remove_dir_all(&dir2).unwrap();
    }

    let mut sh = Command::new("/bin/sh");
    sh.args(["-c", "ls / >/dev/null && echo ok"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    with_filter(&mut sh, deny_filter().unwrap());
    let out = finish(sh.spawn().unwrap());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "ok\n");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn foreign_architecture_syscalls_kill_the_process() {
    // getpid through the 32-bit entry (int 0x80): AUDIT_ARCH_I386, i386 numbering.
    let body = r#"
import mmap
code = bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3])  # mov eax, 20; int 0x80; ret
m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
m.write(code)
fn = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
res["same"] = fn() == os.getpid()
report()
"#;
    // Without a filter the 32-bit call works (the kernel has IA32 emulation)...
    let mut plain = python_cmd(body);
    let out = finish(plain.spawn().unwrap());
    if out.status.success() {
        assert_eq!(parse(&out)["same"], 1);
    } else {
        // No IA32 emulation: the int 0x80 itself faults; nothing to compare against.
        assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{out:?}");
        return;
    }
    // ...with one, the process is killed as if by SIGSYS.
    let mut cmd = python_cmd(body);
    with_filter(&mut cmd, deny_filter().unwrap());
    let out = finish(cmd.spawn().unwrap());
    assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{out:?}");
    assert_eq!(stdout(&out), "");
}

/// seccompiler's deny program, built here from the public tables: every listed syscall
/// (clone3 aside: its ENOSYS is the guard's) and every denied ioctl request, compared on
/// the low 32 bits.
fn seccompiler_deny_program() -> Filter {
    let cond = |arg: u8, op: SeccompCmpOp, value: u32| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, u64::from(value)).unwrap()
    };
    let eq = |arg: u8, mask: u32, value: u32| {
        if mask == u32::MAX {
            cond(arg, SeccompCmpOp::Eq, value)
        } else {
            cond(arg, SeccompCmpOp::MaskedEq(u64::from(mask)), value & mask)
        }
    };
    let one = |c: SeccompCondition| SeccompRule::new(vec![c]).unwrap();
    let mut rules: std::collections::BTreeMap<i64, Vec<SeccompRule>> = Default::default();
    rules.insert(
        libc::SYS_ioctl,
        DENY_IOCTLS
            .iter()
            .chain(SUPERVISED_IOCTLS)
            .map(|r| one(eq(1, u32::MAX, r.cmd)))
            .collect(),
    );
    for row in DENY_SYSCALLS {
        if row.nr < 0 || row.action != Action::Errno(libc::EPERM as u16) {
            continue;
        }
        let chain = match row.when {
            When::Always => Vec::new(),
            When::ArgIn { arg, mask, values } => {
                values.iter().map(|&v| one(eq(arg, mask, v))).collect()
            }
            When::ArgNotIn { arg, values, .. } => vec![SeccompRule::new(
                values
                    .iter()
                    .map(|&v| cond(arg, SeccompCmpOp::Ne, v))
                    .collect(),
            )
            .unwrap()],
            When::ArgAnyBit { arg, mask } => (0..32)
                .map(|i| 1u32 << i)
                .filter(|b| mask & b != 0)
                .map(|b| one(eq(arg, b, b)))
                .collect(),
        };
        assert!(rules.insert(row.nr, chain).is_none(), "{}", row.name);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        std::env::consts::ARCH.try_into().unwrap(),
    )
    .unwrap();
    Filter::from(BpfProgram::try_from(filter).unwrap())
}

#[test]
fn deny_program_is_seccompilers_plus_a_guard() {
    let deny = deny_filter().unwrap();
    let library = seccompiler_deny_program();
    let programs: Vec<&[seccomp::Instruction]> = deny.programs().collect();
    assert_eq!(programs.len(), 2, "the guard, then seccompiler's program");
    assert_eq!(
        Some(programs[1]),
        library.programs().next(),
        "the second program is seccompiler's output, instruction for instruction"
    );

    // The guard changes nothing but clone3, x32 numbers and foreign architectures.
    let samples: [[u64; 6]; 5] = [
        [0; 6],
        [0x7fff_ffff, 0x5412, 0o020_000, 0, 0, 0],
        [
            0x2000_0011,
            u64::from(ioctls::TIOCSTI) | 1 << 32,
            0,
            0,
            0,
            0,
        ],
        [0x0040_0000, 0x5401, 0, 0o020_644, 0, 0],
        [17, 0x541c | 0xff << 32, 0, 0o060_000, 0, 0],
    ];
    for nr in 0..500i32 {
        for args in samples {
            let ours = deny.action_for(AUDIT_ARCH_NATIVE, nr, args);
            let theirs = library.action_for(AUDIT_ARCH_NATIVE, nr, args);
            if i64::from(nr) == libc::SYS_clone3 {
                assert_eq!(theirs, Some(Action::Allow));
                assert_eq!(ours, Some(Action::Errno(libc::ENOSYS as u16)));
            } else {
                assert_eq!(ours, theirs, "syscall {nr}, {args:x?}");
            }
        }
        assert_eq!(
            deny.action_for(AUDIT_ARCH_I386, nr, [0; 6]),
            Some(Action::KillProcess)
        );
    }

    // x32 numbers of denied syscalls: seccompiler's program alone lets them through
    // (its rules compare the whole number); the guard refuses them.
    if cfg!(target_arch = "x86_64") {
        let tiocsti = [0, u64::from(ioctls::TIOCSTI), 0, 0, 0, 0];
        for nr in [libc::SYS_mount, libc::SYS_keyctl, libc::SYS_ioctl] {
            let x32 = (X32_SYSCALL_BIT as i32) | nr as i32;
            assert_eq!(
                library.action_for(AUDIT_ARCH_NATIVE, x32, tiocsti),
                Some(Action::Allow),
                "without the guard, x32 {nr} would pass"
            );
            assert_eq!(
                deny.action_for(AUDIT_ARCH_NATIVE, x32, tiocsti),
                Some(Action::Errno(libc::ENOSYS as u16))
            );
        }
    }
}

/// A seccompiler program failing `nr` with `errno`.
fn errno_program(nr: libc::c_long, errno: i32) -> Filter {
    let filter = SeccompFilter::new(
        [(nr, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        std::env::consts::ARCH.try_into().unwrap(),
    )
    .unwrap();
    Filter::from(BpfProgram::try_from(filter).unwrap())
}

/// The kernel rule the stacks rely on: of equally severe results, the filter installed
/// last decides; a more severe result wins wherever it is.
#[test]
fn stacked_filters_equally_severe_results_go_to_the_last_installed() {
    let first = errno_program(libc::SYS_getppid, libc::EDOM);
    let second = errno_program(libc::SYS_getppid, libc::ERANGE);
    let body = format!("res['getppid'] = sc({})\nreport()", libc::SYS_getppid);
    let mut cmd = python_cmd(&body);
    // SAFETY: two async-signal-safe installs of filters compiled before the fork.
    unsafe {
        cmd.pre_exec(move || {
            install(&first).map_err(os_error)?;
            install(&second).map_err(os_error)
        });
    }
    let res = parse(&finish(cmd.spawn().unwrap()));
    assert_eq!(res["getppid"], -(libc::ERANGE as i64));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x32_numbers_of_denied_syscalls_fail_under_the_deny_filter() {
    let x32 = u64::from(X32_SYSCALL_BIT);
    let body = format!(
        r#"
res["getpid"] = sc({x32} | {getpid}) == os.getpid()
res["mount"] = sc({x32} | {mount}, 0, 0, 0, 0, 0)
res["keyctl"] = sc({x32} | {keyctl}, 0, -3, 0)
m, s = os.openpty()
c = ctypes.c_char(b"x")
res["tiocsti"] = sc({x32} | {ioctl}, s, {sti}, ctypes.byref(c))
report()
"#,
        getpid = libc::SYS_getpid,
        mount = libc::SYS_mount,
        keyctl = libc::SYS_keyctl,
        ioctl = libc::SYS_ioctl,
        sti = ioctls::TIOCSTI,
    );
    let filtered = run_python(&body, Some(deny_filter().unwrap()));
    for key in ["mount", "keyctl", "tiocsti"] {
        assert_eq!(filtered[key], ENOSYS, "x32 {key}");
    }
    assert_eq!(filtered["getpid"], 0, "no x32 syscall runs at all");
    // On a kernel with x32 support the numbers would run without the filter; this one
    // may lack it (then ENOSYS comes from the kernel too, and the interpreter-level
    // check in deny_program_is_seccompilers_plus_a_guard is what shows the guard).
    let plain = run_python(&body, None);
    if plain["getpid"] == 1 {
        assert_ne!(plain["keyctl"], ENOSYS);
    }
}

/// `/proc/self/status` fields of a shell run under the deny filter, optionally after
/// giving up root (and with it CAP_SYS_ADMIN) before installing.
fn status_under_deny_filter(drop_root: bool) -> HashMap<String, String> {
    let filter = deny_filter().unwrap();
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "cat /proc/self/status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setresgid/setresuid and install are bare syscalls.
    unsafe {
        cmd.pre_exec(move || {
            if drop_root
                && (libc::setresgid(65534, 65534, 65534) != 0
                    || libc::setresuid(65534, 65534, 65534) != 0)
            {
                return Err(io::Error::last_os_error());
            }
            install(&filter).map_err(os_error)
        });
    }
    let out = finish(cmd.spawn().unwrap());
    assert!(out.status.success(), "{out:?}");
    stdout(&out)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn no_new_privs_is_set_only_without_cap_sys_admin() {
    if !is_root() {
        // Unprivileged: seccomp needs no_new_privs, so install sets it.
        let status = status_under_deny_filter(false);
        assert_eq!(status["NoNewPrivs"], "1");
        assert_eq!(status["Seccomp"], "2");
        return;
    }
    let root = status_under_deny_filter(false);
    assert_eq!(root["Seccomp"], "2", "filter mode");
    assert_eq!(
        root["Seccomp_filters"], "2",
        "the guard and seccompiler's program"
    );
    assert_eq!(
        root["NoNewPrivs"], "0",
        "root keeps setuid programs working"
    );
    let nobody = status_under_deny_filter(true);
    assert_eq!(nobody["Uid"].split_whitespace().next(), Some("65534"));
    assert_eq!(nobody["Seccomp"], "2");
    assert_eq!(
        nobody["NoNewPrivs"], "1",
        "without CAP_SYS_ADMIN seccomp needs it"
    );
}

// ---------------------------------------------------------------------------------
// allow_filter

/// Results of syscalls made by a child under the allow filter, before exec: an array of
/// return values (or -errno) written to a pipe.
fn probe_allow_filter(filter: Filter) -> Vec<i64> {
    let (r, w) = nix::unistd::pipe().unwrap();
    let wfd = w.as_raw_fd();
    let mut cmd = Command::new("/bin/true");
    // SAFETY: the closure makes bare syscalls only (no allocation, no locks) and ends
    // the child with _exit; `wfd` stays open in the child until then.
    unsafe {
        cmd.pre_exec(move || {
            install(&filter).map_err(os_error)?;
            let ret = |rc: libc::c_long| -> i64 {
                if rc < 0 {
                    -i64::from(io::Error::last_os_error().raw_os_error().unwrap_or(0))
                } else {
                    rc
                }
            };
            let mut uts: libc::utsname = std::mem::zeroed();
            let mut avail: libc::c_int = 0;
            let results: [i64; 6] = [
                ret(libc::uname(&mut uts) as libc::c_long),
                ret(libc::syscall(libc::SYS_getppid)),
                ret(libc::syscall(libc::SYS_clone3, 0usize, 0usize)),
                ret(libc::syscall(
                    libc::SYS_ioctl,
                    wfd,
                    libc::c_ulong::from(ioctls::FIONREAD),
                    &mut avail as *mut libc::c_int,
                )),
                ret(libc::syscall(
                    libc::SYS_ioctl,
                    wfd,
                    libc::c_ulong::from(ioctls::TIOCSTI),
                    &mut avail as *mut libc::c_int,
                )),
                ret(libc::syscall(
                    libc::SYS_mkdirat,
                    libc::AT_FDCWD,
                    c"/nonexistent/x".as_ptr(),
                    0o700,
                )),
            ];
            libc::write(
                wfd,
                results.as_ptr().cast(),
                std::mem::size_of_val(&results),
            );
            libc::_exit(0);
        });
    }
    let child = cmd.spawn().unwrap();
    drop(cmd);
    drop(w);
    let out = finish(child);
    assert!(out.status.success(), "{out:?}");
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut std::fs::File::from(r), &mut bytes).unwrap();
    bytes
        .chunks_exact(8)
        .map(|c| i64::from_ne_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn allow_filter_refuses_what_is_not_listed() {
    let got = probe_allow_filter(allow_filter(&[]).unwrap());
    assert_eq!(got.len(), 6);
    assert_eq!(got[0], EPERM, "uname is not on the list");
    assert!(got[1] > 0, "getppid is");
    assert_eq!(got[2], ENOSYS, "clone3 gets ENOSYS so glibc falls back");
    assert_eq!(got[3], 0, "FIONREAD is a listed ioctl (on a pipe it works)");
    assert_eq!(got[4], EPERM, "TIOCSTI is not (a pipe would say ENOTTY)");
    assert_eq!(got[5], EPERM, "mkdirat is not (the path would say ENOENT)");

    let got = probe_allow_filter(allow_filter(&[libc::SYS_uname, libc::SYS_mkdirat]).unwrap());
    assert_eq!(got[0], 0, "extras are allowed");
    assert_eq!(got[5], -(libc::ENOENT as i64));
}

const TSYNC_CHILD: &str = "SANDBOX_SECCOMP_TSYNC_CHILD";

/// Runs this test binary again as a child that installs the allow filter on all its
/// threads from one thread and checks another thread is bound by it.
#[test]
fn install_all_threads_binds_every_thread() {
    if std::env::var_os(TSYNC_CHILD).is_some() {
        tsync_child();
    }
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "install_all_threads_binds_every_thread",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(TSYNC_CHILD, "1")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let out = finish(cmd.spawn().unwrap());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

fn tsync_child() -> ! {
    let filter = allow_filter(&[]).unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<i32>();
    let _other = thread::spawn(move || {
        go_rx.recv().unwrap();
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: uname writes into the local struct.
        let rc = unsafe { libc::uname(&mut uts) };
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        done_tx.send(if rc < 0 { errno } else { 0 }).unwrap();
    });
    let code = match install_all_threads(&filter) {
        Ok(()) => {
            go_tx.send(()).unwrap();
            match done_rx.recv() {
                Ok(e) if e == libc::EPERM => 0,
                _ => 1,
            }
        }
        Err(_) => 2,
    };
    // SAFETY: ends the process at once (exit_group is on the allow list).
    unsafe { libc::_exit(code) }
}

// ---------------------------------------------------------------------------------
// notify_filter and the listener

struct Sandboxed {
    child: Child,
    listener: Listener,
}

/// Spawns `cmd` with `filter` installed with a listener; the child sends the listener
/// to the test over a socketpair (in pre_exec, right after installing).
fn spawn_notified(mut cmd: Command, filter: Filter, killable: bool) -> Sandboxed {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let theirs: OwnedFd = theirs.into();
    // SAFETY: install_with_listener* and send_listener are async-signal-safe (bare
    // syscalls, stack buffers, a filter compiled before the fork).
    unsafe {
        cmd.pre_exec(move || {
            let fd = if killable {
                install_with_listener_killable(&filter)
            } else {
                install_with_listener(&filter)
            }
            .map_err(os_error)?;
            send_listener(theirs.as_fd(), fd.as_fd()).map_err(os_error)?;
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(cmd);
    ours.set_read_timeout(Some(TIMEOUT)).unwrap();
    let listener = recv_listener(ours.as_fd()).unwrap();
    Sandboxed { child, listener }
}

/// Serves the listener until the child has exited, handing each notification to `on`,
/// then collects the child's output. (The listener reports POLLHUP only once the last
/// task using the filter has been reaped, so the child's exit is watched directly.)
fn serve(sb: Sandboxed, mut on: impl FnMut(&Listener, Notification)) -> Output {
    let Sandboxed {
        mut child,
        listener,
    } = sb;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if Instant::now() > deadline {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            panic!("child {} still running after {TIMEOUT:?}", child.id());
        }
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(50u16)).unwrap();
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if revents.contains(PollFlags::POLLIN) {
            match listener.recv() {
                Ok(notification) => on(&listener, notification),
                Err(SeccompError::NotificationWithdrawn) => {}
                Err(e) => panic!("recv: {e}"),
            }
        } else if child.try_wait().unwrap().is_some() {
            break;
        }
    }
    finish(child)
}

/// Answers `Continue` to everything.
fn pass(listener: &Listener, n: Notification) {
    listener.respond(n.id, Response::Continue).unwrap();
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = nix::sys::utsname::uname().unwrap();
    let release = release.release().to_string_lossy().into_owned();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let maj: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let min: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (maj, min) >= (major, minor)
}

const SETSID_TWICE: &str = r#"
def attempt(f):
    try:
        f()
        return 0
    except OSError as e:
        return -e.errno
res["first"] = attempt(os.setsid)
res["second"] = attempt(os.setsid)
report()
"#;

#[test]
fn setsid_is_notified_and_answered() {
    let filter = notify_filter(&NotifyOptions::default()).unwrap();
    let sb = spawn_notified(python_cmd(SETSID_TWICE), filter, false);
    let child_pid = sb.child.id();
    assert_eq!(
        sb.listener.set_sync_wakeup().unwrap(),
        kernel_at_least(6, 6),
        "SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP exists from Linux 6.6"
    );
    let mut seen = Vec::new();
    let out = serve(sb, |l, n| {
        seen.push(n);
        assert_eq!(
            n.nr,
            libc::SYS_setsid,
            "only setsid is notified here: {n:?}"
        );
        assert_eq!(n.pid, child_pid, "pid in our namespace");
        assert_eq!(n.arch, AUDIT_ARCH_NATIVE);
        assert!(l.id_valid(n.id));
        if seen.len() == 1 {
            assert!(matches!(
                l.respond(n.id, Response::Error(0)),
                Err(SeccompError::InvalidErrno(0))
            ));
            assert!(matches!(
                l.respond(n.id, Response::Error(4096)),
                Err(SeccompError::InvalidErrno(4096))
            ));
            l.respond(n.id, Response::Error(libc::EPERM)).unwrap();
        } else {
            l.respond(n.id, Response::Continue).unwrap();
        }
        assert!(
            !l.id_valid(n.id),
            "answered notifications are no longer pending"
        );
    });
    let res = parse(&out);
    assert_eq!(seen.len(), 2);
    assert_ne!(seen[0].id, seen[1].id);
    assert_eq!(res["first"], EPERM, "the answer reaches the caller");
    assert_eq!(
        res["second"], 0,
        "Continue runs the real setsid (child is no group leader)"
    );
}

#[test]
fn job_control_ioctls_are_notified_on_the_low_32_bits_and_memory_is_reachable() {
    let body = format!(
        r#"
buf = ctypes.c_int(0)
res["gpgrp"] = sc({ioctl}, 0, {gpgrp} | (1 << 32), ctypes.byref(buf))
res["gpgrp_value"] = buf.value
val = ctypes.c_int(4242)
res["spgrp"] = sc({ioctl}, 0, {spgrp}, ctypes.byref(val))
res["tcgets"] = sc({ioctl}, 0, {tcgets}, ctypes.byref(buf))
report()
"#,
        ioctl = libc::SYS_ioctl,
        gpgrp = ioctls::TIOCGPGRP,
        spgrp = ioctls::TIOCSPGRP,
        tcgets = ioctls::TCGETS,
    );
    let filter = notify_filter(&NotifyOptions::default()).unwrap();
    let sb = spawn_notified(python_cmd(&body), filter, false);
    let mut cmds = Vec::new();
    let mut spgrp_arg = None;
    let out = serve(sb, |l, n| {
        assert_eq!(n.nr, libc::SYS_ioctl, "{n:?}");
        cmds.push(n.ioctl_cmd());
        match n.ioctl_cmd() {
            ioctls::TIOCGPGRP => {
                // Emulate tcgetpgrp: write the group into the caller's int.
                write_i32(n.pid, n.args[2], 777).unwrap();
                assert!(l.id_valid(n.id));
                l.respond(n.id, Response::Return(0)).unwrap();
            }
            ioctls::TIOCSPGRP => {
                spgrp_arg = Some(read_i32(n.pid, n.args[2]).unwrap());
                l.respond(n.id, Response::Error(libc::ENOTTY)).unwrap();
            }
            other => panic!("unexpected ioctl {other:#x}"),
        }
    });
    let res = parse(&out);
    assert_eq!(
        cmds,
        vec![ioctls::TIOCGPGRP, ioctls::TIOCSPGRP],
        "TCGETS stays native"
    );
    assert_eq!(res["gpgrp"], 0);
    assert_eq!(res["gpgrp_value"], 777);
    assert_eq!(spgrp_arg, Some(4242));
    assert_eq!(res["spgrp"], -(libc::ENOTTY as i64));
    // stdin is /dev/null: the native TCGETS fails with ENOTTY, proving it ran.
    assert_eq!(res["tcgets"], -(libc::ENOTTY as i64));
}

/// Child reading one byte of its stdin (a pipe) with read and one with preadv2 at
/// offset -1, then calling setsid as an end marker.
fn tty_io_run(tty_io: bool) -> (Vec<Notification>, HashMap<String, i64>) {
    let body = format!(
        r#"
res["read"] = os.read(0, 1)[0]
b = ctypes.create_string_buffer(1)
iov = (ctypes.c_void_p * 2)(ctypes.cast(b, ctypes.c_void_p), 1)
res["preadv2"] = sc({preadv2}, 0, iov, 1, -1, 0, 0)
res["preadv2_byte"] = b.raw[0]
os.setsid()
report()
"#,
        preadv2 = libc::SYS_preadv2
    );
    let (r, w) = nix::unistd::pipe().unwrap();
    let mut w = std::fs::File::from(w);
    w.write_all(b"zy").unwrap();
    drop(w);
    let mut cmd = python_cmd(&body);
    cmd.stdin(Stdio::from(r));
    let filter = notify_filter(&NotifyOptions { tty_io }).unwrap();
    let sb = spawn_notified(cmd, filter, false);
    let mut seen = Vec::new();
    let mut ended = false;
    let out = serve(sb, |l, n| {
        if !ended {
            seen.push(n);
        }
        ended |= n.nr == libc::SYS_setsid;
        pass(l, n);
    });
    (seen, parse(&out))
}

#[test]
fn tty_io_notifies_reads_only_when_asked() {
    let (seen, res) = tty_io_run(false);
    assert_eq!(res["read"], i64::from(b'z'));
    assert_eq!(res["preadv2"], 1);
    assert_eq!(res["preadv2_byte"], i64::from(b'y'));
    let nrs: Vec<i64> = seen.iter().map(|n| n.nr).collect();
    assert_eq!(
        nrs,
        vec![libc::SYS_setsid],
        "without tty_io only setsid is notified"
    );

    let (seen, res) = tty_io_run(true);
    assert_eq!(res["read"], i64::from(b'z'));
    assert_eq!(res["preadv2_byte"], i64::from(b'y'));
    assert!(
        seen.iter()
            .any(|n| n.nr == libc::SYS_read && n.args[0] == 0 && n.args[2] == 1),
        "the 1-byte read of stdin is notified: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|n| n.nr == libc::SYS_preadv2 && n.args[0] == 0 && n.args[3] as i64 == -1),
        "preadv2 at offset -1 is notified: {seen:?}"
    );
    assert_eq!(seen.last().map(|n| n.nr), Some(libc::SYS_setsid));
}

const SETSID_WITH_SIGUSR1_HANDLER: &str = r#"
import signal
signal.signal(signal.SIGUSR1, lambda *a: None)
try:
    os.setsid()
    res["setsid"] = 0
except OSError as e:
    res["setsid"] = -e.errno
report()
"#;

/// Waits until `cond` holds, for at most `TIMEOUT`.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_signal_withdraws_a_plain_notification() {
    let filter = notify_filter(&NotifyOptions::default()).unwrap();
    let sb = spawn_notified(python_cmd(SETSID_WITH_SIGUSR1_HANDLER), filter, false);
    let mut first = true;
    let out = serve(sb, |l, n| {
        assert_eq!(n.nr, libc::SYS_setsid);
        if first {
            first = false;
            kill(Pid::from_raw(n.pid as i32), Signal::SIGUSR1).unwrap();
            wait_until("the notification to be withdrawn", || !l.id_valid(n.id));
            assert!(matches!(
                l.respond(n.id, Response::Error(libc::EPERM)),
                Err(SeccompError::TargetGone { id }) if id == n.id
            ));
        } else {
            // The syscall was restarted after the handler (SA_RESTART) and notifies
            // again under a new id.
            l.respond(n.id, Response::Continue).unwrap();
        }
    });
    let res = parse(&out);
    // Restarted and continued, or failed with EINTR: never our EPERM.
    assert!(
        res["setsid"] == 0 || res["setsid"] == -(libc::EINTR as i64),
        "{res:?}"
    );
}

#[test]
fn a_killable_notification_waits_for_its_answer_through_signals() {
    let filter = notify_filter(&NotifyOptions::default()).unwrap();
    let sb = spawn_notified(python_cmd(SETSID_WITH_SIGUSR1_HANDLER), filter, true);
    let mut count = 0;
    let out = serve(sb, |l, n| {
        count += 1;
        assert_eq!(n.nr, libc::SYS_setsid);
        kill(Pid::from_raw(n.pid as i32), Signal::SIGUSR1).unwrap();
        thread::sleep(Duration::from_millis(200));
        assert!(
            l.id_valid(n.id),
            "a received notification survives a signal"
        );
        l.respond(n.id, Response::Error(libc::EPERM)).unwrap();
    });
    assert_eq!(count, 1);
    assert_eq!(parse(&out)["setsid"], EPERM);
}

fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn erestartsys_stops_the_caller_and_sigcont_restarts_the_syscall() {
    let filter = notify_filter(&NotifyOptions::default()).unwrap();
    let sb = spawn_notified(python_cmd(SETSID_TWICE), filter, true);
    let mut ids = Vec::new();
    let out = serve(sb, |l, n| {
        assert_eq!(n.nr, libc::SYS_setsid);
        ids.push(n.id);
        match ids.len() {
            1 => {
                // What the sentry does for a background tty access: signal, then
                // ERESTARTSYS.
                kill(Pid::from_raw(n.pid as i32), Signal::SIGSTOP).unwrap();
                l.respond(n.id, Response::Error(ERESTARTSYS)).unwrap();
                wait_until("the caller to stop", || proc_state(n.pid) == Some('T'));
                kill(Pid::from_raw(n.pid as i32), Signal::SIGCONT).unwrap();
            }
            2 => l.respond(n.id, Response::Error(libc::EPERM)).unwrap(),
            _ => l.respond(n.id, Response::Continue).unwrap(),
        }
    });
    let res = parse(&out);
    assert_eq!(ids.len(), 3, "the restarted setsid notified again");
    assert_ne!(ids[0], ids[1]);
    assert_eq!(
        res["first"], EPERM,
        "the restarted call got the second answer"
    );
    assert_eq!(res["second"], 0);
}

#[test]
fn closing_the_listener_fails_notified_syscalls_with_enosys() {
    let filter = notify_filter(&NotifyOptions::default()).unwrap();
    let sb = spawn_notified(python_cmd(SETSID_TWICE), filter, false);
    let Sandboxed { child, listener } = sb;
    drop(listener);
    let res = parse(&finish(child));
    assert_eq!(res["first"], ENOSYS);
    assert_eq!(res["second"], ENOSYS);
}

#[test]
fn a_second_listener_in_one_filter_chain_is_refused() {
    let filter = notify_filter(&NotifyOptions::default()).unwrap();
    let mut cmd = Command::new("/bin/true");
    // SAFETY: async-signal-safe installs only.
    unsafe {
        cmd.pre_exec(move || {
            let _first = install_with_listener(&filter).map_err(os_error)?;
            match install_with_listener(&filter) {
                Err(SeccompError::Install(e)) if e.raw_os_error() == Some(libc::EBUSY) => Ok(()),
                _ => Err(io::Error::from_raw_os_error(libc::EDOM)),
            }
        });
    }
    let out = finish(cmd.spawn().unwrap());
    assert!(out.status.success());
}

// ---------------------------------------------------------------------------------
// Constants and process memory

#[test]
fn ioctl_numbers_equal_the_libc_values() {
    let pairs: &[(&str, u32, libc::c_ulong)] = &[
        ("TCGETS", ioctls::TCGETS, libc::TCGETS),
        ("TCSETS", ioctls::TCSETS, libc::TCSETS),
        ("TCSETSW", ioctls::TCSETSW, libc::TCSETSW),
        ("TCSETSF", ioctls::TCSETSF, libc::TCSETSF),
        ("TCSETA", ioctls::TCSETA, libc::TCSETA),
        ("TCSETAW", ioctls::TCSETAW, libc::TCSETAW),
        ("TCSETAF", ioctls::TCSETAF, libc::TCSETAF),
        ("TCSBRK", ioctls::TCSBRK, libc::TCSBRK),
        ("TCXONC", ioctls::TCXONC, libc::TCXONC),
        ("TCFLSH", ioctls::TCFLSH, libc::TCFLSH),
        ("TIOCSCTTY", ioctls::TIOCSCTTY, libc::TIOCSCTTY),
        ("TIOCGPGRP", ioctls::TIOCGPGRP, libc::TIOCGPGRP),
        ("TIOCSPGRP", ioctls::TIOCSPGRP, libc::TIOCSPGRP),
        ("TIOCOUTQ", ioctls::TIOCOUTQ, libc::TIOCOUTQ),
        ("TIOCSTI", ioctls::TIOCSTI, libc::TIOCSTI),
        ("TIOCGWINSZ", ioctls::TIOCGWINSZ, libc::TIOCGWINSZ),
        ("TIOCSWINSZ", ioctls::TIOCSWINSZ, libc::TIOCSWINSZ),
        ("FIONREAD", ioctls::FIONREAD, libc::FIONREAD),
        ("TIOCLINUX", ioctls::TIOCLINUX, libc::TIOCLINUX),
        ("TIOCCONS", ioctls::TIOCCONS, libc::TIOCCONS),
        ("FIONBIO", ioctls::FIONBIO, libc::FIONBIO),
        ("TIOCNOTTY", ioctls::TIOCNOTTY, libc::TIOCNOTTY),
        ("TIOCSETD", ioctls::TIOCSETD, libc::TIOCSETD),
        ("TIOCGETD", ioctls::TIOCGETD, libc::TIOCGETD),
        ("TCSBRKP", ioctls::TCSBRKP, libc::TCSBRKP),
        ("TIOCSBRK", ioctls::TIOCSBRK, libc::TIOCSBRK),
        ("TIOCCBRK", ioctls::TIOCCBRK, libc::TIOCCBRK),
        ("TIOCGSID", ioctls::TIOCGSID, libc::TIOCGSID),
        ("TCGETS2", ioctls::TCGETS2, libc::TCGETS2),
        ("TCSETS2", ioctls::TCSETS2, libc::TCSETS2),
        ("TCSETSW2", ioctls::TCSETSW2, libc::TCSETSW2),
        ("TCSETSF2", ioctls::TCSETSF2, libc::TCSETSF2),
        ("TIOCGPTN", ioctls::TIOCGPTN, libc::TIOCGPTN),
        ("TIOCSPTLCK", ioctls::TIOCSPTLCK, libc::TIOCSPTLCK),
        ("TIOCVHANGUP", ioctls::TIOCVHANGUP, libc::TIOCVHANGUP),
        ("TIOCGPTPEER", ioctls::TIOCGPTPEER, libc::TIOCGPTPEER),
        ("FIONCLEX", ioctls::FIONCLEX, libc::FIONCLEX),
        ("FIOCLEX", ioctls::FIOCLEX, libc::FIOCLEX),
        (
            "SECCOMP_IOCTL_NOTIF_RECV",
            ioctls::SECCOMP_IOCTL_NOTIF_RECV,
            libc::SECCOMP_IOCTL_NOTIF_RECV,
        ),
        (
            "SECCOMP_IOCTL_NOTIF_SEND",
            ioctls::SECCOMP_IOCTL_NOTIF_SEND,
            libc::SECCOMP_IOCTL_NOTIF_SEND,
        ),
        (
            "SECCOMP_IOCTL_NOTIF_ID_VALID",
            ioctls::SECCOMP_IOCTL_NOTIF_ID_VALID,
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
        ),
        (
            "SECCOMP_IOCTL_NOTIF_ADDFD",
            ioctls::SECCOMP_IOCTL_NOTIF_ADDFD,
            libc::SECCOMP_IOCTL_NOTIF_ADDFD,
        ),
        (
            "SECCOMP_IOCTL_NOTIF_SET_FLAGS",
            ioctls::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
        ),
    ];
    for (name, ours, theirs) in pairs {
        assert_eq!(libc::c_ulong::from(*ours), *theirs, "{name}");
    }
    // Every listed job-control ioctl has its number in the public table.
    for (name, cmd) in [
        ("TIOCSPGRP", ioctls::TIOCSPGRP),
        ("TIOCGPGRP", ioctls::TIOCGPGRP),
        ("TIOCSCTTY", ioctls::TIOCSCTTY),
        ("TIOCNOTTY", ioctls::TIOCNOTTY),
        ("TIOCGSID", ioctls::TIOCGSID),
        ("TCSETS", ioctls::TCSETS),
        ("TCSETSW", ioctls::TCSETSW),
        ("TCSETSF", ioctls::TCSETSF),
        ("TCSETA", ioctls::TCSETA),
        ("TCSETAW", ioctls::TCSETAW),
        ("TCSETAF", ioctls::TCSETAF),
        ("TCSETS2", ioctls::TCSETS2),
        ("TCSETSW2", ioctls::TCSETSW2),
        ("TCSETSF2", ioctls::TCSETSF2),
        ("TCFLSH", ioctls::TCFLSH),
        ("TCXONC", ioctls::TCXONC),
        ("TCSBRK", ioctls::TCSBRK),
        ("TCSBRKP", ioctls::TCSBRKP),
        ("TIOCSBRK", ioctls::TIOCSBRK),
        ("TIOCCBRK", ioctls::TIOCCBRK),
    ] {
        assert!(
            NOTIFY_IOCTLS.iter().any(|r| r.name == name && r.cmd == cmd),
            "{name} missing from NOTIFY_IOCTLS"
        );
    }
    assert_eq!(NOTIFY_IOCTLS.len(), 20);
}

#[test]
fn notify_program_inspected() {
    let z = [0u64; 6];
    let f = notify_filter(&NotifyOptions { tty_io: false }).unwrap();
    let t = notify_filter(&NotifyOptions { tty_io: true }).unwrap();
    let act = |f: &Filter, nr: libc::c_long, args: [u64; 6]| {
        f.action_for(AUDIT_ARCH_NATIVE, nr as i32, args)
    };
    let notif_returns = |f: &Filter| {
        f.programs()
            .flatten()
            .filter(|i| i.code == 0x06 && i.k == libc::SECCOMP_RET_USER_NOTIF)
            .count()
    };
    assert!(notif_returns(&f) >= 3, "setpgid, setsid, ioctl");
    assert!(notif_returns(&t) > notif_returns(&f));
    for nr in [libc::SYS_setsid, libc::SYS_setpgid] {
        assert_eq!(act(&f, nr, z), Some(seccomp::Action::UserNotif));
    }
    for rule in NOTIFY_IOCTLS {
        for high in [0u64, 1 << 32, 0xffff_ffff << 32] {
            assert_eq!(
                act(
                    &f,
                    libc::SYS_ioctl,
                    [0, u64::from(rule.cmd) | high, 0, 0, 0, 0]
                ),
                Some(seccomp::Action::UserNotif),
                "{}",
                rule.name
            );
        }
    }
    assert_eq!(
        act(
            &f,
            libc::SYS_ioctl,
            [0, u64::from(ioctls::TCGETS), 0, 0, 0, 0]
        ),
        Some(seccomp::Action::Allow)
    );
    for nr in [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
    ] {
        assert_eq!(act(&f, nr, z), Some(seccomp::Action::Allow));
        assert_eq!(act(&t, nr, z), Some(seccomp::Action::UserNotif));
    }
    // Every data path to a terminal is notified with tty_io, none without; preadv2 at
    // the current position (offset -1) is one, while pread64 and preadv2 at an offset
    // are not: a terminal is ESPIPE to them in the host kernel.
    let current_position = [0, 0, 1, u64::MAX, 0, 0];
    for (nr, args) in [
        (libc::SYS_preadv2, current_position),
        (libc::SYS_sendfile, z),
        (libc::SYS_splice, z),
    ] {
        assert_eq!(act(&f, nr, args), Some(seccomp::Action::Allow));
        assert_eq!(act(&t, nr, args), Some(seccomp::Action::UserNotif));
    }
    for nr in [libc::SYS_pread64, libc::SYS_preadv2] {
        assert_eq!(act(&t, nr, z), Some(seccomp::Action::Allow));
    }
    assert_eq!(act(&t, libc::SYS_getpid, z), Some(seccomp::Action::Allow));
}

#[test]
fn process_memory_round_trip_and_errors() {
    let me = std::process::id();
    let mut target = [0u8; 16];
    let addr = target.as_mut_ptr() as u64;
    write_bytes(me, addr, b"hello, sandbox!!").unwrap();
    assert_eq!(&target, b"hello, sandbox!!");
    let mut back = [0u8; 16];
    read_bytes(me, addr, &mut back).unwrap();
    assert_eq!(back, target);
    write_i32(me, addr + 4, -7).unwrap();
    assert_eq!(read_i32(me, addr + 4).unwrap(), -7);
    assert_eq!(i32::from_ne_bytes(target[4..8].try_into().unwrap()), -7);

    // A range running off the end of a mapping: the mapped part is transferred, then
    // the fault is reported at the first unmapped byte.
    let page = 4096usize;
    // SAFETY: a fresh anonymous mapping of two pages, then the second is unmapped; the
    // first stays mapped (and unused by anything else) until the end of the test.
    let base = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        assert_eq!(libc::munmap(p.cast::<u8>().add(page).cast(), page), 0);
        p as u64
    };
    let mut buf = [0u8; 32];
    match read_bytes(me, base + page as u64 - 16, &mut buf) {
        Err(MemoryError::BadAddress { addr, len, .. }) => {
            assert_eq!(addr, base + page as u64);
            assert_eq!(len, 16);
        }
        other => panic!("expected BadAddress, got {other:?}"),
    }
    assert!(matches!(
        read_i32(me, 8),
        Err(MemoryError::BadAddress { .. })
    ));

    let mut child = Command::new("/bin/true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    assert!(matches!(
        read_i32(gone, addr),
        Err(MemoryError::ProcessGone { pid }) if pid == gone
    ));
    assert!(matches!(
        read_i32(0, addr),
        Err(MemoryError::Invalid { .. })
    ));
}

// ---------------------------------------------------------------------------------
// program_filter: the program's allow-list policy

/// Syscalls of Linux 6.18 newer than Debian 12's kernel headers (which stop at 450),
/// with their x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl; every number
/// from 424 on is the asm-generic one).
const NEWER_THAN_THE_HEADERS: &[(&str, i64)] = &[
    ("cachestat", 451),
    ("fchmodat2", 452),
    ("map_shadow_stack", 453),
    ("futex_wake", 454),
    ("futex_wait", 455),
    ("futex_requeue", 456),
    ("statmount", 457),
    ("listmount", 458),
    ("lsm_get_self_attr", 459),
    ("lsm_set_self_attr", 460),
    ("lsm_list_modules", 461),
    ("mseal", 462),
    ("setxattrat", 463),
    ("getxattrat", 464),
    ("listxattrat", 465),
    ("removexattrat", 466),
    ("open_tree_attr", 467),
    ("file_getattr", 468),
    ("file_setattr", 469),
];

const UNISTD_64: &str = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";

/// `#define __NR_name nr` lines of the kernel headers (linux-libc-dev).
fn header_syscalls() -> Vec<(String, i64)> {
    let text = std::fs::read_to_string(UNISTD_64).unwrap_or_else(|e| {
        panic!(
            "cannot check that the seccomp tables classify every syscall: {UNISTD_64}: \
             {e} (failing, not skipping: install linux-libc-dev)"
        )
    });
    let list: Vec<(String, i64)> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            match (w.next(), w.next(), w.next()) {
                (Some("#define"), Some(name), Some(nr)) => {
                    Some((name.strip_prefix("__NR_")?.to_string(), nr.parse().ok()?))
                }
                _ => None,
            }
        })
        .collect();
    assert!(
        list.len() > 300,
        "{UNISTD_64}: only {} syscalls",
        list.len()
    );
    list
}

/// The `SYS_*` constants of every `libc` crate in the build (x86_64 glibc), read from
/// its sources as located by `cargo metadata`.
fn libc_crate_syscalls() -> Vec<(String, i64)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            // Not --offline: a fresh checkout may lack the sources of packages for other
            // targets (r-efi, through proptest), which metadata lists too.
            "metadata",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "cargo metadata: {:?}", out);
    let json = String::from_utf8(out.stdout).unwrap();
    let mut list = Vec::new();
    let mut dirs = Vec::new();
    for piece in json.split("\"manifest_path\":\"").skip(1) {
        let Some(path) = piece.split('"').next() else {
            continue;
        };
        let dir = std::path::Path::new(path).parent().unwrap().to_path_buf();
        let is_libc = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.strip_prefix("libc-").is_some_and(|v| v.starts_with('0')));
        if is_libc && !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    assert!(!dirs.is_empty(), "no libc crate in cargo metadata");
    for dir in dirs {
        let file = dir.join("src/unix/linux_like/linux/gnu/b64/x86_64/not_x32.rs");
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for line in text.lines() {
            // pub const SYS_read: c_long = 0;
            let Some(rest) = line.trim().strip_prefix("pub const SYS_") else {
                continue;
            };
            let Some((name, value)) = rest.split_once(": c_long = ") else {
                continue;
            };
            let Ok(nr) = value.trim_end_matches(';').trim().parse() else {
                continue;
            };
            list.push((name.to_string(), nr));
        }
    }
    assert!(list.len() > 300, "libc crate: only {} syscalls", list.len());
    list
}

/// Fails when the kernel headers, the `libc` crate or the hand list of newer syscalls
/// know a syscall that ALLOW_SYSCALLS and DENY_SYSCALLS do not classify (or classify
/// under another number), and when a table row names no known syscall.
#[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
#[test]
fn every_known_syscall_is_classified_by_the_program_policy() {
    let mut known: Vec<(String, i64)> = header_syscalls();
    known.extend(libc_crate_syscalls());
    known.extend(
        NEWER_THAN_THE_HEADERS
            .iter()
            .map(|&(n, nr)| (n.to_string(), nr)),
    );
    let mut missing = Vec::new();
    for (name, nr) in &known {
        match seccomp::syscall_by_name(name) {
            Some(rule) if rule.nr == *nr => {}
            Some(rule) => missing.push(format!("{name}: table {} but known as {nr}", rule.nr)),
            None => missing.push(format!("{name} ({nr}) is not classified")),
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "unclassified syscalls:\n{}",
        missing.join("\n")
    );
    for rule in seccomp::ALLOW_SYSCALLS.iter().chain(DENY_SYSCALLS) {
        assert!(
            known.iter().any(|(n, _)| n == rule.name),
            "table row {} names no known syscall",
            rule.name
        );
    }
    // The classification covers exactly the known numbers: the highest is 469.
    let max = known.iter().map(|&(_, nr)| nr).max().unwrap();
    assert_eq!(max, 469, "a syscall newer than file_setattr: classify it");
}

/// The policy installed for real: listed denials EPERM, unknown numbers ENOSYS,
/// x32 numbers ENOSYS, allowed calls run (python itself starts under it).
#[cfg(target_arch = "x86_64")]
#[test]
fn program_filter_answers_eperm_enosys_and_runs_the_rest() {
    let body = r#"
res["mount"] = sc(165, 0, 0, 0, 0, 0)
res["bpf"] = sc(321, 0, 0, 0)
res["name_to_handle_at"] = sc(303, -100, 0, 0, 0, 0)
res["modify_ldt"] = sc(154, 0, 0, 0)
res["unshare_user"] = sc(272, 0x10000000)
res["nr_1000"] = sc(1000)
res["nr_400"] = sc(400)
res["nr_470"] = sc(470)
res["x32_getpid"] = sc(0x40000000 | 39)
res["clone3"] = sc(435, 0, 0)
res["getppid_runs"] = 1 if sc(110) > 0 else 0
res["fchmodat2_runs"] = sc(452, -100, b"/nonexistent-sandbox-seccomp-test", 0o644, 0)
report()
"#;
    let r = run_python(body, Some(seccomp::program_filter::<&str>(&[]).unwrap()));
    for k in [
        "mount",
        "bpf",
        "name_to_handle_at",
        "modify_ldt",
        "unshare_user",
    ] {
        assert_eq!(r[k], EPERM, "{k}: {r:?}");
    }
    for k in ["nr_1000", "nr_400", "nr_470", "x32_getpid", "clone3"] {
        assert_eq!(r[k], ENOSYS, "{k}: {r:?}");
    }
    assert_eq!(r["getppid_runs"], 1, "{r:?}");
    // fchmodat2 (Linux 6.6, newer than the libc crate's x86_64 list) reaches the kernel.
    assert_eq!(r["fchmodat2_runs"], -(libc::ENOENT as i64), "{r:?}");

    let lifted = run_python(
        "res['name_to_handle_at'] = sc(303, -100, b'/', 0, 0, 0)\nreport()",
        Some(seccomp::program_filter(&["name_to_handle_at"]).unwrap()),
    );
    // Run by the kernel: a NULL handle is EFAULT (not the filter's EPERM).
    assert_eq!(
        lifted["name_to_handle_at"],
        -(libc::EFAULT as i64),
        "{lifted:?}"
    );
}

/// init's filter installed for real in a forked child of the test (raw syscalls
/// only, results through a pipe): what init does still works, anything else fails
/// with EPERM.
#[test]
fn init_filter_refuses_what_init_does_not_do() {
    let filter = seccomp::init_filter().unwrap();
    let (r, w) = nix::unistd::pipe().unwrap();
    let path = c"/";
    // SAFETY: the child makes bare syscalls only (install is async-signal-safe, the
    // filter was compiled before the fork), writes a stack buffer and ends with _exit.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => unsafe {
            if install(&filter).is_err() {
                libc::_exit(2);
            }
            let err = |ret: libc::c_long| {
                if ret < 0 {
                    -i64::from(*libc::__errno_location())
                } else {
                    ret
                }
            };
            let out: [i64; 6] = [
                err(libc::syscall(libc::SYS_getpid)),
                err(libc::syscall(
                    libc::SYS_openat,
                    libc::AT_FDCWD,
                    path.as_ptr(),
                    0,
                )),
                err(libc::syscall(
                    libc::SYS_socket,
                    libc::AF_UNIX,
                    libc::SOCK_STREAM,
                    0,
                )),
                err(libc::syscall(
                    libc::SYS_ptrace,
                    libc::PTRACE_TRACEME,
                    0,
                    0,
                    0,
                )),
                err(libc::syscall(libc::SYS_execve, path.as_ptr(), 0, 0)),
                err(libc::syscall(libc::SYS_kill, 0, 0)),
            ];
            libc::write(w.as_raw_fd(), out.as_ptr().cast(), 48);
            libc::_exit(0);
        },
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut buf = [0u8; 48];
            let mut f = std::fs::File::from(r);
            io::Read::read_exact(&mut f, &mut buf).unwrap();
            let st = nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
            let v: Vec<i64> = buf
                .chunks(8)
                .map(|c| i64::from_ne_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(v[0], i64::from(child.as_raw()), "getpid runs");
            assert_eq!(v[1], EPERM, "openat");
            assert_eq!(v[2], EPERM, "socket");
            assert_eq!(v[3], EPERM, "ptrace");
            assert_eq!(v[4], EPERM, "execve");
            assert_eq!(v[5], 0, "kill runs");
        }
    }
}
