//! Closure invocation for S2, S3 and S5 of DESIGN.md: a direct call of an
//! equivalent Rust `extern "C" fn`, a jitffi `RawClosure` with a minimal
//! handler (reads the arguments, writes the result), a jitffi
//! `Closure::new` (Rust handler through `Args`/`Ret`) and a libffi closure
//! with the same minimal handler, all called through a black-boxed code
//! pointer as a typed `extern "C" fn`. Plus a closure's life: jitffi
//! `RawClosure::new` + drop (warm thunk cache) against libffi's
//! `ffi_closure_alloc` + `ffi_prep_closure_loc` + `ffi_closure_free`.
//!
//! `cargo bench --bench closures` (all), `cargo bench --bench closures --
//! S5` (one signature). Quote medians from one run: the machine is shared.

use std::ffi::c_void;
use std::hint::black_box;
use std::ptr;

use criterion::{criterion_group, criterion_main, Criterion};
use jitffi::{Cif, Closure, RawClosure};
use jitffi_oracle::bench_call;
use jitffi_oracle::bench_cases::{Sig, SIGS};
use jitffi_oracle::bench_closures::*;
use jitffi_oracle::closure_handler;
use libffi::raw::{self as ffi, ffi_cif, ffi_closure};

#[path = "../tests/support/bench_util.rs"]
mod bench_util;
use bench_util::{config, jitffi_types, libffi_sig_cif, Group};

// The bodies, the direct calls (a) and the minimal handlers (b), (d) are
// `jitffi_oracle::bench_closures`'s, shared with `jitffi bench`. A handler
// has libffi's handler signature but for pointee types: jitffi's
// RawHandler.

type LibffiHandler = unsafe extern "C" fn(*mut ffi_cif, *mut c_void, *mut *mut c_void, *mut c_void);

fn as_libffi(h: jitffi::RawHandler) -> LibffiHandler {
    // SAFETY: the two types differ only in the pointee types of pointer
    // parameters: the same C ABI.
    unsafe { std::mem::transmute::<jitffi::RawHandler, LibffiHandler>(h) }
}

// (c) Rust closures.

fn s2_rust(cif: &Cif) -> Closure {
    Closure::new(cif, closure_handler!(S2)).expect("jitffi Closure::new")
}

fn s3_rust(cif: &Cif) -> Closure {
    Closure::new(cif, closure_handler!(S3)).expect("jitffi Closure::new")
}

fn s5_rust(cif: &Cif) -> Closure {
    Closure::new(cif, closure_handler!(S5)).expect("jitffi Closure::new")
}

/// A jitffi cif and a prepared libffi cif (host convention) of `sig`.
fn cifs(sig: &Sig) -> (Cif, Box<ffi_cif>) {
    let (ret, args) = jitffi_types(sig);
    let cif = Cif::new(ret, &args).unwrap();
    (cif, libffi_sig_cif(ffi::ffi_abi_FFI_DEFAULT_ABI, sig))
}

// libffi plumbing.

/// A libffi closure; freed on drop.
struct LibffiClosure {
    closure: *mut ffi_closure,
    code: *mut c_void,
}

impl LibffiClosure {
    fn new(cif: &mut ffi_cif, handler: jitffi::RawHandler) -> LibffiClosure {
        let mut code = ptr::null_mut();
        // SAFETY: allocation, checked; the cif outlives the closure (the
        // callers keep it for the whole run).
        unsafe {
            let closure: *mut ffi_closure =
                ffi::ffi_closure_alloc(std::mem::size_of::<ffi_closure>(), &mut code).cast();
            assert!(!closure.is_null(), "ffi_closure_alloc");
            let status = ffi::ffi_prep_closure_loc(
                closure,
                cif,
                Some(as_libffi(handler)),
                ptr::null_mut(),
                code,
            );
            assert_eq!(status, ffi::ffi_status_FFI_OK, "ffi_prep_closure_loc");
            LibffiClosure { closure, code }
        }
    }

    /// The code pointer as a function of type `F`.
    ///
    /// # Safety
    /// `F` is the cif's signature as an `extern "C" fn` type.
    unsafe fn as_fn<F: Copy>(&self) -> F {
        // SAFETY: per the contract; function pointers are one word.
        unsafe { std::mem::transmute_copy::<*mut c_void, F>(&self.code) }
    }
}

impl Drop for LibffiClosure {
    fn drop(&mut self) {
        // SAFETY: allocated by ffi_closure_alloc, freed once.
        unsafe { ffi::ffi_closure_free(self.closure.cast()) };
    }
}

/// The four callees of one signature, as typed function pointers, each
/// checked against the direct call before anything is timed.
struct Variants<F> {
    direct: F,
    raw: F,
    rust: F,
    libffi: F,
}

