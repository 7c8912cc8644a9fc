#!/usr/bin/env bash
# Measures `bgflow run`: (a) scheduling overhead on layered DAGs of `touch` steps, beside
# `ninja -j2` on an equivalent build.ninja and `make -j2` on an equivalent Makefile, with
# bgflow's peak RSS as the step count grows. bgflow is timed against make three times:
# with the containment it picks here (`auto`: a cgroup v2 leaf per step where one can be
# made), with `containment = "process-group"` (issue 18: containment must not cost the hot
# path), and as a rebuild is usually run, the outputs deleted but the history kept.
# A step is `run = "touch out/L_S"`, which bgflow starts without a shell (plain words,
# docs/manifest.md); the "via sh" column times the same DAG written as
# `run = ["sh", "-c", "touch out/L_S"]`, the very processes ninja starts, so that it shows
# the executor alone against ninja's (informational: no target);
# (b) a step printing 1 GiB, beside the same command redirected to a file, with bgflow's
# peak RSS (DESIGN.md §5.7: memory stays flat however much a step prints).
#
# Usage: scripts/bench-run.sh [BGFLOW_BINARY]
#   BGFLOW_BINARY  default: target/release/bgflow, built with `cargo build --release --locked`
# Environment:
#   SIZES          step counts for (a) (default "1000 10000"; layers of WIDTH steps)
#   WIDTH          steps per layer (default 100)
#   RUNS           rounds per case (default 3); each round runs both commands of the case, in
#                  alternating order
#   BIG            bytes printed in (b), as `head -c` takes it (default 1G)
#   RSS_RUNS       runs whose median peak RSS is reported (default 5)
#   BENCH_STRICT=1 exit 1 when a figure misses its target (default: report only)
#   BASELINE       another bgflow binary (say, a build of an older commit) to time against
#                  BGFLOW_BINARY and against make on the same DAGs, in alternating rounds:
#                  what changed between the two, apart from the machine (no target). It
#                  must take the same workflow and flags.
#   TMPDIR         where the workflows run (default /tmp); TMPDIR=/dev/shm measures the
#                  tools without the file system's noise (see docs/architecture.md)
#
# Needs: ninja, make, /usr/bin/time, python3. On Debian:
#   apt-get update && apt-get install -y ninja-build make time
# Speed is measured here, never asserted in the test suite (STYLE.md).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
sizes=${SIZES:-"1000 10000"}
width=${WIDTH:-100}
runs=${RUNS:-3}
big=${BIG:-1G}
rss_runs=${RSS_RUNS:-5}
# Targets.
dag_ratio_max=1.0    # bgflow wall / ninja wall
rss_growth_max=2.0   # peak RSS at the largest size / at the smallest
exec_rss_max_mb=5    # run's peak RSS minus plan's, at every size: the executor stays flat
big_ratio_max=1.2    # bgflow wall / plain redirect wall
big_rss_max_mb=30

bench_name=bench-run
# shellcheck source=scripts/bench-lib.sh
source "$repo/scripts/bench-lib.sh"
need ninja ninja-build
need make make
need python3 python3
need_gnu_time

pick_binary "$@"
if [[ -n ${BASELINE:-} && ! -x $BASELINE ]]; then
  echo "bench-run: BASELINE=$BASELINE is not an executable file" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bgflow-bench-run.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Peak RSS in MB of a command: the median of RSS_RUNS runs, each after its preparation
# (one run's figure moves by ±0.4 MB at 1,000 steps, with when the threads allocate).
peak_rss_mb() {
  local dir=$1 prepare=$2 cmd=$3 i
  for ((i = 0; i < rss_runs; i++)); do
    (cd "$dir" && eval "$prepare")
    (cd "$dir" && eval "/usr/bin/time -v $cmd" 2>&1 >/dev/null) |
      awk -F': ' '/Maximum resident set size/ {print $2 / 1024}'
  done | sort -g | awk '{v[NR] = $1} END {printf "%.1f", v[int((NR + 1) / 2)]}'
}

