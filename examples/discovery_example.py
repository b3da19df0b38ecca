"""Agent discovery from AID records.

Run without arguments to parse records offline (no network)::

    python examples/discovery_example.py

or look a domain up at a DNS server of your choice::

    python examples/discovery_example.py example.com --nameserver 127.0.0.1 --port 5353
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from agenticaiframework.communication import SecurityError
from agenticaiframework.communication.agents.discovery import (
    AgentRecord,
    DiscoveryError,
    connect_agent,
    discover,
    parse_record,
)


def offline_tour() -> None:
    """Parse a few records: a valid one, a ws:// one and a malformed one."""
    record = parse_record(
        "v=aid1;p=websocket;uri=wss://events.example.com/stream;desc=Real-time Agent Feed"
    )
    print(f"parsed: proto={record.proto} uri={record.uri} desc={record.desc!r}")

    try:
        parse_record("v=aid1;p=websocket;uri=ws://events.example.com/stream")
    except SecurityError as exc:  # ws:// is refused whatever the host
        print(f"refused: {exc}")

    try:
        parse_record("v=aid1;p=mcp;p=a2a;uri=https://api.example.com/mcp")
    except DiscoveryError as exc:
        print(f"malformed: {exc}")


async def local_consent_tour() -> None:
    """A p=local record runs a command only when the caller agrees."""
    record = parse_record("v=aid1;p=local;uri=npx:@myorg/agent-cli;desc=CLI Agent")

    def ask(rec: AgentRecord, argv: Sequence[str]) -> bool:
        print(f"{rec.desc} wants to run {' '.join(argv)!r}: refusing in this example")
        return False

    try:
        await connect_agent(record, allow_local=ask)
    except SecurityError as exc:
        print(f"not run: {exc.code}")


async def lookup(domain: str, nameserver: str | None, port: int) -> None:
    """Discover ``domain`` and open (then close) the matching client."""
    nameservers = [nameserver] if nameserver else None
    record = await discover(domain, nameservers=nameservers, port=port)
    print(f"{record.name} (ttl {record.ttl}): {record.to_txt()}")
    client = await connect_agent(record)
    print(f"client: {type(client).__name__} (not connected yet)")
    await client.close()


async def main() -> None:
    """Run the tours, and a lookup when a domain is given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("domain", nargs="?")
    parser.add_argument("--nameserver")
    parser.add_argument("--port", type=int, default=53)
    args = parser.parse_args()
    offline_tour()
    await local_consent_tour()
    if args.domain:
        await lookup(args.domain, args.nameserver, args.port)


if __name__ == "__main__":
    asyncio.run(main())
