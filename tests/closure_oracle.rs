//! jitffi closures called by gcc: for every call shape of
//! `oracle/c/oracles.c`, a closure of that signature is called through the
//! shape's gcc-compiled caller `call_<name>(fn, rvalue, avalue)`. gcc is the
//! ground truth for how a caller passes the arguments and reads the result,
//! so the handler must receive exactly the bytes that were sent, and the
//! caller must get exactly what the handler wrote.
//!
//! Both closure kinds are covered: [`RawClosure`] with an `extern "C"`
//! handler reading `args[i]`, and [`Closure::new`] with a Rust closure
//! reading through [`Args`] (typed `get` where a Rust type names the
//! argument) and writing through [`Ret`]. Narrow integer results are written
//! both ways libffi allows: as an 8-byte `ffi_arg` and at their own size;
//! and every result once more as greedily as the handler contract allows,
//! by a handler that then scribbles over its arguments.
//! Variadic shapes get a closure made with [`Cif::new_variadic`], called by
//! gcc as a variadic function.
//!
//! Set `JITFFI_ORACLE_ONLY=<substring>` to run only matching cases.
//!
//! The oracles and their callers are plain C in the host's convention: this
//! runs on x86-64 and AArch64; the register-state probes are x86-64
//! assembly (AArch64 faults on a misaligned stack by itself).
#![cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), unix))]

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use jitffi::closure::{Args, Ret};
use jitffi::plan::RetPass;
use jitffi::{Cif, Closure, RawClosure, Type, TypeKind};
#[cfg(target_arch = "x86_64")]
use jitffi_oracle::discipline::{self, clobbered};
use jitffi_oracle::oracles;

#[path = "support/shapes.rs"]
mod shapes;
use shapes::*;

#[path = "support/oracle_table.rs"]
mod oracle_table;
use oracle_table::*;

// ------------------------------------------------------------ the handler

/// How the handler stores the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RetWrite {
    /// The return type's own size (and `Ret::set` in typed handlers).
    Exact,
    /// For narrow integers, an 8-byte `ffi_arg`, sign- or zero-extended.
    FfiArg,
    /// All the handler may write (the thunk's 16 bytes at least for a
    /// value returned in registers, the type's size for one returned in
    /// memory), the bytes past the value garbage. Then the handler scribbles
    /// over every argument (a callee owns its by-value arguments), which
    /// must disturb nothing the closure needs to return.
    Greedy,
}

const GREEDY_TAIL: u8 = 0xcc;
const SCRIBBLE: u8 = 0xeb;

/// Which closure API a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `RawClosure` with an `extern "C"` handler.
    Raw,
    /// `Closure::new` with a Rust closure using `Args` and `Ret`.
    Rust,
}

/// What one handler invocation saw.
#[derive(Default)]
struct Seen {
    calls: u32,
    args: Vec<Vec<u8>>,
    /// Problems noticed inside the handler (which must not panic: a panic
    /// there aborts the whole test binary).
    errs: Vec<String>,
}

