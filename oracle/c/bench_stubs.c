/* S1-S8 of DESIGN.md: the call targets, and for each a hand-written stub
 * with libffi's interface (fn, rvalue, avalue) for that exact signature.
 * gcc -O2 compiles the stubs: the best a compiler does for the interface,
 * which is what jitffi's libffi-form stubs are measured against. */
#include <stdint.h>

typedef uint64_t ffi_arg_t;
#define NOINLINE __attribute__((noinline, noclone))

typedef struct { double a, b; } s6_pair;
typedef struct { int64_t a, b, c, d; } s7_quad;

NOINLINE void bench_s1(void) { __asm__ volatile(""); }
NOINLINE int bench_s2(int a, int b) { return a + b; }
NOINLINE double bench_s3(double a, double b, double c, double d) { return a + b + c + d; }
NOINLINE int64_t bench_s4(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, int64_t f,
                          int64_t g, int64_t h) {
    return a + b + c + d + e + f + g + h;
}
NOINLINE double bench_s5(int a, double b, int64_t c, float d, void *e, int8_t f, uint16_t g,
                         double h) {
    return a + b + (double)c + d + (double)(intptr_t)e + f + g + h;
}
/* gcc's SLP vectoriser turns this into two 8-byte stores reloaded as one
 * 16-byte vector, a store-forwarding stall that costs ~15 ns and would
 * swamp every S6 column; the scalar code is what DESIGN.md's figure measured. */
__attribute__((optimize("no-tree-slp-vectorize")))
NOINLINE s6_pair bench_s6(s6_pair x, s6_pair y) {
    s6_pair r = {x.a + y.a, x.b + y.b};
    return r;
}
NOINLINE s7_quad bench_s7(s7_quad x) {
    s7_quad r = {x.d, x.c, x.b, x.a};
    return r;
}
NOINLINE int bench_s8(int a0, int a1, int a2, int a3, int a4, int a5, int a6, int a7, int a8,
                      int a9, int a10, int a11, int a12, int a13, int a14, int a15) {
    return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15;
}

#define A(i, T) (*(T *)avalue[i])

void bench_stub_s1(void *fn, void *rvalue, void **avalue) {
    (void)rvalue;
    (void)avalue;
    ((void (*)(void))fn)();
}
void bench_stub_s2(void *fn, void *rvalue, void **avalue) {
    *(ffi_arg_t *)rvalue = (ffi_arg_t)(int64_t)((int (*)(int, int))fn)(A(0, int), A(1, int));
}
void bench_stub_s3(void *fn, void *rvalue, void **avalue) {
    *(double *)rvalue = ((double (*)(double, double, double, double))fn)(
        A(0, double), A(1, double), A(2, double), A(3, double));
}
void bench_stub_s4(void *fn, void *rvalue, void **avalue) {
    typedef int64_t (*f_t)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);
    *(int64_t *)rvalue = ((f_t)fn)(A(0, int64_t), A(1, int64_t), A(2, int64_t), A(3, int64_t),
                                   A(4, int64_t), A(5, int64_t), A(6, int64_t), A(7, int64_t));
}
void bench_stub_s5(void *fn, void *rvalue, void **avalue) {
    typedef double (*f_t)(int, double, int64_t, float, void *, int8_t, uint16_t, double);
    *(double *)rvalue = ((f_t)fn)(A(0, int), A(1, double), A(2, int64_t), A(3, float),
                                  A(4, void *), A(5, int8_t), A(6, uint16_t), A(7, double));
}
void bench_stub_s6(void *fn, void *rvalue, void **avalue) {
    *(s6_pair *)rvalue = ((s6_pair(*)(s6_pair, s6_pair))fn)(A(0, s6_pair), A(1, s6_pair));
}
void bench_stub_s7(void *fn, void *rvalue, void **avalue) {
    *(s7_quad *)rvalue = ((s7_quad(*)(s7_quad))fn)(A(0, s7_quad));
}
void bench_stub_s8(void *fn, void *rvalue, void **avalue) {
    typedef int (*f_t)(int, int, int, int, int, int, int, int, int, int, int, int, int, int, int,
                       int);
    *(ffi_arg_t *)rvalue = (ffi_arg_t)(int64_t)((f_t)fn)(
        A(0, int), A(1, int), A(2, int), A(3, int), A(4, int), A(5, int), A(6, int), A(7, int),
        A(8, int), A(9, int), A(10, int), A(11, int), A(12, int), A(13, int), A(14, int),
        A(15, int));
}
