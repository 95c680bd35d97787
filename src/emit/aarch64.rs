//! AArch64 emitter: a [`CallPlan`] in, a position-independent call stub or
//! closure thunk out, in the same shapes as the x86-64 emitter
//! ([`super::x64`]). It knows no ABI: every location comes from the plan.
//!
//! # Call stubs
//!
//! The stub is an AAPCS64 function `stub(fn, rvalue, args)` (see
//! [`EntryForm`]); with a static chain, `stub(fn, rvalue, args, chain)`
//! loads `chain` into the plan's chain register (`x18`) right before the
//! call. On entry `fn` moves to `x9` and the argument base to `x10` (when
//! an argument needs `x2`), so every argument register is free; `x11` holds the address of the
//! libffi-form argument being moved, `x12`-`x14` and `v16` carry copies,
//! `x15` the chain, `x16`/`x17` addresses out of immediate reach. None of
//! them is an argument register, so the moves may come in any order: stack
//! pieces and by-reference copies first, then the copies' addresses, then
//! register pieces.
//!
//! - *Tail stubs*, when nothing needs a frame (no stack arguments, no
//!   by-reference copies) and nothing happens after the call (the packed
//!   form, or a void return): the moves, then `br x9`. `x30` still holds
//!   our caller's return address, so the callee returns straight there.
//!   S2 in the packed form is four instructions (`x2`, the argument
//!   base, stays where it arrived unless an argument needs it).
//!
//!   ```
//!   use jitffi::{classify::classify, emit::{aarch64, EntryForm}, Abi, Type};
//!   let s2 = classify(Abi::Aapcs64, &Type::i32(), &[Type::i32(), Type::i32()], None).unwrap();
//!   let code = aarch64::compile_call(&s2, EntryForm::Packed).unwrap();
//!   assert_eq!(code.len(), 4 * 4);
//!   assert!(code.ends_with(&0xD61F_0120u32.to_le_bytes())); // br x9
//!   ```
//! - *Framed stubs*, everything else. The frame is the frame record
//!   (`x29`, `x30`; `x29` points at it, keeping the frame-pointer chain)
//!   and the locals: the saved `rvalue` (libffi form with a result in
//!   registers), by-reference copies and the sret buffer used when `rvalue`
//!   is null, each 16-aligned. Without stack arguments the record sits at
//!   the bottom and one `stp x29, x30, [sp, #-N]!` / `ldp x29, x30, [sp],
//!   #N` makes and unmakes the whole frame, as gcc does; with them the
//!   outgoing area must be at `sp`, so the record is pushed first and the
//!   locals allocated below it (pages probed one by one past 4 KiB):
//!
//! ```text
//!   [x29 + 16 ..]  our caller's frame (CFA = x29 + 16)
//!   [x29 + 8]      x30, our return address
//!   [x29]          caller's x29        <- x29
//!   ...            locals
//!   [sp + off]     outgoing argument area (plan.stack_bytes) <- sp
//! ```
//!
//! The libffi form stores the return pieces through the saved `rvalue`
//! after the call (skipped when it is null: the only branch, with the
//! page-probe loop of frames over a page); narrow integers are widened to
//! a full 8-byte `ffi_arg` the way the plan's [`Ext`] says. A value
//! returned in memory goes straight to `rvalue` through `x8` (a frame
//! temporary when `rvalue` is null).
//!
//! The stub is an AAPCS64 function and so is its target: a plan whose
//! `callee_saved` misses a register AAPCS64 keeps is refused rather than
//! wrapped (no other ABI runs on AArch64 here).
//!
//! # Closure thunks
//!
//! A thunk ([`compile_closure_thunk`]) is entered with the closure record
//! (see [`crate::closure::record`]) in `x17`, which the slot trampoline sets
//! (`adrp x17; add x17; ldr x16, [x17]; br x16`), or, for a plan with a
//! static chain (a Go closure, [`super::go_record`]), in the chain
//! register. It stores the register pieces of every argument into value
//! slots, builds the argument-pointer array, calls `fun(cif, rvalue, args,
//! user_data)` and loads the return pieces from its buffer (narrow integers
//! widened from their own size, so a handler may write an `ffi_arg` or the
//! bare value).
//!
//! The thunk's frame is always the combined shape when it fits (the
//! record at the bottom, then the locals):
//!
//! ```text
//!   [CFA + off]  the caller's stack arguments (plan offset `off`)
//!   ...          return buffer: max(16, round16(size)) bytes (none for a
//!                value returned in memory: the handler writes straight
//!                into the caller's buffer, whose address came in x8)
//!   ...          value slots, packed: 8-aligned (16 for 16-aligned
//!                types), whole words, one per argument in registers, so
//!                neighbouring registers are stored with one stp
//!   [sp + 16 + 8i]  args[i]
//!   [sp]         x29, x30              <- sp = x29
//! ```
//!
//! `args[i]` points into the caller's area for an argument that arrives
//! whole and in order on the stack, is the pointer itself for a
//! by-reference argument, and otherwise points at its slot. The handler
//! keeps every register AAPCS64 makes callee-saved, so the thunk saves
//! only `x29`/`x30`.
//!
//! ```
//! use jitffi::{classify::classify, emit::aarch64, Abi, Type};
//! let s2 = classify(Abi::Aapcs64, &Type::i32(), &[Type::i32(), Type::i32()], None).unwrap();
//! let code = aarch64::compile_closure_thunk(&s2).unwrap();
//! let words: Vec<u32> = code.chunks(4).map(|w| u32::from_le_bytes(w.try_into().unwrap())).collect();
//! assert!(words.contains(&0xA942_4220)); // ldp x0, x16, [x17, #32]: cif and handler
//! assert!(words.contains(&0xD63F_0200)); // blr x16
//! ```
//!
//! # Unwind information
//!
//! [`compile_call_with_unwind`] and [`compile_closure_thunk_with_unwind`]
//! describe the frame with registers by DWARF number (`x0`-`x30` = 0-30,
//! `sp` = 31): at entry the CFA is `sp` and the return address is in
//! `x30`; `stp x29, x30, [sp, #-N]!` makes it `sp + N` with `x29` and
//! `x30` saved at `CFA - N` and `CFA - N + 8`; `mov x29, sp` makes it
//! `x29 + N`, which then covers the probe loop, the copies and the call;
//! the epilogue undoes both. Tail stubs never move `sp` and have no steps.
//!
//! # Instruction cache
//!
//! The bytes are only data until [`crate::memory`] publishes them, which
//! cleans the data cache and invalidates the instruction cache over the
//! published range (`__clear_cache`) before the code is handed out.

// dynasm's dynamic-register expansion calls `.into()` on our `u8`s.
#![allow(clippy::useless_conversion)]

use dynasmrt::aarch64::Aarch64Relocation;
use dynasmrt::{dynasm, DynasmApi, DynasmLabelApi, VecAssembler};

use super::{go_record, Code, EntryForm, FrameChange, FrameStep};
use crate::closure::record;
use crate::error::{Error, Result};
use crate::plan::{ArgPass, CallPlan, Ext, Loc, Piece, RetPass};

type Ops = VecAssembler<Aarch64Relocation>;

/// Plain dynasm for AArch64 into `$ops`.
macro_rules! a64 {
    ($ops:ident $($t:tt)*) => {
        dynasm!($ops ; .arch aarch64 $($t)*)
    };
}

/// The largest frame a stub or thunk builds; beyond it a plan is refused.
const MAX_FRAME: u64 = 1 << 30;
/// Frames over this size touch every page on the way down.
const PAGE: u64 = 4096;
/// Copies over this many bytes run as a loop of 16-byte moves.
const COPY_LOOP_MIN: u32 = 256;

const SP: u8 = 31;
const FP: u8 = 29;
const LR: u8 = 30;
/// The target, in stubs.
const FN: u8 = 9;
/// The argument base (`avalue` or the packed buffer), in stubs; a scratch
/// register in thunks.
const BASE: u8 = 10;
/// The libffi-form argument being moved.
const ARG: u8 = 11;
const T0: u8 = 12;
const T1: u8 = 13;
const T2: u8 = 14;
/// Where a stub keeps the static chain until the call.
const CHAIN_STASH: u8 = 15;
/// Addresses out of an instruction's immediate reach.
const SCRATCH: u8 = 16;
/// The closure record on entry to a thunk; a second scratch in stubs.
const RECORD: u8 = 17;
/// The vector register copies go through.
const VTMP: u8 = 16;

fn asm_err(reason: impl Into<String>) -> Error {
    Error::Assembly {
        reason: reason.into(),
    }
}

fn round16(v: u64) -> u64 {
    v.div_ceil(16) * 16
}

fn who(i: usize) -> String {
    if i == usize::MAX {
        "the return value".into()
    } else {
        format!("argument {i}")
    }
}

// ---------------------------------------------------------------------------
// Loads, stores and address arithmetic with every immediate range-checked
// before dynasm sees it (dynasm panics on an out-of-range immediate).
// ---------------------------------------------------------------------------

/// What one load or store moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Width {
    /// A general register, `size` 1, 2, 4 or 8 bytes, zero-extended.
    Gpr(u8),
    /// A general register loaded from `size` 1, 2 or 4 bytes,
    /// sign-extended to 64 bits.
    Signed(u8),
    /// A vector register's low `size` bytes: 4 (`s`), 8 (`d`), 16 (`q`).
    Vec(u8),
}

impl Width {
    fn size(self) -> i64 {
        match self {
            Width::Gpr(s) | Width::Signed(s) | Width::Vec(s) => i64::from(s),
        }
    }
}

/// A memory operand: `base + off`, `base` 0-30 or [`SP`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mem {
    base: u8,
    off: i64,
}

impl Mem {
    fn sp(off: u64) -> Result<Mem> {
        Mem::at(SP, off)
    }

