"""The search section of the demo report: distorted clips found in an index of the sample videos."""

from __future__ import annotations

from pathlib import Path

from framegram.io.decode import sample_strip
from framegram.plotting import frame_strip_figure
from framegram.report.html import Section, figure_img, heading, paragraph, table
from framegram.report.sections import DemoContext

#: (source video name, start s, seconds, distortion) of the demo's queries
DEMO_QUERIES = (
    ("bikes.mp4", 2.0, 5.0, "picture-in-picture"),
    ("bigbuckbunny.mp4", 1.0, 3.0, "combo-3"),
    ("carphone_pristine.mp4", 0.5, 3.0, "hflip"),
)
STRIP_FRAMES = 6


def search_section(ctx: DemoContext) -> Section:
    from framegram.search import VideoIndex, search
    from framegram.search.basis import default_basis
    from framegram.search.matcher import DEFAULT_THRESHOLD
    from framegram.datasets.distort import render_query

    folder = ctx.out_dir / "search"
    index_dir = folder / "index"
    index = VideoIndex.open(index_dir) if (index_dir / "index.sqlite").exists() else VideoIndex.create(index_dir, default_basis())
    index.add((video.name, fg) for video, fg in ctx.framegrams.items())
    info = index.info()
    parts = [
        paragraph(
            f"An index of the {info.videos} sample videos ({info.seconds} s, {info.vector_bytes_per_second:.0f} bytes per "
            "indexed second: one 256-dim 8-bit fingerprint per second). Each query below is a re-edited excerpt "
            "(picture-in-picture, crop + contrast + caption, mirror); the index names the video it came from and where. "
            f"Matches below the calibrated score {DEFAULT_THRESHOLD} are not reported. Note that carphone_pristine and "
            "carphone_distorted show the same footage, so a carphone clip rightly matches both."
        )
    ]
    rows = []
    by_name = {p.name: p for p in ctx.framegrams}
    for name, start, seconds, distortion in DEMO_QUERIES:
        if name not in by_name:
            continue
        query = render_query(by_name[name], start, seconds, distortion, folder / f"query-{Path(name).stem}-{distortion}.mp4")
        matches = search(query.path, index, top_k=3)
        parts.append(heading(f"{query.path.name}: {seconds:g} s of {name} from {start:g} s, {distortion}"))
        parts.append(figure_img(_strip(query.path, 0.0, query.duration, "query"), alt=f"query {query.path.name}"))
        if matches:
            best = matches[0]
            ref = Path(index.videos[best.ref_id].path)
            title = f"match: {best.ref_id} {best.ref_start:.1f}-{best.ref_end:.1f} s (score {best.score:.2f})"
            parts.append(figure_img(_strip(ref, best.ref_start, best.ref_end, title), alt=title))
        else:
            parts.append(paragraph("no match above the threshold"))
        for m in matches or [None]:
            rows.append([
                query.path.name, f"{name} {start:.1f}-{start + seconds:.1f} s",
                *(("no match", "", "", "") if m is None else
                  (m.ref_id, f"{m.ref_start:.1f}-{m.ref_end:.1f} s", f"{m.query_start:.1f}-{m.query_end:.1f} s", f"{m.score:.3f}")),
            ])
    parts.insert(1, table(["query", "truth", "match", "in reference", "in query", "score"], rows))
    return Section("Video search", parts, order=40)


def _strip(path: Path, start: float, end: float, title: str):
    """STRIP_FRAMES frames spread over [start, end) seconds of `path`, 96 px high."""
    strip = sample_strip(path, STRIP_FRAMES, 96, start, end)
    return frame_strip_figure(strip.frames, strip.times, title=title)
