//! Builds the benchmark's guests (the netlet handler and the wstd command) for
//! wasm32-wasip2.

include!("../host/build_guests.rs");

fn main() {
    let out = build_guests(
        &["bench-echo", "wstd-echo"],
        &["guest", "wit", "bench/guests", "Cargo.lock"],
    );
    println!("cargo:rustc-env=BENCH_GUEST_DIR={}", out.display());
}
