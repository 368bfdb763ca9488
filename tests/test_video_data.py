"""The data side of video classification: the generated benchmarks (framegram.datasets.actions), the
folder dataset and its clips (video_models.data) and the cached optical flow (video_models.flow)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from scipy.stats import kstest

from framegram.errors import FramegramError, InputError
from framegram.datasets import actions
from framegram.datasets.actions import build_actions, list_benchmarks, motion_track, write_video
from framegram.video_models.data import VideoFolder, crop_flow, crop_frames, decode_frames
from framegram.video_models.flow import cached_flow, farneback_flow
from framegram.video_models.inputs import FLOW_SCALE, rgb_tensor

MOVES = {"move_left": (-1, 0), "move_right": (1, 0), "move_up": (0, -1), "move_down": (0, 1)}


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    return build_actions("motion", tmp_path_factory.mktemp("motion") / "bench", per_class_train=5, per_class_test=1)


@pytest.fixture(scope="module")
def appearance(tmp_path_factory):
    return build_actions("appearance", tmp_path_factory.mktemp("appearance") / "bench", per_class_train=3, per_class_test=1)


# --- the generated benchmarks ---------------------------------------------------------------------


def test_motion_benchmark_layout(motion):
    assert list_benchmarks() == ["appearance", "motion"]
    manifest = json.loads((motion / "manifest.json").read_text())
    assert manifest["flip_ok"] is False and manifest["videos"] == {"train": 40, "test": 8}
    assert manifest["classes"] == sorted(actions.MOTION_CLASSES) == sorted(p.name for p in motion.iterdir() if p.is_dir())
    for split, count in (("train", 40), ("test", 8)):
        listed = (motion / f"{split}list.txt").read_text().splitlines()
        assert len(listed) == len(set(listed)) == count
        assert all((motion / rel).is_file() and rel.split("/")[0] in manifest["classes"] for rel in listed)
    frames = decode_frames(motion / listed[0], (96, 96), actions.FPS)
    assert frames.shape == (actions.FRAMES, 96, 96, 3)


def test_benchmark_is_deterministic_resumes_and_refuses_other_settings(motion, tmp_path):
    # a video depends on (seed, benchmark, class, split, number) only: a smaller build repeats the same files
    small = build_actions("motion", tmp_path / "small", per_class_train=1, per_class_test=1)
    videos = sorted(p.relative_to(small) for p in small.rglob("*.mp4"))
    assert len(videos) == 16
    assert all((small / v).read_bytes() == (motion / v).read_bytes() for v in videos)

    stamps = {v: (small / v).stat().st_mtime_ns for v in videos}
    assert build_actions("motion", small, per_class_train=1, per_class_test=1) == small
    assert {v: (small / v).stat().st_mtime_ns for v in videos} == stamps  # a finished folder is left alone

    gone = small / videos[3]
    gone.unlink()
    (small / "manifest.json").unlink()  # an interrupted build: a video and the manifest missing
    build_actions("motion", small, per_class_train=1, per_class_test=1)
    assert gone.read_bytes() == (motion / videos[3]).read_bytes()
    assert {v: (small / v).stat().st_mtime_ns for v in videos if v != videos[3]} == {k: s for k, s in stamps.items() if k != videos[3]}

    with pytest.raises(InputError, match="other settings.*seed"):
        build_actions("motion", small, seed=1, per_class_train=1, per_class_test=1)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        build_actions("appearance", tmp_path / "other")
    with pytest.raises(FramegramError, match="unknown benchmark 'dance'.*appearance, motion"):
        build_actions("dance", tmp_path / "dance")


def test_motion_tracks_have_the_same_frame_marginals_in_every_class():
    """At the first and the last frame, the object's x, y, angle and log diameter are uniform over
    their ranges in every class (a one-sample KS test per class, frame and variable); each class
    moves along its own variable only."""
    count, last = 2000, actions.FRAMES - 1
    log_low, log_high = np.log(actions.MIN_DIAMETER), np.log(actions.MAX_DIAMETER)
    ranges = {"x": (0, actions.SIZE), "y": (0, actions.SIZE), "angle": (0, 2 * np.pi), "log_diameter": (log_low, log_high)}
    moving = {"move_left": "x", "move_right": "x", "move_up": "y", "move_down": "y", "turn_clockwise": "angle",
              "turn_anticlockwise": "angle", "approach": "log_diameter", "recede": "log_diameter"}  # fmt: skip
    for index, class_name in enumerate(actions.MOTION_CLASSES):
        rng = np.random.default_rng([7, index])
        tracks = [motion_track(rng, class_name) for _ in range(count)]
        values = {
            "x": np.array([t.x for t in tracks]), "y": np.array([t.y for t in tracks]),
            "angle": np.array([t.angle for t in tracks]), "log_diameter": np.log([t.diameter for t in tracks]),
        }  # fmt: skip
        for name, (low, high) in ranges.items():
            for frame in (0, last):
                p = kstest(values[name][:, frame], "uniform", args=(low, high - low)).pvalue
                assert p > 1e-4, f"{class_name}: {name} at frame {frame} is not uniform (KS p = {p:.2g})"
            changes = np.abs(np.diff(values[name], axis=1)).max()
            assert (changes > 1e-9) == (moving[class_name] == name), f"{class_name} moves {name}: {changes}"


def first_frame_features(dataset: VideoFolder) -> tuple[np.ndarray, np.ndarray]:
    """Per video: colour histogram (8 bins a channel) and a 4x4 grey thumbnail of its first frame."""
    features, labels = [], []
    for index in range(len(dataset)):
        item, label = dataset[index]
        pixels = (item["rgb"][:, 0] + 1) * 128  # [3, H, W], about 0-255
        histograms = [torch.histc(pixels[c], bins=8, min=0, max=256) / pixels[c].numel() for c in range(3)]
        thumbnail = torch.nn.functional.adaptive_avg_pool2d(pixels.mean(0, keepdim=True), 4).flatten() / 255
        features.append(torch.cat([*histograms, thumbnail]).numpy())
        labels.append(label)
    return np.array(features), np.array(labels)


def nearest_class_mean_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out accuracy of the nearest class mean."""
    correct = 0
    for i in range(len(labels)):
        others = np.arange(len(labels)) != i
        classes = np.unique(labels[others])
        means = np.stack([features[others & (labels == c)].mean(axis=0) for c in classes])
        correct += classes[np.argmin(((means - features[i]) ** 2).sum(axis=1))] == labels[i]
    return correct / len(labels)


