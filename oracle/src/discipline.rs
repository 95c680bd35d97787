//! Register and stack discipline probes (`c/discipline.S`).
//!
//! The probes are callees written in assembly, so they see exactly what a
//! call stub left in registers and on the stack. What they observe lands in
//! a per-thread [`ProbeState`].

use std::ffi::c_void;

/// What the probes observed on this thread (layout shared with
/// `discipline.S`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ProbeState {
    /// `(rsp at entry + 8) mod 16` at the last probe call: 0 when the caller
    /// kept the stack aligned.
    pub align: u64,
    /// Calls of `jitffi_probe_align` and `jitffi_probe_regs`.
    pub align_calls: u64,
    saved_rsp: u64,
    /// `rdi, rsi, rdx, rcx, r8, r9, rax` at entry of `jitffi_probe_regs`.
    pub gpr: [u64; 7],
    /// Calls of `jitffi_probe_regs`.
    pub regs_calls: u64,
    x87_status: [u16; 4],
    /// `xmm0`..`xmm7` at entry of `jitffi_probe_regs`.
    pub xmm: [[u8; 16]; 8],
    /// The 16 stack slots above the return address (`rsp+8`, `rsp+16`,
    /// ...) at entry of `jitffi_probe_regs`.
    pub stack: [u64; 16],
    /// Calls of the `jitffi_clobber_*` callees.
    pub clobber_calls: u64,
    /// The arguments the last clobber callee received (doubles as bits).
    pub clobber_args: [u64; 10],
    mxcsr: [u32; 2],
    fpucw: [u16; 4],
}

/// Index of each register in [`ProbeState::gpr`].
pub const RDI: usize = 0;
/// See [`RDI`].
pub const RSI: usize = 1;
/// See [`RDI`].
pub const RDX: usize = 2;
/// See [`RDI`].
pub const RCX: usize = 3;
/// See [`RDI`].
pub const R8: usize = 4;
/// See [`RDI`].
pub const R9: usize = 5;
/// See [`RDI`]; `al` is the low byte.
pub const RAX: usize = 6;

/// Bits of [`call_checked`]'s result.
pub mod clobbered {
    /// `rbx` was not preserved.
    pub const RBX: u32 = 1 << 0;
    /// `rbp` was not preserved.
    pub const RBP: u32 = 1 << 1;
    /// `r12` was not preserved.
    pub const R12: u32 = 1 << 2;
    /// `r13` was not preserved.
    pub const R13: u32 = 1 << 3;
    /// `r14` was not preserved.
    pub const R14: u32 = 1 << 4;
    /// `r15` was not preserved.
    pub const R15: u32 = 1 << 5;
    /// `rsp` differed after the return.
    pub const RSP: u32 = 1 << 6;
    /// The x87 register stack depth changed (a long double left or popped).
    pub const X87_STACK: u32 = 1 << 7;
    /// MXCSR control bits changed.
    pub const MXCSR: u32 = 1 << 8;
    /// The x87 control word changed.
    pub const FPUCW: u32 = 1 << 9;
    /// The stub wrote into its caller's frame, above its return address.
    pub const CALLER_FRAME: u32 = 1 << 10;

    /// Names of the bits set in `mask`, for messages.
    pub fn describe(mask: u32) -> String {
        const NAMES: [&str; 11] = [
            "rbx",
            "rbp",
            "r12",
            "r13",
            "r14",
            "r15",
            "rsp",
            "x87 stack",
            "mxcsr",
            "x87 control word",
            "caller frame",
        ];
        let names: Vec<&str> = NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect();
        if names.is_empty() {
            "nothing".into()
        } else {
            names.join(", ")
        }
    }
}

/// `void stub(void *fn, void *rvalue, void **avalue)`.
pub type RawStub = unsafe extern "C" fn(*const c_void, *mut c_void, *const *const c_void);

