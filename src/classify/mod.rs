//! Classification: a signature in, a [`CallPlan`] out. Pure functions, one
//! module per ABI; no code and no memory is touched here.
//!
//! [`classify`] first refuses what no ABI can pass (void or array
//! arguments, variadic arguments C would have promoted, absurd counts), so
//! every per-ABI classifier starts from a well-formed signature and only
//! has to enforce its own limits (the outgoing stack area).
//!
//! ```
//! use jitffi::{classify::classify, Abi, Error, Type};
//! // printf("%f", 1.0f) without the promotion to double: refused.
//! let e = classify(Abi::SysV64, &Type::i32(), &[Type::pointer(), Type::f32()], Some(1)).unwrap_err();
//! assert!(matches!(e, Error::VariadicNotPromoted { index: 1, promoted: "double", .. }));
//! ```

pub mod aapcs64;
pub mod sysv64;
pub mod win64;

use crate::abi::{Abi, Arch};
use crate::cif::MAX_ARGS;
use crate::error::{Error, Position, Result};
use crate::plan::{self, CallPlan, Loc};
use crate::types::{Type, TypeKind};

/// Largest outgoing stack argument area a plan may need, in bytes. Stubs
/// reserve it on the caller's stack, so it must stay far below any thread's
/// stack size; no real C signature comes near it.
///
/// ```
/// use jitffi::{classify::{classify, MAX_STACK_BYTES}, Abi, Error, Type};
/// let chunk = Type::structure([Type::array(Type::u8(), 16 * 1024).unwrap()]).unwrap();
/// assert!(classify(Abi::SysV64, &Type::void(), &vec![chunk.clone(); 16], None).is_ok());
/// let e = classify(Abi::SysV64, &Type::void(), &vec![chunk; 17], None).unwrap_err();
/// assert_eq!(e, Error::ArgumentAreaTooLarge { bytes: 17 * 16 * 1024, max: MAX_STACK_BYTES });
/// ```
pub const MAX_STACK_BYTES: u64 = 256 * 1024;

/// Classifies a signature for `abi`. `fixed_args` is `Some(n)` for a
/// variadic signature whose first `n` arguments are fixed.
///
/// ```
/// use jitffi::{classify::classify, Abi, Type};
/// let plan = classify(Abi::SysV64, &Type::f64(), &[Type::i32(), Type::f64()], None).unwrap();
/// assert_eq!(
///     plan.to_string(),
///     "sysv64 X86_64, stack 0, al=1\n  ret double: [0..8) xmm0\n  \
///      arg 0 int32_t: [0..4) rdi sext\n  arg 1 double: [0..8) xmm0\n"
/// );
/// ```
pub fn classify(
    abi: Abi,
    ret: &Type,
    args: &[Type],
    fixed_args: Option<usize>,
) -> Result<CallPlan> {
    validate(ret, args, fixed_args)?;
    match abi {
        Abi::SysV64 => sysv64::classify(ret, args, fixed_args),
        Abi::Win64 | Abi::GnuW64 => win64::classify(abi, ret, args, fixed_args),
        Abi::Aapcs64 => aapcs64::classify_validated(aapcs64::Policy::LINUX, ret, args, fixed_args),
    }
}

/// The register a static chain travels in (libffi's Go closures,
/// `ffi_call_go`): `r10` on x86-64 under both conventions, `x18` on
/// AArch64, as gcc passes it (`__builtin_call_with_static_chain`, nested
/// functions).
///
/// ```
/// use jitffi::{classify::static_chain_register, plan::Loc, Abi};
/// assert_eq!(static_chain_register(Abi::SysV64), Loc::Gpr(10));
/// assert_eq!(static_chain_register(Abi::Win64), Loc::Gpr(10));
/// assert_eq!(static_chain_register(Abi::Aapcs64), Loc::Gpr(18));
/// ```
pub fn static_chain_register(abi: Abi) -> Loc {
    match abi.arch() {
        Arch::X86_64 => Loc::Gpr(10),
        Arch::Aarch64 => Loc::Gpr(18),
    }
}

