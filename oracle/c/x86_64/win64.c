/*
 * C oracles for the Microsoft x64 convention: gcc's ground truth for
 * jitffi's Abi::Win64 and Abi::GnuW64.
 *
 * gcc on Linux compiles a function declared __attribute__((ms_abi)) with
 * the Microsoft convention (rcx, rdx, r8, r9 / xmm0-3 by position, a 32-byte
 * shadow area, aggregates other than 1, 2, 4 or 8 bytes by reference,
 * larger results through a hidden pointer). Every oracle here is such a
 * function. As in oracles.c, an oracle copies the meaningful bytes of each
 * argument into a thread-local record (padding zeroed) and returns a value
 * derived from a hash of them; `direct_<name>(rvalue, avalue)` is a host
 * function calling the oracle with gcc's own calling code, storing the
 * result as ffi_call does (narrow integers widened to 8 bytes), and
 * `call_<name>(fn, rvalue, avalue)` is the same caller with an ms_abi
 * callee of the shape at `fn` (a jitffi closure, in the tests).
 *
 * Facts about gcc 12 found while writing this (x86-64 Linux, ms_abi):
 *  - __int128 travels by reference and comes back in xmm0;
 *  - float _Complex travels and returns like an 8-byte aggregate (rax);
 *    double _Complex by reference, returned through a hidden pointer;
 *  - long double stays the 80-bit type: by reference, returned through a
 *    hidden pointer (what MinGW does, libffi's FFI_GNUW64);
 *  - __builtin_va_arg on a __builtin_ms_va_list reads an aggregate, an
 *    __int128, a long double or a double _Complex in place, although
 *    callers (gcc's included) pass them by reference: the variadic oracles
 *    read such arguments through the pointer in their slot (VA_REF), which
 *    is what the convention says is there.
 *
 * The record and its helpers come from oracle_common.h, shared with
 * oracles.c (each file has its own record); the case table is separate.
 * The Rust side is oracle/src/win64.rs.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "oracle_common.h"

#define MS __attribute__((ms_abi))

/* ---------------------------------------------------------------- types */

/* By value in one register: sizes 1, 2, 4, 8. */
typedef struct { uint8_t a; } s1;
typedef struct { uint8_t a; int8_t b; } s2;
typedef struct { uint8_t c; int16_t s; } s4;                 /* padded */
typedef struct { int32_t i; float f; } s8;                   /* float in a gpr */
typedef struct { uint16_t v[4]; } s_u16x4;                   /* array, 8 */
typedef struct { struct { uint8_t a, b; } p; int16_t s; } s_nest4; /* nested, 4 */
typedef struct { float f; } sf;                              /* gpr, not xmm */
typedef struct { float a, b; } sff;
typedef struct { double d; } sd;
typedef union { float f; int32_t i; } u_fi;
typedef union { double d; int64_t l; } u_dl;
typedef union { float f[2]; double d; } u_fd;
/* By reference: every other size. */
typedef struct { char a, b, c; } s_ccc;
typedef struct { char c[3]; } s_c3;
typedef struct { char c[5]; } s5;
typedef struct { uint8_t a; uint16_t b; uint8_t c; } s_odd;  /* 6, padded */
typedef struct { int32_t a, b, c; } s_iii;
typedef struct { struct { char c; int16_t s; } a; struct { int32_t i; } b; float f; } s_nest_mix;
typedef struct { double d; int32_t i; } s_di;                /* 16, padded */
typedef struct { double a, b; } s_dd;
typedef struct { float f[4]; } s_f4;
typedef struct { struct { float x, y; } p; double d; } s_nest_ffd;
typedef struct { double a, b, c; } s_ddd;
typedef struct { int64_t a, b, c, d; } s_q4;
typedef struct { int32_t v[25]; } s_100;
typedef struct { long double x; int32_t i; } s_ldi;
typedef union { char c[12]; int32_t i; } u_c12i;

ORACLE_RECORD_API(win64)

#define WHOLE() rec_put(slot, 0, v, sizeof *v)

AGGREGATE(s1, FIELD(s1, a))
AGGREGATE(s2, FIELD(s2, a); FIELD(s2, b))
AGGREGATE(s4, FIELD(s4, c); FIELD(s4, s))
AGGREGATE(s8, FIELD(s8, i); FIELD(s8, f))
AGGREGATE(s_u16x4, FIELD(s_u16x4, v))
AGGREGATE(s_nest4, FIELD(s_nest4, p.a); FIELD(s_nest4, p.b); FIELD(s_nest4, s))
AGGREGATE(sf, FIELD(sf, f))
AGGREGATE(sff, FIELD(sff, a); FIELD(sff, b))
AGGREGATE(sd, FIELD(sd, d))
AGGREGATE(s_ccc, FIELD(s_ccc, a); FIELD(s_ccc, b); FIELD(s_ccc, c))
AGGREGATE(s_c3, FIELD(s_c3, c))
AGGREGATE(s5, FIELD(s5, c))
AGGREGATE(s_odd, FIELD(s_odd, a); FIELD(s_odd, b); FIELD(s_odd, c))
AGGREGATE(s_iii, FIELD(s_iii, a); FIELD(s_iii, b); FIELD(s_iii, c))
AGGREGATE(s_nest_mix, FIELD(s_nest_mix, a.c); FIELD(s_nest_mix, a.s); FIELD(s_nest_mix, b.i);
          FIELD(s_nest_mix, f))
