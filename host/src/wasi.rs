//! WASI for guests, with every blocking call bounded by the event deadline.
//!
//! Epoch interruption stops a guest that loops, but not one waiting inside a host call:
//! `std::thread::sleep`, or a blocking read on a `wasi:sockets` stream, would hold the
//! shard's thread for as long as it likes. So the blocking functions of `wasi:io/poll`
//! and `wasi:io/streams` are replaced by versions that give up at the deadline of the
//! current guest call (`--event-timeout`) and trap the guest with [`Blocked`]. The
//! non-blocking functions are passed through unchanged.
//!
//! Socket creation is capped the same way: every `wasi:sockets` socket is a host file
//! descriptor, and without a cap one guest could take them all, so the host could no
//! longer accept a connection for any handler. `create-tcp-socket` and
//! `create-udp-socket` answer `new-socket-limit` once an instance holds
//! `config::MAX_GUEST_SOCKETS` sockets (its `wasi:sockets` ones and its netlet ones), or
//! when the process-wide [`crate::budget`] is used up.

use std::future::Future;
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket;
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::bindings::sync::sockets::udp_create_socket;
use wasmtime_wasi::p2::{
    SocketError, SocketResult, StreamError, StreamResult, TcpSocket, UdpSocket,
};
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi::sockets::WasiSocketsCtxView;
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    HostInputStream as AsyncInput, HostOutputStream as AsyncOutput,
};
use wasmtime_wasi_io::poll::DynPollable;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream};

use crate::budget::Refusal;
use crate::context::InstanceCtx;

/// The trap raised when a guest blocks in a host call past what it may.
#[derive(Debug, thiserror::Error)]
pub enum Blocked {
    #[error("blocked in a WASI call past the event deadline (--event-timeout)")]
    EventTimeout,
    #[error("blocked in WASI calls for more than {0:?} in one event (--max-blocking)")]
    MaxBlocking(Duration),
}

/// WASI's resource table with what the current call may still spend blocked: until its
/// deadline, and no more than what is left of its blocking budget.
pub struct Deadlined<'a> {
    table: &'a mut ResourceTable,
    deadline: Instant,
    /// What is left of the event's blocking budget, and the whole of it.
    left: &'a mut Duration,
    budget: Duration,
}

impl<'a> Deadlined<'a> {
    pub fn new(
        table: &'a mut ResourceTable,
        deadline: Instant,
        left: &'a mut Duration,
        budget: Duration,
    ) -> Self {
        Self {
            table,
            deadline,
            left,
            budget,
        }
    }

    /// When a blocking call starting now must give up, and which limit that is.
    fn limit(&self, now: Instant) -> (Instant, Blocked) {
        let by_budget = now + *self.left;
        if by_budget < self.deadline {
            (by_budget, Blocked::MaxBlocking(self.budget))
        } else {
            (self.deadline, Blocked::EventTimeout)
        }
    }
}

/// Runs a blocking WASI call on `view`'s table until it finishes or `view` may block no
/// longer; what it took comes off the event's blocking budget.
macro_rules! blocking {
    ($view:expr, |$table:ident| $call:expr $(,)?) => {{
        let start = Instant::now();
        let (limit, blocked) = $view.limit(start);
        let $table = &mut *$view.table;
        let result = within(limit, $call);
        *$view.left = $view.left.saturating_sub(start.elapsed());
        result.map_err(|_| blocked)
    }};
}

struct HasDeadline;

impl HasData for HasDeadline {
    type Data<'a> = Deadlined<'a>;
}

/// Runs a blocking WASI future until it finishes or `limit` passes.
fn within<T>(limit: Instant, f: impl Future<Output = T>) -> Result<T, ()> {
    in_tokio(async move {
        tokio::time::timeout_at(tokio::time::Instant::from_std(limit), f)
            .await
            .map_err(|_| ())
    })
}

fn blocked_stream<T>(r: Result<StreamResult<T>, Blocked>) -> StreamResult<T> {
    r.unwrap_or_else(|b| Err(StreamError::Trap(wasmtime::Error::new(b))))
}

/// Replaces the blocking parts of `wasi:io` in a linker that already has WASI; `view`
/// gives the store's resource table with the current call's deadline.
pub fn shadow_blocking_io<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> Deadlined<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    poll::add_to_linker::<T, HasDeadline>(linker, view)?;
    streams::add_to_linker::<T, HasDeadline>(linker, view)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// WASI's sockets context, with the instance's quota (its own sockets, and the share of
/// the budget its `wasi:sockets` sockets hold).
pub struct Capped<'a> {
    sockets: WasiSocketsCtxView<'a>,
    cx: &'a mut InstanceCtx,
}

