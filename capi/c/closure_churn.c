/* Closure allocation under churn and threads.

   - A million alloc + prepare + call + free cycles over several record
     sizes (an ffi_closure, an ffi_raw_closure, bigger client structs),
     and rounds of thousands of live closures freed in scrambled order:
     with our library, the process's mapped memory must not grow once the
     peak number of live closures has been reached.
   - Threads allocating, preparing, calling and freeing at once, closures
     freed by another thread than the one that allocated them, one
     closure called from every thread at once, and every thread preparing
     the same new signature at the same moment.

   Prints the same lines with our library and the system libffi (timings
   go to stderr).
   SPDX-License-Identifier: MIT OR Apache-2.0 */

#define _GNU_SOURCE
#include "closure_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Mapped memory of the process (VmSize), in KiB. */
static long vm_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  if (f == NULL) DIE("/proc/self/status");
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmSize: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

static void h_affine(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)cif;
  *(ffi_sarg *)ret = *(int *)args[0] * 3 + (int)(intptr_t)ud;
}

static ffi_cif int_cif;
static ffi_type *int_arg[1] = {&ffi_type_sint32};

static const size_t sizes[5] = {sizeof(ffi_closure), sizeof(ffi_raw_closure),
                                200, 1000, 5000};

/* One cycle: alloc a record of sizes[i % 5], prepare, call, free. */
static int cycle(unsigned i) {
  void *code = NULL;
  ffi_closure *c = ffi_closure_alloc(sizes[i % 5], &code);
  if (c == NULL) return 0;
  int ok = ffi_prep_closure_loc(c, &int_cif, h_affine,
                                (void *)(intptr_t)(i & 0xffff), code) == FFI_OK;
  ok = ok && ((int (*)(int))code)((int)(i % 1000)) ==
                 (int)(i % 1000) * 3 + (int)(i & 0xffff);
  ffi_closure_free(c);
  return ok;
}

#define LIVE 3000

/* Allocates LIVE closures, calls each, frees them in a scrambled order. */
static int round_of_live(unsigned seed) {
  static ffi_closure *live[LIVE];
  static void *code[LIVE];
  int ok = 1;
  for (unsigned i = 0; i < LIVE; i++) {
    live[i] = ffi_closure_alloc(sizes[(i + seed) % 5], &code[i]);
    if (live[i] == NULL) return 0;
    ok &= ffi_prep_closure_loc(live[i], &int_cif, h_affine,
                               (void *)(intptr_t)i, code[i]) == FFI_OK;
  }
  for (unsigned i = 0; i < LIVE; i++)
    ok &= ((int (*)(int))code[i])(1) == 3 + (int)i;
  /* 7 is coprime with LIVE: every index once. */
  for (unsigned i = 0; i < LIVE; i++) ffi_closure_free(live[(i * 7 + seed) % LIVE]);
  return ok;
}

static void t_churn(void) {
  int ok = 1;
  for (unsigned i = 0; i < 1000; i++) ok &= cycle(i);
  ok &= round_of_live(0);
  long before = vm_kib();
  double t0 = now();
  for (unsigned i = 0; i < 1000000; i++) ok &= cycle(i);
  double t1 = now();
  for (unsigned r = 1; r <= 100; r++) ok &= round_of_live(r);
  double t2 = now();
  long grown = vm_kib() - before;
  fprintf(stderr, "churn: %.1f ns per alloc+prep+call+free; %.1f us per round "
                  "of %d live; VmSize grew %ld KiB\n",
          (t1 - t0) * 1e3, (t2 - t1) * 1e4, LIVE, grown);
  printf("churn        1000000 cycles and 100 rounds of %d live: %s\n", LIVE,
         ok ? "ok" : "WRONG");
  CHECK(ok, "churn results");
#ifdef JITFFI_OURS
  /* Bounded: what one round of live closures needs is mapped by then;
     allow a little for the C library's own allocations. (libffi 3.4.4's
     allocator grows by megabytes here, so the system run only reports.) */
  printf("ours: churn memory bounded: %s\n", grown <= 1024 ? "yes" : "no");
  CHECK(grown <= 1024, "VmSize grew by %ld KiB", grown);
#endif
}

