//! Rule tables compiled with seccompiler, stacked with a guard program of our own for
//! what seccompiler cannot express.
//!
//! seccompiler builds a program with ONE action for a match and one for everything
//! else, and checks the architecture, but compares the syscall number as given: an
//! x86_64 x32-ABI number (`0x40000000 | nr`) matches no rule and takes the mismatch
//! action — ALLOW in a deny list, a bypass on kernels built with x32 support. So a
//! table compiles to two programs, installed in this order:
//!
//! 1. the guard (the `bpf` compiler, default ALLOW): foreign architectures
//!    KILL_PROCESS, x32 numbers ENOSYS, and the rows with another action than the
//!    table's (clone3: ENOSYS);
//! 2. seccompiler's program: the rows with the table's action. Last, because an
//!    allow-list refuses `seccomp()` itself once installed.
//!
//! The kernel runs both and keeps the most severe result; between equally severe ones
//! (two ERRNOs), the later-installed filter's, seccompiler's. A guard row must thus be
//! more severe than what seccompiler's program returns for the same call:
//! - in an allow-list (match action ALLOW) the row is also given to seccompiler as an
//!   ALLOW rule, so the guard's action (clone3: ENOSYS rather than the default EPERM)
//!   always wins; x32 numbers, though, get the allow-list's EPERM;
//! - otherwise the row must be strictly more severe than the default and, if the
//!   syscall has rows in seccompiler's program too, than the match action: anything
//!   else is refused ([`SeccompError::Overridden`]).
//!
//! Translation of a row's condition into seccompiler conditions, all on the low 32 bits
//! of the argument (`SeccompCmpArgLen::Dword`, as the kernel reads `int` and `unsigned
//! int` parameters such as ioctl's request — CVE-2019-10063):
//! - `ArgIn` → one rule per value (`Eq`, or `MaskedEq(mask)`); any rule matching is a
//!   match;
//! - `ArgNotIn` (unmasked) → one rule with an `Ne` condition per value (all must hold);
//! - `ArgAnyBit` → one rule per bit of the mask (`MaskedEq(bit)` equal to the bit).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::bpf::{
    check_argument, syscall_number, Action, Filter, ProgramBuilder, SyscallRule, When,
};
use super::SeccompError;

/// The architecture seccompiler checks (the same as
/// [`AUDIT_ARCH_NATIVE`](super::AUDIT_ARCH_NATIVE)).
#[cfg(target_arch = "x86_64")]
const TARGET: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const TARGET: TargetArch = TargetArch::aarch64;

/// What a syscall of seccompiler's program matches on.
#[derive(Debug)]
enum Entry {
    /// Whatever the arguments.
    Always,
    /// When any of these rules matches (never empty).
    AnyOf(Vec<SeccompRule>),
}

/// A table being compiled into the stack [guard, seccompiler's program].
#[derive(Debug)]
pub(crate) struct StackBuilder {
    on_match: Action,
    otherwise: Action,
    rules: BTreeMap<u32, Entry>,
    guard: ProgramBuilder,
    /// Syscalls and actions of the guard's rows, checked by `compile`.
    guarded: Vec<(u32, Action)>,
}

/// seccompiler's spelling of an action; it has no USER_NOTIF.
fn library_action(action: Action) -> Result<SeccompAction, SeccompError> {
    Ok(match action {
        Action::KillProcess => SeccompAction::KillProcess,
        Action::KillThread => SeccompAction::KillThread,
        Action::Trap => SeccompAction::Trap,
        Action::Errno(e) => SeccompAction::Errno(u32::from(e)),
        Action::Trace(d) => SeccompAction::Trace(u32::from(d)),
        Action::Log => SeccompAction::Log,
        Action::Allow => SeccompAction::Allow,
        Action::UserNotif => {
            return Err(SeccompError::Inexpressible {
                nr: None,
                what: "the USER_NOTIF action",
            })
        }
    })
}

/// A test of the low 32 bits of argument `arg`.
fn low_word(
    nr: u32,
    arg: u8,
    op: SeccompCmpOp,
    value: u32,
) -> Result<SeccompCondition, SeccompError> {
    check_argument(nr, arg)?;
    Ok(SeccompCondition::new(
        arg,
        SeccompCmpArgLen::Dword,
        op,
        u64::from(value),
    )?)
}