impl<F: Copy> Variants<F> {
    fn bench(&self, g: &mut Group<'_>, call: impl Fn(F) -> f64) {
        let want = call(self.direct);
        for (name, f) in [
            ("jitffi RawClosure", self.raw),
            ("jitffi Closure::new", self.rust),
            ("libffi closure", self.libffi),
        ] {
            let got = call(f);
            assert!(got == want, "{name} returned {got}, the direct call {want}");
        }
        for (name, f) in [
            ("direct", self.direct),
            ("jitffi RawClosure", self.raw),
            ("jitffi Closure::new", self.rust),
            ("libffi closure", self.libffi),
        ] {
            g.bench_function(name, |b| b.iter(|| call(black_box(f))));
        }
    }
}

fn closures(c: &mut Criterion) {
    // S2 int(int, int)
    {
        let (cif, mut lcif) = cifs(&SIGS[1]);
        let raw = RawClosure::new(&cif, s2_handler, ptr::null_mut()).expect("RawClosure::new");
        let rust = s2_rust(&cif);
        let lib = LibffiClosure::new(&mut lcif, s2_handler);
        // SAFETY: every closure has S2's signature and outlives the run.
        let v: Variants<S2Closure> = unsafe {
            Variants {
                direct: s2_direct,
                raw: raw.as_fn(),
                rust: rust.as_fn(),
                libffi: lib.as_fn(),
            }
        };
        let mut g = c.benchmark_group("closure S2");
        v.bench(&mut g, |f| f(black_box(40), black_box(2)) as f64);
        g.finish();
    }

    // S3 double(double x4)
    {
        let (cif, mut lcif) = cifs(&SIGS[2]);
        let raw = RawClosure::new(&cif, s3_handler, ptr::null_mut()).expect("RawClosure::new");
        let rust = s3_rust(&cif);
        let lib = LibffiClosure::new(&mut lcif, s3_handler);
        // SAFETY: every closure has S3's signature and outlives the run.
        let v: Variants<S3Closure> = unsafe {
            Variants {
                direct: s3_direct,
                raw: raw.as_fn(),
                rust: rust.as_fn(),
                libffi: lib.as_fn(),
            }
        };
        let mut g = c.benchmark_group("closure S3");
        v.bench(&mut g, |f| bench_call!(S3, f));
        g.finish();
    }

    // S5 double(int, double, int64, float, void *, int8, uint16, double)
    {
        let (cif, mut lcif) = cifs(&SIGS[4]);
        let raw = RawClosure::new(&cif, s5_handler, ptr::null_mut()).expect("RawClosure::new");
        let rust = s5_rust(&cif);
        let lib = LibffiClosure::new(&mut lcif, s5_handler);
        // SAFETY: every closure has S5's signature and outlives the run.
        let v: Variants<S5Closure> = unsafe {
            Variants {
                direct: s5_direct,
                raw: raw.as_fn(),
                rust: rust.as_fn(),
                libffi: lib.as_fn(),
            }
        };
        let mut g = c.benchmark_group("closure S5");
        v.bench(&mut g, |f| bench_call!(S5, f));
        g.finish();
    }
}

/// A closure's life: allocate, prepare, free. The jitffi thunk is compiled
/// before timing (a warm cache), as libffi's cif is prepared.
fn lifecycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("closure alloc+prep+free");
    let (cif, mut lcif) = cifs(&SIGS[1]);
    let lcif: *mut ffi_cif = &mut *lcif;

    // Each variant must produce a working closure.
    {
        let raw = RawClosure::new(&cif, s2_handler, ptr::null_mut()).expect("RawClosure::new");
        // SAFETY: S2's signature; the closure is alive.
        let f: S2Closure = unsafe { raw.as_fn() };
        assert_eq!(f(40, 2), 42, "jitffi RawClosure");
        // SAFETY: `lcif` is a prepared S2 cif that outlives the closure.
        let lib = LibffiClosure::new(unsafe { &mut *lcif }, s2_handler);
        // SAFETY: as above.
        let f: S2Closure = unsafe { lib.as_fn() };
        assert_eq!(f(40, 2), 42, "libffi closure");
        let rust = s2_rust(&cif);
        // SAFETY: as above.
        let f: S2Closure = unsafe { rust.as_fn() };
        assert_eq!(f(40, 2), 42, "jitffi Closure::new");
    }

    g.bench_function("jitffi RawClosure::new + drop", |b| {
        b.iter(|| RawClosure::new(black_box(&cif), s2_handler, ptr::null_mut()))
    });
    g.bench_function("libffi alloc + prep_closure_loc + free", |b| {
        // SAFETY: the cif is prepared and outlives every closure; each
        // closure is freed once, right after it is made.
        b.iter(|| unsafe {
            let mut code = ptr::null_mut();
            let closure: *mut ffi_closure =
                ffi::ffi_closure_alloc(std::mem::size_of::<ffi_closure>(), &mut code).cast();
            let status = ffi::ffi_prep_closure_loc(
                closure,
                black_box(lcif),
                Some(as_libffi(s2_handler)),
                ptr::null_mut(),
                code,
            );
            ffi::ffi_closure_free(closure.cast());
            status
        })
    });
    // For reference: the Rust-closure form adds its boxes.
    g.bench_function("jitffi Closure::new + drop", |b| {
        b.iter(|| s2_rust(black_box(&cif)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = closures, lifecycle
}
criterion_main!(benches);
