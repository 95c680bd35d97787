//! Seeded random C signatures for differential testing and fuzzing.
//!
//! Everything here is abstract: shapes, C layouts and byte masks, with no
//! jitffi or libffi type inside, so the same generator drives the
//! differential test (from a seeded PRNG) and the fuzz target (from the
//! fuzzer's bytes). Conversions to real type descriptions live in
//! `support/ffi_convert.rs`.
//!
//! Included by path from `tests/differential.rs` (and through it by
//! `fuzz/fuzz_targets/differential.rs`) and `tests/closure_differential.rs`,
//! so it only uses `std`.

#![allow(dead_code)]

use std::fmt;

/// A stream of random decisions.
pub trait Source {
    /// 64 random bits.
    fn next_u64(&mut self) -> u64;

    /// A number in `0..n` (0 when `n <= 1`). A slight modulo bias is fine
    /// here: we want coverage, not statistics.
    fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }

    /// `true` with probability `num / den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// An index chosen with the given relative weights.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| w as u64).sum();
        let mut pick = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if pick < w as u64 {
                return i;
            }
            pick -= w as u64;
        }
        weights.len() - 1
    }
}

/// The splitmix64 generator: tiny, fast and good enough to spread seeds.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The generator for case `index` of a run seeded with `seed`, so any
    /// single case can be regenerated without replaying the ones before it.
    pub fn for_case(seed: u64, index: u64) -> Self {
        let mut outer = SplitMix64::new(seed ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03));
        SplitMix64::new(outer.next_u64())
    }
}

impl Source for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Decisions read from a fuzzer's input, like `arbitrary::Unstructured`:
/// each choice consumes as few bytes as it needs, and an exhausted input
/// reads as zeros, so every input (even an empty one) yields a valid,
/// small signature.
#[derive(Clone, Debug)]
pub struct ByteReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        ByteReader { data, pos: 0 }
    }

    /// `true` once every byte has been consumed.
    pub fn is_exhausted(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn take(&mut self, n: usize) -> u64 {
        let mut v = 0u64;
        for i in 0..n {
            let b = self.data.get(self.pos).copied().unwrap_or(0);
            self.pos = (self.pos + 1).min(self.data.len());
            v |= (b as u64) << (8 * i);
        }
        v
    }
}

impl Source for ByteReader<'_> {
    fn next_u64(&mut self) -> u64 {
        self.take(8)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        let bytes = (64 - (n - 1).leading_zeros()).div_ceil(8) as usize;
        self.take(bytes) % n
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.take(1) as u8;
        }
    }
}

/// Meaningful bytes of a `long double`: the 80-bit x87 format in 16 bytes
/// on x86-64, IEEE binary128 (all 16) on AArch64.
pub const LD_BYTES: usize = if cfg!(target_arch = "x86_64") { 10 } else { 16 };

/// A C scalar type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scalar {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    /// x87 80-bit extended in a 16-byte slot (x86-64); IEEE binary128
    /// (AArch64).
    LongDouble,
    Pointer,
    ComplexF32,
    ComplexF64,
    ComplexLongDouble,
}

impl Scalar {
    /// Every scalar, for exhaustive loops.
    pub const ALL: [Scalar; 15] = [
        Scalar::U8,
        Scalar::I8,
        Scalar::U16,
        Scalar::I16,
        Scalar::U32,
        Scalar::I32,
        Scalar::U64,
        Scalar::I64,
        Scalar::F32,
        Scalar::F64,
        Scalar::LongDouble,
        Scalar::Pointer,
        Scalar::ComplexF32,
        Scalar::ComplexF64,
        Scalar::ComplexLongDouble,
    ];

    /// `sizeof`.
    pub fn size(self) -> usize {
        match self {
            Scalar::U8 | Scalar::I8 => 1,
            Scalar::U16 | Scalar::I16 => 2,
            Scalar::U32 | Scalar::I32 | Scalar::F32 => 4,
            Scalar::U64 | Scalar::I64 | Scalar::F64 | Scalar::Pointer | Scalar::ComplexF32 => 8,
            Scalar::LongDouble | Scalar::ComplexF64 => 16,
            Scalar::ComplexLongDouble => 32,
        }
    }

