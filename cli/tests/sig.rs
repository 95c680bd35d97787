//! The signature language: parsing, printing, lowering, errors.

use jitffi::{Abi, Type};
use jitffi_cli::sig::{
    CType, DataModel, FloatKind, IntKind, Lowered, Param, ParseError, Signature, Target,
    MAX_NESTING,
};
use proptest::prelude::*;

fn int(kind: IntKind, signed: bool) -> CType {
    CType::Int {
        kind,
        signed: Some(signed),
    }
}

fn plain_char() -> CType {
    CType::Int {
        kind: IntKind::Char,
        signed: None,
    }
}

fn ptr(t: CType) -> CType {
    CType::Pointer(Box::new(t))
}

fn arr(t: CType, n: usize) -> CType {
    CType::Array(Box::new(t), n)
}

fn p(name: &str, ty: CType) -> Param {
    Param {
        name: (!name.is_empty()).then(|| name.to_string()),
        ty,
    }
}

fn func(ret: CType, params: Vec<Param>, varargs: Option<Vec<Param>>) -> CType {
    CType::Function(Box::new(Signature {
        abi: None,
        name: None,
        ret,
        params,
        varargs,
    }))
}

fn parse(text: &str) -> Signature {
    Signature::parse(text).unwrap_or_else(|e| panic!("{text}: {e}\n{}", e.render(text)))
}

