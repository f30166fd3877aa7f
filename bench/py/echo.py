"""The benchmark's Python echo: one asyncio protocol class, run three ways.

    python3 bench/py/echo.py PORT            # CPython's asyncio
    python3 bench/py/echo.py PORT uvloop     # the same class on uvloop
    netlet build bench/py/echo.py && netlet run bench/py/echo.wasm --tcp 127.0.0.1:PORT -- PORT

Pipe semantics, as the other echo servers of the benchmark: no banner, no logging; the
writer's pressure pauses the reader.
"""

import asyncio
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()


class EchoDatagram(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port)
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if len(sys.argv) > 2 and sys.argv[2] == "uvloop":
    import uvloop

    uvloop.install()
asyncio.run(main())