def test_disc_stands_out_from_a_matching_background_and_its_hand_shows_the_angle():
    """A disc whose texture is the background's own colour is still outlined (black and white rim),
    and its white hand points along the angle: right at 0, down at pi/2 (clockwise on screen)."""
    from PIL import Image

    grey = np.full((actions.SIZE, actions.SIZE, 3), 128, np.uint8)
    texture = Image.fromarray(np.full((32, 32, 3), 128, np.uint8))
    centre, diameter = 48.0, 40.0
    for angle, (hx, hy) in [(0.0, (1, 0)), (np.pi / 2, (0, 1)), (np.pi, (-1, 0))]:
        frame = actions.draw_disc(grey, texture, centre, centre, angle, diameter)[..., 0].astype(int)
        assert (frame[int(centre), :] < 20).sum() >= 2  # the black outer ring, crossed twice
        assert (frame > 235).sum() > 0.1 * np.pi * (diameter / 2) ** 2  # white inner ring and hand
        # along the hand, half way to the rim: white; the opposite side: the texture's grey
        tip = round(centre + hx * diameter / 4 - 0.5), round(centre + hy * diameter / 4 - 0.5)
        back = round(centre - hx * diameter / 4 - 0.5), round(centre - hy * diameter / 4 - 0.5)
        assert frame[tip[1], tip[0]] > 235 and frame[back[1], back[0]] == 128, angle
        assert (frame[:8, :8] == 128).all()  # outside the disc: the background untouched