fn lower(text: &str) -> Lowered {
    parse(text)
        .lower(Abi::SysV64)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Parses as the only parameter and as the return type; checks both give
/// `expected`, and that the printed type parses back.
fn check_type(spelling: &str, expected: &CType) {
    let as_param = parse(&format!("void({spelling})"));
    assert_eq!(as_param.params, [p("", expected.clone())], "{spelling}");
    let as_ret = parse(&format!("{spelling} f(void)"));
    assert_eq!(&as_ret.ret, expected, "{spelling}");
    let printed = expected.to_string();
    assert_eq!(
        parse(&format!("void({printed})")).params[0].ty,
        *expected,
        "{spelling} printed as {printed}"
    );
}

#[test]
fn base_type_spellings() {
    use IntKind::*;
    let i = |k| int(k, true);
    let u = |k| int(k, false);
    // (spellings, C type, LP64 type, LLP64 type)
    let table: Vec<(&[&str], CType, Type, Type)> = vec![
        (
            &["bool", "_Bool", "const _Bool"],
            CType::Bool,
            Type::u8(),
            Type::u8(),
        ),
        (
            &["char", "const char"],
            plain_char(),
            Type::i8(),
            Type::i8(),
        ),
        (
            &["signed char", "char signed"],
            i(Char),
            Type::i8(),
            Type::i8(),
        ),
        (
            &["unsigned char", "char unsigned"],
            u(Char),
            Type::u8(),
            Type::u8(),
        ),
        (
            &[
                "short",
                "short int",
                "signed short",
                "short signed int",
                "int short",
            ],
            i(Short),
            Type::i16(),
            Type::i16(),
        ),
        (
            &["unsigned short", "unsigned short int", "short unsigned"],
            u(Short),
            Type::u16(),
            Type::u16(),
        ),
        (
            &[
                "int",
                "signed",
                "signed int",
                "const volatile int",
                "int const",
            ],
            i(Int),
            Type::i32(),
            Type::i32(),
        ),
        (
            &["unsigned", "unsigned int", "int unsigned"],
            u(Int),
            Type::u32(),
            Type::u32(),
        ),
        (
            &[
                "long",
                "long int",
                "signed long",
                "int long",
                "long signed int",
            ],
            i(Long),
            Type::i64(),
            Type::i32(),
        ),
        (
            &["unsigned long", "long unsigned int", "unsigned long int"],
            u(Long),
            Type::u64(),
            Type::u32(),
        ),
        (
            &[
                "long long",
                "long long int",
                "signed long long",
                "long int long",
            ],
            i(LongLong),
            Type::i64(),
            Type::i64(),
        ),
        (
            &["unsigned long long", "long long unsigned int"],
            u(LongLong),
            Type::u64(),
            Type::u64(),
        ),
        (
            &["__int128", "signed __int128", "__int128_t"],
            i(Int128),
            Type::i128(),
            Type::i128(),
        ),
        (
            &["unsigned __int128", "__int128 unsigned", "__uint128_t"],
            u(Int128),
            Type::u128(),
            Type::u128(),
        ),
        (
            &["int8_t", "sint8", "schar"],
            i(Exact(8)),
            Type::i8(),
            Type::i8(),
        ),
        (
            &["uint8_t", "uint8", "uchar"],
            u(Exact(8)),
            Type::u8(),
            Type::u8(),
        ),
        (
            &["int16_t", "sint16", "sshort"],
            i(Exact(16)),
            Type::i16(),
            Type::i16(),
        ),
        (
            &["uint16_t", "uint16", "ushort"],
            u(Exact(16)),
            Type::u16(),
            Type::u16(),
        ),
        (
            &["int32_t", "sint32", "sint"],
            i(Exact(32)),
            Type::i32(),
            Type::i32(),
        ),
        (
            &["uint32_t", "uint32", "uint"],
            u(Exact(32)),
            Type::u32(),
            Type::u32(),
        ),
        (
            &["int64_t", "sint64"],
            i(Exact(64)),
            Type::i64(),
            Type::i64(),
        ),
        (
            &["uint64_t", "uint64"],
            u(Exact(64)),
            Type::u64(),
            Type::u64(),
        ),
        (&["slong"], i(Long), Type::i64(), Type::i32()),
        (&["ulong"], u(Long), Type::u64(), Type::u32()),
        (
            &["size_t", "uintptr_t"],
            u(PointerSized),
            Type::u64(),
            Type::u64(),
        ),
        (
            &["ssize_t", "ptrdiff_t", "intptr_t"],
            i(PointerSized),
            Type::i64(),
            Type::i64(),
        ),
        (
            &["float"],
            CType::Float(FloatKind::Float),
            Type::f32(),
            Type::f32(),
        ),
        (
            &["double"],
            CType::Float(FloatKind::Double),
            Type::f64(),
            Type::f64(),
        ),
        (
            &["long double", "double long", "longdouble"],
            CType::Float(FloatKind::LongDouble),
            Type::long_double(),
            Type::long_double(),
        ),
        (
            &[
                "float _Complex",
                "_Complex float",
                "float complex",
                "complex float",
            ],
            CType::Complex(FloatKind::Float),
            Type::complex_f32(),
            Type::complex_f32(),
        ),
        (
            &[
                "double _Complex",
                "_Complex double",
                "double complex",
                "complex double",
            ],
            CType::Complex(FloatKind::Double),
            Type::complex_f64(),
            Type::complex_f64(),
        ),
        (
            &[
                "long double _Complex",
                "_Complex long double",
                "long double complex",
                "long _Complex double",
            ],
            CType::Complex(FloatKind::LongDouble),
            Type::complex_long_double(),
            Type::complex_long_double(),
        ),
        (
            &["void *", "pointer", "const void *const", "void const*"],
            ptr(CType::Void),
            Type::pointer(),
            Type::pointer(),
        ),
        (
            &["char *", "const char *", "char const *restrict"],
            ptr(plain_char()),
            Type::pointer(),
            Type::pointer(),
        ),
        (
            &["FILE *", "const FILE *", "FILE const *"],
            ptr(CType::Opaque("FILE".into())),
            Type::pointer(),
            Type::pointer(),
        ),
        (
            &["struct tm *", "const struct tm *"],
            ptr(CType::Opaque("struct tm".into())),
            Type::pointer(),
            Type::pointer(),
        ),
        (&["enum color"], i(Int), Type::i32(), Type::i32()),
    ];
    let mut count = 0;
    for (spellings, cty, lp64, llp64) in &table {
        for spelling in *spellings {
            check_type(spelling, cty);
            assert_eq!(&cty.to_type(DataModel::Lp64).unwrap(), lp64, "{spelling}");
            assert_eq!(&cty.to_type(DataModel::Llp64).unwrap(), llp64, "{spelling}");
            let sig = parse(&format!("{spelling} f({spelling})"));
            for (abi, want) in [
                (Abi::SysV64, lp64),
                (Abi::Aapcs64, lp64),
                (Abi::Win64, llp64),
                (Abi::GnuW64, llp64),
            ] {
                let l = sig.lower(abi).unwrap();
                if *cty == plain_char() && abi == Abi::Aapcs64 {
                    assert_eq!((l.ret, &l.args[..]), (Type::u8(), &[Type::u8()][..]));
                } else {
                    assert_eq!(
                        (&l.ret, &l.args[..]),
                        (want, &[(*want).clone()][..]),
                        "{spelling}"
                    );
                }
            }
            count += 1;
        }
    }
    assert!(count > 90, "{count} spellings");
}

#[test]
fn plain_char_signedness_follows_the_target() {
    let c = plain_char();
    assert_eq!(c.to_type(Abi::SysV64).unwrap(), Type::i8());
    assert_eq!(c.to_type(Abi::Win64).unwrap(), Type::i8());
    assert_eq!(c.to_type(Abi::Aapcs64).unwrap(), Type::u8());
    assert_eq!(
        int(IntKind::Char, true).to_type(Abi::Aapcs64).unwrap(),
        Type::i8()
    );
    let l = parse("aapcs64: char(char, signed char)")
        .lower(Abi::SysV64)
        .unwrap();
    assert_eq!(
        (l.abi, l.ret, l.args),
        (Abi::Aapcs64, Type::u8(), vec![Type::u8(), Type::i8()])
    );
    assert_eq!(
        Target::of(Abi::GnuW64),
        Target {
            model: DataModel::Llp64,
            char_signed: true
        }
    );
    assert_eq!(Target::from(DataModel::Lp64), Target::of(Abi::SysV64));
}

#[test]
fn abi_prefixes() {
    for (prefix, abi) in [
        ("sysv", Abi::SysV64),
        ("sysv64", Abi::SysV64),
        ("SysV", Abi::SysV64),
        ("win64", Abi::Win64),
        ("gnuw64", Abi::GnuW64),
        ("aapcs64", Abi::Aapcs64),
        ("aarch64", Abi::Aapcs64),
    ] {
        let s = parse(&format!("{prefix}: long(void)"));
        assert_eq!(s.abi, Some(abi), "{prefix}");
        let l = s.lower(Abi::SysV64).unwrap();
        assert_eq!(l.abi, abi);
        let long = if DataModel::of(abi) == DataModel::Lp64 {
            Type::i64()
        } else {
            Type::i32()
        };
        assert_eq!(l.ret, long);
    }
    let s = parse("long(void)");
    assert_eq!(s.abi, None);
    assert_eq!(s.lower(Abi::Win64).unwrap().abi, Abi::Win64);
    assert_eq!(parse("gnuw64 :int(void)").to_string(), "gnuw64: int(void)");
}

#[test]
fn module_header_examples() {
    let s = parse("double(int, struct { float; float }, ...)");
    assert_eq!(s.ret, CType::Float(FloatKind::Double));
    let two_floats = CType::Struct(vec![
        p("", CType::Float(FloatKind::Float)),
        p("", CType::Float(FloatKind::Float)),
    ]);
    assert_eq!(
        s.params,
        [p("", int(IntKind::Int, true)), p("", two_floats)]
    );
    assert_eq!(s.varargs, Some(vec![]));
    let l = s.lower(Abi::SysV64).unwrap();
    assert_eq!(l.fixed, Some(2));
    assert_eq!(
        l.args,
        [
            Type::i32(),
            Type::structure([Type::f32(), Type::f32()]).unwrap()
        ]
    );

    let s = parse("int(const char *, ..., int, double)");
    assert_eq!(s.params, [p("", ptr(plain_char()))]);
    assert_eq!(
        s.varargs,
        Some(vec![
            p("", int(IntKind::Int, true)),
            p("", CType::Float(FloatKind::Double))
        ])
    );
    assert!(s.is_variadic());
    assert_eq!(s.all_params().count(), 3);
    let l = s.lower(Abi::SysV64).unwrap();
    assert_eq!(l.fixed, Some(1));
    assert_eq!(l.args, [Type::pointer(), Type::i32(), Type::f64()]);
    assert_eq!(s.to_string(), "int(char *, ..., int, double)");

    let s = parse("void(*)(long double _Complex)");
    assert_eq!((s.name.as_deref(), &s.ret), (None, &CType::Void));
    assert_eq!(s.params, [p("", CType::Complex(FloatKind::LongDouble))]);

    let s = parse("double pow(double x, double y)");
    assert_eq!(s.name.as_deref(), Some("pow"));
    assert_eq!(
        s.params,
        [
            p("x", CType::Float(FloatKind::Double)),
            p("y", CType::Float(FloatKind::Double))
        ]
    );

    let s = parse("win64: long(long, union { int i; float f; })");
    assert_eq!(s.abi, Some(Abi::Win64));
    let l = s.lower(Abi::SysV64).unwrap();
    assert_eq!(l.ret, Type::i32());
    assert_eq!(
        l.args,
        [
            Type::i32(),
            Type::union([Type::i32(), Type::f32()]).unwrap()
        ]
    );
    assert_eq!(l.fixed, None);
}

#[test]
fn named_prototypes() {
    let s = parse("extern char *strdup(const char *s);");
    assert_eq!(s.name.as_deref(), Some("strdup"));
    assert_eq!(s.ret, ptr(plain_char()));
    assert!(s.ret.is_c_string());
    assert_eq!(s.to_string(), "char *strdup(char *s)");

    let s = parse("int printf(const char *restrict format, ...)");
    assert_eq!(s.name.as_deref(), Some("printf"));
    assert_eq!(s.params, [p("format", ptr(plain_char()))]);
    assert_eq!(s.varargs, Some(vec![]));

    // A function returning a function pointer.
    let s = parse("void (*signal(int sig, void (*handler)(int)))(int)");
    let handler = ptr(func(
        CType::Void,
        vec![p("", int(IntKind::Int, true))],
        None,
    ));
    assert_eq!(s.name.as_deref(), Some("signal"));
    assert_eq!(s.ret, handler);
    assert_eq!(
        s.params,
        [
            p("sig", int(IntKind::Int, true)),
            p("handler", handler.clone())
        ]
    );
    assert_eq!(
        s.to_string(),
        "void (*signal(int sig, void (*handler)(int)))(int)"
    );

    // Typedef-like words are not reserved: they can be names.
    let s = parse("size_t pointer(void *pointer, int size_t)");
    assert_eq!(s.name.as_deref(), Some("pointer"));
    assert_eq!(
        s.params,
        [
            p("pointer", ptr(CType::Void)),
            p("size_t", int(IntKind::Int, true))
        ]
    );
    // Empty lists: `()` and `(void)` are the same.
    assert_eq!(parse("int f()"), parse("int f(void)"));
    assert!(parse("int f()").params.is_empty());
}

#[test]
fn function_pointer_forms() {
    let int_t = int(IntKind::Int, true);
    let fun = func(int_t.clone(), vec![p("", int_t.clone())], None);
    // Top level: the pointer is the signature.
    for (text, name) in [
        ("int (*)(int)", None),
        ("int(*)(int)", None),
        ("int (*cb)(int)", Some("cb")),
        ("int(int)", None),
        ("int cb(int)", Some("cb")),
    ] {
        let s = parse(text);
        assert_eq!(s.name.as_deref(), name, "{text}");
        assert_eq!(
            CType::Function(Box::new(Signature { name: None, ..s })),
            fun
        );
    }
    // As parameters: pointers to functions; function types decay.
    let s = parse("void(int (*cb)(int, int), void(*)(void), int f(int), int (**pp)(int))");
    let int2 = func(
        int_t.clone(),
        vec![p("", int_t.clone()), p("", int_t.clone())],
        None,
    );
    assert_eq!(
        s.params,
        [
            p("cb", ptr(int2)),
            p("", ptr(func(CType::Void, vec![], None))),
            p("f", ptr(fun.clone())),
            p("pp", ptr(ptr(fun.clone()))),
        ]
    );
    assert_eq!(lower(&s.to_string()).args, vec![Type::pointer(); 4]);
    // Pointer to array of function pointers, inside out.
    let s = parse("void(int (*(*x)[3])(double))");
    let f = func(
        int_t.clone(),
        vec![p("", CType::Float(FloatKind::Double))],
        None,
    );
    assert_eq!(s.params, [p("x", ptr(arr(ptr(f), 3)))]);
    assert_eq!(s.to_string(), "void(int (*(*x)[3])(double))");
    // Variadic function pointer types.
    let s = parse("void(int (*)(const char *, ...))");
    assert_eq!(
        s.params[0].ty,
        ptr(func(int_t, vec![p("", ptr(plain_char()))], Some(vec![])))
    );
    // Array parameters decay.
    let s = parse("int main(int argc, char *argv[], int m[][4], double v[8])");
    assert_eq!(
        s.params,
        [
            p("argc", int(IntKind::Int, true)),
            p("argv", ptr(ptr(plain_char()))),
            p("m", ptr(arr(int(IntKind::Int, true), 4))),
            p("v", ptr(CType::Float(FloatKind::Double))),
        ]
    );
}

#[test]
fn nested_aggregates() {
    let text = "void(struct point { int x, y; } p, union { float f; unsigned u[2]; \
                struct { char c; short s; } in; } u, struct { double m[2][3]; struct { \
                union { char b; long l; }; } deep[2]; } *ps)";
    let s = parse(text);
    let point = CType::Struct(vec![
        p("x", int(IntKind::Int, true)),
        p("y", int(IntKind::Int, true)),
    ]);
    let inner = CType::Struct(vec![
        p("c", plain_char()),
        p("s", int(IntKind::Short, true)),
    ]);
    let un = CType::Union(vec![
        p("f", CType::Float(FloatKind::Float)),
        p("u", arr(int(IntKind::Int, false), 2)),
        p("in", inner),
    ]);
    let deep = CType::Struct(vec![p(
        "",
        CType::Union(vec![p("b", plain_char()), p("l", int(IntKind::Long, true))]),
    )]);
    let big = CType::Struct(vec![
        p("m", arr(arr(CType::Float(FloatKind::Double), 3), 2)),
        p("deep", arr(deep, 2)),
    ]);
    assert_eq!(
        s.params,
        [p("p", point), p("u", un), p("ps", ptr(big.clone()))]
    );
    assert_eq!(parse(&s.to_string()), s);

    let l = s.lower(Abi::SysV64).unwrap();
    let point_t = Type::structure([Type::i32(), Type::i32()]).unwrap();
    let inner_t = Type::structure([Type::i8(), Type::i16()]).unwrap();
    let un_t = Type::union([Type::f32(), Type::array(Type::u32(), 2).unwrap(), inner_t]).unwrap();
    assert_eq!(l.args, [point_t, un_t.clone(), Type::pointer()]);
    assert_eq!((un_t.size(), un_t.align()), (8, 4));
    // C reads `m[2][3]` as 2 rows of 3.
    let big_t = big.to_type(DataModel::Lp64).unwrap();
    assert_eq!(big_t.size(), 6 * 8 + 2 * 8);
    let row = Type::array(Type::f64(), 3).unwrap();
    assert_eq!(big_t.fields().unwrap()[0], Type::array(row, 2).unwrap());
    // Win64 `long` in the nested union shrinks it.
    assert_eq!(big.to_type(DataModel::Llp64).unwrap().size(), 48 + 2 * 4);

    // The last `;` is optional; members without names; hex lengths.
    assert_eq!(
        parse("void(struct { int; char[0x10] })").params[0].ty,
        CType::Struct(vec![
            p("", int(IntKind::Int, true)),
            p("", arr(plain_char(), 16))
        ])
    );
}

#[test]
fn variadic_forms() {
    let s = parse("int(...)");
    assert_eq!((s.params.len(), s.varargs.clone()), (0, Some(vec![])));
    let l = s.lower(Abi::SysV64).unwrap();
    assert_eq!((l.args.len(), l.fixed), (0, Some(0)));

    let s = parse("int(..., int x, double)");
    assert_eq!(s.varargs.as_ref().unwrap().len(), 2);
    assert_eq!(s.all_params().next().unwrap().name.as_deref(), Some("x"));
    assert_eq!(s.to_string(), "int(..., int x, double)");
    assert_eq!(lower("int(..., int x, double)").fixed, Some(0));

    let l = lower("int(int a, long b, ..., char *s, struct { double d; } v)");
    assert_eq!(l.fixed, Some(2));
    assert_eq!(
        l.args,
        [
            Type::i32(),
            Type::i64(),
            Type::pointer(),
            Type::structure([Type::f64()]).unwrap()
        ]
    );
    let s = parse("int(int)");
    assert!(!s.is_variadic());
    assert_eq!(s.lower(Abi::SysV64).unwrap().fixed, None);
    // Written types are lowered as written: C's promotions are the caller's.
    assert_eq!(lower("int(int, ..., float)").args[1], Type::f32());
    assert_eq!(
        CType::Float(FloatKind::Float).promoted(),
        CType::Float(FloatKind::Double)
    );
    for t in [
        CType::Bool,
        plain_char(),
        int(IntKind::Short, false),
        int(IntKind::Exact(16), true),
    ] {
        assert_eq!(t.promoted(), int(IntKind::Int, true), "{t}");
    }
    for t in [
        int(IntKind::Long, false),
        ptr(CType::Void),
        CType::Float(FloatKind::LongDouble),
    ] {
        assert_eq!(t.promoted(), t);
    }
}

#[test]
fn libffi_names() {
    let s = parse("uint64(sint8, uint8, sint16, uint16, sint32, uint32, sint64, pointer, longdouble, float, double)");
    let l = s.lower(Abi::SysV64).unwrap();
    assert_eq!(l.ret, Type::u64());
    assert_eq!(
        l.args,
        [
            Type::i8(),
            Type::u8(),
            Type::i16(),
            Type::u16(),
            Type::i32(),
            Type::u32(),
            Type::i64(),
            Type::pointer(),
            Type::long_double(),
            Type::f32(),
            Type::f64()
        ]
    );
    assert_eq!(parse("void(pointer *)").params[0].ty, ptr(ptr(CType::Void)));
}

#[test]
fn jitffi_display_round_trip() {
    let arr4 = Type::array(Type::i32(), 4).unwrap();
    let small = Type::structure([Type::i8()]).unwrap();
    let types = vec![
        Type::u8(),
        Type::i8(),
        Type::u16(),
        Type::i16(),
        Type::u32(),
        Type::i32(),
        Type::u64(),
        Type::i64(),
        Type::u128(),
        Type::i128(),
        Type::f32(),
        Type::f64(),
        Type::long_double(),
        Type::pointer(),
        Type::complex_f32(),
        Type::complex_f64(),
        Type::complex_long_double(),
        Type::structure([Type::f64(), arr4.clone()]).unwrap(),
        // Nested arrays print outermost length first, as C declares them.
        Type::structure([Type::array(Type::array(Type::i16(), 3).unwrap(), 2).unwrap()]).unwrap(),
        Type::union([Type::f32(), Type::u64(), arr4]).unwrap(),
        Type::structure([
            Type::u8(),
            Type::array(small.clone(), 3).unwrap(),
            Type::union([small, Type::complex_f64()]).unwrap(),
            Type::structure([Type::pointer(), Type::long_double()]).unwrap(),
        ])
        .unwrap(),
    ];
    // Every type as an argument, at once.
    let args: Vec<String> = types.iter().map(Type::to_string).collect();
    let text = format!("{}({})", Type::void(), args.join(", "));
    let l = lower(&text);
    assert_eq!((l.ret, l.args), (Type::void(), types.clone()), "{text}");
    // And each as a return type.
    for t in &types {
        let text = format!("{t}({t}, {})", Type::pointer());
        let l = lower(&text);
        assert_eq!(l.ret, *t, "{text}");
        assert_eq!(l.args, [t.clone(), Type::pointer()], "{text}");
    }
}

#[test]
fn lowering_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "void(void x)",
            "parameter 1 (`x`): `void` is not a parameter type",
        ),
        (
            "void(int, void)",
            "parameter 2: `void` is not a parameter type",
        ),
        (
            "int(char *, ..., void)",
            "variadic argument 1: `void` is not a parameter type",
        ),
        (
            "void(struct { void v; })",
            "parameter 1, member 1 (`v`): `void` member",
        ),
        (
            "void(struct { int a; void b[2]; } s)",
            "parameter 1 (`s`), member 2 (`b`): array of `void`",
        ),
        (
            "void(int, struct { struct { int x; void y; } in; } p)",
            "parameter 2 (`p`), member 1 (`in`), member 2 (`y`): `void` member",
        ),
        (
            "void(union { char c[2][1]; struct { void *p; void q[1]; }[2]; })",
            "parameter 1, member 2, array element, member 2 (`q`): array of `void`",
        ),
        (
            "int f(void)[3]",
            "return type: a function cannot return an array",
        ),
        (
            "int f(void)(int)",
            "return type: a function cannot return a function",
        ),
    ];
    for (text, message) in cases {
        let e = parse(text).lower(Abi::SysV64).unwrap_err();
        assert_eq!(e.message, *message, "{text}");
        assert_eq!(e.to_string(), *message);
    }
    // jitffi's own refusals, with the path in front.
    let e = parse("void(int, struct { char big[16777217]; } s)")
        .lower(Abi::SysV64)
        .unwrap_err();
    assert!(
        e.message
            .starts_with("parameter 2 (`s`), member 1 (`big`): ")
            && e.message.contains("array"),
        "{e}"
    );
    // Types only an AST (not the parser) can hold.
    let opaque = CType::Opaque("FILE".into());
    assert!(opaque
        .to_type(DataModel::Lp64)
        .unwrap_err()
        .message
        .contains("`FILE *`"));
    assert!(func(CType::Void, vec![], None)
        .to_type(DataModel::Lp64)
        .is_err());
    let e = int(IntKind::Exact(7), true)
        .to_type(DataModel::Lp64)
        .unwrap_err();
    assert_eq!(e.message, "there is no 7-bit integer type");
    let s = Signature {
        abi: None,
        name: None,
        ret: CType::Void,
        params: vec![p("f", opaque)],
        varargs: None,
    };
    assert!(s
        .lower(Abi::SysV64)
        .unwrap_err()
        .message
        .starts_with("parameter 1 (`f`): `FILE`"));
    assert!(CType::Struct(vec![]).to_type(DataModel::Lp64).is_err());
}

