//! Unwind information for generated code: C++ exceptions (g++, from
//! `oracle/c/unwind.cpp`) thrown by call targets and by closure handlers
//! propagate through jitffi's stubs and thunks to a C++ catcher, which gets
//! back every value it kept in registers across the call; the unwinder
//! finds the registered `.eh_frame` entries, which decode to the frames
//! the code really builds; and a backtrace taken inside a callee reaches
//! the frames above the stub.
//!
//! No exception ever reaches a Rust frame: every catcher is C++ and
//! catches everything.
//!
//! On x86-64 and AArch64 alike; what only x86-64 has (Microsoft x64
//! callers and targets, targets that keep no SysV register) is tested
//! there only.
#![cfg(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_os = "linux",
    target_env = "gnu"
))]

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::ptr;

use jitffi::emit::{self, EntryForm};
use jitffi::{cache, memory, unwind, Abi, Arch, Cif, RawClosure, Type};
use jitffi_oracle::cxx::{self, HandlerData, StubFn, FOREIGN, NOTHING};

// ------------------------------------------------------------- helpers

/// A 16-aligned buffer for return values and packed arguments.
#[repr(C, align(16))]
struct Buf([u8; 256]);

impl Buf {
    fn new() -> Box<Buf> {
        Box::new(Buf([0xAA; 256]))
    }
    fn ptr(&mut self) -> *mut c_void {
        self.0.as_mut_ptr().cast()
    }
}

/// `long double` 7.0: x87 extended, padded to 16 bytes (x86-64), or IEEE
/// binary128 (AArch64).
fn long_double_7() -> [u8; 16] {
    let mut b = [0u8; 16];
    if cfg!(target_arch = "x86_64") {
        b[..8].copy_from_slice(&0xE000_0000_0000_0000u64.to_le_bytes());
        b[8..10].copy_from_slice(&0x4001u16.to_le_bytes());
    } else {
        // Sign 0, exponent 0x4001, fraction .11 (7 = 1.75 * 2^2).
        b[8..].copy_from_slice(&0x4001_C000_0000_0000u64.to_le_bytes());
    }
    b
}

/// One call through a stub: the cif, the target, the argument values (as
/// bytes, one entry per argument) and what the target throws.
struct StubCase {
    name: &'static str,
    cif: Cif,
    target: *const c_void,
    args: Vec<Vec<u8>>,
    throws: i32,
}

impl StubCase {
    fn avalue(&self) -> Vec<*const c_void> {
        self.args.iter().map(|a| a.as_ptr().cast()).collect()
    }

    fn packed(&self) -> Box<Buf> {
        let mut buf = Buf::new();
        let offsets = self.cif.packed_offsets();
        for ((a, &off), ty) in self.args.iter().zip(offsets).zip(self.cif.args()) {
            let (off, n) = (off as usize, ty.size());
            buf.0[off..off + n].copy_from_slice(&a[..n]);
        }
        buf
    }

    /// The stub of `form` and its third argument.
    fn entry(
        &self,
        form: EntryForm,
        avalue: &[*const c_void],
        packed: &mut Buf,
    ) -> (StubFn, *const c_void) {
        match form {
            // SAFETY: the libffi-form entry has the stub signature with a
            // `void **` third argument, the same ABI as `void *`.
            EntryForm::Libffi => (
                unsafe { std::mem::transmute::<jitffi::RawEntry, StubFn>(self.cif.raw_entry()) },
                avalue.as_ptr().cast(),
            ),
            EntryForm::Packed => (self.cif.packed_entry(), packed.ptr().cast_const()),
        }
    }
}

fn int(v: i32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn ints(n: usize, base: i32) -> Vec<Vec<u8>> {
    (0..n).map(|i| int(base + i as i32)).collect()
}

fn weighted(values: impl IntoIterator<Item = i32>) -> i32 {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i as i32 + 1) * v)
        .sum()
}

fn stub_cases() -> Vec<StubCase> {
    let i32t = Type::i32;
    let big = Type::structure(vec![Type::i64(); 4]).unwrap();
    let d = 4.0f64.to_ne_bytes().to_vec();
    #[allow(unused_mut)] // x86-64 adds a case
    let mut cases = vec![
        StubCase {
            name: "void(int): a tail stub",
            cif: Cif::new(Type::void(), &[i32t()]).unwrap(),
            target: cxx::cxx_throw_int as *const c_void,
            args: vec![int(17)],
            throws: 17,
        },
        StubCase {
            name: "int(int): framed, stores the return",
            cif: Cif::new(i32t(), &[i32t()]).unwrap(),
            target: cxx::cxx_throw_int_ret as *const c_void,
            args: vec![int(41)],
            throws: 42,
        },
        StubCase {
            name: "int(10 x int): stack arguments",
            cif: Cif::new(i32t(), &vec![i32t(); 10]).unwrap(),
            target: cxx::cxx_throw_stack as *const c_void,
            args: ints(10, 3),
            throws: weighted(3..13),
        },
        StubCase {
            name: "Big(int): sret",
            cif: Cif::new(big, &[i32t()]).unwrap(),
            target: cxx::cxx_throw_sret as *const c_void,
            args: vec![int(5)],
            throws: 15,
        },
        StubCase {
            name: "long double(int, long double)",
            cif: Cif::new(Type::long_double(), &[i32t(), Type::long_double()]).unwrap(),
            target: cxx::cxx_throw_x87 as *const c_void,
            args: vec![int(30), long_double_7().to_vec()],
            throws: 37,
        },
        StubCase {
            name: "int(int, ...) with 3 ints and a double: variadic",
            cif: Cif::new_variadic(i32t(), &[i32t()], &[i32t(), i32t(), i32t(), Type::f64()])
                .unwrap(),
            target: cxx::cxx_throw_variadic as *const c_void,
            args: vec![int(3), int(1), int(2), int(3), d],
            throws: 127,
        },
    ];
    #[cfg(target_arch = "x86_64")]
    cases.push(StubCase {
        name: "ms_abi int(5 x int): Win64, shadow space and a stack argument",
        cif: Cif::with_abi(Abi::Win64, i32t(), &vec![i32t(); 5], None).unwrap(),
        target: cxx::cxx_throw_ms as *const c_void,
        args: ints(5, 1),
        throws: weighted(1..6),
    });
    cases
}

// ------------------------------------------------- (a), (b): call stubs