# Two commands timed in alternation, RUNS rounds (the first one first in odd rounds, second
# in even ones), each run after its preparation. Prints "mean1 sd1 mean2 sd2 ratio lo hi":
# ratio is the median over the rounds of run1/run2, and lo..hi its 95% bootstrap confidence
# interval (2,000 resamples of the rounds): how far the median could move on this machine.
# This machine's speed drifts by ±10% within a minute; timing the two in separate blocks
# (as hyperfine does) measures the drift as much as the tools, while a pair of neighbouring
# runs sees the same machine.
paired() {
  local dir=$1 prep1=$2 cmd1=$3 prep2=$4 cmd2=$5
  (cd "$dir" && python3 - "$runs" "$prep1" "$cmd1" "$prep2" "$cmd2" <<'PY'
import random, statistics, subprocess, sys, time
runs, prep1, cmd1, prep2, cmd2 = int(sys.argv[1]), *sys.argv[2:]
def timed(prep, cmd):
    subprocess.run(prep, shell=True, check=True)
    start = time.perf_counter()
    r = subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    took = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"bench-run: `{cmd}` exited {r.returncode}")
    return took
a, b = [], []
for i in range(runs):
    if i % 2 == 0:
        a.append(timed(prep1, cmd1)); b.append(timed(prep2, cmd2))
    else:
        b.append(timed(prep2, cmd2)); a.append(timed(prep1, cmd1))
sd = lambda x: statistics.stdev(x) if len(x) > 1 else 0.0
ratios = [x / y for x, y in zip(a, b)]
ratio = statistics.median(ratios)
rng = random.Random(1)
meds = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(2000))
lo, hi = meds[50], meds[1949]
print("%.3f %.3f %.3f %.3f %.2f %.2f %.2f" % (statistics.mean(a), sd(a), statistics.mean(b), sd(b), ratio, lo, hi))
PY
  )
}

echo "bench-run: $(nproc) CPUs; binary $bin ($("$bin" --version)); $runs runs per case" >&2

