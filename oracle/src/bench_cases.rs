//! S1-S8 of DESIGN.md as every benchmark passes them, in one place for the
//! criterion benches (`benches/`, `tests/support/sig_bench.rs`) and
//! `jitffi bench` (`cli/src/bench/`): the C types of each signature
//! ([`SIGS`]), the argument values, the function pointer types of the C
//! targets (`S1Fn` .. `S8Fn` in [`bench_stubs`](crate::bench_stubs) and
//! [`win64_bench`](crate::win64_bench)), a direct call with those values
//! ([`bench_call!`](crate::bench_call)) and the argument buffers of jitffi's
//! two entry forms ([`ArgBuffers`]).
//!
//! Each harness lowers [`CType`] to its own descriptions (the libffi
//! crate's or a `dlopen`ed libffi's `ffi_type`; jitffi's `Type` through
//! [`jitffi_type!`](crate::jitffi_type)): this crate depends on neither
//! libffi nor jitffi.

use std::ffi::c_void;

pub use crate::bench_stubs::{S6Pair, S7Quad};

/// A C type of S1-S8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CType {
    Void,
    I8,
    U16,
    I32,
    I64,
    F32,
    F64,
    Ptr,
    /// `struct { double a, b; }` ([`S6Pair`])
    Pair,
    /// `struct { int64_t a, b, c, d; }` ([`S7Quad`])
    Quad,
}

/// One of S1-S8: its name, its C types and its argument values.
#[derive(Clone, Copy, Debug)]
pub struct Sig {
    /// `"S1"` .. `"S8"`.
    pub name: &'static str,
    pub ret: CType,
    pub args: &'static [CType],
    values: fn() -> Vec<Vec<u8>>,
}

impl Sig {
    /// The bytes of each argument value, in argument order (the values
    /// below: [`INTS`], [`F64S`], [`I64S`], [`S5`], [`PAIR`], [`QUAD`]).
    pub fn values(&self) -> Vec<Vec<u8>> {
        (self.values)()
    }
}

