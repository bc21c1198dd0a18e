#!/usr/bin/env python3
"""Interleaved start-up of sandbox builds beside their peers and the bench's floor:
each round runs every command once, in turn, so that drifts of the machine hit them
alike; prints the median, first quartile and minimum wall time of each and its ratio
to `unshare --pid --fork true`.

    python3 cli/bench/peers_ab.py NAME=PATH [NAME=PATH ...] [-n RUNS]

The commands: `unshare --pid --fork true`, `unshare -pfmiun --mount-proc true`, bwrap
with the equivalent set-up (left out when not installed), the floor of
`loader_bench --bare-sandbox-overlay` (left out when target/release/examples/loader_bench
is not built), then `PATH run -- true` for every build, and `run --read-only -- true`
for the first. As root. Copy the builds into one directory first (see startup_ab.py)."""
import os
import shutil
import sys

from startup_ab import interleave, report

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "..", "..", "target", "release", "examples", "loader_bench")


def main(argv):
    runs = 200
    builds = []
    i = 0
    while i < len(argv):
        if argv[i] == "-n" and i + 1 < len(argv):
            runs = int(argv[i + 1])
            i += 2
        elif "=" in argv[i]:
            builds.append(tuple(argv[i].split("=", 1)))
            i += 1
        else:
            sys.exit(f"usage: {__doc__}")
    if not builds:
        sys.exit(f"usage: {__doc__}")
    cmds = [
        ("unshare --pid --fork", ["unshare", "--pid", "--fork", "true"]),
        ("unshare -pfmiun --mount-proc", ["unshare", "-pfmiun", "--mount-proc", "true"]),
    ]
    if shutil.which("bwrap"):
        cmds.append(("bwrap", ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "--proc",
                               "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "true"]))
    if os.path.isfile(BENCH):
        cmds.append(("floor, overlay root",
                     [os.path.abspath(BENCH), "--bare-sandbox-overlay", "/bin/true"]))
    for name, path in builds:
        cmds.append((name, [path, "run", "--", "true"]))
    cmds.append((builds[0][0] + " --read-only", [builds[0][1], "run", "--read-only", "--", "true"]))
    report(interleave(cmds, runs), [name for name, _ in cmds], "/ unshare", 30)


if __name__ == "__main__":
    main(sys.argv[1:])
