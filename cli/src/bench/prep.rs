//! Cif preparation for S5 and S8: jitffi's `Cif::new` of a shape already
//! compiled (a cache hit) against libffi's `ffi_prep_cif`, and jitffi's
//! cold path (classify + emit + publish, no cache) for information.

use std::hint::black_box;

use jitffi::{cache, Abi, Cif};

use super::calls::SIGNATURES;
use super::measure::Stats;
use super::sysffi::{Libffi, FFI_DEFAULT_ABI, FFI_OK};
use super::types::{jitffi_types, libffi_types, SIGS};
use super::{check_failed, PrepMin, PrepRatios, PrepRow, Runner};
use crate::error::CliError;

/// The benchmark names.
pub const NAMES: [&str; 2] = ["prep/S5", "prep/S8"];

/// Times the preparations the filter selects.
pub fn run(runner: &Runner, mut ffi: Option<&mut Libffi>) -> Result<Vec<PrepRow>, CliError> {
    let mut rows = Vec::new();
    // S5 and S8, the cases' indices in S1-S8.
    for (full, index) in NAMES.iter().zip([4, 7]) {
        if !runner.selected(full) {
            continue;
        }
        let sig = &SIGS[index];
        let name = sig.name;
        let (ret, args) = jitffi_types(sig)?;
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
                let (r, mut types) = libffi_types(sig, ffi);
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
            signature: SIGNATURES[index].to_string(),
            jitffi_cache_hit_ns: warm.ns(),
            jitffi_cold_ns: cold.ns(),
            libffi_ns: lib.map(Stats::ns),
            min_ns: PrepMin {
                jitffi_cache_hit: warm.min(),
                jitffi_cold: cold.min(),
                libffi: lib.map(Stats::min),
            },
            ratios: PrepRatios {
                libffi_over_jitffi_cache_hit: lib.map(|l| l.over(warm)),
            },
        });
        runner.case_done();
    }
    Ok(rows)
}
