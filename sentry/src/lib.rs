//! # sandbox-sentry
//!
//! A deterministic, host-free model of Linux job control: tasks, thread groups,
//! process groups, sessions, signals (dispositions, masks, group stop and continue,
//! SIGCHLD), `wait4`/`waitid`, and terminals with their foreground process group and
//! background rules. Every answer is a Linux errno.
//!
//! The sandbox's loader consults it for every job-control decision about real
//! processes; tests drive it directly:
//!
//! ```
//! use sandbox_sentry::{Kernel, Signal, OpenFlags, wait::WUNTRACED};
//!
//! let mut k = Kernel::new();
//! let tty = k.create_pty();
//! // A shell: its own session, the terminal as controlling terminal.
//! let sh = k.fork(Kernel::INIT).unwrap();
//! k.setsid(sh).unwrap();
//! let fd = k.open_tty(sh, tty, OpenFlags::RDWR).unwrap();
//! // A job in its own process group, put in the foreground.
//! let job = k.fork(sh).unwrap();
//! k.setpgid(sh, job, job).unwrap();
//! k.tcsetpgrp(sh, fd, job).unwrap();
//! // ^Z at the terminal stops it; the shell's wait sees the stop.
//! k.master_write(tty, b"\x1a").unwrap();
//! let st = k.wait4(sh, -1, WUNTRACED).unwrap().ready().flatten().unwrap();
//! assert_eq!((st.pid, st.wait_status), (job, (Signal::SIGTSTP.number() << 8) | 0x7f));
//! ```
//!
//! See `docs/SEMANTICS.md` for every rule and where it is tested.

pub mod clone;
pub mod delivery;
pub mod delivery_mode;
pub mod errno;
pub mod event;
pub mod exit;
pub mod file;
pub mod host;
pub mod kernel;
pub mod kill;
pub mod ldisc;
pub mod pending;
pub mod pid;
pub mod process_group;
pub mod session;
pub mod sigaction;
pub mod signal;
pub mod task;
pub mod termios;
pub mod thread_group;
pub mod tty;
pub mod wait;

pub use clone::CloneArgs;
pub use delivery_mode::{DeliveryError, DeliveryMode};
pub use errno::{Errno, SysResult};
pub use event::{BlockOn, Disposition, Event, SignalTarget};
pub use exit::ExitStatus;
pub use file::{FileId, OpenFlags};
pub use host::{HostProcess, HostSignal, HostTarget};
pub use kernel::{Kernel, KernelConfig, Snapshot};
pub use kill::SigmaskHow;
pub use pending::{SiCode, SigInfo};
pub use pid::Pid;
pub use sigaction::{Handler, SigAction};
pub use signal::{SigSet, Signal};
pub use termios::{Termios, Winsize};
pub use tty::{Blocking, FlowAction, FlushQueue, SetTermiosAction, TtyId, TtyKind};
pub use wait::{IdType, WaitInfo};
