/* Closures of every kind of signature, called from C compiled by gcc.

   Run against our libffi.so.8 and, compiled against the system's
   <ffi.h>, against the system libffi: both must print the same lines.
   Covers every scalar type, structs by value (small, mixed, SSE pairs,
   memory/sret, under register pressure), long double, complex, a
   variadic cif called as a variadic function, Win64 closures called
   through ms_abi pointers (x86-64), records bigger than an ffi_closure, closures
   in the client's own double-mapped (memfd) and RWX memory, and raw and
   Java raw closures.

   Left out, because libffi 3.4.4 disagrees with gcc on x86-64: a
   returned struct whose only member is a long double (gcc: st(0);
   libffi: rax:rdx); closure_jitffi.c checks it against ours alone.
   SPDX-License-Identifier: MIT OR Apache-2.0 */

#define _GNU_SOURCE
#include "closure_common.h"

#include <complex.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- scalars: T f(T a, int k, T b) = a * k + b -------------------------- */

/* How a handler stores a result: narrow integers widened to ffi_arg. */
#define STORE_UNSIGNED(T, ret, v) (*(ffi_arg *)(ret) = (ffi_arg)(T)(v))
#define STORE_SIGNED(T, ret, v) (*(ffi_sarg *)(ret) = (ffi_sarg)(T)(v))
#define STORE_PLAIN(T, ret, v) (*(T *)(ret) = (T)(v))

#define SCALAR(name, T, ft, STORE, a0, k0, b0, PRINT)                        \
  static void h_##name(ffi_cif *cif, void *ret, void **args, void *ud) {   \
    T a = *(T *)args[0];                                                   \
    int k = *(int *)args[1];                                               \
    T b = *(T *)args[2];                                                   \
    (void)cif;                                                             \
    ++*(int *)ud;                                                          \
    STORE(T, ret, a * (T)k + b);                                           \
  }                                                                        \
  static void t_##name(void) {                                             \
    ffi_cif cif;                                                           \
    ffi_type *at[3] = {&ft, &ffi_type_sint32, &ft};                        \
    ffi_closure *c;                                                        \
    int calls = 0;                                                         \
    prep(&cif, FFI_DEFAULT_ABI, 3, &ft, at);                               \
    T (*f)(T, int, T) =                                                    \
        (T(*)(T, int, T))closure_for(&cif, h_##name, &calls, &c);          \
    T a = a0, b = b0;                                                      \
    int k = k0;                                                            \
    T got = f(a, k, b);                                                    \
    T want = (T)(a * (T)k + b);                                            \
    printf("%-12s ", #name);                                               \
    PRINT(got);                                                            \
    printf("\n");                                                          \
    CHECK(got == want && calls == 1, "%s: calls %d", #name, calls);        \
    ffi_closure_free(c);                                                   \
  }

#define P_U(v) printf("%llu", (unsigned long long)(v))
#define P_S(v) printf("%lld", (long long)(v))
#define P_F(v) printf("%.9g", (double)(v))
#define P_D(v) printf("%.17g", (double)(v))
#define P_LD(v) printf("%.21Lg", (long double)(v))
#define P_CF(v) printf("%.9g%+.9gi", (double)crealf(v), (double)cimagf(v))
#define P_CD(v) printf("%.17g%+.17gi", creal(v), cimag(v))
#define P_CLD(v) printf("%.21Lg%+.21Lgi", creall(v), cimagl(v))

SCALAR(uint8, uint8_t, ffi_type_uint8, STORE_UNSIGNED, 200, 3, 7, P_U)
SCALAR(sint8, int8_t, ffi_type_sint8, STORE_SIGNED, -100, 3, 7, P_S)
SCALAR(uint16, uint16_t, ffi_type_uint16, STORE_UNSIGNED, 60000, 3, 9, P_U)
SCALAR(sint16, int16_t, ffi_type_sint16, STORE_SIGNED, -30000, 2, 11, P_S)
SCALAR(uint32, uint32_t, ffi_type_uint32, STORE_UNSIGNED, 4000000000u, 3, 5,
       P_U)
SCALAR(sint32, int32_t, ffi_type_sint32, STORE_SIGNED, -2000000000, 1, -5,
       P_S)
SCALAR(uint64, uint64_t, ffi_type_uint64, STORE_PLAIN,
       0xFEDCBA9876543210ull, 3, 1, P_U)
SCALAR(sint64, int64_t, ffi_type_sint64, STORE_PLAIN, -0x123456789abcll, -7,
       3, P_S)
SCALAR(float, float, ffi_type_float, STORE_PLAIN, 1.25f, -3, 0.5f, P_F)
SCALAR(double, double, ffi_type_double, STORE_PLAIN, 1e300, 2, -3.5, P_D)
SCALAR(longdouble, long double, ffi_type_longdouble, STORE_PLAIN, 1e4000L,
       -2, 0.25L, P_LD)
SCALAR(cfloat, float _Complex, ffi_type_complex_float, STORE_PLAIN,
       1.5f + 2.0f * I, 3, -0.5f + 0.25f * I, P_CF)
SCALAR(cdouble, double _Complex, ffi_type_complex_double, STORE_PLAIN,
       -1.5 + 1e100 * I, 2, 0.125 - 3.0 * I, P_CD)
SCALAR(cldouble, long double _Complex, ffi_type_complex_longdouble,
       STORE_PLAIN, 1e-4000L + 2.5L * I, 4, -1.0L + 1e4000L * I, P_CLD)

/* void(void) and a pointer in, pointer out. */
static void h_void(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)cif, (void)ret, (void)args;
  ++*(int *)ud;
}

static void h_ptr(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)cif, (void)ud;
  char *p = *(char **)args[0];
  int k = *(int *)args[1];
  *(char **)ret = p + k;
}

