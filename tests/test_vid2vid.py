"""Video-to-video synthesis (framegram.vid2vid) on generated label-map videos whose renderer is the
ground truth (framegram.datasets.label_videos)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from framegram.datasets.label_videos import CLASSES, build_label_videos, load_scene, render_scene
from framegram.vid2vid.evaluate import frechet_distance, mean_change, mean_gradient, warp_error
from framegram.vid2vid.model import SequentialGenerator, warp
from framegram.vid2vid.train import Vid2VidConfig, load_generator, train_vid2vid


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return build_label_videos(64, 8, train=6, test=2, root=tmp_path_factory.mktemp("label-videos"), show_progress=False)


def test_the_renderers_flow_explains_its_frames(scenes):
    scene = load_scene(scenes.test[0])
    assert scene["frames"].shape == (8, 64, 64, 3) and scene["labels"].max() < len(CLASSES)
    assert len(np.unique(scene["labels"])) >= 2
    # warping frame t by the renderer's flow reproduces frame t+1 (up to interpolation); no warp does not
    still = np.zeros_like(scene["flow"])
    assert warp_error(scene["frames"], scene["flow"], scene["valid"]) < 0.3 * warp_error(scene["frames"], still, scene["valid"])
    assert scene["valid"].mean() > 0.8


def test_train_and_test_scenes_differ(scenes):
    names = {p.name for p in scenes.train} & {p.name for p in scenes.test}
    assert not names
    again = render_scene(int(scenes.test[0].stem.split("-")[1]), 64, 8)
    np.testing.assert_array_equal(again["frames"], load_scene(scenes.test[0])["frames"])  # deterministic


def test_warp_moves_content_by_the_flow():
    image = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    assert torch.allclose(warp(image, torch.zeros(2, 2, 8, 8)), image)
    flow = torch.zeros(2, 2, 8, 8)
    flow[:, 0] = 1.0  # each pixel takes the value one to its right
    assert torch.allclose(warp(image, flow)[..., :-1], image[..., 1:])


def test_generator_heads():
    g = SequentialGenerator(len(CLASSES), width=8, blocks=1)
    labels = torch.zeros(1, len(CLASSES), 32, 32)
    previous = [torch.zeros(1, len(CLASSES), 32, 32)] * 2
    frames = [torch.zeros(1, 3, 32, 32)] * 2
    out = g(labels, previous, frames, first=True)
    assert out["frame"].shape == (1, 3, 32, 32) and torch.all(out["mask"] == 1)  # first frame: hallucinated only
    assert torch.allclose(out["frame"], out["hallucinated"])
    assert set(SequentialGenerator(len(CLASSES), 8, 1, temporal=False)(labels)) == {"frame", "hallucinated"}


def test_training_resumes_bit_identically(scenes, tmp_path):
    config = Vid2VidConfig(width=8, blocks=1, steps=4, steps_per_epoch=2, batch=2, clip=3)
    train_vid2vid(config, scenes.train, tmp_path / "straight", show_progress=False)
    # stopped after the first epoch, then asked for the full run: it goes on from the checkpoint
    train_vid2vid(Vid2VidConfig(**{**config.__dict__, "steps": 2}), scenes.train, tmp_path / "resumed", show_progress=False)
    train_vid2vid(config, scenes.train, tmp_path / "resumed", show_progress=False)
    a, b = load_generator(tmp_path / "straight").state_dict(), load_generator(tmp_path / "resumed").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(Exception, match="other settings"):
        train_vid2vid(Vid2VidConfig(**{**config.__dict__, "width": 16}), scenes.train, tmp_path / "resumed",
                      show_progress=False)


def test_metrics_of_the_ground_truth(scenes):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    assert frechet_distance(x, x) == pytest.approx(0, abs=1e-8)
    assert frechet_distance(x, x + 1) == pytest.approx(5, rel=1e-6)
    scene = load_scene(scenes.test[0])
    assert mean_change(scene["frames"]) > 0


def test_a_run_is_refused_only_for_settings_its_variant_uses(scenes, tmp_path):
    small = {"width": 8, "blocks": 1, "steps": 1, "steps_per_epoch": 1, "batch": 1, "clip": 3}
    for variant, refused in (("per-frame", False), ("vid2vid", True)):
        run = tmp_path / variant
        train_vid2vid(Vid2VidConfig(variant=variant, **small), scenes.train, run, show_progress=False)
        changed = Vid2VidConfig(variant=variant, **{**small, "steps": 2}, mask=3.0, resample="bilinear")
        if refused:
            with pytest.raises(Exception, match="mask=0.5 there, 3.0 now"):
                train_vid2vid(changed, scenes.train, run, show_progress=False)
        else:  # the per-frame generator has no mask and no warp: the same run goes on
            assert train_vid2vid(changed, scenes.train, run, show_progress=False)["history"][-1]["step"] == 2


def test_detail_and_flicker_expose_a_blurred_or_frozen_video(scenes):
    """A blurred video has a lower warping error than the real one, a frozen one no change at all:
    the warping error alone would call both more consistent than the truth."""
    from PIL import Image, ImageFilter

    scene = load_scene(scenes.test[0])
    real = scene["frames"]
    blurred = np.stack([np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(2))) for f in real])
    frozen = np.repeat(real[:1], len(real), axis=0)
    assert warp_error(blurred, scene["flow"], scene["valid"]) < warp_error(real, scene["flow"], scene["valid"])
    assert mean_gradient(blurred) < 0.6 * mean_gradient(real) and mean_change(frozen) == 0


def test_cli_generate_writes_a_video_and_refuses_bad_labels(scenes, tmp_path):
    import av

    run = tmp_path / "run"
    train_vid2vid(Vid2VidConfig(width=8, blocks=1, steps=1, steps_per_epoch=1, batch=1, clip=3), scenes.train, run,
                  show_progress=False)
    out = tmp_path / "generated.mp4"
    proc = subprocess.run([sys.executable, "-m", "framegram", "vid2vid", "generate", str(scenes.test[0]), "--checkpoint",
                           str(run), "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 8
    bad = tmp_path / "bad.npz"
    np.savez(bad, labels=np.full((4, 64, 64), 9, np.uint8))
    proc = subprocess.run([sys.executable, "-m", "framegram", "vid2vid", "generate", str(bad), "--checkpoint", str(run),
                           "-o", str(tmp_path / "x.mp4")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "class indices" in proc.stderr
