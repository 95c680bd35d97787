/*
 * What the C oracles of both conventions (oracles.c for SysV, win64.c for
 * Microsoft x64) share: the scalar type names, the thread-local record of
 * the arguments an oracle received, the hash its result derives from, and
 * the per-type rec_T (record a T), st_T (store a T result in libffi form)
 * and mk_T (make a T from a hash). Each including file gets its own record;
 * ORACLE_RECORD_API(prefix) defines the functions the Rust side reads it
 * through (prefix_reset, prefix_arg_count, prefix_call_count,
 * prefix_arg_bytes).
 */
#ifndef JITFFI_ORACLE_COMMON_H
#define JITFFI_ORACLE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "oracles.h"

/* ---------------------------------------------------------------- types */

typedef int8_t i8;
typedef uint8_t u8;
typedef int16_t i16;
typedef uint16_t u16;
typedef int32_t i32;
typedef uint32_t u32;
typedef int64_t i64;
typedef uint64_t u64;
typedef __int128 i128;
typedef unsigned __int128 u128;
typedef float f32;
typedef double f64;
typedef long double f80;
typedef void *ptr;
typedef float _Complex cf32;
typedef double _Complex cf64;
typedef long double _Complex cf80;

/* ------------------------------------------------------------ the record */

static __thread struct {
    int count;
    uint64_t calls;
    size_t size[ORACLE_MAX_ARGS];
    unsigned char bytes[ORACLE_MAX_ARGS][ORACLE_SLOT];
} rec;

/* The record is per thread: reset poisons it, an oracle call fills it. */
#define ORACLE_RECORD_API(prefix)                                           \
    void prefix##_reset(void);                                              \
    void prefix##_reset(void)                                               \
    {                                                                       \
        memset(&rec, 0xEE, sizeof rec);                                     \
        rec.count = -1;                                                     \
        rec.calls = 0;                                                      \
    }                                                                       \
    int prefix##_arg_count(void);                                           \
    int prefix##_arg_count(void) { return rec.count; }                      \
    uint64_t prefix##_call_count(void);                                     \
    uint64_t prefix##_call_count(void) { return rec.calls; }                \
    const unsigned char *prefix##_arg_bytes(int i, size_t *size);           \
    const unsigned char *prefix##_arg_bytes(int i, size_t *size)            \
    {                                                                       \
        if (i < 0 || i >= ORACLE_MAX_ARGS)                                  \
            return NULL;                                                    \
        *size = rec.size[i];                                                \
        return rec.bytes[i];                                                \
    }

/* Starts a record of n arguments; returns 0 if n does not fit. */
static int rec_begin(int n)
{
    rec.calls++;
    if (n < 0 || n > ORACLE_MAX_ARGS) {
        rec.count = -2;
        return 0;
    }
    rec.count = n;
    return 1;
}

static void rec_open(int slot, size_t size)
{
    memset(rec.bytes[slot], 0, ORACLE_SLOT);
    rec.size[slot] = size;
}

static void rec_put(int slot, size_t offset, const void *p, size_t n)
{
    memcpy(rec.bytes[slot] + offset, p, n);
}

/* FNV-1a over every recorded byte: the return value depends on all args. */
static uint64_t rec_end(void)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (int i = 0; i < rec.count; i++)
        for (size_t k = 0; k < rec.size[i]; k++)
            h = (h ^ rec.bytes[i][k]) * 0x100000001b3u;
    return h;
}

