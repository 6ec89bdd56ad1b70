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
# A second table (unless RESTORE=0) times upstream `runsc restore` of an image made by upstream
# `runsc checkpoint`, REPS times per size: a static guest (bench/restore_guest.c) fills N MiB (every
# page non-zero) and naps 1 ms at a time; `runsc run -detach` starts it, `runsc checkpoint` saves it,
# and after 1.2 s `runsc restore` (foreground) resumes it from the image, once as is (the whole
# image is loaded before the guest runs) and once with -background (the guest runs while pages
# are still loading). The guest spots the restore by the jump of its wall clock, touches every
# page and exits. Reported (min / median, ms):
#   start      `runsc run` until the guest's first instruction (a cold sandbox start, baseline)
#   ckpt       wall time of `runsc checkpoint`
#   first      `runsc restore` until the restored guest's first clock read
#   touch      the restored guest reading one word of every page (checked)
#   restore    wall time of the whole `runsc restore` command (includes touch, exit and teardown)
#
# usage: bench/freeze.sh [SIZES_MIB...]   (default 16 256 1024)
# env:   RUNSC_CKPT (default bin/runsc-ckpt), RUNSC_UPSTREAM (default bin/runsc-upstream, built
#        by `make bench-bins` from the pinned gVisor module; empty to skip), REPS (default 3), BENCH_DIR (default
#        /var/tmp/freeze-bench: must not be under /tmp), OURS (default 1; 0 skips the first table),
#        RESTORE (default 1; 0 skips the upstream restore table).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RUNSC_CKPT:-$here/bin/runsc-ckpt}
upstream=${RUNSC_UPSTREAM-$here/bin/runsc-upstream}
reps=${REPS:-3}
ours=${OURS:-1}
restore=${RESTORE:-1}
dir=${BENCH_DIR:-/var/tmp/freeze-bench}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(16 256 1024)

rm -rf "$dir" && mkdir -p "$dir/logs" "$dir/rootfs"
trap 'rm -rf "$dir"' EXIT
guest="$dir/freeze_bench"
gcc -static -O2 -Wall -Werror -I "$here/include" -o "$guest" "$here/test/guests/freeze_bench.c" -pthread
rguest="$dir/restore_guest"
gcc -static -O2 -Wall -Werror -o "$rguest" "$here/bench/restore_guest.c"

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

# up_cleanup ROOT ID...: deletes the containers and the state root of an upstream run.
up_cleanup() {
	local root=$1 id i
	shift
	for id in "$@"; do "$upstream" --root "$root" delete -force "$id" >/dev/null 2>&1 || true; done
	# With --network=none upstream leaves its empty network namespace bind-mounted in the root.
	if mountpoint -q "$root/null-netns" 2>/dev/null; then umount "$root/null-netns"; fi
	# A sandbox that just exited may still be writing into the root ("Directory not empty").
	for i in $(seq 20); do rm -rf "$root" 2>/dev/null && return 0; sleep 0.25; done
	rm -rf "$root"
}

# field NAME TEXT: the value of "NAME=value" in TEXT.
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2" | head -1; }

run_upstream_restore() { # size rep -> "start ckpt first touch restore bfirst btouch brestore" (ms)
	local size=$1 rep=$2 root="/var/run/rc-freeze-bench-rs-$$" b="$dir/rbundle-$size" id="rb$size-$rep-$$"
	rm -rf "$b" && mkdir -p "$b/rootfs"
	cp "$rguest" "$b/rootfs/restore_guest"
	(cd "$b" && "$upstream" spec -- /restore_guest "$size")
	sed -i 's/"terminal": true/"terminal": false/' "$b/config.json"
	local t0 t1 i out res=()
	t0=$(date +%s%N)
	"$upstream" --root "$root" --network=none run -bundle "$b" -detach "$id" >"$b/run.out" 2>&1 </dev/null
	for ((i = 0; i < 600; i++)); do grep -q '^filled' "$b/run.out" && break; sleep 0.1; done
	grep -q '^filled' "$b/run.out" || { echo "guest did not start: $(cat "$b/run.out")" >&2; up_cleanup "$root" "$id"; return 1; }
	res+=("$(awk -v a="$(field start_ns "$(cat "$b/run.out")")" -v b="$t0" 'BEGIN {print (a - b) / 1e6}')")
	t0=$(date +%s%N)
	"$upstream" --root "$root" checkpoint --image-path="$b/image" "$id" >"$b/ckpt.out" 2>&1 ||
		{ echo "runsc checkpoint failed: $(cat "$b/ckpt.out")" >&2; up_cleanup "$root" "$id"; return 1; }
	t1=$(date +%s%N)
	res+=("$(( (t1 - t0) / 1000000 ))")
	local mode
	for mode in "" -background; do
		sleep 1.2 # the guest spots the restore by a wall clock jump of more than 1 s
		t0=$(date +%s%N)
		# Output to a file: the restored sandbox's stdout is the file the checkpointed one had, and
		# restore through a pipe printed nothing.
		"$upstream" --root "$root" --network=none restore $mode --image-path="$b/image" -bundle "$b" \
			"$id-r$mode" >"$b/restore.out" 2>&1 </dev/null ||
			{ echo "runsc restore $mode failed: $(cat "$b/restore.out")" >&2; up_cleanup "$root" "$id" "$id-r$mode"; return 1; }
		t1=$(date +%s%N)
		out=$(tr -d '\0' <"$b/restore.out") # it starts with holes: the fd keeps its old offset
		grep -q ' ok=1' <<<"$out" || { echo "restored guest failed: $out" >&2; up_cleanup "$root" "$id" "$id-r$mode"; return 1; }
		res+=("$(awk -v a="$(field first_ns "$out")" -v b="$t0" 'BEGIN {print (a - b) / 1e6}')")
		res+=("$(field touch_ms "$out")" "$(( (t1 - t0) / 1000000 ))")
	done
	up_cleanup "$root" "$id" "$id-r" "$id-r-background"
	rm -rf "$b"
	echo "${res[*]}"
}

# minmed prints "min / median" of its numeric arguments.
minmed() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {printf "%.1f / %.1f", v[1], v[int((NR+1)/2)]}'; }

if [ "$ours" = 1 ]; then
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
fi

[ -n "$upstream" ] && [ "$restore" = 1 ] || exit 0
echo
echo "upstream runsc checkpoint -> runsc restore, min / median ms over $reps runs"
echo "| size | run: start | checkpoint | restore: first | touch all pages | restore cmd | -background: first | touch all pages | restore cmd |"
echo "|---|---|---|---|---|---|---|---|---|"
for size in "${sizes[@]}"; do
	cols=()
	for rep in $(seq 1 "$reps"); do
		out=$(run_upstream_restore "$size" "$rep") || exit 1 # waits for its cleanup, unlike <(...)
		read -r -a v <<<"$out"
		[ ${#v[@]} -eq 8 ] || { echo "unexpected result: $out" >&2; exit 1; }
		for i in 0 1 2 3 4 5 6 7; do cols[i]+="${v[i]} "; done
	done
	row="| $size MiB"
	for i in 0 1 2 3 4 5 6 7; do
		# shellcheck disable=SC2086 # word splitting of the collected values is intended
		row+=" | $(minmed ${cols[i]})"
	done
	echo "$row |"
done
