//! Profiler symbol maps for generated code: `/tmp/perf-<pid>.map`.
//!
//! Code jitffi generates at run time lives in anonymous memory that no ELF
//! file describes, so a profiler sees its samples as bare addresses. `perf`
//! (and tools that follow its convention: bcc, bpftrace, samply, ...)
//! names such code from a text file the process writes itself, one symbol
//! per line:
//!
//! ```text
//! START SIZE name          (START and SIZE in lowercase hex, no 0x)
//! 7f3a1c000000 2d jitffi call [libffi] sysv64 int32_t(int32_t, int32_t)
//! ```
//!
//! With the map on, jitffi appends a line for every piece of code it
//! publishes:
//!
//! | name | what |
//! |---|---|
//! | `jitffi call [libffi] <abi> <signature>` | the `(fn, rvalue, avalue)` stub of a shape |
//! | `jitffi call [packed] <abi> <signature>` | the packed-form stub of a shape |
//! | `jitffi closure thunk <abi> <signature>` | the closure thunk of a shape |
//! | `jitffi closure trampolines` | a page of closure slot trampolines |
//!
//! Signatures are spelled C-like from the types' `Display`:
//! `double(double, double)`, `void(void)`, `struct { double; double; }(void *)`,
//! and for a variadic call `int32_t(void *, ... double, int32_t)` (the types
//! after `...` are the ones this stub was compiled for). Names longer than
//! [`MAX_NAME`] bytes are cut, with `...` at the end.
//!
//! # Turning it on
//!
//! Set `JITFFI_PERF_MAP=1` (or `true`, `yes`) in the environment (read
//! once, at the first code generation), or call [`enable`] from the
//! program before it prepares its cifs. Code published while the map was
//! off is not listed. When off, the check costs one relaxed atomic load,
//! and only where code is published (which is slow anyway).
//!
//! ```
//! use jitffi::{perfmap, Cif, Type};
//! perfmap::enable();
//! assert!(perfmap::is_enabled());
//! // A shape no other test uses, so this code is published now.
//! let args = [Type::u16(), Type::f32(), Type::u16(), Type::f32(), Type::i8()];
//! let cif = Cif::new(Type::f32(), &args).unwrap();
//! let map = std::fs::read_to_string(perfmap::path()).unwrap();
//! let stub = format!("{:x} ", cif.raw_entry() as usize);
//! let line = map.lines().find(|l| l.starts_with(&stub)).unwrap();
//! assert!(line.ends_with(
//!     " jitffi call [libffi] sysv64 float(uint16_t, float, uint16_t, float, int8_t)"
//! ));
//! # std::fs::remove_file(perfmap::path()).unwrap();
//! ```
//!
//! # The file
//!
//! The map is opened once per process with `O_APPEND | O_CREAT` (mode
//! 0644, never truncated: another JIT in the same process may be writing
//! its own lines there too) and `O_NOFOLLOW` (a symlink planted in `/tmp`
//! is refused, not followed). Each line goes out in a single `write(2)`
//! under a lock, so lines of concurrent threads, and of other appenders,
//! never interleave. The file is left behind when the process exits, as
//! `perf report` reads it afterwards; deleting it is the user's business.
//!
//! A forked child has a new pid and needs its own file: the pid is checked
//! before every line, and a child's first line opens `/tmp/perf-<its
//! pid>.map`, which starts with every line the parent had written before
//! the fork (the child inherited that code too). jitffi keeps those lines
//! in memory while the map is on, about 60 bytes per published piece of
//! code. (As with any lock, a fork while another thread is inside a
//! publish would leave the child's lock held.)
//!
//! # Which code perf names
//!
//! `perf` consults the map only for samples in *anonymous* executable
//! memory. The default code arena ([`Strategy::DoubleMappedAnon`]) and the
//! closure trampoline pages are anonymous, and so is
//! [`Strategy::MprotectFlip`]; measured with perf 6.1, `perf report` names
//! `jitffi call [libffi] sysv64 int32_t(int32_t, int32_t)` and the thunks,
//! each with its share of samples. Only an arena that fell back to a memfd
//! ([`Strategy::DoubleMapped`], where policy refuses executable shared
//! anonymous memory) shows as `memfd:jitffi-code (deleted)` plus an offset;
//! profile that case with `JITFFI_FORCE_MPROTECT=1`.
//!
//! [`Strategy::DoubleMappedAnon`]: crate::memory::Strategy::DoubleMappedAnon
//! [`Strategy::MprotectFlip`]: crate::memory::Strategy::MprotectFlip
//! [`Strategy::DoubleMapped`]: crate::memory::Strategy::DoubleMapped
//!
//! If the map cannot be written (`/tmp` read-only or full, a symlink in
//! the way), recording stops for the rest of the process, the code
//! generation itself carries on unaffected, [`is_enabled`] turns false,
//! [`last_error`] says why, and with `JITFFI_DEBUG` set the reason is
//! printed once on stderr.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::abi::Abi;
use crate::emit::EntryForm;
use crate::types::Type;

