//! # netlet: sandboxed network handlers with Node's `net`/`dgram` semantics
//!
//! The host owns real TCP and UDP sockets and calls a WebAssembly component (the
//! handler) for every event, through the WIT interfaces in `wit/`. The book's
//! architecture chapter (`docs/src/architecture.md`) describes the layers; this crate
//! is the host library and the `netlet` binary.
//!
//! # Layout
//!
//! - [`bindings`]: the one `bindgen!` site.
//! - [`engine`]: the wasmtime engine, compiling and checking components.
//! - [`handler`]: a checked component linked with what a guest may import.
//! - [`cache`]: compiled components on disk, checked before they are trusted.
//! - [`transport`]: what a byte stream, a listener, a UDP socket and name resolution
//!   must do; kernel sockets implement it (the testing harness's in-memory network too).
//! - [`context`]: what an instance's interfaces share (the shard's context, socket ids,
//!   the instance's quota).
//! - [`instance`]: one instance: its store, starting it, delivering a batch, its faults;
//!   [`instance::state`]: its per-interface state and the views the WIT interfaces use.
//! - [`net`]: TCP (the `net` interface: connections, servers, outbound connects).
//! - [`dgram`]: UDP (the `dgram` interface).
//! - [`timers`]: an instance's deadlines (the `timers` interface, socket idle timeouts).
//! - [`events`]: events waiting for a guest, their payloads in a per-instance arena.
//! - [`reactor`]: readiness plumbing between tokio's driver and a shard's loop.
//! - [`shard`]: a worker thread and its loop (poll, deliver a batch, flush), its
//!   instances' lifecycle, accepting, swap and drain.
//! - [`serve`]: running one handler: binding, shards, start, hot swap and stop.
//! - [`deploy`]: `netlet up` / `netlet run` / the demo: the manifest, the one supervisor
//!   that reloads and swaps code, restarts, adds and removes handlers.
//! - [`metrics`]: `--metrics`, the handlers' counters for Prometheus, and the
//!   orchestrator's probes (`/healthz`, `/readyz`).
//! - [`oci`]: components from OCI registries (`oci://`), `netlet push` / `pull`, the
//!   cache of pulled components.
//! - [`stats`]: a handler's counters (connections, drops, traps, restarts).
//! - [`policy`]: the outbound allow-list: every outbound path asks it, one log wording.
//! - [`budget`]: what guests may make the host hold: sockets (a process-wide budget of
//!   descriptors) and host memory in their queues (per instance and for the process).
//! - [`wasi`]: WASI with blocking calls bounded (`--max-blocking`, the event deadline)
//!   and socket creation capped.
//! - [`config`]: a handler's settings, defined once in a table that `netlet run`'s flags,
//!   manifests, scenario files and the harness all read through; their validation and
//!   the rule for what needs a restart rather than a hot swap.
//! - [`log`]: guest output and host lines: rate-limited per instance, written to stderr
//!   through a bounded queue that never blocks a shard.
//! - [`error`], [`resolve`], [`clock`]: error mapping, address resolution and the one
//!   way endpoints are written, real or virtual time.
//! - [`testing`]: test a component in memory or on real sockets (`netlet test`).
//! - [`cli`], [`demo`], [`inspect`]: the `netlet` command line, the seeds' demo, `netlet
//!   inspect`.
//! - [`reference`]: the book's CLI and manifest reference, rendered from the command line
//!   and the settings table.
//! - [`build`]: `netlet build`: JavaScript source into a component, with a toolchain
//!   pinned by lock files in this repository and installed on first use.

pub mod bindings;
pub mod budget;
pub mod build;
pub mod cache;

pub mod cli;
pub mod clock;

pub mod config;
pub mod context;
pub mod demo;
pub mod deploy;
pub mod dgram;
pub mod engine;
pub mod error;
pub mod events;
pub mod handler;

pub mod inspect;
pub mod instance;

pub mod log;
pub mod metrics;
pub mod net;
pub mod oci;
pub mod policy;
pub mod reactor;
pub mod reference;
pub mod resolve;
pub mod serve;
pub mod shard;
pub mod stats;
pub mod testing;

pub mod timers;
pub mod transport;
pub mod wasi;

pub use config::HandlerConfig;
pub use engine::{EngineOptions, LoadError, Loader};
pub use handler::Handler;
pub use log::LogSink;
pub use serve::{ServeError, Service};
