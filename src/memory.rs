//! Executable memory: a W^X code arena.
//!
//! The stage after [`crate::emit`]: it takes finished machine code and
//! returns an address it can run at, without ever making a page writable
//! and executable at once.
//!
//! ```
//! use jitffi::memory::{CodeArena, Strategy};
//! let arena = CodeArena::new(Strategy::DoubleMapped).unwrap();
//! let p = arena.publish(&[0xB8, 0x2A, 0x00, 0x00, 0x00, 0xC3]).unwrap(); // mov eax, 42; ret
//! // SAFETY: the bytes are a complete x86-64 function `int f(void)`.
//! let f = unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> i32>(p) };
//! assert_eq!(f(), 42);
//! ```
//!
//! # The invariant
//!
//! No page of this process is ever writable and executable at the same
//! time. A bug that lets an attacker write somewhere then cannot turn that
//! write into code at a known executable address, and hardened kernels
//! (SELinux `execmem`, PaX `MPROTECT`) that refuse `PROT_WRITE | PROT_EXEC`
//! keep working. `tests/wx_audit.rs` checks this against `/proc/self/maps`.
//!
//! # Double mapping (the normal path)
//!
//! Code lives in *chunks* of 64 KiB (or a large request rounded to pages),
//! each mapped twice, both views `MAP_SHARED`:
//!
//! ```text
//!                  one set of physical pages (shmem)
//!               |                                   |
//!    RW view (rw-s): the only place we write    RX view (r-xs): the only place we run
//! ```
//!
//! Both views reach the same physical pages, so bytes written through the RW
//! view are immediately the instructions of the RX view, and neither view
//! is ever writable and executable. That buys what a `mprotect` flip
//! cannot: many stubs share one page (stubs are bump-allocated, 16-byte
//! aligned, the gaps filled with a trapping byte), published one at a time.
//! The RX view is placed just below jitffi's own code (see `map_near`).
//! The pages come from one of two sources:
//!
//! - [`Strategy::DoubleMappedAnon`] (the default): shared anonymous memory
//!   (`mmap(MAP_SHARED | MAP_ANONYMOUS)`) as the RW view, and a second
//!   view of the same pages made by `mremap` with an old size of 0 onto a
//!   reserved address, then turned read-execute. `/proc/self/maps` shows
//!   both as `/dev/zero (deleted)`, which `perf` treats as anonymous
//!   memory: it names samples there from the perf map ([`crate::perfmap`]).
//! - [`Strategy::DoubleMapped`]: an anonymous in-memory file
//!   (`memfd_create("jitffi-code")`) sized with `ftruncate`, sealed against
//!   resizing, mapped RW and RX, its descriptor closed once mapped. `perf`
//!   takes `memfd:jitffi-code (deleted)` for a file and ignores the perf map
//!   for it.
//!
//! Measured on this project's Zen 4 machine, the two are alike in
//! everything but names and policy: a new arena (both views, the trapping
//! fill) ~67 us either way, a small publish ~160 ns, a call through a stub
//! 1.4 ns, both placed near jitffi, both W^X, both shared across `fork`.
//! They differ in which hardening refuses them. SELinux `deny_execmem`
//! and PaX `MPROTECT` refuse to make anonymous memory executable (shared
//! anonymous memory included), but let a memfd's pages be mapped RX as a
//! file (SELinux then checks `execute` on the memfd instead).
//! `vm.memfd_noexec = 2` refuses executable memfds, but not anonymous
//! memory. Closure trampoline pages (below) already try anonymous memory
//! first and a memfd second, and the arena does the same.
//!
//! # Choosing ([`CodeArena::auto`])
//!
//! The global arena is created once, on first use, with the first strategy
//! this environment allows, in this order: [`Strategy::DoubleMappedAnon`],
//! [`Strategy::DoubleMapped`], [`Strategy::MprotectFlip`]. Each is probed
//! when tried (a chunk mapped, or a page flipped), so a refusal shows at
//! once, and what was refused is undone. `JITFFI_FORCE_MPROTECT=1` forces
//! the last. With `JITFFI_DEBUG` set, one line on stderr says which was
//! chosen and why the better ones were refused.
//!
//! The fallback, [`Strategy::MprotectFlip`], maps fresh anonymous pages
//! read-write for each publish, copies the code in, and flips them to
//! read-execute with `mprotect`. Pages are never made writable again once
//! executable, so neighbours cannot be added to a flipped page: every
//! publish costs at least one whole page (4 KiB for a ~50-byte stub), and
//! code cannot be patched after publication.
//!
//! # Fork
//!
//! Code published before a `fork()` stays valid in both processes: it is
//! never rewritten. But the double-mapped views are `MAP_SHARED`, so after
//! a fork the child holds the parent's chunks, physically, and both would
//! carve their next stubs out of the same free tail, at the same address,
//! overwriting each other's fresh code. Each chunk therefore records the
//! pid that carves it: a process that finds another pid's chunk current
//! (a forked child, at its first publish) leaves that tail to its owner
//! and maps a chunk of its own. The check is one `getpid` per publish;
//! calls pay nothing. (A child in a new pid namespace whose pid happens to
//! equal its parent's, both being `1`, would not be told apart.) The
//! mprotect fallback needs nothing: its pages are private, copied on
//! write, and every publish maps fresh ones. Closure chunks are private
//! too (`tests/arena_fork.rs` checks all of this with a real fork). As with
//! any lock, a fork while another thread is inside a publish leaves the
//! child's arena lock held.
//!
//! Code memory is never unmapped, not even when a [`CodeArena`] is dropped:
//! published addresses are cached for the life of the process.
//!
//! # Closure slots
//!
//! A closure needs a code address of its own, made while the program runs,
//! and creating and freeing closures must be cheap (libffi takes about
//! 22 ns for allocate + prepare + free). Its code is therefore never
//! written per closure: all that varies lives in a 64-byte *record* of
//! ordinary data memory (layout in [`crate::closure::record`]), and a
//! fixed *trampoline* finds its record by position. Slots come in chunks
//! of [`CLOSURE_CHUNK_SLOTS`], five contiguous pages mapped near jitffi:
//!
//! ```text
//!  base            base + 4 KiB                                 base + 20 KiB
//!   | code page r-x  | data pages rw- (never executable)                   |
//!   | t0 t1 .. t255  | r0 r1 r2 ................................... r255    |
//!      |               ^
//!      +--- lea r11, [rip + d] -- ti finds ri (d = 4096 + 48 i - 11)
//!
//!  ti (16 bytes): endbr64; lea r11, [rip + d]; jmp qword [r11]; int3; int3
//!  ri (64 bytes): [THUNK] [CIF_STORAGE] .. [CIF] [FUN] [USER_DATA] ..
//! ```
//!
//! A call of `ti` arrives with the caller's arguments untouched, puts the
//! record's address in `r11` (a scratch register no C argument uses), and
//! jumps through the record's first word to the thunk of the closure's
//! signature, which reads the handler and its data from `r11`. On AArch64
//! the same 16 bytes are `adrp x17, ri; add x17, x17, :lo12:ri; ldr x16,
//! [x17]; br x16`: the record in `x17` (the second intra-procedure-call
//! scratch register, which no argument uses), reach +-4 GiB. The code
//! page is written once, before it becomes read-execute with `mprotect`
//! (its instruction cache made coherent once, on AArch64), and never
//! again, so this works the same under both strategies and needs no
//! instruction-cache maintenance or cross-core serialisation when a slot
//! is reused. Where policy forbids executable anonymous memory but
//! allows executable memfds (SELinux `deny_execmem`), the filled code page
//! is replaced in place by a read-execute view of a sealed memfd
//! (`jitffi-closures`) holding the same bytes.
//!
//! Free slots sit in a global list and, up to 64 per thread, in a
//! thread-local cache refilled and drained 32 at a time, so allocating and
//! freeing usually takes no lock; a thread's cache returns to the global
//! list when the thread exits, and any thread may free any slot. A freed
//! record's thunk word points at a routine that reports "a freed closure
//! was called" and aborts, and its other words are zeroed; chunks are never
//! unmapped, so a stale code pointer reaches that routine (until the slot
//! is reused) instead of unmapped memory or another closure's code.
//! [`closure_slot_bytes`] counts what the chunks hold.
//!
//! Chunks of larger records (any power of two up to
//! [`MAX_CLOSURE_RECORD`], for libffi's `ffi_closure_alloc` of bigger
//! sizes) are the same drawing with a wider record stride and fewer slots;
//! [`map_closure_slots`] maps one for a caller that pools them itself.
//! Every chunk is registered, so [`closure_slot_of`] tells whether an
//! address is one of jitffi's records, without touching it.
//!
//! # Limits
//!
//! Double mapping keeps every *page* W^X, but the process still holds a
//! writable alias of its code. The RW view goes wherever the kernel puts
//! it, usually next to other recent mappings, so an attacker who can read
//! `/proc/self/maps` or write anywhere can find the alias; placing the RW
//! view at a random address would harden this. The fallback has no alias
//! at all.

use std::ffi::c_void;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use memmap2::MmapOptions;

use crate::error::{Error, Result};

/// How code pages are made executable.
///
/// ```
/// use jitffi::memory::{CodeArena, Strategy};
/// let arena = CodeArena::new(Strategy::MprotectFlip).unwrap();
/// assert_eq!(arena.strategy(), Strategy::MprotectFlip);
/// let p = arena.publish(&[0xB8, 0x07, 0x00, 0x00, 0x00, 0xC3]).unwrap(); // mov eax, 7; ret
/// // SAFETY: the bytes are a complete x86-64 function `int f(void)`.
/// let f = unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> i32>(p) };
/// assert_eq!(f(), 7);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// One memfd mapped twice: a RW view for writing, a RX view for running.
    /// Profilers see the RX view as a file (`memfd:jitffi-code`), so `perf`
    /// does not name its code from the perf map.
    DoubleMapped,
    /// Shared anonymous memory mapped twice: a RW view for writing, and a
    /// second view of the same pages (made with `mremap`, then turned RX)
    /// for running. Works like [`DoubleMapped`](Self::DoubleMapped); both
    /// views show as `/dev/zero (deleted)`, which `perf` treats as
    /// anonymous memory and names from the perf map
    /// ([`crate::perfmap`]). Refused where anonymous memory may not become
    /// executable (SELinux `deny_execmem`, PaX `MPROTECT`).
    DoubleMappedAnon,
    /// Anonymous pages written RW, then flipped to RX with `mprotect`.
    MprotectFlip,
}

impl Strategy {
    /// Whether this strategy writes through a second, writable view
    /// (bump-allocating many stubs per page).
    fn double_mapped(self) -> bool {
        matches!(self, Strategy::DoubleMapped | Strategy::DoubleMappedAnon)
    }

    /// What the strategy does, for the `JITFFI_DEBUG` note.
    fn describe(self) -> &'static str {
        match self {
            Strategy::DoubleMappedAnon => {
                "shared anonymous memory mapped twice (RW view, RX view made with mremap)"
            }
            Strategy::DoubleMapped => "a memfd mapped twice (RW view, RX view)",
            Strategy::MprotectFlip => {
                "pages written, then flipped to RX with mprotect (at least one page per stub)"
            }
        }
    }
}

/// Size of a regular chunk; larger requests get a chunk of their own.
///
/// ```
/// use jitffi::memory::{CodeArena, Strategy, CHUNK_SIZE};
/// // A double-mapped arena maps its first chunk up front.
/// let arena = CodeArena::new(Strategy::DoubleMapped).unwrap();
/// assert_eq!(arena.mapped_bytes(), CHUNK_SIZE);
/// ```
pub const CHUNK_SIZE: usize = 64 * 1024;

/// Alignment of every block (a cache-line fraction that keeps branch
/// targets cheap to fetch).
///
/// ```
/// use jitffi::memory::{CodeArena, Strategy, BLOCK_ALIGN};
/// let arena = CodeArena::new(Strategy::DoubleMapped).unwrap();
/// let a = arena.publish(&[0xC3]).unwrap() as usize; // ret
/// let b = arena.publish(&[0xC3]).unwrap() as usize;
/// assert_eq!(a % BLOCK_ALIGN, 0);
/// assert_eq!(b - a, BLOCK_ALIGN); // small stubs share a page
/// ```
pub const BLOCK_ALIGN: usize = 16;

/// Fills the space around blocks so that a stray jump traps: `int3` on
/// x86, and on AArch64 the all-zero word is `udf #0`.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const PAD_BYTE: u8 = 0xCC;
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
const PAD_BYTE: u8 = 0x00;

