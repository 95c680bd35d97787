//! The profiler map (`/tmp/perf-<pid>.map`, src/perfmap.rs) seen from
//! outside: each scenario re-runs this test binary as a child process (the
//! environment variable is read once per process), the child generates
//! code and prints what it made and its own `/proc/self/maps`, and the
//! parent reads the child's map file and checks it against both.
//!
//! Code is generated for the host's convention (named `sysv64` or
//! `aapcs64` in the map); the Microsoft x64 shapes exist on x86-64 only.
#![cfg(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_os = "linux"
))]

use std::collections::{BTreeMap, HashSet};
use std::ffi::c_void;
use std::io::Write;
use std::path::PathBuf;

use jitffi::{cache, perfmap, Abi, Cif, Closure, RawClosure, Type};

#[path = "support/maps.rs"]
mod maps;

#[path = "support/child.rs"]
mod child;

/// The host's C convention, which the map names code by.
const HOST: Abi = Abi::host();

/// `sig` as the map names it in the host's convention: `sysv64 sig`.
fn host_sig(sig: &str) -> String {
    format!("{} {sig}", HOST.name())
}

/// Set in a child process to the name of the test it runs.
const CHILD_ENV: &str = "JITFFI_PERF_MAP_TEST_CHILD";

/// What a child printed, and the map file it left behind.
struct ChildRun {
    pid: u32,
    stdout: String,
    /// The child's map file, without whatever a dead process of the same
    /// pid had left there before the child started; `None` if none exists.
    map: Option<String>,
    /// `/proc/self/maps` of the child, dumped just before it exited.
    mappings: Vec<maps::Mapping>,
}

impl ChildRun {
    /// Every `@tag` line's fields.
    fn tagged(&self, tag: &str) -> Vec<Vec<&str>> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix('@'))
            .filter_map(|l| {
                let mut f = l.split(' ');
                (f.next() == Some(tag)).then(|| f.collect())
            })
            .collect()
    }
}

/// Removes a map file when the test ends, however it ends.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn map_path(pid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/perf-{pid}.map"))
}

/// In the child spawned for `test`, runs `body` and returns `None`. In the
/// parent, runs this binary on `test` alone with `JITFFI_PERF_MAP` set to
/// `perf_env` (removed if `None`), and returns what the child left.
fn in_child(
    test: &str,
    perf_env: Option<&str>,
    cleanup: &mut Cleanup,
    body: impl FnOnce(),
) -> Option<ChildRun> {
    if std::env::var(CHILD_ENV).as_deref() == Ok(test) {
        let before = std::fs::metadata(perfmap::path()).map_or(0, |m| m.len());
        // After a newline: libtest has printed "test <name> ... " unterminated.
        println!("\n@pid {} {before}", std::process::id());
        body();
        for m in maps::audit() {
            println!("@maps {}", m.line);
        }
        std::io::stdout().flush().unwrap();
        return None;
    }
    let mut cmd = child::self_command();
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .env_remove("JITFFI_DEBUG");
    match perf_env {
        Some(v) => cmd.env(perfmap::ENV, v),
        None => cmd.env_remove(perfmap::ENV),
    };
    let out = cmd.output().expect("spawning the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let pid_line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("@pid "))
        .unwrap_or_else(|| panic!("the child ran no test:\n{stdout}\n{stderr}"));
    let (pid, before) = pid_line.split_once(' ').unwrap();
    let (pid, before): (u32, usize) = (pid.parse().unwrap(), before.parse().unwrap());
    cleanup.0.push(map_path(pid));
    assert!(
        out.status.success(),
        "the child failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    let map = std::fs::read_to_string(map_path(pid))
        .ok()
        .map(|m| m[before..].to_string());
    let mappings = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("@maps "))
        .map(parse_mapping)
        .collect();
    Some(ChildRun {
        pid,
        stdout,
        map,
        mappings,
    })
}

fn parse_mapping(line: &str) -> maps::Mapping {
    let mut f = line.split_whitespace();
    let (a, b) = f.next().unwrap().split_once('-').unwrap();
    maps::Mapping {
        start: usize::from_str_radix(a, 16).unwrap(),
        end: usize::from_str_radix(b, 16).unwrap(),
        perms: f.next().unwrap().to_string(),
        line: line.to_string(),
    }
}

/// One map line.
#[derive(Debug, Clone)]
struct Entry {
    start: usize,
    size: usize,
    name: String,
}

/// Parses a map strictly: `START SIZE name`, lowercase hex without `0x`,
/// a non-empty name, a size above zero.
fn parse_map(text: &str) -> Vec<Entry> {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "unterminated last line"
    );
    text.lines()
        .map(|l| {
            let mut f = l.splitn(3, ' ');
            let mut hex = |what: &str| {
                let h = f.next().unwrap_or_else(|| panic!("no {what} in {l:?}"));
                assert!(
                    !h.is_empty() && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                    "{what} is not lowercase hex in {l:?}"
                );
                usize::from_str_radix(h, 16).unwrap()
            };
            let (start, size) = (hex("START"), hex("SIZE"));
            let name = f.next().unwrap_or_default().to_string();
            assert!(size > 0, "empty symbol in {l:?}");
            assert!(!name.trim().is_empty(), "no name in {l:?}");
            Entry { start, size, name }
        })
        .collect()
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap()
}

