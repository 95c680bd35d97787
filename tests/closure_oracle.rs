//! jitffi closures called by gcc: for every call shape of
//! `oracle/c/oracles.c`, a closure of that signature is called through the
//! shape's gcc-compiled caller `call_<name>(fn, rvalue, avalue)`. gcc is the
//! ground truth for how a caller passes the arguments and reads the result,
//! so the handler must receive exactly the bytes that were sent, and the
//! caller must get exactly what the handler wrote.
//!
//! Both closure kinds are covered: [`RawClosure`] with an `extern "C"`
//! handler reading `args[i]`, and [`Closure::new`] with a Rust closure
//! reading through [`Args`] (typed `get` where a Rust type names the
//! argument) and writing through [`Ret`]. Narrow integer results are written
//! both ways libffi allows: as an 8-byte `ffi_arg` and at their own size;
//! and every result once more as greedily as the handler contract allows,
//! by a handler that then scribbles over its arguments.
//! Variadic shapes get a closure made with [`Cif::new_variadic`], called by
//! gcc as a variadic function.
//!
//! Set `JITFFI_ORACLE_ONLY=<substring>` to run only matching cases.
//!
//! The oracles and their callers are plain C in the host's convention: this
//! runs on x86-64 and AArch64; the register-state probes are x86-64
//! assembly. The handler probe is `support/closure_probe.rs`.
#![cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), unix))]

use std::sync::Arc;

#[cfg(target_arch = "x86_64")]
use jitffi_oracle::discipline::{self, clobbered};
use jitffi_oracle::oracles;

#[path = "support/shapes.rs"]
mod shapes;
use shapes::*;

#[path = "support/oracle_table.rs"]
mod oracle_table;
use oracle_table::*;

// ------------------------------------------------------------ the handler

#[path = "support/closure_probe.rs"]
mod closure_probe;
use closure_probe::*;

// ------------------------------------------------------------ the checks

const GUARD: usize = 32;
const RET_POISON: u8 = 0xa5;

/// Seeds of the values each closure is called with (one closure, several
/// calls).
const SEEDS: [u64; 3] = [1, 2, 3];

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
/// `case`, once per seed; returns every disagreement.
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
    #[cfg(target_arch = "x86_64")]
    discipline::reset();
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
fn run_case(case: &Case, kind: Kind, write: RetWrite) -> Vec<String> {
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

fn run_all(kind: Kind) {
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
            let errs = run_case(case, kind, write);
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

// ------------------------------------------------------------------ tests

#[test]
fn the_table_covers_every_c_case() {
    assert!(assert_matches_c() >= 60);
}

/// The harness without jitffi: each `call_<name>` pointed at the oracle
/// itself delivers exactly what the table sends and returns what the
/// direct caller returns. This checks the C callers and the Rust table.
#[test]
fn gcc_callers_deliver_what_the_table_sends() {
    let mut failures = Vec::new();
    for case in &selected() {
        let args = make_args(case, 1);
        let len = case.ret.size().max(8) + GUARD;
        let (mut via_direct, mut via_call) = (Buf::new(len, 0), Buf::new(len, 0));
        oracles::reset();
        // SAFETY: `direct` calls the oracle with values of its argument
        // types read from avalue; the buffer is large and aligned.
        unsafe { (case.direct)(via_direct.ptr(), args.avalue.as_ptr()) };
        let want = oracles::record();
        oracles::reset();
        // SAFETY: as above, with the oracle as `call`'s callee (variadic
        // oracles are the variadic functions `call` expects).
        unsafe { (case.call)(case.func, via_call.ptr(), args.avalue.as_ptr()) };
        let got = oracles::record();
        if got.calls != 1 || got.count != case.args.len() as i32 {
            failures.push(format!(
                "{}: {} arguments recorded in {} calls",
                case.name, got.count, got.calls
            ));
            continue;
        }
        if got != want {
            failures.push(format!(
                "{}: call_ delivered {got:?}, direct_ {want:?}",
                case.name
            ));
        }
        for (i, (s, r)) in args.sent.iter().zip(&got.args).enumerate() {
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
    run_all(Kind::Raw);
}

#[test]
fn every_case_through_a_rust_closure() {
    run_all(Kind::Rust);
}

/// gcc's caller, the closure thunk and the handler together keep rbx, rbp,
/// r12-r15, rsp, MXCSR, the x87 control word and stack depth, and do not
/// write into the frame above.
#[cfg(target_arch = "x86_64")]
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
        discipline::reset();
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
                clobbered::describe(m)
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

/// The harness can fail: a closure whose cif disagrees with its caller is
/// caught, on the way in and on the way back.
#[test]
fn mismatched_closures_are_caught() {
    // x86-64: gcc passes {double, int} in xmm0 + rdi; a closure for
    // {int64, double} reads rdi + xmm0. AArch64: gcc passes {float, int} in
    // x0; a closure for {float, float} reads s0 + s1.
    #[cfg(target_arch = "x86_64")]
    let (mut c, told) = (
        fixed("or_s_di", s_di(), [s_di(), s_di()]),
        vec![s_qd(), s_qd()],
    );
    #[cfg(target_arch = "aarch64")]
    let (mut c, told) = (fixed("or_s_fi", s_fi(), [s_fi()]), vec![s_ff()]);
    c.args = told;
    let errs = run_case(&c, Kind::Raw, RetWrite::Exact);
    assert!(
        errs.iter()
            .any(|e| e.contains("argument 0 (") && e.contains("received")),
        "{errs:?}"
    );
    // An int64 return read by gcc from rax / x0, a closure returning a
    // double in xmm0 / d0.
    let mut c = fixed("or_i64", i64(), [i64(), i64()]);
    c.ret = f64();
    let errs = run_case(&c, Kind::Rust, RetWrite::Exact);
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
