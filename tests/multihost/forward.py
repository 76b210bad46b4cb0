"""A TCP forwarder: ``python -m tests.multihost.forward LISTEN_HOST LISTEN_PORT TO_HOST TO_PORT``.

The shared PostgreSQL listens on 127.0.0.1 only and must not be reconfigured; the hosts in
their namespaces reach it through this forwarder on the bridge address.  One asyncio task
pair per connection copies bytes both ways; a connection stalled by a cut link just waits
(as it would at a real server), and one whose peer is gone is closed on both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(listen: tuple[str, int], target: tuple[str, int]) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, *listen, reuse_address=True)
    print(f"forwarding {listen[0]}:{listen[1]} -> {target[0]}:{target[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> None:
    """Forward ``argv`` = LISTEN_HOST LISTEN_PORT TO_HOST TO_PORT until killed."""
    listen_host, listen_port, to_host, to_port = argv
    asyncio.run(_serve((listen_host, int(listen_port)), (to_host, int(to_port))))


if __name__ == "__main__":
    main(sys.argv[1:])
