/*
 * C oracle functions: gcc's ground truth for the x86-64 SysV psABI.
 *
 * Every oracle `R or_x(args...)` copies the meaningful bytes of each
 * argument it received into a thread-local record (padding and the unused
 * tail of long double stay zero) and returns a value derived from a hash of
 * all of them. Next to each oracle, `direct_or_x(rvalue, avalue)` calls it
 * with gcc's own calling code and stores the result the way libffi's
 * ffi_call does (integers narrower than 64 bits widened into 8 bytes).
 * Tests call each oracle through jitffi and through direct_*, then compare
 * the records and the returned bytes. `call_or_x(fn, rvalue, avalue)` is
 * the same caller with the callee a parameter: pointed at a jitffi closure
 * of the oracle's signature, it shows how gcc passes arguments to, and
 * reads results from, the closure.
 *
 * Adding a case: one line in ORACLE_LIST (and one line in the Rust table of
 * tests/support/oracle_table.rs). A new type needs rec_T, mk_T and st_T below.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "oracle_common.h"

/* ---------------------------------------------------------------- types */

typedef struct { double d; int32_t i; } s_di;          /* xmm + gpr */
typedef struct { float a, b, c; } s_fff;               /* xmm (a,b) + xmm (c) */
typedef struct { int32_t a, b, c; } s_iii;             /* gpr + gpr (4 bytes) */
typedef struct { char a, b, c; } s_ccc;                /* 3 bytes in one gpr */
typedef struct { char c[3]; } s_c3;
typedef struct { float f[4]; } s_f4;                   /* xmm + xmm */
typedef struct { int16_t s; char c; int32_t i; char d; } s_scic; /* 12, padded */
typedef struct { double a, b; } s_dd;                  /* S6 */
typedef struct { int64_t a, b, c, d; } s_q4;           /* S7: memory, sret */
typedef struct { int32_t i; double d; float f; int64_t q; } s_32; /* padded */
typedef struct { int32_t v[25]; } s_100;
typedef struct { struct { float x, y; } p; double d; } s_nest_ffd;
typedef struct { struct { char c; int16_t s; } a; struct { int32_t i; } b; float f; } s_nest_mix;
typedef struct { long double x; int32_t i; } s_ldi;    /* memory */
typedef struct { long double x; } s_ld1;               /* arg memory, ret st0 */
typedef struct { int64_t a, b; } s_ll;
typedef struct { int64_t q; double d; } s_qd;          /* gpr + xmm */
typedef struct { float f; int32_t i; } s_fi;           /* one INTEGER eightbyte */
typedef struct { float a, b; } s_ff;                   /* one SSE eightbyte */
typedef struct { double a, b, c; } s_ddd;              /* 24 bytes: memory */
typedef struct { uint8_t a; uint16_t b; uint8_t c; } s_odd; /* 6, padded */
typedef struct { __int128 x; } s_i128;
typedef union { float f; int32_t i; } u_fi;            /* INTEGER */
typedef union { double d; int64_t l; } u_dl;           /* INTEGER */
typedef union { char c[12]; int32_t i; } u_c12i;       /* 2 x INTEGER */
typedef union { float f[2]; double d; } u_fd;          /* SSE */

ORACLE_RECORD_API(oracle)

