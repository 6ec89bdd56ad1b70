#!/bin/bash
# sentry_trace.sh: a Go execution trace of the sentry around one host `runsc-ckpt kill CID SIGCKPT`
# of bench/pause_guest.c, and where the guest's threads waited in it (bench/trace_gaps.py).
#
# The guest's threads make a system call every 100 us, so every wait of its task goroutines in the
# sentry shows up as a gap in the trace, with what it waited for and who woke it: that is how the
# stops of docs/notes-pause.md ("Where the threads' stops go: the sentry's Go scheduler") were
# explained. The trace costs the sentry time of its own, so its gaps are longer than the
# bench's; compare them with each other, not with bench/pause.sh.
#
# usage: bench/sentry_trace.sh [SIZE_MIB [MIN_MS]]   (default 1024, 3)
# env:   RUNSC_CKPT (default bin/runsc-ckpt), OUT (default /var/tmp/sentry-trace: the trace, its
#        parsed text, the guest's output; kept afterwards; not under /tmp).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RUNSC_CKPT:-$here/bin/runsc-ckpt}
size=${1:-1024}
min_ms=${2:-3}
out=${OUT:-/var/tmp/sentry-trace}
root=/var/run/rc-sentry-trace-$$
id=st$$
rm -rf "$out" && mkdir -p "$out/bundle/rootfs"
b=$out/bundle
cleanup() {
	"$bin" --root "$root" delete -force "$id" >/dev/null 2>&1 || true
	if mountpoint -q "$root/null-netns" 2>/dev/null; then umount "$root/null-netns"; fi
	rm -rf "$root"
}
trap cleanup EXIT
gcc -static -O2 -Wall -Werror -I "$here/include" -o "$b/rootfs/pause_guest" "$here/bench/pause_guest.c" -pthread
window=$((3000 + 10 * size))
(cd "$b" && "$bin" spec -- /pause_guest "$size" 2 2000 "$window" host /ready /pause_guest.ckpt)
sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"readonly": true/"readonly": false/' "$b/config.json"
"$bin" --root "$root" --network=none --overlay2=none --profile run -bundle "$b" "$id" >"$out/guest.out" 2>&1 </dev/null &
pid=$!
for _ in $(seq 12000); do [ -e "$b/rootfs/ready" ] && break; sleep 0.01; done
"$bin" --root "$root" debug --trace="$out/sentry.trace" --duration=3s "$id" >"$out/debug.log" 2>&1 &
tracer=$!
sleep 0.5
echo "kill at $(date -u +%T.%N)"
"$bin" --root "$root" kill "$id" SIGCKPT
wait "$tracer"
wait "$pid" || true
grep '^thread=' "$out/guest.out" || { cat "$out/guest.out" >&2; exit 1; }
go tool trace -d=parsed "$out/sentry.trace" >"$out/sentry.trace.txt"
python3 "$here/bench/trace_gaps.py" "$min_ms" <"$out/sentry.trace.txt"
