//! C++ exceptions thrown by closure handlers (plain and Go closures)
//! propagate through jitffi's trampolines and thunks to the C++ caller,
//! against our library and, for comparison, the system libffi.

mod support;

use support::{assert_same, compile, run, Flavor};

#[test]
fn handler_exceptions_reach_the_cxx_caller() {
    let ours = run(&compile(
        "closure_exceptions",
        &["closure_exceptions.cc"],
        Flavor::Ours,
        &[],
    ));
    let system = run(&compile(
        "closure_exceptions",
        &["closure_exceptions.cc"],
        Flavor::System,
        &[],
    ));
    for out in [&ours, &system] {
        assert!(out.ends_with("all checks passed\n"), "{out}");
    }
    assert_same(&ours, &system);
    assert!(
        ours.contains("closure caught: from the handler 3"),
        "{ours}"
    );
    assert!(
        ours.contains("ffi_call into closure caught: from the handler 7"),
        "{ours}"
    );
    assert!(ours.contains("big closure caught: 42"), "{ours}");
    assert!(ours.contains("go closure caught: 300"), "{ours}");
}
