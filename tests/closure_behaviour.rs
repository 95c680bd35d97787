//! How closures behave beyond the bytes of one call: the typed `Args` /
//! `Ret` API for every `CType`, aborts with clear messages (type mismatches,
//! panics, re-entered `new_mut` handlers, freed closures; each in a child
//! process), re-entrancy and deep recursion, `new_mut` state, many threads
//! creating, calling and dropping closures, W^X with many closures alive,
//! and the release of a closure's state on drop.
#![cfg(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_os = "linux"
))]

use std::cell::Cell;
use std::ffi::c_void;
use std::fmt::Debug;
use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use jitffi::closure::{Args, Ret};
use jitffi::memory;
use jitffi::{Arg, CType, Cif, Closure, RawClosure};
use jitffi_oracle::oracles::{self, CallFn};

#[path = "support/shapes.rs"]
mod shapes;
use shapes::*;

#[path = "support/maps.rs"]
mod maps;

#[path = "support/child.rs"]
mod child;

// ---------------------------------------------------------- child runs

/// Set in a child process to the name of the test it runs.
const CHILD_ENV: &str = "JITFFI_CLOSURE_BEHAVIOUR_CHILD";

/// In the child spawned for `test`, runs `body` (which should abort the
/// process; if it returns, the child's test passes and exits 0, which the
/// parent reports). In the parent, re-runs this test binary on `test`
/// alone, in a child process, and returns what it printed.
fn in_child(test: &str, body: impl FnOnce()) -> Option<Output> {
    if std::env::var(CHILD_ENV).as_deref() == Ok(test) {
        body();
        return None;
    }
    let out = child::self_command()
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("spawning the test binary");
    Some(out)
}

/// The child died of SIGABRT after printing every one of `needles`.
fn assert_aborted_with(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("running 1 test"),
        "the child ran no test (wrong name?):\n{stdout}"
    );
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "the child ended with {:?}, not an abort; stderr:\n{stderr}",
        out.status
    );
    for n in needles {
        assert!(
            stderr.contains(n),
            "the child's stderr lacks {n:?}:\n{stderr}"
        );
    }
}

const PANICKED: &str = "jitffi: a closure handler panicked: ";
const NO_UNWIND: &str = "a panic must not unwind into the C caller";

/// In the child run of `test`, calls a `Closure::new` of `int32_t(int32_t,
/// int32_t)` with `handler` from C as `f(a, b)`; in the parent, asserts
/// that the child aborted after printing every one of `needles`.
fn handler_call_aborts<F>(test: &str, handler: F, (a, b): (i32, i32), needles: &[&str])
where
    F: Fn(&Args<'_>, &mut Ret<'_>) + Send + Sync + 'static,
{
    let Some(out) = in_child(test, || {
        let c = Closure::new(&cif_i32_i32_i32(), handler).expect("Closure::new");
        call_i32_from_c(c.code_ptr(), a, b);
    }) else {
        return;
    };
    assert_aborted_with(&out, needles);
}

fn case_call(name: &str) -> CallFn {
    oracles::case(name)
        .unwrap_or_else(|| panic!("{name} is not in the C table"))
        .call
}

/// Calls `f`, an `int32_t (int32_t, int32_t)`, through gcc's caller.
fn call_i32_from_c(f: *const c_void, a: i32, b: i32) -> i32 {
    let avalue = [
        (&a as *const i32).cast::<c_void>(),
        (&b as *const i32).cast(),
    ];
    let mut r = 0i64;
    // SAFETY: `f` is `int32_t (int32_t, int32_t)`; the caller reads two
    // int32 and stores an 8-byte ffi_arg.
    unsafe { case_call("or_i32")(f, (&mut r as *mut i64).cast(), avalue.as_ptr()) };
    r as i32
}

/// Calls `f`, an `int64_t (int64_t, int64_t)`, through gcc's caller.
fn call_i64_from_c(f: *const c_void, a: i64, b: i64) -> i64 {
    let avalue = [
        (&a as *const i64).cast::<c_void>(),
        (&b as *const i64).cast(),
    ];
    let mut r = 0i64;
    // SAFETY: `f` is `int64_t (int64_t, int64_t)`.
    unsafe { case_call("or_i64")(f, (&mut r as *mut i64).cast(), avalue.as_ptr()) };
    r
}

fn cif_i32_i32_i32() -> Cif {
    Cif::new(i32(), &[i32(), i32()]).expect("cif")
}

// ------------------------------------------------------------ typed API

