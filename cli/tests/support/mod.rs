//! How the integration tests start the `jitffi` binary.

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

/// `jitffi`, started through `$JITFFI_TEST_RUNNER` when that is set (the
/// project's cross runner, e.g. qemu-aarch64, sets it: without binfmt_misc
/// the kernel cannot exec a foreign binary itself), else as assert_cmd
/// starts it (directly, or through `CARGO_TARGET_<triple>_RUNNER`).
/// A runner such as qemu-user runs the binary in its own process, so the
/// child's pid is the binary's.
pub fn jitffi_std() -> Command {
    let runner = std::env::var("JITFFI_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut cmd = Command::new(program);
            cmd.args(words).arg(assert_cmd::cargo::cargo_bin("jitffi"));
            cmd
        }
        None => Command::cargo_bin("jitffi").expect("the jitffi binary is built"),
    }
}

/// [`jitffi_std`] as an assert_cmd command.
#[allow(dead_code)] // not every test file uses both
pub fn jitffi() -> assert_cmd::Command {
    assert_cmd::Command::from_std(jitffi_std())
}