AGGREGATE(s_di, FIELD(s_di, d); FIELD(s_di, i))
AGGREGATE(s_fff, FIELD(s_fff, a); FIELD(s_fff, b); FIELD(s_fff, c))
AGGREGATE(s_iii, FIELD(s_iii, a); FIELD(s_iii, b); FIELD(s_iii, c))
AGGREGATE(s_ccc, FIELD(s_ccc, a); FIELD(s_ccc, b); FIELD(s_ccc, c))
AGGREGATE(s_c3, FIELD(s_c3, c))
AGGREGATE(s_f4, FIELD(s_f4, f))
AGGREGATE(s_scic, FIELD(s_scic, s); FIELD(s_scic, c); FIELD(s_scic, i); FIELD(s_scic, d))
AGGREGATE(s_dd, FIELD(s_dd, a); FIELD(s_dd, b))
AGGREGATE(s_q4, FIELD(s_q4, a); FIELD(s_q4, b); FIELD(s_q4, c); FIELD(s_q4, d))
AGGREGATE(s_32, FIELD(s_32, i); FIELD(s_32, d); FIELD(s_32, f); FIELD(s_32, q))
AGGREGATE(s_100, FIELD(s_100, v))
AGGREGATE(s_nest_ffd, FIELD(s_nest_ffd, p.x); FIELD(s_nest_ffd, p.y); FIELD(s_nest_ffd, d))
AGGREGATE(s_nest_mix, FIELD(s_nest_mix, a.c); FIELD(s_nest_mix, a.s); FIELD(s_nest_mix, b.i);
          FIELD(s_nest_mix, f))
AGGREGATE(s_ldi, FIELD_LD(s_ldi, x); FIELD(s_ldi, i))
AGGREGATE(s_ld1, FIELD_LD(s_ld1, x))
AGGREGATE(s_ll, FIELD(s_ll, a); FIELD(s_ll, b))
AGGREGATE(s_qd, FIELD(s_qd, q); FIELD(s_qd, d))
AGGREGATE(s_fi, FIELD(s_fi, f); FIELD(s_fi, i))
AGGREGATE(s_ff, FIELD(s_ff, a); FIELD(s_ff, b))
AGGREGATE(s_ddd, FIELD(s_ddd, a); FIELD(s_ddd, b); FIELD(s_ddd, c))
AGGREGATE(s_odd, FIELD(s_odd, a); FIELD(s_odd, b); FIELD(s_odd, c))
AGGREGATE(s_i128, FIELD(s_i128, x))
/* The unions here have no padding: all their bytes are meaningful. */
AGGREGATE(u_fi, rec_put(slot, 0, v, sizeof *v))
AGGREGATE(u_dl, rec_put(slot, 0, v, sizeof *v))
AGGREGATE(u_c12i, rec_put(slot, 0, v, sizeof *v))
AGGREGATE(u_fd, rec_put(slot, 0, v, sizeof *v))

/* Return values (MK, END: oracle_common.h). */
MK(s_di) r.d = mkf64(h, 1); r.i = (i32)mix(h, 2); END
MK(s_fff) r.a = mkf32(h, 1); r.b = mkf32(h, 2); r.c = mkf32(h, 3); END
MK(s_iii) r.a = (i32)mix(h, 1); r.b = (i32)mix(h, 2); r.c = (i32)mix(h, 3); END
MK(s_ccc) r.a = (char)mix(h, 1); r.b = (char)mix(h, 2); r.c = (char)mix(h, 3); END
MK(s_c3) for (int k = 0; k < 3; k++) r.c[k] = (char)mix(h, k); END
MK(s_f4) for (int k = 0; k < 4; k++) r.f[k] = mkf32(h, k); END
MK(s_scic) r.s = (i16)mix(h, 1); r.c = (char)mix(h, 2); r.i = (i32)mix(h, 3); r.d = (char)mix(h, 4); END
MK(s_dd) r.a = mkf64(h, 1); r.b = mkf64(h, 2); END
MK(s_q4) r.a = (i64)mix(h, 1); r.b = (i64)mix(h, 2); r.c = (i64)mix(h, 3); r.d = (i64)mix(h, 4); END
MK(s_32) r.i = (i32)mix(h, 1); r.d = mkf64(h, 2); r.f = mkf32(h, 3); r.q = (i64)mix(h, 4); END
MK(s_100) for (int k = 0; k < 25; k++) r.v[k] = (i32)mix(h, k); END
MK(s_nest_ffd) r.p.x = mkf32(h, 1); r.p.y = mkf32(h, 2); r.d = mkf64(h, 3); END
MK(s_nest_mix) r.a.c = (char)mix(h, 1); r.a.s = (i16)mix(h, 2); r.b.i = (i32)mix(h, 3); r.f = mkf32(h, 4); END
MK(s_ldi) r.x = mkf80(h, 1); r.i = (i32)mix(h, 2); END
MK(s_ld1) r.x = mkf80(h, 1); END
MK(s_ll) r.a = (i64)mix(h, 1); r.b = (i64)mix(h, 2); END
MK(s_qd) r.q = (i64)mix(h, 1); r.d = mkf64(h, 2); END
MK(s_fi) r.f = mkf32(h, 1); r.i = (i32)mix(h, 2); END
MK(s_ff) r.a = mkf32(h, 1); r.b = mkf32(h, 2); END
MK(s_ddd) r.a = mkf64(h, 1); r.b = mkf64(h, 2); r.c = mkf64(h, 3); END
MK(s_odd) r.a = (u8)mix(h, 1); r.b = (u16)mix(h, 2); r.c = (u8)mix(h, 3); END
MK(s_i128) r.x = mk_i128(h); END
MK(u_fi) r.i = (i32)mix(h, 1); END
MK(u_dl) r.l = (i64)mix(h, 1); END
MK(u_c12i) for (int k = 0; k < 12; k++) r.c[k] = (char)mix(h, k); END
MK(u_fd) r.d = mkf64(h, 1); END


