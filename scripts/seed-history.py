# Fills a run history with copies of its one run, for the benches that read a big history
# (bench-history.sh, bench-mcp.sh, bench-serve.sh through `seed_history` in bench-lib.sh).
# Usage: seed-history.py BGFLOW_DB RUNS [NAME]
#   BGFLOW_DB  the history, holding exactly one finished run
#   RUNS       how many runs it holds afterwards: the others are that run's rows under new
#              ids, spread over the last month, one in ten failed
#   NAME       what the summary line on stderr starts with (default seed-history)
import random, sqlite3, sys, time

path, total = sys.argv[1], int(sys.argv[2])
name = sys.argv[3] if len(sys.argv) > 3 else "seed-history"
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA busy_timeout = 10000")
(seed,) = db.execute("SELECT id FROM runs").fetchone()
(log_dir,) = db.execute("SELECT log_dir FROM runs WHERE id = ?", (seed,)).fetchone()
base = log_dir[: -len(seed)]
cols = lambda t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")]

alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
rng = random.Random(7)
ids = {seed}
while len(ids) < total:
    ids.add("".join(rng.choice(alphabet) for _ in range(8)))
ids.discard(seed)

now = int(time.time() * 1000)
month = 30 * 86_400_000
run_cols = cols("runs")
timed = {"created_at", "started_at", "finished_at", "heartbeat_at"}

def run_select():
    out = []
    for c in run_cols:
        if c == "id":
            out.append("?1")
        elif c in timed:
            out.append(f"{c} - (SELECT created_at FROM runs WHERE id = ?2) + ?3")
        elif c == "log_dir":
            out.append("?4")
        elif c == "state":
            out.append("?5")
        elif c == "exit_code":
            out.append("?6")
        else:
            out.append(c)
    return ", ".join(out)

step_cols = cols("steps")
step_select = ", ".join(
    "?1" if c == "run_id" else ("?3 || '/' || name || '.log'" if c == "log_path" else c)
    for c in step_cols
)
event_cols = [c for c in cols("events") if c != "id"]
event_select = ", ".join("?1" if c == "run_id" else c for c in event_cols)

db.execute("BEGIN IMMEDIATE")
for i, rid in enumerate(sorted(ids)):
    created = now - rng.randrange(60_000, month)
    failed = i % 10 == 0
    db.execute(
        f"INSERT INTO runs ({', '.join(run_cols)}) SELECT {run_select()} FROM runs WHERE id = ?2",
        (rid, seed, created, base + rid, "failed" if failed else "succeeded", 1 if failed else 0),
    )
    db.execute(
        f"INSERT INTO steps ({', '.join(step_cols)}) SELECT {step_select} FROM steps WHERE run_id = ?2",
        (rid, seed, base + rid),
    )
    db.execute(
        f"INSERT INTO events ({', '.join(event_cols)}) SELECT {event_select} FROM events WHERE run_id = ?2",
        (rid, seed),
    )
db.execute("COMMIT")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
counts = [db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "steps", "events")]
print("%s: %d runs, %d steps, %d events" % (name, *counts), file=sys.stderr)
