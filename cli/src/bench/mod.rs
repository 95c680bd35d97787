//! `jitffi bench`: jitffi against the system libffi on this machine, in
//! one run, without criterion.
//!
//! What is measured (DESIGN.md's S1-S8):
//!
//! - **calls** `calls/S1` .. `calls/S8`: a direct call through a
//!   black-boxed function pointer, gcc's hand-written `(fn, rvalue,
//!   avalue)` stub for that signature, jitffi's libffi form
//!   (`Cif::call_raw`), jitffi's packed form (`Cif::call_packed`, typed
//!   with the native return) and libffi's `ffi_call`.
//! - **closures** `closures/S2`, `closures/S3`, `closures/S5`: called
//!   through the code pointer: a direct call of an equivalent `extern "C"
//!   fn`, a jitffi `RawClosure` and a libffi closure with the same minimal
//!   handler, and a jitffi `Closure::new` with a Rust handler.
//! - **closure life** `closure-life/S2`: `RawClosure::new` + drop and
//!   `Closure::new` + drop against `ffi_closure_alloc` +
//!   `ffi_prep_closure_loc` + `ffi_closure_free`.
//! - **prep** `prep/S5`, `prep/S8`: `Cif::new` of a shape already compiled
//!   (a cache hit) against `ffi_prep_cif`, and jitffi's cold compile.
//!
//! `--filter SUBSTR` keeps the cases whose name (above) contains SUBSTR,
//! ignoring case: `--filter S2`, `--filter closures`, `--filter prep/`.
//!
//! Every form is called once and its result compared with the C stub's
//! (or the direct call's) before anything is timed: a wrong result is an
//! error, never a number. Each measurement calibrates a batch size so one
//! sample takes about 2 ms (0.5 ms with `--quick`), warms up, then takes
//! 31 samples (5 with `--quick`, or `--samples N`) and keeps the median
//! and the minimum nanoseconds per call. The timed loop is criterion's
//! (`black_box(f())` per call, monomorphised), so medians are comparable
//! with `cargo bench --bench calls` / `--bench closures`. Between
//! processes, a median can move by ~0.4 ns with the address-space layout
//! (seen on S2: jitffi raw 2.7 or 3.1-3.5 ns, RawClosure 3.3 or 3.8 ns;
//! criterion's runs vary the same way); `setarch -R jitffi bench` fixes
//! the layout when comparing runs.
//!
//! The system libffi is loaded at run time (`dlopen`), from `--libffi
//! PATH`, else `$JITFFI_LIBFFI`, else `libffi.so.8` found by the loader.
//! Without it the run goes on: one message on stderr says why, the libffi
//! columns are `-` in the table and `null` in JSON.
//!
//! # JSON (`--json`), schema `jitffi-bench/1`
//!
//! One document on stdout; times are median nanoseconds per call, `null`
//! where libffi is not loaded; `min_ns` holds the fastest sample of each;
//! every ratio is `a_over_b` = a / b of the medians.
//!
//! ```text
//! {
//!   "schema": "jitffi-bench/1",
//!   "jitffi": {"version": "0.1.0", "abi": "SysV64"},
//!   "machine": {"cpu": "AMD EPYC", "logical_cpus": 2, "arch": "x86_64", "os": "linux"},
//!   "libffi": {"requested": "libffi.so.8",
//!              "path": "/usr/lib/x86_64-linux-gnu/libffi.so.8.1.2",
//!              "version": null} | null,
//!   "samples": 31, "sample_ms": 2.0,
//!   "calls": [{"name": "S2", "signature": "int(int, int)",
//!              "direct_ns": 1.37, "c_stub_ns": 2.54, "jitffi_raw_ns": 2.76,
//!              "jitffi_packed_ns": 1.93, "libffi_ns": 28.9 | null,
//!              "min_ns": {"direct", "c_stub", "jitffi_raw", "jitffi_packed", "libffi"},
//!              "ratios": {"libffi_over_jitffi_raw": 10.5 | null,
//!                         "jitffi_raw_over_c_stub": 1.09,
//!                         "jitffi_packed_over_direct": 1.41}}, ...],
//!   "closures": [{"name": "S2", "signature": "int(int, int)",
//!                 "direct_ns", "jitffi_raw_closure_ns", "jitffi_closure_ns",
//!                 "libffi_closure_ns" | null, "min_ns": {...},
//!                 "ratios": {"jitffi_raw_closure_over_direct",
//!                            "jitffi_closure_over_direct",
//!                            "libffi_over_jitffi_raw_closure" | null}}, ...],
//!   "closure_life": {"signature": "int(int, int)", "jitffi_raw_closure_ns",
//!                    "jitffi_closure_ns", "libffi_ns" | null, "min_ns": {...},
//!                    "ratios": {"libffi_over_jitffi_raw_closure" | null}} | null,
//!   "prep": [{"name": "S5", "signature": "...", "jitffi_cache_hit_ns",
//!             "jitffi_cold_ns", "libffi_ns" | null, "min_ns": {...},
//!             "ratios": {"libffi_over_jitffi_cache_hit" | null}}, ...]
//! }
//! ```
//!
//! Filtered-out cases are absent (`closure_life` is `null`). `libffi.version`
//! is `ffi_get_version()`, which libffi only has from 3.5 on.
//!
//! `--svg FILE` also writes a bar chart of the ratios (per call signature:
//! the libffi speed-up and packed / direct; per closure signature: the
//! libffi speed-up and RawClosure / direct).

