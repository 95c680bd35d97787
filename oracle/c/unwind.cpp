/*
 * C++ exceptions through jitffi's generated code (tests/unwind.rs), in
 * the target's native C convention; the x86-64-only pieces (ms_abi
 * throwers and catchers, the register wrecker) are in x86_64/unwind_x86.cpp.
 *
 * Throwers are call targets that throw an int derived from their
 * arguments (so a catch also proves the arguments arrived); catchers call a
 * jitffi stub or closure code pointer inside try/catch and return what they
 * caught, or NOTHING when the call returned normally. No exception ever
 * leaves this file: every catcher catches (...) too, and everything called
 * from Rust is noexcept at its boundary.
 *
 * The "keeps" catchers hold values in registers across the call (gcc puts
 * values that live across a call in callee-saved registers: rbx, rbp,
 * r12-r15 under SysV, x19-x28 under AAPCS64; also rsi, rdi and xmm6-xmm15
 * under ms_abi) and report
 * them after the catch: the unwinder gives them back only if every frame
 * in between described where it saved them.
 */
#include <cstdarg>
#include <cstdint>

#define NOINLINE __attribute__((noinline))

static const int NOTHING = INT32_MIN;
static const int FOREIGN = INT32_MIN + 1; /* caught something not an int */

typedef void (*stub_fn)(void *fn, void *rvalue, void *args);

struct Big {
    int64_t a, b, c, d;
};

/* ------------------------------------------------------------- throwers */

extern "C" NOINLINE void cxx_throw_int(int v) { throw v; }

extern "C" NOINLINE int cxx_throw_int_ret(int v) { throw v + 1; }

/* Ten arguments: the last four arrive on the stack. */
extern "C" NOINLINE int cxx_throw_stack(int a0, int a1, int a2, int a3, int a4,
                                         int a5, int a6, int a7, int a8, int a9) {
    throw a0 + 2 * a1 + 3 * a2 + 4 * a3 + 5 * a4 + 6 * a5 + 7 * a6 + 8 * a7 +
        9 * a8 + 10 * a9;
}

extern "C" NOINLINE Big cxx_throw_sret(int v) { throw v * 3; }

extern "C" NOINLINE long double cxx_throw_x87(int v, long double x) {
    throw v + static_cast<int>(x);
}

/* n ints, then a double. */
extern "C" NOINLINE int cxx_throw_variadic(int n, ...) {
    va_list ap;
    va_start(ap, n);
    int sum = 0;
    for (int i = 0; i < n; i++) sum = 10 * sum + va_arg(ap, int);
    double d = va_arg(ap, double);
    va_end(ap);
    throw sum + static_cast<int>(d);
}

/* Returns normally: catchers report NOTHING. */
extern "C" NOINLINE int cxx_no_throw(int v) { return v; }

/* ------------------------------------------------------ stub catchers */

extern "C" int cxx_catch_stub(stub_fn stub, void *fn, void *rvalue, void *args) noexcept {
    try {
        stub(fn, rvalue, args);
    } catch (int v) {
        return v;
    } catch (...) {
        return FOREIGN;
    }
    return NOTHING;
}

extern "C" int cxx_catch_through(void (*stub)(void *, void *, void **), void *fn,
                                 int v) noexcept {
    int64_t r = 0;
    void *av[1] = {&v};
    try {
        stub(fn, &r, av);
    } catch (int c) {
        return c;
    } catch (...) {
        return FOREIGN;
    }
    return NOTHING;
}

/*
 * Six values live across the stub call, one per SysV callee-saved
 * register; out[0..6] gets them after the catch, out[6] what was caught.
 * The stub itself keeps rvalue in rbx and fn in r12 during the call.
 */
extern "C" NOINLINE void cxx_catch_keeps(stub_fn stub, void *fn, void *rvalue, void *args,
                                         int64_t seed, int64_t *out) noexcept {
    int64_t a = seed * 3 + 1, b = seed * 5 + 2, c = seed * 7 + 3;
    int64_t d = seed * 11 + 4, e = seed * 13 + 5, f = seed * 17 + 6;
    /* Opaque: the values must exist before the call and survive it. */
    asm volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d), "+r"(e), "+r"(f));
    int64_t caught = NOTHING;
    try {
        stub(fn, rvalue, args);
    } catch (int v) {
        caught = v;
    } catch (...) {
        caught = FOREIGN;
    }
    asm volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d), "+r"(e), "+r"(f));
    out[0] = a;
    out[1] = b;
    out[2] = c;
    out[3] = d;
    out[4] = e;
    out[5] = f;
    out[6] = caught;
}

