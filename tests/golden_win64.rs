//! Golden Microsoft x64 plans (`Abi::Win64`, `Abi::GnuW64`) for the
//! convention's tricky cases.
//!
//! Every expected listing was checked against gcc 12 (`gcc -O2 -S`) for the
//! same C signature declared `__attribute__((ms_abi))`: which registers a
//! caller loads, at which stack offsets it stores (the callee sees them 8
//! higher, past the return address), where a callee reads its arguments and
//! leaves its result. The C signature is quoted above each case. For
//! `long double` the libffi 3.4.4 behaviour of `FFI_WIN64` and `FFI_GNUW64`
//! was also observed, with `ffi_call` into a register-recording callee.

use jitffi::classify::classify;
use jitffi::{Abi, Type};

#[path = "support/build.rs"]
mod build;
use build::{arr, rep, st, un};

/// The printed plan, after checking its structural invariants.
fn plan(abi: Abi, ret: Type, args: &[Type], fixed: Option<usize>) -> String {
    let plan = classify(abi, &ret, args, fixed).unwrap();
    plan.check().unwrap();
    assert_eq!(plan.vector_count, None, "Win64 has no al count");
    plan.to_string()
}

#[track_caller]
fn golden(abi: Abi, ret: Type, args: &[Type], fixed: Option<usize>, want: &str) {
    let got = plan(abi, ret, args, fixed);
    assert_eq!(got, want, "\n--- got ---\n{got}--- want ---\n{want}");
}

/// Golden for both flavours: they agree on everything but `long double`.
#[track_caller]
fn golden_both(ret: Type, args: &[Type], fixed: Option<usize>, want_win64: &str) {
    golden(Abi::Win64, ret.clone(), args, fixed, want_win64);
    let want_gnu = want_win64.replacen("win64 ", "gnuw64 ", 1);
    golden(Abi::GnuW64, ret, args, fixed, &want_gnu);
}

#[test]
fn slots_are_shared_by_position() {
    // double f(int, double, int, float);
    // gcc: ecx, xmm1, r8d, xmm3 (xmm0 and rdx, xmm2 and r9 stay unused).
    golden_both(
        Type::f64(),
        &[Type::i32(), Type::f64(), Type::i32(), Type::f32()],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret double: [0..8) xmm0
  arg 0 int32_t: [0..4) rcx sext
  arg 1 double: [0..8) xmm1
  arg 2 int32_t: [0..4) r8 sext
  arg 3 float: [0..4) xmm3
",
    );
}

#[test]
fn four_doubles_fill_the_vector_slots() {
    // void f(double, double, double, double);  xmm0..xmm3, and the caller
    // still reserves the 32-byte shadow space.
    golden_both(
        Type::void(),
        &rep(Type::f64(), 4),
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret void: none
  arg 0 double: [0..8) xmm0
  arg 1 double: [0..8) xmm1
  arg 2 double: [0..8) xmm2
  arg 3 double: [0..8) xmm3
",
    );
}

#[test]
fn fifth_argument_goes_above_the_shadow_space() {
    // long f(long, long, long, long, long, int, double);
    // gcc: movq $5, 32(%rsp); movl $6, 40(%rsp); double at 48(%rsp).
    let mut args = rep(Type::i64(), 5);
    args.extend([Type::i32(), Type::f64()]);
    golden(
        Abi::GnuW64,
        Type::i64(),
        &args,
        None,
        "gnuw64 X86_64, stack 64 (shadow 32)
  ret int64_t: [0..8) rax
  arg 0 int64_t: [0..8) rcx
  arg 1 int64_t: [0..8) rdx
  arg 2 int64_t: [0..8) r8
  arg 3 int64_t: [0..8) r9
  arg 4 int64_t: [0..8) stack+32
  arg 5 int32_t: [0..4) stack+40 sext
  arg 6 double: [0..8) stack+48
",
    );
}