AGGREGATE(s_di, FIELD(s_di, d); FIELD(s_di, i))
AGGREGATE(s_dd, FIELD(s_dd, a); FIELD(s_dd, b))
AGGREGATE(s_f4, FIELD(s_f4, f))
AGGREGATE(s_nest_ffd, FIELD(s_nest_ffd, p.x); FIELD(s_nest_ffd, p.y); FIELD(s_nest_ffd, d))
AGGREGATE(s_ddd, FIELD(s_ddd, a); FIELD(s_ddd, b); FIELD(s_ddd, c))
AGGREGATE(s_q4, FIELD(s_q4, a); FIELD(s_q4, b); FIELD(s_q4, c); FIELD(s_q4, d))
AGGREGATE(s_100, FIELD(s_100, v))
AGGREGATE(s_ldi, FIELD_LD(s_ldi, x); FIELD(s_ldi, i))
/* These unions have no padding: all their bytes are meaningful. */
AGGREGATE(u_fi, WHOLE())
AGGREGATE(u_dl, WHOLE())
AGGREGATE(u_fd, WHOLE())
AGGREGATE(u_c12i, WHOLE())

/* Results (MK, END: oracle_common.h). */
MK(s1) r.a = (u8)mix(h, 1); END
MK(s2) r.a = (u8)mix(h, 1); r.b = (i8)mix(h, 2); END
MK(s4) r.c = (u8)mix(h, 1); r.s = (i16)mix(h, 2); END
MK(s8) r.i = (i32)mix(h, 1); r.f = mkf32(h, 2); END
MK(s_u16x4) for (int k = 0; k < 4; k++) r.v[k] = (u16)mix(h, k); END
MK(s_nest4) r.p.a = (u8)mix(h, 1); r.p.b = (u8)mix(h, 2); r.s = (i16)mix(h, 3); END
MK(sf) r.f = mkf32(h, 1); END
MK(sff) r.a = mkf32(h, 1); r.b = mkf32(h, 2); END
MK(sd) r.d = mkf64(h, 1); END
MK(s_ccc) r.a = (char)mix(h, 1); r.b = (char)mix(h, 2); r.c = (char)mix(h, 3); END
MK(s_c3) for (int k = 0; k < 3; k++) r.c[k] = (char)mix(h, k); END
MK(s5) for (int k = 0; k < 5; k++) r.c[k] = (char)mix(h, k); END
MK(s_odd) r.a = (u8)mix(h, 1); r.b = (u16)mix(h, 2); r.c = (u8)mix(h, 3); END
MK(s_iii) r.a = (i32)mix(h, 1); r.b = (i32)mix(h, 2); r.c = (i32)mix(h, 3); END
MK(s_nest_mix) r.a.c = (char)mix(h, 1); r.a.s = (i16)mix(h, 2); r.b.i = (i32)mix(h, 3); r.f = mkf32(h, 4); END
MK(s_di) r.d = mkf64(h, 1); r.i = (i32)mix(h, 2); END
MK(s_dd) r.a = mkf64(h, 1); r.b = mkf64(h, 2); END
MK(s_f4) for (int k = 0; k < 4; k++) r.f[k] = mkf32(h, k); END
MK(s_nest_ffd) r.p.x = mkf32(h, 1); r.p.y = mkf32(h, 2); r.d = mkf64(h, 3); END
MK(s_ddd) r.a = mkf64(h, 1); r.b = mkf64(h, 2); r.c = mkf64(h, 3); END
MK(s_q4) r.a = (i64)mix(h, 1); r.b = (i64)mix(h, 2); r.c = (i64)mix(h, 3); r.d = (i64)mix(h, 4); END
MK(s_100) for (int k = 0; k < 25; k++) r.v[k] = (i32)mix(h, k); END
MK(s_ldi) r.x = mkf80(h, 1); r.i = (i32)mix(h, 2); END
MK(u_fi) r.i = (i32)mix(h, 1); END
MK(u_dl) r.l = (i64)mix(h, 1); END
MK(u_fd) r.d = mkf64(h, 1); END
MK(u_c12i) for (int k = 0; k < 12; k++) r.c[k] = (char)mix(h, k); END