/// How a scalar integer narrower than 64 bits is widened in a register or
/// slot: by its signedness. Every classifier marks narrow integers so.
pub(crate) fn scalar_ext(ty: &Type) -> plan::Ext {
    match ty.kind() {
        TypeKind::I8 | TypeKind::I16 | TypeKind::I32 => plan::Ext::Sign,
        TypeKind::U8 | TypeKind::U16 | TypeKind::U32 => plan::Ext::Zero,
        _ => plan::Ext::None,
    }
}

/// The ABI-independent refusals, in the order a reader would check them:
/// counts first, then the return type, then each argument.
fn validate(ret: &Type, args: &[Type], fixed_args: Option<usize>) -> Result<()> {
    if args.len() > MAX_ARGS {
        return Err(Error::TooManyArguments {
            count: args.len(),
            max: MAX_ARGS,
        });
    }
    if let Some(fixed) = fixed_args {
        if fixed > args.len() {
            return Err(Error::FixedCountOutOfRange {
                fixed,
                total: args.len(),
            });
        }
    }
    if matches!(ret.kind(), TypeKind::Array { .. }) {
        return Err(Error::ArrayByValue {
            position: Position::Return,
        });
    }
    for (index, ty) in args.iter().enumerate() {
        match ty.kind() {
            TypeKind::Void => return Err(Error::VoidArgument { index }),
            TypeKind::Array { .. } => {
                return Err(Error::ArrayByValue {
                    position: Position::Argument(index),
                })
            }
            _ => {}
        }
        let variadic = fixed_args.is_some_and(|n| index >= n);
        if variadic {
            if let Some(promoted) = default_promotion(ty) {
                return Err(Error::VariadicNotPromoted {
                    index,
                    ty: ty.to_string(),
                    promoted,
                });
            }
        }
    }
    Ok(())
}

/// What C's default argument promotions turn `ty` into, when they change
/// it. A callee reading `va_arg` can only ask for promoted types, so an
/// unpromoted variadic argument is a caller bug we refuse rather than
/// guess at (we could widen it, but the caller's buffer holds the narrow
/// value and libffi refuses it too).
fn default_promotion(ty: &Type) -> Option<&'static str> {
    match ty.kind() {
        TypeKind::F32 => Some("double"),
        TypeKind::U8 | TypeKind::I8 | TypeKind::U16 | TypeKind::I16 => Some("int"),
        _ => None,
    }
}

/// Largest packed-form argument buffer: its offsets are `u32`.
const MAX_PACKED_BYTES: u64 = u32::MAX as u64;

