#!/usr/bin/env bash
# Measures the run history's two speed targets:
#   (a) `bgflow list` and `bgflow list --json` on a state folder holding 10,000 finished
#       runs (target: ≤ 50 ms each). `status` (the active runs) and `list --limit 1000
#       --json` are shown beside them, without a target.
#   (b) how long `bgflow run -d` takes to return on a one-step workflow: validation, the
#       record, the supervisor's spawn (target: ≤ 100 ms). Before each timed call, the
#       previous run is waited for, so each call meets an idle machine.
#
# The 10,000 runs are made fast: one real run of a three-step workflow, then its rows
# (run, steps, events) are copied 9,999 times under new unique ids with python3's sqlite3,
# spread over the last 30 days, one in ten marked failed.
#
# Usage: scripts/bench-history.sh [BGFLOW_BINARY]
#   BGFLOW_BINARY  default: target/release/bgflow, built with `cargo build --release --locked`
# Environment:
#   RUNS_IN_HISTORY  finished runs in (a) (default 10000)
#   RUNS             hyperfine runs per case (default 30)
#   BENCH_STRICT=1   exit 1 when a figure misses its target (default: report only)
#
# Needs: hyperfine and python3. On Debian: apt-get update && apt-get install -y hyperfine
# Speed is measured here, never asserted in the test suite (STYLE.md).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
history=${RUNS_IN_HISTORY:-10000}
runs=${RUNS:-30}
list_target_ms=50
detach_target_ms=100

bench_name=bench-history
# shellcheck source=scripts/bench-lib.sh
source "$repo/scripts/bench-lib.sh"
need hyperfine hyperfine
need python3 python3

pick_binary "$@"

