//! Closure slots through the public API: reuse keeps memory bounded,
//! concurrent use never hands out a live slot twice, the pages keep W^X,
//! and the code sits near jitffi.

#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::collections::HashSet;
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use jitffi::closure::record;
use jitffi::memory::{
    self, alloc_closure_slot, closure_slot_bytes, free_closure_slot, ClosureSlot,
    CLOSURE_CHUNK_SLOTS,
};

#[path = "support/maps.rs"]
mod maps;
use maps::{audit, mapping_of};

/// The tests measure the process-wide mapped bytes: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Bytes of one closure chunk: a code page and the records' pages.
fn chunk_bytes() -> usize {
    // SAFETY: sysconf only reads a system constant.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap();
    let round = |n: usize| n.div_ceil(page) * page;
    round(CLOSURE_CHUNK_SLOTS * 16) + round(CLOSURE_CHUNK_SLOTS * record::SIZE)
}

/// A thunk returning the record pointer the trampoline passes (in r11 on
/// x86-64, x17 on AArch64): `mov rax, r11; ret` / `mov x0, x17; ret`.
fn r11_thunk() -> *const u8 {
    #[cfg(target_arch = "x86_64")]
    let code: &[u8] = &[0x4C, 0x89, 0xD8, 0xC3];
    #[cfg(target_arch = "aarch64")]
    let code: &[u8] = &[0xE0, 0x03, 0x11, 0xAA, 0xC0, 0x03, 0x5F, 0xD6];
    memory::publish(code).unwrap()
}

/// Points the slot at `r11_thunk`, calls it, and checks it reaches its own
/// record.
fn use_slot(slot: ClosureSlot, thunk: *const u8) {
    // SAFETY: the record is the caller's until freed; the thunk word is
    // aligned.
    unsafe {
        slot.record
            .add(record::THUNK)
            .cast::<*const u8>()
            .write(thunk)
    };
    // SAFETY: the trampoline jumps to `thunk`, a complete `usize f(void)`.
    let f = unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> usize>(slot.code) };
    assert_eq!(f(), slot.record as usize, "slot {slot:?}");
}

fn free(slot: ClosureSlot) {
    // SAFETY: every slot passed here came from alloc_closure_slot, is freed
    // once, and is not called afterwards.
    unsafe { free_closure_slot(slot) };
}

#[test]
fn a_million_slots_one_at_a_time_reuse_one_chunk() {
    let _s = serial();
    let before = closure_slot_bytes();
    let mut codes = HashSet::new();
    for _ in 0..1_000_000 {
        let s = alloc_closure_slot().unwrap();
        codes.insert(s.code as usize);
        free(s);
    }
    let grown = closure_slot_bytes() - before;
    println!(
        "1M alloc+free one at a time: {} distinct slots, grew {grown} bytes, {} mapped",
        codes.len(),
        closure_slot_bytes()
    );
    assert!(grown <= chunk_bytes(), "grew by {grown} bytes");
    // LIFO reuse through the thread's cache: the same slot every time.
    assert_eq!(codes.len(), 1);
}

#[test]
fn a_million_slots_in_batches_of_ten_thousand_stay_bounded() {
    let _s = serial();
    let before = closure_slot_bytes();
    let batch = 10_000;
    let mut after_first = 0;
    for round in 0..100 {
        let slots: Vec<ClosureSlot> = (0..batch).map(|_| alloc_closure_slot().unwrap()).collect();
        if round == 0 {
            let distinct: HashSet<usize> = slots.iter().map(|s| s.code as usize).collect();
            assert_eq!(distinct.len(), batch);
        }
        for s in slots {
            free(s);
        }
        if round == 0 {
            after_first = closure_slot_bytes();
        } else {
            assert_eq!(
                closure_slot_bytes(),
                after_first,
                "round {round} mapped more"
            );
        }
    }
    let grown = closure_slot_bytes() - before;
    let chunks_needed = batch.div_ceil(CLOSURE_CHUNK_SLOTS);
    println!(
        "1M alloc+free in batches of {batch}: grew {grown} bytes ({} chunks), {} mapped",
        grown / chunk_bytes(),
        closure_slot_bytes()
    );
    assert!(
        grown <= (chunks_needed + 1) * chunk_bytes(),
        "grew by {grown} bytes for {batch} live slots"
    );
}

