/* The raw API (8-byte ffi_raw slots) and the Java raw API: sizes, both
   translation directions, and calls. The slot layouts printed here are
   libffi 3.4.4's, compared line by line. */

#include "check.h"

#define NOIPA __attribute__((noipa))

typedef struct { int a; double b; } IntDouble;
static ffi_type *intdouble_el[] = {&ffi_type_sint32, &ffi_type_double, NULL};
static ffi_type intdouble_t = {0, 0, FFI_TYPE_STRUCT, intdouble_el};

static ffi_type *all_types[] = {
    &ffi_type_uint8,  &ffi_type_sint8,      &ffi_type_uint16,
    &ffi_type_sint16, &ffi_type_uint32,     &ffi_type_sint32,
    &ffi_type_uint64, &ffi_type_sint64,     &ffi_type_float,
    &ffi_type_double, &ffi_type_pointer,    &ffi_type_longdouble,
    &intdouble_t,     &ffi_type_complex_double, &ffi_type_complex_float};
static const char *all_names[] = {"u8",     "s8",      "u16",        "s16",
                                  "u32",    "s32",     "u64",        "s64",
                                  "float",  "double",  "pointer",    "longdouble",
                                  "struct", "cdouble", "cfloat"};
#define N_ALL 15
/* Java's raw API has no struct or complex types. */
#define N_JAVA 12

static uint8_t u8 = 0xf1;
static int8_t s8 = -3;
static uint16_t u16 = 0xf123;
static int16_t s16 = -300;
static uint32_t u32 = 0xf1234567;
static int32_t s32 = -70000;
static uint64_t u64 = 0x1122334455667788;
static int64_t s64 = -5;
static float f = 1.5f;
static double d = 2.25;
static void *p = (void *)0x1234;
static long double ld = 3.5L;
static IntDouble sd = {7, 8.5};
static _Complex double cd = 1.0;
static _Complex float cf = 3.0f;
static void *all_values[] = {&u8, &s8, &u16, &s16, &u32, &s32, &u64, &s64,
                             &f,  &d,  &p,   &ld,  &sd,  &cd,  &cf};

/* Prints the raw area slot by slot; a slot holding the address of one of
   the values is printed as "&name" (addresses differ between runs). */
static void dump_slots(const char *label, const ffi_raw *raw, size_t bytes) {
  printf("%s:", label);
  for (size_t i = 0; i < bytes / sizeof(ffi_raw); i++) {
    const char *named = NULL;
    for (int k = 0; k < N_ALL; k++)
      if (raw[i].ptr == all_values[k]) named = all_names[k];
    if (named)
      printf(" &%s", named);
    else
      printf(" %016lx", raw[i].uint);
  }
  printf("\n");
}

static void sizes(void) {
  for (int i = 0; i < N_ALL; i++) {
    ffi_cif cif;
    PREP(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, &all_types[i]);
    printf("raw_size %s: %zu", all_names[i], ffi_raw_size(&cif));
    if (i < N_JAVA) printf(" java %zu", ffi_java_raw_size(&cif));
    printf("\n");
  }
}

static void translations(void) {
  for (int java = 0; java < 2; java++) {
    int n = java ? N_JAVA : N_ALL;
    ffi_cif cif;
    PREP(&cif, FFI_DEFAULT_ABI, n, &ffi_type_void, all_types);
    size_t size = java ? ffi_java_raw_size(&cif) : ffi_raw_size(&cif);
    ffi_raw raw[40];
    memset(raw, 0xaa, sizeof raw);
    if (java)
      ffi_java_ptrarray_to_raw(&cif, all_values, raw);
    else
      ffi_ptrarray_to_raw(&cif, all_values, raw);
    dump_slots(java ? "java_ptrarray_to_raw" : "ptrarray_to_raw", raw,
               size + 16);
    void *args[N_ALL];
    if (java)
      ffi_java_raw_to_ptrarray(&cif, raw, args);
    else
      ffi_raw_to_ptrarray(&cif, raw, args);
    printf("%s:", java ? "java_raw_to_ptrarray" : "raw_to_ptrarray");
    for (int i = 0; i < n; i++) {
      long off = (char *)args[i] - (char *)raw;
      if (off >= 0 && off < (long)sizeof raw)
        printf(" %s@%ld", all_names[i], off);
      else
        printf(" %s%s", all_names[i],
               args[i] == all_values[i] ? "=original" : "=elsewhere");
    }
    printf("\n");
  }
  /* Java's struct and long double quirk: nothing written, no slot taken,
     when translating to raw. */
  ffi_type *t[3] = {&intdouble_t, &ffi_type_longdouble, &ffi_type_uint32};
  void *v[3] = {&sd, &ld, &u32};
  ffi_cif cif;
  PREP(&cif, FFI_DEFAULT_ABI, 3, &ffi_type_void, t);
  ffi_raw raw[4];
  memset(raw, 0xaa, sizeof raw);
  ffi_java_ptrarray_to_raw(&cif, v, raw);
  dump_slots("java struct, long double, u32", raw, sizeof raw);
}

