//! Golden AAPCS64 plans: Linux ([`Abi::Aapcs64`]) and the Apple policy.
//!
//! Linux listings were checked against `aarch64-linux-gnu-gcc` 12.2 `-O2
//! -S` (Debian's cross compiler): for each C signature quoted above a case,
//! a caller passing distinct constants or `*p` copies, reading which `w`/`x`
//! /`s`/`d`/`q` registers it loads and at which `[sp, N]` it stores (the
//! callee sees the same offsets: AArch64 has no return address on the
//! stack), and callees for the return cases. Apple listings were checked
//! against clang 14 `--target=arm64-apple-macos11 -O2 -S` the same way
//! (no Apple machine here: plan-tested only).
//!
//! What gcc showed beyond the plan text: narrow integer arguments are not
//! extended by gcc callers (`(unsigned char)200` is `mov w1, -56`) and a
//! callee returning `short` leaves it unextended (`add w0, w0, 1`), so our
//! `sext`/`zext` is a harmless superset; clang for Apple does extend
//! (`mov w1, #200`, `sxth w0, w8` in the callee).

#[path = "support/randsig.rs"]
mod randsig;

use jitffi::classify::aapcs64::{classify_with, Policy};
use jitffi::classify::classify;
use jitffi::plan::{ArgPass, CallPlan, Loc, RetPass};
use jitffi::{Abi, Arch, Type};
use randsig::{Config, Scalar, Shape, SplitMix64};

#[path = "support/build.rs"]
mod build;
use build::{arr, rep, st, un};

/// `args` after `n` leading `long`s (or `double`s).
fn after(n: usize, first: Type, rest: &[Type]) -> Vec<Type> {
    let mut v = rep(first, n);
    v.extend(rest.iter().cloned());
    v
}

fn f3() -> Type {
    st(&rep(Type::f32(), 3))
}
fn dd() -> Type {
    st(&rep(Type::f64(), 2))
}
/// `struct { long a; int b; }`: 16 bytes, 8-aligned.
fn li() -> Type {
    st(&[Type::i64(), Type::i32()])
}
/// `struct { char c[3]; }`
fn c3() -> Type {
    st(&[arr(Type::i8(), 3)])
}
/// `struct { __int128 x; }`: 16 bytes, 16-aligned.
fn i128s() -> Type {
    st(&[Type::i128()])
}

#[track_caller]
fn golden(ret: Type, args: &[Type], fixed: Option<usize>, want: &str) {
    let plan = classify(Abi::Aapcs64, &ret, args, fixed).unwrap();
    plan.check().unwrap();
    assert_eq!(plan.vector_count, None, "AArch64 has no al count");
    assert_eq!(
        plan,
        classify_with(Policy::LINUX, &ret, args, fixed).unwrap(),
        "the Linux policy is the Abi::Aapcs64 plan"
    );
    let got = plan.to_string();
    assert_eq!(got, want, "\n--- got ---\n{got}--- want ---\n{want}");
}

#[track_caller]
fn golden_apple(ret: Type, args: &[Type], fixed: Option<usize>, want: &str) {
    let plan = classify_with(Policy::APPLE, &ret, args, fixed).unwrap();
    plan.check().unwrap();
    let got = plan.to_string();
    assert_eq!(got, want, "\n--- got ---\n{got}--- want ---\n{want}");
}

#[test]
fn integer_scalars_take_x_registers() {
    // void f(signed char, unsigned char, short, unsigned short, int,
    //        unsigned, long, void *);  gcc: w0..w5, x6, x7.
    golden(
        Type::void(),
        &[
            Type::i8(),
            Type::u8(),
            Type::i16(),
            Type::u16(),
            Type::i32(),
            Type::u32(),
            Type::i64(),
            Type::pointer(),
        ],
        None,
        "aapcs64 Aarch64, stack 0
  ret void: none
  arg 0 int8_t: [0..1) x0 sext
  arg 1 uint8_t: [0..1) x1 zext
  arg 2 int16_t: [0..2) x2 sext
  arg 3 uint16_t: [0..2) x3 zext
  arg 4 int32_t: [0..4) x4 sext
  arg 5 uint32_t: [0..4) x5 zext
  arg 6 int64_t: [0..8) x6
  arg 7 void *: [0..8) x7
",
    );
}

#[test]
fn float_scalars_take_v_registers() {
    // void f(float, double, long double);  gcc: s0, d1, q2 (binary128).
    golden(
        Type::void(),
        &[Type::f32(), Type::f64(), Type::long_double()],
        None,
        "aapcs64 Aarch64, stack 0
  ret void: none
  arg 0 float: [0..4) v0
  arg 1 double: [0..8) v1
  arg 2 long double: [0..16) v2
",
    );
}

