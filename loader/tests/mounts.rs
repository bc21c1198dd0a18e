//! Tests of `mounts::setup_filesystem` and `userns::write_id_maps` on the real kernel.
//!
//! `setup_filesystem` must run as PID 1 of new namespaces, and the test harness is
//! multi-threaded, so no test forks. Each sandbox test re-executes this test binary
//! (`--exact sandbox_child_entry`) with the scenario in `SANDBOX_MOUNTS_CHILD`, started by
//! util-linux `unshare --fork --pid --mount --uts --ipc --net` (plus `--user
//! --map-root-user`, and `setpriv` to uid 65534, for the user-namespace modes). The
//! child calls `setup_filesystem`, prints what it observes as `FACT key=value` lines and
//! exits; the test asserts on them and on the host.
//!
//! The launcher runs inside an extra mount namespace whose mounts are made *shared*,
//! and the inner `unshare` keeps that propagation (`--propagation unchanged`): if
//! `setup_filesystem` forgot to make its mounts private, its mounts would propagate to
//! that outer namespace, whose mount table the launcher prints before and after.
//!
//! The tests need root (to create namespaces with every mode): without it they fail,
//! unless `SANDBOX_TESTS_SKIP_ROOT=1` (see `sandbox_tests::require_root`).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use nix::errno::Errno;
use nix::unistd::{Gid, Pid, Uid};
use sandbox_loader::mounts::{setup_filesystem, Bind, FsSpec, MountError, RootMode};
use sandbox_loader::userns::write_id_maps;

const CHILD_ENV: &str = "SANDBOX_MOUNTS_CHILD";
const DIR_ENV: &str = "SANDBOX_MOUNTS_DIR";
const TERM_ENV: &str = "SANDBOX_MOUNTS_TERM";
const MARKER_ENV: &str = "SANDBOX_MOUNTS_MARKER";
const WRITER_ENV: &str = "SANDBOX_USERNS_WRITER";
const TIMEOUT: Duration = Duration::from_secs(60);
const NOBODY: u32 = 65534;
const HOSTNAME: &str = "sandbox-test";

/// The child side of every sandbox test: does nothing in a normal test run (the
/// variable is unset); under `unshare` it builds the sandbox and reports.
#[test]
fn sandbox_child_entry() {
    if let Ok(scenario) = std::env::var(CHILD_ENV) {
        child::run(&scenario);
    }
}

/// The writer side of `id_maps_written_by_an_unprivileged_loader` (run as uid 65534).
#[test]
fn userns_writer_entry() {
    if std::env::var_os(WRITER_ENV).is_some() {
        let report = map_child_and_report(Uid::effective(), Gid::effective());
        for (key, value) in report {
            println!("FACT {key}={value}");
        }
    }
}

// ---------------------------------------------------------------------------------
// Sandbox tests.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Root, no user namespace.
    Root,
    /// Root, in a user namespace mapping 0 to 0 (mounts locked as for any user ns).
    UserNs,
    /// uid 65534 outside, root inside a user namespace: the non-root loader's case.
    Unprivileged,
}

#[test]
fn host_root_view_as_root() {
    host_root_view(Mode::Root);
}

#[test]
fn host_root_view_in_a_user_namespace() {
    host_root_view(Mode::UserNs);
}

#[test]
fn host_root_view_unprivileged() {
    host_root_view(Mode::Unprivileged);
}

