//! The signature language every `jitffi` subcommand takes: C declarations,
//! with a few additions.
//!
//! ```text
//! double(int, struct { float; float }, ...)      variadic, open
//! int(const char *, ..., int, double)            variadic, types given
//! void(*)(long double _Complex)                  a function-pointer type
//! double pow(double x, double y)                 a named prototype
//! win64: long(long, union { int i; float f; })   an ABI prefix
//! ```
//!
//! Parsing yields a [`Signature`] of [`CType`]s, which keep the C-level
//! facts a tool needs (`char *` is a string, parameter names, `long`'s
//! width depends on the data model) and lower to jitffi [`Type`]s with
//! [`Signature::lower`].
//!
//! # Grammar
//!
//! Whitespace is free; `[x]` is optional, `x*` repeats.
//!
//! ```text
//! signature  := [abi ":"] specifiers declarator [";"]
//!               -- the declarator must declare a function or a pointer to one:
//!               --   ret(params)  ret name(params)  ret (*)(params)  ret (*name)(params)
//! abi        := sysv | sysv64 | win64 | gnuw64 | aapcs64 | aarch64
//! params     := "" | "void" | param ("," param)* ["," "..." ("," param)*]
//!             | "..." ("," param)*
//!               -- types after `...` are this call's variadic arguments
//! param      := specifiers declarator        -- `T a[N]` and `T f(...)` decay to pointers
//! declarator := ("*" qualifier*)* direct     -- the name is optional everywhere
//! direct     := [name | "(" declarator ")"] ("(" params ")" | "[" length "]")*
//! specifiers := (qualifier | type-word)+     -- C's combinations, in any order
//! type-word  := void bool _Bool char short int long signed unsigned
//!               float double _Complex complex __int128
//!             | int8_t .. int64_t  uint8_t .. uint64_t  __int128_t __uint128_t
//!             | size_t ssize_t ptrdiff_t intptr_t uintptr_t
//!             | sint8 uint8 .. sint64 uint64 pointer longdouble   (libffi's names)
//!             | (struct | union) [tag] "{" member-decl+ "}"
//!             | (struct | union) tag | NAME     -- opaque: only before `*` (`FILE *`)
//!             | enum tag                        -- an `int`
//! member-decl:= specifiers declarator ("," declarator)* ";"    -- last `;` optional
//! qualifier  := const volatile restrict (ignored), extern static inline (ignored)
//! length     := 1 .. 2^32, decimal or 0x-hex
//! ```
//!
//! Nesting (pointers, arrays, functions, aggregates, parentheses) is
//! limited to [`MAX_NESTING`] levels. Errors give a column, what was
//! expected and what was found; [`ParseError::render`] draws a caret.
//!
//! ```
//! use jitffi::{Abi, Type};
//! use jitffi_cli::sig::{CType, Signature};
//!
//! let sig = Signature::parse("int (*cmp)(const void *a, const void *b)").unwrap();
//! assert_eq!(sig.name.as_deref(), Some("cmp"));
//! assert_eq!(sig.to_string(), "int cmp(void *a, void *b)");
//! let lowered = sig.lower(Abi::SysV64).unwrap();
//! assert_eq!(lowered.args, [Type::pointer(), Type::pointer()]);
//!
//! let err = Signature::parse("double(int, )").unwrap_err();
//! assert_eq!((err.column, err.expected.as_str(), err.found.as_str()), (13, "a type", "`)`"));
//! ```

use std::fmt;

use jitffi::{Abi, Type};

mod display;
mod lexer;
mod lower;
mod parser;

pub use lower::Target;

/// Deepest nesting of pointers, arrays, functions, aggregates and
/// grouping parentheses the parser accepts (as deep as jitffi nests
/// aggregates).
pub const MAX_NESTING: usize = jitffi::types::MAX_DEPTH;

/// Longest array accepted by the parser, `2^32`. (jitffi's own size limit
/// is smaller; lowering reports it.)
pub const MAX_ARRAY_LEN: u64 = 1 << 32;

/// A parsed signature.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// The ABI prefix (`sysv:`, `win64:`, `gnuw64:`, `aapcs64:`), if given.
    pub abi: Option<Abi>,
    /// The function's name, if the text was a named prototype.
    pub name: Option<String>,
    /// The return type.
    pub ret: CType,
    /// The fixed parameters (`(void)` is an empty list).
    pub params: Vec<Param>,
    /// `None`: not variadic. `Some(types)`: a `...` marker followed by the
    /// types of the variadic arguments of one call (empty when the text
    /// ends at `...`).
    pub varargs: Option<Vec<Param>>,
}

/// A parameter or struct/union member: a type and an optional name.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The declared name, if any.
    pub name: Option<String>,
    /// The type.
    pub ty: CType,
}

/// Integer kinds whose width depends on the data model, or is fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntKind {
    /// `char` (signedness is the target's unless spelled out)
    Char,
    /// `short`
    Short,
    /// `int`
    Int,
    /// `long`: 64-bit on LP64 (Linux), 32-bit on LLP64 (Windows)
    Long,
    /// `long long`
    LongLong,
    /// `size_t`, `intptr_t`, `ptrdiff_t` and friends: pointer-sized
    PointerSized,
    /// `__int128`
    Int128,
    /// `intN_t` / `uintN_t`: exactly N bits (8, 16, 32, 64)
    Exact(u8),
}

