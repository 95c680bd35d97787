//! The jitffi type of an AArch64 oracle type description
//! (`jitffi_oracle::aapcs64::Ty`), shared by the AArch64 test files.

use jitffi::Type;
use jitffi_oracle::aapcs64::Ty;

/// The jitffi type of an oracle type description.
pub fn jt(t: &Ty) -> Type {
    match t {
        Ty::Void => Type::void(),
        Ty::I8 => Type::i8(),
        Ty::U8 => Type::u8(),
        Ty::I16 => Type::i16(),
        Ty::U16 => Type::u16(),
        Ty::I32 => Type::i32(),
        Ty::U32 => Type::u32(),
        Ty::I64 => Type::i64(),
        Ty::U64 => Type::u64(),
        Ty::I128 => Type::i128(),
        Ty::U128 => Type::u128(),
        Ty::F32 => Type::f32(),
        Ty::F64 => Type::f64(),
        Ty::F128 => Type::long_double(),
        Ty::Ptr => Type::pointer(),
        Ty::CF32 => Type::complex_f32(),
        Ty::CF64 => Type::complex_f64(),
        Ty::CF128 => Type::complex_long_double(),
        Ty::Struct(f) => Type::structure(f.iter().map(jt)).expect("valid struct"),
        Ty::Union(f) => Type::union(f.iter().map(jt)).expect("valid union"),
        Ty::Array(e, n) => Type::array(jt(e), *n).expect("valid array"),
    }
}
