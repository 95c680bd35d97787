//! Outgoing calls S1-S8: a direct call, the gcc-compiled C stub, jitffi's
//! libffi form and packed form, and the system libffi's `ffi_call`.

use std::ffi::c_void;
use std::hint::black_box;
use std::ptr;

use jitffi::Cif;
use jitffi_oracle::bench_stubs::*;

use super::measure::Stats;
use super::sysffi::{FfiCif, Libffi};
use super::types::{bytes_of, hex, F64S, I64S, INTS, PAIR, QUAD, S5, S5_PTR, T};
use super::{check_failed, ratio, round_ns, CallMin, CallRatios, CallRow, Runner};
use crate::error::CliError;

/// One of S1-S8: its names, types, argument values and C functions.
struct Spec {
    name: &'static str,
    signature: &'static str,
    ret: T,
    args: Vec<T>,
    values: Vec<Vec<u8>>,
    target: *const c_void,
    stub: StubFn,
}

/// The full signature texts (the `jitffi` signature language).
pub const SIGNATURES: [&str; 8] = [
    "void(void)",
    "int(int, int)",
    "double(double, double, double, double)",
    "int64_t(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t)",
    "double(int, double, int64_t, float, void *, int8_t, uint16_t, double)",
    "struct { double a; double b; }(struct { double a; double b; }, struct { double a; double b; })",
    "struct { int64_t a; int64_t b; int64_t c; int64_t d; }(struct { int64_t a; int64_t b; int64_t c; int64_t d; })",
    "int(int, int, int, int, int, int, int, int, int, int, int, int, int, int, int, int)",
];

/// Short forms for the table.
pub const SHORT: [&str; 8] = [
    "void(void)",
    "int(int,int)",
    "double(4 x double)",
    "int64(8 x int64)",
    "double(8 mixed)",
    "{d,d}({d,d},{d,d})",
    "{int64 x4}({int64 x4})",
    "int(16 x int)",
];

/// The benchmark names, `calls/S1` ...
pub const NAMES: [&str; 8] = [
    "calls/S1", "calls/S2", "calls/S3", "calls/S4", "calls/S5", "calls/S6", "calls/S7", "calls/S8",
];

fn spec(i: usize) -> Spec {
    let b = |v: &[u8]| v.to_vec();
    let (ret, args, values, target, stub): (T, Vec<T>, Vec<Vec<u8>>, *const c_void, StubFn) =
        match i {
            0 => (
                T::Void,
                vec![],
                vec![],
                bench_s1 as *const c_void,
                bench_stub_s1,
            ),
            1 => (
                T::I32,
                vec![T::I32; 2],
                INTS[..2].iter().map(|v| b(bytes_of(v))).collect(),
                bench_s2 as *const c_void,
                bench_stub_s2,
            ),
            2 => (
                T::F64,
                vec![T::F64; 4],
                F64S.iter().map(|v| b(bytes_of(v))).collect(),
                bench_s3 as *const c_void,
                bench_stub_s3,
            ),
            3 => (
                T::I64,
                vec![T::I64; 8],
                I64S.iter().map(|v| b(bytes_of(v))).collect(),
                bench_s4 as *const c_void,
                bench_stub_s4,
            ),
            4 => (
                T::F64,
                vec![
                    T::I32,
                    T::F64,
                    T::I64,
                    T::F32,
                    T::Ptr,
                    T::I8,
                    T::U16,
                    T::F64,
                ],
                vec![
                    b(bytes_of(&S5.0)),
                    b(bytes_of(&S5.1)),
                    b(bytes_of(&S5.2)),
                    b(bytes_of(&S5.3)),
                    b(bytes_of(&S5.4)),
                    b(bytes_of(&S5.5)),
                    b(bytes_of(&S5.6)),
                    b(bytes_of(&S5.7)),
                ],
                bench_s5 as *const c_void,
                bench_stub_s5,
            ),
            5 => (
                T::Pair,
                vec![T::Pair; 2],
                vec![b(bytes_of(&PAIR)), b(bytes_of(&PAIR))],
                bench_s6 as *const c_void,
                bench_stub_s6,
            ),
            6 => (
                T::Quad,
                vec![T::Quad],
                vec![b(bytes_of(&QUAD))],
                bench_s7 as *const c_void,
                bench_stub_s7,
            ),
            _ => (
                T::I32,
                vec![T::I32; 16],
                INTS.iter().map(|v| b(bytes_of(v))).collect(),
                bench_s8 as *const c_void,
                bench_stub_s8,
            ),
        };
    Spec {
        name: &NAMES[i][6..],
        signature: SIGNATURES[i],
        ret,
        args,
        values,
        target,
        stub,
    }
}

