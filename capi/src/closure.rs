//! Closures: `ffi_closure_alloc`, `ffi_closure_free`,
//! `ffi_prep_closure(_loc)` and the raw and Java raw variants.
//!
//! # Memory
//!
//! `ffi_closure_alloc(size, &code)` hands out a jitffi closure slot: the
//! writable address is in the slot's record (ordinary read-write data),
//! the executable one is its trampoline (a page that is never writable),
//! so no page is ever writable and executable. The trampoline puts the
//! record's address in `r11` (x86-64) or `x17` (AArch64) and jumps
//! through the record's first word, which `ffi_prep_closure_loc` points at
//! the cif shape's thunk; the thunk reads `cif`, `fun` and `user_data` at
//! record offsets 32/40/48.
//!
//! On x86-64 `ffi_closure` keeps them at exactly those offsets (its
//! 32-byte `tramp` is ours to use), so the closure is the record. On
//! AArch64 libffi's `tramp` is 24 bytes, so `ffi_closure` keeps them at
//! 24/32/40: the closure handed out starts [`RECORD_BIAS`] (8) bytes into
//! the record, and its fields land where the thunk reads them. The
//! record's thunk word sits in front of the closure, out of the client's
//! sight.
//!
//! Sizes up to 64 bytes, bias included (`ffi_closure` is 56 on x86-64,
//! 48 + 8 on AArch64), use jitffi's own slot pool, with its per-thread
//! caches. Larger ones (`ffi_raw_closure` is 72, or 64 + 8; clients also
//! embed an `ffi_closure` at the start of a bigger struct) come from size
//! classes, powers of two from 128 bytes to
//! [`memory::MAX_CLOSURE_RECORD`]: each class keeps a free list and maps a
//! chunk of slots of its record size ([`memory::map_closure_slots`], about
//! 16 KiB of records, the same W^X trampolines) only when its list is
//! empty. Nothing is unmapped, so a stale code pointer reaches the abort
//! routine of a freed record rather than unmapped memory, and the memory
//! mapped for each class never exceeds what its peak number of live
//! closures needs: churn (alloc, free, alloc...) reuses the same slots.
//!
//! A closure is told to be ours by its address alone
//! ([`memory::closure_slot_of`], a registry of chunks with a per-thread
//! memo), never by reading it, so `ffi_closure_free` of a pointer we never
//! handed out does nothing. Handing out a record stores a marker routine
//! in its thunk word ("called before preparation"), and freeing stores the
//! "freed closure called" routine, so a second free of the same record is
//! recognised and ignored instead of putting the slot twice on a list.
//!
//! # Closures in memory we did not allocate
//!
//! `ffi_prep_closure_loc(c, cif, fun, user_data, codeloc)` on memory that
//! is not one of our records (the client's RWX page, or its own double
//! mapping where `codeloc` is the executable alias of `c`) writes a
//! trampoline into `c->tramp` through the writable address. On x86-64:
//!
//! ```text
//!  0  f3 0f 1e fa           endbr64
//!  4  4c 8d 1d f5 ff ff ff  lea r11, [rip - 11]    ; the tramp itself
//! 11  ff 25 07 00 00 00     jmp qword [rip + 7]    ; the word at 24
//! 17  cc x 7                int3 padding
//! 24  <thunk address>
//! ```
//!
//! It is position-independent: executed at `codeloc`, it puts `codeloc`
//! (the executable view of the closure) in `r11`, and the thunk reads
//! `cif`, `fun` and `user_data` through that view.
//!
//! On AArch64 the 24-byte `tramp` holds:
//!
//! ```text
//!  0  10ffffd1  adr x17, .-8            ; the closure minus RECORD_BIAS
//!  4  58000070  ldr x16, .+12           ; the word at 16
//!  8  d61f0200  br  x16
//! 12  00000000  udf #0
//! 16  <thunk address>
//! ```
//!
//! `x17` is then the view's address minus 8, so that the thunk's record
//! offsets 32/40/48 reach the closure's `cif`, `fun` and `user_data` at
//! 24/32/40 (the thunk reads nothing else of the record). The new
//! instructions are made visible to instruction fetch
//! ([`memory::flush_icache`]) through the writable address and through
//! `codeloc`, the one executed; neither matters on x86-64.
//!
//! One placement libffi allows cannot work here: a closure carved out of
//! the middle of one of our records (libffi's two views are aliases at
//! every offset; ours are a record and a 16-byte trampoline, so
//! `code + offset` is another slot's trampoline). It is refused with
//! `FFI_BAD_ABI` rather than prepared into something that calls another
//! closure.
//!
//! # Raw closures
//!
//! `ffi_raw_closure` is `ffi_closure`'s layout with two more words: its
//! `translate_args` and `this_closure` sit where the thunk reads `fun` and
//! `user_data`. They get `translate_raw` (or `translate_java_raw`) and
//! the closure's writable address, so the thunk calls the translator,
//! which packs the argument pointers into 8-byte `ffi_raw` slots and calls
//! the client's raw handler with them.
//!
//! Go closures (`ffi_prep_go_closure`, `ffi_call_go`) are in [`crate::go`].

