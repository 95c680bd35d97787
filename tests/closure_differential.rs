//! Differential tests of jitffi closures: thousands of seeded random
//! signatures (see `support/randsig.rs`), each turned into a jitffi closure
//! whose handler records every argument's meaningful bytes and writes a
//! chosen return value. The closure is called by:
//!
//! 1. libffi's `ffi_call` (with `ffi_prep_cif_var` for variadic
//!    signatures): the independent reference;
//! 2. jitffi's libffi-form stub (`Cif::call_raw`), sometimes with a null
//!    return buffer;
//! 3. jitffi's packed-form stub (read through `support/native_ret.rs`);
//!
//! and a [`Closure::new`] closure (a Rust handler) of the same signature is
//! called through `call_raw`. Each call must deliver exactly the bytes sent
//! (no struct padding, 10 bytes of each x87 `long double`) at pointers aligned
//! for their types and not overlapping, run the handler once on a 16-byte
//! aligned stack with the closure's cif and user data and a return buffer
//! as `RawHandler` documents it (for a value returned in memory the
//! caller's own buffer; otherwise 16-aligned, at least 16 bytes and the
//! type's size, all of which the handler fills), and bring back what the handler wrote: narrow integers
//! widened to 8 bytes, whether the handler wrote them as an 8-byte
//! `ffi_arg` or at their own width over garbage. Nothing may be written
//! around the caller's return buffer, which is sometimes aligned only as
//! its type requires.
//!
//! A quarter of the signatures also get types libffi cannot describe
//! (unions, `__int128`, structs holding them); those run only through
//! jitffi's stubs. Arrays as struct members come from randsig in every
//! case (libffi sees repeated elements, which C lays out and classifies
//! the same way).
//!
//! Closures stay alive across cases in a ring of 48, retired in random
//! order and called once more before they go, so slot reuse that clobbers
//! a live closure shows; another test runs four threads of cases at once.
//!
//! libffi is not the reference where it is known to be wrong: a struct
//! holding only a `long double` is returned in st0 by gcc and in rax:rdx
//! by libffi 3.4.4 (no libffi caller, no libffi closure), and its
//! `ffi_call` damages `xmm0` when a 9-16 byte struct starts in `r9` (the
//! damage is recognised exactly and counted, the rest still checked).
//!
//! Environment: `JITFFI_DIFF_COUNT` (cases, default 5000), `JITFFI_DIFF_SEED`
//! (default: fresh, printed), `JITFFI_DIFF_INDEX` (just that case,
//! verbosely), `JITFFI_DIFF_SHOW` (failures printed, default 8). A failure
//! prints the seed, the case index, the signature and jitffi's plan; a
//! fault prints the case from a signal handler before the process dies.
//!
//! The harness checks itself: the same cases run with libffi closures as
//! the subject, and deliberately mismatched closures must be caught.
//!
//! The libffi quirks above are x86-64's; the host's own convention is the
//! one under test (x86-64 SysV or AArch64 AAPCS64).
#![cfg(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_os = "linux"
))]

use std::cell::Cell;
use std::collections::VecDeque;
use std::ffi::c_void;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::time::Instant;

use jitffi::plan::{ArgPass, Loc, RetPass};
use jitffi::{Cif, Type, TypeKind};
use libffi::raw as ffi;

#[path = "support/randsig.rs"]
mod randsig;

use randsig::{sc, st, Config, Scalar, Shape, Signature, Source, SplitMix64};

#[path = "support/ffi_convert.rs"]
mod ffi_convert;

use ffi_convert::{jit_type, LibffiCif};

#[path = "support/diff_run.rs"]
mod diff_run;

use diff_run::{env_u64, fresh_seed, on_fatal_signals, print_failures, write_stderr};

/// The crate, under the name `support/native_ret.rs` expects.
mod jit {
    pub use jitffi::*;
}
#[path = "support/native_ret.rs"]
mod native_ret;

#[path = "support/shapes.rs"]
mod shapes;

use shapes::{hex, is_narrow_int, mask};

#[path = "support/closure_diff.rs"]
mod closure_diff;

#[path = "support/child.rs"]
mod child;

use closure_diff::{digits, Probe, RetBuf, RvalueRule, Subject};

// ---------------------------------------------------------------------------
// Types

/// Calls `f(offset, scalar)` for every scalar inside `t` (every member of
/// a union, every element of an array).
fn each_scalar(t: &Type, base: usize, f: &mut impl FnMut(usize, &Type)) {
    match t.kind() {
        TypeKind::Struct { fields, offsets } => {
            for (field, off) in fields.iter().zip(offsets) {
                each_scalar(field, base + off, f);
            }
        }
        TypeKind::Union { fields } => {
            for field in fields {
                each_scalar(field, base, f);
            }
        }
        TypeKind::Array { elem, len } => {
            for i in 0..*len {
                each_scalar(elem, base + i * elem.size(), f);
            }
        }
        TypeKind::Void => {}
        _ => f(base, t),
    }
}

/// A random value of type `t`. Every x87 extended number gets an encoding
/// the FPU loads and stores unchanged (the explicit integer bit set exactly
/// when the exponent is nonzero), as `long double` returns go through st0.
/// (AArch64's binary128 travels in vector registers: any bits will do.)
fn random_value(t: &Type, src: &mut impl Source) -> Vec<u8> {
    let mut v = vec![0u8; t.size()];
    src.fill(&mut v);
    if !cfg!(target_arch = "x86_64") {
        return v;
    }
    each_scalar(t, 0, &mut |off, s| {
        let x87: &[usize] = match s.kind() {
            TypeKind::LongDouble => &[0],
            TypeKind::ComplexLongDouble => &[0, 16],
            _ => &[],
        };
        for &p in x87 {
            let at = off + p;
            let exponent_zero = v[at + 8] == 0 && v[at + 9] & 0x7f == 0;
            if exponent_zero {
                v[at + 7] &= 0x7f;
            } else {
                v[at + 7] |= 0x80;
            }
        }
    });
    v
}

/// `true` when `t` has parts libffi has no words for.
fn beyond_libffi(t: &Type) -> bool {
    match t.kind() {
        TypeKind::Union { .. } | TypeKind::I128 | TypeKind::U128 => true,
        TypeKind::Struct { fields, .. } => fields.iter().any(beyond_libffi),
        TypeKind::Array { elem, .. } => beyond_libffi(elem),
        _ => false,
    }
}

