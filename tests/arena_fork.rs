//! Code memory across `fork()`: stubs published before the fork keep
//! working in both processes, and code each process publishes afterwards
//! is its own, never written over by the other.
//!
//! The double-mapped chunks are `MAP_SHARED`, so after a fork both
//! processes hold the same physical code pages. A child that kept carving
//! stubs out of the inherited chunk's free tail would put them exactly
//! where the parent puts its next ones, and each would overwrite the
//! other's code.
//!
//! One `#[test]` in this file on purpose: the test forks, and the child
//! must not inherit a lock some other test thread holds at that moment.
#![cfg(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_os = "linux"
))]

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use jitffi::memory::{self, CodeArena, Strategy};
use jitffi::{Arg, Cif, Type};

#[path = "support/maps.rs"]
mod maps;

#[path = "support/child.rs"]
mod child;

/// A complete `extern "C" fn() -> i32` returning `v`: `mov eax, imm32;
/// ret` on x86-64, `movz w0, lo; movk w0, hi, lsl 16; ret` on AArch64.
fn ret_imm(v: i32) -> Vec<u8> {
    let b = v.to_le_bytes();
    if cfg!(target_arch = "aarch64") {
        let (lo, hi) = (v as u32 & 0xFFFF, v as u32 >> 16);
        [0x5280_0000 | lo << 5, 0x72A0_0000 | hi << 5, 0xD65F_03C0]
            .iter()
            .flat_map(|w: &u32| w.to_le_bytes())
            .collect()
    } else {
        vec![0xB8, b[0], b[1], b[2], b[3], 0xC3]
    }
}

fn call(p: usize) -> i32 {
    // SAFETY: every address passed here is a published `ret_imm` stub, a
    // complete `extern "C" fn() -> i32`.
    let f = unsafe { std::mem::transmute::<usize, extern "C" fn() -> i32>(p) };
    f()
}

/// Where stubs are published: the global arena, or one of our own.
struct Target {
    name: String,
    arena: Option<CodeArena>,
}

impl Target {
    fn publish(&self, code: &[u8]) -> usize {
        match &self.arena {
            Some(a) => a.publish(code),
            None => memory::publish(code),
        }
        .unwrap_or_else(|e| panic!("{}: {e}", self.name)) as usize
    }

    fn strategy(&self) -> Strategy {
        match &self.arena {
            Some(a) => a.strategy(),
            None => memory::global().unwrap().strategy(),
        }
    }
}

fn targets() -> Vec<Target> {
    let mut v = vec![Target {
        name: "global".into(),
        arena: None,
    }];
    for s in [
        Strategy::DoubleMapped,
        Strategy::DoubleMappedAnon,
        Strategy::MprotectFlip,
    ] {
        let arena = match CodeArena::new(s) {
            // qemu-user cannot mremap a second view of shared anonymous
            // memory (ENOMEM): that strategy does not exist there.
            Err(e) if s == Strategy::DoubleMappedAnon && child::under_emulator() => {
                eprintln!("{s:?} skipped under the emulator: {e}");
                continue;
            }
            r => r.unwrap(),
        };
        v.push(Target {
            name: format!("{s:?}"),
            arena: Some(arena),
        });
    }
    v
}

/// Stub values: distinct per process, target, batch and index.
fn value(who: i32, target: usize, batch: i32, i: usize) -> i32 {
    who * 1_000_000 + target as i32 * 10_000 + batch * 100 + i as i32
}

const PARENT: i32 = 1;
const CHILD: i32 = 2;
const BEFORE: i32 = 3;

extern "C" fn lin2(a: i64, b: i64) -> i64 {
    a * 3 + b
}
extern "C" fn child_i(a: i8, b: i64, c: i8) -> i64 {
    i64::from(a) * 1000 + b * 7 + i64::from(c)
}
extern "C" fn child_f(x: f64, n: i32) -> f64 {
    x * f64::from(n) + 0.5
}
extern "C" fn parent_i(a: i16, b: i64, c: i16) -> i64 {
    i64::from(a) * 100_000 - b + i64::from(c)
}
extern "C" fn parent_f(n: i32, x: f64) -> f64 {
    x / f64::from(n) - 0.25
}

