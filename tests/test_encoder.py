"""The default encoder: real ImageNet features, ONNX Runtime equal to PyTorch, export cached once."""

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageFilter

from framegram.encoders import get_encoder, list_encoders
from framegram.encoders.efficientnet_lite import ONNX_TOLERANCE
from framegram.errors import UnknownEncoderError

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug


def at_224(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((224, 224), Image.BILINEAR))[None]


@pytest.fixture(scope="module")
def torch_encoder():
    return get_encoder(backend="torch")


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_imagenet_head_recognises_cat_and_coffee(backend, encoder, torch_encoder):
    enc = encoder if backend == "onnxruntime" else torch_encoder
    assert enc.backend == backend
    cat = int(enc.classify(at_224(skimage.data.chelsea())).argmax())
    coffee = int(enc.classify(at_224(skimage.data.coffee())).argmax())
    assert cat in CAT_CLASSES, enc.class_names[cat]
    assert coffee in COFFEE_CLASSES, enc.class_names[coffee]
    assert "cat" in enc.class_names[cat].lower()


def test_onnx_features_equal_torch_on_real_frames(encoder, torch_encoder, videos):
    from framegram.io import sample_frames

    frames = next(sample_frames(videos["bigbuckbunny.mp4"], fps=2.0, batch_size=8)).frames
    onnx_features, torch_features = encoder.encode(frames), torch_encoder.encode(frames)
    assert onnx_features.shape == (8, 1280) and onnx_features.dtype == np.float32
    assert np.abs(onnx_features - torch_features).max() <= ONNX_TOLERANCE


def test_features_describe_content_not_pixels(encoder):
    chelsea = skimage.data.chelsea()
    buf = io.BytesIO()
    Image.fromarray(chelsea).filter(ImageFilter.GaussianBlur(2)).save(buf, format="JPEG", quality=20)
    degraded = np.asarray(Image.open(buf).convert("RGB"))
    a, b, c = (encoder.encode(at_224(x))[0] for x in (chelsea, degraded, skimage.data.coffee()))
    cos = lambda u, v: float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))  # noqa: E731
    assert cos(a, b) > 0.8
    assert cos(a, b) > cos(a, c) + 0.3


def test_onnx_export_is_cached_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAMEGRAM_CACHE", str(tmp_path))
    get_encoder(backend="onnxruntime")
    exported = list((tmp_path / "onnx").glob("*.onnx"))
    assert len(exported) == 1
    stamp = exported[0].stat().st_mtime_ns
    get_encoder(backend="onnxruntime")
    assert exported[0].stat().st_mtime_ns == stamp  # loaded, not exported again

    exported[0].write_bytes(b"damaged")  # a broken cache entry is rebuilt, not fatal
    frames = at_224(skimage.data.chelsea())
    assert get_encoder(backend="onnxruntime").encode(frames).shape == (1, 1280)
    assert exported[0].stat().st_size > 1_000_000


def test_registry(encoder):
    assert "efficientnet-lite0" in list_encoders()
    assert encoder.spec.dim == 1280 and encoder.spec.input_size == (224, 224)
    with pytest.raises(UnknownEncoderError, match="available: efficientnet-lite0"):
        get_encoder("resnet-9000")


def test_wrong_frame_shape_is_refused(encoder):
    with pytest.raises(ValueError, match=r"uint8 frames \[N, 224, 224, 3\]"):
        encoder.encode(np.zeros((1, 100, 100, 3), np.uint8))


@pytest.fixture(scope="module")
def int8_encoder():
    return get_encoder("efficientnet-lite0-int8")


def test_int8_features_follow_fp32_on_real_frames(encoder, int8_encoder, videos):
    from framegram.io import sample_frames

    frames = np.concatenate([b.frames for b in sample_frames(videos["bigbuckbunny.mp4"], fps=5.0, batch_size=8)])
    fp32, int8 = encoder.encode(frames), int8_encoder.encode(frames)
    cos = (fp32 * int8).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(int8, axis=1)
    assert int8.shape == fp32.shape and int8.dtype == np.float32
    assert cos.min() > 0.98, cos.min()
    # the quantised head still names what the fp32 one names
    for image, classes in ((skimage.data.chelsea(), CAT_CLASSES), (skimage.data.coffee(), COFFEE_CLASSES)):
        assert set(np.argsort(-int8_encoder.classify(at_224(image))[0])[:3]) & classes


def test_int8_is_another_encoder_cached_once(int8_encoder, bunny_framegram):
    from framegram.extract import extract
    from framegram.search.basis import default_basis
    from framegram.errors import FramegramError

    assert int8_encoder.spec.name == "efficientnet-lite0-int8" and "int8" in int8_encoder.spec.version
    stamp = int8_encoder.model_path.stat().st_mtime_ns
    assert get_encoder("efficientnet-lite0-int8").model_path.stat().st_mtime_ns == stamp  # loaded, not quantised again
    framegram, _ = extract(bunny_framegram.meta.source.path, int8_encoder)
    with pytest.raises(FramegramError, match="efficientnet-lite0-int8"):
        default_basis().check(framegram)  # never mixed with fp32 framegrams in an index
    with pytest.raises(ValueError, match="ONNX Runtime only"):
        get_encoder("efficientnet-lite0-int8", backend="torch")


def test_gpu_path_matches_the_cpu(videos, monkeypatch):
    """On a machine with a GPU and onnxruntime-gpu: the CUDA provider is chosen by itself, with
    larger batches, and gives the CPU's features (within float32 kernel differences)."""
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("no CUDA execution provider here (it needs onnxruntime-gpu and an NVIDIA GPU)")
    from framegram.io import sample_frames

    gpu = get_encoder()
    monkeypatch.setenv("FRAMEGRAM_DEVICE", "cpu")
    cpu = get_encoder()
    assert gpu.device == "cuda" and cpu.device == "cpu" and gpu.batch_size > cpu.batch_size
    frames = next(sample_frames(videos["bigbuckbunny.mp4"], fps=2.0, batch_size=8)).frames
    assert np.abs(gpu.encode(frames) - cpu.encode(frames)).max() < 1e-2
