"""The ``agentcomm`` command line: a thin layer over the same clients."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from .errors import CommunicationError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(
        prog="agentcomm",
        description="Talk HTTP, WebSocket, SSE, MQTT, gRPC and STDIO from the command line.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "demo",
        help="start embedded loopback servers and walk through the clients",
        description="Start embedded servers on 127.0.0.1 and walk through each client.",
    )
    return parser


async def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from .demo import run_demo

        return await run_demo()
    raise CommunicationError(f"unknown command {args.command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 on a communication error, 2 on usage errors.
    """
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_dispatch(args))
    except CommunicationError as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
