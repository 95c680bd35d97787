//! Golden SysV x86-64 plans for the psABI's tricky cases.
//!
//! Every expected listing was checked against what gcc 12 (`gcc -O2 -S`)
//! does for the same C signature: which registers a caller loads, at which
//! stack offsets it stores, where a callee leaves its result. The C
//! signature is quoted above each case.

use jitffi::classify::classify;
use jitffi::{Abi, Type};

#[path = "support/build.rs"]
mod build;
use build::{arr, rep, st, un};

/// The printed plan, after checking its structural invariants.
fn plan(ret: Type, args: &[Type], fixed: Option<usize>) -> String {
    let plan = classify(Abi::SysV64, &ret, args, fixed).unwrap();
    plan.check().unwrap();
    plan.to_string()
}

#[track_caller]
fn golden(ret: Type, args: &[Type], fixed: Option<usize>, want: &str) {
    let got = plan(ret, args, fixed);
    assert_eq!(got, want, "\n--- got ---\n{got}--- want ---\n{want}");
}

#[test]
fn double_int_struct_is_sse_then_integer() {
    // struct DI { double d; int i; };  struct DI f(struct DI);
    // sizeof is 16: the int's eightbyte includes the tail padding (gcc
    // loads it with one movq).
    let di = st(&[Type::f64(), Type::i32()]);
    golden(
        di.clone(),
        &[di],
        None,
        "sysv64 X86_64, stack 0, al=1
  ret struct { double; int32_t; }: [0..8) xmm0, [8..16) rax
  arg 0 struct { double; int32_t; }: [0..8) xmm0, [8..16) rdi
",
    );
}

#[test]
fn long_double_struct_returns_in_rax_then_xmm0() {
    // struct { long l; double d; } f(struct { double d; long l; });
    let ld = st(&[Type::i64(), Type::f64()]);
    let dl = st(&[Type::f64(), Type::i64()]);
    golden(
        ld,
        &[dl],
        None,
        "sysv64 X86_64, stack 0, al=1
  ret struct { int64_t; double; }: [0..8) rax, [8..16) xmm0
  arg 0 struct { double; int64_t; }: [0..8) xmm0, [8..16) rdi
",
    );
}

#[test]
fn three_floats_take_two_sse_eightbytes() {
    // struct F3 { float a, b, c; };  struct F3 f(struct F3);
    let f3 = st(&rep(Type::f32(), 3));
    golden(
        f3.clone(),
        &[f3],
        None,
        "sysv64 X86_64, stack 0, al=2
  ret struct { float; float; float; }: [0..8) xmm0, [8..12) xmm1
  arg 0 struct { float; float; float; }: [0..8) xmm0, [8..12) xmm1
",
    );
}

#[test]
fn three_ints_take_two_gprs() {
    // struct I3 { int a, b, c; };  struct I3 f(struct I3);
    let i3 = st(&rep(Type::i32(), 3));
    golden(
        i3.clone(),
        &[i3],
        None,
        "sysv64 X86_64, stack 0, al=0
  ret struct { int32_t; int32_t; int32_t; }: [0..8) rax, [8..12) rdx
  arg 0 struct { int32_t; int32_t; int32_t; }: [0..8) rdi, [8..12) rsi
",
    );
}

#[test]
fn struct_over_16_bytes_goes_on_the_stack() {
    // void f(struct { long a, b, c; }, int);
    let l3 = st(&rep(Type::i64(), 3));
    golden(
        Type::void(),
        &[l3, Type::i32()],
        None,
        "sysv64 X86_64, stack 32, al=0
  ret void: none
  arg 0 struct { int64_t; int64_t; int64_t; }: [0..24) stack+0
  arg 1 int32_t: [0..4) rdi sext
",
    );
}

