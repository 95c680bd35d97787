/* jitffi_capture_packed(stub, fn, rvalue, args, regs, x87_count)
 *
 * Calls a packed-form stub, stub(fn, rvalue, args), and saves every register
 * a value could come back in, so a test can rebuild the return value from
 * the plan without knowing its type:
 *   regs+0   gpr[16], indexed by hardware number (caller-saved ones only:
 *            rax rcx rdx rsi rdi r8-r11; the others read as 0)
 *   regs+128 xmm0..xmm7, all 16 bytes each
 *   regs+256 st0, regs+272 st1 (10 bytes each), popped only if x87_count
 *            says they were pushed, so the x87 stack stays balanced. */
    .intel_syntax noprefix
    .text
    .globl jitffi_capture_packed
    .type jitffi_capture_packed, @function
jitffi_capture_packed:
    push rbp
    mov rbp, rsp
    push rbx
    push r12
    mov rbx, r8
    mov r12d, r9d
    mov rax, rdi
    mov rdi, rsi
    mov rsi, rdx
    mov rdx, rcx
    call rax
    mov [rbx + 0], rax
    mov [rbx + 8], rcx
    mov [rbx + 16], rdx
    mov [rbx + 48], rsi
    mov [rbx + 56], rdi
    mov [rbx + 64], r8
    mov [rbx + 72], r9
    mov [rbx + 80], r10
    mov [rbx + 88], r11
    movups [rbx + 128], xmm0
    movups [rbx + 144], xmm1
    movups [rbx + 160], xmm2
    movups [rbx + 176], xmm3
    movups [rbx + 192], xmm4
    movups [rbx + 208], xmm5
    movups [rbx + 224], xmm6
    movups [rbx + 240], xmm7
    test r12d, r12d
    jz 1f
    fstp TBYTE PTR [rbx + 256]
    cmp r12d, 1
    je 1f
    fstp TBYTE PTR [rbx + 272]
1:
    pop r12
    pop rbx
    pop rbp
    ret
    .size jitffi_capture_packed, .-jitffi_capture_packed
    .section .note.GNU-stack,"",@progbits