#[test]
fn small_aggregates_travel_in_integer_registers() {
    // void f(struct { char; }, struct { short; }, struct { float; },
    //        struct { float a, b; });
    // gcc: ecx = 1, edx = 2, r8d = the float's bits, r9 = both floats'.
    golden_both(
        Type::void(),
        &[
            st(&[Type::i8()]),
            st(&[Type::i16()]),
            st(&[Type::f32()]),
            st(&rep(Type::f32(), 2)),
        ],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret void: none
  arg 0 struct { int8_t; }: [0..1) rcx
  arg 1 struct { int16_t; }: [0..2) rdx
  arg 2 struct { float; }: [0..4) r8
  arg 3 struct { float; float; }: [0..8) r9
",
    );
}

#[test]
fn three_byte_struct_goes_by_reference() {
    // struct C3 { char a, b, c; };  struct C3 f(struct C3);
    // gcc: reads the argument through rdx, writes the result through rcx
    // and returns rcx in rax.
    let c3 = st(&rep(Type::i8(), 3));
    golden_both(
        c3.clone(),
        &[c3],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret struct { int8_t; int8_t; int8_t; }: sret ptr in rcx, returned in rax
  arg 0 struct { int8_t; int8_t; int8_t; }: copy, address in rdx
",
    );
}

#[test]
fn five_byte_array_struct_goes_by_reference() {
    // struct C5 { char c[5]; };  struct C5 f(struct C5);
    let c5 = st(&[arr(Type::i8(), 5)]);
    golden(
        Abi::Win64,
        c5.clone(),
        &[c5],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret struct { int8_t[5]; }: sret ptr in rcx, returned in rax
  arg 0 struct { int8_t[5]; }: copy, address in rdx
",
    );
}

#[test]
fn eight_byte_array_struct_by_value_both_ways() {
    // struct A4 { short s[4]; };  struct A4 f(struct A4, int);
    // gcc: the struct in rcx, k in edx, the result composed in rax.
    let a4 = st(&[arr(Type::i16(), 4)]);
    golden(
        Abi::Win64,
        a4.clone(),
        &[a4, Type::i32()],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret struct { int16_t[4]; }: [0..8) rax
  arg 0 struct { int16_t[4]; }: [0..8) rcx
  arg 1 int32_t: [0..4) rdx sext
",
    );
}

#[test]
fn large_structs_by_reference_on_the_stack() {
    // long f(long, long, long, long, struct { long a, b; },
    //        struct { long a, b, c; });
    // gcc callee: movq 40(%rsp), %rdx; movq 48(%rsp), %rax: the two
    // addresses in the fifth and sixth slots.
    let mut args = rep(Type::i64(), 4);
    args.extend([st(&rep(Type::i64(), 2)), st(&rep(Type::i64(), 3))]);
    golden_both(
        Type::i64(),
        &args,
        None,
        "win64 X86_64, stack 48 (shadow 32)
  ret int64_t: [0..8) rax
  arg 0 int64_t: [0..8) rcx
  arg 1 int64_t: [0..8) rdx
  arg 2 int64_t: [0..8) r8
  arg 3 int64_t: [0..8) r9
  arg 4 struct { int64_t; int64_t; }: copy, address in stack+32
  arg 5 struct { int64_t; int64_t; int64_t; }: copy, address in stack+40
",
    );
}

#[test]
fn sret_shifts_every_argument_one_slot() {
    // struct { double a, b; } f(int, double, int, double);
    // gcc: leaq buf, %rcx; edx = 1; xmm2 = 2.0; r9d = 3; 4.0 at 32(%rsp).
    golden_both(
        st(&rep(Type::f64(), 2)),
        &[Type::i32(), Type::f64(), Type::i32(), Type::f64()],
        None,
        "win64 X86_64, stack 48 (shadow 32)
  ret struct { double; double; }: sret ptr in rcx, returned in rax
  arg 0 int32_t: [0..4) rdx sext
  arg 1 double: [0..8) xmm2
  arg 2 int32_t: [0..4) r9 sext
  arg 3 double: [0..8) stack+32
",
    );
}