/// Shared between a test and its closure's handler.
struct Probe {
    ret: Type,
    args: Vec<Type>,
    /// The value comes back in memory: rvalue is the caller's buffer.
    sret: bool,
    /// Bytes the handler may write at rvalue: the type's size for a value
    /// returned in memory, else the thunk's buffer of 16 bytes at least.
    room: usize,
    /// The address of the closure's `Cif` (`closure.cif()`), set once the
    /// closure exists.
    cif: AtomicUsize,
    /// The bytes to store at rvalue, and how.
    reply: Mutex<(Vec<u8>, RetWrite)>,
    seen: Mutex<Seen>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Probe {
    fn new(cif: &Cif) -> Probe {
        let sret = matches!(cif.plan().ret.pass, RetPass::Indirect { .. });
        let size = cif.ret().size();
        Probe {
            ret: cif.ret().clone(),
            args: cif.args().to_vec(),
            sret,
            room: if sret { size } else { size.max(16) },
            cif: AtomicUsize::new(0),
            reply: Mutex::new((Vec::new(), RetWrite::Exact)),
            seen: Mutex::new(Seen::default()),
        }
    }

    fn take(&self) -> Seen {
        std::mem::take(&mut *lock(&self.seen))
    }

    /// The checks every handler makes on entry: the stack alignment it was
    /// called with, the cif it got, the return buffer.
    fn enter(&self, seen: &mut Seen, cif: *const Cif, rvalue: *mut c_void) {
        seen.calls += 1;
        // Rust code keeps the stack as aligned as it found it: a handler
        // entered misaligned calls the probe misaligned. (AArch64 checks sp
        // alignment in hardware: a misaligned handler faults instead.)
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: the probe touches nothing but its thread-local state.
            unsafe { discipline::jitffi_probe_align() };
            let align = discipline::state().align;
            if align != 0 {
                seen.errs.push(format!(
                    "the handler was entered with rsp {align} mod 16 off"
                ));
            }
        }
        let want = self.cif.load(Ordering::Acquire);
        if cif as usize != want {
            seen.errs.push(format!(
                "the handler got cif {cif:p}, the closure's cif is at {want:#x}"
            ));
        } else {
            // SAFETY: it is the closure's own cif, alive while it is.
            let c = unsafe { &*cif };
            if c.ret() != &self.ret || c.args() != self.args.as_slice() {
                seen.errs
                    .push(format!("the handler's cif is {}({:?})", c.ret(), c.args()));
            }
        }
        if !self.ret.is_void() {
            if rvalue.is_null() {
                seen.errs.push("rvalue is null".into());
            } else {
                let align = if self.sret { self.ret.align() } else { 16 };
                if rvalue as usize % align != 0 {
                    seen.errs.push(format!(
                        "rvalue {rvalue:p} is not {align}-aligned (sret: {})",
                        self.sret
                    ));
                }
            }
        }
    }

    /// Records argument `i` from the pointer the closure handed over.
    fn record(&self, seen: &mut Seen, i: usize, p: *const c_void) -> Option<Vec<u8>> {
        let t = &self.args[i];
        if p.is_null() {
            seen.errs.push(format!("args[{i}] is null"));
            return None;
        }
        // C handlers dereference `(T *)args[i]`: the value must be aligned.
        if p as usize % t.align().min(16) != 0 {
            seen.errs.push(format!(
                "args[{i}] = {p:p} is not aligned for a {t} ({})",
                t.align()
            ));
        }
        // SAFETY: the closure passes a pointer to a value of type `t`, valid
        // for the call (null was rejected above).
        let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), t.size()) };
        let m = masked(bytes, &mask(t));
        seen.args.push(m.clone());
        Some(m)
    }

    /// Stores the reply at `rvalue`.
    fn reply_raw(&self, rvalue: *mut c_void) {
        let reply = lock(&self.reply);
        if self.ret.is_void() || rvalue.is_null() {
            return;
        }
        // SAFETY: rvalue holds `room` bytes (the handler contract); the
        // reply is at most that long.
        unsafe {
            std::ptr::copy_nonoverlapping(
                reply.0.as_ptr(),
                rvalue.cast(),
                reply.0.len().min(self.room),
            )
        };
    }
}

/// The `extern "C"` handler of the raw closures; `ud` is a `*const Probe`.
unsafe extern "C" fn raw_handler(
    cif: *const c_void,
    rvalue: *mut c_void,
    args: *const *mut c_void,
    ud: *mut c_void,
) {
    // SAFETY: every raw closure here gets a Probe that outlives it.
    let probe = unsafe { &*ud.cast_const().cast::<Probe>() };
    let mut seen = lock(&probe.seen);
    probe.enter(&mut seen, cif.cast(), rvalue);
    for i in 0..probe.args.len() {
        // SAFETY: the closure passes one pointer per argument.
        let p = unsafe { *args.add(i) };
        probe.record(&mut seen, i, p);
    }
    drop(seen);
    if lock(&probe.reply).1 == RetWrite::Greedy {
        for (i, t) in probe.args.iter().enumerate() {
            // SAFETY: args[i] points at the handler's own copy of a `t`.
            unsafe { std::ptr::write_bytes((*args.add(i)).cast::<u8>(), SCRIBBLE, t.size()) };
        }
    }
    probe.reply_raw(rvalue);
}