#[test]
fn struct_that_no_longer_fits_goes_wholly_to_the_stack() {
    // void f(long, long, long, long, long, struct { long a, b; }, int);
    // One GPR is left: the struct is not split, and the int after it
    // still gets r9.
    let mut args = rep(Type::i64(), 5);
    args.push(st(&rep(Type::i64(), 2)));
    args.push(Type::i32());
    golden(
        Type::void(),
        &args,
        None,
        "sysv64 X86_64, stack 16, al=0
  ret void: none
  arg 0 int64_t: [0..8) rdi
  arg 1 int64_t: [0..8) rsi
  arg 2 int64_t: [0..8) rdx
  arg 3 int64_t: [0..8) rcx
  arg 4 int64_t: [0..8) r8
  arg 5 struct { int64_t; int64_t; }: [0..16) stack+0
  arg 6 int32_t: [0..4) r9 sext
",
    );
}

#[test]
fn mixed_struct_needs_both_kinds_of_register() {
    // void f(long x6, struct { double d; long l; }, double);
    // No GPR is left, so the struct goes to the stack and xmm0 stays free
    // for the double after it.
    let mut args = rep(Type::i64(), 6);
    args.push(st(&[Type::f64(), Type::i64()]));
    args.push(Type::f64());
    golden(
        Type::void(),
        &args,
        None,
        "sysv64 X86_64, stack 16, al=1
  ret void: none
  arg 0 int64_t: [0..8) rdi
  arg 1 int64_t: [0..8) rsi
  arg 2 int64_t: [0..8) rdx
  arg 3 int64_t: [0..8) rcx
  arg 4 int64_t: [0..8) r8
  arg 5 int64_t: [0..8) r9
  arg 6 struct { double; int64_t; }: [0..16) stack+0
  arg 7 double: [0..8) xmm0
",
    );
}

#[test]
fn sret_consumes_rdi_and_comes_back_in_rax() {
    // struct { long a, b, c; } f(int, int);
    golden(
        st(&rep(Type::i64(), 3)),
        &[Type::i32(), Type::i32()],
        None,
        "sysv64 X86_64, stack 0, al=0
  ret struct { int64_t; int64_t; int64_t; }: sret ptr in rdi, returned in rax
  arg 0 int32_t: [0..4) rsi sext
  arg 1 int32_t: [0..4) rdx sext
",
    );
}

#[test]
fn struct_of_complex_long_double_is_returned_through_memory() {
    // struct { long double _Complex z; } f(struct { long double _Complex z; });
    let s = st(&[Type::complex_long_double()]);
    golden(
        s.clone(),
        &[s],
        None,
        "sysv64 X86_64, stack 32, al=0
  ret struct { long double _Complex; }: sret ptr in rdi, returned in rax
  arg 0 struct { long double _Complex; }: [0..32) stack+0
",
    );
}

#[test]
fn long_double_argument_in_memory_and_return_in_st0() {
    // long double f(int, long double, int);
    golden(
        Type::long_double(),
        &[Type::i32(), Type::long_double(), Type::i32()],
        None,
        "sysv64 X86_64, stack 16, al=0
  ret long double: [0..10) st0
  arg 0 int32_t: [0..4) rdi sext
  arg 1 long double: [0..16) stack+0
  arg 2 int32_t: [0..4) rsi sext
",
    );
}

#[test]
fn long_double_stack_slot_is_16_aligned() {
    // void f(long x6, int, long double);  the int at +0, the long double at +16.
    let mut args = rep(Type::i64(), 6);
    args.extend([Type::i32(), Type::long_double()]);
    let got = plan(Type::void(), &args, None);
    assert!(got.starts_with("sysv64 X86_64, stack 32, al=0\n"), "{got}");
    assert!(
        got.ends_with(
            "  arg 6 int32_t: [0..4) stack+0 sext
  arg 7 long double: [0..16) stack+16
"
        ),
        "{got}"
    );
}

