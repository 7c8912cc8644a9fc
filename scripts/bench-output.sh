#!/usr/bin/env bash
# Measures output matching on one huge line (issue 19): a step `cat`s a file holding one
# line of BIG bytes with its marker at the very end, (a) with no pattern, (b) with a
# `fail_on` literal, (c) with a `progress` regex with named groups, (d) with a
# `ready = { log }` probe on a service, beside `cat FILE > LOG` alone. Prints bgflow's wall
# time, CPU time (bgflow and the step), throughput and peak RSS per case, and checks that
# each case saw its marker.
#
# Usage: scripts/bench-output.sh [BGFLOW_BINARY]
#   BGFLOW_BINARY  default: target/release/bgflow, built with `cargo build --release --locked`
# Environment:
#   BIG            bytes in the line (default 1000000000)
#   RUNS           runs per case; the median run is shown (default 3)
#   TMPDIR         where the workflows run (default /tmp)
#
# Needs: /usr/bin/time (apt-get install -y time). Speed is measured here, never asserted in
# the test suite (STYLE.md).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
big=${BIG:-1000000000}
runs=${RUNS:-3}

bench_name=bench-output
# shellcheck source=scripts/bench-lib.sh
source "$repo/scripts/bench-lib.sh"
need_gnu_time

pick_binary "$@"

work=$(mktemp -d "${TMPDIR:-/tmp}/bgflow-bench-output.XXXXXX")
trap 'rm -rf "$work"' EXIT

marker='FATAL 7/9: "status": "ready"}'
head -c $((big - ${#marker})) /dev/zero | tr '\0' x >"$work/line"
printf '%s\n' "$marker" >>"$work/line"

# case NAME BODY: a workflow whose step `big` (BODY: TOML keys) cats the line.
case_flow() {
  local name=$1 body=$2
  mkdir -p "$work/$name"
  cat >"$work/$name/bgflow.toml" <<EOF
[workflow]
name = "$name"
[steps.big]
$body
EOF
}

case_flow plain 'run = "cat ../line"'
case_flow fail_on $'run = "cat ../line"\nfail_on = [\'FATAL\']'
case_flow progress $'run = "cat ../line"\nprogress = \'(?P<current>\\d+)/(?P<total>\\d+): (?P<message>.*)$\''
case_flow ready_log $'kind = "service"\nrun = "cat ../line; exec sleep 600"\nready = { log = \'"status": "ready"\\}$\', timeout = "10m" }\n[steps.after]\nneeds = ["big"]\nrun = "true"'

# RUNS timed runs (the page cache and the other users of this machine make one run's wall
# time move by 4x): prints the median run's "seconds cpu_seconds peak_rss_mb".
timed() {
  local dir=$1 i
  shift
  for ((i = 0; i < runs; i++)); do
    (cd "$dir" && rm -rf .bgflow && /usr/bin/time -f '%e %U %S %M' "$@" 2>&1 >/dev/null | tail -1)
  done | sort -g | awk '{l[NR] = $0} END {split(l[int((NR + 1) / 2)], f, " "); printf "%s %.2f %.1f\n", f[1], f[2] + f[3], f[4] / 1024}'
}

# What the run's summary.json says of the case: the expected outcome, or WRONG.
outcome() {
  python3 - "$1" "$2" <<'PY'
import glob, json, sys
name, dir = sys.argv[1], sys.argv[2]
summary = json.load(open(glob.glob(dir + "/.bgflow/runs/*/summary.json")[0]))
steps = {s["name"]: s for s in summary["steps"]}
big = steps["big"]
if name == "plain":
    ok = big["state"] == "succeeded"
elif name == "fail_on":
    ok = "fail_on pattern" in big.get("reason", "")
elif name == "progress":
    ok = big.get("progress", {}).get("current") == 7
else:
    ok = steps["after"]["state"] == "succeeded"
print({"plain": "succeeded", "fail_on": "fail_on matched", "progress": "progress 7/9",
       "ready_log": "ready"}[name] if ok else "WRONG: " + json.dumps(big)[:300])
PY
}

mbps() { awk -v b="$big" -v s="$1" 'BEGIN {printf "%.0f", (s > 0 ? b / 1e6 / s : 0)}'; }

read -r base_s base_cpu base_mb < <(timed "$work" sh -c 'cat line > copy; rm copy')
printf '%-10s %8s %8s %8s %12s  %s\n' case seconds "CPU s" "MB/s" "peak RSS MB" "outcome"
printf '%-10s %8s %8s %8s %12s  %s\n' "cat>file" "$base_s" "$base_cpu" "$(mbps "$base_s")" "$base_mb" "-"
for name in plain fail_on progress ready_log; do
  dir=$work/$name
  read -r s cpu mb < <(timed "$dir" "$bin" --color never run bgflow.toml --progress never || true)
  printf '%-10s %8s %8s %8s %12s  %s\n' "$name" "$s" "$cpu" "$(mbps "$s")" "$mb" "$(outcome "$name" "$dir")"
done