mod calls;
mod closures;
mod measure;
mod prep;
mod report;
mod svg;
mod sysffi;
mod types;

use std::io::Write as _;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::error::CliError;
use measure::{Config, Stats};
use sysffi::Libffi;

/// `jitffi bench` options.
#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Print one JSON document (schema jitffi-bench/1) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write a bar chart of the ratios to FILE (SVG).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Fewer, shorter samples: a few seconds in all.
    #[arg(long)]
    pub quick: bool,
    /// Samples per measurement [default: 31, 5 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub samples: Option<u32>,
    /// Only cases whose name contains SUBSTR, ignoring case (names:
    /// calls/S1..S8, closures/S2 S3 S5, closure-life/S2, prep/S5 S8).
    #[arg(long, value_name = "SUBSTR")]
    pub filter: Option<String>,
    /// The libffi to compare with [default: $JITFFI_LIBFFI, else
    /// libffi.so.8 found by the dynamic loader].
    #[arg(long, value_name = "PATH")]
    pub libffi: Option<String>,
}

/// Runs the benchmark and prints the report (and writes the chart).
pub fn run(opts: &Options) -> Result<(), CliError> {
    let io = |path: &std::path::Path| {
        let what = format!("writing {}", path.display());
        move |error| CliError::Io { what, error }
    };
    // An unwritable chart path fails before seconds of measuring.
    let chart = match &opts.svg {
        Some(path) => Some((path, std::fs::File::create(path).map_err(io(path))?)),
        None => None,
    };
    let report = match collect(opts) {
        Ok(r) => r,
        Err(e) => {
            if let Some((path, file)) = chart {
                drop(file);
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    };
    if let Some((path, mut file)) = chart {
        file.write_all(svg::render(&svg::chart(&report)).as_bytes())
            .map_err(io(path))?;
    }
    let text = if opts.json {
        let mut s = serde_json::to_string_pretty(&report).map_err(|e| CliError::Io {
            what: "formatting the JSON report".into(),
            error: e.into(),
        })?;
        s.push('\n');
        s
    } else {
        report::text(&report)
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|error| CliError::Io {
            what: "writing the report to stdout".into(),
            error,
        })
}

/// Every case name, in run order.
pub fn case_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = calls::NAMES.to_vec();
    v.extend(closures::NAMES);
    v.push(closures::LIFE);
    v.extend(prep::NAMES);
    v
}

/// Measures everything `opts` selects.
fn collect(opts: &Options) -> Result<Report, CliError> {
    let mut cfg = if opts.quick {
        Config::QUICK
    } else {
        Config::DEFAULT
    };
    if let Some(n) = opts.samples {
        cfg.samples = n as usize;
    }
    let filter = opts.filter.as_deref().map(str::to_lowercase);
    let selected: Vec<&str> = case_names()
        .into_iter()
        .filter(|n| matches(filter.as_deref(), n))
        .collect();
    if selected.is_empty() {
        return Err(CliError::Usage(format!(
            "no benchmark name contains `{}`; the names are {}",
            opts.filter.as_deref().unwrap_or_default(),
            case_names().join(", ")
        )));
    }

    let env = std::env::var("JITFFI_LIBFFI").ok();
    let requested = sysffi::choose_path(opts.libffi.as_deref(), env.as_deref());
    let mut ffi = match Libffi::load(&requested) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("jitffi bench: {e}");
            None
        }
    };
    let libffi = ffi.as_ref().map(|l| LibffiInfo {
        requested: requested.clone(),
        path: l.path.clone(),
        version: l.version.clone(),
    });

    let progress =
        ProgressBar::with_draw_target(Some(selected.len() as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("bench [{bar:24}] {pos}/{len} {msg}") {
        progress.set_style(style.progress_chars("=> "));
    }
    let runner = Runner {
        cfg,
        filter,
        progress,
    };
    let measured = (|| {
        let calls = calls::run(&runner, ffi.as_mut())?;
        let (closures, closure_life) = closures::run(&runner, ffi.as_mut())?;
        let prep = prep::run(&runner, ffi.as_mut())?;
        Ok::<_, CliError>((calls, closures, closure_life, prep))
    })();
    runner.progress.finish_and_clear();
    let (calls, closures, closure_life, prep) = measured?;

    Ok(Report {
        schema: SCHEMA,
        jitffi: JitffiInfo {
            version: env!("CARGO_PKG_VERSION"),
            abi: format!("{:?}", jitffi::Abi::host()),
        },
        machine: Machine::here(),
        libffi,
        samples: cfg.samples,
        sample_ms: cfg.sample_time.as_secs_f64() * 1e3,
        calls,
        closures,
        closure_life,
        prep,
    })
}

/// Whether `name` passes the (lower-cased) filter.
fn matches(filter: Option<&str>, name: &str) -> bool {
    filter.is_none_or(|f| name.to_lowercase().contains(f))
}

/// Runs measurements and reports progress.
pub(crate) struct Runner {
    cfg: Config,
    filter: Option<String>,
    progress: ProgressBar,
}

impl Runner {
    /// Whether the case `name` is selected.
    fn selected(&self, name: &str) -> bool {
        matches(self.filter.as_deref(), name)
    }

    /// Times `f` (see [`measure::measure`]), showing `what` in the
    /// progress line.
    fn time<R, F: FnMut() -> R>(&self, what: &str, f: F) -> Stats {
        self.progress.set_message(what.to_string());
        measure::measure(&self.cfg, f)
    }

    /// One case finished.
    fn case_done(&self) {
        self.progress.inc(1);
    }
}

/// The error for a call whose result is wrong, or a libffi refusal.
// There is no CliError variant for a failed self-check; this one prints
// as "jitffi: signature mismatch: bench check failed: ...".
fn check_failed(message: String) -> CliError {
    CliError::Check(format!("bench check failed: {message}"))
}

/// Nanoseconds to three decimals (picoseconds are below the noise).
fn round_ns(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

/// `a / b` to three decimals; NaN (JSON null) when `b` is not positive.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        round_ns(a / b)
    } else {
        f64::NAN
    }
}

