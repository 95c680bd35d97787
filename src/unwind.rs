//! Unwind information for generated code, so that C++ exceptions, Rust
//! backtraces, gdb and perf walk through jitffi's stubs and thunks.
//!
//! The emitters describe each piece of code's frame ([`emit::Code`]);
//! [`eh_frame`] turns that description into a self-contained `.eh_frame`
//! section in DWARF call frame information: one CIE, one FDE per piece of
//! code, and the zero word that ends a section. [`register_section`] hands
//! it to the system unwinder.
//!
//! The CIE says: code alignment 1, data alignment -8, return address in
//! column 16 (`rip`), augmentation `zR`, and the x86-64 call-entry state:
//! CFA = `rsp + 8`, return address at `CFA - 8`. FDE addresses are
//! `pcrel|sdata4` when the code lies within 1 GiB of the section (the
//! cache publishes each section right after the code it describes, in the
//! same block, so it can be built before the block has an address), and
//! absolute 8-byte values otherwise. Each FDE then replays the emitter's
//! [`FrameStep`]s with `DW_CFA_advance_loc*`, `def_cfa*`, `offset*` and
//! `restore*`.
//!
//! Registration uses libgcc's `__register_frame`, which takes the start of
//! a whole section (CIE, FDEs, terminator) and keeps reading it for the
//! rest of the process: sections live as long as the code they describe
//! (forever) and are never deregistered. Every unwinder in the process that
//! goes through `libgcc_s` (C++'s `throw`, Rust's backtraces and panics,
//! glibc's `backtrace`) then finds them. Registration is a lock, a small
//! `malloc` and a list insertion, paid once per compiled shape; libgcc 12
//! keeps registered objects in a list it classifies on the first unwind
//! that searches them and then scans on every frame lookup (libgcc 13 and
//! later use a b-tree). Elsewhere than linux-gnu (LLVM's libunwind takes
//! single FDEs) nothing is registered yet: see [`is_supported`].
//!
//! ```
//! use jitffi::{classify::classify, emit::{self, EntryForm}, unwind, Abi, Type};
//! let plan = classify(Abi::SysV64, &Type::f64(), &[Type::f64()], None).unwrap();
//! let code = emit::compile_call_with_unwind(&plan, EntryForm::Libffi).unwrap();
//! // A section at 0x2000 describing code at 0x1000.
//! let section = unwind::eh_frame(plan.arch, 0x2000, &[(0x1000, &code)]).unwrap();
//! assert_eq!(section.len() % 8, 4); // CIE and FDE padded to 8, then the 4-byte end
//! assert_eq!(&section[section.len() - 4..], &[0, 0, 0, 0]);
//! ```
//!
//! [`FrameStep`]: crate::emit::FrameStep

use crate::abi::Arch;
use crate::emit::{self, FrameChange, FrameStep};
use crate::error::{Error, Result};
use crate::plan::Loc;

// DWARF call frame instructions (DWARF 5, section 6.4.2) and pointer
// encodings (LSB, .eh_frame).
const DW_CFA_ADVANCE_LOC: u8 = 0x40;
const DW_CFA_OFFSET: u8 = 0x80;
const DW_CFA_RESTORE: u8 = 0xC0;
const DW_CFA_NOP: u8 = 0x00;
const DW_CFA_ADVANCE_LOC1: u8 = 0x02;
const DW_CFA_ADVANCE_LOC2: u8 = 0x03;
const DW_CFA_ADVANCE_LOC4: u8 = 0x04;
const DW_CFA_RESTORE_EXTENDED: u8 = 0x06;
const DW_CFA_DEF_CFA: u8 = 0x0C;
const DW_CFA_DEF_CFA_REGISTER: u8 = 0x0D;
const DW_CFA_DEF_CFA_OFFSET: u8 = 0x0E;
const DW_CFA_OFFSET_EXTENDED_SF: u8 = 0x11;
const DW_CFA_DEF_CFA_SF: u8 = 0x12;
const DW_EH_PE_ABSPTR: u8 = 0x00;
const DW_EH_PE_PCREL_SDATA4: u8 = 0x1B;

