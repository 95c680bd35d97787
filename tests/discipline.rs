//! Register and stack discipline of jitffi's call stubs, observed by
//! assembly probes (`oracle/c/<arch>/discipline.S`): 16-byte alignment at
//! the call, callee-saved registers and the stack pointer kept (x86-64:
//! rbx, rbp, r12-r15, rsp; AArch64: x19-x29, sp, the low halves of
//! v8-v15), nothing assumed to survive in caller-saved registers, nothing
//! written into the caller's arguments, no load reaching past an argument,
//! and (AArch64) every argument in exactly the register or stack slot its
//! plan names.
#![cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), unix))]

use std::ffi::c_void;

use jitffi::{Cif, Type, TypeKind};
use jitffi_oracle::discipline::{self, clobbered, RawStub};
use jitffi_oracle::oracles;

/// The crate, under the name `support/native_ret.rs` expects.
mod jit {
    pub use jitffi::*;
}
#[cfg(target_arch = "aarch64")]
#[path = "support/a64_types.rs"]
mod a64_types;
#[path = "support/native_ret.rs"]
mod native_ret;

#[path = "support/shapes.rs"]
mod shapes;
use shapes::*;

#[path = "support/oracle_table.rs"]
mod oracle_table;
use oracle_table::{cif_for, named, Case};

fn n_of(t: Type, n: usize) -> Vec<Type> {
    vec![t; n]
}

fn has_long_double(t: &Type) -> bool {
    match t.kind() {
        TypeKind::LongDouble | TypeKind::ComplexLongDouble => true,
        TypeKind::Struct { fields, .. } | TypeKind::Union { fields } => {
            fields.iter().any(has_long_double)
        }
        TypeKind::Array { elem, .. } => has_long_double(elem),
        _ => false,
    }
}

/// Arguments for a cif: a byte pattern per argument (zero, a valid 0.0,
/// where a long double is involved), in separate buffers and packed.
struct Vals {
    bufs: Vec<Buf>,
    avalue: Vec<*const c_void>,
    packed: Buf,
}

impl Vals {
    fn new(cif: &Cif) -> Vals {
        let mut bufs: Vec<Buf> = cif
            .args()
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut b = Buf::new(t.size(), 0);
                if !has_long_double(t) {
                    for (k, byte) in b.bytes_mut().iter_mut().enumerate() {
                        *byte = (i * 37 + k * 11 + 1) as u8;
                    }
                }
                b
            })
            .collect();
        let avalue = bufs.iter_mut().map(|b| b.ptr().cast_const()).collect();
        let mut v = Vals {
            bufs,
            avalue,
            packed: Buf::new(cif.packed_size(), 0),
        };
        v.repack(cif);
        v
    }

    /// Sets argument `i` (an `int` or `int64_t`) to `value`.
    fn set_int(&mut self, cif: &Cif, i: usize, value: i64) {
        let n = self.bufs[i].len();
        self.bufs[i]
            .bytes_mut()
            .copy_from_slice(&value.to_le_bytes()[..n]);
        self.repack(cif);
    }

    fn repack(&mut self, cif: &Cif) {
        for (b, &off) in self.bufs.iter().zip(cif.packed_offsets()) {
            let off = off as usize;
            self.packed.bytes_mut()[off..off + b.len()].copy_from_slice(b.bytes());
        }
    }

    fn snapshot(&self) -> (Vec<*const c_void>, Vec<Vec<u8>>, Vec<u8>) {
        (
            self.avalue.clone(),
            self.bufs.iter().map(|b| b.bytes().to_vec()).collect(),
            self.packed.bytes().to_vec(),
        )
    }
}

fn cif(ret: Type, args: &[Type]) -> Cif {
    Cif::new(ret.clone(), args).unwrap_or_else(|e| panic!("Cif::new({ret}, {args:?}): {e}"))
}

/// How many x87 registers the cif's return value comes back in.
fn x87_results(cif: &Cif) -> usize {
    match &cif.plan().ret.pass {
        jitffi::plan::RetPass::Direct(pieces) => pieces
            .iter()
            .filter(|p| matches!(p.loc, jitffi::plan::Loc::X87(_)))
            .count(),
        _ => 0,
    }
}

/// Pops `n` values a packed stub left on the x87 stack.
#[cfg(target_arch = "x86_64")]
fn pop_x87(n: usize) {
    for _ in 0..n {
        // SAFETY: a value is on the x87 stack (the packed stub returned it);
        // every x87 register is declared clobbered.
        unsafe {
            std::arch::asm!(
                "fstp st(0)",
                out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
            )
        };
    }
}

/// AArch64 has no x87 stack: no plan puts a value there.
#[cfg(target_arch = "aarch64")]
fn pop_x87(n: usize) {
    assert_eq!(n, 0, "an x87 result on AArch64");
}

/// The [`clobbered`] bit of a changed x87 stack depth (none on AArch64).
fn x87_stack_bit() -> u32 {
    #[cfg(target_arch = "x86_64")]
    return clobbered::X87_STACK;
    #[cfg(target_arch = "aarch64")]
    return 0;
}

fn packed_as_raw(cif: &Cif) -> RawStub {
    // SAFETY: both entry forms take three pointer arguments in the same
    // registers and return nothing; only the third pointer's meaning differs,
    // and callers pass the packed buffer there.
    unsafe { std::mem::transmute::<jitffi::PackedEntry, RawStub>(cif.packed_entry()) }
}

