/* Closure behaviour of our libffi.so.8 that the system libffi does not
   share (it crashes, corrupts its heap, or disagrees with gcc there), so
   this program is built against our library only:

   - W^X: no mapping is ever writable and executable, and a closure's
     writable and executable addresses are different views;
   - ffi_closure_free of NULL, of foreign pointers and a second free of
     the same closure are ignored (the slot is not handed out twice);
   - refusals: an ffi_cif not prepared by ffi_prep_cif, a raw closure in a
     record too small for an ffi_raw_closure, a closure carved out of the
     middle of one of our records, Java raw closures with
     struct, complex or long double arguments, sizes beyond the largest
     record;
   - a returned struct { long double } comes back where gcc expects it
     (x86-64: in st(0), where libffi 3.4.4 returns it in rax:rdx;
     AArch64: in q0, a one-member HFA);
   - a closure called before it was prepared, or after it was freed,
     aborts with a message instead of running anything.
   SPDX-License-Identifier: MIT OR Apache-2.0 */

#define _GNU_SOURCE
#include "closure_common.h"

#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

static void h_add(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)cif;
  *(ffi_sarg *)ret = *(int *)args[0] + (int)(intptr_t)ud;
}

static ffi_cif int_cif;
static ffi_type *int_arg[1] = {&ffi_type_sint32};

/* Permissions of the mapping holding `p` ("rw-p", "r-xp", ...), or "".
   Also counts mappings that are writable and executable. */
static const char *perms_of(const void *p, int *wx) {
  static char found[8];
  char line[512];
  FILE *f = fopen("/proc/self/maps", "r");
  if (f == NULL) DIE("/proc/self/maps");
  found[0] = 0;
  *wx = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long a, b;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) != 3) continue;
    if (perms[1] == 'w' && perms[2] == 'x') {
      ++*wx;
      printf("rwx mapping: %s", line);
    }
    if ((uintptr_t)p >= a && (uintptr_t)p < b) strcpy(found, perms);
  }
  fclose(f);
  return found;
}

static void t_wx(void) {
  static const size_t sizes[] = {8, 56, 64, 72, 200, 4096, 100000};
  void *keep[7], *code[7];
  int wx = 0;
  for (int i = 0; i < 7; i++) {
    keep[i] = ffi_closure_alloc(sizes[i], &code[i]);
    CHECK(keep[i] != NULL && code[i] != NULL && keep[i] != code[i],
          "alloc %zu", sizes[i]);
    CHECK(ffi_prep_closure_loc(keep[i], &int_cif, h_add, (void *)(intptr_t)i,
                               code[i]) == FFI_OK,
          "prep %zu", sizes[i]);
    CHECK(((int (*)(int))code[i])(10) == 10 + i, "call %zu", sizes[i]);
    /* The whole record is writable. */
    memset((char *)keep[i] + sizeof(ffi_closure), 0x77,
           sizes[i] > sizeof(ffi_closure) ? sizes[i] - sizeof(ffi_closure) : 0);
    CHECK(((int (*)(int))code[i])(10) == 10 + i, "call %zu after writes",
          sizes[i]);
    const char *w = perms_of(keep[i], &wx);
    CHECK(strncmp(w, "rw-", 3) == 0, "record of %zu is %s", sizes[i], w);
    const char *x = perms_of(code[i], &wx);
    CHECK(strncmp(x, "r-x", 3) == 0, "code of %zu is %s", sizes[i], x);
  }
  printf("wx           records rw-, code r-x, %d writable+executable mappings\n", wx);
  CHECK(wx == 0, "%d rwx mappings", wx);
  for (int i = 0; i < 7; i++) ffi_closure_free(keep[i]);
}

static void t_free_misuse(void) {
  int local;
  void *heap = malloc(64);
  ffi_closure_free(NULL);
  ffi_closure_free(&local);
  ffi_closure_free(heap);
  ffi_closure_free((char *)heap + 8);
  free(heap);

  for (size_t size = 56; size <= 300; size += 244) {
    void *code_a, *code_b, *code_c;
    void *a = ffi_closure_alloc(size, &code_a);
    /* Inside a record: not a record. */
    ffi_closure_free((char *)a + 8);
    ffi_closure_free(a);
    ffi_closure_free(a); /* a second free is ignored... */
    void *b = ffi_closure_alloc(size, &code_b);
    void *c = ffi_closure_alloc(size, &code_c);
    /* ...so the slot is handed out once, not twice. */
    CHECK(b != c && code_b != code_c, "size %zu: slot handed out twice", size);
    CHECK(ffi_prep_closure_loc(b, &int_cif, h_add, (void *)1, code_b) == FFI_OK &&
              ffi_prep_closure_loc(c, &int_cif, h_add, (void *)2, code_c) == FFI_OK,
          "prep");
    CHECK(((int (*)(int))code_b)(0) == 1 && ((int (*)(int))code_c)(0) == 2,
          "size %zu: calls", size);
    ffi_closure_free(b);
    ffi_closure_free(c);
  }
  printf("free         foreign, interior and repeated frees ignored\n");
}

