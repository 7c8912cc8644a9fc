"""Merges every per-file summary into one report (the step after the fan-out)."""
import json
import pathlib
import sys

precision, out = int(sys.argv[1]), pathlib.Path(sys.argv[2])
rows = [json.loads(p.read_text()) for p in sorted(pathlib.Path("build/stats").glob("*.json"))]
lines = [f"{r['file']}: {r['count']} readings, mean {r['mean']:.{precision}f}" for r in rows]
out.write_text("\n".join(lines) + "\n")
print(f"{len(rows)} files reported")