#[test]
fn float_pair_returns_in_rax() {
    // struct { float a, b; } f(float, float);
    // gcc: movabsq $..., %rax (both floats in one integer register).
    golden_both(
        st(&rep(Type::f32(), 2)),
        &[Type::f32(), Type::f32()],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret struct { float; float; }: [0..8) rax
  arg 0 float: [0..4) xmm0
  arg 1 float: [0..4) xmm1
",
    );
}

#[test]
fn struct_of_one_double_is_an_integer_slot() {
    // struct SD { double d; };  struct SD f(struct SD);
    // gcc: movq %rcx, %xmm0 ... movq %xmm0, %rax.
    let sd = st(&[Type::f64()]);
    golden_both(
        sd.clone(),
        &[sd],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret struct { double; }: [0..8) rax
  arg 0 struct { double; }: [0..8) rcx
",
    );
}

#[test]
fn unions_by_size() {
    // union U4 { float f; int i; };  union U16 { double d; char c[12]; };
    // int f(union U4, union U16);
    // gcc: the U4 in ecx, the U16 read through rdx.
    golden(
        Abi::GnuW64,
        Type::i32(),
        &[
            un(&[Type::f32(), Type::i32()]),
            un(&[Type::f64(), arr(Type::i8(), 12)]),
        ],
        None,
        "gnuw64 X86_64, stack 32 (shadow 32)
  ret int32_t: [0..4) rax sext
  arg 0 union { float; int32_t; }: [0..4) rcx
  arg 1 union { double; int8_t[12]; }: copy, address in rdx
",
    );
}

#[test]
fn variadic_doubles_are_duplicated() {
    // int printf(const char *, ...) called as printf(fmt, 1.5, 7, 2.5, 3.5);
    // gcc: rdx and xmm1 = 1.5, r8d = 7, r9 and xmm3 = 2.5, 3.5 at 32(%rsp).
    golden_both(
        Type::i32(),
        &[
            Type::pointer(),
            Type::f64(),
            Type::i32(),
            Type::f64(),
            Type::f64(),
        ],
        Some(1),
        "win64 X86_64, variadic after 1, stack 48 (shadow 32)
  ret int32_t: [0..4) rax sext
  arg 0 void *: [0..8) rcx
  arg 1 double (variadic): [0..8) xmm1, [0..8) rdx
  arg 2 int32_t (variadic): [0..4) r8 sext
  arg 3 double (variadic): [0..8) xmm3, [0..8) r9
  arg 4 double (variadic): [0..8) stack+32
",
    );
}

#[test]
fn fixed_double_of_a_variadic_call_is_not_duplicated() {
    // void f(double, ...) called as f(1.0, 2.0, 3.0, 4.0);
    // gcc: xmm0 = 1.0 only; rdx/xmm1, r8/xmm2, r9/xmm3 for the rest.
    golden(
        Abi::GnuW64,
        Type::void(),
        &rep(Type::f64(), 4),
        Some(1),
        "gnuw64 X86_64, variadic after 1, stack 32 (shadow 32)
  ret void: none
  arg 0 double: [0..8) xmm0
  arg 1 double (variadic): [0..8) xmm1, [0..8) rdx
  arg 2 double (variadic): [0..8) xmm2, [0..8) r8
  arg 3 double (variadic): [0..8) xmm3, [0..8) r9
",
    );
}

#[test]
fn variadic_call_with_sret() {
    // struct { double a, b; } f(const char *, ...) called as f("x", 2.0, 3.0);
    // gcc: rcx = buffer, rdx = "x", r8/xmm2 = 2.0, r9/xmm3 = 3.0.
    golden_both(
        st(&rep(Type::f64(), 2)),
        &[Type::pointer(), Type::f64(), Type::f64()],
        Some(1),
        "win64 X86_64, variadic after 1, stack 32 (shadow 32)
  ret struct { double; double; }: sret ptr in rcx, returned in rax
  arg 0 void *: [0..8) rdx
  arg 1 double (variadic): [0..8) xmm2, [0..8) r8
  arg 2 double (variadic): [0..8) xmm3, [0..8) r9
",
    );
}

