"""`framegram demo`: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for framegrams, pictures and report.html.")] = Path(
        "demo-output"
    ),
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    results: Annotated[Path | None, typer.Option(
        "--results", help="Folder of recorded benchmark results (classify.json, vae.json, vae/) for the classification "
        "and signals sections. Default: bench/results of the checkout in the working directory, else the results "
        "packaged with framegram.")] = None,
) -> None:
    """The main job: framegrams of the real sample videos, rendered into one HTML report."""
    from framegram.demo import run_demo

    report = run_demo(out, show_progress=not quiet, results=results)
    typer.echo(f"report: {report}")
