//! `ffi_prep_cif` and `ffi_prep_cif_var`: a C call description becomes a
//! [`jitffi::Cif`], whose compiled stubs `ffi_call` then jumps to.
//!
//! `ffi_cif` has no spare pointer, but its `flags` word is the
//! implementation's own: it holds a tag and an index into `TABLE`, a
//! global append-only table with one entry per compiled jitffi shape.
//! Indices survive copies of the `ffi_cif` by value, and a lookup is a
//! bounds check and two loads.
//!
//! Preparing a shape seen before costs one walk of the type tree into a
//! structural key ([`KeyWriter`], in a stack buffer), a probe of a global
//! table of immutable entries (`PROBE`, no lock, no thread-local) and a
//! word-for-word verification. Only a miss takes a lock: the entry of a
//! key seen before is re-published, and a new key converts the tree into
//! jitffi types and asks jitffi's own cache (which compiles on first use).

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use jitffi::{Abi, Cif, RawEntry, Type};

use crate::ffi::*;
use crate::guard;
use crate::types::{ffi_type_to_jitffi, packed_hash, packed_key, status_of, KeyFail, KeyWriter};

/// High byte of a `flags` word written by us.
const TAG: u32 = 0x4a << 24;
/// Low 24 bits: the table index.
const INDEX_MASK: u32 = (1 << 24) - 1;
/// log2 of the entries in a chunk of the table.
const CHUNK_BITS: u32 = 8;
/// Chunks: room for 2^20 shapes, far more than code memory allows.
const CHUNKS: usize = 1 << 12;

/// A table entry: the compiled cif, its libffi-form stub (all `ffi_call`
/// reads), and the address of its closure thunk once one was asked for
/// (so that preparing a closure costs a load rather than a visit to
/// jitffi's cache). The words are 0 until set.
pub struct Slot {
    stub: AtomicUsize,
    cif: OnceLock<Cif>,
    thunk: AtomicUsize,
}

/// The table: chunks of `1 << CHUNK_BITS` entries, allocated on demand
/// and never freed, so a published entry stays put and is read without a
/// lock (a shift, a mask, two loads).
static TABLE: [AtomicPtr<Slot>; CHUNKS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];

/// Table index of every compiled shape (keyed by its stub address, unique
/// per shape); held only while appending, on the slow path.
static REGISTRY: Mutex<Option<HashMap<usize, u32>>> = Mutex::new(None);

/// The entry at `index`, if its chunk exists.
#[inline]
fn slot(index: usize) -> Option<&'static Slot> {
    let base = TABLE.get(index >> CHUNK_BITS)?.load(Ordering::Acquire);
    if base.is_null() {
        return None;
    }
    // SAFETY: every chunk has `1 << CHUNK_BITS` entries and the offset is
    // masked below that; chunks are leaked, so the reference is 'static.
    Some(unsafe { &*base.add(index & ((1 << CHUNK_BITS) - 1)) })
}

/// The table index of `cif`'s shape, appending it on first sight.
fn register(cif: Cif) -> Result<u32, ffi_status> {
    let id = cif.raw_entry() as usize;
    let mut guard = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(&i) = map.get(&id) {
        return Ok(i);
    }
    let index = map.len();
    let chunk = index >> CHUNK_BITS;
    if chunk >= CHUNKS {
        // A million distinct shapes: code memory ran out long ago.
        return Err(FFI_BAD_TYPEDEF);
    }
    if TABLE[chunk].load(Ordering::Acquire).is_null() {
        let fresh: Box<[Slot]> = (0..1 << CHUNK_BITS)
            .map(|_| Slot {
                stub: AtomicUsize::new(0),
                cif: OnceLock::new(),
                thunk: AtomicUsize::new(0),
            })
            .collect();
        // Release: the entries are initialised before readers see them.
        TABLE[chunk].store(Box::leak(fresh).as_mut_ptr(), Ordering::Release);
    }
    let s = slot(index).expect("the chunk was just made");
    let _ = s.cif.set(cif);
    // Release: `ffi_call` on another thread that finds the stub (from a
    // copied ffi_cif) also finds the code and the cif behind it.
    s.stub.store(id, Ordering::Release);
    map.insert(id, index as u32);
    Ok(index as u32)
}

/// The jitffi ABI for a libffi one.
#[cfg(target_arch = "x86_64")]
pub fn abi_of(abi: ffi_abi) -> Result<Abi, ffi_status> {
    match abi {
        FFI_UNIX64 => Ok(Abi::SysV64),
        FFI_WIN64 => Ok(Abi::Win64),
        FFI_GNUW64 => Ok(Abi::GnuW64),
        _ => Err(FFI_BAD_ABI),
    }
}

/// The jitffi ABI for a libffi one. `FFI_WIN64` (Windows on Arm64) has
/// no jitffi counterpart.
#[cfg(target_arch = "aarch64")]
pub fn abi_of(abi: ffi_abi) -> Result<Abi, ffi_status> {
    match abi {
        FFI_SYSV => Ok(Abi::Aapcs64),
        _ => Err(FFI_BAD_ABI),
    }
}

