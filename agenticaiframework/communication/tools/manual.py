"""UTCP manuals, tools, variable substitution and search (no I/O).

A manual is the UTCP 1.x JSON document a tool provider serves::

    {"manual_version": "1.0.0", "utcp_version": "1.0.1",
     "info": {"title": "...", "version": "...", "description": "..."},
     "tools": [{"name": "get_user", "description": "...", "tags": ["users"],
                "inputs": {"type": "object", "properties": {...}, "required": [...]},
                "outputs": {...},
                "tool_call_template": {"call_template_type": "http", "url": "..."}}]}

:func:`parse_manual` validates it; a bad tool is reported with its index,
name and field (``tools[1] ('get_user').inputs: must be an object``) and left
out, the rest of the manual still loads.

Variables: ``${VAR}`` (and ``$VAR``) in call templates are replaced by
:func:`substitute`, looked up under the manual's namespace (UTCP's
``<manual name with _ doubled>_VAR``) in the variables mapping and then, if
enabled, the environment. The manual call template the caller wrote may also
use plain ``VAR`` names; templates that came from a provider (the tools of a
manual) may not, so a manual cannot ask for another manual's secrets. Nor
can a name that starts with ``_``: manual ``acme`` asking for
``${_prod_API_KEY}`` would look up ``acme__prod_API_KEY``, which is manual
``acme_prod``'s ``API_KEY``; such names are refused (with names that do not
start with ``_``, the namespaced name tells its manual apart: the manual part
has only even runs of ``_``, the separator makes the first odd one). A
missing or refused variable raises
:class:`~agenticaiframework.communication.errors.ConfigError` naming it.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..core.errors import ConfigError
from .templates import CallTemplate, parse_template

__all__ = [
    "DEFAULT_UTCP_VERSION",
    "Manual",
    "RegisterManualResult",
    "SkippedTool",
    "Tool",
    "close_matches",
    "crossing_variables",
    "find_variables",
    "is_utcp_manual",
    "parse_manual",
    "parse_manual_parts",
    "parse_tool",
    "sanitize_name",
    "search",
    "substitute",
]

DEFAULT_UTCP_VERSION = "1.0.1"

_VAR = re.compile(r"\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)")
_REF = re.compile(r"\$ref(?![A-Za-z0-9_])")
_WORD = re.compile(r"\w+")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Tool:
    """One callable tool.

    Attributes:
        name: Full name, ``<manual>.<tool>`` once registered.
        description: What the tool does.
        inputs: JSON Schema of the arguments.
        outputs: JSON Schema of the result.
        tags: Words for search.
        average_response_size: Typical response size hint, if given.
        tool_call_template: How to call it (raw dict; ``${VAR}`` resolved at call time).
    """

    name: str
    description: str = ""
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    outputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    tags: tuple[str, ...] = ()
    average_response_size: int | None = None
    tool_call_template: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def call_template_type(self) -> str:
        """The protocol type of the tool's call template."""
        return str(self.tool_call_template.get("call_template_type", ""))

    def to_dict(self) -> dict[str, Any]:
        """The tool as UTCP JSON."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "tags": list(self.tags),
            "tool_call_template": self.tool_call_template,
        }
        if self.average_response_size is not None:
            out["average_response_size"] = self.average_response_size
        return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class Manual:
    """A UTCP manual: versions, info and tools.

    Attributes:
        manual_version: The provider's manual version.
        utcp_version: The UTCP version the manual follows.
        info: Free-form information (title, version, description).
        tools: The tools.
    """

    manual_version: str = "1.0.0"
    utcp_version: str = DEFAULT_UTCP_VERSION
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    tools: tuple[Tool, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The manual as UTCP JSON."""
        out: dict[str, Any] = {
            "manual_version": self.manual_version,
            "utcp_version": self.utcp_version,
            "tools": [t.to_dict() for t in self.tools],
        }
        if self.info:
            out["info"] = self.info
        return out


@dataclasses.dataclass(frozen=True)
class SkippedTool:
    """A tool a manual offered that was left out on purpose (not an error).

    Attributes:
        name: The tool's name as the manual gives it (not prefixed).
        reason: Why it was left out, e.g. its call template type is not in
            the manual's ``allowed_communication_protocols``.
    """

    name: str
    reason: str

    def __str__(self) -> str:
        return f"tool {self.name!r}: {self.reason}; left out"


