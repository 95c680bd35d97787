//! jitffi's Microsoft x64 convention against gcc's `__attribute__((ms_abi))`.
//!
//! Every oracle of `oracle/c/win64.c` is called through a cif made with
//! `Cif::with_abi(Abi::Win64, ..)` and with `Abi::GnuW64` (libffi form,
//! packed form, null rvalue) and through gcc's own caller with the same
//! arguments: the bytes each call delivered and the bytes that came back
//! must agree. Then the other direction: a jitffi closure made for the cif
//! is called by gcc's ms_abi caller of the shape, and its handler must see
//! exactly what gcc sent while gcc's caller gets exactly what the handler
//! wrote. Assembly probes check the register discipline both ways: a call
//! stub survives a callee that trashes everything Win64 lets it trash
//! (the shadow area included), and a closure keeps everything Win64 makes
//! callee-saved (`rsi`, `rdi`, `xmm6`-`xmm15` too) although its handler,
//! a host function, clobbers them.
//!
//! Cases with `long double` run under GnuW64 only: gcc's ms_abi keeps the
//! 80-bit type (what MinGW does), Microsoft's compiler makes it `double`.
//!
//! Set `JITFFI_ORACLE_ONLY=<substring>` to run only matching cases.
#![cfg(all(target_arch = "x86_64", unix))]

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use jitffi::classify::classify;
use jitffi::closure::{Args, Ret};
use jitffi::plan::RetPass;
use jitffi::{Abi, Cif, Closure, RawClosure, Type, TypeKind};
use jitffi_oracle::discipline::{self, clobbered};
use jitffi_oracle::oracles::Record;
use jitffi_oracle::win64::{self as w64, ClobberState, Win64Call};

/// The crate, under the name `support/native_ret.rs` expects.
mod jit {
    pub use jitffi::*;
}
#[path = "support/native_ret.rs"]
mod native_ret;

#[path = "support/shapes.rs"]
mod shapes;
use shapes::*;

#[path = "support/oracle_table.rs"]
mod oracle_table;
use oracle_table::{make_args, signature, CallArgs, Case, First};

// ------------------------------------------------------------------ table

/// `struct { uint8_t a; }`
fn s1() -> Type {
    st([u8()])
}
/// `struct { uint8_t a; int8_t b; }`
fn s2() -> Type {
    st([u8(), i8()])
}
/// `struct { uint8_t c; int16_t s; }`: 4 bytes, one of padding.
fn s4() -> Type {
    st([u8(), i16()])
}
/// `struct { int32_t i; float f; }`: a float travelling in a gpr.
fn s8() -> Type {
    st([i32(), f32()])
}
/// `struct { uint16_t v[4]; }`
fn s_u16x4() -> Type {
    st([arr(u16(), 4)])
}
/// `struct { struct { uint8_t a, b; } p; int16_t s; }`
fn s_nest4() -> Type {
    st([st([u8(), u8()]), i16()])
}
/// `struct { float f; }`: in a gpr, not an xmm register.
fn sf() -> Type {
    st([f32()])
}
/// `struct { double d; }`: in a gpr, returned in rax.
fn sd() -> Type {
    st([f64()])
}
/// `struct { char c[5]; }`: by reference.
fn s5() -> Type {
    st([arr(i8(), 5)])
}

fn n<const N: usize>(t: fn() -> Type) -> [Type; N] {
    std::array::from_fn(|_| t())
}

