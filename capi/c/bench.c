/* Timing loops (not a test): a repeated ffi_prep_cif, ffi_call, and a
   closure's life (ffi_closure_alloc + ffi_prep_closure_loc +
   ffi_closure_free) for the handbook's signatures S1-S8. Build once
   against the system header and run with either library:

     cc -O2 -o bench capi/c/bench.c -lffi
     ./bench                                   # system libffi
     LD_LIBRARY_PATH=<dir of our libffi.so.8> ./bench

   capi/bench.sh does both and prints the ratios.

   Options: -i N  iterations per run (default 300000)
            -s Sk only signature Sk
            -o OP only one operation (prep, call or closure), N times,
                  untimed: for `valgrind --tool=callgrind` (count with
                  two values of N and take the difference)

   Prints the libffi it runs on (from /proc/self/maps), then, per
   signature, the median of 11 runs in ns per operation:
     sig prep call closure */

#include <ffi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOIPA __attribute__((noipa))

typedef struct { double a, b; } D2;
typedef struct { int64_t w[4]; } I4;

NOIPA static void s1(void) {}
NOIPA static int s2(int a, int b) { return a + b; }
NOIPA static double s3(double a, double b, double c, double d) {
  return a + b + c + d;
}
NOIPA static int64_t s4(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e,
                        int64_t f, int64_t g, int64_t h) {
  return a + b + c + d + e + f + g + h;
}
NOIPA static double s5(int a, double b, int64_t c, float d, void *e, int8_t f,
                       uint16_t g, double h) {
  return a + b + c + d + (double)(uintptr_t)e + f + g + h;
}
NOIPA static D2 s6(D2 x, D2 y) {
  D2 o = {x.a + y.a, x.b + y.b};
  return o;
}
NOIPA static I4 s7(I4 x) { return x; }
NOIPA static int s8(int a0, int a1, int a2, int a3, int a4, int a5, int a6,
                    int a7, int a8, int a9, int a10, int a11, int a12, int a13,
                    int a14, int a15) {
  return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 +
         a13 + a14 + a15;
}

static ffi_type *d2_el[] = {&ffi_type_double, &ffi_type_double, NULL};
static ffi_type d2_t = {0, 0, FFI_TYPE_STRUCT, d2_el};
static ffi_type *i4_el[] = {&ffi_type_sint64, &ffi_type_sint64,
                            &ffi_type_sint64, &ffi_type_sint64, NULL};
static ffi_type i4_t = {0, 0, FFI_TYPE_STRUCT, i4_el};

struct sig {
  const char *name;
  void (*fn)(void);
  ffi_type *ret;
  unsigned n;
  ffi_type *args[16];
};

