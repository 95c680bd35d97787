//! The closure side the closure differential tests share
//! (`closure_differential.rs` for SysV, `win64_differential.rs` for the
//! Microsoft x64 conventions): a handler that records every argument's
//! bytes and writes a chosen return value, the closures it stands behind
//! (jitffi `RawClosure`, `Closure::new`, libffi closure), and what the
//! handler is promised of its return buffer.
//!
//! Included by path (`#[path = "support/closure_diff.rs"] mod closure_diff;`)
//! next to `support/shapes.rs` and `support/ffi_convert.rs`, which the
//! including crate names `shapes` and `ffi_convert`.

#![allow(dead_code)]

use std::ffi::c_void;
use std::ptr;

use jitffi::plan::RetPass;
use jitffi::{Cif, Closure, RawClosure, Type};
use libffi::raw::{self as ffi, ffi_cif, ffi_closure};

use super::ffi_convert::LibffiCif;
use super::shapes::{self, hex, is_narrow_int, ret_mask};

/// The return buffer a handler is promised.
#[derive(Clone, Copy, Debug, Default)]
pub struct RvalueRule {
    /// Bytes the handler may write.
    pub room: usize,
    /// Alignment of `rvalue`.
    pub align: usize,
    /// `rvalue` must be the caller's buffer when the caller passed one.
    pub callers: bool,
}

impl RvalueRule {
    /// jitffi's (`RawHandler`'s docs): the caller's buffer, exactly the
    /// type's size and aligned for it, for a value returned in memory;
    /// otherwise the thunk's own, 16-aligned, at least 16 bytes and the
    /// type's size.
    pub fn jitffi(cif: &Cif) -> RvalueRule {
        let ret = cif.ret();
        if ret.is_void() {
            RvalueRule::default()
        } else if matches!(cif.plan().ret.pass, RetPass::Indirect { .. }) {
            RvalueRule {
                room: ret.size(),
                align: ret.align(),
                callers: true,
            }
        } else {
            RvalueRule {
                room: ret.size().max(16),
                align: 16,
                callers: false,
            }
        }
    }

    /// libffi's: `max(sizeof(ffi_arg), size)` bytes aligned for the type;
    /// but with `in_memory` (libffi's Microsoft x64 port, for a value
    /// returned through a hidden pointer) it is written straight to the
    /// caller's buffer, which a C caller makes exactly the type's size.
    pub fn libffi(ret: &Type, in_memory: bool) -> RvalueRule {
        if ret.is_void() {
            RvalueRule::default()
        } else if in_memory {
            RvalueRule {
                room: ret.size(),
                align: ret.align(),
                callers: false,
            }
        } else {
            RvalueRule {
                room: ret.size().max(8),
                align: ret.align(),
                callers: false,
            }
        }
    }
}

/// What a closure's handler does and saw.
pub struct Probe {
    /// The closure's argument sizes, as the handler reads them.
    pub sizes: Vec<usize>,
    /// Read the 4 bytes at each narrow integer's pointer (libffi closures
    /// point into the argument's 8-byte register or stack slot).
    pub read_slots: bool,
    /// After recording, overwrite every argument with [`SCRIBBLE`], as a C
    /// callee may write to its parameters.
    pub scribble: bool,
    pub narrow: Vec<bool>,
    pub rule: RvalueRule,
    /// Exactly what the handler writes at `rvalue` (after filling
    /// `rule.room` bytes with garbage).
    pub ret_write: Vec<u8>,
    pub calls: u32,
    pub received: Vec<Vec<u8>>,
    pub slots: Vec<[u8; 4]>,
    pub addrs: Vec<usize>,
    pub rvalue: usize,
    pub cif: usize,
    pub user_data: usize,
    /// The return buffer the caller passed (for the checks).
    pub caller_rvalue: usize,
    /// What `Args::len` reported (Rust handlers).
    pub len_seen: Option<usize>,
    pub stack_misaligned: bool,
}

pub const RET_GARBAGE: u8 = 0xa5;
/// What the handler leaves in every argument it was given.
pub const SCRIBBLE: u8 = 0xee;

