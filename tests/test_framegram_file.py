"""The Framegram file: round trip, validation, refusal of other encoders and newer schemas, atomic writes."""

import dataclasses
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from framegram.errors import EncoderMismatchError, FramegramFileError, SchemaVersionError
from framegram.framegram import SCHEMA_VERSION, Framegram
from framegram.io.atomic import atomic_path


def test_round_trip_keeps_features_times_and_meta(bunny_framegram, tmp_path):
    path = bunny_framegram.save(tmp_path / "bunny.framegram.npz")
    loaded = Framegram.load(path, expect_encoder=bunny_framegram.meta.encoder)
    assert loaded.features.dtype == np.float32 and loaded.features.shape == bunny_framegram.features.shape
    np.testing.assert_allclose(loaded.features, bunny_framegram.features, rtol=1e-3, atol=1e-3)  # float16 on disk
    np.testing.assert_array_equal(loaded.times, bunny_framegram.times)
    assert loaded.meta == bunny_framegram.meta
    assert with_npz_array(path, "features").dtype == np.float16


def test_meta_describes_source_and_encoder(bunny_framegram, videos):
    meta = bunny_framegram.meta
    assert meta.source.path == str(videos["bigbuckbunny.mp4"])
    assert len(meta.source.sha256) == 64 and meta.source.size_bytes == videos["bigbuckbunny.mp4"].stat().st_size
    assert meta.source.duration == pytest.approx(5.3, abs=0.1) and meta.source.codec == "h264"
    assert meta.fps == 5.0 and meta.schema_version == SCHEMA_VERSION
    assert meta.encoder.name == "efficientnet-lite0" and "57934424" in meta.encoder.version
    assert "127" in meta.encoder.preprocessing


def with_npz_array(path, key):
    with np.load(path) as npz:
        return npz[key]


def rewrite_meta(bunny_framegram, path, **changes):
    meta = json.loads(bunny_framegram.meta.to_json())
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            meta[section][field] = value
        else:
            meta[key] = value
    np.savez(
        path,
        features=bunny_framegram.features.astype(np.float16),
        times=bunny_framegram.times,
        meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
    )
    return path


def test_file_from_another_encoder_is_refused(bunny_framegram, tmp_path):
    path = rewrite_meta(bunny_framegram, tmp_path / "other.framegram.npz", encoder__name="resnet152")
    Framegram.load(path)  # readable when no encoder is required
    with pytest.raises(EncoderMismatchError, match="made with encoder resnet152") as info:
        Framegram.load(path, expect_encoder=bunny_framegram.meta.encoder)
    assert str(path) in str(info.value)
    other_weights = rewrite_meta(bunny_framegram, tmp_path / "w.framegram.npz", encoder__version="retrained")
    with pytest.raises(EncoderMismatchError):
        Framegram.load(other_weights, expect_encoder=bunny_framegram.meta.encoder)
    assert Framegram.load(other_weights, expect_encoder="efficientnet-lite0")  # a name alone checks the name


def test_newer_schema_is_refused(bunny_framegram, tmp_path):
    path = rewrite_meta(bunny_framegram, tmp_path / "new.framegram.npz", schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(SchemaVersionError, match="upgrade framegram"):
        Framegram.load(path)


@pytest.mark.parametrize("damage", ["truncated", "not_zip", "missing_key", "bad_times"])
def test_damaged_files_are_refused(damage, bunny_framegram, tmp_path):
    path = bunny_framegram.save(tmp_path / "x.framegram.npz")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "not_zip":
        path.write_text("hello")
    elif damage == "missing_key":
        np.savez(path, features=bunny_framegram.features)
    elif damage == "bad_times":
        np.savez(
            path,
            features=bunny_framegram.features.astype(np.float16),
            times=bunny_framegram.times[::-1].copy(),
            meta=np.frombuffer(bunny_framegram.meta.to_json().encode(), np.uint8),
        )
    with pytest.raises(FramegramFileError) as info:
        Framegram.load(path)
    assert str(path) in str(info.value)


def test_failed_write_leaves_previous_file_whole(bunny_framegram, tmp_path):
    path = bunny_framegram.save(tmp_path / "x.framegram.npz")
    before = path.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(before[:100])  # half a file ...
            raise RuntimeError("killed")  # ... then the writer dies
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert zipfile.is_zipfile(path)


def test_picture_is_min_max_scaled_features_by_time(bunny_framegram):
    picture = bunny_framegram.to_picture()
    assert picture.shape == (1280, len(bunny_framegram))  # one row per feature, one column per sample
    assert picture.min() == 0.0 and picture.max() == 1.0
    constant = dataclasses.replace(
        bunny_framegram, features=np.tile(bunny_framegram.features[:1], (len(bunny_framegram), 1))
    )
    still = constant.to_picture()
    assert np.allclose(still, still[:, :1])  # an unchanging video is a band of identical columns


def test_render_labels_time_in_seconds(bunny_framegram, tmp_path):
    fig = bunny_framegram.render()
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time (s)"
    assert ax.get_xlim() == pytest.approx((0.0, bunny_framegram.times[-1] + 0.2))
    bunny_framegram.render(tmp_path / "bunny.png")
    with Image.open(tmp_path / "bunny.png") as image:
        assert image.width >= 600 and image.height >= 400


def test_slice_time(bunny_framegram):
    part = bunny_framegram.slice_time(1.0, 2.0)
    assert len(part) == 5 and part.times[0] == pytest.approx(1.0)


def test_sliding_cosine_finds_a_noisy_copy_at_its_row():
    from framegram.align import sliding_cosine

    rng = np.random.default_rng(0)
    reference = rng.random((200, 64)).astype(np.float32)
    query = reference[120:150] + 0.3 * rng.random((30, 64)).astype(np.float32)
    scores = sliding_cosine(query, reference)
    assert scores.shape == (171,)
    assert int(scores.argmax()) == 120
    with pytest.raises(ValueError, match="more than the reference"):
        sliding_cosine(reference, query)
