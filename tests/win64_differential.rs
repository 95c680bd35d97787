//! Differential tests of jitffi's Microsoft x64 conventions against the
//! system libffi: [`Abi::Win64`] against libffi's `FFI_WIN64` and
//! [`Abi::GnuW64`] against `FFI_GNUW64`, over thousands of seeded random
//! signatures (see `support/randsig.rs`).
//!
//! For each signature and each of the two conventions, a handler that
//! records every argument's meaningful bytes and writes a chosen return
//! value stands behind three kinds of closure, each called by several
//! callers:
//!
//! - a libffi closure prepared with the libffi convention, called by
//!   libffi's `ffi_call` (the harness's self-check), jitffi's libffi-form
//!   stub (`Cif::call_raw`, sometimes with a null return buffer) and
//!   jitffi's packed-form stub (read through `support/native_ret.rs`);
//! - a jitffi `RawClosure` made for the jitffi convention, called by
//!   libffi's `ffi_call` with the libffi convention and by both jitffi
//!   stubs;
//! - a jitffi `Closure::new` (Rust handler), called by `call_raw`.
//!
//! Variadic signatures go through `ffi_prep_cif_var` and jitffi's
//! `fixed_args`. Every call must deliver exactly the bytes sent (no struct
//! padding, 10 bytes of each `long double`) at pointers aligned for their
//! types and not overlapping, run the handler once on a 16-byte aligned
//! stack with the closure's cif and user data and a return buffer as the
//! closure's contract says (jitffi's `RawHandler` docs, or libffi's), and
//! bring back what the handler wrote: narrow integers widened to 8 bytes,
//! whether the handler wrote them widened or at their own width over
//! garbage. jitffi's stubs must also widen narrow integer arguments to 32
//! bits (what gcc does when it calls an `ms_abi` function; checked where a
//! libffi closure shows the argument's slot). Nothing the caller owns may
//! change: argument values, the `avalue` array, the packed buffer, the
//! bytes around the return buffer. After recording, the handler overwrites
//! every argument it was given, as a C callee may write to its parameters:
//! an argument passed by reference must be the caller's copy, never the
//! caller's own value. Values sit flush against inaccessible guard pages,
//! so reading past the end of one faults.
//!
//! Where libffi is known to be wrong, it is left out of exactly that
//! pattern (counted and printed), and the jitffi-only calls still run:
//!
//! - `FFI_WIN64` with a `long double` result: libffi 3.4.4 treats it as
//!   MSVC's 8-byte `long double` in one place and as the 16-byte x87 type
//!   in another, so `ffi_call` aborts and a closure returns garbage. gcc
//!   (`ms_abi`, `gcc -O2 -S`) returns a 16-byte `long double` through a
//!   hidden pointer in `rcx`, as `FFI_GNUW64` does (and jitffi, for both).
//! - libffi's `ffi_call` (both conventions) copies a struct of more than 8
//!   bytes before passing its address (and points the `avalue` entry at the
//!   copy), but passes every other by-reference value, a 3/5/6/7-byte
//!   struct, `long double`, `_Complex double` or `_Complex long double`,
//!   as the caller's own address, so a callee writing its parameter changes
//!   the caller's value; gcc copies all of them (`gcc -O2 -S`: `fstpt
//!   32(%rsp)` then `movq %rsp, %rcx`). For libffi's caller only, exactly
//!   those two effects are let through (counted); jitffi's callers must
//!   copy.
//!
//! Environment: `JITFFI_DIFF_COUNT` (cases, default 5000, each run under
//! both conventions), `JITFFI_DIFF_SEED` (default: fresh, printed),
//! `JITFFI_DIFF_INDEX` (just that case, verbosely), `JITFFI_DIFF_SHOW`
//! (failures printed, default 8), `JITFFI_DIFF_ABI` (`win64` or `gnuw64`:
//! only that convention). A failure prints the seed, the case index, the
//! convention, the signature and jitffi's plan; a fault prints the case
//! from a signal handler before the process dies.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::cell::Cell;
use std::ffi::c_void;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::time::Instant;

use jitffi::plan::{ArgPass, Loc, RetPass};
use jitffi::{Abi, Cif, Type, TypeKind};
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

use closure_diff::{digits, Probe, RetBuf, RvalueRule, Subject, CANARY, CANARY_BYTE, SCRIBBLE};

// ---------------------------------------------------------------------------
// The two conventions

/// A Microsoft x64 flavour: jitffi's ABI and libffi's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavour {
    Win64,
    GnuW64,
}

impl Flavour {
    const ALL: [Flavour; 2] = [Flavour::Win64, Flavour::GnuW64];

    fn jit(self) -> Abi {
        match self {
            Flavour::Win64 => Abi::Win64,
            Flavour::GnuW64 => Abi::GnuW64,
        }
    }

    fn libffi(self) -> ffi::ffi_abi {
        match self {
            Flavour::Win64 => ffi::ffi_abi_FFI_WIN64,
            Flavour::GnuW64 => ffi::ffi_abi_FFI_GNUW64,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Flavour::Win64 => "win64",
            Flavour::GnuW64 => "gnuw64",
        }
    }

    /// The flavours `JITFFI_DIFF_ABI` selects (both by default).
    fn selected() -> Vec<Flavour> {
        match std::env::var("JITFFI_DIFF_ABI").ok().as_deref() {
            None | Some("") => Flavour::ALL.to_vec(),
            Some("win64") => vec![Flavour::Win64],
            Some("gnuw64") => vec![Flavour::GnuW64],
            Some(other) => panic!("JITFFI_DIFF_ABI={other}: expected win64 or gnuw64"),
        }
    }
}

/// Microsoft x64 passes a value by reference (a pointer to a caller-made
/// copy) unless it is 1, 2, 4 or 8 bytes, and returns such a value through
/// a hidden pointer. (`__int128` is the exception, returned in `xmm0`;
/// randsig never makes one.) Independent of jitffi's classifier: used to
/// size a libffi handler's return buffer and to measure coverage.
fn by_reference(t: &Type) -> bool {
    !matches!(t.size(), 1 | 2 | 4 | 8)
}

fn returned_in_memory(t: &Type) -> bool {
    !t.is_void() && by_reference(t)
}