    /// `_Alignof`.
    pub fn align(self) -> usize {
        match self {
            Scalar::ComplexF32 => 4,
            Scalar::ComplexF64 => 8,
            Scalar::ComplexLongDouble => 16,
            s => s.size(),
        }
    }

    /// Integer types (not pointers).
    pub fn is_int(self) -> bool {
        matches!(
            self,
            Scalar::U8
                | Scalar::I8
                | Scalar::U16
                | Scalar::I16
                | Scalar::U32
                | Scalar::I32
                | Scalar::U64
                | Scalar::I64
        )
    }

    /// Signed integer types.
    pub fn is_signed(self) -> bool {
        matches!(self, Scalar::I8 | Scalar::I16 | Scalar::I32 | Scalar::I64)
    }

    /// The type C's default argument promotions turn this into when it is
    /// passed through `...`.
    pub fn promoted(self) -> Scalar {
        match self {
            Scalar::U8 | Scalar::I8 | Scalar::U16 | Scalar::I16 => Scalar::I32,
            Scalar::F32 => Scalar::F64,
            s => s,
        }
    }

    /// C spelling.
    pub fn c_name(self) -> &'static str {
        match self {
            Scalar::U8 => "uint8_t",
            Scalar::I8 => "int8_t",
            Scalar::U16 => "uint16_t",
            Scalar::I16 => "int16_t",
            Scalar::U32 => "uint32_t",
            Scalar::I32 => "int32_t",
            Scalar::U64 => "uint64_t",
            Scalar::I64 => "int64_t",
            Scalar::F32 => "float",
            Scalar::F64 => "double",
            Scalar::LongDouble => "long double",
            Scalar::Pointer => "void *",
            Scalar::ComplexF32 => "float _Complex",
            Scalar::ComplexF64 => "double _Complex",
            Scalar::ComplexLongDouble => "long double _Complex",
        }
    }

    /// Marks the bytes that carry the value: all of them, except (x86-64)
    /// the six padding bytes after each 10-byte x87 extended number.
    fn mark(self, mask: &mut [bool]) {
        match self {
            Scalar::LongDouble => mask[..LD_BYTES].fill(true),
            Scalar::ComplexLongDouble => {
                mask[..LD_BYTES].fill(true);
                mask[16..16 + LD_BYTES].fill(true);
            }
            s => mask[..s.size()].fill(true),
        }
    }

    /// Offsets of the `long double` numbers inside this scalar.
    fn x87_parts(self) -> &'static [usize] {
        match self {
            Scalar::LongDouble => &[0],
            Scalar::ComplexLongDouble => &[0, 16],
            _ => &[],
        }
    }
}

/// A C type: a scalar or a struct.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    Scalar(Scalar),
    Struct(Vec<Member>),
}

/// One struct member, possibly repeated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    pub shape: Shape,
    /// How many times the member occurs in a row (at least 1).
    pub count: usize,
    /// With `count > 1`: declared as the array `shape[count]` rather than
    /// as `count` separate fields. C lays out and classifies both the same,
    /// which is what lets a libffi description (no arrays) stand in for a
    /// jitffi one (with arrays).
    pub as_array: bool,
}

/// A scalar shape, for hand-written signatures.
pub fn sc(s: Scalar) -> Shape {
    Shape::Scalar(s)
}

/// A struct shape with one member per scalar, for hand-written signatures.
pub fn st(fields: &[Scalar]) -> Shape {
    Shape::Struct(
        fields
            .iter()
            .map(|&f| Member {
                shape: sc(f),
                count: 1,
                as_array: false,
            })
            .collect(),
    )
}

fn align_up(v: usize, a: usize) -> usize {
    v.div_ceil(a) * a
}

impl Shape {
    /// `sizeof`.
    pub fn size(&self) -> usize {
        match self {
            Shape::Scalar(s) => s.size(),
            Shape::Struct(_) => {
                let (end, align) = self.members_end_and_align();
                align_up(end, align)
            }
        }
    }

    /// `_Alignof`.
    pub fn align(&self) -> usize {
        match self {
            Shape::Scalar(s) => s.align(),
            Shape::Struct(_) => self.members_end_and_align().1,
        }
    }

    fn members_end_and_align(&self) -> (usize, usize) {
        let Shape::Struct(members) = self else {
            unreachable!("only structs have members")
        };
        let mut end = 0;
        let mut align = 1;
        for m in members {
            end = align_up(end, m.shape.align()) + m.shape.size() * m.count;
            align = align.max(m.shape.align());
        }
        (end, align)
    }

