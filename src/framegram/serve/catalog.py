"""What the browse pages show of an indexed video, computed once per video content and cached.

A video's card: its shots (framegram's detector), one keyframe per shot, the framegram picture with
the shot boundaries drawn on it, a thumbnail, and tags: the top ImageNet labels of each shot's
keyframe from the encoder's own classifier head (the only offline route to words about a video
here), each with its softmax probability. The framegram comes from the user cache when the video
was indexed from this machine (`framegram_for`), else the video is extracted once.

Files live in `<cache>/serve-catalog-v1/<sha256[:32]>/`, written atomically; a card whose video file
is gone cannot be made and says so.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from framegram.io.atomic import atomic_write_bytes
from framegram.paths import cache_dir

log = logging.getLogger(__name__)
CATALOG_VERSION = 1
TOP_TAGS = 3
THUMB_HEIGHT = 120
_BUILDING = threading.Lock()


@dataclass(frozen=True)
class ShotCard:
    start: float  #: seconds
    end: float
    keyframe: float  #: time of its keyframe, s
    tags: list[tuple[str, float]]  #: (ImageNet label, probability), best first


@dataclass(frozen=True)
class VideoCard:
    sha256: str
    duration: float
    shots: list[ShotCard]
    boundaries: list[dict]  #: kind, start, end (s)
    folder: str  #: where its images are: picture.png, thumb.jpg, keyframe-<i>.jpg

    def image(self, name: str) -> Path:
        return Path(self.folder) / name


def catalog_folder() -> Path:
    return cache_dir() / f"serve-catalog-v{CATALOG_VERSION}"


def cached_card(sha256: str) -> VideoCard | None:
    """The card of this content if it was made already (never computes)."""
    path = catalog_folder() / sha256[:32] / "card.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return VideoCard(data["sha256"], data["duration"], [ShotCard(s["start"], s["end"], s["keyframe"], [tuple(t) for t in s["tags"]])
                                                        for s in data["shots"]], data["boundaries"], str(path.parent))


def video_card(video_path: Path, sha256: str, encoder) -> VideoCard:
    """The card of the video at `video_path` (content `sha256`), made now if not cached.
    Raises FramegramError when the video cannot be read."""
    known = cached_card(sha256)
    if known is not None:
        return known
    with _BUILDING:  # one card at a time: requests and the background describer never build one twice
        known = cached_card(sha256)  # (and pyplot, which `_picture` uses, is not thread-safe)
        return known if known is not None else _make_card(video_path, sha256, encoder)


def _make_card(video_path: Path, sha256: str, encoder) -> VideoCard:
    from PIL import Image

    from framegram.cache import framegram_for
    from framegram.keyframes import detect_shots, select_keyframes
    from framegram.keyframes.output import keyframe_images

    folder = catalog_folder() / sha256[:32]
    fg, _ = framegram_for(video_path, encoder)
    shots = detect_shots(fg)
    keyframes = select_keyframes(fg, shots)
    images = keyframe_images(video_path, fg, keyframes, height=THUMB_HEIGHT * 2)
    size = encoder.spec.input_size
    frames = np.stack([np.asarray(Image.fromarray(img).resize((size[1], size[0]), Image.BILINEAR)) for _, img in images])
    logits = encoder.classify(frames)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    names = encoder.class_names
    cards = []
    for k, (shot, (t, img)) in enumerate(zip(shots.shots, images)):
        top = np.argsort(-probs[k])[:TOP_TAGS]
        cards.append(ShotCard(float(shot.start), float(shot.end), float(t), [(names[i], round(float(probs[k, i]), 4)) for i in top]))
        atomic_write_bytes(folder / f"keyframe-{k}.jpg", _jpeg(img))
    atomic_write_bytes(folder / "thumb.jpg", _jpeg(images[0][1], THUMB_HEIGHT))
    atomic_write_bytes(folder / "picture.png", _picture(fg, shots))
    card = VideoCard(sha256, float(fg.duration), cards,
                     [{"kind": b.kind, "start": float(b.start), "end": float(b.end)} for b in shots.boundaries], str(folder))
    data = asdict(card)
    data.pop("folder")
    atomic_write_bytes(folder / "card.json", json.dumps(data).encode())  # last: its presence means the card is whole
    return card


def _jpeg(image: np.ndarray, height: int | None = None) -> bytes:
    import io

    from PIL import Image

    picture = Image.fromarray(image)
    if height is not None:
        picture = picture.resize((max(2, round(picture.width * height / picture.height)), height), Image.BILINEAR)
    buf = io.BytesIO()
    picture.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _picture(fg, shots) -> bytes:
    """The framegram picture with cuts as red lines and gradual transitions as shaded spans."""
    import io

    import matplotlib.pyplot as plt

    fig = fg.render(height_in=3.0)
    ax = fig.axes[0]
    for b in shots.boundaries:
        if b.kind == "cut":
            ax.axvline(b.start, color="#d62728", linewidth=1.2)
        else:
            ax.axvspan(b.start, b.end, color="#ff7f0e", alpha=0.35)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


class BackgroundDescriber:
    """Makes the cards of every video of an index that lacks one, in a daemon thread, one video at
    a time (so the tag search covers the whole index without each page being opened first).
    `describe(path, sha256)` makes one card; failures are counted and skipped."""

    def __init__(self, videos: list[tuple[str, str]], describe):
        self.pending = [(path, sha) for path, sha in videos if cached_card(sha) is None]
        self.total, self.done, self.failed = len(self.pending), 0, 0
        self._describe = describe
        self.thread = threading.Thread(target=self._run, name="framegram-describe", daemon=True)

    def start(self) -> BackgroundDescriber:
        self.thread.start()
        return self

    def _run(self) -> None:
        for path, sha in self.pending:
            try:
                self._describe(Path(path), sha)
            except Exception as exc:  # noqa: BLE001 - one bad video must not stop the others
                self.failed += 1
                log.warning("framegram serve: %s could not be described: %s", path, exc)
            self.done += 1

    @property
    def running(self) -> bool:
        return self.thread.is_alive()