/// The jitffi cif that `ffi_prep_cif`/`ffi_prep_cif_var` prepared for
/// `cif`, or `None` when `cif` is null or was not prepared by us (its
/// `flags` do not name a published entry, or the entry's argument count
/// or ABI differ from the cif's).
///
/// # Safety
/// `cif` must be null or point at a readable `ffi_cif`.
#[inline]
pub unsafe fn prepared(cif: *const ffi_cif) -> Option<Cif> {
    // SAFETY: forwarded.
    unsafe { prepared_slot(cif) }.map(|(c, _)| c)
}

/// [`prepared`], with the table entry.
///
/// # Safety
/// As [`prepared`].
#[inline]
unsafe fn prepared_slot(cif: *const ffi_cif) -> Option<(Cif, &'static Slot)> {
    if cif.is_null() {
        return None;
    }
    // SAFETY: non-null and readable by the caller's contract.
    let (flags, nargs, abi) = unsafe { ((*cif).flags, (*cif).nargs, (*cif).abi) };
    let s = entry(flags)?;
    let c = *s.cif.get()?;
    (c.args().len() == nargs as usize && abi_of(abi) == Ok(c.abi())).then_some((c, s))
}

/// The closure thunk of the shape `ffi_prep_cif` prepared `cif` for
/// (compiled on first use, then remembered in the table entry);
/// `FFI_BAD_ABI` when `cif` was not prepared by us.
///
/// # Safety
/// As [`prepared`].
#[inline]
pub unsafe fn closure_thunk(cif: *const ffi_cif) -> Result<*const u8, ffi_status> {
    // SAFETY: forwarded.
    let Some((c, s)) = (unsafe { prepared_slot(cif) }) else {
        return Err(FFI_BAD_ABI);
    };
    // Acquire: pairs with the Release below, after which the thunk's code
    // (published by jitffi) is visible to this thread too.
    match s.thunk.load(Ordering::Acquire) {
        0 => new_thunk(c, s),
        t => Ok(t as *const u8),
    }
}

#[cold]
fn new_thunk(c: Cif, s: &Slot) -> Result<*const u8, ffi_status> {
    let t = jitffi::closure::thunk(&c).map_err(|e| status_of(&e))?;
    // Every thread stores the same address (jitffi compiles a shape's
    // thunk once).
    s.thunk.store(t as usize, Ordering::Release);
    Ok(t)
}

/// The table entry a `flags` word names, if it is one of ours.
#[inline]
fn entry(flags: u32) -> Option<&'static Slot> {
    if flags & !INDEX_MASK != TAG {
        return None;
    }
    slot((flags & INDEX_MASK) as usize)
}

/// The cif a `flags` word names, checking only that it is one of ours.
#[inline]
pub fn lookup(flags: u32) -> Option<Cif> {
    entry(flags)?.cif.get().copied()
}

/// The libffi-form stub ([`Cif::raw_entry`]) of the cif a `flags` word
/// names: the whole of `ffi_call`'s per-call work besides the call.
#[inline]
pub fn stub(flags: u32) -> Option<RawEntry> {
    match entry(flags)?.stub.load(Ordering::Acquire) {
        0 => None,
        // SAFETY: a non-zero stub word holds a `RawEntry` (see `register`)
        // for code that is never unmapped.
        a => Some(unsafe { std::mem::transmute::<usize, RawEntry>(a) }),
    }
}

/// Words of the stack buffer a [`KeyWriter`] key is built in; longer
/// keys (about 120 arguments and up) are built on the heap.
const STACK_WORDS: usize = 128;
/// Largest key built at all (on the heap); beyond it a signature is
/// converted on every preparation.
const MAX_KEY_WORDS: usize = 1 << 20;

/// log2 of the number of probe slots.
const PROBE_BITS: u32 = 12;
/// Slots of the probe table: 2-way sets of neighbouring slots.
const PROBE_SLOTS: usize = 1 << PROBE_BITS;

/// What an empty probe slot points at: an entry no key matches (its
/// length is 0 and its two key words, which a packed probe reads without
/// looking at the length, are all ones: no header is). Every entry is
/// padded to at least two key words for the same reason.
static VACANT: [u64; 4] = [0, 0, u64::MAX, u64::MAX];

/// The probe table of repeated preparations: each slot points at
/// [`VACANT`] or an [`Entry`]; a key lives in the 2-way set (`2k`,
/// `2k + 1`) its hash picks, the most recently published in the first
/// slot.
///
/// Global rather than per thread: in a shared library a thread-local
/// costs a `__tls_get_addr` call. Entries are immutable and never freed,
/// so a reader needs only an Acquire load, and a stale or replaced slot
/// is harmless: every hit is verified word for word.
static PROBE: [AtomicPtr<u64>; PROBE_SLOTS] =
    [const { AtomicPtr::new(VACANT.as_ptr().cast_mut()) }; PROBE_SLOTS];

/// Every entry ever made, by its key words: one entry per distinct key,
/// so shapes that keep evicting each other from a probe set re-publish
/// the same entries instead of leaking new ones. Held only on a probe
/// miss.
static INTERN: Mutex<Option<HashMap<&'static [u64], Entry>>> = Mutex::new(None);

/// A published key and its result, leaked:
/// `[len, meta, words..., padding to 2 words]`, `meta` being the last
/// eight bytes of the prepared `ffi_cif` (see [`meta_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry(&'static [u64]);

