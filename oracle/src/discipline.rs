//! Register and stack discipline probes (`c/x86_64/discipline.S`,
//! `c/aarch64/discipline.S`).
//!
//! The probes are callees written in assembly, so they see exactly what a
//! call stub left in registers and on the stack. What they observe lands in
//! a per-thread [`ProbeState`], whose layout (like the [`clobbered`] bits)
//! is the instruction set's own; the functions have the same names and
//! roles on both.

use std::ffi::c_void;

/// What the probes observed on this thread (layout shared with
/// `discipline.S`).
#[cfg(target_arch = "x86_64")]
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
#[cfg(target_arch = "x86_64")]
pub const RDI: usize = 0;
/// See [`RDI`].
#[cfg(target_arch = "x86_64")]
pub const RSI: usize = 1;
/// See [`RDI`].
#[cfg(target_arch = "x86_64")]
pub const RDX: usize = 2;
/// See [`RDI`].
#[cfg(target_arch = "x86_64")]
pub const RCX: usize = 3;
/// See [`RDI`].
#[cfg(target_arch = "x86_64")]
pub const R8: usize = 4;
/// See [`RDI`].
#[cfg(target_arch = "x86_64")]
pub const R9: usize = 5;
/// See [`RDI`]; `al` is the low byte.
#[cfg(target_arch = "x86_64")]
pub const RAX: usize = 6;

/// Bits of [`call_checked`]'s result.
#[cfg(target_arch = "x86_64")]
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

/// What the probes observed on this thread (layout shared with
/// `c/aarch64/discipline.S`).
#[cfg(target_arch = "aarch64")]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ProbeState {
    /// `sp mod 16` at the last probe call: 0 when the caller kept the
    /// stack aligned.
    pub align: u64,
    /// Calls of `jitffi_probe_align` and `jitffi_probe_regs`.
    pub align_calls: u64,
    saved_sp: u64,
    /// `x0`..`x8` at entry of `jitffi_probe_regs` (`x8`: the indirect
    /// result address).
    pub gpr: [u64; 9],
    /// Calls of `jitffi_probe_regs`.
    pub regs_calls: u64,
    fpcr: [u32; 2],
    /// `q0`..`q7` at entry of `jitffi_probe_regs`.
    pub vec: [[u8; 16]; 8],
    /// The 16 stack slots from `sp` up at entry of `jitffi_probe_regs`
    /// (the first stack argument is `stack[0]`).
    pub stack: [u64; 16],
    /// Calls of the `jitffi_clobber_*` callees.
    pub clobber_calls: u64,
    /// The arguments the last clobber callee received (doubles as bits).
    pub clobber_args: [u64; 12],
}

/// Bits of [`call_checked`]'s result.
#[cfg(target_arch = "aarch64")]
pub mod clobbered {
    /// `x19 + n` (`n` in 0..=9) was not preserved.
    pub const fn x(n: u32) -> u32 {
        1 << n
    }
    /// `x19` was not preserved.
    pub const X19: u32 = x(0);
    /// `x22` was not preserved.
    pub const X22: u32 = x(3);
    /// `x28` was not preserved.
    pub const X28: u32 = x(9);
    /// The frame pointer `x29` was not preserved.
    pub const X29: u32 = 1 << 10;
    /// `sp` differed after the return.
    pub const SP: u32 = 1 << 11;
    /// The low 64 bits of `v8 + n` (`n` in 0..=7) were not preserved.
    pub const fn d(n: u32) -> u32 {
        1 << (12 + n)
    }
    /// `d9` was not preserved.
    pub const D9: u32 = d(1);
    /// The floating-point control register changed.
    pub const FPCR: u32 = 1 << 20;
    /// The stub wrote into its caller's frame, above its entry `sp`.
    pub const CALLER_FRAME: u32 = 1 << 21;

