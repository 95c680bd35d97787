//! Compiles every C and assembly file under `c/` into one static library.
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
}