static void t_void_and_pointer(void) {
  ffi_cif cif;
  ffi_closure *c;
  int calls = 0;
  prep(&cif, FFI_DEFAULT_ABI, 0, &ffi_type_void, NULL);
  void (*f)(void) = (void (*)(void))closure_for(&cif, h_void, &calls, &c);
  f();
  f();
  printf("void         calls=%d\n", calls);
  CHECK(calls == 2, "void: %d calls", calls);
  ffi_closure_free(c);

  ffi_cif pcif;
  ffi_type *at[2] = {&ffi_type_pointer, &ffi_type_sint32};
  prep(&pcif, FFI_DEFAULT_ABI, 2, &ffi_type_pointer, at);
  char *(*g)(char *, int) =
      (char *(*)(char *, int))closure_for(&pcif, h_ptr, NULL, &c);
  static char text[] = "closures";
  char *r = g(text, 3);
  printf("pointer      %s\n", r);
  CHECK(r == text + 3, "pointer");
  ffi_closure_free(c);
}

/* ---- many mixed arguments: registers run out, the rest on the stack ---- */

typedef double (*many_fn)(int8_t, double, uint16_t, float, int64_t, void *,
                          double, int, float, long double, uint8_t, double,
                          int32_t, double, double, double, double, int64_t,
                          float, uint32_t);

static ffi_type *many_types[20] = {
    &ffi_type_sint8,  &ffi_type_double,     &ffi_type_uint16, &ffi_type_float,
    &ffi_type_sint64, &ffi_type_pointer,    &ffi_type_double, &ffi_type_sint32,
    &ffi_type_float,  &ffi_type_longdouble, &ffi_type_uint8,  &ffi_type_double,
    &ffi_type_sint32, &ffi_type_double,     &ffi_type_double, &ffi_type_double,
    &ffi_type_double, &ffi_type_sint64,     &ffi_type_float,  &ffi_type_uint32};

static double many_value(int i, void *arg) {
  switch (many_types[i]->type) {
  case FFI_TYPE_SINT8: return *(int8_t *)arg;
  case FFI_TYPE_UINT8: return *(uint8_t *)arg;
  case FFI_TYPE_UINT16: return *(uint16_t *)arg;
  case FFI_TYPE_SINT32: return *(int32_t *)arg;
  case FFI_TYPE_UINT32: return *(uint32_t *)arg;
  case FFI_TYPE_SINT64: return (double)*(int64_t *)arg;
  case FFI_TYPE_FLOAT: return *(float *)arg;
  case FFI_TYPE_DOUBLE: return *(double *)arg;
  case FFI_TYPE_LONGDOUBLE: return (double)*(long double *)arg;
  case FFI_TYPE_POINTER: return (double)(*(char **)arg - (char *)0x1000);
  }
  return -1e9;
}

static void h_many(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)ud;
  double sum = 0;
  for (unsigned i = 0; i < cif->nargs; i++) {
    double v = many_value((int)i, args[i]);
    printf(" %g", v);
    sum += v * (i + 1);
  }
  printf("\n");
  *(double *)ret = sum;
}

static void t_many(void) {
  ffi_cif cif;
  ffi_closure *c;
  prep(&cif, FFI_DEFAULT_ABI, 20, &ffi_type_double, many_types);
  many_fn f = (many_fn)closure_for(&cif, h_many, NULL, &c);
  printf("many        ");
  double got = f(-5, 1.5, 65535, 2.25f, -(1ll << 40), (char *)0x1000 + 77,
                 -0.75, -123456, 8.5f, 1.0e10L, 255, 3.0, 99, 4.0, 5.0, 6.0,
                 7.0, 1ll << 50, -9.5f, 4000000000u);
  double want = -5 * 1 + 1.5 * 2 + 65535 * 3 + 2.25 * 4 +
                -(double)(1ll << 40) * 5 + 77 * 6 + -0.75 * 7 + -123456 * 8 +
                8.5 * 9 + 1.0e10 * 10 + 255 * 11 + 3.0 * 12 + 99 * 13 +
                4.0 * 14 + 5.0 * 15 + 6.0 * 16 + 7.0 * 17 +
                (double)(1ll << 50) * 18 + -9.5 * 19 + 4000000000.0 * 20;
  printf("many         %.17g\n", got);
  CHECK(got == want, "many: %.17g != %.17g", got, want);
  ffi_closure_free(c);
}

/* ---- structs by value --------------------------------------------------- */

typedef struct { char a; short b; int c; } S1;          /* INTEGER */
typedef struct { float f; int i; double d; } S2;        /* INTEGER, SSE */
typedef struct { double x, y; } S3;                     /* SSE, SSE */
typedef struct { float a, b, c; } S4;                   /* SSE, SSE */
typedef struct { int64_t a, b, c, d; } S5;              /* MEMORY (sret) */
typedef struct { uint8_t a, b, c; } S6;                 /* 3 bytes */
typedef struct { double d; char c; } S7;                /* SSE, INTEGER */
typedef struct { int64_t a, b; } S8;                    /* INTEGER, INTEGER */
typedef struct { S3 in; float f; } S9;                  /* nested, 24: MEMORY */

