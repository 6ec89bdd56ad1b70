#!/usr/bin/env bash
# The runsc-ckpt demo (`make demo`): a static C program counts to 10 inside a runsc-ckpt sandbox,
# freezes itself into an ELF core image at 5, counts on and is killed at 7; a second, new sandbox
# thaws the image with the checkpt tool (the same runsc-ckpt binary) and the program finishes its
# count from 6.
set -euo pipefail

# Overridable for the integration test (test/demo_test.go): binary, scratch dir (not under /tmp),
# runsc state root, platform.
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${RUNSC_CKPT:-$root/bin/runsc-ckpt}
work=${DEMO_DIR:-$root/bin/demo}
state=${DEMO_STATE:-/var/run/runsc-ckpt-demo}
platform=${PLATFORM:-systrap}

[ -x "$bin" ] || { echo "demo: $bin missing; run make first" >&2; exit 1; }
mkdir -p "$work" "$state"
rm -f "$work/counter.ckpt"
gcc -static -O1 -I "$root/include" -o "$work/counter" "$root/demo/counter.c"

# Output goes through cat: runsc do must not get a terminal. -force-overlay=false lets the image
# reach the host directory.
run() { "$bin" --root="$state" --network=none --platform="$platform" do -force-overlay=false -cwd="$work" "$@" </dev/null 2>&1 | cat; }

echo "== 1. run counter in a sandbox ($platform); it freezes itself at i=5 and is killed at i=7"
status=0
run "$work/counter" 10 || status=$?
echo "(the sandbox ended with status $status: the process was killed)"
[ "$status" -eq 137 ] || { echo "demo: expected the counter to die of SIGKILL (137), got $status" >&2; exit 1; }
[ -s "$work/counter.ckpt" ] || { echo "demo: no image was written" >&2; exit 1; }
echo
echo "== 2. the image is an ELF core file (readelf), and runsc-ckpt inspect describes it"
readelf -h "$work/counter.ckpt" | grep -E 'Type:|Machine:'
"$bin" inspect "$work/counter.ckpt" >"$work/inspect.txt"
sed -n '1,4p' "$work/inspect.txt"
echo
echo "== 3. thaw it in a new sandbox: checkpt -r counter.ckpt"
run "$bin" checkpt -r counter.ckpt