/// x86-64 DWARF register numbers (psABI figure 3.36).
const DWARF_RSP: u8 = 7;
const DWARF_RIP: u8 = 16;
/// Data alignment factor: every save slot is a multiple of 8 bytes away
/// from the CFA.
const DATA_ALIGN: i32 = -8;

fn unwind_err(reason: impl Into<String>) -> Error {
    Error::Assembly {
        reason: format!("unwind info: {}", reason.into()),
    }
}

/// The DWARF number of `loc` on x86-64: hardware numbering differs for the
/// first eight general registers, and `xmmN` is `17 + N`.
///
/// ```
/// use jitffi::{plan::Loc, unwind::dwarf_register};
/// assert_eq!(dwarf_register(Loc::Gpr(3)), Some(3)); // rbx
/// assert_eq!(dwarf_register(Loc::Gpr(4)), Some(7)); // rsp
/// assert_eq!(dwarf_register(Loc::Gpr(6)), Some(4)); // rsi
/// assert_eq!(dwarf_register(Loc::Vec(6)), Some(23)); // xmm6
/// assert_eq!(dwarf_register(Loc::Stack(0)), None);
/// ```
pub fn dwarf_register(loc: Loc) -> Option<u8> {
    // rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi by hardware number.
    const LOW: [u8; 8] = [0, 2, 1, 3, 7, 6, 4, 5];
    match loc {
        Loc::Gpr(n @ 0..=7) => Some(LOW[n as usize]),
        Loc::Gpr(n @ 8..=15) => Some(n),
        Loc::Vec(n @ 0..=15) => Some(17 + n),
        _ => None,
    }
}

fn uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn sleb(out: &mut Vec<u8>, mut v: i64) {
    loop {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
        if done {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Pads an entry that started at `start` (its length word) with `nop`s to
/// a multiple of 8 bytes, then fills in its length word.
fn close_entry(out: &mut Vec<u8>, start: usize) -> Result<()> {
    while (out.len() - start) % 8 != 0 {
        out.push(DW_CFA_NOP);
    }
    let len =
        u32::try_from(out.len() - start - 4).map_err(|_| unwind_err("entry longer than 4 GiB"))?;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// How an FDE names its code: relative to the field (4 bytes) or absolute
/// (8 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pointers {
    PcRel,
    Absolute,
}

fn cie(out: &mut Vec<u8>, pointers: Pointers) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]); // length, filled in below
    out.extend_from_slice(&0u32.to_le_bytes()); // CIE id
    out.push(1); // version
    out.extend_from_slice(b"zR\0");
    uleb(out, 1); // code alignment factor
    sleb(out, DATA_ALIGN.into());
    out.push(DWARF_RIP); // return address column (a byte in version 1)
    uleb(out, 1); // augmentation data: the FDE pointer encoding
    out.push(match pointers {
        Pointers::PcRel => DW_EH_PE_PCREL_SDATA4,
        Pointers::Absolute => DW_EH_PE_ABSPTR,
    });
    // The call-entry state: CFA = rsp + 8, return address at CFA - 8.
    out.extend_from_slice(&[DW_CFA_DEF_CFA, DWARF_RSP, 8]);
    out.extend_from_slice(&[DW_CFA_OFFSET | DWARF_RIP, 1]);
    close_entry(out, start)
}

fn advance(out: &mut Vec<u8>, delta: u32) {
    match delta {
        0 => {}
        1..=0x3F => out.push(DW_CFA_ADVANCE_LOC | delta as u8),
        0x40..=0xFF => out.extend_from_slice(&[DW_CFA_ADVANCE_LOC1, delta as u8]),
        0x100..=0xFFFF => {
            out.push(DW_CFA_ADVANCE_LOC2);
            out.extend_from_slice(&(delta as u16).to_le_bytes());
        }
        _ => {
            out.push(DW_CFA_ADVANCE_LOC4);
            out.extend_from_slice(&delta.to_le_bytes());
        }
    }
}

