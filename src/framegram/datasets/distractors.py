"""Procedurally generated distractor videos: varied "content" that is no real footage.

A distractor is a run of shots of 2-8 s joined by hard cuts and some dissolves. Each shot shows one
source, drawn from a seeded generator:

  photo    a Ken-Burns pan and zoom over a random crop of a photograph bundled with scikit-image
           (grey ones tinted with two random colours), colour-graded, sometimes mirrored
  texture  coloured fractal noise (a 1/f^beta spectrum made with numpy's FFT) that drifts and boils,
           sometimes folded into marble-like bands
  shapes   circles, boxes, triangles and stars moving and turning over a two-colour gradient
  text     a card of random words in one of matplotlib's DejaVu fonts, slowly panned and zoomed

Everything comes from `numpy.random.default_rng(seed)`: the same seed gives the same frames, different
seeds give different videos. Frames are made at the output size with numpy and PIL (a few ms each),
encoded by FFmpeg's libx264 (`framegram.io.ffmpeg.encode_rgb_video`), written atomically: the same
seed gives the same bytes, in any process.

scikit-image is needed only for the photo shots; it is in the `test` extra and imported on use.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from framegram.errors import FramegramError
from framegram.io.ffmpeg import encode_rgb_video

#: Photographs of `skimage.data` that ship inside the scikit-image wheel (no download), by loader name.
#: (`cat` is `chelsea` again; `eagle`, `lily`, `kidney`, `skin` need the optional `pooch` download.)
PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
    "stereo_motorcycle", "colorwheel", "logo", "camera", "brick", "cell", "clock", "coins", "grass",
    "gravel", "horse", "moon", "page", "text",
)  # fmt: skip
SOURCES = {"photo": 0.35, "texture": 0.25, "shapes": 0.25, "text": 0.15}  #: probability of each shot source
SHOT_SECONDS = (2.0, 8.0)
DISSOLVE_RATE = 0.3  #: share of transitions that are dissolves (the rest are cuts)
DISSOLVE_SECONDS = (0.4, 1.2)
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf")
WORDS = (
    "north", "harbour", "river", "signal", "garden", "market", "winter", "summer", "station", "bridge",
    "tower", "valley", "silver", "orange", "morning", "evening", "island", "forest", "engine", "paper",
    "window", "coffee", "planet", "ocean", "museum", "theatre", "festival", "weather", "report", "channel",
    "season", "finale", "special", "edition", "live", "tonight", "breaking", "news", "sports", "world",
    "kitchen", "recipe", "travel", "guide", "review", "chapter", "episode", "studio", "archive", "classic",
    "motor", "racing", "mountain", "desert", "city", "lights", "quiet", "storm", "golden", "hour", "second",
    "act", "final", "call", "open", "road",
)  # fmt: skip

Frame = np.ndarray  #: uint8 [H, W, 3] RGB
ShotRenderer = Callable[[float], Frame]  #: progress through the shot in [0, 1] -> frame


def render_distractor(
    seed: int,
    seconds: float,
    path: str | Path,
    size: tuple[int, int] = (480, 270),
    fps: int = 12,
    photos: Sequence[str] | None = None,
) -> Path:
    """Render a generated distractor video of `seconds` (rounded to whole frames) to `path` (MP4).

    size: (width, height) in pixels, both even. fps: frames per second.
    photos: the `PHOTOS` the photo shots may use (None: all); give disjoint sets to videos that must
        not share any picture (e.g. indexed videos and negative queries of a search benchmark).
    Deterministic for a seed (and the other arguments). Returns `path`.
    """
    width, height = size
    if width % 2 or height % 2 or width < 16 or height < 16:
        raise ValueError(f"size must be even and at least 16x16, got {size}")
    count = round(seconds * fps)
    if count < 1:
        raise ValueError(f"seconds must give at least one frame, got {seconds}")
    photos = tuple(PHOTOS if photos is None else photos)
    if unknown := set(photos) - set(PHOTOS):
        raise ValueError(f"unknown photos {sorted(unknown)}; known: {', '.join(PHOTOS)}")
    rng = np.random.default_rng(seed)
    timeline = _plan_shots(rng, count, fps)
    makers = {"photo": _photo_shot, "texture": _texture_shot, "shapes": _shapes_shot, "text": _text_shot}
    kinds = list(SOURCES)
    if not photos:
        kinds.remove("photo")
    weights = np.array([SOURCES[k] for k in kinds])
    shots = []
    for first, last in timeline:  # frames [first, last) of each shot, overlapping in dissolves
        kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
        extra = (photos,) if kind == "photo" else ()
        shots.append((first, last, makers[kind](rng, width, height, (last - first) / fps, *extra)))

    path = Path(path)
    encode_rgb_video((_frame_at(shots, index) for index in range(count)), path, fps, size,
                     ("-crf", "23", "-preset", "veryfast", "-g", str(4 * fps)), "rendering distractor videos")
    return path


def _plan_shots(rng: np.random.Generator, count: int, fps: int) -> list[tuple[int, int]]:
    """[first, last) frames of each shot; a dissolve is the overlap of two consecutive shots."""
    shots, start = [], 0
    while True:
        length = max(1, round(rng.uniform(*SHOT_SECONDS) * fps))
        if count - (start + length) < SHOT_SECONDS[0] * fps:  # too little left for another shot: stretch this one
            shots.append((start, count))
            return shots
        end = start + length
        overlap = round(rng.uniform(*DISSOLVE_SECONDS) * fps) if rng.random() < DISSOLVE_RATE else 0
        shots.append((start, end + overlap))  # a dissolve: this shot lasts `overlap` frames into the next
        start = end


def _frame_at(shots: list[tuple[int, int, ShotRenderer]], index: int) -> Frame:
    live = [(first, last, render) for first, last, render in shots if first <= index < last]
    images = [render((index - first) / max(1, last - first - 1)) for first, last, render in live]
    if len(images) == 1:
        return images[0]
    (_, last_a, _), (first_b, _, _) = live[0], live[1]  # dissolve from the first to the second
    weight = (index - first_b + 1) / (last_a - first_b + 1)
    return (images[0] * (1 - weight) + images[1] * weight + 0.5).astype(np.uint8)


def _ease(u: float) -> float:
    return u * u * (3 - 2 * u)


# --- photo: Ken Burns over a bundled photograph -------------------------------------------------


@functools.cache
def _photo(name: str) -> np.ndarray:
    """A bundled scikit-image photo as uint8 [H, W, C] (C = 1, 3 or 4)."""
    try:
        import skimage.data
    except ImportError:
        raise FramegramError(
            "distractor photo shots need scikit-image (pip install scikit-image, or framegram[test])"
        ) from None
    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (image.astype(np.float64) / max(1e-9, float(image.max())) * 255).astype(np.uint8)
    return image if image.ndim == 3 else image[..., None]


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> np.ndarray:
    return rng.integers(low, high, 3).astype(np.float32)


def _graded(rng: np.random.Generator, image: np.ndarray) -> Image.Image:
    """The photo in colour (grey tinted between two colours, transparency over a colour), graded, maybe mirrored."""
    if image.shape[2] == 4:
        alpha = image[..., 3:].astype(np.float32) / 255
        image = (image[..., :3] * alpha + _colour(rng) * (1 - alpha)).astype(np.uint8)
    elif image.shape[2] == 1:
        dark, light = _colour(rng, 0, 110), _colour(rng, 150, 256)
        t = image.astype(np.float32) / 255
        image = (dark + (light - dark) * t).astype(np.uint8)
    picture = Image.fromarray(np.ascontiguousarray(image), "RGB")
    levels = np.arange(256) / 255
    lut = []
    for _ in range(3):  # per-channel gain and gamma
        curve = np.clip(rng.uniform(0.8, 1.2) * levels ** rng.uniform(0.75, 1.3), 0, 1)
        lut += list((curve * 255).round().astype(int))
    picture = picture.point(lut)
    picture = ImageEnhance.Color(picture).enhance(rng.uniform(0.5, 1.5))
    picture = ImageEnhance.Contrast(picture).enhance(rng.uniform(0.85, 1.25))
    if rng.random() < 0.5:
        picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return picture


def _ken_burns(
    rng: np.random.Generator, picture: Image.Image, width: int, height: int, travel: float, scale=(0.4, 0.95)
) -> ShotRenderer:
    """Pan and zoom between two boxes of the output's aspect inside `picture`.

    travel: how far towards a second random box it moves (0: still, 1: all the way);
    scale: range of the boxes' width, as a share of the widest box that fits.
    """
    pw, ph = picture.size
    aspect = width / height
    full_w = min(pw, ph * aspect)  # the largest box of the output's aspect that fits

    def box() -> np.ndarray:
        w = full_w * rng.uniform(*scale)
        h = w / aspect
        x, y = rng.uniform(0, pw - w), rng.uniform(0, ph - h)
        return np.array([x, y, x + w, y + h])

    start = box()
    end = box()
    end = start + (end - start) * travel  # bounded motion keeps the end box inside the picture (convexity)

    def render(u: float) -> Frame:
        b = start + (end - start) * _ease(u)
        return np.asarray(picture.resize((width, height), Image.Resampling.BILINEAR, box=tuple(b)))

    return render


def _photo_shot(rng, width, height, seconds, photos) -> ShotRenderer:
    name = photos[rng.integers(len(photos))]
    return _ken_burns(rng, _graded(rng, _photo(name)), width, height, travel=rng.uniform(0.3, 1.0))


# --- texture: drifting, boiling fractal noise ------------------------------------------------------


def _fractal_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float) -> np.ndarray:
    """Gaussian noise with a 1/f^beta power spectrum, unit variance, float32 [H, W]."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    spectrum = np.fft.rfft2(rng.standard_normal(shape)) / f ** (beta / 2)
    spectrum[0, 0] = 0
    field = np.fft.irfft2(spectrum, s=shape)
    return (field / field.std()).astype(np.float32)


