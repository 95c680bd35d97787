/* ffi_call under the target's FFI_DEFAULT_ABI (System V on x86-64,
   AAPCS64 on AArch64): every scalar type,
   narrow-return widening, many and mixed arguments, structs (nested, laid
   out by ffi_prep_cif, in registers and in memory), long double, complex,
   variadic calls, null rvalue, copied cifs. Each result is checked against
   a direct C call and printed. */

#include <complex.h>
#include <stdarg.h>

#include "check.h"

#define NOIPA __attribute__((noipa))

/* ---- scalars --------------------------------------------------------- */

NOIPA static uint8_t f_u8(uint8_t a, uint8_t b) { return (uint8_t)(a * 3 + b); }
NOIPA static int8_t f_s8(int8_t a, int8_t b) { return (int8_t)(a * 3 - b); }
NOIPA static uint16_t f_u16(uint16_t a, uint16_t b) { return (uint16_t)(a * 3 + b); }
NOIPA static int16_t f_s16(int16_t a, int16_t b) { return (int16_t)(a * 3 - b); }
NOIPA static uint32_t f_u32(uint32_t a, uint32_t b) { return a * 3 + b; }
NOIPA static int32_t f_s32(int32_t a, int32_t b) { return a * 3 - b; }
NOIPA static uint64_t f_u64(uint64_t a, uint64_t b) { return a * 3 + b; }
NOIPA static int64_t f_s64(int64_t a, int64_t b) { return a * 3 - b; }
NOIPA static float f_float(float a, float b) { return a * 3 - b; }
NOIPA static double f_double(double a, double b) { return a * 3 - b; }
NOIPA static void *f_pointer(void *a, void *b) {
  return (char *)a + ((uintptr_t)b & 0xff);
}

/* Calls f(a, b) through ffi with the return buffer pre-filled with 0xaa
   and prints the whole ffi_arg-sized result. */
static void call2(const char *name, ffi_type *t, void (*f)(void), void *a,
                  void *b, void *expect, size_t size, int is_int) {
  ffi_cif cif;
  ffi_type *args[2] = {t, t};
  PREP(&cif, FFI_DEFAULT_ABI, 2, t, args);
  union {
    ffi_arg word;
    unsigned char bytes[16];
  } r;
  memset(&r, 0xaa, sizeof r);
  void *values[2] = {a, b};
  ffi_call(&cif, f, &r, values);
  hex(name, r.bytes, 16);
  if (is_int) {
    /* Widened to a full ffi_arg: compare the value, sign or zero
       extended, against the direct result. */
    ffi_arg want;
    int64_t s = 0;
    uint64_t u = 0;
    switch (t->type) {
      case FFI_TYPE_UINT8: u = *(uint8_t *)expect; break;
      case FFI_TYPE_SINT8: s = *(int8_t *)expect; break;
      case FFI_TYPE_UINT16: u = *(uint16_t *)expect; break;
      case FFI_TYPE_SINT16: s = *(int16_t *)expect; break;
      case FFI_TYPE_UINT32: u = *(uint32_t *)expect; break;
      case FFI_TYPE_SINT32: s = *(int32_t *)expect; break;
      case FFI_TYPE_UINT64: u = *(uint64_t *)expect; break;
      case FFI_TYPE_SINT64: s = *(int64_t *)expect; break;
      case FFI_TYPE_POINTER: u = (uintptr_t) * (void **)expect; break;
    }
    switch (t->type) {
      case FFI_TYPE_SINT8: case FFI_TYPE_SINT16: case FFI_TYPE_SINT32:
      case FFI_TYPE_SINT64:
        want = (ffi_arg)s;
        break;
      default:
        want = (ffi_arg)u;
    }
    CHECK(r.word == want, "%s: got %#lx want %#lx", name, r.word, want);
  } else {
    CHECK(memcmp(r.bytes, expect, size) == 0, "%s: value differs", name);
  }
}

