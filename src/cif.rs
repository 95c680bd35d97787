//! Prepared call interfaces: the public face of outgoing calls.
//!
//! The last stage of the pipeline: a [`Cif`] asks [`crate::cache`] for the
//! stubs of its signature (classifying and emitting them on first use) and
//! calls through them in one of three forms: typed ([`Cif::call`]), libffi's
//! ([`Cif::call_raw`]) or packed ([`Cif::call_packed`]).
//!
//! ```
//! use jitffi::{Arg, Cif, Type};
//! extern "C" fn mul(a: i64, b: i64) -> i64 { a * b }
//! let cif = Cif::new(Type::i64(), &[Type::i64(), Type::i64()]).unwrap();
//! let r: i64 = unsafe { cif.call(mul as *const _, &[Arg::new(&6i64), Arg::new(&7i64)]) }.unwrap();
//! assert_eq!(r, 42);
//! ```

use std::borrow::Borrow;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

use crate::abi::{Abi, Arch};
use crate::cache::{self, Compiled};
use crate::error::{Error, Result};
use crate::plan::CallPlan;
use crate::types::{Type, TypeKind};

pub use crate::cache::{PackedEntry, RawEntry};

/// Most arguments a signature may have.
///
/// ```
/// use jitffi::{Cif, Error, Type, MAX_ARGS};
/// let e = Cif::new(Type::void(), &vec![Type::i32(); MAX_ARGS + 1]).unwrap_err();
/// assert_eq!(e, Error::TooManyArguments { count: MAX_ARGS + 1, max: MAX_ARGS });
/// ```
pub const MAX_ARGS: usize = 1024;

/// A prepared call interface: a signature compiled to native call stubs.
///
/// Creating a `Cif` for a shape seen before is a cache hit (no
/// classification, no code generation). Copying one is a pointer
/// copy. `Cif` is `Send + Sync`: the stubs are immutable code.
///
/// ```
/// use jitffi::{Cif, Type};
/// let a = Cif::new(Type::f64(), &[Type::f64(), Type::f64()]).unwrap();
/// let b = Cif::new(Type::f64(), &[Type::f64(), Type::f64()]).unwrap();
/// assert_eq!(a.raw_entry() as usize, b.raw_entry() as usize); // one shared stub
/// ```
#[derive(Clone, Copy, Debug)]
// One pointer, so a `*const Cif` can point at any word holding it (closure
// records keep one for their handlers).
#[repr(transparent)]
pub struct Cif {
    compiled: &'static Compiled,
}

