"""What every video classification model eats: a batch dict of float32 tensors.

Keys (a model's `ModelMeta.inputs` says which it needs):
- "rgb": [B, 3, T, H, W], pixels normalised as EfficientNet-Lite0 was trained, x = (pixel - 127) / 128;
- "flow": [B, 2, T, H, W], optical flow (dx, dy) in pixels per frame divided by `FLOW_SCALE` (2)
  (frame t holds the flow from frame t to t + 1; the last frame repeats the one before);
- "framegram": [B, T, D], framegram rows (e.g. 1280-d EfficientNet-Lite0 features).
"""

from __future__ import annotations

import numpy as np

#: Pixel normalisation of the pretrained 2D weights: x = (pixel - PIXEL_OFFSET) / PIXEL_SCALE.
PIXEL_OFFSET = 127.0
PIXEL_SCALE = 128.0
#: Flow is divided by this many pixels per frame. At the 64-112 px clips these models train on,
#: objects move ~1-3 px per frame: scaled by 8 the flow stayed within +-0.2 and a flow network
#: memorised its training videos instead of reading the motion.
FLOW_SCALE = 2.0

INPUT_KINDS = ("rgb", "flow", "framegram")


def rgb_tensor(frames: np.ndarray):
    """uint8 [T, H, W, 3] → float32 torch tensor [3, T, H, W], normalised."""
    import torch

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3], got {frames.shape}")
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float()
    return (x - PIXEL_OFFSET) / PIXEL_SCALE
