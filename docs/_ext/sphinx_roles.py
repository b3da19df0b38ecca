"""A Griffe extension for the API reference: Sphinx roles become links, private defaults read well.

The docstrings use reStructuredText roles (``:class:`Name```, ``:meth:`name```)
that read well in an editor; in the rendered reference they become autorefs
cross-references (``[`Name`][Name]``), resolved by mkdocstrings' scoped
cross-references. The private "use the client default" marker shows as
``<client default>`` in signatures.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|exc|data|mod|obj):`(~?)([^`<>]+)`")
_PRIVATE_DEFAULTS = {"_UNSET": "<client default>"}


_PACKAGE = "agenticaiframework."


def _resolve(obj: griffe.Object, target: str) -> str | None:
    """The full path of ``target`` as seen from ``obj``, or None when it is not ours to link."""
    head, _, rest = target.partition(".")
    scope: griffe.Object | None = obj
    while scope is not None:
        try:
            base = scope.resolve(head)
        except (griffe.NameResolutionError, AttributeError, KeyError):
            base = None
        if base is None and head in scope.members:
            base = scope.members[head].path
        if base is None and isinstance(scope, griffe.Module):
            # A module docstring naming a method of the module's client class.
            for member in scope.members.values():
                if isinstance(member, griffe.Class) and head in member.members:
                    base = member.members[head].path
                    break
        if base is not None:
            path = f"{base}.{rest}" if rest else base
            return path if _is_rendered(obj, path) else None
        scope = scope.parent
    return target if target.startswith(_PACKAGE) and _is_rendered(obj, target) else None


def _is_rendered(obj: griffe.Object, path: str) -> bool:
    """True for a public object of this package that the reference pages show."""
    if not path.startswith(_PACKAGE) or any(p.startswith("_") for p in path.split(".")):
        return False
    try:
        found = obj.modules_collection.get_member(path)
    except (KeyError, ValueError, griffe.AliasResolutionError):
        return False
    if isinstance(found, griffe.Alias):
        try:
            return not any(p.startswith("_") for p in found.final_target.path.split("."))
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return False
    return True


def _rewrite(obj: griffe.Object, text: str) -> str:
    def link(match: re.Match[str]) -> str:
        short, target = match.group(1), match.group(2).strip().rstrip("()")
        title = target.rsplit(".", 1)[-1] if short else target
        path = _resolve(obj, target)
        return f"[`{title}`][{path}]" if path else f"`{title}`"

    return _ROLE.sub(link, text)


class SphinxRoles(griffe.Extension):
    """Rewrite roles in every docstring and private defaults in every signature."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Called once the whole package is loaded, so every name can be resolved."""
        self._visit(pkg)

    def _visit(self, obj: griffe.Object) -> None:
        if obj.docstring is not None and ":" in obj.docstring.value:
            obj.docstring.value = _rewrite(obj, obj.docstring.value)
        if isinstance(obj, griffe.Function):
            for parameter in obj.parameters:
                shown = _PRIVATE_DEFAULTS.get(str(parameter.default))
                if shown is not None:
                    parameter.default = shown
        for member in obj.members.values():
            if not member.is_alias and member.parent is obj:
                self._visit(member)
