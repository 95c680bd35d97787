//! The CallPlan: where every byte of every argument and of the return value
//! lives at the moment of a call.
//!
//! A classifier (`classify/<abi>.rs`) turns a signature into a plan; an
//! emitter (`emit/<isa>.rs`) turns a plan into code. Neither knows about the
//! other. Call stubs move bytes *from* the caller's argument values *to* the
//! plan's locations; closure thunks move them back the other way.
//!
//! Registers are named by their hardware encoding number (x86-64: `rax`=0,
//! `rcx`=1, `rdx`=2, ..., `rdi`=7, `r8`..`r15`=8..15; AArch64: `xN`/`vN` =
//! N), so the emitter never needs to know which ABI chose them. Stack
//! offsets are relative to the stack pointer at the call instruction, and
//! include any shadow space.
//!
//! ```
//! use jitffi::{classify::classify, Abi, Type};
//! use jitffi::plan::{ArgPass, Loc};
//! let plan = classify(Abi::SysV64, &Type::i32(), &[Type::pointer()], None).unwrap();
//! let ArgPass::Direct(pieces) = &plan.args[0].pass else { unreachable!() };
//! assert_eq!(pieces[0].loc, Loc::Gpr(7)); // rdi
//! assert!(plan.to_string().contains("arg 0 void *: [0..8) rdi"));
//! ```

use std::fmt;

use crate::abi::{Abi, Arch};
use crate::types::Type;

/// A machine location one piece of a value travels in.
///
/// ```
/// use jitffi::{classify::classify, plan::{ArgPass, Loc}, Abi, Type};
/// // The seventh integer argument no longer finds a register.
/// let plan = classify(Abi::SysV64, &Type::void(), &vec![Type::i64(); 7], None).unwrap();
/// let ArgPass::Direct(pieces) = &plan.args[6].pass else { unreachable!() };
/// assert_eq!(pieces[0].loc, Loc::Stack(0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loc {
    /// A general-purpose register, by hardware number.
    Gpr(u8),
    /// A floating-point/vector register, by number (`xmmN`, `vN`).
    Vec(u8),
    /// The outgoing argument area, at this byte offset from the stack
    /// pointer at the call.
    Stack(u32),
    /// The x87 register stack, `st(N)` (x86-64 return values only).
    X87(u8),
}

impl Loc {
    /// The location's name on `arch` (`rdi`, `xmm1`, `stack+8`, `st0`).
    ///
    /// ```
    /// use jitffi::{plan::Loc, Arch};
    /// assert_eq!(Loc::Gpr(7).name(Arch::X86_64), "rdi");
    /// assert_eq!(Loc::Vec(1).name(Arch::Aarch64), "v1");
    /// assert_eq!(Loc::Stack(8).name(Arch::X86_64), "stack+8");
    /// ```
    pub fn name(self, arch: Arch) -> String {
        match self {
            Loc::Gpr(n) => gpr_name(arch, n),
            Loc::Vec(n) => match arch {
                Arch::X86_64 => format!("xmm{n}"),
                Arch::Aarch64 => format!("v{n}"),
            },
            Loc::Stack(off) => format!("stack+{off}"),
            Loc::X87(n) => format!("st{n}"),
        }
    }
}

fn gpr_name(arch: Arch, n: u8) -> String {
    const X64: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    match arch {
        Arch::X86_64 => X64
            .get(n as usize)
            .map_or_else(|| format!("gpr{n}"), |s| (*s).to_string()),
        Arch::Aarch64 => format!("x{n}"),
    }
}

/// How a piece narrower than its register or stack slot is widened.
///
/// ```
/// use jitffi::{classify::classify, plan::{ArgPass, Ext}, Abi, Type};
/// let plan = classify(Abi::SysV64, &Type::void(), &[Type::u16(), Type::i8()], None).unwrap();
/// let ext = |i: usize| match &plan.args[i].pass {
///     ArgPass::Direct(pieces) => pieces[0].ext,
///     ArgPass::Indirect { .. } => unreachable!(),
/// };
/// assert_eq!((ext(0), ext(1)), (Ext::Zero, Ext::Sign));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ext {
    /// Copy exactly `size` bytes; the rest of the register or slot is
    /// unspecified (aggregate contents, floats).
    None,
    /// Sign-extend to the full register / slot width.
    Sign,
    /// Zero-extend to the full register / slot width.
    Zero,
}

