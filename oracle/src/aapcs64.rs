//! AArch64 (AAPCS64) oracle functions compiled from `c/aarch64/`: gcc's
//! ground truth for jitffi's AArch64 stubs and thunks.
//!
//! `c/aarch64/aapcs64.c` defines the oracles (functions that record every
//! argument they receive and return a value derived from all of them), a
//! gcc-compiled caller of each in libffi form (`direct`), the same caller
//! for any function of the shape (`call`, to aim at a closure) and each
//! case's signature in C type names. This module reads that table, turns
//! the type names into plain type descriptions ([`Ty`]; the tests convert
//! them to jitffi types) and reads the per-thread record.

use std::ffi::{c_char, c_int, c_void, CStr};

/// Most arguments one record holds (`A64_MAX_ARGS`).
pub const MAX_ARGS: usize = 32;
/// Bytes per recorded argument (`A64_SLOT`).
pub const SLOT: usize = 128;

/// `void direct(void *rvalue, void **avalue)`: calls the oracle with gcc's
/// own calling code and stores its result as `ffi_call` would (narrow
/// integers widened to 8 bytes; `rvalue` may be null).
pub type DirectFn = unsafe extern "C" fn(*mut c_void, *const *const c_void);

/// `void call(void *fn, void *rvalue, void **avalue)`: calls `fn`, a
/// function of the case's signature (variadic after the first parameter
/// for variadic cases), with gcc's calling code, and stores its result as
/// [`DirectFn`] does.
pub type CallFn = unsafe extern "C" fn(*const c_void, *mut c_void, *const *const c_void);

/// A C type of the oracles, as plain data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    Void,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    I128,
    U128,
    F32,
    F64,
    /// `long double`: IEEE binary128 on AArch64 Linux.
    F128,
    Ptr,
    CF32,
    CF64,
    CF128,
    Struct(Vec<Ty>),
    Union(Vec<Ty>),
    Array(Box<Ty>, usize),
}

fn st(fields: impl IntoIterator<Item = Ty>) -> Ty {
    Ty::Struct(fields.into_iter().collect())
}

fn arr(elem: Ty, len: usize) -> Ty {
    Ty::Array(Box::new(elem), len)
}

/// The description of the C type called `name` in `aapcs64.c`.
pub fn c_type(name: &str) -> Option<Ty> {
    use Ty::*;
    if let Some(n) = name.strip_prefix("s_c") {
        if let Ok(n @ 1..=16) = n.parse::<usize>() {
            return Some(st([arr(I8, n)]));
        }
    }
    Some(match name {
        "void" => Void,
        "i8" => I8,
        "u8" => U8,
        "i16" => I16,
        "u16" => U16,
        "i32" => I32,
        "u32" => U32,
        "i64" => I64,
        "u64" => U64,
        "i128" => I128,
        "u128" => U128,
        "f32" => F32,
        "f64" => F64,
        "f128" => F128,
        "ptr" => Ptr,
        "cf32" => CF32,
        "cf64" => CF64,
        "cf128" => CF128,
        "s_fff" => st([F32, F32, F32]),
        "s_dd_nest" => st([st([F64, F64])]),
        "s_f4" => st([arr(F32, 4)]),
        "s_d4" => st([arr(F64, 4)]),
        "s_ld2" => st([F128, F128]),
        "s_ld4" => st([arr(F128, 4)]),
        "s_cf2" => st([CF32, arr(F32, 2)]),
        "u_ff" => Union(vec![arr(F32, 2), CF32]),
        "u_dd" => Union(vec![arr(F64, 2), st([F64, F64])]),
        "s_fd" => st([F32, F64]),
        "u_fd" => Union(vec![F32, F64]),
        "s_f5" => st([arr(F32, 5)]),
        "s_fi" => st([F32, I32]),
        "s_odd" => st([U8, U16, U8]),
        "s_scs" => st([I16, I8]),
        "s_di" => st([F64, I32]),
        "s_ll" => st([I64, I64]),
        "s_i128" => st([I128]),
        "s_24" => st([I64, I64, I64]),
        "s_40" => st([I32, F64, arr(I8, 3), I64, F32]),
        "s_100" => st([arr(I32, 25)]),
        "s_ldi" => st([F128, I32]),
        "s_huge" => st([arr(I32, 2500)]),
        _ => return None,
    })
}

