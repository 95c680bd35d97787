//! The C types of `oracle/c/oracles.c` as jitffi [`Type`]s (the scalars
//! under their short C names and every named struct and union shape), and
//! what the closure tests need to handle values of them: seeded values,
//! masks of the meaningful bytes, aligned buffers.
//!
//! Included by path (`#[path = "support/shapes.rs"] mod shapes;`) from the
//! tests that call the oracles, so each shape is spelled once.

#![allow(dead_code)]

use std::ffi::c_void;

use jitffi::{Type, TypeKind};

pub fn void() -> Type {
    Type::void()
}
pub fn i8() -> Type {
    Type::i8()
}
pub fn u8() -> Type {
    Type::u8()
}
pub fn i16() -> Type {
    Type::i16()
}
pub fn u16() -> Type {
    Type::u16()
}
pub fn i32() -> Type {
    Type::i32()
}
pub fn u32() -> Type {
    Type::u32()
}
pub fn i64() -> Type {
    Type::i64()
}
pub fn u64() -> Type {
    Type::u64()
}
pub fn i128() -> Type {
    Type::i128()
}
pub fn u128() -> Type {
    Type::u128()
}
pub fn f32() -> Type {
    Type::f32()
}
pub fn f64() -> Type {
    Type::f64()
}
pub fn f80() -> Type {
    Type::long_double()
}
pub fn ptr() -> Type {
    Type::pointer()
}
pub fn cf32() -> Type {
    Type::complex_f32()
}
pub fn cf64() -> Type {
    Type::complex_f64()
}
pub fn cf80() -> Type {
    Type::complex_long_double()
}
pub fn st<const N: usize>(fields: [Type; N]) -> Type {
    Type::structure(fields).expect("valid struct")
}
pub fn un<const N: usize>(fields: [Type; N]) -> Type {
    Type::union(fields).expect("valid union")
}
pub fn arr(elem: Type, len: usize) -> Type {
    Type::array(elem, len).expect("valid array")
}

/// `struct { double d; int32_t i; }`: xmm + gpr.
pub fn s_di() -> Type {
    st([f64(), i32()])
}
/// `struct { float a, b, c; }`: xmm (a, b) + xmm (c).
pub fn s_fff() -> Type {
    st([f32(), f32(), f32()])
}
/// `struct { int32_t a, b, c; }`: gpr + gpr (4 bytes).
pub fn s_iii() -> Type {
    st([i32(), i32(), i32()])
}
/// `struct { char a, b, c; }`: 3 bytes in one gpr.
pub fn s_ccc() -> Type {
    st([i8(), i8(), i8()])
}
/// `struct { char c[3]; }`.
pub fn s_c3() -> Type {
    st([arr(i8(), 3)])
}
/// `struct { float f[4]; }`: xmm + xmm.
pub fn s_f4() -> Type {
    st([arr(f32(), 4)])
}
/// `struct { int16_t s; char c; int32_t i; char d; }`: 12 bytes, padded.
pub fn s_scic() -> Type {
    st([i16(), i8(), i32(), i8()])
}
/// `struct { double a, b; }` (benchmark S6).
pub fn s_dd() -> Type {
    st([f64(), f64()])
}
/// `struct { int64_t a, b, c, d; }` (benchmark S7): memory, sret.
pub fn s_q4() -> Type {
    st([i64(), i64(), i64(), i64()])
}
/// `struct { int32_t i; double d; float f; int64_t q; }`: padded.
pub fn s_32() -> Type {
    st([i32(), f64(), f32(), i64()])
}
/// `struct { int32_t v[25]; }`.
pub fn s_100() -> Type {
    st([arr(i32(), 25)])
}
/// `struct { struct { float x, y; } p; double d; }`.
pub fn s_nest_ffd() -> Type {
    st([st([f32(), f32()]), f64()])
}
/// `struct { struct { char c; int16_t s; } a; struct { int32_t i; } b; float f; }`.
pub fn s_nest_mix() -> Type {
    st([st([i8(), i16()]), st([i32()]), f32()])
}
/// `struct { long double x; int32_t i; }`: memory.
pub fn s_ldi() -> Type {
    st([f80(), i32()])
}
/// `struct { long double x; }`: memory as an argument, st0 as a result.
pub fn s_ld1() -> Type {
    st([f80()])
}
/// `struct { int64_t a, b; }`.
pub fn s_ll() -> Type {
    st([i64(), i64()])
}
/// `struct { int64_t q; double d; }`: gpr + xmm.
pub fn s_qd() -> Type {
    st([i64(), f64()])
}
/// `struct { float f; int32_t i; }`: one INTEGER eightbyte.
pub fn s_fi() -> Type {
    st([f32(), i32()])
}
/// `struct { float a, b; }`: one SSE eightbyte.
pub fn s_ff() -> Type {
    st([f32(), f32()])
}
/// `struct { double a, b, c; }`: 24 bytes, memory.
pub fn s_ddd() -> Type {
    st([f64(), f64(), f64()])
}
/// `struct { uint8_t a; uint16_t b; uint8_t c; }`: 6 bytes, padded.
pub fn s_odd() -> Type {
    st([u8(), u16(), u8()])
}
/// `struct { __int128 x; }`.
pub fn s_i128() -> Type {
    st([i128()])
}
/// `union { float f; int32_t i; }`: INTEGER.
pub fn u_fi() -> Type {
    un([f32(), i32()])
}
/// `union { double d; int64_t l; }`: INTEGER.
pub fn u_dl() -> Type {
    un([f64(), i64()])
}
/// `union { char c[12]; int32_t i; }`: 2 x INTEGER.
pub fn u_c12i() -> Type {
    un([arr(i8(), 12), i32()])
}
/// `union { float f[2]; double d; }`: SSE.
pub fn u_fd() -> Type {
    un([arr(f32(), 2), f64()])
}