/// One contiguous run of bytes of a value and the location it travels in.
///
/// ```
/// use jitffi::{classify::classify, plan::{ArgPass, Loc}, Abi, Type};
/// // struct { double d; int i; }: d in xmm0, the eightbyte holding i in rdi.
/// let s = Type::structure([Type::f64(), Type::i32()]).unwrap();
/// let plan = classify(Abi::SysV64, &Type::void(), &[s], None).unwrap();
/// let ArgPass::Direct(pieces) = &plan.args[0].pass else { unreachable!() };
/// assert_eq!((pieces[0].offset, pieces[0].size, pieces[0].loc), (0, 8, Loc::Vec(0)));
/// assert_eq!((pieces[1].offset, pieces[1].loc), (8, Loc::Gpr(7)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Piece {
    /// Byte offset inside the value (the argument, or the return value).
    pub offset: u32,
    /// Bytes covered. Register pieces are 1..=8 bytes (x87 pieces are the
    /// 10-byte extended format; vector pieces up to 16: a Win64 `__int128`
    /// return in `xmm0`, AArch64 `q` registers); stack pieces may be any
    /// size and are copied as bytes.
    pub size: u32,
    /// Where the bytes go.
    pub loc: Loc,
    /// Widening applied when the piece is narrower than its location.
    pub ext: Ext,
}

/// How one argument is passed.
///
/// SysV passes even large aggregates by value (on the stack, as one
/// piece); [`ArgPass::Indirect`] is for ABIs such as Win64 and AAPCS64.
///
/// ```
/// use jitffi::{classify::classify, plan::{ArgPass, Loc}, Abi, Type};
/// let big = Type::structure([Type::i64(), Type::i64(), Type::i64()]).unwrap();
/// let plan = classify(Abi::SysV64, &Type::void(), &[big], None).unwrap();
/// let ArgPass::Direct(pieces) = &plan.args[0].pass else { unreachable!() };
/// assert_eq!((pieces[0].size, pieces[0].loc), (24, Loc::Stack(0)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgPass {
    /// The value's bytes travel in these pieces (possibly several, possibly
    /// the same bytes twice, as Win64 variadic floats do).
    Direct(Vec<Piece>),
    /// The caller copies the value to a temporary (aligned to at least 16)
    /// and passes the temporary's address in `pointer`.
    Indirect {
        /// Where the address goes.
        pointer: Loc,
    },
}

/// One argument's plan.
///
/// ```
/// use jitffi::{classify::classify, Abi, Type};
/// // int printf(const char *, ...) called with one extra double.
/// let plan = classify(Abi::SysV64, &Type::i32(), &[Type::pointer(), Type::f64()], Some(1)).unwrap();
/// assert_eq!(plan.args[1].ty, Type::f64());
/// assert!(!plan.args[0].variadic && plan.args[1].variadic);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgPlan {
    /// The argument's C type.
    pub ty: Type,
    /// How it travels.
    pub pass: ArgPass,
    /// `true` for the arguments after the fixed ones of a variadic call.
    pub variadic: bool,
}

/// How the return value comes back.
///
/// ```
/// use jitffi::{classify::classify, plan::{Loc, RetPass}, Abi, Type};
/// // A 24-byte struct is returned through a hidden pointer (sret).
/// let big = Type::structure([Type::i64(), Type::i64(), Type::i64()]).unwrap();
/// let plan = classify(Abi::SysV64, &big, &[], None).unwrap();
/// let sret = RetPass::Indirect { pointer: Loc::Gpr(7), returned: Some(Loc::Gpr(0)) };
/// assert_eq!(plan.ret.pass, sret);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetPass {
    /// Nothing comes back.
    Void,
    /// The value comes back in these registers; each piece is stored at
    /// its `offset` of the return buffer. Integer pieces narrower than a
    /// register carry an [`Ext`]: the stub widens them to a full 8-byte
    /// slot as libffi does for `ffi_arg`.
    Direct(Vec<Piece>),
    /// The caller passes the address of the return buffer in `pointer`;
    /// the callee writes the value there and, where the ABI says so,
    /// returns the address in `returned`.
    Indirect {
        /// Where the hidden pointer goes.
        pointer: Loc,
        /// Where the callee hands it back (`rax` on x86-64).
        returned: Option<Loc>,
    },
}

