"""Training, resuming, evaluating and classifying with a tiny 3D CNN on clips with a known answer:
brightness rising (label 1) or falling (label 0) over time, under random texture and jitter."""

from __future__ import annotations

import json
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from framegram.cli import main
from framegram.cli.video_models import parse_model_options
from framegram.errors import TooShortError
from framegram.training import deterministic_algorithms
from framegram.video_models.data import evaluation_clips
from framegram.video_models.infer import classify_video
from framegram.video_models.inputs import FLOW_SCALE, PIXEL_OFFSET, PIXEL_SCALE, rgb_tensor
from framegram.video_models.registry import get_model, register_model
from framegram.video_models.train import (
    CheckpointError,
    CheckpointMismatchError,
    TrainConfig,
    evaluate,
    load_checkpoint,
    train,
)

CLASSES = ("falling", "rising")
CLIP_LEN, SIZE = 4, 12
STEP = 24  # brightness change per frame of the toy clips, in pixel levels


class TinyVideoNet(nn.Module):
    """3x3x3 convolution (sees the brightness change between frames), ReLU, global mean, dropout, linear."""

    def __init__(self, num_classes: int, width: int = 8):
        super().__init__()
        self.conv = nn.Conv3d(3, width, kernel_size=3, padding=1)
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, batch: dict) -> torch.Tensor:
        features = torch.relu(self.conv(batch["rgb"])).mean(dim=(2, 3, 4))
        return self.head(self.drop(features))


@register_model("test-tiny", summary="test only: one 3D conv and a linear head")
def tiny(num_classes: int, **cfg) -> nn.Module:
    return TinyVideoNet(num_classes, **cfg)


@register_model("test-tiny-other", summary="test only: a second model name for refusals")
def tiny_other(num_classes: int, **cfg) -> nn.Module:
    return TinyVideoNet(num_classes, **cfg)


class PooledInputsNet(nn.Module):
    """A linear head on the time-and-space means of rgb, flow and framegram rows."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.head = nn.Linear(3 + 2 + 1280, num_classes)

    def forward(self, batch: dict) -> torch.Tensor:
        pooled = [batch["rgb"].mean(dim=(2, 3, 4)), batch["flow"].mean(dim=(2, 3, 4)), batch["framegram"].mean(dim=1)]
        return self.head(torch.cat(pooled, dim=1))


@register_model("test-all-inputs", inputs=("rgb", "flow", "framegram"), summary="test only: every input kind")
def all_inputs(num_classes: int) -> nn.Module:
    return PooledInputsNet(num_classes)


def ramp_frames(rising: bool, middle: float, rng: np.random.Generator, n_frames: int = CLIP_LEN, size: int = SIZE):
    """uint8 [T, H, W, 3]: a fixed random texture whose brightness moves by STEP per frame."""
    t = np.arange(n_frames) - (n_frames - 1) / 2
    levels = middle + (STEP if rising else -STEP) * t
    texture = rng.normal(0, 12, (size, size, 3))
    return np.clip(levels[:, None, None, None] + texture, 0, 255).astype(np.uint8)


class BrightnessRamps(Dataset):
    """`videos` toy videos, half rising; `clips_per_video` clips each (own texture and level).
    Items: (batch dict, label), the dict with "video_index" if asked; each access adds brightness
    jitter drawn from torch's global generator, as augmentations do."""

    def __init__(self, videos: int, clips_per_video: int = 1, seed: int = 0, with_video: bool = False):
        rng = np.random.default_rng(seed)
        self.labels = [v % 2 for v in range(videos) for _ in range(clips_per_video)]
        self.videos = [v for v in range(videos) for _ in range(clips_per_video)]
        self.clips = [rgb_tensor(ramp_frames(bool(label), rng.uniform(70, 185), rng)) for label in self.labels]
        self.with_video = with_video

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int):
        inputs = {"rgb": self.clips[i] + 0.05 * torch.randn(())}
        if self.with_video:
            inputs["video_index"] = torch.tensor(self.videos[i])
        return inputs, self.labels[i]


class CrashingDataset(Dataset):
    """`base` that raises on its `crash_at`-th item: a run killed in the middle of an epoch."""

    def __init__(self, base: Dataset, crash_at: int):
        self.base, self.crash_at, self.served = base, crash_at, 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        self.served += 1
        if self.served == self.crash_at:
            raise RuntimeError("simulated crash")
        return self.base[i]


