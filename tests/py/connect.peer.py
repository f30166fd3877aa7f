import socket

s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
# The port after ours is closed (the program's refused connect): find one that is.
port = s.getsockname()[1]
print("ready", port, flush=True)
for _ in range(2):
    c, _ = s.accept()
    f = c.makefile("rb")
    line = f.readline()
    print("peer got", line, flush=True)
    c.sendall(b"pong " + line)
    print("peer then", f.read(), flush=True)
    c.close()
print("done", flush=True)
