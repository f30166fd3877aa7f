"""Echo: bytes back as they come, the peer's EOF, then close; two connections."""

import asyncio

done = None
lost = 0


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.total = 0
        peer = transport.get_extra_info("peername")
        print("connection_made", peer[0], type(peer[1]).__name__, flush=True)
        print("reading", transport.is_reading(), "closing", transport.is_closing(), flush=True)
        print("can_write_eof", transport.can_write_eof(), flush=True)

    def data_received(self, data):
        self.total += len(data)
        self.transport.write(data)

    def eof_received(self):
        print("eof_received after", self.total, "bytes", flush=True)

    def connection_lost(self, exc):
        global lost
        print("connection_lost", exc, "closing", self.transport.is_closing(), flush=True)
        lost += 1
        if lost == 2:
            done.set_result(None)


async def main():
    global done
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print("ready", port, "serving", server.is_serving(), flush=True)
    await done
    server.close()
    await server.wait_closed()
    print("serving", server.is_serving(), flush=True)
    print("done", flush=True)