fn register_of(loc: Loc) -> Result<u8> {
    dwarf_register(loc).ok_or_else(|| unwind_err(format!("no DWARF number for {loc:?}")))
}

/// What an FDE describes: code at an address, its length, its frame.
type Entry<'a> = (usize, usize, &'a [FrameStep]);

/// The FDE of `len` bytes of code at `address` with `frame`. `out[base..]`
/// is the section, which starts at address `at` and with the CIE.
fn fde(
    out: &mut Vec<u8>,
    (base, at): (usize, usize),
    pointers: Pointers,
    (address, len, frame): Entry<'_>,
) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    // The CIE pointer: bytes back from this field to the CIE.
    let back = u32::try_from(out.len() - base).map_err(|_| unwind_err("section too long"))?;
    out.extend_from_slice(&back.to_le_bytes());
    match pointers {
        Pointers::PcRel => {
            let field = at.wrapping_add(out.len() - base);
            let delta = i32::try_from(address.wrapping_sub(field) as isize)
                .map_err(|_| unwind_err("code more than 2 GiB from its FDE"))?;
            let len = u32::try_from(len).map_err(|_| unwind_err("code over 4 GiB"))?;
            out.extend_from_slice(&delta.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
        }
        Pointers::Absolute => {
            out.extend_from_slice(&(address as u64).to_le_bytes());
            out.extend_from_slice(&(len as u64).to_le_bytes());
        }
    }
    uleb(out, 0); // no augmentation data
    let mut pc = 0u32;
    let (mut cfa_reg, mut cfa_off) = (DWARF_RSP, 8i32);
    for step in frame {
        if step.offset < pc || step.offset as usize > len {
            return Err(unwind_err(format!(
                "frame step at offset {} out of order or past the code's {} bytes",
                step.offset, len
            )));
        }
        advance(out, step.offset - pc);
        pc = step.offset;
        match step.change {
            FrameChange::Cfa { reg, offset } => {
                let reg = register_of(reg)?;
                if offset < 0 {
                    if offset % DATA_ALIGN != 0 {
                        return Err(unwind_err(format!(
                            "CFA offset {offset} not a multiple of 8"
                        )));
                    }
                    out.push(DW_CFA_DEF_CFA_SF);
                    uleb(out, reg.into());
                    sleb(out, i64::from(offset / DATA_ALIGN));
                } else if reg == cfa_reg {
                    out.push(DW_CFA_DEF_CFA_OFFSET);
                    uleb(out, offset as u64);
                } else if offset == cfa_off {
                    out.push(DW_CFA_DEF_CFA_REGISTER);
                    uleb(out, reg.into());
                } else {
                    out.push(DW_CFA_DEF_CFA);
                    uleb(out, reg.into());
                    uleb(out, offset as u64);
                }
                (cfa_reg, cfa_off) = (reg, offset);
            }
            FrameChange::Saved { reg, offset } => {
                let reg = register_of(reg)?;
                if offset % DATA_ALIGN != 0 {
                    return Err(unwind_err(format!(
                        "save slot at CFA{offset:+} not a multiple of 8"
                    )));
                }
                let factored = offset / DATA_ALIGN;
                if factored >= 0 && reg < 0x40 {
                    out.push(DW_CFA_OFFSET | reg);
                    uleb(out, factored as u64);
                } else {
                    out.push(DW_CFA_OFFSET_EXTENDED_SF);
                    uleb(out, reg.into());
                    sleb(out, factored.into());
                }
            }
            FrameChange::Restored(reg) => {
                let reg = register_of(reg)?;
                if reg < 0x40 {
                    out.push(DW_CFA_RESTORE | reg);
                } else {
                    out.push(DW_CFA_RESTORE_EXTENDED);
                    uleb(out, reg.into());
                }
            }
        }
    }
    close_entry(out, start)
}

