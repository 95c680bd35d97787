//! x86-64 emitter: a [`CallPlan`] in, a position-independent call stub or
//! closure thunk out.
//!
//! # Call stubs
//!
//! The stub is a SysV function `stub(fn, rvalue, args)` (see
//! [`EntryForm`]). It knows no ABI: it moves every piece of every argument
//! to the location the plan names, calls `fn`, and (libffi form) stores the
//! plan's return pieces; the packed form leaves the return registers as the
//! callee set them. The code is straight-line: the only branch is the
//! null-`rvalue` test (and, for frames over a page, a fixed-count
//! stack-probe loop).
//!
//! Two shapes:
//!
//! - *Tail stubs*, when nothing needs a frame (no stack arguments, no
//!   shadow space, no temporaries, a target that preserves every register
//!   SysV does) and nothing happens after the call (the packed form, or a
//!   void return): `mov [rsp-8], rdi` (the red zone), `mov r10, rdx`, the
//!   register loads, `al`, `jmp [rsp-8]`. The callee returns straight to
//!   our caller. S2 in the packed form is 7 instructions.
//!
//!   ```
//!   use jitffi::{classify::classify, emit::{x64, EntryForm}, Abi, Type};
//!   let s2 = classify(Abi::SysV64, &Type::i32(), &[Type::i32(), Type::i32()], None).unwrap();
//!   let code = x64::compile_call(&s2, EntryForm::Packed).unwrap();
//!   assert!(code.ends_with(&[0xFF, 0x64, 0x24, 0xF8])); // jmp [rsp-8]
//!   ```
//! - *Framed stubs*, everything else, laid out below.
//!
//! Order inside the stub: stack pieces and Indirect copies first (copies
//! may use `rep movsb`, which clobbers `rdi`/`rsi`/`rcx`, and `xmm0`/`rax`),
//! then Indirect and sret addresses, then register pieces, then `al`, then
//! `call r12`.
//!
//! Frame, from high to low addresses:
//!
//! ```text
//!   [rbp + 8]    return address
//!   [rbp]        caller's rbp          <- rbp (frame-pointer chain)
//!   [rbp - 8]    caller's rbx          (rbx = rvalue, or the sret temporary)
//!   [rbp - 16]   caller's r12          (r12 = fn)
//!   ...          caller's r13-r15 the target may clobber, then 8 bytes of
//!                padding if their count is odd
//!   ...          temporaries: Indirect argument copies, sret buffer,
//!                each 16-aligned; rbx's slot (see below)
//!   [rsp + off]  outgoing argument area (plan.stack_bytes, shadow space
//!                included)             <- rsp, 16-aligned at the call
//! ```
//!
//! The stub is a SysV function whatever the target's ABI, so it keeps
//! every register SysV makes callee-saved (`rbx`, `rbp`, `r12`-`r15`) for
//! its caller. Those missing from the target's `plan.callee_saved` (none
//! for SysV and Win64 targets, so their stubs carry none of this) are
//! pushed and popped, and the stub's own state is brought back after the
//! call: `rbp` recomputed from `rsp`, `rbx` reloaded from its frame slot
//! when the libffi form still needs it.
//!
//! `r10` holds the argument base (`avalue` or the packed buffer), `r11` the
//! address of the libffi-form argument being moved, `rax` composes odd-sized
//! aggregate tails. None of them, nor `rbx`/`r12`/`rsp`/`rbp`, may be a
//! plan's argument register.
//!
//! A plan with a static chain makes the stub `stub(fn, rvalue, args,
//! chain)`: the fourth argument is put away first thing (the frame, or the
//! red zone of a tail stub, where `rcx` is still free) and loaded into the
//! chain register last, right before the call, when the argument base in
//! `r10` is no longer needed.
//!
//! # Closure thunks
//!
//! A thunk ([`compile_closure_thunk`]) is a stub's mirror image, compiled
//! from the same plan and shared by every closure of the shape. It is a
//! native function of the plan's signature entered with one extra register:
//! `r11` = the closure record (see [`crate::closure::record`]), set by the
//! slot trampoline. It gathers the arguments into an argument-pointer
//! array, calls the record's handler `fun(cif, rvalue, args, user_data)`
//! (a SysV function), and hands the result back the way the plan says.
//!
//! ```text
//!   [rbp + 16 + off]  the caller's stack arguments (plan offset `off`,
//!                shadow space included)
//!   [rbp + 8]    return address
//!   [rbp]        caller's rbp          <- rbp (frame-pointer chain)
//!   ...          saved registers: xmm (16-aligned, 16 bytes each), then
//!                general registers
//!   ...          the sret pointer's slot (sret returns only)
//!   ...          return buffer: max(16, round16(size)) bytes, 16-aligned
//!                (none for an sret return: the handler writes straight
//!                into the caller's buffer, as with libffi)
//!   ...          value slots, 16-aligned, one per argument the thunk copies
//!   [rsp + 8i]   args[i]               <- rsp, 16-aligned at the call
//! ```
//!
//! The record stays in `r11` from the trampoline to the handler call
//! (nothing before the call touches `r11`), and nothing is needed from it
//! afterwards. The handler keeps SysV's callee-saved registers and the
//! thunk touches none of them but `rbp`, so a SysV thunk saves nothing:
//! `push rbp` and the frame are all. For a caller of another ABI the thunk
//! saves, first thing, every register of `plan.callee_saved` a SysV
//! handler may clobber (Win64: `rsi`, `rdi`, all 16 bytes of
//! `xmm6`-`xmm15`) and restores them right after the handler returns,
//! before the return registers are loaded (a plan naming a register both
//! callee-saved and a return location is refused).
//!
//! `args[i]` points into the caller's area when argument `i` arrives whole
//! and in order on the stack (no copy), is the pointer itself for an
//! Indirect argument, and otherwise points at a slot the thunk fills: every
//! register piece is stored first (odd sizes as two stores ending at the
//! piece's end, or one word when the bytes past the piece are slot
//! padding), then stack pieces are copied, as every argument register is
//! free by then. Return pieces are loaded from the buffer into distinct
//! registers, narrow integers widened from their own `size` bytes (so a
//! handler may write either an `ffi_arg` or the bare value); x87 values
//! are pushed deepest first so that `st0` ends on top.
//!
//! ```
//! use jitffi::{classify::classify, emit::x64, Abi, Type};
//! let s2 = classify(Abi::SysV64, &Type::i32(), &[Type::i32(), Type::i32()], None).unwrap();
//! let code = x64::compile_closure_thunk(&s2).unwrap();
//! assert!(code.windows(4).any(|w| w == [0x4D, 0x8B, 0x53, 0x28])); // mov r10, [r11 + 40]
//! assert!(code.windows(3).any(|w| w == [0x41, 0xFF, 0xD2])); // call r10
//! ```
//!
//! # Unwind information
//!
//! [`compile_call_with_unwind`] and [`compile_closure_thunk_with_unwind`]
//! also describe the frame at every offset ([`Code::frame`]), which
//! [`crate::unwind`] turns into `.eh_frame`, so C++ exceptions and
//! backtraces pass through generated code. Each change is noted right after
//! the instruction that makes it: `push rbp` (CFA = `rsp + 16`, `rbp` at
//! `CFA - 16`), `mov rbp, rsp` (CFA = `rbp + 16`, which then covers the
//! probe loop, the outgoing area and the call), every push or store of a
//! register kept for the caller (at its slot), and the epilogue's pops and
//! reloads. A stub whose target may clobber `rbp` finds its frame from
//! `rsp` while the target runs. Epilogues come last, so the description
//! read in order is right at every offset. Tail stubs never move `rsp`
//! and need no change at all.

// dynasm's dynamic-register expansion calls `.into()` on our `u8`s.
#![allow(clippy::useless_conversion)]

use dynasmrt::x64::X64Relocation;
use dynasmrt::{dynasm, DynasmApi, DynasmLabelApi, VecAssembler};

use super::{Code, EntryForm, FrameChange, FrameStep};
use crate::closure::record;
use crate::error::{Error, Result};
use crate::plan::{ArgPass, CallPlan, Ext, Loc, Piece, RetPass};

/// `endbr64`: the first instruction of every stub, so indirect calls into
/// it are legal under CET indirect-branch tracking.
const ENDBR64: [u8; 4] = [0xF3, 0x0F, 0x1E, 0xFA];

/// Largest frame accepted; keeps every displacement well inside `i32`.
const MAX_FRAME: u64 = 1 << 30;

/// Frames above this touch every page on the way down, so a huge frame hits
/// the guard page instead of jumping over it.
const PAGE: u64 = 4096;

/// Copies longer than this use `rep movsb` instead of unrolled moves.
const REP_MOVSB_MIN: u32 = 128;

type Ops = VecAssembler<X64Relocation>;

const RAX: u8 = 0;
const RBX: u8 = 3;
const RSP: u8 = 4;
const RBP: u8 = 5;
const R10: u8 = 10;
const R11: u8 = 11;
const R12: u8 = 12;
#[cfg(all(test, target_arch = "x86_64"))]
const R13: u8 = 13;
#[cfg(all(test, target_arch = "x86_64"))]
const R14: u8 = 14;
#[cfg(all(test, target_arch = "x86_64"))]
const R15: u8 = 15;
const RSI: u8 = 6;

/// Registers a SysV function preserves for its caller. Stubs are entered
/// and thunks call their handler under SysV whatever the plan's ABI: a stub
/// saves those of them the target's `callee_saved` lacks, a thunk saves the
/// target's `callee_saved` registers that are not among them. The set
/// itself is ABI knowledge, kept in the SysV classifier.
const SYSV_CALLEE_SAVED: [u8; 6] = crate::classify::sysv64::CALLEE_SAVED;

/// Registers the stub keeps for itself while arguments are loaded.
const RESERVED_ARG: [u8; 7] = [RAX, RBX, RSP, RBP, R10, R11, R12];
/// Registers a return piece cannot come back in (after the call `rbx` and
/// `r12` still hold the stub's state and `r11` is the store scratch).
const RESERVED_RET: [u8; 5] = [RBX, RSP, RBP, R11, R12];

/// A base register a memory operand may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    /// The argument base.
    R10,
    /// The current libffi-form argument.
    R11,
    /// The frame (outgoing area and temporaries).
    Rsp,
    /// The return buffer.
    Rbx,
    /// The frame pointer (a closure thunk's incoming stack arguments).
    Rbp,
}

/// A memory operand `[base + disp]`.
#[derive(Clone, Copy, Debug)]
struct Mem {
    base: Base,
    disp: i32,
}

impl Mem {
    fn new(base: Base, disp: u64) -> Result<Mem> {
        Ok(Mem {
            base,
            disp: disp_i32(disp)?,
        })
    }

    /// The operand `delta` bytes further on.
    fn plus(self, delta: u32) -> Result<Mem> {
        let d = i64::from(self.disp) + i64::from(delta);
        Ok(Mem {
            base: self.base,
            disp: i32::try_from(d).map_err(|_| asm_err(format!("displacement {d} too large")))?,
        })
    }
}

fn disp_i32(v: u64) -> Result<i32> {
    i32::try_from(v).map_err(|_| asm_err(format!("displacement {v} too large")))
}

fn asm_err(reason: impl Into<String>) -> Error {
    Error::Assembly {
        reason: reason.into(),
    }
}

fn round16(v: u64) -> u64 {
    v.div_ceil(16) * 16
}

/// Plain dynasm for x64 into `$ops`.
macro_rules! asm {
    ($ops:ident $($t:tt)*) => {
        dynasm!($ops ; .arch x64 $($t)*)
    };
}

/// One instruction with a [`Mem`] operand between the `pre` and `post`
/// tokens. The base register is static in each arm so the encoding is the
/// shortest one (no SIB byte except for rsp, disp8 or no displacement where
/// it fits).
macro_rules! mem {
    ($ops:ident, $m:expr, [$($pre:tt)*], [$($post:tt)*]) => {{
        let m: Mem = $m;
        let d: i32 = m.disp;
        match (m.base, i8::try_from(d)) {
            (Base::R10, Ok(0)) => asm!($ops ; $($pre)* [r10] $($post)*),
            (Base::R10, Ok(b)) => asm!($ops ; $($pre)* [BYTE r10 + b] $($post)*),
            (Base::R10, Err(_)) => asm!($ops ; $($pre)* [r10 + d] $($post)*),
            (Base::R11, Ok(0)) => asm!($ops ; $($pre)* [r11] $($post)*),
            (Base::R11, Ok(b)) => asm!($ops ; $($pre)* [BYTE r11 + b] $($post)*),
            (Base::R11, Err(_)) => asm!($ops ; $($pre)* [r11 + d] $($post)*),
            (Base::Rsp, Ok(0)) => asm!($ops ; $($pre)* [rsp] $($post)*),
            (Base::Rsp, Ok(b)) => asm!($ops ; $($pre)* [BYTE rsp + b] $($post)*),
            (Base::Rsp, Err(_)) => asm!($ops ; $($pre)* [rsp + d] $($post)*),
            (Base::Rbx, Ok(0)) => asm!($ops ; $($pre)* [rbx] $($post)*),
            (Base::Rbx, Ok(b)) => asm!($ops ; $($pre)* [BYTE rbx + b] $($post)*),
            (Base::Rbx, Err(_)) => asm!($ops ; $($pre)* [rbx + d] $($post)*),
            (Base::Rbp, Ok(0)) => asm!($ops ; $($pre)* [rbp] $($post)*),
            (Base::Rbp, Ok(b)) => asm!($ops ; $($pre)* [BYTE rbp + b] $($post)*),
            (Base::Rbp, Err(_)) => asm!($ops ; $($pre)* [rbp + d] $($post)*),
        }
    }};
}

/// Frame offsets of the temporaries, computed before any code is emitted.
struct Frame {
    /// Bytes of temporaries and outgoing area (a multiple of 16).
    size: u64,
    /// Bytes `rsp` moves below the pushed registers: `size`, plus 8 when
    /// an odd number of extra registers is pushed.
    alloc: u64,
    /// For each argument, the offset of its Indirect copy.
    arg_temps: Vec<Option<u64>>,
    /// The offset of the sret buffer used when `rvalue` is null.
    sret_temp: Option<u64>,
    /// SysV callee-saved registers beyond `rbx`/`r12` that the target may
    /// clobber: pushed after `r12`, popped in the epilogue.
    pushed: Vec<u8>,
    /// The target may clobber `rbp`: recompute it from `rsp` after the call.
    restore_rbp: bool,
    /// The target may clobber `rbx` while the return still needs it: where
    /// it waits out the call.
    rbx_slot: Option<u64>,
    /// Where the static chain (the stub's fourth argument) waits for the
    /// call (see [`Frame::add_chain_slot`]).
    chain_slot: Option<u64>,
}

/// The SysV callee-saved registers `plan`'s target does not promise to
/// preserve (none for SysV and Win64 targets).
fn exposed(plan: &CallPlan) -> Vec<u8> {
    SYSV_CALLEE_SAVED
        .iter()
        .copied()
        .filter(|&r| !plan.callee_saved.contains(&Loc::Gpr(r)))
        .collect()
}

impl Frame {
    fn layout(plan: &CallPlan, form: EntryForm) -> Result<Frame> {
        let exposed = exposed(plan);
        let mut cursor = u64::from(plan.stack_bytes);
        let mut arg_temps = Vec::with_capacity(plan.args.len());
        for a in &plan.args {
            if let ArgPass::Indirect { .. } = a.pass {
                cursor = round16(cursor);
                arg_temps.push(Some(cursor));
                cursor += a.ty.size() as u64;
            } else {
                arg_temps.push(None);
            }
        }
        // The packed form requires a real buffer for memory returns; only
        // the libffi form accepts a null rvalue there.
        let sret_temp =
            if let (RetPass::Indirect { .. }, EntryForm::Libffi) = (&plan.ret.pass, form) {
                cursor = round16(cursor);
                let at = cursor;
                cursor += plan.ret.ty.size() as u64;
                Some(at)
            } else {
                None
            };
        // Only the libffi form reads rbx (the return buffer) after the call.
        let stores_return = form == EntryForm::Libffi
            && matches!(&plan.ret.pass, RetPass::Direct(pieces) if !pieces.is_empty());
        let rbx_slot = (stores_return && exposed.contains(&RBX)).then(|| {
            cursor = cursor.div_ceil(8) * 8;
            let at = cursor;
            cursor += 8;
            at
        });
        let size = round16(cursor);
        if size > MAX_FRAME {
            return Err(asm_err(format!(
                "stub frame of {size} bytes exceeds the limit of {MAX_FRAME}"
            )));
        }
        // rbx and r12 are pushed by every framed stub, rbp is the frame.
        let pushed: Vec<u8> = exposed
            .iter()
            .copied()
            .filter(|r| ![RBX, RBP, R12].contains(r))
            .collect();
        let alloc = size + 8 * (pushed.len() as u64 % 2);
        Ok(Frame {
            size,
            alloc,
            arg_temps,
            sret_temp,
            pushed,
            restore_rbp: exposed.contains(&RBP),
            rbx_slot,
            chain_slot: None,
        })
    }

    /// A slot for the static chain on top of the temporaries. Added once
    /// the stub is known to have a frame: a tail stub keeps the chain in
    /// the red zone instead.
    fn add_chain_slot(&mut self) -> Result<()> {
        self.chain_slot = Some(self.size);
        self.size += 16;
        self.alloc += 16;
        if self.size > MAX_FRAME {
            return Err(asm_err("stub frame too large"));
        }
        Ok(())
    }

    /// Bytes between `rbp` and the first byte below the pushed registers.
    fn pushed_below_rbp(&self) -> u64 {
        16 + 8 * self.pushed.len() as u64
    }

    /// The CFA's distance above `rsp` in the stub's body (`rbp + 16`).
    fn cfa_above_rsp(&self) -> Result<i32> {
        disp_i32(self.alloc + self.pushed_below_rbp() + 16)
    }
}

struct Emitter<'a> {
    ops: Ops,
    /// The frame description (see [`Code`]).
    frame: Vec<FrameStep>,
    plan: &'a CallPlan,
    form: EntryForm,
    /// No frame: the stub jumps to `fn` instead of calling it (see
    /// [`compile_call`]).
    tail: bool,
    /// The argument whose address `r11` holds (libffi form).
    r11_arg: Option<usize>,
    /// The static chain's register, when the plan passes one.
    chain: Option<u8>,
}

/// Assembles an x86-64 call stub for `plan` in entry form `form`.
///
/// ```
/// use jitffi::{classify::classify, emit::{x64, EntryForm}, plan::Loc, Abi, Type};
/// let mut plan = classify(Abi::SysV64, &Type::i32(), &[Type::i32()], None).unwrap();
/// let code = x64::compile_call(&plan, EntryForm::Libffi).unwrap();
/// // endbr64; push rbp; mov rbp, rsp ... ret: a framed stub.
/// assert!(code.starts_with(&[0xF3, 0x0F, 0x1E, 0xFA, 0x55, 0x48, 0x89, 0xE5]));
/// assert_eq!(code.last(), Some(&0xC3));
/// // With a static chain the stub takes a fourth argument and passes it
/// // in r10, loaded right before the call.
/// plan.static_chain = Some(Loc::Gpr(10));
/// let code = x64::compile_call(&plan, EntryForm::Libffi).unwrap();
/// assert!(code.windows(7).any(|w| w == [0x4C, 0x8B, 0x14, 0x24, 0x41, 0xFF, 0xD4])); // mov r10, [rsp]; call r12
/// plan.static_chain = Some(Loc::Gpr(7)); // rdi carries the argument
/// assert!(x64::compile_call(&plan, EntryForm::Libffi).is_err());
/// ```
pub fn compile_call(plan: &CallPlan, form: EntryForm) -> Result<Vec<u8>> {
    compile_call_with_unwind(plan, form).map(|c| c.bytes)
}

/// [`compile_call`] with the stub's frame description: framed stubs push
/// `rbp` and run with the CFA at `rbp + 16` (so the probe loop and the
/// outgoing area need no further steps), `rbx`, `r12` and any further
/// pushed register each at its push slot; tail stubs never move `rsp` and
/// have no steps at all (the red-zone slot holds no register of the
/// caller's).
///
/// ```
/// use jitffi::{classify::classify, emit::{x64, EntryForm, FrameChange::*}, plan::Loc, Abi, Type};
/// let plan = classify(Abi::SysV64, &Type::i32(), &[Type::i32()], None).unwrap();
/// let code = x64::compile_call_with_unwind(&plan, EntryForm::Libffi).unwrap();
/// let changes: Vec<_> = code.frame.iter().map(|s| s.change).take(5).collect();
/// let (rsp, rbp, rbx, r12) = (Loc::Gpr(4), Loc::Gpr(5), Loc::Gpr(3), Loc::Gpr(12));
/// assert_eq!(changes, [
///     Cfa { reg: rsp, offset: 16 }, Saved { reg: rbp, offset: -16 }, // push rbp
///     Cfa { reg: rbp, offset: 16 },                                  // mov rbp, rsp
///     Saved { reg: rbx, offset: -24 }, Saved { reg: r12, offset: -32 },
/// ]);
/// ```
pub fn compile_call_with_unwind(plan: &CallPlan, form: EntryForm) -> Result<Code> {
    plan.check()
        .map_err(|e| asm_err(format!("inconsistent plan: {e}")))?;
    check_return(plan)?;
    let chain = stub_chain(plan)?;
    let mut frame = Frame::layout(plan, form)?;
    if form == EntryForm::Packed {
        check_packed_return(plan, &frame)?;
    }
    // With nothing in the frame and nothing to do after the call, the stub
    // loads the arguments and jumps: no frame, no second return. Stack
    // arguments (Win64's shadow space among them) need a frame, and so
    // does a target that may clobber registers our caller expects intact.
    let tail = frame.size == 0
        && plan.stack_bytes == 0
        && exposed(plan).is_empty()
        && (form == EntryForm::Packed || matches!(plan.ret.pass, RetPass::Void));
    if chain.is_some() && !tail {
        frame.add_chain_slot()?;
    }
    let mut e = Emitter {
        ops: VecAssembler::new(0),
        // rbp, rbx, r12 and their undoing: 11 steps, 17 at most; a tail
        // stub has none.
        frame: Vec::with_capacity(if tail { 0 } else { 11 + 2 * frame.pushed.len() }),
        plan,
        form,
        tail,
        r11_arg: None,
        chain,
    };
    e.prologue(&frame)?;
    e.stack_phase(&frame)?;
    e.pointer_phase(&frame)?;
    e.register_phase()?;
    e.call(&frame)?;
    if !tail {
        e.after_call(&frame)?;
        if form == EntryForm::Libffi {
            e.store_return()?;
        }
        e.epilogue(&frame);
    }
    let bytes = e
        .ops
        .finalize()
        .map_err(|err| asm_err(format!("dynasm: {err}")))?;
    Ok(Code {
        bytes,
        frame: e.frame,
    })
}

/// Appends `change`, in effect from the current end of `ops` on.
fn note(ops: &Ops, frame: &mut Vec<FrameStep>, change: FrameChange) {
    // Generated code stays far below 4 GiB (frames are capped at 1 GiB and
    // the copies that big use `rep movsb`).
    let offset = u32::try_from(ops.offset().0).unwrap_or(u32::MAX);
    frame.push(FrameStep { offset, change });
}

/// The CFA rule `reg + offset`.
fn cfa(reg: u8, offset: i32) -> FrameChange {
    FrameChange::Cfa {
        reg: Loc::Gpr(reg),
        offset,
    }
}

/// The register `reg` saved at `CFA + offset`.
fn saved(reg: Loc, offset: i32) -> FrameChange {
    FrameChange::Saved { reg, offset }
}

/// `push rbp; mov rbp, rsp`, described: the frame every framed stub and
/// thunk opens with.
fn push_frame(ops: &mut Ops, frame: &mut Vec<FrameStep>) {
    asm!(ops ; push rbp);
    note(ops, frame, cfa(RSP, 16));
    note(ops, frame, saved(Loc::Gpr(RBP), -16));
    asm!(ops ; mov rbp, rsp);
    note(ops, frame, cfa(RBP, 16));
}

/// `pop rbp`, described: back to the entry state, `ret` next.
fn pop_frame(ops: &mut Ops, frame: &mut Vec<FrameStep>) {
    asm!(ops ; pop rbp);
    note(ops, frame, cfa(RSP, 8));
    note(ops, frame, FrameChange::Restored(Loc::Gpr(RBP)));
}

