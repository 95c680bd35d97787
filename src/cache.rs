//! The stub cache: (ABI, signature shape) -> compiled stubs, shared by every
//! cif of that shape.
//!
//! A lookup hashes the signature from the structural hashes its types carry
//! (a few multiply-xors, no allocation), takes a read lock and compares the
//! candidates. Only a miss classifies and emits; the write lock is taken
//! after the (slow) compilation, so misses on different shapes do not
//! serialise behind each other's code generation.
//!
//! ```
//! use jitffi::{cache, Abi, Type};
//! let pair = || Type::structure([Type::f64(), Type::f64()]).unwrap();
//! let a = cache::lookup(Abi::host(), &pair(), &[pair()], None).unwrap();
//! let b = cache::lookup(Abi::host(), &pair(), &[pair()], None).unwrap();
//! assert!(std::ptr::eq(a, b)); // same shape, same compiled stubs
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{LazyLock, OnceLock, RwLock};

use crate::abi::{Abi, Arch};
use crate::classify;
use crate::emit::{self, EntryForm};
use crate::error::{Error, Result};
use crate::memory;
use crate::perfmap;
use crate::plan::CallPlan;
use crate::types::Type;
use crate::unwind;

/// `void stub(void *fn, void *rvalue, void **avalue)`.
///
/// ```
/// use jitffi::{cache, Abi, Type};
/// use std::ffi::c_void;
/// extern "C" fn neg(x: i32) -> i32 { -x }
/// let c = cache::lookup(Abi::host(), &Type::i32(), &[Type::i32()], None).unwrap();
/// let (x, mut r) = (5i32, 0i64); // a narrow int comes back widened to 8 bytes
/// let avalue = [&x as *const i32 as *const c_void];
/// // SAFETY: `neg` is int(int), `avalue` points at one int, `r` has 8 bytes.
/// unsafe { (c.raw_entry)(neg as *const c_void, &mut r as *mut i64 as *mut c_void, avalue.as_ptr()) };
/// assert_eq!(r, -5);
/// ```
pub type RawEntry =
    unsafe extern "C" fn(*const libc::c_void, *mut libc::c_void, *const *const libc::c_void);
/// `R stub(void *fn, void *rvalue, const void *packed_args)`: returns what
/// `fn` returns, in its registers (transmute to a typed pointer to read it);
/// `rvalue` is the buffer of a value returned in memory, unused otherwise.
///
/// ```
/// use jitffi::{cache::{self, PackedEntry}, Abi, Type};
/// use std::ffi::c_void;
/// type Typed = unsafe extern "C" fn(*const c_void, *mut c_void, *const c_void) -> f64;
/// extern "C" fn add(a: f64, b: f64) -> f64 { a + b }
/// #[repr(C, align(16))] struct Buf([f64; 2]);
/// let c = cache::lookup(Abi::host(), &Type::f64(), &[Type::f64(), Type::f64()], None).unwrap();
/// // SAFETY: the stub leaves `add`'s double in its return register, as `Typed` reads it.
/// let entry = unsafe { std::mem::transmute::<PackedEntry, Typed>(c.packed_entry) };
/// let buf = Buf([1.5, 2.0]); // at the packed offsets 0 and 8
/// // SAFETY: `add` is double(double, double); `buf` holds both arguments, 16-aligned.
/// let r = unsafe { entry(add as *const c_void, std::ptr::null_mut(), &buf as *const Buf as *const c_void) };
/// assert_eq!(r, 3.5);
/// ```
pub type PackedEntry =
    unsafe extern "C" fn(*const libc::c_void, *mut libc::c_void, *const libc::c_void);

/// The compiled form of one signature shape.
///
/// ```
/// use jitffi::{cache, Abi, Type};
/// let c = cache::lookup(Abi::host(), &Type::void(), &[Type::pointer()], None).unwrap();
/// assert_eq!((c.args.len(), c.fixed_args), (1, None));
/// assert!(c.ret.is_void() && c.code_bytes > 0);
/// assert_eq!(c.plan.arg_count(), 1);
/// ```
#[derive(Debug)]
pub struct Compiled {
    /// The signature's ABI.
    pub abi: Abi,
    /// Return type.
    pub ret: Type,
    /// Argument types.
    pub args: Vec<Type>,
    /// Fixed-argument count of a variadic signature.
    pub fixed_args: Option<usize>,
    /// The plan both stubs were compiled from.
    pub plan: CallPlan,
    /// The libffi-form stub.
    pub raw_entry: RawEntry,
    /// The packed-form stub.
    pub packed_entry: PackedEntry,
    /// Bytes of machine code in the two stubs.
    pub code_bytes: usize,
    /// The closure thunk, compiled on first use: most shapes are only ever
    /// called, so cold preparation does not pay for it.
    thunk: OnceLock<std::result::Result<usize, Error>>,
    /// The libffi-form stub with a static chain, compiled on first use.
    chain_stub: OnceLock<std::result::Result<usize, Error>>,
    /// The Go closure thunk, compiled on first use.
    go_thunk: OnceLock<std::result::Result<usize, Error>>,
}

