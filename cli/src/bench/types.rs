//! S1-S8's C types and argument values come from
//! `jitffi_oracle::bench_cases`, shared with the criterion benches; here
//! they become jitffi and (loaded) libffi descriptions.

use jitffi::{Cif, Type};
pub use jitffi_oracle::bench_cases::{bytes_of, CType, Plain, Sig, SIGS};

use super::check_failed;
use super::sysffi::{FfiCif, FfiType, Libffi};
use crate::error::CliError;

/// jitffi's type for a C type of S1-S8.
pub fn jitffi_type(t: CType) -> jitffi::Result<Type> {
    jitffi_oracle::jitffi_type!(t)
}

/// jitffi's return and argument types of `sig`.
pub fn jitffi_types(sig: &Sig) -> jitffi::Result<(Type, Vec<Type>)> {
    Ok((
        jitffi_type(sig.ret)?,
        sig.args
            .iter()
            .map(|&t| jitffi_type(t))
            .collect::<jitffi::Result<_>>()?,
    ))
}

/// A jitffi cif of `sig` for the host ABI.
pub fn jitffi_cif(sig: &Sig) -> jitffi::Result<Cif> {
    let (ret, args) = jitffi_types(sig)?;
    Cif::new(ret, &args)
}

/// libffi's type for a C type of S1-S8 (struct types are made in `ffi`
/// and live with it).
pub fn libffi_type(t: CType, ffi: &mut Libffi) -> *mut FfiType {
    let b = ffi.types;
    match t {
        CType::Void => b.void,
        CType::I8 => b.sint8,
        CType::U16 => b.uint16,
        CType::I32 => b.sint32,
        CType::I64 => b.sint64,
        CType::F32 => b.float,
        CType::F64 => b.double,
        CType::Ptr => b.pointer,
        CType::Pair => ffi.structure(&[b.double, b.double]),
        CType::Quad => ffi.structure(&[b.sint64; 4]),
    }
}

/// libffi's return and argument types of `sig`.
pub fn libffi_types(sig: &Sig, ffi: &mut Libffi) -> (*mut FfiType, Vec<*mut FfiType>) {
    (
        libffi_type(sig.ret, ffi),
        sig.args.iter().map(|&t| libffi_type(t, ffi)).collect(),
    )
}

/// A libffi cif of `sig`; libffi refusing it is a failed check, reported
/// as `{what}: libffi: ...`.
pub fn libffi_cif(ffi: &mut Libffi, what: &str, sig: &Sig) -> Result<Box<FfiCif>, CliError> {
    let (ret, args) = libffi_types(sig, ffi);
    ffi.cif(ret, &args)
        .map_err(|e| check_failed(format!("{what}: libffi: {e}")))
}

/// Bytes as hex, for mismatch messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jitffi_oracle::bench_cases::{S6Pair, S7Quad};

    #[test]
    fn layouts_match_the_c_structs() {
        let size = |t: CType| jitffi_type(t).unwrap().size();
        assert_eq!(size(CType::Pair), std::mem::size_of::<S6Pair>());
        assert_eq!(size(CType::Quad), std::mem::size_of::<S7Quad>());
        assert!(jitffi_type(CType::Void).unwrap().is_void());
        assert_eq!(hex(bytes_of(&0x0102i16)), "0201");
    }
}