impl Entry {
    fn new(words: &[u64], meta: u64) -> Entry {
        let mut v = Vec::with_capacity(words.len().max(2) + 2);
        v.extend_from_slice(&[words.len() as u64, meta]);
        v.extend_from_slice(words);
        // Padding no header matches, for packed probes (see VACANT).
        v.resize(4.max(v.len()), u64::MAX);
        Entry(Box::leak(v.into_boxed_slice()))
    }

    fn words(self) -> &'static [u64] {
        &self.0[2..2 + self.0[0] as usize]
    }

    fn meta(self) -> u64 {
        self.0[1]
    }
}

/// The first slot of the probe set for `hash`.
#[inline(always)]
fn set_of(hash: u64) -> usize {
    (hash >> (64 - PROBE_BITS)) as usize & !1
}

/// The `meta` of the entry for `words` in one probe slot, if it is there.
#[inline(always)]
fn probe_slot(slot: &AtomicPtr<u64>, words: &[u64]) -> Option<u64> {
    let e = slot.load(Ordering::Acquire);
    // SAFETY: a slot holds VACANT or a leaked, immutable entry (published
    // with Release after it was written): its first word is its key
    // length, followed by `meta` and that many words.
    unsafe {
        let len = *e as usize;
        if len != words.len() {
            return None;
        }
        for (i, &w) in words.iter().enumerate() {
            if *e.add(2 + i) != w {
                return None;
            }
        }
        Some(*e.add(1))
    }
}

/// The `meta` remembered for a key, if its probe set holds it.
#[inline(always)]
fn probe(words: &[u64], hash: u64) -> Option<u64> {
    let set = set_of(hash);
    probe_slot(&PROBE[set], words).or_else(|| probe_slot(&PROBE[set | 1], words))
}

/// [`probe`] for a packed key.
#[inline(always)]
fn probe_packed(k: &[u64; 2], hash: u64) -> Option<u64> {
    #[inline(always)]
    fn one(slot: &AtomicPtr<u64>, k: &[u64; 2]) -> Option<u64> {
        let e = slot.load(Ordering::Acquire);
        // SAFETY: VACANT and every entry have at least four words. A
        // packed header (flag PACKED) is only ever the first word of a
        // 2-word packed key, so equal words mean an entry of exactly this
        // key.
        unsafe {
            let same = (*e.add(2) ^ k[0]) | (*e.add(3) ^ k[1]);
            (same == 0).then(|| *e.add(1))
        }
    }
    let set = set_of(hash);
    one(&PROBE[set], k).or_else(|| one(&PROBE[set | 1], k))
}

/// Makes `e` the first entry of its probe set, moving the previous first
/// one to the second slot (racing publications may drop an entry from
/// the table; it stays interned and comes back on its next miss).
fn publish(hash: u64, e: Entry) {
    let set = set_of(hash);
    let p = e.0.as_ptr().cast_mut();
    let first = PROBE[set].load(Ordering::Acquire);
    if first == p {
        return;
    }
    if first != VACANT.as_ptr().cast_mut() {
        PROBE[set | 1].store(first, Ordering::Release);
    }
    PROBE[set].store(p, Ordering::Release);
}

fn intern_map() -> std::sync::MutexGuard<'static, Option<HashMap<&'static [u64], Entry>>> {
    // The map is consistent at every step: a panic while holding the lock
    // leaves nothing half done.
    INTERN.lock().unwrap_or_else(|e| e.into_inner())
}

/// The interned entry for `words`, made (with `meta`) if there is none.
fn intern(words: &[u64], meta: u64) -> Entry {
    let mut guard = intern_map();
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(&e) = map.get(words) {
        return e;
    }
    let e = Entry::new(words, meta);
    map.insert(e.words(), e);
    e
}

/// Builds the key of a signature on the heap (keys too long for the
/// stack buffer, and the slow path): the words and their hash.
///
/// # Safety
/// As [`prep`].
unsafe fn heap_key(
    abi: ffi_abi,
    nargs: u32,
    fixed: Option<u32>,
    rtype: *const ffi_type,
    atypes: *const *mut ffi_type,
) -> Option<(Vec<u64>, u64)> {
    let mut cap = STACK_WORDS * 4;
    while cap <= MAX_KEY_WORDS {
        let mut buf = Vec::with_capacity(cap);
        let mut key = KeyWriter::new(buf.spare_capacity_mut());
        // SAFETY: forwarded.
        match unsafe { key.signature(abi, nargs, fixed, rtype, atypes) } {
            Ok(()) => {
                let (len, hash) = (key.words().len(), key.finish());
                // SAFETY: the key wrote its first `len` words.
                unsafe { buf.set_len(len) };
                return Some((buf, hash));
            }
            Err(KeyFail::Unkeyable) => return None,
            Err(KeyFail::Overflow) => cap *= 8,
        }
    }
    None
}

/// The last eight bytes of an `ffi_cif` prepared as table entry `index`:
/// `bytes`, then `flags`.
fn meta_of(index: u32, bytes: u32) -> u64 {
    u64::from(bytes) | u64::from(TAG | index) << 32
}

