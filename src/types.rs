//! C types and their C layout.
//!
//! A [`Type`] is an immutable, cheaply clonable tree. Size, alignment, field
//! offsets and a structural hash are computed once, when the type is built,
//! so the rest of the pipeline (classification, the stub cache) never walks
//! a description twice. Two types are equal when their shapes are equal,
//! whatever their allocation: the cache keys on shape, not identity.
//!
//! Layouts follow the C rules of the host (x86-64 and AArch64 Linux agree
//! for everything here except `long double`, which [`Type::long_double`]
//! sizes per target).
//!
//! ```
//! use jitffi::Type;
//! // struct { char c; double d; short s; }
//! let t = Type::structure([Type::i8(), Type::f64(), Type::i16()]).unwrap();
//! assert_eq!((t.size(), t.align()), (24, 8));
//! assert_eq!(t.to_string(), "struct { int8_t; double; int16_t; }");
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use crate::error::{Error, Result};

/// Deepest aggregate nesting accepted (a struct of a struct ... ).
///
/// ```
/// use jitffi::{types::MAX_DEPTH, Error, Type};
/// let mut t = Type::i32();
/// for _ in 0..MAX_DEPTH {
///     t = Type::structure([t]).unwrap();
/// }
/// assert!(matches!(Type::structure([t]), Err(Error::NestingTooDeep { .. })));
/// ```
pub const MAX_DEPTH: usize = 64;
/// Largest type accepted, in bytes.
///
/// ```
/// use jitffi::{types::MAX_TYPE_SIZE, Error, Type};
/// assert!(Type::array(Type::u8(), MAX_TYPE_SIZE as usize).is_ok());
/// let e = Type::array(Type::u8(), MAX_TYPE_SIZE as usize + 1).unwrap_err();
/// assert!(matches!(e, Error::TypeTooLarge { what: "array", .. }));
/// ```
pub const MAX_TYPE_SIZE: u64 = 1 << 24;

/// The shape of a type.
///
/// ```
/// use jitffi::{Type, TypeKind};
/// assert_eq!(Type::f64().kind(), &TypeKind::F64);
/// let u = Type::union([Type::f32(), Type::u64()]).unwrap();
/// assert!(matches!(u.kind(), TypeKind::Union { fields } if fields.len() == 2));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeKind {
    /// `void`: return type only.
    Void,
    /// `uint8_t`
    U8,
    /// `int8_t`
    I8,
    /// `uint16_t`
    U16,
    /// `int16_t`
    I16,
    /// `uint32_t`
    U32,
    /// `int32_t`
    I32,
    /// `uint64_t`
    U64,
    /// `int64_t`
    I64,
    /// `unsigned __int128`
    U128,
    /// `__int128`
    I128,
    /// `float`
    F32,
    /// `double`
    F64,
    /// `long double` (x87 80-bit extended on x86-64, in a 16-byte slot).
    LongDouble,
    /// Any data or function pointer.
    Pointer,
    /// `float _Complex`
    ComplexF32,
    /// `double _Complex`
    ComplexF64,
    /// `long double _Complex`
    ComplexLongDouble,
    /// A struct; `offsets[i]` is the byte offset of `fields[i]`.
    Struct {
        /// Member types in declaration order.
        fields: Vec<Type>,
        /// Byte offset of each member.
        offsets: Vec<usize>,
    },
    /// A union: every member at offset 0.
    Union {
        /// Member types.
        fields: Vec<Type>,
    },
    /// A fixed-size array (valid as a struct or union member).
    Array {
        /// Element type.
        elem: Type,
        /// Number of elements (at least 1).
        len: usize,
    },
}

struct TypeData {
    kind: TypeKind,
    size: usize,
    align: usize,
    depth: usize,
    hash: u64,
}

/// A C type with its layout. Clone is a reference-count increment.
///
/// Equality and hashing are structural: two separately built types of the
/// same shape are equal. `Display` spells the type the way C would.
///
/// ```
/// use jitffi::Type;
/// let a = Type::structure([Type::f64(), Type::i32()]).unwrap();
/// let b = Type::structure([Type::f64(), Type::i32()]).unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.to_string(), "struct { double; int32_t; }");
/// ```
#[derive(Clone)]
pub struct Type(Arc<TypeData>);

