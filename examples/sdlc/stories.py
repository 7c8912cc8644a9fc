"""Splits requirements into one story file each under out/stories/."""
import pathlib, re

reqs = pathlib.Path("out/requirements.md").read_text().splitlines()
items = [l for l in reqs if re.match(r"^\d+\. ", l)]
out = pathlib.Path("out/stories")
out.mkdir(parents=True, exist_ok=True)
for n, item in enumerate(items, 1):
    (out / f"story-{n}.md").write_text(f"# Story {n}\n\n{item.split('. ', 1)[1]}\n")
    print(f"story {n}/{len(items)}: {item}")
