//! Static chains (libffi's `ffi_call_go` and Go closures) against gcc.
//!
//! Outgoing: `Compiled::chain_entry` stubs call assembly callees that fold
//! the chain register (`r10` on x86-64, `x18` on AArch64) into their
//! result; gcc's own `__builtin_call_with_static_chain` calls of the same
//! callees (`oracle/c/static_chain.c`) give the expected values. Incoming:
//! gcc callers enter a Go closure record's code with the record as their
//! static chain; the shape's `go_closure_thunk` must hand the record's
//! handler the record's cif, the arguments, and the record itself as user
//! data. The callees are in `oracle/c/x86_64/static_chain_x86.c` (x86-64,
//! with the Microsoft x64 cases) and below (AArch64).
#![cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), unix))]

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;

use jitffi::emit::go_record;
use jitffi::{cache, Abi, Type};
use jitffi_oracle as _;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Big {
    a: i64,
    b: i64,
    c: i64,
    d: i64,
}

/// libffi's `ffi_go_closure`, followed by what the handler checks.
#[repr(C)]
struct GoClosure {
    tramp: *const u8,
    cif: *const c_void,
    fun: unsafe extern "C" fn(*const c_void, *mut c_void, *const *mut c_void, *mut c_void),
    /// Added to every result, so each test's closure answers differently.
    bias: i64,
}

// The callees (declared without their types: only called through stubs
// and through gcc's callers):
//   int64_t plus(int64_t a, int64_t b)         chain + 3a + b
//   void store(int64_t *out, int64_t a)        *out = chain + a
//   int64_t stack(int64_t a0, ..., int64_t a7) chain + a0 + 5a6 + 7a7
//   struct sc_big big(int64_t a)               {chain, a, chain ^ a, 7}
//   double dbl(double x, int64_t n)            x * n + chain
extern "C" {
    #[cfg_attr(target_arch = "aarch64", link_name = "sc_a64_chain_plus")]
    fn sc_chain_plus();
    #[cfg_attr(target_arch = "aarch64", link_name = "sc_a64_chain_store")]
    fn sc_chain_store();
    #[cfg_attr(target_arch = "aarch64", link_name = "sc_a64_chain_stack")]
    fn sc_chain_stack();
    #[cfg_attr(target_arch = "aarch64", link_name = "sc_a64_chain_big")]
    fn sc_chain_big();
    #[cfg_attr(target_arch = "aarch64", link_name = "sc_a64_chain_double")]
    fn sc_chain_double();
    fn sc_direct_plus(f: unsafe extern "C" fn(), chain: *const c_void, a: i64, b: i64) -> i64;
    fn sc_direct_stack(f: unsafe extern "C" fn(), chain: *const c_void, base: i64) -> i64;
    fn sc_call_go_plus(c: *mut GoClosure, a: i64, b: i64) -> i64;
    fn sc_call_go_stack(c: *mut GoClosure, base: i64) -> i64;
    fn sc_call_go_big(c: *mut GoClosure, a: i64, out: *mut Big);
    fn sc_call_go_double(c: *mut GoClosure, x: f64, n: i64) -> f64;
}

#[cfg(target_arch = "x86_64")]
extern "C" {
    fn sc_chain_ms();
    fn sc_direct_ms(chain: *const c_void) -> i64;
    fn sc_call_go_ms(c: *mut GoClosure) -> i64;
}

