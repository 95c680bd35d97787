//! Re-running the test binary itself as a child process (to watch it crash,
//! or to run it with another environment).
//!
//! Under qemu-user without binfmt_misc (the AArch64 CI leg) the kernel
//! cannot exec the test binary: the runner (`.cargo/config.toml`) sets
//! `JITFFI_TEST_RUNNER` to the emulator, and the child goes through it too.

#![allow(dead_code)]

use std::process::Command;

/// A command running this test binary (through `$JITFFI_TEST_RUNNER` when
/// set), with no arguments yet.
pub fn self_command() -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    match std::env::var_os("JITFFI_TEST_RUNNER") {
        Some(runner) if !runner.is_empty() => {
            let mut cmd = Command::new(runner);
            cmd.arg(exe);
            cmd
        }
        _ => Command::new(exe),
    }
}

/// Whether this test binary runs under an emulator (qemu-user, whose
/// runner sets `JITFFI_UNDER_QEMU`), whose system call emulation lacks a
/// few things real kernels have: creating a second view of shared
/// anonymous memory with `mremap` is one.
pub fn under_emulator() -> bool {
    std::env::var_os("JITFFI_UNDER_QEMU").is_some()
}