/// The checks every map must pass: each symbol lies inside one
/// read-execute mapping of the child, and no two symbols overlap.
fn assert_well_formed(run: &ChildRun, entries: &[Entry]) {
    assert!(!run.mappings.is_empty(), "the child dumped no maps");
    for e in entries {
        let m = maps::mapping_of(&run.mappings, e.start);
        assert!(
            m.perms.starts_with("r-x") && e.start + e.size <= m.end,
            "{e:?} is not inside one read-execute mapping: {}",
            m.line
        );
    }
    let mut sorted = entries.to_vec();
    sorted.sort_by_key(|e| e.start);
    for w in sorted.windows(2) {
        assert!(w[0].start + w[0].size <= w[1].start, "overlap: {w:?}");
    }
}

fn by_start(entries: &[Entry]) -> BTreeMap<usize, &Entry> {
    entries.iter().map(|e| (e.start, e)).collect()
}

fn hex(s: &str) -> usize {
    usize::from_str_radix(s, 16).unwrap()
}

// ------------------------------------------------------------- shapes

/// A signature the child compiles, with the name the map must give it.
struct Shape {
    sig: String,
    abi: Abi,
    ret: Type,
    args: Vec<Type>,
    fixed: Option<usize>,
    /// Whether the child makes closures of it.
    closure: bool,
}

fn shapes() -> Vec<Shape> {
    let quad = Type::structure(vec![Type::i64(); 4]).unwrap();
    let shape = |sig, abi, ret, args, fixed, closure| Shape {
        sig,
        abi,
        ret,
        args,
        fixed,
        closure,
    };
    vec![
        shape(
            host_sig("int32_t(int32_t, int32_t)"),
            HOST,
            Type::i32(),
            vec![Type::i32(), Type::i32()],
            None,
            true,
        ),
        shape(
            host_sig("double(double, double)"),
            HOST,
            Type::f64(),
            vec![Type::f64(), Type::f64()],
            None,
            true,
        ),
        shape(
            host_sig("void(void)"),
            HOST,
            Type::void(),
            vec![],
            None,
            true,
        ),
        shape(
            host_sig(
                "struct { int64_t; int64_t; int64_t; int64_t; }\
             (struct { int64_t; int64_t; int64_t; int64_t; }, long double)",
            ),
            HOST,
            quad.clone(),
            vec![quad, Type::long_double()],
            None,
            true,
        ),
        shape(
            host_sig("int32_t(void *, ... double, int32_t)"),
            HOST,
            Type::i32(),
            vec![Type::pointer(), Type::f64(), Type::i32()],
            Some(1),
            false,
        ),
        #[cfg(target_arch = "x86_64")]
        shape(
            "win64 int64_t(int64_t, float)".to_string(),
            Abi::Win64,
            Type::i64(),
            vec![Type::i64(), Type::f32()],
            None,
            true,
        ),
    ]
}

unsafe extern "C" fn idle_handler(
    _cif: *const c_void,
    _ret: *mut c_void,
    _args: *const *mut c_void,
    _data: *mut c_void,
) {
}

/// Trampolines made by the enabled child: enough for two slot chunks.
const CLOSURES: usize = 300;
const UNCACHED_THREADS: usize = 4;
const UNCACHED_EACH: usize = 25;

