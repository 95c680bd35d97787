//! Incoming calls: closures for S2, S3 and S5 called through their code
//! pointers (a direct call of an equivalent Rust `extern "C" fn`, a jitffi
//! `RawClosure` and a libffi closure with one minimal handler, a jitffi
//! `Closure::new` with a Rust handler), and a closure's life (allocate,
//! prepare, free).

use std::ffi::c_void;
use std::hint::black_box;
use std::ptr;

use jitffi::{Cif, Closure, RawClosure, Type};

use super::calls::SIGNATURES;
use super::measure::Stats;
use super::sysffi::{FfiCif, FfiClosure, Libffi};
use super::types::{F64S, S5, S5_PTR, T};
use super::{check_failed, ratio, round_ns, ClosureMin, ClosureRatios, ClosureRow, LifeMin};
use super::{LifeRatios, LifeRow, Runner};
use crate::error::CliError;

/// The benchmark names.
pub const NAMES: [&str; 3] = ["closures/S2", "closures/S3", "closures/S5"];
/// The closure-life benchmark's name.
pub const LIFE: &str = "closure-life/S2";

type S2 = extern "C" fn(i32, i32) -> i32;
type S3 = extern "C" fn(f64, f64, f64, f64) -> f64;
type S5 = extern "C" fn(i32, f64, i64, f32, *const c_void, i8, u16, f64) -> f64;

// What every variant computes, so they all return the same.

fn s2_body(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}

fn s3_body(a: f64, b: f64, c: f64, d: f64) -> f64 {
    a + b + c + d
}

#[allow(clippy::too_many_arguments)]
fn s5_body(a: i32, b: f64, c: i64, d: f32, e: *const c_void, f: i8, g: u16, h: f64) -> f64 {
    a as f64 + b + c as f64 + d as f64 + e as usize as f64 + f as f64 + g as f64 + h
}

extern "C" fn s2_direct(a: i32, b: i32) -> i32 {
    s2_body(a, b)
}

extern "C" fn s3_direct(a: f64, b: f64, c: f64, d: f64) -> f64 {
    s3_body(a, b, c, d)
}

#[allow(clippy::too_many_arguments)]
extern "C" fn s5_direct(
    a: i32,
    b: f64,
    c: i64,
    d: f32,
    e: *const c_void,
    f: i8,
    g: u16,
    h: f64,
) -> f64 {
    s5_body(a, b, c, d, e, f, g, h)
}

/// Argument `i` as a `T`.
///
/// # Safety
/// `args[i]` points at a `T`.
#[inline(always)]
unsafe fn arg<A: Copy>(args: *const *mut c_void, i: usize) -> A {
    // SAFETY: per the contract; closure arguments are aligned for their types.
    unsafe { *(*args.add(i)).cast::<A>() }
}

// Minimal handlers, shared by jitffi's RawClosure and libffi (the same
// four pointers).

unsafe extern "C" fn s2_handler(
    _cif: *const c_void,
    ret: *mut c_void,
    args: *const *mut c_void,
    _ud: *mut c_void,
) {
    // SAFETY: the closure is int(int, int); `ret` holds at least 8 bytes.
    unsafe { *ret.cast::<i32>() = s2_body(arg(args, 0), arg(args, 1)) }
}

unsafe extern "C" fn s3_handler(
    _cif: *const c_void,
    ret: *mut c_void,
    args: *const *mut c_void,
    _ud: *mut c_void,
) {
    // SAFETY: the closure is double(double x4).
    unsafe { *ret.cast::<f64>() = s3_body(arg(args, 0), arg(args, 1), arg(args, 2), arg(args, 3)) }
}

unsafe extern "C" fn s5_handler(
    _cif: *const c_void,
    ret: *mut c_void,
    args: *const *mut c_void,
    _ud: *mut c_void,
) {
    // SAFETY: the closure has S5's signature.
    unsafe {
        *ret.cast::<f64>() = s5_body(
            arg(args, 0),
            arg(args, 1),
            arg(args, 2),
            arg(args, 3),
            arg(args, 4),
            arg(args, 5),
            arg(args, 6),
            arg(args, 7),
        )
    }
}

