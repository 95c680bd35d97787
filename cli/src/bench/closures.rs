//! Incoming calls: closures for S2, S3 and S5 called through their code
//! pointers (a direct call of an equivalent Rust `extern "C" fn`, a jitffi
//! `RawClosure` and a libffi closure with one minimal handler, a jitffi
//! `Closure::new` with a Rust handler), and a closure's life (allocate,
//! prepare, free).

use std::hint::black_box;
use std::ptr;

use jitffi::{Cif, Closure, RawClosure};
use jitffi_oracle::bench_closures::*;
use jitffi_oracle::{bench_call, closure_handler};

use super::calls::SIGNATURES;
use super::measure::Stats;
use super::sysffi::{FfiCif, FfiClosure, Libffi};
use super::types::{jitffi_cif, libffi_cif, SIGS};
use super::Runner;
use super::{check_failed, ClosureMin, ClosureRatios, ClosureRow, LifeMin, LifeRatios, LifeRow};
use crate::error::CliError;

/// The benchmark names.
pub const NAMES: [&str; 3] = ["closures/S2", "closures/S3", "closures/S5"];
/// The closure-life benchmark's name.
pub const LIFE: &str = "closure-life/S2";

// The bodies, the direct functions and the minimal handlers (one per
// signature, shared by jitffi's RawClosure and libffi: the same four
// pointers) are `jitffi_oracle::bench_closures`'s, shared with `cargo bench
// --bench closures`.

/// Times the closures the filter selects, and the closure life.
pub fn run(
    runner: &Runner,
    mut ffi: Option<&mut Libffi>,
) -> Result<(Vec<ClosureRow>, Option<LifeRow>), CliError> {
    let mut rows = Vec::new();
    if runner.selected(NAMES[0]) {
        rows.push(closure_case::<S2Closure>(
            runner,
            1,
            s2_handler,
            |cif| Closure::new(cif, closure_handler!(S2)),
            ffi.as_deref_mut(),
            s2_direct,
            |f| f(black_box(40), black_box(2)) as f64,
        )?);
        runner.case_done();
    }
    if runner.selected(NAMES[1]) {
        rows.push(closure_case::<S3Closure>(
            runner,
            2,
            s3_handler,
            |cif| Closure::new(cif, closure_handler!(S3)),
            ffi.as_deref_mut(),
            s3_direct,
            |f| bench_call!(S3, f),
        )?);
        runner.case_done();
    }
    if runner.selected(NAMES[2]) {
        rows.push(closure_case::<S5Closure>(
            runner,
            4,
            s5_handler,
            |cif| Closure::new(cif, closure_handler!(S5)),
            ffi.as_deref_mut(),
            s5_direct,
            |f| bench_call!(S5, f),
        )?);
        runner.case_done();
    }
    let life = if runner.selected(LIFE) {
        let l = life(runner, ffi)?;
        runner.case_done();
        Some(l)
    } else {
        None
    };
    Ok((rows, life))
}

/// Checks and times the closures of S1-S8's case `index`: `F` is its
/// `extern "C" fn` type, `handler` its minimal handler, `rust` makes its
/// `Closure::new`, and `call` calls an `F` with the case's arguments.
fn closure_case<F: Copy>(
    runner: &Runner,
    index: usize,
    handler: jitffi::RawHandler,
    rust: impl FnOnce(&Cif) -> jitffi::Result<Closure>,
    mut ffi: Option<&mut Libffi>,
    direct: F,
    call: impl Fn(F) -> f64,
) -> Result<ClosureRow, CliError> {
    let sig = &SIGS[index];
    let name = sig.name;
    let cif = &jitffi_cif(sig)?;
    let mut lcif = match ffi.as_deref_mut() {
        Some(f) => Some(libffi_cif(f, name, sig)?),
        None => None,
    };
    let ffi = ffi.as_deref();
    // A fixed order (the Rust closure first), so runs compare: which
    // trampoline slot a closure gets moved S3's RawClosure call by ~0.5 ns.
    let rust = rust(cif)?;
    let raw = RawClosure::new(cif, handler, ptr::null_mut())?;
    let lib = match (ffi, lcif.as_deref_mut()) {
        // SAFETY: the cif is declared before the closure, so outlives it.
        (Some(ffi), Some(lcif)) => Some(
            unsafe { FfiClosure::new(ffi, lcif, handler) }
                .map_err(|e| check_failed(format!("{name}: libffi closure: {e}")))?,
        ),
        _ => None,
    };
    // SAFETY: every closure was made for `cif`, whose signature `F` is;
    // all of them outlive the calls below.
    let (raw_f, rust_f, lib_f): (F, F, Option<F>) = unsafe {
        (
            raw.as_fn(),
            rust.as_fn(),
            lib.as_ref().map(|l| l.as_fn::<F>()),
        )
    };
    let want = call(direct);
    for (form, f) in [
        ("jitffi RawClosure", Some(raw_f)),
        ("jitffi Closure::new", Some(rust_f)),
        ("libffi closure", lib_f),
    ] {
        if let Some(f) = f {
            let got = call(f);
            if got.to_bits() != want.to_bits() {
                return Err(check_failed(format!(
                    "closure {name}: {form} returned {got}, the direct call {want}"
                )));
            }
        }
    }
    let label = |what: &str| format!("closures/{name} {what}");
    let direct_s = runner.time(&label("direct"), || call(black_box(direct)));
    let raw_s = runner.time(&label("RawClosure"), || call(black_box(raw_f)));
    let rust_s = runner.time(&label("Closure::new"), || call(black_box(rust_f)));
    let lib_s: Option<Stats> = lib_f.map(|f| runner.time(&label("libffi"), || call(black_box(f))));
    Ok(ClosureRow {
        name: name.to_string(),
        signature: SIGNATURES[index].to_string(),
        direct_ns: direct_s.ns(),
        jitffi_raw_closure_ns: raw_s.ns(),
        jitffi_closure_ns: rust_s.ns(),
        libffi_closure_ns: lib_s.map(Stats::ns),
        min_ns: ClosureMin {
            direct: direct_s.min(),
            jitffi_raw_closure: raw_s.min(),
            jitffi_closure: rust_s.min(),
            libffi_closure: lib_s.map(Stats::min),
        },
        ratios: ClosureRatios {
            jitffi_raw_closure_over_direct: raw_s.over(direct_s),
            jitffi_closure_over_direct: rust_s.over(direct_s),
            libffi_over_jitffi_raw_closure: lib_s.map(|l| l.over(raw_s)),
        },
    })
}

