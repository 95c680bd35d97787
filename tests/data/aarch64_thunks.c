/* Hand-written closure thunks for S1-S8 (DESIGN.md), the C a compiler makes
 * of jitffi's thunk contract: entered with the closure record in x17, call
 * record->fun(record->cif, rvalue, args, record->user_data) with args[i]
 * pointing at argument i, and return what the handler stored. Compiled with
 * aarch64-linux-gnu-gcc -O2 by tests/aarch64_code_size.rs, which compares
 * their instruction counts with jitffi's generated thunks. */
#include <stdint.h>

typedef uint64_t ffi_arg_t;
typedef struct { double a, b; } s6_pair;
typedef struct { int64_t a, b, c, d; } s7_quad;
typedef void (*handler_t)(void *cif, void *rvalue, void **args, void *user_data);

/* jitffi's closure record: thunk word, storage, cif at 32, fun at 40,
 * user_data at 48. */
struct record {
    void *thunk;
    void *storage[3];
    void *cif;
    handler_t fun;
    void *user_data;
};

#define RECORD(r) struct record *r; __asm__ volatile("mov %0, x17" : "=r"(r))
#define CALL(r, rv, args) (r)->fun((r)->cif, (rv), (args), (r)->user_data)

void thunk_s1(void) {
    RECORD(r);
    ffi_arg_t rv[2];
    CALL(r, rv, 0);
}

int thunk_s2(int a, int b) {
    RECORD(r);
    ffi_arg_t rv[2];
    void *args[] = {&a, &b};
    CALL(r, rv, args);
    return (int)rv[0];
}

double thunk_s3(double a, double b, double c, double d) {
    RECORD(r);
    double rv[2];
    void *args[] = {&a, &b, &c, &d};
    CALL(r, rv, args);
    return rv[0];
}

int64_t thunk_s4(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, int64_t f, int64_t g,
                 int64_t h) {
    RECORD(r);
    int64_t rv[2];
    void *args[] = {&a, &b, &c, &d, &e, &f, &g, &h};
    CALL(r, rv, args);
    return rv[0];
}

double thunk_s5(int a, double b, int64_t c, float d, void *e, int8_t f, uint16_t g, double h) {
    RECORD(r);
    double rv[2];
    void *args[] = {&a, &b, &c, &d, &e, &f, &g, &h};
    CALL(r, rv, args);
    return rv[0];
}

s6_pair thunk_s6(s6_pair x, s6_pair y) {
    RECORD(r);
    s6_pair rv;
    void *args[] = {&x, &y};
    CALL(r, &rv, args);
    return rv;
}

s7_quad thunk_s7(s7_quad x) {
    RECORD(r);
    s7_quad rv;
    void *args[] = {&x};
    CALL(r, &rv, args);
    return rv;
}

int thunk_s8(int a0, int a1, int a2, int a3, int a4, int a5, int a6, int a7, int a8, int a9,
             int a10, int a11, int a12, int a13, int a14, int a15) {
    RECORD(r);
    ffi_arg_t rv[2];
    void *args[] = {&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7,
                    &a8, &a9, &a10, &a11, &a12, &a13, &a14, &a15};
    CALL(r, rv, args);
    return (int)rv[0];
}