#[test]
fn parse_errors() {
    // (input, column, expected, found)
    let cases: &[(&str, usize, &str, &str)] = &[
        ("double(int, )", 13, "a type", "`)`"),
        ("", 1, "a type", "end of input"),
        ("   ", 4, "a type", "end of input"),
        ("int", 4, "`(`", "end of input"),
        ("int x", 6, "`(`", "end of input"),
        ("int (*)", 8, "`(`", "end of input"),
        ("foo(int)", 1, "a type", "`foo`"),
        ("int(foo)", 5, "a type", "`foo`"),
        ("int(foo x)", 5, "a type", "`foo`"),
        ("int(unsigned double)", 14, "`)` or `,`", "`double`"),
        ("int(int int)", 9, "`)` or `,`", "`int`"),
        ("int(long long long)", 15, "`)` or `,`", "`long`"),
        ("int(int a[0])", 11, "a nonzero array length", "`0`"),
        ("int(struct { int a[]; })", 20, "an array length", "`]`"),
        ("int(int (*a)[])", 14, "an array length", "`]`"),
        (
            "int(struct { int a[4294967297]; })",
            20,
            "an array length of at most 4294967296",
            "`4294967297`",
        ),
        (
            "int(struct { int a[99999999999999999999999]; })",
            20,
            "an array length of at most 4294967296",
            "`99999999999999999999999`",
        ),
        ("int(int a[x])", 11, "an array length", "`x`"),
        ("int(int a[12abc])", 11, "an array length", "`12abc`"),
        ("int(int a[0x])", 11, "an array length", "`0x`"),
        ("int(int a[3)", 12, "`]`", "`)`"),
        ("int(struct { })", 14, "a type", "`}`"),
        ("int(struct { int a b; })", 20, "`;` or `}`", "`b`"),
        ("int(struct { int a, ; })", 21, "a member name", "`;`"),
        ("int(struct { int a; ; })", 21, "a type", "`;`"),
        ("int(struct)", 11, "a tag or `{`", "`)`"),
        ("int(struct s)", 13, "`{`", "`)`"),
        ("int(enum)", 9, "an enum tag", "`)`"),
        ("int(int, ..., ...)", 15, "a type", "`...`"),
        ("int(int ...)", 9, "`)` or `,`", "`...`"),
        ("int(int))", 9, "end of signature", "`)`"),
        ("int(int);x", 10, "end of signature", "`x`"),
        ("int(int);;", 10, "end of signature", "`;`"),
        (
            "bogus: int(int)",
            1,
            "an ABI (`sysv`, `win64`, `gnuw64` or `aapcs64`) before `:`",
            "`bogus`",
        ),
        (
            "int(_Complex)",
            13,
            "`float` or `double` after `_Complex`",
            "`)`",
        ),
        ("int(int @)", 9, "`)` or `,`", "`@`"),
        ("int(int a.b)", 10, "`)` or `,`", "`.`"),
        ("int (*(int)", 12, "`)`", "end of input"),
        ("int(int", 8, "`)` or `,`", "end of input"),
        ("int(,)", 5, "a type", "`,`"),
        ("int (*(*)[3])(double)", 22, "`(`", "end of input"),
        ("int(void (*)(int, ))", 19, "a type", "`)`"),
        ("é(int)", 1, "a type", "`é`"),
        ("int(int x`)", 10, "`)` or `,`", "a backtick"),
    ];
    for &(text, column, expected, found) in cases {
        let e = Signature::parse(text).expect_err(text);
        assert_eq!(
            e,
            ParseError {
                column,
                expected: expected.into(),
                found: found.into()
            },
            "{text}"
        );
    }
    assert!(cases.len() >= 40);
}

