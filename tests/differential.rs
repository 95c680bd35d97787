//! Differential tests: jitffi call stubs against the system libffi.
//!
//! For thousands of seeded random signatures (see `support/randsig.rs`), a
//! libffi closure stands in for the C function: its handler records the
//! bytes of every argument it receives and hands back a chosen return
//! value. The closure is called three ways:
//!
//! 1. by libffi's own `ffi_call` (the harness checks itself: if libffi
//!    does not round-trip a signature, the harness or libffi is wrong);
//! 2. by jitffi's libffi-form stub (`Cif::call_raw`);
//! 3. by jitffi's packed-form stub (`Cif::call_packed`);
//!
//! and, for some cases, by `call_raw` with a null return buffer. Every
//! argument received must equal what was sent (meaningful bytes: no struct
//! padding, 10 bytes of each x87 `long double`), narrow integer arguments must
//! arrive sign/zero-extended to 32 bits (what clang-compiled callees rely
//! on), the return value stored must equal what the handler wrote (narrow
//! integers widened to 8 bytes, as libffi's `ffi_arg`), and nothing the
//! caller owns may change: argument values, the `avalue` array, the packed
//! buffer, the bytes around the return buffer. Values sit flush against
//! inaccessible guard pages, so a stub that reads or writes past the end of
//! a value faults.
//!
//! Environment: `JITFFI_DIFF_COUNT` (cases, default 3000), `JITFFI_DIFF_SEED`
//! (default: fresh, printed), `JITFFI_DIFF_INDEX` (run just that case of the
//! seed, verbosely). A failure prints the seed, the case index, the
//! signature and jitffi's plan; a fault prints the same from a signal
//! handler before the process dies.
//!
//! Outside this file's reach: unions, `__int128` and arrays passed as such
//! (libffi cannot describe them; an array member is emulated as repeated
//! fields, which C lays out and classifies the same way). The C-oracle
//! tests cover those.
//!
//! The fuzz target (`fuzz/fuzz_targets/differential.rs`) includes this
//! file as a module and drives [`fuzz_one`].

use std::cell::{Cell, UnsafeCell};
use std::ffi::c_void;
use std::fmt::Write as _;
use std::ptr;
use std::time::Instant;

use jitffi::{Cif, Type};
use libffi::raw::{self as ffi, ffi_cif, ffi_closure};

#[path = "support/randsig.rs"]
pub mod randsig;

use randsig::{ByteReader, Config, Scalar, Shape, Signature, Source, SplitMix64};

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

#[path = "support/child.rs"]
mod child;

// ---------------------------------------------------------------------------
// Type conversions

/// jitffi's cif for a signature, through both constructors in turn (they
/// must agree; the stub cache makes them share code).
fn jit_cif(sig: &Signature, ret: Type, args: &[Type]) -> jitffi::Result<Cif> {
    if args.len() % 2 == 1 {
        return Cif::with_abi(jitffi::Abi::host(), ret, args, sig.fixed);
    }
    match sig.fixed {
        Some(n) => Cif::new_variadic(ret, &args[..n], &args[n..]),
        None => Cif::new(ret, args),
    }
}

/// The value a caller's return buffer must hold after the call, and which
/// of its bytes count: narrow integers come back widened to 8 bytes (the
/// `ffi_arg` convention both libraries follow).
fn returned_image(shape: &Shape, value: &[u8]) -> (Vec<u8>, Vec<bool>) {
    match shape {
        Shape::Scalar(s) if s.is_int() && s.size() < 8 => {
            let fill = if s.is_signed() && value[s.size() - 1] & 0x80 != 0 {
                0xff
            } else {
                0
            };
            let mut v = vec![fill; 8];
            v[..s.size()].copy_from_slice(value);
            (v, vec![true; 8])
        }
        _ => (value.to_vec(), shape.mask()),
    }
}

// ---------------------------------------------------------------------------
// Memory with guard pages

/// Slots of read-write memory, each followed by an inaccessible page.
/// Values are placed flush against the guard page, so touching a byte past
/// the end of a value faults instead of passing unnoticed.
pub struct Guarded {
    base: *mut u8,
    slot_stride: usize,
    slot_size: usize,
    slots: usize,
}

const ARG_SLOTS: usize = 32;
const RET_SLOT: usize = ARG_SLOTS;
const AVALUE_SLOT: usize = ARG_SLOTS + 1;
const PACKED_SLOT: usize = ARG_SLOTS + 2;
const FFI_RET_SLOT: usize = ARG_SLOTS + 3;
const SLOTS: usize = ARG_SLOTS + 4;
/// Bytes before each placed value that must stay as we left them.
const CANARY: usize = 32;
const CANARY_BYTE: u8 = 0x5a;

impl Guarded {
    fn new() -> Guarded {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let slot_size = 4 * page.max(4096);
        let slot_stride = slot_size + page;
        let len = slot_stride * SLOTS;
        // SAFETY: a fresh anonymous private mapping; we check the result.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
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
            slots: SLOTS,
        }
    }

    /// A `len`-byte region of slot `i` aligned to `align`, ending as close
    /// to the guard page as the alignment allows, with a canary before it.
    fn place(&mut self, i: usize, len: usize, align: usize) -> *mut u8 {
        assert!(i < self.slots);
        let room = len.div_ceil(align) * align;
        assert!(
            room + CANARY <= self.slot_size,
            "value too large for a slot"
        );
        // SAFETY: both offsets stay within slot `i`'s read-write part.
        unsafe {
            let end = self.base.add(i * self.slot_stride + self.slot_size);
            let start = end.sub(room);
            ptr::write_bytes(start.sub(CANARY), CANARY_BYTE, CANARY);
            start
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.base.cast(), self.slot_stride * self.slots) };
    }
}

/// A region we placed, to snapshot and check later.
struct Region {
    /// Start of the value.
    start: *mut u8,
    /// Bytes of the value.
    len: usize,
}

impl Region {
    /// The canary and the value, as bytes.
    fn snapshot(&self) -> Vec<u8> {
        // SAFETY: `place` reserved CANARY bytes before `start` and `len`
        // (rounded up) after it, all readable.
        unsafe { std::slice::from_raw_parts(self.start.sub(CANARY), CANARY + self.len) }.to_vec()
    }
}