/// Floating kinds, also the parts of a complex type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatKind {
    /// `float`
    Float,
    /// `double`
    Double,
    /// `long double`
    LongDouble,
}

/// A C type as written.
#[derive(Clone, Debug, PartialEq)]
pub enum CType {
    /// `void` (return type, or pointee of `void *`)
    Void,
    /// `bool` / `_Bool`
    Bool,
    /// An integer type. `signed` is `None` only for plain `char`.
    Int {
        /// Which integer.
        kind: IntKind,
        /// Explicit or implied signedness; `None` for plain `char`.
        signed: Option<bool>,
    },
    /// A real floating type.
    Float(FloatKind),
    /// `_Complex` of a floating type.
    Complex(FloatKind),
    /// A pointer; the pointee is kept (`char *` prints as a string). An
    /// unknown type name before `*` (`FILE *`) is an opaque pointee.
    Pointer(Box<CType>),
    /// An opaque named type, valid only as a pointee.
    Opaque(String),
    /// A function type, valid only as a pointee (`int (*)(int)`).
    Function(Box<Signature>),
    /// `struct [tag] { members }`
    Struct(Vec<Param>),
    /// `union [tag] { members }`
    Union(Vec<Param>),
    /// A member array `T name[N]`.
    Array(Box<CType>, usize),
}

/// Which integer widths a target uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataModel {
    /// Linux and macOS on 64-bit targets: `long` is 64 bits.
    Lp64,
    /// Windows on 64-bit targets: `long` is 32 bits.
    Llp64,
}

impl DataModel {
    /// The data model C compilers use for `abi`.
    pub fn of(abi: Abi) -> DataModel {
        match abi {
            Abi::Win64 | Abi::GnuW64 => DataModel::Llp64,
            Abi::SysV64 | Abi::Aapcs64 => DataModel::Lp64,
        }
    }
}

/// A signature lowered to jitffi types for one ABI.
#[derive(Clone, Debug, PartialEq)]
pub struct Lowered {
    /// The ABI: the prefix's, else the default given to `lower`.
    pub abi: Abi,
    /// The return type.
    pub ret: Type,
    /// Every argument type, fixed then variadic.
    pub args: Vec<Type>,
    /// `Some(n)` for a variadic signature with `n` fixed arguments.
    pub fixed: Option<usize>,
}

/// A syntax error: where, what the parser expected, what it found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based column (in characters) of the offending token.
    pub column: usize,
    /// What would have been valid there (`"a type"`, "`)` or `,`").
    pub expected: String,
    /// What was there (`` `]` ``, `end of input`).
    pub found: String,
}

/// A signature that parsed but cannot be lowered (array of `void`, `void`
/// parameter, a function type by value, bad struct layout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LowerError {
    /// What is wrong, naming the parameter or member.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "column {}: expected {}, found {}",
            self.column, self.expected, self.found
        )
    }
}

impl std::error::Error for ParseError {}

impl fmt::Display for LowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LowerError {}

impl ParseError {
    /// The source line and a caret under the error, with the message:
    ///
    /// ```
    /// use jitffi_cli::sig::Signature;
    /// let src = "double(int, )";
    /// let e = Signature::parse(src).unwrap_err();
    /// assert_eq!(
    ///     e.render(src),
    ///     "  double(int, )\n              ^ expected a type, found `)`"
    /// );
    /// ```
    pub fn render(&self, source: &str) -> String {
        // Columns count characters; any whitespace prints as one space so
        // tabs and newlines keep the caret aligned on one line.
        let line: String = source
            .chars()
            .map(|c| if c.is_whitespace() { ' ' } else { c })
            .collect();
        format!(
            "  {line}\n  {}^ expected {}, found {}",
            " ".repeat(self.column.saturating_sub(1)),
            self.expected,
            self.found
        )
    }
}

impl Signature {
    /// Parses one signature (see the [module docs](self) for the grammar).
    ///
    /// ```
    /// use jitffi::Abi;
    /// use jitffi_cli::sig::{CType, FloatKind, Signature};
    /// let s = Signature::parse("sysv: double pow(double x, double y);").unwrap();
    /// assert_eq!(s.abi, Some(Abi::SysV64));
    /// assert_eq!(s.name.as_deref(), Some("pow"));
    /// assert_eq!(s.ret, CType::Float(FloatKind::Double));
    /// assert_eq!(s.params[1].name.as_deref(), Some("y"));
    /// assert!(Signature::parse("double pow(double x,").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Signature, ParseError> {
        parser::parse(text)
    }

    /// Every parameter: the fixed ones, then the variadic ones.
    ///
    /// ```
    /// use jitffi_cli::sig::Signature;
    /// let s = Signature::parse("int(const char *fmt, ..., int n, double x)").unwrap();
    /// let names: Vec<_> = s.all_params().map(|p| p.name.as_deref().unwrap()).collect();
    /// assert_eq!(names, ["fmt", "n", "x"]);
    /// ```
    pub fn all_params(&self) -> impl Iterator<Item = &Param> {
        self.params.iter().chain(self.varargs.iter().flatten())
    }

    /// `true` when the signature has a `...`.
    ///
    /// ```
    /// use jitffi_cli::sig::Signature;
    /// assert!(Signature::parse("int(const char *, ...)").unwrap().is_variadic());
    /// assert!(!Signature::parse("int(void)").unwrap().is_variadic());
    /// ```
    pub fn is_variadic(&self) -> bool {
        self.varargs.is_some()
    }
}
