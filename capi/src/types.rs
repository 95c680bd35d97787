//! `ffi_type` descriptions: the exported `ffi_type_*` objects, conversion
//! of a C type tree into a [`jitffi::Type`] (laying out unsized structs the
//! way `ffi_prep_cif` does), and the allocation-free structural key the
//! repeat-preparation cache is indexed by ([`KeyWriter`]).
//!
//! Types are told apart by their `type` field only, never by address:
//! executables get copy relocations of the `ffi_type_*` objects, so the
//! same type can live at two addresses in one process.

use std::mem::MaybeUninit;
use std::ptr::{addr_of_mut, null_mut};

use jitffi::Type;

use crate::ffi::*;
use crate::guard;

/// Deepest `ffi_type` tree walked. jitffi refuses aggregates nested deeper
/// than [`jitffi::types::MAX_DEPTH`]; the walk stops a little after that so
/// a cyclic (corrupt) description cannot recurse forever.
const MAX_WALK_DEPTH: usize = jitffi::types::MAX_DEPTH + 1;

macro_rules! basic_types {
    ($($name:ident = $size:expr, $align:expr, $code:ident;)*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`, a `LIBFFI_BASE_8.0` data object.")]
            #[no_mangle]
            pub static mut $name: ffi_type = ffi_type {
                size: $size,
                alignment: $align,
                type_: $code,
                elements: null_mut(),
            };
        )*
    };
}

basic_types! {
    ffi_type_void = 1, 1, FFI_TYPE_VOID;
    ffi_type_uint8 = 1, 1, FFI_TYPE_UINT8;
    ffi_type_sint8 = 1, 1, FFI_TYPE_SINT8;
    ffi_type_uint16 = 2, 2, FFI_TYPE_UINT16;
    ffi_type_sint16 = 2, 2, FFI_TYPE_SINT16;
    ffi_type_uint32 = 4, 4, FFI_TYPE_UINT32;
    ffi_type_sint32 = 4, 4, FFI_TYPE_SINT32;
    ffi_type_uint64 = 8, 8, FFI_TYPE_UINT64;
    ffi_type_sint64 = 8, 8, FFI_TYPE_SINT64;
    ffi_type_float = 4, 4, FFI_TYPE_FLOAT;
    ffi_type_double = 8, 8, FFI_TYPE_DOUBLE;
    ffi_type_longdouble = 16, 16, FFI_TYPE_LONGDOUBLE;
    ffi_type_pointer = 8, 8, FFI_TYPE_POINTER;
}

/// A NULL-terminated element list, as a `static` (raw pointers are not
/// `Sync`; these lists are never written).
#[repr(transparent)]
pub struct Elements(pub [*mut ffi_type; 2]);
// SAFETY: the arrays are immutable after static initialisation; the
// pointers they hold lead to the equally immutable `ffi_type_*` objects.
unsafe impl Sync for Elements {}

static COMPLEX_FLOAT_PART: Elements = Elements([addr_of_mut!(ffi_type_float), null_mut()]);
static COMPLEX_DOUBLE_PART: Elements = Elements([addr_of_mut!(ffi_type_double), null_mut()]);
static COMPLEX_LONGDOUBLE_PART: Elements =
    Elements([addr_of_mut!(ffi_type_longdouble), null_mut()]);

macro_rules! complex_types {
    ($($name:ident = $size:expr, $align:expr, $part:ident;)*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`, a `LIBFFI_COMPLEX_8.0` data object.")]
            #[no_mangle]
            pub static mut $name: ffi_type = ffi_type {
                size: $size,
                alignment: $align,
                type_: FFI_TYPE_COMPLEX,
                elements: $part.0.as_ptr() as *mut *mut ffi_type,
            };
        )*
    };
}

complex_types! {
    ffi_type_complex_float = 8, 4, COMPLEX_FLOAT_PART;
    ffi_type_complex_double = 16, 8, COMPLEX_DOUBLE_PART;
    ffi_type_complex_longdouble = 32, 16, COMPLEX_LONGDOUBLE_PART;
}

/// Maps a jitffi refusal onto libffi's status codes.
pub fn status_of(e: &jitffi::Error) -> ffi_status {
    match e.status() {
        jitffi::Status::BadTypedef => FFI_BAD_TYPEDEF,
        jitffi::Status::BadAbi => FFI_BAD_ABI,
        jitffi::Status::BadArgType => FFI_BAD_ARGTYPE,
    }
}

