//! The Rust side of the oracle table of `oracle/c/oracles.c`: every C case
//! with its jitffi signature, what its first argument must hold, its
//! function and gcc's two callers, and seeded argument values for it.
//!
//! Included by path (`#[path = "support/oracle_table.rs"] mod oracle_table;`)
//! next to `support/shapes.rs`, which the including crate names `shapes`.

#![allow(dead_code)]

use std::ffi::{c_void, CStr};

use jitffi::{Cif, Type};
use jitffi_oracle::oracles::{self, CallFn, DirectFn};

use super::shapes::*;

/// What the first argument of a case must hold.
#[derive(Clone, Copy, Debug)]
pub enum First {
    /// Anything (a seeded pattern).
    Any,
    /// The number of variadic arguments, as `int`.
    Count,
    /// A pointer to this format string (`or_va_fmt`).
    Fmt(&'static CStr),
}

pub struct Case {
    pub name: &'static str,
    pub ret: Type,
    pub args: Vec<Type>,
    /// `Some(n)`: variadic after the first `n` arguments.
    pub fixed: Option<usize>,
    pub first: First,
    pub func: *const c_void,
    /// gcc's caller of `func` in libffi form.
    pub direct: DirectFn,
    /// gcc's caller of any function of this shape, in libffi form.
    pub call: CallFn,
}

pub fn lookup(name: &'static str) -> oracles::Case {
    oracles::case(name).unwrap_or_else(|| panic!("{name} is not in the C table"))
}

fn case(
    name: &'static str,
    ret: Type,
    args: Vec<Type>,
    fixed: Option<usize>,
    first: First,
) -> Case {
    let c = lookup(name);
    Case {
        name,
        ret,
        args,
        fixed,
        first,
        func: c.func,
        direct: c.direct,
        call: c.call,
    }
}

pub fn fixed<const N: usize>(name: &'static str, ret: Type, args: [Type; N]) -> Case {
    case(name, ret, args.to_vec(), None, First::Any)
}

/// `R f(int n, ...)` called with `variadic` after `n`.
pub fn va_count<const N: usize>(name: &'static str, ret: Type, variadic: [Type; N]) -> Case {
    let args = std::iter::once(i32()).chain(variadic).collect();
    case(name, ret, args, Some(1), First::Count)
}

/// `int64_t or_va_fmt(const char *fmt, ...)` called with `variadic`.
pub fn va_fmt<const N: usize>(name: &'static str, fmt: &'static CStr, variadic: [Type; N]) -> Case {
    let args = std::iter::once(ptr()).chain(variadic).collect();
    case(name, i64(), args, Some(1), First::Fmt(fmt))
}

fn n<const N: usize>(t: fn() -> Type) -> [Type; N] {
    std::array::from_fn(|_| t())
}

/// One line per C case, in the order of `ORACLE_LIST` in oracles.c.
pub fn table() -> Vec<Case> {
    vec![
        fixed("or_void0", void(), []),
        fixed(
            "or_scribble",
            void(),
            [s_q4(), s_100(), s_ldi(), f80(), s_dd()],
        ),
        // integers of every width
        fixed("or_i8", i8(), n::<3>(i8)),
        fixed("or_u8", u8(), n::<3>(u8)),
        fixed("or_i16", i16(), n::<2>(i16)),
        fixed("or_u16", u16(), n::<2>(u16)),
        fixed("or_i32", i32(), n::<2>(i32)),
        fixed("or_u32", u32(), n::<2>(u32)),
        fixed("or_i64", i64(), n::<2>(i64)),
        fixed("or_u64", u64(), n::<2>(u64)),
        fixed(
            "or_int_widths",
            i64(),
            [i8(), u8(), i16(), u16(), i32(), u32(), i64(), u64()],
        ),
        fixed(
            "or_narrow_stack",
            i32(),
            [
                i64(),
                i64(),
                i64(),
                i64(),
                i64(),
                i64(),
                i8(),
                u8(),
                i16(),
                u16(),
                i32(),
                u32(),
            ],
        ),
        fixed("or_ptr", ptr(), [ptr(), ptr()]),
        fixed("or_void_args", void(), [i32(), f64(), s_di()]),
        // floating point
        fixed("or_f32", f32(), n::<2>(f32)),
        fixed("or_f64", f64(), n::<4>(f64)),
        fixed("or_f80", f80(), n::<2>(f80)),
        fixed("or_f80_mixed", f80(), [i32(), f80(), f64(), f80(), i32()]),
        fixed("or_f32_spill", f32(), n::<10>(f32)),
        fixed(
            "or_spill_mixed",
            f64(),
            [
                f64(),
                i64(),
                f64(),
                i64(),
                f64(),
                i64(),
                f64(),
                i64(),
                f64(),
                i64(),
                f64(),
                i64(),
                f64(),
                i64(),
                f64(),
                f64(),
                i32(),
            ],
        ),
        fixed(
            "or_s5",
            f64(),
            [i32(), f64(), i64(), f32(), ptr(), i8(), u16(), f64()],
        ),
        fixed("or_s8", i32(), n::<16>(i32)),
        // __int128
        fixed("or_i128", i128(), n::<2>(i128)),
        fixed("or_u128", u128(), [u128()]),
        fixed(
            "or_i128_stack",
            i128(),
            [i64(), i64(), i64(), i64(), i64(), i128(), i64()],
        ),
        // complex
        fixed("or_cf32", cf32(), n::<2>(cf32)),
        fixed("or_cf64", cf64(), n::<2>(cf64)),
        fixed("or_cf80", cf80(), [cf80(), i32()]),
        // structs
        fixed("or_s_di", s_di(), n::<2>(s_di)),
        fixed("or_s_fff", s_fff(), [s_fff()]),
        fixed("or_s_iii", s_iii(), [s_iii()]),
        fixed("or_s_ccc", s_ccc(), n::<2>(s_ccc)),
        fixed("or_s_c3", s_c3(), [s_c3()]),
        fixed("or_s_f4", s_f4(), [s_f4()]),
        fixed("or_s_scic", s_scic(), [s_scic()]),
        fixed("or_s6", s_dd(), n::<2>(s_dd)),
        fixed("or_s7", s_q4(), [s_q4()]),
        fixed("or_s32", s_32(), [s_32(), i32()]),
        fixed("or_s100", s_100(), n::<2>(s_100)),
        fixed("or_nest_ffd", s_nest_ffd(), [s_nest_ffd()]),
        fixed("or_nest_mix", s_nest_mix(), [s_nest_mix(), i32()]),
        fixed("or_s_ldi", s_ldi(), [s_ldi()]),
        fixed("or_s_ld1", s_ld1(), [s_ld1()]),
        fixed("or_s_qd", s_qd(), [s_qd()]),
        fixed("or_s_fi", s_fi(), [s_fi()]),
        fixed("or_s_ff", s_ff(), n::<2>(s_ff)),
        fixed("or_s_ddd", s_ddd(), [s_ddd()]),
        fixed("or_s_odd", s_odd(), [s_odd()]),
        fixed("or_s_i128", s_i128(), [s_i128()]),
        // aggregates that no longer fit in the registers left
        fixed(
            "or_ll_full",
            i64(),
            [i64(), i64(), i64(), i64(), i64(), s_ll(), i64()],
        ),
        fixed(
            "or_dd_full",
            f64(),
            [
                f64(),
                f64(),
                f64(),
                f64(),
                f64(),
                f64(),
                f64(),
                s_dd(),
                f64(),
            ],
        ),
        fixed("or_many_s6", s_dd(), n::<5>(s_dd)),
        fixed(
            "or_mixed_aggs",
            s_di(),
            [
                s_iii(),
                s_fff(),
                s_di(),
                s_ll(),
                i8(),
                s_dd(),
                s_qd(),
                f80(),
            ],
        ),
        // unions
        fixed("or_u_fi", u_fi(), n::<2>(u_fi)),
        fixed("or_u_dl", u_dl(), [u_dl()]),
        fixed("or_u_c12i", u_c12i(), [u_c12i()]),
        fixed("or_u_fd", u_fd(), [u_fd()]),
        // variadic calls
        va_count("va_ints3", i32(), n::<3>(i32)),
        va_count("va_ints8", i32(), n::<8>(i32)),
        va_count("va_dbl0", f64(), []),
        va_count("va_dbl10", f64(), n::<10>(f64)),
        va_count("va_ld3", f80(), n::<3>(f80)),
        va_count("va_s6", s_dd(), n::<4>(f64)),
        va_count("va_q4", s_q4(), n::<7>(i64)),
        va_fmt(
            "va_fmt_mixed",
            c"iqdDspbf",
            [i32(), i64(), f64(), f80(), s_di(), s_dd(), s_q4(), s_fff()],
        ),
        va_fmt(
            "va_fmt_spill",
            c"dqdqdqdqdqdqdddi",
            [
                f64(),
                i64(),
                f64(),
                i64(),
                f64(),
                i64(),
                f64(),
                i64(),
                f64(),
                i64(),
                f64(),
                i64(),
                f64(),
                f64(),
                f64(),
                i32(),
            ],
        ),
    ]
}

/// Asserts that the table lists the cases of the C table, in its order,
/// each once; returns how many there are.
pub fn assert_matches_c() -> usize {
    let rust: Vec<&str> = table().iter().map(|c| c.name).collect();
    let c: Vec<&str> = oracles::cases().iter().map(|c| c.name).collect();
    assert_eq!(
        rust, c,
        "tests/support/oracle_table.rs and oracles.c list different cases"
    );
    let mut unique = rust.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), rust.len(), "duplicate case names");
    rust.len()
}

