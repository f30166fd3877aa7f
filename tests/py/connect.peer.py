import socket
import threading

s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
port = s.getsockname()[1]
# A UDP echo on the same port number: the program's outbound datagram endpoint.
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", port))


udp_seen = []


def udp_echo():
    data, addr = u.recvfrom(1000)
    udp_seen.append(data)
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
# After the TCP lines: when the datagram came beside them is the scheduler's business.
print("peer got datagram", udp_seen[0], flush=True)
print("done", flush=True)