/* gcc's caller of any function of this signature at fn, in libffi form. */
#define CALLER(name, R, ...)                                                \
    void call_##name(void *fn, void *rv, void **av);                        \
    void call_##name(void *fn, void *rv, void **av)                         \
    {                                                                       \
        R (*f)(EACH(PTYPE, COMMA, __VA_ARGS__)) =                           \
            (R(*)(EACH(PTYPE, COMMA, __VA_ARGS__)))fn;                      \
        R r = f(EACH(ARGVAL, COMMA, __VA_ARGS__));                          \
        if (rv)                                                             \
            st_##R(rv, r);                                                  \
    }

/* noipa: the direct caller must really call, with the ABI's calling code
 * (no inlining, no clone with a private convention). */
#define ORACLE(name, R, ...)                                                \
    __attribute__((noipa)) R name(EACH(PARAM, COMMA, __VA_ARGS__));        \
    R name(EACH(PARAM, COMMA, __VA_ARGS__))                                 \
    {                                                                       \
        rec_begin(NARGS(__VA_ARGS__));                                      \
        EACH(RECORD, NOTHING, __VA_ARGS__)                                  \
        return mk_##R(rec_end());                                           \
    }                                                                       \
    static void direct_##name(void *rv, void **av)                          \
    {                                                                       \
        R r = name(EACH(ARGVAL, COMMA, __VA_ARGS__));                       \
        if (rv)                                                             \
            st_##R(rv, r);                                                  \
    }                                                                       \
    CALLER(name, R, __VA_ARGS__)

#define ORACLE_VOID(name, ...)                                              \
    __attribute__((noipa)) void name(EACH(PARAM, COMMA, __VA_ARGS__));     \
    void name(EACH(PARAM, COMMA, __VA_ARGS__))                              \
    {                                                                       \
        rec_begin(NARGS(__VA_ARGS__));                                      \
        EACH(RECORD, NOTHING, __VA_ARGS__)                                  \
        (void)rec_end();                                                    \
    }                                                                       \
    static void direct_##name(void *rv, void **av)                          \
    {                                                                       \
        (void)rv;                                                           \
        name(EACH(ARGVAL, COMMA, __VA_ARGS__));                             \
    }                                                                       \
    void call_##name(void *fn, void *rv, void **av);                        \
    void call_##name(void *fn, void *rv, void **av)                         \
    {                                                                       \
        void (*f)(EACH(PTYPE, COMMA, __VA_ARGS__)) =                        \
            (void (*)(EACH(PTYPE, COMMA, __VA_ARGS__)))fn;                  \
        (void)rv;                                                           \
        f(EACH(ARGVAL, COMMA, __VA_ARGS__));                                \
    }