/// Calls the cif made before the fork.
fn check_lin2(cif: &Cif, fails: &mut Vec<String>) {
    // SAFETY: `lin2` has exactly this cif's signature.
    let r: i64 = unsafe { cif.call(lin2 as *const _, &[Arg::new(&5i64), Arg::new(&-4i64)]) }
        .expect("typed call");
    if r != 11 {
        fails.push(format!("pre-fork cif returned {r}"));
    }
}

/// The cifs each side compiles after the fork (shapes the other side never
/// compiles), checked by calling them.
struct NewCifs {
    int: Cif,
    float: Cif,
}

impl NewCifs {
    fn new(who: i32) -> NewCifs {
        if who == CHILD {
            NewCifs {
                int: Cif::new(Type::i64(), &[Type::i8(), Type::i64(), Type::i8()]).unwrap(),
                float: Cif::new(Type::f64(), &[Type::f64(), Type::i32()]).unwrap(),
            }
        } else {
            NewCifs {
                int: Cif::new(Type::i64(), &[Type::i16(), Type::i64(), Type::i16()]).unwrap(),
                float: Cif::new(Type::f64(), &[Type::i32(), Type::f64()]).unwrap(),
            }
        }
    }

    fn entries(&self) -> [usize; 4] {
        [
            self.int.raw_entry() as usize,
            self.int.packed_entry() as usize,
            self.float.raw_entry() as usize,
            self.float.packed_entry() as usize,
        ]
    }

    fn check(&self, who: i32, fails: &mut Vec<String>) {
        // SAFETY: each function has exactly its cif's signature.
        let (i, f): (i64, f64) = unsafe {
            if who == CHILD {
                (
                    self.int
                        .call(
                            child_i as *const _,
                            &[Arg::new(&-3i8), Arg::new(&1_000_000i64), Arg::new(&9i8)],
                        )
                        .unwrap(),
                    self.float
                        .call(child_f as *const _, &[Arg::new(&1.5f64), Arg::new(&4i32)])
                        .unwrap(),
                )
            } else {
                (
                    self.int
                        .call(
                            parent_i as *const _,
                            &[Arg::new(&-3i16), Arg::new(&1_000_000i64), Arg::new(&9i16)],
                        )
                        .unwrap(),
                    self.float
                        .call(parent_f as *const _, &[Arg::new(&4i32), Arg::new(&1.5f64)])
                        .unwrap(),
                )
            }
        };
        let want = if who == CHILD {
            (child_i(-3, 1_000_000, 9), child_f(1.5, 4))
        } else {
            (parent_i(-3, 1_000_000, 9), parent_f(4, 1.5))
        };
        if (i, f) != want {
            fails.push(format!(
                "process {who}: new cifs gave {:?}, want {want:?}",
                (i, f)
            ));
        }
    }
}

/// Stubs one process published in one target: (address, value).
type Stubs = Vec<(usize, i32)>;

fn check_stubs(what: &str, stubs: &[(usize, i32)], fails: &mut Vec<String>) {
    for &(p, v) in stubs {
        let got = call(p);
        if got != v {
            fails.push(format!("{what}: stub at {p:#x} returned {got}, want {v}"));
        }
    }
}

fn publish_batch(who: i32, targets: &[Target], batch: i32, n: usize) -> Vec<Stubs> {
    targets
        .iter()
        .enumerate()
        .map(|(t, target)| {
            (0..n)
                .map(|i| {
                    let v = value(who, t, batch, i);
                    (target.publish(&ret_imm(v)), v)
                })
                .collect()
        })
        .collect()
}

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe {
        (
            File::from(OwnedFd::from_raw_fd(fds[0])),
            File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    }
}

