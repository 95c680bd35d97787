//! jitffi against gcc on AArch64 (AAPCS64, Linux): every oracle of
//! `oracle/c/aarch64/aapcs64.c` is called through jitffi and through gcc's
//! own calling code with the same arguments, and the bytes each call
//! delivered and the bytes that came back must agree.
//!
//! Calls: the libffi form ([`Cif::call_raw`]), the packed form
//! ([`Cif::call_packed`], its native return registers captured and
//! rebuilt), a null return buffer, and the typed [`Cif::call`].
//! Closures: a [`RawClosure`] and a [`Closure`] of each shape are called by
//! gcc's caller of that shape, `call_<name>(fn, rvalue, avalue)`; the
//! handler must receive exactly what gcc sent and gcc must get exactly what
//! the handler returned.
//!
//! The table's shapes are the standard's edge cases: HFAs (three floats,
//! two doubles inside a struct, a float array of four, complex members,
//! unions, four long doubles) and near-HFAs (float + double), HFAs and
//! small composites that no longer fit in the registers left, composites
//! of every size from 1 to 16 bytes, `__int128` in even register pairs and
//! 16-aligned stack slots, binary128 `long double`, large composites passed
//! by reference and returned through `x8`, narrow integers, more than eight
//! integer and float arguments, and variadic calls.
//!
//! Set `JITFFI_ORACLE_ONLY=<substring>` to run only matching cases.
#![cfg(target_arch = "aarch64")]

use std::ffi::{c_void, CString};
use std::sync::Arc;

use jitffi::plan::{ArgPass, Ext, Loc};
use jitffi::{Arg, CType, Cif, Type, TypeKind};
use jitffi_oracle::aapcs64::{self as a64, Record};
use jitffi_oracle::discipline;

/// The crate, under the name `support/native_ret.rs` expects.
mod jit {
    pub use jitffi::*;
}
#[path = "support/native_ret.rs"]
mod native_ret;

#[path = "support/shapes.rs"]
mod shapes;
use shapes::{hex, is_narrow_int, mask, masked, ret_mask, value, widen, Buf, Rng};

// ------------------------------------------------------------ the types

#[path = "support/a64_types.rs"]
mod a64_types;
use a64_types::jt;

// ------------------------------------------------------------ the table

/// What the first argument of a case must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum First {
    /// Anything (a seeded pattern).
    Any,
    /// The number of variadic arguments, as `int`.
    Count,
    /// A pointer to the format string describing the variadic arguments.
    Fmt,
}

struct Case {
    name: &'static str,
    sig: &'static str,
    ret: Type,
    args: Vec<Type>,
    fixed: Option<usize>,
    /// The C type names of the arguments.
    arg_names: Vec<&'static str>,
    first: First,
    /// `a_va_fmt`'s format string, one letter per variadic argument.
    fmt: CString,
    func: *const c_void,
    direct: a64::DirectFn,
    call: a64::CallFn,
}

/// The letter of `a_va_fmt`'s format for a C type.
fn fmt_letter(name: &str) -> char {
    match name {
        "i32" => 'i',
        "i64" => 'q',
        "f64" => 'd',
        "f128" => 'D',
        "ptr" => 'p',
        "s_di" => 's',
        "s_fd" => 'x',
        "s_fff" => 'f',
        "s_d4" => 'h',
        "s_24" => 'b',
        "cf64" => 'c',
        other => panic!("a_va_fmt has no letter for {other}"),
    }
}

fn table() -> Vec<Case> {
    a64::cases()
        .into_iter()
        .map(|c| {
            let first = match c.fixed {
                None => First::Any,
                Some(_) if c.name.starts_with("a_va_fmt") => First::Fmt,
                Some(_) => First::Count,
            };
            let fmt: String = if first == First::Fmt {
                c.arg_names[1..].iter().map(|n| fmt_letter(n)).collect()
            } else {
                String::new()
            };
            Case {
                name: c.name,
                sig: c.sig,
                ret: jt(&c.ret),
                args: c.args.iter().map(jt).collect(),
                fixed: c.fixed,
                arg_names: c.arg_names.clone(),
                first,
                fmt: CString::new(fmt).expect("no NUL"),
                func: c.func,
                direct: c.direct,
                call: c.call,
            }
        })
        .collect()
}

/// The cases whose name contains `JITFFI_ORACLE_ONLY` (all when unset).
fn selected() -> Vec<Case> {
    let only = std::env::var("JITFFI_ORACLE_ONLY").unwrap_or_default();
    table()
        .into_iter()
        .filter(|c| c.name.contains(only.as_str()))
        .collect()
}

