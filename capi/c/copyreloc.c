/* Built as a non-PIE executable (-no-pie) that reads the ffi_type_*
   objects directly: the linker gives it copy relocations, so the library
   must work with the executable's copies (initialised from its own) and
   never tell types apart by address. */

#include <complex.h>

#include "check.h"

static ffi_type *const objects[] = {
    &ffi_type_void,   &ffi_type_uint8,          &ffi_type_sint8,
    &ffi_type_uint16, &ffi_type_sint16,         &ffi_type_uint32,
    &ffi_type_sint32, &ffi_type_uint64,         &ffi_type_sint64,
    &ffi_type_float,  &ffi_type_double,         &ffi_type_longdouble,
    &ffi_type_pointer, &ffi_type_complex_float, &ffi_type_complex_double,
    &ffi_type_complex_longdouble};
static const char *const names[] = {
    "void",   "uint8",  "sint8",      "uint16",     "sint16",
    "uint32", "sint32", "uint64",     "sint64",     "float",
    "double", "longdouble", "pointer", "complex_float", "complex_double",
    "complex_longdouble"};

__attribute__((noipa)) static double f(int32_t a, double b, float complex c) {
  return a * b + crealf(c) * cimagf(c);
}

int main(void) {
  /* Direct reads of the objects' fields (what forces the copies). */
  size_t direct = ffi_type_sint32.size + ffi_type_double.size +
                  ffi_type_complex_float.size + ffi_type_pointer.alignment;
  printf("direct field reads: %zu\n", direct);
  CHECK(direct == 4 + 8 + 8 + 8, "direct reads");
  for (unsigned i = 0; i < sizeof objects / sizeof *objects; i++) {
    ffi_type *t = objects[i];
    printf("%s: size %zu align %u type %u", names[i], t->size, t->alignment,
           t->type);
    if (t->type == FFI_TYPE_COMPLEX) {
      printf(" part type %u", t->elements[0]->type);
      CHECK(t->elements[1] == NULL, "%s: one part", names[i]);
    } else {
      CHECK(t->elements == NULL, "%s: no elements", names[i]);
    }
    printf("\n");
  }
  int32_t a = -3;
  double b = 2.5;
  float complex c = 2 + 3 * I;
  ffi_type *args[3] = {&ffi_type_sint32, &ffi_type_double,
                       &ffi_type_complex_float};
  void *values[3] = {&a, &b, &c};
  ffi_cif cif;
  PREP(&cif, FFI_DEFAULT_ABI, 3, &ffi_type_double, args);
  double r;
  ffi_call(&cif, FFI_FN(f), &r, values);
  printf("call through copied types: %.17g\n", r);
  CHECK(r == f(a, b, c), "call");
  return finish();
}
