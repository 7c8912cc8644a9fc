# Shared by the bench scripts (sourced, not run). Set `bench_name` (for messages) and `repo`
# (the project root) before sourcing.

# need CMD PACKAGE: stop with the install line when CMD is not on PATH.
need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "$bench_name: \`$1\` is missing; install it with: apt-get update && apt-get install -y $2" >&2
    exit 2
  fi
}

# GNU time for peak RSS (`/usr/bin/time -v`); the shell's `time` keyword has no -v.
need_gnu_time() {
  if [[ ! -x /usr/bin/time ]]; then
    echo "$bench_name: /usr/bin/time is missing; install it with: apt-get update && apt-get install -y time" >&2
    exit 2
  fi
}

# pick_binary [BGFLOW_BINARY]: sets `bin` to the absolute path of the given binary, or of
# the release build (made with `cargo build --release --locked`) when none is given.
pick_binary() {
  if [[ $# -ge 1 ]]; then
    bin=$1
  else
    echo "$bench_name: building the release binary (cargo build --release --locked)" >&2
    (cd "$repo" && cargo build --release --locked --quiet)
    bin="${CARGO_TARGET_DIR:-$repo/target}/release/bgflow"
  fi
  if [[ ! -x $bin ]]; then
    echo "$bench_name: no executable at $bin" >&2
    exit 2
  fi
  bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
}

# seed_history WORK STATE RUNS: one real run of a three-step workflow (its first step reports
# progress) into the history in STATE, then its rows copied under new ids by
# scripts/seed-history.py until the history holds RUNS runs. WORK is a scratch folder.
seed_history() {
  local work=$1 state=$2 runs=$3
  mkdir -p "$work/flow"
  cat >"$work/flow/three.toml" <<TOML
[workflow]
name = "$bench_name"

[steps.fetch]
run = "echo fetching; echo 1/2 fetching >> \"\$BGFLOW_PROGRESS\"; echo 2/2 done >> \"\$BGFLOW_PROGRESS\""

[steps.build]
needs = ["fetch"]
run = "echo building"

[steps.test]
needs = ["build"]
run = "echo testing"
TOML
  if ! "$bin" -q --state-dir "$state" run --progress never "$work/flow/three.toml" 2>"$work/seed.err"; then
    echo "$bench_name: the seed run failed:" >&2
    cat "$work/seed.err" >&2
    exit 1
  fi
  python3 "$repo/scripts/seed-history.py" "$state/bgflow.db" "$runs" "$bench_name"
}

# touch_dag DIR LAYERS WIDTH: the layered DAG of `touch` steps that bench-run.sh,
# bench-floor.sh and bench-plan.sh use, written for each tool into DIR: bench.toml,
# bench-sh.toml (the same steps as `["sh", "-c", ...]`), build.ninja and a Makefile. Layer 0
# steps have no inputs; a step of layer L reads two outputs of layer L-1 (same column and
# the next one) and touches its own output out/L_S.
touch_dag() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
d, layers, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
toml = ['[workflow]', 'name = "bench-touch"', '']
via_sh = []
ninja = ['rule touch', '  command = touch $out', '']
make = []
outs = []
for l in range(layers):
    for s in range(width):
        out = f"out/{l}_{s}"
        toml.append(f"[steps.s_{l}_{s}]")
        toml.append(f'run = "touch {out}"')
        if l > 0:
            a, b = f"out/{l-1}_{s}", f"out/{l-1}_{(s + 1) % width}"
            toml.append(f'inputs = ["{a}", "{b}"]')
            ninja.append(f"build {out}: touch {a} {b}")
            make.append(f"{out}: {a} {b}\n\ttouch {out}")
        else:
            ninja.append(f"build {out}: touch")
            make.append(f"{out}:\n\ttouch {out}")
        outs.append(out)
        toml.append(f'outputs = ["{out}"]')
        toml.append("")
for line in toml:
    if line.startswith('run = "'):
        line = f'run = ["sh", "-c", {line[6:]}]'
    via_sh.append(line)
open(f"{d}/bench.toml", "w").write("\n".join(toml))
open(f"{d}/bench-sh.toml", "w").write("\n".join(via_sh))
open(f"{d}/build.ninja", "w").write("\n".join(ninja) + "\n")
open(f"{d}/Makefile", "w").write("all: " + " ".join(outs) + "\n.PHONY: all\n" + "\n".join(make) + "\n")
PY
}
