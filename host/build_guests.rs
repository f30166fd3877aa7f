// Building guest components for `wasm32-wasip2` from a build script, shared by the
// host's and the benchmark's build scripts (`include!`d by both).
//
// The guests are built by a nested `cargo build --release` into their own target
// directory (`<target>/guests`), so the outer build's lock is not contended.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `packages` for wasm32-wasip2 and returns the directory holding their `.wasm`
/// files. `watch` lists the paths (relative to the workspace root) whose changes
/// rebuild them.
pub fn build_guests(packages: &[&str], watch: &[&str]) -> PathBuf {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("the crate lives in the workspace root")
        .to_path_buf();
    for watched in watch {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=NETLET_GUEST_TARGET_DIR");

    let target_dir = guest_target_dir();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    ensure_wasm_target(Path::new(&rustc));

    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir);
    for package in packages {
        cmd.args(["-p", package]);
    }
    // The outer build's flags and wrappers are for the host target (and clippy's wrapper
    // would lint the guests under a different fingerprint on every run).
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().unwrap_or_else(|e| {
        panic!("netlet: could not run {cargo:?} to build the guest components: {e}")
    });
    if !status.success() {
        panic!(
            "netlet: building the guest components for wasm32-wasip2 failed ({status}); \
             the compiler's messages are above"
        );
    }

    let out = target_dir.join("wasm32-wasip2").join("release");
    for package in packages {
        let file = out.join(format!("{}.wasm", package.replace('-', "_")));
        if !file.exists() {
            panic!("netlet: guest {package} was built but {} is missing", file.display());
        }
    }
    out
}

/// `<target>/guests`, next to the outer build's profile directories.
fn guest_target_dir() -> PathBuf {
    if let Some(dir) = env::var_os("NETLET_GUEST_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("guests");
    }
    // OUT_DIR is <target>/[<triple>/]<profile>/build/netlet-<hash>/out.
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut dir = out_dir.as_path();
    for _ in 0..4 {
        dir = dir.parent().unwrap_or(dir);
    }
    if env::var("TARGET").ok() != env::var("HOST").ok() {
        dir = dir.parent().unwrap_or(dir);
    }
    dir.join("guests")
}

/// The wasm32-wasip2 standard library must be installed; try `rustup` once if it is not.
fn ensure_wasm_target(rustc: &Path) {
    let has_target = || {
        Command::new(rustc)
            .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .is_some_and(|dir| dir.is_dir())
    };
    if has_target() {
        return;
    }
    println!("cargo:warning=installing the wasm32-wasip2 target (rustup target add wasm32-wasip2)");
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", "wasm32-wasip2"]);
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        rustup.args(["--toolchain", &toolchain]);
    }
    let ok = rustup.status().map(|s| s.success()).unwrap_or(false);
    if !ok || !has_target() {
        panic!(
            "netlet: the wasm32-wasip2 target is not installed and `rustup target add wasm32-wasip2` \
             failed. Install it, then build again:\n\n    rustup target add wasm32-wasip2\n"
        );
    }
}