fn host_root_view(mode: Mode) {
    if !sandbox_tests::require_root() {
        return;
    }
    let fixture = Fixture::new(mode);
    let term = HostPty::open(mode);
    let marker = format!("sandbox-mounts-marker-{}", fixture.id);
    let host_mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let hostname_before = nix::unistd::gethostname().unwrap();

    let run = run_child(
        mode,
        "host",
        &fixture,
        &[
            (TERM_ENV, term.path.as_str()),
            (MARKER_ENV, marker.as_str()),
        ],
    );

    assert_eq!(run.f("setup"), "ok", "{run}");
    // A fresh /proc of the new PID namespace: the child is PID 1 and sees itself so.
    assert_eq!(run.f("pid"), "1", "{run}");
    assert_eq!(run.f("proc_self"), "1", "{run}");
    assert_eq!(run.f("proc1_is_child"), "true", "{run}");
    // The root is read-only, at the top and below (/usr may be a separate mount).
    assert_eq!(run.f("write_root"), "EROFS", "{run}");
    assert_eq!(run.f("write_usr"), "EROFS", "{run}");
    // /tmp: private, empty but for the bind targets created in it, mode 1777, writable.
    assert_eq!(run.f("tmp_entries"), "work", "{run}");
    assert_eq!(run.f("tmp_mode"), "1777", "{run}");
    assert_eq!(run.f("tmp_write"), "ok", "{run}");
    assert!(!Path::new("/tmp").join(&marker).exists(), "/tmp leaked");
    // /dev: exactly the documented entries, read-only itself.
    assert_eq!(
        run.f("dev_entries"),
        "console,fd,full,null,ptmx,pts,random,shm,stderr,stdin,stdout,tty,urandom,zero",
        "{run}"
    );
    assert_eq!(run.f("dev_create"), "EROFS", "{run}");
    assert_eq!(run.f("dev_shm_write"), "ok", "{run}");
    assert_eq!(run.f("null_write"), "ok", "{run}");
    assert_eq!(run.f("null_read"), "0", "{run}");
    assert_eq!(run.f("zero_read"), "0,0,0,0", "{run}");
    assert_eq!(run.f("full_write"), "ENOSPC", "{run}");
    assert_eq!(run.f("urandom_read"), "16", "{run}");
    assert_eq!(run.f("fd_link"), "/proc/self/fd", "{run}");
    assert_eq!(run.f("stderr_link"), "/proc/self/fd/2", "{run}");
    // An own devpts instance: the first pty inside is number 0, whatever the host has.
    assert_eq!(run.f("pty_slave"), "/dev/pts/0", "{run}");
    assert_eq!(run.f("pty_slave_open"), "ok", "{run}");
    // The borrowed terminal is /dev/tty and /dev/console.
    let host_rdev = std::fs::metadata(&term.path).unwrap().rdev().to_string();
    assert_eq!(run.f("tty_rdev"), host_rdev, "{run}");
    assert_eq!(run.f("console_rdev"), host_rdev, "{run}");
    assert_eq!(run.f("tty_isatty"), "true", "{run}");
    // --bind is writable and the file shows on the host; --ro-bind is read-only.
    assert_eq!(run.f("rw_write"), "ok", "{run}");
    assert_eq!(
        std::fs::read_to_string(fixture.dir.join("rw/from-sandbox")).unwrap(),
        "written inside"
    );
    assert_eq!(run.f("ro_read"), "hello from the host", "{run}");
    assert_eq!(run.f("ro_write"), "EROFS", "{run}");
    assert_eq!(run.f("file_read"), "a single file", "{run}");
    assert_eq!(run.f("file_write"), "EROFS", "{run}");
    assert_eq!(run.f("cwd"), "/tmp/work/rw", "{run}");
    // /sys: the host's, read-only.
    assert_eq!(run.f("sys_readonly"), "true", "{run}");
    // The hostname is the sandbox's only.
    assert_eq!(run.f("hostname"), HOSTNAME, "{run}");
    assert_eq!(nix::unistd::gethostname().unwrap(), hostname_before);
    // Nothing was mounted in the host's namespace, nor propagated to a shared one.
    assert_eq!(
        std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        host_mounts_before
    );
    assert_eq!(run.outer_mounts_before, run.outer_mounts_after, "{run}");
    assert!(!run.outer_mounts_before.is_empty(), "{run}");
}

#[test]
fn rootfs_view_as_root() {
    rootfs_view(Mode::Root);
}

#[test]
fn rootfs_view_unprivileged() {
    rootfs_view(Mode::Unprivileged);
}

