#!/usr/bin/env bash
# End-to-end check of the pre-commit integration (docs/pre-commit.md), offline:
# a scratch git repository whose .pre-commit-config.yaml runs `<bgflow> plan` as a
# `repo: local`, `language: system` hook, with the `files`/`exclude` patterns of this
# repository's .pre-commit-hooks.yaml. A valid workflow must commit; a broken one must be
# refused with bgflow's diagnostic in the output.
#
# Usage: scripts/precommit-check.sh [BGFLOW_BINARY]
#   BGFLOW_BINARY  default: $BGFLOW_BIN, else target/debug/bgflow built with `cargo build`
# Exit: 0 both expectations held; 1 one failed; 2 usage error;
#       77 a prerequisite (git, or pre-commit: `python3 -m pip install pre-commit`) is missing.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)

bin=${1:-${BGFLOW_BIN:-}}
if [[ -z $bin ]]; then
  (cd "$repo" && cargo build --quiet)
  bin="${CARGO_TARGET_DIR:-$repo/target}/debug/bgflow"
fi
if [[ ! -x $bin ]]; then
  echo "precommit-check: no executable bgflow at $bin" >&2
  exit 2
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

if ! command -v git >/dev/null 2>&1; then
  echo "precommit-check: git is not installed" >&2
  exit 77
fi
if command -v pre-commit >/dev/null 2>&1; then
  precommit=(pre-commit)
elif python3 -c 'import pre_commit' >/dev/null 2>&1; then
  precommit=(python3 -m pre_commit)
else
  echo "precommit-check: pre-commit is not installed (python3 -m pip install pre-commit)" >&2
  exit 77
fi

# The hook's patterns, taken from the hook definition users get, so that they are tested too.
pattern() {
  sed -n "s/^  $1: *//p" "$repo/.pre-commit-hooks.yaml"
}
files_re=$(pattern files)
exclude_re=$(pattern exclude)
if [[ -z $files_re ]]; then
  echo "precommit-check: no \`files:\` in $repo/.pre-commit-hooks.yaml" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bgflow-precommit.XXXXXX")
trap 'rm -rf "$work"' EXIT
scratch="$work/repo"
mkdir -p "$scratch/workflows"

# Isolate from the caller's git and pre-commit set-up (global hooksPath, signing, cache).
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export PRE_COMMIT_HOME="$work/pre-commit-home"
export NO_COLOR=1
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE
# Nor may the caller's bgflow configuration (e.g. validation.strict) change the verdicts.
export XDG_CONFIG_HOME="$work/xdg"
unset BGFLOW_CONFIG BGFLOW_STATE_DIR

cd "$scratch"
git init --quiet
git config user.email "precommit-check@example.invalid"
git config user.name "bgflow precommit-check"
git config commit.gpgsign false

# `entry` is split with shlex by pre-commit, and the YAML value is a JSON string.
entry=$(python3 -c 'import json, shlex, sys; print(json.dumps(shlex.quote(sys.argv[1]) + " plan"))' "$bin")
cat > .pre-commit-config.yaml <<EOF
repos:
  - repo: local
    hooks:
      - id: bgflow-plan
        name: bgflow plan
        entry: $entry
        language: system
        files: $files_re
        exclude: ${exclude_re:-'^$'}
EOF

cat > workflows/good.toml <<'EOF'
[workflow]
name = "good"

[steps.make]
run = "echo hello > out.txt"
outputs = ["out.txt"]

[steps.show]
run = "cat out.txt"
inputs = ["out.txt"]
EOF

failed=0
fail() {
  echo "precommit-check: FAIL: $*" >&2
  failed=1
}

"${precommit[@]}" install >"$work/install.log" 2>&1 || {
  cat "$work/install.log" >&2
  fail "\`pre-commit install\` failed"
  exit 1
}

git add .pre-commit-config.yaml workflows/good.toml
if git commit --quiet -m "a valid workflow" >"$work/good.log" 2>&1; then
  # A hook whose `files` matched nothing says "Skipped": that would pass without checking.
  if ! grep -q "bgflow plan\.*Passed" "$work/good.log"; then
    cat "$work/good.log" >&2
    fail "the valid workflow was committed, but the bgflow-plan hook did not run on it"
  else
    echo "precommit-check: ok: the valid workflow was committed (hook passed)"
  fi
else
  cat "$work/good.log" >&2
  fail "the valid workflow was refused"
fi

cat > workflows/broken.toml <<'EOF'
[workflow]
name = "broken"