/// A small, fixed, deterministic hasher (FNV-1a over u64 words) so the
/// structural hash is the same in every process and costs a few cycles.
fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x0000_0100_0000_01b3)
}
const SEED: u64 = 0xcbf2_9ce4_8422_2325;

fn kind_tag(kind: &TypeKind) -> u64 {
    match kind {
        TypeKind::Void => 0,
        TypeKind::U8 => 1,
        TypeKind::I8 => 2,
        TypeKind::U16 => 3,
        TypeKind::I16 => 4,
        TypeKind::U32 => 5,
        TypeKind::I32 => 6,
        TypeKind::U64 => 7,
        TypeKind::I64 => 8,
        TypeKind::U128 => 9,
        TypeKind::I128 => 10,
        TypeKind::F32 => 11,
        TypeKind::F64 => 12,
        TypeKind::LongDouble => 13,
        TypeKind::Pointer => 14,
        TypeKind::ComplexF32 => 15,
        TypeKind::ComplexF64 => 16,
        TypeKind::ComplexLongDouble => 17,
        TypeKind::Struct { .. } => 18,
        TypeKind::Union { .. } => 19,
        TypeKind::Array { .. } => 20,
    }
}

fn align_up(v: u64, align: u64) -> u64 {
    v.div_ceil(align) * align
}

fn scalar(kind: TypeKind, size: usize, align: usize) -> Type {
    let hash = mix(SEED, kind_tag(&kind));
    Type(Arc::new(TypeData {
        kind,
        size,
        align,
        depth: 0,
        hash,
    }))
}

