"""Export a torch module to ONNX once, cache it in the user cache folder, run it with ONNX Runtime.

ONNX Runtime ran EfficientNet-Lite0 about 5x faster than eager PyTorch on 2 CPU cores. The
export is checked against PyTorch before it is cached, so a bad export is never reused.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from framegram.io.atomic import atomic_path
from framegram.paths import cache_dir

if TYPE_CHECKING:  # both are imported only when a model is exported or run
    import onnxruntime
    import torch


def onnx_model_path(key: str) -> Path:
    """Where the exported model for `key` (a file-name-safe identity of model + weights) lives."""
    return cache_dir() / "onnx" / f"{key}.onnx"


def export_onnx(
    build_module: Callable[[], torch.nn.Module],
    example: np.ndarray,
    output_names: list[str],
    target: Path,
    tolerance: float,
) -> None:
    """Trace `build_module()` on `example` into `target` (atomically), after checking that ONNX
    Runtime reproduces PyTorch's outputs within `tolerance` (max absolute difference)."""
    import torch

    module = build_module().eval()
    with atomic_path(target, suffix=".onnx") as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's advice concerns training, not inference
            torch.onnx.export(
                module,
                (torch.from_numpy(example),),
                str(tmp),
                dynamo=False,
                opset_version=17,
                input_names=["frames"],
                output_names=output_names,
                dynamic_axes={name: {0: "batch"} for name in ["frames", *output_names]},
            )
        with torch.no_grad():
            expected = [t.numpy() for t in module(torch.from_numpy(example))]
        got = new_session(tmp, threads=1, gpu=False).run(None, {"frames": example})
        for name, want, have in zip(output_names, expected, got):
            err = float(np.abs(want - have).max())
            if err > tolerance:
                raise RuntimeError(f"ONNX export of {target.name}: output {name} differs by {err:.2e} > {tolerance}")


def execution_providers(gpu: bool = True) -> list[str]:
    """ONNX Runtime's providers to try, best first: CUDA where the installed runtime has it
    (onnxruntime-gpu) and `gpu` allows it, then the CPU. FRAMEGRAM_DEVICE=cpu keeps to the CPU."""
    import onnxruntime as ort

    if gpu and os.environ.get("FRAMEGRAM_DEVICE", "auto") != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def new_session(path: Path, threads: int | None, gpu: bool = True) -> onnxruntime.InferenceSession:
    """A session of the model at `path`: on the GPU when `execution_providers` finds one."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    # Spinning worker threads steal the core that decoding runs on beside inference.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=execution_providers(gpu))


def cached_session(
    key: str,
    build_module: Callable[[], torch.nn.Module],
    example: np.ndarray,
    output_names: list[str],
    tolerance: float,
    threads: int | None = None,
) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session for `key`, exporting the model first if the cache lacks it."""
    return session_of_cached_model(
        onnx_model_path(key), lambda path: export_onnx(build_module, example, output_names, path, tolerance), threads)


def session_of_cached_model(path: Path, make: Callable[[Path], None], threads: int | None,
                            gpu: bool = True) -> onnxruntime.InferenceSession:
    """A session of the model cached at `path`, made first by `make(path)` (which writes it
    atomically) if the cache lacks it. A cached file that fails to load (damaged, or from an
    incompatible runtime) is made again."""
    if path.exists():
        try:
            return new_session(path, threads, gpu)
        except Exception:  # noqa: BLE001 - any load failure means: rebuild the cache entry
            path.unlink(missing_ok=True)
    make(path)
    return new_session(path, threads, gpu)
