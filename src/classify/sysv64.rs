//! The System V AMD64 psABI (Linux, the BSDs, macOS on x86-64).
//!
//! Each value is cut into eightbytes; every scalar leaf of its type tree
//! (struct fields at their offsets, array elements one by one, union
//! members all at the union's offset) votes for the class of the eightbyte
//! it lies in, and the votes merge. A value then travels in general
//! registers (INTEGER eightbytes), vector registers (SSE), the x87 stack
//! (returns only) or memory. Facts checked against gcc 12 (`gcc -O2 -S`)
//! that the psABI text leaves easy to get wrong:
//!
//! - INTEGER beats X87 in the merge (the rule order of the psABI, and
//!   gcc's since 4.4): `union { long double; struct { long, long } }` is
//!   INTEGER+INTEGER and travels in `rdi`/`rsi`, while
//!   `union { long double; long }` goes to memory (its X87UP half is no
//!   longer preceded by X87) and `union { long double; double }` too (X87
//!   with SSE is MEMORY).
//! - A `_Complex float` member at offset 4 straddles two eightbytes and
//!   votes SSE in both (gcc's "changed in GCC 4.4" note): each part of a
//!   complex value is classified as its own scalar.
//! - A value that needs more registers of either kind than remain goes
//!   wholly to the stack, and the registers it did not take stay free for
//!   later arguments (`f(5 x long, struct { long, long }, int)` puts the
//!   struct on the stack and the int in `r9`).
//! - Stack slots are aligned to the type's alignment when above 8: after
//!   six register arguments, `f(..., int, __int128)` puts the int at
//!   `stack+0` and the `__int128` at `stack+16`.
//! - `struct { long double }` returns in `st0` like a bare `long double`,
//!   and is passed in memory; `_Complex long double` returns real part in
//!   `st0`, imaginary in `st1`; `struct { _Complex long double }` (32
//!   bytes) is MEMORY.
//! - gcc extends narrow integer arguments to 32 bits only (the callee may
//!   not rely on more); extending to 64 is a compatible superset and
//!   what an `ffi_arg`-style closure wants back.
//! - gcc sets `al` to the number of vector registers for variadic and
//!   unprototyped calls; we set it on every call so a cif works for either.
//!
//! Our types have no vector (`__m128`) members, so SSEUP never occurs and
//! every value above 16 bytes is MEMORY.
//!
//! ```
//! use jitffi::{classify::sysv64, Type};
//! // f(5 x long, struct { long, long }, int): the struct needs two registers,
//! // only r9 is left, so it goes to the stack and the int takes r9.
//! let pair = Type::structure([Type::i64(), Type::i64()]).unwrap();
//! let mut args = vec![Type::i64(); 5];
//! args.extend([pair, Type::i32()]);
//! let plan = sysv64::classify(&Type::void(), &args, None).unwrap().to_string();
//! assert!(plan.contains("arg 5 struct { int64_t; int64_t; }: [0..16) stack+0"));
//! assert!(plan.contains("arg 6 int32_t: [0..4) r9 sext"));
//! ```

use super::{fill_packed_layout, scalar_ext, MAX_STACK_BYTES};
use crate::abi::{Abi, Arch};
use crate::error::{Error, Result};
use crate::plan::{ArgPass, ArgPlan, CallPlan, Ext, Loc, Piece, RetPass, RetPlan};
use crate::types::{Type, TypeKind};

