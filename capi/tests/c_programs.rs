//! C programs in `capi/c/` compiled against our `ffi.h` and linked to our
//! `libffi.so.8`: each checks its own results (exit status 0, no `FAIL`
//! line) and, where libffi 3.4.4 can run it, prints the same output as the
//! same source built against the system's `ffi.h` and `libffi.so.8`.
//!
//! On AArch64 the programs are built with the cross compiler and run
//! under qemu-user when the machine is not an AArch64 one (see
//! `support`), against the AArch64 system libffi.

mod support;

use support::{assert_same, compile, run, Flavor};

/// Builds `name` from `sources` both ways, runs both, checks both passed
/// their own checks and agree; returns our output.
fn differential(name: &str, sources: &[&str], extra: &[&str]) -> String {
    let ours = run(&compile(name, sources, Flavor::Ours, extra));
    let system = run(&compile(name, sources, Flavor::System, extra));
    for out in [&ours, &system] {
        assert!(out.ends_with("all checks passed\n"), "{out}");
    }
    assert_same(&ours, &system);
    ours
}

#[test]
fn calls_match_the_system_libffi() {
    let out = differential("calls", &["calls.c"], &[]);
    // The run printed what it checked, including our-only results.
    assert!(out.contains("s8: "), "{out}");
    assert!(out.contains("ours: FFI_TYPE_INT: -31"), "{out}");
}

#[test]
fn every_error_status_matches_the_system_libffi() {
    let out = differential("errors", &["errors.c"], &[]);
    assert!(out.contains("variadic float: FFI_BAD_ARGTYPE"), "{out}");
    // FFI_LAST_ABI is refused.
    let last = if cfg!(target_arch = "aarch64") { 3 } else { 5 };
    let line = format!("prep_cif abi {last}: FFI_BAD_ABI");
    assert!(out.contains(&line), "{out}");
    if cfg!(target_arch = "aarch64") {
        assert!(
            out.contains("ours: prep_cif FFI_WIN64: FFI_BAD_ABI"),
            "{out}"
        );
    }
    assert!(
        out.contains("empty struct (return): FFI_BAD_TYPEDEF"),
        "{out}"
    );
    assert!(
        out.contains("ours: 65 nested structs: FFI_BAD_TYPEDEF"),
        "{out}"
    );
}

#[test]
fn raw_api_matches_the_system_libffi() {
    let out = differential("raw", &["raw.c"], &[]);
    assert!(out.contains("java_raw_call r_float"), "{out}");
}

#[test]
#[cfg(target_arch = "x86_64")]
fn win64_and_gnuw64_match_the_system_libffi() {
    let out = differential("win64", &["win64.c"], &[]);
    assert!(out.contains("gnuw64 ld_fn: 11"), "{out}");
    // libffi 3.4.4 aborts on a long double return under FFI_WIN64; we
    // return it through the hidden pointer, as gcc's ms_abi does.
    assert!(out.contains("ours: win64 ld_fn: 11"), "{out}");
}

#[test]
fn copy_relocated_type_objects_work() {
    let ours = compile(
        "copyreloc",
        &["copyreloc.c"],
        Flavor::Ours,
        &["-no-pie", "-fno-pie"],
    );
    let relocs = support::checked(std::process::Command::new("readelf").arg("-rW").arg(&ours));
    let relocs = String::from_utf8_lossy(&relocs.stdout);
    let copy = if cfg!(target_arch = "aarch64") {
        "R_AARCH64_COPY"
    } else {
        "R_X86_64_COPY"
    };
    for object in [
        "ffi_type_sint32",
        "ffi_type_complex_float",
        "ffi_type_pointer",
    ] {
        assert!(
            relocs
                .lines()
                .any(|l| l.contains(copy) && l.contains(object)),
            "no copy relocation for {object}:\n{relocs}"
        );
    }
    let out = run(&ours);
    assert!(out.ends_with("all checks passed\n"), "{out}");
    let system = run(&compile(
        "copyreloc",
        &["copyreloc.c"],
        Flavor::System,
        &["-no-pie", "-fno-pie"],
    ));
    assert_same(&out, &system);
}

#[test]
fn version_queries_and_header_layouts() {
    let out = run(&compile("version", &["version.c"], Flavor::Ours, &[]));
    assert!(out.contains("ours: version 3.4.6-jitffi (30406)"), "{out}");
    let size = if cfg!(target_arch = "aarch64") {
        48
    } else {
        56
    };
    assert!(out.contains(&format!("ours: closure size {size}")), "{out}");
    assert!(out.ends_with("all checks passed\n"), "{out}");
}

#[test]
fn cxx_exceptions_cross_ffi_call() {
    let out = differential("exceptions", &["exceptions.cc"], &[]);
    assert!(out.contains("ffi_call caught: thrown with 3"), "{out}");
    assert!(out.contains("sret ffi_call caught: 42"), "{out}");
}

#[test]
fn threads_prepare_and_call_concurrently() {
    let out = differential("threads", &["threads.c"], &["-pthread"]);
    assert!(
        out.contains("thread 3: 247 shapes x 3 rounds, 0 bad results"),
        "{out}"
    );
}
