//! Classic BPF for seccomp: the instruction type, the rule vocabulary the tables are
//! written in, our compiler from rules to a program (for the notify filter and the
//! guards that seccompiler cannot express, see the `stack` module), and an interpreter
//! that evaluates compiled programs on a synthetic `struct seccomp_data` (for tests and
//! diagnostics).
//!
//! Shape of every program this compiler builds:
//!
//! ```text
//!   A = arch;  if A != native arch            -> KILL_PROCESS
//!   A = nr;    if A & 0x40000000 (x86_64 only) -> ERRNO(ENOSYS)   x32 ABI
//!   if A == nr1 { checks of nr1 }   (first matching check's action, else default)
//!   if A == nr2 { checks of nr2 }
//!   ...
//!   default
//! ```
//!
//! Arguments are only ever loaded inside the group of the syscall that inspects them,
//! so for every other syscall the result depends on the number alone and the kernel's
//! per-syscall action cache (Linux ≥ 5.11) can skip running the program for syscalls it
//! always allows. Argument checks compare the LOW 32 BITS of an argument (optionally
//! masked): that is exact for `int`/`unsigned int` parameters, which the kernel
//! truncates (e.g. the `cmd` of ioctl), and it means setting high bits cannot slip a
//! value past a check (CVE-2019-10063 was a 64-bit comparison of the ioctl `cmd`).

use super::SeccompError;

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Instruction {
    /// Opcode.
    pub code: u16,
    /// Jump offset when the condition holds.
    pub jt: u8,
    /// Jump offset when it does not.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

// Opcodes used (linux/bpf_common.h): class | size/op | source.
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const ALU_AND_K: u16 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x05 | 0x10;
const JMP_JGT_K: u16 = 0x05 | 0x20;
const JMP_JGE_K: u16 = 0x05 | 0x30;
const JMP_JSET_K: u16 = 0x05 | 0x40;
const RET_K: u16 = 0x06;

/// Longest program the kernel accepts (BPF_MAXINSNS).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const DATA_ARGS: u32 = 16;
const DATA_LEN: usize = 64;

/// `AUDIT_ARCH_*` of the architecture this crate is built for: the only one the
/// programs let through (`EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`).
#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH_NATIVE: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// `AUDIT_ARCH_*` of the architecture this crate is built for: the only one the
/// programs let through (`EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`).
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH_NATIVE: u32 = 183 | 0x8000_0000 | 0x4000_0000;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("the seccomp tables of sandbox-loader exist for x86_64 and aarch64 only");

/// `AUDIT_ARCH_I386`, what a 32-bit syscall (int 0x80) of an x86_64 process reports.
pub const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;

/// Bit that marks an x32-ABI syscall number on x86_64 (`__X32_SYSCALL_BIT`). x32
/// syscalls report `AUDIT_ARCH_X86_64`, so a filter that only compares numbers would
/// let `0x40000000 | nr` through on kernels built with x32 support.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// What a seccomp program decides for a syscall (the action part of its return value).
/// When several filters are installed, the kernel runs all of them and keeps the most
/// severe result in this order: `KillProcess`, `KillThread`, `Trap`, `Errno`,
/// `UserNotif`, `Trace`, `Log`, `Allow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// SECCOMP_RET_KILL_PROCESS.
    KillProcess,
    /// SECCOMP_RET_KILL_THREAD.
    KillThread,
    /// SECCOMP_RET_TRAP (SIGSYS).
    Trap,
    /// SECCOMP_RET_ERRNO: the syscall fails with this errno without running.
    Errno(u16),
    /// SECCOMP_RET_USER_NOTIF: the syscall waits for the listener's answer.
    UserNotif,
    /// SECCOMP_RET_TRACE.
    Trace(u16),
    /// SECCOMP_RET_LOG.
    Log,
    /// SECCOMP_RET_ALLOW.
    Allow,
}

impl Action {
    /// The program's return value for this action.
    pub const fn ret(self) -> u32 {
        match self {
            Action::KillProcess => 0x8000_0000,
            Action::KillThread => 0,
            Action::Trap => 0x0003_0000,
            Action::Errno(e) => 0x0005_0000 | e as u32,
            Action::UserNotif => 0x7fc0_0000,
            Action::Trace(d) => 0x7ff0_0000 | d as u32,
            Action::Log => 0x7ffc_0000,
            Action::Allow => 0x7fff_0000,
        }
    }

    /// Precedence among stacked filters' results: lower is more severe (the kernel
    /// compares the action bits as a signed number, so KILL_PROCESS is the lowest).
    pub const fn severity(self) -> i32 {
        (self.ret() & 0xffff_0000) as i32
    }

    /// Decodes a program's return value; `None` for values no action has.
    pub const fn from_ret(ret: u32) -> Option<Action> {
        let data = (ret & 0xffff) as u16;
        match ret & 0xffff_0000 {
            0x8000_0000 => Some(Action::KillProcess),
            0 => Some(Action::KillThread),
            0x0003_0000 => Some(Action::Trap),
            0x0005_0000 => Some(Action::Errno(data)),
            0x7fc0_0000 => Some(Action::UserNotif),
            0x7ff0_0000 => Some(Action::Trace(data)),
            0x7ffc_0000 => Some(Action::Log),
            0x7fff_0000 => Some(Action::Allow),
            _ => None,
        }
    }
}