    /// Names of the bits set in `mask`, for messages.
    pub fn describe(mask: u32) -> String {
        let names: Vec<String> = (0..22)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| match i {
                0..=10 => format!("x{}", 19 + i),
                11 => "sp".into(),
                12..=19 => format!("d{}", i - 4),
                20 => "fpcr".into(),
                _ => "caller frame".into(),
            })
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
    /// ignores its arguments and returns the first one (x86-64: `rdi` in
    /// `rax`; AArch64: `x0` unchanged), so it serves as a callee of any
    /// signature without an x87 return.
    pub fn jitffi_probe_align();
    /// Records the argument registers (x86-64: `rdi`..`r9`, `rax`,
    /// `xmm0-7`; AArch64: `x0`-`x8`, `q0`-`q7`), 16 stack slots and the
    /// alignment; returns as [`jitffi_probe_align`]. Usable as the callee of
    /// any signature without an x87 return.
    pub fn jitffi_probe_regs();
    /// Calls `stub(fn, rvalue, avalue)` with sentinels in the callee-saved
    /// registers (x86-64: `rbx`, `rbp`, `r12`-`r15`; AArch64: `x19`-`x29`,
    /// `d8`-`d15`) and a canary above the stub's entry stack pointer;
    /// returns a mask of [`clobbered`] bits (0 when every promise was kept).
    pub fn jitffi_call_checked(
        stub: RawStub,
        func: *const c_void,
        rvalue: *mut c_void,
        avalue: *const *const c_void,
    ) -> u32;
    /// `int64_t (int64_t a0, ..., int64_t aN)` (x86-64: 8 arguments,
    /// AArch64: 10): see [`clobber_callee_expected`]. Trashes every
    /// caller-saved register, its stack arguments and the red zone (AArch64:
    /// 128 bytes below `sp`) before returning.
    pub fn jitffi_clobber_callee();
    /// `struct { int64_t q[4]; } (int64_t a0, ..., int64_t aN)` (sret):
    /// returns `{a0 ^ a5, a1 ^ a6, a2 ^ a7, a3 + a4}` (x86-64, 8 arguments)
    /// or `{a0 ^ a5, a1 ^ a6, a2 ^ a7, a3 + a4 + a8 + a9}` (AArch64, 10);
    /// trashes as [`jitffi_clobber_callee`] (except `rax`, the sret pointer
    /// on x86-64).
    pub fn jitffi_clobber_sret();
    /// `double (double x0, ..., double x9)`: returns the left-to-right sum;
    /// trashes as [`jitffi_clobber_callee`] (except the low bits of `xmm0` /
    /// `d0`).
    pub fn jitffi_clobber_f64();
}

#[cfg(target_arch = "aarch64")]
extern "C" {
    /// `struct { double v[4]; } (double x0, ..., double x9)`: returns
    /// `{(x0 + x4) + x8, (x1 + x5) + x9, x2 + x6, x3 + x7}` in `d0`-`d3`;
    /// trashes as [`jitffi_clobber_callee`] (but those four doubles).
    pub fn jitffi_clobber_hfa();
}

/// The value `jitffi_clobber_callee` returns for `args`.
#[cfg(target_arch = "x86_64")]
pub fn clobber_callee_expected(args: &[i64; 8]) -> i64 {
    let mut r = args[0] as u64;
    for &a in &args[1..] {
        r = r.rotate_left(7) ^ a as u64;
    }
    (r ^ 0x0f1e_2d3c_4b5a_6978) as i64
}