const RAX: u8 = 0;
const RDX: u8 = 2;
const RDI: u8 = 7;
/// rdi, rsi, rdx, rcx, r8, r9.
const INT_ARG_REGS: [u8; 6] = [RDI, 6, RDX, 1, 8, 9];
/// xmm0..xmm7.
const VEC_ARG_REGS: [u8; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
/// rbx, rbp, r12-r15: what a SysV function preserves for its caller. Also
/// the x86-64 emitter's own entry convention (stubs are SysV functions and
/// thunks call SysV handlers), so it reads it from here.
pub const CALLEE_SAVED: [u8; 6] = [3, 5, 12, 13, 14, 15];
const INT_RET_REGS: [u8; 2] = [RAX, RDX];
const VEC_RET_REGS: [u8; 2] = [0, 1];
/// Bytes of an x87 extended value inside its 16-byte slot.
const X87_BYTES: u32 = 10;

/// The class of one eightbyte (the psABI's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EbClass {
    NoClass,
    Integer,
    Sse,
    X87,
    X87Up,
    ComplexX87,
    Memory,
}

/// The psABI merge of two votes for one eightbyte. The order of the tests
/// is the rule order: INTEGER is decided before the x87 classes are.
fn merge(a: EbClass, b: EbClass) -> EbClass {
    use EbClass::*;
    let x87 = |c| matches!(c, X87 | X87Up | ComplexX87);
    if a == b {
        a
    } else if a == NoClass {
        b
    } else if b == NoClass {
        a
    } else if a == Memory || b == Memory {
        Memory
    } else if a == Integer || b == Integer {
        Integer
    } else if x87(a) || x87(b) {
        Memory
    } else {
        Sse
    }
}

/// How a whole value travels, before registers are handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Classification {
    /// In memory: a stack argument, or a return through a hidden pointer.
    Memory,
    /// In registers: `words` eightbytes, each INTEGER, SSE or NO_CLASS.
    Regs { classes: [EbClass; 2], words: usize },
    /// X87 + X87UP: a `long double`, or an aggregate that is only one.
    X87,
    /// COMPLEX_X87: `_Complex long double`.
    ComplexX87,
}

impl Classification {
    /// General and vector registers this value needs.
    fn reg_counts(classes: &[EbClass]) -> (usize, usize) {
        let count = |k| classes.iter().filter(|&&c| c == k).count();
        (count(EbClass::Integer), count(EbClass::Sse))
    }
}

fn classify_value(ty: &Type) -> Classification {
    if matches!(ty.kind(), TypeKind::ComplexLongDouble) {
        return Classification::ComplexX87;
    }
    let size = ty.size();
    if size > 16 {
        return Classification::Memory;
    }
    let mut classes = [EbClass::NoClass; 2];
    vote(ty, 0, &mut classes);
    let words = size.div_ceil(8);
    let used = &classes[..words];
    if used.contains(&EbClass::Memory) || used.contains(&EbClass::ComplexX87) {
        return Classification::Memory;
    }
    for (i, &c) in used.iter().enumerate() {
        if c == EbClass::X87Up && (i == 0 || used[i - 1] != EbClass::X87) {
            return Classification::Memory;
        }
    }
    if used.contains(&EbClass::X87) {
        // X87 followed by anything but its own X87UP cannot come from C
        // layouts (the upper half would need a member with nothing in the
        // lower); refuse registers rather than guess.
        return if used == [EbClass::X87, EbClass::X87Up] {
            Classification::X87
        } else {
            Classification::Memory
        };
    }
    Classification::Regs { classes, words }
}