#[test]
fn struct_of_one_long_double_behaves_like_long_double() {
    // struct SLD { long double x; };  struct SLD f(struct SLD);
    let s = st(&[Type::long_double()]);
    golden(
        s.clone(),
        &[s],
        None,
        "sysv64 X86_64, stack 16, al=0
  ret struct { long double; }: [0..10) st0
  arg 0 struct { long double; }: [0..16) stack+0
",
    );
}

#[test]
fn complex_float() {
    // float _Complex f(float _Complex);  both halves in the low 8 bytes of xmm0.
    golden(
        Type::complex_f32(),
        &[Type::complex_f32()],
        None,
        "sysv64 X86_64, stack 0, al=1
  ret float _Complex: [0..8) xmm0
  arg 0 float _Complex: [0..8) xmm0
",
    );
}

#[test]
fn complex_double() {
    // double _Complex f(double _Complex);
    golden(
        Type::complex_f64(),
        &[Type::complex_f64()],
        None,
        "sysv64 X86_64, stack 0, al=2
  ret double _Complex: [0..8) xmm0, [8..16) xmm1
  arg 0 double _Complex: [0..8) xmm0, [8..16) xmm1
",
    );
}

#[test]
fn complex_long_double() {
    // long double _Complex f(int, long double _Complex);
    // Real part in st0, imaginary in st1; the argument in memory.
    golden(
        Type::complex_long_double(),
        &[Type::i32(), Type::complex_long_double()],
        None,
        "sysv64 X86_64, stack 32, al=0
  ret long double _Complex: [0..10) st0, [16..26) st1
  arg 0 int32_t: [0..4) rdi sext
  arg 1 long double _Complex: [0..32) stack+0
",
    );
}

#[test]
fn complex_float_member_straddling_eightbytes() {
    // void f(struct { char c; float _Complex z; });  z at offset 4.
    // gcc: rdi gets bytes 0..8 (char + real part), xmm0 the imaginary part.
    golden(
        Type::void(),
        &[st(&[Type::i8(), Type::complex_f32()])],
        None,
        "sysv64 X86_64, stack 0, al=1
  ret void: none
  arg 0 struct { int8_t; float _Complex; }: [0..8) rdi, [8..12) xmm0
",
    );
}

#[test]
fn int128_in_a_register_pair() {
    // __int128 f(__int128);
    golden(
        Type::i128(),
        &[Type::i128()],
        None,
        "sysv64 X86_64, stack 0, al=0
  ret __int128: [0..8) rax, [8..16) rdx
  arg 0 __int128: [0..8) rdi, [8..16) rsi
",
    );
}

#[test]
fn int128_with_one_gpr_left_goes_to_the_stack() {
    // void f(int x5, __int128, int);
    let mut args = rep(Type::i32(), 5);
    args.extend([Type::i128(), Type::i32()]);
    golden(
        Type::void(),
        &args,
        None,
        "sysv64 X86_64, stack 16, al=0
  ret void: none
  arg 0 int32_t: [0..4) rdi sext
  arg 1 int32_t: [0..4) rsi sext
  arg 2 int32_t: [0..4) rdx sext
  arg 3 int32_t: [0..4) rcx sext
  arg 4 int32_t: [0..4) r8 sext
  arg 5 __int128: [0..16) stack+0
  arg 6 int32_t: [0..4) r9 sext
",
    );
}

#[test]
fn int128_stack_slot_is_16_aligned() {
    // void f(int, long x5, int, __int128);  int at +0, __int128 at +16.
    let mut args = vec![Type::i32()];
    args.extend(rep(Type::i64(), 5));
    args.extend([Type::i32(), Type::i128()]);
    golden(
        Type::void(),
        &args,
        None,
        "sysv64 X86_64, stack 32, al=0
  ret void: none
  arg 0 int32_t: [0..4) rdi sext
  arg 1 int64_t: [0..8) rsi
  arg 2 int64_t: [0..8) rdx
  arg 3 int64_t: [0..8) rcx
  arg 4 int64_t: [0..8) r8
  arg 5 int64_t: [0..8) r9
  arg 6 int32_t: [0..4) stack+0 sext
  arg 7 __int128: [0..16) stack+16
",
    );
}