/// The value `jitffi_clobber_callee` returns for `args`.
#[cfg(target_arch = "aarch64")]
pub fn clobber_callee_expected(args: &[i64; 10]) -> i64 {
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

#[cfg(all(test, target_arch = "x86_64"))]
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

#[cfg(all(test, target_arch = "aarch64"))]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_assembly() {
        assert_eq!(std::mem::offset_of!(ProbeState, saved_sp), 16);
        assert_eq!(std::mem::offset_of!(ProbeState, gpr), 24);
        assert_eq!(std::mem::offset_of!(ProbeState, regs_calls), 96);
        assert_eq!(std::mem::offset_of!(ProbeState, fpcr), 104);
        assert_eq!(std::mem::offset_of!(ProbeState, vec), 112);
        assert_eq!(std::mem::offset_of!(ProbeState, stack), 240);
        assert_eq!(std::mem::offset_of!(ProbeState, clobber_calls), 368);
        assert_eq!(std::mem::offset_of!(ProbeState, clobber_args), 376);
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
        let avalue: [*const c_void; 0] = [];
        unsafe extern "C" fn stub(f: *const c_void, _r: *mut c_void, _a: *const *const c_void) {
            // SAFETY: `f` is `nothing`.
            unsafe { std::mem::transmute::<*const c_void, extern "C" fn()>(f)() }
        }
        // SAFETY: `stub` calls `nothing`, which takes and returns nothing.
        let mask = unsafe {
            call_checked(
                stub,
                nothing as *const c_void,
                std::ptr::null_mut(),
                avalue.as_ptr(),
            )
        };
        assert_eq!(mask, 0, "{}", clobbered::describe(mask));

        let a = [1i64, -2, 3, -4, 5, -6, 7, i64::MIN, 0x1234, -0x5678];
        type Clob = extern "C" fn(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64) -> i64;
        // SAFETY: the callee has exactly this signature.
        let f: Clob = unsafe { std::mem::transmute(jitffi_clobber_callee as *const c_void) };
        let r = f(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
        assert_eq!(r, clobber_callee_expected(&a));
        assert_eq!(state().clobber_args[..10], a.map(|v| v as u64));

        #[repr(C)]
        struct Q4([i64; 4]);
        type Sret = extern "C" fn(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64) -> Q4;
        // SAFETY: as above (a 32-byte struct is returned through x8).
        let f: Sret = unsafe { std::mem::transmute(jitffi_clobber_sret as *const c_void) };
        let q = f(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
        assert_eq!(
            q.0,
            [
                a[0] ^ a[5],
                a[1] ^ a[6],
                a[2] ^ a[7],
                a[3] + a[4] + a[8] + a[9]
            ]
        );

        let x: [f64; 10] = [0.5, 1.25, -3.0, 4.5, 8.0, -0.125, 6.0, 7.75, 1e3, -2.5];
        type F = extern "C" fn(f64, f64, f64, f64, f64, f64, f64, f64, f64, f64) -> f64;
        // SAFETY: as above.
        let f: F = unsafe { std::mem::transmute(jitffi_clobber_f64 as *const c_void) };
        let r = f(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9]);
        assert_eq!(r, x.iter().skip(1).fold(x[0], |acc, v| acc + v));
        #[repr(C)]
        struct D4([f64; 4]);
        type H = extern "C" fn(f64, f64, f64, f64, f64, f64, f64, f64, f64, f64) -> D4;
        // SAFETY: as above (an HFA of four doubles comes back in d0-d3).
        let f: H = unsafe { std::mem::transmute(jitffi_clobber_hfa as *const c_void) };
        let h = f(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9]);
        assert_eq!(
            h.0,
            [
                x[0] + x[4] + x[8],
                x[1] + x[5] + x[9],
                x[2] + x[6],
                x[3] + x[7]
            ]
        );
    }

    #[test]
    fn probe_regs_sees_arguments_and_stack() {
        reset();
        type P = extern "C" fn(u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, f64) -> u64;
        // SAFETY: the probe reads registers and stack slots only and returns
        // x0 unchanged.
        let p: P = unsafe { std::mem::transmute(jitffi_probe_regs as *const c_void) };
        let r = p(10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 2.5);
        let s = state();
        assert_eq!(r, 10);
        assert_eq!(s.regs_calls, 1);
        assert_eq!(&s.gpr[..8], &[10, 11, 12, 13, 14, 15, 16, 17]);
        assert_eq!(&s.stack[..2], &[18, 19]);
        assert_eq!(&s.vec[0][..8], &2.5f64.to_le_bytes());
        assert_eq!(s.align, 0);
    }
}