/// A closure `T (T, int32_t, T)`, and one with six `int64_t` first (so the
/// `T`s travel on the stack when they are integers), each computing
/// `combine` through `Args::get` and `Ret::set`, called natively and
/// through a jitffi stub.
fn typed_round_trip<T>(a: T, b: T, combine: fn(T, i32, T) -> T)
where
    T: CType + PartialEq + Debug + 'static,
{
    let t = T::ffi_type();
    let k = -0x1234_5679i32;
    let want = combine(a, k, b);
    let errs = Arc::new(Mutex::new(Vec::<String>::new()));
    for lead in [0usize, 6] {
        let mut params = vec![i64(); lead];
        params.extend([t.clone(), i32(), t.clone()]);
        let cif = Cif::new(t.clone(), &params).expect("cif");
        let seen = Arc::clone(&errs);
        let c = Closure::new(&cif, move |args, ret| {
            let mut e = seen.lock().unwrap_or_else(|p| p.into_inner());
            if args.len() != lead + 3 || args.is_empty() {
                e.push(format!("Args::len() = {}", args.len()));
            }
            let x: T = args.get(lead);
            let k: i32 = args.get(lead + 1);
            let y: T = args.get(lead + 2);
            // SAFETY: argument `lead` is a T (the cif says so).
            let via_ptr = unsafe { args.ptr(lead).cast::<T>().read_unaligned() };
            if via_ptr != x {
                e.push(format!("Args::ptr gave {via_ptr:?}, Args::get {x:?}"));
            }
            for i in 0..lead {
                let v: i64 = args.get(i);
                if v != i as i64 * -3 {
                    e.push(format!("leading argument {i} is {v}"));
                }
            }
            if !std::ptr::eq(args.cif().args(), args.cif().args()) {
                e.push("unstable Args::cif".into());
            }
            drop(e);
            ret.set(combine(x, k, y));
        })
        .expect("Closure::new");

        let lead_vals: Vec<i64> = (0..6).map(|i| i * -3).collect();
        let native = if lead == 0 {
            // SAFETY: the closure is `T (T, int32_t, T)`.
            let f: extern "C" fn(T, i32, T) -> T = unsafe { c.as_fn() };
            f(a, k, b)
        } else {
            type Six<T> = extern "C" fn(i64, i64, i64, i64, i64, i64, T, i32, T) -> T;
            // SAFETY: the closure is `T (int64_t x6, T, int32_t, T)`.
            let f: Six<T> = unsafe { c.as_fn() };
            let l = &lead_vals;
            f(l[0], l[1], l[2], l[3], l[4], l[5], a, k, b)
        };
        assert_eq!(native, want, "{t} closure (lead {lead}) called natively");

        let mut call_args: Vec<Arg<'_>> = lead_vals[..lead].iter().map(Arg::new).collect();
        call_args.extend([Arg::new(&a), Arg::new(&k), Arg::new(&b)]);
        // SAFETY: the closure has exactly the cif's signature.
        let through_stub: T = unsafe { cif.call(c.code_ptr(), &call_args) }.expect("Cif::call");
        assert_eq!(
            through_stub, want,
            "{t} closure (lead {lead}) called through a jitffi stub"
        );
    }
    let errs = errs.lock().unwrap_or_else(|p| p.into_inner());
    assert!(errs.is_empty(), "{t}: {}", errs.join("\n"));
}

macro_rules! int_round_trip {
    ($($name:ident: $t:ty),* $(,)?) => {$(
        #[test]
        fn $name() {
            typed_round_trip::<$t>(
                <$t>::MIN | (0x5a as $t),
                <$t>::MAX ^ (0x3c as $t),
                |x, k, y| x.wrapping_mul(3) ^ y.wrapping_add(k as $t),
            );
        }
    )*};
}

int_round_trip! {
    typed_u8: u8, typed_i8: i8, typed_u16: u16, typed_i16: i16,
    typed_u32: u32, typed_i32: i32, typed_u64: u64, typed_i64: i64,
    typed_u128: u128, typed_i128: i128, typed_usize: usize, typed_isize: isize,
}

#[test]
fn typed_f32() {
    typed_round_trip::<f32>(-1.75e3, 0.3125, |x, k, y| x * 2.0 - y + k as f32);
}

#[test]
fn typed_f64() {
    typed_round_trip::<f64>(-1.75e300, 6.103515625e-5, |x, k, y| {
        x / 4.0 + y * f64::from(k)
    });
}

#[test]
fn typed_const_pointer() {
    typed_round_trip::<*const u8>(
        0xdead_beef_0bad_f00du64 as usize as *const u8,
        0x7fff_ffff_ffff_fff0u64 as usize as *const u8,
        |x, k, y| (x as usize ^ (y as usize).wrapping_add(k as usize)) as *const u8,
    );
}

#[test]
fn typed_mut_pointer() {
    typed_round_trip::<*mut i32>(
        0x8000_0000_0000_0001u64 as usize as *mut i32,
        16 as *mut i32,
        |x, k, y| {
            (x as usize)
                .wrapping_sub(y as usize)
                .rotate_left(k as u32 & 63) as *mut i32
        },
    );
}

