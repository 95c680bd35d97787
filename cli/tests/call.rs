//! `jitffi call` end to end: real libc and libm functions through the
//! binary, results checked against what C computes.

mod support;
use support::jitffi;

/// Runs `jitffi call ARGS...`, expects success, returns stdout.
fn call_ok(args: &[&str]) -> String {
    let out = jitffi().arg("call").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "jitffi call {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `jitffi call ARGS...`, expects exit status 2, returns stderr.
fn call_err(args: &[&str]) -> String {
    let out = jitffi().arg("call").args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "jitffi call {args:?} should fail"
    );
    assert!(out.stdout.is_empty());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn libm_doubles() {
    assert_eq!(
        call_ok(&["libm.so.6", "pow", "double(double, double)", "2", "10"]),
        "1024\n"
    );
    assert_eq!(call_ok(&["m", "sqrt", "double(double)", "2.25"]), "1.5\n");
    assert_eq!(call_ok(&["m", "floor", "double(double)", "-2.5"]), "-3\n");
    assert_eq!(
        call_ok(&[
            "libm.so.6",
            "pow",
            "double pow(double x, double y)",
            "2",
            "0.5"
        ]),
        format!("{}\n", 2f64.sqrt())
    );
    assert_eq!(
        call_ok(&["m", "fmin", "double(double, double)", "-inf", "3"]),
        "-inf\n"
    );
}

#[test]
fn libm_float_long_double_and_complex() {
    assert_eq!(
        call_ok(&["m", "sqrtf", "float(float)", "2"]),
        format!("{}\n", 2f32.sqrt())
    );
    assert_eq!(
        call_ok(&["m", "ldexpl", "long double(long double, int)", "1.5", "4"]),
        "24\n"
    );
    assert_eq!(
        call_ok(&["m", "cabs", "double(double _Complex)", "{3, 4}"]),
        "5\n"
    );
    assert_eq!(
        call_ok(&["m", "conj", "double _Complex(double _Complex)", "{1, 2}"]),
        "{1, -2}\n"
    );
    assert_eq!(
        call_ok(&["m", "conjf", "float _Complex(float _Complex)", "{0.5, 2}"]),
        "{0.5, -2}\n"
    );
}

#[test]
fn libc_integers_and_strings() {
    assert_eq!(
        call_ok(&["libc.so.6", "strlen", "size_t(const char *)", "hello world"]),
        "11\n"
    );
    assert_eq!(call_ok(&["-", "abs", "int(int)", "-5"]), "5\n");
    assert_eq!(call_ok(&["c", "labs", "long(long)", "-0x10"]), "16\n");
    assert_eq!(call_ok(&["-", "toupper", "int(int)", "'a'"]), "65\n");
    assert_eq!(
        call_ok(&[
            "-",
            "strchr",
            "char *(const char *, int)",
            "find the needle",
            "'n'"
        ]),
        "\"nd the needle\"\n"
    );
    assert_eq!(
        call_ok(&["-", "strchr", "char *(const char *, int)", "abc", "'z'"]),
        "NULL\n"
    );
    assert_eq!(
        call_ok(&[
            "-",
            "strcmp",
            "int(const char *, const char *)",
            "\"a b\"",
            "a b"
        ]),
        "0\n"
    );
}

#[test]
fn struct_returns_print_as_literals() {
    assert_eq!(
        call_ok(&[
            "libc.so.6",
            "div",
            "struct { int quot; int rem; }(int, int)",
            "7",
            "2"
        ]),
        "{.quot = 3, .rem = 1}\n"
    );
    assert_eq!(
        call_ok(&[
            "-",
            "lldiv",
            "struct { long long; long long; }(long long, long long)",
            "-7",
            "2"
        ]),
        "{-3, -1}\n"
    );
}

#[test]
fn variadic_printf_with_inferred_and_explicit_types() {
    assert_eq!(
        call_ok(&[
            "libc.so.6",
            "printf",
            "int(const char *, ...)",
            "%d-%s-%.2f|",
            "42",
            "abc",
            "2.5"
        ]),
        "42-abc-2.50|12\n"
    );
    assert_eq!(
        call_ok(&[
            "-",
            "printf",
            "int(const char *, ..., long long, long double)",
            "%lld %.1Lf|",
            "-3000000000",
            "0.25",
        ]),
        "-3000000000 0.2|16\n"
    );
}

#[test]
fn getenv_and_errno() {
    let out = jitffi()
        .env("JITFFI_TEST_VALUE", "it works")
        .args([
            "call",
            "-",
            "getenv",
            "char *getenv(const char *)",
            "JITFFI_TEST_VALUE",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "\"it works\"\n");
    // Options go before the positionals: after them, `-5` and `--x` are
    // arguments of the called function.
    let out = call_ok(&[
        "--errno",
        "-",
        "strtol",
        "long(const char *, char **, int)",
        "99999999999999999999",
        "null",
        "10",
    ]);
    assert_eq!(
        out,
        format!(
            "{}\nerrno = 34 (Numerical result out of range (os error 34))\n",
            i64::MAX
        )
    );
}

#[test]
fn errors_are_clear_and_exit_2() {
    let e = call_err(&["libnothere.so.9", "f", "void(void)"]);
    assert!(e.contains("cannot load `libnothere.so.9`"), "{e}");
    let e = call_err(&["m", "no_such_function", "void(void)"]);
    assert!(e.contains("symbol `no_such_function` not found"), "{e}");
    let e = call_err(&["m", "pow", "double(double, double)", "2"]);
    assert!(e.contains("takes 2 arguments, 1 given"), "{e}");
    let e = call_err(&["m", "pow", "double(double, double)", "2", "abc"]);
    assert!(e.contains("argument 2"), "{e}");
    let e = call_err(&["-", "abs", "int(int)", "3000000000"]);
    assert!(e.contains("does not fit in int32_t"), "{e}");
    let e = call_err(&["m", "pow", "double(double, )", "1", "2"]);
    assert!(e.contains("cannot parse signature"), "{e}");
    assert!(e.contains("expected"), "{e}");
    let e = call_err(&["m", "pow", "double sqrt(double)", "1"]);
    assert!(e.contains("prototype of `sqrt`"), "{e}");
    let e = call_err(&["-", "printf", "int(const char *, ...)", "%d", "{1, 2}"]);
    assert!(e.contains("aggregate after `...`"), "{e}");
    // An ABI of another instruction set is refused, not run.
    let foreign = if cfg!(target_arch = "x86_64") {
        "aapcs64: int(int)"
    } else {
        "win64: int(int)"
    };
    let e = call_err(&["-", "abs", foreign, "-3"]);
    assert!(e.contains("another instruction set"), "{e}");
}

/// A shared library built for this test by the C compiler, with the
/// shapes libc and libm lack: unions, `__int128`, arrays in structs,
/// `long double _Complex`, Microsoft x64 functions.
const CUSTOM_C: &str = r#"
#include <string.h>
struct vec3 { float x, y, z; };
struct vec3 scale(struct vec3 v, float k) { struct vec3 r = { v.x * k, v.y * k, v.z * k }; return r; }
union bits { unsigned int i; float f; };
unsigned int float_bits(union bits b) { return b.i; }
union bits make_bits(float f) { union bits b; b.f = f; return b; }
struct arr { int v[4]; };
struct arr reverse(struct arr a) { struct arr r; for (int i = 0; i < 4; i++) r.v[i] = a.v[3 - i]; return r; }
__int128 mul128(__int128 a, long b) { return a * b; }
unsigned __int128 umax128(void) { return ~(unsigned __int128)0; }
long double _Complex mkc(long double re, long double im) { return re + im * 1.0il; }
struct big { long a, b, c, d, e; };
long sum_big(struct big s, int k) { return (s.a + s.b + s.c + s.d + s.e) * k; }
struct nested { char tag; struct { short s; double d; } in; };
double nested_sum(struct nested n) { return n.tag + n.in.s + n.in.d; }
#ifdef __x86_64__
__attribute__((ms_abi)) long long w64(long long a, double b, int c, long long d, long long e) {
    return a + (long long)b + c + d * 10 + e * 100;
}
__attribute__((ms_abi)) double w64_struct(struct vec3 v, double k) { return (v.x + v.y + v.z) * k; }
#endif
const char *greet(const char *name, char *out) { strcpy(out, "hi "); strcat(out, name); return out; }
"#;

/// The C compiler for the target these tests run on: `CC_<target>` (what
/// a cross build sets, e.g. `CC_aarch64_unknown_linux_gnu`), else `CC`,
/// else `cc`.
fn target_cc() -> String {
    let triple = format!("{}_unknown_linux_gnu", std::env::consts::ARCH);
    std::env::var(format!("CC_{triple}"))
        .or_else(|_| std::env::var("CC"))
        .unwrap_or_else(|_| "cc".into())
}

#[test]
fn custom_library_shapes() {
    let dir = std::env::temp_dir().join(format!("jitffi-call-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("custom.c");
    let lib = dir.join("libcustom.so");
    std::fs::write(&src, CUSTOM_C).unwrap();
    let cc = target_cc();
    let status = std::process::Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(status.success(), "{cc} failed");
    let lib = lib.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec![lib];
        all.extend_from_slice(args);
        call_ok(&all)
    };

    assert_eq!(
        run(&[
            "scale",
            "struct vec3 { float x, y, z; }(struct vec3 { float x, y, z; }, float)",
            "{1, 2, 3}",
            "2"
        ]),
        "{.x = 2, .y = 4, .z = 6}\n"
    );
    assert_eq!(
        run(&[
            "float_bits",
            "unsigned(union { unsigned i; float f; })",
            "{1065353216}"
        ]),
        "1065353216\n"
    );
    assert_eq!(
        run(&["make_bits", "union { unsigned i; float f; }(float)", "1"]),
        "{.i = 1065353216}\n"
    );
    assert_eq!(
        run(&[
            "reverse",
            "struct { int v[4]; }(struct { int v[4]; })",
            "{{1, 2, 3, 4}}"
        ]),
        "{.v = {4, 3, 2, 1}}\n"
    );
    assert_eq!(
        run(&[
            "mul128",
            "__int128(__int128, long)",
            "-170141183460469231731687303715884105",
            "1000"
        ]),
        "-170141183460469231731687303715884105000\n"
    );
    assert_eq!(
        run(&["umax128", "unsigned __int128(void)"]),
        format!("{}\n", u128::MAX)
    );
    assert_eq!(
        run(&[
            "mkc",
            "long double _Complex(long double, long double)",
            "1.5",
            "-2"
        ]),
        "{1.5, -2}\n"
    );
    assert_eq!(
        run(&[
            "sum_big",
            "long(struct { long a, b, c, d, e; }, int)",
            "{1, 2, 3, 4, 5}",
            "3"
        ]),
        "45\n"
    );
    assert_eq!(
        run(&[
            "nested_sum",
            "double(struct { char tag; struct { short s; double d; } in; })",
            "{'A', {-5, 0.5}}"
        ]),
        "60.5\n"
    );
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        run(&[
            "w64",
            "win64: long long(long long, double, int, long long, long long)",
            "1",
            "2",
            "3",
            "4",
            "5"
        ]),
        "546\n"
    );
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        run(&[
            "w64_struct",
            "win64: double(struct { float x, y, z; }, double)",
            "{1, 2, 3}",
            "0.5"
        ]),
        "3\n"
    );
    // Hex literals for wide integers.
    let out = run(&["mul128", "__int128(__int128, long)", "0x10", "0x10"]);
    assert_eq!(out, "256\n");
    std::fs::remove_dir_all(&dir).ok();
}
