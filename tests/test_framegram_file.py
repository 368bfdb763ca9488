"""The Framegram file: round trip, validation, refusal of other encoders and newer schemas, atomic writes."""

import dataclasses
import json
import math
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from framegram.errors import EncoderMismatchError, FramegramError, FramegramFileError, SchemaVersionError
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


# ---- a damaged or foreign file raises FramegramFileError naming the field, never anything else ----------------


@pytest.fixture(scope="module")
def small(bunny_framegram):
    """One real second of Big Buck Bunny (5 rows)."""
    return bunny_framegram.slice_time(0.0, 1.0)


def write_parts(path, features, times, meta):
    """An npz with these arrays; `meta` is a JSON value, or bytes written as they are."""
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    np.savez(path, features=features, times=times, meta=np.frombuffer(raw, np.uint8))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: [m], "meta must be a JSON object, not a list"),
        (lambda m: 5, "meta must be a JSON object, not a number"),
        (lambda m: {k: v for k, v in m.items() if k != "fps"}, "meta field fps is missing"),
        (lambda m: {**m, "fps": 0}, "meta field fps must be a positive finite number, got 0"),
        (lambda m: {**m, "fps": "5"}, 'meta field fps must be a positive finite number, got "5"'),
        (lambda m: {**m, "skip_nonref": 1}, "meta field skip_nonref must be true or false, got 1"),
        (lambda m: {**m, "source": {**m["source"], "width": True}}, "meta field source.width must be an integer"),
        (lambda m: {**m, "source": {**m["source"], "sha256": "abc"}}, "meta field source.sha256 must be 64 hex digits"),
        (lambda m: {**m, "encoder": {**m["encoder"], "input_size": [224]}}, "meta field encoder.input_size must be a list of 2"),
        (lambda m: {**m, "encoder": {**m["encoder"], "dim": 1000}},
         r"features are float16 \[5, 1280\], expected floats \[T, 1000\]"),
        (lambda m: {**m, "encoder": "efficientnet"}, "meta field encoder must be a JSON object"),
    ],
)
def test_wrong_meta_is_refused_with_the_field_named(change, message, small, tmp_path):
    meta = json.loads(small.meta.to_json())
    path = write_parts(tmp_path / "x.framegram.npz", small.features.astype(np.float16), small.times, change(meta))
    with pytest.raises(FramegramFileError, match=message) as info:
        Framegram.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (lambda f, t: (f[:0], t[:0]), "no rows"),
        (lambda f, t: (f[0], t), r"features are float16 \[1280\]"),
        (lambda f, t: (f.astype(np.int16), t), "features are int16"),
        (lambda f, t: (np.where(np.arange(len(f))[:, None] == 2, np.inf, f), t), "features contain NaN or infinity"),
        (lambda f, t: (f, t[:-1]), r"times are float64 \[4\] for 5 feature rows"),
        (lambda f, t: (f, np.where(np.arange(len(t)) == 3, np.nan, t)), "times contain NaN"),
        (lambda f, t: (f, np.zeros_like(t)), "times are not strictly increasing"),
    ],
)
def test_arrays_breaking_the_contract_are_refused(arrays, message, small, tmp_path):
    features, times = arrays(small.features.astype(np.float16), small.times)
    path = write_parts(tmp_path / "x.framegram.npz", features, times, json.loads(small.meta.to_json()))
    with pytest.raises(FramegramFileError, match=message) as info:
        Framegram.load(path)
    assert str(path) in str(info.value)