/// The name the memfd carries in `/proc/self/maps` (`/memfd:jitffi-code`).
///
/// ```
/// use jitffi::memory::{CodeArena, Strategy, MEMFD_NAME};
/// let _arena = CodeArena::new(Strategy::DoubleMapped).unwrap();
/// let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
/// assert!(maps.contains(&format!("/memfd:{}", MEMFD_NAME.to_str().unwrap())));
/// ```
pub const MEMFD_NAME: &std::ffi::CStr = c"jitffi-code";

/// One block of code memory, as the allocator hands it out.
///
/// Write the code through `rw`, then [`CodeArena::commit`] it and run it
/// at `rx`. Under double mapping `rw` is a separate writable view; under
/// [`Strategy::MprotectFlip`] `rw == rx`, and the block must
/// not be written after commit (the page is RX). Closures never rewrite
/// published code: they use slots (see the module docs).
#[derive(Debug)]
pub(crate) struct CodeBlock {
    /// Writable address of the block.
    pub(crate) rw: *mut u8,
    /// Executable address of the block.
    pub(crate) rx: *const u8,
    /// Usable length in bytes (the request rounded up to the block
    /// granularity; the tail is pre-filled with the trapping byte).
    pub(crate) len: usize,
}

/// A double-mapped chunk being bump-allocated.
struct Chunk {
    rw: NonNull<u8>,
    rx: NonNull<u8>,
    size: usize,
    used: usize,
    /// The process that carves blocks out of this chunk. The views are
    /// `MAP_SHARED`, so a forked child holds the same pages: it must leave
    /// the free tail to the parent (see `CodeArena::reserve_shared`).
    owner: u32,
}

/// Allocator state, behind the arena's mutex.
struct Inner {
    /// The chunk small requests are carved from; older chunks are full
    /// (their tails too short for the request that retired them).
    current: Option<Chunk>,
    /// Bytes of RX mappings held (equal to the RW bytes for double mapping).
    mapped: usize,
}

// SAFETY: the raw pointers in `Inner` name process-wide mappings that are
// never unmapped; they carry no thread affinity, and every access to the
// allocator state goes through the arena's mutex.
unsafe impl Send for Inner {}

/// A W^X code arena. See the module docs for the scheme.
///
/// ```
/// use jitffi::memory::{CodeArena, Strategy};
/// let arena = CodeArena::new(Strategy::DoubleMapped).unwrap();
/// let p = arena.publish(&[0xB8, 0x2A, 0x00, 0x00, 0x00, 0xC3]).unwrap(); // mov eax, 42; ret
/// // SAFETY: the bytes are a complete x86-64 function `int f(void)`.
/// let f = unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> i32>(p) };
/// assert_eq!(f(), 42);
/// ```
pub struct CodeArena {
    strategy: Strategy,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for CodeArena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeArena")
            .field("strategy", &self.strategy)
            .field("mapped_bytes", &self.mapped_bytes())
            .finish()
    }
}

fn os_error(what: &str) -> Error {
    Error::CodeMemory {
        reason: format!("{what}: {}", std::io::Error::last_os_error()),
    }
}

fn io_error(what: &str, e: &std::io::Error) -> Error {
    Error::CodeMemory {
        reason: format!("{what}: {e}"),
    }
}

fn too_large(len: usize) -> Error {
    Error::CodeMemory {
        reason: format!("a code block of {len} bytes is too large to map"),
    }
}

fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf only reads a system constant.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(p)
            .ok()
            .filter(|p| p.is_power_of_two())
            .unwrap_or(4096)
    })
}

/// `n` rounded up to a multiple of `to` (a power of two), or `None` on
/// overflow.
fn round_up(n: usize, to: usize) -> Option<usize> {
    Some(n.checked_add(to - 1)? & !(to - 1))
}