// ------------------------------------------------------------- alignment

fn alignment_signatures() -> Vec<(&'static str, Cif)> {
    let v = Type::void;
    vec![
        ("void()", cif(v(), &[])),
        ("i64(i64 x7): 1 stack slot", cif(i64(), &n_of(i64(), 7))),
        ("i64(i64 x8): 2 stack slots", cif(i64(), &n_of(i64(), 8))),
        ("i64(i64 x9): 3 stack slots", cif(i64(), &n_of(i64(), 9))),
        ("i64(i64 x13): 7 stack slots", cif(i64(), &n_of(i64(), 13))),
        ("sret(i64 x7): 2 stack slots", cif(s_q4(), &n_of(i64(), 7))),
        (
            "sret(i64 x13): 8 stack slots",
            cif(s_q4(), &n_of(i64(), 13)),
        ),
        ("sret(s_q4): 4 stack slots", cif(s_q4(), &[s_q4()])),
        ("i64(s_q4, i64)", cif(i64(), &[s_q4(), i64()])),
        (
            "i64(i64 x6, s_ddd): 3 slots",
            cif(i64(), &[n_of(i64(), 6), vec![s_ddd()]].concat()),
        ),
        (
            "i64(s_ddd, s_q4, i64 x6): 7 slots",
            cif(i64(), &[vec![s_ddd(), s_q4()], n_of(i64(), 6)].concat()),
        ),
        ("f64(f64 x9): 1 slot", cif(f64(), &n_of(f64(), 9))),
        ("f64(long double): 2 slots", cif(f64(), &[f80()])),
        (
            "i64(i64 x6, i8, long double): padded to 4 slots",
            cif(i64(), &[n_of(i64(), 6), vec![i8(), f80()]].concat()),
        ),
        ("s_dd(s_dd x5)", cif(s_dd(), &n_of(s_dd(), 5))),
        ("i64(s_100): 13 slots", cif(i64(), &[s_100()])),
        (
            "variadic i32(ptr; f64 x9, i64 x6)",
            Cif::new_variadic(
                i32(),
                &[Type::pointer()],
                &[n_of(f64(), 9), n_of(i64(), 6)].concat(),
            )
            .expect("Cif::new_variadic"),
        ),
    ]
}

#[test]
fn the_stack_is_16_aligned_at_the_call() {
    let probe = discipline::jitffi_probe_align as *const c_void;
    let mut errs = Vec::new();
    for (name, cif) in alignment_signatures() {
        let mut vals = Vals::new(&cif);
        let mut ret = Buf::new(cif.ret_buffer_size() + 16, 0);
        for form in ["call_raw", "call_packed", "raw via call_checked"] {
            discipline::reset();
            // SAFETY: the probe ignores its arguments and returns its first
            // one (rdi in rax, x0 in x0), valid for every return convention
            // used here (none is x87); buffers are sized and aligned from
            // the cif.
            let mask = unsafe {
                match form {
                    "call_raw" => {
                        cif.call_raw(probe, ret.ptr(), vals.avalue.as_ptr());
                        0
                    }
                    "call_packed" => {
                        native_ret::call_packed_into(
                            cif.plan(),
                            cif.packed_entry() as *const c_void,
                            probe,
                            ret.ptr(),
                            vals.packed.ptr(),
                        );
                        0
                    }
                    _ => discipline::call_checked(
                        cif.raw_entry(),
                        probe,
                        ret.ptr(),
                        vals.avalue.as_ptr(),
                    ),
                }
            };
            let s = discipline::state();
            if s.align_calls != 1 {
                errs.push(format!(
                    "{name} [{form}]: probe called {} times",
                    s.align_calls
                ));
            } else if s.align != 0 {
                errs.push(format!(
                    "{name} [{form}]: the stack pointer at the call was {} mod 16",
                    s.align
                ));
            }
            if mask != 0 {
                errs.push(format!(
                    "{name} [{form}]: {} not preserved",
                    clobbered::describe(mask)
                ));
            }
        }
    }
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}

// ---------------------------------------------------- callee-saved state

/// A subset of the oracle table: registers only, stack arguments, memory
/// aggregates, sret, x87 returns, variadic.
fn oracle_signatures() -> Vec<Case> {
    [
        "or_void0",
        "or_i32",
        "or_s6",
        "or_s7",
        "or_s100",
        "or_dd_full",
        "or_ll_full",
        "or_mixed_aggs",
        "or_f80",
        "or_cf80",
        "or_s_ld1",
        "or_scribble",
        "va_dbl10",
        "va_ld3",
    ]
    .into_iter()
    .map(named)
    .collect()
}

fn oracle_cif(s: &Case) -> Cif {
    cif_for(s).unwrap_or_else(|e| panic!("{e}"))
}

fn oracle_vals(s: &Case, cif: &Cif) -> Vals {
    let mut vals = Vals::new(cif);
    if s.fixed.is_some() {
        vals.set_int(cif, 0, (s.args.len() - 1) as i64);
    }
    vals
}