/* gcc's caller of any ms_abi function of this signature at fn. */
#define CALLER(name, R, ...)                                                \
    void call_##name(void *fn, void *rv, void **av);                        \
    void call_##name(void *fn, void *rv, void **av)                         \
    {                                                                       \
        R (MS *f)(EACH(PTYPE, COMMA, __VA_ARGS__)) =                        \
            (R (MS *)(EACH(PTYPE, COMMA, __VA_ARGS__)))fn;                  \
        R r = f(EACH(ARGVAL, COMMA, __VA_ARGS__));                          \
        if (rv)                                                             \
            st_##R(rv, r);                                                  \
    }

/* noipa: callers must really call, with the convention's own code. */
#define ORACLE(name, R, ...)                                                \
    MS __attribute__((noipa)) R name(EACH(PARAM, COMMA, __VA_ARGS__));     \
    MS R name(EACH(PARAM, COMMA, __VA_ARGS__))                              \
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
    MS __attribute__((noipa)) void name(EACH(PARAM, COMMA, __VA_ARGS__));  \
    MS void name(EACH(PARAM, COMMA, __VA_ARGS__))                           \
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
        void (MS *f)(EACH(PTYPE, COMMA, __VA_ARGS__)) =                     \
            (void (MS *)(EACH(PTYPE, COMMA, __VA_ARGS__)))fn;               \
        (void)rv;                                                           \
        f(EACH(ARGVAL, COMMA, __VA_ARGS__));                                \
    }

/* A call of the variadic oracle `fn` with these argument types. */
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
        R (MS *g)(FIRST(__VA_ARGS__), ...) =                                \
            (R (MS *)(FIRST(__VA_ARGS__), ...))f;                           \
        R r = g(EACH(ARGVAL, COMMA, __VA_ARGS__));                          \
        if (rv)                                                             \
            st_##R(rv, r);                                                  \
    }

/* ------------------------------------------------- the variadic oracles */

/* A variadic argument passed by value (1, 2, 4 or 8 bytes, scalars), and
 * one passed by reference: its slot holds the address of the caller's
 * copy (see the note on gcc's va_arg at the top). */
#define VA_VAL(ap, T) __builtin_va_arg(ap, T)
#define VA_REF(ap, T) (*(T *)__builtin_va_arg(ap, void *))

/* R fn(int n, ...): n variadic T's, read with how (VA_VAL or VA_REF). */
#define VA_ORACLE(R, fn, T, how)                                            \
    MS __attribute__((noipa)) R fn(int n, ...);                             \
    MS R fn(int n, ...)                                                     \
    {                                                                       \
        if (!rec_begin(n + 1))                                              \
            return mk_##R(0);                                               \
        rec_i32(0, &n);                                                     \
        __builtin_ms_va_list ap;                                            \
        __builtin_ms_va_start(ap, n);                                       \
        for (int k = 0; k < n; k++) {                                       \
            T v = how(ap, T);                                               \
            rec_##T(k + 1, &v);                                             \
        }                                                                   \
        __builtin_ms_va_end(ap);                                            \
        return mk_##R(rec_end());                                           \
    }

VA_ORACLE(i32, w64_va_ints, i32, VA_VAL)
VA_ORACLE(f64, w64_va_dbl, f64, VA_VAL)
VA_ORACLE(s_ddd, w64_va_sret, f64, VA_VAL)
VA_ORACLE(i64, w64_va_refs, s_iii, VA_REF)

/* A fixed double before the ellipsis (gcc passes it in xmm0 only), then
 * three variadic doubles. */
MS __attribute__((noipa)) f64 w64_va_x3(f64 x, ...);
MS f64 w64_va_x3(f64 x, ...)
{
    rec_begin(4);
    rec_f64(0, &x);
    __builtin_ms_va_list ap;
    __builtin_ms_va_start(ap, x);
    for (int k = 1; k <= 3; k++) {
        f64 v = VA_VAL(ap, f64);
        rec_f64(k, &v);
    }
    __builtin_ms_va_end(ap);
    return mk_f64(rec_end());
}

/* fmt letters: i int, q int64, d double, p pointer, 1 s1, 4 s4, 8 s8,
 * f float _Complex; by reference: c s_iii, D s_dd, b s_100, x __int128,
 * F double _Complex, L long double, Z long double _Complex. */
