//! The one `bindgen!` site: host-side types and traits for the `netlet:net` WIT package.
//!
//! Resources are mapped to marker types: the host keeps its sockets in its own tables
//! (see [`crate::net::Tcp`], [`crate::dgram::Udp`]) and a resource's `rep` is the socket's id there.

/// The type behind the guest's `net.socket` handles; a handle's rep is the socket's id.
pub struct SocketRep;

/// The type behind the guest's `net.server` handles; a handle's rep is the server's id.
pub struct ServerRep;

/// The type behind the guest's `dgram.socket` handles; a handle's rep is the socket's id.
pub struct DgramRep;

wasmtime::component::bindgen!({
    world: "tcp-udp",
    path: "../wit",
    // Events are lowered straight from the host's buffers: their payloads borrow.
    ownership: Borrowing { duplicate_if_necessary: false },
    with: {
        "netlet:net/net.socket": SocketRep,
        "netlet:net/net.server": ServerRep,
        "netlet:net/dgram.socket": DgramRep,
    },
    // Asking for more timers than an instance may hold is a guest bug: it traps.
    imports: {
        "netlet:net/timers.set-timeout": trappable,
        "netlet:net/timers.set-interval": trappable,
    },
});

pub use self::exports::netlet::net::handler::Event;
pub use self::netlet::net::dgram_handler::DgramEvent;
pub use self::netlet::net::net_handler::NetEvent;
pub use self::netlet::net::types::{AddressInfo, ErrorCode, ErrorInfo, IpFamily};
