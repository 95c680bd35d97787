//! Type conversions of the differential tests: randsig shapes as jitffi
//! types, jitffi types as libffi descriptions, and a prepared libffi cif
//! owning its descriptions.
//!
//! Included by path (`#[path = "support/ffi_convert.rs"] mod ffi_convert;`)
//! next to `support/randsig.rs`, which the including crate names `randsig`.

#![allow(dead_code)]

use std::ptr;

use jitffi::{Type, TypeKind};
use libffi::raw::{self as ffi, ffi_cif, ffi_type};

use super::randsig::{Scalar, Shape};

// libffi exports these on every Linux target; libffi-sys only declares
// them behind its `complex` feature, which the main crate does not enable.
extern "C" {
    static mut ffi_type_complex_float: ffi_type;
    static mut ffi_type_complex_double: ffi_type;
    static mut ffi_type_complex_longdouble: ffi_type;
}

/// The jitffi type of a randsig scalar.
pub fn scalar_type(s: Scalar) -> Type {
    match s {
        Scalar::U8 => Type::u8(),
        Scalar::I8 => Type::i8(),
        Scalar::U16 => Type::u16(),
        Scalar::I16 => Type::i16(),
        Scalar::U32 => Type::u32(),
        Scalar::I32 => Type::i32(),
        Scalar::U64 => Type::u64(),
        Scalar::I64 => Type::i64(),
        Scalar::F32 => Type::f32(),
        Scalar::F64 => Type::f64(),
        Scalar::LongDouble => Type::long_double(),
        Scalar::Pointer => Type::pointer(),
        Scalar::ComplexF32 => Type::complex_f32(),
        Scalar::ComplexF64 => Type::complex_f64(),
        Scalar::ComplexLongDouble => Type::complex_long_double(),
    }
}

/// The jitffi type of a randsig shape. Repeated members become arrays when
/// the shape says so, separate fields otherwise.
pub fn jit_type(shape: &Shape) -> Type {
    match shape {
        Shape::Scalar(s) => scalar_type(*s),
        Shape::Struct(members) => {
            let mut fields = Vec::new();
            for m in members {
                let t = jit_type(&m.shape);
                if m.as_array && m.count > 1 {
                    fields.push(Type::array(t, m.count).expect("small array"));
                } else {
                    fields.extend(std::iter::repeat_n(t, m.count));
                }
            }
            Type::structure(fields).expect("randsig structs are valid")
        }
    }
}

/// libffi type descriptions, alive as long as this value.
#[derive(Default)]
pub struct FfiTypes {
    /// Struct descriptions we allocated (`Box::into_raw`).
    nodes: Vec<*mut ffi_type>,
    /// Their null-terminated element lists (`Box::into_raw`).
    lists: Vec<*mut [*mut ffi_type]>,
}

impl FfiTypes {
    /// libffi's description of `t`; `None` for what libffi has no words
    /// for (unions, `__int128`, an array other than as a struct member).
    pub fn describe(&mut self, t: &Type) -> Option<*mut ffi_type> {
        Some(match t.kind() {
            TypeKind::Void => &raw mut ffi::ffi_type_void,
            TypeKind::U8 => &raw mut ffi::ffi_type_uint8,
            TypeKind::I8 => &raw mut ffi::ffi_type_sint8,
            TypeKind::U16 => &raw mut ffi::ffi_type_uint16,
            TypeKind::I16 => &raw mut ffi::ffi_type_sint16,
            TypeKind::U32 => &raw mut ffi::ffi_type_uint32,
            TypeKind::I32 => &raw mut ffi::ffi_type_sint32,
            TypeKind::U64 => &raw mut ffi::ffi_type_uint64,
            TypeKind::I64 => &raw mut ffi::ffi_type_sint64,
            TypeKind::F32 => &raw mut ffi::ffi_type_float,
            TypeKind::F64 => &raw mut ffi::ffi_type_double,
            TypeKind::LongDouble => &raw mut ffi::ffi_type_longdouble,
            TypeKind::Pointer => &raw mut ffi::ffi_type_pointer,
            TypeKind::ComplexF32 => &raw mut ffi_type_complex_float,
            TypeKind::ComplexF64 => &raw mut ffi_type_complex_double,
            TypeKind::ComplexLongDouble => &raw mut ffi_type_complex_longdouble,
            TypeKind::Struct { fields, .. } => {
                let mut elems = Vec::new();
                for f in fields {
                    self.flatten(f, &mut elems)?;
                }
                elems.push(ptr::null_mut());
                let list = Box::into_raw(elems.into_boxed_slice());
                self.lists.push(list);
                let node = Box::into_raw(Box::new(ffi_type {
                    size: 0,
                    alignment: 0,
                    type_: ffi::FFI_TYPE_STRUCT,
                    // SAFETY: `list` is a live allocation we own.
                    elements: unsafe { (*list).as_mut_ptr() },
                }));
                self.nodes.push(node);
                node
            }
            TypeKind::Array { .. } | TypeKind::Union { .. } | TypeKind::I128 | TypeKind::U128 => {
                return None
            }
        })
    }

