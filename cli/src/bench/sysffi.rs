//! The system libffi, loaded at run time with `dlopen` so `jitffi bench`
//! runs (without its libffi columns) where libffi is missing.
//!
//! Only what the benchmark needs, declared from libffi 3.4's public
//! header facts for x86-64 and AArch64 Linux (the same `ffi_type` and
//! `ffi_cif` layouts on both; the default ABI number and the closure size
//! differ): `ffi_prep_cif`, `ffi_call` and the closure API. On any other
//! architecture loading fails with a message, and the libffi columns stay
//! empty.

use std::ffi::{c_char, c_void, CStr};
use std::ptr;

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

use crate::error::CliError;

/// The soname `jitffi bench` loads when given no path.
pub const DEFAULT_SONAME: &str = "libffi.so.8";

/// `ffi_type`: size, alignment, type code, null-terminated member list.
#[repr(C)]
#[derive(Debug)]
pub struct FfiType {
    pub size: usize,
    pub alignment: u16,
    pub type_: u16,
    pub elements: *mut *mut FfiType,
}

/// `ffi_cif`, filled by `ffi_prep_cif`.
#[repr(C)]
#[derive(Debug)]
pub struct FfiCif {
    pub abi: u32,
    pub nargs: u32,
    pub arg_types: *mut *mut FfiType,
    pub rtype: *mut FfiType,
    pub bytes: u32,
    pub flags: u32,
}

const _: () = assert!(std::mem::size_of::<FfiType>() == 24);
const _: () = assert!(std::mem::size_of::<FfiCif>() == 32);

impl FfiCif {
    fn zeroed() -> FfiCif {
        FfiCif {
            abi: 0,
            nargs: 0,
            arg_types: ptr::null_mut(),
            rtype: ptr::null_mut(),
            bytes: 0,
            flags: 0,
        }
    }
}

/// libffi's facts for the host: `FFI_DEFAULT_ABI`, and `sizeof(ffi_closure)`
/// in libffi 3.4 (the trampoline, then cif, fun and user_data), used when
/// `ffi_get_closure_size` is absent. `None` where the benchmark does not
/// know them.
const HOST: Option<(u32, usize)> = if cfg!(all(target_arch = "x86_64", not(windows))) {
    // FFI_UNIX64; a 32-byte trampoline.
    Some((2, 56))
} else if cfg!(all(
    target_arch = "aarch64",
    not(windows),
    not(target_vendor = "apple")
)) {
    // FFI_SYSV; a 24-byte trampoline.
    Some((1, 48))
} else {
    None
};

/// `FFI_DEFAULT_ABI` on this host (only used once [`Libffi::load`]
/// succeeded, which it does only where [`HOST`] is known).
pub const FFI_DEFAULT_ABI: u32 = match HOST {
    Some((abi, _)) => abi,
    None => 0,
};
/// `FFI_OK`.
pub const FFI_OK: u32 = 0;
/// `FFI_TYPE_STRUCT`.
const FFI_TYPE_STRUCT: u16 = 13;

pub type PrepCifFn = unsafe extern "C" fn(
    cif: *mut FfiCif,
    abi: u32,
    nargs: u32,
    rtype: *mut FfiType,
    atypes: *mut *mut FfiType,
) -> u32;
pub type CallFn = unsafe extern "C" fn(
    cif: *mut FfiCif,
    f: *const c_void,
    rvalue: *mut c_void,
    avalue: *mut *mut c_void,
);
pub type ClosureAllocFn = unsafe extern "C" fn(size: usize, code: *mut *mut c_void) -> *mut c_void;
/// The handler type is jitffi's: libffi's `(ffi_cif *, void *, void **,
/// void *)` is the same four pointers.
pub type PrepClosureLocFn = unsafe extern "C" fn(
    closure: *mut c_void,
    cif: *mut FfiCif,
    fun: jitffi::RawHandler,
    user_data: *mut c_void,
    code: *mut c_void,
) -> u32;
pub type ClosureFreeFn = unsafe extern "C" fn(closure: *mut c_void);
type GetVersionFn = unsafe extern "C" fn() -> *const c_char;
type GetClosureSizeFn = unsafe extern "C" fn() -> usize;

