/* Interface of the C oracles (oracles.c), mirrored in oracle/src/oracles.rs. */
#ifndef JITFFI_ORACLES_H
#define JITFFI_ORACLES_H

#include <stddef.h>
#include <stdint.h>

/* Most arguments one record holds, and bytes per recorded argument. */
#define ORACLE_MAX_ARGS 24
#define ORACLE_SLOT 128

/* One oracle call shape: the function and a caller compiled by gcc that
 * calls it with the arguments at avalue and stores the result at rvalue
 * (narrow integers widened to 8 bytes; rvalue may be NULL). `call` is the
 * same caller for any function of the shape at `fn` (for variadic shapes,
 * called as a variadic function after its first parameter). */
struct oracle_case {
    const char *name;
    void *fn;
    void (*direct)(void *rvalue, void **avalue);
    void (*call)(void *fn, void *rvalue, void **avalue);
};

extern const struct oracle_case oracle_cases[];
extern const size_t oracle_case_count;

/* The record is per thread. reset poisons it; an oracle call fills it. */
void oracle_reset(void);
/* Arguments recorded by the last call; -1 after reset, -2/-3 if an oracle
 * received an argument count or format it could not record. */
int oracle_arg_count(void);
/* Oracle calls since the last reset. */
uint64_t oracle_call_count(void);
/* Recorded bytes of argument i (padding zeroed), its size in *size. */
const unsigned char *oracle_arg_bytes(int i, size_t *size);

#endif
