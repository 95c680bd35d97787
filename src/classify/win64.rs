//! The Microsoft x64 calling convention: [`Abi::Win64`] (libffi's
//! `FFI_WIN64`) and [`Abi::GnuW64`] (`FFI_GNUW64`, GCC's MinGW flavour).
//!
//! Four argument slots are shared by position: slot `i` is `rcx`, `rdx`,
//! `r8`, `r9` for integer-class values and `xmm0`..`xmm3` for `float` and
//! `double`, so `f(int, double, int, float)` uses `rcx`, `xmm1`, `r8`,
//! `xmm3`. Slot 4 and later live on the stack at `32 + 8 * (i - 4)`, above
//! the 32-byte shadow space the caller always reserves. Every slot is eight
//! bytes; a value whose size is not 1, 2, 4 or 8 travels by reference: the
//! caller copies it and passes the copy's address in the slot.
//!
//! Facts checked against gcc 12 (`gcc -O2 -S` of `__attribute__((ms_abi))`
//! callers and callees) and against the system libffi 3.4.4 (`ffi_call`
//! into an assembly callee that records every argument register and stack
//! slot, and `ffi_prep_closure_loc` closures called from ms_abi C):
//!
//! - Aggregates (structs, unions, `_Complex` types) of size 1, 2, 4 or 8
//!   travel by value in the *integer* slot, even when all their members are
//!   floating point: `struct { float; }` arrives in `rcx`, `struct { float,
//!   float; }` in `rdx` for slot 1. Every other size, 3 included, goes by
//!   reference. Returned, the same sizes come back in `rax`; the others
//!   through a hidden pointer in `rcx` (the arguments shift one slot up),
//!   which the callee hands back in `rax`.
//! - `_Complex float` (8 bytes) passes in an integer register and returns
//!   in `rax`, like an 8-byte struct; `_Complex double` (16) and `_Complex
//!   long double` (32) go by reference and return through the hidden
//!   pointer. libffi 3.4.4 does the same for both ABIs.
//! - `__int128` (and `unsigned __int128`) is passed by reference, but gcc
//!   returns it in `xmm0`, all 16 bytes (one 16-byte vector piece), not in
//!   `rax:rdx` and not through memory; `struct { __int128; }` is an ordinary
//!   16-byte aggregate and returns through the hidden pointer. libffi 3.4
//!   has no 128-bit integer type.
//! - `long double` under [`Abi::GnuW64`] is gcc's: the 80-bit x87 value in
//!   a 16-byte slot, passed by reference and returned through the hidden
//!   pointer (`fldt (%rdx)` / `fstpt (%rcx)`; `movq %rcx, %rax`), exactly
//!   like a 16-byte struct. libffi's `FFI_GNUW64` agrees: its argument slot
//!   holds the value's address and `ffi_call` passes the return buffer in
//!   `rcx`.
//! - `long double` under [`Abi::Win64`] travels the same way. libffi's
//!   `FFI_WIN64` describes MSVC, whose `long double` *is* `double`: on an
//!   MSVC build `ffi_type_longdouble` is `ffi_type_double`, 8 bytes in an
//!   xmm register, and the "difference in how long double is passed" is
//!   only that. With the 16-byte x87 type of x86-64 Linux, `FFI_WIN64`
//!   passes an argument by reference like any 16-byte value (as we do),
//!   but has no working return: `ffi_call` calls `abort()` (its result
//!   switch has no case for it) and a closure hands back the first 8 bytes
//!   of the 80-bit value in `rax` and `xmm0`, which is not a double. We
//!   return it like every other 16-byte non-integer value, through the
//!   hidden pointer, which is also what gcc does. To call an MSVC function
//!   taking or returning `long double`, describe it as [`Type::f64`].
//!   Aggregates holding a `long double` are aggregates: by size.
//! - Variadic `double`s in the first four slots travel in *both* the
//!   vector and the integer register (two pieces, same bytes), because a
//!   variadic callee spills the integer registers to read `va_arg`; fixed
//!   arguments of the same call use the vector register only. (gcc also
//!   duplicates a variadic `struct { double; }` into the vector register;
//!   the callee reads the integer one, so we pass it there only.) There is
//!   no `al` count: `vector_count` is `None`.
//! - Narrow integers: the convention leaves the bits above a value's width
//!   undefined (gcc callers extend 8- and 16-bit values to 32 bits with
//!   `movsbl`/`movzwl` and store a stack `int` with `movl`; libffi
//!   zero-fills each 8-byte slot). We sign- or zero-extend to 64 bits, as
//!   SysV does, which every such reader accepts. Narrow integer returns
//!   carry an [`Ext`] so the stub widens them to a full `ffi_arg`.
//! - The callee preserves `rbx`, `rbp`, `rdi`, `rsi`, `r12`-`r15` and
//!   `xmm6`-`xmm15`.
//!
//! ```
//! use jitffi::{classify::win64, Abi, Type};
//! // f(int, double, int, float, long): slots by position, the fifth on the
//! // stack above the shadow space.
//! let args = [Type::i32(), Type::f64(), Type::i32(), Type::f32(), Type::i64()];
//! let plan = win64::classify(Abi::Win64, &Type::void(), &args, None).unwrap().to_string();
//! assert!(plan.starts_with("win64 X86_64, stack 48 (shadow 32)\n"));
//! assert!(plan.contains("arg 1 double: [0..8) xmm1\n"));
//! assert!(plan.contains("arg 3 float: [0..4) xmm3\n"));
//! assert!(plan.contains("arg 4 int64_t: [0..8) stack+32\n"));
//! ```