#[test]
fn render_draws_a_caret() {
    let src = "double(int, )";
    let e = Signature::parse(src).unwrap_err();
    assert_eq!(
        e.render(src),
        "  double(int, )\n              ^ expected a type, found `)`"
    );
    // Tabs and newlines count as one column and print as one space.
    let src = "int(\tint,\n@)";
    let e = Signature::parse(src).unwrap_err();
    assert_eq!(e.column, 11);
    assert_eq!(
        e.render(src),
        "  int( int, @)\n            ^ expected a type, found `@`"
    );
    assert_eq!(e.to_string(), "column 11: expected a type, found `@`");
}

#[test]
fn nesting_limit() {
    let nest = |n: usize| {
        let mut t = "int x".to_string();
        for _ in 0..n {
            t = format!("struct {{ {t}; }} x");
        }
        format!("void({t})")
    };
    let s = parse(&nest(MAX_NESTING));
    // jitffi accepts as deep as the parser does.
    let l = s.lower(Abi::SysV64).unwrap();
    assert_eq!(l.args[0].depth(), MAX_NESTING);
    let e = Signature::parse(&nest(MAX_NESTING + 1)).unwrap_err();
    assert_eq!(e.expected, "at most 64 levels of nesting");

    let stars = |n: usize| format!("void(int {})", "*".repeat(n));
    assert!(Signature::parse(&stars(MAX_NESTING)).is_ok());
    let e = Signature::parse(&stars(MAX_NESTING + 1)).unwrap_err();
    assert_eq!((e.column, e.found.as_str()), (10 + MAX_NESTING, "`*`"));

    // Deep enough to overflow a naive recursive parser's stack.
    for text in [
        format!("void({}", "void(*)(".repeat(10_000)),
        format!("int{}", "(*".repeat(10_000)),
        format!("void({}", "struct {".repeat(10_000)),
        format!("void(int {})", "[1]".repeat(10_000)),
        format!("void(int {})", "*".repeat(100_000)),
    ] {
        let e = Signature::parse(&text).unwrap_err();
        assert_eq!(
            e.expected,
            "at most 64 levels of nesting",
            "{}",
            &text[..20]
        );
    }
}

