"""thaw_py: a python3 guest for thaw. It builds objects, freezes itself through sys_checkpoint (ctypes),
and continues its computation after a thaw with its objects intact.

usage: python3 thaw_py.py IMAGE

Prints "r=<result>", then (after the freeze itself, r == 0) kills itself with SIGKILL; after a thaw
(r == 1) it finishes the computation and prints "objects=<ok> result=<n>"; exit 0 if all is well.
"""
import hashlib
import os
import sys

sys.dont_write_bytecode = True  # guest.py's directory is the repository's: no __pycache__ there.
import guest  # noqa: E402

data = {i: str(i) * 3 for i in range(50000)}
words = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(5000)]
partial = sum(i * i for i in range(100000))

r = guest.freeze_and_die(sys.argv[1])

objects = (len(data) == 50000 and data[4242] == "424242424242"
           and words[17] == hashlib.sha256(b"17").hexdigest())
result = partial + sum(i * i for i in range(100000, 200000))
print("objects=%s result=%d" % (objects, result), flush=True)
sys.exit(0 if r == 1 and objects and result == sum(i * i for i in range(200000)) else 1)
