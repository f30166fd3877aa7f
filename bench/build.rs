//! Builds the benchmark's guests (the netlet echo handler, the wstd command, the
//! `http-hello` and `ws-echo` examples and the large-response HTTP handler, and the
//! `kv` and `proxy` examples of the protocol rows) for wasm32-wasip2.

include!("../host/build_guests.rs");

fn main() {
    let out = build_guests(
        &[
            "bench-echo",
            "wstd-echo",
            "http-hello",
            "bench-http",
            "ws-echo",
            "kv",
            "proxy",
        ],
        &[
            "guest",
            "wit",
            "bench/guests",
            "examples/http-hello",
            "examples/ws-echo",
            "examples/kv",
            "examples/proxy",
            "Cargo.lock",
        ],
    );
    println!("cargo:rustc-env=BENCH_GUEST_DIR={}", out.display());
}