#[test]
fn exceptions_propagate_through_libffi_form_stubs() {
    for case in stub_cases() {
        let avalue = case.avalue();
        let mut ret = Buf::new();
        // SAFETY: the target has the cif's signature, avalue points at its
        // arguments, ret is 256 bytes; the catcher catches everything.
        let caught = unsafe {
            cxx::cxx_catch_stub(
                std::mem::transmute::<jitffi::RawEntry, StubFn>(case.cif.raw_entry()),
                case.target,
                ret.ptr(),
                avalue.as_ptr().cast(),
            )
        };
        assert_eq!(caught, case.throws, "{}", case.name);
        // A null rvalue (sret through the stub's own temporary) too.
        // SAFETY: as above; the libffi form accepts a null rvalue.
        let caught = unsafe {
            cxx::cxx_catch_stub(
                std::mem::transmute::<jitffi::RawEntry, StubFn>(case.cif.raw_entry()),
                case.target,
                ptr::null_mut(),
                avalue.as_ptr().cast(),
            )
        };
        assert_eq!(caught, case.throws, "{} (null rvalue)", case.name);
    }
}

#[test]
fn exceptions_propagate_through_packed_form_stubs() {
    for case in stub_cases() {
        if case.cif.fixed_args().is_some() {
            continue; // same packed layout rules; covered by the libffi form
        }
        let mut packed = case.packed();
        let mut ret = Buf::new();
        // SAFETY: the buffer holds the arguments at the packed offsets,
        // 16-aligned; ret is a valid sret buffer.
        let caught = unsafe {
            cxx::cxx_catch_stub(
                case.cif.packed_entry(),
                case.target,
                ret.ptr(),
                packed.ptr(),
            )
        };
        assert_eq!(caught, case.throws, "{} (packed)", case.name);
    }
}

#[test]
fn the_brief_catcher_and_a_stub_that_returns() {
    let cif = Cif::new(Type::i32(), &[Type::i32()]).unwrap();
    // SAFETY: cxx_throw_int_ret is int(int); the catcher passes one int.
    let caught = unsafe {
        cxx::cxx_catch_through(cif.raw_entry(), cxx::cxx_throw_int_ret as *const c_void, 9)
    };
    assert_eq!(caught, 10);
    // SAFETY: as above, with a target that returns.
    let nothing =
        unsafe { cxx::cxx_catch_through(cif.raw_entry(), cxx::cxx_no_throw as *const c_void, 9) };
    assert_eq!(nothing, NOTHING);
    assert_ne!(FOREIGN, NOTHING);
    // The stub is fine after an exception went through it.
    let r: i32 = unsafe {
        cif.call(
            cxx::cxx_no_throw as *const c_void,
            &[jitffi::Arg::new(&77i32)],
        )
    }
    .unwrap();
    assert_eq!(r, 77);
}

// ------------------------------- (d): callee-saved registers after a catch

/// gcc keeps `cxx_catch_keeps`'s six values in callee-saved registers
/// across the call (checked once with objdump). On x86-64 they are rbx,
/// rbp and r12-r15, and the stub holds rvalue in rbx and `fn` in r12
/// meanwhile, so only the stub's unwind entry can give the catcher its
/// values back. On AArch64 they are x19-x24, which the stub leaves alone;
/// the catcher's frame (x29, sp) comes back only through the stub's entry.
#[test]
fn callee_saved_registers_survive_a_caught_exception() {
    for (k, case) in stub_cases().into_iter().enumerate() {
        for form in [EntryForm::Libffi, EntryForm::Packed] {
            if form == EntryForm::Packed && case.cif.fixed_args().is_some() {
                continue;
            }
            let avalue = case.avalue();
            let mut packed = case.packed();
            let mut ret = Buf::new();
            let (stub, args) = case.entry(form, &avalue, &mut packed);
            let seed = 1000 + 17 * k as i64;
            let mut out = [0i64; 7];
            // SAFETY: as in the propagation tests; `out` has 7 slots.
            unsafe {
                cxx::cxx_catch_keeps(stub, case.target, ret.ptr(), args, seed, out.as_mut_ptr())
            };
            assert_eq!(
                out[..6],
                cxx::keeps_expected(seed),
                "{} ({form:?})",
                case.name
            );
            assert_eq!(out[6], i64::from(case.throws), "{} ({form:?})", case.name);
        }
    }
}

// ------------------------------------------------- (c): closure thunks

struct ClosureCase {
    name: &'static str,
    cif: Cif,
    nargs: i32,
    /// Calls the code pointer inside try/catch with `base`-derived ints;
    /// returns what it caught.
    call: fn(*const c_void) -> i32,
    /// The ints `call` passes.
    passed: Vec<i32>,
}

fn closure_cases() -> Vec<ClosureCase> {
    let i32t = Type::i32;
    let big = Type::structure(vec![Type::i64(); 4]).unwrap();
    // SAFETY (every `call` below): the code pointer belongs to a closure
    // of the case's cif, which matches the C++ catcher's function pointer
    // type.
    vec![
        ClosureCase {
            name: "int(int, int)",
            cif: Cif::new(i32t(), &[i32t(), i32t()]).unwrap(),
            nargs: 2,
            call: |fp| unsafe { cxx::cxx_call_closure_catching(fp, 3, 4) },
            passed: vec![3, 4],
        },
        ClosureCase {
            name: "void(int)",
            cif: Cif::new(Type::void(), &[i32t()]).unwrap(),
            nargs: 1,
            call: |fp| unsafe { cxx::cxx_closure_void(fp, 8) },
            passed: vec![8],
        },
        ClosureCase {
            name: "int(10 x int): stack arguments",
            cif: Cif::new(i32t(), &vec![i32t(); 10]).unwrap(),
            nargs: 10,
            call: |fp| unsafe { cxx::cxx_closure_stack(fp, 20) },
            passed: (20..30).collect(),
        },
        ClosureCase {
            name: "Big(int): sret",
            cif: Cif::new(big, &[i32t()]).unwrap(),
            nargs: 1,
            call: |fp| unsafe { cxx::cxx_closure_sret(fp, 6) },
            passed: vec![6],
        },
        ClosureCase {
            name: "long double(int)",
            cif: Cif::new(Type::long_double(), &[i32t()]).unwrap(),
            nargs: 1,
            call: |fp| unsafe { cxx::cxx_closure_x87(fp, 12) },
            passed: vec![12],
        },
        ClosureCase {
            name: "double(int, int)",
            cif: Cif::new(Type::f64(), &[i32t(), i32t()]).unwrap(),
            nargs: 2,
            call: |fp| unsafe { cxx::cxx_closure_double(fp, -5, 9) },
            passed: vec![-5, 9],
        },
    ]
}

