"""Tools: ToolClient.call_tool over HTTP vs the same request with raw httpx (and UTCP's client).

The tool server (tests/servers/tools_app.py) runs under uvicorn in a child
process. Each operation is one ``api.get_user`` call: a path argument, a
query argument and a header argument, JSON answer decoded.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from agenticaiframework.communication import HTTPConfig
from agenticaiframework.communication.tools import ToolClient

from .harness import Result, Side, compare_rows
from .servers import child_server, free_port

ARGS = {"user_id": "u1", "verbose": "true", "X-Trace": "t"}


def _calls(one: Callable[[], Awaitable[None]]) -> Side:
    async def side(count: int) -> int:
        for _ in range(count):
            await one()
        return count

    return side


async def run(quick: bool) -> list[Result]:
    """Sequential tool calls: ours vs raw httpx, and ours vs the reference utcp client."""
    n = 200 if quick else 2_000
    rounds = 2 if quick else 5  # rounds of 400 calls: shorter ones are mostly noise
    port = free_port()
    args = [
        "-m", "uvicorn", "--factory", "tests.servers.tools_app:app_factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        "--no-access-log", "--lifespan", "off", "--ws", "none",
    ]  # fmt: skip
    async with child_server(args, port):
        url = f"http://127.0.0.1:{port}"
        manual = {"name": "api", "call_template_type": "http", "url": url + "/utcp?compat=1"}
        results: list[Result] = []
        async with (
            ToolClient(http_config=HTTPConfig(max_retries=0)) as tools,
            httpx.AsyncClient(base_url=url) as raw,
        ):
            await tools.register_manual(manual)

            async def ours_one() -> None:
                await tools.call_tool("api.get_user", ARGS)

            async def raw_one() -> None:
                response = await raw.get(
                    "/users/u1", params={"verbose": "true"}, headers={"X-Trace": "t"}
                )
                response.raise_for_status()
                response.json()

            ours = _calls(ours_one)
            raw_httpx = _calls(raw_one)
            rows: list[tuple[str, Side, Side]] = [(f"{n} tool calls vs raw httpx", ours, raw_httpx)]
            reference: Any = None
            if importlib.util.find_spec("utcp_http") is not None:
                import logging
                import warnings

                root = logging.getLogger()
                level, handlers = root.level, list(root.handlers)
                # utcp_http calls logging.basicConfig(INFO) when its plugin loads, which
                # would print its registrations (and its warning for the manual's SSE
                # tool) and make httpx log every request of ours: silence it while it
                # loads, then put logging back as it was.
                logging.disable(logging.WARNING)
                try:
                    from utcp.utcp_client import UtcpClient

                    reference = await UtcpClient.create(config={"manual_call_templates": [manual]})
                finally:
                    logging.disable(logging.NOTSET)
                    root.setLevel(level)
                    root.handlers[:] = handlers

                async def utcp_one() -> None:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        await reference.call_tool("api.get_user", dict(ARGS))

                utcp_ref = _calls(utcp_one)
                rows.append((f"{n} tool calls vs utcp-http 1.1", ours, utcp_ref))
            try:
                # Ours is timed once a round against both references.
                results.extend(await compare_rows(rows, total=n, rounds=rounds))
            finally:
                if reference is not None:
                    await reference.close()
        return results
