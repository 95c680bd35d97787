/* FFI_WIN64 and FFI_GNUW64 calls into gcc's __attribute__((ms_abi))
   functions: positional slots, stack arguments above the shadow space,
   aggregates by value (sizes 1, 2, 4, 8) and by reference, hidden return
   pointers, narrow-return widening, long double, complex, variadic. */

#include <complex.h>

#include "check.h"

#define MS __attribute__((ms_abi, noipa))

typedef struct { char c; } S1;
typedef struct { short s; } S2;
typedef struct { char a, b, c; } S3;
typedef struct { float f; } S4;
typedef struct { float x, y; } S8;
typedef struct { int a, b, c; } S12;
typedef struct { double x, y; } S16;

static ffi_type *s1_el[] = {&ffi_type_sint8, NULL};
static ffi_type s1_t = {0, 0, FFI_TYPE_STRUCT, s1_el};
static ffi_type *s2_el[] = {&ffi_type_sint16, NULL};
static ffi_type s2_t = {0, 0, FFI_TYPE_STRUCT, s2_el};
static ffi_type *s3_el[] = {&ffi_type_sint8, &ffi_type_sint8, &ffi_type_sint8,
                            NULL};
static ffi_type s3_t = {0, 0, FFI_TYPE_STRUCT, s3_el};
static ffi_type *s4_el[] = {&ffi_type_float, NULL};
static ffi_type s4_t = {0, 0, FFI_TYPE_STRUCT, s4_el};
static ffi_type *s8_el[] = {&ffi_type_float, &ffi_type_float, NULL};
static ffi_type s8_t = {0, 0, FFI_TYPE_STRUCT, s8_el};
static ffi_type *s12_el[] = {&ffi_type_sint32, &ffi_type_sint32,
                             &ffi_type_sint32, NULL};
static ffi_type s12_t = {0, 0, FFI_TYPE_STRUCT, s12_el};
static ffi_type *s16_el[] = {&ffi_type_double, &ffi_type_double, NULL};
static ffi_type s16_t = {0, 0, FFI_TYPE_STRUCT, s16_el};

MS static double mixed(int a, double b, int c, float d, int64_t e, double f,
                       uint8_t g, float h) {
  return a + b * 2 + c * 3 + d * 4 + (double)e * 5 + f * 6 + g * 7 + h * 8;
}
MS static int64_t aggregates(S1 a, S2 b, S3 c, S4 d, S8 e, S12 f, S16 g) {
  return a.c + 2 * b.s + 3 * (c.a + c.b + c.c) + (int64_t)(4 * d.f) +
         (int64_t)(5 * (e.x - e.y)) + 6 * (f.a + f.b + f.c) +
         (int64_t)(7 * (g.x + g.y));
}
MS static S8 ret_s8(float x, float y) {
  S8 o = {x * 2, y * 3};
  return o;
}
MS static S12 ret_s12(int k, S12 p) {
  S12 o = {p.a * k, p.b * k, p.c * k};
  return o;
}
MS static S16 ret_s16(S16 p, double k) {
  S16 o = {p.x * k, p.y - k};
  return o;
}
MS static S3 ret_s3(char k) {
  S3 o = {k, (char)(k + 1), (char)(k + 2)};
  return o;
}
MS static uint8_t ret_u8(int a) { return (uint8_t)(a * 3); }
MS static int16_t ret_s16_int(int a) { return (int16_t)(a * -3); }
MS static float ret_float(float a, double b) { return a * (float)b; }
MS static long double ld_fn(long double a, int k, long double b) {
  return a * k + b;
}
MS static double ld_arg(long double a, double b) { return (double)a + b; }
MS static float complex cf_fn(float complex a, float complex b) {
  return a * b;
}
MS static double complex cd_fn(double complex a, double complex b) {
  return a + b * 2;
}
MS static double vsum(int n, ...) {
  __builtin_ms_va_list ap;
  __builtin_ms_va_start(ap, n);
  double acc = 0;
  for (int i = 0; i < n; i++) {
    if (i % 2)
      acc += (i + 1) * __builtin_va_arg(ap, double);
    else
      acc += (i + 1) * __builtin_va_arg(ap, int);
  }
  __builtin_ms_va_end(ap);
  return acc;
}