MS __attribute__((noipa)) int64_t w64_va_fmt(const char *fmt, ...);
MS int64_t w64_va_fmt(const char *fmt, ...)
{
    size_t n = strlen(fmt);
    if (!rec_begin(n >= ORACLE_MAX_ARGS ? -1 : (int)n + 1))
        return 0;
    ptr p = (ptr)fmt;
    rec_ptr(0, &p);
    __builtin_ms_va_list ap;
    __builtin_ms_va_start(ap, fmt);
    for (size_t k = 0; k < n; k++) {
        int slot = (int)k + 1;
        switch (fmt[k]) {
#define LETTER(c, T, how) case c: { T v = how(ap, T); rec_##T(slot, &v); break; }
        LETTER('i', i32, VA_VAL)
        LETTER('q', i64, VA_VAL)
        LETTER('d', f64, VA_VAL)
        LETTER('p', ptr, VA_VAL)
        LETTER('1', s1, VA_VAL)
        LETTER('4', s4, VA_VAL)
        LETTER('8', s8, VA_VAL)
        LETTER('f', cf32, VA_VAL)
        LETTER('c', s_iii, VA_REF)
        LETTER('D', s_dd, VA_REF)
        LETTER('b', s_100, VA_REF)
        LETTER('x', i128, VA_REF)
        LETTER('F', cf64, VA_REF)
        LETTER('L', f80, VA_REF)
        LETTER('Z', cf80, VA_REF)
#undef LETTER
        default:
            rec.count = -3;
            __builtin_ms_va_end(ap);
            return 0;
        }
    }
    __builtin_ms_va_end(ap);
    return mk_i64(rec_end());
}

/* ------------------------------------------------------------ the table */

/*
 * X(name, R, args...)       an oracle returning R
 * XV(name, args...)         an oracle returning void
 * XVA(name, fn, R, args...) a call of variadic oracle fn with these types
 *
 * Cases involving long double (f80, cf80, s_ldi) hold for GnuW64 only:
 * under Microsoft's own compiler long double is double.
 */
#define WIN64_LIST(X, XV, XVA)                                                         \
    /* integers of every width: narrow values negative / top bit set */              \
    X(w64_i8, i8, i8, i8, i8)                                                          \
    X(w64_u8, u8, u8, u8, u8)                                                          \
    X(w64_i16, i16, i16, i16)                                                          \
    X(w64_u16, u16, u16, u16)                                                          \
    X(w64_i32, i32, i32, i32)                                                          \
    X(w64_u32, u32, u32, u32)                                                          \
    X(w64_i64, i64, i64, i64)                                                          \
    X(w64_u64, u64, u64, u64)                                                          \
    X(w64_int_widths, i64, i8, u8, i16, u16, i32, u32, i64, u64)                       \
    X(w64_narrow_stack, i32, i64, i64, i64, i64, i8, u8, i16, u16, i32, u32)           \
    X(w64_ptr, ptr, ptr, ptr)                                                          \
    XV(w64_void_args, i32, f64, s_di)                                                  \
    /* floating point, and integers and floats by position */                          \
    X(w64_f32, f32, f32, f32)                                                          \
    X(w64_f64, f64, f64, f64, f64, f64)                                                \
    X(w64_mixed, f64, i32, f64, i32, f32)                                              \
    X(w64_mixed_rev, f32, f32, i64, f64, u8)                                           \
    X(w64_args5, i64, i64, f64, i32, f32, i64)                                         \
    X(w64_args6, f64, f32, i64, f64, i32, f64, u16)                                    \
    X(w64_args10, i32, i8, f64, i64, f32, u16, f64, ptr, i32, f32, i64)                \
    X(w64_f32_spill, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)            \
    X(w64_s5sig, f64, i32, f64, i64, f32, ptr, i8, u16, f64)                           \
    X(w64_many16, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32,     \
      i32, i32, i32, i32)                                                              \
    /* __int128 (by reference, returned in xmm0) and complex */                        \
    X(w64_i128, i128, i128, i128)                                                      \
    X(w64_i128_stack, i128, i64, i64, i64, i64, i128, i64)                             \
    X(w64_cf32, cf32, cf32, cf32)                                                      \
    X(w64_cf64, cf64, cf64, cf64)                                                      \
    /* aggregates of 1, 2, 4, 8 bytes: by value in one register, and back in rax */   \
    X(w64_s1, s1, s1, s1)                                                              \
    X(w64_s2, s2, s2)                                                                  \
    X(w64_s4, s4, s4)                                                                  \
    X(w64_s8, s8, s8, s8)                                                              \
    X(w64_sf, sf, sf)                                                                  \
    X(w64_sff, sff, sff, sff)                                                          \
    X(w64_sd, sd, sd)                                                                  \
    X(w64_u16x4, s_u16x4, s_u16x4)                                                     \
    X(w64_nest4, s_nest4, s_nest4)                                                     \
    X(w64_u_fi, u_fi, u_fi, u_fi)                                                      \
    X(w64_u_dl, u_dl, u_dl)                                                            \
    X(w64_u_fd, u_fd, u_fd)                                                            \
    /* every other size: by reference, returned through a hidden pointer */           \
    X(w64_s3, s_ccc, s_ccc, s_ccc)                                                     \
    X(w64_c3, s_c3, s_c3)                                                              \
    X(w64_s5, s5, s5)                                                                  \
    X(w64_s6, s_odd, s_odd)                                                            \
    X(w64_s12, s_iii, s_iii)                                                           \
    X(w64_nest_mix, s_nest_mix, s_nest_mix, i32)                                       \
    X(w64_u_c12i, u_c12i, u_c12i)                                                      \
    X(w64_s16, s_dd, s_dd, s_dd)                                                       \
    X(w64_f4, s_f4, s_f4)                                                              \
    X(w64_nest_ffd, s_nest_ffd, s_nest_ffd)                                            \
    X(w64_s24, s_ddd, s_ddd)                                                           \
    X(w64_s32, s_q4, s_q4)                                                             \
    X(w64_s100, s_100, s_100, s_100)                                                   \
    /* the hidden pointer takes rcx: the arguments move one place on */               \
    X(w64_sret_args, s_ddd, i64, f64, i32, f64)                                        \
    X(w64_sret_small, s_iii, f32)                                                      \
    X(w64_sret100, s_100, f64, i8, s1)                                                 \
    /* aggregates in the stack area and mixed with scalars in registers */            \
    X(w64_aggs_stack, i64, i64, i64, i64, i64, s8, s_iii, s1, s_dd, f64)               \
    X(w64_aggs_regs, f64, s_iii, sd, s4, s_100)                                        \
    /* long double: GnuW64 only */                                                     \
    X(w64_f80, f80, f80, f80)                                                          \
    X(w64_f80_mixed, f80, i32, f80, f64, f80, i32)                                     \
    X(w64_cf80, cf80, cf80, i32)                                                       \
    X(w64_s_ldi, s_ldi, s_ldi)                                                         \
    /* variadic calls */                                                               \
    XVA(w64_va_ints3, w64_va_ints, i32, i32, i32, i32, i32)                            \
    XVA(w64_va_ints7, w64_va_ints, i32, i32, i32, i32, i32, i32, i32, i32, i32)        \
    XVA(w64_va_dbl0, w64_va_dbl, f64, i32)                                             \
    XVA(w64_va_dbl7, w64_va_dbl, f64, i32, f64, f64, f64, f64, f64, f64, f64)          \
    XVA(w64_va_sret, w64_va_sret, s_ddd, i32, f64, f64, f64, f64, f64)                 \
    XVA(w64_va_refs, w64_va_refs, i64, i32, s_iii, s_iii, s_iii, s_iii, s_iii)         \
    XVA(w64_va_x3, w64_va_x3, f64, f64, f64, f64, f64)                                 \
    XVA(w64_va_fmt_mixed, w64_va_fmt, i64, ptr, i32, f64, s_iii, s1, s8, i64, s_dd,    \
        f64, ptr, cf32, cf64, i128, s_100, s4)                                         \
    XVA(w64_va_fmt_ld, w64_va_fmt, i64, ptr, f64, f80, i32, cf80)

