//! `jitffi call LIBRARY SYMBOL SIG ARGS...`: call a C function from the
//! shell through a jitffi stub and print what it returned.
//!
//! Argument literals, by parameter type:
//!
//! | type | literal |
//! |---|---|
//! | integers | `42`, `-7`, `0x2a`, `0b101`, `'a'` |
//! | `bool` | `true`, `false`, `0`, `1` |
//! | floating | `2.5`, `-1e-3`, `inf`, `nan` (`long double` goes through `double`) |
//! | `char *` | the word itself (`hello world`), `"with \"escapes\"\n"`, or `null` |
//! | other pointers | `null`, an address (`0x7ffd1234`) |
//! | struct, union, array, complex | `{1, 2.5, {3, 4}}` (a union takes its first member) |
//!
//! After an open `...`, extra arguments are typed from their spelling as C's
//! default promotions would: integers `int` (or `long long` when too big),
//! decimals `double`, `null` a pointer, anything else a string.
//!
//! Results print in the same literal syntax: numbers, quoted strings for
//! `char *`, `0x...` or `NULL` for pointers, `{...}` (with `.name =` where
//! the member has one) for aggregates.

use std::ffi::{c_void, CString};
use std::fmt::Write as _;

use jitffi::{Abi, Cif, Type, TypeKind};

use crate::error::{parse_signature, CliError};
use crate::sig::{CType, FloatKind, IntKind, Param, Signature};

/// What `call` prints besides the result.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallOptions {
    /// Print `errno` after the call (set to 0 before it).
    pub errno: bool,
}

/// Loads `library`, finds `symbol`, calls it as `sig` with `args` and
/// returns the printed result (empty for `void`).
pub fn call(
    library: &str,
    symbol: &str,
    sig_text: &str,
    args: &[String],
    options: CallOptions,
) -> Result<String, CliError> {
    let mut sig = parse_signature(sig_text)?;
    if let Some(name) = &sig.name {
        if name != symbol {
            return Err(CliError::Usage(format!(
                "the signature is a prototype of `{name}` but the symbol is `{symbol}`"
            )));
        }
    }
    infer_varargs(&mut sig, args)?;
    let params: Vec<Param> = sig.all_params().cloned().collect();
    if params.len() != args.len() {
        return Err(CliError::Usage(format!(
            "`{sig}` takes {} argument{}, {} given",
            params.len(),
            if params.len() == 1 { "" } else { "s" },
            args.len()
        )));
    }
    let lowered = sig.lower(Abi::host())?;
    let cif = Cif::with_abi(lowered.abi, &lowered.ret, &lowered.args, lowered.fixed)?;

    let mut strings = Vec::new();
    let mut storage: Vec<Vec<u128>> = Vec::with_capacity(args.len());
    for (i, ((param, ty), text)) in params.iter().zip(&lowered.args).zip(args).enumerate() {
        let mut buf = vec![0u128; ty.size().div_ceil(16).max(1)];
        // SAFETY: `buf` has at least `ty.size()` bytes.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), ty.size()) };
        let what = || match &param.name {
            Some(n) => format!("argument {} (`{n}`)", i + 1),
            None => format!("argument {}", i + 1),
        };
        let lit = if param.ty.is_c_string() {
            string_argument(text)
        } else {
            parse_literal(text).map_err(|m| CliError::Usage(format!("{}: {m}", what())))?
        };
        encode(&param.ty, ty, &lit, bytes, &mut strings)
            .map_err(|m| CliError::Usage(format!("{}: {m}", what())))?;
        storage.push(buf);
    }

    let function = resolve(library, symbol)?;
    let avalue: Vec<*const c_void> = storage.iter().map(|b| b.as_ptr().cast()).collect();
    let mut rvalue = vec![0u128; cif.ret_buffer_size().div_ceil(16).max(1)];
    // SAFETY: errno is thread-local; zeroing it lets --errno tell whether
    // the callee set it.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: the user vouches that `symbol` has signature `sig`; the
    // arguments are encoded at their types' sizes in 16-byte aligned
    // buffers, `rvalue` holds ret_buffer_size bytes, and `strings` keeps
    // every C string alive until after the call.
    unsafe { cif.call_raw(function, rvalue.as_mut_ptr().cast(), avalue.as_ptr()) };
    // SAFETY: read straight after the call, on the same thread.
    let errno = unsafe { *libc::__errno_location() };
    // C stdio buffers belong to the callee's world; flush them so its
    // output comes before ours.
    // SAFETY: fflush(NULL) flushes every open C stream.
    unsafe { libc::fflush(std::ptr::null_mut()) };

    let mut out = String::new();
    if !lowered.ret.is_void() {
        // SAFETY: `rvalue` holds ret_buffer_size >= ret.size() bytes.
        let bytes =
            unsafe { std::slice::from_raw_parts(rvalue.as_ptr().cast::<u8>(), lowered.ret.size()) };
        decode(&sig.ret, &lowered.ret, bytes, &mut out);
        out.push('\n');
    }
    // Only now: a returned `char *` may point into an argument (strchr).
    drop(strings);
    if options.errno {
        let _ = writeln!(
            out,
            "errno = {errno} ({})",
            std::io::Error::from_raw_os_error(errno)
        );
    }
    Ok(out)
}

