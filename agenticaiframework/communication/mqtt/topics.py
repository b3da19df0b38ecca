"""MQTT topic names and topic filters: validation and matching (no I/O).

Rules (MQTT 3.1.1 section 4.7, unchanged in MQTT 5):

* Topics and filters are non-empty UTF-8 strings of at most 65,535 bytes,
  without NUL characters; levels are separated by ``/`` and may be empty.
* A topic *name* (what is published to) contains no wildcard.
* In a topic *filter*, ``+`` matches exactly one level and must fill it
  (``a/+/b``, not ``a+``); ``#`` matches the parent level and any number of
  child levels and must be the last level on its own (``a/#``, not ``a/#/b``).
* Topics starting with ``$`` (``$SYS/...``) are not matched by a filter whose
  first level is a wildcard: ``#`` and ``+/x`` do not see them.

:class:`TopicRouter` maps filters to values (message handlers) and answers
"which values match this topic", caching answers per topic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from ..core.errors import ConfigError

__all__ = [
    "MAX_TOPIC_BYTES",
    "TopicFilter",
    "TopicRouter",
    "named_filter",
    "share_filter",
    "split_shared",
    "topic_matches",
    "validate_filter",
    "validate_topic",
]

MAX_TOPIC_BYTES = 65535
_CACHE_SIZE = 4096

V = TypeVar("V")


def _check_common(kind: str, text: object) -> str:
    if not isinstance(text, str):
        raise ConfigError(f"{kind}: must be a str, got {type(text).__name__}")
    if not text:
        raise ConfigError(f"{kind}: must not be empty")
    if "\x00" in text:
        raise ConfigError(f"{kind}: must not contain NUL characters: {text!r}")
    if len(text) * 4 > MAX_TOPIC_BYTES and len(text.encode("utf-8")) > MAX_TOPIC_BYTES:
        raise ConfigError(f"{kind}: longer than {MAX_TOPIC_BYTES} bytes in UTF-8")
    return text


def validate_topic(topic: object) -> str:
    """Check a topic name for publishing.

    Args:
        topic: The topic name.

    Returns:
        The topic, unchanged.

    Raises:
        ConfigError: Empty, too long, contains NUL, or contains ``+``/``#``.
    """
    text = _check_common("topic", topic)
    if "+" in text or "#" in text:
        raise ConfigError(f"topic: wildcards '+' and '#' are not allowed in a topic name: {text!r}")
    return text


def validate_filter(topic_filter: object) -> str:
    """Check a topic filter for subscribing.

    Args:
        topic_filter: The filter, e.g. ``agents/+/status`` or ``agents/#``.

    Returns:
        The filter, unchanged.

    Raises:
        ConfigError: Empty, too long, contains NUL, ``#`` not alone in the
            last level, or ``+`` not alone in its level.
    """
    text = _check_common("topic filter", topic_filter)
    if "+" not in text and "#" not in text:
        return text
    levels = text.split("/")
    last = len(levels) - 1
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != last):
            raise ConfigError(
                f"topic filter: '#' must be the whole last level (like 'a/#'): {text!r}"
            )
        if "+" in level and level != "+":
            raise ConfigError(f"topic filter: '+' must fill a whole level (like 'a/+/b'): {text!r}")
    return text


def share_filter(topic_filter: str, group: str) -> str:
    """The shared-subscription form ``$share/<group>/<filter>`` of a filter.

    Args:
        topic_filter: A valid filter (not itself shared).
        group: The share group: non-empty, without ``/``, ``+`` or ``#``.

    Returns:
        The shared filter.

    Raises:
        ConfigError: An invalid group, or a filter that is already shared.
    """
    if not isinstance(group, str) or not group or any(c in group for c in "/+#\x00"):
        raise ConfigError(f"group: must be a non-empty name without '/', '+', '#', got {group!r}")
    if topic_filter.startswith("$share/"):
        raise ConfigError(f"topic filter: already a shared subscription: {topic_filter!r}")
    return f"$share/{group}/{topic_filter}"


def split_shared(topic_filter: str) -> tuple[str | None, str]:
    """Split ``$share/<group>/<filter>`` into group and inner filter.

    Args:
        topic_filter: A filter, shared or not.

    Returns:
        ``(group, inner)``; ``(None, topic_filter)`` for a filter that is not shared.

    Raises:
        ConfigError: A ``$share/`` filter without a valid group or inner filter.
    """
    if not topic_filter.startswith("$share/"):
        return None, topic_filter
    _, group, *rest = topic_filter.split("/", 2)
    if not group or "+" in group or "#" in group or not rest or not rest[0]:
        raise ConfigError(
            f"topic filter: a shared subscription is '$share/<group>/<filter>': {topic_filter!r}"
        )
    return group, validate_filter(rest[0])


def named_filter(pattern: str) -> tuple[str, tuple[tuple[int, str], ...]]:
    """Turn ``agents/{agent_id}/status`` into ``agents/+/status`` and the names' levels.

    A level that is exactly ``{name}`` (a Python identifier) is a named ``+``.

    Args:
        pattern: A filter that may hold named levels.

    Returns:
        ``(filter, ((level_index, name), ...))``.

    Raises:
        ConfigError: A malformed or repeated name, or an invalid filter.
    """
    if "{" not in pattern and "}" not in pattern:
        return validate_filter(pattern), ()
    levels = pattern.split("/")
    names: list[tuple[int, str]] = []
    for i, level in enumerate(levels):
        if "{" not in level and "}" not in level:
            continue
        name = level[1:-1]
        if not (level.startswith("{") and level.endswith("}") and name.isidentifier()):
            raise ConfigError(
                f"topic filter: a named wildcard fills a whole level, like 'a/{{name}}/b': "
                f"{pattern!r}"
            )
        if any(name == seen for _, seen in names):
            raise ConfigError(f"topic filter: the name {name!r} is used twice in {pattern!r}")
        names.append((i, name))
        levels[i] = "+"
    return validate_filter("/".join(levels)), tuple(names)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Tell whether ``topic`` matches ``topic_filter`` (both assumed valid).

    Args:
        topic_filter: A valid filter.
        topic: A valid topic name.

    Returns:
        True when a subscription to the filter receives the topic.
    """
    return TopicFilter(topic_filter).matches(topic)