// ---------------------------------------------------------------------------
// Crash notes: what was running when a stub faulted

const NOTE_CAP: usize = 16 * 1024;

thread_local! {
    static NOTE: UnsafeCell<[u8; NOTE_CAP]> = const { UnsafeCell::new([0; NOTE_CAP]) };
    static NOTE_LEN: Cell<usize> = const { Cell::new(0) };
    static STEP: Cell<&'static str> = const { Cell::new("") };
}

fn set_note(text: &str) {
    let n = text.len().min(NOTE_CAP);
    NOTE.with(|b| {
        // SAFETY: only this thread touches its note; the signal handler,
        // which may run on this thread, only reads it.
        unsafe { (&mut *b.get())[..n].copy_from_slice(&text.as_bytes()[..n]) }
    });
    NOTE_LEN.with(|l| l.set(n));
}

fn set_step(step: &'static str) {
    STEP.with(|s| s.set(step));
}

extern "C" fn on_fatal_signal(_sig: libc::c_int) {
    write_stderr(b"\n*** differential: fatal signal while calling (");
    STEP.with(|s| write_stderr(s.get().as_bytes()));
    write_stderr(b")\n");
    let n = NOTE_LEN.with(|l| l.get());
    NOTE.with(|b| {
        // SAFETY: reading this thread's note, written before the call.
        write_stderr(unsafe { &(&*b.get())[..n] })
    });
    write_stderr(b"\n");
    // SA_RESETHAND restored the default action: returning re-executes the
    // faulting instruction and the process dies with the signal.
}

fn install_crash_notes() {
    on_fatal_signals(on_fatal_signal);
}

// ---------------------------------------------------------------------------
// The libffi closure standing in for the callee

/// What the closure handler saw, and what it returns.
struct Recorder {
    sizes: Vec<usize>,
    narrow: Vec<bool>,
    received: Vec<Vec<u8>>,
    /// The low 4 bytes of each narrow integer's slot, to check extension.
    slots: Vec<[u8; 4]>,
    /// Exactly what the handler writes to libffi's return buffer.
    ret_write: Vec<u8>,
    calls: u32,
}

unsafe extern "C" fn record(
    _cif: *mut ffi_cif,
    ret: *mut c_void,
    args: *mut *mut c_void,
    user: *mut c_void,
) {
    // SAFETY: `user` is the Recorder registered with this closure; nobody
    // else holds a reference to it while a call is in progress.
    let r = unsafe { &mut *user.cast::<Recorder>() };
    r.calls += 1;
    for i in 0..r.sizes.len() {
        // SAFETY: libffi passes one valid pointer per argument, each to a
        // value of that argument's size; a narrow integer's pointer is into
        // an 8-byte register or stack slot, so 4 bytes are readable.
        unsafe {
            let p = (*args.add(i)).cast::<u8>();
            r.received[i].clear();
            r.received[i].extend_from_slice(std::slice::from_raw_parts(p, r.sizes[i]));
            if r.narrow[i] {
                ptr::copy_nonoverlapping(p, r.slots[i].as_mut_ptr(), 4);
            }
        }
    }
    // SAFETY: libffi's return buffer holds at least the return type's size,
    // and at least 8 bytes (`ffi_arg`) for integers.
    unsafe { ptr::copy_nonoverlapping(r.ret_write.as_ptr(), ret.cast(), r.ret_write.len()) };
}

/// A prepared libffi cif and a closure over it.
struct LibffiCallee {
    lcif: LibffiCif,
    closure: *mut ffi_closure,
    code: *mut c_void,
    rec: *mut Recorder,
}

impl LibffiCallee {
    /// `Err` when libffi refuses the signature.
    fn new(sig: &Signature, ret_write: Vec<u8>) -> Result<LibffiCallee, String> {
        let ret = sig.ret.as_ref().map_or_else(Type::void, jit_type);
        let args: Vec<Type> = sig.args.iter().map(jit_type).collect();
        let lcif = LibffiCif::new(&ret, &args, sig.fixed)?;
        let cif = lcif.raw();
        let rec = Box::into_raw(Box::new(Recorder {
            sizes: sig.args.iter().map(Shape::size).collect(),
            narrow: sig.args.iter().map(|a| a.narrow_int().is_some()).collect(),
            received: sig
                .args
                .iter()
                .map(|a| Vec::with_capacity(a.size()))
                .collect(),
            slots: vec![[0; 4]; sig.args.len()],
            ret_write,
            calls: 0,
        }));
        let mut callee = LibffiCallee {
            lcif,
            closure: ptr::null_mut(),
            code: ptr::null_mut(),
            rec,
        };
        // SAFETY: allocating a closure; checked for null below.
        callee.closure =
            unsafe { ffi::ffi_closure_alloc(std::mem::size_of::<ffi_closure>(), &mut callee.code) }
                .cast();
        if callee.closure.is_null() {
            return Err("ffi_closure_alloc failed".into());
        }
        // SAFETY: closure, cif and recorder are live for the closure's life.
        let status = unsafe {
            ffi::ffi_prep_closure_loc(callee.closure, cif, Some(record), rec.cast(), callee.code)
        };
        if status != ffi::ffi_status_FFI_OK {
            return Err(format!("ffi_prep_closure_loc failed (status {status})"));
        }
        Ok(callee)
    }

    fn recorder(&mut self) -> &mut Recorder {
        // SAFETY: no call is in progress, so no one else uses the recorder.
        unsafe { &mut *self.rec }
    }

    /// libffi's layout of argument `i`.
    fn arg_layout(&self, i: usize) -> (usize, usize, Vec<usize>) {
        self.lcif.arg_layout(i)
    }
}

impl Drop for LibffiCallee {
    fn drop(&mut self) {
        // SAFETY: each pointer was allocated in `new` and is freed once.
        unsafe {
            if !self.closure.is_null() {
                ffi::ffi_closure_free(self.closure.cast());
            }
            drop(Box::from_raw(self.rec));
        }
    }
}

// ---------------------------------------------------------------------------
// Cases

