//! Closures through the C ABI: C programs (capi/c/closure*.c) compiled
//! against our `ffi.h` and linked to our `libffi.so.8`, and the same
//! programs compiled against the system's `ffi.h` and libffi, whose output
//! must agree line for line (lines starting `ours:` excepted).
#![cfg(target_os = "linux")]

mod support;

use std::path::PathBuf;
use std::sync::Mutex;

use support::{assert_same, compile, run, Flavor};

/// Programs built so far: (name, flavour, executable).
type Built = Vec<(&'static str, Flavor, PathBuf)>;

/// Builds a program once per test binary and flavour.
fn program(name: &'static str, flavor: Flavor) -> PathBuf {
    static BUILT: Mutex<Built> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, p)) = built.iter().find(|(n, f, _)| *n == name && *f == flavor) {
        return p.clone();
    }
    let exe = compile(name, &[&format!("{name}.c")], flavor, &["-pthread"]);
    built.push((name, flavor, exe.clone()));
    exe
}

/// Runs a program and checks it reported no failed check.
fn run_clean(name: &'static str, flavor: Flavor) -> String {
    let out = run(&program(name, flavor));
    assert!(
        out.lines().any(|l| l == "failures: 0"),
        "{name} ({flavor:?}):\n{out}"
    );
    out
}

/// Counts the lines a program printed for its checks (for the report).
fn count(out: &str, prefix: &str) -> usize {
    out.lines().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn closures_of_every_type_work_with_our_library() {
    let out = run_clean("closure_types", Flavor::Ours);
    for tag in [
        "uint8 ",
        "sint64 ",
        "longdouble ",
        "cldouble ",
        "struct S5 ",
        "struct S9 ",
        "pressure ",
        "variadic9 ",
        "big 70000 ",
        "memfd ",
        "rwx ",
        "raw narrow ",
        "java ",
        "status ",
    ] {
        assert!(count(&out, tag) > 0, "no {tag:?} line:\n{out}");
    }
    // Win64 closures, called through ms_abi pointers: x86-64 only.
    for tag in ["win64 ", "gnuw64 "] {
        assert_eq!(
            count(&out, tag) > 0,
            cfg!(target_arch = "x86_64"),
            "{tag:?} lines:\n{out}"
        );
    }
}

#[test]
fn closures_of_every_type_agree_with_the_system_libffi() {
    let ours = run_clean("closure_types", Flavor::Ours);
    let system = run_clean("closure_types", Flavor::System);
    assert_same(&ours, &system);
}

#[test]
fn churn_and_threads_with_our_library() {
    let out = run_clean("closure_churn", Flavor::Ours);
    assert!(out.contains("ours: churn memory bounded: yes"), "{out}");
    assert_eq!(count(&out, "threads "), 1, "{out}");
}

#[test]
fn churn_and_threads_agree_with_the_system_libffi() {
    let ours = run_clean("closure_churn", Flavor::Ours);
    let system = run_clean("closure_churn", Flavor::System);
    assert_same(&ours, &system);
}

#[test]
fn misuse_refusals_and_wx_of_our_library() {
    let out = run_clean("closure_jitffi", Flavor::Ours);
    for tag in ["wx ", "free ", "refusals ", "ld1 ", "abort ", "reuse "] {
        assert!(count(&out, tag) > 0, "no {tag:?} line:\n{out}");
    }
    assert_eq!(count(&out, "abort "), 3, "{out}");
}
