/*
 * Static chains (libffi's Go closures) for tests/static_chain.rs, in the
 * target's native convention: the chain register is r10 on x86-64 and x18
 * on AArch64, wherever gcc's __builtin_call_with_static_chain puts it.
 *
 * The callees read the chain register on entry, so they are assembly:
 * x86_64/static_chain_x86.c has the x86-64 ones (and the ms_abi cases);
 * tests/static_chain.rs the AArch64 ones. Each returns something derived
 * from its chain and its arguments. The sc_direct_* callers, compiled by
 * gcc, call a callee with __builtin_call_with_static_chain, so the callees
 * are checked against gcc's convention too. The sc_call_go_* callers enter
 * a Go closure's code with the record as their static chain.
 */
#include <stdint.h>

struct sc_big {
    int64_t a, b, c, d;
};

/* The callees' shapes:
 *   int64_t plus(int64_t a, int64_t b)        chain + 3a + b
 *   void store(int64_t *out, int64_t a)       *out = chain + a
 *   int64_t stack(int64_t a0, ..., int64_t a7) chain + a0 + 5a6 + 7a7
 *   struct sc_big big(int64_t a)              {chain, a, chain ^ a, 7}
 *   double dbl(double x, int64_t n)           x * n + chain */
typedef int64_t (*sc_plus_fn)(int64_t, int64_t);
typedef int64_t (*sc_stack_fn)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                               int64_t);

/*
 * gcc's own calls of a callee with a chain. The callee is a parameter (the
 * same as calling through a volatile pointer): gcc drops the chain of a
 * direct call to a function it knows to be an ordinary one.
 */
int64_t sc_direct_plus(sc_plus_fn f, void *chain, int64_t a, int64_t b) {
    return __builtin_call_with_static_chain(f(a, b), chain);
}

int64_t sc_direct_stack(sc_stack_fn f, void *chain, int64_t base) {
    return __builtin_call_with_static_chain(
        f(base, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7), chain);
}

/* A Go closure: code callers enter with the record as static chain. */
struct sc_go_closure {
    void *tramp;
    void *cif;
    void (*fun)(void *cif, void *rvalue, void **args, void *user_data);
};

int64_t sc_call_go_plus(struct sc_go_closure *c, int64_t a, int64_t b) {
    sc_plus_fn f = (sc_plus_fn)c->tramp;
    return __builtin_call_with_static_chain(f(a, b), c);
}

int64_t sc_call_go_stack(struct sc_go_closure *c, int64_t base) {
    sc_stack_fn f = (sc_stack_fn)c->tramp;
    return __builtin_call_with_static_chain(
        f(base, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7), c);
}

void sc_call_go_big(struct sc_go_closure *c, int64_t a, struct sc_big *out) {
    struct sc_big (*f)(int64_t) = (struct sc_big(*)(int64_t))c->tramp;
    *out = __builtin_call_with_static_chain(f(a), c);
}

double sc_call_go_double(struct sc_go_closure *c, double x, int64_t n) {
    double (*f)(double, int64_t) = (double (*)(double, int64_t))c->tramp;
    return __builtin_call_with_static_chain(f(x, n), c);
}