/// Builds a `.eh_frame` section that will sit at address `at`, describing
/// each `(address, code)`: one CIE, one FDE per piece of code, then the
/// terminating zero word. The section is a multiple of 4 bytes and must be
/// stored 8-aligned. Only differences between addresses are encoded when
/// the code lies within 1 GiB of `at`, so block offsets serve as well as
/// addresses for a section published in the same block as its code.
///
/// ```
/// use jitffi::{classify::classify, emit, unwind, Abi, Arch, Type};
/// let plan = classify(Abi::SysV64, &Type::void(), &[], None).unwrap();
/// let thunk = emit::compile_closure_thunk_with_unwind(&plan).unwrap();
/// let s = unwind::eh_frame(Arch::X86_64, 0x7040, &[(0x7000, &thunk)]).unwrap();
/// let cie_len = u32::from_le_bytes(s[0..4].try_into().unwrap()) as usize;
/// assert_eq!(&s[8..12], b"\x01zR\0"); // version 1, augmentation "zR"
/// let fde = &s[4 + cie_len..];
/// assert_eq!(u32::from_le_bytes(fde[4..8].try_into().unwrap()) as usize, 4 + cie_len + 4);
/// // pc_begin: relative to its own field, at 0x7040 + cie_len + 12.
/// let pc = i32::from_le_bytes(fde[8..12].try_into().unwrap()) as i64;
/// assert_eq!(0x7040 + 4 + cie_len as i64 + 8 + pc, 0x7000);
/// assert_eq!(u32::from_le_bytes(fde[12..16].try_into().unwrap()) as usize, thunk.bytes.len());
/// ```
pub fn eh_frame(arch: Arch, at: usize, blobs: &[(usize, &emit::Code)]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(32 + 64 * blobs.len());
    append_eh_frame(&mut out, arch, at, blobs)?;
    Ok(out)
}

/// [`eh_frame`], appended to `out` (whose end must be 8-aligned relative
/// to `at`): the section is `out[len_before..]`.
///
/// ```
/// use jitffi::{classify::classify, emit, unwind, Abi, Arch, Type};
/// let plan = classify(Abi::SysV64, &Type::void(), &[], None).unwrap();
/// let code = emit::compile_closure_thunk_with_unwind(&plan).unwrap();
/// let mut block = code.bytes.clone();
/// block.resize(block.len().next_multiple_of(8), 0xCC);
/// let section_at = block.len();
/// unwind::append_eh_frame(&mut block, Arch::X86_64, section_at, &[(0, &code)]).unwrap();
/// assert_eq!(block[section_at..], unwind::eh_frame(Arch::X86_64, section_at, &[(0, &code)]).unwrap());
/// ```
pub fn append_eh_frame(
    out: &mut Vec<u8>,
    arch: Arch,
    at: usize,
    blobs: &[(usize, &emit::Code)],
) -> Result<()> {
    append_entries(out, arch, at, entries(blobs))
}

fn entries<'a>(
    blobs: &'a [(usize, &'a emit::Code)],
) -> impl Iterator<Item = Entry<'a>> + Clone + 'a {
    blobs
        .iter()
        .map(|&(a, c)| (a, c.bytes.len(), c.frame.as_slice()))
}

fn append_entries<'a>(
    out: &mut Vec<u8>,
    arch: Arch,
    at: usize,
    entries: impl Iterator<Item = Entry<'a>> + Clone,
) -> Result<()> {
    if arch != Arch::X86_64 {
        return Err(unwind_err(format!("no unwind tables for {arch:?} yet")));
    }
    // Well inside the reach of a 32-bit offset, whatever the section's size.
    let near = |a: usize| (a.wrapping_sub(at) as isize).unsigned_abs() < (1 << 30);
    let pointers = if entries.clone().all(|(a, _, _)| near(a)) {
        Pointers::PcRel
    } else {
        Pointers::Absolute
    };
    out.reserve(section_bound(entries.clone()));
    let base = out.len();
    cie(out, pointers)?;
    for e in entries {
        fde(out, (base, at), pointers, e)?;
    }
    out.extend_from_slice(&[0; 4]);
    Ok(())
}