def config(**changes) -> TrainConfig:
    settings = {"model": "test-tiny", "num_classes": 2, "class_names": CLASSES, "epochs": 5, "batch_size": 8,
                "lr": 0.1, "weight_decay": 0.01, "seed": 3, "clip_len": CLIP_LEN, "size": (SIZE, SIZE),
                "clips_per_video": 3}
    return TrainConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def toy_data():
    return BrightnessRamps(64, seed=1), BrightnessRamps(24, clips_per_video=2, seed=2, with_video=True)


@pytest.fixture(scope="module")
def trained(toy_data, tmp_path_factory):
    """A finished 5-epoch run of test-tiny: (TrainResult, run folder)."""
    out = tmp_path_factory.mktemp("run")
    return train(config(), *toy_data, out), out


def test_learns_rising_versus_falling(trained, toy_data):
    result, _ = trained
    history = result.history
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["val_acc"] >= 0.95
    assert history[-1]["lr"] < 0.01 * config().lr  # the cosine schedule ends near zero
    evaluation = evaluate(result.model, toy_data[1])
    assert evaluation.video_probabilities.shape == (24, 2)  # 48 clips averaged into 24 videos
    np.testing.assert_allclose(evaluation.video_probabilities.sum(axis=1), 1.0, atol=1e-9)
    assert evaluation.video_labels.tolist() == [v % 2 for v in range(24)]
    assert evaluation.confusion.sum() == 24 and np.trace(evaluation.confusion) >= 23
    assert evaluation.accuracy == history[-1]["val_acc"]


def test_metrics_log_and_learning_curve(trained):
    result, out = trained
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines == result.history
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "seconds"} <= lines[0].keys()
    assert all(line["seconds"] > 0 for line in lines)
    with Image.open(out / "learning_curve.png") as picture:
        assert picture.format == "PNG" and picture.width >= 600
    assert not list(out.glob(".*partial"))  # no temporary file left behind
    checkpoint = load_checkpoint(out)
    assert checkpoint["epoch"] == 5 and checkpoint["settings"]["class_names"] == list(CLASSES)
    assert checkpoint["model_meta"]["parameters"] == sum(p.numel() for p in result.model.parameters())


def test_interrupted_then_resumed_run_is_bit_identical(tmp_path):
    train_set, val_set = BrightnessRamps(32, seed=1), BrightnessRamps(8, clips_per_video=2, seed=2, with_video=True)
    settings = config(epochs=3)
    straight = train(settings, train_set, val_set, tmp_path / "straight")

    crashing = CrashingDataset(train_set, crash_at=len(train_set) + 12)  # in the middle of epoch 2
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(settings, crashing, val_set, tmp_path / "resumed")
    assert load_checkpoint(tmp_path / "resumed")["epoch"] == 1
    resumed = train(settings, train_set, val_set, tmp_path / "resumed")

    assert resumed.resumed_from == 1
    weights, expected = resumed.model.state_dict(), straight.model.state_dict()
    assert weights.keys() == expected.keys()
    assert all(torch.equal(weights[k], expected[k]) for k in expected)
    without_time = [[{k: v for k, v in r.items() if k != "seconds"} for r in run.history] for run in (resumed, straight)]
    assert without_time[0] == without_time[1]


def test_deterministic_mode_skips_the_nan_fill_without_changing_weights():
    """The trainer's deterministic mode leaves new memory unfilled (a CPU training step is faster)
    and restores the process settings; three real I3D training steps give bit-identical weights
    with PyTorch's NaN fill or without."""
    before = torch.utils.deterministic.fill_uninitialized_memory, torch.are_deterministic_algorithms_enabled()
    with deterministic_algorithms():
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.utils.deterministic.fill_uninitialized_memory
    assert (torch.utils.deterministic.fill_uninitialized_memory, torch.are_deterministic_algorithms_enabled()) == before

    def weights_after_three_steps(fill: bool) -> tuple[dict, torch.Tensor]:
        torch.manual_seed(0)
        model = get_model("i3d", num_classes=3).train()
        initial_head = model.classifier[1].weight.detach().clone()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(1)
        with deterministic_algorithms():
            torch.utils.deterministic.fill_uninitialized_memory = fill
            for _ in range(3):
                rgb = torch.randn(2, 3, 4, 32, 32, generator=generator)
                loss = F.cross_entropy(model({"rgb": rgb}), torch.tensor([0, 2]))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return model.state_dict(), initial_head

    (filled, initial_head), (unfilled, _) = weights_after_three_steps(True), weights_after_three_steps(False)
    assert all(torch.equal(filled[k], unfilled[k]) for k in filled)
    assert not torch.equal(filled["classifier.1.weight"], initial_head)  # the steps did train