/// Why libffi cannot be the reference for this signature under `fl`.
fn libffi_known_wrong(fl: Flavour, ret: &Type) -> Option<&'static str> {
    // Checked with a C program: ffi_call aborts (its result switch has no
    // case for FFI_TYPE_LONGDOUBLE) and the closure hands back neither
    // through rcx nor in xmm0. gcc -O2 -S of an ms_abi function returning
    // long double: fstpt (%rcx); movq %rcx, %rax (a hidden pointer).
    if fl == Flavour::Win64 && matches!(ret.kind(), TypeKind::LongDouble) {
        return Some(
            "libffi 3.4.4 FFI_WIN64 cannot return long double (ffi_call aborts, closures return \
             garbage); gcc ms_abi returns it through a hidden pointer",
        );
    }
    None
}

/// jitffi refuses a `long double` result under [`Abi::Win64`] by design
/// (MSVC's `long double` is `double`; see `classify/win64.rs`): with a
/// typed error, never a crash.
fn jitffi_refuses_by_design(fl: Flavour, ret: &Type, e: &jitffi::Error) -> bool {
    fl == Flavour::Win64
        && matches!(ret.kind(), TypeKind::LongDouble)
        && matches!(
            e,
            jitffi::Error::UnsupportedType {
                position: jitffi::Position::Return,
                ..
            }
        )
}

// ---------------------------------------------------------------------------
// Cases

/// One case: a signature, argument values, the return value and how the
/// handler and callers behave. Run under each flavour.
#[derive(Clone, Debug)]
struct Case {
    sig: Signature,
    ret: Type,
    args: Vec<Type>,
    fixed: Option<usize>,
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
    fn generate(src: &mut impl Source, cfg: &Config) -> Case {
        let sig = cfg.signature(src);
        Case::for_signature(sig, src)
    }

    fn for_signature(sig: Signature, src: &mut impl Source) -> Case {
        let args: Vec<Type> = sig.args.iter().map(jit_type).collect();
        let ret = sig.ret.as_ref().map_or_else(Type::void, jit_type);
        let values = sig.args.iter().map(|a| a.random_value(src)).collect();
        let ret_value = sig
            .ret
            .as_ref()
            .map_or_else(Vec::new, |r| r.random_value(src));
        Case {
            fixed: sig.fixed,
            sig,
            ret,
            args,
            values,
            ret_value,
            widen_ret: src.chance(1, 2),
            null_rvalue: src.chance(1, 4),
            loose_ret_align: src.chance(1, 3),
        }
    }

    fn cif(&self, fl: Flavour) -> jitffi::Result<Cif> {
        Cif::with_abi(fl.jit(), &self.ret, &self.args, self.fixed)
    }
}

// ---------------------------------------------------------------------------
// Memory with guard pages

/// Slots of read-write memory, each followed by an inaccessible page.
/// Values are placed flush against the guard page, so touching a byte past
/// the end of a value faults instead of passing unnoticed.
struct Guarded {
    base: *mut u8,
    slot_stride: usize,
    slot_size: usize,
}

const ARG_SLOTS: usize = 32;
const AVALUE_SLOT: usize = ARG_SLOTS;
const PACKED_SLOT: usize = ARG_SLOTS + 1;
const SLOTS: usize = ARG_SLOTS + 2;

impl Guarded {
    fn new() -> Guarded {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let slot_size = 4 * page.max(4096);
        let slot_stride = slot_size + page;
        // SAFETY: a fresh anonymous private mapping; checked below.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                slot_stride * SLOTS,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap of the guarded arena failed");
        let base = base.cast::<u8>();
        for i in 0..SLOTS {
            // SAFETY: the guard page lies inside the mapping made above.
            let rc = unsafe {
                libc::mprotect(
                    base.add(i * slot_stride + slot_size).cast(),
                    page,
                    libc::PROT_NONE,
                )
            };
            assert_eq!(rc, 0, "mprotect of a guard page failed");
        }
        Guarded {
            base,
            slot_stride,
            slot_size,
        }
    }

    /// Copies `bytes` into slot `i`, aligned to `align` and ending as close
    /// to the guard page as the alignment allows, after a canary.
    fn place(&mut self, i: usize, bytes: &[u8], align: usize) -> Region {
        assert!(i < SLOTS);
        let room = bytes.len().div_ceil(align) * align;
        assert!(
            room + CANARY <= self.slot_size,
            "value too large for a slot"
        );
        // SAFETY: every offset stays within slot `i`'s read-write part.
        unsafe {
            let end = self.base.add(i * self.slot_stride + self.slot_size);
            let start = end.sub(room);
            ptr::write_bytes(start.sub(CANARY), CANARY_BYTE, CANARY);
            ptr::write_bytes(start, 0xa7, room);
            ptr::copy_nonoverlapping(bytes.as_ptr(), start, bytes.len());
            Region { start, len: room }
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.base.cast(), self.slot_stride * SLOTS) };
    }
}

/// A placed value, to snapshot and check later.
struct Region {
    start: *mut u8,
    len: usize,
}

impl Region {
    /// The canary and the value, as bytes.
    fn snapshot(&self) -> Vec<u8> {
        // SAFETY: `place` wrote CANARY bytes before `start` and `len` after.
        unsafe { std::slice::from_raw_parts(self.start.sub(CANARY), CANARY + self.len) }.to_vec()
    }
}

/// The arguments of one call: each value against a guard page, and the
/// `avalue` array pointing at them.
struct Placed {
    args: Vec<Region>,
    avalue: Region,
    before: Vec<Vec<u8>>,
}

impl Placed {
    fn new(case: &Case, mem: &mut Guarded) -> Placed {
        let args: Vec<Region> = case
            .args
            .iter()
            .zip(&case.values)
            .enumerate()
            .map(|(i, (t, v))| mem.place(i, v, t.align()))
            .collect();
        let ptrs: Vec<u8> = args
            .iter()
            .flat_map(|r| (r.start as usize).to_ne_bytes())
            .collect();
        let avalue = mem.place(AVALUE_SLOT, &ptrs, 8);
        let before = args
            .iter()
            .chain(std::iter::once(&avalue))
            .map(Region::snapshot)
            .collect();
        Placed {
            args,
            avalue,
            before,
        }
    }