/// The return value's plan.
///
/// ```
/// use jitffi::{classify::classify, plan::{Ext, Loc, Piece, RetPass}, Abi, Type};
/// let plan = classify(Abi::SysV64, &Type::f64(), &[], None).unwrap();
/// assert_eq!(plan.ret.ty, Type::f64());
/// let xmm0 = Piece { offset: 0, size: 8, loc: Loc::Vec(0), ext: Ext::None };
/// assert_eq!(plan.ret.pass, RetPass::Direct(vec![xmm0]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetPlan {
    /// The return type (`void` allowed).
    pub ty: Type,
    /// How it comes back.
    pub pass: RetPass,
}

/// Everything an emitter needs to build a call stub or a closure thunk.
///
/// Printed with `{}`, a plan lists one line per value (the format the golden
/// tests pin).
///
/// ```
/// use jitffi::{classify::classify, Abi, Type};
/// let plan = classify(Abi::SysV64, &Type::void(), &vec![Type::i64(); 8], None).unwrap();
/// assert_eq!((plan.stack_bytes, plan.vector_count), (16, Some(0)));
/// assert!(plan.to_string().contains("arg 7 int64_t: [0..8) stack+8"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallPlan {
    /// The calling convention.
    pub abi: Abi,
    /// The instruction set.
    pub arch: Arch,
    /// The return value.
    pub ret: RetPlan,
    /// The arguments, in order.
    pub args: Vec<ArgPlan>,
    /// For a variadic signature, how many arguments are fixed.
    pub fixed_args: Option<usize>,
    /// Bytes of outgoing argument area, shadow space included; a multiple
    /// of 16 so the stack stays aligned at the call.
    pub stack_bytes: u32,
    /// Bytes at the bottom of the argument area the callee may use as
    /// scratch (Win64's 32-byte home area); 0 elsewhere.
    pub shadow_space: u32,
    /// Value the caller puts in `al`: the number of vector registers used.
    /// SysV requires it for variadic calls; the SysV classifier sets it on
    /// every call (as libffi does) so unprototyped and variadic callees work
    /// through any cif. `None` where the ABI has no such register.
    pub vector_count: Option<u8>,
    /// The static-chain register, when the call passes one.
    pub static_chain: Option<Loc>,
    /// Every register a function of this ABI must preserve for its caller
    /// (`Loc::Gpr` / `Loc::Vec`, by number). A closure thunk is such a
    /// function but calls a handler under the host's own convention, so it
    /// saves whatever is listed here that the handler may clobber (Win64's
    /// `rsi`, `rdi`, `xmm6`-`xmm15` under SysV).
    pub callee_saved: Vec<Loc>,
    /// Byte offset of each argument in the packed entry form's buffer.
    pub packed_offsets: Vec<u32>,
    /// Size of the packed buffer (a multiple of 8).
    pub packed_size: u32,
}

/// The packed-form layout of `args`: each argument at the next offset
/// aligned to its alignment (at least 8, so scalars never share a word),
/// like the fields of a C struct.
///
/// ```
/// use jitffi::{plan::packed_layout, Type};
/// let (offsets, size) = packed_layout(&[Type::u8(), Type::long_double(), Type::f32()]);
/// assert_eq!(offsets, vec![0, 16, 32]);
/// assert_eq!(size, 40);
/// ```
pub fn packed_layout(args: &[Type]) -> (Vec<u32>, u32) {
    let mut offset = 0u32;
    let mut offsets = Vec::with_capacity(args.len());
    for t in args {
        let align = t.align().max(8) as u32;
        offset = offset.div_ceil(align) * align;
        offsets.push(offset);
        offset += t.size() as u32;
    }
    (offsets, offset.div_ceil(8) * 8)
}

impl CallPlan {
    /// Number of arguments.
    ///
    /// ```
    /// use jitffi::{classify::classify, Abi, Type};
    /// let plan = classify(Abi::SysV64, &Type::void(), &[Type::f64(), Type::u8()], None).unwrap();
    /// assert_eq!(plan.arg_count(), 2);
    /// ```
    pub fn arg_count(&self) -> usize {
        self.args.len()
    }

    /// `true` for a variadic signature.
    ///
    /// ```
    /// use jitffi::{classify::classify, Abi, Type};
    /// let fixed = classify(Abi::SysV64, &Type::void(), &[Type::pointer()], None).unwrap();
    /// let variadic = classify(Abi::SysV64, &Type::void(), &[Type::pointer()], Some(1)).unwrap();
    /// assert!(!fixed.is_variadic() && variadic.is_variadic());
    /// ```
    pub fn is_variadic(&self) -> bool {
        self.fixed_args.is_some()
    }

