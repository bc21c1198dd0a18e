//! The emulated line discipline (Linux `drivers/tty/n_tty.c`, N_TTY), used by
//! [`crate::tty::TtyKind::Emulated`] terminals. It is pure data processing: it never
//! sends a signal itself but returns [`LdiscEffect::Signal`] for the TTY layer to send
//! to the foreground process group.
//!
//! Input (bytes typed at the master), in n_tty's order for each byte:
//! 1. After VLNEXT (IEXTEN, canonical mode) the byte is taken literally.
//! 2. ISTRIP strips bit 7.
//! 3. IXON: VSTART/VSTOP are consumed. VSTOP stops output ([`FlowControl`]): the
//!    echoes of what is typed next, and of the bytes of the same batch typed before
//!    it, are held and writes sleep (EAGAIN if non-blocking); typing VSTOP again
//!    changes nothing. VSTART restarts output (not a TCOOFF stop): the held echoes
//!    come out in order and the writers wake. Without IXON both are ordinary
//!    characters; switching IXON off restarts output. With IXANY any other received
//!    character restarts output before it is processed. TCXONC's TCOOFF/TCOON:
//!    [`LineDiscipline::tco_stop`], [`LineDiscipline::tco_start`].
//! 4. ISIG: VINTR → SIGINT, VQUIT → SIGQUIT, VSUSP → SIGTSTP. Unless NOFLSH, unread
//!    input (complete lines and the line being edited) is discarded first, and so
//!    are the echoes of the same batch of typed bytes that had not reached the
//!    terminal yet (n_tty's echo buffer, with the echoes held while output is
//!    stopped); output already delivered stays. The signal is sent even while output
//!    is stopped, and with IXON the character restarts output. The character is
//!    echoed (as `^C` with ECHOCTL) when ECHO is set.
//! 5. `\r`: dropped with IGNCR, else `\n` with ICRNL; `\n` becomes `\r` with INLCR.
//! 6. Canonical mode (ICANON): VERASE erases one character, VWERASE (IEXTEN) the
//!    previous word (trailing non-word characters, then word characters), VKILL the
//!    line; VREPRINT (IEXTEN, ECHO) reprints the line; `\n`, VEOL and VEOL2 (IEXTEN)
//!    end a line and are part of it; VEOF ends a line without being part of it, and at
//!    the start of a line makes one read return 0 (end of file). Erasing at the start
//!    of a line does nothing.
//! 7. Echo (ECHO): characters as typed, control characters other than `\t` and `\n` as
//!    `^X` with ECHOCTL (DEL as `^?`); ECHONL echoes `\n` in canonical mode even without
//!    ECHO; VEOF is not echoed. Erase echo: with ECHOE `\b \b` per column (two for a
//!    `^X` shown with ECHOCTL, a tab goes back to where it started), without ECHOE the
//!    erase character itself. Kill echo: without ECHOK/ECHOKE/ECHOE all set, the kill
//!    character then `\n` if ECHOK; with all three the line is erased visually. In
//!    non-canonical mode a `\n` that was typed as such is an ordinary character (shown
//!    `^J` under ECHOCTL), while a `\r` turned into `\n` by ICRNL echoes as a newline.
//! 8. At most 4095 bytes are buffered (N_TTY_BUF_SIZE − 1); further input is dropped,
//!    except that in canonical mode a line terminator replaces the last byte so the
//!    line can still be completed.
//!
//! Reads: in canonical mode a read returns at most one line (a line longer than the
//! read continues at the next read) and would block until a line is complete; in
//! non-canonical mode whatever is buffered, and with VMIN = 0 and VTIME = 0 an empty
//! buffer reads as 0 bytes; otherwise it would block (VTIME timers are not modelled).
//! Switching ICANON off makes everything buffered readable; switching it on turns
//! buffered data into one readable line.
//!
//! Echoes reach the terminal when a batch of typed bytes ends (if the batch echoed
//! anything), when VSTART or IXANY restarts output, and when a write starts — never
//! while output is stopped. A write that was asleep while output was stopped does not
//! output held echoes when woken (only the start of a write call does).
//!
//! Output (writes and echoes) with OPOST: ONLCR `\n` → `\r\n`, OCRNL `\r` → `\n`,
//! ONOCR drops `\r` at column 0, ONLRET makes `\n` return to column 0; the output
//! column is tracked as n_tty does (tabs to the next multiple of 8, backspace back
//! one). Tab expansion (XTABS), OLCUC, IUCLC/XCASE, PARMRK, ECHOPRT and packet mode
//! are not emulated.

use crate::signal::Signal;
use crate::termios::*;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// `N_TTY_BUF_SIZE`.
pub const N_TTY_BUF_SIZE: usize = 4096;

/// Something the line discipline asks the TTY layer to do, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LdiscEffect {
    /// An ISIG character was received: send this signal to the foreground process
    /// group (the queues were already flushed unless NOFLSH, and the char echoed).
    Signal(Signal),
    /// Stopped output was restarted (`start_tty`): wake the writers.
    OutputStarted,
}

