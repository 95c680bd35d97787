//! Capturing a packed-form stub's native return registers: on x86-64 by
//! `oracle/c/x86_64/capture.S`, on AArch64 by the assembly below.

use std::ffi::c_void;

/// The registers a return value can come back in on x86-64, as saved by
/// [`jitffi_capture_packed`].
#[cfg(target_arch = "x86_64")]
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NativeRegs {
    /// General registers by hardware number (caller-saved ones captured).
    pub gpr: [u64; 16],
    /// `xmm0`..`xmm7`, all 16 bytes.
    pub xmm: [[u8; 16]; 8],
    /// `st0`, 10 bytes used.
    pub st0: [u8; 16],
    /// `st1`, 10 bytes used.
    pub st1: [u8; 16],
}

/// The registers a return value can come back in on AArch64, as saved by
/// [`jitffi_capture_packed`].
#[cfg(target_arch = "aarch64")]
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NativeRegs {
    /// `x0`..`x31` by number; `x0`-`x17` captured, the others read as 0.
    pub gpr: [u64; 32],
    /// `v0`..`v7`, all 16 bytes (`q0`..`q7`).
    pub vec: [[u8; 16]; 8],
}

impl NativeRegs {
    /// General register `n` as captured, if there is one of that number.
    pub fn gpr(&self, n: u8) -> Option<u64> {
        self.gpr.get(usize::from(n)).copied()
    }

    /// Vector register `n` (`xmmN` / `vN`), all 16 bytes, if captured.
    pub fn vec(&self, n: u8) -> Option<&[u8; 16]> {
        #[cfg(target_arch = "x86_64")]
        let v = &self.xmm;
        #[cfg(target_arch = "aarch64")]
        let v = &self.vec;
        v.get(usize::from(n))
    }
}

extern "C" {
    /// Calls `stub(f, rvalue, args)` and saves the caller-saved GPRs and the
    /// first eight vector registers into `regs`; on x86-64 also (popping
    /// them) the first `x87_count` x87 registers (ignored elsewhere).
    pub fn jitffi_capture_packed(
        stub: *const c_void,
        f: *const c_void,
        rvalue: *mut c_void,
        args: *const c_void,
        regs: *mut NativeRegs,
        x87_count: u32,
    );
}

// jitffi_capture_packed(stub x0, fn x1, rvalue x2, args x3, regs x4, x87_count w5):
// the stub is called as `stub(fn, rvalue, args)` with regs kept in x19
// (callee-saved), then x0-x17 and q0-q7 are stored at regs.
#[cfg(target_arch = "aarch64")]
std::arch::global_asm!(
    ".text",
    ".globl jitffi_capture_packed",
    ".type jitffi_capture_packed, %function",
    ".p2align 2",
    "jitffi_capture_packed:",
    "stp x29, x30, [sp, #-32]!",
    "mov x29, sp",
    "str x19, [sp, #16]",
    "mov x19, x4",
    "mov x9, x0",
    "mov x0, x1",
    "mov x1, x2",
    "mov x2, x3",
    "blr x9",
    "stp x0, x1, [x19, #0]",
    "stp x2, x3, [x19, #16]",
    "stp x4, x5, [x19, #32]",
    "stp x6, x7, [x19, #48]",
    "stp x8, x9, [x19, #64]",
    "stp x10, x11, [x19, #80]",
    "stp x12, x13, [x19, #96]",
    "stp x14, x15, [x19, #112]",
    "stp x16, x17, [x19, #128]",
    "stp q0, q1, [x19, #256]",
    "stp q2, q3, [x19, #288]",
    "stp q4, q5, [x19, #320]",
    "stp q6, q7, [x19, #352]",
    "ldr x19, [sp, #16]",
    "ldp x29, x30, [sp], #32",
    "ret",
    ".size jitffi_capture_packed, . - jitffi_capture_packed",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn layout_matches_the_assembly() {
        assert_eq!(std::mem::offset_of!(NativeRegs, gpr), 0);
        assert_eq!(std::mem::offset_of!(NativeRegs, xmm), 128);
        assert_eq!(std::mem::offset_of!(NativeRegs, st0), 256);
        assert_eq!(std::mem::offset_of!(NativeRegs, st1), 272);
    }

    #[cfg(target_arch = "aarch64")]
    #[test]
    fn layout_matches_the_assembly() {
        assert_eq!(std::mem::offset_of!(NativeRegs, gpr), 0);
        assert_eq!(std::mem::offset_of!(NativeRegs, vec), 256);
        assert_eq!(std::mem::size_of::<NativeRegs>(), 384);
    }

    /// The shim hands back what a plain function returned in each register.
    #[cfg(target_arch = "aarch64")]
    #[test]
    fn captures_integer_and_vector_returns() {
        #[repr(C)]
        struct Hfa(f64, f64, f64, f64);
        #[repr(C)]
        struct Pair(u64, u64);
        extern "C" fn pair(_: *const c_void, _: *mut c_void, _: *const c_void) -> Pair {
            Pair(0x1111_2222_3333_4444, 0x5555_6666_7777_8888)
        }
        extern "C" fn hfa(_: *const c_void, _: *mut c_void, _: *const c_void) -> Hfa {
            Hfa(1.5, -2.0, 3.25, 4.0)
        }
        let mut r = NativeRegs::default();
        let null = std::ptr::null_mut();
        // SAFETY: `pair` has the stub shape and ignores its arguments; the
        // shim writes only into `r`.
        unsafe { jitffi_capture_packed(pair as *const c_void, null, null, null, &mut r, 0) };
        assert_eq!(
            (r.gpr(0), r.gpr(1)),
            (Some(0x1111_2222_3333_4444), Some(0x5555_6666_7777_8888))
        );
        // SAFETY: as above; an HFA of four doubles returns in d0-d3.
        unsafe { jitffi_capture_packed(hfa as *const c_void, null, null, null, &mut r, 0) };
        let d = |n: u8| f64::from_le_bytes(r.vec(n).unwrap()[..8].try_into().unwrap());
        assert_eq!([d(0), d(1), d(2), d(3)], [1.5, -2.0, 3.25, 4.0]);
    }
}