    /// Struct members as libffi elements: libffi has no arrays, so an array
    /// member becomes its elements repeated (which C lays out and classifies
    /// the same way).
    fn flatten(&mut self, t: &Type, out: &mut Vec<*mut ffi_type>) -> Option<()> {
        match t.kind() {
            TypeKind::Array { elem, len } => {
                for _ in 0..*len {
                    self.flatten(elem, out)?;
                }
            }
            _ => out.push(self.describe(t)?),
        }
        Some(())
    }
}

impl Drop for FfiTypes {
    fn drop(&mut self) {
        for &n in &self.nodes {
            // SAFETY: made by `Box::into_raw` in `describe`, freed once.
            drop(unsafe { Box::from_raw(n) });
        }
        for &l in &self.lists {
            // SAFETY: as above.
            drop(unsafe { Box::from_raw(l) });
        }
    }
}

/// A prepared libffi cif and the type descriptions it points into.
pub struct LibffiCif {
    cif: Box<ffi_cif>,
    _types: FfiTypes,
    atypes: Box<[*mut ffi_type]>,
    abi: ffi::ffi_abi,
}

impl LibffiCif {
    /// `ffi_prep_cif` (`ffi_prep_cif_var` with `fixed`) for the signature;
    /// `Err` when libffi cannot describe a type or refuses the signature.
    pub fn new(ret: &Type, args: &[Type], fixed: Option<usize>) -> Result<LibffiCif, String> {
        LibffiCif::with_abi(ffi::ffi_abi_FFI_DEFAULT_ABI, ret, args, fixed)
    }

    /// [`LibffiCif::new`] for libffi's calling convention `abi` (such as
    /// `ffi_abi_FFI_WIN64`) instead of the default one.
    pub fn with_abi(
        abi: ffi::ffi_abi,
        ret: &Type,
        args: &[Type],
        fixed: Option<usize>,
    ) -> Result<LibffiCif, String> {
        let mut types = FfiTypes::default();
        let rtype = types
            .describe(ret)
            .ok_or("libffi cannot describe the return type")?;
        let mut atypes = args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                types
                    .describe(a)
                    .ok_or(format!("libffi cannot describe argument {i}"))
            })
            .collect::<Result<Box<[_]>, _>>()?;
        let mut cif = Box::<ffi_cif>::default();
        let n = args.len() as u32;
        // SAFETY: the descriptions and the argument list live in the value
        // returned, as long as the cif.
        let status = unsafe {
            match fixed {
                Some(f) => {
                    ffi::ffi_prep_cif_var(&mut *cif, abi, f as u32, n, rtype, atypes.as_mut_ptr())
                }
                None => ffi::ffi_prep_cif(&mut *cif, abi, n, rtype, atypes.as_mut_ptr()),
            }
        };
        if status != ffi::ffi_status_FFI_OK {
            return Err(format!("libffi refused the signature (status {status})"));
        }
        Ok(LibffiCif {
            cif,
            _types: types,
            atypes,
            abi,
        })
    }

    /// [`LibffiCif::new`], and `Err` unless libffi lays out every argument
    /// with jitffi's size and alignment (else no comparison means anything).
    pub fn new_checked(
        ret: &Type,
        args: &[Type],
        fixed: Option<usize>,
    ) -> Result<LibffiCif, String> {
        LibffiCif::with_abi_checked(ffi::ffi_abi_FFI_DEFAULT_ABI, ret, args, fixed)
    }

    /// [`LibffiCif::new_checked`] for libffi's calling convention `abi`.
    pub fn with_abi_checked(
        abi: ffi::ffi_abi,
        ret: &Type,
        args: &[Type],
        fixed: Option<usize>,
    ) -> Result<LibffiCif, String> {
        let l = LibffiCif::with_abi(abi, ret, args, fixed)?;
        for (i, a) in args.iter().enumerate() {
            let (size, align, _) = l.arg_layout(i);
            if (size, align) != (a.size(), a.align()) {
                return Err(format!(
                    "harness: libffi lays out argument {i} ({a}) as {size} bytes align {align}, \
                     jitffi as {} align {}",
                    a.size(),
                    a.align()
                ));
            }
        }
        Ok(l)
    }

    /// The prepared cif, for `ffi_call` and `ffi_prep_closure_loc`; it
    /// stays put while this value lives.
    pub fn raw(&self) -> *mut ffi_cif {
        (&*self.cif as *const ffi_cif).cast_mut()
    }

    /// libffi's layout of argument `i`: size, alignment and, for a struct,
    /// the offsets of its elements.
    pub fn arg_layout(&self, i: usize) -> (usize, usize, Vec<usize>) {
        let t = self.atypes[i];
        // SAFETY: the cif was prepared, which laid out its argument types;
        // a struct's element list is null-terminated.
        unsafe {
            let mut offsets = Vec::new();
            if (*t).type_ == ffi::FFI_TYPE_STRUCT {
                let mut n = 0;
                while !(*(*t).elements.add(n)).is_null() {
                    n += 1;
                }
                offsets = vec![0usize; n];
                ffi::ffi_get_struct_offsets(self.abi, t, offsets.as_mut_ptr());
            }
            ((*t).size, (*t).alignment as usize, offsets)
        }
    }
}
