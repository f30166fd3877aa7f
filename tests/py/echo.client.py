import socket
import sys

port = int(sys.argv[1])
payload = bytes((i * 7) % 256 for i in range(300_000))
c = socket.create_connection(("127.0.0.1", port))
c.sendall(payload)
c.shutdown(socket.SHUT_WR)
got = bytearray()
while True:
    d = c.recv(65536)
    if not d:
        break
    got += d
print("first:", len(got), got == payload)
c.close()

c = socket.create_connection(("127.0.0.1", port))
c.sendall(b"hello")
got = b""
while len(got) < 5:
    got += c.recv(100)
print("second:", got)
c.shutdown(socket.SHUT_WR)
print("then:", c.recv(100))
c.close()