fn addresses_line(tag: &str, t: usize, addrs: impl Iterator<Item = usize>) -> String {
    let hex: Vec<String> = addrs.map(|a| format!("{a:x}")).collect();
    format!("{tag} {t} {}\n", hex.join(" "))
}

/// Stubs per process and batch.
const N: usize = 4;

/// The forked child: publishes a batch and new cifs, reports their
/// addresses, waits until the parent has published its own, checks that
/// its code is intact, publishes a second batch (which, sharing the
/// parent's chunk, would land on the parent's later stubs), and reports.
fn child(
    targets: &[Target],
    before: &[Stubs],
    lin: &Cif,
    mut to_parent: File,
    from_parent: File,
) -> i32 {
    let mut fails = Vec::new();
    let mine = publish_batch(CHILD, targets, 0, N);
    let cifs = NewCifs::new(CHILD);
    let mut msg = String::new();
    for (t, stubs) in mine.iter().enumerate() {
        let mut addrs: Vec<usize> = stubs.iter().map(|s| s.0).collect();
        if t == 0 {
            addrs.extend(cifs.entries());
        }
        msg += &addresses_line("new", t, addrs.into_iter());
    }
    msg += "end1\n";
    if to_parent.write_all(msg.as_bytes()).is_err() {
        return 3;
    }
    // The parent publishes now; it writes one line when done.
    let mut line = String::new();
    if BufReader::new(from_parent).read_line(&mut line).is_err() || line != "go\n" {
        return 4;
    }
    for (t, target) in targets.iter().enumerate() {
        check_stubs(
            &format!("child, pre-fork {}", target.name),
            &before[t],
            &mut fails,
        );
        check_stubs(&format!("child, own {}", target.name), &mine[t], &mut fails);
    }
    // Reported now: overwritten cif stubs may well crash the calls below.
    let report: String = fails.drain(..).map(|f| format!("fail {f}\n")).collect();
    if to_parent.write_all(report.as_bytes()).is_err() {
        return 5;
    }
    let mut failed = !report.is_empty();
    check_lin2(lin, &mut fails);
    cifs.check(CHILD, &mut fails);
    let second = publish_batch(CHILD, targets, 1, N);
    let mut msg = String::new();
    for (t, target) in targets.iter().enumerate() {
        check_stubs(
            &format!("child, second {}", target.name),
            &second[t],
            &mut fails,
        );
        msg += &addresses_line("new", t, second[t].iter().map(|s| s.0));
    }
    for f in &fails {
        msg += &format!("fail {f}\n");
    }
    msg += "end2\n";
    if to_parent.write_all(msg.as_bytes()).is_err() {
        return 5;
    }
    failed |= !fails.is_empty();
    i32::from(failed)
}

