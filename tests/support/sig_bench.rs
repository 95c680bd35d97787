//! S1-S8 of DESIGN.md called indirectly, shared by `benches/calls.rs`
//! (SysV) and `benches/win64.rs` (Microsoft x64): the same signatures and
//! values, parameterised by the ABI, the C targets and their hand-written
//! stubs. Also [`direct_benches!`], the direct calls for one calling
//! convention.
//!
//! Included by path from `benches/` next to `native_ret` and `bench_util`
//! (`#[path = "../tests/support/sig_bench.rs"] mod sig_bench;`).

#![allow(dead_code)]

use std::ffi::c_void;
use std::hint::black_box;
use std::ptr;

use criterion::Criterion;
use jitffi::{Abi, Cif, Type};
use jitffi_oracle::bench_stubs::{S6Pair, S7Quad, StubFn};
use libffi::raw as ffi;

use crate::bench_util::{libffi_cif_with_abi, Group};
use crate::native_ret;

// The argument values of every case.
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

/// One calling convention's S1-S8: the C targets and their stubs (index 0
/// is S1), how jitffi and libffi name the convention, and the prefix of
/// its benchmark group names.
pub struct Table {
    pub abi: Abi,
    pub ffi_abi: ffi::ffi_abi,
    pub group_prefix: &'static str,
    pub targets: [*const c_void; 8],
    pub stubs: [StubFn; 8],
}

/// A libffi type tree kept alive for the whole run.
fn ffi_struct(members: &[*mut ffi::ffi_type]) -> *mut ffi::ffi_type {
    let mut elems: Vec<*mut ffi::ffi_type> = members.to_vec();
    elems.push(ptr::null_mut());
    let elems = Box::leak(elems.into_boxed_slice()).as_mut_ptr();
    Box::leak(Box::new(ffi::ffi_type {
        size: 0,
        alignment: 0,
        type_: ffi::FFI_TYPE_STRUCT,
        elements: elems,
    }))
}

/// Argument storage: `values` owns 16-byte aligned slots, `avalue` points
/// into them, `packed` holds the same values at the cif's packed offsets.
struct Args {
    _values: Vec<[u128; 2]>,
    avalue: Vec<*const c_void>,
    packed: Vec<u128>,
}

impl Args {
    fn new(cif: &Cif, bytes: &[&[u8]]) -> Args {
        let mut values = vec![[0u128; 2]; bytes.len()];
        let mut packed = vec![0u128; cif.packed_size().div_ceil(16).max(1)];
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: every argument here is at most 32 bytes, the slot size;
            // the packed offsets stay inside packed_size bytes.
            unsafe {
                ptr::copy_nonoverlapping(b.as_ptr(), values[i].as_mut_ptr().cast::<u8>(), b.len());
                ptr::copy_nonoverlapping(
                    b.as_ptr(),
                    packed
                        .as_mut_ptr()
                        .cast::<u8>()
                        .add(cif.packed_offsets()[i] as usize),
                    b.len(),
                );
            }
        }
        let avalue = values.iter().map(|v| v.as_ptr().cast::<c_void>()).collect();
        Args {
            _values: values,
            avalue,
            packed,
        }
    }
}