use std::ffi::c_void;
use std::mem::offset_of;
use std::panic::catch_unwind;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Mutex;

use jitffi::closure::record;
use jitffi::memory::{self, ClosureSlot};

use crate::cif::closure_thunk;
use crate::ffi::*;
use crate::guard;
use crate::raw;

/// Where an `ffi_closure` starts in a jitffi closure record: its `cif`,
/// `fun` and `user_data` must land on the record's [`record::CIF`],
/// [`record::FUN`] and [`record::USER_DATA`]. 0 on x86-64 (libffi's
/// 32-byte `tramp` ends at `CIF`), 8 on AArch64 (a 24-byte `tramp`).
pub const RECORD_BIAS: usize = record::CIF - offset_of!(ffi_closure, cif);
const _: () = assert!(offset_of!(ffi_closure, fun) + RECORD_BIAS == record::FUN);
const _: () = assert!(offset_of!(ffi_closure, user_data) + RECORD_BIAS == record::USER_DATA);
// The thunk word stays out of the closure's fields.
const _: () = assert!(record::THUNK + size_of::<usize>() <= record::CIF);

/// log2 of the first large size class (128 bytes).
const FIRST_CLASS_SHIFT: u32 = 7;
/// Large size classes: 128 bytes .. `MAX_CLOSURE_RECORD`.
const CLASSES: usize =
    (memory::MAX_CLOSURE_RECORD.trailing_zeros() - FIRST_CLASS_SHIFT + 1) as usize;

/// Free slots of each large class.
static FREE: [Mutex<Vec<ClosureSlot>>; CLASSES] = [const { Mutex::new(Vec::new()) }; CLASSES];

/// Index into [`FREE`] of the class for records of `size` (> 64) bytes.
fn class_of(size: usize) -> Option<usize> {
    let class = size.checked_next_power_of_two()?;
    (class <= memory::MAX_CLOSURE_RECORD)
        .then(|| (class.trailing_zeros().max(FIRST_CLASS_SHIFT) - FIRST_CLASS_SHIFT) as usize)
}

fn free_list(class: usize) -> std::sync::MutexGuard<'static, Vec<ClosureSlot>> {
    // A Vec of plain slots is consistent at every step: a panic elsewhere
    // while holding the lock leaves nothing half done.
    FREE[class].lock().unwrap_or_else(|e| e.into_inner())
}

/// A slot of a large class, mapping a chunk when the class has none free.
fn alloc_large(size: usize) -> Option<ClosureSlot> {
    let class = class_of(size)?;
    let mut free = free_list(class);
    if free.is_empty() {
        let fresh = memory::map_closure_slots(1 << (class as u32 + FIRST_CLASS_SHIFT)).ok()?;
        // Reversed, so that popping hands out ascending addresses.
        free.extend(fresh.into_iter().rev());
    }
    free.pop()
}

/// Where a handed-out record's thunk word points until it is prepared: a
/// call of a closure that was allocated but never prepared aborts with a
/// message rather than jumping into the freed-closure routine's.
extern "C" fn unprepared_closure_called() -> ! {
    const MSG: &[u8] =
        b"libffi (jitffi): a closure was called before ffi_prep_closure_loc prepared it\n";
    // A raw write: no allocation, no stderr lock (the caller may hold it).
    // SAFETY: writes a static buffer to descriptor 2; failure changes nothing.
    unsafe { libc::write(2, MSG.as_ptr().cast::<c_void>(), MSG.len()) };
    std::process::abort()
}

/// The thunk word of a record: the trampolines jump through it.
///
/// # Safety
/// `record` is one of our records (64-aligned, writable).
unsafe fn thunk_word(record: *mut u8) -> &'static AtomicUsize {
    // SAFETY: the word is aligned and inside the record, which is never
    // unmapped; trampolines on other threads only read it.
    unsafe { AtomicUsize::from_ptr(record.add(record::THUNK).cast::<usize>()) }
}

