//! Calling conventions and instruction sets.

/// An instruction set architecture jitffi can emit code for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86-64 (AMD64).
    X86_64,
    /// AArch64 (ARMv8-A, 64-bit).
    Aarch64,
}

impl Arch {
    /// The architecture this program runs on, if jitffi supports it.
    pub const fn host() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }
}

/// A calling convention. The numbering of the C layer follows libffi's
/// `ffi_abi`; this enum is independent of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Abi {
    /// The System V AMD64 psABI (Linux, BSD, macOS on x86-64).
    SysV64,
    /// Microsoft x64 (`__attribute__((ms_abi))`), libffi's `FFI_WIN64`.
    Win64,
    /// Microsoft x64 as GCC's MinGW uses it, libffi's `FFI_GNUW64`
    /// (differs in how `long double` travels).
    GnuW64,
    /// AAPCS64 as Linux uses it.
    Aapcs64,
}

impl Abi {
    /// The default ABI of the host (`FFI_DEFAULT_ABI`).
    pub const fn host() -> Abi {
        if cfg!(target_arch = "aarch64") {
            Abi::Aapcs64
        } else if cfg!(all(target_arch = "x86_64", windows)) {
            Abi::Win64
        } else {
            Abi::SysV64
        }
    }

    /// The instruction set this ABI belongs to.
    pub const fn arch(self) -> Arch {
        match self {
            Abi::SysV64 | Abi::Win64 | Abi::GnuW64 => Arch::X86_64,
            Abi::Aapcs64 => Arch::Aarch64,
        }
    }

    /// Short lowercase name used in plan listings (`sysv64`, `win64`...).
    pub const fn name(self) -> &'static str {
        match self {
            Abi::SysV64 => "sysv64",
            Abi::Win64 => "win64",
            Abi::GnuW64 => "gnuw64",
            Abi::Aapcs64 => "aapcs64",
        }
    }
}
