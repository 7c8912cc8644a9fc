#!/usr/bin/env bash
# bench-slurm.sh [BGFLOW_BINARY]: bgflow's Slurm executor against Snakemake with
# snakemake-executor-plugin-slurm on the same graph and the same cluster: a layered DAG of
# LAYERS x WIDTH steps (default 10 x 20 = 200), each step `touch`ing its output after its two
# inputs from the layer before exist (Snakemake needs files to make a DAG; bgflow runs the
# same). Prints, for each tool: wall time, and the number of sbatch, squeue and sacct calls,
# counted by wrapper scripts first on PATH.
#
# Needs a Slurm cluster (scripts/slurm-up.sh starts one here). Snakemake and the plugin
# come from `snakemake` on PATH, else from a virtualenv ($BENCH_VENV, default
# /tmp/bgflow-bench-venv) made with pip on first use.
#
# Both poll once a second: bgflow `poll_interval = "1s"`; Snakemake
# `--seconds-between-status-checks 1 --slurm-init-seconds-before-status-checks 1` (its
# defaults are 10 s and 40 s). Snakemake asks `squeue` (`--slurm-status-command squeue`): on a
# cluster without accounting storage its default `sacct` gets no rows and never sees a job
# end. ROUNDS (default 1) runs each tool that many times, alternating.
set -euo pipefail
bench_name=bench-slurm
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench-lib.sh
source "$repo/scripts/bench-lib.sh"
pick_binary "$@"
need bc bc

layers=${LAYERS:-10}
width=${WIDTH:-20}
rounds=${ROUNDS:-1}
steps=$((layers * width))

if ! sinfo --noheader --format=%a 2>/dev/null | grep -q up; then
  echo "$bench_name: no Slurm cluster answers; start one with scripts/slurm-up.sh" >&2
  exit 2
fi
partition=$(sinfo --noheader --format=%P | sed -n 's/\*$//p' | head -n 1)

if command -v snakemake >/dev/null 2>&1; then
  smk_bin=$(dirname "$(command -v snakemake)")
else
  venv=${BENCH_VENV:-/tmp/bgflow-bench-venv}
  if [[ ! -x $venv/bin/snakemake ]]; then
    echo "$bench_name: installing snakemake and snakemake-executor-plugin-slurm into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet snakemake snakemake-executor-plugin-slurm
  fi
  smk_bin=$venv/bin
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-slurm.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Wrappers that count each call, then run the real command.
mkdir -p "$work/bin"
for tool in sbatch squeue sacct; do
  real=$(command -v "$tool")
  cat > "$work/bin/$tool" <<WRAP
#!/bin/sh
echo "$tool" >> "\$BENCH_CALLS"
exec "$real" "\$@"
WRAP
  chmod +x "$work/bin/$tool"
done

# The graph, for bgflow.
{
  printf '[workflow]\nname = "layers"\nexecutor = "slurm"\n\n[executor.slurm]\npoll_interval = "1s"\n'
  for ((l = 0; l < layers; l++)); do
    for ((i = 0; i < width; i++)); do
      printf '\n[steps.s%d_%d]\nrun = "touch out/s%d_%d"\noutputs = ["out/s%d_%d"]\n' "$l" "$i" "$l" "$i" "$l" "$i"
      if ((l > 0)); then
        printf 'inputs = ["out/s%d_%d", "out/s%d_%d"]\n' $((l - 1)) "$i" $((l - 1)) $(((i + 1) % width))
      fi
    done
  done
} > "$work/bgflow.toml.in"

# The same graph, for Snakemake.
cat > "$work/Snakefile.in" <<SMK
L, W = $layers, $width
localrules: all
rule all:
    input: expand("out/s{l}_{i}", l=[L - 1], i=range(W))
rule step:
    output: "out/s{l}_{i}"
    input: lambda wc: [] if int(wc.l) == 0 else ["out/s%d_%d" % (int(wc.l) - 1, int(wc.i)), "out/s%d_%d" % (int(wc.l) - 1, (int(wc.i) + 1) % W)]
    shell: "touch {output}"
SMK

# run_one TOOL ROUND: one run in a fresh folder; prints "wall sbatch squeue sacct".
run_one() {
  local tool=$1 dir="$work/$1-$2"
  mkdir -p "$dir/out"
  : > "$dir/calls"
  local start end rc=0
  start=$(date +%s.%N)
  if [[ $tool == bgflow ]]; then
    cp "$work/bgflow.toml.in" "$dir/wf.toml"
    (cd "$dir" && BENCH_CALLS="$dir/calls" PATH="$work/bin:$PATH" \
      "$bin" run wf.toml -j 100 --progress never >"$dir/out.log" 2>&1) || rc=$?
  else
    cp "$work/Snakefile.in" "$dir/Snakefile"
    (cd "$dir" && BENCH_CALLS="$dir/calls" PATH="$work/bin:$smk_bin:$PATH" \
      snakemake --executor slurm --jobs 100 --slurm-no-account \
        --default-resources "slurm_partition=$partition" mem_mb=100 runtime=10 \
        --slurm-status-command squeue --seconds-between-status-checks 1 \
        --slurm-init-seconds-before-status-checks 1 --quiet all >"$dir/out.log" 2>&1) || rc=$?
  fi
  end=$(date +%s.%N)
  if [[ $rc -ne 0 ]]; then
    echo "$bench_name: $tool failed (exit $rc); see below" >&2
    tail -n 30 "$dir/out.log" >&2
    exit 1
  fi
  local made
  made=$(find "$dir/out" -type f | wc -l)
  if [[ $made -ne $steps ]]; then
    echo "$bench_name: $tool made $made of $steps outputs" >&2
    exit 1
  fi
  printf '%.2f %d %d %d\n' "$(echo "$end - $start" | bc)" \
    "$(grep -cx sbatch "$dir/calls" || true)" "$(grep -cx squeue "$dir/calls" || true)" \
    "$(grep -cx sacct "$dir/calls" || true)"
}

echo "$bench_name: $steps steps ($layers layers of $width), partition $partition, $rounds round(s)"
printf '%-10s %5s %9s %7s %7s %6s\n' tool round wall_s sbatch squeue sacct
for ((r = 1; r <= rounds; r++)); do
  for tool in bgflow snakemake; do
    read -r wall sb sq sa < <(run_one "$tool" "$r")
    printf '%-10s %5d %9s %7d %7d %6d\n' "$tool" "$r" "$wall" "$sb" "$sq" "$sa"
  done
done