fn rootfs_view(mode: Mode) {
    if !sandbox_tests::require_root() {
        return;
    }
    let fixture = Fixture::new(mode);
    let run = run_child(mode, "rootfs", &fixture, &[]);
    assert_eq!(run.f("setup"), "ok", "{run}");
    // The rootfs is /, with nothing added at its top (no /sys).
    assert_eq!(run.f("root_entries"), "data,dev,etc,proc,tmp", "{run}");
    assert_eq!(run.f("marker"), "the rootfs", "{run}");
    assert_eq!(run.f("write_root"), "EROFS", "{run}");
    // A bind on a target that exists in the rootfs.
    assert_eq!(run.f("data_read"), "hello from the host", "{run}");
    assert_eq!(run.f("proc_self"), "1", "{run}");
    // No terminal: no console, and tty is the host's /dev/tty node (5,0).
    assert_eq!(
        run.f("dev_entries"),
        "fd,full,null,ptmx,pts,random,shm,stderr,stdin,stdout,tty,urandom,zero",
        "{run}"
    );
    let host_tty = std::fs::metadata("/dev/tty").unwrap().rdev().to_string();
    assert_eq!(run.f("tty_rdev"), host_tty, "{run}");
    assert_eq!(run.f("cwd"), "/", "{run}");
    // Besides the layout, only the kernel files made read-only or masked under /proc.
    let points = run.f("mount_points");
    let (proc_hardening, layout): (Vec<&str>, Vec<&str>) =
        points.split(',').partition(|p| p.starts_with("/proc/"));
    // In the host's user namespace the device nodes are made (mknod), not bound: no
    // mount each.
    let expected = match mode {
        Mode::Root => "/,/data,/dev,/dev/pts,/dev/shm,/proc,/tmp",
        Mode::UserNs | Mode::Unprivileged => {
            "/,/data,/dev,/dev/full,/dev/null,/dev/pts,/dev/random,/dev/shm,/dev/tty,\
             /dev/urandom,/dev/zero,/proc,/tmp"
        }
    };
    assert_eq!(layout.join(","), expected, "{run}");
    assert!(proc_hardening.contains(&"/proc/sys"), "{run}");
    for p in proc_hardening {
        assert!(
            sandbox_loader::mounts::READ_ONLY_PATHS.contains(&p)
                || sandbox_loader::mounts::MASKED_PATHS.contains(&p),
            "unexpected mount {p}: {run}"
        );
    }
    assert_eq!(run.outer_mounts_before, run.outer_mounts_after, "{run}");
}

#[test]
fn missing_bind_source_is_a_clear_error() {
    if !sandbox_tests::require_root() {
        return;
    }
    for mode in [Mode::Root, Mode::Unprivileged] {
        let fixture = Fixture::new(mode);
        let run = run_child(mode, "missing_source", &fixture, &[]);
        assert_eq!(run.f("setup"), "error", "{run}");
        assert_eq!(run.f("variant"), "BindSource", "{run}");
        assert_eq!(run.f("errno"), "ENOENT", "{run}");
        let missing = fixture.dir.join("no-such-source");
        assert!(
            run.f("message").contains(&*missing.to_string_lossy()),
            "{run}"
        );
        assert_eq!(run.outer_mounts_before, run.outer_mounts_after, "{run}");
    }
}

#[test]
fn bind_target_missing_from_the_read_only_root_is_refused() {
    if !sandbox_tests::require_root() {
        return;
    }
    let fixture = Fixture::new(Mode::Root);
    let run = run_child(Mode::Root, "missing_target", &fixture, &[]);
    assert_eq!(run.f("setup"), "error", "{run}");
    assert_eq!(run.f("variant"), "BindTarget", "{run}");
    assert_eq!(run.f("errno"), "EROFS", "{run}");
    assert!(run.f("message").contains("/no-such-dir/x"), "{run}");
    // Nothing was created on the host either.
    assert!(!Path::new("/no-such-dir").exists());
}

#[test]
fn terminal_must_be_a_character_device() {
    if !sandbox_tests::require_root() {
        return;
    }
    let fixture = Fixture::new(Mode::Root);
    let run = run_child(Mode::Root, "not_a_terminal", &fixture, &[]);
    assert_eq!(run.f("setup"), "error", "{run}");
    assert_eq!(run.f("variant"), "NotATerminal", "{run}");
    assert!(run.f("message").contains("file.txt"), "{run}");
}

// ---------------------------------------------------------------------------------
// User namespace maps.

#[test]
fn id_maps_make_root_the_loaders_ids() {
    if !sandbox_tests::require_root() {
        return;
    }
    let report = map_child_and_report(Uid::effective(), Gid::effective());
    assert_eq!(report["setgroups"], "deny", "{report:?}");
    assert_eq!(report["uid_map"], "0 0 1", "{report:?}");
    assert_eq!(report["gid_map"], "0 0 1", "{report:?}");
    assert_eq!(report["uid"], "0", "{report:?}");
    assert_eq!(report["gid"], "0", "{report:?}");
}