impl Cif {
    /// The compiled shape behind this cif.
    pub(crate) fn compiled(&self) -> &'static Compiled {
        self.compiled
    }

    /// A cif for a fixed-argument signature with the host's default ABI.
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// let cif = Cif::new(Type::void(), &[]).unwrap();
    /// assert_eq!(cif.args().len(), 0);
    /// ```
    pub fn new(ret: impl Borrow<Type>, args: &[Type]) -> Result<Cif> {
        Self::with_abi(Abi::host(), ret, args, None)
    }

    /// A cif for a variadic call with the host's default ABI: `fixed` are
    /// the declared parameters, `variadic` the types of this call's extra
    /// arguments (after C's default promotions: no `float`, nothing
    /// narrower than `int`).
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// // int printf(const char *, ...) called with (const char *, double, int)
    /// let cif = Cif::new_variadic(Type::i32(), &[Type::pointer()], &[Type::f64(), Type::i32()]).unwrap();
    /// assert_eq!(cif.fixed_args(), Some(1));
    /// assert!(Cif::new_variadic(Type::i32(), &[Type::pointer()], &[Type::f32()]).is_err());
    /// ```
    pub fn new_variadic(ret: impl Borrow<Type>, fixed: &[Type], variadic: &[Type]) -> Result<Cif> {
        let all: Vec<Type> = fixed.iter().chain(variadic).cloned().collect();
        Self::with_abi(Abi::host(), ret, &all, Some(fixed.len()))
    }

    /// A cif with an explicit ABI. `fixed_args` is `Some(n)` for a variadic
    /// signature whose first `n` arguments are the declared ones.
    ///
    /// ```
    /// use jitffi::{Abi, Cif, Type};
    /// let cif = Cif::with_abi(Abi::SysV64, Type::i64(), &[Type::i64()], None).unwrap();
    /// assert_eq!(cif.abi(), Abi::SysV64);
    /// ```
    pub fn with_abi(
        abi: Abi,
        ret: impl Borrow<Type>,
        args: &[Type],
        fixed_args: Option<usize>,
    ) -> Result<Cif> {
        // A cif is something to call: its code must run here. (Plans and
        // code for other ISAs come from `classify`/`emit` directly.)
        if Some(abi.arch()) != Arch::host() {
            return Err(Error::UnsupportedAbi {
                abi,
                reason: "belongs to another instruction set than this host's",
            });
        }
        let compiled = cache::lookup(abi, ret.borrow(), args, fixed_args)?;
        Ok(Cif { compiled })
    }

    /// The calling convention.
    ///
    /// ```
    /// use jitffi::{Abi, Cif, Type};
    /// let cif = Cif::new(Type::void(), &[]).unwrap();
    /// assert_eq!(cif.abi(), Abi::host());
    /// ```
    pub fn abi(&self) -> Abi {
        self.compiled.abi
    }

    /// The return type.
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// let cif = Cif::new(Type::f64(), &[Type::i32()]).unwrap();
    /// assert_eq!(cif.ret(), &Type::f64());
    /// ```
    #[inline]
    pub fn ret(&self) -> &Type {
        &self.compiled.ret
    }

    /// The argument types.
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// let cif = Cif::new(Type::void(), &[Type::i32(), Type::pointer()]).unwrap();
    /// assert_eq!(cif.args(), &[Type::i32(), Type::pointer()]);
    /// ```
    #[inline]
    pub fn args(&self) -> &[Type] {
        &self.compiled.args
    }

    /// For a variadic cif, the number of fixed arguments.
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// let fixed = Cif::new(Type::i32(), &[Type::pointer(), Type::f64()]).unwrap();
    /// let variadic = Cif::new_variadic(Type::i32(), &[Type::pointer()], &[Type::f64()]).unwrap();
    /// assert_eq!((fixed.fixed_args(), variadic.fixed_args()), (None, Some(1)));
    /// ```
    pub fn fixed_args(&self) -> Option<usize> {
        self.compiled.fixed_args
    }

    /// The plan the stubs were compiled from (printable with `{}`).
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// let cif = Cif::new(Type::i32(), &[Type::i32()]).unwrap();
    /// assert!(cif.plan().to_string().contains("rdi"));
    /// ```
    pub fn plan(&self) -> &CallPlan {
        &self.compiled.plan
    }

    /// Byte offset of each argument in the packed form's buffer.
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// // Each argument 8-aligned at least; long double keeps its 16.
    /// let cif = Cif::new(Type::void(), &[Type::u8(), Type::long_double(), Type::f64()]).unwrap();
    /// assert_eq!(cif.packed_offsets(), &[0, 16, 32]);
    /// ```
    pub fn packed_offsets(&self) -> &[u32] {
        &self.compiled.plan.packed_offsets
    }

    /// Size in bytes of the packed form's argument buffer (a multiple of 8;
    /// align the buffer to 16).
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// let cif = Cif::new(Type::void(), &[Type::i64(), Type::f32()]).unwrap();
    /// assert_eq!(cif.packed_size(), 16); // 8 + 4, rounded up to 8
    /// ```
    pub fn packed_size(&self) -> usize {
        self.compiled.plan.packed_size as usize
    }

    /// The libffi-form stub, for callers that want to skip even this
    /// method's indirection.
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// use std::ffi::c_void;
    /// extern "C" fn twice(x: i64) -> i64 { 2 * x }
    /// let cif = Cif::new(Type::i64(), &[Type::i64()]).unwrap();
    /// let (x, mut r) = (21i64, 0i64);
    /// let avalue = [&x as *const i64 as *const c_void];
    /// // SAFETY: `twice` is int64_t(int64_t); `avalue` and `r` match it.
    /// unsafe { cif.raw_entry()(twice as *const c_void, &mut r as *mut i64 as *mut c_void, avalue.as_ptr()) };
    /// assert_eq!(r, 42);
    /// ```
    pub fn raw_entry(&self) -> RawEntry {
        self.compiled.raw_entry
    }

    /// The packed-form stub.
    ///
    /// Its declared return is `()`; for a non-void callee, transmute it to
    /// a pointer returning `R` (or use [`Cif::call_packed`]).
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// use std::sync::atomic::{AtomicI64, Ordering};
    /// static SEEN: AtomicI64 = AtomicI64::new(0);
    /// extern "C" fn record(x: i64) { SEEN.store(x, Ordering::Relaxed) }
    /// #[repr(C, align(16))] struct Buf(i64);
    /// let cif = Cif::new(Type::void(), &[Type::i64()]).unwrap();
    /// // SAFETY: `record` is void(int64_t); the buffer holds its argument at offset 0.
    /// unsafe { cif.packed_entry()(record as *const _, std::ptr::null_mut(), &Buf(42) as *const Buf as *const _) };
    /// assert_eq!(SEEN.load(Ordering::Relaxed), 42);
    /// ```
    pub fn packed_entry(&self) -> PackedEntry {
        self.compiled.packed_entry
    }

    /// Bytes the return buffer must have: the return type's size, at least
    /// 8 (narrow integers are widened to 8 bytes, as `ffi_arg`).
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// let size = |ret: Type| Cif::new(ret, &[]).unwrap().ret_buffer_size();
    /// assert_eq!(size(Type::void()), 0);
    /// assert_eq!(size(Type::i8()), 8);
    /// assert_eq!(size(Type::structure(vec![Type::i64(); 3]).unwrap()), 24);
    /// ```
    pub fn ret_buffer_size(&self) -> usize {
        let r = &self.compiled.ret;
        if r.is_void() {
            0
        } else {
            r.size().max(8)
        }
    }

    /// Calls `f` with libffi's `ffi_call` contract.
    ///
    /// `avalue[i]` points at argument `i`; it is only read. The return value
    /// is stored at `rvalue` (integers narrower than 64 bits widened to 8
    /// bytes); `rvalue` may be null to discard it.
    ///
    /// # Safety
    /// `f` must be a function with exactly this cif's signature and ABI;
    /// `avalue` must hold `args().len()` valid pointers to values of the
    /// argument types; `rvalue` must be null or valid for
    /// [`Cif::ret_buffer_size`] bytes, aligned for the return type.
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// extern "C" fn scale(x: f64, k: i32) -> f64 { x * k as f64 }
    /// let cif = Cif::new(Type::f64(), &[Type::f64(), Type::i32()]).unwrap();
    /// let (x, k) = (1.5f64, 4i32);
    /// let avalue = [&x as *const f64 as *const _, &k as *const i32 as *const _];
    /// let mut r = 0f64;
    /// unsafe { cif.call_raw(scale as *const _, &mut r as *mut f64 as *mut _, avalue.as_ptr()) };
    /// assert_eq!(r, 6.0);
    /// ```
    #[inline]
    pub unsafe fn call_raw(
        &self,
        f: *const c_void,
        rvalue: *mut c_void,
        avalue: *const *const c_void,
    ) {
        // SAFETY: forwarded to the caller's contract; the stub implements
        // exactly this signature.
        unsafe { (self.compiled.raw_entry)(f, rvalue, avalue) }
    }

    /// Calls `f` like [`Cif::call_raw`], with `chain` in the static chain
    /// register (`r10` on x86-64; see
    /// [`classify::static_chain_register`](crate::classify::static_chain_register)):
    /// libffi's `ffi_call_go`, and how gcc calls nested functions. The
    /// stub is compiled on first use.
    ///
    /// # Safety
    /// As [`Cif::call_raw`]; `f` may read its static chain, which is
    /// `chain`.
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// extern "C" fn twice(x: i64) -> i64 { 2 * x } // ignores its chain
    /// let cif = Cif::new(Type::i64(), &[Type::i64()]).unwrap();
    /// let (x, mut r) = (21i64, 0i64);
    /// let avalue = [&x as *const i64 as *const _];
    /// unsafe {
    ///     cif.call_raw_with_chain(twice as *const _, &mut r as *mut i64 as *mut _, avalue.as_ptr(), std::ptr::null())
    /// }
    /// .unwrap();
    /// assert_eq!(r, 42);
    /// ```
    pub unsafe fn call_raw_with_chain(
        &self,
        f: *const c_void,
        rvalue: *mut c_void,
        avalue: *const *const c_void,
        chain: *const c_void,
    ) -> Result<()> {
        let stub = self.compiled.chain_entry()?;
        // SAFETY: forwarded to the caller's contract; the stub implements
        // this signature plus the chain.
        unsafe { stub(f, rvalue, avalue, chain) };
        Ok(())
    }

    /// The Go-closure thunk of this cif's shape: entered with a record
    /// laid out as [`emit::go_record`](crate::emit::go_record) (libffi's
    /// `ffi_go_closure`: code, cif, fun) in the static chain register, it
    /// calls `fun(cif, rvalue, args, record)`.
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// let cif = Cif::new(Type::i32(), &[Type::i32()]).unwrap();
    /// assert!(!cif.go_closure_thunk().unwrap().is_null());
    /// ```
    pub fn go_closure_thunk(&self) -> Result<*const u8> {
        self.compiled.go_closure_thunk()
    }

    /// Calls `f` with its arguments packed in one buffer (argument `i` at
    /// byte [`Cif::packed_offsets`]`[i]` of `args`) and returns the result
    /// the way `f` returned it.
    ///
    /// This is the form for VMs and JITs: no pointer per argument, no store
    /// of the result. Where the signature allows (no stack arguments) the
    /// stub is a handful of loads and a jump into `f`, which then returns
    /// straight here. `R` is the Rust type whose `extern "C"` return matches
    /// the cif's return type: `()` for void, the primitive for scalars, a
    /// `#[repr(C)]` struct for aggregates returned in registers. A value the
    /// ABI returns in memory (sret) is written to `rvalue`, which must then
    /// be valid; under SysV `R` may be `*mut c_void` to receive that
    /// address back (an AAPCS64 callee need not return it). Elsewhere `rvalue` is unused. (`long double` results, which Rust
    /// cannot name, need the libffi form.)
    ///
    /// # Safety
    /// `f` must be a function with exactly this cif's signature and ABI;
    /// `args` must be valid for [`Cif::packed_size`] bytes, aligned to 16,
    /// holding values of the argument types at the packed offsets; `R` must
    /// be returned exactly as the cif's return type is.
    ///
    /// ```
    /// use jitffi::{Cif, Type};
    /// extern "C" fn sub(a: i64, b: i64) -> i64 { a - b }
    /// let cif = Cif::new(Type::i64(), &[Type::i64(), Type::i64()]).unwrap();
    /// assert_eq!(cif.packed_offsets(), &[0, 8]);
    /// #[repr(C, align(16))] struct Buf([i64; 2]);
    /// let buf = Buf([50, 8]);
    /// let r: i64 = unsafe {
    ///     cif.call_packed(sub as *const _, std::ptr::null_mut(), &buf as *const Buf as *const _)
    /// };
    /// assert_eq!(r, 42);
    /// ```
    #[inline]
    pub unsafe fn call_packed<R>(
        &self,
        f: *const c_void,
        rvalue: *mut c_void,
        args: *const c_void,
    ) -> R {
        debug_assert!(
            std::mem::size_of::<R>() == 0
                || std::mem::size_of::<R>() == self.ret().size()
                || std::mem::size_of::<R>() == std::mem::size_of::<*mut c_void>(),
            "R does not have the size of the cif's return type"
        );
        // SAFETY: the stub has this entry signature and returns in the
        // callee's registers; the caller promises `R` matches them.
        unsafe {
            let entry = std::mem::transmute::<
                PackedEntry,
                unsafe extern "C" fn(*const c_void, *mut c_void, *const c_void) -> R,
            >(self.compiled.packed_entry);
            entry(f, rvalue, args)
        }
    }

    /// Typed convenience call: checks the argument count, every argument
    /// built with [`Arg::new`], and the return type against the cif, then
    /// calls `f`.
    ///
    /// # Safety
    /// `f` must be a function with exactly this cif's signature and ABI;
    /// arguments made with [`Arg::raw`] must point at values of the
    /// corresponding types.
    ///
    /// ```
    /// use jitffi::{Arg, Cif, Type};
    /// let cif = Cif::new(Type::f64(), &[Type::f64()]).unwrap();
    /// extern "C" { fn sqrt(x: f64) -> f64; }
    /// let r: f64 = unsafe { cif.call(sqrt as *const _, &[Arg::new(&2.25f64)]) }.unwrap();
    /// assert_eq!(r, 1.5);
    /// let wrong = unsafe { cif.call::<i32>(sqrt as *const _, &[Arg::new(&2.25f64)]) };
    /// assert!(wrong.is_err());
    /// ```
    pub unsafe fn call<R: CType>(&self, f: *const c_void, args: &[Arg<'_>]) -> Result<R> {
        let params = self.args();
        if args.len() != params.len() {
            return Err(Error::SignatureMismatch {
                reason: format!(
                    "{} arguments given, the cif has {}",
                    args.len(),
                    params.len()
                ),
            });
        }
        for (i, (a, t)) in args.iter().zip(params).enumerate() {
            if let Some(check) = &a.check {
                if !(check.is)(t) {
                    return Err(Error::SignatureMismatch {
                        reason: format!("argument {i} is {}, the cif expects {t}", (check.ty)()),
                    });
                }
            }
        }
        if !R::is(self.ret()) {
            return Err(Error::SignatureMismatch {
                reason: format!(
                    "return type {} requested, the cif returns {}",
                    R::ffi_type(),
                    self.ret()
                ),
            });
        }
        let mut avalue = [std::ptr::null::<c_void>(); 16];
        let heap;
        let ptrs: &[*const c_void] = if args.len() <= avalue.len() {
            for (slot, a) in avalue.iter_mut().zip(args) {
                *slot = a.ptr;
            }
            &avalue[..args.len()]
        } else {
            heap = args.iter().map(|a| a.ptr).collect::<Vec<_>>();
            &heap
        };
        // Room for any CType (at most 16 bytes), aligned for all of them.
        let mut ret = MaybeUninit::<[u128; 1]>::zeroed();
        // SAFETY: the types were checked above; `ptrs` holds one valid
        // pointer per argument; `ret` is 16 bytes, 16-aligned, enough for any
        // `CType` and for the 8-byte widening of narrow integers.
        unsafe {
            self.call_raw(f, ret.as_mut_ptr().cast(), ptrs.as_ptr());
            Ok(ret.as_ptr().cast::<R>().read())
        }
    }
}

