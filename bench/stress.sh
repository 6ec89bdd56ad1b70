#!/bin/bash
# stress.sh: freeze/thaw stress (issue 13 item 6) and the sentry's host fds and RSS around it.
#
# Two runs per platform, each in its own sandbox (runsc-ckpt do -force-overlay=false) with the
# guest test/guests/hostile_stress.c:
#   cycles   one process freezes itself and thaws itself from the image CYCLES times in a row
#   many     PROCS processes freeze and thaw themselves at the same time, ROUNDS rounds
# The guest warms up first (2 cycles, or one round), then waits on its stdin; the script reads the
# sentry's VmRSS and open host fds (/proc/PID/fd) there (the baseline), lets the guest run, and
# reads them again when it is done. Reported: wall time of the run, time per cycle, and the
# baseline → after figures. A leak of one fd or one image per cycle shows as fds growing with CYCLES.
#
# usage: bench/stress.sh
# env:   RUNSC_CKPT (default bin/runsc-ckpt), PLATFORMS (default "systrap ptrace"), CYCLES (default
#        1000), PROCS (default 100), ROUNDS (default 3), BENCH_DIR (default /var/tmp/stress-bench:
#        must not be under /tmp).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RUNSC_CKPT:-$here/bin/runsc-ckpt}
platforms=${PLATFORMS:-systrap ptrace}
cycles=${CYCLES:-1000}
procs=${PROCS:-100}
rounds=${ROUNDS:-3}
dir=${BENCH_DIR:-/var/tmp/stress-bench}

rm -rf "$dir"
mkdir -p "$dir"
chmod 0777 "$dir"
roots=()
cleanup() {
	for r in "${roots[@]}"; do
		for c in $("$bin" --root="$r" list -quiet 2>/dev/null); do
			"$bin" --root="$r" delete -force "$c" >/dev/null 2>&1 || true
		done
		rm -rf "$r"
	done
	rm -rf "$dir"
}
trap cleanup EXIT

gcc -static -O1 -Wall -Werror -I "$here/include" -o "$dir/hostile_stress" "$here/test/guests/hostile_stress.c"

# sentry PID prints the pid of the sandbox process (the sentry, `runsc-ckpt ... boot`) among the
# descendants of process PID (`do` keeps no state in --root that `state` could read).
sentry() {
	local kids k
	kids=$(pgrep -P "$1" || true)
	for k in $kids; do
		if tr '\0' ' ' <"/proc/$k/cmdline" 2>/dev/null | grep -q ' boot '; then
			echo "$k"
			return
		fi
	done
	for k in $kids; do
		sentry "$k"
	done
}

# figures PID prints "RSS_KiB FDS" of process PID.
figures() { echo "$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status") $(ls "/proc/$1/fd" | wc -l)"; }

# waitout FILE WORD waits (up to 10 minutes) until FILE contains the line WORD.
waitout() {
	for ((i = 0; i < 6000; i++)); do
		grep -qx "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "timed out waiting for $2 in $1" >&2
	cat "$1" >&2
	exit 1
}

# run PLATFORM NAME GUEST-ARGS... runs one measured run and prints a table row.
run() {
	local p=$1 name=$2
	shift 2
	local root=/var/run/stress-bench-$$-$p-$name out=$dir/$p-$name.out fifo=$dir/$p-$name.in
	roots+=("$root")
	mkfifo "$fifo"
	(cd "$dir" && exec "$bin" --root="$root" --platform="$p" --network=none do -force-overlay=false \
		"$dir/hostile_stress" -stdin "$@" <"$fifo" >"$out" 2>&1) &
	local runner=$!
	exec 7>"$fifo" # keeps the guest's stdin open between the two lines
	waitout "$out" ready
	local pid before after t0 t1
	pid=$(sentry "$runner" | head -1)
	before=$(figures "$pid")
	t0=$(date +%s%N)
	echo go >&7
	waitout "$out" done
	t1=$(date +%s%N)
	after=$(figures "$pid")
	echo end >&7
	exec 7>&-
	wait "$runner" || { echo "the $name run failed:" >&2; cat "$out" >&2; exit 1; }
	local n=$cycles
	[ "$name" = many ] && n=$((procs * rounds))
	read -r rss0 fd0 <<<"$before"
	read -r rss1 fd1 <<<"$after"
	printf '| %s | %s | %d | %.1f | %.2f | %d → %d | %d → %d |\n' "$p" "$name" "$n" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1e9}')" \
		"$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN {print (b - a) / 1e6 / n}')" \
		$((rss0 >> 10)) $((rss1 >> 10)) "$fd0" "$fd1"
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| platform | run | cycles | wall s | ms per cycle | sentry RSS MiB | sentry host fds |"
echo "|---|---|---|---|---|---|---|"
for p in $platforms; do
	run "$p" cycles cycles "$cycles" "$dir/$p.ckpt"
	run "$p" many many "$procs" "$dir" "$rounds"
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