use super::{fill_packed_layout, scalar_ext, MAX_STACK_BYTES};
use crate::abi::{Abi, Arch};
use crate::error::{Error, Result};
use crate::plan::{ArgPass, ArgPlan, CallPlan, Ext, Loc, Piece, RetPass, RetPlan};
use crate::types::{Type, TypeKind};

const RAX: u8 = 0;
const RCX: u8 = 1;
/// The integer register of each slot: rcx, rdx, r8, r9.
const INT_ARG_REGS: [u8; 4] = [RCX, 2, 8, 9];
/// Bytes of home area the caller reserves below the stack arguments.
const SHADOW_SPACE: u32 = 32;
/// Bytes of one argument slot.
const SLOT_BYTES: u32 = 8;
/// rbx, rbp, rdi, rsi, r12-r15.
const CALLEE_SAVED_GPRS: [u8; 8] = [3, 5, 7, 6, 12, 13, 14, 15];
/// xmm6-xmm15.
const CALLEE_SAVED_VECS: std::ops::RangeInclusive<u8> = 6..=15;

/// How an argument occupies its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotClass {
    /// By value in the integer register (or the stack slot).
    Int,
    /// By value in the vector register (or the stack slot).
    Float,
    /// A copy's address in the integer register (or the stack slot).
    ByRef,
}

/// Sizes an aggregate may have to travel by value.
fn fits_slot(size: usize) -> bool {
    matches!(size, 1 | 2 | 4 | 8)
}

fn arg_class(ty: &Type) -> SlotClass {
    match ty.kind() {
        TypeKind::F32 | TypeKind::F64 => SlotClass::Float,
        TypeKind::U128
        | TypeKind::I128
        | TypeKind::LongDouble
        | TypeKind::ComplexF64
        | TypeKind::ComplexLongDouble => SlotClass::ByRef,
        // Scalars of at most 8 bytes, `_Complex float`, and aggregates.
        _ if fits_slot(ty.size()) => SlotClass::Int,
        _ => SlotClass::ByRef,
    }
}

fn piece(size: usize, loc: Loc, ext: Ext) -> Piece {
    Piece {
        offset: 0,
        // Only values of at most 16 bytes travel as pieces.
        size: size as u32,
        loc,
        ext,
    }
}

