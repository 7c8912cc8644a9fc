"""Writes a design from the stories."""
import pathlib

stories = sorted(pathlib.Path("out/stories").glob("*.md"))
body = ["# Design", ""] + [f"- {p.read_text().splitlines()[-1]} -> app/server.py" for p in stories]
pathlib.Path("out/design.md").write_text("\n".join(body) + "\n")
print(f"designed {len(stories)} stories")