/// A struct (or array) holding nothing but one `long double`.
fn lone_long_double(t: &Type) -> bool {
    match t.kind() {
        TypeKind::LongDouble => true,
        TypeKind::Struct { fields, .. } => fields.len() == 1 && lone_long_double(&fields[0]),
        TypeKind::Array { elem, len } => *len == 1 && lone_long_double(elem),
        _ => false,
    }
}

/// Why libffi cannot serve as the reference for this signature, if it
/// cannot.
fn libffi_unusable(ret: &Type, args: &[Type]) -> Option<&'static str> {
    if beyond_libffi(ret) || args.iter().any(beyond_libffi) {
        return Some("types libffi cannot describe (union, __int128)");
    }
    // Checked against gcc -O2 -S: a struct whose only content is a long
    // double is returned in st0 (class X87); libffi 3.4.4 uses rax:rdx.
    if cfg!(target_arch = "x86_64") && ret.is_aggregate() && lone_long_double(ret) {
        return Some("libffi 3.4.4 returns struct { long double } in rax:rdx, gcc in st0");
    }
    // Checked with a C program on AArch64: a struct over 16 bytes that is
    // not an HFA travels by reference, and when its address goes on the
    // stack libffi 3.4.4's ffi_call aligns that 8-byte slot to the
    // struct's alignment, 16 with a long double inside: the address and
    // every later stack argument land 8 bytes off from where gcc (and
    // jitffi) read them.
    if cfg!(target_arch = "aarch64")
        && args
            .iter()
            .any(|t| t.is_aggregate() && t.size() > 16 && t.align() == 16 && !is_hfa(t))
    {
        return Some("libffi 3.4.4's ffi_call (AArch64) misplaces the stack address of a 16-aligned struct passed by reference");
    }
    None
}

/// An AAPCS64 homogeneous floating-point aggregate: one to four members of
/// one floating-point type (a complex number counts as two).
fn is_hfa(t: &Type) -> bool {
    let mut base = None;
    let mut n = 0;
    let mut mixed = false;
    each_scalar(t, 0, &mut |_, s| {
        let (b, k) = match s.kind() {
            TypeKind::F32 => (1, 1),
            TypeKind::F64 => (2, 1),
            TypeKind::LongDouble => (3, 1),
            TypeKind::ComplexF32 => (1, 2),
            TypeKind::ComplexF64 => (2, 2),
            TypeKind::ComplexLongDouble => (3, 2),
            _ => (0, 1),
        };
        mixed |= b == 0 || base.is_some_and(|x| x != b);
        base = Some(b);
        n += k;
    });
    !mixed && (1..=4).contains(&n)
}

/// Wraps `t` into something libffi cannot describe: a union with other
/// random members, an `__int128`, or a struct holding one of those.
fn exotic(t: &Type, cfg: &Config, src: &mut impl Source) -> Type {
    let is_int64 = matches!(t.kind(), TypeKind::I64 | TypeKind::U64);
    match src.below(6) {
        0 if is_int64 => Ok(int128(src)),
        0 | 1 => Type::union([t.clone(), other_type(cfg, src)]),
        2 => Type::union([other_type(cfg, src), t.clone(), other_type(cfg, src)]),
        3 => Type::union([t.clone()]),
        4 => {
            let wide = int128(src);
            if src.chance(1, 2) {
                Type::structure([wide, t.clone()])
            } else {
                Type::structure([t.clone(), wide])
            }
        }
        _ => Type::union([other_type(cfg, src), other_type(cfg, src)])
            .and_then(|u| Type::structure([t.clone(), u])),
    }
    .expect("exotic types are valid")
}

/// A random randsig argument type, as a jitffi type.
fn other_type(cfg: &Config, src: &mut impl Source) -> Type {
    jit_type(&cfg.value_shape(src))
}

fn int128(src: &mut impl Source) -> Type {
    if src.chance(1, 2) {
        Type::i128()
    } else {
        Type::u128()
    }
}

/// C-like text for a signature.
fn describe(ret: &Type, args: &[Type], fixed: Option<usize>) -> String {
    let mut s = format!("{ret} (");
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        if Some(i) == fixed {
            s.push_str("... ");
        }
        let _ = write!(s, "{a}");
    }
    if fixed == Some(args.len()) {
        s.push_str(", ...");
    }
    s.push(')');
    s
}

// ---------------------------------------------------------------------------
// Cases

/// One case: a signature, argument values, the return value and how the
/// handler and callers behave.
#[derive(Clone, Debug)]
struct Case {
    /// As randsig generated it (before any exotic rewrite).
    sig: Signature,
    ret: Type,
    args: Vec<Type>,
    fixed: Option<usize>,
    /// Types libffi cannot describe were introduced.
    jit_only: bool,
    values: Vec<Vec<u8>>,
    ret_value: Vec<u8>,
    /// The handler writes a narrow integer result widened to 8 bytes, not
    /// at its own width over garbage.
    widen_ret: bool,
    /// Also call through `call_raw` with a null return buffer.
    null_rvalue: bool,
    /// The caller's return buffer is aligned only as its type requires.
    loose_ret_align: bool,
}

impl Case {
    fn generate(src: &mut impl Source, cfg: &Config, exotics: bool) -> Case {
        let sig = cfg.signature(src);
        let mut args: Vec<Type> = sig.args.iter().map(jit_type).collect();
        let mut ret = sig.ret.as_ref().map_or_else(Type::void, jit_type);
        let jit_only = exotics && src.chance(1, 4);
        if jit_only {
            let places = args.len() + 1;
            let forced = src.below(places as u64) as usize;
            for (i, a) in args.iter_mut().enumerate() {
                if i == forced || src.chance(1, 4) {
                    *a = exotic(a, cfg, src);
                }
            }
            if forced == args.len() || src.chance(1, 4) {
                let base = if ret.is_void() { Type::u64() } else { ret };
                ret = exotic(&base, cfg, src);
            }
        }
        let values = args.iter().map(|a| random_value(a, src)).collect();
        let ret_value = if ret.is_void() {
            Vec::new()
        } else {
            random_value(&ret, src)
        };
        Case {
            fixed: sig.fixed,
            sig,
            ret,
            args,
            jit_only,
            values,
            ret_value,
            widen_ret: src.chance(1, 2),
            null_rvalue: src.chance(1, 4),
            loose_ret_align: src.chance(1, 3),
        }
    }