static ffi_type *s1_el[] = {&ffi_type_sint8, &ffi_type_sint16,
                            &ffi_type_sint32, NULL};
static ffi_type *s2_el[] = {&ffi_type_float, &ffi_type_sint32,
                            &ffi_type_double, NULL};
static ffi_type *s3_el[] = {&ffi_type_double, &ffi_type_double, NULL};
static ffi_type *s4_el[] = {&ffi_type_float, &ffi_type_float, &ffi_type_float,
                            NULL};
static ffi_type *s5_el[] = {&ffi_type_sint64, &ffi_type_sint64,
                            &ffi_type_sint64, &ffi_type_sint64, NULL};
static ffi_type *s6_el[] = {&ffi_type_uint8, &ffi_type_uint8, &ffi_type_uint8,
                            NULL};
static ffi_type *s7_el[] = {&ffi_type_double, &ffi_type_sint8, NULL};
static ffi_type *s8_el[] = {&ffi_type_sint64, &ffi_type_sint64, NULL};
static ffi_type s1_t = {0, 0, FFI_TYPE_STRUCT, s1_el};
static ffi_type s2_t = {0, 0, FFI_TYPE_STRUCT, s2_el};
static ffi_type s3_t = {0, 0, FFI_TYPE_STRUCT, s3_el};
static ffi_type s4_t = {0, 0, FFI_TYPE_STRUCT, s4_el};
static ffi_type s5_t = {0, 0, FFI_TYPE_STRUCT, s5_el};
static ffi_type s6_t = {0, 0, FFI_TYPE_STRUCT, s6_el};
static ffi_type s7_t = {0, 0, FFI_TYPE_STRUCT, s7_el};
static ffi_type s8_t = {0, 0, FFI_TYPE_STRUCT, s8_el};
static ffi_type *s9_el[] = {&s3_t, &ffi_type_float, NULL};
static ffi_type s9_t = {0, 0, FFI_TYPE_STRUCT, s9_el};

/* S f(S a, int k, S b): every member a.m * k + b.m. */
#define COMBINE1(a, k, b) { (char)(a.a * k + b.a), (short)(a.b * k + b.b), a.c * k + b.c }
#define COMBINE2(a, k, b) { a.f * k + b.f, a.i * k + b.i, a.d * k + b.d }
#define COMBINE3(a, k, b) { a.x * k + b.x, a.y * k + b.y }
#define COMBINE4(a, k, b) { a.a * k + b.a, a.b * k + b.b, a.c * k + b.c }
#define COMBINE5(a, k, b) { a.a * k + b.a, a.b * k + b.b, a.c * k + b.c, a.d * k + b.d }
#define COMBINE6(a, k, b) { (uint8_t)(a.a * k + b.a), (uint8_t)(a.b * k + b.b), (uint8_t)(a.c * k + b.c) }
#define COMBINE7(a, k, b) { a.d * k + b.d, (char)(a.c * k + b.c) }
#define COMBINE8(a, k, b) { a.a * k + b.a, a.b * k + b.b }
#define COMBINE9(a, k, b) { { a.in.x * k + b.in.x, a.in.y * k + b.in.y }, a.f * k + b.f }

#define PRINT1(s) printf("%d %d %d", s.a, s.b, s.c)
#define PRINT2(s) printf("%.9g %d %.17g", (double)s.f, s.i, s.d)
#define PRINT3(s) printf("%.17g %.17g", s.x, s.y)
#define PRINT4(s) printf("%.9g %.9g %.9g", (double)s.a, (double)s.b, (double)s.c)
#define PRINT5(s) printf("%lld %lld %lld %lld", (long long)s.a, (long long)s.b, (long long)s.c, (long long)s.d)
#define PRINT6(s) printf("%u %u %u", s.a, s.b, s.c)
#define PRINT7(s) printf("%.17g %d", s.d, s.c)
#define PRINT8(s) printf("%lld %lld", (long long)s.a, (long long)s.b)
#define PRINT9(s) printf("%.17g %.17g %.9g", s.in.x, s.in.y, (double)s.f)

/* Member-wise equality: padding bytes are unspecified. */
#define EQ1(P, Q) (P.a == Q.a && P.b == Q.b && P.c == Q.c)
#define EQ2(P, Q) (P.f == Q.f && P.i == Q.i && P.d == Q.d)
#define EQ3(P, Q) (P.x == Q.x && P.y == Q.y)
#define EQ4(P, Q) EQ1(P, Q)
#define EQ5(P, Q) (EQ1(P, Q) && P.d == Q.d)
#define EQ6(P, Q) EQ1(P, Q)
#define EQ7(P, Q) (P.d == Q.d && P.c == Q.c)
#define EQ8(P, Q) (P.a == Q.a && P.b == Q.b)
#define EQ9(P, Q) (EQ3(P.in, Q.in) && P.f == Q.f)