static void scalars(void) {
  uint8_t u8a = 200, u8b = 77, u8r = f_u8(u8a, u8b);
  int8_t s8a = -100, s8b = 50, s8r = f_s8(s8a, s8b);
  uint16_t u16a = 60000, u16b = 999, u16r = f_u16(u16a, u16b);
  int16_t s16a = -20000, s16b = 1234, s16r = f_s16(s16a, s16b);
  uint32_t u32a = 4000000000u, u32b = 7, u32r = f_u32(u32a, u32b);
  int32_t s32a = -1000000000, s32b = 5, s32r = f_s32(s32a, s32b);
  uint64_t u64a = 0xfedcba9876543210ull, u64b = 3, u64r = f_u64(u64a, u64b);
  int64_t s64a = -0x123456789abcll, s64b = 9, s64r = f_s64(s64a, s64b);
  float fa = 1.25f, fb = -0.5f, fr = f_float(fa, fb);
  double da = 1e300, db = -2.5, dr = f_double(da, db);
  void *pa = (void *)0x1000, *pb = (void *)0x42, *pr = f_pointer(pa, pb);
  call2("u8", &ffi_type_uint8, FFI_FN(f_u8), &u8a, &u8b, &u8r, 1, 1);
  call2("s8", &ffi_type_sint8, FFI_FN(f_s8), &s8a, &s8b, &s8r, 1, 1);
  call2("u16", &ffi_type_uint16, FFI_FN(f_u16), &u16a, &u16b, &u16r, 2, 1);
  call2("s16", &ffi_type_sint16, FFI_FN(f_s16), &s16a, &s16b, &s16r, 2, 1);
  call2("u32", &ffi_type_uint32, FFI_FN(f_u32), &u32a, &u32b, &u32r, 4, 1);
  call2("s32", &ffi_type_sint32, FFI_FN(f_s32), &s32a, &s32b, &s32r, 4, 1);
  call2("u64", &ffi_type_uint64, FFI_FN(f_u64), &u64a, &u64b, &u64r, 8, 1);
  call2("s64", &ffi_type_sint64, FFI_FN(f_s64), &s64a, &s64b, &s64r, 8, 1);
  call2("float", &ffi_type_float, FFI_FN(f_float), &fa, &fb, &fr, 4, 0);
  call2("double", &ffi_type_double, FFI_FN(f_double), &da, &db, &dr, 8, 0);
  call2("pointer", &ffi_type_pointer, FFI_FN(f_pointer), &pa, &pb, &pr, 8, 1);
  /* The C-name macros are the fixed-width types of LP64. */
  call2("sint", &ffi_type_sint, FFI_FN(f_s32), &s32a, &s32b, &s32r, 4, 1);
  call2("ulong", &ffi_type_ulong, FFI_FN(f_u64), &u64a, &u64b, &u64r, 8, 1);
  call2("schar", &ffi_type_schar, FFI_FN(f_s8), &s8a, &s8b, &s8r, 1, 1);
  call2("ushort", &ffi_type_ushort, FFI_FN(f_u16), &u16a, &u16b, &u16r, 2, 1);
}

/* ---- many and mixed arguments ----------------------------------------- */

NOIPA static double s5(int a, double b, int64_t c, float d, void *e, int8_t f,
                       uint16_t g, double h) {
  return a + b * 2 + (double)c * 3 + d * 4 + (double)(uintptr_t)e * 5 +
         f * 6 + g * 7 + h * 8;
}

NOIPA static int s8(int a0, int a1, int a2, int a3, int a4, int a5, int a6,
                    int a7, int a8, int a9, int a10, int a11, int a12, int a13,
                    int a14, int a15) {
  return a0 + 2 * a1 + 3 * a2 + 4 * a3 + 5 * a4 + 6 * a5 + 7 * a6 + 8 * a7 +
         9 * a8 + 10 * a9 + 11 * a10 + 12 * a11 + 13 * a12 + 14 * a13 +
         15 * a14 + 16 * a15;
}

