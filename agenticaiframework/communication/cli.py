"""The ``agentcomm`` command line: a thin layer over the same clients.

Output is one JSON document per line when stdout is not a terminal, and
readable text when it is. Errors are one line, ``error ERR_CODE: message``,
on stderr, with exit status 1 (2 for usage errors, from argparse).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shlex
import signal
import sys
import tomllib
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .core import codecs
from .core.errors import CommunicationError, ConfigError
from .core.security import install_log_redaction, is_loopback_host, redact_text

__all__ = ["Output", "build_parser", "load_clients", "main"]


class Output:
    """Prints results as JSON lines (piped) or readable text (terminal).

    Args:
        stream: Where to print.
        json_lines: Force JSON lines on (True) or off (False); default: when
            ``stream`` is not a terminal.
    """

    def __init__(self, stream: TextIO, json_lines: bool | None = None) -> None:
        self.stream = stream
        self.json_lines = not stream.isatty() if json_lines is None else json_lines

    def emit(self, value: Any, *, label: str = "") -> None:
        """Print one result.

        Args:
            value: dict/list/str/bytes/number.
            label: A short prefix for the readable form (topic, event name...).
        """
        if self.json_lines:
            doc = value if not isinstance(value, bytes) else {"base64": _b64(value)}
            print(json.dumps(doc, ensure_ascii=False, default=str), file=self.stream, flush=True)
            return
        if isinstance(value, dict | list):
            text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
        elif isinstance(value, bytes):
            text = repr(value)
        else:
            text = str(value)
        print(f"{label}: {text}" if label else text, file=self.stream, flush=True)


def _version() -> str:
    from . import __version__

    return __version__


def _with_scheme(url: str, *, plain: str, secure: str) -> str:
    """Give a URL typed without a scheme one, as curl does.

    ``127.0.0.1:8081/x`` becomes ``http://127.0.0.1:8081/x`` (plain text to
    loopback), ``api.example.com/x`` becomes ``https://api.example.com/x``.
    """
    if "://" in url or not url or url.startswith("/"):
        return url
    host = url.split("/", 1)[0].rsplit("@", 1)[-1]
    host = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    return f"{plain if is_loopback_host(host) else secure}://{url}"


# Words of the library's messages that name a Python keyword, and the flag that sets it here.
_FLAG_FOR_KEYWORD = {"set allow_insecure=True": "pass --insecure"}


def _cli_message(message: str) -> str:
    for keyword, flag in _FLAG_FOR_KEYWORD.items():
        message = message.replace(keyword, flag)
    return message


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def _parse_message(text: str) -> Any:
    """A command-line message: JSON when it parses as an object or array, else text."""
    return codecs.decode(text, "auto")


def _headers(values: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"-H: expected 'Name: value', got {item!r}")
        headers[name.strip()] = value.strip()
    return headers


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after the subcommand.

    On the top-level parser they carry the defaults; on subcommands their
    default is "not given" (SUPPRESS), so a value typed before the subcommand
    is not overwritten by the subcommand's default.
    """
    unset: Any = None if top else argparse.SUPPRESS
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument(
        "--jsonl",
        dest="json_lines",
        action="store_true",
        default=unset,
        help="print JSON lines even on a terminal",
    )
    fmt.add_argument(
        "--pretty",
        dest="json_lines",
        action="store_false",
        default=unset,
        help="print readable text even when piped",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="allow plain-text transports to non-loopback hosts",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if top else argparse.SUPPRESS,
        help="log the clients' activity on stderr (-v: info, -vv: debug)",
    )


