"""Reads one CSV of temperatures and writes its count and mean as JSON (one matrix instance)."""
import csv
import json
import pathlib
import sys

src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
temps = [float(row["temp"]) for row in csv.DictReader(src.open())]
dst.parent.mkdir(parents=True, exist_ok=True)
dst.write_text(json.dumps({"file": src.name, "count": len(temps), "mean": sum(temps) / len(temps)}))
print(f"{src.name}: {len(temps)} readings")