NOIPA static double mixed_stack(double d0, int64_t i0, double d1, double d2,
                                double d3, double d4, double d5, double d6,
                                double d7, double d8, int64_t i1, int64_t i2,
                                int64_t i3, int64_t i4, int64_t i5, int64_t i6,
                                float f9, int8_t c7) {
  return d0 + d1 * 2 + d2 * 3 + d3 * 4 + d4 * 5 + d5 * 6 + d6 * 7 + d7 * 8 +
         d8 * 9 + (double)(i0 + i1 * 2 + i2 * 3 + i3 * 4 + i4 * 5 + i5 * 6 +
                           i6 * 7) +
         f9 * 10 + c7 * 11;
}

static void many_args(void) {
  {
    int a = -7;
    double b = 1.5;
    int64_t c = 1ll << 40;
    float d = 0.25f;
    void *e = (void *)0x10;
    int8_t f = -3;
    uint16_t g = 65535;
    double h = -1e10, r = 0;
    ffi_type *t[8] = {&ffi_type_sint32, &ffi_type_double, &ffi_type_sint64,
                      &ffi_type_float, &ffi_type_pointer, &ffi_type_sint8,
                      &ffi_type_uint16, &ffi_type_double};
    void *v[8] = {&a, &b, &c, &d, &e, &f, &g, &h};
    ffi_cif cif;
    PREP(&cif, FFI_DEFAULT_ABI, 8, &ffi_type_double, t);
    ffi_call(&cif, FFI_FN(s5), &r, v);
    printf("s5: %.17g\n", r);
    CHECK(r == s5(a, b, c, d, e, f, g, h), "s5");
  }
  {
    int x[16];
    ffi_type *t[16];
    void *v[16];
    for (int i = 0; i < 16; i++) {
      x[i] = (i - 8) * 1001;
      t[i] = &ffi_type_sint;
      v[i] = &x[i];
    }
    ffi_arg r;
    ffi_cif cif;
    PREP(&cif, FFI_DEFAULT_ABI, 16, &ffi_type_sint, t);
    ffi_call(&cif, FFI_FN(s8), &r, v);
    int want = s8(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9],
                  x[10], x[11], x[12], x[13], x[14], x[15]);
    printf("s8: %d\n", (int)r);
    CHECK((int)r == want, "s8 %d vs %d", (int)r, want);
  }
  {
    double d[9];
    int64_t i[7];
    float f9 = 3.5f;
    int8_t c7 = -128;
    for (int k = 0; k < 9; k++) d[k] = k * 1.125 - 3;
    for (int k = 0; k < 7; k++) i[k] = (k + 1) * -1000003ll;
    ffi_type *t[18] = {&ffi_type_double, &ffi_type_sint64, &ffi_type_double,
                       &ffi_type_double, &ffi_type_double, &ffi_type_double,
                       &ffi_type_double, &ffi_type_double, &ffi_type_double,
                       &ffi_type_double, &ffi_type_sint64, &ffi_type_sint64,
                       &ffi_type_sint64, &ffi_type_sint64, &ffi_type_sint64,
                       &ffi_type_sint64, &ffi_type_float, &ffi_type_sint8};
    void *v[18] = {&d[0], &i[0], &d[1], &d[2], &d[3], &d[4], &d[5],
                   &d[6], &d[7], &d[8], &i[1], &i[2], &i[3], &i[4],
                   &i[5], &i[6], &f9,   &c7};
    double r;
    ffi_cif cif;
    PREP(&cif, FFI_DEFAULT_ABI, 18, &ffi_type_double, t);
    ffi_call(&cif, FFI_FN(mixed_stack), &r, v);
    double want = mixed_stack(d[0], i[0], d[1], d[2], d[3], d[4], d[5], d[6],
                              d[7], d[8], i[1], i[2], i[3], i[4], i[5], i[6],
                              f9, c7);
    printf("mixed_stack: %.17g\n", r);
    CHECK(r == want, "mixed_stack");
  }
}

/* ---- structs ---------------------------------------------------------- */

typedef struct { int a; double b; } IntDouble;
typedef struct { float x, y; } Float2;
typedef struct { char c; short s; int i; } CSI;
typedef struct { int a, b, c; } Int3;
typedef struct { float a, b, c; } Float3;
typedef struct { int64_t w[4]; } Big4;
typedef struct { char c; float f; } Inner;
typedef struct { Inner in; double d; short s; } Outer;
typedef struct { long double x; int y; } LdInt;

