"""Distorted query clips for copy-detection tests: an excerpt of a video, transformed the way
re-uploads are (re-encoded, scaled, cropped, letterboxed, recoloured, blurred, noised, overlaid,
flipped, resampled in time, shown picture-in-picture, blended into other footage, cut to half
the frame, or several at once).

The transformations run in FFmpeg (the static binary of the `imageio-ffmpeg` wheel), in pixel
space, before any feature extraction. Every one is deterministic: noise has a fixed seed, the
bitrate-limited encode runs on one thread (x264 is only reproducible so), the overlays are drawn
from fixed inputs. Each query comes with its ground truth: which stretch of the source it shows.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from framegram.errors import FramegramError
from framegram.io.atomic import atomic_path
from framegram.io.ffmpeg import ffmpeg_executable
from framegram.io.decode import probe_video


@dataclass(frozen=True)
class Distortion:
    """An FFmpeg filter chain over the excerpt `[0:v]`; `overlay` inputs become [1:v], [2:v]..."""

    name: str
    filters: str  #: filter_complex text ending in the output label [out]; "{logo_w}" is filled in per source
    speed: float = 1.0  #: playback speed factor (query seconds = source seconds / speed)
    encode: tuple[str, ...] = ("-c:v", "libx264", "-crf", "23", "-preset", "veryfast")
    #: names of extra inputs: "logo" (a drawn PNG), "background" (lavfi), "footage" (real video, looped)
    overlays: tuple[str, ...] = ()

    def description(self) -> str:
        return f"{self.name}: {self.filters}"


_FONT = "DejaVuSans-Bold.ttf"  # shipped with matplotlib, a dependency


def _font_path() -> str:
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / _FONT).replace(":", r"\:")


def _text(size: int, y: str) -> str:
    return (
        f"drawtext=fontfile='{_font_path()}':text='framegram test caption':fontsize={size}:"
        f"fontcolor=white:borderw=3:bordercolor=black:x=(w-text_w)/2:y={y}"
    )


def distortions() -> dict[str, Distortion]:
    """The distortions of the search benchmark, by name (VSC22-style copy transformations)."""
    d = [
        Distortion("none", "[0:v]null[out]"),
        Distortion(
            "low-bitrate", "[0:v]null[out]",
            encode=("-c:v", "libx264", "-b:v", "120k", "-maxrate", "120k", "-bufsize", "240k", "-preset", "veryfast", "-threads", "1"),
        ),
        Distortion("downscale-320", "[0:v]scale=320:-2[out]"),
        Distortion("crop-70", "[0:v]crop=trunc(iw*0.7/2)*2:trunc(ih*0.7/2)*2[out]"),
        # the picture kept whole in a 4:3 frame with black bars above and below
        Distortion("letterbox", "[0:v]pad=iw:trunc(iw*3/4/2)*2:0:(oh-ih)/2:black[out]"),
        Distortion("brightness-contrast", "[0:v]eq=brightness=0.12:contrast=1.35:saturation=1.2[out]"),
        Distortion("grayscale", "[0:v]hue=s=0[out]"),
        Distortion("blur", "[0:v]gblur=sigma=4[out]"),
        Distortion(
            "noise", "[0:v]noise=alls=28:allf=t+u:all_seed=7[out]",
            encode=("-c:v", "libx264", "-crf", "30", "-preset", "veryfast"),  # noise would balloon a CRF-23 file
        ),
        Distortion(  # {logo_w}: 22 % of the source's width, filled in by render_query
            "logo", "[1:v]scale={logo_w}:-2[logo];[0:v][logo]overlay=W-w-W*0.04:H*0.05:shortest=1[out]", overlays=("logo",)
        ),
        Distortion("text", f"[0:v]{_text(36, 'h-th-h*0.08')}[out]"),
        Distortion("hflip", "[0:v]hflip[out]"),
        Distortion("fps-15", "[0:v]fps=15[out]"),
        Distortion("speed-1.25", "[0:v]setpts=PTS/1.25[out]", speed=1.25),
        Distortion(
            "picture-in-picture",
            "[1:v]scale=640:360[bg];[0:v]scale=256:-2[fg];[bg][fg]overlay=W*0.55:H*0.35:shortest=1[out]",
            overlays=("background",),
        ),
        # the excerpt at 40 % opacity over real street footage that no index holds (a cross-fade frozen
        # half-way, a "ghost" re-upload): both pictures are seen at once in every frame
        Distortion(
            "blend-40",
            "[1:v][0:v]scale2ref[bg][src];[bg]format=yuv420p[bgf];[src]format=yuv420p[srcf];"
            "[srcf][bgf]blend=all_mode=normal:all_opacity=0.4:shortest=1[out]",
            overlays=("footage",),
        ),
        # the left half of the picture only (a split screen, a vertical re-crop)
        Distortion("crop-half", "[0:v]crop=trunc(iw/4)*2:ih:0:0[out]"),
        Distortion(
            "combo-3",
            f"[0:v]crop=trunc(iw*0.8/2)*2:trunc(ih*0.8/2)*2,eq=brightness=0.08:contrast=1.25,{_text(28, 'h*0.06')}[out]",
        ),
    ]
    return {x.name: x for x in d}


@dataclass(frozen=True)
class Query:
    """A rendered query and the stretch of its source it shows."""

    path: Path
    source: Path
    distortion: str
    source_start: float  #: seconds into the source
    source_end: float
    duration: float  #: seconds of the query itself (source span / speed)


def render_query(
    source: str | Path, start: float, seconds: float, distortion: Distortion | str, out: str | Path
) -> Query:
    """Cut `seconds` of `source` from `start`, apply `distortion`, write `out` (MP4, atomically)."""
    source, out = Path(source), Path(out)
    d = distortions()[distortion] if isinstance(distortion, str) else distortion
    ffmpeg = ffmpeg_executable("rendering queries")
    cmd = [ffmpeg, "-loglevel", "error", "-y", "-ss", f"{start:.3f}", "-t", f"{seconds:.3f}", "-i", str(source)]
    for extra in d.overlays:
        cmd += _overlay_input(extra, out.parent)
    filters = d.filters.replace("{logo_w}", str(max(2, round(probe_video(source).width * 0.22 / 2) * 2)))
    with atomic_path(out, suffix=".mp4") as tmp:
        cmd += ["-filter_complex", filters, "-map", "[out]", "-an", *d.encode, "-pix_fmt", "yuv420p", "-f", "mp4", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise FramegramError(f"{source}: ffmpeg could not render the '{d.name}' query: {proc.stderr.strip()[-300:]}")
    return Query(out, source, d.name, start, start + seconds, seconds / d.speed)


def _overlay_input(kind: str, folder: Path) -> list[str]:
    if kind == "logo":
        return ["-loop", "1", "-i", str(_logo_png(folder))]  # a still image, repeated for every frame
    if kind == "background":  # a moving, deterministic scene behind the picture-in-picture
        return ["-f", "lavfi", "-i", "mandelbrot=size=640x360:rate=25"]
    if kind == "footage":  # a real street scene from a fixed camera, never indexed by the benchmarks
        from framegram.media import fetch_media

        return ["-stream_loop", "-1", "-i", str(fetch_media("vtest.avi"))]
    raise ValueError(kind)


def _logo_png(folder: Path) -> Path:
    """A fixed logo: a white ring and a bar on transparency, drawn with PIL."""
    path = folder / ".framegram-test-logo.png"
    if not path.exists():
        from PIL import Image, ImageDraw

        image = Image.new("RGBA", (200, 120), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        draw.ellipse((10, 10, 110, 110), outline=(255, 255, 255, 230), width=14)
        draw.rectangle((120, 40, 195, 80), fill=(255, 200, 0, 230))
        with atomic_path(path, suffix=".png") as tmp:
            image.save(tmp, format="PNG")
    return path