[steps.build]
run = "echo building > out.txt"
outputs = ["out.txt"]

[steps.test]
needs = ["biuld"]
run = "cat out.txt"
EOF

git add workflows/broken.toml
before=$(git rev-list --count HEAD 2>/dev/null || echo 0)
if git commit --quiet -m "a broken workflow" >"$work/broken.log" 2>&1; then
  cat "$work/broken.log" >&2
  fail "the broken workflow was committed"
else
  after=$(git rev-list --count HEAD 2>/dev/null || echo 0)
  if [[ $before != "$after" ]]; then
    fail "the commit failed but HEAD moved"
  elif ! grep -q "bgflow plan\.*Failed" "$work/broken.log"; then
    cat "$work/broken.log" >&2
    fail "the commit was refused, but not by the bgflow-plan hook"
  elif ! grep -q "step \`test\` needs unknown step \`biuld\`" "$work/broken.log" \
    || ! grep -q "did you mean \`build\`?" "$work/broken.log" \
    || ! grep -q "workflows/broken.toml:9:" "$work/broken.log"; then
    cat "$work/broken.log" >&2
    fail "the broken workflow was refused without bgflow's located diagnostic"
  else
    echo "precommit-check: ok: the broken workflow was refused with its diagnostic:"
    sed -n '/unknown step/,/is not valid/p' "$work/broken.log" | sed 's/^/    /'
  fi
fi
# Leave the broken file out of what follows.
git reset --quiet -- workflows/broken.toml
rm -f workflows/broken.toml

# `refused NAME PATTERN FILE...`: committing FILEs is refused by the hook, with PATTERN
# (a located diagnostic) in the output; then they are taken out of the index again.
refused() {
  local name=$1 pattern=$2
  shift 2
  git add "$@"
  if git commit --quiet -m "$name" >"$work/$name.log" 2>&1; then
    cat "$work/$name.log" >&2
    fail "$name: the commit was accepted"
  elif ! grep -q "bgflow plan\.*Failed" "$work/$name.log" || ! grep -q "$pattern" "$work/$name.log"; then
    cat "$work/$name.log" >&2
    fail "$name: refused, but not by bgflow with \`$pattern\`"
  else
    echo "precommit-check: ok: $name: refused with \`$pattern\`"
  fi
  git reset --quiet -- "$@"
}

# A configuration-only bgflow.toml is checked as configuration (and passes); a bgflow.toml
# that holds [workflow] is a workflow and is checked as one.
mkdir -p sub
printf '[defaults]\nretries = 1\n' > sub/bgflow.toml
git add sub/bgflow.toml
if git commit --quiet -m "a configuration file" >"$work/config.log" 2>&1 \
  && grep -q "bgflow plan\.*Passed" "$work/config.log"; then
  echo "precommit-check: ok: a configuration-only bgflow.toml was committed (hook passed)"
else
  cat "$work/config.log" >&2
  fail "a configuration-only bgflow.toml was refused, or the hook did not run on it"
fi
printf '[defaults]\nretires = 1\n' > sub/bgflow.toml
refused bad-config "sub/bgflow.toml:2:1" sub/bgflow.toml
git checkout --quiet -- sub/bgflow.toml

cat > bgflow.toml <<'EOF2'
[workflow]
name = "main"
include = ["workflows/lint.toml"]

[steps.build]
run = "echo build > built.txt"
outputs = ["built.txt"]
EOF2
cat > workflows/lint.toml <<'EOF2'
[steps.lint]
needs = ["build"]
run = "echo lint"
EOF2
git add bgflow.toml workflows/lint.toml
if git commit --quiet -m "a default workflow and a fragment" >"$work/default.log" 2>&1 \
  && grep -q "bgflow plan\.*Passed" "$work/default.log"; then
  echo "precommit-check: ok: bgflow.toml with [workflow] and its included file were committed"
else
  cat "$work/default.log" >&2
  fail "bgflow.toml with [workflow] and its included file were refused, or not checked"
fi

# The fragment alone, broken: checked as part of bgflow.toml, its error shown in its file.
sed -i 's/needs = \["build"\]/needs = ["biuld"]/' workflows/lint.toml
refused broken-fragment "workflows/lint.toml:2:" workflows/lint.toml
git checkout --quiet -- workflows/lint.toml

# bgflow.toml itself, broken.
sed -i 's/^run = "echo build > built.txt"/run = "echo {{ vars.nope }}"/' bgflow.toml
refused broken-default "bgflow.toml:6:" bgflow.toml
git checkout --quiet -- bgflow.toml

exit "$failed"