/// rbx, rbp, r12-r15 and rsp (AArch64: x19-x29, sp, d8-d15, FPCR) survive
/// every stub; the x87 stack is balanced (long double returns popped, even
/// when the value is dropped).
#[test]
fn callee_saved_registers_survive_every_stub() {
    let mut errs = Vec::new();
    for s in oracle_signatures() {
        let cif = oracle_cif(&s);
        let mut vals = oracle_vals(&s, &cif);
        for (form, null_ret) in [
            ("raw", false),
            ("raw, rvalue NULL", true),
            ("packed", false),
        ] {
            let mut ret = Buf::new(cif.ret_buffer_size() + 16, 0);
            let rv = if null_ret {
                std::ptr::null_mut()
            } else {
                ret.ptr()
            };
            let (stub, args) = if form == "packed" {
                (packed_as_raw(&cif), vals.packed.ptr().cast_const().cast())
            } else {
                (cif.raw_entry(), vals.avalue.as_ptr())
            };
            oracles::reset();
            // SAFETY: the cif describes the oracle's signature; the argument
            // values are valid for their types (zero long doubles, integer
            // patterns, the variadic count set); rv is null or large enough.
            let mask = unsafe { discipline::call_checked(stub, s.func, rv, args) };
            let rec = oracles::record();
            // The packed form hands x87 results to its caller on the x87
            // stack, as the callee left them: that, and only that, changes.
            let left_on_x87 = if form == "packed" {
                x87_results(&cif)
            } else {
                0
            };
            pop_x87(left_on_x87);
            let expected = if left_on_x87 > 0 { x87_stack_bit() } else { 0 };
            if mask != expected {
                errs.push(format!(
                    "{} [{form}]: {} not preserved",
                    s.name,
                    clobbered::describe(mask)
                ));
            }
            if rec.calls != 1 || rec.count != s.args.len() as i32 {
                errs.push(format!(
                    "{} [{form}]: oracle recorded {} arguments in {} calls",
                    s.name, rec.count, rec.calls
                ));
            }
        }
    }
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}

/// A callee may change its by-value arguments and clobbers every
/// caller-saved register and its stack arguments: neither the caller's
/// avalue array nor the argument buffers nor the packed buffer change.
#[test]
fn avalue_and_argument_buffers_are_untouched() {
    let mut errs = Vec::new();
    for s in oracle_signatures() {
        let cif = oracle_cif(&s);
        let mut vals = oracle_vals(&s, &cif);
        let before = vals.snapshot();
        let mut ret = Buf::new(cif.ret_buffer_size() + 16, 0);
        // SAFETY: as in `callee_saved_registers_survive_every_stub`.
        unsafe {
            cif.call_raw(s.func, ret.ptr(), vals.avalue.as_ptr());
            native_ret::call_packed_into(
                cif.plan(),
                cif.packed_entry() as *const c_void,
                s.func,
                ret.ptr(),
                vals.packed.ptr(),
            );
        }
        let after = vals.snapshot();
        if before.0 != after.0 {
            errs.push(format!("{}: the avalue array changed", s.name));
        }
        for (i, (b, a)) in before.1.iter().zip(&after.1).enumerate() {
            if b != a {
                errs.push(format!("{}: argument {i}'s buffer changed", s.name));
            }
        }
        if before.2 != after.2 {
            errs.push(format!("{}: the packed buffer changed", s.name));
        }
    }
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}

// ------------------------------------------------------ no over-reading

/// Two pages, the second inaccessible: a value placed flush against the
/// guard page faults if anything reads past its end.
struct GuardedPage {
    base: *mut u8,
    page: usize,
}

impl GuardedPage {
    fn new() -> GuardedPage {
        // SAFETY: sysconf reads a constant; mmap makes a fresh private
        // mapping; mprotect changes only the second page of it.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
            let base = libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(base, libc::MAP_FAILED, "mmap");
            let base = base.cast::<u8>();
            let guard = base.add(page).cast::<c_void>();
            assert_eq!(libc::mprotect(guard, page, libc::PROT_NONE), 0, "mprotect");
            GuardedPage { base, page }
        }
    }

    /// Copies `bytes` to the end of the accessible page; returns where.
    fn place(&mut self, bytes: &[u8]) -> *const c_void {
        // SAFETY: the destination is the last `bytes.len()` (< page) bytes
        // of the writable first page.
        unsafe {
            let dst = self.base.add(self.page - bytes.len());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
            dst.cast_const().cast()
        }
    }
}

impl Drop for GuardedPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.base.cast(), 2 * self.page) };
    }
}

/// A stub loads each argument with loads that stay inside it: a 3-byte
/// struct or a 1-byte integer at the very end of a page followed by an
/// inaccessible page must not fault (a wider load would: this test then
/// dies with SIGSEGV). Sizes are multiples of the alignment in C, so the
/// values stay aligned.
#[test]
fn argument_loads_stay_inside_each_argument() {
    let sigs = [
        "or_i8",
        "or_i16",
        "or_f32",
        "or_narrow_stack",
        "or_s_ccc",
        "or_s_c3",
        "or_s_odd",
        "or_s_scic",
        "or_s_iii",
        "or_s_fff",
        "or_s_fi",
        "or_nest_mix",
        "or_u_c12i",
        "or_mixed_aggs",
    ]
    .map(named);
    let mut errs = Vec::new();
    for s in sigs {
        let cif = oracle_cif(&s);
        let vals = oracle_vals(&s, &cif);
        let mut pages: Vec<GuardedPage> = s.args.iter().map(|_| GuardedPage::new()).collect();
        let avalue: Vec<*const c_void> = pages
            .iter_mut()
            .zip(&vals.bufs)
            .map(|(p, b)| p.place(b.bytes()))
            .collect();
        let mut ret = Buf::new(cif.ret_buffer_size() + 16, 0);
        oracles::reset();
        // SAFETY: the cif describes the oracle; every avalue entry points at
        // a value of its type (copied from `vals`, aligned by construction).
        unsafe { (s.direct)(ret.ptr(), avalue.as_ptr()) };
        let want = oracles::record();
        oracles::reset();
        // SAFETY: as above.
        unsafe { cif.call_raw(s.func, ret.ptr(), avalue.as_ptr()) };
        let got = oracles::record();
        if got != want {
            errs.push(format!(
                "{}: received {got:?}, gcc delivered {want:?}",
                s.name
            ));
        }
    }
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}

