//! An OCI bundle run by the loader: the config.json podman wrote, pointed at a
//! busybox root made here, and what the container's program sees of each mapped
//! field (the joined network namespace, umask, supplementary groups, capabilities,
//! mqueue, masked paths, the writable root, the extra seccomp profile). One test in
//! this file: the loader clones the process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const PODMAN: &str = include_str!("data/oci/podman-config.json");

/// A network namespace of its own, held by a child (`unshare -n sleep`), killed on
/// drop.
struct NetnsHolder(Child);

impl NetnsHolder {
    fn start() -> (NetnsHolder, PathBuf) {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "120"])
            .spawn()
            .expect("unshare -n sleep");
        let path = PathBuf::from(format!("/proc/{}/ns/net", child.id()));
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // Until the child has unshared (its ns link differs from ours).
        while std::fs::read_link(&path).ok().as_ref() == Some(&ours) {
            assert!(Instant::now() < deadline, "unshare -n did not start");
            std::thread::yield_now();
        }
        (NetnsHolder(child), path)
    }
}

impl Drop for NetnsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "proc", "dev", "tmp", "sys", "out"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("busybox-static at /bin/busybox");
    for applet in [
        "sh", "cat", "grep", "id", "ls", "mkdir", "touch", "readlink", "hostname", "wc",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    root
}

#[test]
fn podman_bundle_runs_with_its_settings() {
    if !sandbox_tests::require_root() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("oci-bundle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let root = rootfs(&dir);
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(dir.join("hosts"), "127.0.0.1 localhost\n").unwrap();
    let (_holder, netns) = NetnsHolder::start();

    let script = "umask; id -G; readlink /proc/self/ns/net; grep -c ' /dev/mqueue mqueue ' /proc/mounts; \
                  ls /sys/dev/block | wc -l; cat /etc/hosts; hostname; grep CapEff /proc/self/status; \
                  mkdir /newdir 2>&1; touch /written && echo wrote";
    let mut v: Value = serde_json::from_str(PODMAN).unwrap();
    v["process"]["args"] = json!(["sh", "-c", format!("({script}) > /out/result 2>&1")]);
    v["process"]["user"] = json!({"uid": 0, "gid": 0, "umask": 0o27, "additionalGids": [5, 27]});
    v["root"]["path"] = json!(root);
    // Podman's userdata binds replaced by ours (relative sources are the bundle's).
    let mounts: Vec<Value> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] != "bind")
        .cloned()
        .chain([
            json!({"destination": "/etc/hosts", "type": "bind", "source": "hosts", "options": ["bind", "rprivate", "ro"]}),
            json!({"destination": "/out", "type": "bind", "source": out, "options": ["bind", "rprivate", "nosuid"]}),
        ])
        .collect();
    v["mounts"] = json!(mounts);
    v["linux"]["namespaces"][1]["path"] = json!(netns);
    // A profile rule the sandbox's own policy does not have: mkdir fails with EDQUOT.
    v["linux"]["seccomp"]["syscalls"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EDQUOT}));
    let spec: oci_spec::runtime::Spec = serde_json::from_value(v).unwrap();
    let container = sandbox_loader::oci::container_spec(&spec, &dir).unwrap();

    let outcome = sandbox_loader::run(container.spec).expect("the bundle runs");
    let result = std::fs::read_to_string(out.join("result")).unwrap();
    assert_eq!(outcome.exit_code(), 0, "{result}");
    let lines: Vec<&str> = result.lines().collect();
    let netns_id = std::fs::read_link(&netns).unwrap();
    assert_eq!(lines[0], "0027", "umask: {result}");
    assert_eq!(lines[1], "0 5 27", "supplementary groups: {result}");
    assert_eq!(
        Path::new(lines[2]),
        netns_id,
        "the joined network namespace: {result}"
    );
    assert_eq!(lines[3], "1", "mqueue at /dev/mqueue: {result}");
    assert_eq!(lines[4], "0", "/sys/dev/block masked (empty): {result}");
    assert_eq!(lines[5], "127.0.0.1 localhost", "/etc/hosts bind: {result}");
    assert_eq!(lines[6], "03a9e4885d15", "hostname: {result}");
    // Podman's 14: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP
    // (bits 0-1, 3-8), NET_BIND_SERVICE 10, NET_RAW 13, SYS_CHROOT 18, MKNOD 27,
    // AUDIT_WRITE 29, SETFCAP 31.
    assert_eq!(
        lines[7], "CapEff:\t00000000a80425fb",
        "capabilities: {result}"
    );
    assert!(
        lines[8].contains("quota"),
        "mkdir refused by the profile (EDQUOT): {result}"
    );
    assert_eq!(lines[9], "wrote", "{result}");
    assert!(
        root.join("written").exists(),
        "the root is written in place"
    );
    assert!(!root.join("newdir").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
