"""MQTT publish -> receive through a local Mosquitto: MQTTClient vs raw aiomqtt and raw gmqtt.

The issue's workloads: QoS 0 (10,000 messages) and QoS 1 (5,000), each
publish awaited, in one run (quick: 1,000 and 200, no memory trace).

Rows: MQTTClient as configured by default (aiomqtt engine, ``protocol="auto"``,
which speaks MQTT 5 to Mosquitto) against raw aiomqtt's default (MQTT 3.1.1),
and the same protocol on both sides (MQTT 5 and 3.1.1; full run only), so
that the cost of MQTT 5 itself (paho parses a properties block per message)
is told apart from ours. Then MQTTClient on the gmqtt engine
(``engine="gmqtt"``) against raw aiomqtt (the issue's target: >= 6x) and
raw gmqtt (>= 0.8x, memory <= 1.1x), and raw gmqtt against raw aiomqtt
(what the library itself reaches on this machine).

Raw gmqtt consumes in its ``on_message`` callback, so the row compared with
it consumes the same way: an ``on_message`` handler run by
``start_listening()``, payloads kept as bytes (``message_format="bytes"``:
raw gmqtt decodes nothing either). The ``async for`` row is kept beside it,
labelled. Raw gmqtt has no awaitable publish: its QoS 0 side calls
``publish()`` in a loop (it only writes to the transport, as ours does), and
its QoS 1 side waits after each publish until gmqtt's store of
unacknowledged messages is empty (the PUBACK came), which is what "each
publish awaited" means there.

Each round: one subscriber and one publisher connection; the publisher sends
the round's messages (``await publish`` each, as a user would) while the
subscriber consumes them; a round's rate is its message count divided by the
time until the last one arrived.

Run alone: ``python -m benchmarks.bench_mqtt [--quick]``.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

import aiomqtt
import gmqtt

from agenticaiframework.communication import MQTTClient
from benchmarks.harness import Result, Side, compare_rows, format_table
from benchmarks.servers import pin_server
from tests.servers.mosquitto import Mosquitto

__all__ = ["run"]

_PAYLOAD = b'{"agent":"a1","status":"online","seq":0}'


def _ours(url: str, qos: int, protocol: str = "auto", engine: str | None = None) -> Side:
    """MQTTClient consuming with ``async for`` (messages wait in its queue)."""

    async def side(n: int) -> int:
        topic = f"bench/{uuid.uuid4().hex}"
        async with (
            MQTTClient(url, max_queued_messages=max(n, 1), protocol=protocol, engine=engine) as sub,
            MQTTClient(url, protocol=protocol, engine=engine) as pub,
        ):
            await sub.subscribe(topic, qos=qos)

            async def produce() -> None:
                for _ in range(n):
                    await pub.publish(topic, _PAYLOAD, qos=qos)

            producer = asyncio.create_task(produce())
            count = 0
            async for _message in sub:
                count += 1
                if count == n:
                    break
            await producer
        return n

    return side


def _ours_handler(url: str, qos: int, engine: str | None = None) -> Side:
    """MQTTClient consuming with an ``on_message`` handler, as raw gmqtt's callback does."""

    async def side(n: int) -> int:
        topic = f"bench/{uuid.uuid4().hex}"
        done = asyncio.get_running_loop().create_future()
        count = 0
        async with (
            MQTTClient(
                url, max_queued_messages=max(n, 1), engine=engine, message_format="bytes"
            ) as sub,
            MQTTClient(url, engine=engine) as pub,
        ):

            @sub.on_message(topic, qos=qos)
            def on_message(topic: str, payload: object) -> None:
                nonlocal count
                count += 1
                if count == n and not done.done():
                    done.set_result(None)

            await sub.subscribe(topic, qos=qos)
            listener = asyncio.create_task(sub.start_listening())
            for _ in range(n):
                await pub.publish(topic, _PAYLOAD, qos=qos)
            await done
            await sub.close()
            await listener
        return n

    return side