#define STRUCT_CASE(n, A, B)                                               \
  static void h_s##n(ffi_cif *cif, void *ret, void **args, void *ud) {     \
    (void)cif, (void)ud;                                                   \
    S##n a = *(S##n *)args[0];                                             \
    int k = *(int *)args[1];                                               \
    S##n b = *(S##n *)args[2];                                             \
    S##n r = COMBINE##n(a, k, b);                                          \
    *(S##n *)ret = r;                                                      \
  }                                                                        \
  static void t_s##n(void) {                                               \
    ffi_cif cif;                                                           \
    ffi_type *at[3] = {&s##n##_t, &ffi_type_sint32, &s##n##_t};            \
    ffi_closure *c;                                                        \
    prep(&cif, FFI_DEFAULT_ABI, 3, &s##n##_t, at);                         \
    CHECK(s##n##_t.size == sizeof(S##n), "S%d size %zu", n,               \
          s##n##_t.size);                                                  \
    S##n (*f)(S##n, int, S##n) =                                           \
        (S##n(*)(S##n, int, S##n))closure_for(&cif, h_s##n, NULL, &c);    \
    S##n a = A, b = B;                                                     \
    int k = -3;                                                            \
    S##n got = f(a, k, b);                                                 \
    S##n want = COMBINE##n(a, k, b);                                       \
    printf("struct S%d    ", n);                                           \
    PRINT##n(got);                                                         \
    printf("\n");                                                          \
    CHECK(EQ##n(got, want), "S%d", n);                                     \
    ffi_closure_free(c);                                                   \
  }

STRUCT_CASE(1, ((S1){5, -300, 100000}), ((S1){-2, 7, -9}))
STRUCT_CASE(2, ((S2){1.5f, -7, 2.25}), ((S2){0.5f, 3, -1e200}))
STRUCT_CASE(3, ((S3){1.25, -2.5}), ((S3){1e-300, 7.0}))
STRUCT_CASE(4, ((S4){1.0f, 2.0f, -3.0f}), ((S4){0.25f, 0.5f, 0.75f}))
STRUCT_CASE(5, ((S5){1, -2, 1ll << 40, -(1ll << 50)}), ((S5){9, 8, 7, 6}))
STRUCT_CASE(6, ((S6){1, 2, 250}), ((S6){10, 20, 30}))
STRUCT_CASE(7, ((S7){-0.5, 9}), ((S7){100.0, -1}))
STRUCT_CASE(8, ((S8){1ll << 33, -5}), ((S8){3, 1ll << 60}))
STRUCT_CASE(9, ((S9){{1.5, 2.5}, 3.5f}), ((S9){{-1, -2}, 0.125f}))

/* An S8 (two INTEGER eightbytes) when only r9 is left goes wholly on the
   stack; the S2 after it still gets registers. */
static void h_pressure(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)cif, (void)ud;
  int64_t sum = 0;
  for (int i = 0; i < 5; i++) sum += *(int *)args[i] * (i + 1);
  S8 s = *(S8 *)args[5];
  S2 t = *(S2 *)args[6];
  int64_t last = *(int64_t *)args[7];
  sum += s.a * 10 + s.b * 100 + (int64_t)(t.f * 4) + t.i * 1000 +
         (int64_t)(t.d * 8) + last * 7;
  *(int64_t *)ret = sum;
}

static void t_pressure(void) {
  ffi_cif cif;
  ffi_type *at[8] = {&ffi_type_sint32, &ffi_type_sint32, &ffi_type_sint32,
                     &ffi_type_sint32, &ffi_type_sint32, &s8_t,
                     &s2_t,            &ffi_type_sint64};
  ffi_closure *c;
  prep(&cif, FFI_DEFAULT_ABI, 8, &ffi_type_sint64, at);
  int64_t (*f)(int, int, int, int, int, S8, S2, int64_t) =
      (int64_t(*)(int, int, int, int, int, S8, S2, int64_t))closure_for(
          &cif, h_pressure, NULL, &c);
  S8 s = {3, -4};
  S2 t = {2.5f, 6, 0.25};
  int64_t got = f(1, 2, 3, 4, 5, s, t, -11);
  int64_t want = 1 + 4 + 9 + 16 + 25 + 30 - 400 + 10 + 6000 + 2 - 77;
  printf("pressure     %lld\n", (long long)got);
  CHECK(got == want, "pressure %lld != %lld", (long long)got,
        (long long)want);
  ffi_closure_free(c);
}

/* A struct holding a long double, passed in memory, and a long double
   return after it. */
typedef struct { long double v; int tag; } SL;
static ffi_type *sl_el[] = {&ffi_type_longdouble, &ffi_type_sint32, NULL};
static ffi_type sl_t = {0, 0, FFI_TYPE_STRUCT, sl_el};

static void h_sl(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)cif, (void)ud;
  SL s = *(SL *)args[0];
  long double x = *(long double *)args[1];
  *(long double *)ret = s.v * s.tag + x;
}

static void t_struct_long_double(void) {
  ffi_cif cif;
  ffi_type *at[2] = {&sl_t, &ffi_type_longdouble};
  ffi_closure *c;
  prep(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_longdouble, at);
  long double (*f)(SL, long double) =
      (long double (*)(SL, long double))closure_for(&cif, h_sl, NULL, &c);
  SL s = {1.5L, -4};
  long double got = f(s, 1e-10L);
  printf("struct SL    %.21Lg\n", got);
  CHECK(got == 1.5L * -4 + 1e-10L, "SL");
  ffi_closure_free(c);
}

/* ---- variadic ------------------------------------------------------------ */

/* double g(int n, ...) with n doubles: n * 10 + sum of i * arg i. */
static void h_many_doubles_var(ffi_cif *cif, void *ret, void **args,
                               void *ud) {
  (void)ud;
  int n = *(int *)args[0];
  double s = n * 10;
  for (unsigned i = 1; i < cif->nargs; i++) s += *(double *)args[i] * i;
  *(double *)ret = s;
}

/* double f(int n, ...) prepared for (int; double, int64, S3, char *). */
static void h_var(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)ud;
  int n = *(int *)args[0];
  double d = *(double *)args[1];
  int64_t l = *(int64_t *)args[2];
  S3 s = *(S3 *)args[3];
  const char *str = *(const char **)args[4];
  printf("variadic     n=%d nargs=%u %g %lld {%g %g} %s\n", n, cif->nargs, d,
         (long long)l, s.x, s.y, str);
  *(double *)ret = n + d + (double)l + s.x * s.y + (double)strlen(str);
}

static void t_variadic(void) {
  ffi_cif cif;
  ffi_type *at[5] = {&ffi_type_sint32, &ffi_type_double, &ffi_type_sint64,
                     &s3_t, &ffi_type_pointer};
  ffi_closure *c;
  ffi_status s = ffi_prep_cif_var(&cif, FFI_DEFAULT_ABI, 1, 5,
                                  &ffi_type_double, at);
  if (s != FFI_OK) DIE("ffi_prep_cif_var: %d", (int)s);
  double (*f)(int, ...) = (double (*)(int, ...))closure_for(&cif, h_var, NULL, &c);
  S3 st = {2.0, 0.5};
  double got = f(4, 1.5, (int64_t)-7, st, "four");
  printf("variadic     %.17g\n", got);
  CHECK(got == 4 + 1.5 - 7 + 1.0 + 4, "variadic %.17g", got);

  /* All floating-point variadic arguments in registers, then beyond. */
  ffi_cif cif2;
  ffi_type *at2[10] = {&ffi_type_sint32};
  for (int i = 1; i < 10; i++) at2[i] = &ffi_type_double;
  s = ffi_prep_cif_var(&cif2, FFI_DEFAULT_ABI, 1, 10, &ffi_type_double, at2);
  if (s != FFI_OK) DIE("ffi_prep_cif_var: %d", (int)s);
  ffi_closure *c2;
  double (*g)(int, ...) =
      (double (*)(int, ...))closure_for(&cif2, h_many_doubles_var, NULL, &c2);
  got = g(9, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0);
  printf("variadic9    %.17g\n", got);
  CHECK(got == 9 * 10 + (1 + 4 + 9 + 16 + 25 + 36 + 49 + 64 + 81), "v9");
  ffi_closure_free(c);
  ffi_closure_free(c2);
}

/* ---- Win64 --------------------------------------------------------------- */

#if defined(__x86_64__)

typedef double (__attribute__((ms_abi)) *w64_fn)(int, double, int64_t, float,
                                                  int, double, S1, S3);
typedef S3 (__attribute__((ms_abi)) *w64_sret_fn)(S3, int, S5);
typedef uint8_t (__attribute__((ms_abi)) *w64_narrow_fn)(uint8_t, int16_t);

static void h_w64(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)ud;
  int a = *(int *)args[0];
  double b = *(double *)args[1];
  int64_t c = *(int64_t *)args[2];
  float d = *(float *)args[3];
  int e = *(int *)args[4];
  double f = *(double *)args[5];
  S1 s = *(S1 *)args[6];
  S3 t = *(S3 *)args[7];
  printf("win64        abi=%d %d %g %lld %g %d %g {%d %d %d} {%g %g}\n",
         (int)cif->abi, a, b, (long long)c, (double)d, e, f, s.a, s.b, s.c,
         t.x, t.y);
  *(double *)ret = a + b + (double)c + d + e + f + s.a + s.b + s.c + t.x + t.y;
}

