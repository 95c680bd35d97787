/* ffitarget.h: target definitions of the jitffi libffi.so.8, for x86-64
   (System V, LP64) and AArch64 (AAPCS64, LP64) Linux. Included by
   <ffi.h>; not meant to be included on its own. Values and layouts are
   those of libffi 3.4 for the same target.
   SPDX-License-Identifier: MIT OR Apache-2.0 */

#ifndef LIBFFI_TARGET_H
#define LIBFFI_TARGET_H

#ifndef LIBFFI_H
#error "include <ffi.h>, which includes this file"
#endif

#if defined(__x86_64__) && !defined(__ILP32__) && !defined(_WIN32)

#define X86_ANY

/* Stack space for arguments is found by the implementation itself. */
#define FFI_TARGET_SPECIFIC_STACK_SPACE_ALLOCATION

/* _Complex float/double/long double are supported. */
#define FFI_TARGET_HAS_COMPLEX_TYPE

#ifndef LIBFFI_ASM

/* Integer return values are widened to a full register of this type. */
typedef unsigned long ffi_arg;
typedef signed long ffi_sarg;

typedef enum ffi_abi {
  FFI_FIRST_ABI = 1,
  FFI_UNIX64,            /* System V AMD64 */
  FFI_WIN64,             /* Microsoft x64 (__attribute__((ms_abi))) */
  FFI_EFI64 = FFI_WIN64,
  FFI_GNUW64,            /* Microsoft x64 as GCC/MinGW compile it */
  FFI_LAST_ABI,
  FFI_DEFAULT_ABI = FFI_UNIX64
} ffi_abi;

#endif /* !LIBFFI_ASM */

#define FFI_CLOSURES 1
#define FFI_GO_CLOSURES 1

/* Internal type codes of libffi's x86 back end, kept for source
   compatibility; never valid in an ffi_type. */
#define FFI_TYPE_SMALL_STRUCT_1B (FFI_TYPE_LAST + 1)
#define FFI_TYPE_SMALL_STRUCT_2B (FFI_TYPE_LAST + 2)
#define FFI_TYPE_SMALL_STRUCT_4B (FFI_TYPE_LAST + 3)
#define FFI_TYPE_MS_STRUCT (FFI_TYPE_LAST + 4)

/* Bytes of code at the start of an ffi_closure. */
#define FFI_TRAMPOLINE_SIZE 32

/* The raw API is emulated (arguments are translated to a pointer array). */
#define FFI_NATIVE_RAW_API 0

#elif defined(__aarch64__) && !defined(__ILP32__) && !defined(_WIN32) && \
    !defined(__APPLE__)

#ifndef LIBFFI_ASM

/* Integer return values are widened to a full register of this type. */
typedef unsigned long ffi_arg;
typedef signed long ffi_sarg;

typedef enum ffi_abi {
  FFI_FIRST_ABI = 0,
  FFI_SYSV,              /* AAPCS64 */
  FFI_WIN64,             /* Windows on Arm64: refused on Linux (FFI_BAD_ABI) */
  FFI_LAST_ABI,
  FFI_DEFAULT_ABI = FFI_SYSV
} ffi_abi;

#endif /* !LIBFFI_ASM */

#define FFI_CLOSURES 1
/* The static chain (Go closures' context) is x18. */
#define FFI_GO_CLOSURES 1

/* The raw API is emulated (arguments are translated to a pointer array). */
#define FFI_NATIVE_RAW_API 0

/* Bytes of code at the start of an ffi_closure, and where its fields
   begin. */
#define FFI_TRAMPOLINE_SIZE 24
#define FFI_TRAMPOLINE_CLOSURE_OFFSET FFI_TRAMPOLINE_SIZE

/* Variadic calls get their own preparation (ffi_prep_cif_var). */
#define FFI_TARGET_SPECIFIC_VARIADIC

/* _Complex float/double/long double are supported. */
#define FFI_TARGET_HAS_COMPLEX_TYPE

#else
#error "this libffi.so.8 (jitffi) is built for x86-64 and AArch64 Linux (LP64) only"
#endif

#endif /* LIBFFI_TARGET_H */