/// `true` where [`register`] reaches the system unwinder (linux-gnu, whose
/// `libgcc_s` every C++ and Rust unwinder in the process shares).
///
/// ```
/// # #[cfg(all(target_os = "linux", target_env = "gnu"))]
/// assert!(jitffi::unwind::is_supported());
/// ```
pub const fn is_supported() -> bool {
    cfg!(all(target_os = "linux", target_env = "gnu"))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    /// libgcc: registers the `.eh_frame` section at `begin` (CIE, FDEs,
    /// zero terminator) and keeps using it for the rest of the process.
    fn __register_frame(begin: *const u8);
}

/// At least the size of the section describing `blobs`: the CIE is 24
/// bytes and the end 4; an FDE is at most 32 bytes of header and padding,
/// plus at most 16 per step (an advance of up to 5 bytes and an
/// instruction of up to 8).
fn section_bound<'a>(entries: impl Iterator<Item = Entry<'a>>) -> usize {
    28 + entries.map(|(_, _, f)| 32 + 16 * f.len()).sum::<usize>()
}

/// Registers the `.eh_frame` section at `section` with the system
/// unwinder (a no-op where [`is_supported`] is false).
///
/// # Safety
/// `section` must point at a complete section as [`eh_frame`] builds it,
/// 8-aligned, for the address it is stored at; it must stay readable and
/// unchanged for the rest of the process, as must the code it describes,
/// and it must not be registered twice.
pub unsafe fn register_section(section: *const u8) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: forwarded to the caller's contract, which is libgcc's.
    unsafe {
        __register_frame(section)
    };
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = section;
}

/// Describes code published on its own to the system unwinder: builds the
/// section of [`eh_frame`] in memory of its own, leaks it (the code it
/// describes is never freed either) and registers it. The pieces should be
/// one published block, so that no other registered code lies between
/// them. (The cache instead publishes each section in the same block as
/// its code; see [`append_eh_frame`].)
///
/// ```
/// use jitffi::{classify::classify, emit::{self, EntryForm}, memory, unwind, Abi, Type};
/// let plan = classify(Abi::SysV64, &Type::i64(), &[Type::i64()], None).unwrap();
/// let code = emit::compile_call_with_unwind(&plan, EntryForm::Libffi).unwrap();
/// let at = memory::publish(&code.bytes).unwrap();
/// unwind::register(plan.arch, &[(at as usize, &code)]).unwrap();
/// ```
pub fn register(arch: Arch, blobs: &[(usize, &emit::Code)]) -> Result<()> {
    register_entries(arch, entries(blobs))
}

/// Describes `len` bytes of published code at `at` that never touch the
/// stack pointer (jumps such as closure trampolines): the call-entry state
/// holds throughout. Like [`register`], for code published on its own.
///
/// ```
/// use jitffi::{memory, unwind, Arch};
/// // 32 bytes of `ret`: nothing there moves rsp.
/// let at = memory::publish(&[0xC3; 32]).unwrap() as usize;
/// unwind::register_frameless(Arch::X86_64, at, 32).unwrap();
/// ```
pub fn register_frameless(arch: Arch, at: usize, len: usize) -> Result<()> {
    register_entries(arch, std::iter::once((at, len, &[][..])))
}

