//! Unwind information for generated code, so that C++ exceptions, Rust
//! backtraces, gdb and perf walk through jitffi's stubs and thunks.
//!
//! The emitters describe each piece of code's frame ([`emit::Code`]);
//! [`eh_frame`] turns that description into a self-contained `.eh_frame`
//! section in DWARF call frame information: one CIE, one FDE per piece of
//! code, and the zero word that ends a section. [`register_section`] hands
//! it to the system unwinder.
//!
//! The CIE says augmentation `zR`, data alignment -8, and per
//! architecture:
//!
//! | | code alignment | return address | call-entry state |
//! |---|---|---|---|
//! | x86-64 | 1 | column 16 (`rip`) | CFA = `rsp + 8`, return address at `CFA - 8` |
//! | AArch64 | 4 | column 30 (`x30`) | CFA = `sp + 0`, return address in `x30` |
//!
//! (As gcc and gas write them, so the unwinder sees what it sees for
//! compiled code.) FDE addresses are `pcrel|sdata4` when the code lies
//! within 1 GiB of the section (the
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

const DW_CFA_OFFSET_EXTENDED: u8 = 0x05;

/// Data alignment factor: every save slot is a multiple of 8 bytes away
/// from the CFA.
const DATA_ALIGN: i32 = -8;

/// What the CIE and the FDEs of one architecture need to know.
#[derive(Clone, Copy)]
struct Isa {
    arch: Arch,
    /// Code alignment factor: advances count units of this many bytes.
    code_align: u32,
    /// The return address column.
    ra: u8,
    /// The CFA at entry: DWARF register and offset.
    entry_cfa: (u8, i32),
    /// Where the return address is at entry, relative to the CFA; `None`:
    /// still in its register (the `ra` column has no rule).
    entry_ra_slot: Option<i32>,
}

impl Isa {
    const fn of(arch: Arch) -> Isa {
        match arch {
            // psABI figure 3.36: rsp is 7, the return address column 16.
            Arch::X86_64 => Isa {
                arch,
                code_align: 1,
                ra: 16,
                entry_cfa: (7, 8),
                entry_ra_slot: Some(-8),
            },
            // DWARF for AArch64: x0-x30 are 0-30, sp 31, v0-v31 64-95;
            // `bl` leaves the return address in x30 and sp untouched.
            Arch::Aarch64 => Isa {
                arch,
                code_align: 4,
                ra: 30,
                entry_cfa: (31, 0),
                entry_ra_slot: None,
            },
        }
    }
}

fn unwind_err(reason: impl Into<String>) -> Error {
    Error::Assembly {
        reason: format!("unwind info: {}", reason.into()),
    }
}

