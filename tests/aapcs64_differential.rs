//! Differential tests on AArch64: jitffi against the system libffi (arm64
//! Debian's libffi 3.4), called under qemu-user.
//!
//! 1. The oracle table (`oracle/c/aarch64/aapcs64.c`): every case libffi
//!    can describe (no unions, no `__int128`; arrays become repeated
//!    members) is called through libffi's `ffi_call` and through jitffi's
//!    libffi-form and packed-form stubs, and gcc's own call is the
//!    referee: jitffi must agree with gcc everywhere; where libffi agrees
//!    with gcc too, the three agree; where it does not, the case is listed
//!    as a libffi deviation (and printed), not a jitffi failure.
//! 2. Seeded random signatures built for AAPCS64's corners (HFAs of every
//!    base type and count, nested and in arrays and complex members;
//!    near-HFAs; odd-sized small composites; large composites; long
//!    double; complex; more arguments than registers; variadic calls), in
//!    both directions:
//!    - a libffi closure as the callee records what it receives and
//!      returns a chosen value; it is called by libffi's own `ffi_call`
//!      (the harness's self-check), by jitffi's `call_raw` and by its
//!      packed form;
//!    - a jitffi closure as the callee, called by libffi's `ffi_call` and
//!      by jitffi's `call_raw`.
//!
//! Every argument received must be what was sent (meaningful bytes), every
//! result what the callee returned (narrow integers widened to an 8-byte
//! `ffi_arg`), and nothing the caller owns may change.
//!
//! Environment: `JITFFI_DIFF_COUNT` (random cases, default 2000),
//! `JITFFI_DIFF_SEED` (default: fresh, printed), `JITFFI_DIFF_INDEX` (run
//! only that case of the seed, printing it).
#![cfg(target_arch = "aarch64")]

use std::ffi::{c_void, CString};
use std::ptr;

use jitffi::plan::{ArgPass, Loc, RetPass};
use jitffi::{Cif, RawClosure, Type, TypeKind};
use jitffi_oracle::aapcs64 as a64;
use libffi::raw::{self as ffi, ffi_cif, ffi_closure};

#[path = "support/randsig.rs"]
mod randsig;
use randsig::{Source, SplitMix64};

#[path = "support/ffi_convert.rs"]
mod ffi_convert;
use ffi_convert::LibffiCif;

#[path = "support/diff_run.rs"]
mod diff_run;
use diff_run::{env_u64, fresh_seed, on_fatal_signals, write_stderr};

#[path = "support/shapes.rs"]
mod shapes;
use shapes::{hex, is_narrow_int, mask, masked, ret_mask, value, widen, Buf, Rng};

/// The crate, under the name `support/native_ret.rs` expects.
mod jit {
    pub use jitffi::*;
}
#[path = "support/native_ret.rs"]
mod native_ret;

const GUARD: usize = 32;
const POISON: u8 = 0xa5;

// ------------------------------------------------ crash notes

const NOTE_CAP: usize = 8 * 1024;

thread_local! {
    static NOTE: std::cell::UnsafeCell<[u8; NOTE_CAP]> =
        const { std::cell::UnsafeCell::new([0; NOTE_CAP]) };
    static NOTE_LEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    static STEP: std::cell::Cell<&'static str> = const { std::cell::Cell::new("") };
}

/// What a fatal signal should report: the case being run.
fn set_note(text: &str) {
    let n = text.len().min(NOTE_CAP);
    NOTE.with(|b| {
        // SAFETY: only this thread writes its note; the signal handler on
        // this thread only reads it.
        unsafe { (&mut *b.get())[..n].copy_from_slice(&text.as_bytes()[..n]) }
    });
    NOTE_LEN.with(|l| l.set(n));
}

/// Which call of the case is running.
fn set_step(step: &'static str) {
    STEP.with(|s| s.set(step));
}

extern "C" fn on_fatal_signal(_sig: libc::c_int) {
    write_stderr(b"\n*** aapcs64 differential: fatal signal in (");
    STEP.with(|s| write_stderr(s.get().as_bytes()));
    write_stderr(b")\n");
    let n = NOTE_LEN.with(|l| l.get());
    NOTE.with(|b| {
        // SAFETY: reading this thread's note, written before the call.
        write_stderr(unsafe { &(&*b.get())[..n] })
    });
    write_stderr(b"\n");
}