/// `()` is the void return: `Ret::set(())` stores nothing, and a void
/// closure runs once per call.
#[test]
fn typed_unit_return() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    let cif = Cif::new(void(), &[i32()]).expect("cif");
    let c = Closure::new(&cif, move |args, ret| {
        h.fetch_add(args.get::<i32>(0) as usize, Ordering::SeqCst);
        ret.set(());
    })
    .expect("Closure::new");
    // SAFETY: void(int32_t).
    let f: extern "C" fn(i32) = unsafe { c.as_fn() };
    f(5);
    f(7);
    // SAFETY: as above.
    unsafe { cif.call::<()>(c.code_ptr(), &[Arg::new(&30i32)]) }.expect("Cif::call");
    assert_eq!(hits.load(Ordering::SeqCst), 42);

    let cif = Cif::new(u64(), &[]).expect("cif");
    let c = Closure::new(&cif, |args, ret| {
        ret.set(if (args.is_empty(), args.len()) == (true, 0) {
            0xfeed_u64
        } else {
            1
        })
    })
    .expect("Closure::new");
    // SAFETY: uint64_t(void).
    let f: extern "C" fn() -> u64 = unsafe { c.as_fn() };
    assert_eq!(f(), 0xfeed);
}

/// Aggregates through `Args::ptr` and `Ret::ptr`: a struct returned in
/// registers and one returned through a hidden pointer.
#[test]
fn structs_through_args_ptr_and_ret_ptr() {
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Dd {
        a: f64,
        b: f64,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Q4 {
        q: [i64; 4],
    }
    let cif = Cif::new(s_dd(), &[s_dd(), i8(), s_q4()]).expect("cif");
    let c = Closure::new(&cif, |args, ret| {
        // SAFETY: the arguments are {double, double}, int8_t, {int64_t x4};
        // the return buffer holds a {double, double}.
        unsafe {
            let d = args.ptr(0).cast::<Dd>().read();
            let k = args.get::<i8>(1);
            let q = args.ptr(2).cast::<Q4>().read();
            ret.ptr().cast::<Dd>().write(Dd {
                a: d.b * f64::from(k),
                b: d.a + q.q[3] as f64,
            });
        }
    })
    .expect("Closure::new");
    // SAFETY: the closure is this signature.
    let f: extern "C" fn(Dd, i8, Q4) -> Dd = unsafe { c.as_fn() };
    let r = f(Dd { a: 1.5, b: -2.25 }, -4, Q4 { q: [1, 2, 3, 40] });
    assert_eq!(r, Dd { a: 9.0, b: 41.5 });

    let cif = Cif::new(s_q4(), &[s_q4(), i64()]).expect("cif");
    let c = Closure::new(&cif, |args, ret| {
        // SAFETY: {int64_t x4}, int64_t -> {int64_t x4} (a hidden pointer
        // the closure hands over as the return buffer).
        unsafe {
            let q = args.ptr(0).cast::<Q4>().read();
            let k = args.get::<i64>(1);
            ret.ptr().cast::<Q4>().write(Q4 {
                q: [q.q[3] * k, q.q[2] * k, q.q[1] * k, q.q[0] * k],
            });
        }
    })
    .expect("Closure::new");
    // SAFETY: the closure is this signature.
    let f: extern "C" fn(Q4, i64) -> Q4 = unsafe { c.as_fn() };
    assert_eq!(
        f(Q4 { q: [1, -2, 3, -4] }, 5),
        Q4 {
            q: [-20, 15, -10, 5]
        }
    );
}

// ------------------------------------------------------ aborting misuse

#[test]
fn get_with_the_wrong_type_aborts() {
    handler_call_aborts(
        "get_with_the_wrong_type_aborts",
        |args, ret| {
            let v: i64 = args.get(1);
            ret.set(v as i32);
        },
        (1, 2),
        &[
            PANICKED,
            &format!("argument 1 is {}, not {} as requested", i32(), i64()),
            NO_UNWIND,
        ],
    );
}

/// Same size, other signedness: still the wrong type.
#[test]
fn set_with_the_wrong_type_aborts() {
    handler_call_aborts(
        "set_with_the_wrong_type_aborts",
        |_args, ret| ret.set(7u32),
        (1, 2),
        &[
            PANICKED,
            &format!("the closure returns {}, not {}", i32(), u32()),
            NO_UNWIND,
        ],
    );
}

#[test]
fn get_out_of_range_aborts() {
    handler_call_aborts(
        "get_out_of_range_aborts",
        |args, ret| ret.set(args.get::<i32>(2)),
        (1, 2),
        &[PANICKED, "argument 2 requested of 2", NO_UNWIND],
    );
}

#[test]
fn a_panicking_handler_aborts_with_its_message() {
    handler_call_aborts(
        "a_panicking_handler_aborts_with_its_message",
        |args, _ret| panic!("handler exploded on {}", args.get::<i32>(0)),
        (42, 0),
        &[PANICKED, "handler exploded on 42", NO_UNWIND],
    );
}

#[test]
fn a_non_string_panic_still_aborts() {
    let Some(out) = in_child("a_non_string_panic_still_aborts", || {
        let c = Closure::new(&cif_i32_i32_i32(), |_args, _ret| {
            std::panic::panic_any(17u32);
        })
        .expect("Closure::new");
        // SAFETY: int32_t(int32_t, int32_t).
        let f: extern "C" fn(i32, i32) -> i32 = unsafe { c.as_fn() };
        f(1, 2);
    }) else {
        return;
    };
    assert_aborted_with(&out, &[PANICKED, "(non-string panic payload)"]);
}

/// A `new_mut` handler that calls its own closure would deadlock on its
/// mutex: it aborts with the documented message instead.
#[test]
fn new_mut_reentered_on_one_thread_aborts() {
    let Some(out) = in_child("new_mut_reentered_on_one_thread_aborts", || {
        let me = Arc::new(AtomicUsize::new(0));
        let m = Arc::clone(&me);
        let mut depth = 0;
        let c = Closure::new_mut(&cif_i32_i32_i32(), move |args, ret| {
            depth += 1;
            let f = m.load(Ordering::Acquire) as *const c_void;
            ret.set(call_i32_from_c(f, args.get(0), depth));
        })
        .expect("Closure::new_mut");
        me.store(c.code_ptr() as usize, Ordering::Release);
        call_i32_from_c(c.code_ptr(), 1, 2);
    }) else {
        return;
    };
    assert_aborted_with(
        &out,
        &[
            PANICKED,
            "re-entrant call of a Closure::new_mut handler, which would deadlock",
        ],
    );
}

/// A code pointer that outlives its closure does not run stale code.
#[test]
fn calling_a_dropped_closure_aborts() {
    let Some(out) = in_child("calling_a_dropped_closure_aborts", || {
        let c = Closure::new(&cif_i32_i32_i32(), |args, ret| ret.set(args.get::<i32>(0)))
            .expect("Closure::new");
        let f = c.code_ptr();
        assert_eq!(call_i32_from_c(f, 5, 6), 5);
        drop(c);
        call_i32_from_c(f, 5, 6);
    }) else {
        return;
    };
    assert_aborted_with(&out, &["jitffi: a freed closure was called"]);
}

// ----------------------------------------------------------- reentrancy

/// C calls closure A; A's handler calls closure B through a jitffi stub;
/// B's handler calls a C function through another stub.
#[test]
fn closures_calling_closures_calling_c() {
    let or_i64 = oracles::case("or_i64").expect("or_i64");
    let or_fn = or_i64.func as usize;
    let cif_ii = Cif::new(i64(), &[i64(), i64()]).expect("cif");
    let cif_i = Cif::new(i64(), &[i64()]).expect("cif");

    let b = Closure::new(&cif_i, move |args, ret| {
        let z: i64 = args.get(0);
        // SAFETY: or_i64 is int64_t(int64_t, int64_t).
        let h: i64 =
            unsafe { cif_ii.call(or_fn as *const c_void, &[Arg::new(&z), Arg::new(&7i64)]) }
                .expect("call into C");
        ret.set(h ^ 0x55);
    })
    .expect("Closure::new");
    let a = Closure::new(&cif_ii, move |args, ret| {
        let (x, y): (i64, i64) = (args.get(0), args.get(1));
        let s = x.wrapping_add(y);
        // SAFETY: b is int64_t(int64_t) and lives inside this closure.
        let r: i64 = unsafe { cif_i.call(b.code_ptr(), &[Arg::new(&s)]) }.expect("call B");
        ret.set(r.wrapping_mul(3));
    })
    .expect("Closure::new");

    // SAFETY: or_i64 is int64_t(int64_t, int64_t).
    let oracle: extern "C" fn(i64, i64) -> i64 = unsafe { std::mem::transmute(or_i64.func) };
    for (x, y) in [(1i64, 2i64), (-40, 1 << 40), (i64::MAX, 1)] {
        let want = (oracle(x.wrapping_add(y), 7) ^ 0x55).wrapping_mul(3);
        oracles::reset();
        assert_eq!(call_i64_from_c(a.code_ptr(), x, y), want, "({x}, {y})");
        let rec = oracles::record();
        assert_eq!(rec.calls, 1, "the C function ran once, on this thread");
        assert_eq!(rec.args[0], x.wrapping_add(y).to_le_bytes());
    }
}

/// A closure calling itself through its own code pointer, 10 000 levels
/// deep, alternating native calls, jitffi stubs and gcc's caller.
#[test]
fn recursion_ten_thousand_deep() {
    const DEPTH: i64 = 10_000;
    let run = || {
        let cif = Cif::new(i64(), &[i64(), i64()]).expect("cif");
        let me = Arc::new(AtomicUsize::new(0));
        let deepest = Arc::new(AtomicUsize::new(0));
        let (m, d) = (Arc::clone(&me), Arc::clone(&deepest));
        let c = Closure::new(&cif, move |args, ret| {
            let (n, salt): (i64, i64) = (args.get(0), args.get(1));
            d.fetch_add(1, Ordering::Relaxed);
            if n == 0 {
                ret.set(salt);
                return;
            }
            let f = m.load(Ordering::Acquire) as *const c_void;
            let below = match n % 3 {
                0 => {
                    // SAFETY: f is this closure, int64_t(int64_t, int64_t).
                    let g: extern "C" fn(i64, i64) -> i64 = unsafe { std::mem::transmute(f) };
                    g(n - 1, salt)
                }
                // SAFETY: as above.
                1 => unsafe { cif.call::<i64>(f, &[Arg::new(&(n - 1)), Arg::new(&salt)]) }
                    .unwrap_or(i64::MIN),
                _ => call_i64_from_c(f, n - 1, salt),
            };
            ret.set(below + n);
        })
        .expect("Closure::new");
        me.store(c.code_ptr() as usize, Ordering::Release);
        let r = call_i64_from_c(c.code_ptr(), DEPTH, -7);
        (r, deepest.load(Ordering::Relaxed))
    };
    let (r, calls) = std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(run)
        .expect("spawn")
        .join()
        .expect("the recursion thread");
    assert_eq!(calls as i64, DEPTH + 1);
    assert_eq!(r, -7 + DEPTH * (DEPTH + 1) / 2);
}

#[test]
fn new_mut_counts_calls() {
    let cif = Cif::new(u64(), &[]).expect("cif");
    // Non-Sync state is fine in an FnMut.
    let last = Cell::new(0u64);
    let mut n = 0u64;
    let c = Closure::new_mut(&cif, move |_args, ret| {
        n += 1;
        last.set(last.get() + 1);
        ret.set(n * 1000 + last.get());
    })
    .expect("Closure::new_mut");
    // SAFETY: uint64_t(void).
    let f: extern "C" fn() -> u64 = unsafe { c.as_fn() };
    let got: Vec<u64> = (0..1000).map(|_| f()).collect();
    assert_eq!(got, (1..=1000).map(|k| k * 1001).collect::<Vec<_>>());
}

/// Calls from several threads are serialised: no count is lost or given
/// twice, even when handlers overlap in time.
#[test]
fn new_mut_serialises_threads() {
    let cif = Cif::new(u64(), &[u64()]).expect("cif");
    let mut n = 0u64;
    let c = Closure::new_mut(&cif, move |args, ret| {
        let before = n;
        if args.get::<u64>(0) % 7 == 0 {
            std::thread::yield_now();
        }
        n = before + 1;
        ret.set(n);
    })
    .expect("Closure::new_mut");
    let c = Arc::new(c);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                let cif = Cif::new(u64(), &[u64()]).expect("cif");
                (0..500u64)
                    .map(|i| {
                        let k = t * 1000 + i;
                        if i % 2 == 0 {
                            // SAFETY: uint64_t(uint64_t).
                            let f: extern "C" fn(u64) -> u64 = unsafe { c.as_fn() };
                            f(k)
                        } else {
                            // SAFETY: as above.
                            unsafe { cif.call::<u64>(c.code_ptr(), &[Arg::new(&k)]) }
                                .expect("Cif::call")
                        }
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=2000).collect::<Vec<_>>());
}

// ---------------------------------------------------- threads and W^X

/// Call shapes of the stress and W^X tests, each with gcc's caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `int32_t (int32_t, int32_t)`
    I32,
    /// `{double, double} ({double, double}, {double, double})`: registers.
    S6,
    /// `{int64_t x4} ({int64_t x4})`: memory both ways (sret).
    S7,
    /// `int32_t (int32_t n, ...)` called with three more `int32_t`.
    VaInts,
    /// `long double (long double, long double)`: x87 return.
    F80,
}

