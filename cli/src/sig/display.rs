//! Canonical C spelling of signatures and types: what `Display` prints
//! re-parses to an equal value.
//!
//! Declarators print inside-out, as C reads them: `int (*(*)[3])(double)`
//! is built by wrapping the declarator text at each derivation.

use std::fmt;

use jitffi::Abi;

use super::{CType, FloatKind, IntKind, Param, Signature};

/// The prefix spelling of an ABI (without the `:`).
pub(crate) fn abi_name(abi: Abi) -> &'static str {
    match abi {
        Abi::SysV64 => "sysv",
        Abi::Win64 => "win64",
        Abi::GnuW64 => "gnuw64",
        Abi::Aapcs64 => "aapcs64",
    }
}

/// The specifier words of a non-derived type.
fn base_name(ty: &CType, out: &mut String) {
    let int = |kind: IntKind, signed: bool| -> String {
        let (s, u) = match kind {
            IntKind::Char => ("signed char", "unsigned char"),
            IntKind::Short => ("short", "unsigned short"),
            IntKind::Int => ("int", "unsigned int"),
            IntKind::Long => ("long", "unsigned long"),
            IntKind::LongLong => ("long long", "unsigned long long"),
            IntKind::PointerSized => ("ptrdiff_t", "size_t"),
            IntKind::Int128 => ("__int128", "unsigned __int128"),
            IntKind::Exact(bits) => {
                return format!("{}int{bits}_t", if signed { "" } else { "u" });
            }
        };
        (if signed { s } else { u }).to_string()
    };
    let float = |k: FloatKind| match k {
        FloatKind::Float => "float",
        FloatKind::Double => "double",
        FloatKind::LongDouble => "long double",
    };
    match ty {
        CType::Void => out.push_str("void"),
        CType::Bool => out.push_str("bool"),
        CType::Int {
            kind: IntKind::Char,
            signed: None,
        } => out.push_str("char"),
        CType::Int { kind, signed } => out.push_str(&int(*kind, signed.unwrap_or(true))),
        CType::Float(k) => out.push_str(float(*k)),
        CType::Complex(k) => {
            out.push_str(float(*k));
            out.push_str(" _Complex");
        }
        CType::Opaque(name) => out.push_str(name),
        CType::Struct(members) | CType::Union(members) => {
            out.push_str(if matches!(ty, CType::Struct(_)) {
                "struct {"
            } else {
                "union {"
            });
            for m in members {
                out.push(' ');
                declaration(&m.ty, m.name.as_deref().unwrap_or(""), out);
                out.push(';');
            }
            out.push_str(" }");
        }
        CType::Pointer(_) | CType::Array(..) | CType::Function(_) => {
            unreachable!("derived types are unwrapped by declaration()")
        }
    }
}

/// The parenthesized parameter list of `sig`.
fn param_list(sig: &Signature, out: &mut String) {
    out.push('(');
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !std::mem::take(&mut first) {
            out.push_str(", ");
        }
    };
    let param = |p: &Param, out: &mut String| {
        declaration(&p.ty, p.name.as_deref().unwrap_or(""), out);
    };
    for p in &sig.params {
        sep(out);
        param(p, out);
    }
    match &sig.varargs {
        Some(var) => {
            sep(out);
            out.push_str("...");
            for p in var {
                sep(out);
                param(p, out);
            }
        }
        None if sig.params.is_empty() => out.push_str("void"),
        None => {}
    }
    out.push(')');
}

/// Appends the declaration of `name` (may be empty: abstract) as `ty`.
pub(crate) fn declaration(ty: &CType, name: &str, out: &mut String) {
    declarator(ty, name.to_string(), out);
}

/// Appends `ty` declared around the declarator text `inner`, wrapping it
/// at each derivation (a loop, not recursion, so pointer chains are cheap).
fn declarator(ty: &CType, mut inner: String, out: &mut String) {
    let mut ty = ty;
    loop {
        match ty {
            CType::Pointer(t) => {
                inner.insert(0, '*');
                if matches!(**t, CType::Function(_) | CType::Array(..)) {
                    inner = format!("({inner})");
                }
                ty = t;
            }
            CType::Array(t, n) => {
                inner.push_str(&format!("[{n}]"));
                ty = t;
            }
            CType::Function(sig) => {
                param_list(sig, &mut inner);
                ty = &sig.ret;
            }
            base => {
                base_name(base, out);
                // A space before names and `*` (`int *p`, `void (*)(void)`),
                // none before a bare parameter list or array (`int(void)`,
                // `int32_t[4]`, as jitffi prints it).
                let tight =
                    inner.starts_with('[') || (inner.starts_with('(') && !inner.starts_with("(*"));
                if !inner.is_empty() && !tight {
                    out.push(' ');
                }
                out.push_str(&inner);
                return;
            }
        }
    }
}

/// `[abi: ]ret name(params)` for a whole signature.
pub(crate) fn signature(sig: &Signature, out: &mut String) {
    if let Some(abi) = sig.abi {
        out.push_str(abi_name(abi));
        out.push_str(": ");
    }
    let mut inner = sig.name.clone().unwrap_or_default();
    param_list(sig, &mut inner);
    // The return type's derivations wrap the named parameter list, as in
    // `char *strdup(char *)` or `void (*signal(int, void (*)(int)))(int)`.
    declarator(&sig.ret, inner, out);
}

impl fmt::Display for Signature {
    /// ```
    /// use jitffi_cli::sig::Signature;
    /// let s = Signature::parse("win64 : double pow(const double x, double y);").unwrap();
    /// assert_eq!(s.to_string(), "win64: double pow(double x, double y)");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        signature(self, &mut out);
        f.write_str(&out)
    }
}

impl fmt::Display for CType {
    /// The type as an abstract declarator: `char *`, `int (*)(int)`,
    /// `struct { double x; int32_t[4]; }`.
    ///
    /// ```
    /// use jitffi_cli::sig::{CType, IntKind};
    /// let t = CType::Pointer(Box::new(CType::Int { kind: IntKind::Char, signed: None }));
    /// assert_eq!(t.to_string(), "char *");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        declaration(self, "", &mut out);
        f.write_str(&out)
    }
}
