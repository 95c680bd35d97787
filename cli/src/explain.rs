//! `jitffi explain SIG`: where every argument goes, and the code jitffi
//! generates for it.
//!
//! The plan comes from the same classifier a [`jitffi::Cif`] uses and the
//! code from the same emitter, assembled but not published, so any target
//! can be explained on any host.

use std::fmt::Write as _;

use jitffi::classify::classify;
use jitffi::emit::{compile_call, compile_closure_thunk, EntryForm};
use jitffi::plan::{ArgPass, CallPlan, Ext, Loc, Piece, RetPass};
use jitffi::{Abi, Arch};

use crate::error::{parse_signature, CliError};
use crate::sig::{DataModel, Signature};

/// The targets `--target` accepts: name, ABI, description.
pub const TARGETS: &[(&str, Abi, &str)] = &[
    (
        "x86_64-sysv",
        Abi::SysV64,
        "x86-64 System V (Linux, BSD, macOS)",
    ),
    ("x86_64-win64", Abi::Win64, "x86-64 Microsoft x64 (MSVC)"),
    (
        "x86_64-gnuw64",
        Abi::GnuW64,
        "x86-64 Microsoft x64, GNU (MinGW) flavour",
    ),
    ("aarch64", Abi::Aapcs64, "AArch64 AAPCS64 (Linux)"),
];

/// The target name for `abi` (the first `TARGETS` entry with it).
pub fn target_name(abi: Abi) -> &'static str {
    TARGETS
        .iter()
        .find(|t| t.1 == abi)
        .map_or("unknown", |t| t.0)
}

/// Resolves a `--target` name; also accepts jitffi's ABI names
/// (`sysv64`, `win64`, ...) and `x86_64` for the host's x86-64 ABI.
pub fn parse_target(name: &str) -> Result<Abi, CliError> {
    let lower = name.to_ascii_lowercase();
    let abi = match lower.as_str() {
        "x86_64" | "x86-64" | "x86_64-linux" | "x86_64-sysv" | "sysv" | "sysv64" => {
            Some(Abi::SysV64)
        }
        "x86_64-win64" | "x86_64-windows" | "win64" => Some(Abi::Win64),
        "x86_64-gnuw64" | "gnuw64" | "mingw" => Some(Abi::GnuW64),
        "aarch64" | "arm64" | "aarch64-linux" | "aapcs64" => Some(Abi::Aapcs64),
        _ => None,
    };
    abi.ok_or_else(|| {
        let known: Vec<&str> = TARGETS.iter().map(|t| t.0).collect();
        CliError::Usage(format!(
            "unknown target `{name}`; known targets: {}",
            known.join(", ")
        ))
    })
}

/// What `explain` prints besides the plan.
#[derive(Clone, Copy, Debug, Default)]
pub struct Show {
    /// Leave out the disassembly.
    pub no_code: bool,
    /// Add each instruction's bytes.
    pub bytes: bool,
}