fn named(name: &str) -> Case {
    table()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} is not in the C table"))
}

fn cif_for(case: &Case) -> Result<Cif, String> {
    match case.fixed {
        None => Cif::new(case.ret.clone(), &case.args),
        Some(n) => Cif::new_variadic(case.ret.clone(), &case.args[..n], &case.args[n..]),
    }
    .map_err(|e| format!("Cif for {}: {e}", case.name))
}

/// The case's C signature, `...` marking where the variadic part starts.
fn signature(case: &Case) -> String {
    match case.fixed {
        None => case.sig.to_string(),
        Some(n) => format!("{} [variadic after {n}]", case.sig),
    }
}

/// Argument values for one call of a case.
struct CallArgs {
    /// One 16-aligned buffer per argument.
    bufs: Vec<Buf>,
    /// Pointers into `bufs`, in libffi's `avalue` form.
    avalue: Vec<*const c_void>,
    /// The meaningful bytes of each argument as made (padding zeroed).
    sent: Vec<Vec<u8>>,
    /// What the C record must hold for each argument: `sent`, or for a
    /// type too large for a record slot its digest.
    recorded: Vec<Vec<u8>>,
}

fn make_args(case: &Case, salt: u64) -> CallArgs {
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
            First::Fmt => b
                .bytes_mut()
                .copy_from_slice(&(case.fmt.as_ptr() as usize).to_le_bytes()),
        }
    }
    let avalue = bufs.iter_mut().map(|b| b.ptr().cast_const()).collect();
    let sent: Vec<Vec<u8>> = case
        .args
        .iter()
        .zip(&bufs)
        .map(|(t, b)| masked(b.bytes(), &mask(t)))
        .collect();
    let recorded: Vec<Vec<u8>> = sent
        .iter()
        .zip(&case.arg_names)
        .map(|(s, &n)| {
            if n == a64::DIGESTED {
                a64::huge_digest(s)
            } else {
                s.to_vec()
            }
        })
        .collect();
    CallArgs {
        bufs,
        avalue,
        sent,
        recorded,
    }
}

// ------------------------------------------------------- harness checks

/// gcc lays out every C type as the oracle crate describes it.
#[test]
fn the_type_descriptions_match_gcc() {
    let layouts = a64::layouts();
    assert!(layouts.len() >= 50);
    for l in layouts {
        let t = jt(&a64::c_type(l.name).expect("described"));
        assert_eq!(
            (t.size(), t.align()),
            (l.size, l.align),
            "{} is {t:?}, gcc says size {} align {}",
            l.name,
            l.size,
            l.align
        );
    }
    assert!(table().len() >= 90);
}