#[test]
fn variadic_aggregates_and_references_use_the_integer_register() {
    // void f(int, ...) called as
    // f(1, (struct SD){2.0}, 3.0L, (double _Complex)1.0, 7.0, 8.0);
    // gcc: rdx = the struct's bits, r8 and r9 = addresses of the copies,
    // 7.0 and 8.0 at 32 and 40(%rsp). (gcc also loads the struct into
    // xmm1, which a variadic callee never reads; we do not.)
    golden(
        Abi::GnuW64,
        Type::void(),
        &[
            Type::i32(),
            st(&[Type::f64()]),
            Type::long_double(),
            Type::complex_f64(),
            Type::f64(),
            Type::f64(),
        ],
        Some(1),
        "gnuw64 X86_64, variadic after 1, stack 48 (shadow 32)
  ret void: none
  arg 0 int32_t: [0..4) rcx sext
  arg 1 struct { double; } (variadic): [0..8) rdx
  arg 2 long double (variadic): copy, address in r8
  arg 3 double _Complex (variadic): copy, address in r9
  arg 4 double (variadic): [0..8) stack+32
  arg 5 double (variadic): [0..8) stack+40
",
    );
}

#[test]
fn gnuw64_long_double_by_reference_and_through_memory() {
    // long double f(int, long double, long double);   (gcc ms_abi)
    // gcc: fldt (%r8); fldt (%r9); fstpt (%rcx); movq %rcx, %rax.
    // libffi FFI_GNUW64: rcx = rvalue, the slots hold the addresses.
    golden(
        Abi::GnuW64,
        Type::long_double(),
        &[Type::i32(), Type::long_double(), Type::long_double()],
        None,
        "gnuw64 X86_64, stack 32 (shadow 32)
  ret long double: sret ptr in rcx, returned in rax
  arg 0 int32_t: [0..4) rdx sext
  arg 1 long double: copy, address in r8
  arg 2 long double: copy, address in r9
",
    );
}

#[test]
fn win64_long_double_like_gnuw64() {
    // long double f(int, long double, long double);  under FFI_WIN64.
    // libffi 3.4.4 on x86-64 Linux passes each long double's address in
    // its slot (r8, r9 here), as for any 16-byte value, but aborts in
    // ffi_call on this return type (MSVC's long double is double, and its
    // result switch has no x87 case). We return it as gcc and FFI_GNUW64
    // do: through the hidden pointer in rcx.
    golden(
        Abi::Win64,
        Type::long_double(),
        &[Type::i32(), Type::long_double(), Type::long_double()],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret long double: sret ptr in rcx, returned in rax
  arg 0 int32_t: [0..4) rdx sext
  arg 1 long double: copy, address in r8
  arg 2 long double: copy, address in r9
",
    );
    // void f(long double, double);  FFI_WIN64: rcx = the long double's
    // address, xmm1 = the double.
    golden(
        Abi::Win64,
        Type::void(),
        &[Type::long_double(), Type::f64()],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret void: none
  arg 0 long double: copy, address in rcx
  arg 1 double: [0..8) xmm1
",
    );
}

#[test]
fn long_double_on_the_stack_by_reference() {
    // void f(long, long, long, long, long double, double);
    // gcc: leaq 48(%rsp), %rax; movq %rax, 32(%rsp); fstpt 48(%rsp);
    // the double at 40(%rsp).
    let mut args = rep(Type::i64(), 4);
    args.extend([Type::long_double(), Type::f64()]);
    golden_both(
        Type::void(),
        &args,
        None,
        "win64 X86_64, stack 48 (shadow 32)
  ret void: none
  arg 0 int64_t: [0..8) rcx
  arg 1 int64_t: [0..8) rdx
  arg 2 int64_t: [0..8) r8
  arg 3 int64_t: [0..8) r9
  arg 4 long double: copy, address in stack+32
  arg 5 double: [0..8) stack+40
",
    );
}