// The AArch64 callees: the chain arrives in x18, gcc's static chain
// register; an indirect result (big) goes to the address in x8.
#[cfg(target_arch = "aarch64")]
std::arch::global_asm!(
    ".text",
    ".p2align 2",
    ".globl sc_a64_chain_plus",
    ".type sc_a64_chain_plus, %function",
    "sc_a64_chain_plus:",
    "add x9, x0, x0, lsl #1",
    "add x9, x9, x1",
    "add x0, x9, x18",
    "ret",
    ".size sc_a64_chain_plus, . - sc_a64_chain_plus",
    ".globl sc_a64_chain_store",
    ".type sc_a64_chain_store, %function",
    "sc_a64_chain_store:",
    "add x9, x18, x1",
    "str x9, [x0]",
    "ret",
    ".size sc_a64_chain_store, . - sc_a64_chain_store",
    ".globl sc_a64_chain_stack",
    ".type sc_a64_chain_stack, %function",
    "sc_a64_chain_stack:",
    "mov x10, #5",
    "mul x9, x6, x10",
    "mov x10, #7",
    "madd x9, x7, x10, x9",
    "add x9, x9, x0",
    "add x0, x9, x18",
    "ret",
    ".size sc_a64_chain_stack, . - sc_a64_chain_stack",
    ".globl sc_a64_chain_big",
    ".type sc_a64_chain_big, %function",
    "sc_a64_chain_big:",
    "eor x9, x18, x0",
    "mov x10, #7",
    "stp x18, x0, [x8]",
    "stp x9, x10, [x8, #16]",
    "ret",
    ".size sc_a64_chain_big, . - sc_a64_chain_big",
    ".globl sc_a64_chain_double",
    ".type sc_a64_chain_double, %function",
    "sc_a64_chain_double:",
    "scvtf d1, x0",
    "fmul d0, d0, d1",
    "scvtf d1, x18",
    "fadd d0, d0, d1",
    "ret",
    ".size sc_a64_chain_double, . - sc_a64_chain_double",
);

/// The host's C convention.
const HOST: Abi = Abi::host();

fn i64s(n: usize) -> Vec<Type> {
    vec![Type::i64(); n]
}

fn big() -> Type {
    Type::structure(vec![Type::i64(); 4]).unwrap()
}

/// Calls `f` through the shape's chain stub: the libffi form plus `chain`.
///
/// # Safety
/// `f` must have the signature and `args` point at its arguments; `ret`
/// must be large enough for the return value.
unsafe fn call_with_chain(
    abi: Abi,
    ret_ty: &Type,
    arg_tys: &[Type],
    f: unsafe extern "C" fn(),
    ret: *mut c_void,
    args: &[*const c_void],
    chain: usize,
) {
    let c = cache::lookup(abi, ret_ty, arg_tys, None).unwrap();
    let entry = c.chain_entry().unwrap();
    // SAFETY: forwarded to the caller's contract.
    unsafe {
        entry(
            f as *const c_void,
            ret,
            args.as_ptr(),
            chain as *const c_void,
        )
    };
}

const CHAINS: [usize; 3] = [0x1234_5678_9ABC, 7, usize::MAX - 41];

/// In r10 on x86-64, x18 on AArch64.
#[test]
fn chain_stubs_pass_the_chain_in_r10() {
    for chain in CHAINS {
        let (a, b) = (40i64, -3i64);
        let mut r = 0i64;
        // SAFETY: sc_chain_plus is int64_t(int64_t, int64_t).
        unsafe {
            call_with_chain(
                HOST,
                &Type::i64(),
                &i64s(2),
                sc_chain_plus,
                (&raw mut r).cast(),
                &[(&raw const a).cast(), (&raw const b).cast()],
                chain,
            )
        };
        // SAFETY: gcc's call of the same callee with the same chain.
        let want = unsafe { sc_direct_plus(sc_chain_plus, chain as *const c_void, a, b) };
        assert_eq!(r, want, "chain {chain:#x}");
        assert_eq!(r, (chain as i64).wrapping_add(3 * a + b));
    }
}

/// No frame: x86-64 keeps the chain in the red zone; AArch64 loads it
/// into x18 right before the branch.
#[test]
fn a_tail_chain_stub_keeps_the_chain_in_the_red_zone() {
    let c = cache::lookup(HOST, &Type::void(), &[Type::pointer(), Type::i64()], None).unwrap();
    assert!(
        c.plan.stack_bytes == 0 && c.plan.ret.ty.is_void(),
        "no frame: a tail stub"
    );
    for chain in CHAINS {
        let mut out = 0i64;
        let (p, a) = (&raw mut out, 5i64);
        // SAFETY: sc_chain_store is void(int64_t *, int64_t).
        unsafe {
            call_with_chain(
                HOST,
                &Type::void(),
                &[Type::pointer(), Type::i64()],
                sc_chain_store,
                ptr::null_mut(),
                &[(&raw const p).cast(), (&raw const a).cast()],
                chain,
            )
        };
        assert_eq!(out, (chain as i64).wrapping_add(a));
    }
}

