//! OCI bundles: a bundle's `config.json` (runtime-spec 1.x, read with the `oci-spec`
//! crate) mapped onto a [`SandboxSpec`].
//!
//! Every field is either honoured, honoured more strictly than asked (stated below),
//! or refused with an [`OciError::Unsupported`] naming the JSON field: nothing a
//! config asks for is dropped without a word. (Fields the runtime-spec does not define
//! are not seen: the crate's deserializer skips unknown keys.)
//!
//! | field | what the sandbox does |
//! |---|---|
//! | `process.args`, `env`, `cwd` | the program (looked up in the `PATH` of `env`), its whole environment, its working directory (absolute) |
//! | `process.terminal`, `consoleSize` | returned in [`OciContainer`]: the runtime gives the container an owned pty |
//! | `process.user.uid`, `gid`, `additionalGids`, `umask` | set before exec; `username` refused |
//! | `process.capabilities` | the kept set is effective ∩ permitted ∩ bounding (for a uid other than 0, also ∩ ambient: without ambient capabilities a non-root program loses them at exec, as under runc); the bounding set is narrowed to the kept set (stricter than runc, whose bounding set can be larger); `inheritable` is the kept set |
//! | `process.rlimits` | set before exec (a hard limit above the runtime's own fails without CAP_SYS_RESOURCE) |
//! | `process.noNewPrivileges` | `no_new_privs` is always set, whatever the value (stricter) |
//! | `process.apparmorProfile`, `selinuxLabel`, `oomScoreAdj`, `ioPriority`, `scheduler`, `execCPUAffinity`, `commandLine` | refused |
//! | `root.path`, `root.readonly` | the root, relative to the bundle; written in place ([`RootMode::Writable`]) or read-only |
//! | `hostname` | set in the sandbox's UTS namespace; `domainname` refused |
//! | `mounts` | `proc` at `/proc`, `tmpfs` at `/dev`, `devpts` at `/dev/pts`: the sandbox's own (see [`crate::mounts`]); `sysfs` at `/sys` read-only: the host's `/sys`, read-only (a writable one refused); `cgroup` at `/sys/fs/cgroup` read-only: visible read-only through that `/sys`; `mqueue` and `tmpfs` elsewhere: mounted; `bind`/`rbind`: a recursive bind (`ro` honoured, `nosuid` implied by `no_new_privs`, propagation always private, `rshared`/`shared` refused, the `nodev`/`noexec`/atime options not applied); any other type refused |
//! | `hooks` | refused |
//! | `annotations` | returned in [`OciContainer`] (for `state`) |
//! | `linux.namespaces` | pid, mount, ipc, uts must be listed, without `path` (the sandbox always creates them); network: created, or joined with `path` ([`SandboxSpec::join_netns`]), or the host's when not listed; cgroup, user, time refused |
//! | `linux.maskedPaths`, `readonlyPaths` | hidden / read-only, in addition to the sandbox's own lists |
//! | `linux.seccomp` | compiled ([`seccomp_filter`]) and installed in addition to the sandbox's own policy (the most severe answer wins) |
//! | `linux.resources.pids.limit`, `memory.limit` | the sandbox's cgroup limits; `devices` rules that only deny (the sandbox's `/dev` has no device beyond null, zero, full, random, urandom, tty and its own ptys); every other resource refused |
//! | `linux.cgroupsPath` | returned in [`OciContainer`]; the sandbox's processes are in cgroups of its own |
//! | `linux.uidMappings`, `gidMappings`, `sysctl`, `devices`, `rootfsPropagation`, `mountLabel`, `intelRdt`, `personality`, `memoryPolicy`, `timeOffsets`, `netDevices` | refused when present and not empty |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxNamespaceType, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, Mount,
    PosixRlimitType, Spec,
};

use crate::capability::CapSet;
use crate::mounts::{Bind, KernelMount, RootMode};
use crate::sandbox::SandboxSpec;
use crate::seccomp::{self, Action, ArgCmp, ArgOp, Filter, ProfileRule};

/// Why a bundle cannot run.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// `config.json` could not be read or parsed.
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: oci_spec::OciSpecError,
    },
    /// A field asks for something the sandbox does not do.
    #[error("config.json: {field}: {why}")]
    Unsupported { field: String, why: String },
    /// The program cannot be executed (runc's words, which podman maps to 127 / 126).
    #[error("exec: {program:?}: {why}")]
    Exec { program: String, why: &'static str },
    /// The seccomp profile does not compile.
    #[error("config.json: linux.seccomp: {0}")]
    Seccomp(#[from] seccomp::SeccompError),
}

fn unsupported(field: impl Into<String>, why: impl Into<String>) -> OciError {
    OciError::Unsupported {
        field: field.into(),
        why: why.into(),
    }
}

/// A bundle's configuration, mapped.
#[derive(Debug)]
pub struct OciContainer {
    /// What to run (no terminal set: the runtime decides how to give one).
    pub spec: SandboxSpec,
    /// `process.terminal`.
    pub terminal: bool,
    /// `process.consoleSize` as (rows, columns).
    pub console_size: Option<(u16, u16)>,
    /// `annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `linux.cgroupsPath`.
    pub cgroups_path: Option<PathBuf>,
    /// `ociVersion`.
    pub oci_version: String,
}

/// Reads `BUNDLE/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, OciError> {
    let path = bundle.join("config.json");
    Spec::load(&path).map_err(|source| OciError::Read { path, source })
}

