/* Every refusal of ffi_prep_cif, ffi_prep_cif_var and
   ffi_get_struct_offsets, and the near misses that must be accepted.
   Shared lines must match libffi 3.4.4; "ours:" lines are inputs on which
   libffi aborts, crashes, loops or accepts a description it then
   mishandles, where we answer with a status instead. */

#include "check.h"

static const char *name_of(ffi_status s) {
  switch (s) {
    case FFI_OK: return "FFI_OK";
    case FFI_BAD_TYPEDEF: return "FFI_BAD_TYPEDEF";
    case FFI_BAD_ABI: return "FFI_BAD_ABI";
    case FFI_BAD_ARGTYPE: return "FFI_BAD_ARGTYPE";
  }
  return "unknown status";
}

static void expect(const char *prefix, const char *what, ffi_status got,
                   ffi_status want) {
  printf("%s%s: %s\n", prefix, what, name_of(got));
  CHECK(got == want, "%s: got %s, want %s", what, name_of(got),
        name_of(want));
}
#define SHARED(what, got, want) expect("", what, got, want)
#define OURS(what, got, want) expect("ours: ", what, got, want)

static ffi_type *no_members[] = {NULL};
static ffi_type *int_double[] = {&ffi_type_sint32, &ffi_type_double, NULL};

static void bad_abi(void) {
  ffi_cif cif;
  ffi_type *args[1] = {&ffi_type_sint32};
  unsigned abis[] = {0, FFI_FIRST_ABI, FFI_LAST_ABI, 1000};
  for (unsigned i = 0; i < sizeof abis / sizeof *abis; i++) {
    char what[64];
    snprintf(what, sizeof what, "prep_cif abi %u", abis[i]);
    SHARED(what, ffi_prep_cif(&cif, abis[i], 1, &ffi_type_void, args),
           FFI_BAD_ABI);
    snprintf(what, sizeof what, "prep_cif_var abi %u", abis[i]);
    SHARED(what,
           ffi_prep_cif_var(&cif, abis[i], 1, 1, &ffi_type_void, args),
           FFI_BAD_ABI);
  }
#if defined(__x86_64__)
  SHARED("prep_cif FFI_UNIX64",
         ffi_prep_cif(&cif, FFI_UNIX64, 1, &ffi_type_void, args), FFI_OK);
  SHARED("prep_cif FFI_WIN64",
         ffi_prep_cif(&cif, FFI_WIN64, 1, &ffi_type_void, args), FFI_OK);
  SHARED("prep_cif FFI_GNUW64",
         ffi_prep_cif(&cif, FFI_GNUW64, 1, &ffi_type_void, args), FFI_OK);
#elif defined(__aarch64__)
  SHARED("prep_cif FFI_SYSV",
         ffi_prep_cif(&cif, FFI_SYSV, 1, &ffi_type_void, args), FFI_OK);
#ifdef JITFFI_OURS
  /* libffi on Linux accepts Windows' convention (its variadic arguments
     all in general registers); jitffi has no such ABI. */
  OURS("prep_cif FFI_WIN64",
       ffi_prep_cif(&cif, FFI_WIN64, 1, &ffi_type_void, args), FFI_BAD_ABI);
  OURS("prep_cif_var FFI_WIN64",
       ffi_prep_cif_var(&cif, FFI_WIN64, 1, 1, &ffi_type_void, args),
       FFI_BAD_ABI);
#endif
#endif
  /* The ABI is checked before the types. */
  ffi_type empty = {0, 0, FFI_TYPE_STRUCT, no_members};
  SHARED("bad abi and bad type", ffi_prep_cif(&cif, 0, 0, &empty, args),
         FFI_BAD_ABI);
}

static void bad_typedef(void) {
  ffi_cif cif;
  ffi_type null_list = {0, 0, FFI_TYPE_STRUCT, NULL};
  ffi_type empty = {0, 0, FFI_TYPE_STRUCT, no_members};
  ffi_type unknown = {4, 4, 99, NULL};
  ffi_type *in_empty[] = {&ffi_type_sint8, &empty, NULL};
  ffi_type holds_empty = {0, 0, FFI_TYPE_STRUCT, in_empty};
  ffi_type *a_null_list[1] = {&null_list};
  ffi_type *an_empty[1] = {&empty};
  ffi_type *a_holds_empty[1] = {&holds_empty};
  SHARED("struct without element list (argument)",
         ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, a_null_list),
         FFI_BAD_TYPEDEF);
  SHARED("struct without element list (return)",
         ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 0, &null_list, NULL),
         FFI_BAD_TYPEDEF);
  SHARED("empty struct (argument)",
         ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, an_empty),
         FFI_BAD_TYPEDEF);
  SHARED("empty struct (return)",
         ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 0, &empty, NULL),
         FFI_BAD_TYPEDEF);
  SHARED("empty struct (variadic)",
         ffi_prep_cif_var(&cif, FFI_DEFAULT_ABI, 0, 1, &ffi_type_void,
                          an_empty),
         FFI_BAD_TYPEDEF);
  SHARED("struct holding an empty struct",
         ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, a_holds_empty),
         FFI_BAD_TYPEDEF);