/// Condition on a syscall's arguments under which a rule applies. `arg` is the argument
/// index (0..=5); the low 32 bits of the argument are ANDed with `mask` before the
/// comparison (use `u32::MAX` for the whole low word).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Whatever the arguments.
    Always,
    /// When the masked argument equals one of `values`.
    ArgIn {
        /// Argument index.
        arg: u8,
        /// Mask applied to the low 32 bits.
        mask: u32,
        /// Accepted values (compared after masking).
        values: &'static [u32],
    },
    /// When the masked argument equals none of `values`.
    ArgNotIn {
        /// Argument index.
        arg: u8,
        /// Mask applied to the low 32 bits.
        mask: u32,
        /// Values that do not trigger the rule.
        values: &'static [u32],
    },
    /// When the argument has any bit of `mask` set.
    ArgAnyBit {
        /// Argument index.
        arg: u8,
        /// Bits looked for (in the low 32 bits).
        mask: u32,
    },
}

/// One row of a syscall table: `name` is for people, `nr` for the program. A row whose
/// `nr` is [`ABSENT`] does not exist on this architecture and is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallRule {
    /// Syscall name.
    pub name: &'static str,
    /// Syscall number on this architecture, or [`ABSENT`].
    pub nr: libc::c_long,
    /// When the rule applies.
    pub when: When,
    /// What the program returns when it applies.
    pub action: Action,
    /// Why the rule exists.
    pub reason: &'static str,
}

/// Marks a syscall the architecture does not have.
pub const ABSENT: libc::c_long = -1;

/// One row of an ioctl table: a request number as the kernel sees it (`unsigned int`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoctlRule {
    /// Request name.
    pub name: &'static str,
    /// Request number (the low 32 bits of the ioctl's second argument).
    pub cmd: u32,
    /// Why it is listed.
    pub reason: &'static str,
}

/// One or more compiled seccomp programs, installed together in order (see
/// [`install`](super::install)). Compile it before `fork`: installing allocates
/// nothing.
///
/// A stack of programs decides as the kernel decides for stacked filters: every
/// program runs and the most severe action wins ([`Action::severity`]); among equally
/// severe results the program installed last wins (the kernel runs the most recent
/// filter first and keeps the first result of the highest precedence).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// In install order; never empty.
    programs: Vec<Vec<Instruction>>,
}

impl Filter {
    pub(crate) fn single(program: Vec<Instruction>) -> Self {
        Filter {
            programs: vec![program],
        }
    }

    /// The stack `first`, then `second` (installed in that order).
    pub(crate) fn stack(first: Filter, second: Filter) -> Self {
        let mut programs = first.programs;
        programs.extend(second.programs);
        Filter { programs }
    }

    /// The stack of `programs` (install order); `None` if there is none or one is
    /// empty.
    pub(crate) fn from_programs(programs: Vec<Vec<Instruction>>) -> Option<Self> {
        if programs.is_empty() || programs.iter().any(Vec::is_empty) {
            return None;
        }
        Some(Filter { programs })
    }

    /// Number of instructions, over all programs.
    pub fn len(&self) -> usize {
        self.programs.iter().map(Vec::len).sum()
    }

    /// Whether there are no instructions at all (never true for a compiled filter).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The programs, in install order, each as the kernel will receive it.
    pub fn programs(
        &self,
    ) -> impl DoubleEndedIterator<Item = &[Instruction]> + ExactSizeIterator + '_ {
        self.programs.iter().map(Vec::as_slice)
    }

    /// Runs the programs on a synthetic `struct seccomp_data` (instruction pointer 0)
    /// and combines their verdicts as the kernel does (see [`Filter`]). `None` if a
    /// program uses an instruction this interpreter does not know, reads outside
    /// `seccomp_data`, runs off its end, or returns a value no action has.
    pub fn action_for(&self, arch: u32, nr: i32, args: [u64; 6]) -> Option<Action> {
        let mut data = [0u8; DATA_LEN];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, arg) in args.iter().enumerate() {
            let at = DATA_ARGS as usize + 8 * i;
            data[at..at + 8].copy_from_slice(&arg.to_ne_bytes());
        }
        let mut verdict = Action::Allow;
        // Most recently installed first; a later result replaces only a more severe one.
        for program in self.programs.iter().rev() {
            let action = run(program, &data)?;
            if action.severity() < verdict.severity() {
                verdict = action;
            }
        }
        Some(verdict)
    }
}

/// A program compiled by seccompiler, as one [`Filter`] (to be installed with this
/// module's install functions, which also offer the listener flags).
impl From<seccompiler::BpfProgram> for Filter {
    fn from(program: seccompiler::BpfProgram) -> Self {
        Filter::single(
            program
                .into_iter()
                .map(|i| Instruction {
                    code: i.code,
                    jt: i.jt,
                    jf: i.jf,
                    k: i.k,
                })
                .collect(),
        )
    }
}

