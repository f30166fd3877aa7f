"""The seeds' pipe echo on 1337 (socket.pipe(socket)), as an asyncio protocol."""

import asyncio


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        transport.write(b"Echo server\r\n")

    def data_received(self, data):
        self.transport.write(data)

    # pipe() ends the writer when the reader ends.
    def eof_received(self):
        return False

    # pipe() stops reading while the writer is full.
    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 1337)
    await server.serve_forever()


asyncio.run(main())
