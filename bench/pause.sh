#!/bin/bash
# pause.sh: how long a checkpoint stops each thread of a running program (issue 11).
#
# bench/pause_guest.c dirties N MiB (every page non-zero) and runs THREADS (default 2) threads that
# read the clock every 100 us and record their gaps, first over a quiet window (the noise floor of
# the machine), then over a window at whose start a checkpoint is triggered, per mode:
#   self      the program's main thread calls sys_checkpoint(CKPT_FREEZE) on itself
#   other     a child process freezes it (sys_checkpoint(CKPT_FREEZE, fd, pid): what checkpt -c does)
#   signal    a child process sends it SIGCKPT and waits for the ckpt-file to appear
#   host      the host runs `runsc-ckpt kill CID SIGCKPT` and waits for the ckpt-file to appear
#   upstream  the host runs upstream `runsc checkpoint --leave-running` (whole-sandbox save)
# Each run prints one line:  size mode rep quiet stop0/stop1/... sentry total copy ratio idle (ms)
#   quiet     the noise floor: the longest gap a thread saw in a quiet interval as long as the
#             checkpoint (the median over such slices of the quiet window; the largest of the
#             threads'; 0: no gap of 2 ms or more). The longest gap of a window grows with its
#             length on this shared VM (4 ms in 1 s, 13-26 ms in 9 s with nothing happening), so a
#             stop is compared with the noise of an interval of the same length
#   stopN     thread N's longest gap that overlaps the checkpoint, from its trigger until the image
#             is complete (thread 0 is the main thread; in self mode it is the one in
#             sys_checkpoint); for upstream, whose completion the guest cannot see, the longest gap
#             of the window after the trigger
#   sentry    the sentry's own measure of how long the threads were stopped (its freeze log line:
#             capture + snapshot; the whole freeze when they stay stopped), not for upstream
#   total     the checkpoint until its image is complete: the call (self, other), until the
#             ckpt-file appeared (signal, host), the `runsc checkpoint` command (upstream)
#   copy      a plain host copy of the image to a new file on the same filesystem (cat, which uses
#             copy_file_range: one copy in the kernel), the page cache write limit for the same
#             bytes, made as soon as the checkpoint is complete while the guest's threads still
#             run: the same competition for the CPU as the image's write had.
#             It is the second of two copies made one after the other: on a VM whose free pages
#             go back to the host (free page reporting), a page-cache write into pages that have
#             been free for a while is several times slower than into pages freed a moment before,
#             and at 1 GiB and more the first copy after the image often took 10x as long as the
#             image's own write (docs/notes-pause.md, "Facts that bit"). The second reuses the
#             pages the first freed, as the image's write mostly does
#   first     the first of those two copies (kept to show how cold memory was)
#   ratio     total / copy of the same run
#   idle      the same copy again once the guest has exited (the machine's limit with nothing
#             else of ours running)
#   freeze    the sentry's own measure of the whole checkpoint (the total of its freeze log line;
#             "-" for upstream and without DEBUG): in host mode the total also holds the start of
#             the `kill` command and the wait for the file, ~20-30 ms here
# and at the end a table of medians per size and mode. The first and last lines also give what one
# copy-on-write copy costs on this host (bench/first_touch.c: copying 2 MiB into fresh memfd pages,
# and into the same pages again), because a thread's first write into a 2 MiB chunk after the
# snapshot makes gVisor copy that chunk, and on a VM the fresh pages' first touch can cost 10x the
# copy (0.9-1.2 ms on one day here, 6.5-7.4 ms on another): a thread's longest stop follows it.
# On a VM whose balloon reports free pages to the host (Linux free page reporting), a page-cache
# write into memory the host has taken back costs ~10x one into memory freed a moment before, and
# which of the two a write gets is the guest kernel's choice, not the writer's: the same 1 GiB
# image write took 0.4 s or 3 s from one run to the next, and so did a plain copy. The header line
# says whether reporting is on. PAGE_REPORTING=off turns it off for the run (the kernel's
# page_reporting_order set past the largest order; restored at the end), then touches most of the
# free memory once (bench/touch_free.c), so that every timed write gets memory the host has not
# taken back, as on a machine without a balloon (docs/notes-pause.md, "Free page reporting").
# Application huge pages: gVisor backs a sandbox's memory with 2 MiB pages when the host's
# transparent huge pages allow it for shared memory (shmem_enabled advise with defrag always, defer
# or never; or shmem_enabled always, within_size or force). Debian's default (never) gives 4 KiB
# pages, and then the image's writer spends ~55 ms a GiB making the sentry's page tables for what
# it writes, which the host copy does not do: a 1 GiB freeze was 1.4x the copy with 4 KiB pages,
# 1.0-1.1x with huge pages (docs/notes-pause.md, "Application huge pages"). The header line says
# which; APP_HUGE_PAGES=on sets shmem_enabled=advise (and defrag=defer if it was madvise) for the
# run, APP_HUGE_PAGES=off sets shmem_enabled=never; both are restored at the end.
# The filesystem's dirty pages are written back (sync -f) before each checkpoint and before each
# copy, so that neither pays for the writeback of what the other wrote (without it the copy made
# right after a 1 GiB image took 10-20 s while the host's writeback ran, against 1.2-1.7 s after
# upstream's slower save). Images go to BENCH_DIR on the host disk (`do -force-overlay=false`; host
# and upstream modes run a container with --overlay2=none).
#
# usage: bench/pause.sh [SIZES_MIB...]   (default 16 256 1024)
# env:   RUNSC_CKPT (default bin/runsc-ckpt), RUNSC_UPSTREAM (default bin/runsc-upstream, `make bench-bins`;
#        empty to skip), MODES (default "self other signal host upstream"), REPS (default 3),
#        THREADS (default 2), QUIET_MS (default 4000), DEBUG (default 1; 0 runs the sandboxes without
#        --debug: the sentry column is then "-"), PAUSE_GAPS_MS (unset; N lists each gap of N ms or
#        more after the trigger, with its start, and the checkpoint's end, on stderr), FREEZE_LOG
#        (unset; a file to which each run's freeze log line is appended: its bytes per route, its
#        capture and total), PAGE_REPORTING (unset; off: see above), APP_HUGE_PAGES (unset; on
#        or off: see above), BENCH_DIR
#        (default /var/tmp/pause-bench: not under /tmp).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RUNSC_CKPT:-$here/bin/runsc-ckpt}
upstream=${RUNSC_UPSTREAM-$here/bin/runsc-upstream}
modes=(${MODES:-self other signal host upstream})
reps=${REPS:-3}
threads=${THREADS:-2}
quiet=${QUIET_MS:-4000}
debug=${DEBUG:-1}
dir=${BENCH_DIR:-/var/tmp/pause-bench}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(16 256 1024)