@dataclasses.dataclass(frozen=True, kw_only=True)
class RegisterManualResult:
    """What :meth:`ToolClient.register_manual` found.

    ``errors`` holds what the reference UTCP client holds there: failures.
    Tools left out by policy are in ``skipped`` instead, so a manual that
    loaded as intended has ``errors == ()``.

    Attributes:
        manual_call_template: The manual's call template (variables resolved).
        manual: The manual with the tools that were registered.
        success: Whether the manual was loaded (tools may still have been
            left out; see ``errors`` and ``skipped``).
        errors: One line per failure: the provider unreachable or its
            manual invalid (then ``success`` is False), a tool that cannot be
            parsed, a tool refused by the security rules.
        skipped: The tools left out by policy, each with the reason: a call
            template type not in ``allowed_communication_protocols``, a
            duplicate name. Each is also logged as a warning.
        warnings: Parts of a document that were not used although their
            tool was registered (an OpenAPI cookie parameter, a ``$ref`` that
            does not resolve); also logged.
    """

    manual_call_template: CallTemplate
    manual: Manual
    success: bool
    errors: tuple[str, ...] = ()
    skipped: tuple[SkippedTool, ...] = ()
    warnings: tuple[str, ...] = ()


def sanitize_name(name: str) -> str:
    """The name a manual is registered under: non-word characters become ``_``.

    Args:
        name: The manual name from its call template.

    Returns:
        The sanitized name.
    """
    return re.sub(r"[^\w]", "_", name)


def is_utcp_manual(data: Any) -> bool:
    """Tell a UTCP manual from an OpenAPI document (or anything else).

    Args:
        data: A decoded JSON/YAML document.

    Returns:
        True when it has ``tools`` and a UTCP version field.
    """
    return (
        isinstance(data, Mapping)
        and isinstance(data.get("tools"), list)
        and ("utcp_version" in data or "manual_version" in data or "version" in data)
        and "openapi" not in data
        and "swagger" not in data
    )


def _schema(value: Any, where: str, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}.{field}: must be an object (JSON Schema), got {value!r}")
    props = value.get("properties")
    if props is not None and not isinstance(props, Mapping):
        raise ConfigError(f"{where}.{field}.properties: must be an object")
    required = value.get("required")
    if required is not None and (
        not isinstance(required, list) or not all(isinstance(r, str) for r in required)
    ):
        raise ConfigError(f"{where}.{field}.required: must be a list of strings")
    return dict(value)


