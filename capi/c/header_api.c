/* Every function and object of the libffi 3.4 interface, taken with its
   exact type: compiling this against a header checks its declarations
   (against ours and the system's, with -Werror). Also runnable. */

#include "check.h"

#define HAS(name, ...) __typeof__(__VA_ARGS__) name##_p = name;

HAS(ffi_prep_cif, ffi_status (*)(ffi_cif *, ffi_abi, unsigned int, ffi_type *,
                                 ffi_type **))
HAS(ffi_prep_cif_var, ffi_status (*)(ffi_cif *, ffi_abi, unsigned int,
                                     unsigned int, ffi_type *, ffi_type **))
HAS(ffi_call, void (*)(ffi_cif *, void (*)(void), void *, void **))
HAS(ffi_get_struct_offsets, ffi_status (*)(ffi_abi, ffi_type *, size_t *))
HAS(ffi_raw_call, void (*)(ffi_cif *, void (*)(void), void *, ffi_raw *))
HAS(ffi_ptrarray_to_raw, void (*)(ffi_cif *, void **, ffi_raw *))
HAS(ffi_raw_to_ptrarray, void (*)(ffi_cif *, ffi_raw *, void **))
HAS(ffi_raw_size, size_t (*)(ffi_cif *))
HAS(ffi_java_raw_call,
    void (*)(ffi_cif *, void (*)(void), void *, ffi_java_raw *))
HAS(ffi_java_ptrarray_to_raw, void (*)(ffi_cif *, void **, ffi_java_raw *))
HAS(ffi_java_raw_to_ptrarray, void (*)(ffi_cif *, ffi_java_raw *, void **))
HAS(ffi_java_raw_size, size_t (*)(ffi_cif *))
HAS(ffi_closure_alloc, void *(*)(size_t, void **))
HAS(ffi_closure_free, void (*)(void *))
HAS(ffi_prep_closure,
    ffi_status (*)(ffi_closure *, ffi_cif *,
                   void (*)(ffi_cif *, void *, void **, void *), void *))
HAS(ffi_prep_closure_loc,
    ffi_status (*)(ffi_closure *, ffi_cif *,
                   void (*)(ffi_cif *, void *, void **, void *), void *,
                   void *))
HAS(ffi_prep_raw_closure,
    ffi_status (*)(ffi_raw_closure *, ffi_cif *,
                   void (*)(ffi_cif *, void *, ffi_raw *, void *), void *))
HAS(ffi_prep_raw_closure_loc,
    ffi_status (*)(ffi_raw_closure *, ffi_cif *,
                   void (*)(ffi_cif *, void *, ffi_raw *, void *), void *,
                   void *))
HAS(ffi_prep_java_raw_closure,
    ffi_status (*)(ffi_java_raw_closure *, ffi_cif *,
                   void (*)(ffi_cif *, void *, ffi_java_raw *, void *),
                   void *))
HAS(ffi_prep_java_raw_closure_loc,
    ffi_status (*)(ffi_java_raw_closure *, ffi_cif *,
                   void (*)(ffi_cif *, void *, ffi_java_raw *, void *),
                   void *, void *))
#if FFI_GO_CLOSURES
/* Declarations only (not referenced: the Go closure exports are still to
   come in our library). */
#define DECLARED(name, ...)                                              \
  _Static_assert(__builtin_types_compatible_p(__typeof__(&name),         \
                                              __VA_ARGS__),              \
                 #name);
DECLARED(ffi_prep_go_closure,
         ffi_status (*)(ffi_go_closure *, ffi_cif *,
                        void (*)(ffi_cif *, void *, void **, void *)))
DECLARED(ffi_call_go,
         void (*)(ffi_cif *, void (*)(void), void *, void **, void *))
#endif
#ifdef FFI_VERSION_NUMBER /* libffi 3.5's additions */
HAS(ffi_get_version, const char *(*)(void))
HAS(ffi_get_version_number, unsigned long (*)(void))
HAS(ffi_get_default_abi, unsigned int (*)(void))
HAS(ffi_get_closure_size, size_t (*)(void))
#endif

static ffi_type *const objects[] = {
    &ffi_type_void,   &ffi_type_uint8,  &ffi_type_sint8,  &ffi_type_uint16,
    &ffi_type_sint16, &ffi_type_uint32, &ffi_type_sint32, &ffi_type_uint64,
    &ffi_type_sint64, &ffi_type_float,  &ffi_type_double, &ffi_type_longdouble,
    &ffi_type_pointer, &ffi_type_uchar, &ffi_type_schar,  &ffi_type_ushort,
    &ffi_type_sshort, &ffi_type_uint,   &ffi_type_sint,   &ffi_type_ulong,
    &ffi_type_slong,
#ifdef FFI_TARGET_HAS_COMPLEX_TYPE
    &ffi_type_complex_float, &ffi_type_complex_double,
    &ffi_type_complex_longdouble,
#endif
};

#if !FFI_CLOSURES || FFI_NATIVE_RAW_API || FFI_SIZEOF_ARG != 8 || \
    FFI_SIZEOF_JAVA_RAW != 8 || !FFI_GO_CLOSURES
#error "target macros"
#endif
#if defined(__x86_64__) && FFI_TRAMPOLINE_SIZE != 32
#error "x86-64 trampoline size"
#endif
#if defined(__aarch64__) && (FFI_TRAMPOLINE_SIZE != 24 || \
                             FFI_TRAMPOLINE_CLOSURE_OFFSET != 24)
#error "AArch64 trampoline size"
#endif

int main(void) {
  ffi_closure c;
  c.ftramp = NULL; /* the anonymous union's pointer view */
  printf("objects: %zu, closure: %zu bytes, tramp %p\n",
         sizeof objects / sizeof *objects, sizeof c, c.ftramp);
  CHECK(ffi_prep_cif_p != NULL && ffi_call_p != NULL, "functions");
  CHECK(FFI_FN(main) != NULL, "FFI_FN");
  return finish();
}