/// Argument `i` read with `Args::get` when a Rust type names it.
fn typed_get(t: &Type, a: &Args<'_>, i: usize) -> Option<Vec<u8>> {
    Some(match t.kind() {
        TypeKind::I8 => a.get::<i8>(i).to_le_bytes().to_vec(),
        TypeKind::U8 => a.get::<u8>(i).to_le_bytes().to_vec(),
        TypeKind::I16 => a.get::<i16>(i).to_le_bytes().to_vec(),
        TypeKind::U16 => a.get::<u16>(i).to_le_bytes().to_vec(),
        TypeKind::I32 => a.get::<i32>(i).to_le_bytes().to_vec(),
        TypeKind::U32 => a.get::<u32>(i).to_le_bytes().to_vec(),
        TypeKind::I64 => a.get::<i64>(i).to_le_bytes().to_vec(),
        TypeKind::U64 => a.get::<u64>(i).to_le_bytes().to_vec(),
        TypeKind::I128 => a.get::<i128>(i).to_le_bytes().to_vec(),
        TypeKind::U128 => a.get::<u128>(i).to_le_bytes().to_vec(),
        TypeKind::F32 => a.get::<f32>(i).to_bits().to_le_bytes().to_vec(),
        TypeKind::F64 => a.get::<f64>(i).to_bits().to_le_bytes().to_vec(),
        TypeKind::Pointer => (a.get::<*const c_void>(i) as usize).to_le_bytes().to_vec(),
        _ => return None,
    })
}

/// Stores `bytes` with `Ret::set` when a Rust type names the return type.
fn typed_set(t: &Type, r: &mut Ret<'_>, b: &[u8]) -> bool {
    fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
        b[..N].try_into().expect("long enough")
    }
    match t.kind() {
        TypeKind::Void => r.set(()),
        TypeKind::I8 => r.set(i8::from_le_bytes(arr(b))),
        TypeKind::U8 => r.set(u8::from_le_bytes(arr(b))),
        TypeKind::I16 => r.set(i16::from_le_bytes(arr(b))),
        TypeKind::U16 => r.set(u16::from_le_bytes(arr(b))),
        TypeKind::I32 => r.set(i32::from_le_bytes(arr(b))),
        TypeKind::U32 => r.set(u32::from_le_bytes(arr(b))),
        TypeKind::I64 => r.set(i64::from_le_bytes(arr(b))),
        TypeKind::U64 => r.set(u64::from_le_bytes(arr(b))),
        TypeKind::I128 => r.set(i128::from_le_bytes(arr(b))),
        TypeKind::U128 => r.set(u128::from_le_bytes(arr(b))),
        TypeKind::F32 => r.set(f32::from_bits(u32::from_le_bytes(arr(b)))),
        TypeKind::F64 => r.set(f64::from_bits(u64::from_le_bytes(arr(b)))),
        TypeKind::Pointer => r.set(usize::from_le_bytes(arr(b)) as *const c_void),
        _ => return false,
    }
    true
}

/// The body of the `Closure::new` closures.
fn rust_handler(probe: &Probe, a: &Args<'_>, r: &mut Ret<'_>) {
    let mut seen = lock(&probe.seen);
    probe.enter(&mut seen, a.cif(), r.ptr());
    if a.len() != probe.args.len() || a.is_empty() != probe.args.is_empty() {
        seen.errs.push(format!(
            "Args::len() is {}, the signature has {} arguments",
            a.len(),
            probe.args.len()
        ));
        return;
    }
    for i in 0..a.len() {
        let Some(raw) = probe.record(&mut seen, i, a.ptr(i)) else {
            continue;
        };
        if let Some(typed) = typed_get(&probe.args[i], a, i) {
            if typed != raw {
                seen.errs.push(format!(
                    "Args::get({i}) gave {}, Args::ptr({i}) points at {}",
                    hex(&typed),
                    hex(&raw)
                ));
            }
        }
    }
    drop(seen);
    let reply = lock(&probe.reply);
    if reply.1 == RetWrite::Greedy {
        for (i, t) in probe.args.iter().enumerate() {
            // SAFETY: Args::ptr(i) points at the handler's own copy of a `t`.
            unsafe { std::ptr::write_bytes(a.ptr(i).cast::<u8>(), SCRIBBLE, t.size()) };
        }
    }
    if reply.1 == RetWrite::Exact && typed_set(&probe.ret, r, &reply.0) {
        return;
    }
    drop(reply);
    probe.reply_raw(r.ptr());
}

