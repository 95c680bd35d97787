/* S1-S8 of DESIGN.md with Microsoft x64 targets (__attribute__((ms_abi))),
 * and for each a hand-written stub with libffi's interface
 * (fn, rvalue, avalue): an ordinary SysV function that calls the ms_abi
 * target directly, compiled by gcc -O2. The bound for jitffi's Win64 stubs,
 * as bench_stubs.c is for SysV. Under ms_abi, S6's and S7's structs (16 and
 * 32 bytes) travel by reference and come back through a hidden pointer. */
#include <emmintrin.h>
#include <stdint.h>

typedef uint64_t ffi_arg_t;
#define NOINLINE __attribute__((noinline, noclone))
#define MS __attribute__((ms_abi))

typedef struct { double a, b; } w64_pair;
typedef struct { int64_t a, b, c, d; } w64_quad;

MS NOINLINE void w64_bench_s1(void) { __asm__ volatile(""); }
MS NOINLINE int w64_bench_s2(int a, int b) { return a + b; }
MS NOINLINE double w64_bench_s3(double a, double b, double c, double d) { return a + b + c + d; }
MS NOINLINE int64_t w64_bench_s4(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e,
                                 int64_t f, int64_t g, int64_t h) {
    return a + b + c + d + e + f + g + h;
}
MS NOINLINE double w64_bench_s5(int a, double b, int64_t c, float d, void *e, int8_t f,
                                uint16_t g, double h) {
    return a + b + (double)c + d + (double)(intptr_t)e + f + g + h;
}
/* Scalar loads, as bench_s6 (see bench_stubs.c: a vector load of values
 * just stored as two halves stalls store forwarding), and, unlike it, one
 * 16-byte store of the result: under ms_abi the result goes to memory, and
 * two 8-byte stores there stall every caller that copies it out with one
 * 16-byte load (gcc's C stub and Rust's direct call both do, ~5 ns). */
__attribute__((optimize("no-tree-slp-vectorize")))
MS NOINLINE w64_pair w64_bench_s6(w64_pair x, w64_pair y) {
    w64_pair r;
    _mm_storeu_pd(&r.a, _mm_set_pd(x.b + y.b, x.a + y.a));
    return r;
}
MS NOINLINE w64_quad w64_bench_s7(w64_quad x) {
    w64_quad r = {x.d, x.c, x.b, x.a};
    return r;
}
MS NOINLINE int w64_bench_s8(int a0, int a1, int a2, int a3, int a4, int a5, int a6, int a7,
                             int a8, int a9, int a10, int a11, int a12, int a13, int a14,
                             int a15) {
    return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15;
}

#define A(i, T) (*(T *)avalue[i])

void w64_bench_stub_s1(void *fn, void *rvalue, void **avalue) {
    (void)rvalue;
    (void)avalue;
    ((MS void (*)(void))fn)();
}
void w64_bench_stub_s2(void *fn, void *rvalue, void **avalue) {
    *(ffi_arg_t *)rvalue = (ffi_arg_t)(int64_t)((MS int (*)(int, int))fn)(A(0, int), A(1, int));
}
void w64_bench_stub_s3(void *fn, void *rvalue, void **avalue) {
    *(double *)rvalue = ((MS double (*)(double, double, double, double))fn)(
        A(0, double), A(1, double), A(2, double), A(3, double));
}
void w64_bench_stub_s4(void *fn, void *rvalue, void **avalue) {
    typedef MS int64_t (*f_t)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                              int64_t);
    *(int64_t *)rvalue = ((f_t)fn)(A(0, int64_t), A(1, int64_t), A(2, int64_t), A(3, int64_t),
                                   A(4, int64_t), A(5, int64_t), A(6, int64_t), A(7, int64_t));
}
void w64_bench_stub_s5(void *fn, void *rvalue, void **avalue) {
    typedef MS double (*f_t)(int, double, int64_t, float, void *, int8_t, uint16_t, double);
    *(double *)rvalue = ((f_t)fn)(A(0, int), A(1, double), A(2, int64_t), A(3, float),
                                  A(4, void *), A(5, int8_t), A(6, uint16_t), A(7, double));
}
void w64_bench_stub_s6(void *fn, void *rvalue, void **avalue) {
    *(w64_pair *)rvalue =
        ((MS w64_pair(*)(w64_pair, w64_pair))fn)(A(0, w64_pair), A(1, w64_pair));
}
void w64_bench_stub_s7(void *fn, void *rvalue, void **avalue) {
    *(w64_quad *)rvalue = ((MS w64_quad(*)(w64_quad))fn)(A(0, w64_quad));
}
void w64_bench_stub_s8(void *fn, void *rvalue, void **avalue) {
    typedef MS int (*f_t)(int, int, int, int, int, int, int, int, int, int, int, int, int, int,
                          int, int);
    *(ffi_arg_t *)rvalue = (ffi_arg_t)(int64_t)((f_t)fn)(
        A(0, int), A(1, int), A(2, int), A(3, int), A(4, int), A(5, int), A(6, int), A(7, int),
        A(8, int), A(9, int), A(10, int), A(11, int), A(12, int), A(13, int), A(14, int),
        A(15, int));
}
