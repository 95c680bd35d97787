//! `--svg`: a grouped bar chart of the ratios, written as SVG text (no
//! font backend needed: the viewer lays out the labels).

use std::fmt::Write as _;

use super::Report;

/// One data series: a legend entry, a colour, and whether its values are
/// speed-ups (labelled `12.3x`) or cost ratios (labelled `1.23`).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub colour: &'static str,
    pub speedup: bool,
}

/// A group of bars at one x position; `bars` are `(series, value)`, a
/// `None` value (not measured) draws no bar.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub label: String,
    /// Consecutive groups of one section share a caption under the axis.
    pub section: String,
    pub bars: Vec<(usize, Option<f64>)>,
}

/// A bar chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub title: String,
    pub subtitle: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub groups: Vec<Group>,
}

/// A step of 1, 2, 2.5 or 5 times a power of ten giving at most about six
/// intervals up to `max`, and the axis top (a multiple of the step >= max).
pub fn nice_axis(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let rough = max / 5.0;
    let mag = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * mag);
    let top = (max / step).ceil() * step;
    (step, top)
}

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => s.push(' '),
            c => s.push(c),
        }
    }
    s
}

/// Formats one bar's value label.
fn value_label(v: f64, speedup: bool) -> String {
    if speedup {
        format!("{v:.1}x")
    } else {
        format!("{v:.2}")
    }
}

// Layout, in SVG user units.
const BAR_W: f64 = 22.0;
const GROUP_GAP: f64 = 18.0;
const SECTION_GAP: f64 = 36.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 70.0;
const PLOT_H: f64 = 300.0;
const LEGEND_ROW: f64 = 20.0;

