/* Helpers shared by the C test programs. Every program prints what it
   observes; the Rust tests run it against our libffi.so.8 and (where the
   program allows) against the system's, and compare. Lines starting with
   "ours:" are results only our library gives (version queries, inputs on
   which libffi 3.4.4 aborts); they are left out of the comparison. */

#ifndef JITFFI_CHECK_H
#define JITFFI_CHECK_H

#include <ffi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

/* Records a failure (and prints it) unless `cond` holds. */
#define CHECK(cond, ...)                                     \
  do {                                                       \
    if (!(cond)) {                                           \
      failures++;                                            \
      printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      printf(__VA_ARGS__);                                   \
      printf("\n");                                          \
    }                                                        \
  } while (0)

/* ffi_prep_cif that must succeed. */
#define PREP(cif, abi, n, rt, at) \
  CHECK(ffi_prep_cif((cif), (abi), (n), (rt), (at)) == FFI_OK, "prep failed")

/* Prints `n` bytes in hex, 8 per group. */
__attribute__((unused)) static void hex(const char *label, const void *p, size_t n) {
  const unsigned char *c = p;
  printf("%s:", label);
  for (size_t i = 0; i < n; i++) printf("%s%02x", i % 8 ? "" : " ", c[i]);
  printf("\n");
}

/* Exit status: 0 when every check passed. */
static int finish(void) {
  if (failures) {
    printf("%d FAILURES\n", failures);
    return 1;
  }
  printf("all checks passed\n");
  return 0;
}

#endif
