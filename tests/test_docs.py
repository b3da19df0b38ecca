"""Every Python block in docs/ is run against local servers or marked illustrative.

A block is preceded by one marker comment:

* ``<!-- run: http -->``: run with ``http://127.0.0.1:8000`` replaced by the
  test HTTP server's URL (its app is ``tests/servers/http_app.py``);
* ``<!-- run: none -->``: run as is, no server needed;
* ``<!-- illustrative -->``: shown, not run (it talks to example hosts, or
  needs a server the docs page names but the test does not start).

A block without a marker fails the test, so the docs cannot drift silently.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.conftest import HTTPServer

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"(?:<!--\s*(?P<marker>[^>]*?)\s*-->\s*\n)?```python\n(?P<code>.*?)```", re.S)


def _blocks() -> list[tuple[str, int, str, str]]:
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((str(page.relative_to(DOCS)), line, match["marker"] or "", match["code"]))
    return found


BLOCKS = _blocks()


def test_every_block_is_marked() -> None:
    unmarked = [f"{page}:{line}" for page, line, marker, _ in BLOCKS if not marker]
    assert not unmarked, f"python blocks without a run/illustrative marker: {unmarked}"
    for page, line, marker, _ in BLOCKS:
        assert marker == "illustrative" or marker.startswith("run: "), f"{page}:{line}: {marker!r}"


async def _run(code: str) -> None:
    source = "async def __doc_block__():\n" + textwrap.indent(code, "    ") + "\n    return None\n"
    namespace: dict[str, object] = {}
    exec(compile(source, "<docs>", "exec"), namespace)
    await namespace["__doc_block__"]()  # type: ignore[operator]


RUNNABLE = [b for b in BLOCKS if b[2].startswith("run: ")]


@pytest.mark.parametrize(
    ("page", "line", "marker", "code"), RUNNABLE, ids=[f"{b[0]}:{b[1]}" for b in RUNNABLE]
)
async def test_doc_block_runs(
    page: str, line: int, marker: str, code: str, http_server: HTTPServer
) -> None:
    server = marker.removeprefix("run: ").strip()
    if server == "http":
        code = code.replace("http://127.0.0.1:8000", http_server.url)
    elif server != "none":
        pytest.fail(f"{page}:{line}: unknown server {server!r}")
    await _run(code)
