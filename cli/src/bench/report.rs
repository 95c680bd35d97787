//! The human-readable report: aligned tables of medians and ratios.

use std::fmt::Write as _;

use super::{calls, Report};

/// Column alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table of text cells, rendered with columns padded to their widest
/// cell and two spaces between columns.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these `(header, alignment)` columns.
    pub fn new(columns: &[(&str, Align)]) -> Table {
        Table {
            headers: columns.iter().map(|c| c.0.to_string()).collect(),
            align: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty, extra ones dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as lines, each indented by `indent`, without trailing
    /// spaces.
    pub fn render(&self, indent: &str) -> String {
        let n = self.headers.len();
        let cell = |row: &[String], i: usize| row.get(i).cloned().unwrap_or_default();
        let width: Vec<usize> = (0..n)
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| cell(r, i).chars().count())
                    .chain([self.headers[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |row: &[String]| {
            let mut s = String::from(indent);
            for (i, w) in width.iter().enumerate() {
                let text = cell(row, i);
                let pad = w - text.chars().count();
                if i > 0 {
                    s.push_str("  ");
                }
                match self.align.get(i).copied().unwrap_or(Align::Left) {
                    Align::Left => {
                        s.push_str(&text);
                        s.push_str(&" ".repeat(pad));
                    }
                    Align::Right => {
                        s.push_str(&" ".repeat(pad));
                        s.push_str(&text);
                    }
                }
            }
            s.truncate(s.trim_end().len());
            s.push('\n');
            s
        };
        let mut out = line(&self.headers);
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// Nanoseconds with three significant digits (at most two decimals).
pub fn ns(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// An optional time; `-` when not measured.
pub fn opt_ns(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), ns)
}

/// A speed-up (`slower / faster`) as `12.3x`.
pub fn speedup(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.1}x"),
        _ => "-".into(),
    }
}

/// A cost ratio (`this / reference`) with two decimals.
pub fn ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "-".into()
    }
}

/// The whole report as text.
pub fn text(r: &Report) -> String {
    use Align::{Left as L, Right as R};
    let mut out = String::new();
    let m = &r.machine;
    let _ = writeln!(
        out,
        "jitffi bench: jitffi {} ({}), CPU {} ({} logical CPUs), {} {}",
        r.jitffi.version, r.jitffi.abi, m.cpu, m.logical_cpus, m.arch, m.os
    );
    match &r.libffi {
        Some(l) => {
            let _ = writeln!(
                out,
                "libffi: {} ({})",
                l.path,
                l.version.as_deref().map_or_else(
                    || "version not reported: no ffi_get_version".to_string(),
                    |v| format!("version {v}")
                )
            );
        }
        None => {
            let _ = writeln!(
                out,
                "libffi: not loaded (see stderr); libffi columns are `-`"
            );
        }
    }
    let _ = writeln!(
        out,
        "{} samples per measurement of ~{} ms each; medians in ns per call",
        r.samples, r.sample_ms
    );

    if !r.calls.is_empty() {
        let _ = writeln!(
            out,
            "\nCalls (direct: through a function pointer; C stub: gcc's (fn, rvalue, avalue) stub)"
        );
        let mut t = Table::new(&[
            ("", L),
            ("signature", L),
            ("direct", R),
            ("C stub", R),
            ("jitffi raw", R),
            ("jitffi packed", R),
            ("libffi", R),
            ("libffi/raw", R),
            ("raw/C stub", R),
            ("packed/direct", R),
        ]);
        for c in &r.calls {
            t.row(vec![
                c.name.clone(),
                calls::short(&c.name).to_string(),
                ns(c.direct_ns),
                ns(c.c_stub_ns),
                ns(c.jitffi_raw_ns),
                ns(c.jitffi_packed_ns),
                opt_ns(c.libffi_ns),
                speedup(c.ratios.libffi_over_jitffi_raw),
                ratio(c.ratios.jitffi_raw_over_c_stub),
                ratio(c.ratios.jitffi_packed_over_direct),
            ]);
        }
        out.push_str(&t.render("  "));
    }

    if !r.closures.is_empty() {
        let _ = writeln!(
            out,
            "\nClosures (called through the code pointer; minimal handler)"
        );
        let mut t = Table::new(&[
            ("", L),
            ("direct", R),
            ("RawClosure", R),
            ("Closure::new", R),
            ("libffi", R),
            ("libffi/raw", R),
            ("raw/direct", R),
            ("Closure::new/direct", R),
        ]);
        for c in &r.closures {
            t.row(vec![
                c.name.clone(),
                ns(c.direct_ns),
                ns(c.jitffi_raw_closure_ns),
                ns(c.jitffi_closure_ns),
                opt_ns(c.libffi_closure_ns),
                speedup(c.ratios.libffi_over_jitffi_raw_closure),
                ratio(c.ratios.jitffi_raw_closure_over_direct),
                ratio(c.ratios.jitffi_closure_over_direct),
            ]);
        }
        out.push_str(&t.render("  "));
    }

    if let Some(l) = &r.closure_life {
        let _ = writeln!(out, "\nClosure life, S2 (allocate + prepare + free)");
        let mut t = Table::new(&[
            ("RawClosure::new+drop", R),
            ("Closure::new+drop", R),
            ("libffi alloc+prep_closure_loc+free", R),
            ("libffi/raw", R),
        ]);
        t.row(vec![
            ns(l.jitffi_raw_closure_ns),
            ns(l.jitffi_closure_ns),
            opt_ns(l.libffi_ns),
            speedup(l.ratios.libffi_over_jitffi_raw_closure),
        ]);
        out.push_str(&t.render("  "));
    }

    if !r.prep.is_empty() {
        let _ = writeln!(
            out,
            "\nCif preparation (jitffi: Cif::new of a compiled shape; cold: classify + emit + publish)"
        );
        let mut t = Table::new(&[
            ("", L),
            ("jitffi cache hit", R),
            ("libffi ffi_prep_cif", R),
            ("libffi/jitffi", R),
            ("jitffi cold", R),
        ]);
        for p in &r.prep {
            t.row(vec![
                p.name.clone(),
                ns(p.jitffi_cache_hit_ns),
                opt_ns(p.libffi_ns),
                speedup(p.ratios.libffi_over_jitffi_cache_hit),
                ns(p.jitffi_cold_ns),
            ]);
        }
        out.push_str(&t.render("  "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_lines_have_no_trailing_space() {
        let mut t = Table::new(&[("name", Align::Left), ("ns", Align::Right)]);
        t.row(vec!["S1".into(), "1.37".into()]);
        t.row(vec!["a longer one".into(), "144".into()]);
        t.row(vec!["short".into()]);
        assert_eq!(
            t.render("> "),
            "> name            ns\n\
             > S1            1.37\n\
             > a longer one   144\n\
             > short\n"
        );
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut t = Table::new(&[("x", Align::Right), ("y", Align::Left)]);
        t.row(vec!["µs".into(), "é".into()]);
        assert_eq!(t.render(""), " x  y\nµs  é\n");
    }

    #[test]
    fn numbers_keep_three_significant_digits() {
        assert_eq!(ns(1.3749), "1.37");
        assert_eq!(ns(28.94), "28.9");
        assert_eq!(ns(144.4), "144");
        assert_eq!(ns(3512.0), "3512");
        assert_eq!(ns(f64::NAN), "-");
        assert_eq!(opt_ns(None), "-");
        assert_eq!(speedup(Some(10.54)), "10.5x");
        assert_eq!(speedup(None), "-");
        assert_eq!(ratio(1.4149), "1.41");
    }
}