static void h_w64_sret(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)cif, (void)ud;
  S3 a = *(S3 *)args[0];
  int k = *(int *)args[1];
  S5 big = *(S5 *)args[2];
  S3 r = {a.x * k + (double)big.a, a.y * k + (double)(big.b + big.c + big.d)};
  *(S3 *)ret = r;
}

static void h_w64_narrow(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)cif, (void)ud;
  uint8_t a = *(uint8_t *)args[0];
  int16_t b = *(int16_t *)args[1];
  *(ffi_arg *)ret = (uint8_t)(a + b);
}

static void t_win64(ffi_abi abi, const char *name) {
  ffi_cif cif;
  ffi_type *at[8] = {&ffi_type_sint32, &ffi_type_double, &ffi_type_sint64,
                     &ffi_type_float,  &ffi_type_sint32, &ffi_type_double,
                     &s1_t,            &s3_t};
  ffi_closure *c;
  prep(&cif, abi, 8, &ffi_type_double, at);
  w64_fn f = (w64_fn)closure_for(&cif, h_w64, NULL, &c);
  S1 s = {1, 2, 3};
  S3 t = {0.5, 0.25};
  double got = f(10, 0.5, -(1ll << 35), 1.5f, -4, 2.5, s, t);
  double want = 10 + 0.5 - (double)(1ll << 35) + 1.5 - 4 + 2.5 + 6 + 0.75;
  printf("%-12s %.17g\n", name, got);
  CHECK(got == want, "%s: %.17g != %.17g", name, got, want);
  ffi_closure_free(c);

  ffi_cif cif2;
  ffi_type *at2[3] = {&s3_t, &ffi_type_sint32, &s5_t};
  prep(&cif2, abi, 3, &s3_t, at2);
  w64_sret_fn g = (w64_sret_fn)closure_for(&cif2, h_w64_sret, NULL, &c);
  S3 a = {1.5, -2.0};
  S5 big = {100, 1, 2, 3};
  S3 r = g(a, 4, big);
  printf("%-12s sret %.17g %.17g\n", name, r.x, r.y);
  CHECK(r.x == 106.0 && r.y == -2.0, "%s sret", name);
  ffi_closure_free(c);

  ffi_cif cif3;
  ffi_type *at3[2] = {&ffi_type_uint8, &ffi_type_sint16};
  prep(&cif3, abi, 2, &ffi_type_uint8, at3);
  w64_narrow_fn h = (w64_narrow_fn)closure_for(&cif3, h_w64_narrow, NULL, &c);
  uint8_t n = h(250, 10);
  printf("%-12s narrow %u\n", name, n);
  CHECK(n == 4, "%s narrow %u", name, n);
  ffi_closure_free(c);
}
#endif /* __x86_64__ */

