//! The W^X audit over `/proc/self/maps` (Linux): the mappings of this
//! process, the check that none is writable and executable at once, and
//! which mapping holds an address.
//!
//! Included by path (`#[path = "support/maps.rs"] mod maps;`).

#![allow(dead_code)]

/// One line of `/proc/self/maps`.
pub struct Mapping {
    pub start: usize,
    pub end: usize,
    /// `rwxp`-style permissions.
    pub perms: String,
    /// The whole line, for messages.
    pub line: String,
}

pub fn maps() -> Vec<Mapping> {
    let text = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    text.lines()
        .map(|line| {
            let mut f = line.split_whitespace();
            let range = f.next().expect("address range");
            let perms = f.next().expect("permissions").to_string();
            let (a, b) = range.split_once('-').expect("start-end");
            Mapping {
                start: usize::from_str_radix(a, 16).expect("hex start"),
                end: usize::from_str_radix(b, 16).expect("hex end"),
                perms,
                line: line.to_string(),
            }
        })
        .collect()
}

/// Asserts W^X over the whole address space and returns the mappings.
pub fn audit() -> Vec<Mapping> {
    let all = maps();
    let bad: Vec<&str> = all
        .iter()
        .filter(|m| m.perms.contains('w') && m.perms.contains('x'))
        .map(|m| m.line.as_str())
        .collect();
    assert!(
        bad.is_empty(),
        "writable and executable mappings:\n{}",
        bad.join("\n")
    );
    all
}

/// The mapping holding `p`.
pub fn mapping_of(all: &[Mapping], p: usize) -> &Mapping {
    all.iter()
        .find(|m| m.start <= p && p < m.end)
        .unwrap_or_else(|| panic!("{p:#x} is in no mapping"))
}

/// Asserts that `p` lies in a read-execute mapping (not writable).
pub fn assert_in_rx(all: &[Mapping], p: usize) {
    let m = mapping_of(all, p);
    assert!(
        m.perms.starts_with("r-x"),
        "{p:#x} lies in a non-RX mapping: {}",
        m.line
    );
}
