"""Flow control: 8 MiB written as fast as pause_writing / resume_writing let it."""

import asyncio

TOTAL = 8 * 1024 * 1024
CHUNK = 64 * 1024
PATTERN = bytes(i % 251 for i in range(251 * 300))
done = None


class Flood(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.sent = 0
        self.paused = False
        self.pauses = 0
        self.over_high = True
        transport.set_write_buffer_limits(high=256 * 1024)
        print("limits", transport.get_write_buffer_limits(), flush=True)
        self.pump()

    def pump(self):
        while not self.paused and self.sent < TOTAL:
            start = self.sent % 251
            n = min(CHUNK, TOTAL - self.sent)
            self.transport.write(PATTERN[start:start + n])
            self.sent += n
        if self.sent >= TOTAL and not self.paused:
            print("wrote", self.sent, "paused at least once", self.pauses > 0,
                  "buffer above high when paused", self.over_high, flush=True)
            self.transport.write_eof()

    def pause_writing(self):
        self.paused = True
        self.pauses += 1
        if self.transport.get_write_buffer_size() <= 256 * 1024:
            self.over_high = False

    def resume_writing(self):
        self.paused = False
        self.pump()

    def data_received(self, data):
        print("client says", data, flush=True)

    def connection_lost(self, exc):
        print("connection_lost", exc, flush=True)
        done.set_result(None)


async def main():
    global done
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    server = await loop.create_server(Flood, "127.0.0.1", 0)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await done
    print("done", flush=True)