/// libffi's builtin type objects used by S1-S8.
#[derive(Clone, Copy, Debug)]
pub struct BasicTypes {
    pub void: *mut FfiType,
    pub sint8: *mut FfiType,
    pub uint16: *mut FfiType,
    pub sint32: *mut FfiType,
    pub sint64: *mut FfiType,
    pub float: *mut FfiType,
    pub double: *mut FfiType,
    pub pointer: *mut FfiType,
}

/// A loaded libffi. The function pointers stay valid as long as this
/// value (it owns the library handle).
pub struct Libffi {
    pub prep_cif: PrepCifFn,
    pub call: CallFn,
    pub closure_alloc: ClosureAllocFn,
    pub prep_closure_loc: PrepClosureLocFn,
    pub closure_free: ClosureFreeFn,
    /// Bytes to ask `ffi_closure_alloc` for.
    pub closure_size: usize,
    pub types: BasicTypes,
    /// The file actually mapped (from /proc/self/maps).
    pub path: String,
    /// `ffi_get_version()`, where the library has it (libffi >= 3.5).
    pub version: Option<String>,
    /// Struct types and argument lists made for cifs: they must outlive
    /// every cif pointing at them, so they live as long as the library.
    structs: Vec<(Box<FfiType>, Box<[*mut FfiType]>)>,
    arg_lists: Vec<Box<[*mut FfiType]>>,
    _lib: Library,
}

impl std::fmt::Debug for Libffi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Libffi")
            .field("path", &self.path)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Where to load libffi from: the `--libffi` path, else `JITFFI_LIBFFI`,
/// else the soname for the loader to find.
pub fn choose_path(flag: Option<&str>, env: Option<&str>) -> String {
    flag.or(env.filter(|e| !e.is_empty()))
        .unwrap_or(DEFAULT_SONAME)
        .to_string()
}

impl Libffi {
    /// Loads libffi from `path` (a file, or a name for the loader).
    pub fn load(path: &str) -> Result<Libffi, CliError> {
        let fail = |why: String| {
            CliError::Load(format!(
                "cannot load the system libffi from `{path}`: {why}\n\
                 (`apt-get install libffi8` provides it; --libffi PATH or JITFFI_LIBFFI=PATH \
                 chooses another); the libffi columns are left empty"
            ))
        };
        let Some((_, closure_size_3_4)) = HOST else {
            return Err(CliError::Load(format!(
                "comparing with the system libffi is not supported on {} {}: \
                 the libffi columns are left empty",
                std::env::consts::OS,
                std::env::consts::ARCH
            )));
        };
        // SAFETY: loading a library runs its constructors; libffi's are
        // benign, and the user chose the path.
        let lib = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
            .map_err(|e| fail(e.to_string()))?;
        // SAFETY (every `get` below): the symbols have the types libffi 3.4
        // declares for them (functions) or are `ffi_type` objects (data,
        // whose address is the symbol's value).
        unsafe {
            macro_rules! sym {
                ($ty:ty, $name:literal) => {
                    *lib.get::<$ty>(concat!($name, "\0").as_bytes())
                        .map_err(|e| fail(format!("no `{}`: {e}", $name)))?
                };
            }
            let call = sym!(CallFn, "ffi_call");
            let version = lib
                .get::<GetVersionFn>(b"ffi_get_version\0")
                .ok()
                .map(|f| f())
                .filter(|p| !p.is_null())
                .map(|p| CStr::from_ptr(p).to_string_lossy().into_owned());
            let closure_size = lib
                .get::<GetClosureSizeFn>(b"ffi_get_closure_size\0")
                .ok()
                .map_or(closure_size_3_4, |f| f());
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
            let path = mapping_path(&maps, call as usize).unwrap_or_else(|| path.to_string());
            Ok(Libffi {
                prep_cif: sym!(PrepCifFn, "ffi_prep_cif"),
                call,
                closure_alloc: sym!(ClosureAllocFn, "ffi_closure_alloc"),
                prep_closure_loc: sym!(PrepClosureLocFn, "ffi_prep_closure_loc"),
                closure_free: sym!(ClosureFreeFn, "ffi_closure_free"),
                closure_size,
                types: BasicTypes {
                    void: sym!(*mut FfiType, "ffi_type_void"),
                    sint8: sym!(*mut FfiType, "ffi_type_sint8"),
                    uint16: sym!(*mut FfiType, "ffi_type_uint16"),
                    sint32: sym!(*mut FfiType, "ffi_type_sint32"),
                    sint64: sym!(*mut FfiType, "ffi_type_sint64"),
                    float: sym!(*mut FfiType, "ffi_type_float"),
                    double: sym!(*mut FfiType, "ffi_type_double"),
                    pointer: sym!(*mut FfiType, "ffi_type_pointer"),
                },
                path,
                version,
                structs: Vec::new(),
                arg_lists: Vec::new(),
                _lib: lib,
            })
        }
    }

