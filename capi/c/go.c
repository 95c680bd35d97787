/* Go closures: ffi_prep_go_closure and ffi_call_go, the static chain
   (r10 on x86-64, x18 on AArch64) in both directions. Callers pass the
   chain with gcc's __builtin_call_with_static_chain; callees read it in
   assembly. */
#include "check.h"

/* A Go closure with the client's own data after it: the handler gets the
   closure's address as its user_data. */
struct counter {
  ffi_go_closure go;
  int64_t base;
  int calls;
};

static void add_handler(ffi_cif *cif, void *ret, void **args, void *user) {
  struct counter *c = user;
  CHECK(cif == c->go.cif, "handler got the closure's cif");
  c->calls++;
  *(ffi_sarg *)ret = c->base + *(int *)args[0] * 10 + *(int *)args[1];
}

typedef struct { double x, y; } pt;

static void scale_handler(ffi_cif *cif, void *ret, void **args, void *user) {
  (void)cif;
  struct counter *c = user;
  pt p = *(pt *)args[0];
  double k = *(double *)args[1];
  pt r = {p.x * k + (double)c->base, p.y * k};
  *(pt *)ret = r;
}

typedef struct { int64_t a, b, c, d; } big;

static void big_handler(ffi_cif *cif, void *ret, void **args, void *user) {
  (void)cif;
  struct counter *c = user;
  int64_t v[9];
  for (int i = 0; i < 9; i++) v[i] = *(int64_t *)args[i];
  big r = {c->base, v[0] + v[8], v[7], v[1] * v[6]};
  *(big *)ret = r;
}

/* Callees reading their static chain register plus the arguments. */
int64_t go_chain_plus(int64_t a, int64_t b);      /* chain + 3a + b */
double go_chain_scale(double x, int64_t n);        /* x * n + chain */
#if defined(__x86_64__)
asm(R"(
    .pushsection .text
    .globl go_chain_plus, go_chain_scale
    .type go_chain_plus, @function
go_chain_plus:
    lea (%rdi,%rdi,2), %rax
    add %rsi, %rax
    add %r10, %rax
    ret
    .size go_chain_plus, .-go_chain_plus
    .type go_chain_scale, @function
go_chain_scale:
    cvtsi2sd %rdi, %xmm1
    mulsd %xmm1, %xmm0
    cvtsi2sd %r10, %xmm1
    addsd %xmm1, %xmm0
    ret
    .size go_chain_scale, .-go_chain_scale
    .popsection
)");
#elif defined(__aarch64__)
asm(R"(
    .pushsection .text
    .globl go_chain_plus, go_chain_scale
    .type go_chain_plus, %function
go_chain_plus:
    add x0, x0, x0, lsl #1
    add x0, x0, x1
    add x0, x0, x18
    ret
    .size go_chain_plus, .-go_chain_plus
    .type go_chain_scale, %function
go_chain_scale:
    scvtf d1, x0
    fmul d0, d0, d1
    scvtf d1, x18
    fadd d0, d0, d1
    ret
    .size go_chain_scale, .-go_chain_scale
    .popsection
)");
#else
#error "static chain callees for this target"
#endif