#[test]
fn scalar_returns() {
    // gcc callees: short in w0 unextended (the stub widens), float s0,
    // long double q0, __int128 x0:x1 (`ldp x0, x1, [x0]`).
    let ret = |t: Type| {
        let plan = classify(Abi::Aapcs64, &t, &[], None).unwrap();
        plan.check().unwrap();
        plan.to_string().lines().nth(1).unwrap().to_string()
    };
    assert_eq!(ret(Type::i16()), "  ret int16_t: [0..2) x0 sext");
    assert_eq!(ret(Type::u8()), "  ret uint8_t: [0..1) x0 zext");
    assert_eq!(ret(Type::u32()), "  ret uint32_t: [0..4) x0 zext");
    assert_eq!(ret(Type::i64()), "  ret int64_t: [0..8) x0");
    assert_eq!(ret(Type::pointer()), "  ret void *: [0..8) x0");
    assert_eq!(ret(Type::f32()), "  ret float: [0..4) v0");
    assert_eq!(ret(Type::f64()), "  ret double: [0..8) v0");
    assert_eq!(ret(Type::long_double()), "  ret long double: [0..16) v0");
    assert_eq!(ret(Type::i128()), "  ret __int128: [0..8) x0, [8..16) x1");
    assert_eq!(
        ret(Type::u128()),
        "  ret unsigned __int128: [0..8) x0, [8..16) x1"
    );
}

#[test]
fn int128_takes_an_even_pair() {
    // void f(int, __int128, int);  gcc: w0, x2:x3, w4 (x1 stays unused).
    golden(
        Type::void(),
        &[Type::i32(), Type::i128(), Type::i32()],
        None,
        "aapcs64 Aarch64, stack 0
  ret void: none
  arg 0 int32_t: [0..4) x0 sext
  arg 1 __int128: [0..8) x2, [8..16) x3
  arg 2 int32_t: [0..4) x4 sext
",
    );
    // void f(7 x long, __int128, int);  gcc: the pair cannot start at x7,
    // so the __int128 goes to [sp] and the int to [sp, 16], not x7.
    golden(
        Type::void(),
        &after(7, Type::i64(), &[Type::i128(), Type::i32()]),
        None,
        "aapcs64 Aarch64, stack 32
  ret void: none
  arg 0 int64_t: [0..8) x0
  arg 1 int64_t: [0..8) x1
  arg 2 int64_t: [0..8) x2
  arg 3 int64_t: [0..8) x3
  arg 4 int64_t: [0..8) x4
  arg 5 int64_t: [0..8) x5
  arg 6 int64_t: [0..8) x6
  arg 7 __int128: [0..16) stack+0
  arg 8 int32_t: [0..4) stack+16 sext
",
    );
}

#[test]
fn hfas_in_consecutive_v_registers() {
    // typedef struct { float a, b, c; } F3;
    // typedef struct { struct { double a, b; } in; } DD;
    // typedef struct { float a[4]; } FA4;
    // void f(F3, DD, FA4);  gcc: s0-s2, d3-d4, and FA4 needs v5-v8: only
    // three remain, so all of it goes to [sp] (`stp x2, x3, [sp]`).
    let ddn = st(&[dd()]);
    let fa4 = st(&[arr(Type::f32(), 4)]);
    golden(
        Type::void(),
        &[f3(), ddn, fa4.clone()],
        None,
        "aapcs64 Aarch64, stack 16
  ret void: none
  arg 0 struct { float; float; float; }: [0..4) v0, [4..8) v1, [8..12) v2
  arg 1 struct { struct { double; double; }; }: [0..8) v3, [8..16) v4
  arg 2 struct { float[4]; }: [0..16) stack+0
",
    );
    // typedef struct { DD in; double c, d; } D4;  (nested: 4 doubles)
    // typedef struct { long double a, b, c, d; } L4;  (64 bytes, still an
    // HFA: never by reference)
    // void f(FA4, D4, L4);  gcc: s0-s3, d4-d7, L4 at [sp]..[sp, 64] (`stp
    // q18, q19, [sp]; stp q16, q17, [sp, 32]`).
    let d4 = st(&[dd(), Type::f64(), Type::f64()]);
    let l4 = st(&rep(Type::long_double(), 4));
    golden(
        Type::void(),
        &[fa4, d4, l4],
        None,
        "aapcs64 Aarch64, stack 64
  ret void: none
  arg 0 struct { float[4]; }: [0..4) v0, [4..8) v1, [8..12) v2, [12..16) v3
  arg 1 struct { struct { double; double; }; double; double; }: [0..8) v4, [8..16) v5, [16..24) v6, [24..32) v7
  arg 2 struct { long double; long double; long double; long double; }: [0..64) stack+0
",
    );
}

