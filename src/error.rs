//! Typed errors for every refusal jitffi makes.
//!
//! Every variant names what was wrong and where (which argument, which
//! field); the C layer maps them onto libffi's `ffi_status` codes through
//! [`Error::status`].
//!
//! ```
//! use jitffi::{Status, Type};
//! let e = Type::structure([]).unwrap_err();
//! assert_eq!(e.to_string(), "empty struct: C requires at least one member");
//! assert_eq!(e.status(), Status::BadTypedef);
//! ```

use std::fmt;

use crate::abi::Abi;

/// Where in a signature a problem was found.
///
/// ```
/// use jitffi::{Cif, Error, Position, Type};
/// let arr = Type::array(Type::i32(), 2).unwrap();
/// let e = Cif::new(Type::void(), &[Type::i32(), arr]).unwrap_err();
/// assert_eq!(e, Error::ArrayByValue { position: Position::Argument(1) });
/// assert_eq!(Position::Return.to_string(), "the return type");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Position {
    /// The return type.
    Return,
    /// Argument number `n` (0-based).
    Argument(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Return => f.write_str("the return type"),
            Position::Argument(i) => write!(f, "argument {i}"),
        }
    }
}

/// The libffi status an error corresponds to (`FFI_BAD_TYPEDEF` etc.).
///
/// ```
/// use jitffi::{Cif, Status, Type};
/// // A well-formed type in a place it may not be: FFI_BAD_ARGTYPE.
/// let e = Cif::new(Type::void(), &[Type::void()]).unwrap_err();
/// assert_eq!(e.status(), Status::BadArgType);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `FFI_BAD_TYPEDEF`: a malformed type description.
    BadTypedef,
    /// `FFI_BAD_ABI`: an ABI this build cannot use.
    BadAbi,
    /// `FFI_BAD_ARGTYPE`: a well-formed type in a place it may not be.
    BadArgType,
}