/// The environment variable that turns the map on (`1`, `true` or `yes`).
///
/// ```
/// assert_eq!(jitffi::perfmap::ENV, "JITFFI_PERF_MAP");
/// ```
pub const ENV: &str = "JITFFI_PERF_MAP";

/// Longest symbol name written, in bytes; longer names (signatures of huge
/// structs) are cut at a character boundary and end in `...`.
///
/// ```
/// assert!(jitffi::perfmap::MAX_NAME >= 256);
/// ```
pub const MAX_NAME: usize = 1024;

/// The environment has not been read yet.
const UNKNOWN: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;
/// Writing failed once; nothing more is recorded.
const BROKEN: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Where the map is written, and what has been written so far.
struct Sink {
    /// The open map and the pid it was opened for (a forked child's
    /// differs).
    file: Option<(File, u32)>,
    /// Every line written by this process (and, after a fork, its
    /// ancestors): a forked child's map starts with them.
    history: Vec<u8>,
}

static SINK: Mutex<Sink> = Mutex::new(Sink {
    file: None,
    history: Vec::new(),
});

static ERROR: OnceLock<String> = OnceLock::new();

/// Whether code is being recorded: `JITFFI_PERF_MAP` was set to `1`,
/// `true` or `yes` when first asked, or [`enable`] was called, and no
/// write has failed.
///
/// ```
/// use jitffi::perfmap;
/// perfmap::enable();
/// assert!(perfmap::is_enabled());
/// # let _ = std::fs::remove_file(perfmap::path());
/// ```
#[inline]
pub fn is_enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        ON => true,
        UNKNOWN => read_env(),
        _ => false,
    }
}

#[cold]
#[inline(never)]
fn read_env() -> bool {
    let on = std::env::var(ENV).is_ok_and(|v| {
        let v = v.trim();
        v == "1" || v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("yes")
    });
    // The first to decide wins: `enable` may have run meanwhile.
    let _ = STATE.compare_exchange(
        UNKNOWN,
        if on { ON } else { OFF },
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    STATE.load(Ordering::Relaxed) == ON
}

/// Turns the map on for the rest of the process, whatever the
/// environment says (the `jitffi` command's `--perf-map`). Code published
/// from now on is recorded; call it before preparing cifs. Does nothing
/// once a write has failed.
///
/// ```
/// use jitffi::{perfmap, Cif, Type};
/// perfmap::enable();
/// let cif = Cif::new(Type::i8(), &[Type::u64(), Type::i8(), Type::u64(), Type::i16()]).unwrap();
/// let map = std::fs::read_to_string(perfmap::path()).unwrap();
/// assert!(map.contains(&format!("{:x} ", cif.packed_entry() as usize)));
/// # std::fs::remove_file(perfmap::path()).unwrap();
/// ```
pub fn enable() {
    let _ = STATE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
        (s != BROKEN).then_some(ON)
    });
}

/// The map file of this process: `/tmp/perf-<pid>.map` (the path `perf`
/// looks for; it does not follow `TMPDIR`).
///
/// ```
/// let p = jitffi::perfmap::path();
/// assert_eq!(p, std::path::PathBuf::from(format!("/tmp/perf-{}.map", std::process::id())));
/// ```
pub fn path() -> PathBuf {
    map_path(Path::new("/tmp"), std::process::id())
}

/// Why recording stopped, if a write to the map failed.
///
/// ```
/// // Normally nothing fails.
/// assert_eq!(jitffi::perfmap::last_error(), None);
/// ```
pub fn last_error() -> Option<String> {
    ERROR.get().cloned()
}

fn map_path(dir: &Path, pid: u32) -> PathBuf {
    dir.join(format!("perf-{pid}.map"))
}

/// Records `size` bytes of code at `start`, named by `name` (called only
/// when the map is on).
#[inline]
pub(crate) fn record(start: *const u8, size: usize, name: impl FnOnce() -> String) {
    if is_enabled() {
        record_slow(start as usize, size, &name());
    }
}