/// `void *ffi_closure_alloc(size_t size, void **code)`: a closure record
/// of at least `size` bytes (writable) and, in `*code`, its executable
/// address; NULL when no memory is left (or `size` exceeds
/// [`memory::MAX_CLOSURE_RECORD`]).
///
/// # Safety
/// `code` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn ffi_closure_alloc(size: usize, code: *mut *mut c_void) -> *mut c_void {
    let slot = catch_unwind(|| {
        let need = size.checked_add(RECORD_BIAS)?;
        if need <= record::SIZE {
            memory::alloc_closure_slot().ok()
        } else {
            alloc_large(need)
        }
    });
    let Ok(Some(slot)) = slot else {
        return std::ptr::null_mut();
    };
    // SAFETY: a record just handed to us, idle until now.
    unsafe { thunk_word(slot.record) }.store(
        unprepared_closure_called as *const () as usize,
        Ordering::Release,
    );
    if !code.is_null() {
        // SAFETY: non-null, writable by the caller's contract.
        unsafe { *code = slot.code.cast_mut().cast() };
    }
    // The closure is inside the record (see RECORD_BIAS).
    slot.record.wrapping_add(RECORD_BIAS).cast()
}

/// `void ffi_closure_free(void *writable)`: returns a closure from
/// [`ffi_closure_alloc`]. NULL, pointers we never handed out and records
/// already freed are ignored.
///
/// # Safety
/// No call of the closure runs or starts after this (the code address
/// then reaches an abort routine, until the slot is handed out again).
#[no_mangle]
pub unsafe extern "C" fn ffi_closure_free(writable: *mut c_void) {
    guard::or_abort("ffi_closure_free panicked", || {
        // Never dereferenced before it is found to be one of ours.
        let record = writable.cast::<u8>().wrapping_sub(RECORD_BIAS);
        let Some((slot, size)) = memory::closure_slot_of(record) else {
            return;
        };
        // SAFETY: one of our records.
        let word = unsafe { thunk_word(slot.record) };
        if word.load(Ordering::Acquire) == memory::freed_closure_routine() as usize {
            // Never handed out, or freed already: a second free would put
            // the slot on a free list twice.
            return;
        }
        if size == record::SIZE {
            // SAFETY: a live slot of the standard pool (checked above),
            // which the caller no longer calls.
            unsafe { memory::free_closure_slot(slot) };
        } else if let Some(class) = class_of(size) {
            // SAFETY: a live slot of a large class, no longer called.
            unsafe { memory::retire_closure_record(slot.record) };
            free_list(class).push(slot);
        }
    })
}

/// The trampoline written into the `tramp` of a closure in memory we did
/// not allocate (see the module docs), jumping to `thunk`.
#[cfg(target_arch = "x86_64")]
fn foreign_trampoline(thunk: *const u8) -> [u8; FFI_TRAMPOLINE_SIZE] {
    let mut t = [0xCC; FFI_TRAMPOLINE_SIZE];
    t[..17].copy_from_slice(&[
        0xF3, 0x0F, 0x1E, 0xFA, // endbr64
        0x4C, 0x8D, 0x1D, 0xF5, 0xFF, 0xFF, 0xFF, // lea r11, [rip - 11]
        0xFF, 0x25, 0x07, 0x00, 0x00, 0x00, // jmp qword [rip + 7]
    ]);
    t[24..].copy_from_slice(&(thunk as usize).to_le_bytes());
    t
}

/// The trampoline written into the `tramp` of a closure in memory we did
/// not allocate (see the module docs): the closure's address minus
/// [`RECORD_BIAS`] in `x17`, then a jump to `thunk`.
#[cfg(target_arch = "aarch64")]
fn foreign_trampoline(thunk: *const u8) -> [u8; FFI_TRAMPOLINE_SIZE] {
    const _: () = assert!(RECORD_BIAS == 8);
    let words: [u32; 4] = [
        0x10FF_FFD1, // adr x17, .-8
        0x5800_0070, // ldr x16, .+12 (the literal at 16)
        0xD61F_0200, // br x16
        0x0000_0000, // udf #0
    ];
    let mut t = [0; FFI_TRAMPOLINE_SIZE];
    for (chunk, w) in t.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    t[16..].copy_from_slice(&(thunk as usize).to_le_bytes());
    t
}

/// What a closure's record gets: the words the thunk reads.
struct Fill {
    cif: *mut ffi_cif,
    fun: usize,
    user_data: *mut c_void,
}

/// Checks `cif` and finds its thunk; the status to return otherwise.
///
/// # Safety
/// `cif` is null or a readable `ffi_cif`.
#[inline]
unsafe fn thunk_for(cif: *const ffi_cif) -> Result<*const u8, ffi_status> {
    // SAFETY: forwarded.
    unsafe { closure_thunk(cif) }
}

/// Where a closure to be prepared lives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Place {
    /// Where [`ffi_closure_alloc`] puts a closure in one of our records
    /// ([`RECORD_BIAS`] bytes in), of this many bytes.
    Ours(usize),
    /// In memory we did not hand out.
    Foreign,
}

