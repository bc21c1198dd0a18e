#!/usr/bin/env python3
"""Interleaved start-up A/B of sandbox builds: each round starts every build once, in
turn, so that drifts of the machine hit them alike; prints the median, first quartile
and minimum wall time of each and its ratio to the first.

    python3 cli/bench/startup_ab.py NAME=PATH NAME=PATH ... [-n RUNS] [-- ARGS...]

ARGS default to `run -- true`. Copy the binaries into one directory first: a freshly
linked binary started from where it was linked can be slower than a copy of it
(docs/PERFORMANCE.md, "Start-up work")."""
import os
import statistics
import subprocess
import sys
import time


def main(argv):
    runs = 150
    builds = []
    args = ["run", "--", "true"]
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-n":
            runs = int(argv[i + 1])
            i += 2
        elif a == "--":
            args = argv[i + 1:]
            break
        elif "=" in a:
            name, path = a.split("=", 1)
            builds.append((name, path))
            i += 1
        else:
            sys.exit(f"usage: {__doc__}")
    if not builds:
        sys.exit(f"usage: {__doc__}")
    commands = [(name, [path] + args) for name, path in builds]
    report(interleave(commands, runs), [name for name, _ in builds], "ratio", 12)


def interleave(commands, runs):
    """Runs each (name, argv) of `commands` once per round, in turn, for `runs` rounds;
    returns each name's wall times in ms, sorted."""
    times = {name: [] for name, _ in commands}
    with open(os.devnull, "w") as null:
        for _ in range(runs):
            for name, argv in commands:
                start = time.perf_counter()
                subprocess.run(argv, stdout=null, stderr=null, check=False)
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: sorted(t) for name, t in times.items()}


def report(times, names, ratio_label, width):
    """One line per name: median, first quartile, minimum, and the median's ratio to
    the first name's."""
    first = statistics.median(times[names[0]])
    for name in names:
        t = times[name]
        med = statistics.median(t)
        print(f"{name:{width}} median {med:.3f} ms  p25 {t[len(t) // 4]:.3f}  min {t[0]:.3f}  "
              f"{ratio_label} {med / first:.3f}")

if __name__ == "__main__":
    main(sys.argv[1:])