#[repr(C)]
struct RawCase {
    name: *const c_char,
    sig: *const c_char,
    fixed: c_int,
    func: *const c_void,
    direct: DirectFn,
    call: CallFn,
}

#[repr(C)]
struct RawType {
    name: *const c_char,
    size: usize,
    align: usize,
}

extern "C" {
    static a64_cases: RawCase;
    static a64_case_count: usize;
    static a64_types: RawType;
    static a64_type_count: usize;
    fn a64_reset();
    fn a64_arg_count() -> c_int;
    fn a64_call_count() -> u64;
    fn a64_arg_bytes(i: c_int, size: *mut usize) -> *const u8;
    fn a64_scribble_addrs() -> *const usize;
}

/// One oracle call shape.
#[derive(Clone, Debug)]
pub struct Case {
    /// The C name (`a_s_fff`, or `a_va_ints3` for a variadic call shape).
    pub name: &'static str,
    /// The C signature as written in the table, `R(T0, T1, ...)`.
    pub sig: &'static str,
    /// The C type names of the return value and the arguments.
    pub ret_name: &'static str,
    pub arg_names: Vec<&'static str>,
    /// The types those names describe.
    pub ret: Ty,
    pub args: Vec<Ty>,
    /// `Some(n)`: variadic after the first `n` arguments.
    pub fixed: Option<usize>,
    /// The function to call (for variadic shapes, the variadic function).
    pub func: *const c_void,
    /// gcc's caller of `func` in libffi form.
    pub direct: DirectFn,
    /// gcc's caller of any function of this shape, in libffi form.
    pub call: CallFn,
}

/// Splits `R(T0, T1, ...)` into the return type name and argument names.
fn split_sig(sig: &'static str) -> Option<(&'static str, Vec<&'static str>)> {
    let open = sig.find('(')?;
    let inner = sig[open + 1..].strip_suffix(')')?;
    let args = if inner.trim().is_empty() {
        Vec::new()
    } else {
        inner.split(',').map(str::trim).collect()
    };
    Some((sig[..open].trim(), args))
}

fn c_str(p: *const c_char) -> &'static str {
    // SAFETY: the C tables hold static NUL-terminated ASCII strings.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .unwrap_or("<non-utf8>")
}

/// Every case in the C table, in its order.
///
/// # Panics
/// If a signature names a type [`c_type`] does not know (the C table and
/// this module disagree).
pub fn cases() -> Vec<Case> {
    // SAFETY: `a64_cases` is a constant array of `a64_case_count` entries
    // with the layout of `RawCase`.
    let raw = unsafe { std::slice::from_raw_parts(&raw const a64_cases, a64_case_count) };
    raw.iter()
        .map(|c| {
            let (name, sig) = (c_str(c.name), c_str(c.sig));
            let (ret_name, arg_names) =
                split_sig(sig).unwrap_or_else(|| panic!("{name}: malformed signature {sig}"));
            let ty = |n: &str| c_type(n).unwrap_or_else(|| panic!("{name}: unknown C type {n}"));
            Case {
                name,
                sig,
                ret: ty(ret_name),
                args: arg_names.iter().map(|n| ty(n)).collect(),
                ret_name,
                arg_names,
                fixed: usize::try_from(c.fixed).ok(),
                func: c.func,
                direct: c.direct,
                call: c.call,
            }
        })
        .collect()
}

/// The case called `name`.
pub fn case(name: &str) -> Option<Case> {
    cases().into_iter().find(|c| c.name == name)
}

/// `sizeof` and `_Alignof` of a C type of the table, as gcc lays it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub name: &'static str,
    pub size: usize,
    pub align: usize,
}

/// The layout of every C type a signature may name.
pub fn layouts() -> Vec<Layout> {
    // SAFETY: `a64_types` is a constant array of `a64_type_count` entries
    // with the layout of `RawType`.
    let raw = unsafe { std::slice::from_raw_parts(&raw const a64_types, a64_type_count) };
    raw.iter()
        .map(|t| Layout {
            name: c_str(t.name),
            size: t.size,
            align: t.align,
        })
        .collect()
}