// --------------------------------------------------- caller-saved state

fn clobber_check(
    name: &str,
    cif: &Cif,
    func: unsafe extern "C" fn(),
    vals: &mut Vals,
    check: &dyn Fn(&[u8]) -> Result<(), String>,
    errs: &mut Vec<String>,
) {
    let forms = [
        "call_raw",
        "call_packed",
        "raw via call_checked",
        "packed via call_checked",
        "raw, rvalue NULL",
    ];
    for form in forms {
        let before = vals.snapshot();
        let mut ret = Buf::new(cif.ret_buffer_size() + 16, 0);
        let null = form.ends_with("NULL");
        let rv = if null {
            std::ptr::null_mut()
        } else {
            ret.ptr()
        };
        let f = func as *const c_void;
        discipline::reset();
        // SAFETY: the clobber callee has exactly the cif's signature; the
        // buffers are sized from the cif.
        let mask = unsafe {
            match form {
                "call_raw" | "raw, rvalue NULL" => {
                    cif.call_raw(f, rv, vals.avalue.as_ptr());
                    0
                }
                "call_packed" => {
                    native_ret::call_packed_into(
                        cif.plan(),
                        cif.packed_entry() as *const c_void,
                        f,
                        rv,
                        vals.packed.ptr(),
                    );
                    0
                }
                "raw via call_checked" => {
                    discipline::call_checked(cif.raw_entry(), f, rv, vals.avalue.as_ptr())
                }
                _ => discipline::call_checked(
                    packed_as_raw(cif),
                    f,
                    rv,
                    vals.packed.ptr().cast_const().cast(),
                ),
            }
        };
        let s = discipline::state();
        if s.clobber_calls != 1 {
            errs.push(format!(
                "{name} [{form}]: callee called {} times",
                s.clobber_calls
            ));
        }
        if mask != 0 {
            errs.push(format!(
                "{name} [{form}]: {} not preserved",
                clobbered::describe(mask)
            ));
        }
        let args: Vec<u8> = vals.bufs.iter().flat_map(|b| b.bytes().to_vec()).collect();
        let received: Vec<u8> = s.clobber_args[..args.len() / 8]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        if received != args {
            errs.push(format!("{name} [{form}]: callee received other arguments"));
        }
        // Through call_checked the packed form's result is lost (the checker
        // returns its mask in rax); "call_packed" covers it.
        if !null && form != "packed via call_checked" {
            if let Err(e) = check(ret.bytes()) {
                errs.push(format!("{name} [{form}]: {e}"));
            }
        }
        if vals.snapshot() != before {
            errs.push(format!("{name} [{form}]: arguments changed"));
        }
    }
}

/// The callees trash rcx, rdx, rsi, rdi, r8-r11, xmm0-15 (but the return
/// registers), their stack arguments and the red zone: the stub must keep
/// what it needs after the call (rvalue above all) in callee-saved
/// registers or its own frame.
#[cfg(target_arch = "x86_64")]
#[test]
fn stubs_keep_nothing_in_caller_saved_registers() {
    let mut errs = Vec::new();

    let c = cif(i64(), &n_of(i64(), 8));
    let args: [i64; 8] = [
        0x0102_0304_0506_0708,
        -2,
        0x7fff_0000_ffff_0001,
        -0x1234_5678,
        5,
        i64::MIN,
        0x0bad_cafe,
        -9,
    ];
    let mut vals = Vals::new(&c);
    for (i, a) in args.iter().enumerate() {
        vals.set_int(&c, i, *a);
    }
    let want = discipline::clobber_callee_expected(&args);
    clobber_check(
        "int64(int64 x8)",
        &c,
        discipline::jitffi_clobber_callee,
        &mut vals,
        &|r| {
            let got = i64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
            if got == want {
                Ok(())
            } else {
                Err(format!("returned {got:#x}, expected {want:#x}"))
            }
        },
        &mut errs,
    );

    let c = cif(s_q4(), &n_of(i64(), 8));
    let mut vals = Vals::new(&c);
    for (i, a) in args.iter().enumerate() {
        vals.set_int(&c, i, *a);
    }
    let want = [
        args[0] ^ args[5],
        args[1] ^ args[6],
        args[2] ^ args[7],
        args[3].wrapping_add(args[4]),
    ];
    clobber_check(
        "sret {int64 x4}(int64 x8)",
        &c,
        discipline::jitffi_clobber_sret,
        &mut vals,
        &|r| {
            let got: Vec<i64> = r[..32]
                .chunks(8)
                .map(|w| i64::from_le_bytes(w.try_into().expect("8 bytes")))
                .collect();
            if got == want {
                Ok(())
            } else {
                Err(format!("returned {got:x?}, expected {want:x?}"))
            }
        },
        &mut errs,
    );

    let c = cif(f64(), &n_of(f64(), 10));
    let xs: Vec<f64> = (0..10).map(|i| 1.5f64.powi(i) - 3.25 * i as f64).collect();
    let mut vals = Vals::new(&c);
    for (i, x) in xs.iter().enumerate() {
        vals.set_int(&c, i, x.to_bits() as i64);
    }
    let want = xs.iter().skip(1).fold(xs[0], |acc, x| acc + x);
    clobber_check(
        "double(double x10)",
        &c,
        discipline::jitffi_clobber_f64,
        &mut vals,
        &|r| {
            let got = f64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
            if got.to_bits() == want.to_bits() {
                Ok(())
            } else {
                Err(format!("returned {got}, expected {want}"))
            }
        },
        &mut errs,
    );

    assert!(errs.is_empty(), "{}", errs.join("\n"));
}

