//! What the differential tests share about running: the environment
//! variables that choose the cases and what is shown, a fresh seed, the
//! failure listing, and the plumbing of the notes printed when a call dies
//! of a signal.
//!
//! Included by path (`#[path = "support/diff_run.rs"] mod diff_run;`) next
//! to `support/randsig.rs`, which the including crate names `randsig`.

#![allow(dead_code)]

use super::randsig::{Source, SplitMix64};

/// The number in environment variable `name` (decimal, or hex after `0x`).
pub fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

/// A seed no earlier run is likely to have used.
pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    SplitMix64::new(t ^ ((std::process::id() as u64) << 32)).next_u64()
}

/// Prints the first `JITFFI_DIFF_SHOW` (default 8) failures, each a case
/// index and its report, and the indices of some of the rest.
pub fn print_failures(failed: &[(u64, String)]) {
    let shown = env_u64("JITFFI_DIFF_SHOW").unwrap_or(8) as usize;
    for (_, text) in failed.iter().take(shown) {
        eprintln!("FAILED {}\n", text.trim_start());
    }
    if failed.len() > shown {
        eprintln!(
            "... and {} more failures (indices {:?})",
            failed.len() - shown,
            failed
                .iter()
                .skip(shown)
                .take(50)
                .map(|f| f.0)
                .collect::<Vec<_>>()
        );
    }
}

/// Writes `bytes` to stderr with write(2), which is async-signal-safe.
pub fn write_stderr(bytes: &[u8]) {
    // SAFETY: write(2) reads `bytes.len()` bytes of a valid buffer.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

/// Makes `handler` run on SIGSEGV, SIGBUS, SIGILL and SIGFPE (installed
/// once per process), on the thread's alternate signal stack where it has
/// one. The handler must call async-signal-safe functions only; when it
/// returns, the default action is back (`SA_RESETHAND`), the faulting
/// instruction runs again and the process dies of the signal.
pub fn on_fatal_signals(handler: extern "C" fn(libc::c_int)) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE] {
            // SAFETY: a zeroed sigaction with a plain handler is valid; the
            // handler's contract is the caller's.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = handler as usize;
                sa.sa_flags = libc::SA_RESETHAND | libc::SA_NODEFER | libc::SA_ONSTACK;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    });
}