/// A measurement as the report gives it.
impl Stats {
    /// The median, in nanoseconds to three decimals.
    fn ns(self) -> f64 {
        round_ns(self.median_ns)
    }

    /// The fastest sample, in nanoseconds to three decimals.
    fn min(self) -> f64 {
        round_ns(self.min_ns)
    }

    /// This median over `base`'s (see [`ratio`]).
    fn over(self, base: Stats) -> f64 {
        ratio(self.median_ns, base.median_ns)
    }
}

/// The `schema` field.
pub const SCHEMA: &str = "jitffi-bench/1";

/// The whole report; see the module docs for the JSON.
#[derive(Serialize, Debug, Clone)]
pub struct Report {
    pub schema: &'static str,
    pub jitffi: JitffiInfo,
    pub machine: Machine,
    pub libffi: Option<LibffiInfo>,
    pub samples: usize,
    pub sample_ms: f64,
    pub calls: Vec<CallRow>,
    pub closures: Vec<ClosureRow>,
    pub closure_life: Option<LifeRow>,
    pub prep: Vec<PrepRow>,
}

/// This build of jitffi.
#[derive(Serialize, Debug, Clone)]
pub struct JitffiInfo {
    pub version: &'static str,
    /// The host ABI every cif uses.
    pub abi: String,
}

/// Where the numbers come from.
#[derive(Serialize, Debug, Clone)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    pub logical_cpus: usize,
    pub arch: &'static str,
    pub os: &'static str,
}

impl Machine {
    fn here() -> Machine {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Machine {
            cpu: cpu_model(&info).unwrap_or_else(|| "unknown".into()),
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            arch: std::env::consts::ARCH,
            os: std::env::consts::OS,
        }
    }
}

/// The first `model name` in /proc/cpuinfo text; where there is none
/// (arm64 Linux), the first core's implementer and part numbers.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    field("model name").or_else(|| {
        let (implementer, part) = (field("CPU implementer")?, field("CPU part")?);
        Some(format!("CPU implementer {implementer}, part {part}"))
    })
}

/// The libffi compared against.
#[derive(Serialize, Debug, Clone)]
pub struct LibffiInfo {
    /// What was asked for (`--libffi`, `JITFFI_LIBFFI` or the soname).
    pub requested: String,
    /// The file mapped, from /proc/self/maps.
    pub path: String,
    /// `ffi_get_version()`, where libffi has it.
    pub version: Option<String>,
}

/// One outgoing-call signature.
#[derive(Serialize, Debug, Clone)]
pub struct CallRow {
    pub name: String,
    pub signature: String,
    pub direct_ns: f64,
    pub c_stub_ns: f64,
    pub jitffi_raw_ns: f64,
    pub jitffi_packed_ns: f64,
    pub libffi_ns: Option<f64>,
    pub min_ns: CallMin,
    pub ratios: CallRatios,
}