// ------------------------------------------------------- values and masks

/// splitmix64: a small seeded generator for values.
pub struct Rng(pub u64);

impl Rng {
    /// A generator seeded from a name and a salt.
    pub fn for_case(name: &str, salt: u64) -> Rng {
        let mut h = 0x6a09_e667_f3bc_c909u64 ^ salt;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Rng(h)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Random bytes for a whole `ty` (padding included), then a distinctive
/// value in every field: narrow integers with their top bit set (so a
/// missing or wrong extension shows), finite exact floats, normal
/// `long double` values. Union bytes stay random (the unions here have no padding and no
/// member a bit pattern could upset in transit).
pub fn value(ty: &Type, rng: &mut Rng) -> Vec<u8> {
    let mut out: Vec<u8> = (0..ty.size()).map(|_| rng.next() as u8).collect();
    fill(ty, &mut out, rng);
    out
}

fn fill(ty: &Type, out: &mut [u8], rng: &mut Rng) {
    let r = rng.next();
    match ty.kind() {
        TypeKind::U8 | TypeKind::I8 => out[0] = r as u8 | 0x80,
        TypeKind::U16 | TypeKind::I16 => {
            out[..2].copy_from_slice(&(r as u16 | 0x8000).to_le_bytes())
        }
        TypeKind::U32 | TypeKind::I32 => {
            out[..4].copy_from_slice(&(r as u32 | 0x8000_0000).to_le_bytes())
        }
        TypeKind::U64 | TypeKind::I64 | TypeKind::Pointer => {
            out[..8].copy_from_slice(&r.to_le_bytes())
        }
        TypeKind::U128 | TypeKind::I128 => {
            out[..8].copy_from_slice(&r.to_le_bytes());
            out[8..16].copy_from_slice(&rng.next().to_le_bytes());
        }
        TypeKind::F32 => {
            let v = ((r as i64) >> 40) as f32 / 16.0;
            out[..4].copy_from_slice(&v.to_le_bytes());
        }
        TypeKind::F64 => {
            let v = ((r as i64) >> 11) as f64 / 1024.0;
            out[..8].copy_from_slice(&v.to_le_bytes());
        }
        TypeKind::LongDouble => fill_ld(&mut out[..16], r),
        TypeKind::ComplexF32 => {
            fill(&f32(), &mut out[..4], rng);
            fill(&f32(), &mut out[4..8], rng);
        }
        TypeKind::ComplexF64 => {
            fill(&f64(), &mut out[..8], rng);
            fill(&f64(), &mut out[8..16], rng);
        }
        TypeKind::ComplexLongDouble => {
            fill_ld(&mut out[..16], r);
            fill_ld(&mut out[16..32], rng.next());
        }
        TypeKind::Struct { fields, offsets } => {
            for (f, &off) in fields.iter().zip(offsets) {
                fill(f, &mut out[off..off + f.size()], rng);
            }
        }
        TypeKind::Union { .. } | TypeKind::Void => {}
        TypeKind::Array { elem, len } => {
            let s = elem.size();
            for i in 0..*len {
                fill(elem, &mut out[i * s..(i + 1) * s], rng);
            }
        }
    }
}

/// Meaningful bytes of a `long double`: the 80-bit x87 format in 16 bytes
/// on x86-64, IEEE binary128 (all 16) on AArch64.
pub const LD_BYTES: usize = if cfg!(target_arch = "x86_64") { 10 } else { 16 };

/// A normal `long double` of modest exponent in the first [`LD_BYTES`] of
/// `out` (16 bytes; the x87 tail keeps its random bytes). x87: explicit
/// integer bit set. binary128: 15-bit exponent, 112-bit fraction, the top
/// 48 fraction bits from `r`, the low 64 a mix of it.
fn fill_ld(out: &mut [u8], r: u64) {
    let exp = 16383 - 40 + (r >> 7) % 80;
    let sign = (r >> 3) & 1;
    if LD_BYTES == 10 {
        let mantissa = r | (1 << 63);
        out[..8].copy_from_slice(&mantissa.to_le_bytes());
        out[8..10].copy_from_slice(&((sign << 15 | exp) as u16).to_le_bytes());
    } else {
        let high = sign << 63 | exp << 48 | (r >> 16);
        out[..8].copy_from_slice(
            &r.rotate_left(29)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .to_le_bytes(),
        );
        out[8..16].copy_from_slice(&high.to_le_bytes());
    }
}

/// Which bytes of a `ty` carry its value (padding and the unused tail of an
/// x87 long double do not).
pub fn mask(ty: &Type) -> Vec<bool> {
    let mut m = vec![false; ty.size()];
    mark(ty, &mut m);
    m
}

fn mark(ty: &Type, m: &mut [bool]) {
    match ty.kind() {
        TypeKind::Void => {}
        TypeKind::LongDouble => m[..LD_BYTES].fill(true),
        TypeKind::ComplexLongDouble => {
            m[..LD_BYTES].fill(true);
            m[16..16 + LD_BYTES].fill(true);
        }
        TypeKind::Struct { fields, offsets } => {
            for (f, &off) in fields.iter().zip(offsets) {
                mark(f, &mut m[off..off + f.size()]);
            }
        }
        TypeKind::Union { fields } => {
            for f in fields {
                mark(f, &mut m[..f.size()]);
            }
        }
        TypeKind::Array { elem, len } => {
            let s = elem.size();
            for i in 0..*len {
                mark(elem, &mut m[i * s..(i + 1) * s]);
            }
        }
        _ => m[..ty.size()].fill(true),
    }
}

/// `true` for the integers a libffi-form return widens to 8 bytes.
pub fn is_narrow_int(ty: &Type) -> bool {
    ty.is_integer_like() && ty.size() < 8
}

/// The bytes of a libffi-form return buffer that carry a `ty` result:
/// integers narrower than 8 bytes come back widened to 8 (`ffi_arg`).
pub fn ret_mask(ty: &Type) -> Vec<bool> {
    if is_narrow_int(ty) {
        vec![true; 8]
    } else {
        mask(ty)
    }
}

/// `bytes` of a narrow integer of type `ty`, sign- or zero-extended to the
/// 8 bytes of an `ffi_arg`.
pub fn widen(ty: &Type, bytes: &[u8]) -> Vec<u8> {
    let n = ty.size();
    let negative = ty.is_signed() && bytes[n - 1] & 0x80 != 0;
    let mut out = vec![if negative { 0xff } else { 0 }; 8];
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// `bytes` with the bytes outside `m` zeroed.
pub fn masked(bytes: &[u8], m: &[bool]) -> Vec<u8> {
    bytes
        .iter()
        .zip(m)
        .map(|(&b, &keep)| if keep { b } else { 0 })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A 16-aligned byte buffer, filled with one byte value to start.
pub struct Buf(Vec<u128>, usize);

impl Buf {
    pub fn new(len: usize, byte: u8) -> Buf {
        let mut b = Buf(vec![0; len.div_ceil(16).max(1)], len);
        b.bytes_mut().fill(byte);
        b
    }
    pub fn from_bytes(bytes: &[u8]) -> Buf {
        let mut b = Buf::new(bytes.len(), 0);
        b.bytes_mut().copy_from_slice(bytes);
        b
    }
    pub fn len(&self) -> usize {
        self.1
    }
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the vector holds at least `len` initialised bytes.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast(), self.1) }
    }
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `self` is borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast(), self.1) }
    }
    pub fn ptr(&mut self) -> *mut c_void {
        self.0.as_mut_ptr().cast()
    }
}
