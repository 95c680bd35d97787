//! Lowering: C types as written to jitffi [`Type`]s for one target.

use jitffi::{Abi, Type};

use super::{CType, DataModel, FloatKind, IntKind, LowerError, Lowered, Param, Signature};

/// What lowering needs to know about the target: the integer widths and
/// whether plain `char` is signed.
///
/// ```
/// use jitffi::Abi;
/// use jitffi_cli::sig::{DataModel, Target};
/// let t = Target::of(Abi::Aapcs64);
/// assert_eq!((t.model, t.char_signed), (DataModel::Lp64, false));
/// assert_eq!(Target::of(Abi::Win64).model, DataModel::Llp64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// `long`'s width.
    pub model: DataModel,
    /// Plain `char` is signed (x86-64) or unsigned (AArch64).
    pub char_signed: bool,
}

impl Target {
    /// The target C compilers use for `abi`.
    pub fn of(abi: Abi) -> Target {
        Target {
            model: DataModel::of(abi),
            char_signed: !matches!(abi, Abi::Aapcs64),
        }
    }
}

impl From<Abi> for Target {
    fn from(abi: Abi) -> Target {
        Target::of(abi)
    }
}

impl From<DataModel> for Target {
    /// A data model alone: plain `char` is taken as signed (x86-64).
    fn from(model: DataModel) -> Target {
        Target {
            model,
            char_signed: true,
        }
    }
}

/// A lowering failure on its way out: what is wrong, and the path to it,
/// outermost first, joined as `parameter 2 (`p`), member 1: what`.
struct Fail {
    path: Vec<String>,
    what: String,
}

fn fail(what: impl Into<String>) -> Fail {
    Fail {
        path: Vec::new(),
        what: what.into(),
    }
}

impl Fail {
    /// Puts `place` in front of the path.
    fn within(mut self, place: &str) -> Fail {
        self.path.insert(0, place.to_string());
        self
    }
}

impl From<Fail> for LowerError {
    fn from(f: Fail) -> LowerError {
        let message = if f.path.is_empty() {
            f.what
        } else {
            format!("{}: {}", f.path.join(", "), f.what)
        };
        LowerError { message }
    }
}

/// `"member 2 (`x`)"`, `"parameter 1"`.
fn place(what: &str, index: usize, p: &Param) -> String {
    match &p.name {
        Some(n) => format!("{what} {} (`{n}`)", index + 1),
        None => format!("{what} {}", index + 1),
    }
}

fn jitffi_error(e: jitffi::Error) -> Fail {
    fail(e.to_string())
}

impl CType {
    /// The jitffi type of this C type on `target` (a [`Target`], an
    /// [`Abi`], or a [`DataModel`], which takes plain `char` as signed).
    ///
    /// `void` lowers to [`Type::void`] (fine as a return type); opaque and
    /// function types have no by-value form and are errors. Errors inside
    /// an aggregate name the member path (`member 2 (`x`), member 1: ...`).
    ///
    /// ```
    /// use jitffi::{Abi, Type};
    /// use jitffi_cli::sig::{CType, DataModel, IntKind};
    /// let long = CType::Int { kind: IntKind::Long, signed: Some(true) };
    /// assert_eq!(long.to_type(DataModel::Lp64).unwrap(), Type::i64());
    /// assert_eq!(long.to_type(DataModel::Llp64).unwrap(), Type::i32());
    /// let char_ = CType::Int { kind: IntKind::Char, signed: None };
    /// assert_eq!(char_.to_type(Abi::Aapcs64).unwrap(), Type::u8());
    /// ```
    pub fn to_type(&self, target: impl Into<Target>) -> Result<Type, LowerError> {
        Ok(self.lower(target.into())?)
    }

    fn lower(&self, t: Target) -> Result<Type, Fail> {
        let int = |signed: bool, s: fn() -> Type, u: fn() -> Type| if signed { s() } else { u() };
        Ok(match self {
            CType::Void => Type::void(),
            CType::Bool => Type::u8(),
            CType::Int { kind, signed } => {
                let signed = signed.unwrap_or(*kind != IntKind::Char || t.char_signed);
                match kind {
                    IntKind::Char | IntKind::Exact(8) => int(signed, Type::i8, Type::u8),
                    IntKind::Short | IntKind::Exact(16) => int(signed, Type::i16, Type::u16),
                    IntKind::Int | IntKind::Exact(32) => int(signed, Type::i32, Type::u32),
                    IntKind::Long if t.model == DataModel::Llp64 => {
                        int(signed, Type::i32, Type::u32)
                    }
                    // Every ABI jitffi knows is 64-bit: pointers are 8 bytes.
                    IntKind::Long
                    | IntKind::LongLong
                    | IntKind::PointerSized
                    | IntKind::Exact(64) => int(signed, Type::i64, Type::u64),
                    IntKind::Int128 => int(signed, Type::i128, Type::u128),
                    IntKind::Exact(bits) => {
                        return Err(fail(format!("there is no {bits}-bit integer type")))
                    }
                }
            }
            CType::Float(FloatKind::Float) => Type::f32(),
            CType::Float(FloatKind::Double) => Type::f64(),
            CType::Float(FloatKind::LongDouble) => Type::long_double(),
            CType::Complex(FloatKind::Float) => Type::complex_f32(),
            CType::Complex(FloatKind::Double) => Type::complex_f64(),
            CType::Complex(FloatKind::LongDouble) => Type::complex_long_double(),
            CType::Pointer(_) => Type::pointer(),
            CType::Opaque(name) => {
                return Err(fail(format!(
                "`{name}` is an incomplete type: only a pointer to it (`{name} *`) can be passed"
            )))
            }
            CType::Function(_) => {
                return Err(fail(
                    "a function type is not a value: pass a function pointer (`(*)`)",
                ))
            }
            CType::Struct(members) => {
                Type::structure(lower_members(members, t)?).map_err(jitffi_error)?
            }
            CType::Union(members) => {
                Type::union(lower_members(members, t)?).map_err(jitffi_error)?
            }
            CType::Array(elem, len) => {
                if **elem == CType::Void {
                    return Err(fail("array of `void`"));
                }
                let elem = elem.lower(t).map_err(|e| e.within("array element"))?;
                Type::array(elem, *len).map_err(jitffi_error)?
            }
        })
    }