/// An argument for [`Cif::call`]: a pointer to the value, and its type when
/// known, so the call can check it.
///
/// ```
/// use jitffi::{Arg, Cif, Error, Type};
/// extern "C" fn half(x: f64) -> f64 { x / 2.0 }
/// let cif = Cif::new(Type::f64(), &[Type::f64()]).unwrap();
/// let r: f64 = unsafe { cif.call(half as *const _, &[Arg::new(&3.0f64)]) }.unwrap();
/// assert_eq!(r, 1.5);
/// let e = unsafe { cif.call::<f64>(half as *const _, &[Arg::new(&3i32)]) }.unwrap_err();
/// assert!(matches!(e, Error::SignatureMismatch { .. })); // an int is not a double
/// ```
#[derive(Clone, Debug)]
pub struct Arg<'a> {
    ptr: *const c_void,
    check: Option<ArgCheck>,
    _borrow: PhantomData<&'a ()>,
}

/// How [`Cif::call`] checks a typed argument: `T::is` and, for the error
/// message only, `T::ffi_type`.
#[derive(Clone, Copy, Debug)]
struct ArgCheck {
    is: fn(&Type) -> bool,
    ty: fn() -> Type,
}

impl<'a> Arg<'a> {
    /// An argument whose type is checked against the cif.
    ///
    /// ```
    /// use jitffi::{Arg, Cif, Type};
    /// extern "C" fn pick(c: u8, x: u16) -> u16 { if c != 0 { x } else { 0 } }
    /// let cif = Cif::new(Type::u16(), &[Type::u8(), Type::u16()]).unwrap();
    /// let r: u16 = unsafe { cif.call(pick as *const _, &[Arg::new(&1u8), Arg::new(&500u16)]) }.unwrap();
    /// assert_eq!(r, 500);
    /// ```
    pub fn new<T: CType>(value: &'a T) -> Arg<'a> {
        Arg {
            ptr: (value as *const T).cast(),
            check: Some(ArgCheck {
                is: T::is,
                ty: T::ffi_type,
            }),
            _borrow: PhantomData,
        }
    }

    /// An unchecked argument (structs, unions, long double...).
    ///
    /// ```
    /// use jitffi::{Arg, Cif, Type};
    /// #[repr(C)] #[derive(Clone, Copy)] struct Pair { a: i32, b: i32 }
    /// extern "C" fn sum(p: Pair) -> i32 { p.a + p.b }
    /// let pair = Type::structure([Type::i32(), Type::i32()]).unwrap();
    /// let cif = Cif::new(Type::i32(), &[pair]).unwrap();
    /// let p = Pair { a: 40, b: 2 };
    /// // SAFETY: `p` is a `struct { int32_t; int32_t; }`, alive for the call.
    /// let arg = unsafe { Arg::raw(&p as *const Pair as *const _) };
    /// assert_eq!(unsafe { cif.call::<i32>(sum as *const _, &[arg]) }, Ok(42));
    /// ```
    ///
    /// # Safety
    /// `ptr` must point at a value of the cif's type for this argument, valid
    /// for the call.
    pub unsafe fn raw(ptr: *const c_void) -> Arg<'a> {
        Arg {
            ptr,
            check: None,
            _borrow: PhantomData,
        }
    }
}