// A "stub" that breaks three promises: rbx and r14 changed, an x87 value
// left on the register stack.
#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".globl discipline_test_bad_stub",
    "discipline_test_bad_stub:",
    "mov rbx, 1",
    "mov r14, 2",
    "fldz",
    "ret",
    // A "stub" that calls fn (rdi) with the stack 8 bytes off.
    ".globl discipline_test_misaligning_stub",
    "discipline_test_misaligning_stub:",
    "sub rsp, 16",
    "call rdi",
    "add rsp, 16",
    "ret",
);

#[cfg(target_arch = "x86_64")]
extern "C" {
    fn discipline_test_bad_stub(f: *const c_void, r: *mut c_void, a: *const *const c_void);
    fn discipline_test_misaligning_stub(f: *const c_void, r: *mut c_void, a: *const *const c_void);
}

/// The alignment probe can fail.
#[cfg(target_arch = "x86_64")]
#[test]
fn the_alignment_probe_sees_a_misaligned_call() {
    discipline::reset();
    // SAFETY: the misaligning stub only calls the probe, which touches no
    // memory but its thread-local state.
    let mask = unsafe {
        discipline::call_checked(
            discipline_test_misaligning_stub,
            discipline::jitffi_probe_align as *const c_void,
            std::ptr::null_mut(),
            std::ptr::null(),
        )
    };
    let s = discipline::state();
    assert_eq!((mask, s.align_calls, s.align), (0, 1, 8));
}

/// The checker can fail: each broken promise is reported.
#[cfg(target_arch = "x86_64")]
#[test]
fn call_checked_catches_broken_promises() {
    // SAFETY: the bad stub touches registers only; call_checked restores
    // rbx and r14 and reports them. The x87 value it leaves is popped below.
    let mask = unsafe {
        discipline::call_checked(
            discipline_test_bad_stub,
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null(),
        )
    };
    // SAFETY: pops the value the bad stub pushed, restoring the x87 stack.
    unsafe { std::arch::asm!("fstp st(0)") };
    assert_eq!(
        mask,
        clobbered::RBX | clobbered::R14 | clobbered::X87_STACK,
        "{}",
        clobbered::describe(mask)
    );
}

// ================================================================ AArch64

/// The AAPCS64 side: the oracles of `oracle/c/aarch64/aapcs64.c` (HFAs,
/// by-reference composites, `x8` results, odd sizes) through the same
/// checks, the AArch64 clobber callees, every argument against its plan,
/// and the probes' own failure modes.
#[cfg(target_arch = "aarch64")]
mod aarch64 {
    use super::*;
    use jitffi::plan::{ArgPass, Loc, RetPass};
    use jitffi_oracle::aapcs64::{self as a64, Ty};

    use super::a64_types::jt;

    /// An AArch64 oracle case and jitffi's cif for it.
    struct A64 {
        case: a64::Case,
        cif: Cif,
    }

    fn a64_case(name: &str) -> A64 {
        let case = a64::case(name).unwrap_or_else(|| panic!("{name} is not in the C table"));
        let (ret, args): (Type, Vec<Type>) = (jt(&case.ret), case.args.iter().map(jt).collect());
        let cif = match case.fixed {
            None => Cif::new(ret, &args),
            Some(n) => Cif::new_variadic(ret, &args[..n], &args[n..]),
        }
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        A64 { case, cif }
    }

    /// Argument values: seeded patterns, the variadic count where needed.
    fn a64_vals(c: &A64) -> Vals {
        let mut vals = Vals::new(&c.cif);
        if c.case.fixed.is_some() {
            assert!(
                !c.case.name.starts_with("a_va_fmt"),
                "format-string cases need a format"
            );
            vals.set_int(&c.cif, 0, (c.case.args.len() - 1) as i64);
        }
        vals
    }

    /// HFAs in and out (up to four long doubles), HFAs and composites
    /// that no longer fit, by-reference copies, results through x8, stack
    /// arguments of every alignment, variadic spills.
    const EDGE_CASES: [&str; 18] = [
        "a_s_ld4",
        "a_s_d4",
        "a_hfa_full_ld",
        "a_hfa_after_full",
        "a_scribble",
        "a_s_100",
        "a_s_fff",
        "a_sret_stack",
        "a_large_mixed",
        "a_large_stack",
        "a_i128_stack2",
        "a_small_full_odd",
        "a_cf128",
        "a_f128_spill",
        "a_spill_mixed",
        "a_va_ld9",
        "a_va_s24",
        "a_u_dd",
    ];