/// `void stub(void *fn, void *rvalue, void **avalue, void *chain)`: the
/// libffi form, calling `fn` with `chain` in the static chain register
/// (libffi's `ffi_call_go`).
///
/// ```
/// use jitffi::{cache, Abi, Type};
/// use std::ffi::c_void;
/// extern "C" fn twice(x: i64) -> i64 { 2 * x } // ignores its chain
/// let c = cache::lookup(Abi::host(), &Type::i64(), &[Type::i64()], None).unwrap();
/// let (x, mut r) = (21i64, 0i64);
/// let avalue = [&x as *const i64 as *const c_void];
/// let chain = std::ptr::null();
/// // SAFETY: `twice` is int64_t(int64_t); avalue and r match it.
/// unsafe { c.chain_entry().unwrap()(twice as *const c_void, &mut r as *mut i64 as *mut c_void, avalue.as_ptr(), chain) };
/// assert_eq!(r, 42);
/// ```
pub type ChainEntry = unsafe extern "C" fn(
    *const libc::c_void,
    *mut libc::c_void,
    *const *const libc::c_void,
    *const libc::c_void,
);

impl Compiled {
    /// The closure thunk of this shape (see `emit::compile_closure_thunk`),
    /// compiled and published on first use and shared by every closure of
    /// the shape.
    ///
    /// ```
    /// use jitffi::{cache, Abi, Type};
    /// let c = cache::lookup(Abi::host(), &Type::i32(), &[Type::i32()], None).unwrap();
    /// let t = c.closure_thunk().unwrap();
    /// assert_eq!(t, c.closure_thunk().unwrap());
    /// ```
    pub fn closure_thunk(&self) -> Result<*const u8> {
        self.thunk
            .get_or_init(|| {
                let code = emit::compile_closure_thunk_with_unwind(&self.plan)?;
                let [at] = publish(self.plan.arch, [&code])?;
                perfmap::record_thunk(at, code.bytes.len(), self.signature());
                Ok(at as usize)
            })
            .clone()
            .map(|a| a as *const u8)
    }

    /// The libffi-form stub that also passes a static chain (see
    /// [`ChainEntry`]), compiled and published on first use.
    pub fn chain_entry(&self) -> Result<ChainEntry> {
        let at = self
            .chain_stub
            .get_or_init(|| {
                let code = emit::compile_call_with_unwind(&self.chain_plan(), EntryForm::Libffi)?;
                let [at] = publish(self.plan.arch, [&code])?;
                perfmap::record_call(EntryForm::Libffi, at, code.bytes.len(), self.signature());
                Ok(at as usize)
            })
            .clone()?;
        // SAFETY: the stub was generated for exactly this entry signature
        // and sits in executable memory that is never unmapped.
        Ok(unsafe { std::mem::transmute::<usize, ChainEntry>(at) })
    }

    /// The Go closure thunk of this shape, compiled and published on first
    /// use: entered with a Go closure record (see [`emit::go_record`],
    /// libffi's `ffi_go_closure`) in the static chain register, it calls
    /// the record's `fun(cif, rvalue, args, record)`. A record's first word
    /// holds this address; callers call through it with the record as
    /// their static chain.
    ///
    /// ```
    /// use jitffi::{cache, Abi, Type};
    /// let c = cache::lookup(Abi::host(), &Type::i32(), &[Type::i32()], None).unwrap();
    /// let t = c.go_closure_thunk().unwrap();
    /// assert_eq!(t, c.go_closure_thunk().unwrap());
    /// assert_ne!(t, c.closure_thunk().unwrap());
    /// ```
    pub fn go_closure_thunk(&self) -> Result<*const u8> {
        self.go_thunk
            .get_or_init(|| {
                let code = emit::compile_closure_thunk_with_unwind(&self.chain_plan())?;
                let [at] = publish(self.plan.arch, [&code])?;
                perfmap::record_thunk(at, code.bytes.len(), self.signature());
                Ok(at as usize)
            })
            .clone()
            .map(|a| a as *const u8)
    }