static inline uint64_t mix(uint64_t h, uint64_t k)
{
    uint64_t z = h + k * 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Exactly representable, signed, mostly non-integral values. */
static inline float mkf32(uint64_t h, int k) { return (float)((int64_t)mix(h, k) >> 40) / 8.0f; }
static inline double mkf64(uint64_t h, int k) { return (double)((int64_t)mix(h, k) >> 11) / 1024.0; }
static inline long double mkf80(uint64_t h, int k) { return (long double)(int64_t)mix(h, k) / 65536.0L; }

/* ------------------------------------------- per-type rec_T, mk_T, st_T */

/* Scalars: every byte of the value is meaningful. */
#define SCALAR(T)                                                           \
    static inline void rec_##T(int slot, const T *v)                        \
    {                                                                       \
        rec_open(slot, sizeof(T));                                          \
        rec_put(slot, 0, v, sizeof(T));                                     \
    }                                                                       \
    static inline void st_##T(void *rv, T v) { memcpy(rv, &v, sizeof v); }

/* Narrow integers come back widened to 8 bytes (ffi_arg), as W. Win64
 * leaves the upper bits of a narrow result undefined, so there the
 * widening is the stub's work. */
#define NARROW(T, W)                                                        \
    static inline void rec_##T(int slot, const T *v)                        \
    {                                                                       \
        rec_open(slot, sizeof(T));                                          \
        rec_put(slot, 0, v, sizeof(T));                                     \
    }                                                                       \
    static inline void st_##T(void *rv, T v)                                \
    {                                                                       \
        W w = v;                                                            \
        memcpy(rv, &w, 8);                                                  \
    }

/* Narrow returns always have the top bit set, so widening is visible. */
NARROW(i8, int64_t)
NARROW(u8, uint64_t)
NARROW(i16, int64_t)
NARROW(u16, uint64_t)
NARROW(i32, int64_t)
NARROW(u32, uint64_t)
static inline i8 mk_i8(uint64_t h) { return (i8)(0x80 | (h & 0x7f)); }
static inline u8 mk_u8(uint64_t h) { return (u8)(0x80 | h); }
static inline i16 mk_i16(uint64_t h) { return (i16)(0x8000 | (h & 0x7fff)); }
static inline u16 mk_u16(uint64_t h) { return (u16)(0x8000 | h); }
static inline i32 mk_i32(uint64_t h) { return (i32)(0x80000000u | (uint32_t)h); }
static inline u32 mk_u32(uint64_t h) { return (u32)(0x80000000u | h); }

SCALAR(i64)
SCALAR(u64)
SCALAR(i128)
SCALAR(u128)
SCALAR(f32)
SCALAR(f64)
SCALAR(ptr)
SCALAR(cf32)
SCALAR(cf64)
static inline i64 mk_i64(uint64_t h) { return (i64)h; }
static inline u64 mk_u64(uint64_t h) { return mix(h, 1); }
static inline i128 mk_i128(uint64_t h) { return (i128)(((u128)mix(h, 1) << 64) | mix(h, 2)); }
static inline u128 mk_u128(uint64_t h) { return ((u128)mix(h, 3) << 64) | mix(h, 4); }
static inline f32 mk_f32(uint64_t h) { return mkf32(h, 1); }
static inline f64 mk_f64(uint64_t h) { return mkf64(h, 1); }
static inline ptr mk_ptr(uint64_t h) { return (ptr)(uintptr_t)mix(h, 5); }
static inline cf32 mk_cf32(uint64_t h) { cf32 z; __real__ z = mkf32(h, 1); __imag__ z = mkf32(h, 2); return z; }
static inline cf64 mk_cf64(uint64_t h) { cf64 z; __real__ z = mkf64(h, 1); __imag__ z = mkf64(h, 2); return z; }

/* long double: on x86-64 the x87 type, 10 meaningful bytes of a 16-byte
 * slot; elsewhere (AArch64: IEEE binary128) every byte is meaningful. */
#if __LDBL_MANT_DIG__ == 64
#define LD_BYTES 10
#else
#define LD_BYTES sizeof(long double)
#endif

static inline void rec_f80(int slot, const f80 *v)
{
    rec_open(slot, sizeof(f80));
    rec_put(slot, 0, v, LD_BYTES);
}
static inline void st_f80(void *rv, f80 v) { memcpy(rv, &v, LD_BYTES); }
static inline f80 mk_f80(uint64_t h) { return mkf80(h, 1); }

static inline void rec_cf80(int slot, const cf80 *v)
{
    rec_open(slot, sizeof(cf80));
    rec_put(slot, 0, v, LD_BYTES);
    rec_put(slot, 16, (const char *)v + 16, LD_BYTES);
}
static inline void st_cf80(void *rv, cf80 v)
{
    memcpy(rv, &v, LD_BYTES);
    memcpy((char *)rv + 16, (char *)&v + 16, LD_BYTES);
}
static inline cf80 mk_cf80(uint64_t h) { cf80 z; __real__ z = mkf80(h, 1); __imag__ z = mkf80(h, 2); return z; }

/* Aggregates: recorded field by field so padding stays zero. */
#define FIELD(T, f) rec_put(slot, offsetof(T, f), &v->f, sizeof v->f)
#define FIELD_LD(T, f) rec_put(slot, offsetof(T, f), &v->f, LD_BYTES)
#define AGGREGATE(T, ...)                                                   \
    static inline void rec_##T(int slot, const T *v)                        \
    {                                                                       \
        rec_open(slot, sizeof(T));                                          \
        __VA_ARGS__;                                                        \
    }                                                                       \
    static inline void st_##T(void *rv, T v) { memcpy(rv, &v, sizeof v); }


/* Results: every field derived from the hash, padding zeroed. */
#define MK(T) static inline T mk_##T(uint64_t h) { T r; memset(&r, 0, sizeof r);
#define END return r; }

/* -------------------------------------------------- argument-list macros */

#define CAT(a, b) CAT_(a, b)
#define CAT_(a, b) a##b
#define NARGS(...) NARGS_(__VA_ARGS__, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, \
                          10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, \
               _15, _16, _17, _18, _19, _20, N, ...) N