impl Emitter<'_> {
    fn prologue(&mut self, frame: &Frame) -> Result<()> {
        let ops = &mut self.ops;
        ops.extend(ENDBR64);
        if self.tail {
            // `fn` waits in the red zone (SysV guarantees 128 bytes below
            // rsp that nothing else, signal handlers included, touches):
            // every scratch register is spoken for.
            asm!(ops ; mov [rsp - 8], rdi);
            if self.chain.is_some() {
                asm!(ops ; mov [rsp - 16], rcx);
            }
            if !self.plan.args.is_empty() {
                asm!(ops ; mov r10, rdx);
            }
            return Ok(());
        }
        let cfi = &mut self.frame;
        push_frame(ops, cfi);
        // Each push lands 8 bytes below the previous one, rbp's at CFA - 16.
        asm!(ops ; push rbx);
        note(ops, cfi, saved(Loc::Gpr(RBX), -24));
        asm!(ops ; push r12);
        note(ops, cfi, saved(Loc::Gpr(R12), -32));
        let mut slot = -32;
        for &r in &frame.pushed {
            asm!(ops ; push Rq(r));
            slot -= 8;
            note(ops, cfi, saved(Loc::Gpr(r), slot));
        }
        asm!(ops ; mov r12, rdi);
        if !matches!(self.plan.ret.pass, RetPass::Void) {
            asm!(ops ; mov rbx, rsi);
        }
        if !self.plan.args.is_empty() {
            asm!(ops ; mov r10, rdx);
        }
        alloc_frame(ops, frame.alloc)?;
        if frame.restore_rbp {
            // The target may clobber rbp: while it runs, only rsp finds the
            // frame.
            note(ops, cfi, cfa(RSP, frame.cfa_above_rsp()?));
        }
        if let Some(temp) = frame.sret_temp {
            // A null rvalue still needs somewhere for the callee to write.
            let m = Mem::new(Base::Rsp, temp)?;
            asm!(ops ; test rbx, rbx ; jnz BYTE >have_buffer);
            mem!(ops, m, [lea rbx,], []);
            asm!(ops ; have_buffer:);
        }
        if let Some(slot) = frame.rbx_slot {
            let m = Mem::new(Base::Rsp, slot)?;
            mem!(ops, m, [mov QWORD], [, rbx]);
        }
        // Before the copies (rep movsb clobbers rcx).
        if let Some(slot) = frame.chain_slot {
            let m = Mem::new(Base::Rsp, slot)?;
            mem!(ops, m, [mov QWORD], [, rcx]);
        }
        Ok(())
    }

    /// Brings back what the stub needs after a target that may clobber
    /// SysV's callee-saved registers (`rsp` survives every ABI).
    fn after_call(&mut self, frame: &Frame) -> Result<()> {
        let ops = &mut self.ops;
        if frame.restore_rbp {
            let m = Mem::new(Base::Rsp, frame.alloc + frame.pushed_below_rbp())?;
            mem!(ops, m, [lea rbp,], []);
            note(ops, &mut self.frame, cfa(RBP, 16));
        }
        if let Some(slot) = frame.rbx_slot {
            let m = Mem::new(Base::Rsp, slot)?;
            mem!(ops, m, [mov rbx, QWORD], []);
        }
        Ok(())
    }

    /// Where byte `offset` of argument `i` lives, loading its address into
    /// `r11` first in the libffi form.
    fn source(&mut self, i: usize, offset: u32) -> Result<Mem> {
        match self.form {
            EntryForm::Libffi => {
                if self.r11_arg != Some(i) {
                    let slot = Mem::new(Base::R10, 8 * i as u64)?;
                    let ops = &mut self.ops;
                    mem!(ops, slot, [mov r11, QWORD], []);
                    self.r11_arg = Some(i);
                }
                Mem::new(Base::R11, u64::from(offset))
            }
            EntryForm::Packed => {
                let at = self
                    .plan
                    .packed_offsets
                    .get(i)
                    .ok_or_else(|| asm_err(format!("argument {i} has no packed offset")))?;
                Mem::new(Base::R10, u64::from(*at) + u64::from(offset))
            }
        }
    }

    /// Stack pieces and Indirect copies: done first, because `rep movsb`
    /// clobbers `rdi`, `rsi` and `rcx`.
    fn stack_phase(&mut self, frame: &Frame) -> Result<()> {
        let plan = self.plan;
        for (i, a) in plan.args.iter().enumerate() {
            let value_size = a.ty.size() as u64;
            match &a.pass {
                ArgPass::Direct(pieces) => {
                    for p in pieces {
                        check_arg_piece(i, p, value_size)?;
                        if let Loc::Stack(off) = p.loc {
                            let src = self.source(i, p.offset)?;
                            self.stack_piece(i, p, src, off)?;
                        }
                    }
                }
                ArgPass::Indirect { .. } => {
                    let temp = frame.arg_temps[i]
                        .ok_or_else(|| asm_err(format!("argument {i}: no temporary")))?;
                    let size = u32::try_from(value_size)
                        .map_err(|_| asm_err(format!("argument {i}: too large")))?;
                    let src = self.source(i, 0)?;
                    let dst = Mem::new(Base::Rsp, temp)?;
                    self.copy(src, dst, size)?;
                }
            }
        }
        Ok(())
    }

    fn stack_piece(&mut self, i: usize, p: &Piece, src: Mem, off: u32) -> Result<()> {
        let dst = Mem::new(Base::Rsp, u64::from(off))?;
        match (p.ext, p.size) {
            (Ext::None, _) | (_, 8) => self.copy(src, dst, p.size),
            (_, 1 | 2 | 4) => {
                if u64::from(off) + 8 > u64::from(self.plan.stack_bytes) {
                    return Err(asm_err(format!(
                        "argument {i}: widened stack piece at stack+{off} overruns the argument area"
                    )));
                }
                self.load_gpr(RAX, src, p.size, p.ext)?;
                let ops = &mut self.ops;
                mem!(ops, dst, [mov QWORD], [, rax]);
                Ok(())
            }
            (_, n) => Err(asm_err(format!(
                "argument {i}: cannot extend a {n}-byte stack piece"
            ))),
        }
    }

    /// Copies `n` bytes with the widest moves that stay inside both ends:
    /// the tail is a move overlapping the previous one, never a read past
    /// the value. Uses `rax`/`xmm0` (or `rsi`/`rdi`/`rcx`), so only before
    /// any argument register is loaded.
    fn copy(&mut self, src: Mem, dst: Mem, n: u32) -> Result<()> {
        copy_bytes(&mut self.ops, src, dst, n)
    }

    /// Indirect argument addresses and the sret pointer: after the copies
    /// (which clobber `rdi`/`rsi`/`rcx`), before the register pieces.
    fn pointer_phase(&mut self, frame: &Frame) -> Result<()> {
        let plan = self.plan;
        for (i, a) in plan.args.iter().enumerate() {
            if let ArgPass::Indirect { pointer } = a.pass {
                let temp = frame.arg_temps[i]
                    .ok_or_else(|| asm_err(format!("argument {i}: no temporary")))?;
                let m = Mem::new(Base::Rsp, temp)?;
                let ops = &mut self.ops;
                match pointer {
                    Loc::Gpr(r) => {
                        check_arg_gpr(i, r)?;
                        mem!(ops, m, [lea Rq(r),], []);
                    }
                    Loc::Stack(off) => {
                        let dst = self.stack_slot(i, off)?;
                        let ops = &mut self.ops;
                        mem!(ops, m, [lea rax,], []);
                        mem!(ops, dst, [mov QWORD], [, rax]);
                    }
                    other => {
                        return Err(asm_err(format!(
                            "argument {i}: cannot pass an address in {other:?}"
                        )))
                    }
                }
            }
        }
        if let RetPass::Indirect { pointer, .. } = plan.ret.pass {
            match pointer {
                Loc::Gpr(r) => {
                    check_arg_gpr(usize::MAX, r)?;
                    let ops = &mut self.ops;
                    if !self.tail {
                        asm!(ops ; mov Rq(r), rbx);
                    } else if r != RSI {
                        // Tail stubs keep rvalue where it arrived; no
                        // argument register has been loaded yet.
                        asm!(ops ; mov Rq(r), rsi);
                    }
                }
                Loc::Stack(off) => {
                    let dst = self.stack_slot(usize::MAX, off)?;
                    let ops = &mut self.ops;
                    mem!(ops, dst, [mov QWORD], [, rbx]);
                }
                other => {
                    return Err(asm_err(format!(
                        "cannot pass the return buffer's address in {other:?}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// An 8-byte pointer slot of the outgoing area.
    fn stack_slot(&self, i: usize, off: u32) -> Result<Mem> {
        if u64::from(off) + 8 > u64::from(self.plan.stack_bytes) || off < self.plan.shadow_space {
            return Err(asm_err(format!(
                "{}: pointer slot at stack+{off} outside the argument area",
                who(i)
            )));
        }
        Mem::new(Base::Rsp, u64::from(off))
    }

    fn register_phase(&mut self) -> Result<()> {
        let plan = self.plan;
        for (i, a) in plan.args.iter().enumerate() {
            let ArgPass::Direct(pieces) = &a.pass else {
                continue;
            };
            for p in pieces {
                match p.loc {
                    Loc::Stack(_) => {}
                    Loc::Gpr(r) => {
                        check_arg_gpr(i, r)?;
                        let src = self.source(i, p.offset)?;
                        self.load_gpr(r, src, p.size, p.ext)
                            .map_err(|e| asm_err(format!("argument {i}: {e}")))?;
                    }
                    Loc::Vec(r) => {
                        if r > 15 || p.ext != Ext::None {
                            return Err(asm_err(format!(
                                "argument {i}: cannot load {p:?} into a vector register"
                            )));
                        }
                        let src = self.source(i, p.offset)?;
                        let ops = &mut self.ops;
                        match p.size {
                            4 => mem!(ops, src, [movss Rx(r), DWORD], []),
                            8 => mem!(ops, src, [movsd Rx(r), QWORD], []),
                            n => {
                                return Err(asm_err(format!(
                                    "argument {i}: {n}-byte vector register piece"
                                )))
                            }
                        }
                    }
                    Loc::X87(_) => {
                        return Err(asm_err(format!(
                            "argument {i}: x87 registers carry return values only"
                        )))
                    }
                }
            }
        }
        Ok(())
    }

    /// Loads `size` bytes at `src` into `r`, widening per `ext`; with
    /// `Ext::None` the odd sizes are composed from two overlapping loads
    /// (the shared bytes are equal, so `or` leaves them intact) through
    /// `rax`, never touching a byte past the piece.
    fn load_gpr(&mut self, r: u8, src: Mem, size: u32, ext: Ext) -> Result<()> {
        let ops = &mut self.ops;
        match (size, ext) {
            (8, _) => mem!(ops, src, [mov Rq(r), QWORD], []),
            (1, Ext::Sign) => mem!(ops, src, [movsx Rq(r), BYTE], []),
            (2, Ext::Sign) => mem!(ops, src, [movsx Rq(r), WORD], []),
            (4, Ext::Sign) => mem!(ops, src, [movsxd Rq(r), DWORD], []),
            (1, _) => mem!(ops, src, [movzx Rd(r), BYTE], []),
            (2, _) => mem!(ops, src, [movzx Rd(r), WORD], []),
            (4, _) => mem!(ops, src, [mov Rd(r), DWORD], []),
            (3 | 5..=7, Ext::None) if r != RAX => {
                let tail = if size == 3 { 1 } else { size - 4 };
                let hi = src.plus(tail)?;
                if size == 3 {
                    mem!(ops, src, [movzx Rd(r), WORD], []);
                    mem!(ops, hi, [movzx eax, WORD], []);
                    asm!(ops ; shl eax, 8 ; or Rd(r), eax);
                } else {
                    let shift = (8 * tail) as i8;
                    mem!(ops, src, [mov Rd(r), DWORD], []);
                    mem!(ops, hi, [mov eax, DWORD], []);
                    asm!(ops ; shl rax, shift ; or Rq(r), rax);
                }
            }
            _ => {
                return Err(asm_err(format!(
                    "cannot load a {size}-byte {ext:?} piece into register {r}"
                )))
            }
        }
        Ok(())
    }

    fn call(&mut self, frame: &Frame) -> Result<()> {
        let ops = &mut self.ops;
        match self.plan.vector_count {
            Some(0) => asm!(ops ; xor eax, eax),
            Some(n) => asm!(ops ; mov eax, i32::from(n)),
            None => {}
        }
        // Last: every other register is loaded, the argument base too.
        if let Some(r) = self.chain {
            match frame.chain_slot {
                Some(slot) => {
                    let m = Mem::new(Base::Rsp, slot)?;
                    mem!(ops, m, [mov Rq(r), QWORD], []);
                }
                None => asm!(ops ; mov Rq(r), [rsp - 16]),
            }
        }
        if self.tail {
            asm!(ops ; jmp QWORD [rsp - 8]);
        } else {
            asm!(ops ; call r12);
        }
        Ok(())
    }

    fn store_return(&mut self) -> Result<()> {
        let plan = self.plan;
        let RetPass::Direct(pieces) = &plan.ret.pass else {
            return Ok(());
        };
        if pieces.is_empty() {
            return Ok(());
        }
        let x87 = x87_in_order(pieces);

        // Short jumps when the skipped stores surely fit in rel8 (a store
        // is at most 21 bytes, see `store_gpr`).
        let short = pieces.len() <= 4;
        let ops = &mut self.ops;
        asm!(ops ; test rbx, rbx);
        if short {
            asm!(ops ; jz BYTE >discard);
        } else {
            asm!(ops ; jz >discard);
        }
        for p in pieces {
            let m = Mem::new(Base::Rbx, u64::from(p.offset))?;
            match p.loc {
                Loc::Gpr(r) => self.store_gpr(r, m, p.size, p.ext)?,
                Loc::Vec(r) => {
                    let ops = &mut self.ops;
                    match p.size {
                        4 => mem!(ops, m, [movss DWORD], [, Rx(r)]),
                        8 => mem!(ops, m, [movsd QWORD], [, Rx(r)]),
                        // Win64's __int128; rvalue need not be 16-aligned.
                        16 => mem!(ops, m, [movups OWORD], [, Rx(r)]),
                        n => {
                            return Err(asm_err(format!("return: {n}-byte vector register piece")))
                        }
                    }
                }
                Loc::X87(_) => {}
                Loc::Stack(_) => return Err(asm_err("return: piece on the stack")),
            }
        }
        // Each fstp pops, so the values leave in register-stack order.
        for p in &x87 {
            let m = Mem::new(Base::Rbx, u64::from(p.offset))?;
            let ops = &mut self.ops;
            mem!(ops, m, [fstp TWORD], []);
        }
        let ops = &mut self.ops;
        if x87.is_empty() {
            asm!(ops ; discard:);
        } else {
            // Discarded x87 values must still leave the register stack.
            if short {
                asm!(ops ; jmp BYTE >done ; discard:);
            } else {
                asm!(ops ; jmp >done ; discard:);
            }
            for _ in &x87 {
                asm!(ops ; fstp st0);
            }
            asm!(ops ; done:);
        }
        Ok(())
    }

    /// Stores `size` bytes of `r` at `m`: widened to 8 bytes with an
    /// extension, else exactly `size` bytes (odd sizes as two overlapping
    /// stores through `r11`).
    fn store_gpr(&mut self, r: u8, m: Mem, size: u32, ext: Ext) -> Result<()> {
        let ops = &mut self.ops;
        match (size, ext) {
            (8, _) => mem!(ops, m, [mov QWORD], [, Rq(r)]),
            (1 | 2 | 4, Ext::Sign | Ext::Zero) => {
                // Widen into r11, then store the whole ffi_arg word.
                match (size, ext) {
                    (1, Ext::Sign) => asm!(ops ; movsx r11, Rb(r)),
                    (2, Ext::Sign) => asm!(ops ; movsx r11, Rw(r)),
                    (4, Ext::Sign) => asm!(ops ; movsxd r11, Rd(r)),
                    (1, _) => asm!(ops ; movzx r11d, Rb(r)),
                    (2, _) => asm!(ops ; movzx r11d, Rw(r)),
                    _ => asm!(ops ; mov r11d, Rd(r)),
                }
                mem!(ops, m, [mov QWORD], [, r11]);
            }
            (1, Ext::None) => mem!(ops, m, [mov BYTE], [, Rb(r)]),
            (2, Ext::None) => mem!(ops, m, [mov WORD], [, Rw(r)]),
            (4, Ext::None) => mem!(ops, m, [mov DWORD], [, Rd(r)]),
            (3, Ext::None) => {
                let hi = m.plus(1)?;
                mem!(ops, m, [mov WORD], [, Rw(r)]);
                asm!(ops ; mov r11, Rq(r) ; shr r11, 8);
                mem!(ops, hi, [mov WORD], [, r11w]);
            }
            (5..=7, Ext::None) => {
                let tail = size - 4;
                let hi = m.plus(tail)?;
                let shift = (8 * tail) as i8;
                mem!(ops, m, [mov DWORD], [, Rd(r)]);
                asm!(ops ; mov r11, Rq(r) ; shr r11, shift);
                mem!(ops, hi, [mov DWORD], [, r11d]);
            }
            _ => {
                return Err(asm_err(format!(
                    "return: cannot store a {size}-byte {ext:?} piece"
                )))
            }
        }
        Ok(())
    }

    fn epilogue(&mut self, frame: &Frame) {
        let ops = &mut self.ops;
        if frame.alloc > 0 {
            // At most 40 bytes: always an 8-bit displacement.
            let below = -(frame.pushed_below_rbp() as i32);
            let m = Mem {
                base: Base::Rbp,
                disp: below,
            };
            mem!(ops, m, [lea rsp,], []);
        }
        let cfi = &mut self.frame;
        for &r in frame.pushed.iter().rev() {
            asm!(ops ; pop Rq(r));
            note(ops, cfi, FrameChange::Restored(Loc::Gpr(r)));
        }
        asm!(ops ; pop r12);
        note(ops, cfi, FrameChange::Restored(Loc::Gpr(R12)));
        asm!(ops ; pop rbx);
        note(ops, cfi, FrameChange::Restored(Loc::Gpr(RBX)));
        pop_frame(ops, cfi);
        asm!(ops ; ret);
    }
}

// The handler's arguments come from the record with 8-bit displacements.
const _: () = assert!(record::USER_DATA < 128 && record::FUN < 128 && record::CIF < 128);
const REC_CIF: i8 = record::CIF as i8;
const REC_FUN: i8 = record::FUN as i8;
const REC_USER_DATA: i8 = record::USER_DATA as i8;
const _: () = assert!(super::go_record::CIF < 128 && super::go_record::FUN < 128);
const GO_CIF: i8 = super::go_record::CIF as i8;
const GO_FUN: i8 = super::go_record::FUN as i8;

/// Bytes between `rbp` and the caller's outgoing argument area (saved
/// `rbp`, return address).
const INCOMING: u64 = 16;

/// Where the handler finds argument `i`.
#[derive(Clone, Copy, Debug)]
enum ArgHome {
    /// In the caller's argument area, at this stack offset: no copy.
    Caller(u32),
    /// Copied into the thunk's value slot at this frame offset.
    Slot(u64),
    /// Passed by reference: the pointer itself, from here.
    Pointer(Loc),
}

/// A closure thunk's frame, from `rsp` after the prologue (see the module
/// docs): the argument-pointer array at 0, the value slots, the return
/// buffer.
struct ThunkFrame {
    /// Bytes below the saved registers (a multiple of 16).
    size: u64,
    homes: Vec<ArgHome>,
    /// The return buffer (`None` for a value returned in memory: the
    /// handler writes straight into the caller's buffer, as with libffi).
    ret_buf: Option<u64>,
    /// Where the caller's sret pointer waits out the handler call.
    sret_slot: Option<u64>,
    /// Registers the caller expects preserved that the SysV handler may
    /// clobber, each with its slot (`xmm` slots 16-aligned, 16 bytes).
    saves: Vec<(Loc, u64)>,
}

/// The registers of `plan.callee_saved` a thunk must save itself: those a
/// SysV handler may clobber (`rsi`, `rdi`, `xmm6`-`xmm15` for Win64; none
/// for SysV).
fn thunk_saves(plan: &CallPlan) -> Result<Vec<Loc>> {
    let mut saves: Vec<Loc> = Vec::new();
    for &loc in &plan.callee_saved {
        match loc {
            // The handler keeps these and the thunk touches only rbp, which
            // it pushes; rsp comes back by construction.
            Loc::Gpr(r) if SYSV_CALLEE_SAVED.contains(&r) || r == RSP => continue,
            Loc::Gpr(R11) => {
                return Err(asm_err(
                    "r11 cannot be callee-saved: the closure trampoline overwrites it",
                ))
            }
            Loc::Gpr(0..=15) | Loc::Vec(0..=15) => {}
            other => {
                return Err(asm_err(format!(
                    "cannot preserve {} for the closure's caller",
                    other.name(plan.arch)
                )))
            }
        }
        if !saves.contains(&loc) {
            saves.push(loc);
        }
    }
    // The return registers are written after the restores: a register
    // cannot be both.
    let back: Vec<Loc> = match &plan.ret.pass {
        RetPass::Direct(pieces) => pieces.iter().map(|p| p.loc).collect(),
        RetPass::Indirect {
            returned: Some(r), ..
        } => vec![*r],
        _ => Vec::new(),
    };
    if let Some(r) = back.iter().find(|r| saves.contains(r)) {
        return Err(asm_err(format!(
            "return: {} is both a return register and callee-saved",
            r.name(plan.arch)
        )));
    }
    Ok(saves)
}

impl ThunkFrame {
    fn layout(plan: &CallPlan) -> Result<ThunkFrame> {
        let to_save = thunk_saves(plan)?;
        let mut cursor = round16(8 * plan.args.len() as u64);
        let mut homes = Vec::with_capacity(plan.args.len());
        for (i, a) in plan.args.iter().enumerate() {
            let value_size = a.ty.size() as u64;
            let home = match &a.pass {
                ArgPass::Indirect { pointer } => ArgHome::Pointer(*pointer),
                ArgPass::Direct(pieces) => {
                    for p in pieces {
                        check_arg_piece(i, p, value_size)?;
                    }
                    match caller_copy(pieces, value_size) {
                        Some(off) => ArgHome::Caller(off),
                        // Values of a word or less take 8-byte slots, so
                        // neighbouring doubles can be stored as one pair.
                        None if value_size <= 8 => {
                            let at = cursor;
                            cursor += 8;
                            ArgHome::Slot(at)
                        }
                        None => {
                            cursor = round16(cursor);
                            let at = cursor;
                            cursor += round16(value_size.max(1));
                            ArgHome::Slot(at)
                        }
                    }
                }
            };
            homes.push(home);
        }
        cursor = round16(cursor);
        let ret_buf = match &plan.ret.pass {
            RetPass::Indirect { .. } => None,
            RetPass::Void => Some(16),
            // Odd-sized integer pieces are read as whole words.
            RetPass::Direct(pieces) => Some(
                pieces
                    .iter()
                    .map(|p| u64::from(p.offset) + u64::from(p.size.max(8)))
                    .fold(plan.ret.ty.size() as u64, u64::max),
            ),
        }
        .map(|bytes| {
            let at = cursor;
            cursor += round16(bytes).max(16);
            at
        });
        let sret_slot = matches!(plan.ret.pass, RetPass::Indirect { .. }).then(|| {
            let at = cursor;
            cursor += 16;
            at
        });
        // cursor is 16-aligned here: vector slots first keep them aligned.
        let mut saves = Vec::with_capacity(to_save.len());
        for width in [16, 8] {
            for &loc in &to_save {
                if matches!(loc, Loc::Vec(_)) == (width == 16) {
                    saves.push((loc, cursor));
                    cursor += width;
                }
            }
        }
        let size = round16(cursor);
        if size > MAX_FRAME {
            return Err(asm_err(format!(
                "thunk frame of {size} bytes exceeds the limit of {MAX_FRAME}"
            )));
        }
        Ok(ThunkFrame {
            size,
            homes,
            ret_buf,
            sret_slot,
            saves,
        })
    }
}

/// The stack offset of a value that arrives whole and in order in the
/// caller's argument area, which the handler can then read in place.
fn caller_copy(pieces: &[Piece], value_size: u64) -> Option<u32> {
    let mut sorted: Vec<&Piece> = pieces.iter().collect();
    sorted.sort_by_key(|p| p.offset);
    let Loc::Stack(base) = sorted.first()?.loc else {
        return None;
    };
    let mut next = 0u64;
    for p in sorted {
        let in_place = matches!(p.loc, Loc::Stack(off)
            if u64::from(off) == u64::from(base) + u64::from(p.offset));
        if !in_place || u64::from(p.offset) != next {
            return None;
        }
        next += u64::from(p.size);
    }
    (next == value_size).then_some(base)
}

/// The caller's stack argument at `off` (`[rbp + 16 + off]`).
fn incoming(off: u32) -> Result<Mem> {
    Mem::new(Base::Rbp, INCOMING + u64::from(off))
}

/// Assembles an x86-64 closure thunk (see [`super::compile_closure_thunk`]
/// and the module docs).
///
/// ```
/// use jitffi::{classify::classify, emit::x64, plan::Loc, Abi, Type};
/// let mut plan = classify(Abi::SysV64, &Type::f64(), &[Type::f64()], None).unwrap();
/// let code = x64::compile_closure_thunk(&plan).unwrap();
/// // endbr64; push rbp; mov rbp, rsp
/// assert!(code.starts_with(&[0xF3, 0x0F, 0x1E, 0xFA, 0x55, 0x48, 0x89, 0xE5]));
/// assert!(code.ends_with(&[0x48, 0x89, 0xEC, 0x5D, 0xC3])); // mov rsp, rbp; pop rbp; ret
/// // A Go closure thunk: the record (see `emit::go_record`) comes in the
/// // static chain register.
/// plan.static_chain = Some(Loc::Gpr(10));
/// let go = x64::compile_closure_thunk(&plan).unwrap();
/// assert!(go.windows(3).any(|w| w == [0x4C, 0x89, 0xD1])); // mov rcx, r10: the record is user_data
/// plan.static_chain = Some(Loc::Gpr(0)); // rax: not a record register
/// assert!(x64::compile_closure_thunk(&plan).is_err());
/// ```
pub fn compile_closure_thunk(plan: &CallPlan) -> Result<Vec<u8>> {
    compile_closure_thunk_with_unwind(plan).map(|c| c.bytes)
}

/// [`compile_closure_thunk`] with the thunk's frame description: after
/// `push rbp; mov rbp, rsp` the CFA is `rbp + 16`, and each register the
/// thunk saves for a caller of another ABI (Win64: `rsi`, `rdi`,
/// `xmm6`-`xmm15`) is described from its store to its reload, so an
/// exception thrown by the handler still gives the caller its values.
///
/// ```
/// use jitffi::{classify::classify, emit::{x64, FrameChange}, plan::Loc, Abi, Type};
/// let plan = classify(Abi::Win64, &Type::i32(), &[Type::i32()], None).unwrap();
/// let code = x64::compile_closure_thunk_with_unwind(&plan).unwrap();
/// let saved = |r| code.frame.iter().any(|s| matches!(s.change, FrameChange::Saved { reg, .. } if reg == r));
/// assert!(saved(Loc::Gpr(6)) && saved(Loc::Gpr(7)) && saved(Loc::Vec(15))); // rsi, rdi, xmm15
/// ```
pub fn compile_closure_thunk_with_unwind(plan: &CallPlan) -> Result<Code> {
    plan.check()
        .map_err(|e| asm_err(format!("inconsistent plan: {e}")))?;
    let record = thunk_record(plan)?;
    check_return(plan)?;
    check_thunk_return(plan)?;
    let frame = ThunkFrame::layout(plan)?;
    let mut t = Thunk {
        record,
        ops: VecAssembler::new(0),
        // rbp (5 steps) and each save and its restore.
        frame: Vec::with_capacity(5 + 2 * frame.saves.len()),
        plan,
    };
    t.prologue(&frame)?;
    t.spill_registers(&frame)?;
    t.point_at_arguments(&frame)?;
    t.call_handler(&frame)?;
    t.restore_registers(&frame)?;
    t.load_return(&frame)?;
    let ops = &mut t.ops;
    if frame.size > 0 {
        asm!(ops ; mov rsp, rbp);
    }
    pop_frame(ops, &mut t.frame);
    asm!(ops ; ret);
    let bytes = t
        .ops
        .finalize()
        .map_err(|err| asm_err(format!("dynasm: {err}")))?;
    Ok(Code {
        bytes,
        frame: t.frame,
    })
}

/// Return plans a thunk cannot produce, beyond what [`check_return`]
/// refuses for stubs.
fn check_thunk_return(plan: &CallPlan) -> Result<()> {
    match &plan.ret.pass {
        RetPass::Direct(pieces) => {
            let mut seen: Vec<Loc> = Vec::with_capacity(pieces.len());
            for p in pieces {
                if seen.contains(&p.loc) {
                    return Err(asm_err(format!(
                        "return: two pieces in {}",
                        p.loc.name(plan.arch)
                    )));
                }
                seen.push(p.loc);
                if let Loc::Gpr(_) = p.loc {
                    if !matches!((p.size, p.ext), (1..=8, Ext::None) | (1 | 2 | 4 | 8, _)) {
                        return Err(asm_err(format!("return: cannot load {p:?}")));
                    }
                }
            }
        }
        RetPass::Indirect { pointer, returned } => {
            match pointer {
                Loc::Gpr(r) => check_arg_gpr(usize::MAX, *r)?,
                Loc::Stack(off)
                    if u64::from(*off) + 8 <= u64::from(plan.stack_bytes)
                        && *off >= plan.shadow_space => {}
                other => {
                    return Err(asm_err(format!(
                        "the return buffer's address cannot arrive in {other:?}"
                    )))
                }
            }
            match returned {
                None => {}
                Some(Loc::Gpr(r)) if *r <= 15 && ![RBX, RSP, RBP, R12].contains(r) => {}
                Some(other) => {
                    return Err(asm_err(format!(
                        "cannot hand the return buffer back in {other:?}"
                    )))
                }
            }
        }
        RetPass::Void => {}
    }
    Ok(())
}

/// Where a thunk finds its closure record.
#[derive(Clone, Copy)]
enum Record {
    /// A slot record ([`record`]) in `r11`, from the slot trampoline.
    Slot,
    /// A Go closure record ([`super::go_record`]) in this register (`r10`
    /// or `r11`), the plan's static chain; the handler gets the record as
    /// user data.
    Go(u8),
}

/// The record a thunk for `plan` receives: in the static chain register
/// (which must be `r10` or `r11`, the registers nothing clobbers before the
/// handler call, and no argument's) when the plan has one.
fn thunk_record(plan: &CallPlan) -> Result<Record> {
    match plan.static_chain {
        None => Ok(Record::Slot),
        Some(Loc::Gpr(r @ (R10 | R11))) if !uses_register(plan, r) => Ok(Record::Go(r)),
        Some(other) => Err(asm_err(format!(
            "static chain in {}: a thunk takes its record in r10 or r11, unused by arguments",
            other.name(plan.arch)
        ))),
    }
}

/// Argument `i`'s vector register and slot when it is one 8-byte piece
/// in a vector register (a `double`, `struct { float, float }`).
fn lone_double(frame: &ThunkFrame, plan: &CallPlan, i: usize) -> Option<(u8, u64)> {
    let a = plan.args.get(i)?;
    match (frame.homes[i], &a.pass) {
        (ArgHome::Slot(at), ArgPass::Direct(pieces)) => match pieces.as_slice() {
            [Piece {
                loc: Loc::Vec(r @ 0..=15),
                offset: 0,
                size: 8,
                ..
            }] => Some((*r, at)),
            _ => None,
        },
        _ => None,
    }
}

struct Thunk<'a> {
    record: Record,
    ops: Ops,
    /// The frame description (see [`Code`]).
    frame: Vec<FrameStep>,
    plan: &'a CallPlan,
}

impl Thunk<'_> {
    fn prologue(&mut self, frame: &ThunkFrame) -> Result<()> {
        let ops = &mut self.ops;
        ops.extend(ENDBR64);
        // The record stays in r11 until the handler call (nothing before
        // it uses r11), so no callee-saved register needs saving.
        let cfi = &mut self.frame;
        push_frame(ops, cfi);
        alloc_frame(ops, frame.size)?;
        // The handler's address, loaded before the argument stores rather
        // than by the call itself: measured 0.27 ns faster per call.
        if let Record::Slot = self.record {
            asm!(ops ; mov r10, [BYTE r11 + REC_FUN]);
        }
        // Before anything uses a register as scratch (the probe loop above
        // touches only eax, never callee-saved).
        for &(loc, at) in &frame.saves {
            let m = Mem::new(Base::Rsp, at)?;
            match loc {
                Loc::Gpr(r) => mem!(ops, m, [mov QWORD], [, Rq(r)]),
                Loc::Vec(r) => mem!(ops, m, [movaps OWORD], [, Rx(r)]),
                _ => return Err(asm_err("callee-saved location")),
            }
            // rsp is rbp - size, and the CFA rbp + 16.
            let slot = i64::try_from(at).unwrap_or(i64::MAX)
                - i64::try_from(frame.size).unwrap_or(i64::MAX)
                - 16;
            let slot = i32::try_from(slot).map_err(|_| asm_err("save slot out of range"))?;
            note(ops, cfi, saved(loc, slot));
        }
        if let (RetPass::Indirect { pointer, .. }, Some(slot)) =
            (&self.plan.ret.pass, frame.sret_slot)
        {
            let at = Mem::new(Base::Rsp, slot)?;
            match *pointer {
                Loc::Gpr(r) => mem!(ops, at, [mov QWORD], [, Rq(r)]),
                Loc::Stack(off) => {
                    let m = incoming(off)?;
                    mem!(ops, m, [mov rax, QWORD], []);
                    mem!(ops, at, [mov QWORD], [, rax]);
                }
                // Refused by check_thunk_return.
                _ => return Err(asm_err("return buffer address location")),
            }
        }
        Ok(())
    }

    /// Stores every register-borne piece and Indirect pointer, before any
    /// argument register serves as scratch (only `rax` does, here).
    fn spill_registers(&mut self, frame: &ThunkFrame) -> Result<()> {
        let mut paired = false;
        for (i, a) in self.plan.args.iter().enumerate() {
            if std::mem::take(&mut paired) {
                continue;
            }
            // Two doubles in adjacent slots: one 16-byte store (the vector
            // argument registers are all spilled, so xmm_a is scratch).
            if let (Some((ra, at)), Some((rb, next))) = (
                lone_double(frame, self.plan, i),
                lone_double(frame, self.plan, i + 1),
            ) {
                if next == at + 8 {
                    let m = Mem::new(Base::Rsp, at)?;
                    let ops = &mut self.ops;
                    asm!(ops ; unpcklpd Rx(ra), Rx(rb));
                    mem!(ops, m, [movups OWORD], [, Rx(ra)]);
                    paired = true;
                    continue;
                }
            }
            match (frame.homes[i], &a.pass) {
                (ArgHome::Pointer(Loc::Gpr(r)), _) => {
                    check_arg_gpr(i, r)?;
                    let slot = Mem::new(Base::Rsp, 8 * i as u64)?;
                    let ops = &mut self.ops;
                    mem!(ops, slot, [mov QWORD], [, Rq(r)]);
                }
                (ArgHome::Slot(at), ArgPass::Direct(pieces)) => {
                    let value_size = a.ty.size() as u64;
                    for p in pieces {
                        self.spill_piece(i, p, at, value_size)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Stores a register piece of argument `i` into its slot at `at`.
    fn spill_piece(&mut self, i: usize, p: &Piece, at: u64, value_size: u64) -> Result<()> {
        let m = Mem::new(Base::Rsp, at + u64::from(p.offset))?;
        let ops = &mut self.ops;
        match (p.loc, p.size) {
            (Loc::Gpr(r), _) => {
                check_arg_gpr(i, r)?;
                // A tail piece may store a whole word: the bytes past the
                // value are slot padding.
                let end = u64::from(p.offset) + u64::from(p.size);
                let word =
                    end == value_size && u64::from(p.offset) + 8 <= round16(value_size.max(1));
                return self.spill_gpr(i, r, m, p.size, word);
            }
            (Loc::Vec(r @ 0..=15), 4) => mem!(ops, m, [movss DWORD], [, Rx(r)]),
            (Loc::Vec(r @ 0..=15), 8) => mem!(ops, m, [movsd QWORD], [, Rx(r)]),
            (Loc::Vec(_), _) => {
                return Err(asm_err(format!(
                    "argument {i}: cannot store {p:?} from a vector register"
                )))
            }
            (Loc::Stack(_), _) => {}
            (Loc::X87(_), _) => {
                return Err(asm_err(format!(
                    "argument {i}: x87 registers carry return values only"
                )))
            }
        }
        Ok(())
    }

    /// Stores the low `size` bytes of `r` at `m` (`word`: all 8 may be
    /// stored); odd sizes as two stores that end at the piece's end.
    fn spill_gpr(&mut self, i: usize, r: u8, m: Mem, size: u32, word: bool) -> Result<()> {
        let ops = &mut self.ops;
        match size {
            8 => mem!(ops, m, [mov QWORD], [, Rq(r)]),
            4 => mem!(ops, m, [mov DWORD], [, Rd(r)]),
            2 => mem!(ops, m, [mov WORD], [, Rw(r)]),
            1 => mem!(ops, m, [mov BYTE], [, Rb(r)]),
            3 | 5..=7 if word => mem!(ops, m, [mov QWORD], [, Rq(r)]),
            3 => {
                mem!(ops, m, [mov WORD], [, Rw(r)]);
                asm!(ops ; mov eax, Rd(r) ; shr eax, 16);
                let hi = m.plus(2)?;
                mem!(ops, hi, [mov BYTE], [, al]);
            }
            5..=7 => {
                let tail = size - 4;
                mem!(ops, m, [mov DWORD], [, Rd(r)]);
                asm!(ops ; mov rax, Rq(r) ; shr rax, (8 * tail) as i8);
                let hi = m.plus(tail)?;
                mem!(ops, hi, [mov DWORD], [, eax]);
            }
            n => {
                return Err(asm_err(format!(
                    "argument {i}: {n}-byte general register piece"
                )))
            }
        }
        Ok(())
    }

    /// Fills the argument-pointer array (and copies stack pieces into
    /// slots); every argument register is spilled, so all are scratch.
    fn point_at_arguments(&mut self, frame: &ThunkFrame) -> Result<()> {
        for (i, a) in self.plan.args.iter().enumerate() {
            let entry = Mem::new(Base::Rsp, 8 * i as u64)?;
            match (frame.homes[i], &a.pass) {
                (ArgHome::Caller(off), _) => {
                    let m = incoming(off)?;
                    let ops = &mut self.ops;
                    mem!(ops, m, [lea rax,], []);
                }
                (ArgHome::Slot(at), ArgPass::Direct(pieces)) => {
                    for p in pieces {
                        if let Loc::Stack(off) = p.loc {
                            let dst = Mem::new(Base::Rsp, at + u64::from(p.offset))?;
                            copy_bytes(&mut self.ops, incoming(off)?, dst, p.size)?;
                        }
                    }
                    let m = Mem::new(Base::Rsp, at)?;
                    let ops = &mut self.ops;
                    mem!(ops, m, [lea rax,], []);
                }
                (ArgHome::Pointer(Loc::Stack(off)), _) => {
                    if u64::from(off) + 8 > u64::from(self.plan.stack_bytes)
                        || off < self.plan.shadow_space
                    {
                        return Err(asm_err(format!(
                            "argument {i}: pointer slot at stack+{off} outside the argument area"
                        )));
                    }
                    let m = incoming(off)?;
                    let ops = &mut self.ops;
                    mem!(ops, m, [mov rax, QWORD], []);
                }
                (ArgHome::Pointer(Loc::Gpr(_)), _) => continue, // spilled
                (ArgHome::Pointer(other), _) => {
                    return Err(asm_err(format!(
                        "argument {i}: cannot receive an address in {other:?}"
                    )))
                }
                (ArgHome::Slot(_), ArgPass::Indirect { .. }) => {
                    return Err(asm_err(format!("argument {i}: slot for a pointer")))
                }
            }
            let ops = &mut self.ops;
            mem!(ops, entry, [mov QWORD], [, rax]);
        }
        Ok(())
    }

    /// `fun(cif, rvalue, args, user_data)`, with `rsp` 16-aligned.
    fn call_handler(&mut self, frame: &ThunkFrame) -> Result<()> {
        let ops = &mut self.ops;
        match self.record {
            Record::Slot => asm!(ops ; mov rdi, [BYTE r11 + REC_CIF]),
            Record::Go(R10) => asm!(ops ; mov rdi, [BYTE r10 + GO_CIF]),
            Record::Go(_) => asm!(ops ; mov rdi, [BYTE r11 + GO_CIF]),
        }
        match (frame.ret_buf, frame.sret_slot) {
            (None, Some(slot)) => {
                let m = Mem::new(Base::Rsp, slot)?;
                mem!(ops, m, [mov rsi, QWORD], []);
            }
            (None, None) => return Err(asm_err("return: no buffer")),
            (Some(0), _) => asm!(ops ; mov rsi, rsp),
            (Some(at), _) => {
                let m = Mem::new(Base::Rsp, at)?;
                mem!(ops, m, [lea rsi,], []);
            }
        }
        asm!(ops ; mov rdx, rsp);
        match self.record {
            Record::Slot => asm!(ops
                ; mov rcx, [BYTE r11 + REC_USER_DATA]
                ; call r10
            ),
            Record::Go(R10) => asm!(ops
                ; mov rcx, r10
                ; call QWORD [BYTE r10 + GO_FUN]
            ),
            Record::Go(_) => asm!(ops
                ; mov rcx, r11
                ; call QWORD [BYTE r11 + GO_FUN]
            ),
        }
        Ok(())
    }

    /// Puts back what [`Thunk::prologue`] saved; no return register is
    /// among them (see [`thunk_saves`]).
    fn restore_registers(&mut self, frame: &ThunkFrame) -> Result<()> {
        let ops = &mut self.ops;
        for &(loc, at) in &frame.saves {
            let m = Mem::new(Base::Rsp, at)?;
            match loc {
                Loc::Gpr(r) => mem!(ops, m, [mov Rq(r), QWORD], []),
                Loc::Vec(r) => mem!(ops, m, [movaps Rx(r), OWORD], []),
                _ => return Err(asm_err("callee-saved location")),
            }
            note(ops, &mut self.frame, FrameChange::Restored(loc));
        }
        Ok(())
    }

    fn load_return(&mut self, frame: &ThunkFrame) -> Result<()> {
        let ops = &mut self.ops;
        match &self.plan.ret.pass {
            RetPass::Void => {}
            RetPass::Indirect { returned, .. } => {
                if let (Some(Loc::Gpr(r)), Some(slot)) = (returned, frame.sret_slot) {
                    let m = Mem::new(Base::Rsp, slot)?;
                    mem!(ops, m, [mov Rq(*r), QWORD], []);
                }
            }
            RetPass::Direct(pieces) => {
                let buf = frame.ret_buf.ok_or_else(|| asm_err("return: no buffer"))?;
                // fld pushes: the deepest register first, st0 last.
                for p in x87_in_order(pieces).iter().rev() {
                    let m = Mem::new(Base::Rsp, buf + u64::from(p.offset))?;
                    mem!(ops, m, [fld TWORD], []);
                }
                for p in pieces {
                    let m = Mem::new(Base::Rsp, buf + u64::from(p.offset))?;
                    match (p.loc, p.size, p.ext) {
                        (Loc::X87(_), _, _) => {}
                        (Loc::Gpr(r), 8, _) => mem!(ops, m, [mov Rq(r), QWORD], []),
                        (Loc::Gpr(r), 1, Ext::Sign) => mem!(ops, m, [movsx Rq(r), BYTE], []),
                        (Loc::Gpr(r), 2, Ext::Sign) => mem!(ops, m, [movsx Rq(r), WORD], []),
                        (Loc::Gpr(r), 4, Ext::Sign) => mem!(ops, m, [movsxd Rq(r), DWORD], []),
                        (Loc::Gpr(r), 1, _) => mem!(ops, m, [movzx Rd(r), BYTE], []),
                        (Loc::Gpr(r), 2, _) => mem!(ops, m, [movzx Rd(r), WORD], []),
                        (Loc::Gpr(r), 4, _) => mem!(ops, m, [mov Rd(r), DWORD], []),
                        // The buffer is ours and covers the whole word.
                        (Loc::Gpr(r), 3 | 5..=7, Ext::None) => {
                            mem!(ops, m, [mov Rq(r), QWORD], [])
                        }
                        (Loc::Vec(r), 4, _) => mem!(ops, m, [movss Rx(r), DWORD], []),
                        (Loc::Vec(r), 8, _) => mem!(ops, m, [movsd Rx(r), QWORD], []),
                        (Loc::Vec(r), 16, _) => mem!(ops, m, [movups Rx(r), OWORD], []),
                        _ => return Err(asm_err(format!("return: cannot load {p:?}"))),
                    }
                }
            }
        }
        Ok(())
    }
}

/// The x87 return pieces, in register-stack order (st0 first).
fn x87_in_order(pieces: &[Piece]) -> Vec<&Piece> {
    let mut x87: Vec<&Piece> = pieces
        .iter()
        .filter(|p| matches!(p.loc, Loc::X87(_)))
        .collect();
    x87.sort_by_key(|p| match p.loc {
        Loc::X87(n) => n,
        _ => 0,
    });
    x87
}

/// Refuses return plans no stub can honour, in either entry form (the
/// packed form leaves the registers to its caller, but a plan asking for a
/// value in `rbx` or in `st1` alone is wrong whoever reads it).
fn check_return(plan: &CallPlan) -> Result<()> {
    let RetPass::Direct(pieces) = &plan.ret.pass else {
        return Ok(());
    };
    let ret_size = plan.ret.ty.size() as u64;
    for (k, p) in x87_in_order(pieces).iter().enumerate() {
        if p.loc != Loc::X87(k as u8) {
            return Err(asm_err(format!(
                "return: x87 pieces must be st0, st1, ... in order, found {:?}",
                p.loc
            )));
        }
        if !(10..=16).contains(&p.size) || u64::from(p.offset) + 10 > ret_size {
            return Err(asm_err(format!(
                "return: x87 piece {p:?} does not fit a {ret_size}-byte value"
            )));
        }
    }
    for p in pieces {
        match p.loc {
            Loc::Gpr(r) => {
                if RESERVED_RET.contains(&r) || r > 15 {
                    return Err(asm_err(format!(
                        "return: register {r} is reserved by the stub"
                    )));
                }
                let end = u64::from(p.offset)
                    + if p.ext == Ext::None {
                        u64::from(p.size)
                    } else {
                        8
                    };
                if end > ret_size.max(8) || (p.ext == Ext::None && end > ret_size) {
                    return Err(asm_err(format!(
                        "return: piece {p:?} does not fit a {ret_size}-byte value"
                    )));
                }
            }
            Loc::Vec(r) => {
                if r > 15
                    || p.ext != Ext::None
                    || !matches!(p.size, 4 | 8 | 16)
                    || u64::from(p.offset + p.size) > ret_size
                {
                    return Err(asm_err(format!("return: cannot store {p:?}")));
                }
            }
            Loc::X87(_) => {}
            Loc::Stack(_) => return Err(asm_err("return: piece on the stack")),
        }
    }
    Ok(())
}

/// The packed form hands the target's return registers straight back, so
/// none of them may be one the stub restores for its own caller.
fn check_packed_return(plan: &CallPlan, frame: &Frame) -> Result<()> {
    let mut back: Vec<u8> = Vec::new();
    match &plan.ret.pass {
        RetPass::Direct(pieces) => back.extend(pieces.iter().filter_map(|p| match p.loc {
            Loc::Gpr(r) => Some(r),
            _ => None,
        })),
        RetPass::Indirect {
            returned: Some(Loc::Gpr(r)),
            ..
        } => back.push(*r),
        _ => {}
    }
    if let Some(r) = back.iter().find(|r| frame.pushed.contains(r)) {
        return Err(asm_err(format!(
            "return: {} carries a result but the target does not preserve it for the stub's caller",
            Loc::Gpr(*r).name(plan.arch)
        )));
    }
    Ok(())
}

/// The register a stub puts the static chain in (loaded right before the
/// call, so any register the call leaves free will do): not one of the
/// stub's own (`rsp`, `rbp`, `rbx`, `r12`), not `rax` when it carries the
/// vector count, and not one the plan loads an argument or the return
/// buffer's address into.
fn stub_chain(plan: &CallPlan) -> Result<Option<u8>> {
    let Some(loc) = plan.static_chain else {
        return Ok(None);
    };
    let r = match loc {
        Loc::Gpr(r) if r <= 15 && ![RSP, RBP, RBX, R12].contains(&r) => r,
        other => {
            return Err(asm_err(format!(
                "static chain in {}: not a register a stub can load",
                other.name(plan.arch)
            )))
        }
    };
    if r == RAX && plan.vector_count.is_some() {
        return Err(asm_err(
            "static chain in rax, which carries the vector count",
        ));
    }
    if uses_register(plan, r) {
        return Err(asm_err(format!(
            "static chain in {}, which also carries an argument",
            loc.name(plan.arch)
        )));
    }
    Ok(Some(r))
}

/// Whether an argument, an Indirect argument's address or the return
/// buffer's address travels in general register `r`.
fn uses_register(plan: &CallPlan, r: u8) -> bool {
    let args = plan.args.iter().any(|a| match &a.pass {
        ArgPass::Direct(pieces) => pieces.iter().any(|p| p.loc == Loc::Gpr(r)),
        ArgPass::Indirect { pointer } => *pointer == Loc::Gpr(r),
    });
    args || matches!(plan.ret.pass, RetPass::Indirect { pointer, .. } if pointer == Loc::Gpr(r))
}

fn who(i: usize) -> String {
    if i == usize::MAX {
        "the return buffer".into()
    } else {
        format!("argument {i}")
    }
}

/// Argument pieces never read past the value (it may end at a page end).
fn check_arg_piece(i: usize, p: &Piece, value_size: u64) -> Result<()> {
    if p.size == 0 || u64::from(p.offset) + u64::from(p.size) > value_size {
        return Err(asm_err(format!(
            "argument {i}: piece [{}..{}) outside its {value_size}-byte value",
            p.offset,
            u64::from(p.offset) + u64::from(p.size)
        )));
    }
    Ok(())
}

fn check_arg_gpr(i: usize, r: u8) -> Result<()> {
    if r > 15 || RESERVED_ARG.contains(&r) {
        return Err(asm_err(format!(
            "{}: register {r} is reserved by the stub",
            who(i)
        )));
    }
    Ok(())
}

/// Copies `n` bytes with the widest moves that stay inside both ends:
/// the tail is a move overlapping the previous one, never a read past the
/// value. Uses `rax`/`xmm0` (or `rsi`/`rdi`/`rcx` for `rep movsb`).
fn copy_bytes(ops: &mut Ops, src: Mem, dst: Mem, n: u32) -> Result<()> {
    if n > REP_MOVSB_MIN {
        let count = disp_i32(u64::from(n))?;
        mem!(ops, src, [lea rsi,], []);
        mem!(ops, dst, [lea rdi,], []);
        asm!(ops ; mov ecx, count ; rep movsb);
        return Ok(());
    }
    let width = match n {
        0 => return Ok(()),
        1 => 1,
        2..=3 => 2,
        4..=7 => 4,
        8..=15 => 8,
        _ => 16,
    };
    let mut k = 0;
    while k + width <= n {
        move_chunk(ops, width, src.plus(k)?, dst.plus(k)?);
        k += width;
    }
    if k < n {
        move_chunk(ops, width, src.plus(n - width)?, dst.plus(n - width)?);
    }
    Ok(())
}

/// `sub rsp, size`; above a page, a page at a time, touching each one, so
/// a frame larger than the guard gap faults instead of skipping it (the
/// one loop in generated code; it clobbers `eax`).
fn alloc_frame(ops: &mut Ops, size: u64) -> Result<()> {
    if size > PAGE {
        let pages = disp_i32(size / PAGE)?;
        let rest = disp_i32(size % PAGE)?;
        asm!(ops
            ; mov eax, pages
            ; probe:
            ; sub rsp, PAGE as i32
            ; or BYTE [rsp], 0
            ; dec eax
            ; jnz BYTE <probe
        );
        if rest != 0 {
            asm!(ops ; sub rsp, rest);
        }
    } else if let Ok(size) = i8::try_from(size) {
        if size > 0 {
            asm!(ops ; sub rsp, BYTE size);
        }
    } else {
        let size = disp_i32(size)?;
        asm!(ops ; sub rsp, size);
    }
    Ok(())
}

/// Copies `width` (1, 2, 4, 8 or 16) bytes from `src` to `dst` through
/// `eax`/`rax` or `xmm0`.
fn move_chunk(ops: &mut Ops, width: u32, src: Mem, dst: Mem) {
    match width {
        1 => {
            mem!(ops, src, [movzx eax, BYTE], []);
            mem!(ops, dst, [mov BYTE], [, al]);
        }
        2 => {
            mem!(ops, src, [movzx eax, WORD], []);
            mem!(ops, dst, [mov WORD], [, ax]);
        }
        4 => {
            mem!(ops, src, [mov eax, DWORD], []);
            mem!(ops, dst, [mov DWORD], [, eax]);
        }
        8 => {
            mem!(ops, src, [mov rax, QWORD], []);
            mem!(ops, dst, [mov QWORD], [, rax]);
        }
        _ => {
            mem!(ops, src, [movups xmm0, OWORD], []);
            mem!(ops, dst, [movups OWORD], [, xmm0]);
        }
    }
}

/// The crate, under the name `native_ret` expects.
#[cfg(all(test, target_arch = "x86_64"))]
mod jit {
    pub use crate::*;
}
/// Reads the packed form's native return (shared with the integration tests).
#[cfg(all(test, target_arch = "x86_64"))]
#[path = "../../tests/support/native_ret.rs"]
mod native_ret;

// The tests run the x86-64 code they generate: x86-64 hosts only.
#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use std::cell::RefCell;

    use super::native_ret;
    use std::ffi::c_void;

    use super::*;
    use crate::abi::{Abi, Arch};
    use crate::plan::{packed_layout, ArgPlan, RetPlan};
    use crate::types::{Type, TypeKind};

    const RDX: u8 = 2;
    const RCX: u8 = 1;
    const RSI: u8 = 6;
    const RDI: u8 = 7;
    const R8: u8 = 8;
    const R9: u8 = 9;
    const ARG_GPRS: [u8; 6] = [RDI, RSI, RDX, RCX, R8, R9];

    type Stub = unsafe extern "C" fn(*const c_void, *mut c_void, *const c_void);

    // ---- plan building -------------------------------------------------

    fn piece(offset: u32, size: u32, loc: Loc, ext: Ext) -> Piece {
        Piece {
            offset,
            size,
            loc,
            ext,
        }
    }

    fn whole(ty: &Type, loc: Loc, ext: Ext) -> Piece {
        piece(0, ty.size() as u32, loc, ext)
    }

    fn direct(ty: Type, pieces: Vec<Piece>) -> ArgPlan {
        ArgPlan {
            ty,
            pass: ArgPass::Direct(pieces),
            variadic: false,
        }
    }

    /// A scalar or small aggregate travelling whole in one location.
    fn one(ty: Type, loc: Loc, ext: Ext) -> ArgPlan {
        let p = whole(&ty, loc, ext);
        direct(ty, vec![p])
    }

    fn indirect(ty: Type, pointer: Loc) -> ArgPlan {
        ArgPlan {
            ty,
            pass: ArgPass::Indirect { pointer },
            variadic: false,
        }
    }

    fn i64_regs() -> Vec<ArgPlan> {
        ARG_GPRS
            .iter()
            .map(|&r| one(Type::i64(), Loc::Gpr(r), Ext::None))
            .collect()
    }

    fn plan(ret_ty: Type, ret: RetPass, args: Vec<ArgPlan>, stack_bytes: u32) -> CallPlan {
        let tys: Vec<Type> = args.iter().map(|a| a.ty.clone()).collect();
        let (packed_offsets, packed_size) = packed_layout(&tys);
        let p = CallPlan {
            abi: Abi::SysV64,
            arch: Arch::X86_64,
            ret: RetPlan {
                ty: ret_ty,
                pass: ret,
            },
            args,
            fixed_args: None,
            stack_bytes,
            shadow_space: 0,
            vector_count: None,
            static_chain: None,
            callee_saved: SYSV_CALLEE_SAVED.iter().map(|&r| Loc::Gpr(r)).collect(),
            packed_offsets,
            packed_size,
        };
        p.check().expect("hand-written plan is consistent");
        p
    }

    fn ret_in(ty: Type, loc: Loc, ext: Ext) -> (Type, RetPass) {
        let p = whole(&ty, loc, ext);
        (ty, RetPass::Direct(vec![p]))
    }

    fn ret_i64() -> (Type, RetPass) {
        ret_in(Type::i64(), Loc::Gpr(RAX), Ext::None)
    }

    fn void() -> (Type, RetPass) {
        (Type::void(), RetPass::Void)
    }

    fn mk(ret: (Type, RetPass), args: Vec<ArgPlan>, stack_bytes: u32) -> CallPlan {
        plan(ret.0, ret.1, args, stack_bytes)
    }

    // ---- running stubs -------------------------------------------------

    fn stub(plan: &CallPlan, form: EntryForm) -> Stub {
        let code = compile_call(plan, form).expect("stub assembles");
        let at = crate::memory::publish(&code).expect("stub published");
        // SAFETY: the code was generated for exactly this entry signature.
        unsafe { std::mem::transmute::<*const u8, Stub>(at) }
    }

    thread_local! {
        static SEEN: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    }

    /// Callees report what they received here.
    fn record(values: &[u64]) {
        SEEN.with(|s| s.borrow_mut().extend_from_slice(values));
    }

    fn take_seen() -> Vec<u64> {
        SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()))
    }

    const SENTINEL: u8 = 0xAA;

    #[repr(C, align(16))]
    struct RetBuf([u8; 64]);

    /// The arguments laid out for the packed form; padding is garbage so a
    /// stub that reads past a value is caught.
    fn pack(plan: &CallPlan, args: &[*const c_void]) -> Vec<u128> {
        let mut buf = vec![u128::from_ne_bytes([SENTINEL; 16]); plan.packed_size as usize / 16 + 1];
        let bytes = buf.as_mut_ptr().cast::<u8>();
        for (i, a) in plan.args.iter().enumerate() {
            // SAFETY: args[i] points at a value of a.ty.size() bytes and the
            // packed layout fits in `buf`.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    args[i].cast::<u8>(),
                    bytes.add(plan.packed_offsets[i] as usize),
                    a.ty.size(),
                )
            };
        }
        buf
    }

    /// What one call did: the return buffer (pre-filled with SENTINEL) and
    /// what the callee recorded.
    #[derive(Debug, PartialEq)]
    struct Outcome {
        ret: Vec<u8>,
        seen: Vec<u64>,
    }

    /// Calls `f` through both entry forms and checks they agree.
    ///
    /// # Safety
    /// `f` must have the signature `plan` describes and `args` must point
    /// at values of the plan's argument types.
    unsafe fn run(plan: &CallPlan, f: *const c_void, args: &[*const c_void]) -> Outcome {
        assert_eq!(args.len(), plan.args.len());
        let raw = stub(plan, EntryForm::Libffi);
        let packed = stub(plan, EntryForm::Packed);
        let saved: Vec<*const c_void> = args.to_vec();

        let mut r1 = RetBuf([SENTINEL; 64]);
        take_seen();
        // SAFETY: per this function's contract.
        unsafe { raw(f, r1.0.as_mut_ptr().cast(), args.as_ptr().cast()) };
        let first = Outcome {
            ret: r1.0.to_vec(),
            seen: take_seen(),
        };
        assert_eq!(args, &saved[..], "the stub wrote into avalue");

        let buf = pack(plan, args);
        let before = buf.clone();
        let mut r2 = RetBuf([SENTINEL; 64]);
        // SAFETY: per this function's contract; `buf` holds the arguments
        // at the plan's packed offsets.
        unsafe {
            native_ret::call_packed_into(
                plan,
                packed as *const c_void,
                f,
                r2.0.as_mut_ptr().cast(),
                buf.as_ptr().cast(),
            )
        };
        let second = Outcome {
            ret: r2.0.to_vec(),
            seen: take_seen(),
        };
        assert_eq!(buf, before, "the stub wrote into the packed arguments");
        assert_eq!(first, second, "libffi and packed forms disagree");
        first
    }

    /// Calls through both forms with a null rvalue; returns what the
    /// callee recorded.
    ///
    /// # Safety
    /// As for [`run`].
    unsafe fn run_discarding(
        plan: &CallPlan,
        f: *const c_void,
        args: &[*const c_void],
    ) -> Vec<u64> {
        let raw = stub(plan, EntryForm::Libffi);
        let packed = stub(plan, EntryForm::Packed);
        take_seen();
        // SAFETY: per the caller's contract; null rvalue is allowed.
        unsafe { raw(f, std::ptr::null_mut(), args.as_ptr().cast()) };
        let first = take_seen();
        let buf = pack(plan, args);
        // SAFETY: as above, packed form.
        unsafe {
            native_ret::call_packed_into(
                plan,
                packed as *const c_void,
                f,
                std::ptr::null_mut(),
                buf.as_ptr().cast(),
            )
        };
        assert_eq!(first, take_seen());
        first
    }

    fn ptr<T>(v: &T) -> *const c_void {
        (v as *const T).cast()
    }

    fn u64_at(bytes: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    }

    /// Bytes placed so they end exactly where an inaccessible page begins:
    /// any read past the value faults.
    struct Guarded {
        map: *mut c_void,
        at: *const c_void,
    }

    impl Guarded {
        fn new(bytes: &[u8]) -> Guarded {
            assert!(bytes.len() <= 4096);
            // SAFETY: a fresh anonymous mapping, touched only below.
            let map = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    8192,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(map, libc::MAP_FAILED);
            // SAFETY: the mapping is 8192 bytes; the copy ends at 4096 and the
            // second page is then made inaccessible.
            unsafe {
                let at = map.cast::<u8>().add(4096 - bytes.len());
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), at, bytes.len());
                assert_eq!(
                    libc::mprotect(map.cast::<u8>().add(4096).cast(), 4096, libc::PROT_NONE),
                    0
                );
                Guarded { map, at: at.cast() }
            }
        }
    }

    impl Drop for Guarded {
        fn drop(&mut self) {
            // SAFETY: unmaps exactly the mapping made in `new`.
            unsafe { libc::munmap(self.map, 8192) };
        }
    }

    fn bytes_of<T>(v: &T) -> &[u8] {
        // SAFETY: any initialised value may be viewed as bytes; the test
        // types have no padding.
        unsafe { std::slice::from_raw_parts(ptr(v).cast::<u8>(), std::mem::size_of::<T>()) }
    }

    // ---- hand-written callees -----------------------------------------

    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct S3(u8, u8, u8);
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct S5([u8; 5]);
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct S6(u16, u16, u16);
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct S7([u8; 7]);
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct S13([u8; 13]);
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct S40([u8; 40]);
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Big3(i64, i64, i64);
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Big4(i64, i64, i64, i64);
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Huge([u64; 40]);
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Giant([u64; 2000]);
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct FI(f64, i64);

    fn u8s(n: usize) -> Type {
        Type::structure([Type::array(Type::u8(), n).unwrap()]).unwrap()
    }

    fn t_s3() -> Type {
        Type::structure([Type::u8(), Type::u8(), Type::u8()]).unwrap()
    }

    fn t_s6() -> Type {
        Type::structure([Type::u16(), Type::u16(), Type::u16()]).unwrap()
    }

    fn t_i64s(n: usize) -> Type {
        Type::structure(std::iter::repeat_n(Type::i64(), n)).unwrap()
    }

    fn le(bytes: &[u8]) -> u64 {
        let mut w = [0u8; 8];
        w[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(w)
    }

    fn pattern<const N: usize>(seed: u8) -> [u8; N] {
        std::array::from_fn(|i| seed.wrapping_add((i as u8).wrapping_mul(37)) | 1)
    }

    #[allow(clippy::too_many_arguments)]
    extern "C" fn take_ints(a: i64, b: u64, c: i64, d: u64, e: i64, f: u64, g: i64, h: u64) -> i64 {
        record(&[a as u64, b, c as u64, d, e as u64, f, g as u64, h]);
        a ^ (b as i64) ^ c ^ (d as i64) ^ e ^ (f as i64) ^ g ^ (h as i64)
    }

    extern "C" fn take_floats(a: f64, b: f32, c: f64, d: f32) -> f64 {
        record(&[
            a.to_bits(),
            u64::from(b.to_bits()),
            c.to_bits(),
            u64::from(d.to_bits()),
        ]);
        a + f64::from(b) * 2.0 + c * 3.0 + f64::from(d) * 4.0
    }

    extern "C" fn half(x: f32) -> f32 {
        record(&[u64::from(x.to_bits())]);
        x / 2.0
    }

    #[allow(clippy::too_many_arguments)]
    extern "C" fn take_ten(
        a: f64,
        b: f64,
        c: f64,
        d: f64,
        e: f64,
        f: f64,
        g: f64,
        h: f64,
        i: f64,
        j: f64,
    ) -> f64 {
        let all = [a, b, c, d, e, f, g, h, i, j];
        record(&all.map(f64::to_bits));
        all.iter()
            .enumerate()
            .map(|(k, v)| v * (k + 1) as f64)
            .sum()
    }

    extern "C" fn take_odd(a: S3, b: S5, c: S6, d: S7, e: S13) -> u64 {
        record(&[
            le(bytes_of(&a)),
            le(bytes_of(&b)),
            le(bytes_of(&c)),
            le(bytes_of(&d)),
            le(&e.0[..8]),
            le(&e.0[8..]),
        ]);
        7
    }

    #[allow(clippy::too_many_arguments)]
    extern "C" fn take_stack_odd(
        r0: i64,
        r1: i64,
        r2: i64,
        r3: i64,
        r4: i64,
        r5: i64,
        a: S3,
        b: S5,
        c: S7,
        d: S13,
        e: S40,
    ) -> u64 {
        let mut v = vec![
            r0 as u64, r1 as u64, r2 as u64, r3 as u64, r4 as u64, r5 as u64,
        ];
        v.extend([le(bytes_of(&a)), le(bytes_of(&b)), le(bytes_of(&c))]);
        v.extend([le(&d.0[..8]), le(&d.0[8..])]);
        v.extend(e.0.chunks(8).map(le));
        record(&v);
        11
    }

    extern "C" fn take_big(b: Big3, x: i64) -> i64 {
        record(&[b.0 as u64, b.1 as u64, b.2 as u64, x as u64]);
        b.0 + b.1 + b.2 + x
    }

    extern "C" fn take_huge(h: Huge) -> u64 {
        record(&h.0);
        h.0.iter().sum()
    }

    extern "C" fn take_giant(g: Giant) -> u64 {
        record(&[g.0[0], g.0[999], g.0[1999]]);
        g.0.iter().enumerate().fold(0u64, |acc, (i, v)| {
            acc.wrapping_add(v.wrapping_mul(i as u64 + 1))
        })
    }

    extern "C" fn ret_big4(x: i64) -> Big4 {
        record(&[x as u64]);
        Big4(x, x + 1, x * 2, -x)
    }

    extern "C" fn sret_on_stack(a: i64, b: i64, c: i64, d: i64, e: i64, f: i64, out: *mut Big4) {
        record(&[a as u64, b as u64, c as u64, d as u64, e as u64, f as u64]);
        // SAFETY: the stub passes a buffer big enough for a Big4.
        unsafe { out.write(Big4(a + b, c + d, e + f, a * f)) };
    }

    extern "C" fn ret_fi(a: f64, b: i64) -> FI {
        record(&[a.to_bits(), b as u64]);
        FI(a * 2.0, b + 1)
    }

    extern "C" fn read_through(p: *mut Big4, x: i64) -> i64 {
        // SAFETY: the stub passes the address of a Big4 copy.
        let v = unsafe { p.read() };
        record(&[
            p as u64 % 16,
            v.0 as u64,
            v.1 as u64,
            v.2 as u64,
            v.3 as u64,
            x as u64,
        ]);
        // The copy is the callee's to scribble on; the caller's value must
        // not change.
        // SAFETY: as above.
        unsafe { p.write(Big4(-1, -1, -1, -1)) };
        v.0 + v.1 + v.2 + v.3 + x
    }

    #[allow(clippy::too_many_arguments)]
    extern "C" fn read_through_stack(
        r0: i64,
        r1: i64,
        r2: i64,
        r3: i64,
        r4: i64,
        r5: i64,
        p: *mut S3,
        q: *mut Huge,
    ) -> u64 {
        // SAFETY: the stub passes addresses of copies of an S3 and a Huge.
        let (s, h) = unsafe { (p.read(), q.read()) };
        let mut v = vec![
            r0 as u64, r1 as u64, r2 as u64, r3 as u64, r4 as u64, r5 as u64,
        ];
        v.extend([p as u64 % 16, q as u64 % 16, le(bytes_of(&s))]);
        v.extend(h.0);
        record(&v);
        // SAFETY: as above.
        unsafe {
            p.write(S3(0, 0, 0));
            q.write(Huge([0; 40]));
        }
        5
    }

    extern "C" fn nothing() {
        record(&[1]);
    }

    // Callees Rust cannot write: x87 returns, registers with garbage above
    // the returned bytes, the stack alignment seen at entry, and a caller
    // that checks every callee-saved register across a stub.
    core::arch::global_asm!(
        ".pushsection .text.jitffi_emit_tests,\"ax\",@progbits",
        ".p2align 4",
        ".globl jitffi_emit_test_ld1",
        ".hidden jitffi_emit_test_ld1",
        "jitffi_emit_test_ld1:",
        "    fld tbyte ptr [rip + jitffi_emit_test_k1]",
        "    ret",
        ".globl jitffi_emit_test_ld2",
        ".hidden jitffi_emit_test_ld2",
        "jitffi_emit_test_ld2:",
        "    fld tbyte ptr [rip + jitffi_emit_test_k2]",
        "    fld tbyte ptr [rip + jitffi_emit_test_k1]",
        "    ret",
        ".globl jitffi_emit_test_pattern",
        ".hidden jitffi_emit_test_pattern",
        "jitffi_emit_test_pattern:",
        "    movabs rax, 0x0123456789ABCDEF",
        "    movabs rdx, 0xFEDCBA9876543210",
        "    movabs rsi, 0x1122334455667788",
        "    movabs rdi, 0x99AABBCCDDEEFF80",
        "    ret",
        ".globl jitffi_emit_test_rsp_mod16",
        ".hidden jitffi_emit_test_rsp_mod16",
        "jitffi_emit_test_rsp_mod16:",
        "    lea rax, [rsp + 8]",
        "    and eax, 15",
        "    ret",
        ".globl jitffi_emit_test_rsp_mod16_sret",
        ".hidden jitffi_emit_test_rsp_mod16_sret",
        "jitffi_emit_test_rsp_mod16_sret:",
        "    lea rax, [rsp + 8]",
        "    and eax, 15",
        "    mov [rdi], rax",
        "    mov rax, rdi",
        "    ret",
        // guard(stub, fn, rvalue, args) -> bit mask of clobbered registers
        ".globl jitffi_emit_test_guard",
        ".hidden jitffi_emit_test_guard",
        "jitffi_emit_test_guard:",
        "    push rbp",
        "    push rbx",
        "    push r12",
        "    push r13",
        "    push r14",
        "    push r15",
        "    sub rsp, 8",
        "    mov [rsp], rsp",
        "    mov rax, rdi",
        "    mov rdi, rsi",
        "    mov rsi, rdx",
        "    mov rdx, rcx",
        "    movabs rbx, 0x1111111111111111",
        "    movabs rbp, 0x2222222222222222",
        "    movabs r12, 0x3333333333333333",
        "    movabs r13, 0x4444444444444444",
        "    movabs r14, 0x5555555555555555",
        "    movabs r15, 0x6666666666666666",
        "    call rax",
        "    xor eax, eax",
        "    movabs rdx, 0x1111111111111111",
        "    cmp rbx, rdx",
        "    je .Ljitffi_g1",
        "    or eax, 1",
        ".Ljitffi_g1:",
        "    movabs rdx, 0x2222222222222222",
        "    cmp rbp, rdx",
        "    je .Ljitffi_g2",
        "    or eax, 2",
        ".Ljitffi_g2:",
        "    movabs rdx, 0x3333333333333333",
        "    cmp r12, rdx",
        "    je .Ljitffi_g3",
        "    or eax, 4",
        ".Ljitffi_g3:",
        "    movabs rdx, 0x4444444444444444",
        "    cmp r13, rdx",
        "    je .Ljitffi_g4",
        "    or eax, 8",
        ".Ljitffi_g4:",
        "    movabs rdx, 0x5555555555555555",
        "    cmp r14, rdx",
        "    je .Ljitffi_g5",
        "    or eax, 16",
        ".Ljitffi_g5:",
        "    movabs rdx, 0x6666666666666666",
        "    cmp r15, rdx",
        "    je .Ljitffi_g6",
        "    or eax, 32",
        ".Ljitffi_g6:",
        "    mov rdx, [rsp]",
        "    cmp rdx, rsp",
        "    je .Ljitffi_g7",
        "    or eax, 64",
        ".Ljitffi_g7:",
        "    add rsp, 8",
        "    pop r15",
        "    pop r14",
        "    pop r13",
        "    pop r12",
        "    pop rbx",
        "    pop rbp",
        "    ret",
        ".p2align 4",
        // pi and -e in x87 extended precision
        "jitffi_emit_test_k1:",
        "    .quad 0xC90FDAA22168C235",
        "    .short 0x4000",
        ".p2align 4",
        "jitffi_emit_test_k2:",
        "    .quad 0xADF85458A2BB4A9B",
        "    .short 0xC000",
        ".popsection",
    );

    extern "C" {
        fn jitffi_emit_test_ld1();
        fn jitffi_emit_test_ld2();
        fn jitffi_emit_test_pattern();
        fn jitffi_emit_test_rsp_mod16();
        fn jitffi_emit_test_rsp_mod16_sret();
        fn jitffi_emit_test_guard(
            stub: Stub,
            f: *const c_void,
            rvalue: *mut c_void,
            args: *const c_void,
        ) -> u64;
    }

    const PI80: [u8; 10] = [0x35, 0xC2, 0x68, 0x21, 0xA2, 0xDA, 0x0F, 0xC9, 0x00, 0x40];
    const NEG_E80: [u8; 10] = [0x9B, 0x4A, 0xBB, 0xA2, 0x58, 0x54, 0xF8, 0xAD, 0x00, 0xC0];
    const RAX_PATTERN: u64 = 0x0123_4567_89AB_CDEF;
    const RDX_PATTERN: u64 = 0xFEDC_BA98_7654_3210;
    const RSI_PATTERN: u64 = 0x1122_3344_5566_7788;
    const RDI_PATTERN: u64 = 0x99AA_BBCC_DDEE_FF80;

    fn fnptr(f: unsafe extern "C" fn()) -> *const c_void {
        f as *const c_void
    }

    // ---- tests ----------------------------------------------------------

    #[test]
    fn golden_void_void() {
        let mut p = mk(void(), vec![], 0);
        p.vector_count = Some(0);
        let code = compile_call(&p, EntryForm::Libffi).unwrap();
        #[rustfmt::skip]
        // A tail stub: fn parked in the red zone, al set, jump.
        let expected: &[u8] = &[
            0xF3, 0x0F, 0x1E, 0xFA,       // endbr64
            0x48, 0x89, 0x7C, 0x24, 0xF8, // mov [rsp-8], rdi
            0x31, 0xC0,                   // xor eax, eax
            0xFF, 0x64, 0x24, 0xF8,       // jmp QWORD [rsp-8]
        ];
        assert_eq!(code, expected);
        assert_eq!(compile_call(&p, EntryForm::Packed).unwrap(), expected);
        // SAFETY: `nothing` is void(void).
        let seen = unsafe { run(&p, nothing as *const c_void, &[]) };
        assert_eq!(seen.seen, vec![1]);
        assert_eq!(seen.ret, vec![SENTINEL; 64]);
    }

    #[test]
    fn integers_of_every_width_are_extended() {
        let args = vec![
            one(Type::i8(), Loc::Gpr(RDI), Ext::Sign),
            one(Type::u8(), Loc::Gpr(RSI), Ext::Zero),
            one(Type::i16(), Loc::Gpr(RDX), Ext::Sign),
            one(Type::u16(), Loc::Gpr(RCX), Ext::Zero),
            one(Type::i32(), Loc::Gpr(R8), Ext::Sign),
            one(Type::u32(), Loc::Gpr(R9), Ext::Zero),
            one(Type::i8(), Loc::Stack(0), Ext::Sign),
            one(Type::u16(), Loc::Stack(8), Ext::Zero),
        ];
        let p = mk(ret_i64(), args, 16);
        // Every value sits in a word whose upper bytes are garbage.
        let garbage = 0xAAAA_AAAA_AAAA_AAAA_u64;
        let words: [u64; 8] = [
            (garbage & !0xFF) | 0xFB,                          // i8 -5
            (garbage & !0xFF) | 200,                           // u8 200
            (garbage & !0xFFFF) | u64::from((-300i16) as u16), // i16
            (garbage & !0xFFFF) | 60000,                       // u16
            (garbage & !0xFFFF_FFFF) | u64::from((-70000i32) as u32),
            (garbage & !0xFFFF_FFFF) | 4_000_000_000,
            (garbage & !0xFF) | 0xF9, // i8 -7
            (garbage & !0xFFFF) | 65000,
        ];
        let args: Vec<*const c_void> = words.iter().map(ptr).collect();
        // SAFETY: take_ints takes eight 64-bit integers; the plan passes
        // the narrow values widened into them.
        let out = unsafe { run(&p, take_ints as *const c_void, &args) };
        let expected = [
            -5i64 as u64,
            200,
            -300i64 as u64,
            60000,
            -70000i64 as u64,
            4_000_000_000,
            -7i64 as u64,
            65000,
        ];
        assert_eq!(out.seen, expected);
        let xor = expected.iter().fold(0, |a, b| a ^ b);
        assert_eq!(u64_at(&out.ret, 0), xor);
        assert_eq!(out.ret[8..], [SENTINEL; 56]);
    }

    #[test]
    fn floats_and_doubles() {
        let args = vec![
            one(Type::f64(), Loc::Vec(0), Ext::None),
            one(Type::f32(), Loc::Vec(1), Ext::None),
            one(Type::f64(), Loc::Vec(2), Ext::None),
            one(Type::f32(), Loc::Vec(3), Ext::None),
        ];
        let p = mk(ret_in(Type::f64(), Loc::Vec(0), Ext::None), args, 0);
        let (a, b, c, d) = (1.25f64, -2.5f32, 1e300f64, 3.75f32);
        // SAFETY: take_floats is double(double, float, double, float).
        let out = unsafe {
            run(
                &p,
                take_floats as *const c_void,
                &[ptr(&a), ptr(&b), ptr(&c), ptr(&d)],
            )
        };
        assert_eq!(
            out.seen,
            [
                a.to_bits(),
                u64::from(b.to_bits()),
                c.to_bits(),
                u64::from(d.to_bits())
            ]
        );
        let expected = a + f64::from(b) * 2.0 + c * 3.0 + f64::from(d) * 4.0;
        assert_eq!(u64_at(&out.ret, 0), expected.to_bits());

        let p = mk(
            ret_in(Type::f32(), Loc::Vec(0), Ext::None),
            vec![one(Type::f32(), Loc::Vec(0), Ext::None)],
            0,
        );
        let x = 7.5f32;
        // SAFETY: half is float(float).
        let out = unsafe { run(&p, half as *const c_void, &[ptr(&x)]) };
        assert_eq!(out.seen, [u64::from(x.to_bits())]);
        assert_eq!(out.ret[..4], 3.75f32.to_le_bytes());
        assert_eq!(
            out.ret[4..],
            [SENTINEL; 60],
            "a float return stores 4 bytes"
        );
    }

    #[test]
    fn ten_doubles_spill_to_the_stack() {
        let mut args: Vec<ArgPlan> = (0..8)
            .map(|r| one(Type::f64(), Loc::Vec(r), Ext::None))
            .collect();
        args.push(one(Type::f64(), Loc::Stack(0), Ext::None));
        args.push(one(Type::f64(), Loc::Stack(8), Ext::None));
        let p = mk(ret_in(Type::f64(), Loc::Vec(0), Ext::None), args, 16);
        let vals: Vec<f64> = (0..10).map(|i| 0.5 + f64::from(i) * 1.125).collect();
        let ptrs: Vec<*const c_void> = vals.iter().map(ptr).collect();
        // SAFETY: take_ten takes ten doubles.
        let out = unsafe { run(&p, take_ten as *const c_void, &ptrs) };
        assert_eq!(
            out.seen,
            vals.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        let sum: f64 = vals
            .iter()
            .enumerate()
            .map(|(k, v)| v * (k + 1) as f64)
            .sum();
        assert_eq!(u64_at(&out.ret, 0), sum.to_bits());
    }

    #[test]
    fn odd_sized_structs_in_registers_never_read_past_the_value() {
        let t13 = u8s(13);
        let args = vec![
            one(t_s3(), Loc::Gpr(RDI), Ext::None),
            one(u8s(5), Loc::Gpr(RSI), Ext::None),
            one(t_s6(), Loc::Gpr(RDX), Ext::None),
            one(u8s(7), Loc::Gpr(RCX), Ext::None),
            direct(
                t13,
                vec![
                    piece(0, 8, Loc::Gpr(R8), Ext::None),
                    piece(8, 5, Loc::Gpr(R9), Ext::None),
                ],
            ),
        ];
        let p = mk(ret_i64(), args, 0);
        let a = S3(0x81, 0x92, 0xA3);
        let b = S5(pattern(3));
        let c = S6(0xF00D, 0xBEEF, 0xCAFE);
        let d = S7(pattern(9));
        let e = S13(pattern(21));
        let g = [
            Guarded::new(bytes_of(&a)),
            Guarded::new(bytes_of(&b)),
            Guarded::new(bytes_of(&c)),
            Guarded::new(bytes_of(&d)),
            Guarded::new(bytes_of(&e)),
        ];
        let ptrs: Vec<*const c_void> = g.iter().map(|g| g.at).collect();
        // SAFETY: take_odd takes (S3, S5, S6, S7, S13) by value.
        let out = unsafe { run(&p, take_odd as *const c_void, &ptrs) };
        assert_eq!(
            out.seen,
            [
                le(bytes_of(&a)),
                le(bytes_of(&b)),
                le(bytes_of(&c)),
                le(bytes_of(&d)),
                le(&e.0[..8]),
                le(&e.0[8..]),
            ]
        );
        assert_eq!(u64_at(&out.ret, 0), 7);
    }

    #[test]
    fn stack_copies_of_every_size() {
        let mut args = i64_regs();
        args.push(one(t_s3(), Loc::Stack(0), Ext::None));
        args.push(one(u8s(5), Loc::Stack(8), Ext::None));
        args.push(one(u8s(7), Loc::Stack(16), Ext::None));
        args.push(one(u8s(13), Loc::Stack(24), Ext::None));
        args.push(one(u8s(40), Loc::Stack(40), Ext::None));
        let p = mk(ret_i64(), args, 80);
        let regs: [i64; 6] = [-1, 2, -3, 4, -5, i64::MIN];
        let a = S3(1, 2, 3);
        let b = S5(pattern(5));
        let c = S7(pattern(6));
        let d = S13(pattern(7));
        let e = S40(pattern(8));
        let g = [
            Guarded::new(bytes_of(&a)),
            Guarded::new(bytes_of(&b)),
            Guarded::new(bytes_of(&c)),
            Guarded::new(bytes_of(&d)),
            Guarded::new(bytes_of(&e)),
        ];
        let mut ptrs: Vec<*const c_void> = regs.iter().map(ptr).collect();
        ptrs.extend(g.iter().map(|g| g.at));
        // SAFETY: take_stack_odd takes six i64 and (S3, S5, S7, S13, S40).
        let out = unsafe { run(&p, take_stack_odd as *const c_void, &ptrs) };
        let mut expected: Vec<u64> = regs.iter().map(|&r| r as u64).collect();
        expected.extend([le(bytes_of(&a)), le(bytes_of(&b)), le(bytes_of(&c))]);
        expected.extend([le(&d.0[..8]), le(&d.0[8..])]);
        expected.extend(e.0.chunks(8).map(le));
        assert_eq!(out.seen, expected);
        assert_eq!(u64_at(&out.ret, 0), 11);
    }

    #[test]
    fn structs_by_value_on_the_stack() {
        let args = vec![
            one(t_i64s(3), Loc::Stack(0), Ext::None),
            one(Type::i64(), Loc::Gpr(RDI), Ext::None),
        ];
        let p = mk(ret_i64(), args, 32);
        let b = Big3(10, -20, 30_000_000_000);
        let x = 4i64;
        // SAFETY: take_big is int64_t(struct {int64_t x3}, int64_t).
        let out = unsafe { run(&p, take_big as *const c_void, &[ptr(&b), ptr(&x)]) };
        assert_eq!(out.seen, [10, -20i64 as u64, 30_000_000_000, 4]);
        assert_eq!(u64_at(&out.ret, 0), 30_000_000_000 - 10 + 4);

        // Large enough for rep movsb.
        let huge_t = Type::structure([Type::array(Type::u64(), 40).unwrap()]).unwrap();
        let p = mk(ret_i64(), vec![one(huge_t, Loc::Stack(0), Ext::None)], 320);
        let h = Huge(std::array::from_fn(|i| (i as u64 + 1) * 0x0101_0101_0101));
        let g = Guarded::new(bytes_of(&h));
        // SAFETY: take_huge takes a Huge by value.
        let out = unsafe { run(&p, take_huge as *const c_void, &[g.at]) };
        assert_eq!(out.seen, h.0);
        assert_eq!(u64_at(&out.ret, 0), h.0.iter().sum::<u64>());
    }

    #[test]
    fn frames_beyond_a_page_are_probed() {
        let t = Type::structure([Type::array(Type::u64(), 2000).unwrap()]).unwrap();
        let p = mk(ret_i64(), vec![one(t, Loc::Stack(0), Ext::None)], 16000);
        let code = compile_call(&p, EntryForm::Libffi).unwrap();
        let g = Box::new(Giant(std::array::from_fn(|i| i as u64 ^ 0x5A5A)));
        // SAFETY: take_giant takes a Giant by value.
        let out = unsafe { run(&p, take_giant as *const c_void, &[ptr(&*g)]) };
        assert_eq!(out.seen, [g.0[0], g.0[999], g.0[1999]]);
        let expected = g.0.iter().enumerate().fold(0u64, |acc, (i, v)| {
            acc.wrapping_add(v.wrapping_mul(i as u64 + 1))
        });
        assert_eq!(u64_at(&out.ret, 0), expected);
        // The probe: or byte [rsp], 0.
        assert!(code.windows(4).any(|w| w == [0x80, 0x0C, 0x24, 0x00]));
    }

    #[test]
    fn sret_return_with_and_without_rvalue() {
        let ret = RetPass::Indirect {
            pointer: Loc::Gpr(RDI),
            returned: Some(Loc::Gpr(RAX)),
        };
        let p = plan(
            t_i64s(4),
            ret,
            vec![one(Type::i64(), Loc::Gpr(RSI), Ext::None)],
            0,
        );
        let x = 21i64;
        // SAFETY: ret_big4 is struct {int64_t x4}(int64_t), returned via sret.
        let out = unsafe { run(&p, ret_big4 as *const c_void, &[ptr(&x)]) };
        assert_eq!(out.seen, [21]);
        let want = Big4(21, 22, 42, -21);
        assert_eq!(out.ret[..32], *bytes_of(&want));
        assert_eq!(out.ret[32..], [SENTINEL; 32]);
        // SAFETY: as above; a null rvalue is allowed.
        let seen = unsafe { run_discarding(&p, ret_big4 as *const c_void, &[ptr(&x)]) };
        assert_eq!(seen, [21]);
    }

    #[test]
    fn sret_pointer_on_the_stack() {
        let ret = RetPass::Indirect {
            pointer: Loc::Stack(0),
            returned: None,
        };
        let p = plan(t_i64s(4), ret, i64_regs(), 16);
        let v: [i64; 6] = [1, 2, 3, 4, 5, 6];
        let ptrs: Vec<*const c_void> = v.iter().map(ptr).collect();
        // SAFETY: sret_on_stack takes six i64 and a pointer to the result.
        let out = unsafe { run(&p, sret_on_stack as *const c_void, &ptrs) };
        assert_eq!(out.seen, [1, 2, 3, 4, 5, 6]);
        assert_eq!(out.ret[..32], *bytes_of(&Big4(3, 7, 11, 6)));
        // SAFETY: as above.
        let seen = unsafe { run_discarding(&p, sret_on_stack as *const c_void, &ptrs) };
        assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn two_register_struct_return() {
        let t = Type::structure([Type::f64(), Type::i64()]).unwrap();
        let ret = RetPass::Direct(vec![
            piece(0, 8, Loc::Vec(0), Ext::None),
            piece(8, 8, Loc::Gpr(RAX), Ext::None),
        ]);
        let args = vec![
            one(Type::f64(), Loc::Vec(0), Ext::None),
            one(Type::i64(), Loc::Gpr(RDI), Ext::None),
        ];
        let p = plan(t, ret, args, 0);
        let (a, b) = (-0.75f64, 1i64 << 40);
        // SAFETY: ret_fi is struct {double; int64_t}(double, int64_t).
        let out = unsafe { run(&p, ret_fi as *const c_void, &[ptr(&a), ptr(&b)]) };
        assert_eq!(out.seen, [a.to_bits(), b as u64]);
        assert_eq!(out.ret[..16], *bytes_of(&FI(-1.5, (1 << 40) + 1)));
        assert_eq!(out.ret[16..], [SENTINEL; 48]);
        // SAFETY: as above, discarding the result.
        let seen = unsafe { run_discarding(&p, ret_fi as *const c_void, &[ptr(&a), ptr(&b)]) };
        assert_eq!(seen, [a.to_bits(), b as u64]);
    }

    #[test]
    fn narrow_returns_are_widened_from_garbage_registers() {
        let f = fnptr(jitffi_emit_test_pattern);
        let cases: [(Type, Ext, u64); 6] = [
            (Type::i8(), Ext::Sign, 0xFFFF_FFFF_FFFF_FFEF),
            (Type::u8(), Ext::Zero, 0xEF),
            (Type::i16(), Ext::Sign, 0xFFFF_FFFF_FFFF_CDEF),
            (Type::u16(), Ext::Zero, 0xCDEF),
            (Type::i32(), Ext::Sign, 0xFFFF_FFFF_89AB_CDEF),
            (Type::u32(), Ext::Zero, 0x89AB_CDEF),
        ];
        for (ty, ext, want) in cases {
            let p = mk(ret_in(ty.clone(), Loc::Gpr(RAX), ext), vec![], 0);
            // SAFETY: the pattern callee takes nothing and only sets
            // caller-saved registers.
            let out = unsafe { run(&p, f, &[]) };
            assert_eq!(u64_at(&out.ret, 0), want, "{ty} {ext:?}");
            assert_eq!(out.ret[8..], [SENTINEL; 56]);
            // SAFETY: as above.
            unsafe { run_discarding(&p, f, &[]) };
        }
        // Byte registers that need a REX prefix (dil, sil) and rdx.
        let t = t_i64s(3);
        let ret = RetPass::Direct(vec![
            piece(0, 1, Loc::Gpr(RDI), Ext::Sign),
            piece(8, 1, Loc::Gpr(RSI), Ext::None),
            piece(16, 2, Loc::Gpr(RDX), Ext::Zero),
        ]);
        let p = plan(t, ret, vec![], 0);
        // SAFETY: as above.
        let out = unsafe { run(&p, f, &[]) };
        assert_eq!(u64_at(&out.ret, 0), RDI_PATTERN as i8 as u64);
        assert_eq!(out.ret[8], RSI_PATTERN as u8);
        assert_eq!(out.ret[9..16], [SENTINEL; 7]);
        assert_eq!(u64_at(&out.ret, 16), RDX_PATTERN & 0xFFFF);
        assert_eq!(out.ret[24..], [SENTINEL; 40]);
    }

    #[test]
    fn odd_sized_returns_store_exact_bytes() {
        let f = fnptr(jitffi_emit_test_pattern);
        let rax = RAX_PATTERN.to_le_bytes();
        for n in [1usize, 2, 3, 4, 5, 6, 7, 8] {
            let p = mk(ret_in(u8s(n), Loc::Gpr(RAX), Ext::None), vec![], 0);
            // SAFETY: the pattern callee takes nothing.
            let out = unsafe { run(&p, f, &[]) };
            assert_eq!(out.ret[..n], rax[..n], "{n}-byte return");
            assert!(
                out.ret[n..].iter().all(|&b| b == SENTINEL),
                "{n}-byte return overran"
            );
        }
        // A second piece from rdx at a nonzero offset: struct {u64; u8[3]}.
        let t = Type::structure([Type::u64(), Type::array(Type::u8(), 3).unwrap()]).unwrap();
        let ret = RetPass::Direct(vec![
            piece(0, 8, Loc::Gpr(RAX), Ext::None),
            piece(8, 3, Loc::Gpr(RDX), Ext::None),
        ]);
        let p = plan(t, ret, vec![], 0);
        // SAFETY: as above.
        let out = unsafe { run(&p, f, &[]) };
        assert_eq!(u64_at(&out.ret, 0), RAX_PATTERN);
        assert_eq!(out.ret[8..11], RDX_PATTERN.to_le_bytes()[..3]);
        assert_eq!(out.ret[11..], [SENTINEL; 53]);

        // Five pieces (near jump over the stores), one register stored
        // twice: stores must not disturb their source register.
        let ret = RetPass::Direct(vec![
            piece(0, 1, Loc::Gpr(RAX), Ext::None),
            piece(1, 1, Loc::Gpr(RDX), Ext::None),
            piece(2, 1, Loc::Gpr(RSI), Ext::None),
            piece(3, 1, Loc::Gpr(RDI), Ext::None),
            piece(4, 7, Loc::Gpr(RAX), Ext::None),
        ]);
        let p = plan(u8s(11), ret, vec![], 0);
        // SAFETY: as above.
        let out = unsafe { run(&p, f, &[]) };
        let want = [
            RAX_PATTERN as u8,
            RDX_PATTERN as u8,
            RSI_PATTERN as u8,
            RDI_PATTERN as u8,
        ];
        assert_eq!(out.ret[..4], want);
        assert_eq!(out.ret[4..11], rax[..7]);
        assert_eq!(out.ret[11..], [SENTINEL; 53]);
        // SAFETY: as above, discarding.
        unsafe { run_discarding(&p, f, &[]) };
    }

    #[test]
    fn short_jump_over_the_longest_stores() {
        // Four 7-byte pieces at 32-bit displacements: the longest sequence
        // still skipped with a rel8 jump.
        let ret = RetPass::Direct(
            [200, 300, 400, 500]
                .iter()
                .map(|&off| piece(off, 7, Loc::Gpr(RAX), Ext::None))
                .collect(),
        );
        let p = plan(u8s(1024), ret, vec![], 0);
        let raw = stub(&p, EntryForm::Libffi);
        let mut buf = vec![SENTINEL; 1024];
        // SAFETY: the pattern callee takes nothing; buf holds 1024 bytes.
        unsafe {
            raw(
                fnptr(jitffi_emit_test_pattern),
                buf.as_mut_ptr().cast(),
                std::ptr::null(),
            );
            raw(
                fnptr(jitffi_emit_test_pattern),
                std::ptr::null_mut(),
                std::ptr::null(),
            );
        }
        let rax = RAX_PATTERN.to_le_bytes();
        for off in [200, 300, 400, 500] {
            assert_eq!(buf[off..off + 7], rax[..7]);
            assert_eq!(buf[off + 7], SENTINEL);
        }
        assert_eq!(buf.iter().filter(|&&b| b != SENTINEL).count(), 28);
    }

    #[test]
    fn null_rvalue_discards_direct_results() {
        let p = mk(
            ret_i64(),
            vec![
                one(t_i64s(3), Loc::Stack(0), Ext::None),
                one(Type::i64(), Loc::Gpr(RDI), Ext::None),
            ],
            32,
        );
        let (b, x) = (Big3(1, 2, 3), 3i64);
        // SAFETY: take_big is int64_t(struct {int64_t x3}, int64_t).
        let seen = unsafe { run_discarding(&p, take_big as *const c_void, &[ptr(&b), ptr(&x)]) };
        assert_eq!(seen, [1, 2, 3, 3]);
        // Odd-sized and widened stores are skipped too.
        let f = fnptr(jitffi_emit_test_pattern);
        for (ty, ext) in [(u8s(7), Ext::None), (Type::i16(), Ext::Sign)] {
            let p = mk(ret_in(ty, Loc::Gpr(RAX), ext), vec![], 0);
            // SAFETY: the pattern callee takes nothing.
            unsafe { run_discarding(&p, f, &[]) };
        }
    }

    #[test]
    fn packed_form_uses_the_plan_offsets() {
        let args = vec![
            one(Type::i8(), Loc::Gpr(RDI), Ext::Sign),
            one(t_s3(), Loc::Gpr(RSI), Ext::None),
            one(Type::f64(), Loc::Vec(0), Ext::None),
            one(u8s(5), Loc::Gpr(RDX), Ext::None),
            one(Type::f32(), Loc::Vec(1), Ext::None),
            one(Type::i16(), Loc::Gpr(RCX), Ext::Sign),
        ];
        let p = mk(ret_i64(), args, 0);
        assert_eq!(p.packed_offsets, [0, 8, 16, 24, 32, 40]);
        let raw = stub(&p, EntryForm::Packed);
        let mut buf = [SENTINEL; 48];
        buf[0] = (-9i8) as u8;
        buf[8..11].copy_from_slice(&[7, 8, 9]);
        buf[16..24].copy_from_slice(&2.5f64.to_le_bytes());
        buf[24..29].copy_from_slice(&[1, 2, 3, 4, 5]);
        buf[32..36].copy_from_slice(&0.5f32.to_le_bytes());
        buf[40..42].copy_from_slice(&(-1234i16).to_le_bytes());
        let mut ret = [SENTINEL; 8];
        take_seen();
        // SAFETY: the callee reads registers of the right classes; the
        // buffer holds each argument at its packed offset.
        // The packed form hands back the callee's rax untouched.
        let packed = unsafe {
            std::mem::transmute::<
                Stub,
                unsafe extern "C" fn(*const c_void, *mut c_void, *const c_void) -> i64,
            >(raw)
        };
        // SAFETY: as above.
        let r = unsafe {
            packed(
                check_mixed as *const c_void,
                ret.as_mut_ptr().cast(),
                buf.as_ptr().cast(),
            )
        };
        ret = r.to_le_bytes();
        assert_eq!(
            take_seen(),
            [
                -9i64 as u64,
                0x09_0807,
                2.5f64.to_bits(),
                0x05_0403_0201,
                u64::from(0.5f32.to_bits()),
                -1234i64 as u64
            ]
        );
        assert_eq!(u64::from_le_bytes(ret), 99);
    }

    extern "C" fn check_mixed(a: i64, b: S3, c: f64, d: S5, e: f32, f: i64) -> i64 {
        record(&[
            a as u64,
            le(bytes_of(&b)),
            c.to_bits(),
            le(bytes_of(&d)),
            u64::from(e.to_bits()),
            f as u64,
        ]);
        99
    }

    #[test]
    fn indirect_arguments_are_copied_and_passed_by_address() {
        let args = vec![
            indirect(t_i64s(4), Loc::Gpr(RDI)),
            one(Type::i64(), Loc::Gpr(RSI), Ext::None),
        ];
        let p = mk(ret_i64(), args, 0);
        let v = Big4(1, 20, 300, 4000);
        let x = 50000i64;
        // SAFETY: read_through takes (Big4 *, int64_t).
        let out = unsafe { run(&p, read_through as *const c_void, &[ptr(&v), ptr(&x)]) };
        assert_eq!(out.seen, [0, 1, 20, 300, 4000, 50000]);
        assert_eq!(u64_at(&out.ret, 0), 54321);
        assert_eq!(v, Big4(1, 20, 300, 4000), "the caller's value changed");

        // Addresses on the stack, one copy small, one through rep movsb.
        let huge_t = Type::structure([Type::array(Type::u64(), 40).unwrap()]).unwrap();
        let mut args = i64_regs();
        args.push(indirect(t_s3(), Loc::Stack(0)));
        args.push(indirect(huge_t, Loc::Stack(8)));
        let p = mk(ret_i64(), args, 16);
        let regs: [i64; 6] = [6, 5, 4, 3, 2, 1];
        let s = S3(0xDE, 0xAD, 0x42);
        let h = Huge(std::array::from_fn(|i| (i as u64) << 32 | 7));
        let gs = Guarded::new(bytes_of(&s));
        let gh = Guarded::new(bytes_of(&h));
        let mut ptrs: Vec<*const c_void> = regs.iter().map(ptr).collect();
        ptrs.extend([gs.at, gh.at]);
        // SAFETY: read_through_stack takes six i64 and two pointers.
        let out = unsafe { run(&p, read_through_stack as *const c_void, &ptrs) };
        let mut want: Vec<u64> = regs.iter().map(|&r| r as u64).collect();
        want.extend([0, 0, 0x42_ADDE]);
        want.extend(h.0);
        assert_eq!(out.seen, want);
        // SAFETY: the guarded pages are still mapped and readable.
        let (s2, h2) = unsafe { (gs.at.cast::<S3>().read(), gh.at.cast::<Huge>().read()) };
        assert_eq!((s2, h2), (s, h), "the caller's values changed");
    }

    #[test]
    fn x87_returns_are_stored_and_popped() {
        let p = mk(
            ret_in(Type::long_double(), Loc::X87(0), Ext::None),
            vec![],
            0,
        );
        let f1 = fnptr(jitffi_emit_test_ld1);
        // SAFETY: ld1 returns a long double in st0.
        let out = unsafe { run(&p, f1, &[]) };
        assert_eq!(out.ret[..10], PI80);
        assert_eq!(out.ret[10..], [SENTINEL; 54]);

        let ret = RetPass::Direct(vec![
            piece(0, 16, Loc::X87(0), Ext::None),
            piece(16, 16, Loc::X87(1), Ext::None),
        ]);
        let p2 = plan(Type::complex_long_double(), ret, vec![], 0);
        let f2 = fnptr(jitffi_emit_test_ld2);
        // SAFETY: ld2 returns a long double complex in st0 (real), st1.
        let out = unsafe { run(&p2, f2, &[]) };
        assert_eq!(out.ret[..10], PI80);
        assert_eq!(out.ret[10..16], [SENTINEL; 6]);
        assert_eq!(out.ret[16..26], NEG_E80);
        assert_eq!(out.ret[26..], [SENTINEL; 38]);

        // Discarding must pop too: 100 calls would overflow the 8-deep
        // register stack if anything were left behind.
        for _ in 0..100 {
            // SAFETY: as above, null rvalue.
            unsafe {
                run_discarding(&p, f1, &[]);
                run_discarding(&p2, f2, &[]);
            }
        }
        assert_eq!(x87_tag_word(), 0xFFFF, "x87 registers left in use");
        // SAFETY: as above.
        let out = unsafe { run(&p2, f2, &[]) };
        assert_eq!(out.ret[..10], PI80);
        assert_eq!(out.ret[16..26], NEG_E80);
    }

    /// The x87 tag word: 0xFFFF when every register is empty.
    fn x87_tag_word() -> u16 {
        let mut env = [0u16; 14];
        // SAFETY: fnstenv writes the 28-byte environment into `env`;
        // fldenv restores it unchanged (fnstenv masks exceptions).
        unsafe {
            core::arch::asm!(
                "fnstenv [{0}]",
                "fldenv [{0}]",
                in(reg) env.as_mut_ptr(),
                options(nostack),
            )
        };
        env[4]
    }

    #[test]
    fn stack_is_aligned_at_every_call() {
        let f = fnptr(jitffi_emit_test_rsp_mod16);
        let huge_t = Type::structure([Type::array(Type::u64(), 40).unwrap()]).unwrap();
        let (s, b, h) = (S3(1, 2, 3), S5([1; 5]), Huge([9; 40]));
        let cases: [(CallPlan, Vec<*const c_void>); 4] = [
            (mk(ret_i64(), vec![], 0), vec![]),
            (
                mk(
                    ret_i64(),
                    vec![one(Type::u8(), Loc::Stack(0), Ext::None)],
                    16,
                ),
                vec![ptr(&s)],
            ),
            (
                mk(ret_i64(), vec![indirect(t_s3(), Loc::Gpr(RDI))], 0),
                vec![ptr(&s)],
            ),
            (
                mk(
                    ret_i64(),
                    vec![
                        indirect(t_s3(), Loc::Gpr(RDI)),
                        indirect(u8s(5), Loc::Stack(0)),
                        indirect(huge_t, Loc::Gpr(RSI)),
                    ],
                    16,
                ),
                vec![ptr(&s), ptr(&b), ptr(&h)],
            ),
        ];
        for (p, args) in &cases {
            // SAFETY: the callee ignores its arguments.
            let out = unsafe { run(p, f, args) };
            assert_eq!(u64_at(&out.ret, 0), 0, "misaligned call in\n{p}");
        }
        // With an sret temporary in the frame as well.
        let sret = plan(
            t_i64s(4),
            RetPass::Indirect {
                pointer: Loc::Gpr(RDI),
                returned: Some(Loc::Gpr(RAX)),
            },
            vec![
                one(Type::u8(), Loc::Stack(0), Ext::None),
                indirect(t_s3(), Loc::Gpr(RSI)),
            ],
            16,
        );
        let fs = fnptr(jitffi_emit_test_rsp_mod16_sret);
        // SAFETY: the callee writes its answer through the sret pointer.
        let out = unsafe { run(&sret, fs, &[ptr(&s), ptr(&s)]) };
        assert_eq!(u64_at(&out.ret, 0), 0, "misaligned call in\n{sret}");
    }

    #[test]
    fn callee_saved_registers_survive() {
        let x = 21i64;
        let v = Big4(1, 2, 3, 4);
        let sret = plan(
            t_i64s(4),
            RetPass::Indirect {
                pointer: Loc::Gpr(RDI),
                returned: Some(Loc::Gpr(RAX)),
            },
            vec![one(Type::i64(), Loc::Gpr(RSI), Ext::None)],
            0,
        );
        let ind = mk(
            ret_i64(),
            vec![
                indirect(t_i64s(4), Loc::Gpr(RDI)),
                one(Type::i64(), Loc::Gpr(RSI), Ext::None),
            ],
            0,
        );
        let x87 = mk(
            ret_in(Type::long_double(), Loc::X87(0), Ext::None),
            vec![],
            0,
        );
        let cases: [(&CallPlan, *const c_void, Vec<*const c_void>); 4] = [
            (&mk(void(), vec![], 0), nothing as *const c_void, vec![]),
            (&sret, ret_big4 as *const c_void, vec![ptr(&x)]),
            (&ind, read_through as *const c_void, vec![ptr(&v), ptr(&x)]),
            (&x87, fnptr(jitffi_emit_test_ld1), vec![]),
        ];
        for (p, f, args) in cases {
            for form in [EntryForm::Libffi, EntryForm::Packed] {
                let s = stub(p, form);
                let packed = pack(p, &args);
                let a: *const c_void = match form {
                    EntryForm::Libffi => args.as_ptr().cast(),
                    EntryForm::Packed => packed.as_ptr().cast(),
                };
                let x87_result = matches!(&p.ret.pass, RetPass::Direct(ps) if ps.iter().any(|q| matches!(q.loc, Loc::X87(_))));
                if form == EntryForm::Packed && x87_result {
                    // The packed form leaves st0 for its caller to pop; the
                    // guard would (rightly) report the unbalanced stack.
                    continue;
                }
                let sret = matches!(p.ret.pass, RetPass::Indirect { .. });
                for rvalue in [RetBuf([0; 64]).0.as_mut_ptr(), std::ptr::null_mut()] {
                    if form == EntryForm::Packed && sret && rvalue.is_null() {
                        continue; // the packed form requires a buffer there
                    }
                    // SAFETY: the guard calls the stub with these arguments,
                    // which match the callee's signature.
                    let clobbered = unsafe { jitffi_emit_test_guard(s, f, rvalue.cast(), a) };
                    assert_eq!(clobbered, 0, "clobbered mask {clobbered:#x} in\n{p}");
                }
            }
        }
    }

    #[test]
    fn unencodable_plans_are_refused() {
        let refuse = |p: &CallPlan, what: &str| {
            for form in [EntryForm::Libffi, EntryForm::Packed] {
                match compile_call(p, form) {
                    Err(Error::Assembly { reason }) => {
                        assert!(reason.contains(what), "{reason:?} lacks {what:?}")
                    }
                    other => panic!("expected a refusal mentioning {what:?}, got {other:?}"),
                }
            }
        };
        let mut p = mk(void(), vec![one(Type::i64(), Loc::Gpr(RDI), Ext::None)], 0);
        p.vector_count = Some(0);
        for chain in [RDI, RAX, RBX, RBP, R12, RSP, 16] {
            p.static_chain = Some(Loc::Gpr(chain));
            refuse(&p, "static chain");
        }
        p.static_chain = Some(Loc::Vec(1));
        refuse(&p, "static chain");
        refuse(
            &mk(void(), vec![one(Type::i64(), Loc::Gpr(R10), Ext::None)], 0),
            "reserved",
        );
        refuse(
            &mk(void(), vec![one(Type::i64(), Loc::Gpr(RAX), Ext::None)], 0),
            "reserved",
        );
        refuse(
            &mk(void(), vec![one(Type::i128(), Loc::Vec(0), Ext::None)], 0),
            "vector",
        );
        refuse(
            &mk(
                void(),
                vec![one(Type::long_double(), Loc::X87(0), Ext::None)],
                0,
            ),
            "x87",
        );
        refuse(
            &mk(void(), vec![one(t_s3(), Loc::Gpr(RDI), Ext::Sign)], 0),
            "3-byte",
        );
        // A piece reading past its value: `CallPlan::check` refuses it, and
        // the emitter must too, for plans built without that check.
        let mut oversized = mk(void(), vec![one(Type::u8(), Loc::Gpr(RDI), Ext::None)], 0);
        oversized.args[0].pass = ArgPass::Direct(vec![piece(0, 8, Loc::Gpr(RDI), Ext::None)]);
        assert!(oversized.check().is_err());
        refuse(&oversized, "outside");
        refuse(
            &mk(
                ret_in(Type::long_double(), Loc::X87(1), Ext::None),
                vec![],
                0,
            ),
            "x87",
        );
        refuse(
            &mk(ret_in(Type::i64(), Loc::Gpr(RBX), Ext::None), vec![], 0),
            "reserved",
        );
        let mut p = mk(void(), vec![indirect(t_i64s(4), Loc::Gpr(RDI))], 0);
        p.args[0].ty = Type::structure([Type::array(Type::u8(), 1 << 24).unwrap()]).unwrap();
        let mut big = p.clone();
        for _ in 0..70 {
            big.args.push(p.args[0].clone());
            big.packed_offsets.push(0);
        }
        refuse(&big, "frame");
    }

    /// Prints stub sizes for a few signatures (`--ignored --nocapture`).
    #[test]
    #[ignore]
    fn report_stub_sizes() {
        let f64_args = |n: u8| {
            (0..n)
                .map(|r| one(Type::f64(), Loc::Vec(r), Ext::None))
                .collect()
        };
        let i32_regs = |n: usize| -> Vec<ArgPlan> {
            (0..n)
                .map(|k| {
                    let loc = if k < 6 {
                        Loc::Gpr(ARG_GPRS[k])
                    } else {
                        Loc::Stack(8 * (k as u32 - 6))
                    };
                    one(Type::i32(), loc, Ext::Sign)
                })
                .collect()
        };
        let i32_ret = || ret_in(Type::i32(), Loc::Gpr(RAX), Ext::Sign);
        let dd = Type::structure([Type::f64(), Type::f64()]).unwrap();
        let dd_arg = |a: u8| {
            direct(
                dd.clone(),
                vec![
                    piece(0, 8, Loc::Vec(a), Ext::None),
                    piece(8, 8, Loc::Vec(a + 1), Ext::None),
                ],
            )
        };
        let cases = [
            ("S1 void(void)", mk(void(), vec![], 0)),
            ("S2 int(int,int)", mk(i32_ret(), i32_regs(2), 0)),
            (
                "S3 double(4 x double)",
                mk(ret_in(Type::f64(), Loc::Vec(0), Ext::None), f64_args(4), 0),
            ),
            ("S4 int64(8 x int64)", {
                let mut a = i64_regs();
                a.push(one(Type::i64(), Loc::Stack(0), Ext::None));
                a.push(one(Type::i64(), Loc::Stack(8), Ext::None));
                mk(ret_i64(), a, 16)
            }),
            (
                "S6 {dd}({dd},{dd})",
                plan(
                    dd.clone(),
                    RetPass::Direct(vec![
                        piece(0, 8, Loc::Vec(0), Ext::None),
                        piece(8, 8, Loc::Vec(1), Ext::None),
                    ]),
                    vec![dd_arg(0), dd_arg(2)],
                    0,
                ),
            ),
            (
                "S7 {i64x4}({i64x4})",
                plan(
                    t_i64s(4),
                    RetPass::Indirect {
                        pointer: Loc::Gpr(RDI),
                        returned: Some(Loc::Gpr(RAX)),
                    },
                    vec![one(t_i64s(4), Loc::Stack(0), Ext::None)],
                    32,
                ),
            ),
            ("S8 int(16 x int)", mk(i32_ret(), i32_regs(16), 80)),
        ];
        for (name, p) in cases {
            let raw = compile_call(&p, EntryForm::Libffi).unwrap().len();
            let packed = compile_call(&p, EntryForm::Packed).unwrap().len();
            eprintln!("{name}: libffi form {raw} bytes, packed form {packed} bytes");
        }
    }

    // ---- closure thunks -------------------------------------------------

    /// A closure record laid out as `crate::closure::record` says.
    #[repr(C, align(64))]
    struct Rec([usize; 8]);

    type Handler =
        unsafe extern "C" fn(*const c_void, *mut c_void, *const *mut c_void, *mut c_void);

    /// What the thunk must hand the handler as `cif`.
    const CIF_MARK: usize = 0x0C1F_0C1F_0C1F;

    /// A published thunk behind a trampoline of its own that sets `r11`
    /// (standing in for the slot allocator).
    struct Closure {
        entry: *const c_void,
        _rec: Box<Rec>,
    }

    fn closure(plan: &CallPlan, handler: Handler, user_data: *const c_void) -> Closure {
        let code = compile_closure_thunk(plan).expect("thunk assembles");
        let thunk = crate::memory::publish(&code).expect("thunk published");
        let mut rec = Box::new(Rec([0; 8]));
        rec.0[record::CIF / 8] = CIF_MARK;
        rec.0[record::FUN / 8] = handler as usize;
        rec.0[record::USER_DATA / 8] = user_data as usize;
        let mut tramp = vec![0x49, 0xBB]; // mov r11, imm64
        tramp.extend((&*rec as *const Rec as usize).to_le_bytes());
        tramp.extend([0xFF, 0x25, 0, 0, 0, 0]); // jmp [rip + 0]
        tramp.extend((thunk as usize).to_le_bytes());
        let entry = crate::memory::publish(&tramp).expect("trampoline published");
        Closure {
            entry: entry.cast(),
            _rec: rec,
        }
    }

    /// The handler's side of a test: how many bytes each argument has, what
    /// to write into `rvalue`, and what it was given.
    struct Ctx {
        sizes: Vec<usize>,
        reply: Vec<u8>,
        got: RefCell<Got>,
    }

    #[derive(Clone, Debug, Default)]
    struct Got {
        calls: u32,
        cif: usize,
        rvalue: usize,
        ptrs: Vec<usize>,
        args: Vec<Vec<u8>>,
    }

    impl Ctx {
        fn new(plan: &CallPlan, reply: &[u8]) -> Box<Ctx> {
            Box::new(Ctx {
                sizes: plan.args.iter().map(|a| a.ty.size()).collect(),
                reply: reply.to_vec(),
                got: RefCell::new(Got::default()),
            })
        }

        fn take(&self) -> Got {
            std::mem::take(&mut *self.got.borrow_mut())
        }
    }

    unsafe extern "C" fn recording_handler(
        cif: *const c_void,
        rvalue: *mut c_void,
        args: *const *mut c_void,
        user_data: *mut c_void,
    ) {
        // SAFETY: every test passes a live Ctx as user data.
        let ctx = unsafe { &*user_data.cast::<Ctx>() };
        let mut g = ctx.got.borrow_mut();
        g.calls += 1;
        g.cif = cif as usize;
        g.rvalue = rvalue as usize;
        g.ptrs.clear();
        g.args.clear();
        for (i, &n) in ctx.sizes.iter().enumerate() {
            // SAFETY: the thunk passes one pointer per argument, each to a
            // value of the argument's size, valid during the call.
            let (p, bytes) = unsafe {
                let p = *args.add(i);
                (p, std::slice::from_raw_parts(p.cast::<u8>(), n).to_vec())
            };
            g.ptrs.push(p as usize);
            g.args.push(bytes);
        }
        // SAFETY: the return buffer holds at least the return type's size
        // (and 8 bytes), which bounds every reply the tests choose.
        unsafe {
            std::ptr::copy_nonoverlapping(ctx.reply.as_ptr(), rvalue.cast::<u8>(), ctx.reply.len())
        };
    }

    fn closure_for(plan: &CallPlan, ctx: &Ctx) -> Closure {
        closure(plan, recording_handler, ptr(ctx))
    }

    // Callers and handlers Rust cannot write: x87 results read from st0
    // and st1, and a handler reporting the stack alignment it sees.
    core::arch::global_asm!(
        ".pushsection .text.jitffi_thunk_tests,\"ax\",@progbits",
        ".p2align 4",
        // rsp_handler(cif, rvalue, args, ud): *(u64 *)rvalue = entry rsp + 8 mod 16
        ".globl jitffi_thunk_test_rsp_handler",
        ".hidden jitffi_thunk_test_rsp_handler",
        "jitffi_thunk_test_rsp_handler:",
        "    lea rax, [rsp + 8]",
        "    and eax, 15",
        "    mov [rsi], rax",
        "    ret",
        // call_ld(f, out): f() returns a long double; stored at out
        ".globl jitffi_thunk_test_call_ld",
        ".hidden jitffi_thunk_test_call_ld",
        "jitffi_thunk_test_call_ld:",
        "    push rbx",
        "    mov rbx, rsi",
        "    call rdi",
        "    fstp tbyte ptr [rbx]",
        "    pop rbx",
        "    ret",
        // call_ld2(f, out): f() returns a complex long double; real at
        // out, imaginary at out + 16
        ".globl jitffi_thunk_test_call_ld2",
        ".hidden jitffi_thunk_test_call_ld2",
        "jitffi_thunk_test_call_ld2:",
        "    push rbx",
        "    mov rbx, rsi",
        "    call rdi",
        "    fstp tbyte ptr [rbx]",
        "    fstp tbyte ptr [rbx + 16]",
        "    pop rbx",
        "    ret",
        ".popsection",
    );

    extern "C" {
        fn jitffi_thunk_test_rsp_handler(
            cif: *const c_void,
            rvalue: *mut c_void,
            args: *const *mut c_void,
            user_data: *mut c_void,
        );
        fn jitffi_thunk_test_call_ld(f: *const c_void, out: *mut u8);
        fn jitffi_thunk_test_call_ld2(f: *const c_void, out: *mut u8);
    }

    /// `entry` as a function pointer of type `F`.
    ///
    /// # Safety
    /// `F` must be a function pointer type matching the plan of `entry`.
    unsafe fn as_fn<F: Copy>(entry: *const c_void) -> F {
        assert_eq!(std::mem::size_of::<F>(), 8);
        // SAFETY: per the contract, F is a function pointer type.
        unsafe { std::mem::transmute_copy::<*const c_void, F>(&entry) }
    }

    type Fn9 = extern "C" fn(u64, u64, u64, u64, u64, u64, u64, u64, u64) -> u64;

    #[test]
    fn golden_thunk_void_void() {
        let p = mk(void(), vec![], 0);
        let code = compile_closure_thunk(&p).unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0xF3, 0x0F, 0x1E, 0xFA, // endbr64
            0x55,                   // push rbp
            0x48, 0x89, 0xE5,       // mov rbp, rsp
            0x48, 0x83, 0xEC, 0x10, // sub rsp, 16
            0x4D, 0x8B, 0x53, 0x28, // mov r10, [r11 + 40]   fun
            0x49, 0x8B, 0x7B, 0x20, // mov rdi, [r11 + 32]   cif
            0x48, 0x89, 0xE6,       // mov rsi, rsp          rvalue
            0x48, 0x89, 0xE2,       // mov rdx, rsp          args
            0x49, 0x8B, 0x4B, 0x30, // mov rcx, [r11 + 48]   user_data
            0x41, 0xFF, 0xD2,       // call r10
            0x48, 0x89, 0xEC,       // mov rsp, rbp
            0x5D,                   // pop rbp
            0xC3,                   // ret
        ];
        assert_eq!(code, expected);
        let ctx = Ctx::new(&p, &[]);
        let c = closure_for(&p, &ctx);
        // SAFETY: the closure is void(void).
        let f: extern "C" fn() = unsafe { as_fn(c.entry) };
        f();
        f();
        let got = ctx.take();
        assert_eq!((got.calls, got.cif), (2, CIF_MARK));
        assert_eq!(got.rvalue % 16, 0);
    }

    #[test]
    fn thunk_integers_of_every_width() {
        let args = vec![
            one(Type::i8(), Loc::Gpr(RDI), Ext::Sign),
            one(Type::u8(), Loc::Gpr(RSI), Ext::Zero),
            one(Type::i16(), Loc::Gpr(RDX), Ext::Sign),
            one(Type::u16(), Loc::Gpr(RCX), Ext::Zero),
            one(Type::i32(), Loc::Gpr(R8), Ext::Sign),
            one(Type::u32(), Loc::Gpr(R9), Ext::Zero),
            one(Type::i64(), Loc::Stack(0), Ext::None),
            one(Type::i8(), Loc::Stack(8), Ext::Sign),
            one(Type::u16(), Loc::Stack(16), Ext::Zero),
        ];
        let p = mk(ret_i64(), args, 32);
        let ctx = Ctx::new(&p, &0x7766_5544_3322_1100u64.to_le_bytes());
        let c = closure_for(&p, &ctx);
        // Every value in a word whose upper bytes are garbage: the handler
        // must see exactly the value's own bytes.
        let words: [u64; 9] = [
            0xAAAA_AAAA_AAAA_AAFB,
            0xBBBB_BBBB_BBBB_BBC8,
            0xCCCC_CCCC_CCCC_FED4,
            0xDDDD_DDDD_DDDD_EA60,
            0xEEEE_EEEE_FFFE_EE90,
            0x1111_1111_EE6B_2800,
            0x8000_0000_0000_0001,
            0x2222_2222_2222_22F9,
            0x3333_3333_3333_FDE8,
        ];
        // SAFETY: every argument arrives in a full 64-bit slot, so the
        // plan's narrow types read the low bytes of these words.
        let f: Fn9 = unsafe { as_fn(c.entry) };
        let r = f(
            words[0], words[1], words[2], words[3], words[4], words[5], words[6], words[7],
            words[8],
        );
        assert_eq!(r, 0x7766_5544_3322_1100);
        let got = ctx.take();
        let want: Vec<Vec<u8>> = p
            .args
            .iter()
            .zip(words)
            .map(|(a, w)| w.to_le_bytes()[..a.ty.size()].to_vec())
            .collect();
        assert_eq!(got.args, want);
        // The stack arguments are read in the caller's area: 32 bytes above
        // the 16-byte return buffer (saved rbp, return address).
        for (i, off) in [(6, 0), (7, 8), (8, 16)] {
            assert_eq!(got.ptrs[i], got.rvalue + 32 + off, "argument {i}");
        }
    }

    #[test]
    fn thunk_narrow_returns_are_widened() {
        // (type, ext, the value's bytes, the widened register)
        let cases: [(Type, Ext, u64, u64); 8] = [
            (Type::i8(), Ext::Sign, 0xF0, 0xFFFF_FFFF_FFFF_FFF0),
            (Type::u8(), Ext::Zero, 0xF0, 0xF0),
            (Type::i16(), Ext::Sign, 0x8001, 0xFFFF_FFFF_FFFF_8001),
            (Type::u16(), Ext::Zero, 0x8001, 0x8001),
            (Type::i32(), Ext::Sign, 0x8000_0002, 0xFFFF_FFFF_8000_0002),
            (Type::u32(), Ext::Zero, 0x8000_0002, 0x8000_0002),
            (Type::i8(), Ext::Sign, 0x7F, 0x7F),
            (Type::i16(), Ext::Sign, 0x1234, 0x1234),
        ];
        for (ty, ext, value, want) in cases {
            let n = ty.size();
            let p = mk(ret_in(ty.clone(), Loc::Gpr(RAX), ext), vec![], 0);
            // Only `size` bytes written (garbage above), then an ffi_arg.
            let mut narrow = [0x5Au8; 8];
            narrow[..n].copy_from_slice(&value.to_le_bytes()[..n]);
            for reply in [&narrow[..n], &narrow[..], &want.to_le_bytes()[..]] {
                let ctx = Ctx::new(&p, reply);
                let c = closure_for(&p, &ctx);
                // SAFETY: the closure takes nothing; its result is in rax.
                let f: extern "C" fn() -> u64 = unsafe { as_fn(c.entry) };
                assert_eq!(f(), want, "{ty} {ext:?} from {reply:x?}");
            }
        }
        // Odd-sized aggregates in rax: the low bytes are the value.
        for n in [3usize, 5, 6, 7] {
            let p = mk(ret_in(u8s(n), Loc::Gpr(RAX), Ext::None), vec![], 0);
            let reply: Vec<u8> = (1..=n as u8).collect();
            let ctx = Ctx::new(&p, &reply);
            let c = closure_for(&p, &ctx);
            // SAFETY: the closure takes nothing; its result is in rax.
            let f: extern "C" fn() -> u64 = unsafe { as_fn(c.entry) };
            assert_eq!(f().to_le_bytes()[..n], reply[..], "{n}-byte return");
        }
    }

    #[test]
    fn thunk_floats_and_doubles() {
        let args = vec![
            one(Type::f64(), Loc::Vec(0), Ext::None),
            one(Type::f32(), Loc::Vec(1), Ext::None),
            one(Type::f64(), Loc::Vec(2), Ext::None),
            one(Type::f32(), Loc::Vec(3), Ext::None),
        ];
        let p = mk(ret_in(Type::f64(), Loc::Vec(0), Ext::None), args, 0);
        let ctx = Ctx::new(&p, &6.5f64.to_le_bytes());
        let c = closure_for(&p, &ctx);
        // SAFETY: double(double, float, double, float).
        let f: extern "C" fn(f64, f32, f64, f32) -> f64 = unsafe { as_fn(c.entry) };
        assert_eq!(f(1.25, -2.5, 1e300, 3.75), 6.5);
        let got = ctx.take();
        assert_eq!(
            got.args,
            [
                1.25f64.to_le_bytes().to_vec(),
                (-2.5f32).to_le_bytes().to_vec(),
                1e300f64.to_le_bytes().to_vec(),
                3.75f32.to_le_bytes().to_vec(),
            ]
        );

        let p = mk(
            ret_in(Type::f32(), Loc::Vec(0), Ext::None),
            vec![one(Type::f32(), Loc::Vec(0), Ext::None)],
            0,
        );
        let ctx = Ctx::new(&p, &3.75f32.to_le_bytes());
        let c = closure_for(&p, &ctx);
        // SAFETY: float(float).
        let f: extern "C" fn(f32) -> f32 = unsafe { as_fn(c.entry) };
        assert_eq!(f(7.5), 3.75);
        assert_eq!(ctx.take().args, [7.5f32.to_le_bytes().to_vec()]);
    }

    #[test]
    fn thunk_stack_arguments() {
        // Ten int64: four on the stack.
        let mut args = i64_regs();
        for k in 0..4 {
            args.push(one(Type::i64(), Loc::Stack(8 * k), Ext::None));
        }
        let p = mk(ret_i64(), args, 32);
        let ctx = Ctx::new(&p, &(-5i64).to_le_bytes());
        let c = closure_for(&p, &ctx);
        type F10 = extern "C" fn(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64) -> i64;
        // SAFETY: int64_t(10 x int64_t).
        let f: F10 = unsafe { as_fn(c.entry) };
        let v: [i64; 10] = std::array::from_fn(|k| (k as i64 + 1) * -0x0101_0101_0101);
        assert_eq!(
            f(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]),
            -5
        );
        let got = ctx.take();
        let want: Vec<Vec<u8>> = v.iter().map(|x| x.to_le_bytes().to_vec()).collect();
        assert_eq!(got.args, want);
        for k in 0..4 {
            assert_eq!(got.ptrs[6 + k], got.rvalue + 32 + 8 * k);
        }

        // Ten doubles: two on the stack.
        let mut args: Vec<ArgPlan> = (0..8)
            .map(|r| one(Type::f64(), Loc::Vec(r), Ext::None))
            .collect();
        args.push(one(Type::f64(), Loc::Stack(0), Ext::None));
        args.push(one(Type::f64(), Loc::Stack(8), Ext::None));
        let p = mk(ret_in(Type::f64(), Loc::Vec(0), Ext::None), args, 16);
        let ctx = Ctx::new(&p, &0.125f64.to_le_bytes());
        let c = closure_for(&p, &ctx);
        type D10 = extern "C" fn(f64, f64, f64, f64, f64, f64, f64, f64, f64, f64) -> f64;
        // SAFETY: double(10 x double).
        let f: D10 = unsafe { as_fn(c.entry) };
        let v: [f64; 10] = std::array::from_fn(|k| 0.5 + k as f64 * 1.125);
        assert_eq!(
            f(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]),
            0.125
        );
        let got = ctx.take();
        let want: Vec<Vec<u8>> = v.iter().map(|x| x.to_le_bytes().to_vec()).collect();
        assert_eq!(got.args, want);
    }

    #[test]
    fn thunk_odd_sized_structs_in_registers() {
        let args = vec![
            one(t_s3(), Loc::Gpr(RDI), Ext::None),
            one(u8s(5), Loc::Gpr(RSI), Ext::None),
            one(t_s6(), Loc::Gpr(RDX), Ext::None),
            one(u8s(7), Loc::Gpr(RCX), Ext::None),
            direct(
                u8s(13),
                vec![
                    piece(0, 8, Loc::Gpr(R8), Ext::None),
                    piece(8, 5, Loc::Gpr(R9), Ext::None),
                ],
            ),
        ];
        let p = mk(ret_i64(), args, 0);
        let ctx = Ctx::new(&p, &7u64.to_le_bytes());
        let c = closure_for(&p, &ctx);
        let (a, b, s6, d, e) = (
            S3(0x81, 0x92, 0xA3),
            S5(pattern(3)),
            S6(0xF00D, 0xBEEF, 0xCAFE),
            S7(pattern(9)),
            S13(pattern(21)),
        );
        // SAFETY: uint64_t(S3, S5, S6, S7, S13), all in registers.
        let f: extern "C" fn(S3, S5, S6, S7, S13) -> u64 = unsafe { as_fn(c.entry) };
        assert_eq!(f(a, b, s6, d, e), 7);
        let got = ctx.take();
        assert_eq!(
            got.args,
            [
                bytes_of(&a).to_vec(),
                bytes_of(&b).to_vec(),
                bytes_of(&s6).to_vec(),
                bytes_of(&d).to_vec(),
                bytes_of(&e).to_vec(),
            ]
        );
        // Each copied value sits in a slot of its own: 8-aligned for a
        // word or less, 16-aligned beyond.
        assert!(got.ptrs[..4].iter().all(|p| p % 8 == 0));
        assert_eq!(got.ptrs[4] % 16, 0);
        let mut sorted = got.ptrs.clone();
        sorted.sort_unstable();
        assert!(sorted.windows(2).all(|w| w[1] - w[0] >= 8));
    }

    #[test]
    fn thunk_struct_on_the_stack_is_read_in_place() {
        let args = vec![
            one(t_i64s(3), Loc::Stack(0), Ext::None),
            one(Type::i64(), Loc::Gpr(RDI), Ext::None),
            one(u8s(40), Loc::Stack(24), Ext::None),
        ];
        let p = mk(ret_i64(), args, 64);
        let ctx = Ctx::new(&p, &99u64.to_le_bytes());
        let c = closure_for(&p, &ctx);
        let b = Big3(10, -20, 30_000_000_000);
        let s = S40(pattern(4));
        // SAFETY: int64_t(struct {int64_t x3}, int64_t, struct {uint8_t[40]}).
        let f: extern "C" fn(Big3, i64, S40) -> i64 = unsafe { as_fn(c.entry) };
        assert_eq!(f(b, 4, s), 99);
        let got = ctx.take();
        assert_eq!(
            got.args,
            [
                bytes_of(&b).to_vec(),
                4i64.to_le_bytes().to_vec(),
                bytes_of(&s).to_vec()
            ]
        );
        // args[0] and args[2] point into the caller's argument area.
        assert_eq!(got.ptrs[0], got.rvalue + 32);
        assert_eq!(got.ptrs[2], got.rvalue + 32 + 24);
    }

    #[test]
    fn thunk_two_register_struct_return() {
        let t = Type::structure([Type::f64(), Type::i64()]).unwrap();
        let ret = RetPass::Direct(vec![
            piece(0, 8, Loc::Vec(0), Ext::None),
            piece(8, 8, Loc::Gpr(RAX), Ext::None),
        ]);
        let args = vec![
            one(Type::f64(), Loc::Vec(0), Ext::None),
            one(Type::i64(), Loc::Gpr(RDI), Ext::None),
        ];
        let p = plan(t, ret, args, 0);
        let want = FI(-1.5, (1 << 40) + 1);
        let ctx = Ctx::new(&p, bytes_of(&want));
        let c = closure_for(&p, &ctx);
        // SAFETY: struct {double; int64_t}(double, int64_t).
        let f: extern "C" fn(f64, i64) -> FI = unsafe { as_fn(c.entry) };
        assert_eq!(f(-0.75, 1 << 40), want);
        let got = ctx.take();
        assert_eq!(got.args[0], (-0.75f64).to_le_bytes());
        assert_eq!(got.args[1], (1i64 << 40).to_le_bytes());
    }

    #[test]
    fn thunk_sret_writes_through_the_callers_buffer() {
        let sret = RetPass::Indirect {
            pointer: Loc::Gpr(RDI),
            returned: Some(Loc::Gpr(RAX)),
        };
        let p = plan(
            t_i64s(4),
            sret,
            vec![one(Type::i64(), Loc::Gpr(RSI), Ext::None)],
            0,
        );
        let want = Big4(1, -2, 3, i64::MIN);
        let ctx = Ctx::new(&p, bytes_of(&want));
        let c = closure_for(&p, &ctx);
        // SAFETY: the sret ABI of struct {int64_t x4}(int64_t): the buffer
        // in rdi, the argument in rsi, the buffer back in rax.
        let f: extern "C" fn(*mut Big4, i64) -> *mut Big4 = unsafe { as_fn(c.entry) };
        #[repr(C, align(16))]
        struct Words([i64; 6]);
        let mut mem = Words([-7; 6]);
        let out = mem.0.as_mut_ptr().cast::<Big4>();
        let back = f(out, 21);
        assert_eq!(back, out);
        assert_eq!(mem.0[..4], [1, -2, 3, i64::MIN]);
        let got = ctx.take();
        assert_eq!(
            got.rvalue, out as usize,
            "a 16-aligned buffer passes through"
        );
        assert_eq!(got.args, [21i64.to_le_bytes().to_vec()]);
        // A buffer aligned only for the type passes through too (libffi's
        // contract), and the value lands in it exactly.
        let mut mem = Words([-7; 6]);
        // SAFETY: words 1..5 of the six.
        let out = unsafe { mem.0.as_mut_ptr().add(1) }.cast::<Big4>();
        assert_eq!(f(out, 22), out);
        assert_eq!(mem.0, [-7, 1, -2, 3, i64::MIN, -7]);
        let got = ctx.take();
        assert_eq!(got.rvalue, out as usize);
        assert_eq!(got.args, [22i64.to_le_bytes().to_vec()]);
        // And as Rust sees it.
        // SAFETY: as above.
        let g: extern "C" fn(i64) -> Big4 = unsafe { as_fn(c.entry) };
        assert_eq!(g(5), want);

        // The hidden pointer on the stack, not handed back.
        let sret = RetPass::Indirect {
            pointer: Loc::Stack(0),
            returned: None,
        };
        let p = plan(t_i64s(4), sret, i64_regs(), 16);
        let ctx = Ctx::new(&p, bytes_of(&want));
        let c = closure_for(&p, &ctx);
        type F7 = extern "C" fn(i64, i64, i64, i64, i64, i64, *mut Big4);
        // SAFETY: six int64 in registers, the buffer's address on the stack.
        let f: F7 = unsafe { as_fn(c.entry) };
        let mut out = Big4(0, 0, 0, 0);
        f(1, 2, 3, 4, 5, 6, &mut out);
        assert_eq!(out, want);
        let got = ctx.take();
        assert_eq!(
            got.rvalue, &out as *const Big4 as usize,
            "sret passes through"
        );
        assert_eq!(got.args.len(), 6);

        // A copy back long enough for rep movsb, into a misaligned buffer
        // that ends where an inaccessible page begins.
        let p = plan(
            u8s(300),
            RetPass::Indirect {
                pointer: Loc::Gpr(RDI),
                returned: Some(Loc::Gpr(RAX)),
            },
            vec![],
            0,
        );
        let reply: Vec<u8> = (0..300).map(|k| (k * 7 + 1) as u8).collect();
        let ctx = Ctx::new(&p, &reply);
        let c = closure_for(&p, &ctx);
        let g = Guarded::new(&[0u8; 300]);
        assert_ne!(g.at as usize % 16, 0);
        // SAFETY: the sret ABI: the buffer in rdi, handed back in rax.
        let f: extern "C" fn(*mut u8) -> *mut u8 = unsafe { as_fn(c.entry) };
        assert_eq!(f(g.at.cast_mut().cast()), g.at.cast_mut().cast());
        // SAFETY: the guarded page holds the 300 bytes.
        let back = unsafe { std::slice::from_raw_parts(g.at.cast::<u8>(), 300) };
        assert_eq!(back, &reply[..]);
        assert_eq!(ctx.take().rvalue, g.at as usize, "sret passes through");
    }

    #[test]
    fn thunk_x87_returns() {
        let p = mk(
            ret_in(Type::long_double(), Loc::X87(0), Ext::None),
            vec![],
            0,
        );
        let mut reply = [0x77u8; 16];
        reply[..10].copy_from_slice(&PI80);
        let ctx = Ctx::new(&p, &reply);
        let c = closure_for(&p, &ctx);

        let ret = RetPass::Direct(vec![
            piece(0, 10, Loc::X87(0), Ext::None),
            piece(16, 10, Loc::X87(1), Ext::None),
        ]);
        let p2 = plan(Type::complex_long_double(), ret, vec![], 0);
        let mut reply2 = [0x77u8; 32];
        reply2[..10].copy_from_slice(&PI80);
        reply2[16..26].copy_from_slice(&NEG_E80);
        let ctx2 = Ctx::new(&p2, &reply2);
        let c2 = closure_for(&p2, &ctx2);

        // 100 calls each: anything left on the 8-deep register stack would
        // overflow it.
        for _ in 0..100 {
            let mut out = [0u8; 32];
            // SAFETY: the closure returns a long double in st0.
            unsafe { jitffi_thunk_test_call_ld(c.entry, out.as_mut_ptr()) };
            assert_eq!(out[..10], PI80);
            let mut out = [0u8; 32];
            // SAFETY: the closure returns a complex long double in st0, st1.
            unsafe { jitffi_thunk_test_call_ld2(c2.entry, out.as_mut_ptr()) };
            assert_eq!(out[..10], PI80, "real part");
            assert_eq!(out[16..26], NEG_E80, "imaginary part");
        }
        assert_eq!(x87_tag_word(), 0xFFFF, "x87 registers left in use");
        assert_eq!((ctx.take().calls, ctx2.take().calls), (100, 100));
    }

    #[test]
    fn thunk_indirect_arguments_pass_the_pointer() {
        let mut args = vec![indirect(t_i64s(4), Loc::Gpr(RDI))];
        args.extend(i64_regs().into_iter().skip(1));
        args.push(indirect(t_s3(), Loc::Stack(0)));
        let p = mk(ret_i64(), args, 16);
        let ctx = Ctx::new(&p, &3u64.to_le_bytes());
        let c = closure_for(&p, &ctx);
        let v = Big4(1, 20, 300, 4000);
        let s = S3(7, 8, 9);
        type F = extern "C" fn(*const Big4, i64, i64, i64, i64, i64, *const S3) -> i64;
        // SAFETY: two by-reference arguments around five int64.
        let f: F = unsafe { as_fn(c.entry) };
        assert_eq!(f(&v, -2, -3, -4, -5, -6, &s), 3);
        let got = ctx.take();
        assert_eq!(got.ptrs[0], &v as *const Big4 as usize);
        assert_eq!(got.ptrs[6], &s as *const S3 as usize);
        assert_eq!(got.args[0], bytes_of(&v));
        assert_eq!(got.args[6], bytes_of(&s));
        assert_eq!(got.args[5], (-6i64).to_le_bytes());
    }

    #[test]
    fn thunk_stack_is_aligned_at_the_handler_call() {
        let mut plans = Vec::new();
        for n in 0..=9usize {
            let mut args: Vec<ArgPlan> = i64_regs().into_iter().take(n).collect();
            for k in 6..n {
                args.push(one(Type::i64(), Loc::Stack(8 * (k as u32 - 6)), Ext::None));
            }
            plans.push(mk(
                ret_i64(),
                args,
                16 * (n.saturating_sub(6) as u32).div_ceil(2),
            ));
        }
        // Odd slot counts and a copied struct.
        plans.push(mk(
            ret_i64(),
            vec![
                one(t_s3(), Loc::Gpr(RDI), Ext::None),
                one(Type::f32(), Loc::Vec(0), Ext::None),
                one(u8s(7), Loc::Gpr(RSI), Ext::None),
            ],
            0,
        ));
        for p in &plans {
            let c = closure(p, jitffi_thunk_test_rsp_handler, std::ptr::null());
            // SAFETY: every argument is an integer or ignored; extra ones
            // are harmless to a SysV callee.
            let f: Fn9 = unsafe { as_fn(c.entry) };
            assert_eq!(f(1, 2, 3, 4, 5, 6, 7, 8, 9), 0, "misaligned call in\n{p}");
        }
        let sret = plan(
            t_i64s(4),
            RetPass::Indirect {
                pointer: Loc::Gpr(RDI),
                returned: Some(Loc::Gpr(RAX)),
            },
            vec![],
            0,
        );
        let c = closure(&sret, jitffi_thunk_test_rsp_handler, std::ptr::null());
        let mut out = Big4(-1, -1, -1, -1);
        // SAFETY: the sret ABI: the buffer in rdi.
        let f: extern "C" fn(*mut Big4) -> *mut Big4 = unsafe { as_fn(c.entry) };
        f(&mut out);
        assert_eq!(out.0, 0, "misaligned call in\n{sret}");
    }

    #[test]
    fn thunk_preserves_callee_saved_registers() {
        let odd_middle = direct(
            u8s(11),
            vec![
                piece(0, 3, Loc::Gpr(RDI), Ext::None),
                piece(3, 8, Loc::Gpr(RSI), Ext::None),
            ],
        );
        let sret = plan(
            t_i64s(4),
            RetPass::Indirect {
                pointer: Loc::Gpr(RDI),
                returned: Some(Loc::Gpr(RAX)),
            },
            vec![one(Type::i64(), Loc::Gpr(RSI), Ext::None)],
            0,
        );
        let cases = [
            mk(void(), i64_regs().into_iter().take(3).collect(), 0),
            mk(ret_i64(), vec![odd_middle], 0),
            sret,
        ];
        for p in &cases {
            let ctx = Ctx::new(p, &[0x11; 32][..p.ret.ty.size().min(32)]);
            let c = closure_for(p, &ctx);
            let mut out = [0u8; 64];
            let words = [out.as_mut_ptr() as usize, 0x1234_5678_9ABC_DEF0, 42];
            // SAFETY: the guard calls the closure with three words in rdi,
            // rsi, rdx, which each plan reads as integers or a buffer.
            let clobbered = unsafe {
                jitffi_emit_test_guard(
                    std::mem::transmute::<*const c_void, Stub>(c.entry),
                    words[0] as *const c_void,
                    words[1] as *mut c_void,
                    words[2] as *const c_void,
                )
            };
            assert_eq!(clobbered, 0, "clobbered mask {clobbered:#x} in\n{p}");
            assert_eq!(ctx.take().calls, 1);
        }
    }

    #[test]
    fn thunk_unencodable_plans_are_refused() {
        let refuse = |p: &CallPlan, what: &str| match compile_closure_thunk(p) {
            Err(Error::Assembly { reason }) => {
                assert!(reason.contains(what), "{reason:?} lacks {what:?}")
            }
            other => panic!("expected a refusal mentioning {what:?}, got {other:?}"),
        };
        let mut p = mk(void(), vec![one(Type::i64(), Loc::Gpr(RDI), Ext::None)], 0);
        for chain in [Loc::Gpr(RAX), Loc::Gpr(RDI), Loc::Vec(0), Loc::Stack(0)] {
            p.static_chain = Some(chain);
            refuse(&p, "static chain");
        }
        for r in [RAX, RBX, RBP, R10, R11, R12, RSP, 16] {
            refuse(
                &mk(void(), vec![one(Type::i64(), Loc::Gpr(r), Ext::None)], 0),
                "reserved",
            );
        }
        refuse(
            &mk(void(), vec![indirect(t_i64s(4), Loc::Gpr(R11))], 0),
            "reserved",
        );
        refuse(
            &mk(void(), vec![indirect(t_i64s(4), Loc::Vec(0))], 0),
            "address",
        );
        refuse(
            &mk(void(), vec![one(Type::i128(), Loc::Vec(0), Ext::None)], 0),
            "vector",
        );
        refuse(
            &mk(
                void(),
                vec![one(Type::long_double(), Loc::X87(0), Ext::None)],
                0,
            ),
            "x87",
        );
        refuse(
            &mk(
                ret_in(Type::long_double(), Loc::X87(1), Ext::None),
                vec![],
                0,
            ),
            "x87",
        );
        refuse(
            &mk(ret_in(Type::i64(), Loc::Gpr(R12), Ext::None), vec![], 0),
            "reserved",
        );
        refuse(
            &mk(ret_in(t_s3(), Loc::Gpr(RAX), Ext::Sign), vec![], 0),
            "load",
        );
        let twice = RetPass::Direct(vec![
            piece(0, 8, Loc::Gpr(RAX), Ext::None),
            piece(8, 8, Loc::Gpr(RAX), Ext::None),
        ]);
        refuse(&plan(t_i64s(2), twice, vec![], 0), "two pieces");
        let sret_back = |returned| RetPass::Indirect {
            pointer: Loc::Gpr(RDI),
            returned: Some(returned),
        };
        refuse(
            &plan(t_i64s(4), sret_back(Loc::Gpr(RBX)), vec![], 0),
            "hand",
        );
        refuse(&plan(t_i64s(4), sret_back(Loc::Vec(0)), vec![], 0), "hand");
        let sret_from = |pointer| RetPass::Indirect {
            pointer,
            returned: None,
        };
        refuse(
            &plan(t_i64s(4), sret_from(Loc::Gpr(RAX)), vec![], 0),
            "reserved",
        );
        refuse(
            &plan(t_i64s(4), sret_from(Loc::Vec(1)), vec![], 0),
            "address",
        );
        // Pieces outside their value, for plans built without `check`.
        let mut oversized = mk(void(), vec![one(Type::u8(), Loc::Gpr(RDI), Ext::None)], 0);
        oversized.args[0].pass = ArgPass::Direct(vec![piece(0, 8, Loc::Gpr(RDI), Ext::None)]);
        refuse(&oversized, "outside");
        let mut p = mk(void(), vec![one(Type::i64(), Loc::Stack(0), Ext::None)], 16);
        p.stack_bytes = 0;
        refuse(&p, "inconsistent");
        // A frame past the limit.
        let huge = Type::structure([Type::array(Type::u8(), 1 << 24).unwrap()]).unwrap();
        let split = direct(
            huge.clone(),
            vec![
                piece(0, 8, Loc::Gpr(RDI), Ext::None),
                piece(8, (1 << 24) - 8, Loc::Stack(0), Ext::None),
            ],
        );
        let mut big = mk(void(), vec![split; 70], 1 << 24);
        big.check().unwrap();
        big.packed_offsets = vec![0; 70];
        refuse(&big, "frame");
    }

    #[test]
    fn thunk_frames_beyond_a_page_are_probed() {
        // 1000 bytes arriving split between a register and the stack are
        // copied into the frame: 8 of them need more than a page.
        let t = u8s(1000);
        let split = |r: u8, off: u32| {
            direct(
                t.clone(),
                vec![
                    piece(0, 8, Loc::Gpr(r), Ext::None),
                    piece(8, 992, Loc::Stack(off), Ext::None),
                ],
            )
        };
        let args: Vec<ArgPlan> = (0..6).map(|k| split(ARG_GPRS[k], 992 * k as u32)).collect();
        let p = mk(ret_i64(), args, 6000);
        let code = compile_closure_thunk(&p).unwrap();
        assert!(code.windows(4).any(|w| w == [0x80, 0x0C, 0x24, 0x00]));
        round_trip(&p, 77);
    }

    // ---- round trips: call stub -> thunk --------------------------------

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    /// A valid (normal) x87 extended value, so loading and storing it is
    /// exact.
    fn x87_value(rng: &mut Rng) -> [u8; 10] {
        let mut v = [0u8; 10];
        v[..8].copy_from_slice(&(rng.next() | 1 << 63).to_le_bytes());
        let exp = (0x3F00 + (rng.next() % 0x200) as u16) | (rng.next() as u16 & 0x8000);
        v[8..].copy_from_slice(&exp.to_le_bytes());
        v
    }

    /// Bytes of an argument the plan carries (padding it skips is
    /// unspecified on the other side).
    fn carried(a: &ArgPlan) -> Vec<bool> {
        let mut mask = vec![false; a.ty.size()];
        match &a.pass {
            ArgPass::Indirect { .. } => mask.fill(true),
            ArgPass::Direct(pieces) => {
                for p in pieces {
                    mask[p.offset as usize..(p.offset + p.size) as usize].fill(true);
                }
            }
        }
        mask
    }

    /// What the libffi-form stub stores at `rvalue` when the handler
    /// replied `reply`.
    fn expected_return(plan: &CallPlan, reply: &[u8], len: usize) -> Vec<u8> {
        let mut want = vec![SENTINEL; len];
        match &plan.ret.pass {
            RetPass::Void => {}
            RetPass::Indirect { .. } => want[..reply.len()].copy_from_slice(reply),
            RetPass::Direct(pieces) => {
                for p in pieces {
                    let (o, n) = (p.offset as usize, p.size as usize);
                    match (p.loc, p.ext) {
                        (Loc::X87(_), _) => want[o..o + 10].copy_from_slice(&reply[o..o + 10]),
                        (Loc::Gpr(_), Ext::Sign | Ext::Zero) => {
                            let negative = p.ext == Ext::Sign && reply[o + n - 1] & 0x80 != 0;
                            want[o..o + 8].fill(if negative { 0xFF } else { 0 });
                            want[o..o + n].copy_from_slice(&reply[o..o + n]);
                        }
                        _ => want[o..o + n].copy_from_slice(&reply[o..o + n]),
                    }
                }
            }
        }
        want
    }

    /// Calls the thunk of `plan` through both call-stub forms of the same
    /// plan and checks that every carried argument byte reaches the
    /// handler and the handler's reply reaches the caller.
    fn round_trip(plan: &CallPlan, seed: u64) {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let store: Vec<Vec<u128>> = plan
            .args
            .iter()
            .map(|a| {
                let bytes = rng.bytes(a.ty.size());
                let mut v = vec![0u128; a.ty.size().div_ceil(16).max(1)];
                // SAFETY: `v` holds at least `bytes.len()` bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        v.as_mut_ptr().cast::<u8>(),
                        bytes.len(),
                    )
                };
                v
            })
            .collect();
        let values: Vec<&[u8]> = store
            .iter()
            .zip(&plan.args)
            // SAFETY: each buffer holds the argument's bytes.
            .map(|(v, a)| unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), a.ty.size()) })
            .collect();
        let ptrs: Vec<*const c_void> = store.iter().map(|v| v.as_ptr().cast()).collect();

        let mut reply = match plan.ret.pass {
            RetPass::Void => vec![],
            _ => rng.bytes(plan.ret.ty.size()),
        };
        if let RetPass::Direct(pieces) = &plan.ret.pass {
            for p in x87_in_order(pieces) {
                let o = p.offset as usize;
                reply[o..o + 10].copy_from_slice(&x87_value(&mut rng));
            }
        }
        let ctx = Ctx::new(plan, &reply);
        let c = closure_for(plan, &ctx);
        let len = (plan.ret.ty.size() + 16).max(64);
        let want = expected_return(plan, &reply, len);

        let check = |got: Got, rvalue: &[u128], form: EntryForm| {
            assert_eq!(
                (got.calls, got.cif),
                (1, CIF_MARK),
                "{form:?} call of\n{plan}"
            );
            for (i, a) in plan.args.iter().enumerate() {
                for (k, carried) in carried(a).into_iter().enumerate() {
                    assert!(
                        !carried || got.args[i][k] == values[i][k],
                        "{form:?}: argument {i} byte {k}: got {:x?}, sent {:x?} in\n{plan}",
                        got.args[i],
                        values[i]
                    );
                }
            }
            if let RetPass::Indirect { .. } = plan.ret.pass {
                assert_eq!(got.rvalue, rvalue.as_ptr() as usize, "{form:?} sret buffer");
            }
            // SAFETY: the buffer holds `len` bytes.
            let bytes = unsafe { std::slice::from_raw_parts(rvalue.as_ptr().cast::<u8>(), len) };
            assert_eq!(bytes, &want[..], "{form:?} return value of\n{plan}");
        };

        let fresh = || vec![u128::from_ne_bytes([SENTINEL; 16]); len.div_ceil(16)];
        let raw = stub(plan, EntryForm::Libffi);
        let mut r1 = fresh();
        // SAFETY: the closure has exactly the plan's signature; the
        // argument pointers and the return buffer are valid.
        unsafe { raw(c.entry, r1.as_mut_ptr().cast(), ptrs.as_ptr().cast()) };
        check(ctx.take(), &r1, EntryForm::Libffi);

        if let RetPass::Indirect { returned: None, .. } = plan.ret.pass {
            return; // the packed-form test shim expects the buffer in rax
        }
        let packed = stub(plan, EntryForm::Packed);
        let buf = pack(plan, &ptrs);
        let mut r2 = fresh();
        // SAFETY: as above, with the arguments at the packed offsets.
        unsafe {
            native_ret::call_packed_into(
                plan,
                packed as *const c_void,
                c.entry,
                r2.as_mut_ptr().cast(),
                buf.as_ptr().cast(),
            )
        };
        check(ctx.take(), &r2, EntryForm::Packed);
    }

    fn type_pool() -> Vec<Type> {
        let s = |f: Vec<Type>| Type::structure(f).unwrap();
        vec![
            Type::i8(),
            Type::u8(),
            Type::i16(),
            Type::u16(),
            Type::i32(),
            Type::u32(),
            Type::i64(),
            Type::u64(),
            Type::f32(),
            Type::f64(),
            Type::pointer(),
            Type::long_double(),
            Type::complex_f32(),
            Type::complex_f64(),
            t_s3(),
            t_s6(),
            u8s(5),
            u8s(7),
            u8s(13),
            u8s(40),
            t_i64s(2),
            t_i64s(3),
            s(vec![Type::f64(), Type::i64()]),
            s(vec![Type::i64(), Type::f64()]),
            s(vec![Type::f64(), Type::f64()]),
            s(vec![Type::f32(), Type::f32(), Type::f32()]),
            s(vec![Type::f32(), Type::i32(), Type::u8()]),
            s(vec![Type::u8(), Type::f64()]),
            s(vec![Type::long_double()]),
            Type::union([Type::f32(), Type::i32()]).unwrap(),
        ]
    }

    #[test]
    fn round_trip_hand_built_plans() {
        let mut plans = Vec::new();
        // A 3-byte piece that does not end the value.
        plans.push(mk(
            ret_i64(),
            vec![direct(
                u8s(11),
                vec![
                    piece(0, 3, Loc::Gpr(RDI), Ext::None),
                    piece(3, 8, Loc::Gpr(RSI), Ext::None),
                ],
            )],
            0,
        ));
        // 5-, 6- and 7-byte middle pieces.
        for n in [5u32, 6, 7] {
            plans.push(mk(
                ret_i64(),
                vec![direct(
                    u8s(n as usize + 8),
                    vec![
                        piece(0, n, Loc::Gpr(RDX), Ext::None),
                        piece(n, 8, Loc::Gpr(RCX), Ext::None),
                    ],
                )],
                0,
            ));
        }
        // Half in a register, half on the stack; stack pieces out of order;
        // a value split over two contiguous stack pieces (read in place).
        plans.push(mk(
            ret_i64(),
            vec![
                direct(
                    u8s(13),
                    vec![
                        piece(0, 8, Loc::Stack(0), Ext::None),
                        piece(8, 5, Loc::Gpr(RDI), Ext::None),
                    ],
                ),
                direct(
                    u8s(24),
                    vec![
                        piece(16, 8, Loc::Stack(16), Ext::None),
                        piece(0, 16, Loc::Stack(24), Ext::None),
                    ],
                ),
                direct(
                    u8s(20),
                    vec![
                        piece(0, 8, Loc::Stack(48), Ext::None),
                        piece(8, 12, Loc::Stack(56), Ext::None),
                    ],
                ),
                one(Type::f32(), Loc::Vec(7), Ext::None),
            ],
            80,
        ));
        // Indirect arguments in a register and on the stack, an sret
        // pointer on the stack, handed back or not.
        let mut args = vec![indirect(u8s(13), Loc::Gpr(R9))];
        args.push(indirect(t_i64s(5), Loc::Stack(8)));
        args.push(one(Type::i16(), Loc::Stack(16), Ext::Sign));
        for returned in [None, Some(Loc::Gpr(RAX))] {
            plans.push(plan(
                t_i64s(4),
                RetPass::Indirect {
                    pointer: Loc::Stack(0),
                    returned,
                },
                args.clone(),
                32,
            ));
        }
        // Returns: odd pieces in three registers, the last one ending 3
        // bytes short of a 16-byte boundary; duplicated bytes in a vector
        // and an integer register.
        plans.push(plan(
            u8s(15),
            RetPass::Direct(vec![
                piece(0, 8, Loc::Gpr(RAX), Ext::None),
                piece(8, 4, Loc::Gpr(RDX), Ext::None),
                piece(12, 3, Loc::Gpr(RCX), Ext::None),
            ]),
            vec![],
            0,
        ));
        plans.push(plan(
            Type::f64(),
            RetPass::Direct(vec![
                piece(0, 8, Loc::Vec(1), Ext::None),
                piece(0, 4, Loc::Gpr(RSI), Ext::Zero),
            ]),
            vec![direct(
                Type::f64(),
                vec![
                    piece(0, 8, Loc::Vec(0), Ext::None),
                    piece(0, 8, Loc::Gpr(RDI), Ext::None),
                ],
            )],
            0,
        ));
        let mut p = mk(ret_in(Type::u16(), Loc::Gpr(R8), Ext::Zero), vec![], 0);
        p.vector_count = Some(3);
        plans.push(p);
        // Pieces listed out of order: a store wider than its piece would
        // clobber bytes already in the slot.
        plans.push(mk(
            void(),
            vec![
                direct(
                    u8s(11),
                    vec![
                        piece(3, 8, Loc::Gpr(RSI), Ext::None),
                        piece(0, 3, Loc::Gpr(RDI), Ext::None),
                    ],
                ),
                direct(
                    u8s(14),
                    vec![
                        piece(6, 8, Loc::Gpr(RCX), Ext::None),
                        piece(0, 6, Loc::Gpr(RDX), Ext::None),
                    ],
                ),
                direct(
                    t_i64s(2),
                    vec![
                        piece(8, 8, Loc::Gpr(R8), Ext::None),
                        piece(4, 4, Loc::Vec(1), Ext::None),
                        piece(0, 4, Loc::Vec(0), Ext::None),
                    ],
                ),
            ],
            0,
        ));
        for (k, p) in plans.iter().enumerate() {
            for seed in 0..4 {
                round_trip(p, 1000 * k as u64 + seed);
            }
        }
    }

    #[test]
    fn round_trip_classified_signatures() {
        let pool = type_pool();
        let mut rets = pool.clone();
        rets.extend([
            Type::void(),
            Type::complex_long_double(),
            t_i64s(4),
            u8s(3),
            u8s(6),
        ]);
        let mut rng = Rng(0x5EED);
        let mut done = 0;
        for k in 0..400u64 {
            let n = rng.below(15);
            let args: Vec<Type> = (0..n)
                .map(|_| pool[rng.below(pool.len())].clone())
                .collect();
            let ret = rets[rng.below(rets.len())].clone();
            let fixed = (n > 0 && rng.below(5) == 0).then(|| rng.below(n) + 1);
            let Ok(p) = crate::classify::classify(Abi::SysV64, &ret, &args, fixed) else {
                continue;
            };
            round_trip(&p, k);
            done += 1;
        }
        assert!(done > 350, "only {done} signatures classified");
        // Every type of the pool alone, as argument and as return value.
        for (k, t) in rets.iter().enumerate() {
            let args = if t.is_void() { vec![] } else { vec![t.clone()] };
            let p = crate::classify::classify(Abi::SysV64, t, &args, None).unwrap();
            round_trip(&p, 9000 + k as u64);
            if !t.is_void() {
                let many = vec![t.clone(); 9];
                let p = crate::classify::classify(Abi::SysV64, t, &many, None).unwrap();
                round_trip(&p, 9500 + k as u64);
            }
        }
    }

    /// Prints closure thunk sizes (`--ignored --nocapture`).
    #[test]
    #[ignore]
    fn report_thunk_sizes() {
        let dd = Type::structure([Type::f64(), Type::f64()]).unwrap();
        let cases: [(&str, Type, Vec<Type>); 8] = [
            ("S1 void(void)", Type::void(), vec![]),
            ("S2 int(int,int)", Type::i32(), vec![Type::i32(); 2]),
            ("S3 double(4 x double)", Type::f64(), vec![Type::f64(); 4]),
            ("S4 int64(8 x int64)", Type::i64(), vec![Type::i64(); 8]),
            (
                "S5 double(int,double,int64,float,void*,int8,uint16,double)",
                Type::f64(),
                vec![
                    Type::i32(),
                    Type::f64(),
                    Type::i64(),
                    Type::f32(),
                    Type::pointer(),
                    Type::i8(),
                    Type::u16(),
                    Type::f64(),
                ],
            ),
            ("S6 {dd}({dd},{dd})", dd.clone(), vec![dd.clone(), dd]),
            ("S7 {i64x4}({i64x4})", t_i64s(4), vec![t_i64s(4)]),
            ("S8 int(16 x int)", Type::i32(), vec![Type::i32(); 16]),
        ];
        for (name, ret, args) in cases {
            let p = crate::classify::classify(Abi::SysV64, &ret, &args, None).unwrap();
            let n = compile_closure_thunk(&p).unwrap().len();
            eprintln!("{name}: thunk {n} bytes");
        }
    }

    // ---- Microsoft x64 plans ---------------------------------------------
    //
    // Built by hand (the Win64 classifier is tested on its own): integer
    // slots rcx, rdx, r8, r9 and float slots xmm0-3 by position, 32 bytes of
    // shadow space, aggregates not of size 1/2/4/8 by reference, the sret
    // pointer in rcx handed back in rax. Targets and callers are Rust
    // `extern "win64"` functions and hand-written asm.

    const W64_GPRS: [u8; 4] = [RCX, RDX, R8, R9];

    /// Win64's callee-saved registers.
    fn win64_saved() -> Vec<Loc> {
        let mut v: Vec<Loc> = [RBX, RBP, RDI, RSI, R12, R13, R14, R15]
            .iter()
            .map(|&r| Loc::Gpr(r))
            .collect();
        v.extend((6..16).map(Loc::Vec));
        v
    }

    /// `p` as a Microsoft x64 plan: shadow space, no `al`, Win64's
    /// callee-saved registers.
    fn win64(mut p: CallPlan) -> CallPlan {
        p.abi = Abi::Win64;
        p.shadow_space = 32;
        p.vector_count = None;
        p.callee_saved = win64_saved();
        p.check().expect("hand-written Win64 plan is consistent");
        p
    }

    /// Where argument position `k` travels: its register slot, or the
    /// stack after the shadow space.
    fn w64_slot(k: usize, float: bool) -> Loc {
        match (k, float) {
            (0..=3, true) => Loc::Vec(k as u8),
            (0..=3, false) => Loc::Gpr(W64_GPRS[k]),
            _ => Loc::Stack(32 + 8 * (k as u32 - 4)),
        }
    }

    /// The outgoing area for `slots` argument positions.
    fn w64_stack(slots: usize) -> u32 {
        (32 + 8 * slots.saturating_sub(4) as u32).div_ceil(16) * 16
    }

    /// A test-only Microsoft x64 classification (long double taken as a
    /// 16-byte value passed by reference, as MinGW does).
    fn w64_classify(ret: &Type, args: &[Type], fixed: Option<usize>) -> CallPlan {
        let float = |t: &Type| matches!(t.kind(), TypeKind::F32 | TypeKind::F64);
        let in_slot = |t: &Type| matches!(t.size(), 1 | 2 | 4 | 8);
        let ext = |t: &Type| match (t.is_integer_like() && t.size() < 8, t.is_signed()) {
            (false, _) => Ext::None,
            (true, true) => Ext::Sign,
            (true, false) => Ext::Zero,
        };
        let mut k = 0;
        let ret_pass = if ret.is_void() {
            RetPass::Void
        } else if float(ret) {
            RetPass::Direct(vec![whole(ret, Loc::Vec(0), Ext::None)])
        } else if in_slot(ret) {
            RetPass::Direct(vec![whole(ret, Loc::Gpr(RAX), ext(ret))])
        } else {
            k = 1;
            RetPass::Indirect {
                pointer: Loc::Gpr(RCX),
                returned: Some(Loc::Gpr(RAX)),
            }
        };
        let mut plans = Vec::with_capacity(args.len());
        for (i, t) in args.iter().enumerate() {
            let variadic = fixed.is_some_and(|n| i >= n);
            let pass = if float(t) {
                let mut pieces = vec![whole(t, w64_slot(k, true), Ext::None)];
                if variadic && k < 4 {
                    pieces.push(whole(t, w64_slot(k, false), Ext::None));
                }
                ArgPass::Direct(pieces)
            } else if in_slot(t) {
                ArgPass::Direct(vec![whole(t, w64_slot(k, false), ext(t))])
            } else {
                ArgPass::Indirect {
                    pointer: w64_slot(k, false),
                }
            };
            plans.push(ArgPlan {
                ty: t.clone(),
                pass,
                variadic,
            });
            k += 1;
        }
        let mut p = plan(ret.clone(), ret_pass, plans, w64_stack(k));
        p.fixed_args = fixed;
        win64(p)
    }

    /// `jmp [rsp-8]`, the last instruction of a tail stub.
    const TAIL_JMP: [u8; 4] = [0xFF, 0x64, 0x24, 0xF8];

    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct P1(u8);
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct P2(u8, u8);
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct P4(u16, u16);
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct P8(i32, i32);

    fn t_p1() -> Type {
        Type::structure([Type::u8()]).unwrap()
    }
    fn t_p2() -> Type {
        Type::structure([Type::u8(), Type::u8()]).unwrap()
    }
    fn t_p4() -> Type {
        Type::structure([Type::u16(), Type::u16()]).unwrap()
    }
    fn t_p8() -> Type {
        Type::structure([Type::i32(), Type::i32()]).unwrap()
    }

    extern "win64" fn w64_nothing() {
        record(&[2]);
    }

    extern "win64" fn w64_mixed(a: i32, b: f64, c: i64, d: f32) -> f64 {
        record(&[
            a as i64 as u64,
            b.to_bits(),
            c as u64,
            u64::from(d.to_bits()),
        ]);
        f64::from(a) + b * 2.0 + c as f64 * 3.0 + f64::from(d) * 4.0
    }

    #[allow(clippy::too_many_arguments)]
    extern "win64" fn w64_eight(
        a: i64,
        b: f64,
        c: i32,
        d: u8,
        e: i64,
        f: f32,
        g: i16,
        h: f64,
    ) -> i64 {
        record(&[
            a as u64,
            b.to_bits(),
            c as i64 as u64,
            u64::from(d),
            e as u64,
            u64::from(f.to_bits()),
            g as i64 as u64,
            h.to_bits(),
        ]);
        a ^ i64::from(c) ^ i64::from(d) ^ e ^ i64::from(g)
    }

    /// The shape of `w64_eight`: four register slots, four stack slots.
    fn w64_eight_plan() -> CallPlan {
        let args = vec![
            one(Type::i64(), Loc::Gpr(RCX), Ext::None),
            one(Type::f64(), Loc::Vec(1), Ext::None),
            one(Type::i32(), Loc::Gpr(R8), Ext::Sign),
            one(Type::u8(), Loc::Gpr(R9), Ext::Zero),
            one(Type::i64(), Loc::Stack(32), Ext::None),
            one(Type::f32(), Loc::Stack(40), Ext::None),
            one(Type::i16(), Loc::Stack(48), Ext::Sign),
            one(Type::f64(), Loc::Stack(56), Ext::None),
        ];
        win64(mk(ret_i64(), args, 64))
    }

    /// The shape of `w64_by_ref`: three aggregates by reference, one of
    /// them through the stack.
    fn w64_by_ref_plan() -> CallPlan {
        let args = vec![
            one(Type::i64(), Loc::Gpr(RCX), Ext::None),
            indirect(t_i64s(3), Loc::Gpr(RDX)),
            one(Type::f64(), Loc::Vec(2), Ext::None),
            indirect(t_s3(), Loc::Gpr(R9)),
            indirect(t_i64s(4), Loc::Stack(32)),
        ];
        win64(mk(ret_i64(), args, 48))
    }

    extern "win64" fn w64_by_ref(a: i64, p: *mut Big3, c: f64, q: *mut S3, r: *mut Big4) -> i64 {
        // SAFETY: the stub passes the addresses of copies of a Big3, an S3
        // and a Big4.
        let (b, s, d) = unsafe { (p.read(), q.read(), r.read()) };
        record(&[
            a as u64,
            p as u64 % 16,
            b.0 as u64,
            b.1 as u64,
            b.2 as u64,
            c.to_bits(),
            q as u64 % 16,
            le(bytes_of(&s)),
            r as u64 % 16,
            d.0 as u64,
            d.3 as u64,
        ]);
        // The copies are the callee's to scribble on.
        // SAFETY: as above.
        unsafe {
            p.write(Big3(-1, -1, -1));
            q.write(S3(0, 0, 0));
            r.write(Big4(-1, -1, -1, -1));
        }
        a + b.0 + b.1 + b.2 + d.3
    }

    /// `w64_by_ref` with Rust doing the by-reference passing.
    extern "win64" fn w64_by_value(a: i64, b: Big3, c: f64, s: S3, d: Big4) -> i64 {
        record(&[
            a as u64,
            0,
            b.0 as u64,
            b.1 as u64,
            b.2 as u64,
            c.to_bits(),
            0,
            le(bytes_of(&s)),
            0,
            d.0 as u64,
            d.3 as u64,
        ]);
        a + b.0 + b.1 + b.2 + d.3
    }

    extern "win64" fn w64_small(a: P1, b: P2, c: P4, d: P8, e: P8) -> P8 {
        record(&[
            le(bytes_of(&a)),
            le(bytes_of(&b)),
            le(bytes_of(&c)),
            le(bytes_of(&d)),
            le(bytes_of(&e)),
        ]);
        P8(d.0 + e.0 + i32::from(a.0), d.1 - e.1 + i32::from(c.1))
    }

    fn w64_small_plan() -> CallPlan {
        let args = vec![
            one(t_p1(), Loc::Gpr(RCX), Ext::None),
            one(t_p2(), Loc::Gpr(RDX), Ext::None),
            one(t_p4(), Loc::Gpr(R8), Ext::None),
            one(t_p8(), Loc::Gpr(R9), Ext::None),
            one(t_p8(), Loc::Stack(32), Ext::None),
        ];
        win64(mk(ret_in(t_p8(), Loc::Gpr(RAX), Ext::None), args, 48))
    }

    extern "win64" fn w64_sret(x: i64, y: f64) -> Big3 {
        record(&[x as u64, y.to_bits()]);
        Big3(x, y as i64, x * 3)
    }

    extern "win64" fn w64_sret_stack(x: i64, y: f64, z: i32, w: i64) -> Big4 {
        record(&[x as u64, y.to_bits(), z as i64 as u64, w as u64]);
        Big4(x, y as i64, i64::from(z), w)
    }

    fn w64_sret_ret() -> RetPass {
        RetPass::Indirect {
            pointer: Loc::Gpr(RCX),
            returned: Some(Loc::Gpr(RAX)),
        }
    }

    // Microsoft-convention code Rust cannot write: a target that uses its
    // shadow space, one that reads a variadic double from both registers,
    // one that clobbers SysV's callee-saved registers, a Win64 caller that
    // checks every register Win64 preserves, and a SysV handler that
    // clobbers every register SysV lets it.
    core::arch::global_asm!(
        ".pushsection .text.jitffi_w64_tests,\"ax\",@progbits",
        ".p2align 4",
        // scribble(a rcx, p rdx: Big3 *, c r8, d r9, e [rsp+40]), Win64:
        // fills its home area first (it is the callee's), then returns
        // a + p->0 + p->1 + p->2 + c + d + e
        ".globl jitffi_w64_scribble",
        ".hidden jitffi_w64_scribble",
        "jitffi_w64_scribble:",
        "    mov qword ptr [rsp + 8], -1",
        "    mov qword ptr [rsp + 16], -1",
        "    mov qword ptr [rsp + 24], -1",
        "    mov qword ptr [rsp + 32], -1",
        "    mov rax, rcx",
        "    add rax, [rdx]",
        "    add rax, [rdx + 8]",
        "    add rax, [rdx + 16]",
        "    add rax, r8",
        "    add rax, r9",
        "    add rax, [rsp + 40]",
        "    ret",
        // dup(a rcx, b xmm1 and rdx, c xmm2 and r8, out r9), Win64: stores
        // rcx, rdx, xmm1, r8, xmm2 at out, returns 7
        ".globl jitffi_w64_dup",
        ".hidden jitffi_w64_dup",
        "jitffi_w64_dup:",
        "    mov [r9], rcx",
        "    mov [r9 + 8], rdx",
        "    movq qword ptr [r9 + 16], xmm1",
        "    mov [r9 + 24], r8",
        "    movq qword ptr [r9 + 32], xmm2",
        "    mov eax, 7",
        "    ret",
        // clobber_saved(x rdi, mask rsi) -> x + 1, wrecking rbx, rbp,
        // r12-r15 where mask bits 0-5 say so
        ".globl jitffi_emit_test_clobber_saved",
        ".hidden jitffi_emit_test_clobber_saved",
        "jitffi_emit_test_clobber_saved:",
        "    lea rax, [rdi + 1]",
        "    movabs rdx, 0xBAD0BAD0BAD0BAD0",
        "    test esi, 1",
        "    jz .Ljitffi_cs_1",
        "    mov rbx, rdx",
        ".Ljitffi_cs_1:",
        "    test esi, 2",
        "    jz .Ljitffi_cs_2",
        "    mov rbp, rdx",
        ".Ljitffi_cs_2:",
        "    test esi, 4",
        "    jz .Ljitffi_cs_3",
        "    mov r12, rdx",
        ".Ljitffi_cs_3:",
        "    test esi, 8",
        "    jz .Ljitffi_cs_4",
        "    mov r13, rdx",
        ".Ljitffi_cs_4:",
        "    test esi, 16",
        "    jz .Ljitffi_cs_5",
        "    mov r14, rdx",
        ".Ljitffi_cs_5:",
        "    test esi, 32",
        "    jz .Ljitffi_cs_6",
        "    mov r15, rdx",
        ".Ljitffi_cs_6:",
        "    ret",
        // w64_guard(f rdi, regs rsi, stack rdx, nstack rcx (<= 8), out r8)
        // -> mask of the Win64 callee-saved registers f clobbered: rbx 1,
        // rbp 2, r12-r15 4..32, rsi 64, rdi 128, xmm6-15 0x100..0x20000,
        // rsp 0x40000. Calls f the Win64 way: regs[i] in both the i-th
        // integer and xmm register (as for variadic calls), stack[j] at
        // [rsp + 32 + 8j] above the shadow space; out[0] = rax, out[1] =
        // xmm0's low 8 bytes.
        ".globl jitffi_w64_guard",
        ".hidden jitffi_w64_guard",
        "jitffi_w64_guard:",
        "    push rbp",
        "    push rbx",
        "    push r12",
        "    push r13",
        "    push r14",
        "    push r15",
        "    sub rsp, 120",
        "    mov [rsp + 96], rdi",
        "    mov [rsp + 104], r8",
        "    mov [rsp + 112], rsp",
        "    xor eax, eax",
        ".Ljitffi_w64g_copy:",
        "    cmp rax, rcx",
        "    jae .Ljitffi_w64g_copied",
        "    mov r10, [rdx + 8*rax]",
        "    mov [rsp + 32 + 8*rax], r10",
        "    inc rax",
        "    jmp .Ljitffi_w64g_copy",
        ".Ljitffi_w64g_copied:",
        "    mov r10, rsi",
        "    mov rcx, [r10]",
        "    mov rdx, [r10 + 8]",
        "    mov r8, [r10 + 16]",
        "    mov r9, [r10 + 24]",
        "    movq xmm0, rcx",
        "    movq xmm1, rdx",
        "    movq xmm2, r8",
        "    movq xmm3, r9",
        "    lea rax, [rip + jitffi_w64_xmm_pattern]",
        "    movdqa xmm6, [rax]",
        "    movdqa xmm7, [rax + 16]",
        "    movdqa xmm8, [rax + 32]",
        "    movdqa xmm9, [rax + 48]",
        "    movdqa xmm10, [rax + 64]",
        "    movdqa xmm11, [rax + 80]",
        "    movdqa xmm12, [rax + 96]",
        "    movdqa xmm13, [rax + 112]",
        "    movdqa xmm14, [rax + 128]",
        "    movdqa xmm15, [rax + 144]",
        "    movabs rbx, 0x1111111111111111",
        "    movabs rbp, 0x2222222222222222",
        "    movabs r12, 0x3333333333333333",
        "    movabs r13, 0x4444444444444444",
        "    movabs r14, 0x5555555555555555",
        "    movabs r15, 0x6666666666666666",
        "    movabs rsi, 0x7777777777777777",
        "    movabs rdi, 0x8888888888888888",
        "    call qword ptr [rsp + 96]",
        "    mov r10, [rsp + 104]",
        "    mov [r10], rax",
        "    movq qword ptr [r10 + 8], xmm0",
        "    xor eax, eax",
        "    movabs r11, 0x1111111111111111",
        "    cmp rbx, r11",
        "    je .Ljitffi_w64g_1",
        "    or eax, 1",
        ".Ljitffi_w64g_1:",
        "    movabs r11, 0x2222222222222222",
        "    cmp rbp, r11",
        "    je .Ljitffi_w64g_2",
        "    or eax, 2",
        ".Ljitffi_w64g_2:",
        "    movabs r11, 0x3333333333333333",
        "    cmp r12, r11",
        "    je .Ljitffi_w64g_3",
        "    or eax, 4",
        ".Ljitffi_w64g_3:",
        "    movabs r11, 0x4444444444444444",
        "    cmp r13, r11",
        "    je .Ljitffi_w64g_4",
        "    or eax, 8",
        ".Ljitffi_w64g_4:",
        "    movabs r11, 0x5555555555555555",
        "    cmp r14, r11",
        "    je .Ljitffi_w64g_5",
        "    or eax, 16",
        ".Ljitffi_w64g_5:",
        "    movabs r11, 0x6666666666666666",
        "    cmp r15, r11",
        "    je .Ljitffi_w64g_6",
        "    or eax, 32",
        ".Ljitffi_w64g_6:",
        "    movabs r11, 0x7777777777777777",
        "    cmp rsi, r11",
        "    je .Ljitffi_w64g_7",
        "    or eax, 64",
        ".Ljitffi_w64g_7:",
        "    movabs r11, 0x8888888888888888",
        "    cmp rdi, r11",
        "    je .Ljitffi_w64g_8",
        "    or eax, 128",
        ".Ljitffi_w64g_8:",
        "    lea r11, [rip + jitffi_w64_xmm_pattern]",
        "    pcmpeqb xmm6, [r11]",
        "    pcmpeqb xmm7, [r11 + 16]",
        "    pcmpeqb xmm8, [r11 + 32]",
        "    pcmpeqb xmm9, [r11 + 48]",
        "    pcmpeqb xmm10, [r11 + 64]",
        "    pcmpeqb xmm11, [r11 + 80]",
        "    pcmpeqb xmm12, [r11 + 96]",
        "    pcmpeqb xmm13, [r11 + 112]",
        "    pcmpeqb xmm14, [r11 + 128]",
        "    pcmpeqb xmm15, [r11 + 144]",
        "    pmovmskb edx, xmm6",
        "    cmp edx, 0xFFFF",
        "    je .Ljitffi_w64g_x6",
        "    or eax, 0x100",
        ".Ljitffi_w64g_x6:",
        "    pmovmskb edx, xmm7",
        "    cmp edx, 0xFFFF",
        "    je .Ljitffi_w64g_x7",
        "    or eax, 0x200",
        ".Ljitffi_w64g_x7:",
        "    pmovmskb edx, xmm8",
        "    cmp edx, 0xFFFF",
        "    je .Ljitffi_w64g_x8",
        "    or eax, 0x400",
        ".Ljitffi_w64g_x8:",
        "    pmovmskb edx, xmm9",
        "    cmp edx, 0xFFFF",
        "    je .Ljitffi_w64g_x9",
        "    or eax, 0x800",
        ".Ljitffi_w64g_x9:",
        "    pmovmskb edx, xmm10",
        "    cmp edx, 0xFFFF",
        "    je .Ljitffi_w64g_x10",
        "    or eax, 0x1000",
        ".Ljitffi_w64g_x10:",
        "    pmovmskb edx, xmm11",
        "    cmp edx, 0xFFFF",
        "    je .Ljitffi_w64g_x11",
        "    or eax, 0x2000",
        ".Ljitffi_w64g_x11:",
        "    pmovmskb edx, xmm12",
        "    cmp edx, 0xFFFF",
        "    je .Ljitffi_w64g_x12",
        "    or eax, 0x4000",
        ".Ljitffi_w64g_x12:",
        "    pmovmskb edx, xmm13",
        "    cmp edx, 0xFFFF",
        "    je .Ljitffi_w64g_x13",
        "    or eax, 0x8000",
        ".Ljitffi_w64g_x13:",
        "    pmovmskb edx, xmm14",
        "    cmp edx, 0xFFFF",
        "    je .Ljitffi_w64g_x14",
        "    or eax, 0x10000",
        ".Ljitffi_w64g_x14:",
        "    pmovmskb edx, xmm15",
        "    cmp edx, 0xFFFF",
        "    je .Ljitffi_w64g_x15",
        "    or eax, 0x20000",
        ".Ljitffi_w64g_x15:",
        "    cmp rsp, [rsp + 112]",
        "    je .Ljitffi_w64g_sp",
        "    or eax, 0x40000",
        ".Ljitffi_w64g_sp:",
        "    add rsp, 120",
        "    pop r15",
        "    pop r14",
        "    pop r13",
        "    pop r12",
        "    pop rbx",
        "    pop rbp",
        "    ret",
        // clobber_handler(cif, rvalue, args, ud), SysV: *(u64 *)rvalue =
        // 0x0123456789ABCDEF, ++*(u64 *)ud, then wrecks every register a
        // SysV function may (all 16 bytes of every xmm)
        ".globl jitffi_w64_clobber_handler",
        ".hidden jitffi_w64_clobber_handler",
        "jitffi_w64_clobber_handler:",
        "    movabs rax, 0x0123456789ABCDEF",
        "    mov [rsi], rax",
        "    inc qword ptr [rcx]",
        "    movabs rsi, 0xDEADDEADDEADDEAD",
        "    mov rdi, rsi",
        "    mov rcx, rsi",
        "    mov rdx, rsi",
        "    mov r8, rsi",
        "    mov r9, rsi",
        "    mov r10, rsi",
        "    mov r11, rsi",
        "    pcmpeqd xmm0, xmm0",
        "    pcmpeqd xmm1, xmm1",
        "    pcmpeqd xmm2, xmm2",
        "    pcmpeqd xmm3, xmm3",
        "    pcmpeqd xmm4, xmm4",
        "    pcmpeqd xmm5, xmm5",
        "    pcmpeqd xmm6, xmm6",
        "    pcmpeqd xmm7, xmm7",
        "    pcmpeqd xmm8, xmm8",
        "    pcmpeqd xmm9, xmm9",
        "    pcmpeqd xmm10, xmm10",
        "    pcmpeqd xmm11, xmm11",
        "    pcmpeqd xmm12, xmm12",
        "    pcmpeqd xmm13, xmm13",
        "    pcmpeqd xmm14, xmm14",
        "    pcmpeqd xmm15, xmm15",
        "    ret",
        ".p2align 4",
        "jitffi_w64_xmm_pattern:",
        "    .quad 0x0606060606060601, 0x6060606060606061",
        "    .quad 0x0707070707070702, 0x7070707070707072",
        "    .quad 0x0808080808080803, 0x8080808080808083",
        "    .quad 0x0909090909090904, 0x9090909090909094",
        "    .quad 0x0A0A0A0A0A0A0A05, 0xA0A0A0A0A0A0A0A5",
        "    .quad 0x0B0B0B0B0B0B0B06, 0xB0B0B0B0B0B0B0B6",
        "    .quad 0x0C0C0C0C0C0C0C07, 0xC0C0C0C0C0C0C0C7",
        "    .quad 0x0D0D0D0D0D0D0D08, 0xD0D0D0D0D0D0D0D8",
        "    .quad 0x0E0E0E0E0E0E0E09, 0xE0E0E0E0E0E0E0E9",
        "    .quad 0x0F0F0F0F0F0F0F0A, 0xF0F0F0F0F0F0F0FA",
        ".popsection",
    );

    extern "C" {
        fn jitffi_w64_scribble();
        fn jitffi_w64_dup();
        fn jitffi_emit_test_clobber_saved();
        fn jitffi_w64_guard(
            f: *const c_void,
            regs: *const u64,
            stack: *const u64,
            nstack: u64,
            out: *mut u64,
        ) -> u64;
        fn jitffi_w64_clobber_handler(
            cif: *const c_void,
            rvalue: *mut c_void,
            args: *const *mut c_void,
            user_data: *mut c_void,
        );
    }

    /// Calls `f` from Microsoft-convention code (see `jitffi_w64_guard`);
    /// returns the clobbered-register mask, `rax` and `xmm0`.
    ///
    /// # Safety
    /// `f` must be a Win64 function reading at most four register slots
    /// and `stack.len()` stack slots as `regs` and `stack` provide them.
    unsafe fn w64_guard(f: *const c_void, regs: [u64; 4], stack: &[u64]) -> (u64, [u64; 2]) {
        assert!(stack.len() <= 8);
        let mut out = [0u64; 2];
        // SAFETY: per this function's contract; the guard copies at most 8
        // stack words and writes two words at `out`.
        let mask = unsafe {
            jitffi_w64_guard(
                f,
                regs.as_ptr(),
                stack.as_ptr(),
                stack.len() as u64,
                out.as_mut_ptr(),
            )
        };
        (mask, out)
    }

    // ---- Win64 call stubs ----------------------------------------------

    #[test]
    fn win64_stub_mixed_register_slots() {
        let args = vec![
            one(Type::i32(), Loc::Gpr(RCX), Ext::Sign),
            one(Type::f64(), Loc::Vec(1), Ext::None),
            one(Type::i64(), Loc::Gpr(R8), Ext::None),
            one(Type::f32(), Loc::Vec(3), Ext::None),
        ];
        let p = win64(mk(ret_in(Type::f64(), Loc::Vec(0), Ext::None), args, 32));
        let (a, b, c, d) = (-7i32, 0.375f64, 1i64 << 50, -2.5f32);
        // SAFETY: w64_mixed is double(int32_t, double, int64_t, float), Win64.
        let out = unsafe {
            run(
                &p,
                w64_mixed as *const c_void,
                &[ptr(&a), ptr(&b), ptr(&c), ptr(&d)],
            )
        };
        assert_eq!(
            out.seen,
            [
                a as i64 as u64,
                b.to_bits(),
                c as u64,
                u64::from(d.to_bits())
            ]
        );
        let want = f64::from(a) + b * 2.0 + c as f64 * 3.0 + f64::from(d) * 4.0;
        assert_eq!(u64_at(&out.ret, 0), want.to_bits());
        assert_eq!(out.ret[8..], [SENTINEL; 56]);
        // The shadow space needs a frame: never a tail stub.
        for form in [EntryForm::Libffi, EntryForm::Packed] {
            let code = compile_call(&p, form).unwrap();
            assert!(!code.ends_with(&TAIL_JMP), "{form:?}");
            assert!(code.windows(4).any(|w| w == [0x48, 0x83, 0xEC, 0x20])); // sub rsp, 32
        }
    }

    #[test]
    fn win64_stub_void_void_keeps_its_frame() {
        let p = win64(mk(void(), vec![], 32));
        for form in [EntryForm::Libffi, EntryForm::Packed] {
            let code = compile_call(&p, form).unwrap();
            assert!(!code.windows(4).any(|w| w == TAIL_JMP), "{form:?}");
            assert_eq!(code.last(), Some(&0xC3));
        }
        // SAFETY: w64_nothing is void(void), Win64.
        let out = unsafe { run(&p, w64_nothing as *const c_void, &[]) };
        assert_eq!(out.seen, [2]);
        assert_eq!(out.ret, [SENTINEL; 64]);
    }

    #[test]
    fn win64_stub_stack_arguments_after_the_shadow_space() {
        let p = w64_eight_plan();
        let (a, b, c, d) = (-1i64, 2.5f64, -3i32, 0xF4u8);
        let (e, f, g, h) = (i64::MIN + 5, 6.25f32, -7i16, -8.5f64);
        let ptrs = [
            ptr(&a),
            ptr(&b),
            ptr(&c),
            ptr(&d),
            ptr(&e),
            ptr(&f),
            ptr(&g),
            ptr(&h),
        ];
        // SAFETY: w64_eight's signature is the plan's, Win64.
        let out = unsafe { run(&p, w64_eight as *const c_void, &ptrs) };
        assert_eq!(
            out.seen,
            [
                a as u64,
                b.to_bits(),
                c as i64 as u64,
                u64::from(d),
                e as u64,
                u64::from(f.to_bits()),
                g as i64 as u64,
                h.to_bits()
            ]
        );
        let want = a ^ i64::from(c) ^ i64::from(d) ^ e ^ i64::from(g);
        assert_eq!(u64_at(&out.ret, 0), want as u64);

        // A callee that uses its home area before reading an argument
        // copied by the stub: the copy must live above the shadow space.
        let args = vec![
            one(Type::i64(), Loc::Gpr(RCX), Ext::None),
            indirect(t_i64s(3), Loc::Gpr(RDX)),
            one(Type::i64(), Loc::Gpr(R8), Ext::None),
            one(Type::i64(), Loc::Gpr(R9), Ext::None),
            one(Type::i64(), Loc::Stack(32), Ext::None),
        ];
        let p = win64(mk(ret_i64(), args, 48));
        let big = Big3(100, 2000, 30000);
        let v: [i64; 4] = [1, 20, 300, 4000];
        let ptrs = [ptr(&v[0]), ptr(&big), ptr(&v[1]), ptr(&v[2]), ptr(&v[3])];
        // SAFETY: scribble reads rcx, a Big3 through rdx, r8, r9 and one
        // stack slot, Win64.
        let out = unsafe { run(&p, fnptr(jitffi_w64_scribble), &ptrs) };
        assert_eq!(u64_at(&out.ret, 0), 36421);
    }

    #[test]
    fn win64_stub_aggregates_by_reference() {
        let p = w64_by_ref_plan();
        let a = 5i64;
        let b = Big3(10, -20, 1 << 40);
        let c = 0.5f64;
        let s = S3(0xC1, 0xC2, 0xC3);
        let d = Big4(7, 8, 9, -10);
        // The copies must read exactly the value, nothing past it.
        let (gb, gs, gd) = (
            Guarded::new(bytes_of(&b)),
            Guarded::new(bytes_of(&s)),
            Guarded::new(bytes_of(&d)),
        );
        let ptrs = [ptr(&a), gb.at, ptr(&c), gs.at, gd.at];
        let want_seen = [
            5,
            0,
            10,
            -20i64 as u64,
            1 << 40,
            c.to_bits(),
            0,
            0xC3_C2C1,
            0,
            7,
            -10i64 as u64,
        ];
        // SAFETY: w64_by_ref takes (int64_t, Big3 *, double, S3 *, Big4 *),
        // which is how Win64 passes (int64_t, Big3, double, S3, Big4).
        let out = unsafe { run(&p, w64_by_ref as *const c_void, &ptrs) };
        assert_eq!(out.seen, want_seen, "16-aligned copies of each value");
        assert_eq!(
            u64_at(&out.ret, 0),
            (5i64 + 10 - 20 + (1 << 40) - 10) as u64
        );
        // SAFETY: the guarded pages are still mapped and readable.
        let after = unsafe {
            (
                gb.at.cast::<Big3>().read(),
                gs.at.cast::<S3>().read(),
                gd.at.cast::<Big4>().read(),
            )
        };
        assert_eq!(after, (b, s, d), "the callee's writes reached the caller");
        // Rust's own Win64 by-value passing agrees with the plan.
        // SAFETY: w64_by_value is the by-value form of the same signature.
        let out = unsafe { run(&p, w64_by_value as *const c_void, &ptrs) };
        let mut by_value = want_seen;
        by_value[1] = 0;
        assert_eq!(out.seen, by_value);
    }

    #[test]
    fn win64_stub_small_structs_by_value() {
        let p = w64_small_plan();
        let (a, b, c, d, e) = (
            P1(0xE1),
            P2(0xE2, 0xE3),
            P4(0xBEEF, 0x0123),
            P8(-5, 1 << 30),
            P8(1000, -1),
        );
        let g = [
            Guarded::new(bytes_of(&a)),
            Guarded::new(bytes_of(&b)),
            Guarded::new(bytes_of(&c)),
            Guarded::new(bytes_of(&d)),
            Guarded::new(bytes_of(&e)),
        ];
        let ptrs: Vec<*const c_void> = g.iter().map(|g| g.at).collect();
        // SAFETY: w64_small is P8(P1, P2, P4, P8, P8), Win64.
        let out = unsafe { run(&p, w64_small as *const c_void, &ptrs) };
        assert_eq!(
            out.seen,
            [
                0xE1,
                0xE3E2,
                0x0123_BEEF,
                le(bytes_of(&d)),
                le(bytes_of(&e))
            ]
        );
        let want = P8(-5 + 1000 + 0xE1, (1 << 30) + 1 + 0x0123);
        assert_eq!(out.ret[..8], *bytes_of(&want));
        assert_eq!(out.ret[8..], [SENTINEL; 56]);
    }

    #[test]
    fn win64_stub_sret() {
        let args = vec![
            one(Type::i64(), Loc::Gpr(RDX), Ext::None),
            one(Type::f64(), Loc::Vec(2), Ext::None),
        ];
        let p = win64(plan(t_i64s(3), w64_sret_ret(), args, 32));
        let (x, y) = (-12i64, 99.0f64);
        // SAFETY: w64_sret is Big3(int64_t, double), Win64: the buffer in
        // rcx, handed back in rax.
        let out = unsafe { run(&p, w64_sret as *const c_void, &[ptr(&x), ptr(&y)]) };
        assert_eq!(out.seen, [x as u64, y.to_bits()]);
        assert_eq!(out.ret[..24], *bytes_of(&Big3(-12, 99, -36)));
        assert_eq!(out.ret[24..], [SENTINEL; 40]);
        // SAFETY: as above, with a null rvalue.
        let seen = unsafe { run_discarding(&p, w64_sret as *const c_void, &[ptr(&x), ptr(&y)]) };
        assert_eq!(seen, [x as u64, y.to_bits()]);

        // Arguments shifted one slot by the hidden pointer, into the stack.
        let args = vec![
            one(Type::i64(), Loc::Gpr(RDX), Ext::None),
            one(Type::f64(), Loc::Vec(2), Ext::None),
            one(Type::i32(), Loc::Gpr(R9), Ext::Sign),
            one(Type::i64(), Loc::Stack(32), Ext::None),
        ];
        let p = win64(plan(t_i64s(4), w64_sret_ret(), args, 48));
        let (z, w) = (-3i32, 1i64 << 62);
        let ptrs = [ptr(&x), ptr(&y), ptr(&z), ptr(&w)];
        // SAFETY: w64_sret_stack is Big4(int64_t, double, int32_t, int64_t).
        let out = unsafe { run(&p, w64_sret_stack as *const c_void, &ptrs) };
        assert_eq!(out.seen, [x as u64, y.to_bits(), -3i64 as u64, w as u64]);
        assert_eq!(out.ret[..32], *bytes_of(&Big4(-12, 99, -3, 1 << 62)));
    }

    #[test]
    fn win64_stub_variadic_doubles_in_both_registers() {
        let dup = |t: Type, k: usize| {
            let mut a = direct(
                t.clone(),
                vec![
                    whole(&t, w64_slot(k, true), Ext::None),
                    whole(&t, w64_slot(k, false), Ext::None),
                ],
            );
            a.variadic = true;
            a
        };
        let args = vec![
            one(Type::i64(), Loc::Gpr(RCX), Ext::None),
            dup(Type::f64(), 1),
            dup(Type::f64(), 2),
            one(Type::pointer(), Loc::Gpr(R9), Ext::None),
        ];
        let mut p = win64(mk(ret_i64(), args, 32));
        p.fixed_args = Some(1);
        let (a, b, c) = (-9i64, 1.5f64, -0.25f64);
        for form in [EntryForm::Libffi, EntryForm::Packed] {
            let s = stub(&p, form);
            let mut seen = [0u64; 5];
            let out_ptr = seen.as_mut_ptr();
            let ptrs = [ptr(&a), ptr(&b), ptr(&c), ptr(&out_ptr)];
            let packed = pack(&p, &ptrs);
            let mut ret = RetBuf([SENTINEL; 64]);
            let args: *const c_void = match form {
                EntryForm::Libffi => ptrs.as_ptr().cast(),
                EntryForm::Packed => packed.as_ptr().cast(),
            };
            // SAFETY: dup reads rcx, (xmm1, rdx), (xmm2, r8) and writes five
            // words through r9, which points at `seen`.
            unsafe { s(fnptr(jitffi_w64_dup), ret.0.as_mut_ptr().cast(), args) };
            assert_eq!(
                seen,
                [a as u64, b.to_bits(), b.to_bits(), c.to_bits(), c.to_bits()],
                "{form:?}"
            );
            if form == EntryForm::Libffi {
                assert_eq!(u64_at(&ret.0, 0), 7);
            }
        }
    }

    #[test]
    fn stub_saves_what_the_target_does_not_preserve() {
        let f = fnptr(jitffi_emit_test_clobber_saved);
        let gprs = |rs: &[u8]| -> Vec<Loc> { rs.iter().map(|&r| Loc::Gpr(r)).collect() };
        // Every subset shape: nothing preserved (three extra pushes, an odd
        // count), two extra pushes, rbx alone, rbp alone.
        let saved_sets = [
            vec![],
            gprs(&[RBX, RBP, R12, R13]),
            gprs(&[RBP, R12, R13, R14, R15]),
            gprs(&[RBX, R12, R13, R14, R15]),
            win64_saved()
                .into_iter()
                .filter(|l| *l != Loc::Gpr(R12))
                .collect(),
        ];
        let x = 41i64;
        let big = Big3(1, 2, 3);
        let two = || {
            vec![
                one(Type::i64(), Loc::Gpr(RDI), Ext::None),
                one(Type::u64(), Loc::Gpr(RSI), Ext::None),
            ]
        };
        for saved in &saved_sets {
            // The target wrecks exactly what the plan says it may.
            let mask: u64 = SYSV_CALLEE_SAVED
                .iter()
                .enumerate()
                .filter(|(_, &r)| !saved.contains(&Loc::Gpr(r)))
                .map(|(k, _)| 1 << k)
                .sum();
            let mut with_copies = two();
            with_copies.push(indirect(t_i64s(3), Loc::Gpr(RDX)));
            with_copies.push(one(Type::i64(), Loc::Stack(0), Ext::None));
            let shapes = [
                mk(ret_i64(), two(), 0),
                mk(ret_i64(), with_copies, 16),
                // Would be a tail stub if the target kept its promises.
                mk(void(), two(), 0),
            ];
            for mut p in shapes {
                p.callee_saved = saved.clone();
                let args = [ptr(&x), ptr(&mask), ptr(&big), ptr(&x)];
                let args = &args[..p.args.len()];
                for form in [EntryForm::Libffi, EntryForm::Packed] {
                    let code = compile_call(&p, form).unwrap();
                    assert!(
                        !code.windows(4).any(|w| w == TAIL_JMP),
                        "tail stub for\n{p}"
                    );
                    let s = stub(&p, form);
                    let packed = pack(&p, args);
                    let a: *const c_void = match form {
                        EntryForm::Libffi => args.as_ptr().cast(),
                        EntryForm::Packed => packed.as_ptr().cast(),
                    };
                    for mut rvalue in [RetBuf([0; 64]), RetBuf([1; 64])] {
                        let r = if rvalue.0[0] == 0 {
                            rvalue.0.as_mut_ptr()
                        } else {
                            std::ptr::null_mut()
                        };
                        // SAFETY: the guard calls the stub, which calls the
                        // clobbering target with x in rdi, the mask in rsi.
                        let mask = unsafe { jitffi_emit_test_guard(s, f, r.cast(), a) };
                        assert_eq!(
                            mask, 0,
                            "{form:?}: clobbered mask {mask:#x} with {saved:?} in\n{p}"
                        );
                        if !r.is_null() && form == EntryForm::Libffi && p.ret.ty != Type::void() {
                            assert_eq!(u64_at(&rvalue.0, 0), 42, "the result survives");
                        }
                    }
                }
                if p.ret.ty != Type::void() {
                    // SAFETY: as above, through both forms.
                    let out = unsafe { run(&p, f, args) };
                    assert_eq!(u64_at(&out.ret, 0), 42);
                }
            }
        }
        // The packed form cannot both restore r13 and return a value in it.
        let mut p = mk(ret_in(Type::i64(), Loc::Gpr(R13), Ext::None), vec![], 0);
        p.callee_saved = vec![];
        assert!(compile_call(&p, EntryForm::Libffi).is_ok());
        match compile_call(&p, EntryForm::Packed) {
            Err(Error::Assembly { reason }) => assert!(reason.contains("r13"), "{reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // A plan whose target keeps all of them needs none of this.
        let mut p = mk(
            ret_i64(),
            vec![one(Type::i64(), Loc::Gpr(RDI), Ext::None)],
            0,
        );
        let kept = compile_call(&p, EntryForm::Libffi).unwrap();
        p.callee_saved = win64_saved();
        assert_eq!(compile_call(&p, EntryForm::Libffi).unwrap(), kept);
    }

    #[test]
    fn win64_stubs_refuse_pointers_in_the_shadow_space() {
        let p = {
            let mut p = win64(mk(void(), vec![indirect(t_i64s(3), Loc::Stack(32))], 48));
            p.args[0].pass = ArgPass::Indirect {
                pointer: Loc::Stack(8),
            };
            p
        };
        for form in [EntryForm::Libffi, EntryForm::Packed] {
            assert!(compile_call(&p, form).is_err(), "{form:?}");
        }
        assert!(compile_closure_thunk(&p).is_err());
    }

    extern "win64" fn w64_i128(a: i128, b: i64) -> i128 {
        record(&[a as u64, (a >> 64) as u64, b as u64]);
        a * 3 + i128::from(b)
    }

    #[test]
    fn win64_int128_comes_back_in_xmm0() {
        let args = vec![
            indirect(Type::i128(), Loc::Gpr(RCX)),
            one(Type::i64(), Loc::Gpr(RDX), Ext::None),
        ];
        let p = win64(mk(ret_in(Type::i128(), Loc::Vec(0), Ext::None), args, 32));
        let (a, b) = (-(1i128 << 100) + 12345, 77i64);
        let ptrs = [ptr(&a), ptr(&b)];
        let s = stub(&p, EntryForm::Libffi);
        // 16-aligned and 8-aligned return buffers: all 16 bytes, no more.
        for at in [0usize, 8] {
            let mut r = RetBuf([SENTINEL; 64]);
            take_seen();
            // SAFETY: w64_i128 is __int128(__int128, int64_t), Win64; the
            // buffer holds 16 bytes from `at`.
            unsafe {
                s(
                    w64_i128 as *const c_void,
                    r.0.as_mut_ptr().add(at).cast(),
                    ptrs.as_ptr().cast(),
                )
            };
            assert_eq!(take_seen(), [a as u64, (a >> 64) as u64, 77]);
            assert_eq!(r.0[at..at + 16], (a * 3 + 77).to_le_bytes());
            assert!(r.0[..at]
                .iter()
                .chain(&r.0[at + 16..])
                .all(|&x| x == SENTINEL));
        }
        // The thunk hands all 16 bytes back in xmm0.
        let reply = (a * 5).to_le_bytes();
        let ctx = Ctx::new(&p, &reply);
        let c = closure_for(&p, &ctx);
        // SAFETY: __int128(__int128, int64_t), Win64.
        let f: extern "win64" fn(i128, i64) -> i128 = unsafe { as_fn(c.entry) };
        assert_eq!(f(a, b), a * 5);
        assert_eq!(
            ctx.take().args,
            [a.to_le_bytes().to_vec(), b.to_le_bytes().to_vec()]
        );
        let mut r = RetBuf([SENTINEL; 64]);
        // SAFETY: the closure has the plan's signature.
        unsafe { s(c.entry, r.0.as_mut_ptr().cast(), ptrs.as_ptr().cast()) };
        assert_eq!(r.0[..16], reply);
        assert_eq!(r.0[16..], [SENTINEL; 48]);
    }

    // ---- Win64 closure thunks -------------------------------------------

    #[test]
    fn win64_thunk_mixed_register_slots() {
        let args = vec![
            one(Type::i32(), Loc::Gpr(RCX), Ext::Sign),
            one(Type::f64(), Loc::Vec(1), Ext::None),
            one(Type::i64(), Loc::Gpr(R8), Ext::None),
            one(Type::f32(), Loc::Vec(3), Ext::None),
        ];
        let p = win64(mk(ret_in(Type::f64(), Loc::Vec(0), Ext::None), args, 32));
        let ctx = Ctx::new(&p, &6.5f64.to_le_bytes());
        let c = closure_for(&p, &ctx);
        // SAFETY: double(int32_t, double, int64_t, float), Win64.
        let f: extern "win64" fn(i32, f64, i64, f32) -> f64 = unsafe { as_fn(c.entry) };
        assert_eq!(f(-7, 0.375, 1 << 50, -2.5), 6.5);
        let got = ctx.take();
        assert_eq!(
            got.args,
            [
                (-7i32).to_le_bytes().to_vec(),
                0.375f64.to_le_bytes().to_vec(),
                (1i64 << 50).to_le_bytes().to_vec(),
                (-2.5f32).to_le_bytes().to_vec(),
            ]
        );
        assert_eq!((got.calls, got.cif), (1, CIF_MARK));
    }

    #[test]
    fn win64_thunk_stack_arguments() {
        let p = w64_eight_plan();
        let ctx = Ctx::new(&p, &(-77i64).to_le_bytes());
        let c = closure_for(&p, &ctx);
        type F8 = extern "win64" fn(i64, f64, i32, u8, i64, f32, i16, f64) -> i64;
        // SAFETY: the plan's signature, Win64.
        let f: F8 = unsafe { as_fn(c.entry) };
        assert_eq!(f(-1, 2.5, -3, 0xF4, i64::MIN + 5, 6.25, -7, -8.5), -77);
        let got = ctx.take();
        assert_eq!(
            got.args,
            [
                (-1i64).to_le_bytes().to_vec(),
                2.5f64.to_le_bytes().to_vec(),
                (-3i32).to_le_bytes().to_vec(),
                vec![0xF4],
                (i64::MIN + 5).to_le_bytes().to_vec(),
                6.25f32.to_le_bytes().to_vec(),
                (-7i16).to_le_bytes().to_vec(),
                (-8.5f64).to_le_bytes().to_vec(),
            ]
        );
        // Stack arguments are read in place, one slot apart, above the
        // thunk's frame.
        for k in 5..8 {
            assert_eq!(got.ptrs[k], got.ptrs[4] + 8 * (k - 4));
        }
        assert!(got.ptrs[4] > got.rvalue);
    }

    #[test]
    fn win64_thunk_aggregates_by_reference() {
        let p = w64_by_ref_plan();
        let ctx = Ctx::new(&p, &123i64.to_le_bytes());
        let c = closure_for(&p, &ctx);
        let (b, s, d) = (
            Big3(10, -20, 1 << 40),
            S3(0xC1, 0xC2, 0xC3),
            Big4(7, 8, 9, -10),
        );
        let want = [
            5i64.to_le_bytes().to_vec(),
            bytes_of(&b).to_vec(),
            0.5f64.to_le_bytes().to_vec(),
            bytes_of(&s).to_vec(),
            bytes_of(&d).to_vec(),
        ];
        // Rust makes the copies and passes their addresses.
        // SAFETY: int64_t(int64_t, Big3, double, S3, Big4), Win64.
        let f: extern "win64" fn(i64, Big3, f64, S3, Big4) -> i64 = unsafe { as_fn(c.entry) };
        assert_eq!(f(5, b, 0.5, s, d), 123);
        assert_eq!(ctx.take().args, want);
        // The handler gets the caller's pointers themselves.
        type ByPtr = extern "win64" fn(i64, *const Big3, f64, *const S3, *const Big4) -> i64;
        // SAFETY: the same signature with the references spelled out.
        let f: ByPtr = unsafe { as_fn(c.entry) };
        assert_eq!(f(5, &b, 0.5, &s, &d), 123);
        let got = ctx.take();
        assert_eq!(got.args, want);
        assert_eq!(got.ptrs[1], &b as *const Big3 as usize);
        assert_eq!(got.ptrs[3], &s as *const S3 as usize);
        assert_eq!(got.ptrs[4], &d as *const Big4 as usize);
    }

    #[test]
    fn win64_thunk_small_structs_by_value() {
        let p = w64_small_plan();
        let reply = P8(-123, 456);
        let ctx = Ctx::new(&p, bytes_of(&reply));
        let c = closure_for(&p, &ctx);
        let (a, b, s4, d, e) = (
            P1(0xE1),
            P2(0xE2, 0xE3),
            P4(0xBEEF, 0x0123),
            P8(-5, 1 << 30),
            P8(1000, -1),
        );
        // SAFETY: P8(P1, P2, P4, P8, P8), Win64.
        let f: extern "win64" fn(P1, P2, P4, P8, P8) -> P8 = unsafe { as_fn(c.entry) };
        assert_eq!(f(a, b, s4, d, e), reply);
        assert_eq!(
            ctx.take().args,
            [
                bytes_of(&a).to_vec(),
                bytes_of(&b).to_vec(),
                bytes_of(&s4).to_vec(),
                bytes_of(&d).to_vec(),
                bytes_of(&e).to_vec(),
            ]
        );
    }

    #[test]
    fn win64_thunk_sret() {
        let args = vec![
            one(Type::i64(), Loc::Gpr(RDX), Ext::None),
            one(Type::f64(), Loc::Vec(2), Ext::None),
        ];
        let p = win64(plan(t_i64s(3), w64_sret_ret(), args, 32));
        let want = Big3(1, -2, i64::MAX);
        let ctx = Ctx::new(&p, bytes_of(&want));
        let c = closure_for(&p, &ctx);
        // SAFETY: Big3(int64_t, double), Win64.
        let f: extern "win64" fn(i64, f64) -> Big3 = unsafe { as_fn(c.entry) };
        assert_eq!(f(8, 0.5), want);
        let got = ctx.take();
        assert_eq!(
            got.args,
            [8i64.to_le_bytes().to_vec(), 0.5f64.to_le_bytes().to_vec()]
        );
        // The hidden pointer in rcx passes through and comes back in rax.
        type Sret = extern "win64" fn(*mut Big3, i64, f64) -> *mut Big3;
        // SAFETY: the same signature with the hidden pointer spelled out.
        let f: Sret = unsafe { as_fn(c.entry) };
        let mut out = Big3(0, 0, 0);
        assert_eq!(f(&mut out, 9, 1.5), &mut out as *mut Big3);
        assert_eq!(out, want);
        let got = ctx.take();
        assert_eq!(got.rvalue, &out as *const Big3 as usize);
        assert_eq!(got.args[0], 9i64.to_le_bytes());
    }

    #[test]
    fn win64_thunk_variadic_doubles_from_both_registers() {
        let dup = |k: usize| {
            let t = Type::f64();
            let mut a = direct(
                t.clone(),
                vec![
                    whole(&t, w64_slot(k, false), Ext::None),
                    whole(&t, w64_slot(k, true), Ext::None),
                ],
            );
            a.variadic = true;
            a
        };
        let mut args = vec![one(Type::i64(), Loc::Gpr(RCX), Ext::None)];
        args.extend((1..4).map(dup));
        args.push(one(Type::f64(), Loc::Stack(32), Ext::None));
        args[4].variadic = true;
        let mut p = win64(mk(ret_i64(), args, 48));
        p.fixed_args = Some(1);
        let ctx = Ctx::new(&p, &11u64.to_le_bytes());
        let c = closure_for(&p, &ctx);
        let d = [0.5f64, -1.25, 3e100, 7.0];
        let regs = [44, d[0].to_bits(), d[1].to_bits(), d[2].to_bits()];
        // SAFETY: the closure reads rcx, three doubles each in an integer
        // and a vector register, and one stack slot.
        let (mask, out) = unsafe { w64_guard(c.entry, regs, &[d[3].to_bits()]) };
        assert_eq!((mask, out[0]), (0, 11));
        let got = ctx.take();
        let want: Vec<Vec<u8>> = std::iter::once(44u64.to_le_bytes().to_vec())
            .chain(d.iter().map(|v| v.to_le_bytes().to_vec()))
            .collect();
        assert_eq!(got.args, want);
    }

    #[test]
    fn win64_thunk_preserves_rsi_rdi_and_xmm6_to_xmm15() {
        let args4 = vec![
            one(Type::i64(), Loc::Gpr(RCX), Ext::None),
            one(Type::f64(), Loc::Vec(1), Ext::None),
            one(Type::i32(), Loc::Gpr(R8), Ext::Sign),
            one(Type::f32(), Loc::Vec(3), Ext::None),
        ];
        let mut six = args4.clone();
        six[1] = indirect(t_i64s(3), Loc::Gpr(RDX));
        six.push(one(Type::i64(), Loc::Stack(32), Ext::None));
        six.push(indirect(u8s(40), Loc::Stack(40)));
        let cases = [
            win64(mk(void(), vec![], 32)),
            win64(mk(ret_i64(), args4.clone(), 32)),
            win64(mk(ret_in(Type::f64(), Loc::Vec(0), Ext::None), vec![], 32)),
            win64(plan(t_i64s(3), w64_sret_ret(), vec![], 32)),
            win64(mk(ret_i64(), six, 48)),
        ];
        let big = Big3(1, 2, 3);
        let s40 = S40(pattern(3));
        let mut sret_buf = Big3(0, 0, 0);
        let sret_at = &mut sret_buf as *mut Big3 as u64;
        for p in &cases {
            let mut calls = 0u64;
            let c = closure(
                p,
                jitffi_w64_clobber_handler,
                (&mut calls as *mut u64).cast(),
            );
            let sret = matches!(p.ret.pass, RetPass::Indirect { .. });
            let regs = [
                if sret { sret_at } else { 1 },
                &big as *const Big3 as u64,
                3,
                4,
            ];
            let stack = [5, &s40 as *const S40 as u64];
            // SAFETY: every plan reads at most these registers and two
            // stack slots, pointers where it expects pointers; the handler
            // writes 8 bytes of the return value.
            let (mask, out) = unsafe { w64_guard(c.entry, regs, &stack) };
            assert_eq!(mask, 0, "clobbered mask {mask:#x} in\n{p}");
            assert_eq!(calls, 1);
            match &p.ret.pass {
                RetPass::Indirect { .. } => {
                    assert_eq!(out[0], sret_at);
                    assert_eq!(sret_buf.0 as u64, 0x0123_4567_89AB_CDEF);
                }
                RetPass::Direct(pieces) if pieces[0].loc == Loc::Vec(0) => {
                    assert_eq!(out[1], 0x0123_4567_89AB_CDEF)
                }
                RetPass::Direct(_) => assert_eq!(out[0], 0x0123_4567_89AB_CDEF),
                RetPass::Void => {}
            }
        }
        // The same thunk built for a caller with SysV's expectations leaves
        // them to the handler: the test sees the damage.
        let mut p = cases[1].clone();
        p.callee_saved = [RBX, RBP, R12, R13, R14, R15]
            .iter()
            .map(|&r| Loc::Gpr(r))
            .collect();
        let mut calls = 0u64;
        let c = closure(
            &p,
            jitffi_w64_clobber_handler,
            (&mut calls as *mut u64).cast(),
        );
        // SAFETY: as above.
        let (mask, _) = unsafe { w64_guard(c.entry, [1, 2, 3, 4], &[]) };
        assert_eq!(mask, 0x3FFC0, "rsi, rdi and xmm6-15 clobbered");
    }

    #[test]
    fn win64_thunk_saves_cost_nothing_for_sysv_and_are_refused_when_contradictory() {
        let p = mk(
            ret_i64(),
            vec![one(Type::i64(), Loc::Gpr(RDI), Ext::None)],
            0,
        );
        let sysv = compile_closure_thunk(&p).unwrap();
        let mut w = p.clone();
        w.callee_saved = win64_saved();
        let saving = compile_closure_thunk(&w).unwrap();
        // Two GPR and ten 16-byte saves and restores.
        assert!(
            saving.len() > sysv.len() + 24 * 5,
            "{} vs {}",
            saving.len(),
            sysv.len()
        );
        // movaps [rsp + d8], xmm6 / movaps xmm6, [rsp + d8]
        assert!(saving.windows(3).any(|x| x == [0x0F, 0x29, 0x74]));
        assert!(saving.windows(3).any(|x| x == [0x0F, 0x28, 0x74]));
        let refuse = |p: &CallPlan, what: &str| match compile_closure_thunk(p) {
            Err(Error::Assembly { reason }) => {
                assert!(reason.contains(what), "{reason:?} lacks {what:?}")
            }
            other => panic!("expected a refusal mentioning {what:?}, got {other:?}"),
        };
        let mut bad = w.clone();
        bad.callee_saved.push(Loc::Gpr(RAX));
        refuse(&bad, "both a return register and callee-saved");
        let mut bad = w.clone();
        bad.callee_saved.push(Loc::Gpr(R11));
        refuse(&bad, "r11");
        let mut bad = w.clone();
        bad.callee_saved.push(Loc::Vec(16));
        refuse(&bad, "preserve");
        let mut bad = w;
        bad.callee_saved.push(Loc::Stack(0));
        refuse(&bad, "preserve");
    }

    // ---- Win64 round trips ------------------------------------------------

    #[test]
    fn win64_round_trip_hand_built_plans() {
        let mut plans = vec![
            w64_eight_plan(),
            w64_by_ref_plan(),
            w64_small_plan(),
            win64(mk(void(), vec![], 32)),
            win64(plan(
                t_i64s(4),
                w64_sret_ret(),
                vec![
                    one(Type::i64(), Loc::Gpr(RDX), Ext::None),
                    indirect(u8s(13), Loc::Gpr(R8)),
                    one(Type::f32(), Loc::Vec(3), Ext::None),
                    indirect(t_i64s(5), Loc::Stack(32)),
                    one(Type::u16(), Loc::Stack(40), Ext::Zero),
                ],
                48,
            )),
            // Indirect arguments in every register slot.
            win64(mk(
                ret_in(Type::i32(), Loc::Gpr(RAX), Ext::Sign),
                (0..4)
                    .map(|k| indirect(u8s(3 + 10 * k), w64_slot(k, false)))
                    .collect(),
                32,
            )),
        ];
        let pool = type_pool();
        let mut rets = pool.clone();
        rets.extend([
            Type::void(),
            t_i64s(4),
            u8s(3),
            u8s(6),
            t_p1(),
            t_p2(),
            t_p8(),
        ]);
        let mut rng = Rng(0x0064_0064);
        for _ in 0..300 {
            let n = rng.below(12);
            let args: Vec<Type> = (0..n)
                .map(|_| pool[rng.below(pool.len())].clone())
                .collect();
            let ret = rets[rng.below(rets.len())].clone();
            let fixed = (n > 0 && rng.below(4) == 0).then(|| rng.below(n) + 1);
            plans.push(w64_classify(&ret, &args, fixed));
        }
        for (k, p) in plans.iter().enumerate() {
            for seed in 0..2 {
                round_trip(p, 7000 * k as u64 + seed);
            }
        }
    }

    /// Prints Win64 stub and thunk sizes (`--ignored --nocapture`).
    #[test]
    #[ignore]
    fn report_win64_sizes() {
        let dd = Type::structure([Type::f64(), Type::f64()]).unwrap();
        let cases: [(&str, Type, Vec<Type>); 7] = [
            ("S1 void(void)", Type::void(), vec![]),
            ("S2 int(int,int)", Type::i32(), vec![Type::i32(); 2]),
            ("S3 double(4 x double)", Type::f64(), vec![Type::f64(); 4]),
            ("S4 int64(8 x int64)", Type::i64(), vec![Type::i64(); 8]),
            ("S6 {dd}({dd},{dd})", dd.clone(), vec![dd.clone(), dd]),
            ("S7 {i64x4}({i64x4})", t_i64s(4), vec![t_i64s(4)]),
            ("S8 int(16 x int)", Type::i32(), vec![Type::i32(); 16]),
        ];
        for (name, ret, args) in cases {
            let p = w64_classify(&ret, &args, None);
            let raw = compile_call(&p, EntryForm::Libffi).unwrap().len();
            let packed = compile_call(&p, EntryForm::Packed).unwrap().len();
            let thunk = compile_closure_thunk(&p).unwrap().len();
            let sysv = crate::classify::classify(Abi::SysV64, &ret, &args, None).unwrap();
            let sysv_thunk = compile_closure_thunk(&sysv).unwrap().len();
            eprintln!(
                "win64 {name}: libffi form {raw} bytes, packed form {packed} bytes, \
                 thunk {thunk} bytes (sysv thunk {sysv_thunk})"
            );
        }
    }

    // ---- frame descriptions --------------------------------------------

    /// The frame state after replaying `frame` up to (not including)
    /// `offset`: the CFA rule and each saved register's slot.
    fn frame_at(frame: &[FrameStep], offset: u32) -> ((Loc, i32), Vec<(Loc, i32)>) {
        let mut cfa = (Loc::Gpr(RSP), 8);
        let mut saved: Vec<(Loc, i32)> = Vec::new();
        for s in frame.iter().take_while(|s| s.offset <= offset) {
            match s.change {
                FrameChange::Cfa { reg, offset } => cfa = (reg, offset),
                FrameChange::Saved { reg, offset } => {
                    saved.retain(|(r, _)| *r != reg);
                    saved.push((reg, offset));
                }
                FrameChange::Restored(reg) => saved.retain(|(r, _)| *r != reg),
            }
        }
        saved.sort_by_key(|&(_, o)| std::cmp::Reverse(o));
        (cfa, saved)
    }

    /// Checks what every frame description promises: steps in order and
    /// inside the code, the whole frame described where `call_at` (the
    /// call instruction's end) returns, and the entry state back at the
    /// final `ret`.
    fn check_frame(code: &Code, call: &[u8], want_at_call: ((Loc, i32), Vec<(Loc, i32)>)) {
        let len = code.bytes.len() as u32;
        assert!(code.frame.windows(2).all(|w| w[0].offset <= w[1].offset));
        assert!(code.frame.iter().all(|s| s.offset <= len));
        let call_end = code
            .bytes
            .windows(call.len())
            .position(|w| w == call)
            .expect("the call instruction")
            + call.len();
        // The unwinder looks up the return address minus one.
        assert_eq!(frame_at(&code.frame, call_end as u32 - 1), want_at_call);
        assert_eq!(code.bytes.last(), Some(&0xC3));
        assert_eq!(frame_at(&code.frame, len - 1), ((Loc::Gpr(RSP), 8), vec![]));
    }

    #[test]
    fn frame_descriptions_of_stubs() {
        let g = Loc::Gpr;
        let base = || vec![(g(RBP), -16), (g(RBX), -24), (g(R12), -32)];
        // Plain SysV, libffi form; stack arguments; a Win64 target.
        let plain = mk(
            ret_i64(),
            vec![one(Type::i64(), Loc::Gpr(RDI), Ext::None)],
            0,
        );
        let mut stack = i64_regs();
        stack.push(one(Type::i64(), Loc::Stack(0), Ext::None));
        let stack = mk(ret_i64(), stack, 16);
        let w = win64(mk(
            void(),
            vec![one(Type::i64(), Loc::Gpr(RCX), Ext::None)],
            32,
        ));
        for p in [&plain, &stack, &w] {
            for form in [EntryForm::Libffi, EntryForm::Packed] {
                let code = compile_call_with_unwind(p, form).unwrap();
                if form == EntryForm::Packed && p.stack_bytes == 0 {
                    assert!(code.frame.is_empty(), "a tail stub:\n{p}");
                    continue;
                }
                check_frame(&code, &[0x41, 0xFF, 0xD4], ((g(RBP), 16), base()));
            }
        }
        // A target that keeps nothing: r13-r15 pushed too, and the CFA
        // found from rsp while it runs.
        for mut p in [plain, stack] {
            p.callee_saved.clear();
            let code = compile_call_with_unwind(&p, EntryForm::Libffi).unwrap();
            let frame = Frame::layout(&p, EntryForm::Libffi).unwrap();
            let above = frame.cfa_above_rsp().unwrap();
            // The return address, six pushes (rbp, rbx, r12-r15), the allocation.
            assert_eq!(i64::from(above), 8 + 6 * 8 + frame.alloc as i64);
            let mut saved = base();
            saved.extend([(g(R13), -40), (g(R14), -48), (g(R15), -56)]);
            check_frame(&code, &[0x41, 0xFF, 0xD4], ((g(RSP), above), saved));
        }
    }

    #[test]
    fn frame_descriptions_of_thunks() {
        let g = Loc::Gpr;
        let call = [0x41, 0xFF, 0xD2]; // call r10
        let p = mk(
            ret_i64(),
            vec![one(Type::i64(), Loc::Gpr(RDI), Ext::None)],
            0,
        );
        let code = compile_closure_thunk_with_unwind(&p).unwrap();
        check_frame(&code, &call, ((g(RBP), 16), vec![(g(RBP), -16)]));
        // Win64: rsi, rdi and xmm6-xmm15 in the frame's slots.
        let w = win64(mk(
            ret_i64(),
            vec![one(Type::i64(), Loc::Gpr(RCX), Ext::None)],
            32,
        ));
        let code = compile_closure_thunk_with_unwind(&w).unwrap();
        let frame = ThunkFrame::layout(&w).unwrap();
        let mut want: Vec<(Loc, i32)> = frame
            .saves
            .iter()
            .map(|&(loc, at)| (loc, at as i32 - frame.size as i32 - 16))
            .collect();
        want.push((g(RBP), -16));
        want.sort_by_key(|&(_, o)| std::cmp::Reverse(o));
        assert_eq!(want.len(), 13);
        check_frame(&code, &call, ((g(RBP), 16), want));
    }
}
