//! Builds the guest components (the examples and the test-only guests) for
//! `wasm32-wasip2`, as wasmtime's test-programs do, so that `cargo run` and `cargo test`
//! from a clean clone build everything. The demo embeds the examples; tests load the
//! `.wasm` files from `NETLET_GUEST_DIR`.

include!("build_guests.rs");

/// Every guest package, built together in one cargo invocation.
const GUESTS: &[&str] = &[
    "hello",
    "echo",
    "udp-echo",
    "tcp-client",
    "udp-client",
    "chat",
    "http-hello",
    "http-echo",
    "sse",
    "ws-echo",
    "ws-chat",
    "kv",
    "proxy",
    "scripted",
    "notahandler",
    "hostile",
    "broken",
    "http-tester",
    "ws-tester",
    "ws-net",
];

fn main() {
    let out = build_guests(
        GUESTS,
        &["guest", "examples", "wit", "tests/guests", "Cargo.lock"],
    );
    println!("cargo:rustc-env=NETLET_GUEST_DIR={}", out.display());
}