/// Rust types with a C counterpart, usable with [`Arg::new`] and as the
/// return type of [`Cif::call`].
///
/// ```
/// use jitffi::{CType, Type};
/// assert_eq!(f64::ffi_type(), Type::f64());
/// assert_eq!(<*const u8>::ffi_type(), Type::pointer());
/// assert_eq!(<()>::ffi_type(), Type::void());
/// ```
///
/// # Safety
/// `ffi_type()` must describe `Self`'s layout and C calling behaviour
/// exactly.
pub unsafe trait CType: Copy {
    /// The matching jitffi type.
    ///
    /// ```
    /// use jitffi::{CType, Type};
    /// assert_eq!(i16::ffi_type(), Type::i16());
    /// assert_eq!(usize::ffi_type().size(), std::mem::size_of::<usize>());
    /// ```
    fn ffi_type() -> Type;

    /// `true` when `ty` is this type: the check behind [`Cif::call`] and
    /// closure argument access, without building a [`Type`] (no reference
    /// count touched on the hot path).
    ///
    /// ```
    /// use jitffi::{CType, Type};
    /// assert!(i16::is(&Type::i16()));
    /// assert!(!u16::is(&Type::i16()));
    /// ```
    fn is(ty: &Type) -> bool {
        *ty == Self::ffi_type()
    }
}