/// `(arg & mask) == value` on the low 32 bits; a plain comparison for the full mask.
fn masked_eq(nr: u32, arg: u8, mask: u32, value: u32) -> Result<SeccompCondition, SeccompError> {
    if mask == u32::MAX {
        low_word(nr, arg, SeccompCmpOp::Eq, value)
    } else {
        low_word(
            nr,
            arg,
            SeccompCmpOp::MaskedEq(u64::from(mask)),
            value & mask,
        )
    }
}

impl StackBuilder {
    /// A table whose rows return `on_match`, everything else `otherwise`.
    pub(crate) fn new(on_match: Action, otherwise: Action) -> Self {
        StackBuilder {
            on_match,
            otherwise,
            rules: BTreeMap::new(),
            guard: ProgramBuilder::new(Action::Allow),
            guarded: Vec::new(),
        }
    }

    fn set_always(&mut self, nr: u32) {
        self.rules.insert(nr, Entry::Always);
    }

    fn add_rule(&mut self, nr: u32, conditions: Vec<SeccompCondition>) -> Result<(), SeccompError> {
        let rule = SeccompRule::new(conditions)?;
        match self
            .rules
            .entry(nr)
            .or_insert_with(|| Entry::AnyOf(Vec::new()))
        {
            Entry::Always => {}
            Entry::AnyOf(rules) => rules.push(rule),
        }
        Ok(())
    }

    /// Adds one table row.
    pub(crate) fn rule(&mut self, rule: &SyscallRule) -> Result<(), SeccompError> {
        let Some(nr) = syscall_number(rule.nr)? else {
            return Ok(());
        };
        if rule.action != self.on_match {
            self.guard.rule(rule)?;
            self.guarded.push((nr, rule.action));
            if self.on_match != Action::Allow {
                return Ok(());
            }
            // seccompiler's program allows what the guard decides.
        }
        match rule.when {
            When::Always => self.set_always(nr),
            When::ArgIn { arg, mask, values } => {
                for &value in values {
                    let condition = masked_eq(nr, arg, mask, value)?;
                    self.add_rule(nr, vec![condition])?;
                }
            }
            When::ArgNotIn { values: [], .. } => self.set_always(nr),
            When::ArgNotIn { arg, mask, values } => {
                if mask != u32::MAX {
                    return Err(SeccompError::Inexpressible {
                        nr: Some(i64::from(nr)),
                        what: "a masked not-in test",
                    });
                }
                let conditions = values
                    .iter()
                    .map(|&v| low_word(nr, arg, SeccompCmpOp::Ne, v))
                    .collect::<Result<Vec<_>, _>>()?;
                self.add_rule(nr, conditions)?;
            }
            When::ArgAnyBit { arg, mask } => {
                for bit in (0..32).map(|i| 1u32 << i).filter(|b| mask & b != 0) {
                    let condition = masked_eq(nr, arg, bit, bit)?;
                    self.add_rule(nr, vec![condition])?;
                }
            }
        }
        Ok(())
    }

    /// Whether each guard row beats what seccompiler's program returns for its syscall.
    fn check_guarded(&self) -> Result<(), SeccompError> {
        if self.on_match == Action::Allow {
            return Ok(());
        }
        for &(nr, action) in &self.guarded {
            let mut rival = self.otherwise.severity();
            if self.rules.contains_key(&nr) {
                rival = rival.min(self.on_match.severity());
            }
            if action.severity() >= rival {
                return Err(SeccompError::Overridden {
                    nr: i64::from(nr),
                    action,
                });
            }
        }
        Ok(())
    }

    /// `on_match` for the syscall whatever its arguments.
    #[cfg(test)]
    pub(crate) fn always(&mut self, nr: libc::c_long) -> Result<(), SeccompError> {
        if let Some(nr) = syscall_number(nr)? {
            self.set_always(nr);
        }
        Ok(())
    }

