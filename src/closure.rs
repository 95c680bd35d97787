//! Closures: native function pointers of any signature a [`Cif`] describes,
//! landing in a handler.
//!
//! Three pieces cooperate:
//!
//! - a *thunk* per signature shape, compiled from the same [`CallPlan`] as
//!   the call stubs but in the other direction, and shared through the
//!   cache ([`crate::cache::Compiled::closure_thunk`]);
//! - a *slot* per closure ([`crate::memory::ClosureSlot`]): a 64-byte
//!   [`record`] in read-write memory and a trampoline in a page that is
//!   never writable, which puts the record's address in `r11` and jumps
//!   through the record's first word to the thunk;
//! - the handler, `fun(cif, rvalue, args, user_data)`, as libffi has it, or
//!   a Rust closure behind [`Closure::new`].
//!
//! ```
//! use jitffi::{Cif, Closure, Type};
//! let cif = Cif::new(Type::i32(), &[Type::i32(), Type::i32()]).unwrap();
//! let add = Closure::new(&cif, |args, ret| {
//!     ret.set(args.get::<i32>(0) + args.get::<i32>(1));
//! })
//! .unwrap();
//! // SAFETY: the closure has exactly this signature and outlives the call.
//! let f: extern "C" fn(i32, i32) -> i32 = unsafe { add.as_fn() };
//! assert_eq!(f(40, 2), 42);
//! ```
//!
//! [`CallPlan`]: crate::plan::CallPlan

use std::any::Any;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::cif::{CType, Cif};
use crate::error::Result;
use crate::memory::{self, ClosureSlot};

/// The layout of a closure record, shared by the slot trampolines, the
/// thunks and libffi's `ffi_closure` (whose 32-byte `tramp` precedes `cif`,
/// `fun` and `user_data` at the same offsets).
pub mod record {
    /// The word slot trampolines jump through: the shape's thunk.
    pub const THUNK: usize = 0;
    /// Where a [`RawClosure`](super::RawClosure) keeps its
    /// [`Cif`](crate::Cif) (one word), so `CIF` can point at it without an
    /// allocation. Inside libffi's `tramp` area, unused by slot closures.
    pub const CIF_STORAGE: usize = 8;
    /// The pointer handed to the handler as its first argument.
    pub const CIF: usize = 32;
    /// The handler, `fun(cif, rvalue, args, user_data)`.
    pub const FUN: usize = 40;
    /// The handler's last argument.
    pub const USER_DATA: usize = 48;
    /// Bytes in a record (56 used, rounded to a cache-friendly 64).
    pub const SIZE: usize = 64;
}

/// The closure thunk of `cif`'s shape, compiled on first use and shared,
/// for code that fills closure records itself (the C API's
/// `ffi_prep_closure_loc`): entered with a record's address in `r11`
/// (x86-64) or `x17` (AArch64) (a slot trampoline, or any code that sets
/// that register and jumps here), it runs
/// `record.FUN(record.CIF, rvalue, args, record.USER_DATA)` with the
/// words at those [`record`] offsets, and reads nothing else of the record.
///
/// ```
/// use jitffi::{closure, Cif, Type};
/// let cif = Cif::new(Type::i32(), &[Type::i32()]).unwrap();
/// let again = Cif::new(Type::i32(), &[Type::i32()]).unwrap();
/// assert_eq!(closure::thunk(&cif).unwrap(), closure::thunk(&again).unwrap());
/// ```
pub fn thunk(cif: &Cif) -> Result<*const u8> {
    cif.compiled().closure_thunk()
}

/// A closure handler with libffi's signature: `cif` is what the closure
/// was built with (for [`RawClosure::new`], a `*const Cif`), `rvalue` the
/// return buffer, `args[i]` points at argument `i`, valid during the call.
///
/// For values returned in registers, `rvalue` is the thunk's buffer: at
/// least 16 bytes and the return type's size, 16-aligned; narrow integers
/// may be written as an 8-byte `ffi_arg` or at their own width. For values
/// returned in memory (sret), `rvalue` is the caller's own buffer, aligned
/// as the return type requires and exactly its size.
pub type RawHandler = unsafe extern "C" fn(
    cif: *const c_void,
    rvalue: *mut c_void,
    args: *const *mut c_void,
    user_data: *mut c_void,
);