/// Result of a read attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LdiscRead {
    /// Bytes read (never empty).
    Data(Vec<u8>),
    /// A read that returns 0: end of file in canonical mode, or nothing buffered with
    /// VMIN = 0 and VTIME = 0.
    Eof,
    /// Nothing to read yet.
    WouldBlock,
}

/// A byte of the input buffer: data, or the VEOF marker that ends a line without
/// being part of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Slot {
    Byte(u8),
    Eof,
}

/// The N_TTY state of one terminal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineDiscipline {
    /// Input not yet read: committed lines, then the line being edited.
    buf: VecDeque<Slot>,
    /// In canonical mode: how many slots at the front of `buf` form complete lines.
    committed: usize,
    /// Lengths of the complete lines in `buf[..committed]`, in order.
    lines: VecDeque<usize>,
    /// Output not yet read by the master.
    out: Vec<u8>,
    /// n_tty's echo buffer: echoes (already through output processing, the columns
    /// moved) that have not reached the terminal yet. Emptied into `out` by
    /// [`Self::process_echoes`] unless output is stopped; an ISIG flush discards it.
    echo: Vec<u8>,
    /// `(column, canon_column)` as of the last byte that reached the terminal: where
    /// the columns go back to when the echo buffer is discarded.
    echo_columns: (u32, u32),
    /// The current batch of typed bytes added echoes (n_tty's `echo_commit !=
    /// echo_head` at the batch's `flush_echoes`).
    echo_added: bool,
    /// Output flow control (`tty->flow`).
    flow: FlowControl,
    /// Output column (`ldata->column`).
    column: u32,
    /// Column where the line being edited started (`ldata->canon_column`).
    canon_column: u32,
    /// VLNEXT seen: the next byte is literal.
    lnext: bool,
}

/// Output flow control of a terminal (Linux `tty->flow`).
///
/// The Linux rules (`stop_tty`/`start_tty` in `tty_io.c`, `pty_write`/`pty_write_room`
/// in `pty.c`, `n_tty_write`):
/// - While output is stopped the pty slave's driver accepts no byte: echoes stay in
///   n_tty's echo buffer and a write makes no progress (it sleeps, or fails with
///   EAGAIN on an O_NONBLOCK description). Nothing new reaches the master.
/// - Stopping an already stopped terminal does nothing; so does starting one that is
///   not stopped.
/// - A stop made by TCXONC's TCOOFF (`tco_stopped`) is ended only by TCOON: VSTART,
///   IXANY, ISIG characters and switching IXON off do not restart that output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowControl {
    /// Output is stopped (`flow.stopped`): by VSTOP (IXON) or TCOOFF.
    pub stopped: bool,
    /// The stop came from TCOOFF (`flow.tco_stopped`).
    pub tco_stopped: bool,
}

fn is_cntrl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

impl LineDiscipline {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether output is stopped (VSTOP with IXON, or TCOOFF).
    pub fn output_stopped(&self) -> bool {
        self.flow.stopped
    }

    /// The flow-control state.
    pub fn flow(&self) -> FlowControl {
        self.flow
    }

    /// `__start_tty`: ends a stop that did not come from TCOOFF. Returns whether
    /// output was restarted (the TTY layer then wakes the writers).
    fn start_output(&mut self) -> bool {
        if !self.flow.stopped || self.flow.tco_stopped {
            return false;
        }
        self.flow.stopped = false;
        true
    }

    /// TCXONC TCOOFF: output stops (if it was not stopped already) and only TCOON
    /// restarts it.
    pub fn tco_stop(&mut self) {
        if !self.flow.tco_stopped {
            self.flow.tco_stopped = true;
            self.flow.stopped = true;
        }
    }

    /// TCXONC TCOON: ends a TCOOFF stop; returns whether output was restarted. The
    /// held echoes are not output here: they go out with the next write or the next
    /// typed batch that echoes (Linux calls no `process_echoes` on this path).
    pub fn tco_start(&mut self) -> bool {
        if !self.flow.tco_stopped {
            return false;
        }
        self.flow.tco_stopped = false;
        self.start_output()
    }

    /// `process_echoes`: the held echoes reach the terminal, unless output is stopped
    /// (the driver has no room then: they stay held, in order).
    fn process_echoes(&mut self) {
        if self.flow.stopped {
            return;
        }
        self.out.append(&mut self.echo);
        self.echo_columns = (self.column, self.canon_column);
    }

    /// The ISIG flush of n_tty's echo buffer: held echoes are dropped and the columns
    /// go back to where the terminal's output left them.
    fn discard_echoes(&mut self) {
        self.echo.clear();
        (self.column, self.canon_column) = self.echo_columns;
    }

