//! W^X audit: after publishing code every way jitffi can, no mapping of
//! this process is writable and executable at once (`/proc/self/maps`).

#![cfg(target_os = "linux")]

use jitffi::memory::{self, CodeArena, Strategy, MEMFD_NAME};
use jitffi::{Cif, Type};

#[path = "support/maps.rs"]
mod maps;
use maps::{assert_in_rx, audit, Mapping};

#[path = "support/child.rs"]
mod child;

/// A complete `extern "C" fn() -> i32` returning `v`: `mov eax, imm32;
/// ret` on x86-64, `movz w0, lo; movk w0, hi, lsl 16; ret` on AArch64.
fn ret_imm(v: i32) -> Vec<u8> {
    let b = v.to_le_bytes();
    if cfg!(target_arch = "aarch64") {
        let (lo, hi) = (v as u32 & 0xFFFF, v as u32 >> 16);
        [0x5280_0000 | lo << 5, 0x72A0_0000 | hi << 5, 0xD65F_03C0]
            .iter()
            .flat_map(|w: &u32| w.to_le_bytes())
            .collect()
    } else {
        vec![0xB8, b[0], b[1], b[2], b[3], 0xC3]
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn call(p: *const u8) -> i32 {
    // SAFETY: `p` is a published `ret_imm` stub, a complete
    // `extern "C" fn() -> i32`.
    let f = unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> i32>(p) };
    f()
}

fn memfd_lines(all: &[Mapping]) -> Vec<&Mapping> {
    let name = MEMFD_NAME.to_str().expect("ASCII name");
    all.iter().filter(|m| m.line.contains(name)).collect()
}

#[test]
fn global_publish_keeps_wx() {
    let mut ptrs = Vec::new();
    for i in 0..50 {
        ptrs.push(memory::publish(&ret_imm(i)).unwrap() as usize);
    }
    let all = audit();
    for &p in &ptrs {
        assert_in_rx(&all, p);
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    for (i, &p) in ptrs.iter().enumerate() {
        assert_eq!(call(p as *const u8), i as i32);
    }
}

#[test]
fn both_strategies_keep_wx_and_memfd_views_exist() {
    let dm = CodeArena::new(Strategy::DoubleMapped).unwrap();
    let mp = CodeArena::new(Strategy::MprotectFlip).unwrap();
    let mut ptrs = Vec::new();
    for i in 0..20 {
        ptrs.push(dm.publish(&ret_imm(i)).unwrap() as usize);
        ptrs.push(mp.publish(&ret_imm(i)).unwrap() as usize);
    }
    let mut big = vec![0x90u8; 70_000];
    big.extend_from_slice(&ret_imm(7));
    ptrs.push(dm.publish(&big).unwrap() as usize);
    ptrs.push(mp.publish(&big).unwrap() as usize);

    let all = audit();
    for &p in &ptrs {
        assert_in_rx(&all, p);
    }
    let fd = memfd_lines(&all);
    for m in &fd {
        println!("{}", m.line);
    }
    assert!(
        fd.iter().any(|m| m.perms == "r-xs"),
        "no r-xs view of the memfd"
    );
    assert!(
        fd.iter().any(|m| m.perms == "rw-s"),
        "no rw-s view of the memfd"
    );
    // Every memfd mapping is one of the two views, nothing else. Both are
    // MAP_SHARED (memmap2's `map_exec` maps shared), hence `s`, not `p`.
    for m in &fd {
        assert!(
            m.perms == "r-xs" || m.perms == "rw-s",
            "unexpected memfd mapping: {}",
            m.line
        );
    }
    // The double-mapped stubs run from a memfd RX view.
    let dm_stub = ptrs[0];
    assert!(
        fd.iter()
            .any(|m| m.perms == "r-xs" && m.start <= dm_stub && dm_stub < m.end),
        "double-mapped stub {dm_stub:#x} is not in a memfd RX view"
    );
}

/// Needs the classifier and the emitter: fails until they land.
#[test]
fn wx_holds_while_cifs_exist() {
    let cifs = vec![
        Cif::new(Type::void(), &[]).unwrap(),
        Cif::new(Type::i32(), &[Type::i32(), Type::i32()]).unwrap(),
        Cif::new(Type::f64(), &vec![Type::f64(); 4]).unwrap(),
        Cif::new(Type::i64(), &vec![Type::i64(); 8]).unwrap(),
        Cif::new_variadic(Type::i32(), &[Type::pointer()], &[Type::f64(), Type::i32()]).unwrap(),
    ];
    let all = audit();
    for cif in &cifs {
        assert_in_rx(&all, cif.raw_entry() as usize);
        assert_in_rx(&all, cif.packed_entry() as usize);
    }
}

const CHILD: &str = "JITFFI_WX_AUDIT_CHILD";

/// Runs in a child process only (see `force_mprotect_env_selects_fallback`).
#[test]
fn child_forced_fallback() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let arena = memory::global().unwrap();
    assert_eq!(arena.strategy(), Strategy::MprotectFlip);
    let p = memory::publish(&ret_imm(1234)).unwrap();
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    assert_eq!(call(p), 1234);
    // A second probe must not repeat the debug note.
    assert_eq!(
        CodeArena::auto().unwrap().strategy(),
        Strategy::MprotectFlip
    );
    let all = audit();
    assert_in_rx(&all, p as usize);
    let fd = memfd_lines(&all);
    assert!(
        fd.is_empty(),
        "forced fallback still made a memfd: {}",
        fd[0].line
    );
    println!("child ran");
}

fn run_child(debug: bool) -> (String, String) {
    let mut cmd = child::self_command();
    cmd.args([
        "--exact",
        "child_forced_fallback",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, "1")
    .env("JITFFI_FORCE_MPROTECT", "1");
    if debug {
        cmd.env("JITFFI_DEBUG", "1");
    } else {
        cmd.env_remove("JITFFI_DEBUG");
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("child ran"),
        "child test did not run:\n{stdout}"
    );
    (stdout, stderr)
}

#[test]
fn force_mprotect_env_selects_fallback() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let (_, stderr) = run_child(true);
    let notes = stderr.matches("jitffi: ").count();
    assert_eq!(notes, 1, "expected one debug note, got:\n{stderr}");
    assert!(stderr.contains("mprotect"), "{stderr}");
    let (_, stderr) = run_child(false);
    assert!(
        !stderr.contains("jitffi: "),
        "debug note without JITFFI_DEBUG:\n{stderr}"
    );
}