const SHAPES: [Shape; 5] = [Shape::I32, Shape::S6, Shape::S7, Shape::VaInts, Shape::F80];

#[derive(Clone, Copy)]
struct Kit {
    cif: Cif,
    call: CallFn,
    shape: Shape,
}

fn kits() -> Vec<Kit> {
    SHAPES
        .iter()
        .map(|&shape| {
            let (cif, name) = match shape {
                Shape::I32 => (Cif::new(i32(), &[i32(), i32()]), "or_i32"),
                Shape::S6 => (Cif::new(s_dd(), &[s_dd(), s_dd()]), "or_s6"),
                Shape::S7 => (Cif::new(s_q4(), &[s_q4()]), "or_s7"),
                Shape::VaInts => (
                    Cif::new_variadic(i32(), &[i32()], &[i32(), i32(), i32()]),
                    "va_ints3",
                ),
                Shape::F80 => (Cif::new(f80(), &[f80(), f80()]), "or_f80"),
            };
            Kit {
                cif: cif.expect("cif"),
                call: case_call(name),
                shape,
            }
        })
        .collect()
}

/// The result every handler of `shape` computes, from the argument bytes
/// and the closure's tag (so a call reaching another closure's handler
/// shows). Writes the result's bytes (narrow integers at their own size).
fn compute(shape: Shape, tag: u64, arg: &dyn Fn(usize) -> *const u8, out: &mut [u8]) {
    let read = |i: usize, n: usize| -> Vec<u8> {
        // SAFETY: the argument holds at least `n` bytes (by shape).
        unsafe { std::slice::from_raw_parts(arg(i), n).to_vec() }
    };
    let i32_at = |i: usize| i32::from_le_bytes(read(i, 4).try_into().expect("4"));
    let f64s = |i: usize| -> [f64; 2] {
        let b = read(i, 16);
        [0, 8].map(|o| f64::from_le_bytes(b[o..o + 8].try_into().expect("8")))
    };
    let t = tag as i32;
    match shape {
        Shape::I32 => {
            let r = i32_at(0).wrapping_mul(31) ^ i32_at(1) ^ t;
            out[..4].copy_from_slice(&r.to_le_bytes());
        }
        Shape::S6 => {
            let (a, b) = (f64s(0), f64s(1));
            let r = [a[0] + b[1], a[1] - b[0] + f64::from(t & 0xffff)];
            out[..8].copy_from_slice(&r[0].to_le_bytes());
            out[8..16].copy_from_slice(&r[1].to_le_bytes());
        }
        Shape::S7 => {
            let b = read(0, 32);
            let q: Vec<i64> = b
                .chunks(8)
                .map(|w| i64::from_le_bytes(w.try_into().expect("8")))
                .collect();
            for (k, v) in [q[3] ^ tag as i64, q[2], q[1], q[0].wrapping_sub(1)]
                .iter()
                .enumerate()
            {
                out[k * 8..k * 8 + 8].copy_from_slice(&v.to_le_bytes());
            }
        }
        Shape::VaInts => {
            let r = i32_at(0)
                .wrapping_add(i32_at(1).wrapping_mul(2))
                .wrapping_add(i32_at(2).wrapping_mul(3))
                .wrapping_add(i32_at(3).wrapping_mul(5))
                ^ t;
            out[..4].copy_from_slice(&r.to_le_bytes());
        }
        // No x87 arithmetic in Rust: the tag picks which argument comes back.
        Shape::F80 => out[..10].copy_from_slice(&read((tag & 1) as usize, 10)),
    }
}