#[test]
fn id_maps_use_the_given_outer_ids() {
    if !sandbox_tests::require_root() {
        return;
    }
    let report = map_child_and_report(Uid::from_raw(4242), Gid::from_raw(4343));
    assert_eq!(report["uid_map"], "0 4242 1", "{report:?}");
    assert_eq!(report["gid_map"], "0 4343 1", "{report:?}");
    // The child's own ids (0 outside) are not in the map: shown as the overflow id.
    assert_eq!(report["uid"], NOBODY.to_string(), "{report:?}");
}

#[test]
fn id_maps_written_by_an_unprivileged_loader() {
    if !sandbox_tests::require_root() {
        return;
    }
    let fixture = Fixture::new(Mode::Unprivileged);
    let exe = fixture.exe(Mode::Unprivileged);
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
    ])
    .arg(exe)
    .args(["--exact", "userns_writer_entry", "--nocapture"])
    .args(["--test-threads=1"])
    .env(WRITER_ENV, "1");
    let out = run_with_timeout(cmd);
    let facts = parse_facts(&out.stdout);
    assert_eq!(
        facts.get("setgroups").map(String::as_str),
        Some("deny"),
        "{out}"
    );
    assert_eq!(facts["uid_map"], "0 65534 1", "{out}");
    assert_eq!(facts["gid_map"], "0 65534 1", "{out}");
    assert_eq!(facts["uid"], "0", "{out}");
    assert_eq!(facts["gid"], "0", "{out}");
}

#[test]
fn id_maps_error_names_the_file() {
    // A PID that cannot exist (above the kernel's PID_MAX_LIMIT).
    let err =
        write_id_maps(Pid::from_raw(1 << 23), Uid::from_raw(1), Gid::from_raw(1)).unwrap_err();
    assert_eq!(err.path, Path::new("/proc/8388608/setgroups"));
    assert_eq!(err.source.kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains("/proc/8388608/setgroups"));
}

/// Starts `unshare --user sh` (a child in a new user namespace, maps unwritten), writes
/// its maps with `write_id_maps`, lets it go on and returns what it reports.
fn map_child_and_report(outer_uid: Uid, outer_gid: Gid) -> BTreeMap<String, String> {
    let script = "echo ready; read _; \
        echo \"uid_map=$(cat /proc/self/uid_map)\"; \
        echo \"gid_map=$(cat /proc/self/gid_map)\"; \
        echo \"setgroups=$(cat /proc/self/setgroups)\"; \
        echo \"uid=$(id -u)\"; echo \"gid=$(id -g)\"";
    let mut child = Command::new("unshare")
        .args(["--user", "--", "sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    let _watchdog = Watchdog::new(pid);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    // unshare has exec'd sh: the process is in its new user namespace.
    write_id_maps(pid, outer_uid, outer_gid).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    rest.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Harness: fixtures, launching, output.

/// A host directory with the bind sources and a tiny rootfs; removed on drop.
struct Fixture {
    dir: PathBuf,
    id: String,
}

impl Fixture {
    fn new(mode: Mode) -> Fixture {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("sandbox-mounts-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rw")).unwrap();
        std::fs::create_dir_all(dir.join("ro")).unwrap();
        std::fs::write(dir.join("ro/hello.txt"), "hello from the host").unwrap();
        std::fs::write(dir.join("file.txt"), "a single file").unwrap();
        for sub in ["proc", "dev", "tmp", "data", "etc"] {
            std::fs::create_dir_all(dir.join("rootfs").join(sub)).unwrap();
        }
        std::fs::write(dir.join("rootfs/etc/marker"), "the rootfs").unwrap();
        if mode == Mode::Unprivileged {
            // Open to uid 65534, so that only the mounts can refuse a write.
            for (path, mode) in [("rw", 0o777), ("ro", 0o777), ("file.txt", 0o666)] {
                let perms = std::fs::Permissions::from_mode(mode);
                std::fs::set_permissions(dir.join(path), perms).unwrap();
            }
        }
        Fixture { dir, id }
    }
}

impl Fixture {
    /// This test binary, at a path uid 65534 can execute in `mode`: itself when every
    /// directory above it is searchable by others, else a copy in the fixture.
    fn exe(&self, mode: Mode) -> PathBuf {
        let exe = std::env::current_exe().unwrap();
        let open_to_others =
            |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0);
        if mode != Mode::Unprivileged || exe.ancestors().all(open_to_others) {
            return exe;
        }
        let copy = self.dir.join("test-binary");
        std::fs::copy(&exe, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        copy
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A pty of the host, its slave standing for the user's terminal.
struct HostPty {
    _master: nix::pty::PtyMaster,
    path: String,
}

impl HostPty {
    fn open(mode: Mode) -> HostPty {
        use nix::fcntl::OFlag;
        let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY).unwrap();
        nix::pty::grantpt(&master).unwrap();
        nix::pty::unlockpt(&master).unwrap();
        let path = nix::pty::ptsname_r(&master).unwrap();
        if mode == Mode::Unprivileged {
            let nobody = Some(Uid::from_raw(NOBODY));
            nix::unistd::chown(path.as_str(), nobody, Some(Gid::from_raw(NOBODY))).unwrap();
        }
        HostPty {
            _master: master,
            path,
        }
    }
}

struct ChildRun {
    facts: BTreeMap<String, String>,
    outer_mounts_before: String,
    outer_mounts_after: String,
    output: Output,
}

impl ChildRun {
    /// The fact `key` the child reported, or `<missing>`.
    fn f(&self, key: &str) -> &str {
        self.facts.get(key).map_or("<missing>", String::as_str)
    }
}

impl std::fmt::Display for ChildRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "facts: {:#?}\n{}", self.facts, self.output)
    }
}

