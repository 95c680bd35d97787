//! The Arm 64-bit procedure call standard (AAPCS64) as Linux uses it
//! ([`Abi::Aapcs64`]), and Apple's arm64 variant as a [`Policy`] on the
//! same rules.
//!
//! Arguments take general registers `x0`-`x7` (NGRN counts them), vector
//! registers `v0`-`v7` (NSRN) and then the stack (NSAA), in order, with no
//! back-filling: a register skipped or refused stays unused. Values travel
//! by category:
//!
//! - `float`, `double`, `long double`: the next `v` register (`s`, `d`,
//!   `q` view). `long double` is IEEE binary128 on AArch64 Linux, which has
//!   [`Type::long_double`]'s size and alignment (16, 16): one 16-byte
//!   piece in a `q` register.
//! - Homogeneous floating-point aggregates (HFA): structs, unions, arrays
//!   and complex types whose leaves are 1-4 values of one float type with
//!   no padding (nested structs and arrays flatten; a union counts its
//!   largest member). They take that many consecutive `v` registers, one
//!   member each, whatever their size (`struct { long double x[4]; }`, 64
//!   bytes, comes in `q0`-`q3`). If too few remain the whole HFA goes to
//!   the stack and NSRN becomes 8, so later floats go to the stack too.
//! - Integers and pointers: the next `x` register. `__int128` takes an
//!   even-numbered pair (`x2:x3` after one `int`), leaving a skipped
//!   register unused.
//! - Other composites of at most 16 bytes: 1-2 consecutive `x` registers,
//!   starting at an even one when 16-aligned; if they do not fit entirely
//!   the value goes to the stack and NGRN becomes 8.
//! - Other composites over 16 bytes: copied by the caller, the copy's
//!   address passed like a pointer ([`ArgPass::Indirect`]).
//! - Stack arguments (Linux): 8-byte slots, 16-aligned for 16-aligned
//!   types; a `float` or `char` fills a whole slot. The area is rounded to
//!   16 bytes.
//!
//! Returns: floats in `v0`, HFAs in `v0`-`v3`, integers in `x0`
//! (`__int128` in `x0:x1`), other composites of at most 16 bytes in
//! `x0`/`x1`, everything else in a buffer whose address the caller passes
//! in `x8`; unlike x86-64 the callee does not hand the address back. `x8`
//! is not an argument register, so the arguments do not shift.
//!
//! Variadic arguments on Linux travel exactly like fixed ones (`va_list`
//! keeps separate general and vector save areas); there is no `al` count.
//!
//! Narrow integers: the standard leaves the bits above a value's width
//! unspecified and gcc relies on that both ways (a caller passes `(char)
//! -56` as `mov w1, -56`; a callee returning `short` does not extend it).
//! As on x86-64 we sign- or zero-extend narrow arguments to 64 bits, which
//! every reader accepts and which is also what Apple requires (the caller
//! extends to 32 bits), and narrow returns carry an [`Ext`] so the stub
//! widens them to a full `ffi_arg`.
//!
//! The callee preserves `x19`-`x29` and the low 64 bits of `v8`-`v15`
//! (listed as `Loc::Vec(8..=15)`; the upper halves are caller-saved).
//!
//! All of the above was checked against `aarch64-linux-gnu-gcc` 12 `-O2
//! -S` callers and callees (see `tests/golden_aapcs64.rs`).
//!
//! ```
//! use jitffi::{classify::classify, Abi, Type};
//! // void f(int, __int128, float, struct { float x, y, z; });
//! let f3 = Type::structure([Type::f32(), Type::f32(), Type::f32()]).unwrap();
//! let args = [Type::i32(), Type::i128(), Type::f32(), f3];
//! let plan = classify(Abi::Aapcs64, &Type::void(), &args, None).unwrap().to_string();
//! assert!(plan.contains("arg 1 __int128: [0..8) x2, [8..16) x3\n"));
//! assert!(plan.contains("arg 3 struct { float; float; float; }: [0..4) v1, [4..8) v2, [8..12) v3\n"));
//! ```

