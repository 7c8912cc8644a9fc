#!/usr/bin/env bash
# Measures `bgflow plan` on a generated 10,000-step workflow: wall time (hyperfine) and
# peak resident memory (/usr/bin/time -v), with and without --offline. Optionally compares
# `ninja -n` on an equivalent build.ninja.
#
# Usage: scripts/bench-plan.sh [BGFLOW_BINARY]
#   BGFLOW_BINARY  default: target/release/bgflow, built with `cargo build --release --locked`
# Environment:
#   LAYERS, WIDTH  shape of the graph (default 100 x 100 = 10,000 steps)
#   RUNS           hyperfine runs per case (default 20)
#   BENCH_STRICT=1 exit 1 when a figure misses its target (default: report only)
#
# Needs: hyperfine (Debian: `apt-get install -y hyperfine`), /usr/bin/time (package `time`),
# python3 (to read hyperfine's JSON). ninja (package `ninja-build`) is optional.
# Speed is measured here, never asserted in the test suite (STYLE.md).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
layers=${LAYERS:-100}
width=${WIDTH:-100}
runs=${RUNS:-20}
target_ms=120
target_mb=60

bench_name=bench-plan
# shellcheck source=scripts/bench-lib.sh
source "$repo/scripts/bench-lib.sh"
need hyperfine hyperfine
need python3 python3
need_gnu_time

pick_binary "$@"

work=$(mktemp -d "${TMPDIR:-/tmp}/bgflow-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The workflow: bench-run's layered DAG of `touch` steps (bench-lib.sh), with its build.ninja.
touch_dag "$work" "$layers" "$width"
steps=$((layers * width))

# Fail loudly if the workflow is not valid: timing a refusal would measure the wrong thing.
if ! "$bin" plan --offline "$work/bench.toml" >/dev/null 2>"$work/check.err"; then
  echo "bench-plan: the generated workflow is not valid:" >&2
  tail -n 20 "$work/check.err" >&2
  exit 1
fi
"$bin" plan "$work/bench.toml" >/dev/null 2>&1 || {
  echo "bench-plan: \`bgflow plan\` (not offline) refused the generated workflow" >&2
  exit 1
}

cases=("plan --offline" "plan")
cmds=("'$bin' plan --offline '$work/bench.toml'" "'$bin' plan '$work/bench.toml'")
have_ninja=0
if command -v ninja >/dev/null 2>&1; then
  have_ninja=1
  cases+=("ninja -n (reference)")
  cmds+=("ninja -n -C '$work'")
fi

echo "bench-plan: $steps steps ($layers layers x $width), $runs runs per case, $(nproc) CPUs" >&2
echo "bench-plan: binary $bin ($("$bin" --version))" >&2

rows=()
over=0
for i in "${!cases[@]}"; do
  name=${cases[$i]}
  cmd=${cmds[$i]}
  json="$work/h$i.json"
  # `ninja -n` never builds, so each of its runs does the same work.
  hyperfine --style none --warmup 3 --runs "$runs" --output null \
    --export-json "$json" --command-name "$name" "$cmd" >/dev/null
  read -r mean sd min < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print("%.1f %.1f %.1f" % (r["mean"] * 1000, r["stddev"] * 1000, r["min"] * 1000))' "$json")
  rss_kb=$(eval "/usr/bin/time -v $cmd" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}')
  rss_mb=$(python3 -c "print(f'{int(\"$rss_kb\")/1024:.1f}')")
  if [[ $name == ninja* ]]; then
    verdict="-"
  else
    verdict=$(python3 -c "print('ok' if $mean <= $target_ms and $rss_mb <= $target_mb else 'OVER')")
    [[ $verdict == ok ]] || over=1
  fi
  rows+=("$(printf '%-22s %10s %8s %9s %12s   %s' "$name" "$mean" "$sd" "$min" "$rss_mb" "$verdict")")
done

printf '\n%-22s %10s %8s %9s %12s   %s\n' "case" "mean ms" "± ms" "min ms" "peak RSS MB" "target (≤${target_ms} ms, ≤${target_mb} MB)"
printf '%s\n' "${rows[@]}"
[[ $have_ninja == 1 ]] || echo "(ninja not installed: apt-get install -y ninja-build for the reference row)"

if [[ $over == 1 && ${BENCH_STRICT:-0} == 1 ]]; then
  exit 1
fi