/// Everything jitffi can refuse, with enough context to find the culprit.
///
/// ```
/// use jitffi::{Cif, Error, Type};
/// let e = Cif::new(Type::void(), &[Type::i32(), Type::void()]).unwrap_err();
/// assert_eq!(e, Error::VoidArgument { index: 1 });
/// assert!(e.to_string().contains("argument 1 is void"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A struct or union with no fields, or an array of length zero.
    EmptyAggregate {
        /// `"struct"`, `"union"` or `"array"`.
        what: &'static str,
    },
    /// `void` used as a struct/union field or array element.
    VoidMember {
        /// `"struct"`, `"union"` or `"array"`.
        what: &'static str,
        /// Index of the offending field (0 for an array element).
        field: usize,
    },
    /// `void` used as an argument type.
    VoidArgument {
        /// The argument's index.
        index: usize,
    },
    /// A C array passed or returned by value (C only allows arrays inside
    /// structs and unions).
    ArrayByValue {
        /// Where the array appeared.
        position: Position,
    },
    /// Aggregates nested deeper than [`crate::types::MAX_DEPTH`].
    NestingTooDeep {
        /// Depth the description would have had.
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// A type larger than [`crate::types::MAX_TYPE_SIZE`] bytes.
    TypeTooLarge {
        /// `"struct"`, `"union"` or `"array"`.
        what: &'static str,
        /// Size in bytes it would have had (saturating).
        size: u64,
        /// The limit.
        max: u64,
    },
    /// More arguments than [`crate::cif::MAX_ARGS`].
    TooManyArguments {
        /// Arguments asked for.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The arguments passed on the stack need more than the supported
    /// outgoing argument area.
    ArgumentAreaTooLarge {
        /// Bytes needed.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// A variadic argument whose type C's default argument promotions
    /// would have changed (`float`, or an integer narrower than `int`).
    VariadicNotPromoted {
        /// The argument's index.
        index: usize,
        /// The offending type, as C spells it.
        ty: String,
        /// The type C would have passed instead.
        promoted: &'static str,
    },
    /// The fixed-argument count of a variadic signature exceeds the
    /// total number of arguments.
    FixedCountOutOfRange {
        /// Fixed arguments asked for.
        fixed: usize,
        /// Total arguments.
        total: usize,
    },
    /// The ABI is not one this build can compile for.
    UnsupportedAbi {
        /// The ABI asked for.
        abi: Abi,
        /// Why.
        reason: &'static str,
    },
    /// A type this ABI cannot pass in the position given.
    UnsupportedType {
        /// Where it appeared.
        position: Position,
        /// Why.
        reason: String,
    },
    /// The typed convenience call was given arguments or a return type that
    /// do not match the cif.
    SignatureMismatch {
        /// What differs.
        reason: String,
    },
    /// Executable memory could not be obtained or published.
    CodeMemory {
        /// The operating system's complaint.
        reason: String,
    },
    /// The code generator could not assemble a stub (a bug: please report).
    Assembly {
        /// The assembler's complaint.
        reason: String,
    },
}

impl Error {
    /// The libffi status this error maps to.
    ///
    /// ```
    /// use jitffi::{Abi, Cif, Status, Type};
    /// // An ABI of another instruction set cannot be called here: FFI_BAD_ABI.
    /// let foreign = if cfg!(target_arch = "x86_64") { Abi::Aapcs64 } else { Abi::SysV64 };
    /// let e = Cif::with_abi(foreign, Type::void(), &[], None).unwrap_err();
    /// assert_eq!(e.status(), Status::BadAbi);
    /// ```
    pub fn status(&self) -> Status {
        match self {
            Error::UnsupportedAbi { .. } => Status::BadAbi,
            Error::VariadicNotPromoted { .. }
            | Error::VoidArgument { .. }
            | Error::ArrayByValue { .. }
            | Error::UnsupportedType { .. }
            | Error::SignatureMismatch { .. } => Status::BadArgType,
            _ => Status::BadTypedef,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EmptyAggregate { what } => {
                write!(f, "empty {what}: C requires at least one member")
            }
            Error::VoidMember { what, field } => {
                write!(f, "{what} member {field} is void, which has no size")
            }
            Error::VoidArgument { index } => write!(
                f,
                "argument {index} is void: void is only allowed as a return type"
            ),
            Error::ArrayByValue { position } => write!(
                f,
                "{position} is an array: C passes arrays by value only inside a struct or union"
            ),
            Error::NestingTooDeep { depth, max } => write!(
                f,
                "aggregate nesting depth {depth} exceeds the limit of {max}"
            ),
            Error::TypeTooLarge { what, size, max } => {
                write!(f, "{what} of {size} bytes exceeds the limit of {max} bytes")
            }
            Error::TooManyArguments { count, max } => {
                write!(f, "{count} arguments exceed the limit of {max}")
            }
            Error::ArgumentAreaTooLarge { bytes, max } => write!(
                f,
                "stack arguments need {bytes} bytes, more than the limit of {max}"
            ),
            Error::VariadicNotPromoted { index, ty, promoted } => write!(
                f,
                "variadic argument {index} has type {ty}, which C promotes to {promoted}; pass {promoted} instead"
            ),
            Error::FixedCountOutOfRange { fixed, total } => write!(
                f,
                "{fixed} fixed arguments requested but the signature has only {total} arguments"
            ),
            Error::UnsupportedAbi { abi, reason } => write!(f, "ABI {abi:?} unsupported: {reason}"),
            Error::UnsupportedType { position, reason } => write!(f, "{position}: {reason}"),
            Error::SignatureMismatch { reason } => write!(f, "signature mismatch: {reason}"),
            Error::CodeMemory { reason } => write!(f, "executable memory: {reason}"),
            Error::Assembly { reason } => write!(f, "code generation failed: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias used throughout jitffi.
///
/// ```
/// use jitffi::Type;
/// fn pair_size() -> jitffi::Result<usize> {
///     Ok(Type::structure([Type::u8(), Type::u32()])?.size())
/// }
/// assert_eq!(pair_size(), Ok(8));
/// ```
pub type Result<T> = std::result::Result<T, Error>;
