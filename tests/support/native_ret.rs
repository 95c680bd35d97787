//! The packed form returns values in the callee's own registers. Tests read
//! them through `jitffi_capture_packed` (an asm shim in the oracle crate, for
//! x86-64 and AArch64) and rebuild the libffi-form return buffer from the
//! plan, so both forms can be compared byte for byte.
//!
//! Shared by the integration tests and the emitter's unit tests: the
//! including module provides `jit` (the jitffi crate, `jitffi` or `crate`).

use std::ffi::c_void;

use super::jit::plan::{CallPlan, Ext, Loc, RetPass};
use jitffi_oracle::capture::{jitffi_capture_packed, NativeRegs};

/// Calls the packed stub `stub` and stores the result at `rvalue` exactly as
/// the libffi form would (narrow integers widened to 8 bytes; nothing
/// stored when `rvalue` is null).
///
/// # Safety
/// `stub` is the packed stub of `plan`, `f` a function of that signature,
/// `args` the packed argument buffer, and `rvalue` null or a buffer of the
/// libffi form's return size.
pub unsafe fn call_packed_into(
    plan: &CallPlan,
    stub: *const c_void,
    f: *const c_void,
    rvalue: *mut c_void,
    args: *const c_void,
) {
    let mut regs = NativeRegs::default();
    let x87 = match &plan.ret.pass {
        RetPass::Direct(pieces) => pieces
            .iter()
            .filter(|p| matches!(p.loc, Loc::X87(_)))
            .count() as u32,
        _ => 0,
    };
    // The packed form needs a real buffer for a value returned in memory.
    let mut scratch = vec![0u128; plan.ret.ty.size().div_ceil(16) + 1];
    let sret = matches!(plan.ret.pass, RetPass::Indirect { .. });
    let target = if sret && rvalue.is_null() {
        scratch.as_mut_ptr().cast::<c_void>()
    } else {
        rvalue
    };
    // SAFETY: per this function's contract.
    unsafe { jitffi_capture_packed(stub, f, target, args, &mut regs, x87) };
    // x86-64 hands the buffer back in rax; AArch64 does not hand it back.
    if let RetPass::Indirect {
        returned: Some(Loc::Gpr(r)),
        ..
    } = plan.ret.pass
    {
        assert_eq!(
            regs.gpr(r).map(|v| v as usize),
            Some(target as usize),
            "a memory return must hand its buffer back in {}",
            Loc::Gpr(r).name(plan.arch)
        );
    }
    let RetPass::Direct(pieces) = &plan.ret.pass else {
        return;
    };
    if rvalue.is_null() {
        return;
    }
    for p in pieces {
        let reg: Option<&[u8]> = match p.loc {
            Loc::Gpr(r) => regs.gpr.get(usize::from(r)).map(bytes),
            Loc::Vec(v) => regs.vec(v).map(|v| &v[..]),
            // The stub stores the 10-byte extended format, whatever the
            // piece's nominal size.
            #[cfg(target_arch = "x86_64")]
            Loc::X87(0) => Some(&regs.st0[..10]),
            #[cfg(target_arch = "x86_64")]
            Loc::X87(1) => Some(&regs.st1[..10]),
            _ => None,
        };
        let reg = reg.unwrap_or_else(|| panic!("no captured register for {:?}", p.loc));
        let size = (p.size as usize).min(reg.len());
        let mut out = [0u8; 16];
        out[..size].copy_from_slice(&reg[..size]);
        let stored = match p.ext {
            Ext::None => size,
            Ext::Sign | Ext::Zero => {
                let negative = p.ext == Ext::Sign && out[size - 1] & 0x80 != 0;
                out[size..8].fill(if negative { 0xff } else { 0 });
                8
            }
        };
        // SAFETY: `rvalue` holds the return buffer, which covers every
        // piece (and 8 bytes for a widened integer).
        unsafe {
            std::ptr::copy_nonoverlapping(
                out.as_ptr(),
                rvalue.cast::<u8>().add(p.offset as usize),
                stored,
            )
        };
    }
}

fn bytes(v: &u64) -> &[u8] {
    // SAFETY: a u64 is 8 initialised bytes.
    unsafe { std::slice::from_raw_parts((v as *const u64).cast::<u8>(), 8) }
}