#if defined(__x86_64__)
  SHARED("unknown type code (return)",
         ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 0, &unknown, NULL),
         FFI_BAD_TYPEDEF);
#elif defined(JITFFI_OURS)
  /* libffi 3.4.4 aborts here on AArch64. */
  OURS("unknown type code (return)",
       ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 0, &unknown, NULL),
       FFI_BAD_TYPEDEF);
#else
  (void)unknown;
#endif
}

static void bad_argtype(void) {
  ffi_cif cif;
  struct {
    const char *name;
    ffi_type *t;
    ffi_status want;
  } cases[] = {
      {"float", &ffi_type_float, FFI_BAD_ARGTYPE},
      {"uint8", &ffi_type_uint8, FFI_BAD_ARGTYPE},
      {"sint8", &ffi_type_sint8, FFI_BAD_ARGTYPE},
      {"uint16", &ffi_type_uint16, FFI_BAD_ARGTYPE},
      {"sint16", &ffi_type_sint16, FFI_BAD_ARGTYPE},
      {"sint32", &ffi_type_sint32, FFI_OK},
      {"uint32", &ffi_type_uint32, FFI_OK},
      {"sint64", &ffi_type_sint64, FFI_OK},
      {"double", &ffi_type_double, FFI_OK},
      {"longdouble", &ffi_type_longdouble, FFI_OK},
      {"pointer", &ffi_type_pointer, FFI_OK},
      {"complex_float", &ffi_type_complex_float, FFI_OK},
      {"complex_double", &ffi_type_complex_double, FFI_OK},
  };
  for (unsigned i = 0; i < sizeof cases / sizeof *cases; i++) {
    ffi_type *args[3] = {&ffi_type_pointer, &ffi_type_double, cases[i].t};
    char what[64];
    snprintf(what, sizeof what, "variadic %s", cases[i].name);
    SHARED(what,
           ffi_prep_cif_var(&cif, FFI_DEFAULT_ABI, 1, 3, &ffi_type_sint,
                            args),
           cases[i].want);
    /* The same type as a fixed argument is fine. */
    snprintf(what, sizeof what, "fixed %s", cases[i].name);
    SHARED(what,
           ffi_prep_cif_var(&cif, FFI_DEFAULT_ABI, 3, 3, &ffi_type_sint,
                            args),
           FFI_OK);
  }
  ffi_type pair = {0, 0, FFI_TYPE_STRUCT, int_double};
  ffi_type *with_struct[2] = {&ffi_type_pointer, &pair};
  SHARED("variadic struct",
         ffi_prep_cif_var(&cif, FFI_DEFAULT_ABI, 1, 2, &ffi_type_void,
                          with_struct),
         FFI_OK);
  ffi_type *narrow[2] = {&ffi_type_pointer, &ffi_type_sint8};
  SHARED("more fixed than total arguments",
         ffi_prep_cif_var(&cif, FFI_DEFAULT_ABI, 5, 2, &ffi_type_void,
                          narrow),
         FFI_OK);
  /* Narrow and float returns are fine in a variadic signature. */
  SHARED("variadic returning float",
         ffi_prep_cif_var(&cif, FFI_DEFAULT_ABI, 1, 1, &ffi_type_float,
                          narrow),
         FFI_OK);
}

static void struct_offsets(void) {
  size_t off[4];
  ffi_type pair = {0, 0, FFI_TYPE_STRUCT, int_double};
  ffi_type empty = {0, 0, FFI_TYPE_STRUCT, no_members};
  SHARED("offsets of a non-struct",
         ffi_get_struct_offsets(FFI_DEFAULT_ABI, &ffi_type_sint32, off),
         FFI_BAD_TYPEDEF);
  SHARED("offsets with a bad abi", ffi_get_struct_offsets(0, &pair, off),
         FFI_BAD_ABI);
  SHARED("offsets with a bad abi of a non-struct",
         ffi_get_struct_offsets(FFI_LAST_ABI, &ffi_type_sint32, off),
         FFI_BAD_ABI);
  SHARED("offsets of an empty struct",
         ffi_get_struct_offsets(FFI_DEFAULT_ABI, &empty, off),
         FFI_BAD_TYPEDEF);
#if defined(__x86_64__)
  SHARED("offsets under FFI_WIN64",
         ffi_get_struct_offsets(FFI_WIN64, &pair, off), FFI_OK);
#else
#ifdef JITFFI_OURS
  OURS("offsets under FFI_WIN64",
       ffi_get_struct_offsets(FFI_WIN64, &pair, off), FFI_BAD_ABI);
#endif
  SHARED("offsets under FFI_DEFAULT_ABI",
         ffi_get_struct_offsets(FFI_DEFAULT_ABI, &pair, off), FFI_OK);
#endif
  printf("offsets: %zu %zu size %zu\n", off[0], off[1], pair.size);
}