    /// x19-x29, sp, d8-d15 and FPCR survive every stub on the AAPCS64 edge
    /// cases, in both entry forms and with a null rvalue; the oracle runs
    /// once with every argument.
    #[test]
    fn callee_saved_registers_survive_aapcs64_edge_cases() {
        let mut errs = Vec::new();
        for name in EDGE_CASES {
            let c = a64_case(name);
            let mut vals = a64_vals(&c);
            for (form, null_ret) in [
                ("raw", false),
                ("raw, rvalue NULL", true),
                ("packed", false),
            ] {
                let mut ret = Buf::new(c.cif.ret_buffer_size() + 16, 0);
                let rv = if null_ret {
                    std::ptr::null_mut()
                } else {
                    ret.ptr()
                };
                let (stub, args) = if form == "packed" {
                    (packed_as_raw(&c.cif), vals.packed.ptr().cast_const().cast())
                } else {
                    (c.cif.raw_entry(), vals.avalue.as_ptr())
                };
                a64::reset();
                // SAFETY: the cif describes the oracle; the argument values
                // are valid for their types; rv is null or large enough.
                let mask = unsafe { discipline::call_checked(stub, c.case.func, rv, args) };
                let rec = a64::record();
                if mask != 0 {
                    errs.push(format!(
                        "{name} [{form}]: {} not preserved",
                        clobbered::describe(mask)
                    ));
                }
                if rec.calls != 1 || rec.count != c.case.args.len() as i32 {
                    errs.push(format!(
                        "{name} [{form}]: oracle recorded {} arguments in {} calls",
                        rec.count, rec.calls
                    ));
                }
            }
        }
        assert!(errs.is_empty(), "{}", errs.join("\n"));
    }

    /// Neither the avalue array, nor the argument values, nor the packed
    /// buffer change, though `a_scribble` overwrites its by-reference
    /// arguments and every callee owns its stack arguments.
    #[test]
    fn aapcs64_arguments_are_untouched() {
        let mut errs = Vec::new();
        for name in EDGE_CASES {
            let c = a64_case(name);
            let mut vals = a64_vals(&c);
            let before = vals.snapshot();
            let mut ret = Buf::new(c.cif.ret_buffer_size() + 16, 0);
            // SAFETY: as in `callee_saved_registers_survive_aapcs64_edge_cases`.
            unsafe {
                c.cif.call_raw(c.case.func, ret.ptr(), vals.avalue.as_ptr());
                native_ret::call_packed_into(
                    c.cif.plan(),
                    c.cif.packed_entry() as *const c_void,
                    c.case.func,
                    ret.ptr(),
                    vals.packed.ptr(),
                );
            }
            if vals.snapshot() != before {
                errs.push(format!("{name}: the caller's arguments changed"));
            }
        }
        assert!(errs.is_empty(), "{}", errs.join("\n"));
    }

    /// Every argument of every size sits flush against an inaccessible
    /// page, and so does the return buffer (exactly `ret_buffer_size`
    /// bytes): a load or store one byte too wide faults (and kills this
    /// test with SIGSEGV). Composites of 1-16 bytes, HFAs of three floats,
    /// by-reference copies and stack arguments all get their exact bytes.
    #[test]
    fn aapcs64_loads_and_stores_stay_inside_each_value() {
        let mut names: Vec<String> = (1..=16).map(|n| format!("a_s_c{n}")).collect();
        names.extend(
            [
                "a_i8",
                "a_u16",
                "a_i32",
                "a_f32",
                "a_narrow_stack",
                "a_f32_spill",
                "a_s_odd",
                "a_s_scs",
                "a_s_fff",
                "a_s_fi",
                "a_s_cf2",
                "a_u_ff",
                "a_s_f5",
                "a_s_40",
                "a_hfa_full",
                "a_small_full_odd",
                "a_large_mixed",
                "a_cf32",
            ]
            .map(String::from),
        );
        let mut errs = Vec::new();
        for name in &names {
            let c = a64_case(name);
            let vals = a64_vals(&c);
            let mut pages: Vec<GuardedPage> =
                c.case.args.iter().map(|_| GuardedPage::new()).collect();
            let avalue: Vec<*const c_void> = pages
                .iter_mut()
                .zip(&vals.bufs)
                .map(|(p, b)| p.place(b.bytes()))
                .collect();
            let mut ret_page = GuardedPage::new();
            let rv = ret_page
                .place(&vec![0u8; c.cif.ret_buffer_size()])
                .cast_mut();
            let rv = if c.case.ret == Ty::Void {
                std::ptr::null_mut()
            } else {
                rv
            };
            a64::reset();
            let mut scratch = Buf::new(c.cif.ret_buffer_size() + 16, 0);
            // SAFETY: the cif describes the oracle; every avalue entry
            // points at a value of its type (copied from `vals`, aligned by
            // construction); rv holds `ret_buffer_size` bytes.
            unsafe { (c.case.direct)(scratch.ptr(), avalue.as_ptr()) };
            let want = a64::record();
            a64::reset();
            // SAFETY: as above.
            unsafe { c.cif.call_raw(c.case.func, rv, avalue.as_ptr()) };
            let got = a64::record();
            if got != want {
                errs.push(format!("{name}: received {got:?}, gcc delivered {want:?}"));
            }
            let n = c.cif.ret().size().min(c.cif.ret_buffer_size());
            if !rv.is_null() {
                // SAFETY: rv holds ret_buffer_size >= n initialised bytes.
                let got = unsafe { std::slice::from_raw_parts(rv.cast::<u8>(), n) };
                let m = mask(c.cif.ret());
                if masked(got, &m) != masked(&scratch.bytes()[..n], &m) {
                    errs.push(format!(
                        "{name}: returned {}, gcc's call {}",
                        hex(got),
                        hex(&scratch.bytes()[..n])
                    ));
                }
            }
        }
        assert!(errs.is_empty(), "{}", errs.join("\n"));
    }