/// The cases whose name contains `JITFFI_ORACLE_ONLY` (all when unset).
pub fn selected() -> Vec<Case> {
    let only = std::env::var("JITFFI_ORACLE_ONLY").unwrap_or_default();
    table()
        .into_iter()
        .filter(|c| c.name.contains(only.as_str()))
        .collect()
}

/// The case of the table named `name`.
pub fn named(name: &str) -> Case {
    table()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} is not in the Rust table"))
}

/// jitffi's cif for the case (variadic where the case is).
pub fn cif_for(case: &Case) -> Result<Cif, String> {
    match case.fixed {
        None => Cif::new(case.ret.clone(), &case.args),
        Some(n) => Cif::new_variadic(case.ret.clone(), &case.args[..n], &case.args[n..]),
    }
    .map_err(|e| format!("Cif for {}: {e}", case.name))
}

/// C-like text for the case's signature, `;` before the variadic part.
pub fn signature(case: &Case) -> String {
    let args: Vec<String> = case.args.iter().map(|t| t.to_string()).collect();
    match case.fixed {
        None => format!("{}({})", case.ret, args.join(", ")),
        Some(n) => format!(
            "{}({}; ...{})",
            case.ret,
            args[..n].join(", "),
            args[n..].join(", ")
        ),
    }
}