/// The harness itself, without jitffi: gcc's call delivers exactly the
/// bytes the table sends, for every case, and the C side is deterministic.
#[test]
fn gcc_receives_what_the_table_sends() {
    let mut failures = Vec::new();
    for case in &selected() {
        let args = make_args(case, 1);
        let mut records = Vec::new();
        let mut rets = Vec::new();
        for _ in 0..2 {
            let mut ret = Buf::new(case.ret.size().max(8) + GUARD, RET_POISON);
            a64::reset();
            // SAFETY: `direct` calls the oracle with values of exactly its
            // argument types, read from avalue; the buffer is large and
            // 16-aligned.
            unsafe { (case.direct)(ret.ptr(), args.avalue.as_ptr()) };
            records.push(a64::record());
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
        for (i, (t, s)) in case.args.iter().zip(&args.recorded).enumerate() {
            if &rec.args[i] != s {
                failures.push(format!(
                    "{}: argument {i} ({t}) sent {} received {}",
                    case.name,
                    hex(s),
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
        if case.ret.is_void() || case.first != First::Any {
            continue;
        }
        let rmask = ret_mask(&case.ret);
        let ret_of = |args: &CallArgs| {
            let mut ret = Buf::new(case.ret.size().max(8), 0);
            // SAFETY: as in `gcc_receives_what_the_table_sends`.
            unsafe { (case.direct)(ret.ptr(), args.avalue.as_ptr()) };
            masked(&ret.bytes()[..rmask.len()], &rmask)
        };
        let base = make_args(case, 1);
        let want = ret_of(&base);
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

// ----------------------------------------------------------- the calls

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Raw,
    Packed,
    NullRvalue,
}

const GUARD: usize = 32;
const RET_POISON: u8 = 0xa5;

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

/// The packed argument buffer of a call, or why it cannot be made.
fn pack(cif: &Cif, case: &Case, bufs: &[Buf]) -> Result<Buf, String> {
    let offsets = cif.packed_offsets().to_vec();
    if offsets.len() != case.args.len() {
        return Err(format!(
            "packed_offsets has {} entries for {} arguments",
            offsets.len(),
            case.args.len()
        ));
    }
    let size = cif.packed_size();
    let mut packed = Buf::new(size + GUARD, 0x5a);
    for ((t, b), &off) in case.args.iter().zip(bufs).zip(&offsets) {
        let off = off as usize;
        if off % t.align().min(16) != 0 || off + t.size() > size {
            return Err(format!(
                "packed offset {off} of a {t} does not fit a {size}-byte buffer"
            ));
        }
        packed.bytes_mut()[off..off + t.size()].copy_from_slice(b.bytes());
    }
    Ok(packed)
}

/// Runs one case in one mode; returns every disagreement found.
fn run_case(case: &Case, mode: Mode, seed: u64) -> Vec<String> {
    let mut errs = Vec::new();
    let cif = match cif_for(case) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let args = make_args(case, seed);
    let ret_len = cif.ret_buffer_size();
    let rmask = ret_mask(&case.ret);

    // Ground truth: gcc's call.
    let mut ret_direct = Buf::new(ret_len + GUARD, RET_POISON);
    a64::reset();
    // SAFETY: `direct` calls the oracle with values of exactly its argument
    // types, read from `avalue`; the return buffer is large and aligned.
    unsafe { (case.direct)(ret_direct.ptr(), args.avalue.as_ptr()) };
    let truth = a64::record();
    if truth.calls != 1 || truth.count != case.args.len() as i32 {
        errs.push(format!(
            "gcc's own call recorded {} arguments in {} calls: the oracle or the table is wrong",
            truth.count, truth.calls
        ));
    }

    // The same call through jitffi.
    let avalue_before = args.avalue.clone();
    let bytes_before: Vec<Vec<u8>> = args.bufs.iter().map(|b| b.bytes().to_vec()).collect();
    let mut ret_jit = Buf::new(ret_len + GUARD, RET_POISON);
    a64::reset();
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
            let mut packed = match pack(&cif, case, &args.bufs) {
                Ok(p) => p,
                Err(e) => return vec![e],
            };
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
    let got = a64::record();
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
        failures.push(format!(
            "{} [{mode:?}, seed {seed}] {}:\n    {}",
            case.name,
            signature(case),
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

#[test]
fn every_case_through_call_raw() {
    run_all(Mode::Raw);
}

#[test]
fn every_case_through_call_packed() {
    run_all(Mode::Packed);
}

/// libffi allows a null rvalue: the value is dropped, sret calls get a
/// temporary. Arguments must still arrive.
#[test]
fn every_case_with_a_null_rvalue() {
    run_all(Mode::NullRvalue);
}

/// The harness can fail: a cif that disagrees with the C function is
/// caught, both on the way in and on the way back.
#[test]
fn mismatched_signatures_are_caught() {
    // {float, double} travels in x0:x1; an HFA {double, double} in d0, d1.
    let mut case = named("a_s_fd");
    case.args = vec![jt(&a64::c_type("u_dd").unwrap()); 2];
    let errs = run_case(&case, Mode::Raw, 1);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("jitffi: argument 0 received")),
        "{errs:?}"
    );
    // An int64 returned in x0, read back as a double from d0.
    let mut case = named("a_i64");
    case.ret = Type::f64();
    let errs = run_case(&case, Mode::Raw, 1);
    assert!(errs.iter().any(|e| e.starts_with("returned")), "{errs:?}");
}

/// [`Cif::call`], the typed entry: every case whose return type a Rust
/// type names, arguments given with [`Arg::new`] where a Rust type names
/// them and [`Arg::raw`] otherwise, returns what gcc's call returned.
#[test]
fn typed_call_agrees_with_gcc() {
    fn call_as<R: CType>(
        cif: &Cif,
        f: *const c_void,
        args: &[Arg<'_>],
        size: usize,
    ) -> Result<Vec<u8>, String> {
        // SAFETY: the cif describes `f`; every raw argument points at a
        // value of its type, alive for the call.
        let r: R = unsafe { cif.call(f, args) }.map_err(|e| e.to_string())?;
        // SAFETY: R is a plain scalar of `size` bytes (checked by the cif).
        let bytes = unsafe { std::slice::from_raw_parts((&r as *const R).cast::<u8>(), size) };
        Ok(bytes.to_vec())
    }
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in &selected() {
        let cif = cif_for(case).expect("cif");
        let args = make_args(case, 4);
        let typed: Vec<Arg<'_>> = case
            .args
            .iter()
            .zip(&args.bufs)
            .zip(&args.avalue)
            .map(|((t, b), &p)| {
                let bytes = b.bytes();
                match t.kind() {
                    TypeKind::I32 => Arg::new(from_bytes::<i32>(bytes)),
                    TypeKind::I64 => Arg::new(from_bytes::<i64>(bytes)),
                    TypeKind::F64 => Arg::new(from_bytes::<f64>(bytes)),
                    TypeKind::U8 => Arg::new(from_bytes::<u8>(bytes)),
                    // SAFETY: `p` points at a value of type `t`, alive for
                    // the call.
                    _ => unsafe { Arg::raw(p) },
                }
            })
            .collect();
        // `void` reports size 1 but has no bytes.
        let size = if case.ret.is_void() {
            0
        } else {
            case.ret.size()
        };
        let f = case.func;
        let got = match case.ret.kind() {
            TypeKind::Void => call_as::<()>(&cif, f, &typed, 0),
            TypeKind::I8 => call_as::<i8>(&cif, f, &typed, 1),
            TypeKind::U8 => call_as::<u8>(&cif, f, &typed, 1),
            TypeKind::I16 => call_as::<i16>(&cif, f, &typed, 2),
            TypeKind::U16 => call_as::<u16>(&cif, f, &typed, 2),
            TypeKind::I32 => call_as::<i32>(&cif, f, &typed, 4),
            TypeKind::U32 => call_as::<u32>(&cif, f, &typed, 4),
            TypeKind::I64 => call_as::<i64>(&cif, f, &typed, 8),
            TypeKind::U64 => call_as::<u64>(&cif, f, &typed, 8),
            TypeKind::I128 => call_as::<i128>(&cif, f, &typed, 16),
            TypeKind::U128 => call_as::<u128>(&cif, f, &typed, 16),
            TypeKind::F32 => call_as::<f32>(&cif, f, &typed, 4),
            TypeKind::F64 => call_as::<f64>(&cif, f, &typed, 8),
            TypeKind::Pointer => call_as::<*const c_void>(&cif, f, &typed, 8),
            _ => continue,
        };
        ran += 1;
        let mut want = Buf::new(size.max(8), 0);
        // SAFETY: as in `run_case`.
        unsafe { (case.direct)(want.ptr(), args.avalue.as_ptr()) };
        match got {
            Ok(g) if g == want.bytes()[..size] => {}
            Ok(g) => failures.push(format!(
                "{} {}: Cif::call returned {}, gcc's call {}",
                case.name,
                signature(case),
                hex(&g),
                hex(&want.bytes()[..size])
            )),
            Err(e) => failures.push(format!("{}: Cif::call failed: {e}", case.name)),
        }
    }
    assert!(ran >= 30, "only {ran} cases have a typed return");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn from_bytes<T: Copy>(bytes: &[u8]) -> &T {
    assert!(bytes.len() >= std::mem::size_of::<T>());
    assert_eq!(bytes.as_ptr() as usize % std::mem::align_of::<T>(), 0);
    // SAFETY: the buffer is long enough and aligned (checked); T is a
    // plain scalar for which every bit pattern is valid.
    unsafe { &*bytes.as_ptr().cast::<T>() }
}

// --------------------------------------------- what the callee receives

fn probe(cif: &Cif, avalue: &[*const c_void], rvalue: *mut c_void) -> discipline::ProbeState {
    discipline::reset();
    // SAFETY: the probe reads registers and stack slots only, ignores its
    // arguments and returns x0 unchanged, which every return convention
    // tolerates (the stub stores whatever the return registers hold).
    unsafe {
        cif.call_raw(
            discipline::jitffi_probe_regs as *const c_void,
            rvalue,
            avalue.as_ptr(),
        )
    };
    discipline::state()
}

/// Narrow integer arguments arrive with their value bits intact and
/// extended as the plan says: in `x` registers to 64 bits (the plan always
/// extends there: gcc callees read only the low bits, Apple's read 32), in
/// an 8-byte stack slot to the whole slot where the plan's piece carries
/// an extension (a piece's `Ext` widens it "to the full register / slot
/// width").
#[test]
fn narrow_integer_arguments_are_extended() {
    let types = [
        Type::i8(),
        Type::u8(),
        Type::i16(),
        Type::u16(),
        Type::i32(),
        Type::u32(),
    ];
    let all: Vec<Type> = types.iter().chain(types.iter()).cloned().collect();
    let cif = Cif::new(Type::i64(), &all).expect("Cif::new");
    let values: [i64; 6] = [-3, 0xfd, -300, 0xfed4, -70_000, 0xfffe_1234];
    let mut bufs: Vec<Buf> = all
        .iter()
        .zip(values.iter().chain(values.iter()))
        .map(|(t, v)| Buf::from_bytes(&v.to_le_bytes()[..t.size()]))
        .collect();
    let avalue: Vec<_> = bufs.iter_mut().map(|b| b.ptr().cast_const()).collect();
    let mut ret = Buf::new(16, 0);
    let s = probe(&cif, &avalue, ret.ptr());
    assert_eq!(s.regs_calls, 1, "the probe was not called");
    let mut errs = Vec::new();
    for (i, t) in all.iter().enumerate() {
        let want = values[i % 6] as u64; // already sign- or zero-extended
        let (got, place) = if i < 8 {
            (s.gpr[i], format!("x{i}"))
        } else {
            (s.stack[i - 8], format!("stack slot {}", i - 8))
        };
        let ext = match &cif.plan().args[i].pass {
            ArgPass::Direct(p) if p.len() == 1 => p[0].ext,
            other => {
                errs.push(format!("argument {i} ({t}): unexpected plan {other:?}"));
                continue;
            }
        };
        let value_bits = (1u64 << (8 * t.size())) - 1;
        if i < 8 && ext == Ext::None {
            errs.push(format!(
                "argument {i} ({t}) in {place}: the plan does not extend"
            ));
        }
        if got & value_bits != want & value_bits {
            errs.push(format!(
                "argument {i} ({t} {}) in {place}: {got:#018x}, value bits wrong",
                values[i % 6]
            ));
        } else if ext != Ext::None && got != want {
            errs.push(format!(
                "argument {i} ({t} {}) in {place}: {got:#018x}, the plan says {ext:?} to {want:#018x}",
                values[i % 6]
            ));
        }
    }
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}

/// Variadic arguments travel exactly like fixed ones on Linux: doubles in
/// v0-v7 then the stack, integers in x1-x7 then the stack, with no count
/// register anywhere.
#[test]
fn variadic_arguments_travel_like_fixed_ones() {
    let d = |i: usize| 0.5 + i as f64 * 1.25;
    for k in 0..=10usize {
        let variadic: Vec<Type> = (0..k).flat_map(|_| [Type::f64(), Type::i64()]).collect();
        let cif = Cif::new_variadic(Type::i32(), &[Type::i32()], &variadic).expect("cif");
        let mut bufs = vec![Buf::from_bytes(&7i32.to_le_bytes())];
        for i in 0..k {
            bufs.push(Buf::from_bytes(&d(i).to_le_bytes()));
            bufs.push(Buf::from_bytes(&(100 + i as i64).to_le_bytes()));
        }
        let avalue: Vec<_> = bufs.iter_mut().map(|b| b.ptr().cast_const()).collect();
        let mut ret = Buf::new(16, 0);
        let s = probe(&cif, &avalue, ret.ptr());
        assert_eq!(s.gpr[0] as u32, 7, "{k} pairs: the fixed int in w0");
        // Stack slots in argument order: the integers past x7 and the
        // doubles past v7, interleaved as they come.
        let mut stack = Vec::new();
        for i in 0..k {
            let dv = d(i).to_bits();
            if i < 8 {
                assert_eq!(
                    &s.vec[i][..8],
                    &dv.to_le_bytes(),
                    "{k} pairs: double {i} in v{i}"
                );
            } else {
                stack.push(dv);
            }
            let iv = 100 + i as u64;
            if i < 7 {
                assert_eq!(s.gpr[i + 1], iv, "{k} pairs: int {i} in x{}", i + 1);
            } else {
                stack.push(iv);
            }
        }
        assert_eq!(&s.stack[..stack.len()], &stack[..], "{k} pairs: stack");
    }
}

/// A value returned in memory goes to the buffer whose address the stub
/// puts in x8 (the caller's rvalue, or a temporary of its own when rvalue
/// is null), aligned for the type; no argument register moves for it.
#[test]
fn indirect_results_use_x8() {
    let s100 = jt(&a64::c_type("s_100").unwrap());
    let cif = Cif::new(s100.clone(), &[Type::i64(), Type::i64()]).expect("cif");
    let mut bufs = [
        Buf::from_bytes(&11i64.to_le_bytes()),
        Buf::from_bytes(&22i64.to_le_bytes()),
    ];
    let avalue: Vec<_> = bufs.iter_mut().map(|b| b.ptr().cast_const()).collect();
    let mut ret = Buf::new(s100.size(), 0);
    let s = probe(&cif, &avalue, ret.ptr());
    assert_eq!((s.gpr[0], s.gpr[1]), (11, 22), "arguments stay in x0, x1");
    assert_eq!(s.gpr[8], ret.ptr() as u64, "x8 is rvalue");
    let s = probe(&cif, &avalue, std::ptr::null_mut());
    assert_eq!((s.gpr[0], s.gpr[1]), (11, 22), "arguments stay in x0, x1");
    assert!(
        s.gpr[8] != 0 && s.gpr[8] % s100.align() as u64 == 0,
        "a null rvalue gets an aligned temporary in x8: {:#x}",
        s.gpr[8]
    );
}

/// A composite over 16 bytes goes by reference to a copy: the callee
/// finds its argument somewhere else than the caller's value, aligned for
/// its type, and may scribble over it (`a_scribble` does) without the
/// caller's value changing.
#[test]
fn large_composites_go_by_reference_to_private_copies() {
    let case = named("a_scribble");
    let cif = cif_for(&case).expect("cif");
    for form in ["raw", "packed"] {
        let args = make_args(&case, 5);
        let before: Vec<Vec<u8>> = args.bufs.iter().map(|b| b.bytes().to_vec()).collect();
        let mut packed = pack(&cif, &case, &args.bufs).expect("packed");
        let packed_before = packed.bytes().to_vec();
        a64::reset();
        // SAFETY: the cif describes a_scribble; the arguments are values of
        // its types; it returns nothing.
        unsafe {
            if form == "raw" {
                cif.call_raw(case.func, std::ptr::null_mut(), args.avalue.as_ptr());
            } else {
                cif.call_packed::<()>(case.func, std::ptr::null_mut(), packed.ptr());
            }
        }
        let rec = a64::record();
        assert_eq!(rec.args, args.sent, "[{form}] the callee's record");
        let packed_range = packed.ptr() as usize..packed.ptr() as usize + packed.len();
        for (i, (addr, t)) in a64::scribble_addrs().iter().zip(&case.args).enumerate() {
            let theirs = args.avalue[i] as usize;
            assert!(
                *addr != theirs && !packed_range.contains(addr),
                "[{form}] argument {i} ({t}) was passed as the caller's own value"
            );
            assert_eq!(
                addr % t.align(),
                0,
                "[{form}] argument {i}'s copy at {addr:#x} misaligned for {t}"
            );
            assert_eq!(
                args.bufs[i].bytes(),
                &before[i][..],
                "[{form}] argument {i}'s value changed"
            );
        }
        assert_eq!(
            packed.bytes(),
            &packed_before[..],
            "[{form}] packed buffer changed"
        );
    }
}

// ============================================================= closures

#[path = "support/closure_probe.rs"]
mod closure_probe;
use closure_probe::*;

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

/// Calls `closure` (made for `probe`'s signature) with gcc's caller of
/// `case`; returns every disagreement.
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
    // SAFETY: the closure has the signature `call` calls with (variadic
    // after the first parameter where the case is); `avalue` points at
    // values of the argument types; the return buffer is large and aligned.
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
    errs
}

/// One case, one closure kind, one way of writing the result: a closure
/// made once, called with every seed.
fn run_closure_case(case: &Case, kind: Kind, write: RetWrite) -> Vec<String> {
    let cif = match cif_for(case) {
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
    let cases = selected();
    let mut failures = Vec::new();
    let mut runs = 0;
    for case in &cases {
        let writes: &[RetWrite] = if is_narrow_int(&case.ret) {
            &[RetWrite::Exact, RetWrite::FfiArg, RetWrite::Greedy]
        } else {
            &[RetWrite::Exact, RetWrite::Greedy]
        };
        for &write in writes {
            runs += 1;
            let errs = run_closure_case(case, kind, write);
            if !errs.is_empty() {
                failures.push(format!(
                    "{} [{kind:?}, {write:?}] {}:\n    {}",
                    case.name,
                    signature(case),
                    errs.join("\n    ")
                ));
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

/// The harness without jitffi: each `call_<name>` pointed at the oracle
/// itself delivers what the direct caller delivers and returns what it
/// returns.
#[test]
fn gcc_callers_deliver_what_the_table_sends() {
    let mut failures = Vec::new();
    for case in &selected() {
        let args = make_args(case, 1);
        let len = case.ret.size().max(8) + GUARD;
        let (mut via_direct, mut via_call) = (Buf::new(len, 0), Buf::new(len, 0));
        a64::reset();
        // SAFETY: `direct` calls the oracle with values of its argument
        // types read from avalue; the buffer is large and aligned.
        unsafe { (case.direct)(via_direct.ptr(), args.avalue.as_ptr()) };
        let want = a64::record();
        a64::reset();
        // SAFETY: as above, with the oracle as `call`'s callee (variadic
        // oracles are the variadic functions `call` expects).
        unsafe { (case.call)(case.func, via_call.ptr(), args.avalue.as_ptr()) };
        let got = a64::record();
        if got != want || got.args != args.recorded {
            failures.push(format!(
                "{}: call_ delivered {got:?}, direct_ {want:?}",
                case.name
            ));
        }
        let rmask = ret_mask(&case.ret);
        let a = masked(&via_direct.bytes()[..rmask.len()], &rmask);
        let b = masked(&via_call.bytes()[..rmask.len()], &rmask);
        if a != b {
            failures.push(format!(
                "{}: call_ returned {}, direct_ {}",
                case.name,
                hex(&b),
                hex(&a)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_case_through_a_raw_closure() {
    run_all_closures(Kind::Raw);
}

#[test]
fn every_case_through_a_rust_closure() {
    run_all_closures(Kind::Rust);
}

/// gcc's caller, the closure thunk and the handler together keep x19-x29,
/// sp, d8-d15 and FPCR, and do not write into the frame above.
#[test]
fn closures_keep_callee_saved_state() {
    let mut failures = Vec::new();
    for case in &selected() {
        let cif = match cif_for(case) {
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
        // SAFETY: `call` has the RawStub signature; it calls the closure as
        // in `call_and_check`.
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
                "{}: {} not preserved",
                case.name,
                discipline::clobbered::describe(m)
            ));
        }
        if seen.calls != 1 || !seen.errs.is_empty() {
            failures.push(format!(
                "{}: handler ran {} times: {:?}",
                case.name, seen.calls, seen.errs
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The closure harness can fail: a closure whose cif disagrees with its
/// caller is caught, on the way in and on the way back.
#[test]
fn mismatched_closures_are_caught() {
    // gcc passes {float, double} in x0:x1; a closure for an HFA of two
    // doubles reads d0, d1.
    let mut c = named("a_s_fd");
    c.args = vec![jt(&a64::c_type("u_dd").unwrap()); 2];
    let errs = run_closure_case(&c, Kind::Raw, RetWrite::Exact);
    assert!(
        errs.iter()
            .any(|e| e.contains("argument 0 (") && e.contains("received")),
        "{errs:?}"
    );
    // gcc reads an int64 from x0; the closure returns a double in d0.
    let mut c = named("a_i64");
    c.ret = Type::f64();
    let errs = run_closure_case(&c, Kind::Rust, RetWrite::Exact);
    assert!(
        errs.iter().any(|e| e.contains("gcc's caller got")),
        "{errs:?}"
    );
}

/// One closure per shape, all alive at once, each called twice interleaved
/// with the others: every code pointer reaches its own handler.
#[test]
fn many_closures_alive_reach_their_own_handlers() {
    let cases = selected();
    let mut live = Vec::new();
    for case in &cases {
        let cif = cif_for(case).expect("cif");
        let probe = Arc::new(Probe::new(&cif));
        let closure =
            make_closure(&cif, Kind::Rust, &probe).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        live.push((case, closure, probe));
    }
    let mut failures = Vec::new();
    for round in 0..2 {
        for (case, closure, probe) in &live {
            let errs = call_and_check(case, closure, probe, RetWrite::Exact, 10 + round);
            if !errs.is_empty() {
                failures.push(format!("{} round {round}: {}", case.name, errs.join("; ")));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A closure that is both called through jitffi's own stub and hands
/// back every argument shape: jitffi calling jitffi agrees with gcc
/// calling jitffi, for every case, in both entry forms.
#[test]
fn jitffi_stubs_call_jitffi_closures() {
    let mut failures = Vec::new();
    for case in &selected() {
        let cif = cif_for(case).expect("cif");
        let probe = Arc::new(Probe::new(&cif));
        let closure = make_closure(&cif, Kind::Raw, &probe).expect("closure");
        for form in ["raw", "packed"] {
            let args = make_args(case, 8);
            let (reply, want) = reply_for(case, 8, RetWrite::Exact);
            *lock(&probe.reply) = (reply, RetWrite::Exact);
            let ret_len = cif.ret_buffer_size();
            let mut ret = Buf::new(ret_len + GUARD, RET_POISON);
            probe.take();
            // SAFETY: the closure has the cif's signature; the arguments are
            // values of its types; the buffers are sized from the cif.
            unsafe {
                if form == "raw" {
                    cif.call_raw(closure.code_ptr(), ret.ptr(), args.avalue.as_ptr());
                } else {
                    let mut packed = pack(&cif, case, &args.bufs).expect("packed");
                    native_ret::call_packed_into(
                        cif.plan(),
                        cif.packed_entry() as *const c_void,
                        closure.code_ptr(),
                        ret.ptr(),
                        packed.ptr(),
                    );
                }
            }
            let seen = probe.take();
            let mut errs = seen.errs;
            if seen.calls != 1 {
                errs.push(format!("handler ran {} times", seen.calls));
            } else if seen.args != args.sent {
                let bad: Vec<usize> = (0..args.sent.len())
                    .filter(|&i| seen.args.get(i) != Some(&args.sent[i]))
                    .collect();
                errs.push(format!("arguments {bad:?} arrived changed"));
            }
            if !case.ret.is_void() {
                let rmask = ret_mask(&case.ret);
                let got = masked(&ret.bytes()[..rmask.len()], &rmask);
                if got != want {
                    errs.push(format!(
                        "returned {} but the handler wrote {}",
                        hex(&got),
                        hex(&want)
                    ));
                }
            }
            if !errs.is_empty() {
                failures.push(format!(
                    "{} [{form}] {}: {}",
                    case.name,
                    signature(case),
                    errs.join("; ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The plans of the edge cases, as the standard (and gcc, through the
/// tests above) has them: a guard that the table exercises what it claims.
#[test]
fn the_table_reaches_the_edge_cases() {
    let plan = |name: &str| cif_for(&named(name)).expect("cif").plan().to_string();
    let has = |name: &str, line: &str| {
        let p = plan(name);
        assert!(p.contains(line), "{name}: no `{line}` in\n{p}");
    };
    has(
        "a_s_fff",
        "arg 1 struct { float; float; float; }: [0..4) v3, [4..8) v4, [8..12) v5",
    );
    has("a_s_dd_nest", "[0..8) v0, [8..16) v1");
    has(
        "a_s_fd",
        "arg 1 struct { float; double; }: [0..8) x2, [8..16) x3",
    );
    has(
        "a_s_ld4",
        "ret struct { long double[4]; }: [0..16) v0, [16..32) v1, [32..48) v2, [48..64) v3",
    );
    has(
        "a_hfa_full",
        "arg 6 struct { float; float; float; }: [0..12) stack+0",
    );
    has("a_hfa_full", "arg 7 float: [0..4) stack+16");
    has("a_int_i128", "arg 1 __int128: [0..8) x2, [8..16) x3");
    has("a_i128_stack2", "arg 9 __int128: [0..16) stack+16");
    has(
        "a_s_i128_stack",
        "arg 9 struct { __int128; }: [0..16) stack+16",
    );
    has("a_small_full", "arg 8 int64_t: [0..8) stack+16");
    has(
        "a_s_24",
        "ret struct { int64_t; int64_t; int64_t; }: sret ptr in x8",
    );
    has(
        "a_s_24",
        "arg 0 struct { int64_t; int64_t; int64_t; }: copy, address in x0",
    );
    has("a_large_stack", "copy, address in stack+0");
    has("a_f32_spill", "arg 11 float: [0..4) stack+24");
    has("a_narrow_stack", "arg 8 int8_t: [0..1) stack+0 sext");
    let p = plan("a_u_fd");
    assert!(
        p.contains("x0"),
        "union {{ float; double; }} is no HFA:\n{p}"
    );
    let p = plan("a_s_f5");
    assert!(
        p.contains("copy, address in x0"),
        "five floats are no HFA:\n{p}"
    );
    assert!(
        matches!(
            cif_for(&named("a_s_ld2")).unwrap().plan().args[0].pass,
            ArgPass::Direct(ref p) if p.iter().all(|p| matches!(p.loc, Loc::Vec(_)))
        ),
        "two long doubles are an HFA"
    );
}