/// A closure with an `extern "C"` handler and raw user data, as libffi has
/// it. Dropping it frees the trampoline.
///
/// ```
/// use std::ffi::c_void;
/// use jitffi::{Cif, RawClosure, Type};
///
/// unsafe extern "C" fn twice(_cif: *const c_void, ret: *mut c_void, args: *const *mut c_void, ud: *mut c_void) {
///     // SAFETY: the cif is i64(i64): one i64 argument, an i64 return; ud is an i64.
///     unsafe { *ret.cast::<i64>() = 2 * *(*args).cast::<i64>() + *ud.cast::<i64>() };
/// }
///
/// let cif = Cif::new(Type::i64(), &[Type::i64()]).unwrap();
/// let mut bias = 1i64;
/// let c = RawClosure::new(&cif, twice, (&mut bias as *mut i64).cast()).unwrap();
/// // SAFETY: i64(i64), and `bias` outlives the call.
/// let f: extern "C" fn(i64) -> i64 = unsafe { c.as_fn() };
/// assert_eq!(f(20), 41);
/// ```
#[derive(Debug)]
pub struct RawClosure {
    slot: ClosureSlot,
}

// SAFETY: the slot is exclusively ours; the handler and user data are the
// creator's responsibility, as with libffi (documented on `new`).
unsafe impl Send for RawClosure {}
// SAFETY: nothing in a RawClosure is mutated after construction.
unsafe impl Sync for RawClosure {}

impl RawClosure {
    /// A closure for `cif` that calls `handler(&cif, rvalue, args,
    /// user_data)`. The handler's first argument is a `*const Cif`.
    ///
    /// Whoever calls the code pointer must keep whatever `user_data` points
    /// at alive and usable from the calling thread; jitffi only stores it.
    // `user_data` is stored, never dereferenced here: creating the closure
    // is safe, calling it is where the contract bites.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    pub fn new(cif: &Cif, handler: RawHandler, user_data: *mut c_void) -> Result<RawClosure> {
        let thunk = cif.compiled().closure_thunk()?;
        let slot = memory::alloc_closure_slot()?;
        // SAFETY: the record is `record::SIZE` writable bytes that this
        // closure owns; the words are pointer-aligned (records are
        // 64-byte aligned); `Cif` is one pointer (`repr(transparent)`).
        unsafe {
            let r = slot.record;
            let stored = r.add(record::CIF_STORAGE).cast::<Cif>();
            stored.write(*cif);
            r.add(record::CIF).cast::<*const Cif>().write(stored);
            r.add(record::FUN).cast::<RawHandler>().write(handler);
            r.add(record::USER_DATA)
                .cast::<*mut c_void>()
                .write(user_data);
            // Last: the trampoline jumps through this word, so the record
            // is complete before the closure can do anything.
            std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
            r.add(record::THUNK).cast::<*const u8>().write(thunk);
        }
        Ok(RawClosure { slot })
    }

    /// The native entry point: call it as a C function of the cif's
    /// signature.
    pub fn code_ptr(&self) -> *const c_void {
        self.slot.code.cast()
    }

    /// The cif the closure was made for.
    pub fn cif(&self) -> &Cif {
        // SAFETY: `new` stored a Cif at CIF_STORAGE; the record lives as
        // long as self.
        unsafe { &*self.slot.record.add(record::CIF_STORAGE).cast::<Cif>() }
    }

    /// The code pointer as a typed function pointer.
    ///
    /// # Safety
    /// `F` must be an `extern "C" fn` type matching the cif exactly, and the
    /// pointer must not be called after `self` is dropped.
    pub unsafe fn as_fn<F: Copy>(&self) -> F {
        assert_eq!(
            std::mem::size_of::<F>(),
            std::mem::size_of::<*const c_void>(),
            "as_fn needs a function pointer type"
        );
        // SAFETY: F is pointer-sized (checked) and, per the caller, a
        // function pointer type of this signature.
        unsafe { std::mem::transmute_copy::<*const c_void, F>(&self.code_ptr()) }
    }
}

impl Drop for RawClosure {
    fn drop(&mut self) {
        // SAFETY: the slot came from alloc_closure_slot and is freed once;
        // the owner promised no further calls (the code pointer's contract).
        unsafe { memory::free_closure_slot(self.slot) };
    }
}

