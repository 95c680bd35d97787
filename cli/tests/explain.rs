//! `jitffi explain` end to end: plans in words and disassembly for known
//! signatures, on the host and on other targets.

mod support;

fn explain(args: &[&str]) -> (bool, String, String) {
    let out = support::jitffi()
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
    let out = explain_ok(&[
        "--target",
        "x86_64-sysv",
        "double(int, struct { float; float }, ...)",
    ]);
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
        "--target=x86_64-sysv",
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
        "--target=x86_64-sysv",
        "struct { long a, b, c; } (int x, long double y)",
        "--no-code",
    ]);
    assert!(line_with(&out, "return").contains(
        "in memory: the caller passes a buffer's address in rdi, and gets it back in rax"
    ));
    assert!(line_with(&out, "arg 0 `x`").ends_with("rsi, sign-extended"));
    assert!(line_with(&out, "arg 1 `y`").ends_with("long double (16 bytes): the stack at offset 0"));
    let out = explain_ok(&[
        "--target=x86_64-sysv",
        "long double _Complex(__int128)",
        "--no-code",
    ]);
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
    let out = explain_ok(&["--target=x86_64-sysv", "int(int, int)"]);
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
    let bytes = explain_ok(&["--target=x86_64-sysv", "int(int, int)", "--bytes"]);
    assert!(bytes.contains("0000  f3 0f 1e fa"), "{bytes}");
}

#[test]
fn the_host_is_the_default_target() {
    let host = explain_ok(&["int(int)", "--no-code"]);
    let want = if cfg!(target_arch = "aarch64") {
        "target     aarch64 (aapcs64, LP64)"
    } else {
        "target     x86_64-sysv (sysv64, LP64)"
    };
    assert!(host.contains(want), "{host}");
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
    // The code too: the libffi-form stub copies `big` to its frame and
    // passes the copy's address in x4, and loads `ld` whole into q0.
    let stub = section(&out, "call stub, libffi form");
    assert_framed(stub);
    assert!(
        stub.lines()
            .any(|l| l.ends_with("x4, sp") || l.contains("x4, sp, #")),
        "{stub}"
    );
    assert!(stub.contains("ldr     q0, [x"), "{stub}");
    assert!(!out.contains("no code"), "{out}");
}

/// The listing under the section titled `title`: its lines up to the next
/// blank line. Checks the title's byte count against the listing.
fn section<'a>(out: &'a str, title: &str) -> &'a str {
    let start = out
        .find(title)
        .unwrap_or_else(|| panic!("no section {title:?} in\n{out}"));
    let text = &out[start..];
    let text = &text[..text.find("\n\n").unwrap_or(text.len())];
    let header = text.lines().next().unwrap();
    let bytes: usize = header
        .rsplit(", ")
        .next()
        .and_then(|b| b.strip_suffix(" bytes"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {header:?}"));
    // One line per 4-byte instruction word, at offsets 0, 4, 8...
    let offsets: Vec<&str> = text.lines().skip(1).map(|l| &l[2..6]).collect();
    let want: Vec<String> = (0..bytes / 4).map(|i| format!("{:04x}", 4 * i)).collect();
    assert_eq!(offsets, want, "{text}");
    text
}

/// The frame of the AArch64 conventions: `stp x29, x30, [sp, #-n]!` and
/// `mov x29, sp` first, `ldp x29, x30, [sp], #n` and `ret` last (n: the
/// frame record, and the locals too when one `stp` makes both).
fn assert_framed(listing: &str) {
    let lines: Vec<&str> = listing.lines().skip(1).map(|l| &l[8..]).collect();
    let n = lines.len();
    let push = lines[0]
        .strip_prefix("stp     x29, x30, [sp, #-")
        .and_then(|l| l.strip_suffix("]!"))
        .unwrap_or_else(|| panic!("no frame record push first:\n{listing}"));
    assert_eq!(lines[1], "mov     x29, sp", "{listing}");
    assert_eq!(
        lines[n - 2],
        format!("ldp     x29, x30, [sp], #{push}"),
        "{listing}"
    );
    assert_eq!(lines[n - 1], "ret", "{listing}");
}

/// The listing's instructions before the first line containing `marker`.
fn before<'a>(listing: &'a str, marker: &str) -> &'a str {
    let at = listing
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in\n{listing}"));
    &listing[..at]
}