int main(void) {
  /* Closures called with the chain. */
  ffi_cif cif;
  ffi_type *ii[2] = {&ffi_type_sint, &ffi_type_sint};
  PREP(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint64, ii);
  struct counter c = {.base = 1000};
  CHECK(ffi_prep_go_closure(&c.go, &cif, add_handler) == FFI_OK, "prep go closure");
  int64_t (*add)(int, int) = (int64_t (*)(int, int))c.go.tramp;
  int64_t r1 = __builtin_call_with_static_chain(add(4, 2), &c);
  int64_t r2 = __builtin_call_with_static_chain(add(-7, 3), &c);
  printf("go add: %lld %lld calls %d\n", (long long)r1, (long long)r2, c.calls);
  CHECK(r1 == 1042 && r2 == 933 && c.calls == 2, "go add results");

  /* A second closure of the same shape shares the code, not the data. */
  struct counter c2 = {.base = -5};
  CHECK(ffi_prep_go_closure(&c2.go, &cif, add_handler) == FFI_OK, "prep second");
  int64_t r3 = __builtin_call_with_static_chain(add(1, 1), &c2);
  printf("go add second: %lld\n", (long long)r3);
  CHECK(r3 == 6, "second closure result");

  /* A struct in floating-point registers (SSE; an HFA on AArch64), and
     returned in them. */
  ffi_type *pt_elems[3] = {&ffi_type_double, &ffi_type_double, NULL};
  ffi_type pt_type = {0, 0, FFI_TYPE_STRUCT, pt_elems};
  ffi_type *sd[2] = {&pt_type, &ffi_type_double};
  ffi_cif scif;
  PREP(&scif, FFI_DEFAULT_ABI, 2, &pt_type, sd);
  struct counter c3 = {.base = 100};
  CHECK(ffi_prep_go_closure(&c3.go, &scif, scale_handler) == FFI_OK, "prep scale");
  pt (*scale)(pt, double) = (pt (*)(pt, double))c3.go.tramp;
  pt in = {1.5, -2.0};
  pt out = __builtin_call_with_static_chain(scale(in, 4.0), &c3);
  printf("go scale: %g %g\n", out.x, out.y);
  CHECK(out.x == 106.0 && out.y == -8.0, "scale result");

  /* sret and stack arguments. */
  ffi_type *big_elems[5] = {&ffi_type_sint64, &ffi_type_sint64, &ffi_type_sint64,
                            &ffi_type_sint64, NULL};
  ffi_type big_type = {0, 0, FFI_TYPE_STRUCT, big_elems};
  ffi_type *nine[9];
  for (int i = 0; i < 9; i++) nine[i] = &ffi_type_sint64;
  ffi_cif bcif;
  PREP(&bcif, FFI_DEFAULT_ABI, 9, &big_type, nine);
  struct counter c4 = {.base = 77};
  CHECK(ffi_prep_go_closure(&c4.go, &bcif, big_handler) == FFI_OK, "prep big");
  big (*bigf)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
              int64_t, int64_t) =
      (big (*)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
               int64_t, int64_t))c4.go.tramp;
  big b = __builtin_call_with_static_chain(bigf(1, 2, 3, 4, 5, 6, 7, 8, 9), &c4);
  printf("go big: %lld %lld %lld %lld\n", (long long)b.a, (long long)b.b,
         (long long)b.c, (long long)b.d);
  CHECK(b.a == 77 && b.b == 10 && b.c == 8 && b.d == 14, "big result");

  /* ffi_call_go: the callee sees the chain. */
  ffi_cif pcif;
  ffi_type *ll[2] = {&ffi_type_sint64, &ffi_type_sint64};
  PREP(&pcif, FFI_DEFAULT_ABI, 2, &ffi_type_sint64, ll);
  int64_t a = 5, bb = 6, res = 0;
  void *av[2] = {&a, &bb};
  ffi_call_go(&pcif, FFI_FN(go_chain_plus), &res, av, (void *)(intptr_t)1000000);
  printf("call_go plus: %lld\n", (long long)res);
  CHECK(res == 1000021, "call_go plus");

  ffi_cif dcif;
  ffi_type *dl[2] = {&ffi_type_double, &ffi_type_sint64};
  PREP(&dcif, FFI_DEFAULT_ABI, 2, &ffi_type_double, dl);
  double x = 2.5, dres = 0;
  int64_t n = 4;
  void *dv[2] = {&x, &n};
  ffi_call_go(&dcif, FFI_FN(go_chain_scale), &dres, dv, (void *)(intptr_t)-3);
  printf("call_go scale: %g\n", dres);
  CHECK(dres == 7.0, "call_go scale");

  /* ffi_call_go into a Go closure: chain in, closure out. */
  int64_t r5 = 0;
  int ia = 9, ib = 8;
  void *iv[2] = {&ia, &ib};
  ffi_call_go(&cif, FFI_FN(c.go.tramp), &r5, iv, &c);
  printf("call_go closure: %lld calls %d\n", (long long)r5, c.calls);
  CHECK(r5 == 1098 && c.calls == 3, "call_go into closure");

#ifdef JITFFI_OURS
  /* An unprepared cif is refused, not called. */
  ffi_cif bad;
  memset(&bad, 0, sizeof bad);
  struct counter c5 = {0};
  printf("ours: unprepared cif: %d\n", (int)ffi_prep_go_closure(&c5.go, &bad, add_handler));
  CHECK(ffi_prep_go_closure(&c5.go, &bad, add_handler) == FFI_BAD_ABI, "unprepared refused");
#endif

  return finish();
}