/// One test case: a signature, the argument values and the return value.
#[derive(Clone, Debug)]
pub struct Case {
    pub sig: Signature,
    pub values: Vec<Vec<u8>>,
    /// The return value the callee hands back (empty for void).
    pub ret_value: Vec<u8>,
    /// Also call through jitffi with a null return buffer.
    pub null_rvalue: bool,
}

impl Case {
    pub fn generate(src: &mut impl Source, cfg: &Config) -> Case {
        let sig = cfg.signature(src);
        let values = sig.args.iter().map(|a| a.random_value(src)).collect();
        let ret_value = sig
            .ret
            .as_ref()
            .map_or_else(Vec::new, |r| r.random_value(src));
        let null_rvalue = src.chance(1, 4);
        Case {
            sig,
            values,
            ret_value,
            null_rvalue,
        }
    }
}

/// How a case ended, when nothing was wrong.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// jitffi passed; libffi's own `ffi_call` showed a known libffi bug.
    PassedDespiteLibffi(String),
    /// libffi itself refused the signature: nothing to compare against.
    Skipped(String),
    /// A signature where libffi is known to disagree with gcc, so it
    /// cannot serve as the reference (see [`libffi_known_wrong`]).
    Excluded(String),
}

/// Signatures libffi 3.4.4 gets wrong on x86-64, checked against gcc
/// (`gcc -O2 -S` and a C program calling through libffi):
///
/// - a struct whose only content is one `long double` (possibly wrapped in
///   more single-member structs) is returned by gcc in `st(0)` (class
///   X87); libffi's closures and `ffi_call` use `rax:rdx` instead.
///
/// None known on AArch64.
pub fn libffi_known_wrong(sig: &Signature) -> Option<&'static str> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    fn lone_long_double(s: &Shape) -> bool {
        match s {
            Shape::Scalar(sc) => *sc == Scalar::LongDouble,
            Shape::Struct(m) => m.len() == 1 && m[0].count == 1 && lone_long_double(&m[0].shape),
        }
    }
    match &sig.ret {
        Some(r @ Shape::Struct(_)) if lone_long_double(r) => {
            Some("libffi 3.4.4 returns struct { long double } in rax:rdx, gcc in st(0)")
        }
        _ => None,
    }
}

/// Signatures whose arguments libffi 3.4.4's `ffi_call` passes wrongly on
/// AArch64 (its closures get them right): a struct over 16 bytes that is
/// not an HFA travels by reference, and when its address goes on the
/// stack `ffi_call` aligns that 8-byte slot to the struct's alignment.
/// With 16-byte alignment (a `long double` inside) the address, and every
/// stack argument after it, lands 8 bytes off from where gcc's callees
/// (and libffi's own closures) read it. Checked with a C program: gcc's
/// call of a libffi closure of `int64_t(9 x int64_t, struct { long double;
/// int64_t; int64_t; }, int64_t)` works, `ffi_call` of gcc's function of
/// that signature does not. Such signatures skip the `ffi_call` self-check
/// (jitffi's stubs still call the libffi closure).
pub fn libffi_call_known_wrong(sig: &Signature) -> Option<&'static str> {
    fn leaves(s: &Shape, out: &mut Vec<Scalar>) {
        match s {
            Shape::Scalar(sc) => out.push(*sc),
            Shape::Struct(members) => {
                for m in members {
                    for _ in 0..m.count {
                        leaves(&m.shape, out);
                    }
                }
            }
        }
    }
    // AAPCS64's homogeneous floating-point aggregates: one to four members
    // of one floating-point type (a complex number counts as two).
    fn is_hfa(s: &Shape) -> bool {
        let mut l = Vec::new();
        leaves(s, &mut l);
        let base = |sc: Scalar| match sc {
            Scalar::F32 | Scalar::ComplexF32 => Some(Scalar::F32),
            Scalar::F64 | Scalar::ComplexF64 => Some(Scalar::F64),
            Scalar::LongDouble | Scalar::ComplexLongDouble => Some(Scalar::LongDouble),
            _ => None,
        };
        let n: usize = l
            .iter()
            .map(|&sc| if base(sc) == Some(sc) { 1 } else { 2 })
            .sum();
        let first = l.first().and_then(|&sc| base(sc));
        first.is_some() && l.iter().all(|&sc| base(sc) == first) && n <= 4
    }
    if !cfg!(target_arch = "aarch64") {
        return None;
    }
    let by_reference_16 =
        |a: &Shape| matches!(a, Shape::Struct(_)) && a.size() > 16 && a.align() == 16 && !is_hfa(a);
    sig.args.iter().any(by_reference_16).then_some(
        "libffi 3.4.4's ffi_call (AArch64) misplaces the stack address of a 16-aligned \
         struct passed by reference",
    )
}