#[test]
fn hfa_returns() {
    // L4 f(int, double);  gcc: w0, d0; the caller stores q0-q3 (no x8).
    let l4 = st(&rep(Type::long_double(), 4));
    golden(
        l4,
        &[Type::i32(), Type::f64()],
        None,
        "aapcs64 Aarch64, stack 0
  ret struct { long double; long double; long double; long double; }: [0..16) v0, [16..32) v1, [32..48) v2, [48..64) v3
  arg 0 int32_t: [0..4) x0 sext
  arg 1 double: [0..8) v0
",
    );
    // gcc callees: F3 in s0-s2, double _Complex in d0:d1.
    golden(
        f3(),
        &[Type::complex_f64()],
        None,
        "aapcs64 Aarch64, stack 0
  ret struct { float; float; float; }: [0..4) v0, [4..8) v1, [8..12) v2
  arg 0 double _Complex: [0..8) v0, [8..16) v1
",
    );
}

#[test]
fn complex_and_union_hfas() {
    // void f(float _Complex, double _Complex, long double _Complex);
    // gcc: s0:s1, d2:d3, q4:q5.
    golden(
        Type::void(),
        &[
            Type::complex_f32(),
            Type::complex_f64(),
            Type::complex_long_double(),
        ],
        None,
        "aapcs64 Aarch64, stack 0
  ret void: none
  arg 0 float _Complex: [0..4) v0, [4..8) v1
  arg 1 double _Complex: [0..8) v2, [8..16) v3
  arg 2 long double _Complex: [0..16) v4, [16..32) v5
",
    );
    // void f(struct { long double x; }, union { float f; struct { float
    // a, b; } s; });  gcc: q0, then the union as an HFA of two: s1, s2.
    let uf2 = un(&[Type::f32(), st(&rep(Type::f32(), 2))]);
    golden(
        Type::void(),
        &[st(&[Type::long_double()]), uf2],
        None,
        "aapcs64 Aarch64, stack 0
  ret void: none
  arg 0 struct { long double; }: [0..16) v0
  arg 1 union { float; struct { float; float; }; }: [0..4) v1, [4..8) v2
",
    );
}

#[test]
fn not_hfas() {
    // typedef struct { float a; double b; } FD;  (mixed: not an HFA)
    // typedef struct { float a, b, c, d, e; } F5;  (5 members: not an HFA,
    // 20 bytes: by reference)
    // void f(FD, F5);  gcc: `ldp x0, x1` for FD, x2 = address of a copy.
    let fd = st(&[Type::f32(), Type::f64()]);
    let f5 = st(&rep(Type::f32(), 5));
    golden(
        Type::void(),
        &[fd, f5],
        None,
        "aapcs64 Aarch64, stack 0
  ret void: none
  arg 0 struct { float; double; }: [0..8) x0, [8..16) x1
  arg 1 struct { float; float; float; float; float; }: copy, address in x2
",
    );
    // typedef struct { double a, b, c, d, e; } D5;  (40 bytes)
    // typedef struct { float a, b; double c; } FFD;
    // typedef struct { long a; char b; } LC;
    // typedef struct { char c[12]; } C12;
    // typedef union { float f; int i; } UFI;
    // void f(D5, FFD, LC, C12, UFI, C3);  gcc: x0 = copy of D5, FFD
    // x1:x2, LC x3:x4, C12 x5 + w6, UFI w7, C3 at [sp] (`strh; strb`).
    let d5 = st(&rep(Type::f64(), 5));
    let ffd = st(&[Type::f32(), Type::f32(), Type::f64()]);
    let lc = st(&[Type::i64(), Type::i8()]);
    let c12 = st(&[arr(Type::i8(), 12)]);
    let ufi = un(&[Type::f32(), Type::i32()]);
    golden(
        Type::void(),
        &[d5, ffd, lc, c12, ufi, c3()],
        None,
        "aapcs64 Aarch64, stack 16
  ret void: none
  arg 0 struct { double; double; double; double; double; }: copy, address in x0
  arg 1 struct { float; float; double; }: [0..8) x1, [8..16) x2
  arg 2 struct { int64_t; int8_t; }: [0..8) x3, [8..16) x4
  arg 3 struct { int8_t[12]; }: [0..8) x5, [8..12) x6
  arg 4 union { float; int32_t; }: [0..4) x7
  arg 5 struct { int8_t[3]; }: [0..3) stack+0
",
    );
}

