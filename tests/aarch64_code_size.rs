//! Code quality of the AArch64 emitter (issue 7): for S1-S8 of DESIGN.md,
//! the instruction count of each generated libffi-form stub and closure
//! thunk against the same hand-written C stub (`oracle/c/bench_stubs.c`)
//! and thunk (`tests/data/aarch64_thunks.c`) compiled by the AArch64 gcc at
//! `-O2` and counted in its `objdump -d`. Target: at most 1.25x.
//!
//! Counts are static (every instruction of the function once; the C has
//! no branches, the stubs only the null-`rvalue` test), deterministic, and
//! need no AArch64 machine: the code is assembled on any host. Needs
//! `aarch64-linux-gnu-gcc` and `aarch64-linux-gnu-objdump` (or a native
//! AArch64 gcc); without them the test says so and passes, unless
//! `JITFFI_REQUIRE_CROSS` is set (`.ci/aarch64` sets it).
//!
//! `cargo test --test aarch64_code_size -- --nocapture` prints the table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use jitffi::classify::classify;
use jitffi::emit::{aarch64, EntryForm};
use jitffi::{Abi, Type};

/// The most instructions we allow per instruction of gcc's.
const TARGET_RATIO: f64 = 1.25;

fn tool(name: &str) -> Option<String> {
    let cross = format!("aarch64-linux-gnu-{name}");
    let native = cfg!(target_arch = "aarch64").then(|| name.to_string());
    [Some(cross), native].into_iter().flatten().find(|t| {
        Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Instructions per function of `src` compiled at -O2, trailing `nop`
/// alignment padding excluded.
fn gcc_counts(gcc: &str, objdump: &str, src: &Path, out: &Path) -> HashMap<String, usize> {
    let status = Command::new(gcc)
        .args(["-O2", "-c", "-o"])
        .arg(out)
        .arg(src)
        .status()
        .expect("run gcc");
    assert!(status.success(), "{gcc} failed on {}", src.display());
    let dump = Command::new(objdump)
        .args(["-d", "--no-show-raw-insn"])
        .arg(out)
        .output()
        .expect("run objdump");
    assert!(dump.status.success());
    let text = String::from_utf8_lossy(&dump.stdout);
    let mut counts = HashMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    let mut flush = |f: Option<(String, Vec<String>)>| {
        if let Some((name, mut insns)) = f {
            while insns.last().is_some_and(|i| i == "nop") {
                insns.pop();
            }
            counts.insert(name, insns.len());
        }
    };
    for line in text.lines() {
        if let Some(name) = line.strip_suffix(">:").and_then(|l| l.split('<').nth(1)) {
            flush(current.take());
            current = Some((name.to_string(), Vec::new()));
        } else if let Some((_, insns)) = current.as_mut() {
            // "  30:\tstp\tx29, x30, [sp, #-64]!"
            let mut cols = line.split('\t');
            if cols.next().is_some_and(|c| c.trim_end().ends_with(':')) {
                if let Some(mnemonic) = cols.next() {
                    insns.push(mnemonic.trim().to_string());
                }
            }
        }
    }
    flush(current);
    counts
}

fn s6() -> Type {
    Type::structure([Type::f64(), Type::f64()]).unwrap()
}

fn s7() -> Type {
    Type::structure([Type::i64(), Type::i64(), Type::i64(), Type::i64()]).unwrap()
}

/// S1-S8: (name, return, arguments).
fn cases() -> Vec<(&'static str, Type, Vec<Type>)> {
    vec![
        ("s1", Type::void(), vec![]),
        ("s2", Type::i32(), vec![Type::i32(), Type::i32()]),
        ("s3", Type::f64(), vec![Type::f64(); 4]),
        ("s4", Type::i64(), vec![Type::i64(); 8]),
        (
            "s5",
            Type::f64(),
            vec![
                Type::i32(),
                Type::f64(),
                Type::i64(),
                Type::f32(),
                Type::pointer(),
                Type::i8(),
                Type::u16(),
                Type::f64(),
            ],
        ),
        ("s6", s6(), vec![s6(), s6()]),
        ("s7", s7(), vec![s7()]),
        ("s8", Type::i32(), vec![Type::i32(); 16]),
    ]
}

#[test]
fn s1_to_s8_stubs_and_thunks_are_within_a_quarter_of_gcc() {
    let (Some(gcc), Some(objdump)) = (tool("gcc"), tool("objdump")) else {
        assert!(
            std::env::var_os("JITFFI_REQUIRE_CROSS").is_none(),
            "JITFFI_REQUIRE_CROSS is set but aarch64-linux-gnu-gcc/objdump are missing"
        );
        eprintln!("no AArch64 gcc/objdump: code-size comparison skipped");
        return;
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("jitffi-a64-size-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stubs = gcc_counts(
        &gcc,
        &objdump,
        &root.join("oracle/c/bench_stubs.c"),
        &dir.join("stubs.o"),
    );
    let thunks = gcc_counts(
        &gcc,
        &objdump,
        &root.join("tests/data/aarch64_thunks.c"),
        &dir.join("thunks.o"),
    );
    let _ = std::fs::remove_dir_all(&dir);

    println!("AArch64 instructions, jitffi / gcc -O2 (ratio):");
    println!("      libffi-form stub      packed stub  closure thunk");
    let mut worst: Vec<String> = Vec::new();
    for (name, ret, args) in cases() {
        let plan = classify(Abi::Aapcs64, &ret, &args, None).unwrap();
        let ours_stub = aarch64::compile_call(&plan, EntryForm::Libffi)
            .unwrap()
            .len()
            / 4;
        let ours_packed = aarch64::compile_call(&plan, EntryForm::Packed)
            .unwrap()
            .len()
            / 4;
        let ours_thunk = aarch64::compile_closure_thunk(&plan).unwrap().len() / 4;
        let c_stub = stubs[&format!("bench_stub_{name}")];
        let c_thunk = thunks[&format!("thunk_{name}")];
        let stub_ratio = ours_stub as f64 / c_stub as f64;
        let thunk_ratio = ours_thunk as f64 / c_thunk as f64;
        println!(
            "{}: {ours_stub:>3} / {c_stub:>3} ({stub_ratio:.2})   {ours_packed:>3}          {ours_thunk:>3} / {c_thunk:>3} ({thunk_ratio:.2})",
            name.to_uppercase()
        );
        for (what, ratio) in [("stub", stub_ratio), ("thunk", thunk_ratio)] {
            if ratio > TARGET_RATIO {
                worst.push(format!("{name} {what}: {ratio:.2}"));
            }
        }
    }
    assert!(
        worst.is_empty(),
        "over {TARGET_RATIO}x gcc: {}",
        worst.join(", ")
    );
}