/// libffi 3.4.4's `ffi_call` (x86-64) copies a whole struct of 9-16 bytes
/// into the slot of its first eightbyte when that eightbyte is INTEGER;
/// when the slot is the last one (`r9`), the copy runs over into the saved
/// `xmm0` and clobbers its low `size - 8` bytes with bytes 8.. of the
/// struct. Recognizes exactly that damage: one argument differing only
/// within `size - 8` bytes from the start of one of its eightbytes, which
/// now hold the tail of a 9-16 byte struct argument.
fn libffi_r9_overflow(case: &Case, rec: &Recorder) -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let mut damaged = None;
    for (i, (shape, sent)) in case.sig.args.iter().zip(&case.values).enumerate() {
        let got = &rec.received[i];
        let mask = shape.mask();
        let diffs: Vec<usize> = (0..sent.len())
            .filter(|&b| mask[b] && sent[b] != got[b])
            .collect();
        if let (Some(&first), Some(&last)) = (diffs.first(), diffs.last()) {
            if damaged.is_some() {
                return false;
            }
            damaged = Some((i, first / 8 * 8, last));
        }
    }
    let Some((i, window, last)) = damaged else {
        return false;
    };
    let got = &rec.received[i];
    case.sig
        .args
        .iter()
        .zip(&case.values)
        .enumerate()
        .any(|(k, (shape, v))| {
            // The clobbered bytes, cut to the damaged value's own size
            // (a float in xmm0 shows only 4 of them).
            let n = v.len().saturating_sub(8).min(got.len() - window);
            k != i
                && matches!(shape, Shape::Struct(_))
                && (9..=16).contains(&v.len())
                && last < window + n
                && got[window..window + n] == v[8..8 + n]
        })
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Compares what the callee received with what was sent; `who` names the
/// caller. `extended` also checks 32-bit extension of narrow integers.
fn check_received(
    case: &Case,
    rec: &Recorder,
    who: &str,
    extended: bool,
    errors: &mut Vec<String>,
) {
    if rec.calls != 1 {
        errors.push(format!(
            "{who}: callee ran {} times, expected once",
            rec.calls
        ));
        return;
    }
    for (i, (shape, sent)) in case.sig.args.iter().zip(&case.values).enumerate() {
        let got = &rec.received[i];
        if let Some(at) = shape.first_difference(sent, got) {
            errors.push(format!(
                "{who}: argument {i} ({shape}) differs at byte {at}: sent {}, received {}",
                hex(sent),
                hex(got)
            ));
        }
        if let (true, Some(s)) = (extended, shape.narrow_int()) {
            let (want, _) = returned_image(shape, sent);
            if rec.slots[i] != want[..4] {
                let how = if s.is_signed() { "sign" } else { "zero" };
                errors.push(format!(
                    "{who}: argument {i} ({shape}) = {} not {how}-extended to 32 bits: slot holds {}",
                    hex(sent),
                    hex(&rec.slots[i])
                ));
            }
        }
    }
}

fn check_unchanged(what: &str, before: &[u8], after: &[u8], errors: &mut Vec<String>) {
    if let Some(at) = before.iter().zip(after).position(|(a, b)| a != b) {
        let at = at as isize - CANARY as isize;
        errors.push(format!(
            "{what} modified by the call at byte {at} (negative: before the value)"
        ));
    }
}

/// Checks the return buffer: the value where it belongs, and nothing
/// written from `limit` (the buffer size the API promises to respect) on,
/// nor in the canary before it.
fn check_return(
    case: &Case,
    who: &str,
    region: &Region,
    before: &[u8],
    limit: usize,
    errors: &mut Vec<String>,
) {
    let after = region.snapshot();
    if let Some(at) = before[..CANARY]
        .iter()
        .zip(&after[..CANARY])
        .position(|(a, b)| a != b)
    {
        errors.push(format!(
            "{who}: wrote {} bytes before the return buffer",
            CANARY - at
        ));
    }
    let tail = CANARY + limit.min(region.len);
    if before[tail..] != after[tail..] {
        errors.push(format!(
            "{who}: wrote past the {limit}-byte return buffer: before {}, after {}",
            hex(&before[CANARY..]),
            hex(&after[CANARY..])
        ));
    }
    if let Some(ret) = &case.sig.ret {
        let (want, mask) = returned_image(ret, &case.ret_value);
        let got = &after[CANARY..CANARY + want.len()];
        if let Some(at) = (0..want.len()).find(|&i| mask[i] && want[i] != got[i]) {
            errors.push(format!(
                "{who}: return value ({ret}) differs at byte {at}: callee returned {}, caller got {}",
                hex(&want),
                hex(got)
            ));
        }
    }
}

/// Where the argument values live for one call.
struct Placed {
    args: Vec<Region>,
    avalue: Region,
}

fn place_args(case: &Case, mem: &mut Guarded) -> Placed {
    let args: Vec<Region> = case
        .sig
        .args
        .iter()
        .zip(&case.values)
        .enumerate()
        .map(|(i, (shape, v))| {
            let start = mem.place(i, v.len(), shape.align());
            // SAFETY: `place` reserved `v.len()` bytes at `start`.
            unsafe { ptr::copy_nonoverlapping(v.as_ptr(), start, v.len()) };
            Region {
                start,
                len: v.len(),
            }
        })
        .collect();
    let n = args.len();
    let ptr_size = std::mem::size_of::<*const c_void>();
    let start = mem.place(AVALUE_SLOT, n * ptr_size, ptr_size);
    for (i, r) in args.iter().enumerate() {
        // SAFETY: the avalue region holds `n` pointer-aligned pointers.
        unsafe { start.cast::<*mut u8>().add(i).write(r.start) };
    }
    Placed {
        args,
        avalue: Region {
            start,
            len: n * ptr_size,
        },
    }
}

fn snapshot_all(p: &Placed) -> Vec<Vec<u8>> {
    p.args
        .iter()
        .chain(std::iter::once(&p.avalue))
        .map(Region::snapshot)
        .collect()
}

/// Checks that argument values and the avalue array are as before the
/// call, except the avalue entries `may_rewrite` allows.
fn check_all_unchanged(
    who: &str,
    p: &Placed,
    before: &[Vec<u8>],
    may_rewrite: impl Fn(usize) -> bool,
    errors: &mut Vec<String>,
) {
    for (i, (r, b)) in p.args.iter().zip(before).enumerate() {
        check_unchanged(&format!("{who}: argument {i}"), b, &r.snapshot(), errors);
    }
    let ptr_size = std::mem::size_of::<*const c_void>();
    let before_av = &before[p.args.len()];
    let mut after = p.avalue.snapshot();
    for i in (0..p.args.len()).filter(|&i| may_rewrite(i)) {
        let at = CANARY + i * ptr_size;
        after[at..at + ptr_size].copy_from_slice(&before_av[at..at + ptr_size]);
    }
    check_unchanged(&format!("{who}: avalue array"), before_av, &after, errors);
}

/// Resets the recorder before a call.
fn arm(callee: &mut LibffiCallee) {
    let r = callee.recorder();
    r.calls = 0;
    for v in &mut r.received {
        v.clear();
    }
    for s in &mut r.slots {
        *s = [0xee; 4];
    }
}

fn ret_region(case: &Case, mem: &mut Guarded, slot: usize, len: usize) -> Region {
    let align = case.sig.ret.as_ref().map_or(1, Shape::align);
    let start = mem.place(slot, len, align);
    // Whatever was there must be overwritten by the call: start from a
    // pattern that is not the expected value.
    // SAFETY: `place` reserved `len` (rounded up to `align`) bytes.
    unsafe { ptr::write_bytes(start, 0xc3, len.div_ceil(align) * align) };
    Region {
        start,
        len: len.div_ceil(align) * align,
    }
}