    fn at(base: u8, off: u64) -> Result<Mem> {
        let off = i64::try_from(off).map_err(|_| asm_err(format!("offset {off} too large")))?;
        Ok(Mem { base, off })
    }

    fn plus(self, delta: i64) -> Mem {
        Mem {
            base: self.base,
            off: self.off + delta,
        }
    }
}

/// `dst = base + off` (either may be `sp`), for any offset within
/// [`MAX_FRAME`]-sized reach; `spare` is clobbered for offsets of 16 MiB
/// and beyond.
fn address(ops: &mut Ops, dst: u8, base: u8, off: i64, spare: u8) -> Result<()> {
    let mag = off.unsigned_abs();
    if mag >= 1 << 24 {
        if mag > 2 * MAX_FRAME {
            return Err(asm_err(format!("offset {off} out of reach")));
        }
        // `mag` < 2^31: two 16-bit halves.
        let lo = (mag & 0xFFFF) as u32;
        let hi = (mag >> 16) as u32;
        a64!(ops ; movz X(spare), lo ; movk X(spare), hi, lsl 16);
        a64!(ops ; add XSP(dst), XSP(base), 0);
        if off < 0 {
            a64!(ops ; sub X(dst), X(dst), X(spare));
        } else {
            a64!(ops ; add X(dst), X(dst), X(spare));
        }
        return Ok(());
    }
    let hi = (mag >> 12) as u32;
    let lo = (mag & 0xFFF) as u32;
    let mut from = base;
    if hi != 0 {
        if off < 0 {
            a64!(ops ; sub XSP(dst), XSP(from), hi, lsl 12);
        } else {
            a64!(ops ; add XSP(dst), XSP(from), hi, lsl 12);
        }
        from = dst;
    }
    if lo != 0 || from != dst {
        if off < 0 {
            a64!(ops ; sub XSP(dst), XSP(from), lo);
        } else {
            a64!(ops ; add XSP(dst), XSP(from), lo);
        }
    }
    Ok(())
}

/// Whether `off` fits the scaled unsigned 12-bit form of a `size`-byte
/// access.
fn scaled(off: i64, size: i64) -> Option<u32> {
    (off >= 0 && off % size == 0 && off / size < 4096).then_some(off as u32)
}

/// Whether `off` fits the unscaled signed 9-bit form.
fn unscaled(off: i64) -> Option<i32> {
    (-256..256).contains(&off).then_some(off as i32)
}

/// Brings `m` into immediate reach of a `size`-byte access: unchanged, or
/// its address computed into `scratch` (used as the new base).
fn reachable(ops: &mut Ops, m: Mem, size: i64, scratch: u8) -> Result<Mem> {
    if scaled(m.off, size).is_some() || unscaled(m.off).is_some() {
        return Ok(m);
    }
    address(ops, scratch, m.base, m.off, scratch)?;
    Ok(Mem {
        base: scratch,
        off: 0,
    })
}

/// `ldr`/`ldrs*`/`ldur*` of `w` into register `r` from `m`, through
/// [`SCRATCH`] when `m` is out of reach.
fn load(ops: &mut Ops, w: Width, r: u8, m: Mem) -> Result<()> {
    load_via(ops, w, r, m, SCRATCH)
}

fn load_via(ops: &mut Ops, w: Width, r: u8, m: Mem, scratch: u8) -> Result<()> {
    let m = reachable(ops, m, w.size(), scratch)?;
    let b = m.base;
    if let Some(o) = scaled(m.off, w.size()) {
        match w {
            Width::Gpr(1) => a64!(ops ; ldrb W(r), [XSP(b), o]),
            Width::Gpr(2) => a64!(ops ; ldrh W(r), [XSP(b), o]),
            Width::Gpr(4) => a64!(ops ; ldr W(r), [XSP(b), o]),
            Width::Gpr(8) => a64!(ops ; ldr X(r), [XSP(b), o]),
            Width::Signed(1) => a64!(ops ; ldrsb X(r), [XSP(b), o]),
            Width::Signed(2) => a64!(ops ; ldrsh X(r), [XSP(b), o]),
            Width::Signed(4) => a64!(ops ; ldrsw X(r), [XSP(b), o]),
            Width::Vec(4) => a64!(ops ; ldr S(r), [XSP(b), o]),
            Width::Vec(8) => a64!(ops ; ldr D(r), [XSP(b), o]),
            Width::Vec(16) => a64!(ops ; ldr Q(r), [XSP(b), o]),
            _ => return Err(asm_err(format!("no load of {w:?}"))),
        }
        return Ok(());
    }
    let o = unscaled(m.off).ok_or_else(|| asm_err("offset out of reach"))?;
    match w {
        Width::Gpr(1) => a64!(ops ; ldurb W(r), [XSP(b), o]),
        Width::Gpr(2) => a64!(ops ; ldurh W(r), [XSP(b), o]),
        Width::Gpr(4) => a64!(ops ; ldur W(r), [XSP(b), o]),
        Width::Gpr(8) => a64!(ops ; ldur X(r), [XSP(b), o]),
        Width::Signed(1) => a64!(ops ; ldursb X(r), [XSP(b), o]),
        Width::Signed(2) => a64!(ops ; ldursh X(r), [XSP(b), o]),
        Width::Signed(4) => a64!(ops ; ldursw X(r), [XSP(b), o]),
        Width::Vec(4) => a64!(ops ; ldur S(r), [XSP(b), o]),
        Width::Vec(8) => a64!(ops ; ldur D(r), [XSP(b), o]),
        Width::Vec(16) => a64!(ops ; ldur Q(r), [XSP(b), o]),
        _ => return Err(asm_err(format!("no load of {w:?}"))),
    }
    Ok(())
}

/// `str`/`stur*` of `w` from register `r` to `m`, through `scratch` when
/// `m` is out of reach.
fn store_via(ops: &mut Ops, w: Width, r: u8, m: Mem, scratch: u8) -> Result<()> {
    let m = reachable(ops, m, w.size(), scratch)?;
    let b = m.base;
    if let Some(o) = scaled(m.off, w.size()) {
        match w {
            Width::Gpr(1) => a64!(ops ; strb W(r), [XSP(b), o]),
            Width::Gpr(2) => a64!(ops ; strh W(r), [XSP(b), o]),
            Width::Gpr(4) => a64!(ops ; str W(r), [XSP(b), o]),
            Width::Gpr(8) => a64!(ops ; str X(r), [XSP(b), o]),
            Width::Vec(4) => a64!(ops ; str S(r), [XSP(b), o]),
            Width::Vec(8) => a64!(ops ; str D(r), [XSP(b), o]),
            Width::Vec(16) => a64!(ops ; str Q(r), [XSP(b), o]),
            _ => return Err(asm_err(format!("no store of {w:?}"))),
        }
        return Ok(());
    }
    let o = unscaled(m.off).ok_or_else(|| asm_err("offset out of reach"))?;
    match w {
        Width::Gpr(1) => a64!(ops ; sturb W(r), [XSP(b), o]),
        Width::Gpr(2) => a64!(ops ; sturh W(r), [XSP(b), o]),
        Width::Gpr(4) => a64!(ops ; stur W(r), [XSP(b), o]),
        Width::Gpr(8) => a64!(ops ; stur X(r), [XSP(b), o]),
        Width::Vec(4) => a64!(ops ; stur S(r), [XSP(b), o]),
        Width::Vec(8) => a64!(ops ; stur D(r), [XSP(b), o]),
        Width::Vec(16) => a64!(ops ; stur Q(r), [XSP(b), o]),
        _ => return Err(asm_err(format!("no store of {w:?}"))),
    }
    Ok(())
}

/// `stp` of two registers of `w` to `m`, if the pair form reaches it.
fn store_pair(ops: &mut Ops, w: Width, r1: u8, r2: u8, m: Mem) -> bool {
    let size = w.size();
    if m.off % size != 0 || !(-64..64).contains(&(m.off / size)) {
        return false;
    }
    let (b, o) = (m.base, m.off as i32);
    match w {
        Width::Gpr(8) => a64!(ops ; stp X(r1), X(r2), [XSP(b), o]),
        Width::Gpr(4) => a64!(ops ; stp W(r1), W(r2), [XSP(b), o]),
        Width::Vec(4) => a64!(ops ; stp S(r1), S(r2), [XSP(b), o]),
        Width::Vec(8) => a64!(ops ; stp D(r1), D(r2), [XSP(b), o]),
        Width::Vec(16) => a64!(ops ; stp Q(r1), Q(r2), [XSP(b), o]),
        _ => return false,
    }
    true
}

/// `ldp` of two registers of `w` from `m`, if the pair form reaches it.
fn load_pair(ops: &mut Ops, w: Width, r1: u8, r2: u8, m: Mem) -> bool {
    let size = w.size();
    if r1 == r2 || m.off % size != 0 || !(-64..64).contains(&(m.off / size)) {
        return false;
    }
    let (b, o) = (m.base, m.off as i32);
    match w {
        Width::Gpr(8) => a64!(ops ; ldp X(r1), X(r2), [XSP(b), o]),
        Width::Vec(4) => a64!(ops ; ldp S(r1), S(r2), [XSP(b), o]),
        Width::Vec(8) => a64!(ops ; ldp D(r1), D(r2), [XSP(b), o]),
        Width::Vec(16) => a64!(ops ; ldp Q(r1), Q(r2), [XSP(b), o]),
        _ => return false,
    }
    true
}