/// Explains `text` for `target` (or the signature's prefix, or the host).
pub fn explain(text: &str, target: Option<Abi>, show: Show) -> Result<String, CliError> {
    let sig = parse_signature(text)?;
    let abi = match (sig.abi, target) {
        (Some(a), Some(t)) if a != t => {
            return Err(CliError::Usage(format!(
                "the signature says `{}:` but --target is {}",
                a.name(),
                target_name(t)
            )))
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => Abi::host(),
    };
    let lowered = sig.lower(abi)?;
    let plan = classify(abi, &lowered.ret, &lowered.args, lowered.fixed)?;
    let mut out = String::new();
    header(&mut out, &sig, abi);
    describe_plan(&mut out, &sig, &plan);
    if !show.no_code {
        code_sections(&mut out, &plan, show);
    }
    Ok(out)
}

fn header(out: &mut String, sig: &Signature, abi: Abi) {
    let model = match DataModel::of(abi) {
        DataModel::Lp64 => "LP64",
        DataModel::Llp64 => "LLP64",
    };
    let _ = writeln!(out, "signature  {sig}");
    let _ = writeln!(
        out,
        "target     {} ({}, {model})",
        target_name(abi),
        abi.name()
    );
}

/// One line per value: the plan in words.
pub fn describe_plan(out: &mut String, sig: &Signature, plan: &CallPlan) {
    let arch = plan.arch;
    let _ = writeln!(out, "\ncall plan");
    let ret = &plan.ret;
    let ret_text = match &ret.pass {
        RetPass::Void => "nothing".to_string(),
        RetPass::Direct(pieces) => pieces_in_words(arch, pieces, ret.ty.size()),
        RetPass::Indirect { pointer, returned } => {
            let mut s = format!(
                "in memory: the caller passes a buffer's address in {}",
                pointer.name(arch)
            );
            if let Some(r) = returned {
                let _ = write!(s, ", and gets it back in {}", r.name(arch));
            }
            s
        }
    };
    let _ = writeln!(out, "  return  {}: {ret_text}", with_size(&ret.ty));
    let params: Vec<_> = sig.all_params().collect();
    for (i, a) in plan.args.iter().enumerate() {
        let name = params
            .get(i)
            .and_then(|p| p.name.as_deref())
            .map(|n| format!(" `{n}`"))
            .unwrap_or_default();
        let variadic = if a.variadic { " (variadic)" } else { "" };
        let where_ = match &a.pass {
            ArgPass::Direct(pieces) => pieces_in_words(arch, pieces, a.ty.size()),
            ArgPass::Indirect { pointer } => format!(
                "copied by the caller; the copy's address in {}",
                loc_words(arch, *pointer)
            ),
        };
        let _ = writeln!(
            out,
            "  arg {i}{name}{variadic}  {}: {where_}",
            with_size(&a.ty)
        );
    }
    let mut notes = Vec::new();
    if plan.stack_bytes > 0 {
        notes.push(format!(
            "{} bytes of outgoing stack arguments",
            plan.stack_bytes
        ));
    } else {
        notes.push("no stack arguments".to_string());
    }
    if plan.shadow_space > 0 {
        notes.push(format!(
            "{} bytes of shadow space at the bottom of the argument area",
            plan.shadow_space
        ));
    }
    if let Some(n) = plan.vector_count {
        notes.push(format!(
            "al = {n} (vector registers used; read only by variadic callees)"
        ));
    }
    if let Some(chain) = plan.static_chain {
        notes.push(format!("static chain in {}", chain.name(arch)));
    }
    let _ = writeln!(out, "  frame   {}", notes.join("; "));
    let _ = writeln!(out, "\nplan (as jitffi prints it)");
    for line in plan.to_string().lines() {
        let _ = writeln!(out, "  {line}");
    }
}

fn with_size(ty: &jitffi::Type) -> String {
    if ty.is_void() {
        "void".into()
    } else {
        format!("{ty} ({} bytes)", ty.size())
    }
}

fn loc_words(arch: Arch, loc: Loc) -> String {
    match loc {
        Loc::Stack(off) => format!("the stack at offset {off}"),
        other => other.name(arch),
    }
}

fn pieces_in_words(arch: Arch, pieces: &[Piece], value_size: usize) -> String {
    let whole = pieces.len() == 1 && pieces[0].offset == 0 && pieces[0].size as usize == value_size;
    let parts: Vec<String> = pieces
        .iter()
        .map(|p| {
            let ext = match p.ext {
                Ext::None => "",
                Ext::Sign => ", sign-extended",
                Ext::Zero => ", zero-extended",
            };
            let place = loc_words(arch, p.loc);
            if whole {
                format!("{place}{ext}")
            } else {
                format!("bytes {}..{} in {place}{ext}", p.offset, p.offset + p.size)
            }
        })
        .collect();
    parts.join("; ")
}

fn code_sections(out: &mut String, plan: &CallPlan, show: Show) {
    let sections: [(&str, jitffi::Result<Vec<u8>>); 3] = [
        (
            "call stub, libffi form: void stub(void *fn, void *rvalue, void **avalue)",
            compile_call(plan, EntryForm::Libffi),
        ),
        (
            "call stub, packed form: R stub(void *fn, void *rvalue, const void *args)",
            compile_call(plan, EntryForm::Packed),
        ),
        (
            match plan.arch {
                Arch::X86_64 => "closure thunk: the native signature; closure record in r11",
                Arch::Aarch64 => "closure thunk: the native signature; closure record in x17",
            },
            compile_closure_thunk(plan),
        ),
    ];
    for (title, code) in sections {
        let _ = writeln!(out);
        match code {
            Ok(bytes) => {
                let _ = writeln!(out, "{title}, {} bytes", bytes.len());
                disassemble(out, plan.arch, &bytes, show.bytes);
            }
            Err(e) => {
                let _ = writeln!(out, "{title}\n  (no code: {e})");
            }
        }
    }
}

/// Appends a listing of `code`, offsets from 0: Intel syntax for x86-64,
/// ARM's for AArch64.
pub fn disassemble(out: &mut String, arch: Arch, code: &[u8], bytes: bool) {
    match arch {
        Arch::X86_64 => disassemble_x64(out, code, bytes),
        Arch::Aarch64 => disassemble_a64(out, code, bytes),
    }
}

/// One instruction word at a time (every A64 instruction is 4 bytes):
/// a word that does not decode shows as `.word`, and a trailing partial
/// word as `.byte`s, so the listing always accounts for every byte.
fn disassemble_a64(out: &mut String, code: &[u8], show_bytes: bool) {
    use yaxpeax_arch::{Decoder, U8Reader};
    use yaxpeax_arm::armv8::a64::InstDecoder;
    let decoder = InstDecoder::default();
    for (i, word) in code.chunks(4).enumerate() {
        let start = 4 * i;
        let _ = write!(out, "  {start:04x}  ");
        if show_bytes {
            let hex: Vec<String> = word.iter().map(|b| format!("{b:02x}")).collect();
            let _ = write!(out, "{:<11} ", hex.join(" "));
        }
        let text = match <[u8; 4]>::try_from(word) {
            Ok(w) => match decoder.decode(&mut U8Reader::new(&w)) {
                Ok(insn) => a64_text(&insn.to_string()),
                Err(_) => format!(".word   {:#010x}", u32::from_le_bytes(w)),
            },
            Err(_) => {
                let hex: Vec<String> = word.iter().map(|b| format!("{b:#04x}")).collect();
                format!(".byte   {}", hex.join(", "))
            }
        };
        let _ = writeln!(out, "{text}");
    }
}

/// Pads the mnemonic to 8 columns, as the x86-64 listing does.
fn a64_text(text: &str) -> String {
    match text.split_once(' ') {
        Some((mnemonic, operands)) => format!("{mnemonic:<7} {}", operands.trim_start()),
        None => text.to_string(),
    }
}

fn disassemble_x64(out: &mut String, code: &[u8], show_bytes: bool) {
    use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};
    let mut decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
    let mut formatter = IntelFormatter::new();
    formatter.options_mut().set_first_operand_char_index(8);
    formatter.options_mut().set_hex_prefix("0x");
    formatter.options_mut().set_hex_suffix("");
    formatter.options_mut().set_branch_leading_zeros(false);
    let mut text = String::new();
    let mut insn = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut insn);
        text.clear();
        formatter.format(&insn, &mut text);
        let start = insn.ip() as usize;
        let _ = write!(out, "  {start:04x}  ");
        if show_bytes {
            let hex: Vec<String> = code[start..start + insn.len()]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let _ = write!(out, "{:<30} ", hex.join(" "));
        }
        let _ = writeln!(out, "{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a64(code: &[u8], bytes: bool) -> String {
        let mut out = String::new();
        disassemble(&mut out, Arch::Aarch64, code, bytes);
        out
    }

    #[test]
    fn a64_words_decode_and_pad_like_x86() {
        let mut code = Vec::new();
        for w in [0xA9BF_7BFDu32, 0xD63F_0120, 0xFD40_0562, 0xD65F_03C0] {
            code.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(
            a64(&code, false),
            "  0000  stp     x29, x30, [sp, #-0x10]!\n  0004  blr     x9\n  \
             0008  ldr     d2, [x11, #0x8]\n  000c  ret\n"
        );
        assert_eq!(a64(&code[12..], true), "  0000  c0 03 5f d6 ret\n");
    }

    #[test]
    fn a64_leftovers_are_shown_not_dropped() {
        let mut code = 0xFFFF_FFFFu32.to_le_bytes().to_vec();
        code.extend_from_slice(&[0xC0, 0x03]);
        let out = a64(&code, false);
        assert_eq!(
            out,
            "  0000  .word   0xffffffff\n  0004  .byte   0xc0, 0x03\n"
        );
    }
}
