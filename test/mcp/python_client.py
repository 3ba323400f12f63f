"""An MCP client we did not write: the Python `mcp` package from PyPI drives `daemon-control mcp`
over stdio and prints what it saw as one JSON document, which test/mcp/python-client.test.ts checks.

    python test/mcp/python_client.py /path/to/daemon-control.ts
"""
import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def text_of(result):
    return "".join(c.text for c in result.content if getattr(c, "type", None) == "text")


async def main():
    params = StdioServerParameters(command=sys.argv[1], args=["mcp"], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = (await session.list_tools()).tools
            added = await session.call_tool("kg_add_nodes", {"nodes": [{"id": "py1", "label": "Concept", "properties": {"from": "python"}}]})
            got = await session.call_tool("kg_get", {"id": "py1"})
            missing = await session.call_tool("kg_get", {"id": "no-such-node"})
            progress = []

            async def on_progress(value, total, message):
                progress.append(message)

            turn = await session.call_tool("agent_send", {"agent_id": "py", "message": "look in the graph"}, progress_callback=on_progress)
            resource = await session.read_resource("agentd://kg/node/py1")
            print(json.dumps({
                "server": init.server_info.name if hasattr(init, "server_info") else init.serverInfo.name,
                "protocol": getattr(init, "protocol_version", None) or getattr(init, "protocolVersion", None),
                "tools": sorted(t.name for t in tools),
                "kg_add_nodes_schema": (getattr(next(t for t in tools if t.name == "kg_add_nodes"), "input_schema", None)
                                        or next(t for t in tools if t.name == "kg_add_nodes").inputSchema),
                "added": json.loads(text_of(added)),
                "got": json.loads(text_of(got)),
                "missing": {"is_error": bool(getattr(missing, "is_error", None) or getattr(missing, "isError", None)), "text": text_of(missing)},
                "turn": json.loads(text_of(turn)),
                "progress": progress,
                "resource": resource.contents[0].text,
            }))


asyncio.run(main())
