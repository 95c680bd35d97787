//! Timing without criterion: calibrate a batch size, time samples of that
//! many calls, keep the median and the minimum per call.
//!
//! The timed loop is the one criterion's `Bencher::iter` runs (`for _ in
//! 0..n { black_box(f()) }` between two `Instant` reads), monomorphised for
//! each closure, so the per-call overhead matches `cargo bench`.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long and how often to sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Samples per measurement.
    pub samples: usize,
    /// Wall time one sample should take.
    pub sample_time: Duration,
    /// Time spent running the case before the first sample (caches,
    /// branch predictors, clock frequency).
    pub warm_up: Duration,
}

impl Config {
    /// The default run: 31 samples of about 2 ms.
    pub const DEFAULT: Config = Config {
        samples: 31,
        sample_time: Duration::from_millis(2),
        warm_up: Duration::from_millis(10),
    };

    /// `--quick`: 5 samples of about 0.5 ms.
    pub const QUICK: Config = Config {
        samples: 5,
        sample_time: Duration::from_micros(500),
        warm_up: Duration::from_millis(2),
    };
}

/// One measurement, in nanoseconds per call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Median over the samples.
    pub median_ns: f64,
    /// Fastest sample.
    pub min_ns: f64,
    /// Calls per sample.
    pub iters: u64,
}

impl Stats {
    /// Summarises per-call times (ns) of samples of `iters` calls each;
    /// `None` for no samples.
    pub fn from_samples(per_call_ns: &[f64], iters: u64) -> Option<Stats> {
        Some(Stats {
            median_ns: median(per_call_ns)?,
            min_ns: per_call_ns.iter().copied().reduce(f64::min)?,
            iters,
        })
    }
}

/// The median; the mean of the middle two for an even count. NaNs sort
/// last (they never come from a clock, but must not panic).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Most calls one sample may make (a loop of empty calls on a fast
/// machine still takes about a millisecond).
pub const MAX_ITERS: u64 = 1 << 32;

/// Batch size so a sample takes about `target`, given that `iters` calls
/// took `elapsed`. At least 1, at most [`MAX_ITERS`].
pub fn iterations_for(target: Duration, elapsed: Duration, iters: u64) -> u64 {
    let elapsed_ns = elapsed.as_nanos().max(1) as f64;
    let per_call = elapsed_ns / iters.max(1) as f64;
    let n = (target.as_nanos() as f64 / per_call).round();
    if n.is_nan() || n < 1.0 {
        1
    } else if n >= MAX_ITERS as f64 {
        MAX_ITERS
    } else {
        n as u64
    }
}

/// The next calibration batch: grows 10x while far below `target`, then
/// 2x, so calibration costs a few sample times at most.
pub fn next_probe(target: Duration, elapsed: Duration, iters: u64) -> u64 {
    let factor = if elapsed * 100 < target { 10 } else { 2 };
    iters.saturating_mul(factor).min(MAX_ITERS)
}

/// `iters` calls of `f`, timed; the loop of criterion's `Bencher::iter`.
///
/// Never inlined, so each `F` has exactly one loop calling it: LLVM then
/// inlines `f` into it however big `f` is (a closure called from several
/// places stays a call when large, which adds a call and a frame to every
/// iteration: ~4 ns on S8's direct call).
#[inline(never)]
fn batch<R, F: FnMut() -> R>(f: &mut F, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    start.elapsed()
}

/// Times `f`: calibrates the batch size, warms up, then takes
/// `cfg.samples` samples.
///
/// Generic, so every case gets its own copy of the loop with `f` inlined
/// (a `dyn` call would add its own cost to every call measured). Call
/// `f`'s code nowhere else (check results with a separate call
/// expression), so [`batch`] stays its only caller.
pub fn measure<R, F: FnMut() -> R>(cfg: &Config, mut f: F) -> Stats {
    // One untimed call first: one-time costs of the first call (lazy
    // binding, page faults, an emulator translating the code) must not
    // make calibration settle on a batch of one.
    batch(&mut f, 1);
    // Calibrate: probe until one batch takes a quarter of the target.
    let mut iters = 1u64;
    let per_sample = loop {
        let t = batch(&mut f, iters);
        if t * 4 >= cfg.sample_time || iters >= MAX_ITERS {
            break iterations_for(cfg.sample_time, t, iters);
        }
        iters = next_probe(cfg.sample_time, t, iters);
    };
    let start = Instant::now();
    while start.elapsed() < cfg.warm_up {
        batch(&mut f, per_sample);
    }
    let samples: Vec<f64> = (0..cfg.samples.max(1))
        .map(|_| batch(&mut f, per_sample).as_nanos() as f64 / per_sample as f64)
        .collect();
    Stats::from_samples(&samples, per_sample).unwrap_or(Stats {
        median_ns: f64::NAN,
        min_ns: f64::NAN,
        iters: per_sample,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[4.0]), Some(4.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        // An outlier moves the mean, not the median.
        assert_eq!(median(&[1.0, 1.1, 0.9, 1000.0, 1.0]), Some(1.0));
    }

    #[test]
    fn median_survives_nan() {
        assert_eq!(median(&[1.0, f64::NAN, 2.0]), Some(2.0));
    }

    #[test]
    fn stats_keep_median_and_min() {
        let s = Stats::from_samples(&[5.0, 3.0, 4.0, 9.0, 3.5], 100).unwrap();
        assert_eq!((s.median_ns, s.min_ns, s.iters), (4.0, 3.0, 100));
        assert!(Stats::from_samples(&[], 1).is_none());
    }

    #[test]
    fn iterations_scale_to_the_target() {
        let ms = Duration::from_millis;
        // 1000 calls took 10 us: 10 ns each; 2 ms needs 200 000.
        assert_eq!(
            iterations_for(ms(2), Duration::from_micros(10), 1000),
            200_000
        );
        // A call slower than the target: one per sample.
        assert_eq!(iterations_for(ms(1), ms(5), 1), 1);
        // A zero reading (coarse clock) must not divide by zero or explode.
        assert_eq!(iterations_for(ms(1), Duration::ZERO, 1), 1_000_000);
        assert_eq!(iterations_for(ms(1), Duration::ZERO, 0), 1_000_000);
        assert_eq!(
            iterations_for(Duration::from_secs(100), Duration::from_nanos(1), 1 << 20),
            MAX_ITERS
        );
    }

    #[test]
    fn probes_grow_fast_then_slow_and_stop() {
        let target = Duration::from_millis(2);
        assert_eq!(next_probe(target, Duration::from_nanos(50), 1), 10);
        assert_eq!(next_probe(target, Duration::from_micros(100), 10), 20);
        assert_eq!(next_probe(target, Duration::ZERO, MAX_ITERS), MAX_ITERS);
    }

    #[test]
    fn measure_times_something_plausible() {
        let cfg = Config {
            samples: 3,
            sample_time: Duration::from_micros(200),
            warm_up: Duration::ZERO,
        };
        let mut n = 0u64;
        let s = measure(&cfg, || {
            n = n.wrapping_add(black_box(1));
            n
        });
        assert!(s.median_ns > 0.0 && s.median_ns < 1000.0, "{s:?}");
        assert!(s.min_ns <= s.median_ns);
        assert!(s.iters > 1);
        // A slow case: about 50 us a call, so a handful per sample.
        let s = measure(&cfg, || std::thread::sleep(Duration::from_micros(50)));
        assert!(s.median_ns >= 50_000.0, "{s:?}");
        assert!(s.iters <= 4, "{s:?}");
    }
}