static void run(ffi_abi abi, const char *name) {
  ffi_cif cif;
  {
    int a = -3, c = 100;
    double b = 1.5, f = -0.25;
    float d = 2.5f, h = -8.0f;
    int64_t e = 1ll << 33;
    uint8_t g = 255;
    ffi_type *t[8] = {&ffi_type_sint32, &ffi_type_double, &ffi_type_sint32,
                      &ffi_type_float,  &ffi_type_sint64, &ffi_type_double,
                      &ffi_type_uint8,  &ffi_type_float};
    void *v[8] = {&a, &b, &c, &d, &e, &f, &g, &h};
    double r;
    PREP(&cif, abi, 8, &ffi_type_double, t);
    ffi_call(&cif, FFI_FN(mixed), &r, v);
    printf("%s mixed: %.17g\n", name, r);
    CHECK(r == mixed(a, b, c, d, e, f, g, h), "%s mixed", name);
  }
  {
    S1 a = {-5};
    S2 b = {-1000};
    S3 c = {1, 2, 3};
    S4 d = {0.75f};
    S8 e = {10.0f, 2.5f};
    S12 f = {7, 8, 9};
    S16 g = {0.5, 100.25};
    ffi_type *t[7] = {&s1_t, &s2_t, &s3_t, &s4_t, &s8_t, &s12_t, &s16_t};
    void *v[7] = {&a, &b, &c, &d, &e, &f, &g};
    ffi_arg r;
    PREP(&cif, abi, 7, &ffi_type_sint64, t);
    ffi_call(&cif, FFI_FN(aggregates), &r, v);
    printf("%s aggregates: %ld\n", name, (long)r);
    CHECK((int64_t)r == aggregates(a, b, c, d, e, f, g), "%s aggregates",
          name);
  }
  {
    float x = 1.25f, y = -2.0f;
    ffi_type *t[2] = {&ffi_type_float, &ffi_type_float};
    void *v[2] = {&x, &y};
    S8 r;
    PREP(&cif, abi, 2, &s8_t, t);
    ffi_call(&cif, FFI_FN(ret_s8), &r, v);
    printf("%s ret_s8: %.9g %.9g\n", name, r.x, r.y);
    CHECK(r.x == 2.5f && r.y == -6.0f, "%s ret_s8", name);
  }
  {
    int k = -2;
    S12 p = {1, 2, 3};
    ffi_type *t[2] = {&ffi_type_sint32, &s12_t};
    void *v[2] = {&k, &p};
    unsigned char buf[16];
    memset(buf, 0xaa, sizeof buf);
    PREP(&cif, abi, 2, &s12_t, t);
    ffi_call(&cif, FFI_FN(ret_s12), buf, v);
    char label[64];
    snprintf(label, sizeof label, "%s ret_s12", name);
    hex(label, buf, 16);
    S12 want = ret_s12(k, p);
    CHECK(memcmp(buf, &want, 12) == 0, "%s ret_s12", name);
  }
  {
    S16 p = {3.0, 4.0};
    double k = 0.5;
    ffi_type *t[2] = {&s16_t, &ffi_type_double};
    void *v[2] = {&p, &k};
    S16 r;
    PREP(&cif, abi, 2, &s16_t, t);
    ffi_call(&cif, FFI_FN(ret_s16), &r, v);
    printf("%s ret_s16: %.17g %.17g\n", name, r.x, r.y);
    CHECK(r.x == 1.5 && r.y == 3.5, "%s ret_s16", name);
  }
  {
    char k = 'a';
    ffi_type *t[1] = {&ffi_type_sint8};
    void *v[1] = {&k};
    unsigned char buf[8];
    memset(buf, 0xaa, sizeof buf);
    PREP(&cif, abi, 1, &s3_t, t);
    ffi_call(&cif, FFI_FN(ret_s3), buf, v);
    CHECK(buf[0] == 'a' && buf[1] == 'b' && buf[2] == 'c', "%s ret_s3", name);
    printf("%s ret_s3: %c%c%c\n", name, buf[0], buf[1], buf[2]);
  }
  {
    int a = 100;
    void *v[1] = {&a};
    ffi_type *t[1] = {&ffi_type_sint32};
    ffi_arg r;
    memset(&r, 0xaa, sizeof r);
    PREP(&cif, abi, 1, &ffi_type_uint8, t);
    ffi_call(&cif, FFI_FN(ret_u8), &r, v);
    printf("%s ret_u8: %#lx\n", name, r);
    CHECK(r == 44, "%s ret_u8 widened", name);
    memset(&r, 0xaa, sizeof r);
    PREP(&cif, abi, 1, &ffi_type_sint16, t);
    ffi_call(&cif, FFI_FN(ret_s16_int), &r, v);
    printf("%s ret_s16_int: %#lx\n", name, r);
    CHECK((ffi_sarg)r == -300, "%s ret_s16 widened", name);
  }
  {
    float a = 1.5f;
    double b = -4;
    ffi_type *t[2] = {&ffi_type_float, &ffi_type_double};
    void *v[2] = {&a, &b};
    float r;
    PREP(&cif, abi, 2, &ffi_type_float, t);
    ffi_call(&cif, FFI_FN(ret_float), &r, v);
    printf("%s ret_float: %.9g\n", name, r);
    CHECK(r == -6.0f, "%s ret_float", name);
  }
  {
    /* A long double argument goes by reference under both ABIs. */
    long double a = 2.75L;
    double b = 0.25;
    ffi_type *t[2] = {&ffi_type_longdouble, &ffi_type_double};
    void *v[2] = {&a, &b};
    double r;
    PREP(&cif, abi, 2, &ffi_type_double, t);
    ffi_call(&cif, FFI_FN(ld_arg), &r, v);
    printf("%s ld_arg: %.17g\n", name, r);
    CHECK(r == 3.0, "%s ld_arg", name);
  }
  {
    /* Returned through the hidden pointer. libffi 3.4.4's FFI_WIN64 has
       no long double return (ffi_call aborts): ours only there. */
    long double a = 1.0L / 3, b = 10, r;
    int k = 3;
    ffi_type *t[3] = {&ffi_type_longdouble, &ffi_type_sint32,
                      &ffi_type_longdouble};
    void *v[3] = {&a, &k, &b};
    int shared = abi == FFI_GNUW64;
#ifndef JITFFI_OURS
    if (shared)
#endif
    {
      PREP(&cif, abi, 3, &ffi_type_longdouble, t);
      ffi_call(&cif, FFI_FN(ld_fn), &r, v);
      printf("%s%s ld_fn: %.21Lg\n", shared ? "" : "ours: ", name, r);
      CHECK(r == ld_fn(a, k, b), "%s ld_fn", name);
    }
  }
  {
    float complex a = 1 + 2 * I, b = 3 - 1 * I, r;
    ffi_type *t[2] = {&ffi_type_complex_float, &ffi_type_complex_float};
    void *v[2] = {&a, &b};
    PREP(&cif, abi, 2, &ffi_type_complex_float, t);
    ffi_call(&cif, FFI_FN(cf_fn), &r, v);
    printf("%s cf_fn: %.9g %.9g\n", name, crealf(r), cimagf(r));
    CHECK(r == cf_fn(a, b), "%s cf_fn", name);
  }
  {
    double complex a = 0.5 + 2 * I, b = -3 + 1.5 * I, r;
    ffi_type *t[2] = {&ffi_type_complex_double, &ffi_type_complex_double};
    void *v[2] = {&a, &b};
    PREP(&cif, abi, 2, &ffi_type_complex_double, t);
    ffi_call(&cif, FFI_FN(cd_fn), &r, v);
    printf("%s cd_fn: %.17g %.17g\n", name, creal(r), cimag(r));
    CHECK(r == cd_fn(a, b), "%s cd_fn", name);
  }
  {
    int n = 7, i0 = 5, i2 = -7, i4 = 9, i6 = 11;
    double d1 = 0.5, d3 = 1.25, d5 = -2.5;
    ffi_type *t[8] = {&ffi_type_sint32, &ffi_type_sint32, &ffi_type_double,
                      &ffi_type_sint32, &ffi_type_double, &ffi_type_sint32,
                      &ffi_type_double, &ffi_type_sint32};
    void *v[8] = {&n, &i0, &d1, &i2, &d3, &i4, &d5, &i6};
    double r;
    CHECK(ffi_prep_cif_var(&cif, abi, 1, 8, &ffi_type_double, t) == FFI_OK,
          "%s prep var", name);
    ffi_call(&cif, FFI_FN(vsum), &r, v);
    printf("%s vsum: %.17g\n", name, r);
    CHECK(r == vsum(n, i0, d1, i2, d3, i4, d5, i6), "%s vsum", name);
  }
}

int main(void) {
  run(FFI_WIN64, "win64");
  run(FFI_GNUW64, "gnuw64");
  run(FFI_EFI64, "efi64");
  return finish();
}
