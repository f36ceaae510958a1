//! The C header is generated from the C API's source and checked in: this test fails when
//! the checked-in header is not what cbindgen generates now, and checks that the header
//! compiles as C99 and as C++17 with every warning an error.

use std::{path::PathBuf, process::Command};

const BLESS: &str = "KSN_BLESS_HEADER";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    crate_dir().join("include/ksn_usage_task.h")
}

fn generated() -> String {
    let dir = crate_dir();
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/capi/mod.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn the_checked_in_header_is_current() {
    let fresh = generated();
    let path = header_path();
    if std::env::var_os(BLESS).is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != fresh {
        let line = checked_in
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| checked_in.lines().count().min(fresh.lines().count()));
        panic!(
            "{} is stale (first difference at line {}): the C API changed. Regenerate it with \
             `{BLESS}=1 cargo test -p ksn-plugin --test header` and check it in.",
            path.display(),
            line + 1
        );
    }
}

/// Compiles a file that includes the header with `compiler args`, in a temporary folder.
fn compiles(compiler: &str, file: &str, args: &[&str]) {
    let dir = std::env::temp_dir().join(format!("ksn-header-{}-{file}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join(file);
    // Uses a few names, so that the compiler checks more than the declarations.
    std::fs::write(
        &source,
        "#include <string.h>\n\
         #include \"ksn_usage_task.h\"\n\
         int ksn_header_check(void);\n\
         int ksn_header_check(void) {\n\
         \x20   KsnStatus status;\n\
         \x20   KsnHost host;\n\
         \x20   PFN_ksn_task_status get = 0;\n\
         \x20   memset(&status, 0, sizeof status);\n\
         \x20   memset(&host, 0, sizeof host);\n\
         \x20   status.struct_size = sizeof status;\n\
         \x20   host.struct_size = sizeof host;\n\
         \x20   return get == 0 && host.now_ms == 0 && status.state == KSN_STATE_STOPPED\n\
         \x20       ? (int)KSN_OK : 1;\n\
         }\n",
    )
    .unwrap();
    let include = header_path().parent().unwrap().to_path_buf();
    let output = Command::new(compiler)
        .args(args)
        .arg("-fsyntax-only")
        .arg("-I")
        .arg(&include)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{compiler} {args:?} rejects the header:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

const STRICT: [&str; 3] = ["-Wall", "-Wextra", "-Werror"];

#[test]
fn the_header_compiles_as_c99() {
    let mut args = vec!["-std=c99", "-x", "c"];
    args.extend(STRICT);
    compiles("cc", "check.c", &args);
}

#[test]
fn the_header_compiles_as_cpp17() {
    let mut args = vec!["-std=c++17", "-x", "c++"];
    args.extend(STRICT);
    compiles("c++", "check.cpp", &args);
}

/// Every function the library exports has its `PFN_` type in the header, and every
/// `PFN_` type the source declares is exported by cbindgen.toml.
#[test]
fn every_exported_function_has_its_pfn_type_in_the_header() {
    let header = std::fs::read_to_string(header_path()).unwrap();
    let source = std::fs::read_to_string(crate_dir().join("src/capi/signatures.rs")).unwrap();
    let declared: Vec<&str> = source
        .lines()
        .filter_map(|l| l.strip_prefix("pub type "))
        .filter_map(|l| l.split([' ', '=']).next())
        .collect();
    // The declarations: `KsnErrorKind ksn_task_new(`, `const char *ksn_error_kind_name(`.
    let functions: Vec<&str> = header
        .lines()
        .filter(|l| !l.starts_with(['/', ' ', '#', 't', '}']))
        .filter_map(|l| l.split_once('(').map(|(head, _)| head))
        .filter_map(|head| head.rsplit([' ', '*']).next())
        .filter(|name| name.starts_with("ksn_"))
        .collect();
    assert!(functions.len() >= 25, "{functions:?}");
    for function in functions {
        let pfn = format!("PFN_{function}");
        assert!(
            declared.contains(&pfn.as_str()),
            "signatures.rs declares no {pfn}"
        );
        assert!(
            header.contains(&format!(" {pfn};")) || header.contains(&format!("(*{pfn})")),
            "the header lacks {pfn}: add it to cbindgen.toml's [export] include"
        );
    }
}