/// Maps a bundle's configuration (see the module documentation for every field).
/// `bundle` is the directory relative paths are resolved against.
pub fn container_spec(spec: &Spec, bundle: &Path) -> Result<OciContainer, OciError> {
    let version = spec.version();
    if !version.starts_with("1.") {
        return Err(unsupported(
            "ociVersion",
            format!("{version:?}: only runtime-spec 1.x is known"),
        ));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| unsupported("process", "missing: nothing to run"))?;
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(unsupported("process.args", "empty: nothing to run"));
    }
    let mut out = SandboxSpec::new(args);
    out.env = process.env().clone().unwrap_or_default();
    map_process(process, &mut out)?;

    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| unsupported("root", "missing"))?;
    out.rootfs = Some(bundle.join(root.path()));
    out.root_mode = if root.readonly().unwrap_or(false) {
        RootMode::ReadOnly
    } else {
        RootMode::Writable
    };
    out.hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    if spec.domainname().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(unsupported(
            "domainname",
            "setting the NIS domain name is not supported",
        ));
    }
    if let Some(hooks) = spec.hooks() {
        let any = [
            hooks.prestart(),
            hooks.create_runtime(),
            hooks.create_container(),
            hooks.start_container(),
            hooks.poststart(),
            hooks.poststop(),
        ]
        .iter()
        .any(|h| h.as_ref().is_some_and(|v| !v.is_empty()));
        if any {
            return Err(unsupported("hooks", "hooks are not supported"));
        }
    }
    let mounts = spec.mounts().clone().unwrap_or_default();
    map_mounts(&mounts, bundle, &mut out)?;

    let mut cgroups_path = None;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| unsupported("linux", "missing: only Linux containers are supported"))?;
    {
        let refuse_nonempty = |field: &str, present: bool| -> Result<(), OciError> {
            if present {
                Err(unsupported(format!("linux.{field}"), "not supported"))
            } else {
                Ok(())
            }
        };
        refuse_nonempty(
            "uidMappings",
            linux.uid_mappings().as_ref().is_some_and(|v| !v.is_empty()),
        )?;
        refuse_nonempty(
            "gidMappings",
            linux.gid_mappings().as_ref().is_some_and(|v| !v.is_empty()),
        )?;
        refuse_nonempty(
            "sysctl",
            linux.sysctl().as_ref().is_some_and(|v| !v.is_empty()),
        )?;
        refuse_nonempty(
            "devices",
            linux.devices().as_ref().is_some_and(|v| !v.is_empty()),
        )?;
        refuse_nonempty(
            "rootfsPropagation",
            linux
                .rootfs_propagation()
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
        )?;
        refuse_nonempty(
            "mountLabel",
            linux.mount_label().as_ref().is_some_and(|v| !v.is_empty()),
        )?;
        refuse_nonempty("intelRdt", linux.intel_rdt().is_some())?;
        refuse_nonempty("personality", linux.personality().is_some())?;
        refuse_nonempty("memoryPolicy", linux.memory_policy().is_some())?;
        refuse_nonempty(
            "timeOffsets",
            linux.time_offsets().as_ref().is_some_and(|v| !v.is_empty()),
        )?;
        refuse_nonempty(
            "netDevices",
            linux.net_devices().as_ref().is_some_and(|v| !v.is_empty()),
        )?;
    }
    map_namespaces(linux.namespaces().as_deref().unwrap_or_default(), &mut out)?;
    if let Some(res) = linux.resources() {
        map_resources(res, &mut out)?;
    } else {
        out.pids_limit = None;
    }
    if let Some(p) = linux.cgroups_path() {
        cgroups_path = Some(p.clone());
    }
    out.masked_paths = absolute_paths("linux.maskedPaths", linux.masked_paths())?;
    out.readonly_paths = absolute_paths("linux.readonlyPaths", linux.readonly_paths())?;
    if let Some(profile) = linux.seccomp() {
        out.extra_seccomp = Some(seccomp_filter(profile)?);
    }
    let console_size = process
        .console_size()
        .map(|b| (clamp_u16(b.height()), clamp_u16(b.width())));
    Ok(OciContainer {
        spec: out,
        terminal: process.terminal().unwrap_or(false),
        console_size,
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroups_path,
        oci_version: version.clone(),
    })
}

/// A process to execute in a running container (`exec --process FILE`).
#[derive(Debug)]
pub struct OciProcess {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub user: (u32, u32),
    /// The capabilities the process keeps (the same rule as `create`'s: for a uid
    /// other than 0, only those also in `ambient`).
    pub capabilities: CapSet,
    pub terminal: bool,
    /// (rows, columns).
    pub console_size: Option<(u16, u16)>,
}

/// Reads an OCI process JSON (`exec --process FILE`) and maps it as `process` of a
/// config is mapped (the same refusals). Supplementary groups are refused; the
/// capabilities are those of the mapping, at most the container's; the rlimits and
/// umask it names are not applied (the exec'd process gets the container's rlimits):
/// logged (info) when set.
pub fn exec_process(path: &Path) -> Result<OciProcess, OciError> {
    let text = std::fs::read(path).map_err(|e| OciError::Read {
        path: path.to_path_buf(),
        source: oci_spec::OciSpecError::Io(e),
    })?;
    let process: oci_spec::runtime::Process =
        serde_json::from_slice(&text).map_err(|e| OciError::Read {
            path: path.to_path_buf(),
            source: oci_spec::OciSpecError::SerDe(e),
        })?;
    let argv = process.args().clone().unwrap_or_default();
    if argv.is_empty() {
        return Err(unsupported("process.args", "empty: nothing to run"));
    }
    let mut spec = SandboxSpec::new(argv.clone());
    map_process(&process, &mut spec)?;
    if !spec.additional_gids.is_empty() {
        return Err(unsupported(
            "process.user.additionalGids",
            "not supported for exec",
        ));
    }
    if !spec.rlimits.is_empty() || spec.umask.is_some() {
        // Not a warning: an exec client's stderr is the exec'd process's (conmon's).
        tracing::info!("exec: process.rlimits and umask are not applied to an exec'd process");
    }
    Ok(OciProcess {
        argv,
        env: process.env().clone().unwrap_or_default(),
        cwd: process.cwd().clone(),
        user: spec.user.unwrap_or((0, 0)),
        capabilities: spec.capabilities,
        terminal: process.terminal().unwrap_or(false),
        console_size: process
            .console_size()
            .map(|b| (clamp_u16(b.height()), clamp_u16(b.width()))),
    })
}