#[test]
fn unions() {
    // union { float f; int i; } f(union { float f; int i; }, union { float f; float g; });
    let fi = un(&[Type::f32(), Type::i32()]);
    let ff = un(&[Type::f32(), Type::f32()]);
    golden(
        fi.clone(),
        &[fi, ff],
        None,
        "sysv64 X86_64, stack 0, al=1
  ret union { float; int32_t; }: [0..4) rax
  arg 0 union { float; int32_t; }: [0..4) rdi
  arg 1 union { float; float; }: [0..4) xmm0
",
    );
}

#[test]
fn unions_with_long_double() {
    // void f(union { long double ld; struct { long a, b; } s; },
    //        union { long double ld; long l; },
    //        union { long double ld; double d; });
    // INTEGER beats X87 in the merge: the first travels in rdi/rsi (gcc
    // >= 4.4). The second's upper half is a lone X87UP and the third
    // merges X87 with SSE: both go to memory.
    let a = un(&[Type::long_double(), st(&rep(Type::i64(), 2))]);
    let b = un(&[Type::long_double(), Type::i64()]);
    let c = un(&[Type::long_double(), Type::f64()]);
    golden(
        a.clone(),
        &[a, b, c],
        None,
        "sysv64 X86_64, stack 32, al=0
  ret union { long double; struct { int64_t; int64_t; }; }: [0..8) rax, [8..16) rdx
  arg 0 union { long double; struct { int64_t; int64_t; }; }: [0..8) rdi, [8..16) rsi
  arg 1 union { long double; int64_t; }: [0..16) stack+0
  arg 2 union { long double; double; }: [0..16) stack+16
",
    );
}

#[test]
fn arrays_as_members() {
    // struct { char c[3]; } f(struct { float f[4]; }, struct { char c[3]; });
    let fa4 = st(&[arr(Type::f32(), 4)]);
    let ca3 = st(&[arr(Type::i8(), 3)]);
    golden(
        ca3.clone(),
        &[fa4, ca3],
        None,
        "sysv64 X86_64, stack 0, al=2
  ret struct { int8_t[3]; }: [0..3) rax
  arg 0 struct { float[4]; }: [0..8) xmm0, [8..16) xmm1
  arg 1 struct { int8_t[3]; }: [0..3) rdi
",
    );
}

#[test]
fn narrow_integers_are_extended() {
    // int8_t f(int8_t, uint16_t, int32_t, uint32_t, int16_t, uint8_t, int8_t, uint16_t);
    // The last two on the stack keep their extension.
    let args = [
        Type::i8(),
        Type::u16(),
        Type::i32(),
        Type::u32(),
        Type::i16(),
        Type::u8(),
        Type::i8(),
        Type::u16(),
    ];
    golden(
        Type::i8(),
        &args,
        None,
        "sysv64 X86_64, stack 16, al=0
  ret int8_t: [0..1) rax sext
  arg 0 int8_t: [0..1) rdi sext
  arg 1 uint16_t: [0..2) rsi zext
  arg 2 int32_t: [0..4) rdx sext
  arg 3 uint32_t: [0..4) rcx zext
  arg 4 int16_t: [0..2) r8 sext
  arg 5 uint8_t: [0..1) r9 zext
  arg 6 int8_t: [0..1) stack+0 sext
  arg 7 uint16_t: [0..2) stack+8 zext
",
    );
}

#[test]
fn narrow_unsigned_return() {
    // uint16_t f(void *);  the stub widens the result to a full slot.
    golden(
        Type::u16(),
        &[Type::pointer()],
        None,
        "sysv64 X86_64, stack 0, al=0
  ret uint16_t: [0..2) rax zext
  arg 0 void *: [0..8) rdi
",
    );
}