def test_rerun_resumes_finished_run_and_refuses_other_runs(trained, toy_data):
    result, out = trained
    checkpoint_bytes = (out / "checkpoint.pt").read_bytes()
    again = train(config(), *toy_data, out)
    assert again.resumed_from == 5 and again.history == result.history
    with pytest.raises(CheckpointMismatchError, match="model 'test-tiny', not 'test-tiny-other'") as refused:
        train(config(model="test-tiny-other"), *toy_data, out)
    assert str(out / "checkpoint.pt") in str(refused.value)
    with pytest.raises(CheckpointMismatchError, match=r"lr=0\.1 there, 0\.3 now"):
        train(config(lr=0.3), *toy_data, out)
    with pytest.raises(CheckpointMismatchError, match="64 training clips there, 32 now"):
        train(config(), BrightnessRamps(32), toy_data[1], out)
    assert (out / "checkpoint.pt").read_bytes() == checkpoint_bytes  # refusals leave the run alone


class RandomClips(Dataset):
    """`n` clips of Gaussian noise [3, 8, 16, 16] (the smallest clip C3D takes), labels alternating 0, 1."""

    def __init__(self, n: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.clips = torch.randn(n, 3, 8, 16, 16, generator=generator)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int):
        return {"rgb": self.clips[i], "video_index": torch.tensor(i)}, i % 2


def test_non_local_run_starts_where_the_trained_c3d_run_ended(tmp_path):
    """init_from: c3d-nonlocal started from a trained C3D run holds that run's weights, its
    non-local blocks added (that they start as the identity is test_video_models'); a learning rate
    of ~0 keeps the loaded weights through the epoch, and without init_from they are not there."""
    train_set, val_set = RandomClips(16, seed=0), RandomClips(6, seed=1)
    cfg = {"width": 0.125, "fc_dim": 16, "batch_norm": True, "dropout": 0.0}
    plain = train(config(model="c3d", model_cfg=cfg, epochs=1, lr=1e-2, clip_len=8, size=(16, 16)),
                  train_set, val_set, tmp_path / "c3d")
    started = train(config(model="c3d-nonlocal", model_cfg=cfg, epochs=1, lr=1e-12, clip_len=8, size=(16, 16),
                           init_from=str(tmp_path / "c3d")), train_set, val_set, tmp_path / "c3d-nonlocal")
    state = started.model.state_dict()
    assert any(key.startswith("features.nonlocal_") for key in state)
    for key, trained_weight in plain.model.state_dict().items():
        if trained_weight.is_floating_point() and "running" not in key:  # batch-norm statistics move with every batch
            assert torch.allclose(state[key], trained_weight, atol=1e-6), key
    fresh = train(config(model="c3d-nonlocal", model_cfg=cfg, epochs=1, lr=1e-12, clip_len=8, size=(16, 16)),
                  train_set, val_set, tmp_path / "fresh")
    assert not torch.allclose(fresh.model.state_dict()["fc8.weight"], plain.model.state_dict()["fc8.weight"])
    assert load_checkpoint(tmp_path / "c3d-nonlocal")["settings"]["init_from"] == str(tmp_path / "c3d")


def test_init_from_refuses_runs_that_do_not_fit(trained, toy_data, tmp_path):
    _, out = trained
    with pytest.raises(CheckpointMismatchError, match=r"conv\.weight \(8, 3, 3, 3, 3\) \(here \(16, 3, 3, 3, 3\)\)"):
        train(config(model_cfg={"width": 16}, init_from=str(out)), *toy_data, tmp_path / "wider")
    with pytest.raises(CheckpointMismatchError, match=r"trained on the classes \['falling', 'rising'\], not \['down', 'up'\]"):
        train(config(class_names=("down", "up"), init_from=str(out)), *toy_data, tmp_path / "renamed")
    with pytest.raises(CheckpointError, match="no checkpoint here"):
        train(config(init_from=str(tmp_path / "nothing")), *toy_data, tmp_path / "orphan")


def test_runs_saved_before_init_from_existed_still_resume(trained, toy_data, tmp_path):
    _, out = trained
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    del checkpoint["settings"]["init_from"]
    (tmp_path / "old").mkdir()
    torch.save(checkpoint, tmp_path / "old" / "checkpoint.pt")
    assert train(config(), *toy_data, tmp_path / "old").resumed_from == 5