/// Tells where the closure at `c` (of `min_size` bytes) lives, by its
/// address alone, or the status that refuses it:
///
/// - inside one of our records but not where [`ffi_closure_alloc`] put
///   it (a client carving closures out of a bigger allocation, as
///   libffi's aliased views allow): its code address would be another
///   slot's trampoline, so `FFI_BAD_ABI`;
/// - in a record too small for it (a raw closure, 72 bytes, in a 64-byte
///   record): `FFI_BAD_TYPEDEF`, before anything is written into the
///   neighbouring record.
///
/// The answer for the record found last is remembered ([`LAST_RECORD`]),
/// so re-preparing one record (closure churn gets the most recently freed
/// slot back) skips jitffi's registry of chunks.
#[inline]
fn place_of(c: *mut u8, min_size: usize) -> Result<Place, ffi_status> {
    let memo = LAST_RECORD.load(Ordering::Relaxed);
    if memo != 0 && memo & !RECORD_ALIGN_MASK == (c as usize).wrapping_sub(RECORD_BIAS) {
        return sized(1 << (memo & RECORD_ALIGN_MASK), min_size);
    }
    place_of_slow(c, min_size)
}

#[cold]
fn place_of_slow(c: *mut u8, min_size: usize) -> Result<Place, ffi_status> {
    match memory::closure_record_containing(c) {
        None => Ok(Place::Foreign),
        Some((slot, _)) if slot.record.wrapping_add(RECORD_BIAS) != c => Err(FFI_BAD_ABI),
        Some((slot, size)) => {
            let record = slot.record as usize;
            debug_assert!(size.is_power_of_two() && record & RECORD_ALIGN_MASK == 0);
            LAST_RECORD.store(record | size.trailing_zeros() as usize, Ordering::Relaxed);
            sized(size, min_size)
        }
    }
}

/// A record of `size` bytes for a closure of `min_size` (placed
/// [`RECORD_BIAS`] bytes in).
#[inline]
fn sized(size: usize, min_size: usize) -> Result<Place, ffi_status> {
    if size < min_size + RECORD_BIAS {
        Err(FFI_BAD_TYPEDEF)
    } else {
        Ok(Place::Ours(size))
    }
}

/// Low bits of a record's address, always clear: records are at least
/// 64 bytes, power-of-two sized and aligned to their size or a page.
const RECORD_ALIGN_MASK: usize = 63;

/// The start of the closure record [`place_of`] found last, with log2 of
/// its size in the low bits; 0 before any. Never stale: a record stays a
/// record of the same size for the life of the process (chunks are never
/// unmapped nor put to another use), whether handed out or free. Relaxed
/// is enough: it publishes no other data, and any thread may compute the
/// same fact itself.
static LAST_RECORD: AtomicUsize = AtomicUsize::new(0);

/// Makes the closure at `c` call `fill.fun` through `thunk`: in one of
/// our records by storing the thunk word last, elsewhere by writing the
/// foreign trampoline into `tramp` (executed at `codeloc`).
///
/// # Safety
/// `place` is [`place_of`]`(c, n)`'s answer for an `n` of at least
/// `size_of::<ffi_closure>()`; a foreign `c` is `n` writable bytes,
/// 8-aligned, whose executable alias the client calls only once this
/// returns; that alias is `codeloc` (or `codeloc` is null or `c`).
unsafe fn install(c: *mut u8, codeloc: *const u8, place: Place, thunk: *const u8, fill: Fill) {
    // SAFETY: `c` has at least an ffi_closure's writable bytes, 8-aligned
    // (our records by construction, foreign ones by the caller's
    // contract); the three words are ffi_closure's.
    unsafe {
        c.add(offset_of!(ffi_closure, cif))
            .cast::<*mut ffi_cif>()
            .write(fill.cif);
        c.add(offset_of!(ffi_closure, fun))
            .cast::<usize>()
            .write(fill.fun);
        c.add(offset_of!(ffi_closure, user_data))
            .cast::<*mut c_void>()
            .write(fill.user_data);
    }
    match place {
        Place::Ours(_) => {
            // SAFETY: `c` is RECORD_BIAS bytes into one of our records; the
            // trampoline reads the thunk word, stored last so a concurrent
            // call never sees half a record.
            unsafe { thunk_word(c.sub(RECORD_BIAS)) }.store(thunk as usize, Ordering::Release);
        }
        Place::Foreign => {
            let tramp = foreign_trampoline(thunk);
            fence(Ordering::Release);
            // SAFETY: the first FFI_TRAMPOLINE_SIZE bytes of the closure
            // are its `tramp`, writable by the caller's contract.
            unsafe { c.cast::<[u8; FFI_TRAMPOLINE_SIZE]>().write(tramp) };
            // SAFETY: `c` is mapped (just written), and so is `codeloc`,
            // its executable alias, when it is neither null nor `c`:
            // cache maintenance only, through both views.
            unsafe {
                memory::flush_icache(c, FFI_TRAMPOLINE_SIZE);
                if !codeloc.is_null() && codeloc != c.cast_const() {
                    memory::flush_icache(codeloc, FFI_TRAMPOLINE_SIZE);
                }
            }
        }
    }
}