#[test]
fn hfa_that_does_not_fit_sends_later_floats_to_the_stack() {
    // void f(6 x double, F3, float);  gcc: d0-d5, F3 at [sp] (12 bytes),
    // and the float at [sp, 16] although v6 and v7 are free (NSRN = 8).
    golden(
        Type::void(),
        &after(6, Type::f64(), &[f3(), Type::f32()]),
        None,
        "aapcs64 Aarch64, stack 32
  ret void: none
  arg 0 double: [0..8) v0
  arg 1 double: [0..8) v1
  arg 2 double: [0..8) v2
  arg 3 double: [0..8) v3
  arg 4 double: [0..8) v4
  arg 5 double: [0..8) v5
  arg 6 struct { float; float; float; }: [0..12) stack+0
  arg 7 float: [0..4) stack+16
",
    );
}

#[test]
fn composites_in_x_registers() {
    // void f(int, struct { long a; int b; }, struct { __int128 x; });
    // gcc: w0, x1:x2, and the 16-aligned struct at the even pair x4:x5.
    golden(
        Type::void(),
        &[Type::i32(), li(), i128s()],
        None,
        "aapcs64 Aarch64, stack 0
  ret void: none
  arg 0 int32_t: [0..4) x0 sext
  arg 1 struct { int64_t; int32_t; }: [0..8) x1, [8..16) x2
  arg 2 struct { __int128; }: [0..8) x4, [8..16) x5
",
    );
    // gcc callees: FFD `ldp x0, x1`, C12 x0 + w1, C3 in w0 (bfi).
    let ret = |t: Type| {
        let plan = classify(Abi::Aapcs64, &t, &[], None).unwrap();
        plan.to_string().lines().nth(1).unwrap().to_string()
    };
    assert_eq!(
        ret(st(&[Type::f32(), Type::f32(), Type::f64()])),
        "  ret struct { float; float; double; }: [0..8) x0, [8..16) x1"
    );
    assert_eq!(
        ret(st(&[arr(Type::i8(), 12)])),
        "  ret struct { int8_t[12]; }: [0..8) x0, [8..12) x1"
    );
    assert_eq!(ret(c3()), "  ret struct { int8_t[3]; }: [0..3) x0");
}

#[test]
fn composite_that_does_not_fit_goes_to_the_stack() {
    // void f(7 x long, struct { long a; int b; }, long);  gcc: the struct
    // at [sp] (x7 stays unused) and the long at [sp, 16] (NGRN = 8).
    golden(
        Type::void(),
        &after(7, Type::i64(), &[li(), Type::i64()]),
        None,
        "aapcs64 Aarch64, stack 32
  ret void: none
  arg 0 int64_t: [0..8) x0
  arg 1 int64_t: [0..8) x1
  arg 2 int64_t: [0..8) x2
  arg 3 int64_t: [0..8) x3
  arg 4 int64_t: [0..8) x4
  arg 5 int64_t: [0..8) x5
  arg 6 int64_t: [0..8) x6
  arg 7 struct { int64_t; int32_t; }: [0..16) stack+0
  arg 8 int64_t: [0..8) stack+16
",
    );
}

#[test]
fn large_composites_by_reference_and_sret_in_x8() {
    // typedef struct { long a, b, c; } L3;  void f(L3, L3);  gcc: x0, x1
    // hold the addresses of two copies.
    let l3 = st(&rep(Type::i64(), 3));
    golden(
        Type::void(),
        &[l3.clone(), l3.clone()],
        None,
        "aapcs64 Aarch64, stack 0
  ret void: none
  arg 0 struct { int64_t; int64_t; int64_t; }: copy, address in x0
  arg 1 struct { int64_t; int64_t; int64_t; }: copy, address in x1
",
    );
    // L3 f(int);  gcc: `mov x8, x20` (the buffer), w0 = 5; the callee
    // does not return the address.
    golden(
        l3,
        &[Type::i32()],
        None,
        "aapcs64 Aarch64, stack 0
  ret struct { int64_t; int64_t; int64_t; }: sret ptr in x8
  arg 0 int32_t: [0..4) x0 sext
",
    );
    // D5 f(D5);  gcc: x8 = result buffer, x0 = copy of the argument.
    let d5 = st(&rep(Type::f64(), 5));
    golden(
        d5.clone(),
        &[d5],
        None,
        "aapcs64 Aarch64, stack 0
  ret struct { double; double; double; double; double; }: sret ptr in x8
  arg 0 struct { double; double; double; double; double; }: copy, address in x0
",
    );
    // void f(8 x long, F5);  gcc: `str x8, [sp]`, the copy's address.
    let f5 = st(&rep(Type::f32(), 5));
    let plan = classify(
        Abi::Aapcs64,
        &Type::void(),
        &after(8, Type::i64(), &[f5]),
        None,
    )
    .unwrap();
    assert_eq!(
        plan.args[8].pass,
        ArgPass::Indirect {
            pointer: Loc::Stack(0)
        }
    );
    assert_eq!(plan.stack_bytes, 16);
}