    /// The byte offset of every field, arrays flattened: one entry per
    /// repetition of each member.
    pub fn flat_offsets(&self) -> Vec<usize> {
        let Shape::Struct(members) = self else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut off = 0;
        for m in members {
            off = align_up(off, m.shape.align());
            for _ in 0..m.count {
                out.push(off);
                off += m.shape.size();
            }
        }
        out
    }

    /// The byte offset of each field as declared: an array is one field,
    /// a member repeated as separate fields is `count` of them.
    pub fn field_offsets(&self) -> Vec<usize> {
        let Shape::Struct(members) = self else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut off = 0;
        for m in members {
            off = align_up(off, m.shape.align());
            if m.as_array {
                out.push(off);
                off += m.shape.size() * m.count;
            } else {
                for _ in 0..m.count {
                    out.push(off);
                    off += m.shape.size();
                }
            }
        }
        out
    }

    /// Aggregate nesting depth: 0 for scalars.
    pub fn depth(&self) -> usize {
        match self {
            Shape::Scalar(_) => 0,
            Shape::Struct(members) => {
                1 + members.iter().map(|m| m.shape.depth()).max().unwrap_or(0)
            }
        }
    }

    /// `true` for the narrow integers a caller widens (`char`, `short`).
    pub fn narrow_int(&self) -> Option<Scalar> {
        match self {
            Shape::Scalar(s) if s.is_int() && s.size() < 4 => Some(*s),
            _ => None,
        }
    }

    /// Which bytes of a value carry meaning: not struct padding, not the
    /// unused tail of an x87 extended number.
    pub fn mask(&self) -> Vec<bool> {
        let mut mask = vec![false; self.size()];
        self.mark(&mut mask);
        mask
    }

    fn mark(&self, mask: &mut [bool]) {
        match self {
            Shape::Scalar(s) => s.mark(mask),
            Shape::Struct(members) => {
                let mut off = 0;
                for m in members {
                    off = align_up(off, m.shape.align());
                    for _ in 0..m.count {
                        m.shape.mark(&mut mask[off..]);
                        off += m.shape.size();
                    }
                }
            }
        }
    }

    fn x87_offsets(&self, base: usize, out: &mut Vec<usize>) {
        match self {
            Shape::Scalar(s) => out.extend(s.x87_parts().iter().map(|o| base + o)),
            Shape::Struct(members) => {
                let mut off = 0;
                for m in members {
                    off = align_up(off, m.shape.align());
                    for _ in 0..m.count {
                        m.shape.x87_offsets(base + off, out);
                        off += m.shape.size();
                    }
                }
            }
        }
    }

    /// `true` when any part of the value is a `long double`.
    pub fn has_long_double(&self) -> bool {
        let mut v = Vec::new();
        self.x87_offsets(0, &mut v);
        !v.is_empty()
    }

    /// A random value of this shape, `size()` bytes. Bytes are random
    /// (padding included) except that x87 extended numbers are kept to
    /// encodings the FPU loads and stores unchanged (the explicit integer
    /// bit agrees with the exponent), since `long double` returns travel
    /// through `st(0)`. (AArch64's binary128 travels in vector registers,
    /// which move any bit pattern unchanged.)
    pub fn random_value(&self, src: &mut impl Source) -> Vec<u8> {
        let mut v = vec![0u8; self.size()];
        src.fill(&mut v);
        if LD_BYTES != 10 {
            return v;
        }
        let mut x87 = Vec::new();
        self.x87_offsets(0, &mut x87);
        for off in x87 {
            let exponent = u16::from_le_bytes([v[off + 8], v[off + 9]]) & 0x7fff;
            if exponent == 0 {
                v[off + 7] &= 0x7f;
            } else {
                v[off + 7] |= 0x80;
            }
        }
        v
    }

    /// The first meaningful byte where `a` and `b` differ.
    pub fn first_difference(&self, a: &[u8], b: &[u8]) -> Option<usize> {
        self.mask()
            .iter()
            .enumerate()
            .find(|&(i, &m)| m && a.get(i) != b.get(i))
            .map(|(i, _)| i)
    }
}