WIN64_LIST(ORACLE, ORACLE_VOID, VARIADIC)

MS __attribute__((noipa)) void w64_void0(void);
MS void w64_void0(void)
{
    rec_begin(0);
}
static void direct_w64_void0(void *rv, void **av)
{
    (void)rv;
    (void)av;
    w64_void0();
}
void call_w64_void0(void *fn, void *rv, void **av);
void call_w64_void0(void *fn, void *rv, void **av)
{
    (void)rv;
    (void)av;
    ((void (MS *)(void))fn)();
}

/* A callee that overwrites the copies it was handed after recording them:
 * a caller that passed its own value rather than a temporary sees it
 * change. By-reference arguments are the callee's to write. */
__attribute__((noipa)) static void scribble(void *p, size_t n)
{
    memset(p, 0xeb, n);
}

#define SCRIBBLER(name, ...)                                                \
    MS __attribute__((noipa)) void name(EACH(PARAM, COMMA, __VA_ARGS__));  \
    MS void name(EACH(PARAM, COMMA, __VA_ARGS__))                           \
    {                                                                       \
        rec_begin(NARGS(__VA_ARGS__));                                      \
        EACH(RECORD, NOTHING, __VA_ARGS__)                                  \
        (void)rec_end();                                                    \
        EACH(SCRIBBLE, NOTHING, __VA_ARGS__)                                \
    }                                                                       \
    static void direct_##name(void *rv, void **av)                          \
    {                                                                       \
        (void)rv;                                                           \
        name(EACH(ARGVAL, COMMA, __VA_ARGS__));                             \
    }                                                                       \
    void call_##name(void *fn, void *rv, void **av);                        \
    void call_##name(void *fn, void *rv, void **av)                         \
    {                                                                       \
        void (MS *f)(EACH(PTYPE, COMMA, __VA_ARGS__)) =                     \
            (void (MS *)(EACH(PTYPE, COMMA, __VA_ARGS__)))fn;               \
        (void)rv;                                                           \
        f(EACH(ARGVAL, COMMA, __VA_ARGS__));                                \
    }
