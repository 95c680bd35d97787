//! Recursive descent over the tokens of [`super::lexer`], building the
//! [`Signature`] AST.
//!
//! Declarators are parsed the way C compilers do: a declarator yields a
//! list of derivations ([`Op`]) to apply to the base type from the inside
//! out, so `int (*(*f)[3])(double)` and friends come out right without
//! special cases.

use jitffi::Abi;

use super::lexer::{lex, Tok, Token};
use super::{CType, FloatKind, IntKind, Param, ParseError, Signature, MAX_ARRAY_LEN, MAX_NESTING};

/// Parses a whole signature.
pub(crate) fn parse(text: &str) -> Result<Signature, ParseError> {
    let mut p = Parser {
        toks: lex(text),
        pos: 0,
        level: 0,
    };
    p.signature()
}

/// Words that are never names: type keywords and qualifiers. Typedef-like
/// names (`size_t`, `int8_t`, the libffi aliases) are not reserved, as a
/// typedef name is not in C: `void *pointer` is a pointer named `pointer`.
pub(crate) fn is_reserved(word: &str) -> bool {
    keyword(word).is_some() || is_qualifier(word) || matches!(word, "struct" | "union" | "enum")
}

/// Ignored words: qualifiers and storage classes, so header lines paste.
fn is_qualifier(word: &str) -> bool {
    matches!(
        word,
        "const"
            | "volatile"
            | "restrict"
            | "__restrict"
            | "__restrict__"
            | "extern"
            | "static"
            | "inline"
    )
}

/// The combinable type keywords (`unsigned long long int`, `long double`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kw {
    Void,
    Bool,
    Char,
    Short,
    Int,
    Long,
    Signed,
    Unsigned,
    Float,
    Double,
    Complex,
    Int128,
}

fn keyword(word: &str) -> Option<Kw> {
    Some(match word {
        "void" => Kw::Void,
        "bool" | "_Bool" => Kw::Bool,
        "char" => Kw::Char,
        "short" => Kw::Short,
        "int" => Kw::Int,
        "long" => Kw::Long,
        "signed" | "__signed" | "__signed__" => Kw::Signed,
        "unsigned" => Kw::Unsigned,
        "float" => Kw::Float,
        "double" => Kw::Double,
        "_Complex" | "complex" | "__complex__" => Kw::Complex,
        "__int128" => Kw::Int128,
        _ => return None,
    })
}

/// Type names that stand alone: `<stdint.h>`/`<stddef.h>` typedefs, GCC's
/// 128-bit typedefs and libffi's `ffi_type_*` names.
fn named_type(word: &str) -> Option<CType> {
    let int = |kind, signed| CType::Int {
        kind,
        signed: Some(signed),
    };
    let exact = |bits, signed| int(IntKind::Exact(bits), signed);
    Some(match word {
        "int8_t" | "sint8" | "schar" => exact(8, true),
        "uint8_t" | "uint8" | "uchar" => exact(8, false),
        "int16_t" | "sint16" | "sshort" => exact(16, true),
        "uint16_t" | "uint16" | "ushort" => exact(16, false),
        "int32_t" | "sint32" | "sint" => exact(32, true),
        "uint32_t" | "uint32" | "uint" => exact(32, false),
        "int64_t" | "sint64" => exact(64, true),
        "uint64_t" | "uint64" => exact(64, false),
        "slong" => int(IntKind::Long, true),
        "ulong" => int(IntKind::Long, false),
        "size_t" | "uintptr_t" => int(IntKind::PointerSized, false),
        "ssize_t" | "ptrdiff_t" | "intptr_t" => int(IntKind::PointerSized, true),
        "__int128_t" => int(IntKind::Int128, true),
        "__uint128_t" => int(IntKind::Int128, false),
        "pointer" => CType::Pointer(Box::new(CType::Void)),
        "longdouble" => CType::Float(FloatKind::LongDouble),
        _ => return None,
    })
}

/// The type keywords seen so far in one declaration.
#[derive(Default)]
struct Spec {
    void: u8,
    bool_: u8,
    char_: u8,
    short: u8,
    int: u8,
    long: u8,
    sign: Option<bool>,
    signs: u8,
    float: u8,
    double: u8,
    complex: u8,
    int128: u8,
}

impl Spec {
    fn is_empty(&self) -> bool {
        self.void
            + self.bool_
            + self.char_
            + self.short
            + self.int
            + self.long
            + self.signs
            + self.float
            + self.double
            + self.complex
            + self.int128
            == 0
    }

