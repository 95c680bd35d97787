/* libffi 3.5's queries and the header's layouts. Our library only: libffi
   3.4.4 has no LIBFFI_BASE_8.1. */

#include <stddef.h>

#include "check.h"

_Static_assert(sizeof(ffi_type) == 24, "ffi_type");
_Static_assert(offsetof(ffi_type, alignment) == 8, "ffi_type.alignment");
_Static_assert(offsetof(ffi_type, type) == 10, "ffi_type.type");
_Static_assert(offsetof(ffi_type, elements) == 16, "ffi_type.elements");
_Static_assert(sizeof(ffi_cif) == 32, "ffi_cif");
_Static_assert(offsetof(ffi_cif, rtype) == 16, "ffi_cif.rtype");
_Static_assert(offsetof(ffi_cif, flags) == 28, "ffi_cif.flags");
_Static_assert(offsetof(ffi_closure, cif) == FFI_TRAMPOLINE_SIZE, "cif");
_Static_assert(sizeof(ffi_go_closure) == 24, "ffi_go_closure");
_Static_assert(sizeof(ffi_raw) == FFI_SIZEOF_ARG, "ffi_raw");
_Static_assert(sizeof(ffi_arg) == 8 && (ffi_sarg)-1 < 0, "ffi_arg");
#if defined(__x86_64__)
_Static_assert(sizeof(ffi_closure) == 56, "ffi_closure");
_Static_assert(offsetof(ffi_closure, user_data) == 48, "user_data");
_Static_assert(sizeof(ffi_raw_closure) == 72, "ffi_raw_closure");
_Static_assert(sizeof(ffi_java_raw_closure) == 72, "ffi_java_raw_closure");
_Static_assert(FFI_UNIX64 == 2 && FFI_WIN64 == 3 && FFI_GNUW64 == 4 &&
                   FFI_EFI64 == FFI_WIN64 && FFI_LAST_ABI == 5 &&
                   FFI_DEFAULT_ABI == FFI_UNIX64,
               "ffi_abi");
#elif defined(__aarch64__)
_Static_assert(sizeof(ffi_closure) == 48, "ffi_closure");
_Static_assert(offsetof(ffi_closure, user_data) == 40, "user_data");
_Static_assert(sizeof(ffi_raw_closure) == 64, "ffi_raw_closure");
_Static_assert(sizeof(ffi_java_raw_closure) == 64, "ffi_java_raw_closure");
_Static_assert(FFI_FIRST_ABI == 0 && FFI_SYSV == 1 && FFI_WIN64 == 2 &&
                   FFI_LAST_ABI == 3 && FFI_DEFAULT_ABI == FFI_SYSV,
               "ffi_abi");
#endif
_Static_assert(FFI_TYPE_LAST == FFI_TYPE_COMPLEX && FFI_TYPE_COMPLEX == 15,
               "type codes");

int main(void) {
  printf("ours: version %s (%lu)\n", ffi_get_version(),
         ffi_get_version_number());
  CHECK(strcmp(ffi_get_version(), FFI_VERSION_STRING) == 0, "string");
  CHECK(ffi_get_version_number() == FFI_VERSION_NUMBER, "number");
  printf("ours: default abi %u\n", ffi_get_default_abi());
  CHECK(ffi_get_default_abi() == FFI_DEFAULT_ABI, "default abi");
  printf("ours: closure size %zu\n", ffi_get_closure_size());
  CHECK(ffi_get_closure_size() == sizeof(ffi_closure), "closure size");
  return finish();
}
