/*
 * Register and stack discipline probes for jitffi's call stubs, AArch64.
 *
 * Everything a probe observes goes into one thread-local block (layout in
 * oracle/src/discipline.rs, `ProbeState` for aarch64), so tests may run in
 * parallel. The probes use only x16/x17 (and x9-x12 once their inputs are
 * saved), which no argument travels in.
 *
 *   jitffi_probe_align     records sp mod 16 at entry; returns x0 unchanged
 *   jitffi_probe_regs      records x0-x8, q0-q7, 16 stack slots from sp
 *   jitffi_call_checked    calls a stub with sentinels in x19-x29 and
 *                          d8-d15; returns a mask of what was not kept
 *   jitffi_clobber_*       callees that trash every register a callee may,
 *                          their stack arguments and 128 bytes below sp
 */

/* ProbeState offsets */
#define ST_ALIGN        0
#define ST_ALIGN_CALLS  8
#define ST_SAVED_SP     16
#define ST_GPR          24      /* x0-x8 */
#define ST_REGS_CALLS   96
#define ST_FPCR         104     /* before, after (32 bits each) */
#define ST_VEC          112     /* q0-q7, 16 bytes each */
#define ST_STACK        240     /* 16 slots from sp */
#define ST_CLOB_CALLS   368
#define ST_CLOB_ARGS    376     /* 12 slots */
#define ST_SIZE         512

/* Sentinels for the callee-saved registers, and the canary above the
 * stub's entry sp. */
        .equ SENT_X19, 0x5e19b1b2b3b4b5b6
        .equ SENT_X20, 0x5e20c1c2c3c4c5c6
        .equ SENT_X21, 0x5e21d1d2d3d4d5d6
        .equ SENT_X22, 0x5e22e1e2e3e4e5e6
        .equ SENT_X23, 0x5e23f1f2f3f4f5f6
        .equ SENT_X24, 0x5e24a1a2a3a4a5a6
        .equ SENT_X25, 0x5e2591929394959b
        .equ SENT_X26, 0x5e2681828384858b
        .equ SENT_X27, 0x5e2771727374757b
        .equ SENT_X28, 0x5e2861626364656b
        .equ SENT_X29, 0x5e2951525354555b
        .equ SENT_D8, 0x4008a1a2a3a4a5a6
        .equ SENT_D9, 0x4009b1b2b3b4b5b6
        .equ SENT_D10, 0x4010c1c2c3c4c5c6
        .equ SENT_D11, 0x4011d1d2d3d4d5d6
        .equ SENT_D12, 0xc012e1e2e3e4e5e6
        .equ SENT_D13, 0xc013f1f2f3f4f5f6
        .equ SENT_D14, 0x401491929394959b
        .equ SENT_D15, 0xc01581828384858b
        .equ CANARY, 0xca9a7c0ffee0ca9a
        .equ JUNK, 0xbad0bad1bad2bad3

        .section .tbss,"awT",%nobits
        .p2align 4
jitffi_probe_tls:
        .zero ST_SIZE

        .text