/// A closure's life for S2: jitffi `RawClosure::new` + drop (the thunk
/// already compiled, as libffi's cif is already prepared) against
/// `ffi_closure_alloc` + `ffi_prep_closure_loc` + `ffi_closure_free`.
fn life(runner: &Runner, ffi: Option<&mut Libffi>) -> Result<LifeRow, CliError> {
    let cif = jitffi_cif(&SIGS[1])?;
    let check = |what: &str, f: S2Closure| {
        let got = f(40, 2);
        if got == 42 {
            Ok(())
        } else {
            Err(check_failed(format!(
                "closure life: {what} returned {got}, not 42"
            )))
        }
    };
    {
        let raw = RawClosure::new(&cif, s2_handler, ptr::null_mut())?;
        // SAFETY: S2's signature; the closure is alive.
        check("jitffi RawClosure", unsafe { raw.as_fn() })?;
        let rust = Closure::new(&cif, closure_handler!(S2))?;
        // SAFETY: as above.
        check("jitffi Closure::new", unsafe { rust.as_fn() })?;
    }
    // The closures are dropped inside the timed call and only a bool
    // leaves it: moving the whole `Result` out costs a store-forwarding
    // stall (~10 ns on Zen 4) that is the benchmark's, not jitffi's.
    let raw_s = runner.time("closure-life/S2 RawClosure::new + drop", || {
        RawClosure::new(black_box(&cif), s2_handler, ptr::null_mut()).is_ok()
    });
    let rust_s = runner.time("closure-life/S2 Closure::new + drop", || {
        Closure::new(black_box(&cif), closure_handler!(S2)).is_ok()
    });
    let lib_s = match ffi {
        Some(ffi) => {
            let mut lcif = libffi_cif(ffi, "closure life", &SIGS[1])?;
            let ffi = &*ffi;
            let lcif: *mut FfiCif = &mut *lcif;
            {
                // SAFETY: `lcif` outlives the closure (it lives to the end
                // of this arm).
                let c = unsafe { FfiClosure::new(ffi, lcif, s2_handler) }
                    .map_err(|e| check_failed(format!("closure life: libffi: {e}")))?;
                // SAFETY: S2's signature; the closure is alive.
                check("libffi closure", unsafe { c.as_fn() })?;
            }
            let (alloc, prep, free, size) = (
                ffi.closure_alloc,
                ffi.prep_closure_loc,
                ffi.closure_free,
                ffi.closure_size,
            );
            // SAFETY: the cif is prepared and outlives every closure; each
            // closure is freed once, right after it is made (a failed
            // allocation is skipped).
            Some(runner.time("closure-life/S2 libffi", || unsafe {
                let mut code = ptr::null_mut();
                let closure = alloc(size, &mut code);
                if closure.is_null() {
                    return u32::MAX;
                }
                let status = prep(closure, black_box(lcif), s2_handler, ptr::null_mut(), code);
                free(closure);
                status
            }))
        }
        None => None,
    };
    Ok(LifeRow {
        signature: SIGNATURES[1].to_string(),
        jitffi_raw_closure_ns: raw_s.ns(),
        jitffi_closure_ns: rust_s.ns(),
        libffi_ns: lib_s.map(Stats::ns),
        min_ns: LifeMin {
            jitffi_raw_closure: raw_s.min(),
            jitffi_closure: rust_s.min(),
            libffi: lib_s.map(Stats::min),
        },
        ratios: LifeRatios {
            libffi_over_jitffi_raw_closure: lib_s.map(|l| l.over(raw_s)),
        },
    })
}