/// Runs the scenario in `sandbox_child_entry` under new namespaces (see the file docs).
fn run_child(mode: Mode, scenario: &str, fixture: &Fixture, env: &[(&str, &str)]) -> ChildRun {
    let exe = fixture.exe(mode);
    let userns = match mode {
        Mode::Root => "",
        Mode::UserNs => "--user --map-root-user",
        Mode::Unprivileged => "--user --map-root-user",
    };
    let setpriv = match mode {
        Mode::Unprivileged => format!("setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups"),
        _ => String::new(),
    };
    let script = format!(
        "cat /proc/self/mountinfo; echo ==SPLIT==; \
         {setpriv} unshare {userns} --fork --pid --mount --uts --ipc --net \
           --propagation unchanged --kill-child -- \
           \"$0\" --exact sandbox_child_entry --nocapture --test-threads=1; \
         echo \"==RC=$?\"; echo ==SPLIT==; cat /proc/self/mountinfo"
    );
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "shared",
        "--",
        "sh",
        "-c",
        &script,
    ])
    .arg(exe)
    .env(CHILD_ENV, scenario)
    .env(DIR_ENV, &fixture.dir)
    .env("RUST_BACKTRACE", "1");
    for (key, value) in env {
        cmd.env(key, value);
    }
    let output = run_with_timeout(cmd);
    let mut parts = output.stdout.split("==SPLIT==\n");
    let outer_mounts_before = parts.next().unwrap_or_default().to_string();
    let child_out = parts.next().unwrap_or_default().to_string();
    let outer_mounts_after = parts.next().unwrap_or_default().to_string();
    assert!(
        child_out.contains("==RC=0"),
        "child failed or timed out:\n{output}"
    );
    ChildRun {
        facts: parse_facts(&child_out),
        outer_mounts_before,
        outer_mounts_after,
        output,
    }
}

