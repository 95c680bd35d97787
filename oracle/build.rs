//! Compiles every C and assembly file under `c/` into one static library,
//! and the C++ files into another.
use std::path::Path;

fn main() {
    let mut build = cc::Build::new();
    build
        .opt_level(2)
        .warnings(true)
        .flag_if_supported("-fno-strict-aliasing");
    let mut files: Vec<_> = std::fs::read_dir("c")
        .expect("oracle/c exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("c" | "S")))
        .collect();
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        build.file(f);
    }
    for h in std::fs::read_dir("c").expect("oracle/c exists").flatten() {
        if h.path().extension().and_then(|e| e.to_str()) == Some("h") {
            println!("cargo:rerun-if-changed={}", h.path().display());
        }
    }
    println!("cargo:rerun-if-changed={}", Path::new("c").display());
    build.compile("jitffi_oracle");
    compile_cxx();
}

/// The C++ files (exceptions through generated code) go into a library of
/// their own, built by g++ and linked with libstdc++.
fn compile_cxx() {
    let mut files: Vec<_> = std::fs::read_dir("c")
        .expect("oracle/c exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("cpp"))
        .collect();
    if files.is_empty() {
        return;
    }
    files.sort();
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .opt_level(2)
        .warnings(true)
        .flag("-std=c++17");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        build.file(f);
    }
    build.compile("jitffi_oracle_cxx");
}
