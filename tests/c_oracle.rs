//! jitffi against gcc: every oracle of `oracle/c/oracles.c` is called
//! through jitffi (libffi form, packed form, null rvalue) and through the
//! gcc-compiled direct caller with the same arguments; the bytes each call
//! delivered and the bytes that came back must agree.
//!
//! Set `JITFFI_ORACLE_ONLY=<substring>` to run only matching cases.
//!
//! The oracles are plain C, so this runs on every host with a capture shim
//! (x86-64, AArch64) in the host's own convention; the register probes at
//! the end are x86-64 assembly.
#![cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), unix))]

use std::ffi::c_void;

#[cfg(target_arch = "x86_64")]
use jitffi::plan::{ArgPass, Ext};
#[cfg(target_arch = "x86_64")]
use jitffi::{Cif, Type};
#[cfg(target_arch = "x86_64")]
use jitffi_oracle::discipline::{self, ProbeState};
use jitffi_oracle::oracles::{self, Record};

/// The crate, under the name `support/native_ret.rs` expects.
mod jit {
    pub use jitffi::*;
}
#[path = "support/native_ret.rs"]
mod native_ret;

// ------------------------------------------------------------------ table

#[path = "support/shapes.rs"]
mod shapes;
use shapes::*;

#[path = "support/oracle_table.rs"]
mod oracle_table;
use oracle_table::*;

// ------------------------------------------------------------ the checks

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
    for (i, (s, r)) in args.sent.iter().zip(&truth.args).enumerate() {
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

// ------------------------------------------------------------------ tests

#[test]
fn the_table_covers_every_c_case() {
    assert!(assert_matches_c() >= 40);
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
        let ret_of = |args: &CallArgs| {
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
    // x86-64: {int64, double} travels in rdi + xmm0, {double, int} in
    // xmm0 + rdi. AArch64 passes both in x0 + x1 (neither is an HFA), but
    // {float, float} in s0 + s1 and {float, int} in x0.
    #[cfg(target_arch = "x86_64")]
    let (mut case, told) = (
        fixed("or_s_di", s_di(), [s_di(), s_di()]),
        vec![s_qd(), s_qd()],
    );
    #[cfg(target_arch = "aarch64")]
    let (mut case, told) = (fixed("or_s_fi", s_fi(), [s_fi()]), vec![s_ff()]);
    case.args = told;
    let errs = run_case(&case, Mode::Raw, 1);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("jitffi: argument 0 received")),
        "{errs:?}"
    );
    // An int64 returned in rax / x0, read back as a double from xmm0 / d0.
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

#[cfg(target_arch = "x86_64")]
fn probe(cif: &Cif, avalue: &[*const c_void]) -> ProbeState {
    discipline::reset();
    let mut ret = Buf::new(cif.ret_buffer_size() + GUARD, 0);
    // SAFETY: the probe reads registers and stack slots only, ignores its
    // arguments, and returns rdi in rax (no x87 value), which every
    // non-x87 return convention tolerates.
    unsafe {
        cif.call_raw(
            discipline::jitffi_probe_regs as *const c_void,
            ret.ptr(),
            avalue.as_ptr(),
        )
    };
    discipline::state()
}

/// Narrow integer arguments arrive extended: to 32 bits at least (what the
/// psABI's users, clang first, rely on) and to the full register or slot
/// when the plan says so (what libffi does).
#[cfg(target_arch = "x86_64")]
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
    let avalue: Vec<_> = bufs.iter_mut().map(|b| b.ptr().cast_const()).collect();
    let s = probe(&cif, &avalue);
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

#[cfg(target_arch = "x86_64")]
fn mask_of(t: &Type) -> u64 {
    if t.size() >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * t.size())) - 1
    }
}

/// A variadic call puts in `al` an upper bound (at most 8) on the vector
/// registers it uses; gcc's va_start skips saving xmm0-7 when al is 0.
#[cfg(target_arch = "x86_64")]
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
            call: lookup("va_dbl0").call,
        };
        let args = make_args(&case, 3);
        let s = probe(&cif, &args.avalue);
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
    let mut bufs = [Buf::new(8, 1), Buf::new(8, 2), Buf::new(4, 3)];
    let avalue: Vec<_> = bufs.iter_mut().map(|b| b.ptr().cast_const()).collect();
    let s = probe(&cif, &avalue);
    assert!(
        s.gpr[discipline::RAX] as u8 <= 8,
        "al > 8 with no vector args"
    );
}
