"""Scoring generated videos against the renderer's ground truth (held-out scenes).

- `frame_fd`: Fréchet distance between EfficientNet-Lite0 features (1280-d, the framegram encoder) of
  generated and real frames, each frame scaled to 224x224. Not the published FID: its Inception
  weights cannot be had here.
- `video_fd`: Fréchet distance between framegram windows: each video's per-frame features projected
  on 32 principal components (fitted on the real test frames), 8 consecutive frames concatenated
  (256-d), windows every 4 frames. Not the published FVD (I3D weights cannot be had here either).
- `warp_error`: Lai et al. 2018: frame t warped to t+1 by the renderer's flow, mean squared error
  (pixels in [0, 1]) over the pixels visible in both, averaged over frames; the ground truth's own
  value is the floor (interpolation).
- `flicker`: mean absolute frame-to-frame change of the generated video over the ground truth's (1 = as
  much change as the real video).
- `detail`: mean absolute spatial gradient of the generated frames over the ground truth's (1 = as
  sharp as the real video). A blurred or frozen video has a low warping error and low flicker too;
  this column is what tells those apart from a consistent one.
- `pixel_l1`: mean absolute error to the real frames, pixels in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch

from framegram.vid2vid.data import one_hot, to_uint8_frames
from framegram.vid2vid.model import warp

WINDOW, WINDOW_HOP, WINDOW_COMPONENTS = 8, 4, 32


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to rows of a [N, D] and b [M, D]."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * np.real(root)))


def lite0_features(videos: list[np.ndarray], encoder=None) -> list[np.ndarray]:
    """Per video, uint8 [T, H, W, 3] → float32 [T, 1280] (frames scaled to the encoder's input)."""
    from PIL import Image

    from framegram.encoders import get_encoder

    encoder = encoder or get_encoder()
    height, width = encoder.spec.input_size
    out = []
    for video in videos:
        frames = np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.BICUBIC)) for f in video])
        out.append(np.concatenate([encoder.encode(frames[k: k + 32]) for k in range(0, len(frames), 32)]))
    return out


def framegram_windows(features: list[np.ndarray], basis: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Windows of WINDOW frames every WINDOW_HOP: float [N, WINDOW * components]."""
    rows = []
    for f in features:
        z = (f - mean) @ basis
        for start in range(0, len(z) - WINDOW + 1, WINDOW_HOP):
            rows.append(z[start: start + WINDOW].ravel())
    return np.array(rows)


def warp_error(video: np.ndarray, flow: np.ndarray, valid: np.ndarray) -> float:
    """Mean over t of the MSE between frame t+1 and frame t warped by `flow` [T-1, H, W, 2] on `valid`."""
    frames = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255.0
    flows = torch.from_numpy(flow).permute(0, 3, 1, 2)
    warped = warp(frames[:-1], flows)
    err = ((warped - frames[1:]) ** 2).mean(1).numpy()
    return float(np.mean([e[v].mean() for e, v in zip(err, valid) if v.any()]))


def mean_change(video: np.ndarray) -> float:
    """Mean absolute frame-to-frame change of uint8 [T, H, W, 3], pixels in [0, 1]."""
    return float(np.abs(np.diff(video.astype(np.float32) / 255.0, axis=0)).mean())


def mean_gradient(video: np.ndarray) -> float:
    """Mean absolute horizontal and vertical pixel difference of uint8 [T, H, W, 3], pixels in [0, 1]."""
    v = video.astype(np.float32) / 255.0
    return float((np.abs(np.diff(v, axis=1)).mean() + np.abs(np.diff(v, axis=2)).mean()) / 2)


@torch.no_grad()
def generate_video(generator, labels: np.ndarray) -> np.ndarray:
    """A label-map video uint8 [T, H, W] → generated frames uint8 [T, H, W, 3], frame by frame."""
    from framegram.vid2vid.train import generate_clip

    generator.eval()
    outputs = generate_clip(generator, one_hot(labels)[None])
    return to_uint8_frames(torch.cat([o["frame"] for o in outputs]))


def score_videos(generated: list[np.ndarray], scenes: list[dict], real_features: list[np.ndarray] | None = None,
                 encoder=None) -> dict[str, float]:
    """Every metric of the module's docstring for `generated` videos against their `scenes`."""
    real = [s["frames"] for s in scenes]
    real_features = real_features or lite0_features(real, encoder)
    fake_features = lite0_features(generated, encoder)
    stacked = np.concatenate(real_features)
    mean = stacked.mean(0)
    _, _, vt = np.linalg.svd(stacked - mean, full_matrices=False)
    basis = vt[:WINDOW_COMPONENTS].T
    return {
        "frame_fd": frechet_distance(np.concatenate(fake_features), stacked),
        "video_fd": frechet_distance(framegram_windows(fake_features, basis, mean), framegram_windows(real_features, basis, mean)),
        "warp_error": float(np.mean([warp_error(g, s["flow"], s["valid"]) for g, s in zip(generated, scenes)])),
        "flicker": float(np.mean([mean_change(g) for g in generated]) / np.mean([mean_change(r) for r in real])),
        "detail": float(np.mean([mean_gradient(g) for g in generated]) / np.mean([mean_gradient(r) for r in real])),
        "pixel_l1": float(np.mean([np.abs(g.astype(np.float32) - r.astype(np.float32)).mean() / 255.0
                                   for g, r in zip(generated, real)])),
    }