def _palette(rng: np.random.Generator) -> np.ndarray:
    """A random colour map: uint8 [256, 3] through 3-5 random colour stops."""
    stops = int(rng.integers(3, 6))
    colours = np.stack([_colour(rng) for _ in range(stops)])
    at = np.linspace(0, 255, stops)
    return np.stack([np.interp(np.arange(256), at, colours[:, c]) for c in range(3)], axis=1).astype(np.uint8)


def _texture_shot(rng, width, height, seconds) -> ShotRenderer:
    speed = rng.uniform(5, 30)  # pixels per second of drift
    angle = rng.uniform(0, 2 * np.pi)
    drift = np.array([math.sin(angle), math.cos(angle)]) * speed * seconds  # (dy, dx) over the shot
    margin = np.ceil(np.abs(drift)).astype(int) + 1
    shape = (height + int(margin[0]), width + int(margin[1]))
    beta = rng.uniform(2.0, 3.6)
    fields = _fractal_noise(rng, shape, beta), _fractal_noise(rng, shape, beta)
    palette = _palette(rng)
    bands = rng.uniform(1.5, 4.0) if rng.random() < 0.35 else 0.0  # marble: the field folded through a sine
    boil = rng.uniform(0.1, 0.6) * seconds  # radians of mixing between the two fields over the shot
    y0 = 0 if drift[0] >= 0 else int(margin[0]) - 1
    x0 = 0 if drift[1] >= 0 else int(margin[1]) - 1

    def render(u: float) -> Frame:
        y, x = int(y0 + drift[0] * u), int(x0 + drift[1] * u)
        theta = boil * u
        a, b = (f[y : y + height, x : x + width] for f in fields)
        field = a * math.cos(theta) + b * math.sin(theta)
        if bands:
            field = np.sin(field * bands) * 1.6
        index = np.clip(field * 50 + 128, 0, 255).astype(np.uint8)
        return palette[index]

    return render


