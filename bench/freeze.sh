#!/bin/bash
# freeze.sh: benchmark of CKPT_FREEZE (sys_checkpoint) against upstream `runsc checkpoint`.
#
# For each size (MiB of dirty anonymous memory) a static guest (test/guests/freeze_bench.c) dirties
# that much memory and freezes itself into a file on the host disk (runsc-ckpt do
# -force-overlay=false) while a second thread spins reading the clock. Reported per size, over REPS
# runs:
#   call       wall time of the sys_checkpoint call measured in the guest (min / median): the
#              freezing thread is in the freeze that long (a single-threaded process is stopped
#              that long)
#   stall      the longest gap the spinning thread saw (median): how long the other threads of
#              the process were stopped (capture + copy-on-write snapshot, not the write)
#   sentry     the sentry's own measure of the whole freeze, median
#   image      apparent image size and bytes allocated on disk (holes are not allocated)
#   upstream   `runsc checkpoint` (whole-sandbox save) of the same guest holding the same memory:
#              wall time of the command and size of its image directory (one run)
#
# usage: bench/freeze.sh [SIZES_MIB...]   (default 16 256 1024)
# env:   RUNSC_CKPT (default /work/build/freeze/runsc-ckpt), RUNSC_UPSTREAM (default
#        /work/build/runsc-upstream, empty to skip), REPS (default 3), BENCH_DIR (default
#        /var/tmp/freeze-bench: must not be under /tmp).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RUNSC_CKPT:-/work/build/freeze/runsc-ckpt}
upstream=${RUNSC_UPSTREAM-/work/build/runsc-upstream}
reps=${REPS:-3}
dir=${BENCH_DIR:-/var/tmp/freeze-bench}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(16 256 1024)

rm -rf "$dir" && mkdir -p "$dir/logs" "$dir/rootfs"
trap 'rm -rf "$dir"' EXIT
guest="$dir/freeze_bench"
gcc -static -O2 -Wall -Werror -I "$here/include" -o "$guest" "$here/test/guests/freeze_bench.c" -pthread

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run_ours() { # size rep -> prints "pause_us stall_us sentry_ms apparent allocated"
	local size=$1 rep=$2 root="/var/run/rc-freeze-bench-$$" log="$dir/logs/$size-$rep/"
	local img="$dir/img-$size"
	rm -f "$img"
	local out
	out=$("$bin" --root "$root" --network=none --debug --debug-log="$log" do -force-overlay=false \
		"$guest" "$size" "$size" "$img" 0 1 2>&1 | cat)
	rm -rf "$root"
	local pause
	pause=$(sed -n 's/.*freeze=0 errno=0 pause_us=\([0-9]*\).*/\1/p' <<<"$out")
	[ -n "$pause" ] || { echo "guest failed: $out" >&2; exit 1; }
	local stall
	stall=$(sed -n 's/^worker_stall_us=\([0-9]*\)$/\1/p' <<<"$out")
	local sentry
	sentry=$(grep -ho 'total [0-9.]*[mµ]*s' "$log"*boot* | awk '{v=$2; if (v ~ /ms$/) {sub(/ms/,"",v); print v} else if (v ~ /µs$/) {sub(/µs/,"",v); print v/1000} else {sub(/s/,"",v); print v*1000}}')
	echo "$pause $stall $sentry $(stat -c '%s' "$img") $(( $(stat -c '%b' "$img") * 512 ))"
	rm -f "$img"
}

run_upstream() { # size -> prints "ms bytes" of `runsc checkpoint`
	local size=$1 root="/var/run/rc-freeze-bench-up-$$" b="$dir/bundle-$size" id="fb$size-$$"
	mkdir -p "$b/rootfs"
	cp "$guest" "$b/rootfs/freeze_bench"
	(cd "$b" && "$upstream" spec -- /freeze_bench "$size" "$size" /dev/null 600)
	sed -i 's/"terminal": true/"terminal": false/' "$b/config.json"
	"$upstream" --root "$root" --network=none run -bundle "$b" -detach "$id" >/dev/null 2>&1 </dev/null
	sleep $(( 1 + size / 256 )) # let the guest dirty its memory
	local t0 t1
	t0=$(date +%s%N)
	"$upstream" --root "$root" checkpoint --image-path="$b/image" "$id" >/dev/null 2>&1
	t1=$(date +%s%N)
	echo "$(( (t1 - t0) / 1000000 )) $(du -sb "$b/image" | cut -f1)"
	"$upstream" --root "$root" delete -force "$id" >/dev/null 2>&1 || true
	# With --network=none upstream leaves its empty network namespace bind-mounted in the root.
	if mountpoint -q "$root/null-netns" 2>/dev/null; then umount "$root/null-netns"; fi
	rm -rf "$root" "$b"
}

printf '%-9s %-17s %-10s %-10s %-14s %-14s %-22s\n' "dirty" "call min/med ms" "stall ms" "sentry ms" "image bytes" "on disk" "upstream ckpt ms/bytes"
for size in "${sizes[@]}"; do
	pauses=() stalls=() sentries=() apparent=0 alloc=0
	for rep in $(seq 1 "$reps"); do
		read -r p st s a l < <(run_ours "$size" "$rep")
		pauses+=("$p") stalls+=("$st") sentries+=("$s") apparent=$a alloc=$l
	done
	stmed=$(printf '%s\n' "${stalls[@]}" | median)
	pmin=$(printf '%s\n' "${pauses[@]}" | sort -n | head -1)
	pmed=$(printf '%s\n' "${pauses[@]}" | median)
	smed=$(printf '%s\n' "${sentries[@]}" | median)
	up="-"
	if [ -n "$upstream" ]; then
		up=$(run_upstream "$size" | awk '{printf "%s/%s", $1, $2}')
	fi
	printf '%-9s %-17s %-10s %-10s %-14s %-14s %-22s\n' "${size}MiB" "$(awk -v a="$pmin" -v b="$pmed" 'BEGIN{printf "%.1f/%.1f", a/1000, b/1000}')" \
		"$(awk -v s="$stmed" 'BEGIN{printf "%.1f", s/1000}')" "$(awk -v s="$smed" 'BEGIN{printf "%.1f", s}')" "$apparent" "$alloc" "$up"
done