#[test]
fn c_strings() {
    for (text, yes) in [
        ("char *", true),
        ("const char *", true),
        ("signed char *", true),
        ("const unsigned char *const", true),
        ("char **", false),
        ("int8_t *", false),
        ("void *", false),
        ("char", false),
        ("char[4]", false),
    ] {
        let s = parse(&format!("void(struct {{ {text}; }})"));
        let CType::Struct(m) = &s.params[0].ty else {
            unreachable!()
        };
        assert_eq!(m[0].ty.is_c_string(), yes, "{text}");
    }
}

// --- property tests ---------------------------------------------------------

fn name() -> BoxedStrategy<Option<String>> {
    // `n...` is never a keyword.
    proptest::option::of("n[a-z0-9_]{0,5}").boxed()
}

fn scalar() -> impl Strategy<Value = CType> {
    use IntKind::*;
    let kind = prop_oneof![
        Just(Short),
        Just(Int),
        Just(Long),
        Just(LongLong),
        Just(PointerSized),
        Just(Int128),
        Just(Exact(8)),
        Just(Exact(16)),
        Just(Exact(32)),
        Just(Exact(64)),
        Just(Char),
    ];
    let float = prop_oneof![
        Just(FloatKind::Float),
        Just(FloatKind::Double),
        Just(FloatKind::LongDouble)
    ];
    prop_oneof![
        Just(CType::Bool),
        Just(plain_char()),
        (kind, any::<bool>()).prop_map(|(k, s)| int(k, s)),
        float.clone().prop_map(CType::Float),
        float.prop_map(CType::Complex),
    ]
}