NOIPA static IntDouble sd_fn(IntDouble p, Float2 q, CSI r) {
  IntDouble o = {p.a + r.c + r.s + r.i, p.b + q.x * q.y};
  return o;
}
NOIPA static Int3 int3_fn(Int3 p, int k) {
  Int3 o = {p.a * k, p.b * k, p.c * k};
  return o;
}
NOIPA static Float3 float3_fn(Float3 p, Float3 q) {
  Float3 o = {p.a + q.a, p.b * q.b, p.c - q.c};
  return o;
}
NOIPA static Big4 big4_fn(Big4 p, int64_t k) {
  Big4 o;
  for (int i = 0; i < 4; i++) o.w[i] = p.w[i] * k + i;
  return o;
}
NOIPA static Outer outer_fn(Outer p, Inner q) {
  Outer o = p;
  o.in.c = (char)(p.in.c + q.c);
  o.in.f = p.in.f * q.f;
  o.d = p.d + 1;
  o.s = (short)(p.s * 2);
  return o;
}
NOIPA static LdInt ldint_fn(LdInt p, IntDouble q) {
  LdInt o = {p.x * q.b, p.y + q.a};
  return o;
}

/* Unsized descriptions (size 0): ffi_prep_cif lays them out. */
static ffi_type *intdouble_el[] = {&ffi_type_sint32, &ffi_type_double, NULL};
static ffi_type intdouble_t = {0, 0, FFI_TYPE_STRUCT, intdouble_el};
static ffi_type *float2_el[] = {&ffi_type_float, &ffi_type_float, NULL};
static ffi_type float2_t = {0, 0, FFI_TYPE_STRUCT, float2_el};
static ffi_type *csi_el[] = {&ffi_type_schar, &ffi_type_sshort, &ffi_type_sint,
                             NULL};
static ffi_type csi_t = {0, 0, FFI_TYPE_STRUCT, csi_el};
static ffi_type *int3_el[] = {&ffi_type_sint, &ffi_type_sint, &ffi_type_sint,
                              NULL};
static ffi_type int3_t = {0, 0, FFI_TYPE_STRUCT, int3_el};
static ffi_type *float3_el[] = {&ffi_type_float, &ffi_type_float,
                                &ffi_type_float, NULL};
static ffi_type float3_t = {0, 0, FFI_TYPE_STRUCT, float3_el};
static ffi_type *big4_el[] = {&ffi_type_sint64, &ffi_type_sint64,
                              &ffi_type_sint64, &ffi_type_sint64, NULL};
static ffi_type big4_t = {0, 0, FFI_TYPE_STRUCT, big4_el};
static ffi_type *inner_el[] = {&ffi_type_schar, &ffi_type_float, NULL};
static ffi_type inner_t = {0, 0, FFI_TYPE_STRUCT, inner_el};
static ffi_type *outer_el[] = {&inner_t, &ffi_type_double, &ffi_type_sshort,
                               NULL};
static ffi_type outer_t = {0, 0, FFI_TYPE_STRUCT, outer_el};
static ffi_type *ldint_el[] = {&ffi_type_longdouble, &ffi_type_sint, NULL};
static ffi_type ldint_t = {0, 0, FFI_TYPE_STRUCT, ldint_el};

static void layout(const char *name, ffi_type *t, size_t size, size_t align) {
  printf("layout %s: size %zu align %u\n", name, t->size, t->alignment);
  CHECK(t->size == size && t->alignment == align, "%s layout", name);
}