class _SubcommandParsers(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Subcommands that take the global options too, and know their own parser."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = super().add_parser(name, **kwargs)
        _add_global_options(parser, top=False)
        parser.set_defaults(_parser=parser)
        return parser


class _Parser(argparse.ArgumentParser):
    """A parser whose subcommands (at every depth) take the global options too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _SubcommandParsers)


def _add_dns_options(parser: argparse.ArgumentParser) -> None:
    """``--nameserver`` and ``--port``: the DNS servers AID discovery asks."""
    parser.add_argument(
        "--nameserver", action="append", default=None, help="DNS server IP (repeatable)"
    )
    parser.add_argument("--port", type=int, default=53, help="DNS port")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand.

    Global options (``--jsonl``, ``--pretty``, ``--insecure``, ``-v``) work
    before or after the subcommand.

    Returns:
        The parser.
    """
    parser = _Parser(
        prog="agentcomm",
        description="Talk HTTP, WebSocket, SSE, MQTT, gRPC and STDIO from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_global_options(parser, top=True)
    parser.set_defaults(_parser=parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "http",
        help="send one HTTP request",
        description="Send one HTTP request and print the response.",
    )
    p.add_argument("method", help="GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS")
    p.add_argument("url")
    p.add_argument("--json", dest="body", metavar="BODY", help="JSON request body")
    p.add_argument(
        "-H", "--header", action="append", default=[], help="'Name: value' header (repeatable)"
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")

    p = sub.add_parser(
        "ws",
        help="WebSocket: send and receive",
        description=(
            "Open a WebSocket; send messages and print what arrives. Interactive "
            "when stdin is a terminal: each line you type is sent."
        ),
    )
    p.add_argument("url")
    p.add_argument(
        "--send",
        action="append",
        default=[],
        metavar="MSG",
        help="message to send (JSON or text; repeatable)",
    )
    p.add_argument(
        "--count",
        type=int,
        default=None,
        help="stop after N received messages (default: one per --send, or forever)",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each message")

    p = sub.add_parser(
        "sse", help="print a Server-Sent Events stream", description="Print each event of a stream."
    )
    p.add_argument("url")
    p.add_argument("--count", type=int, default=None, help="stop after N events")
    p.add_argument("--until", default=None, metavar="EVENT", help="stop at this event name")
    p.add_argument(
        "--no-reconnect",
        dest="reconnect",
        action="store_false",
        help="stop when the server ends the stream (default: resume with Last-Event-ID)",
    )

    p = sub.add_parser(
        "mqtt",
        help="MQTT publish or subscribe",
        description="Publish to or subscribe from an MQTT broker.",
    )
    broker_help = "broker URL (default mqtt://127.0.0.1:1883)"
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help=broker_help)
    msub = p.add_subparsers(dest="mqtt_command", required=True, metavar="ACTION")
    mp = msub.add_parser("pub", help="publish one message", description="Publish one message.")
    mp.add_argument("--broker", default=argparse.SUPPRESS, help=broker_help)
    mp.add_argument("topic")
    mp.add_argument("payload", help="JSON or text")
    mp.add_argument("--qos", type=int, default=0, choices=(0, 1, 2))
    mp.add_argument("--retain", action="store_true")
    ms = msub.add_parser(
        "sub",
        help="subscribe and print messages",
        description="Subscribe to topics and print messages.",
    )
    ms.add_argument("--broker", default=argparse.SUPPRESS, help=broker_help)
    ms.add_argument("topics", nargs="+")
    ms.add_argument("--qos", type=int, default=0, choices=(0, 1, 2))
    ms.add_argument("--count", type=int, default=None, help="stop after N messages")

    p = sub.add_parser(
        "grpc",
        help="gRPC call or describe",
        description="Call a gRPC method with a JSON request, or describe a server.",
    )
    gsub = p.add_subparsers(dest="grpc_command", required=True, metavar="ACTION")
    gc = gsub.add_parser(
        "call",
        help="call a unary or server-streaming method",
        description="Call SERVICE.METHOD with a JSON request.",
    )
    gc.add_argument("target", help="host:port")
    gc.add_argument("method", help="Service.Method (short or full service name)")
    gc.add_argument("request", nargs="?", default="{}", help="JSON request (default {})")
    gc.add_argument(
        "--proto", action="append", default=[], help=".proto file (default: server reflection)"
    )
    gc.add_argument("--secure", action="store_true", help="use TLS")
    gc.add_argument("--timeout", type=float, default=30.0)
    gd = gsub.add_parser(
        "describe",
        help="list services and methods with request schemas",
        description="Describe the services of a server (reflection or --proto).",
    )
    gd.add_argument("target", help="host:port")
    gd.add_argument("--proto", action="append", default=[])
    gd.add_argument("--secure", action="store_true")
    gd.add_argument(
        "--json",
        dest="raw_json",
        action="store_true",
        help="print the whole description with JSON Schemas (default on a terminal: a tree)",
    )

    p = sub.add_parser(
        "stdio",
        help="talk to a process over stdin/stdout",
        description=(
            "Start CMD; send each --send message (or each line of stdin) and print what it "
            "answers. With --format jsonrpc, messages are JSON-RPC requests (printed: the "
            "whole reply) or notifications (no id: nothing awaited)."
        ),
    )
    p.add_argument("--send", action="append", default=[], metavar="MSG")
    p.add_argument("--format", default="json", choices=("json", "line", "raw", "jsonrpc"))
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each answer")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")

    p = sub.add_parser(
        "mcp",
        help="list or call the tools of an MCP server",
        description=(
            "Talk to an MCP server over Streamable HTTP (URL) or stdio (-- CMD): list its "
            "tools, or call one with KEY=VALUE arguments (VALUE is JSON when it parses, "
            "else text). Examples: agentcomm mcp http://127.0.0.1:8000/mcp; agentcomm mcp "
            "http://127.0.0.1:8000/mcp call add a=1 b=2; agentcomm mcp call add a=1 b=2 -- "
            "python server.py. A server that answers 401 is authorized as the MCP "
            "specification says: in the browser (the redirect comes back to a listener on "
            "127.0.0.1), or with --client-id and a secret by the client-credentials grant. "
            "Options go before the URL."
        ),
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    p.add_argument(
        "--no-auth", action="store_true", help="never authorize (a 401 is an ERR_AUTH error)"
    )
    p.add_argument("--client-id", default=None, help="a pre-registered OAuth client id")
    p.add_argument(
        "--client-secret",
        default=None,
        help="its secret: the client-credentials grant, no browser "
        "(default: $AGENTCOMM_MCP_CLIENT_SECRET, which stays out of process lists)",
    )
    p.add_argument("--scope", default=None, help="OAuth scope to ask for (default: the server's)")
    p.add_argument(
        "--callback-port",
        type=int,
        default=0,
        help="port of the http://127.0.0.1:PORT/callback redirect URI (one a pre-registered "
        "client registered; default: a free port)",
    )
    p.add_argument(
        "--token-file",
        default=None,
        metavar="PATH",
        help="keep tokens and registrations in this private JSON file (mode 0600), so the "
        "next run needs no browser (default: kept in memory for this run only)",
    )
    p.add_argument(
        "words", nargs=argparse.REMAINDER, help="[URL] [call TOOL [KEY=VALUE...]] [-- CMD ARGS...]"
    )

    p = sub.add_parser(
        "health",
        help="health-check clients listed in a TOML file",
        description=(
            "Check every client in FILE through a ConnectionManager; exit 1 if any is "
            "unhealthy. FILE has one table per client: [clients.NAME] with type = http, "
            "websocket, sse, mqtt, grpc or stdio, and url = '...' (or target / command)."
        ),
    )
    p.add_argument("file")
    p.add_argument("--timeout", type=float, default=5.0, help="per-check timeout")

    p = sub.add_parser(
        "discover",
        help="look up an agent's AID record",
        description="Look up the AID TXT record at _agent.NAME and print it.",
    )
    p.add_argument("name", help="domain")
    p.add_argument("--protocol", default=None)
    _add_dns_options(p)

    p = sub.add_parser(
        "connect",
        help="say which client an address resolves to",
        description=(
            "Resolve ADDRESS as connect() does (a URL, an A2A agent card URL, a bare domain "
            "through AID discovery, or -- CMD) and print the client type, the protocol and the "
            "URL (credentials redacted). Nothing is connected."
        ),
    )
    p.add_argument("--protocol", default=None, help="mcp, a2a, sse ... (see connect())")
    _add_dns_options(p)
    p.add_argument(
        "address", nargs=argparse.REMAINDER, help="ADDRESS, or -- CMD [ARGS...] (after the options)"
    )

    p = sub.add_parser(
        "a2a",
        help="send a message to an A2A agent and stream the task",
        description=(
            "Read the agent card at URL, send MESSAGE (JSON or text) and print the task's "
            "updates as they come (JSON lines when piped). Answer an input-required task with "
            "--task-id and --context-id. Exit 1 when the task fails or is rejected."
        ),
    )
    p.add_argument("url", help="the agent's base URL or its agent card URL")
    p.add_argument("message", help="text, or JSON for a data part")
    p.add_argument("--binding", default=None, choices=("jsonrpc", "rest", "grpc"))
    p.add_argument("--token", default=None, help="bearer token or API key for the agent")
    p.add_argument("--task-id", default=None, help="continue this task (input-required)")
    p.add_argument("--context-id", default=None, help="the conversation's context id")
    p.add_argument(
        "-H", "--header", action="append", default=[], help="'Name: value' header (repeatable)"
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per call (default 60)")

    p = sub.add_parser(
        "demo",
        help="start embedded loopback servers and walk through the clients",
        description="Start embedded servers on 127.0.0.1 and walk through each client.",
    )
    p.add_argument(
        "--trace",
        action="store_true",
        help="record OpenTelemetry spans (needs opentelemetry-sdk) and print the span tree",
    )
    return parser


async def _http(args: argparse.Namespace, out: Output) -> int:
    from .http.client import HTTPClient

    body = json.loads(args.body) if args.body else None
    async with HTTPClient(
        max_retries=0, allow_insecure=args.insecure, timeout_seconds=args.timeout
    ) as client:
        response = await client.request(
            args.method.upper(),
            _with_scheme(args.url, plain="http", secure="https"),
            json=body,
            headers=_headers(args.header),
        )
    try:
        payload: Any = response.json()
    except CommunicationError:
        payload = response.text
    if out.json_lines:
        out.emit(
            {"status": response.status_code, "headers": dict(response.headers), "body": payload}
        )
    else:
        out.emit(f"HTTP {response.status_code} {response.reason_phrase}")
        out.emit(payload)
    return 0 if response.status_code < 400 else 1


async def _ws(args: argparse.Namespace, out: Output) -> int:
    from .websocket.client import WebSocketClient

    url = _with_scheme(args.url, plain="ws", secure="wss")
    async with WebSocketClient(url, allow_insecure=args.insecure, auto_reconnect=False) as ws:
        if not args.send and sys.stdin.isatty():
            return await _interactive(ws, out)
        for message in args.send:
            await ws.send(_parse_message(message))
        count = args.count if args.count is not None else (len(args.send) or None)
        received = 0
        while count is None or received < count:
            message = await ws.receive(timeout=args.timeout)
            out.emit(message)
            received += 1
    return 0


async def _interactive(ws: Any, out: Output) -> int:
    """Send each line typed on stdin, print each message; stop at EOF or when the peer closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    # A non-blocking read of stdin on the loop: no thread left blocked in readline() at exit.
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )

    async def printer() -> None:
        async for message in ws:
            out.emit(message, label="<")

    async def sender() -> None:
        while line := await reader.readline():
            text = line.decode(errors="replace").rstrip("\r\n")
            if text.strip():
                await ws.send(_parse_message(text))

    tasks = [
        loop.create_task(printer(), name="agentcomm-ws-printer"),
        loop.create_task(sender(), name="agentcomm-ws-sender"),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        transport.close()
    for task in tasks:
        if not task.cancelled():
            task.result()  # re-raise what ended it, if anything failed
    return 0


async def _sse(args: argparse.Namespace, out: Output) -> int:
    from .sse.client import SSEClient

    received = 0
    url = _with_scheme(args.url, plain="http", secure="https")
    async with SSEClient(url, allow_insecure=args.insecure, auto_reconnect=args.reconnect) as sse:
        async for event in sse:
            if out.json_lines:
                out.emit({"event": event.event, "data": event.data, "id": event.id})
            else:
                # The data as the server sent it: JSON text stays JSON, not a quoted string.
                name = event.event if event.id is None else f"{event.event} [{event.id}]"
                out.emit(event.data, label=name)
            received += 1
            if args.until and event.event == args.until:
                break
            if args.count is not None and received >= args.count:
                break
    return 0


async def _mqtt(args: argparse.Namespace, out: Output) -> int:
    from .mqtt.client import MQTTClient

    async with MQTTClient(args.broker, allow_insecure=args.insecure) as mqtt:
        if args.mqtt_command == "pub":
            await mqtt.publish(
                args.topic, _parse_message(args.payload), qos=args.qos, retain=args.retain
            )
            out.emit({"published": args.topic, "qos": args.qos})
            return 0
        await mqtt.subscribe([(topic, args.qos) for topic in args.topics])
        received = 0
        async for message in mqtt:
            out.emit(
                {"topic": message.topic, "payload": message.payload, "qos": message.qos},
                label=message.topic,
            )
            received += 1
            if args.count is not None and received >= args.count:
                break
    return 0


async def _grpc(args: argparse.Namespace, out: Output) -> int:
    from .grpc.client import GRPCClient

    # One attempt, as for http: a command line should fail fast and say why.
    options: dict[str, Any] = {
        "allow_insecure": args.insecure,
        "secure": args.secure,
        "max_retries": 0,
    }
    if args.proto:
        options["proto_files"] = args.proto
    async with GRPCClient(args.target, **options) as client:
        if args.grpc_command == "describe":
            description = await client.describe()
            if out.json_lines or args.raw_json:
                out.emit(description)
            else:
                for line in _describe_tree(description):
                    out.emit(line)
            return 0
        service, sep, method = args.method.rpartition(".")
        if not sep or not service:
            raise ConfigError(f"method: expected Service.Method, got {args.method!r}")
        request = json.loads(args.request)
        if _server_streaming(await client.describe(), service, method):
            async with client.stream_call(
                service, method, request=request, timeout=args.timeout
            ) as replies:
                async for reply in replies:
                    out.emit(reply)
            return 0
        out.emit(await client.call(service, method, request=request, timeout=args.timeout))
    return 0


def _describe_tree(description: dict[str, Any]) -> list[str]:
    """A compact view of a description: services, methods and their request fields."""
    lines = [f"{description['target']} ({description['source']})"]
    for service in description["services"]:
        lines.append(f"  {service['name']}")
        for method in service["methods"]:
            arrow_in = "stream " if method["client_streaming"] else ""
            arrow_out = "stream " if method["server_streaming"] else ""
            lines.append(
                f"    {method['name']}({arrow_in}{method['input_type']}) -> "
                f"{arrow_out}{method['output_type']}"
            )
            fields = method.get("request_schema", {}).get("properties", {})
            if fields:
                shown = ", ".join(f"{n}: {_schema_type(f)}" for n, f in fields.items())
                lines.append(f"        {shown}")
    return lines


def _schema_type(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "enum"
    kind = schema.get("type", schema.get("title", "any"))
    if kind == "array":
        return f"[{_schema_type(schema.get('items', {}))}]"
    if kind == "object" and "title" in schema:
        return str(schema["title"]).rsplit(".", 1)[-1]
    return str(kind)


def _server_streaming(description: dict[str, Any], service: str, method: str) -> bool:
    """Whether ``service.method`` streams its responses (unknown methods: False).

    Raises:
        ConfigError: The method streams its requests, which a single JSON
            argument cannot express.
    """
    for svc in description["services"]:
        if service not in (svc["name"], svc["short_name"]):
            continue
        for info in svc["methods"]:
            if info["name"] != method:
                continue
            if info["client_streaming"]:
                raise ConfigError(
                    f"method: {svc['name']}.{method} streams its requests; "
                    "agentcomm grpc call sends one request (unary or server-streaming only)"
                )
            return bool(info["server_streaming"])
    return False


async def _stdio(args: argparse.Namespace, out: Output) -> int:
    from .stdio.client import STDIOClient

    command = [c for c in args.cmd if c != "--"] if args.cmd[:1] == ["--"] else list(args.cmd)
    if not command:
        raise ConfigError(
            "cmd: give the command after --, e.g. agentcomm stdio -- python worker.py"
        )
    messages = list(args.send)
    if not messages and not sys.stdin.isatty():
        messages = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    status = 0
    async with STDIOClient(
        command=command, message_format=args.format, response_timeout=args.timeout
    ) as proc:
        for text in messages:
            message = _parse_message(text) if args.format in ("json", "jsonrpc") else text
            await proc.send(message)
            if _is_notification(message):
                continue  # JSON-RPC notifications get no answer
            reply = await proc.receive(timeout=args.timeout)
            out.emit(reply)
            if args.format == "jsonrpc" and isinstance(reply, dict) and "error" in reply:
                status = 1  # the peer said no: printed in full, and the exit status says so
    return status


def _is_notification(message: Any) -> bool:
    return isinstance(message, dict) and "method" in message and "id" not in message


def _mcp_words(words: Sequence[str]) -> tuple[str | None, list[str], list[str]]:
    """Split ``[URL] [call TOOL k=v...] [-- CMD...]`` into (url, action words, command)."""
    words = list(words)
    command: list[str] = []
    if "--" in words:
        cut = words.index("--")
        words, command = words[:cut], words[cut + 1 :]
    url = None
    if not command:
        if not words or words[0] == "call":
            raise ConfigError("mcp: give the server's URL, or -- CMD to start it over stdio")
        url, words = words[0], words[1:]
    return url, words, command


def _mcp_arguments(pairs: Sequence[str]) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"mcp call: expected KEY=VALUE, got {pair!r}")
        try:
            arguments[key] = json.loads(value)
        except json.JSONDecodeError:
            arguments[key] = value
    return arguments


async def _mcp(args: argparse.Namespace, out: Output) -> int:
    from .agents.mcp import MCPClient

    url, action, command = _mcp_words(args.words)
    if action and (action[0] != "call" or len(action) < 2):
        raise ConfigError(f"mcp: expected 'call TOOL [KEY=VALUE...]', got {' '.join(action)!r}")
    async with contextlib.AsyncExitStack() as stack:
        client = (
            MCPClient(
                _with_scheme(url, plain="http", secure="https"),
                timeout=args.timeout,
                allow_insecure=args.insecure,
                **({} if args.no_auth else {"auth": await _mcp_oauth(args, stack)}),
            )
            if url is not None
            else MCPClient(command=command, timeout=args.timeout)
        )
        mcp = await stack.enter_async_context(client)
        if not action:
            for tool in await mcp.list_tools():
                if out.json_lines:
                    out.emit(tool)
                else:
                    out.emit(str(tool.get("description") or "").strip(), label=tool["name"])
            return 0
        result = await mcp.call_tool(action[1], _mcp_arguments(action[2:]))
    out.emit(result)
    return 1 if result.get("isError") else 0  # the tool said it failed


async def _mcp_oauth(args: argparse.Namespace, stack: contextlib.AsyncExitStack) -> Any:
    """MCP authorization for ``agentcomm mcp URL`` (it acts only when the server answers 401).

    With a client secret: the client-credentials grant. Otherwise the
    authorization-code flow, the user step in the browser with the redirect
    caught by a :class:`LoopbackCallback` (listening until the command ends).
    """
    from .agents.mcp.auth import FileTokenStore, LoopbackCallback, MCPOAuth

    store = FileTokenStore(args.token_file) if args.token_file else None
    secret = args.client_secret
    if secret is None and args.client_id:
        secret = os.environ.get("AGENTCOMM_MCP_CLIENT_SECRET") or None
    if secret is not None:
        return MCPOAuth(
            client_id=args.client_id, client_secret=secret, scope=args.scope, store=store
        )
    callback = await stack.enter_async_context(LoopbackCallback(port=args.callback_port))
    return MCPOAuth(
        authorize=callback,
        redirect_uri=callback.redirect_uri,
        client_id=args.client_id,
        scope=args.scope,
        store=store,
    )


def load_clients(path: str, *, allow_insecure: bool = False) -> dict[str, Any]:
    """Build clients from a TOML file, one ``[clients.NAME]`` table each.

    Keys: ``type`` (http, websocket, sse, mqtt, grpc, stdio), then ``url``
    (http, websocket, sse, mqtt), ``target`` (grpc) or ``command`` (stdio,
    a list or a string split like a shell), plus any config field of that
    client (``timeout_seconds = 2``...).

    Args:
        path: The TOML file.
        allow_insecure: Passed to every client.

    Returns:
        Unconnected clients by name.

    Raises:
        ConfigError: The file cannot be read or a table is invalid (named).
    """
    try:
        with open(path, "rb") as fh:
            document = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"file: cannot read {path}: {exc}") from exc
    tables = document.get("clients")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"file: {path} has no [clients.NAME] tables")
    clients: dict[str, Any] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"clients.{name}: must be a table")
        fields = dict(table)
        kind = str(fields.pop("type", ""))
        factory = _FACTORIES.get(kind)
        if factory is None:
            raise ConfigError(
                f"clients.{name}.type: must be one of {', '.join(_FACTORIES)}; got {kind!r}"
            )
        if allow_insecure:
            fields.setdefault("allow_insecure", True)
        try:
            clients[name] = factory(fields)
        except KeyError as exc:
            raise ConfigError(f"clients.{name}.{exc.args[0]}: required for type {kind!r}") from None
        except ConfigError as exc:
            raise ConfigError(f"clients.{name}.{exc.message}") from None
        except TypeError as exc:
            raise ConfigError(f"clients.{name}: {exc}") from None
    return clients


def _make_http(f: dict[str, Any]) -> Any:
    from .http.client import HTTPClient

    return HTTPClient(f.pop("url"), **f)


def _make_ws(f: dict[str, Any]) -> Any:
    from .websocket.client import WebSocketClient

    return WebSocketClient(f.pop("url"), **f)


def _make_sse(f: dict[str, Any]) -> Any:
    from .sse.client import SSEClient

    return SSEClient(f.pop("url"), **f)


def _make_mqtt(f: dict[str, Any]) -> Any:
    from .mqtt.client import MQTTClient

    return MQTTClient(f.pop("url"), **f)


def _make_grpc(f: dict[str, Any]) -> Any:
    from .grpc.client import GRPCClient

    return GRPCClient(f.pop("target"), **f)


def _make_stdio(f: dict[str, Any]) -> Any:
    from .stdio.client import STDIOClient

    command = f.pop("command")
    return STDIOClient(command=shlex.split(command) if isinstance(command, str) else command, **f)


_FACTORIES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "http": _make_http,
    "websocket": _make_ws,
    "sse": _make_sse,
    "mqtt": _make_mqtt,
    "grpc": _make_grpc,
    "stdio": _make_stdio,
}


async def _health(args: argparse.Namespace, out: Output) -> int:
    from .manager import ConnectionManager

    clients = load_clients(args.file, allow_insecure=args.insecure)
    manager = ConnectionManager()
    for name, client in clients.items():
        manager.register(name, client)
    try:
        results = await manager.health_check(timeout=args.timeout)
    finally:
        await manager.close()
    if out.json_lines:
        for name, status in results.items():
            out.emit(
                {
                    "name": name,
                    "healthy": status.is_healthy,
                    "latency_ms": round(status.latency_ms, 2),
                    "detail": status.detail,
                }
            )
    else:
        width = max(len(n) for n in results)
        out.emit(f"{'name':<{width}}  status     latency    detail")
        for name, status in results.items():
            verdict = "healthy" if status.is_healthy else "UNHEALTHY"
            out.emit(f"{name:<{width}}  {verdict:<9}  {status.latency_ms:7.1f} ms  {status.detail}")
    return 0 if all(s.is_healthy for s in results.values()) else 1


async def _discover(args: argparse.Namespace, out: Output) -> int:
    from .agents.discovery import discover

    record = await discover(
        args.name, protocol=args.protocol, nameservers=args.nameserver, port=args.port
    )
    fields = {k: v for k, v in vars(record).items() if v is not None and not k.startswith("_")}
    out.emit(fields)
    return 0


async def _connect(args: argparse.Namespace, out: Output) -> int:
    from .connect import connect, resolve

    words = list(args.address)
    if "--" in words:
        cut = words.index("--")
        if words[:cut]:
            raise ConfigError("connect: give ADDRESS or -- CMD, not both")
        address: str | list[str] = words[cut + 1 :]
    elif len(words) == 1:
        address = words[0]
    elif any(word.startswith("-") for word in words[1:]):
        raise ConfigError("connect: options go before ADDRESS (or before -- CMD)")
    else:
        raise ConfigError("connect: give one ADDRESS (a URL or a domain), or -- CMD [ARGS...]")
    endpoint = await resolve(
        address, protocol=args.protocol, nameservers=args.nameserver, port=args.port
    )
    if endpoint.protocol != "local":  # a p=local record runs nothing here
        # Built (never connected) so the client's own checks, the security policy first, apply.
        options: dict[str, Any] = {"allow_insecure": True} if args.insecure else {}
        client = await connect(endpoint, **options)
        await client.close()
    doc: dict[str, Any] = {"client": endpoint.client, "protocol": endpoint.protocol}
    if endpoint.url is not None:
        doc["url"] = endpoint.safe_url
    if endpoint.command is not None:
        doc["command"] = endpoint.command[0]  # only the program: arguments may hold secrets
    if endpoint.record is not None:
        doc["record"] = endpoint.record.name or endpoint.record.to_txt()
    if out.json_lines:
        out.emit(doc)
    else:
        where = doc.get("url") or doc.get("command")
        out.emit(f"{endpoint.client} ({endpoint.protocol}) {where}")
        if "record" in doc:
            out.emit(doc["record"], label="AID record")
    return 0


def _a2a_line(event: Any) -> str:
    """One readable line for a stream event of A2AClient."""
    kind = event.kind
    if kind == "message":
        return f"message: {event.text}"
    if kind == "task":
        text = f"task {event.id}: {event.state}"
        return f"{text}: {event.text}" if event.text else text
    if kind == "statusUpdate":
        said = event.message.text if event.message is not None else ""
        return f"status: {event.state}" + (f": {said}" if said else "")
    artifact = event.artifact
    name = artifact.get("name") or artifact.get("artifactId") or "artifact"
    return f"artifact {name}: {event.text}"


async def _a2a(args: argparse.Namespace, out: Output) -> int:
    from contextlib import aclosing

    from .agents.a2a.client import A2AClient
    from .agents.a2a.types import StatusUpdate, Task

    client = A2AClient(
        _with_scheme(args.url, plain="http", secure="https"),
        binding=args.binding,
        auth=args.token,
        headers=_headers(args.header),
        timeout=args.timeout,
        allow_insecure=args.insecure,
    )
    state = ""
    last: Any = None
    message = _parse_message(args.message)
    async with (
        client as agent,
        aclosing(agent.stream(message, task_id=args.task_id, context_id=args.context_id)) as events,
    ):
        async for event in events:
            last = event
            if isinstance(event, Task | StatusUpdate):
                state = event.state
            if out.json_lines:
                out.emit({event.kind: dict(event)})
            else:
                out.emit(_a2a_line(event))
    if state in ("input-required", "auth-required") and not out.json_lines and last is not None:
        task_id = last.get("taskId") or last.get("id")
        context_id = last.get("contextId")
        print(
            f"the agent waits for {state.split('-')[0]}: answer with agentcomm a2a URL "
            f"MESSAGE --task-id {task_id} --context-id {context_id}",
            file=sys.stderr,
        )
    return 1 if state in ("failed", "rejected") else 0


async def _demo(args: argparse.Namespace, out: Output) -> int:
    from .demo import run_demo

    return await run_demo(out.stream, trace=args.trace)


_COMMANDS: dict[str, Callable[[argparse.Namespace, Output], Any]] = {
    "http": _http,
    "ws": _ws,
    "sse": _sse,
    "mqtt": _mqtt,
    "grpc": _grpc,
    "stdio": _stdio,
    "health": _health,
    "discover": _discover,
    "mcp": _mcp,
    "connect": _connect,
    "a2a": _a2a,
    "demo": _demo,
}


def _configure_logging(verbosity: int) -> None:
    """Log to stderr when asked; otherwise keep errors to the one ``error`` line.

    Without a handler, Python's last-resort handler would print the clients'
    warnings (a process exit, a retry) next to the error line.
    """
    package = logging.getLogger("agenticaiframework.communication")
    if verbosity:
        # httpx and websockets log URLs and headers at INFO/DEBUG: redacted on stderr too.
        install_log_redaction()
        logging.basicConfig(
            level=logging.DEBUG if verbosity > 1 else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    elif not any(isinstance(h, logging.NullHandler) for h in package.handlers):
        package.addHandler(logging.NullHandler())


class _Terminated(Exception):
    """SIGTERM arrived: the command was cancelled and cleaned up after itself."""


async def _run_command(args: argparse.Namespace, out: Output) -> int:
    """Run one command; SIGTERM cancels it like Ctrl-C, so it cleans up before we exit."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        if task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
        pass
    try:
        return int(await _COMMANDS[args.command](args, out))
    except asyncio.CancelledError:
        if terminated:
            raise _Terminated from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 on an error or an unhealthy check,
        2 on usage errors, 130 on Ctrl-C, 143 on SIGTERM.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Say it with the usage of the subcommand that was typed, not the top level's.
        args._parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _configure_logging(args.verbose)
    out = Output(sys.stdout, args.json_lines)
    try:
        return asyncio.run(_run_command(args, out))
    except CommunicationError as exc:
        print(f"error {exc.code}: {_cli_message(redact_text(exc.message))}", file=sys.stderr)
        return 1
    except json.JSONDecodeError as exc:
        print(f"error ERR_CONFIG: invalid JSON argument: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"agentcomm {args.command}: interrupted; all it started is stopped", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"agentcomm {args.command}: terminated; all it started is stopped", file=sys.stderr)
        return 143