/// Finds `symbol` in `library`; `-` or `self` means the process itself
/// (libc and everything already loaded). A bare name like `m` also tries
/// `libm.so.6` and `libm.so`.
fn resolve(library: &str, symbol: &str) -> Result<*const c_void, CliError> {
    use libloading::os::unix::Library;
    let lib = if library == "-" || library == "self" {
        Library::this()
    } else {
        let mut candidates = vec![library.to_string()];
        if !library.contains('/') && !library.contains(".so") {
            let stem = library.strip_prefix("lib").unwrap_or(library);
            candidates.push(format!("lib{stem}.so.6"));
            candidates.push(format!("lib{stem}.so"));
        }
        let mut first_error = None;
        let mut found = None;
        for c in &candidates {
            // SAFETY: loading a library runs its initialisers; the user
            // asked for this library by name.
            match unsafe { Library::new(c) } {
                Ok(lib) => {
                    found = Some(lib);
                    break;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match found {
            Some(lib) => lib,
            None => {
                return Err(CliError::Load(format!(
                    "cannot load `{library}`: {}",
                    first_error.map_or_else(String::new, |e| e.to_string())
                )))
            }
        }
    };
    let name = CString::new(symbol)
        .map_err(|_| CliError::Usage(format!("symbol name `{symbol}` contains a NUL byte")))?;
    // SAFETY: the symbol is only used as an address.
    let address = unsafe { lib.get::<*const c_void>(name.as_bytes_with_nul()) }
        .map(|s| *s)
        .map_err(|e| CliError::Load(format!("symbol `{symbol}` not found in `{library}`: {e}")))?;
    if address.is_null() {
        return Err(CliError::Load(format!(
            "symbol `{symbol}` in `{library}` has a null address"
        )));
    }
    // The library stays loaded for the rest of the process: the callee may
    // have registered atexit handlers or handed out pointers into itself.
    std::mem::forget(lib);
    Ok(address)
}

/// Gives an open `...` the types of the extra arguments.
fn infer_varargs(sig: &mut Signature, args: &[String]) -> Result<(), CliError> {
    let Some(varargs) = &mut sig.varargs else {
        return Ok(());
    };
    if !varargs.is_empty() {
        return Ok(());
    }
    for (i, text) in args.iter().enumerate().skip(sig.params.len()) {
        let ty = match parse_literal(text) {
            Ok(Literal::Number(n)) => match parse_int(&n) {
                Ok(v) => CType::Int {
                    kind: if i32::try_from(v).is_ok() {
                        IntKind::Int
                    } else {
                        IntKind::LongLong
                    },
                    signed: Some(true),
                },
                Err(_) => CType::Float(FloatKind::Double),
            },
            Ok(Literal::Null) => CType::Pointer(Box::new(CType::Void)),
            Ok(Literal::Aggregate(_)) => {
                return Err(CliError::Usage(format!(
                    "argument {}: an aggregate after `...` needs its type written after the `...`",
                    i + 1
                )))
            }
            _ => CType::Pointer(Box::new(CType::Int {
                kind: IntKind::Char,
                signed: None,
            })),
        };
        varargs.push(Param { name: None, ty });
    }
    Ok(())
}

/// An argument literal.
#[derive(Clone, Debug, PartialEq)]
enum Literal {
    /// A number as written (the parameter type decides how to read it).
    Number(String),
    /// A quoted string or a bare word.
    Str(String),
    Null,
    Bool(bool),
    /// `{a, b, ...}` or `[a, b, ...]`.
    Aggregate(Vec<Literal>),
}

/// A `char *` argument: the text itself, unless quoted or `null`.
fn string_argument(text: &str) -> Literal {
    if text == "null" || text == "NULL" {
        return Literal::Null;
    }
    if text.len() >= 2 && text.starts_with('"') && text.ends_with('"') {
        if let Ok(lit) = parse_literal(text) {
            return lit;
        }
    }
    Literal::Str(text.to_string())
}

fn parse_literal(text: &str) -> Result<Literal, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut pos = 0;
    let lit = literal_at(&chars, &mut pos, 0)?;
    skip_space(&chars, &mut pos);
    if pos != chars.len() {
        return Err(format!(
            "unexpected `{}` at column {} of `{text}`",
            chars[pos],
            pos + 1
        ));
    }
    Ok(lit)
}

fn skip_space(chars: &[char], pos: &mut usize) {
    while chars.get(*pos).is_some_and(|c| c.is_whitespace()) {
        *pos += 1;
    }
}

fn literal_at(chars: &[char], pos: &mut usize, depth: usize) -> Result<Literal, String> {
    if depth > 64 {
        return Err("literal nested too deeply".into());
    }
    skip_space(chars, pos);
    let Some(&c) = chars.get(*pos) else {
        return Err("expected a value, found the end".into());
    };
    match c {
        '{' | '[' => {
            let close = if c == '{' { '}' } else { ']' };
            *pos += 1;
            let mut items = Vec::new();
            loop {
                skip_space(chars, pos);
                if chars.get(*pos) == Some(&close) {
                    *pos += 1;
                    return Ok(Literal::Aggregate(items));
                }
                items.push(literal_at(chars, pos, depth + 1)?);
                skip_space(chars, pos);
                match chars.get(*pos) {
                    Some(',') => *pos += 1,
                    Some(&c2) if c2 == close => {}
                    Some(&other) => {
                        return Err(format!(
                            "expected `,` or `{close}` at column {}, found `{other}`",
                            *pos + 1
                        ))
                    }
                    None => return Err(format!("missing `{close}`")),
                }
            }
        }
        '"' => {
            *pos += 1;
            let mut s = String::new();
            loop {
                let Some(&ch) = chars.get(*pos) else {
                    return Err("unterminated string".into());
                };
                *pos += 1;
                match ch {
                    '"' => return Ok(Literal::Str(s)),
                    '\\' => {
                        let Some(&e) = chars.get(*pos) else {
                            return Err("unterminated escape".into());
                        };
                        *pos += 1;
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            'a' => '\x07',
                            'e' => '\x1b',
                            other => other,
                        });
                    }
                    other => s.push(other),
                }
            }
        }
        '\'' => {
            // 'a': the character's code, as C does.
            let (Some(&ch), Some('\'')) = (chars.get(*pos + 1), chars.get(*pos + 2)) else {
                return Err("a character literal is one character in quotes, like 'a'".into());
            };
            *pos += 3;
            Ok(Literal::Number((ch as u32).to_string()))
        }
        _ => {
            let start = *pos;
            while chars
                .get(*pos)
                .is_some_and(|c| !matches!(c, ',' | '}' | ']' | '{' | '[') && !c.is_whitespace())
            {
                *pos += 1;
            }
            let word: String = chars[start..*pos].iter().collect();
            Ok(match word.as_str() {
                "null" | "NULL" | "nullptr" => Literal::Null,
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                w if looks_numeric(w) => Literal::Number(word),
                _ => Literal::Str(word),
            })
        }
    }
}