/// The DWARF number of `loc` on `arch`. On x86-64 hardware numbering
/// differs for the first eight general registers, and `xmmN` is `17 + N`;
/// on AArch64 `xN` is `N`, `sp` (`Loc::Gpr(31)`, as the emitter names it
/// in frame descriptions) is 31 and `vN` is `64 + N`.
///
/// ```
/// use jitffi::{plan::Loc, unwind::dwarf_register, Arch};
/// assert_eq!(dwarf_register(Arch::X86_64, Loc::Gpr(3)), Some(3)); // rbx
/// assert_eq!(dwarf_register(Arch::X86_64, Loc::Gpr(4)), Some(7)); // rsp
/// assert_eq!(dwarf_register(Arch::X86_64, Loc::Gpr(6)), Some(4)); // rsi
/// assert_eq!(dwarf_register(Arch::X86_64, Loc::Vec(6)), Some(23)); // xmm6
/// assert_eq!(dwarf_register(Arch::X86_64, Loc::Stack(0)), None);
/// assert_eq!(dwarf_register(Arch::Aarch64, Loc::Gpr(29)), Some(29)); // x29
/// assert_eq!(dwarf_register(Arch::Aarch64, Loc::Gpr(31)), Some(31)); // sp
/// assert_eq!(dwarf_register(Arch::Aarch64, Loc::Vec(8)), Some(72)); // v8
/// assert_eq!(dwarf_register(Arch::Aarch64, Loc::Gpr(32)), None);
/// ```
pub fn dwarf_register(arch: Arch, loc: Loc) -> Option<u8> {
    match arch {
        Arch::X86_64 => {
            // rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi by hardware number.
            const LOW: [u8; 8] = [0, 2, 1, 3, 7, 6, 4, 5];
            match loc {
                Loc::Gpr(n @ 0..=7) => Some(LOW[n as usize]),
                Loc::Gpr(n @ 8..=15) => Some(n),
                Loc::Vec(n @ 0..=15) => Some(17 + n),
                _ => None,
            }
        }
        Arch::Aarch64 => match loc {
            Loc::Gpr(n @ 0..=31) => Some(n),
            Loc::Vec(n @ 0..=31) => Some(64 + n),
            _ => None,
        },
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

fn cie(out: &mut Vec<u8>, isa: Isa, pointers: Pointers) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]); // length, filled in below
    out.extend_from_slice(&0u32.to_le_bytes()); // CIE id
    out.push(1); // version
    out.extend_from_slice(b"zR\0");
    uleb(out, isa.code_align.into());
    sleb(out, DATA_ALIGN.into());
    out.push(isa.ra); // return address column (a byte in version 1)
    uleb(out, 1); // augmentation data: the FDE pointer encoding
    out.push(match pointers {
        Pointers::PcRel => DW_EH_PE_PCREL_SDATA4,
        Pointers::Absolute => DW_EH_PE_ABSPTR,
    });
    // The call-entry state.
    let (reg, offset) = isa.entry_cfa;
    out.extend_from_slice(&[DW_CFA_DEF_CFA, reg]);
    uleb(out, offset as u64);
    if let Some(slot) = isa.entry_ra_slot {
        out.push(DW_CFA_OFFSET | isa.ra);
        uleb(out, (slot / DATA_ALIGN) as u64);
    }
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

fn register_of(arch: Arch, loc: Loc) -> Result<u8> {
    dwarf_register(arch, loc)
        .ok_or_else(|| unwind_err(format!("no DWARF number for {loc:?} on {arch:?}")))
}

/// What an FDE describes: code at an address, its length, its frame.
type Entry<'a> = (usize, usize, &'a [FrameStep]);

