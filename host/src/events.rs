//! Events waiting for a guest, in the host's own form: an instance's [`Events`] queue.
//!
//! An event's payload (the bytes of a `data` or `message`, a peer's address text) is not
//! allocated per event: it lives in the instance's [`Arena`], which reads fill directly,
//! and the event holds its range. At delivery the batch is turned into the WIT types,
//! which borrow from the arena (`bindgen!`'s `ownership: Borrowing`), and lowered into the
//! guest in one call. The arena is then cleared, keeping its capacity.

use std::ops::Range;

use wasmtime::component::Resource;

use crate::bindings::netlet::net::dgram_handler::{
    ErrorEvent as DgramErrorEvent, ListeningEvent, MessageEvent, RemoteInfo,
};
use crate::bindings::netlet::net::net_handler::{
    CloseEvent, ConnectionEvent, DataEvent, DropEvent, ErrorEvent, ServerErrorEvent,
};
use crate::bindings::{AddressInfo, DgramEvent, ErrorCode, ErrorInfo, Event, IpFamily, NetEvent};

/// An error as the guest will see it: a code and Node's message text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostError {
    pub code: ErrorCode,
    pub message: String,
}

/// One pending event. Each case is the WIT event of the same name.
#[derive(Clone, Debug)]
pub enum HostEvent {
    Listening(u32),
    Connection {
        server: u32,
        socket: u32,
    },
    Connect(u32),
    Data {
        socket: u32,
        data: Range<usize>,
    },
    End(u32),
    Drain(u32),
    Timeout(u32),
    Error {
        socket: u32,
        error: HostError,
    },
    Close {
        socket: u32,
        had_error: bool,
    },
    ServerClose(u32),
    ServerError {
        server: u32,
        error: HostError,
    },
    Drop {
        server: u32,
        local: Option<AddressInfo>,
        remote: Option<AddressInfo>,
    },
    /// `with_handle`: the host bound it, so the guest gets its handle with the event.
    UdpListening {
        socket: u32,
        with_handle: bool,
    },
    UdpMessage {
        socket: u32,
        data: Range<usize>,
        address: Range<usize>,
        family: IpFamily,
        port: u16,
    },
    UdpConnect(u32),
    UdpError {
        socket: u32,
        error: HostError,
    },
    UdpClose(u32),
    Timer(u32),
}

/// Events one `handle` call carries at most. A burst (thousands of connections closing
/// at once, each close making the guest write to every other) is split over several
/// calls, with every other socket's I/O between them.
pub const MAX_EVENTS_PER_CALL: usize = 64;

/// One instance's pending events, in order, and their payloads.
#[derive(Default)]
pub struct Events {
    pub queue: Vec<HostEvent>,
    pub arena: Arena,
}

impl Events {
    pub fn push(&mut self, event: HostEvent) {
        self.queue.push(event);
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Puts `events`, whose payloads are in `from`, back ahead of those queued (the
    /// part of a batch a call did not carry). Payloads are copied into one arena.
    pub fn put_back(&mut self, events: Vec<HostEvent>, from: &Arena) {
        let mut arena = Arena::default();
        let mut queue = Vec::with_capacity(events.len() + self.queue.len());
        for event in events {
            queue.push(event.moved(from, &mut arena));
        }
        for event in self.queue.drain(..) {
            queue.push(event.moved(&self.arena, &mut arena));
        }
        self.queue = queue;
        self.arena = arena;
    }
}

/// Where pending events' payloads live until delivery.
#[derive(Default)]
pub struct Arena {
    pub bytes: Vec<u8>,
    pub text: String,
}

impl Arena {
    /// Stores bytes; returns their range.
    pub fn bytes(&mut self, data: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        start..self.bytes.len()
    }

    /// Reads at most `max` bytes straight into the arena (no intermediate buffer);
    /// returns the range `read` filled, or what it returned instead.
    pub fn read_into<T>(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut tokio::io::ReadBuf<'_>) -> std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<(T, Range<usize>)>> {
        self.bytes.reserve(max);
        let start = self.bytes.len();
        let mut rb = tokio::io::ReadBuf::uninit(&mut self.bytes.spare_capacity_mut()[..max]);
        let polled = read(&mut rb);
        let n = rb.filled().len();
        // SAFETY: `ReadBuf` guarantees its filled part has been initialised, and it is
        // the start of the spare capacity.
        unsafe { self.bytes.set_len(start + n) };
        polled.map_ok(|t| (t, start..start + n))
    }

    /// Stores text written by `f`; returns its range.
    pub fn text(&mut self, f: impl FnOnce(&mut String)) -> Range<usize> {
        let start = self.text.len();
        f(&mut self.text);
        start..self.text.len()
    }

    /// Empties the arena after a delivery, keeping a reasonable capacity.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.text.clear();
        if self.bytes.capacity() > 4 << 20 {
            // A burst of large reads: do not keep its memory.
            self.bytes = Vec::new();
        }
    }
}

fn info(error: &HostError) -> ErrorInfo<'_> {
    ErrorInfo {
        code: error.code,
        message: &error.message,
    }
}