fn ret_size(shape: Shape) -> usize {
    match shape {
        Shape::I32 | Shape::VaInts => 4,
        Shape::S6 => 16,
        Shape::S7 => 32,
        Shape::F80 => 10,
    }
}

/// User data of the raw stress closures.
struct Tagged {
    shape: Shape,
    tag: u64,
}

unsafe extern "C" fn tagged_handler(
    _cif: *const c_void,
    rvalue: *mut c_void,
    args: *const *mut c_void,
    ud: *mut c_void,
) {
    // SAFETY: every raw stress closure's user data is a live `Tagged`.
    let t = unsafe { &*ud.cast_const().cast::<Tagged>() };
    let n = ret_size(t.shape);
    // SAFETY: rvalue holds at least the return type's size.
    let out = unsafe { std::slice::from_raw_parts_mut(rvalue.cast::<u8>(), n) };
    // SAFETY: one pointer per argument.
    compute(
        t.shape,
        t.tag,
        &|i| unsafe { (*args.add(i)).cast_const().cast() },
        out,
    );
}

/// A stress closure of either kind, with its tag.
enum Live {
    Raw(RawClosure, Box<Tagged>),
    Rust(Closure, u64),
}

impl Live {
    fn new(kit: &Kit, tag: u64, raw: bool) -> Result<Live, String> {
        let shape = kit.shape;
        if raw {
            let t = Box::new(Tagged { shape, tag });
            let ud = (&*t as *const Tagged).cast_mut().cast();
            let c = RawClosure::new(&kit.cif, tagged_handler, ud)
                .map_err(|e| format!("RawClosure::new: {e}"))?;
            Ok(Live::Raw(c, t))
        } else {
            let c = Closure::new(&kit.cif, move |args, ret| {
                let n = ret_size(shape);
                // SAFETY: the return buffer holds at least the type's size.
                let out = unsafe { std::slice::from_raw_parts_mut(ret.ptr().cast::<u8>(), n) };
                compute(shape, tag, &|i| args.ptr(i).cast_const().cast(), out);
            })
            .map_err(|e| format!("Closure::new: {e}"))?;
            Ok(Live::Rust(c, tag))
        }
    }
    fn code_ptr(&self) -> *const c_void {
        match self {
            Live::Raw(c, _) => c.code_ptr(),
            Live::Rust(c, _) => c.code_ptr(),
        }
    }
    fn tag(&self) -> u64 {
        match self {
            Live::Raw(_, t) => t.tag,
            Live::Rust(_, t) => *t,
        }
    }
}