/// Interprets one program on `data`.
fn run(program: &[Instruction], data: &[u8; DATA_LEN]) -> Option<Action> {
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    loop {
        let ins = program.get(pc)?;
        pc += 1;
        let k = ins.k;
        let taken = |cond: bool| usize::from(if cond { ins.jt } else { ins.jf });
        match ins.code {
            LD_W_ABS => {
                let at = k as usize;
                if !at.is_multiple_of(4) || at + 4 > DATA_LEN {
                    return None;
                }
                let mut word = [0u8; 4];
                word.copy_from_slice(&data[at..at + 4]);
                acc = u32::from_ne_bytes(word);
            }
            ALU_AND_K => acc &= k,
            JMP_JA => pc = pc.checked_add(k as usize)?,
            JMP_JEQ_K => pc += taken(acc == k),
            JMP_JGT_K => pc += taken(acc > k),
            JMP_JGE_K => pc += taken(acc >= k),
            JMP_JSET_K => pc += taken(acc & k != 0),
            RET_K => return Action::from_ret(k),
            _ => return None,
        }
    }
}

const fn stmt(code: u16, k: u32) -> Instruction {
    Instruction {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Instruction {
    Instruction { code, jt, jf, k }
}

const fn ret(action: Action) -> Instruction {
    stmt(RET_K, action.ret())
}

/// Offset of the low 32 bits of argument `arg` in `struct seccomp_data`.
const fn arg_low_offset(arg: u8) -> u32 {
    let base = DATA_ARGS + 8 * arg as u32;
    if cfg!(target_endian = "big") {
        base + 4
    } else {
        base
    }
}

/// A table's syscall number as the program compares it: `None` for [`ABSENT`]; an error
/// for a negative or x32 number.
pub(crate) fn syscall_number(nr: libc::c_long) -> Result<Option<u32>, SeccompError> {
    if nr == ABSENT {
        return Ok(None);
    }
    match u32::try_from(nr) {
        Ok(n) if n & X32_SYSCALL_BIT == 0 => Ok(Some(n)),
        _ => Err(SeccompError::InvalidSyscall(nr)),
    }
}

/// Syscalls have arguments 0..=5.
pub(crate) fn check_argument(nr: u32, arg: u8) -> Result<(), SeccompError> {
    if arg > 5 {
        return Err(SeccompError::InvalidArgument {
            nr: i64::from(nr),
            arg,
        });
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Test {
    Always,
    In(Vec<u32>),
    NotIn(Vec<u32>),
    AnyBit,
}

#[derive(Clone, Debug)]
struct Check {
    arg: u8,
    mask: u32,
    test: Test,
    action: Action,
}

/// Rules gathered per syscall, compiled into one program; inside a syscall's group
/// the first check that matches decides (a check without condition ends the group).
#[derive(Debug)]
pub(crate) struct ProgramBuilder {
    default: Action,
    groups: std::collections::BTreeMap<u32, Vec<Check>>,
}

impl ProgramBuilder {
    pub(crate) fn new(default: Action) -> Self {
        ProgramBuilder {
            default,
            groups: std::collections::BTreeMap::new(),
        }
    }

    fn push(&mut self, nr: libc::c_long, check: Check) -> Result<(), SeccompError> {
        let Some(nr) = syscall_number(nr)? else {
            return Ok(());
        };
        check_argument(nr, check.arg)?;
        self.groups.entry(nr).or_default().push(check);
        Ok(())
    }

    /// Adds one table row.
    pub(crate) fn rule(&mut self, rule: &SyscallRule) -> Result<(), SeccompError> {
        let check = match rule.when {
            When::Always => Check {
                arg: 0,
                mask: u32::MAX,
                test: Test::Always,
                action: rule.action,
            },
            When::ArgIn { arg, mask, values } => Check {
                arg,
                mask,
                test: Test::In(values.to_vec()),
                action: rule.action,
            },
            When::ArgNotIn { arg, mask, values } => Check {
                arg,
                mask,
                test: Test::NotIn(values.to_vec()),
                action: rule.action,
            },
            When::ArgAnyBit { arg, mask } => Check {
                arg,
                mask,
                test: Test::AnyBit,
                action: rule.action,
            },
        };
        self.push(rule.nr, check)
    }

    /// `action` for the syscall whatever its arguments (after its earlier checks).
    pub(crate) fn always(&mut self, nr: libc::c_long, action: Action) -> Result<(), SeccompError> {
        self.push(
            nr,
            Check {
                arg: 0,
                mask: u32::MAX,
                test: Test::Always,
                action,
            },
        )
    }

    /// `action` for `ioctl` when its request (low 32 bits) is one of `cmds`.
    pub(crate) fn ioctls(
        &mut self,
        cmds: impl IntoIterator<Item = u32>,
        action: Action,
    ) -> Result<(), SeccompError> {
        let values: Vec<u32> = cmds.into_iter().collect();
        if values.is_empty() {
            return Ok(());
        }
        self.push(
            libc::SYS_ioctl,
            Check {
                arg: 1,
                mask: u32::MAX,
                test: Test::In(values),
                action,
            },
        )
    }

    fn compile_group(&self, nr: u32, checks: &[Check]) -> Result<Vec<Instruction>, SeccompError> {
        let too_many = |len: usize| SeccompError::GroupTooLarge {
            nr: i64::from(nr),
            len,
        };
        let mut body = Vec::new();
        for check in checks {
            let load = |body: &mut Vec<Instruction>| {
                body.push(stmt(LD_W_ABS, arg_low_offset(check.arg)));
                if check.mask != u32::MAX {
                    body.push(stmt(ALU_AND_K, check.mask));
                }
            };
            match &check.test {
                Test::Always => {
                    // Later checks of this syscall are unreachable.
                    body.push(ret(check.action));
                    return Ok(body);
                }
                Test::In(values) if values.is_empty() => {}
                Test::In(values) => {
                    // jeq v_i -> RET action; none equal -> skip the RET.
                    let n = values.len();
                    if n > usize::from(u8::MAX) {
                        return Err(too_many(n));
                    }
                    load(&mut body);
                    for (i, v) in values.iter().enumerate() {
                        body.push(jump(JMP_JEQ_K, v & check.mask, (n - i) as u8, 0));
                    }
                    body.push(stmt(JMP_JA, 1));
                    body.push(ret(check.action));
                }
                Test::NotIn(values) => {
                    // jeq v_i -> past the RET; none equal -> RET action.
                    let n = values.len();
                    if n > usize::from(u8::MAX) {
                        return Err(too_many(n));
                    }
                    load(&mut body);
                    for (i, v) in values.iter().enumerate() {
                        body.push(jump(JMP_JEQ_K, v & check.mask, (n - i) as u8, 0));
                    }
                    body.push(ret(check.action));
                }
                Test::AnyBit => {
                    body.push(stmt(LD_W_ABS, arg_low_offset(check.arg)));
                    body.push(jump(JMP_JSET_K, check.mask, 0, 1));
                    body.push(ret(check.action));
                }
            }
        }
        body.push(ret(self.default));
        Ok(body)
    }

    /// Compiles the program: the architecture check (a foreign one is killed), x32
    /// numbers ENOSYS, then a binary search over the syscall numbers (see
    /// [`number_map`]) whose leaves return the action of a syscall decided by its
    /// number alone, or jump to the body of a syscall with argument checks (placed
    /// after the search). A lookup thus costs about 2·log2(runs) instructions whatever
    /// the number, where a chain of `JEQ`s costs one per syscall listed before it; and
    /// installing the program is cheap, because the kernel runs it over every syscall
    /// number to fill its action cache (a walk stops at the first argument load).
    pub(crate) fn compile(&self) -> Result<Filter, SeccompError> {
        let mut program = vec![
            stmt(LD_W_ABS, DATA_ARCH),
            jump(JMP_JEQ_K, AUDIT_ARCH_NATIVE, 1, 0),
            ret(Action::KillProcess),
            stmt(LD_W_ABS, DATA_NR),
        ];
        if cfg!(target_arch = "x86_64") {
            program.push(jump(JMP_JSET_K, X32_SYSCALL_BIT, 0, 1));
            program.push(ret(Action::Errno(libc::ENOSYS as u16)));
        }
        // Each syscall's leaf: its action when its first check decides whatever the
        // arguments, else its body.
        // (In number order: the groups are.)
        let mut leaves: Vec<(u32, Leaf)> = Vec::with_capacity(self.groups.len());
        let mut bodies: Vec<Vec<Instruction>> = Vec::new();
        for (nr, checks) in &self.groups {
            // A first check without condition decides: no body to build.
            let leaf = match checks.first() {
                Some(Check {
                    test: Test::Always,
                    action,
                    ..
                }) => Leaf::Ret(*action),
                _ => {
                    let body = self.compile_group(*nr, checks)?;
                    match body.as_slice() {
                        [only] if only.code == RET_K => Action::from_ret(only.k)
                            .map(Leaf::Ret)
                            .ok_or(SeccompError::Inexpressible {
                                nr: Some(i64::from(*nr)),
                                what: "an unknown return value",
                            })?,
                        _ => {
                            bodies.push(body);
                            Leaf::Body(bodies.len() - 1)
                        }
                    }
                }
            };
            leaves.push((*nr, leaf));
        }
        let steps = runs(&leaves, Leaf::Ret(self.default));
        let tree = search_leaves(&steps, Leaf::Ret(self.default));
        // Lay out: the header, the tree, then the bodies; patch the tree's jumps.
        let tree_start = program.len();
        let mut body_start = Vec::with_capacity(bodies.len());
        let mut at = tree_start + tree.len();
        for body in &bodies {
            body_start.push(at);
            at += body.len();
        }
        for (i, node) in tree.into_iter().enumerate() {
            program.push(match node {
                Node::Insn(ins) => ins,
                Node::ToBody(b) => {
                    let from = tree_start + i + 1;
                    let to = *body_start.get(b).ok_or(SeccompError::Inexpressible {
                        nr: None,
                        what: "a jump to a missing body",
                    })?;
                    let offset =
                        u32::try_from(to - from).map_err(|_| SeccompError::FilterTooLarge(at))?;
                    stmt(JMP_JA, offset)
                }
            });
        }
        for body in bodies {
            program.extend(body);
        }
        if program.len() > MAX_INSTRUCTIONS {
            return Err(SeccompError::FilterTooLarge(program.len()));
        }
        Ok(Filter::single(program))
    }
}

/// Where a syscall number leads in [`ProgramBuilder::compile`]'s search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaf {
    /// Returns the action whatever the arguments.
    Ret(Action),
    /// Jumps to the body with this index (argument checks).
    Body(usize),
}

/// An instruction of the search, or a jump to a body not yet placed.
enum Node {
    Insn(Instruction),
    ToBody(usize),
}

/// Boundaries where the leaf changes (`leaves` in number order), with the leaf from
/// there on (below the first: `other`). Consecutive numbers returning the same action
/// form one run; a body is a run of its own.
fn runs(leaves: &[(u32, Leaf)], other: Leaf) -> Vec<(u32, Leaf)> {
    let mut steps: Vec<(u32, Leaf)> = Vec::new();
    let mut previous: Option<(u32, Leaf)> = None;
    for &(n, leaf) in leaves {
        let joins = matches!(leaf, Leaf::Ret(_));
        match previous {
            Some((p, l)) if p.checked_add(1) == Some(n) && l == leaf && joins => {}
            Some((p, _)) if p.checked_add(1) == Some(n) => steps.push((n, leaf)),
            _ => {
                if let Some((p, _)) = previous {
                    steps.push((p + 1, other));
                }
                steps.push((n, leaf));
            }
        }
        previous = Some((n, leaf));
    }
    if let Some((p, _)) = previous {
        steps.push((p + 1, other));
    }
    steps
}

/// The decision over `steps` (sorted boundaries, the leaf from each one on) for a
/// number below which the leaf is `below`: a `JGE` on the middle boundary over the
/// left half (through a `JA` when the left half is longer than a conditional jump
/// reaches); a body is reached by a `JA` placed after the search.
fn search_leaves(steps: &[(u32, Leaf)], below: Leaf) -> Vec<Node> {
    if steps.is_empty() {
        return vec![match below {
            Leaf::Ret(action) => Node::Insn(ret(action)),
            Leaf::Body(b) => Node::ToBody(b),
        }];
    }
    let mid = steps.len() / 2;
    let (at, from_mid) = steps[mid];
    let left = search_leaves(&steps[..mid], below);
    let right = search_leaves(&steps[mid + 1..], from_mid);
    let mut code = Vec::with_capacity(left.len() + right.len() + 2);
    match u8::try_from(left.len()) {
        Ok(over) => code.push(Node::Insn(jump(JMP_JGE_K, at, over, 0))),
        // JA's 32-bit offset has no 255 limit.
        Err(_) => {
            code.push(Node::Insn(jump(JMP_JGE_K, at, 0, 1)));
            code.push(Node::Insn(stmt(JMP_JA, left.len() as u32)));
        }
    }
    code.extend(left);
    code.extend(right);
    code
}

/// A program deciding on the syscall number alone: `member` for the numbers of
/// `numbers`, `other` for every other number (x32 numbers included, which are never
/// members), KILL_PROCESS for a foreign architecture. The numbers are grouped into
/// runs of consecutive members and found by binary search over the run boundaries
/// (`JGE`), so a lookup costs about 2·log2(boundaries) instructions whatever the
/// number, where a chain of `JEQ`s costs one per listed syscall before it. The result
/// depends on the number only, so the kernel's action cache applies.
#[cfg(test)]
pub(crate) fn number_set(
    numbers: &std::collections::BTreeSet<u32>,
    member: Action,
    other: Action,
) -> Result<Filter, SeccompError> {
    let map = numbers.iter().map(|&n| (n, member)).collect();
    number_map(&map, other)
}

/// Like [`number_set`], with an action per number: `numbers[n]` for a number in the
/// map, `other` for the rest (binary search over runs of numbers with one action).
pub(crate) fn number_map(
    numbers: &std::collections::BTreeMap<u32, Action>,
    other: Action,
) -> Result<Filter, SeccompError> {
    let leaves: Vec<(u32, Leaf)> = numbers
        .iter()
        .filter(|(&n, _)| n & X32_SYSCALL_BIT == 0)
        .map(|(&n, &action)| (n, Leaf::Ret(action)))
        .collect();
    let steps = runs(&leaves, Leaf::Ret(other));
    let mut program = vec![
        stmt(LD_W_ABS, DATA_ARCH),
        jump(JMP_JEQ_K, AUDIT_ARCH_NATIVE, 1, 0),
        ret(Action::KillProcess),
        stmt(LD_W_ABS, DATA_NR),
    ];
    for node in search_leaves(&steps, Leaf::Ret(other)) {
        match node {
            Node::Insn(ins) => program.push(ins),
            Node::ToBody(_) => {
                return Err(SeccompError::Inexpressible {
                    nr: None,
                    what: "a body in a number map",
                })
            }
        }
    }
    if program.len() > MAX_INSTRUCTIONS {
        return Err(SeccompError::FilterTooLarge(program.len()));
    }
    Ok(Filter::single(program))
}

/// A comparison of a whole 64-bit syscall argument with `value`, as a seccomp profile
/// (OCI `linux.seccomp.syscalls[].args`, libseccomp's `SCMP_CMP_*`) states it. All
/// comparisons are unsigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgOp {
    /// `arg == value`.
    Eq,
    /// `arg != value`.
    Ne,
    /// `arg < value`.
    Lt,
    /// `arg <= value`.
    Le,
    /// `arg > value`.
    Gt,
    /// `arg >= value`.
    Ge,
    /// `arg & mask == value`.
    MaskedEq {
        /// The mask.
        mask: u64,
    },
}

/// One argument condition of a [`ProfileRule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgCmp {
    /// Argument index, 0..=5.
    pub arg: u8,
    /// The comparison.
    pub op: ArgOp,
    /// The value compared with.
    pub value: u64,
}

/// A rule of a seccomp profile: `action` for syscall `nr` when every condition of
/// `args` holds (no condition: whatever the arguments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileRule {
    /// Native syscall number.
    pub nr: u32,
    /// Conditions, all of which must hold.
    pub args: Vec<ArgCmp>,
    /// What the syscall gets.
    pub action: Action,
}

