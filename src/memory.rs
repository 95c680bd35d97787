//! Executable memory. (Placeholder: one RW mapping per publish, flipped to
//! RX; the double-mapped memfd arena replaces it.)

use crate::error::{Error, Result};

/// How code pages are made executable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// One memfd mapped twice: a RW view for writing, a RX view for running.
    DoubleMapped,
    /// Anonymous pages written RW, then flipped to RX with `mprotect`.
    MprotectFlip,
}

/// Copies `code` into executable memory and returns its address. The
/// memory lives for the rest of the process.
pub fn publish(code: &[u8]) -> Result<*const u8> {
    let len = code.len().max(1).div_ceil(4096) * 4096;
    // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(Error::CodeMemory {
            reason: std::io::Error::last_os_error().to_string(),
        });
    }
    // SAFETY: `p` is a fresh RW mapping of `len >= code.len()` bytes.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), p.cast::<u8>(), code.len()) };
    // SAFETY: `p`/`len` describe exactly the mapping made above.
    if unsafe { libc::mprotect(p, len, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        return Err(Error::CodeMemory {
            reason: std::io::Error::last_os_error().to_string(),
        });
    }
    Ok(p.cast::<u8>())
}
