//! Every refusal path, through the public API: the variant, its fields,
//! the libffi status it maps to, and a message that names the culprit.

use jitffi::classify::MAX_STACK_BYTES;
use jitffi::types::{MAX_DEPTH, MAX_TYPE_SIZE};
use jitffi::{Abi, Cif, Error, Position, Status, Type, MAX_ARGS};

/// Checks status and that the message mentions every `needle`.
#[track_caller]
fn assert_reported(err: &Error, status: Status, needles: &[&str]) {
    assert_eq!(err.status(), status, "{err:?}");
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "message {msg:?} does not mention {n:?}");
    }
}

/// Refusals are about the C signature: the host's own convention.
fn cif_err(ret: Type, args: &[Type]) -> Error {
    Cif::with_abi(Abi::host(), ret, args, None).unwrap_err()
}

#[test]
fn empty_struct_and_union() {
    let e = Type::structure([]).unwrap_err();
    assert_eq!(e, Error::EmptyAggregate { what: "struct" });
    assert_reported(&e, Status::BadTypedef, &["empty struct"]);
    let e = Type::union([]).unwrap_err();
    assert_eq!(e, Error::EmptyAggregate { what: "union" });
    assert_reported(&e, Status::BadTypedef, &["empty union"]);
}

#[test]
fn zero_length_array() {
    let e = Type::array(Type::i32(), 0).unwrap_err();
    assert_eq!(e, Error::EmptyAggregate { what: "array" });
    assert_reported(&e, Status::BadTypedef, &["empty array"]);
}

#[test]
fn void_members() {
    let e = Type::structure([Type::i32(), Type::f64(), Type::void()]).unwrap_err();
    assert_eq!(
        e,
        Error::VoidMember {
            what: "struct",
            field: 2
        }
    );
    assert_reported(&e, Status::BadTypedef, &["struct member 2", "void"]);
    let e = Type::union([Type::void(), Type::i32()]).unwrap_err();
    assert_eq!(
        e,
        Error::VoidMember {
            what: "union",
            field: 0
        }
    );
    assert_reported(&e, Status::BadTypedef, &["union member 0"]);
    let e = Type::array(Type::void(), 4).unwrap_err();
    assert_eq!(
        e,
        Error::VoidMember {
            what: "array",
            field: 0
        }
    );
}

#[test]
fn void_argument_names_its_index() {
    let e = cif_err(Type::i32(), &[Type::i32(), Type::f64(), Type::void()]);
    assert_eq!(e, Error::VoidArgument { index: 2 });
    assert_reported(&e, Status::BadArgType, &["argument 2", "void"]);
    // Through the host-default constructors too.
    let e = Cif::new(Type::void(), &[Type::void()]).unwrap_err();
    assert_eq!(e, Error::VoidArgument { index: 0 });
}

#[test]
fn arrays_by_value() {
    let a = Type::array(Type::i32(), 4).unwrap();
    let e = cif_err(Type::void(), &[Type::i64(), a.clone()]);
    assert_eq!(
        e,
        Error::ArrayByValue {
            position: Position::Argument(1)
        }
    );
    assert_reported(&e, Status::BadArgType, &["argument 1", "array"]);
    let e = cif_err(a.clone(), &[Type::i64()]);
    assert_eq!(
        e,
        Error::ArrayByValue {
            position: Position::Return
        }
    );
    assert_reported(&e, Status::BadArgType, &["the return type", "array"]);
    // Inside a struct an array is fine (the refusal is about position).
    let s = Type::structure([a]).unwrap();
    let e = Cif::with_abi(Abi::host(), s, &[], None);
    assert!(
        !matches!(e, Err(Error::ArrayByValue { .. })),
        "wrapped arrays are not refused: {e:?}"
    );
}

#[test]
fn nesting_too_deep() {
    let mut t = Type::i32();
    for _ in 0..MAX_DEPTH {
        t = Type::structure([t]).unwrap();
    }
    assert_eq!(t.depth(), MAX_DEPTH);
    let e = Type::union([Type::i8(), t.clone()]).unwrap_err();
    assert_eq!(
        e,
        Error::NestingTooDeep {
            depth: MAX_DEPTH + 1,
            max: MAX_DEPTH
        }
    );
    assert_reported(&e, Status::BadTypedef, &["65", "64"]);
    assert!(matches!(
        Type::array(t, 2).unwrap_err(),
        Error::NestingTooDeep { .. }
    ));
}