/// Fastest samples of a [`CallRow`].
#[derive(Serialize, Debug, Clone)]
pub struct CallMin {
    pub direct: f64,
    pub c_stub: f64,
    pub jitffi_raw: f64,
    pub jitffi_packed: f64,
    pub libffi: Option<f64>,
}

/// Ratios of a [`CallRow`]'s medians.
#[derive(Serialize, Debug, Clone)]
pub struct CallRatios {
    /// How many times faster jitffi's libffi form is than `ffi_call`.
    pub libffi_over_jitffi_raw: Option<f64>,
    pub jitffi_raw_over_c_stub: f64,
    pub jitffi_packed_over_direct: f64,
}

/// One closure signature.
#[derive(Serialize, Debug, Clone)]
pub struct ClosureRow {
    pub name: String,
    pub signature: String,
    pub direct_ns: f64,
    pub jitffi_raw_closure_ns: f64,
    pub jitffi_closure_ns: f64,
    pub libffi_closure_ns: Option<f64>,
    pub min_ns: ClosureMin,
    pub ratios: ClosureRatios,
}

/// Fastest samples of a [`ClosureRow`].
#[derive(Serialize, Debug, Clone)]
pub struct ClosureMin {
    pub direct: f64,
    pub jitffi_raw_closure: f64,
    pub jitffi_closure: f64,
    pub libffi_closure: Option<f64>,
}

/// Ratios of a [`ClosureRow`]'s medians.
#[derive(Serialize, Debug, Clone)]
pub struct ClosureRatios {
    pub jitffi_raw_closure_over_direct: f64,
    pub jitffi_closure_over_direct: f64,
    pub libffi_over_jitffi_raw_closure: Option<f64>,
}

/// A closure's life (S2).
#[derive(Serialize, Debug, Clone)]
pub struct LifeRow {
    pub signature: String,
    pub jitffi_raw_closure_ns: f64,
    pub jitffi_closure_ns: f64,
    pub libffi_ns: Option<f64>,
    pub min_ns: LifeMin,
    pub ratios: LifeRatios,
}

/// Fastest samples of a [`LifeRow`].
#[derive(Serialize, Debug, Clone)]
pub struct LifeMin {
    pub jitffi_raw_closure: f64,
    pub jitffi_closure: f64,
    pub libffi: Option<f64>,
}

/// Ratios of a [`LifeRow`]'s medians.
#[derive(Serialize, Debug, Clone)]
pub struct LifeRatios {
    pub libffi_over_jitffi_raw_closure: Option<f64>,
}

/// Cif preparation for one signature.
#[derive(Serialize, Debug, Clone)]
pub struct PrepRow {
    pub name: String,
    pub signature: String,
    pub jitffi_cache_hit_ns: f64,
    pub jitffi_cold_ns: f64,
    pub libffi_ns: Option<f64>,
    pub min_ns: PrepMin,
    pub ratios: PrepRatios,
}

/// Fastest samples of a [`PrepRow`].
#[derive(Serialize, Debug, Clone)]
pub struct PrepMin {
    pub jitffi_cache_hit: f64,
    pub jitffi_cold: f64,
    pub libffi: Option<f64>,
}

/// Ratios of a [`PrepRow`]'s medians.
#[derive(Serialize, Debug, Clone)]
pub struct PrepRatios {
    pub libffi_over_jitffi_cache_hit: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_is_a_case_insensitive_substring() {
        assert!(matches(None, "calls/S2"));
        assert!(matches(Some("s2"), "calls/S2"));
        assert!(matches(Some("closure"), "closure-life/S2"));
        assert!(!matches(Some("s2"), "prep/S5"));
        let s2: Vec<_> = case_names()
            .into_iter()
            .filter(|n| matches(Some("s2"), n))
            .collect();
        assert_eq!(s2, ["calls/S2", "closures/S2", "closure-life/S2"]);
        assert_eq!(case_names().len(), 14);
    }

    #[test]
    fn cpu_model_is_the_first_model_name() {
        let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\n\
                    processor\t: 1\nmodel name\t: other\n";
        assert_eq!(cpu_model(info).as_deref(), Some("AMD EPYC 9B14"));
        assert_eq!(cpu_model("Hardware: x\n"), None);
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n\
                   CPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\n\
                   processor\t: 1\nCPU implementer\t: 0x51\nCPU part\t: 0x001\n";
        assert_eq!(
            cpu_model(arm).as_deref(),
            Some("CPU implementer 0x41, part 0xd0c")
        );
    }

    #[test]
    fn ratios_round_and_refuse_zero() {
        assert_eq!(ratio(28.9, 2.76), 10.471);
        assert!(ratio(1.0, 0.0).is_nan());
        assert_eq!(round_ns(1.23456), 1.235);
    }
}
