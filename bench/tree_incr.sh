#!/bin/bash
# tree_incr.sh: incremental *container* checkpoints (checkpoint --format=elf --parent-path,
# docs/incremental.md "Container checkpoints") against complete ones.
#
# A container (host / as rootfs, --overlay2=none) runs bench/tree_incr_guest.c, which fills SIZE MiB
# of anonymous memory. Per rep: a complete checkpoint P with --leave-running, the guest changes
# PERMILLE of every thousand pages, then an incremental checkpoint C with --parent-path ../P and,
# of the same memory, a complete one F; then restores of C and of F into new containers. Reported
# per size, median of REPS runs (each rep and the load average on stderr):
#   full_ms      the `checkpoint` command writing F (host command end to end)
#   incr_ms      the `checkpoint` command writing C (the sentry streams complete images; the host
#                compares each with P's image and writes the changed pages)
#   full_B       bytes F's images take on disk (st_blocks; holes cost nothing)
#   incr_B       the same for C, and incr_B / full_B
#   rst_full_ms  `restore --detach` from F until every process runs
#   rst_incr_ms  the same from C (P's images mapped beside C's)
#
# usage: bench/tree_incr.sh [SIZES_MIB...]   (default 256)
# env:   RUNSC_CKPT (default bin/runsc-ckpt), REPS (default 3), PERMILLE (default 10),
#        PLATFORM (default systrap), BENCH_DIR (default /var/tmp/tree-incr-bench: not under /tmp),
#        DEBUG_LOG (a directory: the runtime's debug logs go there)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RUNSC_CKPT:-$here/bin/runsc-ckpt}
reps=${REPS:-3}
permille=${PERMILLE:-10}
platform=${PLATFORM:-systrap}
dir=${BENCH_DIR:-/var/tmp/tree-incr-bench}
root="/var/run/rc-tree-incr-bench-$$"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(256)

dbg=()
[ -z "${DEBUG_LOG:-}" ] || dbg=(--debug --debug-log="$DEBUG_LOG/")
rt() { "$bin" --root "$root" --platform="$platform" --network=none --overlay2=none "${dbg[@]}" "$@"; }
cleanup() {
	for c in $(rt list -q 2>/dev/null); do rt delete -force "$c" >/dev/null 2>&1 || true; done
	umount -l "$root/null-netns" 2>/dev/null || true
	rm -rf "$dir" "$root"
}
rm -rf "$dir" && mkdir -p "$dir/b"
trap cleanup EXIT
trap 'exit 1' INT TERM
guest="$dir/tree_incr_guest"
gcc -static -O2 -Wall -Werror -o "$guest" "$here/bench/tree_incr_guest.c"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", (b - a) / 1e6}'; }
bytes() { local n=0 f; for f in "$1"/pid-*.img; do n=$((n + $(stat -c %b "$f") * 512)); done; echo $n; }
waitfor() { # file text
	for _ in $(seq 1 3000); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "timed out waiting for '$2' in $1" >&2; exit 1
}
bundle() { # size
	cat >"$dir/b/config.json" <<JSON
{"ociVersion":"1.0.2","process":{"args":["$guest","$1","$permille"],"env":["PATH=/bin"],"cwd":"/"},
"root":{"path":"/"},"hostname":"bench",
"mounts":[{"destination":"/proc","type":"proc","source":"proc"},{"destination":"/dev","type":"tmpfs","source":"tmpfs"}],
"linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}]}}
JSON
}

run() { # size rep -> "full_ms incr_ms full_B incr_B rst_full_ms rst_incr_ms"
	local size=$1 rep=$2 w="$dir/r" id="bench-$$-$2"
	rm -rf "$w" && mkdir -p "$w"
	bundle "$size"
	rt run -detach --bundle "$dir/b" "$id" >"$w/out" 2>"$w/err" </dev/null
	waitfor "$w/out" ready
	rt checkpoint --format=elf --leave-running --image-path "$w/P" "$id"
	rt kill "$id" USR1
	waitfor "$w/out" "changed 1"
	local t0 t1 t2
	t0=$(now); rt checkpoint --format=elf --leave-running --image-path "$w/C" --parent-path ../P "$id"
	t1=$(now); rt checkpoint --format=elf --image-path "$w/F" "$id"
	t2=$(now)
	rt delete -force "$id" >/dev/null 2>&1 || true
	local r0 r1 r2
	r0=$(now); rt restore --image-path "$w/F" --bundle "$dir/b" --detach "$id-f" </dev/null >/dev/null
	r1=$(now); rt restore --image-path "$w/C" --bundle "$dir/b" --detach "$id-c" </dev/null >/dev/null
	r2=$(now)
	rt delete -force "$id-f" >/dev/null 2>&1 || true
	rt delete -force "$id-c" >/dev/null 2>&1 || true
	echo "$(ms "$t1" "$t2") $(ms "$t0" "$t1") $(bytes "$w/F") $(bytes "$w/C") $(ms "$r0" "$r1") $(ms "$r1" "$r2")"
}

printf '%-6s %8s %8s %12s %10s %7s %11s %11s\n' MiB full_ms incr_ms full_B incr_B ratio rst_full_ms rst_incr_ms
for size in "${sizes[@]}"; do
	echo "size $size MiB, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
	rows=()
	for rep in $(seq 1 "$reps"); do
		row=$(run "$size" "$rep")
		echo "  rep $rep: $row (load $(cut -d' ' -f1 /proc/loadavg))" >&2
		rows+=("$row")
	done
	col() { printf '%s\n' "${rows[@]}" | awk -v c="$1" '{print $c}' | median; }
	fb=$(col 3) ib=$(col 4)
	printf '%-6s %8s %8s %12s %10s %6.2f%% %11s %11s\n' "$size" "$(col 1)" "$(col 2)" "$fb" "$ib" \
		"$(awk -v a="$ib" -v b="$fb" 'BEGIN {print 100 * a / b}')" "$(col 5)" "$(col 6)"
done
