"""The transport's other methods: writelines, pause_reading/resume_reading (no
data_received while paused, what arrived meanwhile delivered after), the write buffer's
size and limits, get_extra_info for the addresses and a key it does not know, call_soon
order and loop.time()."""

import asyncio

done = None


class Transport(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.paused = False
        self.got = b""
        loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        print("peername", peer[0], type(peer[1]).__name__, flush=True)
        print("sockname", sock[0], type(sock[1]).__name__, flush=True)
        print("unknown key", transport.get_extra_info("no-such-key", "default"), flush=True)
        print("buffer size", transport.get_write_buffer_size(), flush=True)
        transport.set_write_buffer_limits(high=1000, low=100)
        print("limits", transport.get_write_buffer_limits(), flush=True)
        order = []
        for i in range(3):
            loop.call_soon(order.append, i)
        self.timers = []
        loop.call_soon(lambda: self.timers.append(f"call_soon order {order}"))
        start = loop.time()
        loop.call_later(0.05, lambda: self.timers.append(f"call_later waited {loop.time() - start >= 0.04}"))
        transport.writelines([b"one ", bytearray(b"two "), memoryview(b"three\n")])

    def data_received(self, data):
        if self.paused:
            print("data while paused!", flush=True)
        self.got += data
        if b"pause\n" in self.got and not self.paused and not hasattr(self, "resumed"):
            self.got = b""
            self.paused = True
            self.transport.pause_reading()
            print("paused, reading", self.transport.is_reading(), flush=True)
            self.transport.write(b"paused\n")
            asyncio.get_running_loop().call_later(0.3, self.resume)
        elif self.got.endswith(b"end\n"):
            print("after resume got", self.got, flush=True)
            self.transport.write(b"got " + self.got)
            self.transport.close()

    def resume(self):
        self.paused = False
        self.resumed = True
        self.transport.resume_reading()
        print("resumed, reading", self.transport.is_reading(), flush=True)

    def connection_lost(self, exc):
        print("timers", self.timers, flush=True)
        print("connection_lost", exc, flush=True)
        done.set_result(None)


async def main():
    global done
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    server = await loop.create_server(Transport, "127.0.0.1", 0)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await done
    server.close()
    await server.wait_closed()
    print("done", flush=True)
