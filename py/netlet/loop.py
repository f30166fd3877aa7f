"""asyncio's event loop on netlet's WIT: transports, servers and timers.

``NetletEventLoop`` is an ``asyncio.BaseEventLoop``: its ready queue, timer heap,
futures, tasks and ``call_soon`` / ``call_later`` / ``call_at`` are asyncio's own. What
differs is what drives it. There is no selector and no thread that blocks: the host
calls the component with a batch of events, the loop turns each into the protocol
call asyncio would make (``connection_made``, ``data_received``, ``eof_received``,
``pause_writing`` / ``resume_writing``, ``connection_lost``, ``datagram_received``,
``error_received``), runs what became ready, and returns. Scheduled callbacks wake it
through one host timer set for the earliest of them.

``run_until_complete`` and ``run_forever`` cannot block either: they run what is ready
and, when the future is not done, end the program's top level (``_Detach``). The
component's ``init`` returns, the tasks stay suspended, and the events that come later
resume them: ``asyncio.run(main())`` with ``await server.serve_forever()`` serves.
"""

import asyncio
import errno
import heapq
import math
import socket as _socket
from asyncio import events

from componentize_py_types import Err
from wit_world.exports import handler as _h
from wit_world.imports import dgram as _dgram
from wit_world.imports import dgram_handler as _dh
from wit_world.imports import net as _net
from wit_world.imports import net_handler as _nh
from wit_world.imports import timers as _timers
from wit_world.imports import types as _types

from . import runtime

# The host's write high-water mark (WIT `socket.write`): past it, `write` returns false
# and a `drain` event follows when the queue has emptied.
HOST_HIGH_WATER = 64 * 1024


class _Detach(BaseException):
    """Ends the program's top level while the loop waits: the instance runs on events."""


_ERRNO = {
    _types.ErrorCode.ACCESS_DENIED: (PermissionError, errno.EACCES),
    _types.ErrorCode.INVALID_ARGUMENT: (OSError, errno.EINVAL),
    _types.ErrorCode.INVALID_STATE: (OSError, errno.EBADF),
    _types.ErrorCode.ADDRESS_IN_USE: (OSError, errno.EADDRINUSE),
    _types.ErrorCode.ADDRESS_NOT_AVAILABLE: (OSError, errno.EADDRNOTAVAIL),
    _types.ErrorCode.CONNECTION_REFUSED: (ConnectionRefusedError, errno.ECONNREFUSED),
    _types.ErrorCode.CONNECTION_RESET: (ConnectionResetError, errno.ECONNRESET),
    _types.ErrorCode.CONNECTION_ABORTED: (ConnectionAbortedError, errno.ECONNABORTED),
    _types.ErrorCode.BROKEN_PIPE: (BrokenPipeError, errno.EPIPE),
    _types.ErrorCode.TIMED_OUT: (TimeoutError, errno.ETIMEDOUT),
    _types.ErrorCode.HOST_UNREACHABLE: (OSError, errno.EHOSTUNREACH),
    _types.ErrorCode.NAME_NOT_FOUND: (OSError, errno.ENOENT),
    _types.ErrorCode.MESSAGE_TOO_LARGE: (OSError, errno.EMSGSIZE),
    _types.ErrorCode.TLS_HANDSHAKE_FAILED: (ConnectionError, errno.ECONNABORTED),
    _types.ErrorCode.WOULD_EXCEED_LIMIT: (OSError, errno.ENOBUFS),
    _types.ErrorCode.UNKNOWN: (OSError, errno.EIO),
}


def _os_error(code, message=None):
    """The OSError CPython would raise for a WIT error code."""
    cls, num = _ERRNO.get(code, (OSError, errno.EIO))
    return cls(num, message or code.name.lower().replace("_", " "))


def _from_err(err):
    """An OSError from a WIT call's `Err`."""
    return _os_error(err.value)


def _addr(info):
    """A WIT address as asyncio's peername / sockname tuple."""
    if info is None:
        return None
    if info.family == _types.IpFamily.IPV6:
        return (info.address, info.port, 0, 0)
    return (info.address, info.port)