/// Makes freshly written code at `ptr..ptr + len` visible to instruction
/// fetch. A no-op on x86, whose instruction cache is coherent with data
/// writes; elsewhere the compiler runtime's `__clear_cache` (cleans the
/// data cache to the point of unification, invalidates the instruction
/// cache, and synchronises this core).
///
/// Other cores that may have prefetched the old bytes of a *reused* block
/// additionally need a core-serialising event before running it; fresh
/// memory never executed before does not.
///
/// # Safety
///
/// `ptr..ptr + len` must lie inside readable mappings: the cache
/// maintenance instructions fault on unmapped addresses.
///
/// ```
/// use jitffi::memory::{self, flush_icache};
/// let code = [0xB8, 0x05, 0x00, 0x00, 0x00, 0xC3]; // mov eax, 5; ret
/// let p = memory::publish(&code).unwrap();
/// // SAFETY: `p..p + 6` is the code just published, mapped for good.
/// unsafe { flush_icache(p, code.len()) };
/// // SAFETY: the bytes are a complete x86-64 function `int f(void)`.
/// let f = unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> i32>(p) };
/// assert_eq!(f(), 5);
/// ```
#[inline]
pub unsafe fn flush_icache(ptr: *const u8, len: usize) {
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
    {
        unsafe extern "C" {
            fn __clear_cache(start: *mut libc::c_char, end: *mut libc::c_char);
        }
        let start = ptr.cast_mut().cast::<libc::c_char>();
        let end = ptr.wrapping_add(len).cast_mut().cast::<libc::c_char>();
        // SAFETY: the caller guarantees the range is mapped; __clear_cache
        // only performs cache maintenance on it.
        unsafe { __clear_cache(start, end) };
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    let _ = (ptr, len);
}

/// Maps one chunk of `size` bytes (a multiple of the page size) twice the
/// way `strategy` (a double-mapped one) says, and fills it with the
/// trapping byte.
fn map_chunk(strategy: Strategy, size: usize) -> Result<Chunk> {
    let (rw, rx) = match strategy {
        Strategy::DoubleMappedAnon => map_anon_views(size)?,
        _ => map_memfd_views(size)?,
    };
    // SAFETY: the RW view is `size` writable bytes that nothing else uses yet.
    unsafe { std::ptr::write_bytes(rw.as_ptr(), PAD_BYTE, size) };
    Ok(Chunk {
        rw,
        rx,
        size,
        used: 0,
        owner: std::process::id(),
    })
}

/// The RW and RX views of a fresh memfd of `size` bytes.
fn map_memfd_views(size: usize) -> Result<(NonNull<u8>, NonNull<u8>)> {
    // SAFETY: `MEMFD_NAME` is a NUL-terminated string; memfd_create creates a new
    // descriptor and touches no existing memory.
    let fd = unsafe {
        libc::memfd_create(
            MEMFD_NAME.as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(os_error("memfd_create"));
    }
    // SAFETY: `fd` was just returned by memfd_create and nothing else owns it.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let len = u64::try_from(size).map_err(|_| too_large(size))?;
    file.set_len(len).map_err(|e| io_error("ftruncate", &e))?;
    // Best-effort hardening: a shrunk file would turn calls into SIGBUS.
    // Failure (an old kernel) changes nothing else, so it is not an error.
    // SAFETY: F_ADD_SEALS on a descriptor we own; it reads no memory.
    unsafe {
        libc::fcntl(
            file.as_raw_fd(),
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
        )
    };
    let mut opts = MmapOptions::new();
    opts.len(size);
    // SAFETY: the file is our private memfd of exactly `size` bytes, sealed
    // against resizing, so the mapping cannot be truncated under us.
    let mut rw = unsafe { opts.map_mut(&file) }.map_err(|e| io_error("mapping the RW view", &e))?;
    let rx = map_near(
        size,
        libc::PROT_READ | libc::PROT_EXEC,
        libc::MAP_SHARED,
        file.as_raw_fd(),
    )
    .map_err(|e| io_error("mapping the RX view", &e))?;
    let rw_ptr = NonNull::new(rw.as_mut_ptr()).ok_or_else(|| too_large(size))?;
    let rx_ptr = NonNull::new(rx).ok_or_else(|| too_large(size))?;
    // Code memory lives for the process: forget the owners so nothing ever
    // unmaps it. The descriptor closes when `file` drops; the mappings keep
    // the memfd alive.
    std::mem::forget(rw);
    Ok((rw_ptr, rx_ptr))
}

/// The RW and RX views of `size` bytes of fresh shared anonymous memory.
///
/// `mremap` with an old size of 0 does not move a shared mapping but makes
/// a second mapping of the same pages. It lands on a `PROT_NONE`
/// reservation placed by [`map_near`] (`MREMAP_FIXED` replaces only that
/// reservation of ours), and is turned read-execute before anything is
/// written: it is never writable and executable at once.
fn map_anon_views(size: usize) -> Result<(NonNull<u8>, NonNull<u8>)> {
    // SAFETY: a fresh mapping wherever the kernel likes; nothing existing
    // is affected.
    let rw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if rw == libc::MAP_FAILED {
        return Err(os_error("mapping shared anonymous memory"));
    }
    // Undoes what is mapped so far if a later step fails.
    let fail = |err: Error, also: Option<*mut c_void>| {
        for p in [Some(rw), also].into_iter().flatten() {
            // SAFETY: `p` is a mapping of `size` bytes made here, from which
            // nothing has been handed out.
            unsafe { libc::munmap(p, size) };
        }
        Err(err)
    };
    let slot = match map_near(
        size,
        libc::PROT_NONE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
    ) {
        Ok(p) => p.cast::<c_void>(),
        Err(e) => return fail(io_error("reserving room for the RX view", &e), None),
    };
    // SAFETY: `rw` is a shared mapping of exactly `size` bytes; the new
    // view replaces `slot..slot + size`, our own reservation, and nothing
    // else.
    let rx = unsafe { libc::mremap(rw, 0, size, libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED, slot) };
    if rx != slot {
        let err = os_error("mremap making a second view of shared anonymous memory");
        if rx != libc::MAP_FAILED {
            // SAFETY: a stray view of ours (`MREMAP_FIXED` ignored).
            unsafe { libc::munmap(rx, size) };
        }
        return fail(err, Some(slot));
    }
    // SAFETY: `rx..rx + size` is the view just made, not yet handed out.
    if unsafe { libc::mprotect(rx, size, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        return fail(
            os_error("mprotect of the RX view to read-execute"),
            Some(rx),
        );
    }
    match (NonNull::new(rw.cast::<u8>()), NonNull::new(rx.cast::<u8>())) {
        (Some(rw), Some(rx)) => Ok((rw, rx)),
        _ => fail(too_large(size), Some(rx)),
    }
}

/// Maps `len` bytes (a multiple of the page size) of fresh anonymous RW
/// memory.
fn map_anon_rw(len: usize) -> Result<*mut u8> {
    map_near(
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
    )
    .map_err(|e| io_error("mmap", &e))
}

/// The strategies [`CodeArena::auto`] tries, best first.
const AUTO_ORDER: [Strategy; 3] = [
    Strategy::DoubleMappedAnon,
    Strategy::DoubleMapped,
    Strategy::MprotectFlip,
];

const GIB: usize = 1 << 30;
/// How far below jitffi's own code the placement search goes.
const NEAR_SPAN: usize = 32 * GIB;

/// Next address (exclusive end) to try placing code below; 0 once placement
/// has been given up (no room, or a kernel without `MAP_FIXED_NOREPLACE`).
static PLACEMENT: Mutex<Option<usize>> = Mutex::new(None);

/// Maps `len` bytes (a page multiple), preferring addresses just below
/// jitffi's own code.
///
/// Why: on some cores an indirect branch to a target far from the branch
/// costs extra. Measured on this project's AMD Zen 4 machine: a stub
/// mapped within 64 GiB of its caller and callee runs a `void(void)` call in
/// 2.5 ns, the same stub in the default mmap area (2^45 bytes away from a
/// PIE executable) in 4.1 ns, and a lone `jmp rdi` 1.6 ns vs 3.3 ns. The code
/// that calls stubs (inlined `Cif::call_raw`, or the C API's `ffi_call`)
/// lives in the same object as jitffi, and the functions it calls are often
/// beside it, so "near jitffi" is the best single guess. The search walks
/// down from there with `MAP_FIXED_NOREPLACE` (never clobbering a mapping),
/// and falls back to any address.
fn map_near(len: usize, prot: i32, flags: i32, fd: i32) -> std::io::Result<*mut u8> {
    let mut cursor = PLACEMENT.lock().unwrap_or_else(|e| e.into_inner());
    let home = (map_near as *const () as usize) & !(GIB - 1);
    let floor = home.saturating_sub(NEAR_SPAN).max(GIB);
    let mut next = *cursor.get_or_insert(home);
    while next >= floor + len {
        let want = next - len;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping:
        // the call either maps fresh pages at `want` or fails.
        let p = unsafe {
            libc::mmap(
                want as *mut c_void,
                len,
                prot,
                flags | libc::MAP_FIXED_NOREPLACE,
                fd,
                0,
            )
        };
        if p as usize == want {
            *cursor = Some(want);
            return Ok(p.cast());
        }
        if p != libc::MAP_FAILED {
            // A kernel older than 4.17 treats the flag as a hint and put
            // the pages elsewhere: keep them, stop trying to place.
            *cursor = Some(0);
            return Ok(p.cast());
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
            break;
        }
        // Occupied: skip to the next GiB boundary below.
        next = (want & !(GIB - 1)).saturating_sub(if want % GIB == 0 { GIB } else { 0 });
    }
    *cursor = Some(0);
    drop(cursor);
    // SAFETY: a fresh mapping wherever the kernel likes; nothing existing is
    // affected.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(p.cast())
}

/// Flips `p..p + len` (one mapping of ours) to RX; on failure unmaps it.
fn flip_to_rx(p: *mut u8, len: usize) -> Result<()> {
    // SAFETY: `p`/`len` describe exactly one anonymous mapping of ours.
    if unsafe { libc::mprotect(p.cast::<c_void>(), len, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        let err = os_error("mprotect to read-execute");
        // SAFETY: as above; nothing has been handed out from it.
        unsafe { libc::munmap(p.cast::<c_void>(), len) };
        return Err(err);
    }
    Ok(())
}

fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Prints `msg` on stderr the first time it is called, if `JITFFI_DEBUG`
/// is set.
fn debug_once(msg: &str) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if env_flag("JITFFI_DEBUG") && !SAID.swap(true, Ordering::Relaxed) {
        eprintln!("jitffi: {msg}");
    }
}

impl CodeArena {
    /// An arena using exactly `strategy`. The strategy is probed at once
    /// (a first chunk mapped, or a page flipped to RX), so an environment
    /// that refuses it fails here rather than at the first publish.
    ///
    /// ```
    /// use jitffi::memory::{CodeArena, Strategy};
    /// // The fallback probes one page and keeps nothing mapped until a publish.
    /// let arena = CodeArena::new(Strategy::MprotectFlip).unwrap();
    /// assert_eq!(arena.mapped_bytes(), 0);
    /// ```
    pub fn new(strategy: Strategy) -> Result<CodeArena> {
        let mut inner = Inner {
            current: None,
            mapped: 0,
        };
        match strategy {
            Strategy::DoubleMapped | Strategy::DoubleMappedAnon => {
                let chunk = map_chunk(strategy, CHUNK_SIZE)?;
                inner.mapped = chunk.size;
                inner.current = Some(chunk);
            }
            Strategy::MprotectFlip => {
                let page = page_size();
                let p = map_anon_rw(page)?;
                flip_to_rx(p, page)?;
                // SAFETY: the probe page is ours and unused.
                unsafe { libc::munmap(p.cast::<c_void>(), page) };
            }
        }
        Ok(CodeArena {
            strategy,
            inner: Mutex::new(inner),
        })
    }

    /// The best arena this environment allows: the first of
    /// [`Strategy::DoubleMappedAnon`], [`Strategy::DoubleMapped`] and
    /// [`Strategy::MprotectFlip`] that is not refused, or the last alone if
    /// `JITFFI_FORCE_MPROTECT` is set (to anything but `0`). With
    /// `JITFFI_DEBUG` set, the choice (and what was refused) is reported
    /// once per process on stderr. See the module docs for why this order.
    ///
    /// ```
    /// use jitffi::memory::CodeArena;
    /// let arena = CodeArena::auto().unwrap();
    /// let p = arena.publish(&[0xB8, 0x03, 0x00, 0x00, 0x00, 0xC3]).unwrap(); // mov eax, 3; ret
    /// // SAFETY: the bytes are a complete x86-64 function `int f(void)`.
    /// let f = unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> i32>(p) };
    /// assert_eq!(f(), 3);
    /// ```
    pub fn auto() -> Result<CodeArena> {
        let forced = env_flag("JITFFI_FORCE_MPROTECT");
        let order: &[Strategy] = if forced {
            &[Strategy::MprotectFlip]
        } else {
            &AUTO_ORDER
        };
        let mut refused = String::new();
        for &strategy in order {
            match CodeArena::new(strategy) {
                Ok(arena) => {
                    let why = if forced {
                        " (JITFFI_FORCE_MPROTECT is set)".to_string()
                    } else if refused.is_empty() {
                        String::new()
                    } else {
                        format!(" (refused:{refused})")
                    };
                    debug_once(&format!(
                        "code arena: {strategy:?}, {}{why}",
                        strategy.describe()
                    ));
                    return Ok(arena);
                }
                Err(e) => {
                    refused.push_str(&format!(" {strategy:?}: {e};"));
                }
            }
        }
        let reason = format!("no way to make code executable (refused:{refused})");
        debug_once(&format!("code arena: {reason}"));
        Err(Error::CodeMemory { reason })
    }

    /// How this arena makes code executable.
    ///
    /// ```
    /// use jitffi::memory::{CodeArena, Strategy};
    /// let arena = CodeArena::new(Strategy::DoubleMapped).unwrap();
    /// assert_eq!(arena.strategy(), Strategy::DoubleMapped);
    /// ```
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Bytes of read-execute mappings this arena holds.
    ///
    /// ```
    /// use jitffi::memory::{CodeArena, Strategy};
    /// // The fallback spends at least a whole page per publish.
    /// let arena = CodeArena::new(Strategy::MprotectFlip).unwrap();
    /// arena.publish(&[0xC3]).unwrap(); // ret
    /// let page = arena.mapped_bytes();
    /// assert!(page >= 4096 && page.is_power_of_two());
    /// ```
    pub fn mapped_bytes(&self) -> usize {
        self.lock().mapped
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // No code path panics while holding the lock, and the state stays
        // consistent at every step even if one did.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves a block of at least `len` bytes. Write it through `rw`,
    /// then [`commit`](Self::commit) it.
    pub(crate) fn reserve(&self, len: usize) -> Result<CodeBlock> {
        let len = len.max(1);
        match self.strategy {
            Strategy::DoubleMapped | Strategy::DoubleMappedAnon => self.reserve_shared(len),
            Strategy::MprotectFlip => {
                let size = round_up(len, page_size()).ok_or_else(|| too_large(len))?;
                let p = map_anon_rw(size)?;
                // SAFETY: `p` is a fresh RW mapping of `size` bytes.
                unsafe { std::ptr::write_bytes(p, PAD_BYTE, size) };
                Ok(CodeBlock {
                    rw: p,
                    rx: p,
                    len: size,
                })
            }
        }
    }

    /// Carves a block out of the current chunk.
    ///
    /// After a `fork()` the child shares the parent's chunks (the views are
    /// `MAP_SHARED`). Code already published is never rewritten, so both
    /// may keep running it, but the free tail would be handed out twice,
    /// at the same address, and each process would overwrite the other's
    /// fresh code. So a process that finds a chunk carved by another pid
    /// abandons its tail and maps a chunk of its own; the parent, still
    /// the owner, goes on as before. One `getpid` per publish, nothing per
    /// call.
    fn reserve_shared(&self, len: usize) -> Result<CodeBlock> {
        let need = round_up(len, BLOCK_ALIGN).ok_or_else(|| too_large(len))?;
        let mut inner = self.lock();
        if need > CHUNK_SIZE {
            // A chunk of its own; the current chunk keeps serving small
            // requests.
            let size = round_up(need, page_size()).ok_or_else(|| too_large(len))?;
            let chunk = map_chunk(self.strategy, size)?;
            inner.mapped += size;
            return Ok(CodeBlock {
                rw: chunk.rw.as_ptr(),
                rx: chunk.rx.as_ptr(),
                len: size,
            });
        }
        let pid = std::process::id();
        let fits = inner
            .current
            .as_ref()
            .is_some_and(|c| c.owner == pid && c.size - c.used >= need);
        if !fits {
            let chunk = map_chunk(self.strategy, CHUNK_SIZE)?;
            inner.mapped += chunk.size;
            inner.current = Some(chunk);
        }
        let Some(chunk) = inner.current.as_mut() else {
            return Err(Error::CodeMemory {
                reason: "code arena has no current chunk".into(),
            });
        };
        let off = chunk.used;
        chunk.used += need;
        Ok(CodeBlock {
            // `off + need <= size`, so both stay inside their views.
            rw: chunk.rw.as_ptr().wrapping_add(off),
            rx: chunk.rx.as_ptr().wrapping_add(off),
            len: need,
        })
    }

    /// Makes a reserved, written block executable and flushes the
    /// instruction cache for it.
    pub(crate) fn commit(&self, block: &CodeBlock) -> Result<()> {
        if !self.strategy.double_mapped() {
            flip_to_rx(block.rw, block.len)?;
            self.lock().mapped += block.len;
        }
        // SAFETY: the block lies inside an RX mapping of this arena.
        unsafe { flush_icache(block.rx, block.len) };
        Ok(())
    }

    /// Copies `code` into executable memory and returns its address,
    /// 16-byte aligned. The memory lives for the rest of the process.
    ///
    /// ```
    /// use jitffi::memory::{CodeArena, Strategy};
    /// let arena = CodeArena::new(Strategy::DoubleMapped).unwrap();
    /// assert!(arena.publish(&[]).is_err()); // nothing to run
    /// let p = arena.publish(&[0xB8, 0x2A, 0x00, 0x00, 0x00, 0xC3]).unwrap(); // mov eax, 42; ret
    /// // SAFETY: the bytes are a complete x86-64 function `int f(void)`.
    /// let f = unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> i32>(p) };
    /// assert_eq!(f(), 42);
    /// ```
    pub fn publish(&self, code: &[u8]) -> Result<*const u8> {
        if code.is_empty() {
            return Err(Error::CodeMemory {
                reason: "refusing to publish zero bytes of code".into(),
            });
        }
        let block = self.reserve(code.len())?;
        // SAFETY: `block.rw` is `block.len >= code.len()` writable bytes
        // reserved for us alone; `code` cannot overlap fresh code memory.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), block.rw, code.len()) };
        self.commit(&block)?;
        Ok(block.rx)
    }
}

/// The process-wide arena ([`CodeArena::auto`]), created on first use. A
/// failed creation is returned as an error and retried on the next call.
///
/// ```
/// use jitffi::memory;
/// let a = memory::global().unwrap();
/// assert!(std::ptr::eq(a, memory::global().unwrap())); // one per process
/// ```
pub fn global() -> Result<&'static CodeArena> {
    static GLOBAL: OnceLock<CodeArena> = OnceLock::new();
    static INIT: Mutex<()> = Mutex::new(());
    if let Some(a) = GLOBAL.get() {
        return Ok(a);
    }
    // Serialise creation so racing threads do not each map (and leak) a
    // probe chunk.
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(a) = GLOBAL.get() {
        return Ok(a);
    }
    let arena = CodeArena::auto()?;
    Ok(GLOBAL.get_or_init(|| arena))
}

/// Copies `code` into the global arena's executable memory and returns its
/// address. The memory lives for the rest of the process.
///
/// ```
/// let p = jitffi::memory::publish(&[0xB8, 0xF9, 0xFF, 0xFF, 0xFF, 0xC3]).unwrap(); // mov eax, -7; ret
/// // SAFETY: the bytes are a complete x86-64 function `int f(void)`.
/// let f = unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> i32>(p) };
/// assert_eq!(f(), -7);
/// ```
pub fn publish(code: &[u8]) -> Result<*const u8> {
    global()?.publish(code)
}

/// A closure's slot: a 64-byte record in ordinary read-write memory and the
/// trampoline that makes it callable.
///
/// The trampoline is never written after its page became executable: it
/// loads the record's address into `r11` and jumps through the record's
/// first word (the shape's thunk). Everything that varies per closure lives
/// in the record (see [`crate::closure::record`]).
///
/// ```
/// use jitffi::closure::record;
/// use jitffi::memory::{alloc_closure_slot, free_closure_slot};
/// let slot = alloc_closure_slot().unwrap();
/// assert_eq!(slot.record as usize % record::SIZE, 0);
/// assert_ne!(slot.code, slot.record.cast_const());
/// // SAFETY: the slot came from alloc_closure_slot and its code was never handed out.
/// unsafe { free_closure_slot(slot) };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosureSlot {
    /// The record: [`crate::closure::record::SIZE`] writable bytes.
    pub record: *mut u8,
    /// The trampoline: the closure's native code address.
    pub code: *const u8,
}

// SAFETY: a slot names process-wide memory that is never unmapped; which
// thread uses it is the owner's business (the closure types synchronise).
unsafe impl Send for ClosureSlot {}
// SAFETY: as above.
unsafe impl Sync for ClosureSlot {}

/// Slots (trampolines, and records) in one closure chunk: one page of
/// 16-byte trampolines.
///
/// ```
/// use jitffi::memory::{alloc_closure_slot, free_closure_slot, CLOSURE_CHUNK_SLOTS};
/// // Slots of one chunk have neighbouring trampolines.
/// let slots: Vec<_> = (0..CLOSURE_CHUNK_SLOTS).map(|_| alloc_closure_slot().unwrap()).collect();
/// let page = |p: *const u8| p as usize / 4096;
/// assert!(slots.windows(2).any(|w| page(w[0].code) == page(w[1].code)));
/// for s in slots {
///     // SAFETY: each slot came from alloc_closure_slot and is freed once.
///     unsafe { free_closure_slot(s) };
/// }
/// ```
pub const CLOSURE_CHUNK_SLOTS: usize = 256;

/// Bytes of one trampoline (and the distance between neighbours).
const TRAMPOLINE_SIZE: usize = 16;

/// Slots a thread keeps for itself before handing a batch back.
const CACHE_MAX: usize = 64;

/// Slots moved between a thread's cache and the global list at once.
const CACHE_BATCH: usize = 32;

/// The name of the memfd behind a closure code page, where anonymous
/// memory may not become executable (see [`install_code_page`]).
const CLOSURE_MEMFD_NAME: &std::ffi::CStr = c"jitffi-closures";

/// Free slots shared by all threads.
static FREE_SLOTS: Mutex<Vec<ClosureSlot>> = Mutex::new(Vec::new());

/// Bytes mapped for closure chunks.
static SLOT_BYTES: AtomicUsize = AtomicUsize::new(0);

fn free_slots() -> std::sync::MutexGuard<'static, Vec<ClosureSlot>> {
    // Nothing panics while holding the lock, and a Vec of plain slots is
    // consistent at every step anyway.
    FREE_SLOTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A thread's private stock of free slots, so the common alloc and free
/// touch no lock. Dropped when the thread exits: the stock goes back to the
/// global list.
struct SlotCache(Vec<ClosureSlot>);

impl Drop for SlotCache {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            free_slots().append(&mut self.0);
        }
    }
}

