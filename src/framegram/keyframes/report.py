"""The keyframes section of the demo report: shots and a contact sheet per sample video."""

from __future__ import annotations

from pathlib import Path

from framegram.keyframes.output import keyframe_images, timecode
from framegram.keyframes.select import select_keyframes
from framegram.keyframes.shots import detect_shots
from framegram.plotting import contact_sheet_figure
from framegram.report.html import Section, figure_img, heading, paragraph, table
from framegram.report.sections import DemoContext


def keyframes_section(ctx: DemoContext) -> Section:
    parts = [
        paragraph(
            "Shot boundaries are change points of the framegram, kept where the content on the two sides "
            "differs (so flashes, pans and brightness changes are not taken for cuts); each shot contributes "
            "its most representative sharp frame."
        )
    ]
    rows = []
    for video, fg in ctx.framegrams.items():
        if len(fg) < 2:
            continue
        shots = detect_shots(fg)
        chosen = select_keyframes(fg, shots)
        images = keyframe_images(Path(video), fg, chosen, height=144)
        labels = [f"{timecode(t)}" for t, _ in images]
        parts.append(heading(video.name))
        parts.append(figure_img(contact_sheet_figure([im for _, im in images], labels, columns=6), alt=f"keyframes of {video.name}"))
        kinds = [b.kind for b in shots.boundaries]
        rows.append([video.name, len(shots.shots), kinds.count("cut"), kinds.count("gradual"), len(shots.flash_rows)])
    parts.insert(1, table(["video", "shots", "cuts", "gradual", "flash rows ignored"], rows))
    return Section("Shots and keyframes", parts, order=30)
