//! sandbox-loader: runs real programs in a sandbox whose job control is decided by the
//! sentry (`sandbox-sentry`). See `docs/LOADER.md` for the architecture.
//!
//! Layout (one concept per module):
//! - [`sandbox`]: the spec, start-up and the supervision loop ([`run`]).
//! - `core`: the container core, single owner of the sentry and the tracker (through
//!   the supervisor): signals by delivery mode, exit statuses kept until waited for,
//!   the process table, executing into a running sandbox.
//! - [`exec`]: the exec API's types ([`ExecSpec`], [`ExecTerminal`], [`ExecHandle`],
//!   [`ProcessInfo`]).
//! - `control`: the typed control protocol between the loader and init / exec helpers
//!   (encoding and decoding for both ends).
//! - `entry`: what init and exec helpers run: the loader's own binary re-executed
//!   (`sys::entry`: the `.init_array` constructor that recognises them before `main`).
//! - [`spawn`]: creating a process in new namespaces (clone3, clone, fork fallbacks).
//! - `init`: the sandbox's PID 1, the exec helper, and the program's last steps before
//!   exec.
//! - `supervisor`: the sentry's answers to notified system calls, host signals, the
//!   sandbox's terminals (each a `Binding`: borrowed or owned pty).
//! - `tracker`: keeping the sentry in lockstep with the host's processes.
//! - [`seccomp`]: the sandbox's seccomp programs (deny list, notify filter, the
//!   loader's own allow-list) and the user-notification listener.
//! - [`mounts`]: the sandbox's filesystem view (read-only host root, /tmp, /proc, /dev).
//! - [`userns`]: the uid/gid maps of the sandbox's user namespace (non-root loader).
//! - [`procfs`]: what `/proc` says about a process.
//! - [`tty_listener`]: a process that receives a terminal's signals for the loader when
//!   the loader is not in that terminal's foreground group.
//! - `sys`: every raw system call wrapper (`unsafe` lives only there).
//!
//! # Embedding
//!
//! A hypervisor or another runtime starts a sandbox with [`Sandbox::start`], follows
//! it through [`Sandbox::events`], signals it by delivery mode, resizes its terminal
//! and destroys it; the embedder's own signal handlers are left alone unless it opts
//! in to [`SandboxSpec::forward_signals`] (what `sandbox run` does). Needs root, or
//! user namespaces for an unprivileged caller.
//!
//! ```
//! use sandbox_loader::{Sandbox, SandboxEvent, SandboxSpec, SignalMode};
//!
//! let mut spec = SandboxSpec::new(vec!["sh".into(), "-c".into(), "hostname; exit 3".into()]);
//! spec.hostname = Some("guest".into());
//! let sandbox = Sandbox::start(spec)?;
//! // Events arrive as the program runs: here only its end.
//! let outcome = sandbox.wait()?;
//! assert_eq!(outcome.exit_code(), 3);
//! assert!(matches!(
//!     sandbox.events().try_recv(),
//!     Ok(SandboxEvent::ProgramExited { .. })
//! ));
//! # let _ = SignalMode::Foreground;
//! # Ok::<(), sandbox_loader::LoaderError>(())
//! ```
//!
//! A terminal comes two ways: [`SandboxSpec::terminal`] borrows one (the sentry
//! enforces job control on it), [`SandboxSpec::owned_pty`] gives the sandbox a pty of
//! its own, proxied or handed to a console socket (the host enforces, the sentry
//! approves). See `docs/LOADER.md`.
pub use sandbox_sentry as sentry;

pub mod capability;
pub mod cgroup;
pub(crate) mod control;
pub(crate) mod core;
pub(crate) mod entry;
pub mod exec;
pub mod host_kernel;
pub(crate) mod init;
pub mod mounts;
pub mod oci;
pub mod procfs;
pub(crate) mod pty_ioctl;
pub mod sandbox;
pub mod seccomp;
pub mod spawn;
pub(crate) mod supervisor;
pub(crate) mod sys;
pub(crate) mod tracker;
pub mod tty_listener;
pub mod tty_restorer;
pub mod userns;

pub use capability::CapSet;
pub use exec::{ExecEvent, ExecHandle, ExecSpec, ExecTerminal, ProcessInfo};
pub use sandbox::DEFAULT_PIDS_LIMIT;
pub use sandbox::{
    run, LoaderError, OwnedPty, RunOutcome, Sandbox, SandboxEvent, SandboxSpec, SignalMode,
    TerminalAttach,
};
pub use spawn::SpawnMethod;
pub use supervisor::NotifyStats;
