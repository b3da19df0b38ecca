"""A tiny authoritative DNS server on 127.0.0.1 (UDP and TCP) for discovery tests.

It serves TXT records that a test configures, built with dnspython's message
API, so the client under test speaks real DNS over real sockets. Names it has
no records for answer NXDOMAIN; names can also be made to answer NODATA,
SERVFAIL, or nothing at all (to exercise timeouts). UDP answers too large for
the client's buffer come back truncated (TC), and the client retries over TCP
on the same port, as real resolvers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT

__all__ = ["DNSServer", "serve_dns"]

_Behaviour = Literal["nodata", "servfail", "silent"]
_UDP_DEFAULT_PAYLOAD = 512


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


@dataclass
class DNSServer:
    """TXT records by name, plus per-name failure modes, and the queries seen.

    Attributes:
        port: The UDP and TCP port (set once started).
        queries: ``(transport, name)`` for every query received, in order.
    """

    port: int = 0
    queries: list[tuple[str, str]] = field(default_factory=list)
    _txt: dict[dns.name.Name, tuple[int, list[tuple[bytes, ...]]]] = field(default_factory=dict)
    _behaviour: dict[dns.name.Name, _Behaviour] = field(default_factory=dict)

    def set_txt(
        self, name: str, *records: str | bytes | Sequence[str | bytes], ttl: int = 300
    ) -> None:
        """Serve TXT records at ``name`` (replacing any there).

        Args:
            name: The owner name, e.g. ``"_agent.example.com"``.
            *records: One entry per TXT record: a string (one character-string,
                at most 255 bytes) or a sequence of strings (a multi-string
                record, each piece one character-string).
            ttl: The TTL of the answer.
        """
        rdatas: list[tuple[bytes, ...]] = []
        for record in records:
            pieces = [record] if isinstance(record, str | bytes) else list(record)
            rdatas.append(tuple(p.encode() if isinstance(p, str) else p for p in pieces))
        key = _name(name)
        self._txt[key] = (ttl, rdatas)
        self._behaviour.pop(key, None)

    def set_behaviour(self, name: str, behaviour: _Behaviour) -> None:
        """Make ``name`` answer NODATA, SERVFAIL, or nothing at all.

        Args:
            name: The owner name.
            behaviour: ``"nodata"`` (the name exists, no TXT), ``"servfail"``
                or ``"silent"`` (the query is dropped).
        """
        key = _name(name)
        self._behaviour[key] = behaviour
        self._txt.pop(key, None)

    def clear(self) -> None:
        """Forget every record, behaviour and recorded query."""
        self._txt.clear()
        self._behaviour.clear()
        self.queries.clear()

    def names_queried(self) -> list[str]:
        """The query names seen, in order (without the trailing dot)."""
        return [name for _, name in self.queries]

    def answer(self, wire: bytes, transport: str, max_size: int | None) -> bytes | None:
        """Build the wire answer to one query (I/O-free).

        Args:
            wire: The query message.
            transport: ``"udp"`` or ``"tcp"`` (recorded, and UDP may truncate).
            max_size: The largest answer allowed (None: no limit, for TCP).

        Returns:
            The answer, or None to stay silent.
        """
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        qname = question.name
        self.queries.append((transport, qname.to_text(omit_final_dot=True)))
        behaviour = self._behaviour.get(qname)
        if behaviour == "silent":
            return None
        if behaviour == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif behaviour == "nodata":
            pass
        elif qname in self._txt:
            if question.rdtype in (dns.rdatatype.TXT, dns.rdatatype.ANY):
                ttl, rdatas = self._txt[qname]
                rrset = response.find_rrset(
                    response.answer, qname, dns.rdataclass.IN, dns.rdatatype.TXT, create=True
                )
                rrset.update_ttl(ttl)
                for strings in rdatas:
                    rrset.add(
                        dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, strings)
                    )
        elif not any(name.is_subdomain(qname) for name in (*self._txt, *self._behaviour)):
            response.set_rcode(dns.rcode.NXDOMAIN)
        if max_size is None:
            return response.to_wire()
        limit = max(max_size, _UDP_DEFAULT_PAYLOAD)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.AA | dns.flags.TC
            return truncated.to_wire()


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        max_size = _UDP_DEFAULT_PAYLOAD
        with contextlib.suppress(dns.exception.DNSException):
            query = dns.message.from_wire(data)
            if query.edns >= 0:
                max_size = query.payload
        reply = self._server.answer(data, "udp", max_size)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)


async def _serve_tcp_client(
    server: DNSServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            try:
                header = await reader.readexactly(2)
                (length,) = struct.unpack("!H", header)
                wire = await reader.readexactly(length)
            except asyncio.IncompleteReadError:
                return
            reply = server.answer(wire, "tcp", None)
            if reply is None:
                continue
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
    except ConnectionError:
        return
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def serve_dns() -> AsyncIterator[DNSServer]:
    """Run a :class:`DNSServer` on 127.0.0.1, UDP and TCP on one free port.

    Yields:
        The server; configure records on it, point the resolver at
        ``127.0.0.1`` and ``server.port``.
    """
    server = DNSServer()
    loop = asyncio.get_running_loop()
    tcp_server: asyncio.Server | None = None
    udp_transport: asyncio.DatagramTransport | None = None
    for _ in range(20):
        udp_transport, _protocol = await loop.create_datagram_endpoint(
            lambda: _UDPProtocol(server), local_addr=("127.0.0.1", 0), family=socket.AF_INET
        )
        port = int(udp_transport.get_extra_info("sockname")[1])
        try:
            tcp_server = await asyncio.start_server(
                lambda r, w: _serve_tcp_client(server, r, w), "127.0.0.1", port
            )
        except OSError:  # the TCP port is taken: try another UDP port
            udp_transport.close()
            continue
        server.port = port
        break
    if tcp_server is None or udp_transport is None:
        raise RuntimeError("no free port for both UDP and TCP on 127.0.0.1")
    try:
        yield server
    finally:
        udp_transport.close()
        tcp_server.close()
        await tcp_server.wait_closed()