/// Writes a prepared `ffi_cif`: `w0` its first eight bytes (`abi`, then
/// `nargs`), `meta` its last eight: four 8-byte stores.
///
/// # Safety
/// `cif` is writable (and 8-aligned, as C aligns an `ffi_cif`).
#[inline(always)]
unsafe fn fill(
    cif: *mut ffi_cif,
    w0: u64,
    rtype: *mut ffi_type,
    atypes: *mut *mut ffi_type,
    meta: u64,
) {
    const _: () = assert!(std::mem::offset_of!(ffi_cif, arg_types) == 8);
    const _: () = assert!(std::mem::offset_of!(ffi_cif, rtype) == 16);
    const _: () = assert!(std::mem::offset_of!(ffi_cif, bytes) == 24);
    const _: () = assert!(std::mem::offset_of!(ffi_cif, flags) == 28);
    let w = cif.cast::<u64>();
    // SAFETY: by the contract; on our little-endian targets the first word is
    // `abi` then `nargs`, the last `bytes` then `flags`.
    unsafe {
        w.write(w0);
        w.add(1).write(atypes as u64);
        w.add(2).write(rtype as u64);
        w.add(3).write(meta);
    }
}

/// The shared body of `ffi_prep_cif` and `ffi_prep_cif_var` (`fixed` is
/// the fixed-argument count of a variadic signature), inlined into them.
///
/// The fast path, for a repeated shape of scalars only (up to 15
/// arguments): the codes packed into a two-word key, one probe of
/// `PROBE`, two compares, the `ffi_cif` written. No lock, no
/// thread-local, no call; nothing on it can panic. Anything else
/// continues in `prep_general`.
///
/// # Safety
/// `cif` must be null or writable; `rtype` and the first `nargs` entries
/// of `atypes` must be valid descriptions (see [`ffi_type_to_jitffi`]);
/// they must stay alive as long as `cif` is used.
#[inline(always)]
pub unsafe fn prep(
    cif: *mut ffi_cif,
    abi: ffi_abi,
    nargs: u32,
    fixed: Option<u32>,
    rtype: *mut ffi_type,
    atypes: *mut *mut ffi_type,
) -> ffi_status {
    // libffi accepts more fixed arguments than arguments: all are fixed.
    let fixed = fixed.map(|n| n.min(nargs));
    // The ffi_cif's first word: from here on the only form of `abi` and
    // `nargs` kept, which spares the fast path two registers.
    let w0 = u64::from(abi) | u64::from(nargs) << 32;
    // SAFETY: forwarded to our caller's contract.
    if let Some(k) = unsafe { packed_key(w0 as u32, (w0 >> 32) as u32, fixed, rtype, atypes) } {
        if let Some(meta) = probe_packed(&k, packed_hash(&k)) {
            if !cif.is_null() {
                // SAFETY: non-null, writable by the caller's contract.
                unsafe { fill(cif, w0, rtype, atypes, meta) };
                return FFI_OK;
            }
        }
    }
    let fixed = fixed.map_or(u64::MAX, u64::from);
    // SAFETY: forwarded.
    unsafe { prep_general(cif, w0, rtype, atypes, fixed) }
}

/// Everything [`prep`]'s fast path does not do: aggregates, long
/// signatures, misses, errors. Panics become `FFI_BAD_TYPEDEF`. `w0` is
/// `abi | nargs << 32` (the `ffi_cif`'s first word), `fixed` is
/// `u64::MAX` for a signature that is not variadic (five arguments, all
/// in registers, so that [`prep`] reaches it by a tail jump).
///
/// # Safety
/// As [`prep`].
#[inline(never)]
unsafe extern "C" fn prep_general(
    cif: *mut ffi_cif,
    w0: u64,
    rtype: *mut ffi_type,
    atypes: *mut *mut ffi_type,
    fixed: u64,
) -> ffi_status {
    let (abi, nargs) = (w0 as u32, (w0 >> 32) as u32);
    let fixed = u32::try_from(fixed).ok();
    guard::status(|| {
        if cif.is_null() {
            return FFI_BAD_TYPEDEF;
        }
        // SAFETY: forwarded.
        let found = unsafe { general_meta(abi, nargs, fixed, rtype, atypes) };
        match found {
            Ok(meta) => {
                // SAFETY: non-null, writable by the caller's contract.
                unsafe { fill(cif, w0, rtype, atypes, meta) };
                FFI_OK
            }
            Err(status) => status,
        }
    })
}

/// The `meta` of a signature (see [`Entry`]) by any path: its packed
/// key, its key in a stack buffer or on the heap, or a full conversion.
///
/// # Safety
/// As [`prep`].
#[inline(always)]
unsafe fn general_meta(
    abi: ffi_abi,
    nargs: u32,
    fixed: Option<u32>,
    rtype: *mut ffi_type,
    atypes: *mut *mut ffi_type,
) -> Result<u64, ffi_status> {
    // SAFETY (all blocks): forwarded to the caller's contract.
    if let Some(k) = unsafe { packed_key(abi, nargs, fixed, rtype, atypes) } {
        let hash = packed_hash(&k);
        return match probe_packed(&k, hash) {
            Some(meta) => Ok(meta),
            None => unsafe { miss(abi, nargs, fixed, rtype, atypes, Some((&k, hash)), false) },
        };
    }
    let mut buf = [MaybeUninit::<u64>::uninit(); STACK_WORDS];
    let mut key = KeyWriter::new(&mut buf);
    match unsafe { key.signature(abi, nargs, fixed, rtype, atypes) } {
        Ok(()) => {
            let hash = key.finish();
            match probe(key.words(), hash) {
                Some(meta) => Ok(meta),
                None => unsafe {
                    miss(
                        abi,
                        nargs,
                        fixed,
                        rtype,
                        atypes,
                        Some((key.words(), hash)),
                        true,
                    )
                },
            }
        }
        Err(KeyFail::Overflow) => unsafe { long_key(abi, nargs, fixed, rtype, atypes) },
        Err(KeyFail::Unkeyable) => unsafe { miss(abi, nargs, fixed, rtype, atypes, None, true) },
    }
}