fn sig_with(value: BoxedStrategy<CType>, top: bool) -> impl Strategy<Value = Signature> {
    let param = (name(), value.clone())
        .prop_map(|(name, ty)| Param { name, ty })
        .boxed();
    let abi = prop_oneof![
        Just(None),
        Just(Some(Abi::SysV64)),
        Just(Some(Abi::Win64)),
        Just(Some(Abi::GnuW64)),
        Just(Some(Abi::Aapcs64)),
    ];
    (
        if top { abi.boxed() } else { Just(None).boxed() },
        if top {
            name().boxed()
        } else {
            Just(None).boxed()
        },
        prop_oneof![Just(CType::Void), value],
        proptest::collection::vec(param.clone(), 0..4),
        proptest::option::of(proptest::collection::vec(param, 0..3)),
    )
        .prop_map(|(abi, name, ret, params, varargs)| Signature {
            abi,
            name,
            ret,
            params,
            varargs,
        })
}

/// Types valid as parameters and members (not arrays: those only as
/// members, and pointees).
fn value_type() -> BoxedStrategy<CType> {
    scalar()
        .prop_recursive(4, 24, 4, |inner| {
            let member_ty = prop_oneof![
                3 => inner.clone(),
                1 => (inner.clone(), 1..5usize).prop_map(|(t, n)| arr(t, n)),
                1 => (inner.clone(), 1..4usize, 1..4usize).prop_map(|(t, a, b)| arr(arr(t, b), a)),
            ];
            let member = (name(), member_ty)
                .prop_map(|(name, ty)| Param { name, ty })
                .boxed();
            let opaque = prop_oneof![
                "[A-Z][A-Za-z0-9_]{0,4}",
                "[A-Z][a-z]{0,4}".prop_map(|t| format!("struct {t}")),
                "[A-Z][a-z]{0,4}".prop_map(|t| format!("union {t}")),
            ];
            let pointee = prop_oneof![
                4 => inner.clone(),
                1 => Just(CType::Void),
                1 => opaque.prop_map(CType::Opaque),
                1 => (inner.clone(), 1..5usize).prop_map(|(t, n)| arr(t, n)),
                1 => sig_with(inner.clone(), false).prop_map(|s| CType::Function(Box::new(s))),
            ];
            prop_oneof![
                3 => pointee.prop_map(ptr),
                1 => proptest::collection::vec(member.clone(), 1..4).prop_map(CType::Struct),
                1 => proptest::collection::vec(member, 1..4).prop_map(CType::Union),
            ]
        })
        .boxed()
}