static void structs(void) {
  ffi_cif cif;
  /* Mixed classes in registers. */
  {
    IntDouble p = {-5, 2.5};
    Float2 q = {1.5f, -4.0f};
    CSI r = {-1, 300, 70000};
    ffi_type *t[3] = {&intdouble_t, &float2_t, &csi_t};
    void *v[3] = {&p, &q, &r};
    PREP(&cif, FFI_DEFAULT_ABI, 3, &intdouble_t, t);
    layout("IntDouble", &intdouble_t, sizeof(IntDouble), _Alignof(IntDouble));
    layout("Float2", &float2_t, sizeof(Float2), _Alignof(Float2));
    layout("CSI", &csi_t, sizeof(CSI), _Alignof(CSI));
    IntDouble o, want = sd_fn(p, q, r);
    ffi_call(&cif, FFI_FN(sd_fn), &o, v);
    printf("sd_fn: %d %.17g\n", o.a, o.b);
    CHECK(o.a == want.a && o.b == want.b, "sd_fn");
  }
  /* 12-byte results: exactly 12 bytes written (canary after them). */
  {
    Int3 p = {1, -2, 3};
    int k = -7;
    ffi_type *t[2] = {&int3_t, &ffi_type_sint};
    void *v[2] = {&p, &k};
    PREP(&cif, FFI_DEFAULT_ABI, 2, &int3_t, t);
    layout("Int3", &int3_t, 12, 4);
    unsigned char buf[16];
    memset(buf, 0xaa, sizeof buf);
    ffi_call(&cif, FFI_FN(int3_fn), buf, v);
    Int3 want = int3_fn(p, k);
    hex("int3_fn", buf, 16);
    CHECK(memcmp(buf, &want, 12) == 0, "int3_fn value");
  }
  {
    Float3 p = {1.5f, 2.0f, -3.0f}, q = {0.25f, -8.0f, 1.0f};
    ffi_type *t[2] = {&float3_t, &float3_t};
    void *v[2] = {&p, &q};
    PREP(&cif, FFI_DEFAULT_ABI, 2, &float3_t, t);
    unsigned char buf[16];
    memset(buf, 0xaa, sizeof buf);
    ffi_call(&cif, FFI_FN(float3_fn), buf, v);
    Float3 want = float3_fn(p, q);
    hex("float3_fn", buf, 16);
    CHECK(memcmp(buf, &want, 12) == 0, "float3_fn value");
  }
  /* In memory (sret), and on the stack as an argument. */
  {
    Big4 p = {{1, -2, 3, -4}};
    int64_t k = 1000000007;
    ffi_type *t[2] = {&big4_t, &ffi_type_sint64};
    void *v[2] = {&p, &k};
    PREP(&cif, FFI_DEFAULT_ABI, 2, &big4_t, t);
    Big4 o, want = big4_fn(p, k);
    ffi_call(&cif, FFI_FN(big4_fn), &o, v);
    printf("big4_fn: %ld %ld %ld %ld\n", (long)o.w[0], (long)o.w[1],
           (long)o.w[2], (long)o.w[3]);
    CHECK(memcmp(&o, &want, sizeof o) == 0, "big4_fn");
  }
  /* Nested, laid out recursively. */
  {
    Outer p = {{'a', 1.5f}, -2.25, 1234};
    Inner q = {3, -2.0f};
    ffi_type *t[2] = {&outer_t, &inner_t};
    void *v[2] = {&p, &q};
    PREP(&cif, FFI_DEFAULT_ABI, 2, &outer_t, t);
    layout("Inner", &inner_t, sizeof(Inner), _Alignof(Inner));
    layout("Outer", &outer_t, sizeof(Outer), _Alignof(Outer));
    Outer o, want = outer_fn(p, q);
    memset(&o, 0, sizeof o);
    ffi_call(&cif, FFI_FN(outer_fn), &o, v);
    printf("outer_fn: %d %.9g %.17g %d\n", o.in.c, o.in.f, o.d, o.s);
    CHECK(o.in.c == want.in.c && o.in.f == want.in.f && o.d == want.d &&
              o.s == want.s,
          "outer_fn");
  }
  /* A long double member: 32 bytes, in memory. */
  {
    LdInt p = {1.5L, 40};
    IntDouble q = {2, -0.5};
    ffi_type *t[2] = {&ldint_t, &intdouble_t};
    void *v[2] = {&p, &q};
    PREP(&cif, FFI_DEFAULT_ABI, 2, &ldint_t, t);
    layout("LdInt", &ldint_t, sizeof(LdInt), _Alignof(LdInt));
    LdInt o, want = ldint_fn(p, q);
    ffi_call(&cif, FFI_FN(ldint_fn), &o, v);
    printf("ldint_fn: %.21Lg %d\n", o.x, o.y);
    CHECK(o.x == want.x && o.y == want.y, "ldint_fn");
  }
  /* ffi_get_struct_offsets lays out a fresh type too. */
  {
    ffi_type *el[] = {&ffi_type_uint8, &ffi_type_double, &ffi_type_sint16,
                      &inner_t, &ffi_type_longdouble, NULL};
    ffi_type s = {0, 0, FFI_TYPE_STRUCT, el};
    size_t off[5];
    ffi_status st = ffi_get_struct_offsets(FFI_DEFAULT_ABI, &s, off);
    printf("offsets: status %d size %zu align %u: %zu %zu %zu %zu %zu\n", st,
           s.size, s.alignment, off[0], off[1], off[2], off[3], off[4]);
    struct {
      uint8_t a;
      double b;
      int16_t c;
      Inner d;
      long double e;
    } probe;
    CHECK(st == FFI_OK && s.size == sizeof probe && off[1] == 8 &&
              off[2] == 16 && off[3] == 20 && off[4] == 32,
          "offsets");
    ffi_type s2 = {0, 0, FFI_TYPE_STRUCT, el};
    CHECK(ffi_get_struct_offsets(FFI_DEFAULT_ABI, &s2, NULL) == FFI_OK &&
              s2.size == sizeof probe,
          "offsets with NULL array");
  }
}