fn lookup(name: &'static str) -> jitffi_oracle::oracles::Case {
    w64::case(name).unwrap_or_else(|| panic!("{name} is not in the C table of win64.c"))
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

fn fixed<const N: usize>(name: &'static str, ret: Type, args: [Type; N]) -> Case {
    case(name, ret, args.to_vec(), None, First::Any)
}

/// `R f(int n, ...)` called with `variadic` after `n`.
fn va_count<const N: usize>(name: &'static str, ret: Type, variadic: [Type; N]) -> Case {
    let args = std::iter::once(i32()).chain(variadic).collect();
    case(name, ret, args, Some(1), First::Count)
}

/// `int64_t w64_va_fmt(const char *fmt, ...)` called with `variadic`.
fn va_fmt<const N: usize>(
    name: &'static str,
    fmt: &'static std::ffi::CStr,
    variadic: [Type; N],
) -> Case {
    let args = std::iter::once(ptr()).chain(variadic).collect();
    case(name, i64(), args, Some(1), First::Fmt(fmt))
}

/// One line per C case, in the order of `win64_cases` in win64.c.
fn table() -> Vec<Case> {
    vec![
        fixed("w64_void0", void(), []),
        fixed(
            "w64_scribble",
            void(),
            [s_q4(), s_100(), s_iii(), cf64(), i128(), s_dd(), s8()],
        ),
        fixed("w64_scribble_ld", void(), [f80(), s_ldi(), cf80(), s5()]),
        // integers of every width
        fixed("w64_i8", i8(), n::<3>(i8)),
        fixed("w64_u8", u8(), n::<3>(u8)),
        fixed("w64_i16", i16(), n::<2>(i16)),
        fixed("w64_u16", u16(), n::<2>(u16)),
        fixed("w64_i32", i32(), n::<2>(i32)),
        fixed("w64_u32", u32(), n::<2>(u32)),
        fixed("w64_i64", i64(), n::<2>(i64)),
        fixed("w64_u64", u64(), n::<2>(u64)),
        fixed(
            "w64_int_widths",
            i64(),
            [i8(), u8(), i16(), u16(), i32(), u32(), i64(), u64()],
        ),
        fixed(
            "w64_narrow_stack",
            i32(),
            [
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
        fixed("w64_ptr", ptr(), [ptr(), ptr()]),
        fixed("w64_void_args", void(), [i32(), f64(), s_di()]),
        // floating point, integers and floats by position
        fixed("w64_f32", f32(), n::<2>(f32)),
        fixed("w64_f64", f64(), n::<4>(f64)),
        fixed("w64_mixed", f64(), [i32(), f64(), i32(), f32()]),
        fixed("w64_mixed_rev", f32(), [f32(), i64(), f64(), u8()]),
        fixed("w64_args5", i64(), [i64(), f64(), i32(), f32(), i64()]),
        fixed(
            "w64_args6",
            f64(),
            [f32(), i64(), f64(), i32(), f64(), u16()],
        ),
        fixed(
            "w64_args10",
            i32(),
            [
                i8(),
                f64(),
                i64(),
                f32(),
                u16(),
                f64(),
                ptr(),
                i32(),
                f32(),
                i64(),
            ],
        ),
        fixed("w64_f32_spill", f32(), n::<10>(f32)),
        fixed(
            "w64_s5sig",
            f64(),
            [i32(), f64(), i64(), f32(), ptr(), i8(), u16(), f64()],
        ),
        fixed("w64_many16", i32(), n::<16>(i32)),
        // __int128 and complex
        fixed("w64_i128", i128(), n::<2>(i128)),
        fixed(
            "w64_i128_stack",
            i128(),
            [i64(), i64(), i64(), i64(), i128(), i64()],
        ),
        fixed("w64_cf32", cf32(), n::<2>(cf32)),
        fixed("w64_cf64", cf64(), n::<2>(cf64)),
        // aggregates of 1, 2, 4, 8 bytes
        fixed("w64_s1", s1(), n::<2>(s1)),
        fixed("w64_s2", s2(), [s2()]),
        fixed("w64_s4", s4(), [s4()]),
        fixed("w64_s8", s8(), n::<2>(s8)),
        fixed("w64_sf", sf(), [sf()]),
        fixed("w64_sff", s_ff(), n::<2>(s_ff)),
        fixed("w64_sd", sd(), [sd()]),
        fixed("w64_u16x4", s_u16x4(), [s_u16x4()]),
        fixed("w64_nest4", s_nest4(), [s_nest4()]),
        fixed("w64_u_fi", u_fi(), n::<2>(u_fi)),
        fixed("w64_u_dl", u_dl(), [u_dl()]),
        fixed("w64_u_fd", u_fd(), [u_fd()]),
        // every other size: by reference, sret
        fixed("w64_s3", s_ccc(), n::<2>(s_ccc)),
        fixed("w64_c3", s_c3(), [s_c3()]),
        fixed("w64_s5", s5(), [s5()]),
        fixed("w64_s6", s_odd(), [s_odd()]),
        fixed("w64_s12", s_iii(), [s_iii()]),
        fixed("w64_nest_mix", s_nest_mix(), [s_nest_mix(), i32()]),
        fixed("w64_u_c12i", u_c12i(), [u_c12i()]),
        fixed("w64_s16", s_dd(), n::<2>(s_dd)),
        fixed("w64_f4", s_f4(), [s_f4()]),
        fixed("w64_nest_ffd", s_nest_ffd(), [s_nest_ffd()]),
        fixed("w64_s24", s_ddd(), [s_ddd()]),
        fixed("w64_s32", s_q4(), [s_q4()]),
        fixed("w64_s100", s_100(), n::<2>(s_100)),
        // the hidden pointer takes the first register
        fixed("w64_sret_args", s_ddd(), [i64(), f64(), i32(), f64()]),
        fixed("w64_sret_small", s_iii(), [f32()]),
        fixed("w64_sret100", s_100(), [f64(), i8(), s1()]),
        // aggregates on the stack and among scalars in registers
        fixed(
            "w64_aggs_stack",
            i64(),
            [
                i64(),
                i64(),
                i64(),
                i64(),
                s8(),
                s_iii(),
                s1(),
                s_dd(),
                f64(),
            ],
        ),
        fixed("w64_aggs_regs", f64(), [s_iii(), sd(), s4(), s_100()]),
        // long double (GnuW64 only)
        fixed("w64_f80", f80(), n::<2>(f80)),
        fixed("w64_f80_mixed", f80(), [i32(), f80(), f64(), f80(), i32()]),
        fixed("w64_cf80", cf80(), [cf80(), i32()]),
        fixed("w64_s_ldi", s_ldi(), [s_ldi()]),
        // variadic calls
        va_count("w64_va_ints3", i32(), n::<3>(i32)),
        va_count("w64_va_ints7", i32(), n::<7>(i32)),
        va_count("w64_va_dbl0", f64(), []),
        va_count("w64_va_dbl7", f64(), n::<7>(f64)),
        va_count("w64_va_sret", s_ddd(), n::<5>(f64)),
        va_count("w64_va_refs", i64(), n::<5>(s_iii)),
        case(
            "w64_va_x3",
            f64(),
            n::<4>(f64).to_vec(),
            Some(1),
            First::Any,
        ),
        va_fmt(
            "w64_va_fmt_mixed",
            c"idc18qDdpfFxb4",
            [
                i32(),
                f64(),
                s_iii(),
                s1(),
                s8(),
                i64(),
                s_dd(),
                f64(),
                ptr(),
                cf32(),
                cf64(),
                i128(),
                s_100(),
                s4(),
            ],
        ),
        va_fmt("w64_va_fmt_ld", c"dLiZ", [f64(), f80(), i32(), cf80()]),
    ]
}

/// The cases whose name contains `JITFFI_ORACLE_ONLY` (all when unset).
fn selected() -> Vec<Case> {
    let only = std::env::var("JITFFI_ORACLE_ONLY").unwrap_or_default();
    table()
        .into_iter()
        .filter(|c| c.name.contains(only.as_str()))
        .collect()
}

fn has_long_double(t: &Type) -> bool {
    match t.kind() {
        TypeKind::LongDouble | TypeKind::ComplexLongDouble => true,
        TypeKind::Struct { fields, .. } | TypeKind::Union { fields } => {
            fields.iter().any(has_long_double)
        }
        TypeKind::Array { elem, .. } => has_long_double(elem),
        _ => false,
    }
}

/// The ABIs gcc's ms_abi is ground truth for, for this case.
fn abis(case: &Case) -> &'static [Abi] {
    if has_long_double(&case.ret) || case.args.iter().any(has_long_double) {
        &[Abi::GnuW64]
    } else {
        &[Abi::Win64, Abi::GnuW64]
    }
}

fn cif_for(case: &Case, abi: Abi) -> Result<Cif, String> {
    Cif::with_abi(abi, case.ret.clone(), &case.args, case.fixed)
        .map_err(|e| format!("Cif::with_abi({abi:?}) for {}: {e}", case.name))
}

// ------------------------------------------------------- calls: the checks

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Raw,
    Packed,
    NullRvalue,
}

const GUARD: usize = 32;
const RET_POISON: u8 = 0xa5;

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

/// gcc's own call of the case: what the oracle received and returned.
fn gcc_call(case: &Case, args: &CallArgs, ret_len: usize) -> (Record, Buf) {
    let mut ret = Buf::new(ret_len + GUARD, RET_POISON);
    w64::reset();
    // SAFETY: `direct` calls the oracle with values of exactly its argument
    // types, read from `avalue`; the return buffer is large and aligned.
    unsafe { (case.direct)(ret.ptr(), args.avalue.as_ptr()) };
    (w64::record(), ret)
}

/// Runs one case under one ABI in one mode; returns every disagreement.
fn run_case(case: &Case, abi: Abi, mode: Mode, seed: u64) -> Vec<String> {
    let mut errs = Vec::new();
    let cif = match cif_for(case, abi) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let args = make_args(case, seed);
    let ret_len = cif.ret_buffer_size();
    let rmask = ret_mask(&case.ret);

    let (truth, ret_direct) = gcc_call(case, &args, ret_len);
    if truth.calls != 1 || truth.count != case.args.len() as i32 {
        errs.push(format!(
            "gcc's own call recorded {} arguments in {} calls: the oracle or the Rust table is wrong",
            truth.count, truth.calls
        ));
    }
    for (i, (s, r)) in args.sent.iter().zip(&truth.args).enumerate() {
        if s != r {
            errs.push(format!(
                "gcc's own call delivered argument {i} as {} but {} was sent: the Rust type table is wrong",
                hex(r),
                hex(s)
            ));
        }
    }

    let avalue_before = args.avalue.clone();
    let bytes_before: Vec<Vec<u8>> = args.bufs.iter().map(|b| b.bytes().to_vec()).collect();
    let mut ret_jit = Buf::new(ret_len + GUARD, RET_POISON);
    w64::reset();
    match mode {
        Mode::Raw | Mode::NullRvalue => {
            let rv = if mode == Mode::Raw {
                ret_jit.ptr()
            } else {
                std::ptr::null_mut()
            };
            // SAFETY: the cif describes the oracle's signature and ABI;
            // `avalue` points at values of the argument types; `rv` is null
            // or `ret_buffer_size` + GUARD bytes, 16-aligned.
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
            // offsets of a 16-aligned buffer of `packed_size` bytes. The
            // capture shim saves whole xmm registers, so an `__int128` in
            // xmm0 comes back complete.
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
    compare_records("jitffi", &truth, &w64::record(), &mut errs);

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
            errs.push(format!(
                "argument {i}'s buffer was modified (a callee wrote through its pointer)"
            ));
        }
    }
    errs
}

const SEEDS: [u64; 3] = [1, 2, 3];

fn run_all(mode: Mode) {
    let cases = selected();
    let mut failures = Vec::new();
    let mut runs = 0;
    for case in &cases {
        for &abi in abis(case) {
            runs += 1;
            let Some((seed, errs)) = SEEDS
                .iter()
                .map(|&seed| (seed, run_case(case, abi, mode, seed)))
                .find(|(_, errs)| !errs.is_empty())
            else {
                continue;
            };
            failures.push(format!(
                "{} [{abi:?}, {mode:?}, seed {seed}] {}:\n    {}",
                case.name,
                signature(case),
                errs.join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} oracle runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------- calls: the harness

#[test]
fn the_table_covers_every_c_case() {
    let rust: Vec<&str> = table().iter().map(|c| c.name).collect();
    let c: Vec<&str> = w64::cases().iter().map(|c| c.name).collect();
    assert_eq!(rust, c, "the Rust table and win64.c list different cases");
    let mut unique = rust.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), rust.len(), "duplicate case names");
    assert!(rust.len() >= 40);
    let both = table().iter().filter(|c| abis(c).len() == 2).count();
    assert!(
        both >= 60,
        "only {both} cases hold for both Win64 and GnuW64"
    );
}

/// The harness without jitffi: gcc's direct call and gcc's `call_` caller
/// pointed at the oracle deliver exactly the bytes the table sends, return
/// the same, and do so deterministically. Checks the C callers, the
/// oracles and the Rust table.
#[test]
fn gcc_callers_deliver_what_the_table_sends() {
    let mut failures = Vec::new();
    for case in &selected() {
        let args = make_args(case, 1);
        let len = case.ret.size().max(8);
        let (want, via_direct) = gcc_call(case, &args, len);
        let (again, via_direct2) = gcc_call(case, &args, len);
        let mut via_call = Buf::new(len + GUARD, RET_POISON);
        w64::reset();
        // SAFETY: as in `gcc_call`, with the oracle as `call`'s callee
        // (variadic oracles are the variadic functions `call` expects).
        unsafe { (case.call)(case.func, via_call.ptr(), args.avalue.as_ptr()) };
        let got = w64::record();
        if want.calls != 1 || want.count != case.args.len() as i32 {
            failures.push(format!(
                "{}: {} arguments recorded in {} calls",
                case.name, want.count, want.calls
            ));
            continue;
        }
        for (i, (s, r)) in args.sent.iter().zip(&want.args).enumerate() {
            if s != r {
                failures.push(format!(
                    "{}: argument {i} ({}) sent {} received {}",
                    case.name,
                    case.args[i],
                    hex(s),
                    hex(r)
                ));
            }
        }
        if got != want {
            failures.push(format!(
                "{}: call_ delivered {got:?}, direct_ {want:?}",
                case.name
            ));
        }
        let rmask = ret_mask(&case.ret);
        let r = |b: &Buf| masked(&b.bytes()[..rmask.len()], &rmask);
        if r(&via_call) != r(&via_direct) {
            failures.push(format!(
                "{}: call_ returned {}, direct_ {}",
                case.name,
                hex(&r(&via_call)),
                hex(&r(&via_direct))
            ));
        }
        if again != want || r(&via_direct2) != r(&via_direct) {
            failures.push(format!("{}: two identical calls differ", case.name));
        }
        for (i, (b, s)) in args.bufs.iter().zip(&args.sent).enumerate() {
            if &masked(b.bytes(), &mask(&case.args[i])) != s {
                failures.push(format!(
                    "{}: gcc's caller let the callee write into argument {i}",
                    case.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Changing any one argument changes what comes back: results really are
/// derived from every argument.
#[test]
fn returns_depend_on_every_argument() {
    for case in &selected() {
        if case.ret.is_void() || !matches!(case.first, First::Any) {
            continue;
        }
        let rmask = ret_mask(&case.ret);
        let ret_of = |args: &CallArgs| {
            let (_, ret) = gcc_call(case, args, case.ret.size().max(8));
            masked(&ret.bytes()[..rmask.len()], &rmask)
        };
        let want = ret_of(&make_args(case, 1));
        for i in 0..case.args.len() {
            let mut other = make_args(case, 1);
            let alt = make_args(case, 2);
            let m = mask(&case.args[i]);
            for (k, byte) in other.bufs[i].bytes_mut().iter_mut().enumerate() {
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

/// The harness can fail: a cif that disagrees with the function is
/// caught, on the way in and on the way back.
#[test]
fn mismatched_signatures_are_caught() {
    // gcc passes (int, double, int, float) in ecx, xmm1, r8d, xmm3; a cif
    // for (double, int, double, int) uses xmm0, edx, xmm2, r9d.
    let mut c = fixed("w64_mixed", f64(), [i32(), f64(), i32(), f32()]);
    c.args = vec![f64(), i32(), f64(), i32()];
    for abi in [Abi::Win64, Abi::GnuW64] {
        let errs = run_case(&c, abi, Mode::Raw, 1);
        assert!(
            errs.iter()
                .any(|e| e.starts_with("jitffi: argument 0 received")),
            "{abi:?}: {errs:?}"
        );
    }
    // The right types under the host's convention: rdi, xmm0... are not
    // where an ms_abi callee looks.
    let c = fixed(
        "w64_s5sig",
        f64(),
        [i32(), f64(), i64(), f32(), ptr(), i8(), u16(), f64()],
    );
    let errs = run_case(&c, Abi::SysV64, Mode::Raw, 1);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("jitffi: argument 0 received")),
        "{errs:?}"
    );
    // An int64 returned in rax, read back as a double from xmm0.
    let mut c = fixed("w64_i64", i64(), [i64(), i64()]);
    c.ret = f64();
    for abi in [Abi::Win64, Abi::GnuW64] {
        let errs = run_case(&c, abi, Mode::Raw, 1);
        assert!(
            errs.iter().any(|e| e.starts_with("returned")),
            "{abi:?}: {errs:?}"
        );
    }
}

// ------------------------------------------------------ calls: the tests

#[test]
fn every_case_through_call_raw() {
    run_all(Mode::Raw);
}

#[test]
fn every_case_through_call_packed() {
    run_all(Mode::Packed);
}

/// A null rvalue drops the result (sret calls get a temporary); the
/// arguments must still arrive.
#[test]
fn every_case_with_a_null_rvalue() {
    run_all(Mode::NullRvalue);
}

/// Win64 and GnuW64 differ in `long double` only: for every other shape
/// their plans are the same.
#[test]
fn win64_and_gnuw64_plans_agree_without_long_double() {
    let mut failures = Vec::new();
    for case in table().iter().filter(|c| abis(c).len() == 2) {
        let plan = |abi| classify(abi, &case.ret, &case.args, case.fixed);
        match (plan(Abi::Win64), plan(Abi::GnuW64)) {
            (Ok(w), Ok(g)) => {
                let mut gp = g.clone();
                gp.abi = Abi::Win64;
                if gp != w {
                    failures.push(format!("{}: win64 plan\n{w}gnuw64 plan\n{g}", case.name));
                }
            }
            (w, g) => failures.push(format!("{}: {:?} / {:?}", case.name, w.err(), g.err())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Aggregates passed by reference: the callee owns the copy it points at
/// and writes all over it; the caller's value stays as it was, call after
/// call, and every call delivers the original bytes.
#[test]
fn by_reference_arguments_are_copies() {
    let mut failures = Vec::new();
    for name in ["w64_scribble", "w64_scribble_ld"] {
        let case = table().into_iter().find(|c| c.name == name).unwrap();
        for &abi in abis(&case) {
            let Ok(cif) = cif_for(&case, abi) else {
                failures.push(format!("{name} [{abi:?}]: no cif"));
                continue;
            };
            let args = make_args(&case, 5);
            for round in 0..3 {
                w64::reset();
                // SAFETY: as in `run_case`; the callee returns nothing.
                unsafe { cif.call_raw(case.func, std::ptr::null_mut(), args.avalue.as_ptr()) };
                let got = w64::record();
                if got.args != args.sent {
                    failures.push(format!(
                        "{name} [{abi:?}] call {round}: received {:?}, sent {:?}",
                        got.args.iter().map(|a| hex(a)).collect::<Vec<_>>(),
                        args.sent.iter().map(|a| hex(a)).collect::<Vec<_>>()
                    ));
                }
            }
            for (i, (b, s)) in args.bufs.iter().zip(&args.sent).enumerate() {
                if &masked(b.bytes(), &mask(&case.args[i])) != s {
                    failures.push(format!(
                        "{name} [{abi:?}]: argument {i} ({}) changed under the caller",
                        case.args[i]
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A callee trashing every register the convention lets it (rax, rcx, rdx,
/// r8-r11, xmm0-5), its 32-byte shadow area and its stack arguments: the
/// stub keeps nothing it needs there, aligns the stack, and stores the
/// right result, call after call, in both entry forms.
#[test]
fn stubs_survive_a_callee_that_trashes_what_win64_allows() {
    let a = [0x0102_0304_0506_0708i64, -2, i64::MIN, 77, -0x1234_5678];
    let x = [1.5f64, -2.25, 1e10, 0.125, -7.0];
    for abi in [Abi::Win64, Abi::GnuW64] {
        let int = Cif::with_abi(
            abi,
            i64(),
            &[ptr(), i64(), i64(), i64(), i64(), i64()],
            None,
        );
        let flt = Cif::with_abi(
            abi,
            f64(),
            &[ptr(), f64(), f64(), f64(), f64(), f64()],
            None,
        );
        let q3 = st([i64(), i64(), i64()]);
        let sret = Cif::with_abi(abi, &q3, &[ptr(), i64(), i64(), i64()], None);
        let (Ok(int), Ok(flt), Ok(sret)) = (int, flt, sret) else {
            panic!("{abi:?}: Cif::with_abi failed for the clobber callees");
        };
        for round in 0..3 {
            let mut s = ClobberState::default();
            let sp = &mut s as *mut ClobberState;
            let mut av: Vec<*const c_void> = vec![(&sp as *const *mut ClobberState).cast()];
            av.extend(a.iter().map(|v| (v as *const i64).cast::<c_void>()));
            let mut r = [0u64; 2];
            // SAFETY: win64_clobber is ms_abi int64_t(ClobberState *, 5 x
            // int64_t); avalue and the 16-byte result buffer match.
            unsafe {
                int.call_raw(
                    w64::win64_clobber as *const c_void,
                    r.as_mut_ptr().cast(),
                    av.as_ptr(),
                )
            };
            assert_eq!(
                r[0] as i64,
                w64::clobber_expected(&a),
                "{abi:?} round {round}"
            );
            assert_eq!(
                (s.calls, s.align),
                (1, 0),
                "{abi:?}: calls, stack misalignment"
            );
            assert_eq!(s.args[1..6], a.map(|v| v as u64), "{abi:?}");

            let mut av: Vec<*const c_void> = vec![(&sp as *const *mut ClobberState).cast()];
            av.extend(x.iter().map(|v| (v as *const f64).cast::<c_void>()));
            let mut r = 0f64;
            // SAFETY: win64_clobber_f64 is ms_abi double(ClobberState *, 5 x double).
            unsafe {
                flt.call_raw(
                    w64::win64_clobber_f64 as *const c_void,
                    (&mut r as *mut f64).cast(),
                    av.as_ptr(),
                )
            };
            assert_eq!(r, x.iter().sum::<f64>(), "{abi:?} round {round}");
            assert_eq!((s.calls, s.align), (2, 0), "{abi:?}");

            let mut av: Vec<*const c_void> = vec![(&sp as *const *mut ClobberState).cast()];
            av.extend(a[..3].iter().map(|v| (v as *const i64).cast::<c_void>()));
            let mut out = [0i64; 3];
            // SAFETY: win64_clobber_sret is ms_abi {int64_t q[3]}(ClobberState *, 3 x int64_t).
            unsafe {
                sret.call_raw(
                    w64::win64_clobber_sret as *const c_void,
                    out.as_mut_ptr().cast(),
                    av.as_ptr(),
                )
            };
            let want = [
                a[0] ^ a[2],
                a[1].wrapping_sub(a[2]),
                a[0].wrapping_add(a[1]),
            ];
            assert_eq!(out, want, "{abi:?} round {round}");
            assert_eq!((s.calls, s.align), (3, 0), "{abi:?}");
            assert_eq!(
                s.args[1..4],
                a[..3].iter().map(|&v| v as u64).collect::<Vec<_>>()[..]
            );

            // The same through the packed form.
            let mut buf = Buf::new(sret.packed_size(), 0);
            let offs = sret.packed_offsets().to_vec();
            buf.bytes_mut()[offs[0] as usize..][..8].copy_from_slice(&(sp as usize).to_le_bytes());
            for (k, v) in a[..3].iter().enumerate() {
                buf.bytes_mut()[offs[k + 1] as usize..][..8].copy_from_slice(&v.to_le_bytes());
            }
            let mut out = [0i64; 3];
            // SAFETY: the packed stub of `sret`, its function, its argument
            // buffer and a result buffer of the struct's size.
            unsafe {
                native_ret::call_packed_into(
                    sret.plan(),
                    sret.packed_entry() as *const c_void,
                    w64::win64_clobber_sret as *const c_void,
                    out.as_mut_ptr().cast(),
                    buf.ptr(),
                )
            };
            assert_eq!(out, want, "{abi:?} packed sret");
            assert_eq!((s.calls, s.align), (4, 0), "{abi:?} packed sret");

            // The packed form, result read from the registers.
            let mut buf = Buf::new(int.packed_size(), 0);
            let offs = int.packed_offsets().to_vec();
            buf.bytes_mut()[offs[0] as usize..][..8].copy_from_slice(&(sp as usize).to_le_bytes());
            for (k, v) in a.iter().enumerate() {
                buf.bytes_mut()[offs[k + 1] as usize..][..8].copy_from_slice(&v.to_le_bytes());
            }
            let mut r = [0u64; 2];
            // SAFETY: the packed stub of `int`, its function and argument
            // buffer; r holds the 8-byte result.
            unsafe {
                native_ret::call_packed_into(
                    int.plan(),
                    int.packed_entry() as *const c_void,
                    w64::win64_clobber as *const c_void,
                    r.as_mut_ptr().cast(),
                    buf.ptr(),
                )
            };
            assert_eq!(r[0] as i64, w64::clobber_expected(&a), "{abi:?} packed");
            assert_eq!((s.calls, s.align), (5, 0), "{abi:?} packed");
        }
    }
}

// ------------------------------------------------------- closures: probe

/// How the handler stores the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RetWrite {
    /// The return type's own size (`Ret::set` in typed handlers).
    Exact,
    /// Narrow integers as an 8-byte `ffi_arg`.
    FfiArg,
    /// All the handler may write, the bytes past the value garbage; then
    /// the handler scribbles over its arguments.
    Greedy,
}

const GREEDY_TAIL: u8 = 0xcc;
const SCRIBBLE: u8 = 0xeb;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Raw,
    Rust,
}

#[derive(Default)]
struct Seen {
    calls: u32,
    args: Vec<Vec<u8>>,
    /// Problems noticed inside the handler (which must not panic).
    errs: Vec<String>,
}

/// Shared between a test and its closure's handler.
struct Probe {
    ret: Type,
    args: Vec<Type>,
    sret: bool,
    /// Bytes the handler may write at rvalue.
    room: usize,
    /// Address of the closure's `Cif`, once the closure exists.
    cif: AtomicUsize,
    reply: Mutex<(Vec<u8>, RetWrite)>,
    seen: Mutex<Seen>,
    /// Call `jitffi_clobber_callee` before returning: trash every register
    /// the host convention lets a function trash.
    trash: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Probe {
    fn new(cif: &Cif) -> Probe {
        let sret = matches!(cif.plan().ret.pass, RetPass::Indirect { .. });
        let size = cif.ret().size();
        Probe {
            ret: cif.ret().clone(),
            args: cif.args().to_vec(),
            sret,
            room: if sret { size } else { size.max(16) },
            cif: AtomicUsize::new(0),
            reply: Mutex::new((Vec::new(), RetWrite::Exact)),
            seen: Mutex::new(Seen::default()),
            trash: false,
        }
    }

    fn take(&self) -> Seen {
        std::mem::take(&mut *lock(&self.seen))
    }

    fn enter(&self, seen: &mut Seen, cif: *const Cif, rvalue: *mut c_void) {
        seen.calls += 1;
        // SAFETY: the probe touches nothing but its thread-local state.
        unsafe { discipline::jitffi_probe_align() };
        let align = discipline::state().align;
        if align != 0 {
            seen.errs.push(format!(
                "the handler was entered with rsp {align} mod 16 off"
            ));
        }
        let want = self.cif.load(Ordering::Acquire);
        if cif as usize != want {
            seen.errs.push(format!(
                "the handler got cif {cif:p}, the closure's cif is at {want:#x}"
            ));
        }
        if !self.ret.is_void() {
            let align = if self.sret { self.ret.align() } else { 16 };
            if rvalue.is_null() || rvalue as usize % align != 0 {
                seen.errs.push(format!(
                    "rvalue {rvalue:p} is null or not {align}-aligned (sret: {})",
                    self.sret
                ));
            }
        }
    }

    fn record(&self, seen: &mut Seen, i: usize, p: *const c_void) -> Option<Vec<u8>> {
        let t = &self.args[i];
        if p.is_null() {
            seen.errs.push(format!("args[{i}] is null"));
            return None;
        }
        if p as usize % t.align().min(16) != 0 {
            seen.errs
                .push(format!("args[{i}] = {p:p} is not aligned for a {t}"));
        }
        // SAFETY: the closure passes a pointer to a value of type `t`, valid
        // for the call (null was rejected above).
        let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), t.size()) };
        let m = masked(bytes, &mask(t));
        seen.args.push(m.clone());
        Some(m)
    }

    fn reply_raw(&self, rvalue: *mut c_void) {
        let reply = lock(&self.reply);
        if self.ret.is_void() || rvalue.is_null() {
            return;
        }
        // SAFETY: rvalue holds `room` bytes (the handler contract).
        unsafe {
            std::ptr::copy_nonoverlapping(
                reply.0.as_ptr(),
                rvalue.cast(),
                reply.0.len().min(self.room),
            )
        };
    }

    fn scribble_if_greedy(&self, arg: impl Fn(usize) -> *mut c_void) {
        if lock(&self.reply).1 == RetWrite::Greedy {
            for (i, t) in self.args.iter().enumerate() {
                // SAFETY: arg(i) points at the handler's own copy of a `t`.
                unsafe { std::ptr::write_bytes(arg(i).cast::<u8>(), SCRIBBLE, t.size()) };
            }
        }
    }

    fn leave(&self) {
        if self.trash {
            let args = [1i64, 2, 3, 4, 5, 6, 7, 8];
            type Clob = extern "C" fn(i64, i64, i64, i64, i64, i64, i64, i64) -> i64;
            // SAFETY: jitffi_clobber_callee has exactly this signature.
            let f: Clob = unsafe {
                std::mem::transmute::<*const c_void, Clob>(
                    discipline::jitffi_clobber_callee as *const c_void,
                )
            };
            let r = f(
                args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7],
            );
            if r != discipline::clobber_callee_expected(&args) {
                lock(&self.seen)
                    .errs
                    .push("the clobber callee misbehaved".into());
            }
        }
    }
}

unsafe extern "C" fn raw_handler(
    cif: *const c_void,
    rvalue: *mut c_void,
    args: *const *mut c_void,
    ud: *mut c_void,
) {
    // SAFETY: every raw closure here gets a Probe that outlives it.
    let probe = unsafe { &*ud.cast_const().cast::<Probe>() };
    let mut seen = lock(&probe.seen);
    probe.enter(&mut seen, cif.cast(), rvalue);
    for i in 0..probe.args.len() {
        // SAFETY: the closure passes one pointer per argument.
        let p = unsafe { *args.add(i) };
        probe.record(&mut seen, i, p);
    }
    drop(seen);
    // SAFETY: as above.
    probe.scribble_if_greedy(|i| unsafe { *args.add(i) });
    probe.reply_raw(rvalue);
    probe.leave();
}

fn typed_get(t: &Type, a: &Args<'_>, i: usize) -> Option<Vec<u8>> {
    Some(match t.kind() {
        TypeKind::I8 => a.get::<i8>(i).to_le_bytes().to_vec(),
        TypeKind::U8 => a.get::<u8>(i).to_le_bytes().to_vec(),
        TypeKind::I16 => a.get::<i16>(i).to_le_bytes().to_vec(),
        TypeKind::U16 => a.get::<u16>(i).to_le_bytes().to_vec(),
        TypeKind::I32 => a.get::<i32>(i).to_le_bytes().to_vec(),
        TypeKind::U32 => a.get::<u32>(i).to_le_bytes().to_vec(),
        TypeKind::I64 => a.get::<i64>(i).to_le_bytes().to_vec(),
        TypeKind::U64 => a.get::<u64>(i).to_le_bytes().to_vec(),
        TypeKind::I128 => a.get::<i128>(i).to_le_bytes().to_vec(),
        TypeKind::F32 => a.get::<f32>(i).to_bits().to_le_bytes().to_vec(),
        TypeKind::F64 => a.get::<f64>(i).to_bits().to_le_bytes().to_vec(),
        TypeKind::Pointer => (a.get::<*const c_void>(i) as usize).to_le_bytes().to_vec(),
        _ => return None,
    })
}

fn typed_set(t: &Type, r: &mut Ret<'_>, b: &[u8]) -> bool {
    fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
        b[..N].try_into().expect("long enough")
    }
    match t.kind() {
        TypeKind::Void => r.set(()),
        TypeKind::I8 => r.set(i8::from_le_bytes(arr(b))),
        TypeKind::U8 => r.set(u8::from_le_bytes(arr(b))),
        TypeKind::I16 => r.set(i16::from_le_bytes(arr(b))),
        TypeKind::U16 => r.set(u16::from_le_bytes(arr(b))),
        TypeKind::I32 => r.set(i32::from_le_bytes(arr(b))),
        TypeKind::U32 => r.set(u32::from_le_bytes(arr(b))),
        TypeKind::I64 => r.set(i64::from_le_bytes(arr(b))),
        TypeKind::U64 => r.set(u64::from_le_bytes(arr(b))),
        TypeKind::I128 => r.set(i128::from_le_bytes(arr(b))),
        TypeKind::F32 => r.set(f32::from_bits(u32::from_le_bytes(arr(b)))),
        TypeKind::F64 => r.set(f64::from_bits(u64::from_le_bytes(arr(b)))),
        TypeKind::Pointer => r.set(usize::from_le_bytes(arr(b)) as *const c_void),
        _ => return false,
    }
    true
}

fn rust_handler(probe: &Probe, a: &Args<'_>, r: &mut Ret<'_>) {
    let mut seen = lock(&probe.seen);
    probe.enter(&mut seen, a.cif(), r.ptr());
    if a.len() != probe.args.len() {
        seen.errs.push(format!(
            "Args::len() is {}, the signature has {} arguments",
            a.len(),
            probe.args.len()
        ));
        return;
    }
    for i in 0..a.len() {
        let Some(raw) = probe.record(&mut seen, i, a.ptr(i)) else {
            continue;
        };
        if let Some(typed) = typed_get(&probe.args[i], a, i) {
            if typed != raw {
                seen.errs.push(format!(
                    "Args::get({i}) gave {}, Args::ptr({i}) points at {}",
                    hex(&typed),
                    hex(&raw)
                ));
            }
        }
    }
    drop(seen);
    probe.scribble_if_greedy(|i| a.ptr(i));
    let reply = lock(&probe.reply);
    if !(reply.1 == RetWrite::Exact && typed_set(&probe.ret, r, &reply.0)) {
        drop(reply);
        probe.reply_raw(r.ptr());
    }
    probe.leave();
}

enum Made {
    Raw(RawClosure),
    Rust(Closure),
}

impl Made {
    fn code_ptr(&self) -> *const c_void {
        match self {
            Made::Raw(c) => c.code_ptr(),
            Made::Rust(c) => c.code_ptr(),
        }
    }
    fn cif(&self) -> &Cif {
        match self {
            Made::Raw(c) => c.cif(),
            Made::Rust(c) => c.cif(),
        }
    }
}

fn make_closure(cif: &Cif, kind: Kind, probe: &Arc<Probe>) -> Result<Made, String> {
    let made = match kind {
        Kind::Raw => RawClosure::new(cif, raw_handler, Arc::as_ptr(probe).cast_mut().cast())
            .map(Made::Raw)
            .map_err(|e| format!("RawClosure::new failed: {e}"))?,
        Kind::Rust => {
            let p = Arc::clone(probe);
            Closure::new(cif, move |a, r| rust_handler(&p, a, r))
                .map(Made::Rust)
                .map_err(|e| format!("Closure::new failed: {e}"))?
        }
    };
    probe
        .cif
        .store(made.cif() as *const Cif as usize, Ordering::Release);
    if made.cif().abi() != cif.abi() || made.cif().args() != cif.args() {
        return Err(format!(
            "closure.cif() is {:?} {}({:?})",
            made.cif().abi(),
            made.cif().ret(),
            made.cif().args()
        ));
    }
    Ok(made)
}

// ------------------------------------------------------ closures: checks

/// The bytes a handler writes for `seed`, and the bytes gcc's caller must
/// then store (its libffi-form buffer, masked).
fn reply_for(case: &Case, seed: u64, write: RetWrite) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::for_case(case.name, seed ^ 0x5eed_f00d);
    let v = value(&case.ret, &mut rng);
    if case.ret.is_void() {
        return (v, Vec::new());
    }
    let narrow = is_narrow_int(&case.ret);
    let want = if narrow {
        widen(&case.ret, &v)
    } else {
        masked(&v, &mask(&case.ret))
    };
    let written = match write {
        RetWrite::FfiArg if narrow => widen(&case.ret, &v),
        _ => v,
    };
    (written, want)
}

fn call_and_check(
    case: &Case,
    closure: &Made,
    probe: &Probe,
    write: RetWrite,
    seed: u64,
) -> Vec<String> {
    let mut errs = Vec::new();
    let args = make_args(case, seed);
    let (mut reply, want) = reply_for(case, seed, write);
    if write == RetWrite::Greedy && !case.ret.is_void() {
        reply.resize(probe.room, GREEDY_TAIL);
    }
    *lock(&probe.reply) = (reply, write);
    let ret_len = case.ret.size().max(8);
    let mut ret = Buf::new(ret_len + GUARD, RET_POISON);
    probe.take();
    // SAFETY: the closure has the signature and ABI `call` calls with
    // (variadic after the first parameter where the case is); `avalue`
    // points at values of the argument types; the buffer is large and
    // aligned.
    unsafe { (case.call)(closure.code_ptr(), ret.ptr(), args.avalue.as_ptr()) };
    let seen = probe.take();
    errs.extend(seen.errs);
    if seen.calls != 1 {
        errs.push(format!(
            "the handler ran {} times, expected once",
            seen.calls
        ));
    }
    if seen.args.len() == args.sent.len() {
        for (i, (s, r)) in args.sent.iter().zip(&seen.args).enumerate() {
            if s != r {
                errs.push(format!(
                    "argument {i} ({}) received {} but gcc sent {}",
                    case.args[i],
                    hex(r),
                    hex(s)
                ));
            }
        }
    } else if seen.calls == 1 {
        errs.push(format!(
            "the handler recorded {} of {} arguments",
            seen.args.len(),
            args.sent.len()
        ));
    }
    if !case.ret.is_void() {
        let rmask = ret_mask(&case.ret);
        let got = masked(&ret.bytes()[..rmask.len()], &rmask);
        if got != want {
            errs.push(format!(
                "gcc's caller got {} but the handler returned {} ({write:?} write of a {})",
                hex(&got),
                hex(&want),
                case.ret
            ));
        }
    }
    if let Some(i) = ret.bytes()[ret_len..].iter().position(|&b| b != RET_POISON) {
        errs.push(format!(
            "wrote past the return buffer (byte {})",
            ret_len + i
        ));
    }
    for (i, (b, s)) in args.bufs.iter().zip(&args.sent).enumerate() {
        if &masked(b.bytes(), &mask(&case.args[i])) != s {
            errs.push(format!(
                "argument {i} ({}) changed under gcc's caller",
                case.args[i]
            ));
        }
    }
    errs
}

fn run_closure_case(case: &Case, abi: Abi, kind: Kind, write: RetWrite) -> Vec<String> {
    let cif = match cif_for(case, abi) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let probe = Arc::new(Probe::new(&cif));
    let closure = match make_closure(&cif, kind, &probe) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    for seed in SEEDS {
        let errs = call_and_check(case, &closure, &probe, write, seed);
        if !errs.is_empty() {
            return errs
                .into_iter()
                .map(|e| format!("seed {seed}: {e}"))
                .collect();
        }
    }
    Vec::new()
}

fn run_all_closures(kind: Kind) {
    let mut failures = Vec::new();
    let mut runs = 0;
    for case in &selected() {
        let writes: &[RetWrite] = if is_narrow_int(&case.ret) {
            &[RetWrite::Exact, RetWrite::FfiArg, RetWrite::Greedy]
        } else {
            &[RetWrite::Exact, RetWrite::Greedy]
        };
        for &abi in abis(case) {
            for &write in writes {
                runs += 1;
                let errs = run_closure_case(case, abi, kind, write);
                if !errs.is_empty() {
                    failures.push(format!(
                        "{} [{abi:?}, {kind:?}, {write:?}] {}:\n    {}",
                        case.name,
                        signature(case),
                        errs.join("\n    ")
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} closure runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------------- closures: tests

#[test]
fn every_case_through_a_raw_closure() {
    run_all_closures(Kind::Raw);
}

#[test]
fn every_case_through_a_rust_closure() {
    run_all_closures(Kind::Rust);
}

/// The closure harness can fail: a closure whose cif disagrees with gcc's
/// caller is caught, on the way in and on the way back.
#[test]
fn mismatched_closures_are_caught() {
    let mut c = fixed("w64_mixed", f64(), [i32(), f64(), i32(), f32()]);
    c.args = vec![f64(), i32(), f64(), i32()];
    for abi in [Abi::Win64, Abi::GnuW64] {
        let errs = run_closure_case(&c, abi, Kind::Raw, RetWrite::Exact);
        assert!(
            errs.iter()
                .any(|e| e.contains("argument 0 (") && e.contains("received")),
            "{abi:?}: {errs:?}"
        );
    }
    // A closure of the host's convention, called as an ms_abi function.
    let c = fixed("w64_args5", i64(), [i64(), f64(), i32(), f32(), i64()]);
    let errs = run_closure_case(&c, Abi::SysV64, Kind::Raw, RetWrite::Exact);
    assert!(
        errs.iter()
            .any(|e| e.contains("argument 1 (") && e.contains("received")),
        "{errs:?}"
    );
    // gcc reads an int64 result from rax; this closure returns a double.
    let mut c = fixed("w64_i64", i64(), [i64(), i64()]);
    c.ret = f64();
    for abi in [Abi::Win64, Abi::GnuW64] {
        let errs = run_closure_case(&c, abi, Kind::Rust, RetWrite::Exact);
        assert!(
            errs.iter().any(|e| e.contains("gcc's caller got")),
            "{abi:?}: {errs:?}"
        );
    }
}

/// gcc's caller, the thunk and the handler together keep what the host
/// convention promises its caller (rbx, rbp, r12-r15, rsp, MXCSR, the x87
/// control word and stack depth, the caller's frame).
#[test]
fn closures_keep_the_host_callers_state() {
    let mut failures = Vec::new();
    for case in &selected() {
        for &abi in abis(case) {
            let cif = match cif_for(case, abi) {
                Ok(c) => c,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            let probe = Arc::new(Probe::new(&cif));
            let closure = match make_closure(&cif, Kind::Raw, &probe) {
                Ok(c) => c,
                Err(e) => {
                    failures.push(format!("{}: {e}", case.name));
                    continue;
                }
            };
            let args = make_args(case, 7);
            *lock(&probe.reply) = (reply_for(case, 7, RetWrite::Exact).0, RetWrite::Exact);
            let mut ret = Buf::new(case.ret.size().max(8) + GUARD, 0);
            probe.take();
            discipline::reset();
            // SAFETY: `call` has the RawStub signature; it calls the closure
            // as in `call_and_check`.
            let m = unsafe {
                discipline::call_checked(
                    case.call,
                    closure.code_ptr(),
                    ret.ptr(),
                    args.avalue.as_ptr(),
                )
            };
            let seen = probe.take();
            if m != 0 {
                failures.push(format!(
                    "{} [{abi:?}]: {} not preserved",
                    case.name,
                    clobbered::describe(m)
                ));
            }
            if seen.calls != 1 || !seen.errs.is_empty() {
                failures.push(format!(
                    "{} [{abi:?}]: handler ran {} times: {:?}",
                    case.name, seen.calls, seen.errs
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A call made register by register (the convention's facts, written out
/// by hand) to a closure whose handler trashes everything the host lets a
/// function trash: the thunk must hand back every register Win64 makes
/// callee-saved, rsi, rdi and xmm6-xmm15 among them.
struct Checked {
    name: &'static str,
    ret: Type,
    args: Vec<Type>,
    fixed: Option<usize>,
    /// Builds the call from the argument buffers (and the result buffer for
    /// an sret call).
    regs: fn(&[Buf], *mut c_void) -> Win64Call,
}

fn word(b: &Buf) -> u64 {
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b.bytes()[..n]);
    u64::from_le_bytes(w)
}

fn addr(b: &Buf) -> u64 {
    b.bytes().as_ptr() as u64
}

fn checked_calls() -> Vec<Checked> {
    vec![
        // rcx, xmm1, r8 = &s_iii, xmm3, stack 0, stack 1 = &s_dd
        Checked {
            name: "i64(i64, f64, s_iii, f32, i64, s_dd)",
            ret: i64(),
            args: vec![i64(), f64(), s_iii(), f32(), i64(), s_dd()],
            fixed: None,
            regs: |b, _| {
                let mut c = Win64Call {
                    gpr: [word(&b[0]), 0, addr(&b[2]), 0],
                    xmm: [0, word(&b[1]), 0, word(&b[3])],
                    ..Win64Call::default()
                };
                c.stack[0] = word(&b[4]);
                c.stack[1] = addr(&b[5]);
                c
            },
        },
        // rcx = result, edx, xmm2, r9b = s1
        Checked {
            name: "s_ddd(i32, f64, s1) (sret)",
            ret: s_ddd(),
            args: vec![i32(), f64(), s1()],
            fixed: None,
            regs: |b, rv| Win64Call {
                gpr: [rv as u64, word(&b[0]), 0, word(&b[2])],
                xmm: [0, 0, word(&b[1]), 0],
                ..Win64Call::default()
            },
        },
        // xmm0-3, stack 0-1; result in xmm0
        Checked {
            name: "f64(6 x f64)",
            ret: f64(),
            args: vec![f64(); 6],
            fixed: None,
            regs: |b, _| {
                let mut c = Win64Call {
                    xmm: [word(&b[0]), word(&b[1]), word(&b[2]), word(&b[3])],
                    ..Win64Call::default()
                };
                c.stack[0] = word(&b[4]);
                c.stack[1] = word(&b[5]);
                c
            },
        },
        // variadic doubles in both the gpr and the xmm register
        Checked {
            name: "i32(i32; f64, i64, f64, s_iii)",
            ret: i32(),
            args: vec![i32(), f64(), i64(), f64(), s_iii()],
            fixed: Some(1),
            regs: |b, _| {
                let mut c = Win64Call {
                    gpr: [word(&b[0]), word(&b[1]), word(&b[2]), word(&b[3])],
                    xmm: [0, word(&b[1]), 0, word(&b[3])],
                    ..Win64Call::default()
                };
                c.stack[0] = addr(&b[4]);
                c
            },
        },
        // rcx = &i128, dl; result in xmm0 (gcc's choice)
        Checked {
            name: "i128(i128, u8)",
            ret: i128(),
            args: vec![i128(), u8()],
            fixed: None,
            regs: |b, _| Win64Call {
                gpr: [addr(&b[0]), word(&b[1]), 0, 0],
                ..Win64Call::default()
            },
        },
    ]
}

#[test]
fn closures_keep_what_win64_makes_callee_saved() {
    let mut failures = Vec::new();
    for chk in checked_calls() {
        for abi in [Abi::Win64, Abi::GnuW64] {
            let what = format!("{} [{abi:?}]", chk.name);
            let cif = match Cif::with_abi(abi, &chk.ret, &chk.args, chk.fixed) {
                Ok(c) => c,
                Err(e) => {
                    failures.push(format!("{what}: {e}"));
                    continue;
                }
            };
            let mut probe = Probe::new(&cif);
            probe.trash = true;
            let probe = Arc::new(probe);
            for kind in [Kind::Raw, Kind::Rust] {
                let closure = match make_closure(&cif, kind, &probe) {
                    Ok(c) => c,
                    Err(e) => {
                        failures.push(format!("{what}: {e}"));
                        continue;
                    }
                };
                let mut rng = Rng::for_case(chk.name, 11);
                let bufs: Vec<Buf> = chk
                    .args
                    .iter()
                    .map(|t| Buf::from_bytes(&value(t, &mut rng)))
                    .collect();
                let sent: Vec<Vec<u8>> = chk
                    .args
                    .iter()
                    .zip(&bufs)
                    .map(|(t, b)| masked(b.bytes(), &mask(t)))
                    .collect();
                let reply = value(&chk.ret, &mut rng);
                *lock(&probe.reply) = (reply.clone(), RetWrite::Exact);
                let mut out = Buf::new(chk.ret.size().max(16), 0);
                let mut c = (chk.regs)(&bufs, out.ptr());
                c.func = closure.code_ptr() as usize;
                probe.take();
                // SAFETY: the words are exactly the closure's arguments under
                // the Microsoft convention (written out above); the result
                // buffer holds the sret value.
                let m = unsafe { w64::call_checked(&mut c) };
                let seen = probe.take();
                let what = format!("{what} {kind:?}");
                if m != 0 {
                    failures.push(format!("{what}: {} not preserved", w64::kept::describe(m)));
                }
                failures.extend(seen.errs.iter().map(|e| format!("{what}: {e}")));
                if seen.calls != 1 || seen.args != sent {
                    failures.push(format!(
                        "{what}: the handler ran {} times and saw {:?}, sent {:?}",
                        seen.calls,
                        seen.args.iter().map(|a| hex(a)).collect::<Vec<_>>(),
                        sent.iter().map(|a| hex(a)).collect::<Vec<_>>()
                    ));
                }
                let want = masked(&reply, &mask(&chk.ret));
                let n = chk.ret.size();
                // Where gcc's ms_abi code leaves each of these results.
                let got = match chk.ret.kind() {
                    TypeKind::Struct { .. } => {
                        if c.rax != out.ptr() as u64 {
                            failures.push(format!("{what}: rax is not the result pointer"));
                        }
                        out.bytes()[..n].to_vec()
                    }
                    TypeKind::F64 | TypeKind::I128 => c.xmm0[..n].to_vec(),
                    _ => c.rax.to_le_bytes()[..n].to_vec(),
                };
                if masked(&got, &mask(&chk.ret)) != want {
                    failures.push(format!(
                        "{what}: returned {}, the handler wrote {}",
                        hex(&got),
                        hex(&want)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
