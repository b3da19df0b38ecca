"""JSON codec: ``codecs.dumps`` + ``codecs.loads`` with orjson vs the standard library.

Run alone (it is a micro-benchmark, not one of ``benchmarks.run``'s client
comparisons): ``python -m benchmarks.bench_json``. Each message is encoded
and decoded through the package's codec (orjson when installed) and through
the same codec's standard-library path, which is what every client used
before orjson; the two are timed in interleaved rounds and the median
per-round ratio is printed.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from agenticaiframework.communication.core import codecs

_TOOL = {
    "type": "function",
    "function": {
        "name": "search_documents",
        "description": "Search the knowledge base and return the best passages.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50},
                "filters": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["query"],
        },
    },
}

MESSAGES: dict[str, Any] = {
    "chat request (tools, 4 turns)": {
        "model": "agent-large",
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are a careful assistant. " * 8},
            {"role": "user", "content": "Find the refund policy for orders placed in März."},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_8f2a",
                        "type": "function",
                        "function": {"name": "search_documents", "arguments": '{"query":"refund"}'},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_8f2a",
                "content": "Refunds within 30 days. " * 10,
            },
        ],
        "tools": [_TOOL, _TOOL, _TOOL],
    },
    "JSON-RPC tool result": {
        "jsonrpc": "2.0",
        "id": 42,
        "result": {
            "content": [{"type": "text", "text": "The weather in Zürich is 4 °C, light rain."}],
            "isError": False,
        },
    },
    "JSON-RPC with nulls (json path)": {
        "jsonrpc": "2.0",
        "id": 43,
        "result": {"content": [{"type": "text", "text": "ok"}], "structuredContent": None},
    },
    "embedding (1536 floats)": {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": 0,
                "embedding": [((i * 7919) % 1000) / 997.0 - 0.5 for i in range(1536)],
            }
        ],
        "model": "embed-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    },
}


def _rate(dumps: Callable[[Any], str], loads: Callable[[str], Any], message: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        loads(dumps(message))
    return n / (time.perf_counter() - start)


def main(quick: bool = False) -> None:
    """Print round trips per second, orjson path vs standard-library path, per message."""
    if codecs._orjson is None:
        print("orjson is not installed (pip install 'agenticaiframework-communication[fast]')")
        return
    rounds = 3 if quick else 15
    print(f"{'message':34} {'bytes':>6} {'orjson rt/s':>12} {'json rt/s':>10} {'ratio':>6}")
    for name, message in MESSAGES.items():
        size = len(codecs.dumps(message).encode())
        n = max(50, 2_000_000 // size // (10 if quick else 1))
        ratios, fast, slow = [], [], []
        for r in range(rounds):
            pair = [(codecs.dumps, codecs.loads), (codecs._json_dumps, codecs._json_loads)]
            order = pair if r % 2 == 0 else pair[::-1]
            rates = {id(d): _rate(d, lo, message, n) for d, lo in order}
            fast.append(rates[id(codecs.dumps)])
            slow.append(rates[id(codecs._json_dumps)])
            ratios.append(fast[-1] / slow[-1])
        print(
            f"{name:34} {size:>6} {statistics.median(fast):>12,.0f} "
            f"{statistics.median(slow):>10,.0f} {statistics.median(ratios):>5.2f}x"
        )


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