typedef struct { int a; double b; } Pair;
static ffi_type *pair_el[] = {&ffi_type_sint32, &ffi_type_double, NULL};
static ffi_type pair_t = {0, 0, FFI_TYPE_STRUCT, pair_el};

static void h_raw(ffi_cif *cif, void *ret, ffi_raw *raw, void *ud) {
  (void)cif, (void)ud;
  *(ffi_sarg *)ret = raw[0].sint;
}

static void t_refusals(void) {
  void *code;
  ffi_closure *c = ffi_closure_alloc(sizeof *c, &code);

  /* A cif with a valid ABI that ffi_prep_cif never saw. */
  ffi_cif fake = int_cif;
  fake.flags = 0x12345;
  CHECK(ffi_prep_closure_loc(c, &fake, h_add, NULL, code) == FFI_BAD_ABI,
        "fake cif");
  CHECK(ffi_prep_closure_loc(c, NULL, h_add, NULL, code) == FFI_BAD_ABI,
        "null cif");
  CHECK(ffi_prep_closure_loc(NULL, &int_cif, h_add, NULL, code) == FFI_BAD_ABI,
        "null closure");
  /* A copy of a prepared cif is as good as the original. */
  ffi_cif copy = int_cif;
  CHECK(ffi_prep_closure_loc(c, &copy, h_add, (void *)5, code) == FFI_OK,
        "copied cif");
  CHECK(((int (*)(int))code)(1) == 6, "copied cif call");

  /* An ffi_raw_closure (72 bytes on x86-64; 64 on AArch64, where the
     closure starts 8 bytes into the record) does not fit in a standard
     64-byte record. */
  CHECK(ffi_prep_raw_closure_loc((ffi_raw_closure *)c, &int_cif, h_raw, NULL,
                                 code) == FFI_BAD_TYPEDEF,
        "raw closure in a small record");
  /* The refusal left the closure as it was. */
  CHECK(((int (*)(int))code)(1) == 6, "closure intact after refusal");
  ffi_closure_free(c);

  ffi_java_raw_closure *j = ffi_closure_alloc(sizeof *j, &code);
  ffi_type *bad[3] = {&pair_t, &ffi_type_complex_double, &ffi_type_longdouble};
  for (int i = 0; i < 3; i++) {
    ffi_cif cif;
    ffi_type *at[2] = {&ffi_type_sint32, bad[i]};
    prep(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint32, at);
    CHECK(ffi_prep_java_raw_closure_loc(j, &cif, h_raw, NULL, code) ==
              FFI_BAD_TYPEDEF,
          "java raw closure with argument kind %d", i);
    /* The plain raw API takes them. */
    CHECK(ffi_prep_raw_closure_loc((ffi_raw_closure *)j, &cif, h_raw, NULL,
                                   code) == FFI_OK,
          "raw closure with argument kind %d", i);
  }
  ffi_closure_free(j);

  /* A closure carved out of the middle of one of our records: libffi's
     views alias at every offset, ours do not (code + 64 is another
     slot's trampoline). */
  void *whole = ffi_closure_alloc(300, &code);
  CHECK(ffi_prep_closure_loc((ffi_closure *)((char *)whole + 64), &int_cif,
                             h_add, NULL, (char *)code + 64) == FFI_BAD_ABI,
        "closure inside a record");
  CHECK(ffi_prep_raw_closure_loc((ffi_raw_closure *)((char *)whole + 128),
                                 &int_cif, h_raw, NULL,
                                 (char *)code + 128) == FFI_BAD_ABI,
        "raw closure inside a record");
  ffi_closure_free(whole);

  CHECK(ffi_closure_alloc((size_t)1 << 40, &code) == NULL, "huge size");
  CHECK(ffi_closure_alloc(SIZE_MAX, &code) == NULL, "SIZE_MAX");
  CHECK(ffi_get_closure_size() == sizeof(ffi_closure), "closure size");
  printf("refusals     ok\n");
}

/* struct { long double }: class X87 on x86-64 (st(0)), an HFA of one
   quad on AArch64 (q0). */
typedef struct { long double v; } LD1;
static ffi_type *ld1_el[] = {&ffi_type_longdouble, NULL};
static ffi_type ld1_t = {0, 0, FFI_TYPE_STRUCT, ld1_el};

