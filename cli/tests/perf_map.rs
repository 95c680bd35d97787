//! `jitffi --perf-map` and `JITFFI_PERF_MAP=1`: the generated stubs are
//! named in /tmp/perf-<pid>.map for `perf report`.

use std::process::Stdio;

mod support;

/// Runs `jitffi ARGS` with `env`, returns (its pid, the map's text if any).
fn run_and_read_map(args: &[&str], env: &[(&str, &str)]) -> (u32, Option<String>) {
    // Through the target's runner where there is one (qemu-user runs the
    // binary in its own process: the pid is the same).
    let mut cmd = support::jitffi_std();
    cmd.args(args)
        .stdout(Stdio::piped())
        .env_remove("JITFFI_PERF_MAP");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "5\n");
    let path = format!("/tmp/perf-{pid}.map");
    let text = std::fs::read_to_string(&path).ok();
    std::fs::remove_file(&path).ok();
    (pid, text)
}

fn assert_names_the_stubs(text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        let mut parts = line.splitn(3, ' ');
        let start = parts.next().unwrap();
        let size = parts.next().unwrap();
        assert!(u64::from_str_radix(start, 16).is_ok(), "{line}");
        assert!(u64::from_str_radix(size, 16).unwrap() > 0, "{line}");
        assert!(parts.next().unwrap().starts_with("jitffi "), "{line}");
    }
    let abi = jitffi::Abi::host().name();
    for want in [
        format!("jitffi call [libffi] {abi} int32_t(int32_t)"),
        format!("jitffi call [packed] {abi} int32_t(int32_t)"),
    ] {
        assert!(
            lines.iter().any(|l| l.ends_with(want.as_str())),
            "no `{want}` in\n{text}"
        );
    }
}

#[test]
fn flag_writes_the_map() {
    let (pid, text) = run_and_read_map(&["--perf-map", "call", "-", "abs", "int(int)", "-5"], &[]);
    let text = text.unwrap_or_else(|| panic!("no /tmp/perf-{pid}.map"));
    assert_names_the_stubs(&text);
}

#[test]
fn environment_variable_writes_the_map() {
    let (pid, text) = run_and_read_map(
        &["call", "-", "abs", "int(int)", "-5"],
        &[("JITFFI_PERF_MAP", "1")],
    );
    let text = text.unwrap_or_else(|| panic!("no /tmp/perf-{pid}.map"));
    assert_names_the_stubs(&text);
}

#[test]
fn no_map_unless_asked() {
    let (pid, text) = run_and_read_map(&["call", "-", "abs", "int(int)", "-5"], &[]);
    assert!(text.is_none(), "/tmp/perf-{pid}.map was written");
}