/* ---- records bigger than an ffi_closure ----------------------------------- */

/* Clients put the closure first in a bigger allocation and find their own
   data through user_data. */
#define BIG(n)                                                             \
  struct big##n {                                                          \
    ffi_closure closure;                                                   \
    int head;                                                              \
    char pad[n];                                                           \
    int tail;                                                              \
  }
BIG(100);
BIG(3000);
BIG(70000);

static void h_big(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)cif;
  /* ud points at `head`; `tail` sits right after the pad, whose size the
     argument tells. */
  int *head = (int *)ud;
  size_t pad = *(size_t *)args[0];
  int tail;
  memcpy(&tail, (char *)ud + sizeof(int) + pad, sizeof tail);
  *(ffi_sarg *)ret = *head + tail;
}

#define T_BIG(n)                                                           \
  do {                                                                     \
    void *code = NULL;                                                     \
    struct big##n *b = ffi_closure_alloc(sizeof *b, &code);                \
    if (b == NULL || code == NULL) DIE("alloc %zu", sizeof *b);            \
    b->head = n;                                                           \
    b->tail = 7 * n;                                                       \
    memset(b->pad, 0x5a, sizeof b->pad);                                   \
    CHECK(ffi_prep_closure_loc(&b->closure, &cif, h_big, &b->head, code) ==  \
              FFI_OK,                                                      \
          "prep big%d", n);                                                \
    int (*f)(size_t) = (int (*)(size_t))code;                              \
    int got = f(offsetof(struct big##n, tail) - offsetof(struct big##n, head) - sizeof(int)); \
    printf("big %-8d %d\n", n, got);                                       \
    CHECK(got == 8 * n, "big%d: %d", n, got);                              \
    CHECK(b->pad[0] == 0x5a && b->pad[n - 1] == 0x5a, "pad of big%d", n); \
    ffi_closure_free(b);                                                   \
  } while (0)

static void t_big(void) {
  ffi_cif cif;
  ffi_type *at[1] = {&ffi_type_uint64};
  prep(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_sint32, at);
  T_BIG(100);
  T_BIG(3000);
  T_BIG(70000);
}

/* ---- closures in the client's own memory ---------------------------------- */

static void h_add(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)cif;
  *(ffi_sarg *)ret = *(int *)args[0] + *(int *)args[1] + (int)(intptr_t)ud;
}

static void h_dbl(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)cif, (void)ud;
  *(double *)ret = *(double *)args[0] * 2 + *(float *)args[1];
}

/* One memfd page mapped twice: written through the RW view, run through
   the RX view. No page is writable and executable. */
static void t_memfd(void) {
  long page = sysconf(_SC_PAGESIZE);
  int fd = memfd_create("closure-test", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, page) != 0) DIE("memfd");
  char *rw = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  char *rx = mmap(NULL, page, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
  if (rw == MAP_FAILED || rx == MAP_FAILED) DIE("memfd views");
  close(fd);

  ffi_cif icif, dcif;
  ffi_type *iat[2] = {&ffi_type_sint32, &ffi_type_sint32};
  ffi_type *dat[2] = {&ffi_type_double, &ffi_type_float};
  prep(&icif, FFI_DEFAULT_ABI, 2, &ffi_type_sint32, iat);
  prep(&dcif, FFI_DEFAULT_ABI, 2, &ffi_type_double, dat);
  /* Three closures in one page, at 0, 64 and 1000 (8-aligned). */
  size_t at[3] = {0, 64, 1000};
  for (int i = 0; i < 3; i++) {
    ffi_closure *c = (ffi_closure *)(rw + at[i]);
    ffi_status s = i == 1 ? ffi_prep_closure_loc(c, &dcif, h_dbl, NULL, rx + at[i])
                          : ffi_prep_closure_loc(c, &icif, h_add,
                                                 (void *)(intptr_t)(100 * i), rx + at[i]);
    CHECK(s == FFI_OK, "memfd prep %d: %d", i, (int)s);
  }
  int (*f0)(int, int) = (int (*)(int, int))(rx + at[0]);
  double (*f1)(double, float) = (double (*)(double, float))(rx + at[1]);
  int (*f2)(int, int) = (int (*)(int, int))(rx + at[2]);
  int a = f0(2, 3), c2 = f2(-5, 1);
  double b = f1(1.25, 0.5f);
  printf("memfd        %d %g %d\n", a, b, c2);
  CHECK(a == 5 && b == 3.0 && c2 == 196, "memfd");
  /* Re-preparing in place switches the handler. */
  ffi_closure *c = (ffi_closure *)(rw + at[0]);
  CHECK(ffi_prep_closure_loc(c, &icif, h_add, (void *)(intptr_t)1000, rx) == FFI_OK,
        "re-prep");
  a = f0(2, 3);
  printf("memfd again  %d\n", a);
  CHECK(a == 1005, "memfd re-prep %d", a);
  munmap(rw, page);
  munmap(rx, page);
}

