"""Running the server over stdio or TCP, with the JSON-RPC streams kept to the protocol.

Over stdio, `stdio.isolate_stdio()` has already moved the real stdin/stdout to private
descriptors (see there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import sys
import threading
from typing import Any, BinaryIO

from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async

from .server import ChannelCoderServer

log = logging.getLogger(__name__)


async def _reader(stream: BinaryIO) -> Any:
    """A non-blocking reader for pipes/sockets/ttys; a threaded one for anything else."""
    mode = os.fstat(stream.fileno()).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stream)
        return reader
    return StdinAsyncReader(stream)


async def _serve_streams(server: ChannelCoderServer, reader: Any, writer: Any) -> int:
    server.protocol.set_writer(writer)
    main = asyncio.get_running_loop().create_task(run_async(
        stop_event=threading.Event(), reader=reader, protocol=server.protocol,
        logger=logging.getLogger("pygls.io"), error_handler=server.report_server_error))

    def stop() -> None:
        main.cancel()

    server._stop = stop
    try:
        await main
    except asyncio.CancelledError:
        pass
    finally:
        await server.close()
    if main.cancelled():
        return server.exit_code
    return 0 if server.protocol._shutdown else 1


def serve_stdio(server: ChannelCoderServer, rpc_in: BinaryIO, rpc_out: BinaryIO) -> int:
    """Serve the client on the streams `isolate_stdio()` returned."""

    async def main() -> int:
        return await _serve_streams(server, await _reader(rpc_in), StdoutWriter(rpc_out))

    try:
        return asyncio.run(main())
    except BrokenPipeError:
        log.warning("the client closed the connection")
        return 1
    finally:
        with contextlib.suppress(OSError):
            rpc_out.flush()


def serve_tcp(server: ChannelCoderServer, host: str, port: int) -> int:
    """Serve one client on host:port, then exit (for debugging with a connecting client)."""

    async def main() -> int:
        connected: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = \
            asyncio.get_running_loop().create_future()

        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if not connected.done():
                connected.set_result((reader, writer))
            else:
                writer.close()

        listener = await asyncio.start_server(accept, host, port)
        addresses = ", ".join(str(sock.getsockname()) for sock in listener.sockets)
        sys.stderr.write(f"channelcoder lsp listening on {addresses}\n")
        sys.stderr.flush()
        reader, writer = await connected
        listener.close()
        return await _serve_streams(server, reader, writer)

    return asyncio.run(main())
