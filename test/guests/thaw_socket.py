"""thaw_socket: thaws an image received over a socket, as a migration would.

usage: python3 thaw_socket.py IMAGE RUNSC_CKPT

A child process sends IMAGE over one end of a UNIX socketpair; the parent makes the other end its
stdin and becomes `RUNSC_CKPT checkpt -r -`, which reads the image from the socket (a non-seekable
fd) and thaws it in place.
"""
import os
import socket
import sys

image, binary = sys.argv[1], sys.argv[2]
a, b = socket.socketpair()
if os.fork() == 0:
    a.close()
    with open(image, "rb") as f:
        while True:
            chunk = f.read(1 << 16)
            if not chunk:
                break
            b.sendall(chunk)
    b.close()
    os._exit(0)
b.close()
os.dup2(a.fileno(), 0)
os.execv(binary, [binary, "checkpt", "-r", "-"])