static void h_ld1(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)cif, (void)ud;
  LD1 r = {*(long double *)args[0] * 3};
  *(LD1 *)ret = r;
}

static void t_lone_long_double(void) {
  ffi_cif cif;
  ffi_type *at[1] = {&ffi_type_longdouble};
  ffi_closure *c;
  prep(&cif, FFI_DEFAULT_ABI, 1, &ld1_t, at);
  LD1 (*f)(long double) = (LD1(*)(long double))closure_for(&cif, h_ld1, NULL, &c);
  LD1 r = f(1.5L);
  printf("ld1          %.21Lg\n", r.v);
  CHECK(r.v == 4.5L, "struct { long double } return");
  ffi_closure_free(c);
}

/* Calls `code` in a child whose stderr is captured; the child must die
   of SIGABRT having printed `expect`. */
static void expect_abort(const char *what, void *code, const char *expect) {
  int fds[2];
  if (pipe(fds) != 0) DIE("pipe");
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) DIE("fork");
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    int r = ((int (*)(int))code)(1);
    printf("the %s closure returned %d\n", what, r);
    _exit(0);
  }
  close(fds[1]);
  char buf[1024];
  size_t n = 0;
  ssize_t got;
  while (n < sizeof buf - 1 && (got = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0)
    n += (size_t)got;
  buf[n] = 0;
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  int aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  printf("abort        %s closure: %s\n", what,
         aborted && strstr(buf, expect) ? "aborted with the message" : "WRONG");
  CHECK(aborted, "%s: status %d", what, status);
  CHECK(strstr(buf, expect) != NULL, "%s: stderr was: %s", what, buf);
}

static void t_aborts(void) {
  void *code;
  ffi_closure *c = ffi_closure_alloc(sizeof *c, &code);
  expect_abort("unprepared", code, "called before ffi_prep_closure_loc");
  CHECK(ffi_prep_closure_loc(c, &int_cif, h_add, NULL, code) == FFI_OK, "prep");
  ffi_closure_free(c);
  expect_abort("freed", code, "a freed closure was called");

  void *big_code;
  void *big = ffi_closure_alloc(1000, &big_code);
  CHECK(ffi_prep_closure_loc(big, &int_cif, h_add, NULL, big_code) == FFI_OK, "prep");
  ffi_closure_free(big);
  expect_abort("freed large", big_code, "a freed closure was called");
}

/* The handler gets the client's own cif pointer, and every slot is
   reusable for another signature. */
static void h_cif(ffi_cif *cif, void *ret, void **args, void *ud) {
  (void)args;
  *(ffi_sarg *)ret = cif == (ffi_cif *)ud;
}

static void t_reuse(void) {
  ffi_cif cifs[3];
  ffi_type *at[2] = {&ffi_type_double, &ffi_type_sint8};
  prep(&cifs[0], FFI_DEFAULT_ABI, 0, &ffi_type_sint32, NULL);
  prep(&cifs[1], FFI_DEFAULT_ABI, 2, &ffi_type_sint32, at);
#if defined(__x86_64__)
  prep(&cifs[2], FFI_WIN64, 2, &ffi_type_sint32, at);
#else
  ffi_type *at3[3] = {&ffi_type_float, &ffi_type_sint8, &ffi_type_double};
  prep(&cifs[2], FFI_DEFAULT_ABI, 3, &ffi_type_sint32, at3);
#endif
  int ok = 1;
  for (int round = 0; round < 300; round++) {
    void *code;
    ffi_closure *c = ffi_closure_alloc(sizeof *c, &code);
    ffi_cif *cif = &cifs[round % 3];
    ok &= ffi_prep_closure_loc(c, cif, h_cif, cif, code) == FFI_OK;
    switch (round % 3) {
    case 0: ok &= ((int (*)(void))code)() == 1; break;
    case 1: ok &= ((int (*)(double, int8_t))code)(1.0, 2) == 1; break;
    case 2:
#if defined(__x86_64__)
      ok &= ((int (__attribute__((ms_abi)) *)(double, int8_t))code)(1.0, 2) == 1;
#else
      ok &= ((int (*)(float, int8_t, double))code)(1.0f, 2, 3.0) == 1;
#endif
      break;
    }
    ffi_closure_free(c);
  }
  printf("reuse        %s\n", ok ? "ok" : "WRONG");
  CHECK(ok, "reuse");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  prep(&int_cif, FFI_DEFAULT_ABI, 1, &ffi_type_sint32, int_arg);
  t_wx();
  t_free_misuse();
  t_refusals();
  t_lone_long_double();
  t_aborts();
  t_reuse();
  return finish();
}