/// Printable fragments of the language, for token soup.
const FRAGMENTS: &[&str] = &[
    "int",
    "char",
    "unsigned",
    "long",
    "double",
    "float",
    "_Complex",
    "void",
    "struct",
    "union",
    "enum",
    "const",
    "FILE",
    "size_t",
    "x",
    "sysv",
    ":",
    "(",
    ")",
    "*",
    ",",
    ";",
    "[",
    "]",
    "{",
    "}",
    "...",
    "0",
    "4",
    "4294967297",
    "0x",
    "@",
    " ",
    "\t",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn display_round_trips(sig in sig_with(value_type(), true)) {
        let text = sig.to_string();
        let back = Signature::parse(&text).map_err(|e| {
            TestCaseError::fail(format!("{text}\n{}", e.render(&text)))
        })?;
        prop_assert_eq!(&back, &sig, "{}", text);
        // Lowering never panics; printed types lower the same way.
        let _ = sig.lower(Abi::SysV64);
        for p in sig.all_params() {
            let again = parse(&format!("void({})", p.ty));
            prop_assert_eq!(&again.params[0].ty, &p.ty);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,64}") {
        check_parse_total(&text)?;
    }

    #[test]
    fn token_soup_never_panics(parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..24)) {
        check_parse_total(&parts.join(" "))?;
        check_parse_total(&parts.concat())?;
    }

    #[test]
    fn mutated_signatures_never_panic(
        sig in sig_with(value_type(), true),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..3u8, proptest::sample::select(FRAGMENTS)), 1..4),
    ) {
        let mut chars: Vec<String> = sig.to_string().chars().map(String::from).collect();
        for (at, op, frag) in edits {
            if chars.is_empty() {
                chars.push(frag.to_string());
                continue;
            }
            let i = at.index(chars.len());
            match op {
                0 => { chars.remove(i); }
                1 => chars.insert(i, frag.to_string()),
                _ => chars[i] = frag.to_string(),
            }
        }
        check_parse_total(&chars.concat())?;
    }
}

/// Parsing `text` gives an error inside the text (or just past it), or a
/// signature whose printed form parses back to itself.
fn check_parse_total(text: &str) -> Result<(), TestCaseError> {
    match Signature::parse(text) {
        Ok(sig) => {
            let printed = sig.to_string();
            let back = Signature::parse(&printed)
                .map_err(|e| TestCaseError::fail(format!("{text:?} -> {printed:?}: {e}")))?;
            prop_assert_eq!(back, sig.clone());
            let _ = sig.lower(Abi::SysV64);
            let _ = sig.lower(Abi::Win64);
        }
        Err(e) => {
            prop_assert!(
                e.column >= 1 && e.column <= text.chars().count() + 1,
                "{:?}",
                e
            );
            prop_assert!(!e.expected.is_empty() && !e.found.is_empty());
            let rendered = e.render(text);
            prop_assert_eq!(rendered.lines().count(), 2);
        }
    }
    Ok(())
}