#[test]
fn eight_threads_share_slots_without_duplicates() {
    let _s = serial();
    let thunk = r11_thunk() as usize;
    let live: Mutex<HashSet<usize>> = Mutex::new(HashSet::new());
    let threads = 8;
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..threads).map(|_| mpsc::channel::<ClosureSlot>()).unzip();
    std::thread::scope(|s| {
        for (t, rx) in receivers.into_iter().enumerate() {
            // Thread t hands slots to thread t + 1, which frees them.
            let to_next = senders[(t + 1) % threads].clone();
            let live = &live;
            s.spawn(move || {
                let thunk = thunk as *const u8;
                let marker = 0x5100_0000 + t;
                let check_and_forget = |slot: ClosureSlot| {
                    // SAFETY: the record belongs to this live slot.
                    let ud = unsafe { slot.record.add(record::USER_DATA).cast::<usize>().read() };
                    assert_eq!(ud & !0xFF, 0x5100_0000, "record {slot:?} was overwritten");
                    use_slot(slot, thunk);
                    assert!(live.lock().unwrap().remove(&(slot.record as usize)));
                };
                for round in 0..500 {
                    let n = 1 + (round * 7 + t) % 60;
                    let mine: Vec<ClosureSlot> = (0..n)
                        .map(|_| {
                            let slot = alloc_closure_slot().unwrap();
                            assert!(
                                live.lock().unwrap().insert(slot.record as usize),
                                "slot {slot:?} handed out while live"
                            );
                            // SAFETY: the record is ours until freed.
                            unsafe {
                                slot.record
                                    .add(record::USER_DATA)
                                    .cast::<usize>()
                                    .write(marker)
                            };
                            use_slot(slot, thunk);
                            slot
                        })
                        .collect();
                    for (i, slot) in mine.into_iter().enumerate() {
                        if i % 2 == 0 {
                            check_and_forget(slot);
                            free(slot);
                        } else {
                            to_next.send(slot).unwrap();
                        }
                    }
                    // Free what the previous thread handed over so far.
                    while let Ok(slot) = rx.try_recv() {
                        check_and_forget(slot);
                        free(slot);
                    }
                }
                drop(to_next);
                // The rest, once every sender is gone.
                for slot in rx {
                    check_and_forget(slot);
                    free(slot);
                }
            });
        }
        drop(senders);
    });
    assert!(live.lock().unwrap().is_empty());
    // Every thread has exited and returned its cache: the slots are all
    // usable again.
    let thunk = thunk as *const u8;
    let again: Vec<ClosureSlot> = (0..1000).map(|_| alloc_closure_slot().unwrap()).collect();
    let distinct: HashSet<usize> = again.iter().map(|s| s.code as usize).collect();
    assert_eq!(distinct.len(), again.len());
    for s in again {
        use_slot(s, thunk);
        free(s);
    }
}

#[test]
fn slot_pages_keep_wx_while_many_are_live() {
    let _s = serial();
    let thunk = r11_thunk();
    let slots: Vec<ClosureSlot> = (0..5000).map(|_| alloc_closure_slot().unwrap()).collect();
    for &s in &slots {
        use_slot(s, thunk);
    }
    let all = audit();
    for s in &slots {
        let code = mapping_of(&all, s.code as usize);
        // `r-xp` normally; `r-xs` where the code page had to come from a
        // memfd (anonymous memory may not become executable).
        assert!(code.perms.starts_with("r-x"), "trampoline in {}", code.line);
        let data = mapping_of(&all, s.record as usize);
        assert_eq!(data.perms, "rw-p", "record in {}", data.line);
        let last = mapping_of(&all, s.record as usize + record::SIZE - 1);
        assert_eq!(last.perms, "rw-p", "record end in {}", last.line);
    }
    for s in slots {
        free(s);
    }
}

#[test]
fn slot_code_lies_near_jitffi() {
    let _s = serial();
    const GIB: usize = 1 << 30;
    // The placement search spans 32 GiB below jitffi's code, from the GiB
    // boundary under it.
    let home = alloc_closure_slot as *const () as usize;
    let slots: Vec<ClosureSlot> = (0..3 * CLOSURE_CHUNK_SLOTS)
        .map(|_| alloc_closure_slot().unwrap())
        .collect();
    for s in &slots {
        let p = s.code as usize;
        assert!(
            home.abs_diff(p) <= 33 * GIB,
            "trampoline at {p:#x}, jitffi at {home:#x}"
        );
    }
    for s in slots {
        free(s);
    }
}

/// Needs the closure thunk emitter (`emit::x64::compile_closure_thunk`):
/// fails until it lands.
#[test]
fn closure_new_works_end_to_end() {
    use jitffi::{Cif, Closure, Type};
    let _s = serial();
    let cif = Cif::new(Type::i32(), &[Type::i32(), Type::i32()]).unwrap();
    let code;
    {
        let c = Closure::new(&cif, |args, ret| {
            ret.set(args.get::<i32>(0) * 10 + args.get::<i32>(1));
        })
        .unwrap();
        // SAFETY: the closure is i32(i32, i32) and lives through the calls.
        let f: extern "C" fn(i32, i32) -> i32 = unsafe { c.as_fn() };
        assert_eq!(f(4, 2), 42);
        assert_eq!(f(-1, 3), -7);
        code = c.code_ptr() as usize;
    }
    // Dropping it returned the slot; the next closure reuses it.
    let d = Closure::new(&cif, |_args, ret| ret.set(5i32)).unwrap();
    assert_eq!(d.code_ptr() as usize, code);
    // SAFETY: as above.
    let g: extern "C" fn(i32, i32) -> i32 = unsafe { d.as_fn() };
    assert_eq!(g(0, 0), 5);
}

/// Not a benchmark: figures for the report (`--release --nocapture`).
#[test]
fn slot_cost_figures() {
    let _s = serial();
    // Best of several runs: the machine is shared, and the minimum is the
    // least disturbed figure.
    let n = 1_000_000u32;
    // Warm the thread's cache.
    free(alloc_closure_slot().unwrap());
    let pair = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                let s = std::hint::black_box(alloc_closure_slot().unwrap());
                free(s);
            }
            t.elapsed().as_secs_f64() * 1e9 / f64::from(n)
        })
        .fold(f64::INFINITY, f64::min);
    let batch = 1000;
    let mut v = Vec::with_capacity(batch);
    let rounds = 500u32;
    let batched = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..rounds {
                v.extend((0..batch).map(|_| alloc_closure_slot().unwrap()));
                for s in v.drain(..) {
                    free(s);
                }
            }
            t.elapsed().as_secs_f64() * 1e9 / (f64::from(rounds) * batch as f64)
        })
        .fold(f64::INFINITY, f64::min);
    println!(
        "alloc+free pair: {pair:.1} ns one at a time, {batched:.1} ns in batches of {batch}; \
         {} bytes mapped for closure slots",
        closure_slot_bytes()
    );
}