/// Converts a C type description into a jitffi [`Type`].
///
/// Struct types whose `size` is 0 get their size and alignment filled in,
/// recursively, as `ffi_prep_cif` does. A struct that arrives with a size
/// must have the one C gives its members (jitffi cannot express other
/// layouts: packed structs and the like are refused). `FFI_TYPE_INT` is
/// `int32_t`. Refusals are `FFI_BAD_TYPEDEF`: a null type, a struct
/// without elements, an empty struct, an unknown type code, a complex
/// type whose part is not `float`, `double` or `long double`, `void` as a
/// member, nesting deeper than jitffi allows.
///
/// # Safety
/// `t` must be null or point at a readable `ffi_type` whose `elements`
/// (for structs and complex types) is null or a NULL-terminated array of
/// such pointers; struct types with size 0 must be writable.
pub unsafe fn ffi_type_to_jitffi(t: *mut ffi_type) -> Result<Type, ffi_status> {
    // SAFETY: forwarded to the caller's contract.
    unsafe { convert(t, 0) }
}

/// The fixed-size scalar a type code denotes, if it is one.
fn scalar(code: u16) -> Option<Type> {
    Some(match code {
        FFI_TYPE_VOID => Type::void(),
        FFI_TYPE_INT | FFI_TYPE_SINT32 => Type::i32(),
        FFI_TYPE_FLOAT => Type::f32(),
        FFI_TYPE_DOUBLE => Type::f64(),
        FFI_TYPE_LONGDOUBLE => Type::long_double(),
        FFI_TYPE_UINT8 => Type::u8(),
        FFI_TYPE_SINT8 => Type::i8(),
        FFI_TYPE_UINT16 => Type::u16(),
        FFI_TYPE_SINT16 => Type::i16(),
        FFI_TYPE_UINT32 => Type::u32(),
        FFI_TYPE_UINT64 => Type::u64(),
        FFI_TYPE_SINT64 => Type::i64(),
        FFI_TYPE_POINTER => Type::pointer(),
        _ => return None,
    })
}

/// # Safety
/// As [`ffi_type_to_jitffi`].
unsafe fn convert(t: *mut ffi_type, depth: usize) -> Result<Type, ffi_status> {
    if t.is_null() {
        guard::explain(|| "null ffi_type pointer".into());
        return Err(FFI_BAD_TYPEDEF);
    }
    if depth > MAX_WALK_DEPTH {
        guard::explain(|| "ffi_type nesting too deep (or cyclic)".into());
        return Err(FFI_BAD_TYPEDEF);
    }
    // SAFETY: non-null, and readable by the caller's contract.
    let (code, elements) = unsafe { ((*t).type_, (*t).elements) };
    if let Some(s) = scalar(code) {
        return Ok(s);
    }
    match code {
        FFI_TYPE_COMPLEX => {
            let part = if elements.is_null() {
                std::ptr::null_mut()
            } else {
                // SAFETY: a non-null list has at least its first entry.
                unsafe { *elements }
            };
            // SAFETY: non-null element pointer of a valid list.
            let part_code = (!part.is_null()).then(|| unsafe { (*part).type_ });
            match part_code {
                Some(FFI_TYPE_FLOAT) => Ok(Type::complex_f32()),
                Some(FFI_TYPE_DOUBLE) => Ok(Type::complex_f64()),
                Some(FFI_TYPE_LONGDOUBLE) => Ok(Type::complex_long_double()),
                _ => {
                    guard::explain(|| {
                        format!("complex type whose part (type code {part_code:?}) is not float, double or long double")
                    });
                    Err(FFI_BAD_TYPEDEF)
                }
            }
        }
        FFI_TYPE_STRUCT => {
            if elements.is_null() {
                guard::explain(|| "struct type without an element list".into());
                return Err(FFI_BAD_TYPEDEF);
            }
            let mut fields = Vec::new();
            let mut i = 0;
            loop {
                // SAFETY: the list is NULL-terminated and we stop at the
                // terminator, so `elements + i` is inside it.
                let e = unsafe { *elements.add(i) };
                if e.is_null() {
                    break;
                }
                // SAFETY: a member of a valid description.
                fields.push(unsafe { convert(e, depth + 1) }?);
                i += 1;
            }
            let ty = Type::structure(fields).map_err(|e| {
                guard::explain(|| e.to_string());
                status_of(&e)
            })?;
            // SAFETY: readable (checked above); written only when the
            // caller left the size to us, and then it is writable.
            unsafe {
                if (*t).size == 0 {
                    (*t).size = ty.size();
                    (*t).alignment = ty.align() as u16;
                } else if (*t).size != ty.size() || usize::from((*t).alignment) != ty.align() {
                    let (size, align) = ((*t).size, (*t).alignment);
                    guard::explain(|| {
                        format!(
                            "struct {ty} given size {size} and alignment {align}; C lays its members out in {} bytes aligned to {} (packed or padded structs are not supported)",
                            ty.size(),
                            ty.align()
                        )
                    });
                    return Err(FFI_BAD_TYPEDEF);
                }
            }
            Ok(ty)
        }
        _ => {
            guard::explain(|| format!("unknown ffi_type code {code}"));
            Err(FFI_BAD_TYPEDEF)
        }
    }
}

