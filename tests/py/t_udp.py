"""UDP: an echo endpoint several peers write to."""

import asyncio

done = None


class Echo(asyncio.DatagramProtocol):
    def __init__(self):
        self.count = 0

    def connection_made(self, transport):
        self.transport = transport
        name = transport.get_extra_info("sockname")
        print("ready", name[1], name[0], flush=True)

    def datagram_received(self, data, addr):
        self.count += 1
        print("datagram", data, addr[0], type(addr[1]).__name__, flush=True)
        self.transport.sendto(b"echo " + data, addr)
        if self.count == 6:
            self.transport.close()

    def error_received(self, exc):
        print("error_received", exc, flush=True)

    def connection_lost(self, exc):
        print("connection_lost", exc, flush=True)
        done.set_result(None)


async def main():
    global done
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    transport, protocol = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    print("closing", transport.is_closing(), flush=True)
    await done
    print("done", flush=True)