/// Renders the chart.
pub fn render(chart: &Chart) -> String {
    let max = chart
        .groups
        .iter()
        .flat_map(|g| g.bars.iter().filter_map(|b| b.1))
        .fold(0.0, f64::max);
    let (step, top) = nice_axis(max);
    // x positions: groups left to right, a wider gap between sections.
    let mut xs = Vec::with_capacity(chart.groups.len());
    let mut x = LEFT + GROUP_GAP;
    for (i, g) in chart.groups.iter().enumerate() {
        if i > 0 && chart.groups[i - 1].section != g.section {
            x += SECTION_GAP;
        }
        xs.push(x);
        x += g.bars.len().max(1) as f64 * BAR_W + GROUP_GAP;
    }
    let plot_right = x.max(LEFT + 200.0);
    let width = (plot_right + RIGHT).max(560.0);
    let base = TOP + PLOT_H;
    let legend_top = base + 62.0;
    let height = legend_top + chart.series.len() as f64 * LEGEND_ROW + 16.0;
    let y_of = |v: f64| base - v / top * PLOT_H;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect class="background" x="0" y="0" width="{width:.0}" height="{height:.0}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="24" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        width / 2.0,
        escape(&chart.title)
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="44" text-anchor="middle" fill="dimgray">{}</text>"#,
        width / 2.0,
        escape(&chart.subtitle)
    );
    // Y axis: grid lines, ticks and labels.
    let ticks = (top / step).round() as usize;
    for k in 0..=ticks {
        let v = k as f64 * step;
        let y = y_of(v);
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{plot_right:.1}" y2="{y:.1}" stroke="gainsboro"/>"#
        );
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="black"/>"#,
            LEFT - 5.0
        );
        let label = if step.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"#,
            LEFT - 8.0,
            y + 4.0
        );
    }
    // Parity: a ratio of 1.
    if top >= 1.0 {
        let y = y_of(1.0);
        let _ = writeln!(
            s,
            r#"<line class="parity" x1="{LEFT}" y1="{y:.1}" x2="{plot_right:.1}" y2="{y:.1}" stroke="gray" stroke-dasharray="4 3"/>"#
        );
    }
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + PLOT_H / 2.0,
        escape(&chart.y_label)
    );
    // Bars with their value labels.
    for (g, &gx) in chart.groups.iter().zip(&xs) {
        for (j, &(series, value)) in g.bars.iter().enumerate() {
            let bx = gx + j as f64 * BAR_W;
            let Some(v) = value.filter(|v| v.is_finite() && *v >= 0.0) else {
                continue;
            };
            let Some(ser) = chart.series.get(series) else {
                continue;
            };
            let y = y_of(v);
            let label = value_label(v, ser.speedup);
            let _ = writeln!(
                s,
                r#"<rect class="bar" x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                bx + 1.0,
                BAR_W - 2.0,
                base - y,
                ser.colour,
                escape(&format!("{} {}", g.label, ser.name)),
                escape(&label)
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{}</text>"#,
                bx + BAR_W / 2.0,
                y - 3.0,
                escape(&label)
            );
        }
        let gw = g.bars.len().max(1) as f64 * BAR_W;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            gx + gw / 2.0,
            base + 18.0,
            escape(&g.label)
        );
    }
    // X axis and section captions.
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{base:.1}" x2="{plot_right:.1}" y2="{base:.1}" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{TOP:.1}" x2="{LEFT}" y2="{base:.1}" stroke="black"/>"#
    );
    let mut i = 0;
    while i < chart.groups.len() {
        let section = &chart.groups[i].section;
        let mut j = i;
        while j + 1 < chart.groups.len() && &chart.groups[j + 1].section == section {
            j += 1;
        }
        let right = xs[j] + chart.groups[j].bars.len().max(1) as f64 * BAR_W;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{}</text>"#,
            (xs[i] + right) / 2.0,
            base + 38.0,
            escape(section)
        );
        i = j + 1;
    }
    // Legend.
    for (k, ser) in chart.series.iter().enumerate() {
        let y = legend_top + k as f64 * LEGEND_ROW;
        let _ = writeln!(
            s,
            r#"<rect class="swatch" x="{LEFT}" y="{:.1}" width="14" height="14" fill="{}"/>"#,
            y - 11.0,
            ser.colour
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{y:.1}">{}</text>"#,
            LEFT + 22.0,
            escape(&ser.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The chart of a report: per call signature the libffi speed-up and
/// packed / direct; per closure signature the libffi speed-up and
/// RawClosure / direct.
pub fn chart(r: &Report) -> Chart {
    let series = vec![
        Series {
            name: "calls: libffi ffi_call / jitffi raw (speed-up)".into(),
            colour: "#2b6cb0",
            speedup: true,
        },
        Series {
            name: "calls: jitffi packed / direct call (cost)".into(),
            colour: "#90cdf4",
            speedup: false,
        },
        Series {
            name: "closures: libffi closure / jitffi RawClosure (speed-up)".into(),
            colour: "#c05621",
            speedup: true,
        },
        Series {
            name: "closures: jitffi RawClosure / direct call (cost)".into(),
            colour: "#fbd38d",
            speedup: false,
        },
    ];
    let mut groups: Vec<Group> = r
        .calls
        .iter()
        .map(|c| Group {
            label: c.name.clone(),
            section: "calls".into(),
            bars: vec![
                (0, c.ratios.libffi_over_jitffi_raw),
                (1, Some(c.ratios.jitffi_packed_over_direct)),
            ],
        })
        .collect();
    groups.extend(r.closures.iter().map(|c| Group {
        label: c.name.clone(),
        section: "closures".into(),
        bars: vec![
            (2, c.ratios.libffi_over_jitffi_raw_closure),
            (3, Some(c.ratios.jitffi_raw_closure_over_direct)),
        ],
    }));
    let libffi = r.libffi.as_ref().map_or_else(
        || "libffi not loaded".to_string(),
        |l| match &l.version {
            Some(v) => format!("libffi {v}"),
            None => format!("libffi {}", l.path),
        },
    );
    Chart {
        title: format!("jitffi {} vs the system libffi", r.jitffi.version),
        subtitle: format!(
            "CPU {}; {}; median of {} samples",
            r.machine.cpu, libffi, r.samples
        ),
        y_label: "ratio (x)".into(),
        series,
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_steps_are_round_and_cover_the_maximum() {
        assert_eq!(nice_axis(18.6), (5.0, 20.0));
        assert_eq!(nice_axis(10.0), (2.0, 10.0));
        assert_eq!(nice_axis(2.57), (1.0, 3.0));
        assert_eq!(nice_axis(144.0), (50.0, 150.0));
        assert_eq!(nice_axis(0.0), (0.2, 1.0));
        assert_eq!(nice_axis(f64::NAN), (0.2, 1.0));
        for m in [0.3, 1.0, 1.7, 7.3, 12.0, 99.0, 1234.0] {
            let (step, top) = nice_axis(m);
            assert!(top >= m && top - step < m, "{m}: {step} {top}");
            assert!(top / step <= 7.0 + 1e-9, "{m}: {step} {top}");
        }
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"a<b & "c" 'd'>"#),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(escape("bell\u{7}"), "bell ");
    }

    fn sample() -> Chart {
        Chart {
            title: "T <&>".into(),
            subtitle: "sub".into(),
            y_label: "ratio".into(),
            series: vec![
                Series {
                    name: "a".into(),
                    colour: "#000",
                    speedup: true,
                },
                Series {
                    name: "b".into(),
                    colour: "#111",
                    speedup: false,
                },
            ],
            groups: vec![
                Group {
                    label: "S1".into(),
                    section: "calls".into(),
                    bars: vec![(0, Some(10.5)), (1, Some(1.41))],
                },
                Group {
                    label: "S2".into(),
                    section: "calls".into(),
                    bars: vec![(0, None), (1, Some(1.2))],
                },
                Group {
                    label: "S2".into(),
                    section: "closures".into(),
                    bars: vec![(0, Some(5.8)), (1, Some(2.38))],
                },
            ],
        }
    }

    #[test]
    fn one_rect_per_measured_bar_and_one_swatch_per_series() {
        let svg = render(&sample());
        assert!(svg.starts_with("<svg "));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches(r#"<rect class="bar""#).count(), 5);
        assert_eq!(svg.matches(r#"<rect class="swatch""#).count(), 2);
        assert!(svg.contains(">10.5x<") && svg.contains(">1.41<"));
        assert!(svg.contains("T &lt;&amp;&gt;"));
        assert_eq!(svg.matches(">calls<").count(), 1);
        assert_eq!(svg.matches(">closures<").count(), 1);
    }

    #[test]
    fn bars_are_proportional_and_stand_on_the_axis() {
        let svg = render(&sample());
        // (y, height) of every bar.
        let bars: Vec<(f64, f64)> = svg
            .lines()
            .filter(|l| l.starts_with(r#"<rect class="bar""#))
            .map(|l| (attr(l, "y"), attr(l, "height")))
            .collect();
        let base = TOP + PLOT_H;
        for (y, h) in &bars {
            assert!((y + h - base).abs() < 0.11, "{y} {h}");
        }
        // 10.5 and 1.41 on an axis to 12.5: heights in proportion.
        let (h0, h1) = (bars[0].1, bars[1].1);
        assert!((h0 / h1 - 10.5 / 1.41).abs() < 0.01, "{h0} {h1}");
        assert!((h0 - 10.5 / 12.5 * PLOT_H).abs() < 0.11, "{h0}");
    }

    #[test]
    fn tags_balance() {
        let svg = render(&sample());
        for tag in ["svg", "text", "title", "rect"] {
            let open =
                svg.matches(&format!("<{tag} ")).count() + svg.matches(&format!("<{tag}>")).count();
            let self_closed = svg
                .split(&format!("<{tag}"))
                .skip(1)
                .filter(|rest| {
                    let end = rest.find('>').unwrap();
                    rest[..end].ends_with('/')
                })
                .count();
            let close = svg.matches(&format!("</{tag}>")).count();
            assert_eq!(open, self_closed + close, "<{tag}>");
        }
    }

    fn attr(line: &str, name: &str) -> f64 {
        let key = format!(" {name}=\"");
        let at = line.find(&key).unwrap() + key.len();
        line[at..at + line[at..].find('"').unwrap()]
            .parse()
            .unwrap()
    }
}