    fn avalue(&self) -> *mut *mut c_void {
        self.avalue.start.cast()
    }

    /// Checks that the argument values and the avalue array are as before.
    /// With `libffi` (the caller was libffi's `ffi_call`), two habits of
    /// libffi 3.4.4 are let through, exactly: a struct over 8 bytes is
    /// copied and its avalue entry replaced by the copy's address; every
    /// other value passed by reference (a 3, 5, 6 or 7-byte struct, `long
    /// double`, `_Complex double`, `_Complex long double`) is not copied at
    /// all, so the handler's writes to it land in the caller's value (gcc
    /// copies). Returns whether the latter showed.
    fn check_unchanged(
        &self,
        who: &str,
        libffi: Option<&[Type]>,
        errors: &mut Vec<String>,
    ) -> bool {
        let copied = |t: &Type| t.is_aggregate() && t.size() > 8;
        let mut no_copy = false;
        for (i, (r, b)) in self.args.iter().zip(&self.before).enumerate() {
            let after = r.snapshot();
            if let Some(types) = libffi {
                let t = &types[i];
                let mut scribbled = b.clone();
                scribbled[CANARY..CANARY + t.size()].fill(SCRIBBLE);
                if by_reference(t) && !copied(t) && after != *b && after == scribbled {
                    no_copy = true;
                    continue;
                }
            }
            check_unchanged(&format!("{who}: argument {i}"), b, &after, errors);
        }
        let before = &self.before[self.args.len()];
        let mut after = self.avalue.snapshot();
        if let Some(types) = libffi {
            for (i, t) in types.iter().enumerate() {
                if copied(t) {
                    let at = CANARY + 8 * i;
                    after[at..at + 8].copy_from_slice(&before[at..at + 8]);
                }
            }
        }
        check_unchanged(&format!("{who}: avalue array"), before, &after, errors);
        no_copy
    }
}

fn check_unchanged(what: &str, before: &[u8], after: &[u8], errors: &mut Vec<String>) {
    if let Some(at) = before.iter().zip(after).position(|(a, b)| a != b) {
        let at = at as isize - CANARY as isize;
        errors.push(format!(
            "{what} modified by the call at byte {at} (negative: before the value): before {}, after {}",
            hex(&before[CANARY..]),
            hex(&after[CANARY..])
        ));
    }
}

/// The packed form's argument buffer, against a guard page.
fn place_packed(cif: &Cif, case: &Case, mem: &mut Guarded) -> Result<Region, String> {
    let offsets = cif.packed_offsets();
    let size = cif.packed_size();
    if offsets.len() != case.values.len() || size % 8 != 0 {
        return Err(format!(
            "jitffi packed layout unusable: offsets {offsets:?}, size {size}"
        ));
    }
    let mut buf = vec![0xa7u8; size];
    for ((v, t), &off) in case.values.iter().zip(&case.args).zip(offsets) {
        let off = off as usize;
        if off % t.align() != 0 || off + v.len() > size {
            return Err(format!(
                "jitffi packed layout unusable: offsets {offsets:?}, size {size}"
            ));
        }
        buf[off..off + v.len()].copy_from_slice(v);
    }
    Ok(mem.place(PACKED_SLOT, &buf, 16))
}

// ---------------------------------------------------------------------------
// Crash notes

const NO_STEP: &str = "";

thread_local! {
    /// (seed, case index, flavour, what is being called) for the fault
    /// handler.
    static RUNNING: Cell<(u64, u64, &'static str, &'static str)> =
        const { Cell::new((0, 0, "", NO_STEP)) };
}

fn set_running(seed: u64, index: u64, fl: Flavour) {
    RUNNING.with(|r| r.set((seed, index, fl.name(), NO_STEP)));
}

fn set_step(step: &'static str) {
    RUNNING.with(|r| {
        let (s, i, f, _) = r.get();
        r.set((s, i, f, step));
    });
}

extern "C" fn on_fault(_sig: libc::c_int) {
    let (seed, index, flavour, step) = RUNNING.with(|r| r.get());
    let mut a = [0u8; 20];
    let mut b = [0u8; 20];
    let (seed, index) = (digits(seed, 16, &mut a), digits(index, 10, &mut b));
    write_stderr(b"\n*** win64_differential: fatal signal in case ");
    write_stderr(index);
    write_stderr(b" of seed 0x");
    write_stderr(seed);
    write_stderr(b" (");
    write_stderr(flavour.as_bytes());
    write_stderr(b") while calling ");
    write_stderr(step.as_bytes());
    write_stderr(b"\n*** rerun: JITFFI_DIFF_SEED=0x");
    write_stderr(seed);
    write_stderr(b" JITFFI_DIFF_INDEX=");
    write_stderr(index);
    write_stderr(b" JITFFI_DIFF_ABI=");
    write_stderr(flavour.as_bytes());
    write_stderr(b" cargo test --test win64_differential -- --nocapture\n");
    // SA_RESETHAND restored the default action: returning re-runs the
    // faulting instruction and the process dies of the signal.
}

// ---------------------------------------------------------------------------
// Calls

/// Which caller to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
            (Caller::Raw | Caller::RawNull, Subject::Libffi { .. }) => {
                "jitffi call_raw -> libffi closure"
            }
            (Caller::Raw | Caller::RawNull, _) => "jitffi call_raw -> jitffi closure",
            (Caller::Packed, Subject::Libffi { .. }) => "jitffi packed -> libffi closure",
            (Caller::Packed, _) => "jitffi packed -> jitffi closure",
        }
    }
}

/// The callers' side of one flavour of a case.
struct Callers<'a> {
    case: &'a Case,
    /// jitffi's cif for the case's signature, when jitffi made one.
    cif: Option<Cif>,
    /// libffi's, when libffi is a usable reference here.
    lcif: Option<LibffiCif>,
}