#[test]
fn stack_slots_and_their_alignment() {
    // void f(8 x long, char, short, float, long double, int, C3, __int128);
    // gcc: `strb [sp]`, `strh [sp, 8]`, s0, q1, `str w [sp, 16]`, C3 at
    // [sp, 24], __int128 `stp [sp, 32]`: 8-byte slots, 16-aligned.
    golden(
        Type::void(),
        &after(
            8,
            Type::i64(),
            &[
                Type::i8(),
                Type::i16(),
                Type::f32(),
                Type::long_double(),
                Type::i32(),
                c3(),
                Type::i128(),
            ],
        ),
        None,
        "aapcs64 Aarch64, stack 48
  ret void: none
  arg 0 int64_t: [0..8) x0
  arg 1 int64_t: [0..8) x1
  arg 2 int64_t: [0..8) x2
  arg 3 int64_t: [0..8) x3
  arg 4 int64_t: [0..8) x4
  arg 5 int64_t: [0..8) x5
  arg 6 int64_t: [0..8) x6
  arg 7 int64_t: [0..8) x7
  arg 8 int8_t: [0..1) stack+0 sext
  arg 9 int16_t: [0..2) stack+8 sext
  arg 10 float: [0..4) v0
  arg 11 long double: [0..16) v1
  arg 12 int32_t: [0..4) stack+16 sext
  arg 13 struct { int8_t[3]; }: [0..3) stack+24
  arg 14 __int128: [0..16) stack+32
",
    );
    // void f(8 x double, float, double, long double, float, DD,
    //        struct { long double a, b; }, F3);
    // gcc: [sp] s, [sp, 8] d, [sp, 16] q, [sp, 32] s, DD `stp x2, x3,
    // [sp, 40]`, the long double HFA 16-aligned at [sp, 64], F3 at [sp, 96].
    golden(
        Type::void(),
        &after(
            8,
            Type::f64(),
            &[
                Type::f32(),
                Type::f64(),
                Type::long_double(),
                Type::f32(),
                dd(),
                st(&rep(Type::long_double(), 2)),
                f3(),
            ],
        ),
        None,
        "aapcs64 Aarch64, stack 112
  ret void: none
  arg 0 double: [0..8) v0
  arg 1 double: [0..8) v1
  arg 2 double: [0..8) v2
  arg 3 double: [0..8) v3
  arg 4 double: [0..8) v4
  arg 5 double: [0..8) v5
  arg 6 double: [0..8) v6
  arg 7 double: [0..8) v7
  arg 8 float: [0..4) stack+0
  arg 9 double: [0..8) stack+8
  arg 10 long double: [0..16) stack+16
  arg 11 float: [0..4) stack+32
  arg 12 struct { double; double; }: [0..16) stack+40
  arg 13 struct { long double; long double; }: [0..32) stack+64
  arg 14 struct { float; float; float; }: [0..12) stack+96
",
    );
}

#[test]
fn variadic_is_fixed_on_linux() {
    // int f(const char *, ...) called with (1, 2.0, F3, LI, 3.0L);
    // gcc: x0, w1, d0, s1-s3, x2:x3, q4: exactly the fixed rules.
    golden(
        Type::i32(),
        &[
            Type::pointer(),
            Type::i32(),
            Type::f64(),
            f3(),
            li(),
            Type::long_double(),
        ],
        Some(1),
        "aapcs64 Aarch64, variadic after 1, stack 0
  ret int32_t: [0..4) x0 sext
  arg 0 void *: [0..8) x0
  arg 1 int32_t (variadic): [0..4) x1 sext
  arg 2 double (variadic): [0..8) v0
  arg 3 struct { float; float; float; } (variadic): [0..4) v1, [4..8) v2, [8..12) v3
  arg 4 struct { int64_t; int32_t; } (variadic): [0..8) x2, [8..16) x3
  arg 5 long double (variadic): [0..16) v4
",
    );
}