macro_rules! ctype {
    ($($t:ty => $ctor:ident / $kind:ident),* $(,)?) => {
        $(
            // SAFETY: the Rust primitive has exactly the C type's layout.
            unsafe impl CType for $t {
                fn ffi_type() -> Type { Type::$ctor() }
                #[inline]
                fn is(ty: &Type) -> bool { matches!(ty.kind(), TypeKind::$kind) }
            }
        )*
    };
}

ctype! {
    u8 => u8 / U8, i8 => i8 / I8, u16 => u16 / U16, i16 => i16 / I16,
    u32 => u32 / U32, i32 => i32 / I32, u64 => u64 / U64, i64 => i64 / I64,
    u128 => u128 / U128, i128 => i128 / I128, f32 => f32 / F32, f64 => f64 / F64,
    usize => u64 / U64, isize => i64 / I64,
}

// SAFETY: `()` is returned as void; nothing is read from the buffer.
unsafe impl CType for () {
    fn ffi_type() -> Type {
        Type::void()
    }
    #[inline]
    fn is(ty: &Type) -> bool {
        ty.is_void()
    }
}

// SAFETY: thin pointers are pointer-sized integers in every C ABI here.
unsafe impl<T> CType for *const T {
    fn ffi_type() -> Type {
        Type::pointer()
    }
    #[inline]
    fn is(ty: &Type) -> bool {
        matches!(ty.kind(), TypeKind::Pointer)
    }
}

// SAFETY: as for `*const T`.
unsafe impl<T> CType for *mut T {
    fn ffi_type() -> Type {
        Type::pointer()
    }
    #[inline]
    fn is(ty: &Type) -> bool {
        matches!(ty.kind(), TypeKind::Pointer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn cif_is_send_sync() {
        assert_send_sync::<Cif>();
    }
}