/// Runs one case through libffi and jitffi; `Err` lists every mismatch.
pub fn run_case(case: &Case, mem: &mut Guarded) -> Result<Outcome, Vec<String>> {
    run_case_as(case, &case.sig, mem)
}

/// [`run_case`], with jitffi's cif built from `jit_sig` instead of the
/// case's signature: the harness's own tests use a deliberately wrong
/// signature to show that mismatches are caught.
fn run_case_as(
    case: &Case,
    jit_sig: &Signature,
    mem: &mut Guarded,
) -> Result<Outcome, Vec<String>> {
    let sig = &case.sig;
    let ret_write = match &sig.ret {
        None => Vec::new(),
        Some(r) => returned_image(r, &case.ret_value).0,
    };
    if let Some(why) = libffi_known_wrong(sig) {
        return Ok(Outcome::Excluded(why.into()));
    }
    let mut callee = match LibffiCallee::new(sig, ret_write) {
        Ok(c) => c,
        Err(why) => return Ok(Outcome::Skipped(why)),
    };
    let mut errors = Vec::new();
    let mut libffi_bug = None;

    // Our layouts must be libffi's, or nothing below means anything.
    for (i, a) in sig.args.iter().enumerate() {
        let (size, align, offsets) = callee.arg_layout(i);
        if (size, align) != (a.size(), a.align())
            || (matches!(a, Shape::Struct(_)) && offsets != a.flat_offsets())
        {
            errors.push(format!(
                "harness: argument {i} ({a}) layout differs: libffi size {size} align {align} \
                 offsets {offsets:?}, randsig size {} align {} offsets {:?}",
                a.size(),
                a.align(),
                a.flat_offsets()
            ));
        }
    }

    // jitffi's cif, and its layouts.
    let jit_args: Vec<Type> = jit_sig.args.iter().map(jit_type).collect();
    let jit_ret = jit_sig.ret.as_ref().map_or_else(Type::void, jit_type);
    for (i, (t, a)) in jit_args.iter().zip(&jit_sig.args).enumerate() {
        let offsets_differ = matches!(a, Shape::Struct(_))
            && t.field_offsets().map(<[usize]>::to_vec) != Some(a.field_offsets());
        if (t.size(), t.align()) != (a.size(), a.align()) || offsets_differ {
            errors.push(format!(
                "jitffi Type layout: argument {i} ({a}): jitffi {t:?} offsets {:?}, C {} bytes align {} offsets {:?}",
                t.field_offsets(),
                a.size(),
                a.align(),
                a.field_offsets()
            ));
        }
    }
    let cif = jit_cif(jit_sig, jit_ret, &jit_args);
    let cif = match cif {
        Ok(c) => Some(c),
        Err(e) => {
            errors.push(format!("jitffi refused a signature libffi accepts: {e}"));
            None
        }
    };
    let plan = cif.as_ref().map(|c| c.plan().to_string());
    if let Some(plan) = &plan {
        set_note(&format!("{}\n  jitffi plan:\n{plan}", note_header(case)));
    }

    // 1. libffi's ffi_call: the harness's self-check.
    let call_wrong = libffi_call_known_wrong(sig);
    if let Some(why) = call_wrong {
        libffi_bug = Some(why.to_string());
    } else {
        let placed = place_args(case, mem);
        let before = snapshot_all(&placed);
        let rlen = case.sig.ret.as_ref().map_or(0, |r| r.size().max(8));
        let rregion = ret_region(case, mem, FFI_RET_SLOT, rlen);
        let rbefore = rregion.snapshot();
        arm(&mut callee);
        set_step("libffi ffi_call");
        // SAFETY: the closure implements the cif's signature; avalue holds
        // one valid pointer per argument; the return buffer is large enough.
        unsafe {
            let f: unsafe extern "C" fn() = std::mem::transmute(callee.code);
            ffi::ffi_call(
                callee.lcif.raw(),
                Some(f),
                rregion.start.cast(),
                placed.avalue.start.cast(),
            );
        }
        let who = "libffi ffi_call (harness self-check)";
        let mut own = Vec::new();
        check_received(case, callee.recorder(), who, false, &mut own);
        if !own.is_empty() && libffi_r9_overflow(case, callee.recorder()) {
            libffi_bug = Some(format!(
                "libffi ffi_call r9 overflow into xmm0 (known libffi 3.4.4 bug): {}",
                own.join("; ")
            ));
            own.clear();
        }
        check_return(case, who, &rregion, &rbefore, rlen, &mut own);
        // libffi's ffi_call replaces the avalue entries of structs over 16
        // bytes with pointers to its own copies.
        let big_struct =
            |i: usize| matches!(sig.args[i], Shape::Struct(_)) && sig.args[i].size() > 16;
        check_all_unchanged(who, &placed, &before, big_struct, &mut own);
        errors.extend(own);
    }

    let Some(cif) = cif else {
        return Err(errors);
    };

    // 2. jitffi's libffi-form stub.
    {
        let placed = place_args(case, mem);
        let before = snapshot_all(&placed);
        let rlen = cif.ret_buffer_size();
        let rregion = ret_region(case, mem, RET_SLOT, rlen);
        let rbefore = rregion.snapshot();
        arm(&mut callee);
        set_step("jitffi call_raw");
        // SAFETY: as above, with jitffi's contract: rvalue is valid for
        // ret_buffer_size() bytes and aligned for the return type.
        unsafe {
            cif.call_raw(
                callee.code,
                rregion.start.cast(),
                placed.avalue.start.cast(),
            )
        };
        let who = "jitffi call_raw";
        check_received(case, callee.recorder(), who, true, &mut errors);
        check_return(case, who, &rregion, &rbefore, rlen, &mut errors);
        check_all_unchanged(who, &placed, &before, |_| false, &mut errors);

        if case.null_rvalue {
            arm(&mut callee);
            set_step("jitffi call_raw, null rvalue");
            // SAFETY: as above; a null rvalue discards the result.
            unsafe { cif.call_raw(callee.code, ptr::null_mut(), placed.avalue.start.cast()) };
            let who = "jitffi call_raw with null rvalue";
            check_received(case, callee.recorder(), who, true, &mut errors);
            check_all_unchanged(who, &placed, &before, |_| false, &mut errors);
        }
    }

    // 3. jitffi's packed-form stub.
    {
        let offsets = cif.packed_offsets();
        let size = cif.packed_size();
        let mut layout_ok = offsets.len() == sig.args.len() && size % 8 == 0;
        for (i, a) in sig.args.iter().enumerate() {
            let Some(&off) = offsets.get(i) else { break };
            let off = off as usize;
            if off % a.align() != 0 || off + a.size() > size {
                layout_ok = false;
            }
        }
        if !layout_ok {
            errors.push(format!(
                "jitffi packed layout unusable: offsets {offsets:?}, size {size}"
            ));
        } else {
            let start = mem.place(PACKED_SLOT, size, 16);
            let region = Region {
                start,
                len: size.div_ceil(16) * 16,
            };
            // SAFETY: `place` reserved the rounded-up size at `start`, and
            // each value fits inside `size` (checked above).
            unsafe {
                ptr::write_bytes(start, 0xa7, region.len);
                for (v, &off) in case.values.iter().zip(offsets) {
                    ptr::copy_nonoverlapping(v.as_ptr(), start.add(off as usize), v.len());
                }
            }
            let before = region.snapshot();
            let rlen = cif.ret_buffer_size();
            let rregion = ret_region(case, mem, RET_SLOT, rlen);
            let rbefore = rregion.snapshot();
            arm(&mut callee);
            set_step("jitffi call_packed");
            // SAFETY: the buffer is 16-aligned, packed_size() bytes, with
            // every argument at its packed offset.
            unsafe {
                native_ret::call_packed_into(
                    cif.plan(),
                    cif.packed_entry() as *const c_void,
                    callee.code,
                    rregion.start.cast(),
                    start.cast(),
                )
            };
            let who = "jitffi call_packed";
            check_received(case, callee.recorder(), who, true, &mut errors);
            check_return(case, who, &rregion, &rbefore, rlen, &mut errors);
            check_unchanged(
                &format!("{who}: packed buffer"),
                &before,
                &region.snapshot(),
                &mut errors,
            );
        }
    }
    set_step("");

    if errors.is_empty() {
        Ok(match libffi_bug {
            None => Outcome::Passed,
            Some(what) => Outcome::PassedDespiteLibffi(what),
        })
    } else {
        if let Some(plan) = plan {
            errors.push(format!("jitffi plan:\n{plan}"));
        }
        Err(errors)
    }
}