/// A closure whose handler is a Rust closure with typed access to the
/// arguments and the return slot. It owns the Rust closure and frees the
/// trampoline on drop.
///
/// A panic in the handler cannot unwind into the C code that called the
/// closure: it is caught, reported on stderr with the panic message, and
/// the process aborts.
pub struct Closure {
    raw: RawClosure,
    _state: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Closure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Closure").field("raw", &self.raw).finish()
    }
}

impl Closure {
    /// A closure for `cif` running `f`. `f` may be called from any thread
    /// and re-entered, hence `Fn + Send + Sync`; use interior mutability
    /// (or [`Closure::new_mut`]) for state.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use jitffi::{Cif, Closure, Type};
    ///
    /// let calls = Arc::new(AtomicU32::new(0));
    /// let seen = Arc::clone(&calls);
    /// let cif = Cif::new(Type::void(), &[Type::f64()]).unwrap();
    /// let c = Closure::new(&cif, move |args, _ret| {
    ///     assert_eq!(args.get::<f64>(0), 0.5);
    ///     seen.fetch_add(1, Ordering::Relaxed);
    /// }).unwrap();
    /// // SAFETY: void(double).
    /// let f: extern "C" fn(f64) = unsafe { c.as_fn() };
    /// f(0.5);
    /// f(0.5);
    /// assert_eq!(calls.load(Ordering::Relaxed), 2);
    /// ```
    pub fn new<F>(cif: &Cif, f: F) -> Result<Closure>
    where
        F: Fn(&Args<'_>, &mut Ret<'_>) + Send + Sync + 'static,
    {
        // The handler is monomorphised per closure type, so `f` is inlined
        // into it: no dynamic call between the thunk and the Rust code.
        let state: Box<F> = Box::new(f);
        let user_data = (&*state as *const F).cast_mut().cast::<c_void>();
        let raw = RawClosure::new(cif, call_rust_handler::<F>, user_data)?;
        Ok(Closure { raw, _state: state })
    }

    /// A closure running an `FnMut`. Calls from several threads are
    /// serialised by a mutex; a re-entrant call (the handler calling its own
    /// closure, directly or through C) would deadlock, so it is reported and
    /// the process aborts, as for any handler panic.
    ///
    /// ```
    /// use jitffi::{Cif, Closure, Type};
    /// let cif = Cif::new(Type::u64(), &[]).unwrap();
    /// let mut n = 0u64;
    /// let counter = Closure::new_mut(&cif, move |_args, ret| {
    ///     n += 1;
    ///     ret.set(n);
    /// }).unwrap();
    /// // SAFETY: uint64_t(void).
    /// let next: extern "C" fn() -> u64 = unsafe { counter.as_fn() };
    /// assert_eq!((next(), next(), next()), (1, 2, 3));
    /// ```
    pub fn new_mut<F>(cif: &Cif, f: F) -> Result<Closure>
    where
        F: FnMut(&Args<'_>, &mut Ret<'_>) + Send + 'static,
    {
        let cell = Mutex::new(f);
        // Which thread is inside the handler (0: none), to tell a re-entrant
        // call, which would deadlock, from another thread's, which waits.
        let inside = AtomicUsize::new(0);
        Closure::new(cif, move |args, ret| {
            let me = thread_token();
            assert!(
                inside.load(Ordering::Acquire) != me,
                "re-entrant call of a Closure::new_mut handler, which would deadlock; \
                 use Closure::new with interior mutability instead"
            );
            let mut f = cell.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            inside.store(me, Ordering::Release);
            f(args, ret);
            inside.store(0, Ordering::Release);
        })
    }

    /// The native entry point.
    pub fn code_ptr(&self) -> *const c_void {
        self.raw.code_ptr()
    }

    /// The cif the closure was made for.
    pub fn cif(&self) -> &Cif {
        self.raw.cif()
    }

    /// The code pointer as a typed function pointer.
    ///
    /// # Safety
    /// As [`RawClosure::as_fn`].
    pub unsafe fn as_fn<F: Copy>(&self) -> F {
        // SAFETY: forwarded.
        unsafe { self.raw.as_fn() }
    }
}

/// A nonzero number unique to the calling thread while it lives.
fn thread_token() -> usize {
    thread_local! {
        static TOKEN: u8 = const { 0 };
    }
    TOKEN.with(|t| t as *const u8 as usize)
}

