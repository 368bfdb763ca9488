"""`framegram serve`: the web page and JSON API over an index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from framegram.cli.common import fail


def serve(
    index: Annotated[Path, typer.Option("--index", "-i", help="The index directory.")],
    host: Annotated[str, typer.Option(help="Address to listen on (another than 127.0.0.1 opens it to the network).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    max_upload_mb: Annotated[float, typer.Option(help="Largest clip accepted, in MB.")] = 200.0,
    describe: Annotated[bool, typer.Option(help="Describe every video (shots, keyframes, tags) in the background "
                                           "from the start, so the tag search covers the whole index.")] = True,
) -> None:
    """Search and browse the index in a web browser (and a JSON API: /docs)."""
    import uvicorn

    from framegram.search import VideoIndex
    from framegram.serve import create_app

    if max_upload_mb <= 0:
        raise fail(f"--max-upload-mb must be positive, got {max_upload_mb}")
    if not 0 < port < 65536:
        raise fail(f"--port must be 1-65535, got {port}")
    VideoIndex.open(index)  # a missing or damaged index is one line here, not a page later
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not loopback:
        typer.echo(f"framegram: serving on {host}: anyone who can reach it can search and watch the indexed videos", err=True)
    typer.echo(f"framegram: http://{host}:{port}/ (Ctrl-C stops)")
    # on localhost only its own names are answered: a web page whose domain is rebound to 127.0.0.1
    # must not read the index
    hosts = ["127.0.0.1", "localhost", "[::1]", "::1"] if loopback else None
    uvicorn.run(create_app(index, int(max_upload_mb * 2**20), describe=describe, allowed_hosts=hosts),
                host=host, port=port, log_level="warning")