def parse_tool(data: Any, where: str, *, default_template: Mapping[str, Any] | None = None) -> Tool:
    """Validate one tool entry of a manual.

    Args:
        data: The tool dict.
        where: Its path for error messages (``tools[2]``).
        default_template: Template used when the tool has none.

    Returns:
        The tool (name not yet prefixed).

    Raises:
        ConfigError: A field is missing or invalid; the message names tool and field.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be an object, got {type(data).__name__}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.name: required (a non-empty string)")
    where = f"{where} ({name!r})"
    description = data.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise ConfigError(f"{where}.description: must be a string")
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError(f"{where}.tags: must be a list of strings")
    size = data.get("average_response_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
        raise ConfigError(f"{where}.average_response_size: must be an integer")
    template = data.get("tool_call_template", data.get("tool_provider"))
    if template is None:
        template = default_template
    if template is None:
        raise ConfigError(f"{where}.tool_call_template: required")
    # Validate the structure now; ${VAR} values are checked again after substitution.
    parse_template(template, f"{where}.tool_call_template")
    return Tool(
        name=name,
        description=description,
        inputs=_schema(data.get("inputs"), where, "inputs"),
        outputs=_schema(data.get("outputs"), where, "outputs"),
        tags=tuple(tags),
        average_response_size=size,
        tool_call_template=dict(template),
    )


def parse_manual(
    data: Any, *, default_template: Mapping[str, Any] | None = None
) -> tuple[Manual, list[str]]:
    """Validate a UTCP manual document.

    Args:
        data: The decoded JSON document.
        default_template: Template for tools that have none.

    Returns:
        The manual with the valid tools, and one line per tool left out
        (invalid, or a second tool of the same name).

    Raises:
        ConfigError: The document itself is not a manual (not an object, no
            ``tools`` list, bad version fields).
    """
    manual, problems, skipped = parse_manual_parts(data, default_template=default_template)
    return manual, problems + [str(s) for s in skipped]


def parse_manual_parts(
    data: Any, *, default_template: Mapping[str, Any] | None = None
) -> tuple[Manual, list[str], list[SkippedTool]]:
    """:func:`parse_manual`, with invalid tools and skipped tools kept apart.

    Args:
        data: The decoded JSON document.
        default_template: Template for tools that have none.

    Returns:
        The manual, one error line per invalid tool, and the tools left out
        because an earlier tool has their name.

    Raises:
        ConfigError: The document itself is not a manual.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"manual: must be a JSON object, got {type(data).__name__}")
    tools_data = data.get("tools")
    if not isinstance(tools_data, list):
        raise ConfigError("manual.tools: required (a list)")
    versions: dict[str, str] = {}
    for field in ("manual_version", "utcp_version"):
        value = data.get(field)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"manual.{field}: must be a string, got {value!r}")
        if value is not None:
            versions[field] = value
    if "utcp_version" not in versions and isinstance(data.get("version"), str):
        versions["utcp_version"] = data["version"]  # UTCP 0.x spelling
    info = data.get("info") or {}
    if not isinstance(info, Mapping):
        raise ConfigError("manual.info: must be an object")
    tools: list[Tool] = []
    problems: list[str] = []
    skipped: list[SkippedTool] = []
    seen: set[str] = set()
    for index, entry in enumerate(tools_data):
        try:
            tool = parse_tool(entry, f"tools[{index}]", default_template=default_template)
        except ConfigError as exc:
            problems.append(exc.message)
            continue
        if tool.name in seen:
            skipped.append(
                SkippedTool(tool.name, f"tools[{index}]: duplicate name, the first one is kept")
            )
            continue
        seen.add(tool.name)
        tools.append(tool)
    return Manual(info=dict(info), tools=tuple(tools), **versions), problems, skipped


def _namespaced(namespace: str, key: str) -> str:
    return namespace.replace("_", "__") + "_" + key