def test_rim_notches_sit_between_hand_positions_and_turn_with_the_disc():
    """With `ticks`, the white ring is black half way between the hand's positions and white at
    them, measured from the disc's angle: the notches turn with it. Without, the ring is all white."""
    from PIL import Image

    grey = np.full((actions.SIZE, actions.SIZE, 3), 128, np.uint8)
    texture = Image.fromarray(np.full((32, 32, 3), 128, np.uint8))
    centre, diameter, ticks = 48.0, 60.0, 8
    radius = diameter / 2 - 1.5 * actions.RIM * diameter  # the middle of the white ring
    spacing = 2 * np.pi / ticks

    def on_ring(frame: np.ndarray, phi: float) -> int:  # phi: clockwise on screen from the right
        return frame[round(centre + radius * np.sin(phi) - 0.5), round(centre + radius * np.cos(phi) - 0.5)]

    for angle in (0.0, 0.3, 2.0):
        frame = actions.draw_disc(grey, texture, centre, centre, angle, diameter, ticks)[..., 0].astype(int)
        notches = [on_ring(frame, angle + (k + 0.5) * spacing) for k in range(ticks)]
        between = [on_ring(frame, angle + k * spacing) for k in range(ticks)]
        assert max(notches) < 40 and min(between) > 215, (angle, notches, between)
        plain = actions.draw_disc(grey, texture, centre, centre, angle, diameter)[..., 0].astype(int)
        assert min(on_ring(plain, angle + (k + 0.5) * spacing) for k in range(ticks)) > 215


def test_appearance_footage_is_split_shot_by_shot():
    # known answer: shots of 3, 2, 1 and 4 frames split 70 / 30 each, a one-frame shot to training
    train = actions.training_frames_by_shot(np.arange(10.0) + 0.5, [3.0, 5.0, 6.0])
    assert train.tolist() == [True, True, False, True, False, True, True, True, True, False]
    by_shot, by_source = actions.split_by_shot(), actions.split_by_source()
    for name in actions.FOOTAGE_SOURCES:
        train, test = by_shot["train"][name], by_shot["test"][name]
        assert len(test) > 0 and len(train) + len(test) == sum(len(by_source[s][name]) for s in by_source)
        assert not (train[:, None] == test[None]).all(axis=(2, 3, 4)).any()  # no frame in both splits
    # the montage (bikes): its last 30 % shows only its last shots; split by shot, test frames come
    # from its first 70 % too, from shots that training sees
    test, early = by_shot["test"]["bikes"], by_source["train"]["bikes"]
    assert (test[:, None] == early[None]).all(axis=(2, 3, 4)).sum() >= 5


def test_a_single_frame_tells_the_appearance_class_but_not_the_motion_class(motion, appearance):
    chance = 1 / 8
    motion_accuracy = nearest_class_mean_accuracy(*first_frame_features(VideoFolder(motion, train=False, clips_per_video=1)))
    appearance_accuracy = nearest_class_mean_accuracy(*first_frame_features(VideoFolder(appearance, train=False, clips_per_video=1)))
    assert motion_accuracy < chance + 0.15, motion_accuracy  # 48 videos: chance +- 0.05; 0.08-0.19 on three seeds
    assert appearance_accuracy > 0.5, appearance_accuracy  # 4x chance; 0.7-0.85 on three seeds


