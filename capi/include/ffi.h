/* ffi.h: the C interface of the jitffi libffi.so.8.

   Source-compatible with libffi 3.4's <ffi.h> for x86-64 and AArch64
   Linux (same types, layouts, constants, macros and functions; the
   target's part is in <ffitarget.h>), plus libffi 3.5's
   version queries. Calls go through code compiled once per call shape by
   jitffi instead of libffi's interpreter.

   Usage is libffi's: describe the signature with ffi_prep_cif (or
   ffi_prep_cif_var), then call with ffi_call; closures come from
   ffi_closure_alloc + ffi_prep_closure_loc.

   SPDX-License-Identifier: MIT OR Apache-2.0 */

#ifndef LIBFFI_H
#define LIBFFI_H

#ifdef __cplusplus
extern "C" {
#endif

/* The target libffi was configured for. */
#if defined(__x86_64__)
#ifndef X86_64
#define X86_64
#endif
#elif defined(__aarch64__)
#ifndef AARCH64
#define AARCH64
#endif
#endif

/* ---- Type codes (the `type` field of ffi_type) ------------------------ */

#define FFI_TYPE_VOID 0
#define FFI_TYPE_INT 1
#define FFI_TYPE_FLOAT 2
#define FFI_TYPE_DOUBLE 3
#define FFI_TYPE_LONGDOUBLE 4
#define FFI_TYPE_UINT8 5
#define FFI_TYPE_SINT8 6
#define FFI_TYPE_UINT16 7
#define FFI_TYPE_SINT16 8
#define FFI_TYPE_UINT32 9
#define FFI_TYPE_SINT32 10
#define FFI_TYPE_UINT64 11
#define FFI_TYPE_SINT64 12
#define FFI_TYPE_STRUCT 13
#define FFI_TYPE_POINTER 14
#define FFI_TYPE_COMPLEX 15
#define FFI_TYPE_LAST FFI_TYPE_COMPLEX

#include <ffitarget.h>

#ifndef LIBFFI_ASM

#include <stddef.h>
#include <limits.h>

#define FFI_64_BIT_MAX 9223372036854775807
#ifdef LONG_LONG_MAX
#define FFI_LONG_LONG_MAX LONG_LONG_MAX
#else
#define FFI_LONG_LONG_MAX LLONG_MAX
#endif

/* Version of the libffi interface implemented (see ffi_get_version). */
#define FFI_VERSION_STRING "3.4.6-jitffi"
#define FFI_VERSION_NUMBER 30406

/* Visibility of the library's functions and data. Defining
   LIBFFI_HIDE_BASIC_TYPES drops `extern` from the type objects'
   declarations, as libffi's header does. */
#define FFI_API
#ifdef LIBFFI_HIDE_BASIC_TYPES
#define FFI_EXTERN FFI_API
#else
#define FFI_EXTERN extern FFI_API
#endif

/* A C type: 24 bytes. Struct types may leave size and alignment 0 for
   ffi_prep_cif to fill in. `elements` is the NULL-terminated member list
   of a struct, or the part type of a complex type. */
typedef struct _ffi_type {
  size_t size;
  unsigned short alignment;
  unsigned short type;
  struct _ffi_type **elements;
} ffi_type;

/* C's integer types, by their sizes on LP64. */
#define ffi_type_uchar ffi_type_uint8
#define ffi_type_schar ffi_type_sint8
#define ffi_type_ushort ffi_type_uint16
#define ffi_type_sshort ffi_type_sint16
#define ffi_type_uint ffi_type_uint32
#define ffi_type_sint ffi_type_sint32
#define ffi_type_ulong ffi_type_uint64
#define ffi_type_slong ffi_type_sint64

FFI_EXTERN ffi_type ffi_type_void;
FFI_EXTERN ffi_type ffi_type_uint8;
FFI_EXTERN ffi_type ffi_type_sint8;
FFI_EXTERN ffi_type ffi_type_uint16;
FFI_EXTERN ffi_type ffi_type_sint16;
FFI_EXTERN ffi_type ffi_type_uint32;
FFI_EXTERN ffi_type ffi_type_sint32;
FFI_EXTERN ffi_type ffi_type_uint64;
FFI_EXTERN ffi_type ffi_type_sint64;
FFI_EXTERN ffi_type ffi_type_float;
FFI_EXTERN ffi_type ffi_type_double;
FFI_EXTERN ffi_type ffi_type_pointer;
FFI_EXTERN ffi_type ffi_type_longdouble;

#ifdef FFI_TARGET_HAS_COMPLEX_TYPE
FFI_EXTERN ffi_type ffi_type_complex_float;
FFI_EXTERN ffi_type ffi_type_complex_double;
FFI_EXTERN ffi_type ffi_type_complex_longdouble;
#endif

typedef enum {
  FFI_OK = 0,
  FFI_BAD_TYPEDEF,  /* a malformed ffi_type */
  FFI_BAD_ABI,      /* an ABI outside FFI_FIRST_ABI..FFI_LAST_ABI */
  FFI_BAD_ARGTYPE   /* e.g. a float or narrow integer variadic argument */
} ffi_status;

/* A prepared call interface: 32 bytes. `bytes` and `flags` belong to
   the library (flags names the compiled code). */
typedef struct {
  ffi_abi abi;
  unsigned nargs;
  ffi_type **arg_types;
  ffi_type *rtype;
  unsigned bytes;
  unsigned flags;
} ffi_cif;

/* ---- The raw API: arguments in consecutive 8-byte slots --------------- */

#define FFI_SIZEOF_ARG 8
#define FFI_SIZEOF_JAVA_RAW FFI_SIZEOF_ARG

typedef union {
  ffi_sarg sint;
  ffi_arg uint;
  float flt;
  char data[FFI_SIZEOF_ARG];
  void *ptr;
} ffi_raw;

/* Java's raw slots have the same size here. */
typedef ffi_raw ffi_java_raw;

FFI_API void ffi_raw_call(ffi_cif *cif, void (*fn)(void), void *rvalue,
                          ffi_raw *avalue);
FFI_API void ffi_ptrarray_to_raw(ffi_cif *cif, void **args, ffi_raw *raw);
FFI_API void ffi_raw_to_ptrarray(ffi_cif *cif, ffi_raw *raw, void **args);
FFI_API size_t ffi_raw_size(ffi_cif *cif);

FFI_API void ffi_java_raw_call(ffi_cif *cif, void (*fn)(void), void *rvalue,
                               ffi_java_raw *avalue)
    __attribute__((deprecated));
FFI_API void ffi_java_ptrarray_to_raw(ffi_cif *cif, void **args,
                                      ffi_java_raw *raw)
    __attribute__((deprecated));
FFI_API void ffi_java_raw_to_ptrarray(ffi_cif *cif, ffi_java_raw *raw,
                                      void **args)
    __attribute__((deprecated));
FFI_API size_t ffi_java_raw_size(ffi_cif *cif) __attribute__((deprecated));

/* ---- Closures: C function pointers that call a handler ---------------- */

#if FFI_CLOSURES

/* The trampoline, then what the handler needs: 56 bytes on x86-64, 48 on
   AArch64. */
typedef struct {
  union {
    char tramp[FFI_TRAMPOLINE_SIZE];
    void *ftramp;
  };
  ffi_cif *cif;
  void (*fun)(ffi_cif *, void *, void **, void *);
  void *user_data;
} ffi_closure __attribute__((aligned(8)));

/* Returns writable memory for a closure of `size` bytes and stores the
   executable address of the same closure in *code. */
FFI_API void *ffi_closure_alloc(size_t size, void **code);
FFI_API void ffi_closure_free(void *);

#define FFI_CLOSURE_PTR(X) (X)
#define FFI_RESTORE_PTR(X) (X)

FFI_API ffi_status ffi_prep_closure(ffi_closure *,
                                    ffi_cif *,
                                    void (*fun)(ffi_cif *, void *, void **,
                                                void *),
                                    void *user_data)
    __attribute__((deprecated("use ffi_prep_closure_loc instead")));

FFI_API ffi_status ffi_prep_closure_loc(ffi_closure *,
                                        ffi_cif *,
                                        void (*fun)(ffi_cif *, void *,
                                                    void **, void *),
                                        void *user_data,
                                        void *codeloc);

typedef struct {
  char tramp[FFI_TRAMPOLINE_SIZE];
  ffi_cif *cif;
  /* Private: how the arguments reach the raw handler. */
  void (*translate_args)(ffi_cif *, void *, void **, void *);
  void *this_closure;
  void (*fun)(ffi_cif *, void *, ffi_raw *, void *);
  void *user_data;
} ffi_raw_closure;

typedef struct {
  char tramp[FFI_TRAMPOLINE_SIZE];
  ffi_cif *cif;
  /* Private: how the arguments reach the raw handler. */
  void (*translate_args)(ffi_cif *, void *, void **, void *);
  void *this_closure;
  void (*fun)(ffi_cif *, void *, ffi_java_raw *, void *);
  void *user_data;
} ffi_java_raw_closure;

FFI_API ffi_status ffi_prep_raw_closure(ffi_raw_closure *,
                                        ffi_cif *cif,
                                        void (*fun)(ffi_cif *, void *,
                                                    ffi_raw *, void *),
                                        void *user_data);

FFI_API ffi_status ffi_prep_raw_closure_loc(ffi_raw_closure *,
                                            ffi_cif *cif,
                                            void (*fun)(ffi_cif *, void *,
                                                        ffi_raw *, void *),
                                            void *user_data,
                                            void *codeloc);

FFI_API ffi_status ffi_prep_java_raw_closure(ffi_java_raw_closure *,
                                             ffi_cif *cif,
                                             void (*fun)(ffi_cif *, void *,
                                                         ffi_java_raw *,
                                                         void *),
                                             void *user_data)
    __attribute__((deprecated));

FFI_API ffi_status ffi_prep_java_raw_closure_loc(ffi_java_raw_closure *,
                                                 ffi_cif *cif,
                                                 void (*fun)(ffi_cif *, void *,
                                                             ffi_java_raw *,
                                                             void *),
                                                 void *user_data,
                                                 void *codeloc)
    __attribute__((deprecated));

#endif /* FFI_CLOSURES */

#if FFI_GO_CLOSURES

/* Called with the closure's own address in the static chain register
   (r10 on x86-64, x18 on AArch64); `tramp` is the code address. */
typedef struct {
  void *tramp;
  ffi_cif *cif;
  void (*fun)(ffi_cif *, void *, void **, void *);
} ffi_go_closure;

FFI_API ffi_status ffi_prep_go_closure(ffi_go_closure *, ffi_cif *,
                                       void (*fun)(ffi_cif *, void *,
                                                   void **, void *));

FFI_API void ffi_call_go(ffi_cif *cif, void (*fn)(void), void *rvalue,
                         void **avalue, void *closure);

#endif /* FFI_GO_CLOSURES */

/* ---- Calls ------------------------------------------------------------ */

FFI_API ffi_status ffi_prep_cif(ffi_cif *cif,
                                ffi_abi abi,
                                unsigned int nargs,
                                ffi_type *rtype,
                                ffi_type **atypes);

FFI_API ffi_status ffi_prep_cif_var(ffi_cif *cif,
                                    ffi_abi abi,
                                    unsigned int nfixedargs,
                                    unsigned int ntotalargs,
                                    ffi_type *rtype,
                                    ffi_type **atypes);

FFI_API void ffi_call(ffi_cif *cif, void (*fn)(void), void *rvalue,
                      void **avalue);

FFI_API ffi_status ffi_get_struct_offsets(ffi_abi abi, ffi_type *struct_type,
                                          size_t *offsets);

/* ---- Queries (libffi 3.5) --------------------------------------------- */

FFI_API const char *ffi_get_version(void);
FFI_API unsigned long ffi_get_version_number(void);
FFI_API unsigned int ffi_get_default_abi(void);
FFI_API size_t ffi_get_closure_size(void);

/* Casts a function pointer to the type ffi_call takes. */
#define FFI_FN(f) ((void (*)(void))f)

#endif /* !LIBFFI_ASM */

#ifdef __cplusplus
}
#endif

#endif /* LIBFFI_H */
