#!/usr/bin/env bash
# Measures `bgflow serve` against the targets of issue 23:
#   (a) with 10,000 runs in the history, the first page of the runs list answers in
#       ≤ 100 ms: GET /api/runs (50 runs, JSON) and GET / (the HTML page), median of CALLS
#       requests each over a new connection;
#   (b) an event reaches the open page ≤ 500 ms after it is recorded: an event stream
#       (/api/events) is open while short runs come and go; for each run_finished event,
#       its arrival minus its recorded time (`at`), and the arrival of the run page's live
#       part fetched again on it (what the page's script does) minus `at`.
# Also the server's RSS at the end.
#
# The history is seeded by `seed_history` (bench-lib.sh: one real run, its rows copied
# under new ids by seed-history.py). The client is python3 with no packages (http.client,
# a raw socket for the event stream), so the figures are the server's.
#
# Usage: scripts/bench-serve.sh [BGFLOW_BINARY]
#   BGFLOW_BINARY  default: target/release/bgflow, built with `cargo build --release --locked`
# Environment:
#   RUNS_IN_HISTORY  runs in the history (default 10000)
#   CALLS            requests per timed page (default 50)
#   EVENT_RUNS       runs whose end is timed (default 10)
#   BENCH_STRICT=1   exit 1 when a figure misses its target (default: report only)
# Speed is measured here, never asserted in the test suite (STYLE.md).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
history=${RUNS_IN_HISTORY:-10000}
calls=${CALLS:-50}
event_runs=${EVENT_RUNS:-10}

bench_name=bench-serve
# shellcheck source=scripts/bench-lib.sh
source "$repo/scripts/bench-lib.sh"
need python3 python3
pick_binary "$@"

work=$(mktemp -d "${TMPDIR:-/tmp}/bgflow-bench-serve.XXXXXX")
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
export XDG_CONFIG_HOME=$work/xdg
unset BGFLOW_CONFIG BGFLOW_STATE_DIR
state="$work/history"
echo "bench-serve: $(nproc) CPUs; binary $bin ($("$bin" --version)); $history runs in the history" >&2
seed_history "$work" "$state" "$history"

"$bin" --state-dir "$state" serve --bind 127.0.0.1:0 >"$work/url" 2>"$work/serve.err" &
server_pid=$!
for _ in $(seq 100); do [[ -s $work/url ]] && break; sleep 0.05; done
url=$(head -1 "$work/url")
[[ $url == http://* ]] || { echo "bench-serve: serve printed no URL" >&2; cat "$work/serve.err" >&2; exit 1; }

python3 - "$bin" "$state" "$work" "$url" "$server_pid" "$calls" "$event_runs" "${BENCH_STRICT:-0}" <<'PY'
import datetime, http.client, json, socket, statistics, subprocess, sys, threading, time

binary, state, work, url, pid = sys.argv[1:6]
calls, event_runs, strict = int(sys.argv[6]), int(sys.argv[7]), sys.argv[8] == "1"
hostport, token = url[len("http://"):].split("/?token=")
host, port = hostport.rsplit(":", 1)
auth = {"X-Bgflow-Token": token}

def get(path):
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request("GET", path, headers=auth)
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200:
        sys.exit(f"bench-serve: GET {path}: {r.status} {body[:200]!r}")
    return body

failed = []
def report(what, value, target, unit):
    ok = value <= target
    if not ok:
        failed.append(what)
    print(f"bench-serve: {what}: {value:.1f} {unit} (target ≤ {target} {unit}) {'ok' if ok else 'OVER'}")

def median_ms(path):
    get(path)  # warm up
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        get(path)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), max(times)

total = len(json.loads(get("/api/runs?limit=1000"))["runs"])
med, worst = median_ms("/api/runs")
report(f"(a) GET /api/runs, first page of 50, median of {calls} (max {worst:.1f} ms)", med, 100, "ms")
med, worst = median_ms("/")
report(f"(a) GET / (HTML), first page of 50, median of {calls} (max {worst:.1f} ms)", med, 100, "ms")
med, worst = median_ms("/?page=20")
print(f"bench-serve: (a') GET /?page=20 (runs 951-1000), median {med:.1f} ms, max {worst:.1f} ms (no target)")

# (b) an open event stream; short runs end one after another.
s = socket.create_connection((host, int(port)))
s.sendall(f"GET /api/events HTTP/1.1\r\nHost: {hostport}\r\nX-Bgflow-Token: {token}\r\nAccept: text/event-stream\r\n\r\n".encode())
arrivals, cond = [], threading.Condition()
def reader():
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return
        now = time.time()
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.startswith(b"data: "):
                e = json.loads(line[6:])
                with cond:
                    arrivals.append((now, e))
                    cond.notify_all()
threading.Thread(target=reader, daemon=True).start()
time.sleep(0.5)

def at_s(e):
    return datetime.datetime.fromisoformat(e["at"].replace("Z", "+00:00")).timestamp()

sse_lat, page_lat = [], []
for n in range(event_runs):
    out = subprocess.run([binary, "--state-dir", state, "start", "--name", f"tick{n}", "--", "sleep", "0.2"],
                         capture_output=True, text=True, check=True)
    rid = out.stdout.strip().splitlines()[0]
    deadline = time.time() + 30
    with cond:
        while True:
            hit = [(t, e) for t, e in arrivals if e.get("run") == rid and e["type"] == "run_finished"]
            if hit:
                break
            if not cond.wait(timeout=max(0.01, deadline - time.time())) and time.time() > deadline:
                sys.exit(f"bench-serve: no run_finished event for {rid}")
    t, e = hit[0]
    sse_lat.append((t - at_s(e)) * 1e3)
    get(f"/runs/{rid}?fragment=1")
    page_lat.append((time.time() - at_s(e)) * 1e3)
report(f"(b) run_finished on the open stream after it was recorded, worst of {event_runs} (median {statistics.median(sse_lat):.0f} ms)", max(sse_lat), 500, "ms")
report(f"(b) ... and the run page's live part fetched again on it, worst of {event_runs} (median {statistics.median(page_lat):.0f} ms)", max(page_lat), 500, "ms")

for line in open(f"/proc/{pid}/status"):
    if line.startswith("VmRSS:"):
        print(f"bench-serve: RSS of the server at the end: {int(line.split()[1]) / 1024:.1f} MB (no target)")
print(f"bench-serve: {total} runs were listed by /api/runs?limit=1000")
if failed and strict:
    sys.exit(1)
PY
