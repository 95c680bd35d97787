//! `jitffi bench`, run through the binary with short settings: the JSON
//! schema, the filter, the chart, the table, and running without libffi.
//! (Numbers are only checked to be measured, never timed against a
//! limit: the machine is shared.)

use assert_cmd::Command;
use serde_json::Value;

mod support;

/// `jitffi bench --quick --samples 2 ARGS...`, with `JITFFI_LIBFFI` unset
/// unless a test sets it.
fn bench(args: &[&str]) -> Command {
    let mut cmd = support::jitffi();
    cmd.env_remove("JITFFI_LIBFFI")
        .args(["bench", "--quick", "--samples", "2"])
        .args(args);
    cmd
}

/// Runs and parses the JSON report; returns it with stderr.
fn json(cmd: &mut Command) -> (Value, String) {
    let out = cmd.output().expect("jitffi runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}; stderr:\n{stderr}",
        out.status
    );
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"));
    (v, stderr)
}

fn positive(row: &Value, key: &str) -> f64 {
    let v = row[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {row}"));
    assert!(v > 0.0 && v.is_finite(), "`{key}` = {v} in {row}");
    v
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|r| r["name"].as_str().expect("a name"))
        .collect()
}

#[test]
fn json_report_has_every_case_measured_against_the_system_libffi() {
    let (v, stderr) = json(&mut bench(&["--json"]));
    // Not a terminal: no progress bar, no message, nothing else.
    assert_eq!(stderr, "", "stderr must stay empty");
    assert_eq!(v["schema"], "jitffi-bench/1");
    assert_eq!(v["samples"], 2);
    assert!(!v["machine"]["cpu"].as_str().unwrap().is_empty());
    assert!(v["machine"]["logical_cpus"].as_u64().unwrap() >= 1);
    assert!(v["jitffi"]["version"].is_string());
    let lib = &v["libffi"];
    assert!(lib.is_object(), "libffi must load here: {lib}");
    assert!(lib["path"].as_str().unwrap().contains("libffi"), "{lib}");
    assert_eq!(lib["requested"], "libffi.so.8");
    assert!(lib.get("version").is_some());

    let calls = &v["calls"];
    assert_eq!(
        names(calls),
        ["S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8"]
    );
    for c in calls.as_array().unwrap() {
        for key in [
            "direct_ns",
            "c_stub_ns",
            "jitffi_raw_ns",
            "jitffi_packed_ns",
            "libffi_ns",
        ] {
            positive(c, key);
            positive(&c["min_ns"], key.trim_end_matches("_ns"));
            assert!(c["min_ns"][key.trim_end_matches("_ns")].as_f64() <= c[key].as_f64());
        }
        let r = &c["ratios"];
        for key in [
            "libffi_over_jitffi_raw",
            "jitffi_raw_over_c_stub",
            "jitffi_packed_over_direct",
        ] {
            positive(r, key);
        }
        // The ratio is of the medians reported.
        let want = c["libffi_ns"].as_f64().unwrap() / c["jitffi_raw_ns"].as_f64().unwrap();
        let got = r["libffi_over_jitffi_raw"].as_f64().unwrap();
        assert!((got - want).abs() / want < 0.01, "{got} vs {want}");
        assert!(c["signature"].as_str().unwrap().contains('('));
    }
    assert_eq!(calls[1]["signature"], "int(int, int)");

    let closures = &v["closures"];
    assert_eq!(names(closures), ["S2", "S3", "S5"]);
    for c in closures.as_array().unwrap() {
        for key in [
            "direct_ns",
            "jitffi_raw_closure_ns",
            "jitffi_closure_ns",
            "libffi_closure_ns",
        ] {
            positive(c, key);
        }
        for key in [
            "jitffi_raw_closure_over_direct",
            "jitffi_closure_over_direct",
            "libffi_over_jitffi_raw_closure",
        ] {
            positive(&c["ratios"], key);
        }
    }
    let life = &v["closure_life"];
    for key in ["jitffi_raw_closure_ns", "jitffi_closure_ns", "libffi_ns"] {
        positive(life, key);
    }
    positive(&life["ratios"], "libffi_over_jitffi_raw_closure");

    let prep = &v["prep"];
    assert_eq!(names(prep), ["S5", "S8"]);
    for p in prep.as_array().unwrap() {
        for key in ["jitffi_cache_hit_ns", "jitffi_cold_ns", "libffi_ns"] {
            positive(p, key);
        }
        positive(&p["ratios"], "libffi_over_jitffi_cache_hit");
    }
}

#[test]
fn filter_keeps_only_matching_cases() {
    let (v, _) = json(&mut bench(&["--json", "--filter", "S2"]));
    assert_eq!(names(&v["calls"]), ["S2"]);
    assert_eq!(names(&v["closures"]), ["S2"]);
    assert!(v["closure_life"].is_object());
    assert_eq!(names(&v["prep"]), Vec::<&str>::new());

    // Case-insensitive, and a group prefix selects a group.
    let (v, _) = json(&mut bench(&["--json", "--filter", "PREP/"]));
    assert_eq!(names(&v["calls"]), Vec::<&str>::new());
    assert_eq!(names(&v["closures"]), Vec::<&str>::new());
    assert!(v["closure_life"].is_null());
    assert_eq!(names(&v["prep"]), ["S5", "S8"]);
}

