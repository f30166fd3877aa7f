"""Timers: call_soon, call_later, call_at, cancel, asyncio.sleep, wait_for timeouts."""

import asyncio

done = None


class Timers(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        loop = asyncio.get_running_loop()
        self.start = loop.time()
        loop.call_later(0.4, self.say, "later 400")
        loop.call_later(0.05, self.say, "later 50")
        cancelled = loop.call_later(0.1, self.say, "cancelled")
        cancelled.cancel()
        print("cancelled", cancelled.cancelled(), flush=True)
        loop.call_soon(self.say, "soon")
        loop.call_at(self.start + 0.15, self.say, "at 150")
        loop.create_task(self.task())

    def say(self, what):
        loop = asyncio.get_running_loop()
        elapsed = loop.time() - self.start
        print(what, "on time", elapsed >= 0.0, flush=True)
        self.transport.write(f"{what}\n".encode())
        if what == "later 400":
            self.transport.close()

    async def task(self):
        await asyncio.sleep(0.1)
        self.say("slept 100")
        try:
            await asyncio.wait_for(asyncio.sleep(10), 0.1)
        except asyncio.TimeoutError:
            self.say("timed out at 200")

    def connection_lost(self, exc):
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