/// A jump target while a program is assembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Label {
    /// The next instruction.
    Next,
    /// A label resolved later.
    At(usize),
}

/// A small assembler with forward labels, for branches over whole checks.
#[derive(Default)]
struct Assembler {
    code: Vec<(u16, u32, Label, Label)>,
    labels: Vec<Option<usize>>,
}

impl Assembler {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label::At(self.labels.len() - 1)
    }
    fn place(&mut self, label: Label) {
        if let Label::At(i) = label {
            self.labels[i] = Some(self.code.len());
        }
    }
    fn stmt(&mut self, code: u16, k: u32) {
        self.code.push((code, k, Label::Next, Label::Next));
    }
    fn jump(&mut self, code: u16, k: u32, jt: Label, jf: Label) {
        self.code.push((code, k, jt, jf));
    }
    fn finish(self) -> Result<Vec<Instruction>, SeccompError> {
        let mut out = Vec::with_capacity(self.code.len());
        for (pc, &(code, k, jt, jf)) in self.code.iter().enumerate() {
            let offset = |l: Label| -> Result<u8, SeccompError> {
                let target = match l {
                    Label::Next => pc + 1,
                    Label::At(i) => self.labels[i].ok_or(SeccompError::Inexpressible {
                        nr: None,
                        what: "a jump to an unplaced label",
                    })?,
                };
                target
                    .checked_sub(pc + 1)
                    .and_then(|d| u8::try_from(d).ok())
                    .ok_or(SeccompError::FilterTooLarge(self.code.len()))
            };
            out.push(jump(code, k, offset(jt)?, offset(jf)?));
        }
        Ok(out)
    }
}