/// Checks, before anything starts, that `argv0` names an executable regular file in
/// the container's root, looked up in the `PATH` of `env` as execvpe will (a name with
/// a `/` as is); paths resolve inside `rootfs` (`openat2(RESOLVE_IN_ROOT)`: a symbolic
/// link cannot leave it). Mounts the sandbox adds later (binds) are not seen. runc
/// fails `create` the same way, which is how podman tells "not found" (127) from
/// "cannot execute" (126).
pub fn check_executable(rootfs: &Path, argv0: &str, env: &[String]) -> Result<(), OciError> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let err = |why| OciError::Exec {
        program: argv0.to_owned(),
        why,
    };
    let Ok(root) = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        // The sandbox reports a missing root itself.
        return Ok(());
    };
    let candidates: Vec<PathBuf> = if argv0.contains('/') {
        vec![PathBuf::from(argv0)]
    } else {
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        path.split(':')
            .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(argv0))
            .collect()
    };
    let mut seen_denied = false;
    for c in candidates {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT);
        let Ok(fd) = openat2(&root, &c, how) else {
            continue;
        };
        let Ok(st) = nix::sys::stat::fstat(&fd) else {
            continue;
        };
        let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
        if regular && st.st_mode & 0o111 != 0 {
            return Ok(());
        }
        seen_denied = true;
    }
    Err(err(if seen_denied {
        "permission denied"
    } else if argv0.contains('/') {
        "no such file or directory"
    } else {
        "executable file not found in $PATH"
    }))
}

fn clamp_u16(v: u64) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

fn absolute_paths(field: &str, paths: &Option<Vec<String>>) -> Result<Vec<PathBuf>, OciError> {
    let mut out = Vec::new();
    for p in paths.iter().flatten() {
        let path = PathBuf::from(p);
        if !path.is_absolute() {
            return Err(unsupported(field, format!("{p:?} is not an absolute path")));
        }
        out.push(path);
    }
    Ok(out)
}

