/*
 * C oracle functions: gcc's ground truth for AAPCS64 as Linux uses it.
 *
 * Every oracle `R a_x(args...)` copies the meaningful bytes of each argument
 * it received into a thread-local record (struct padding stays zero; a
 * binary128 `long double` has no unused bytes) and returns a value derived
 * from a hash of all of them. Next to each oracle, `direct_a_x(rvalue,
 * avalue)` calls it with gcc's own calling code and stores the result the
 * way libffi's ffi_call does (integers narrower than 64 bits widened into
 * 8 bytes), and `call_a_x(fn, rvalue, avalue)` is the same caller with the
 * callee a parameter (a jitffi closure, above all).
 *
 * The case table a64_cases[] carries each case's signature as the C type
 * names of its return value and arguments, turned into a string by the
 * preprocessor, so the Rust side (oracle/src/aapcs64.rs) reads signatures
 * from here instead of restating them; a64_types[] gives sizeof and
 * _Alignof of every type name for it to check its own layouts against.
 *
 * Adding a case: one line in A64_LIST. A new type needs a typedef, rec_T,
 * mk_T and st_T below, a line in A64_TYPES and its description in
 * oracle/src/aapcs64.rs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Most arguments one record holds, and bytes per recorded argument
 * (mirrored in oracle/src/aapcs64.rs). */
#define A64_MAX_ARGS 32
#define A64_SLOT 128

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
typedef long double f128;                               /* IEEE binary128 */
typedef void *ptr;
typedef float _Complex cf32;
typedef double _Complex cf64;
typedef long double _Complex cf128;

/* Homogeneous floating-point aggregates (HFA). */
typedef struct { float x, y, z; } s_fff;                /* v0-v2 */
typedef struct { struct { double a, b; } in; } s_dd_nest; /* nested: d0, d1 */
typedef struct { float v[4]; } s_f4;                    /* array: s0-s3 */
typedef struct { double v[4]; } s_d4;                   /* d0-d3, 32 bytes */
typedef struct { long double a, b; } s_ld2;             /* q0, q1 */
typedef struct { long double v[4]; } s_ld4;             /* q0-q3, 64 bytes */
typedef struct { float _Complex c; float f[2]; } s_cf2; /* complex member: 4 floats */
typedef union { float f[2]; float _Complex c; } u_ff;   /* union HFA of 2 */
typedef union { double d[2]; struct { double a, b; } s; } u_dd;
/* Not HFAs. */
typedef struct { float f; double d; } s_fd;             /* mixed: x0:x1 */
typedef union { float f; double d; } u_fd;              /* padded: x0 */
typedef struct { float v[5]; } s_f5;                    /* 5 members: by reference */
typedef struct { float f; int32_t i; } s_fi;            /* x0 */
/* Small composites: 1-2 x registers. */
#define SCN(n) typedef struct { char c[n]; } s_c##n;
SCN(1) SCN(2) SCN(3) SCN(4) SCN(5) SCN(6) SCN(7) SCN(8)
SCN(9) SCN(10) SCN(11) SCN(12) SCN(13) SCN(14) SCN(15) SCN(16)
typedef struct { uint8_t a; uint16_t b; uint8_t c; } s_odd; /* 6, padded */
typedef struct { int16_t s; char c; } s_scs;            /* 4, padded */
typedef struct { double d; int32_t i; } s_di;           /* 16, padded */
typedef struct { int64_t a, b; } s_ll;
typedef struct { __int128 x; } s_i128;                  /* even register pair */
/* Large composites: passed by reference, returned through x8. */
typedef struct { int64_t a, b, c; } s_24;
typedef struct { int32_t i; double d; char c[3]; int64_t q; float f; } s_40;
typedef struct { int32_t v[25]; } s_100;
typedef struct { long double x; int32_t i; } s_ldi;     /* 32, not an HFA */
/* Larger than a page: the caller's copy and the x8 buffer make its frame
 * span pages. Recorded as a digest (too large for a record slot). */
typedef struct { int32_t v[2500]; } s_huge;