fn looks_numeric(w: &str) -> bool {
    let body = w.strip_prefix(['-', '+']).unwrap_or(w);
    body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || matches!(
            body.to_ascii_lowercase().as_str(),
            "inf" | "infinity" | "nan"
        )
}

/// Parses an integer literal: decimal, `0x` hex, `0o`/`0b`, with a sign.
fn parse_int(n: &str) -> Result<i128, String> {
    let (negative, body) = match n.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, n.strip_prefix('+').unwrap_or(n)),
    };
    let body = body.replace('_', "");
    let (radix, digits) = match body.get(..2).map(str::to_ascii_lowercase).as_deref() {
        Some("0x") => (16, &body[2..]),
        Some("0b") => (2, &body[2..]),
        Some("0o") => (8, &body[2..]),
        _ => (10, body.as_str()),
    };
    let magnitude =
        u128::from_str_radix(digits, radix).map_err(|_| format!("`{n}` is not an integer"))?;
    if negative {
        if magnitude > i128::MAX as u128 + 1 {
            return Err(format!("`{n}` is out of range"));
        }
        Ok((magnitude as i128).wrapping_neg())
    } else {
        // Values above i128::MAX only fit unsigned __int128; keep the bits.
        Ok(magnitude as i128)
    }
}

fn parse_float(n: &str) -> Result<f64, String> {
    if let Ok(v) = parse_int(n) {
        return Ok(v as f64);
    }
    n.parse::<f64>()
        .map_err(|_| format!("`{n}` is not a number"))
}

