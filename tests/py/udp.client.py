import socket
import sys

port = int(sys.argv[1])
peers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
for p in peers:
    p.settimeout(10)
for round in range(2):
    for i, p in enumerate(peers):
        p.sendto(f"peer {i} round {round}".encode(), ("127.0.0.1", port))
        data, addr = p.recvfrom(1000)
        print(i, data, addr[1] == port)
