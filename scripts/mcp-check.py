#!/usr/bin/env python3
"""An independent check of `bgflow mcp` with the Python `mcp` client from PyPI.

    python3 -m pip install --quiet mcp
    python3 scripts/mcp-check.py [path/to/bgflow]

Starts `bgflow mcp` in a fresh folder, negotiates with the `initialize` handshake, lists
the tools, plans an invalid workflow, runs a failing one to its end through wait_for_run
(with progress notifications), reads the failure, fixes it, resumes, and reads a log.
Prints `mcp-check: ok` and exits 0, or names what went wrong and exits 1 (2: no `mcp`).
"""

import asyncio
import json
import os
import sys
import tempfile
import time

try:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
except ImportError:
    print("mcp-check: the Python `mcp` package is missing: python3 -m pip install --quiet mcp",
          file=sys.stderr)
    sys.exit(2)

TOOLS = sorted(["plan_workflow", "run_workflow", "start_process", "get_run", "list_runs",
                "get_logs", "wait_for_run", "stop_run", "resume_run", "get_events"])

WORKFLOW = """[workflow]
name = "check"

[steps.build]
run = "echo built > out.txt"
outputs = ["out.txt"]

[steps.test]
run = "test -e fixed || { echo not-fixed-yet; exit 4; }"
needs = ["build"]
"""


def fail(msg):
    print(f"mcp-check: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def structured(result, name):
    if result.is_error:
        fail(f"{name} returned an error: {[c.text for c in result.content]}")
    if result.structured_content is None:
        fail(f"{name} returned no structured content")
    return result.structured_content


async def wait_end(s, run_id, progress):
    deadline = time.monotonic() + 60
    while True:
        r = structured(await s.call_tool("wait_for_run", {"run_id": run_id, "timeout_s": 5},
                                         progress_callback=progress), "wait_for_run")
        if r["ended"]:
            return r
        if time.monotonic() > deadline:
            fail(f"run {run_id} did not end in 60 s")


async def main(bgflow, folder):
    with open(os.path.join(folder, "w.toml"), "w") as f:
        f.write(WORKFLOW)
    with open(os.path.join(folder, "bad.toml"), "w") as f:
        f.write('[workflow]\nname = "bad"\n\n[steps.a]\nrun = "true"\nneeds = ["nope"]\n')
    params = StdioServerParameters(command=bgflow, args=["mcp"], cwd=folder,
                                   env={k: v for k, v in os.environ.items()
                                        if k not in ("BGFLOW_STATE_DIR", "BGFLOW_CONFIG")})
    async with stdio_client(params) as (rd, wr):
        async with ClientSession(rd, wr) as s:
            init = await s.initialize()
            if init.server_info.name != "bgflow":
                fail(f"server name {init.server_info.name!r}")
            tools = (await s.list_tools()).tools
            names = sorted(t.name for t in tools)
            if names != TOOLS:
                fail(f"tools {names}")
            if any(t.output_schema is None for t in tools):
                fail("a tool has no output schema")

            plan = structured(await s.call_tool("plan_workflow", {"file": "bad.toml"}), "plan")
            p = plan["problems"][0] if plan["problems"] else {}
            if plan["valid"] or p.get("line") != 6 or not p.get("column"):
                fail(f"plan of bad.toml: {json.dumps(plan)}")
            refused = await s.call_tool("run_workflow", {"file": "bad.toml"})
            if not refused.is_error or "bad.toml:6:" not in refused.content[0].text:
                fail(f"run_workflow of bad.toml was not refused with its problems: {refused}")

            run_id = structured(await s.call_tool("run_workflow", {"file": "w.toml"}),
                                "run_workflow")["run_id"]
            seen = []

            async def progress(done, total, message):
                seen.append((done, total, message))

            end = await wait_end(s, run_id, progress)
            if end["run"]["state"] != "failed":
                fail(f"the run should fail first: {end['run']['state']}")
            failure = end["failures"][0]
            if failure["step"] != "test" or "not-fixed-yet" not in failure["last_lines"]:
                fail(f"the failure: {failure}")
            if not seen or any(t != 2 for _, t, _ in seen):
                fail(f"progress notifications: {seen}")

            open(os.path.join(folder, "fixed"), "w").close()
            new_id = structured(await s.call_tool("resume_run", {"run_id": run_id}),
                                "resume_run")["run_id"]
            end = await wait_end(s, new_id, None)
            if end["run"]["state"] != "succeeded":
                fail(f"the resumed run: {end['run']['state']}")
            log = structured(await s.call_tool("get_logs", {"run_id": run_id, "step": "test"}),
                             "get_logs")
            if log["text"] != "not-fixed-yet\n" or log["truncated"]:
                fail(f"get_logs: {log}")
            runs = structured(await s.call_tool("list_runs", {}), "list_runs")["runs"]
            if len(runs) != 2:
                fail(f"list_runs: {len(runs)} runs")
    # The current revision: the high-level client negotiates through server/discover.
    try:
        from mcp import Client
    except ImportError:
        Client = None
    if Client is not None:
        async with Client(params) as c:
            names = sorted(t.name for t in (await c.list_tools()).tools)
            if names != TOOLS:
                fail(f"tools over {c.protocol_version}: {names}")
            run = structured(await c.call_tool("get_run", {"run_id": run_id}), "get_run")
            if run["run"]["state"] != "failed":
                fail(f"get_run over {c.protocol_version}: {run['run']['state']}")
            # A resource update on the subscriptions/listen stream when a run ends.
            gate = os.path.join(folder, "go")
            cmd = f"i=0; while [ ! -e {gate} ] && [ $i -lt 400 ]; do i=$((i+1)); sleep 0.05; done"
            gated = structured(await c.call_tool("start_process", {"command": cmd, "name": "gate"}),
                               "start_process")["run_id"]
            uri = f"bgflow://runs/{gated}"
            deadline = time.monotonic() + 30
            while True:
                r = structured(await c.call_tool("get_run", {"run_id": gated}), "get_run")
                if r["steps"][0]["state"] == "running":
                    break
                if time.monotonic() > deadline:
                    fail("the gated command never ran")
                await asyncio.sleep(0.05)
            async with c.listen(resource_subscriptions=[uri]) as sub:
                await asyncio.sleep(0.6)
                open(gate, "w").close()
                changed = time.monotonic()
                event = await asyncio.wait_for(sub.__anext__(), 10)
                if uri not in repr(event):
                    fail(f"listen: {event!r}")
                print(f"mcp-check: resource update {time.monotonic() - changed:.2f} s after the change")
            print(f"mcp-check: protocol {init.protocol_version} and {c.protocol_version}")
    print("mcp-check: ok")


if __name__ == "__main__":
    binary = sys.argv[1] if len(sys.argv) > 1 else "bgflow"
    if os.sep in binary:
        binary = os.path.abspath(binary)
    with tempfile.TemporaryDirectory() as d:
        asyncio.run(main(binary, d))