/* ---- threads ---------------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 50000

static pthread_barrier_t barrier;
static atomic_long shared_calls;
static int (*shared_fn)(int);

/* Handed from each thread to the next, to be freed there. */
static ffi_closure *handoff[THREADS][64];
static void *handoff_code[THREADS][64];

static void h_count(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)cif;
  atomic_fetch_add_explicit((atomic_long *)ud, 1, memory_order_relaxed);
  *(ffi_sarg *)ret = *(int *)args[0] + 1;
}

/* The signature every thread prepares at the same moment (its thunk is
   compiled on first use). */
static ffi_type *fresh_args[13];

static void h_fresh(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)ud;
  double s = 0;
  for (unsigned i = 0; i < cif->nargs; i++) s += *(double *)args[i];
  *(double *)ret = s;
}

static void *worker(void *arg) {
  long id = (long)arg;
  long ok = 1;

  pthread_barrier_wait(&barrier);
  ffi_cif fresh;
  ffi_closure *fc;
  if (ffi_prep_cif(&fresh, FFI_DEFAULT_ABI, 13, &ffi_type_double, fresh_args) != FFI_OK)
    return (void *)0;
  double (*ff)(double, double, double, double, double, double, double, double,
               double, double, double, double, double) =
      (double (*)(double, double, double, double, double, double, double,
                  double, double, double, double, double, double))
          closure_for(&fresh, h_fresh, NULL, &fc);
  ok &= ff(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, id) == 78 + id;
  ffi_closure_free(fc);

  for (unsigned i = 0; i < PER_THREAD; i++) {
    ok &= cycle(i * THREADS + (unsigned)id);
    if (i % 16 == 0) ok &= shared_fn((int)i) == (int)i + 1;
  }
  for (int i = 0; i < 64; i++) {
    handoff[id][i] = ffi_closure_alloc(sizes[i % 5], &handoff_code[id][i]);
    ok &= handoff[id][i] != NULL &&
          ffi_prep_closure_loc(handoff[id][i], &int_cif, h_affine,
                               (void *)(intptr_t)(id * 100 + i),
                               handoff_code[id][i]) == FFI_OK;
  }
  pthread_barrier_wait(&barrier);
  /* Call and free the neighbour's closures. */
  long next = (id + 1) % THREADS;
  for (int i = 0; i < 64; i++) {
    ok &= ((int (*)(int))handoff_code[next][i])(2) == 6 + (int)(next * 100 + i);
    ffi_closure_free(handoff[next][i]);
  }
  return (void *)ok;
}

static void t_threads(void) {
  ffi_cif scif;
  ffi_closure *sc;
  prep(&scif, FFI_DEFAULT_ABI, 1, &ffi_type_sint32, int_arg);
  shared_fn = (int (*)(int))closure_for(&scif, h_count, &shared_calls, &sc);
  for (int i = 0; i < 13; i++) fresh_args[i] = &ffi_type_double;
  pthread_barrier_init(&barrier, NULL, THREADS);
  pthread_t t[THREADS];
  double t0 = now();
  for (long i = 0; i < THREADS; i++)
    if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) DIE("pthread_create");
  long ok = 1;
  for (int i = 0; i < THREADS; i++) {
    void *r;
    pthread_join(t[i], &r);
    ok &= (long)r;
  }
  fprintf(stderr, "threads: %.1f ms\n", (now() - t0) * 1e3);
  long calls = atomic_load(&shared_calls);
  printf("threads      %d threads: %s; shared closure called %ld times\n",
         THREADS, ok ? "ok" : "WRONG", calls);
  CHECK(ok, "threads");
  CHECK(calls == THREADS * (PER_THREAD / 16 + (PER_THREAD % 16 != 0)),
        "shared calls %ld", calls);
  ffi_closure_free(sc);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  prep(&int_cif, FFI_DEFAULT_ABI, 1, &ffi_type_sint32, int_arg);
  t_churn();
  t_threads();
  return finish();
}