    fn describe(&self) -> String {
        describe(&self.ret, &self.args, self.fixed)
    }

    fn cif(&self) -> jitffi::Result<Cif> {
        match self.fixed {
            Some(n) => Cif::new_variadic(&self.ret, &self.args[..n], &self.args[n..]),
            None => Cif::new(&self.ret, &self.args),
        }
    }
}

// ---------------------------------------------------------------------------
// Crash notes

const NO_STEP: &str = "";

thread_local! {
    /// (seed, case index, what is being called) for the fault handler.
    static RUNNING: Cell<(u64, u64, &'static str)> = const { Cell::new((0, 0, NO_STEP)) };
}

fn set_running(seed: u64, index: u64, step: &'static str) {
    RUNNING.with(|r| r.set((seed, index, step)));
}

fn set_step(step: &'static str) {
    RUNNING.with(|r| {
        let (s, i, _) = r.get();
        r.set((s, i, step));
    });
}

extern "C" fn on_fault(_sig: libc::c_int) {
    let (seed, index, step) = RUNNING.with(|r| r.get());
    let mut a = [0u8; 20];
    let mut b = [0u8; 20];
    let (seed, index) = (digits(seed, 16, &mut a), digits(index, 10, &mut b));
    write_stderr(b"\n*** closure_differential: fatal signal in case ");
    write_stderr(index);
    write_stderr(b" of seed 0x");
    write_stderr(seed);
    write_stderr(b" while calling ");
    write_stderr(step.as_bytes());
    write_stderr(b"\n*** rerun: JITFFI_DIFF_SEED=0x");
    write_stderr(seed);
    write_stderr(b" JITFFI_DIFF_INDEX=");
    write_stderr(index);
    write_stderr(b" cargo test --test closure_differential -- --nocapture\n");
    // SA_RESETHAND restored the default action: returning re-runs the
    // faulting instruction and the process dies of the signal.
}

fn install_fault_notes() {
    on_fatal_signals(on_fault);
}

// ---------------------------------------------------------------------------
// Calls

/// Argument values in 16-aligned storage, and the `avalue` array.
struct ArgMem {
    _slots: Vec<Vec<u128>>,
    avalue: Vec<*mut c_void>,
}

impl ArgMem {
    fn new(values: &[Vec<u8>]) -> ArgMem {
        let mut slots: Vec<Vec<u128>> = values
            .iter()
            .map(|v| vec![0u128; v.len().div_ceil(16).max(1)])
            .collect();
        let avalue = slots
            .iter_mut()
            .zip(values)
            .map(|(s, v)| {
                let p = s.as_mut_ptr().cast::<u8>();
                // SAFETY: the slot holds at least `v.len()` bytes.
                unsafe { ptr::copy_nonoverlapping(v.as_ptr(), p, v.len()) };
                p.cast::<c_void>()
            })
            .collect();
        ArgMem {
            _slots: slots,
            avalue,
        }
    }
}

/// The packed form's argument buffer.
fn packed_buffer(cif: &Cif, values: &[Vec<u8>]) -> Result<Vec<u128>, String> {
    let offsets = cif.packed_offsets();
    let size = cif.packed_size();
    let mut buf = vec![0xa7a7_a7a7_a7a7_a7a7_a7a7_a7a7_a7a7_a7a7u128; size.div_ceil(16).max(1)];
    if offsets.len() != values.len() {
        return Err(format!(
            "jitffi packed layout: {} offsets for {} arguments",
            offsets.len(),
            values.len()
        ));
    }
    for (v, &off) in values.iter().zip(offsets) {
        let off = off as usize;
        if off + v.len() > size {
            return Err(format!(
                "jitffi packed layout: offsets {offsets:?} overflow {size} bytes"
            ));
        }
        // SAFETY: `off + v.len() <= size <= buf`'s bytes (checked).
        unsafe {
            ptr::copy_nonoverlapping(v.as_ptr(), buf.as_mut_ptr().cast::<u8>().add(off), v.len())
        };
    }
    Ok(buf)
}

/// Checks what the handler saw in one call.
fn check_seen(
    case: &Case,
    subject: &Subject,
    subject_args: &[Type],
    probe: &Probe,
    who: &str,
    errors: &mut Vec<String>,
) {
    if probe.calls != 1 {
        errors.push(format!(
            "{who}: handler ran {} times, expected once",
            probe.calls
        ));
        return;
    }
    if probe.stack_misaligned {
        errors.push(format!("{who}: handler entered with a misaligned stack"));
    }
    let (cif, user_data) = subject.expected(probe);
    if probe.cif != cif {
        errors.push(format!(
            "{who}: handler got cif {:#x}, expected {cif:#x}",
            probe.cif
        ));
    }
    if let Some(u) = user_data {
        if probe.user_data != u {
            errors.push(format!(
                "{who}: handler got user_data {:#x}, expected {u:#x}",
                probe.user_data
            ));
        }
    }
    if let Some(n) = probe.len_seen {
        if n != subject_args.len() {
            errors.push(format!(
                "{who}: Args::len() is {n}, the cif has {}",
                subject_args.len()
            ));
        }
    }
    if probe.rule.callers && probe.caller_rvalue != 0 && probe.rvalue != probe.caller_rvalue {
        errors.push(format!(
            "{who}: handler's rvalue {:#x} is not the caller's return buffer {:#x} (a value \
             returned in memory)",
            probe.rvalue, probe.caller_rvalue
        ));
    }
    if !case.ret.is_void() {
        let a = probe.rule.align;
        if probe.rvalue % a != 0 {
            let whose = if probe.rvalue == probe.caller_rvalue {
                ", the caller's return buffer passed through"
            } else {
                ""
            };
            errors.push(format!(
                "{who}: handler's rvalue {:#x} is not {a}-aligned (return type {}{whose})",
                probe.rvalue, case.ret
            ));
        }
    }
    for (i, t) in subject_args.iter().enumerate() {
        if probe.addrs[i] % t.align() != 0 {
            errors.push(format!(
                "{who}: args[{i}] = {:#x} is not aligned for {t} ({})",
                probe.addrs[i],
                t.align()
            ));
        }
    }
    let mut spans: Vec<(usize, usize, usize)> = (0..subject_args.len())
        .filter(|&i| probe.sizes[i] > 0)
        .map(|i| (probe.addrs[i], probe.addrs[i] + probe.sizes[i], i))
        .collect();
    spans.sort_unstable();
    for w in spans.windows(2) {
        if w[0].1 > w[1].0 {
            errors.push(format!(
                "{who}: args[{}] and args[{}] overlap",
                w[0].2, w[1].2
            ));
        }
    }
    for (i, (t, sent)) in case.args.iter().zip(&case.values).enumerate() {
        let got = &probe.received[i];
        let m = mask(t);
        if let Some(at) = (0..sent.len()).find(|&b| m[b] && got.get(b) != Some(&sent[b])) {
            errors.push(format!(
                "{who}: argument {i} ({t}) differs at byte {at}: sent {}, handler got {}",
                hex(sent),
                hex(got)
            ));
        }
    }
}

/// libffi 3.4.4's `ffi_call` (x86-64) stores a whole 9-16 byte struct into
/// the register slot of its first eightbyte; when that slot is `r9`, the
/// store runs over into the saved `xmm0`, whose low `size - 8` bytes then
/// hold bytes 8.. of the struct. `true` when exactly that explains what the
/// handler received: one argument wrong, only inside its `xmm0` piece,
/// holding the struct's tail there.
fn libffi_r9_overflow(case: &Case, cif: &Cif, probe: &Probe) -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let plan = cif.plan();
    let pieces = |i: usize| match &plan.args[i].pass {
        ArgPass::Direct(p) => p.clone(),
        ArgPass::Indirect { .. } => Vec::new(),
    };
    let culprit = (0..plan.args.len()).find(|&i| {
        let t = &plan.args[i].ty;
        t.is_aggregate()
            && (9..=16).contains(&t.size())
            && pieces(i)
                .iter()
                .any(|p| p.offset == 0 && p.loc == Loc::Gpr(9))
    });
    let Some(k) = culprit else { return false };
    let tail = &case.values[k][8..];
    let wrong: Vec<usize> = (0..case.args.len())
        .filter(|&i| {
            let m = mask(&case.args[i]);
            (0..case.values[i].len()).any(|b| m[b] && probe.received[i][b] != case.values[i][b])
        })
        .collect();
    let [i] = wrong[..] else { return false };
    let Some(p) = pieces(i).into_iter().find(|p| p.loc == Loc::Vec(0)) else {
        return false;
    };
    let (lo, n) = (p.offset as usize, tail.len().min(p.size as usize));
    let m = mask(&case.args[i]);
    let outside = (0..case.values[i].len())
        .any(|b| (b < lo || b >= lo + n) && m[b] && probe.received[i][b] != case.values[i][b]);
    !outside && probe.received[i][lo..lo + n] == tail[..n]
}

