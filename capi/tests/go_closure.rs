//! Go closures (`ffi_prep_go_closure`, `ffi_call_go`): the static chain in
//! both directions, from C, against our library and the system's.

mod support;

use support::{assert_same, compile, run, Flavor};

#[test]
fn go_closures_match_the_system_libffi() {
    let ours = run(&compile("go", &["go.c"], Flavor::Ours, &[]));
    let system = run(&compile("go", &["go.c"], Flavor::System, &[]));
    for out in [&ours, &system] {
        assert!(out.ends_with("all checks passed\n"), "{out}");
    }
    assert_same(&ours, &system);
    assert!(ours.contains("go add: 1042 933 calls 2"), "{ours}");
    assert!(ours.contains("ours: unprepared cif: 2"), "{ours}");
}