class _ListenSocket:
    """What ``server.sockets`` holds: enough of a socket for ``getsockname()``."""

    def __init__(self, server):
        self._server = server
        info = server.address()
        self._name = _addr(info)
        self.family = (
            _socket.AF_INET6
            if info is not None and info.family == _types.IpFamily.IPV6
            else _socket.AF_INET
        )
        self.type = _socket.SOCK_STREAM

    def getsockname(self):
        return self._name

    def fileno(self):
        return -1

    def __repr__(self):
        return f"<netlet listener {self._name}>"


class _TlsObject:
    """``get_extra_info('ssl_object')`` of a TLS connection: what the host negotiated."""

    def __init__(self, info):
        self._info = info
        self.server_hostname = info.servername

    def version(self):
        return self._info.protocol

    def cipher(self):
        return (self._info.cipher, self._info.protocol, None)

    def selected_alpn_protocol(self):
        return self._info.alpn_protocol

    def getpeercert(self, binary_form=False):
        cert = self._info.peer_certificate
        if cert is None or binary_form:
            return None
        subject = tuple(
            ((k, v),) for k, _, v in (part.partition("=") for part in cert.subject.split(","))
        )
        alt = tuple(tuple(name.split(":", 1)) for name in cert.subject_alt_names)
        return {"subject": subject, "subjectAltName": alt}


