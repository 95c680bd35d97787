//! Capturing a packed-form stub's native return registers
//! (`oracle/c/capture.S`).

use std::ffi::c_void;

/// The registers a return value can come back in on x86-64, as saved by
/// [`jitffi_capture_packed`].
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

extern "C" {
    /// Calls `stub(f, rvalue, args)` and saves the caller-saved GPRs, xmm0-7 and
    /// (popping them) the first `x87_count` x87 registers into `regs`.
    pub fn jitffi_capture_packed(
        stub: *const c_void,
        f: *const c_void,
        rvalue: *mut c_void,
        args: *const c_void,
        regs: *mut NativeRegs,
        x87_count: u32,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_assembly() {
        assert_eq!(std::mem::offset_of!(NativeRegs, gpr), 0);
        assert_eq!(std::mem::offset_of!(NativeRegs, xmm), 128);
        assert_eq!(std::mem::offset_of!(NativeRegs, st0), 256);
        assert_eq!(std::mem::offset_of!(NativeRegs, st1), 272);
    }
}