#[test]
fn struct_of_long_double_is_a_16_byte_aggregate() {
    // struct SLD { long double v; };  struct SLD f(struct SLD);
    // gcc: fldt (%rdx) ... fstpt (%rcx); movq %rcx, %rax. An aggregate, so
    // Win64 returns it through memory too.
    let s = st(&[Type::long_double()]);
    golden_both(
        s.clone(),
        &[s],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret struct { long double; }: sret ptr in rcx, returned in rax
  arg 0 struct { long double; }: copy, address in rdx
",
    );
}

#[test]
fn int128_by_reference_returned_in_xmm0() {
    // __int128 f(__int128, __int128);
    // gcc: reads both through rcx and rdx, returns with movdqa ..., %xmm0.
    golden_both(
        Type::i128(),
        &[Type::i128(), Type::i128()],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret __int128: [0..16) xmm0
  arg 0 __int128: copy, address in rcx
  arg 1 __int128: copy, address in rdx
",
    );
}

#[test]
fn struct_of_int128_returns_through_memory() {
    // struct SI { __int128 v; };  struct SI f(struct SI);
    // gcc: movq (%rdx) ...; stores through rcx; movq %rcx, %rax.
    let s = st(&[Type::i128()]);
    golden_both(
        s.clone(),
        &[s],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret struct { __int128; }: sret ptr in rcx, returned in rax
  arg 0 struct { __int128; }: copy, address in rdx
",
    );
}

#[test]
fn complex_float_is_an_eight_byte_integer_slot() {
    // float _Complex f(float _Complex);
    // gcc: splits rcx into two floats, composes the result in rax.
    golden_both(
        Type::complex_f32(),
        &[Type::complex_f32()],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret float _Complex: [0..8) rax
  arg 0 float _Complex: [0..8) rcx
",
    );
}

#[test]
fn complex_double_by_reference() {
    // double _Complex f(double _Complex, float _Complex);
    // gcc: movsd (%rdx) / movhpd 8(%rdx); the float pair from r8; stores
    // the result through rcx and returns rcx in rax.
    golden_both(
        Type::complex_f64(),
        &[Type::complex_f64(), Type::complex_f32()],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret double _Complex: sret ptr in rcx, returned in rax
  arg 0 double _Complex: copy, address in rdx
  arg 1 float _Complex: [0..8) r8
",
    );
}

#[test]
fn complex_long_double_by_reference() {
    // long double _Complex f(long double _Complex);
    // gcc: fldt (%rdx), fldt 16(%rdx); fstpt (%rcx), fstpt 16(%rcx).
    golden_both(
        Type::complex_long_double(),
        &[Type::complex_long_double()],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret long double _Complex: sret ptr in rcx, returned in rax
  arg 0 long double _Complex: copy, address in rdx
",
    );
}

#[test]
fn narrow_integers_are_extended() {
    // signed char f(signed char, unsigned short, short, unsigned char,
    //               signed char);
    // gcc caller: movsbl/movzwl/movzbl into ecx, edx, r8d, r9d, and
    // movl %r8d, 32(%rsp) for the fifth. We widen to 64 bits.
    golden(
        Abi::Win64,
        Type::i8(),
        &[Type::i8(), Type::u16(), Type::i16(), Type::u8(), Type::i8()],
        None,
        "win64 X86_64, stack 48 (shadow 32)
  ret int8_t: [0..1) rax sext
  arg 0 int8_t: [0..1) rcx sext
  arg 1 uint16_t: [0..2) rdx zext
  arg 2 int16_t: [0..2) r8 sext
  arg 3 uint8_t: [0..1) r9 zext
  arg 4 int8_t: [0..1) stack+32 sext
",
    );
}

#[test]
fn pointers_and_64_bit_integers() {
    // void *f(void *, unsigned long);  gcc: leaq (%rcx,%rdx), %rax.
    golden_both(
        Type::pointer(),
        &[Type::pointer(), Type::u64()],
        None,
        "win64 X86_64, stack 32 (shadow 32)
  ret void *: [0..8) rax
  arg 0 void *: [0..8) rcx
  arg 1 uint64_t: [0..8) rdx
",
    );
}
