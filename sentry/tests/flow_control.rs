//! Output flow control (IXON, IXANY, TCXONC), one test per Linux rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_sentry::*;

/// A shell in its own session holding a fresh pty as controlling terminal (fd 0).
fn shell() -> (Kernel, TtyId, Pid) {
    let mut k = Kernel::new();
    let tty = k.create_pty();
    let sh = k.fork(Kernel::INIT).unwrap();
    k.setsid(sh).unwrap();
    assert_eq!(k.open_tty(sh, tty, OpenFlags::RDWR).unwrap(), 0);
    k.take_events();
    (k, tty, sh)
}

fn woken(k: &mut Kernel, tid: Pid) -> bool {
    k.take_events()
        .iter()
        .any(|e| matches!(e, Event::Wakeup { tid: t, on: BlockOn::TtyWrite(_) } if *t == tid))
}

/// Linux: while output is stopped by VSTOP the echoes of typed input are held (the
/// master reads nothing) but the input is buffered; VSTART outputs them in order.
#[test]
fn vstop_holds_echoes_until_vstart() {
    let (mut k, tty, sh) = shell();
    k.master_write(tty, b"a\x13bc\n").unwrap();
    assert!(k.master_read(tty).unwrap().is_empty(), "echoes held");
    assert_eq!(k.read(sh, 0, 16), Ok(Blocking::Ready(b"abc\n".to_vec())));
    k.master_write(tty, b"\x11").unwrap();
    assert_eq!(k.master_read(tty).unwrap(), b"abc\r\n");
}

/// Linux: a write while output is stopped writes nothing and sleeps; an O_NONBLOCK
/// write fails with EAGAIN; VSTART wakes the sleeping writer, whose retry writes.
#[test]
fn write_sleeps_while_stopped_and_completes_after_vstart() {
    let (mut k, tty, sh) = shell();
    let nb = k.fork(sh).unwrap();
    let flags = OpenFlags {
        nonblock: true,
        ..OpenFlags::RDWR
    };
    let fd = k.open_tty(nb, tty, flags).unwrap();
    k.master_write(tty, b"\x13").unwrap();
    assert_eq!(
        k.write(sh, 0, b"out"),
        Ok(Blocking::WouldBlock(BlockOn::TtyWrite(tty)))
    );
    assert_eq!(k.write(nb, fd, b"x"), Err(Errno::EAGAIN));
    assert!(k.master_read(tty).unwrap().is_empty());
    k.take_events();
    k.master_write(tty, b"\x11").unwrap();
    assert!(woken(&mut k, sh), "VSTART wakes the writer");
    assert_eq!(k.write(sh, 0, b"out"), Ok(Blocking::Ready(3)));
    assert_eq!(k.master_read(tty).unwrap(), b"out");
}

/// Linux: an ISIG character signals the foreground group while output is stopped; its
/// flush drops the held echoes, and with IXON it restarts output (its echo goes out).
#[test]
fn isig_char_signals_drops_held_echoes_and_restarts_output() {
    let (mut k, tty, sh) = shell();
    k.sigaction(sh, Signal::SIGINT.number(), Some(SigAction::catch(0)))
        .unwrap();
    k.master_write(tty, b"\x13ab").unwrap();
    k.take_events();
    k.master_write(tty, b"\x03").unwrap();
    assert!(k.events().iter().any(|e| matches!(
        e,
        Event::SignalGenerated {
            sig: Signal::SIGINT,
            ..
        }
    )));
    assert!(!k.tty(tty).unwrap().ldisc.output_stopped());
    assert_eq!(k.master_read(tty).unwrap(), b"^C");
}

/// Linux: with IXANY any typed character restarts output stopped by VSTOP; VSTOP
/// itself does not.
#[test]
fn ixany_any_character_restarts_output() {
    let (mut k, tty, sh) = shell();
    let mut t = k.tcgetattr(sh, 0).unwrap();
    t.iflag |= termios::IXANY;
    k.tcsetattr(sh, 0, SetTermiosAction::Now, t).unwrap();
    k.master_write(tty, b"\x13a").unwrap();
    assert_eq!(k.master_read(tty).unwrap(), b"a");
    k.master_write(tty, b"\x13\x13").unwrap();
    assert!(k.tty(tty).unwrap().ldisc.output_stopped());
}

/// Linux: switching IXON off restarts output stopped by VSTOP and wakes writers.
#[test]
fn clearing_ixon_restarts_output() {
    let (mut k, tty, sh) = shell();
    let w = k.fork(sh).unwrap();
    k.master_write(tty, b"\x13a").unwrap();
    assert!(k.write(w, 0, b"x").unwrap().ready().is_none());
    k.take_events();
    let mut t = k.tcgetattr(sh, 0).unwrap();
    t.iflag &= !termios::IXON;
    k.tcsetattr(sh, 0, SetTermiosAction::Now, t).unwrap();
    assert!(woken(&mut k, w));
    assert_eq!(k.master_read(tty).unwrap(), b"a");
}

/// Linux: TCOOFF stops output until TCOON (VSTART does not end it); TCOON wakes the
/// writers but leaves the held echoes for the next echo or write.
#[test]
fn tcooff_is_ended_only_by_tcoon() {
    let (mut k, tty, sh) = shell();
    k.tcflow(sh, 0, FlowAction::OutputOff).unwrap();
    k.master_write(tty, b"a\x11b").unwrap();
    assert!(k.tty(tty).unwrap().ldisc.output_stopped());
    assert!(k.master_read(tty).unwrap().is_empty());
    k.tcflow(sh, 0, FlowAction::OutputOn).unwrap();
    assert!(k.master_read(tty).unwrap().is_empty(), "echoes still held");
    assert_eq!(k.write(sh, 0, b"!"), Ok(Blocking::Ready(1)));
    assert_eq!(k.master_read(tty).unwrap(), b"ab!");
}

/// Linux: a hangup wakes a writer sleeping while output is stopped: EIO.
#[test]
fn hangup_wakes_sleeping_writer_with_eio() {
    let (mut k, tty, sh) = shell();
    let w = k.fork(sh).unwrap();
    k.sigaction(sh, Signal::SIGHUP.number(), Some(SigAction::ignore()))
        .unwrap();
    k.master_write(tty, b"\x13").unwrap();
    assert!(k.write(w, 0, b"x").unwrap().ready().is_none());
    k.take_events();
    k.master_close(tty).unwrap();
    assert!(woken(&mut k, w));
    assert_eq!(k.write(w, 0, b"x"), Err(Errno::EIO));
}
