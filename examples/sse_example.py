"""SSEClient resuming a dropped stream with Last-Event-ID.

The demo's embedded HTTP server (started here) cuts the first connection to
``/events`` after event 3; the client reconnects after the server's
``retry: 100`` and resumes from event 4.
Run: ``python examples/sse_example.py`` (needs the ``demo`` extra).
"""

from __future__ import annotations

import asyncio

from agenticaiframework.communication import SSEClient
from agenticaiframework.communication.testing.servers import serve_http


async def main() -> None:
    """Read the whole stream across one drop."""
    async with serve_http() as (base_url, state):
        async with SSEClient(f"{base_url}/events", terminal_event="done") as sse:
            async for event in sse:
                print(f"id={event.id or '-'} event={event.event} data={event.data}")
        print(f"Last-Event-ID sent per connection: {state.last_event_ids}")
        print(f"reconnects: {sse.stats.reconnects}")


if __name__ == "__main__":
    asyncio.run(main())
