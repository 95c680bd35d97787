//! The stub cache: one code address per (ABI, signature shape), shared
//! across cifs and threads, never across different shapes.

use std::collections::HashSet;
use std::ffi::c_void;
use std::sync::Barrier;

use jitffi::{Abi, Cif, Type};

fn pair(a: Type, b: Type) -> Type {
    Type::structure([a, b]).unwrap()
}

#[test]
fn same_shape_shares_code_across_separately_built_types() {
    // Built twice from scratch: different allocations, same shape.
    let a = Cif::new(
        pair(Type::f64(), Type::i32()),
        &[pair(Type::f64(), Type::i32()), Type::u8()],
    )
    .unwrap();
    let b = Cif::new(
        pair(Type::f64(), Type::i32()),
        &[pair(Type::f64(), Type::i32()), Type::u8()],
    )
    .unwrap();
    assert_eq!(a.raw_entry() as usize, b.raw_entry() as usize);
    assert_eq!(a.packed_entry() as usize, b.packed_entry() as usize);
    assert_ne!(a.raw_entry() as usize, a.packed_entry() as usize);
}

#[test]
fn different_shapes_get_different_code() {
    let shapes: Vec<(Type, Vec<Type>, Option<usize>)> = vec![
        (Type::i32(), vec![Type::i32()], None),
        (Type::u32(), vec![Type::i32()], None),
        (Type::i32(), vec![Type::u32()], None),
        (Type::i32(), vec![Type::i32(), Type::i32()], None),
        (Type::i32(), vec![Type::i32(), Type::i32()], Some(1)),
        (Type::i32(), vec![Type::i32(), Type::i32()], Some(2)),
        (Type::f64(), vec![pair(Type::f32(), Type::f32())], None),
        (
            Type::f64(),
            vec![Type::union([Type::f32(), Type::f32()]).unwrap()],
            None,
        ),
        (
            Type::f64(),
            vec![Type::structure([Type::array(Type::f32(), 2).unwrap()]).unwrap()],
            None,
        ),
    ];
    let mut seen = HashSet::new();
    for (ret, args, fixed) in &shapes {
        let cif = Cif::with_abi(Abi::host(), ret.clone(), args, *fixed).unwrap();
        assert!(
            seen.insert(cif.raw_entry() as usize),
            "{ret} {args:?} {fixed:?} shares code with another shape"
        );
    }
}

extern "C" fn add3(a: i64, b: i64, c: i64) -> i64 {
    a + 2 * b + 3 * c
}

#[test]
fn concurrent_preparation_converges_on_one_stub_per_shape() {
    const THREADS: usize = 8;
    let barrier = Barrier::new(THREADS);
    let entries: Vec<Vec<usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    (0..50)
                        .map(|i| {
                            // A shape per i, shared by all threads.
                            let arr = Type::array(Type::u8(), i + 1).unwrap();
                            let s = Type::structure([Type::u16(), arr]).unwrap();
                            let cif =
                                Cif::new(Type::i64(), &[Type::i64(), s, Type::i64()]).unwrap();
                            // Each thread also calls through a common shape.
                            let c3 = Cif::new(Type::i64(), &vec![Type::i64(); 3]).unwrap();
                            let args = [t as i64, i as i64, 1i64];
                            let avalue: Vec<*const c_void> =
                                args.iter().map(|a| (a as *const i64).cast()).collect();
                            let mut r = 0i64;
                            // SAFETY: add3 matches the cif.
                            unsafe {
                                c3.call_raw(
                                    add3 as *const c_void,
                                    (&mut r as *mut i64).cast(),
                                    avalue.as_ptr(),
                                )
                            };
                            assert_eq!(r, t as i64 + 2 * i as i64 + 3);
                            cif.raw_entry() as usize
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for e in &entries[1..] {
        assert_eq!(e, &entries[0], "threads disagree on a shape's stub");
    }
    let distinct: HashSet<_> = entries[0].iter().collect();
    assert_eq!(distinct.len(), 50);
}

#[test]
fn cif_copies_and_moves_across_threads() {
    let cif = Cif::new(Type::i64(), &vec![Type::i64(); 3]).unwrap();
    std::thread::scope(|s| {
        for k in 0..4i64 {
            s.spawn(move || {
                let args = [k, k, k];
                let avalue: Vec<*const c_void> =
                    args.iter().map(|a| (a as *const i64).cast()).collect();
                let mut r = 0i64;
                // SAFETY: add3 matches the cif.
                unsafe {
                    cif.call_raw(
                        add3 as *const c_void,
                        (&mut r as *mut i64).cast(),
                        avalue.as_ptr(),
                    )
                };
                assert_eq!(r, 6 * k);
            });
        }
    });
}
