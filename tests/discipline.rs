//! Register and stack discipline of jitffi's call stubs, observed by
//! assembly probes (`oracle/c/discipline.S`): 16-byte alignment at the
//! call, callee-saved registers and rsp kept, nothing assumed to survive in
//! caller-saved registers, nothing written into the caller's arguments.
#![cfg(all(target_arch = "x86_64", unix))]

use std::ffi::c_void;

use jitffi::{Cif, Type, TypeKind};
use jitffi_oracle::discipline::{self, clobbered, RawStub};
use jitffi_oracle::oracles;

/// The crate, under the name `support/native_ret.rs` expects.
mod jit {
    pub use jitffi::*;
}
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
            // SAFETY: the probe ignores its arguments and returns rdi in rax,
            // valid for every return convention used here (none is x87);
            // buffers are sized and aligned from the cif.
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
                    "{name} [{form}]: rsp at the call was {} mod 16",
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

/// rbx, rbp, r12-r15 and rsp survive every stub; the x87 stack is balanced
/// (long double returns popped, even when the value is dropped).
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
            let expected = if left_on_x87 > 0 {
                clobbered::X87_STACK
            } else {
                0
            };
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

extern "C" {
    fn discipline_test_bad_stub(f: *const c_void, r: *mut c_void, a: *const *const c_void);
    fn discipline_test_misaligning_stub(f: *const c_void, r: *mut c_void, a: *const *const c_void);
}

/// The alignment probe can fail.
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