rm -rf "$dir" && mkdir -p "$dir"
# The kernel's free page reporting (see above): its order parameter, and what to restore at exit.
reporting=/sys/module/page_reporting/parameters/page_reporting_order
restore_order=""
# The host's transparent huge pages for shared memory (see "application huge pages" above), and
# what to restore at exit.
thp=/sys/kernel/mm/transparent_hugepage
restore_shmem="" restore_defrag=""
cleanup() {
	rm -rf "$dir"
	[ -z "$restore_order" ] || echo "$restore_order" >"$reporting"
	[ -z "$restore_shmem" ] || echo "$restore_shmem" >"$thp/shmem_enabled"
	[ -z "$restore_defrag" ] || echo "$restore_defrag" >"$thp/defrag"
}
trap cleanup EXIT
guest="$dir/pause_guest"
gcc -static -O2 -Wall -Werror -I "$here/include" -o "$guest" "$here/bench/pause_guest.c" -pthread
toucher="$dir/first_touch"
gcc -O2 -Wall -Werror -o "$toucher" "$here/bench/first_touch.c"
ckptfile="$dir/pause_guest.ckpt" # the default ckpt-file %N.ckpt in the guest's cwd

# reporting_state: whether the VM reports free pages to its host, for the header line. An order
# past the largest the kernel has (10 on x86-64) reports nothing.
reporting_state() {
	if [ ! -r "$reporting" ]; then
		echo "no free page reporting"
	elif [ "$(cat "$reporting")" -gt 10 ]; then
		echo "free page reporting off"
	else
		echo "free page reporting ON (order $(cat "$reporting")): a write's speed depends on which free memory it gets"
	fi
}