    /// The callees trash x0-x18 (but the result), v0-v7 and v16-v31 (but
    /// the result's low bits), the upper halves of v8-v15, their stack
    /// arguments and 128 bytes below sp: the stub must keep what it needs
    /// after the call (rvalue above all) in callee-saved registers or its
    /// own frame.
    #[test]
    fn stubs_keep_nothing_in_caller_saved_registers() {
        let mut errs = Vec::new();
        let args: [i64; 10] = [
            0x0102_0304_0506_0708,
            -2,
            0x7fff_0000_ffff_0001,
            -0x1234_5678,
            5,
            i64::MIN,
            0x0bad_cafe,
            -9,
            0x7777_1111_2222_3333,
            -0x4000_0000_0000,
        ];
        let set_ints = |c: &Cif| {
            let mut vals = Vals::new(c);
            for (i, a) in args.iter().enumerate() {
                vals.set_int(c, i, *a);
            }
            vals
        };

        let c = cif(i64(), &n_of(i64(), 10));
        let want = discipline::clobber_callee_expected(&args);
        clobber_check(
            "int64(int64 x10)",
            &c,
            discipline::jitffi_clobber_callee,
            &mut set_ints(&c),
            &|r| {
                let got = i64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
                if got == want {
                    Ok(())
                } else {
                    Err(format!("returned {got:#x}, expected {want:#x}"))
                }
            },
            &mut errs,
        );

        let c = cif(s_q4(), &n_of(i64(), 10));
        let want = [
            args[0] ^ args[5],
            args[1] ^ args[6],
            args[2] ^ args[7],
            args[3]
                .wrapping_add(args[4])
                .wrapping_add(args[8])
                .wrapping_add(args[9]),
        ];
        clobber_check(
            "sret {int64 x4}(int64 x10)",
            &c,
            discipline::jitffi_clobber_sret,
            &mut set_ints(&c),
            &|r| {
                let got: Vec<i64> = r[..32]
                    .chunks(8)
                    .map(|w| i64::from_le_bytes(w.try_into().expect("8 bytes")))
                    .collect();
                if got == want {
                    Ok(())
                } else {
                    Err(format!("returned {got:x?}, expected {want:x?}"))
                }
            },
            &mut errs,
        );

        let xs: Vec<f64> = (0..10).map(|i| 1.5f64.powi(i) - 3.25 * i as f64).collect();
        let set_doubles = |c: &Cif| {
            let mut vals = Vals::new(c);
            for (i, x) in xs.iter().enumerate() {
                vals.set_int(c, i, x.to_bits() as i64);
            }
            vals
        };
        let c = cif(f64(), &n_of(f64(), 10));
        let want = xs.iter().skip(1).fold(xs[0], |acc, x| acc + x);
        clobber_check(
            "double(double x10)",
            &c,
            discipline::jitffi_clobber_f64,
            &mut set_doubles(&c),
            &|r| {
                let got = f64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
                if got.to_bits() == want.to_bits() {
                    Ok(())
                } else {
                    Err(format!("returned {got}, expected {want}"))
                }
            },
            &mut errs,
        );

        let c = cif(st([arr(f64(), 4)]), &n_of(f64(), 10));
        let want = [
            xs[0] + xs[4] + xs[8],
            xs[1] + xs[5] + xs[9],
            xs[2] + xs[6],
            xs[3] + xs[7],
        ];
        clobber_check(
            "HFA {double x4}(double x10)",
            &c,
            discipline::jitffi_clobber_hfa,
            &mut set_doubles(&c),
            &|r| {
                let got: Vec<f64> = r[..32]
                    .chunks(8)
                    .map(|w| f64::from_le_bytes(w.try_into().expect("8 bytes")))
                    .collect();
                if got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
                {
                    Ok(())
                } else {
                    Err(format!("returned {got:?}, expected {want:?}"))
                }
            },
            &mut errs,
        );
        assert!(errs.is_empty(), "{}", errs.join("\n"));
    }

