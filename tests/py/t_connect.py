"""Outbound: create_connection and open_connection to a peer (netlet: under --allow)."""

import asyncio
import errno


class Client(asyncio.Protocol):
    def __init__(self, done):
        self.done = done

    def connection_made(self, transport):
        print("connected", transport.get_extra_info("peername")[0], flush=True)
        transport.write(b"ping\n")
        self.transport = transport

    def data_received(self, data):
        print("got", data, flush=True)
        self.transport.close()

    def connection_lost(self, exc):
        print("connection_lost", exc, flush=True)
        self.done.set_result(None)


async def main(port):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    transport, protocol = await loop.create_connection(lambda: Client(done), "127.0.0.1", int(port))
    print("returned", type(protocol).__name__, flush=True)
    await done
    reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
    writer.write(b"stream\n")
    print("stream got", await reader.readline(), flush=True)
    writer.close()
    await writer.wait_closed()
    try:
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", int(port) + 1)
    except OSError as exc:
        print("refused", type(exc).__name__, exc.errno == errno.ECONNREFUSED, flush=True)
    got = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: Datagrams(got), remote_addr=("127.0.0.1", int(port))
    )
    print("datagram peer", transport.get_extra_info("peername")[1] == int(port), flush=True)
    transport.sendto(b"udp ping")
    print("datagram back", await got, flush=True)
    transport.close()
    print("done", flush=True)


class Datagrams(asyncio.DatagramProtocol):
    def __init__(self, got):
        self.got = got

    def datagram_received(self, data, addr):
        self.got.set_result(data)
