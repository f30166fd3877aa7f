"""Timers: call_soon, call_later, call_at, cancel, asyncio.sleep, wait_for timeouts."""

import asyncio

done = None


class Timers(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        loop = asyncio.get_running_loop()
        self.start = loop.time()
        self.seen = []
        loop.call_later(0.9, self.say, "later 900", 0.9)
        loop.call_later(0.1, self.say, "later 100", 0.1)
        cancelled = loop.call_later(0.2, self.say, "cancelled", 0.2)
        cancelled.cancel()
        print("cancelled", cancelled.cancelled(), flush=True)
        loop.call_soon(self.say, "soon", 0)
        loop.call_at(self.start + 0.45, self.say, "at 450", 0.45)
        loop.create_task(self.task())

    def say(self, what, due):
        loop = asyncio.get_running_loop()
        elapsed = loop.time() - self.start
        # Not before it was due (asyncio's clock resolution aside). The order they come
        # in is the clock's and the machine's load's: the log is sorted.
        self.seen.append(f"{what} not early {elapsed >= due - 0.002}")
        self.transport.write(f"{what}\n".encode())
        if len(self.seen) == 6:
            self.transport.close()

    async def task(self):
        await asyncio.sleep(0.25)
        self.say("slept 250", 0.25)
        try:
            await asyncio.wait_for(asyncio.sleep(10), 0.4)
        except asyncio.TimeoutError:
            self.say("timed out at 650", 0.65)

    def connection_lost(self, exc):
        for line in sorted(self.seen):
            print(line, flush=True)
        print("connection_lost", exc, flush=True)
        done.set_result(None)


async def main():
    global done
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    server = await loop.create_server(Timers, "127.0.0.1", 0)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await done
    await asyncio.sleep(0.01)
    print("done", flush=True)