fn register_entries<'a>(
    arch: Arch,
    entries: impl Iterator<Item = Entry<'a>> + Clone,
) -> Result<()> {
    // The section's final address decides its pointer encoding: reserve
    // the storage first (an upper bound on the size), build in place.
    let bound = section_bound(entries.clone());
    let words: &'static mut [u64] = Box::leak(vec![0u64; bound.div_ceil(8)].into_boxed_slice());
    let at = words.as_ptr() as usize;
    let mut section = Vec::with_capacity(bound);
    append_entries(&mut section, arch, at, entries)?;
    if section.len() > bound {
        return Err(unwind_err("section larger than its bound"));
    }
    // SAFETY: `section` fits in `words` (checked), which is ours and
    // cannot overlap it.
    unsafe {
        std::ptr::copy_nonoverlapping(section.as_ptr(), words.as_mut_ptr().cast(), section.len())
    };
    // SAFETY: `words` holds a complete section built for its own address,
    // 8-aligned, leaked (never freed or written again); it describes
    // published code, which is never unmapped.
    unsafe { register_section(words.as_ptr().cast()) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_round_numbers() {
        let enc = |f: fn(&mut Vec<u8>, i64), v: i64| {
            let mut out = Vec::new();
            f(&mut out, v);
            out
        };
        let u = |out: &mut Vec<u8>, v: i64| uleb(out, v as u64);
        assert_eq!(enc(u, 2), [2]);
        assert_eq!(enc(u, 127), [0x7F]);
        assert_eq!(enc(u, 128), [0x80, 0x01]);
        assert_eq!(enc(u, 624485), [0xE5, 0x8E, 0x26]);
        assert_eq!(enc(sleb, -8), [0x78]);
        assert_eq!(enc(sleb, 63), [0x3F]);
        assert_eq!(enc(sleb, 64), [0xC0, 0x00]);
        assert_eq!(enc(sleb, -65), [0xBF, 0x7F]);
        assert_eq!(enc(sleb, -123456), [0xC0, 0xBB, 0x78]);
    }

    #[test]
    fn advances_pick_the_shortest_form() {
        let enc = |d: u32| {
            let mut out = Vec::new();
            advance(&mut out, d);
            out
        };
        assert_eq!(enc(0), [0u8; 0]);
        assert_eq!(enc(5), [0x45]);
        assert_eq!(enc(64), [0x02, 64]);
        assert_eq!(enc(0x1234), [0x03, 0x34, 0x12]);
        assert_eq!(enc(0x12_3456), [0x04, 0x56, 0x34, 0x12, 0x00]);
    }

    #[test]
    fn cie_bytes() {
        let mut out = Vec::new();
        cie(&mut out, Pointers::Absolute).unwrap();
        #[rustfmt::skip]
        let want = [
            20, 0, 0, 0,        // length
            0, 0, 0, 0,         // CIE id
            1, b'z', b'R', 0,   // version, augmentation
            1, 0x78, 16,        // code align 1, data align -8, rip
            1, 0,               // augmentation data: absptr
            0x0C, 7, 8,         // def_cfa rsp+8
            0x90, 1,            // rip at cfa-8
            0, 0,               // padding
        ];
        assert_eq!(out, want);
        out.clear();
        cie(&mut out, Pointers::PcRel).unwrap();
        assert_eq!(out[16], 0x1B, "pcrel|sdata4");
    }

    #[test]
    fn misaligned_and_unknown_are_refused() {
        let code = |change| emit::Code {
            bytes: vec![0x90; 8],
            frame: vec![emit::FrameStep { offset: 1, change }],
        };
        let bad = [
            code(FrameChange::Saved {
                reg: Loc::Gpr(3),
                offset: -12,
            }),
            code(FrameChange::Restored(Loc::Stack(0))),
        ];
        for c in &bad {
            assert!(eh_frame(Arch::X86_64, 64, &[(0, c)]).is_err());
        }
        let late = emit::Code {
            bytes: vec![0x90; 2],
            frame: vec![emit::FrameStep {
                offset: 3,
                change: FrameChange::Restored(Loc::Gpr(3)),
            }],
        };
        assert!(eh_frame(Arch::X86_64, 64, &[(0, &late)]).is_err());
        assert!(eh_frame(Arch::Aarch64, 64, &[]).is_err());
    }

    #[test]
    fn far_code_gets_absolute_pointers() {
        let code = emit::Code {
            bytes: vec![0xC3],
            frame: Vec::new(),
        };
        let near = eh_frame(Arch::X86_64, 0x1000, &[(0x800, &code)]).unwrap();
        let far = eh_frame(Arch::X86_64, 0x1000, &[(0x7000_0000_0000, &code)]).unwrap();
        assert_eq!((near[16], far[16]), (0x1B, 0x00));
        // The FDE: length, CIE pointer, then pc_begin.
        assert_eq!(far[32..40], 0x7000_0000_0000u64.to_le_bytes());
        // 0x1000 + 24 (CIE) + 8 is where pc_begin sits.
        assert_eq!(near[32..36], (0x800i32 - 0x1020).to_le_bytes());
    }
}