/// End of a struct's member list in a key.
const END: u64 = u64::MAX;

/// Low half of a key word that refers back to an aggregate walked before
/// at the top level (the high half: which one, from 1): not a type code
/// of an aggregate, and with its high half set, no scalar's word either.
const REF: u64 = 0xfffe;

/// Top-level aggregates a key remembers for back references.
const SEEN: usize = 4;

/// Largest argument count a key describes (the header has 24 bits for
/// it); beyond it a signature takes the slow path every time.
const MAX_KEY_ARGS: u32 = 0xff_ffff;

/// Why [`KeyWriter`] produced no key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeyFail {
    /// The description cannot be keyed: a null pointer, a struct still to
    /// be laid out (size 0), an oversized or too deep tree. Such
    /// signatures take the slow path, which lays them out or reports the
    /// exact error.
    Unkeyable,
    /// The buffer is too small for the key.
    Overflow,
}

/// Where a key is being written: copied in and out of the out-of-line
/// steps so that it lives in registers.
#[derive(Clone, Copy)]
struct Cursor {
    p: *mut MaybeUninit<u64>,
    cap: usize,
    len: usize,
    hash: u64,
}

impl Cursor {
    #[inline(always)]
    fn push(&mut self, w: u64) -> Result<(), KeyFail> {
        if self.len == self.cap {
            return Err(KeyFail::Overflow);
        }
        // SAFETY: `p` has `cap` writable words and `len < cap`.
        unsafe { (*self.p.add(self.len)).write(w) };
        self.len += 1;
        self.hash = self.hash.rotate_left(5) ^ w;
        Ok(())
    }

    /// Appends the return type or an argument type: a scalar's code, an
    /// aggregate's tree, or, for an aggregate at the same address as one
    /// of the first [`SEEN`] walked at the top level (in `seen`), a
    /// reference to it. One address is one content while `ffi_prep_cif`
    /// runs, so the reference stands for the same tree; equal contents
    /// at different addresses are simply walked twice (addresses are
    /// never used to tell types apart).
    ///
    /// # Safety
    /// As [`KeyWriter::signature`] for `t`.
    #[inline(always)]
    unsafe fn top(
        &mut self,
        t: *const ffi_type,
        seen: &mut [*const ffi_type; SEEN],
    ) -> Result<(), KeyFail> {
        if t.is_null() {
            return Err(KeyFail::Unkeyable);
        }
        // SAFETY: non-null and readable by the caller's contract.
        let code = unsafe { (*t).type_ };
        if code != FFI_TYPE_STRUCT && code != FFI_TYPE_COMPLEX {
            return self.push(u64::from(code));
        }
        for (j, p) in seen.iter_mut().enumerate() {
            if *p == t {
                return self.push(REF | (j as u64 + 1) << 32);
            }
            if p.is_null() {
                // SAFETY: forwarded.
                unsafe { self.aggregate(t, 0) }?;
                *p = t;
                return Ok(());
            }
        }
        // SAFETY: forwarded.
        unsafe { self.aggregate(t, 0) }
    }

    /// Appends a struct or complex tree (`t` non-null). Inlined one level:
    /// only a nested aggregate costs a call.
    ///
    /// # Safety
    /// As [`KeyWriter::signature`] for `t`.
    #[inline(always)]
    unsafe fn aggregate(&mut self, t: *const ffi_type, depth: usize) -> Result<(), KeyFail> {
        if depth > MAX_WALK_DEPTH {
            return Err(KeyFail::Unkeyable);
        }
        // SAFETY: non-null and readable by the caller's contract.
        let (size, align, code, elements) =
            unsafe { ((*t).size, (*t).alignment, (*t).type_, (*t).elements) };
        if size == 0 || size > u32::MAX as usize || elements.is_null() {
            return Err(KeyFail::Unkeyable);
        }
        self.push(u64::from(code) | u64::from(align) << 16 | (size as u64) << 32)?;
        if code == FFI_TYPE_COMPLEX {
            // SAFETY: a non-null list has at least its first entry.
            let part = unsafe { *elements };
            if part.is_null() {
                return Err(KeyFail::Unkeyable);
            }
            // SAFETY: a valid element pointer; only its code matters.
            return self.push(u64::from(unsafe { (*part).type_ }));
        }
        let mut i = 0;
        loop {
            // SAFETY: NULL-terminated list, read up to the terminator.
            let e = unsafe { *elements.add(i) };
            if e.is_null() {
                break;
            }
            i += 1;
            // SAFETY: a member of a valid description.
            let code = unsafe { (*e).type_ };
            if code == FFI_TYPE_STRUCT || code == FFI_TYPE_COMPLEX {
                // SAFETY: forwarded.
                *self = unsafe { nested(*self, e, depth + 1) }?;
            } else {
                self.push(u64::from(code))?;
            }
        }
        self.push(END)
    }
}