# thp_setting FILE: the selected value of a sysfs choice ("always [madvise] never" -> madvise).
thp_setting() { sed -n 's/.*\[\(.*\)\].*/\1/p' "$1" 2>/dev/null; }

# huge_pages_on: whether the sentry backs application memory with huge pages, by gVisor's own rule
# (runsc/boot/loader.go, createMemoryFile): shmem_enabled always, within_size or force; or advise
# with a defrag setting that does not make a huge page's allocation compact memory in line
# (always, defer or never).
huge_pages_on() {
	case $(thp_setting "$thp/shmem_enabled")/$(thp_setting "$thp/defrag") in
	always/* | within_size/* | force/* | advise/always | advise/defer | advise/never) return 0 ;;
	esac
	return 1
}

# huge_pages_state: huge_pages_on and the settings behind it, for the header line.
huge_pages_state() {
	local on=off
	huge_pages_on && on=on
	echo "application huge pages $on (shmem_enabled=$(thp_setting "$thp/shmem_enabled"), defrag=$(thp_setting "$thp/defrag"))"
}

case ${APP_HUGE_PAGES:-} in
on)
	if ! huge_pages_on; then
		restore_shmem=$(thp_setting "$thp/shmem_enabled")
		restore_defrag=$(thp_setting "$thp/defrag")
		echo advise >"$thp/shmem_enabled"
		[[ $restore_defrag == @(always|defer|never) ]] || echo defer >"$thp/defrag"
	fi
	;;
off)
	if huge_pages_on; then
		restore_shmem=$(thp_setting "$thp/shmem_enabled")
		echo never >"$thp/shmem_enabled"
	fi
	;;
esac

if [ "${PAGE_REPORTING:-}" = off ] && [ -w "$reporting" ] && [ "$(cat "$reporting")" -le 10 ]; then
	restore_order=$(cat "$reporting")
	echo 11 >"$reporting"
	gcc -O2 -Wall -Werror -o "$dir/touch_free" "$here/bench/touch_free.c"
	avail=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
	echo "# free page reporting turned off; $("$dir/touch_free" $((avail - 2048)))" >&2
fi

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
ms() { awk '{printf "%.1f", $1/1000}'; }

# nap SECONDS: sleep without starting a process. The waits below poll while a checkpoint runs on
# the same 2 CPUs, and a `sleep` process every 2 ms took enough of them to slow host mode's freeze
# by ~25 ms a GiB (2026-12-05). A read with a timeout on a pipe nobody writes to waits in bash.
exec {nap_fd}<> <(:)
nap() { read -r -t "$1" -u "$nap_fd" _ || true; }

wait_file() { # path: wait until it exists (at most 120 s)
	for _ in $(seq 60000); do [ -e "$1" ] && return 0; nap 0.002; done
	echo "timed out waiting for $1" >&2; return 1
}

# go_ms DURATION: a Go duration (850µs, 1.5ms, 2.1s) in ms.
go_ms() { awk '{v=$1; if (v ~ /ms$/) {sub(/ms$/,"",v); printf "%.1f", v} else if (v ~ /µs$/) {sub(/µs$/,"",v); printf "%.1f", v/1000} else if (v ~ /ns$/) {printf "0.0"} else {sub(/s$/,"",v); printf "%.1f", v*1000}}'; }

# sentry_times LOGDIR: the sentry's own measures from its freeze log line, in ms: how long the
# process's threads were stopped ("threads paused"; the whole freeze when they stayed stopped),
# then the whole freeze ("total": in host mode, the total less the host command's start and the
# wait for the file). "- -" without the line.
sentry_times() {
	local line
	line=$(grep -rhoa 'paused [^,]*, total [^ ]*' "$1" 2>/dev/null | tail -1)
	[ -n "$line" ] || { echo "- -"; return; }
	local p t
	p=$(sed 's/paused \([^,]*\), total .*/\1/' <<<"$line")
	t=$(sed 's/.*, total //' <<<"$line")
	[ "$p" = "whole freeze" ] && p=$t
	echo "$(go_ms <<<"$p") $(go_ms <<<"$t")"
}

# wait_line TEXT FILE PID: wait until a line TEXT is in FILE, or PID has exited (status 1).
wait_line() {
	until grep -qx "$1" "$2" 2>/dev/null; do
		kill -0 "$3" 2>/dev/null || return 1
		nap 0.01
	done
}

