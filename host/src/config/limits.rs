//! The fixed limits and the defaults of the settings: what the host holds for a guest
//! is bounded by these (the book's security chapter, `docs/src/security.md`, lists each).

use std::time::Duration;

/// Node's default `highWaterMark` for a socket's write queue.
pub const DEFAULT_HIGH_WATER_MARK: usize = 64 * 1024;

/// Past this many queued bytes a socket is destroyed with an error rather than growing.
pub const DEFAULT_MAX_WRITE_BUFFER: usize = 16 * 1024 * 1024;

/// Node's default listen backlog.
pub const BACKLOG: i32 = 511;

/// Default `--max-memory`: each instance's linear memory cap.
pub const DEFAULT_MAX_MEMORY: usize = 64 * 1024 * 1024;

/// The smallest `--max-memory`: one WebAssembly page.
pub const MIN_MEMORY: usize = 1 << 16;

/// Default `--max-host-memory`: host memory one instance's queues (socket write queues,
/// UDP send queues) may hold.
pub const DEFAULT_MAX_HOST_MEMORY: usize = 128 << 20;

/// Default `--max-blocking`: how long one event may spend blocked in WASI calls. A Node
/// handler cannot block at all, and while one instance blocks its shard serves nobody.
pub const DEFAULT_MAX_BLOCKING: Duration = Duration::from_millis(10);

/// Default `--event-timeout`: the CPU time one guest call may take.
pub const DEFAULT_EVENT_TIMEOUT: Duration = Duration::from_secs(1);

/// How finely an event's deadline is measured: the engine's epoch advances this often
/// (`engine::EPOCH_TICK`), so it is also the shortest `--event-timeout`, and the longest
/// a preemptive call (`--isolation connection`) runs before its shard serves others.
pub const EVENT_TIMEOUT_RESOLUTION: Duration = Duration::from_millis(5);

/// Default `--grace`: how long open connections may finish after SIGINT/SIGTERM.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Default `--drain-delay`: none; listeners close as soon as SIGTERM comes.
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::ZERO;

/// Default `--drain-timeout`: how long connections may stay on replaced code.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Default `--tls-handshake-timeout`: how long a TLS handshake may take (Node's default
/// is 120 s; a client that connects and stays silent holds a handshake slot that long).
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most shards a handler may have.
pub const MAX_SHARDS: usize = 1024;

/// Connections a connection-isolation pool is sized for when `--max-connections` does
/// not say.
pub const DEFAULT_POOL_CONNECTIONS: usize = 10_000;

/// Sockets (TCP clients and UDP sockets) one instance may create.
pub const MAX_GUEST_SOCKETS: usize = 1024;

/// Sockets one guest call may open (netlet's and `wasi:sockets` together): each costs
/// the host a registration with its event loop, released only after the call, so a
/// guest opening and closing sockets in a loop must not pile them up.
pub const MAX_SOCKETS_PER_EVENT: u32 = 1024;

/// Pending guest timers per instance; asking for more traps the guest.
pub const MAX_TIMERS: usize = 10_000;

/// Outbound connects and name lookups one instance may have running at once.
pub const MAX_IN_FLIGHT: u32 = 256;