/// The raw handler behind every [`Closure`]: unwraps the Rust closure and
/// keeps panics on this side of the C boundary.
unsafe extern "C" fn call_rust_handler<F>(
    cif: *const c_void,
    rvalue: *mut c_void,
    args: *const *mut c_void,
    user_data: *mut c_void,
) where
    F: Fn(&Args<'_>, &mut Ret<'_>) + Send + Sync + 'static,
{
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `Closure::new` stored a `*const F` that the Closure keeps
        // alive, and RawClosure passes its `*const Cif`.
        let (f, cif) = unsafe { (&*user_data.cast_const().cast::<F>(), &*cif.cast::<Cif>()) };
        let args = Args {
            cif,
            ptrs: args,
            _call: PhantomData,
        };
        let mut ret = Ret {
            cif,
            ptr: rvalue,
            _call: PhantomData,
        };
        f(&args, &mut ret);
    }));
    if let Err(payload) = outcome {
        handler_panicked(payload);
    }
}

/// Reports a handler's panic and aborts (kept out of line: the hot path
/// of every handler stays small).
#[cold]
#[inline(never)]
fn handler_panicked(payload: Box<dyn Any + Send>) -> ! {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".into());
    eprintln!(
        "jitffi: a closure handler panicked: {msg}\n\
         jitffi: aborting, because a panic must not unwind into the C caller"
    );
    std::process::abort();
}

/// The arguments of one closure call.
#[derive(Debug)]
pub struct Args<'call> {
    cif: &'call Cif,
    ptrs: *const *mut c_void,
    _call: PhantomData<&'call ()>,
}

impl Args<'_> {
    /// Number of arguments.
    #[inline]
    pub fn len(&self) -> usize {
        self.cif.args().len()
    }

    /// `true` for a signature without arguments.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Argument `i` as `T`.
    ///
    /// # Panics
    /// If `i` is out of range or `T` is not the argument's type (the panic
    /// then aborts the process, see [`Closure`]).
    #[inline]
    pub fn get<T: CType>(&self, i: usize) -> T {
        match self.cif.args().get(i) {
            // SAFETY: the thunk passes one valid pointer per argument, to a
            // value of the argument's type, which is T (checked).
            Some(ty) if T::is(ty) => unsafe { (*self.ptrs.add(i)).cast::<T>().read_unaligned() },
            _ => wrong_argument::<T>(self.cif, i),
        }
    }

    /// Pointer to argument `i` (valid during the call), for types `get`
    /// cannot name: structs, unions, `long double`.
    ///
    /// # Panics
    /// If `i` is out of range.
    #[inline]
    pub fn ptr(&self, i: usize) -> *mut c_void {
        assert!(i < self.len(), "argument {i} requested of {}", self.len());
        // SAFETY: the thunk's pointer array has one entry per argument.
        unsafe { *self.ptrs.add(i) }
    }

    /// The cif of the call.
    pub fn cif(&self) -> &Cif {
        self.cif
    }
}

/// `Args::get`'s failure, out of line so the check stays two compares.
#[cold]
#[inline(never)]
fn wrong_argument<T: CType>(cif: &Cif, i: usize) -> ! {
    match cif.args().get(i) {
        None => panic!("argument {i} requested of {}", cif.args().len()),
        Some(ty) => panic!("argument {i} is {ty}, not {} as requested", T::ffi_type()),
    }
}

/// `Ret::set`'s failure, out of line.
#[cold]
#[inline(never)]
fn wrong_return<T: CType>(ret: &crate::types::Type) -> ! {
    panic!("the closure returns {ret}, not {}", T::ffi_type())
}

/// The return slot of one closure call.
#[derive(Debug)]
pub struct Ret<'call> {
    cif: &'call Cif,
    ptr: *mut c_void,
    _call: PhantomData<&'call ()>,
}

impl Ret<'_> {
    /// Stores the return value.
    ///
    /// # Panics
    /// If `T` is not the cif's return type (aborting, see [`Closure`]).
    #[inline]
    pub fn set<T: CType>(&mut self, value: T) {
        let ret = self.cif.ret();
        if !T::is(ret) {
            wrong_return::<T>(ret);
        }
        if ret.is_void() {
            return;
        }
        // SAFETY: the thunk's return buffer holds at least the return type's
        // size, which is T's (checked).
        unsafe { self.ptr.cast::<T>().write_unaligned(value) }
    }

    /// The return buffer, for types `set` cannot name (see [`RawHandler`]
    /// for its size and alignment).
    #[inline]
    pub fn ptr(&self) -> *mut c_void {
        self.ptr
    }
}
