"""The seeds' UDP server on 41234, as an asyncio datagram protocol."""

import asyncio


class Server(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        address = transport.get_extra_info("sockname")
        print(f"server listening {address[0]}:{address[1]}", flush=True)

    def datagram_received(self, msg, rinfo):
        print(f"server got: {msg.decode()} from {rinfo[0]}:{rinfo[1]}", flush=True)


async def main():
    loop = asyncio.get_running_loop()
    # 绑定端口号,创建服务端
    await loop.create_datagram_endpoint(Server, local_addr=("0.0.0.0", 41234))
    await asyncio.Event().wait()


asyncio.run(main())
