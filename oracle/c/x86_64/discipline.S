/*
 * Register and stack discipline probes for jitffi's call stubs.
 *
 * Everything a probe observes goes into one thread-local block (layout in
 * oracle/src/discipline.rs, `ProbeState`), so tests may run in parallel.
 *
 *   jitffi_probe_align     records (rsp at entry + 8) mod 16; returns rdi
 *   jitffi_probe_regs      records rdi..r9, rax, xmm0-7, 16 stack slots
 *   jitffi_call_checked    calls a stub with sentinels in every callee-saved
 *                          register; returns a mask of what was not kept
 *   jitffi_clobber_*       callees that trash every caller-saved register,
 *                          their stack arguments and the red zone
 */
        .intel_syntax noprefix

/* ProbeState offsets */
#define ST_ALIGN        0
#define ST_ALIGN_CALLS  8
#define ST_SAVED_RSP    16
#define ST_GPR          24      /* rdi rsi rdx rcx r8 r9 rax */
#define ST_REGS_CALLS   80
#define ST_X87SW        88      /* status word before, after */
#define ST_XMM          96      /* xmm0-7, 16 bytes each */
#define ST_STACK        224     /* 16 slots from rsp+8 */
#define ST_CLOB_CALLS   352
#define ST_CLOB_ARGS    360     /* 10 slots */
#define ST_MXCSR        440     /* before, after */
#define ST_FPUCW        448     /* before, after */
#define ST_SIZE         512

/* Sentinels for the callee-saved registers, and the canary above the
 * stub's return address. */
#define SENT_RBX        0x5eb0b1b2b3b4b5b6
#define SENT_RBP        0x5eb1c1c2c3c4c5c6
#define SENT_R12        0x5eb2d1d2d3d4d5d6
#define SENT_R13        0x5eb3e1e2e3e4e5e6
#define SENT_R14        0x5eb4f1f2f3f4f5f6
#define SENT_R15        0x5eb5a1a2a3a4a5a6
#define CANARY          0xca9a7c0ffee0ca9a
#define JUNK            0xbad0bad1bad2bad3

        .section .tbss,"awT",@nobits
        .p2align 4
jitffi_probe_tls:
        .zero ST_SIZE

        .text

/* r11 = address of this thread's ProbeState (initial-exec TLS). */
.macro STATE reg=r11
        mov \reg, QWORD PTR fs:0
        add \reg, QWORD PTR jitffi_probe_tls@gottpoff[rip]
.endm

.macro FUNC name
        .globl \name
        .type \name, @function
        .p2align 4
\name:
.endm

.macro ENDF name
        .size \name, . - \name
.endm

/* Overwrites the 128-byte red zone and `n` stack argument slots. */
.macro TRASH_STACK n
        movabs r10, JUNK
        .irp off, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128
        mov QWORD PTR [rsp - \off], r10
        .endr
        .if \n
        .irp k, 1, 2, 3, 4, 5, 6, 7, 8
        .if \k <= \n
        mov QWORD PTR [rsp + 8 * \k], r10
        .endif
        .endr
        .endif
.endm

/* Trashes rcx, rdx, rsi, rdi, r8-r11 and xmm1-15. */
.macro TRASH_GPRS_XMM1
        movabs rcx, JUNK
        mov rdx, rcx
        mov rsi, rcx
        mov rdi, rcx
        mov r8, rcx
        mov r9, rcx
        mov r10, rcx
        mov r11, rcx
        .irp x, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
        pcmpeqd xmm\x, xmm\x
        .endr
.endm

FUNC jitffi_probe_state
        STATE rax
        ret
ENDF jitffi_probe_state

FUNC jitffi_probe_align
        STATE
        lea r10, [rsp + 8]
        and r10, 15
        mov QWORD PTR [r11 + ST_ALIGN], r10
        inc QWORD PTR [r11 + ST_ALIGN_CALLS]
        mov rax, rdi            /* an sret callee returns the pointer */
        ret
ENDF jitffi_probe_align