impl Probe {
    pub fn new(
        ret: &Type,
        args: &[Type],
        ret_value: &[u8],
        widen: bool,
        rule: RvalueRule,
        read_slots: bool,
        scribble: bool,
    ) -> Box<Probe> {
        let ret_write = if widen && is_narrow_int(ret) {
            shapes::widen(ret, ret_value)
        } else {
            ret_value.to_vec()
        };
        Box::new(Probe {
            sizes: args.iter().map(Type::size).collect(),
            read_slots,
            scribble,
            narrow: args.iter().map(is_narrow_int).collect(),
            rule,
            ret_write,
            calls: 0,
            received: vec![Vec::new(); args.len()],
            slots: vec![[0; 4]; args.len()],
            addrs: vec![0; args.len()],
            rvalue: 0,
            cif: 0,
            user_data: 0,
            caller_rvalue: 0,
            len_seen: None,
            stack_misaligned: false,
        })
    }

    pub fn arm(&mut self) {
        self.calls = 0;
        self.received.iter_mut().for_each(Vec::clear);
        self.slots.fill([0xee; 4]);
        self.addrs.fill(0);
        self.rvalue = 0;
        self.cif = 0;
        self.user_data = 0;
        self.caller_rvalue = 0;
        self.len_seen = None;
        self.stack_misaligned = false;
    }
}

#[repr(C, align(16))]
pub struct Aligned16([u8; 16]);

/// The body of every handler.
///
/// # Safety
/// `arg(i)` must be readable for `p.sizes[i]` bytes (4 for a narrow
/// integer when `p.read_slots`) and writable for them when `p.scribble`,
/// and `rvalue` writable for `p.rule.room` bytes.
#[inline(never)]
pub unsafe fn observe(
    p: &mut Probe,
    cif: usize,
    rvalue: *mut c_void,
    user_data: usize,
    len_seen: Option<usize>,
    arg: impl Fn(usize) -> *mut c_void,
) {
    // A frame entered with a misaligned stack places this 16-aligned local
    // off by 8 (the compiler assumes the ABI's alignment and never checks).
    // Left uninitialised: storing to it could itself fault when misaligned.
    let local = std::mem::MaybeUninit::<Aligned16>::uninit();
    p.stack_misaligned |= std::hint::black_box(local.as_ptr()) as usize % 16 != 0;
    p.calls += 1;
    p.cif = cif;
    p.user_data = user_data;
    p.len_seen = len_seen;
    p.rvalue = rvalue as usize;
    for i in 0..p.sizes.len() {
        let a = arg(i);
        p.addrs[i] = a as usize;
        // SAFETY: per the contract, `a` is readable for the argument's size
        // (and its slot's 4 bytes when asked).
        unsafe {
            let bytes = std::slice::from_raw_parts(a.cast::<u8>(), p.sizes[i]);
            p.received[i].clear();
            p.received[i].extend_from_slice(bytes);
            if p.read_slots && p.narrow[i] {
                ptr::copy_nonoverlapping(a.cast::<u8>(), p.slots[i].as_mut_ptr(), 4);
            }
        }
    }
    // A C callee owns its parameters and may overwrite them; a caller's
    // values must not change when it does.
    for i in (0..p.sizes.len()).filter(|_| p.scribble) {
        // SAFETY: per the contract, each argument is writable for its size
        // when scribbling.
        unsafe { ptr::write_bytes(arg(i).cast::<u8>(), SCRIBBLE, p.sizes[i]) };
    }
    // SAFETY: per the contract, `rvalue` holds `room >= ret_write.len()`
    // writable bytes.
    unsafe {
        ptr::write_bytes(rvalue.cast::<u8>(), RET_GARBAGE, p.rule.room);
        ptr::copy_nonoverlapping(p.ret_write.as_ptr(), rvalue.cast(), p.ret_write.len());
    }
}