/// `ffi_status ffi_prep_closure_loc(ffi_closure *closure, ffi_cif *cif,
/// void (*fun)(ffi_cif *, void *, void **, void *), void *user_data,
/// void *codeloc)`: calling `codeloc` runs `fun(cif, rvalue, args,
/// user_data)`. `FFI_BAD_ABI` when `cif` was not prepared by
/// `ffi_prep_cif` (or `closure` is null).
///
/// # Safety
/// `closure` is null, one of [`ffi_closure_alloc`]'s records, or a
/// writable `ffi_closure` whose executable alias is `codeloc`; `cif` is
/// null or a readable `ffi_cif` that outlives the closure.
#[no_mangle]
pub unsafe extern "C" fn ffi_prep_closure_loc(
    closure: *mut ffi_closure,
    cif: *mut ffi_cif,
    fun: Option<ffi_closure_fun>,
    user_data: *mut c_void,
    codeloc: *mut c_void,
) -> ffi_status {
    guard::status(|| {
        if closure.is_null() {
            return FFI_BAD_ABI;
        }
        // SAFETY: forwarded.
        let thunk = match unsafe { thunk_for(cif) } {
            Ok(t) => t,
            Err(s) => return s,
        };
        let place = match place_of(closure.cast(), size_of::<ffi_closure>()) {
            Ok(p) => p,
            Err(s) => return s,
        };
        let fill = Fill {
            cif,
            fun: fun.map_or(0, |f| f as usize),
            user_data,
        };
        // SAFETY: `place` is place_of's; the rest is the caller's contract.
        unsafe { install(closure.cast(), codeloc.cast(), place, thunk, fill) };
        FFI_OK
    })
}

/// `ffi_prep_closure` (deprecated): [`ffi_prep_closure_loc`] with the
/// closure itself as the code address.
///
/// # Safety
/// As [`ffi_prep_closure_loc`].
#[no_mangle]
pub unsafe extern "C" fn ffi_prep_closure(
    closure: *mut ffi_closure,
    cif: *mut ffi_cif,
    fun: Option<ffi_closure_fun>,
    user_data: *mut c_void,
) -> ffi_status {
    // SAFETY: forwarded.
    unsafe { ffi_prep_closure_loc(closure, cif, fun, user_data, closure.cast()) }
}

/// The two raw flavours: how argument values become 8-byte slots.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flavour {
    /// `ffi_raw`: narrow integers widened into one slot, other scalars
    /// copied into as many slots as their size needs, structs and complex
    /// values by address (one slot).
    Raw,
    /// `ffi_java_raw` on a 64-bit target: one slot per value, widened as
    /// for `Raw`, but 64-bit integers and doubles take two slots (the
    /// value in the first); no structs, complex or long double.
    Java,
}

/// Refuses argument types a flavour cannot pass (the Java flavour has no
/// aggregates; libffi aborts on them when the closure is called).
///
/// # Safety
/// `cif` was prepared by us (its types are valid and laid out).
unsafe fn check_raw_args(cif: *const ffi_cif, flavour: Flavour) -> ffi_status {
    if flavour == Flavour::Raw {
        return FFI_OK;
    }
    // SAFETY: a prepared cif has `nargs` valid argument types.
    let types = unsafe { arg_types(cif) };
    for &t in types {
        // SAFETY: valid types, by the contract.
        let code = unsafe { (*t).type_ };
        if matches!(
            code,
            FFI_TYPE_STRUCT | FFI_TYPE_COMPLEX | FFI_TYPE_LONGDOUBLE
        ) {
            return FFI_BAD_TYPEDEF;
        }
    }
    FFI_OK
}

/// The argument types of a prepared cif.
///
/// # Safety
/// `cif` is a readable `ffi_cif` with `nargs` valid entries in
/// `arg_types` (or none).
unsafe fn arg_types<'a>(cif: *const ffi_cif) -> &'a [*mut ffi_type] {
    // SAFETY: by the contract.
    let (n, at) = unsafe { ((*cif).nargs as usize, (*cif).arg_types) };
    if n == 0 || at.is_null() {
        return &[];
    }
    // SAFETY: `n` readable entries, by the contract.
    unsafe { std::slice::from_raw_parts(at, n) }
}

/// Slots packed on the stack; more arguments take a heap buffer.
const STACK_SLOTS: usize = 32;

