//! Code generation: a [`CallPlan`] in, position-independent machine code
//! out. One module per instruction set; no ABI knowledge lives here.

pub mod x64;

use crate::abi::Arch;
use crate::error::{Error, Result};
use crate::plan::CallPlan;

/// Which entry form a call stub has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryForm {
    /// `void stub(void *fn, void *rvalue, void **avalue)`: libffi's
    /// `ffi_call` contract.
    Libffi,
    /// `R stub(void *fn, void *rvalue, const void *args)`: argument `i`
    /// sits at `plan.packed_offsets[i]` of one buffer, and the result comes
    /// back in the callee's own return registers (`rvalue` is only the
    /// buffer of a value returned in memory, and must then be valid).
    Packed,
}

/// Assembles the call stub for `plan` in `form`. The bytes are
/// position-independent and may be copied anywhere executable.
pub fn compile_call(plan: &CallPlan, form: EntryForm) -> Result<Vec<u8>> {
    match plan.arch {
        Arch::X86_64 => x64::compile_call(plan, form),
        Arch::Aarch64 => Err(Error::Assembly {
            reason: "no AArch64 emitter in this build yet".into(),
        }),
    }
}
