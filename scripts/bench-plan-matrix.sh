#!/usr/bin/env bash
# Measures `bgflow plan --offline` on a matrix workflow against the same steps written out
# (issue 20): STEPS steps, each with a VALUES-value matrix (default 100 x 100 = 10,000
# instances), every instance reading the output of the same instance of the step before;
# and STEPS x VALUES steps written out with the same commands, inputs and outputs. The
# target is a ratio (matrix / written out) of at most 1.5.
#
# Usage: scripts/bench-plan-matrix.sh [BGFLOW_BINARY]
#   BGFLOW_BINARY  default: target/release/bgflow, built with `cargo build --release --locked`
# Environment:
#   STEPS, VALUES  shape (default 100 x 100)
#   RUNS           timed runs of each workflow, alternating (default 10)
#   BENCH_STRICT=1 exit 1 when the ratio misses its target (default: report only)
#
# Needs: python3 only (times come from wait4's rusage and a monotonic clock).
# Speed is measured here, never asserted in the test suite (STYLE.md).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
steps=${STEPS:-100}
values=${VALUES:-100}
runs=${RUNS:-10}
target=1.5

bench_name=bench-plan-matrix
# shellcheck source=scripts/bench-lib.sh
source "$repo/scripts/bench-lib.sh"
need python3 python3
pick_binary "$@"

work=$(mktemp -d "${TMPDIR:-/tmp}/bgflow-bench-matrix.XXXXXX")
trap 'rm -rf "$work"' EXIT

python3 - "$work" "$steps" "$values" <<'PY'
import sys
work, steps, values = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
matrix = ['[workflow]', 'name = "bench-matrix"', '']
flat = ['[workflow]', 'name = "bench-flat"', '']
listed = ", ".join(f'"{v}"' for v in range(values))
for s in range(steps):
    matrix.append(f"[steps.s_{s}]")
    matrix.append(f"matrix = {{ v = [{listed}] }}")
    matrix.append(f'run = "touch out/{s}_{{{{ matrix.v }}}}.txt"')
    if s > 0:
        matrix.append(f'inputs = ["out/{s - 1}_{{{{ matrix.v }}}}.txt"]')
    matrix.append(f'outputs = ["out/{s}_{{{{ matrix.v }}}}.txt"]')
    matrix.append("")
    for v in range(values):
        flat.append(f"[steps.s_{s}_{v}]")
        flat.append(f'run = "touch out/{s}_{v}.txt"')
        if s > 0:
            flat.append(f'inputs = ["out/{s - 1}_{v}.txt"]')
        flat.append(f'outputs = ["out/{s}_{v}.txt"]')
        flat.append("")
open(f"{work}/matrix.toml", "w").write("\n".join(matrix))
open(f"{work}/flat.toml", "w").write("\n".join(flat))
PY

for w in matrix flat; do
  if ! "$bin" plan --offline "$work/$w.toml" >"$work/$w.out" 2>"$work/$w.err"; then
    echo "$bench_name: the generated $w workflow is not valid:" >&2
    tail -n 20 "$work/$w.err" >&2
    exit 1
  fi
done
# Both plans hold the same steps: compare the instance count and the number of waves.
python3 - "$work" "$((steps * values))" <<'PY' || exit 1
import re, sys
work, want = sys.argv[1], int(sys.argv[2])
for w in ("matrix", "flat"):
    head = open(f"{work}/{w}.out").readline()
    m = re.search(r"(\d+) steps in (\d+) waves", head)
    if not m or int(m.group(1)) != want:
        sys.exit(f"bench-plan-matrix: {w} plans {head.strip()!r}, expected {want} steps")
PY

echo "$bench_name: $steps steps x $values values = $((steps * values)) instances; $runs runs each, alternating; $(nproc) CPUs" >&2
echo "$bench_name: binary $bin ($("$bin" --version))" >&2

python3 - "$bin" "$work" "$runs" "$target" "${BENCH_STRICT:-0}" <<'PY'
import os, statistics, subprocess, sys, time
bin, work, runs, target, strict = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1"

def once(name):
    start = time.monotonic()
    p = subprocess.Popen([bin, "plan", "--offline", f"{work}/{name}.toml"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    if status != 0:
        sys.exit(f"bench-plan-matrix: plan of {name} failed ({status})")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024

times = {"matrix": [], "flat": []}
for name in times:  # warm-up
    once(name)
for _ in range(runs):
    for name in times:
        times[name].append(once(name))

def row(name):
    wall = [t[0] * 1000 for t in times[name]]
    cpu = [t[1] * 1000 for t in times[name]]
    rss = max(t[2] for t in times[name])
    return statistics.median(wall), min(wall), statistics.median(cpu), rss

print(f"\n{'workflow':<24} {'median ms':>10} {'min ms':>8} {'CPU ms':>8} {'peak RSS MB':>12}")
rows = {}
for name, label in (("flat", "written out"), ("matrix", "matrix")):
    rows[name] = row(name)
    w, lo, c, r = rows[name]
    print(f"{label:<24} {w:>10.1f} {lo:>8.1f} {c:>8.1f} {r:>12.1f}")
ratio = rows["matrix"][0] / rows["flat"][0]
cpu_ratio = rows["matrix"][2] / rows["flat"][2]
verdict = "ok" if ratio <= target else "OVER"
print(f"\nratio matrix / written out: {ratio:.2f} wall (median), {cpu_ratio:.2f} CPU   target <= {target}: {verdict}")
if strict and verdict != "ok":
    sys.exit(1)
PY