/* Inputs libffi 3.4.4 cannot survive or gets wrong. */
static void ours_only(void) {
#ifdef JITFFI_OURS
  ffi_cif cif;
  ffi_type unknown = {4, 4, 99, NULL};
  ffi_type *an_unknown[1] = {&unknown};
  OURS("unknown type code (argument)",
       ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, an_unknown),
       FFI_BAD_TYPEDEF);
  ffi_type *void_member[] = {&ffi_type_sint32, &ffi_type_void, NULL};
  ffi_type holds_void = {0, 0, FFI_TYPE_STRUCT, void_member};
  ffi_type *a_holds_void[1] = {&holds_void};
  OURS("void struct member",
       ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, a_holds_void),
       FFI_BAD_TYPEDEF);
  ffi_type *a_void[1] = {&ffi_type_void};
  OURS("void argument",
       ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, a_void),
       FFI_BAD_ARGTYPE);
  ffi_type *int_part[] = {&ffi_type_sint32, NULL};
  ffi_type int_complex = {8, 4, FFI_TYPE_COMPLEX, int_part};
  ffi_type *a_int_complex[1] = {&int_complex};
  OURS("complex of int",
       ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, a_int_complex),
       FFI_BAD_TYPEDEF);
  ffi_type no_part = {8, 4, FFI_TYPE_COMPLEX, NULL};
  ffi_type *a_no_part[1] = {&no_part};
  OURS("complex without part",
       ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, a_no_part),
       FFI_BAD_TYPEDEF);
  /* A size that is not the members' C layout (a packed struct, say):
     jitffi cannot describe it, so it refuses rather than guess. */
  ffi_type wrong_size = {40, 8, FFI_TYPE_STRUCT, int_double};
  ffi_type *a_wrong_size[1] = {&wrong_size};
  OURS("struct with a size unlike its members'",
       ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, a_wrong_size),
       FFI_BAD_TYPEDEF);
  ffi_type right_size = {16, 8, FFI_TYPE_STRUCT, int_double};
  ffi_type *a_right_size[1] = {&right_size};
  OURS("struct with its members' size filled in",
       ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, a_right_size),
       FFI_OK);
  OURS("null return type",
       ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 0, NULL, NULL), FFI_BAD_TYPEDEF);
  ffi_type *a_null[1] = {NULL};
  OURS("null argument type",
       ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, a_null),
       FFI_BAD_TYPEDEF);
  OURS("null argument array",
       ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_void, NULL),
       FFI_BAD_TYPEDEF);
  OURS("null cif",
       ffi_prep_cif(NULL, FFI_DEFAULT_ABI, 0, &ffi_type_void, NULL),
       FFI_BAD_TYPEDEF);
  /* A struct that contains itself. */
  ffi_type *self_list[2] = {NULL, NULL};
  ffi_type self = {0, 0, FFI_TYPE_STRUCT, self_list};
  self_list[0] = &self;
  ffi_type *a_self[1] = {&self};
  OURS("self-containing struct",
       ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, a_self),
       FFI_BAD_TYPEDEF);
  /* Nesting: 64 levels are fine, 65 are refused. */
  static ffi_type levels[66];
  static ffi_type *lists[66][2];
  lists[0][0] = &ffi_type_sint32;
  for (int i = 0; i < 66; i++) {
    if (i) lists[i][0] = &levels[i - 1];
    levels[i] = (ffi_type){0, 0, FFI_TYPE_STRUCT, lists[i]};
  }
  ffi_type *deep64[1] = {&levels[63]}, *deep65[1] = {&levels[64]};
  OURS("64 nested structs",
       ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, deep64),
       FFI_OK);
  OURS("65 nested structs",
       ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, deep65),
       FFI_BAD_TYPEDEF);
#endif
}

int main(void) {
  bad_abi();
  bad_typedef();
  bad_argtype();
  struct_offsets();
  ours_only();
  return finish();
}