#[test]
fn exceptions_from_handlers_propagate_through_closure_thunks() {
    for (k, case) in closure_cases().into_iter().enumerate() {
        let mut data = HandlerData {
            nargs: case.nargs,
            bias: 100 * (k as i32 + 1),
        };
        let closure =
            RawClosure::new(&case.cif, cxx::cxx_throwing_handler, (&raw mut data).cast()).unwrap();
        let want = data.bias + weighted(case.passed.iter().copied());
        assert_eq!((case.call)(closure.code_ptr()), want, "{}", case.name);
        // And again: nothing was left behind by the first exception.
        assert_eq!(
            (case.call)(closure.code_ptr()),
            want,
            "{} (twice)",
            case.name
        );
    }
}

#[test]
fn a_closure_returns_normally_after_an_exception_went_through_its_thunk() {
    let cif = Cif::new(Type::i32(), &[Type::i32(), Type::i32()]).unwrap();
    let mut data = HandlerData { nargs: 2, bias: 1 };
    let thrower = RawClosure::new(&cif, cxx::cxx_throwing_handler, (&raw mut data).cast()).unwrap();
    let plain = RawClosure::new(&cif, cxx::cxx_returning_handler, (&raw mut data).cast()).unwrap();
    // SAFETY: both closures are int(int, int).
    unsafe {
        assert_eq!(cxx::cxx_call_closure_catching(thrower.code_ptr(), 2, 3), 9);
        assert_eq!(
            cxx::cxx_call_closure_catching(plain.code_ptr(), 2, 3),
            NOTHING
        );
        assert_eq!(cxx::cxx_closure_plain(plain.code_ptr(), 2, 3), 9);
    }
}

/// The Win64 thunk saves rsi, rdi and xmm6-xmm15 for its ms_abi caller and
/// describes the saves; the ms_abi catcher keeps integers in the registers
/// ms_abi makes callee-saved (gcc picks rbx, rbp, r12-r15) and doubles
/// across the call while the handler trashes rsi, rdi and xmm6-xmm15.
///
/// Note: libgcc's unwinder puts back only SysV's callee-saved registers
/// when it lands in a catch (rsi, rdi and xmm registers are left as the
/// unwinder had them, even for gcc's own ms_abi frames, whose saves it
/// describes the same way), and gcc's code accordingly reloads such values
/// from its frame on the exception path: what is checked is that the
/// catcher's values all come back.
#[cfg(target_arch = "x86_64")]
#[test]
fn win64_thunk_exceptions_keep_the_ms_abi_catchers_values() {
    let cif = Cif::with_abi(Abi::Win64, Type::i32(), &vec![Type::i32(); 5], None).unwrap();
    let mut data = HandlerData { nargs: 5, bias: 7 };
    let thrower = RawClosure::new(&cif, cxx::cxx_throwing_handler, (&raw mut data).cast()).unwrap();
    for seed in [3i64, -41, 1 << 40] {
        let mut out = [0i64; 15];
        // SAFETY: the closure is an ms_abi int(5 x int); out has 15 slots.
        unsafe { cxx::cxx_ms_closure_keeps(thrower.code_ptr(), seed, out.as_mut_ptr()) };
        assert_eq!(out[..14], cxx::ms_keeps_expected(seed), "seed {seed}");
        assert_eq!(out[14], i64::from(7 + weighted(1..6)));
    }
    // And a normal return still restores everything.
    let plain = RawClosure::new(&cif, cxx::cxx_returning_handler, (&raw mut data).cast()).unwrap();
    let mut out = [0i64; 15];
    // SAFETY: as above.
    unsafe { cxx::cxx_ms_closure_keeps(plain.code_ptr(), 5, out.as_mut_ptr()) };
    assert_eq!(out[..14], cxx::ms_keeps_expected(5));
    assert_eq!(out[14], i64::from(NOTHING));
}

// ------------------------------------------- the registered .eh_frame

#[repr(C)]
struct DwarfEhBases {
    tbase: *mut c_void,
    dbase: *mut c_void,
    func: *mut c_void,
}

#[repr(C)]
struct UnwindContext {
    _private: [u8; 0],
}

type TraceFn = extern "C" fn(*mut UnwindContext, *mut c_void) -> i32;

extern "C" {
    fn _Unwind_Find_FDE(pc: *mut c_void, bases: *mut DwarfEhBases) -> *const u8;
    fn _Unwind_Backtrace(trace: TraceFn, arg: *mut c_void) -> i32;
    fn _Unwind_GetIP(ctx: *mut UnwindContext) -> usize;
}

/// The FDE libgcc finds for `pc`, and the function start it reports.
fn find_fde(pc: usize) -> Option<(*const u8, usize)> {
    let mut bases = DwarfEhBases {
        tbase: ptr::null_mut(),
        dbase: ptr::null_mut(),
        func: ptr::null_mut(),
    };
    // SAFETY: a lookup; `bases` is a valid out-parameter.
    let fde = unsafe { _Unwind_Find_FDE(pc as *mut c_void, &mut bases) };
    (!fde.is_null()).then_some((fde, bases.func as usize))
}

/// One row of a decoded CFI table: from `at` on, the CFA is `cfa.0 +
/// cfa.1` (DWARF register numbers) and each register in `saved` is at
/// `CFA + offset`.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    at: u64,
    cfa: (u8, i64),
    saved: BTreeMap<u8, i64>,
}

/// An FDE decoded: where its code starts, how long it is, and its rows.
#[derive(Debug)]
struct Decoded {
    start: u64,
    len: u64,
    rows: Vec<Row>,
}

impl Decoded {
    fn at(&self, offset: u64) -> &Row {
        self.rows
            .iter()
            .rev()
            .find(|r| r.at <= offset)
            .expect("a row at offset 0")
    }
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        self.i += 1;
        self.b[self.i - 1]
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        self.i += N;
        self.b[self.i - N..self.i].try_into().unwrap()
    }
    fn uleb(&mut self) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = self.u8();
            v |= u64::from(b & 0x7F) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return v;
            }
        }
    }
    fn sleb(&mut self) -> i64 {
        let (mut v, mut shift) = (0i64, 0);
        loop {
            let b = self.u8();
            v |= i64::from(b & 0x7F) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    v |= -1 << shift;
                }
                return v;
            }
        }
    }
}