def object_motion(flow: torch.Tensor) -> np.ndarray:
    """Median over frames of the mean flow (pixels per frame) of the pixels that move most against
    the background (the median flow): (dx, dy). flow: [2, T, H, W] as the dataset gives it."""
    flow = flow.numpy()[:, :-1] * FLOW_SCALE  # the last frame repeats the one before
    relative = flow - np.median(flow.reshape(2, -1), axis=1)[:, None, None, None]
    magnitude = np.hypot(*relative)
    means = []
    for t in range(relative.shape[1]):
        moving = magnitude[t] >= np.quantile(magnitude[t], 0.9)
        means.append(relative[:, t][:, moving].mean(axis=1))
    return np.median(means, axis=0)


def test_flow_tells_the_direction_of_the_moving_classes(motion):
    data = VideoFolder(motion, train=False, clips_per_video=1, clip_len=actions.FRAMES, inputs=("flow",))
    assert not data.flip  # read from the manifest: a flip would swap move_left and move_right
    right = total = 0
    for index in range(len(data)):
        item, label = data[index]
        class_name = data.classes[label]
        if class_name in MOVES:
            dx, dy = object_motion(item["flow"])
            axis = 0 if abs(dx) > abs(dy) else 1
            guess = tuple(int(np.sign(v)) if a == axis else 0 for a, v in enumerate((dx, dy)))
            right += guess == MOVES[class_name]
            total += 1
    assert total == 24 and right / total >= 0.85, f"{right} of {total}"


# --- the dataset ----------------------------------------------------------------------------------


def test_training_clips_are_random_reproducible_and_shaped(motion):
    data = VideoFolder(motion, split="train", clip_len=8, stride=2, size=(48, 56), inputs=("rgb", "flow"))
    assert len(data) == 40 and data.decode_size == (56, 65) and data.span == 15
    assert [data.classes[label] for label in data.labels] == [p.parent.name for p in data.videos]

    def draw(seed):
        torch.manual_seed(seed)
        return [data[i] for i in (0, 0, 7)]

    first, again, other = draw(3), draw(3), draw(4)
    item, label = first[2]
    assert item["rgb"].shape == (3, 8, 48, 56) and item["rgb"].dtype == torch.float32
    assert item["flow"].shape == (2, 8, 48, 56) and int(item["video_index"]) == 7 and label == data.labels[7]
    assert -1.0 <= item["rgb"].min() and item["rgb"].max() <= 128 / 128
    assert not torch.equal(first[0][0]["rgb"], first[1][0]["rgb"])  # a new clip and crop every time
    assert all(torch.equal(a[0]["rgb"], b[0]["rgb"]) and torch.equal(a[0]["flow"], b[0]["flow"]) for a, b in zip(first, again))
    assert not torch.equal(first[0][0]["rgb"], other[0][0]["rgb"])

    batch, labels = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
    assert batch["rgb"].shape == (4, 3, 8, 48, 56) and batch["video_index"].tolist() == [0, 1, 2, 3] and labels.shape == (4,)


def test_translation_only_crops_are_windows_of_the_decoded_frames(motion):
    data = VideoFolder(motion, split="train", clip_len=4, size=(48, 56), crop_scale=None, inputs=("rgb",))
    torch.manual_seed(3)
    offsets = set()
    for item in range(6):
        rgb = data[item][0]["rgb"]  # [3, T, H, W], (x - 127) / 128
        decoded = rgb_tensor(data._frames(item))  # [3, T_all, H0, W0]
        found = [(t, top, left) for t in range(decoded.shape[1] - 3) for top in range(decoded.shape[2] - 47)
                 for left in range(decoded.shape[3] - 55)
                 if torch.equal(decoded[:, t : t + 4, top : top + 48, left : left + 56], rgb)]
        assert found, f"item {item} is not an unscaled window of its video"
        offsets.add(found[0][1:])
    assert len(offsets) > 1  # placed at random