/// Calls `subject` once from `caller` and checks everything.
#[allow(clippy::too_many_arguments)]
fn call_and_check(
    callers: &Callers<'_>,
    mem: &mut Guarded,
    subject: &Subject,
    subject_args: &[Type],
    probe: &mut Probe,
    caller: Caller,
    notes: &mut Notes,
    errors: &mut Vec<String>,
) {
    let case = callers.case;
    let who = format!("{} -> {}", caller.name(), subject.name());
    notes.calls.push(who.clone());
    let code = subject.code();
    let len = match (caller, &callers.cif) {
        (_, _) if case.ret.is_void() => 0,
        (Caller::Libffi, _) => case.ret.size().max(8),
        (_, Some(cif)) => cif.ret_buffer_size(),
        (_, None) => unreachable!("jitffi callers need jitffi's cif"),
    };
    let mut rbuf = RetBuf::new(&case.ret, len, case.loose_ret_align);
    let placed = Placed::new(case, mem);
    let mut packed = None;
    probe.arm();
    if caller != Caller::RawNull {
        probe.caller_rvalue = rbuf.ptr() as usize;
    }
    set_step(caller.step(subject));
    match caller {
        Caller::Libffi => {
            let lcif = callers.lcif.as_ref().expect("a libffi cif");
            // SAFETY: the closure has the cif's signature and convention;
            // avalue holds one pointer per argument; the buffer has
            // max(8, size) bytes.
            unsafe {
                let f = std::mem::transmute::<*const c_void, unsafe extern "C" fn()>(code);
                ffi::ffi_call(lcif.raw(), Some(f), rbuf.ptr(), placed.avalue())
            }
        }
        Caller::Raw | Caller::RawNull => {
            let cif = callers.cif.as_ref().expect("a jitffi cif");
            let r = if caller == Caller::RawNull {
                ptr::null_mut()
            } else {
                rbuf.ptr()
            };
            // SAFETY: as above, with jitffi's contract (ret_buffer_size
            // bytes aligned for the return type, or null).
            unsafe { cif.call_raw(code, r, placed.avalue().cast()) }
        }
        Caller::Packed => {
            let cif = callers.cif.as_ref().expect("a jitffi cif");
            let region = match place_packed(cif, case, mem) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(e);
                    return;
                }
            };
            let before = region.snapshot();
            let r = rbuf.ptr();
            // SAFETY: the buffer is 16-aligned, laid out at the packed
            // offsets; `r` has ret_buffer_size bytes.
            let outcome = catch_unwind(AssertUnwindSafe(|| unsafe {
                native_ret::call_packed_into(
                    cif.plan(),
                    cif.packed_entry() as *const c_void,
                    code,
                    r,
                    region.start.cast(),
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
            packed = Some((region, before));
        }
    }
    set_step(NO_STEP);
    check_seen(case, subject, subject_args, probe, &who, caller, errors);
    if caller != Caller::RawNull {
        rbuf.check(&case.ret, &case.ret_value, &who, errors);
    }
    let libffi_types = (caller == Caller::Libffi).then_some(&case.args[..]);
    if placed.check_unchanged(&who, libffi_types, errors) {
        notes.libffi_no_copy = true;
    }
    if let Some((region, before)) = packed {
        check_unchanged(
            &format!("{who}: packed buffer"),
            &before,
            &region.snapshot(),
            errors,
        );
    }
}

/// Checks what the handler saw in one call.
fn check_seen(
    case: &Case,
    subject: &Subject,
    subject_args: &[Type],
    probe: &Probe,
    who: &str,
    caller: Caller,
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
    if !case.ret.is_void() && probe.rvalue % probe.rule.align != 0 {
        errors.push(format!(
            "{who}: handler's rvalue {:#x} is not {}-aligned (return type {})",
            probe.rvalue, probe.rule.align, case.ret
        ));
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
        // gcc widens char and short arguments of ms_abi calls to 32 bits;
        // jitffi's stubs must too. (libffi's own ffi_call is not held to it.)
        if probe.read_slots && caller != Caller::Libffi && is_narrow_int(t) {
            let want = shapes::widen(t, sent);
            if probe.slots[i] != want[..4] {
                let how = if t.is_signed() { "sign" } else { "zero" };
                errors.push(format!(
                    "{who}: argument {i} ({t}) = {} not {how}-extended to 32 bits: slot holds {}",
                    hex(sent),
                    hex(&probe.slots[i])
                ));
            }
        }
    }
}

/// Which closures a run makes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// libffi and jitffi closures, every caller into each.
    Full,
    /// libffi's `ffi_call` into libffi closures only: the harness checking
    /// itself (and libffi) without jitffi.
    LibffiOnly,
}

/// How one flavour of a case went, besides its errors.
#[derive(Default)]
struct Notes {
    /// libffi left out, and why.
    libffi_excluded: Option<&'static str>,
    /// libffi's `ffi_call` passed a caller's value by reference without
    /// copying it (see [`Placed::check_unchanged`]).
    libffi_no_copy: bool,
    /// jitffi refused the signature as designed (see
    /// [`jitffi_refuses_by_design`]).
    jit_refused: bool,
    /// Calls made, by caller and closure.
    calls: Vec<String>,
}

/// Runs one flavour of a case; `subject_sig` is the closures' signature
/// (the case's own, except in the harness's mismatch test).
fn run_case(
    case: &Case,
    fl: Flavour,
    subject_sig: Option<(&Type, &[Type])>,
    mode: Mode,
    mem: &mut Guarded,
    notes: &mut Notes,
) -> Result<(), Vec<String>> {
    let (sret, sargs) = subject_sig.unwrap_or((&case.ret, &case.args));
    let mut errors = Vec::new();
    // randsig's independent layouts must be jitffi's, or nothing below
    // means anything.
    for (i, (t, s)) in case.args.iter().zip(&case.sig.args).enumerate() {
        if (t.size(), t.align()) != (s.size(), s.align())
            || (matches!(s, Shape::Struct(_)) && t.field_offsets() != Some(&s.field_offsets()[..]))
        {
            errors.push(format!(
                "jitffi Type layout of argument {i} ({s}): {} bytes align {} offsets {:?}, C: {} \
                 align {} offsets {:?}",
                t.size(),
                t.align(),
                t.field_offsets(),
                s.size(),
                s.align(),
                s.field_offsets()
            ));
        }
    }
    let excluded = libffi_known_wrong(fl, &case.ret).or(libffi_known_wrong(fl, sret));
    notes.libffi_excluded = excluded;
    let lcif = match excluded {
        Some(_) => None,
        None => match LibffiCif::with_abi_checked(fl.libffi(), &case.ret, &case.args, case.fixed) {
            Ok(l) => Some(l),
            Err(e) => {
                errors.push(format!("harness: libffi: {e}"));
                None
            }
        },
    };
    let (cif, scif) = match mode {
        Mode::LibffiOnly => (None, None),
        Mode::Full => match case.cif(fl) {
            Ok(c) => {
                let scif = match subject_sig {
                    None => c,
                    Some(_) => Cif::with_abi(fl.jit(), sret, sargs, case.fixed)
                        .expect("the mismatched signature is valid"),
                };
                (Some(c), Some(scif))
            }
            Err(e) if jitffi_refuses_by_design(fl, &case.ret, &e) => {
                notes.jit_refused = true;
                (None, None)
            }
            Err(e) => {
                errors.push(format!("jitffi refused the signature: {e}"));
                (None, None)
            }
        },
    };
    let callers = Callers { case, cif, lcif };
    let mut jit_callers = Vec::new();
    if callers.cif.is_some() {
        jit_callers.extend([Caller::Raw, Caller::Packed]);
        if case.null_rvalue {
            jit_callers.push(Caller::RawNull);
        }
    }
    let libffi_caller: &[Caller] = if callers.lcif.is_some() {
        &[Caller::Libffi]
    } else {
        &[]
    };

    // The libffi closure: libffi's ffi_call checks the harness, jitffi's
    // stubs are under test.
    if excluded.is_none() {
        let mut probe = Probe::new(
            sret,
            sargs,
            &case.ret_value,
            case.widen_ret,
            RvalueRule::libffi(sret, returned_in_memory(sret)),
            true,
            true,
        );
        let built = LibffiCif::with_abi_checked(fl.libffi(), sret, sargs, case.fixed)
            .and_then(|l| Subject::libffi(l, &mut probe));
        match built {
            Ok(subject) => {
                for &c in libffi_caller.iter().chain(&jit_callers) {
                    call_and_check(
                        &callers,
                        mem,
                        &subject,
                        sargs,
                        &mut probe,
                        c,
                        notes,
                        &mut errors,
                    );
                }
            }
            Err(e) => errors.push(format!("harness: libffi closure: {e}")),
        }
    }

    // jitffi closures, from libffi's ffi_call and from jitffi's stubs.
    if let Some(scif) = &scif {
        let rule = RvalueRule::jitffi(scif);
        let mut probe = Probe::new(
            sret,
            sargs,
            &case.ret_value,
            case.widen_ret,
            rule,
            false,
            true,
        );
        match Subject::raw(scif, &mut probe) {
            Ok(subject) => {
                for &c in libffi_caller.iter().chain(&jit_callers) {
                    call_and_check(
                        &callers,
                        mem,
                        &subject,
                        sargs,
                        &mut probe,
                        c,
                        notes,
                        &mut errors,
                    );
                }
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
            true,
        );
        match Subject::rust(scif, &mut probe) {
            Ok(subject) => call_and_check(
                &callers,
                mem,
                &subject,
                sargs,
                &mut probe,
                Caller::Raw,
                notes,
                &mut errors,
            ),
            Err(e) => errors.push(format!("jitffi Closure::new failed: {e}")),
        }
    }

    if errors.is_empty() {
        Ok(())
    } else {
        if let Some(c) = &scif {
            errors.push(format!("jitffi plan:\n{}", c.plan()));
        }
        Err(errors)
    }
}

// ---------------------------------------------------------------------------
// Runs

fn describe(case: &Case) -> String {
    case.sig.to_string()
}

fn header(seed: u64, index: u64, fl: Flavour, case: &Case) -> String {
    format!(
        "case {index} of seed {seed:#x}, {} (rerun: JITFFI_DIFF_SEED={seed:#x} \
         JITFFI_DIFF_INDEX={index} JITFFI_DIFF_ABI={})\n  signature: {}",
        fl.name(),
        fl.name(),
        describe(case)
    )
}

#[derive(Default)]
struct Tally {
    /// Flavours of cases that passed.
    passed: usize,
    failed: Vec<(u64, String)>,
    variadic: usize,
    long_double: usize,
    /// Why libffi was left out, and how often.
    excluded: std::collections::BTreeMap<&'static str, usize>,
    libffi_no_copy: usize,
    jit_refused: usize,
    calls: std::collections::BTreeMap<String, usize>,
}

/// Runs cases `indices` of `seed` under `flavours` (printing each case
/// first if `verbose`).
fn run_seeded(
    seed: u64,
    indices: impl Iterator<Item = u64>,
    flavours: &[Flavour],
    mode: Mode,
    verbose: bool,
) -> Tally {
    on_fatal_signals(on_fault);
    let cfg = Config::default();
    let mut mem = Guarded::new();
    let mut tally = Tally::default();
    for index in indices {
        let case = Case::generate(&mut SplitMix64::for_case(seed, index), &cfg);
        tally.variadic += usize::from(case.fixed.is_some());
        tally.long_double += usize::from(
            case.sig
                .args
                .iter()
                .chain(&case.sig.ret)
                .any(Shape::has_long_double),
        );
        for &fl in flavours {
            set_running(seed, index, fl);
            if verbose {
                eprintln!("{case:#?}\n{}", header(seed, index, fl, &case));
                match case.cif(fl) {
                    Ok(c) => eprintln!("jitffi plan:\n{}", c.plan()),
                    Err(e) => eprintln!("jitffi refused: {e}"),
                }
            }
            let mut notes = Notes::default();
            match run_case(&case, fl, None, mode, &mut mem, &mut notes) {
                Ok(()) => tally.passed += 1,
                Err(errors) => {
                    let mut text = header(seed, index, fl, &case);
                    for e in errors {
                        let _ = write!(text, "\n  {}", e.replace('\n', "\n    "));
                    }
                    tally.failed.push((index, text));
                }
            }
            if let Some(why) = notes.libffi_excluded {
                *tally.excluded.entry(why).or_default() += 1;
            }
            tally.libffi_no_copy += usize::from(notes.libffi_no_copy);
            tally.jit_refused += usize::from(notes.jit_refused);
            for who in notes.calls {
                *tally.calls.entry(who).or_default() += 1;
            }
        }
    }
    tally
}

/// An error line reduced to its kind: numbers and addresses blanked, the
/// values after the first colon dropped.
fn error_kind(line: &str) -> Option<String> {
    let (who, rest) = line.split_once(": ")?;
    if who.starts_with(' ') || who == "signature" || who == "jitffi plan" {
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
        "{label}: {} passed, {} failed (case x convention) in {elapsed:.1?}; {} cases variadic, \
         {} with long double",
        tally.passed,
        tally.failed.len(),
        tally.variadic,
        tally.long_double,
    );
    for (who, n) in &tally.calls {
        eprintln!("  {n:6} calls {who}");
    }
    for (why, n) in &tally.excluded {
        eprintln!("  {n:6} without libffi (jitffi-only calls still run): {why}");
    }
    if tally.jit_refused > 0 {
        eprintln!(
            "  {:6} refused by jitffi as designed (typed error): long double result under Win64",
            tally.jit_refused
        );
    }
    if tally.libffi_no_copy > 0 {
        eprintln!(
            "  {:6} where libffi's ffi_call passed a caller's value by reference without copying \
             it (a 3/5/6/7-byte struct, long double or complex; the handler's writes reached \
             the caller; known libffi 3.4.4 behaviour, jitffi's callers are held to copying)",
            tally.libffi_no_copy
        );
    }
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
        eprintln!("  {n:6} with: {kind}");
    }
    print_failures(&tally.failed);
    assert!(
        tally.failed.is_empty(),
        "{label}: {} of {} failed (seed {seed:#x})",
        tally.failed.len(),
        tally.failed.len() + tally.passed
    );
}

fn run(mode: Mode, default_count: u64) {
    let seed = env_u64("JITFFI_DIFF_SEED").unwrap_or_else(fresh_seed);
    let label = match mode {
        Mode::Full => "win64_differential",
        Mode::LibffiOnly => "win64_differential (libffi only)",
    };
    let flavours = Flavour::selected();
    eprintln!("{label}: seed {seed:#x} (set JITFFI_DIFF_SEED to repeat), {flavours:?}");
    let t0 = Instant::now();
    let tally = match env_u64("JITFFI_DIFF_INDEX") {
        Some(i) => run_seeded(seed, std::iter::once(i), &flavours, mode, true),
        None => {
            let n = env_u64("JITFFI_DIFF_COUNT").unwrap_or(default_count);
            run_seeded(seed, 0..n, &flavours, mode, false)
        }
    };
    report(label, seed, &tally, t0.elapsed());
}

// ---------------------------------------------------------------------------
// Tests

/// Thousands of random signatures under both Microsoft x64 conventions:
/// jitffi stubs into libffi closures, libffi's `ffi_call` into jitffi
/// closures, jitffi stubs into jitffi closures.
#[test]
fn win64_matches_libffi() {
    run(Mode::Full, 5000);
}

/// A long soak: `cargo test --test win64_differential -- --ignored`.
#[test]
#[ignore]
fn soak_100k_win64_signatures() {
    run(Mode::Full, 100_000);
}

/// The harness passes a known implementation: libffi's `ffi_call` into
/// libffi closures, same cases, both conventions (needs no jitffi).
#[test]
fn harness_passes_libffi_alone() {
    run(Mode::LibffiOnly, 1500);
}

/// The libffi exclusion is real: under `FFI_WIN64` a `long double` result
/// does not come back from a libffi closure (if a libffi release fixes
/// it, this fails and the exclusion can go). Run in a child process, since
/// libffi's `ffi_call` aborts on it.
#[test]
fn libffi_win64_long_double_return_is_broken() {
    use std::os::unix::process::ExitStatusExt;
    if std::env::var_os("JITFFI_W64_LD_CHILD").is_some() {
        let case = Case {
            sig: Signature {
                ret: Some(sc(Scalar::LongDouble)),
                args: vec![],
                fixed: None,
            },
            ret: Type::long_double(),
            args: vec![],
            fixed: None,
            values: vec![],
            // 1.5L
            ret_value: vec![0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0x3f, 0, 0, 0, 0, 0, 0],
            widen_ret: false,
            null_rvalue: false,
            loose_ret_align: false,
        };
        let lcif = LibffiCif::with_abi(ffi::ffi_abi_FFI_WIN64, &case.ret, &[], None).unwrap();
        let callers = Callers {
            case: &case,
            cif: None,
            lcif: Some(lcif),
        };
        let mut probe = Probe::new(
            &case.ret,
            &[],
            &case.ret_value,
            false,
            RvalueRule::libffi(&case.ret, returned_in_memory(&case.ret)),
            true,
            true,
        );
        let lcif = LibffiCif::with_abi(ffi::ffi_abi_FFI_WIN64, &case.ret, &[], None).unwrap();
        let subject = Subject::libffi(lcif, &mut probe).unwrap();
        let mut errors = Vec::new();
        let mut mem = Guarded::new();
        call_and_check(
            &callers,
            &mut mem,
            &subject,
            &[],
            &mut probe,
            Caller::Libffi,
            &mut Notes::default(),
            &mut errors,
        );
        println!("survived: {errors:?}");
        std::process::exit(if errors.is_empty() { 0 } else { 3 });
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "libffi_win64_long_double_return_is_broken",
            "--nocapture",
        ])
        .env("JITFFI_W64_LD_CHILD", "1")
        .output()
        .unwrap();
    let broken = out.status.signal() == Some(libc::SIGABRT) || out.status.code() == Some(3);
    assert!(
        broken,
        "libffi FFI_WIN64 returned long double correctly: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

// Who calls whom, as error messages name them.
const LL: &str = "libffi ffi_call -> libffi closure";
const JL_RAW: &str = "jitffi call_raw -> libffi closure";
const JL_PACKED: &str = "jitffi packed -> libffi closure";
const LJ: &str = "libffi ffi_call -> jitffi RawClosure";
const JJ_RAW: &str = "jitffi call_raw -> jitffi RawClosure";
const JJ_PACKED: &str = "jitffi packed -> jitffi RawClosure";
const JJ_RUST: &str = "jitffi call_raw -> jitffi Closure::new";
const EVERYONE: &[&str] = &[LL, JL_RAW, JL_PACKED, LJ, JJ_RAW, JJ_PACKED, JJ_RUST];
/// libffi's `ffi_call` loads each of the first four slots into both its
/// integer and its vector register, so a callee reading the wrong one still
/// finds the value: only jitffi's callers show those mismatches.
const JIT_CALLERS: &[&str] = &[JL_RAW, JL_PACKED, JJ_RAW, JJ_PACKED, JJ_RUST];
/// A libffi closure returns its result in both `rax` and `xmm0`, so a
/// caller reading the wrong one still finds it: only jitffi's closures
/// show those mismatches.
const JIT_CLOSURES: &[&str] = &[LJ, JJ_RAW, JJ_PACKED, JJ_RUST];

/// The harness must be able to fail: closures whose signature differs from
/// their callers' in ABI-relevant ways are reported by every caller that
/// can see the difference; and jitffi callers built for a wrong signature
/// are reported too. With `jitffi` unset, only libffi's calls run.
fn mismatches_are_caught(jitffi: bool) {
    use Scalar::*;
    let sig = |ret: Option<Shape>, args: Vec<Shape>| Signature {
        ret,
        args,
        fixed: None,
    };
    let i64x4 = || vec![sc(I64), sc(I64), sc(I64), sc(I64)];
    // (the real signature, the wrong one, whether the closures (true) or
    // jitffi's callers (false) get the wrong one, what must be reported,
    // by whom)
    let cases: Vec<(Signature, Signature, bool, &str, &[&str])> = vec![
        (
            sig(None, vec![sc(F64), sc(I64)]),
            sig(None, vec![sc(I64), sc(F64)]),
            true,
            "argument 0",
            JIT_CALLERS,
        ),
        (
            sig(None, vec![sc(F32)]),
            sig(None, vec![sc(I32)]),
            true,
            "argument 0",
            JIT_CALLERS,
        ),
        (
            sig(None, vec![sc(I64), sc(I64), sc(I64), sc(F64)]),
            sig(None, i64x4()),
            true,
            "argument 3",
            JIT_CALLERS,
        ),
        (
            sig(Some(sc(F64)), vec![]),
            sig(Some(sc(I64)), vec![]),
            true,
            "return value",
            JIT_CLOSURES,
        ),
        (
            sig(Some(st(&[F32, F32])), vec![]),
            sig(Some(sc(F64)), vec![]),
            true,
            "return value",
            JIT_CLOSURES,
        ),
        // 12 bytes travel by reference, 8 by value.
        (
            sig(None, vec![st(&[U32, U32, U32])]),
            sig(None, vec![st(&[U32, U32])]),
            true,
            "argument 0",
            EVERYONE,
        ),
        (
            sig(Some(st(&[U32, U32, U32])), vec![sc(I64)]),
            sig(Some(st(&[U32, U32])), vec![sc(I64)]),
            true,
            "argument 0",
            EVERYONE,
        ),
        (
            sig(None, [i64x4(), vec![sc(I32), sc(I64)]].concat()),
            sig(None, [i64x4(), vec![sc(I64), sc(I32)]].concat()),
            true,
            "argument 5",
            EVERYONE,
        ),
        // jitffi told the wrong signedness extends the wrong way.
        (
            sig(None, vec![sc(I8)]),
            sig(None, vec![sc(U8)]),
            false,
            "sign-extended",
            &[JL_RAW, JL_PACKED],
        ),
        (
            sig(None, [i64x4(), vec![sc(I16)]].concat()),
            sig(None, [i64x4(), vec![sc(U16)]].concat()),
            false,
            "sign-extended",
            &[JL_RAW, JL_PACKED],
        ),
    ];
    let mut src = SplitMix64::new(0xbad);
    let mut mem = Guarded::new();
    for (real, wrong, closures_wrong, expect, whos) in cases {
        let whos: Vec<&str> = whos
            .iter()
            .copied()
            .filter(|&w| jitffi || w == LL)
            .collect();
        if whos.is_empty() {
            continue;
        }
        let mut case = Case::for_signature(real, &mut src);
        // Every byte's sign bit set and the doubles finite: a lost
        // extension and a misplaced value both show.
        for v in case
            .values
            .iter_mut()
            .chain(std::iter::once(&mut case.ret_value))
        {
            v.iter_mut().for_each(|b| *b |= 0x80);
            if let Some(b) = v.first_mut() {
                *b ^= 0x5a;
            }
        }
        case.widen_ret = false;
        case.null_rvalue = false;
        let wret = wrong.ret.as_ref().map_or_else(Type::void, jit_type);
        let wargs: Vec<Type> = wrong.args.iter().map(jit_type).collect();
        let mode = if jitffi { Mode::Full } else { Mode::LibffiOnly };
        for fl in Flavour::ALL {
            let mut notes = Notes::default();
            let outcome = if closures_wrong {
                run_case(&case, fl, Some((&wret, &wargs)), mode, &mut mem, &mut notes)
            } else {
                run_case_told(&case, fl, (&wret, &wargs), &mut mem)
            };
            let what = if closures_wrong {
                format!("closures of {wrong} called as {}", case.sig)
            } else {
                format!("jitffi callers told {wrong} calling {}", case.sig)
            };
            match outcome {
                Ok(()) => panic!("{fl:?}: {what} went unnoticed"),
                Err(errors) => {
                    for who in &whos {
                        assert!(
                            errors
                                .iter()
                                .any(|e| e.starts_with(who) && e.contains(expect)),
                            "{fl:?}: {what}: expected an error from {who} about {expect}, got \
                             {errors:#?}"
                        );
                    }
                }
            }
        }
    }
}

/// jitffi's callers built for `told` call a libffi closure of the case's
/// signature; everything is checked against the case.
fn run_case_told(
    case: &Case,
    fl: Flavour,
    told: (&Type, &[Type]),
    mem: &mut Guarded,
) -> Result<(), Vec<String>> {
    let cif = Cif::with_abi(fl.jit(), told.0, told.1, case.fixed).expect("a valid signature");
    let callers = Callers {
        case,
        cif: Some(cif),
        lcif: None,
    };
    let mut probe = Probe::new(
        &case.ret,
        &case.args,
        &case.ret_value,
        case.widen_ret,
        RvalueRule::libffi(&case.ret, returned_in_memory(&case.ret)),
        true,
        true,
    );
    let lcif = LibffiCif::with_abi_checked(fl.libffi(), &case.ret, &case.args, case.fixed)
        .expect("libffi accepts the signature");
    let subject = Subject::libffi(lcif, &mut probe).expect("a libffi closure");
    let mut errors = Vec::new();
    let mut notes = Notes::default();
    for c in [Caller::Raw, Caller::Packed] {
        call_and_check(
            &callers,
            mem,
            &subject,
            &case.args,
            &mut probe,
            c,
            &mut notes,
            &mut errors,
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[test]
fn harness_catches_mismatches_with_libffi_alone() {
    mismatches_are_caught(false);
}

#[test]
fn harness_catches_mismatches() {
    mismatches_are_caught(true);
}

/// A fault during a call prints the case and how to rerun it.
#[test]
fn fault_names_the_case() {
    use std::os::unix::process::ExitStatusExt;
    if std::env::var_os("JITFFI_W64_FAULT_CHILD").is_some() {
        on_fatal_signals(on_fault);
        set_running(0xfeed, 1234, Flavour::GnuW64);
        set_step("a deliberate fault");
        let mut mem = Guarded::new();
        let r = mem.place(0, &[1; 8], 8);
        // SAFETY: `r.start + 8` is the first byte of a guard page of our
        // own mapping: the read traps (SIGSEGV) before anything is loaded,
        // and this child process exists to die of exactly that.
        let v = unsafe { ptr::read_volatile(r.start.add(8)) };
        unreachable!("the guard page was readable: {v}");
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "fault_names_the_case", "--nocapture"])
        .env("JITFFI_W64_FAULT_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{stderr}");
    assert!(
        stderr.contains(
            "fatal signal in case 1234 of seed 0xfeed (gnuw64) while calling a deliberate fault"
        ) && stderr
            .contains("JITFFI_DIFF_SEED=0xfeed JITFFI_DIFF_INDEX=1234 JITFFI_DIFF_ABI=gnuw64"),
        "{stderr}"
    );
}

/// The generator reaches what matters under Microsoft x64, often enough;
/// measured with the convention's rules, independently of jitffi.
#[test]
fn generator_covers_win64_shapes() {
    let cfg = Config::default();
    let n = 3000;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for index in 0..n {
        let case = Case::generate(&mut SplitMix64::for_case(0x3164, index), &cfg);
        let mut seen = std::collections::BTreeSet::new();
        if case.fixed.is_some() {
            seen.insert("variadic");
        }
        let float = |t: &Type| matches!(t.kind(), TypeKind::F32 | TypeKind::F64);
        for (i, t) in case.args.iter().enumerate() {
            if by_reference(t) {
                seen.insert("argument by reference");
                if i >= 4 {
                    seen.insert("reference on the stack");
                }
            } else if t.is_aggregate() {
                seen.insert("small aggregate by value");
            }
            if i >= 4 {
                seen.insert("stack argument");
            }
            if i < 4 && float(t) {
                seen.insert("float in xmm0-3");
                if case.fixed.is_some_and(|f| i >= f) {
                    seen.insert("variadic double in a register (xmm and gpr)");
                }
            }
            if i == 3 {
                seen.insert("fourth register used");
            }
            if matches!(t.kind(), TypeKind::LongDouble) {
                seen.insert("long double argument");
            }
            if is_narrow_int(t) {
                seen.insert("narrow int argument");
            }
        }
        if returned_in_memory(&case.ret) {
            seen.insert("sret");
        }
        if matches!(case.ret.kind(), TypeKind::LongDouble) {
            seen.insert("long double return");
        }
        if is_narrow_int(&case.ret) {
            seen.insert("narrow int return");
        }
        if case.ret.is_aggregate() && !returned_in_memory(&case.ret) {
            seen.insert("small aggregate returned in rax");
        }
        if float(&case.ret) {
            seen.insert("xmm0 return");
        }
        for s in seen {
            *counts.entry(s).or_default() += 1;
        }
    }
    eprintln!("{counts:#?}");
    let floors = [
        ("variadic", 8),
        ("argument by reference", 30),
        ("reference on the stack", 10),
        ("small aggregate by value", 15),
        ("stack argument", 30),
        ("float in xmm0-3", 20),
        ("variadic double in a register (xmm and gpr)", 1),
        ("fourth register used", 40),
        ("long double argument", 10),
        ("narrow int argument", 15),
        ("sret", 20),
        ("long double return", 1),
        ("narrow int return", 5),
        ("small aggregate returned in rax", 5),
        ("xmm0 return", 5),
    ];
    for (what, percent) in floors {
        let got = counts.get(what).copied().unwrap_or(0);
        assert!(
            got * 100 >= percent * n as usize,
            "only {got} of {n} cases reach {what:?} (want {percent}%)"
        );
    }
}

/// Plans the jitffi classifier makes for both conventions are well formed
/// and agree with the convention's rules on what travels by reference.
#[test]
fn plans_follow_the_by_reference_rule() {
    let cfg = Config::default();
    for index in 0..500 {
        let case = Case::generate(&mut SplitMix64::for_case(0x91a7, index), &cfg);
        for fl in Flavour::ALL {
            let cif = match case.cif(fl) {
                Ok(c) => c,
                Err(e) if jitffi_refuses_by_design(fl, &case.ret, &e) => continue,
                Err(e) => panic!("{fl:?}: jitffi refused {}: {e}", case.sig),
            };
            let plan = cif.plan();
            assert_eq!(plan.check(), Ok(()), "{fl:?} {}\n{plan}", case.sig);
            assert_eq!(plan.shadow_space, 32, "{fl:?} {}\n{plan}", case.sig);
            for (i, (a, t)) in plan.args.iter().zip(&case.args).enumerate() {
                let indirect = matches!(a.pass, ArgPass::Indirect { .. });
                assert_eq!(
                    indirect,
                    by_reference(t),
                    "{fl:?} {}: argument {i} ({t})\n{plan}",
                    case.sig
                );
            }
            let sret = matches!(plan.ret.pass, RetPass::Indirect { .. });
            assert_eq!(
                sret,
                returned_in_memory(&case.ret),
                "{fl:?} {}: return\n{plan}",
                case.sig
            );
            if let RetPass::Indirect { pointer, .. } = plan.ret.pass {
                assert_eq!(pointer, Loc::Gpr(1), "{fl:?}: sret pointer in rcx\n{plan}");
            }
        }
    }
}