/* A call of a variadic oracle `fn` with these argument types. */
#define VARIADIC(name, fn, R, ...)                                          \
    static void direct_##name(void *rv, void **av)                          \
    {                                                                       \
        R r = fn(EACH(ARGVAL, COMMA, __VA_ARGS__));                         \
        if (rv)                                                             \
            st_##R(rv, r);                                                  \
    }                                                                       \
    /* The callee is variadic after its first parameter, as fn is. */       \
    void call_##name(void *f, void *rv, void **av);                         \
    void call_##name(void *f, void *rv, void **av)                          \
    {                                                                       \
        R (*g)(FIRST(__VA_ARGS__), ...) = (R(*)(FIRST(__VA_ARGS__), ...))f; \
        R r = g(EACH(ARGVAL, COMMA, __VA_ARGS__));                          \
        if (rv)                                                             \
            st_##R(rv, r);                                                  \
    }

/* ------------------------------------------------- the variadic oracles */

#define VA_ORACLE(R, fn, T)                                                 \
    __attribute__((noipa)) R fn(int n, ...);                                \
    R fn(int n, ...)                                                        \
    {                                                                       \
        if (!rec_begin(n + 1))                                              \
            return mk_##R(0);                                               \
        rec_i32(0, &n);                                                     \
        va_list ap;                                                         \
        va_start(ap, n);                                                    \
        for (int k = 0; k < n; k++) {                                       \
            T v = va_arg(ap, T);                                            \
            rec_##T(k + 1, &v);                                             \
        }                                                                   \
        va_end(ap);                                                         \
        return mk_##R(rec_end());                                           \
    }

VA_ORACLE(i32, or_va_ints, i32)
VA_ORACLE(f64, or_va_dbl, f64)
VA_ORACLE(f80, or_va_ld, f80)
VA_ORACLE(s_dd, or_va_s6, f64)
VA_ORACLE(s_q4, or_va_q4, i64)

/* fmt letters: i int, q int64, d double, D long double, s {double,int},
 * p {double,double}, b {int64 x4}, f {float,float,float}. */
__attribute__((noipa)) int64_t or_va_fmt(const char *fmt, ...);
int64_t or_va_fmt(const char *fmt, ...)
{
    size_t n = strlen(fmt);
    if (!rec_begin(n >= ORACLE_MAX_ARGS ? -1 : (int)n + 1))
        return 0;
    ptr p = (ptr)fmt;
    rec_ptr(0, &p);
    va_list ap;
    va_start(ap, fmt);
    for (size_t k = 0; k < n; k++) {
        int slot = (int)k + 1;
        switch (fmt[k]) {
        case 'i': { i32 v = va_arg(ap, i32); rec_i32(slot, &v); break; }
        case 'q': { i64 v = va_arg(ap, i64); rec_i64(slot, &v); break; }
        case 'd': { f64 v = va_arg(ap, f64); rec_f64(slot, &v); break; }
        case 'D': { f80 v = va_arg(ap, f80); rec_f80(slot, &v); break; }
        case 's': { s_di v = va_arg(ap, s_di); rec_s_di(slot, &v); break; }
        case 'p': { s_dd v = va_arg(ap, s_dd); rec_s_dd(slot, &v); break; }
        case 'b': { s_q4 v = va_arg(ap, s_q4); rec_s_q4(slot, &v); break; }
        case 'f': { s_fff v = va_arg(ap, s_fff); rec_s_fff(slot, &v); break; }
        default: rec.count = -3; va_end(ap); return 0;
        }
    }
    va_end(ap);
    return mk_i64(rec_end());
}

/* ------------------------------------------------------------ the table */

/*
 * X(name, R, args...)       an oracle returning R
 * XV(name, args...)         an oracle returning void
 * XVA(name, fn, R, args...) a call of variadic oracle fn with these types
 */
