//! Calls real libc and libm functions through jitffi, with signatures built
//! at run time, and prints what came back.
//!
//! `cargo run --release --example quickstart`

use std::ffi::{c_char, c_void, CStr};

use jitffi::{Arg, Cif, Closure, Type};

extern "C" {
    fn strlen(s: *const c_char) -> usize;
    fn pow(x: f64, y: f64) -> f64;
    fn labs(x: i64) -> i64;
    fn div(num: i32, den: i32) -> DivT;
    fn snprintf(buf: *mut c_char, n: usize, fmt: *const c_char, ...) -> i32;
    fn ldexpl(); // long double ldexpl(long double, int)
    fn qsort(
        base: *mut c_void,
        n: usize,
        size: usize,
        cmp: extern "C" fn(*const c_void, *const c_void) -> i32,
    );
}

/// C's `div_t`: returned in a register (rax), by value.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct DivT {
    quot: i32,
    rem: i32,
}

fn main() -> Result<(), jitffi::Error> {
    // size_t strlen(const char *)
    let cif = Cif::new(Type::u64(), &[Type::pointer()])?;
    let s = c"hello, jitffi".as_ptr();
    // SAFETY: strlen has exactly this signature; `s` is a valid C string.
    let n: u64 = unsafe { cif.call(strlen as *const c_void, &[Arg::new(&s)])? };
    println!("strlen(\"hello, jitffi\") = {n}");

    // double pow(double, double)
    let cif = Cif::new(Type::f64(), &[Type::f64(), Type::f64()])?;
    // SAFETY: pow has exactly this signature.
    let p: f64 = unsafe {
        cif.call(
            pow as *const c_void,
            &[Arg::new(&2.0f64), Arg::new(&10.0f64)],
        )?
    };
    println!("pow(2, 10) = {p}");

    // long labs(long): the same shape as any int64(int64) function shares one stub.
    let cif = Cif::new(Type::i64(), &[Type::i64()])?;
    // SAFETY: labs has exactly this signature.
    let a: i64 = unsafe { cif.call(labs as *const c_void, &[Arg::new(&-42i64)])? };
    println!("labs(-42) = {a}");

    // div_t div(int, int): a struct returned in registers.
    let div_t = Type::structure([Type::i32(), Type::i32()])?;
    let cif = Cif::new(div_t, &[Type::i32(), Type::i32()])?;
    let (num, den) = (47i32, 5i32);
    let avalue = [
        (&num as *const i32).cast::<c_void>(),
        (&den as *const i32).cast::<c_void>(),
    ];
    let mut q = DivT::default();
    // SAFETY: div has this signature; `q` is a div_t-sized return buffer.
    unsafe {
        cif.call_raw(
            div as *const c_void,
            (&mut q as *mut DivT).cast(),
            avalue.as_ptr(),
        )
    };
    println!("div(47, 5) = {{ quot: {}, rem: {} }}", q.quot, q.rem);

    // int snprintf(char *, size_t, const char *, ...) called with (double, int, long double).
    let cif = Cif::new_variadic(
        Type::i32(),
        &[Type::pointer(), Type::u64(), Type::pointer()],
        &[Type::f64(), Type::i32(), Type::long_double()],
    )?;
    let mut buf = [0u8; 64];
    let (bufp, len) = (buf.as_mut_ptr(), buf.len() as u64);
    let fmt = c"%.3f and %d and %.2Lf".as_ptr();
    let x = std::f64::consts::PI;
    let k = 7i32;
    // An x87 long double 2.5: 64-bit mantissa with explicit integer bit, exponent 0x4000.
    let mut ld = [0u8; 16];
    ld[..8].copy_from_slice(&0xA000_0000_0000_0000u64.to_le_bytes());
    ld[8..10].copy_from_slice(&0x4000u16.to_le_bytes());
    let avalue = [
        (&bufp as *const *mut u8).cast::<c_void>(),
        (&len as *const u64).cast(),
        (&fmt as *const *const c_char).cast(),
        (&x as *const f64).cast(),
        (&k as *const i32).cast(),
        ld.as_ptr().cast(),
    ];
    let mut written = 0u64;
    // SAFETY: snprintf is called with the argument types the cif and the format describe.
    unsafe {
        cif.call_raw(
            snprintf as *const c_void,
            (&mut written as *mut u64).cast(),
            avalue.as_ptr(),
        )
    };
    // SAFETY: snprintf wrote a NUL-terminated string into `buf`.
    let text = unsafe { CStr::from_ptr(buf.as_ptr().cast()) };
    println!("snprintf -> {:?} ({} bytes)", text, written as i32);

    // long double ldexpl(long double, int): the result comes back in x87 st0.
    let cif = Cif::new(Type::long_double(), &[Type::long_double(), Type::i32()])?;
    let e = 3i32;
    let avalue = [ld.as_ptr().cast::<c_void>(), (&e as *const i32).cast()];
    let mut out = [0u8; 16];
    // SAFETY: ldexpl has this signature; `out` is a 16-byte long double slot.
    unsafe {
        cif.call_raw(
            ldexpl as *const c_void,
            out.as_mut_ptr().cast(),
            avalue.as_ptr(),
        )
    };
    println!("ldexpl(2.5L, 3) = {}", x87_to_f64(&out));

    // A closure as a C callback: qsort calls a Rust closure through a native
    // int (*)(const void *, const void *) that jitffi compiled.
    let cmp_cif = Cif::new(Type::i32(), &[Type::pointer(), Type::pointer()])?;
    let by_abs = Closure::new(&cmp_cif, |args, ret| {
        // SAFETY: qsort passes pointers to elements of the i32 array below.
        let (a, b) = unsafe { (*args.get::<*const i32>(0), *args.get::<*const i32>(1)) };
        ret.set(a.abs().cmp(&b.abs()) as i32);
    })?;
    let mut values = [7i32, -3, 12, -1, 0, -9, 4];
    // SAFETY: the closure has exactly qsort's comparator signature and
    // outlives the call; the array holds `values.len()` i32s.
    unsafe {
        qsort(
            values.as_mut_ptr().cast(),
            values.len(),
            std::mem::size_of::<i32>(),
            by_abs.as_fn(),
        )
    };
    println!("qsort by |x| with a jitffi closure: {values:?}");

    println!(
        "{} signature shapes compiled and cached",
        jitffi::cache::len()
    );
    Ok(())
}

/// Converts an x87 80-bit extended value (normal numbers) to f64 for printing.
fn x87_to_f64(b: &[u8; 16]) -> f64 {
    let mantissa = u64::from_le_bytes(b[..8].try_into().unwrap_or_default());
    let se = u16::from_le_bytes([b[8], b[9]]);
    let sign = if se & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from(se & 0x7fff) - 16383;
    sign * (mantissa as f64 / (1u64 << 63) as f64) * 2f64.powi(exp)
}
