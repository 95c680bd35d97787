// A C++ exception thrown by a closure's handler propagates through the
// closure's trampoline and thunk to the C++ code that called the closure
// (plain, raw-free and Go closures), and the closure works again after.

#include <ffi.h>

#include <cstdio>
#include <stdexcept>
#include <string>

static int failures;
#define CHECK(cond, what)             \
  do {                                \
    if (!(cond)) {                    \
      failures++;                     \
      std::printf("FAIL %s\n", what); \
    }                                 \
  } while (0)

// Throws for a positive first argument, else returns a + b.
static void handler(ffi_cif *, void *ret, void **args, void *user) {
  int a = *(int *)args[0], b = *(int *)args[1];
  if (a > 0) throw std::runtime_error(std::string((const char *)user) + " " + std::to_string(a));
  *(ffi_sarg *)ret = a + b;
}

struct Big {
  long w[5];
};

// Stack arguments and an sret return: the thunk's biggest frame.
static void big_handler(ffi_cif *, void *ret, void **args, void *) {
  long k = *(long *)args[0];
  if (k) throw k;
  Big b = {{1, 2, 3, 4, *(long *)args[8]}};
  *(Big *)ret = b;
}

struct GoCounter {
  ffi_go_closure go;
  int calls;
};

static void go_handler(ffi_cif *, void *ret, void **args, void *user) {
  GoCounter *c = (GoCounter *)user;
  c->calls++;
  int a = *(int *)args[0];
  if (a > 0) throw a * 100;
  *(ffi_sarg *)ret = a - 1;
}

int main() {
  ffi_cif cif;
  ffi_type *ii[2] = {&ffi_type_sint32, &ffi_type_sint32};
  CHECK(ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint32, ii) == FFI_OK, "prep");
  void *code = nullptr;
  ffi_closure *cl = (ffi_closure *)ffi_closure_alloc(sizeof(ffi_closure), &code);
  CHECK(cl && code, "alloc");
  static char tag[] = "from the handler";
  CHECK(ffi_prep_closure_loc(cl, &cif, handler, tag, code) == FFI_OK, "prep closure");
  int (*fn)(int, int) = (int (*)(int, int))code;
  for (int round = 1; round <= 3; round++) {
    try {
      fn(round, 1);
      CHECK(false, "closure returned instead of throwing");
    } catch (const std::runtime_error &e) {
      std::printf("closure caught: %s\n", e.what());
    }
  }
  std::printf("closure after the throws: %d\n", fn(-5, 2));
  CHECK(fn(-5, 2) == -3, "closure after throws");

  // Through ffi_call into the closure: two jitffi frames between the
  // throw and the catch.
  int a = 7, b = 0;
  void *av[2] = {&a, &b};
  ffi_arg r = 0;
  try {
    ffi_call(&cif, FFI_FN(code), &r, av);
    CHECK(false, "ffi_call into the closure returned");
  } catch (const std::runtime_error &e) {
    std::printf("ffi_call into closure caught: %s\n", e.what());
  }

  ffi_type *elems[6] = {&ffi_type_slong, &ffi_type_slong, &ffi_type_slong,
                        &ffi_type_slong, &ffi_type_slong, nullptr};
  ffi_type big = {0, 0, FFI_TYPE_STRUCT, elems};
  ffi_type *nine[9];
  for (auto &t : nine) t = &ffi_type_slong;
  ffi_cif bcif;
  CHECK(ffi_prep_cif(&bcif, FFI_DEFAULT_ABI, 9, &big, nine) == FFI_OK, "prep big");
  void *bcode = nullptr;
  ffi_closure *bcl = (ffi_closure *)ffi_closure_alloc(sizeof(ffi_closure), &bcode);
  CHECK(ffi_prep_closure_loc(bcl, &bcif, big_handler, nullptr, bcode) == FFI_OK, "prep big closure");
  Big (*bfn)(long, long, long, long, long, long, long, long, long) =
      (Big(*)(long, long, long, long, long, long, long, long, long))bcode;
  try {
    bfn(42, 0, 0, 0, 0, 0, 0, 0, 9);
    CHECK(false, "big closure returned");
  } catch (long k) {
    std::printf("big closure caught: %ld\n", k);
  }
  Big ok = bfn(0, 0, 0, 0, 0, 0, 0, 0, 9);
  std::printf("big closure after: %ld\n", ok.w[4]);
  CHECK(ok.w[4] == 9, "big closure after throw");

  GoCounter g{};
  CHECK(ffi_prep_go_closure(&g.go, &cif, go_handler) == FFI_OK, "prep go");
  // ffi_call_go puts the closure in the static chain register: the throw
  // crosses the Go thunk and the chain stub.
  int ga = 3, gb = 0;
  void *gv[2] = {&ga, &gb};
  ffi_arg gr = 0;
  try {
    ffi_call_go(&cif, FFI_FN(g.go.tramp), &gr, gv, &g);
    CHECK(false, "go closure returned");
  } catch (int v) {
    std::printf("go closure caught: %d\n", v);
  }
  ga = -1;
  ffi_call_go(&cif, FFI_FN(g.go.tramp), &gr, gv, &g);
  int after = (int)gr;
  std::printf("go closure after: %d calls %d\n", after, g.calls);
  CHECK(after == -2 && g.calls == 2, "go closure after throw");

  ffi_closure_free(cl);
  ffi_closure_free(bcl);
  if (failures) {
    std::printf("%d FAILURES\n", failures);
    return 1;
  }
  std::printf("all checks passed\n");
  return 0;
}