/// Merges the votes of every scalar leaf of `ty` (placed at `offset` of
/// the value being classified, which is at most 16 bytes) into `classes`.
fn vote(ty: &Type, offset: usize, classes: &mut [EbClass; 2]) {
    let mut put = |at: usize, c: EbClass| {
        debug_assert!(at < 16, "leaf at {at} in a value of at most 16 bytes");
        if let Some(slot) = classes.get_mut(at / 8) {
            *slot = merge(*slot, c);
        }
    };
    match ty.kind() {
        TypeKind::Void => {}
        TypeKind::U8
        | TypeKind::I8
        | TypeKind::U16
        | TypeKind::I16
        | TypeKind::U32
        | TypeKind::I32
        | TypeKind::U64
        | TypeKind::I64
        | TypeKind::Pointer => put(offset, EbClass::Integer),
        TypeKind::U128 | TypeKind::I128 => {
            put(offset, EbClass::Integer);
            put(offset + 8, EbClass::Integer);
        }
        TypeKind::F32 | TypeKind::F64 => put(offset, EbClass::Sse),
        TypeKind::ComplexF32 => {
            put(offset, EbClass::Sse);
            put(offset + 4, EbClass::Sse);
        }
        TypeKind::ComplexF64 => {
            put(offset, EbClass::Sse);
            put(offset + 8, EbClass::Sse);
        }
        TypeKind::LongDouble => {
            put(offset, EbClass::X87);
            put(offset + 8, EbClass::X87Up);
        }
        // 32 bytes: any aggregate holding one is MEMORY before we walk it.
        TypeKind::ComplexLongDouble => put(offset, EbClass::Memory),
        TypeKind::Struct { fields, offsets } => {
            for (f, &o) in fields.iter().zip(offsets) {
                vote(f, offset + o, classes);
            }
        }
        TypeKind::Union { fields } => {
            for f in fields {
                vote(f, offset, classes);
            }
        }
        TypeKind::Array { elem, len } => {
            for i in 0..*len {
                vote(elem, offset + i * elem.size(), classes);
            }
        }
    }
}

/// One piece per non-empty eightbyte, taking registers from `gprs` and
/// `vecs` in order (the caller made sure there are enough).
fn reg_pieces(ty: &Type, classes: &[EbClass], gprs: &[u8], vecs: &[u8]) -> Vec<Piece> {
    let size = ty.size() as u32;
    let ext = scalar_ext(ty);
    let (mut gprs, mut vecs) = (gprs.iter(), vecs.iter());
    let mut pieces = Vec::with_capacity(classes.len());
    for (i, &c) in classes.iter().enumerate() {
        let offset = 8 * i as u32;
        let loc = match c {
            EbClass::Integer => gprs.next().map(|&r| Loc::Gpr(r)),
            EbClass::Sse => vecs.next().map(|&r| Loc::Vec(r)),
            _ => None,
        };
        if let Some(loc) = loc {
            pieces.push(Piece {
                offset,
                size: (size - offset).min(8),
                loc,
                ext,
            });
        }
    }
    pieces
}

fn align_up(v: u64, align: u64) -> u64 {
    v.div_ceil(align) * align
}

