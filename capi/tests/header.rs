//! Our `include/ffi.h` against the system's (libffi 3.4.4): the same
//! macros with the same values (plus libffi 3.5's version macros), and
//! declarations of every function and object with the same types, in C
//! and in C++.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use support::{
    assert_same, capi_dir, cc, checked, compile, cxx_compiler, run, scratch_dir, Flavor,
};

/// `sizeof(ffi_closure)` on the target.
const CLOSURE_SIZE: usize = if cfg!(target_arch = "aarch64") {
    48
} else {
    56
};

/// `FFI_*`, `ffi_*`, `LIBFFI_*`, `X86*` and `AARCH64` macros the header
/// defines (for the target).
fn macros(ours: bool) -> BTreeMap<String, String> {
    let src = scratch_dir().join("macros.c");
    std::fs::write(&src, "#include <ffi.h>\n").unwrap();
    let mut cmd = Command::new(cc());
    if ours {
        cmd.arg("-I").arg(capi_dir().join("include"));
    }
    let out = checked(cmd.args(["-dM", "-E"]).arg(&src));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("#define "))
        .filter(|l| {
            ["FFI", "ffi", "LIBFFI", "X86", "AARCH64"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| match l.split_once(' ') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

#[test]
fn macros_match_libffi() {
    let mut ours = macros(true);
    let system = macros(false);
    assert!(system.contains_key("FFI_TYPE_COMPLEX"), "{system:?}");
    assert_eq!(
        ours.remove("FFI_VERSION_STRING").as_deref(),
        Some("\"3.4.6-jitffi\"")
    );
    assert_eq!(ours.remove("FFI_VERSION_NUMBER").as_deref(), Some("30406"));
    assert_eq!(ours, system);
}

#[test]
fn declarations_match_libffi() {
    let ours = run(&compile("header_api", &["header_api.c"], Flavor::Ours, &[]));
    let system = run(&compile(
        "header_api",
        &["header_api.c"],
        Flavor::System,
        &[],
    ));
    let sizes = format!("objects: 24, closure: {CLOSURE_SIZE} bytes");
    assert!(ours.contains(&sizes), "{ours}");
    assert_same(&ours, &system);
}

#[test]
fn header_compiles_as_cxx() {
    let src = scratch_dir().join("header.cc");
    std::fs::write(
        &src,
        format!(
            "#include <ffi.h>\nstatic_assert(sizeof(ffi_cif) == 32, \"cif\");\n\
             static_assert(sizeof(ffi_closure) == {CLOSURE_SIZE}, \"closure\");\n\
             int main() {{ ffi_cif c; return ffi_prep_cif(&c, FFI_DEFAULT_ABI, 0, &ffi_type_void, nullptr); }}\n"
        ),
    )
    .unwrap();
    checked(
        Command::new(cxx_compiler())
            .args([
                "-std=c++11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-fsyntax-only",
                "-I",
            ])
            .arg(capi_dir().join("include"))
            .arg(&src),
    );
}
