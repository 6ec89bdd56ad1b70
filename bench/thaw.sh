#!/bin/bash
# bench/thaw.sh — thaw cost for 16 MiB, 256 MiB and 1 GiB images on systrap and ptrace.
#
# usage: bench/thaw.sh [SIZES_MIB...]          (default 16 256 1024)
# env:   RUNSC_CKPT (default bin/runsc-ckpt), PLATFORMS (default "systrap ptrace"), REPS (default 3),
#        BENCH_DIR (default /var/tmp/thaw-bench; not under /tmp)
#
# For each size and platform a guest (bench/thaw_guest.c) fills its memory (every page non-zero),
# freezes and is killed; then, REPS times, a new sandbox thaws the image with `runsc-ckpt checkpt -r`.
# Reported (min / median over the reps):
#   sentry   time in the thaw syscall until the thawed program may run its first instruction, as the
#            sentry logs it ("ckpt: thawed ... in X"): decode + validate + reopen + exec + swap
#   first    wall clock from the shell's `date` right before exec'ing checkpt to the thawed
#            program's first clock read: includes starting the (Go) checkpt binary
#   cold     wall clock from the host's `date` right before `runsc-ckpt do` to the thawed program's
#            first clock read: a fresh sandbox + checkpt + thaw (compare upstream `runsc restore`)
#   touch    time for the thawed program to touch every page once (each page faults in from the
#            image, which is in the host page cache)
#   RSS      the thawed program's resident set right after the thaw and after touching (last rep):
#            the thaw maps, it does not load
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RUNSC_CKPT:-$here/bin/runsc-ckpt}
platforms=${PLATFORMS:-systrap ptrace}
reps=${REPS:-3}
dir=${BENCH_DIR:-/var/tmp/thaw-bench}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(16 256 1024)

rm -rf "$dir" && mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
gcc -static -O2 -I "$here/include" -o "$dir/thaw_guest" "$here/bench/thaw_guest.c"

# run PLATFORM LOGDIR ARGV...: runsc-ckpt do in a fresh state root, output through a pipe.
run() {
	local p=$1 logs=$2 root
	shift 2
	root=$(mktemp -d /var/run/rc-thaw-bench.XXXXXX)
	"$bin" --root="$root" --platform="$p" --network=none --debug --debug-log="$logs/" \
		do -force-overlay=false "$@" </dev/null 2>&1 | cat
	rm -rf "$root"
}

# minmed prints "min / median" of its numeric arguments.
minmed() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {printf "%.1f / %.1f", v[1], v[int((NR+1)/2)]}'; }

# ms converts a Go duration (1.5ms, 850µs, 1.2s) to milliseconds.
ms() { awk -v d="$1" 'BEGIN {
	if (d ~ /µs$/) { sub(/µs$/, "", d); print d / 1000 }
	else if (d ~ /ms$/) { sub(/ms$/, "", d); print d + 0 }
	else if (d ~ /s$/) { sub(/s$/, "", d); print d * 1000 } }'; }

echo "| platform | image | file (apparent) | sentry thaw ms | first instruction ms | cold: host to first ms | touch all pages ms | RSS after thaw → after touch |"
echo "|---|---|---|---|---|---|---|---|"
for p in $platforms; do
	for s in "${sizes[@]}"; do
		img="$dir/thaw-$p-$s.ckpt"
		run "$p" "$dir/logs-freeze-$p-$s" "$dir/thaw_guest" "$s" "$img" >/dev/null || true # killed after the freeze
		sentry=() first=() touch=() cold=()
		for ((i = 0; i < reps; i++)); do
			logs="$dir/logs-thaw-$p-$s-$i"
			host=$(date +%s%N)
			out=$(run "$p" "$logs" /bin/sh -c "date +start_ns=%s%N; exec $bin checkpt -r $img")
			if ! grep -q ' ok=1' <<<"$out"; then
				echo "thaw of $img failed: $out" >&2
				exit 1
			fi
			start=$(sed -n 's/^start_ns=//p' <<<"$out")
			f=$(sed -n 's/.*first_ns=\([0-9]*\).*/\1/p' <<<"$out")
			first+=("$(awk -v a="$f" -v b="$start" 'BEGIN {print (a - b) / 1e6}')")
			cold+=("$(awk -v a="$f" -v b="$host" 'BEGIN {print (a - b) / 1e6}')")
			touch+=("$(sed -n 's/.*touch_ms=\([0-9.]*\).*/\1/p' <<<"$out")")
			d=$(grep -h "ckpt: thawed" "$logs"/*boot* | sed -n 's/.*) in \([^:]*\):.*/\1/p' | head -1)
			sentry+=("$(ms "$d")")
		done
		rss=$(sed -n 's/.*rss_before_mib=\([0-9]*\) rss_after_mib=\([0-9]*\).*/\1 → \2 MiB/p' <<<"$out")
		printf '| %s | %d MiB | %d MiB | %s | %s | %s | %s | %s |\n' "$p" "$s" $(($(stat -c %s "$img") >> 20)) \
			"$(minmed "${sentry[@]}")" "$(minmed "${first[@]}")" "$(minmed "${cold[@]}")" "$(minmed "${touch[@]}")" "$rss"
		rm -f "$img"
	done
done