    /// Checks the structural promises emitters rely on; returns a
    /// description of the first broken one. Classifiers' tests call this on
    /// every plan they produce.
    ///
    /// ```
    /// use jitffi::{classify::classify, Abi, Type};
    /// let mut plan = classify(Abi::SysV64, &Type::void(), &vec![Type::i64(); 7], None).unwrap();
    /// assert_eq!(plan.check(), Ok(()));
    /// plan.stack_bytes = 8; // misaligns the stack at the call
    /// assert!(plan.check().unwrap_err().contains("not 16-aligned"));
    /// ```
    pub fn check(&self) -> Result<(), String> {
        if self.stack_bytes % 16 != 0 {
            return Err(format!("stack_bytes {} not 16-aligned", self.stack_bytes));
        }
        let check_piece = |what: &str, p: &Piece, value_size: usize| -> Result<(), String> {
            if p.size == 0 || (p.offset as usize + p.size as usize) > value_size {
                return Err(format!(
                    "{what}: piece [{}..{}) outside a {value_size}-byte value",
                    p.offset,
                    p.offset + p.size
                ));
            }
            if let Loc::Stack(off) = p.loc {
                if off < self.shadow_space || off + p.size > self.stack_bytes {
                    return Err(format!(
                        "{what}: stack piece at {off}+{} outside the argument area",
                        p.size
                    ));
                }
            }
            Ok(())
        };
        for (i, a) in self.args.iter().enumerate() {
            if let ArgPass::Direct(pieces) = &a.pass {
                for p in pieces {
                    check_piece(&format!("argument {i}"), p, a.ty.size())?;
                }
            }
        }
        if let RetPass::Direct(pieces) = &self.ret.pass {
            for p in pieces {
                if let Loc::Stack(_) = p.loc {
                    return Err("return piece on the stack".into());
                }
                check_piece("return", p, self.ret.ty.size())?;
            }
        }
        if self.packed_offsets.len() != self.args.len() {
            return Err("packed_offsets length differs from args".into());
        }
        Ok(())
    }
}

fn write_pieces(f: &mut fmt::Formatter<'_>, arch: Arch, pieces: &[Piece]) -> fmt::Result {
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(
            f,
            "[{}..{}) {}",
            p.offset,
            p.offset + p.size,
            p.loc.name(arch)
        )?;
        match p.ext {
            Ext::None => {}
            Ext::Sign => f.write_str(" sext")?,
            Ext::Zero => f.write_str(" zext")?,
        }
    }
    Ok(())
}

impl fmt::Display for CallPlan {
    /// A readable listing, one line per value; the format golden tests pin.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.abi.name(), self.arch)?;
        if let Some(n) = self.fixed_args {
            write!(f, ", variadic after {n}")?;
        }
        write!(f, ", stack {}", self.stack_bytes)?;
        if self.shadow_space > 0 {
            write!(f, " (shadow {})", self.shadow_space)?;
        }
        if let Some(al) = self.vector_count {
            write!(f, ", al={al}")?;
        }
        if let Some(chain) = self.static_chain {
            write!(f, ", chain {}", chain.name(self.arch))?;
        }
        writeln!(f)?;
        write!(f, "  ret {}: ", self.ret.ty)?;
        match &self.ret.pass {
            RetPass::Void => f.write_str("none")?,
            RetPass::Direct(pieces) => write_pieces(f, self.arch, pieces)?,
            RetPass::Indirect { pointer, returned } => {
                write!(f, "sret ptr in {}", pointer.name(self.arch))?;
                if let Some(r) = returned {
                    write!(f, ", returned in {}", r.name(self.arch))?;
                }
            }
        }
        writeln!(f)?;
        for (i, a) in self.args.iter().enumerate() {
            let va = if a.variadic { " (variadic)" } else { "" };
            write!(f, "  arg {i} {}{va}: ", a.ty)?;
            match &a.pass {
                ArgPass::Direct(pieces) => write_pieces(f, self.arch, pieces)?,
                ArgPass::Indirect { pointer } => {
                    write!(f, "copy, address in {}", pointer.name(self.arch))?
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_layout_aligns_each_argument() {
        let s = Type::structure([Type::u8(), Type::u8(), Type::u8()]).unwrap();
        let (offsets, size) = packed_layout(&[Type::u8(), Type::long_double(), s, Type::f32()]);
        assert_eq!(offsets, vec![0, 16, 32, 40]);
        assert_eq!(size, 48);
    }
}