    /// `on_match` for `ioctl` when its request (low 32 bits) is one of `cmds`.
    pub(crate) fn ioctls(
        &mut self,
        cmds: impl IntoIterator<Item = u32>,
    ) -> Result<(), SeccompError> {
        let Some(nr) = syscall_number(libc::SYS_ioctl)? else {
            return Ok(());
        };
        for cmd in cmds {
            let condition = masked_eq(nr, 1, u32::MAX, cmd)?;
            self.add_rule(nr, vec![condition])?;
        }
        Ok(())
    }

    /// Compiles the stack (the guard, then seccompiler's program).
    pub(crate) fn compile(self) -> Result<Filter, SeccompError> {
        self.check_guarded()?;
        let rules = self
            .rules
            .into_iter()
            .map(|(nr, entry)| {
                let rules = match entry {
                    Entry::Always => Vec::new(),
                    Entry::AnyOf(rules) => rules,
                };
                (i64::from(nr), rules)
            })
            .collect();
        let filter = SeccompFilter::new(
            rules,
            library_action(self.otherwise)?,
            library_action(self.on_match)?,
            TARGET,
        )?;
        let program = BpfProgram::try_from(filter)?;
        Ok(Filter::stack(self.guard.compile()?, Filter::from(program)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::bpf::{AUDIT_ARCH_I386, AUDIT_ARCH_NATIVE, X32_SYSCALL_BIT};
    use super::*;

    const EPERM: Action = Action::Errno(libc::EPERM as u16);
    const ENOSYS: Action = Action::Errno(libc::ENOSYS as u16);

    fn row(nr: libc::c_long, when: When, action: Action) -> SyscallRule {
        SyscallRule {
            name: "test",
            nr,
            when,
            action,
            reason: "test",
        }
    }

    #[test]
    fn conditions_translate_on_the_low_word() {
        const VALUES: &[u32] = &[3, 5];
        let mut b = StackBuilder::new(EPERM, Action::Allow);
        let arg_in = When::ArgIn {
            arg: 2,
            mask: 0xff,
            values: VALUES,
        };
        b.rule(&row(libc::SYS_getpid, arg_in, EPERM)).unwrap();
        let not_in = When::ArgNotIn {
            arg: 0,
            mask: u32::MAX,
            values: VALUES,
        };
        b.rule(&row(libc::SYS_getppid, not_in, EPERM)).unwrap();
        let any_bit = When::ArgAnyBit { arg: 5, mask: 0x30 };
        b.rule(&row(libc::SYS_gettid, any_bit, EPERM)).unwrap();
        b.ioctls([0x5412]).unwrap();
        b.rule(&row(libc::SYS_clone3, When::Always, ENOSYS))
            .unwrap();
        let f = b.compile().unwrap();
        assert_eq!(f.programs().len(), 2, "seccompiler's program and the guard");
        let at =
            |nr: libc::c_long, args: [u64; 6]| f.action_for(AUDIT_ARCH_NATIVE, nr as i32, args);
        let arg = |i: usize, v: u64| {
            let mut a = [0u64; 6];
            a[i] = v;
            a
        };
        assert_eq!(at(libc::SYS_getpid, arg(2, 0x105)), Some(EPERM), "masked");
        assert_eq!(at(libc::SYS_getpid, arg(2, 3 | 1 << 40)), Some(EPERM));
        assert_eq!(at(libc::SYS_getpid, arg(2, 4)), Some(Action::Allow));
        assert_eq!(at(libc::SYS_getppid, arg(0, 4)), Some(EPERM));
        assert_eq!(at(libc::SYS_getppid, arg(0, 5)), Some(Action::Allow));
        assert_eq!(
            at(libc::SYS_getppid, arg(0, 5 | 1 << 33)),
            Some(Action::Allow)
        );
        assert_eq!(at(libc::SYS_gettid, arg(5, 0x20)), Some(EPERM));
        assert_eq!(at(libc::SYS_gettid, arg(5, 0x4f)), Some(Action::Allow));
        assert_eq!(at(libc::SYS_ioctl, arg(1, 0x5412 | 1 << 32)), Some(EPERM));
        assert_eq!(at(libc::SYS_ioctl, arg(1, 0x5413)), Some(Action::Allow));
        assert_eq!(at(libc::SYS_clone3, [0; 6]), Some(ENOSYS));
        assert_eq!(at(libc::SYS_write, [0; 6]), Some(Action::Allow));
        assert_eq!(
            f.action_for(AUDIT_ARCH_I386, libc::SYS_write as i32, [0; 6]),
            Some(Action::KillProcess)
        );
        if cfg!(target_arch = "x86_64") {
            let x32 = (X32_SYSCALL_BIT as i32) | libc::SYS_gettid as i32;
            assert_eq!(
                f.action_for(AUDIT_ARCH_NATIVE, x32, arg(5, 0x20)),
                Some(ENOSYS)
            );
        }
    }

    #[test]
    fn guard_rows_win_or_are_refused() {
        let at = |f: &Filter, nr: libc::c_long| f.action_for(AUDIT_ARCH_NATIVE, nr as i32, [0; 6]);
        // Allow-list: the guard's rows are allowed by seccompiler's program, so any
        // action of the guard wins.
        let mut b = StackBuilder::new(Action::Allow, EPERM);
        b.rule(&row(libc::SYS_clone3, When::Always, ENOSYS))
            .unwrap();
        b.rule(&row(libc::SYS_getppid, When::Always, Action::Log))
            .unwrap();
        let f = b.compile().unwrap();
        assert_eq!(at(&f, libc::SYS_clone3), Some(ENOSYS));
        assert_eq!(at(&f, libc::SYS_getppid), Some(Action::Log));
        assert_eq!(at(&f, libc::SYS_getpid), Some(EPERM));
        if cfg!(target_arch = "x86_64") {
            // Guard ENOSYS against seccompiler's EPERM: the later-installed wins.
            let x32 = (X32_SYSCALL_BIT as i32) | libc::SYS_getpid as i32;
            assert_eq!(f.action_for(AUDIT_ARCH_NATIVE, x32, [0; 6]), Some(EPERM));
        }

        // Deny list: ENOSYS beats the default ALLOW...
        let mut b = StackBuilder::new(EPERM, Action::Allow);
        b.rule(&row(libc::SYS_clone3, When::Always, ENOSYS))
            .unwrap();
        assert_eq!(at(&b.compile().unwrap(), libc::SYS_clone3), Some(ENOSYS));
        // ...but would tie with (and lose to) seccompiler's EPERM for the same syscall.
        let mut b = StackBuilder::new(EPERM, Action::Allow);
        b.rule(&row(libc::SYS_mount, When::Always, EPERM)).unwrap();
        b.rule(&row(libc::SYS_mount, When::Always, ENOSYS)).unwrap();
        assert!(matches!(
            b.compile(),
            Err(SeccompError::Overridden { action, .. }) if action == ENOSYS
        ));
        let mut b = StackBuilder::new(EPERM, Action::Allow);
        b.rule(&row(libc::SYS_getpid, When::Always, Action::Allow))
            .unwrap();
        assert!(matches!(b.compile(), Err(SeccompError::Overridden { .. })));
    }

    #[test]
    fn what_seccompiler_cannot_express_is_an_error() {
        assert!(matches!(
            StackBuilder::new(Action::UserNotif, Action::Allow).compile(),
            Err(SeccompError::Inexpressible { nr: None, .. })
        ));
        let mut b = StackBuilder::new(EPERM, Action::Allow);
        let masked_not_in = When::ArgNotIn {
            arg: 0,
            mask: 0xff,
            values: &[1],
        };
        assert!(matches!(
            b.rule(&row(libc::SYS_getpid, masked_not_in, EPERM)),
            Err(SeccompError::Inexpressible { nr: Some(_), .. })
        ));
        let bad_arg = When::ArgIn {
            arg: 6,
            mask: u32::MAX,
            values: &[1],
        };
        assert!(matches!(
            b.rule(&row(libc::SYS_getpid, bad_arg, EPERM)),
            Err(SeccompError::InvalidArgument { arg: 6, .. })
        ));
        assert!(matches!(
            b.always(-2),
            Err(SeccompError::InvalidSyscall(-2))
        ));
    }
}