fn ret_pass(ret: &Type) -> RetPass {
    let sret = RetPass::Indirect {
        pointer: Loc::Gpr(RCX),
        returned: Some(Loc::Gpr(RAX)),
    };
    let size = ret.size();
    match ret.kind() {
        TypeKind::Void => RetPass::Void,
        TypeKind::F32 | TypeKind::F64 => RetPass::Direct(vec![piece(size, Loc::Vec(0), Ext::None)]),
        // gcc: `movdqa ..., %xmm0`, the whole value in one register.
        TypeKind::U128 | TypeKind::I128 => {
            RetPass::Direct(vec![piece(size, Loc::Vec(0), Ext::None)])
        }
        TypeKind::LongDouble | TypeKind::ComplexF64 | TypeKind::ComplexLongDouble => sret,
        _ if fits_slot(size) => RetPass::Direct(vec![piece(size, Loc::Gpr(RAX), scalar_ext(ret))]),
        _ => sret,
    }
}

/// Classifies a signature under the Microsoft x64 convention, `abi` being
/// [`Abi::Win64`] or [`Abi::GnuW64`] (the same rules for every type jitffi
/// describes; see the module docs on `long double`). The signature has passed
/// [`super::classify`]'s validation.
///
/// ```
/// use jitffi::{classify::win64, Abi, Type};
/// // A 16-byte struct goes by reference; a {float, float} by value in rdx.
/// let big = Type::structure([Type::i64(), Type::i64()]).unwrap();
/// let ff = Type::structure([Type::f32(), Type::f32()]).unwrap();
/// let plan = win64::classify(Abi::GnuW64, &Type::void(), &[big, ff], None).unwrap();
/// let text = plan.to_string();
/// assert!(text.contains("arg 0 struct { int64_t; int64_t; }: copy, address in rcx\n"));
/// assert!(text.contains("arg 1 struct { float; float; }: [0..8) rdx\n"));
/// ```
pub fn classify(
    abi: Abi,
    ret: &Type,
    args: &[Type],
    fixed_args: Option<usize>,
) -> Result<CallPlan> {
    if !matches!(abi, Abi::Win64 | Abi::GnuW64) {
        return Err(Error::UnsupportedAbi {
            abi,
            reason: "not a Microsoft x64 convention",
        });
    }
    let ret_pass = ret_pass(ret);
    // The hidden return pointer takes slot 0.
    let first_slot = usize::from(matches!(ret_pass, RetPass::Indirect { .. }));

    let mut stack_slots = 0u64;
    // Bytes of the by-reference copies the caller makes on its stack.
    let mut copy_bytes = 0u64;
    let mut arg_plans = Vec::with_capacity(args.len());
    for (i, ty) in args.iter().enumerate() {
        if ty.is_void() {
            return Err(Error::VoidArgument { index: i });
        }
        let slot = first_slot + i;
        let variadic = fixed_args.is_some_and(|n| i >= n);
        let class = arg_class(ty);
        let loc_int = match INT_ARG_REGS.get(slot) {
            Some(&r) => Loc::Gpr(r),
            None => {
                stack_slots += 1;
                let off = u64::from(SHADOW_SPACE)
                    + u64::from(SLOT_BYTES) * (slot - INT_ARG_REGS.len()) as u64;
                // Beyond u32 only far past MAX_STACK_BYTES, refused below
                // before the plan escapes.
                Loc::Stack(u32::try_from(off).unwrap_or(u32::MAX))
            }
        };
        let pass = match class {
            SlotClass::ByRef => {
                copy_bytes += (ty.size() as u64).div_ceil(16) * 16;
                ArgPass::Indirect { pointer: loc_int }
            }
            SlotClass::Int => ArgPass::Direct(vec![piece(ty.size(), loc_int, scalar_ext(ty))]),
            SlotClass::Float => {
                let size = ty.size();
                match loc_int {
                    Loc::Gpr(_) => {
                        // `slot` < 4 here, and so is the xmm number.
                        let xmm = piece(size, Loc::Vec(slot as u8), Ext::None);
                        if variadic {
                            // The integer copy last: it is the one a
                            // variadic callee reads.
                            ArgPass::Direct(vec![xmm, piece(size, loc_int, Ext::None)])
                        } else {
                            ArgPass::Direct(vec![xmm])
                        }
                    }
                    _ => ArgPass::Direct(vec![piece(size, loc_int, Ext::None)]),
                }
            }
        };
        arg_plans.push(ArgPlan {
            ty: ty.clone(),
            pass,
            variadic,
        });
    }

    let stack_bytes =
        (u64::from(SHADOW_SPACE) + u64::from(SLOT_BYTES) * stack_slots).div_ceil(16) * 16;
    // The copies live in the caller's frame next to the argument area: a
    // huge by-reference argument costs as much stack as a SysV one passed
    // by value, and is refused the same way.
    let needed = stack_bytes + copy_bytes;
    if needed > MAX_STACK_BYTES {
        return Err(Error::ArgumentAreaTooLarge {
            bytes: needed,
            max: MAX_STACK_BYTES,
        });
    }

    let callee_saved = CALLEE_SAVED_GPRS
        .iter()
        .map(|&r| Loc::Gpr(r))
        .chain(CALLEE_SAVED_VECS.map(Loc::Vec))
        .collect();
    let mut plan = CallPlan {
        abi,
        arch: Arch::X86_64,
        ret: RetPlan {
            ty: ret.clone(),
            pass: ret_pass,
        },
        args: arg_plans,
        fixed_args,
        // Bounded by MAX_STACK_BYTES just above.
        stack_bytes: stack_bytes as u32,
        shadow_space: SHADOW_SPACE,
        vector_count: None,
        static_chain: None,
        callee_saved,
        packed_offsets: Vec::new(),
        packed_size: 0,
    };
    fill_packed_layout(&mut plan)?;
    debug_assert!(plan.check().is_ok(), "{:?}\n{plan}", plan.check());
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(fields: &[Type]) -> Type {
        Type::structure(fields.iter().cloned()).unwrap()
    }
    fn st_n(t: Type, n: usize) -> Type {
        Type::structure(std::iter::repeat_n(t, n)).unwrap()
    }
    fn un(fields: &[Type]) -> Type {
        Type::union(fields.iter().cloned()).unwrap()
    }
    fn arr(elem: Type, len: usize) -> Type {
        Type::array(elem, len).unwrap()
    }
    fn win(ret: Type, args: &[Type], fixed: Option<usize>) -> CallPlan {
        let plan = classify(Abi::Win64, &ret, args, fixed).unwrap();
        plan.check().unwrap();
        plan
    }
    fn arg_pieces(plan: &CallPlan, i: usize) -> &[Piece] {
        match &plan.args[i].pass {
            ArgPass::Direct(p) => p,
            other => panic!("argument {i} is {other:?}"),
        }
    }
    /// Where each argument goes: the location of its only piece, or of
    /// its copy's address.
    fn arg_locs(plan: &CallPlan) -> Vec<(Loc, bool)> {
        plan.args
            .iter()
            .map(|a| match &a.pass {
                ArgPass::Direct(p) => {
                    assert_eq!(p.len(), 1, "{plan}");
                    (p[0].loc, false)
                }
                ArgPass::Indirect { pointer } => (*pointer, true),
            })
            .collect()
    }
    fn one(loc: Loc, size: u32, ext: Ext) -> RetPass {
        RetPass::Direct(vec![Piece {
            offset: 0,
            size,
            loc,
            ext,
        }])
    }
    const SRET: RetPass = RetPass::Indirect {
        pointer: Loc::Gpr(RCX),
        returned: Some(Loc::Gpr(RAX)),
    };

    #[test]
    fn slots_are_shared_by_position() {
        let args = [Type::i32(), Type::f64(), Type::u8(), Type::f32()];
        let plan = win(Type::void(), &args, None);
        let got: Vec<(Loc, u32, Ext)> = (0..4)
            .map(|i| {
                let p = arg_pieces(&plan, i)[0];
                (p.loc, p.size, p.ext)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Loc::Gpr(1), 4, Ext::Sign),
                (Loc::Vec(1), 8, Ext::None),
                (Loc::Gpr(8), 1, Ext::Zero),
                (Loc::Vec(3), 4, Ext::None),
            ]
        );
        assert_eq!((plan.stack_bytes, plan.shadow_space), (32, 32));
        assert_eq!(plan.vector_count, None);
    }

    #[test]
    fn stack_slots_follow_the_shadow_space() {
        for (n, bytes) in [(0, 32), (4, 32), (5, 48), (6, 48), (7, 64), (12, 96)] {
            let plan = win(Type::void(), &vec![Type::i64(); n], None);
            assert_eq!(plan.stack_bytes, bytes, "{n} arguments");
        }
        let args = [
            Type::i64(),
            Type::i64(),
            Type::i64(),
            Type::i64(),
            Type::f32(),
            Type::i16(),
            Type::f64(),
            Type::long_double(),
        ];
        let plan = win(Type::void(), &args, None);
        assert_eq!(
            arg_locs(&plan)[4..],
            [
                (Loc::Stack(32), false),
                (Loc::Stack(40), false),
                (Loc::Stack(48), false),
                (Loc::Stack(56), true),
            ]
        );
        // Narrow values keep their size and extension on the stack.
        let p = arg_pieces(&plan, 5)[0];
        assert_eq!((p.size, p.ext), (2, Ext::Sign));
        assert_eq!(arg_pieces(&plan, 4)[0].size, 4);
        assert_eq!(plan.stack_bytes, 64);
    }

    #[test]
    fn aggregates_by_size() {
        let (f, c) = (Type::f32(), Type::i8());
        let by_value = [
            st(std::slice::from_ref(&c)),
            st_n(c.clone(), 2),
            st(std::slice::from_ref(&f)),
            st_n(f.clone(), 2),
            st(&[Type::f64()]),
            st(&[arr(Type::i16(), 4)]),
            un(&[f.clone(), Type::i32()]),
            un(&[Type::f64(), arr(c.clone(), 5)]),
            Type::complex_f32(),
            st(&[c.clone(), Type::i16()]), // 4 with padding
        ];
        for t in by_value {
            assert_eq!(arg_class(&t), SlotClass::Int, "{t}");
            let plan = win(Type::void(), &[Type::f64(), t.clone()], None);
            let p = arg_pieces(&plan, 1);
            assert_eq!(p.len(), 1);
            assert_eq!((p[0].loc, p[0].size as usize), (Loc::Gpr(2), t.size()));
            assert_eq!(p[0].ext, Ext::None);
        }
        let by_ref = [
            st_n(c.clone(), 3),
            st(&[arr(c.clone(), 5)]),
            st_n(Type::i16(), 3),
            st_n(f.clone(), 3),
            st_n(Type::f64(), 2),
            st(&[Type::i128()]),
            st(&[Type::long_double()]),
            un(&[Type::f64(), arr(c.clone(), 12)]),
            st_n(Type::i64(), 5),
            Type::complex_f64(),
            Type::complex_long_double(),
            Type::i128(),
            Type::u128(),
            Type::long_double(),
        ];
        for t in by_ref {
            assert_eq!(arg_class(&t), SlotClass::ByRef, "{t}");
            let plan = win(Type::void(), &[Type::f64(), t.clone()], None);
            assert_eq!(
                plan.args[1].pass,
                ArgPass::Indirect {
                    pointer: Loc::Gpr(2)
                },
                "{t}"
            );
        }
    }

    #[test]
    fn returns() {
        let ret = |t: Type| win(t, &[], None).ret.pass;
        assert_eq!(ret(Type::void()), RetPass::Void);
        assert_eq!(ret(Type::f32()), one(Loc::Vec(0), 4, Ext::None));
        assert_eq!(ret(Type::f64()), one(Loc::Vec(0), 8, Ext::None));
        assert_eq!(ret(Type::i8()), one(Loc::Gpr(RAX), 1, Ext::Sign));
        assert_eq!(ret(Type::u16()), one(Loc::Gpr(RAX), 2, Ext::Zero));
        assert_eq!(ret(Type::i32()), one(Loc::Gpr(RAX), 4, Ext::Sign));
        assert_eq!(ret(Type::u64()), one(Loc::Gpr(RAX), 8, Ext::None));
        assert_eq!(ret(Type::pointer()), one(Loc::Gpr(RAX), 8, Ext::None));
        assert_eq!(ret(Type::i128()), one(Loc::Vec(0), 16, Ext::None));
        assert_eq!(ret(Type::u128()), one(Loc::Vec(0), 16, Ext::None));
        assert_eq!(ret(Type::complex_f32()), one(Loc::Gpr(RAX), 8, Ext::None));
        assert_eq!(ret(Type::complex_f64()), SRET);
        assert_eq!(ret(Type::complex_long_double()), SRET);
        assert_eq!(ret(st_n(Type::f32(), 2)), one(Loc::Gpr(RAX), 8, Ext::None));
        assert_eq!(ret(st(&[Type::f32()])), one(Loc::Gpr(RAX), 4, Ext::None));
        assert_eq!(ret(st(&[Type::i8()])), one(Loc::Gpr(RAX), 1, Ext::None));
        assert_eq!(ret(st_n(Type::i8(), 3)), SRET);
        assert_eq!(ret(st_n(Type::f64(), 2)), SRET);
        assert_eq!(ret(st(&[Type::i128()])), SRET);
        assert_eq!(ret(st(&[Type::long_double()])), SRET);
    }

    #[test]
    fn sret_takes_slot_zero() {
        let big = st_n(Type::i64(), 3);
        let args = [Type::i32(), Type::f64(), Type::i32(), Type::f64()];
        let plan = win(big, &args, None);
        assert_eq!(plan.ret.pass, SRET);
        assert_eq!(
            arg_locs(&plan),
            vec![
                (Loc::Gpr(2), false),
                (Loc::Vec(2), false),
                (Loc::Gpr(9), false),
                (Loc::Stack(32), false),
            ]
        );
        assert_eq!(plan.stack_bytes, 48);
    }

    #[test]
    fn long_double_by_reference_and_through_memory_in_both() {
        let ld = Type::long_double();
        for abi in [Abi::Win64, Abi::GnuW64] {
            let plan = classify(abi, &ld, &[Type::i32(), ld.clone()], None).unwrap();
            assert_eq!(plan.abi, abi);
            assert_eq!(plan.ret.pass, SRET);
            // Slot 0 is the hidden pointer.
            assert_eq!(
                plan.args[1].pass,
                ArgPass::Indirect {
                    pointer: Loc::Gpr(8)
                }
            );
            // Wrapped in a struct it is a 16-byte aggregate: the same.
            let s = st(std::slice::from_ref(&ld));
            assert_eq!(classify(abi, &s, &[], None).unwrap().ret.pass, SRET);
        }
    }

    #[test]
    fn variadic_doubles_use_both_registers() {
        // printf(fmt, double, int, double, double): xmm1+rdx, r8, xmm3+r9,
        // then the stack alone.
        let args = [
            Type::pointer(),
            Type::f64(),
            Type::i32(),
            Type::f64(),
            Type::f64(),
        ];
        let plan = win(Type::i32(), &args, Some(1));
        let locs = |i| -> Vec<(u32, u32, Loc)> {
            arg_pieces(&plan, i)
                .iter()
                .map(|p| (p.offset, p.size, p.loc))
                .collect()
        };
        assert_eq!(locs(1), vec![(0, 8, Loc::Vec(1)), (0, 8, Loc::Gpr(2))]);
        assert_eq!(locs(2), vec![(0, 4, Loc::Gpr(8))]);
        assert_eq!(locs(3), vec![(0, 8, Loc::Vec(3)), (0, 8, Loc::Gpr(9))]);
        assert_eq!(locs(4), vec![(0, 8, Loc::Stack(32))]);
        assert_eq!(plan.vector_count, None);
        let flags: Vec<bool> = plan.args.iter().map(|a| a.variadic).collect();
        assert_eq!(flags, vec![false, true, true, true, true]);

        // Fixed doubles of a variadic call stay in xmm only; aggregates and
        // by-reference values are not duplicated.
        let sd = st(&[Type::f64()]);
        let args = [Type::f64(), sd, Type::long_double(), Type::f64()];
        let plan = win(Type::void(), &args, Some(1));
        assert_eq!(arg_pieces(&plan, 0).len(), 1);
        assert_eq!(arg_pieces(&plan, 0)[0].loc, Loc::Vec(0));
        assert_eq!(arg_pieces(&plan, 1).len(), 1);
        assert_eq!(arg_pieces(&plan, 1)[0].loc, Loc::Gpr(2));
        assert_eq!(
            plan.args[2].pass,
            ArgPass::Indirect {
                pointer: Loc::Gpr(8)
            }
        );
        assert_eq!(arg_pieces(&plan, 3).len(), 2);

        // Variadic from slot 0, and after an sret pointer.
        let plan = win(Type::void(), &[Type::f64()], Some(0));
        assert_eq!(arg_pieces(&plan, 0)[1].loc, Loc::Gpr(RCX));
        let plan = win(
            Type::complex_f64(),
            &[Type::pointer(), Type::f64()],
            Some(1),
        );
        let p = arg_pieces(&plan, 1);
        assert_eq!((p[0].loc, p[1].loc), (Loc::Vec(2), Loc::Gpr(8)));
    }

    #[test]
    fn callee_saved_registers() {
        let plan = win(Type::void(), &[], None);
        let mut want: Vec<Loc> = [3, 5, 7, 6, 12, 13, 14, 15].map(Loc::Gpr).to_vec();
        want.extend((6..=15).map(Loc::Vec));
        assert_eq!(plan.callee_saved, want);
    }

    #[test]
    fn other_abis_and_void_arguments_are_refused() {
        for abi in [Abi::SysV64, Abi::Aapcs64] {
            assert!(matches!(
                classify(abi, &Type::void(), &[], None).unwrap_err(),
                Error::UnsupportedAbi { abi: a, .. } if a == abi
            ));
        }
        assert_eq!(
            classify(
                Abi::GnuW64,
                &Type::void(),
                &[Type::i8(), Type::void()],
                None
            )
            .unwrap_err(),
            Error::VoidArgument { index: 1 }
        );
    }

    #[test]
    fn argument_area_limit_counts_copies() {
        // Each 16 KiB struct is copied to the caller's stack.
        let chunk = st(&[arr(Type::u8(), 16 * 1024)]);
        let plan = win(Type::void(), &vec![chunk.clone(); 15], None);
        assert_eq!(plan.stack_bytes, 32 + 96);
        let e = classify(Abi::Win64, &Type::void(), &vec![chunk; 16], None).unwrap_err();
        assert_eq!(
            e,
            Error::ArgumentAreaTooLarge {
                bytes: 16 * 16 * 1024 + 128,
                max: MAX_STACK_BYTES
            }
        );
        // The most slots a signature can have stay far inside the limit.
        let many = vec![Type::i64(); crate::cif::MAX_ARGS];
        let plan = win(st_n(Type::i64(), 3), &many, None);
        let slots = crate::cif::MAX_ARGS + 1 - 4;
        assert_eq!(
            plan.stack_bytes as usize,
            (32 + 8 * slots).div_ceil(16) * 16
        );
        assert!(matches!(
            arg_locs(&plan).last(),
            Some((Loc::Stack(off), false)) if *off as usize == 32 + 8 * (crate::cif::MAX_ARGS - 4)
        ));
        // A type too large for u32 offsets is refused, not wrapped.
        let huge = st(&[arr(Type::u8(), crate::types::MAX_TYPE_SIZE as usize)]);
        assert!(matches!(
            classify(Abi::Win64, &Type::void(), &[huge], None).unwrap_err(),
            Error::ArgumentAreaTooLarge { .. }
        ));
    }

    /// Every plan over a grid of mixed signatures passes `check()`, gives
    /// each argument exactly its positional slot, and uses each register at
    /// most once (a variadic double's two pieces being the one exception).
    #[test]
    fn plans_are_well_formed() {
        let pool = [
            Type::i8(),
            Type::u32(),
            Type::i64(),
            Type::f32(),
            Type::f64(),
            Type::long_double(),
            Type::i128(),
            Type::complex_f32(),
            Type::complex_f64(),
            Type::complex_long_double(),
            st(&[Type::f64(), Type::i32()]),
            st_n(Type::f32(), 2),
            st_n(Type::i8(), 3),
            un(&[Type::f32(), Type::i32()]),
            st(&[arr(Type::i8(), 8)]),
        ];
        for seed in 0..600usize {
            let n = seed % 11;
            let args: Vec<Type> = (0..n)
                .map(|k| pool[(seed * 7 + k * 13 + k * k) % pool.len()].clone())
                .collect();
            let abi = if seed % 2 == 0 {
                Abi::Win64
            } else {
                Abi::GnuW64
            };
            let ret = if seed % 5 == 0 {
                Type::void()
            } else {
                pool[seed % pool.len()].clone()
            };
            let fixed = (seed % 3 == 0).then_some(n / 2);
            // Variadic arguments must be promoted; skip those that are not.
            if fixed.is_some_and(|f| {
                args[f..]
                    .iter()
                    .any(|t| matches!(t.kind(), TypeKind::F32 | TypeKind::I8))
            }) {
                continue;
            }
            let plan = classify(abi, &ret, &args, fixed).unwrap();
            plan.check().unwrap();
            let first = usize::from(matches!(plan.ret.pass, RetPass::Indirect { .. }));
            let mut seen = Vec::new();
            for (i, a) in plan.args.iter().enumerate() {
                let slot = first + i;
                let locs: Vec<Loc> = match &a.pass {
                    ArgPass::Direct(p) => p.iter().map(|p| p.loc).collect(),
                    ArgPass::Indirect { pointer } => vec![*pointer],
                };
                let dup = a.variadic && a.ty == Type::f64() && slot < 4;
                assert_eq!(locs.len(), if dup { 2 } else { 1 }, "{plan}");
                for loc in locs {
                    match loc {
                        Loc::Stack(off) => {
                            assert!(slot >= 4, "{plan}");
                            assert_eq!(off as usize, 32 + 8 * (slot - 4), "{plan}");
                        }
                        Loc::Gpr(r) => assert_eq!(r, INT_ARG_REGS[slot], "{plan}"),
                        Loc::Vec(r) => assert_eq!(r as usize, slot, "{plan}"),
                        Loc::X87(_) => panic!("{plan}"),
                    }
                    assert!(!seen.contains(&loc), "{plan}");
                    seen.push(loc);
                }
            }
            let slots = (first + n).saturating_sub(4) as u32;
            assert_eq!(plan.stack_bytes, (32 + 8 * slots).div_ceil(16) * 16);
        }
    }
}