pub fn bytes_of<T>(v: &T) -> &[u8] {
    // SAFETY: any initialised value may be viewed as bytes.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

pub struct Case {
    name: &'static str,
    group_prefix: &'static str,
    /// Times the packed form, typed with this signature's native return.
    bench_packed: fn(&Case, &mut Group<'_>),
    target: *const c_void,
    stub: StubFn,
    cif: Cif,
    ffi_cif: Box<ffi::ffi_cif>,
    args: Args,
}

impl Case {
    #[allow(clippy::too_many_arguments)]
    fn new<R>(
        table: &Table,
        index: usize,
        _ret: std::marker::PhantomData<R>,
        ret: (Type, *mut ffi::ffi_type),
        args: &[(Type, *mut ffi::ffi_type)],
        values: &[&[u8]],
    ) -> Case {
        const NAMES: [&str; 8] = ["S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8"];
        let name = NAMES[index];
        let types: Vec<Type> = args.iter().map(|a| a.0.clone()).collect();
        let cif = Cif::with_abi(table.abi, ret.0.clone(), &types, None)
            .unwrap_or_else(|e| panic!("{name}: jitffi {:?} cif: {e}", table.abi));
        // The type trees are libffi's statics or leaked (`ffi_struct`).
        let atypes: Vec<_> = args.iter().map(|a| a.1).collect();
        let ffi_cif = libffi_cif_with_abi(table.ffi_abi, ret.1, &atypes);
        let args = Args::new(&cif, values);
        Case {
            name,
            group_prefix: table.group_prefix,
            bench_packed: Case::bench_packed::<R>,
            target: table.targets[index],
            stub: table.stubs[index],
            cif,
            ffi_cif,
            args,
        }
    }

    /// Runs every indirect form once and checks they agree with the C
    /// stub (and, given `direct`, the C stub with the direct call), so a
    /// benchmark never times a broken call.
    pub fn verify(&mut self, direct: Option<&[u8]>) {
        let mut r = [[0u8; 32]; 4];
        // SAFETY: the cif, the libffi cif and the stub all describe `target`.
        unsafe {
            (self.stub)(
                self.target,
                r[0].as_mut_ptr().cast(),
                self.args.avalue.as_ptr(),
            );
            self.cif.call_raw(
                self.target,
                r[1].as_mut_ptr().cast(),
                self.args.avalue.as_ptr(),
            );
            native_ret::call_packed_into(
                self.cif.plan(),
                self.cif.packed_entry() as *const c_void,
                self.target,
                r[2].as_mut_ptr().cast(),
                self.args.packed.as_ptr().cast(),
            );
            ffi::ffi_call(
                &mut *self.ffi_cif,
                Some(std::mem::transmute::<*const c_void, unsafe extern "C" fn()>(self.target)),
                r[3].as_mut_ptr().cast(),
                self.args.avalue.as_ptr() as *mut *mut c_void,
            );
        }
        if let Some(direct) = direct {
            let n = direct.len();
            assert_eq!(
                &r[0][..n],
                direct,
                "{}: the C stub disagrees with the direct call",
                self.name
            );
        }
        let n = self.cif.ret().size().clamp(8, 32);
        for (i, form) in ["jitffi raw", "jitffi packed", "libffi"].iter().enumerate() {
            assert_eq!(
                r[0][..n],
                r[i + 1][..n],
                "{}: {form} disagrees with the C stub",
                self.name
            );
        }
    }

    /// The packed form returns in the callee's registers: read them as `R`.
    fn bench_packed<R>(&self, group: &mut Group<'_>) {
        let cif = &self.cif;
        let target = self.target;
        let packed = self.args.packed.as_ptr().cast::<c_void>();
        let mut rbuf = [0u128; 2];
        let rvalue = rbuf.as_mut_ptr().cast::<c_void>();
        group.bench_function("jitffi packed", |b| {
            // SAFETY: the cif describes the target, `R` its native return
            // (the sret address for a memory return, whose 32-byte buffer
            // is `rbuf`), and the packed buffer is laid out for this cif.
            b.iter(|| unsafe {
                cif.call_packed::<R>(black_box(target), black_box(rvalue), black_box(packed))
            })
        });
    }

    /// Times every indirect form; call [`Case::verify`] first.
    pub fn bench_indirect(&mut self, c: &mut Criterion) {
        let mut group = c.benchmark_group(format!("{}{}", self.group_prefix, self.name));
        let target = self.target;
        let avalue = self.args.avalue.as_ptr();
        let mut rbuf = [0u128; 2];
        let rvalue = rbuf.as_mut_ptr().cast::<c_void>();
        let stub = self.stub;
        group.bench_function("c stub", |b| {
            // SAFETY: the stub was written for exactly this target.
            b.iter(|| unsafe { stub(black_box(target), black_box(rvalue), black_box(avalue)) })
        });
        let cif = &self.cif;
        group.bench_function("jitffi raw", |b| {
            // SAFETY: the cif describes the target; see `verify`.
            b.iter(|| unsafe {
                cif.call_raw(black_box(target), black_box(rvalue), black_box(avalue))
            })
        });
        (self.bench_packed)(self, &mut group);
        let ffi_cif: *mut ffi::ffi_cif = &mut *self.ffi_cif;
        // SAFETY: `target` is a function pointer.
        let f = unsafe { std::mem::transmute::<*const c_void, unsafe extern "C" fn()>(target) };
        group.bench_function("libffi", |b| {
            // SAFETY: the libffi cif describes the target, in its ABI.
            b.iter(|| unsafe {
                ffi::ffi_call(
                    black_box(ffi_cif),
                    Some(f),
                    black_box(rvalue),
                    black_box(avalue as *mut *mut c_void),
                )
            })
        });
        group.finish();
    }
}

/// S1-S8 of `table`. `S6Ret` is what S6's packed form returns natively:
/// the pair itself in SysV registers, the sret address under Win64.
pub fn cases<S6Ret>(table: &Table) -> Vec<Case> {
    // Taking `&raw mut` of libffi's type statics is safe; libffi only reads them.
    let (i32_, f64_, i64_, f32_, ptr_, i8_, u16_, void_) = {
        (
            (Type::i32(), &raw mut ffi::ffi_type_sint32),
            (Type::f64(), &raw mut ffi::ffi_type_double),
            (Type::i64(), &raw mut ffi::ffi_type_sint64),
            (Type::f32(), &raw mut ffi::ffi_type_float),
            (Type::pointer(), &raw mut ffi::ffi_type_pointer),
            (Type::i8(), &raw mut ffi::ffi_type_sint8),
            (Type::u16(), &raw mut ffi::ffi_type_uint16),
            (Type::void(), &raw mut ffi::ffi_type_void),
        )
    };
    let pair = (
        Type::structure([Type::f64(), Type::f64()]).unwrap(),
        ffi_struct(&[f64_.1, f64_.1]),
    );
    let quad = (
        Type::structure([Type::i64(), Type::i64(), Type::i64(), Type::i64()]).unwrap(),
        ffi_struct(&[i64_.1, i64_.1, i64_.1, i64_.1]),
    );
    use std::marker::PhantomData as P;
    vec![
        Case::new(table, 0, P::<()>, void_.clone(), &[], &[]),
        Case::new(
            table,
            1,
            P::<i32>,
            i32_.clone(),
            &[i32_.clone(), i32_.clone()],
            &[bytes_of(&INTS[0]), bytes_of(&INTS[1])],
        ),
        Case::new(
            table,
            2,
            P::<f64>,
            f64_.clone(),
            &vec![f64_.clone(); 4],
            &F64S.iter().map(bytes_of).collect::<Vec<_>>(),
        ),
        Case::new(
            table,
            3,
            P::<i64>,
            i64_.clone(),
            &vec![i64_.clone(); 8],
            &I64S.iter().map(bytes_of).collect::<Vec<_>>(),
        ),
        Case::new(
            table,
            4,
            P::<f64>,
            f64_.clone(),
            &[
                i32_.clone(),
                f64_.clone(),
                i64_.clone(),
                f32_.clone(),
                ptr_.clone(),
                i8_.clone(),
                u16_.clone(),
                f64_.clone(),
            ],
            &[
                bytes_of(&S5.0),
                bytes_of(&S5.1),
                bytes_of(&S5.2),
                bytes_of(&S5.3),
                bytes_of(&S5.4),
                bytes_of(&S5.5),
                bytes_of(&S5.6),
                bytes_of(&S5.7),
            ],
        ),
        Case::new(
            table,
            5,
            P::<S6Ret>,
            pair.clone(),
            &[pair.clone(), pair.clone()],
            &[bytes_of(&PAIR), bytes_of(&PAIR)],
        ),
        Case::new(
            table,
            6,
            P::<*mut c_void>,
            quad.clone(),
            std::slice::from_ref(&quad),
            &[bytes_of(&QUAD)],
        ),
        Case::new(
            table,
            7,
            P::<i32>,
            i32_.clone(),
            &vec![i32_.clone(); 16],
            &INTS.iter().map(bytes_of).collect::<Vec<_>>(),
        ),
    ]
}

/// Direct calls to S1-S8 in calling convention `$abi` through black-boxed
/// function pointers, so the compiler cannot inline or specialise the
/// callee, in the benchmark group `$group`.
macro_rules! direct_benches {
    ($c:expr, $group:expr, $abi:literal,
     [$s1:path, $s2:path, $s3:path, $s4:path, $s5:path, $s6:path, $s7:path, $s8:path]) => {{
        use std::ffi::c_void;
        use std::hint::black_box;
        use jitffi_oracle::bench_stubs::{S6Pair, S7Quad};
        use $crate::sig_bench::{PAIR, QUAD};
        type S4Fn = unsafe extern $abi fn(i64, i64, i64, i64, i64, i64, i64, i64) -> i64;
        type S5Fn = unsafe extern $abi fn(i32, f64, i64, f32, *const c_void, i8, u16, f64) -> f64;
        type S8Fn = unsafe extern $abi fn(
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
        ) -> i32;
        let mut g = $c.benchmark_group($group);
        let s1 = black_box($s1 as unsafe extern $abi fn());
        // SAFETY (every closure below): calling the C targets with their
        // declared signatures.
        g.bench_function("S1", |b| b.iter(|| unsafe { s1() }));
        let s2 = black_box($s2 as unsafe extern $abi fn(i32, i32) -> i32);
        g.bench_function("S2", |b| {
            b.iter(|| unsafe { s2(black_box(1), black_box(2)) })
        });
        let s3 = black_box($s3 as unsafe extern $abi fn(f64, f64, f64, f64) -> f64);
        g.bench_function("S3", |b| {
            b.iter(|| unsafe {
                s3(
                    black_box(1.0),
                    black_box(2.0),
                    black_box(3.0),
                    black_box(4.0),
                )
            })
        });
        let s4 = black_box($s4 as S4Fn);
        g.bench_function("S4", |b| {
            b.iter(|| unsafe {
                s4(
                    black_box(1),
                    black_box(2),
                    black_box(3),
                    black_box(4),
                    black_box(5),
                    black_box(6),
                    black_box(7),
                    black_box(8),
                )
            })
        });
        let s5 = black_box($s5 as S5Fn);
        g.bench_function("S5", |b| {
            b.iter(|| unsafe {
                s5(
                    black_box(1),
                    black_box(2.0),
                    black_box(3),
                    black_box(4.0),
                    black_box(5 as *const c_void),
                    black_box(-6),
                    black_box(7),
                    black_box(8.0),
                )
            })
        });
        let s6 = black_box($s6 as unsafe extern $abi fn(S6Pair, S6Pair) -> S6Pair);
        g.bench_function("S6", |b| {
            b.iter(|| unsafe { s6(black_box(PAIR), black_box(PAIR)) })
        });
        let s7 = black_box($s7 as unsafe extern $abi fn(S7Quad) -> S7Quad);
        g.bench_function("S7", |b| b.iter(|| unsafe { s7(black_box(QUAD)) }));
        let s8 = black_box($s8 as S8Fn);
        g.bench_function("S8", |b| {
            b.iter(|| unsafe {
                s8(
                    black_box(1),
                    black_box(2),
                    black_box(3),
                    black_box(4),
                    black_box(5),
                    black_box(6),
                    black_box(7),
                    black_box(8),
                    black_box(9),
                    black_box(10),
                    black_box(11),
                    black_box(12),
                    black_box(13),
                    black_box(14),
                    black_box(15),
                    black_box(16),
                )
            })
        });
        g.finish();
    }};
}
pub(crate) use direct_benches;