#define SCRIBBLE(i, T) scribble(&a##i, sizeof a##i);

SCRIBBLER(w64_scribble, s_q4, s_100, s_iii, cf64, i128, s_dd, s8)
SCRIBBLER(w64_scribble_ld, f80, s_ldi, cf80, s5)

#define ENTRY(name, ...) {#name, (void *)name, direct_##name, call_##name},
#define ENTRY_VA(name, fn, ...) {#name, (void *)fn, direct_##name, call_##name},

const struct oracle_case win64_cases[] = {
    {"w64_void0", (void *)w64_void0, direct_w64_void0, call_w64_void0},
    {"w64_scribble", (void *)w64_scribble, direct_w64_scribble, call_w64_scribble},
    {"w64_scribble_ld", (void *)w64_scribble_ld, direct_w64_scribble_ld, call_w64_scribble_ld},
    WIN64_LIST(ENTRY, ENTRY, ENTRY_VA)
};
const size_t win64_case_count = sizeof win64_cases / sizeof win64_cases[0];

/* ------------------------------------------------- register discipline */

/*
 * uint32_t win64_call_checked(struct win64_call *c)   (host convention)
 *
 * Calls c->fn with the Microsoft convention: rcx, rdx, r8, r9 from c->gpr,
 * xmm0-3 (low 8 bytes) from c->xmm, c->stack[0..8) at rsp+32 after the
 * shadow area; with sentinels in every register the convention makes
 * callee-saved (rbx, rbp, rsi, rdi, r12-r15, xmm6-xmm15). Stores rax and
 * xmm0 in c->rax and c->xmm0, and returns a mask of the registers that
 * did not survive: bit 0 rbx, 1 rbp, 2 rsi, 3 rdi, 4-7 r12-r15,
 * 8 + k xmm(6 + k), 18 rsp.
 *
 * Layout of struct win64_call: fn 0, gpr 8, xmm 40, stack 72, rax 136,
 * xmm0 144 (16 bytes).
 *
 * int64_t win64_clobber(struct win64_clobber *s, int64_t a1, ..., int64_t a5)
 * double win64_clobber_f64(struct win64_clobber *s, double x1, ..., double x5)
 * struct { int64_t q[3]; } win64_clobber_sret(struct win64_clobber *s,
 *                                             int64_t a1, a2, a3)
 *   (ms_abi) Record their arguments as 8-byte words in s->args, the stack
 *   alignment (rsp at entry + 8, mod 16) in s->align, count s->calls, and
 *   then trash every register the convention lets a callee trash (rax but
 *   the result, rcx, rdx, r8-r11, xmm0-5 but the result), the 32-byte
 *   shadow area and their own stack arguments. Results: win64_clobber
 *   r = a1, r = rol(r, 9) ^ a_k for k = 2..5; win64_clobber_f64 the
 *   left-to-right sum; win64_clobber_sret {a1 ^ a3, a2 - a3, a1 + a2}.
 *   Layout of struct win64_clobber: calls 0, align 8, args 16 (8 words).
 */