#[test]
fn chain_stubs_with_frames() {
    for chain in CHAINS {
        let chain_i = chain as i64;
        // Stack arguments.
        let vals: Vec<i64> = (0..8).map(|i| 100 + i).collect();
        let ptrs: Vec<*const c_void> = vals.iter().map(|v| (v as *const i64).cast()).collect();
        let mut r = 0i64;
        // SAFETY: sc_chain_stack is int64_t(8 x int64_t).
        unsafe {
            call_with_chain(
                HOST,
                &Type::i64(),
                &i64s(8),
                sc_chain_stack,
                (&raw mut r).cast(),
                &ptrs,
                chain,
            )
        };
        // SAFETY: gcc's call with the same chain.
        assert_eq!(r, unsafe {
            sc_direct_stack(sc_chain_stack, chain as *const c_void, 100)
        });

        // A value returned in memory, into rvalue and into the stub's own
        // buffer (null rvalue).
        let a = 99i64;
        for null in [false, true] {
            let mut out = Big::default();
            let ret = if null {
                ptr::null_mut()
            } else {
                (&raw mut out).cast()
            };
            // SAFETY: sc_chain_big is struct sc_big(int64_t).
            unsafe {
                call_with_chain(
                    HOST,
                    &big(),
                    &[Type::i64()],
                    sc_chain_big,
                    ret,
                    &[(&raw const a).cast()],
                    chain,
                )
            };
            if !null {
                assert_eq!(
                    out,
                    Big {
                        a: chain_i,
                        b: a,
                        c: chain_i ^ a,
                        d: 7
                    }
                );
            }
        }

        // A double, with a narrow chain value that converts exactly.
        let small = (chain & 0xFFFF) as i64;
        let (x, n) = (1.5f64, 4i64);
        let mut d = 0f64;
        // SAFETY: sc_chain_double is double(double, int64_t).
        unsafe {
            call_with_chain(
                HOST,
                &Type::f64(),
                &[Type::f64(), Type::i64()],
                sc_chain_double,
                (&raw mut d).cast(),
                &[(&raw const x).cast(), (&raw const n).cast()],
                small as usize,
            )
        };
        assert_eq!(d, 6.0 + small as f64);

        // Win64: shadow space and a stack argument.
        #[cfg(target_arch = "x86_64")]
        win64_chain_stub(chain);
    }
}

#[cfg(target_arch = "x86_64")]
fn win64_chain_stub(chain: usize) {
    let vals: Vec<i64> = (1..=5).collect();
    let ptrs: Vec<*const c_void> = vals.iter().map(|v| (v as *const i64).cast()).collect();
    let mut r = 0i64;
    // SAFETY: sc_chain_ms is an ms_abi int64_t(5 x int64_t).
    unsafe {
        call_with_chain(
            Abi::Win64,
            &Type::i64(),
            &i64s(5),
            sc_chain_ms,
            (&raw mut r).cast(),
            &ptrs,
            chain,
        )
    };
    // SAFETY: gcc's call with the same chain.
    assert_eq!(r, unsafe { sc_direct_ms(chain as *const c_void) });
}

// ------------------------------------------------------------ Go closures