/* \reg = address of this thread's ProbeState (initial-exec TLS). */
.macro STATE reg, tmp
        mrs \reg, tpidr_el0
        adrp \tmp, :gottprel:jitffi_probe_tls
        ldr \tmp, [\tmp, #:gottprel_lo12:jitffi_probe_tls]
        add \reg, \reg, \tmp
.endm

.macro FUNC name
        .globl \name
        .type \name, %function
        .p2align 4
\name:
.endm

.macro ENDF name
        .ltorg
        .size \name, . - \name
.endm

.macro BUMP off
        ldr x17, [x16, #\off]
        add x17, x17, #1
        str x17, [x16, #\off]
.endm

/* Overwrites the 128 bytes below sp and `n` stack argument slots. */
.macro TRASH_STACK n
        ldr x9, =JUNK
        .irp off, 16, 32, 48, 64, 80, 96, 112, 128
        stp x9, x9, [sp, #-\off]
        .endr
        .irp k, 0, 1, 2, 3, 4, 5, 6, 7
        .if \k < \n
        str x9, [sp, #8 * \k]
        .endif
        .endr
.endm

/* Trashes x1-x18 (x9 holds JUNK). */
.macro TRASH_GPRS_X1
        ldr x9, =JUNK
        .irp r, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18
        mov x\r, x9
        .endr
.endm

/* One vector register: whole, or (below \first) its upper half only. */
.macro TV n, first
        .if \n < \first
        mov v\n\().d[1], x9
        .else
        dup v\n\().2d, x9
        .endif
.endm

/* Trashes v\first..v7 and v16-v31 whole, the upper halves of v8-v15 (only
 * their low 64 bits are callee-saved) and of v0..v(\first - 1). */
.macro TRASH_VEC first
        ldr x9, =JUNK
        TV 0, \first
        TV 1, \first
        TV 2, \first
        TV 3, \first
        TV 4, \first
        TV 5, \first
        TV 6, \first
        TV 7, \first
        TV 8, 16
        TV 9, 16
        TV 10, 16
        TV 11, 16
        TV 12, 16
        TV 13, 16
        TV 14, 16
        TV 15, 16
        TV 16, 0
        TV 17, 0
        TV 18, 0
        TV 19, 0
        TV 20, 0
        TV 21, 0
        TV 22, 0
        TV 23, 0
        TV 24, 0
        TV 25, 0
        TV 26, 0
        TV 27, 0
        TV 28, 0
        TV 29, 0
        TV 30, 0
        TV 31, 0
.endm

FUNC jitffi_probe_state
        STATE x0, x17
        ret
ENDF jitffi_probe_state

FUNC jitffi_probe_align
        STATE x16, x17
        mov x17, sp
        and x17, x17, #15
        str x17, [x16, #ST_ALIGN]
        BUMP ST_ALIGN_CALLS
        ret
ENDF jitffi_probe_align

FUNC jitffi_probe_regs
        STATE x16, x17
        stp x0, x1, [x16, #ST_GPR + 0]
        stp x2, x3, [x16, #ST_GPR + 16]
        stp x4, x5, [x16, #ST_GPR + 32]
        stp x6, x7, [x16, #ST_GPR + 48]
        str x8, [x16, #ST_GPR + 64]
        BUMP ST_REGS_CALLS
        stp q0, q1, [x16, #ST_VEC + 0]
        stp q2, q3, [x16, #ST_VEC + 32]
        stp q4, q5, [x16, #ST_VEC + 64]
        stp q6, q7, [x16, #ST_VEC + 96]
        .irp k, 0, 2, 4, 6, 8, 10, 12, 14
        ldp x9, x10, [sp, #8 * \k]
        stp x9, x10, [x16, #ST_STACK + 8 * \k]
        .endr
        mov x17, sp
        and x17, x17, #15
        str x17, [x16, #ST_ALIGN]
        BUMP ST_ALIGN_CALLS
        ret
ENDF jitffi_probe_regs

/*
 * uint32_t jitffi_call_checked(stub, fn, rvalue, avalue)
 * Calls stub(fn, rvalue, avalue) and returns a mask of broken promises:
 * bits 0-9 x19-x28 changed; 10 x29; 11 sp changed; 12-19 the low 64 bits
 * of v8-v15 changed; 20 FPCR changed; 21 the stub wrote above its entry sp.
 *
 * Frame: [sp, sp+16) canary (the stub is entered with sp here), [16, 32)
 * x29/x30, [32, 112) x19-x28, [112, 176) d8-d15.
 */
FUNC jitffi_call_checked
        sub sp, sp, #192
        stp x29, x30, [sp, #16]
        add x29, sp, #16
        stp x19, x20, [sp, #32]
        stp x21, x22, [sp, #48]
        stp x23, x24, [sp, #64]
        stp x25, x26, [sp, #80]
        stp x27, x28, [sp, #96]
        stp d8, d9, [sp, #112]
        stp d10, d11, [sp, #128]
        stp d12, d13, [sp, #144]
        stp d14, d15, [sp, #160]
        ldr x9, =CANARY
        stp x9, x9, [sp]
        STATE x16, x17
        mov x9, sp
        str x9, [x16, #ST_SAVED_SP]
        mrs x9, fpcr
        str w9, [x16, #ST_FPCR]
        mov x9, x0
        mov x0, x1
        mov x1, x2
        mov x2, x3
        ldr x19, =SENT_X19
        ldr x20, =SENT_X20
        ldr x21, =SENT_X21
        ldr x22, =SENT_X22
        ldr x23, =SENT_X23
        ldr x24, =SENT_X24
        ldr x25, =SENT_X25
        ldr x26, =SENT_X26
        ldr x27, =SENT_X27
        ldr x28, =SENT_X28
        ldr x29, =SENT_X29
        .irp d, 8, 9, 10, 11, 12, 13, 14, 15
        ldr x10, =SENT_D\d
        fmov d\d, x10
        .endr
        blr x9
        mov w11, #0
.macro CHECK reg, sentinel, bit
        ldr x9, =\sentinel
        cmp \reg, x9
        cset w10, ne
        orr w11, w11, w10, lsl #\bit
.endm
        CHECK x19, SENT_X19, 0
        CHECK x20, SENT_X20, 1
        CHECK x21, SENT_X21, 2
        CHECK x22, SENT_X22, 3
        CHECK x23, SENT_X23, 4
        CHECK x24, SENT_X24, 5
        CHECK x25, SENT_X25, 6
        CHECK x26, SENT_X26, 7
        CHECK x27, SENT_X27, 8
        CHECK x28, SENT_X28, 9
        CHECK x29, SENT_X29, 10
        .irp d, 8, 9, 10, 11, 12, 13, 14, 15
        fmov x12, d\d
        CHECK x12, SENT_D\d, (\d + 4)
        .endr
        STATE x16, x17
        mov x9, sp
        ldr x10, [x16, #ST_SAVED_SP]
        cmp x9, x10
        cset w12, ne
        orr w11, w11, w12, lsl #11
        mrs x9, fpcr
        str w9, [x16, #ST_FPCR + 4]
        ldr w12, [x16, #ST_FPCR]
        cmp w9, w12
        cset w12, ne
        orr w11, w11, w12, lsl #20
        mov sp, x10
        ldp x9, x10, [sp]
        ldr x12, =CANARY
        cmp x9, x12
        ccmp x10, x12, #0, eq
        cset w12, ne
        orr w11, w11, w12, lsl #21
        mov w0, w11
        ldp x19, x20, [sp, #32]
        ldp x21, x22, [sp, #48]
        ldp x23, x24, [sp, #64]
        ldp x25, x26, [sp, #80]
        ldp x27, x28, [sp, #96]
        ldp d8, d9, [sp, #112]
        ldp d10, d11, [sp, #128]
        ldp d12, d13, [sp, #144]
        ldp d14, d15, [sp, #160]
        ldp x29, x30, [sp, #16]
        add sp, sp, #192
        ret
ENDF jitffi_call_checked

/*
 * int64_t jitffi_clobber_callee(int64_t a0, ..., int64_t a9)
 * Returns r = a0; r = rol(r, 7) ^ a_k for k = 1..9; r ^= 0x0f1e2d3c4b5a6978.
 */
FUNC jitffi_clobber_callee
        STATE x16, x17
        BUMP ST_CLOB_CALLS
        stp x0, x1, [x16, #ST_CLOB_ARGS + 0]
        stp x2, x3, [x16, #ST_CLOB_ARGS + 16]
        stp x4, x5, [x16, #ST_CLOB_ARGS + 32]
        stp x6, x7, [x16, #ST_CLOB_ARGS + 48]
        ldp x9, x10, [sp]
        stp x9, x10, [x16, #ST_CLOB_ARGS + 64]
        .irp r, 1, 2, 3, 4, 5, 6, 7, 9, 10
        ror x0, x0, #57
        eor x0, x0, x\r
        .endr
        ldr x9, =0x0f1e2d3c4b5a6978
        eor x0, x0, x9
        TRASH_STACK 2
        TRASH_GPRS_X1
        TRASH_VEC 0
        ret
ENDF jitffi_clobber_callee

/*
 * struct { int64_t q[4]; } jitffi_clobber_sret(int64_t a0, ..., int64_t a9)
 * Returns {a0 ^ a5, a1 ^ a6, a2 ^ a7, a3 + a4 + a8 + a9} through x8.
 */
FUNC jitffi_clobber_sret
        STATE x16, x17
        BUMP ST_CLOB_CALLS
        stp x0, x1, [x16, #ST_CLOB_ARGS + 0]
        stp x2, x3, [x16, #ST_CLOB_ARGS + 16]
        stp x4, x5, [x16, #ST_CLOB_ARGS + 32]
        stp x6, x7, [x16, #ST_CLOB_ARGS + 48]
        ldp x9, x10, [sp]
        stp x9, x10, [x16, #ST_CLOB_ARGS + 64]
        eor x11, x0, x5
        eor x12, x1, x6
        stp x11, x12, [x8]
        eor x11, x2, x7
        add x12, x3, x4
        add x12, x12, x9
        add x12, x12, x10
        stp x11, x12, [x8, #16]
        TRASH_STACK 2
        TRASH_GPRS_X1
        mov x0, x9
        TRASH_VEC 0
        ret
ENDF jitffi_clobber_sret

/*
 * double jitffi_clobber_f64(double x0, ..., double x9)
 * Returns ((x0 + x1) + x2) + ... + x9.
 */
FUNC jitffi_clobber_f64
        STATE x16, x17
        BUMP ST_CLOB_CALLS
        stp d0, d1, [x16, #ST_CLOB_ARGS + 0]
        stp d2, d3, [x16, #ST_CLOB_ARGS + 16]
        stp d4, d5, [x16, #ST_CLOB_ARGS + 32]
        stp d6, d7, [x16, #ST_CLOB_ARGS + 48]
        ldp x9, x10, [sp]
        stp x9, x10, [x16, #ST_CLOB_ARGS + 64]
        .irp v, 1, 2, 3, 4, 5, 6, 7
        fadd d0, d0, d\v
        .endr
        ldp d16, d17, [sp]
        fadd d0, d0, d16
        fadd d0, d0, d17
        TRASH_STACK 2
        TRASH_GPRS_X1
        mov x0, x9
        TRASH_VEC 1
        ret
ENDF jitffi_clobber_f64

/*
 * struct { double v[4]; } jitffi_clobber_hfa(double x0, ..., double x9)
 * Returns {(x0 + x4) + x8, (x1 + x5) + x9, x2 + x6, x3 + x7} in d0-d3.
 */
FUNC jitffi_clobber_hfa
        STATE x16, x17
        BUMP ST_CLOB_CALLS
        stp d0, d1, [x16, #ST_CLOB_ARGS + 0]
        stp d2, d3, [x16, #ST_CLOB_ARGS + 16]
        stp d4, d5, [x16, #ST_CLOB_ARGS + 32]
        stp d6, d7, [x16, #ST_CLOB_ARGS + 48]
        ldp x9, x10, [sp]
        stp x9, x10, [x16, #ST_CLOB_ARGS + 64]
        ldp d16, d17, [sp]
        fadd d0, d0, d4
        fadd d0, d0, d16
        fadd d1, d1, d5
        fadd d1, d1, d17
        fadd d2, d2, d6
        fadd d3, d3, d7
        TRASH_STACK 2
        TRASH_GPRS_X1
        mov x0, x9
        TRASH_VEC 4
        ret
ENDF jitffi_clobber_hfa

        .section .note.GNU-stack,"",%progbits