    /// IXANY: while output is stopped by VSTOP (not TCOOFF), any received character
    /// restarts it before it is processed, and the held echoes go out
    /// (`n_tty_receive_char`, `n_tty_receive_char_special` after the ISIG check).
    fn ixany_restart(&mut self, t: &Termios, effects: &mut Vec<LdiscEffect>) {
        if self.flow.stopped && t.iflag(IXON) && t.iflag(IXANY) && self.start_output() {
            effects.push(LdiscEffect::OutputStarted);
            self.process_echoes();
        }
    }

    /// `echo_set_canon_col`: the line being edited starts at the current column.
    fn set_canon_col(&mut self) {
        self.canon_column = self.column;
        self.echo_added = true;
    }

    // ---- output ------------------------------------------------------------------

    /// `do_output_char` (and the raw path without OPOST).
    fn output_char(&mut self, t: &Termios, c: u8) {
        if !t.oflag(OPOST) {
            self.echo.push(c);
            return;
        }
        match c {
            b'\n' => {
                if t.oflag(ONLRET) {
                    self.column = 0;
                }
                if t.oflag(ONLCR) {
                    self.column = 0;
                    self.canon_column = 0;
                    self.echo.extend_from_slice(b"\r\n");
                    return;
                }
                self.canon_column = self.column;
            }
            b'\r' => {
                if t.oflag(ONOCR) && self.column == 0 {
                    return;
                }
                if t.oflag(OCRNL) {
                    if t.oflag(ONLRET) {
                        self.column = 0;
                        self.canon_column = 0;
                    }
                    self.echo.push(b'\n');
                    return;
                }
                self.column = 0;
                self.canon_column = 0;
            }
            b'\t' => self.column += 8 - (self.column & 7),
            0x08 => self.column = self.column.saturating_sub(1),
            c if !is_cntrl(c) => self.column += 1,
            _ => {}
        }
        self.echo.push(c);
    }

    /// `echo_char`: `^X` for control characters under ECHOCTL (not `\t`).
    fn echo_char(&mut self, t: &Termios, c: u8) {
        self.echo_added = true;
        if t.lflag(ECHOCTL) && is_cntrl(c) && c != b'\t' {
            self.echo.push(b'^');
            self.echo.push(c ^ 0o100);
            self.column += 2;
        } else {
            self.output_char(t, c);
        }
    }

    /// `echo_char_raw`.
    fn echo_raw(&mut self, t: &Termios, c: u8) {
        self.echo_added = true;
        self.output_char(t, c);
    }

    /// A write by a process (`n_tty_write`): the data through output processing.
    /// Returns the bytes consumed: all of them, or none while output is stopped (the
    /// pty driver has no room: the caller sleeps until output restarts, or fails with
    /// EAGAIN if non-blocking). Echoes still held (output restarted by TCOON) stay
    /// held: only [`Self::start_write`] outputs them. (Their columns were counted when
    /// they were typed: a write that overtakes them is placed after them.)
    pub fn write(&mut self, termios: &Termios, data: &[u8]) -> usize {
        if self.flow.stopped {
            return 0;
        }
        let held = std::mem::take(&mut self.echo);
        for &c in data {
            self.output_char(termios, c);
        }
        self.out.append(&mut self.echo);
        self.echo = held;
        if self.echo.is_empty() {
            self.echo_columns = (self.column, self.canon_column);
        }
        data.len()
    }

    /// The start of a write call (`n_tty_write` before its loop): held echoes go out
    /// first, unless output is stopped. A writer woken after output restarted does
    /// not do this again.
    pub fn start_write(&mut self) {
        self.process_echoes();
    }

