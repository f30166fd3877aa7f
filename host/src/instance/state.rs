//! What netlet keeps for one instance, split by interface: the TCP table
//! ([`crate::net::Tcp`]), the UDP table ([`crate::dgram::Udp`]), the deadlines
//! ([`crate::timers::Timers`]) and the event queue ([`crate::events::Events`]), plus the
//! [`InstanceCtx`] they all share. The store's data ([`GuestState`]) owns them; each WIT
//! interface is served by a narrow view over the parts it needs, as wasmtime-wasi's `p2`
//! does.

use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::sockets::WasiSocketsCtxView;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::context::InstanceCtx;
use crate::dgram::{DgramView, Udp};
use crate::events::Events;
use crate::net::{NetView, Tcp};
use crate::timers::{Timers, TimersView};

/// Table elements an instance may grow its tables to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// WASI resources (streams, pollables, sockets) one instance may hold: they live in host
/// memory, outside `--max-memory`, so their number is bounded; past it the call traps.
const MAX_WASI_RESOURCES: usize = 65_536;

/// The store's resource limits: `--max-memory`, and bounds on tables and instance
/// counts so a guest cannot make the host allocate without end.
pub struct Limiter {
    pub max_memory: usize,
    /// A memory growth was refused: a trap that follows is an out-of-memory.
    pub memory_denied: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.max_memory;
        if !ok {
            self.memory_denied = true;
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        4
    }
}

/// A store's data: WASI's context and netlet's per-interface state.
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: Limiter,
    /// When the current guest call must end; blocking WASI calls give up here.
    pub deadline: Instant,
    /// What the current call may still spend blocked in WASI calls (`--max-blocking`).
    pub blocking_left: Duration,
    pub cx: InstanceCtx,
    pub events: Events,
    pub tcp: Tcp,
    pub udp: Udp,
    pub timers: Timers,
}

impl GuestState {
    pub fn new(wasi: WasiCtx, limiter: Limiter, cx: InstanceCtx) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_WASI_RESOURCES);
        GuestState {
            wasi,
            table,
            limiter,
            deadline: Instant::now(),
            blocking_left: Duration::ZERO,
            cx,
            events: Events::default(),
            tcp: Tcp::default(),
            udp: Udp::default(),
            timers: Timers::default(),
        }
    }

    /// The `net` interface's view: TCP sockets and servers.
    pub fn net(&mut self) -> NetView<'_> {
        NetView {
            tcp: &mut self.tcp,
            events: &mut self.events,
            timers: &mut self.timers,
            cx: &mut self.cx,
        }
    }

    /// The `dgram` interface's view: UDP sockets.
    pub fn dgram(&mut self) -> DgramView<'_> {
        DgramView {
            udp: &mut self.udp,
            events: &mut self.events,
            cx: &mut self.cx,
        }
    }

    /// The `timers` interface's view.
    pub fn timers_view(&mut self) -> TimersView<'_> {
        TimersView {
            timers: &mut self.timers,
            clock: &self.cx.shard.clock,
        }
    }

    /// WASI's resource table with the current call's deadline, for the blocking shims.
    pub fn deadlined(&mut self) -> crate::wasi::Deadlined<'_> {
        crate::wasi::Deadlined::new(
            &mut self.table,
            self.deadline,
            &mut self.blocking_left,
            self.cx.shard.config.max_blocking,
        )
    }

    /// WASI's sockets with the instance's quota, for the capped socket creation.
    pub fn capped(&mut self) -> crate::wasi::Capped<'_> {
        let sockets = WasiSocketsCtxView {
            ctx: self.wasi.sockets(),
            table: &mut self.table,
        };
        crate::wasi::Capped::new(sockets, &mut self.cx)
    }

    /// True while the instance holds anything of its own that can still produce an
    /// event: a socket, a timer, a pending operation or event. (Servers belong to the
    /// shard, which counts them itself.)
    pub fn has_work(&self) -> bool {
        !self.events.is_empty()
            || !self.tcp.is_empty()
            || !self.udp.is_empty()
            || !self.timers.is_empty()
            || self.cx.quota.in_flight > 0
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

struct HasNet;

impl wasmtime::component::HasData for HasNet {
    type Data<'a> = NetView<'a>;
}

struct HasDgram;

impl wasmtime::component::HasData for HasDgram {
    type Data<'a> = DgramView<'a>;
}

struct HasTimers;

impl wasmtime::component::HasData for HasTimers {
    type Data<'a> = TimersView<'a>;
}

impl crate::bindings::netlet::net::types::Host for GuestState {}
impl crate::bindings::netlet::net::net_handler::Host for GuestState {}
impl crate::bindings::netlet::net::dgram_handler::Host for GuestState {}

/// Adds netlet's interfaces to a linker, each served by its own view of the state.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<GuestState>) -> wasmtime::Result<()> {
    use crate::bindings::netlet::net::{dgram, dgram_handler, net, net_handler, timers, types};
    use wasmtime::component::HasSelf;
    types::add_to_linker::<GuestState, HasSelf<GuestState>>(linker, |s| s)?;
    net::add_to_linker::<GuestState, HasNet>(linker, GuestState::net)?;
    write_in_place(linker)?;
    net_handler::add_to_linker::<GuestState, HasSelf<GuestState>>(linker, |s| s)?;
    dgram::add_to_linker::<GuestState, HasDgram>(linker, GuestState::dgram)?;
    dgram_handler::add_to_linker::<GuestState, HasSelf<GuestState>>(linker, |s| s)?;
    timers::add_to_linker::<GuestState, HasTimers>(linker, GuestState::timers_view)?;
    Ok(())
}

/// `socket.write` reading the guest's bytes where they are, in its linear memory,
/// rather than as a `Vec` the generated binding would copy them into first: the bytes
/// the kernel takes at once leave straight from the guest's memory (see
/// [`NetView::write`]). Linked over the generated `write`.
fn write_in_place(linker: &mut wasmtime::component::Linker<GuestState>) -> wasmtime::Result<()> {
    use crate::bindings::SocketRep;
    use wasmtime::StoreContextMut;
    use wasmtime::component::{Resource, WasmList};
    linker.allow_shadowing(true);
    let defined = linker.instance("netlet:net/net@0.1.0")?.func_wrap(
        "[method]socket.write",
        |mut store: StoreContextMut<'_, GuestState>,
         (this, data): (Resource<SocketRep>, WasmList<u8>)| {
            let bytes = data.as_le_slice(&store);
            let (ptr, len) = (bytes.as_ptr(), bytes.len());
            let state = store.data_mut();
            // SAFETY: `bytes` is in the instance's linear memory, which the store owns
            // and which is not part of its data (`state`): the two borrows do not
            // overlap. The memory can neither move nor shrink while this call runs:
            // no guest code runs until it returns, and the host grows no memory.
            let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
            Ok((state.net().write(this.rep(), bytes),))
        },
    );
    linker.allow_shadowing(false);
    defined
}