extern "C" {
    fn jitffi_probe_state() -> *mut ProbeState;
    /// Records the stack alignment at entry into [`ProbeState::align`];
    /// ignores its arguments and returns `rdi` in `rax`, so it serves as a
    /// callee of any signature without an x87 return.
    pub fn jitffi_probe_align();
    /// Records the argument registers, `xmm0-7` and 16 stack slots, and the
    /// alignment; returns `rdi` in `rax`. Usable as the callee of any
    /// signature without an x87 return.
    pub fn jitffi_probe_regs();
    /// Calls `stub(fn, rvalue, avalue)` with sentinels in `rbx`, `rbp`,
    /// `r12`-`r15` and a canary above the stub's return address; returns a
    /// mask of [`clobbered`] bits (0 when every promise was kept).
    pub fn jitffi_call_checked(
        stub: RawStub,
        func: *const c_void,
        rvalue: *mut c_void,
        avalue: *const *const c_void,
    ) -> u32;
    /// `int64_t (int64_t a0, ..., int64_t a7)`: see [`clobber_callee_expected`].
    /// Trashes every caller-saved register, its stack arguments and the red
    /// zone before returning.
    pub fn jitffi_clobber_callee();
    /// `struct { int64_t q[4]; } (int64_t a0, ..., int64_t a7)` (sret):
    /// returns `{a0 ^ a5, a1 ^ a6, a2 ^ a7, a3 + a4}`; trashes as
    /// [`jitffi_clobber_callee`] (except `rax`, the sret pointer).
    pub fn jitffi_clobber_sret();
    /// `double (double x0, ..., double x9)`: returns the left-to-right sum;
    /// trashes as [`jitffi_clobber_callee`] (except `xmm0`).
    pub fn jitffi_clobber_f64();
}

/// The value `jitffi_clobber_callee` returns for `args`.
pub fn clobber_callee_expected(args: &[i64; 8]) -> i64 {
    let mut r = args[0] as u64;
    for &a in &args[1..] {
        r = r.rotate_left(7) ^ a as u64;
    }
    (r ^ 0x0f1e_2d3c_4b5a_6978) as i64
}

/// A copy of this thread's probe state.
pub fn state() -> ProbeState {
    // SAFETY: the pointer is this thread's TLS block, valid and aligned for
    // the thread's lifetime; `ProbeState` matches its layout.
    unsafe { jitffi_probe_state().read() }
}

/// Zeroes this thread's probe state.
pub fn reset() {
    // SAFETY: as in `state`; all-zero is a valid `ProbeState`.
    unsafe { jitffi_probe_state().write_bytes(0, 1) }
}

/// Safe wrapper of [`jitffi_call_checked`].
///
/// # Safety
/// As for calling `stub(func, rvalue, avalue)` directly.
pub unsafe fn call_checked(
    stub: RawStub,
    func: *const c_void,
    rvalue: *mut c_void,
    avalue: *const *const c_void,
) -> u32 {
    // SAFETY: forwarded to the caller's contract.
    unsafe { jitffi_call_checked(stub, func, rvalue, avalue) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_assembly() {
        assert_eq!(std::mem::offset_of!(ProbeState, gpr), 24);
        assert_eq!(std::mem::offset_of!(ProbeState, regs_calls), 80);
        assert_eq!(std::mem::offset_of!(ProbeState, xmm), 96);
        assert_eq!(std::mem::offset_of!(ProbeState, stack), 224);
        assert_eq!(std::mem::offset_of!(ProbeState, clobber_calls), 352);
        assert_eq!(std::mem::offset_of!(ProbeState, clobber_args), 360);
        assert_eq!(std::mem::offset_of!(ProbeState, mxcsr), 440);
        assert_eq!(std::mem::offset_of!(ProbeState, fpucw), 448);
        assert!(std::mem::size_of::<ProbeState>() <= 512);
    }

    #[test]
    fn probes_work_when_called_directly() {
        reset();
        // SAFETY: the probe ignores its arguments; a Rust call keeps the
        // stack aligned.
        unsafe { jitffi_probe_align() };
        let s = state();
        assert_eq!((s.align, s.align_calls), (0, 1));

        extern "C" fn nothing() {}
        let mut q = [0i64; 4];
        let avalue: [*const c_void; 0] = [];
        // A do-nothing "stub" that calls nothing: every register kept.
        unsafe extern "C" fn stub(f: *const c_void, _r: *mut c_void, _a: *const *const c_void) {
            // SAFETY: `f` is `nothing`.
            unsafe { std::mem::transmute::<*const c_void, extern "C" fn()>(f)() }
        }
        // SAFETY: `stub` calls `nothing`, which takes and returns nothing.
        let mask = unsafe {
            call_checked(
                stub,
                nothing as *const c_void,
                q.as_mut_ptr().cast(),
                avalue.as_ptr(),
            )
        };
        assert_eq!(mask, 0, "{}", clobbered::describe(mask));

        let args = [1i64, -2, 3, -4, 5, -6, 7, i64::MIN];
        type Clob = extern "C" fn(i64, i64, i64, i64, i64, i64, i64, i64) -> i64;
        // SAFETY: the callee has exactly this signature.
        let f: Clob = unsafe { std::mem::transmute(jitffi_clobber_callee as *const c_void) };
        let r = f(
            args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7],
        );
        assert_eq!(r, clobber_callee_expected(&args));
        assert_eq!(state().clobber_args[..8], args.map(|a| a as u64));
    }
}