class _TcpTransport(asyncio.Transport):
    """A TCP connection: asyncio's ``Transport`` over a WIT ``net.socket``."""

    def __init__(self, loop, sock, protocol, server=None):
        super().__init__()
        self._loop = loop
        self._sock = sock
        self._id = sock.id()
        self._protocol = protocol
        self._server = server
        self._closing = False
        self._closed = False
        self._eof_written = False
        self._reading = True
        self._paused = False
        self._high = HOST_HIGH_WATER
        self._low = HOST_HIGH_WATER // 4
        self._error = None
        self._polling = False
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)
        self._names()

    def _names(self):
        self._peername = _addr(self._sock.remote_address())
        self._sockname = _addr(self._sock.local_address())

    def __repr__(self):
        state = "closed" if self._closed else "closing" if self._closing else "open"
        return f"<netlet TCP transport {state} peer={self._peername}>"

    # -- asyncio's BaseTransport --

    def get_extra_info(self, name, default=None):
        if name == "peername":
            return self._peername
        if name == "sockname":
            return self._sockname
        if name in ("ssl_object", "peercert", "cipher"):
            tls = self._sock.tls()
            if tls is None:
                return default
            obj = _TlsObject(tls)
            if name == "ssl_object":
                return obj
            return obj.getpeercert() if name == "peercert" else obj.cipher()
        return super().get_extra_info(name, default)

    def is_closing(self):
        return self._closing

    def close(self):
        if self._closing:
            return
        self._closing = True
        if not self._eof_written:
            self._eof_written = True
            self._sock.end(None)
        # Keep reading (and discarding) so the peer's FIN is seen; the socket is
        # released once what was written has left (as asyncio closes it after its
        # buffer is flushed).
        if not self._reading:
            self._sock.resume()
        self._loop.call_soon(self._release_when_flushed)

    def _release_when_flushed(self):
        if self._closed:
            return
        if self._sock.buffer_size() == 0:
            self._sock.destroy()
        else:
            self._loop.call_later(0.005, self._release_when_flushed)

    def set_protocol(self, protocol):
        self._protocol = protocol
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)

    def get_protocol(self):
        return self._protocol

    # -- asyncio's ReadTransport --

    def is_reading(self):
        return self._reading and not self._closing

    def pause_reading(self):
        if self._closing or not self._reading:
            return
        self._reading = False
        self._sock.pause()

    def resume_reading(self):
        if self._closing or self._reading:
            return
        self._reading = True
        self._sock.resume()

    # -- asyncio's WriteTransport --

    def set_write_buffer_limits(self, high=None, low=None):
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high = high
        self._low = low
        self._maybe_pause(None)

    def get_write_buffer_limits(self):
        return (self._low, self._high)

    def get_write_buffer_size(self):
        return 0 if self._closed else self._sock.buffer_size()

    def write(self, data):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._eof_written and not self._closing:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data or self._closing or self._closed:
            return
        try:
            ok = self._sock.write(bytes(data))
        except Err:
            # Past the host's hard cap: the host destroys the socket, an error and a
            # close event follow (connection_lost gets the error).
            return
        self._maybe_pause(ok)

    def writelines(self, list_of_data):
        self.write(b"".join(list_of_data))

    def write_eof(self):
        if self._closing or self._eof_written:
            return
        self._eof_written = True
        self._sock.end(None)

    def can_write_eof(self):
        return True

    def abort(self):
        if self._closed:
            return
        self._closing = True
        self._sock.destroy()

    # -- flow control --

    def _maybe_pause(self, host_ok):
        if self._paused or self._closed:
            return
        # The host said its queue is under its own mark (64 KiB): under ours too, when
        # ours is at least that, without asking it the size.
        if host_ok is True and self._high >= HOST_HIGH_WATER:
            return
        if self._sock.buffer_size() <= self._high:
            return
        self._paused = True
        try:
            self._protocol.pause_writing()
        except BaseException as exc:
            runtime.fatal(exc)
            return
        if host_ok is not False:
            # Under the host's own mark no drain event comes: look again shortly.
            self._poll()

    def _poll(self):
        if self._polling:
            return
        self._polling = True
        self._loop.call_later(0.002, self._polled)

    def _polled(self):
        self._polling = False
        if self._paused and not self._closed:
            if not self._maybe_resume():
                self._poll()

    def _maybe_resume(self):
        if not self._paused or self._closed:
            return True
        if self._sock.buffer_size() > self._low:
            return False
        self._paused = False
        try:
            self._protocol.resume_writing()
        except BaseException as exc:
            runtime.fatal(exc)
        return True

    # -- events --

    def _on_data(self, data):
        if self._closing:
            return
        protocol = self._protocol
        if self._buffered:
            view = memoryview(data)
            while view:
                buf = protocol.get_buffer(len(view))
                n = min(len(buf), len(view))
                if n == 0:
                    raise RuntimeError("get_buffer() returned an empty buffer")
                memoryview(buf)[:n] = view[:n]
                protocol.buffer_updated(n)
                view = view[n:]
        else:
            protocol.data_received(data)

    def _on_end(self):
        if self._closing:
            return
        keep_open = self._protocol.eof_received()
        if not keep_open:
            self.close()

    def _on_close(self, had_error):
        if self._closed:
            return
        self._closed = True
        self._closing = True
        self._loop._sockets.pop(self._id, None)
        exc = self._error if had_error else None
        if self._server is not None:
            self._server._detach_connection()
        self._loop.call_soon(self._protocol.connection_lost, exc)


class _Server(asyncio.AbstractServer):
    """A listening server: asyncio's ``Server`` over a WIT ``net.server``."""

    def __init__(self, loop, server, factory):
        self._loop = loop
        self._server = server
        self._id = server.id()
        self._factory = factory
        self._serving = True
        self._sockets = (_ListenSocket(server),)
        self._forever = None
        self._waiters = []
        self._connections = 0
        self._closed = False

    def __repr__(self):
        return f"<netlet Server sockets={self._sockets!r}>"

    @property
    def sockets(self):
        return self._sockets if self._serving else ()

    def get_loop(self):
        return self._loop

    def is_serving(self):
        return self._serving

    async def start_serving(self):
        pass

    def close(self):
        if not self._serving:
            return
        self._serving = False
        try:
            self._server.close()
        except Err:
            pass
        if self._forever is not None and not self._forever.done():
            self._forever.cancel()
        self._wake_if_done()

    def close_clients(self):
        for transport in list(self._loop._sockets.values()):
            if transport._server is self:
                transport.close()

    def abort_clients(self):
        for transport in list(self._loop._sockets.values()):
            if transport._server is self:
                transport.abort()

    async def serve_forever(self):
        if self._forever is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if not self._serving:
            raise RuntimeError(f"server {self!r} is closed")
        self._forever = self._loop.create_future()
        try:
            await self._forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._forever = None

    async def wait_closed(self):
        if self._serving or self._connections:
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            await waiter

    def _attach_connection(self):
        self._connections += 1

    def _detach_connection(self):
        self._connections -= 1
        self._wake_if_done()

    def _wake_if_done(self):
        if self._serving or self._connections:
            return
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)