/// Writes `lit` as a value of `cty` (laid out as `ty`) into `out`.
fn encode(
    cty: &CType,
    ty: &Type,
    lit: &Literal,
    out: &mut [u8],
    strings: &mut Vec<CString>,
) -> Result<(), String> {
    match (ty.kind(), lit) {
        (TypeKind::Pointer, Literal::Null) => put(out, &0usize.to_ne_bytes()),
        (TypeKind::Pointer, Literal::Str(s)) if cty.is_c_string() => {
            let c = CString::new(s.as_str())
                .map_err(|_| "the string contains a NUL byte".to_string())?;
            put(out, &(c.as_ptr() as usize).to_ne_bytes())?;
            strings.push(c);
            Ok(())
        }
        (TypeKind::Pointer, Literal::Number(n)) => {
            let v = parse_int(n)?;
            let v = u64::try_from(v).map_err(|_| format!("`{n}` is not an address"))?;
            put(out, &v.to_ne_bytes())
        }
        (TypeKind::Pointer, _) => Err(format!(
            "a `{cty}` takes `null` or an address{}",
            if cty.is_c_string() {
                " or a string"
            } else {
                ""
            }
        )),
        (_, Literal::Bool(b)) if is_integer(ty) => put_int(out, ty, i128::from(*b), &b.to_string()),
        (_, Literal::Number(n)) if is_integer(ty) => {
            let v = parse_int(n)?;
            put_int(out, ty, v, n)
        }
        (TypeKind::F32, Literal::Number(n)) => put(out, &(parse_float(n)? as f32).to_ne_bytes()),
        (TypeKind::F64, Literal::Number(n)) => put(out, &parse_float(n)?.to_ne_bytes()),
        (TypeKind::LongDouble, Literal::Number(n)) => {
            put(out, &long_double::from_f64(parse_float(n)?)?)
        }
        (
            TypeKind::ComplexF32 | TypeKind::ComplexF64 | TypeKind::ComplexLongDouble,
            Literal::Aggregate(parts),
        ) => {
            let [re, im] = parts.as_slice() else {
                return Err(format!("a `{cty}` is `{{re, im}}`"));
            };
            let part_ty = match ty.kind() {
                TypeKind::ComplexF32 => Type::f32(),
                TypeKind::ComplexF64 => Type::f64(),
                _ => Type::long_double(),
            };
            let half = ty.size() / 2;
            let part_cty = CType::Float(FloatKind::Double);
            encode(&part_cty, &part_ty, re, &mut out[..half], strings)?;
            encode(&part_cty, &part_ty, im, &mut out[half..], strings)
        }
        (TypeKind::Struct { fields, offsets }, Literal::Aggregate(items)) => {
            let members = members_of(cty);
            if items.len() != fields.len() {
                return Err(format!(
                    "`{cty}` has {} members, {} given",
                    fields.len(),
                    items.len()
                ));
            }
            for (i, (f, item)) in fields.iter().zip(items).enumerate() {
                let off = offsets[i];
                let mcty = members.get(i).map_or(&CType::Void, |m| &m.ty);
                encode(mcty, f, item, &mut out[off..off + f.size()], strings)
                    .map_err(|m| format!("member {}: {m}", i + 1))?;
            }
            Ok(())
        }
        (TypeKind::Union { fields }, Literal::Aggregate(items)) => {
            let [item] = items.as_slice() else {
                return Err("a union literal initialises its first member: `{value}`".into());
            };
            let members = members_of(cty);
            let mcty = members.first().map_or(&CType::Void, |m| &m.ty);
            encode(
                mcty,
                &fields[0],
                item,
                &mut out[..fields[0].size()],
                strings,
            )
        }
        (TypeKind::Array { elem, len }, Literal::Aggregate(items)) => {
            if items.len() != *len {
                return Err(format!("`{cty}` has {len} elements, {} given", items.len()));
            }
            let ecty = match cty {
                CType::Array(e, _) => e.as_ref(),
                _ => &CType::Void,
            };
            for (i, item) in items.iter().enumerate() {
                let off = i * elem.size();
                encode(ecty, elem, item, &mut out[off..off + elem.size()], strings)
                    .map_err(|m| format!("element {i}: {m}"))?;
            }
            Ok(())
        }
        (_, Literal::Str(s)) => Err(format!("`{s}` is not a valid `{cty}`")),
        (_, _) => Err(format!("that literal is not a valid `{cty}`")),
    }
}