/// The shared body of the translators: packs the arguments into slots
/// (with the raw API's own conversions, [`crate::raw`]) and calls the raw
/// closure's handler.
///
/// # Safety
/// Called by a thunk for a raw closure prepared by us: `cif` is its
/// prepared cif, `args` the argument pointers, `closure` the
/// `ffi_raw_closure` (readable).
unsafe fn translate(
    flavour: Flavour,
    cif: *mut ffi_cif,
    rvalue: *mut c_void,
    args: *mut *mut c_void,
    closure: *mut c_void,
) {
    guard::or_abort("a raw closure's argument translation panicked", || {
        let cl = closure.cast::<ffi_raw_closure>();
        // SAFETY: the raw closure is readable (the contract); its handler
        // and user data were stored before the closure became callable.
        let (fun, user_data) = unsafe { ((*cl).fun, (*cl).user_data) };
        let Some(fun) = fun else {
            guard::fatal("a raw closure without a handler was called");
        };
        // SAFETY: a prepared cif (for Java, without the struct and complex
        // arguments its size has no answer for: refused when prepared).
        let bytes = unsafe {
            match flavour {
                Flavour::Raw => raw::raw_size(cif),
                Flavour::Java => raw::java_raw_size(cif),
            }
        };
        let n = bytes.div_ceil(size_of::<ffi_raw>());
        let mut stack = [0u64; STACK_SLOTS];
        let mut heap = Vec::new();
        let slots: &mut [u64] = if n <= STACK_SLOTS {
            &mut stack
        } else {
            heap.resize(n, 0);
            &mut heap
        };
        let slots = slots.as_mut_ptr().cast::<ffi_raw>();
        // SAFETY: the thunk's argument array for this cif, into as many
        // slots as the size functions ask for.
        unsafe {
            match flavour {
                Flavour::Raw => raw::ptrarray_to_raw(cif, args, slots),
                Flavour::Java => raw::java_ptrarray_to_raw(cif, args, slots),
            }
        }
        // SAFETY: the client's raw handler with the arguments it expects.
        unsafe { fun(cif, rvalue, slots, user_data) };
    })
}

/// The handler of every raw closure (what its `translate_args` holds).
///
/// # Safety
/// As [`translate`].
unsafe extern "C" fn translate_raw(
    cif: *mut ffi_cif,
    rvalue: *mut c_void,
    args: *mut *mut c_void,
    closure: *mut c_void,
) {
    // SAFETY: forwarded.
    unsafe { translate(Flavour::Raw, cif, rvalue, args, closure) }
}

/// The handler of every Java raw closure. (On a little-endian 64-bit
/// target the return value needs no conversion: the handler writes it
/// as `ffi_call` returns it.)
///
/// # Safety
/// As [`translate`].
unsafe extern "C" fn translate_java_raw(
    cif: *mut ffi_cif,
    rvalue: *mut c_void,
    args: *mut *mut c_void,
    closure: *mut c_void,
) {
    // SAFETY: forwarded.
    unsafe { translate(Flavour::Java, cif, rvalue, args, closure) }
}

/// The shared body of the four raw preparations.
///
/// # Safety
/// As [`ffi_prep_raw_closure_loc`].
unsafe fn prep_raw(
    flavour: Flavour,
    closure: *mut ffi_raw_closure,
    cif: *mut ffi_cif,
    fun: Option<ffi_raw_closure_fun>,
    user_data: *mut c_void,
    codeloc: *mut c_void,
) -> ffi_status {
    guard::status(|| {
        if closure.is_null() {
            return FFI_BAD_ABI;
        }
        // SAFETY: forwarded.
        let thunk = match unsafe { thunk_for(cif) } {
            Ok(t) => t,
            Err(s) => return s,
        };
        // SAFETY: prepared (thunk_for succeeded).
        let checked = unsafe { check_raw_args(cif, flavour) };
        if checked != FFI_OK {
            return checked;
        }
        let place = match place_of(closure.cast(), size_of::<ffi_raw_closure>()) {
            Ok(p) => p,
            Err(s) => return s,
        };
        // The raw handler first: the closure becomes callable in `install`.
        // SAFETY: a writable ffi_raw_closure (the contract; place_of
        // checked the size of our records).
        unsafe {
            (*closure).fun = fun;
            (*closure).user_data = user_data;
        }
        let translator: ffi_closure_fun = match flavour {
            Flavour::Raw => translate_raw,
            Flavour::Java => translate_java_raw,
        };
        let fill = Fill {
            cif,
            fun: translator as usize,
            user_data: closure.cast(),
        };
        const _: () =
            assert!(offset_of!(ffi_raw_closure, translate_args) == offset_of!(ffi_closure, fun));
        const _: () = assert!(
            offset_of!(ffi_raw_closure, this_closure) == offset_of!(ffi_closure, user_data)
        );
        // SAFETY: `place` is place_of's; the rest is the caller's contract.
        unsafe { install(closure.cast(), codeloc.cast(), place, thunk, fill) };
        FFI_OK
    })
}