NOIPA static int8_t r_s8(int8_t a, uint16_t b, int64_t c, float x) {
  return (int8_t)(a + b + c + (int)x);
}
NOIPA static uint16_t r_u16(uint16_t a, int32_t b) { return (uint16_t)(a * b); }
NOIPA static double r_double(double a, int64_t b, float c, void *q) {
  return a * b + c + (double)(uintptr_t)q;
}
NOIPA static float r_float(float a, uint8_t b) { return a * b; }
NOIPA static long double r_ld(long double a, int b) { return a * b; }
NOIPA static IntDouble r_struct(IntDouble a, int k) {
  IntDouble o = {a.a * k, a.b * k};
  return o;
}

static void calls(void) {
  ffi_cif cif;
  ffi_raw raw[8];
  unsigned char rv[16];
  for (int java = 0; java < 2; java++) {
    const char *kind = java ? "java_raw_call" : "raw_call";
#define RAWCALL(fn)                                                  \
  do {                                                               \
    memset(raw, 0xaa, sizeof raw);                                   \
    memset(rv, 0xaa, sizeof rv);                                     \
    if (java) {                                                      \
      ffi_java_ptrarray_to_raw(&cif, v, raw);                        \
      ffi_java_raw_call(&cif, FFI_FN(fn), rv, raw);                  \
    } else {                                                         \
      ffi_ptrarray_to_raw(&cif, v, raw);                             \
      ffi_raw_call(&cif, FFI_FN(fn), rv, raw);                       \
    }                                                                \
    char label[64];                                                  \
    snprintf(label, sizeof label, "%s %s", kind, #fn);               \
    hex(label, rv, 16);                                              \
  } while (0)
    {
      int8_t a = -100;
      uint16_t b = 500;
      int64_t c = -1000000000000ll;
      float x = 2.5f;
      ffi_type *t[4] = {&ffi_type_sint8, &ffi_type_uint16, &ffi_type_sint64,
                        &ffi_type_float};
      void *v[4] = {&a, &b, &c, &x};
      PREP(&cif, FFI_DEFAULT_ABI, 4, &ffi_type_sint8, t);
      RAWCALL(r_s8);
      CHECK(*(ffi_sarg *)rv == r_s8(a, b, c, x), "%s r_s8", kind);
    }
    {
      uint16_t a = 300;
      int32_t b = -7;
      ffi_type *t[2] = {&ffi_type_uint16, &ffi_type_sint32};
      void *v[2] = {&a, &b};
      PREP(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_uint16, t);
      RAWCALL(r_u16);
      CHECK(*(ffi_arg *)rv == r_u16(a, b), "%s r_u16", kind);
    }
    {
      double a = 1.5;
      int64_t b = -3;
      float c = 0.25f;
      void *q = (void *)0x100;
      ffi_type *t[4] = {&ffi_type_double, &ffi_type_sint64, &ffi_type_float,
                        &ffi_type_pointer};
      void *v[4] = {&a, &b, &c, &q};
      PREP(&cif, FFI_DEFAULT_ABI, 4, &ffi_type_double, t);
      RAWCALL(r_double);
      CHECK(*(double *)rv == r_double(a, b, c, q), "%s r_double", kind);
    }
    {
      float a = -1.5f;
      uint8_t b = 200;
      ffi_type *t[2] = {&ffi_type_float, &ffi_type_uint8};
      void *v[2] = {&a, &b};
      PREP(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_float, t);
      RAWCALL(r_float);
      CHECK(*(float *)rv == r_float(a, b), "%s r_float", kind);
    }
    if (!java) {
      /* Only the plain raw API carries long doubles and structs. */
      long double a = 1.25L;
      int k = 3;
      ffi_type *t[2] = {&ffi_type_longdouble, &ffi_type_sint32};
      void *v[2] = {&a, &k};
      PREP(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_longdouble, t);
      RAWCALL(r_ld);
      CHECK(*(long double *)rv == r_ld(a, k), "raw r_ld");
      IntDouble s = {4, -0.5};
      ffi_type *t2[2] = {&intdouble_t, &ffi_type_sint32};
      void *v2[2] = {&s, &k};
      PREP(&cif, FFI_DEFAULT_ABI, 2, &intdouble_t, t2);
      {
        void **v = v2;
        RAWCALL(r_struct);
      }
      IntDouble want = r_struct(s, k), got;
      memcpy(&got, rv, sizeof got);
      CHECK(got.a == want.a && got.b == want.b, "raw r_struct");
    }
  }
}

int main(void) {
  sizes();
  translations();
  calls();
  return finish();
}
