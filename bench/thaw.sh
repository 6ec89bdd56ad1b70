#!/bin/sh
# bench/thaw.sh — thaw cost for 16 MiB, 256 MiB and 1 GiB images on systrap and ptrace.
#
# usage: bench/thaw.sh [RUNSC_CKPT_BINARY] [SIZES_MIB] [PLATFORMS]
#   defaults: bin/runsc-ckpt, "16 256 1024", "systrap ptrace". Scratch: /var/tmp/runsc-ckpt-bench-thaw.
#
# For each size and platform a guest (bench/thaw_guest.c) fills its memory, freezes and is killed;
# a new sandbox thaws it with `runsc-ckpt checkpt -r`. Reported:
#   sentry   time in the thaw syscall until the thawed program may run its first instruction, as the
#            sentry logs it ("ckpt: thawed ... in X"): validate + reopen + exec + address-space swap
#   first    host wall clock from starting `checkpt -r` (after its sandbox booted: the guest's own
#            clock of its first instruction minus the time a marker command printed) — includes the
#            start of the Go checkpt binary
#   touch    time for the thawed program to touch every page once (each page faults in from the image)
set -eu
BIN=${1:-$(dirname "$0")/../bin/runsc-ckpt}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
SIZES=${2:-16 256 1024}
PLATFORMS=${3:-systrap ptrace}
HERE=$(cd "$(dirname "$0")" && pwd)
W=/var/tmp/runsc-ckpt-bench-thaw
mkdir -p "$W"
gcc -static -O2 -I "$HERE/../include" -o "$W/thaw_guest" "$HERE/thaw_guest.c"

run() { # platform, logdir, argv...
	p=$1 logs=$2; shift 2
	root=$(mktemp -d /var/run/rc-bench-thaw.XXXXXX)
	"$BIN" --root="$root" --platform="$p" --network=none --debug --debug-log="$logs/" do -force-overlay=false "$@" </dev/null 2>&1 | cat
	rm -rf "$root"
}

printf '| platform | image | file size | sentry thaw | first instruction | touch all pages |\n'
printf '|---|---|---|---|---|---|\n'
for p in $PLATFORMS; do
	for s in $SIZES; do
		img="$W/thaw-$p-$s.ckpt"
		rm -f "$img"
		run "$p" "$W/logs-freeze-$p-$s" "$W/thaw_guest" "$s" "$img" >/dev/null
		sync
		logs="$W/logs-thaw-$p-$s"
		rm -rf "$logs"
		out=$(run "$p" "$logs" /bin/sh -c "date +start_ns=%s%N; exec $BIN checkpt -r $img")
		start=$(echo "$out" | sed -n 's/^start_ns=//p')
		first=$(echo "$out" | sed -n 's/.*first_ns=\([0-9]*\).*/\1/p')
		touch=$(echo "$out" | sed -n 's/.*touch_ms=\([0-9.]*\).*/\1/p')
		ok=$(echo "$out" | sed -n 's/.* ok=\([01]\).*/\1/p')
		sentry=$(grep -h "ckpt: thawed" "$logs"/*boot* | sed -n 's/.*) in \([^:]*\):.*/\1/p' | head -1)
		if [ "$ok" != 1 ]; then
			echo "thaw of $img failed: $out" >&2
			exit 1
		fi
		size=$(du -h --apparent-size "$img" | cut -f1)
		printf '| %s | %d MiB | %s | %s | %.1f ms | %s ms |\n' "$p" "$s" "$size" "$sentry" \
			"$(echo "($first - $start) / 1000000" | bc -l)" "$touch"
		rm -f "$img"
	done
done