    /// A struct type of `members`, laid out by `ffi_prep_cif` on first use.
    pub fn structure(&mut self, members: &[*mut FfiType]) -> *mut FfiType {
        let mut elems: Box<[*mut FfiType]> =
            members.iter().copied().chain([ptr::null_mut()]).collect();
        let mut ty = Box::new(FfiType {
            size: 0,
            alignment: 0,
            type_: FFI_TYPE_STRUCT,
            elements: elems.as_mut_ptr(),
        });
        let p: *mut FfiType = &mut *ty;
        // Moving the boxes moves neither heap block.
        self.structs.push((ty, elems));
        p
    }

    /// A cif prepared with `ffi_prep_cif` for the default ABI. Its types
    /// must be libffi's or made by [`Libffi::structure`].
    pub fn cif(&mut self, ret: *mut FfiType, args: &[*mut FfiType]) -> Result<Box<FfiCif>, String> {
        let mut list: Box<[*mut FfiType]> = args.into();
        let mut cif = Box::new(FfiCif::zeroed());
        // SAFETY: the types are valid per the contract and the list lives
        // in `self.arg_lists` as long as the library.
        let status = unsafe {
            (self.prep_cif)(
                &mut *cif,
                FFI_DEFAULT_ABI,
                args.len() as u32,
                ret,
                list.as_mut_ptr(),
            )
        };
        self.arg_lists.push(list);
        if status == FFI_OK {
            Ok(cif)
        } else {
            Err(format!("ffi_prep_cif returned status {status}"))
        }
    }

    /// An empty cif for `ffi_prep_cif` to fill (the prep benchmark).
    pub fn blank_cif() -> FfiCif {
        FfiCif::zeroed()
    }
}

/// The path of the mapping that contains `addr`, from the text of
/// /proc/self/maps.
pub fn mapping_path(maps: &str, addr: usize) -> Option<String> {
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (lo, hi) = fields.next()?.split_once('-')?;
        let lo = usize::from_str_radix(lo, 16).ok()?;
        let hi = usize::from_str_radix(hi, 16).ok()?;
        if !(lo..hi).contains(&addr) {
            return None;
        }
        // perms, offset, dev, inode, then the path (which may hold spaces).
        let rest = fields.skip(4).collect::<Vec<_>>().join(" ");
        (!rest.is_empty()).then_some(rest)
    })
}

/// A libffi closure with a given handler; freed on drop.
pub struct FfiClosure<'a> {
    ffi: &'a Libffi,
    closure: *mut c_void,
    code: *mut c_void,
}

impl<'a> FfiClosure<'a> {
    /// A closure for `cif` calling `handler` with null user data.
    ///
    /// # Safety
    /// `cif` must stay valid and unmoved while the closure exists.
    pub unsafe fn new(
        ffi: &'a Libffi,
        cif: *mut FfiCif,
        handler: jitffi::RawHandler,
    ) -> Result<FfiClosure<'a>, String> {
        let mut code = ptr::null_mut();
        // SAFETY: allocation with libffi's own size; checked below.
        let closure = unsafe { (ffi.closure_alloc)(ffi.closure_size, &mut code) };
        if closure.is_null() || code.is_null() {
            return Err("ffi_closure_alloc failed".into());
        }
        let made = FfiClosure { ffi, closure, code };
        // SAFETY: a fresh closure and its code address; the cif outlives it
        // per the contract.
        let status =
            unsafe { (ffi.prep_closure_loc)(closure, cif, handler, ptr::null_mut(), code) };
        if status != FFI_OK {
            return Err(format!("ffi_prep_closure_loc returned status {status}"));
        }
        Ok(made)
    }

    /// The code pointer as a function of type `F`.
    ///
    /// # Safety
    /// `F` is the cif's signature as an `extern "C" fn` pointer type; the
    /// pointer is not used after `self` is dropped.
    pub unsafe fn as_fn<F: Copy>(&self) -> F {
        assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
        // SAFETY: per the contract; function pointers are one word.
        unsafe { std::mem::transmute_copy::<*mut c_void, F>(&self.code) }
    }
}

