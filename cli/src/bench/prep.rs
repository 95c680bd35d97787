//! Cif preparation for S5 and S8: jitffi's `Cif::new` of a shape already
//! compiled (a cache hit) against libffi's `ffi_prep_cif`, and jitffi's
//! cold path (classify + emit + publish, no cache) for information.

use std::hint::black_box;

use jitffi::{cache, Abi, Cif};

use super::calls::SIGNATURES;
use super::sysffi::{Libffi, FFI_DEFAULT_ABI, FFI_OK};
use super::types::T;
use super::{check_failed, ratio, round_ns, PrepMin, PrepRatios, PrepRow, Runner};
use crate::error::CliError;

/// The benchmark names.
pub const NAMES: [&str; 2] = ["prep/S5", "prep/S8"];

/// Times the preparations the filter selects.
pub fn run(runner: &Runner, mut ffi: Option<&mut Libffi>) -> Result<Vec<PrepRow>, CliError> {
    let s5 = [
        T::I32,
        T::F64,
        T::I64,
        T::F32,
        T::Ptr,
        T::I8,
        T::U16,
        T::F64,
    ];
    let s8 = [T::I32; 16];
    let cases: [(&str, &str, T, &[T]); 2] = [
        ("S5", SIGNATURES[4], T::F64, &s5),
        ("S8", SIGNATURES[7], T::I32, &s8),
    ];
    let mut rows = Vec::new();
    for (full, (name, signature, ret_t, args_t)) in NAMES.iter().zip(cases) {
        if !runner.selected(full) {
            continue;
        }
        let ret = ret_t.jitffi()?;
        let args = args_t
            .iter()
            .map(|t| t.jitffi())
            .collect::<Result<Vec<_>, _>>()?;
        // Both paths must succeed before they are timed; the first also
        // makes every later `Cif::new` a cache hit.
        Cif::new(&ret, &args)?;
        cache::compile_uncached(Abi::host(), &ret, &args, None)?;
        let warm = runner.time(&format!("prep/{name} jitffi cache hit"), || {
            // Only a bool leaves the timed call (see closures::life).
            Cif::new(black_box(&ret), black_box(&args[..])).is_ok()
        });
        // Every cold compile publishes code that is never freed (as
        // criterion's run does): a few MB for a default run.
        let cold = runner.time(&format!("prep/{name} jitffi cold"), || {
            cache::compile_uncached(Abi::host(), black_box(&ret), black_box(&args[..]), None)
                .is_ok()
        });
        let lib = match ffi.as_deref_mut() {
            Some(ffi) => {
                let r = ret_t.libffi(ffi);
                let mut types: Vec<_> = args_t.iter().map(|t| t.libffi(ffi)).collect();
                let n = types.len() as u32;
                let atypes = types.as_mut_ptr();
                let prep = ffi.prep_cif;
                let mut cif = Libffi::blank_cif();
                // SAFETY: libffi's static types; `cif` and `types` outlive
                // every call.
                let status = unsafe { prep(&mut cif, FFI_DEFAULT_ABI, n, r, atypes) };
                if status != FFI_OK {
                    return Err(check_failed(format!(
                        "prep {name}: ffi_prep_cif returned status {status}"
                    )));
                }
                // SAFETY: as above.
                Some(runner.time(&format!("prep/{name} libffi"), || unsafe {
                    prep(
                        black_box(&mut cif),
                        FFI_DEFAULT_ABI,
                        n,
                        r,
                        black_box(atypes),
                    )
                }))
            }
            None => None,
        };
        rows.push(PrepRow {
            name: name.to_string(),
            signature: signature.to_string(),
            jitffi_cache_hit_ns: round_ns(warm.median_ns),
            jitffi_cold_ns: round_ns(cold.median_ns),
            libffi_ns: lib.map(|s| round_ns(s.median_ns)),
            min_ns: PrepMin {
                jitffi_cache_hit: round_ns(warm.min_ns),
                jitffi_cold: round_ns(cold.min_ns),
                libffi: lib.map(|s| round_ns(s.min_ns)),
            },
            ratios: PrepRatios {
                libffi_over_jitffi_cache_hit: lib.map(|l| ratio(l.median_ns, warm.median_ns)),
            },
        });
        runner.case_done();
    }
    Ok(rows)
}