/// A closure of either kind, with the probe its handler reports to.
enum Made {
    Raw(RawClosure),
    Rust(Closure),
}

impl Made {
    fn code_ptr(&self) -> *const c_void {
        match self {
            Made::Raw(c) => c.code_ptr(),
            Made::Rust(c) => c.code_ptr(),
        }
    }
    fn cif(&self) -> &Cif {
        match self {
            Made::Raw(c) => c.cif(),
            Made::Rust(c) => c.cif(),
        }
    }
}

fn make_closure(cif: &Cif, kind: Kind, probe: &Arc<Probe>) -> Result<Made, String> {
    let made = match kind {
        Kind::Raw => RawClosure::new(cif, raw_handler, Arc::as_ptr(probe).cast_mut().cast())
            .map(Made::Raw)
            .map_err(|e| format!("RawClosure::new failed: {e}"))?,
        Kind::Rust => {
            let p = Arc::clone(probe);
            Closure::new(cif, move |a, r| rust_handler(&p, a, r))
                .map(Made::Rust)
                .map_err(|e| format!("Closure::new failed: {e}"))?
        }
    };
    probe
        .cif
        .store(made.cif() as *const Cif as usize, Ordering::Release);
    if made.cif().ret() != cif.ret() || made.cif().args() != cif.args() {
        return Err(format!(
            "closure.cif() is {}({:?})",
            made.cif().ret(),
            made.cif().args()
        ));
    }
    Ok(made)
}

// ------------------------------------------------------------ the checks

const GUARD: usize = 32;
const RET_POISON: u8 = 0xa5;

/// Seeds of the values each closure is called with (one closure, several
/// calls).
const SEEDS: [u64; 3] = [1, 2, 3];

/// The bytes a handler writes for `seed`, and the bytes gcc's caller must
/// then store (its libffi-form buffer, masked).
fn reply_for(case: &Case, seed: u64, write: RetWrite) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::for_case(case.name, seed ^ 0x5eed_f00d);
    let v = value(&case.ret, &mut rng);
    if case.ret.is_void() {
        return (v, Vec::new());
    }
    let narrow = is_narrow_int(&case.ret);
    let want = if narrow {
        widen(&case.ret, &v)
    } else {
        masked(&v, &mask(&case.ret))
    };
    let written = match write {
        RetWrite::FfiArg if narrow => widen(&case.ret, &v),
        _ => v,
    };
    (written, want)
}

/// Calls `closure` (made for `probe`'s signature) with gcc's caller of
/// `case`, once per seed; returns every disagreement.
fn call_and_check(
    case: &Case,
    closure: &Made,
    probe: &Probe,
    write: RetWrite,
    seed: u64,
) -> Vec<String> {
    let mut errs = Vec::new();
    let args = make_args(case, seed);
    let (mut reply, want) = reply_for(case, seed, write);
    if write == RetWrite::Greedy && !case.ret.is_void() {
        reply.resize(probe.room, GREEDY_TAIL);
    }
    *lock(&probe.reply) = (reply, write);
    let ret_len = case.ret.size().max(8);
    let mut ret = Buf::new(ret_len + GUARD, RET_POISON);
    probe.take();
    #[cfg(target_arch = "x86_64")]
    discipline::reset();
    // SAFETY: the closure has the signature `call` calls with (variadic
    // after the first parameter where the case is); `avalue` points at
    // values of the argument types; the return buffer is large and aligned.
    unsafe { (case.call)(closure.code_ptr(), ret.ptr(), args.avalue.as_ptr()) };
    let seen = probe.take();
    errs.extend(seen.errs);
    if seen.calls != 1 {
        errs.push(format!(
            "the handler ran {} times, expected once",
            seen.calls
        ));
    }
    if seen.args.len() == args.sent.len() {
        for (i, (s, r)) in args.sent.iter().zip(&seen.args).enumerate() {
            if s != r {
                errs.push(format!(
                    "argument {i} ({}) received {} but gcc sent {}",
                    case.args[i],
                    hex(r),
                    hex(s)
                ));
            }
        }
    } else if seen.calls == 1 {
        errs.push(format!(
            "the handler recorded {} of {} arguments",
            seen.args.len(),
            args.sent.len()
        ));
    }
    if !case.ret.is_void() {
        let rmask = ret_mask(&case.ret);
        let got = masked(&ret.bytes()[..rmask.len()], &rmask);
        if got != want {
            errs.push(format!(
                "gcc's caller got {} but the handler returned {} ({write:?} write of a {})",
                hex(&got),
                hex(&want),
                case.ret
            ));
        }
    }
    if let Some(i) = ret.bytes()[ret_len..].iter().position(|&b| b != RET_POISON) {
        errs.push(format!(
            "wrote past the return buffer (byte {})",
            ret_len + i
        ));
    }
    errs
}