# --- shapes: moving geometry over a gradient --------------------------------------------------------


def _gradient(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    a, b = _colour(rng), _colour(rng)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xx / width * math.cos(angle) + yy / height * math.sin(angle)
    t = (t - t.min()) / max(1e-6, float(np.ptp(t)))
    return (a + (b - a) * t[..., None]).astype(np.uint8)


def _polygon(kind: str, cx: float, cy: float, r: float, turn: float) -> list[tuple[float, float]]:
    if kind == "box":
        corners = [(1, 1), (-1, 1), (-1, -1), (1, -1)]
        points = [(x * r * 0.8, y * r * 0.6) for x, y in corners]
    elif kind == "triangle":
        points = [(r * math.cos(2 * math.pi * k / 3), r * math.sin(2 * math.pi * k / 3)) for k in range(3)]
    else:  # star
        points = [
            ((r if k % 2 == 0 else r * 0.45) * math.cos(math.pi * k / 5), (r if k % 2 == 0 else r * 0.45) * math.sin(math.pi * k / 5))
            for k in range(10)
        ]
    c, s = math.cos(turn), math.sin(turn)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]


def _shapes_shot(rng, width, height, seconds) -> ShotRenderer:
    background = Image.fromarray(_gradient(rng, width, height))
    shapes = []
    for _ in range(int(rng.integers(3, 13))):
        shapes.append(
            {
                "kind": ("circle", "box", "triangle", "star")[rng.integers(4)],
                "r": rng.uniform(0.04, 0.22) * height,
                "x": rng.uniform(0, width),
                "y": rng.uniform(0, height),
                "vx": rng.uniform(-0.25, 0.25) * width,  # pixels per second
                "vy": rng.uniform(-0.25, 0.25) * height,
                "turn": rng.uniform(0, 2 * np.pi),
                "spin": rng.uniform(-2, 2),  # radians per second
                "fill": tuple(int(v) for v in _colour(rng)),
                "outline": tuple(int(v) for v in _colour(rng)) if rng.random() < 0.5 else None,
            }
        )

    def render(u: float) -> Frame:
        t = u * seconds
        image = background.copy()
        draw = ImageDraw.Draw(image)
        for s in shapes:  # positions wrap around the picture
            x = (s["x"] + s["vx"] * t) % (width + 2 * s["r"]) - s["r"]
            y = (s["y"] + s["vy"] * t) % (height + 2 * s["r"]) - s["r"]
            if s["kind"] == "circle":
                draw.ellipse((x - s["r"], y - s["r"], x + s["r"], y + s["r"]), fill=s["fill"], outline=s["outline"], width=3)
            else:
                draw.polygon(_polygon(s["kind"], x, y, s["r"], s["turn"] + s["spin"] * t), fill=s["fill"], outline=s["outline"], width=3)
        return np.asarray(image)

    return render


