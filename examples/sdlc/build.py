"""Builds the site the service serves: out/site/index.html and out/site/health."""
import pathlib, sys

sys.path.insert(0, "out/app")
from greeting import greet, health

site = pathlib.Path("out/site")
site.mkdir(parents=True, exist_ok=True)
(site / "index.html").write_text(f"<h1>{greet('bgflow')}</h1>\n")
(site / "health").write_text(health() + "\n")
print("built out/site")
