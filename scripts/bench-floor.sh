#!/usr/bin/env bash
# Measures how far bgflow is from the least a supervisor can do on `bench-run.sh`'s DAG of
# `touch` steps (layers of 100, two slots): scripts/spawn-floor.c starts each `touch` with
# clone(CLONE_VM | CLONE_VFORK) and waits, nothing else. Each is timed against `make -j2`
# in alternating rounds, with the CPU time each run took in all (the tool and its
# children, `/usr/bin/time`): on a 2-CPU machine running -j2 `touch` steps the CPUs are
# nearly always busy, so a tool's wall time follows the CPU time it adds to its steps'.
# Also timed: the floor with the next child made ahead (waiting on a futex for a free
# slot), the idea of taking `clone` off the path from one step's exit to the next start;
# and the floor without CLONE_VFORK (the child on its own stack, the parent not put to
# sleep until the child's `execve` and woken again), the idea of saving that wake-up;
# and the floor waiting for each exit as bgflow does (a pidfd in an epoll set, then
# `waitpid`) instead of in `wait`, which the kernel wakes on the CPU the exiting child
# frees: whether the way a supervisor is woken costs wall time.
#
# Usage: scripts/bench-floor.sh [BGFLOW_BINARY]
#   BGFLOW_BINARY  default: target/release/bgflow, built with `cargo build --release --locked`
# Environment:
#   STEPS   steps in the DAG (default 1000; layers of 100, so a multiple of 100)
#   RUNS    alternating rounds per pair (default 11)
#   TMPDIR  where the DAG runs (default /tmp)
#
# Needs: gcc, make, python3, /usr/bin/time. On Debian:
#   apt-get update && apt-get install -y gcc make time
# Speed is measured here, never asserted in the test suite (STYLE.md).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
width=100
steps=$(( ${STEPS:-1000} / width * width ))
runs=${RUNS:-11}

bench_name=bench-floor
# shellcheck source=scripts/bench-lib.sh
source "$repo/scripts/bench-lib.sh"
need gcc gcc
need make make
need python3 python3
need_gnu_time
pick_binary "$@"

work=$(mktemp -d "${TMPDIR:-/tmp}/bgflow-bench-floor.XXXXXX")
trap 'rm -rf "$work"' EXIT
gcc -O2 -Wall -o "$work/spawn-floor" "$repo/scripts/spawn-floor.c"

dir="$work/dag"
mkdir -p "$dir"
touch_dag "$dir" $((steps / width)) "$width"

# Two commands in alternating rounds, each after its preparation. Prints the median ratio of
# their wall times with its 95% bootstrap interval, and each one's mean wall and CPU time.
paired() {
  local prep1=$1 cmd1=$2 prep2=$3 cmd2=$4
  (cd "$dir" && python3 - "$runs" "$prep1" "$cmd1" "$prep2" "$cmd2" <<'PY'
import random, statistics, subprocess, sys
runs, prep1, cmd1, prep2, cmd2 = int(sys.argv[1]), *sys.argv[2:]
def timed(prep, cmd):
    subprocess.run(prep, shell=True, check=True)
    r = subprocess.run(["/usr/bin/time", "-f", "%e %U %S", "sh", "-c", cmd],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"bench-floor: `{cmd}` exited {r.returncode}: {r.stderr[-500:]}")
    wall, user, sys_ = map(float, r.stderr.split()[-3:])
    return wall, user + sys_
a, b = [], []
for i in range(runs):
    pair = [(prep1, cmd1, a), (prep2, cmd2, b)]
    for prep, cmd, into in (pair if i % 2 == 0 else pair[::-1]):
        into.append(timed(prep, cmd))
ratios = [x[0] / y[0] for x, y in zip(a, b)]
rng = random.Random(1)
meds = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(2000))
mean = lambda v, k: statistics.mean(x[k] for x in v)
print("%.2fx (%.2f-%.2f) | %.3f s, CPU %.3f s | %.3f s, CPU %.3f s" % (
    statistics.median(ratios), meds[50], meds[1949], mean(a, 0), mean(a, 1), mean(b, 0), mean(b, 1)))
PY
  )
}

echo "bench-floor: $(nproc) CPUs; $steps touch steps; binary $bin ($("$bin" --version)); $runs rounds per pair" >&2
mk_prep="rm -rf out && mkdir out"
mk="make -j2 -s -f Makefile all"
echo "| against make -j2 | wall ratio (95% CI) | its wall, CPU | make's wall, CPU |"
echo "|---|---|---|---|"
echo "| spawn-floor vfork | $(paired "$mk_prep" "'$work/spawn-floor' vfork $steps $width" "$mk_prep" "$mk") |"
echo "| spawn-floor premade | $(paired "$mk_prep" "'$work/spawn-floor' premade $steps $width" "$mk_prep" "$mk") |"
echo "| spawn-floor shared | $(paired "$mk_prep" "'$work/spawn-floor' shared $steps $width" "$mk_prep" "$mk") |"
echo "| spawn-floor epoll | $(paired "$mk_prep" "'$work/spawn-floor' epoll $steps $width" "$mk_prep" "$mk") |"
echo "| bgflow run -j2 | $(paired "rm -rf out .bgflow" "'$bin' run -j2 --progress never bench.toml" "$mk_prep" "$mk") |"