/// The handler of jitffi `RawClosure`s.
pub unsafe extern "C" fn raw_handler(
    cif: *const c_void,
    rvalue: *mut c_void,
    args: *const *mut c_void,
    user_data: *mut c_void,
) {
    // SAFETY: `user_data` is this closure's Probe, used by no one else
    // during the call; the thunk passes one valid pointer per argument and
    // a return buffer as `RawHandler` documents (the Probe's rule).
    unsafe {
        observe(
            &mut *user_data.cast::<Probe>(),
            cif as usize,
            rvalue,
            user_data as usize,
            None,
            |i| *args.add(i),
        )
    }
}

/// The handler of libffi closures.
pub unsafe extern "C" fn libffi_handler(
    cif: *mut ffi_cif,
    rvalue: *mut c_void,
    args: *mut *mut c_void,
    user_data: *mut c_void,
) {
    // SAFETY: libffi's contract is `RawHandler`'s, with its own pointer
    // types; a narrow integer's pointer is into its 8-byte slot.
    unsafe {
        raw_handler(
            cif.cast_const().cast(),
            rvalue,
            args.cast_const(),
            user_data,
        )
    }
}

/// A Probe for a Rust closure handler.
#[derive(Clone, Copy)]
pub struct ProbeRef(pub *mut Probe);

// SAFETY: the closure is only called from the thread running the case,
// while the Probe is alive.
unsafe impl Send for ProbeRef {}
// SAFETY: as above.
unsafe impl Sync for ProbeRef {}

impl ProbeRef {
    pub fn get(self) -> *mut Probe {
        self.0
    }
}

/// The closure under test.
pub enum Subject {
    Raw(RawClosure),
    Rust(Closure),
    Libffi {
        closure: *mut ffi_closure,
        code: *mut c_void,
        cif: Box<LibffiCif>,
    },
}

impl Subject {
    pub fn raw(cif: &Cif, probe: &mut Probe) -> jitffi::Result<Subject> {
        RawClosure::new(cif, raw_handler, (probe as *mut Probe).cast()).map(Subject::Raw)
    }

    pub fn rust(cif: &Cif, probe: &mut Probe) -> jitffi::Result<Subject> {
        let p = ProbeRef(probe);
        Closure::new(cif, move |args, ret| {
            let probe = p.get();
            // SAFETY: `Args::ptr` gives valid argument pointers and
            // `Ret::ptr` the buffer `RawHandler` documents; the Probe
            // outlives the closure.
            unsafe {
                observe(
                    &mut *probe,
                    args.cif() as *const Cif as usize,
                    ret.ptr(),
                    probe as usize,
                    Some(args.len()),
                    |i| args.ptr(i),
                )
            }
        })
        .map(Subject::Rust)
    }

    pub fn libffi(lcif: LibffiCif, probe: &mut Probe) -> Result<Subject, String> {
        let lcif = Box::new(lcif);
        let raw_cif = lcif.raw();
        let mut code = ptr::null_mut();
        // SAFETY: allocating a closure; checked below.
        let closure =
            unsafe { ffi::ffi_closure_alloc(std::mem::size_of::<ffi_closure>(), &mut code) }
                .cast::<ffi_closure>();
        if closure.is_null() {
            return Err("ffi_closure_alloc failed".into());
        }
        // SAFETY: the cif (boxed, owned by the subject) and the Probe
        // outlive the closure.
        let status = unsafe {
            ffi::ffi_prep_closure_loc(
                closure,
                raw_cif,
                Some(libffi_handler),
                (probe as *mut Probe).cast(),
                code,
            )
        };
        // Built first, so that a failure still frees the closure.
        let subject = Subject::Libffi {
            closure,
            code,
            cif: lcif,
        };
        if status != ffi::ffi_status_FFI_OK {
            return Err(format!("ffi_prep_closure_loc failed (status {status})"));
        }
        Ok(subject)
    }

    pub fn code(&self) -> *const c_void {
        match self {
            Subject::Raw(c) => c.code_ptr(),
            Subject::Rust(c) => c.code_ptr(),
            Subject::Libffi { code, .. } => *code,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Subject::Raw(_) => "jitffi RawClosure",
            Subject::Rust(_) => "jitffi Closure::new",
            Subject::Libffi { .. } => "libffi closure",
        }
    }

