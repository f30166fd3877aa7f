import socket
import sys

c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = c.makefile("rwb")
for word in ["one", "two", "three"]:
    f.write(word.encode() + b"\n")
    f.flush()
    print(f.readline())
c.shutdown(socket.SHUT_WR)
print("end:", f.read())