def substitute(
    value: Any,
    variables: Mapping[str, str],
    *,
    namespace: str | None = None,
    use_environment: bool = False,
    plain_names: bool = True,
    where: str = "",
) -> Any:
    """Replace ``${VAR}`` / ``$VAR`` in every string of a nested structure.

    Strings holding a JSON-Schema ``$ref`` are left alone.

    Args:
        value: A dict, list, str or scalar.
        variables: Variable values.
        namespace: The manual name; ``<namespace with _ doubled>_VAR`` is tried first.
        use_environment: Fall back to ``os.environ``.
        plain_names: Also try ``VAR`` itself after the namespaced name (off
            for templates a provider sent).
        where: What is being substituted, for the error message.

    Returns:
        A copy with every variable replaced.

    Raises:
        ConfigError: A variable has no value, or (with a namespace) its name
            starts with ``_`` and could reach another manual's variables; the
            message names it.
    """
    if isinstance(value, str):
        if "$" not in value or _REF.search(value):
            return value

        def replace(match: re.Match[str]) -> str:
            key = match.group(1) or match.group(2)
            if namespace and key.startswith("_"):
                raise ConfigError(
                    f"{where or 'call_template'}: variable {key!r} starts with '_': manual "
                    f"{namespace!r} would look up {_namespaced(namespace, key)!r}, a name "
                    "another manual's variables can have; rename the variable"
                )
            if not namespace:
                candidates = [key]
            elif plain_names:
                candidates = [_namespaced(namespace, key), key]
            else:
                candidates = [_namespaced(namespace, key)]
            for candidate in candidates:
                if candidate in variables:
                    return str(variables[candidate])
            if use_environment:
                for candidate in candidates:
                    env = os.environ.get(candidate)
                    if env:
                        return env
            tried = " or ".join(repr(c) for c in candidates)
            raise ConfigError(
                f"{where or 'call_template'}: variable {key!r} is not set "
                f"(looked for {tried} in the variables"
                f"{' and the environment' if use_environment else ''})"
            )

        return _VAR.sub(replace, value)
    if isinstance(value, Mapping):
        return {
            k: v
            if k == "$ref"
            else substitute(
                v,
                variables,
                namespace=namespace,
                use_environment=use_environment,
                plain_names=plain_names,
                where=where,
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [
            substitute(
                v,
                variables,
                namespace=namespace,
                use_environment=use_environment,
                plain_names=plain_names,
                where=where,
            )
            for v in value
        ]
    return value


def find_variables(value: Any, namespace: str | None = None) -> list[str]:
    """List the variables a structure needs (namespaced names, sorted).

    Args:
        value: A dict, list or str.
        namespace: The manual name.

    Returns:
        The variable names, as :func:`substitute` would look them up first.
    """
    found: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, str):
            if "$" in item and not _REF.search(item):
                for match in _VAR.finditer(item):
                    key = match.group(1) or match.group(2)
                    found.add(_namespaced(namespace, key) if namespace else key)
        elif isinstance(item, Mapping):
            for v in item.values():
                walk(v)
        elif isinstance(item, list | tuple):
            for v in item:
                walk(v)

    walk(value)
    return sorted(found)


def crossing_variables(value: Any) -> list[str]:
    """Variables of a structure whose names start with ``_`` (refused by :func:`substitute`).

    Namespaced as ``<manual>_<name>``, such a name could equal another
    manual's namespaced variable (``acme`` + ``_prod_KEY`` = ``acme_prod`` +
    ``KEY``).

    Args:
        value: A dict, list or str (a tool's call template).

    Returns:
        The offending variable names, sorted.
    """
    return sorted(name for name in find_variables(value) if name.startswith("_"))


def search(
    tools: Iterable[Tool], query: str, *, limit: int = 10, tags: Iterable[str] | None = None
) -> list[Tool]:
    """Rank tools against a query by name, tags and description words.

    Scores: a query word in the tool's name (3), a tag that appears in the
    query or shares a word with it (3), a description word of 3+ letters in
    the query (1). Tools with no match are left out (unless ``tags`` selected
    them); ties keep registration order.

    Args:
        tools: The tools to search.
        query: Free text.
        limit: At most this many results.
        tags: If given, only tools with at least one of these tags.

    Returns:
        The best matches, best first.

    Raises:
        ConfigError: ``limit`` is negative.
    """
    if limit < 0:
        raise ConfigError(f"limit: must be >= 0, got {limit}")
    query_lower = query.lower()
    words = set(_WORD.findall(query_lower))
    wanted = {t.lower() for t in tags} if tags else None
    scored: list[tuple[float, int, Tool]] = []
    for order, tool in enumerate(tools):
        tool_tags = [t.lower() for t in tool.tags]
        if wanted is not None and not wanted.intersection(tool_tags):
            continue
        score = 0.0
        name_words = set(_WORD.findall(tool.name.lower().replace(".", " ")))
        name_words |= {part for w in name_words for part in w.split("_") if part}
        score += 3 * len(words & name_words)
        for tag in tool_tags:
            if tag in query_lower or words.intersection(_WORD.findall(tag)):
                score += 3
        for word in set(_WORD.findall(tool.description.lower())):
            if len(word) > 2 and word in words:
                score += 1
        if score > 0 or not words or wanted is not None:
            scored.append((score, order, tool))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [tool for _, _, tool in scored[:limit]]


def close_matches(name: str, names: Iterable[str], n: int = 3) -> list[str]:
    """Names that look like ``name`` (for "unknown tool" errors).

    Args:
        name: The name asked for.
        names: The known names.
        n: At most this many.

    Returns:
        Close matches, best first (also matching on the part after the manual).
    """
    known = list(names)
    matches = difflib.get_close_matches(name, known, n=n, cutoff=0.5)
    short = name.rsplit(".", 1)[-1]
    for full in known:
        if len(matches) >= n:
            break
        if full not in matches and full.rsplit(".", 1)[-1] == short:
            matches.append(full)
    return matches
