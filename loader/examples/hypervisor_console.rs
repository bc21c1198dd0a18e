//! A hypervisor console in miniature: the embedder creates its own pty, gives the
//! loader the slave (a borrowed terminal that the loader is *not* the foreground of,
//! so the terminal-signal listener reports ^C, ^\, ^Z, resizes and hangup), and serves
//! the master to one client over a unix socket (SCM_RIGHTS). The client is then the
//! console: it types, reads, resizes (TIOCSWINSZ on the master) and hangs up (closing
//! it). The example exits with the program's status.
//!
//! ```sh
//! cargo run -p sandbox-loader --example hypervisor_console -- /run/console.sock bash
//! ```

use sandbox_loader::{Sandbox, SandboxSpec};
use std::io::IoSlice;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

fn main() {
    match serve() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("hypervisor_console: {e}");
            std::process::exit(125);
        }
    }
}

fn serve() -> Result<i32, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let socket = args
        .next()
        .ok_or("usage: hypervisor_console SOCKET PROGRAM [ARGS...]")?;
    let argv: Vec<String> = args.collect();
    if argv.is_empty() {
        return Err("usage: hypervisor_console SOCKET PROGRAM [ARGS...]".into());
    }
    // Our own pty; glibc's openpty opens the slave with O_NOCTTY, so it is nobody's
    // controlling terminal and the loader's listener can take it.
    let pty = nix::pty::openpty(None, None)?;
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)?;

    let mut spec = SandboxSpec::new(argv);
    spec.terminal = Some(pty.slave);
    spec.terminal_stdio = true;
    spec.terminal_listener = true;
    // Start before any thread of ours exists (the loader clones this process).
    let sandbox = Sandbox::start(spec)?;
    println!("console ready on {socket}");

    let (client, _) = listener.accept()?;
    let fds = [pty.master.as_raw_fd()];
    nix::sys::socket::sendmsg::<()>(
        client.as_raw_fd(),
        &[IoSlice::new(b"console")],
        &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
        nix::sys::socket::MsgFlags::empty(),
        None,
    )?;
    // The client holds the only master now: closing it hangs the console up.
    drop(pty.master);
    let outcome = sandbox.wait()?;
    eprintln!(
        "hypervisor_console: the program ended with status {}",
        outcome.exit_code()
    );
    Ok(outcome.exit_code())
}
