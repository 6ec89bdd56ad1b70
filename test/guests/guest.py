"""guest.py: what the Python test guests share, as guest.h does for the C guests: the freeze step.

A guest imports it after `sys.dont_write_bytecode = True` (its directory is the repository's
test/guests, which a sandbox may write through to: no __pycache__ there).
"""
import ctypes
import os
import signal

# The guest ABI of include/ckpt.h (pkg/ckptabi's tests check these two against the code).
SYS_CHECKPOINT = 1000
CKPT_FREEZE = 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def freeze_into(image):
    """Freezes this process into a new image file at path image (mode 0600), prints
    "r=<result> errno=<n>" and returns the result: 0 right after the freeze, 1 in a thawed
    process."""
    fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    r = _libc.syscall(SYS_CHECKPOINT, ctypes.c_int(CKPT_FREEZE), ctypes.c_int(fd), ctypes.c_int(-1),
                      ctypes.c_int(0))
    print("r=%d errno=%d" % (r, ctypes.get_errno() if r < 0 else 0), flush=True)
    os.close(fd)
    return r


def freeze_and_die(image):
    """freeze_into, then SIGKILL right after the freeze itself, as if the process died after its
    checkpoint; in a thawed process it returns 1."""
    r = freeze_into(image)
    if r == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return r