use super::{fill_packed_layout, scalar_ext, MAX_STACK_BYTES};
use crate::abi::{Abi, Arch};
use crate::error::{Error, Result};
use crate::plan::{ArgPass, ArgPlan, CallPlan, Ext, Loc, Piece, RetPass, RetPlan};
use crate::types::{Type, TypeKind};

/// Argument registers of each kind: `x0`-`x7`, `v0`-`v7`.
const ARG_REGS: u8 = 8;
/// The indirect-result register.
const X8: u8 = 8;
/// Most members an HFA may have (and most `v` registers a return uses).
const MAX_HFA_MEMBERS: u32 = 4;
/// x19-x28 and the frame pointer x29.
const CALLEE_SAVED_GPRS: std::ops::RangeInclusive<u8> = 19..=29;
/// v8-v15 (their low 64 bits).
const CALLEE_SAVED_VECS: std::ops::RangeInclusive<u8> = 8..=15;

/// What an AAPCS64 callee keeps for its caller: `x19`-`x29` and (the low
/// halves of) `v8`-`v15`. Also what every AArch64 stub, itself an AAPCS64
/// function, must keep for its own caller.
pub(crate) fn callee_saved() -> Vec<Loc> {
    CALLEE_SAVED_GPRS
        .map(Loc::Gpr)
        .chain(CALLEE_SAVED_VECS.map(Loc::Vec))
        .collect()
}

/// The operating-system variations of AAPCS64. [`Policy::LINUX`] is the
/// standard itself; [`Policy::APPLE`] is Apple's arm64 ABI (macOS, iOS).
///
/// Apple also has the caller extend `char` and `short` arguments to 32
/// bits; every plan here extends them to 64, so that needs no flag. Its C
/// `long double` is `double`: describe it with [`Type::f64`].
/// [`Type::long_double`] is binary128 under both policies.
///
/// ```
/// use jitffi::classify::aapcs64::{classify_with, Policy};
/// use jitffi::Type;
/// // f(8 x long, char, short): Apple packs the stack arguments.
/// let mut args = vec![Type::i64(); 8];
/// args.extend([Type::i8(), Type::i16()]);
/// let linux = classify_with(Policy::LINUX, &Type::void(), &args, None).unwrap().to_string();
/// let apple = classify_with(Policy::APPLE, &Type::void(), &args, None).unwrap().to_string();
/// assert!(linux.contains("arg 9 int16_t: [0..2) stack+8 sext\n"));
/// assert!(apple.contains("arg 9 int16_t: [0..2) stack+2\n"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Scalars and HFAs on the stack take their own size at their natural
    /// alignment instead of a whole 8-byte slot (Apple). Other composites
    /// keep 8-byte granules, as clang passes them as `i64` arrays.
    pub packed_stack: bool,
    /// Variadic arguments never use registers: each goes to the stack in
    /// an 8-byte slot, 16-aligned for 16-aligned types (Apple).
    pub variadic_on_stack: bool,
    /// A 16-aligned value in two `x` registers (`__int128`, `struct {
    /// __int128; }`) starts at an even register (the standard's rule
    /// C.9). Apple's clang starts it at any register (`f(int, __int128,
    /// int)` uses `w0`, `x1:x2`, `w3`).
    pub even_register_pairs: bool,
}

impl Policy {
    /// AAPCS64 as Linux (and the standard) has it.
    pub const LINUX: Policy = Policy {
        packed_stack: false,
        variadic_on_stack: false,
        even_register_pairs: true,
    };
    /// Apple's arm64 variant.
    pub const APPLE: Policy = Policy {
        packed_stack: true,
        variadic_on_stack: true,
        even_register_pairs: false,
    };
}

/// The float type of an HFA's members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    F32,
    F64,
    F128,
}

impl Base {
    fn size(self) -> u64 {
        match self {
            Base::F32 => 4,
            Base::F64 => 8,
            Base::F128 => 16,
        }
    }
}

/// How a whole value travels, before locations are handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// `float`, `double`, `long double`: one `v` register.
    Float,
    /// An HFA of `count` members of `member` bytes each.
    Hfa { member: u32, count: u32 },
    /// An integer or pointer of at most 8 bytes.
    Int,
    /// `__int128`: an even `x` pair.
    Int128,
    /// Any other composite of at most 16 bytes.
    Small,
    /// Any other composite: by reference (returned through `x8`).
    Large,
}