impl fmt::Display for Shape {
    /// C-like: `struct { double; int32_t[3]; float x2; }` (`x2`: a member
    /// written twice as separate fields).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Scalar(s) => f.write_str(s.c_name()),
            Shape::Struct(members) => {
                f.write_str("struct {")?;
                for m in members {
                    write!(f, " {}", m.shape)?;
                    if m.count > 1 {
                        if m.as_array {
                            write!(f, "[{}]", m.count)?;
                        } else {
                            write!(f, " x{}", m.count)?;
                        }
                    }
                    f.write_str(";")?;
                }
                f.write_str(" }")
            }
        }
    }
}

/// A function signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    /// `None` for `void`.
    pub ret: Option<Shape>,
    pub args: Vec<Shape>,
    /// For a variadic call, how many of `args` are the declared ones.
    pub fixed: Option<usize>,
}

impl fmt::Display for Signature {
    /// `double (int32_t, struct { float; }, ... int64_t, double)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ret {
            Some(r) => write!(f, "{r} (")?,
            None => f.write_str("void (")?,
        }
        for (i, a) in self.args.iter().enumerate() {
            if Some(i) == self.fixed {
                f.write_str(if i == 0 { "... " } else { ", ... " })?;
            } else if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{a}")?;
        }
        if self.fixed == Some(self.args.len()) {
            f.write_str(if self.args.is_empty() { "..." } else { ", ..." })?;
        }
        f.write_str(")")
    }
}

/// Limits and switches for the generator.
#[derive(Clone, Debug)]
pub struct Config {
    /// Most arguments a signature gets.
    pub max_args: usize,
    /// Deepest struct nesting.
    pub max_depth: usize,
    /// Largest struct, in bytes.
    pub max_struct_size: usize,
    /// Generate variadic signatures.
    pub variadic: bool,
    /// Generate `long double` (and its complex form).
    pub long_double: bool,
    /// Generate complex types.
    pub complex: bool,
    /// Favour floating-point scalars (to run out of vector registers).
    pub floaty: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_args: 20,
            max_depth: 3,
            max_struct_size: 256,
            variadic: true,
            long_double: true,
            complex: true,
            floaty: false,
        }
    }
}

impl Config {
    /// A random signature. The distribution leans toward what breaks
    /// calling conventions: structs of 1-32 bytes mixing floats and
    /// integers, and enough arguments to run out of registers.
    pub fn signature(&self, src: &mut impl Source) -> Signature {
        if !self.floaty && src.chance(1, 5) {
            let floaty = Config {
                floaty: true,
                ..self.clone()
            };
            return floaty.signature(src);
        }
        let nargs = match src.weighted(&[3, 2, 4, 4]) {
            0 => src.range(0, 2.min(self.max_args)),
            1 => src.range(0, 4.min(self.max_args)),
            2 => src.range(0, 8.min(self.max_args)),
            _ => src.range(0, self.max_args),
        };
        let variadic = self.variadic && nargs > 0 && src.chance(1, 5);
        let fixed = variadic.then(|| {
            // C before C23 needs at least one declared parameter.
            src.range(1, nargs)
        });
        let args = (0..nargs)
            .map(|i| {
                let shape = self.value_shape(src);
                match (fixed, shape) {
                    (Some(n), Shape::Scalar(s)) if i >= n => Shape::Scalar(s.promoted()),
                    (_, shape) => shape,
                }
            })
            .collect();
        let ret = match src.weighted(&[2, 5, 5]) {
            0 => None,
            _ => Some(self.value_shape(src)),
        };
        Signature { ret, args, fixed }
    }

    /// A random argument or return type: a scalar or a struct.
    pub fn value_shape(&self, src: &mut impl Source) -> Shape {
        if src.chance(11, 20) {
            Shape::Scalar(self.scalar(src))
        } else {
            self.structure(src)
        }
    }

