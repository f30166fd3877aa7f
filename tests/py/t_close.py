"""Close order: close() after a write, write_eof() then reading on, abort()."""

import asyncio

done = None
lost = 0


class Closer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        transport.write(b"hi\n")

    def data_received(self, data):
        cmd = data.decode().strip()
        print("got", cmd, flush=True)
        t = self.transport
        if cmd == "close":
            t.write(b"bye\n")
            t.close()
            print("closing", t.is_closing(), flush=True)
            t.write(b"after close is dropped\n")
            t.close()
        elif cmd == "eof":
            t.write(b"last words\n")
            t.write_eof()
            try:
                t.write(b"x")
            except RuntimeError as exc:
                print("write after write_eof:", exc, flush=True)
        elif cmd == "more":
            print("still reading after write_eof", flush=True)
        elif cmd == "abort":
            t.abort()
            print("aborted, closing", t.is_closing(), flush=True)

    def eof_received(self):
        print("eof_received", flush=True)
        return False

    def connection_lost(self, exc):
        global lost
        print("connection_lost", exc, flush=True)
        lost += 1
        if lost == 3:
            done.set_result(None)


async def main():
    global done
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    server = await loop.create_server(Closer, "127.0.0.1", 0)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await done
    print("done", flush=True)
