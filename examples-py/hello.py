"""The seeds' greeting server on 8124, as an asyncio protocol."""

import asyncio


class Greeting(asyncio.Protocol):
    def connection_made(self, transport):
        # 新的连接
        self.transport = transport
        transport.write("欢迎光临《深入浅出Node.js》示例：\n".encode())

    def data_received(self, data):
        self.transport.write("你好".encode())

    def eof_received(self):
        print("连接断开", flush=True)


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Greeting, None, 8124)
    print("server bound", flush=True)
    await server.serve_forever()


asyncio.run(main())