_DELETE = object()
META_FIELDS = [
    ("fps",), ("skip_nonref",), ("schema_version",), ("framegram_version",), ("source",), ("encoder",),
    *[("source", k) for k in ("path", "sha256", "size_bytes", "duration", "width", "height", "frame_rate", "codec")],
    *[("encoder", k) for k in ("name", "version", "dim", "input_size", "preprocessing")],
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


#: edits a valid file may have: optional fields null, other legal values, keys this version does not know
HARMLESS_META = [
    (("fps",), 2.5), (("source", "frame_rate"), None), (("source", "duration"), None), (("comment",), "x"),
    (("source", "path"), "relative/clip.mp4"), (("encoder", "preprocessing"), ""), (("source", "extra"), [1]),
]


@st.composite
def damaged_files(draw):
    """How to damage the saved file: meta edits, array replacements, then byte damage; each part is
    left alone or changed harmlessly half of the time, so that files that load are drawn too."""
    harmful = lambda: draw(st.booleans())  # noqa: E731
    meta_edit = draw(st.lists(st.sampled_from(HARMLESS_META), max_size=2))
    if harmful():
        meta_edit = draw(st.one_of(
            st.lists(st.tuples(st.sampled_from(META_FIELDS), st.just(_DELETE) | JSON_VALUES), min_size=1, max_size=3),
            st.builds(lambda v: ("whole", v), JSON_VALUES),
            st.builds(lambda b: ("bytes", b), st.binary(max_size=40)),
        ))
    features = draw(st.sampled_from(
        ["no_rows", "fewer_rows", "narrow", "1d", "3d", "int16", "float64", "complex", "text", "nan", "inf", "huge"]
    )) if harmful() else draw(st.sampled_from([None, "float32", "scaled"]))
    times = draw(st.sampled_from(
        ["reversed", "repeated", "nan", "inf", "short", "int", "2d", "huge"]
    )) if harmful() else draw(st.sampled_from([None, "shifted", "float32"]))
    row = draw(st.integers(0, 4))
    damage = draw(st.one_of(st.tuples(st.just("truncate"), st.floats(0, 1)),
                            st.tuples(st.just("garble"), st.floats(0, 1), st.binary(min_size=1, max_size=16)))
                  ) if harmful() else None
    return meta_edit, features, times, row, damage


def damage_features(f: np.ndarray, how: str | None, row: int) -> np.ndarray:
    f = f.astype(np.float16)
    if how in ("nan", "inf", "huge"):
        f = f.astype(np.float64 if how == "huge" else np.float16)
        f[row, row] = {"nan": np.nan, "inf": -np.inf, "huge": 1e300}[how]
        return f
    return {
        None: f, "float32": f.astype(np.float32), "scaled": f * np.float16(-2),
        "no_rows": f[:0], "fewer_rows": f[:row], "narrow": f[:, :row], "1d": f[row], "3d": f[None],
        "int16": f.astype(np.int16), "float64": f.astype(np.float64), "complex": f.astype(np.complex64),
        "text": f.astype("U4"),
    }[how]


def damage_times(t: np.ndarray, how: str | None, row: int) -> np.ndarray:
    t = t.copy()
    if how in ("nan", "inf", "huge"):
        t[row] = {"nan": np.nan, "inf": np.inf, "huge": 1e308 * (1 if row else -1)}[how]
        return t
    return {
        None: t, "shifted": t + 1000.5, "float32": t.astype(np.float32),
        "reversed": t[::-1], "repeated": np.repeat(t[:1], len(t)), "short": t[:row], "int": t.astype(np.int64),
        "2d": t[:, None],
    }[how]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recipe=damaged_files())
def test_loading_any_damaged_file_gives_a_framegram_or_a_framegram_error(recipe, small, tmp_path):
    meta_edit, feature_damage, time_damage, row, damage = recipe
    meta = json.loads(small.meta.to_json())
    if isinstance(meta_edit, list):  # (field path, new value) pairs
        for field_path, value in meta_edit:
            parent = meta
            for key in field_path[:-1]:
                parent = parent.get(key) if isinstance(parent, dict) else None
            if isinstance(parent, dict):
                if value is _DELETE:
                    parent.pop(field_path[-1], None)
                else:
                    parent[field_path[-1]] = value
    else:  # ("whole", JSON value) or ("bytes", raw bytes)
        meta = meta_edit[1]
    path = tmp_path / "x.framegram.npz"
    write_parts(path, damage_features(small.features, feature_damage, row), damage_times(small.times, time_damage, row), meta)
    if damage is not None:
        data = bytearray(path.read_bytes())
        at = int(damage[1] * len(data))
        if damage[0] == "truncate":
            del data[at:]
        else:
            data[at : at + len(damage[2])] = damage[2]
        path.write_bytes(bytes(data))

    try:
        loaded = Framegram.load(path)
    except FramegramError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        event(f"refused: {type(exc).__name__}")
        return
    event("loaded")
    assert loaded.features.dtype == np.float32 and loaded.features.ndim == 2 and len(loaded) >= 1
    assert loaded.dim == loaded.meta.encoder.dim and loaded.times.shape == (len(loaded),)
    assert np.isfinite(loaded.features).all() and np.isfinite(loaded.times).all()
    assert (np.diff(loaded.times) > 0).all()
    assert loaded.meta.fps > 0 and math.isfinite(loaded.duration)