#define ORACLE_LIST(X, XV, XVA)                                                        \
    /* integers of every width: narrow args negative / top bit set */                \
    X(or_i8, i8, i8, i8, i8)                                                           \
    X(or_u8, u8, u8, u8, u8)                                                           \
    X(or_i16, i16, i16, i16)                                                           \
    X(or_u16, u16, u16, u16)                                                           \
    X(or_i32, i32, i32, i32)                                                           \
    X(or_u32, u32, u32, u32)                                                           \
    X(or_i64, i64, i64, i64)                                                           \
    X(or_u64, u64, u64, u64)                                                           \
    X(or_int_widths, i64, i8, u8, i16, u16, i32, u32, i64, u64)                        \
    X(or_narrow_stack, i32, i64, i64, i64, i64, i64, i64, i8, u8, i16, u16, i32, u32)  \
    X(or_ptr, ptr, ptr, ptr)                                                           \
    XV(or_void_args, i32, f64, s_di)                                                   \
    /* floating point */                                                               \
    X(or_f32, f32, f32, f32)                                                           \
    X(or_f64, f64, f64, f64, f64, f64)                                                 \
    X(or_f80, f80, f80, f80)                                                           \
    X(or_f80_mixed, f80, i32, f80, f64, f80, i32)                                      \
    X(or_f32_spill, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)             \
    X(or_spill_mixed, f64, f64, i64, f64, i64, f64, i64, f64, i64, f64, i64, f64, i64, \
      f64, i64, f64, f64, i32)                                                         \
    X(or_s5, f64, i32, f64, i64, f32, ptr, i8, u16, f64)                               \
    X(or_s8, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32,     \
      i32, i32, i32)                                                                   \
    /* __int128 */                                                                     \
    X(or_i128, i128, i128, i128)                                                       \
    X(or_u128, u128, u128)                                                             \
    X(or_i128_stack, i128, i64, i64, i64, i64, i64, i128, i64)                         \
    /* complex */                                                                      \
    X(or_cf32, cf32, cf32, cf32)                                                       \
    X(or_cf64, cf64, cf64, cf64)                                                       \
    X(or_cf80, cf80, cf80, i32)                                                        \
    /* structs */                                                                      \
    X(or_s_di, s_di, s_di, s_di)                                                       \
    X(or_s_fff, s_fff, s_fff)                                                          \
    X(or_s_iii, s_iii, s_iii)                                                          \
    X(or_s_ccc, s_ccc, s_ccc, s_ccc)                                                   \
    X(or_s_c3, s_c3, s_c3)                                                             \
    X(or_s_f4, s_f4, s_f4)                                                             \
    X(or_s_scic, s_scic, s_scic)                                                       \
    X(or_s6, s_dd, s_dd, s_dd)                                                         \
    X(or_s7, s_q4, s_q4)                                                               \
    X(or_s32, s_32, s_32, i32)                                                         \
    X(or_s100, s_100, s_100, s_100)                                                    \
    X(or_nest_ffd, s_nest_ffd, s_nest_ffd)                                             \
    X(or_nest_mix, s_nest_mix, s_nest_mix, i32)                                        \
    X(or_s_ldi, s_ldi, s_ldi)                                                          \
    X(or_s_ld1, s_ld1, s_ld1)                                                          \
    X(or_s_qd, s_qd, s_qd)                                                             \
    X(or_s_fi, s_fi, s_fi)                                                             \
    X(or_s_ff, s_ff, s_ff, s_ff)                                                       \
    X(or_s_ddd, s_ddd, s_ddd)                                                          \
    X(or_s_odd, s_odd, s_odd)                                                          \
    X(or_s_i128, s_i128, s_i128)                                                       \
    /* aggregates that no longer fit in the registers left */                          \
    X(or_ll_full, i64, i64, i64, i64, i64, i64, s_ll, i64)                             \
    X(or_dd_full, f64, f64, f64, f64, f64, f64, f64, f64, s_dd, f64)                   \
    X(or_many_s6, s_dd, s_dd, s_dd, s_dd, s_dd, s_dd)                                  \
    X(or_mixed_aggs, s_di, s_iii, s_fff, s_di, s_ll, i8, s_dd, s_qd, f80)              \
    /* unions */                                                                       \
    X(or_u_fi, u_fi, u_fi, u_fi)                                                       \
    X(or_u_dl, u_dl, u_dl)                                                             \
    X(or_u_c12i, u_c12i, u_c12i)                                                       \
    X(or_u_fd, u_fd, u_fd)                                                             \
    /* variadic calls */                                                               \
    XVA(va_ints3, or_va_ints, i32, i32, i32, i32, i32)                                 \
    XVA(va_ints8, or_va_ints, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32)        \
    XVA(va_dbl0, or_va_dbl, f64, i32)                                                  \
    XVA(va_dbl10, or_va_dbl, f64, i32, f64, f64, f64, f64, f64, f64, f64, f64, f64,    \
        f64)                                                                           \
    XVA(va_ld3, or_va_ld, f80, i32, f80, f80, f80)                                     \
    XVA(va_s6, or_va_s6, s_dd, i32, f64, f64, f64, f64)                                \
    XVA(va_q4, or_va_q4, s_q4, i32, i64, i64, i64, i64, i64, i64, i64)                 \
    XVA(va_fmt_mixed, or_va_fmt, i64, ptr, i32, i64, f64, f80, s_di, s_dd, s_q4,       \
        s_fff)                                                                         \
    XVA(va_fmt_spill, or_va_fmt, i64, ptr, f64, i64, f64, i64, f64, i64, f64, i64,     \
        f64, i64, f64, i64, f64, f64, f64, i32)