impl<'a> Capped<'a> {
    pub fn new(sockets: WasiSocketsCtxView<'a>, cx: &'a mut InstanceCtx) -> Self {
        Self { sockets, cx }
    }

    fn check(&mut self) -> SocketResult<()> {
        // Counted rather than tracked: a socket's resource can be dropped by the guest
        // without any hook here, and creation is rare enough for a scan.
        let wasi_sockets = self
            .sockets
            .table
            .iter_mut()
            .filter(|entry| entry.is::<TcpSocket>() || entry.is::<UdpSocket>())
            .count();
        // The share follows the count (sockets the guest dropped are given back), plus
        // one for the socket about to be made; if making it fails, the next count
        // corrects the share.
        let quota = &mut self.cx.quota;
        let refusal = if wasi_sockets + quota.own_sockets() >= crate::config::MAX_GUEST_SOCKETS {
            Refusal::Instance
        } else if quota.opened_this_call >= crate::config::MAX_SOCKETS_PER_EVENT {
            Refusal::PerEvent
        } else if quota.wasi_permit.resize(wasi_sockets + 1) {
            quota.opened_this_call += 1;
            return Ok(());
        } else {
            Refusal::Process
        };
        self.cx.quota.wasi_permit.resize(wasi_sockets);
        self.cx.socket_refused(refusal);
        Err(ErrorCode::NewSocketLimit.into())
    }
}

struct HasCap;

impl HasData for HasCap {
    type Data<'a> = Capped<'a>;
}

/// Replaces `wasi:sockets` socket creation in a linker that already has WASI; `view`
/// gives WASI's sockets with the instance's quota.
pub fn cap_socket_creation<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> Capped<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    tcp_create_socket::add_to_linker::<T, HasCap>(linker, view)?;
    udp_create_socket::add_to_linker::<T, HasCap>(linker, view)?;
    linker.allow_shadowing(false);
    Ok(())
}

impl network::Host for Capped<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.sockets, error)
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime_wasi_io::streams::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.sockets, err)
    }
}

impl network::HostNetwork for Capped<'_> {
    fn drop(&mut self, this: Resource<network::Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.sockets, this)
    }
}

impl tcp_create_socket::Host for Capped<'_> {
    fn create_tcp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<TcpSocket>> {
        self.check()?;
        tcp_create_socket::Host::create_tcp_socket(&mut self.sockets, address_family)
    }
}

impl udp_create_socket::Host for Capped<'_> {
    fn create_udp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<UdpSocket>> {
        self.check()?;
        udp_create_socket::Host::create_udp_socket(&mut self.sockets, address_family)
    }
}

impl poll::Host for Deadlined<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        blocking!(self, |table| async_poll::Host::poll(table, pollables))
            .map_err(wasmtime::Error::new)?
    }
}

impl poll::HostPollable for Deadlined<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        blocking!(self, |table| async_poll::HostPollable::block(
            table, pollable
        ),)
        .map_err(wasmtime::Error::new)?
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.table, pollable)
    }
}

impl streams::Host for Deadlined<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.table, err)
    }
}

impl streams::HostOutputStream for Deadlined<'_> {
    fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        streams::HostOutputStream::drop(self.table, stream)
    }

    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(self.table, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(self.table, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        blocked_stream(blocking!(self, |table| {
            AsyncOutput::blocking_write_and_flush(table, stream, bytes)
        },))
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostOutputStream::subscribe(self.table, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(self.table, stream, len)
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        blocked_stream(blocking!(self, |table| {
            AsyncOutput::blocking_write_zeroes_and_flush(table, stream, len)
        },))
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        streams::HostOutputStream::flush(self.table, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        blocked_stream(blocking!(self, |table| AsyncOutput::blocking_flush(
            table,
            Resource::new_borrow(stream.rep())
        ),))
    }

    fn splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        streams::HostOutputStream::splice(self.table, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        blocked_stream(blocking!(self, |table| AsyncOutput::blocking_splice(
            table, dst, src, len
        ),))
    }
}

impl streams::HostInputStream for Deadlined<'_> {
    fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        streams::HostInputStream::drop(self.table, stream)
    }

    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(self.table, stream, len)
    }

    fn blocking_read(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        blocked_stream(blocking!(self, |table| AsyncInput::blocking_read(
            table, stream, len
        ),))
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(self.table, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        blocked_stream(blocking!(self, |table| AsyncInput::blocking_skip(
            table, stream, len
        ),))
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostInputStream::subscribe(self.table, stream)
    }
}
