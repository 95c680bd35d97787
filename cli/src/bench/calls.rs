//! Outgoing calls S1-S8: a direct call, the gcc-compiled C stub, jitffi's
//! libffi form and packed form, and the system libffi's `ffi_call`.

use std::ffi::c_void;
use std::hint::black_box;

use jitffi_oracle::bench_call;
use jitffi_oracle::bench_cases::ArgBuffers;
use jitffi_oracle::bench_stubs::*;

use super::measure::Stats;
use super::sysffi::{FfiCif, Libffi};
use super::types::{bytes_of, hex, jitffi_cif, libffi_cif, Plain, Sig, SIGS};
use super::{check_failed, CallMin, CallRatios, CallRow, Runner};
use crate::error::CliError;

/// One of S1-S8: its types and values, its text, and its C functions.
struct Spec {
    sig: &'static Sig,
    signature: &'static str,
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
    Spec {
        sig: &SIGS[i],
        signature: SIGNATURES[i],
        values: SIGS[i].values(),
        target: targets()[i],
        stub: STUBS[i],
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
    for (i, name) in NAMES.iter().enumerate() {
        if !runner.selected(name) {
            continue;
        }
        let spec = spec(i);
        let ffi = ffi.as_deref_mut();
        // The direct call twice: once to check the result, once in the
        // timed closure, so the timed closure has a single caller. `$p` is
        // what the packed stub returns natively.
        macro_rules! go {
            ($case:ident, $ty:ident, $target:ident, $p:ty) => {{
                let f = black_box($target as $ty);
                // SAFETY (both calls): the C target called with its
                // declared signature, through a black-boxed pointer as the
                // criterion benches do, so the call cannot be inlined.
                let d = unsafe { bench_call!($case, f) };
                case::<_, $p>(runner, &spec, ffi, d, || unsafe { bench_call!($case, f) })
            }};
        }
        let row = match i {
            0 => go!(S1, S1Fn, bench_s1, ()),
            1 => go!(S2, S2Fn, bench_s2, i32),
            2 => go!(S3, S3Fn, bench_s3, f64),
            3 => go!(S4, S4Fn, bench_s4, i64),
            4 => go!(S5, S5Fn, bench_s5, f64),
            5 => go!(S6, S6Fn, bench_s6, S6Pair),
            // The packed form of an sret return hands back the buffer's
            // address, in rax, under SysV; AAPCS64 returns nothing (the
            // callee need not keep x8).
            #[cfg(target_arch = "x86_64")]
            6 => go!(S7, S7Fn, bench_s7, *mut c_void),
            #[cfg(not(target_arch = "x86_64"))]
            6 => go!(S7, S7Fn, bench_s7, ()),
            _ => go!(S8, S8Fn, bench_s8, i32),
        }?;
        rows.push(row);
        runner.case_done();
    }
    Ok(rows)
}

/// Checks and times one signature. `D` is what the direct call returns,
/// `P` what the packed stub returns natively (the value; for a value
/// returned in memory, the buffer's address where the ABI hands it back,
/// else `()`).
fn case<D: Plain, P: Plain>(
    runner: &Runner,
    spec: &Spec,
    ffi: Option<&mut Libffi>,
    d: D,
    direct: impl FnMut() -> D,
) -> Result<CallRow, CliError> {
    let name = spec.sig.name;
    let cif = jitffi_cif(spec.sig)?;
    let a = ArgBuffers::new(&spec.values, cif.packed_size(), cif.packed_offsets());
    let mut lib = match ffi {
        Some(ffi) => {
            let c = libffi_cif(ffi, name, spec.sig)?;
            Some((&*ffi, c))
        }
        None => None,
    };
    let target = spec.target;
    let stub = spec.stub;
    let avalue = a.avalue().as_ptr();
    let packed = a.packed().as_ptr().cast::<c_void>();

    // Every form once, compared with the C stub (and the stub with the
    // direct call) before anything is timed.
    // (jitffi gives void a nominal size of 1, as libffi does.)
    let ret_size = if cif.ret().is_void() {
        0
    } else {
        cif.ret().size()
    };
    let n = ret_size.clamp(8, 32);
    let mut want_buf: RetBuf = [0; 2];
    // SAFETY: the stub, the cif and the libffi cif all describe `target`;
    // every buffer is 32 bytes, enough for any return here.
    unsafe { stub(target, want_buf.as_mut_ptr().cast(), avalue) };
    let want = ret_bytes(&want_buf);
    let db = bytes_of(&d);
    if db != &want[..db.len()] {
        return Err(check_failed(format!(
            "{name}: the C stub returned {}, the direct call {}",
            hex(&want[..db.len()]),
            hex(db)
        )));
    }
    // The first `len` bytes of a form's result against the stub's.
    let check = |form: &str, got: &[u8], len: usize| compare(name, form, &want[..len], &got[..len]);
    let mut got: RetBuf = [0; 2];
    // SAFETY: as above.
    unsafe { cif.call_raw(target, got.as_mut_ptr().cast(), avalue) };
    check("jitffi raw", ret_bytes(&got), n)?;
    let mut sret: RetBuf = [0; 2];
    let sret_ptr = sret.as_mut_ptr().cast::<c_void>();
    // SAFETY: as above; `P` is how the packed stub returns this signature.
    let p = unsafe { cif.call_packed::<P>(target, sret_ptr, packed) };
    if std::mem::size_of::<P>() == ret_size {
        check("jitffi packed", bytes_of(&p), ret_size)?;
    } else {
        if std::mem::size_of::<P>() == std::mem::size_of::<usize>() {
            compare(
                name,
                "jitffi packed (sret address)",
                bytes_of(&(sret_ptr as usize)),
                bytes_of(&p),
            )?;
        }
        check("jitffi packed", ret_bytes(&sret), ret_size)?;
    }
    if let Some((ffi, c)) = lib.as_mut() {
        let mut got: RetBuf = [0; 2];
        // SAFETY: the libffi cif describes `target`; libffi only reads
        // the argument values.
        unsafe { (ffi.call)(&mut **c, target, got.as_mut_ptr().cast(), avalue as *mut _) };
        check("libffi", ret_bytes(&got), n)?;
    }

    let mut rbuf: RetBuf = [0; 2];
    let rvalue = rbuf.as_mut_ptr().cast::<c_void>();
    let label = |what: &str| format!("calls/{name} {what}");
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
        name: name.to_string(),
        signature: spec.signature.to_string(),
        direct_ns: direct_s.ns(),
        c_stub_ns: stub_s.ns(),
        jitffi_raw_ns: raw_s.ns(),
        jitffi_packed_ns: packed_s.ns(),
        libffi_ns: libffi_s.map(Stats::ns),
        min_ns: CallMin {
            direct: direct_s.min(),
            c_stub: stub_s.min(),
            jitffi_raw: raw_s.min(),
            jitffi_packed: packed_s.min(),
            libffi: libffi_s.map(Stats::min),
        },
        ratios: CallRatios {
            libffi_over_jitffi_raw: libffi_s.map(|l| l.over(raw_s)),
            jitffi_raw_over_c_stub: raw_s.over(stub_s),
            jitffi_packed_over_direct: packed_s.over(direct_s),
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
    use crate::bench::types::jitffi_types;
    use crate::sig::Signature;

    #[test]
    fn signature_texts_describe_the_cases() {
        for (i, short_form) in SHORT.iter().enumerate() {
            let s = spec(i);
            let lowered = Signature::parse(s.signature)
                .unwrap_or_else(|e| panic!("{}: {e}", s.signature))
                .lower(jitffi::Abi::host())
                .unwrap();
            let (ret, args) = jitffi_types(s.sig).unwrap();
            let name = s.sig.name;
            assert_eq!(lowered.ret, ret, "{name}");
            assert_eq!(lowered.args, args, "{name}");
            assert_eq!(s.values.len(), s.sig.args.len(), "{name}");
            assert_eq!(short(name), *short_form);
            assert_eq!(NAMES[i], format!("calls/{name}"));
        }
        assert_eq!(short("S9"), "");
    }

    #[test]
    fn packed_buffer_holds_each_value_at_its_offset() {
        let s = spec(4); // S5: eight mixed arguments
        let cif = jitffi_cif(s.sig).unwrap();
        let a = ArgBuffers::new(&s.values, cif.packed_size(), cif.packed_offsets());
        let packed = a.packed().as_ptr().cast::<u8>();
        for (i, v) in s.values.iter().enumerate() {
            let at = cif.packed_offsets()[i] as usize;
            // SAFETY: the buffer covers packed_size bytes, each value inside.
            let got = unsafe { std::slice::from_raw_parts(packed.add(at), v.len()) };
            assert_eq!(got, &v[..], "argument {i}");
            // SAFETY: avalue[i] points at a 32-byte slot.
            let slot = unsafe { std::slice::from_raw_parts(a.avalue()[i].cast::<u8>(), v.len()) };
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