#define COMMA() ,
#define NOTHING()

/* EACH(M, S, T0, T1, ...) expands to M(0, T0) S() M(1, T1) S() ... */
#define EACH(M, S, ...) CAT(EACH, NARGS(__VA_ARGS__))(M, S, __VA_ARGS__)
#define EACH1(M, S, a) M(0, a)
#define EACH2(M, S, a, b) EACH1(M, S, a) S() M(1, b)
#define EACH3(M, S, a, b, c) EACH2(M, S, a, b) S() M(2, c)
#define EACH4(M, S, a, b, c, d) EACH3(M, S, a, b, c) S() M(3, d)
#define EACH5(M, S, a, b, c, d, e) EACH4(M, S, a, b, c, d) S() M(4, e)
#define EACH6(M, S, a, b, c, d, e, f) EACH5(M, S, a, b, c, d, e) S() M(5, f)
#define EACH7(M, S, a, b, c, d, e, f, g) EACH6(M, S, a, b, c, d, e, f) S() M(6, g)
#define EACH8(M, S, a, b, c, d, e, f, g, h) EACH7(M, S, a, b, c, d, e, f, g) S() M(7, h)
#define EACH9(M, S, a, b, c, d, e, f, g, h, i) \
    EACH8(M, S, a, b, c, d, e, f, g, h) S() M(8, i)
#define EACH10(M, S, a, b, c, d, e, f, g, h, i, j) \
    EACH9(M, S, a, b, c, d, e, f, g, h, i) S() M(9, j)
#define EACH11(M, S, a, b, c, d, e, f, g, h, i, j, k) \
    EACH10(M, S, a, b, c, d, e, f, g, h, i, j) S() M(10, k)
#define EACH12(M, S, a, b, c, d, e, f, g, h, i, j, k, l) \
    EACH11(M, S, a, b, c, d, e, f, g, h, i, j, k) S() M(11, l)
#define EACH13(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m) \
    EACH12(M, S, a, b, c, d, e, f, g, h, i, j, k, l) S() M(12, m)
#define EACH14(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n) \
    EACH13(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m) S() M(13, n)
#define EACH15(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o) \
    EACH14(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n) S() M(14, o)
#define EACH16(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p) \
    EACH15(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o) S() M(15, p)
#define EACH17(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q) \
    EACH16(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p) S() M(16, q)
#define EACH18(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r) \
    EACH17(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q) S() M(17, r)
#define EACH19(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s) \
    EACH18(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r) S() M(18, s)
#define EACH20(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t) \
    EACH19(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s) S() M(19, t)

#define PARAM(i, T) T a##i
#define PTYPE(i, T) T
#define RECORD(i, T) rec_##T(i, &a##i);
#define ARGVAL(i, T) *(const T *)av[i]
#define FIRST(a, ...) a

#endif
