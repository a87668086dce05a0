"""The HTTP server (``sparsearch[server]``: FastAPI + uvicorn) and its client."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from sparsearch.server.settings import Settings


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 6334,
    port_file: str | os.PathLike[str] | None = None,
) -> None:
    """Run the API until interrupted; ``port=0`` binds a free port (written to ``port_file``)."""
    import uvicorn

    from sparsearch.server.app import create_app

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only then
    # (without it, Nagle holds each response body behind its headers: +40 ms per request)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # before the port file: a client that reads it may connect at once
    if port_file is not None:
        tmp = Path(f"{port_file}.tmp")
        tmp.write_text(str(sock.getsockname()[1]))
        os.replace(tmp, port_file)
    config = uvicorn.Config(create_app(settings), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


__all__ = ["Settings", "serve"]
