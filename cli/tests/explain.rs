//! `jitffi explain` end to end: plans in words and disassembly for known
//! signatures, on the host and on other targets.

use assert_cmd::Command;

fn explain(args: &[&str]) -> (bool, String, String) {
    let out = Command::cargo_bin("jitffi")
        .unwrap()
        .arg("explain")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn explain_ok(args: &[&str]) -> String {
    let (ok, out, err) = explain(args);
    assert!(ok, "explain {args:?} failed: {err}");
    out
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
}

#[test]
fn sysv_registers_in_words() {
    let out = explain_ok(&["double(int, struct { float; float }, ...)"]);
    assert!(
        out.contains("target     x86_64-sysv (sysv64, LP64)"),
        "{out}"
    );
    assert!(line_with(&out, "return").ends_with("double (8 bytes): xmm0"));
    assert!(line_with(&out, "arg 0").ends_with("int32_t (4 bytes): rdi, sign-extended"));
    assert!(line_with(&out, "arg 1").ends_with("struct { float; float; } (8 bytes): xmm0"));
    assert!(line_with(&out, "frame").contains("al = 1"));
}

#[test]
fn mixed_struct_splits_into_eightbytes_and_stack() {
    let out = explain_ok(&[
        "void f(long a, long b, long c, long d, long e, struct { double d; int i; } s, long g, long h)",
        "--no-code",
    ]);
    assert!(
        line_with(&out, "arg 5 `s`").ends_with("bytes 0..8 in xmm0; bytes 8..16 in r9"),
        "{out}"
    );
    assert!(line_with(&out, "arg 6 `g`").ends_with("the stack at offset 0"));
    assert!(line_with(&out, "arg 7 `h`").ends_with("the stack at offset 8"));
    assert!(line_with(&out, "frame").starts_with("  frame   16 bytes of outgoing stack arguments"));
    assert!(!out.contains("endbr64"), "--no-code shows no code");
}

#[test]
fn sret_x87_and_int128() {
    let out = explain_ok(&[
        "struct { long a, b, c; } (int x, long double y)",
        "--no-code",
    ]);
    assert!(line_with(&out, "return").contains(
        "in memory: the caller passes a buffer's address in rdi, and gets it back in rax"
    ));
    assert!(line_with(&out, "arg 0 `x`").ends_with("rsi, sign-extended"));
    assert!(line_with(&out, "arg 1 `y`").ends_with("long double (16 bytes): the stack at offset 0"));
    let out = explain_ok(&["long double _Complex(__int128)", "--no-code"]);
    assert!(line_with(&out, "return").ends_with("bytes 0..10 in st0; bytes 16..26 in st1"));
    assert!(line_with(&out, "arg 0").ends_with("bytes 0..8 in rdi; bytes 8..16 in rsi"));
}

#[test]
fn win64_target_uses_llp64_and_references() {
    let out = explain_ok(&[
        "--target",
        "x86_64-win64",
        "--no-code",
        "long(long a, double b, struct { char c[3]; } s, struct { long long x, y; } big, int e)",
    ]);
    assert!(out.contains("target     x86_64-win64 (win64, LLP64)"));
    assert!(line_with(&out, "arg 0 `a`").ends_with("int32_t (4 bytes): rcx, sign-extended"));
    assert!(line_with(&out, "arg 1 `b`").ends_with("xmm1"));
    assert!(
        line_with(&out, "arg 2 `s`").ends_with("copied by the caller; the copy's address in r8")
    );
    assert!(line_with(&out, "arg 3 `big`").ends_with("the copy's address in r9"));
    assert!(line_with(&out, "arg 4 `e`").ends_with("the stack at offset 32, sign-extended"));
    assert!(line_with(&out, "frame").contains("32 bytes of shadow space"));
    // The prefix selects the same target.
    let prefixed = explain_ok(&[
        "win64: long(long a, double b, struct { char c[3]; } s, struct { long long x, y; } big, int e)",
        "--no-code",
    ]);
    assert_eq!(
        prefixed.lines().skip(1).collect::<Vec<_>>(),
        out.lines().skip(1).collect::<Vec<_>>()
    );
}

#[test]
fn disassembly_of_stub_and_thunk() {
    let out = explain_ok(&["int(int, int)"]);
    let libffi = out
        .find("call stub, libffi form")
        .expect("libffi-form section");
    let packed = out
        .find("call stub, packed form")
        .expect("packed-form section");
    let thunk = out.find("closure thunk").expect("thunk section");
    assert!(libffi < packed && packed < thunk);
    // Every section starts at offset 0 with endbr64.
    assert_eq!(out.matches("  0000  endbr64").count(), 3, "{out}");
    // The packed form of a register-only signature tail-jumps to the target.
    assert!(
        out[packed..thunk].contains("jmp"),
        "{}",
        &out[packed..thunk]
    );
    // The thunk calls the handler whose address it loaded from the closure
    // record in r11.
    assert!(
        out[thunk..].contains("mov     r10,[r11+0x28]"),
        "{}",
        &out[thunk..]
    );
    assert!(out[thunk..].contains("call    r10"), "{}", &out[thunk..]);
    // --bytes adds the encoding.
    let bytes = explain_ok(&["int(int, int)", "--bytes"]);
    assert!(bytes.contains("0000  f3 0f 1e fa"), "{bytes}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let (ok, out, err) = explain(&["double(int, )"]);
    assert!(!ok && out.is_empty());
    assert!(err.contains("cannot parse signature (column 13)"), "{err}");
    assert!(err.contains("             ^ expected"), "{err}");
    let (ok, _, err) = explain(&["--target", "sparc", "int(int)"]);
    assert!(!ok);
    assert!(
        err.contains("unknown target `sparc`; known targets: x86_64-sysv"),
        "{err}"
    );
    let (ok, _, err) = explain(&["--target", "x86_64-win64", "sysv: int(int)"]);
    assert!(!ok);
    assert!(
        err.contains("says `sysv64:` but --target is x86_64-win64"),
        "{err}"
    );
    let (ok, _, err) = explain(&["int(void x)"]);
    assert!(!ok);
    assert!(err.contains("unsupported signature"), "{err}");
}

#[test]
fn aarch64_plan_on_any_host() {
    let out = explain_ok(&[
        "--target",
        "aarch64",
        "struct { float x, y, z; } (int a, __int128 b, struct { long p, q, r; } big, long double ld)",
    ]);
    assert!(out.contains("target     aarch64 (aapcs64, LP64)"), "{out}");
    // An HFA of three floats comes back in v0-v2.
    assert!(
        line_with(&out, "return")
            .ends_with("bytes 0..4 in v0; bytes 4..8 in v1; bytes 8..12 in v2"),
        "{out}"
    );
    assert!(line_with(&out, "arg 0 `a`").contains(": x0"), "{out}");
    // __int128 in an even register pair.
    assert!(
        line_with(&out, "arg 1 `b`").ends_with("bytes 0..8 in x2; bytes 8..16 in x3"),
        "{out}"
    );
    // Over 16 bytes and not an HFA: copied, passed by reference.
    assert!(
        line_with(&out, "arg 2 `big`").ends_with("the copy's address in x4"),
        "{out}"
    );
    // long double is binary128 in a q register.
    assert!(line_with(&out, "arg 3 `ld`").ends_with("v0"), "{out}");
    assert!(out.contains("no AArch64 emitter"), "{out}");
}