/// The FDE of `len` bytes of code at `address` with `frame`. `out[base..]`
/// is the section, which starts at address `at` and with the CIE.
fn fde(
    out: &mut Vec<u8>,
    isa: Isa,
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
    let (mut cfa_reg, mut cfa_off) = isa.entry_cfa;
    for step in frame {
        if step.offset < pc || step.offset as usize > len {
            return Err(unwind_err(format!(
                "frame step at offset {} out of order or past the code's {} bytes",
                step.offset, len
            )));
        }
        if step.offset % isa.code_align != 0 {
            return Err(unwind_err(format!(
                "frame step at offset {} not on a {}-byte instruction boundary",
                step.offset, isa.code_align
            )));
        }
        advance(out, (step.offset - pc) / isa.code_align);
        pc = step.offset;
        match step.change {
            FrameChange::Cfa { reg, offset } => {
                let reg = register_of(isa.arch, reg)?;
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
                let reg = register_of(isa.arch, reg)?;
                if offset % DATA_ALIGN != 0 {
                    return Err(unwind_err(format!(
                        "save slot at CFA{offset:+} not a multiple of 8"
                    )));
                }
                let factored = offset / DATA_ALIGN;
                if factored >= 0 && reg < 0x40 {
                    out.push(DW_CFA_OFFSET | reg);
                    uleb(out, factored as u64);
                } else if factored >= 0 {
                    // AArch64's v registers (64-95), as gas writes them.
                    out.push(DW_CFA_OFFSET_EXTENDED);
                    uleb(out, reg.into());
                    uleb(out, factored as u64);
                } else {
                    out.push(DW_CFA_OFFSET_EXTENDED_SF);
                    uleb(out, reg.into());
                    sleb(out, factored.into());
                }
            }
            FrameChange::Restored(reg) => {
                let reg = register_of(isa.arch, reg)?;
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
    let isa = Isa::of(arch);
    // Well inside the reach of a 32-bit offset, whatever the section's size.
    let near = |a: usize| (a.wrapping_sub(at) as isize).unsigned_abs() < (1 << 30);
    let pointers = if entries.clone().all(|(a, _, _)| near(a)) {
        Pointers::PcRel
    } else {
        Pointers::Absolute
    };
    out.reserve(section_bound(entries.clone()));
    let base = out.len();
    cie(out, isa, pointers)?;
    for e in entries {
        fde(out, isa, (base, at), pointers, e)?;
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
/// Code of another architecture than the host's is refused: this
/// process's unwinder could only misread its description.
///
/// ```
/// use jitffi::{classify::classify, emit::{self, EntryForm}, memory, unwind, Abi, Arch, Type};
/// let plan = classify(Abi::host(), &Type::i64(), &[Type::i64()], None).unwrap();
/// let code = emit::compile_call_with_unwind(&plan, EntryForm::Libffi).unwrap();
/// let at = memory::publish(&code.bytes).unwrap();
/// unwind::register(plan.arch, &[(at as usize, &code)]).unwrap();
/// let foreign = if plan.arch == Arch::X86_64 { Arch::Aarch64 } else { Arch::X86_64 };
/// assert!(unwind::register(foreign, &[(at as usize, &code)]).is_err());
/// ```
pub fn register(arch: Arch, blobs: &[(usize, &emit::Code)]) -> Result<()> {
    register_entries(arch, entries(blobs))
}

/// Describes `len` bytes of published code at `at` that never touch the
/// stack pointer (jumps such as closure trampolines): the call-entry state
/// holds throughout (on AArch64: CFA = `sp`, return address in `x30`).
/// Like [`register`], for code published on its own.
///
/// ```
/// use jitffi::{memory, unwind, Arch};
/// // 32 bytes of `ret`: nothing there moves the stack pointer.
/// let ret: &[u8] = match Arch::host() {
///     Some(Arch::Aarch64) => &[0xC0, 0x03, 0x5F, 0xD6],
///     _ => &[0xC3],
/// };
/// let at = memory::publish(&ret.repeat(32 / ret.len())).unwrap() as usize;
/// unwind::register_frameless(Arch::host().unwrap(), at, 32).unwrap();
/// ```
pub fn register_frameless(arch: Arch, at: usize, len: usize) -> Result<()> {
    register_entries(arch, std::iter::once((at, len, &[][..])))
}

fn register_entries<'a>(
    arch: Arch,
    entries: impl Iterator<Item = Entry<'a>> + Clone,
) -> Result<()> {
    if Arch::host() != Some(arch) {
        return Err(unwind_err(format!(
            "{arch:?} code cannot run in this {} process",
            std::env::consts::ARCH
        )));
    }
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
        cie(&mut out, Isa::of(Arch::X86_64), Pointers::Absolute).unwrap();
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
        cie(&mut out, Isa::of(Arch::X86_64), Pointers::PcRel).unwrap();
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
        // AArch64 has no rsp-relative x86 numbering, and no x87.
        let x64_only = [
            code(FrameChange::Cfa {
                reg: Loc::Gpr(4),
                offset: 16,
            }),
            code(FrameChange::Saved {
                reg: Loc::Gpr(16),
                offset: -8,
            }),
        ];
        assert!(eh_frame(Arch::X86_64, 64, &[(0, &x64_only[0])]).is_ok());
        assert!(eh_frame(Arch::X86_64, 64, &[(0, &x64_only[1])]).is_err());
        let a64 = |offset, change| emit::Code {
            bytes: vec![0; 16],
            frame: vec![emit::FrameStep { offset, change }],
        };
        let sp16 = FrameChange::Cfa {
            reg: Loc::Gpr(31),
            offset: 16,
        };
        assert!(eh_frame(Arch::Aarch64, 64, &[(0, &a64(4, sp16))]).is_ok());
        // Not on an instruction boundary.
        assert!(eh_frame(Arch::Aarch64, 64, &[(0, &a64(6, sp16))]).is_err());
        for bad in [
            FrameChange::Restored(Loc::Gpr(32)),
            FrameChange::Restored(Loc::Vec(32)),
            FrameChange::Restored(Loc::X87(0)),
        ] {
            assert!(eh_frame(Arch::Aarch64, 64, &[(0, &a64(4, bad))]).is_err());
        }
        assert!(eh_frame(Arch::X86_64, 64, &[(0, &a64(4, sp16))]).is_err());
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

    // ------------------------------------------------------- AArch64

    /// The `.eh_frame` gas writes for its AArch64 CIE (`aarch64-linux-gnu-gcc
    /// -c`, dumped with `aarch64-linux-gnu-readelf --debug-dump=frames`):
    /// length 16, id 0, version 1, "zR", code alignment 4, data alignment
    /// -8, return address column 30, augmentation data pcrel|sdata4,
    /// `DW_CFA_def_cfa: r31 (sp) ofs 0`.
    #[rustfmt::skip]
    const GAS_CIE: [u8; 20] = [
        0x10, 0, 0, 0,  0, 0, 0, 0,  1, b'z', b'R', 0,
        4, 0x78, 30,  1, 0x1B,  0x0C, 31, 0,
    ];

    fn step(offset: u32, change: FrameChange) -> FrameStep {
        FrameStep { offset, change }
    }

    fn cfa(reg: u8, offset: i32) -> FrameChange {
        FrameChange::Cfa {
            reg: Loc::Gpr(reg),
            offset,
        }
    }

    fn saved(reg: Loc, offset: i32) -> FrameChange {
        FrameChange::Saved { reg, offset }
    }

    /// The call frame instructions of the one FDE in `section` (after its
    /// augmentation length), padding included.
    fn fde_instructions(section: &[u8]) -> &[u8] {
        let cie_len = u32::from_le_bytes(section[0..4].try_into().unwrap()) as usize;
        let fde = &section[4 + cie_len..];
        let fde_len = u32::from_le_bytes(fde[0..4].try_into().unwrap()) as usize;
        // length, CIE pointer, pc_begin, pc_range (pcrel|sdata4), aug. length 0.
        assert_eq!(fde[16], 0, "no FDE augmentation data");
        &fde[17..4 + fde_len]
    }

    /// `section`'s FDE holds `want`, then padding `nop`s to 8 bytes.
    fn assert_instructions(section: &[u8], want: &[u8]) {
        let ins = fde_instructions(section);
        assert!(
            ins.starts_with(want) && ins[want.len()..].iter().all(|&b| b == DW_CFA_NOP),
            "{ins:02x?} is not {want:02x?} and padding"
        );
        assert!(ins.len() - want.len() < 8);
    }

    /// The FDE of `code` (`len` bytes at 0x1000) in a section at 0x2000.
    fn a64_section(len: usize, frame: Vec<FrameStep>) -> Vec<u8> {
        let code = emit::Code {
            bytes: vec![0; len],
            frame,
        };
        eh_frame(Arch::Aarch64, 0x2000, &[(0x1000, &code)]).unwrap()
    }

    /// `stp x29, x30, [sp, #-16]!` at 0 and `ldp x29, x30, [sp], #16` at
    /// `ldp`, as the emitter describes them.
    fn frame_record_steps(ldp: u32) -> (Vec<FrameStep>, Vec<FrameStep>) {
        let push = vec![
            step(4, cfa(31, 16)),
            step(4, saved(Loc::Gpr(29), -16)),
            step(4, saved(Loc::Gpr(30), -8)),
        ];
        let pop = vec![
            step(ldp + 4, cfa(31, 0)),
            step(ldp + 4, FrameChange::Restored(Loc::Gpr(29))),
            step(ldp + 4, FrameChange::Restored(Loc::Gpr(30))),
        ];
        (push, pop)
    }

    #[test]
    fn aarch64_cie_is_gas_s() {
        let section = eh_frame(Arch::Aarch64, 0x2000, &[]).unwrap();
        // Ours pads the entry to 8 bytes (length 20, four nops); gas to 4.
        assert_eq!(section[0..4], 20u32.to_le_bytes());
        assert_eq!(section[4..20], GAS_CIE[4..]);
        assert_eq!(section[20..], [0; 8], "padding, then the terminator");
        let mut out = Vec::new();
        cie(&mut out, Isa::of(Arch::Aarch64), Pointers::Absolute).unwrap();
        assert_eq!(out[16], 0, "absptr");
    }

    /// gcc -O2 -fasynchronous-unwind-tables -fno-omit-frame-pointer on
    /// `void k(void) { g(); g(); }`: `stp x29, x30, [sp, -16]!` (with
    /// `.cfi_def_cfa_offset 16`, `.cfi_offset 29, -16`, `.cfi_offset 30,
    /// -8`), `mov x29, sp`, `bl g`, `ldp x29, x30, [sp], 16` (with
    /// `.cfi_restore 30`, `.cfi_restore 29`, `.cfi_def_cfa_offset 0`),
    /// `b g`: 20 bytes; gas's FDE instructions below.
    #[test]
    fn aarch64_fde_is_gccs_for_a_frame_record() {
        let (push, _) = frame_record_steps(12);
        let mut frame = push;
        frame.extend([
            step(16, FrameChange::Restored(Loc::Gpr(30))),
            step(16, FrameChange::Restored(Loc::Gpr(29))),
            step(16, cfa(31, 0)),
        ]);
        let section = a64_section(20, frame);
        #[rustfmt::skip]
        let gcc = [
            0x41, 0x0E, 0x10, 0x9D, 0x02, 0x9E, 0x01, // at 4: cfa sp+16, x29 at -16, x30 at -8
            0x43, 0xDE, 0xDD, 0x0E, 0x00,             // at 16: restore x30, x29; cfa sp+0
        ];
        assert_instructions(&section, &gcc);
        // pc_range is in bytes, not code alignment units.
        let fde = &section[24..];
        assert_eq!(fde[12..16], 20u32.to_le_bytes());
    }

    /// gcc on `double dv(double a)` keeping a value in d8 across a call:
    /// `str d8, [sp, 16]` with `.cfi_offset 72, -16` (v8), restored with
    /// `.cfi_restore 72`; gas writes `DW_CFA_offset_extended` and
    /// `DW_CFA_restore_extended` for it.
    #[test]
    fn aarch64_fde_is_gccs_for_a_vector_save() {
        let frame = vec![
            step(4, cfa(31, 32)),
            step(4, saved(Loc::Gpr(29), -32)),
            step(4, saved(Loc::Gpr(30), -24)),
            step(12, saved(Loc::Vec(8), -16)),
            step(32, FrameChange::Restored(Loc::Gpr(30))),
            step(32, FrameChange::Restored(Loc::Gpr(29))),
            step(32, FrameChange::Restored(Loc::Vec(8))),
            step(32, cfa(31, 0)),
        ];
        let section = a64_section(36, frame);
        #[rustfmt::skip]
        let gcc = [
            0x41, 0x0E, 0x20, 0x9D, 0x04, 0x9E, 0x03, // at 4
            0x42, 0x05, 0x48, 0x02,                   // at 12: v8 at cfa-16
            0x45, 0xDE, 0xDD, 0x06, 0x48, 0x0E, 0x00, // at 32
        ];
        assert_instructions(&section, &gcc);
    }

    /// The frame of the conventions (CFA on x29 while the body runs),
    /// written with `.cfi_def_cfa_register 29` after `mov x29, sp` and
    /// `.cfi_def_cfa_register 31` after `mov sp, x29`, assembled by gas:
    /// stp; mov x29, sp; sub sp, sp, #32; blr x9; mov sp, x29; ldp; ret.
    #[test]
    fn aarch64_fde_is_gas_s_for_the_stub_frame() {
        let (push, pop) = frame_record_steps(20);
        let mut frame = push;
        frame.push(step(8, cfa(29, 16)));
        frame.push(step(20, cfa(31, 16)));
        frame.extend(pop);
        let section = a64_section(28, frame.clone());
        #[rustfmt::skip]
        let gas = [
            0x41, 0x0E, 0x10, 0x9D, 0x02, 0x9E, 0x01, // at 4
            0x41, 0x0D, 0x1D,                         // at 8: cfa on x29
            0x43, 0x0D, 0x1F,                         // at 20: cfa on sp
            0x41, 0x0E, 0x00, 0xDD, 0xDE,             // at 24
        ];
        assert_instructions(&section, &gas);
        let rows = decode(Arch::Aarch64, &section);
        let entry = (0, (31, 0), vec![]);
        let record = vec![(29, -16), (30, -8)];
        assert_eq!(
            rows,
            [
                entry.clone(),
                (4, (31, 16), record.clone()),
                (8, (29, 16), record.clone()),
                (20, (31, 16), record),
                (24, (31, 0), vec![]),
            ]
        );
    }

    /// Frameless code (closure trampolines: adrp, add, ldr, br) has an FDE
    /// without instructions: the CIE's CFA = sp, return address in x30.
    #[test]
    fn aarch64_frameless_is_the_entry_state() {
        let section = a64_section(16, Vec::new());
        assert_instructions(&section, &[]);
        assert_eq!(decode(Arch::Aarch64, &section), [(0, (31, 0), vec![])]);
    }

    /// Long code: advance_loc1 and advance_loc2 count 4-byte units, and a
    /// save slot addressed from x29. gas, for the same frame (which it
    /// writes `DW_CFA_def_cfa: r31 ofs 16` where ours says
    /// `def_cfa_register`): the decoded tables agree.
    #[test]
    fn aarch64_long_code_decodes_as_gas_s() {
        let (push, pop) = frame_record_steps(0x3FFC - 0x2C);
        let mut frame = push;
        frame.push(step(8, cfa(29, 16)));
        frame.push(step(0x178 - 0x2C, saved(Loc::Vec(15), -24)));
        frame.push(step(0x3FFC - 0x2C, cfa(31, 16)));
        frame.extend(pop);
        frame.push(step(0x4000 - 0x2C, FrameChange::Restored(Loc::Vec(15))));
        let ours = a64_section(0x4004 - 0x2C, frame);
        #[rustfmt::skip]
        let gas_fde = [
            0x30, 0, 0, 0,  0x50, 0, 0, 0,  0, 0, 0, 0,  0xD8, 0x3F, 0, 0,  0,
            0x41, 0x0E, 0x10, 0x9D, 0x02, 0x9E, 0x01, 0x41, 0x0D, 0x1D,
            0x02, 0x51, 0x05, 0x4F, 0x03,
            0x03, 0xA1, 0x0F, 0x0C, 0x1F, 0x10,
            0x41, 0x0E, 0x00, 0xDD, 0xDE, 0x06, 0x4F,
            0, 0, 0, 0, 0, 0, 0,
        ];
        let mut gas = GAS_CIE.to_vec();
        gas.extend_from_slice(&gas_fde);
        assert_eq!(&fde_instructions(&ours)[10..13], [0x02, 0x51, 0x05]);
        assert_eq!(decode(Arch::Aarch64, &ours), decode(Arch::Aarch64, &gas));
        let rows = decode(Arch::Aarch64, &ours);
        assert_eq!(
            rows[3],
            (0x14C, (29, 16), vec![(29, -16), (30, -8), (79, -24)])
        );
        assert_eq!(rows[4].0, 0x3FD0);
    }

    type Row = (u64, (u8, i64), Vec<(u8, i64)>);

    /// Decodes a section with one CIE and one FDE into rows: from each
    /// offset on, the CFA (register, offset) and the saved registers.
    fn decode(arch: Arch, section: &[u8]) -> Vec<Row> {
        use std::collections::BTreeMap;
        struct R<'a>(&'a [u8], usize);
        impl R<'_> {
            fn u8(&mut self) -> u8 {
                self.1 += 1;
                self.0[self.1 - 1]
            }
            fn uleb(&mut self) -> u64 {
                let (mut v, mut shift) = (0, 0);
                loop {
                    let b = self.u8();
                    v |= u64::from(b & 0x7F) << shift;
                    shift += 7;
                    if b & 0x80 == 0 {
                        return v;
                    }
                }
            }
            fn sleb(&mut self) -> i64 {
                let (mut v, mut shift) = (0i64, 0);
                loop {
                    let b = self.u8();
                    v |= i64::from(b & 0x7F) << shift;
                    shift += 7;
                    if b & 0x80 == 0 {
                        if b & 0x40 != 0 {
                            v |= -1 << shift;
                        }
                        return v;
                    }
                }
            }
        }
        let isa = Isa::of(arch);
        let cie_len = u32::from_le_bytes(section[0..4].try_into().unwrap()) as usize;
        let mut c = R(&section[..4 + cie_len], 12);
        let (code_align, data_align, ra) = (c.uleb(), c.sleb(), c.u8());
        assert_eq!(
            (code_align, data_align, ra),
            (isa.code_align.into(), -8, isa.ra)
        );
        assert_eq!((c.uleb(), c.u8()), (1, 0x1B));
        type State = (u64, (u8, i64), BTreeMap<u8, i64>);
        let run = |r: &mut R<'_>, mut st: State, init: &BTreeMap<u8, i64>| {
            let mut rows: Vec<State> = Vec::new();
            while r.1 < r.0.len() {
                let op = r.u8();
                let mut adv = |st: &mut State, units: u64| {
                    rows.push(st.clone());
                    st.0 += units * code_align;
                };
                match (op >> 6, op & 0x3F) {
                    (1, d) => adv(&mut st, d.into()),
                    (2, reg) => drop(st.2.insert(reg, r.uleb() as i64 * data_align)),
                    (3, reg) => match init.get(&reg) {
                        Some(&o) => drop(st.2.insert(reg, o)),
                        None => drop(st.2.remove(&reg)),
                    },
                    (0, 0x00) => {}
                    (0, 0x02) => {
                        let d = r.u8();
                        adv(&mut st, d.into())
                    }
                    (0, 0x03) => {
                        let d = u16::from_le_bytes([r.u8(), r.u8()]);
                        adv(&mut st, d.into())
                    }
                    (0, 0x05) => {
                        let reg = r.uleb() as u8;
                        st.2.insert(reg, r.uleb() as i64 * data_align);
                    }
                    (0, 0x06) => drop(st.2.remove(&(r.uleb() as u8))),
                    (0, 0x0C) => st.1 = (r.uleb() as u8, r.uleb() as i64),
                    (0, 0x0D) => st.1 .0 = r.uleb() as u8,
                    (0, 0x0E) => st.1 .1 = r.uleb() as i64,
                    (0, 0x11) => {
                        let reg = r.uleb() as u8;
                        st.2.insert(reg, r.sleb() * data_align);
                    }
                    other => panic!("unexpected call frame instruction {other:x?}"),
                }
            }
            rows.push(st);
            rows.dedup_by(|later, earlier| {
                let same = later.0 == earlier.0;
                if same {
                    *earlier = later.clone();
                }
                same
            });
            rows
        };
        let empty = BTreeMap::new();
        let initial = run(&mut c, (0, (0xFF, 0), BTreeMap::new()), &empty)
            .pop()
            .unwrap();
        let fde = &section[4 + cie_len..];
        let fde_len = u32::from_le_bytes(fde[0..4].try_into().unwrap()) as usize;
        let mut f = R(&fde[..4 + fde_len], 17);
        let init = initial.2.clone();
        run(&mut f, initial, &init)
            .into_iter()
            .map(|(at, cfa, saved)| (at, cfa, saved.into_iter().collect()))
            .collect()
    }
}