thread_local! {
    /// (cif, user_data) as each handler call saw them.
    static SEEN: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

/// A handler for closures whose arguments are all int64_t: returns bias +
/// sum((i + 1) * arg[i]) as an int64_t.
unsafe extern "C" fn sum_handler(
    cif: *const c_void,
    ret: *mut c_void,
    args: *const *mut c_void,
    ud: *mut c_void,
) {
    SEEN.with(|s| s.borrow_mut().push((cif as usize, ud as usize)));
    // SAFETY: ud is the GoClosure (the thunk passes the record); cif is
    // the pointer the test stored, a count of int64_t arguments.
    unsafe {
        let c = &*ud.cast::<GoClosure>();
        let n = *cif.cast::<usize>();
        let mut v = c.bias;
        for i in 0..n {
            v += (i as i64 + 1) * *(*args.add(i)).cast::<i64>();
        }
        *ret.cast::<i64>() = v;
    }
}

/// `struct sc_big(int64_t)`: {bias, a, -a, 3}.
unsafe extern "C" fn big_handler(
    cif: *const c_void,
    ret: *mut c_void,
    args: *const *mut c_void,
    ud: *mut c_void,
) {
    SEEN.with(|s| s.borrow_mut().push((cif as usize, ud as usize)));
    // SAFETY: as in sum_handler; ret is the caller's Big.
    unsafe {
        let c = &*ud.cast::<GoClosure>();
        let a = *(*args).cast::<i64>();
        *ret.cast::<Big>() = Big {
            a: c.bias,
            b: a,
            c: -a,
            d: 3,
        };
    }
}

/// `double(double, int64_t)`: x * n + bias.
unsafe extern "C" fn double_handler(
    cif: *const c_void,
    ret: *mut c_void,
    args: *const *mut c_void,
    ud: *mut c_void,
) {
    SEEN.with(|s| s.borrow_mut().push((cif as usize, ud as usize)));
    // SAFETY: as in sum_handler.
    unsafe {
        let c = &*ud.cast::<GoClosure>();
        let x = *(*args).cast::<f64>();
        let n = *(*args.add(1)).cast::<i64>();
        *ret.cast::<f64>() = x * n as f64 + c.bias as f64;
    }
}

fn go_closure(
    abi: Abi,
    ret: &Type,
    args: &[Type],
    cif: &'static usize,
    fun: unsafe extern "C" fn(*const c_void, *mut c_void, *const *mut c_void, *mut c_void),
    bias: i64,
) -> Box<GoClosure> {
    let c = cache::lookup(abi, ret, args, None).unwrap();
    Box::new(GoClosure {
        tramp: c.go_closure_thunk().unwrap(),
        cif: (cif as *const usize).cast(),
        fun,
        bias,
    })
}

fn take_seen() -> Vec<(usize, usize)> {
    SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

#[test]
fn go_closure_records_match_libffis_layout() {
    assert_eq!(
        (go_record::TRAMP, go_record::CIF, go_record::FUN),
        (0, 8, 16)
    );
    assert_eq!(std::mem::offset_of!(GoClosure, fun), go_record::FUN);
}

#[test]
fn go_closures_called_by_gcc_with_the_record_as_static_chain() {
    static TWO: usize = 2;
    static EIGHT: usize = 8;
    #[cfg(target_arch = "x86_64")]
    static FIVE: usize = 5;
    take_seen();

    let mut c = go_closure(HOST, &Type::i64(), &i64s(2), &TWO, sum_handler, 1000);
    let cp = &raw mut *c;
    // SAFETY: the record's code is an int64_t(int64_t, int64_t) Go thunk.
    assert_eq!(unsafe { sc_call_go_plus(cp, 3, 4) }, 1000 + 3 + 2 * 4);
    assert_eq!(take_seen(), [(&TWO as *const usize as usize, cp as usize)]);

    let mut c = go_closure(HOST, &Type::i64(), &i64s(8), &EIGHT, sum_handler, -7);
    let cp = &raw mut *c;
    // SAFETY: int64_t(8 x int64_t); the last two on the stack.
    let r = unsafe { sc_call_go_stack(cp, 10) };
    assert_eq!(r, -7 + (0..8).map(|i| (i + 1) * (10 + i)).sum::<i64>());
    assert_eq!(
        take_seen(),
        [(&EIGHT as *const usize as usize, cp as usize)]
    );

    let mut c = go_closure(HOST, &big(), &[Type::i64()], &TWO, big_handler, 55);
    let cp = &raw mut *c;
    let mut out = Big::default();
    // SAFETY: struct sc_big(int64_t), returned in memory.
    unsafe { sc_call_go_big(cp, 9, &mut out) };
    assert_eq!(
        out,
        Big {
            a: 55,
            b: 9,
            c: -9,
            d: 3
        }
    );
    assert_eq!(take_seen().len(), 1);

    let mut c = go_closure(
        HOST,
        &Type::f64(),
        &[Type::f64(), Type::i64()],
        &TWO,
        double_handler,
        2,
    );
    let cp = &raw mut *c;
    // SAFETY: double(double, int64_t).
    assert_eq!(unsafe { sc_call_go_double(cp, 2.5, 4) }, 12.0);
    assert_eq!(take_seen().len(), 1);

    // Win64: an ms_abi caller; the thunk keeps its registers too.
    #[cfg(target_arch = "x86_64")]
    {
        let mut c = go_closure(Abi::Win64, &Type::i64(), &i64s(5), &FIVE, sum_handler, 1);
        let cp = &raw mut *c;
        // SAFETY: an ms_abi int64_t(5 x int64_t) Go thunk.
        assert_eq!(unsafe { sc_call_go_ms(cp) }, 1 + 1 + 4 + 9 + 16 + 25);
        assert_eq!(take_seen(), [(&FIVE as *const usize as usize, cp as usize)]);
    }
}