thread_local! {
    static SLOT_CACHE: std::cell::RefCell<SlotCache> =
        const { std::cell::RefCell::new(SlotCache(Vec::new())) };
}

/// What runs when a freed (or never allocated) slot is called: every idle
/// record's thunk word points here. It is entered by a jump with the
/// caller's arguments in place, which it ignores.
extern "C" fn freed_closure_called() -> ! {
    const MSG: &[u8] =
        b"jitffi: a freed closure was called (its code pointer outlived the Closure)\n";
    // A raw write: no allocation, no stderr lock (the caller may hold it).
    // SAFETY: writes a static buffer to descriptor 2; failure changes nothing.
    unsafe { libc::write(2, MSG.as_ptr().cast::<c_void>(), MSG.len()) };
    std::process::abort()
}

/// The address idle records' thunk words hold.
fn freed_routine() -> usize {
    freed_closure_called as *const () as usize
}

/// What the thunk word of every idle (never handed out, or freed) record
/// holds: the routine that reports a call of a freed closure and aborts.
/// A pool can compare a record's thunk word with it to tell a double free.
///
/// ```
/// use jitffi::memory::{alloc_closure_slot, free_closure_slot, freed_closure_routine};
/// let slot = alloc_closure_slot().unwrap();
/// // SAFETY: the thunk word of a record we hold, pointer-aligned.
/// let word = unsafe { slot.record.cast::<*const u8>().read() };
/// assert_eq!(word, freed_closure_routine());
/// // SAFETY: allocated above, freed once, never called.
/// unsafe { free_closure_slot(slot) };
/// ```
pub fn freed_closure_routine() -> *const u8 {
    freed_routine() as *const u8
}

/// Sizes of a standard closure chunk's code part and data part (page
/// multiples).
#[cfg(test)]
fn closure_chunk_layout() -> Result<(usize, usize)> {
    use crate::closure::record;
    closure_chunk_geometry(record::SIZE).map(|(code, data, _)| (code, data))
}

/// Code bytes, data bytes (page multiples) and slot count of a chunk whose
/// records are `record_size` bytes: 256 slots of the standard 64 bytes,
/// fewer of larger records so that a chunk's records take about 16 KiB,
/// but at least one.
fn closure_chunk_geometry(record_size: usize) -> Result<(usize, usize, usize)> {
    use crate::closure::record;
    let slots =
        (CLOSURE_CHUNK_SLOTS * record::SIZE / record_size.max(1)).clamp(1, CLOSURE_CHUNK_SLOTS);
    let page = page_size();
    let code = round_up(slots * TRAMPOLINE_SIZE, page);
    let data = slots
        .checked_mul(record_size)
        .and_then(|d| round_up(d, page));
    match (code, data) {
        (Some(c), Some(d)) => Ok((c, d, slots)),
        _ => Err(too_large(slots.saturating_mul(record_size))),
    }
}

/// The trampoline at address `at` for the record at `record`:
/// `endbr64; lea r11, [rip + disp32]; jmp qword [r11]; int3; int3`.
/// `None` if the record is out of `rip`-relative reach.
#[cfg(target_arch = "x86_64")]
fn trampoline(at: usize, record: usize) -> Option<[u8; TRAMPOLINE_SIZE]> {
    // The displacement counts from the end of the 7-byte lea at offset 4.
    let rip = at.checked_add(11)?;
    let disp = i32::try_from((record as isize).wrapping_sub(rip as isize)).ok()?;
    let d = disp.to_le_bytes();
    Some([
        0xF3, 0x0F, 0x1E, 0xFA, // endbr64
        0x4C, 0x8D, 0x1D, d[0], d[1], d[2], d[3], // lea r11, [rip + disp32]
        0x41, 0xFF, 0x23, // jmp qword [r11]
        0xCC, 0xCC, // int3 padding
    ])
}

/// The trampoline at address `at` for the record at `record`:
/// `adrp x17, record; add x17, x17, :lo12:record; ldr x16, [x17];
/// br x16` (the thunk finds the record in `x17`; `x16` and `x17` are the
/// intra-procedure-call scratch registers every caller expects clobbered).
/// `None` if the record is beyond `adrp`'s +-4 GiB.
#[cfg(target_arch = "aarch64")]
fn trampoline(at: usize, record: usize) -> Option<[u8; TRAMPOLINE_SIZE]> {
    const X16: u32 = 16;
    const X17: u32 = 17;
    let pages = ((record >> 12) as isize).wrapping_sub((at >> 12) as isize);
    if !(-(1 << 20)..(1 << 20)).contains(&pages) {
        return None;
    }
    let imm = (pages as u32) & 0x1F_FFFF;
    let adrp = 0x9000_0000 | ((imm & 3) << 29) | ((imm >> 2) << 5) | X17;
    let add = 0x9100_0000 | (((record & 0xFFF) as u32) << 10) | (X17 << 5) | X17;
    let ldr = 0xF940_0000 | (X17 << 5) | X16;
    let br = 0xD61F_0000 | (X16 << 5);
    let mut bytes = [0u8; TRAMPOLINE_SIZE];
    for (dst, word) in bytes.chunks_exact_mut(4).zip([adrp, add, ldr, br]) {
        dst.copy_from_slice(&word.to_le_bytes());
    }
    Some(bytes)
}

