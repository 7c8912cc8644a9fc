#!/usr/bin/env bash
# Measures `bgflow mcp` against the targets of issue 21:
#   (a) get_run and list_runs answer in ≤ 20 ms (median round trip over the pipe) with
#       10,000 runs in the history;
#   (b) wait_for_run returns ≤ 200 ms after the run ends (its reply's arrival minus the
#       run's recorded finished_at);
#   (c) the server idles at ≤ 1 % CPU and ≤ 20 MB RSS while a run goes on: once with no
#       call in flight, once while a wait_for_run call waits on the run.
#
# The history is seeded by `seed_history` (bench-lib.sh: one real run, its rows copied
# under new ids by seed-history.py). The client is a small raw JSON-RPC driver in python3
# (no packages), so the figures are the server's, not an SDK's.
#
# Usage: scripts/bench-mcp.sh [BGFLOW_BINARY]
#   BGFLOW_BINARY  default: target/release/bgflow, built with `cargo build --release --locked`
# Environment:
#   RUNS_IN_HISTORY  runs in the history (default 10000)
#   CALLS            calls per timed tool (default 100)
#   BENCH_STRICT=1   exit 1 when a figure misses its target (default: report only)
# Speed is measured here, never asserted in the test suite (STYLE.md).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
history=${RUNS_IN_HISTORY:-10000}
calls=${CALLS:-100}

bench_name=bench-mcp
# shellcheck source=scripts/bench-lib.sh
source "$repo/scripts/bench-lib.sh"
need python3 python3
pick_binary "$@"

work=$(mktemp -d "${TMPDIR:-/tmp}/bgflow-bench-mcp.XXXXXX")
trap 'rm -rf "$work"' EXIT
export XDG_CONFIG_HOME=$work/xdg
unset BGFLOW_CONFIG BGFLOW_STATE_DIR
state="$work/history"
echo "bench-mcp: $(nproc) CPUs; binary $bin ($("$bin" --version)); $history runs in the history" >&2
seed_history "$work" "$state" "$history"

python3 - "$bin" "$state" "$work" "$calls" "${BENCH_STRICT:-0}" <<'PY'
import json, os, statistics, subprocess, sys, threading, time

binary, state, work, calls, strict = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
srv = subprocess.Popen([binary, "--state-dir", state, "mcp"], cwd=work, stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
replies, arrived, lock, next_id = {}, {}, threading.Condition(), [0]

def reader():
    for line in srv.stdout:
        msg = json.loads(line)
        if "id" in msg and ("result" in msg or "error" in msg):
            with lock:
                replies[msg["id"]] = msg
                arrived[msg["id"]] = time.time()
                lock.notify_all()

threading.Thread(target=reader, daemon=True).start()

def send(method, params=None, notify=False):
    msg = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    if not notify:
        next_id[0] += 1
        msg["id"] = next_id[0]
    srv.stdin.write((json.dumps(msg) + "\n").encode())
    return msg.get("id")

def reply(i, timeout=60):
    with lock:
        if not lock.wait_for(lambda: i in replies, timeout):
            sys.exit(f"bench-mcp: no reply to request {i} in {timeout} s")
        return replies.pop(i)

def tool(name, args):
    r = reply(send("tools/call", {"name": name, "arguments": args}))
    res = r.get("result") or sys.exit(f"bench-mcp: {name}: {r}")
    if res.get("isError"):
        sys.exit(f"bench-mcp: {name}: {res['content']}")
    return res["structuredContent"]

reply(send("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                          "clientInfo": {"name": "bench-mcp", "version": "1"}}))
send("notifications/initialized", notify=True)
some = tool("list_runs", {"limit": 1000})["runs"][500]["id"]

def median_ms(name, args):
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        tool(name, args)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), max(times)

failed = []
def report(what, value, target, unit):
    ok = value <= target
    if not ok:
        failed.append(what)
    print(f"bench-mcp: {what}: {value:.1f} {unit} (target ≤ {target} {unit}) {'ok' if ok else 'OVER'}")

tool("get_run", {"run_id": some})  # warm up
med, worst = median_ms("get_run", {"run_id": some})
report(f"(a) get_run median of {calls} (max {worst:.1f} ms)", med, 20, "ms")
med, worst = median_ms("list_runs", {})
report(f"(a) list_runs median of {calls}, 20 runs (max {worst:.1f} ms)", med, 20, "ms")

# (b) wait_for_run on a command that ends when a file appears.
lat = []
for n in range(5):
    gate = os.path.join(work, f"gate{n}")
    rid = tool("start_process", {"command": f"while [ ! -e {gate} ]; do sleep 0.02; done",
                                 "name": "gate", "cwd": work})["run_id"]
    deadline = time.time() + 30
    while tool("get_run", {"run_id": rid})["steps"][0]["state"] != "running":
        if time.time() > deadline:
            sys.exit("bench-mcp: the gated command never ran")
        time.sleep(0.02)
    i = send("tools/call", {"name": "wait_for_run", "arguments": {"run_id": rid, "timeout_s": 30}})
    time.sleep(0.3)
    open(gate, "w").close()
    r = reply(i)["result"]["structuredContent"]
    if not r["ended"]:
        sys.exit(f"bench-mcp: wait_for_run returned before the end: {r['run']['state']}")
    lat.append(arrived[i] * 1e3 - r["run"]["finished_at"])
report(f"(b) wait_for_run after the run's end, worst of 5 (median {statistics.median(lat):.0f} ms)", max(lat), 200, "ms")

# (c) CPU and RSS of the server while a run goes on.
def cpu_ticks():
    f = open(f"/proc/{srv.pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])

def rss_mb():
    for line in open(f"/proc/{srv.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

hz = os.sysconf("SC_CLK_TCK")
rid = tool("start_process", {"command": "sleep 12", "name": "idle", "cwd": work})["run_id"]
t, c = time.time(), cpu_ticks()
time.sleep(5)
idle = (cpu_ticks() - c) / hz / (time.time() - t) * 100
report("(c) CPU, a run going on, no call in flight", idle, 1, "%")
i = send("tools/call", {"name": "wait_for_run", "arguments": {"run_id": rid, "timeout_s": 5}})
t, c = time.time(), cpu_ticks()
reply(i)
waiting = (cpu_ticks() - c) / hz / (time.time() - t) * 100
report("(c) CPU while wait_for_run waits 5 s on it", waiting, 1, "%")
report("(c) RSS", rss_mb(), 20, "MB")
tool("stop_run", {"run_id": rid, "force": True})
srv.stdin.close()
srv.wait(10)
if failed and strict:
    sys.exit(1)
PY
