//! What a process started through the entry point does (see `crate::sys::entry`): it
//! owns its control socket, resets its signal mask (inherited from the loader across
//! the clone and the exec), reads its plan ([`crate::control::Message::Init`] or
//! [`crate::control::Message::Exec`]) and runs as the sandbox's init or as an exec
//! helper ([`crate::init`]).

use crate::control::{self, Message};
use crate::init;
use std::os::fd::AsRawFd;

/// The role of the sandbox's init.
pub(crate) const INIT: &str = "init";
/// The role of an exec helper.
pub(crate) const EXEC: &str = "exec";

/// Runs the entry's role; returns the process's exit code.
pub(crate) fn main(role: &[u8], fd: &[u8]) -> i32 {
    let Some(fd) = std::str::from_utf8(fd)
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
    else {
        return init::SETUP_FAILED;
    };
    if fd < 0 {
        return init::SETUP_FAILED;
    }
    // Given to us across exec by the loader: we are its only owner here.
    let control = crate::sys::fd::own_received(fd);
    let _ = crate::sys::fd::set_cloexec(control.as_raw_fd());
    let _ = crate::sys::signal::set_mask(&nix::sys::signal::SigSet::empty());
    let raw = control.as_raw_fd();
    let plan = match control::recv_plan(raw) {
        Ok(Some(m)) => m,
        Ok(None) => return init::SETUP_FAILED,
        Err(e) => {
            let _ = control::send(raw, &Message::SetupFailed(format!("the plan: {e}")));
            return init::SETUP_FAILED;
        }
    };
    match (role, plan) {
        (r, Message::Init(plan)) if r == INIT.as_bytes() => init::init_main(&plan, raw),
        (r, Message::Exec(plan)) if r == EXEC.as_bytes() => init::exec_helper_main(&plan, raw),
        _ => {
            let _ = control::send(
                raw,
                &Message::SetupFailed("the plan does not match the role".into()),
            );
            init::SETUP_FAILED
        }
    }
}
