//! jitffi: foreign function calls compiled to native code.
//!
//! libffi interprets a call description on every call. jitffi compiles each
//! prepared call interface ([`Cif`]) once, into straight-line machine code
//! that moves every argument from where the caller keeps it to the register
//! or stack slot the ABI wants, calls the target, and stores the result.
//! Stubs are cached by signature shape, so every cif of the same shape
//! shares one piece of code.
//!
//! ```
//! use jitffi::{Arg, Cif, Type};
//!
//! extern "C" fn add(a: i32, b: i32) -> i32 { a + b }
//!
//! let cif = Cif::new(Type::i32(), &[Type::i32(), Type::i32()]).unwrap();
//! let r: i32 = unsafe { cif.call(add as *const _, &[Arg::new(&40i32), Arg::new(&2i32)]) }.unwrap();
//! assert_eq!(r, 42);
//! ```
//!
//! The pipeline, one module per stage: [`types`] (C layout) ->
//! [`classify`] (signature to [`plan::CallPlan`]) -> [`emit`] (plan to
//! machine code) -> [`memory`] (W^X code arena) -> [`cache`] -> [`cif`]
//! (outgoing calls) and [`closure`] (incoming calls). [`perfmap`] names
//! the generated code for profilers (`JITFFI_PERF_MAP=1`).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod abi;
pub mod cache;
pub mod cif;
pub mod classify;
pub mod closure;
pub mod emit;
pub mod error;
pub mod memory;
pub mod perfmap;
pub mod plan;
pub mod types;
pub mod unwind;

pub use abi::{Abi, Arch};
pub use cif::{Arg, CType, Cif, PackedEntry, RawEntry, MAX_ARGS};
pub use closure::{Closure, RawClosure, RawHandler};
pub use error::{Error, Position, Result, Status};
pub use plan::CallPlan;
pub use types::{Type, TypeKind};