// The argument values of every case.
pub const INTS: [i32; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
pub const I64S: [i64; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
pub const F64S: [f64; 4] = [1.0, 2.0, 3.0, 4.0];
/// S5's arguments; the pointer (`.4`) as an address, see [`S5_PTR`].
pub const S5: (i32, f64, i64, f32, usize, i8, u16, f64) = (1, 2.0, 3, 4.0, 5, -6, 7, 8.0);
/// S5's pointer argument.
pub const S5_PTR: *const c_void = S5.4 as *const c_void;
pub const PAIR: S6Pair = S6Pair { a: 1.0, b: 2.0 };
pub const QUAD: S7Quad = S7Quad {
    a: 1,
    b: 2,
    c: 3,
    d: 4,
};

/// S5's argument types: `(int, double, int64_t, float, void *, int8_t,
/// uint16_t, double)`.
pub const S5_ARGS: [CType; 8] = [
    CType::I32,
    CType::F64,
    CType::I64,
    CType::F32,
    CType::Ptr,
    CType::I8,
    CType::U16,
    CType::F64,
];

/// S1-S8 (index 0 is S1).
pub const SIGS: [Sig; 8] = [
    Sig {
        name: "S1",
        ret: CType::Void,
        args: &[],
        values: Vec::new,
    },
    Sig {
        name: "S2",
        ret: CType::I32,
        args: &[CType::I32; 2],
        values: || each(&INTS[..2]),
    },
    Sig {
        name: "S3",
        ret: CType::F64,
        args: &[CType::F64; 4],
        values: || each(&F64S),
    },
    Sig {
        name: "S4",
        ret: CType::I64,
        args: &[CType::I64; 8],
        values: || each(&I64S),
    },
    Sig {
        name: "S5",
        ret: CType::F64,
        args: &S5_ARGS,
        values: || {
            let s = S5;
            [
                bytes_of(&s.0),
                bytes_of(&s.1),
                bytes_of(&s.2),
                bytes_of(&s.3),
                bytes_of(&s.4),
                bytes_of(&s.5),
                bytes_of(&s.6),
                bytes_of(&s.7),
            ]
            .map(<[u8]>::to_vec)
            .to_vec()
        },
    },
    Sig {
        name: "S6",
        ret: CType::Pair,
        args: &[CType::Pair; 2],
        values: || each(&[PAIR; 2]),
    },
    Sig {
        name: "S7",
        ret: CType::Quad,
        args: &[CType::Quad],
        values: || each(&[QUAD]),
    },
    Sig {
        name: "S8",
        ret: CType::I32,
        args: &[CType::I32; 16],
        values: || each(&INTS),
    },
];

/// The bytes of each of `values`.
fn each<T: Plain>(values: &[T]) -> Vec<Vec<u8>> {
    values.iter().map(|v| bytes_of(v).to_vec()).collect()
}

/// Plain data: every byte of a value is initialised (no padding), so it
/// may be read as bytes with [`bytes_of`].
///
/// # Safety
/// Implement it only for types without padding bytes.
pub unsafe trait Plain: Copy {}

// SAFETY (every impl below): integers, floats and pointers have no padding;
// `()` has no bytes; the two structs are all-`f64` and all-`i64` with C
// layout; an array of padding-free elements has none either.
unsafe impl Plain for () {}
unsafe impl Plain for i8 {}
unsafe impl Plain for i16 {}
unsafe impl Plain for u16 {}
unsafe impl Plain for i32 {}
unsafe impl Plain for u32 {}
unsafe impl Plain for i64 {}
unsafe impl Plain for u64 {}
unsafe impl Plain for usize {}
unsafe impl Plain for u128 {}
unsafe impl Plain for f32 {}
unsafe impl Plain for f64 {}
unsafe impl Plain for *const c_void {}
unsafe impl Plain for *mut c_void {}
unsafe impl Plain for S6Pair {}
unsafe impl Plain for S7Quad {}
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

/// The bytes of a value.
pub fn bytes_of<T: Plain>(v: &T) -> &[u8] {
    // SAFETY: `T: Plain` has no padding, so all `size_of::<T>()` bytes
    // behind the reference are initialised; they live as long as `v`.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// Declares `S1Fn` .. `S8Fn`, the function pointer types of S1-S8's C
/// targets in calling convention `$abi` (`"C"`, `"win64"`).
macro_rules! target_fn_types {
    ($abi:literal) => {
        /// `void(void)`
        pub type S1Fn = unsafe extern $abi fn();
        /// `int(int, int)`
        pub type S2Fn = unsafe extern $abi fn(i32, i32) -> i32;
        /// `double(double x4)`
        pub type S3Fn = unsafe extern $abi fn(f64, f64, f64, f64) -> f64;
        /// `int64_t(int64_t x8)`
        pub type S4Fn = unsafe extern $abi fn(i64, i64, i64, i64, i64, i64, i64, i64) -> i64;
        /// `double(int, double, int64_t, float, void *, int8_t, uint16_t, double)`
        pub type S5Fn =
            unsafe extern $abi fn(i32, f64, i64, f32, *const ::std::ffi::c_void, i8, u16, f64) -> f64;
        /// `struct pair(struct pair, struct pair)`
        pub type S6Fn = unsafe extern $abi fn(S6Pair, S6Pair) -> S6Pair;
        /// `struct quad(struct quad)`
        pub type S7Fn = unsafe extern $abi fn(S7Quad) -> S7Quad;
        /// `int(int x16)`
        pub type S8Fn = unsafe extern $abi fn(
            i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32,
        ) -> i32;
    };
}
pub(crate) use target_fn_types;

/// A call of `f`, a function pointer of S1-S8's case `$case` (`S1` ..
/// `S8`, in any calling convention), with that case's argument values,
/// each through `black_box` so the compiler can neither fold them into the
/// callee nor hoist the call: `bench_call!(S2, f)` is
/// `f(black_box(INTS[0]), black_box(INTS[1]))`.
///
/// It expands in place (no helper function between the caller and `f`),
/// so a timed closure around it measures the call alone. Put it in an
/// `unsafe` block when `f` is an `unsafe fn` pointer.
#[macro_export]
macro_rules! bench_call {
    (S1, $f:expr) => {
        $f()
    };
    (S2, $f:expr) => {
        $crate::bench_call!(@each $f, INTS[0 1])
    };
    (S3, $f:expr) => {
        $crate::bench_call!(@each $f, F64S[0 1 2 3])
    };
    (S4, $f:expr) => {
        $crate::bench_call!(@each $f, I64S[0 1 2 3 4 5 6 7])
    };
    (S5, $f:expr) => {
        $f(
            ::std::hint::black_box($crate::bench_cases::S5.0),
            ::std::hint::black_box($crate::bench_cases::S5.1),
            ::std::hint::black_box($crate::bench_cases::S5.2),
            ::std::hint::black_box($crate::bench_cases::S5.3),
            ::std::hint::black_box($crate::bench_cases::S5_PTR),
            ::std::hint::black_box($crate::bench_cases::S5.5),
            ::std::hint::black_box($crate::bench_cases::S5.6),
            ::std::hint::black_box($crate::bench_cases::S5.7),
        )
    };
    (S6, $f:expr) => {
        $f(
            ::std::hint::black_box($crate::bench_cases::PAIR),
            ::std::hint::black_box($crate::bench_cases::PAIR),
        )
    };
    (S7, $f:expr) => {
        $f(::std::hint::black_box($crate::bench_cases::QUAD))
    };
    (S8, $f:expr) => {
        $crate::bench_call!(@each $f, INTS[0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15])
    };
    // `f(black_box(A[i]), black_box(A[j]), ...)` for the array `A`.
    (@each $f:expr, $array:ident[$($i:literal)*]) => {
        $f($(::std::hint::black_box($crate::bench_cases::$array[$i])),*)
    };
}

/// jitffi's type for the [`CType`] `$t`, as a `jitffi::Result<jitffi::Type>`.
///
/// A macro, expanded in the crate that uses it (which names jitffi
/// `jitffi`), because this crate does not depend on jitffi: jitffi's own
/// tests and benches depend on it.
#[macro_export]
macro_rules! jitffi_type {
    ($t:expr) => {
        match $t {
            $crate::bench_cases::CType::Void => Ok(::jitffi::Type::void()),
            $crate::bench_cases::CType::I8 => Ok(::jitffi::Type::i8()),
            $crate::bench_cases::CType::U16 => Ok(::jitffi::Type::u16()),
            $crate::bench_cases::CType::I32 => Ok(::jitffi::Type::i32()),
            $crate::bench_cases::CType::I64 => Ok(::jitffi::Type::i64()),
            $crate::bench_cases::CType::F32 => Ok(::jitffi::Type::f32()),
            $crate::bench_cases::CType::F64 => Ok(::jitffi::Type::f64()),
            $crate::bench_cases::CType::Ptr => Ok(::jitffi::Type::pointer()),
            $crate::bench_cases::CType::Pair => {
                ::jitffi::Type::structure([::jitffi::Type::f64(), ::jitffi::Type::f64()])
            }
            $crate::bench_cases::CType::Quad => {
                ::jitffi::Type::structure(::std::vec![::jitffi::Type::i64(); 4])
            }
        }
    };
}

/// The argument values of one call in both of jitffi's entry forms:
/// 32-byte, 16-aligned slots that [`ArgBuffers::avalue`] points into (the
/// libffi form), and a buffer holding the same bytes at the cif's packed
/// offsets (the packed form).
#[derive(Debug)]
pub struct ArgBuffers {
    _slots: Vec<[u128; 2]>,
    avalue: Vec<*const c_void>,
    packed: Vec<u128>,
}

impl ArgBuffers {
    /// Buffers for `values` (one per argument, as [`Sig::values`] gives
    /// them) and a cif whose packed buffer is `packed_size` bytes with
    /// argument `i` at `packed_offsets[i]` (`Cif::packed_size`,
    /// `Cif::packed_offsets`). A value is cut to the 32-byte slot (none of
    /// S1-S8's is longer), and not copied to a packed place that would leave
    /// the buffer.
    pub fn new(values: &[Vec<u8>], packed_size: usize, packed_offsets: &[u32]) -> ArgBuffers {
        let mut slots = vec![[0u128; 2]; values.len()];
        let mut packed = vec![0u128; packed_size.div_ceil(16).max(1)];
        let packed_bytes = packed.len() * 16;
        for (i, v) in values.iter().enumerate() {
            let len = v.len().min(32);
            // SAFETY: a slot holds 32 bytes and `len` is at most that.
            unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), slots[i].as_mut_ptr().cast(), len) };
            if let Some(&at) = packed_offsets.get(i) {
                let at = at as usize;
                if at + len <= packed_bytes {
                    // SAFETY: bounds-checked against the buffer just above.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            v.as_ptr(),
                            packed.as_mut_ptr().cast::<u8>().add(at),
                            len,
                        )
                    };
                }
            }
        }
        let avalue = slots.iter().map(|s| s.as_ptr().cast::<c_void>()).collect();
        ArgBuffers {
            _slots: slots,
            avalue,
            packed,
        }
    }

    /// libffi's `avalue`: a pointer to each argument, valid while `self`
    /// lives.
    pub fn avalue(&self) -> &[*const c_void] {
        &self.avalue
    }

    /// The packed-form argument buffer (16-aligned).
    pub fn packed(&self) -> &[u128] {
        &self.packed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_the_argument_types() {
        let size = |t: CType| match t {
            CType::Void => 0,
            CType::I8 => 1,
            CType::U16 => 2,
            CType::I32 | CType::F32 => 4,
            CType::I64 | CType::F64 | CType::Ptr => 8,
            CType::Pair => std::mem::size_of::<S6Pair>(),
            CType::Quad => std::mem::size_of::<S7Quad>(),
        };
        for (i, sig) in SIGS.iter().enumerate() {
            assert_eq!(sig.name, format!("S{}", i + 1));
            let values = sig.values();
            let sizes: Vec<_> = values.iter().map(Vec::len).collect();
            let want: Vec<_> = sig.args.iter().map(|&t| size(t)).collect();
            assert_eq!(sizes, want, "{}", sig.name);
        }
        assert_eq!(SIGS[4].values()[4], 5usize.to_ne_bytes());
        assert_eq!(SIGS[4].values()[5], [(-6i8) as u8]);
        assert_eq!(SIGS[7].values()[15], 16i32.to_ne_bytes());
        assert_eq!(bytes_of(&0x0102i16), 0x0102i16.to_ne_bytes());
    }

    /// `bench_call!` passes each case's values in order: the direct call of
    /// every target returns what its C stub returns for [`Sig::values`],
    /// in both calling conventions (the Microsoft x64 one on x86-64 only).
    #[test]
    fn direct_calls_agree_with_the_stubs_given_the_values() {
        use crate::bench_stubs as c;
        #[cfg(target_arch = "x86_64")]
        use crate::win64_bench as w;
        fn check<R: Plain>(i: usize, stub: c::StubFn, target: *const c_void, direct: R) {
            let values = SIGS[i].values();
            let a = ArgBuffers::new(&values, 0, &[]);
            let mut ret = [0u128; 2];
            // SAFETY: the stub was written for `target`, S1-S8's case `i`,
            // whose values these are; the return buffer holds 32 bytes.
            unsafe { stub(target, ret.as_mut_ptr().cast(), a.avalue().as_ptr()) };
            let want = bytes_of(&direct);
            assert_eq!(&bytes_of(&ret)[..want.len()], want, "{}", SIGS[i].name);
        }
        macro_rules! both {
            ($i:literal, $case:ident, $ty:ident, $c:ident, $w:ident) => {
                let cf = c::$c as c::$ty;
                // SAFETY: the C target, called with its own signature.
                let cr = unsafe { bench_call!($case, cf) };
                check($i, c::STUBS[$i], c::targets()[$i], cr);
                #[cfg(target_arch = "x86_64")]
                {
                    let wf = w::$w as w::$ty;
                    // SAFETY: the ms_abi target, called with its own signature.
                    let wr = unsafe { bench_call!($case, wf) };
                    check($i, w::STUBS[$i], w::targets()[$i], wr);
                }
            };
        }
        both!(0, S1, S1Fn, bench_s1, w64_bench_s1);
        both!(1, S2, S2Fn, bench_s2, w64_bench_s2);
        both!(2, S3, S3Fn, bench_s3, w64_bench_s3);
        both!(3, S4, S4Fn, bench_s4, w64_bench_s4);
        both!(4, S5, S5Fn, bench_s5, w64_bench_s5);
        both!(5, S6, S6Fn, bench_s6, w64_bench_s6);
        both!(6, S7, S7Fn, bench_s7, w64_bench_s7);
        both!(7, S8, S8Fn, bench_s8, w64_bench_s8);
    }

    #[test]
    fn buffers_hold_each_value_in_its_slot_and_at_its_offset() {
        let values = SIGS[4].values();
        let offsets = [0, 8, 16, 24, 32, 40, 42, 48];
        let a = ArgBuffers::new(&values, 56, &offsets);
        let packed = a.packed().as_ptr().cast::<u8>();
        assert_eq!(a.packed().len(), 4);
        for (i, v) in values.iter().enumerate() {
            // SAFETY: the buffer is 64 bytes; each value ends by byte 56.
            let got =
                unsafe { std::slice::from_raw_parts(packed.add(offsets[i] as usize), v.len()) };
            assert_eq!(got, &v[..], "packed argument {i}");
            // SAFETY: avalue[i] points at a 32-byte slot.
            let slot = unsafe { std::slice::from_raw_parts(a.avalue()[i].cast::<u8>(), v.len()) };
            assert_eq!(slot, &v[..], "argument {i}");
            assert_eq!(a.avalue()[i] as usize % 16, 0);
        }
        // A place outside the buffer is skipped, not written.
        let a = ArgBuffers::new(&SIGS[1].values(), 8, &[0, 16]);
        assert_eq!(bytes_of(&a.packed()[0])[..8], [1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(a.packed().len(), 1);
    }
}