    /// Everything output and not yet read by the master; empties the queue.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn output_len(&self) -> usize {
        self.out.len()
    }

    // ---- input -------------------------------------------------------------------

    /// Discards unread input (TCIFLUSH, the ISIG flush).
    pub fn flush_input(&mut self) {
        self.buf.clear();
        self.lines.clear();
        self.committed = 0;
        self.lnext = false;
    }

    fn editing(&self) -> usize {
        self.buf.len() - self.committed
    }

    fn room(&self) -> bool {
        self.buf.len() < N_TTY_BUF_SIZE - 1
    }

    fn put(&mut self, s: Slot) {
        if self.room() {
            self.buf.push_back(s);
        }
    }

    /// Ends the line being edited with `end` (a terminator byte or the EOF marker).
    fn commit_line(&mut self, end: Slot) {
        if !self.room() {
            // Full: the terminator replaces the last byte of the line being edited.
            if self.editing() > 0 {
                self.buf.pop_back();
            } else {
                return;
            }
        }
        self.buf.push_back(end);
        let len = self.buf.len() - self.committed;
        self.lines.push_back(len);
        self.committed = self.buf.len();
    }

    /// Whether `c` takes n_tty's special path (its `char_map`).
    fn is_special(t: &Termios, c: u8) -> bool {
        (c == b'\r' && (t.iflag(IGNCR) || t.iflag(ICRNL)))
            || (c == b'\n' && t.iflag(INLCR))
            || (t.lflag(ICANON)
                && (c == b'\n'
                    || t.is_cc(VERASE, c)
                    || t.is_cc(VKILL, c)
                    || t.is_cc(VEOF, c)
                    || t.is_cc(VEOL, c)
                    || (t.lflag(IEXTEN)
                        && (t.is_cc(VWERASE, c)
                            || t.is_cc(VLNEXT, c)
                            || t.is_cc(VEOL2, c)
                            || (t.lflag(ECHO) && t.is_cc(VREPRINT, c))))))
            || (t.iflag(IXON) && (t.is_cc(VSTART, c) || t.is_cc(VSTOP, c)))
            || (t.lflag(ISIG) && (t.is_cc(VINTR, c) || t.is_cc(VQUIT, c) || t.is_cc(VSUSP, c)))
    }

    /// Bytes typed at the master.
    pub fn receive(&mut self, termios: &Termios, input: &[u8]) -> Vec<LdiscEffect> {
        let t = termios;
        let mut effects = Vec::new();
        // Echoes of this batch stay in n_tty's echo buffer until the batch ends (with
        // those held while output is stopped); an ISIG flush discards them. The output
        // columns only move when echoes are output (`process_echoes`), canon_column
        // included (an echo op): discarded echoes leave them as they were.
        self.echo_added = false;
        for &raw in input {
            let mut c = raw;
            if self.lnext {
                self.lnext = false;
                if t.iflag(ISTRIP) {
                    c &= 0x7f;
                }
                self.receive_plain(t, c, &mut effects);
                continue;
            }
            if t.iflag(ISTRIP) {
                c &= 0x7f;
            }
            if !Self::is_special(t, c) {
                self.receive_plain(t, c, &mut effects);
                continue;
            }
            // IXON (`n_tty_receive_char_flow_ctrl`): VSTART restarts output (unless
            // TCOOFF stopped it) and the held echoes go out; VSTOP stops output (again
            // if already stopped: nothing changes). Both are consumed.
            if t.iflag(IXON) {
                if t.is_cc(VSTART, c) {
                    if self.start_output() {
                        effects.push(LdiscEffect::OutputStarted);
                    }
                    self.process_echoes();
                    continue;
                }
                if t.is_cc(VSTOP, c) {
                    self.flow.stopped = true;
                    continue;
                }
            }
            if t.lflag(ISIG) {
                let sig = if t.is_cc(VINTR, c) {
                    Some(Signal::SIGINT)
                } else if t.is_cc(VQUIT, c) {
                    Some(Signal::SIGQUIT)
                } else if t.is_cc(VSUSP, c) {
                    Some(Signal::SIGTSTP)
                } else {
                    None
                };
                // `n_tty_receive_signal_char`: the signal goes out (also while output
                // is stopped), the flush (unless NOFLSH) drops the held echoes too;
                // with IXON the character restarts stopped output (not a TCOOFF
                // stop), and its echo then goes out with whatever NOFLSH kept.
                if let Some(sig) = sig {
                    if !t.lflag(NOFLSH) {
                        self.flush_input();
                        self.discard_echoes();
                    }
                    effects.push(LdiscEffect::Signal(sig));
                    if t.iflag(IXON) && self.start_output() {
                        effects.push(LdiscEffect::OutputStarted);
                    }
                    if t.lflag(ECHO) {
                        self.echo_char(t, c);
                    }
                    self.process_echoes();
                    continue;
                }
            }
            self.ixany_restart(t, &mut effects);
            if c == b'\r' {
                if t.iflag(IGNCR) {
                    continue;
                }
                if t.iflag(ICRNL) {
                    c = b'\n';
                }
            } else if c == b'\n' && t.iflag(INLCR) {
                c = b'\r';
            }
            if t.lflag(ICANON) {
                if t.is_cc(VERASE, c)
                    || t.is_cc(VKILL, c)
                    || (t.is_cc(VWERASE, c) && t.lflag(IEXTEN))
                {
                    self.eraser(t, c);
                    continue;
                }
                if t.is_cc(VLNEXT, c) && t.lflag(IEXTEN) {
                    self.lnext = true;
                    if t.lflag(ECHO) && t.lflag(ECHOCTL) {
                        self.echo_raw(t, b'^');
                        self.echo_raw(t, 0x08);
                    }
                    continue;
                }
                if t.is_cc(VREPRINT, c) && t.lflag(ECHO) && t.lflag(IEXTEN) {
                    self.echo_char(t, c);
                    self.echo_raw(t, b'\n');
                    let line: Vec<Slot> = self.buf.iter().skip(self.committed).copied().collect();
                    for s in line {
                        if let Slot::Byte(b) = s {
                            self.echo_char(t, b);
                        }
                    }
                    continue;
                }
                if c == b'\n' {
                    if t.lflag(ECHO) || t.lflag(ECHONL) {
                        self.echo_raw(t, b'\n');
                    }
                    self.commit_line(Slot::Byte(c));
                    continue;
                }
                if t.is_cc(VEOF, c) {
                    self.commit_line(Slot::Eof);
                    continue;
                }
                if t.is_cc(VEOL, c) || (t.is_cc(VEOL2, c) && t.lflag(IEXTEN)) {
                    if t.lflag(ECHO) {
                        if self.editing() == 0 {
                            self.set_canon_col();
                        }
                        self.echo_char(t, c);
                    }
                    self.commit_line(Slot::Byte(c));
                    continue;
                }
            }
            // Fall through: an ordinary character after mapping.
            if t.lflag(ECHO) {
                if c == b'\n' {
                    self.echo_raw(t, b'\n');
                } else {
                    if self.editing() == 0 {
                        self.set_canon_col();
                    }
                    self.echo_char(t, c);
                }
            }
            self.put(Slot::Byte(c));
        }
        // `flush_echoes` at the end of the batch: only if the batch echoed something
        // (echoes left held by TCOON wait for the next echo or write).
        if (t.lflag(ECHO) || t.lflag(ECHONL)) && self.echo_added {
            self.process_echoes();
        }
        effects
    }

    /// `n_tty_receive_char`: an ordinary byte.
    fn receive_plain(&mut self, t: &Termios, c: u8, effects: &mut Vec<LdiscEffect>) {
        self.ixany_restart(t, effects);
        if t.lflag(ECHO) {
            if self.editing() == 0 {
                self.set_canon_col();
            }
            self.echo_char(t, c);
        }
        self.put(Slot::Byte(c));
    }

    /// `eraser`: VERASE, VWERASE or VKILL in canonical mode.
    fn eraser(&mut self, t: &Termios, c: u8) {
        if self.editing() == 0 {
            return;
        }
        #[derive(PartialEq)]
        enum Kill {
            Erase,
            Werase,
            Line,
        }
        let kind = if t.is_cc(VERASE, c) {
            Kill::Erase
        } else if t.is_cc(VWERASE, c) {
            Kill::Werase
        } else {
            if !t.lflag(ECHO) {
                self.buf.truncate(self.committed);
                return;
            }
            if !t.lflag(ECHOK) || !t.lflag(ECHOKE) || !t.lflag(ECHOE) {
                self.buf.truncate(self.committed);
                self.echo_char(t, c);
                if t.lflag(ECHOK) {
                    self.echo_raw(t, b'\n');
                }
                return;
            }
            Kill::Line
        };
        let mut seen_alnums = 0;
        while self.editing() > 0 {
            let Some(Slot::Byte(ch)) = self.buf.back().copied() else {
                break;
            };
            if kind == Kill::Werase {
                if ch.is_ascii_alphanumeric() || ch == b'_' {
                    seen_alnums += 1;
                } else if seen_alnums > 0 {
                    break;
                }
            }
            self.buf.pop_back();
            if t.lflag(ECHO) {
                if kind == Kill::Erase && !t.lflag(ECHOE) {
                    self.echo_char(t, c);
                } else if ch == b'\t' {
                    self.erase_tab(t);
                } else {
                    let cols = if is_cntrl(ch) {
                        if t.lflag(ECHOCTL) {
                            2
                        } else {
                            0
                        }
                    } else {
                        1
                    };
                    for _ in 0..cols {
                        self.echo_raw(t, 0x08);
                        self.echo_raw(t, b' ');
                        self.echo_raw(t, 0x08);
                    }
                }
            }
            if kind == Kill::Erase {
                break;
            }
        }
    }

    /// Backspaces over an erased tab: back to where the tab started, computed from the
    /// characters since the line start (offset by its column) or since a previous tab.
    fn erase_tab(&mut self, t: &Termios) {
        let mut cols: u32 = 0;
        let mut after_tab = false;
        for s in self.buf.iter().skip(self.committed).rev() {
            let Slot::Byte(ch) = *s else { break };
            if ch == b'\t' {
                after_tab = true;
                break;
            } else if is_cntrl(ch) {
                if t.lflag(ECHOCTL) {
                    cols += 2;
                }
            } else {
                cols += 1;
            }
        }
        if !after_tab {
            cols += self.canon_column;
        }
        let n = (8 - (cols & 7)).min(self.column);
        self.echo_added = true;
        for _ in 0..n {
            self.echo.push(0x08);
            self.column = self.column.saturating_sub(1);
        }
    }

    // ---- reads -------------------------------------------------------------------

    /// Whether a read would return now (data or end of file).
    pub fn readable(&self, termios: &Termios) -> bool {
        if termios.lflag(ICANON) {
            !self.lines.is_empty()
        } else {
            !self.buf.is_empty() || (termios.cc[VMIN] == 0 && termios.cc[VTIME] == 0)
        }
    }

    /// A read of up to `count` bytes.
    pub fn read(&mut self, termios: &Termios, count: usize) -> LdiscRead {
        if termios.lflag(ICANON) {
            let Some(&len) = self.lines.front() else {
                return LdiscRead::WouldBlock;
            };
            let mut data = Vec::new();
            let mut taken = 0;
            while taken < len && data.len() < count {
                match self.buf.pop_front() {
                    Some(Slot::Byte(b)) => data.push(b),
                    Some(Slot::Eof) | None => {}
                }
                taken += 1;
            }
            // A line ending in EOF: the marker is consumed with the line.
            if taken == len - 1 && self.buf.front() == Some(&Slot::Eof) {
                self.buf.pop_front();
                taken += 1;
            }
            self.committed -= taken;
            if taken == len {
                self.lines.pop_front();
            } else if let Some(l) = self.lines.front_mut() {
                *l -= taken;
            }
            if data.is_empty() {
                LdiscRead::Eof
            } else {
                LdiscRead::Data(data)
            }
        } else {
            if self.buf.is_empty() {
                return if termios.cc[VMIN] == 0 && termios.cc[VTIME] == 0 {
                    LdiscRead::Eof
                } else {
                    LdiscRead::WouldBlock
                };
            }
            let mut data = Vec::new();
            // n_tty stores VEOF as a NUL byte (__DISABLED_CHAR): once the line
            // discipline is non-canonical it reads as one.
            while data.len() < count {
                match self.buf.pop_front() {
                    Some(Slot::Byte(b)) => data.push(b),
                    Some(Slot::Eof) => data.push(0),
                    None => break,
                }
            }
            self.lines.clear();
            self.committed = 0;
            if data.is_empty() {
                LdiscRead::WouldBlock
            } else {
                LdiscRead::Data(data)
            }
        }
    }

    /// A termios change (`n_tty_set_termios`): switching ICANON resets line
    /// boundaries; switching it on with data buffered makes that data one line.
    /// Switching IXON off restarts output stopped by VSTOP (not by TCOOFF) and the
    /// held echoes go out. Returns whether output was restarted (wake the writers).
    pub fn set_termios(&mut self, old: &Termios, new: &Termios) -> bool {
        let mut started = false;
        if old.iflag(IXON) && !new.iflag(IXON) && self.start_output() {
            self.process_echoes();
            started = true;
        }
        if (old.lflag ^ new.lflag) & ICANON == 0 {
            return started;
        }
        self.lines.clear();
        self.committed = 0;
        self.lnext = false;
        if new.lflag(ICANON) && !self.buf.is_empty() {
            self.committed = self.buf.len();
            self.lines.push_back(self.buf.len());
        }
        started
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn std() -> Termios {
        Termios::linux_default()
    }

    fn typed(ld: &mut LineDiscipline, t: &Termios, s: &[u8]) -> Vec<LdiscEffect> {
        ld.receive(t, s)
    }

    fn read_all(ld: &mut LineDiscipline, t: &Termios) -> LdiscRead {
        ld.read(t, 4096)
    }

    #[test]
    fn canonical_read_waits_for_newline() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"abc");
        assert!(!ld.readable(&t));
        assert_eq!(read_all(&mut ld, &t), LdiscRead::WouldBlock);
        typed(&mut ld, &t, b"\n");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"abc\n".to_vec()));
    }

    #[test]
    fn icrnl_maps_cr_to_nl_and_echo_shows_crlf() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"hi\r");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"hi\n".to_vec()));
        assert_eq!(ld.take_output(), b"hi\r\n");
    }

    #[test]
    fn igncr_drops_cr_and_inlcr_maps_nl_to_cr() {
        let mut ld = LineDiscipline::new();
        let mut t = std();
        t.iflag |= IGNCR;
        typed(&mut ld, &t, b"a\rb\n");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"ab\n".to_vec()));
        let mut t = std();
        t.lflag &= !ICANON;
        t.iflag |= INLCR;
        typed(&mut ld, &t, b"\n");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"\r".to_vec()));
    }

    #[test]
    fn read_returns_at_most_one_line_and_continues_long_lines() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"one\ntwo\n");
        assert_eq!(ld.read(&t, 2), LdiscRead::Data(b"on".to_vec()));
        assert_eq!(ld.read(&t, 100), LdiscRead::Data(b"e\n".to_vec()));
        assert_eq!(ld.read(&t, 100), LdiscRead::Data(b"two\n".to_vec()));
        assert_eq!(ld.read(&t, 100), LdiscRead::WouldBlock);
    }

    #[test]
    fn veof_at_line_start_reads_eof_once() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"\x04");
        assert!(ld.readable(&t));
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Eof);
        assert_eq!(read_all(&mut ld, &t), LdiscRead::WouldBlock);
        assert_eq!(ld.take_output(), b"", "VEOF is not echoed");
    }

    #[test]
    fn veof_mid_line_returns_partial_line_without_eof_char() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"ab\x04");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"ab".to_vec()));
        assert_eq!(read_all(&mut ld, &t), LdiscRead::WouldBlock);
    }

    #[test]
    fn verase_with_echoe_echoes_backspace_space_backspace() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"ab\x7f\n");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"a\n".to_vec()));
        assert_eq!(ld.take_output(), b"ab\x08 \x08\r\n");
    }

    #[test]
    fn verase_without_echoe_echoes_the_erase_char() {
        let mut ld = LineDiscipline::new();
        let mut t = std();
        t.lflag &= !ECHOE;
        typed(&mut ld, &t, b"ab\x7f");
        assert_eq!(ld.take_output(), b"ab^?");
    }

    #[test]
    fn erasing_a_control_char_shown_with_echoctl_erases_two_columns() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"\x01\x7f");
        assert_eq!(ld.take_output(), b"^A\x08 \x08\x08 \x08");
    }

    #[test]
    fn erase_at_line_start_does_nothing() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"x\n\x7f");
        assert_eq!(ld.take_output(), b"x\r\n");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"x\n".to_vec()));
    }

    #[test]
    fn erasing_a_tab_goes_back_to_where_it_started() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"abc\t\x7f");
        // "abc" then a tab to column 8; erasing it backs up 5 columns to column 3.
        assert_eq!(ld.take_output(), b"abc\t\x08\x08\x08\x08\x08");
    }

    #[test]
    fn vkill_with_echok_without_echoke_echoes_kill_char_and_newline() {
        let mut ld = LineDiscipline::new();
        let mut t = std();
        t.lflag &= !ECHOKE;
        typed(&mut ld, &t, b"abc\x15x\n");
        assert_eq!(ld.take_output(), b"abc^U\r\nx\r\n");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"x\n".to_vec()));
    }

    #[test]
    fn vkill_with_echoke_erases_the_line_visually() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"ab\x15");
        assert_eq!(ld.take_output(), b"ab\x08 \x08\x08 \x08");
        typed(&mut ld, &t, b"\n");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"\n".to_vec()));
    }

    #[test]
    fn werase_erases_trailing_blanks_then_a_word_and_requires_iexten() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"one two  \x17\n");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"one \n".to_vec()));
        let mut t2 = std();
        t2.lflag &= !IEXTEN;
        typed(&mut ld, &t2, b"one\x17\n");
        assert_eq!(
            read_all(&mut ld, &t2),
            LdiscRead::Data(b"one\x17\n".to_vec())
        );
    }

    #[test]
    fn vintr_signals_flushes_pending_input_and_echoes_caret_c() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"done\npartial");
        let fx = typed(&mut ld, &t, b"\x03");
        assert_eq!(fx, vec![LdiscEffect::Signal(Signal::SIGINT)]);
        assert!(!ld.readable(&t), "complete and partial lines are discarded");
        assert!(ld.take_output().ends_with(b"^C"));
    }

    #[test]
    fn vintr_discards_echoes_of_the_same_batch_but_not_earlier_output() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        ld.write(&t, b"out\n");
        typed(&mut ld, &t, b"abc");
        typed(&mut ld, &t, b"\x03");
        assert_eq!(ld.take_output(), b"out\r\nabc^C");
        typed(&mut ld, &t, b"done\npartial\x03");
        assert_eq!(ld.take_output(), b"^C");
        let mut nf = std();
        nf.lflag |= NOFLSH;
        typed(&mut ld, &nf, b"x\x03");
        assert_eq!(ld.take_output(), b"x^C");
    }

    #[test]
    fn noflsh_keeps_input_on_signal_chars() {
        let mut ld = LineDiscipline::new();
        let mut t = std();
        t.lflag |= NOFLSH;
        typed(&mut ld, &t, b"keep\n");
        assert_eq!(
            typed(&mut ld, &t, b"\x1a"),
            vec![LdiscEffect::Signal(Signal::SIGTSTP)]
        );
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"keep\n".to_vec()));
    }

    #[test]
    fn vquit_and_vsusp_signal_only_with_isig() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        assert_eq!(
            typed(&mut ld, &t, b"\x1c"),
            vec![LdiscEffect::Signal(Signal::SIGQUIT)]
        );
        assert_eq!(
            typed(&mut ld, &t, b"\x1a"),
            vec![LdiscEffect::Signal(Signal::SIGTSTP)]
        );
        let mut raw = std();
        raw.lflag &= !(ISIG | ICANON);
        assert!(typed(&mut ld, &raw, b"\x03\x1a").is_empty());
        assert_eq!(
            read_all(&mut ld, &raw),
            LdiscRead::Data(b"\x03\x1a".to_vec())
        );
    }

    #[test]
    fn echoctl_shows_control_chars_with_caret_but_not_tab() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"\x01\t\x1b");
        assert_eq!(ld.take_output(), b"^A\t^[");
        let mut t2 = std();
        t2.lflag &= !ECHOCTL;
        typed(&mut ld, &t2, b"\x01");
        assert_eq!(ld.take_output(), b"\x01");
    }

    #[test]
    fn echonl_echoes_newline_without_echo() {
        let mut ld = LineDiscipline::new();
        let mut t = std();
        t.lflag &= !ECHO;
        t.lflag |= ECHONL;
        typed(&mut ld, &t, b"secret\n");
        assert_eq!(ld.take_output(), b"\r\n");
    }

    #[test]
    fn no_echo_without_echo_flag() {
        let mut ld = LineDiscipline::new();
        let mut t = std();
        t.lflag &= !ECHO;
        typed(&mut ld, &t, b"pw\n");
        assert_eq!(ld.take_output(), b"");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"pw\n".to_vec()));
    }

    #[test]
    fn veol_ends_a_line_and_is_part_of_it() {
        let mut ld = LineDiscipline::new();
        let mut t = std();
        t.cc[VEOL] = b';';
        typed(&mut ld, &t, b"a;b");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"a;".to_vec()));
        assert_eq!(read_all(&mut ld, &t), LdiscRead::WouldBlock);
    }

    #[test]
    fn noncanonical_reads_bytes_immediately_and_vmin0_reads_zero_when_empty() {
        let mut ld = LineDiscipline::new();
        let mut t = std();
        t.lflag &= !ICANON;
        assert_eq!(read_all(&mut ld, &t), LdiscRead::WouldBlock);
        typed(&mut ld, &t, b"x");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"x".to_vec()));
        t.cc[VMIN] = 0;
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Eof);
    }

    #[test]
    fn noncanonical_typed_newline_echoes_as_caret_j_but_icrnl_return_as_newline() {
        let mut ld = LineDiscipline::new();
        let mut t = std();
        t.lflag &= !ICANON;
        typed(&mut ld, &t, b"\n");
        assert_eq!(ld.take_output(), b"^J");
        typed(&mut ld, &t, b"\r");
        assert_eq!(ld.take_output(), b"\r\n");
    }

    #[test]
    fn switching_icanon_off_makes_partial_line_readable_and_on_makes_it_a_line() {
        let mut ld = LineDiscipline::new();
        let canon = std();
        let mut raw = std();
        raw.lflag &= !ICANON;
        typed(&mut ld, &canon, b"par");
        ld.set_termios(&canon, &raw);
        assert_eq!(ld.read(&raw, 2), LdiscRead::Data(b"pa".to_vec()));
        ld.set_termios(&raw, &canon);
        assert_eq!(read_all(&mut ld, &canon), LdiscRead::Data(b"r".to_vec()));
    }

    #[test]
    fn vlnext_takes_next_char_literally() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        let fx = typed(&mut ld, &t, b"\x16\x03\n");
        assert!(fx.is_empty(), "^V^C does not signal");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"\x03\n".to_vec()));
        assert_eq!(ld.take_output(), b"^\x08^C\r\n");
    }

    #[test]
    fn vreprint_reprints_the_line() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"ab\x12");
        assert_eq!(ld.take_output(), b"ab^R\r\nab");
    }

    #[test]
    fn ixon_consumes_start_and_stop_chars() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        typed(&mut ld, &t, b"a\x13b\x11\n");
        assert_eq!(read_all(&mut ld, &t), LdiscRead::Data(b"ab\n".to_vec()));
        assert!(!ld.output_stopped());
    }

    #[test]
    fn onlcr_maps_nl_to_crnl_on_output_and_raw_without_opost() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        ld.write(&t, b"a\nb");
        assert_eq!(ld.take_output(), b"a\r\nb");
        let mut raw = std();
        raw.oflag &= !OPOST;
        ld.write(&raw, b"a\nb");
        assert_eq!(ld.take_output(), b"a\nb");
    }

    #[test]
    fn onocr_drops_cr_at_column_zero_and_ocrnl_maps_cr() {
        let mut ld = LineDiscipline::new();
        let mut t = std();
        t.oflag |= ONOCR;
        ld.write(&t, b"\rx\r");
        assert_eq!(ld.take_output(), b"x\r");
        let mut t = std();
        t.oflag |= OCRNL;
        ld.write(&t, b"\r");
        assert_eq!(ld.take_output(), b"\n");
    }

    #[test]
    fn canonical_line_is_bounded_but_newline_still_completes_it() {
        let (mut ld, t) = (LineDiscipline::new(), std());
        let long = vec![b'x'; 5000];
        typed(&mut ld, &t, &long);
        typed(&mut ld, &t, b"\n");
        match read_all(&mut ld, &t) {
            LdiscRead::Data(d) => {
                assert_eq!(d.len(), N_TTY_BUF_SIZE - 1);
                assert_eq!(d.last(), Some(&b'\n'));
            }
            other => panic!("{other:?}"),
        }
    }
}
