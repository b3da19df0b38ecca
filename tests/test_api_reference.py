"""The API reference reads well: roles become links, no private defaults, one page per group."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import griffe
import yaml

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("sphinx_roles", ROOT / "docs/_ext/sphinx_roles.py")
assert spec is not None and spec.loader is not None
sphinx_roles = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sphinx_roles)


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias and member.parent is obj:
            found.extend(_walk(member))
    return found


def test_docstrings_render_roles_as_links_and_signatures_hide_private_defaults() -> None:
    package = griffe.load(
        "agenticaiframework.communication",
        search_paths=[str(ROOT)],
        extensions=griffe.load_extensions(sphinx_roles.SphinxRoles),
    )
    objects = _walk(package)
    docstrings = [o.docstring.value for o in objects if o.docstring is not None]
    assert not [d for d in docstrings if sphinx_roles._ROLE.search(d)]
    links = sum(d.count("][agenticaiframework.communication.") for d in docstrings)
    assert links > 50, links
    defaults = [
        str(p.default) for o in objects if isinstance(o, griffe.Function) for p in o.parameters
    ]
    assert "_UNSET" not in defaults
    assert "<client default>" in defaults


def test_reference_is_one_page_per_module_group_and_covers_every_public_module() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    reference = next(entry for entry in config["nav"] if "API reference" in entry)
    pages = [
        p if isinstance(p, str) else next(iter(p.values())) for p in reference["API reference"]
    ]
    assert len(pages) >= 10
    shown = set()
    for page in pages:
        text = (ROOT / "docs" / page).read_text()
        shown.update(line[4:].strip() for line in text.splitlines() if line.startswith("::: "))
    package = ROOT / "agenticaiframework/communication"
    # Internal parts of a protocol folder: reached through the client, not imported by users.
    internal = {
        "http.engine",
        "http.aiohttp_engine",
        "websocket.protocol",
        "websocket.connection",
        "websocket.engine",
        "websocket.picows_engine",
        "mqtt.engine",
        "mqtt.aiomqtt_engine",
        "mqtt.gmqtt_engine",
        "mqtt.properties",
        "grpc.convert",
        "grpc.descriptors",
        "grpc.reflection",
        "testing.servers",
        "testing.reaper",
        "testing.mcp_child",
    }
    public = set()
    for path in package.rglob("*.py"):
        dotted = ".".join(path.relative_to(package).with_suffix("").parts)
        if (
            any(part.startswith("_") for part in dotted.split("."))
            or dotted.startswith("tools.")
            or dotted in {"cli", "demo"} | internal
            or path.read_text().startswith('"""Moved to ')  # an old path kept working
        ):
            continue
        public.add("agenticaiframework.communication." + dotted)
    assert public <= shown, public - shown
