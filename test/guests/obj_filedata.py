"""obj_filedata.py: a python3 guest holding what Python programs use for scratch data — a
tempfile.TemporaryFile (an unlinked file in the temp directory), an os.memfd_create file, and an
mmap.mmap(-1, n) (MAP_SHARED anonymous memory) — through a freeze and a thaw.

usage: python3 obj_filedata.py IMAGE TMPDIR

Prints "r=<result>"; after the freeze itself (r == 0) it kills itself with SIGKILL; after a thaw it
checks contents and offsets, that the mmap is still shared with a child forked now, and prints
"tmp=.. memfd=.. mmap=.. shared=.." (True = as expected); exit 0 if all are.
"""
import mmap
import os
import sys
import tempfile

sys.dont_write_bytecode = True  # guest.py's directory is the repository's: no __pycache__ there.
import guest  # noqa: E402

tmp = tempfile.TemporaryFile(dir=sys.argv[2])
tmp.write(b"temporary " * 1000)
tmp.seek(42)
mfd = os.memfd_create("pymemfd")
os.write(mfd, b"python memfd")
shared = mmap.mmap(-1, 8192)
shared[:6] = b"mmap!!"

r = guest.freeze_and_die(sys.argv[1])

ok_tmp = tmp.tell() == 42 and tmp.read(8) == b"mporary "
tmp.seek(0)
ok_tmp = ok_tmp and tmp.read() == b"temporary " * 1000
ok_memfd = os.pread(mfd, 64, 0) == b"python memfd" and os.lseek(mfd, 0, os.SEEK_CUR) == 12
ok_mmap = shared[:6] == b"mmap!!"
pid = os.fork()
if pid == 0:
    shared[:6] = b"child!"
    os._exit(0)
os.waitpid(pid, 0)
ok_shared = shared[:6] == b"child!"
print("tmp=%s memfd=%s mmap=%s shared=%s" % (ok_tmp, ok_memfd, ok_mmap, ok_shared), flush=True)
sys.exit(0 if r == 1 and ok_tmp and ok_memfd and ok_mmap and ok_shared else 1)