/// The process fields (shared by `create` and `exec --process`).
pub fn map_process(
    process: &oci_spec::runtime::Process,
    out: &mut SandboxSpec,
) -> Result<(), OciError> {
    if process.command_line().is_some() {
        return Err(unsupported("process.commandLine", "Windows only"));
    }
    let cwd = process.cwd();
    if !cwd.is_absolute() {
        return Err(unsupported(
            "process.cwd",
            format!("{} is not an absolute path", cwd.display()),
        ));
    }
    out.cwd = Some(cwd.clone());
    let user = process.user();
    if user.username().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(unsupported("process.user.username", "Windows only"));
    }
    if user.uid() == u32::MAX || user.gid() == u32::MAX {
        return Err(unsupported(
            "process.user",
            "uid or gid 4294967295 is not an id",
        ));
    }
    out.user = Some((user.uid(), user.gid()));
    out.additional_gids = user.additional_gids().clone().unwrap_or_default();
    out.umask = user.umask();
    out.capabilities = CapSet::EMPTY;
    if let Some(caps) = process.capabilities() {
        let names = |field: &str,
                     set: &Option<oci_spec::runtime::Capabilities>|
         -> Result<Option<CapSet>, OciError> {
            let Some(set) = set else { return Ok(None) };
            let mut bits = CapSet::EMPTY;
            for cap in set {
                bits.add(&cap.to_string()).map_err(|e| {
                    unsupported(format!("process.capabilities.{field}"), e.to_string())
                })?;
            }
            Ok(Some(bits))
        };
        let effective = names("effective", caps.effective())?.unwrap_or(CapSet::EMPTY);
        let permitted = names("permitted", caps.permitted())?.unwrap_or(CapSet::EMPTY);
        let bounding = names("bounding", caps.bounding())?.unwrap_or(CapSet::EMPTY);
        let ambient = names("ambient", caps.ambient())?.unwrap_or(CapSet::EMPTY);
        names("inheritable", caps.inheritable())?;
        let mut keep = effective.bits() & permitted.bits() & bounding.bits();
        if user.uid() != 0 {
            keep &= ambient.bits();
        }
        for name in effective.names() {
            let mut one = CapSet::EMPTY;
            if one.add(name).is_ok() && one.bits() & keep != 0 {
                let _ = out.capabilities.add(name);
            }
        }
        for name in out.capabilities.dangerous() {
            tracing::warn!(
                capability = name,
                "the OCI config keeps a capability that voids a guarantee"
            );
        }
    }
    out.rlimits = Vec::new();
    for rl in process.rlimits().iter().flatten() {
        out.rlimits
            .push((rlimit_resource(rl.typ()), rl.soft(), rl.hard()));
    }
    if process.no_new_privileges() == Some(false) {
        tracing::info!("process.noNewPrivileges false: the sandbox sets no_new_privs all the same");
    }
    let refused: [(&str, bool); 6] = [
        (
            "apparmorProfile",
            process
                .apparmor_profile()
                .as_ref()
                .is_some_and(|p| !p.is_empty()),
        ),
        (
            "selinuxLabel",
            process
                .selinux_label()
                .as_ref()
                .is_some_and(|p| !p.is_empty()),
        ),
        ("oomScoreAdj", process.oom_score_adj().is_some()),
        ("ioPriority", process.io_priority().is_some()),
        ("scheduler", process.scheduler().is_some()),
        ("execCPUAffinity", process.exec_cpu_affinity().is_some()),
    ];
    if let Some((field, _)) = refused.iter().find(|(_, set)| *set) {
        return Err(unsupported(format!("process.{field}"), "not supported"));
    }
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> i32 {
    use PosixRlimitType as R;
    (match t {
        R::RlimitCpu => libc::RLIMIT_CPU,
        R::RlimitFsize => libc::RLIMIT_FSIZE,
        R::RlimitData => libc::RLIMIT_DATA,
        R::RlimitStack => libc::RLIMIT_STACK,
        R::RlimitCore => libc::RLIMIT_CORE,
        R::RlimitRss => libc::RLIMIT_RSS,
        R::RlimitNproc => libc::RLIMIT_NPROC,
        R::RlimitNofile => libc::RLIMIT_NOFILE,
        R::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        R::RlimitAs => libc::RLIMIT_AS,
        R::RlimitLocks => libc::RLIMIT_LOCKS,
        R::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        R::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        R::RlimitNice => libc::RLIMIT_NICE,
        R::RlimitRtprio => libc::RLIMIT_RTPRIO,
        R::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as i32
}

/// Options of a bind mount the sandbox accepts (see the module documentation).
const BIND_OPTIONS: &[&str] = &[
    "bind",
    "rbind",
    "ro",
    "rw",
    "rprivate",
    "private",
    "rslave",
    "slave",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "noatime",
    "atime",
    "nodiratime",
    "diratime",
];

fn map_mounts(mounts: &[Mount], bundle: &Path, out: &mut SandboxSpec) -> Result<(), OciError> {
    let has_sysfs = mounts
        .iter()
        .any(|m| m.typ().as_deref() == Some("sysfs") && m.destination() == Path::new("/sys"));
    for (i, m) in mounts.iter().enumerate() {
        let dest = m.destination();
        let field = format!("mounts[{i}] ({})", dest.display());
        if !dest.is_absolute() {
            return Err(unsupported(field, "the destination is not absolute"));
        }
        let options = m.options().clone().unwrap_or_default();
        let has = |o: &str| options.iter().any(|x| x == o);
        let typ = m.typ().clone().unwrap_or_default();
        let is_bind = typ == "bind" || has("bind") || has("rbind");
        match (typ.as_str(), dest.to_str().unwrap_or("")) {
            _ if is_bind => {
                if let Some(bad) = options.iter().find(|o| !BIND_OPTIONS.contains(&o.as_str())) {
                    return Err(unsupported(
                        field,
                        format!("bind option {bad:?} is not supported"),
                    ));
                }
                let source = m
                    .source()
                    .as_ref()
                    .ok_or_else(|| unsupported(field.clone(), "a bind needs a source"))?;
                out.binds.push(Bind {
                    source: bundle.join(source),
                    target: dest.clone(),
                    read_only: has("ro"),
                });
            }
            ("proc", "/proc") | ("tmpfs", "/dev") | ("devpts", "/dev/pts") => {}
            ("sysfs", "/sys") => {
                if !has("ro") {
                    return Err(unsupported(field, "a writable /sys is not supported"));
                }
                out.binds.push(Bind {
                    source: PathBuf::from("/sys"),
                    target: PathBuf::from("/sys"),
                    read_only: true,
                });
            }
            ("cgroup" | "cgroup2", "/sys/fs/cgroup") => {
                if !has("ro") || !has_sysfs {
                    return Err(unsupported(
                        field,
                        "only a read-only cgroup mount under a read-only /sys is supported",
                    ));
                }
            }
            ("mqueue", _) | ("tmpfs", _) => {
                let (flags, data) = kernel_mount_options(&field, &options)?;
                out.kernel_mounts.push(KernelMount {
                    fstype: if typ == "mqueue" { "mqueue" } else { "tmpfs" },
                    target: dest.clone(),
                    flags,
                    data,
                });
            }
            _ => {
                return Err(unsupported(
                    field,
                    format!("mount type {typ:?} at this destination is not supported"),
                ))
            }
        }
    }
    Ok(())
}

/// `MS_*` flags and the filesystem data of a kernel mount's options.
fn kernel_mount_options(field: &str, options: &[String]) -> Result<(u64, String), OciError> {
    let mut flags = 0u64;
    let mut data = Vec::new();
    for o in options {
        let f = match o.as_str() {
            "ro" => libc::MS_RDONLY,
            "rw" => 0,
            "nosuid" => libc::MS_NOSUID,
            "nodev" => libc::MS_NODEV,
            "noexec" => libc::MS_NOEXEC,
            "relatime" => libc::MS_RELATIME,
            "strictatime" => libc::MS_STRICTATIME,
            "noatime" => libc::MS_NOATIME,
            "rprivate" | "private" => 0,
            o if o.starts_with("mode=")
                || o.starts_with("size=")
                || o.starts_with("nr_inodes=")
                || o.starts_with("uid=")
                || o.starts_with("gid=") =>
            {
                data.push(o.to_owned());
                0
            }
            other => {
                return Err(unsupported(
                    field,
                    format!("mount option {other:?} is not supported"),
                ))
            }
        };
        flags |= f;
    }
    Ok((flags, data.join(",")))
}

fn map_namespaces(
    namespaces: &[oci_spec::runtime::LinuxNamespace],
    out: &mut SandboxSpec,
) -> Result<(), OciError> {
    use LinuxNamespaceType as T;
    let mut seen = Vec::new();
    for ns in namespaces {
        let typ = ns.typ();
        let field = format!("linux.namespaces ({typ})");
        match (typ, ns.path()) {
            (T::Network, Some(path)) => out.join_netns = Some(path.clone()),
            (T::Network | T::Pid | T::Mount | T::Ipc | T::Uts, None) => {}
            (T::Pid | T::Mount | T::Ipc | T::Uts, Some(_)) => {
                return Err(unsupported(
                    field,
                    "joining an existing namespace is not supported",
                ))
            }
            (T::Cgroup | T::User | T::Time, _) => {
                return Err(unsupported(field, "this namespace type is not supported"))
            }
        }
        seen.push(typ);
    }
    for required in [T::Pid, T::Mount, T::Ipc, T::Uts] {
        if !seen.contains(&required) {
            return Err(unsupported(
                format!("linux.namespaces ({required})"),
                "missing: the sandbox always has its own (sharing the host's is not supported)",
            ));
        }
    }
    out.share_net = !seen.contains(&T::Network);
    Ok(())
}

fn map_resources(
    res: &oci_spec::runtime::LinuxResources,
    out: &mut SandboxSpec,
) -> Result<(), OciError> {
    out.pids_limit = res
        .pids()
        .and_then(|p| u64::try_from(p.limit()).ok())
        .filter(|&l| l > 0);
    if let Some(mem) = res.memory() {
        out.memory_limit = mem
            .limit()
            .and_then(|l| u64::try_from(l).ok())
            .filter(|&l| l > 0);
        #[allow(deprecated)]
        let others = [
            ("reservation", mem.reservation().is_some()),
            (
                "swap",
                mem.swap().is_some_and(|s| s != 0 && Some(s) != mem.limit()),
            ),
            ("kernel", mem.kernel().is_some()),
            ("kernelTCP", mem.kernel_tcp().is_some()),
            ("swappiness", mem.swappiness().is_some()),
            ("disableOOMKiller", mem.disable_oom_killer() == Some(true)),
        ];
        if let Some((f, _)) = others.iter().find(|(_, set)| *set) {
            return Err(unsupported(
                format!("linux.resources.memory.{f}"),
                "not supported",
            ));
        }
    }
    if let Some(i) = res.devices().iter().flatten().position(|d| d.allow()) {
        return Err(unsupported(
            format!("linux.resources.devices[{i}]"),
            "allowing a device is not supported (the sandbox's /dev is fixed)",
        ));
    }
    let others = [
        ("cpu", res.cpu().is_some()),
        ("blockIO", res.block_io().is_some()),
        (
            "hugepageLimits",
            res.hugepage_limits()
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
        ),
        ("network", res.network().is_some()),
        ("rdma", res.rdma().as_ref().is_some_and(|v| !v.is_empty())),
        (
            "unified",
            res.unified().as_ref().is_some_and(|v| !v.is_empty()),
        ),
    ];
    if let Some((f, _)) = others.iter().find(|(_, set)| *set) {
        return Err(unsupported(format!("linux.resources.{f}"), "not supported"));
    }
    Ok(())
}

fn seccomp_action(
    field: &str,
    action: LinuxSeccompAction,
    errno: Option<u32>,
) -> Result<Action, OciError> {
    use LinuxSeccompAction as A;
    let data = |v: Option<u32>, default: u16| -> Result<u16, OciError> {
        v.map_or(Ok(default), |e| {
            u16::try_from(e).map_err(|_| unsupported(field, format!("errnoRet {e} is too large")))
        })
    };
    Ok(match action {
        A::ScmpActKill | A::ScmpActKillThread => Action::KillThread,
        A::ScmpActKillProcess => Action::KillProcess,
        A::ScmpActTrap => Action::Trap,
        A::ScmpActErrno => Action::Errno(data(errno, libc::EPERM as u16)?),
        A::ScmpActTrace => Action::Trace(data(errno, libc::EPERM as u16)?),
        A::ScmpActLog => Action::Log,
        A::ScmpActAllow => Action::Allow,
        A::ScmpActNotify => {
            return Err(unsupported(
                field,
                "SCMP_ACT_NOTIFY is not supported (the sandbox's supervisor owns the listener)",
            ))
        }
    })
}

/// Compiles an OCI seccomp profile for the native architecture: per syscall, the
/// first rule with argument conditions that all hold decides (in the profile's order),
/// else the most severe of its rules without conditions, else the default action. Names the sandbox's
/// tables do not know, or that this architecture lacks (`chown32`, `_llseek`, ...), are
/// skipped as libseccomp skips names of other architectures: those syscalls get the
/// default action. `architectures` must include the native one (or be empty); other
/// architectures are killed by the sandbox's own policy whatever the profile says.
/// `flags` other than `SECCOMP_FILTER_FLAG_SPEC_ALLOW`/`LOG` and `listenerPath` are
/// refused; `SECCOMP_FILTER_FLAG_LOG`/`SPEC_ALLOW` are not applied.
pub fn seccomp_filter(profile: &LinuxSeccomp) -> Result<Filter, OciError> {
    use oci_spec::runtime::{Arch, LinuxSeccompFilterFlag as F};
    if profile.listener_path().is_some() {
        return Err(unsupported("linux.seccomp.listenerPath", "not supported"));
    }
    if let Some(f) = profile
        .flags()
        .iter()
        .flatten()
        .find(|f| !matches!(f, F::SeccompFilterFlagLog | F::SeccompFilterFlagSpecAllow))
    {
        return Err(unsupported(
            "linux.seccomp.flags",
            format!("{f} is not supported"),
        ));
    }
    let native = if cfg!(target_arch = "x86_64") {
        Arch::ScmpArchX86_64
    } else {
        Arch::ScmpArchAarch64
    };
    if let Some(archs) = profile.architectures() {
        if !archs.is_empty()
            && !archs
                .iter()
                .any(|a| *a == native || *a == Arch::ScmpArchNative)
        {
            return Err(unsupported(
                "linux.seccomp.architectures",
                "the native architecture is not listed",
            ));
        }
    }
    let default = seccomp_action(
        "linux.seccomp.defaultAction",
        profile.default_action(),
        profile.default_errno_ret(),
    )?;
    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    for (i, sc) in profile.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let action = seccomp_action(&field, sc.action(), sc.errno_ret())?;
        let mut args = Vec::new();
        for a in sc.args().iter().flatten() {
            let arg = u8::try_from(a.index())
                .ok()
                .filter(|&x| x <= 5)
                .ok_or_else(|| {
                    unsupported(field.clone(), format!("argument index {}", a.index()))
                })?;
            use LinuxSeccompOperator as O;
            let (op, value) = match a.op() {
                O::ScmpCmpEq => (ArgOp::Eq, a.value()),
                O::ScmpCmpNe => (ArgOp::Ne, a.value()),
                O::ScmpCmpLt => (ArgOp::Lt, a.value()),
                O::ScmpCmpLe => (ArgOp::Le, a.value()),
                O::ScmpCmpGt => (ArgOp::Gt, a.value()),
                O::ScmpCmpGe => (ArgOp::Ge, a.value()),
                // libseccomp: (arg & value) == valueTwo.
                O::ScmpCmpMaskedEq => (
                    ArgOp::MaskedEq { mask: a.value() },
                    a.value_two().unwrap_or(0),
                ),
            };
            args.push(ArgCmp { arg, op, value });
        }
        for name in sc.names() {
            match seccomp::syscall_by_name(name).map(|r| r.nr) {
                Some(nr) if nr != seccomp::ABSENT => {
                    let nr = u32::try_from(nr).map_err(|_| {
                        unsupported(field.clone(), format!("syscall {name}: bad number"))
                    })?;
                    rules.push(ProfileRule {
                        nr,
                        args: args.clone(),
                        action,
                    });
                }
                _ => skipped.push(name.as_str()),
            }
        }
    }
    if !skipped.is_empty() {
        tracing::debug!(
            ?skipped,
            "seccomp profile: names this architecture or the sandbox's tables do not have"
        );
    }
    Ok(seccomp::profile_filter(default, &rules)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::seccomp::AUDIT_ARCH_NATIVE;
    use serde_json::{json, Value};

    /// The config.json podman 4.3 wrote for `podman run --rm localhost/bb sh -c 'exit 3'`.
    const PODMAN: &str = include_str!("../tests/data/oci/podman-config.json");

    fn podman() -> Value {
        serde_json::from_str(PODMAN).unwrap()
    }

    fn map(v: Value) -> Result<OciContainer, OciError> {
        let spec: Spec = serde_json::from_value(v).unwrap();
        container_spec(&spec, Path::new("/bundle"))
    }

    fn refused(v: Value) -> String {
        match map(v) {
            Err(e @ OciError::Unsupported { .. }) => e.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn podman_config_maps_field_by_field() {
        let c = map(podman()).unwrap();
        let s = &c.spec;
        assert_eq!(s.argv, ["sh", "-c", "exit 3"]);
        assert!(s.env.iter().any(|e| e == "container=podman"));
        assert_eq!(s.env.len(), 4, "the whole environment is the config's");
        assert_eq!(s.cwd.as_deref(), Some(Path::new("/")));
        assert_eq!(s.user, Some((0, 0)));
        assert_eq!(s.umask, Some(0o22));
        let caps: Vec<_> = s.capabilities.names().collect();
        assert!(caps.contains(&"CHOWN") && caps.contains(&"NET_BIND_SERVICE"));
        assert_eq!(caps.len(), 14);
        assert!(!caps.contains(&"SYS_ADMIN"));
        assert!(s
            .rlimits
            .contains(&(libc::RLIMIT_NOFILE as i32, 20000, 20000)));
        assert!(s
            .rlimits
            .contains(&(libc::RLIMIT_NPROC as i32, 32768, 32768)));
        assert!(s
            .rootfs
            .as_ref()
            .unwrap()
            .ends_with("f3ac574f6b389fdb6ae3fd0347f89e05e088b8a4e31443220d98d43c6d6c6d47/merged"));
        assert_eq!(s.root_mode, RootMode::Writable);
        assert_eq!(s.hostname.as_deref(), Some("03a9e4885d15"));
        // Binds: five userdata files/dirs, and the host's /sys read-only.
        let targets: Vec<_> = s.binds.iter().map(|b| b.target.to_str().unwrap()).collect();
        for t in [
            "/sys",
            "/etc/resolv.conf",
            "/etc/hosts",
            "/dev/shm",
            "/run/.containerenv",
            "/etc/hostname",
        ] {
            assert!(targets.contains(&t), "{t} in {targets:?}");
        }
        assert!(
            s.binds
                .iter()
                .find(|b| b.target == Path::new("/sys"))
                .unwrap()
                .read_only
        );
        assert!(
            !s.binds
                .iter()
                .find(|b| b.target == Path::new("/etc/hosts"))
                .unwrap()
                .read_only
        );
        assert_eq!(s.kernel_mounts.len(), 1);
        assert_eq!(s.kernel_mounts[0].fstype, "mqueue");
        assert_eq!(s.kernel_mounts[0].target, Path::new("/dev/mqueue"));
        assert_eq!(
            s.kernel_mounts[0].flags,
            libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV
        );
        assert_eq!(
            s.join_netns.as_deref(),
            Some(Path::new(
                "/run/netns/netns-d84dcb7b-b8dd-fbf4-0a4e-68df9174648f"
            ))
        );
        assert!(!s.share_net);
        assert_eq!(s.pids_limit, Some(2048));
        assert_eq!(s.memory_limit, None);
        assert!(s.masked_paths.contains(&PathBuf::from("/sys/dev/block")));
        assert!(s
            .readonly_paths
            .contains(&PathBuf::from("/proc/sysrq-trigger")));
        assert!(s.extra_seccomp.is_some());
        assert!(!c.terminal);
        assert_eq!(
            c.annotations
                .get("io.container.manager")
                .map(String::as_str),
            Some("libpod")
        );
        assert!(c.cgroups_path.unwrap().starts_with("/libpod_parent"));
    }

    fn decide(f: &Filter, nr: libc::c_long, args: [u64; 6]) -> Action {
        f.action_for(AUDIT_ARCH_NATIVE, nr as i32, args).unwrap()
    }

    #[test]
    fn podman_seccomp_profile_decides_like_libseccomp() {
        let c = map(podman()).unwrap();
        let f = c.spec.extra_seccomp.unwrap();
        let none = [0; 6];
        assert_eq!(decide(&f, libc::SYS_getpid, none), Action::Allow);
        assert_eq!(decide(&f, libc::SYS_execve, none), Action::Allow);
        // Listed with errnoRet 1.
        assert_eq!(decide(&f, libc::SYS_bpf, none), Action::Errno(1));
        assert_eq!(decide(&f, libc::SYS_setns, none), Action::Errno(1));
        assert_eq!(decide(&f, libc::SYS_kexec_load, none), Action::Errno(1));
        // Not listed: defaultErrnoRet 38.
        assert_eq!(
            decide(&f, libc::SYS_io_uring_setup, none),
            Action::Errno(38)
        );
        assert_eq!(decide(&f, 1000, none), Action::Errno(38));
        assert_eq!(
            decide(&f, 0x4000_0000 | libc::SYS_getpid, none),
            Action::Errno(38)
        );
        // personality: five values allowed, compared as 64-bit values.
        for ok in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(
                decide(&f, libc::SYS_personality, [ok, 0, 0, 0, 0, 0]),
                Action::Allow,
                "{ok:#x}"
            );
        }
        for bad in [1u64, 0x40000, 0x1_0000_0000, 0xffff_ffff_0000_0000] {
            assert_eq!(
                decide(&f, libc::SYS_personality, [bad, 0, 0, 0, 0, 0]),
                Action::Errno(38),
                "{bad:#x}"
            );
        }
        // A foreign architecture is killed.
        assert_eq!(
            f.action_for(crate::seccomp::AUDIT_ARCH_I386, 20, none),
            Some(Action::KillProcess)
        );
    }

    #[test]
    fn seccomp_operators_compare_whole_64_bit_values() {
        let profile = |op: &str, value: u64, two: Option<u64>| -> Filter {
            let mut arg = json!({"index": 1, "value": value, "op": op});
            if let Some(t) = two {
                arg["valueTwo"] = json!(t);
            }
            let p: LinuxSeccomp = serde_json::from_value(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["dup3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "args": [arg]}]
            }))
            .unwrap();
            seccomp_filter(&p).unwrap()
        };
        let hit = Action::Errno(22);
        let check = |f: &Filter, v: u64, want: bool| {
            let got = decide(f, libc::SYS_dup3, [0, v, 0, 0, 0, 0]);
            assert_eq!(got == hit, want, "value {v:#x}");
            // Another syscall is left alone.
            assert_eq!(decide(f, libc::SYS_dup, [0, v, 0, 0, 0, 0]), Action::Allow);
        };
        let big = 0x1_0000_0005u64;
        let f = profile("SCMP_CMP_GT", big, None);
        for (v, w) in [
            (big + 1, true),
            (big, false),
            (5, false),
            (0x2_0000_0000, true),
            (u64::MAX, true),
        ] {
            check(&f, v, w);
        }
        let f = profile("SCMP_CMP_GE", big, None);
        for (v, w) in [
            (big, true),
            (big - 1, false),
            (0x1_0000_0006, true),
            (6, false),
        ] {
            check(&f, v, w);
        }
        let f = profile("SCMP_CMP_LT", big, None);
        for (v, w) in [
            (big, false),
            (big - 1, true),
            (u64::MAX, false),
            (0xffff_ffff, true),
        ] {
            check(&f, v, w);
        }
        let f = profile("SCMP_CMP_LE", big, None);
        for (v, w) in [
            (big, true),
            (big + 1, false),
            (0x2_0000_0000, false),
            (0, true),
        ] {
            check(&f, v, w);
        }
        let f = profile("SCMP_CMP_EQ", big, None);
        for (v, w) in [(big, true), (5, false), (big | 1 << 40, false)] {
            check(&f, v, w);
        }
        let f = profile("SCMP_CMP_NE", big, None);
        for (v, w) in [(big, false), (5, true), (big | 1 << 40, true)] {
            check(&f, v, w);
        }
        // (arg & 0xff000000_000000ff) == 0x01000000_00000002.
        let f = profile(
            "SCMP_CMP_MASKED_EQ",
            0xff00_0000_0000_00ff,
            Some(0x0100_0000_0000_0002),
        );
        for (v, w) in [
            (0x0100_0000_0000_0002, true),
            (0x01ff_ffff_ffff_ff02, true),
            (0x0000_0000_0000_0002, false),
            (0x0100_0000_0000_0003, false),
        ] {
            check(&f, v, w);
        }
    }

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        let with = |path: &[&str], value: Value| {
            let mut v = podman();
            let mut at = &mut v;
            for p in &path[..path.len() - 1] {
                at = at.get_mut(*p).unwrap();
            }
            at[path[path.len() - 1]] = value;
            refused(v)
        };
        let e = with(&["hooks"], json!({"prestart": [{"path": "/bin/true"}]}));
        assert!(e.contains("hooks"), "{e}");
        let e = with(&["ociVersion"], json!("0.5.0"));
        assert!(e.contains("ociVersion"), "{e}");
        let e = with(&["process", "apparmorProfile"], json!("unconfined"));
        assert!(e.contains("process.apparmorProfile"), "{e}");
        let e = with(&["process", "user", "username"], json!("bob"));
        assert!(e.contains("process.user.username"), "{e}");
        let e = with(
            &["linux", "uidMappings"],
            json!([{"containerID": 0, "hostID": 1000, "size": 1}]),
        );
        assert!(e.contains("linux.uidMappings"), "{e}");
        let e = with(&["linux", "sysctl"], json!({"net.ipv4.ip_forward": "1"}));
        assert!(e.contains("linux.sysctl"), "{e}");
        let e = with(
            &["linux", "namespaces"],
            json!([{"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]),
        );
        assert!(e.contains("linux.namespaces (pid)"), "{e}");
        let e = with(
            &["linux", "namespaces"],
            json!([{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "user"}]),
        );
        assert!(e.contains("linux.namespaces (user)"), "{e}");
        let e = with(
            &["linux", "namespaces"],
            json!([{"type": "pid", "path": "/proc/1/ns/pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]),
        );
        assert!(e.contains("linux.namespaces (pid)"), "{e}");
        let e = with(
            &["linux", "resources", "devices"],
            json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}]),
        );
        assert!(e.contains("linux.resources.devices[1]"), "{e}");
        let e = with(&["linux", "resources", "cpu"], json!({"shares": 512}));
        assert!(e.contains("linux.resources.cpu"), "{e}");
        let e = with(
            &["linux", "resources", "memory"],
            json!({"limit": 1_000_000, "swap": 5_000_000}),
        );
        assert!(e.contains("linux.resources.memory.swap"), "{e}");
        let e = with(
            &["linux", "seccomp", "defaultAction"],
            json!("SCMP_ACT_NOTIFY"),
        );
        assert!(e.contains("linux.seccomp.defaultAction"), "{e}");
        let e = with(&["linux", "seccomp", "listenerPath"], json!("/run/x.sock"));
        assert!(e.contains("linux.seccomp.listenerPath"), "{e}");

        let mount = |m: Value| {
            let mut v = podman();
            v["mounts"].as_array_mut().unwrap().push(m);
            refused(v)
        };
        let e = mount(json!({"destination": "/mnt", "type": "nfs", "source": "host:/x"}));
        assert!(e.contains("mounts[11] (/mnt)") && e.contains("nfs"), "{e}");
        let e = mount(
            json!({"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "rshared"]}),
        );
        assert!(
            e.contains("mounts[11] (/data)") && e.contains("rshared"),
            "{e}"
        );
        let mut v = podman();
        v["mounts"][2]["options"] = json!(["nosuid", "noexec", "nodev", "rw"]);
        let e = refused(v);
        assert!(
            e.contains("mounts[2] (/sys)") && e.contains("writable"),
            "{e}"
        );
    }

    #[test]
    fn defaults_and_optional_fields() {
        let mut v = podman();
        v["root"]["readonly"] = json!(true);
        v["process"]["terminal"] = json!(true);
        v["process"]["consoleSize"] = json!({"height": 40, "width": 120});
        v["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
        // No network namespace: the host's.
        v["linux"]["namespaces"] =
            json!([{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]);
        v["linux"].as_object_mut().unwrap().remove("seccomp");
        // A non-root user keeps only the capabilities also in its ambient set.
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 27]});
        v["process"]["capabilities"]["ambient"] = json!(["CAP_CHOWN"]);
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m", "mode=1777"]}));
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/data", "type": "none", "source": "data", "options": ["rbind", "ro"]}));
        let c = map(v).unwrap();
        let s = &c.spec;
        assert_eq!(s.root_mode, RootMode::ReadOnly);
        assert!(c.terminal);
        assert_eq!(c.console_size, Some((40, 120)));
        assert_eq!(s.memory_limit, Some(64 << 20));
        assert!(s.share_net && s.join_netns.is_none());
        assert!(s.extra_seccomp.is_none());
        assert_eq!(s.user, Some((1000, 1000)));
        assert_eq!(s.additional_gids, [5, 27]);
        assert_eq!(s.umask, None);
        assert_eq!(s.capabilities.names().collect::<Vec<_>>(), ["CHOWN"]);
        let scratch = s
            .kernel_mounts
            .iter()
            .find(|m| m.target == Path::new("/scratch"))
            .unwrap();
        assert_eq!(scratch.fstype, "tmpfs");
        assert_eq!(scratch.flags, libc::MS_NOSUID);
        assert_eq!(scratch.data, "size=1m,mode=1777");
        // A relative bind source is relative to the bundle.
        let data = s
            .binds
            .iter()
            .find(|b| b.target == Path::new("/data"))
            .unwrap();
        assert_eq!(data.source, Path::new("/bundle/data"));
        assert!(data.read_only);
    }
}
