/*
 * The x86-64-only C++ exception oracles (tests/unwind.rs): a Microsoft
 * x64 thrower and catcher (gcc's ms_abi), and a target that wrecks the
 * SysV callee-saved registers. The portable ones are in ../unwind.cpp.
 */
#include <cstdint>

#define MS __attribute__((ms_abi))
#define NOINLINE __attribute__((noinline))

/* As in ../unwind.cpp. */
static const int NOTHING = INT32_MIN;
static const int FOREIGN = INT32_MIN + 1;

/* Microsoft x64: the fifth argument is on the stack above the shadow area. */
extern "C" MS NOINLINE int cxx_throw_ms(int a, int b, int c, int d, int e) {
    throw a + 2 * b + 3 * c + 4 * d + 5 * e;
}

/*
 * Win64 closures, caught by an ms_abi function: it keeps doubles and
 * integers in registers across the call, which gcc puts in xmm6-xmm15,
 * rsi, rdi and the other registers ms_abi makes callee-saved. out[0..8]
 * get the doubles' bit patterns, out[8..14] the integers, out[14] what was
 * caught.
 */
typedef int(MS *ms_fn5)(int, int, int, int, int);

static MS NOINLINE void ms_catch_keeps(ms_fn5 fp, int64_t seed, int64_t *out) noexcept {
    double sd = static_cast<double>(seed);
    double x0 = sd * 1.5, x1 = sd * 2.5, x2 = sd * 3.5, x3 = sd * 4.5;
    double x4 = sd * 5.5, x5 = sd * 6.5, x6 = sd * 7.5, x7 = sd * 8.5;
    int64_t k0 = seed * 2, k1 = seed * 3 + 1, k2 = seed * 4 + 2;
    int64_t k3 = seed * 5 + 3, k4 = seed * 6 + 4, k5 = seed * 7 + 5;
#define KEEP_ALL                                                                            \
    asm volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3), "+x"(x4), "+x"(x5), "+x"(x6), \
                 "+x"(x7));                                                                 \
    asm volatile("" : "+r"(k0), "+r"(k1), "+r"(k2), "+r"(k3), "+r"(k4), "+r"(k5))
    KEEP_ALL;
    int64_t caught = NOTHING;
    try {
        volatile int r = fp(1, 2, 3, 4, 5);
        (void)r;
    } catch (int v) {
        caught = v;
    } catch (...) {
        caught = FOREIGN;
    }
    KEEP_ALL;
#undef KEEP_ALL
    const double x[8] = {x0, x1, x2, x3, x4, x5, x6, x7};
    const int64_t k[6] = {k0, k1, k2, k3, k4, k5};
    for (int i = 0; i < 8; i++) __builtin_memcpy(&out[i], &x[i], 8);
    for (int i = 0; i < 6; i++) out[8 + i] = k[i];
    out[14] = caught;
}

extern "C" void cxx_ms_closure_keeps(ms_fn5 fp, int64_t seed, int64_t *out) noexcept {
    ms_catch_keeps(fp, seed, out);
}

/*
 * void cxx_wrecker(void (*then)(int), int v): calls then(v) with rbx, rbp
 * and r12-r15 all overwritten and nothing saved, as a target whose ABI
 * keeps none of them may. Its unwind entry says nothing about them, so an
 * unwinder passing through sees the garbage, and only the frames below can
 * give their callers their values back; and the stub that called this one
 * must not find its own frame through rbp.
 */
asm(R"(
    .pushsection .text
    .globl cxx_wrecker
    .type cxx_wrecker, @function
cxx_wrecker:
    .cfi_startproc
    sub $8, %rsp
    .cfi_def_cfa_offset 16
    mov %rdi, %rax
    mov %esi, %edi
    movabs $0x5a5a5a5a5a5a5a5a, %rbx
    mov %rbx, %rbp
    mov %rbx, %r12
    mov %rbx, %r13
    mov %rbx, %r14
    mov %rbx, %r15
    call *%rax
    add $8, %rsp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size cxx_wrecker, .-cxx_wrecker
    .popsection
)");