# copy_ms IMAGE: the time of a plain copy of IMAGE to a new file of the same filesystem, in ms,
# after writing back the filesystem's dirty pages (so that the copy does not pay for the
# writeback of what came before).
copy_ms() {
	local t1 ms
	sync -f "$dir"
	t1=$(date +%s%N)
	cat "$1" >"$dir/copy"
	ms=$(( ($(date +%s%N) - t1) / 1000000 ))
	rm -f "$dir/copy"
	echo "$ms"
}

run_one() { # size mode rep
	local size=$1 mode=$2 rep=$3 root="/var/run/rc-pause-bench-$$" runsc=$bin
	[ "$mode" = upstream ] && runsc=$upstream
	# Long enough for the checkpoint and the copy made while the guest runs.
	local window=$(( 3000 + 10 * size ))
	local img="$dir/img" out="$dir/out" logs="$dir/logs/"
	rm -rf "$img" "$ckptfile" "$dir/copy" "$dir/bundle" "$logs"
	local pid total="" sentry="-" freeze="-" busy=- first=-
	# The guest's output of the run before must go before wait_line looks for ckpt_done in it: the
	# guest's redirection truncates it only once its subshell runs, and a stale ckpt_done made the
	# copies run before the image existed.
	rm -f "$out"
	sync -f "$dir"
	case $mode in
	self | other | signal)
		local arg=$img
		[ "$mode" = signal ] && arg=$ckptfile
		local dbg=()
		[ "$debug" = 1 ] && dbg=(--debug --debug-log="$logs")
		(cd "$dir" && exec "$runsc" --root "$root" --network=none "${dbg[@]}" do \
			-cwd="$dir" -force-overlay=false "$guest" "$size" "$threads" "$quiet" "$window" "$mode" "$arg" >"$out" 2>&1) &
		pid=$!
		[ "$mode" = signal ] && img=$ckptfile
		wait_line ckpt_done "$out" "$pid" && { first=$(copy_ms "$img"); busy=$(copy_ms "$img"); }
		wait "$pid" || { echo "guest failed:" >&2; cat "$out" >&2; exit 1; }
		;;
	host | upstream)
		# A container whose rootfs writes reach the host (--overlay2=none); the host triggers.
		local b="$dir/bundle" id="pb$$-$rep"
		mkdir -p "$b/rootfs"
		cp "$guest" "$b/rootfs/pause_guest"
		local done_arg=()
		[ "$mode" = host ] && done_arg=(/pause_guest.ckpt)
		(cd "$b" && "$runsc" spec -- /pause_guest "$size" "$threads" "$quiet" "$window" host /ready "${done_arg[@]}")
		sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"readonly": true/"readonly": false/' "$b/config.json"
		[ -z "${PAUSE_GAPS_MS:-}" ] || sed -i "s/\"TERM=xterm\"/\"TERM=xterm\", \"PAUSE_GAPS_MS=$PAUSE_GAPS_MS\"/" "$b/config.json"
		local dbg=()
		[ "$mode" = host ] && [ "$debug" = 1 ] && dbg=(--debug --debug-log="$logs")
		"$runsc" --root "$root" --network=none --overlay2=none "${dbg[@]}" run -bundle "$b" "$id" >"$out" 2>&1 </dev/null &
		pid=$!
		wait_file "$b/rootfs/ready"
		local t1
		t1=$(now_ms)
		if [ "$mode" = host ]; then
			"$runsc" --root "$root" kill "$id" SIGCKPT
			img="$b/rootfs/pause_guest.ckpt"
			wait_file "$img"
		else
			"$runsc" --root "$root" checkpoint --leave-running --image-path "$b/image" "$id" >/dev/null 2>&1
			img=$(ls -S "$b"/image/* | head -1)
		fi
		total=$(( $(now_ms) - t1 ))
		first=$(copy_ms "$img")
		busy=$(copy_ms "$img")
		wait "$pid" || { echo "container failed:" >&2; cat "$out" >&2; exit 1; }
		"$runsc" --root "$root" delete -force "$id" >/dev/null 2>&1 || true
		if mountpoint -q "$root/null-netns" 2>/dev/null; then umount "$root/null-netns"; fi
		;;
	esac
	rm -rf "$root"
	[ "$mode" = upstream ] || read -r sentry freeze <<<"$(sentry_times "$logs")"
	[ -n "${TIMING:-}" ] && { grep -rhoa "TIMING.*" "$logs" >&2 || true; }
	if [ -n "${FREEZE_LOG:-}" ] && [ -d "$logs" ]; then
		grep -rhoa "ckpt: froze .*" "$logs" | sed "s/^/$size $mode $rep /" >>"$FREEZE_LOG" || true
	fi
	[ -z "${PAUSE_GAPS_MS:-}" ] || { grep '^gap \|^ckpt_end_us=' "$out" | sed "s/^/# $size $mode $rep /" >&2 || true; }
	local qmax stops
	qmax=$(sed -n 's/^thread=[0-9]* quiet_us=\([0-9]*\).*/\1/p' "$out" | sort -n | tail -1 | ms)
	stops=$(sed -n 's/^thread=[0-9]* quiet_us=[0-9]* stop_us=\([0-9]*\) .*$/\1/p' "$out" | ms_each)
	[ -n "$stops" ] || { echo "guest failed:" >&2; cat "$out" >&2; exit 1; }
	[ -n "$total" ] || total=$(sed -n 's/^total_us=\([0-9]*\)$/\1/p' "$out" | ms)
	local idle ratio
	idle=$(copy_ms "$img")
	ratio=$(awk -v t="$total" -v c="$busy" 'BEGIN {if (c > 0) printf "%.2f", t / c; else print "-"}')
	echo "$size $mode $rep quiet=$qmax stops=$stops sentry=$sentry total=$total copy=$busy ratio=$ratio idle=$idle first=$first freeze=$freeze"
}
ms_each() { awk '{printf "%s%.1f", (NR>1?"/":""), $1/1000}'; }