fn class_of(ty: &Type) -> Class {
    match ty.kind() {
        TypeKind::F32 | TypeKind::F64 | TypeKind::LongDouble => Class::Float,
        TypeKind::U128 | TypeKind::I128 => Class::Int128,
        TypeKind::U8
        | TypeKind::I8
        | TypeKind::U16
        | TypeKind::I16
        | TypeKind::U32
        | TypeKind::I32
        | TypeKind::U64
        | TypeKind::I64
        | TypeKind::Pointer => Class::Int,
        // Complex types, structs, unions (arrays only as members). `void`
        // never reaches here: validation refuses it as an argument and the
        // return path handles it first.
        _ => match hfa(ty) {
            Some((base, count)) => Class::Hfa {
                member: base.size() as u32,
                count,
            },
            None if ty.size() <= 16 => Class::Small,
            None => Class::Large,
        },
    }
}

/// The HFA view of an aggregate or complex type: its member float type and
/// member count, when it has 1-4 members of one float type and no padding.
fn hfa(ty: &Type) -> Option<(Base, u32)> {
    let mut base = None;
    let count = float_leaves(ty, &mut base)?;
    let base = base?;
    (1..=u64::from(MAX_HFA_MEMBERS))
        .contains(&count)
        .then_some((base, count as u32))
}

/// Counts the float leaves of `ty`, all of type `base` (set by the first
/// one); `None` when a leaf is not a float, a float of another type, an
/// aggregate has padding, or the count passes 4 (then it is no HFA, and
/// stopping early keeps huge arrays cheap).
fn float_leaves(ty: &Type, base: &mut Option<Base>) -> Option<u64> {
    let mut leaf = |b: Base, n: u64| -> Option<u64> {
        match base {
            Some(have) if *have != b => None,
            _ => {
                *base = Some(b);
                Some(n)
            }
        }
    };
    let count = match ty.kind() {
        TypeKind::F32 => leaf(Base::F32, 1)?,
        TypeKind::F64 => leaf(Base::F64, 1)?,
        TypeKind::LongDouble => leaf(Base::F128, 1)?,
        TypeKind::ComplexF32 => leaf(Base::F32, 2)?,
        TypeKind::ComplexF64 => leaf(Base::F64, 2)?,
        TypeKind::ComplexLongDouble => leaf(Base::F128, 2)?,
        TypeKind::Struct { fields, .. } => {
            let mut sum = 0u64;
            for f in fields {
                sum += float_leaves(f, base)?;
                if sum > u64::from(MAX_HFA_MEMBERS) {
                    return None;
                }
            }
            sum
        }
        TypeKind::Union { fields } => {
            let mut most = 0u64;
            for f in fields {
                most = most.max(float_leaves(f, base)?);
            }
            most
        }
        TypeKind::Array { elem, len } => float_leaves(elem, base)?.saturating_mul(*len as u64),
        _ => return None,
    };
    if count > u64::from(MAX_HFA_MEMBERS) {
        return None;
    }
    // No padding anywhere (gcc checks each level): a union of a float and
    // a two-float struct is an HFA of two, a union of a float and a
    // double is not.
    let b = (*base)?;
    (ty.size() as u64 == count * b.size()).then_some(count)
}

fn piece(offset: u32, size: u32, loc: Loc, ext: Ext) -> Piece {
    Piece {
        offset,
        size,
        loc,
        ext,
    }
}

/// One piece per HFA member, in consecutive `v` registers from `first`.
fn hfa_pieces(member: u32, count: u32, first: u8) -> Vec<Piece> {
    (0..count)
        .map(|i| piece(i * member, member, Loc::Vec(first + i as u8), Ext::None))
        .collect()
}

/// A value of at most 16 bytes in consecutive `x` registers from `first`,
/// 8 bytes each.
fn gpr_pieces(size: u32, first: u8, ext: Ext) -> Vec<Piece> {
    (0..size.div_ceil(8))
        .map(|i| {
            let offset = 8 * i;
            piece(
                offset,
                (size - offset).min(8),
                Loc::Gpr(first + i as u8),
                ext,
            )
        })
        .collect()
}