impl Drop for FfiClosure<'_> {
    fn drop(&mut self) {
        // SAFETY: allocated by ffi_closure_alloc, freed once.
        unsafe { (self.ffi.closure_free)(self.closure) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_precedence() {
        assert_eq!(choose_path(None, None), "libffi.so.8");
        assert_eq!(choose_path(None, Some("")), "libffi.so.8");
        assert_eq!(choose_path(None, Some("/env/libffi.so")), "/env/libffi.so");
        assert_eq!(
            choose_path(Some("/flag/libffi.so"), Some("/env/libffi.so")),
            "/flag/libffi.so"
        );
    }

    #[test]
    fn finds_the_mapping_of_an_address() {
        let maps = "\
55d0c0000000-55d0c0001000 r--p 00000000 08:01 123 /usr/bin/jitffi
7f0000000000-7f0000004000 r--p 00000000 08:01 456 /usr/lib/x86_64-linux-gnu/libffi.so.8.1.2
7f0000004000-7f000000a000 r-xp 00004000 08:01 456 /usr/lib/x86_64-linux-gnu/libffi.so.8.1.2
7f000000a000-7f000000b000 rw-p 00000000 00:00 0
7f000000b000-7f000000c000 r-xp 00000000 08:01 789 /opt/my libs/libffi.so
";
        assert_eq!(
            mapping_path(maps, 0x7f0000006a40).as_deref(),
            Some("/usr/lib/x86_64-linux-gnu/libffi.so.8.1.2")
        );
        assert_eq!(mapping_path(maps, 0x7f000000a010), None); // anonymous
        assert_eq!(
            mapping_path(maps, 0x7f0000009fff).as_deref(),
            Some("/usr/lib/x86_64-linux-gnu/libffi.so.8.1.2")
        );
        assert_eq!(
            mapping_path(maps, 0x7f000000b800).as_deref(),
            Some("/opt/my libs/libffi.so")
        );
        assert_eq!(mapping_path(maps, 0x1000), None);
        assert_eq!(mapping_path("garbage\n\n", 0x1000), None);
    }

    #[test]
    fn a_missing_library_is_a_load_error_naming_the_path() {
        let e = Libffi::load("/nonexistent/libffi.so.8").unwrap_err();
        let CliError::Load(msg) = e else {
            panic!("not a Load error: {e:?}")
        };
        assert!(msg.contains("/nonexistent/libffi.so.8"), "{msg}");
        assert!(msg.contains("apt-get install libffi8"), "{msg}");
    }

    #[test]
    fn system_libffi_calls_and_closes() {
        let Ok(mut ffi) = Libffi::load(DEFAULT_SONAME) else {
            eprintln!("system libffi not installed: skipped");
            return;
        };
        assert!(ffi.path.contains("libffi"), "{}", ffi.path);
        extern "C" fn add(a: i32, b: i32) -> i32 {
            a + b
        }
        let t = ffi.types;
        let mut cif = ffi.cif(t.sint32, &[t.sint32, t.sint32]).unwrap();
        let (a, b) = (40i32, 2i32);
        let mut avalue = [
            &a as *const i32 as *mut c_void,
            &b as *const i32 as *mut c_void,
        ];
        let mut r = 0u64;
        // SAFETY: int(int, int), matching the cif; `r` is an ffi_arg.
        unsafe {
            (ffi.call)(
                &mut *cif,
                add as *const c_void,
                (&mut r as *mut u64).cast(),
                avalue.as_mut_ptr(),
            )
        };
        assert_eq!(r as i32, 42);
        let pair = ffi.structure(&[t.double, t.double]);
        let cif = ffi.cif(pair, &[pair]).unwrap();
        // SAFETY: prep_cif laid the struct out.
        assert_eq!(unsafe { ((*pair).size, (*pair).alignment) }, (16, 8));
        assert_eq!(cif.nargs, 1);
    }
}