/// Calls `live` through gcc's caller and through the jitffi stub with
/// values from `rng`; checks both results against `compute`.
fn exercise(kit: &Kit, live: &Live, rng: &mut Rng) -> Result<(), String> {
    let types = kit.cif.args().to_vec();
    let mut bufs: Vec<Buf> = types
        .iter()
        .map(|t| Buf::from_bytes(&value(t, rng)))
        .collect();
    if kit.shape == Shape::VaInts {
        bufs[0].bytes_mut().copy_from_slice(&3i32.to_le_bytes());
    }
    let avalue: Vec<*const c_void> = bufs.iter_mut().map(|b| b.ptr().cast_const()).collect();
    let n = ret_size(kit.shape);
    let mut want = vec![0u8; n];
    compute(kit.shape, live.tag(), &|i| avalue[i].cast(), &mut want);
    for via in ["gcc's caller", "a jitffi stub"] {
        let mut ret = Buf::new(48, 0xa5);
        // SAFETY: the closure has the kit's signature, which both callers
        // implement; the buffers match the argument types; 48 bytes hold
        // any result here.
        unsafe {
            if via == "gcc's caller" {
                (kit.call)(live.code_ptr(), ret.ptr(), avalue.as_ptr())
            } else {
                kit.cif
                    .call_raw(live.code_ptr(), ret.ptr(), avalue.as_ptr())
            }
        };
        if ret.bytes()[..n] != want[..] {
            return Err(format!(
                "{:?} closure tagged {:#x} through {via}: got {}, expected {}",
                kit.shape,
                live.tag(),
                hex(&ret.bytes()[..n]),
                hex(&want)
            ));
        }
    }
    Ok(())
}