/// A nested aggregate, out of line (the recursion).
///
/// # Safety
/// As [`KeyWriter::signature`] for `t` (non-null).
#[inline(never)]
unsafe fn nested(mut c: Cursor, t: *const ffi_type, depth: usize) -> Result<Cursor, KeyFail> {
    // SAFETY: forwarded.
    unsafe { c.aggregate(t, depth) }?;
    Ok(c)
}

/// Builds a signature's structural key into a caller's buffer (on the
/// stack, on the fast path): no allocation, no thread-local.
///
/// The words, in prefix order:
///
/// - a header: ABI, argument count, a variadic flag (then the fixed
///   count in a word of its own);
/// - a scalar: its type code alone, which is all the conversion reads of
///   it (size and alignment of a scalar come from the code);
/// - a struct: code, alignment and size in one word (a struct's given
///   layout is checked against its members', so it belongs to the key),
///   its members, then an end marker;
/// - a complex type: code, alignment and size, then its part's code;
/// - the return type or an argument type that is the same `ffi_type`
///   object (same address) as one of the first four aggregates met
///   among them: a reference to that one's tree, which is not walked
///   again (S6's three `{double, double}`, or a struct passed and
///   returned).
///
/// Scalar words are below 2^16, a struct word has its size (never 0) in
/// the high half and code 13 or 15 in the low half, a reference has
/// neither, so the encoding is prefix-free: two descriptions with the
/// same key convert to the same jitffi signature. Types are read by
/// content only, never told apart by address (two addresses may hold
/// the same type; one address holds one type while a preparation runs).
///
/// The running hash is a rotate-xor chain (one cycle a word), mixed once
/// in [`KeyWriter::finish`].
pub struct KeyWriter<'a> {
    buf: &'a mut [MaybeUninit<u64>],
    len: usize,
    hash: u64,
}

impl<'a> KeyWriter<'a> {
    /// An empty key writing into `buf`.
    #[inline(always)]
    pub fn new(buf: &'a mut [MaybeUninit<u64>]) -> Self {
        KeyWriter {
            buf,
            len: 0,
            hash: 0,
        }
    }

    /// The words written.
    #[inline(always)]
    pub fn words(&self) -> &[u64] {
        let init = &self.buf[..self.len];
        // SAFETY: the first `len` words were written by `push`, and
        // `MaybeUninit<u64>` has `u64`'s layout.
        unsafe { &*(init as *const [MaybeUninit<u64>] as *const [u64]) }
    }

    /// The hash of the words, well mixed in its high bits.
    #[inline(always)]
    pub fn finish(&self) -> u64 {
        mix(self.hash ^ self.len as u64)
    }

    /// Writes the key of a whole signature: `abi`, `nargs` arguments of
    /// which `fixed` are fixed (for a variadic one, already clamped to
    /// `nargs`), the return type, the argument types.
    ///
    /// # Safety
    /// `rtype` null or readable as [`ffi_type_to_jitffi`] wants it;
    /// `atypes` null or `nargs` readable entries, each null or such a
    /// description. Only reads.
    #[inline(always)]
    pub unsafe fn signature(
        &mut self,
        abi: ffi_abi,
        nargs: u32,
        fixed: Option<u32>,
        rtype: *const ffi_type,
        atypes: *const *mut ffi_type,
    ) -> Result<(), KeyFail> {
        if nargs > MAX_KEY_ARGS || (nargs > 0 && atypes.is_null()) {
            return Err(KeyFail::Unkeyable);
        }
        let mut c = Cursor {
            p: self.buf.as_mut_ptr(),
            cap: self.buf.len(),
            len: 0,
            hash: 0,
        };
        let variadic = u64::from(fixed.is_some()) << 63;
        c.push(u64::from(abi) | u64::from(nargs) << 32 | variadic)?;
        if let Some(f) = fixed {
            c.push(u64::from(f))?;
        }
        let mut seen = [std::ptr::null(); SEEN];
        // SAFETY: forwarded.
        unsafe { c.top(rtype, &mut seen) }?;
        for i in 0..nargs as usize {
            // SAFETY: `atypes` has `nargs` readable entries; forwarded.
            unsafe { c.top(*atypes.add(i), &mut seen) }?;
        }
        (self.len, self.hash) = (c.len, c.hash);
        Ok(())
    }
}

