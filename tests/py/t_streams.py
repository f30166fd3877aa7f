"""asyncio streams (start_server, StreamReader / StreamWriter) on top of the protocols."""

import asyncio

done = None


async def shout(reader, writer):
    print("peer", writer.get_extra_info("peername")[0], flush=True)
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(line.upper())
        await writer.drain()
    print("reader at eof", reader.at_eof(), flush=True)
    writer.close()
    await writer.wait_closed()
    print("closed", flush=True)
    done.set_result(None)


async def main():
    global done
    done = asyncio.get_running_loop().create_future()
    server = await asyncio.start_server(shout, "127.0.0.1", 0)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await done
    print("done", flush=True)
