"""The benchmark's Python echo: one asyncio protocol class, run three ways.

    python3 bench/py/echo.py TCP UDP            # CPython's asyncio
    python3 bench/py/echo.py TCP UDP uvloop     # the same classes on uvloop
    netlet build bench/py/echo.py && \
        netlet run bench/py/echo.wasm --tcp 127.0.0.1:TCP --udp 127.0.0.1:UDP -- TCP UDP

TCP and UDP are ports (0: any); it prints "listening TCP-PORT" and "udp UDP-PORT".

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


async def main(ports):
    tcp = int(ports[0]) if ports else 0
    udp = int(ports[1]) if len(ports) > 1 else 0
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", tcp)
    transport, _ = await loop.create_datagram_endpoint(EchoDatagram, local_addr=("127.0.0.1", udp))
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    print("udp", transport.get_extra_info("sockname")[1], flush=True)
    await server.serve_forever()


args = sys.argv[1:]
if "uvloop" in args:
    args.remove("uvloop")
    import uvloop

    uvloop.install()
asyncio.run(main(args))