/// The C type whose arguments the record holds as a digest instead of
/// their bytes (it is larger than a record slot).
pub const DIGESTED: &str = "s_huge";

/// What the record holds for a `s_huge` argument of these bytes: FNV-1a of
/// the bytes, then the wrapping sum of its `int32_t` elements, as two
/// little-endian `uint64_t`.
pub fn huge_digest(bytes: &[u8]) -> Vec<u8> {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let sum = bytes
        .chunks_exact(4)
        .map(|w| i64::from(i32::from_le_bytes(w.try_into().expect("4 bytes"))) as u64)
        .fold(0u64, u64::wrapping_add);
    let mut out = h.to_le_bytes().to_vec();
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// What the last oracle call on this thread received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Oracle calls since [`reset`].
    pub calls: u64,
    /// Argument count recorded: -1 if none since [`reset`], -2 or -3 if
    /// the oracle got a count or format it could not record.
    pub count: i32,
    /// Each argument's meaningful bytes (padding zero), as long as its type.
    pub args: Vec<Vec<u8>>,
}

/// Poisons this thread's record.
pub fn reset() {
    // SAFETY: touches only the calling thread's record.
    unsafe { a64_reset() }
}

/// A copy of this thread's record.
pub fn record() -> Record {
    // SAFETY: the accessors read the calling thread's record; sizes are
    // clamped to the slot so a poisoned record cannot overrun it.
    unsafe {
        let count = a64_arg_count();
        let calls = a64_call_count();
        let n = usize::try_from(count).unwrap_or(0).min(MAX_ARGS);
        let args = (0..n)
            .map(|i| {
                let mut size = 0usize;
                let p = a64_arg_bytes(i as c_int, &mut size);
                std::slice::from_raw_parts(p, size.min(SLOT)).to_vec()
            })
            .collect();
        Record { calls, count, args }
    }
}

/// Where the last `a_scribble` call on this thread found its five
/// by-reference arguments (zero after [`reset`]).
pub fn scribble_addrs() -> [usize; 5] {
    // SAFETY: the C side returns this thread's array of five words.
    unsafe { std::ptr::read(a64_scribble_addrs().cast::<[usize; 5]>()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signature_names_known_types() {
        let all = cases();
        assert!(all.len() >= 90, "{} cases", all.len());
        for c in &all {
            assert_eq!(c.args.len(), c.arg_names.len(), "{}", c.name);
            assert!(c.args.len() <= MAX_ARGS, "{}", c.name);
        }
        for l in layouts() {
            assert!(c_type(l.name).is_some(), "{} has no description", l.name);
        }
        assert_eq!(split_sig("void()"), Some(("void", Vec::<&str>::new())));
    }

    #[test]
    fn direct_callers_and_rust_calls_agree() {
        let c = case("a_i32").expect("a_i32 in the table");
        // SAFETY: a_i32 is `int32_t (int32_t, int32_t)`.
        let f: extern "C" fn(i32, i32) -> i32 = unsafe { std::mem::transmute(c.func) };
        let (a, b) = (-5i32, 0x7fff_0000i32);
        reset();
        let r = f(a, b);
        let from_rust = record();
        assert_eq!(from_rust.calls, 1);
        assert_eq!(
            from_rust.args,
            vec![a.to_le_bytes().to_vec(), b.to_le_bytes().to_vec()]
        );
        assert!(r < 0, "narrow returns have their top bit set");
        let avalue = [
            (&a as *const i32).cast::<c_void>(),
            (&b as *const i32).cast(),
        ];
        let mut ret = 0u64;
        reset();
        // SAFETY: the direct caller reads two int32 and writes 8 bytes.
        unsafe { (c.direct)((&mut ret as *mut u64).cast(), avalue.as_ptr()) };
        assert_eq!(record(), from_rust);
        assert_eq!(ret, r as i64 as u64, "widened to ffi_arg");
    }

    #[test]
    fn reset_poisons_the_record() {
        reset();
        let r = record();
        assert_eq!((r.calls, r.count, r.args.len()), (0, -1, 0));
        assert_eq!(scribble_addrs(), [0; 5]);
    }
}
