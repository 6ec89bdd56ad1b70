#!/bin/bash
# bench/tree.sh — checkpoint and restore of a whole container (a process tree) through the OCI
# commands engines call: ours (`checkpoint --format=elf`, per-process ELF images) beside upstream
# gVisor's (`runsc checkpoint` / `runsc restore`, default and -background), in the same run,
# alternating runtimes within each rep.
#
# usage: bench/tree.sh [TOTAL_MIB...]       (default 16 256 1024)
# env:   RUNSC_CKPT (default bin/runsc-ckpt), RUNSC_UPSTREAM (default bin/runsc-upstream, from
#        `make bench-bins`; empty skips upstream), RUNSC_CKPT_OLD (another runsc-ckpt, e.g. the
#        binary of main before a change: measured as "ours-old" in the same reps; default none),
#        UPSTREAM_BG (0 skips upstream's -background restore row), PROCS (default "1 4 16"), REPS (default 3),
#        PLATFORM (default systrap), BENCH_DIR (default /var/tmp/tree-bench; not under /tmp),
#        LEAVE_RUNNING (default 1; 0 checkpoints without --leave-running, as engines do: the
#        container's processes stay stopped while their images are written and are killed after;
#        the pause column is then "-"), RUNSC_FLAGS (more global flags for every runtime, e.g.
#        "--debug --debug-log=/var/tmp/tb-logs/": the sentry's per-process freeze timings),
#        GAP_LOG (a file: each checkpoint's gap lines are appended to it, with when each
#        process's longest stop ended, to match with the sentry's debug log)
#
# Workload (bench/tree_guest.c): a container of N processes holding TOTAL MiB between them, every
# page written, each process spinning on the clock and publishing, for each 100 ms, the longest
# time it did not run. Columns (median over REPS, min in brackets):
#   ckpt ms     wall time of the host's checkpoint command, with --leave-running (see LEAVE_RUNNING)
#   pause ms    the longest stop any process of the container saw overlapping the checkpoint
#               command or the 0.5 s after it [in brackets: the noise floor, the same in the
#               quiet second before it]
#   image MiB   bytes of the checkpoint directory (allocated on disk; sparse holes do not count)
#   restore ms  from the host's restore command starting to every process of the container
#               running again (each has published a time after the start)
#   copy ms     a plain `cp` of the same number of bytes to the same filesystem (page-cache write
#               limit of this machine, measured in the same rep)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RUNSC_CKPT:-$here/bin/runsc-ckpt}
upstream=${RUNSC_UPSTREAM-$here/bin/runsc-upstream}
old=${RUNSC_CKPT_OLD-}
upstream_bg=${UPSTREAM_BG:-1}
leave=(--leave-running)
[ "${LEAVE_RUNNING:-1}" != 0 ] || leave=()
procs=(${PROCS:-1 4 16})
reps=${REPS:-3}
platform=${PLATFORM:-systrap}
dir=${BENCH_DIR:-/var/tmp/tree-bench}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(16 256 1024)
case "$dir" in /tmp/*) echo "BENCH_DIR must not be under /tmp (runsc mounts a tmpfs there)" >&2; exit 2 ;; esac

roots=()
cleanup() {
	for r in "${roots[@]}"; do
		for rt in "$bin" "$old" "$upstream"; do
			[ -n "$rt" ] || continue
			for c in $("$rt" --root="$r" list -q 2>/dev/null); do
				"$rt" --root="$r" delete -force "$c" >/dev/null 2>&1 || true
			done
		done
		umount -l "$r/null-netns" 2>/dev/null || true
		rm -rf "$r"
	done
	rm -rf "$dir"
}
trap cleanup EXIT
rm -rf "$dir" && mkdir -p "$dir/bundle/rootfs/out" "$dir/logs"
gcc -static -O2 -Wall -Werror -o "$dir/bundle/rootfs/tree_guest" "$here/bench/tree_guest.c"
out=$dir/bundle/rootfs/out

now_ms() { date +%s%3N; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {printf "%s (%s)", v[int((NR+1)/2)], v[1]}'; }

# bundle N MIB: the container's command line.
bundle() {
	(cd "$dir/bundle" && rm -f config.json && "$bin" spec -- /tree_guest "$1" "$2" /out)
	python3 - "$dir/bundle/config.json" <<-'EOF'
		import json, sys
		p = sys.argv[1]
		c = json.load(open(p))
		c["root"] = {"path": "rootfs", "readonly": False}
		c["process"]["terminal"] = False
		json.dump(c, open(p, "w"), indent=1)
	EOF
}

# rt RUNTIME ARGS...: the runtime with this bench's root for it.
rt() {
	local r=$1
	shift
	local root=/var/run/rc-tree-bench-$(basename "$r")-$(printf '%s' "$r" | md5sum | cut -c1-8)-$$
	[ -d "$root" ] || { mkdir -p "$root"; roots+=("$root"); }
	"$r" --root="$root" --platform="$platform" --network=none --overlay2=none ${RUNSC_FLAGS:-} "$@"
}

# wait_until SECONDS CMD...: polls CMD every 10 ms.
wait_until() {
	local deadline=$(($(now_ms) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(now_ms)" -lt "$deadline" ] || return 1
		sleep 0.01
	done
}

# max_gap_ms FROM_MS TO_MS: the longest time any process did not run that overlaps the window
# (tree_guest.c keeps the longest gap of each 100 ms, with when it ended).
max_gap_ms() {
	awk -v a="$1" -v b="$2" 'FNR > 1 && $1 > 0 {
		end = $1 / 1e6; g = $2 / 1000
		if (end > a && end - g < b && g > m) m = g
	} END {printf "%.1f", m}' "$out"/gap.*
}

# all_after N T_MS: every one of the N processes has published a time after T_MS.
all_after() {
	local n=$1 t=$2 c
	c=$(head -qn1 "$out"/gap.* 2>/dev/null | awk -v t="$t" '$1 / 1e6 > t' | wc -l)
	[ "$c" -ge "$n" ]
}

# start RUNTIME CID N: runs the container detached and waits until every process is spinning.
start() {
	rm -f "$out"/*
	rt "$1" run --detach --bundle "$dir/bundle" "$2" </dev/null >"$dir/logs/$2.out" 2>&1
	wait_until 300 test -e "$out/ready" || { echo "container $2 never got ready" >&2; cat "$dir/logs/$2.out" >&2; exit 1; }
}

stop() { rt "$1" delete -force "$2" >/dev/null 2>&1 || true; }

# measure RUNTIME LABEL N MIB REP RESTORE_FLAGS...: one checkpoint + restore; appends
# "label ckpt pause floor mib restore" to $dir/results.
measure() {
	local r=$1 label=$2 n=$3 mib=$4 rep=$5
	shift 5
	local a="tb-a-$$-$rep" b="tb-b-$$-$rep" img="$dir/img-$label-$rep" fmt=()
	[ "$r" = "$bin" ] || [ "$r" = "$old" ] && fmt=(--format=elf)
	rm -rf "$img"
	start "$r" "$a"
	local floor t0 t1 t2 pause
	t0=$(now_ms)
	sleep 1
	floor=$(max_gap_ms "$t0" "$(now_ms)")
	sync # the writeback of what ran before (the last rep's copy, 1 GiB) is not this checkpoint's
	t0=$(now_ms)
	rt "$r" checkpoint "${fmt[@]}" "${leave[@]}" --image-path "$img" "$a" >"$dir/logs/$a.ckpt" 2>&1 ||
		{ echo "$label checkpoint failed:" >&2; cat "$dir/logs/$a.ckpt" >&2; exit 1; }
	t1=$(now_ms)
	local ckpt_ms=$((t1 - t0))
	sleep 0.5
	pause=$(max_gap_ms "$t0" "$((t1 + 500))")
	[ -z "${GAP_LOG:-}" ] || { echo "$label $n $mib $rep checkpoint $t0-$t1 ms"; grep -hv '^0* 0*$' "$out"/gap.*; } >>"$GAP_LOG"
	[ ${#leave[@]} -gt 0 ] || pause=-
	stop "$r" "$a"
	local bytes
	bytes=$(du -sB1 "$img" | cut -f1) # allocated: holes of sparse images do not count
	t0=$(now_ms)
	rt "$r" restore "$@" --image-path "$img" --bundle "$dir/bundle" --detach "$b" </dev/null >"$dir/logs/$b.restore" 2>&1 ||
		{ echo "$label restore failed:" >&2; cat "$dir/logs/$b.restore" >&2; exit 1; }
	wait_until 300 all_after "$n" "$t0" || { echo "$label: the restored container never ran again" >&2; exit 1; }
	t2=$(now_ms)
	stop "$r" "$b"
	rm -rf "$img"
	printf '%s %s %s %s %s %s\n' "$label" "$ckpt_ms" "$pause" "$floor" "$((bytes >> 20))" "$((t2 - t0))" >>"$dir/results"
}

echo "platform $platform, $(nproc) cores, load at start: $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo
echo "| processes | total | runtime | ckpt ms | pause ms (floor) | image MiB | restore ms | copy ms |"
echo "|---|---|---|---|---|---|---|---|"
for n in "${procs[@]}"; do
	for mib in "${sizes[@]}"; do
		bundle "$n" "$mib"
		: >"$dir/results"
		copies=()
		for ((rep = 0; rep < reps; rep++)); do
			measure "$bin" ours "$n" "$mib" "$rep"
			[ -z "$old" ] || measure "$old" ours-old "$n" "$mib" "$rep"
			if [ -n "$upstream" ]; then
				measure "$upstream" upstream "$n" "$mib" "$rep"
				[ "$upstream_bg" = 0 ] || measure "$upstream" upstream-bg "$n" "$mib" "$rep" -background
			fi
			head -c $((mib << 20)) /dev/urandom >"$dir/copy-src"
			sync
			t0=$(now_ms)
			cp "$dir/copy-src" "$dir/copy-dst"
			copies+=($(($(now_ms) - t0)))
			rm -f "$dir/copy-src" "$dir/copy-dst"
		done
		for label in ours ours-old upstream upstream-bg; do
			grep -q "^$label " "$dir/results" || continue
			col() { awk -v l="$label" -v k="$1" '$1 == l {print $k}' "$dir/results"; }
			printf '| %d | %d MiB | %s | %s | %s [%s] | %s | %s | %s |\n' "$n" "$mib" "$label" \
				"$(median $(col 2))" "$(median $(col 3))" "$(median $(col 4))" "$(median $(col 5))" \
				"$(median $(col 6))" "$(median "${copies[@]}")"
		done
	done
done
echo
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