FUNC jitffi_probe_regs
        STATE
        mov QWORD PTR [r11 + ST_GPR + 0], rdi
        mov QWORD PTR [r11 + ST_GPR + 8], rsi
        mov QWORD PTR [r11 + ST_GPR + 16], rdx
        mov QWORD PTR [r11 + ST_GPR + 24], rcx
        mov QWORD PTR [r11 + ST_GPR + 32], r8
        mov QWORD PTR [r11 + ST_GPR + 40], r9
        mov QWORD PTR [r11 + ST_GPR + 48], rax
        inc QWORD PTR [r11 + ST_REGS_CALLS]
        .irp x, 0, 1, 2, 3, 4, 5, 6, 7
        movdqu XMMWORD PTR [r11 + ST_XMM + 16 * \x], xmm\x
        .endr
        .irp k, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
        mov rax, QWORD PTR [rsp + 8 + 8 * \k]
        mov QWORD PTR [r11 + ST_STACK + 8 * \k], rax
        .endr
        lea r10, [rsp + 8]
        and r10, 15
        mov QWORD PTR [r11 + ST_ALIGN], r10
        inc QWORD PTR [r11 + ST_ALIGN_CALLS]
        mov rax, rdi
        ret
ENDF jitffi_probe_regs

/*
 * uint32_t jitffi_call_checked(stub, fn, rvalue, avalue)
 * Calls stub(fn, rvalue, avalue) and returns a mask of broken promises:
 * bits 0-5 rbx, rbp, r12, r13, r14, r15 changed; 6 rsp changed; 7 x87
 * stack depth changed; 8 MXCSR control bits changed; 9 x87 control word
 * changed; 10 the stub wrote above its return address.
 */
FUNC jitffi_call_checked
        push rbp
        mov rbp, rsp
        push rbx
        push r12
        push r13
        push r14
        push r15
        sub rsp, 8              /* 16-aligned at the call */
        movabs rax, CANARY
        mov QWORD PTR [rsp], rax
        mov rax, rdi
        mov rdi, rsi
        mov rsi, rdx
        mov rdx, rcx
        STATE
        mov QWORD PTR [r11 + ST_SAVED_RSP], rsp
        fnstsw WORD PTR [r11 + ST_X87SW]
        stmxcsr DWORD PTR [r11 + ST_MXCSR]
        fnstcw WORD PTR [r11 + ST_FPUCW]
        movabs rbx, SENT_RBX
        movabs rbp, SENT_RBP
        movabs r12, SENT_R12
        movabs r13, SENT_R13
        movabs r14, SENT_R14
        movabs r15, SENT_R15
        call rax
        xor ecx, ecx
.macro CHECK reg, sentinel, bit
        movabs rax, \sentinel
        cmp \reg, rax
        setne dl
        movzx edx, dl
        shl edx, \bit
        or ecx, edx
.endm
        CHECK rbx, SENT_RBX, 0
        CHECK rbp, SENT_RBP, 1
        CHECK r12, SENT_R12, 2
        CHECK r13, SENT_R13, 3
        CHECK r14, SENT_R14, 4
        CHECK r15, SENT_R15, 5
        STATE
        cmp rsp, QWORD PTR [r11 + ST_SAVED_RSP]
        setne dl
        movzx edx, dl
        shl edx, 6
        or ecx, edx
        fnstsw WORD PTR [r11 + ST_X87SW + 2]
        movzx eax, WORD PTR [r11 + ST_X87SW]
        movzx edx, WORD PTR [r11 + ST_X87SW + 2]
        xor eax, edx
        test eax, 0x3800        /* TOP */
        setnz dl
        movzx edx, dl
        shl edx, 7
        or ecx, edx
        stmxcsr DWORD PTR [r11 + ST_MXCSR + 4]
        mov eax, DWORD PTR [r11 + ST_MXCSR]
        xor eax, DWORD PTR [r11 + ST_MXCSR + 4]
        test eax, 0xffc0        /* control bits; 0-5 are sticky flags */
        setnz dl
        movzx edx, dl
        shl edx, 8
        or ecx, edx
        fnstcw WORD PTR [r11 + ST_FPUCW + 2]
        movzx eax, WORD PTR [r11 + ST_FPUCW]
        movzx edx, WORD PTR [r11 + ST_FPUCW + 2]
        cmp eax, edx
        setne dl
        movzx edx, dl
        shl edx, 9
        or ecx, edx
        mov rsp, QWORD PTR [r11 + ST_SAVED_RSP]
        movabs rax, CANARY
        cmp QWORD PTR [rsp], rax
        setne dl
        movzx edx, dl
        shl edx, 10
        or ecx, edx
        mov eax, ecx
        add rsp, 8
        pop r15
        pop r14
        pop r13
        pop r12
        pop rbx
        pop rbp
        ret