/// Argument storage: 32-byte aligned slots that `avalue` points into, and
/// the same values at the cif's packed offsets.
struct Args {
    _slots: Vec<[u128; 2]>,
    avalue: Vec<*const c_void>,
    packed: Vec<u128>,
}

impl Args {
    fn new(cif: &Cif, values: &[Vec<u8>]) -> Args {
        let mut slots = vec![[0u128; 2]; values.len()];
        let mut packed = vec![0u128; cif.packed_size().div_ceil(16).max(1)];
        let packed_bytes = packed.len() * 16;
        for (i, v) in values.iter().enumerate() {
            let len = v.len().min(32);
            let at = cif.packed_offsets()[i] as usize;
            // SAFETY: a slot holds 32 bytes and `len` is at most that; the
            // packed copy is bounds-checked against the buffer.
            unsafe {
                ptr::copy_nonoverlapping(v.as_ptr(), slots[i].as_mut_ptr().cast::<u8>(), len);
                if at + len <= packed_bytes {
                    ptr::copy_nonoverlapping(
                        v.as_ptr(),
                        packed.as_mut_ptr().cast::<u8>().add(at),
                        len,
                    );
                }
            }
        }
        let avalue = slots.iter().map(|s| s.as_ptr().cast::<c_void>()).collect();
        Args {
            _slots: slots,
            avalue,
            packed,
        }
    }
}

/// A return buffer for every form: 32 bytes, 16-aligned.
type RetBuf = [u128; 2];

fn ret_bytes(r: &RetBuf) -> &[u8] {
    bytes_of(r)
}

