//! Short type constructors for the golden plan tests
//! (`#[path = "support/build.rs"] mod build;`), which spell out many
//! aggregates: `st(&[..])`, `un(&[..])`, `arr(t, n)`, `rep(t, n)`.

#![allow(dead_code)]

use jitffi::Type;

/// `struct { fields }`
pub fn st(fields: &[Type]) -> Type {
    Type::structure(fields.iter().cloned()).unwrap()
}

/// `union { fields }`
pub fn un(fields: &[Type]) -> Type {
    Type::union(fields.iter().cloned()).unwrap()
}

/// `elem[len]`
pub fn arr(elem: Type, len: usize) -> Type {
    Type::array(elem, len).unwrap()
}

/// `n` copies of `t`.
pub fn rep(t: Type, n: usize) -> Vec<Type> {
    std::iter::repeat_n(t, n).collect()
}