#[test]
fn apple_packs_stack_arguments() {
    // void f(8 x long, char, short, int, long, unsigned char, float, C3,
    //        F3, __int128, char, double);
    // clang (Apple): `strb [sp]`, `strh [sp, 2]`, `str w [sp, 4]`, `str x
    // [sp, 8]`, `strb [sp, 16]`, d0, C3 as a whole word at [sp, 24], s1-s3,
    // __int128 at [sp, 32], `strb [sp, 48]`, d4.
    golden_apple(
        Type::void(),
        &after(
            8,
            Type::i64(),
            &[
                Type::i8(),
                Type::i16(),
                Type::i32(),
                Type::i64(),
                Type::u8(),
                Type::f32(),
                c3(),
                f3(),
                Type::i128(),
                Type::i8(),
                Type::f64(),
            ],
        ),
        None,
        "aapcs64 Aarch64, stack 64
  ret void: none
  arg 0 int64_t: [0..8) x0
  arg 1 int64_t: [0..8) x1
  arg 2 int64_t: [0..8) x2
  arg 3 int64_t: [0..8) x3
  arg 4 int64_t: [0..8) x4
  arg 5 int64_t: [0..8) x5
  arg 6 int64_t: [0..8) x6
  arg 7 int64_t: [0..8) x7
  arg 8 int8_t: [0..1) stack+0
  arg 9 int16_t: [0..2) stack+2
  arg 10 int32_t: [0..4) stack+4
  arg 11 int64_t: [0..8) stack+8
  arg 12 uint8_t: [0..1) stack+16
  arg 13 float: [0..4) v0
  arg 14 struct { int8_t[3]; }: [0..3) stack+24
  arg 15 struct { float; float; float; }: [0..4) v1, [4..8) v2, [8..12) v3
  arg 16 __int128: [0..16) stack+32
  arg 17 int8_t: [0..1) stack+48
  arg 18 double: [0..8) v4
",
    );
    // void f(8 x double, float, float, double, F3, float, DD);
    // clang: floats at [sp] and [sp, 4], double [sp, 8], F3 at [sp, 16]
    // (4-aligned, 12 bytes), the float right after at [sp, 28], DD [sp, 32].
    golden_apple(
        Type::void(),
        &after(
            8,
            Type::f64(),
            &[
                Type::f32(),
                Type::f32(),
                Type::f64(),
                f3(),
                Type::f32(),
                dd(),
            ],
        ),
        None,
        "aapcs64 Aarch64, stack 48
  ret void: none
  arg 0 double: [0..8) v0
  arg 1 double: [0..8) v1
  arg 2 double: [0..8) v2
  arg 3 double: [0..8) v3
  arg 4 double: [0..8) v4
  arg 5 double: [0..8) v5
  arg 6 double: [0..8) v6
  arg 7 double: [0..8) v7
  arg 8 float: [0..4) stack+0
  arg 9 float: [0..4) stack+4
  arg 10 double: [0..8) stack+8
  arg 11 struct { float; float; float; }: [0..12) stack+16
  arg 12 float: [0..4) stack+28
  arg 13 struct { double; double; }: [0..16) stack+32
",
    );
    // void f(7 x long, LI, int, C3);  clang: LI at [sp] (x7 unused), the
    // int at [sp, 16] in 4 bytes, C3 as a word at [sp, 24].
    let plan = classify_with(
        Policy::APPLE,
        &Type::void(),
        &after(7, Type::i64(), &[li(), Type::i32(), c3()]),
        None,
    )
    .unwrap();
    let tail: Vec<String> = plan.to_string().lines().skip(9).map(String::from).collect();
    assert_eq!(
        tail,
        [
            "  arg 7 struct { int64_t; int32_t; }: [0..16) stack+0",
            "  arg 8 int32_t: [0..4) stack+16",
            "  arg 9 struct { int8_t[3]; }: [0..3) stack+24",
        ]
    );
    assert_eq!(plan.stack_bytes, 32);
}

#[test]
fn apple_extends_narrow_arguments_and_pairs_at_any_register() {
    // void f(char, unsigned char, short, unsigned short);  clang (Apple):
    // `mov w0, #-1; mov w1, #200; mov w2, #-3; mov w3, #60000`.
    golden_apple(
        Type::void(),
        &[Type::i8(), Type::u8(), Type::i16(), Type::u16()],
        None,
        "aapcs64 Aarch64, stack 0
  ret void: none
  arg 0 int8_t: [0..1) x0 sext
  arg 1 uint8_t: [0..1) x1 zext
  arg 2 int16_t: [0..2) x2 sext
  arg 3 uint16_t: [0..2) x3 zext
",
    );
    // void f(int, __int128, int) and f(int, struct { __int128 }, int);
    // clang (Apple): w0, x1:x2, w3 (no even-register rule).
    for t in [Type::i128(), i128s()] {
        let plan = classify_with(
            Policy::APPLE,
            &Type::void(),
            &[Type::i32(), t.clone(), Type::i32()],
            None,
        )
        .unwrap();
        let text = plan.to_string();
        assert!(
            text.contains(&format!("arg 1 {t}: [0..8) x1, [8..16) x2\n")),
            "{text}"
        );
        assert!(text.contains("arg 2 int32_t: [0..4) x3 sext\n"), "{text}");
    }
    // f(7 x long, __int128, int): clang puts the pair at [sp] and the int
    // at [sp, 16], as Linux does.
    let plan = classify_with(
        Policy::APPLE,
        &Type::void(),
        &after(7, Type::i64(), &[Type::i128(), Type::i32()]),
        None,
    )
    .unwrap();
    let text = plan.to_string();
    assert!(text.contains("arg 7 __int128: [0..16) stack+0\n"), "{text}");
    assert!(text.contains("arg 8 int32_t: [0..4) stack+16\n"), "{text}");
    assert_eq!(plan.stack_bytes, 32);
}