/// The types of one closure signature, both libraries' views.
fn types(ret: T, args: &[T]) -> Result<(Type, Vec<Type>), CliError> {
    Ok((
        ret.jitffi()?,
        args.iter().map(|t| t.jitffi()).collect::<Result<_, _>>()?,
    ))
}

fn libffi_cif(ffi: &mut Libffi, name: &str, ret: T, args: &[T]) -> Result<Box<FfiCif>, CliError> {
    let r = ret.libffi(ffi);
    let a: Vec<_> = args.iter().map(|t| t.libffi(ffi)).collect();
    ffi.cif(r, &a)
        .map_err(|e| check_failed(format!("{name}: libffi: {e}")))
}

/// Times the closures the filter selects, and the closure life.
pub fn run(
    runner: &Runner,
    mut ffi: Option<&mut Libffi>,
) -> Result<(Vec<ClosureRow>, Option<LifeRow>), CliError> {
    let mut rows = Vec::new();
    const S5_ARGS: [T; 8] = [
        T::I32,
        T::F64,
        T::I64,
        T::F32,
        T::Ptr,
        T::I8,
        T::U16,
        T::F64,
    ];
    if runner.selected(NAMES[0]) {
        let (ret, args) = types(T::I32, &[T::I32; 2])?;
        let cif = Cif::new(ret, &args)?;
        let rust =
            |cif: &Cif| Closure::new(cif, |args, ret| ret.set(s2_body(args.get(0), args.get(1))));
        let mut lcif = match ffi.as_deref_mut() {
            Some(f) => Some(libffi_cif(f, "S2", T::I32, &[T::I32; 2])?),
            None => None,
        };
        rows.push(closure_case::<S2>(
            runner,
            "S2",
            SIGNATURES[1],
            &cif,
            s2_handler,
            rust,
            ffi.as_deref(),
            lcif.as_deref_mut(),
            s2_direct,
            |f| f(black_box(40), black_box(2)) as f64,
        )?);
        runner.case_done();
    }
    if runner.selected(NAMES[1]) {
        let (ret, args) = types(T::F64, &[T::F64; 4])?;
        let cif = Cif::new(ret, &args)?;
        let rust = |cif: &Cif| {
            Closure::new(cif, |args, ret| {
                ret.set(s3_body(args.get(0), args.get(1), args.get(2), args.get(3)))
            })
        };
        let mut lcif = match ffi.as_deref_mut() {
            Some(f) => Some(libffi_cif(f, "S3", T::F64, &[T::F64; 4])?),
            None => None,
        };
        rows.push(closure_case::<S3>(
            runner,
            "S3",
            SIGNATURES[2],
            &cif,
            s3_handler,
            rust,
            ffi.as_deref(),
            lcif.as_deref_mut(),
            s3_direct,
            |f| {
                f(
                    black_box(F64S[0]),
                    black_box(F64S[1]),
                    black_box(F64S[2]),
                    black_box(F64S[3]),
                )
            },
        )?);
        runner.case_done();
    }
    if runner.selected(NAMES[2]) {
        let (ret, args) = types(T::F64, &S5_ARGS)?;
        let cif = Cif::new(ret, &args)?;
        let rust = |cif: &Cif| {
            Closure::new(cif, |args, ret| {
                ret.set(s5_body(
                    args.get(0),
                    args.get(1),
                    args.get(2),
                    args.get(3),
                    args.get::<*const c_void>(4),
                    args.get(5),
                    args.get(6),
                    args.get(7),
                ))
            })
        };
        let mut lcif = match ffi.as_deref_mut() {
            Some(f) => Some(libffi_cif(f, "S5", T::F64, &S5_ARGS)?),
            None => None,
        };
        rows.push(closure_case::<S5>(
            runner,
            "S5",
            SIGNATURES[4],
            &cif,
            s5_handler,
            rust,
            ffi.as_deref(),
            lcif.as_deref_mut(),
            s5_direct,
            |f| {
                f(
                    black_box(S5.0),
                    black_box(S5.1),
                    black_box(S5.2),
                    black_box(S5.3),
                    black_box(S5_PTR),
                    black_box(S5.5),
                    black_box(S5.6),
                    black_box(S5.7),
                )
            },
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

/// Checks and times one closure signature; `F` is its `extern "C" fn`
/// type and `call` calls an `F` with the case's arguments.
#[allow(clippy::too_many_arguments)]
fn closure_case<F: Copy>(
    runner: &Runner,
    name: &str,
    signature: &str,
    cif: &Cif,
    handler: jitffi::RawHandler,
    rust: impl FnOnce(&Cif) -> jitffi::Result<Closure>,
    ffi: Option<&Libffi>,
    lcif: Option<&mut FfiCif>,
    direct: F,
    call: impl Fn(F) -> f64,
) -> Result<ClosureRow, CliError> {
    // A fixed order (the Rust closure first), so runs compare: which
    // trampoline slot a closure gets moved S3's RawClosure call by ~0.5 ns.
    let rust = rust(cif)?;
    let raw = RawClosure::new(cif, handler, ptr::null_mut())?;
    let lib = match (ffi, lcif) {
        // SAFETY: the cif lives in the caller until after this function,
        // and so outlives the closure.
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
        signature: signature.to_string(),
        direct_ns: round_ns(direct_s.median_ns),
        jitffi_raw_closure_ns: round_ns(raw_s.median_ns),
        jitffi_closure_ns: round_ns(rust_s.median_ns),
        libffi_closure_ns: lib_s.map(|s| round_ns(s.median_ns)),
        min_ns: ClosureMin {
            direct: round_ns(direct_s.min_ns),
            jitffi_raw_closure: round_ns(raw_s.min_ns),
            jitffi_closure: round_ns(rust_s.min_ns),
            libffi_closure: lib_s.map(|s| round_ns(s.min_ns)),
        },
        ratios: ClosureRatios {
            jitffi_raw_closure_over_direct: ratio(raw_s.median_ns, direct_s.median_ns),
            jitffi_closure_over_direct: ratio(rust_s.median_ns, direct_s.median_ns),
            libffi_over_jitffi_raw_closure: lib_s.map(|l| ratio(l.median_ns, raw_s.median_ns)),
        },
    })
}

/// A closure's life for S2: jitffi `RawClosure::new` + drop (the thunk
/// already compiled, as libffi's cif is already prepared) against
/// `ffi_closure_alloc` + `ffi_prep_closure_loc` + `ffi_closure_free`.
fn life(runner: &Runner, ffi: Option<&mut Libffi>) -> Result<LifeRow, CliError> {
    let (ret, args) = types(T::I32, &[T::I32; 2])?;
    let cif = Cif::new(ret, &args)?;
    let check = |what: &str, f: S2| {
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
        let rust = Closure::new(&cif, |args, ret| ret.set(s2_body(args.get(0), args.get(1))))?;
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
        Closure::new(black_box(&cif), |args, ret| {
            ret.set(s2_body(args.get(0), args.get(1)))
        })
        .is_ok()
    });
    let lib_s = match ffi {
        Some(ffi) => {
            let mut lcif = libffi_cif(ffi, "closure life", T::I32, &[T::I32; 2])?;
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
        jitffi_raw_closure_ns: round_ns(raw_s.median_ns),
        jitffi_closure_ns: round_ns(rust_s.median_ns),
        libffi_ns: lib_s.map(|s| round_ns(s.median_ns)),
        min_ns: LifeMin {
            jitffi_raw_closure: round_ns(raw_s.min_ns),
            jitffi_closure: round_ns(rust_s.min_ns),
            libffi: lib_s.map(|s| round_ns(s.min_ns)),
        },
        ratios: LifeRatios {
            libffi_over_jitffi_raw_closure: lib_s.map(|l| ratio(l.median_ns, raw_s.median_ns)),
        },
    })
}