    fn chain_plan(&self) -> CallPlan {
        let mut plan = self.plan.clone();
        plan.static_chain = Some(classify::static_chain_register(self.abi));
        plan
    }

    fn signature(&self) -> (Abi, &Type, &[Type], Option<usize>) {
        (self.abi, &self.ret, &self.args, self.fixed_args)
    }

    fn matches(&self, abi: Abi, ret: &Type, args: &[Type], fixed_args: Option<usize>) -> bool {
        self.abi == abi
            && self.fixed_args == fixed_args
            && self.ret == *ret
            && self.args.as_slice() == args
    }

    fn build(abi: Abi, ret: &Type, args: &[Type], fixed_args: Option<usize>) -> Result<Compiled> {
        let plan = classify::classify(abi, ret, args, fixed_args)?;
        let raw_code = emit::compile_call_with_unwind(&plan, EntryForm::Libffi)?;
        let packed_code = emit::compile_call_with_unwind(&plan, EntryForm::Packed)?;
        let [raw, packed] = publish(plan.arch, [&raw_code, &packed_code])?;
        let (raw_len, packed_len) = (raw_code.bytes.len(), packed_code.bytes.len());
        let sig = (abi, ret, args, fixed_args);
        perfmap::record_call(EntryForm::Libffi, raw, raw_len, sig);
        perfmap::record_call(EntryForm::Packed, packed, packed_len, sig);
        // SAFETY: both stubs were generated for exactly these entry
        // signatures (see `EntryForm`) and now sit in executable memory that
        // is never unmapped.
        let (raw_entry, packed_entry) = unsafe {
            (
                std::mem::transmute::<*const u8, RawEntry>(raw),
                std::mem::transmute::<*const u8, PackedEntry>(packed),
            )
        };
        Ok(Compiled {
            abi,
            ret: ret.clone(),
            args: args.to_vec(),
            fixed_args,
            plan,
            raw_entry,
            packed_entry,
            code_bytes: raw_len + packed_len,
            thunk: OnceLock::new(),
            chain_stub: OnceLock::new(),
            go_thunk: OnceLock::new(),
        })
    }
}

/// Publishes pieces of code as one block (each piece 16-aligned, `int3`
/// between them), followed by the `.eh_frame` section that describes them,
/// and registers the section: one publish and one registration however
/// many pieces, no other code between them, and unwind information that
/// lives exactly as long as its code (forever).
fn publish<const N: usize>(arch: Arch, codes: [&emit::Code; N]) -> Result<[*const u8; N]> {
    thread_local! {
        /// Blocks are assembled here: a compile allocates no more than it must.
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    let assemble = |block: &mut Vec<u8>| -> Result<[*const u8; N]> {
        block.clear();
        let mut starts = [0usize; N];
        for (start, code) in starts.iter_mut().zip(codes) {
            block.resize(block.len().next_multiple_of(memory::BLOCK_ALIGN), 0xCC);
            *start = block.len();
            block.extend_from_slice(&code.bytes);
        }
        // Blocks are 16-aligned, so a block offset that is a multiple of 8
        // is an 8-aligned address.
        block.resize(block.len().next_multiple_of(8), 0xCC);
        let section = block.len();
        let pieces: [(usize, &emit::Code); N] = std::array::from_fn(|i| (starts[i], codes[i]));
        unwind::append_eh_frame(block, arch, section, &pieces)?;
        let base = memory::publish(block)?;
        // SAFETY: the block now sits, unchanged for good, at `base` (16-aligned);
        // the section at `base + section` was built for that offset from
        // its code, and is registered once, here.
        unsafe { unwind::register_section(base.wrapping_add(section)) };
        Ok(starts.map(|s| base.wrapping_add(s)))
    };
    // During thread teardown (or reentry) the scratch may be unavailable.
    match SCRATCH.try_with(|s| s.try_borrow_mut().ok().map(|mut b| assemble(&mut b))) {
        Ok(Some(done)) => done,
        _ => assemble(&mut Vec::new()),
    }
}

/// The signature hashes are already well mixed; hash them no further.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type Buckets = HashMap<u64, Vec<&'static Compiled>, BuildHasherDefault<PassThrough>>;

/// Every shape compiled in this process. Entries are leaked on purpose:
/// their code is never unmapped either, and `&'static` makes a cif a plain
/// pointer (no reference count to touch on the hot path).
static CACHE: LazyLock<RwLock<Buckets>> = LazyLock::new(|| RwLock::new(Buckets::default()));

thread_local! {
    /// Per-thread front of [`CACHE`]: a hit costs no lock and no atomic. One
    /// entry per hash; a colliding shape simply replaces it.
    static FRONT: RefCell<HashMap<u64, &'static Compiled, BuildHasherDefault<PassThrough>>> =
        RefCell::new(HashMap::default());
}

fn signature_hash(abi: Abi, ret: &Type, args: &[Type], fixed_args: Option<usize>) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64 ^ (abi as u64);
    let mut mix = |v: u64| h = (h ^ v).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(29);
    mix(fixed_args.map_or(u64::MAX, |n| n as u64));
    mix(ret.shape_hash());
    mix(args.len() as u64);
    for a in args {
        mix(a.shape_hash());
    }
    h
}