    /// `true` for a pointer to `char`, `signed char` or `unsigned char`
    /// (qualifiers are not kept, so `const char *` too): a C string.
    ///
    /// ```
    /// use jitffi_cli::sig::Signature;
    /// let s = Signature::parse("int(const char *, unsigned char *, int8_t *)").unwrap();
    /// let strings: Vec<bool> = s.params.iter().map(|p| p.ty.is_c_string()).collect();
    /// assert_eq!(strings, [true, true, false]);
    /// ```
    pub fn is_c_string(&self) -> bool {
        matches!(self, CType::Pointer(t) if matches!(**t, CType::Int { kind: IntKind::Char, .. }))
    }

    /// The type after C's default argument promotions (what a variadic
    /// argument of this type is actually passed as): `float` becomes
    /// `double`, `bool` and integers narrower than `int` become `int`.
    /// jitffi refuses unpromoted variadic arguments, as libffi does.
    ///
    /// ```
    /// use jitffi_cli::sig::{CType, FloatKind};
    /// assert_eq!(CType::Float(FloatKind::Float).promoted(), CType::Float(FloatKind::Double));
    /// ```
    pub fn promoted(&self) -> CType {
        match self {
            CType::Float(FloatKind::Float) => CType::Float(FloatKind::Double),
            CType::Bool
            | CType::Int {
                kind: IntKind::Char | IntKind::Short | IntKind::Exact(8 | 16),
                ..
            } => CType::Int {
                kind: IntKind::Int,
                signed: Some(true),
            },
            other => other.clone(),
        }
    }
}

fn lower_members(members: &[Param], t: Target) -> Result<Vec<Type>, Fail> {
    members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let where_ = place("member", i, m);
            match &m.ty {
                CType::Void => Err(fail("`void` member").within(&where_)),
                ty => ty.lower(t).map_err(|e| e.within(&where_)),
            }
        })
        .collect()
}

/// A parameter's type: arrays and functions decay to pointers, as C does.
fn lower_param(p: &Param, t: Target) -> Result<Type, Fail> {
    match &p.ty {
        CType::Void => Err(fail("`void` is not a parameter type")),
        CType::Array(..) | CType::Function(_) => Ok(Type::pointer()),
        ty => ty.lower(t),
    }
}

impl Signature {
    /// Lowers to jitffi types for the prefix's ABI, else `default_abi`.
    ///
    /// Variadic argument types are lowered as written; jitffi refuses
    /// ones C would have promoted (`float`, `short`): see
    /// [`CType::promoted`].
    ///
    /// ```
    /// use jitffi::{Abi, Type};
    /// use jitffi_cli::sig::Signature;
    /// let s = Signature::parse("win64: long f(char *, ..., long)").unwrap();
    /// let l = s.lower(Abi::SysV64).unwrap();
    /// assert_eq!(l.abi, Abi::Win64);
    /// assert_eq!((l.ret, l.fixed), (Type::i32(), Some(1)));
    /// assert_eq!(l.args, [Type::pointer(), Type::i32()]);
    /// ```
    pub fn lower(&self, default_abi: Abi) -> Result<Lowered, LowerError> {
        let abi = self.abi.unwrap_or(default_abi);
        let t = Target::of(abi);
        let ret = match &self.ret {
            CType::Array(..) => Err(fail("a function cannot return an array")),
            CType::Function(_) => Err(fail("a function cannot return a function")),
            ty => ty.lower(t),
        }
        .map_err(|e| e.within("return type"))?;
        let mut args = Vec::with_capacity(self.params.len());
        for (i, p) in self.params.iter().enumerate() {
            args.push(lower_param(p, t).map_err(|e| e.within(&place("parameter", i, p)))?);
        }
        let fixed = match &self.varargs {
            None => None,
            Some(var) => {
                for (i, p) in var.iter().enumerate() {
                    let where_ = place("variadic argument", i, p);
                    args.push(lower_param(p, t).map_err(|e| e.within(&where_))?);
                }
                Some(self.params.len())
            }
        };
        Ok(Lowered {
            abi,
            ret,
            args,
            fixed,
        })
    }
}
