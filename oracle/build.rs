//! Compiles the C and assembly files of `c/` and of `c/<target arch>/` into
//! one static library, and the C++ files of the same two directories into
//! another.
//!
//! `c/` holds portable C that follows the target's native ABI; `c/x86_64/`
//! and `c/aarch64/` hold what only makes sense on one instruction set
//! (assembly, other conventions such as `ms_abi`, inline asm). The
//! architecture is the target's (`CARGO_CFG_TARGET_ARCH`), not the build
//! host's, so a cross build compiles the right directory; `cc` picks the
//! target's compiler (`CC_<target>` / `CXX_<target>`).
use std::path::{Path, PathBuf};

fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let dirs = [PathBuf::from("c"), Path::new("c").join(&arch)];
    for d in &dirs {
        // New or removed files in either directory must rerun the script.
        println!("cargo:rerun-if-changed={}", d.display());
    }

    let mut build = cc::Build::new();
    build
        .opt_level(2)
        .warnings(true)
        .include("c")
        .flag_if_supported("-fno-strict-aliasing");
    for f in sources(&dirs, &["c", "S"]) {
        build.file(f);
    }
    // Headers are inputs too.
    sources(&dirs, &["h"]);
    build.compile("jitffi_oracle");
    compile_cxx(&dirs);
}

/// The files of `dirs` (not recursing) with one of `exts`, sorted, each
/// registered with cargo as an input.
fn sources(dirs: &[PathBuf], exts: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e))
        })
        .collect();
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    files
}

/// The C++ files (exceptions through generated code) go into a library of
/// their own, built by g++ and linked with libstdc++.
fn compile_cxx(dirs: &[PathBuf]) {
    let files = sources(dirs, &["cpp"]);
    if files.is_empty() {
        return;
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .opt_level(2)
        .warnings(true)
        .include("c")
        .flag("-std=c++17");
    for f in &files {
        build.file(f);
    }
    build.compile("jitffi_oracle_cxx");
}
