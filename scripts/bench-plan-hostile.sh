#!/usr/bin/env bash
# Measures `bgflow plan` on hostile workflows (guarantee 12: any manifest is answered within
# seconds and bounded memory): wall time and peak resident memory of each, human and --json.
#
# Usage: scripts/bench-plan-hostile.sh [BGFLOW_BINARY]
#   BGFLOW_BINARY  default: target/release/bgflow, built with `cargo build --release --locked`
# Environment:
#   N              steps in the large cases (default 10,000)
#   BENCH_STRICT=1 exit 1 when a case misses its target (default: report only)
#
# Needs: python3 (it starts each case and reads its peak RSS from wait4's rusage, so GNU
# time is not needed). Speed is measured here, never asserted in the test suite (STYLE.md).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
n=${N:-10000}
target_s=5
target_mb=200

bench_name=bench-plan-hostile
# shellcheck source=scripts/bench-lib.sh
source "$repo/scripts/bench-lib.sh"
need python3 python3
pick_binary "$@"

work=$(mktemp -d "${TMPDIR:-/tmp}/bgflow-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

python3 - "$work" "$n" <<'PY'
import sys
work, n = sys.argv[1], int(sys.argv[2])
head = '[workflow]\nname = "hostile"\n\n'
big = "a" * 10240
cases = {
    # Each step needs the next: one cycle through every step.
    "cycle": head + "".join(f'[steps.s{i}]\nrun = "true"\nneeds = ["s{(i + 1) % n}"]\n\n' for i in range(n)),
    "unknown_needs": head + "".join(f'[steps.s{i}]\nrun = "true"\nneeds = ["nope{i}"]\n\n' for i in range(n)),
    "misspelt_keys": head + "".join(f'[steps.s{i}]\nrun = "true"\ntimout = "1s"\n\n' for i in range(n)),
    # Globs on both sides: each input against every output, unless matched all at once.
    "glob_outputs": head + "".join(f'[steps.s{i}]\nrun = "true"\ninputs = ["x/in{i}.txt"]\noutputs = ["x/*{i}.out"]\n\n' for i in range(n)),
    "glob_inputs": head + "".join(f'[steps.s{i}]\nrun = "true"\ninputs = ["x/*{i}.in"]\noutputs = ["x/o{i}.txt"]\n\n' for i in range(n)),
    "glob_both": head + "".join(f'[steps.s{i}]\nrun = "true"\ninputs = ["in{i}/*.txt"]\noutputs = ["out{i}/*.txt"]\n\n' for i in range(n)),
    "nested_loops": head + '[steps.a]\nrun = "echo {% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"\n',
    "big_var_loop": head + f'[vars]\nbig = "{big}"\n\n[steps.a]\nrun = "echo {{% for i in range(100000) %}}{{{{ vars.big }}}}{{% endfor %}}"\n',
    "replace_growth": head + f'[vars]\nbig = "{big}"\n\n[steps.a]\nrun = "echo {{{{ vars.big|replace(\'a\', vars.big)|replace(\'a\', vars.big) }}}}"\n',
    # Every step burns most of its fuel: the check's total stops it.
    "fuel_everywhere": head + "".join(f'[steps.s{i}]\nrun = "echo {{% for i in range(20000) %}}{{% endfor %}}"\n\n' for i in range(n)),
    # Every step renders 100 KB, under the cap of one template: the check's total stops it.
    "output_everywhere": head + f'[vars]\nk = "{"k" * 1000}"\n\n' + "".join(f'[steps.s{i}]\nrun = "echo {{% for i in range(100) %}}{{{{ vars.k }}}}{{% endfor %}}"\n\n' for i in range(n)),
}
for name, text in cases.items():
    open(f"{work}/{name}.toml", "w").write(text)
print(" ".join(cases), file=open(f"{work}/cases", "w"))
PY

echo "bench-plan-hostile: $n steps in the large cases, $(nproc) CPUs" >&2
echo "bench-plan-hostile: binary $bin ($("$bin" --version))" >&2

python3 - "$bin" "$work" "$target_s" "$target_mb" <<'PY'
import os, subprocess, sys, time
bin, work, target_s, target_mb = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
cases = open(f"{work}/cases").read().split()
print(f"\n{'case':<20} {'mode':<6} {'exit':>4} {'seconds':>8} {'peak RSS MB':>12} {'stderr KB':>10} {'stdout KB':>10}   target (≤{target_s:g} s, ≤{target_mb:g} MB)")
over = False
for case in cases:
    for mode in ("human", "json"):
        args = [bin, "--color", "never", "plan", "--offline"] + (["--json"] if mode == "json" else []) + [f"{work}/{case}.toml"]
        out, err = open(f"{work}/out", "wb"), open(f"{work}/err", "wb")
        start = time.monotonic()
        p = subprocess.Popen(args, stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        seconds = time.monotonic() - start
        out.close(); err.close()
        rss_mb = usage.ru_maxrss / 1024
        ok = seconds <= target_s and rss_mb <= target_mb
        over |= not ok
        print(f"{case:<20} {mode:<6} {os.waitstatus_to_exitcode(status):>4} {seconds:>8.2f} {rss_mb:>12.1f} "
              f"{os.path.getsize(f'{work}/err') / 1024:>10.1f} {os.path.getsize(f'{work}/out') / 1024:>10.1f}   {'ok' if ok else 'OVER'}")
open(f"{work}/over", "w").write("1" if over else "0")
PY

if [[ $(cat "$work/over") == 1 && ${BENCH_STRICT:-0} == 1 ]]; then
  exit 1
fi
