#!/usr/bin/env python3
"""trace_gaps.py: where a sandbox's guest threads waited, from a Go execution trace of its sentry.

Input: the text of `go tool trace -d=parsed FILE` (a trace taken with `runsc-ckpt debug --trace`).
The guest threads of a program that makes system calls all the time (bench/pause_guest.c sleeps
100 us between clock reads) are the task goroutines with the most state transitions; THREADS of
them are taken. For each, every interval of at least MIN_MS between two of its transitions is
printed with the state it was in (waiting, runnable, in a system call), the stack it stopped at and
the goroutine and stack that made it runnable again. Then the runtime's own ranges (garbage
collection, stop-the-world) and the sentry's task log lines. Times are milliseconds from the
trace's start, and the wall-clock time of its start is printed, to match the guest's own gaps.

usage: go tool trace -d=parsed FILE | bench/trace_gaps.py [MIN_MS [THREADS]]
"""
import collections
import re
import sys

EVENT = re.compile(r'M=(-?\d+) P=(-?\d+) G=(-?\d+) (\w+) Time=(\d+)(.*)')
TRANSITION = re.compile(r'GoID=(\d+) (\S+)->(\S+)(?: Reason="([^"]*)")?')


def frames(stack, n=4):
    """The first n frames of a stack, package paths dropped."""
    return ' < '.join(f.split('/')[-1] for f in stack[:n])


def main():
    min_ms = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    nthreads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    events, base, wall = [], None, ''
    cur = None
    for line in sys.stdin:
        if line.startswith('M='):
            m = EVENT.match(line)
            cur = None
            if not m:
                continue
            if m.group(4) == 'Sync' and base is None:
                mono = re.search(r'Mono=(\d+)', line)
                if mono:
                    base = int(mono.group(1))
                    wall = re.search(r'Wall=(\S+)', line).group(1)
            cur = [int(m.group(5)), int(m.group(3)), m.group(4), m.group(6).strip(), []]
            events.append(cur)
        elif cur is not None and line.startswith('\t') and not line.startswith('\t\t'):
            if len(cur[4]) < 6:
                cur[4].append(line.strip().split(' @')[0])
    if base is None:
        sys.exit('trace_gaps: no Sync event with a Mono time: is this `go tool trace -d=parsed` output?')
    ms = lambda t: (t - base) / 1e6
    # Goroutine state transitions: (time, goroutine that made it, match of TRANSITION, stack).
    transitions = []
    for t, g, kind, rest, stack in events:
        m = TRANSITION.match(rest) if kind == 'StateTransition' else None
        if m:
            transitions.append((t, g, m, stack))
    count = collections.Counter(int(m.group(1)) for _, _, m, _ in transitions)
    threads = [g for g, _ in count.most_common(nthreads)]
    print('trace start %s; guest task goroutines %s (most transitions)' % (wall, threads))
    last = {}
    for t, g, m, stack in transitions:
        gid = int(m.group(1))
        if gid not in threads:
            continue
        if gid in last and ms(t) - last[gid][0] >= min_ms:
            since, state, where = last[gid]
            print('%10.3f G%d %.3f ms %s at [%s]; then %s->%s by G%d [%s]' % (
                since, gid, ms(t) - since, state, where, m.group(2), m.group(3), g, frames(stack)))
        last[gid] = (ms(t), m.group(3) + ((' ' + m.group(4)) if m.group(4) else ''), frames(stack))
    for t, g, kind, rest, stack in events:
        if kind in ('RangeBegin', 'RangeEnd') or (kind == 'Log' and 'Category="task"' in rest):
            print('%10.3f %s %s [%s]' % (ms(t), kind, re.sub(r' Scope=.*| Attributes=.*', '', rest), frames(stack, 3)))


if __name__ == '__main__':
    main()