/// Emits the test of one condition: falls through when it holds, jumps to `fail`
/// otherwise. The high word is compared first, then the low word.
fn emit_arg_check(asm: &mut Assembler, cmp: &ArgCmp, fail: Label) {
    let lo_off = arg_low_offset(cmp.arg);
    let hi_off = if cfg!(target_endian = "big") {
        lo_off - 4
    } else {
        lo_off + 4
    };
    let (vhi, vlo) = ((cmp.value >> 32) as u32, cmp.value as u32);
    let pass = asm.label();
    match cmp.op {
        ArgOp::Eq | ArgOp::MaskedEq { .. } | ArgOp::Ne => {
            let (mhi, mlo) = match cmp.op {
                ArgOp::MaskedEq { mask } => ((mask >> 32) as u32, mask as u32),
                _ => (u32::MAX, u32::MAX),
            };
            let (on_equal, on_differ) = if cmp.op == ArgOp::Ne {
                (fail, pass)
            } else {
                (pass, fail)
            };
            asm.stmt(LD_W_ABS, hi_off);
            if mhi != u32::MAX {
                asm.stmt(ALU_AND_K, mhi);
            }
            asm.jump(JMP_JEQ_K, vhi & mhi, Label::Next, on_differ);
            asm.stmt(LD_W_ABS, lo_off);
            if mlo != u32::MAX {
                asm.stmt(ALU_AND_K, mlo);
            }
            asm.jump(JMP_JEQ_K, vlo & mlo, on_equal, on_differ);
        }
        ArgOp::Gt | ArgOp::Ge | ArgOp::Lt | ArgOp::Le => {
            // Greater (or equal) is decided by the high word unless it is equal.
            let (above, below) = match cmp.op {
                ArgOp::Gt | ArgOp::Ge => (pass, fail),
                _ => (fail, pass),
            };
            asm.stmt(LD_W_ABS, hi_off);
            asm.jump(JMP_JGT_K, vhi, above, Label::Next);
            asm.jump(JMP_JEQ_K, vhi, Label::Next, below);
            asm.stmt(LD_W_ABS, lo_off);
            match cmp.op {
                ArgOp::Gt => asm.jump(JMP_JGT_K, vlo, pass, fail),
                ArgOp::Ge => asm.jump(JMP_JGE_K, vlo, pass, fail),
                ArgOp::Lt => asm.jump(JMP_JGE_K, vlo, fail, pass),
                _ => asm.jump(JMP_JGT_K, vlo, fail, pass),
            }
        }
    }
    asm.place(pass);
}