/* The closures' handler: never called here. */
static void handler(ffi_cif *cif, void *ret, void **args, void *user_data) {
  (void)cif, (void)ret, (void)args, (void)user_data;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

#define RUNS 11

/* Prints "libffi <path>": the libffi.so this process mapped. */
static void print_libffi(void) {
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[4096];
  const char *found = "?";
  while (maps && fgets(line, sizeof line, maps)) {
    char *path = strchr(line, '/');
    if (path && strstr(path, "libffi.so")) {
      path[strcspn(path, "\n")] = 0;
      found = path;
      break;
    }
  }
  printf("libffi %s\n", found);
  if (maps) fclose(maps);
}

enum op { PREP, CALL, CLOSURE, OPS };
static const char *op_names[OPS] = {"prep", "call", "closure"};

/* Argument storage big enough for any of the signatures. */
static union {
  int64_t i;
  double d;
  D2 d2;
  I4 i4;
} store[16];
static void *values[16];
static char rvalue[64];

/* Runs `op` `iters` times on `g` (whose cif is prepared). */
static int run(enum op op, struct sig *g, ffi_cif *cif, long iters) {
  switch (op) {
  case PREP:
    for (long k = 0; k < iters; k++) {
      ffi_prep_cif(cif, FFI_DEFAULT_ABI, g->n, g->ret, g->args);
      __asm__ volatile("" ::: "memory");
    }
    break;
  case CALL:
    for (long k = 0; k < iters; k++) {
      ffi_call(cif, g->fn, rvalue, values);
      __asm__ volatile("" ::: "memory");
    }
    break;
  case CLOSURE:
    for (long k = 0; k < iters; k++) {
      void *code;
      ffi_closure *c = ffi_closure_alloc(sizeof(ffi_closure), &code);
      if (!c || ffi_prep_closure_loc(c, cif, handler, NULL, code) != FFI_OK) {
        printf("%s: closure failed\n", g->name);
        return 1;
      }
      ffi_closure_free(c);
      __asm__ volatile("" ::: "memory");
    }
    break;
  default:
    break;
  }
  return 0;
}

int main(int argc, char **argv) {
  long iters = 300000;
  const char *only = NULL;
  int single = -1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-i") && i + 1 < argc) {
      iters = atol(argv[++i]);
    } else if (!strcmp(argv[i], "-s") && i + 1 < argc) {
      only = argv[++i];
    } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
      const char *o = argv[++i];
      for (int k = 0; k < OPS; k++)
        if (!strcmp(o, op_names[k])) single = k;
      if (single < 0) {
        fprintf(stderr, "unknown operation %s\n", o);
        return 2;
      }
    } else {
      fprintf(stderr, "usage: %s [-i iters] [-s Sk] [-o prep|call|closure]\n",
              argv[0]);
      return 2;
    }
  }
  struct sig sigs[8] = {
      {"S1", FFI_FN(s1), &ffi_type_void, 0, {0}},
      {"S2", FFI_FN(s2), &ffi_type_sint, 2, {&ffi_type_sint, &ffi_type_sint}},
      {"S3", FFI_FN(s3), &ffi_type_double, 4,
       {&ffi_type_double, &ffi_type_double, &ffi_type_double,
        &ffi_type_double}},
      {"S4", FFI_FN(s4), &ffi_type_sint64, 8,
       {&ffi_type_sint64, &ffi_type_sint64, &ffi_type_sint64,
        &ffi_type_sint64, &ffi_type_sint64, &ffi_type_sint64,
        &ffi_type_sint64, &ffi_type_sint64}},
      {"S5", FFI_FN(s5), &ffi_type_double, 8,
       {&ffi_type_sint, &ffi_type_double, &ffi_type_sint64, &ffi_type_float,
        &ffi_type_pointer, &ffi_type_sint8, &ffi_type_uint16,
        &ffi_type_double}},
      {"S6", FFI_FN(s6), &d2_t, 2, {&d2_t, &d2_t}},
      {"S7", FFI_FN(s7), &i4_t, 1, {&i4_t}},
      {"S8", FFI_FN(s8), &ffi_type_sint, 16, {0}},
  };
  for (int i = 0; i < 16; i++) sigs[7].args[i] = &ffi_type_sint;
  for (int i = 0; i < 16; i++) {
    memset(&store[i], 0, sizeof store[i]);
    values[i] = &store[i];
  }

  if (single < 0) {
    print_libffi();
    printf("sig prep call closure\n");
  }
  for (int s = 0; s < 8; s++) {
    struct sig *g = &sigs[s];
    if (only && strcmp(only, g->name)) continue;
    ffi_cif cif;
    if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, g->n, g->ret, g->args) != FFI_OK) {
      printf("%s: prep failed\n", g->name);
      return 1;
    }
    if (single >= 0) {
      if (run(single, g, &cif, iters)) return 1;
      continue;
    }
    double t[OPS][RUNS];
    for (int r = 0; r < RUNS; r++) {
      for (int op = 0; op < OPS; op++) {
        double t0 = now();
        if (run(op, g, &cif, iters)) return 1;
        t[op][r] = (now() - t0) / iters;
      }
    }
    printf("%s", g->name);
    for (int op = 0; op < OPS; op++) {
      qsort(t[op], RUNS, sizeof t[op][0], cmp);
      printf(" %.1f", t[op][RUNS / 2]);
    }
    printf("\n");
  }
  return 0;
}