/// Notes from a passing case.
#[derive(Default)]
struct Notes {
    libffi_skipped: Option<&'static str>,
    libffi_bug: bool,
}

/// Which caller to run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    Libffi,
    Raw,
    RawNull,
    Packed,
}

impl Caller {
    fn name(self) -> &'static str {
        match self {
            Caller::Libffi => "libffi ffi_call",
            Caller::Raw => "jitffi call_raw",
            Caller::RawNull => "jitffi call_raw (null rvalue)",
            Caller::Packed => "jitffi packed",
        }
    }

    /// For the fault handler: caller and subject in one static string.
    fn step(self, subject: &Subject) -> &'static str {
        match (self, subject) {
            (Caller::Libffi, Subject::Libffi { .. }) => "libffi ffi_call -> libffi closure",
            (Caller::Libffi, _) => "libffi ffi_call -> jitffi closure",
            (Caller::Raw | Caller::RawNull, Subject::Raw(_)) => "jitffi call_raw -> RawClosure",
            (Caller::Raw | Caller::RawNull, Subject::Rust(_)) => "jitffi call_raw -> Closure::new",
            (Caller::Raw | Caller::RawNull, Subject::Libffi { .. }) => {
                "jitffi call_raw -> libffi closure"
            }
            (Caller::Packed, Subject::Libffi { .. }) => "jitffi packed -> libffi closure",
            (Caller::Packed, _) => "jitffi packed -> jitffi closure",
        }
    }
}

/// Calls `subject` once from `caller` and checks everything.
#[allow(clippy::too_many_arguments)]
fn call_and_check(
    case: &Case,
    cif: &Cif,
    lcif: Option<&LibffiCif>,
    subject: &Subject,
    subject_args: &[Type],
    probe: &mut Probe,
    caller: Caller,
    notes: &mut Notes,
    errors: &mut Vec<String>,
) {
    let who = format!("{} -> {}", caller.name(), subject.name());
    let mem = ArgMem::new(&case.values);
    let avalue = mem.avalue.as_ptr();
    let code = subject.code();
    let len = match caller {
        Caller::Libffi if case.ret.is_void() => 0,
        Caller::Libffi => case.ret.size().max(8),
        _ => cif.ret_buffer_size(),
    };
    let mut rbuf = RetBuf::new(&case.ret, len, case.loose_ret_align);
    probe.arm();
    if caller != Caller::RawNull {
        probe.caller_rvalue = rbuf.ptr() as usize;
    }
    set_step(caller.step(subject));
    match caller {
        Caller::Libffi => {
            let lcif = lcif.expect("a libffi cif");
            // SAFETY: the closure has the cif's signature; avalue holds one
            // pointer per argument; the buffer has max(8, size) bytes.
            unsafe {
                let f = std::mem::transmute::<*const c_void, unsafe extern "C" fn()>(code);
                ffi::ffi_call(lcif.raw(), Some(f), rbuf.ptr(), avalue.cast_mut())
            }
        }
        Caller::Raw | Caller::RawNull => {
            let r = if caller == Caller::RawNull {
                ptr::null_mut()
            } else {
                rbuf.ptr()
            };
            // SAFETY: as above, with jitffi's contract (ret_buffer_size bytes,
            // aligned for the return type, or null).
            unsafe { cif.call_raw(code, r, avalue.cast()) }
        }
        Caller::Packed => {
            let buf = match packed_buffer(cif, &case.values) {
                Ok(b) => b,
                Err(e) => {
                    errors.push(e);
                    return;
                }
            };
            let r = rbuf.ptr();
            // SAFETY: the buffer is 16-aligned, laid out at the packed
            // offsets; `r` has ret_buffer_size bytes.
            let outcome = catch_unwind(AssertUnwindSafe(|| unsafe {
                native_ret::call_packed_into(
                    cif.plan(),
                    cif.packed_entry() as *const c_void,
                    code,
                    r,
                    buf.as_ptr().cast(),
                )
            }));
            if let Err(e) = outcome {
                let msg = e
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| e.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                errors.push(format!("{who}: {msg}"));
            }
        }
    }
    set_step(NO_STEP);
    let mut own = Vec::new();
    check_seen(case, subject, subject_args, probe, &who, &mut own);
    if caller == Caller::Libffi && !own.is_empty() && libffi_r9_overflow(case, cif, probe) {
        notes.libffi_bug = true;
        own.clear();
        check_seen_except_args(case, subject, subject_args, probe, &who, &mut own);
    }
    errors.extend(own);
    if caller != Caller::RawNull {
        rbuf.check(&case.ret, &case.ret_value, &who, errors);
    }
}

