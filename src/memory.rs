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
//! # Double mapping (the normal path, [`Strategy::DoubleMapped`])
//!
//! Code lives in *chunks*. A chunk is an anonymous in-memory file
//! (`memfd_create("jitffi-code")`) sized with `ftruncate` and mapped twice,
//! both `MAP_SHARED`:
//!
//! ```text
//!            memfd "jitffi-code" (64 KiB, or a large request rounded to pages)
//!               |                                   |
//!    RW view (rw-s): the only place we write    RX view (r-xp): the only place we run
//! ```
//!
//! Both views reach the same physical pages, so bytes written through the RW
//! view are immediately the instructions of the RX view, and neither view
//! ever changes protection. That buys two things a `mprotect` flip cannot:
//! many stubs share one page (stubs are bump-allocated, 16-byte aligned,
//! the gaps filled with a trapping byte), and code that is already running
//! can be rewritten in place (closure trampolines, see `CodeBlock`). The
//! memfd is sealed against resizing and its descriptor closed once mapped;
//! only the two mappings keep it alive.
//!
//! # Fallback ([`Strategy::MprotectFlip`])
//!
//! Where `memfd_create` or the executable shared mapping is refused
//! (seccomp filters, `vm.memfd_noexec = 2`, noexec policies), each publish
//! maps fresh anonymous pages read-write, copies the code in, and flips them
//! to read-execute with `mprotect`. Pages are never made writable again
//! once executable, so neighbours cannot be added to a flipped page: every
//! publish costs at least one whole page (4 KiB for a ~50-byte stub), and
//! code cannot be patched after publication. The fallback is chosen once,
//! when the global arena is created, and reported on stderr if
//! `JITFFI_DEBUG` is set. `JITFFI_FORCE_MPROTECT=1` forces it.
//!
//! Code memory is never unmapped, not even when a [`CodeArena`] is dropped:
//! published addresses are cached for the life of the process.
//!
//! # Limits
//!
//! Double mapping keeps every *page* W^X, but the process still holds a
//! writable alias of its code. The kernel tends to place the two views next
//! to each other, so an attacker who knows a stub address and can write
//! anywhere can find the alias; placing the RW view at a random address
//! would harden this. The fallback has no alias at all.

use std::ffi::c_void;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
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
    DoubleMapped,
    /// Anonymous pages written RW, then flipped to RX with `mprotect`.
    MprotectFlip,
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
/// at `rx`. Under [`Strategy::DoubleMapped`], `rw` stays valid after commit:
/// this is where the closures work goes, writing through `rw` into blocks
/// that are already published (a per-closure data word, or a whole
/// trampoline taken from a free list). Under [`Strategy::MprotectFlip`]
/// `rw == rx` and it must not be written after commit (the page is RX);
/// closure code there must be complete before it is committed, with
/// mutable per-closure state kept in ordinary data memory.
///
/// Free lists belong in [`Inner`] next to the bump pointer: a freed
/// closure block returns `(rw, rx, len)` to a list keyed by `len`, and
/// `reserve` consults it before bumping. Reusing a block that another
/// thread may have executed needs a core-serialising step before the new
/// code is run elsewhere (e.g. `membarrier(SYNC_CORE)`); fresh blocks do not.
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