# --- text: a card of random words -------------------------------------------------------------------


@functools.cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    import matplotlib

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)


def _text_shot(rng, width, height, seconds) -> ShotRenderer:
    card_w, card_h = round(width * 1.4), round(height * 1.4)
    background = _gradient(rng, card_w, card_h) if rng.random() < 0.6 else np.full((card_h, card_w, 3), _colour(rng), np.uint8)
    card = Image.fromarray(background)
    draw = ImageDraw.Draw(card)
    lines = int(rng.integers(1, 5))
    font = _font(FONTS[rng.integers(len(FONTS))], int(card_h * rng.uniform(0.09, 0.2)))
    light = background.mean() < 128  # ink that stands out: light on dark, dark on light, tinted
    ink = tuple(int(v) for v in ((235 if light else 20) + rng.integers(-35, 36, 3)).clip(0, 255))
    y = card_h * rng.uniform(0.08, 0.3)
    for _ in range(lines):
        words = " ".join(WORDS[i] for i in rng.choice(len(WORDS), int(rng.integers(1, 4)), replace=False))
        if rng.random() < 0.4:
            words = words.upper()
        x = card_w * rng.uniform(0.05, 0.25)
        draw.text((x, y), words, font=font, fill=ink)
        y += font.size * rng.uniform(1.15, 1.5)
    if rng.random() < 0.5:  # a rule or a frame, as title cards have
        draw.rectangle((card_w * 0.04, card_h * 0.04, card_w * 0.96, card_h * 0.96), outline=ink, width=int(rng.integers(2, 8)))
    return _ken_burns(rng, card, width, height, travel=rng.uniform(0.1, 0.4), scale=(0.7, 1.0))