/// 8 threads, each making, calling and dropping 10 000 closures of every
/// shape and both kinds; every tenth closure is handed to the next thread,
/// which calls and drops it there. Slots are reused, not leaked.
#[test]
fn eight_threads_make_call_and_drop_closures() {
    const THREADS: u64 = 8;
    const ITERS: u64 = 10_000;
    let kits = kits();
    let bytes_before = memory::closure_slot_bytes();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS)
        .map(|_| mpsc::channel::<(usize, Live)>())
        .unzip();
    let mut receivers: Vec<Option<mpsc::Receiver<(usize, Live)>>> =
        receivers.into_iter().map(Some).collect();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let kits = kits.clone();
            let to_next = senders[((t + 1) % THREADS) as usize].clone();
            let from_prev = receivers[t as usize].take().expect("one receiver each");
            std::thread::spawn(move || {
                let mut rng = Rng::for_case("stress", t);
                let mut errs = Vec::new();
                let mut received = 0u64;
                let mut take = |k: usize, live: Live, rng: &mut Rng, errs: &mut Vec<String>| {
                    if let Err(e) = exercise(&kits[k], &live, rng) {
                        errs.push(format!("received from another thread: {e}"));
                    }
                    received += 1;
                };
                for i in 0..ITERS {
                    let k = (i % kits.len() as u64) as usize;
                    let raw = (i / kits.len() as u64) % 2 == 0;
                    let tag = (t << 32) | i;
                    match Live::new(&kits[k], tag, raw) {
                        Ok(live) => {
                            if let Err(e) = exercise(&kits[k], &live, &mut rng) {
                                errs.push(e);
                            }
                            if i % 10 == 0 {
                                to_next.send((k, live)).expect("the next thread listens");
                            }
                        }
                        Err(e) => errs.push(e),
                    }
                    while let Ok((k, live)) = from_prev.try_recv() {
                        take(k, live, &mut rng, &mut errs);
                    }
                    if errs.len() > 5 {
                        break;
                    }
                }
                drop(to_next);
                while let Ok((k, live)) = from_prev.recv() {
                    take(k, live, &mut rng, &mut errs);
                }
                (errs, received)
            })
        })
        .collect();
    drop(senders);
    let mut errs = Vec::new();
    let mut received = 0;
    for h in handles {
        let (e, r) = h.join().expect("stress thread");
        errs.extend(e);
        received += r;
    }
    assert!(errs.is_empty(), "{}", errs.join("\n"));
    assert_eq!(received, THREADS * ITERS / 10, "closures handed over");
    // 80 000 closures, never more than a few hundred alive: freed slots
    // are reused (a leak would map about 6 MiB of chunks).
    let grown = memory::closure_slot_bytes() - bytes_before;
    assert!(
        grown < 2 << 20,
        "closure slot memory grew by {grown} bytes for at most a few hundred live closures"
    );
}