/// The lookup of a key too long for the stack buffer.
///
/// # Safety
/// As [`prep`].
#[cold]
#[inline(never)]
unsafe fn long_key(
    abi: ffi_abi,
    nargs: u32,
    fixed: Option<u32>,
    rtype: *mut ffi_type,
    atypes: *mut *mut ffi_type,
) -> Result<u64, ffi_status> {
    // SAFETY: forwarded.
    let key = unsafe { heap_key(abi, nargs, fixed, rtype, atypes) };
    if let Some((words, hash)) = &key {
        if let Some(meta) = probe(words, *hash) {
            return Ok(meta);
        }
    }
    let key = key.as_ref().map(|(w, h)| (&w[..], *h));
    // SAFETY: forwarded.
    unsafe { miss(abi, nargs, fixed, rtype, atypes, key, true) }
}

/// A probe miss: the interned entry for `key` if there is one (made the
/// first of its probe set again), otherwise a full conversion, then the
/// new entry, under `key` for a packed key (conversion changes no
/// scalar), under a key rebuilt after conversion otherwise (`rebuild`:
/// conversion lays out size-0 structs, which are unkeyable before).
///
/// # Safety
/// As [`prep`].
#[cold]
#[inline(never)]
unsafe fn miss(
    abi: ffi_abi,
    nargs: u32,
    fixed: Option<u32>,
    rtype: *mut ffi_type,
    atypes: *mut *mut ffi_type,
    key: Option<(&[u64], u64)>,
    rebuild: bool,
) -> Result<u64, ffi_status> {
    if let Some((words, hash)) = key {
        let known = intern_map().as_ref().and_then(|m| m.get(words).copied());
        if let Some(e) = known {
            publish(hash, e);
            return Ok(e.meta());
        }
    }
    // SAFETY: forwarded.
    let (index, bytes) = unsafe { prep_slow(abi, nargs, fixed, rtype, atypes) }?;
    let meta = meta_of(index, bytes);
    if !rebuild {
        if let Some((words, hash)) = key {
            publish(hash, intern(words, meta));
        }
    // SAFETY: forwarded.
    } else if let Some((words, hash)) = unsafe { heap_key(abi, nargs, fixed, rtype, atypes) } {
        publish(hash, intern(&words, meta));
    }
    Ok(meta)
}

/// Converts, compiles (or finds) and registers a signature.
///
/// # Safety
/// As [`prep`].
unsafe fn prep_slow(
    abi: ffi_abi,
    nargs: u32,
    fixed: Option<u32>,
    rtype: *mut ffi_type,
    atypes: *mut *mut ffi_type,
) -> Result<(u32, u32), ffi_status> {
    let jabi = abi_of(abi).inspect_err(|_| guard::explain(|| format!("unknown ffi_abi {abi}")))?;
    // SAFETY: forwarded to the caller's contract (which also lays out any
    // unsized struct in place).
    let ret = unsafe { ffi_type_to_jitffi(rtype) }?;
    if nargs > 0 && atypes.is_null() {
        return Err(FFI_BAD_TYPEDEF);
    }
    let args = (0..nargs as usize)
        // SAFETY: `atypes` holds `nargs` entries by the caller's contract.
        .map(|i| unsafe { ffi_type_to_jitffi(*atypes.add(i)) })
        .collect::<Result<Vec<Type>, _>>()?;
    let fixed_count = fixed.map(|n| n as usize);
    let c = Cif::with_abi(jabi, &ret, &args, fixed_count).map_err(|e| {
        guard::explain(|| format!("ffi_prep_cif: {e}"));
        status_of(&e)
    })?;
    let index = register(c)?;
    Ok((index, c.plan().stack_bytes))
}