#[path = "support/a64_types.rs"]
mod a64_types;
use a64_types::jt;

/// The bytes a caller's libffi-form return buffer must hold for a callee
/// that returned `v`, and which of them count.
fn returned_image(ret: &Type, v: &[u8]) -> (Vec<u8>, Vec<bool>) {
    if is_narrow_int(ret) {
        (widen(ret, v), vec![true; 8])
    } else {
        (v.to_vec(), ret_mask(ret))
    }
}

/// The first meaningful byte where `got` differs from `want`.
fn differs(want: &[u8], got: &[u8], m: &[bool]) -> Option<usize> {
    (0..want.len()).find(|&i| m[i] && want.get(i) != got.get(i))
}

/// `libffi` ffi_call of `f` through `lcif`, with a fresh copy of `avalue`
/// (libffi may rewrite entries) into `rvalue`.
///
/// # Safety
/// `f` has the cif's signature; `avalue` points at values of its types;
/// `rvalue` is large enough for libffi's stores.
unsafe fn libffi_call(
    lcif: &LibffiCif,
    f: *const c_void,
    rvalue: *mut c_void,
    avalue: &[*const c_void],
) {
    let mut av: Vec<*mut c_void> = avalue.iter().map(|p| p.cast_mut()).collect();
    // SAFETY: per this function's contract; `f` is a code address.
    unsafe {
        ffi::ffi_call(
            lcif.raw(),
            Some(std::mem::transmute::<*const c_void, unsafe extern "C" fn()>(f)),
            rvalue,
            av.as_mut_ptr(),
        )
    };
}

// =============================================== 1. the oracle table

/// The letter of `a_va_fmt`'s format for a C type.
fn fmt_letter(name: &str) -> char {
    match name {
        "i32" => 'i',
        "i64" => 'q',
        "f64" => 'd',
        "f128" => 'D',
        "ptr" => 'p',
        "s_di" => 's',
        "s_fd" => 'x',
        "s_fff" => 'f',
        "s_d4" => 'h',
        "s_24" => 'b',
        "cf64" => 'c',
        other => panic!("a_va_fmt has no letter for {other}"),
    }
}

/// One C case with values: what gcc's call recorded and returned.
struct TableRun {
    truth: a64::Record,
    ret: Vec<u8>,
}