__asm__(
    "    .intel_syntax noprefix\n"
    "    .pushsection .rodata\n"
    "    .p2align 4\n"
    "win64_xmm_sentinels:\n"
    "    .quad 0x6a6a0606a6a60606, 0x6b6b0606b6b60606\n"
    "    .quad 0x6a6a0707a6a60707, 0x6b6b0707b6b60707\n"
    "    .quad 0x6a6a0808a6a60808, 0x6b6b0808b6b60808\n"
    "    .quad 0x6a6a0909a6a60909, 0x6b6b0909b6b60909\n"
    "    .quad 0x6a6a1010a6a61010, 0x6b6b1010b6b61010\n"
    "    .quad 0x6a6a1111a6a61111, 0x6b6b1111b6b61111\n"
    "    .quad 0x6a6a1212a6a61212, 0x6b6b1212b6b61212\n"
    "    .quad 0x6a6a1313a6a61313, 0x6b6b1313b6b61313\n"
    "    .quad 0x6a6a1414a6a61414, 0x6b6b1414b6b61414\n"
    "    .quad 0x6a6a1515a6a61515, 0x6b6b1515b6b61515\n"
    "    .popsection\n"
    "    .pushsection .text\n"
    "    .globl win64_call_checked\n"
    "    .type win64_call_checked, @function\n"
    "    .p2align 4\n"
    "win64_call_checked:\n"
    "    push rbp\n"
    "    mov rbp, rsp\n"
    "    push rbx\n"
    "    push r12\n"
    "    push r13\n"
    "    push r14\n"
    "    push r15\n"
    /* 32 shadow + 64 stack arguments + c + saved rbp: 16-aligned at the call */
    "    sub rsp, 120\n"
    "    mov [rsp + 96], rdi\n"
    "    mov [rsp + 104], rbp\n"
    "    .irp k, 0, 1, 2, 3, 4, 5, 6, 7\n"
    "    mov rax, [rdi + 72 + 8 * \\k]\n"
    "    mov [rsp + 32 + 8 * \\k], rax\n"
    "    .endr\n"
    "    movabs rax, 0x5ad05ad05ad05ad0\n"
    "    mov [rsp], rax\n"
    "    mov [rsp + 8], rax\n"
    "    mov [rsp + 16], rax\n"
    "    mov [rsp + 24], rax\n"
    "    lea r10, [rip + win64_xmm_sentinels]\n"
    "    .irp x, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n"
    "    movdqa xmm\\x, [r10 + 16 * (\\x - 6)]\n"
    "    .endr\n"
    "    movq xmm0, [rdi + 40]\n"
    "    movq xmm1, [rdi + 48]\n"
    "    movq xmm2, [rdi + 56]\n"
    "    movq xmm3, [rdi + 64]\n"
    "    mov rcx, [rdi + 8]\n"
    "    mov rdx, [rdi + 16]\n"
    "    mov r8, [rdi + 24]\n"
    "    mov r9, [rdi + 32]\n"
    "    mov rax, [rdi]\n"
    "    movabs rbx, 0x5eb05eb05eb05eb0\n"
    "    movabs rbp, 0x5eb15eb15eb15eb1\n"
    "    movabs rsi, 0x5eb25eb25eb25eb2\n"
    "    movabs rdi, 0x5eb35eb35eb35eb3\n"
    "    movabs r12, 0x5eb45eb45eb45eb4\n"
    "    movabs r13, 0x5eb55eb55eb55eb5\n"
    "    movabs r14, 0x5eb65eb65eb65eb6\n"
    "    movabs r15, 0x5eb75eb75eb75eb7\n"
    "    call rax\n"
    "    mov r11, [rsp + 96]\n"
    "    mov [r11 + 136], rax\n"
    "    movdqu [r11 + 144], xmm0\n"
    "    xor eax, eax\n"
    "    .macro W64CHK reg, sentinel, bit\n"
    "    movabs r10, \\sentinel\n"
    "    cmp \\reg, r10\n"
    "    setne dl\n"
    "    movzx edx, dl\n"
    "    shl edx, \\bit\n"
    "    or eax, edx\n"
    "    .endm\n"
    "    W64CHK rbx, 0x5eb05eb05eb05eb0, 0\n"
    "    W64CHK rbp, 0x5eb15eb15eb15eb1, 1\n"
    "    W64CHK rsi, 0x5eb25eb25eb25eb2, 2\n"
    "    W64CHK rdi, 0x5eb35eb35eb35eb3, 3\n"
    "    W64CHK r12, 0x5eb45eb45eb45eb4, 4\n"
    "    W64CHK r13, 0x5eb55eb55eb55eb5, 5\n"
    "    W64CHK r14, 0x5eb65eb65eb65eb6, 6\n"
    "    W64CHK r15, 0x5eb75eb75eb75eb7, 7\n"
    "    .purgem W64CHK\n"
    "    lea r10, [rip + win64_xmm_sentinels]\n"
    "    .irp x, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n"
    "    pcmpeqb xmm\\x, [r10 + 16 * (\\x - 6)]\n"
    "    pmovmskb edx, xmm\\x\n"
    "    cmp edx, 0xffff\n"
    "    setne dl\n"
    "    movzx edx, dl\n"
    "    shl edx, 8 + \\x - 6\n"
    "    or eax, edx\n"
    "    .endr\n"
    /* rsp is checked through the frame: the saved rbp must be where it was */
    "    lea r10, [rsp + 120 + 40]\n"
    "    cmp r10, [rsp + 104]\n"
    "    setne dl\n"
    "    movzx edx, dl\n"
    "    shl edx, 18\n"
    "    or eax, edx\n"
    "    mov rbp, [rsp + 104]\n"
    "    lea rsp, [rbp - 40]\n"
    "    pop r15\n"
    "    pop r14\n"
    "    pop r13\n"
    "    pop r12\n"
    "    pop rbx\n"
    "    pop rbp\n"
    "    ret\n"
    "    .size win64_call_checked, . - win64_call_checked\n"

    /* Shared tail of the clobber callees: trash what a callee may. */
    "    .macro W64TRASH nstack, keep_rax, keep_xmm0\n"
    "    movabs r10, 0xbad0bad1bad2bad3\n"
    "    mov [rsp + 8], r10\n"
    "    mov [rsp + 16], r10\n"
    "    mov [rsp + 24], r10\n"
    "    mov [rsp + 32], r10\n"
    "    .irp k, 1, 2\n"
    "    .if \\k <= \\nstack\n"
    "    mov [rsp + 32 + 8 * \\k], r10\n"
    "    .endif\n"
    "    .endr\n"
    "    .if \\keep_rax == 0\n"
    "    mov rax, r10\n"
    "    .endif\n"
    "    mov rcx, r10\n"
    "    mov rdx, r10\n"
    "    mov r8, r10\n"
    "    mov r9, r10\n"
    "    mov r11, r10\n"
    "    .if \\keep_xmm0 == 0\n"
    "    pcmpeqd xmm0, xmm0\n"
    "    .endif\n"
    "    .irp x, 1, 2, 3, 4, 5\n"
    "    pcmpeqd xmm\\x, xmm\\x\n"
    "    .endr\n"
    "    .endm\n"

    "    .globl win64_clobber\n"
    "    .type win64_clobber, @function\n"
    "    .p2align 4\n"
    "win64_clobber:\n"
    "    inc QWORD PTR [rcx]\n"
    "    lea rax, [rsp + 8]\n"
    "    and rax, 15\n"
    "    mov [rcx + 8], rax\n"
    "    mov [rcx + 16], rcx\n"
    "    mov [rcx + 24], rdx\n"
    "    mov [rcx + 32], r8\n"
    "    mov [rcx + 40], r9\n"
    "    mov rax, [rsp + 40]\n"
    "    mov [rcx + 48], rax\n"
    "    mov rax, [rsp + 48]\n"
    "    mov [rcx + 56], rax\n"
    "    mov rax, rdx\n"
    "    rol rax, 9\n"
    "    xor rax, r8\n"
    "    rol rax, 9\n"
    "    xor rax, r9\n"
    "    rol rax, 9\n"
    "    xor rax, [rsp + 40]\n"
    "    rol rax, 9\n"
    "    xor rax, [rsp + 48]\n"
    "    W64TRASH 2, 1, 0\n"
    "    ret\n"
    "    .size win64_clobber, . - win64_clobber\n"

    "    .globl win64_clobber_f64\n"
    "    .type win64_clobber_f64, @function\n"
    "    .p2align 4\n"
    "win64_clobber_f64:\n"
    "    inc QWORD PTR [rcx]\n"
    "    lea rax, [rsp + 8]\n"
    "    and rax, 15\n"
    "    mov [rcx + 8], rax\n"
    "    mov [rcx + 16], rcx\n"
    "    movq [rcx + 24], xmm1\n"
    "    movq [rcx + 32], xmm2\n"
    "    movq [rcx + 40], xmm3\n"
    "    mov rax, [rsp + 40]\n"
    "    mov [rcx + 48], rax\n"
    "    mov rax, [rsp + 48]\n"
    "    mov [rcx + 56], rax\n"
    "    movapd xmm0, xmm1\n"
    "    addsd xmm0, xmm2\n"
    "    addsd xmm0, xmm3\n"
    "    addsd xmm0, [rsp + 40]\n"
    "    addsd xmm0, [rsp + 48]\n"
    "    W64TRASH 2, 0, 1\n"
    "    ret\n"
    "    .size win64_clobber_f64, . - win64_clobber_f64\n"

    /* rcx = result buffer, rdx = s, r8 = a1, r9 = a2, stack: a3 (an odd
     * number of stack words, where the others have an even one) */
    "    .globl win64_clobber_sret\n"
    "    .type win64_clobber_sret, @function\n"
    "    .p2align 4\n"
    "win64_clobber_sret:\n"
    "    inc QWORD PTR [rdx]\n"
    "    lea rax, [rsp + 8]\n"
    "    and rax, 15\n"
    "    mov [rdx + 8], rax\n"
    "    mov [rdx + 16], rdx\n"
    "    mov [rdx + 24], r8\n"
    "    mov [rdx + 32], r9\n"
    "    mov rax, [rsp + 40]\n"
    "    mov [rdx + 40], rax\n"
    "    mov rax, r8\n"
    "    xor rax, [rsp + 40]\n"
    "    mov [rcx], rax\n"
    "    mov rax, r9\n"
    "    sub rax, [rsp + 40]\n"
    "    mov [rcx + 8], rax\n"
    "    lea rax, [r8 + r9]\n"
    "    mov [rcx + 16], rax\n"
    "    mov rax, rcx\n"
    "    W64TRASH 1, 1, 0\n"
    "    ret\n"
    "    .size win64_clobber_sret, . - win64_clobber_sret\n"
    "    .purgem W64TRASH\n"
    "    .popsection\n"
    "    .att_syntax prefix\n");