#[test]
fn apple_variadic_arguments_on_the_stack() {
    // int f(const char *, ...) called with (1, 2.0, F3, LI, (__int128)3,
    // 4L, struct { __int128 });  clang (Apple): x0 only; 1 at [sp], 2.0 at
    // [sp, 8], F3 at [sp, 16] (12 bytes), LI [sp, 32], the __int128
    // 16-aligned at [sp, 48], 4 at [sp, 64], the struct at [sp, 80].
    golden_apple(
        Type::i32(),
        &[
            Type::pointer(),
            Type::i32(),
            Type::f64(),
            f3(),
            li(),
            Type::i128(),
            Type::i64(),
            i128s(),
        ],
        Some(1),
        "aapcs64 Aarch64, variadic after 1, stack 96
  ret int32_t: [0..4) x0 sext
  arg 0 void *: [0..8) x0
  arg 1 int32_t (variadic): [0..4) stack+0 sext
  arg 2 double (variadic): [0..8) stack+8
  arg 3 struct { float; float; float; } (variadic): [0..12) stack+16
  arg 4 struct { int64_t; int32_t; } (variadic): [0..16) stack+32
  arg 5 __int128 (variadic): [0..16) stack+48
  arg 6 int64_t (variadic): [0..8) stack+64
  arg 7 struct { __int128; } (variadic): [0..16) stack+80
",
    );
    // int f(int, double, ...) called with (3, 4.0);  clang: w0, d0 for the
    // fixed ones, `stp x9, x8, [sp]` for the variadic ones.
    golden_apple(
        Type::i32(),
        &[Type::i32(), Type::f64(), Type::i32(), Type::f64()],
        Some(2),
        "aapcs64 Aarch64, variadic after 2, stack 16
  ret int32_t: [0..4) x0 sext
  arg 0 int32_t: [0..4) x0 sext
  arg 1 double: [0..8) v0
  arg 2 int32_t (variadic): [0..4) stack+0 sext
  arg 3 double (variadic): [0..8) stack+8
",
    );
}

#[test]
fn plan_facts() {
    let plan = classify(Abi::Aapcs64, &Type::void(), &[], None).unwrap();
    assert_eq!(plan.arch, Arch::Aarch64);
    assert_eq!(plan.static_chain, None);
    assert_eq!(plan.shadow_space, 0);
    let mut want: Vec<Loc> = (19..=29).map(Loc::Gpr).collect();
    want.extend((8..=15).map(Loc::Vec));
    assert_eq!(plan.callee_saved, want);
    // Validation runs on the Apple entry too.
    assert!(classify_with(Policy::APPLE, &Type::void(), &[Type::void()], None).is_err());
    assert!(classify_with(
        Policy::APPLE,
        &Type::void(),
        &[Type::pointer(), Type::f32()],
        Some(1)
    )
    .is_err());
}

fn scalar_type(s: Scalar) -> Type {
    match s {
        Scalar::U8 => Type::u8(),
        Scalar::I8 => Type::i8(),
        Scalar::U16 => Type::u16(),
        Scalar::I16 => Type::i16(),
        Scalar::U32 => Type::u32(),
        Scalar::I32 => Type::i32(),
        Scalar::U64 => Type::u64(),
        Scalar::I64 => Type::i64(),
        Scalar::F32 => Type::f32(),
        Scalar::F64 => Type::f64(),
        Scalar::LongDouble => Type::long_double(),
        Scalar::Pointer => Type::pointer(),
        Scalar::ComplexF32 => Type::complex_f32(),
        Scalar::ComplexF64 => Type::complex_f64(),
        Scalar::ComplexLongDouble => Type::complex_long_double(),
    }
}

fn shape_type(shape: &Shape) -> Type {
    match shape {
        Shape::Scalar(s) => scalar_type(*s),
        Shape::Struct(members) => {
            let mut fields = Vec::new();
            for m in members {
                let t = shape_type(&m.shape);
                if m.as_array && m.count > 1 {
                    fields.push(arr(t, m.count));
                } else {
                    fields.extend(std::iter::repeat_n(t, m.count));
                }
            }
            st(&fields)
        }
    }
}