fn note_header(case: &Case) -> String {
    RUN.with(|r| {
        let (seed, index) = r.get();
        format!(
            "  case {index} of seed {seed:#x} (rerun: JITFFI_DIFF_SEED={seed:#x} JITFFI_DIFF_INDEX={index})\n  signature: {}",
            case.sig
        )
    })
}

thread_local! {
    /// The (seed, index) being run, for crash notes.
    static RUN: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

// ---------------------------------------------------------------------------
// Runs

/// Results of many cases.
#[derive(Default)]
pub struct Report {
    pub passed: usize,
    pub skipped: Vec<(u64, String)>,
    pub excluded: Vec<(u64, String)>,
    pub libffi_bugs: Vec<(u64, String)>,
    pub failed: Vec<(u64, String)>,
}

/// Runs cases `indices` of `seed`.
pub fn run_seeded(seed: u64, indices: impl Iterator<Item = u64>, cfg: &Config) -> Report {
    install_crash_notes();
    let mut mem = Guarded::new();
    let mut report = Report::default();
    for index in indices {
        let case = Case::generate(&mut SplitMix64::for_case(seed, index), cfg);
        RUN.with(|r| r.set((seed, index)));
        set_note(&note_header(&case));
        match run_case(&case, &mut mem) {
            Ok(Outcome::Passed) => report.passed += 1,
            Ok(Outcome::PassedDespiteLibffi(why)) => {
                report.passed += 1;
                report.libffi_bugs.push((index, why));
            }
            Ok(Outcome::Skipped(why)) => report.skipped.push((index, why)),
            Ok(Outcome::Excluded(why)) => report.excluded.push((index, why)),
            Err(errors) => {
                let mut text = note_header(&case);
                for e in errors {
                    let _ = write!(text, "\n  {}", e.replace('\n', "\n    "));
                }
                report.failed.push((index, text));
            }
        }
    }
    report
}

fn run_and_assert(default_count: u64, cfg: &Config) {
    let seed = env_u64("JITFFI_DIFF_SEED").unwrap_or_else(fresh_seed);
    let (indices, verbose): (Box<dyn Iterator<Item = u64>>, bool) =
        match env_u64("JITFFI_DIFF_INDEX") {
            Some(i) => (Box::new(std::iter::once(i)), true),
            None => (
                Box::new(0..env_u64("JITFFI_DIFF_COUNT").unwrap_or(default_count)),
                false,
            ),
        };
    eprintln!("differential: seed {seed:#x} (set JITFFI_DIFF_SEED to repeat)");
    let t0 = Instant::now();
    let report = run_seeded(seed, indices, cfg);
    eprintln!(
        "differential: {} passed, {} failed, {} skipped (libffi refused), {} excluded \
         (libffi known wrong), {} where libffi's own ffi_call hit a known bug, in {:.1?}",
        report.passed,
        report.failed.len(),
        report.skipped.len(),
        report.excluded.len(),
        report.libffi_bugs.len(),
        t0.elapsed()
    );
    if verbose {
        RUN.with(|r| {
            let (seed, index) = r.get();
            let case = Case::generate(&mut SplitMix64::for_case(seed, index), cfg);
            eprintln!("{case:#?}\nsignature: {}", case.sig);
            let args: Vec<Type> = case.sig.args.iter().map(jit_type).collect();
            let ret = case.sig.ret.as_ref().map_or_else(Type::void, jit_type);
            match jit_cif(&case.sig, ret, &args) {
                Ok(cif) => eprintln!("jitffi plan:\n{}", cif.plan()),
                Err(e) => eprintln!("jitffi refused: {e}"),
            }
        });
    }
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for (_, text) in &report.failed {
        let mut seen = std::collections::BTreeSet::new();
        for line in text.lines().filter_map(|l| l.strip_prefix("  ")) {
            if let Some((kind, _)) = line.split_once(": ") {
                let ours = !kind.starts_with(' ') && !kind.starts_with("case ");
                if ours && kind != "signature" && seen.insert(kind) {
                    *kinds.entry(kind).or_default() += 1;
                }
            }
        }
    }
    for (kind, n) in &kinds {
        eprintln!("  {n:6} cases with errors from: {kind}");
    }
    for (i, why) in report.skipped.iter().take(5) {
        eprintln!("  skipped case {i}: {why}");
    }
    print_failures(&report.failed);
    assert!(
        report.failed.is_empty(),
        "{} of {} cases failed (seed {seed:#x})",
        report.failed.len(),
        report.passed + report.failed.len() + report.skipped.len() + report.excluded.len()
    );
    // libffi accepts every C signature we generate; a skip means the
    // generator drifted, which would silently shrink coverage.
    assert!(
        report.skipped.is_empty(),
        "libffi refused {} signatures",
        report.skipped.len()
    );
}

/// The fuzz target's entry: the fuzzer's bytes choose a signature, the
/// argument values and the return value; any mismatch panics.
pub fn fuzz_one(data: &[u8]) {
    thread_local! {
        static MEM: std::cell::RefCell<Option<Guarded>> = const { std::cell::RefCell::new(None) };
    }
    let case = Case::generate(&mut ByteReader::new(data), &Config::default());
    MEM.with(|m| {
        let mut m = m.borrow_mut();
        let mem = m.get_or_insert_with(Guarded::new);
        if let Err(errors) = run_case(&case, mem) {
            panic!(
                "jitffi and libffi disagree\n  signature: {}\n  {}\n{case:#?}",
                case.sig,
                errors.join("\n  ")
            );
        }
    });
}

// ---------------------------------------------------------------------------
// Tests

/// Thousands of random signatures: jitffi stubs calling libffi closures.
#[test]
fn jitffi_stubs_match_libffi_closures() {
    run_and_assert(3000, &Config::default());
}

/// A long soak run: `cargo test --test differential -- --ignored`.
#[test]
#[ignore]
fn soak_100k_signatures() {
    run_and_assert(100_000, &Config::default());
}

/// The layouts of randsig, jitffi and libffi agree on random shapes.
#[test]
fn layouts_agree() {
    let cfg = Config::default();
    let mut src = SplitMix64::new(0x1a7_0575);
    for _ in 0..2000 {
        let shape = cfg.structure(&mut src);
        let t = jit_type(&shape);
        assert_eq!(
            (t.size(), t.align()),
            (shape.size(), shape.align()),
            "{shape}"
        );
        assert_eq!(t.field_offsets().unwrap(), shape.field_offsets(), "{shape}");
        let sig = Signature {
            ret: None,
            args: vec![shape.clone()],
            fixed: None,
        };
        let callee = LibffiCallee::new(&sig, Vec::new()).expect("libffi accepts structs");
        let (size, align, offsets) = callee.arg_layout(0);
        assert_eq!((size, align), (shape.size(), shape.align()), "{shape}");
        assert_eq!(offsets, shape.flat_offsets(), "{shape}");
    }
}

/// The harness must be able to fail: calling through a jitffi cif whose
/// signature differs from the callee's in ABI-relevant ways (same sizes,
/// different classes, signedness or order) is reported, never passed.
#[test]
fn harness_catches_wrong_signatures() {
    use randsig::{sc, st};
    use Scalar::*;
    let sig = |ret: Option<Shape>, args: Vec<Shape>| Signature {
        ret,
        args,
        fixed: None,
    };
    // (the callee's signature, the one jitffi is told, what must be seen)
    let cases = [
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
        (
            sig(None, vec![sc(I8)]),
            sig(None, vec![sc(U8)]),
            "sign-extended",
        ),
        (
            sig(Some(sc(I32)), vec![]),
            sig(Some(sc(U32)), vec![]),
            "return value",
        ),
        (
            sig(Some(st(&[F32, F32])), vec![]),
            sig(Some(st(&[I32, I32])), vec![]),
            "return value",
        ),
        // Both returned in memory on x86-64; on AArch64 three doubles are
        // an HFA returned in d0-d2, and a callee expecting the sret
        // pointer in x8 would write through garbage: keep the return.
        (
            sig(Some(st(&[I64, I64, I64])), vec![sc(I64)]),
            sig(
                Some(st(if cfg!(target_arch = "aarch64") {
                    &[I64, I64, I64]
                } else {
                    &[F64, F64, F64]
                })),
                vec![sc(F64)],
            ),
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
    let mut mem = Guarded::new();
    let mut src = SplitMix64::new(0xbad);
    for (real, told, expect) in cases {
        // Values with the sign bit set in every byte, so that a lost sign
        // extension and a misplaced value both show.
        let mut case = Case {
            values: real
                .args
                .iter()
                .map(|a| a.random_value(&mut src).iter().map(|b| b | 0x80).collect())
                .collect(),
            ret_value: real.ret.as_ref().map_or_else(Vec::new, |r| {
                r.random_value(&mut src).iter().map(|b| b | 0x80).collect()
            }),
            sig: real,
            null_rvalue: false,
        };
        // Keep the doubles finite and the float slot distinct from them.
        for v in &mut case.values {
            v[0] ^= 0x5a;
        }
        match run_case_as(&case, &told, &mut mem) {
            Ok(o) => panic!("calling {} as {told} went unnoticed: {o:?}", case.sig),
            Err(errors) => assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with("jitffi") && e.contains(expect)),
                "calling {} as {told}: expected an error about {expect}, got {errors:#?}",
                case.sig
            ),
        }
    }
}

/// A fault inside a call (a stub touching a guard page) prints the case
/// being run before the process dies, so a crash can be reproduced.
#[test]
fn fault_prints_the_case() {
    use std::os::unix::process::ExitStatusExt;
    if std::env::var_os("JITFFI_DIFF_FAULT_CHILD").is_some() {
        install_crash_notes();
        set_note("  marker: the case description");
        set_step("deliberate fault");
        let mut mem = Guarded::new();
        let p = mem.place(0, 8, 8);
        // SAFETY: `p + 8` is the first byte of a guard page of our own
        // mapping; the read traps (SIGSEGV) before anything is loaded, and
        // this child process exists to die of exactly that.
        let v = unsafe { ptr::read_volatile(p.add(8)) };
        unreachable!("the guard page was readable: {v}");
    }
    let out = child::self_command()
        .args(["--exact", "fault_prints_the_case", "--nocapture"])
        .env("JITFFI_DIFF_FAULT_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{stderr}");
    assert!(
        stderr.contains("fatal signal while calling (deliberate fault)")
            && stderr.contains("marker: the case description"),
        "{stderr}"
    );
}

/// The fuzz entry point accepts arbitrary bytes (short, long, empty).
#[test]
fn fuzz_entry_accepts_any_bytes() {
    let mut src = SplitMix64::new(0xf022);
    // Exercised for its totality, not its verdicts: those belong to the
    // main test. A mismatch would panic here too, which is fine.
    for len in [0usize, 1, 2, 7, 64, 300, 2000] {
        let mut data = vec![0u8; len];
        src.fill(&mut data);
        let case = Case::generate(&mut ByteReader::new(&data), &Config::default());
        assert!(case.sig.args.len() <= 20);
        assert_eq!(case.values.len(), case.sig.args.len());
    }
    let _ = fuzz_one as fn(&[u8]);
}

/// The generator reaches every way a value can travel, often enough to
/// matter; measured on jitffi's plans (for coverage, not correctness).
#[test]
fn generator_covers_the_calling_convention() {
    use jitffi::plan::{ArgPass, Loc, RetPass};
    let cfg = Config::default();
    let n = 3000;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for index in 0..n {
        let case = Case::generate(&mut SplitMix64::for_case(0xc0ffee, index), &cfg);
        let sig = &case.sig;
        let args: Vec<Type> = sig.args.iter().map(jit_type).collect();
        let ret = sig.ret.as_ref().map_or_else(Type::void, jit_type);
        let Ok(cif) = jit_cif(sig, ret, &args) else {
            continue;
        };
        let plan = cif.plan();
        let mut seen = std::collections::BTreeSet::new();
        if plan.is_variadic() {
            seen.insert("variadic");
        }
        match &plan.ret.pass {
            RetPass::Void => {}
            RetPass::Indirect { .. } => {
                seen.insert("sret");
            }
            RetPass::Direct(p) => {
                if p.iter().any(|p| matches!(p.loc, Loc::X87(_))) {
                    seen.insert("x87 return");
                }
                if p.iter().any(|p| matches!(p.loc, Loc::Gpr(_)))
                    && p.iter().any(|p| matches!(p.loc, Loc::Vec(_)))
                {
                    seen.insert("mixed gpr+sse return");
                }
                if p.iter().filter(|p| matches!(p.loc, Loc::Vec(_))).count() > 1 {
                    seen.insert("several vector registers returned");
                }
            }
        }
        for a in &plan.args {
            let pieces = match &a.pass {
                ArgPass::Direct(pieces) => pieces,
                ArgPass::Indirect { .. } => {
                    seen.insert("copy passed by reference");
                    continue;
                }
            };
            let gpr = pieces.iter().any(|p| matches!(p.loc, Loc::Gpr(_)));
            let vec = pieces.iter().any(|p| matches!(p.loc, Loc::Vec(_)));
            let stack = pieces.iter().any(|p| matches!(p.loc, Loc::Stack(_)));
            if gpr && vec {
                seen.insert("struct split gpr+sse");
            }
            if stack && a.ty.is_aggregate() && a.ty.size() <= 16 {
                seen.insert("small struct on the stack (registers exhausted)");
            }
            if stack && a.ty.size() > 16 {
                seen.insert("large value on the stack");
            }
            if pieces.iter().any(|p| p.loc == Loc::Gpr(LAST_GPR)) {
                seen.insert("last gpr (r9 / x7) used");
            }
            if pieces.iter().any(|p| p.loc == Loc::Vec(7)) {
                seen.insert("last vector register (xmm7 / v7) used");
            }
            if a.ty.is_aggregate()
                && pieces
                    .iter()
                    .filter(|p| matches!(p.loc, Loc::Vec(_)))
                    .count()
                    > 1
            {
                seen.insert("aggregate in several vector registers");
            }
        }
        for s in seen {
            *counts.entry(s).or_default() += 1;
        }
    }
    eprintln!("{counts:#?}");
    // Floors well under what the generator reaches (see the printout), per
    // convention: SysV splits structs by eightbyte and has x87 returns;
    // AAPCS64 passes HFAs in vector registers and large values by reference.
    #[cfg(target_arch = "x86_64")]
    const LAST_GPR: u8 = 9;
    #[cfg(target_arch = "aarch64")]
    const LAST_GPR: u8 = 7;
    #[cfg(target_arch = "x86_64")]
    let floors = [
        ("variadic", 8),
        ("sret", 8),
        ("x87 return", 2),
        ("mixed gpr+sse return", 2),
        ("struct split gpr+sse", 10),
        ("small struct on the stack (registers exhausted)", 5),
        ("large value on the stack", 10),
        ("last gpr (r9 / x7) used", 10),
        ("last vector register (xmm7 / v7) used", 3),
    ];
    #[cfg(target_arch = "aarch64")]
    let floors = [
        ("variadic", 8),
        ("sret", 8),
        ("several vector registers returned", 4),
        ("copy passed by reference", 20),
        ("aggregate in several vector registers", 5),
        ("small struct on the stack (registers exhausted)", 5),
        ("last gpr (r9 / x7) used", 4),
        ("last vector register (xmm7 / v7) used", 3),
    ];
    for (what, percent) in floors {
        let got = counts.get(what).copied().unwrap_or(0);
        assert!(
            got * 100 >= percent * n as usize,
            "only {got} of {n} signatures reach {what:?} (want {percent}%)"
        );
    }
}