/// Integer types of every width (pointers are handled apart).
fn is_integer(ty: &Type) -> bool {
    ty.is_integer_like() || matches!(ty.kind(), TypeKind::I128 | TypeKind::U128)
}

fn members_of(cty: &CType) -> &[Param] {
    match cty {
        CType::Struct(m) | CType::Union(m) => m,
        _ => &[],
    }
}

fn put(out: &mut [u8], bytes: &[u8]) -> Result<(), String> {
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(())
}

/// Stores an integer at `ty`'s width after checking it fits.
fn put_int(out: &mut [u8], ty: &Type, v: i128, text: &str) -> Result<(), String> {
    let size = ty.size();
    let fits = if size >= 16 {
        true
    } else {
        let bits = size as u32 * 8;
        if ty.is_signed() {
            let min = -(1i128 << (bits - 1));
            let max = (1i128 << (bits - 1)) - 1;
            (min..=max).contains(&v)
        } else {
            (0..(1i128 << bits)).contains(&v)
        }
    };
    if !fits {
        return Err(format!("{text} does not fit in {ty}"));
    }
    put(out, &v.to_le_bytes()[..size])
}

/// Appends `bytes`, a value of `cty` laid out as `ty`, in literal syntax.
fn decode(cty: &CType, ty: &Type, bytes: &[u8], out: &mut String) {
    let int = |n: usize| {
        let mut b = [0u8; 16];
        b[..n].copy_from_slice(&bytes[..n]);
        u128::from_le_bytes(b)
    };
    match ty.kind() {
        TypeKind::Void => {}
        TypeKind::Pointer => {
            let p = int(8) as usize;
            if p == 0 {
                out.push_str("NULL");
            } else if cty.is_c_string() {
                // SAFETY: the callee returned a non-null `char *`, which C
                // promises is a NUL-terminated string.
                let s = unsafe { std::ffi::CStr::from_ptr(p as *const libc::c_char) };
                quote(s.to_bytes(), out);
            } else {
                let _ = write!(out, "{p:#x}");
            }
        }
        TypeKind::F32 => {
            let _ = write!(
                out,
                "{}",
                f32::from_le_bytes(bytes[..4].try_into().unwrap_or_default())
            );
        }
        TypeKind::F64 => {
            let _ = write!(
                out,
                "{}",
                f64::from_le_bytes(bytes[..8].try_into().unwrap_or_default())
            );
        }
        TypeKind::LongDouble => {
            let _ = write!(out, "{}", long_double::to_f64(bytes));
        }
        TypeKind::ComplexF32 | TypeKind::ComplexF64 | TypeKind::ComplexLongDouble => {
            let half = ty.size() / 2;
            let part = match ty.kind() {
                TypeKind::ComplexF32 => Type::f32(),
                TypeKind::ComplexF64 => Type::f64(),
                _ => Type::long_double(),
            };
            out.push('{');
            decode(cty, &part, &bytes[..half], out);
            out.push_str(", ");
            decode(cty, &part, &bytes[half..], out);
            out.push('}');
        }
        TypeKind::Struct { fields, offsets } => {
            let members = members_of(cty);
            out.push('{');
            for (i, (f, off)) in fields.iter().zip(offsets).enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let member = members.get(i);
                if let Some(name) = member.and_then(|m| m.name.as_deref()) {
                    let _ = write!(out, ".{name} = ");
                }
                let mcty = member.map_or(&CType::Void, |m| &m.ty);
                decode(mcty, f, &bytes[*off..off + f.size()], out);
            }
            out.push('}');
        }
        TypeKind::Union { fields } => {
            let member = members_of(cty).first();
            out.push('{');
            if let Some(name) = member.and_then(|m| m.name.as_deref()) {
                let _ = write!(out, ".{name} = ");
            }
            let mcty = member.map_or(&CType::Void, |m| &m.ty);
            decode(mcty, &fields[0], &bytes[..fields[0].size()], out);
            out.push('}');
        }
        TypeKind::Array { elem, len } => {
            let ecty = match cty {
                CType::Array(e, _) => e.as_ref(),
                _ => &CType::Void,
            };
            out.push('{');
            for i in 0..*len {
                if i > 0 {
                    out.push_str(", ");
                }
                decode(
                    ecty,
                    elem,
                    &bytes[i * elem.size()..(i + 1) * elem.size()],
                    out,
                );
            }
            out.push('}');
        }
        _ if matches!(cty, CType::Bool) => {
            out.push_str(if bytes[0] != 0 { "true" } else { "false" });
        }
        _ => {
            let size = ty.size();
            let raw = int(size);
            if ty.is_signed() {
                let shift = 128 - 8 * size as u32;
                let _ = write!(out, "{}", ((raw << shift) as i128) >> shift);
            } else {
                let _ = write!(out, "{raw}");
            }
        }
    }
}