/// Finishes a hash: a multiply spreads every input bit into the high
/// bits, which pick the probe slot.
#[inline(always)]
pub fn mix(h: u64) -> u64 {
    h.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The header flag of a [`packed_key`] (a [`KeyWriter`] header has its
/// argument count in bits 32..56 and its variadic flag in bit 63, never
/// this bit).
pub const PACKED: u64 = 1 << 62;

/// Most arguments a [`packed_key`] holds: with the return type, 15
/// nibbles, clear of the top four bits of a word.
pub const PACKED_MAX_ARGS: u32 = 14;

/// The key of a signature made only of scalars, with at most
/// [`PACKED_MAX_ARGS`] arguments: the whole key in two words, without
/// touching memory but the types. `None` for anything else (aggregates,
/// null pointers, unknown codes, more arguments), which a [`KeyWriter`]
/// keys or the slow path refuses.
///
/// The words: `header ^ codes`, then `codes`: the header has the
/// [`PACKED`] flag, the ABI, the argument count and the fixed count + 1
/// for a variadic signature; `codes` the type codes as 4-bit nibbles, the
/// return type's first. The argument count fixes how many nibbles there
/// are, so the pair is injective; the first word is what is hashed, and
/// being compared in place of the header it keeps one register free on
/// the fast path. `codes` is below 2^60, so the first word keeps the
/// header's flag, which keeps packed keys apart from [`KeyWriter`]'s.
///
/// # Safety
/// As [`KeyWriter::signature`].
#[inline(always)]
pub unsafe fn packed_key(
    abi: ffi_abi,
    nargs: u32,
    fixed: Option<u32>,
    rtype: *const ffi_type,
    atypes: *const *mut ffi_type,
) -> Option<[u64; 2]> {
    if nargs > PACKED_MAX_ARGS || rtype.is_null() {
        return None;
    }
    // SAFETY: non-null, readable by the caller's contract.
    let mut codes = packable(unsafe { (*rtype).type_ })?;
    if nargs > 0 {
        if atypes.is_null() {
            return None;
        }
        let mut i = 0;
        while i < nargs {
            // SAFETY: `atypes` has `nargs` readable entries.
            codes = codes << 4 | unsafe { packable_at(atypes, i as usize) }?;
            i += 1;
        }
    }
    // The fixed count + 1 (at most 15) in bits 0..4, the ABI in 24..56,
    // the count (at most 14) in 56..60: `abi | nargs << 32` shifted, the
    // word `ffi_cif` starts with, so the fast path keeps one value for
    // both.
    let fixed = fixed.map_or(0, |f| u64::from(f) + 1);
    let header = PACKED | (u64::from(abi) | u64::from(nargs) << 32) << 24 | fixed;
    Some([header ^ codes, codes])
}

/// The packable code of argument type `i`.
///
/// # Safety
/// `atypes` has more than `i` readable entries, each null or a readable
/// `ffi_type`.
#[inline(always)]
unsafe fn packable_at(atypes: *const *mut ffi_type, i: usize) -> Option<u64> {
    // SAFETY: by the contract.
    let t = unsafe { *atypes.add(i) };
    if t.is_null() {
        return None;
    }
    // SAFETY: non-null and readable by the caller's contract.
    packable(unsafe { (*t).type_ })
}

/// A scalar's code, if it is one a packed key holds: below 16, not a
/// struct (13) or complex (15) type. Setting bit 1 maps exactly those
/// codes to 14 or less (13 and 15 both become 15).
#[inline(always)]
fn packable(code: u16) -> Option<u64> {
    const _: () = assert!(FFI_TYPE_STRUCT | 2 == 15 && FFI_TYPE_COMPLEX | 2 == 15);
    const _: () = assert!(FFI_TYPE_POINTER | 2 == 14);
    (code | 2 < 15).then_some(u64::from(code))
}

/// The hash of a packed key: one multiply.
#[inline(always)]
pub fn packed_hash(k: &[u64; 2]) -> u64 {
    mix(k[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr::addr_of_mut;

    #[test]
    fn scalars_convert_by_code() {
        // SAFETY: the exported objects are valid, immutable descriptions.
        unsafe {
            assert_eq!(
                ffi_type_to_jitffi(addr_of_mut!(ffi_type_sint16)),
                Ok(Type::i16())
            );
            assert_eq!(
                ffi_type_to_jitffi(addr_of_mut!(ffi_type_complex_double)),
                Ok(Type::complex_f64())
            );
        }
        let mut int = ffi_type {
            size: 4,
            alignment: 4,
            type_: FFI_TYPE_INT,
            elements: null_mut(),
        };
        // SAFETY: a local, valid description.
        assert_eq!(unsafe { ffi_type_to_jitffi(&mut int) }, Ok(Type::i32()));
    }

    #[test]
    fn unsized_struct_is_laid_out() {
        let mut members = [
            addr_of_mut!(ffi_type_uint8),
            addr_of_mut!(ffi_type_double),
            addr_of_mut!(ffi_type_sint16),
            null_mut(),
        ];
        let mut s = ffi_type {
            size: 0,
            alignment: 0,
            type_: FFI_TYPE_STRUCT,
            elements: members.as_mut_ptr(),
        };
        // SAFETY: a local, valid, writable description.
        let t = unsafe { ffi_type_to_jitffi(&mut s) }.unwrap();
        assert_eq!((s.size, s.alignment), (24, 8));
        assert_eq!(t.field_offsets(), Some(&[0, 8, 16][..]));
        s.size = 32;
        // SAFETY: as above.
        assert_eq!(unsafe { ffi_type_to_jitffi(&mut s) }, Err(FFI_BAD_TYPEDEF));
    }

    #[test]
    fn malformed_types_are_bad_typedefs() {
        let mut none = [null_mut::<ffi_type>()];
        let mut empty = ffi_type {
            size: 0,
            alignment: 0,
            type_: FFI_TYPE_STRUCT,
            elements: none.as_mut_ptr(),
        };
        let mut no_list = ffi_type {
            size: 0,
            alignment: 0,
            type_: FFI_TYPE_STRUCT,
            elements: null_mut(),
        };
        let mut unknown = ffi_type {
            size: 4,
            alignment: 4,
            type_: 99,
            elements: null_mut(),
        };
        let mut int_part = [addr_of_mut!(ffi_type_sint32), null_mut()];
        let mut bad_complex = ffi_type {
            size: 8,
            alignment: 4,
            type_: FFI_TYPE_COMPLEX,
            elements: int_part.as_mut_ptr(),
        };
        for t in [&mut empty, &mut no_list, &mut unknown, &mut bad_complex] {
            // SAFETY: local descriptions, valid to read and write.
            assert_eq!(unsafe { ffi_type_to_jitffi(t) }, Err(FFI_BAD_TYPEDEF));
        }
        // SAFETY: null is allowed.
        assert_eq!(
            unsafe { ffi_type_to_jitffi(null_mut()) },
            Err(FFI_BAD_TYPEDEF)
        );
    }

    /// The key of `sig(abi 2, rtype, args)` in a fresh buffer, and its hash.
    fn key_of(rtype: *const ffi_type, args: &[*mut ffi_type]) -> Result<(Vec<u64>, u64), KeyFail> {
        let mut buf = [MaybeUninit::uninit(); 64];
        let mut k = KeyWriter::new(&mut buf);
        // SAFETY: local or static, valid descriptions.
        unsafe { k.signature(2, args.len() as u32, None, rtype, args.as_ptr()) }?;
        Ok((k.words().to_vec(), k.finish()))
    }

    #[test]
    fn keys_are_structural() {
        let (i32p, f64p) = (addr_of_mut!(ffi_type_sint32), addr_of_mut!(ffi_type_double));
        let mut m1 = [i32p, f64p, null_mut()];
        let mut m2 = [i32p, f64p, null_mut()];
        let mut m3 = [f64p, i32p, null_mut()];
        let mk = |m: &mut [*mut ffi_type; 3]| ffi_type {
            size: 16,
            alignment: 8,
            type_: FFI_TYPE_STRUCT,
            elements: m.as_mut_ptr(),
        };
        let (mut a, mut b, mut c) = (mk(&mut m1), mk(&mut m2), mk(&mut m3));
        let void = addr_of_mut!(ffi_type_void);
        assert_eq!(key_of(void, &[&mut a]), key_of(void, &[&mut b]));
        assert_ne!(key_of(void, &[&mut a]), key_of(void, &[&mut c]));
        // A copy of a scalar type object (a copy relocation) is the same type.
        // SAFETY: reading an exported, immutable description.
        let mut copy = unsafe { std::ptr::read(addr_of_mut!(ffi_type_sint32)) };
        assert_eq!(key_of(void, &[i32p]), key_of(void, &[&mut copy]));
        // Given layout is part of a struct's key.
        let mut d = mk(&mut m1);
        d.size = 24;
        assert_ne!(key_of(void, &[&mut a]), key_of(void, &[&mut d]));
        // Member lists are delimited: {{int}, int} is not {{int, int}}.
        let mut one = [i32p, null_mut()];
        let mut two = [i32p, i32p, null_mut()];
        let mut inner1 = ffi_type {
            size: 4,
            alignment: 4,
            type_: FFI_TYPE_STRUCT,
            elements: one.as_mut_ptr(),
        };
        let mut inner2 = ffi_type {
            size: 8,
            alignment: 4,
            type_: FFI_TYPE_STRUCT,
            elements: two.as_mut_ptr(),
        };
        let mut outer1_m = [&mut inner1 as *mut ffi_type, i32p, null_mut()];
        let mut outer2_m = [&mut inner2 as *mut ffi_type, null_mut(), null_mut()];
        let outer = |m: &mut [*mut ffi_type; 3]| ffi_type {
            size: 8,
            alignment: 4,
            type_: FFI_TYPE_STRUCT,
            elements: m.as_mut_ptr(),
        };
        let (mut o1, mut o2) = (outer(&mut outer1_m), outer(&mut outer2_m));
        assert_ne!(key_of(void, &[&mut o1]), key_of(void, &[&mut o2]));
        let mut open = mk(&mut m1);
        open.size = 0;
        assert_eq!(key_of(void, &[&mut open]), Err(KeyFail::Unkeyable));
        assert_eq!(key_of(null_mut(), &[]), Err(KeyFail::Unkeyable));
        assert_eq!(key_of(void, &[null_mut()]), Err(KeyFail::Unkeyable));
    }

    #[test]
    fn small_buffers_overflow() {
        let args = [addr_of_mut!(ffi_type_sint32); 10];
        let mut buf = [MaybeUninit::uninit(); 8];
        let mut k = KeyWriter::new(&mut buf);
        // SAFETY: static, valid descriptions.
        let r = unsafe { k.signature(2, 10, None, addr_of_mut!(ffi_type_void), args.as_ptr()) };
        assert_eq!(r, Err(KeyFail::Overflow));
        let (words, _) = key_of(addr_of_mut!(ffi_type_void), &args).unwrap();
        assert_eq!(words.len(), 12);
    }

    #[test]
    fn variadic_and_abi_are_in_the_header() {
        let args = [addr_of_mut!(ffi_type_sint32); 3];
        let key = |abi, fixed| {
            let mut buf = [MaybeUninit::uninit(); 16];
            let mut k = KeyWriter::new(&mut buf);
            // SAFETY: static, valid descriptions.
            unsafe { k.signature(abi, 3, fixed, addr_of_mut!(ffi_type_void), args.as_ptr()) }
                .unwrap();
            k.words().to_vec()
        };
        let all = [key(2, None), key(3, None), key(2, Some(1)), key(2, Some(3))];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    fn packed(
        abi: ffi_abi,
        fixed: Option<u32>,
        rtype: *const ffi_type,
        args: &[*mut ffi_type],
    ) -> Option<[u64; 2]> {
        // SAFETY: static or local, valid descriptions.
        unsafe { packed_key(abi, args.len() as u32, fixed, rtype, args.as_ptr()) }
    }

    #[test]
    fn packed_keys_tell_signatures_apart() {
        let (i32p, f64p, ptr, void) = (
            addr_of_mut!(ffi_type_sint32),
            addr_of_mut!(ffi_type_double),
            addr_of_mut!(ffi_type_pointer),
            addr_of_mut!(ffi_type_void),
        );
        let keys = [
            packed(2, None, void, &[]),
            packed(2, None, void, &[i32p]),
            packed(2, None, i32p, &[]),
            packed(2, None, i32p, &[i32p]),
            packed(2, None, void, &[void]),
            packed(2, None, void, &[i32p, f64p]),
            packed(2, None, void, &[f64p, i32p]),
            packed(3, None, void, &[i32p, f64p]),
            packed(2, Some(1), void, &[i32p, f64p]),
            packed(2, Some(2), void, &[i32p, f64p]),
            packed(2, None, ptr, &[ptr; 14]),
            packed(2, None, ptr, &[ptr; 13]),
            packed(0x1_0002, None, void, &[]),
        ];
        for (i, a) in keys.iter().enumerate() {
            let a = a.expect("scalar signatures pack");
            // Apart from word keys: the flag is set, bit 63 clear.
            assert_eq!(a[0] >> 62, 1, "key {i}");
            for b in &keys[i + 1..] {
                assert_ne!(a, b.unwrap(), "key {i}");
            }
        }
        // Copies of a scalar type object are the same type.
        // SAFETY: reading an exported, immutable description.
        let mut copy = unsafe { std::ptr::read(i32p) };
        assert_eq!(
            packed(2, None, void, &[i32p]),
            packed(2, None, void, &[&mut copy])
        );
    }

    #[test]
    fn packed_keys_refuse_what_they_cannot_hold() {
        let (i32p, void) = (addr_of_mut!(ffi_type_sint32), addr_of_mut!(ffi_type_void));
        let mut members = [i32p, null_mut()];
        let mut s = ffi_type {
            size: 4,
            alignment: 4,
            type_: FFI_TYPE_STRUCT,
            elements: members.as_mut_ptr(),
        };
        let mut odd = ffi_type {
            size: 4,
            alignment: 4,
            type_: 16 + FFI_TYPE_SINT32,
            elements: null_mut(),
        };
        let complex = addr_of_mut!(ffi_type_complex_double);
        assert_eq!(packed(2, None, void, &[&mut s]), None);
        assert_eq!(packed(2, None, &s, &[]), None);
        assert_eq!(packed(2, None, void, &[complex]), None);
        assert_eq!(packed(2, None, void, &[&mut odd]), None);
        assert_eq!(packed(2, None, void, &[null_mut()]), None);
        assert_eq!(packed(2, None, null_mut(), &[]), None);
        assert_eq!(packed(2, None, void, &[i32p; 15]), None);
        // SAFETY: a null array with arguments is refused before any read.
        assert_eq!(
            unsafe { packed_key(2, 1, None, void, std::ptr::null()) },
            None
        );
        assert!(packed(2, None, void, &[i32p; 14]).is_some());
    }

    #[test]
    fn repeated_aggregates_are_referenced() {
        let f64p = addr_of_mut!(ffi_type_double);
        let mut m = [f64p, f64p, null_mut()];
        let mk = |m: &mut [*mut ffi_type; 3]| ffi_type {
            size: 16,
            alignment: 8,
            type_: FFI_TYPE_STRUCT,
            elements: m.as_mut_ptr(),
        };
        let (mut a, mut a2) = (mk(&mut m), mk(&mut m));
        let (pa, pa2): (*mut ffi_type, *mut ffi_type) = (&mut a, &mut a2);
        let mut other_m = [addr_of_mut!(ffi_type_sint64), f64p, null_mut()];
        let mut b = mk(&mut other_m);
        let pb: *mut ffi_type = &mut b;
        let words = |r, args: &[*mut ffi_type]| key_of(r, args).unwrap().0;
        // The same object again: a reference to the first tree walked.
        let same = words(pa, &[pa, pa]);
        assert_eq!(same.len(), 1 + 4 + 2);
        assert_eq!(same[5], REF | 1 << 32);
        // An equal tree elsewhere is walked: another key (of the same
        // signature).
        assert_eq!(words(pa, &[pa2, pa2]).len(), 1 + 4 + 4 + 1);
        // References say which tree: A(A, B, B) is not A(B, A, A).
        let abb = words(pa, &[pa, pb, pb]);
        let baa = words(pa, &[pb, pa, pa]);
        assert_ne!(abb, baa);
        assert_eq!(
            &abb[5..],
            &[REF | 1 << 32, abb[6], abb[7], abb[8], abb[9], REF | 2 << 32]
        );
        assert_eq!(&baa[9..], &[REF | 1 << 32, REF | 1 << 32]);
        // Only the first SEEN aggregates are remembered.
        let mut more: Vec<ffi_type> = (0..SEEN + 1).map(|_| mk(&mut m)).collect();
        let mut ptrs: Vec<*mut ffi_type> = more.iter_mut().map(|t| t as *mut ffi_type).collect();
        ptrs.push(ptrs[SEEN]);
        ptrs.push(ptrs[0]);
        let w = words(addr_of_mut!(ffi_type_void), &ptrs);
        assert_eq!(w.len(), 2 + 4 * (SEEN + 2) + 1);
        assert_eq!(*w.last().unwrap(), REF | 1 << 32);
    }
}