/// Classifies a signature under the SysV AMD64 psABI. The signature has
/// passed [`super::classify`]'s validation.
///
/// ```
/// use jitffi::classify::sysv64;
/// use jitffi::Type;
/// // struct { double d; int i; } passes d in xmm0 and i in rdi.
/// let s = Type::structure([Type::f64(), Type::i32()]).unwrap();
/// let plan = sysv64::classify(&Type::void(), &[s], None).unwrap();
/// assert!(plan.to_string().contains("arg 0 struct { double; int32_t; }: [0..8) xmm0, [8..16) rdi"));
/// ```
pub fn classify(ret: &Type, args: &[Type], fixed_args: Option<usize>) -> Result<CallPlan> {
    let mut gpr_used = 0usize;
    let mut vec_used = 0usize;

    let ret_pass = if ret.is_void() {
        RetPass::Void
    } else {
        match classify_value(ret) {
            Classification::Memory => {
                // The hidden pointer is the first integer argument.
                gpr_used = 1;
                RetPass::Indirect {
                    pointer: Loc::Gpr(RDI),
                    returned: Some(Loc::Gpr(RAX)),
                }
            }
            Classification::X87 => RetPass::Direct(vec![Piece {
                offset: 0,
                size: X87_BYTES,
                loc: Loc::X87(0),
                ext: Ext::None,
            }]),
            Classification::ComplexX87 => RetPass::Direct(vec![
                Piece {
                    offset: 0,
                    size: X87_BYTES,
                    loc: Loc::X87(0),
                    ext: Ext::None,
                },
                Piece {
                    offset: 16,
                    size: X87_BYTES,
                    loc: Loc::X87(1),
                    ext: Ext::None,
                },
            ]),
            Classification::Regs { classes, words } => RetPass::Direct(reg_pieces(
                ret,
                &classes[..words],
                &INT_RET_REGS,
                &VEC_RET_REGS,
            )),
        }
    };

    let mut stack = 0u64;
    let mut arg_plans = Vec::with_capacity(args.len());
    for (i, ty) in args.iter().enumerate() {
        let in_regs = match classify_value(ty) {
            Classification::Regs { classes, words } => {
                let classes = &classes[..words];
                let (nint, nvec) = Classification::reg_counts(classes);
                if gpr_used + nint <= INT_ARG_REGS.len() && vec_used + nvec <= VEC_ARG_REGS.len() {
                    let pieces = reg_pieces(
                        ty,
                        classes,
                        &INT_ARG_REGS[gpr_used..],
                        &VEC_ARG_REGS[vec_used..],
                    );
                    gpr_used += nint;
                    vec_used += nvec;
                    Some(pieces)
                } else {
                    None
                }
            }
            // X87 and COMPLEX_X87 arguments travel in memory.
            _ => None,
        };
        let pieces = in_regs.unwrap_or_else(|| {
            let offset = align_up(stack, ty.align().max(8) as u64);
            stack = offset + align_up(ty.size() as u64, 8);
            // An offset beyond u32 only occurs past MAX_STACK_BYTES, which
            // is refused below before the plan escapes.
            vec![Piece {
                offset: 0,
                size: ty.size() as u32,
                loc: Loc::Stack(u32::try_from(offset).unwrap_or(u32::MAX)),
                ext: scalar_ext(ty),
            }]
        });
        arg_plans.push(ArgPlan {
            ty: ty.clone(),
            pass: ArgPass::Direct(pieces),
            variadic: fixed_args.is_some_and(|n| i >= n),
        });
    }

    let stack_bytes = align_up(stack, 16);
    if stack_bytes > MAX_STACK_BYTES {
        return Err(Error::ArgumentAreaTooLarge {
            bytes: stack_bytes,
            max: MAX_STACK_BYTES,
        });
    }

    let mut plan = CallPlan {
        abi: Abi::SysV64,
        arch: Arch::X86_64,
        ret: RetPlan {
            ty: ret.clone(),
            pass: ret_pass,
        },
        args: arg_plans,
        fixed_args,
        // Bounded by MAX_STACK_BYTES just above.
        stack_bytes: stack_bytes as u32,
        shadow_space: 0,
        vector_count: Some(vec_used as u8),
        static_chain: None,
        callee_saved: CALLEE_SAVED.iter().map(|&r| Loc::Gpr(r)).collect(),
        packed_offsets: Vec::new(),
        packed_size: 0,
    };
    fill_packed_layout(&mut plan)?;
    debug_assert!(plan.check().is_ok(), "{:?}\n{plan}", plan.check());
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::EbClass::*;
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
    fn regs(classes: &[EbClass]) -> Classification {
        let mut c = [NoClass; 2];
        c[..classes.len()].copy_from_slice(classes);
        Classification::Regs {
            classes: c,
            words: classes.len(),
        }
    }
    fn arg_pieces(plan: &CallPlan, i: usize) -> &[Piece] {
        match &plan.args[i].pass {
            ArgPass::Direct(p) => p,
            other => panic!("argument {i} is {other:?}"),
        }
    }

    #[test]
    fn merge_follows_rule_order() {
        let all = [NoClass, Integer, Sse, X87, X87Up, ComplexX87, Memory];
        for &a in &all {
            assert_eq!(merge(a, a), a);
            assert_eq!(merge(a, NoClass), a);
            assert_eq!(merge(a, Memory), Memory);
            for &b in &all {
                assert_eq!(merge(a, b), merge(b, a), "{a:?} + {b:?}");
            }
        }
        assert_eq!(merge(Sse, Integer), Integer);
        // INTEGER is decided before the x87 rule.
        assert_eq!(merge(Integer, X87), Integer);
        assert_eq!(merge(Integer, X87Up), Integer);
        assert_eq!(merge(Integer, ComplexX87), Integer);
        assert_eq!(merge(Sse, X87), Memory);
        assert_eq!(merge(X87Up, Sse), Memory);
        assert_eq!(merge(X87, X87Up), Memory);
        assert_eq!(merge(ComplexX87, X87), Memory);
    }

    #[test]
    fn scalars() {
        assert_eq!(classify_value(&Type::u8()), regs(&[Integer]));
        assert_eq!(classify_value(&Type::pointer()), regs(&[Integer]));
        assert_eq!(classify_value(&Type::i128()), regs(&[Integer, Integer]));
        assert_eq!(classify_value(&Type::f32()), regs(&[Sse]));
        assert_eq!(classify_value(&Type::complex_f32()), regs(&[Sse]));
        assert_eq!(classify_value(&Type::complex_f64()), regs(&[Sse, Sse]));
        assert_eq!(classify_value(&Type::long_double()), Classification::X87);
        assert_eq!(
            classify_value(&Type::complex_long_double()),
            Classification::ComplexX87
        );
    }

    #[test]
    fn aggregates() {
        let (f, d, i, c) = (Type::f32(), Type::f64(), Type::i32(), Type::i8());
        assert_eq!(
            classify_value(&st(&[d.clone(), i.clone()])),
            regs(&[Sse, Integer])
        );
        assert_eq!(
            classify_value(&st(&[f.clone(), f.clone(), f.clone()])),
            regs(&[Sse, Sse])
        );
        assert_eq!(
            classify_value(&st(&[f.clone(), i.clone()])),
            regs(&[Integer])
        );
        assert_eq!(
            classify_value(&un(&[f.clone(), i.clone()])),
            regs(&[Integer])
        );
        assert_eq!(classify_value(&un(&[f.clone(), f.clone()])), regs(&[Sse]));
        assert_eq!(classify_value(&st(&[arr(f.clone(), 4)])), regs(&[Sse, Sse]));
        assert_eq!(classify_value(&st(&[arr(c.clone(), 3)])), regs(&[Integer]));
        assert_eq!(
            classify_value(&st(&[arr(f.clone(), 3), i.clone()])),
            regs(&[Sse, Integer])
        );
        // Nested: { { float }, { float, int } } -> SSE, then float+int.
        assert_eq!(
            classify_value(&st(&[
                st(std::slice::from_ref(&f)),
                st(&[f.clone(), i.clone()])
            ])),
            regs(&[Sse, Integer])
        );
        // A complex float at offset 4 votes in both eightbytes.
        assert_eq!(
            classify_value(&st(&[f.clone(), Type::complex_f32()])),
            regs(&[Sse, Sse])
        );
        assert_eq!(
            classify_value(&st(&[c.clone(), Type::complex_f32()])),
            regs(&[Integer, Sse])
        );
        assert_eq!(
            classify_value(&st(&[Type::i128()])),
            regs(&[Integer, Integer])
        );
        // Over 16 bytes: memory.
        assert_eq!(
            classify_value(&st(&[d.clone(), d.clone(), c.clone()])),
            Classification::Memory
        );
        assert_eq!(
            classify_value(&st(&[arr(f.clone(), 5)])),
            Classification::Memory
        );
    }

    #[test]
    fn x87_in_aggregates() {
        let ld = Type::long_double();
        assert_eq!(
            classify_value(&st(std::slice::from_ref(&ld))),
            Classification::X87
        );
        assert_eq!(
            classify_value(&un(&[ld.clone(), ld.clone()])),
            Classification::X87
        );
        assert_eq!(
            classify_value(&st(&[st(std::slice::from_ref(&ld))])),
            Classification::X87
        );
        // INTEGER beats X87 and X87UP: gcc passes this in rdi, rsi.
        let two_longs = st(&[Type::i64(), Type::i64()]);
        assert_eq!(
            classify_value(&un(&[ld.clone(), two_longs])),
            regs(&[Integer, Integer])
        );
        // The X87UP half no longer follows X87.
        assert_eq!(
            classify_value(&un(&[ld.clone(), Type::i64()])),
            Classification::Memory
        );
        // X87 with SSE is MEMORY.
        assert_eq!(
            classify_value(&un(&[ld.clone(), Type::f64()])),
            Classification::Memory
        );
        assert_eq!(
            classify_value(&st(&[ld.clone(), Type::i32()])),
            Classification::Memory
        );
        assert_eq!(
            classify_value(&st(&[Type::complex_long_double()])),
            Classification::Memory
        );
    }

    #[test]
    fn piece_sizes_and_padding() {
        let i3 = st(&[Type::i32(), Type::i32(), Type::i32()]);
        let plan = classify(&Type::void(), &[i3], None).unwrap();
        let p = arg_pieces(&plan, 0);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].offset, p[0].size, p[0].loc), (0, 8, Loc::Gpr(RDI)));
        assert_eq!((p[1].offset, p[1].size, p[1].loc), (8, 4, Loc::Gpr(6)));
        assert!(p.iter().all(|p| p.ext == Ext::None));

        // A NO_CLASS eightbyte gets no piece and no register.
        let classes = [Integer, NoClass];
        let t = Type::i128();
        let pieces = reg_pieces(&t, &classes, &INT_ARG_REGS, &VEC_ARG_REGS);
        assert_eq!(pieces.len(), 1);
        let classes = [NoClass, Sse];
        let pieces = reg_pieces(&t, &classes, &INT_ARG_REGS, &VEC_ARG_REGS);
        assert_eq!(
            pieces,
            vec![Piece {
                offset: 8,
                size: 8,
                loc: Loc::Vec(0),
                ext: Ext::None
            }]
        );
    }

    #[test]
    fn extension_of_narrow_integers() {
        let args = [
            Type::i8(),
            Type::u16(),
            Type::i32(),
            Type::u32(),
            Type::i64(),
            Type::pointer(),
            Type::u8(),
            Type::i16(),
            st(&[Type::i8()]),
        ];
        let plan = classify(&Type::i16(), &args, None).unwrap();
        let exts: Vec<Ext> = (0..args.len())
            .map(|i| arg_pieces(&plan, i)[0].ext)
            .collect();
        let (s, z, n) = (Ext::Sign, Ext::Zero, Ext::None);
        assert_eq!(exts, vec![s, z, s, z, n, n, z, s, n]);
        // The last three went to the stack with their extension and size.
        assert_eq!(arg_pieces(&plan, 6)[0].loc, Loc::Stack(0));
        assert_eq!(arg_pieces(&plan, 7)[0].size, 2);
        let RetPass::Direct(ret) = &plan.ret.pass else {
            panic!("{plan}")
        };
        assert_eq!(ret[0].ext, Ext::Sign);
        assert_eq!(ret[0].size, 2);
    }

    #[test]
    fn no_splitting_and_registers_stay_free() {
        let l2 = st(&[Type::i64(), Type::i64()]);
        let mut args = vec![Type::i64(); 5];
        args.push(l2.clone());
        args.push(Type::i32());
        let plan = classify(&Type::void(), &args, None).unwrap();
        assert_eq!(arg_pieces(&plan, 5)[0].loc, Loc::Stack(0));
        assert_eq!(arg_pieces(&plan, 5)[0].size, 16);
        assert_eq!(arg_pieces(&plan, 6)[0].loc, Loc::Gpr(9));
        assert_eq!(plan.stack_bytes, 16);

        // {double, long} with one GPR left still fits: xmm0 + r9.
        let dl = st(&[Type::f64(), Type::i64()]);
        let mut args = vec![Type::i64(); 5];
        args.push(dl.clone());
        let plan = classify(&Type::void(), &args, None).unwrap();
        let p = arg_pieces(&plan, 5);
        assert_eq!((p[0].loc, p[1].loc), (Loc::Vec(0), Loc::Gpr(9)));
        assert_eq!(plan.vector_count, Some(1));

        // With no vector register left it goes to the stack; a later long
        // still takes a GPR.
        let mut args = vec![Type::f64(); 8];
        args.push(dl);
        args.push(Type::i64());
        let plan = classify(&Type::void(), &args, None).unwrap();
        assert_eq!(arg_pieces(&plan, 8)[0].loc, Loc::Stack(0));
        assert_eq!(arg_pieces(&plan, 9)[0].loc, Loc::Gpr(RDI));
        assert_eq!(plan.vector_count, Some(8));
    }

    #[test]
    fn stack_alignment() {
        let mut args = vec![Type::i64(); 6];
        args.extend([
            Type::i32(),
            Type::i128(),
            Type::u8(),
            Type::long_double(),
            st_n(Type::i8(), 3),
            Type::complex_long_double(),
        ]);
        let plan = classify(&Type::void(), &args, None).unwrap();
        let locs: Vec<Loc> = (6..args.len())
            .map(|i| arg_pieces(&plan, i)[0].loc)
            .collect();
        assert_eq!(
            locs,
            vec![
                Loc::Stack(0),
                Loc::Stack(16),
                Loc::Stack(32),
                Loc::Stack(48),
                Loc::Stack(64),
                Loc::Stack(80),
            ]
        );
        assert_eq!(plan.stack_bytes, 112);
        assert_eq!(arg_pieces(&plan, 10)[0].size, 3);
        assert_eq!(arg_pieces(&plan, 11)[0].size, 32);
        // Stack bytes are rounded to 16.
        let plan = classify(&Type::void(), &[st_n(Type::f64(), 3)], None).unwrap();
        assert_eq!(plan.stack_bytes, 32);
    }

    #[test]
    fn returns() {
        let ret_of = |t: Type| classify(&t, &[Type::i32()], None).unwrap();
        let dl = ret_of(st(&[Type::f64(), Type::i64()]));
        let RetPass::Direct(p) = &dl.ret.pass else {
            panic!()
        };
        assert_eq!((p[0].loc, p[1].loc), (Loc::Vec(0), Loc::Gpr(RAX)));
        let ld = ret_of(st(&[Type::i64(), Type::f64()]));
        let RetPass::Direct(p) = &ld.ret.pass else {
            panic!()
        };
        assert_eq!((p[0].loc, p[1].loc), (Loc::Gpr(RAX), Loc::Vec(0)));
        let ii = ret_of(Type::u128());
        let RetPass::Direct(p) = &ii.ret.pass else {
            panic!()
        };
        assert_eq!((p[0].loc, p[1].loc), (Loc::Gpr(RAX), Loc::Gpr(RDX)));

        let big = ret_of(st_n(Type::i64(), 3));
        assert_eq!(
            big.ret.pass,
            RetPass::Indirect {
                pointer: Loc::Gpr(RDI),
                returned: Some(Loc::Gpr(RAX))
            }
        );
        // rdi is taken by the hidden pointer.
        assert_eq!(arg_pieces(&big, 0)[0].loc, Loc::Gpr(6));

        let x = ret_of(st(&[Type::long_double()]));
        assert_eq!(
            x.ret.pass,
            RetPass::Direct(vec![Piece {
                offset: 0,
                size: 10,
                loc: Loc::X87(0),
                ext: Ext::None
            }])
        );
        let z = ret_of(Type::complex_long_double());
        let RetPass::Direct(p) = &z.ret.pass else {
            panic!()
        };
        assert_eq!(
            p.iter()
                .map(|p| (p.offset, p.size, p.loc))
                .collect::<Vec<_>>(),
            vec![(0, 10, Loc::X87(0)), (16, 10, Loc::X87(1))]
        );
        // An x87 return takes no argument register.
        assert_eq!(arg_pieces(&z, 0)[0].loc, Loc::Gpr(RDI));
        assert_eq!(ret_of(Type::void()).ret.pass, RetPass::Void);
    }

    #[test]
    fn variadic_plans_set_al_and_flags() {
        let args = [
            Type::pointer(),
            Type::f64(),
            Type::i32(),
            Type::long_double(),
        ];
        let plan = classify(&Type::i32(), &args, Some(1)).unwrap();
        assert_eq!(plan.vector_count, Some(1));
        assert_eq!(plan.fixed_args, Some(1));
        let flags: Vec<bool> = plan.args.iter().map(|a| a.variadic).collect();
        assert_eq!(flags, vec![false, true, true, true]);
        assert_eq!(arg_pieces(&plan, 3)[0].loc, Loc::Stack(0));
        // Non-variadic plans set al too.
        let plan = classify(&Type::void(), &[], None).unwrap();
        assert_eq!(plan.vector_count, Some(0));
    }

    #[test]
    fn argument_area_limit() {
        let chunk = st(&[arr(Type::u8(), 16 * 1024)]);
        let ok = vec![chunk.clone(); 16];
        let plan = classify(&Type::void(), &ok, None).unwrap();
        assert_eq!(plan.stack_bytes as u64, MAX_STACK_BYTES);
        let too_many = vec![chunk; 17];
        assert_eq!(
            classify(&Type::void(), &too_many, None).unwrap_err(),
            Error::ArgumentAreaTooLarge {
                bytes: 17 * 16 * 1024,
                max: MAX_STACK_BYTES
            }
        );
        // Offsets beyond u32 never escape: refused the same way.
        let huge = st(&[arr(Type::u8(), crate::types::MAX_TYPE_SIZE as usize)]);
        assert!(matches!(
            classify(&Type::void(), &vec![huge; 300], None).unwrap_err(),
            Error::ArgumentAreaTooLarge { .. }
        ));
    }

    /// Every plan over a grid of mixed signatures passes `check()` and
    /// uses each register at most once.
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
            st_n(Type::f32(), 3),
            st_n(Type::i64(), 3),
            un(&[Type::f32(), Type::i32()]),
            st(&[arr(Type::i8(), 3)]),
        ];
        for seed in 0..400usize {
            let n = seed % 17;
            let args: Vec<Type> = (0..n)
                .map(|k| pool[(seed * 7 + k * 13 + k * k) % pool.len()].clone())
                .collect();
            let ret = if seed % 5 == 0 {
                Type::void()
            } else {
                pool[seed % pool.len()].clone()
            };
            let plan = classify(&ret, &args, None).unwrap();
            plan.check().unwrap();
            let mut seen = Vec::new();
            let mut stack_end = 0;
            for a in &plan.args {
                let ArgPass::Direct(pieces) = &a.pass else {
                    panic!()
                };
                for p in pieces {
                    match p.loc {
                        Loc::Stack(off) => {
                            assert!(off >= stack_end, "{plan}");
                            assert_eq!(off as usize % a.ty.align().max(8), 0, "{plan}");
                            stack_end = off + p.size;
                        }
                        loc => {
                            assert!(!seen.contains(&loc), "{plan}");
                            seen.push(loc);
                        }
                    }
                }
            }
            let vecs = seen.iter().filter(|l| matches!(l, Loc::Vec(_))).count();
            assert_eq!(plan.vector_count, Some(vecs as u8));
        }
    }
}