/// [`check_seen`] without the argument values (for a libffi caller known
/// to have damaged one).
fn check_seen_except_args(
    case: &Case,
    subject: &Subject,
    subject_args: &[Type],
    probe: &Probe,
    who: &str,
    errors: &mut Vec<String>,
) {
    let mut clean = case.clone();
    clean.values.clone_from(&probe.received);
    check_seen(&clean, subject, subject_args, probe, who, errors);
}

/// What the subject is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// jitffi closures (RawClosure and Closure::new).
    Jit,
    /// libffi closures: checks the harness against a known implementation.
    LibffiSelfCheck,
}

/// A closure kept alive across cases.
struct Kept {
    index: u64,
    case: Case,
    cif: Cif,
    subject: Subject,
    probe: Box<Probe>,
}

/// Runs one case; `subject_sig` is the closure's signature (the case's own,
/// except in the harness's mismatch test). Returns the RawClosure for the
/// ring when there is one.
fn run_case(
    case: &Case,
    subject_sig: Option<(&Type, &[Type])>,
    mode: Mode,
    index: u64,
    notes: &mut Notes,
) -> Result<Option<Kept>, Vec<String>> {
    let (sret, sargs) = subject_sig.unwrap_or((&case.ret, &case.args));
    let mut errors = Vec::new();
    // Randsig's independent layouts must be jitffi's.
    if !case.jit_only {
        for (i, (t, s)) in case.args.iter().zip(&case.sig.args).enumerate() {
            if (t.size(), t.align()) != (s.size(), s.align())
                || (matches!(s, Shape::Struct(_))
                    && t.field_offsets() != Some(&s.field_offsets()[..]))
            {
                errors.push(format!(
                    "jitffi Type layout of argument {i} ({s}): {} bytes align {} offsets {:?}, C: {} align {} offsets {:?}",
                    t.size(), t.align(), t.field_offsets(), s.size(), s.align(), s.field_offsets()
                ));
            }
        }
    }
    let cif = match case.cif() {
        Ok(c) => c,
        Err(e) => {
            errors.push(format!("jitffi refused the signature: {e}"));
            return Err(errors);
        }
    };
    let scif = if subject_sig.is_some() {
        let s = match case.fixed {
            Some(n) => Cif::new_variadic(sret, &sargs[..n], &sargs[n..]),
            None => Cif::new(sret, sargs),
        };
        s.expect("the mismatched signature is valid")
    } else {
        cif
    };
    let unusable = libffi_unusable(&case.ret, &case.args);
    notes.libffi_skipped = unusable;
    let lcif = match unusable {
        Some(_) => None,
        None => match LibffiCif::new_checked(&case.ret, &case.args, case.fixed) {
            Ok(l) => Some(l),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    let mut callers = vec![Caller::Raw, Caller::Packed];
    if case.null_rvalue {
        callers.push(Caller::RawNull);
    }
    if lcif.is_some() {
        callers.insert(0, Caller::Libffi);
    }
    let rule = match mode {
        Mode::Jit => RvalueRule::jitffi(&scif),
        Mode::LibffiSelfCheck => RvalueRule::libffi(sret, false),
    };
    // Every caller in `callers` into `subject`.
    let mut call_all =
        |subject: &Subject, probe: &mut Probe, callers: &[Caller], errors: &mut Vec<String>| {
            for &c in callers {
                call_and_check(
                    case,
                    &cif,
                    lcif.as_ref(),
                    subject,
                    sargs,
                    probe,
                    c,
                    notes,
                    errors,
                );
            }
        };
    let mut probe = Probe::new(
        sret,
        sargs,
        &case.ret_value,
        case.widen_ret,
        rule,
        false,
        false,
    );
    let mut kept = None;
    match mode {
        Mode::Jit => {
            match Subject::raw(&scif, &mut probe) {
                Ok(subject) => {
                    call_all(&subject, &mut probe, &callers, &mut errors);
                    kept = Some(Kept {
                        index,
                        case: case.clone(),
                        cif,
                        subject,
                        probe,
                    });
                }
                Err(e) => errors.push(format!("jitffi RawClosure::new failed: {e}")),
            }
            let mut probe = Probe::new(
                sret,
                sargs,
                &case.ret_value,
                case.widen_ret,
                rule,
                false,
                false,
            );
            match Subject::rust(&scif, &mut probe) {
                Ok(subject) => call_all(&subject, &mut probe, &[Caller::Raw], &mut errors),
                Err(e) => errors.push(format!("jitffi Closure::new failed: {e}")),
            }
        }
        // The libffi subject has libffi's bugs on both sides of the call.
        Mode::LibffiSelfCheck if unusable.is_some() => {}
        Mode::LibffiSelfCheck => {
            let built = match LibffiCif::new_checked(sret, sargs, case.fixed) {
                Ok(l) => Subject::libffi(l, &mut probe),
                Err(e) => Err(e),
            };
            match built {
                Ok(subject) => call_all(&subject, &mut probe, &callers, &mut errors),
                Err(e) => errors.push(e),
            }
        }
    }
    if errors.is_empty() {
        Ok(kept)
    } else {
        errors.push(format!("jitffi plan:\n{}", scif.plan()));
        Err(errors)
    }
}

// ---------------------------------------------------------------------------
// Runs

fn header(seed: u64, index: u64, case: &Case) -> String {
    format!(
        "case {index} of seed {seed:#x} (rerun: JITFFI_DIFF_SEED={seed:#x} JITFFI_DIFF_INDEX={index})\n  \
         signature: {}{}",
        case.describe(),
        if case.jit_only { "  [jitffi only]" } else { "" }
    )
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: Vec<(u64, String)>,
    jit_only: usize,
    variadic: usize,
    libffi_skipped: usize,
    libffi_bugs: usize,
    ring_checks: usize,
}

/// Closures kept alive: at most this many, retired in random order.
const RING: usize = 48;

/// Calls a kept closure once more before dropping it.
fn retire(k: Kept, seed: u64, created_since: u64, tally: &mut Tally) {
    let mut k = k;
    set_running(seed, k.index, NO_STEP);
    let mut errors = Vec::new();
    let mut notes = Notes::default();
    let args = k.case.args.clone();
    call_and_check(
        &k.case,
        &k.cif,
        None,
        &k.subject,
        &args,
        &mut k.probe,
        Caller::Raw,
        &mut notes,
        &mut errors,
    );
    tally.ring_checks += 1;
    if !errors.is_empty() {
        let mut text = format!(
            "{}\n  (the case's RawClosure called again after {created_since} more closures were made; \
             rerun with JITFFI_DIFF_COUNT={} to include them)",
            header(seed, k.index, &k.case),
            k.index + created_since + 1
        );
        for e in errors {
            let _ = write!(text, "\n  {}", e.replace('\n', "\n    "));
        }
        tally.failed.push((k.index, text));
    }
}

/// Runs cases `indices` of `seed` (printing each case first if `verbose`).
fn run_seeded(seed: u64, indices: impl Iterator<Item = u64>, mode: Mode, verbose: bool) -> Tally {
    install_fault_notes();
    let cfg = Config::default();
    let mut tally = Tally::default();
    let mut ring: VecDeque<Kept> = VecDeque::new();
    let mut retire_src = SplitMix64::new(seed ^ 0x5eed_f00d_2196);
    let mut made = 0u64;
    let mut made_at = std::collections::HashMap::new();
    for index in indices {
        let case = Case::generate(
            &mut SplitMix64::for_case(seed, index),
            &cfg,
            mode == Mode::Jit,
        );
        set_running(seed, index, NO_STEP);
        if verbose {
            eprintln!("{case:#?}\n{}", header(seed, index, &case));
            match case.cif() {
                Ok(c) => eprintln!("jitffi plan:\n{}", c.plan()),
                Err(e) => eprintln!("jitffi refused: {e}"),
            }
        }
        tally.jit_only += usize::from(case.jit_only);
        tally.variadic += usize::from(case.fixed.is_some());
        let mut notes = Notes::default();
        match run_case(&case, None, mode, index, &mut notes) {
            Ok(kept) => {
                tally.passed += 1;
                if let Some(k) = kept {
                    made += 1;
                    made_at.insert(k.index, made);
                    ring.push_back(k);
                }
            }
            Err(errors) => {
                let mut text = header(seed, index, &case);
                for e in errors {
                    let _ = write!(text, "\n  {}", e.replace('\n', "\n    "));
                }
                tally.failed.push((index, text));
            }
        }
        tally.libffi_skipped += usize::from(notes.libffi_skipped.is_some());
        tally.libffi_bugs += usize::from(notes.libffi_bug);
        if ring.len() > RING {
            let at = retire_src.below(ring.len() as u64) as usize;
            let k = ring.remove(at).expect("in range");
            let since = made - made_at[&k.index];
            retire(k, seed, since, &mut tally);
        }
    }
    while let Some(k) = ring.pop_front() {
        let since = made - made_at[&k.index];
        retire(k, seed, since, &mut tally);
    }
    tally
}

/// An error line reduced to its kind: numbers and addresses blanked, the
/// values after the first colon dropped.
fn error_kind(line: &str) -> Option<String> {
    let (who, rest) = line.split_once(": ")?;
    if who.starts_with(' ')
        || who == "signature"
        || who.starts_with("(the case")
        || who == "jitffi plan"
    {
        return None;
    }
    let what: Vec<&str> = rest
        .split(':')
        .next()
        .unwrap_or("")
        .split(' ')
        .take_while(|w| !w.starts_with('('))
        .map(|w| {
            if w.chars().any(|c| c.is_ascii_digit()) {
                "#"
            } else {
                w
            }
        })
        .collect();
    Some(format!("{who}: {}", what.join(" ")))
}

/// Prints a summary of `tally` and fails the test if any case failed.
fn report(label: &str, seed: u64, tally: &Tally, elapsed: std::time::Duration) {
    eprintln!(
        "{label}: {} passed, {} failed in {elapsed:.1?}; {} variadic, {} with types only jitffi \
         describes, {} without the libffi caller (those, or known libffi bugs), {} where libffi's \
         ffi_call hit its known r9 bug, {} kept closures called again",
        tally.passed,
        tally.failed.len(),
        tally.variadic,
        tally.jit_only,
        tally.libffi_skipped,
        tally.libffi_bugs,
        tally.ring_checks
    );
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for (_, text) in &tally.failed {
        let seen: std::collections::BTreeSet<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("  "))
            .filter_map(error_kind)
            .collect();
        for k in seen {
            *kinds.entry(k).or_default() += 1;
        }
    }
    for (kind, n) in &kinds {
        eprintln!("  {n:6} cases with: {kind}");
    }
    print_failures(&tally.failed);
    assert!(
        tally.failed.is_empty(),
        "{label}: {} of {} cases failed (seed {seed:#x})",
        tally.failed.len(),
        tally.failed.len() + tally.passed
    );
}

fn run(mode: Mode, default_count: u64) {
    let seed = env_u64("JITFFI_DIFF_SEED").unwrap_or_else(fresh_seed);
    let label = match mode {
        Mode::Jit => "closure_differential",
        Mode::LibffiSelfCheck => "closure_differential (harness self-check, libffi closures)",
    };
    eprintln!("{label}: seed {seed:#x} (set JITFFI_DIFF_SEED to repeat)");
    let t0 = Instant::now();
    let tally = match env_u64("JITFFI_DIFF_INDEX") {
        Some(i) => run_seeded(seed, std::iter::once(i), mode, true),
        None => {
            let n = env_u64("JITFFI_DIFF_COUNT").unwrap_or(default_count);
            run_seeded(seed, 0..n, mode, false)
        }
    };
    report(label, seed, &tally, t0.elapsed());
}

// ---------------------------------------------------------------------------
// Tests

/// Thousands of random signatures: libffi and jitffi callers into jitffi
/// closures.
#[test]
fn callers_into_jitffi_closures() {
    run(Mode::Jit, 5000);
}

/// Closures made, called and freed on several threads at once (slot
/// allocation and thunk compilation under contention), each thread with
/// its own seed derived from the run's.
#[test]
fn closures_on_several_threads() {
    let seed = env_u64("JITFFI_DIFF_SEED").unwrap_or_else(fresh_seed);
    eprintln!("closure_differential (4 threads): seeds {seed:#x} + 1..=4");
    let t0 = Instant::now();
    let tallies: Vec<(u64, Tally)> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=4u64)
            .map(|t| {
                let seed = seed.wrapping_add(t);
                s.spawn(move || (seed, run_seeded(seed, 0..600, Mode::Jit, false)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect()
    });
    for (seed, tally) in &tallies {
        report("closure_differential (thread)", *seed, tally, t0.elapsed());
    }
}

/// A long soak: `cargo test --test closure_differential -- --ignored`.
#[test]
#[ignore]
fn soak_100k_closure_signatures() {
    run(Mode::Jit, 100_000);
}

/// The harness passes a known implementation: the same cases (minus the
/// types libffi cannot describe) with libffi closures as the subject.
#[test]
fn harness_passes_libffi_closures() {
    run(Mode::LibffiSelfCheck, 1500);
}

/// The harness must be able to fail: a closure whose signature differs
/// from its callers' in ABI-relevant ways (same sizes; other classes,
/// signedness or order) is reported.
#[test]
fn harness_catches_mismatched_closures() {
    use Scalar::*;
    let sig = |ret: Option<Shape>, args: Vec<Shape>| Signature {
        ret,
        args,
        fixed: None,
    };
    // (the callers' signature, the closure's, what must be reported)
    let mut cases = vec![
        (
            sig(None, vec![sc(F64), sc(I64)]),
            sig(None, vec![sc(I64), sc(F64)]),
            "argument 0",
        ),
        (
            sig(None, vec![st(&[U64, U64])]),
            sig(None, vec![st(&[F64, F64])]),
            "argument 0",
        ),
        // (Signedness is invisible here: callers extend narrow results by
        // their own type, and handlers read arguments at their width.)
        (
            sig(Some(sc(I32)), vec![]),
            sig(Some(sc(F32)), vec![]),
            "return value",
        ),
        (
            sig(None, vec![st(&[F32, F32])]),
            sig(None, vec![st(&[I32, I32])]),
            "argument 0",
        ),
        (
            sig(Some(st(&[F32, F32])), vec![]),
            sig(Some(st(&[I32, I32])), vec![]),
            "return value",
        ),
        (
            sig(Some(st(&[I64, I64, I64])), vec![sc(I64)]),
            sig(Some(st(&[F64, F64, F64])), vec![sc(F64)]),
            "argument 0",
        ),
        (
            sig(None, (0..9).map(|_| sc(F64)).chain([sc(I32)]).collect()),
            sig(
                None,
                (0..8).map(|_| sc(F64)).chain([sc(I32), sc(F32)]).collect(),
            ),
            "argument 8",
        ),
    ];
    // A double read where an int64_t was returned. Not on AArch64: there
    // the handler's own copy of the result may go through d0 (Rust moves 8
    // bytes with FP registers), leaving in d0 exactly the bits a caller
    // then reads, so the mismatch cannot show reliably.
    if cfg!(target_arch = "x86_64") {
        cases.insert(
            4,
            (
                sig(Some(sc(F64)), vec![sc(I8)]),
                sig(Some(sc(I64)), vec![sc(I8)]),
                "return value",
            ),
        );
    }
    let mut src = SplitMix64::new(0xbad);
    for (real, told, expect) in cases {
        // Every byte's sign bit set: a lost extension and a misplaced
        // value both show.
        let ret = real.ret.as_ref().map_or_else(Type::void, jit_type);
        let args: Vec<Type> = real.args.iter().map(jit_type).collect();
        let mut values: Vec<Vec<u8>> = args
            .iter()
            .map(|a| random_value(a, &mut src).iter().map(|b| b | 0x80).collect())
            .collect();
        for v in &mut values {
            v[0] ^= 0x5a;
        }
        let ret_value = if ret.is_void() {
            Vec::new()
        } else {
            random_value(&ret, &mut src)
                .iter()
                .map(|b| b | 0x80)
                .collect()
        };
        let case = Case {
            sig: real,
            ret,
            args,
            fixed: None,
            jit_only: false,
            values,
            ret_value,
            widen_ret: false,
            null_rvalue: false,
            loose_ret_align: false,
        };
        let sret = told.ret.as_ref().map_or_else(Type::void, jit_type);
        let sargs: Vec<Type> = told.args.iter().map(jit_type).collect();
        for mode in [Mode::LibffiSelfCheck, Mode::Jit] {
            let whos: &[&str] = match mode {
                Mode::LibffiSelfCheck => &[
                    "libffi ffi_call -> libffi closure",
                    "jitffi call_raw -> libffi closure",
                    "jitffi packed -> libffi closure",
                ],
                Mode::Jit => &[
                    "libffi ffi_call -> jitffi RawClosure",
                    "jitffi call_raw -> jitffi RawClosure",
                    "jitffi packed -> jitffi RawClosure",
                    "jitffi call_raw -> jitffi Closure::new",
                ],
            };
            let closure = describe(&sret, &sargs, None);
            let mut notes = Notes::default();
            match run_case(&case, Some((&sret, &sargs)), mode, 0, &mut notes) {
                Ok(_) => panic!(
                    "{mode:?}: a closure {closure} called as {} went unnoticed",
                    case.describe()
                ),
                Err(errors) => {
                    for who in whos {
                        assert!(
                            errors.iter().any(|e| e.starts_with(who) && e.contains(expect)),
                            "{mode:?}: closure {closure} called as {}: expected an error from {who} \
                             about {expect}, got {errors:#?}",
                            case.describe()
                        );
                    }
                }
            }
        }
    }
}

/// The stack check can fail: `raw_handler` entered with the stack off by
/// 8 reports it, entered properly does not. (x86-64 only: AArch64 faults
/// on the first access through a misaligned sp.)
#[cfg(target_arch = "x86_64")]
#[test]
fn harness_sees_a_misaligned_stack() {
    for misalign in [false, true] {
        let mut probe = Probe::new(
            &Type::void(),
            &[],
            &[],
            false,
            RvalueRule::default(),
            false,
            false,
        );
        let p: *mut Probe = &mut *probe;
        // SAFETY: raw_handler with no arguments, a void result and a valid
        // Probe touches nothing else; the stack pointer is restored. (Rust
        // aligns the stack for a call at the start of the asm block.)
        unsafe {
            if misalign {
                std::arch::asm!(
                    "sub rsp, 8",
                    "call {f}",
                    "add rsp, 8",
                    f = in(reg) closure_diff::raw_handler as *const () as usize,
                    in("rdi") 0usize,
                    in("rsi") 0usize,
                    in("rdx") 0usize,
                    in("rcx") p,
                    clobber_abi("C"),
                );
            } else {
                std::arch::asm!(
                    "call {f}",
                    f = in(reg) closure_diff::raw_handler as *const () as usize,
                    in("rdi") 0usize,
                    in("rsi") 0usize,
                    in("rdx") 0usize,
                    in("rcx") p,
                    clobber_abi("C"),
                );
            }
        }
        assert_eq!(probe.calls, 1);
        assert_eq!(probe.stack_misaligned, misalign);
    }
}

/// A fault during a call prints the case and how to rerun it.
#[test]
fn fault_names_the_case() {
    use std::os::unix::process::ExitStatusExt;
    if std::env::var_os("JITFFI_CLOSURE_DIFF_FAULT_CHILD").is_some() {
        install_fault_notes();
        set_running(0xfeed, 1234, "a deliberate fault");
        // SAFETY: a fresh private mapping of our own, checked below.
        let page = unsafe {
            libc::mmap(
                ptr::null_mut(),
                4096,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(page, libc::MAP_FAILED);
        // SAFETY: the page is ours and inaccessible: the read traps
        // (SIGSEGV) before anything is loaded, and this child process
        // exists to die of exactly that.
        let v = unsafe { ptr::read_volatile(page.cast::<u8>()) };
        unreachable!("an inaccessible page was readable: {v}");
    }
    let out = child::self_command()
        .args(["--exact", "fault_names_the_case", "--nocapture"])
        .env("JITFFI_CLOSURE_DIFF_FAULT_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{stderr}");
    assert!(
        stderr
            .contains("fatal signal in case 1234 of seed 0xfeed while calling a deliberate fault")
            && stderr.contains("JITFFI_DIFF_SEED=0xfeed JITFFI_DIFF_INDEX=1234"),
        "{stderr}"
    );
}

/// The generator reaches what matters for closures, often enough; measured
/// on jitffi's plans (coverage, not correctness).
#[test]
fn generator_covers_closure_shapes() {
    let cfg = Config::default();
    let n = 3000;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut bump = |what| *counts.entry(what).or_default() += 1;
    for index in 0..n {
        let case = Case::generate(&mut SplitMix64::for_case(0xc105, index), &cfg, true);
        let Ok(cif) = case.cif() else { continue };
        let plan = cif.plan();
        let has = |k: &dyn Fn(&Type) -> bool| k(&case.ret) || case.args.iter().any(k);
        let mut seen = std::collections::BTreeSet::new();
        if case.fixed.is_some() {
            seen.insert("variadic");
        }
        if has(&|t| matches!(t.kind(), TypeKind::Union { .. })) {
            seen.insert("union");
        }
        if has(&|t| {
            let mut wide = false;
            each_scalar(t, 0, &mut |_, s| {
                wide |= matches!(s.kind(), TypeKind::I128 | TypeKind::U128)
            });
            wide
        }) {
            seen.insert("__int128");
        }
        if case.args.iter().any(|t| matches!(t.kind(), TypeKind::Struct { fields, .. } if fields.iter().any(|f| matches!(f.kind(), TypeKind::Array { .. })))) {
            seen.insert("array member");
        }
        if is_narrow_int(&case.ret) {
            seen.insert("narrow int return");
        }
        match &plan.ret.pass {
            RetPass::Indirect { .. } => {
                seen.insert("sret");
            }
            RetPass::Direct(p) if p.iter().any(|p| matches!(p.loc, Loc::X87(_))) => {
                seen.insert("x87 return");
            }
            RetPass::Direct(p) if p.iter().filter(|p| matches!(p.loc, Loc::Vec(_))).count() > 1 => {
                seen.insert("several vector registers returned");
            }
            _ => {}
        }
        if plan.args.iter().any(|a| matches!(&a.pass, ArgPass::Direct(p) if p.iter().any(|p| matches!(p.loc, Loc::Stack(_))))) {
            seen.insert("stack argument");
        }
        for s in seen {
            bump(s);
        }
    }
    eprintln!("{counts:#?}");
    // x87 returns exist on x86-64 only; AArch64 returns HFAs in up to four
    // vector registers instead, and with eight registers of each kind and
    // large structs by reference it puts fewer arguments on the stack.
    let (ret_floor, stack_floor) = if cfg!(target_arch = "x86_64") {
        (("x87 return", 2), ("stack argument", 20))
    } else {
        (
            ("several vector registers returned", 4),
            ("stack argument", 8),
        )
    };
    let floors = [
        ("variadic", 8),
        ("union", 8),
        ("__int128", 4),
        ("array member", 5),
        ("narrow int return", 5),
        ("sret", 8),
        ret_floor,
        stack_floor,
    ];
    for (what, percent) in floors {
        let got = counts.get(what).copied().unwrap_or(0);
        assert!(
            got * 100 >= percent * n as usize,
            "only {got} of {n} cases reach {what:?} (want {percent}%)"
        );
    }
}
