import hashlib
import socket
import sys
import time

port = int(sys.argv[1])
c = socket.socket()
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
c.connect(("127.0.0.1", port))
# A slow reader: nothing for a while, then small reads with pauses.
time.sleep(0.5)
h = hashlib.sha256()
total = 0
reads = 0
while True:
    d = c.recv(16384)
    if not d:
        break
    h.update(d)
    total += len(d)
    reads += 1
    if reads % 64 == 0:
        time.sleep(0.005)
expected = hashlib.sha256()
pattern = bytes(i % 251 for i in range(251 * 300))
sent = 0
while sent < 8 * 1024 * 1024:
    n = min(65536, 8 * 1024 * 1024 - sent)
    start = sent % 251
    expected.update(pattern[start:start + n])
    sent += n
print("received", total, "intact", h.digest() == expected.digest())
c.sendall(b"thanks")
time.sleep(0.1)
c.close()