/// Records a call stub of the given form.
#[inline]
pub(crate) fn record_call(
    form: EntryForm,
    start: *const u8,
    size: usize,
    sig: (Abi, &Type, &[Type], Option<usize>),
) {
    record(start, size, || {
        let form = match form {
            EntryForm::Libffi => "libffi",
            EntryForm::Packed => "packed",
        };
        format!("jitffi call [{form}] {}", signature(sig))
    });
}

/// Records a closure thunk.
#[inline]
pub(crate) fn record_thunk(
    start: *const u8,
    size: usize,
    sig: (Abi, &Type, &[Type], Option<usize>),
) {
    record(start, size, || {
        format!("jitffi closure thunk {}", signature(sig))
    });
}

/// `sysv64 int32_t(int32_t, double)`, `sysv64 void(void)`,
/// `sysv64 int32_t(void *, ... double)`.
fn signature((abi, ret, args, fixed): (Abi, &Type, &[Type], Option<usize>)) -> String {
    use std::fmt::Write as _;
    let mut s = format!("{} {ret}(", abi.name());
    let fixed = fixed.map(|n| n.min(args.len()));
    for (i, a) in args.iter().enumerate() {
        if fixed == Some(i) {
            s.push_str(if i == 0 { "... " } else { ", ... " });
        } else if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{a}");
    }
    match fixed {
        _ if args.is_empty() && fixed.is_none() => s.push_str("void"),
        Some(n) if n == args.len() => s.push_str(if n == 0 { "..." } else { ", ..." }),
        _ => {}
    }
    s.push(')');
    s
}

/// One map line: `start size name\n`, the name on one line and at most
/// [`MAX_NAME`] bytes.
fn line(start: usize, size: usize, name: &str) -> Vec<u8> {
    let mut clean: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.len() > MAX_NAME {
        let mut cut = MAX_NAME - 3;
        while !clean.is_char_boundary(cut) {
            cut -= 1;
        }
        clean.truncate(cut);
        clean.push_str("...");
    }
    format!("{start:x} {size:x} {clean}\n").into_bytes()
}

fn sink() -> MutexGuard<'static, Sink> {
    // Every step leaves the sink consistent, so a poisoned lock is usable.
    SINK.lock().unwrap_or_else(|e| e.into_inner())
}

#[cold]
#[inline(never)]
fn record_slow(start: usize, size: usize, name: &str) {
    let text = line(start, size, name);
    let mut sink = sink();
    // Another thread may have failed while we waited for the lock.
    if STATE.load(Ordering::Relaxed) != ON {
        return;
    }
    if let Err(e) = sink.append(Path::new("/tmp"), std::process::id(), &text) {
        STATE.store(BROKEN, Ordering::Relaxed);
        sink.file = None;
        sink.history = Vec::new();
        let msg = format!("perf map not written, no more code will be recorded: {e}");
        if ERROR.set(msg.clone()).is_ok() && debug_on() {
            eprintln!("jitffi: {msg}");
        }
    }
}

/// `JITFFI_DEBUG` set to anything but empty or `0` (as in memory.rs).
fn debug_on() -> bool {
    std::env::var_os("JITFFI_DEBUG").is_some_and(|v| !v.is_empty() && v != "0")
}

