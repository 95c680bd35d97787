/*
 * Static chains (libffi's Go closures; r10 on x86-64) for tests/static_chain.rs.
 *
 * Callees, in assembly so they read r10 on entry: each returns something
 * derived from its chain and its arguments. Callers, compiled by gcc: each
 * calls a function pointer with __builtin_call_with_static_chain, which
 * puts the chain in r10 as gcc's own nested functions expect it. The
 * sc_direct_* callers call the assembly callees that way, so the callees
 * are checked against gcc's convention too.
 */
#include <stdint.h>

#define MS __attribute__((ms_abi))

struct sc_big {
    int64_t a, b, c, d;
};

/* Callees. */
int64_t sc_chain_plus(int64_t a, int64_t b);          /* chain + 3a + b */
void sc_chain_store(int64_t *out, int64_t a);         /* *out = chain + a */
int64_t sc_chain_stack(int64_t a0, int64_t a1, int64_t a2, int64_t a3, int64_t a4,
                       int64_t a5, int64_t a6, int64_t a7); /* chain + a0 + 5a6 + 7a7 */
struct sc_big sc_chain_big(int64_t a);                /* {chain, a, chain ^ a, 7} */
double sc_chain_double(double x, int64_t n);          /* x * n + chain */
MS int64_t sc_chain_ms(int64_t a, int64_t b, int64_t c, int64_t d,
                       int64_t e); /* chain + a + 2b + 3c + 4d + 5e */

asm(R"(
    .pushsection .text
    .globl sc_chain_plus, sc_chain_store, sc_chain_stack, sc_chain_big
    .globl sc_chain_double, sc_chain_ms
    .type sc_chain_plus, @function
sc_chain_plus:
    lea (%rdi,%rdi,2), %rax
    add %rsi, %rax
    add %r10, %rax
    ret
    .size sc_chain_plus, .-sc_chain_plus
    .type sc_chain_store, @function
sc_chain_store:
    lea (%r10,%rsi), %rax
    mov %rax, (%rdi)
    ret
    .size sc_chain_store, .-sc_chain_store
    .type sc_chain_stack, @function
sc_chain_stack:
    imul $5, 8(%rsp), %rax
    imul $7, 16(%rsp), %r11
    add %r11, %rax
    add %rdi, %rax
    add %r10, %rax
    ret
    .size sc_chain_stack, .-sc_chain_stack
    .type sc_chain_big, @function
sc_chain_big:
    mov %r10, (%rdi)
    mov %rsi, 8(%rdi)
    mov %r10, %rax
    xor %rsi, %rax
    mov %rax, 16(%rdi)
    movq $7, 24(%rdi)
    mov %rdi, %rax
    ret
    .size sc_chain_big, .-sc_chain_big
    .type sc_chain_double, @function
sc_chain_double:
    cvtsi2sd %rdi, %xmm1
    mulsd %xmm1, %xmm0
    cvtsi2sd %r10, %xmm1
    addsd %xmm1, %xmm0
    ret
    .size sc_chain_double, .-sc_chain_double
    .type sc_chain_ms, @function
sc_chain_ms:
    lea (%r10,%rcx), %rax
    lea (%rax,%rdx,2), %rax
    imul $3, %r8, %r11
    add %r11, %rax
    lea (%rax,%r9,4), %rax
    imul $5, 40(%rsp), %r11
    add %r11, %rax
    ret
    .size sc_chain_ms, .-sc_chain_ms
    .popsection
)");

/*
 * gcc's own calls of the callees with a chain, through volatile pointers:
 * gcc drops the chain of a direct call to a function it knows to be an
 * ordinary one.
 */
int64_t sc_direct_plus(void *chain, int64_t a, int64_t b) {
    int64_t (*volatile f)(int64_t, int64_t) = sc_chain_plus;
    return __builtin_call_with_static_chain(f(a, b), chain);
}

int64_t sc_direct_stack(void *chain, int64_t base) {
    int64_t (*volatile f)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                          int64_t) = sc_chain_stack;
    return __builtin_call_with_static_chain(
        f(base, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7), chain);
}

int64_t sc_direct_ms(void *chain) {
    int64_t(MS *volatile f)(int64_t, int64_t, int64_t, int64_t, int64_t) = sc_chain_ms;
    return __builtin_call_with_static_chain(f(1, 2, 3, 4, 5), chain);
}

/* A Go closure: code callers enter with the record in r10. */
struct sc_go_closure {
    void *tramp;
    void *cif;
    void (*fun)(void *cif, void *rvalue, void **args, void *user_data);
};

int64_t sc_call_go_plus(struct sc_go_closure *c, int64_t a, int64_t b) {
    int64_t (*f)(int64_t, int64_t) = (int64_t(*)(int64_t, int64_t))c->tramp;
    return __builtin_call_with_static_chain(f(a, b), c);
}

int64_t sc_call_go_stack(struct sc_go_closure *c, int64_t base) {
    int64_t (*f)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t) =
        (int64_t(*)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                    int64_t))c->tramp;
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

int64_t sc_call_go_ms(struct sc_go_closure *c) {
    int64_t(MS * f)(int64_t, int64_t, int64_t, int64_t, int64_t) =
        (int64_t(MS *)(int64_t, int64_t, int64_t, int64_t, int64_t))c->tramp;
    return __builtin_call_with_static_chain(f(1, 2, 3, 4, 5), c);
}