macro_rules! scalar_ctors {
    ($($(#[$doc:meta])* $name:ident => $kind:ident, $size:expr, $align:expr;)*) => {
        $(
            $(#[$doc])*
            pub fn $name() -> Type {
                static T: LazyLock<Type> = LazyLock::new(|| scalar(TypeKind::$kind, $size, $align));
                T.clone()
            }
        )*
    };
}

impl Type {
    scalar_ctors! {
        /// `void` (valid only as a return type).
        ///
        /// ```
        /// assert!(jitffi::Type::void().is_void());
        /// ```
        void => Void, 1, 1;
        /// `uint8_t`
        ///
        /// ```
        /// assert_eq!(jitffi::Type::u8().size(), 1);
        /// ```
        u8 => U8, 1, 1;
        /// `int8_t`
        ///
        /// ```
        /// assert!(jitffi::Type::i8().is_signed());
        /// ```
        i8 => I8, 1, 1;
        /// `uint16_t`
        ///
        /// ```
        /// assert_eq!(jitffi::Type::u16().size(), 2);
        /// ```
        u16 => U16, 2, 2;
        /// `int16_t`
        ///
        /// ```
        /// assert_eq!(jitffi::Type::i16().to_string(), "int16_t");
        /// ```
        i16 => I16, 2, 2;
        /// `uint32_t`
        ///
        /// ```
        /// assert_eq!(jitffi::Type::u32().align(), 4);
        /// ```
        u32 => U32, 4, 4;
        /// `int32_t`
        ///
        /// ```
        /// assert_eq!(jitffi::Type::i32().size(), 4);
        /// ```
        i32 => I32, 4, 4;
        /// `uint64_t`
        ///
        /// ```
        /// assert!(!jitffi::Type::u64().is_signed());
        /// ```
        u64 => U64, 8, 8;
        /// `int64_t`
        ///
        /// ```
        /// assert_eq!(jitffi::Type::i64().align(), 8);
        /// ```
        i64 => I64, 8, 8;
        /// `unsigned __int128`
        ///
        /// ```
        /// assert_eq!(jitffi::Type::u128().align(), 16);
        /// ```
        u128 => U128, 16, 16;
        /// `__int128`
        ///
        /// ```
        /// assert!(!jitffi::Type::i128().is_integer_like()); // two eightbytes
        /// ```
        i128 => I128, 16, 16;
        /// `float`
        ///
        /// ```
        /// assert_eq!(jitffi::Type::f32().size(), 4);
        /// ```
        f32 => F32, 4, 4;
        /// `double`
        ///
        /// ```
        /// assert_eq!(jitffi::Type::f64().size(), 8);
        /// ```
        f64 => F64, 8, 8;
        /// `long double`: 80-bit x87 in a 16-byte, 16-aligned slot on
        /// x86-64; IEEE binary128 on AArch64 and RISC-V Linux (same size).
        ///
        /// ```
        /// let t = jitffi::Type::long_double();
        /// assert_eq!((t.size(), t.align()), (16, 16));
        /// ```
        long_double => LongDouble, 16, 16;
        /// A pointer (`void *`, `char *`, function pointers...).
        ///
        /// ```
        /// assert_eq!(jitffi::Type::pointer().size(), std::mem::size_of::<*const u8>());
        /// ```
        pointer => Pointer, std::mem::size_of::<usize>(), std::mem::align_of::<usize>();
        /// `float _Complex`
        ///
        /// ```
        /// let t = jitffi::Type::complex_f32();
        /// assert_eq!((t.size(), t.align()), (8, 4));
        /// ```
        complex_f32 => ComplexF32, 8, 4;
        /// `double _Complex`
        ///
        /// ```
        /// assert_eq!(jitffi::Type::complex_f64().size(), 16);
        /// ```
        complex_f64 => ComplexF64, 16, 8;
        /// `long double _Complex`
        ///
        /// ```
        /// assert_eq!(jitffi::Type::complex_long_double().size(), 32);
        /// ```
        complex_long_double => ComplexLongDouble, 32, 16;
    }

    /// A struct with C layout: each member at the next offset aligned for
    /// it, the size rounded up to the largest member alignment.
    ///
    /// ```
    /// use jitffi::Type;
    /// let t = Type::structure([Type::u8(), Type::f64(), Type::u16()]).unwrap();
    /// assert_eq!((t.size(), t.align()), (24, 8));
    /// assert_eq!(t.field_offsets(), Some(&[0, 8, 16][..]));
    /// ```
    pub fn structure(fields: impl IntoIterator<Item = Type>) -> Result<Type> {
        let fields: Vec<Type> = fields.into_iter().collect();
        Self::check_members("struct", &fields)?;
        let mut offset: u64 = 0;
        let mut align = 1usize;
        let mut offsets = Vec::with_capacity(fields.len());
        for f in &fields {
            offset = align_up(offset, f.align() as u64);
            offsets.push(offset as usize);
            offset += f.size() as u64;
            align = align.max(f.align());
            Self::check_size("struct", offset)?;
        }
        let size = align_up(offset, align as u64);
        Self::check_size("struct", size)?;
        Ok(Self::aggregate(
            TypeKind::Struct { fields, offsets },
            size as usize,
            align,
        ))
    }

    /// A union: every member at offset 0, size of the largest member
    /// rounded up to the largest alignment.
    ///
    /// ```
    /// use jitffi::Type;
    /// let t = Type::union([Type::f32(), Type::u64()]).unwrap();
    /// assert_eq!((t.size(), t.align()), (8, 8));
    /// ```
    pub fn union(fields: impl IntoIterator<Item = Type>) -> Result<Type> {
        let fields: Vec<Type> = fields.into_iter().collect();
        Self::check_members("union", &fields)?;
        let align = fields.iter().map(Type::align).max().unwrap_or(1);
        let largest = fields.iter().map(|f| f.size() as u64).max().unwrap_or(0);
        let size = align_up(largest, align as u64);
        Self::check_size("union", size)?;
        Ok(Self::aggregate(
            TypeKind::Union { fields },
            size as usize,
            align,
        ))
    }

    /// A fixed-size array `elem[len]`, for use as a struct or union member.
    ///
    /// ```
    /// use jitffi::Type;
    /// let a = Type::array(Type::f32(), 4).unwrap();
    /// let s = Type::structure([a]).unwrap();
    /// assert_eq!(s.size(), 16);
    /// ```
    pub fn array(elem: Type, len: usize) -> Result<Type> {
        if len == 0 {
            return Err(Error::EmptyAggregate { what: "array" });
        }
        Self::check_members("array", std::slice::from_ref(&elem))?;
        let size = (elem.size() as u64).saturating_mul(len as u64);
        Self::check_size("array", size)?;
        let align = elem.align();
        Ok(Self::aggregate(
            TypeKind::Array { elem, len },
            size as usize,
            align,
        ))
    }

    fn check_members(what: &'static str, fields: &[Type]) -> Result<()> {
        if fields.is_empty() {
            return Err(Error::EmptyAggregate { what });
        }
        if let Some(field) = fields.iter().position(Type::is_void) {
            return Err(Error::VoidMember { what, field });
        }
        let depth = 1 + fields.iter().map(|f| f.0.depth).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(Error::NestingTooDeep {
                depth,
                max: MAX_DEPTH,
            });
        }
        Ok(())
    }

    fn check_size(what: &'static str, size: u64) -> Result<()> {
        if size > MAX_TYPE_SIZE {
            return Err(Error::TypeTooLarge {
                what,
                size,
                max: MAX_TYPE_SIZE,
            });
        }
        Ok(())
    }

    fn aggregate(kind: TypeKind, size: usize, align: usize) -> Type {
        let mut hash = mix(SEED, kind_tag(&kind));
        let depth;
        match &kind {
            TypeKind::Struct { fields, .. } | TypeKind::Union { fields } => {
                hash = mix(hash, fields.len() as u64);
                for f in fields {
                    hash = mix(hash, f.0.hash);
                }
                depth = 1 + fields.iter().map(|f| f.0.depth).max().unwrap_or(0);
            }
            TypeKind::Array { elem, len } => {
                hash = mix(mix(hash, *len as u64), elem.0.hash);
                depth = 1 + elem.0.depth;
            }
            _ => unreachable!("aggregate() is only called for aggregates"),
        }
        Type(Arc::new(TypeData {
            kind,
            size,
            align,
            depth,
            hash,
        }))
    }

    /// The shape of this type.
    ///
    /// ```
    /// use jitffi::{Type, TypeKind};
    /// assert_eq!(Type::pointer().kind(), &TypeKind::Pointer);
    /// let a = Type::array(Type::u16(), 3).unwrap();
    /// assert!(matches!(a.kind(), TypeKind::Array { len: 3, .. }));
    /// ```
    #[inline]
    pub fn kind(&self) -> &TypeKind {
        &self.0.kind
    }

    /// Size in bytes (`sizeof`). `void` reports 1 but is never stored.
    ///
    /// ```
    /// use jitffi::Type;
    /// // struct { char; int; char; }: padding after each char.
    /// let t = Type::structure([Type::i8(), Type::i32(), Type::i8()]).unwrap();
    /// assert_eq!(t.size(), 12);
    /// ```
    #[inline]
    pub fn size(&self) -> usize {
        self.0.size
    }

    /// Alignment in bytes (`_Alignof`).
    ///
    /// ```
    /// use jitffi::Type;
    /// assert_eq!(Type::complex_f64().align(), 8);
    /// let t = Type::structure([Type::u8(), Type::i128()]).unwrap();
    /// assert_eq!(t.align(), 16);
    /// ```
    #[inline]
    pub fn align(&self) -> usize {
        self.0.align
    }

    /// Byte offsets of a struct's members (what libffi's
    /// `ffi_get_struct_offsets` reports); `None` for anything else.
    ///
    /// ```
    /// use jitffi::Type;
    /// let t = Type::structure([Type::i8(), Type::i32(), Type::i8()]).unwrap();
    /// assert_eq!(t.field_offsets(), Some(&[0, 4, 8][..]));
    /// assert_eq!(Type::i32().field_offsets(), None);
    /// ```
    pub fn field_offsets(&self) -> Option<&[usize]> {
        match &self.0.kind {
            TypeKind::Struct { offsets, .. } => Some(offsets),
            _ => None,
        }
    }

    /// Members of a struct or union; `None` for anything else.
    ///
    /// ```
    /// use jitffi::Type;
    /// let u = Type::union([Type::f64(), Type::i32()]).unwrap();
    /// assert_eq!(u.fields(), Some(&[Type::f64(), Type::i32()][..]));
    /// assert!(Type::array(Type::i32(), 2).unwrap().fields().is_none());
    /// ```
    pub fn fields(&self) -> Option<&[Type]> {
        match &self.0.kind {
            TypeKind::Struct { fields, .. } | TypeKind::Union { fields } => Some(fields),
            _ => None,
        }
    }

    /// Nesting depth: 0 for scalars, 1 + the deepest member otherwise.
    ///
    /// ```
    /// use jitffi::Type;
    /// let inner = Type::structure([Type::i32()]).unwrap();
    /// let outer = Type::structure([Type::u8(), inner]).unwrap();
    /// assert_eq!((Type::i32().depth(), outer.depth()), (0, 2));
    /// ```
    pub fn depth(&self) -> usize {
        self.0.depth
    }

    /// A structural hash, stable across processes.
    ///
    /// ```
    /// use jitffi::Type;
    /// let a = Type::structure([Type::f64(), Type::i32()]).unwrap();
    /// let b = Type::structure([Type::f64(), Type::i32()]).unwrap();
    /// let c = Type::structure([Type::i32(), Type::f64()]).unwrap();
    /// assert_eq!(a.shape_hash(), b.shape_hash());
    /// assert_ne!(a.shape_hash(), c.shape_hash());
    /// ```
    pub fn shape_hash(&self) -> u64 {
        self.0.hash
    }

    /// `true` for `void`.
    ///
    /// ```
    /// use jitffi::Type;
    /// assert!(Type::void().is_void());
    /// assert!(!Type::pointer().is_void());
    /// ```
    pub fn is_void(&self) -> bool {
        matches!(self.0.kind, TypeKind::Void)
    }

    /// `true` for structs, unions and arrays.
    ///
    /// ```
    /// use jitffi::Type;
    /// assert!(Type::array(Type::u8(), 4).unwrap().is_aggregate());
    /// assert!(!Type::complex_f64().is_aggregate());
    /// ```
    pub fn is_aggregate(&self) -> bool {
        matches!(
            self.0.kind,
            TypeKind::Struct { .. } | TypeKind::Union { .. } | TypeKind::Array { .. }
        )
    }

    /// `true` for integer types and pointers (not `__int128`).
    ///
    /// ```
    /// use jitffi::Type;
    /// assert!(Type::pointer().is_integer_like());
    /// assert!(!Type::i128().is_integer_like());
    /// assert!(!Type::f64().is_integer_like());
    /// ```
    pub fn is_integer_like(&self) -> bool {
        matches!(
            self.0.kind,
            TypeKind::U8
                | TypeKind::I8
                | TypeKind::U16
                | TypeKind::I16
                | TypeKind::U32
                | TypeKind::I32
                | TypeKind::U64
                | TypeKind::I64
                | TypeKind::Pointer
        )
    }

    /// `true` for signed integer types (including `__int128`).
    ///
    /// ```
    /// use jitffi::Type;
    /// assert!(Type::i128().is_signed());
    /// assert!(!Type::u8().is_signed());
    /// assert!(!Type::pointer().is_signed());
    /// ```
    pub fn is_signed(&self) -> bool {
        matches!(
            self.0.kind,
            TypeKind::I8 | TypeKind::I16 | TypeKind::I32 | TypeKind::I64 | TypeKind::I128
        )
    }
}

impl PartialEq for Type {
    /// Shape equality. The same allocation (the common case on the cache's
    /// hot path) answers without touching the tree.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.same_shape(other)
    }
}

impl Type {
    #[inline(never)]
    fn same_shape(&self, other: &Type) -> bool {
        self.0.hash == other.0.hash && self.0.size == other.0.size && self.0.kind == other.0.kind
    }
}

impl Eq for Type {}

impl Hash for Type {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl fmt::Display for Type {
    /// C-like spelling: `int32_t`, `struct { double; int32_t[4]; }`;
    /// nested arrays outermost length first, as C declares them.
    ///
    /// ```
    /// use jitffi::Type;
    /// let rows = Type::array(Type::array(Type::i32(), 3).unwrap(), 2).unwrap();
    /// assert_eq!(rows.to_string(), "int32_t[2][3]");
    /// assert_eq!(rows.size(), 24);
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match &self.0.kind {
            TypeKind::Void => "void",
            TypeKind::U8 => "uint8_t",
            TypeKind::I8 => "int8_t",
            TypeKind::U16 => "uint16_t",
            TypeKind::I16 => "int16_t",
            TypeKind::U32 => "uint32_t",
            TypeKind::I32 => "int32_t",
            TypeKind::U64 => "uint64_t",
            TypeKind::I64 => "int64_t",
            TypeKind::U128 => "unsigned __int128",
            TypeKind::I128 => "__int128",
            TypeKind::F32 => "float",
            TypeKind::F64 => "double",
            TypeKind::LongDouble => "long double",
            TypeKind::Pointer => "void *",
            TypeKind::ComplexF32 => "float _Complex",
            TypeKind::ComplexF64 => "double _Complex",
            TypeKind::ComplexLongDouble => "long double _Complex",
            TypeKind::Struct { fields, .. } | TypeKind::Union { fields } => {
                let kw = if matches!(self.0.kind, TypeKind::Struct { .. }) {
                    "struct"
                } else {
                    "union"
                };
                write!(f, "{kw} {{")?;
                for field in fields {
                    write!(f, " {field};")?;
                }
                return f.write_str(" }");
            }
            TypeKind::Array { .. } => {
                // C order: the outermost length first (`int32_t[2][3]` is
                // two arrays of three).
                let mut base = self;
                let mut dims = Vec::new();
                while let TypeKind::Array { elem, len } = &base.0.kind {
                    dims.push(*len);
                    base = elem;
                }
                write!(f, "{base}")?;
                for d in dims {
                    write!(f, "[{d}]")?;
                }
                return Ok(());
            }
        };
        f.write_str(name)
    }
}

impl fmt::Debug for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{self} /* size {}, align {} */",
            self.size(),
            self.align()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_layouts_match_c() {
        let cases = [
            (Type::u8(), 1, 1),
            (Type::i16(), 2, 2),
            (Type::u32(), 4, 4),
            (Type::i64(), 8, 8),
            (Type::i128(), 16, 16),
            (Type::f32(), 4, 4),
            (Type::f64(), 8, 8),
            (Type::long_double(), 16, 16),
            (Type::pointer(), 8, 8),
            (Type::complex_f32(), 8, 4),
            (Type::complex_f64(), 16, 8),
            (Type::complex_long_double(), 32, 16),
        ];
        for (t, size, align) in cases {
            assert_eq!((t.size(), t.align()), (size, align), "{t}");
        }
    }

    #[test]
    fn struct_padding_and_tail() {
        let t = Type::structure([Type::i8(), Type::i32(), Type::i8()]).unwrap();
        assert_eq!(t.field_offsets().unwrap(), &[0, 4, 8]);
        assert_eq!((t.size(), t.align()), (12, 4));
        let nested = Type::structure([Type::u8(), t.clone(), Type::u16()]).unwrap();
        assert_eq!(nested.field_offsets().unwrap(), &[0, 4, 16]);
        assert_eq!(nested.size(), 20);
        assert_eq!(nested.depth(), 2);
    }

    #[test]
    fn shape_equality_ignores_identity() {
        let a = Type::structure([Type::f64(), Type::i32()]).unwrap();
        let b = Type::structure([Type::f64(), Type::i32()]).unwrap();
        let c = Type::structure([Type::i32(), Type::f64()]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.shape_hash(), b.shape_hash());
        assert_ne!(a, c);
        let u = Type::union([Type::f64(), Type::i32()]).unwrap();
        assert_ne!(a, u);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            Type::structure([]).unwrap_err(),
            Error::EmptyAggregate { what: "struct" }
        );
        assert_eq!(
            Type::union([Type::i32(), Type::void()]).unwrap_err(),
            Error::VoidMember {
                what: "union",
                field: 1
            }
        );
        assert_eq!(
            Type::array(Type::i32(), 0).unwrap_err(),
            Error::EmptyAggregate { what: "array" }
        );
        assert!(matches!(
            Type::array(Type::i64(), usize::MAX).unwrap_err(),
            Error::TypeTooLarge { what: "array", .. }
        ));
        let mut t = Type::i32();
        for _ in 0..MAX_DEPTH {
            t = Type::structure([t]).unwrap();
        }
        assert!(matches!(
            Type::structure([t]).unwrap_err(),
            Error::NestingTooDeep { depth: 65, .. }
        ));
    }

    #[test]
    fn display_is_c_like() {
        let t = Type::structure([Type::f64(), Type::array(Type::i32(), 4).unwrap()]).unwrap();
        assert_eq!(t.to_string(), "struct { double; int32_t[4]; }");
    }
}
