//! Builds every binary in `tests/guests` for wasm32-wasip2 and exposes each
//! as a constant holding the component's path (as wasmtime's test-programs do).

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let guests = manifest_dir.join("guests");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", guests.join("src").display());
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.toml").display()
    );

    ensure_target(&guests);
    let target_dir = out_dir.join("guests-target");
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["build", "--release", "--target", TARGET, "--bins"])
        .arg("--manifest-path")
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(&guests);
    // The outer build's settings are for the host, not for the guests.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("running cargo to build the test guests");
    assert!(status.success(), "building the test guests failed");

    let mut names: Vec<String> = fs::read_dir(guests.join("src/bin"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut code = String::new();
    for name in &names {
        let wasm = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{name}.wasm"));
        assert!(wasm.is_file(), "{} was not built", wasm.display());
        writeln!(
            code,
            "/// The `{name}` guest (tests/guests/src/bin/{name}.rs)."
        )
        .unwrap();
        writeln!(
            code,
            "pub const {}: &str = {:?};",
            name.to_uppercase(),
            wasm.display().to_string()
        )
        .unwrap();
    }
    writeln!(code, "/// Every guest: (name, path).").unwrap();
    writeln!(code, "pub const ALL: &[(&str, &str)] = &[").unwrap();
    for name in &names {
        writeln!(code, "    ({name:?}, {}),", name.to_uppercase()).unwrap();
    }
    writeln!(code, "];").unwrap();
    fs::write(out_dir.join("guests.rs"), code).unwrap();
}

/// With RUSTUP_AUTO_INSTALL=0 the toolchain file does not install the
/// target by itself; add it when rustup manages the toolchain and lacks it.
fn ensure_target(dir: &Path) {
    let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
        .output()
    else {
        return;
    };
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == TARGET)
    {
        return;
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .current_dir(dir)
        .status()
        .expect("running rustup");
    assert!(status.success(), "`rustup target add {TARGET}` failed");
}
