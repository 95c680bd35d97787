//! The handful of C types S1-S8 use, named once and turned into jitffi
//! and libffi descriptions, and the argument values every case passes.

use std::ffi::c_void;

use jitffi::Type;
use jitffi_oracle::bench_stubs::{S6Pair, S7Quad};

use super::sysffi::{FfiType, Libffi};

/// A C type of S1-S8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum T {
    Void,
    I8,
    U16,
    I32,
    I64,
    F32,
    F64,
    Ptr,
    /// `struct { double a, b; }` (S6)
    Pair,
    /// `struct { int64_t a, b, c, d; }` (S7)
    Quad,
}

impl T {
    /// The jitffi type.
    pub fn jitffi(self) -> jitffi::Result<Type> {
        Ok(match self {
            T::Void => Type::void(),
            T::I8 => Type::i8(),
            T::U16 => Type::u16(),
            T::I32 => Type::i32(),
            T::I64 => Type::i64(),
            T::F32 => Type::f32(),
            T::F64 => Type::f64(),
            T::Ptr => Type::pointer(),
            T::Pair => Type::structure([Type::f64(), Type::f64()])?,
            T::Quad => Type::structure(vec![Type::i64(); 4])?,
        })
    }

    /// The libffi type (struct types are made in `ffi` and live with it).
    pub fn libffi(self, ffi: &mut Libffi) -> *mut FfiType {
        let t = ffi.types;
        match self {
            T::Void => t.void,
            T::I8 => t.sint8,
            T::U16 => t.uint16,
            T::I32 => t.sint32,
            T::I64 => t.sint64,
            T::F32 => t.float,
            T::F64 => t.double,
            T::Ptr => t.pointer,
            T::Pair => ffi.structure(&[t.double, t.double]),
            T::Quad => ffi.structure(&[t.sint64; 4]),
        }
    }
}

// The argument values of every case (those of benches/calls.rs).
pub const INTS: [i32; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
pub const I64S: [i64; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
pub const F64S: [f64; 4] = [1.0, 2.0, 3.0, 4.0];
pub const S5: (i32, f64, i64, f32, usize, i8, u16, f64) = (1, 2.0, 3, 4.0, 5, -6, 7, 8.0);
pub const PAIR: S6Pair = S6Pair { a: 1.0, b: 2.0 };
pub const QUAD: S7Quad = S7Quad {
    a: 1,
    b: 2,
    c: 3,
    d: 4,
};
/// S5's pointer argument.
pub const S5_PTR: *const c_void = S5.4 as *const c_void;

/// The bytes of a value.
pub fn bytes_of<T>(v: &T) -> &[u8] {
    // SAFETY: every value passed here is plain data without padding
    // (integers, floats, pointers, the all-double or all-int64 structs).
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// Bytes as hex, for mismatch messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_c_structs() {
        let size = |t: T| t.jitffi().unwrap().size();
        assert_eq!(size(T::Pair), std::mem::size_of::<S6Pair>());
        assert_eq!(size(T::Quad), std::mem::size_of::<S7Quad>());
        assert!(T::Void.jitffi().unwrap().is_void());
        assert_eq!(hex(bytes_of(&0x0102i16)), "0201");
    }
}
