"""Exceptions escaping handler code. `errors start` raises at start half of the time."""

import asyncio
import random
import sys


def fail(where):
    raise ValueError(f"boom in {where}")


class Errors(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        transport.write(b"hello\n")

    def data_received(self, data):
        cmd = data.decode().strip()
        loop = asyncio.get_running_loop()
        if cmd == "data":
            fail("data")
        if cmd == "timer":
            loop.call_later(0.01, fail, "timer")
        if cmd == "task":
            loop.create_task(self.task())
        self.transport.write(f"ok {cmd}\n".encode())

    async def task(self):
        await asyncio.sleep(0.01)
        fail("task")


async def main(mode="serve"):
    if mode == "start" and random.random() < 0.5:
        fail("start")
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Errors, "127.0.0.1", 0)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