#[test]
fn libffi_jitffi_and_gcc_agree_on_the_oracle_table() {
    let mut failures = Vec::new();
    let mut deviations = Vec::new();
    let mut compared = 0;
    for case in a64::cases() {
        let ret = jt(&case.ret);
        let args: Vec<Type> = case.args.iter().map(jt).collect();
        let lcif = match LibffiCif::new_checked(&ret, &args, case.fixed) {
            Ok(l) => l,
            Err(_) => continue, // unions, __int128: libffi has no words
        };
        let cif = match case.fixed {
            None => Cif::new(ret.clone(), &args),
            Some(n) => Cif::new_variadic(ret.clone(), &args[..n], &args[n..]),
        }
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        compared += 1;

        let mut rng = Rng::for_case(case.name, 0xd1ff);
        let mut bufs: Vec<Buf> = args
            .iter()
            .map(|t| Buf::from_bytes(&value(t, &mut rng)))
            .collect();
        let fmt: CString = if case.name.starts_with("a_va_fmt") {
            CString::new(
                case.arg_names[1..]
                    .iter()
                    .map(|n| fmt_letter(n))
                    .collect::<String>(),
            )
            .expect("no NUL")
        } else {
            CString::default()
        };
        if case.fixed.is_some() {
            let b = bufs[0].bytes_mut();
            if case.name.starts_with("a_va_fmt") {
                b.copy_from_slice(&(fmt.as_ptr() as usize).to_le_bytes());
            } else {
                b.copy_from_slice(&((args.len() - 1) as i32).to_le_bytes());
            }
        }
        let avalue: Vec<*const c_void> = bufs.iter_mut().map(|b| b.ptr().cast_const()).collect();
        let before: Vec<Vec<u8>> = bufs.iter().map(|b| b.bytes().to_vec()).collect();
        let ret_len = cif.ret_buffer_size();
        let rmask = ret_mask(&ret);
        let run = |how: &str| -> TableRun {
            let mut r = Buf::new(ret_len.max(16) + GUARD, POISON);
            a64::reset();
            // SAFETY: each way calls the oracle with its own signature and
            // values of its argument types; the buffer holds the result
            // (and libffi's wider stores).
            unsafe {
                match how {
                    "gcc" => (case.direct)(r.ptr(), avalue.as_ptr()),
                    "libffi" => libffi_call(&lcif, case.func, r.ptr(), &avalue),
                    "jitffi" => cif.call_raw(case.func, r.ptr(), avalue.as_ptr()),
                    _ => {
                        let offsets = cif.packed_offsets();
                        let mut packed = Buf::new(cif.packed_size() + GUARD, 0x5a);
                        for ((t, b), &off) in args.iter().zip(&bufs).zip(offsets) {
                            let off = off as usize;
                            packed.bytes_mut()[off..off + t.size()].copy_from_slice(b.bytes());
                        }
                        native_ret::call_packed_into(
                            cif.plan(),
                            cif.packed_entry() as *const c_void,
                            case.func,
                            r.ptr(),
                            packed.ptr(),
                        );
                    }
                }
            }
            TableRun {
                truth: a64::record(),
                ret: masked(&r.bytes()[..rmask.len()], &rmask),
            }
        };
        let gcc = run("gcc");
        let lib = run("libffi");
        let libffi_ok = lib.truth == gcc.truth && (ret.is_void() || lib.ret == gcc.ret);
        if !libffi_ok {
            deviations.push(format!(
                "{} {}: libffi {}",
                case.name,
                case.sig,
                if lib.truth != gcc.truth {
                    "passes other arguments than gcc"
                } else {
                    "returns another value than gcc"
                }
            ));
        }
        for how in ["jitffi", "jitffi packed"] {
            let jit = run(how);
            if jit.truth != gcc.truth {
                failures.push(format!(
                    "{} {} [{how}]: the oracle received {:?}, from gcc {:?}{}",
                    case.name,
                    case.sig,
                    jit.truth,
                    gcc.truth,
                    if libffi_ok { " (as from libffi)" } else { "" }
                ));
            }
            if !ret.is_void() && jit.ret != gcc.ret {
                failures.push(format!(
                    "{} {} [{how}]: returned {}, gcc's call {}",
                    case.name,
                    case.sig,
                    hex(&jit.ret),
                    hex(&gcc.ret)
                ));
            }
        }
        for (i, b) in bufs.iter().enumerate() {
            if b.bytes() != before[i] {
                failures.push(format!("{}: argument {i} changed", case.name));
            }
        }
    }
    if !deviations.is_empty() {
        eprintln!(
            "libffi disagrees with gcc on {} oracle cases (not jitffi's concern):\n  {}",
            deviations.len(),
            deviations.join("\n  ")
        );
    }
    assert!(compared >= 70, "only {compared} cases libffi can describe");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ============================================ 2. random signatures

/// A float base type of an HFA.
fn float_base(src: &mut SplitMix64) -> Type {
    match src.below(3) {
        0 => Type::f32(),
        1 => Type::f64(),
        _ => Type::long_double(),
    }
}

/// Members totalling `n` floats of `base`: scalars, arrays, nested
/// structs and (for two at once) the complex type of the base.
fn hfa_members(base: &Type, n: usize, src: &mut SplitMix64, depth: usize) -> Vec<Type> {
    let mut out = Vec::new();
    let mut left = n;
    while left > 0 {
        let take = src.range(1, left);
        let member = match src.below(4) {
            0 if take == 2 => match base.kind() {
                TypeKind::F32 => Type::complex_f32(),
                TypeKind::F64 => Type::complex_f64(),
                _ => Type::complex_long_double(),
            },
            1 if take > 1 => Type::array(base.clone(), take).expect("array"),
            2 if depth < 3 => {
                Type::structure(hfa_members(base, take, src, depth + 1)).expect("struct")
            }
            _ => {
                // One float now, the rest later.
                out.push(base.clone());
                left -= 1;
                continue;
            }
        };
        out.push(member);
        left -= take;
    }
    out
}

/// A struct of 1-4 floats of one type (an HFA), sometimes 5 or a float
/// of the wrong type or an integer mixed in (a near-HFA).
fn hfa_like(src: &mut SplitMix64) -> Type {
    let base = float_base(src);
    let n = if src.chance(1, 6) { 5 } else { src.range(1, 4) };
    let mut members = hfa_members(&base, n, src, 1);
    if src.chance(1, 5) {
        let intruder = match src.below(3) {
            0 => Type::f32(),
            1 => Type::f64(),
            _ => Type::i32(),
        };
        let at = src.below(members.len() as u64 + 1) as usize;
        members.insert(at, intruder);
    }
    Type::structure(members).expect("struct")
}

fn int_scalar(src: &mut SplitMix64) -> Type {
    [
        Type::i8(),
        Type::u8(),
        Type::i16(),
        Type::u16(),
        Type::i32(),
        Type::u32(),
        Type::i64(),
        Type::u64(),
        Type::pointer(),
    ][src.below(9) as usize]
        .clone()
}

fn scalar(src: &mut SplitMix64) -> Type {
    match src.weighted(&[8, 6, 2, 2]) {
        0 => int_scalar(src),
        1 => [Type::f32(), Type::f64()][src.below(2) as usize].clone(),
        2 => Type::long_double(),
        _ => [
            Type::complex_f32(),
            Type::complex_f64(),
            Type::complex_long_double(),
        ][src.below(3) as usize]
            .clone(),
    }
}

/// A composite of mixed members: up to 16 bytes (registers) or larger
/// (by reference), sometimes an odd-sized byte array.
fn mixed_struct(src: &mut SplitMix64, large: bool) -> Type {
    if !large && src.chance(1, 4) {
        let n = src.range(1, 16);
        return Type::structure([Type::array(Type::u8(), n).expect("array")]).expect("struct");
    }
    let limit = if large { 128 } else { 16 };
    let mut fields = Vec::new();
    loop {
        let f = if src.chance(1, 6) {
            hfa_like(src)
        } else {
            scalar(src)
        };
        let mut trial = fields.clone();
        trial.push(f);
        let t = Type::structure(trial.clone()).expect("struct");
        if t.size() > limit {
            break;
        }
        fields = trial;
        if !large && src.chance(1, 3) {
            break;
        }
    }
    if fields.is_empty() {
        fields.push(int_scalar(src));
    }
    let t = Type::structure(fields).expect("struct");
    if large && t.size() <= 16 {
        // Make it large: append bytes.
        let pad = Type::array(Type::u8(), 17).expect("array");
        return Type::structure([t, pad]).expect("struct");
    }
    t
}

fn any_type(src: &mut SplitMix64) -> Type {
    match src.weighted(&[8, 6, 5, 2]) {
        0 => scalar(src),
        1 => hfa_like(src),
        2 => mixed_struct(src, false),
        _ => mixed_struct(src, true),
    }
}

/// C's default argument promotions for a variadic argument.
fn promoted(t: Type) -> Type {
    match t.kind() {
        TypeKind::F32 => Type::f64(),
        TypeKind::I8 | TypeKind::U8 | TypeKind::I16 | TypeKind::U16 => Type::i32(),
        _ => t,
    }
}

/// A random signature.
struct Sig {
    ret: Type,
    args: Vec<Type>,
    fixed: Option<usize>,
}

impl Sig {
    fn generate(src: &mut SplitMix64) -> Sig {
        let n = match src.weighted(&[2, 4, 4, 2]) {
            0 => src.range(0, 2),
            1 => src.range(1, 6),
            2 => src.range(6, 12),
            _ => src.range(12, 20),
        };
        let floaty = src.chance(1, 3);
        let mut args: Vec<Type> = (0..n)
            .map(|_| {
                if floaty && src.chance(2, 3) {
                    if src.chance(1, 2) {
                        hfa_like(src)
                    } else {
                        float_base(src)
                    }
                } else {
                    any_type(src)
                }
            })
            .collect();
        let fixed = (n > 0 && src.chance(1, 5)).then(|| src.range(1, n));
        if let Some(k) = fixed {
            for a in &mut args[k..] {
                *a = promoted(a.clone());
            }
        }
        let ret = if src.chance(1, 6) {
            Type::void()
        } else {
            any_type(src)
        };
        Sig { ret, args, fixed }
    }

    fn text(&self) -> String {
        let args: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        match self.fixed {
            None => format!("{}({})", self.ret, args.join(", ")),
            Some(k) => format!(
                "{}({}; ... {})",
                self.ret,
                args[..k].join(", "),
                args[k..].join(", ")
            ),
        }
    }

    fn cif(&self) -> jitffi::Result<Cif> {
        match self.fixed {
            None => Cif::new(self.ret.clone(), &self.args),
            Some(k) => Cif::new_variadic(self.ret.clone(), &self.args[..k], &self.args[k..]),
        }
    }
}

/// What a callee received, and what it hands back.
struct Recorder {
    args: Vec<Type>,
    received: Vec<Vec<u8>>,
    /// The exact bytes the handler writes at rvalue.
    ret_write: Vec<u8>,
    calls: u32,
}

impl Recorder {
    /// Records one call's arguments from the handler's pointer array.
    ///
    /// # Safety
    /// `args` holds one pointer per argument, each to a value of its type.
    unsafe fn take(&mut self, args: *const *mut c_void) {
        self.calls += 1;
        self.received.clear();
        for (i, t) in self.args.iter().enumerate() {
            // SAFETY: per this function's contract.
            let bytes =
                unsafe { std::slice::from_raw_parts((*args.add(i)).cast::<u8>(), t.size()) };
            self.received.push(bytes.to_vec());
        }
    }
}

unsafe extern "C" fn libffi_handler(
    _cif: *mut ffi_cif,
    ret: *mut c_void,
    args: *mut *mut c_void,
    user: *mut c_void,
) {
    // SAFETY: `user` is the Recorder registered with this closure, used by
    // nothing else during the call.
    let r = unsafe { &mut *user.cast::<Recorder>() };
    // SAFETY: libffi passes one pointer per argument.
    unsafe { r.take(args) };
    // SAFETY: libffi's return buffer holds the return type (8 bytes at
    // least for integers); `ret_write` is no longer.
    unsafe { ptr::copy_nonoverlapping(r.ret_write.as_ptr(), ret.cast(), r.ret_write.len()) };
}

unsafe extern "C" fn jitffi_handler(
    _cif: *const c_void,
    ret: *mut c_void,
    args: *const *mut c_void,
    user: *mut c_void,
) {
    // SAFETY: as in `libffi_handler`.
    let r = unsafe { &mut *user.cast::<Recorder>() };
    // SAFETY: the thunk passes one pointer per argument.
    unsafe { r.take(args) };
    // SAFETY: the thunk's return buffer holds the return type.
    unsafe { ptr::copy_nonoverlapping(r.ret_write.as_ptr(), ret.cast(), r.ret_write.len()) };
}

/// A libffi closure over a prepared cif.
struct LibffiClosure {
    closure: *mut ffi_closure,
    code: *mut c_void,
}

impl LibffiClosure {
    fn new(lcif: &LibffiCif, rec: *mut Recorder) -> Result<LibffiClosure, String> {
        let mut code = ptr::null_mut();
        // SAFETY: allocating a closure; checked below.
        let closure =
            unsafe { ffi::ffi_closure_alloc(std::mem::size_of::<ffi_closure>(), &mut code) }
                .cast::<ffi_closure>();
        if closure.is_null() {
            return Err("ffi_closure_alloc failed".into());
        }
        let c = LibffiClosure { closure, code };
        // SAFETY: the closure, the cif and the recorder outlive its use.
        let status = unsafe {
            ffi::ffi_prep_closure_loc(closure, lcif.raw(), Some(libffi_handler), rec.cast(), code)
        };
        if status != ffi::ffi_status_FFI_OK {
            return Err(format!("ffi_prep_closure_loc failed ({status})"));
        }
        Ok(c)
    }
}

impl Drop for LibffiClosure {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`, freed once.
        unsafe { ffi::ffi_closure_free(self.closure.cast()) };
    }
}

/// Why libffi's `ffi_call` cannot referee a signature on AArch64, if it
/// cannot: deviations from gcc found with this harness and confirmed by a
/// C program calling a gcc-compiled function through libffi 3.4.4 (Debian
/// arm64):
///
/// - a composite passed by reference (over 16 bytes, no HFA) whose own
///   alignment is 16 (it holds a `long double` or `__int128`) and whose
///   address goes on the stack: `ffi_call` puts the address at the next
///   16-aligned stack offset; the standard and gcc put it in the next
///   8-byte slot. (`void f(long x8, int, struct { double d; long double
///   x; })`: gcc reads the address from `[sp, 8]`, libffi stores it at
///   `[sp, 16]`, and the callee dereferences garbage.) libffi's closures
///   read the slot right.
fn libffi_call_known_wrong(cif: &Cif) -> Option<&'static str> {
    cif.plan().args.iter().find_map(|a| match a.pass {
        ArgPass::Indirect {
            pointer: Loc::Stack(_),
        } if a.ty.align() >= 16 => {
            Some("ffi_call puts the stack address of a 16-aligned by-reference composite at a 16-aligned offset")
        }
        _ => None,
    })
}

/// How one random case ended.
enum Outcome {
    Passed,
    /// Passed the comparisons left after leaving out libffi's `ffi_call`
    /// (see [`libffi_call_known_wrong`]).
    PassedWithoutFfiCall,
    /// libffi refused or could not describe the signature.
    Skipped,
    /// libffi's own round trip failed: the signature cannot referee.
    LibffiDeviates(String),
    Failed(Vec<String>),
}

/// The values of one call.
struct Values {
    bufs: Vec<Buf>,
    avalue: Vec<*const c_void>,
    sent: Vec<Vec<u8>>,
    ret_value: Vec<u8>,
}

impl Values {
    fn new(sig: &Sig, rng: &mut Rng) -> Values {
        let mut bufs: Vec<Buf> = sig
            .args
            .iter()
            .map(|t| Buf::from_bytes(&value(t, rng)))
            .collect();
        let avalue = bufs.iter_mut().map(|b| b.ptr().cast_const()).collect();
        let sent = sig
            .args
            .iter()
            .zip(&bufs)
            .map(|(t, b)| masked(b.bytes(), &mask(t)))
            .collect();
        let ret_value = if sig.ret.is_void() {
            Vec::new()
        } else {
            value(&sig.ret, rng)
        };
        Values {
            bufs,
            avalue,
            sent,
            ret_value,
        }
    }

    fn packed(&self, cif: &Cif) -> Buf {
        let mut packed = Buf::new(cif.packed_size() + GUARD, 0x5a);
        for ((t, b), &off) in cif.args().iter().zip(&self.bufs).zip(cif.packed_offsets()) {
            let off = off as usize;
            packed.bytes_mut()[off..off + t.size()].copy_from_slice(b.bytes());
        }
        packed
    }
}

/// Checks a callee's record and the caller's return buffer after one call.
fn check_call(
    who: &str,
    sig: &Sig,
    vals: &Values,
    rec: &Recorder,
    ret_buf: &Buf,
    ret_len: usize,
    errs: &mut Vec<String>,
) {
    if rec.calls != 1 {
        errs.push(format!("{who}: callee ran {} times", rec.calls));
        return;
    }
    for (i, t) in sig.args.iter().enumerate() {
        let got = masked(&rec.received[i], &mask(t));
        if got != vals.sent[i] {
            errs.push(format!(
                "{who}: argument {i} ({t}) sent {} received {}",
                hex(&vals.sent[i]),
                hex(&got)
            ));
        }
    }
    if !sig.ret.is_void() {
        let (want, m) = returned_image(&sig.ret, &vals.ret_value);
        if let Some(at) = differs(&want, ret_buf.bytes(), &m) {
            errs.push(format!(
                "{who}: result ({}) differs at byte {at}: callee returned {}, caller got {}",
                sig.ret,
                hex(&want),
                hex(&ret_buf.bytes()[..want.len()])
            ));
        }
    }
    if ret_len > 0 {
        if let Some(i) = ret_buf.bytes()[ret_len..].iter().position(|&b| b != POISON) {
            errs.push(format!(
                "{who}: wrote past the {ret_len}-byte return buffer (byte {})",
                ret_len + i
            ));
        }
    }
}

fn run_random(seed: u64, index: u64) -> (Sig, Outcome) {
    let mut src = SplitMix64::for_case(seed, index);
    let sig = Sig::generate(&mut src);
    let plan = sig.cif().map(|c| c.plan().to_string()).unwrap_or_default();
    set_note(&format!(
        "case {index} (JITFFI_DIFF_SEED={seed:#x} JITFFI_DIFF_INDEX={index}): {}\n{plan}",
        sig.text()
    ));
    let mut rng = Rng(src.next_u64());
    let outcome = run_sig(&sig, &mut rng);
    (sig, outcome)
}

fn run_sig(sig: &Sig, rng: &mut Rng) -> Outcome {
    let lcif = match LibffiCif::new_checked(&sig.ret, &sig.args, sig.fixed) {
        Ok(l) => l,
        Err(_) => return Outcome::Skipped,
    };
    let cif = match sig.cif() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(vec![format!("jitffi refused the signature: {e}")]),
    };
    let vals = Values::new(sig, rng);
    let before: Vec<Vec<u8>> = vals.bufs.iter().map(|b| b.bytes().to_vec()).collect();
    let ret_len = cif.ret_buffer_size();
    // libffi closures write an ffi_arg for narrow integers.
    let ffi_write = if is_narrow_int(&sig.ret) {
        widen(&sig.ret, &vals.ret_value)
    } else {
        vals.ret_value.clone()
    };
    let mut errs = Vec::new();

    // (a) a libffi closure as the callee.
    let mut rec = Box::new(Recorder {
        args: sig.args.clone(),
        received: Vec::new(),
        ret_write: ffi_write,
        calls: 0,
    });
    let callee = match LibffiClosure::new(&lcif, &mut *rec) {
        Ok(c) => c,
        Err(_) => return Outcome::Skipped,
    };
    let ffi_call_ok = libffi_call_known_wrong(&cif).is_none();
    if ffi_call_ok {
        let mut r = Buf::new(ret_len.max(16) + GUARD, POISON);
        rec.calls = 0;
        set_step("libffi→libffi");
        // SAFETY: the closure has the cif's signature; values and buffer
        // are sized from it.
        unsafe { libffi_call(&lcif, callee.code, r.ptr(), &vals.avalue) };
        let mut self_check = Vec::new();
        check_call("libffi→libffi", sig, &vals, &rec, &r, 0, &mut self_check);
        if !self_check.is_empty() {
            return Outcome::LibffiDeviates(self_check.join("; "));
        }
    }
    for form in ["jitffi call_raw→libffi", "jitffi packed→libffi"] {
        let mut r = Buf::new(ret_len + GUARD, POISON);
        rec.calls = 0;
        set_step(form);
        // SAFETY: as above; the packed buffer holds the arguments at the
        // cif's offsets.
        unsafe {
            if form.contains("raw") {
                cif.call_raw(callee.code, r.ptr(), vals.avalue.as_ptr());
            } else {
                let mut packed = vals.packed(&cif);
                native_ret::call_packed_into(
                    cif.plan(),
                    cif.packed_entry() as *const c_void,
                    callee.code,
                    r.ptr(),
                    packed.ptr(),
                );
            }
        }
        check_call(form, sig, &vals, &rec, &r, ret_len, &mut errs);
    }
    drop(callee);

    // (b) a jitffi closure as the callee. Narrow results are written at
    // their own width, as a jitffi handler may.
    let mut jrec = Box::new(Recorder {
        args: sig.args.clone(),
        received: Vec::new(),
        ret_write: if sig.ret.is_void() {
            Vec::new()
        } else {
            vals.ret_value[..sig.ret.size()].to_vec()
        },
        calls: 0,
    });
    let closure = match RawClosure::new(&cif, jitffi_handler, (&mut *jrec as *mut Recorder).cast())
    {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(vec![format!("RawClosure::new: {e}")]),
    };
    for form in ["libffi→jitffi closure", "jitffi→jitffi closure"] {
        if form.starts_with("libffi") && !ffi_call_ok {
            continue;
        }
        // libffi may store more than the type's size (a whole register).
        let room = if form.starts_with("libffi") {
            ret_len.max(16)
        } else {
            ret_len
        };
        let mut r = Buf::new(room + GUARD, POISON);
        jrec.calls = 0;
        set_step(form);
        // SAFETY: the closure has the cif's signature.
        unsafe {
            if form.starts_with("libffi") {
                libffi_call(&lcif, closure.code_ptr(), r.ptr(), &vals.avalue);
            } else {
                cif.call_raw(closure.code_ptr(), r.ptr(), vals.avalue.as_ptr());
            }
        }
        let limit = if form.starts_with("libffi") {
            0
        } else {
            ret_len
        };
        check_call(form, sig, &vals, &jrec, &r, limit, &mut errs);
    }
    drop(closure);

    for (i, b) in vals.bufs.iter().enumerate() {
        if b.bytes() != before[i] {
            errs.push(format!("argument {i}'s value changed"));
        }
    }
    if !errs.is_empty() {
        Outcome::Failed(errs)
    } else if ffi_call_ok {
        Outcome::Passed
    } else {
        Outcome::PassedWithoutFfiCall
    }
}

#[test]
fn random_signatures_agree_with_libffi_both_ways() {
    let seed = env_u64("JITFFI_DIFF_SEED").unwrap_or_else(fresh_seed);
    let count = env_u64("JITFFI_DIFF_COUNT").unwrap_or(2000);
    let indices: Vec<u64> = match env_u64("JITFFI_DIFF_INDEX") {
        Some(i) => vec![i],
        None => (0..count).collect(),
    };
    eprintln!(
        "aapcs64 differential: seed {seed:#x}, {} cases",
        indices.len()
    );
    on_fatal_signals(on_fatal_signal);
    let (mut passed, mut skipped, mut without_ffi_call) = (0, 0, 0);
    let mut deviations = Vec::new();
    let mut failures = Vec::new();
    for &index in &indices {
        let (sig, outcome) = run_random(seed, index);
        if indices.len() == 1 {
            eprintln!("case {index}: {}", sig.text());
            if let Ok(c) = sig.cif() {
                eprintln!("{}", c.plan());
            }
        }
        match outcome {
            Outcome::Passed => passed += 1,
            Outcome::PassedWithoutFfiCall => without_ffi_call += 1,
            Outcome::Skipped => skipped += 1,
            Outcome::LibffiDeviates(why) => {
                deviations.push(format!("{index}: {}: {why}", sig.text()))
            }
            Outcome::Failed(errs) => {
                let plan = sig.cif().map(|c| c.plan().to_string()).unwrap_or_default();
                failures.push(format!(
                    "case {index} (JITFFI_DIFF_SEED={seed:#x} JITFFI_DIFF_INDEX={index}): {}\n    {}\n{plan}",
                    sig.text(),
                    errs.join("\n    ")
                ))
            }
        }
    }
    eprintln!(
        "aapcs64 differential: {passed} passed, {without_ffi_call} passed without libffi's ffi_call (known libffi bug), {skipped} skipped (libffi refused), {} where libffi's own round trip fails, {} failed",
        deviations.len(),
        failures.len()
    );
    for d in deviations.iter().take(10) {
        eprintln!("libffi deviation: {d}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        indices.len(),
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    if indices.len() > 100 {
        assert!(
            (passed + without_ffi_call) * 10 >= indices.len() * 8,
            "only {passed} of {} cases compared",
            indices.len()
        );
    }
}

/// The random harness can fail: a callee whose cif disagrees with the
/// caller's is caught, as are results read from the wrong registers.
#[test]
fn the_random_harness_catches_mismatches() {
    // The caller passes an HFA of two doubles (d0, d1); the callee reads
    // {float, double} from x0:x1.
    let hfa = Type::structure([Type::f64(), Type::f64()]).unwrap();
    let mixed = Type::structure([Type::f32(), Type::f64()]).unwrap();
    let caller = Sig {
        ret: Type::i64(),
        args: vec![hfa],
        fixed: None,
    };
    let callee = Sig {
        ret: Type::i64(),
        args: vec![mixed],
        fixed: None,
    };
    let lcif = LibffiCif::new_checked(&callee.ret, &callee.args, None).unwrap();
    let cif = caller.cif().unwrap();
    let mut rng = Rng(7);
    let vals = Values::new(&caller, &mut rng);
    let mut rec = Box::new(Recorder {
        args: callee.args.clone(),
        received: Vec::new(),
        ret_write: vals.ret_value.clone(),
        calls: 0,
    });
    let c = LibffiClosure::new(&lcif, &mut *rec).unwrap();
    let mut r = Buf::new(16 + GUARD, POISON);
    // SAFETY: the closure reads two registers and a value of its own type;
    // the caller passes registers of the same sizes.
    unsafe { cif.call_raw(c.code, r.ptr(), vals.avalue.as_ptr()) };
    let mut errs = Vec::new();
    check_call("mismatch", &caller, &vals, &rec, &r, 8, &mut errs);
    assert!(errs.iter().any(|e| e.contains("argument 0")), "{errs:?}");
    assert!(
        matches!(cif.plan().ret.pass, RetPass::Direct(_)),
        "an int64 comes back in x0"
    );
}
