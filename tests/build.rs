//! Builds the test guests for wasm32-wasip2 and exposes each as a constant
//! holding the component's path (as wasmtime's test-programs do): every
//! binary in `tests/guests` (command tasks) and every crate of the workspace
//! `tests/typed-guests` (typed tasks). The few binaries in [`WASIP1`] are
//! also built for wasm32-wasip1 (core modules, `<NAME>_P1`).

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// Command guests also built for wasm32-wasip1, where Rust's std exits
/// through preview 1's `proc_exit`, which carries the exit code.
const WASIP1: &[&str] = &["exit3"];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    ensure_target(&manifest_dir, TARGET);
    ensure_target(&manifest_dir, "wasm32-wasip1");
    let mut code = String::new();
    let mut commands = command_guests(&manifest_dir, &out_dir, &mut code);
    commands.extend(wasip1_guests(&manifest_dir, &out_dir, &mut code));
    let typed = typed_guests(&manifest_dir, &out_dir, &mut code);

    // Names are the constants' names in lower case, so a test can write
    // `{NAME}` for a guest's path whatever its kind.
    let list = |code: &mut String, doc: &str, name: &str, constants: &[&String]| {
        writeln!(
            code,
            "/// {doc}: (name, path), the name being the constant's in lower case."
        )
        .unwrap();
        writeln!(code, "pub const {name}: &[(&str, &str)] = &[").unwrap();
        for constant in constants {
            writeln!(code, "    ({:?}, {constant}),", constant.to_lowercase()).unwrap();
        }
        writeln!(code, "];").unwrap();
    };
    let all: Vec<&String> = commands.iter().chain(&typed).collect();
    list(&mut code, "Every guest, command and typed", "ALL", &all);
    list(
        &mut code,
        "Every typed guest",
        "TYPED",
        &typed.iter().collect::<Vec<_>>(),
    );
    fs::write(out_dir.join("guests.rs"), code).unwrap();
}

/// Builds every binary in `tests/guests` (command tasks) and writes a
/// constant for each, named for the binary; returns the constants' names.
fn command_guests(manifest_dir: &Path, out_dir: &Path, code: &mut String) -> Vec<String> {
    let guests = manifest_dir.join("guests");
    println!("cargo:rerun-if-changed={}", guests.join("src").display());
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.toml").display()
    );

    let target_dir = out_dir.join("guests-target");
    let status = guest_cargo(&guests, &target_dir, TARGET)
        .arg("--bins")
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
    names.iter().map(|name| name.to_uppercase()).collect()
}

/// Builds the [`WASIP1`] binaries of `tests/guests` for wasm32-wasip1 and
/// writes a constant `<NAME>_P1` for each; returns the constants' names.
fn wasip1_guests(manifest_dir: &Path, out_dir: &Path, code: &mut String) -> Vec<String> {
    let guests = manifest_dir.join("guests");
    let target_dir = out_dir.join("guests-target");
    let mut p1 = guest_cargo(&guests, &target_dir, "wasm32-wasip1");
    for name in WASIP1 {
        p1.args(["--bin", name]);
    }
    let status = p1
        .status()
        .expect("running cargo to build the wasip1 guests");
    assert!(status.success(), "building the wasip1 test guests failed");
    WASIP1
        .iter()
        .map(|name| {
            let wasm = target_dir
                .join("wasm32-wasip1/release")
                .join(format!("{name}.wasm"));
            assert!(wasm.is_file(), "{} was not built", wasm.display());
            let constant = format!("{}_P1", name.to_uppercase());
            writeln!(
                code,
                "/// The `{name}` guest built for wasm32-wasip1: a preview 1 core module."
            )
            .unwrap();
            writeln!(
                code,
                "pub const {constant}: &str = {:?};",
                wasm.display().to_string()
            )
            .unwrap();
            constant
        })
        .collect()
}

/// Builds the workspace `tests/typed-guests` (typed tasks, one cdylib crate
/// `typed-<x>` per component, in the directory `<x>/`) and writes a constant
/// `TYPED_<X>` for each; returns the constants' names.
fn typed_guests(manifest_dir: &Path, out_dir: &Path, code: &mut String) -> Vec<String> {
    let guests = manifest_dir.join("typed-guests");
    let repo = manifest_dir.parent().unwrap();
    for path in [
        guests.join("Cargo.toml"),
        guests.join("Cargo.lock"),
        guests.join("wit"),
        repo.join("wit"),
        repo.join("sdk/src"),
        repo.join("sdk/Cargo.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    // The members: every directory holding a Cargo.toml.
    let mut members: Vec<(String, String)> = Vec::new();
    for entry in fs::read_dir(&guests).unwrap() {
        let dir = entry.unwrap().path();
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        println!("cargo:rerun-if-changed={}", manifest.display());
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        let text = fs::read_to_string(&manifest).unwrap();
        let package = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = \""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{}: no `name = \"…\"`", manifest.display()))
            .to_string();
        let dir_name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            package,
            format!("typed-{dir_name}"),
            "{}: a typed guest in `{dir_name}/` is named `typed-{dir_name}`",
            manifest.display()
        );
        members.push((dir_name, package));
    }
    members.sort();

    let target_dir = out_dir.join("typed-guests-target");
    let status = guest_cargo(&guests, &target_dir, TARGET)
        .arg("--workspace")
        .status()
        .expect("running cargo to build the typed test guests");
    assert!(status.success(), "building the typed test guests failed");

    let constant = |package: &str| package.replace('-', "_").to_uppercase();
    for (dir, package) in &members {
        let wasm = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", package.replace('-', "_")));
        assert!(wasm.is_file(), "{} was not built", wasm.display());
        writeln!(
            code,
            "/// The `{package}` typed guest (tests/typed-guests/{dir}/src/lib.rs)."
        )
        .unwrap();
        writeln!(
            code,
            "pub const {}: &str = {:?};",
            constant(package),
            wasm.display().to_string()
        )
        .unwrap();
    }
    members
        .iter()
        .map(|(_, package)| constant(package))
        .collect()
}

/// `cargo build --release --target TARGET` of the workspace `dir` into
/// `target_dir`, without the outer build's settings.
fn guest_cargo(dir: &Path, target_dir: &Path, target: &str) -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["build", "--release", "--target", target])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(dir);
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
    cmd
}

/// With RUSTUP_AUTO_INSTALL=0 the toolchain file does not install the
/// target by itself; add it when rustup manages the toolchain and lacks it.
fn ensure_target(dir: &Path, target: &str) {
    let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
        .output()
    else {
        return;
    };
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == target)
    {
        return;
    }
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .current_dir(dir)
        .status()
        .expect("running rustup");
    assert!(status.success(), "`rustup target add {target}` failed");
}