fn parse_facts(out: &str) -> BTreeMap<String, String> {
    out.lines()
        // The first fact shares its line with libtest's "test sandbox_child_entry ... ".
        .filter_map(|l| l.split_once("FACT ").map(|(_, fact)| fact))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

struct Output {
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` in a process group of its own, killed as a whole after [`TIMEOUT`].
fn run_with_timeout(mut cmd: Command) -> Output {
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    let watchdog = Watchdog::new_group(pid);
    let mut stdout = child.stdout.take().unwrap();
    let err_reader = {
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        })
    };
    let mut out = String::new();
    let _ = stdout.read_to_string(&mut out);
    let _ = child.wait();
    drop(watchdog);
    Output {
        stdout: out,
        stderr: err_reader.join().unwrap(),
    }
}

/// Kills a process (or its process group) unless dropped within [`TIMEOUT`].
struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn new(pid: Pid) -> Watchdog {
        Watchdog::start(move || {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        })
    }

    fn new_group(pgid: Pid) -> Watchdog {
        Watchdog::start(move || {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        })
    }

    fn start(kill: impl FnOnce() + Send + 'static) -> Watchdog {
        let (done, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(TIMEOUT) {
                eprintln!("watchdog: timed out after {TIMEOUT:?}, killing");
                kill();
            }
        });
        Watchdog {
            done: Some(done),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------
// The child: PID 1 of the new namespaces.

mod child {
    use super::*;
    use std::fs::{self, File, OpenOptions};

    fn fact(key: &str, value: impl std::fmt::Display) {
        println!("FACT {key}={value}");
    }

    fn errno_name(err: &std::io::Error) -> String {
        match err.raw_os_error() {
            Some(code) => format!("{:?}", Errno::from_raw(code)),
            None => err.to_string(),
        }
    }

    fn outcome<T>(result: std::io::Result<T>) -> String {
        match result {
            Ok(_) => "ok".to_string(),
            Err(err) => errno_name(&err),
        }
    }

    fn entries(dir: &str) -> String {
        let mut names: Vec<String> = fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names.join(",")
    }

    fn variant(err: &MountError) -> &'static str {
        match err {
            MountError::BindSource { .. } => "BindSource",
            MountError::BindTarget { .. } => "BindTarget",
            MountError::NotATerminal { .. } => "NotATerminal",
            _ => "other",
        }
    }

    fn host_dir() -> PathBuf {
        PathBuf::from(std::env::var_os(DIR_ENV).unwrap())
    }

    fn spec(scenario: &str) -> FsSpec {
        let dir = host_dir();
        let bind = |source: &str, target: &str, read_only| Bind {
            source: dir.join(source),
            target: PathBuf::from(target),
            read_only,
        };
        match scenario {
            // The read-only root (`--read-only`); the overlay is tested end to end in
            // cli/tests/filesystem.rs.
            "host" => FsSpec {
                rootfs: None,
                root_mode: RootMode::ReadOnly,
                binds: vec![
                    bind("rw", "/tmp/work/rw", false),
                    bind("ro", "/tmp/work/ro", true),
                    bind("file.txt", "/tmp/work/file.txt", true),
                ],
                terminal: std::env::var_os(TERM_ENV).map(PathBuf::from),
                hostname: Some(HOSTNAME.to_string()),
                cwd: Some(PathBuf::from("/tmp/work/rw")),
                caller_cwd: None,
                ..FsSpec::default()
            },
            "rootfs" => FsSpec {
                rootfs: Some(dir.join("rootfs")),
                root_mode: RootMode::ReadOnly,
                binds: vec![bind("ro", "/data", true)],
                ..FsSpec::default()
            },
            "missing_source" => FsSpec {
                binds: vec![bind("no-such-source", "/tmp/x", false)],
                ..FsSpec::default()
            },
            "missing_target" => FsSpec {
                root_mode: RootMode::ReadOnly,
                binds: vec![bind("ro", "/no-such-dir/x", true)],
                ..FsSpec::default()
            },
            "not_a_terminal" => FsSpec {
                terminal: Some(dir.join("file.txt")),
                ..FsSpec::default()
            },
            other => panic!("unknown scenario {other}"),
        }
    }

    pub fn run(scenario: &str) {
        let spec = spec(scenario);
        if let Err(err) = setup_filesystem(&spec) {
            fact("setup", "error");
            fact("variant", variant(&err));
            fact(
                "errno",
                err.errno().map(|e| format!("{e:?}")).unwrap_or_default(),
            );
            fact("message", &err);
            return;
        }
        fact("setup", "ok");
        fact("pid", nix::unistd::getpid());
        fact("proc_self", read_link("/proc/self"));
        fact("cwd", std::env::current_dir().unwrap().display());
        fact("write_root", outcome(File::create("/sandbox-probe")));
        fact(
            "tty_rdev",
            fs::metadata("/dev/tty").map(|m| m.rdev()).unwrap_or(0),
        );
        fact("dev_entries", entries("/dev"));
        match scenario {
            "host" => host_facts(),
            "rootfs" => rootfs_facts(),
            _ => {}
        }
    }

    fn read_link(path: &str) -> String {
        fs::read_link(path)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|e| errno_name(&e))
    }

    fn read(path: &str) -> String {
        fs::read_to_string(path).unwrap_or_else(|e| errno_name(&e))
    }

    fn host_facts() {
        let cmdline = fs::read("/proc/1/cmdline").unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        fact(
            "proc1_is_child",
            cmdline.contains("--exact sandbox_child_entry"),
        );
        fact("write_usr", outcome(File::create("/usr/sandbox-probe")));

        fact("tmp_entries", entries("/tmp"));
        let mode = fs::metadata("/tmp").map(|m| m.mode() & 0o7777).unwrap_or(0);
        fact("tmp_mode", format!("{mode:o}"));
        let marker = std::env::var(MARKER_ENV).unwrap();
        fact(
            "tmp_write",
            outcome(fs::write(Path::new("/tmp").join(marker), "x")),
        );

        fact("dev_create", outcome(File::create("/dev/new-node")));
        fact("dev_shm_write", outcome(fs::write("/dev/shm/probe", "x")));
        fact(
            "null_write",
            outcome(
                OpenOptions::new()
                    .write(true)
                    .open("/dev/null")
                    .and_then(|mut f| f.write_all(b"discarded")),
            ),
        );
        fact("null_read", read("/dev/null").len());
        let mut zeros = [9u8; 4];
        let zero = File::open("/dev/zero").and_then(|mut f| f.read_exact(&mut zeros));
        fact(
            "zero_read",
            match zero {
                Ok(()) => zeros.map(|b| b.to_string()).join(","),
                Err(e) => errno_name(&e),
            },
        );
        fact(
            "full_write",
            outcome(
                OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .and_then(|mut f| f.write_all(b"x")),
            ),
        );
        let mut random = [0u8; 16];
        let urandom = File::open("/dev/urandom").and_then(|mut f| f.read(&mut random));
        fact(
            "urandom_read",
            urandom.map_or_else(|e| errno_name(&e), |n| n.to_string()),
        );
        fact("fd_link", read_link("/dev/fd"));
        fact("stderr_link", read_link("/dev/stderr"));

        pty_facts();

        fact(
            "console_rdev",
            fs::metadata("/dev/console").map(|m| m.rdev()).unwrap_or(0),
        );
        let tty = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open("/dev/tty");
        fact(
            "tty_isatty",
            tty.is_ok_and(|f| nix::unistd::isatty(&f).unwrap_or(false)),
        );

        fact(
            "rw_write",
            outcome(fs::write("/tmp/work/rw/from-sandbox", "written inside")),
        );
        fact("ro_read", read("/tmp/work/ro/hello.txt"));
        fact("ro_write", outcome(fs::write("/tmp/work/ro/new", "x")));
        fact("file_read", read("/tmp/work/file.txt"));
        fact(
            "file_write",
            outcome(OpenOptions::new().write(true).open("/tmp/work/file.txt")),
        );
        let sys = nix::sys::statvfs::statvfs("/sys");
        fact(
            "sys_readonly",
            sys.is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)),
        );
        fact(
            "hostname",
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }

    use std::os::unix::fs::OpenOptionsExt;

    fn pty_facts() {
        use nix::fcntl::OFlag;
        let master = match nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY) {
            Ok(m) => m,
            Err(e) => {
                fact("pty_slave", format!("{e:?}"));
                return;
            }
        };
        let _ = nix::pty::grantpt(&master);
        let _ = nix::pty::unlockpt(&master);
        let slave = nix::pty::ptsname_r(&master).unwrap_or_default();
        fact("pty_slave", &slave);
        fact(
            "pty_slave_open",
            outcome(
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_NOCTTY)
                    .open(&slave),
            ),
        );
    }

    fn rootfs_facts() {
        fact("root_entries", entries("/"));
        fact("marker", read("/etc/marker"));
        fact("data_read", read("/data/hello.txt"));
        // Mount points (field 5 of mountinfo), each once: the old root is gone.
        let mut points: Vec<String> = read("/proc/self/mountinfo")
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .collect();
        points.sort();
        fact("mount_points", points.join(","));
    }
}