/* --------------------------------------------------- closure handlers */

struct HandlerData {
    int nargs; /* every argument is an int */
    int bias;
};

/*
 * A raw closure handler that throws bias + sum((i + 1) * arg[i]), after
 * trashing every register a SysV function may trash that some other
 * convention keeps (rsi, rdi, xmm6-xmm15): a thunk for such a caller must
 * have described where it saved them. (AArch64 has one convention: nothing
 * to trash there.)
 */
extern "C" void cxx_throwing_handler(void *cif, void *ret, void **args, void *user_data) {
    (void)cif;
    (void)ret;
    const HandlerData *h = static_cast<const HandlerData *>(user_data);
    int v = h->bias;
    for (int i = 0; i < h->nargs; i++) v += (i + 1) * *static_cast<int *>(args[i]);
#if defined(__x86_64__)
    asm volatile(
        "pcmpeqd %%xmm6, %%xmm6\n\tpcmpeqd %%xmm7, %%xmm7\n\t"
        "pcmpeqd %%xmm8, %%xmm8\n\tpcmpeqd %%xmm9, %%xmm9\n\t"
        "pcmpeqd %%xmm10, %%xmm10\n\tpcmpeqd %%xmm11, %%xmm11\n\t"
        "pcmpeqd %%xmm12, %%xmm12\n\tpcmpeqd %%xmm13, %%xmm13\n\t"
        "pcmpeqd %%xmm14, %%xmm14\n\tpcmpeqd %%xmm15, %%xmm15\n\t"
        "mov $-1, %%rsi\n\tmov $-1, %%rdi"
        :
        :
        : "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
          "xmm15", "rsi", "rdi", "memory");
#endif
    throw v;
}

/* The same handler, returning normally: bias + the weighted sum as an int. */
extern "C" void cxx_returning_handler(void *cif, void *ret, void **args, void *user_data) {
    (void)cif;
    const HandlerData *h = static_cast<const HandlerData *>(user_data);
    int v = h->bias;
    for (int i = 0; i < h->nargs; i++) v += (i + 1) * *static_cast<int *>(args[i]);
    *static_cast<int64_t *>(ret) = v;
}

/* ---------------------------------------------------- closure catchers */

#define CATCH_CALL(call)           \
    try {                          \
        call;                      \
    } catch (int v) {              \
        return v;                  \
    } catch (...) {                \
        return FOREIGN;            \
    }                              \
    return NOTHING;

extern "C" int cxx_call_closure_catching(int (*fp)(int, int), int a, int b) noexcept {
    CATCH_CALL(volatile int r = fp(a, b); (void)r)
}

extern "C" int cxx_closure_void(void (*fp)(int), int a) noexcept { CATCH_CALL(fp(a)) }

extern "C" int cxx_closure_stack(int (*fp)(int, int, int, int, int, int, int, int, int, int),
                                 int base) noexcept {
    CATCH_CALL(volatile int r = fp(base, base + 1, base + 2, base + 3, base + 4, base + 5,
                                   base + 6, base + 7, base + 8, base + 9);
               (void)r)
}

extern "C" int cxx_closure_sret(Big (*fp)(int), int a) noexcept {
    CATCH_CALL(volatile Big r = fp(a); (void)r)
}

extern "C" int cxx_closure_x87(long double (*fp)(int), int a) noexcept {
    CATCH_CALL(volatile long double r = fp(a); (void)r)
}

extern "C" int cxx_closure_double(double (*fp)(int, int), int a, int b) noexcept {
    CATCH_CALL(volatile double r = fp(a, b); (void)r)
}

/* Calls a closure that returns normally: its result. */
extern "C" int cxx_closure_plain(int (*fp)(int, int), int a, int b) noexcept { return fp(a, b); }

