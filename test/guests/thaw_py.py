"""thaw_py: a python3 guest for thaw. It builds objects, freezes itself through sys_checkpoint (ctypes),
and continues its computation after a thaw with its objects intact.

usage: python3 thaw_py.py IMAGE

Prints "r=<result>", then (after the freeze itself, r == 0) kills itself with SIGKILL; after a thaw
(r == 1) it finishes the computation and prints "objects=<ok> result=<n>"; exit 0 if all is well.
"""
import ctypes
import hashlib
import os
import signal
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

data = {i: str(i) * 3 for i in range(50000)}
words = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(5000)]
partial = sum(i * i for i in range(100000))

fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
r = libc.syscall(1000, ctypes.c_int(1), ctypes.c_int(fd), ctypes.c_int(-1), ctypes.c_int(0))
print("r=%d errno=%d" % (r, ctypes.get_errno() if r < 0 else 0), flush=True)
os.close(fd)
if r == 0:
    os.kill(os.getpid(), signal.SIGKILL)

objects = (len(data) == 50000 and data[4242] == "424242424242"
           and words[17] == hashlib.sha256(b"17").hexdigest())
result = partial + sum(i * i for i in range(100000, 200000))
print("objects=%s result=%d" % (objects, result), flush=True)
sys.exit(0 if r == 1 and objects and result == sum(i * i for i in range(200000)) else 1)