def write_video(path, frames: np.ndarray, fps: int = 8) -> None:
    """uint8 [T, H, W, 3] → H.264 (near-lossless) with PyAV."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"crf": "4"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_classify_generated_video(trained, tmp_path):
    _, out = trained
    video = tmp_path / "rising.mp4"
    write_video(video, ramp_frames(True, 128.0, np.random.default_rng(5), n_frames=6, size=32))
    names, clip_probs, video_probs = classify_video(video, out)
    assert names == list(CLASSES)
    assert clip_probs.shape == (3, 2)  # the run's clips_per_video
    np.testing.assert_allclose(clip_probs.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(video_probs, clip_probs.mean(axis=0))
    assert names[video_probs.argmax()] == "rising"
    assert classify_video(video, out, n_clips=5).clip_probabilities.shape == (5, 2)


def test_classify_refuses_bad_checkpoints_and_short_videos(trained, tmp_path):
    _, out = trained
    video = tmp_path / "short.mp4"
    write_video(video, ramp_frames(True, 128.0, np.random.default_rng(5), n_frames=3, size=16))
    with pytest.raises(TooShortError, match="3 frames, a clip needs 4") as short:
        classify_video(video, out)
    assert str(video) in str(short.value)
    with pytest.raises(CheckpointMismatchError, match="'test-tiny', not 'c3d'"):
        classify_video(video, out, expect_model="c3d")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "checkpoint.pt").write_bytes((out / "checkpoint.pt").read_bytes()[:3000])
    with pytest.raises(CheckpointError, match="damaged") as broken:
        classify_video(video, damaged)
    assert str(damaged / "checkpoint.pt") in str(broken.value)
    with pytest.raises(CheckpointError, match="no checkpoint here"):
        classify_video(video, tmp_path)


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """`framegram ARGS` in this process (where the test models are registered): (status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["framegram", *map(str, args)])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def test_cli_classify_and_user_errors(trained, tmp_path, monkeypatch, capsys):
    _, out = trained
    video = tmp_path / "falling.mp4"
    write_video(video, ramp_frames(False, 128.0, np.random.default_rng(6), n_frames=8, size=32))
    status, text, _ = run_cli(monkeypatch, capsys, "classify", video, "--checkpoint", out, "--top", "1")
    assert status == 0
    assert text.splitlines()[-1].startswith("video: falling ")
    assert len(text.splitlines()) == 4  # three clips, then the video
    status, text, _ = run_cli(monkeypatch, capsys, "classify", video, "-c", out, "--json", "--clips", "2")
    report = json.loads(text)
    assert status == 0 and report["classes"] == list(CLASSES)
    assert np.allclose(np.sum(report["clip_probabilities"], axis=1), 1.0, atol=1e-5)

    status, text, error = run_cli(monkeypatch, capsys, "classify", video, "-c", out, "-m", "c3d")
    assert status == 2 and text == ""
    assert error.count("\n") == 1 and "holds a checkpoint of model 'test-tiny', not 'c3d'" in error
    status, _, error = run_cli(monkeypatch, capsys, "train", "--model", "no-such-model", "--data", tmp_path, "--out", tmp_path / "r")
    assert status == 2 and error.count("\n") == 1 and "unknown model 'no-such-model'" in error
    for option, message in [("tubelt=4", "does not take the settings ['tubelt']"), ("tubelet", "takes KEY=VALUE"),
                            ("tubelet=3", "tubelet 3")]:  # an unknown setting, no value, a value the model refuses
        status, _, error = run_cli(monkeypatch, capsys, "train", "--model", "timesformer", "--model-option", option,
                                   "--data", tmp_path, "--out", tmp_path / "r")
        assert status == 2 and error.count("\n") == 1 and message in error, error
    assert not (tmp_path / "r").exists()