def _raw(port: int, qos: int, protocol: aiomqtt.ProtocolVersion | None = None) -> Side:
    version = {} if protocol is None else {"protocol": protocol}

    async def side(n: int) -> int:
        topic = f"bench/{uuid.uuid4().hex}"
        async with (
            aiomqtt.Client("127.0.0.1", port, **version) as sub,
            aiomqtt.Client("127.0.0.1", port, **version) as pub,
        ):
            await sub.subscribe(topic, qos=qos)

            async def produce() -> None:
                for _ in range(n):
                    await pub.publish(topic, _PAYLOAD, qos=qos)

            producer = asyncio.create_task(produce())
            count = 0
            async for _message in sub.messages:
                count += 1
                if count == n:
                    break
            await producer
        return n

    return side


def _raw_gmqtt(port: int, qos: int) -> Side:
    async def side(n: int) -> int:
        topic = f"bench/{uuid.uuid4().hex}"
        done = asyncio.get_running_loop().create_future()
        subscribed = asyncio.Event()
        count = 0

        def on_message(
            client: gmqtt.Client, topic: str, payload: bytes, qos: int, props: object
        ) -> int:
            nonlocal count
            count += 1
            if count == n and not done.done():
                done.set_result(None)
            return 0

        sub = gmqtt.Client(None)
        sub.on_message = on_message
        sub.on_subscribe = lambda *args: subscribed.set()
        pub = gmqtt.Client(None)
        await sub.connect("127.0.0.1", port)
        await pub.connect("127.0.0.1", port)
        try:
            sub.subscribe(topic, qos=qos)
            await subscribed.wait()
            store = pub._persistent_storage
            for _ in range(n):
                pub.publish(topic, _PAYLOAD, qos=qos)
                if qos:
                    await store.wait_empty()
            await done
        finally:
            await pub.disconnect()
            await sub.disconnect()
        return n

    return side


async def run(quick: bool) -> list[Result]:
    """Measure both workloads.

    Args:
        quick: Smaller message counts (CI smoke run).

    Returns:
        Result rows per QoS level.
    """
    n0, n1 = (1_000, 200) if quick else (10_000, 5_000)
    results: list[Result] = []
    async with Mosquitto() as broker:
        pin_server(broker.pid)
        for qos, n in ((0, n0), (1, n1)):
            raw311 = _raw(broker.port, qos)
            raw_gmqtt = _raw_gmqtt(broker.port, qos)
            ours_gmqtt = _ours(broker.url, qos, engine="gmqtt")
            ours_gmqtt_handler = _ours_handler(broker.url, qos, engine="gmqtt")
            rows: list[tuple[str, Side, Side]] = [
                (
                    f"MQTT QoS {qos} publish->receive ({n:,} msgs)",
                    _ours(broker.url, qos),
                    raw311,
                ),
                (
                    f'  engine="gmqtt", handler vs raw aiomqtt ({n:,} msgs)',
                    ours_gmqtt_handler,
                    raw311,
                ),
                (
                    f'  engine="gmqtt", handler vs raw gmqtt callback ({n:,} msgs)',
                    ours_gmqtt_handler,
                    raw_gmqtt,
                ),
                (
                    f'  engine="gmqtt", async for vs raw gmqtt callback ({n:,} msgs)',
                    ours_gmqtt,
                    raw_gmqtt,
                ),
                (f"  raw gmqtt vs raw aiomqtt ({n:,} msgs)", raw_gmqtt, raw311),
            ]
            if not quick:
                rows[1:1] = [
                    (
                        f"  same, both MQTT 5 ({n:,} msgs)",
                        _ours(broker.url, qos, "5"),
                        _raw(broker.port, qos, aiomqtt.ProtocolVersion.V5),
                    ),
                    (
                        f"  same, both MQTT 3.1.1 ({n:,} msgs)",
                        _ours(broker.url, qos, "3.1.1"),
                        raw311,
                    ),
                ]
            results += await compare_rows(
                rows,
                total=n,
                rounds=2 if quick else 10,
                memory=not quick,
                unit="msg/s",
            )
    return results


if __name__ == "__main__":
    rows = asyncio.run(run("--quick" in sys.argv))
    print(format_table("MQTT through Mosquitto: MQTTClient vs aiomqtt and gmqtt", rows))
