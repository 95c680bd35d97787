//! Calling conventions and instruction sets.
//!
//! An [`Abi`] says how a call passes its values (which registers, which
//! stack slots); an [`Arch`] says which instructions the stub is made of.
//! Every stage after [`crate::types`] takes an `Abi`: the classifier picks
//! its rules from it, the emitter its instruction set from [`Abi::arch`].
//!
//! ```
//! use jitffi::{Abi, Arch};
//! assert_eq!(Abi::Win64.arch(), Arch::X86_64);
//! assert_eq!(Abi::Aapcs64.name(), "aapcs64");
//! ```

/// An instruction set architecture jitffi can emit code for.
///
/// ```
/// use jitffi::{Abi, Arch};
/// assert_eq!(Abi::SysV64.arch(), Arch::X86_64);
/// assert_ne!(Arch::X86_64, Arch::Aarch64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86-64 (AMD64).
    X86_64,
    /// AArch64 (ARMv8-A, 64-bit).
    Aarch64,
}

impl Arch {
    /// The architecture this program runs on, if jitffi supports it.
    ///
    /// ```
    /// use jitffi::Arch;
    /// if cfg!(target_arch = "x86_64") {
    ///     assert_eq!(Arch::host(), Some(Arch::X86_64));
    /// }
    /// ```
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
///
/// ```
/// use jitffi::Abi;
/// // The two Microsoft flavours share registers and differ in `long double`.
/// assert_eq!(Abi::Win64.arch(), Abi::GnuW64.arch());
/// assert_ne!(Abi::Win64, Abi::GnuW64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Abi {
    /// The System V AMD64 psABI (Linux, BSD, macOS on x86-64).
    SysV64,
    /// Microsoft x64 (`__attribute__((ms_abi))`), libffi's `FFI_WIN64`.
    Win64,
    /// Microsoft x64 as GCC's MinGW uses it, libffi's `FFI_GNUW64`. For
    /// jitffi's 16-byte x87 `long double` it is identical to [`Abi::Win64`]
    /// (by reference, returned through the hidden pointer, as gcc's
    /// `ms_abi` does); libffi's two ABIs differ only in MSVC builds, where
    /// `long double` is `double`: describe such a function with `f64`.
    GnuW64,
    /// AAPCS64 as Linux uses it.
    Aapcs64,
}

impl Abi {
    /// The default ABI of the host (`FFI_DEFAULT_ABI`).
    ///
    /// ```
    /// use jitffi::{Abi, Arch};
    /// assert_eq!(Some(Abi::host().arch()), Arch::host());
    /// if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
    ///     assert_eq!(Abi::host(), Abi::SysV64);
    /// }
    /// ```
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
    ///
    /// ```
    /// use jitffi::{Abi, Arch};
    /// assert_eq!(Abi::GnuW64.arch(), Arch::X86_64);
    /// assert_eq!(Abi::Aapcs64.arch(), Arch::Aarch64);
    /// ```
    pub const fn arch(self) -> Arch {
        match self {
            Abi::SysV64 | Abi::Win64 | Abi::GnuW64 => Arch::X86_64,
            Abi::Aapcs64 => Arch::Aarch64,
        }
    }

    /// Short lowercase name used in plan listings (`sysv64`, `win64`...).
    ///
    /// ```
    /// use jitffi::{classify::classify, Abi, Type};
    /// assert_eq!(Abi::SysV64.name(), "sysv64");
    /// let plan = classify(Abi::SysV64, &Type::void(), &[], None).unwrap();
    /// assert!(plan.to_string().starts_with("sysv64 "));
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Abi::SysV64 => "sysv64",
            Abi::Win64 => "win64",
            Abi::GnuW64 => "gnuw64",
            Abi::Aapcs64 => "aapcs64",
        }
    }
}
