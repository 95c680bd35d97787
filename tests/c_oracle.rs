//! jitffi against gcc: every oracle of `oracle/c/oracles.c` is called
//! through jitffi (libffi form, packed form, null rvalue) and through the
//! gcc-compiled direct caller with the same arguments; the bytes each call
//! delivered and the bytes that came back must agree.
//!
//! Set `JITFFI_ORACLE_ONLY=<substring>` to run only matching cases.
#![cfg(all(target_arch = "x86_64", unix))]

use std::ffi::{c_void, CStr};

use jitffi::plan::{ArgPass, Ext};
use jitffi::{Cif, Type, TypeKind};
use jitffi_oracle::discipline::{self, ProbeState};
use jitffi_oracle::oracles::{self, DirectFn, Record};

/// The crate, under the name `support/native_ret.rs` expects.
mod jit {
    pub use jitffi::*;
}
#[path = "support/native_ret.rs"]
mod native_ret;

// ------------------------------------------------------------------ types

#[path = "support/shapes.rs"]
mod shapes;
use shapes::*;

// ------------------------------------------------------------------ table

/// What the first argument of a case must hold.
#[derive(Clone, Copy, Debug)]
enum First {
    /// Anything (a seeded pattern).
    Any,
    /// The number of variadic arguments, as `int`.
    Count,
    /// A pointer to this format string (`or_va_fmt`).
    Fmt(&'static CStr),
}

struct Case {
    name: &'static str,
    ret: Type,
    args: Vec<Type>,
    /// `Some(n)`: variadic after the first `n` arguments.
    fixed: Option<usize>,
    first: First,
    func: *const c_void,
    direct: DirectFn,
}

fn lookup(name: &'static str) -> oracles::Case {
    oracles::case(name).unwrap_or_else(|| panic!("{name} is not in the C table"))
}

fn fixed<const N: usize>(name: &'static str, ret: Type, args: [Type; N]) -> Case {
    let c = lookup(name);
    Case {
        name,
        ret,
        args: args.to_vec(),
        fixed: None,
        first: First::Any,
        func: c.func,
        direct: c.direct,
    }
}

/// `R f(int n, ...)` called with `variadic` after `n`.
fn va_count<const N: usize>(name: &'static str, ret: Type, variadic: [Type; N]) -> Case {
    let c = lookup(name);
    let mut args = vec![i32()];
    args.extend(variadic);
    Case {
        name,
        ret,
        args,
        fixed: Some(1),
        first: First::Count,
        func: c.func,
        direct: c.direct,
    }
}

/// `int64_t or_va_fmt(const char *fmt, ...)` called with `variadic`.
fn va_fmt<const N: usize>(name: &'static str, fmt: &'static CStr, variadic: [Type; N]) -> Case {
    let c = lookup(name);
    let mut args = vec![ptr()];
    args.extend(variadic);
    Case {
        name,
        ret: i64(),
        args,
        fixed: Some(1),
        first: First::Fmt(fmt),
        func: c.func,
        direct: c.direct,
    }
}

/// One line per C case (same order as `ORACLE_LIST` in oracles.c).
fn table() -> Vec<Case> {
    vec![
        fixed("or_void0", void(), []),
        fixed(
            "or_scribble",
            void(),
            [s_q4(), s_100(), s_ldi(), f80(), s_dd()],
        ),
        // integers of every width
        fixed("or_i8", i8(), [i8(), i8(), i8()]),
        fixed("or_u8", u8(), [u8(), u8(), u8()]),
        fixed("or_i16", i16(), [i16(), i16()]),
        fixed("or_u16", u16(), [u16(), u16()]),
        fixed("or_i32", i32(), [i32(), i32()]),
        fixed("or_u32", u32(), [u32(), u32()]),
        fixed("or_i64", i64(), [i64(), i64()]),
        fixed("or_u64", u64(), [u64(), u64()]),
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
        fixed("or_f32", f32(), [f32(), f32()]),
        fixed("or_f64", f64(), [f64(), f64(), f64(), f64()]),
        fixed("or_f80", f80(), [f80(), f80()]),
        fixed("or_f80_mixed", f80(), [i32(), f80(), f64(), f80(), i32()]),
        fixed(
            "or_f32_spill",
            f32(),
            std::array::from_fn::<_, 10, _>(|_| f32()),
        ),
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
        fixed("or_s8", i32(), std::array::from_fn::<_, 16, _>(|_| i32())),
        // __int128
        fixed("or_i128", i128(), [i128(), i128()]),
        fixed("or_u128", u128(), [u128()]),
        fixed(
            "or_i128_stack",
            i128(),
            [i64(), i64(), i64(), i64(), i64(), i128(), i64()],
        ),
        // complex
        fixed("or_cf32", cf32(), [cf32(), cf32()]),
        fixed("or_cf64", cf64(), [cf64(), cf64()]),
        fixed("or_cf80", cf80(), [cf80(), i32()]),
        // structs
        fixed("or_s_di", s_di(), [s_di(), s_di()]),
        fixed("or_s_fff", s_fff(), [s_fff()]),
        fixed("or_s_iii", s_iii(), [s_iii()]),
        fixed("or_s_ccc", s_ccc(), [s_ccc(), s_ccc()]),
        fixed("or_s_c3", s_c3(), [s_c3()]),
        fixed("or_s_f4", s_f4(), [s_f4()]),
        fixed("or_s_scic", s_scic(), [s_scic()]),
        fixed("or_s6", s_dd(), [s_dd(), s_dd()]),
        fixed("or_s7", s_q4(), [s_q4()]),
        fixed("or_s32", s_32(), [s_32(), i32()]),
        fixed("or_s100", s_100(), [s_100(), s_100()]),
        fixed("or_nest_ffd", s_nest_ffd(), [s_nest_ffd()]),
        fixed("or_nest_mix", s_nest_mix(), [s_nest_mix(), i32()]),
        fixed("or_s_ldi", s_ldi(), [s_ldi()]),
        fixed("or_s_ld1", s_ld1(), [s_ld1()]),
        fixed("or_s_qd", s_qd(), [s_qd()]),
        fixed("or_s_fi", s_fi(), [s_fi()]),
        fixed("or_s_ff", s_ff(), [s_ff(), s_ff()]),
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
        fixed(
            "or_many_s6",
            s_dd(),
            [s_dd(), s_dd(), s_dd(), s_dd(), s_dd()],
        ),
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
        fixed("or_u_fi", u_fi(), [u_fi(), u_fi()]),
        fixed("or_u_dl", u_dl(), [u_dl()]),
        fixed("or_u_c12i", u_c12i(), [u_c12i()]),
        fixed("or_u_fd", u_fd(), [u_fd()]),
        // variadic calls
        va_count("va_ints3", i32(), [i32(), i32(), i32()]),
        va_count("va_ints8", i32(), std::array::from_fn::<_, 8, _>(|_| i32())),
        va_count("va_dbl0", f64(), []),
        va_count(
            "va_dbl10",
            f64(),
            std::array::from_fn::<_, 10, _>(|_| f64()),
        ),
        va_count("va_ld3", f80(), [f80(), f80(), f80()]),
        va_count("va_s6", s_dd(), [f64(), f64(), f64(), f64()]),
        va_count("va_q4", s_q4(), std::array::from_fn::<_, 7, _>(|_| i64())),
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

fn selected() -> Vec<Case> {
    let only = std::env::var("JITFFI_ORACLE_ONLY").unwrap_or_default();
    table()
        .into_iter()
        .filter(|c| c.name.contains(only.as_str()))
        .collect()
}

// ------------------------------------------------------- values and masks

/// splitmix64: a small seeded generator for argument values.
struct Rng(u64);

impl Rng {
    fn for_case(name: &str, salt: u64) -> Rng {
        let mut h = 0x6a09_e667_f3bc_c909u64 ^ salt;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Rng(h)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Writes a distinctive value of `ty` into `out` (which already holds
/// random bytes, so padding is garbage). Narrow integers always have their
/// top bit set (negative, or above the signed range), so an argument that
/// is not extended properly shows; floats are finite and exact.
fn fill(ty: &Type, out: &mut [u8], rng: &mut Rng) {
    let r = rng.next();
    match ty.kind() {
        TypeKind::U8 | TypeKind::I8 => out[0] = r as u8 | 0x80,
        TypeKind::U16 | TypeKind::I16 => {
            out[..2].copy_from_slice(&(r as u16 | 0x8000).to_le_bytes())
        }
        TypeKind::U32 | TypeKind::I32 => {
            out[..4].copy_from_slice(&(r as u32 | 0x8000_0000).to_le_bytes())
        }
        TypeKind::U64 | TypeKind::I64 | TypeKind::Pointer => {
            out[..8].copy_from_slice(&r.to_le_bytes())
        }
        TypeKind::U128 | TypeKind::I128 => {
            out[..8].copy_from_slice(&r.to_le_bytes());
            out[8..16].copy_from_slice(&rng.next().to_le_bytes());
        }
        TypeKind::F32 => {
            let v = ((r as i64) >> 40) as f32 / 16.0;
            out[..4].copy_from_slice(&v.to_le_bytes());
        }
        TypeKind::F64 => {
            let v = ((r as i64) >> 11) as f64 / 1024.0;
            out[..8].copy_from_slice(&v.to_le_bytes());
        }
        TypeKind::LongDouble => fill_f80(&mut out[..10], r),
        TypeKind::ComplexF32 => {
            fill(&Type::f32(), &mut out[..4], rng);
            fill(&Type::f32(), &mut out[4..8], rng);
        }
        TypeKind::ComplexF64 => {
            fill(&Type::f64(), &mut out[..8], rng);
            fill(&Type::f64(), &mut out[8..16], rng);
        }
        TypeKind::ComplexLongDouble => {
            fill_f80(&mut out[..10], r);
            fill_f80(&mut out[16..26], rng.next());
        }
        TypeKind::Struct { fields, offsets } => {
            for (f, &off) in fields.iter().zip(offsets) {
                fill(f, &mut out[off..off + f.size()], rng);
            }
        }
        // The unions here have no padding and no member whose bit patterns
        // could be disturbed in transit: random bytes are a valid value.
        TypeKind::Union { .. } => {}
        TypeKind::Array { elem, len } => {
            for i in 0..*len {
                let s = elem.size();
                fill(elem, &mut out[i * s..(i + 1) * s], rng);
            }
        }
        TypeKind::Void => {}
    }
}

/// A normal x87 extended value: explicit integer bit set, modest exponent.
fn fill_f80(out: &mut [u8], r: u64) {
    let mantissa = r | (1 << 63);
    let exp = 16383 - 40 + (r >> 7) % 80;
    let sign = (r >> 3) & 1;
    out[..8].copy_from_slice(&mantissa.to_le_bytes());
    out[8..10].copy_from_slice(&((sign << 15 | exp) as u16).to_le_bytes());
}

/// Which bytes of a `ty` carry its value (padding and the unused tail of
/// long double do not).
fn mask(ty: &Type) -> Vec<bool> {
    let mut m = vec![false; ty.size()];
    mark(ty, &mut m);
    m
}

fn mark(ty: &Type, m: &mut [bool]) {
    match ty.kind() {
        TypeKind::Void => {}
        TypeKind::LongDouble => m[..10].fill(true),
        TypeKind::ComplexLongDouble => {
            m[..10].fill(true);
            m[16..26].fill(true);
        }
        TypeKind::Struct { fields, offsets } => {
            for (f, &off) in fields.iter().zip(offsets) {
                mark(f, &mut m[off..off + f.size()]);
            }
        }
        TypeKind::Union { fields } => {
            for f in fields {
                mark(f, &mut m[..f.size()]);
            }
        }
        TypeKind::Array { elem, len } => {
            let s = elem.size();
            for i in 0..*len {
                mark(elem, &mut m[i * s..(i + 1) * s]);
            }
        }
        _ => m[..ty.size()].fill(true),
    }
}

/// The bytes of the return buffer that must match: integers narrower
/// than 8 bytes come back widened to 8 (`ffi_arg`).
fn ret_mask(ty: &Type) -> Vec<bool> {
    if ty.is_integer_like() && ty.size() < 8 {
        vec![true; 8]
    } else {
        mask(ty)
    }
}

fn masked(bytes: &[u8], m: &[bool]) -> Vec<u8> {
    bytes
        .iter()
        .zip(m)
        .map(|(&b, &keep)| if keep { b } else { 0 })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join("")
}

/// A 16-aligned byte buffer, filled with one byte value to start.
struct Buf(Vec<u128>, usize);

impl Buf {
    fn new(len: usize, byte: u8) -> Buf {
        let mut b = Buf(vec![0; len.div_ceil(16).max(1)], len);
        b.bytes_mut().fill(byte);
        b
    }
    fn bytes(&self) -> &[u8] {
        // SAFETY: the vector holds at least `len` initialised bytes.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast(), self.1) }
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `self` is borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast(), self.1) }
    }
    fn ptr(&mut self) -> *mut c_void {
        self.0.as_mut_ptr().cast()
    }
}

/// Argument values for one call of `case`.
struct Args {
    bufs: Vec<Buf>,
    avalue: Vec<*const c_void>,
}

fn make_args(case: &Case, salt: u64) -> Args {
    let mut rng = Rng::for_case(case.name, salt);
    let mut bufs: Vec<Buf> = case
        .args
        .iter()
        .map(|t| {
            let mut b = Buf::new(t.size(), 0);
            for byte in b.bytes_mut() {
                *byte = rng.next() as u8;
            }
            fill(t, b.bytes_mut(), &mut rng);
            b
        })
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
    Args { bufs, avalue }
}

// ------------------------------------------------------------ the checks

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Raw,
    Packed,
    NullRvalue,
}

const GUARD: usize = 32;
const RET_POISON: u8 = 0xa5;

fn cif_for(case: &Case) -> Result<Cif, String> {
    match case.fixed {
        None => Cif::new(case.ret.clone(), &case.args),
        Some(n) => Cif::new_variadic(case.ret.clone(), &case.args[..n], &case.args[n..]),
    }
    .map_err(|e| format!("Cif::new failed: {e}"))
}

/// Compares two records argument by argument.
fn compare_records(what: &str, want: &Record, got: &Record, errs: &mut Vec<String>) {
    if got.calls != 1 {
        errs.push(format!(
            "{what}: the oracle was called {} times, expected once",
            got.calls
        ));
    }
    if got.count != want.count {
        errs.push(format!(
            "{what}: the oracle recorded {} arguments, gcc's call {}",
            got.count, want.count
        ));
    }
    for (i, (w, g)) in want.args.iter().zip(&got.args).enumerate() {
        if w != g {
            errs.push(format!(
                "{what}: argument {i} received {} but gcc delivered {}",
                hex(g),
                hex(w)
            ));
        }
    }
}

/// Runs one case in one mode; returns every disagreement found.
fn run_case(case: &Case, mode: Mode, seed: u64) -> Vec<String> {
    let mut errs = Vec::new();
    let cif = match cif_for(case) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let args = make_args(case, seed);
    let sent: Vec<Vec<u8>> = case
        .args
        .iter()
        .zip(&args.bufs)
        .map(|(t, b)| masked(b.bytes(), &mask(t)))
        .collect();
    let ret_len = cif.ret_buffer_size();
    let rmask = ret_mask(&case.ret);

    // Ground truth: gcc's call.
    let mut ret_direct = Buf::new(ret_len + GUARD, RET_POISON);
    oracles::reset();
    // SAFETY: `direct` calls the oracle with values of exactly its argument
    // types, read from `avalue`; the return buffer is large and aligned.
    unsafe { (case.direct)(ret_direct.ptr(), args.avalue.as_ptr()) };
    let truth = oracles::record();
    if truth.calls != 1 || truth.count != case.args.len() as i32 {
        errs.push(format!(
            "gcc's own call recorded {} arguments in {} calls: the oracle or the Rust table is wrong",
            truth.count, truth.calls
        ));
    }
    for (i, (s, r)) in sent.iter().zip(&truth.args).enumerate() {
        if s != r {
            errs.push(format!(
                "gcc's own call delivered argument {i} as {} but {} was sent: the Rust type table is wrong",
                hex(r),
                hex(s)
            ));
        }
    }

    // The same call through jitffi.
    let avalue_before = args.avalue.clone();
    let bytes_before: Vec<Vec<u8>> = args.bufs.iter().map(|b| b.bytes().to_vec()).collect();
    let mut ret_jit = Buf::new(ret_len + GUARD, RET_POISON);
    oracles::reset();
    match mode {
        Mode::Raw | Mode::NullRvalue => {
            let rv = if mode == Mode::Raw {
                ret_jit.ptr()
            } else {
                std::ptr::null_mut()
            };
            // SAFETY: the cif describes the oracle's signature; `avalue`
            // points at values of the argument types; `rv` is null or
            // `ret_buffer_size` + GUARD bytes, 16-aligned.
            unsafe { cif.call_raw(case.func, rv, args.avalue.as_ptr()) };
        }
        Mode::Packed => {
            let offsets = cif.packed_offsets().to_vec();
            if offsets.len() != case.args.len() {
                return vec![format!(
                    "packed_offsets has {} entries for {} arguments",
                    offsets.len(),
                    case.args.len()
                )];
            }
            let size = cif.packed_size();
            let mut packed = Buf::new(size + GUARD, 0x5a);
            for ((t, b), &off) in case.args.iter().zip(&args.bufs).zip(&offsets) {
                let off = off as usize;
                if off % t.align().min(16) != 0 || off + t.size() > size {
                    return vec![format!(
                        "packed offset {off} of a {t} does not fit a {size}-byte buffer"
                    )];
                }
                packed.bytes_mut()[off..off + t.size()].copy_from_slice(b.bytes());
            }
            let packed_before = packed.bytes().to_vec();
            // SAFETY: as for call_raw, with the arguments at the packed
            // offsets of a 16-aligned buffer of `packed_size` bytes.
            unsafe {
                native_ret::call_packed_into(
                    cif.plan(),
                    cif.packed_entry() as *const c_void,
                    case.func,
                    ret_jit.ptr(),
                    packed.ptr(),
                )
            };
            if packed.bytes() != packed_before {
                errs.push("the packed argument buffer was modified".into());
            }
        }
    }
    let got = oracles::record();
    compare_records("jitffi", &truth, &got, &mut errs);

    if mode != Mode::NullRvalue {
        let want = masked(&ret_direct.bytes()[..rmask.len()], &rmask);
        let have = masked(&ret_jit.bytes()[..rmask.len()], &rmask);
        if want != have {
            errs.push(format!(
                "returned {} but gcc's call returned {} (meaningful bytes of a {})",
                hex(&have),
                hex(&want),
                case.ret
            ));
        }
        if let Some(i) = ret_jit.bytes()[ret_len..]
            .iter()
            .position(|&b| b != RET_POISON)
        {
            errs.push(format!(
                "wrote past the {ret_len}-byte return buffer (byte {})",
                ret_len + i
            ));
        }
    }
    if args.avalue != avalue_before {
        errs.push("the avalue array was modified".into());
    }
    for (i, (b, before)) in args.bufs.iter().zip(&bytes_before).enumerate() {
        if b.bytes() != before.as_slice() {
            errs.push(format!("argument {i}'s buffer was modified"));
        }
    }
    errs
}

/// Seeds of the argument values each case is run with.
const SEEDS: [u64; 3] = [1, 2, 3];

fn run_all(mode: Mode) {
    let cases = selected();
    let mut failures = Vec::new();
    for case in &cases {
        // One report per case: the first seed that shows a problem.
        let Some((seed, errs)) = SEEDS
            .iter()
            .map(|&seed| (seed, run_case(case, mode, seed)))
            .find(|(_, errs)| !errs.is_empty())
        else {
            continue;
        };
        let sig = format!(
            "{}({})",
            case.ret,
            case.args
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        failures.push(format!(
            "{} [{mode:?}, seed {seed}] {sig}:\n    {}",
            case.name,
            errs.join("\n    ")
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} oracle cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------------------------ tests

#[test]
fn the_table_covers_every_c_case() {
    let rust: Vec<&str> = table().iter().map(|c| c.name).collect();
    let c: Vec<&str> = oracles::cases().iter().map(|c| c.name).collect();
    assert_eq!(
        rust, c,
        "tests/c_oracle.rs and oracles.c list different cases"
    );
    assert!(rust.len() >= 40);
    let mut unique = rust.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), rust.len(), "duplicate case names");
}

/// The harness itself, without jitffi: gcc's call delivers exactly the
/// bytes the table says, for every case, and the C side is deterministic.
#[test]
fn gcc_receives_what_the_table_sends() {
    let mut failures = Vec::new();
    for case in &selected() {
        let args = make_args(case, 1);
        let mut records = Vec::new();
        let mut rets = Vec::new();
        for _ in 0..2 {
            let mut ret = Buf::new(case.ret.size().max(8) + GUARD, RET_POISON);
            oracles::reset();
            // SAFETY: as in `run_case`.
            unsafe { (case.direct)(ret.ptr(), args.avalue.as_ptr()) };
            records.push(oracles::record());
            // Padding inside the returned value is whatever gcc left there.
            let rmask = ret_mask(&case.ret);
            rets.push(masked(&ret.bytes()[..rmask.len()], &rmask));
        }
        let rec = &records[0];
        if rec.calls != 1 || rec.count != case.args.len() as i32 {
            failures.push(format!(
                "{}: {} arguments recorded in {} calls",
                case.name, rec.count, rec.calls
            ));
            continue;
        }
        for (i, (t, b)) in case.args.iter().zip(&args.bufs).enumerate() {
            let sent = masked(b.bytes(), &mask(t));
            if rec.args[i] != sent {
                failures.push(format!(
                    "{}: argument {i} ({t}) sent {} received {}",
                    case.name,
                    hex(&sent),
                    hex(&rec.args[i])
                ));
            }
        }
        if records[0] != records[1] || rets[0] != rets[1] {
            failures.push(format!("{}: two identical calls differ", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Changing any one argument changes what comes back: the return values
/// really are derived from every argument.
#[test]
fn returns_depend_on_every_argument() {
    for case in &selected() {
        if case.ret.is_void() || !matches!(case.first, First::Any) {
            continue;
        }
        let rmask = ret_mask(&case.ret);
        let ret_of = |args: &Args| {
            let mut ret = Buf::new(case.ret.size().max(8), 0);
            // SAFETY: as in `run_case`.
            unsafe { (case.direct)(ret.ptr(), args.avalue.as_ptr()) };
            masked(&ret.bytes()[..rmask.len()], &rmask)
        };
        let base = make_args(case, 1);
        let want = ret_of(&base);
        for i in 0..case.args.len() {
            let mut other = make_args(case, 1);
            let alt = make_args(case, 2);
            let m = mask(&case.args[i]);
            let b = other.bufs[i].bytes_mut();
            for (k, byte) in b.iter_mut().enumerate() {
                if m[k] {
                    *byte = alt.bufs[i].bytes()[k];
                }
            }
            assert_ne!(
                ret_of(&other),
                want,
                "{}: the return value ignores argument {i}",
                case.name
            );
        }
    }
}

/// The harness can fail: a cif that disagrees with the C function is
/// caught, both on the way in and on the way back.
#[test]
fn mismatched_signatures_are_caught() {
    // {int64, double} travels in rdi + xmm0, {double, int} in xmm0 + rdi.
    let mut case = fixed("or_s_di", s_di(), [s_di(), s_di()]);
    case.args = vec![s_qd(), s_qd()];
    let errs = run_case(&case, Mode::Raw, 1);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("jitffi: argument 0 received")),
        "{errs:?}"
    );
    // An int64 returned in rax, read back as a double from xmm0.
    let mut case = fixed("or_i64", i64(), [i64(), i64()]);
    case.ret = f64();
    let errs = run_case(&case, Mode::Raw, 1);
    assert!(errs.iter().any(|e| e.starts_with("returned")), "{errs:?}");
}

#[test]
fn every_case_through_call_raw() {
    run_all(Mode::Raw);
}

#[test]
fn every_case_through_call_packed() {
    run_all(Mode::Packed);
}

/// libffi allows a null rvalue: the value is dropped, sret calls get a
/// temporary, x87 returns are still popped. Arguments must still arrive.
#[test]
fn every_case_with_a_null_rvalue() {
    run_all(Mode::NullRvalue);
}

fn probe(cif: &Cif, args: &Args) -> ProbeState {
    discipline::reset();
    let mut ret = Buf::new(cif.ret_buffer_size() + GUARD, 0);
    // SAFETY: the probe reads registers and stack slots only, ignores its
    // arguments, and returns rdi in rax (no x87 value), which every
    // non-x87 return convention tolerates.
    unsafe {
        cif.call_raw(
            discipline::jitffi_probe_regs as *const c_void,
            ret.ptr(),
            args.avalue.as_ptr(),
        )
    };
    discipline::state()
}

/// Narrow integer arguments arrive extended: to 32 bits at least (what the
/// psABI's users, clang first, rely on) and to the full register or slot
/// when the plan says so (what libffi does).
#[test]
fn narrow_integer_arguments_are_extended() {
    let types = [i8(), u8(), i16(), u16(), i32(), u32()];
    let all: Vec<Type> = types.iter().chain(types.iter()).cloned().collect();
    let cif = Cif::new(i64(), &all).expect("Cif::new");
    let values: [i64; 6] = [-3, 0xfd, -300, 0xfed4, -70_000, 0xfffe_1234];
    let mut bufs: Vec<Buf> = all
        .iter()
        .zip(values.iter().chain(values.iter()))
        .map(|(t, v)| {
            let mut b = Buf::new(t.size(), 0);
            let n = t.size();
            b.bytes_mut().copy_from_slice(&v.to_le_bytes()[..n]);
            b
        })
        .collect();
    let avalue = bufs.iter_mut().map(|b| b.ptr().cast_const()).collect();
    let args = Args { bufs, avalue };
    let s = probe(&cif, &args);
    assert_eq!(s.regs_calls, 1, "the probe was not called");
    let regs = [
        discipline::RDI,
        discipline::RSI,
        discipline::RDX,
        discipline::RCX,
        discipline::R8,
        discipline::R9,
    ];
    let mut errs = Vec::new();
    for (i, t) in all.iter().enumerate() {
        let v = values[i % 6];
        let (got, place) = if i < 6 {
            (
                s.gpr[regs[i]],
                format!("register {}", ["rdi", "rsi", "rdx", "rcx", "r8", "r9"][i]),
            )
        } else {
            (s.stack[i - 6], format!("stack slot {}", i - 6))
        };
        let want64 = v as u64; // already sign- or zero-extended
        if t.size() < 4 && got as u32 != want64 as u32 {
            errs.push(format!(
                "argument {i} ({t} {v}) in {place}: {got:#018x}, low 32 bits should be {:#010x}",
                want64 as u32
            ));
        }
        let ext = match &cif.plan().args[i].pass {
            ArgPass::Direct(p) if p.len() == 1 => p[0].ext,
            other => {
                errs.push(format!("argument {i} ({t}): unexpected plan {other:?}"));
                continue;
            }
        };
        if ext != Ext::None && got != want64 {
            errs.push(format!(
                "argument {i} ({t} {v}) in {place}: {got:#018x}, the plan says {ext:?} to {want64:#018x}"
            ));
        } else if got & mask_of(t) != want64 & mask_of(t) {
            errs.push(format!(
                "argument {i} ({t} {v}) in {place}: {got:#018x}, value bits wrong"
            ));
        }
    }
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}

fn mask_of(t: &Type) -> u64 {
    if t.size() >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * t.size())) - 1
    }
}

/// A variadic call puts in `al` an upper bound (at most 8) on the vector
/// registers it uses; gcc's va_start skips saving xmm0-7 when al is 0.
#[test]
fn variadic_calls_set_al() {
    for k in 0..=10usize {
        let variadic: Vec<Type> = (0..k).map(|_| f64()).collect();
        let cif = Cif::new_variadic(i32(), &[i32()], &variadic).expect("Cif::new_variadic");
        let case = Case {
            name: "al",
            ret: i32(),
            args: std::iter::once(i32()).chain(variadic.clone()).collect(),
            fixed: Some(1),
            first: First::Count,
            func: std::ptr::null(),
            direct: lookup("va_dbl0").direct,
        };
        let args = make_args(&case, 3);
        let s = probe(&cif, &args);
        let al = s.gpr[discipline::RAX] as u8;
        assert!(
            usize::from(al) >= k.min(8) && al <= 8,
            "{k} double varargs: al = {al}, expected {}..=8",
            k.min(8)
        );
        // The doubles that went in registers are in xmm0.., in order.
        for (j, b) in args.bufs[1..].iter().take(8).enumerate() {
            assert_eq!(
                &s.xmm[j][..8],
                b.bytes(),
                "{k} double varargs: vararg {j} not in xmm{j}"
            );
        }
    }
    // Only integers: al still a valid bound.
    let cif = Cif::new_variadic(i32(), &[ptr()], &[i64(), i32()]).expect("Cif::new_variadic");
    let mut bufs = vec![Buf::new(8, 1), Buf::new(8, 2), Buf::new(4, 3)];
    let avalue = bufs.iter_mut().map(|b| b.ptr().cast_const()).collect();
    let s = probe(&cif, &Args { bufs, avalue });
    assert!(
        s.gpr[discipline::RAX] as u8 <= 8,
        "al > 8 with no vector args"
    );
}