# ---- (a) layered DAGs of touch steps ------------------------------------------------------
dag_rows=()
make_rows=()
base_rows=()
rss_by_size=()
exec_by_size=()
over=0
for steps in $sizes; do
  layers=$((steps / width))
  dir="$work/dag$steps"
  mkdir -p "$dir"
  touch_dag "$dir" "$layers" "$width"
  # Fail loudly if bgflow refuses the workflow: timing a refusal would measure the wrong thing.
  if ! (cd "$dir" && "$bin" -q run -j2 --progress never --force bench.toml >/dev/null 2>"$work/check.err"); then
    echo "bench-run: \`bgflow run\` failed on the generated $steps-step workflow:" >&2
    tail -n 20 "$work/check.err" >&2
    exit 1
  fi
  if [[ -n ${BASELINE:-} ]]; then
    base_cmd="'$BASELINE' run -j2 --progress never bench.toml"
    if ! (cd "$dir" && rm -rf out .bgflow && eval "$base_cmd" >/dev/null 2>"$work/check.err"); then
      echo "bench-run: the baseline failed on the generated $steps-step workflow:" >&2
      tail -n 20 "$work/check.err" >&2
      exit 1
    fi
  fi
  # Every run starts from nothing: no outputs, no logs, no ninja log. bgflow runs as a
  # user runs it, checking each step for being up to date as ninja does (no `--force`).
  bg_prepare="rm -rf out .bgflow"
  bg_cmd="'$bin' run -j2 --progress never bench.toml"
  nj_prepare="rm -rf out .ninja_log .ninja_deps"
  nj_cmd="ninja -j2 -f build.ninja"
  # make does not make the output folder (ninja and bgflow do).
  mk_prepare="rm -rf out && mkdir out"
  mk_cmd="make -j2 -s -f Makefile all"
  printf 'containment = "process-group"\n' >"$dir/pg.toml"
  bg_pg_cmd="'$bin' --config pg.toml run -j2 --progress never bench.toml"
  mechanism=$(cd "$dir" && rm -rf out .bgflow && "$bin" -v run -j2 --progress never bench.toml 2>&1 >/dev/null | sed -n 's/.*containment: \([a-z-]*\).*/\1/p' | head -n1)
  echo "bench-run: (a) $steps steps: bgflow and ninja, $runs rounds" >&2
  read -r bg_mean bg_sd nj_mean nj_sd ratio ratio_lo ratio_hi < <(paired "$dir" "$bg_prepare" "$bg_cmd" "$nj_prepare" "$nj_cmd")
  echo "bench-run: (a) $steps steps via sh -c: bgflow and ninja, $runs rounds" >&2
  read -r _ _ _ _ sh_ratio sh_lo sh_hi < <(paired "$dir" "$bg_prepare" "'$bin' run -j2 --progress never bench-sh.toml" "$nj_prepare" "$nj_cmd")
  echo "bench-run: (a) $steps steps: bgflow ($mechanism) and make, $runs rounds" >&2
  read -r _ _ mk_mean mk_sd mk_ratio mk_lo mk_hi < <(paired "$dir" "$bg_prepare" "$bg_cmd" "$mk_prepare" "$mk_cmd")
  echo "bench-run: (a) $steps steps: bgflow (process-group) and make, $runs rounds" >&2
  read -r pg_mean pg_sd _ _ pg_ratio pg_lo pg_hi < <(paired "$dir" "$bg_prepare" "$bg_pg_cmd" "$mk_prepare" "$mk_cmd")
  # The usual rebuild: the outputs deleted, the history of the earlier runs kept (each
  # round adds a run to it). Steps with a recorded success are checked for being up to
  # date, which a first run skips.
  (cd "$dir" && rm -rf out .bgflow && eval "$bg_cmd" >/dev/null 2>&1)
  echo "bench-run: (a) $steps steps again, with the history kept: bgflow ($mechanism) and make, $runs rounds" >&2
  read -r kh_mean kh_sd _ _ kh_ratio kh_lo kh_hi < <(paired "$dir" "rm -rf out" "$bg_cmd" "$mk_prepare" "$mk_cmd")
  mk_verdict=$(python3 -c "print('ok' if max($mk_ratio, $pg_ratio, $kh_ratio) <= $dag_ratio_max else 'OVER')")
  [[ $mk_verdict == ok ]] || over=1
  make_rows+=("$(printf '%6s  %13s  %13s  %13s  %-13s  %18s  %18s  %18s   %s' \
    "$steps" "$mk_mean±$mk_sd" "$pg_mean±$pg_sd" "$kh_mean±$kh_sd" "$mechanism" "${mk_ratio}x ($mk_lo–$mk_hi)" "${pg_ratio}x ($pg_lo–$pg_hi)" "${kh_ratio}x ($kh_lo–$kh_hi)" "$mk_verdict")")
  if [[ -n ${BASELINE:-} ]]; then
    echo "bench-run: (a) $steps steps: bgflow and the baseline, $runs rounds" >&2
    read -r _ _ base_mean base_sd nb_ratio nb_lo nb_hi < <(paired "$dir" "$bg_prepare" "$bg_cmd" "$bg_prepare" "$base_cmd")
    echo "bench-run: (a) $steps steps: the baseline and make, $runs rounds" >&2
    read -r _ _ _ _ bm_ratio bm_lo bm_hi < <(paired "$dir" "$bg_prepare" "$base_cmd" "$mk_prepare" "$mk_cmd")
    base_rows+=("$(printf '%6s  %13s  %18s  %18s' \
      "$steps" "$base_mean±$base_sd" "${nb_ratio}x ($nb_lo–$nb_hi)" "${bm_ratio}x ($bm_lo–$bm_hi)")")
  fi
  bg_rss=$(peak_rss_mb "$dir" "$bg_prepare" "$bg_cmd")
  nj_rss=$(peak_rss_mb "$dir" "$nj_prepare" "$nj_cmd")
  # What validation and planning alone hold: the rest of `run`'s peak is the executor's.
  plan_rss=$(peak_rss_mb "$dir" "true" "'$bin' plan bench.toml")
  exec_rss=$(python3 -c "print(f'{max($bg_rss - $plan_rss, 0):.1f}')")
  rss_by_size+=("$bg_rss")
  exec_by_size+=("$exec_rss")
  per_step=$(python3 -c "print(f'{($bg_mean - $nj_mean) * 1e6 / $steps:.0f}')")
  verdict=$(python3 -c "print('ok' if $ratio <= $dag_ratio_max else 'OVER')")
  [[ $verdict == ok ]] || over=1
  dag_rows+=("$(printf '%6s  %13s  %13s  %6s  %11s  %17s  %9s  %9s  %8s  %9s  %8s   %s' \
    "$steps" "$bg_mean±$bg_sd" "$nj_mean±$nj_sd" "${ratio}x" "$ratio_lo–$ratio_hi" "${sh_ratio}x ($sh_lo–$sh_hi)" "$per_step" "$bg_rss" "$plan_rss" "$exec_rss" "$nj_rss" "$verdict")")
  rm -rf "$dir/out" "$dir/.bgflow"