/// Compiles a seccomp profile: for each syscall its rules with conditions in the
/// given order, the first whose conditions all hold deciding; then the most severe of
/// its rules without condition; `default` for every other syscall (x32 numbers
/// included); a foreign architecture is killed. One program that decides on
/// the number alone ([`number_map`]), and, when some rule has conditions, a second
/// one for those syscalls only (ALLOW for every other, so the first decides), in
/// which the arguments are compared as whole 64-bit values.
pub(crate) fn profile_filter(
    default: Action,
    rules: &[ProfileRule],
) -> Result<Filter, SeccompError> {
    let mut by_nr: std::collections::BTreeMap<u32, Vec<&ProfileRule>> = Default::default();
    for rule in rules {
        if rule.nr & X32_SYSCALL_BIT != 0 {
            return Err(SeccompError::InvalidSyscall(i64::from(rule.nr)));
        }
        for cmp in &rule.args {
            check_argument(rule.nr, cmp.arg)?;
        }
        by_nr.entry(rule.nr).or_default().push(rule);
    }
    // Per syscall: the conditioned rules in order, then the most severe of its
    // unconditioned rules (two rules with no condition and different actions: the
    // safer wins), else the default.
    let mut map = std::collections::BTreeMap::new();
    let mut conditioned = Vec::new();
    for (&nr, rules) in &by_nr {
        let fallback = rules
            .iter()
            .filter(|r| r.args.is_empty())
            .map(|r| r.action)
            .min_by_key(|a| a.severity())
            .unwrap_or(default);
        let checks: Vec<&ProfileRule> = rules
            .iter()
            .copied()
            .filter(|r| !r.args.is_empty())
            .collect();
        if checks.is_empty() {
            map.insert(nr, fallback);
        } else {
            map.insert(nr, Action::Allow);
            conditioned.push((nr, checks, fallback));
        }
    }
    let numbers = number_map(&map, default)?;
    if conditioned.is_empty() {
        return Ok(numbers);
    }
    let mut asm = Assembler::default();
    // A foreign architecture: the number program kills it.
    let native = asm.label();
    asm.stmt(LD_W_ABS, DATA_ARCH);
    asm.jump(JMP_JEQ_K, AUDIT_ARCH_NATIVE, native, Label::Next);
    asm.stmt(RET_K, Action::Allow.ret());
    asm.place(native);
    for (nr, checks, fallback) in conditioned {
        let next_nr = asm.label();
        asm.stmt(LD_W_ABS, DATA_NR);
        asm.jump(JMP_JEQ_K, nr, Label::Next, next_nr);
        for rule in checks {
            let next_rule = asm.label();
            for cmp in &rule.args {
                emit_arg_check(&mut asm, cmp, next_rule);
            }
            asm.stmt(RET_K, rule.action.ret());
            asm.place(next_rule);
        }
        asm.stmt(RET_K, fallback.ret());
        asm.place(next_nr);
    }
    asm.stmt(RET_K, Action::Allow.ret());
    let program = asm.finish()?;
    if program.len() > MAX_INSTRUCTIONS {
        return Err(SeccompError::FilterTooLarge(program.len()));
    }
    Ok(Filter::stack(numbers, Filter::single(program)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NATIVE: u32 = AUDIT_ARCH_NATIVE;

    fn nr(n: libc::c_long) -> i32 {
        n as i32
    }

    #[test]
    fn action_return_values_round_trip() {
        for action in [
            Action::KillProcess,
            Action::KillThread,
            Action::Trap,
            Action::Errno(1),
            Action::Errno(512),
            Action::UserNotif,
            Action::Trace(7),
            Action::Log,
            Action::Allow,
        ] {
            assert_eq!(Action::from_ret(action.ret()), Some(action));
        }
        assert_eq!(Action::UserNotif.ret(), libc::SECCOMP_RET_USER_NOTIF);
        assert_eq!(Action::Allow.ret(), libc::SECCOMP_RET_ALLOW);
        assert_eq!(Action::Errno(0).ret(), libc::SECCOMP_RET_ERRNO);
        assert_eq!(Action::KillProcess.ret(), libc::SECCOMP_RET_KILL_PROCESS);
    }

    #[test]
    fn groups_checks_and_default() {
        const VALUES: &[u32] = &[3, 5];
        let mut b = ProgramBuilder::new(Action::Allow);
        b.rule(&SyscallRule {
            name: "x",
            nr: libc::SYS_getpid,
            when: When::ArgIn {
                arg: 2,
                mask: u32::MAX,
                values: VALUES,
            },
            action: Action::Errno(1),
            reason: "",
        })
        .unwrap();
        b.rule(&SyscallRule {
            name: "y",
            nr: libc::SYS_getppid,
            when: When::ArgNotIn {
                arg: 0,
                mask: 0xff,
                values: VALUES,
            },
            action: Action::Errno(2),
            reason: "",
        })
        .unwrap();
        b.rule(&SyscallRule {
            name: "z",
            nr: libc::SYS_gettid,
            when: When::ArgAnyBit { arg: 5, mask: 0x30 },
            action: Action::Errno(3),
            reason: "",
        })
        .unwrap();
        b.always(libc::SYS_getuid, Action::UserNotif).unwrap();
        // A second check for getpid: consulted after the first fails.
        b.always(libc::SYS_getpid, Action::Errno(4)).unwrap();
        let f = b.compile().unwrap();
        let at = |n: libc::c_long, args: [u64; 6]| f.action_for(NATIVE, nr(n), args);
        let z = [0u64; 6];

        assert_eq!(
            at(libc::SYS_getpid, [0, 0, 5, 0, 0, 0]),
            Some(Action::Errno(1))
        );
        // High bits are ignored: the low word decides.
        assert_eq!(
            at(libc::SYS_getpid, [0, 0, 3 | 1 << 40, 0, 0, 0]),
            Some(Action::Errno(1))
        );
        assert_eq!(
            at(libc::SYS_getpid, [0, 0, 4, 0, 0, 0]),
            Some(Action::Errno(4))
        );

        assert_eq!(
            at(libc::SYS_getppid, [0x105, 0, 0, 0, 0, 0]),
            Some(Action::Allow)
        );
        assert_eq!(
            at(libc::SYS_getppid, [0x104, 0, 0, 0, 0, 0]),
            Some(Action::Errno(2))
        );

        assert_eq!(
            at(libc::SYS_gettid, [0, 0, 0, 0, 0, 0x10]),
            Some(Action::Errno(3))
        );
        assert_eq!(
            at(libc::SYS_gettid, [0, 0, 0, 0, 0, 0x0f]),
            Some(Action::Allow)
        );

        assert_eq!(at(libc::SYS_getuid, z), Some(Action::UserNotif));
        assert_eq!(at(libc::SYS_write, z), Some(Action::Allow));

        // Foreign architecture and (on x86_64) x32 numbers.
        assert_eq!(
            f.action_for(AUDIT_ARCH_I386, nr(libc::SYS_write), z),
            Some(Action::KillProcess)
        );
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                f.action_for(NATIVE, (X32_SYSCALL_BIT as i32) | nr(libc::SYS_getuid), z),
                Some(Action::Errno(libc::ENOSYS as u16))
            );
        }
    }

    #[test]
    fn a_stack_decides_like_the_kernel() {
        let program = |action: Action| {
            let mut b = ProgramBuilder::new(Action::Allow);
            b.always(libc::SYS_getpid, action).unwrap();
            b.compile().unwrap()
        };
        let at = |f: &Filter, n: libc::c_long| f.action_for(NATIVE, nr(n), [0; 6]);
        // Equally severe: the program installed last decides.
        let f = Filter::stack(program(Action::Errno(1)), program(Action::Errno(2)));
        assert_eq!(f.programs().len(), 2);
        assert_eq!(f.len(), 2 * program(Action::Errno(1)).len());
        assert_eq!(at(&f, libc::SYS_getpid), Some(Action::Errno(2)));
        // Otherwise the most severe, wherever it is.
        let f = Filter::stack(program(Action::Errno(1)), program(Action::UserNotif));
        assert_eq!(at(&f, libc::SYS_getpid), Some(Action::Errno(1)));
        let f = Filter::stack(program(Action::KillProcess), program(Action::Errno(1)));
        assert_eq!(at(&f, libc::SYS_getpid), Some(Action::KillProcess));
        assert_eq!(at(&f, libc::SYS_getppid), Some(Action::Allow));
        assert!(Action::KillProcess.severity() < Action::KillThread.severity());
        assert!(Action::Errno(9).severity() < Action::UserNotif.severity());
        assert!(Action::Log.severity() < Action::Allow.severity());
    }

    #[test]
    fn rejects_bad_numbers_and_absent_rows_are_skipped() {
        let mut b = ProgramBuilder::new(Action::Allow);
        assert!(matches!(
            b.always(-5, Action::Errno(1)),
            Err(SeccompError::InvalidSyscall(-5))
        ));
        assert!(matches!(
            b.always(0x4000_0000 | 1, Action::Errno(1)),
            Err(SeccompError::InvalidSyscall(_))
        ));
        b.always(ABSENT, Action::Errno(1)).unwrap();
        let f = b.compile().unwrap();
        let empty = ProgramBuilder::new(Action::Allow).compile().unwrap();
        assert_eq!(f, empty);
    }

    #[test]
    fn too_many_values_in_one_check_is_an_error() {
        let mut b = ProgramBuilder::new(Action::Allow);
        b.ioctls(0..300u32, Action::Errno(1)).unwrap();
        assert!(matches!(
            b.compile(),
            Err(SeccompError::GroupTooLarge { len: 300, .. })
        ));
    }

    #[test]
    fn number_set_finds_members_by_binary_search() {
        let numbers: std::collections::BTreeSet<u32> =
            [0, 1, 2, 5, 7, 8, 9, 100, 334, 424, 425, 469, 4000].into();
        let allow = Action::Allow;
        let enosys = Action::Errno(libc::ENOSYS as u16);
        let f = number_set(&numbers, allow, enosys).unwrap();
        for n in 0..5000u32 {
            let want = if numbers.contains(&n) { allow } else { enosys };
            assert_eq!(f.action_for(NATIVE, n as i32, [0; 6]), Some(want), "{n}");
        }
        for n in [u32::MAX, X32_SYSCALL_BIT, X32_SYSCALL_BIT | 1, 0x8000_0000] {
            assert_eq!(
                f.action_for(NATIVE, n as i32, [0; 6]),
                Some(enosys),
                "{n:#x}"
            );
        }
        assert_eq!(
            f.action_for(AUDIT_ARCH_I386, 1, [0; 6]),
            Some(Action::KillProcess)
        );
        // A few dozen instructions, however many numbers.
        let many: std::collections::BTreeSet<u32> = (0..1000).filter(|n| n % 3 != 0).collect();
        let g = number_set(&many, allow, enosys).unwrap();
        assert!(g.len() < 2600, "{}", g.len());
        for n in 0..1100u32 {
            let want = if many.contains(&n) { allow } else { enosys };
            assert_eq!(g.action_for(NATIVE, n as i32, [0; 6]), Some(want), "{n}");
        }
        let empty = number_set(&std::collections::BTreeSet::new(), allow, enosys).unwrap();
        assert_eq!(empty.action_for(NATIVE, 0, [0; 6]), Some(enosys));
    }
}