#[test]
fn nine_doubles_spill_one_to_the_stack() {
    // double f(double x9, float);  the ninth double at +0, the float at +8.
    let mut args = rep(Type::f64(), 9);
    args.push(Type::f32());
    golden(
        Type::f64(),
        &args,
        None,
        "sysv64 X86_64, stack 16, al=8
  ret double: [0..8) xmm0
  arg 0 double: [0..8) xmm0
  arg 1 double: [0..8) xmm1
  arg 2 double: [0..8) xmm2
  arg 3 double: [0..8) xmm3
  arg 4 double: [0..8) xmm4
  arg 5 double: [0..8) xmm5
  arg 6 double: [0..8) xmm6
  arg 7 double: [0..8) xmm7
  arg 8 double: [0..8) stack+0
  arg 9 float: [0..4) stack+8
",
    );
}

#[test]
fn printf_like_variadic_sets_al() {
    // printf("%d %f %d", 1, 2.0, 3): gcc sets al=1.
    golden(
        Type::i32(),
        &[Type::pointer(), Type::i32(), Type::f64(), Type::i32()],
        Some(1),
        "sysv64 X86_64, variadic after 1, stack 0, al=1
  ret int32_t: [0..4) rax sext
  arg 0 void *: [0..8) rdi
  arg 1 int32_t (variadic): [0..4) rsi sext
  arg 2 double (variadic): [0..8) xmm0
  arg 3 int32_t (variadic): [0..4) rdx sext
",
    );
}

#[test]
fn variadic_aggregates_and_long_double() {
    // int vfn(int, ...) called as vfn(1, (struct F3){..}, 1.0L, 2.0): the
    // struct in xmm0/xmm1, the long double in memory, the double in xmm2.
    let f3 = st(&rep(Type::f32(), 3));
    golden(
        Type::i32(),
        &[Type::i32(), f3, Type::long_double(), Type::f64()],
        Some(1),
        "sysv64 X86_64, variadic after 1, stack 16, al=3
  ret int32_t: [0..4) rax sext
  arg 0 int32_t: [0..4) rdi sext
  arg 1 struct { float; float; float; } (variadic): [0..8) xmm0, [8..12) xmm1
  arg 2 long double (variadic): [0..16) stack+0
  arg 3 double (variadic): [0..8) xmm2
",
    );
}

#[test]
fn design_signature_s5() {
    // double f(int, double, int64_t, float, void *, int8_t, uint16_t, double);
    let args = [
        Type::i32(),
        Type::f64(),
        Type::i64(),
        Type::f32(),
        Type::pointer(),
        Type::i8(),
        Type::u16(),
        Type::f64(),
    ];
    golden(
        Type::f64(),
        &args,
        None,
        "sysv64 X86_64, stack 0, al=3
  ret double: [0..8) xmm0
  arg 0 int32_t: [0..4) rdi sext
  arg 1 double: [0..8) xmm0
  arg 2 int64_t: [0..8) rsi
  arg 3 float: [0..4) xmm1
  arg 4 void *: [0..8) rdx
  arg 5 int8_t: [0..1) rcx sext
  arg 6 uint16_t: [0..2) r8 zext
  arg 7 double: [0..8) xmm2
",
    );
}

#[test]
fn void_void() {
    golden(
        Type::void(),
        &[],
        None,
        "sysv64 X86_64, stack 0, al=0
  ret void: none
",
    );
}

/// Plans also carry the packed layout the packed entry form uses.
#[test]
fn packed_layout_is_filled() {
    let p = classify(
        Abi::SysV64,
        &Type::void(),
        &[Type::u8(), Type::long_double(), Type::f32()],
        None,
    )
    .unwrap();
    assert_eq!(p.packed_offsets, vec![0, 16, 32]);
    assert_eq!(p.packed_size, 40);
}