/* ---- long double and complex ------------------------------------------ */

NOIPA static long double ld_fn(long double a, int k, long double b, double c) {
  return a * k - b + c;
}
NOIPA static float complex cf_fn(float complex a, float complex b) {
  return a * b + 1;
}
NOIPA static double complex cd_fn(double complex a, int k, double complex b) {
  return a * k - b;
}
NOIPA static long double complex cld_fn(long double complex a,
                                        long double complex b) {
  return a * b;
}

static void long_double_and_complex(void) {
  ffi_cif cif;
  {
    long double a = 1.0L / 3, b = -2.75L, r;
    int k = 7;
    double c = 0.125;
    ffi_type *t[4] = {&ffi_type_longdouble, &ffi_type_sint,
                      &ffi_type_longdouble, &ffi_type_double};
    void *v[4] = {&a, &k, &b, &c};
    PREP(&cif, FFI_DEFAULT_ABI, 4, &ffi_type_longdouble, t);
    ffi_call(&cif, FFI_FN(ld_fn), &r, v);
    printf("ld_fn: %.21Lg\n", r);
    CHECK(r == ld_fn(a, k, b, c), "ld_fn");
  }
  {
    float complex a = 1.5f + 2.0f * I, b = -0.5f + 4.0f * I, r;
    ffi_type *t[2] = {&ffi_type_complex_float, &ffi_type_complex_float};
    void *v[2] = {&a, &b};
    PREP(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_complex_float, t);
    ffi_call(&cif, FFI_FN(cf_fn), &r, v);
    float complex want = cf_fn(a, b);
    printf("cf_fn: %.9g %.9g\n", crealf(r), cimagf(r));
    CHECK(r == want, "cf_fn");
  }
  {
    double complex a = 1.25 - 3.0 * I, b = 2.0 + 0.5 * I, r;
    int k = -3;
    ffi_type *t[3] = {&ffi_type_complex_double, &ffi_type_sint,
                      &ffi_type_complex_double};
    void *v[3] = {&a, &k, &b};
    PREP(&cif, FFI_DEFAULT_ABI, 3, &ffi_type_complex_double, t);
    ffi_call(&cif, FFI_FN(cd_fn), &r, v);
    double complex want = cd_fn(a, k, b);
    printf("cd_fn: %.17g %.17g\n", creal(r), cimag(r));
    CHECK(r == want, "cd_fn");
  }
  {
    long double complex a = 1.5L + 2.0L * I, b = -1.0L + 0.25L * I, r;
    ffi_type *t[2] = {&ffi_type_complex_longdouble,
                      &ffi_type_complex_longdouble};
    void *v[2] = {&a, &b};
    PREP(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_complex_longdouble, t);
    ffi_call(&cif, FFI_FN(cld_fn), &r, v);
    long double complex want = cld_fn(a, b);
    printf("cld_fn: %.21Lg %.21Lg\n", creall(r), cimagl(r));
    CHECK(r == want, "cld_fn");
  }
}

