//! Code generation: a [`CallPlan`] in, position-independent machine code
//! out. One module per instruction set; no ABI knowledge lives here.
//!
//! ```
//! use jitffi::{classify::classify, emit::{compile_call, EntryForm}, Abi, Type};
//! let plan = classify(Abi::SysV64, &Type::i32(), &[Type::i32(), Type::i32()], None).unwrap();
//! let code = compile_call(&plan, EntryForm::Libffi).unwrap();
//! assert!(code.starts_with(&[0xF3, 0x0F, 0x1E, 0xFA])); // endbr64
//! ```

pub mod x64;

use crate::abi::Arch;
use crate::error::{Error, Result};
use crate::plan::CallPlan;

/// Which entry form a call stub has.
///
/// ```
/// use jitffi::{classify::classify, emit::{compile_call, EntryForm}, Abi, Type};
/// let plan = classify(Abi::SysV64, &Type::i32(), &[Type::i32(), Type::i32()], None).unwrap();
/// let libffi = compile_call(&plan, EntryForm::Libffi).unwrap();
/// let packed = compile_call(&plan, EntryForm::Packed).unwrap();
/// // The packed form stores no result, so it needs no frame: a shorter stub.
/// assert!(packed.len() < libffi.len());
/// ```
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
///
/// Published with [`crate::memory::publish`], the bytes are a callable stub:
///
/// ```
/// use jitffi::{classify::classify, emit::{compile_call, EntryForm}, memory, Abi, Type};
/// extern "C" fn sub(a: i64, b: i64) -> i64 { a - b }
/// type Stub = unsafe extern "C" fn(*const u8, *mut u8, *const Buf) -> i64;
/// #[repr(C, align(16))] struct Buf([i64; 2]);
/// let plan = classify(Abi::SysV64, &Type::i64(), &[Type::i64(), Type::i64()], None).unwrap();
/// let code = compile_call(&plan, EntryForm::Packed).unwrap();
/// let stub = memory::publish(&code).unwrap();
/// // SAFETY: `stub` is a packed-form stub for i64(i64, i64), now executable.
/// let stub = unsafe { std::mem::transmute::<*const u8, Stub>(stub) };
/// // SAFETY: `sub` has the stub's signature; the buffer holds both arguments.
/// let r = unsafe { stub(sub as *const u8, std::ptr::null_mut(), &Buf([50, 8])) };
/// assert_eq!(r, 42);
/// ```
pub fn compile_call(plan: &CallPlan, form: EntryForm) -> Result<Vec<u8>> {
    match plan.arch {
        Arch::X86_64 => x64::compile_call(plan, form),
        Arch::Aarch64 => Err(Error::Assembly {
            reason: "no AArch64 emitter in this build yet".into(),
        }),
    }
}

/// Assembles the closure thunk for `plan`: a function with the plan's
/// native signature that expects the closure record (see
/// [`crate::closure::record`]) in `r11` (x86-64), gathers its arguments
/// into an argument-pointer array, calls the record's handler
/// `fun(cif, rvalue, args, user_data)`, and returns the handler's result
/// the way the plan says.
///
/// ```
/// use jitffi::{classify::classify, emit, Abi, Type};
/// let plan = classify(Abi::SysV64, &Type::i32(), &[Type::i32()], None).unwrap();
/// assert!(!emit::compile_closure_thunk(&plan).unwrap().is_empty());
/// ```
pub fn compile_closure_thunk(plan: &CallPlan) -> Result<Vec<u8>> {
    match plan.arch {
        Arch::X86_64 => x64::compile_closure_thunk(plan),
        Arch::Aarch64 => Err(Error::Assembly {
            reason: "no AArch64 emitter in this build yet".into(),
        }),
    }
}
