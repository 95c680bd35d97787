// A C++ exception thrown by a function called through ffi_call (and
// ffi_raw_call) propagates through the call stub to the C++ caller, and
// the stub's frame leaves the caller's state intact for the next call.

#include <ffi.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

static int failures;
#define CHECK(cond, what)                    \
  do {                                       \
    if (!(cond)) {                           \
      failures++;                            \
      std::printf("FAIL %s\n", what);        \
    }                                        \
  } while (0)

extern "C" __attribute__((noipa)) int thrower(int x, double y) {
  if (x > 0) throw std::runtime_error("thrown with " + std::to_string(x));
  return x + (int)y;
}

struct Big {
  long w[4];
};

extern "C" __attribute__((noipa)) Big big_thrower(Big b, int k) {
  if (k) throw k;
  return b;
}

int main() {
  ffi_cif cif;
  ffi_type *a[2] = {&ffi_type_sint32, &ffi_type_double};
  CHECK(ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint32, a) == FFI_OK,
        "prep");
  for (int round = 0; round < 3; round++) {
    int x = round + 1;
    double y = 0.5;
    void *v[2] = {&x, &y};
    ffi_arg r;
    try {
      ffi_call(&cif, FFI_FN(thrower), &r, v);
      CHECK(false, "ffi_call returned instead of throwing");
    } catch (const std::runtime_error &e) {
      std::printf("ffi_call caught: %s\n", e.what());
    }
  }
  {
    int x = -3;
    double y = 2.0;
    void *v[2] = {&x, &y};
    ffi_arg r = 0;
    ffi_call(&cif, FFI_FN(thrower), &r, v);
    std::printf("after the throws: %d\n", (int)r);
    CHECK((int)r == -1, "call after throws");
  }
  {
    ffi_raw raw[2];
    int x = 7;
    double y = 0;
    void *v[2] = {&x, &y};
    ffi_ptrarray_to_raw(&cif, v, raw);
    ffi_arg r;
    try {
      ffi_raw_call(&cif, FFI_FN(thrower), &r, raw);
      CHECK(false, "ffi_raw_call returned instead of throwing");
    } catch (const std::runtime_error &e) {
      std::printf("ffi_raw_call caught: %s\n", e.what());
    }
  }
  {
    ffi_type *el[5] = {&ffi_type_slong, &ffi_type_slong, &ffi_type_slong,
                       &ffi_type_slong, nullptr};
    ffi_type big = {0, 0, FFI_TYPE_STRUCT, el};
    ffi_type *t[2] = {&big, &ffi_type_sint32};
    CHECK(ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &big, t) == FFI_OK,
          "prep big");
    Big b = {{1, 2, 3, 4}}, out;
    int k = 42;
    void *v[2] = {&b, &k};
    try {
      ffi_call(&cif, FFI_FN(big_thrower), &out, v);
      CHECK(false, "sret call returned instead of throwing");
    } catch (int e) {
      std::printf("sret ffi_call caught: %d\n", e);
    }
  }
  if (failures) {
    std::printf("%d FAILURES\n", failures);
    return 1;
  }
  std::printf("all checks passed\n");
  return 0;
}