ORACLE_LIST(ORACLE, ORACLE_VOID, VARIADIC)

__attribute__((noipa)) void or_void0(void);
void or_void0(void)
{
    rec_begin(0);
}
static void direct_or_void0(void *rv, void **av)
{
    (void)rv;
    (void)av;
    or_void0();
}
void call_or_void0(void *fn, void *rv, void **av);
void call_or_void0(void *fn, void *rv, void **av)
{
    (void)rv;
    (void)av;
    ((void (*)(void))fn)();
}

/* A callee that overwrites its by-value arguments after recording them: a
 * caller that passed its own copy (not a fresh one) sees it change. */
__attribute__((noipa)) void scribble(void *p, size_t n);
void scribble(void *p, size_t n)
{
    memset(p, 0xeb, n);
}
__attribute__((noipa)) void or_scribble(s_q4 a, s_100 b, s_ldi c, f80 d, s_dd e);
void or_scribble(s_q4 a, s_100 b, s_ldi c, f80 d, s_dd e)
{
    rec_begin(5);
    rec_s_q4(0, &a);
    rec_s_100(1, &b);
    rec_s_ldi(2, &c);
    rec_f80(3, &d);
    rec_s_dd(4, &e);
    (void)rec_end();
    scribble(&a, sizeof a);
    scribble(&b, sizeof b);
    scribble(&c, sizeof c);
    scribble(&d, sizeof d);
    scribble(&e, sizeof e);
}
static void direct_or_scribble(void *rv, void **av)
{
    (void)rv;
    or_scribble(*(s_q4 *)av[0], *(s_100 *)av[1], *(s_ldi *)av[2], *(f80 *)av[3], *(s_dd *)av[4]);
}
void call_or_scribble(void *fn, void *rv, void **av);
void call_or_scribble(void *fn, void *rv, void **av)
{
    void (*f)(s_q4, s_100, s_ldi, f80, s_dd) = (void (*)(s_q4, s_100, s_ldi, f80, s_dd))fn;
    (void)rv;
    f(*(s_q4 *)av[0], *(s_100 *)av[1], *(s_ldi *)av[2], *(f80 *)av[3], *(s_dd *)av[4]);
}

#define ENTRY(name, ...) {#name, (void *)name, direct_##name, call_##name},
#define ENTRY_VA(name, fn, ...) {#name, (void *)fn, direct_##name, call_##name},

const struct oracle_case oracle_cases[] = {
    {"or_void0", (void *)or_void0, direct_or_void0, call_or_void0},
    {"or_scribble", (void *)or_scribble, direct_or_scribble, call_or_scribble},
    ORACLE_LIST(ENTRY, ENTRY, ENTRY_VA)
};
const size_t oracle_case_count = sizeof oracle_cases / sizeof oracle_cases[0];