/* ------------------------------------------------------------ the record */

static __thread struct {
    int count;
    uint64_t calls;
    size_t size[A64_MAX_ARGS];
    unsigned char bytes[A64_MAX_ARGS][A64_SLOT];
} rec;

/* Where a64_scribble found its by-reference arguments. */
static __thread uintptr_t scribble_addr[5];

void a64_reset(void);
void a64_reset(void)
{
    memset(&rec, 0xEE, sizeof rec);
    rec.count = -1;
    rec.calls = 0;
    memset(scribble_addr, 0, sizeof scribble_addr);
}
int a64_arg_count(void);
int a64_arg_count(void) { return rec.count; }
uint64_t a64_call_count(void);
uint64_t a64_call_count(void) { return rec.calls; }
const unsigned char *a64_arg_bytes(int i, size_t *size);
const unsigned char *a64_arg_bytes(int i, size_t *size)
{
    if (i < 0 || i >= A64_MAX_ARGS)
        return NULL;
    *size = rec.size[i];
    return rec.bytes[i];
}
const uintptr_t *a64_scribble_addrs(void);
const uintptr_t *a64_scribble_addrs(void) { return scribble_addr; }

/* Starts a record of n arguments; returns 0 if n does not fit. */
static int rec_begin(int n)
{
    rec.calls++;
    if (n < 0 || n > A64_MAX_ARGS) {
        rec.count = -2;
        return 0;
    }
    rec.count = n;
    return 1;
}