    /// Adds `kw` if the result can still be (part of) a valid C type.
    fn try_add(&mut self, kw: Kw) -> bool {
        let mut next = Spec { ..*self };
        match kw {
            Kw::Void => next.void += 1,
            Kw::Bool => next.bool_ += 1,
            Kw::Char => next.char_ += 1,
            Kw::Short => next.short += 1,
            Kw::Int => next.int += 1,
            Kw::Long => next.long += 1,
            Kw::Signed | Kw::Unsigned => {
                next.signs += 1;
                next.sign = Some(kw == Kw::Signed);
            }
            Kw::Float => next.float += 1,
            Kw::Double => next.double += 1,
            Kw::Complex => next.complex += 1,
            Kw::Int128 => next.int128 += 1,
        }
        if next.valid_prefix() {
            *self = next;
            true
        } else {
            false
        }
    }

    fn valid_prefix(&self) -> bool {
        let s = self;
        let once = [
            s.void, s.bool_, s.char_, s.short, s.int, s.signs, s.float, s.double, s.complex,
            s.int128,
        ];
        if once.iter().any(|&n| n > 1) || s.long > 2 {
            return false;
        }
        // How many "base" words: at most one of these may appear.
        let bases = s.void + s.bool_ + s.char_ + s.int + s.float + s.double + s.int128;
        if bases > 1 {
            return false;
        }
        let floating = s.float + s.double + s.complex > 0;
        let integer = s.char_ + s.short + s.int + s.signs + s.int128 > 0;
        let others = s.char_ + s.short + s.int + s.long + s.signs + s.float + s.double + s.complex;
        if (s.void + s.bool_ > 0 && others + s.int128 > 0)
            || (floating && integer)
            || (s.short > 0 && (s.long > 0 || s.char_ + s.int128 > 0))
            || (s.long > 0 && (s.char_ + s.int128 + s.float > 0))
            || (s.long > 1 && floating)
        {
            return false;
        }
        true
    }

    /// The type, or `None` when incomplete (`_Complex` without `float`).
    fn resolve(&self) -> Option<CType> {
        let s = self;
        let int = |kind| CType::Int {
            kind,
            signed: Some(s.sign.unwrap_or(true)),
        };
        Some(if s.void > 0 {
            CType::Void
        } else if s.bool_ > 0 {
            CType::Bool
        } else if s.float + s.double + s.complex > 0 {
            let kind = if s.float > 0 {
                FloatKind::Float
            } else if s.double > 0 && s.long > 0 {
                FloatKind::LongDouble
            } else if s.double > 0 {
                FloatKind::Double
            } else {
                return None;
            };
            if s.complex > 0 {
                CType::Complex(kind)
            } else {
                CType::Float(kind)
            }
        } else if s.char_ > 0 {
            CType::Int {
                kind: IntKind::Char,
                signed: s.sign,
            }
        } else if s.int128 > 0 {
            int(IntKind::Int128)
        } else if s.short > 0 {
            int(IntKind::Short)
        } else if s.long == 2 {
            int(IntKind::LongLong)
        } else if s.long == 1 {
            int(IntKind::Long)
        } else {
            int(IntKind::Int)
        })
    }
}

/// One derivation a declarator applies to its base type.
enum Op {
    Pointer,
    /// `[N]`, or `[]` (only outermost in a parameter, which decays).
    Array(Option<usize>),
    Function {
        params: Vec<Param>,
        varargs: Option<Vec<Param>>,
    },
}

/// A parsed declarator: the name, if any, and the derivations in the
/// order they apply to the base type (innermost first), each with the
/// column of its token for errors.
struct Declarator {
    name: Option<String>,
    ops: Vec<(Op, usize)>,
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// Current recursion depth (struct bodies, parameter lists, grouping
    /// parentheses), bounded by [`MAX_NESTING`].
    level: usize,
}

/// The nesting depth of a type: 0 for scalars, 1 + the deepest part for
/// pointers, arrays, functions and aggregates. Only called on types the
/// parser built, whose depth is bounded, so the recursion is too.
fn depth(ty: &CType) -> usize {
    match ty {
        CType::Pointer(t) | CType::Array(t, _) => 1 + depth(t),
        CType::Function(sig) => depth_of_sig(sig),
        CType::Struct(m) | CType::Union(m) => 1 + m.iter().map(|p| depth(&p.ty)).max().unwrap_or(0),
        _ => 0,
    }
}

fn nesting_error(col: usize, found: String) -> ParseError {
    ParseError {
        column: col,
        expected: format!("at most {MAX_NESTING} levels of nesting"),
        found,
    }
}