/* ---- variadic --------------------------------------------------------- */

typedef struct { long a, b; } Pair;

/* Reads its arguments as `fmt` says: i int, l long, d double, p pointer,
   s Pair, L long double. */
NOIPA static double vsum(const char *fmt, ...) {
  va_list ap;
  double acc = 0;
  int k = 1;
  va_start(ap, fmt);
  for (const char *c = fmt; *c; c++, k++) {
    switch (*c) {
      case 'i': acc += k * va_arg(ap, int); break;
      case 'l': acc += k * (double)va_arg(ap, long); break;
      case 'd': acc += k * va_arg(ap, double); break;
      case 'p': acc += k * (double)(uintptr_t)va_arg(ap, void *); break;
      case 's': {
        Pair p = va_arg(ap, Pair);
        acc += k * (double)(p.a - p.b);
        break;
      }
      case 'L': acc += k * (double)va_arg(ap, long double); break;
    }
  }
  va_end(ap);
  return acc;
}

static ffi_type *pair_el[] = {&ffi_type_slong, &ffi_type_slong, NULL};
static ffi_type pair_t = {0, 0, FFI_TYPE_STRUCT, pair_el};

static void variadic(void) {
  ffi_cif cif;
  {
    const char *fmt = "idldsdpLiddddddddi";
    int i1 = -4, i2 = 9, i3 = 100;
    long l1 = 1l << 50;
    double d[10] = {0.5, -1.5, 2.25, 3, 4, 5, 6, 7, 8, 9};
    Pair s = {1000, 1};
    void *p = (void *)0x77;
    long double L = 1.75L;
    ffi_type *t[19] = {&ffi_type_pointer, &ffi_type_sint,   &ffi_type_double,
                       &ffi_type_slong,   &ffi_type_double, &pair_t,
                       &ffi_type_double,  &ffi_type_pointer, &ffi_type_longdouble,
                       &ffi_type_sint,    &ffi_type_double, &ffi_type_double,
                       &ffi_type_double,  &ffi_type_double, &ffi_type_double,
                       &ffi_type_double,  &ffi_type_double, &ffi_type_double,
                       &ffi_type_sint};
    void *v[19] = {&fmt, &i1,   &d[0], &l1,   &d[1], &s,    &d[2],
                   &p,   &L,    &i2,   &d[3], &d[4], &d[5], &d[6],
                   &d[7], &d[8], &d[9], &d[9], &i3};
    CHECK(ffi_prep_cif_var(&cif, FFI_DEFAULT_ABI, 1, 19, &ffi_type_double,
                           t) == FFI_OK,
          "prep_cif_var");
    double r = 0;
    ffi_call(&cif, FFI_FN(vsum), &r, v);
    double want = vsum(fmt, i1, d[0], l1, d[1], s, d[2], p, L, i2, d[3], d[4],
                       d[5], d[6], d[7], d[8], d[9], d[9], i3);
    printf("vsum: %.17g\n", r);
    CHECK(r == want, "vsum %.17g vs %.17g", r, want);
  }
  {
    char buf[128];
    char *bp = buf;
    size_t n = sizeof buf;
    const char *fmt = "%d|%.3f|%s|%ld|%c";
    int i = -42, c = 'Z';
    double d = 3.14159;
    const char *s = "text";
    long l = -1234567890123l;
    ffi_type *t[8] = {&ffi_type_pointer, &ffi_type_ulong, &ffi_type_pointer,
                      &ffi_type_sint,    &ffi_type_double, &ffi_type_pointer,
                      &ffi_type_slong,   &ffi_type_sint};
    void *v[8] = {&bp, &n, &fmt, &i, &d, &s, &l, &c};
    CHECK(ffi_prep_cif_var(&cif, FFI_DEFAULT_ABI, 3, 8, &ffi_type_sint, t) ==
              FFI_OK,
          "prep snprintf");
    ffi_arg r;
    ffi_call(&cif, FFI_FN(snprintf), &r, v);
    printf("snprintf: %d \"%s\"\n", (int)r, buf);
    CHECK(strcmp(buf, "-42|3.142|text|-1234567890123|Z") == 0, "snprintf");
  }
}

