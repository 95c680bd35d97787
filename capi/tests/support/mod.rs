//! Shared by the C-level tests: links `libffi.so.8` from the static library
//! cargo built for this test run, and compiles C programs against our
//! headers and library or against the system's.
//!
//! For an AArch64 build tested on another machine under qemu-user, the C
//! compilers are the cross ones (`CC_aarch64_unknown_linux_gnu`, else
//! `aarch64-linux-gnu-gcc`) and programs the kernel cannot execute run
//! under `qemu-aarch64` (`JITFFI_QEMU` overrides it), with the target's
//! system libraries (Debian multiarch).
//!
//! Use from a test file with `mod support;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The crate's directory (`capi/`).
pub fn capi_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The profile directory this test binary was built in
/// (`target/<profile>`): the binary lives in its `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary is in target/<profile>/deps")
        .to_path_buf()
}

/// A scratch directory private to this test binary (by name and process).
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let name = exe.file_stem().unwrap().to_string_lossy().into_owned();
        let root = profile_dir().join("capi-tests");
        remove_stale(&root);
        let dir = root.join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    })
}

/// Removes scratch directories of test processes that have exited.
fn remove_stale(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Runs `cmd`, panicking with its output unless it succeeds.
pub fn checked(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Our `libffi.so.8`, linked once per test binary from the staticlib next
/// to it (`target/<profile>/libjitffi_capi.a`) with the version script,
/// exactly as `build-libffi-so.sh` does.
pub fn libffi_so() -> &'static Path {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        let archive = newest_archive();
        let dir = scratch_dir().join("lib");
        std::fs::create_dir_all(&dir).unwrap();
        let so = dir.join("libffi.so.8");
        let map = capi_dir().join("libffi.map");
        checked(
            Command::new(cc())
                .arg("-shared")
                .arg("-o")
                .arg(&so)
                .arg("-Wl,--whole-archive")
                .arg(&archive)
                .arg("-Wl,--no-whole-archive")
                .arg(format!("-Wl,--version-script={}", map.display()))
                .args([
                    "-Wl,-soname,libffi.so.8",
                    "-Wl,--gc-sections",
                    "-Wl,-z,noexecstack",
                    "-Wl,-z,relro",
                    "-Wl,-z,now",
                    "-Wl,--as-needed",
                    "-lgcc_s",
                    "-lpthread",
                    "-lm",
                    "-ldl",
                    "-lc",
                ]),
        );
        so
    })
}

/// The staticlib of this test run. `cargo test` builds it under `deps/`
/// with a hash in the name and does not copy it up to the profile
/// directory (only `cargo build` does), so the newest of all candidates is
/// the one that matches the code under test.
fn newest_archive() -> PathBuf {
    let profile = profile_dir();
    let mut candidates = vec![profile.join("libjitffi_capi.a")];
    if let Ok(entries) = std::fs::read_dir(profile.join("deps")) {
        candidates.extend(entries.flatten().map(|e| e.path()).filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libjitffi_capi-") && n.ends_with(".a"))
        }));
    }
    candidates
        .into_iter()
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| {
            panic!(
                "no libjitffi_capi.a under {}: cargo builds it with the test run",
                profile.display()
            )
        })
}

/// The system's libffi, for differential runs.
#[cfg(target_arch = "x86_64")]
pub const SYSTEM_LIBFFI: &str = "/usr/lib/x86_64-linux-gnu/libffi.so.8";
/// The system's libffi, for differential runs.
#[cfg(target_arch = "aarch64")]
pub const SYSTEM_LIBFFI: &str = "/usr/lib/aarch64-linux-gnu/libffi.so.8";

/// A compiler for the target: on x86-64 `$<generic>` or `default`; on
/// AArch64 `$<generic>_aarch64_unknown_linux_gnu`, else the cross
/// compiler `aarch64-linux-gnu-<cross>` when it is installed, else as on
/// x86-64.
fn target_compiler(generic: &str, cross: &str, default: &str) -> String {
    if cfg!(target_arch = "aarch64") {
        if let Ok(c) = std::env::var(format!("{generic}_aarch64_unknown_linux_gnu")) {
            return c;
        }
        let name = format!("aarch64-linux-gnu-{cross}");
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(&name).is_file()));
        if found {
            return name;
        }
    }
    std::env::var(generic).unwrap_or_else(|_| default.into())
}

/// The target's C compiler.
pub fn cc() -> String {
    target_compiler("CC", "gcc", "cc")
}

/// The target's C++ compiler.
pub fn cxx_compiler() -> String {
    target_compiler("CXX", "g++", "c++")
}