/// Loads the `size` bytes of an aggregate piece at `m` into `x{r}`,
/// reading nothing past them (the value may end at a page end): the bytes
/// above `size` come back zero.
fn load_bytes(ops: &mut Ops, r: u8, m: Mem, size: u32) -> Result<()> {
    // (first load, second load offset and width, shift of the second)
    let (first, second) = match size {
        1 | 2 | 4 | 8 => (size as u8, None),
        3 => (2, Some((2, 1, 16))),
        5 => (4, Some((4, 1, 32))),
        6 => (4, Some((4, 2, 32))),
        // Bytes 3..7 overlap byte 3 of the first load: the OR is harmless.
        7 => (4, Some((3, 4, 24))),
        _ => return Err(asm_err(format!("no register load of {size} bytes"))),
    };
    load(ops, Width::Gpr(first), r, m)?;
    if let Some((off, width, shift)) = second {
        load(ops, Width::Gpr(width), T0, m.plus(off))?;
        a64!(ops ; orr X(r), X(r), X(T0), lsl shift);
    }
    Ok(())
}

/// Stores the low `size` bytes of `x{r}` at `m`, writing nothing past
/// them.
fn store_bytes(ops: &mut Ops, r: u8, m: Mem, size: u32, scratch: u8) -> Result<()> {
    let (first, second) = match size {
        1 | 2 | 4 | 8 => (size as u8, None),
        3 => (2, Some((2, 1, 16))),
        5 => (4, Some((4, 1, 32))),
        6 => (4, Some((4, 2, 32))),
        7 => (4, Some((3, 4, 24))),
        _ => return Err(asm_err(format!("no register store of {size} bytes"))),
    };
    store_via(ops, Width::Gpr(first), r, m, scratch)?;
    if let Some((off, width, shift)) = second {
        a64!(ops ; lsr X(T0), X(r), shift);
        store_via(ops, Width::Gpr(width), T0, m.plus(off), scratch)?;
    }
    Ok(())
}

/// Copies `n` bytes from `src` to `dst` with the widest moves that stay
/// inside both ends (a tail overlapping the previous move, never a read
/// past the value). Large copies loop over 16-byte blocks. Clobbers
/// `x12`-`x14`, `x16`, `x17` and `v16`.
fn copy_bytes(ops: &mut Ops, src: Mem, dst: Mem, n: u32) -> Result<()> {
    if n > COPY_LOOP_MIN {
        address(ops, T0, src.base, src.off, SCRATCH)?;
        address(ops, T1, dst.base, dst.off, SCRATCH)?;
        let blocks = n / 16;
        a64!(ops ; movz X(T2), blocks & 0xFFFF);
        if blocks > 0xFFFF {
            a64!(ops ; movk X(T2), blocks >> 16, lsl 16);
        }
        a64!(ops
            ; copy:
            ; ldr Q(VTMP), [X(T0)], 16
            ; str Q(VTMP), [X(T1)], 16
            ; subs X(T2), XSP(T2), 1
            ; b.ne <copy
        );
        let rest = n % 16;
        if rest != 0 {
            // Back up so the last block ends exactly at the value's end.
            let back = i64::from(16 - rest);
            let (s, d) = (
                Mem {
                    base: T0,
                    off: -back,
                },
                Mem {
                    base: T1,
                    off: -back,
                },
            );
            move_chunk(ops, 16, s, d)?;
        }
        return Ok(());
    }
    // Widest moves first; a short tail is one more move of the same width
    // ending at the value's end, overlapping bytes already moved.
    let width = match n {
        16.. => 16,
        8.. => 8,
        4.. => 4,
        2.. => 2,
        1 => 1,
        0 => return Ok(()),
    };
    let mut at = 0;
    while at + width <= n {
        move_chunk(ops, width, src.plus(i64::from(at)), dst.plus(i64::from(at)))?;
        at += width;
    }
    if at < n {
        let last = i64::from(n - width);
        move_chunk(ops, width, src.plus(last), dst.plus(last))?;
    }
    Ok(())
}

/// One move of `width` bytes (1, 2, 4, 8 or 16).
fn move_chunk(ops: &mut Ops, width: u32, src: Mem, dst: Mem) -> Result<()> {
    let (w, r) = match width {
        16 => (Width::Vec(16), VTMP),
        8 | 4 | 2 | 1 => (Width::Gpr(width as u8), T1),
        _ => return Err(asm_err(format!("no {width}-byte move"))),
    };
    load_via(ops, w, r, src, SCRATCH)?;
    store_via(ops, w, r, dst, RECORD)
}