/* Anonymous RWX memory where the system allows it, with the deprecated
   ffi_prep_closure (the code address is the closure itself). */
static void t_rwx(void) {
  long page = sysconf(_SC_PAGESIZE);
  char *m = mmap(NULL, page, PROT_READ | PROT_WRITE | PROT_EXEC,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    printf("rwx          refused by the system\n");
    return;
  }
  ffi_cif cif;
  ffi_type *at[2] = {&ffi_type_sint32, &ffi_type_sint32};
  prep(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint32, at);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  ffi_status s = ffi_prep_closure((ffi_closure *)m, &cif, h_add, (void *)40);
#pragma GCC diagnostic pop
  CHECK(s == FFI_OK, "rwx prep %d", (int)s);
  int (*f)(int, int) = (int (*)(int, int))m;
  int r = f(1, 1);
  printf("rwx          %d\n", r);
  CHECK(r == 42, "rwx %d", r);
  munmap(m, page);
}

/* ---- raw closures ------------------------------------------------------------ */

/* Prints the slots a raw handler gets (only the bytes libffi defines). */
static void h_raw(ffi_cif *cif, void *ret, ffi_raw *raw, void *ud) {
  (void)cif;
  ++*(int *)ud;
  uint64_t u8 = raw[0].uint, u32 = raw[2].uint;
  int64_t s16 = raw[1].sint, s32 = raw[3].sint, s64;
  float f = raw[5].flt;
  double d;
  long double ld;
  memcpy(&s64, raw[4].data, 8);
  memcpy(&d, raw[6].data, 8);
  memcpy(&ld, raw[7].data, sizeof ld); /* two slots */
  S3 *s = (S3 *)raw[9].ptr;
  int *p = (int *)raw[10].ptr;
  double _Complex *z = (double _Complex *)raw[11].ptr;
  int8_t last = (int8_t)raw[12].sint;
  printf("raw          %llu %lld %llu %lld %lld %g %g %Lg {%g %g} %d (%g%+gi) %d\n",
         (unsigned long long)u8, (long long)s16, (unsigned long long)u32,
         (long long)s32, (long long)s64, (double)f, d, ld, s->x, s->y, *p,
         creal(*z), cimag(*z), last);
  *(double *)ret = (double)u8 + (double)s16 + (double)u32 + (double)s32 +
                   (double)s64 + f + d + (double)ld + s->x + s->y + *p +
                   creal(*z) + cimag(*z) + last;
}

typedef double (*raw_fn)(uint8_t, int16_t, uint32_t, int32_t, int64_t, float,
                         double, long double, S3, int *, double _Complex,
                         int8_t);

static ffi_type *raw_types[12] = {
    &ffi_type_uint8,  &ffi_type_sint16, &ffi_type_uint32,
    &ffi_type_sint32, &ffi_type_sint64, &ffi_type_float,
    &ffi_type_double, &ffi_type_longdouble, &s3_t,
    &ffi_type_pointer, &ffi_type_complex_double, &ffi_type_sint8};

static double call_raw(raw_fn f) {
  S3 s = {0.5, -0.25};
  int x = 1000;
  return f(250, -3, 4000000000u, -70000, -(1ll << 42), 1.5f, 2.75, 3.5L, s,
           &x, 1.0 - 2.0 * I, -9);
}

static const double raw_want = 250.0 - 3 + 4000000000.0 - 70000 -
                               (double)(1ll << 42) + 1.5 + 2.75 + 3.5 + 0.25 +
                               1000 + 1.0 - 2.0 - 9;

static void h_raw_narrow(ffi_cif *cif, void *ret, ffi_raw *raw, void *ud) {
  (void)cif, (void)ud;
  *(ffi_sarg *)ret = (int16_t)(raw[0].sint * 3);
}

static void t_raw(void) {
  ffi_cif cif;
  prep(&cif, FFI_DEFAULT_ABI, 12, &ffi_type_double, raw_types);
  int calls = 0;

  /* From ffi_closure_alloc. */
  void *code = NULL;
  ffi_raw_closure *c = ffi_closure_alloc(sizeof(ffi_raw_closure), &code);
  if (c == NULL) DIE("alloc raw");
  CHECK(ffi_prep_raw_closure_loc(c, &cif, h_raw, &calls, code) == FFI_OK,
        "prep raw");
  double got = call_raw((raw_fn)code);
  printf("raw          = %.17g\n", got);
  CHECK(got == raw_want && calls == 1, "raw %.17g calls %d", got, calls);
  ffi_closure_free(c);

  /* In the client's double-mapped memory. */
  long page = sysconf(_SC_PAGESIZE);
  int fd = memfd_create("raw-closure-test", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, page) != 0) DIE("memfd");
  char *rw = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  char *rx = mmap(NULL, page, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
  if (rw == MAP_FAILED || rx == MAP_FAILED) DIE("memfd views");
  close(fd);
  CHECK(ffi_prep_raw_closure_loc((ffi_raw_closure *)(rw + 128), &cif, h_raw,
                                 &calls, rx + 128) == FFI_OK,
        "prep raw memfd");
  got = call_raw((raw_fn)(rx + 128));
  CHECK(got == raw_want && calls == 2, "raw memfd %.17g", got);

  /* A narrow return. */
  ffi_cif ncif;
  ffi_type *nat[1] = {&ffi_type_sint16};
  prep(&ncif, FFI_DEFAULT_ABI, 1, &ffi_type_sint16, nat);
  c = ffi_closure_alloc(sizeof(ffi_raw_closure), &code);
  CHECK(ffi_prep_raw_closure_loc(c, &ncif, h_raw_narrow, NULL, code) == FFI_OK,
        "prep raw narrow");
  int16_t n = ((int16_t(*)(int16_t))code)(-12000);
  printf("raw narrow   %d\n", n);
  CHECK(n == (int16_t)(-36000), "raw narrow %d", n);
  ffi_closure_free(c);
  munmap(rw, page);
  munmap(rx, page);
}

