"""Writes requirements.md from a prompt (a stand-in for an agent session)."""
import sys, time, os, pathlib

prompt = sys.argv[1]
progress = os.environ.get("BGFLOW_PROGRESS")
lines = [f"# Requirements", "", f"Prompt: {prompt}", "", "1. A page that greets the user.", "2. A health endpoint.", ""]
for i, _ in enumerate(lines, 1):
    if progress:
        with open(progress, "a") as f:
            f.write(f"{i}/{len(lines)} drafting requirements\n")
    time.sleep(0.02)
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out/requirements.md").write_text("\n".join(lines))
print("wrote out/requirements.md")