/// The child of `env_enabled_map_names_all_generated_code`.
fn generate_everything() {
    assert!(perfmap::is_enabled(), "JITFFI_PERF_MAP did not enable it");
    let mut keep = Vec::new();
    for (i, s) in shapes().iter().enumerate() {
        let cif = Cif::with_abi(s.abi, &s.ret, &s.args, s.fixed).unwrap();
        let compiled = cache::lookup(s.abi, &s.ret, &s.args, s.fixed).unwrap();
        println!(
            "@call {i} {:x} {:x} {}",
            cif.raw_entry() as usize,
            cif.packed_entry() as usize,
            compiled.code_bytes
        );
        if s.closure {
            let c = RawClosure::new(&cif, idle_handler, std::ptr::null_mut()).unwrap();
            let thunk = compiled.closure_thunk().unwrap() as usize;
            println!("@thunk {i} {thunk:x}");
            println!("@tramp {:x}", c.code_ptr() as usize);
            keep.push(c);
        }
    }
    // Working code, not just names: a typed closure called natively.
    let cif = Cif::new(Type::i32(), &[Type::i32(), Type::i32()]).unwrap();
    let add = Closure::new(&cif, |a, r| r.set(a.get::<i32>(0) + a.get::<i32>(1))).unwrap();
    // SAFETY: int32_t(int32_t, int32_t), alive during the call.
    let f: extern "C" fn(i32, i32) -> i32 = unsafe { add.as_fn() };
    assert_eq!(f(40, 2), 42);
    println!("@tramp {:x}", add.code_ptr() as usize);
    // Enough slots for a second trampoline page.
    let void = Cif::new(Type::void(), &[]).unwrap();
    for _ in 0..CLOSURES {
        let c = RawClosure::new(&void, idle_handler, std::ptr::null_mut()).unwrap();
        println!("@tramp {:x}", c.code_ptr() as usize);
        keep.push(c);
    }
    // Lines from threads publishing at once must not interleave.
    let uncached: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..UNCACHED_THREADS)
            .map(|t| {
                s.spawn(move || {
                    (0..UNCACHED_EACH)
                        .map(|_| {
                            let args = vec![Type::u8(); t + 1];
                            let c =
                                cache::compile_uncached(HOST, &Type::u8(), &args, None).unwrap();
                            format!(
                                "@uncached {t} {:x} {:x} {}",
                                c.raw_entry as usize, c.packed_entry as usize, c.code_bytes
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    for l in uncached {
        println!("{l}");
    }
    drop(add);
    drop(keep);
}

// -------------------------------------------------------------- tests

#[test]
fn env_enabled_map_names_all_generated_code() {
    const TEST: &str = "env_enabled_map_names_all_generated_code";
    let mut cleanup = Cleanup(Vec::new());
    let Some(run) = in_child(TEST, Some("1"), &mut cleanup, generate_everything) else {
        return;
    };
    let map = run.map.as_deref().expect("no map file");
    let entries = parse_map(map);
    assert_well_formed(&run, &entries);
    let at = by_start(&entries);
    assert_eq!(at.len(), entries.len(), "an address listed twice");
    let name_at = |addr: usize| {
        at.get(&addr)
            .unwrap_or_else(|| panic!("{addr:#x} is not in the map:\n{map}"))
    };
    let shapes = shapes();
    let mut expected = 0;
    for f in run.tagged("call") {
        let s = &shapes[f[0].parse::<usize>().unwrap()];
        let (raw, packed) = (name_at(hex(f[1])), name_at(hex(f[2])));
        assert_eq!(raw.name, format!("jitffi call [libffi] {}", s.sig));
        assert_eq!(packed.name, format!("jitffi call [packed] {}", s.sig));
        assert_eq!(raw.size + packed.size, f[3].parse::<usize>().unwrap());
        expected += 2;
    }
    assert_eq!(expected, 2 * shapes.len());
    let thunks = run.tagged("thunk");
    assert_eq!(thunks.len(), shapes.iter().filter(|s| s.closure).count());
    for f in thunks {
        let s = &shapes[f[0].parse::<usize>().unwrap()];
        assert_eq!(
            name_at(hex(f[1])).name,
            format!("jitffi closure thunk {}", s.sig)
        );
        expected += 1;
    }
    let uncached = run.tagged("uncached");
    assert_eq!(uncached.len(), UNCACHED_THREADS * UNCACHED_EACH);
    for f in uncached {
        let n: usize = f[0].parse().unwrap();
        let sig = host_sig(&format!("uint8_t({})", vec!["uint8_t"; n + 1].join(", ")));
        let (raw, packed) = (name_at(hex(f[1])), name_at(hex(f[2])));
        assert_eq!(raw.name, format!("jitffi call [libffi] {sig}"));
        assert_eq!(packed.name, format!("jitffi call [packed] {sig}"));
        assert_eq!(raw.size + packed.size, f[3].parse::<usize>().unwrap());
        expected += 2;
    }
    // Every trampoline lies in a listed page of trampolines.
    let page = page_size();
    let tramp_pages: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.name == "jitffi closure trampolines")
        .collect();
    for e in &tramp_pages {
        assert_eq!((e.start % page, e.size), (0, page), "{e:?}");
    }
    let mut used_pages = HashSet::new();
    let tramps = run.tagged("tramp");
    assert_eq!(
        tramps.len(),
        shapes.iter().filter(|s| s.closure).count() + 1 + CLOSURES
    );
    for f in tramps {
        let p = hex(f[0]);
        let e = tramp_pages
            .iter()
            .find(|e| e.start <= p && p < e.start + e.size)
            .unwrap_or_else(|| panic!("trampoline {p:#x} is in no listed page:\n{map}"));
        used_pages.insert(e.start);
    }
    assert!(used_pages.len() >= 2, "{used_pages:?}");
    expected += tramp_pages.len();
    // Nothing else was generated, and nothing was listed twice.
    assert_eq!(entries.len(), expected, "unexpected lines in\n{map}");
}

#[test]
fn other_spellings_enable_and_disable_it() {
    const TEST: &str = "other_spellings_enable_and_disable_it";
    let mut cleanup = Cleanup(Vec::new());
    let body = || {
        let on = perfmap::is_enabled();
        println!("@enabled {on}");
        Cif::new(Type::u32(), &[Type::f32(), Type::u32()]).unwrap();
    };
    for (value, on) in [
        ("true", true),
        ("YES", true),
        (" 1 ", true),
        ("0", false),
        ("", false),
        ("no", false),
        ("2", false),
    ] {
        let Some(run) = in_child(TEST, Some(value), &mut cleanup, body) else {
            return;
        };
        assert_eq!(run.tagged("enabled"), [[on.to_string()]], "{value:?}");
        assert_eq!(run.map.is_some(), on, "{value:?}");
        if let Some(map) = &run.map {
            assert_well_formed(&run, &parse_map(map));
        }
    }
}

#[test]
fn disabled_by_default_no_file_is_created() {
    const TEST: &str = "disabled_by_default_no_file_is_created";
    let mut cleanup = Cleanup(Vec::new());
    let Some(run) = in_child(TEST, None, &mut cleanup, || {
        assert!(!perfmap::is_enabled());
        let cif = Cif::new(Type::i32(), &[Type::i32(), Type::i32()]).unwrap();
        let c = Closure::new(&cif, |a, r| r.set(a.get::<i32>(0) * a.get::<i32>(1))).unwrap();
        // SAFETY: int32_t(int32_t, int32_t), alive during the call.
        let f: extern "C" fn(i32, i32) -> i32 = unsafe { c.as_fn() };
        assert_eq!(f(6, 7), 42);
        cache::compile_uncached(HOST, &Type::void(), &[], None).unwrap();
        assert!(!perfmap::is_enabled());
    }) else {
        return;
    };
    let left = run.map.as_deref().unwrap_or_default();
    assert!(
        run.map.is_none() || left.is_empty(),
        "a map appeared without being asked for: {}:\n{left}",
        map_path(run.pid).display()
    );
}

#[test]
fn enable_at_run_time_records_code_from_then_on() {
    const TEST: &str = "enable_at_run_time_records_code_from_then_on";
    let mut cleanup = Cleanup(Vec::new());
    let Some(run) = in_child(TEST, None, &mut cleanup, || {
        let before = Cif::new(Type::i16(), &[Type::i16()]).unwrap();
        assert!(!perfmap::is_enabled());
        perfmap::enable();
        assert!(perfmap::is_enabled());
        assert_eq!(perfmap::path(), map_path(std::process::id()));
        let after = Cif::new(Type::u16(), &[Type::u16(), Type::f64()]).unwrap();
        let c = Closure::new(&after, |a, r| r.set(a.get::<u16>(0))).unwrap();
        println!(
            "@before {:x} {:x}",
            before.raw_entry() as usize,
            before.packed_entry() as usize
        );
        println!(
            "@after {:x} {:x}",
            after.raw_entry() as usize,
            after.packed_entry() as usize
        );
        println!("@tramp {:x}", c.code_ptr() as usize);
        assert_eq!(perfmap::last_error(), None);
    }) else {
        return;
    };
    let map = run.map.as_deref().expect("enable() wrote no map");
    let entries = parse_map(map);
    assert_well_formed(&run, &entries);
    let at = by_start(&entries);
    for a in &run.tagged("before")[0] {
        assert!(!at.contains_key(&hex(a)), "code from before enable(): {a}");
    }
    let after = &run.tagged("after")[0];
    let sig = host_sig("uint16_t(uint16_t, double)");
    assert_eq!(
        at[&hex(after[0])].name,
        format!("jitffi call [libffi] {sig}")
    );
    assert_eq!(
        at[&hex(after[1])].name,
        format!("jitffi call [packed] {sig}")
    );
    let thunk = format!("jitffi closure thunk {sig}");
    assert_eq!(entries.iter().filter(|e| e.name == thunk).count(), 1);
    let p = hex(run.tagged("tramp")[0][0]);
    assert!(
        entries
            .iter()
            .any(|e| e.name == "jitffi closure trampolines"
                && e.start <= p
                && p < e.start + e.size),
        "{p:#x} in\n{map}"
    );
    // The two stubs, the thunk and one page of trampolines.
    assert_eq!(entries.len(), 4, "{map}");
}

#[test]
fn a_forked_child_writes_its_own_map_starting_with_inherited_code() {
    const TEST: &str = "a_forked_child_writes_its_own_map_starting_with_inherited_code";
    let mut cleanup = Cleanup(Vec::new());
    let Some(run) = in_child(TEST, Some("1"), &mut cleanup, || {
        let inherited = Cif::new(Type::i64(), &[Type::i8()]).unwrap();
        println!("@inherited {:x}", inherited.raw_entry() as usize);
        std::io::stdout().flush().unwrap();
        // SAFETY: the forked process only compiles a cif, prints and
        // leaves with _exit; no lock of jitffi's is held across the fork
        // (this test's thread is the only one generating code).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = std::panic::catch_unwind(|| {
                let own = Cif::new(Type::i64(), &[Type::i8(), Type::i8()]).unwrap();
                println!(
                    "@forked {} {:x}",
                    std::process::id(),
                    own.raw_entry() as usize
                );
                std::io::stdout().flush().unwrap();
            })
            .is_ok();
            // SAFETY: ends the forked process without running the
            // parent's exit handlers or the test harness.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the process forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status}"
        );
        let later = Cif::new(Type::i64(), &[Type::i8(), Type::i8(), Type::i8()]).unwrap();
        println!("@later {:x}", later.raw_entry() as usize);
    }) else {
        return;
    };
    let forked = &run.tagged("forked")[0];
    let fork_pid: u32 = forked[0].parse().unwrap();
    cleanup.0.push(map_path(fork_pid));
    let inherited = hex(run.tagged("inherited")[0][0]);
    let own = hex(forked[1]);
    let later = hex(run.tagged("later")[0][0]);

    let names: Vec<String> = ["int8_t", "int8_t, int8_t", "int8_t, int8_t, int8_t"]
        .iter()
        .map(|a| {
            format!(
                "jitffi call [libffi] {}",
                host_sig(&format!("int64_t({a})"))
            )
        })
        .collect();
    let (first, second, third) = (names[0].as_str(), names[1].as_str(), names[2].as_str());
    let has = |entries: &[Entry], name: &str| entries.iter().any(|e| e.name == name);

    // Names tell the two processes' code apart (addresses would too: a
    // forked process moves off the code chunk it inherited).
    let parent = parse_map(run.map.as_deref().expect("no map of the child"));
    assert_well_formed(&run, &parent);
    assert!(!has(&parent, second), "the fork's code is not ours");
    let parent = by_start(&parent);
    assert_eq!(parent[&inherited].name, first);
    assert_eq!(parent[&later].name, third);

    let text = std::fs::read_to_string(map_path(fork_pid)).expect("the fork wrote no map");
    let fork = parse_map(&text);
    assert!(
        !has(&fork, third),
        "the parent's later code is not the fork's"
    );
    let fork_at = by_start(&fork);
    assert_eq!(fork_at[&inherited].name, first);
    assert_eq!(fork_at[&own].name, second);
    // The inherited lines (both stubs) come first, once; then the fork's.
    assert_eq!(fork.len(), 4, "{text}");
    assert!(text.starts_with(&format!("{inherited:x} ")), "{text}");
}

/// The path column of a `/proc/<pid>/maps` line (empty for plain
/// anonymous memory).
fn mapping_path(line: &str) -> &str {
    let mut rest = line;
    for _ in 0..5 {
        rest = rest.trim_start();
        rest = rest.find(' ').map_or("", |i| &rest[i..]);
    }
    rest.trim()
}

/// Whether `perf` takes a mapping of this path for anonymous memory and
/// so names its code from the perf map (its `is_anon_memory`, plus the
/// unnamed and named anonymous mappings it reports as `//anon`).
fn perf_sees_anonymous(path: &str) -> bool {
    path.is_empty()
        || path.starts_with("//anon")
        || path.starts_with("/dev/zero")
        || path.starts_with("/anon_hugepage")
        || path.starts_with("[anon:")
}

#[test]
fn with_the_map_on_all_named_code_is_in_memory_perf_takes_for_anonymous() {
    const TEST: &str = "with_the_map_on_all_named_code_is_in_memory_perf_takes_for_anonymous";
    assert_eq!(
        mapping_path("7f00-7f10 r-xs 00000000 00:01 5   /dev/zero (deleted)"),
        "/dev/zero (deleted)"
    );
    assert_eq!(mapping_path("7f00-7f10 r-xp 00000000 00:00 0 "), "");
    assert!(!perf_sees_anonymous("/memfd:jitffi-code (deleted)"));
    let mut cleanup = Cleanup(Vec::new());
    let Some(run) = in_child(TEST, Some("1"), &mut cleanup, || {
        let cif = Cif::new(Type::f32(), &[Type::i64(), Type::f32(), Type::u8()]).unwrap();
        let c = Closure::new(&cif, |a, r| r.set(a.get::<f32>(1))).unwrap();
        // SAFETY: float(int64_t, float, uint8_t), alive during the call.
        let f: extern "C" fn(i64, f32, u8) -> f32 = unsafe { c.as_fn() };
        assert_eq!(f(1, 2.5, 3), 2.5);
        let mut big = vec![Type::f64(); 40];
        big.push(Type::structure(vec![Type::i8(); 100]).unwrap());
        cache::compile_uncached(HOST, &Type::f64(), &big, None).unwrap();
        #[cfg(target_arch = "x86_64")]
        Cif::with_abi(Abi::Win64, Type::i32(), &[Type::f64(), Type::i8()], None).unwrap();
        println!("@tramp {:x}", c.code_ptr() as usize);
        let strategy = jitffi::memory::global().unwrap().strategy();
        println!("@strategy {strategy:?}");
    }) else {
        return;
    };
    let map = run.map.as_deref().expect("no map file");
    let entries = parse_map(map);
    assert_well_formed(&run, &entries);
    // Stubs and thunks of the shapes above (two stubs fewer without the
    // Win64 cif), and a page of trampolines.
    let least = if cfg!(target_arch = "x86_64") { 8 } else { 6 };
    assert!(entries.len() >= least, "{map}");
    let tramp = hex(run.tagged("tramp")[0][0]);
    assert!(
        entries
            .iter()
            .any(|e| e.start <= tramp && tramp < e.start + e.size),
        "the trampoline {tramp:#x} is not named:\n{map}"
    );
    // qemu-user cannot mremap a second view of shared anonymous memory, so
    // there the arena falls back to a memfd, which perf sees as a file.
    let strategy = run.tagged("strategy")[0][0];
    if child::under_emulator() && strategy != "DoubleMappedAnon" {
        eprintln!("under the emulator the arena is {strategy}: anonymity not checked");
        return;
    }
    for e in &entries {
        let m = maps::mapping_of(&run.mappings, e.start);
        let path = mapping_path(&m.line);
        assert!(
            perf_sees_anonymous(path) && !path.contains("memfd:"),
            "perf would not use the map for {:?} at {:#x}: it lies in {}",
            e.name,
            e.start,
            m.line
        );
    }
}