def test_test_clips_are_evenly_spaced_centre_crops(motion):
    data = VideoFolder(motion, split="test", train=False, clips_per_video=3, clip_len=4, stride=2, size=(64, 64))
    assert len(data) == 8 * 3
    assert [int(data[i][0]["video_index"]) for i in range(6)] == [0, 0, 0, 1, 1, 1]
    frames = decode_frames(data.videos[1], data.decode_size, actions.FPS)  # [16, 74, 74, 3]
    centre = frames[:, 5:69, 5:69]
    # a clip spans 7 frames: starts 0, 4.5 -> 4 and 9 (the last clip ends on the last frame)
    for clip, start in enumerate((0, 4, 9)):
        item, label = data[3 + clip]
        assert torch.equal(item["rgb"], rgb_tensor(centre[start : start + 7 : 2])) and label == data.labels[1]


def test_crops_resize_and_flip_pixels_and_flow_together():
    """A texture moving 2 px right and 1 px up a frame: Farneback measures it; a crop at half the size
    halves the vectors; a flip turns them to the left and mirrors the pixels."""
    rng = np.random.default_rng(0)
    texture = np.kron(rng.integers(0, 256, (20, 20, 3)), np.ones((4, 4, 1))).astype(np.uint8)  # 80x80, 4-px cells
    frames = np.stack([np.roll(texture, (-t, 2 * t), axis=(0, 1)) for t in range(6)])
    flow = farneback_flow(frames)
    inner = flow[:, 20:60, 20:60].reshape(-1, 2)
    assert np.allclose(np.median(inner, axis=0), (2.0, -1.0), atol=0.15)

    box = (20, 20, 40, 40)
    half = crop_flow(flow, box, (20, 20), flip=False)  # [2, T, 20, 20]
    flipped = crop_flow(flow, box, (20, 20), flip=True)
    assert half.shape == (2, 6, 20, 20)
    assert np.allclose(half[:, :, 5:15, 5:15].flatten(1).median(dim=1).values, (1.0, -0.5), atol=0.1)
    assert np.allclose(flipped[:, :, 5:15, 5:15].flatten(1).median(dim=1).values, (-1.0, -0.5), atol=0.1)
    pixels = crop_frames(frames, box, (40, 40), flip=True)
    assert np.array_equal(pixels, frames[:, 20:60, 20:60][:, :, ::-1])


def test_framegram_rows_follow_the_clip_frames(appearance, encoder):
    data = VideoFolder(appearance, split="test", train=False, clips_per_video=2, clip_len=4, stride=3, inputs=("framegram",))
    item, _ = data[1]  # the second clip of the first video: frames 6, 9, 12, 15
    frames = decode_frames(data.videos[0], encoder.spec.input_size, actions.FPS)
    expected = encoder.encode(frames[6::3])
    assert item["framegram"].shape == (4, encoder.spec.dim)
    assert np.allclose(item["framegram"].numpy(), expected, atol=0.01 * np.abs(expected).max())  # float16 on disk


def test_flow_is_cached_by_video_content_and_size(motion, tmp_path):
    video = motion / "move_left" / "move_left-test-000.mp4"
    frames = decode_frames(video, (40, 40), actions.FPS)
    flow, cached = cached_flow(video, frames, folder=tmp_path)
    assert not cached and flow.dtype == np.float16 and flow.shape == (16, 40, 40, 2)
    assert np.array_equal(flow[-1], flow[-2])  # the last frame repeats the one before
    stored = list(tmp_path.iterdir())
    assert len(stored) == 1 and "40x40" in stored[0].name
    again, cached = cached_flow(video, frames, folder=tmp_path)
    assert cached and np.array_equal(again, flow)
    copy = tmp_path / "renamed.mp4"  # same content under another name: the same cache entry
    shutil.copyfile(video, copy)
    assert cached_flow(copy, frames, folder=tmp_path)[1]
    _, cached = cached_flow(video, decode_frames(video, (32, 32), actions.FPS), folder=tmp_path)
    assert not cached  # another size: computed again
    stored[0].write_bytes(b"damaged")
    repaired, cached = cached_flow(video, frames, folder=tmp_path)
    assert not cached and np.array_equal(repaired, flow)


