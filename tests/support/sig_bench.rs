//! S1-S8 of DESIGN.md called indirectly, shared by `benches/calls.rs`
//! (SysV) and `benches/win64.rs` (Microsoft x64): the signatures and
//! values of `jitffi_oracle::bench_cases` (which `jitffi bench` uses too),
//! parameterised by the ABI, the C targets and their hand-written stubs.
//! Also [`direct_benches!`], the direct calls for one calling convention.
//!
//! Included by path from `benches/` next to `native_ret` and `bench_util`
//! (`#[path = "../tests/support/sig_bench.rs"] mod sig_bench;`).

#![allow(dead_code)]

use std::ffi::c_void;
use std::hint::black_box;

use criterion::Criterion;
use jitffi::{Abi, Cif};
use jitffi_oracle::bench_cases::{ArgBuffers, SIGS};
use jitffi_oracle::bench_stubs::StubFn;
use libffi::raw as ffi;

use crate::bench_util::{jitffi_types, libffi_sig_cif, Group};
use crate::native_ret;

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

pub struct Case {
    name: &'static str,
    group_prefix: &'static str,
    /// Times the packed form, typed with this signature's native return.
    bench_packed: fn(&Case, &mut Group<'_>),
    target: *const c_void,
    stub: StubFn,
    cif: Cif,
    ffi_cif: Box<ffi::ffi_cif>,
    args: ArgBuffers,
}

impl Case {
    /// S1-S8's case `index` in `table`'s convention; `R` is what its packed
    /// form returns natively.
    fn new<R>(table: &Table, index: usize) -> Case {
        let sig = &SIGS[index];
        let name = sig.name;
        let (ret, types) = jitffi_types(sig);
        let cif = Cif::with_abi(table.abi, ret, &types, None)
            .unwrap_or_else(|e| panic!("{name}: jitffi {:?} cif: {e}", table.abi));
        let ffi_cif = libffi_sig_cif(table.ffi_abi, sig);
        let args = ArgBuffers::new(&sig.values(), cif.packed_size(), cif.packed_offsets());
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
                self.args.avalue().as_ptr(),
            );
            self.cif.call_raw(
                self.target,
                r[1].as_mut_ptr().cast(),
                self.args.avalue().as_ptr(),
            );
            native_ret::call_packed_into(
                self.cif.plan(),
                self.cif.packed_entry() as *const c_void,
                self.target,
                r[2].as_mut_ptr().cast(),
                self.args.packed().as_ptr().cast(),
            );
            ffi::ffi_call(
                &mut *self.ffi_cif,
                Some(std::mem::transmute::<*const c_void, unsafe extern "C" fn()>(self.target)),
                r[3].as_mut_ptr().cast(),
                self.args.avalue().as_ptr() as *mut *mut c_void,
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
        let packed = self.args.packed().as_ptr().cast::<c_void>();
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
        let avalue = self.args.avalue().as_ptr();
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
    vec![
        Case::new::<()>(table, 0),
        Case::new::<i32>(table, 1),
        Case::new::<f64>(table, 2),
        Case::new::<i64>(table, 3),
        Case::new::<f64>(table, 4),
        Case::new::<S6Ret>(table, 5),
        // S7 returns in memory: the packed form hands back the address.
        Case::new::<*mut c_void>(table, 6),
        Case::new::<i32>(table, 7),
    ]
}

/// Direct calls to S1-S8 through black-boxed function pointers, so the
/// compiler cannot inline or specialise the callee, in the benchmark group
/// `$group`. `$m` is the oracle module declaring the targets and their
/// pointer types (`jitffi_oracle::bench_stubs`, `::win64_bench`).
macro_rules! direct_benches {
    ($c:expr, $group:expr, $($m:ident)::+,
     [$s1:ident, $s2:ident, $s3:ident, $s4:ident, $s5:ident, $s6:ident, $s7:ident, $s8:ident]) => {{
        use $($m)::+ as targets;
        let mut g = $c.benchmark_group($group);
        $crate::sig_bench::direct_benches!(@one g, S1, targets::S1Fn, targets::$s1);
        $crate::sig_bench::direct_benches!(@one g, S2, targets::S2Fn, targets::$s2);
        $crate::sig_bench::direct_benches!(@one g, S3, targets::S3Fn, targets::$s3);
        $crate::sig_bench::direct_benches!(@one g, S4, targets::S4Fn, targets::$s4);
        $crate::sig_bench::direct_benches!(@one g, S5, targets::S5Fn, targets::$s5);
        $crate::sig_bench::direct_benches!(@one g, S6, targets::S6Fn, targets::$s6);
        $crate::sig_bench::direct_benches!(@one g, S7, targets::S7Fn, targets::$s7);
        $crate::sig_bench::direct_benches!(@one g, S8, targets::S8Fn, targets::$s8);
        g.finish();
    }};
    (@one $g:ident, $case:ident, $ty:ty, $target:path) => {
        let f = ::std::hint::black_box($target as $ty);
        $g.bench_function(stringify!($case), |b| {
            // SAFETY: the C target called with its declared signature.
            b.iter(|| unsafe { ::jitffi_oracle::bench_call!($case, f) })
        });
    };
}
pub(crate) use direct_benches;
