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