/// `ffi_status ffi_prep_raw_closure_loc(ffi_raw_closure *closure,
/// ffi_cif *cif, void (*fun)(ffi_cif *, void *, ffi_raw *, void *),
/// void *user_data, void *codeloc)`: calling `codeloc` runs `fun` with
/// the arguments in `ffi_raw` slots (see `ffi_ptrarray_to_raw`).
///
/// # Safety
/// `closure` is null, a record of at least 72 bytes from
/// [`ffi_closure_alloc`], or a writable `ffi_raw_closure` whose executable
/// alias is `codeloc`; `cif` as for [`ffi_prep_closure_loc`].
#[no_mangle]
pub unsafe extern "C" fn ffi_prep_raw_closure_loc(
    closure: *mut ffi_raw_closure,
    cif: *mut ffi_cif,
    fun: Option<ffi_raw_closure_fun>,
    user_data: *mut c_void,
    codeloc: *mut c_void,
) -> ffi_status {
    // SAFETY: forwarded.
    unsafe { prep_raw(Flavour::Raw, closure, cif, fun, user_data, codeloc) }
}

/// `ffi_prep_raw_closure`: [`ffi_prep_raw_closure_loc`] with the closure
/// itself as the code address.
///
/// # Safety
/// As [`ffi_prep_raw_closure_loc`].
#[no_mangle]
pub unsafe extern "C" fn ffi_prep_raw_closure(
    closure: *mut ffi_raw_closure,
    cif: *mut ffi_cif,
    fun: Option<ffi_raw_closure_fun>,
    user_data: *mut c_void,
) -> ffi_status {
    // SAFETY: forwarded.
    unsafe { prep_raw(Flavour::Raw, closure, cif, fun, user_data, closure.cast()) }
}

/// `ffi_prep_java_raw_closure_loc`: as [`ffi_prep_raw_closure_loc`], with
/// Java's slot rules (one 8-byte slot per value, two for 64-bit integers
/// and doubles). Struct, complex and long double arguments are refused
/// with `FFI_BAD_TYPEDEF` (libffi accepts them and aborts, or misplaces
/// the arguments, when the closure is called).
///
/// # Safety
/// As [`ffi_prep_raw_closure_loc`].
#[no_mangle]
pub unsafe extern "C" fn ffi_prep_java_raw_closure_loc(
    closure: *mut ffi_raw_closure,
    cif: *mut ffi_cif,
    fun: Option<ffi_raw_closure_fun>,
    user_data: *mut c_void,
    codeloc: *mut c_void,
) -> ffi_status {
    // SAFETY: forwarded.
    unsafe { prep_raw(Flavour::Java, closure, cif, fun, user_data, codeloc) }
}