class TopicFilter:
    """A validated, pre-split topic filter.

    Args:
        topic_filter: The filter text.

    Raises:
        ConfigError: The filter is invalid.
    """

    __slots__ = ("_exact", "_levels", "_multi", "text")

    def __init__(self, topic_filter: str) -> None:
        self.text = validate_filter(topic_filter)
        levels = self.text.split("/")
        self._multi = levels[-1] == "#"
        if self._multi:
            levels.pop()
        self._levels: tuple[str, ...] = tuple(levels)
        self._exact = "+" not in self.text and not self._multi

    def matches(self, topic: str) -> bool:
        """Tell whether a topic name matches this filter.

        Args:
            topic: A topic name (as received from the broker).

        Returns:
            True on a match, following the MQTT rules in the module docstring.
        """
        if self._exact:
            return topic == self.text
        if topic[:1] == "$" and (not self._levels or self._levels[0] == "+"):
            return False
        parts = topic.split("/")
        levels = self._levels
        if self._multi:
            # 'a/#' matches 'a' itself and everything below it.
            if len(parts) < len(levels):
                return False
        elif len(parts) != len(levels):
            return False
        for want, got in zip(levels, parts, strict=False):
            if want != "+" and want != got:
                return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TopicFilter) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"TopicFilter({self.text!r})"


class TopicRouter(Generic[V]):
    """Values (handlers) registered per topic filter, looked up by topic name.

    Lookups are cached per topic (bounded); registering clears the cache.
    """

    def __init__(self) -> None:
        self._routes: list[tuple[TopicFilter, V]] = []
        self._cache: dict[str, tuple[V, ...]] = {}

    def add(self, topic_filter: str, value: V) -> TopicFilter:
        """Register ``value`` for ``topic_filter``.

        Args:
            topic_filter: The filter.
            value: What :meth:`match` returns for matching topics.

        Returns:
            The parsed filter.

        Raises:
            ConfigError: The filter is invalid.
        """
        parsed = TopicFilter(topic_filter)
        self._routes.append((parsed, value))
        self._cache.clear()
        return parsed

    def remove(self, topic_filter: str, value: V) -> None:
        """Remove one registration; unknown pairs are ignored.

        Args:
            topic_filter: The filter given to :meth:`add`.
            value: The value given to :meth:`add`.
        """
        for i, (flt, val) in enumerate(self._routes):
            if flt.text == topic_filter and val is value:
                del self._routes[i]
                self._cache.clear()
                return

    def filters(self) -> Iterator[str]:
        """The registered filters, in registration order, without repeats."""
        seen: set[str] = set()
        for flt, _ in self._routes:
            if flt.text not in seen:
                seen.add(flt.text)
                yield flt.text

    def __len__(self) -> int:
        return len(self._routes)

    def exact(self, topic_filter: str) -> tuple[V, ...]:
        """The values registered for exactly this filter, in registration order.

        Args:
            topic_filter: A filter as given to :meth:`add`.

        Returns:
            Its values (empty tuple when none).
        """
        return tuple(val for flt, val in self._routes if flt.text == topic_filter)

    def match(self, topic: str) -> tuple[V, ...]:
        """The values whose filter matches ``topic``, in registration order.

        Args:
            topic: A topic name.

        Returns:
            Matching values (empty tuple when none).
        """
        found = self._cache.get(topic)
        if found is None:
            found = tuple(val for flt, val in self._routes if flt.matches(topic))
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[topic] = found
        return found