class _UdpTransport(asyncio.DatagramTransport):
    """A UDP socket: asyncio's ``DatagramTransport`` over a WIT ``dgram.socket``."""

    def __init__(self, loop, sock, protocol, remote):
        super().__init__()
        self._loop = loop
        self._sock = sock
        self._id = sock.id()
        self._protocol = protocol
        self._remote = remote
        self._closing = False
        self._closed = False

    def __repr__(self):
        return f"<netlet datagram transport {self.get_extra_info('sockname')}>"

    def get_extra_info(self, name, default=None):
        if name == "sockname":
            try:
                return _addr(self._sock.address())
            except Err:
                return default
        if name == "peername":
            return self._remote if self._remote is not None else default
        return super().get_extra_info(name, default)

    def is_closing(self):
        return self._closing

    def set_protocol(self, protocol):
        self._protocol = protocol

    def get_protocol(self):
        return self._protocol

    def get_write_buffer_size(self):
        return 0 if self._closed else self._sock.get_send_queue_size()

    def sendto(self, data, addr=None):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._closing:
            return
        if addr is not None and self._remote is not None and tuple(addr[:2]) != self._remote[:2]:
            raise ValueError(f"Invalid address: must be None or {self._remote}")
        try:
            if addr is None:
                if self._remote is None:
                    raise ValueError("Invalid address: must be a (host, port) pair")
                self._sock.send(bytes(data), 0, None)
            else:
                host, port = addr[0], addr[1]
                self._sock.send(bytes(data), port, host or None)
        except Err as err:
            self._loop.call_soon(self._protocol.error_received, _from_err(err))

    def close(self):
        if self._closing:
            return
        self._closing = True
        self._sock.close()

    def abort(self):
        self.close()

    def _on_close(self):
        if self._closed:
            return
        self._closed = True
        self._closing = True
        self._loop._udp.pop(self._id, None)
        self._loop.call_soon(self._protocol.connection_lost, None)


def _first_host(host):
    if host is None or host == "":
        return None
    if isinstance(host, str):
        return host
    hosts = list(host)
    return hosts[0] if hosts else None