impl Parser {
    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &Token {
        let last = self.toks.len() - 1;
        &self.toks[(self.pos + n).min(last)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek().tok, Tok::Punct(q) if q == p)
    }

    fn ident(&self) -> Option<&str> {
        match &self.peek().tok {
            Tok::Ident(s) => Some(s),
            _ => None,
        }
    }

    fn err(&self, expected: impl Into<String>) -> ParseError {
        ParseError {
            column: self.peek().col,
            expected: expected.into(),
            found: self.peek().describe(),
        }
    }

    fn expect(&mut self, p: &str, expected: &str) -> Result<(), ParseError> {
        if self.is_punct(p) {
            self.bump();
            Ok(())
        } else {
            Err(self.err(expected))
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        // One more than the type depth: the signature's own parameter list
        // is a level that builds no type.
        if self.level > MAX_NESTING {
            return Err(nesting_error(self.peek().col, self.peek().describe()));
        }
        self.level += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.level -= 1;
    }

    /// Whether the next token after `n` tokens and any qualifiers is `*`.
    fn star_after(&self, mut n: usize) -> bool {
        loop {
            match &self.peek_at(n).tok {
                Tok::Ident(s) if is_qualifier(s) => n += 1,
                Tok::Punct("*") => return true,
                _ => return false,
            }
        }
    }

    fn signature(&mut self) -> Result<Signature, ParseError> {
        let mut abi = None;
        if let (Tok::Ident(word), Tok::Punct(":")) = (&self.peek().tok, &self.peek_at(1).tok) {
            abi = Some(match word.to_ascii_lowercase().as_str() {
                "sysv" | "sysv64" => Abi::SysV64,
                "win64" => Abi::Win64,
                "gnuw64" => Abi::GnuW64,
                "aapcs64" | "aarch64" => Abi::Aapcs64,
                _ => {
                    return Err(
                        self.err("an ABI (`sysv`, `win64`, `gnuw64` or `aapcs64`) before `:`")
                    )
                }
            });
            self.bump();
            self.bump();
        }
        let base = self.specifiers()?;
        let decl = self.declarator(false)?;
        // The outermost derivations must make a function, or a pointer to
        // one; they are the signature itself, not a type, so they do not
        // count toward the nesting limit.
        let mut ops = decl.ops;
        let n = ops.len();
        if n >= 2
            && matches!(ops[n - 1].0, Op::Pointer)
            && matches!(ops[n - 2].0, Op::Function { .. })
        {
            ops.pop();
        }
        let Some((Op::Function { params, varargs }, _)) = ops.pop() else {
            return Err(self.err("`(`"));
        };
        let ret = self.apply(base, ops, false)?;
        if self.is_punct(";") {
            self.bump();
        }
        if self.peek().tok != Tok::Eof {
            return Err(self.err("end of signature"));
        }
        Ok(Signature {
            abi,
            name: decl.name,
            ret,
            params,
            varargs,
        })
    }

    /// Declaration specifiers: qualifiers and type words, ending in one
    /// base type.
    fn specifiers(&mut self) -> Result<CType, ParseError> {
        let mut spec = Spec::default();
        let mut named: Option<CType> = None;
        while let Some(word) = self.ident() {
            let taken = !spec.is_empty() || named.is_some();
            if is_qualifier(word) {
                self.bump();
            } else if let Some(kw) = keyword(word) {
                if named.is_some() || !spec.try_add(kw) {
                    break;
                }
                self.bump();
            } else if taken {
                // A declarator name (`int size_t` is legal C) or a stray.
                break;
            } else if word == "struct" || word == "union" {
                named = Some(self.record()?);
            } else if word == "enum" {
                self.bump();
                if self.ident().is_none_or(is_reserved) {
                    return Err(self.err("an enum tag"));
                }
                self.bump();
                named = Some(CType::Int {
                    kind: IntKind::Int,
                    signed: Some(true),
                });
            } else if let Some(ty) = named_type(word) {
                self.bump();
                named = Some(ty);
            } else if self.star_after(1) {
                named = Some(CType::Opaque(word.to_string()));
                self.bump();
            } else {
                return Err(self.err("a type"));
            }
        }
        if let Some(ty) = named {
            return Ok(ty);
        }
        if spec.is_empty() {
            return Err(self.err("a type"));
        }
        spec.resolve()
            .ok_or_else(|| self.err("`float` or `double` after `_Complex`"))
    }

    /// `struct`/`union`, an optional tag, then `{ members }`; a tag
    /// without a body is an opaque type (only behind a pointer).
    fn record(&mut self) -> Result<CType, ParseError> {
        let kw = match self.bump().tok {
            Tok::Ident(s) => s,
            _ => unreachable!("record() is called on `struct` or `union`"),
        };
        let tag = match self.ident() {
            Some(t) if !is_reserved(t) => {
                let t = t.to_string();
                self.bump();
                Some(t)
            }
            _ => None,
        };
        if !self.is_punct("{") {
            return match tag {
                Some(tag) if self.star_after(0) => Ok(CType::Opaque(format!("{kw} {tag}"))),
                Some(_) => Err(self.err("`{`")),
                None => Err(self.err("a tag or `{`")),
            };
        }
        self.enter()?;
        self.bump();
        let mut members = Vec::new();
        loop {
            if self.is_punct("}") && !members.is_empty() {
                self.bump();
                break;
            }
            let base = self.specifiers()?;
            let mut first = true;
            loop {
                let at = self.pos;
                let decl = self.declarator(false)?;
                if !first && decl.name.is_none() {
                    // `int a, ;`: after a comma C wants another declarator.
                    self.pos = at;
                    return Err(self.err("a member name"));
                }
                first = false;
                let name = decl.name;
                let ty = self.apply(base.clone(), decl.ops, false)?;
                members.push(Param { name, ty });
                if !self.is_punct(",") {
                    break;
                }
                self.bump();
            }
            if self.is_punct(";") {
                self.bump();
            } else if self.is_punct("}") {
                self.bump();
                break;
            } else {
                return Err(self.err("`;` or `}`"));
            }
        }
        self.leave();
        Ok(if kw == "struct" {
            CType::Struct(members)
        } else {
            CType::Union(members)
        })
    }

    /// A declarator, possibly abstract (no name). `in_param` allows `[]`
    /// as the outermost derivation.
    fn declarator(&mut self, in_param: bool) -> Result<Declarator, ParseError> {
        let mut ops = Vec::new();
        loop {
            if self.is_punct("*") {
                ops.push((Op::Pointer, self.peek().col));
                self.bump();
            } else if self.ident().is_some_and(is_qualifier) {
                self.bump();
            } else {
                break;
            }
        }
        let mut inner = None;
        let mut name = None;
        if self.is_punct("(") && matches!(self.peek_at(1).tok, Tok::Punct("*")) {
            self.enter()?;
            self.bump();
            inner = Some(self.declarator(false)?);
            self.expect(")", "`)`")?;
            self.leave();
        } else if let Some(word) = self.ident().filter(|w| !is_reserved(w)) {
            name = Some(word.to_string());
            self.bump();
        }
        let mut suffixes = Vec::new();
        loop {
            let col = self.peek().col;
            if self.is_punct("(") {
                let (params, varargs) = self.params()?;
                suffixes.push((Op::Function { params, varargs }, col));
            } else if self.is_punct("[") {
                self.bump();
                let open_ok = in_param && inner.is_none() && suffixes.is_empty();
                let len = if open_ok && self.is_punct("]") {
                    None
                } else {
                    Some(self.array_len()?)
                };
                self.expect("]", "`]`")?;
                suffixes.push((Op::Array(len), col));
            } else {
                break;
            }
        }
        ops.extend(suffixes.into_iter().rev());
        if let Some(inner) = inner {
            name = inner.name;
            ops.extend(inner.ops);
        }
        Ok(Declarator { name, ops })
    }

    fn array_len(&mut self) -> Result<usize, ParseError> {
        let Tok::Number(text) = &self.peek().tok else {
            return Err(self.err("an array length"));
        };
        let (digits, radix) = match text.strip_prefix("0x").or(text.strip_prefix("0X")) {
            Some(hex) => (hex, 16),
            None => (text.as_str(), 10),
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return Err(self.err("an array length"));
        }
        let value = digits.chars().try_fold(0u64, |acc, c| {
            acc.checked_mul(u64::from(radix))?
                .checked_add(u64::from(c.to_digit(radix)?))
        });
        match value {
            Some(0) => Err(self.err("a nonzero array length")),
            Some(n) if n <= MAX_ARRAY_LEN => match usize::try_from(n) {
                Ok(n) => {
                    self.bump();
                    Ok(n)
                }
                Err(_) => Err(self.err("an array length that fits this host")),
            },
            _ => Err(self.err(format!("an array length of at most {MAX_ARRAY_LEN}"))),
        }
    }

    /// `( PARAMS )`: returns the fixed parameters and the variadic part.
    fn params(&mut self) -> Result<(Vec<Param>, Option<Vec<Param>>), ParseError> {
        self.enter()?;
        self.bump();
        let mut params = Vec::new();
        let mut varargs: Option<Vec<Param>> = None;
        if self.is_punct(")") {
            self.bump();
            self.leave();
            return Ok((params, varargs));
        }
        loop {
            if self.is_punct("...") && varargs.is_none() {
                self.bump();
                varargs = Some(Vec::new());
            } else {
                let p = self.param()?;
                match &mut varargs {
                    Some(v) => v.push(p),
                    None => params.push(p),
                }
            }
            if self.is_punct(",") {
                self.bump();
            } else if self.is_punct(")") {
                self.bump();
                break;
            } else {
                return Err(self.err("`)` or `,`"));
            }
        }
        self.leave();
        let lone_void = Param {
            name: None,
            ty: CType::Void,
        };
        if varargs.is_none() && params.len() == 1 && params[0] == lone_void {
            params.clear();
        }
        Ok((params, varargs))
    }

    fn param(&mut self) -> Result<Param, ParseError> {
        let base = self.specifiers()?;
        let decl = self.declarator(true)?;
        let ty = self.apply(base, decl.ops, true)?;
        Ok(Param {
            name: decl.name,
            ty,
        })
    }

    /// Applies derivations to `base`; a parameter's outermost array or
    /// function type decays to a pointer, as in C.
    fn apply(
        &self,
        base: CType,
        ops: Vec<(Op, usize)>,
        in_param: bool,
    ) -> Result<CType, ParseError> {
        let mut ty = base;
        let mut d = depth(&ty);
        let last = ops.len();
        for (i, (op, col)) in ops.into_iter().enumerate() {
            let outermost = i + 1 == last;
            let (next, next_depth) = match op {
                Op::Pointer => (CType::Pointer(Box::new(ty)), d + 1),
                Op::Array(Some(n)) if !(in_param && outermost) => {
                    (CType::Array(Box::new(ty), n), d + 1)
                }
                Op::Array(_) => (CType::Pointer(Box::new(ty)), d + 1),
                Op::Function { params, varargs } => {
                    let sig = Signature {
                        abi: None,
                        name: None,
                        ret: ty,
                        params,
                        varargs,
                    };
                    let d = depth_of_sig(&sig);
                    let f = CType::Function(Box::new(sig));
                    if in_param && outermost {
                        (CType::Pointer(Box::new(f)), d + 1)
                    } else {
                        (f, d)
                    }
                }
            };
            if next_depth > MAX_NESTING {
                let found = self
                    .toks
                    .iter()
                    .find(|t| t.col == col)
                    .map_or_else(|| "a declarator".to_string(), Token::describe);
                return Err(nesting_error(col, found));
            }
            ty = next;
            d = next_depth;
        }
        Ok(ty)
    }
}

fn depth_of_sig(sig: &Signature) -> usize {
    1 + sig
        .all_params()
        .map(|p| depth(&p.ty))
        .chain([depth(&sig.ret)])
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(words: &str) -> Option<CType> {
        let mut s = Spec::default();
        for w in words.split_whitespace() {
            if !s.try_add(keyword(w)?) {
                return None;
            }
        }
        s.resolve()
    }

    #[test]
    fn keyword_combinations() {
        let int = |kind, signed| CType::Int {
            kind,
            signed: Some(signed),
        };
        assert_eq!(
            spec("long unsigned long int"),
            Some(int(IntKind::LongLong, false))
        );
        assert_eq!(
            spec("double long"),
            Some(CType::Float(FloatKind::LongDouble))
        );
        assert_eq!(
            spec("complex long double"),
            Some(CType::Complex(FloatKind::LongDouble))
        );
        assert_eq!(spec("signed"), Some(int(IntKind::Int, true)));
        for bad in [
            "int int",
            "long long long",
            "short long",
            "unsigned signed",
            "signed float",
            "long float",
            "long long double",
            "char int",
            "void int",
            "bool unsigned",
            "__int128 long",
            "_Complex int",
            "_Complex",
            "long _Complex",
            "float double",
        ] {
            assert_eq!(spec(bad), None, "{bad}");
        }
    }

    #[test]
    fn reserved_words_are_keywords_only() {
        assert!(is_reserved("int") && is_reserved("const") && is_reserved("struct"));
        assert!(!is_reserved("size_t") && !is_reserved("pointer") && !is_reserved("FILE"));
    }

    #[test]
    fn depth_counts_derivations_and_aggregates() {
        let sig = parse("void(struct { int *a[2]; } *)").unwrap();
        assert_eq!(depth(&sig.params[0].ty), 4);
        let top = CType::Function(Box::new(sig));
        assert_eq!(depth(&top), 5);
    }
}