/// Decodes the FDE at `fde` (as libgcc returned it) and its CIE, checking
/// the CIE is the one `jitffi::unwind` documents.
fn decode(fde: *const u8) -> Decoded {
    // SAFETY: `fde` is a registered FDE: a length word and that many bytes.
    let fde_len = unsafe { ptr::read_unaligned(fde.cast::<u32>()) } as usize;
    // SAFETY: as above.
    let fde_bytes = unsafe { std::slice::from_raw_parts(fde, 4 + fde_len) };
    let back = u32::from_le_bytes(fde_bytes[4..8].try_into().unwrap()) as usize;
    // SAFETY: the CIE pointer leads back to the CIE of the same section.
    let cie = unsafe { fde.add(4).sub(back) };
    // SAFETY: the CIE is a length word and that many bytes.
    let cie_len = unsafe { ptr::read_unaligned(cie.cast::<u32>()) } as usize;
    // SAFETY: as above.
    let cie_bytes = unsafe { std::slice::from_raw_parts(cie, 4 + cie_len) };
    let mut c = Reader { b: cie_bytes, i: 4 };
    assert_eq!(c.bytes::<4>(), [0; 4], "CIE id");
    assert_eq!(c.u8(), 1, "version");
    assert_eq!(c.bytes::<3>(), *b"zR\0");
    assert_eq!(
        (c.uleb(), c.sleb(), c.u8()),
        (CODE_ALIGN, -8, RA),
        "alignment factors, return address column"
    );
    assert_eq!(c.uleb(), 1, "augmentation data: one byte");
    let pcrel = match c.u8() {
        0x1B => true,  // pcrel | sdata4
        0x00 => false, // absolute
        other => panic!("FDE pointer encoding {other:#x}"),
    };
    let initial = Row {
        at: 0,
        cfa: (0xFF, 0),
        saved: BTreeMap::new(),
    };
    let initial = run(&mut c, initial.clone(), &initial, vec![])
        .pop()
        .unwrap();
    assert_eq!(initial.cfa, ENTRY_CFA, "entry: the CFA");
    assert_eq!(
        initial.saved,
        entry_state(),
        "entry: the return address (x86-64: at CFA - 8; AArch64: in x30)"
    );

    let mut r = Reader { b: fde_bytes, i: 8 };
    let (start, len) = if pcrel {
        let field = fde as u64 + 8;
        let delta = i32::from_le_bytes(r.bytes::<4>());
        let len = u32::from_le_bytes(r.bytes::<4>());
        (field.wrapping_add_signed(delta.into()), u64::from(len))
    } else {
        let start = u64::from_le_bytes(r.bytes::<8>());
        (start, u64::from_le_bytes(r.bytes::<8>()))
    };
    assert_eq!(r.uleb(), 0, "no FDE augmentation data");
    let rows = run(&mut r, initial.clone(), &initial, vec![]);
    Decoded { start, len, rows }
}

/// Runs call frame instructions to the end of the reader, starting from
/// `row`; `rows` gets one row per location.
fn run(r: &mut Reader<'_>, mut row: Row, initial: &Row, mut rows: Vec<Row>) -> Vec<Row> {
    let advance = |row: &mut Row, rows: &mut Vec<Row>, by: u64| {
        rows.push(row.clone());
        row.at += by * CODE_ALIGN;
    };
    while r.i < r.b.len() {
        let op = r.u8();
        match (op >> 6, op & 0x3F) {
            (1, d) => advance(&mut row, &mut rows, d.into()),
            (2, reg) => {
                let off = r.uleb() as i64 * -8;
                row.saved.insert(reg, off);
            }
            (3, reg) => match initial.saved.get(&reg) {
                Some(&o) => drop(row.saved.insert(reg, o)),
                None => drop(row.saved.remove(&reg)),
            },
            (0, 0x00) => {}
            (0, 0x02) => {
                let d = r.u8();
                advance(&mut row, &mut rows, d.into())
            }
            (0, 0x03) => {
                let d = u16::from_le_bytes(r.bytes::<2>());
                advance(&mut row, &mut rows, d.into())
            }
            (0, 0x04) => {
                let d = u32::from_le_bytes(r.bytes::<4>());
                advance(&mut row, &mut rows, d.into())
            }
            (0, 0x05) => {
                let reg = r.uleb() as u8;
                let off = r.uleb() as i64 * -8;
                row.saved.insert(reg, off);
            }
            (0, 0x06) => {
                let reg = r.uleb() as u8;
                row.saved.remove(&reg);
            }
            (0, 0x0C) => row.cfa = (r.uleb() as u8, r.uleb() as i64),
            (0, 0x0D) => row.cfa.0 = r.uleb() as u8,
            (0, 0x0E) => row.cfa.1 = r.uleb() as i64,
            (0, 0x11) => {
                let reg = r.uleb() as u8;
                let off = r.sleb() * -8;
                row.saved.insert(reg, off);
            }
            (0, 0x12) => row.cfa = (r.uleb() as u8, r.sleb() * -8),
            other => panic!("unexpected call frame instruction {other:?}"),
        }
    }
    rows.push(row);
    // Rows for the same location: the last wins.
    rows.dedup_by(|later, earlier| {
        if later.at == earlier.at {
            *earlier = later.clone();
            true
        } else {
            false
        }
    });
    rows
}

/// The code bytes at `at`.
fn code(at: usize, len: usize) -> Vec<u8> {
    // SAFETY: published code stays mapped (readable) for the process's life.
    unsafe { std::slice::from_raw_parts(at as *const u8, len).to_vec() }
}

fn position(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("instruction present")
}

// DWARF numbers, and what the CIE says.
#[cfg(target_arch = "x86_64")]
mod dwarf {
    pub const RBX: u8 = 3;
    pub const RSI: u8 = 4;
    pub const RDI: u8 = 5;
    pub const RBP: u8 = 6;
    pub const RSP: u8 = 7;
    pub const R12: u8 = 12;
    pub const RIP: u8 = 16;
    pub const RA: u8 = RIP;
    pub const CODE_ALIGN: u64 = 1;
    /// CFA = rsp + 8 at a function's first instruction.
    pub const ENTRY_CFA: (u8, i64) = (RSP, 8);
    /// The return address at CFA - 8.
    pub const RA_AT_ENTRY: Option<i64> = Some(-8);
}
#[cfg(target_arch = "aarch64")]
mod dwarf {
    pub const X29: u8 = 29;
    pub const X30: u8 = 30;
    pub const SP: u8 = 31;
    pub const RA: u8 = X30;
    pub const CODE_ALIGN: u64 = 4;
    /// CFA = sp at a function's first instruction.
    pub const ENTRY_CFA: (u8, i64) = (SP, 0);
    /// The return address is still in x30.
    pub const RA_AT_ENTRY: Option<i64> = None;
}
use dwarf::*;

