"""Progress display for extraction: frames done, frames/s and times real time (rich)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text


class _RateColumn(ProgressColumn):
    """frames/s and times real time (video seconds per wall second) of a task added with fps=<rate>."""

    def render(self, task) -> Text:
        if task.fields.get("fps") is None or not task.speed:
            return Text("")
        speed = task.speed
        return Text(f"{speed:6.1f} frames/s  {speed / task.fields['fps']:5.1f}x real time", style="cyan")


def extraction_progress(show: bool) -> Progress:
    """A rich Progress whose tasks show a rate when added with `fps=`; disabled when `show` is False."""
    return Progress(
        TextColumn("{task.description}", style="bold"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        disable=not show,
        transient=False,
    )