/// A C-style quoted string.
fn quote(bytes: &[u8], out: &mut String) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
}

/// The host's `long double` <-> `f64`: x87 80-bit on x86-64, converted
/// by the FPU itself so rounding is the hardware's; IEEE binary128 on
/// AArch64, converted in software (widening is exact, narrowing rounds to
/// nearest, ties to even, as the hardware's conversions do).
mod long_double {
    /// The 16-byte slot of a `long double` holding `v`.
    #[cfg(target_arch = "x86_64")]
    pub fn from_f64(v: f64) -> Result<[u8; 16], String> {
        let mut slot = [0u8; 16];
        // SAFETY: fld/fstp move one value through the x87 stack and leave
        // it as it was; both pointers are valid for their widths.
        unsafe {
            std::arch::asm!(
                "fld qword ptr [{src}]",
                "fstp tbyte ptr [{dst}]",
                src = in(reg) &v,
                dst = in(reg) slot.as_mut_ptr(),
                options(nostack),
            );
        }
        Ok(slot)
    }

    /// `bytes` (at least 10) as an x87 extended value, rounded to `f64`.
    #[cfg(target_arch = "x86_64")]
    pub fn to_f64(bytes: &[u8]) -> f64 {
        let mut slot = [0u8; 16];
        slot[..10].copy_from_slice(&bytes[..10]);
        let mut v = 0f64;
        // SAFETY: as above, in the other direction.
        unsafe {
            std::arch::asm!(
                "fld tbyte ptr [{src}]",
                "fstp qword ptr [{dst}]",
                src = in(reg) slot.as_ptr(),
                dst = in(reg) &mut v,
                options(nostack),
            );
        }
        v
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub use binary128::{from_f64, to_f64};

    /// IEEE binary128: sign, 15 exponent bits (bias 16383), 112 fraction
    /// bits; little-endian in memory.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    pub mod binary128 {
        const FRAC_BITS: u32 = 112;
        const FRAC_MASK: u128 = (1 << FRAC_BITS) - 1;
        const EXP_MAX: u128 = 0x7FFF;
        const BIAS: i32 = 16383;

        /// `v` as a binary128 `long double`: every `f64` is exact there.
        pub fn from_f64(v: f64) -> Result<[u8; 16], String> {
            let bits = v.to_bits();
            let sign = u128::from(bits >> 63) << 127;
            let exp = ((bits >> 52) & 0x7FF) as i32;
            let frac = u128::from(bits & ((1 << 52) - 1));
            let body = match exp {
                0x7FF => (EXP_MAX << FRAC_BITS) | (frac << 60),
                0 if frac == 0 => 0,
                0 => {
                    // Subnormal: 0.frac * 2^-1022; the leading one becomes
                    // the implicit bit.
                    let top = 127 - frac.leading_zeros() as i32; // < 52
                    let e = top - 1074;
                    let frac = (frac << (FRAC_BITS as i32 - top)) & FRAC_MASK;
                    (((e + BIAS) as u128) << FRAC_BITS) | frac
                }
                _ => (((exp - 1023 + BIAS) as u128) << FRAC_BITS) | (frac << 60),
            };
            Ok((sign | body).to_le_bytes())
        }

        /// `bytes` (16) as a binary128 value, rounded to the nearest `f64`
        /// (ties to even).
        pub fn to_f64(bytes: &[u8]) -> f64 {
            let mut b = [0u8; 16];
            b.copy_from_slice(&bytes[..16]);
            let bits = u128::from_le_bytes(b);
            let sign = ((bits >> 127) as u64) << 63;
            let exp = ((bits >> FRAC_BITS) & EXP_MAX) as i32;
            let frac = bits & FRAC_MASK;
            let inf = sign | (0x7FF << 52);
            if exp == EXP_MAX as i32 {
                // Infinity, or a NaN keeping its top fraction bits (quiet).
                let nan = if frac == 0 {
                    0
                } else {
                    (1 << 51) | (frac >> 60) as u64
                };
                return f64::from_bits(inf | nan);
            }
            if exp == 0 {
                // Zero, or a binary128 subnormal: far below f64's range.
                return f64::from_bits(sign);
            }
            let e = exp - BIAS;
            if e > 1023 {
                return f64::from_bits(inf);
            }
            // The significand with its implicit bit, and how far right it
            // must go to be f64's (normal: 52 fraction bits; subnormal:
            // units of 2^-1074).
            let sig = (1u128 << FRAC_BITS) | frac;
            let (shift, exp_field) = if e >= -1022 {
                (60, (e + 1023) as u64)
            } else {
                (-962 - e, 0)
            };
            if shift > 113 {
                return f64::from_bits(sign);
            }
            let shift = shift as u32;
            let mut q = sig >> shift;
            let rest = sig & ((1 << shift) - 1);
            let half = 1u128 << (shift - 1);
            if rest > half || (rest == half && q & 1 == 1) {
                q += 1;
            }
            // Subnormals carry straight into the exponent field (q <= 2^52);
            // a normal's implicit bit is dropped and its carry kept.
            let body = if exp_field == 0 {
                q as u64
            } else {
                (exp_field << 52) + (q as u64 - (1 << 52))
            };
            f64::from_bits(sign | body.min(0x7FF << 52))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_parse() {
        assert_eq!(parse_literal("42"), Ok(Literal::Number("42".into())));
        assert_eq!(
            parse_literal("{1, {2.5, x}, [null, true]}"),
            Ok(Literal::Aggregate(vec![
                Literal::Number("1".into()),
                Literal::Aggregate(vec![
                    Literal::Number("2.5".into()),
                    Literal::Str("x".into())
                ]),
                Literal::Aggregate(vec![Literal::Null, Literal::Bool(true)]),
            ]))
        );
        assert_eq!(
            parse_literal(r#""a\"b\n""#),
            Ok(Literal::Str("a\"b\n".into()))
        );
        assert_eq!(parse_literal("'A'"), Ok(Literal::Number("65".into())));
        assert!(parse_literal("{1, 2").is_err());
        assert!(parse_literal("{1 2}").is_err());
        assert!(parse_literal("\"open").is_err());
        assert!(parse_literal("1 2").is_err());
    }

    #[test]
    fn integers_parse_in_every_radix() {
        assert_eq!(parse_int("0x2a"), Ok(42));
        assert_eq!(parse_int("-0b101"), Ok(-5));
        assert_eq!(parse_int("0o17"), Ok(15));
        assert_eq!(parse_int("1_000"), Ok(1000));
        assert!(parse_int("12abc").is_err());
        assert!(parse_int("2.5").is_err());
    }

    #[test]
    fn integers_are_range_checked() {
        let mut out = [0u8; 8];
        assert!(put_int(&mut out, &Type::u8(), 255, "255").is_ok());
        assert_eq!(out[0], 255);
        assert_eq!(
            put_int(&mut out, &Type::u8(), 256, "256"),
            Err("256 does not fit in uint8_t".into())
        );
        assert!(put_int(&mut out, &Type::i8(), -129, "-129").is_err());
        assert!(put_int(&mut out, &Type::u32(), -1, "-1").is_err());
        assert!(put_int(&mut out, &Type::i64(), i64::MIN.into(), "min").is_ok());
        assert_eq!(i64::from_le_bytes(out), i64::MIN);
    }

    #[test]
    fn binary128_round_trips_and_rounds_to_nearest_even() {
        use long_double::binary128::{from_f64, to_f64};
        for v in [
            0.0,
            -0.0,
            -1.5,
            1e300,
            -2.5e-310,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            5e-324,
        ] {
            let slot = from_f64(v).unwrap();
            assert_eq!(to_f64(&slot).to_bits(), v.to_bits(), "{v:e}");
        }
        assert!(to_f64(&from_f64(f64::NAN).unwrap()).is_nan());
        // What gcc stores for 1.0L, 7.0L and -2.0L on AArch64.
        let hi = |v: f64| u128::from_le_bytes(from_f64(v).unwrap()) >> 64;
        assert_eq!(hi(1.0), 0x3FFF_0000_0000_0000);
        assert_eq!(hi(7.0), 0x4001_C000_0000_0000);
        assert_eq!(hi(-2.0), 0xC000_0000_0000_0000);
        let q = |bits: u128| to_f64(&bits.to_le_bytes());
        let one = 0x3FFFu128 << 112;
        // 1 + 2^-53 is a tie: to even (1.0); a hair more rounds up.
        assert_eq!(q(one | (1 << 59)), 1.0);
        assert_eq!(q(one | (1 << 59) | 1), 1.0 + f64::EPSILON);
        // 1 + 3 * 2^-53 is a tie between odd and even: up, to even.
        assert_eq!(q(one | (3 << 59)), 1.0 + 2.0 * f64::EPSILON);
        // The largest fraction rounds up into the next binade.
        assert_eq!(q(one | ((1 << 112) - 1)), 2.0);
        // Beyond f64's range: infinity; far below: zero; in between,
        // f64's subnormals.
        assert_eq!(q(0x7FFEu128 << 112), f64::INFINITY);
        assert_eq!(q((1u128 << 127) | (1 << 112)), -0.0);
        assert_eq!(q(((16383 - 1074) as u128) << 112), 5e-324);
        assert_eq!(
            q(((16383 - 1075) as u128) << 112),
            0.0,
            "half the least: tie to 0"
        );
        assert_eq!(q((((16383 - 1075) as u128) << 112) | 1), 5e-324);
        assert_eq!(
            q((0x7FFFu128 << 112) | 1).to_bits() & !(1 << 63),
            f64::NAN.to_bits()
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn long_double_round_trips_through_the_fpu() {
        for v in [0.0, -1.5, 1e300, f64::INFINITY, 5e-324] {
            let slot = long_double::from_f64(v).unwrap();
            assert_eq!(long_double::to_f64(&slot), v);
        }
        // 1.0 is exponent 0x3fff with the explicit integer bit set.
        let one = long_double::from_f64(1.0).unwrap();
        assert_eq!(&one[..10], &[0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]);
    }

    #[test]
    fn strings_are_quoted_like_c() {
        let mut out = String::new();
        quote(b"a\"b\\c\n\x01\xff", &mut out);
        assert_eq!(out, r#""a\"b\\c\n\x01\xff""#);
    }
}