static void rec_open(int slot, size_t size)
{
    memset(rec.bytes[slot], 0, A64_SLOT);
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
static inline long double mkf128(uint64_t h, int k)
{
    /* 64 significant bits and a fraction: more than a double holds. */
    return (long double)(int64_t)mix(h, k) / 65536.0L;
}

/* ------------------------------------------- per-type rec_T, mk_T, st_T */

/* Scalars: every byte of the value is meaningful. */
#define SCALAR(T)                                                           \
    static inline void rec_##T(int slot, const T *v)                        \
    {                                                                       \
        rec_open(slot, sizeof(T));                                          \
        rec_put(slot, 0, v, sizeof(T));                                     \
    }                                                                       \
    static inline void st_##T(void *rv, T v) { memcpy(rv, &v, sizeof v); }

/* Narrow integers come back widened to 8 bytes (ffi_arg), as W. gcc
 * leaves the bits above a narrow result unspecified on AArch64, so the
 * widening is the caller's (the stub's) work. */
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
SCALAR(f128)
SCALAR(ptr)
SCALAR(cf32)
SCALAR(cf64)
SCALAR(cf128)
static inline i64 mk_i64(uint64_t h) { return (i64)h; }
static inline u64 mk_u64(uint64_t h) { return mix(h, 1); }
static inline i128 mk_i128(uint64_t h) { return (i128)(((u128)mix(h, 1) << 64) | mix(h, 2)); }
static inline u128 mk_u128(uint64_t h) { return ((u128)mix(h, 3) << 64) | mix(h, 4); }
static inline f32 mk_f32(uint64_t h) { return mkf32(h, 1); }
static inline f64 mk_f64(uint64_t h) { return mkf64(h, 1); }
static inline f128 mk_f128(uint64_t h) { return mkf128(h, 1); }
static inline ptr mk_ptr(uint64_t h) { return (ptr)(uintptr_t)mix(h, 5); }
static inline cf32 mk_cf32(uint64_t h) { cf32 z; __real__ z = mkf32(h, 1); __imag__ z = mkf32(h, 2); return z; }
static inline cf64 mk_cf64(uint64_t h) { cf64 z; __real__ z = mkf64(h, 1); __imag__ z = mkf64(h, 2); return z; }
static inline cf128 mk_cf128(uint64_t h) { cf128 z; __real__ z = mkf128(h, 1); __imag__ z = mkf128(h, 2); return z; }

/* Aggregates: recorded field by field so padding stays zero. */
#define FIELD(T, f) rec_put(slot, offsetof(T, f), &v->f, sizeof v->f)
#define AGGREGATE(T, ...)                                                   \
    static inline void rec_##T(int slot, const T *v)                        \
    {                                                                       \
        rec_open(slot, sizeof(T));                                          \
        __VA_ARGS__;                                                        \
    }                                                                       \
    static inline void st_##T(void *rv, T v) { memcpy(rv, &v, sizeof v); }
/* Unions without padding: every byte is meaningful. */
#define WHOLE rec_put(slot, 0, v, sizeof *v)

AGGREGATE(s_fff, FIELD(s_fff, x); FIELD(s_fff, y); FIELD(s_fff, z))
AGGREGATE(s_dd_nest, FIELD(s_dd_nest, in.a); FIELD(s_dd_nest, in.b))
AGGREGATE(s_f4, FIELD(s_f4, v))
AGGREGATE(s_d4, FIELD(s_d4, v))
AGGREGATE(s_ld2, FIELD(s_ld2, a); FIELD(s_ld2, b))
AGGREGATE(s_ld4, FIELD(s_ld4, v))
AGGREGATE(s_cf2, FIELD(s_cf2, c); FIELD(s_cf2, f))
AGGREGATE(u_ff, WHOLE)
AGGREGATE(u_dd, WHOLE)
AGGREGATE(s_fd, FIELD(s_fd, f); FIELD(s_fd, d))
AGGREGATE(u_fd, WHOLE)
AGGREGATE(s_f5, FIELD(s_f5, v))
AGGREGATE(s_fi, FIELD(s_fi, f); FIELD(s_fi, i))
#define SCN_AGG(n) AGGREGATE(s_c##n, FIELD(s_c##n, c))
SCN_AGG(1) SCN_AGG(2) SCN_AGG(3) SCN_AGG(4) SCN_AGG(5) SCN_AGG(6) SCN_AGG(7) SCN_AGG(8)
SCN_AGG(9) SCN_AGG(10) SCN_AGG(11) SCN_AGG(12) SCN_AGG(13) SCN_AGG(14) SCN_AGG(15)
SCN_AGG(16)
AGGREGATE(s_odd, FIELD(s_odd, a); FIELD(s_odd, b); FIELD(s_odd, c))
AGGREGATE(s_scs, FIELD(s_scs, s); FIELD(s_scs, c))
AGGREGATE(s_di, FIELD(s_di, d); FIELD(s_di, i))
AGGREGATE(s_ll, FIELD(s_ll, a); FIELD(s_ll, b))
AGGREGATE(s_i128, FIELD(s_i128, x))
AGGREGATE(s_24, FIELD(s_24, a); FIELD(s_24, b); FIELD(s_24, c))
AGGREGATE(s_40, FIELD(s_40, i); FIELD(s_40, d); FIELD(s_40, c); FIELD(s_40, q); FIELD(s_40, f))
AGGREGATE(s_100, FIELD(s_100, v))
AGGREGATE(s_ldi, FIELD(s_ldi, x); FIELD(s_ldi, i))
/* The digest of a s_huge: FNV-1a of its bytes, then the wrapping sum of
 * its elements as uint64 (oracle/src/aapcs64.rs: `huge_digest`). */
static inline void rec_s_huge(int slot, const s_huge *v)
{
    uint64_t h = 0xcbf29ce484222325u, sum = 0;
    const unsigned char *b = (const unsigned char *)v;
    for (size_t k = 0; k < sizeof *v; k++)
        h = (h ^ b[k]) * 0x100000001b3u;
    for (size_t k = 0; k < 2500; k++)
        sum += (uint64_t)(int64_t)v->v[k];
    rec_open(slot, 16);
    rec_put(slot, 0, &h, 8);
    rec_put(slot, 8, &sum, 8);
}
static inline void st_s_huge(void *rv, s_huge v) { memcpy(rv, &v, sizeof v); }

/* Results: every field derived from the hash, padding zeroed. */
#define MK(T) static inline T mk_##T(uint64_t h) { T r; memset(&r, 0, sizeof r);
#define END return r; }

MK(s_fff) r.x = mkf32(h, 1); r.y = mkf32(h, 2); r.z = mkf32(h, 3); END
MK(s_dd_nest) r.in.a = mkf64(h, 1); r.in.b = mkf64(h, 2); END
MK(s_f4) for (int k = 0; k < 4; k++) r.v[k] = mkf32(h, k); END
MK(s_d4) for (int k = 0; k < 4; k++) r.v[k] = mkf64(h, k); END
MK(s_ld2) r.a = mkf128(h, 1); r.b = mkf128(h, 2); END
MK(s_ld4) for (int k = 0; k < 4; k++) r.v[k] = mkf128(h, k); END
MK(s_cf2) __real__ r.c = mkf32(h, 1); __imag__ r.c = mkf32(h, 2); r.f[0] = mkf32(h, 3); r.f[1] = mkf32(h, 4); END
MK(u_ff) r.f[0] = mkf32(h, 1); r.f[1] = mkf32(h, 2); END
MK(u_dd) r.d[0] = mkf64(h, 1); r.d[1] = mkf64(h, 2); END
MK(s_fd) r.f = mkf32(h, 1); r.d = mkf64(h, 2); END
MK(u_fd) r.d = mkf64(h, 1); END
MK(s_f5) for (int k = 0; k < 5; k++) r.v[k] = mkf32(h, k); END
MK(s_fi) r.f = mkf32(h, 1); r.i = (i32)mix(h, 2); END
#define SCN_MK(n) MK(s_c##n) for (int k = 0; k < n; k++) r.c[k] = (char)mix(h, k); END
SCN_MK(1) SCN_MK(2) SCN_MK(3) SCN_MK(4) SCN_MK(5) SCN_MK(6) SCN_MK(7) SCN_MK(8)
SCN_MK(9) SCN_MK(10) SCN_MK(11) SCN_MK(12) SCN_MK(13) SCN_MK(14) SCN_MK(15) SCN_MK(16)
MK(s_odd) r.a = (u8)mix(h, 1); r.b = (u16)mix(h, 2); r.c = (u8)mix(h, 3); END
MK(s_scs) r.s = (i16)mix(h, 1); r.c = (char)mix(h, 2); END
MK(s_di) r.d = mkf64(h, 1); r.i = (i32)mix(h, 2); END
MK(s_ll) r.a = (i64)mix(h, 1); r.b = (i64)mix(h, 2); END
MK(s_i128) r.x = mk_i128(h); END
MK(s_24) r.a = (i64)mix(h, 1); r.b = (i64)mix(h, 2); r.c = (i64)mix(h, 3); END
MK(s_40) r.i = (i32)mix(h, 1); r.d = mkf64(h, 2); r.c[0] = (char)mix(h, 3); r.c[1] = (char)mix(h, 4);
    r.c[2] = (char)mix(h, 5); r.q = (i64)mix(h, 6); r.f = mkf32(h, 7); END
MK(s_100) for (int k = 0; k < 25; k++) r.v[k] = (i32)mix(h, k); END
MK(s_ldi) r.x = mkf128(h, 1); r.i = (i32)mix(h, 2); END
MK(s_huge) for (int k = 0; k < 2500; k++) r.v[k] = (i32)mix(h, k); END

/* -------------------------------------------------- argument-list macros */

#define CAT(a, b) CAT_(a, b)
#define CAT_(a, b) a##b
#define NARGS(...) NARGS_(__VA_ARGS__, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, \
                          12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, \
               _17, _18, _19, _20, _21, _22, _23, _24, N, ...) N
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
#define EACH9(M, S, a, b, c, d, e, f, g, h, i) EACH8(M, S, a, b, c, d, e, f, g, h) S() M(8, i)
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
#define EACH21(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u) \
    EACH20(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t) S() M(20, u)
