"""What a demo section is given: `DemoContext`, and the type of a section builder.

A section builder takes the `DemoContext` (the sample videos, their framegrams, timings, the
output folder, the folder of recorded benchmark results) and returns a `Section`. The demo lists
its builders in `framegram.demo.SECTIONS`; they run in that order, and `Section.order` places
them in the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from framegram.encoders import FrameEncoder
from framegram.extract import ExtractTiming
from framegram.framegram import Framegram
from framegram.report.html import Section
from framegram.report.results import default_results_dir


@dataclass
class DemoContext:
    """What every demo section can draw on."""

    out_dir: Path
    encoder: FrameEncoder
    videos: list[Path]
    framegrams: dict[Path, Framegram]
    timings: dict[Path, ExtractTiming]
    failed: dict[Path, str] = field(default_factory=dict)
    show_progress: bool = True
    #: the recorded benchmark results (`bench/results` of a checkout, or the packaged copy)
    results: Path = field(default_factory=default_results_dir)


SectionBuilder = Callable[[DemoContext], Section]