#[test]
fn type_too_large() {
    let e = Type::array(Type::u8(), MAX_TYPE_SIZE as usize + 1).unwrap_err();
    assert_eq!(
        e,
        Error::TypeTooLarge {
            what: "array",
            size: MAX_TYPE_SIZE + 1,
            max: MAX_TYPE_SIZE
        }
    );
    assert_reported(&e, Status::BadTypedef, &["array", "16777217"]);
    // Two members that fit alone but not together.
    let half = Type::array(Type::u8(), MAX_TYPE_SIZE as usize / 2 + 1).unwrap();
    let e = Type::structure([half.clone(), half]).unwrap_err();
    assert!(
        matches!(e, Error::TypeTooLarge { what: "struct", .. }),
        "{e:?}"
    );
    // Size overflow saturates rather than wrapping.
    let e = Type::array(Type::i64(), usize::MAX).unwrap_err();
    assert!(
        matches!(e, Error::TypeTooLarge { size: u64::MAX, .. }),
        "{e:?}"
    );
}

#[test]
fn too_many_arguments() {
    let args = vec![Type::i32(); MAX_ARGS + 1];
    let e = cif_err(Type::void(), &args);
    assert_eq!(
        e,
        Error::TooManyArguments {
            count: MAX_ARGS + 1,
            max: MAX_ARGS
        }
    );
    assert_reported(&e, Status::BadTypedef, &["1025", "1024"]);
}

#[test]
fn fixed_count_out_of_range() {
    let e = Cif::with_abi(
        Abi::host(),
        Type::i32(),
        &[Type::pointer(), Type::pointer()],
        Some(3),
    )
    .unwrap_err();
    assert_eq!(e, Error::FixedCountOutOfRange { fixed: 3, total: 2 });
    assert_reported(&e, Status::BadTypedef, &["3 fixed", "2 arguments"]);
}

#[test]
fn variadic_arguments_must_be_promoted() {
    let cases = [
        (Type::f32(), "float", "double"),
        (Type::i8(), "int8_t", "int"),
        (Type::u16(), "uint16_t", "int"),
        (Type::u8(), "uint8_t", "int"),
        (Type::i16(), "int16_t", "int"),
    ];
    for (t, spelled, promoted) in cases {
        let e = Cif::new_variadic(Type::i32(), &[Type::pointer()], &[Type::f64(), t.clone()])
            .unwrap_err();
        assert_eq!(
            e,
            Error::VariadicNotPromoted {
                index: 2,
                ty: spelled.to_string(),
                promoted
            }
        );
        assert_reported(
            &e,
            Status::BadArgType,
            &["variadic argument 2", spelled, promoted],
        );
        // The same refusal through with_abi, at another index.
        let e = Cif::with_abi(
            Abi::host(),
            Type::void(),
            &[Type::i32(), Type::i32(), t],
            Some(1),
        )
        .unwrap_err();
        assert!(
            matches!(e, Error::VariadicNotPromoted { index: 2, .. }),
            "{e:?}"
        );
    }
}

#[test]
fn unsupported_abis() {
    // AArch64 code cannot run on this host.
    let foreign = if cfg!(target_arch = "x86_64") {
        Abi::Aapcs64
    } else {
        Abi::SysV64
    };
    let e = Cif::with_abi(foreign, Type::i32(), &[Type::i32()], None).unwrap_err();
    assert!(
        matches!(e, Error::UnsupportedAbi { abi, .. } if abi == foreign),
        "{foreign:?}: {e:?}"
    );
    assert_reported(&e, Status::BadAbi, &[&format!("{foreign:?}")]);
    // Both Microsoft x64 flavours have a classifier: an x86-64 host builds
    // them, any other host refuses them as foreign code.
    for abi in [Abi::Win64, Abi::GnuW64] {
        let r = Cif::with_abi(abi, Type::i32(), &[Type::i32()], None);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(r.unwrap().abi(), abi);
        } else {
            assert!(matches!(r, Err(Error::UnsupportedAbi { .. })), "{abi:?}");
        }
    }
}

#[test]
fn argument_area_too_large() {
    // 20 structs of 16 KiB each: 320 KiB of stack arguments.
    let chunk = Type::structure([Type::array(Type::u8(), 16 * 1024).unwrap()]).unwrap();
    let args = vec![chunk; 20];
    let e = cif_err(Type::void(), &args);
    // SysV copies them onto the stack; AAPCS64 passes each by reference,
    // so the area holds the caller's copies and the 12 addresses that do
    // not fit in x0-x7.
    let bytes = if cfg!(target_arch = "aarch64") {
        20 * 16 * 1024 + 12 * 8
    } else {
        20 * 16 * 1024
    };
    assert_eq!(
        e,
        Error::ArgumentAreaTooLarge {
            bytes,
            max: MAX_STACK_BYTES
        }
    );
    assert_reported(&e, Status::BadTypedef, &[&bytes.to_string(), "262144"]);
}