/// One case, one closure kind, one way of writing the result: a closure
/// made once, called with every seed.
fn run_case(case: &Case, kind: Kind, write: RetWrite) -> Vec<String> {
    let cif = match cif_for(case) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let probe = Arc::new(Probe::new(&cif));
    let closure = match make_closure(&cif, kind, &probe) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    for seed in SEEDS {
        let errs = call_and_check(case, &closure, &probe, write, seed);
        if !errs.is_empty() {
            return errs
                .into_iter()
                .map(|e| format!("seed {seed}: {e}"))
                .collect();
        }
    }
    Vec::new()
}

fn run_all(kind: Kind) {
    let cases = selected();
    let mut failures = Vec::new();
    let mut runs = 0;
    for case in &cases {
        let writes: &[RetWrite] = if is_narrow_int(&case.ret) {
            &[RetWrite::Exact, RetWrite::FfiArg, RetWrite::Greedy]
        } else {
            &[RetWrite::Exact, RetWrite::Greedy]
        };
        for &write in writes {
            runs += 1;
            let errs = run_case(case, kind, write);
            if !errs.is_empty() {
                failures.push(format!(
                    "{} [{kind:?}, {write:?}] {}:\n    {}",
                    case.name,
                    signature(case),
                    errs.join("\n    ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} closure runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------------------------ tests

#[test]
fn the_table_covers_every_c_case() {
    assert!(assert_matches_c() >= 60);
}

/// The harness without jitffi: each `call_<name>` pointed at the oracle
/// itself delivers exactly what the table sends and returns what the
/// direct caller returns. This checks the C callers and the Rust table.
#[test]
fn gcc_callers_deliver_what_the_table_sends() {
    let mut failures = Vec::new();
    for case in &selected() {
        let args = make_args(case, 1);
        let len = case.ret.size().max(8) + GUARD;
        let (mut via_direct, mut via_call) = (Buf::new(len, 0), Buf::new(len, 0));
        oracles::reset();
        // SAFETY: `direct` calls the oracle with values of its argument
        // types read from avalue; the buffer is large and aligned.
        unsafe { (case.direct)(via_direct.ptr(), args.avalue.as_ptr()) };
        let want = oracles::record();
        oracles::reset();
        // SAFETY: as above, with the oracle as `call`'s callee (variadic
        // oracles are the variadic functions `call` expects).
        unsafe { (case.call)(case.func, via_call.ptr(), args.avalue.as_ptr()) };
        let got = oracles::record();
        if got.calls != 1 || got.count != case.args.len() as i32 {
            failures.push(format!(
                "{}: {} arguments recorded in {} calls",
                case.name, got.count, got.calls
            ));
            continue;
        }
        if got != want {
            failures.push(format!(
                "{}: call_ delivered {got:?}, direct_ {want:?}",
                case.name
            ));
        }
        for (i, (s, r)) in args.sent.iter().zip(&got.args).enumerate() {
            if s != r {
                failures.push(format!(
                    "{}: argument {i} ({}) sent {} received {}",
                    case.name,
                    case.args[i],
                    hex(s),
                    hex(r)
                ));
            }
        }
        let rmask = ret_mask(&case.ret);
        let a = masked(&via_direct.bytes()[..rmask.len()], &rmask);
        let b = masked(&via_call.bytes()[..rmask.len()], &rmask);
        if a != b {
            failures.push(format!(
                "{}: call_ returned {}, direct_ {}",
                case.name,
                hex(&b),
                hex(&a)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_case_through_a_raw_closure() {
    run_all(Kind::Raw);
}

#[test]
fn every_case_through_a_rust_closure() {
    run_all(Kind::Rust);
}

/// gcc's caller, the closure thunk and the handler together keep rbx, rbp,
/// r12-r15, rsp, MXCSR, the x87 control word and stack depth, and do not
/// write into the frame above.
#[cfg(target_arch = "x86_64")]
#[test]
fn closures_keep_callee_saved_state() {
    let mut failures = Vec::new();
    for case in &selected() {
        let cif = match cif_for(case) {
            Ok(c) => c,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let probe = Arc::new(Probe::new(&cif));
        let closure = match make_closure(&cif, Kind::Raw, &probe) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{}: {e}", case.name));
                continue;
            }
        };
        let args = make_args(case, 7);
        *lock(&probe.reply) = (reply_for(case, 7, RetWrite::Exact).0, RetWrite::Exact);
        let mut ret = Buf::new(case.ret.size().max(8) + GUARD, 0);
        probe.take();
        discipline::reset();
        // SAFETY: `call` has the RawStub signature; it calls the closure as
        // in `call_and_check`.
        let m = unsafe {
            discipline::call_checked(
                case.call,
                closure.code_ptr(),
                ret.ptr(),
                args.avalue.as_ptr(),
            )
        };
        let seen = probe.take();
        if m != 0 {
            failures.push(format!(
                "{}: {} not preserved",
                case.name,
                clobbered::describe(m)
            ));
        }
        if seen.calls != 1 || !seen.errs.is_empty() {
            failures.push(format!(
                "{}: handler ran {} times: {:?}",
                case.name, seen.calls, seen.errs
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The harness can fail: a closure whose cif disagrees with its caller is
/// caught, on the way in and on the way back.
#[test]
fn mismatched_closures_are_caught() {
    // x86-64: gcc passes {double, int} in xmm0 + rdi; a closure for
    // {int64, double} reads rdi + xmm0. AArch64: gcc passes {float, int} in
    // x0; a closure for {float, float} reads s0 + s1.
    #[cfg(target_arch = "x86_64")]
    let (mut c, told) = (
        fixed("or_s_di", s_di(), [s_di(), s_di()]),
        vec![s_qd(), s_qd()],
    );
    #[cfg(target_arch = "aarch64")]
    let (mut c, told) = (fixed("or_s_fi", s_fi(), [s_fi()]), vec![s_ff()]);
    c.args = told;
    let errs = run_case(&c, Kind::Raw, RetWrite::Exact);
    assert!(
        errs.iter()
            .any(|e| e.contains("argument 0 (") && e.contains("received")),
        "{errs:?}"
    );
    // An int64 return read by gcc from rax / x0, a closure returning a
    // double in xmm0 / d0.
    let mut c = fixed("or_i64", i64(), [i64(), i64()]);
    c.ret = f64();
    let errs = run_case(&c, Kind::Rust, RetWrite::Exact);
    assert!(
        errs.iter().any(|e| e.contains("gcc's caller got")),
        "{errs:?}"
    );
}

/// One closure per shape, all alive at once, each called twice interleaved
/// with the others: every code pointer reaches its own handler.
#[test]
fn many_closures_alive_reach_their_own_handlers() {
    let cases = selected();
    let mut live = Vec::new();
    for case in &cases {
        let cif = cif_for(case).expect("cif");
        let probe = Arc::new(Probe::new(&cif));
        let closure =
            make_closure(&cif, Kind::Rust, &probe).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        live.push((case, closure, probe));
    }
    let mut failures = Vec::new();
    for round in 0..2 {
        for (case, closure, probe) in &live {
            let errs = call_and_check(case, closure, probe, RetWrite::Exact, 10 + round);
            if !errs.is_empty() {
                failures.push(format!("{} round {round}: {}", case.name, errs.join("; ")));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
