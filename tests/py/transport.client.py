import socket
import sys
import time

c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
got = b""
while not got.endswith(b"three\n"):
    got += c.recv(100)
print("writelines:", got)
c.sendall(b"pause\n")
got = b""
while not got.endswith(b"paused\n"):
    got += c.recv(100)
print("then:", got)
# Sent while the server is paused: it must arrive, after its resume_reading.
c.sendall(b"these ")
time.sleep(0.05)
c.sendall(b"wait end\n")
got = b""
while True:
    d = c.recv(100)
    if not d:
        break
    got += d
print("last:", got)
c.close()