#[test]
fn a_filter_matching_nothing_is_an_error_listing_the_names() {
    let out = bench(&["--filter", "S9"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("S9"), "{stderr}");
    assert!(
        stderr.contains("calls/S1") && stderr.contains("prep/S8"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn svg_chart_has_one_bar_per_ratio() {
    let dir = std::env::temp_dir().join(format!("jitffi-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ratios.svg");
    let (v, _) = json(&mut bench(&[
        "--json",
        "--filter",
        "S2",
        "--svg",
        file.to_str().unwrap(),
    ]));
    let svg = std::fs::read_to_string(&file).expect("the chart is written");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(svg.starts_with("<svg "), "{svg}");
    assert!(svg.contains(r#"xmlns="http://www.w3.org/2000/svg""#));
    assert!(svg.trim_end().ends_with("</svg>"));
    // calls/S2 and closures/S2, two ratios each.
    assert_eq!(svg.matches(r#"<rect class="bar""#).count(), 4, "{svg}");
    assert_eq!(svg.matches(r#"<rect class="swatch""#).count(), 4);
    // The bars carry the report's ratios.
    let speedup = v["calls"][0]["ratios"]["libffi_over_jitffi_raw"]
        .as_f64()
        .unwrap();
    assert!(
        svg.contains(&format!(">{speedup:.1}x<")),
        "{speedup}: {svg}"
    );
    // Well-formed enough: elements balance, no stray `&` or `<`.
    for tag in ["text", "title", "rect", "line", "svg"] {
        let opened =
            svg.matches(&format!("<{tag} ")).count() + svg.matches(&format!("<{tag}>")).count();
        let closed = svg.matches(&format!("</{tag}>")).count();
        let empty = svg
            .split(&format!("<{tag}"))
            .skip(1)
            .filter(|rest| rest.split('>').next().unwrap().ends_with('/'))
            .count();
        assert_eq!(opened, closed + empty, "<{tag}> does not balance");
    }
    for (i, _) in svg.match_indices('&') {
        let entity = &svg[i..svg[i..].find(';').map_or(svg.len(), |e| i + e + 1)];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity),
            "bad entity {entity}"
        );
    }
}

#[test]
fn an_unwritable_chart_fails_before_measuring() {
    let out = bench(&["--svg", "/nonexistent-dir/chart.svg"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent-dir/chart.svg"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn table_names_the_machine_and_every_group() {
    let out = bench(&["--filter", "S5"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("jitffi bench: jitffi "), "{text}");
    assert!(lines[0].contains("CPU "), "{text}");
    assert!(
        lines[1].starts_with("libffi: ") && lines[1].contains("libffi.so"),
        "{text}"
    );
    for heading in ["Calls", "Closures", "Cif preparation"] {
        assert!(
            lines.iter().any(|l| l.starts_with(heading)),
            "{heading}: {text}"
        );
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("Closure life")),
        "{text}"
    );
    // Each S5 row: its name and numbers, aligned under the headers.
    let header = lines.iter().find(|l| l.contains("jitffi packed")).unwrap();
    let row = lines
        .iter()
        .find(|l| l.trim_start().starts_with("S5  double"))
        .unwrap();
    assert_eq!(
        header.len(),
        row.len(),
        "right-aligned columns end together:\n{text}"
    );
    assert!(
        row.split_whitespace().any(|c| c
            .strip_suffix('x')
            .is_some_and(|n| n.parse::<f64>().is_ok())),
        "a speed-up: {row}"
    );
    assert!(!text.lines().any(|l| l.ends_with(' ')), "trailing spaces");
}

#[test]
fn without_libffi_it_says_so_once_and_measures_the_rest() {
    let (v, stderr) = json(&mut bench(&[
        "--json",
        "--filter",
        "S2",
        "--libffi",
        "/nonexistent/libffi.so.8",
    ]));
    assert_eq!(stderr.matches("cannot load").count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/libffi.so.8"), "{stderr}");
    assert!(stderr.contains("apt-get install libffi8"), "{stderr}");
    assert!(v["libffi"].is_null());
    let c = &v["calls"][0];
    assert!(c["libffi_ns"].is_null() && c["min_ns"]["libffi"].is_null());
    assert!(c["ratios"]["libffi_over_jitffi_raw"].is_null());
    positive(c, "jitffi_raw_ns");
    positive(&c["ratios"], "jitffi_raw_over_c_stub");
    let cl = &v["closures"][0];
    assert!(cl["libffi_closure_ns"].is_null());
    positive(cl, "jitffi_raw_closure_ns");
    assert!(v["closure_life"]["libffi_ns"].is_null());
    positive(&v["closure_life"], "jitffi_raw_closure_ns");

    // The table shows `-` for them.
    let out = bench(&[
        "--filter",
        "calls/S2",
        "--libffi",
        "/nonexistent/libffi.so.8",
    ])
    .output()
    .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("libffi: not loaded"), "{text}");
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("S2"))
        .unwrap();
    assert_eq!(
        row.split_whitespace().filter(|c| *c == "-").count(),
        2,
        "{row}"
    );
}

#[test]
fn env_names_the_library_and_the_flag_overrides_it() {
    let (v, stderr) = json(
        bench(&["--json", "--filter", "calls/S1"])
            .env("JITFFI_LIBFFI", "/nonexistent/env-libffi.so"),
    );
    assert!(stderr.contains("/nonexistent/env-libffi.so"), "{stderr}");
    assert!(v["libffi"].is_null());
    let (v, stderr) = json(
        bench(&["--json", "--filter", "calls/S1", "--libffi", "libffi.so.8"])
            .env("JITFFI_LIBFFI", "/nonexistent/env-libffi.so"),
    );
    assert_eq!(stderr, "");
    assert_eq!(v["libffi"]["requested"], "libffi.so.8");
    positive(&v["calls"][0], "libffi_ns");
}

#[test]
fn samples_must_be_positive() {
    let out = support::jitffi()
        .args(["bench", "--samples", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}
