import socket
import sys

c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
got = b""
while True:
    d = c.recv(1000)
    if not d:
        break
    got += d
for line in sorted(got.decode().splitlines()):
    print(line)