/// With 1 000 closures of several shapes alive and called, no mapping is
/// writable and executable, and every code pointer lies in a read-execute
/// mapping.
#[test]
fn no_writable_executable_memory_with_a_thousand_closures() {
    let kits = kits();
    let live: Vec<(usize, Live)> = (0..1000u64)
        .map(|i| {
            let k = (i % kits.len() as u64) as usize;
            let l = Live::new(&kits[k], 0xc0de_0000 + i, i % 2 == 0).expect("closure");
            (k, l)
        })
        .collect();
    let mut rng = Rng::for_case("wx", 0);
    for (k, l) in &live {
        exercise(&kits[*k], l, &mut rng).expect("a live closure works");
    }
    let all = maps::audit();
    for (_, l) in &live {
        maps::assert_in_rx(&all, l.code_ptr() as usize);
    }
    let mut ptrs: Vec<usize> = live.iter().map(|(_, l)| l.code_ptr() as usize).collect();
    ptrs.sort_unstable();
    ptrs.dedup();
    assert_eq!(
        ptrs.len(),
        live.len(),
        "two live closures share a code pointer"
    );
}

// ------------------------------------------------------------------ drop

/// Counts drops of the value it is part of.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_a_closure_releases_its_state() {
    let state = Arc::new(5i32);
    let drops = Arc::new(AtomicUsize::new(0));
    let (s, guard) = (Arc::clone(&state), DropCounter(Arc::clone(&drops)));
    let c = Closure::new(&cif_i32_i32_i32(), move |args, ret| {
        let _keep = &guard;
        ret.set(args.get::<i32>(0) + *s);
    })
    .expect("Closure::new");
    assert_eq!(Arc::strong_count(&state), 2);
    assert_eq!(call_i32_from_c(c.code_ptr(), 1, 0), 6);
    assert_eq!(
        Arc::strong_count(&state),
        2,
        "a call keeps no extra reference"
    );
    drop(c);
    assert_eq!(Arc::strong_count(&state), 1);
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // Never called, and new_mut.
    let s = Arc::clone(&state);
    let mut calls = 0;
    let c = Closure::new_mut(&cif_i32_i32_i32(), move |_args, ret| {
        calls += 1;
        ret.set(*s + calls);
    })
    .expect("Closure::new_mut");
    assert_eq!(Arc::strong_count(&state), 2);
    drop(c);
    assert_eq!(Arc::strong_count(&state), 1);
}

#[test]
fn a_closure_dropped_on_another_thread_releases_its_state() {
    let state = Arc::new(());
    let s = Arc::clone(&state);
    let c = Closure::new(&cif_i32_i32_i32(), move |args, ret| {
        let _keep = &s;
        ret.set(args.get::<i32>(1));
    })
    .expect("Closure::new");
    std::thread::spawn(move || {
        assert_eq!(call_i32_from_c(c.code_ptr(), 0, 9), 9);
        drop(c);
    })
    .join()
    .expect("thread");
    assert_eq!(Arc::strong_count(&state), 1);
}

/// A `RawClosure` only stores its user data: dropping it leaves the data
/// (here an `Rc`) to its owner.
#[test]
fn a_raw_closure_leaves_its_user_data_alone() {
    unsafe extern "C" fn bump(
        _cif: *const c_void,
        ret: *mut c_void,
        args: *const *mut c_void,
        ud: *mut c_void,
    ) {
        // SAFETY: ud is the Rc<Cell<i32>> below; the signature is
        // int32_t(int32_t, int32_t); the test runs on one thread.
        unsafe {
            let cell = &*ud.cast_const().cast::<Cell<i32>>();
            cell.set(cell.get() + *(*args).cast::<i32>());
            *ret.cast::<i64>() = i64::from(cell.get());
        }
    }
    let data = Rc::new(Cell::new(0i32));
    let raw = Rc::into_raw(Rc::clone(&data));
    let c =
        RawClosure::new(&cif_i32_i32_i32(), bump, raw.cast_mut().cast()).expect("RawClosure::new");
    assert_eq!(call_i32_from_c(c.code_ptr(), 4, 0), 4);
    assert_eq!(call_i32_from_c(c.code_ptr(), 3, 0), 7);
    drop(c);
    assert_eq!(
        Rc::strong_count(&data),
        2,
        "the raw closure kept its hands off"
    );
    // SAFETY: `raw` came from Rc::into_raw above and is reclaimed once.
    drop(unsafe { Rc::from_raw(raw) });
    assert_eq!(Rc::strong_count(&data), 1);
    assert_eq!(data.get(), 7);
}