fn align_up(v: u64, align: u64) -> u64 {
    v.div_ceil(align) * align
}

fn ret_pass(ret: &Type) -> RetPass {
    if ret.is_void() {
        return RetPass::Void;
    }
    // Returned values are at most 16 bytes or HFAs (at most 64).
    let size = ret.size() as u32;
    match class_of(ret) {
        Class::Float => RetPass::Direct(vec![piece(0, size, Loc::Vec(0), Ext::None)]),
        Class::Hfa { member, count } => RetPass::Direct(hfa_pieces(member, count, 0)),
        Class::Int => RetPass::Direct(vec![piece(0, size, Loc::Gpr(0), scalar_ext(ret))]),
        Class::Int128 | Class::Small => RetPass::Direct(gpr_pieces(size, 0, Ext::None)),
        Class::Large => RetPass::Indirect {
            pointer: Loc::Gpr(X8),
            returned: None,
        },
    }
}

/// The running allocation: NGRN, NSRN, NSAA, and the bytes of
/// by-reference copies the caller keeps in its frame.
struct Alloc {
    ngrn: u8,
    nsrn: u8,
    nsaa: u64,
    copy_bytes: u64,
}

impl Alloc {
    /// Places `size` bytes aligned to `align` at the next stack offset and
    /// advances past them, rounded up to `granule`.
    fn stack(&mut self, size: u64, align: u64, granule: u64) -> Loc {
        let offset = align_up(self.nsaa, align);
        self.nsaa = offset + align_up(size, granule);
        // An offset beyond u32 only occurs far past MAX_STACK_BYTES, which
        // is refused before the plan escapes.
        Loc::Stack(u32::try_from(offset).unwrap_or(u32::MAX))
    }

    /// A stack location for `ty` under the slot rules: 8-byte slots,
    /// 16-aligned for 16-aligned types; or, `packed`, the type's own size
    /// at its own alignment.
    fn stack_for(&mut self, ty: &Type, packed: bool) -> Loc {
        let (size, align) = (ty.size() as u64, ty.align() as u64);
        if packed {
            self.stack(size, align, 1)
        } else {
            self.stack(size, align.max(8), 8)
        }
    }
}