impl HostEvent {
    /// The event with its payload copied from `from` into `to`.
    fn moved(self, from: &Arena, to: &mut Arena) -> HostEvent {
        match self {
            HostEvent::Data { socket, data } => HostEvent::Data {
                socket,
                data: to.bytes(&from.bytes[data]),
            },
            HostEvent::UdpMessage {
                socket,
                data,
                address,
                family,
                port,
            } => HostEvent::UdpMessage {
                socket,
                data: to.bytes(&from.bytes[data]),
                address: to.text(|t| t.push_str(&from.text[address])),
                family,
                port,
            },
            other => other,
        }
    }

    /// The bytes a `data` or `message` event carries (empty for other events).
    pub fn payload<'a>(&self, arena: &'a Arena) -> &'a [u8] {
        match self {
            HostEvent::Data { data, .. } | HostEvent::UdpMessage { data, .. } => {
                &arena.bytes[data.clone()]
            }
            _ => &[],
        }
    }

    /// The WIT event, borrowing its payload from `arena`. Handles the event carries
    /// (a new socket, a server) are created here, once per event.
    pub fn to_wit<'a>(&'a self, arena: &'a Arena) -> Event<'a> {
        match self {
            HostEvent::Listening(server) => {
                Event::Net(NetEvent::Listening(Resource::new_own(*server)))
            }
            HostEvent::Connection { server, socket } => {
                Event::Net(NetEvent::Connection(ConnectionEvent {
                    server: *server,
                    socket: Resource::new_own(*socket),
                }))
            }
            HostEvent::Connect(id) => Event::Net(NetEvent::Connect(*id)),
            HostEvent::Data { socket, data } => Event::Net(NetEvent::Data(DataEvent {
                socket: *socket,
                data: &arena.bytes[data.clone()],
            })),
            HostEvent::End(id) => Event::Net(NetEvent::End(*id)),
            HostEvent::Drain(id) => Event::Net(NetEvent::Drain(*id)),
            HostEvent::Timeout(id) => Event::Net(NetEvent::Timeout(*id)),
            HostEvent::Error { socket, error } => Event::Net(NetEvent::Error(ErrorEvent {
                socket: *socket,
                error: info(error),
            })),
            HostEvent::Close { socket, had_error } => Event::Net(NetEvent::Close(CloseEvent {
                socket: *socket,
                had_error: *had_error,
            })),
            HostEvent::ServerClose(id) => Event::Net(NetEvent::ServerClose(*id)),
            HostEvent::ServerError { server, error } => {
                Event::Net(NetEvent::ServerError(ServerErrorEvent {
                    server: *server,
                    error: info(error),
                }))
            }
            HostEvent::Drop {
                server,
                local,
                remote,
            } => Event::Net(NetEvent::Drop(DropEvent {
                server: *server,
                local_address: local.as_ref(),
                remote_address: remote.as_ref(),
            })),
            HostEvent::UdpListening {
                socket,
                with_handle,
            } => Event::Dgram(DgramEvent::Listening(ListeningEvent {
                socket: *socket,
                handle: with_handle.then(|| Resource::new_own(*socket)),
            })),
            HostEvent::UdpMessage {
                socket,
                data,
                address,
                family,
                port,
            } => Event::Dgram(DgramEvent::Message(MessageEvent {
                socket: *socket,
                data: &arena.bytes[data.clone()],
                rinfo: RemoteInfo {
                    address: &arena.text[address.clone()],
                    family: *family,
                    port: *port,
                    size: data.len() as u32,
                },
            })),
            HostEvent::UdpConnect(id) => Event::Dgram(DgramEvent::Connect(*id)),
            HostEvent::UdpError { socket, error } => {
                Event::Dgram(DgramEvent::Error(DgramErrorEvent {
                    socket: *socket,
                    error: info(error),
                }))
            }
            HostEvent::UdpClose(id) => Event::Dgram(DgramEvent::Close(*id)),
            HostEvent::Timer(id) => Event::Timer(*id),
        }
    }
}
