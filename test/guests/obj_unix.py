"""obj_unix.py: a python3 guest with AF_UNIX sockets through a freeze and a thaw (docs/sockets.md).

usage: python3 obj_unix.py IMAGE TAG [IMAGE2]

Before the freeze: a listening stream socket on an abstract name and one on /tmp/obj_unix_py_TAG,
a connected stream socketpair with data queued both ways, a seqpacket socketpair with two messages
queued. Prints "r=<result>", then (after the freeze itself, r == 0) kills itself with SIGKILL. After
a thaw it checks that new clients can connect to both listeners and exchange data with the
accepted sockets, that the pairs still hold their queued data (message boundaries kept) and still
exchange data, and prints key=value lines (True = as expected) and "all=True"; exit 0 if all are.
With IMAGE2 the thawed program then queues new data and freezes again (a second generation: the
sockets a thaw rebuilt are themselves captured) and kills itself; thawed from IMAGE2 it checks the
new data and the listeners again and prints "gen2_all=True".
"""
import os
import socket
import sys

sys.dont_write_bytecode = True  # guest.py's directory is the repository's: no __pycache__ there.
import guest  # noqa: E402

tag = sys.argv[2]
abstract = "\0obj_unix_py_" + tag
path = "/tmp/obj_unix_py_" + tag
if os.path.exists(path):
    os.unlink(path)

lst_abs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
lst_abs.bind(abstract)
lst_abs.listen(8)
lst_path = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
lst_path.bind(path)
lst_path.listen(8)
a, b = socket.socketpair()
a.sendall(b"queued for b")
b.sendall(b"queued for a")
sa, sb = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
sa.send(b"first")
sa.send(b"second message")



r = guest.freeze_and_die(sys.argv[1])

checks = {}


def serve(lst, addr):
    """A new client connects to lst at addr and talks to the accepted socket both ways."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(addr)
    s, _ = lst.accept()
    c.sendall(b"hello server")
    got = s.recv(64)
    s.sendall(b"hello client")
    back = c.recv(64)
    c.close()
    s.close()
    return got == b"hello server" and back == b"hello client"


checks["listen_abstract"] = lst_abs.getsockname() == abstract.encode() and serve(lst_abs, abstract)
checks["listen_path"] = lst_path.getsockname() == path and os.path.exists(path) and serve(lst_path, path)
b.setblocking(False)
a.setblocking(False)
checks["pair_queued"] = b.recv(64) == b"queued for b" and a.recv(64) == b"queued for a"
a.sendall(b"after thaw")
checks["pair_exchange"] = b.recv(64) == b"after thaw" and a.type == socket.SOCK_STREAM
checks["seqpacket_boundaries"] = sb.recv(64) == b"first" and sb.recv(64) == b"second message"
sb.send(b"reply")
checks["seqpacket_exchange"] = sa.recv(64) == b"reply" and sa.type == socket.SOCK_SEQPACKET
for k, v in checks.items():
    print("%s=%s" % (k, v))
ok = r == 1 and all(checks.values())
print("all=%s" % ok, flush=True)
if ok and len(sys.argv) > 3:
    a.setblocking(True)
    a.sendall(b"gen2 for b")
    sa.send(b"g2")
    r2 = guest.freeze_and_die(sys.argv[3])
    ok = (r2 == 1 and b.recv(64) == b"gen2 for b" and sb.recv(64) == b"g2"
          and serve(lst_abs, abstract) and serve(lst_path, path))
    print("gen2_all=%s" % ok, flush=True)
sys.exit(0 if ok else 1)