/// Classifies a signature under AAPCS64 with `policy`. The signature has
/// passed [`super::classify`]'s validation.
pub(super) fn classify_validated(
    policy: Policy,
    ret: &Type,
    args: &[Type],
    fixed_args: Option<usize>,
) -> Result<CallPlan> {
    let mut at = Alloc {
        ngrn: 0,
        nsrn: 0,
        nsaa: 0,
        copy_bytes: 0,
    };
    let mut arg_plans = Vec::with_capacity(args.len());
    for (i, ty) in args.iter().enumerate() {
        let variadic = fixed_args.is_some_and(|n| i >= n);
        let pass = if variadic && policy.variadic_on_stack {
            stack_only(&mut at, ty)
        } else {
            allocate(&mut at, ty, policy)
        };
        arg_plans.push(ArgPlan {
            ty: ty.clone(),
            pass,
            variadic,
        });
    }

    let stack_bytes = align_up(at.nsaa, 16);
    // The copies live in the caller's frame next to the argument area, so
    // they count against the same limit (as on Win64).
    let needed = stack_bytes + at.copy_bytes;
    if needed > MAX_STACK_BYTES {
        return Err(Error::ArgumentAreaTooLarge {
            bytes: needed,
            max: MAX_STACK_BYTES,
        });
    }

    let callee_saved = callee_saved();
    let mut plan = CallPlan {
        abi: Abi::Aapcs64,
        arch: Arch::Aarch64,
        ret: RetPlan {
            ty: ret.clone(),
            pass: ret_pass(ret),
        },
        args: arg_plans,
        fixed_args,
        // Bounded by MAX_STACK_BYTES just above.
        stack_bytes: stack_bytes as u32,
        shadow_space: 0,
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

/// Registers first, then the stack: the standard's stage C.
fn allocate(at: &mut Alloc, ty: &Type, policy: Policy) -> ArgPass {
    let packed = policy.packed_stack;
    // Values in registers are at most 16 bytes, or HFAs of at most 64.
    let size = ty.size() as u32;
    let on_stack = |at: &mut Alloc, ext: Ext| {
        let loc = at.stack_for(ty, packed);
        // A packed slot is exactly as wide as the value: nothing to widen.
        let ext = if packed { Ext::None } else { ext };
        ArgPass::Direct(vec![piece(0, size, loc, ext)])
    };
    match class_of(ty) {
        Class::Float => {
            if at.nsrn < ARG_REGS {
                at.nsrn += 1;
                ArgPass::Direct(vec![piece(0, size, Loc::Vec(at.nsrn - 1), Ext::None)])
            } else {
                on_stack(at, Ext::None)
            }
        }
        Class::Hfa { member, count } => {
            if u32::from(at.nsrn) + count <= u32::from(ARG_REGS) {
                let pieces = hfa_pieces(member, count, at.nsrn);
                at.nsrn += count as u8;
                ArgPass::Direct(pieces)
            } else {
                at.nsrn = ARG_REGS;
                on_stack(at, Ext::None)
            }
        }
        Class::Int => {
            if at.ngrn < ARG_REGS {
                at.ngrn += 1;
                let loc = Loc::Gpr(at.ngrn - 1);
                ArgPass::Direct(vec![piece(0, size, loc, scalar_ext(ty))])
            } else {
                on_stack(at, scalar_ext(ty))
            }
        }
        Class::Int128 | Class::Small => {
            if policy.even_register_pairs && ty.align() >= 16 {
                at.ngrn = at.ngrn.next_multiple_of(2);
            }
            let words = size.div_ceil(8) as u8;
            if at.ngrn + words <= ARG_REGS {
                let pieces = gpr_pieces(size, at.ngrn, Ext::None);
                at.ngrn += words;
                ArgPass::Direct(pieces)
            } else {
                at.ngrn = ARG_REGS;
                // Composites keep 8-byte granules even when packed (clang
                // passes them as i64 arrays); __int128 is 16 either way.
                let loc = at.stack_for(ty, false);
                ArgPass::Direct(vec![piece(0, size, loc, Ext::None)])
            }
        }
        Class::Large => {
            at.copy_bytes += align_up(ty.size() as u64, 16);
            let pointer = if at.ngrn < ARG_REGS {
                at.ngrn += 1;
                Loc::Gpr(at.ngrn - 1)
            } else {
                at.stack(8, 8, 8)
            };
            ArgPass::Indirect { pointer }
        }
    }
}

/// Apple's variadic arguments: the stack only, in 8-byte slots.
fn stack_only(at: &mut Alloc, ty: &Type) -> ArgPass {
    match class_of(ty) {
        Class::Large => {
            at.copy_bytes += align_up(ty.size() as u64, 16);
            ArgPass::Indirect {
                pointer: at.stack(8, 8, 8),
            }
        }
        class => {
            let loc = at.stack_for(ty, false);
            let ext = if class == Class::Int {
                scalar_ext(ty)
            } else {
                Ext::None
            };
            ArgPass::Direct(vec![piece(0, ty.size() as u32, loc, ext)])
        }
    }
}

/// Classifies a signature under AAPCS64 with `policy`: [`Policy::LINUX`]
/// gives the plan [`super::classify`] gives for [`Abi::Aapcs64`];
/// [`Policy::APPLE`] gives Apple's arm64 plan, which has no [`Abi`] of its
/// own (the plan's `abi` still says `Aapcs64`). Runs the same validation
/// as [`super::classify`].
///
/// ```
/// use jitffi::classify::aapcs64::{classify_with, Policy};
/// use jitffi::Type;
/// // printf("%d %f", 1, 2.0): Linux uses w1 and d0, Apple the stack.
/// let args = [Type::pointer(), Type::i32(), Type::f64()];
/// let linux = classify_with(Policy::LINUX, &Type::i32(), &args, Some(1)).unwrap().to_string();
/// assert!(linux.contains("arg 2 double (variadic): [0..8) v0\n"));
/// let apple = classify_with(Policy::APPLE, &Type::i32(), &args, Some(1)).unwrap().to_string();
/// assert!(apple.contains("arg 1 int32_t (variadic): [0..4) stack+0 sext\n"));
/// assert!(apple.contains("arg 2 double (variadic): [0..8) stack+8\n"));
/// ```
pub fn classify_with(
    policy: Policy,
    ret: &Type,
    args: &[Type],
    fixed_args: Option<usize>,
) -> Result<CallPlan> {
    super::validate(ret, args, fixed_args)?;
    classify_validated(policy, ret, args, fixed_args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(fields: &[Type]) -> Type {
        Type::structure(fields.iter().cloned()).unwrap()
    }
    fn un(fields: &[Type]) -> Type {
        Type::union(fields.iter().cloned()).unwrap()
    }
    fn arr(elem: Type, len: usize) -> Type {
        Type::array(elem, len).unwrap()
    }

    #[test]
    fn hfa_detection() {
        let (f, d, q) = (Type::f32(), Type::f64(), Type::long_double());
        let yes = [
            (st(std::slice::from_ref(&f)), Base::F32, 1),
            (st(&[arr(f.clone(), 2), f.clone()]), Base::F32, 3),
            (
                st(&[
                    st(std::slice::from_ref(&d)),
                    arr(st(std::slice::from_ref(&d)), 3),
                ]),
                Base::F64,
                4,
            ),
            (st(&[Type::complex_f32(), arr(f.clone(), 2)]), Base::F32, 4),
            (Type::complex_long_double(), Base::F128, 2),
            (st(&[q.clone(), q.clone(), q.clone()]), Base::F128, 3),
            // The largest member counts, if it fills the union.
            (un(&[f.clone(), st(&[f.clone(), f.clone()])]), Base::F32, 2),
            (un(&[arr(d.clone(), 2), Type::complex_f64()]), Base::F64, 2),
        ];
        for (t, base, n) in yes {
            assert_eq!(hfa(&t), Some((base, n)), "{t}");
        }
        let no = [
            st(&[f.clone(), d.clone()]),
            st(&[arr(f.clone(), 5)]),
            st(&[Type::complex_f64(), Type::complex_f64(), d.clone()]),
            st(&[f.clone(), Type::i32()]),
            un(&[f.clone(), Type::i32()]),
            // Padding: 8 bytes for one float.
            un(&[f.clone(), d.clone()]),
            // A huge array is refused without walking it.
            st(&[arr(f.clone(), 1 << 20)]),
            st(&[arr(st(&[Type::u8()]), 4)]),
        ];
        for t in no {
            assert_eq!(hfa(&t), None, "{t}");
        }
        // Scalars are floats, not HFAs, but bare complex values are HFAs.
        assert_eq!(class_of(&f), Class::Float);
        assert_eq!(
            class_of(&Type::complex_f64()),
            Class::Hfa {
                member: 8,
                count: 2
            }
        );
        assert_eq!(class_of(&st(&[arr(f.clone(), 5)])), Class::Large);
        assert_eq!(class_of(&un(&[f, d])), Class::Small);
    }

    #[test]
    fn argument_area_limit_counts_copies() {
        let chunk = st(&[arr(Type::u8(), 16 * 1024)]);
        let args = vec![chunk.clone(); 15];
        let plan = classify_with(Policy::LINUX, &Type::void(), &args, None).unwrap();
        // Eight addresses in x0-x7, seven on the stack.
        assert_eq!(plan.stack_bytes, 64);
        let e = classify_with(Policy::LINUX, &Type::void(), &vec![chunk; 16], None).unwrap_err();
        assert_eq!(
            e,
            Error::ArgumentAreaTooLarge {
                bytes: 16 * 16 * 1024 + 64,
                max: MAX_STACK_BYTES
            }
        );
        // The most arguments a signature can have fit.
        let many = vec![Type::long_double(); crate::cif::MAX_ARGS];
        for policy in [Policy::LINUX, Policy::APPLE] {
            let plan = classify_with(policy, &Type::void(), &many, None).unwrap();
            let slots = (crate::cif::MAX_ARGS - 8) as u32;
            assert_eq!(plan.stack_bytes, 16 * slots);
        }
    }
}