ENDF jitffi_call_checked

/*
 * int64_t jitffi_clobber_callee(int64_t a0, ..., int64_t a7)
 * Returns r = a0; r = rol(r, 7) ^ a_k for k = 1..7; r ^= 0x0f1e2d3c4b5a6978.
 */
FUNC jitffi_clobber_callee
        STATE
        inc QWORD PTR [r11 + ST_CLOB_CALLS]
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 0], rdi
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 8], rsi
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 16], rdx
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 24], rcx
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 32], r8
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 40], r9
        mov rax, QWORD PTR [rsp + 8]
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 48], rax
        mov rax, QWORD PTR [rsp + 16]
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 56], rax
        mov rax, rdi
        .irp r, rsi, rdx, rcx, r8, r9
        rol rax, 7
        xor rax, \r
        .endr
        rol rax, 7
        xor rax, QWORD PTR [rsp + 8]
        rol rax, 7
        xor rax, QWORD PTR [rsp + 16]
        movabs r10, 0x0f1e2d3c4b5a6978
        xor rax, r10
        TRASH_STACK 2
        TRASH_GPRS_XMM1
        pcmpeqd xmm0, xmm0
        ret
ENDF jitffi_clobber_callee

/*
 * struct { int64_t q[4]; } jitffi_clobber_sret(int64_t a0, ..., int64_t a7)
 * Returns {a0 ^ a5, a1 ^ a6, a2 ^ a7, a3 + a4} through the hidden pointer.
 */
FUNC jitffi_clobber_sret
        STATE
        inc QWORD PTR [r11 + ST_CLOB_CALLS]
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 0], rsi
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 8], rdx
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 16], rcx
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 24], r8
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 32], r9
        mov rax, QWORD PTR [rsp + 8]
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 40], rax
        mov rax, QWORD PTR [rsp + 16]
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 48], rax
        mov rax, QWORD PTR [rsp + 24]
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 56], rax
        mov rax, rsi
        xor rax, QWORD PTR [rsp + 8]
        mov QWORD PTR [rdi], rax
        mov rax, rdx
        xor rax, QWORD PTR [rsp + 16]
        mov QWORD PTR [rdi + 8], rax
        mov rax, rcx
        xor rax, QWORD PTR [rsp + 24]
        mov QWORD PTR [rdi + 16], rax
        lea rax, [r8 + r9]
        mov QWORD PTR [rdi + 24], rax
        mov rax, rdi
        TRASH_STACK 3
        TRASH_GPRS_XMM1
        pcmpeqd xmm0, xmm0
        ret
ENDF jitffi_clobber_sret

/*
 * double jitffi_clobber_f64(double x0, ..., double x9)
 * Returns ((x0 + x1) + x2) + ... + x9.
 */
FUNC jitffi_clobber_f64
        STATE
        inc QWORD PTR [r11 + ST_CLOB_CALLS]
        .irp x, 0, 1, 2, 3, 4, 5, 6, 7
        movsd QWORD PTR [r11 + ST_CLOB_ARGS + 8 * \x], xmm\x
        .endr
        mov rax, QWORD PTR [rsp + 8]
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 64], rax
        mov rax, QWORD PTR [rsp + 16]
        mov QWORD PTR [r11 + ST_CLOB_ARGS + 72], rax
        .irp x, 1, 2, 3, 4, 5, 6, 7
        addsd xmm0, xmm\x
        .endr
        addsd xmm0, QWORD PTR [rsp + 8]
        addsd xmm0, QWORD PTR [rsp + 16]
        TRASH_STACK 2
        TRASH_GPRS_XMM1
        mov rax, rcx
        ret
ENDF jitffi_clobber_f64

        .section .note.GNU-stack,"",@progbits