/// Every location a plan's argument uses, with the bytes it covers on the
/// stack (registers cover "one register").
fn arg_locs(plan: &CallPlan) -> Vec<(usize, Loc, u32)> {
    let mut out = Vec::new();
    for (i, a) in plan.args.iter().enumerate() {
        match &a.pass {
            ArgPass::Direct(pieces) => out.extend(pieces.iter().map(|p| (i, p.loc, p.size))),
            ArgPass::Indirect { pointer } => out.push((i, *pointer, 8)),
        }
    }
    out
}

/// A few hundred random signatures under both policies: every plan passes
/// `check()`, no two pieces share a register or overlap on the stack, the
/// registers are x0-x7 / v0-v7 only and never x8 (the sret register),
/// pieces of one value in registers use consecutive registers, and the
/// return uses at most x0-x1 / v0-v3.
#[test]
fn random_plans_are_well_formed() {
    let config = Config {
        max_args: 24,
        ..Config::default()
    };
    let extras = [
        Type::i128(),
        Type::u128(),
        i128s(),
        un(&[Type::f32(), st(&rep(Type::f32(), 2))]),
        un(&[Type::f32(), Type::f64()]),
        st(&[arr(Type::long_double(), 4)]),
    ];
    let mut checked = 0;
    for case in 0..600u64 {
        let mut rng = SplitMix64::for_case(0xA64C_5EED, case);
        let sig = config.signature(&mut rng);
        let mut args: Vec<Type> = sig.args.iter().map(shape_type).collect();
        // Sprinkle the types randsig does not make into fixed positions.
        let fixed_len = sig.fixed.unwrap_or(args.len());
        if fixed_len > 0 && case % 3 == 0 {
            args[(case as usize) % fixed_len] = extras[(case as usize / 3) % extras.len()].clone();
        }
        let ret = sig.ret.as_ref().map_or_else(Type::void, shape_type);
        for policy in [Policy::LINUX, Policy::APPLE] {
            let plan = classify_with(policy, &ret, &args, sig.fixed)
                .unwrap_or_else(|e| panic!("{sig}: {e}"));
            plan.check()
                .unwrap_or_else(|e| panic!("{sig}: {e}\n{plan}"));
            assert_eq!(plan.args.len(), args.len());
            let locs = arg_locs(&plan);
            for (k, &(i, loc, size)) in locs.iter().enumerate() {
                match loc {
                    Loc::Gpr(r) | Loc::Vec(r) => assert!(r < 8, "{sig}\n{plan}"),
                    Loc::Stack(off) => assert!(off + size <= plan.stack_bytes, "{plan}"),
                    Loc::X87(_) => panic!("{plan}"),
                }
                for &(j, other, osize) in &locs[k + 1..] {
                    let clash = match (loc, other) {
                        (Loc::Stack(a), Loc::Stack(b)) => a < b + osize && b < a + size,
                        _ => loc == other,
                    };
                    assert!(!clash, "{sig}: args {i} and {j} share {loc:?}\n{plan}");
                }
            }
            for a in &plan.args {
                if let ArgPass::Direct(pieces) = &a.pass {
                    let regs: Vec<Loc> = pieces
                        .iter()
                        .map(|p| p.loc)
                        .filter(|l| !matches!(l, Loc::Stack(_)))
                        .collect();
                    // In registers entirely, or on the stack entirely.
                    assert!(regs.is_empty() || regs.len() == pieces.len(), "{plan}");
                    for w in regs.windows(2) {
                        let next = match w[0] {
                            Loc::Gpr(r) => Loc::Gpr(r + 1),
                            Loc::Vec(r) => Loc::Vec(r + 1),
                            other => other,
                        };
                        assert_eq!(w[1], next, "{plan}");
                    }
                }
                if policy == Policy::APPLE && a.variadic {
                    assert!(
                        !matches!(&a.pass, ArgPass::Direct(p) if p.iter().any(|p| !matches!(p.loc, Loc::Stack(_)))),
                        "{plan}"
                    );
                }
            }
            match &plan.ret.pass {
                RetPass::Direct(pieces) => {
                    for p in pieces {
                        assert!(matches!(p.loc, Loc::Gpr(0..=1) | Loc::Vec(0..=3)), "{plan}");
                    }
                }
                RetPass::Indirect { pointer, returned } => {
                    assert_eq!((*pointer, *returned), (Loc::Gpr(8), None));
                    assert!(ret.size() > 16, "{plan}");
                }
                RetPass::Void => assert!(ret.is_void()),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 1200);
}