/* ---- rvalue handling -------------------------------------------------- */

static int side_effects;
NOIPA static int bump(int k) { return side_effects += k; }
NOIPA static IntDouble bump_sd(int k) {
  side_effects += k;
  IntDouble o = {k, k};
  return o;
}
NOIPA static Big4 bump_big(int k) {
  side_effects += k;
  Big4 o = {{k, k, k, k}};
  return o;
}
NOIPA static void nothing(int k) { side_effects += k; }

static void rvalues(void) {
  ffi_cif cif;
  int k = 5;
  void *v[1] = {&k};
  ffi_type *t[1] = {&ffi_type_sint};
  PREP(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_sint, t);
  ffi_call(&cif, FFI_FN(bump), NULL, v);
  PREP(&cif, FFI_DEFAULT_ABI, 1, &intdouble_t, t);
  ffi_call(&cif, FFI_FN(bump_sd), NULL, v);
  PREP(&cif, FFI_DEFAULT_ABI, 1, &big4_t, t);
  ffi_call(&cif, FFI_FN(bump_big), NULL, v);
  PREP(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, t);
  ffi_call(&cif, FFI_FN(nothing), NULL, v);
  printf("null rvalue calls: %d\n", side_effects);
  CHECK(side_effects == 20, "all four called");
  /* A void call leaves the return buffer alone. */
  unsigned char buf[8];
  memset(buf, 0xaa, sizeof buf);
  ffi_call(&cif, FFI_FN(nothing), buf, v);
  hex("void rvalue", buf, 8);

  /* A cif is plain data: a copy calls the same way. */
  ffi_cif copy;
  PREP(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_sint, t);
  memcpy(&copy, &cif, sizeof cif);
  memset(&cif, 0, sizeof cif);
  ffi_arg r;
  ffi_call(&copy, FFI_FN(bump), &r, v);
  printf("copied cif: %d\n", (int)r);
  CHECK((int)r == 30, "copied cif");

  /* Preparing the same shape again (new descriptions, same layout) gives
     the same behaviour. */
  ffi_type *el[] = {&ffi_type_sint, &ffi_type_double, NULL};
  ffi_type again = {0, 0, FFI_TYPE_STRUCT, el};
  ffi_type *t2[1] = {&ffi_type_sint};
  for (int i = 0; i < 3; i++) {
    IntDouble o;
    PREP(&cif, FFI_DEFAULT_ABI, 1, i ? &again : &intdouble_t, t2);
    ffi_call(&cif, FFI_FN(bump_sd), &o, v);
    CHECK(o.a == 5 && o.b == 5, "repeat %d", i);
  }
  printf("repeat prep: ok\n");
}

/* ---- FFI_TYPE_INT ----------------------------------------------------- */

static void type_int(void) {
#ifdef JITFFI_OURS
  /* libffi 3.4.4 aborts on FFI_TYPE_INT arguments; we take it as int. */
  ffi_type int_t = {4, 4, FFI_TYPE_INT, NULL};
  ffi_type *t[2] = {&int_t, &int_t};
  int32_t a = -9, b = 4;
  void *v[2] = {&a, &b};
  ffi_cif cif;
  PREP(&cif, FFI_DEFAULT_ABI, 2, &int_t, t);
  ffi_arg r;
  ffi_call(&cif, FFI_FN(f_s32), &r, v);
  printf("ours: FFI_TYPE_INT: %ld\n", (long)r);
  CHECK((ffi_sarg)r == -31, "FFI_TYPE_INT widened like sint32");
#endif
}

int main(void) {
  scalars();
  many_args();
  structs();
  long_double_and_complex();
  variadic();
  rvalues();
  type_int();
  return finish();
}
