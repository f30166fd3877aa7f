import socket
import sys
import time

port = int(sys.argv[1])


def read_all(c):
    got = b""
    try:
        while True:
            d = c.recv(100)
            if not d:
                return got, "eof"
            got += d
    except ConnectionResetError:
        return got, "reset"


c = socket.create_connection(("127.0.0.1", port))
print(c.recv(3))
c.sendall(b"close")
print("close:", read_all(c))
c.close()

c = socket.create_connection(("127.0.0.1", port))
print(c.recv(3))
c.sendall(b"eof")
print("eof:", read_all(c))
time.sleep(0.1)
c.sendall(b"more")
time.sleep(0.1)
c.shutdown(socket.SHUT_WR)
print("after:", read_all(c))
c.close()

c = socket.create_connection(("127.0.0.1", port))
print(c.recv(3))
c.sendall(b"abort")
got, how = read_all(c)
print("abort:", got, "closed")
c.close()
