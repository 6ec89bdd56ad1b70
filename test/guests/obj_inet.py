"""obj_inet.py: a python3 server's sockets through a freeze and a thaw.

usage: python3 obj_inet.py IMAGE [keep]

It listens on 127.0.0.1:8765, holds a connected TCP client/server pair with a line unread on the
server side and a unix socketpair with a line queued, freezes itself through sys_checkpoint
(ctypes), prints "r=<result>", and after the freeze itself (r == 0) kills itself with SIGKILL.
After a thaw (r == 1) a new client connects to the listener and they exchange a line; the old TCP
pair and the unix socketpair still have their unread lines and still talk. Prints
"listener=<ok> pair=<ok> unixpair=<ok>"; exit 0 if all are True. With "keep", the frozen process
stays alive (sleeping) instead of killing itself, holding its port: a thaw in the same sandbox
must then fail.
"""
import os
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True  # guest.py's directory is the repository's: no __pycache__ there.
import guest  # noqa: E402

srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 8765))
srv.listen(8)
client = socket.create_connection(("127.0.0.1", 8765))
conn, _ = srv.accept()
client.sendall(b"hello before\n")
ua, ub = socket.socketpair()
ua.sendall(b"unix before\n")

r = guest.freeze_into(sys.argv[1])
if r == 0 and sys.argv[2:] == ["keep"]:
    time.sleep(600)
if r == 0:
    os.kill(os.getpid(), signal.SIGKILL)

srv.settimeout(10)
new = socket.create_connection(("127.0.0.1", 8765), timeout=10)
peer, _ = srv.accept()
new.sendall(b"hello after\n")
listener = peer.makefile("rb").readline() == b"hello after\n"

conn.settimeout(10)
client.settimeout(10)
old = conn.recv(100) == b"hello before\n"
conn.sendall(b"still there\n")
pair = old and client.recv(100) == b"still there\n"

ua.settimeout(10)
ub.settimeout(10)
unix = ub.recv(100) == b"unix before\n"
ub.sendall(b"unix after\n")
unix = unix and ua.recv(100) == b"unix after\n"
print("listener=%s pair=%s unixpair=%s" % (listener, pair, unix), flush=True)
sys.exit(0 if r == 1 and listener and pair and unix else 1)