echo "# $(date -u +%H:%M) UTC, load $(cut -d' ' -f1-3 /proc/loadavg), $(basename "$bin"), threads=$threads, 2 MiB copy: $("$toucher"), $(reporting_state), $(huge_pages_state)" >&2
results=()
for size in "${sizes[@]}"; do
	for mode in "${modes[@]}"; do
		[ "$mode" = upstream ] && [ -z "$upstream" ] && continue
		for rep in $(seq "$reps"); do
			line=$(run_one "$size" "$mode" "$rep")
			echo "$line" >&2
			results+=("$line")
		done
	done
done
echo "# done $(date -u +%H:%M) UTC, load $(cut -d' ' -f1-3 /proc/loadavg), 2 MiB copy: $("$toucher")" >&2

echo "| MiB | mode | noise floor ms | longest stop per thread ms | sentry pause ms | total ms | host copy ms | total / copy | idle copy ms | first copy ms | sentry freeze ms |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for size in "${sizes[@]}"; do
	for mode in "${modes[@]}"; do
		sel=$(printf '%s\n' "${results[@]}" | awk -v s="$size" -v m="$mode" '$1==s && $2==m')
		[ -n "$sel" ] || continue
		q=$(sed 's/.*quiet=\([^ ]*\).*/\1/' <<<"$sel" | median)
		st=""
		for i in $(seq "$threads"); do
			v=$(sed 's/.*stops=\([^ ]*\).*/\1/' <<<"$sel" | cut -d/ -f"$i" | median)
			st="$st${st:+ / }$v"
		done
		sp=$(sed 's/.*sentry=\([^ ]*\).*/\1/' <<<"$sel" | median)
		tot=$(sed 's/.*total=\([^ ]*\).*/\1/' <<<"$sel" | median)
		cp=$(sed 's/.*copy=\([^ ]*\).*/\1/' <<<"$sel" | median)
		ra=$(sed 's/.*ratio=\([^ ]*\).*/\1/' <<<"$sel" | median)
		id=$(sed 's/.*idle=\([^ ]*\).*/\1/' <<<"$sel" | median)
		fc=$(sed 's/.*first=\([^ ]*\).*/\1/' <<<"$sel" | median)
		fz=$(sed 's/.*freeze=\([^ ]*\).*/\1/' <<<"$sel" | median)
		echo "| $size | $mode | $q | $st | $sp | $tot | $cp | $ra | $id | $fc | $fz |"
	done
done