/// Maps one memfd chunk of `size` bytes (a multiple of the page size)
/// twice and fills it with the trapping byte.
fn map_chunk(size: usize) -> Result<Chunk> {
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
    // SAFETY: the RW view is `size` writable bytes that nothing else uses yet.
    unsafe { std::ptr::write_bytes(rw_ptr.as_ptr(), PAD_BYTE, size) };
    // Code memory lives for the process: forget the owners so nothing ever
    // unmaps it. The descriptor closes when `file` drops; the mappings keep
    // the memfd alive.
    std::mem::forget(rw);
    Ok(Chunk {
        rw: rw_ptr,
        rx: rx_ptr,
        size,
        used: 0,
    })
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
            Strategy::DoubleMapped => {
                let chunk = map_chunk(CHUNK_SIZE)?;
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

    /// The best arena this environment allows: double mapping, or the
    /// mprotect fallback if that is refused or `JITFFI_FORCE_MPROTECT` is
    /// set (to anything but `0`). The fallback is reported once on stderr
    /// when `JITFFI_DEBUG` is set.
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
        if env_flag("JITFFI_FORCE_MPROTECT") {
            debug_once(
                "JITFFI_FORCE_MPROTECT is set: code pages are written, then flipped to RX \
                 with mprotect (at least one page per stub)",
            );
            return CodeArena::new(Strategy::MprotectFlip);
        }
        CodeArena::new(Strategy::DoubleMapped).or_else(|e| {
            debug_once(&format!(
                "double-mapped code memory refused ({e}); falling back to pages written, \
                 then flipped to RX with mprotect (at least one page per stub)"
            ));
            CodeArena::new(Strategy::MprotectFlip)
        })
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
            Strategy::DoubleMapped => self.reserve_shared(len),
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

    fn reserve_shared(&self, len: usize) -> Result<CodeBlock> {
        let need = round_up(len, BLOCK_ALIGN).ok_or_else(|| too_large(len))?;
        let mut inner = self.lock();
        if need > CHUNK_SIZE {
            // A chunk of its own; the current chunk keeps serving small
            // requests.
            let size = round_up(need, page_size()).ok_or_else(|| too_large(len))?;
            let chunk = map_chunk(size)?;
            inner.mapped += size;
            return Ok(CodeBlock {
                rw: chunk.rw.as_ptr(),
                rx: chunk.rx.as_ptr(),
                len: size,
            });
        }
        let fits = inner
            .current
            .as_ref()
            .is_some_and(|c| c.size - c.used >= need);
        if !fits {
            let chunk = map_chunk(CHUNK_SIZE)?;
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
        if self.strategy == Strategy::MprotectFlip {
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

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::time::Instant;

    /// `mov eax, imm32; ret`
    fn ret_imm(v: i32) -> [u8; 6] {
        let b = v.to_le_bytes();
        [0xB8, b[0], b[1], b[2], b[3], 0xC3]
    }

    fn call(p: *const u8) -> i32 {
        // SAFETY: every pointer passed here is a published `ret_imm`-style
        // stub, a complete `extern "C" fn() -> i32`.
        let f = unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> i32>(p) };
        f()
    }

    fn both() -> Vec<CodeArena> {
        vec![
            CodeArena::new(Strategy::DoubleMapped).unwrap(),
            CodeArena::new(Strategy::MprotectFlip).unwrap(),
        ]
    }

    #[test]
    fn stubs_run_under_both_strategies() {
        for arena in both() {
            for v in [0, 1, -1, 42, i32::MIN, i32::MAX, 0x1234_5678] {
                let p = arena.publish(&ret_imm(v)).unwrap();
                assert_eq!(p as usize % BLOCK_ALIGN, 0);
                assert_eq!(call(p), v, "{:?}", arena.strategy());
            }
        }
    }

    #[test]
    fn code_lands_near_jitffi_under_both_strategies() {
        // On this project's machines the range below the (PIE) test binary
        // is free, so placement must succeed; elsewhere it may fall back.
        let home = map_near as *const () as usize;
        for arena in both() {
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

    #[test]
    fn small_stubs_share_a_page_and_are_padded_with_int3() {
        let arena = CodeArena::new(Strategy::DoubleMapped).unwrap();
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
            let tail = unsafe { std::slice::from_raw_parts(p.add(6), BLOCK_ALIGN - 6) };
            assert!(tail.iter().all(|&b| b == 0xCC), "padding of stub {i}");
        }
        assert_eq!(arena.mapped_bytes(), CHUNK_SIZE);
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
        let arena = CodeArena::new(Strategy::DoubleMapped).unwrap();
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

    #[test]
    fn large_publish_gets_its_own_chunk() {
        for arena in both() {
            let before = arena.mapped_bytes();
            let small1 = arena.publish(&ret_imm(5)).unwrap();
            // 100 000 NOPs sliding into `mov eax, 99; ret`.
            let mut code = vec![0x90u8; 100_000];
            code.extend_from_slice(&ret_imm(99));
            let big = arena.publish(&code).unwrap();
            let small2 = arena.publish(&ret_imm(6)).unwrap();
            assert_eq!((call(big), call(small1), call(small2)), (99, 5, 6));
            let big_len = round_up(code.len(), page_size()).unwrap();
            if arena.strategy() == Strategy::DoubleMapped {
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
        for arena in both() {
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
        for arena in both() {
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
        let t = Instant::now();
        let n = 20;
        for _ in 0..n {
            CodeArena::new(Strategy::DoubleMapped).unwrap();
        }
        println!(
            "DoubleMapped: {:?} per new chunk (memfd, two mappings, fill)",
            t.elapsed() / n
        );
        for arena in both() {
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
                Strategy::DoubleMapped => assert_eq!(mapped, 0),
                Strategy::MprotectFlip => assert_eq!(mapped, n as usize * page_size()),
            }
        }
    }
}

/// A closure's slot: a 64-byte record in ordinary read-write memory and the
/// trampoline that makes it callable.
///
/// The trampoline is never written after its page became executable: it
/// loads the record's address into `r11` and jumps through the record's
/// first word (the shape's thunk). Everything that varies per closure lives
/// in the record (see [`crate::closure::record`]).
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

/// Takes a closure slot from the free list, mapping a new chunk of
/// trampolines when it is empty. Thread-safe.
pub fn alloc_closure_slot() -> Result<ClosureSlot> {
    Err(Error::CodeMemory {
        reason: "closure slots under construction".into(),
    })
}

/// Returns a slot to the free list. Its record's thunk word is pointed at a
/// routine that aborts with a clear message, so a call through a dangling
/// closure pointer fails loudly instead of running stale code.
///
/// # Safety
/// `slot` came from [`alloc_closure_slot`], is not freed twice, and nothing
/// calls its code any more.
pub unsafe fn free_closure_slot(slot: ClosureSlot) {
    let _ = slot;
}

/// Bytes mapped for closure slots (trampoline and record pages together).
pub fn closure_slot_bytes() -> usize {
    0
}