#[test]
fn aarch64_disassembly_of_stub_and_thunk() {
    let out = explain_ok(&["--target", "aarch64", "int(int, int)"]);
    let libffi = section(&out, "call stub, libffi form");
    let packed = section(&out, "call stub, packed form");
    let thunk = section(&out, "closure thunk");
    assert_framed(libffi);
    assert_framed(thunk);
    // fn arrives in x0 and is called from x9 once x0 and x1 hold the ints,
    // loaded through the avalue pointers and sign-extended.
    let call = before(libffi, "blr     x9");
    assert!(call.contains("mov     x9, x0"), "{libffi}");
    assert!(call.contains("ldrsw   x0, [x"), "{libffi}");
    assert!(call.contains("ldrsw   x1, [x"), "{libffi}");
    // The result goes through rvalue as a full ffi_arg, if rvalue is not null.
    let after = &libffi[call.len()..];
    assert!(after.contains("cbz     x"), "{libffi}");
    assert!(after.contains("sxtw    x0, w0"), "{libffi}");
    assert!(after.contains("str     x0, [x"), "{libffi}");
    // Packed and register-only: four instructions, a tail branch.
    assert_eq!(packed.lines().count(), 1 + 4, "{packed}");
    assert!(packed.contains("ldrsw   x0, [x2]"), "{packed}");
    assert!(packed.contains("ldrsw   x1, [x2, #0x8]"), "{packed}");
    assert!(packed.ends_with("br      x9"), "{packed}");
    assert!(
        !packed.contains("x29"),
        "a tail stub has no frame: {packed}"
    );
    // The thunk spills x0 and x1 for the handler, loads cif and handler
    // (record offsets 32, 40) and the user data (48) from the record in
    // x17, calls the handler and returns the int it stored.
    assert!(thunk.contains("closure record in x17"), "{thunk}");
    let call = before(thunk, "blr     x16");
    assert!(
        call.contains("stp     x0, x1, [sp")
            || (call.contains("str     x0, [sp") && call.contains("str     x1, [sp")),
        "{thunk}"
    );
    assert!(call.contains("ldp     x0, x16, [x17, #0x20]"), "{thunk}");
    assert!(call.contains("ldr     x3, [x17, #0x30]"), "{thunk}");
    assert!(
        thunk[call.len()..].contains("ldrsw   x0, [sp, #0x"),
        "{thunk}"
    );

    // --bytes adds each word, little-endian.
    let bytes = explain_ok(&["--target", "aarch64", "int(int, int)", "--bytes"]);
    assert!(
        bytes.contains("0000  e9 03 00 aa mov     x9, x0"),
        "{bytes}"
    );
    assert!(bytes.contains("20 01 1f d6 br      x9"), "{bytes}");
    // --no-code leaves it all out.
    let none = explain_ok(&["--target", "aarch64", "int(int, int)", "--no-code"]);
    assert!(
        !none.contains("call stub") && !none.contains("x29"),
        "{none}"
    );
}

#[test]
fn aarch64_hfa_moves_through_s_and_d_registers() {
    let out = explain_ok(&[
        "--target",
        "aarch64",
        "struct { double a, b, c; } (struct { float x, y; } p, double d, int i)",
    ]);
    assert!(
        line_with(&out, "return")
            .ends_with("bytes 0..8 in v0; bytes 8..16 in v1; bytes 16..24 in v2"),
        "{out}"
    );
    let libffi = section(&out, "call stub, libffi form");
    let packed = section(&out, "call stub, packed form");
    let thunk = section(&out, "closure thunk");
    assert_framed(libffi);
    assert_framed(thunk);
    // The float pair in s0/s1, the double in d2, the int in x0; the HFA
    // result from d0-d2 into rvalue.
    let call = before(libffi, "blr     x9");
    assert!(call.contains("ldp     s0, s1, [x"), "{libffi}");
    assert!(call.contains("ldr     d2, [x"), "{libffi}");
    assert!(call.contains("ldrsw   x0, [x"), "{libffi}");
    let after = &libffi[call.len()..];
    assert!(after.contains("stp     d0, d1, [x"), "{libffi}");
    assert!(
        line_with(after, "str     d2, [x").ends_with(", #0x10]"),
        "{libffi}"
    );
    // Packed: at the packed offsets 0, 8 and 16, then a tail branch.
    assert!(packed.contains("ldp     s0, s1, [x2]"), "{packed}");
    assert!(packed.contains("ldr     d2, [x2, #0x8]"), "{packed}");
    assert!(packed.contains("ldrsw   x0, [x2, #0x10]"), "{packed}");
    assert!(packed.ends_with("br      x9"), "{packed}");
    // The thunk spills s0/s1, d2 and x0, and returns the HFA in d0-d2.
    let call = before(thunk, "blr     x16");
    assert!(call.contains("stp     s0, s1, [sp, #0x"), "{thunk}");
    assert!(call.contains("str     d2, [sp, #0x"), "{thunk}");
    assert!(call.contains("str     x0, [sp, #0x"), "{thunk}");
    let after = &thunk[call.len()..];
    assert!(after.contains("ldp     d0, d1, [sp, #0x"), "{thunk}");
    assert!(after.contains("ldr     d2, [sp, #0x"), "{thunk}");
}
