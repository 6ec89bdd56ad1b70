#!/bin/bash
# incr.sh: benchmark of incremental checkpoints (CKPT_FREEZE_INCR, docs/incremental.md).
#
# A static guest (bench/incr_guest.c) fills SIZE MiB of anonymous memory, freezes itself into a
# complete image, changes PERMILLE of every thousand pages (default 10: 1 %), then freezes again
# into an incremental image against the first and, for comparison, into a second complete image.
# Images go to a host directory (do -force-overlay=false). Reported per size, median of REPS runs:
#   full_ms    the second complete freeze (sys_checkpoint call in the guest)
#   incr_ms    the incremental freeze of the same memory (compares every page with the parent's)
#   full_B     bytes of the complete image allocated on disk (what the freeze wrote: zero pages,
#              such as the untouched stack, are holes)
#   incr_B     the same for the incremental image, and incr_B / full_B
#   cp_full_ms a plain `cp` of the complete image on the host (page cache to page cache, no sync,
#              as the freeze does not sync either)
#   cp_incr_ms a plain `cp` of the incremental image
# The load average is printed before each size.
#
# usage: bench/incr.sh [SIZES_MIB...]   (default 1024)
# env:   RUNSC_CKPT (default bin/runsc-ckpt), REPS (default 3), PERMILLE (default 10),
#        PLATFORM (default systrap), BENCH_DIR (default /var/tmp/incr-bench: not under /tmp)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RUNSC_CKPT:-$here/bin/runsc-ckpt}
reps=${REPS:-3}
permille=${PERMILLE:-10}
platform=${PLATFORM:-systrap}
dir=${BENCH_DIR:-/var/tmp/incr-bench}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1024)

rm -rf "$dir" && mkdir -p "$dir/logs" "$dir/img"
trap 'rm -rf "$dir"' EXIT
guest="$dir/incr_guest"
gcc -static -O2 -Wall -Werror -I "$here/include" -o "$guest" "$here/bench/incr_guest.c"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", (b - a) / 1e6}'; }

run() { # size rep -> "full_ms incr_ms full_B incr_B cp_full_ms cp_incr_ms"
	local size=$1 rep=$2 root="/var/run/rc-incr-bench-$$" img="$dir/img"
	rm -f "$img"/*
	local out
	out=$("$bin" --root "$root" --platform="$platform" --network=none --debug --debug-log="$dir/logs/$size-$rep/" \
		do -force-overlay=false "$guest" "$size" "$permille" "$img" 2>&1 | cat)
	rm -rf "$root"
	grep -q '^full_us=' <<<"$out" || { echo "guest failed: $out" >&2; exit 1; }
	local incr full2
	incr=$(sed -n 's/.* incr_us=\([0-9]*\).*/\1/p' <<<"$out")
	full2=$(sed -n 's/.* full2_us=\([0-9]*\).*/\1/p' <<<"$out")
	local t0 t1 t2
	t0=$(date +%s%N); cp "$img/full2.img" "$dir/cp-full"
	t1=$(date +%s%N); cp "$img/incr.img" "$dir/cp-incr"
	t2=$(date +%s%N)
	rm -f "$dir/cp-full" "$dir/cp-incr"
	alloc() { echo $(( $(stat -c %b "$1") * 512 )); }
	echo "$((full2 / 1000)) $((incr / 1000)) $(alloc "$img/full2.img") $(alloc "$img/incr.img") $(ms "$t0" "$t1") $(ms "$t1" "$t2")"
}

printf '%-6s %8s %8s %12s %10s %7s %10s %10s\n' MiB full_ms incr_ms full_B incr_B ratio cp_full_ms cp_incr_ms
for size in "${sizes[@]}"; do
	echo "# load: $(cut -d' ' -f1-3 /proc/loadavg), $reps reps, $permille permille changed, $platform" >&2
	rows=()
	for rep in $(seq "$reps"); do
		rows+=("$(run "$size" "$rep")")
		echo "#   rep $rep: ${rows[-1]}" >&2
	done
	col() { printf '%s\n' "${rows[@]}" | awk -v c="$1" '{print $c}' | median; }
	f=$(col 3) i=$(col 4)
	printf '%-6s %8s %8s %12s %10s %6.2f%% %10s %10s\n' "$size" "$(col 1)" "$(col 2)" "$f" "$i" \
		"$(awk -v a="$i" -v b="$f" 'BEGIN {print 100 * a / b}')" "$(col 5)" "$(col 6)"
done
