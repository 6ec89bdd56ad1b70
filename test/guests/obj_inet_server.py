"""obj_inet_server.py: a python3 server blocked in accept(), for a freeze by another process.

usage: python3 obj_inet_server.py READY_FILE

Listens on 127.0.0.1:8766, creates READY_FILE, and blocks in accept(). Frozen there by
`checkpt -c PID` and thawed elsewhere, its accept() restarts on the rebuilt listener: the first
client gets "alive", and the server prints "served" and exits 0.
"""
import socket
import sys

srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 8766))
srv.listen(4)
open(sys.argv[1], "w").close()
conn, _ = srv.accept()
conn.sendall(b"alive\n")
conn.close()
print("served", flush=True)