fn entry_state() -> BTreeMap<u8, i64> {
    RA_AT_ENTRY.map(|at| (RA, at)).into_iter().collect()
}

/// Instruction words as AArch64 code bytes.
#[cfg(target_arch = "aarch64")]
fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|w| w.to_le_bytes()).collect()
}
#[cfg(target_arch = "aarch64")]
mod a64 {
    pub const MOV_FP_SP: u32 = 0x9100_03FD; // mov x29, sp
    pub const MOV_SP_FP: u32 = 0x9100_03BF; // mov sp, x29
    pub const RET: u32 = 0xD65F_03C0;
    pub const NOP: u32 = 0xD503_201F;
    pub const BLR_X9: u32 = 0xD63F_0120;
    pub const BR_X9: u32 = 0xD61F_0120;

    /// `stp x29, x30, [sp, #-total]!`
    pub fn stp_frame(total: u32) -> u32 {
        0xA980_7BFD | ((total.wrapping_neg() / 8) & 0x7F) << 15
    }

    /// `ldp x29, x30, [sp], #total`
    pub fn ldp_frame(total: u32) -> u32 {
        0xA8C0_7BFD | ((total / 8) & 0x7F) << 15
    }

    /// The size of the frame `code` starts by pushing: the record alone
    /// (16; the locals come below it) or the record and the locals (gcc's
    /// shape, one `stp` for both).
    pub fn frame_total(code: &[u8]) -> u32 {
        let first = u32::from_le_bytes(code[..4].try_into().unwrap());
        let imm7 = ((first >> 15) & 0x7F) as u8;
        let total = (i32::from((imm7 << 1) as i8) * -4) as u32;
        assert_eq!(
            first,
            stp_frame(total),
            "stp x29, x30, [sp, #-n]! first: {first:#010x}"
        );
        total
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn a_framed_stubs_registered_entry_describes_its_frame() {
    let cif = Cif::new(Type::i32(), &[Type::i32()]).unwrap();
    let stub = cif.raw_entry() as usize;
    let (fde, func) = find_fde(stub + 10).expect("the stub's FDE is registered");
    assert_eq!(func, stub);
    let d = decode(fde);
    assert_eq!(d.start as usize, stub);
    let want = emit::compile_call(cif.plan(), EntryForm::Libffi).unwrap();
    assert_eq!(
        d.len as usize,
        want.len(),
        "the FDE covers exactly the stub"
    );
    let bytes = code(stub, want.len());
    assert_eq!(bytes, want);

    // endbr64, push rbp, mov rbp rsp, push rbx, push r12.
    assert_eq!(&bytes[4..11], [0x55, 0x48, 0x89, 0xE5, 0x53, 0x41, 0x54]);
    type Flat = (u64, (u8, i64), Vec<(u8, i64)>);
    let rows: Vec<Flat> = d
        .rows
        .iter()
        .take(5)
        .map(|r| (r.at, r.cfa, r.saved.iter().map(|(&k, &v)| (k, v)).collect()))
        .collect();
    assert_eq!(
        rows,
        [
            (0, (RSP, 8), vec![(RIP, -8)]),
            (5, (RSP, 16), vec![(RBP, -16), (RIP, -8)]),
            (8, (RBP, 16), vec![(RBP, -16), (RIP, -8)]),
            (9, (RBP, 16), vec![(RBX, -24), (RBP, -16), (RIP, -8)]),
            (
                11,
                (RBP, 16),
                vec![(RBX, -24), (RBP, -16), (R12, -32), (RIP, -8)]
            ),
        ]
    );
    // During the call (call r12) the whole frame is described.
    let call = position(&bytes, &[0x41, 0xFF, 0xD4]) as u64;
    let during = d.at(call + 2);
    assert_eq!(during.cfa, (RBP, 16));
    assert_eq!(
        during.saved,
        BTreeMap::from([(RBX, -24), (RBP, -16), (R12, -32), (RIP, -8)])
    );
    // pop r12 (41 5C), pop rbx (5B), pop rbp (5D), ret: back to the entry state.
    let n = bytes.len() as u64;
    assert_eq!(bytes[bytes.len() - 5..], [0x41, 0x5C, 0x5B, 0x5D, 0xC3]);
    assert_eq!(d.at(n - 3).saved.get(&R12), None, "after pop r12");
    assert_eq!(d.at(n - 3).saved.get(&RBX), Some(&-24), "before pop rbx");
    assert_eq!(d.at(n - 2).saved.get(&RBX), None, "after pop rbx");
    let last = d.at(n - 1);
    assert_eq!(
        (last.cfa, &last.saved),
        ((RSP, 8), &entry_state()),
        "at ret"
    );
}

/// The frame of the conventions: `stp x29, x30, [sp, #-n]!; mov x29,
/// sp; ...; [mov sp, x29;] ldp x29, x30, [sp], #n; ret`, with the CFA on
/// x29 from the `mov x29, sp` on (through the call) and the entry state
/// back after the `ldp`. (n is 16 when the locals are allocated below the
/// record and taken down by `mov sp, x29`; the record and locals together
/// otherwise.)
#[cfg(target_arch = "aarch64")]
#[test]
fn a_framed_stubs_registered_entry_describes_its_frame() {
    use a64::*;
    for (ret, form) in [
        (Type::i32(), EntryForm::Libffi),
        (Type::f64(), EntryForm::Libffi),
        (Type::i64(), EntryForm::Packed), // with stack arguments
    ] {
        let args = match form {
            EntryForm::Libffi => vec![Type::i32()],
            EntryForm::Packed => vec![Type::i64(); 10],
        };
        let cif = Cif::new(ret, &args).unwrap();
        let stub = match form {
            EntryForm::Libffi => cif.raw_entry() as usize,
            EntryForm::Packed => cif.packed_entry() as usize,
        };
        let (fde, func) = find_fde(stub + 8).expect("the stub's FDE is registered");
        assert_eq!(func, stub);
        let d = decode(fde);
        assert_eq!(d.start as usize, stub);
        let want = emit::compile_call(cif.plan(), form).unwrap();
        assert_eq!(
            d.len as usize,
            want.len(),
            "the FDE covers exactly the stub"
        );
        let bytes = code(stub, want.len());
        assert_eq!(bytes, want);
        let t = frame_total(&bytes);
        assert_eq!(bytes[4..8], MOV_FP_SP.to_le_bytes());
        type Flat = (u64, (u8, i64), Vec<(u8, i64)>);
        let rows: Vec<Flat> = d
            .rows
            .iter()
            .take(3)
            .map(|r| (r.at, r.cfa, r.saved.iter().map(|(&k, &v)| (k, v)).collect()))
            .collect();
        let n = i64::from(t);
        let record = vec![(X29, -n), (X30, 8 - n)];
        assert_eq!(
            rows,
            [
                (0, (SP, 0), vec![]),
                (4, (SP, n), record.clone()),
                (8, (X29, n), record),
            ],
            "{form:?}"
        );
        // While the target runs (its return address is right after blr x9)
        // the whole frame is described.
        let record = BTreeMap::from([(X29, -n), (X30, 8 - n)]);
        let call = position(&bytes, &BLR_X9.to_le_bytes()) as u64;
        let during = d.at(call + 4);
        assert_eq!((during.cfa, &during.saved), ((X29, n), &record));
        // [mov sp, x29;] ldp; ret: back to the entry state at the ret.
        let len = bytes.len() as u64;
        assert_eq!(bytes[bytes.len() - 8..], words(&[ldp_frame(t), RET]));
        let at_ldp = d.at(len - 8);
        assert_eq!(at_ldp.saved, record);
        if bytes[bytes.len() - 12..bytes.len() - 8] == MOV_SP_FP.to_le_bytes() {
            assert_eq!(t, 16, "mov sp, x29 takes down the locals below the record");
            assert_eq!(d.at(len - 12).cfa, (X29, n));
            assert_eq!(at_ldp.cfa, (SP, n));
        } else {
            // sp and x29 are the same there.
            assert!([(SP, n), (X29, n)].contains(&at_ldp.cfa));
        }
        let last = d.at(len - 4);
        assert_eq!((last.cfa, &last.saved), ((SP, 0), &entry_state()), "at ret");
    }
}

#[test]
fn a_tail_stub_keeps_the_entry_state_throughout() {
    let cif = Cif::new(Type::i32(), &[Type::i32(), Type::i32()]).unwrap();
    let stub = cif.packed_entry() as usize;
    let want = emit::compile_call(cif.plan(), EntryForm::Packed).unwrap();
    #[cfg(target_arch = "x86_64")]
    assert!(
        want.ends_with(&[0xFF, 0x64, 0x24, 0xF8]),
        "jmp [rsp-8]: a tail stub"
    );
    #[cfg(target_arch = "aarch64")]
    assert!(
        want.ends_with(&a64::BR_X9.to_le_bytes()),
        "br x9: a tail stub"
    );
    let (fde, _) = find_fde(stub + want.len() - 1).expect("registered");
    let d = decode(fde);
    assert_eq!((d.start as usize, d.len as usize), (stub, want.len()));
    assert_eq!(d.rows.len(), 1);
    assert_eq!(
        (d.rows[0].cfa, &d.rows[0].saved),
        (ENTRY_CFA, &entry_state())
    );
}

/// The Win64 thunk's saves: rsi and rdi, and xmm6-xmm15 in 16-aligned
/// slots, each described from the store that made it (whose displacement
/// the slot matches) to the reload after the handler call.
#[cfg(target_arch = "x86_64")]
#[test]
fn the_win64_thunks_entry_describes_its_register_saves() {
    let c = cache::lookup(Abi::Win64, &Type::i32(), &vec![Type::i32(); 5], None).unwrap();
    let thunk = c.closure_thunk().unwrap() as usize;
    let want = emit::compile_closure_thunk(&c.plan).unwrap();
    let (fde, func) = find_fde(thunk + 20).expect("the thunk's FDE is registered");
    assert_eq!(func, thunk);
    let d = decode(fde);
    assert_eq!(d.len as usize, want.len());
    let bytes = code(thunk, want.len());
    assert_eq!(bytes, want);
    // endbr64; push rbp; mov rbp, rsp; sub rsp, size (imm8 or imm32).
    assert_eq!(bytes[4..8], [0x55, 0x48, 0x89, 0xE5]);
    let size = match bytes[8..11] {
        [0x48, 0x83, 0xEC] => i64::from(bytes[11]),
        [0x48, 0x81, 0xEC] => i64::from(i32::from_le_bytes(bytes[11..15].try_into().unwrap())),
        _ => panic!("no frame allocation at offset 8: {:02x?}", &bytes[8..15]),
    };
    let call = position(&bytes, &[0x41, 0xFF, 0xD2]) as u64; // call r10
    let during = d.at(call);
    assert_eq!(during.cfa, (RBP, 16));
    let xmm: Vec<u8> = (23..=32).collect(); // xmm6-xmm15
    for reg in xmm.iter().copied().chain([RSI, RDI]) {
        let off = *during
            .saved
            .get(&reg)
            .unwrap_or_else(|| panic!("register {reg} not described"));
        if reg >= 17 {
            assert_eq!(off % 16, 0, "xmm slot of {reg} 16-aligned");
        }
        // The row that introduced the save starts right after the store,
        // whose displacement from rsp is the slot's.
        let row = d
            .rows
            .iter()
            .find(|r| r.saved.get(&reg) == Some(&off))
            .unwrap();
        let disp = off + 16 + size;
        let end = row.at as usize;
        let tail_matches = match i8::try_from(disp) {
            Ok(d8) => bytes[end - 1] == d8 as u8,
            Err(_) => bytes[end - 4..end] == (disp as i32).to_le_bytes(),
        };
        assert!(
            tail_matches,
            "register {reg}: store ending at {end} does not address rsp+{disp}"
        );
    }
    // The reloads come after the call; at the ret, the entry state.
    let last = d.at(bytes.len() as u64 - 1);
    assert_eq!((last.cfa, &last.saved), ((RSP, 8), &entry_state()));
    let after: Vec<&Row> = d.rows.iter().filter(|r| r.at > call).collect();
    assert!(
        after.iter().any(|r| !r.saved.contains_key(&23)),
        "xmm6 reload described"
    );
}

#[test]
fn unregistered_code_has_no_entry_and_registered_code_does() {
    let host = Arch::host().unwrap();
    // endbr64; ret, or nop; ret.
    #[cfg(target_arch = "x86_64")]
    let (two, ret) = (vec![0xF3, 0x0F, 0x1E, 0xFA, 0xC3], vec![0xC3]);
    #[cfg(target_arch = "aarch64")]
    let (two, ret) = (words(&[a64::NOP, a64::RET]), words(&[a64::RET]));
    let len = two.len();
    // Published straight into code memory, no unwind registration.
    let at = memory::publish(&two).unwrap() as usize;
    assert!(find_fde(at + len - 1).is_none());
    // Registered on its own (the section in memory of its own); not as
    // another architecture's code.
    let code = emit::Code {
        bytes: code(at, len),
        frame: Vec::new(),
    };
    let foreign = match host {
        Arch::X86_64 => Arch::Aarch64,
        Arch::Aarch64 => Arch::X86_64,
    };
    assert!(unwind::register(foreign, &[(at, &code)]).is_err());
    assert!(unwind::register_frameless(foreign, at, len).is_err());
    assert!(find_fde(at + len - 1).is_none());
    unwind::register(host, &[(at, &code)]).unwrap();
    let (fde, func) = find_fde(at + len - 1).expect("registered now");
    assert_eq!(func, at);
    let d = decode(fde);
    assert_eq!((d.start as usize, d.len as usize), (at, len));
    assert_eq!(
        (d.rows[0].cfa, &d.rows[0].saved),
        (ENTRY_CFA, &entry_state())
    );
    // A frameless range, as closure trampolines are described.
    let tramp = memory::publish(&ret.repeat(48 / ret.len())).unwrap() as usize;
    assert!(find_fde(tramp + 47).is_none());
    unwind::register_frameless(host, tramp, 48).unwrap();
    let (fde, func) = find_fde(tramp + 47).expect("registered now");
    let d = decode(fde);
    assert_eq!(
        (func, d.start as usize, d.len, d.rows.len()),
        (tramp, tramp, 48, 1)
    );
    assert_eq!(
        (d.rows[0].cfa, &d.rows[0].saved),
        (ENTRY_CFA, &entry_state())
    );
    let c =
        cache::compile_uncached(Abi::host(), &Type::f64(), &vec![Type::f64(); 9], None).unwrap();
    assert!(find_fde(c.raw_entry as usize).is_some());
    assert!(find_fde(c.packed_entry as usize).is_some());
}

#[test]
fn chain_stubs_and_go_thunks_are_registered_too() {
    let c = cache::lookup(Abi::host(), &Type::i64(), &vec![Type::i64(); 8], None).unwrap();
    let chain = c.chain_entry().unwrap() as usize;
    let go = c.go_closure_thunk().unwrap() as usize;
    for at in [chain, go] {
        let (fde, func) = find_fde(at + 8).expect("registered");
        assert_eq!(func, at);
        let d = decode(fde);
        let bytes = code(at, d.len as usize);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(bytes[4], 0x55, "push rbp");
            assert_eq!(d.at(6).cfa, (RSP, 16));
            assert_eq!(d.at(9).cfa, (RBP, 16));
        }
        #[cfg(target_arch = "aarch64")]
        {
            let n = i64::from(a64::frame_total(&bytes));
            assert_eq!(bytes[4..8], a64::MOV_FP_SP.to_le_bytes());
            assert_eq!(d.at(4).cfa, (SP, n));
            assert_eq!(d.at(8).cfa, (X29, n));
        }
        let last = d.at(d.len - 1);
        assert_eq!((last.cfa, &last.saved), (ENTRY_CFA, &entry_state()));
    }
}

// ------------------------------------------------------------- backtraces

thread_local! {
    static TRACE: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
    static STD_TRACE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

extern "C" fn collect(ctx: *mut UnwindContext, _: *mut c_void) -> i32 {
    // SAFETY: `ctx` is the live context libgcc hands its callback.
    let ip = unsafe { _Unwind_GetIP(ctx) };
    TRACE.with(|t| t.borrow_mut().push(ip));
    0 // _URC_NO_REASON: keep going
}

/// Called through a stub: walks the stack from here.
extern "C" fn traced(x: i64) -> i64 {
    TRACE.with(|t| t.borrow_mut().clear());
    // SAFETY: `collect` only reads the context.
    unsafe { _Unwind_Backtrace(collect, ptr::null_mut()) };
    let bt = std::backtrace::Backtrace::force_capture();
    STD_TRACE.with(|s| *s.borrow_mut() = format!("{bt}"));
    x + 1
}

#[inline(never)]
fn caller_above_the_stub(cif: &Cif) -> i64 {
    let x = 41i64;
    let mut r = 0i64;
    let avalue = [(&raw const x).cast::<c_void>()];
    // SAFETY: `traced` is int64_t(int64_t). The stub is called from here
    // (not through `Cif::call_raw`) so this function is the frame above it.
    unsafe {
        cif.raw_entry()(
            traced as *const c_void,
            (&raw mut r).cast(),
            avalue.as_ptr(),
        )
    };
    std::hint::black_box(r)
}

#[test]
fn backtraces_walk_through_a_stub() {
    let cif = Cif::new(Type::i64(), &[Type::i64()]).unwrap();
    assert_eq!(caller_above_the_stub(&cif), 42);
    let stub = cif.raw_entry() as usize;
    let len = emit::compile_call(cif.plan(), EntryForm::Libffi)
        .unwrap()
        .len();
    let ips = TRACE.with(|t| t.borrow().clone());
    let k = ips
        .iter()
        .position(|&ip| (stub..stub + len).contains(&ip))
        .unwrap_or_else(|| panic!("the stub's frame is not in the trace {ips:x?}"));
    // The frame above the stub returns into caller_above_the_stub.
    let caller = caller_above_the_stub as fn(&Cif) -> i64 as usize;
    let above = *ips.get(k + 1).expect("the walk went past the stub");
    assert!(
        (caller..caller + 4096).contains(&above),
        "frame above the stub at {above:#x}, caller at {caller:#x}"
    );
    assert!(
        ips.len() > k + 3,
        "the walk reaches the test harness: {ips:x?}"
    );
    let text = STD_TRACE.with(|s| s.borrow().clone());
    assert!(
        text.contains("caller_above_the_stub"),
        "std's backtrace:\n{text}"
    );
    assert!(
        text.contains("backtraces_walk_through_a_stub"),
        "std's backtrace:\n{text}"
    );
}

/// A raw handler of `int64_t(int64_t)` that walks the stack from inside
/// the closure call.
unsafe extern "C" fn tracing_handler(
    _cif: *const c_void,
    ret: *mut c_void,
    args: *const *mut c_void,
    _user_data: *mut c_void,
) {
    TRACE.with(|t| t.borrow_mut().clear());
    // SAFETY: `collect` only reads the context.
    unsafe { _Unwind_Backtrace(collect, ptr::null_mut()) };
    // SAFETY: one int64_t argument; the return buffer holds an int64_t.
    unsafe {
        ret.cast::<i64>()
            .write(args.read().cast::<i64>().read() + 1)
    };
}

#[inline(never)]
fn caller_above_the_thunk(code: *const c_void) -> i64 {
    // SAFETY: the code pointer of an int64_t(int64_t) closure.
    let f = unsafe { std::mem::transmute::<*const c_void, extern "C" fn(i64) -> i64>(code) };
    std::hint::black_box(f(std::hint::black_box(41)))
}

/// The thunk is entered by a jump from its slot's trampoline, so the
/// frame above it is the closure's caller.
#[test]
fn backtraces_walk_through_a_closure_thunk() {
    let (ret, args) = (Type::i64(), [Type::i64()]);
    let cif = Cif::new(ret.clone(), &args).unwrap();
    let closure = RawClosure::new(&cif, tracing_handler, ptr::null_mut()).unwrap();
    assert_eq!(caller_above_the_thunk(closure.code_ptr()), 42);
    let compiled = cache::lookup(Abi::host(), &ret, &args, None).unwrap();
    let thunk = compiled.closure_thunk().unwrap() as usize;
    let len = emit::compile_closure_thunk(&compiled.plan).unwrap().len();
    let ips = TRACE.with(|t| t.borrow().clone());
    let k = ips
        .iter()
        .position(|&ip| (thunk..thunk + len).contains(&ip))
        .unwrap_or_else(|| panic!("the thunk's frame is not in the trace {ips:x?}"));
    let caller = caller_above_the_thunk as fn(*const c_void) -> i64 as usize;
    let above = *ips.get(k + 1).expect("the walk went past the thunk");
    assert!(
        (caller..caller + 4096).contains(&above),
        "frame above the thunk at {above:#x}, caller at {caller:#x}"
    );
    assert!(
        ips.len() > k + 3,
        "the walk reaches the test harness: {ips:x?}"
    );
}

// ------------------------------------ targets that keep no register at all

/// Stubs for x86-64 targets whose ABI keeps no register (the AArch64
/// emitter wraps AAPCS64 targets only, and refuses such plans).
#[cfg(target_arch = "x86_64")]
mod wrecker {
    use super::*;
    use jitffi::classify::classify;
    use jitffi::emit::FrameChange;
    use jitffi::plan::Loc;

    /// A libffi-form stub of `void(void (*)(int), int)` for a target that
    /// keeps none of SysV's callee-saved registers: it pushes r13-r15 as well,
    /// and finds its frame from rsp while the target runs (rbp may be garbage
    /// then). Published on its own and registered through `unwind::register`.
    fn wrecker_stub() -> (usize, usize) {
        static STUB: std::sync::OnceLock<(usize, usize)> = std::sync::OnceLock::new();
        *STUB.get_or_init(|| {
            let mut plan = classify(
                Abi::SysV64,
                &Type::void(),
                &[Type::pointer(), Type::i32()],
                None,
            )
            .unwrap();
            plan.callee_saved.clear();
            let code = emit::compile_call_with_unwind(&plan, EntryForm::Libffi).unwrap();
            let rsp_based = code.frame.iter().any(
                |s| matches!(s.change, FrameChange::Cfa { reg: Loc::Gpr(4), offset } if offset > 16),
            );
            assert!(
                rsp_based,
                "the CFA is rsp-based during the call: {:?}",
                code.frame
            );
            let at = memory::publish(&code.bytes).unwrap() as usize;
            unwind::register(plan.arch, &[(at, &code)]).unwrap();
            (at, code.bytes.len())
        })
    }

    #[test]
    fn exceptions_through_a_target_that_wrecks_every_register() {
        let (stub, _) = wrecker_stub();
        // SAFETY: the stub has the libffi-form entry signature.
        let stub = unsafe { std::mem::transmute::<usize, StubFn>(stub) };
        let then = cxx::cxx_throw_int as *const c_void;
        for v in [5i32, -90] {
            let args = [(&raw const then).cast::<c_void>(), (&raw const v).cast()];
            let mut out = [0i64; 7];
            // SAFETY: cxx_wrecker is void(void (*)(int), int) and calls then(v),
            // which throws v; `out` has 7 slots.
            unsafe {
                cxx::cxx_catch_keeps(
                    stub,
                    cxx::cxx_wrecker as *const c_void,
                    ptr::null_mut(),
                    args.as_ptr().cast(),
                    i64::from(v),
                    out.as_mut_ptr(),
                )
            };
            assert_eq!(out[..6], cxx::keeps_expected(i64::from(v)));
            assert_eq!(out[6], i64::from(v));
        }
    }

    extern "C" fn trace_here(_: i32) {
        TRACE.with(|t| t.borrow_mut().clear());
        // SAFETY: `collect` only reads the context.
        unsafe { _Unwind_Backtrace(collect, ptr::null_mut()) };
    }

    #[inline(never)]
    fn caller_above_the_wrecker_stub(stub: usize) {
        let then = trace_here as *const c_void;
        let v = 0i32;
        let args = [(&raw const then).cast::<c_void>(), (&raw const v).cast()];
        // SAFETY: as in the exception test; `trace_here` returns normally and
        // the stub puts back every register cxx_wrecker trashed.
        unsafe {
            let stub = std::mem::transmute::<usize, StubFn>(stub);
            stub(
                cxx::cxx_wrecker as *const c_void,
                ptr::null_mut(),
                args.as_ptr().cast(),
            );
        }
        std::hint::black_box(());
    }

    #[test]
    fn backtraces_walk_through_a_stub_whose_target_wrecked_rbp() {
        let (stub, len) = wrecker_stub();
        caller_above_the_wrecker_stub(stub);
        let ips = TRACE.with(|t| t.borrow().clone());
        let k = ips
            .iter()
            .position(|&ip| (stub..stub + len).contains(&ip))
            .unwrap_or_else(|| panic!("the stub's frame is not in the trace {ips:x?}"));
        let caller = caller_above_the_wrecker_stub as fn(usize) as usize;
        let above = *ips.get(k + 1).expect("the walk went past the stub");
        assert!(
            (caller..caller + 4096).contains(&above),
            "frame above the stub at {above:#x}, caller at {caller:#x}"
        );
    }
}