#[test]
fn code_published_after_fork_is_private_to_each_process() {
    let targets = targets();
    let lin = Cif::new(Type::i64(), &[Type::i64(), Type::i64()]).unwrap();
    let before = publish_batch(BEFORE, &targets, 0, N);
    let mut fails = Vec::new();
    check_lin2(&lin, &mut fails);
    assert!(fails.is_empty(), "{fails:?}");

    let (from_child, to_parent) = pipe();
    let (from_parent, mut to_child) = pipe();
    // SAFETY: this file's only test runs on this thread; libtest's main
    // thread just waits for it, holding no lock the child needs. The child
    // uses jitffi, the allocator and plain reads and writes, then leaves
    // with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        drop((from_child, to_child));
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            child(&targets, &before, &lin, to_parent, from_parent)
        }))
        .unwrap_or(6);
        // SAFETY: ends the forked process without running the parent's
        // exit handlers or the test harness.
        unsafe { libc::_exit(code) };
    }
    drop((to_parent, from_parent));
    let mut reader = BufReader::new(from_child);
    let mut child_addrs: Vec<HashSet<usize>> = vec![HashSet::new(); targets.len()];
    let mut child_fails = Vec::new();
    let mut read_until = |end: &str, child_addrs: &mut Vec<HashSet<usize>>| loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            return false;
        }
        let line = line.trim_end();
        if line == end {
            return true;
        }
        if let Some(f) = line.strip_prefix("fail ") {
            child_fails.push(f.to_string());
        } else if let Some(rest) = line.strip_prefix("new ") {
            let mut f = rest.split(' ');
            let t: usize = f.next().unwrap().parse().unwrap();
            child_addrs[t].extend(f.map(|h| usize::from_str_radix(h, 16).unwrap()));
        } else {
            panic!("unexpected line from the child: {line:?}");
        }
    };
    let first = read_until("end1", &mut child_addrs);

    // The parent's own code after the fork: twice the child's first batch,
    // so the child's second batch would land on it if they shared a tail.
    let ours = publish_batch(PARENT, &targets, 0, 2 * N);
    let cifs = NewCifs::new(PARENT);
    for (t, target) in targets.iter().enumerate() {
        check_stubs(
            &format!("parent, own {}", target.name),
            &ours[t],
            &mut fails,
        );
    }
    cifs.check(PARENT, &mut fails);
    to_child.write_all(b"go\n").unwrap();
    drop(to_child);
    let second = first && read_until("end2", &mut child_addrs);
    let mut status = 0;
    // SAFETY: waits for the process forked above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);

    // After the child's second batch: everything of ours still intact.
    for (t, target) in targets.iter().enumerate() {
        check_stubs(
            &format!("parent, pre-fork {}", target.name),
            &before[t],
            &mut fails,
        );
        check_stubs(
            &format!("parent, own {}", target.name),
            &ours[t],
            &mut fails,
        );
    }
    check_lin2(&lin, &mut fails);
    cifs.check(PARENT, &mut fails);

    let died = if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit status {}", libc::WEXITSTATUS(status))
    };
    assert!(
        first && second,
        "the child stopped reporting ({died}); failures so far: {child_fails:#?}"
    );
    assert!(child_fails.is_empty(), "in the child: {child_fails:#?}");
    assert!(fails.is_empty(), "in the parent: {fails:#?}");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child: {died}"
    );
    // Where the child's code went. Under the mprotect fallback each
    // process maps private pages, so equal addresses in the two processes
    // are different memory; the double-mapped views are shared, so the
    // child's code must lie outside every shared chunk it inherited.
    let all = maps::audit();
    for (t, target) in targets.iter().enumerate() {
        if target.strategy() == Strategy::MprotectFlip {
            continue;
        }
        let mut parents: Vec<usize> = ours[t].iter().map(|s| s.0).collect();
        parents.extend(before[t].iter().map(|s| s.0));
        if t == 0 {
            parents.extend(cifs.entries());
        }
        for &p in &parents {
            let m = maps::mapping_of(&all, p);
            assert!(m.perms.ends_with('s'), "{}: {}", target.name, m.line);
            for &c in &child_addrs[t] {
                assert!(
                    c < m.start || c >= m.end,
                    "{}: the child's code at {c:#x} lies in the parent's chunk {}",
                    target.name,
                    m.line
                );
            }
        }
        let overlap: Vec<String> = parents
            .iter()
            .filter(|p| child_addrs[t].contains(p))
            .map(|p| format!("{p:#x}"))
            .collect();
        assert!(
            overlap.is_empty(),
            "{}: both processes published at {overlap:?}",
            target.name
        );
    }
    // Every target got 2N child stubs (and the global one the child's cifs).
    for (t, addrs) in child_addrs.iter().enumerate() {
        let want = 2 * N + if t == 0 { 4 } else { 0 };
        assert_eq!(addrs.len(), want, "{}", targets[t].name);
    }
}
