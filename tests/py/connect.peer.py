import socket
import threading

s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
port = s.getsockname()[1]
# A UDP echo on the same port number: the program's outbound datagram endpoint.
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", port))


def udp_echo():
    data, addr = u.recvfrom(1000)
    print("peer got datagram", data, flush=True)
    u.sendto(b"pong " + data, addr)


t = threading.Thread(target=udp_echo)
t.start()
print("ready", port, flush=True)
for _ in range(2):
    c, _ = s.accept()
    f = c.makefile("rb")
    line = f.readline()
    print("peer got", line, flush=True)
    c.sendall(b"pong " + line)
    print("peer then", f.read(), flush=True)
    c.close()
t.join()
print("done", flush=True)