/// Fills `plan.packed_offsets` and `plan.packed_size` from the argument
/// types, refusing a buffer whose offsets would not fit in `u32` (possible
/// only when huge aggregates travel by reference). Every classifier calls
/// this last.
pub(crate) fn fill_packed_layout(plan: &mut CallPlan) -> Result<()> {
    // An upper bound of the layout: each argument costs at most its size
    // plus its alignment padding, and the tail rounds up by at most 7.
    let bound = plan.args.iter().fold(7u64, |acc, a| {
        acc + a.ty.size() as u64 + a.ty.align().max(8) as u64 - 1
    });
    if bound > MAX_PACKED_BYTES {
        return Err(Error::TypeTooLarge {
            what: "packed argument buffer",
            size: bound,
            max: MAX_PACKED_BYTES,
        });
    }
    let types: Vec<Type> = plan.args.iter().map(|a| a.ty.clone()).collect();
    let (offsets, size) = plan::packed_layout(&types);
    plan.packed_offsets = offsets;
    plan.packed_size = size;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysv(ret: Type, args: &[Type], fixed: Option<usize>) -> Result<CallPlan> {
        classify(Abi::SysV64, &ret, args, fixed)
    }

    #[test]
    fn counts_are_checked_first() {
        let many = vec![Type::void(); MAX_ARGS + 1];
        assert_eq!(
            sysv(Type::void(), &many, None).unwrap_err(),
            Error::TooManyArguments {
                count: MAX_ARGS + 1,
                max: MAX_ARGS
            }
        );
        assert_eq!(
            sysv(Type::void(), &[Type::i32()], Some(2)).unwrap_err(),
            Error::FixedCountOutOfRange { fixed: 2, total: 1 }
        );
        assert!(sysv(Type::void(), &[Type::i32()], Some(1)).is_ok());
        assert!(sysv(Type::void(), &[], Some(0)).is_ok());
    }

    #[test]
    fn void_and_array_positions() {
        let arr = Type::array(Type::i32(), 2).unwrap();
        assert_eq!(
            sysv(Type::void(), &[Type::i32(), Type::void()], None).unwrap_err(),
            Error::VoidArgument { index: 1 }
        );
        assert_eq!(
            sysv(arr.clone(), &[], None).unwrap_err(),
            Error::ArrayByValue {
                position: Position::Return
            }
        );
        assert_eq!(
            sysv(Type::void(), &[Type::i8(), arr], None).unwrap_err(),
            Error::ArrayByValue {
                position: Position::Argument(1)
            }
        );
    }

    #[test]
    fn variadic_promotions() {
        let fixed = Some(1);
        for (t, promoted) in [
            (Type::f32(), "double"),
            (Type::u8(), "int"),
            (Type::i8(), "int"),
            (Type::u16(), "int"),
            (Type::i16(), "int"),
        ] {
            let err = sysv(
                Type::void(),
                &[Type::pointer(), Type::i32(), t.clone()],
                fixed,
            )
            .unwrap_err();
            assert_eq!(
                err,
                Error::VariadicNotPromoted {
                    index: 2,
                    ty: t.to_string(),
                    promoted
                }
            );
            // The same type as a fixed argument is fine.
            assert!(sysv(Type::void(), &[t, Type::i32()], fixed).is_ok());
        }
        let s = Type::structure([Type::f32(), Type::u8()]).unwrap();
        for t in [
            s,
            Type::long_double(),
            Type::complex_f32(),
            Type::i128(),
            Type::u32(),
        ] {
            assert!(sysv(Type::void(), &[Type::pointer(), t], fixed).is_ok());
        }
    }

    #[test]
    fn aapcs64_is_dispatched_after_validation() {
        let plan = classify(Abi::Aapcs64, &Type::void(), &[Type::i8()], None).unwrap();
        assert_eq!((plan.abi, plan.arch), (Abi::Aapcs64, Arch::Aarch64));
        assert_eq!(
            plan,
            aapcs64::classify_with(aapcs64::Policy::LINUX, &Type::void(), &[Type::i8()], None)
                .unwrap()
        );
        assert_eq!(
            classify(Abi::Aapcs64, &Type::void(), &[Type::void()], None).unwrap_err(),
            Error::VoidArgument { index: 0 }
        );
    }

    #[test]
    fn packed_layout_bound() {
        let mut plan = sysv(Type::void(), &[Type::u8(), Type::long_double()], None).unwrap();
        assert_eq!(plan.packed_offsets, vec![0, 16]);
        assert_eq!(plan.packed_size, 32);
        // Enough huge arguments overflow u32 offsets: refused, not wrapped.
        let big = Type::array(Type::u8(), crate::types::MAX_TYPE_SIZE as usize).unwrap();
        let big = Type::structure([big]).unwrap();
        plan.args = (0..300)
            .map(|_| crate::plan::ArgPlan {
                ty: big.clone(),
                pass: crate::plan::ArgPass::Indirect {
                    pointer: crate::plan::Loc::Gpr(7),
                },
                variadic: false,
            })
            .collect();
        assert!(matches!(
            fill_packed_layout(&mut plan).unwrap_err(),
            Error::TypeTooLarge {
                what: "packed argument buffer",
                ..
            }
        ));
    }
}
