/*
 * The x86-64 half of static_chain.c: the callees, in assembly so they read
 * r10 (the SysV static chain register) on entry, and the Microsoft x64
 * (ms_abi) caller and Go closure caller.
 */
#include <stdint.h>

#define MS __attribute__((ms_abi))

/* As in ../static_chain.c. */
struct sc_go_closure {
    void *tramp;
    void *cif;
    void (*fun)(void *cif, void *rvalue, void **args, void *user_data);
};

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

/* gcc's own call of the ms_abi callee with a chain, through a volatile
 * pointer: gcc drops the chain of a direct call to a function it knows to
 * be an ordinary one. */
int64_t sc_direct_ms(void *chain) {
    int64_t(MS *volatile f)(int64_t, int64_t, int64_t, int64_t, int64_t) = sc_chain_ms;
    return __builtin_call_with_static_chain(f(1, 2, 3, 4, 5), chain);
}

/* A Go closure called by an ms_abi caller: code entered with the record in r10. */
int64_t sc_call_go_ms(struct sc_go_closure *c) {
    int64_t(MS * f)(int64_t, int64_t, int64_t, int64_t, int64_t) =
        (int64_t(MS *)(int64_t, int64_t, int64_t, int64_t, int64_t))c->tramp;
    return __builtin_call_with_static_chain(f(1, 2, 3, 4, 5), c);
}