/* Java raw: one 8-byte slot per value, two for 64-bit integers and
   doubles (value in the first). */
static void h_java(ffi_cif *cif, void *ret, ffi_java_raw *raw, void *ud) {
  (void)cif, (void)ud;
  uint64_t u8 = raw[0].uint, u16 = raw[2].uint, u32 = raw[4].uint;
  int64_t s8 = raw[1].sint, s16 = raw[3].sint, s32 = raw[5].sint, l;
  double d;
  memcpy(&l, raw[6].data, 8);
  float f = raw[8].flt;
  memcpy(&d, raw[9].data, 8);
  int *p = (int *)raw[11].ptr;
  int64_t l2;
  memcpy(&l2, raw[12].data, 8);
  int32_t last = (int32_t)raw[14].sint;
  printf("java         %llu %lld %llu %lld %llu %lld %lld %g %g %d %lld %d\n",
         (unsigned long long)u8, (long long)s8, (unsigned long long)u16,
         (long long)s16, (unsigned long long)u32, (long long)s32,
         (long long)l, (double)f, d, *p, (long long)l2, last);
  int64_t isum = (int64_t)u8 + s8 + (int64_t)u16 + s16 + (int64_t)u32 + s32 +
                 l + *p + l2 + last;
  *(int64_t *)ret = isum + (int64_t)(f + d);
}

static void t_java(void) {
  ffi_cif cif;
  ffi_type *at[12] = {&ffi_type_uint8,  &ffi_type_sint8,  &ffi_type_uint16,
                      &ffi_type_sint16, &ffi_type_uint32, &ffi_type_sint32,
                      &ffi_type_sint64, &ffi_type_float,  &ffi_type_double,
                      &ffi_type_pointer, &ffi_type_uint64, &ffi_type_sint32};
  prep(&cif, FFI_DEFAULT_ABI, 12, &ffi_type_sint64, at);
  void *code = NULL;
  ffi_java_raw_closure *c = ffi_closure_alloc(sizeof *c, &code);
  if (c == NULL) DIE("alloc java");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  CHECK(ffi_prep_java_raw_closure_loc(c, &cif, h_java, NULL, code) == FFI_OK,
        "prep java");
#pragma GCC diagnostic pop
  int x = 5;
  int64_t (*f)(uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, int64_t,
               float, double, int *, uint64_t, int32_t) =
      (int64_t(*)(uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t,
                  int64_t, float, double, int *, uint64_t, int32_t))code;
  int64_t got = f(255, -128, 65535, -32768, 4294967295u, -2147483647 - 1,
                  -(1ll << 45), 0.5f, 0.25, &x, 1ull << 41, -1);
  int64_t want = 255 - 128 + 65535 - 32768 + 4294967295ll - 2147483648ll -
                 (1ll << 45) + 0 + 0 + 5 + (1ll << 41) - 1; /* 0.75 truncated */
  printf("java         = %lld\n", (long long)got);
  CHECK(got == want, "java %lld != %lld", (long long)got, (long long)want);
  ffi_closure_free(c);
}

/* ---- statuses ------------------------------------------------------------------ */

static void t_statuses(void) {
  ffi_cif zero;
  memset(&zero, 0, sizeof zero);
  void *code;
  ffi_closure *c = ffi_closure_alloc(sizeof *c, &code);
  ffi_status s = ffi_prep_closure_loc(c, &zero, h_void, NULL, code);
  printf("status       unprepared cif: %d\n", (int)s);
  CHECK(s == FFI_BAD_ABI, "zero cif: %d", (int)s);
  ffi_closure_free(c);
  ffi_closure_free(NULL);
  printf("status       free(NULL) ok\n");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  t_uint8();
  t_sint8();
  t_uint16();
  t_sint16();
  t_uint32();
  t_sint32();
  t_uint64();
  t_sint64();
  t_float();
  t_double();
  t_longdouble();
  t_cfloat();
  t_cdouble();
  t_cldouble();
  t_void_and_pointer();
  t_many();
  t_s1();
  t_s2();
  t_s3();
  t_s4();
  t_s5();
  t_s6();
  t_s7();
  t_s8();
  t_s9();
  t_pressure();
  t_struct_long_double();
  t_variadic();
#if defined(__x86_64__)
  t_win64(FFI_WIN64, "win64");
  t_win64(FFI_GNUW64, "gnuw64");
#endif
  t_big();
  t_memfd();
  t_rwx();
  t_raw();
  t_java();
  t_statuses();
  return finish();
}
