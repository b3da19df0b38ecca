"""MQTT topic validation and matching (I/O-free), checked against paho-mqtt's own matcher."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from agenticaiframework.communication.core.errors import ConfigError
from agenticaiframework.communication.mqtt.topics import (
    TopicFilter,
    TopicRouter,
    topic_matches,
    validate_filter,
    validate_topic,
)

# No I/O here: the engine plays no part, so one engine is enough.
pytestmark = pytest.mark.parametrize("mqtt_engine", ["aiomqtt"], indirect=True)


@pytest.mark.parametrize(
    ("flt", "topic", "expected"),
    [
        ("agents/+/status", "agents/a1/status", True),
        ("agents/+/status", "agents/a1/x/status", False),
        ("agents/#", "agents", True),
        ("agents/#", "agents/a1/status", True),
        ("agents/#", "agentsx", False),
        ("#", "anything/at/all", True),
        ("#", "$SYS/broker/uptime", False),
        ("+/broker/uptime", "$SYS/broker/uptime", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
        ("+", "", True),
        ("+/+", "/", True),
        ("/+", "/x", True),
        ("a/b", "a/b", True),
        ("a/b", "a/b/", False),
        ("a/+/#", "a/b", True),
    ],
)
def test_matching_examples(flt: str, topic: str, expected: bool) -> None:
    assert topic_matches(flt, topic) is expected
    assert topic_matches_sub(flt, topic) is expected


@pytest.mark.parametrize("bad", ["a/#/b", "a+", "a/b+/c", "#/a", "a#", "", "a\x00b", "a/##"])
def test_invalid_filters_rejected(bad: str) -> None:
    with pytest.raises(ConfigError, match="topic filter"):
        validate_filter(bad)


@pytest.mark.parametrize("bad", ["a/+", "a/#", "", "x\x00"])
def test_invalid_topic_names_rejected(bad: str) -> None:
    with pytest.raises(ConfigError, match="topic"):
        validate_topic(bad)


def test_too_long_rejected() -> None:
    with pytest.raises(ConfigError, match="65535"):
        validate_topic("a" * 65536)
    with pytest.raises(ConfigError):
        validate_filter(1)  # type: ignore[arg-type]


def test_router_order_cache_and_remove() -> None:
    router: TopicRouter[str] = TopicRouter()
    router.add("agents/+/status", "status")
    router.add("agents/#", "all")
    router.add("tasks/+/result", "tasks")
    assert router.match("agents/a/status") == ("status", "all")
    assert router.match("agents/a/status") == ("status", "all")  # cached
    assert router.match("tasks/t1/result") == ("tasks",)
    assert router.match("other") == ()
    router.remove("agents/#", "all")
    assert router.match("agents/a/status") == ("status",)
    assert list(router.filters()) == ["agents/+/status", "tasks/+/result"]
    assert len(router) == 2
    assert TopicFilter("a/+") == TopicFilter("a/+")
    assert len({TopicFilter("a/+"), TopicFilter("a/+")}) == 1


_level = st.sampled_from(["a", "b", "", "$x", "$SYS", "sensor", "c d"])
_topic = st.lists(_level, min_size=1, max_size=5).map("/".join).filter(bool)
_filter_level = st.sampled_from(["a", "b", "", "+", "$x", "$SYS", "sensor"])


@st.composite
def _filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(_filter_level, min_size=1, max_size=5))
    if draw(st.booleans()):
        levels.append("#")
    return "/".join(levels) or "+"


@settings(max_examples=1500, deadline=None, database=None)
@given(flt=_filters(), topic=_topic)
def test_matcher_agrees_with_paho(flt: str, topic: str) -> None:
    validate_filter(flt)
    assert TopicFilter(flt).matches(topic) == topic_matches_sub(flt, topic), (flt, topic)


@settings(max_examples=300, deadline=None, database=None)
@given(topic=_topic)
def test_topic_matches_itself_and_hash(topic: str) -> None:
    assert TopicFilter(topic).matches(topic)
    if not topic.startswith("$"):
        assert TopicFilter("#").matches(topic)
