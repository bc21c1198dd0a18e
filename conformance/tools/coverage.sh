#!/bin/sh
# Line coverage of sentry/src reached by the conformance corpus and by random scenarios.
#
#   conformance/tools/coverage.sh [SEED...]      (default: seed 1)
#
# Builds `conformance` with `-C instrument-coverage` (debug) in $COV_TARGET
# (default /var/tmp/cov-conformance/target), plays on the sentry model only:
#   - the corpus (conformance/scenarios);
#   - for each SEED, the $N (default 2000) random scenarios of `--random N --seed SEED`,
#     generated first with `--print` and then played as files, so that the lines counted
#     are those of the scenarios compared with Linux (generation also plays the steps it
#     then drops as races, which would count otherwise);
# and prints, for `sentry/src` without the host-mode files (`host.rs`,
# `delivery_mode.rs`: signals from outside, not reachable from scenarios):
#   - the percentage of lines hit by the corpus and by each seed's random scenarios;
#   - the lines hit by the corpus that none of the random runs hits (file:line text);
#   - with UNCOVERED=1, every line no random run hits.
# The lcov files stay in $COV_DIR (default /var/tmp/cov-conformance) for finer questions.
# Uses the llvm-profdata and llvm-cov of the active Rust toolchain (rustup component
# llvm-tools), whose profile format matches rustc's.
set -eu
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
COV_DIR=${COV_DIR:-/var/tmp/cov-conformance}
COV_TARGET=${COV_TARGET:-$COV_DIR/target}
N=${N:-2000}
[ $# -gt 0 ] || set -- 1

HOST=$(rustc -vV | sed -n 's/^host: //p')
TOOLS=$(rustc --print sysroot)/lib/rustlib/$HOST/bin
PROFDATA=$TOOLS/llvm-profdata
LLVMCOV=$TOOLS/llvm-cov
[ -x "$PROFDATA" ] || { echo "missing $PROFDATA: rustup component add llvm-tools" >&2; exit 1; }

mkdir -p "$COV_DIR"
(cd "$ROOT" && RUSTFLAGS="-C instrument-coverage" CARGO_TARGET_DIR="$COV_TARGET" \
    cargo build -q -p sandbox-conformance --bin conformance)
BIN=$COV_TARGET/debug/conformance

# play NAME ARGS...: runs `conformance --sentry-only ARGS`, writes $COV_DIR/NAME.lcov.
play() {
    name=$1
    shift
    rm -f "$COV_DIR/$name"-*.profraw
    LLVM_PROFILE_FILE="$COV_DIR/$name-%p.profraw" "$BIN" --sentry-only "$@" >/dev/null
    "$PROFDATA" merge -sparse "$COV_DIR/$name"-*.profraw -o "$COV_DIR/$name.profdata"
    rm -f "$COV_DIR/$name"-*.profraw
    "$LLVMCOV" export -format=lcov "$BIN" -instr-profile="$COV_DIR/$name.profdata" \
        --ignore-filename-regex='(registry|rustc|/library/|conformance/)' >"$COV_DIR/$name.lcov"
}

play corpus
RUNS=""
for seed in "$@"; do
    dir=$COV_DIR/random-$seed
    rm -rf "$dir"
    mkdir -p "$dir"
    LLVM_PROFILE_FILE=/dev/null "$BIN" --no-corpus --random "$N" --seed "$seed" --print |
        awk -v dir="$dir" '/^scenario /{ f = sprintf("%s/%05d.scn", dir, ++n) } { print > f }'
    play "random-$seed" "$dir"
    RUNS="$RUNS random-$seed"
done

# The lines of sentry/src (not host-mode code) as "file:line count", one lcov per run.
lines() {
    awk -F'[:,]' '
        /^SF:/ { f = $2; sub(/.*\/sentry\/src\//, "", f); keep = ($2 ~ /\/sentry\/src\//) && f != "host.rs" && f != "delivery_mode.rs"; next }
        keep && /^DA:/ { c[f ":" $2] += $3 }
        END { for (k in c) print k, c[k] }
    ' "$COV_DIR/$1.lcov" | sort
}
percent() {
    lines "$1" | awk -v name="$1" '{ t++; if ($2 > 0) h++ } END { printf "%-16s %5d of %5d lines  %.1f%%\n", name, h, t, 100 * h / t }'
}

echo "sentry/src line coverage (host.rs and delivery_mode.rs left out):"
percent corpus
for r in $RUNS; do percent "$r"; done

# Lines hit by any random run, then the corpus-only ones and (UNCOVERED=1) all misses.
for r in $RUNS; do lines "$r"; done | awk '$2 > 0 { print $1 }' | sort -u >"$COV_DIR/random-hit"
lines corpus | awk '{ print $1 }' >"$COV_DIR/all-lines"
lines corpus | awk '$2 > 0 { print $1 }' >"$COV_DIR/corpus-hit"
show() {
    while IFS=: read -r f l; do
        printf '%s:%s\t%s\n' "$f" "$l" "$(sed -n "${l}p" "$ROOT/sentry/src/$f" | sed 's/^ *//')"
    done
}
echo
echo "Hit by the corpus, not by the random scenarios ($(comm -23 "$COV_DIR/corpus-hit" "$COV_DIR/random-hit" | wc -l) lines):"
comm -23 "$COV_DIR/corpus-hit" "$COV_DIR/random-hit" | sort -t: -k1,1 -k2,2n | show
if [ "${UNCOVERED:-0}" = 1 ]; then
    echo
    echo "Hit by no random scenario ($(comm -23 "$COV_DIR/all-lines" "$COV_DIR/random-hit" | wc -l) lines):"
    comm -23 "$COV_DIR/all-lines" "$COV_DIR/random-hit" | sort -t: -k1,1 -k2,2n | show
fi
