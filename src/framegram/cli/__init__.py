"""The `framegram` command. User errors print one line on stderr and exit with status 2.

One module per concern (`framegrams`, `demo`, `search`, `serve`, `brain`, `fmri`, `video_models`, `vae`, `vid2vid`); each holds
its commands and, for a command group, its own Typer. This module puts them together: top-level
commands in the order `framegram --help` lists them, then the groups.
"""

from __future__ import annotations

import sys

import typer

from framegram.cli import brain, demo, fmri, framegrams, search, serve, vae, vid2vid, video_models
from framegram.cli.common import EXIT_USER_ERROR
from framegram.errors import FramegramError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Deep learning on video through framegrams: [T x D] time series of pretrained image features.",
)

for command in (framegrams.extract, framegrams.show, framegrams.info, framegrams.shots, framegrams.keyframes,
                framegrams.encoders, demo.demo):
    app.command()(command)
app.command("search")(search.search_command)
app.command("train")(video_models.train_command)
app.command()(video_models.classify)
app.command()(serve.serve)
app.add_typer(search.index_app, name="index")
app.add_typer(brain.brain_app, name="brain")
app.add_typer(fmri.fmri_app, name="fmri")
app.add_typer(search.fingerprint_app, name="fingerprint")
app.add_typer(vae.vae_app, name="vae")
app.add_typer(vid2vid.vid2vid_app, name="vid2vid")


def main() -> None:
    try:
        app()
    except FramegramError as exc:
        typer.echo(f"framegram: error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        typer.echo("framegram: interrupted", err=True)
        sys.exit(130)
