//! The closure probe shared by the closure oracle tests
//! (`tests/closure_oracle.rs`, `tests/aapcs64_oracle.rs`): a handler, raw
//! or typed, that records what a closure hands it (the cif, the rvalue
//! buffer, every argument's bytes and alignment, the stack alignment it
//! was entered with) and replies with chosen bytes written the chosen way.
//! A test file includes it next to `shapes.rs` (`SCRIBBLE`, `is_narrow_int`
//! ...) as `#[path = "support/closure_probe.rs"] mod closure_probe;`.

#![allow(dead_code)]

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use jitffi::closure::{Args, Ret};
use jitffi::plan::RetPass;
use jitffi::{Cif, Closure, RawClosure, Type, TypeKind};
use jitffi_oracle::discipline;

use super::shapes::*;

/// How the handler stores the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetWrite {
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

pub const GREEDY_TAIL: u8 = 0xcc;
const SCRIBBLE: u8 = 0xeb;

/// Which closure API a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `RawClosure` with an `extern "C"` handler.
    Raw,
    /// `Closure::new` with a Rust closure using `Args` and `Ret`.
    Rust,
}

/// What one handler invocation saw.
#[derive(Default)]
pub struct Seen {
    pub calls: u32,
    pub args: Vec<Vec<u8>>,
    /// Problems noticed inside the handler (which must not panic: a panic
    /// there aborts the whole test binary).
    pub errs: Vec<String>,
}

/// Shared between a test and its closure's handler.
pub struct Probe {
    pub ret: Type,
    pub args: Vec<Type>,
    /// The value comes back in memory: rvalue is the caller's buffer.
    pub sret: bool,
    /// Bytes the handler may write at rvalue: the type's size for a value
    /// returned in memory, else the thunk's buffer of 16 bytes at least.
    pub room: usize,
    /// The address of the closure's `Cif` (`closure.cif()`), set once the
    /// closure exists.
    pub cif: AtomicUsize,
    /// The bytes to store at rvalue, and how.
    pub reply: Mutex<(Vec<u8>, RetWrite)>,
    pub seen: Mutex<Seen>,
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Probe {
    pub fn new(cif: &Cif) -> Probe {
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

    pub fn take(&self) -> Seen {
        std::mem::take(&mut *lock(&self.seen))
    }

    /// The checks every handler makes on entry: the stack alignment it was
    /// called with, the cif it got, the return buffer.
    pub fn enter(&self, seen: &mut Seen, cif: *const Cif, rvalue: *mut c_void) {
        seen.calls += 1;
        // Rust code keeps the stack as aligned as it found it: a handler
        // entered misaligned calls the probe misaligned.
        // SAFETY: the probe touches nothing but its thread-local state.
        unsafe { discipline::jitffi_probe_align() };
        let align = discipline::state().align;
        if align != 0 {
            seen.errs.push(format!(
                "the handler was entered with the stack pointer {align} mod 16 off"
            ));
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
    pub fn record(&self, seen: &mut Seen, i: usize, p: *const c_void) -> Option<Vec<u8>> {
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
    pub fn reply_raw(&self, rvalue: *mut c_void) {
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
pub unsafe extern "C" fn raw_handler(
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
pub fn typed_get(t: &Type, a: &Args<'_>, i: usize) -> Option<Vec<u8>> {
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
pub fn typed_set(t: &Type, r: &mut Ret<'_>, b: &[u8]) -> bool {
    pub fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
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
pub fn rust_handler(probe: &Probe, a: &Args<'_>, r: &mut Ret<'_>) {
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
pub enum Made {
    Raw(RawClosure),
    Rust(Closure),
}

impl Made {
    pub fn code_ptr(&self) -> *const c_void {
        match self {
            Made::Raw(c) => c.code_ptr(),
            Made::Rust(c) => c.code_ptr(),
        }
    }
    pub fn cif(&self) -> &Cif {
        match self {
            Made::Raw(c) => c.cif(),
            Made::Rust(c) => c.cif(),
        }
    }
}

pub fn make_closure(cif: &Cif, kind: Kind, probe: &Arc<Probe>) -> Result<Made, String> {
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
