//! The Microsoft x64 oracles of `c/win64.c`: functions gcc compiled with
//! `__attribute__((ms_abi))` that record every argument they receive, gcc's
//! callers of them, and assembly probes of the convention's register
//! discipline.
//!
//! The cases and records have the shapes of [`crate::oracles`] (a
//! [`Case`]'s `func` is an ms_abi function; `direct` and `call` are host
//! functions that call with gcc's ms_abi code), but a record of their own:
//! [`reset`] and [`record`] here see only the Win64 oracles. Per thread, so
//! tests may run in parallel.

use std::ffi::{c_char, c_int, c_void, CStr};

pub use crate::oracles::{CallFn, Case, DirectFn, Record, MAX_ARGS, SLOT};

#[repr(C)]
struct RawCase {
    name: *const c_char,
    func: *const c_void,
    direct: DirectFn,
    call: CallFn,
}

extern "C" {
    static win64_cases: RawCase;
    static win64_case_count: usize;
    fn win64_reset();
    fn win64_arg_count() -> c_int;
    fn win64_call_count() -> u64;
    fn win64_arg_bytes(i: c_int, size: *mut usize) -> *const u8;
}

/// Every case of the Win64 table.
pub fn cases() -> Vec<Case> {
    // SAFETY: `win64_cases` is a constant array of `win64_case_count`
    // entries with the layout of `RawCase`; names are static C strings.
    unsafe {
        let raw = std::slice::from_raw_parts(&raw const win64_cases, win64_case_count);
        raw.iter()
            .map(|c| Case {
                name: CStr::from_ptr(c.name).to_str().unwrap_or("<non-utf8>"),
                func: c.func,
                direct: c.direct,
                call: c.call,
            })
            .collect()
    }
}

/// The case called `name`.
pub fn case(name: &str) -> Option<Case> {
    cases().into_iter().find(|c| c.name == name)
}

/// Poisons this thread's Win64 record.
pub fn reset() {
    // SAFETY: touches only the calling thread's record.
    unsafe { win64_reset() }
}

/// A copy of this thread's Win64 record.
pub fn record() -> Record {
    // SAFETY: these are the accessors of the Win64 oracles' record.
    unsafe { crate::oracles::read_record(win64_arg_count, win64_call_count, win64_arg_bytes) }
}

/// A Microsoft x64 call made by [`call_checked`]: register and stack
/// argument words in, result registers out.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Win64Call {
    /// The ms_abi function to call.
    pub func: usize,
    /// `rcx`, `rdx`, `r8`, `r9`.
    pub gpr: [u64; 4],
    /// Low 8 bytes of `xmm0`..`xmm3`.
    pub xmm: [u64; 4],
    /// The stack argument words, from `rsp + 32` at the call.
    pub stack: [u64; 8],
    /// `rax` after the call.
    pub rax: u64,
    /// `xmm0` after the call.
    pub xmm0: [u8; 16],
}