def test_flow_is_read_when_the_dataset_is_made_not_during_an_epoch(motion, tmp_path, monkeypatch):
    monkeypatch.setenv("FRAMEGRAM_CACHE", str(tmp_path))
    data = VideoFolder(motion, split="test", train=False, clips_per_video=1, inputs=("rgb", "flow"))
    stored = sorted((tmp_path / "flow").iterdir())
    assert len(stored) == len(data.videos) == 8  # every flow computed before any clip is asked for
    for path in stored:
        path.unlink()
    item, _ = data[0]  # served from memory: the files are not needed again
    assert item["flow"].shape == (2, 8, 64, 64) and not any((tmp_path / "flow").iterdir())
    # a cache too small for the dataset: nothing is read ahead that would be dropped and read again
    small = VideoFolder(motion, split="test", train=False, clips_per_video=1, inputs=("rgb", "flow"), cache_mb=1)
    assert small._cache.dropped and len(list((tmp_path / "flow").iterdir())) < len(small.videos)
    assert small[len(small) - 1][0]["flow"].shape == (2, 8, 64, 64)


# --- bad input ------------------------------------------------------------------------------------


def test_unreadable_and_too_short_videos_are_skipped_with_reasons(motion, tmp_path):
    root = tmp_path / "data"
    for class_name in ("move_left", "move_up"):
        (root / class_name).mkdir(parents=True)
        shutil.copy(motion / class_name / f"{class_name}-train-000.mp4", root / class_name)
    (root / "move_left" / "notes.mp4").write_text("not a video")
    write_video(np.zeros((6, 32, 32, 3), np.uint8), root / "move_up" / "short.mp4")
    with pytest.warns(UserWarning, match="skipped 2 of 4 videos"):
        data = VideoFolder(root, clip_len=4, stride=2)
    reasons = {s.path.name: s.reason for s in data.skipped}
    assert reasons["short.mp4"] == "6 frames, a clip needs 7 (4 frames, stride 2)"
    assert "not a video" in reasons["notes.mp4"]
    assert [p.name for p in data.videos] == ["move_left-train-000.mp4", "move_up-train-000.mp4"]

    (root / "trainlist.txt").write_text("move_left/move_left-train-000.mp4 1\nmove_up/gone.mp4 2\n")
    with pytest.warns(UserWarning, match="skipped 1 of 2"):
        listed = VideoFolder(root, split="train", clip_len=4)
    assert [p.name for p in listed.videos] == ["move_left-train-000.mp4"]
    assert listed.skipped[0].reason == "listed in trainlist.txt but not found"
    (root / "testlist.txt").write_text("elsewhere/video.mp4\n")
    with pytest.raises(InputError, match="testlist.txt.*'elsewhere/video.mp4'.*not inside a class folder"):
        VideoFolder(root, split="test")
    with pytest.warns(UserWarning), pytest.raises(InputError, match="no usable videos.*short.mp4: 6 frames, a clip needs 16"):
        VideoFolder(root, split_file=_write(tmp_path / "shorts.txt", "move_up/short.mp4\n"), clip_len=16)


def _write(path, text):
    path.write_text(text)
    return path


def test_bad_folders_are_refused_naming_the_folder(tmp_path):
    with pytest.raises(InputError, match="nowhere: no such folder"):
        VideoFolder(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "clip.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="flat: has no class folders"):
        VideoFolder(tmp_path / "flat")
    (tmp_path / "flat" / "cats").mkdir()
    (tmp_path / "flat" / "dogs").mkdir()
    (tmp_path / "flat" / "cats" / "a.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="dogs: class folder has no videos"):
        VideoFolder(tmp_path / "flat")
    (tmp_path / "flat" / "dogs" / "b.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="has no trainlist.txt"):
        VideoFolder(tmp_path / "flat", split="train")