#define EACH22(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v) \
    EACH21(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u) S() M(21, v)
#define EACH23(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w) \
    EACH22(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v) S() M(22, w)
#define EACH24(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x) \
    EACH23(M, S, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w)    \
    S() M(23, x)

#define PARAM(i, T) T a##i
#define PTYPE(i, T) T
#define RECORD(i, T) rec_##T(i, &a##i);
#define ARGVAL(i, T) *(const T *)av[i]
#define FIRST(a, ...) a

/* gcc's caller of any function of this signature at fn, in libffi form. */
#define CALLER(name, R, ...)                                                \
    static void call_##name(void *fn, void *rv, void **av)                  \
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
    static void call_##name(void *fn, void *rv, void **av)                  \
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
    static void call_##name(void *f, void *rv, void **av)                   \
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

VA_ORACLE(i32, a_va_ints, i32)
VA_ORACLE(f64, a_va_dbl, f64)
VA_ORACLE(f128, a_va_ld, f128)
VA_ORACLE(s_24, a_va_24, i64)

/* fmt letters: i int, q int64, d double, D long double, p pointer,
 * s {double,int}, x {float,double}, f {float x3} (HFA), h {double[4]}
 * (HFA), b {int64 x3} (by reference), c double _Complex. */
__attribute__((noipa)) int64_t a_va_fmt(const char *fmt, ...);
int64_t a_va_fmt(const char *fmt, ...)
{
    size_t n = strlen(fmt);
    if (!rec_begin(n >= A64_MAX_ARGS ? -1 : (int)n + 1))
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
        case 'D': { f128 v = va_arg(ap, f128); rec_f128(slot, &v); break; }
        case 'p': { ptr v = va_arg(ap, ptr); rec_ptr(slot, &v); break; }
        case 's': { s_di v = va_arg(ap, s_di); rec_s_di(slot, &v); break; }
        case 'x': { s_fd v = va_arg(ap, s_fd); rec_s_fd(slot, &v); break; }
        case 'f': { s_fff v = va_arg(ap, s_fff); rec_s_fff(slot, &v); break; }
        case 'h': { s_d4 v = va_arg(ap, s_d4); rec_s_d4(slot, &v); break; }
        case 'b': { s_24 v = va_arg(ap, s_24); rec_s_24(slot, &v); break; }
        case 'c': { cf64 v = va_arg(ap, cf64); rec_cf64(slot, &v); break; }
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
#define I64x6 i64, i64, i64, i64, i64, i64
#define I64x7 I64x6, i64
#define I64x8 I64x7, i64
#define F64x6 f64, f64, f64, f64, f64, f64
#define A64_LIST(X, XV, XVA)                                                          \
    /* integers of every width: narrow args negative / top bit set */               \
    X(a_i8, i8, i8, i8, i8)                                                           \
    X(a_u8, u8, u8, u8, u8)                                                           \
    X(a_i16, i16, i16, i16)                                                           \
    X(a_u16, u16, u16, u16)                                                           \
    X(a_i32, i32, i32, i32)                                                           \
    X(a_u32, u32, u32, u32)                                                           \
    X(a_i64, i64, i64, i64)                                                           \
    X(a_u64, u64, u64)                                                                \
    X(a_int_widths, i64, i8, u8, i16, u16, i32, u32, i64, u64)                        \
    /* narrow integers in 8-byte stack slots */                                       \
    X(a_narrow_stack, i16, I64x8, i8, u8, i16, u16, i32, u32)                         \
    X(a_ptr, ptr, ptr, ptr)                                                           \
    XV(a_void_args, i32, f64, s_di)                                                   \
    X(a_i32x16, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, \
      i32, i32, i32)                                                                  \
    X(a_mixed_scalars, f64, i32, f64, i64, f32, ptr, i8, u16, f64)                    \
    /* floating point; floats on the stack take 8-byte slots */                      \
    X(a_f32, f32, f32, f32)                                                           \
    X(a_f64, f64, f64, f64, f64, f64)                                                 \
    X(a_f128, f128, f128, f128)                                                       \
    X(a_f128_mixed, f128, i32, f128, f64, f128, i32)                                  \
    X(a_f32_spill, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)   \
    X(a_f64_spill, f64, F64x6, f64, f64, f64, f64)                                    \
    X(a_f128_spill, f128, f32, f128, f128, f128, f128, f128, f128, f128, f128, f128)  \
    X(a_spill_mixed, f64, f64, i64, f64, i64, f64, i64, f64, i64, f64, i64, f64, i64, \
      f64, i64, f64, i64, f64, i64, f32, i8, f128)                                    \
    /* __int128: even register pairs, 16-aligned stack slots */                      \
    X(a_i128, i128, i128, i128)                                                       \
    X(a_u128, u128, u128)                                                             \
    X(a_int_i128, i128, i32, i128, i32)                                               \
    X(a_i128_last_pair, i128, I64x6, i128)                                            \
    X(a_i128_stack, i128, I64x7, i128, i64)                                           \
    X(a_i128_stack2, i32, I64x8, i32, i128, i32)                                      \
    /* complex: HFAs of two */                                                        \
    X(a_cf32, cf32, cf32, cf32)                                                       \
    X(a_cf64, cf64, cf64, cf64)                                                       \
    X(a_cf128, cf128, cf128, i32)                                                     \
    X(a_cf_spill, cf64, cf64, cf64, cf64, cf64, cf64)                                 \
    /* HFAs */                                                                        \
    X(a_s_fff, s_fff, s_fff, s_fff)                                                   \
    X(a_s_dd_nest, s_dd_nest, s_dd_nest, f32)                                         \
    X(a_s_f4, s_f4, s_f4, s_f4)                                                       \
    X(a_s_d4, s_d4, s_d4, f64)                                                        \
    X(a_s_ld2, s_ld2, s_ld2)                                                          \
    X(a_s_ld4, s_ld4, s_ld4, s_ld4)                                                   \
    X(a_s_cf2, s_cf2, s_cf2)                                                          \
    X(a_u_ff, u_ff, u_ff, u_ff)                                                       \
    X(a_u_dd, u_dd, u_dd)                                                             \
    /* HFAs that fill or no longer fit the v registers */                            \
    X(a_hfa_exact, s_f4, f32, f32, f32, f32, s_f4)                                    \
    X(a_hfa_full, f32, F64x6, s_fff, f32)                                             \
    X(a_hfa_full_ld, f64, f32, f32, f32, f32, f32, s_ld4, f64)                        \
    X(a_hfa_after_full, s_fff, s_d4, s_d4, s_fff, i32, f64)                           \
    /* not HFAs */                                                                    \
    X(a_s_fd, s_fd, s_fd, s_fd)                                                       \
    X(a_u_fd, u_fd, u_fd)                                                             \
    X(a_s_f5, s_f5, s_f5)                                                             \
    X(a_s_fi, s_fi, s_fi)                                                             \
    /* small composites of every size: 1-2 x registers */                            \
    X(a_s_c1, s_c1, s_c1, s_c1)                                                       \
    X(a_s_c2, s_c2, s_c2, s_c2)                                                       \
    X(a_s_c3, s_c3, s_c3, s_c3)                                                       \
    X(a_s_c4, s_c4, s_c4, s_c4)                                                       \
    X(a_s_c5, s_c5, s_c5, s_c5)                                                       \
    X(a_s_c6, s_c6, s_c6, s_c6)                                                       \
    X(a_s_c7, s_c7, s_c7, s_c7)                                                       \
    X(a_s_c8, s_c8, s_c8, s_c8)                                                       \
    X(a_s_c9, s_c9, s_c9, s_c9)                                                       \
    X(a_s_c10, s_c10, s_c10, s_c10)                                                   \
    X(a_s_c11, s_c11, s_c11, s_c11)                                                   \
    X(a_s_c12, s_c12, s_c12, s_c12)                                                   \
    X(a_s_c13, s_c13, s_c13, s_c13)                                                   \
    X(a_s_c14, s_c14, s_c14, s_c14)                                                   \
    X(a_s_c15, s_c15, s_c15, s_c15)                                                   \
    X(a_s_c16, s_c16, s_c16, s_c16)                                                   \
    X(a_s_odd, s_odd, s_odd)                                                          \
    X(a_s_scs, s_scs, s_scs, s_scs)                                                   \
    X(a_s_di, s_di, s_di, s_di)                                                       \
    X(a_s_ll, s_ll, s_ll)                                                             \
    X(a_s_i128, s_i128, i32, s_i128)                                                  \
    X(a_s_i128_stack, s_i128, I64x8, i32, s_i128)                                     \
    X(a_small_fits, i64, I64x6, s_c16, i64)                                           \
    X(a_small_full, i64, I64x7, s_c16, i64)                                           \
    X(a_small_full_odd, s_c9, I64x7, s_c12, s_c3, s_c7)                               \
    /* large composites: by reference and through x8 */                              \
    X(a_s_24, s_24, s_24)                                                             \
    X(a_s_40, s_40, s_40, s_40)                                                       \
    X(a_s_100, s_100, s_100, s_100)                                                   \
    X(a_s_ldi, s_ldi, s_ldi)                                                          \
    X(a_large_stack, i64, I64x8, s_24, s_100)                                         \
    X(a_sret_stack, s_100, I64x8, i64, F64x6, f64, f64, f64)                          \
    X(a_large_mixed, s_40, s_fff, s_24, i8, s_100, f128, s_c3)                        \
    /* frames over a page */                                                          \
    X(a_huge, s_huge, s_huge, i32, s_huge)                                            \
    X(a_huge_stack, i64, I64x8, s_huge, i32, s_huge)                                  \
    /* variadic calls */                                                              \
    XVA(a_va_ints3, a_va_ints, i32, i32, i32, i32, i32)                                 \
    XVA(a_va_ints10, a_va_ints, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32,  \
        i32)                                                                          \
    XVA(a_va_dbl0, a_va_dbl, f64, i32)                                                  \
    XVA(a_va_dbl10, a_va_dbl, f64, i32, F64x6, f64, f64, f64, f64)                      \
    XVA(a_va_ld3, a_va_ld, f128, i32, f128, f128, f128)                                 \
    XVA(a_va_ld9, a_va_ld, f128, i32, f128, f128, f128, f128, f128, f128, f128, f128,   \
        f128)                                                                         \
    XVA(a_va_s24, a_va_24, s_24, i32, I64x8, i64)                                       \
    XVA(a_va_fmt_mixed, a_va_fmt, i64, ptr, i32, i64, f64, f128, ptr, s_di, s_fd,       \
        s_fff, s_d4, s_24, cf64)                                                      \
    XVA(a_va_fmt_spill, a_va_fmt, i64, ptr, f64, i64, f64, i64, f64, i64, f64, i64,     \
        f64, i64, f64, i64, f64, i64, f64, i64, f64, i64, f128, i32)                  \
    XVA(a_va_fmt_hfa_spill, a_va_fmt, i64, ptr, s_d4, s_d4, s_fff, f64, s_24, i32)

A64_LIST(ORACLE, ORACLE_VOID, VARIADIC)

__attribute__((noipa)) void a_void0(void);
void a_void0(void)
{
    rec_begin(0);
}
static void direct_a_void0(void *rv, void **av)
{
    (void)rv;
    (void)av;
    a_void0();
}
static void call_a_void0(void *fn, void *rv, void **av)
{
    (void)rv;
    (void)av;
    ((void (*)(void))fn)();
}

/* A callee that overwrites its by-value arguments after recording them: a
 * caller that passed its own value (not a copy) sees it change. Also notes
 * where each by-reference argument was. */
__attribute__((noipa)) static void scribble(void *p, size_t n)
{
    memset(p, 0xeb, n);
}
__attribute__((noipa)) void a_scribble(s_24 a, s_100 b, s_40 c, s_f5 d, s_ldi e);
void a_scribble(s_24 a, s_100 b, s_40 c, s_f5 d, s_ldi e)
{
    rec_begin(5);
    rec_s_24(0, &a);
    rec_s_100(1, &b);
    rec_s_40(2, &c);
    rec_s_f5(3, &d);
    rec_s_ldi(4, &e);
    (void)rec_end();
    scribble_addr[0] = (uintptr_t)&a;
    scribble_addr[1] = (uintptr_t)&b;
    scribble_addr[2] = (uintptr_t)&c;
    scribble_addr[3] = (uintptr_t)&d;
    scribble_addr[4] = (uintptr_t)&e;
    scribble(&a, sizeof a);
    scribble(&b, sizeof b);
    scribble(&c, sizeof c);
    scribble(&d, sizeof d);
    scribble(&e, sizeof e);
}
static void direct_a_scribble(void *rv, void **av)
{
    (void)rv;
    a_scribble(*(s_24 *)av[0], *(s_100 *)av[1], *(s_40 *)av[2], *(s_f5 *)av[3], *(s_ldi *)av[4]);
}
static void call_a_scribble(void *fn, void *rv, void **av)
{
    void (*f)(s_24, s_100, s_40, s_f5, s_ldi) = (void (*)(s_24, s_100, s_40, s_f5, s_ldi))fn;
    (void)rv;
    f(*(s_24 *)av[0], *(s_100 *)av[1], *(s_40 *)av[2], *(s_f5 *)av[3], *(s_ldi *)av[4]);
}

/* One call shape; `sig` is "R(T0, T1, ...)" in the C type names above,
 * `fixed` the fixed parameters of a variadic shape (-1: not variadic). */
struct a64_case {
    const char *name;
    const char *sig;
    int fixed;
    void *fn;
    void (*direct)(void *rvalue, void **avalue);
    void (*call)(void *fn, void *rvalue, void **avalue);
};

#define SIG(R, ...) #R "(" #__VA_ARGS__ ")"
#define ENTRY(name, R, ...) {#name, SIG(R, __VA_ARGS__), -1, (void *)name, direct_##name, call_##name},
#define ENTRY_V(name, ...) {#name, SIG(void, __VA_ARGS__), -1, (void *)name, direct_##name, call_##name},
#define ENTRY_VA(name, fn, R, ...) {#name, SIG(R, __VA_ARGS__), 1, (void *)fn, direct_##name, call_##name},

const struct a64_case a64_cases[] = {
    {"a_void0", "void()", -1, (void *)a_void0, direct_a_void0, call_a_void0},
    {"a_scribble", "void(s_24, s_100, s_40, s_f5, s_ldi)", -1, (void *)a_scribble,
     direct_a_scribble, call_a_scribble},
    A64_LIST(ENTRY, ENTRY_V, ENTRY_VA)
};
const size_t a64_case_count = sizeof a64_cases / sizeof a64_cases[0];

/* sizeof and _Alignof of every type name a signature may use. */
struct a64_type {
    const char *name;
    size_t size;
    size_t align;
};

#define T(name) {#name, sizeof(name), _Alignof(name)},
#define TC(n) T(s_c##n)
const struct a64_type a64_types[] = {
    T(i8) T(u8) T(i16) T(u16) T(i32) T(u32) T(i64) T(u64) T(i128) T(u128)
    T(f32) T(f64) T(f128) T(ptr) T(cf32) T(cf64) T(cf128)
    T(s_fff) T(s_dd_nest) T(s_f4) T(s_d4) T(s_ld2) T(s_ld4) T(s_cf2) T(u_ff) T(u_dd)
    T(s_fd) T(u_fd) T(s_f5) T(s_fi)
    TC(1) TC(2) TC(3) TC(4) TC(5) TC(6) TC(7) TC(8)
    TC(9) TC(10) TC(11) TC(12) TC(13) TC(14) TC(15) TC(16)
    T(s_odd) T(s_scs) T(s_di) T(s_ll) T(s_i128)
    T(s_24) T(s_40) T(s_100) T(s_ldi) T(s_huge)
};
const size_t a64_type_count = sizeof a64_types / sizeof a64_types[0];