/// Writes the trampolines for a chunk whose code page starts at `base`
/// and whose `slots` records of `record_size` bytes start at `data` into a
/// page image.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn trampoline_page(
    base: usize,
    data: usize,
    code_len: usize,
    record_size: usize,
    slots: usize,
) -> Result<Vec<u8>> {
    let mut page = vec![PAD_BYTE; code_len];
    for (i, t) in page
        .chunks_exact_mut(TRAMPOLINE_SIZE)
        .take(slots)
        .enumerate()
    {
        let bytes =
            trampoline(base + i * TRAMPOLINE_SIZE, data + i * record_size).ok_or_else(|| {
                Error::CodeMemory {
                    reason: "closure records out of reach of their trampolines".into(),
                }
            })?;
        t.copy_from_slice(&bytes);
    }
    Ok(page)
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn trampoline_page(
    _base: usize,
    _data: usize,
    _code_len: usize,
    _record_size: usize,
    _slots: usize,
) -> Result<Vec<u8>> {
    Err(Error::CodeMemory {
        reason: "closure trampolines exist only for x86-64 and AArch64".into(),
    })
}

/// Makes the code page at `base` hold `image`, read-execute, never
/// writable again.
///
/// Normally `image` was already written there and the page is flipped
/// with `mprotect`. Where policy forbids executable anonymous memory
/// (SELinux `deny_execmem`) but allows executable memfds (which the code
/// arena uses then), the page is replaced in place (`MAP_FIXED`) by a
/// read-execute view of a sealed memfd holding `image`: same address, so
/// the trampolines' displacements stay right. `force_memfd` takes that
/// path directly (tests).
fn install_code_page(base: *mut u8, image: &[u8], force_memfd: bool) -> Result<()> {
    let len = image.len();
    if !force_memfd {
        // SAFETY: `base..base + len` is the code page of a chunk we just
        // mapped and nothing has been handed out from it.
        let r = unsafe { libc::mprotect(base.cast(), len, libc::PROT_READ | libc::PROT_EXEC) };
        if r == 0 {
            // SAFETY: the page is mapped readable.
            unsafe { flush_icache(base, len) };
            return Ok(());
        }
    }
    let first = os_error("mprotect of a closure code page to read-execute");
    // SAFETY: the name is NUL-terminated; memfd_create touches no memory.
    let fd = unsafe {
        libc::memfd_create(
            CLOSURE_MEMFD_NAME.as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(if force_memfd {
            os_error("memfd_create")
        } else {
            first
        });
    }
    // SAFETY: `fd` was just returned by memfd_create and nothing else owns it.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::io::Write::write_all(&mut file, image)
        .map_err(|e| io_error("writing closure code", &e))?;
    // Never writable again, by anyone holding the descriptor either.
    // SAFETY: F_ADD_SEALS on a descriptor we own; no mapping of it exists.
    unsafe {
        libc::fcntl(
            file.as_raw_fd(),
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL,
        )
    };
    // SAFETY: MAP_FIXED replaces exactly our own code page (nothing handed
    // out yet) with a view of a file of `len` bytes sealed against
    // resizing.
    let p = unsafe {
        libc::mmap(
            base.cast(),
            len,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_SHARED | libc::MAP_FIXED,
            file.as_raw_fd(),
            0,
        )
    };
    if p != base.cast::<c_void>() {
        return Err(os_error("mapping a closure code page from a memfd"));
    }
    Ok(())
}

/// Maps one standard closure chunk (drawn in the module docs: a code page
/// of trampolines, then the records' pages) and returns its slots, in
/// address order. `force_memfd` is for tests (see [`install_code_page`]).
fn map_closure_chunk(force_memfd: bool) -> Result<Vec<ClosureSlot>> {
    use crate::closure::record;
    map_closure_chunk_of(record::SIZE, force_memfd)
}

/// Maps one closure chunk of records of `record_size` bytes (a power of
/// two, at least 64) and registers it for [`closure_slot_of`].
fn map_closure_chunk_of(record_size: usize, force_memfd: bool) -> Result<Vec<ClosureSlot>> {
    use crate::closure::record;
    debug_assert!(record_size.is_power_of_two() && record_size >= record::SIZE);
    let (code_len, data_len, count) = closure_chunk_geometry(record_size)?;
    let total = code_len + data_len;
    let base = map_anon_rw(total)?;
    let data = base.wrapping_add(code_len);
    let image = trampoline_page(base as usize, data as usize, code_len, record_size, count);
    let installed = image.and_then(|image| {
        // SAFETY: `base` starts `total >= code_len` fresh writable bytes.
        unsafe { std::ptr::copy_nonoverlapping(image.as_ptr(), base, code_len) };
        install_code_page(base, &image, force_memfd)
    });
    if let Err(e) = installed {
        // SAFETY: the chunk is ours alone; nothing was handed out from it.
        unsafe { libc::munmap(base.cast(), total) };
        return Err(e);
    }
    crate::perfmap::record(base, code_len, || "jitffi closure trampolines".into());
    // Trampolines never move rsp: one frameless entry describes them all,
    // so unwinders walk from a thunk through them to the caller. Failing
    // to register costs only that, not the closures.
    if let Some(arch) = crate::abi::Arch::host() {
        let _ = crate::unwind::register_frameless(arch, base as usize, code_len);
    }
    let slots = (0..count)
        .map(|i| {
            let rec = data.wrapping_add(i * record_size);
            // Idle records send a stray call to the abort routine. Fresh
            // anonymous memory is zero, so the other words are already
            // cleared.
            // SAFETY: `rec` is a 64-aligned record inside the data pages.
            unsafe {
                rec.add(record::THUNK)
                    .cast::<usize>()
                    .write(freed_routine())
            };
            ClosureSlot {
                record: rec,
                code: base.wrapping_add(i * TRAMPOLINE_SIZE).cast_const(),
            }
        })
        .collect();
    SLOT_BYTES.fetch_add(total, Ordering::Relaxed);
    register_chunk(SlotChunk {
        data: data as usize,
        end: data as usize + count * record_size,
        code: base as usize,
        record_size,
    });
    Ok(slots)
}

/// Where one chunk's records and trampolines lie, for [`closure_slot_of`].
#[derive(Clone, Copy, Debug)]
struct SlotChunk {
    /// The first record.
    data: usize,
    /// One past the last record.
    end: usize,
    /// The first trampoline.
    code: usize,
    /// Bytes per record.
    record_size: usize,
}

/// Every closure chunk mapped, sorted by `data`. Entries are leaked, as
/// the chunks they describe are never unmapped: a reference to one never
/// goes stale.
static SLOT_CHUNKS: std::sync::RwLock<Vec<&'static SlotChunk>> = std::sync::RwLock::new(Vec::new());

/// The chunk found last, by any thread: repeated lookups in one chunk (an
/// allocation, its preparation, its free) take no lock. A global rather
/// than a thread-local: in a shared library (the C API's `libffi.so.8`)
/// a thread-local costs a `__tls_get_addr` call, a global one load.
static LAST_CHUNK: std::sync::atomic::AtomicPtr<SlotChunk> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

fn register_chunk(chunk: SlotChunk) {
    let entry: &'static SlotChunk = Box::leak(Box::new(chunk));
    let mut chunks = SLOT_CHUNKS.write().unwrap_or_else(|e| e.into_inner());
    let at = chunks.partition_point(|c| c.data < chunk.data);
    chunks.insert(at, entry);
}

/// The registered chunk whose records span `addr`.
#[inline]
fn chunk_holding(addr: usize) -> Option<SlotChunk> {
    let within = |c: &SlotChunk| c.data <= addr && addr < c.end;
    let last = LAST_CHUNK.load(Ordering::Acquire);
    // SAFETY: LAST_CHUNK is null or a leaked, never-modified entry.
    if let Some(c) = unsafe { last.as_ref() } {
        if within(c) {
            return Some(*c);
        }
    }
    chunk_holding_slow(addr)
}

#[cold]
fn chunk_holding_slow(addr: usize) -> Option<SlotChunk> {
    let chunks = SLOT_CHUNKS.read().unwrap_or_else(|e| e.into_inner());
    let at = chunks.partition_point(|c| c.data <= addr);
    let found: &'static SlotChunk = chunks[..at]
        .last()
        .copied()
        .filter(|c| c.data <= addr && addr < c.end)?;
    LAST_CHUNK.store((found as *const SlotChunk).cast_mut(), Ordering::Release);
    Some(*found)
}

/// The largest record [`map_closure_slots`] maps: 16 MiB.
pub const MAX_CLOSURE_RECORD: usize = 16 << 20;

/// Maps a fresh chunk of closure slots whose records are `record_size`
/// bytes, for pools of records larger than the standard
/// [`record::SIZE`](crate::closure::record::SIZE) (libffi's
/// `ffi_closure_alloc` takes any size). The slots work like
/// [`alloc_closure_slot`]'s (same trampolines, W^X, the record's first
/// word is the thunk, idle records abort), but belong to the caller: they
/// are in no free list, and are never unmapped. [`closure_slot_of`] finds
/// them. About 16 KiB of records per chunk, at least one record.
///
/// `record_size` must be a power of two from `record::SIZE` to
/// [`MAX_CLOSURE_RECORD`].
///
/// ```
/// use jitffi::memory::{closure_slot_of, map_closure_slots};
/// let slots = map_closure_slots(256).unwrap();
/// assert_eq!(slots.len(), 64);
/// assert_eq!(closure_slot_of(slots[3].record), Some((slots[3], 256)));
/// assert_eq!(closure_slot_of(slots[3].record.wrapping_add(64)), None);
/// ```
pub fn map_closure_slots(record_size: usize) -> Result<Vec<ClosureSlot>> {
    use crate::closure::record;
    if !record_size.is_power_of_two() || !(record::SIZE..=MAX_CLOSURE_RECORD).contains(&record_size)
    {
        return Err(Error::CodeMemory {
            reason: format!(
                "closure records of {record_size} bytes: a power of two from {} to {MAX_CLOSURE_RECORD} is needed",
                record::SIZE
            ),
        });
    }
    map_closure_chunk_of(record_size, false)
}

/// The closure slot whose record starts exactly at `record`, with its
/// record size, if `record` is one of jitffi's (from
/// [`alloc_closure_slot`] or [`map_closure_slots`]); `None` for any other
/// address, including one inside a record. Never dereferences `record`.
/// Usually lock-free (a memo of the last chunk hit).
///
/// ```
/// use jitffi::closure::record;
/// use jitffi::memory::{alloc_closure_slot, closure_slot_of, free_closure_slot};
/// let slot = alloc_closure_slot().unwrap();
/// assert_eq!(closure_slot_of(slot.record), Some((slot, record::SIZE)));
/// let local = 0u64;
/// assert_eq!(closure_slot_of((&local as *const u64).cast()), None);
/// // SAFETY: allocated above, freed once, never called.
/// unsafe { free_closure_slot(slot) };
/// ```
#[inline]
pub fn closure_slot_of(record: *const u8) -> Option<(ClosureSlot, usize)> {
    closure_record_containing(record).filter(|(slot, _)| slot.record.cast_const() == record)
}

/// The closure slot whose record holds `addr` (its first byte or any
/// other), with its record size; `None` outside every record of jitffi's.
/// Never dereferences `addr`.
///
/// ```
/// use jitffi::memory::{closure_record_containing, map_closure_slots};
/// let slots = map_closure_slots(128).unwrap();
/// let inside = slots[1].record.wrapping_add(100);
/// assert_eq!(closure_record_containing(inside), Some((slots[1], 128)));
/// ```
#[inline]
pub fn closure_record_containing(addr: *const u8) -> Option<(ClosureSlot, usize)> {
    let at = addr as usize;
    let chunk = chunk_holding(at)?;
    // Record sizes are powers of two: a shift, not a division (this sits
    // on the prepare and free paths of the C API).
    let i = (at - chunk.data) >> chunk.record_size.trailing_zeros();
    Some((
        ClosureSlot {
            record: (chunk.data + i * chunk.record_size) as *mut u8,
            code: (chunk.code + i * TRAMPOLINE_SIZE) as *const u8,
        },
        chunk.record_size,
    ))
}

/// Retires a record as [`free_closure_slot`] does (its thunk word to the
/// routine that reports a call of a freed closure, first, then its first
/// [`record::SIZE`](crate::closure::record::SIZE) bytes zeroed), for pools
/// that keep their own free lists of [`map_closure_slots`]'s slots.
///
/// # Safety
/// `record` is the record of a slot from [`map_closure_slots`] that its
/// owner no longer uses (no call of its code is running or will start
/// before the slot is handed out again).
pub unsafe fn retire_closure_record(record: *mut u8) {
    // SAFETY: per the contract, a record of ours (at least record::SIZE
    // bytes, 64-aligned) that no one uses.
    unsafe { retire_record(record) }
}

/// Moves up to `n` slots from the global list to `to`, mapping a chunk
/// first if the list is empty.
fn take_free(to: &mut Vec<ClosureSlot>, n: usize) -> Result<()> {
    let mut free = free_slots();
    if free.is_empty() {
        // Reversed, so that popping from the end hands out ascending slots.
        free.extend(map_closure_chunk(false)?.into_iter().rev());
    }
    let at = free.len().saturating_sub(n);
    to.extend(free.drain(at..));
    Ok(())
}

fn no_slot() -> Error {
    Error::CodeMemory {
        reason: "no closure slot available".into(),
    }
}

/// Takes a closure slot from the free list, mapping a new chunk of
/// trampolines when it is empty. Thread-safe; the common case takes no
/// lock (each thread keeps a few free slots of its own).
///
/// The slot's record is zeroed except for its thunk word, which points at
/// the routine that reports a call of a freed closure: fill the record,
/// storing the thunk word last.
///
/// ```
/// use jitffi::closure::record;
/// use jitffi::memory::{self, alloc_closure_slot, free_closure_slot};
/// // A "thunk" that returns what the trampoline put in r11: mov rax, r11; ret.
/// let thunk = memory::publish(&[0x4C, 0x89, 0xD8, 0xC3]).unwrap();
/// let slot = alloc_closure_slot().unwrap();
/// // SAFETY: the record is ours; its thunk word is pointer-aligned.
/// unsafe { slot.record.add(record::THUNK).cast::<*const u8>().write(thunk) };
/// // SAFETY: the trampoline jumps to `thunk`, a complete `usize f(void)`.
/// let f = unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> usize>(slot.code) };
/// assert_eq!(f(), slot.record as usize);
/// // SAFETY: allocated above, freed once, not called afterwards.
/// unsafe { free_closure_slot(slot) };
/// ```
#[inline]
pub fn alloc_closure_slot() -> Result<ClosureSlot> {
    let hit = SLOT_CACHE.try_with(|cache| cache.try_borrow_mut().ok()?.0.pop());
    match hit {
        Ok(Some(slot)) => Ok(slot),
        _ => alloc_closure_slot_slow(),
    }
}

/// Refills this thread's cache from the global list, or takes a slot
/// straight from it while the thread is exiting (its cache gone).
#[cold]
#[inline(never)]
fn alloc_closure_slot_slow() -> Result<ClosureSlot> {
    let cached = SLOT_CACHE.try_with(|cache| {
        let mut cache = cache.try_borrow_mut().ok()?;
        // Room for a full cache, so the fast free path never reallocates.
        cache.0.reserve(CACHE_MAX);
        Some(take_free(&mut cache.0, CACHE_BATCH).and_then(|()| cache.0.pop().ok_or_else(no_slot)))
    });
    match cached {
        Ok(Some(result)) => result,
        _ => {
            let mut one = Vec::with_capacity(1);
            take_free(&mut one, 1)?;
            one.pop().ok_or_else(no_slot)
        }
    }
}

/// Returns a slot to the free list. Its record's thunk word is pointed at a
/// routine that aborts with a clear message, so a call through a dangling
/// closure pointer fails loudly instead of running stale code, and the
/// record's other words are zeroed. Any thread may free any slot.
///
/// Memory is never unmapped: a stale code pointer always reaches the abort
/// routine, until the slot is handed out again.
///
/// # Safety
/// `slot` came from [`alloc_closure_slot`], is not freed twice, and nothing
/// calls its code any more.
///
/// ```
/// use jitffi::closure::record;
/// use jitffi::memory::{alloc_closure_slot, free_closure_slot};
/// let slot = alloc_closure_slot().unwrap();
/// // SAFETY: the record is ours until freed.
/// unsafe { slot.record.add(record::USER_DATA).cast::<usize>().write(7) };
/// // SAFETY: allocated above, freed once, never called.
/// unsafe { free_closure_slot(slot) };
/// ```
#[inline]
pub unsafe fn free_closure_slot(slot: ClosureSlot) {
    // SAFETY: per the contract, `slot.record` is a record of ours that no
    // one uses any more.
    unsafe { retire_record(slot.record) };
    let kept = SLOT_CACHE
        .try_with(|cache| {
            let Ok(mut cache) = cache.try_borrow_mut() else {
                return false;
            };
            let room = cache.0.len() < CACHE_MAX.min(cache.0.capacity());
            if room {
                cache.0.push(slot);
            }
            room
        })
        .unwrap_or(false);
    if !kept {
        free_closure_slot_slow(slot);
    }
}

/// Frees into a full (or not yet allocated) cache, handing its oldest
/// slots back to the global list, or straight to the global list while
/// the thread is exiting.
#[cold]
#[inline(never)]
fn free_closure_slot_slow(slot: ClosureSlot) {
    let kept = SLOT_CACHE
        .try_with(|cache| {
            let Ok(mut cache) = cache.try_borrow_mut() else {
                return false;
            };
            cache.0.reserve(CACHE_MAX);
            if cache.0.len() >= CACHE_MAX {
                // The oldest go back; the recently freed stay warm here.
                free_slots().extend(cache.0.drain(..CACHE_BATCH));
            }
            cache.0.push(slot);
            true
        })
        .unwrap_or(false);
    if !kept {
        free_slots().push(slot);
    }
}

/// Points the record's thunk word at the abort routine (first, so that a
/// racing stale call never finds half a record), then zeroes the rest.
///
/// # Safety
/// `record` is a closure record of [`crate::closure::record::SIZE`]
/// writable, 64-aligned bytes.
#[inline]
unsafe fn retire_record(record: *mut u8) {
    use crate::closure::record as r;
    // SAFETY: the thunk word is aligned and inside the record; trampolines
    // on other threads only ever read it.
    let thunk = unsafe { AtomicUsize::from_ptr(record.add(r::THUNK).cast::<usize>()) };
    thunk.store(freed_routine(), Ordering::Release);
    // SAFETY: both ranges lie inside the record and skip the thunk word.
    unsafe {
        std::ptr::write_bytes(record, 0, r::THUNK);
        let after = r::THUNK + std::mem::size_of::<usize>();
        std::ptr::write_bytes(record.add(after), 0, r::SIZE - after);
    }
}

/// Bytes mapped for closure slots (trampoline and record pages together).
/// Chunks are never unmapped, so this only grows, and only when more
/// slots are live at once than ever before.
///
/// ```
/// use jitffi::memory::{alloc_closure_slot, closure_slot_bytes, free_closure_slot};
/// let slot = alloc_closure_slot().unwrap();
/// // At least one chunk: a code page and the records' pages.
/// assert!(closure_slot_bytes() >= 5 * 4096);
/// // SAFETY: allocated above, freed once, never called.
/// unsafe { free_closure_slot(slot) };
/// ```
pub fn closure_slot_bytes() -> usize {
    SLOT_BYTES.load(Ordering::Relaxed)
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::*;
    use std::time::Instant;

    /// `mov eax, imm32; ret`
    #[cfg(target_arch = "x86_64")]
    fn ret_imm(v: i32) -> [u8; 6] {
        let b = v.to_le_bytes();
        [0xB8, b[0], b[1], b[2], b[3], 0xC3]
    }

    /// `movz w0, #lo; movk w0, #hi, lsl #16; ret`
    #[cfg(target_arch = "aarch64")]
    fn ret_imm(v: i32) -> [u8; 12] {
        let (lo, hi) = (v as u32 & 0xFFFF, v as u32 >> 16);
        let words = [0x5280_0000 | lo << 5, 0x72A0_0000 | hi << 5, 0xD65F_03C0];
        let mut b = [0u8; 12];
        for (d, w) in b.chunks_exact_mut(4).zip(words) {
            d.copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    fn call(p: *const u8) -> i32 {
        // SAFETY: every pointer passed here is a published `ret_imm`-style
        // stub, a complete `extern "C" fn() -> i32`.
        let f = unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> i32>(p) };
        f()
    }

    const ALL: [Strategy; 3] = [
        Strategy::DoubleMapped,
        Strategy::DoubleMappedAnon,
        Strategy::MprotectFlip,
    ];

    /// A fresh arena of every strategy.
    fn every() -> Vec<CodeArena> {
        ALL.iter()
            .filter(|&&s| !(under_qemu() && s == Strategy::DoubleMappedAnon))
            .map(|&s| CodeArena::new(s).unwrap())
            .collect()
    }

    /// This test binary as a command, through `$JITFFI_TEST_RUNNER` (the
    /// emulator, where the kernel cannot exec the binary itself: qemu-user
    /// without binfmt_misc).
    fn self_command() -> std::process::Command {
        let exe = std::env::current_exe().unwrap();
        match std::env::var_os("JITFFI_TEST_RUNNER") {
            Some(runner) if !runner.is_empty() => {
                let mut cmd = std::process::Command::new(runner);
                cmd.arg(exe);
                cmd
            }
            _ => std::process::Command::new(exe),
        }
    }

    /// qemu-user cannot `mremap` shared anonymous memory into a second view
    /// (ENOMEM), so under it (`.ci/aarch64` sets `JITFFI_UNDER_QEMU`) the
    /// arena starts at the memfd strategy; real kernels must do all three.
    fn under_qemu() -> bool {
        std::env::var_os("JITFFI_UNDER_QEMU").is_some()
    }

    #[test]
    fn stubs_run_under_every_strategy() {
        for arena in every() {
            for v in [0, 1, -1, 42, i32::MIN, i32::MAX, 0x1234_5678] {
                let p = arena.publish(&ret_imm(v)).unwrap();
                assert_eq!(p as usize % BLOCK_ALIGN, 0);
                assert_eq!(call(p), v, "{:?}", arena.strategy());
            }
        }
    }

    #[test]
    fn code_lands_near_jitffi_under_every_strategy() {
        // On this project's machines the range below the (PIE) test binary
        // is free, so placement must succeed; elsewhere it may fall back.
        let home = map_near as *const () as usize;
        for arena in every() {
            for _ in 0..3 {
                let p = arena.publish(&ret_imm(5)).unwrap() as usize;
                assert!(
                    home.abs_diff(p) <= NEAR_SPAN + GIB,
                    "{:?}: code at {p:#x}, jitffi at {home:#x}",
                    arena.strategy()
                );
                assert_eq!(call(p as *const u8), 5);
            }
        }
    }

    #[test]
    fn global_publish_runs() {
        let p = publish(&ret_imm(-77)).unwrap();
        assert_eq!(call(p), -77);
        assert!(global().unwrap().mapped_bytes() > 0);
    }

    /// A fresh arena of every double-mapping strategy.
    fn double_mapped() -> Vec<CodeArena> {
        every()
            .into_iter()
            .filter(|a| a.strategy().double_mapped())
            .collect()
    }

    #[test]
    fn small_stubs_share_a_page_and_are_padded_with_int3() {
        for arena in double_mapped() {
            let ptrs: Vec<*const u8> = (0..32)
                .map(|i| arena.publish(&ret_imm(i)).unwrap())
                .collect();
            for (i, w) in ptrs.windows(2).enumerate() {
                assert_eq!(w[1] as usize - w[0] as usize, BLOCK_ALIGN, "stub {i}");
            }
            let page = page_size();
            assert_eq!(ptrs[0] as usize / page, ptrs[31] as usize / page);
            for (i, &p) in ptrs.iter().enumerate() {
                assert_eq!(call(p), i as i32);
                // SAFETY: the block is 16 readable (RX) bytes.
                let len = ret_imm(0).len();
                // SAFETY: as above.
                let tail = unsafe { std::slice::from_raw_parts(p.add(len), BLOCK_ALIGN - len) };
                assert!(tail.iter().all(|&b| b == PAD_BYTE), "padding of stub {i}");
            }
            assert_eq!(arena.mapped_bytes(), CHUNK_SIZE);
        }
    }

    #[test]
    fn fallback_takes_fresh_pages_per_publish() {
        let arena = CodeArena::new(Strategy::MprotectFlip).unwrap();
        assert_eq!(arena.mapped_bytes(), 0);
        let a = arena.publish(&ret_imm(1)).unwrap();
        let b = arena.publish(&ret_imm(2)).unwrap();
        let page = page_size();
        assert_ne!(a as usize / page, b as usize / page);
        assert_eq!(arena.mapped_bytes(), 2 * page);
        assert_eq!((call(a), call(b)), (1, 2));
    }

    #[test]
    fn a_full_chunk_is_followed_by_a_new_one() {
        for arena in double_mapped() {
            let per_chunk = CHUNK_SIZE / BLOCK_ALIGN;
            let ptrs: Vec<*const u8> = (0..per_chunk + 1)
                .map(|i| arena.publish(&ret_imm(i as i32)).unwrap())
                .collect();
            assert_eq!(arena.mapped_bytes(), 2 * CHUNK_SIZE);
            for (i, &p) in ptrs.iter().enumerate().step_by(997) {
                assert_eq!(call(p), i as i32);
            }
            assert_eq!(call(ptrs[per_chunk]), per_chunk as i32);
        }
    }

    #[test]
    fn a_chunk_carved_by_another_process_is_left_to_it() {
        // What a forked child finds: the current chunk belongs to its
        // parent's pid (tests/arena_fork.rs does the real fork).
        for arena in double_mapped() {
            let a = arena.publish(&ret_imm(1)).unwrap();
            let inherited = {
                let mut inner = arena.lock();
                let c = inner.current.as_mut().unwrap();
                c.owner = c.owner.wrapping_add(1);
                (c.rx.as_ptr() as usize, c.used)
            };
            let b = arena.publish(&ret_imm(2)).unwrap();
            let c = arena.publish(&ret_imm(3)).unwrap();
            let (start, used) = inherited;
            assert!(
                !(start..start + CHUNK_SIZE).contains(&(b as usize)),
                "{:?}: published into the other process's chunk",
                arena.strategy()
            );
            assert_eq!(
                c as usize - b as usize,
                BLOCK_ALIGN,
                "the new chunk is ours"
            );
            assert_eq!(arena.mapped_bytes(), 2 * CHUNK_SIZE);
            let inner = arena.lock();
            let now = inner.current.as_ref().unwrap();
            assert_eq!(now.owner, std::process::id());
            assert_eq!(now.used, 2 * BLOCK_ALIGN);
            drop(inner);
            assert_eq!(used, BLOCK_ALIGN);
            assert_eq!((call(a), call(b), call(c)), (1, 2, 3));
        }
    }

    #[test]
    fn anon_views_are_dev_zero_shared_and_never_writable_and_executable() {
        if under_qemu() {
            return;
        }
        let arena = CodeArena::new(Strategy::DoubleMappedAnon).unwrap();
        let p = arena.publish(&ret_imm(9)).unwrap() as usize;
        let rw = arena.lock().current.as_ref().unwrap().rw.as_ptr() as usize;
        let (rx_perms, rx_line) = mapping_of(p);
        let (rw_perms, rw_line) = mapping_of(rw);
        assert_eq!(rx_perms, "r-xs", "{rx_line}");
        assert_eq!(rw_perms, "rw-s", "{rw_line}");
        // The name perf takes for anonymous memory, and no memfd.
        for line in [&rx_line, &rw_line] {
            assert!(line.ends_with("/dev/zero (deleted)"), "{line}");
        }
        // One set of pages: a byte written through the RW view runs.
        let off = p - arena.lock().current.as_ref().unwrap().rx.as_ptr() as usize;
        // SAFETY: byte 1 of the stub is the low byte of its immediate,
        // inside the RW view; no other thread runs this arena's code.
        unsafe { (rw as *mut u8).add(off + 1).write(10) };
        assert_eq!(call(p as *const u8), 10);
    }

    #[test]
    fn large_publish_gets_its_own_chunk() {
        for arena in every() {
            let before = arena.mapped_bytes();
            let small1 = arena.publish(&ret_imm(5)).unwrap();
            // 100 000 NOPs sliding into `mov eax, 99; ret`.
            let mut code = vec![0x90u8; 100_000];
            code.extend_from_slice(&ret_imm(99));
            let big = arena.publish(&code).unwrap();
            let small2 = arena.publish(&ret_imm(6)).unwrap();
            assert_eq!((call(big), call(small1), call(small2)), (99, 5, 6));
            let big_len = round_up(code.len(), page_size()).unwrap();
            if arena.strategy().double_mapped() {
                // The small stubs still share the first chunk.
                assert_eq!(small2 as usize - small1 as usize, BLOCK_ALIGN);
                assert_eq!(arena.mapped_bytes(), before + big_len);
            } else {
                assert_eq!(arena.mapped_bytes(), before + big_len + 2 * page_size());
            }
        }
    }

    #[test]
    fn concurrent_publishing_gives_distinct_working_stubs() {
        for arena in every() {
            let per_thread = 200;
            let results: Vec<Vec<(usize, i32)>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|t| {
                        let arena = &arena;
                        s.spawn(move || {
                            (0..per_thread)
                                .map(|i| {
                                    let v = t * 10_000 + i;
                                    let p = arena.publish(&ret_imm(v)).unwrap();
                                    assert_eq!(call(p), v);
                                    (p as usize, v)
                                })
                                .collect()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut all: Vec<(usize, i32)> = results.into_iter().flatten().collect();
            assert_eq!(all.len(), 8 * per_thread as usize);
            for &(p, v) in &all {
                assert_eq!(call(p as *const u8), v, "after all threads finished");
            }
            all.sort_unstable();
            all.dedup_by_key(|e| e.0);
            assert_eq!(all.len(), 8 * per_thread as usize, "duplicate addresses");
        }
    }

    #[test]
    fn empty_code_is_an_error() {
        for arena in every() {
            assert!(matches!(arena.publish(&[]), Err(Error::CodeMemory { .. })));
        }
    }

    #[test]
    fn rounding_overflow_is_an_error() {
        assert_eq!(round_up(usize::MAX - 3, 16), None);
        assert_eq!(round_up(17, 16), Some(32));
        assert_eq!(round_up(4096, 4096), Some(4096));
        let arena = CodeArena::new(Strategy::DoubleMapped).unwrap();
        assert!(matches!(
            arena.reserve(usize::MAX - 3),
            Err(Error::CodeMemory { .. })
        ));
    }

    /// Not a benchmark: a rough figure for the report (`--nocapture`).
    #[test]
    fn publish_cost_and_footprint() {
        for s in [Strategy::DoubleMapped, Strategy::DoubleMappedAnon] {
            if under_qemu() && s == Strategy::DoubleMappedAnon {
                continue;
            }
            let t = Instant::now();
            let n = 20;
            for _ in 0..n {
                CodeArena::new(s).unwrap();
            }
            println!(
                "{s:?}: {:?} per new chunk (two views, fill)",
                t.elapsed() / n
            );
        }
        for arena in every() {
            let before = arena.mapped_bytes();
            let n = 1000;
            let t = Instant::now();
            for i in 0..n {
                arena.publish(&ret_imm(i)).unwrap();
            }
            let per = t.elapsed() / n as u32;
            let mapped = arena.mapped_bytes() - before;
            println!(
                "{:?}: {per:?} per small publish; {n} stubs added {mapped} mapped bytes \
                 ({} in total)",
                arena.strategy(),
                arena.mapped_bytes()
            );
            match arena.strategy() {
                // 1000 x 16 bytes fit the probe chunk.
                Strategy::DoubleMapped | Strategy::DoubleMappedAnon => assert_eq!(mapped, 0),
                Strategy::MprotectFlip => assert_eq!(mapped, n as usize * page_size()),
            }
        }
    }

    // ---- strategy choice ----

    /// Set in a re-executed child to the scenario it runs.
    const CHAIN_CHILD: &str = "JITFFI_ARENA_CHAIN_CHILD";

    /// Makes syscalls of the calling thread fail as hardened systems do: if
    /// `deny_exec`, `mprotect` asking for `PROT_EXEC` fails with `EACCES`
    /// (SELinux `deny_execmem` on anonymous memory); each of `refuse`
    /// fails with `EPERM` (a seccomp policy). Filters only add up. `false`
    /// if this kernel or sandbox allows no seccomp filter.
    fn seccomp_refuse(deny_exec: bool, refuse: &[libc::c_long]) -> bool {
        use libc::{
            sock_filter, BPF_ABS, BPF_JEQ, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_RET, BPF_W,
        };
        let op = |code: u32, k: u32, jt: u8, jf: u8| sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        };
        let load = |offset: u32| op(BPF_LD | BPF_W | BPF_ABS, offset, 0, 0);
        let ret = |k: u32| op(BPF_RET | BPF_K, k, 0, 0);
        let errno = |e: i32| ret(libc::SECCOMP_RET_ERRNO | e as u32);
        // seccomp_data: the syscall number at 0, args[2] (low half) at 32.
        let mut prog = Vec::new();
        if deny_exec {
            prog.push(load(0));
            prog.push(op(
                BPF_JMP | BPF_JEQ | BPF_K,
                libc::SYS_mprotect as u32,
                0,
                3,
            ));
            prog.push(load(32));
            prog.push(op(BPF_JMP | BPF_JSET | BPF_K, libc::PROT_EXEC as u32, 0, 1));
            prog.push(errno(libc::EACCES));
        }
        prog.push(load(0));
        for &nr in refuse {
            prog.push(op(BPF_JMP | BPF_JEQ | BPF_K, nr as u32, 0, 1));
            prog.push(errno(libc::EPERM));
        }
        prog.push(ret(libc::SECCOMP_RET_ALLOW));
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_mut_ptr(),
        };
        // SAFETY: prctl reads the filter program, which outlives the call;
        // no_new_privs only restricts this process.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                && libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog) == 0
        }
    }

    /// Mappings of exactly one chunk's size that no memfd backs: where a
    /// refused shared-anonymous attempt would leak its views.
    fn chunk_sized_anon_mappings() -> Vec<String> {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines()
            .filter(|l| {
                let (a, b) = l
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .split_once('-')
                    .unwrap();
                let len =
                    usize::from_str_radix(b, 16).unwrap() - usize::from_str_radix(a, 16).unwrap();
                len == CHUNK_SIZE && !l.contains("memfd:")
            })
            .map(str::to_string)
            .collect()
    }

    /// Runs in a child process only (see `auto_falls_back_along_the_chain`).
    #[test]
    fn child_arena_chain() {
        let Some(scenario) = std::env::var_os(CHAIN_CHILD) else {
            return;
        };
        match scenario.to_str().unwrap() {
            "default" => {
                let first = if under_qemu() {
                    Strategy::DoubleMapped
                } else {
                    Strategy::DoubleMappedAnon
                };
                assert_eq!(CodeArena::auto().unwrap().strategy(), first);
                // Said once per process.
                assert_eq!(CodeArena::auto().unwrap().strategy(), first);
            }
            "refusals" => {
                let before = chunk_sized_anon_mappings();
                // mremap refused (a seccomp policy): the memfd next.
                if !seccomp_refuse(false, &[libc::SYS_mremap]) {
                    println!("@no seccomp");
                    return;
                }
                let a = CodeArena::auto().unwrap();
                assert_eq!(a.strategy(), Strategy::DoubleMapped);
                assert_eq!(call(a.publish(&ret_imm(11)).unwrap()), 11);
                assert_eq!(chunk_sized_anon_mappings(), before, "a refused try leaked");
                // memfds refused too (vm.memfd_noexec = 2 refuses their
                // executable mapping the same way): the mprotect fallback.
                assert!(seccomp_refuse(false, &[libc::SYS_memfd_create]));
                let a = CodeArena::auto().unwrap();
                assert_eq!(a.strategy(), Strategy::MprotectFlip);
                assert_eq!(call(a.publish(&ret_imm(12)).unwrap()), 12);
                // Nothing may become executable: an error, not a panic.
                assert!(seccomp_refuse(true, &[]));
                match CodeArena::auto() {
                    Err(Error::CodeMemory { reason }) => {
                        for s in ["DoubleMappedAnon: ", "DoubleMapped: ", "MprotectFlip: "] {
                            assert!(reason.contains(s), "{reason}");
                        }
                    }
                    other => panic!("{other:?}"),
                }
                assert_eq!(chunk_sized_anon_mappings(), before, "a refused try leaked");
            }
            "deny_execmem" => {
                let before = chunk_sized_anon_mappings();
                if !seccomp_refuse(true, &[]) {
                    println!("@no seccomp");
                    return;
                }
                // The whole library under the policy: the arena takes the
                // memfd, closure trampolines their memfd page.
                let cif = crate::Cif::new(crate::Type::i32(), &[crate::Type::i32()]).unwrap();
                assert_eq!(global().unwrap().strategy(), Strategy::DoubleMapped);
                let c = crate::Closure::new(&cif, |a, r| r.set(a.get::<i32>(0) * 3)).unwrap();
                // SAFETY: int32_t(int32_t), alive during the call.
                let f: extern "C" fn(i32) -> i32 = unsafe { c.as_fn() };
                assert_eq!(f(14), 42);
                assert_eq!(chunk_sized_anon_mappings(), before, "a refused try leaked");
            }
            other => panic!("unknown scenario {other}"),
        }
        println!("@child ran");
    }

    /// Runs `child_arena_chain` on `scenario` with `JITFFI_DEBUG=1`:
    /// (stdout, stderr), or `None` if seccomp is unavailable.
    fn run_chain_child(scenario: &str) -> Option<(String, String)> {
        let out = self_command()
            .args([
                "--exact",
                "memory::tests::child_arena_chain",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHAIN_CHILD, scenario)
            .env("JITFFI_DEBUG", "1")
            .env_remove("JITFFI_FORCE_MPROTECT")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "{scenario}: {:?}\n{stdout}\n{stderr}",
            out.status
        );
        if stdout.contains("@no seccomp") {
            println!("{scenario}: skipped, no seccomp filters here");
            return None;
        }
        assert!(stdout.contains("@child ran"), "{scenario}:\n{stdout}");
        Some((stdout, stderr))
    }

    #[test]
    fn auto_prefers_shared_anonymous_memory_and_says_so_once() {
        if std::env::var_os(CHAIN_CHILD).is_some() {
            return;
        }
        let (_, stderr) = run_chain_child("default").unwrap();
        let notes: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("jitffi: "))
            .collect();
        assert_eq!(notes.len(), 1, "{stderr}");
        if under_qemu() {
            assert!(
                notes[0].starts_with("jitffi: code arena: DoubleMapped, a memfd"),
                "{stderr}"
            );
            assert!(notes[0].contains("mremap making a second view"), "{stderr}");
            return;
        }
        assert!(
            notes[0].starts_with("jitffi: code arena: DoubleMappedAnon, shared anonymous memory"),
            "{stderr}"
        );
        assert!(!notes[0].contains("refused"), "{stderr}");
    }

    #[test]
    fn auto_falls_back_along_the_chain() {
        if std::env::var_os(CHAIN_CHILD).is_some() {
            return;
        }
        if let Some((_, stderr)) = run_chain_child("refusals") {
            let note = stderr
                .lines()
                .find(|l| l.starts_with("jitffi: "))
                .unwrap_or_default();
            assert!(
                note.starts_with("jitffi: code arena: DoubleMapped, a memfd"),
                "{stderr}"
            );
            assert!(note.contains("refused: DoubleMappedAnon: "), "{stderr}");
            assert!(note.contains("mremap making a second view"), "{stderr}");
        }
        if let Some((_, stderr)) = run_chain_child("deny_execmem") {
            let note = stderr
                .lines()
                .find(|l| l.starts_with("jitffi: "))
                .unwrap_or_default();
            assert!(
                note.starts_with("jitffi: code arena: DoubleMapped, a memfd"),
                "{stderr}"
            );
            assert!(note.contains("refused: DoubleMappedAnon: "), "{stderr}");
            assert!(note.contains("mprotect of the RX view"), "{stderr}");
        }
    }

    // ---- closure slots ----

    use crate::closure::record;
    use std::collections::HashSet;

    /// Serialises the tests that use the global slot lists, so that what
    /// one frees is still there when it looks.
    static SLOT_TESTS: Mutex<()> = Mutex::new(());

    fn slot_lock() -> std::sync::MutexGuard<'static, ()> {
        SLOT_TESTS.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `mov rax, r11; ret` (x86-64) or `mov x0, x17; ret` (AArch64):
    /// returns the record address the trampoline set.
    fn r11_thunk() -> *const u8 {
        #[cfg(target_arch = "x86_64")]
        let code = [0x4C, 0x89, 0xD8, 0xC3];
        #[cfg(target_arch = "aarch64")]
        let code = [0xE0, 0x03, 0x11, 0xAA, 0xC0, 0x03, 0x5F, 0xD6];
        publish(&code).unwrap()
    }

    fn read_word(p: *const u8) -> usize {
        // SAFETY: callers pass aligned words inside live records.
        unsafe { p.cast::<usize>().read() }
    }

    fn call_usize(p: *const u8) -> usize {
        // SAFETY: callers pass trampolines whose record's thunk is
        // `r11_thunk`, a complete `extern "C" fn() -> usize`.
        let f = unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> usize>(p) };
        f()
    }

    /// The mapping of this process holding `p`: (permissions, whole line).
    fn mapping_of(p: usize) -> (String, String) {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        for line in maps.lines() {
            let mut f = line.split_whitespace();
            let (a, b) = f.next().unwrap().split_once('-').unwrap();
            let (a, b) = (
                usize::from_str_radix(a, 16).unwrap(),
                usize::from_str_radix(b, 16).unwrap(),
            );
            if a <= p && p < b {
                return (f.next().unwrap().to_string(), line.to_string());
            }
        }
        panic!("{p:#x} is in no mapping");
    }

    #[cfg(target_arch = "x86_64")]
    fn check_trampoline(t: &[u8], s: ClosureSlot, code_len: usize, i: usize) {
        assert_eq!(
            &t[..7],
            &[0xF3, 0x0F, 0x1E, 0xFA, 0x4C, 0x8D, 0x1D],
            "slot {i}"
        );
        assert_eq!(&t[11..], &[0x41, 0xFF, 0x23, 0xCC, 0xCC], "slot {i}");
        let disp = i32::from_le_bytes(t[7..11].try_into().unwrap());
        // rip after the lea, plus the displacement, is the record.
        let target = (s.code as usize + 11).wrapping_add_signed(disp as isize);
        assert_eq!(target, s.record as usize, "slot {i}");
        assert_eq!(disp as usize, code_len + 48 * i - 11, "slot {i}");
    }

    /// Decodes `adrp x17; add x17, x17, #lo12; ldr x16, [x17]; br x16`.
    #[cfg(target_arch = "aarch64")]
    fn check_trampoline(t: &[u8], s: ClosureSlot, _code_len: usize, i: usize) {
        let w: Vec<u32> = t
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(w[0] & 0x9F00_001F, 0x9000_0011, "adrp x17, slot {i}");
        assert_eq!(w[1] & 0xFFC0_03FF, 0x9100_0231, "add x17, x17, slot {i}");
        assert_eq!(
            w[2..],
            [0xF940_0230, 0xD61F_0200],
            "ldr x16, [x17]; br x16, slot {i}"
        );
        let immlo = u64::from((w[0] >> 29) & 3);
        let immhi = u64::from((w[0] >> 5) & 0x7_FFFF);
        let pages = (((immhi << 2) | immlo) << 43) as i64 >> 43;
        let page = (s.code as usize & !0xFFF).wrapping_add_signed((pages << 12) as isize);
        let target = page + ((w[1] >> 10) & 0xFFF) as usize;
        assert_eq!(target, s.record as usize, "slot {i}");
    }

    #[test]
    fn closure_chunk_layout_and_trampoline_bytes() {
        let (code_len, data_len) = closure_chunk_layout().unwrap();
        assert_eq!((code_len, data_len), (4096, 4 * 4096));
        for force_memfd in [false, true] {
            let slots = map_closure_chunk(force_memfd).unwrap();
            assert_eq!(slots.len(), CLOSURE_CHUNK_SLOTS);
            let base = slots[0].code as usize;
            let data = base + code_len;
            assert_eq!(base % page_size(), 0);
            let codes: HashSet<usize> = slots.iter().map(|s| s.code as usize).collect();
            let records: HashSet<usize> = slots.iter().map(|s| s.record as usize).collect();
            assert_eq!(codes.len(), CLOSURE_CHUNK_SLOTS, "distinct trampolines");
            assert_eq!(records.len(), CLOSURE_CHUNK_SLOTS, "distinct records");
            for (i, s) in slots.iter().enumerate() {
                assert_eq!(s.code as usize, base + 16 * i);
                assert_eq!(s.record as usize, data + 64 * i);
                assert_eq!(read_word(s.record), freed_routine(), "idle thunk of {i}");
                for w in [
                    record::CIF_STORAGE,
                    record::CIF,
                    record::FUN,
                    record::USER_DATA,
                ] {
                    assert_eq!(read_word(s.record.wrapping_add(w)), 0, "word {w} of {i}");
                }
            }
            for i in [0usize, 1, 2, 100, 254, 255] {
                let s = slots[i];
                // SAFETY: a trampoline is 16 readable (RX) bytes.
                let t = unsafe { std::slice::from_raw_parts(s.code, 16) };
                check_trampoline(t, s, code_len, i);
            }
            // The code page is read-execute, never writable; the records
            // are plain read-write data.
            let (code_perms, line) = mapping_of(base);
            assert!(code_perms.starts_with("r-x"), "{line}");
            if force_memfd {
                assert_eq!(code_perms, "r-xs", "{line}");
                assert!(line.contains("jitffi-closures"), "{line}");
            } else {
                assert_eq!(code_perms, "r-xp", "{line}");
            }
            for p in [data, data + data_len - 1] {
                let (perms, line) = mapping_of(p);
                assert_eq!(perms, "rw-p", "{line}");
            }
        }
    }

    #[test]
    fn slot_code_puts_the_record_in_r11_and_jumps_through_its_thunk_word() {
        let thunk = r11_thunk();
        for force_memfd in [false, true] {
            let slots = map_closure_chunk(force_memfd).unwrap();
            for i in [0usize, 1, 77, 255] {
                let s = slots[i];
                // SAFETY: the record is this test's (the chunk was never
                // added to the free lists).
                unsafe { s.record.cast::<*const u8>().write(thunk) };
                assert_eq!(call_usize(s.code), s.record as usize, "slot {i}");
            }
        }
    }

    #[test]
    fn larger_records_get_their_own_chunks_found_by_address() {
        let thunk = r11_thunk();
        for (size, count) in [(128, 128), (256, 64), (4096, 4), (16384, 1), (1 << 20, 1)] {
            let (code_len, data_len, n) = closure_chunk_geometry(size).unwrap();
            assert_eq!((code_len, n), (4096, count), "{size}");
            assert_eq!(data_len, (count * size).max(4096), "{size}");
            let slots = map_closure_slots(size).unwrap();
            assert_eq!(slots.len(), count, "{size}");
            let base = slots[0].code as usize;
            for (i, s) in slots.iter().enumerate() {
                assert_eq!(s.code as usize, base + 16 * i);
                assert_eq!(s.record as usize, base + code_len + size * i);
                assert_eq!(read_word(s.record), freed_routine());
                assert_eq!(closure_slot_of(s.record), Some((*s, size)));
                // Inside a record, or past the last one: not a record.
                assert_eq!(closure_slot_of(s.record.wrapping_add(64)), None);
                assert_eq!(closure_slot_of(s.record.wrapping_add(size - 1)), None);
                for off in [0, 8, 64, size / 2, size - 1] {
                    let inside = s.record.wrapping_add(off);
                    assert_eq!(closure_record_containing(inside), Some((*s, size)));
                }
                // SAFETY: the slots are this test's, in no free list.
                unsafe { s.record.cast::<*const u8>().write(thunk) };
                assert_eq!(call_usize(s.code), s.record as usize, "{size} slot {i}");
                // SAFETY: as above; not called again.
                unsafe { retire_closure_record(s.record) };
                assert_eq!(read_word(s.record), freed_routine());
            }
            let last = slots[count - 1].record as usize;
            assert_eq!(closure_slot_of((last + size) as *const u8), None);
            assert_eq!(closure_record_containing((last + size) as *const u8), None);
            let before = slots[0].record.wrapping_sub(1);
            assert_eq!(closure_record_containing(before), None, "code page");
            let (perms, line) = mapping_of(base);
            assert_eq!(perms, "r-xp", "{line}");
            let (perms, line) = mapping_of(base + code_len);
            assert_eq!(perms, "rw-p", "{line}");
        }
        // From another thread, alternating between two chunks (the memo
        // of the last chunk misses every time).
        let s = map_closure_slots(512).unwrap()[5];
        let t = map_closure_slots(1024).unwrap()[2];
        let found = std::thread::spawn(move || {
            let (s, t) = (s, t);
            (0..4)
                .map(|i| {
                    let x = if i % 2 == 0 { s } else { t };
                    closure_slot_of(x.record).map(|(x, n)| (x.code as usize, n))
                })
                .collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        let (sc, tc) = (s.code as usize, t.code as usize);
        assert_eq!(
            found,
            [
                Some((sc, 512)),
                Some((tc, 1024)),
                Some((sc, 512)),
                Some((tc, 1024))
            ]
        );
        for bad in [0, 32, 96, 100, MAX_CLOSURE_RECORD * 2] {
            assert!(map_closure_slots(bad).is_err(), "{bad}");
        }
        let local = 7u64;
        assert_eq!(closure_slot_of((&local as *const u64).cast()), None);
        assert_eq!(closure_slot_of(std::ptr::null()), None);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn trampoline_refuses_out_of_reach_records() {
        assert!(trampoline(0x1000, 0x1000 + 11 + i32::MAX as usize).is_some());
        assert!(trampoline(0x1000, 0x1000 + 12 + i32::MAX as usize).is_none());
        assert!(trampoline(usize::MAX - 3, 0).is_none());
    }

    #[test]
    #[cfg(target_arch = "aarch64")]
    fn trampoline_refuses_out_of_reach_records() {
        // adrp reaches 2^20 pages either way.
        let at = 8 << 32;
        assert!(trampoline(at, at + (1 << 32) - 1).is_some());
        assert!(trampoline(at, at + (1 << 32)).is_none());
        assert!(trampoline(at, at - (1 << 32)).is_some());
        assert!(trampoline(at, at - (1 << 32) - 4096).is_none());
    }

    #[test]
    fn free_installs_the_freed_closure_routine_and_zeroes_the_record() {
        let _serial = slot_lock();
        let slot = alloc_closure_slot().unwrap();
        assert_eq!(read_word(slot.record), freed_routine(), "fresh slot");
        for off in (0..record::SIZE).step_by(8) {
            // SAFETY: the record is ours until freed.
            unsafe {
                slot.record
                    .add(off)
                    .cast::<usize>()
                    .write(0xDEAD_0000 + off)
            };
        }
        // SAFETY: allocated above, freed once, never called.
        unsafe { free_closure_slot(slot) };
        assert_eq!(read_word(slot.record), freed_routine());
        for off in (8..record::SIZE).step_by(8) {
            assert_eq!(read_word(slot.record.wrapping_add(off)), 0, "word at {off}");
        }
        // This thread's cache hands the same slot out again (LIFO).
        let again = alloc_closure_slot().unwrap();
        assert_eq!(again, slot);
        // SAFETY: as above.
        unsafe { free_closure_slot(again) };
    }

    #[test]
    fn alloc_uses_whole_chunks_and_never_duplicates() {
        let _serial = slot_lock();
        let before = closure_slot_bytes();
        let n = 3 * CLOSURE_CHUNK_SLOTS + 5;
        let slots: Vec<ClosureSlot> = (0..n).map(|_| alloc_closure_slot().unwrap()).collect();
        let distinct: HashSet<usize> = slots.iter().map(|s| s.code as usize).collect();
        assert_eq!(distinct.len(), n);
        let (code_len, data_len) = closure_chunk_layout().unwrap();
        let grown = closure_slot_bytes() - before;
        assert_eq!(grown % (code_len + data_len), 0);
        assert!(grown <= 4 * (code_len + data_len), "grew by {grown}");
        let thunk = r11_thunk();
        for s in &slots {
            // SAFETY: the record is ours until freed.
            unsafe { s.record.cast::<*const u8>().write(thunk) };
            assert_eq!(call_usize(s.code), s.record as usize);
        }
        for s in slots {
            // SAFETY: allocated above, freed once, not called afterwards.
            unsafe { free_closure_slot(s) };
        }
        // All of them are reused: no growth for the same number again.
        let mid = closure_slot_bytes();
        let again: Vec<ClosureSlot> = (0..n).map(|_| alloc_closure_slot().unwrap()).collect();
        assert_eq!(closure_slot_bytes(), mid);
        for s in again {
            // SAFETY: as above.
            unsafe { free_closure_slot(s) };
        }
    }

    #[test]
    fn an_exiting_thread_returns_its_cached_slots() {
        let _serial = slot_lock();
        let freed: Vec<usize> = std::thread::spawn(|| {
            let slots: Vec<ClosureSlot> = (0..10).map(|_| alloc_closure_slot().unwrap()).collect();
            let addrs = slots.iter().map(|s| s.record as usize).collect();
            for s in slots {
                // SAFETY: allocated above, freed once, never called.
                unsafe { free_closure_slot(s) };
            }
            addrs
        })
        .join()
        .unwrap();
        let global: HashSet<usize> = free_slots().iter().map(|s| s.record as usize).collect();
        for r in freed {
            assert!(
                global.contains(&r),
                "slot {r:#x} stayed in a dead thread's cache"
            );
        }
    }

    const FREED_CHILD: &str = "JITFFI_FREED_SLOT_CHILD";

    /// Runs in a child process only (see `calling_a_freed_slot_aborts`).
    #[test]
    fn child_calls_a_freed_slot() {
        if std::env::var_os(FREED_CHILD).is_none() {
            return;
        }
        let slot = alloc_closure_slot().unwrap();
        // SAFETY: the record is ours until freed.
        unsafe { slot.record.cast::<*const u8>().write(r11_thunk()) };
        assert_eq!(call_usize(slot.code), slot.record as usize);
        // SAFETY: allocated above and freed once; the call below is the
        // deliberate misuse under test, which must abort.
        unsafe { free_closure_slot(slot) };
        // SAFETY: not sound, on purpose: the freed slot's thunk is the
        // abort routine, which never returns.
        let f =
            unsafe { std::mem::transmute::<*const u8, extern "C" fn(i32, f64) -> i32>(slot.code) };
        let r = f(1, 2.0);
        println!("the freed slot returned {r}");
    }

    #[test]
    fn calling_a_freed_slot_aborts_with_a_message() {
        use std::os::unix::process::ExitStatusExt;
        if std::env::var_os(FREED_CHILD).is_some() {
            return;
        }
        let out = self_command()
            .args([
                "--exact",
                "memory::tests::child_calls_a_freed_slot",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(FREED_CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "child survived:\n{stdout}\n{stderr}");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{:?}\n{stdout}\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains(
                "jitffi: a freed closure was called (its code pointer outlived the Closure)"
            ),
            "stderr:\n{stderr}"
        );
        assert!(!stdout.contains("returned"), "{stdout}");
    }
}