    /// Every piece of every argument is in exactly the register or stack
    /// slot its plan names (the probe sees x0-x8, q0-q7 and 16 stack
    /// slots); by-reference arguments come as the address of an aligned
    /// copy, not of the caller's value; a result in memory goes to x8.
    #[test]
    fn arguments_land_where_the_plan_says() {
        let mut errs = Vec::new();
        let mut checked = 0;
        for case in a64::cases() {
            if case.name.starts_with("a_va_fmt") {
                continue;
            }
            let c = a64_case(case.name);
            let vals = a64_vals(&c);
            let mut ret = Buf::new(c.cif.ret_buffer_size() + 16, 0);
            discipline::reset();
            // SAFETY: the probe reads registers and stack slots only and
            // returns x0 unchanged, which every return convention tolerates.
            unsafe {
                c.cif.call_raw(
                    discipline::jitffi_probe_regs as *const c_void,
                    ret.ptr(),
                    vals.avalue.as_ptr(),
                )
            };
            let s = discipline::state();
            let mut err = |e: String| errs.push(format!("{}: {e}", case.name));
            if s.regs_calls != 1 {
                err("the probe was not called once".into());
                continue;
            }
            let stack: Vec<u8> = s.stack.iter().flat_map(|w| w.to_le_bytes()).collect();
            let slot = |loc: Loc, size: usize| -> Option<Vec<u8>> {
                match loc {
                    Loc::Gpr(n) if n <= 8 => Some(s.gpr[n as usize].to_le_bytes()[..size].to_vec()),
                    Loc::Vec(n) if n < 8 => Some(s.vec[n as usize][..size].to_vec()),
                    Loc::Stack(off) if off as usize + size <= stack.len() => {
                        Some(stack[off as usize..off as usize + size].to_vec())
                    }
                    _ => None,
                }
            };
            for (i, a) in c.cif.plan().args.iter().enumerate() {
                let value = vals.bufs[i].bytes();
                let m = mask(&a.ty);
                match &a.pass {
                    ArgPass::Direct(pieces) => {
                        for p in pieces {
                            let (off, size) = (p.offset as usize, p.size as usize);
                            let Some(got) = slot(p.loc, size) else {
                                continue;
                            };
                            checked += 1;
                            let m = &m[off..off + size];
                            if masked(&got, m) != masked(&value[off..off + size], m) {
                                err(format!(
                                    "argument {i} ({}) bytes [{off}..{}) in {}: {}, expected {}",
                                    a.ty,
                                    off + size,
                                    p.loc.name(jitffi::Arch::Aarch64),
                                    hex(&got),
                                    hex(&value[off..off + size])
                                ));
                            }
                        }
                    }
                    ArgPass::Indirect { pointer } => {
                        let Some(got) = slot(*pointer, 8) else {
                            continue;
                        };
                        checked += 1;
                        let addr = u64::from_le_bytes(got.try_into().expect("8 bytes"));
                        if addr == vals.avalue[i] as u64 {
                            err(format!(
                                "argument {i} ({}) passed as the caller's value",
                                a.ty
                            ));
                        } else if addr == 0 || addr % a.ty.align() as u64 != 0 {
                            err(format!(
                                "argument {i} ({}): copy at {addr:#x} misaligned",
                                a.ty
                            ));
                        }
                    }
                }
            }
            if let RetPass::Indirect { pointer, .. } = c.cif.plan().ret.pass {
                checked += 1;
                if slot(pointer, 8) != Some((ret.ptr() as u64).to_le_bytes().to_vec()) {
                    err(format!(
                        "the result address in {} is not rvalue",
                        pointer.name(jitffi::Arch::Aarch64)
                    ));
                }
            }
        }
        assert!(checked > 300, "only {checked} locations checked");
        assert!(errs.is_empty(), "{}", errs.join("\n"));
    }

    // A "stub" that breaks four promises: x19, x22 and d9 changed, and a
    // word written above its entry sp (into its caller's frame).
    std::arch::global_asm!(
        ".globl discipline_test_bad_stub",
        "discipline_test_bad_stub:",
        "mov x19, #1",
        "mov x22, #2",
        "fmov d9, xzr",
        "str xzr, [sp]",
        "ret",
        // A "stub" that calls fn (x0) with sp 8 bytes off, touching no
        // memory through sp meanwhile (x9 survives the probe).
        ".globl discipline_test_misaligning_stub",
        "discipline_test_misaligning_stub:",
        "mov x9, x30",
        "sub sp, sp, #8",
        "blr x0",
        "add sp, sp, #8",
        "mov x30, x9",
        "ret",
    );

    extern "C" {
        fn discipline_test_bad_stub(f: *const c_void, r: *mut c_void, a: *const *const c_void);
        fn discipline_test_misaligning_stub(
            f: *const c_void,
            r: *mut c_void,
            a: *const *const c_void,
        );
    }

    /// The alignment probe can fail.
    #[test]
    fn the_alignment_probe_sees_a_misaligned_call() {
        discipline::reset();
        // SAFETY: the misaligning stub only calls the probe, which touches
        // no memory through sp, only its thread-local state.
        let mask = unsafe {
            discipline::call_checked(
                discipline_test_misaligning_stub,
                discipline::jitffi_probe_align as *const c_void,
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        let s = discipline::state();
        assert_eq!((mask, s.align_calls, s.align), (0, 1, 8));
    }

    /// The checker can fail: each broken promise is reported.
    #[test]
    fn call_checked_catches_broken_promises() {
        // SAFETY: the bad stub changes registers call_checked restores and
        // reports, and the canary word call_checked owns.
        let mask = unsafe {
            discipline::call_checked(
                discipline_test_bad_stub,
                std::ptr::null(),
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        assert_eq!(
            mask,
            clobbered::X19 | clobbered::X22 | clobbered::D9 | clobbered::CALLER_FRAME,
            "{}",
            clobbered::describe(mask)
        );
    }
}