/// Lays out `struct_type` (if its size is 0) and stores its members'
/// offsets in `offsets` (when not null): `ffi_get_struct_offsets`.
///
/// # Safety
/// `struct_type` must be a valid description; `offsets` null or writable
/// for one `size_t` per member.
pub unsafe fn struct_offsets(
    abi: ffi_abi,
    struct_type: *mut ffi_type,
    offsets: *mut usize,
) -> ffi_status {
    if abi_of(abi).is_err() {
        return FFI_BAD_ABI;
    }
    // SAFETY: null-checked; readable by the caller's contract.
    if struct_type.is_null() || unsafe { (*struct_type).type_ } != FFI_TYPE_STRUCT {
        return FFI_BAD_TYPEDEF;
    }
    // SAFETY: forwarded.
    let ty = match unsafe { ffi_type_to_jitffi(struct_type) } {
        Ok(t) => t,
        Err(s) => return s,
    };
    if !offsets.is_null() {
        for (i, &off) in ty.field_offsets().unwrap_or(&[]).iter().enumerate() {
            // SAFETY: one writable entry per member, by the caller's contract.
            unsafe { *offsets.add(i) = off };
        }
    }
    FFI_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_flags_are_not_found() {
        assert!(lookup(0).is_none());
        assert!(lookup(TAG | INDEX_MASK).is_none());
        assert!(stub(TAG | INDEX_MASK).is_none());
        assert!(stub(INDEX_MASK).is_none());
    }

    #[test]
    fn the_table_names_what_was_registered() {
        let c = Cif::new(Type::i32(), &[Type::f64(), Type::u8()]).unwrap();
        let index = register(c).unwrap();
        assert_eq!(register(c).unwrap(), index);
        let entry = lookup(TAG | index).unwrap().raw_entry();
        assert_eq!(entry as usize, c.raw_entry() as usize);
        assert_eq!(stub(TAG | index).unwrap() as usize, c.raw_entry() as usize);
        assert!(stub(index).is_none(), "an untagged flags word");
    }

    use crate::types::*;
    use std::ptr::{addr_of_mut, null_mut};

    /// The probe table and the interned entries are process-wide: tests
    /// that count entries or look at probe sets run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn interned() -> usize {
        intern_map().as_ref().map_or(0, HashMap::len)
    }

    fn empty_cif() -> ffi_cif {
        ffi_cif {
            abi: 0,
            nargs: 0,
            arg_types: null_mut(),
            rtype: null_mut(),
            bytes: 0,
            flags: 0,
        }
    }

    /// `ffi_prep_cif` through [`prep`]: the status and the `ffi_cif`.
    fn prep_sig(rtype: *mut ffi_type, args: &mut [*mut ffi_type]) -> (ffi_status, ffi_cif) {
        let mut cif = empty_cif();
        // SAFETY: valid (static or live local) descriptions.
        let st = unsafe {
            prep(
                &mut cif,
                FFI_DEFAULT_ABI,
                args.len() as u32,
                None,
                rtype,
                args.as_mut_ptr(),
            )
        };
        (st, cif)
    }

    /// The jitffi return type behind a prepared `ffi_cif`.
    fn ret_of(cif: &ffi_cif) -> jitffi::Type {
        // SAFETY: a live, readable ffi_cif.
        unsafe { prepared(cif) }.expect("prepared").ret().clone()
    }

    fn f64p() -> *mut ffi_type {
        addr_of_mut!(ffi_type_double)
    }

    fn i32p() -> *mut ffi_type {
        addr_of_mut!(ffi_type_sint32)
    }

    #[test]
    fn repeated_shapes_hit_without_new_entries() {
        let _s = serial();
        let mut members = [f64p(), i32p(), null_mut()];
        let mut st = ffi_type {
            size: 0,
            alignment: 0,
            type_: FFI_TYPE_STRUCT,
            elements: members.as_mut_ptr(),
        };
        let sp: *mut ffi_type = &mut st;
        let mut scalar_args = [i32p(), f64p(), addr_of_mut!(ffi_type_pointer)];
        let mut struct_args = [sp, i32p()];
        let mut long_args = [i32p(); 200];
        let shapes: [(*mut ffi_type, &mut [*mut ffi_type]); 3] = [
            (f64p(), &mut scalar_args),
            (sp, &mut struct_args),
            (addr_of_mut!(ffi_type_void), &mut long_args),
        ];
        for (rtype, args) in shapes {
            let (st1, first) = prep_sig(rtype, args);
            assert_eq!(st1, FFI_OK);
            let after_first = interned();
            for _ in 0..3 {
                let (st2, again) = prep_sig(rtype, args);
                assert_eq!(st2, FFI_OK);
                assert_eq!((again.flags, again.bytes), (first.flags, first.bytes));
            }
            assert_eq!(interned(), after_first, "a repeat made a new entry");
        }
        // The struct was laid out by the first preparation.
        assert_eq!((st.size, st.alignment), (16, 8));
        // The long signature's key lives on the heap; all but the
        // arguments in registers take an 8-byte stack slot.
        let in_registers = if cfg!(target_arch = "aarch64") { 8 } else { 6 };
        assert_eq!(
            prep_sig(addr_of_mut!(ffi_type_void), &mut long_args)
                .1
                .bytes,
            1600 - in_registers * 8
        );
    }

    #[test]
    fn a_new_shape_is_a_miss_then_a_hit() {
        let _s = serial();
        // A shape no other test prepares: int8(13 x uint16, ...), int64
        // passed variadic.
        let mut args = [addr_of_mut!(ffi_type_uint16); 14];
        args[13] = addr_of_mut!(ffi_type_sint64);
        let rtype = addr_of_mut!(ffi_type_sint8);
        // SAFETY: static descriptions.
        let k = unsafe { packed_key(FFI_DEFAULT_ABI, 14, Some(13), rtype, args.as_ptr()) }.unwrap();
        let hash = packed_hash(&k);
        let before = interned();
        assert_eq!(probe_packed(&k, hash), None);
        let mut cif = empty_cif();
        // SAFETY: static descriptions.
        let st = unsafe {
            prep(
                &mut cif,
                FFI_DEFAULT_ABI,
                14,
                Some(13),
                rtype,
                args.as_mut_ptr(),
            )
        };
        assert_eq!(st, FFI_OK);
        assert_eq!(interned(), before + 1);
        let meta = probe_packed(&k, hash).expect("published");
        assert_eq!(meta, u64::from(cif.bytes) | u64::from(cif.flags) << 32);
        // SAFETY: as above.
        let st = unsafe {
            prep(
                &mut cif,
                FFI_DEFAULT_ABI,
                14,
                Some(13),
                rtype,
                args.as_mut_ptr(),
            )
        };
        assert_eq!(st, FFI_OK);
        assert_eq!(interned(), before + 1);
    }

    #[test]
    fn colliding_shapes_thrash_without_growth() {
        let _s = serial();
        // Scalar signatures r(a, b) whose packed keys share a probe set.
        let types = [
            addr_of_mut!(ffi_type_void),
            addr_of_mut!(ffi_type_uint8),
            addr_of_mut!(ffi_type_sint8),
            addr_of_mut!(ffi_type_uint16),
            addr_of_mut!(ffi_type_sint16),
            addr_of_mut!(ffi_type_uint32),
            addr_of_mut!(ffi_type_sint32),
            addr_of_mut!(ffi_type_uint64),
            addr_of_mut!(ffi_type_sint64),
            addr_of_mut!(ffi_type_float),
            addr_of_mut!(ffi_type_double),
            addr_of_mut!(ffi_type_pointer),
        ];
        let mut by_set: HashMap<usize, Vec<[*mut ffi_type; 3]>> = HashMap::new();
        let mut found = None;
        'search: for &r in &types {
            for &a in &types[1..] {
                for &b in &types[1..] {
                    let args = [a, b];
                    // SAFETY: static descriptions.
                    let k =
                        unsafe { packed_key(FFI_DEFAULT_ABI, 2, None, r, args.as_ptr()) }.unwrap();
                    let v = by_set.entry(set_of(packed_hash(&k))).or_default();
                    v.push([r, a, b]);
                    if v.len() == 3 {
                        found = Some(v.clone());
                        break 'search;
                    }
                }
            }
        }
        let sigs = found.expect("1331 keys over 2048 sets: a triple exists");
        let run = |sig: &[*mut ffi_type; 3]| {
            let mut args = [sig[1], sig[2]];
            let (st, cif) = prep_sig(sig[0], &mut args);
            assert_eq!(st, FFI_OK);
            // SAFETY: prepared just now.
            let c = unsafe { prepared(&cif) }.unwrap();
            // SAFETY: static descriptions.
            let expect = unsafe { [sig[1], sig[2]].map(|t| ffi_type_to_jitffi(t).unwrap()) };
            assert_eq!(c.args(), &expect[..]);
            // SAFETY: as above.
            assert_eq!(c.ret(), &unsafe { ffi_type_to_jitffi(sig[0]) }.unwrap());
            cif.flags
        };
        let flags: Vec<u32> = sigs.iter().map(run).collect();
        let count = interned();
        let set = {
            let args = [sigs[0][1], sigs[0][2]];
            // SAFETY: static descriptions.
            let k =
                unsafe { packed_key(FFI_DEFAULT_ABI, 2, None, sigs[0][0], args.as_ptr()) }.unwrap();
            set_of(packed_hash(&k))
        };
        let mut seen = HashMap::new();
        for round in 0..100 {
            for (i, sig) in sigs.iter().enumerate() {
                assert_eq!(run(sig), flags[i], "round {round}");
                // The set's first slot holds this key's one entry.
                let first = PROBE[set].load(Ordering::Acquire) as usize;
                assert_eq!(
                    *seen.entry(i).or_insert(first),
                    first,
                    "a new entry for {i}"
                );
            }
        }
        assert_eq!(interned(), count, "thrashing made entries");
    }

    #[test]
    fn a_struct_changed_in_place_gets_its_new_layout() {
        let _s = serial();
        let mut members = [f64p(), f64p(), null_mut(), null_mut()];
        let mut st = ffi_type {
            size: 0,
            alignment: 0,
            type_: FFI_TYPE_STRUCT,
            elements: members.as_mut_ptr(),
        };
        let sp: *mut ffi_type = &mut st;
        let (status, cif) = prep_sig(sp, &mut [sp]);
        assert_eq!(status, FFI_OK);
        let d2 = jitffi::Type::structure(vec![jitffi::Type::f64(); 2]).unwrap();
        assert_eq!(ret_of(&cif), d2);
        // SAFETY (all blocks): `st` and `members` are live locals nothing
        // else borrows while we write them.
        unsafe {
            // New members, size left for the library to fill in.
            *(*sp).elements = i32p();
            *(*sp).elements.add(1) = i32p();
            *(*sp).elements.add(2) = i32p();
            (*sp).size = 0;
            (*sp).alignment = 0;
        }
        let (status, cif) = prep_sig(sp, &mut [sp]);
        assert_eq!(status, FFI_OK);
        // SAFETY: as above.
        assert_eq!(unsafe { ((*sp).size, (*sp).alignment) }, (12, 4));
        let i3 = jitffi::Type::structure(vec![jitffi::Type::i32(); 3]).unwrap();
        assert_eq!(ret_of(&cif), i3);
        // A member changed, size and alignment still right: {i64, f64}.
        unsafe {
            *(*sp).elements = addr_of_mut!(ffi_type_sint64);
            *(*sp).elements.add(1) = f64p();
            *(*sp).elements.add(2) = null_mut();
            (*sp).size = 16;
            (*sp).alignment = 8;
        }
        let (status, cif) = prep_sig(sp, &mut [sp]);
        assert_eq!(status, FFI_OK);
        let mixed =
            jitffi::Type::structure(vec![jitffi::Type::i64(), jitffi::Type::f64()]).unwrap();
        assert_eq!(ret_of(&cif), mixed);
        // Back to {f64, f64} but with a wrong size: refused, not answered
        // from the entry of {f64, f64} (16, 8).
        unsafe {
            *(*sp).elements = f64p();
            (*sp).size = 24;
            (*sp).alignment = 8;
        }
        assert_eq!(prep_sig(sp, &mut [sp]).0, FFI_BAD_TYPEDEF);
    }

    #[test]
    fn a_reallocated_struct_is_read_afresh() {
        let _s = serial();
        let make = |members: Vec<*mut ffi_type>| {
            let mut list = members;
            list.push(null_mut());
            let list = Box::leak(list.into_boxed_slice());
            Box::new(ffi_type {
                size: 0,
                alignment: 0,
                type_: FFI_TYPE_STRUCT,
                elements: list.as_mut_ptr(),
            })
        };
        let mut a = make(vec![f64p(), f64p()]);
        let pa: *mut ffi_type = &mut *a;
        let (status, cif) = prep_sig(pa, &mut [pa]);
        assert_eq!(status, FFI_OK);
        assert_eq!(
            ret_of(&cif),
            jitffi::Type::structure(vec![jitffi::Type::f64(); 2]).unwrap()
        );
        drop(a);
        // Usually at the address just freed; either way a different type.
        let mut b = make(vec![i32p(), f64p()]);
        let pb: *mut ffi_type = &mut *b;
        let (status, cif) = prep_sig(pb, &mut [pb]);
        assert_eq!(status, FFI_OK);
        let b_ty = jitffi::Type::structure(vec![jitffi::Type::i32(), jitffi::Type::f64()]);
        assert_eq!(ret_of(&cif), b_ty.unwrap());
        // The same storage rewritten with yet another type, by hand.
        // SAFETY: `pb` is the live, exclusively owned box.
        unsafe {
            pb.write(*make(vec![addr_of_mut!(ffi_type_uint8); 3]));
        }
        let (status, cif) = prep_sig(pb, &mut [pb]);
        assert_eq!(status, FFI_OK);
        let u3 = jitffi::Type::structure(vec![jitffi::Type::u8(); 3]).unwrap();
        assert_eq!(ret_of(&cif), u3);
        // SAFETY: as above.
        assert_eq!(unsafe { ((*pb).size, (*pb).alignment) }, (3, 1));
    }

    #[test]
    fn bad_descriptions_are_refused_every_time() {
        let _s = serial();
        let before = interned();
        for _ in 0..3 {
            assert_eq!(prep_sig(null_mut(), &mut []).0, FFI_BAD_TYPEDEF);
            assert_eq!(prep_sig(f64p(), &mut [null_mut()]).0, FFI_BAD_TYPEDEF);
            let void = addr_of_mut!(ffi_type_void);
            assert_eq!(prep_sig(f64p(), &mut [void]).0, FFI_BAD_ARGTYPE);
            let mut cif = empty_cif();
            let mut args = [i32p()];
            // SAFETY: static descriptions.
            let st = unsafe { prep(&mut cif, 99, 1, None, f64p(), args.as_mut_ptr()) };
            assert_eq!(st, FFI_BAD_ABI);
            // SAFETY: a null cif is refused before anything is written.
            let st = unsafe {
                prep(
                    null_mut(),
                    FFI_DEFAULT_ABI,
                    1,
                    None,
                    f64p(),
                    args.as_mut_ptr(),
                )
            };
            assert_eq!(st, FFI_BAD_TYPEDEF);
        }
        assert_eq!(interned(), before);
    }

    #[test]
    fn one_struct_object_or_equal_copies_are_one_shape() {
        let _s = serial();
        let mut m = [f64p(), i32p(), f64p(), null_mut()];
        let mk = |m: &mut [*mut ffi_type; 4]| ffi_type {
            size: 0,
            alignment: 0,
            type_: FFI_TYPE_STRUCT,
            elements: m.as_mut_ptr(),
        };
        let (mut a, mut b, mut c) = (mk(&mut m), mk(&mut m), mk(&mut m));
        let (pa, pb, pc): (*mut ffi_type, *mut ffi_type, *mut ffi_type) = (&mut a, &mut b, &mut c);
        let (st, shared) = prep_sig(pa, &mut [pa, pa]);
        assert_eq!(st, FFI_OK);
        let (st, copies) = prep_sig(pa, &mut [pb, pc]);
        assert_eq!(st, FFI_OK);
        assert_eq!((shared.flags, shared.bytes), (copies.flags, copies.bytes));
        // And again, from the probe table.
        assert_eq!(prep_sig(pa, &mut [pa, pa]).1.flags, shared.flags);
        assert_eq!(prep_sig(pa, &mut [pb, pc]).1.flags, shared.flags);
        let s24 = jitffi::Type::structure(vec![
            jitffi::Type::f64(),
            jitffi::Type::i32(),
            jitffi::Type::f64(),
        ]);
        assert_eq!(ret_of(&shared), s24.unwrap());
    }
}