work=$(mktemp -d "${TMPDIR:-/tmp}/bgflow-bench-history.XXXXXX")
cleanup() {
  # Let the last detached run of (b) end before its folder goes.
  if [[ -f $work/idle.sh ]]; then
    sh "$work/idle.sh" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# No user config: only what this script sets.
export XDG_CONFIG_HOME=$work/xdg
unset BGFLOW_CONFIG BGFLOW_STATE_DIR

# hyperfine's mean, stddev, min and max in ms, from its JSON export.
stats_ms() {
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print("%.1f %.1f %.1f %.1f" % (r["mean"] * 1e3, (r["stddev"] or 0.0) * 1e3, r["min"] * 1e3, r["max"] * 1e3))' "$1"
}

# One hyperfine case (no shell in between: -N): prints "mean sd min max" in ms.
timed() {
  local name=$1 prepare=$2 json
  shift 2
  json="$work/$(echo "$name" | tr -c 'a-zA-Z0-9' _).json"
  local args=(--style none --runs "$runs" --warmup 3 -N --output null --export-json "$json" --command-name "$name")
  if [[ -n $prepare ]]; then
    args+=(--prepare "$prepare")
  fi
  hyperfine "${args[@]}" "$(printf '%q ' "$@")" >/dev/null
  stats_ms "$json"
}

verdict() { # value target
  python3 -c "print('ok' if $1 <= $2 else 'OVER')"
}

echo "bench-history: $(nproc) CPUs; binary $bin ($("$bin" --version)); $runs runs per case" >&2

# ---- (a) list on a big history ---------------------------------------------------------------
state="$work/history"
echo "bench-history: (a) one real run, then $((history - 1)) copies of its rows" >&2
seed_history "$work" "$state" "$history"
listed=$("$bin" --state-dir "$state" list --json --limit 100000 |
  python3 -c 'import json, sys; r = json.load(sys.stdin)["runs"]; print(len(r), sum(x["state"] in ("pending", "running") for x in r))')
read -r n_listed n_active <<<"$listed"
if [[ $n_listed != "$history" || $n_active != 0 ]]; then
  echo "bench-history: expected $history finished runs, bgflow lists $n_listed ($n_active active)" >&2
  exit 1
fi
db_mb=$(python3 -c "import os; print('%.1f' % (os.path.getsize('$state/bgflow.db') / 2**20))")

echo "bench-history: (a) list" >&2
read -r l_mean l_sd l_min l_max < <(timed "list" "" "$bin" --state-dir "$state" list)
echo "bench-history: (a) list --json" >&2
read -r j_mean j_sd j_min j_max < <(timed "list --json" "" "$bin" --state-dir "$state" list --json)
echo "bench-history: (a) status" >&2
read -r s_mean s_sd s_min s_max < <(timed "status" "" "$bin" --state-dir "$state" status)
echo "bench-history: (a) list --limit 1000 --json" >&2
read -r k_mean k_sd k_min k_max < <(timed "list 1000" "" "$bin" --state-dir "$state" list --limit 1000 --json)

# ---- (b) run -d return time -----------------------------------------------------------------
detach="$work/detach"
cat >"$work/flow/one.toml" <<'EOF'
[workflow]
name = "bench-detach"

[steps.only]
run = "true"
EOF
"$bin" -q --state-dir "$detach" run --progress never "$work/flow/one.toml" 2>/dev/null
# Before each call: wait until the previous detached run has ended (at most ~10 s).
cat >"$work/idle.sh" <<EOF
i=0
until "$bin" --state-dir "$detach" status --json | grep -q '"runs": \[\]'; do
  i=\$((i+1))
  if [ "\$i" -gt 200 ]; then echo "bench-history: a detached run did not end" >&2; exit 1; fi
  sleep 0.05
done
EOF
echo "bench-history: (b) run -d" >&2
read -r d_mean d_sd d_min d_max < <(timed "run -d" "sh $work/idle.sh" "$bin" -q --state-dir "$detach" run -d "$work/flow/one.toml")
sh "$work/idle.sh"
bad=$("$bin" --state-dir "$detach" list --json --limit 1000 |
  python3 -c 'import json, sys; r = json.load(sys.stdin)["runs"]; print(sum(x["state"] != "succeeded" for x in r), len(r))')
read -r d_bad d_total <<<"$bad"
if [[ $d_bad != 0 ]]; then
  echo "bench-history: $d_bad of $d_total detached runs did not succeed" >&2
  exit 1
fi

# ---- the table ------------------------------------------------------------------------------
over=0
row() { # name mean sd min max target
  local v="-"
  if [[ $6 != "-" ]]; then
    v=$(verdict "$2" "$6")
    [[ $v == ok ]] || over=1
    v="≤ $6 ms: $v"
  fi
  printf '%-34s %9s %8s %8s %8s   %s\n' "$1" "$2" "$3" "$4" "$5" "$v"
}
echo
echo "(a) a history of $history finished runs (bgflow.db: $db_mb MB); wall time in ms over $runs runs"
printf '%-34s %9s %8s %8s %8s   %s\n' "command" "mean" "sd" "min" "max" "target"
row "bgflow list" "$l_mean" "$l_sd" "$l_min" "$l_max" "$list_target_ms"
row "bgflow list --json" "$j_mean" "$j_sd" "$j_min" "$j_max" "$list_target_ms"
row "bgflow status (active runs)" "$s_mean" "$s_sd" "$s_min" "$s_max" "-"
row "bgflow list --limit 1000 --json" "$k_mean" "$k_sd" "$k_min" "$k_max" "-"
echo
echo "(b) \`bgflow run -d\` on a one-step workflow, until it returns ($d_total runs, all succeeded)"
printf '%-34s %9s %8s %8s %8s   %s\n' "command" "mean" "sd" "min" "max" "target"
row "bgflow run -d one.toml" "$d_mean" "$d_sd" "$d_min" "$d_max" "$detach_target_ms"

if [[ $over == 1 && ${BENCH_STRICT:-0} == 1 ]]; then
  exit 1
fi