done
first_rss=${rss_by_size[0]}
last_rss=${rss_by_size[${#rss_by_size[@]}-1]}
growth=$(python3 -c "print(f'{$last_rss / $first_rss:.2f}')")
growth_verdict=$(python3 -c "print('ok' if $growth <= $rss_growth_max else 'OVER')")
[[ $growth_verdict == ok ]] || over=1
exec_max=$(printf '%s\n' "${exec_by_size[@]}" | sort -g | tail -n1)
exec_verdict=$(python3 -c "print('ok' if $exec_max <= $exec_rss_max_mb else 'OVER')")
[[ $exec_verdict == ok ]] || over=1

# ---- (b) one step printing a lot -----------------------------------------------------------
dir="$work/big"
mkdir -p "$dir"
cat >"$dir/big.toml" <<EOF
[workflow]
name = "bench-big"

[steps.big]
run = "head -c $big /dev/zero"
EOF
echo "bench-run: (b) $big through bgflow and redirected to a file, $runs rounds" >&2
b_prepare="rm -rf .bgflow file"
b_cmd="'$bin' run --progress never big.toml"
# In alternation, as in (a): the machine's drift would otherwise be part of the ratio.
read -r b_mean b_sd s_mean s_sd b_ratio b_lo b_hi < <(paired "$dir" "$b_prepare" "$b_cmd" \
  "$b_prepare" "sh -c 'head -c $big /dev/zero > file'")
b_rss=$(peak_rss_mb "$dir" "$b_prepare" "$b_cmd")
log_bytes=$(find "$dir/.bgflow/runs" -name big.log -printf '%s\n' | head -n1)
rm -rf "$dir/.bgflow" "$dir/file"
b_verdict=$(python3 -c "print('ok' if $b_ratio <= $big_ratio_max and $b_rss <= $big_rss_max_mb else 'OVER')")
[[ $b_verdict == ok ]] || over=1

# ---- the table -----------------------------------------------------------------------------
echo
echo "(a) layered DAG of touch steps, -j2, width $width (wall time: mean±sd seconds over $runs runs; ratio: median of the per-round bgflow/ninja ratios, with its 95% bootstrap CI)"
printf '%6s  %13s  %13s  %6s  %11s  %17s  %9s  %9s  %8s  %9s  %8s   %s\n' \
  "steps" "bgflow s" "ninja s" "ratio" "95% CI" "via sh (95% CI)" "+µs/step" "run MB" "plan MB" "exec MB" "ninja MB" "target (ratio ≤ ${dag_ratio_max})"
printf '%s\n' "${dag_rows[@]}"
echo "via sh: the same ratio with every step written as [\"sh\", \"-c\", \"touch ...\"], ninja's own processes (no target)."
echo "run MB: bgflow run's peak RSS (median of $rss_runs runs); plan MB: \`bgflow plan\` alone on the same file; exec MB: the difference."
echo "bgflow run peak RSS growth, largest/smallest size: ${growth}x   target ≤ ${rss_growth_max}x: $growth_verdict"
echo "executor's own memory (run − plan) at most ${exec_max} MB   target ≤ ${exec_rss_max_mb} MB at every size: $exec_verdict"
echo
echo "(a') the same DAGs beside make -j2: bgflow as it contains steps here (auto), with containment = \"process-group\", and again (auto) with the history of the earlier runs kept"
printf '%6s  %13s  %13s  %13s  %-13s  %18s  %18s  %18s   %s\n' \
  "steps" "make s" "bgflow pg s" "again s" "auto is" "auto/make (CI)" "pg/make (CI)" "again/make (CI)" "target (all ≤ ${dag_ratio_max})"
printf '%s\n' "${make_rows[@]}"
if [[ -n ${BASELINE:-} ]]; then
  echo
  echo "(a'') bgflow against the baseline $BASELINE ($("$BASELINE" --version)), both as they contain steps here, and the baseline against make (no target)"
  printf '%6s  %13s  %18s  %18s\n' "steps" "baseline s" "bgflow/base (CI)" "base/make (CI)"
  printf '%s\n' "${base_rows[@]}"
fi
echo
echo "(b) one step printing $big (log: $log_bytes bytes)"
printf '%-28s %14s %12s\n' "case" "wall s" "peak RSS MB"
printf '%-28s %14s %12s\n' "bgflow run" "$b_mean±$b_sd" "$b_rss"
printf '%-28s %14s %12s\n' "sh -c 'head ... > file'" "$s_mean±$s_sd" "-"
echo "ratio ${b_ratio}x (median of the per-round ratios, 95% CI ${b_lo}–${b_hi}; target ≤ ${big_ratio_max}x), peak RSS ${b_rss} MB (target ≤ ${big_rss_max_mb} MB): $b_verdict"

if [[ $over == 1 && ${BENCH_STRICT:-0} == 1 ]]; then
  exit 1
fi
