"""What every command module of the CLI shares: the one-line user error, the extraction engine's options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

#: exit status of a user error (bad input, a folder of another run): one line on stderr
EXIT_USER_ERROR = 2


def fail(message: str) -> typer.Exit:
    """Print `framegram: error: message` on stderr; raise the returned Exit."""
    typer.echo(f"framegram: error: {message}", err=True)
    return typer.Exit(EXIT_USER_ERROR)


EngineOption = Annotated[str, typer.Option("--engine", help="Where extraction runs: 'local' (this process) or 'ray' "
                                           "(a Ray cluster: pip install 'framegram\\[ray]').")]
AddressOption = Annotated[str | None, typer.Option("--address", help="With --engine ray: the cluster to join "
                                                   "('auto', host:6379 or ray://host:10001); default: start one on this machine.")]
ActorsOption = Annotated[int | None, typer.Option("--actors", help="With --engine ray: encoder actors (default: the cluster's CPUs / 2, or its GPUs).")]


def extract_many(inputs: list[Path], out: Path, encoder: str, fps: float, quiet: bool,
                 engine: str = "local", address: str | None = None, actors: int | None = None):
    """`batch.extract_folder` or its Ray twin, by `engine` (checked here: a user error is one line)."""
    if engine not in ("local", "ray"):
        raise fail(f"--engine must be local or ray, got {engine!r}")
    if engine == "local":
        if address is not None or actors is not None:
            raise fail("--address and --actors go with --engine ray")
        from framegram.batch import extract_folder

        return extract_folder(inputs, out, encoder=encoder, fps=fps, show_progress=not quiet)
    from framegram.ray_engine import extract_folder_ray

    if actors is not None and actors < 1:
        raise fail(f"--actors must be at least 1, got {actors}")
    return extract_folder_ray(inputs, out, encoder=encoder, fps=fps, show_progress=not quiet, address=address, actors=actors)