/// `sp -= size`, touching every page on the way down when the frame is
/// larger than a page, so a guard page is never jumped over.
fn alloc_frame(ops: &mut Ops, size: u64) -> Result<()> {
    if size > MAX_FRAME {
        return Err(asm_err(format!(
            "a frame of {size} bytes (the most is {MAX_FRAME})"
        )));
    }
    let mut rest = size;
    if size > PAGE {
        let pages = (size / PAGE) as u32;
        rest = size % PAGE;
        a64!(ops ; movz X(T2), pages & 0xFFFF);
        if pages > 0xFFFF {
            a64!(ops ; movk X(T2), pages >> 16, lsl 16);
        }
        a64!(ops
            ; probe:
            ; sub sp, sp, 1, lsl 12
            ; str xzr, [sp]
            ; subs X(T2), XSP(T2), 1
            ; b.ne <probe
        );
    }
    if rest > 0 {
        address(ops, SP, SP, -(rest as i64), SCRATCH)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Frames and their description.
// ---------------------------------------------------------------------------

/// Appends `change`, in effect from the current end of `ops` on.
fn note(ops: &Ops, frame: &mut Vec<FrameStep>, change: FrameChange) {
    // Code stays far below 4 GiB (copies loop, frames are capped).
    let offset = u32::try_from(ops.offset().0).unwrap_or(u32::MAX);
    frame.push(FrameStep { offset, change });
}

fn cfa(reg: u8, offset: i32) -> FrameChange {
    FrameChange::Cfa {
        reg: Loc::Gpr(reg),
        offset,
    }
}

/// The frame of a framed stub or a thunk: the frame record (`x29`, `x30`)
/// and `locals` bytes.
///
/// *Combined*, when nothing has to sit at `sp` itself (no outgoing stack
/// arguments) and the whole frame is within `stp`'s reach: one
/// `stp x29, x30, [sp, #-(16 + locals)]!` makes it, the record at the
/// bottom and the locals above it, and one `ldp ..., [sp], #(16 + locals)`
/// takes it down, as gcc does. *Split* otherwise: the record is pushed, the
/// locals (outgoing area at the bottom) allocated below it, and `mov sp,
/// x29` takes them down.
#[derive(Clone, Copy, Debug)]
struct Frame {
    locals: u64,
    combined: bool,
}

impl Frame {
    fn new(locals: u64, needs_sp_area: bool) -> Result<Frame> {
        if locals > MAX_FRAME {
            return Err(asm_err(format!(
                "a frame of {locals} bytes (the most is {MAX_FRAME})"
            )));
        }
        Ok(Frame {
            locals,
            combined: !needs_sp_area && locals + 16 <= 504,
        })
    }

    /// Where the locals start, from `sp`.
    fn locals_at(self) -> u64 {
        if self.combined {
            16
        } else {
            0
        }
    }

    /// The CFA (our caller's `sp`) from `x29`.
    fn cfa_from_fp(self) -> u64 {
        if self.combined {
            16 + self.locals
        } else {
            16
        }
    }

    /// Builds the frame, described.
    fn enter(self, ops: &mut Ops, steps: &mut Vec<FrameStep>) -> Result<()> {
        let total = if self.combined { 16 + self.locals } else { 16 };
        let t = total as i32;
        a64!(ops ; stp x29, x30, [sp, -t]!);
        note(ops, steps, cfa(SP, t));
        let saved = |r, offset| FrameChange::Saved {
            reg: Loc::Gpr(r),
            offset,
        };
        note(ops, steps, saved(FP, -t));
        note(ops, steps, saved(LR, 8 - t));
        a64!(ops ; mov x29, sp);
        note(ops, steps, cfa(FP, t));
        if !self.combined {
            alloc_frame(ops, self.locals)?;
        }
        Ok(())
    }

    /// Takes the frame down and returns, described.
    fn leave(self, ops: &mut Ops, steps: &mut Vec<FrameStep>) {
        let total = if self.combined {
            16 + self.locals as i32
        } else {
            a64!(ops ; mov sp, x29);
            note(ops, steps, cfa(SP, 16));
            16
        };
        a64!(ops ; ldp x29, x30, [sp], total);
        note(ops, steps, cfa(SP, 0));
        note(ops, steps, FrameChange::Restored(Loc::Gpr(FP)));
        note(ops, steps, FrameChange::Restored(Loc::Gpr(LR)));
        a64!(ops ; ret);
    }
}

fn finish(ops: Ops, frame: Vec<FrameStep>) -> Result<Code> {
    let bytes = ops
        .finalize()
        .map_err(|err| asm_err(format!("dynasm: {err}")))?;
    Ok(Code { bytes, frame })
}

// ---------------------------------------------------------------------------
// Plan checks shared by stubs and thunks.
// ---------------------------------------------------------------------------

fn check_plan(plan: &CallPlan) -> Result<()> {
    if plan.arch != crate::abi::Arch::Aarch64 {
        return Err(asm_err(format!(
            "a {:?} plan given to the AArch64 emitter",
            plan.arch
        )));
    }
    plan.check()
        .map_err(|e| asm_err(format!("inconsistent plan: {e}")))?;
    if plan.shadow_space != 0 || plan.vector_count.is_some() {
        return Err(asm_err(
            "shadow space or a vector count: not an AArch64 convention",
        ));
    }
    // The stub is an AAPCS64 function: its target must keep what its own
    // caller expects kept.
    let kept = crate::classify::aapcs64::callee_saved();
    if let Some(missing) = kept.iter().find(|r| !plan.callee_saved.contains(r)) {
        return Err(asm_err(format!(
            "the target may clobber {}, which AAPCS64 callers keep",
            missing.name(plan.arch)
        )));
    }
    for (i, a) in plan.args.iter().enumerate() {
        match &a.pass {
            ArgPass::Direct(pieces) => {
                for p in pieces {
                    check_piece(i, p, false)?;
                }
            }
            ArgPass::Indirect { pointer } => match pointer {
                Loc::Gpr(r) if *r <= 7 => {}
                Loc::Stack(off) if off % 8 == 0 => {}
                other => {
                    return Err(asm_err(format!(
                        "argument {i}: address in {}",
                        other.name(plan.arch)
                    )))
                }
            },
        }
    }
    match &plan.ret.pass {
        RetPass::Void => {}
        RetPass::Direct(pieces) => {
            let mut seen: Vec<Loc> = Vec::with_capacity(pieces.len());
            for p in pieces {
                check_piece(usize::MAX, p, true)?;
                if seen.contains(&p.loc) {
                    return Err(asm_err(format!(
                        "return: two pieces in {}",
                        p.loc.name(plan.arch)
                    )));
                }
                seen.push(p.loc);
            }
        }
        RetPass::Indirect { pointer, returned } => {
            if sret_register(plan).is_none() || uses_register(plan, *pointer) {
                return Err(asm_err(format!(
                    "return buffer address in {}: not a free argument register",
                    pointer.name(plan.arch)
                )));
            }
            if returned.is_some() {
                return Err(asm_err(
                    "the stub returns no buffer address: it keeps no register after the call",
                ));
            }
        }
    }
    if let Some(chain) = plan.static_chain {
        if chain_register(plan).is_none() {
            return Err(asm_err(format!(
                "static chain in {}: only x18 is free of arguments, results, the \
                 stub's scratch and the caller's kept registers",
                chain.name(plan.arch)
            )));
        }
    }
    Ok(())
}

/// The general register `x0`-`x8` the plan passes the return buffer's
/// address in, if it returns in memory.
fn sret_register(plan: &CallPlan) -> Option<u8> {
    match plan.ret.pass {
        RetPass::Indirect {
            pointer: Loc::Gpr(r @ 0..=8),
            ..
        } => Some(r),
        _ => None,
    }
}

/// The static chain register. Only `x18` can carry it here: `x0`-`x8`
/// carry arguments and results, `x9`-`x17` are the stub's and thunk's own
/// scratch, and `x19` and up are kept for the caller.
fn chain_register(plan: &CallPlan) -> Option<u8> {
    match plan.static_chain {
        Some(Loc::Gpr(r @ 18)) => Some(r),
        _ => None,
    }
}

/// Whether an argument, or an argument's address, travels in `loc`.
fn uses_register(plan: &CallPlan, loc: Loc) -> bool {
    plan.args.iter().any(|a| match &a.pass {
        ArgPass::Direct(pieces) => pieces.iter().any(|p| p.loc == loc),
        ArgPass::Indirect { pointer } => *pointer == loc,
    })
}

/// Argument pieces live in `x0`-`x7`, `v0`-`v7` or on the stack; return
/// pieces in the same registers. General registers carry 1-8 bytes,
/// vector registers 4, 8 or 16.
fn check_piece(i: usize, p: &Piece, ret: bool) -> Result<()> {
    let ok = match p.loc {
        Loc::Gpr(r) => r <= 7 && (1..=8).contains(&p.size),
        Loc::Vec(r) => r <= 7 && matches!(p.size, 4 | 8 | 16) && p.ext == Ext::None,
        Loc::Stack(_) => !ret,
        Loc::X87(_) => false,
    };
    // A narrow stack piece with an Ext is widened to its 8-byte slot.
    let ext_ok = p.ext == Ext::None
        || matches!(
            (p.loc, p.size),
            (Loc::Gpr(_), 1 | 2 | 4) | (Loc::Stack(_), _)
        );
    if !ok || !ext_ok {
        return Err(asm_err(format!(
            "{}: cannot move a {}-byte piece{} in {}",
            who(i),
            p.size,
            if p.ext == Ext::None {
                ""
            } else {
                " (extended)"
            },
            p.loc.name(crate::abi::Arch::Aarch64)
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Call stubs.
// ---------------------------------------------------------------------------

/// Where things sit in a framed stub's frame (offsets from `sp`).
struct StubFrame {
    frame: Frame,
    /// Where `rvalue` is kept, when the result is stored after the call.
    rvalue_slot: Option<u64>,
    /// Each by-reference argument's copy.
    copies: Vec<Option<u64>>,
    /// The buffer a null `rvalue` returns into.
    sret_temp: Option<u64>,
}

impl StubFrame {
    fn layout(plan: &CallPlan, form: EntryForm) -> Result<StubFrame> {
        // Offsets from the start of the locals first; the outgoing area
        // (split frames only) comes first.
        let mut at = u64::from(plan.stack_bytes);
        let mut take = |bytes: u64| {
            let slot = at;
            at = round16(at + bytes);
            slot
        };
        let rvalue_slot = (form == EntryForm::Libffi
            && matches!(plan.ret.pass, RetPass::Direct(_)))
        .then(|| take(8));
        let copies: Vec<Option<u64>> = plan
            .args
            .iter()
            .map(|a| matches!(a.pass, ArgPass::Indirect { .. }).then(|| take(a.ty.size() as u64)))
            .collect();
        let sret_temp = (form == EntryForm::Libffi
            && matches!(plan.ret.pass, RetPass::Indirect { .. }))
        .then(|| take(plan.ret.ty.size() as u64));
        let frame = Frame::new(round16(at), plan.stack_bytes > 0)?;
        let base = frame.locals_at();
        Ok(StubFrame {
            frame,
            rvalue_slot: rvalue_slot.map(|o| o + base),
            copies: copies.into_iter().map(|c| c.map(|o| o + base)).collect(),
            sret_temp: sret_temp.map(|o| o + base),
        })
    }
}

struct Stub<'a> {
    ops: Ops,
    frame: Vec<FrameStep>,
    plan: &'a CallPlan,
    form: EntryForm,
    /// Which libffi-form argument's address `x11` holds.
    arg_in_x11: Option<usize>,
    /// The argument base: `x2` where it arrived, or `x10` when an
    /// argument needs `x2`.
    base: u8,
}

/// Assembles the call stub for `plan` in `form`; see the module docs.
pub fn compile_call(plan: &CallPlan, form: EntryForm) -> Result<Vec<u8>> {
    compile_call_with_unwind(plan, form).map(|c| c.bytes)
}

/// [`compile_call`] with the stub's frame description (none for a tail
/// stub).
///
/// ```
/// use jitffi::{classify::classify, emit::{aarch64, EntryForm, FrameChange::*}, plan::Loc, Abi, Type};
/// let plan = classify(Abi::Aapcs64, &Type::i32(), &[Type::i32()], None).unwrap();
/// let code = aarch64::compile_call_with_unwind(&plan, EntryForm::Libffi).unwrap();
/// let (sp, fp, lr) = (Loc::Gpr(31), Loc::Gpr(29), Loc::Gpr(30));
/// let changes: Vec<_> = code.frame.iter().map(|s| s.change).take(4).collect();
/// // stp x29, x30, [sp, #-32]! (the record and a slot for rvalue); mov x29, sp
/// assert_eq!(changes, [
///     Cfa { reg: sp, offset: 32 }, Saved { reg: fp, offset: -32 }, Saved { reg: lr, offset: -24 },
///     Cfa { reg: fp, offset: 32 },
/// ]);
/// assert_eq!(code.frame[0].offset, 4);
/// ```
pub fn compile_call_with_unwind(plan: &CallPlan, form: EntryForm) -> Result<Code> {
    check_plan(plan)?;
    let frame = StubFrame::layout(plan, form)?;
    let tail = frame.frame.locals == 0
        && (form == EntryForm::Packed || matches!(plan.ret.pass, RetPass::Void));
    let mut s = Stub {
        ops: VecAssembler::new(0),
        frame: Vec::with_capacity(if tail { 0 } else { 10 }),
        plan,
        form,
        arg_in_x11: None,
        base: if uses_x2(plan) { BASE } else { 2 },
    };
    if !tail {
        frame.frame.enter(&mut s.ops, &mut s.frame)?;
    }
    s.entry(&frame)?;
    s.copies(&frame)?;
    s.addresses(&frame)?;
    s.registers()?;
    let ops = &mut s.ops;
    if let Some(chain) = chain_register(plan) {
        a64!(ops ; mov X(chain), X(CHAIN_STASH));
    }
    if tail {
        a64!(ops ; br X(FN));
        return finish(s.ops, s.frame);
    }
    a64!(ops ; blr X(FN));
    if let Some(slot) = frame.rvalue_slot {
        s.store_return(slot)?;
    }
    frame.frame.leave(&mut s.ops, &mut s.frame);
    finish(s.ops, s.frame)
}

/// Whether an argument, its address or the return buffer's address
/// travels in `x2`, so the argument base must move out of it first.
fn uses_x2(plan: &CallPlan) -> bool {
    uses_register(plan, Loc::Gpr(2)) || sret_register(plan) == Some(2)
}

impl Stub<'_> {
    /// Moves `fn`, the argument base, the chain and `rvalue` out of the
    /// argument registers, and points `x8` at the return buffer.
    fn entry(&mut self, frame: &StubFrame) -> Result<()> {
        let ops = &mut self.ops;
        a64!(ops ; mov X(FN), x0);
        if self.base == BASE && !self.plan.args.is_empty() {
            a64!(ops ; mov X(BASE), x2);
        }
        if self.plan.static_chain.is_some() {
            a64!(ops ; mov X(CHAIN_STASH), x3);
        }
        if let Some(slot) = frame.rvalue_slot {
            store_via(ops, Width::Gpr(8), 1, Mem::sp(slot)?, SCRATCH)?;
        }
        if let Some(sret) = sret_register(self.plan) {
            match frame.sret_temp {
                // A null rvalue gets the frame's buffer (libffi allows a
                // null rvalue for any return type).
                Some(temp) => {
                    address(ops, sret, SP, temp as i64, SCRATCH)?;
                    a64!(ops ; cmp x1, 0 ; csel X(sret), x1, X(sret), ne);
                }
                None => a64!(ops ; mov X(sret), x1),
            }
        }
        Ok(())
    }

    /// Where argument `i`'s bytes start, `x11` loaded with its address
    /// first in the libffi form.
    fn source(&mut self, i: usize) -> Result<Mem> {
        match self.form {
            EntryForm::Packed => Mem::at(self.base, u64::from(self.plan.packed_offsets[i])),
            EntryForm::Libffi => {
                if self.arg_in_x11 != Some(i) {
                    let slot = Mem::at(self.base, 8 * i as u64)?;
                    load(&mut self.ops, Width::Gpr(8), ARG, slot)?;
                    self.arg_in_x11 = Some(i);
                }
                Ok(Mem { base: ARG, off: 0 })
            }
        }
    }

    /// Stack pieces and by-reference copies.
    fn copies(&mut self, frame: &StubFrame) -> Result<()> {
        for (i, a) in self.plan.args.iter().enumerate() {
            match &a.pass {
                ArgPass::Indirect { .. } => {
                    let src = self.source(i)?;
                    let dst = Mem::sp(frame.copies[i].unwrap_or(0))?;
                    copy_bytes(&mut self.ops, src, dst, a.ty.size() as u32)?;
                }
                ArgPass::Direct(pieces) => {
                    for p in pieces {
                        let Loc::Stack(off) = p.loc else {
                            continue;
                        };
                        let src = self.source(i)?.plus(i64::from(p.offset));
                        let dst = Mem::sp(u64::from(off))?;
                        // A narrow integer fills its whole 8-byte slot,
                        // extended as the plan says (the plan gives no Ext
                        // where slots are packed, as on Apple's stack).
                        let widen = match p.ext {
                            _ if u64::from(off) + 8 > u64::from(self.plan.stack_bytes) => None,
                            Ext::Sign => Some(Width::Signed(p.size as u8)),
                            Ext::Zero => Some(Width::Gpr(p.size as u8)),
                            Ext::None => None,
                        };
                        match widen {
                            Some(w) => {
                                load(&mut self.ops, w, T1, src)?;
                                store_via(&mut self.ops, Width::Gpr(8), T1, dst, SCRATCH)?;
                            }
                            None => copy_bytes(&mut self.ops, src, dst, p.size)?,
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The copies' addresses, in registers or on the stack.
    fn addresses(&mut self, frame: &StubFrame) -> Result<()> {
        for (i, a) in self.plan.args.iter().enumerate() {
            let ArgPass::Indirect { pointer } = a.pass else {
                continue;
            };
            let copy = frame.copies[i].unwrap_or(0) as i64;
            let ops = &mut self.ops;
            match pointer {
                Loc::Gpr(r) => address(ops, r, SP, copy, SCRATCH)?,
                Loc::Stack(off) => {
                    address(ops, T0, SP, copy, SCRATCH)?;
                    store_via(ops, Width::Gpr(8), T0, Mem::sp(u64::from(off))?, SCRATCH)?;
                }
                _ => return Err(asm_err(format!("argument {i}: bad address location"))),
            }
        }
        Ok(())
    }

    /// Register pieces, last: nothing after them touches an argument
    /// register.
    fn registers(&mut self) -> Result<()> {
        let in_regs_of = |i: usize| -> Vec<&Piece> {
            match &self.plan.args[i].pass {
                ArgPass::Direct(pieces) => pieces
                    .iter()
                    .filter(|p| !matches!(p.loc, Loc::Stack(_)))
                    .collect(),
                ArgPass::Indirect { .. } => Vec::new(),
            }
        };
        // The libffi form loads two neighbours' addresses with one ldp:
        // argument i's into x11, i + 1's into x14.
        let mut in_x14: Option<usize> = None;
        for i in 0..self.plan.args.len() {
            let in_regs = in_regs_of(i);
            if in_regs.is_empty() {
                continue;
            }
            let base = if in_x14 == Some(i) {
                Mem { base: T2, off: 0 }
            } else {
                let next = i + 1 < self.plan.args.len() && !in_regs_of(i + 1).is_empty();
                if self.form == EntryForm::Libffi
                    && next
                    && self.arg_in_x11 != Some(i)
                    && 8 * i < 504
                {
                    let (b, o) = (self.base, 8 * i as i32);
                    let ops = &mut self.ops;
                    a64!(ops ; ldp X(ARG), X(T2), [X(b), o]);
                    self.arg_in_x11 = Some(i);
                    in_x14 = Some(i + 1);
                }
                self.source(i)?
            };
            let mut k = 0;
            while k < in_regs.len() {
                let p = in_regs[k];
                let m = base.plus(i64::from(p.offset));
                // Two neighbouring pieces of one width in consecutive
                // vector registers (HFA members): one ldp.
                if let (Loc::Vec(r), Some(q)) = (p.loc, in_regs.get(k + 1)) {
                    if q.loc == Loc::Vec(r + 1)
                        && q.size == p.size
                        && q.offset == p.offset + p.size
                        && load_pair(&mut self.ops, Width::Vec(p.size as u8), r, r + 1, m)
                    {
                        k += 2;
                        continue;
                    }
                }
                let ops = &mut self.ops;
                match p.loc {
                    Loc::Gpr(r) => match p.ext {
                        Ext::Sign => load(ops, Width::Signed(p.size as u8), r, m)?,
                        Ext::Zero | Ext::None if matches!(p.size, 1 | 2 | 4 | 8) => {
                            load(ops, Width::Gpr(p.size as u8), r, m)?
                        }
                        _ => load_bytes(ops, r, m, p.size)?,
                    },
                    Loc::Vec(r) => load(ops, Width::Vec(p.size as u8), r, m)?,
                    _ => return Err(asm_err(format!("argument {i}: bad piece location"))),
                }
                k += 1;
            }
        }
        Ok(())
    }

    /// The libffi form's result: each return piece stored through the
    /// saved `rvalue`, unless it is null.
    fn store_return(&mut self, rvalue_slot: u64) -> Result<()> {
        let RetPass::Direct(pieces) = &self.plan.ret.pass else {
            return Ok(());
        };
        let ops = &mut self.ops;
        load(ops, Width::Gpr(8), RECORD, Mem::sp(rvalue_slot)?)?;
        a64!(ops ; cbz X(RECORD), >done);
        let dst = Mem {
            base: RECORD,
            off: 0,
        };
        let mut k = 0;
        while k < pieces.len() {
            let p = &pieces[k];
            let m = dst.plus(i64::from(p.offset));
            if let (Loc::Vec(r), Some(q)) = (p.loc, pieces.get(k + 1)) {
                if q.loc == Loc::Vec(r + 1)
                    && q.size == p.size
                    && q.offset == p.offset + p.size
                    && store_pair(ops, Width::Vec(p.size as u8), r, r + 1, m)
                {
                    k += 2;
                    continue;
                }
            }
            match (p.loc, p.ext) {
                // A narrow integer comes back as a whole ffi_arg.
                (Loc::Gpr(r), Ext::Sign) => {
                    match p.size {
                        1 => a64!(ops ; sxtb X(r), W(r)),
                        2 => a64!(ops ; sxth X(r), W(r)),
                        _ => a64!(ops ; sxtw X(r), W(r)),
                    }
                    store_via(ops, Width::Gpr(8), r, m, SCRATCH)?;
                }
                (Loc::Gpr(r), Ext::Zero) => {
                    match p.size {
                        1 => a64!(ops ; uxtb W(r), W(r)),
                        2 => a64!(ops ; uxth W(r), W(r)),
                        _ => a64!(ops ; mov W(r), W(r)),
                    }
                    store_via(ops, Width::Gpr(8), r, m, SCRATCH)?;
                }
                (Loc::Gpr(r), Ext::None) => store_bytes(ops, r, m, p.size, SCRATCH)?,
                (Loc::Vec(r), _) => store_via(ops, Width::Vec(p.size as u8), r, m, SCRATCH)?,
                _ => return Err(asm_err("return: bad piece location")),
            }
            k += 1;
        }
        a64!(ops ; done:);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Closure thunks.
// ---------------------------------------------------------------------------

/// Where the thunk finds argument `i`'s bytes for the handler.
#[derive(Clone, Copy, Debug)]
enum ArgHome {
    /// A slot at this `sp` offset, filled by the thunk.
    Slot(u64),
    /// The caller's stack area, at this plan offset.
    Caller(u32),
    /// The pointer that came in this location (by-reference arguments).
    Pointer(Loc),
}

struct ThunkFrame {
    frame: Frame,
    /// `sp` offset of the argument-pointer array.
    args_at: u64,
    homes: Vec<ArgHome>,
    /// `sp` offset of the return buffer (none for a value returned in
    /// memory).
    ret_buffer: Option<u64>,
}

impl ThunkFrame {
    /// Value slots are 8-aligned (16 for 16-aligned types) and packed, so
    /// neighbouring register arguments are stored in pairs.
    fn layout(plan: &CallPlan) -> Result<ThunkFrame> {
        let mut at = 8 * plan.args.len() as u64;
        let mut homes = Vec::with_capacity(plan.args.len());
        for a in &plan.args {
            homes.push(match &a.pass {
                ArgPass::Indirect { pointer } => ArgHome::Pointer(*pointer),
                ArgPass::Direct(pieces) => match whole_on_stack(pieces) {
                    Some(off) => ArgHome::Caller(off),
                    None => {
                        let align = (a.ty.align() as u64).clamp(8, 16);
                        let slot = at.div_ceil(align) * align;
                        at = slot + slot_size(a.ty.size());
                        ArgHome::Slot(slot)
                    }
                },
            });
        }
        // A void result still gets a buffer: handlers may store an ffi_arg.
        let ret_buffer = match plan.ret.pass {
            RetPass::Direct(_) | RetPass::Void => {
                let slot = round16(at);
                at = slot + round16(plan.ret.ty.size() as u64).max(16);
                Some(slot)
            }
            RetPass::Indirect { .. } => None,
        };
        let frame = Frame::new(round16(at), false)?;
        let base = frame.locals_at();
        for h in &mut homes {
            if let ArgHome::Slot(slot) = h {
                *slot += base;
            }
        }
        Ok(ThunkFrame {
            frame,
            args_at: base,
            homes,
            ret_buffer: ret_buffer.map(|b| b + base),
        })
    }
}

/// A value slot's size: the value rounded up to whole 8-byte words, which
/// the thunk stores register pieces as.
fn slot_size(value_size: usize) -> u64 {
    (value_size as u64).max(8).div_ceil(8) * 8
}

/// The plan offset of an argument that sits whole and in order in the
/// caller's stack area.
fn whole_on_stack(pieces: &[Piece]) -> Option<u32> {
    let first = pieces.first()?;
    let Loc::Stack(start) = first.loc else {
        return None;
    };
    let base = start.checked_sub(first.offset)?;
    pieces
        .iter()
        .all(|p| p.loc == Loc::Stack(base + p.offset))
        .then_some(base)
}

/// Assembles the closure thunk for `plan`; see the module docs.
pub fn compile_closure_thunk(plan: &CallPlan) -> Result<Vec<u8>> {
    compile_closure_thunk_with_unwind(plan).map(|c| c.bytes)
}

/// [`compile_closure_thunk`] with the thunk's frame description.
///
/// ```
/// use jitffi::{classify::classify, emit::{aarch64, FrameChange}, plan::Loc, Abi, Type};
/// let plan = classify(Abi::Aapcs64, &Type::f64(), &[Type::f64()], None).unwrap();
/// let code = aarch64::compile_closure_thunk_with_unwind(&plan).unwrap();
/// // The last step: after `ldp x29, x30, [sp], #16` the entry state is back.
/// let last = code.frame[code.frame.len() - 3];
/// assert_eq!(last.change, FrameChange::Cfa { reg: Loc::Gpr(31), offset: 0 });
/// assert_eq!(last.offset as usize, code.bytes.len() - 4);
/// ```
pub fn compile_closure_thunk_with_unwind(plan: &CallPlan) -> Result<Code> {
    check_plan(plan)?;
    let frame = ThunkFrame::layout(plan)?;
    let mut ops: Ops = VecAssembler::new(0);
    let mut steps = Vec::with_capacity(10);
    // The record's register (x17, or a Go closure's chain register) must
    // survive the spills: only x9-x16 are used.
    frame.frame.enter(&mut ops, &mut steps)?;
    spill_arguments(&mut ops, plan, &frame)?;
    point_at_arguments(&mut ops, plan, &frame)?;
    // fun(cif, rvalue, args, user_data): rvalue first, as the sret address
    // may arrive in x0 or x3.
    match (frame.ret_buffer, sret_register(plan)) {
        (Some(buf), _) => address(&mut ops, 1, SP, buf as i64, SCRATCH)?,
        (None, Some(sret)) => a64!(ops ; mov x1, X(sret)),
        (None, None) => return Err(asm_err("a result in memory without its address")),
    }
    if let Some(chain) = chain_register(plan) {
        // The handler's data is the Go record itself.
        const _: () = assert!(go_record::FUN == go_record::CIF + 8);
        a64!(ops
            ; mov x3, X(chain)
            ; ldp x0, X(SCRATCH), [x3, go_record::CIF as i32]
        );
    } else {
        const _: () = assert!(record::FUN == record::CIF + 8 && record::CIF < 512);
        a64!(ops
            ; ldp x0, X(SCRATCH), [X(RECORD), record::CIF as i32]
            ; ldr x3, [X(RECORD), record::USER_DATA as u32]
        );
    }
    address(&mut ops, 2, SP, frame.args_at as i64, SCRATCH)?;
    a64!(ops ; blr X(SCRATCH));
    if let (Some(buf), RetPass::Direct(pieces)) = (frame.ret_buffer, &plan.ret.pass) {
        load_return(&mut ops, pieces, Mem::sp(buf)?)?;
    }
    frame.frame.leave(&mut ops, &mut steps);
    finish(ops, steps)
}

/// One register piece's store into a value slot.
struct Spill {
    reg: u8,
    width: Width,
    at: Mem,
    /// Stored at its exact size (it ends where the slot ends).
    exact: Option<u32>,
}

/// Stores every register piece into its argument's slot (general pieces
/// as whole words: slots are whole words), neighbours in pairs across
/// arguments, then copies the stack pieces of arguments that are not
/// whole on the stack.
fn spill_arguments(ops: &mut Ops, plan: &CallPlan, frame: &ThunkFrame) -> Result<()> {
    let cfa = frame.frame.cfa_from_fp();
    let mut spills: Vec<Spill> = Vec::new();
    let mut stack_copies: Vec<(Mem, Mem, u32)> = Vec::new();
    for (i, a) in plan.args.iter().enumerate() {
        let (ArgPass::Direct(pieces), ArgHome::Slot(slot)) = (&a.pass, frame.homes[i]) else {
            continue;
        };
        let size = slot_size(a.ty.size()) as i64;
        let slot = Mem::sp(slot)?;
        for p in pieces {
            let at = slot.plus(i64::from(p.offset));
            match p.loc {
                Loc::Gpr(r) => spills.push(Spill {
                    reg: r,
                    width: Width::Gpr(8),
                    at,
                    exact: (i64::from(p.offset) + 8 > size).then_some(p.size),
                }),
                Loc::Vec(r) => spills.push(Spill {
                    reg: r,
                    width: Width::Vec(p.size as u8),
                    at,
                    exact: None,
                }),
                Loc::Stack(off) => {
                    let src = Mem::at(FP, cfa + u64::from(off))?;
                    stack_copies.push((src, at, p.size));
                }
                Loc::X87(_) => return Err(asm_err(format!("argument {i}: x87 piece"))),
            }
        }
    }
    let mut k = 0;
    while k < spills.len() {
        let a = &spills[k];
        if let Some(b) = spills.get(k + 1) {
            if a.exact.is_none()
                && b.exact.is_none()
                && a.width == b.width
                && b.at.off == a.at.off + a.width.size()
                && store_pair(ops, a.width, a.reg, b.reg, a.at)
            {
                k += 2;
                continue;
            }
        }
        match a.exact {
            Some(n) => store_bytes(ops, a.reg, a.at, n, SCRATCH)?,
            None => store_via(ops, a.width, a.reg, a.at, SCRATCH)?,
        }
        k += 1;
    }
    for (src, dst, n) in stack_copies {
        copy_bytes_thunk(ops, src, dst, n)?;
    }
    Ok(())
}

/// A copy inside a thunk, before the handler call: every scratch register
/// but the record's is free.
fn copy_bytes_thunk(ops: &mut Ops, src: Mem, dst: Mem, n: u32) -> Result<()> {
    // copy_bytes clobbers x17 only through store_via's scratch, which is
    // never needed for thunk slots within reach of sp; refuse otherwise.
    if n > COPY_LOOP_MIN || dst.off >= 4096 * 16 {
        return Err(asm_err(
            "a mixed register and stack argument too large to gather",
        ));
    }
    let mut done = 0;
    while done < n {
        let width = match n - done {
            8.. => 8,
            4.. => 4,
            2.. => 2,
            _ => 1,
        };
        load_via(
            ops,
            Width::Gpr(width as u8),
            T1,
            src.plus(i64::from(done)),
            SCRATCH,
        )?;
        store_via(
            ops,
            Width::Gpr(width as u8),
            T1,
            dst.plus(i64::from(done)),
            SCRATCH,
        )?;
        done += width;
    }
    Ok(())
}

/// Fills `args[i]` at `sp + 8i`, two neighbours at a time.
fn point_at_arguments(ops: &mut Ops, plan: &CallPlan, frame: &ThunkFrame) -> Result<()> {
    let n = frame.homes.len();
    let mut i = 0;
    while i < n {
        let cfa = frame.frame.cfa_from_fp();
        address_of_argument(ops, plan, frame.homes[i], i, FN, cfa)?;
        let at = Mem::sp(frame.args_at + 8 * i as u64)?;
        if i + 1 < n {
            address_of_argument(ops, plan, frame.homes[i + 1], i + 1, BASE, cfa)?;
            if !store_pair(ops, Width::Gpr(8), FN, BASE, at) {
                store_via(ops, Width::Gpr(8), FN, at, SCRATCH)?;
                store_via(ops, Width::Gpr(8), BASE, at.plus(8), SCRATCH)?;
            }
            i += 2;
        } else {
            store_via(ops, Width::Gpr(8), FN, at, SCRATCH)?;
            i += 1;
        }
    }
    Ok(())
}

/// `r` = what `args[i]` holds.
fn address_of_argument(
    ops: &mut Ops,
    plan: &CallPlan,
    home: ArgHome,
    i: usize,
    r: u8,
    cfa: u64,
) -> Result<()> {
    match home {
        ArgHome::Slot(slot) => address(ops, r, SP, slot as i64, SCRATCH),
        ArgHome::Caller(off) => address(ops, r, FP, cfa as i64 + i64::from(off), SCRATCH),
        ArgHome::Pointer(Loc::Gpr(p)) => {
            a64!(ops ; mov X(r), X(p));
            Ok(())
        }
        ArgHome::Pointer(Loc::Stack(off)) => {
            load(ops, Width::Gpr(8), r, Mem::at(FP, cfa + u64::from(off))?)
        }
        ArgHome::Pointer(other) => Err(asm_err(format!(
            "argument {i}: address in {}",
            other.name(plan.arch)
        ))),
    }
}

/// Loads the return pieces from the handler's buffer: narrow integers
/// widened from their own size, other general pieces as whole words (the
/// buffer is at least 16 bytes), vector pieces at their size, neighbours
/// in pairs.
fn load_return(ops: &mut Ops, pieces: &[Piece], buf: Mem) -> Result<()> {
    let mut k = 0;
    while k < pieces.len() {
        let p = &pieces[k];
        let m = buf.plus(i64::from(p.offset));
        if let Some(q) = pieces.get(k + 1) {
            let pair = match (p.loc, q.loc) {
                (Loc::Gpr(r), Loc::Gpr(s))
                    if p.ext == Ext::None && q.ext == Ext::None && q.offset == p.offset + 8 =>
                {
                    Some((Width::Gpr(8), r, s))
                }
                (Loc::Vec(r), Loc::Vec(s)) if q.size == p.size && q.offset == p.offset + p.size => {
                    Some((Width::Vec(p.size as u8), r, s))
                }
                _ => None,
            };
            if let Some((w, r, s)) = pair {
                if load_pair(ops, w, r, s, m) {
                    k += 2;
                    continue;
                }
            }
        }
        match (p.loc, p.ext) {
            (Loc::Gpr(r), Ext::Sign) => load(ops, Width::Signed(p.size as u8), r, m)?,
            (Loc::Gpr(r), Ext::Zero) => load(ops, Width::Gpr(p.size as u8), r, m)?,
            (Loc::Gpr(r), Ext::None) => load(ops, Width::Gpr(8), r, m)?,
            (Loc::Vec(r), _) => load(ops, Width::Vec(p.size as u8), r, m)?,
            _ => return Err(asm_err("return: bad piece location")),
        }
        k += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Abi;
    use crate::classify::classify;
    use crate::types::Type;

    fn words(code: &[u8]) -> Vec<u32> {
        code.chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect()
    }

    fn plan(ret: Type, args: &[Type]) -> CallPlan {
        classify(Abi::Aapcs64, &ret, args, None).unwrap()
    }

    /// A deterministic generator of types: scalars, nested structs,
    /// unions, arrays and complex types of every size class.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn scalar(&mut self) -> Type {
            match self.next() % 14 {
                0 => Type::i8(),
                1 => Type::u16(),
                2 => Type::i32(),
                3 => Type::u64(),
                4 => Type::f32(),
                5 => Type::f64(),
                6 => Type::long_double(),
                7 => Type::i128(),
                8 => Type::pointer(),
                9 => Type::u8(),
                10 => Type::complex_f32(),
                11 => Type::complex_f64(),
                12 => Type::i16(),
                _ => Type::u32(),
            }
        }

        fn ty(&mut self, depth: u32) -> Type {
            if depth == 0 {
                return self.scalar();
            }
            match self.next() % 6 {
                0 | 1 => self.scalar(),
                2 => {
                    let n = 1 + self.next() % 5;
                    let fields: Vec<Type> = (0..n).map(|_| self.ty(depth - 1)).collect();
                    Type::structure(fields).unwrap()
                }
                3 => {
                    let float = if self.next() % 2 == 0 {
                        Type::f32()
                    } else {
                        Type::f64()
                    };
                    let n = 1 + self.next() % 4;
                    Type::structure((0..n).map(|_| float.clone())).unwrap()
                }
                4 => {
                    let n = 1 + (self.next() % 40) as usize;
                    Type::array(self.ty(depth - 1), n).unwrap()
                }
                _ => {
                    let n = 1 + self.next() % 3;
                    let fields: Vec<Type> = (0..n).map(|_| self.ty(depth - 1)).collect();
                    Type::union(fields).unwrap()
                }
            }
        }
    }

    /// Every shape assembles in both forms and as a thunk: no immediate
    /// dynasm would refuse (it panics on those) slips through.
    #[test]
    fn random_shapes_assemble_without_panicking() {
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        for round in 0..3000 {
            let n = (g.next() % 14) as usize;
            let args: Vec<Type> = (0..n).map(|_| g.ty(3)).collect();
            let ret = if round % 7 == 0 {
                Type::void()
            } else {
                g.ty(2)
            };
            let Ok(p) = classify(Abi::Aapcs64, &ret, &args, None) else {
                continue;
            };
            for form in [EntryForm::Libffi, EntryForm::Packed] {
                let code =
                    compile_call_with_unwind(&p, form).unwrap_or_else(|e| panic!("{p}: {e}"));
                assert_eq!(code.bytes.len() % 4, 0);
                assert!(code.frame.windows(2).all(|w| w[0].offset <= w[1].offset));
            }
            compile_closure_thunk_with_unwind(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
    }

    /// Copies of every size up to past the loop threshold, and huge ones.
    #[test]
    fn by_reference_copies_of_any_size_assemble() {
        for n in (17..=300).chain([4095, 4096, 65_537, 200_000]) {
            let big = Type::structure([Type::array(Type::u8(), n).unwrap()]).unwrap();
            let p = plan(Type::void(), &[big.clone(), Type::i32()]);
            for form in [EntryForm::Libffi, EntryForm::Packed] {
                compile_call(&p, form).unwrap();
            }
            compile_closure_thunk(&p).unwrap();
            let p = plan(big, &[]);
            compile_call(&p, EntryForm::Libffi).unwrap();
            compile_closure_thunk(&p).unwrap();
        }
    }

    #[test]
    fn many_stack_arguments_reach_far_offsets() {
        let args: Vec<Type> = (0..1000)
            .map(|i| if i % 3 == 0 { Type::f64() } else { Type::u8() })
            .collect();
        let p = plan(Type::i32(), &args);
        assert!(p.stack_bytes > 4096);
        for form in [EntryForm::Libffi, EntryForm::Packed] {
            compile_call(&p, form).unwrap();
        }
        compile_closure_thunk(&p).unwrap();
    }

    #[test]
    fn packed_s2_is_a_four_instruction_tail_stub() {
        let p = plan(Type::i32(), &[Type::i32(), Type::i32()]);
        let code = compile_call_with_unwind(&p, EntryForm::Packed).unwrap();
        assert!(code.frame.is_empty());
        // mov x9, x0; ldrsw x0, [x2]; ldrsw x1, [x2, #8]; br x9
        assert_eq!(
            words(&code.bytes),
            [0xAA00_03E9, 0xB980_0040, 0xB980_0841, 0xD61F_0120]
        );
        // With a third integer argument x2 is needed: the base moves to x10.
        let p = plan(Type::i32(), &[Type::i32(), Type::i32(), Type::i32()]);
        let w = words(&compile_call(&p, EntryForm::Packed).unwrap());
        assert_eq!(w[..2], [0xAA00_03E9, 0xAA02_03EA]); // mov x9, x0; mov x10, x2
    }

    #[test]
    fn foreign_and_malformed_plans_are_refused() {
        let x64 = classify(Abi::SysV64, &Type::i32(), &[Type::i32()], None).unwrap();
        assert!(compile_call(&x64, EntryForm::Libffi).is_err());
        let mut p = plan(Type::i32(), &[Type::i32()]);
        p.callee_saved.retain(|r| *r != Loc::Gpr(19));
        assert!(compile_call(&p, EntryForm::Libffi).is_err());
        let mut p = plan(Type::i32(), &[Type::i32()]);
        if let ArgPass::Direct(pieces) = &mut p.args[0].pass {
            pieces[0].loc = Loc::Gpr(9);
        }
        assert!(compile_call(&p, EntryForm::Libffi).is_err());
        assert!(compile_closure_thunk(&p).is_err());
        let mut p = plan(Type::f64(), &[]);
        if let RetPass::Direct(pieces) = &mut p.ret.pass {
            pieces[0].size = 3;
        }
        assert!(compile_call(&p, EntryForm::Libffi).is_err());
        let mut p = plan(Type::i32(), &[Type::i32()]);
        p.static_chain = Some(Loc::Gpr(0));
        assert!(compile_call(&p, EntryForm::Libffi).is_err());
    }
}

/// The emitted code run for real (on AArch64 hosts, or under qemu-aarch64
/// in CI), against Rust `extern "C"` functions that the compiler lays out
/// by AAPCS64. The C-compiled oracles are in `tests/aapcs64_*.rs`.
#[cfg(all(test, target_arch = "aarch64"))]
mod run {
    use std::ffi::c_void;

    use crate::{Cif, RawClosure, Type};

    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct F3 {
        x: f32,
        y: f32,
        z: f32,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Big {
        a: [u64; 5],
    }

    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Odd7 {
        b: [u8; 7],
    }

    fn f3() -> Type {
        Type::structure([Type::f32(), Type::f32(), Type::f32()]).unwrap()
    }

    fn big() -> Type {
        Type::structure([Type::array(Type::u64(), 5).unwrap()]).unwrap()
    }

    fn odd7() -> Type {
        Type::structure([Type::array(Type::u8(), 7).unwrap()]).unwrap()
    }

    fn ptrs<const N: usize>(p: [*const c_void; N]) -> [*const c_void; N] {
        p
    }

    extern "C" fn mix(a: i8, b: F3, c: i128, d: f64, e: Odd7, f: Big, g: u16) -> f64 {
        let e_sum: u32 = e.b.iter().map(|&x| u32::from(x)).sum();
        let f_sum: u64 = f.a.iter().sum();
        f64::from(a)
            + f64::from(b.x + 2.0 * b.y + 4.0 * b.z)
            + (c >> 64) as f64
            + (c as u64 & 0xFFFF) as f64
            + d
            + f64::from(e_sum)
            + f_sum as f64
            + f64::from(g)
    }

    #[test]
    fn mixed_arguments_both_forms() {
        let cif = Cif::new(
            Type::f64(),
            &[
                Type::i8(),
                f3(),
                Type::i128(),
                Type::f64(),
                odd7(),
                big(),
                Type::u16(),
            ],
        )
        .unwrap();
        let (a, b, c, d) = (
            -3i8,
            F3 {
                x: 1.0,
                y: 2.0,
                z: 3.0,
            },
            (5i128 << 64) | 7,
            0.5f64,
        );
        let (e, f, g) = (
            Odd7 {
                b: [1, 2, 3, 4, 5, 6, 7],
            },
            Big {
                a: [10, 20, 30, 40, 50],
            },
            65_000u16,
        );
        let want = mix(a, b, c, d, e, f, g);
        let avalue = ptrs([
            (&a as *const i8).cast(),
            (&b as *const F3).cast(),
            (&c as *const i128).cast(),
            (&d as *const f64).cast(),
            (&e as *const Odd7).cast(),
            (&f as *const Big).cast(),
            (&g as *const u16).cast(),
        ]);
        let mut r = 0f64;
        // SAFETY: `mix` has the cif's signature; avalue points at each argument.
        unsafe {
            cif.call_raw(
                mix as *const c_void,
                (&mut r as *mut f64).cast(),
                avalue.as_ptr(),
            )
        };
        assert_eq!(r, want);
        let mut buf = vec![0u8; cif.packed_size() + 16];
        let at = buf.as_mut_ptr().align_offset(16);
        let base = buf[at..].as_mut_ptr();
        for (i, &off) in cif.packed_offsets().iter().enumerate() {
            let size = cif.args()[i].size();
            // SAFETY: the buffer holds packed_size bytes from `base`; each
            // source is a live value of `size` bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(avalue[i].cast::<u8>(), base.add(off as usize), size)
            };
        }
        // SAFETY: as above, in the packed form.
        let r: f64 =
            unsafe { cif.call_packed(mix as *const c_void, std::ptr::null_mut(), base.cast()) };
        assert_eq!(r, want);
    }

    extern "C" fn make_big(seed: u64) -> Big {
        Big {
            a: [seed, seed + 1, seed + 2, seed + 3, seed + 4],
        }
    }

    extern "C" fn narrow(x: i32) -> i8 {
        x as i8
    }

    #[test]
    fn sret_and_narrow_returns() {
        let cif = Cif::new(big(), &[Type::u64()]).unwrap();
        let seed = 40u64;
        let mut out = Big { a: [0; 5] };
        let avalue = [(&seed as *const u64).cast::<c_void>()];
        // SAFETY: make_big has the cif's signature; out is a Big.
        unsafe {
            cif.call_raw(
                make_big as *const c_void,
                (&mut out as *mut Big).cast(),
                avalue.as_ptr(),
            )
        };
        assert_eq!(out, make_big(40));
        // A null rvalue is allowed: the stub supplies a buffer.
        // SAFETY: as above.
        unsafe {
            cif.call_raw(
                make_big as *const c_void,
                std::ptr::null_mut(),
                avalue.as_ptr(),
            )
        };

        let cif = Cif::new(Type::i8(), &[Type::i32()]).unwrap();
        let x = 0x1FFi32; // (i8) 0x1FF == -1
        let mut r = 0u64;
        let avalue = [(&x as *const i32).cast::<c_void>()];
        // SAFETY: narrow has the cif's signature; r is an ffi_arg.
        unsafe {
            cif.call_raw(
                narrow as *const c_void,
                (&mut r as *mut u64).cast(),
                avalue.as_ptr(),
            )
        };
        assert_eq!(r, u64::MAX, "sign-extended to a whole ffi_arg");
    }

    extern "C" fn many(
        a0: f64,
        a1: f64,
        a2: f64,
        a3: f64,
        a4: f64,
        a5: f64,
        a6: f64,
        a7: f64,
        i0: i64,
        i1: i64,
        i2: i64,
        i3: i64,
        i4: i64,
        i5: i64,
        i6: i64,
        i7: i64,
        s1: f32,
        s2: i128,
        s3: u8,
        s4: F3,
    ) -> f64 {
        a0 + 2.0 * a1
            + 3.0 * a2
            + 4.0 * a3
            + 5.0 * a4
            + 6.0 * a5
            + 7.0 * a6
            + 8.0 * a7
            + (i0 + 2 * i1 + 3 * i2 + 4 * i3 + 5 * i4 + 6 * i5 + 7 * i6 + 8 * i7) as f64
            + f64::from(s1) * 100.0
            + s2 as f64 * 1000.0
            + f64::from(s3) * 10_000.0
            + f64::from(s4.x + s4.y * 3.0 + s4.z * 9.0) * 100_000.0
    }

    /// Arguments that spill to the stack (a float in an 8-byte slot, a
    /// 16-aligned int128, an HFA when no v register is left), through a
    /// stub and through a closure thunk.
    #[test]
    fn stack_arguments_through_stub_and_thunk() {
        let mut tys = vec![Type::f64(); 8];
        tys.extend(vec![Type::i64(); 8]);
        tys.extend([Type::f32(), Type::i128(), Type::u8(), f3()]);
        let cif = Cif::new(Type::f64(), &tys).unwrap();
        assert!(cif.plan().stack_bytes >= 48);
        let d: Vec<f64> = (1..=8).map(f64::from).collect();
        let i: Vec<i64> = (1..=8).map(|v| v * 11).collect();
        let (s1, s2, s3, s4) = (
            0.25f32,
            -7i128,
            200u8,
            F3 {
                x: 1.0,
                y: 2.0,
                z: 3.0,
            },
        );
        let mut avalue: Vec<*const c_void> = d.iter().map(|v| (v as *const f64).cast()).collect();
        avalue.extend(i.iter().map(|v| (v as *const i64).cast::<c_void>()));
        avalue.extend([
            (&s1 as *const f32).cast::<c_void>(),
            (&s2 as *const i128).cast(),
            (&s3 as *const u8).cast(),
            (&s4 as *const F3).cast(),
        ]);
        let want = many(
            d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], i[0], i[1], i[2], i[3], i[4], i[5],
            i[6], i[7], s1, s2, s3, s4,
        );
        let mut r = 0f64;
        // SAFETY: many has the cif's signature; avalue points at every argument.
        unsafe {
            cif.call_raw(
                many as *const c_void,
                (&mut r as *mut f64).cast(),
                avalue.as_ptr(),
            )
        };
        assert_eq!(r, want);

        // The same call into a closure that forwards to `many` through the
        // stub again: the thunk must hand over exactly the same values.
        unsafe extern "C" fn forward(
            cif: *const c_void,
            ret: *mut c_void,
            args: *const *mut c_void,
            _ud: *mut c_void,
        ) {
            // SAFETY: RawClosure passes its own *const Cif; args holds one
            // pointer per argument of that cif.
            unsafe {
                let cif = &*cif.cast::<Cif>();
                cif.call_raw(many as *const c_void, ret, args.cast());
            }
        }
        let closure = RawClosure::new(&cif, forward, std::ptr::null_mut()).unwrap();
        let mut r2 = 0f64;
        // SAFETY: the closure has the cif's signature.
        unsafe {
            cif.call_raw(
                closure.code_ptr(),
                (&mut r2 as *mut f64).cast(),
                avalue.as_ptr(),
            )
        };
        assert_eq!(r2, want);
    }

    /// Closure returns: an HFA in v0-v2, an sret struct, a narrow integer
    /// the handler writes at its own width.
    #[test]
    fn closure_returns() {
        unsafe extern "C" fn hfa(
            _: *const c_void,
            ret: *mut c_void,
            args: *const *mut c_void,
            _: *mut c_void,
        ) {
            // SAFETY: one f32 argument; ret holds at least an F3.
            unsafe {
                let k = *(*args).cast::<f32>();
                ret.cast::<F3>().write(F3 {
                    x: k,
                    y: 2.0 * k,
                    z: 3.0 * k,
                });
            }
        }
        let cif = Cif::new(f3(), &[Type::f32()]).unwrap();
        let c = RawClosure::new(&cif, hfa, std::ptr::null_mut()).unwrap();
        // SAFETY: the closure's native signature is F3(f32).
        let f: extern "C" fn(f32) -> F3 = unsafe { std::mem::transmute(c.code_ptr()) };
        assert_eq!(
            f(1.5),
            F3 {
                x: 1.5,
                y: 3.0,
                z: 4.5
            }
        );

        unsafe extern "C" fn sret(
            _: *const c_void,
            ret: *mut c_void,
            args: *const *mut c_void,
            _: *mut c_void,
        ) {
            // SAFETY: one u64 argument; ret is the caller's Big.
            unsafe { ret.cast::<Big>().write(make_big(*(*args).cast::<u64>())) };
        }
        let cif = Cif::new(big(), &[Type::u64()]).unwrap();
        let c = RawClosure::new(&cif, sret, std::ptr::null_mut()).unwrap();
        // SAFETY: the closure's native signature is Big(u64).
        let f: extern "C" fn(u64) -> Big = unsafe { std::mem::transmute(c.code_ptr()) };
        assert_eq!(f(7), make_big(7));

        unsafe extern "C" fn short(
            _: *const c_void,
            ret: *mut c_void,
            _: *const *mut c_void,
            ud: *mut c_void,
        ) {
            // SAFETY: ret holds at least 16 bytes; garbage above the i16
            // must not leak into the extended result.
            unsafe {
                ret.cast::<u64>().write(0xDEAD_BEEF_0000_0000 | ud as u64);
            }
        }
        let cif = Cif::new(Type::i16(), &[]).unwrap();
        let c = RawClosure::new(&cif, short, 0x8001 as *mut c_void).unwrap();
        // SAFETY: the closure's native signature is i16(void); we read the
        // whole x0 to see the extension.
        let f: extern "C" fn() -> i64 = unsafe { std::mem::transmute(c.code_ptr()) };
        assert_eq!(f(), -32767);
    }
}