/// Bits of [`call_checked`]'s result: which callee-saved register of the
/// Microsoft convention did not survive the call.
pub mod kept {
    /// Names of the bits set in `mask`, for messages.
    pub fn describe(mask: u32) -> String {
        const NAMES: [&str; 19] = [
            "rbx", "rbp", "rsi", "rdi", "r12", "r13", "r14", "r15", "xmm6", "xmm7", "xmm8", "xmm9",
            "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "rsp",
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

/// What a clobber callee saw (layout shared with `c/win64.c`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClobberState {
    /// Calls since the state was zeroed.
    pub calls: u64,
    /// `(rsp at entry + 8) mod 16`: 0 when the caller kept the stack
    /// aligned.
    pub align: u64,
    /// The arguments as 8-byte words, the state pointer first (doubles as
    /// bits).
    pub args: [u64; 8],
}

extern "C" {
    fn win64_call_checked(call: *mut Win64Call) -> u32;
    /// ms_abi `int64_t (ClobberState *s, int64_t a1, ..., int64_t a5)`:
    /// returns [`clobber_expected`], then trashes every register a Win64
    /// callee may, the shadow area and its stack arguments.
    pub fn win64_clobber();
    /// ms_abi `double (ClobberState *s, double x1, ..., double x5)`:
    /// returns the left-to-right sum; trashes as [`win64_clobber`].
    pub fn win64_clobber_f64();
    /// ms_abi `struct { int64_t q[3]; } (ClobberState *s, int64_t a1,
    /// int64_t a2, int64_t a3)`, returned through a hidden pointer (so `a3`
    /// is the only stack word): `{a1 ^ a3, a2 - a3, a1 + a2}`; trashes as
    /// [`win64_clobber`].
    pub fn win64_clobber_sret();
}

/// What [`win64_clobber`] returns for `a1..a5`.
pub fn clobber_expected(a: &[i64; 5]) -> i64 {
    let mut r = a[0] as u64;
    for &x in &a[1..] {
        r = r.rotate_left(9) ^ x as u64;
    }
    r as i64
}

/// Calls `call.func` with the Microsoft convention, sentinels in every
/// register it makes callee-saved; returns the mask of those that changed
/// (see [`kept::describe`]).
///
/// # Safety
/// `call.func` must be an ms_abi function whose arguments are exactly the
/// given register and stack words (at most 4 + 8 of them), returning in
/// `rax`/`xmm0` or through a pointer passed in the words.
pub unsafe fn call_checked(call: &mut Win64Call) -> u32 {
    // SAFETY: forwarded to the caller's contract; the assembly reads and
    // writes only `*call`.
    unsafe { win64_call_checked(call) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_record() {
        assert!(cases().len() >= 40);
        let c = case("w64_i32").expect("w64_i32 in the table");
        let (a, b) = (-5i32, 0x7fff_0000i32);
        let avalue = [
            (&a as *const i32).cast::<c_void>(),
            (&b as *const i32).cast(),
        ];
        let (mut via_direct, mut via_call) = (0u64, 0u64);
        reset();
        // SAFETY: the direct caller reads two int32 and writes 8 bytes.
        unsafe { (c.direct)((&mut via_direct as *mut u64).cast(), avalue.as_ptr()) };
        let want = record();
        assert_eq!(want.calls, 1);
        assert_eq!(
            want.args,
            vec![a.to_le_bytes().to_vec(), b.to_le_bytes().to_vec()]
        );
        assert!((via_direct as i64) < 0, "widened, top bit set");
        reset();
        // SAFETY: as above, with the oracle itself as the callee.
        unsafe { (c.call)(c.func, (&mut via_call as *mut u64).cast(), avalue.as_ptr()) };
        assert_eq!((record(), via_call), (want, via_direct));
        reset();
        let r = record();
        assert_eq!((r.calls, r.count, r.args.len()), (0, -1, 0));
    }

    #[test]
    fn the_checker_calls_and_the_clobber_callees_trash() {
        let mut s = ClobberState::default();
        let a = [1i64, -2, 3, i64::MIN, 0x1234_5678_9abc];
        let mut c = Win64Call {
            func: win64_clobber as *const () as usize,
            gpr: [
                &mut s as *mut ClobberState as u64,
                a[0] as u64,
                a[1] as u64,
                a[2] as u64,
            ],
            ..Win64Call::default()
        };
        c.stack[0] = a[3] as u64;
        c.stack[1] = a[4] as u64;
        // SAFETY: win64_clobber takes the state pointer and five int64.
        let m = unsafe { call_checked(&mut c) };
        assert_eq!(m, 0, "{}", kept::describe(m));
        assert_eq!(c.rax as i64, clobber_expected(&a));
        assert_eq!((s.calls, s.align), (1, 0));
        assert_eq!(s.args[1..6], a.map(|x| x as u64));

        let mut c = Win64Call {
            func: win64_clobber_f64 as *const () as usize,
            gpr: [&mut s as *mut ClobberState as u64, 0, 0, 0],
            xmm: [0, 1.5f64.to_bits(), 2.25f64.to_bits(), (-8.0f64).to_bits()],
            ..Win64Call::default()
        };
        c.stack[0] = 0.5f64.to_bits();
        c.stack[1] = 100.0f64.to_bits();
        // SAFETY: win64_clobber_f64 takes the state pointer and five doubles.
        let m = unsafe { call_checked(&mut c) };
        assert_eq!(m, 0, "{}", kept::describe(m));
        let sum = f64::from_le_bytes(c.xmm0[..8].try_into().unwrap());
        assert_eq!(sum, 1.5 + 2.25 - 8.0 + 0.5 + 100.0);
        assert_eq!(s.calls, 2);

        let mut out = [0i64; 3];
        let mut c = Win64Call {
            func: win64_clobber_sret as *const () as usize,
            gpr: [
                out.as_mut_ptr() as u64,
                &mut s as *mut ClobberState as u64,
                7,
                9,
            ],
            ..Win64Call::default()
        };
        c.stack[0] = 5;
        // SAFETY: win64_clobber_sret takes the result pointer, the state
        // pointer and three int64.
        let m = unsafe { call_checked(&mut c) };
        assert_eq!(m, 0, "{}", kept::describe(m));
        assert_eq!(out, [7 ^ 5, 9 - 5, 16]);
        assert_eq!(c.rax, out.as_ptr() as u64);
    }

    /// The checker notices a callee that breaks the convention: a SysV
    /// function may clobber rsi, rdi and xmm6-15, which Win64 keeps.
    #[test]
    fn the_checker_catches_a_sysv_callee() {
        extern "C" fn sysv_trash() {
            // SAFETY: only clobbers registers the asm block declares.
            unsafe {
                std::arch::asm!(
                    "xor esi, esi",
                    "xor edi, edi",
                    "pxor xmm6, xmm6",
                    "pxor xmm15, xmm15",
                    out("rsi") _, out("rdi") _, out("xmm6") _, out("xmm15") _,
                )
            };
        }
        let mut c = Win64Call {
            func: sysv_trash as *const () as usize,
            ..Win64Call::default()
        };
        // SAFETY: the callee takes nothing and returns nothing, and keeps
        // the registers the checker relies on (rsp and rbp, SysV-saved).
        let m = unsafe { call_checked(&mut c) };
        assert_eq!(kept::describe(m), "rsi, rdi, xmm6, xmm15");
    }
}
