/* Preparation and calls from several threads at once: 247 distinct
   shapes (enough to grow the library's table of prepared shapes past its
   first chunks), prepared in a different order by each thread, each call
   checked; plus one cif prepared here and called from every thread. */

#include <pthread.h>

#include "check.h"

#define THREADS 4
#define ROUNDS 3

/* Receives up to 6 integer and 8 floating-point register arguments: any
   8-argument shape of longs and doubles with at most 6 longs reaches it
   in the same registers. Records them for the caller to check. */
static __thread long got_i[6];
static __thread double got_d[8];
__attribute__((noipa)) static void record(long a, long b, long c, long d,
                                          long e, long f, double x0, double x1,
                                          double x2, double x3, double x4,
                                          double x5, double x6, double x7) {
  long i[6] = {a, b, c, d, e, f};
  double x[8] = {x0, x1, x2, x3, x4, x5, x6, x7};
  memcpy(got_i, i, sizeof i);
  memcpy(got_d, x, sizeof x);
}

__attribute__((noipa)) static long add(long a, long b) { return a + b; }

static ffi_cif shared_cif;
static int thread_failures[THREADS];

static int shape_ok(unsigned mask) {
  return __builtin_popcount(mask) <= 6; /* bit set: a long */
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  int bad = 0;
  for (int round = 0; round < ROUNDS; round++) {
    for (unsigned n = 0; n < 256; n++) {
      unsigned mask = (n + 37 * (unsigned)id) % 256;
      if (!shape_ok(mask)) continue;
      ffi_type *t[8];
      void *v[8];
      long iv[8];
      double dv[8];
      int ni = 0, nd = 0;
      for (int k = 0; k < 8; k++) {
        iv[k] = (long)(mask * 1000 + k * 10 + id);
        dv[k] = mask + k * 0.5 + id * 0.25;
        if (mask >> k & 1) {
          t[k] = &ffi_type_slong;
          v[k] = &iv[k];
        } else {
          t[k] = &ffi_type_double;
          v[k] = &dv[k];
        }
      }
      ffi_cif cif;
      if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 8, &ffi_type_void, t) != FFI_OK) {
        bad++;
        continue;
      }
      ffi_call(&cif, FFI_FN(record), NULL, v);
      for (int k = 0; k < 8; k++) {
        if (mask >> k & 1)
          bad += got_i[ni++] != iv[k];
        else
          bad += got_d[nd++] != dv[k];
      }
      long a = id, b = n, r;
      void *sv[2] = {&a, &b};
      ffi_call(&shared_cif, FFI_FN(add), &r, sv);
      bad += r != a + b;
    }
  }
  thread_failures[id] = bad;
  return NULL;
}

int main(void) {
  ffi_type *t[2] = {&ffi_type_slong, &ffi_type_slong};
  PREP(&shared_cif, FFI_DEFAULT_ABI, 2, &ffi_type_slong, t);
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
  int shapes = 0;
  for (unsigned m = 0; m < 256; m++) shapes += shape_ok(m);
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    printf("thread %d: %d shapes x %d rounds, %d bad results\n", i, shapes,
           ROUNDS, thread_failures[i]);
    CHECK(thread_failures[i] == 0, "thread %d", i);
  }
  return finish();
}