    /// What the handler must see as its cif and user data.
    pub fn expected(&self, probe: &Probe) -> (usize, Option<usize>) {
        let probe = probe as *const Probe as usize;
        match self {
            Subject::Raw(c) => (c.cif() as *const Cif as usize, Some(probe)),
            Subject::Rust(c) => (c.cif() as *const Cif as usize, None),
            Subject::Libffi { cif, .. } => (cif.raw() as usize, Some(probe)),
        }
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        if let Subject::Libffi { closure, .. } = self {
            // SAFETY: allocated by ffi_closure_alloc, freed once.
            unsafe { ffi::ffi_closure_free(closure.cast()) };
        }
    }
}

/// Digits of `v` in `radix` (10 or 16), without allocating (for fault
/// notes printed from a signal handler).
pub fn digits(mut v: u64, radix: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b"0123456789abcdef"[(v % radix) as usize];
        v /= radix;
        if v == 0 {
            return &buf[at..];
        }
    }
}

/// Bytes before each placed value that must stay as we left them.
pub const CANARY: usize = 32;
pub const CANARY_BYTE: u8 = 0x5a;

pub const RET_FRESH: u8 = 0xc3;

/// A caller's return buffer of `len` bytes with canaries around it,
/// 16-aligned or (`loose`) aligned only for `ret`.
pub struct RetBuf {
    mem: Vec<u128>,
    start: usize,
    len: usize,
}

impl RetBuf {
    pub fn new(ret: &Type, len: usize, loose: bool) -> RetBuf {
        let align = if ret.is_void() { 1 } else { ret.align() };
        let start = CANARY + if loose && align < 16 { align } else { 0 };
        let total = start + len + CANARY;
        let mut buf = RetBuf {
            mem: vec![0u128; total.div_ceil(16)],
            start,
            len,
        };
        let bytes = buf.bytes_mut();
        bytes.fill(CANARY_BYTE);
        bytes[start..start + len].fill(RET_FRESH);
        buf
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let n = self.mem.len() * 16;
        // SAFETY: the u128s are `n` initialised bytes.
        unsafe { std::slice::from_raw_parts_mut(self.mem.as_mut_ptr().cast::<u8>(), n) }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts(self.mem.as_ptr().cast::<u8>(), self.mem.len() * 16) }
    }

    pub fn ptr(&mut self) -> *mut c_void {
        let start = self.start;
        self.bytes_mut()[start..].as_mut_ptr().cast()
    }

    /// Checks the returned value and that nothing outside the buffer moved.
    pub fn check(&self, ret: &Type, ret_value: &[u8], who: &str, errors: &mut Vec<String>) {
        let b = self.bytes();
        let end = self.start + self.len;
        if let Some(at) = b[..self.start].iter().rposition(|&x| x != CANARY_BYTE) {
            errors.push(format!(
                "{who}: wrote {} bytes before the return buffer",
                self.start - at
            ));
        }
        if let Some(at) = b[end..].iter().rposition(|&x| x != CANARY_BYTE) {
            errors.push(format!(
                "{who}: wrote {} bytes past the {}-byte return buffer: {}",
                at + 1,
                self.len,
                hex(&b[self.start..end + at + 1])
            ));
        }
        if ret.is_void() {
            if let Some(at) = b[self.start..end].iter().position(|&x| x != RET_FRESH) {
                errors.push(format!(
                    "{who}: void call wrote the return buffer at byte {at}"
                ));
            }
            return;
        }
        // Narrow integers come back widened to an 8-byte `ffi_arg`.
        let want = if is_narrow_int(ret) {
            shapes::widen(ret, ret_value)
        } else {
            ret_value.to_vec()
        };
        let m = ret_mask(ret);
        let got = &b[self.start..self.start + want.len()];
        if let Some(at) = (0..want.len()).find(|&i| m[i] && want[i] != got[i]) {
            errors.push(format!(
                "{who}: return value ({}) differs at byte {at}: handler returned {}, caller got {}",
                ret,
                hex(&want),
                hex(got)
            ));
        }
    }
}