/// Times S1-S8 (those the filter selects).
pub fn run(runner: &Runner, mut ffi: Option<&mut Libffi>) -> Result<Vec<CallRow>, CliError> {
    let mut rows = Vec::new();
    type S4Fn = unsafe extern "C" fn(i64, i64, i64, i64, i64, i64, i64, i64) -> i64;
    type S5Fn = unsafe extern "C" fn(i32, f64, i64, f32, *const c_void, i8, u16, f64) -> f64;
    type S8Fn = unsafe extern "C" fn(
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
    for (i, name) in NAMES.iter().enumerate() {
        if !runner.selected(name) {
            continue;
        }
        let spec = spec(i);
        let ffi = ffi.as_deref_mut();
        // The direct call's closure twice: one call checks the result, the
        // other closure is timed, so the timed one has a single caller.
        macro_rules! go {
            ($d:ty, $p:ty, $call:expr) => {
                case::<$d, $p>(runner, &spec, ffi, ($call)(), $call)
            };
        }
        // SAFETY (every direct call below): the C target called with its
        // declared signature, through a black-boxed pointer as the
        // criterion benches do, so the call cannot be inlined.
        let row = match i {
            0 => {
                let f = black_box(bench_s1 as unsafe extern "C" fn());
                go!((), (), || unsafe { f() })
            }
            1 => {
                let f = black_box(bench_s2 as unsafe extern "C" fn(i32, i32) -> i32);
                go!(i32, i32, || unsafe {
                    f(black_box(INTS[0]), black_box(INTS[1]))
                })
            }
            2 => {
                let f = black_box(bench_s3 as unsafe extern "C" fn(f64, f64, f64, f64) -> f64);
                go!(f64, f64, || unsafe {
                    f(
                        black_box(F64S[0]),
                        black_box(F64S[1]),
                        black_box(F64S[2]),
                        black_box(F64S[3]),
                    )
                })
            }
            3 => {
                let f = black_box(bench_s4 as S4Fn);
                go!(i64, i64, || unsafe {
                    f(
                        black_box(I64S[0]),
                        black_box(I64S[1]),
                        black_box(I64S[2]),
                        black_box(I64S[3]),
                        black_box(I64S[4]),
                        black_box(I64S[5]),
                        black_box(I64S[6]),
                        black_box(I64S[7]),
                    )
                })
            }
            4 => {
                let f = black_box(bench_s5 as S5Fn);
                go!(f64, f64, || unsafe {
                    f(
                        black_box(S5.0),
                        black_box(S5.1),
                        black_box(S5.2),
                        black_box(S5.3),
                        black_box(S5_PTR),
                        black_box(S5.5),
                        black_box(S5.6),
                        black_box(S5.7),
                    )
                })
            }
            5 => {
                let f = black_box(bench_s6 as unsafe extern "C" fn(S6Pair, S6Pair) -> S6Pair);
                go!(S6Pair, S6Pair, || unsafe {
                    f(black_box(PAIR), black_box(PAIR))
                })
            }
            6 => {
                let f = black_box(bench_s7 as unsafe extern "C" fn(S7Quad) -> S7Quad);
                // The packed form of an sret return hands back the buffer's
                // address, in rax.
                go!(S7Quad, *mut c_void, || unsafe { f(black_box(QUAD)) })
            }
            _ => {
                let f = black_box(bench_s8 as S8Fn);
                let a = INTS;
                go!(i32, i32, || unsafe {
                    f(
                        black_box(a[0]),
                        black_box(a[1]),
                        black_box(a[2]),
                        black_box(a[3]),
                        black_box(a[4]),
                        black_box(a[5]),
                        black_box(a[6]),
                        black_box(a[7]),
                        black_box(a[8]),
                        black_box(a[9]),
                        black_box(a[10]),
                        black_box(a[11]),
                        black_box(a[12]),
                        black_box(a[13]),
                        black_box(a[14]),
                        black_box(a[15]),
                    )
                })
            }
        }?;
        rows.push(row);
        runner.case_done();
    }
    Ok(rows)
}

/// Checks and times one signature. `D` is what the direct call returns,
/// `P` what the packed stub returns natively (the value, or the sret
/// buffer's address for a value returned in memory).
fn case<D: Copy, P: Copy>(
    runner: &Runner,
    spec: &Spec,
    ffi: Option<&mut Libffi>,
    d: D,
    direct: impl FnMut() -> D,
) -> Result<CallRow, CliError> {
    let ret = spec.ret.jitffi()?;
    let args = spec
        .args
        .iter()
        .map(|t| t.jitffi())
        .collect::<Result<Vec<_>, _>>()?;
    let cif = Cif::new(ret, &args)?;
    let a = Args::new(&cif, &spec.values);
    let mut lib = match ffi {
        Some(ffi) => {
            let r = spec.ret.libffi(ffi);
            let types: Vec<_> = spec.args.iter().map(|t| t.libffi(ffi)).collect();
            let c = ffi
                .cif(r, &types)
                .map_err(|e| check_failed(format!("{}: libffi: {e}", spec.name)))?;
            Some((&*ffi, c))
        }
        None => None,
    };
    let target = spec.target;
    let stub = spec.stub;
    let avalue = a.avalue.as_ptr();
    let packed = a.packed.as_ptr().cast::<c_void>();

    // Every form once, compared with the C stub (and the stub with the
    // direct call) before anything is timed.
    // (jitffi gives void a nominal size of 1, as libffi does.)
    let ret_size = if cif.ret().is_void() {
        0
    } else {
        cif.ret().size()
    };
    let n = ret_size.clamp(8, 32);
    let mut want: RetBuf = [0; 2];
    // SAFETY: the stub, the cif and the libffi cif all describe `target`;
    // every buffer is 32 bytes, enough for any return here.
    unsafe { stub(target, want.as_mut_ptr().cast(), avalue) };
    let db = bytes_of(&d);
    if db != &ret_bytes(&want)[..db.len()] {
        return Err(check_failed(format!(
            "{}: the C stub returned {}, the direct call {}",
            spec.name,
            hex(&ret_bytes(&want)[..db.len()]),
            hex(db)
        )));
    }
    let mut got: RetBuf = [0; 2];
    // SAFETY: as above.
    unsafe { cif.call_raw(target, got.as_mut_ptr().cast(), avalue) };
    compare(
        spec.name,
        "jitffi raw",
        &ret_bytes(&want)[..n],
        &ret_bytes(&got)[..n],
    )?;
    let mut sret: RetBuf = [0; 2];
    let sret_ptr = sret.as_mut_ptr().cast::<c_void>();
    // SAFETY: as above; `P` is how the packed stub returns this signature.
    let p = unsafe { cif.call_packed::<P>(target, sret_ptr, packed) };
    if std::mem::size_of::<P>() == ret_size {
        compare(
            spec.name,
            "jitffi packed",
            &ret_bytes(&want)[..ret_size],
            bytes_of(&p),
        )?;
    } else {
        compare(
            spec.name,
            "jitffi packed (sret address)",
            bytes_of(&(sret_ptr as usize)),
            bytes_of(&p),
        )?;
        compare(
            spec.name,
            "jitffi packed",
            &ret_bytes(&want)[..ret_size],
            &ret_bytes(&sret)[..ret_size],
        )?;
    }
    if let Some((ffi, c)) = lib.as_mut() {
        let mut got: RetBuf = [0; 2];
        // SAFETY: the libffi cif describes `target`; libffi only reads
        // the argument values.
        unsafe { (ffi.call)(&mut **c, target, got.as_mut_ptr().cast(), avalue as *mut _) };
        compare(
            spec.name,
            "libffi",
            &ret_bytes(&want)[..n],
            &ret_bytes(&got)[..n],
        )?;
    }

    let mut rbuf: RetBuf = [0; 2];
    let rvalue = rbuf.as_mut_ptr().cast::<c_void>();
    let label = |what: &str| format!("calls/{} {what}", spec.name);
    let direct_s = runner.time(&label("direct"), direct);
    // SAFETY (the timed closures): exactly the calls checked above.
    let stub_s = runner.time(&label("C stub"), || unsafe {
        stub(black_box(target), black_box(rvalue), black_box(avalue))
    });
    let cif = &cif;
    let raw_s = runner.time(&label("jitffi raw"), || unsafe {
        cif.call_raw(black_box(target), black_box(rvalue), black_box(avalue))
    });
    let packed_s = runner.time(&label("jitffi packed"), || unsafe {
        cif.call_packed::<P>(black_box(target), black_box(rvalue), black_box(packed))
    });
    let libffi_s: Option<Stats> = lib.as_mut().map(|(ffi, c)| {
        let call = ffi.call;
        let c: *mut FfiCif = &mut **c;
        runner.time(&label("libffi"), || unsafe {
            call(
                black_box(c),
                black_box(target),
                black_box(rvalue),
                black_box(avalue as *mut *mut c_void),
            )
        })
    });
    Ok(CallRow {
        name: spec.name.to_string(),
        signature: spec.signature.to_string(),
        direct_ns: round_ns(direct_s.median_ns),
        c_stub_ns: round_ns(stub_s.median_ns),
        jitffi_raw_ns: round_ns(raw_s.median_ns),
        jitffi_packed_ns: round_ns(packed_s.median_ns),
        libffi_ns: libffi_s.map(|s| round_ns(s.median_ns)),
        min_ns: CallMin {
            direct: round_ns(direct_s.min_ns),
            c_stub: round_ns(stub_s.min_ns),
            jitffi_raw: round_ns(raw_s.min_ns),
            jitffi_packed: round_ns(packed_s.min_ns),
            libffi: libffi_s.map(|s| round_ns(s.min_ns)),
        },
        ratios: CallRatios {
            libffi_over_jitffi_raw: libffi_s.map(|l| ratio(l.median_ns, raw_s.median_ns)),
            jitffi_raw_over_c_stub: ratio(raw_s.median_ns, stub_s.median_ns),
            jitffi_packed_over_direct: ratio(packed_s.median_ns, direct_s.median_ns),
        },
    })
}

fn compare(name: &str, form: &str, want: &[u8], got: &[u8]) -> Result<(), CliError> {
    if want == got {
        Ok(())
    } else {
        Err(check_failed(format!(
            "{name}: {form} returned {}, the C stub {}",
            hex(got),
            hex(want)
        )))
    }
}

/// The short table label of a call row.
pub fn short(name: &str) -> &'static str {
    NAMES
        .iter()
        .position(|n| n.ends_with(&format!("/{name}")))
        .map_or("", |i| SHORT[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sig::Signature;

    #[test]
    fn signature_texts_describe_the_cases() {
        for (i, short_form) in SHORT.iter().enumerate() {
            let s = spec(i);
            let lowered = Signature::parse(s.signature)
                .unwrap_or_else(|e| panic!("{}: {e}", s.signature))
                .lower(jitffi::Abi::host())
                .unwrap();
            assert_eq!(lowered.ret, s.ret.jitffi().unwrap(), "{}", s.name);
            let args: Vec<_> = s.args.iter().map(|t| t.jitffi().unwrap()).collect();
            assert_eq!(lowered.args, args, "{}", s.name);
            assert_eq!(s.values.len(), s.args.len(), "{}", s.name);
            assert_eq!(short(s.name), *short_form);
        }
        assert_eq!(short("S9"), "");
    }

    #[test]
    fn packed_buffer_holds_each_value_at_its_offset() {
        let s = spec(4); // S5: eight mixed arguments
        let args: Vec<_> = s.args.iter().map(|t| t.jitffi().unwrap()).collect();
        let cif = Cif::new(s.ret.jitffi().unwrap(), &args).unwrap();
        let a = Args::new(&cif, &s.values);
        let packed = bytes_of(&a.packed[0]).as_ptr();
        for (i, v) in s.values.iter().enumerate() {
            let at = cif.packed_offsets()[i] as usize;
            // SAFETY: the buffer covers packed_size bytes, each value inside.
            let got = unsafe { std::slice::from_raw_parts(packed.add(at), v.len()) };
            assert_eq!(got, &v[..], "argument {i}");
            // SAFETY: avalue[i] points at a 32-byte slot.
            let slot = unsafe { std::slice::from_raw_parts(a.avalue[i].cast::<u8>(), v.len()) };
            assert_eq!(slot, &v[..], "argument {i}");
        }
    }

    #[test]
    fn a_wrong_result_is_an_error_naming_the_form() {
        assert!(compare("S2", "jitffi raw", &[3, 0], &[3, 0]).is_ok());
        let e = compare("S2", "jitffi raw", &[3, 0], &[4, 0]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("S2: jitffi raw returned 0400, the C stub 0300"),
            "{msg}"
        );
    }
}