def test_cli_train_passes_model_options_to_the_model(tmp_path, monkeypatch, capsys):
    data, lists = tmp_path / "ramps", {"train": [], "test": []}
    for label, name in enumerate(CLASSES):
        (data / name).mkdir(parents=True)
        for i in range(3):
            write_video(data / name / f"{i}.mp4", ramp_frames(bool(label), 128.0, np.random.default_rng([label, i]), n_frames=6, size=16))
            lists["train" if i else "test"].append(f"{name}/{i}.mp4")
    for split, listed in lists.items():
        (data / f"{split}list.txt").write_text("\n".join(listed) + "\n")
    status, _, error = run_cli(monkeypatch, capsys, "train", "--model", "test-tiny", "--model-option", "width=3", "--data", data,
                               "--out", tmp_path / "run", "--epochs", "1", "--batch-size", "2", "--clip-len", str(CLIP_LEN), "--size", str(SIZE), "-q")
    assert status in (0, None), error
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint["settings"]["model_cfg"] == {"width": 3}
    assert checkpoint["model_state"]["conv.weight"].shape[0] == 3
    common = ["--model", "test-tiny", "--model-option", "width=3", "--data", data, "--epochs", "1", "--batch-size", "2",
              "--clip-len", str(CLIP_LEN), "--size", str(SIZE), "-q"]
    status, _, error = run_cli(monkeypatch, capsys, "train", *common, "--out", tmp_path / "tuned", "--init-from", tmp_path / "run")
    assert status in (0, None), error
    assert load_checkpoint(tmp_path / "tuned")["settings"]["init_from"] == str(tmp_path / "run")
    status, _, error = run_cli(monkeypatch, capsys, "train", *common, "--out", tmp_path / "orphan", "--init-from", tmp_path / "none")
    assert status == 2 and error.count("\n") == 1 and "no checkpoint here" in error, error


def test_model_options_are_read_as_json_values_or_text():
    assert parse_model_options(["tubelet=4", "stem=linear", "width=0.25", "batch_norm=false", "name=4x"]) == {
        "tubelet": 4, "stem": "linear", "width": 0.25, "batch_norm": False, "name": "4x"}
    assert parse_model_options([]) == {}


def test_evaluation_clips_cover_the_video_evenly(tmp_path):
    video = tmp_path / "ramp.mp4"
    frames = ramp_frames(True, 128.0, np.random.default_rng(7), n_frames=10, size=32)
    write_video(video, frames)
    clips = evaluation_clips(video, clip_len=3, stride=2, size=(16, 16), n_clips=3, inputs=("rgb",))["rgb"]
    assert clips.shape == (3, 3, 3, 16, 16)
    # clips start at frames 0, 2 (2.5 rounded to even) and 5 (so the last ends on frame 9); brightness tells which
    levels = clips.mean(dim=(1, 3, 4)).numpy() * PIXEL_SCALE + PIXEL_OFFSET
    expected = frames.mean(axis=(1, 2, 3))[[[0, 2, 4], [2, 4, 6], [5, 7, 9]]]
    np.testing.assert_allclose(levels, expected, atol=4)


def test_flow_input_measures_the_motion(tmp_path):
    # a texture sliding right by 2 pixels a frame: flow (dx, dy) = (2, 0) pixels per frame
    rng = np.random.default_rng(8)
    texture = np.repeat(np.kron(rng.integers(0, 256, (16, 40)), np.ones((4, 4))).astype(np.uint8)[..., None], 3, axis=2)
    frames = np.stack([texture[:, 80 - 2 * t : 144 - 2 * t] for t in range(10)])  # [10, 64, 64, 3]
    video = tmp_path / "slide.mp4"
    write_video(video, frames)
    inputs = evaluation_clips(video, clip_len=4, stride=1, size=(64, 64), n_clips=2, inputs=("rgb", "flow"))
    assert inputs["rgb"].shape == (2, 3, 4, 64, 64) and inputs["flow"].shape == (2, 2, 4, 64, 64)
    # decoded at 74x74 and centre-cropped to 64: the vectors keep the decoded picture's scale (2 x 74/64)
    centre = inputs["flow"][:, :, :, 16:48, 16:48] * FLOW_SCALE
    assert abs(centre[:, 0].median() - 2.0 * 74 / 64) < 0.25 and abs(centre[:, 1].median()) < 0.2


def test_classify_with_flow_and_framegram_inputs(tmp_path):
    class AllInputs(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            x = torch.full((), float(i % 2))
            return {"rgb": x.expand(3, 4, 8, 8), "flow": x.expand(2, 4, 8, 8), "framegram": x.expand(4, 1280)}, i % 2

    settings = config(model="test-all-inputs", epochs=1, size=(32, 32), clips_per_video=2)
    train(settings, AllInputs(), None, tmp_path / "run")
    video = tmp_path / "rising.mp4"
    write_video(video, ramp_frames(True, 128.0, np.random.default_rng(9), n_frames=6, size=32))
    result = classify_video(video, tmp_path / "run")
    assert result.clip_probabilities.shape == (2, 2) and result.video_probabilities.shape == (2,)
    np.testing.assert_allclose(result.clip_probabilities.sum(axis=1), 1.0, atol=1e-9)