class NetletEventLoop(asyncio.BaseEventLoop):
    """asyncio's loop, driven by the host's event batches and timers."""

    def __init__(self):
        # Read by is_running(), which BaseEventLoop's constructor calls.
        self._in_drive = False
        super().__init__()
        self._sockets = {}
        self._servers = {}
        self._udp = {}
        self._connecting = {}
        self._unclaimed = []
        self._wake_id = None
        self._wake_at = None
        self._net = {
            _nh.NetEvent_Connection: self._on_connection,
            _nh.NetEvent_Data: self._on_data,
            _nh.NetEvent_End: self._on_end,
            _nh.NetEvent_Drain: self._on_drain,
            _nh.NetEvent_Error: self._on_error,
            _nh.NetEvent_Close: self._on_close,
            _nh.NetEvent_Connect: self._on_connect,
            _nh.NetEvent_Listening: self._on_listening,
            _nh.NetEvent_ServerClose: self._on_server_close,
        }

    # -- driving --

    def _dispatch(self, ev):
        kind = type(ev)
        if kind is _h.Event_Net:
            handler = self._net.get(type(ev.value))
            if handler is not None:
                handler(ev.value.value)
        elif kind is _h.Event_Timer:
            if ev.value == self._wake_id:
                self._wake_id = None
                self._wake_at = None
        elif kind is _h.Event_Dgram:
            self._on_dgram(ev.value)

    def _drive(self):
        """Runs every callback that is ready or due, then sets the wake-up timer."""
        if self._ready or self._scheduled:
            prev = events._get_running_loop()
            events._set_running_loop(self)
            self._in_drive = True
            try:
                self._run_ready()
            finally:
                self._in_drive = False
                events._set_running_loop(prev)
        if not runtime.dead:
            self._arm()

    def _run_ready(self):
        ready = self._ready
        scheduled = self._scheduled
        while not runtime.dead:
            end = self.time() + self._clock_resolution
            while scheduled:
                handle = scheduled[0]
                if handle._cancelled:
                    heapq.heappop(scheduled)
                    handle._scheduled = False
                    self._timer_cancelled_count = max(0, self._timer_cancelled_count - 1)
                    continue
                if handle._when > end:
                    break
                heapq.heappop(scheduled)
                handle._scheduled = False
                ready.append(handle)
            if not ready:
                return
            for _ in range(len(ready)):
                handle = ready.popleft()
                if not handle._cancelled:
                    handle._run()
                    if runtime.dead:
                        return

    def _arm(self):
        scheduled = self._scheduled
        while scheduled and scheduled[0]._cancelled:
            handle = heapq.heappop(scheduled)
            handle._scheduled = False
            self._timer_cancelled_count = max(0, self._timer_cancelled_count - 1)
        if self._ready:
            when = self.time()
        elif scheduled:
            when = scheduled[0]._when
        else:
            return
        if self._wake_id is not None:
            if self._wake_at <= when:
                return
            _timers.clear_timeout(self._wake_id)
        ms = max(0, math.ceil((when - self.time()) * 1000))
        self._wake_id = _timers.set_timeout(ms)
        self._wake_at = when

    # -- what asyncio's loop does that cannot block here --

    def run_until_complete(self, future):
        if self._in_drive:
            raise RuntimeError("This event loop is already running")
        fut = asyncio.ensure_future(future, loop=self)
        self._drive()
        if runtime.dead:
            raise _Detach()
        if fut.done():
            return fut.result()
        fut.add_done_callback(_report_detached)
        raise _Detach()

    def run_forever(self):
        if self._in_drive:
            raise RuntimeError("This event loop is already running")
        self._drive()
        raise _Detach()

    def stop(self):
        pass

    def is_running(self):
        return self._in_drive or events._get_running_loop() is self

    def close(self):
        # The instance's one loop lives as long as the instance.
        pass

    def is_closed(self):
        return False

    def _write_to_self(self):
        pass

    def call_soon_threadsafe(self, callback, *args, context=None):
        return self.call_soon(callback, *args, context=context)

    def run_in_executor(self, executor, func, *args):
        # No threads in a component: run it now.
        fut = self.create_future()
        try:
            fut.set_result(func(*args))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut

    def default_exception_handler(self, context):
        message = context.get("message") or "Unhandled exception in event loop"
        exc = context.get("exception")
        if exc is not None and "never retrieved" not in message:
            runtime.fatal(exc)
            return
        runtime.log_line(f"{message}: {exc!r}" if exc is not None else message)

    def call_exception_handler(self, context):
        if self._exception_handler is None:
            self.default_exception_handler(context)
        else:
            try:
                self._exception_handler(self, context)
            except BaseException as exc:
                runtime.fatal(exc)

    # -- TCP --

    async def create_server(
        self,
        protocol_factory,
        host=None,
        port=None,
        *,
        family=0,
        flags=0,
        sock=None,
        backlog=100,
        ssl=None,
        reuse_address=None,
        reuse_port=None,
        keep_alive=None,
        ssl_handshake_timeout=None,
        ssl_shutdown_timeout=None,
        start_serving=True,
    ):
        if sock is not None:
            raise ValueError("netlet: sock= is not supported; name the port the operator gives")
        options = _net.ServerOptions(
            allow_half_open=True,
            pause_on_connect=False,
            no_delay=True,
            keep_alive=bool(keep_alive),
            keep_alive_initial_delay_ms=0,
        )
        try:
            server = _net.listen(port or 0, _first_host(host), options)
        except Err as err:
            where = f"{_first_host(host) or '*'}:{port or 0}"
            exc = _from_err(err)
            if err.value == _types.ErrorCode.ACCESS_DENIED:
                exc = PermissionError(
                    errno.EACCES,
                    f"netlet: no listener for port {port or 0} ({where}): pass "
                    f"--tcp ADDR={port or 0} (or --tcp HOST:{port or 0}) to netlet run",
                )
            raise exc from None
        wrapped = _Server(self, server, protocol_factory)
        self._servers[wrapped._id] = wrapped
        return wrapped

    async def create_connection(
        self,
        protocol_factory,
        host=None,
        port=None,
        *,
        ssl=None,
        family=0,
        proto=0,
        flags=0,
        sock=None,
        local_addr=None,
        server_hostname=None,
        ssl_handshake_timeout=None,
        ssl_shutdown_timeout=None,
        happy_eyeballs_delay=None,
        interleave=None,
        all_errors=False,
    ):
        if sock is not None:
            raise ValueError("netlet: sock= is not supported")
        if host is None or port is None:
            raise ValueError("host and port was not specified and no sock specified")
        fam = None
        if family == _socket.AF_INET:
            fam = _types.IpFamily.IPV4
        elif family == _socket.AF_INET6:
            fam = _types.IpFamily.IPV6
        options = _net.ConnectOptions(
            host=host,
            port=int(port),
            family=fam,
            local_address=local_addr[0] if local_addr else None,
            no_delay=True,
            keep_alive=False,
            keep_alive_initial_delay_ms=0,
            allow_half_open=True,
        )
        try:
            if ssl:
                alpn = []
                if hasattr(ssl, "_netlet_alpn"):
                    alpn = list(ssl._netlet_alpn)
                sock = _net.connect_tls(options, _net.TlsOptions(server_hostname, alpn))
            else:
                sock = _net.connect(options)
        except Err as err:
            exc = _from_err(err)
            if err.value == _types.ErrorCode.ACCESS_DENIED:
                exc = PermissionError(
                    errno.EACCES,
                    f"netlet: connecting to {host}:{port} is not allowed: pass "
                    f"--allow {host}:{port} to netlet run",
                )
            raise exc from None
        transport = _TcpTransport(self, sock, None)
        waiter = self.create_future()
        self._connecting[transport._id] = (transport, protocol_factory, waiter)
        self._sockets[transport._id] = transport
        return await waiter

    def _on_listening(self, server):
        if server.id() not in self._servers:
            # An operator's listener the program did not ask for: kept open, unused.
            self._unclaimed.append(server)

    def _on_connection(self, ev):
        server = self._servers.get(ev.server)
        sock = ev.socket
        if server is None or not server._serving:
            sock.destroy()
            return
        protocol = server._factory()
        transport = _TcpTransport(self, sock, protocol, server)
        server._attach_connection()
        self._sockets[transport._id] = transport
        self.call_soon(protocol.connection_made, transport)

    def _on_connect(self, sid):
        pending = self._connecting.pop(sid, None)
        if pending is None:
            return
        transport, factory, waiter = pending
        transport._names()
        protocol = factory()
        transport.set_protocol(protocol)
        self.call_soon(protocol.connection_made, transport)
        if not waiter.done():
            self.call_soon(_set_result_unless_done, waiter, (transport, protocol))

    def _on_data(self, ev):
        transport = self._sockets.get(ev.socket)
        if transport is not None and transport._protocol is not None:
            transport._on_data(ev.data)

    def _on_end(self, sid):
        transport = self._sockets.get(sid)
        if transport is not None and transport._protocol is not None:
            transport._on_end()

    def _on_drain(self, sid):
        transport = self._sockets.get(sid)
        if transport is not None:
            transport._maybe_resume()

    def _on_error(self, ev):
        exc = _os_error(ev.error.code, ev.error.message)
        pending = self._connecting.pop(ev.socket, None)
        if pending is not None:
            self._sockets.pop(ev.socket, None)
            pending[0]._closed = True
            waiter = pending[2]
            if not waiter.done():
                waiter.set_exception(exc)
            return
        transport = self._sockets.get(ev.socket)
        if transport is not None:
            transport._error = exc

    def _on_close(self, ev):
        pending = self._connecting.pop(ev.socket, None)
        if pending is not None:
            self._sockets.pop(ev.socket, None)
            waiter = pending[2]
            if not waiter.done():
                waiter.set_exception(ConnectionError("connection closed before it was made"))
            return
        transport = self._sockets.get(ev.socket)
        if transport is not None:
            transport._on_close(ev.had_error)

    def _on_server_close(self, sid):
        self._servers.pop(sid, None)

    # -- UDP --

    async def create_datagram_endpoint(
        self,
        protocol_factory,
        local_addr=None,
        remote_addr=None,
        *,
        family=0,
        proto=0,
        flags=0,
        reuse_address=None,
        reuse_port=None,
        allow_broadcast=None,
        sock=None,
    ):
        if sock is not None:
            raise ValueError("netlet: sock= is not supported; name the port the operator gives")
        hosts = [a[0] for a in (local_addr, remote_addr) if a is not None and a[0]]
        v6 = family == _socket.AF_INET6 or any(":" in h for h in hosts)
        kind = _dgram.SocketType.UDP6 if v6 else _dgram.SocketType.UDP4
        try:
            sock = _dgram.create_socket(kind, _dgram.SocketOptions(bool(reuse_port), False, None, None))
            if local_addr is not None:
                sock.bind(int(local_addr[1]), local_addr[0] or None)
            if allow_broadcast:
                sock.set_broadcast(True)
            remote = None
            if remote_addr is not None:
                sock.connect(int(remote_addr[1]), remote_addr[0] or None)
                remote = (remote_addr[0], int(remote_addr[1]))
        except Err as err:
            exc = _from_err(err)
            if err.value == _types.ErrorCode.ACCESS_DENIED and local_addr is not None:
                exc = PermissionError(
                    errno.EACCES,
                    f"netlet: no UDP socket for port {local_addr[1]}: pass "
                    f"--udp ADDR={local_addr[1]} (or --udp HOST:{local_addr[1]}) to netlet run",
                )
            raise exc from None
        protocol = protocol_factory()
        transport = _UdpTransport(self, sock, protocol, remote)
        self._udp[transport._id] = transport
        waiter = self.create_future()
        self.call_soon(protocol.connection_made, transport)
        self.call_soon(_set_result_unless_done, waiter, None)
        await waiter
        return transport, protocol

    def _on_dgram(self, ev):
        kind = type(ev)
        if kind is _dh.DgramEvent_Message:
            m = ev.value
            transport = self._udp.get(m.socket)
            if transport is not None and not transport._closing:
                transport._protocol.datagram_received(m.data, (m.rinfo.address, m.rinfo.port))
        elif kind is _dh.DgramEvent_Error:
            transport = self._udp.get(ev.value.socket)
            if transport is not None:
                err = ev.value.error
                transport._protocol.error_received(_os_error(err.code, err.message))
        elif kind is _dh.DgramEvent_Close:
            transport = self._udp.get(ev.value)
            if transport is not None:
                transport._on_close()
        elif kind is _dh.DgramEvent_Listening:
            if ev.value.handle is not None:
                self._unclaimed.append(ev.value.handle)


def _set_result_unless_done(fut, result):
    if not fut.done():
        fut.set_result(result)


def _report_detached(fut):
    """A future the top level waited on ended after init: its exception is uncaught."""
    if fut.cancelled():
        return
    exc = fut.exception()
    if exc is not None and not isinstance(exc, SystemExit):
        runtime.fatal(exc)
