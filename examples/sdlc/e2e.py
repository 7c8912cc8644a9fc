"""Checks the running service end to end."""
import sys, urllib.request

base = sys.argv[1]
page = urllib.request.urlopen(base + "/index.html", timeout=5).read().decode()
assert "Hello, bgflow!" in page, page
health = urllib.request.urlopen(base + "/health", timeout=5).read().decode().strip()
assert health == "ok", health
print("e2e: page and health ok")
