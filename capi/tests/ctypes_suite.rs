//! CPython's own ctypes test suite (`python3 -m test test_ctypes`) with our
//! `libffi.so.8` selected by `LD_LIBRARY_PATH`, after checking in the same
//! interpreter that `_ctypes` really mapped ours and not the system's.
//!
//! x86-64 only: the machine's CPython is an x86-64 program, which cannot
//! load an AArch64 `libffi.so.8`.
#![cfg(target_arch = "x86_64")]

mod support;

use std::process::Command;

use support::libffi_so;

/// Runs before the suite, inside the interpreter that runs it: fails
/// unless the libffi mapped into this process is the one in OUR_DIR.
const PRELUDE: &str = r#"
import os, runpy, sys
import _ctypes
ours = os.path.realpath(os.path.join(os.environ["OUR_DIR"], "libffi.so.8"))
mapped = sorted({line.split()[-1] for line in open("/proc/self/maps")
                 if "libffi" in line and line.split()[-1].startswith("/")})
mapped = [os.path.realpath(m) for m in mapped]
if mapped != [ours]:
    sys.exit(f"expected only {ours} mapped, found {mapped}")
print(f"libffi mapped: {mapped[0]}", flush=True)
sys.argv = ["-m test", "test_ctypes"]
runpy.run_module("test", run_name="__main__", alter_sys=True)
"#;

#[test]
fn cpython_ctypes_suite_passes_on_our_libffi() {
    let so = libffi_so();
    let dir = so.parent().unwrap();
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import _ctypes, test.test_ctypes"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        probe.status.success(),
        "{python} lacks _ctypes or its test suite (test.test_ctypes): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let out = Command::new(&python)
        .args(["-c", PRELUDE])
        .env("LD_LIBRARY_PATH", dir)
        .env("OUR_DIR", dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "test_ctypes failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("libffi mapped: "), "{stdout}");
    assert!(
        stdout.contains("Tests result: SUCCESS"),
        "{stdout}\n{stderr}"
    );
    // The totals line, for the log: "Total tests: run=490 skipped=76".
    for line in stdout
        .lines()
        .filter(|l| l.contains("run=") || l.contains("mapped"))
    {
        println!("{line}");
    }
}