/// Argument values for one call of a case.
pub struct CallArgs {
    /// One 16-aligned buffer per argument.
    pub bufs: Vec<Buf>,
    /// Pointers into `bufs`, in libffi's `avalue` form.
    pub avalue: Vec<*const c_void>,
    /// The meaningful bytes of each argument as made (padding zeroed).
    pub sent: Vec<Vec<u8>>,
}

/// Seeded values for every argument of `case` (see [`value`]), the first
/// one replaced by what the case's [`First`] asks for.
pub fn make_args(case: &Case, salt: u64) -> CallArgs {
    let mut rng = Rng::for_case(case.name, salt);
    let mut bufs: Vec<Buf> = case
        .args
        .iter()
        .map(|t| Buf::from_bytes(&value(t, &mut rng)))
        .collect();
    if let Some(b) = bufs.first_mut() {
        match case.first {
            First::Any => {}
            First::Count => {
                let n = (case.args.len() - 1) as i32;
                b.bytes_mut().copy_from_slice(&n.to_le_bytes());
            }
            First::Fmt(s) => b
                .bytes_mut()
                .copy_from_slice(&(s.as_ptr() as usize).to_le_bytes()),
        }
    }
    let avalue = bufs.iter_mut().map(|b| b.ptr().cast_const()).collect();
    let sent = case
        .args
        .iter()
        .zip(&bufs)
        .map(|(t, b)| masked(b.bytes(), &mask(t)))
        .collect();
    CallArgs { bufs, avalue, sent }
}