fn open_map(dir: &Path, pid: u32) -> std::io::Result<File> {
    let path = map_path(dir, pid);
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// One `write(2)` of all of `bytes`: with `O_APPEND` it lands whole at the
/// end of the file, never interleaved with another writer's.
fn write_once(file: &File, bytes: &[u8]) -> std::io::Result<()> {
    loop {
        match (&*file).write(bytes) {
            Ok(n) if n == bytes.len() => return Ok(()),
            // Only a full disk or a signal after some bytes cut a write to
            // a regular file short; a partial line cannot be repaired.
            Ok(n) => {
                return Err(std::io::Error::new(
                    ErrorKind::WriteZero,
                    format!("short write ({n} of {} bytes)", bytes.len()),
                ))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

impl Sink {
    /// Appends one line to `dir`'s map of process `pid`, opening it first
    /// if this is the first line of `pid` (the first ever, or the first
    /// after a fork).
    fn append(&mut self, dir: &Path, pid: u32, text: &[u8]) -> std::io::Result<()> {
        let current = matches!(&self.file, Some((_, p)) if *p == pid);
        if !current {
            // A forked child closes only its copy of the parent's
            // descriptor; the parent keeps writing its own map.
            self.file = None;
            let file = open_map(dir, pid)?;
            // The child inherited the code its ancestors recorded. Nobody
            // else knows this new pid's map yet, so one write per line is
            // not needed here.
            if !self.history.is_empty() {
                (&file).write_all(&self.history)?;
            }
            self.file = Some((file, pid));
        }
        if let Some((file, _)) = &self.file {
            write_once(file, text)?;
        }
        self.history.extend_from_slice(text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig_name(ret: Type, args: &[Type], fixed: Option<usize>) -> String {
        signature((Abi::SysV64, &ret, args, fixed))
    }

    #[test]
    fn signatures_read_like_c() {
        assert_eq!(sig_name(Type::void(), &[], None), "sysv64 void(void)");
        assert_eq!(
            sig_name(Type::i32(), &[Type::i32(), Type::i32()], None),
            "sysv64 int32_t(int32_t, int32_t)"
        );
        let pair = Type::structure([Type::f64(), Type::f64()]).unwrap();
        assert_eq!(
            sig_name(pair.clone(), &[pair, Type::pointer()], None),
            "sysv64 struct { double; double; }(struct { double; double; }, void *)"
        );
        assert_eq!(
            sig_name(
                Type::i32(),
                &[Type::pointer(), Type::f64(), Type::i32()],
                Some(1)
            ),
            "sysv64 int32_t(void *, ... double, int32_t)"
        );
        assert_eq!(
            sig_name(Type::i32(), &[Type::f64()], Some(0)),
            "sysv64 int32_t(... double)"
        );
        assert_eq!(
            sig_name(Type::i32(), &[Type::pointer()], Some(1)),
            "sysv64 int32_t(void *, ...)"
        );
        assert_eq!(sig_name(Type::void(), &[], Some(0)), "sysv64 void(...)");
    }

    #[test]
    fn lines_are_hex_and_single_and_bounded() {
        assert_eq!(
            line(0x7f00_1234_0000, 0x2d, "a b"),
            b"7f0012340000 2d a b\n"
        );
        assert_eq!(line(16, 4096, "x\ny\r\tz"), b"10 1000 x y  z\n");
        let long = "é".repeat(MAX_NAME);
        let l = String::from_utf8(line(1, 1, &long)).unwrap();
        let name = l.strip_prefix("1 1 ").unwrap().strip_suffix('\n').unwrap();
        assert!(
            name.len() <= MAX_NAME && name.ends_with("..."),
            "{}",
            name.len()
        );
        assert!(!name.contains('\n'));
    }

    fn scratch_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("jitffi-perfmap-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_new_pid_gets_its_own_file_starting_with_the_history() {
        let dir = scratch_dir("pid");
        let mut s = Sink {
            file: None,
            history: Vec::new(),
        };
        s.append(&dir, 100, b"10 1 a\n").unwrap();
        s.append(&dir, 100, b"20 1 b\n").unwrap();
        // What a forked child (pid 101) does with its copy of the sink.
        s.append(&dir, 101, b"30 1 c\n").unwrap();
        s.append(&dir, 101, b"40 1 d\n").unwrap();
        let read = |pid| std::fs::read_to_string(map_path(&dir, pid)).unwrap();
        assert_eq!(read(100), "10 1 a\n20 1 b\n");
        assert_eq!(read(101), "10 1 a\n20 1 b\n30 1 c\n40 1 d\n");
        // Appends, never truncates, and creates files 0644 (less umask).
        let meta = std::fs::metadata(map_path(&dir, 100)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o7133, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn existing_lines_are_kept_and_symlinks_refused() {
        let dir = scratch_dir("keep");
        std::fs::write(map_path(&dir, 7), "1 1 someone else\n").unwrap();
        let mut s = Sink {
            file: None,
            history: Vec::new(),
        };
        s.append(&dir, 7, b"2 1 ours\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(map_path(&dir, 7)).unwrap(),
            "1 1 someone else\n2 1 ours\n"
        );
        let target = dir.join("target");
        std::os::unix::fs::symlink(&target, map_path(&dir, 8)).unwrap();
        let mut s = Sink {
            file: None,
            history: Vec::new(),
        };
        assert!(s.append(&dir, 8, b"3 1 x\n").is_err());
        assert!(!target.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_directory_is_an_error_not_a_panic() {
        let mut s = Sink {
            file: None,
            history: Vec::new(),
        };
        let e = s
            .append(Path::new("/nonexistent/jitffi"), 1, b"1 1 x\n")
            .unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent/jitffi/perf-1.map"),
            "{e}"
        );
        assert!(s.file.is_none() && s.history.is_empty());
    }
}