/// Which libffi a C program is built against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `capi/include` and our `libffi.so.8` (found through an rpath);
    /// `-DJITFFI_OURS` is defined.
    Ours,
    /// The system's `<ffi.h>` and `libffi.so.8`.
    System,
}

/// Compiles C sources (paths relative to `capi/c/`; C++ with `c++` when
/// one of them ends in `.cc`) into an executable
/// named `name` in the scratch directory and returns its path. `extra`
/// goes to the compiler before the sources (e.g. `-no-pie`).
pub fn compile(name: &str, sources: &[&str], flavor: Flavor, extra: &[&str]) -> PathBuf {
    let exe = scratch_dir().join(format!(
        "{name}-{}",
        match flavor {
            Flavor::Ours => "ours",
            Flavor::System => "system",
        }
    ));
    let c_dir = capi_dir().join("c");
    let cxx = sources.iter().any(|s| s.ends_with(".cc"));
    let mut cmd = Command::new(if cxx { cxx_compiler() } else { cc() });
    cmd.args(["-O2", "-g", "-Wall", "-Wextra", "-Werror"])
        .arg(if cxx { "-std=gnu++17" } else { "-std=gnu11" })
        .arg("-Wno-deprecated-declarations")
        .arg("-I")
        .arg(&c_dir)
        .args(extra)
        .arg("-o")
        .arg(&exe);
    if flavor == Flavor::Ours {
        cmd.arg("-DJITFFI_OURS")
            .arg("-I")
            .arg(capi_dir().join("include"));
    }
    for s in sources {
        cmd.arg(c_dir.join(s));
    }
    match flavor {
        Flavor::Ours => {
            let so = libffi_so();
            cmd.arg(so)
                .arg(format!("-Wl,-rpath,{}", so.parent().unwrap().display()));
        }
        Flavor::System => {
            cmd.arg(SYSTEM_LIBFFI);
        }
    }
    cmd.arg("-lm");
    if cxx && cfg!(target_arch = "aarch64") {
        // A cross setup has the target's libstdc++ only in the cross
        // toolchain's tree, not where the target's loader looks. (libgcc_s
        // stays shared: its unwinder is the one our frames register with.)
        cmd.arg("-static-libstdc++");
    }
    checked(&mut cmd);
    exe
}

/// Whether target programs must run under qemu-user: an AArch64 build
/// on a machine of another kind. The machine is asked with `uname -m`, a
/// program of the machine (under qemu-user, this process itself would see
/// the emulated one; and a failed `exec` of a foreign program is not
/// reported as such, the child just exits with 127).
fn under_qemu() -> bool {
    static UNDER: OnceLock<bool> = OnceLock::new();
    *UNDER.get_or_init(|| {
        if !cfg!(target_arch = "aarch64") {
            return false;
        }
        let out = checked(Command::new("uname").arg("-m"));
        String::from_utf8_lossy(&out.stdout).trim() != "aarch64"
    })
}

/// A command that runs the target program `exe`: the program itself, or
/// under `qemu-aarch64` (`$JITFFI_QEMU`) when the machine cannot execute
/// it. qemu-user passes the environment on.
pub fn target_command(exe: &Path) -> Command {
    if under_qemu() {
        let qemu = std::env::var("JITFFI_QEMU").unwrap_or_else(|_| "qemu-aarch64".into());
        let mut cmd = Command::new(qemu);
        cmd.arg(exe);
        cmd
    } else {
        Command::new(exe)
    }
}

/// Runs a test program; returns its stdout, panicking (with its output)
/// if it fails. The environment is cleaned of `LD_LIBRARY_PATH` and
/// `LD_PRELOAD` so the library found is the one the program was linked
/// for.
pub fn run(exe: &Path) -> String {
    let out = checked(
        target_command(exe)
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("LD_PRELOAD"),
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The lines of a program's output that must agree between our library and
/// the system's: everything except lines starting with `ours:` (results
/// only our library gives: version queries, inputs on which libffi 3.4.4
/// aborts or misbehaves).
pub fn shared_lines(output: &str) -> Vec<&str> {
    output.lines().filter(|l| !l.starts_with("ours:")).collect()
}

/// Asserts two outputs agree line by line (on [`shared_lines`]), showing
/// the first difference.
pub fn assert_same(ours: &str, system: &str) {
    let (a, b) = (shared_lines(ours), shared_lines(system));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "line {} differs (ours vs system libffi)", i + 1);
    }
    assert_eq!(
        a.len(),
        b.len(),
        "line counts differ (ours vs system libffi):\nours:\n{ours}\nsystem:\n{system}"
    );
}
