//! Testing components: in memory (deterministic, virtual time) or on real sockets.
//!
//! # In memory
//!
//! [`Harness`] runs a handler with the engine, limits and isolation modes of
//! `netlet run`, on an in-memory network: the test plays every peer, scripts what a
//! socket can see (data, half-close, reset, a peer that stops reading, outbound
//! connects answered or refused, datagrams) and moves time itself ([`Harness::advance`]
//! fires timers and socket timeouts). Each action runs the handler until it has nothing
//! left to do, so results do not depend on the machine's speed.
//!
//! ```no_run
//! use std::time::Duration;
//! use netlet::testing::Harness;
//!
//! let h = Harness::load("target/wasm32-wasip2/release/hello.wasm")?;
//! let c = h.connect()?;
//! assert_eq!(c.take_output(), "欢迎光临《深入浅出Node.js》示例：\n".as_bytes());
//! c.send("hi")?;
//! assert_eq!(c.take_output(), "你好".as_bytes());
//! c.end()?;
//! assert!(h.logs().contains(&"连接断开".to_string()));
//! assert!(c.is_closed() && !c.closed_with_error());
//! h.advance(Duration::from_secs(1))?;
//! # Ok::<(), netlet::testing::HarnessError>(())
//! ```
//!
//! # On real sockets
//!
//! [`Server::start`] runs a handler in-process on loopback port 0 and returns its
//! addresses and log, for tests with real clients.
//!
//! # Scenarios
//!
//! [`scenario`] runs scenario files (TOML) against a component in the harness: what
//! `netlet test` does.
//!
//! # HTTP
//!
//! [`http`] builds requests and parses responses for HTTP handlers (scenarios have
//! `request` and `expect-response` steps).
//!
//! # WebSocket
//!
//! [`ws`] does a WebSocket client's part on a harness connection (the handshake,
//! masked frames, reading the handler's frames), for tests of `ws` handlers.

pub mod harness;
pub mod http;
pub mod mem;
pub mod scenario;
pub mod server;
pub mod ws;

pub use harness::{Conn, Harness, HarnessBuilder, HarnessError, TraceEvent, describe};
pub use mem::{PendingConnect, SentDatagram};
pub use server::Server;
