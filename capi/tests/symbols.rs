//! The dynamic symbol table of our `libffi.so.8` against the system's
//! (libffi 3.4.4): the same symbols in the same version nodes with the same
//! kinds and object sizes, libffi 3.5's `LIBFFI_BASE_8.1` additions, the
//! same node hierarchy, SONAME `libffi.so.8`, and nothing else exported
//! (the Rust runtime inside stays local).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use support::{checked, libffi_so, SYSTEM_LIBFFI};

/// Exports libffi's Go closure node will hold once they are implemented;
/// until then their absence is tolerated (presence is checked as usual).
const PENDING: &[&str] = &[];

/// libffi 3.5's additions, in `LIBFFI_BASE_8.1`.
const BASE_8_1: &[&str] = &[
    "ffi_get_closure_size",
    "ffi_get_default_abi",
    "ffi_get_version",
    "ffi_get_version_number",
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Sym {
    version: String,
    kind: String,
    /// Size for data objects (functions' code sizes differ, of course).
    size: Option<u64>,
}

fn readelf(args: &[&str], lib: &Path) -> String {
    let out = checked(Command::new("readelf").args(args).arg(lib));
    String::from_utf8(out.stdout).unwrap()
}

/// Defined global symbols: name -> (version, kind, object size).
fn exports(lib: &Path) -> BTreeMap<String, Sym> {
    let mut map = BTreeMap::new();
    for line in readelf(&["--dyn-syms", "-W"], lib).lines() {
        // Num: Value Size Type Bind Vis Ndx Name
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 || !f[0].ends_with(':') || f[4] != "GLOBAL" && f[4] != "WEAK" {
            continue;
        }
        if f[6] == "UND" {
            continue;
        }
        let (name, version) = match f[7].split_once('@') {
            Some((n, v)) => (n, v.trim_start_matches('@')),
            None => (f[7], ""),
        };
        let size = (f[3] == "OBJECT").then(|| f[2].parse::<u64>().unwrap());
        map.insert(
            name.to_string(),
            Sym {
                version: version.to_string(),
                kind: f[3].to_string(),
                size,
            },
        );
    }
    map
}

/// Version definitions: node -> parent node (if any).
fn version_nodes(lib: &Path) -> BTreeMap<String, Option<String>> {
    let text = readelf(&["-V", "-W"], lib);
    let section = text
        .split("Version definition section")
        .nth(1)
        .expect("version definitions")
        .split("Version needs section")
        .next()
        .unwrap();
    let mut nodes = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in section.lines() {
        if let Some(name) = line.split("Name: ").nth(1) {
            if line.contains("Flags: BASE") {
                last = None;
                continue;
            }
            let name = name.trim().to_string();
            nodes.insert(name.clone(), None);
            last = Some(name);
        } else if let Some(parent) = line.split("Parent 1: ").nth(1) {
            if let Some(node) = &last {
                nodes.insert(node.clone(), Some(parent.trim().to_string()));
            }
        }
    }
    nodes
}

#[test]
fn exports_match_libffi_with_its_versions() {
    let ours = exports(libffi_so());
    let system = exports(Path::new(SYSTEM_LIBFFI));
    assert!(system.contains_key("ffi_call"), "{system:?}");

    let mut expected = system.clone();
    for name in BASE_8_1 {
        expected.insert(
            name.to_string(),
            Sym {
                version: "LIBFFI_BASE_8.1".into(),
                kind: "FUNC".into(),
                size: None,
            },
        );
    }
    // The node's own (absolute) symbol, listed like the others' nodes.
    let node = system["LIBFFI_BASE_8.0"].clone();
    expected.insert("LIBFFI_BASE_8.1".into(), node);

    let extra: BTreeSet<_> = ours.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(extra.is_empty(), "exported beyond libffi's set: {extra:?}");
    for (name, want) in &expected {
        match ours.get(name) {
            Some(got) => assert_eq!(got, want, "{name}"),
            None => assert!(
                PENDING.contains(&name.as_str()),
                "{name} ({}) is not exported",
                want.version
            ),
        }
    }
    // The type objects are whole 24-byte ffi_type objects.
    let objects = ours.iter().filter(|(n, _)| n.starts_with("ffi_type_"));
    assert_eq!(objects.clone().count(), 16);
    for (name, sym) in objects {
        assert_eq!(
            (sym.kind.as_str(), sym.size),
            ("OBJECT", Some(24)),
            "{name}"
        );
    }
}

#[test]
fn version_nodes_and_soname_match_libffi() {
    let ours = version_nodes(libffi_so());
    let mut expected = version_nodes(Path::new(SYSTEM_LIBFFI));
    assert_eq!(
        expected.get("LIBFFI_GO_CLOSURE_8.0"),
        Some(&Some("LIBFFI_CLOSURE_8.0".to_string()))
    );
    expected.insert("LIBFFI_BASE_8.1".into(), Some("LIBFFI_BASE_8.0".into()));
    assert_eq!(ours, expected);

    let dynamic = readelf(&["-d", "-W"], libffi_so());
    assert!(
        dynamic.contains("Library soname: [libffi.so.8]"),
        "{dynamic}"
    );
    assert!(!dynamic.contains("TEXTREL"), "{dynamic}");
}