    /// A random scalar.
    pub fn scalar(&self, src: &mut impl Source) -> Scalar {
        loop {
            let weights = if self.floaty {
                [4, 30, 2, 2, 4, 1]
            } else {
                [14, 12, 5, 3, 3, 3]
            };
            let s = match src.weighted(&weights) {
                0 => [
                    Scalar::U8,
                    Scalar::I8,
                    Scalar::U16,
                    Scalar::I16,
                    Scalar::U32,
                    Scalar::I32,
                    Scalar::U64,
                    Scalar::I64,
                ][src.below(8) as usize],
                1 => [Scalar::F32, Scalar::F64][src.below(2) as usize],
                2 => Scalar::Pointer,
                3 => Scalar::LongDouble,
                4 => [Scalar::ComplexF32, Scalar::ComplexF64][src.below(2) as usize],
                _ => Scalar::ComplexLongDouble,
            };
            let ld = matches!(s, Scalar::LongDouble | Scalar::ComplexLongDouble);
            let cx = matches!(
                s,
                Scalar::ComplexF32 | Scalar::ComplexF64 | Scalar::ComplexLongDouble
            );
            if (!ld || self.long_double) && (!cx || self.complex) {
                return s;
            }
        }
    }

    /// A random struct: usually 1-32 bytes, sometimes larger, at most
    /// `max_struct_size`.
    pub fn structure(&self, src: &mut impl Source) -> Shape {
        let small = src.chance(4, 5);
        let limit = if small { 32 } else { self.max_struct_size };
        let mut last = None;
        for _ in 0..8 {
            let s = self.struct_at(src, 1, small);
            if s.size() <= limit {
                return s;
            }
            last = Some(s);
        }
        match last {
            Some(s) if s.size() <= self.max_struct_size => s,
            _ => Shape::Struct(vec![Member {
                shape: Shape::Scalar(Scalar::I32),
                count: 1,
                as_array: false,
            }]),
        }
    }

    fn struct_at(&self, src: &mut impl Source, depth: usize, small: bool) -> Shape {
        let n = src.weighted(&[4, 4, 3, 2, 1, 1]) + 1;
        let members = (0..n)
            .map(|_| {
                let shape = if depth < self.max_depth && src.chance(1, 5) {
                    self.struct_at(src, depth + 1, small)
                } else if small && self.floaty && src.chance(2, 3) {
                    Shape::Scalar([Scalar::F32, Scalar::F64][src.below(2) as usize])
                } else if small && src.chance(4, 5) {
                    // Small scalars keep the struct within two eightbytes
                    // often enough to reach register classification.
                    Shape::Scalar(
                        [
                            Scalar::U8,
                            Scalar::I8,
                            Scalar::U16,
                            Scalar::I16,
                            Scalar::U32,
                            Scalar::I32,
                            Scalar::F32,
                            Scalar::F64,
                            Scalar::U64,
                            Scalar::Pointer,
                            Scalar::ComplexF32,
                        ][src.below(11) as usize],
                    )
                } else {
                    Shape::Scalar(self.scalar(src))
                };
                let count = if src.chance(1, 4) { src.range(2, 5) } else { 1 };
                Member {
                    shape,
                    count,
                    as_array: count > 1 && src.chance(1, 2),
                }
            })
            .collect();
        Shape::Struct(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(members: &[(Shape, usize)]) -> Shape {
        Shape::Struct(
            members
                .iter()
                .map(|(s, c)| Member {
                    shape: s.clone(),
                    count: *c,
                    as_array: false,
                })
                .collect(),
        )
    }

    #[test]
    fn randsig_layout_and_mask() {
        let s = st(&[
            (Shape::Scalar(Scalar::I8), 1),
            (Shape::Scalar(Scalar::F64), 1),
            (Shape::Scalar(Scalar::U16), 3),
        ]);
        assert_eq!((s.size(), s.align()), (24, 8));
        assert_eq!(s.flat_offsets(), vec![0, 8, 16, 18, 20]);
        let m = s.mask();
        assert!(m[0] && !m[1] && !m[7] && m[8] && m[21] && !m[22]);
        let ld = Shape::Scalar(Scalar::LongDouble);
        assert_eq!(ld.mask().iter().filter(|&&b| b).count(), LD_BYTES);
        let cld = Shape::Scalar(Scalar::ComplexLongDouble);
        assert_eq!(cld.mask().iter().filter(|&&b| b).count(), 2 * LD_BYTES);
    }

    #[test]
    fn randsig_byte_reader_is_total() {
        let cfg = Config::default();
        for input in [
            &[][..],
            &[0xff; 3][..],
            &[7, 1, 2, 3, 200, 9, 9, 9, 9, 250][..],
        ] {
            let sig = cfg.signature(&mut ByteReader::new(input));
            assert!(sig.args.len() <= cfg.max_args);
        }
    }
}