/// Returns the compiled stubs for a signature, compiling them on first use.
/// Every caller asking for the same shape gets the same `&'static`.
///
/// ```
/// use jitffi::{cache, Abi, Type};
/// let a = cache::lookup(Abi::host(), &Type::i64(), &[Type::i64(), Type::f32()], None).unwrap();
/// let b = cache::lookup(Abi::host(), &Type::i64(), &[Type::i64(), Type::f32()], None).unwrap();
/// assert!(std::ptr::eq(a, b));
/// assert_eq!(a.raw_entry as usize, b.raw_entry as usize);
/// ```
pub fn lookup(
    abi: Abi,
    ret: &Type,
    args: &[Type],
    fixed_args: Option<usize>,
) -> Result<&'static Compiled> {
    let key = signature_hash(abi, ret, args, fixed_args);
    let front = FRONT
        .try_with(|f| {
            f.borrow()
                .get(&key)
                .copied()
                .filter(|c| c.matches(abi, ret, args, fixed_args))
        })
        .ok()
        .flatten();
    if let Some(hit) = front {
        return Ok(hit);
    }
    let shared = lookup_shared(key, abi, ret, args, fixed_args)?;
    // `try_with`: during thread teardown the front may be gone; the shared
    // answer is still right.
    let _ = FRONT.try_with(|f| f.borrow_mut().insert(key, shared));
    Ok(shared)
}

fn lookup_shared(
    key: u64,
    abi: Abi,
    ret: &Type,
    args: &[Type],
    fixed_args: Option<usize>,
) -> Result<&'static Compiled> {
    {
        let map = CACHE.read().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = map
            .get(&key)
            .and_then(|b| b.iter().find(|c| c.matches(abi, ret, args, fixed_args)))
        {
            return Ok(hit);
        }
    }
    // Compile outside the lock so misses on different shapes do not queue.
    let fresh = Compiled::build(abi, ret, args, fixed_args)?;
    let mut map = CACHE.write().unwrap_or_else(|e| e.into_inner());
    let bucket = map.entry(key).or_default();
    // Another thread may have compiled the same shape meanwhile: keep the
    // first so every cif of a shape shares one code address (the loser's
    // code stays mapped, unused).
    if let Some(existing) = bucket
        .iter()
        .find(|c| c.matches(abi, ret, args, fixed_args))
    {
        return Ok(existing);
    }
    let leaked: &'static Compiled = Box::leak(Box::new(fresh));
    bucket.push(leaked);
    Ok(leaked)
}

/// Classifies, emits and publishes a signature without consulting or
/// filling the cache: the cold path of [`lookup`], exposed for benchmarks
/// and tools. Every call publishes new code that is never freed.
///
/// ```
/// use jitffi::{cache, Abi, Type};
/// let before = cache::len();
/// let fresh = cache::compile_uncached(Abi::host(), &Type::u8(), &[Type::u8()], None).unwrap();
/// assert_eq!(cache::len(), before); // the cache is untouched
/// let shared = cache::lookup(Abi::host(), &Type::u8(), &[Type::u8()], None).unwrap();
/// assert_ne!(fresh.raw_entry as usize, shared.raw_entry as usize); // separate code
/// ```
pub fn compile_uncached(
    abi: Abi,
    ret: &Type,
    args: &[Type],
    fixed_args: Option<usize>,
) -> Result<Compiled> {
    Compiled::build(abi, ret, args, fixed_args)
}

/// Number of distinct signature shapes compiled so far.
///
/// ```
/// use jitffi::{cache, Abi, Type};
/// let before = cache::len();
/// cache::lookup(Abi::host(), &Type::i16(), &[Type::u64(), Type::i16()], None).unwrap();
/// cache::lookup(Abi::host(), &Type::i16(), &[Type::u64(), Type::i16()], None).unwrap();
/// assert_eq!(cache::len(), before + 1); // one new shape, compiled once
/// ```
pub fn len() -> usize {
    CACHE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .map(Vec::len)
        .sum()
}
