/* Shared helpers of the closure test programs (capi/c/closure*.c).

   The programs print what they observe, one line per check, and count
   failures: the exit status is the number of failed checks (capped),
   so a run against our libffi.so.8 and one against the system libffi
   can be compared line for line. Nothing printed depends on addresses.
   SPDX-License-Identifier: MIT OR Apache-2.0 */

#ifndef CLOSURE_COMMON_H
#define CLOSURE_COMMON_H

#include <ffi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      failures++;                                                          \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);                          \
      printf(__VA_ARGS__);                                                 \
      printf("\n");                                                        \
    }                                                                      \
  } while (0)

/* Stops the program: a precondition of the test itself failed. */
#define DIE(...)                                                           \
  do {                                                                     \
    printf("DIE %s:%d: ", __FILE__, __LINE__);                             \
    printf(__VA_ARGS__);                                                   \
    printf("\n");                                                          \
    fflush(stdout);                                                        \
    exit(100);                                                             \
  } while (0)

typedef void (*handler_fn)(ffi_cif *, void *, void **, void *);

static void prep(ffi_cif *cif, ffi_abi abi, unsigned n, ffi_type *rt,
                 ffi_type **at) {
  ffi_status s = ffi_prep_cif(cif, abi, n, rt, at);
  if (s != FFI_OK) DIE("ffi_prep_cif: %d", (int)s);
}

/* A prepared closure from ffi_closure_alloc: its writable address in
   *keep (for ffi_closure_free), its code address returned. */
static void *closure_for(ffi_cif *cif, handler_fn fun, void *ud,
                         ffi_closure **keep) {
  void *code = NULL;
  ffi_closure *c = ffi_closure_alloc(sizeof(ffi_closure), &code);
  if (c == NULL || code == NULL) DIE("ffi_closure_alloc failed");
  ffi_status s = ffi_prep_closure_loc(c, cif, fun, ud, code);
  if (s != FFI_OK) DIE("ffi_prep_closure_loc: %d", (int)s);
  *keep = c;
  return code;
}

static int finish(void) {
  printf("failures: %d\n", failures);
  fflush(stdout);
  return failures > 99 ? 99 : failures;
}

#endif