/// `ffi_prep_java_raw_closure`: [`ffi_prep_java_raw_closure_loc`] with the
/// closure itself as the code address.
///
/// # Safety
/// As [`ffi_prep_raw_closure_loc`].
#[no_mangle]
pub unsafe extern "C" fn ffi_prep_java_raw_closure(
    closure: *mut ffi_raw_closure,
    cif: *mut ffi_cif,
    fun: Option<ffi_raw_closure_fun>,
    user_data: *mut c_void,
) -> ffi_status {
    // SAFETY: forwarded.
    unsafe { prep_raw(Flavour::Java, closure, cif, fun, user_data, closure.cast()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes() {
        assert_eq!(class_of(65), Some(0));
        assert_eq!(class_of(72), Some(0));
        assert_eq!(class_of(128), Some(0));
        assert_eq!(class_of(129), Some(1));
        assert_eq!(class_of(4096), Some(5));
        assert_eq!(class_of(memory::MAX_CLOSURE_RECORD), Some(CLASSES - 1));
        assert_eq!(class_of(memory::MAX_CLOSURE_RECORD + 1), None);
        assert_eq!(class_of(usize::MAX), None);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn foreign_trampoline_bytes() {
        let t = foreign_trampoline(0x1122_3344_5566_7788 as *const u8);
        assert_eq!(&t[..4], &[0xF3, 0x0F, 0x1E, 0xFA]);
        // lea r11, [rip - 11]: the rip after it, minus 11, is the start.
        assert_eq!(i32::from_le_bytes(t[7..11].try_into().unwrap()), -11);
        // jmp [rip + 7]: the rip after it (17), plus 7, is the word at 24.
        assert_eq!(&t[11..13], &[0xFF, 0x25]);
        assert_eq!(i32::from_le_bytes(t[13..17].try_into().unwrap()), 24 - 17);
        assert!(t[17..24].iter().all(|&b| b == 0xCC));
        assert_eq!(
            u64::from_le_bytes(t[24..].try_into().unwrap()),
            0x1122_3344_5566_7788
        );
    }

    #[test]
    #[cfg(target_arch = "aarch64")]
    fn foreign_trampoline_bytes() {
        let t = foreign_trampoline(0x1122_3344_5566_7788 as *const u8);
        let word = |i: usize| u32::from_le_bytes(t[4 * i..4 * i + 4].try_into().unwrap());
        // adr x17, #-8: op 0, immlo = 0, immhi = -2 (19 bits), rd = 17.
        assert_eq!(word(0) & 0x9F00_0000, 0x1000_0000);
        assert_eq!(word(0) & 0x1F, 17);
        let imm = ((word(0) >> 5 & 0x7FFFF) << 2 | (word(0) >> 29 & 3)) as i32;
        assert_eq!(imm << 11 >> 11, -(RECORD_BIAS as i32));
        // ldr x16, literal: the literal is 16 bytes into the tramp.
        assert_eq!(word(1) & 0xFF00_0000, 0x5800_0000);
        assert_eq!(word(1) & 0x1F, 16);
        assert_eq!(4 + 4 * (word(1) >> 5 & 0x7FFFF) as usize, 16);
        assert_eq!(word(2), 0xD61F_0200, "br x16");
        assert_eq!(word(3), 0, "udf #0");
        assert_eq!(
            u64::from_le_bytes(t[16..].try_into().unwrap()),
            0x1122_3344_5566_7788
        );
    }

    /// A stand-in thunk returning the register the trampolines load with
    /// the record's address.
    #[cfg(target_arch = "x86_64")]
    const RETURN_RECORD: &[u8] = &[0x4C, 0x89, 0xD8, 0xC3]; // mov rax, r11; ret
    #[cfg(target_arch = "aarch64")]
    const RETURN_RECORD: &[u8] = &[
        0xE0, 0x03, 0x11, 0xAA, // mov x0, x17
        0xC0, 0x03, 0x5F, 0xD6, // ret
    ];

    #[test]
    fn a_foreign_trampoline_runs_into_its_thunk_with_the_record() {
        let thunk = memory::publish(RETURN_RECORD).unwrap();
        // SAFETY: `thunk` is the code just published.
        unsafe { memory::flush_icache(thunk, RETURN_RECORD.len()) };
        let page = 4096;
        // SAFETY: a fresh private mapping, checked below; RWX is the
        // client's business in libffi's model, which this plays.
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(mem, libc::MAP_FAILED);
        // The closure deliberately not at the start of the page: the
        // trampoline must compute its own address.
        let c = mem.cast::<u8>().wrapping_add(64);
        let fill = Fill {
            cif: std::ptr::null_mut(),
            fun: 0,
            user_data: std::ptr::null_mut(),
        };
        // SAFETY: `c` has an ffi_closure's bytes of RWX memory, 8-aligned,
        // and is its own executable view.
        unsafe { install(c, c, Place::Foreign, thunk, fill) };
        // SAFETY: the trampoline just written jumps to RETURN_RECORD, a
        // complete `usize f(void)`.
        let f = unsafe { std::mem::transmute::<*mut u8, extern "C" fn() -> usize>(c) };
        assert_eq!(f(), c as usize - RECORD_BIAS);
        // SAFETY: mapped above, no longer used.
        unsafe { libc::munmap(mem, page) };
    }

    #[test]
    fn closures_from_alloc_are_found_from_their_address() {
        let mut code = std::ptr::null_mut();
        // SAFETY: `code` is writable.
        let c = unsafe { ffi_closure_alloc(size_of::<ffi_closure>(), &mut code) };
        if c.is_null() {
            // No closure slots on this target yet.
            assert!(memory::alloc_closure_slot().is_err());
            return;
        }
        let record = c.cast::<u8>().wrapping_sub(RECORD_BIAS);
        let (slot, size) = memory::closure_slot_of(record).expect("one of ours");
        assert_eq!(
            (slot.code.cast::<c_void>(), size),
            (code.cast_const(), record::SIZE)
        );
        assert_eq!(
            place_of(c.cast(), size_of::<ffi_closure>()),
            Ok(Place::Ours(record::SIZE))
        );
        // The record's own start is a closure only where they coincide.
        let at_record = if RECORD_BIAS == 0 {
            Ok(Place::Ours(record::SIZE))
        } else {
            Err(FFI_BAD_ABI)
        };
        assert_eq!(place_of(record, 8), at_record);
        assert_eq!(
            place_of(c.cast(), size_of::<ffi_raw_closure>()),
            Err(FFI_BAD_TYPEDEF)
        );
        // SAFETY: allocated above, never prepared nor called.
        unsafe { ffi_closure_free(c) };
        // A raw closure needs a record from a large class.
        // SAFETY: as above.
        let r = unsafe { ffi_closure_alloc(size_of::<ffi_raw_closure>(), &mut code) };
        assert!(!r.is_null());
        assert_eq!(
            place_of(r.cast(), size_of::<ffi_raw_closure>()),
            Ok(Place::Ours(128))
        );
        // SAFETY: as above.
        unsafe { ffi_closure_free(r) };
    }
}
