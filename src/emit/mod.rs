//! Code generation: a [`CallPlan`] in, position-independent machine code
//! out. One module per instruction set; no ABI knowledge lives here.
//!
//! ```
//! use jitffi::{classify::classify, emit::{compile_call, EntryForm}, Abi, Type};
//! let plan = classify(Abi::SysV64, &Type::i32(), &[Type::i32(), Type::i32()], None).unwrap();
//! let code = compile_call(&plan, EntryForm::Libffi).unwrap();
//! assert!(code.starts_with(&[0xF3, 0x0F, 0x1E, 0xFA])); // endbr64
//! ```

pub mod aarch64;
pub mod x64;

use crate::abi::Arch;
use crate::error::Result;
use crate::plan::{CallPlan, Loc};

/// A change in where the caller's frame is found, from a byte offset of
/// generated code on: the facts an unwinder needs (see [`crate::unwind`]).
///
/// At offset 0 every piece of code is in its ISA's call-entry state (x86-64:
/// the canonical frame address, CFA, is `rsp + 8` and the return address
/// sits at `CFA - 8`); each change holds until a later one overrides it.
/// Registers are [`Loc::Gpr`] / [`Loc::Vec`] by hardware number, as in
/// plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameChange {
    /// The CFA (the stack pointer before the call that entered this code)
    /// is now `reg + offset`.
    Cfa {
        /// A general register.
        reg: Loc,
        /// Bytes added to it.
        offset: i32,
    },
    /// The caller's value of `reg` is saved at `CFA + offset`.
    Saved {
        /// The saved register.
        reg: Loc,
        /// Its slot, relative to the CFA (negative: below it).
        offset: i32,
    },
    /// `reg` holds the caller's value again.
    Restored(Loc),
}

/// A [`FrameChange`] and the code offset it takes effect at: the end of
/// the instruction that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameStep {
    /// Byte offset into the code.
    pub offset: u32,
    /// What changed there.
    pub change: FrameChange,
}

/// Generated code and the description of its frame at every offset.
///
/// Steps are in offset order and the code is laid out so that reading them
/// in order is right at every offset (epilogues come last), which is what
/// an unwind table needs.
///
/// ```
/// use jitffi::{classify::classify, emit::{self, EntryForm, FrameChange}, plan::Loc, Abi, Type};
/// let plan = classify(Abi::SysV64, &Type::i32(), &[Type::i32()], None).unwrap();
/// let code = emit::compile_call_with_unwind(&plan, EntryForm::Libffi).unwrap();
/// // endbr64 (4 bytes), push rbp: from offset 5 on the CFA is rsp + 16.
/// assert_eq!(code.frame[0].offset, 5);
/// assert_eq!(code.frame[0].change, FrameChange::Cfa { reg: Loc::Gpr(4), offset: 16 });
/// assert_eq!(code.bytes, emit::compile_call(&plan, EntryForm::Libffi).unwrap());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code {
    /// Position-independent machine code.
    pub bytes: Vec<u8>,
    /// How its frame changes, in offset order.
    pub frame: Vec<FrameStep>,
}

/// The layout of a Go closure record (libffi's `ffi_go_closure`): what a
/// closure thunk compiled for a plan with a static chain receives in that
/// register. The thunk calls `fun(cif, rvalue, args, record)`: the handler's
/// user data is the record itself.
///
/// ```
/// use jitffi::{classify::classify, emit, plan::Loc, Abi, Type};
/// let mut plan = classify(Abi::SysV64, &Type::i32(), &[Type::i32()], None).unwrap();
/// plan.static_chain = Some(Loc::Gpr(10));
/// let code = emit::compile_closure_thunk(&plan).unwrap();
/// assert!(code.windows(4).any(|w| w == [0x41, 0xFF, 0x52, emit::go_record::FUN as u8])); // call [r10 + 16]
/// ```
pub mod go_record {
    /// The code callers enter (with the record in the static chain
    /// register): the shape's thunk.
    pub const TRAMP: usize = 0;
    /// The handler's first argument.
    pub const CIF: usize = 8;
    /// The handler, `fun(cif, rvalue, args, record)`.
    pub const FUN: usize = 16;
    /// Bytes in a record.
    pub const SIZE: usize = 24;
}

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
    compile_call_with_unwind(plan, form).map(|c| c.bytes)
}

/// [`compile_call`], with the description of the stub's frame that
/// [`crate::unwind`] turns into unwind information.
///
/// ```
/// use jitffi::{classify::classify, emit::{self, EntryForm}, Abi, Type};
/// let plan = classify(Abi::SysV64, &Type::i32(), &[Type::i32(), Type::i32()], None).unwrap();
/// // A tail stub never moves the stack pointer: its frame never changes.
/// assert!(emit::compile_call_with_unwind(&plan, EntryForm::Packed).unwrap().frame.is_empty());
/// ```
pub fn compile_call_with_unwind(plan: &CallPlan, form: EntryForm) -> Result<Code> {
    match plan.arch {
        Arch::X86_64 => x64::compile_call_with_unwind(plan, form),
        Arch::Aarch64 => aarch64::compile_call_with_unwind(plan, form),
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
    compile_closure_thunk_with_unwind(plan).map(|c| c.bytes)
}

/// [`compile_closure_thunk`], with the description of the thunk's frame.
///
/// ```
/// use jitffi::{classify::classify, emit::{self, FrameChange}, plan::Loc, Abi, Type};
/// let plan = classify(Abi::SysV64, &Type::i32(), &[Type::i32()], None).unwrap();
/// let code = emit::compile_closure_thunk_with_unwind(&plan).unwrap();
/// // The last change: `pop rbp` before `ret` brings back the entry state.
/// let last = code.frame[code.frame.len() - 2];
/// assert_eq!(last.change, FrameChange::Cfa { reg: Loc::Gpr(4), offset: 8 });
/// assert_eq!(last.offset as usize, code.bytes.len() - 1);
/// ```
pub fn compile_closure_thunk_with_unwind(plan: &CallPlan) -> Result<Code> {
    match plan.arch {
        Arch::X86_64 => x64::compile_closure_thunk_with_unwind(plan),
        Arch::Aarch64 => aarch64::compile_closure_thunk_with_unwind(plan),
    }
}
