"""The video model zoo: every registered model takes its batch and trains; C3D's cost matches the
published table; I3D inflation, the non-local block, divided attention and the other building blocks
do what their papers say."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from framegram.video_models import UnknownModelError, get_model, list_models, model_meta
from framegram.video_models.inputs import rgb_tensor
from framegram.video_models.models.c3d import C3D_CLIP, C3D_CONVS
from framegram.video_models.models.i3d import SamePadConv3d, clip_to_frames, same_padding
from framegram.video_models.models.layers import ModelConfigError, ModelInputError, images_to_clip
from framegram.video_models.models.non_local import NonLocalBlock
from framegram.video_models.models.pretrained import Lite0Trunk
from framegram.video_models.models.r2plus1d import Conv2Plus1D
from framegram.video_models.models.super_image import tile_frames
from framegram.video_models.models.timesformer import DividedSpaceTimeBlock
from framegram.video_models.registry import count_macs, example_batch, model_entry

#: C3D at full width runs ~6 G multiply-accumulates per 8x64x64 clip; the small variant checks the same code.
SMALL_CFG = {"c3d": {"width": 0.25, "fc_dim": 256}, "c3d-nonlocal": {"width": 0.25, "fc_dim": 256}}
#: Models that stack a fixed number of frames as channels.
CLIP16_CFG = {"early-fusion": {"clip_len": 16}, "two-stream": {"clip_len": 16}}


def random_batch(name: str, clip: tuple[int, int, int], batch: int = 1) -> dict:
    generator = torch.Generator().manual_seed(0)
    shapes = example_batch(model_entry(name).inputs, clip, batch)
    return {key: torch.randn(x.shape, generator=generator) for key, x in shapes.items()}


def real_frame(height: int, width: int) -> torch.Tensor:
    """scikit-image's cat photo resized, normalised as the models expect: [3, height, width]."""
    frame = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1)[None].float()
    frame = F.interpolate(frame, size=(height, width), mode="bilinear", antialias=True).round().clamp(0, 255)
    return rgb_tensor(frame[0].permute(1, 2, 0)[None].numpy().astype(np.uint8))[:, 0]


@pytest.mark.parametrize("name", list_models())
def test_model_trains_on_a_small_clip(name):
    torch.manual_seed(0)
    model = get_model(name, num_classes=5, **SMALL_CFG.get(name, {}))
    logits = model(random_batch(name, (8, 64, 64)))
    assert logits.shape == (1, 5)
    assert torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.tensor([3])).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for _, p in trainable)
    first_name, first = trainable[0]
    assert first.grad.abs().sum() > 0, f"no gradient reaches the input layer {first_name}"


@pytest.mark.filterwarnings("ignore:.*to a meta parameter")  # pretrained weights are not copied onto meta tensors
@pytest.mark.parametrize("name", list_models())
def test_model_takes_the_c3d_clip(name):
    """16x112x112, batch 2: shapes only, on the meta device (nothing is computed)."""
    with torch.device("meta"):
        model = get_model(name, num_classes=101, **CLIP16_CFG.get(name, {}))
        logits = model(example_batch(model_entry(name).inputs, (16, 112, 112), batch=2))
    assert logits.shape == (2, 101)


#: BACKGROUND.md's per-layer multiply-accumulates of C3D at 3x16x112x112, in G.
C3D_REFERENCE_GMACS = {
    "conv1": 1.04, "conv2": 11.10, "conv3a": 5.55, "conv3b": 11.10, "conv4a": 2.77, "conv4b": 5.55,
    "conv5a": 0.69, "conv5b": 0.69, "fc6": 0.51, "fc7": 0.45, "fc8": 0.05,
}


def test_c3d_multiply_accumulates_match_the_published_table():
    with torch.device("meta"):
        model = get_model("c3d", num_classes=101).eval()
        with FlopCounterMode(display=False) as counter:
            model({"rgb": torch.zeros(1, 3, *C3D_CLIP)})
    counts = counter.get_flop_counts()

    def gmacs(module: str) -> float:
        return sum(counts[f"C3D.{module}"].values()) / 2 / 1e9

    for conv in C3D_CONVS:
        assert gmacs(f"features.{conv}") == pytest.approx(C3D_REFERENCE_GMACS[conv], rel=0.02), conv
    # pool5 (2x2x2, padding (0, 1, 1)) leaves 512x1x4x4 = 8192 inputs to fc6, as published.
    assert model.fc6.in_features == 8192
    # The table's fc rows are not fully connected costs: fc6 0.51 = 27 x 4608 x 4096, fc7 0.45 =
    # 27 x 4096 x 4096, fc8 0.05 = 27 x 4096 x 487 (Sports-1M's classes; 0.054): each counted as a
    # 3x3x3 convolution (27 taps) over a 512x1x3x3 pool5 output. No class count reproduces fc8 without
    # that factor (4096 x 487 is 0.002 G). A fully connected layer costs inputs x outputs:
    assert gmacs("fc6") * 1e9 == 8192 * 4096
    assert gmacs("fc7") * 1e9 == 4096 * 4096
    assert gmacs("fc8") * 1e9 == 4096 * 101
    # So the whole network is the table's 39.5 G less its 0.96 G of fc rows, plus the true fc costs.
    assert counter.get_total_flops() / 2 / 1e9 == pytest.approx(38.49 + 0.051, rel=0.005)


def test_i3d_on_a_clip_of_identical_frames_gives_the_2d_features():
    frame = real_frame(96, 128)  # 96 and 128 halve to odd sizes: asymmetric "SAME" padding is exercised
    i3d = get_model("i3d", num_classes=10).eval()
    trunk = Lite0Trunk().eval()
    with torch.no_grad():
        features_2d = trunk.pooled(frame[None])
        features_3d = i3d.features(frame[None, :, None].expand(1, 3, 8, 96, 128))
    assert features_3d.shape == (1, 1280)
    assert torch.allclose(features_3d, features_2d, rtol=0, atol=1e-5 * float(features_2d.abs().max()))


@pytest.mark.parametrize(
    ("kernel", "stride", "groups"),
    [((3, 3, 3), (1, 1, 1), 12), ((3, 3, 3), (2, 2, 2), 12), ((3, 3, 3), (2, 1, 1), 12), ((3, 3, 3), (1, 2, 2), 12),
     ((3, 3, 3), (1, 2, 2), 1), ((1, 1, 1), (1, 1, 1), 1)],
)
def test_i3d_convolution_by_frames_equals_conv3d(kernel, stride, groups):
    torch.manual_seed(0)
    conv = SamePadConv3d(12, 12, kernel, stride=stride, groups=groups, bias=True)
    x = torch.randn(2, 12, 7, 10, 9)
    (before, after), (top, bottom), (left, right) = (
        same_padding(size, k, s) for size, k, s in zip(x.shape[2:], kernel, stride))
    padded = F.pad(F.pad(x, (left, right, top, bottom)), (0, 0, 0, 0, before, after), mode="replicate")
    expected = F.conv3d(padded, conv.weight, conv.bias, stride, 0, 1, groups)
    frames, steps = conv.forward_frames(clip_to_frames(x), 7)
    assert steps == expected.shape[2]
    assert torch.allclose(images_to_clip(frames, steps), expected, atol=1e-5)
    assert torch.allclose(conv(x), expected, atol=1e-5)  # the 5D interface


def test_early_fusion_stem_starts_from_the_2d_network():
    frame = real_frame(64, 64)
    model = get_model("early-fusion", num_classes=10, clip_len=4).eval()
    trunk = Lite0Trunk().eval()
    with torch.no_grad():
        fused = model.features(frame[None, :, None].expand(1, 3, 4, 64, 64))
        single = trunk.pooled(frame[None])
    assert torch.allclose(fused, single, rtol=0, atol=1e-5 * float(single.abs().max()))


def test_non_local_block_is_the_identity_at_init_and_non_local_once_trained():
    torch.manual_seed(0)
    block = NonLocalBlock(8)
    x = torch.randn(2, 8, 4, 6, 6)
    assert torch.equal(block.train()(x), x)
    assert torch.equal(block.eval()(x), x)
    with torch.no_grad():
        block.out_bn.weight.fill_(1.0)
        moved = x.clone()
        moved[0, :, 0, 0, 0] += 1.0  # first frame, top-left corner
        change = block(moved) - block(x)
    assert change[0, :, 3, 5, 5].abs().max() > 1e-4  # reaches the last frame's far corner in one layer
    assert torch.equal(change[1], torch.zeros_like(change[1]))  # never crosses clips


def test_inserting_non_local_blocks_keeps_the_network_output():
    torch.manual_seed(0)
    plain = get_model("c3d", num_classes=5, **SMALL_CFG["c3d"]).eval()
    with_blocks = get_model("c3d-nonlocal", num_classes=5, **SMALL_CFG["c3d"]).eval()
    missing, unexpected = with_blocks.load_state_dict(plain.state_dict(), strict=False)
    assert missing and all(key.startswith("features.nonlocal_") for key in missing) and not unexpected
    batch = random_batch("c3d", (8, 64, 64))
    with torch.no_grad():
        assert torch.equal(with_blocks(batch), plain(batch))


def changed_tokens(before: torch.Tensor, after: torch.Tensor) -> set[int]:
    return set(torch.nonzero((after - before).abs().amax(dim=-1)[0] > 1e-6).flatten().tolist())


def test_divided_attention_mixes_tokens_only_along_its_axis():
    torch.manual_seed(0)
    frames, patches = 3, 4
    block = DividedSpaceTimeBlock(dim=16, heads=2, mlp_ratio=2.0).eval()
    tokens = torch.randn(1, 1 + frames * patches, 16)
    moved = tokens.clone()
    frame, patch = 1, 2
    moved[0, 1 + frame * patches + patch] += torch.randn(16)  # not a uniform shift, which layer norm removes
    with torch.no_grad():
        in_time = changed_tokens(block.attend_in_time(tokens, frames), block.attend_in_time(moved, frames))
        in_space = changed_tokens(block.attend_in_space(tokens, frames), block.attend_in_space(moved, frames))
    assert in_time == {1 + t * patches + patch for t in range(frames)}  # the same patch in every frame
    assert in_space == {0} | {1 + frame * patches + p for p in range(patches)}  # its own frame and the class token


def test_timesformer_sees_frame_order_only_through_its_time_embedding():
    torch.manual_seed(0)
    # the linear stem: the property belongs to the attention, not to how patches become tokens
    model = get_model("timesformer", num_classes=5, dim=32, depth=2, heads=2, image_size=16, num_frames=4,
                      stem="linear").eval()
    clip = torch.randn(1, 3, 4, 16, 16)
    reversed_clip = clip.flip(2)
    with torch.no_grad():
        assert not torch.allclose(model({"rgb": clip}), model({"rgb": reversed_clip}), atol=1e-4)
        model.time_pos.zero_()
        assert torch.allclose(model({"rgb": clip}), model({"rgb": reversed_clip}), atol=1e-5)


def test_timesformer_tubelet_tokens_compare_neighbouring_frames():
    torch.manual_seed(0)
    model = get_model("timesformer", num_classes=5, dim=32, depth=1, heads=2, image_size=16, num_frames=4,
                      stem="linear", tubelet=2).eval()
    clip = torch.randn(1, 3, 4, 16, 16)
    swapped = clip[:, :, [1, 0, 3, 2]]  # the frames inside each tubelet swapped, the tubelets kept in place
    with torch.no_grad():
        model.time_pos.zero_()
        tokens = model.tokens(clip)
        assert tokens.shape == (1, 1 + 2 * 4, 32)  # 2 tubelets in time x 4 patches, plus the class token
        # frame order inside a tubelet is seen by the token itself, not only through the time embedding
        assert not torch.allclose(model({"rgb": clip}), model({"rgb": swapped}), atol=1e-4)
    lite0 = get_model("timesformer", num_classes=5, tubelet=2).eval()
    with torch.no_grad():
        assert lite0.tokens(torch.randn(1, 3, 8, 64, 64)).shape == (1, 1 + 4 * 8 * 8, 192)
    with pytest.raises(ModelInputError, match=r"tubelet 2.*got 3x16x16"):
        model({"rgb": torch.zeros(1, 3, 3, 16, 16)})
    with pytest.raises(ModelConfigError, match="tubelet 3"):
        get_model("timesformer", num_classes=5, num_frames=8, tubelet=3)


def test_timesformer_hybrid_tokens_start_as_the_pretrained_tokens():
    torch.manual_seed(0)
    model = get_model("timesformer", num_classes=5, stem="hybrid", tubelet=4).eval()
    clip = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        pretrained = model.patch_embed.features(clip)
        assert torch.equal(model.patch_embed(clip), pretrained)  # the pixel-motion branch starts at zero
        torch.nn.init.normal_(model.patch_embed.motion.proj.weight, std=0.1)
        hybrid = model.patch_embed(clip)
        assert hybrid.shape == pretrained.shape == (1, 192, 2, 8, 8)
        assert not torch.allclose(hybrid, pretrained, atol=1e-3)
        swapped = clip[:, :, [1, 0, 2, 3, 4, 5, 6, 7]]  # the branch's 3D kernels see frame order
        assert not torch.allclose(model.patch_embed.motion(swapped), model.patch_embed.motion(clip), atol=1e-4)
    with pytest.raises(ModelConfigError, match="hybrid take patch 8"):
        get_model("timesformer", num_classes=5, stem="hybrid", patch=16)


def test_timesformer_tokens_start_from_the_imagenet_network():
    model = get_model("timesformer", num_classes=5).eval()
    trunk = Lite0Trunk().eval()
    frame = real_frame(64, 64)[None]
    with torch.no_grad():
        x = model.patch_embed.frame_features(frame)
        expected = trunk.act(trunk.stem_bn(trunk.stem(frame)))
        for block in trunk.blocks[:5]:
            expected = block(expected)
    assert x.shape == (1, 40, 8, 8)  # stride 8: one token per 8x8 patch
    assert torch.allclose(x, expected, atol=1e-5)


def test_two_stream_returns_the_log_of_the_averaged_stream_probabilities():
    torch.manual_seed(0)
    model = get_model("two-stream", num_classes=4, clip_len=2).eval()
    batch = random_batch("two-stream", (2, 32, 32), batch=2)
    with torch.no_grad():
        spatial, temporal = model.stream_log_probs(batch)
        fused = model(batch)
    assert torch.allclose(fused.exp(), (spatial.exp() + temporal.exp()) / 2, atol=1e-6)
    assert torch.allclose(fused.exp().sum(dim=1), torch.ones(2), atol=1e-5)


def test_super_image_tiles_frames_row_by_row_and_pads_with_zeros():
    clip = torch.arange(1.0, 6.0).view(1, 1, 5, 1, 1).expand(1, 3, 5, 2, 3)  # frame t is all t + 1
    image = tile_frames(clip)
    assert image.shape == (1, 3, 6, 9)  # 5 frames -> a 3x3 grid of 2x3 tiles
    tile_values = image[0, 0, ::2, ::3]
    assert tile_values.tolist() == [[1, 2, 3], [4, 5, 0], [0, 0, 0]]


def test_slow_fusion_widens_its_view_in_time_as_in_the_paper():
    with torch.device("meta"):
        model = get_model("slow-fusion", num_classes=5)
    lengths = []
    for conv in [m for m in model.features if isinstance(m, torch.nn.Conv3d)][:3]:
        conv.register_forward_hook(lambda module, inputs, output: lengths.append(output.shape[2]))
    for frames in (10, 8):
        model({"rgb": torch.zeros(1, 3, frames, 64, 64, device="meta")})
    assert lengths[:3] == [4, 2, 1]  # Karpathy et al.: 4 responses, then 2, then 1 that sees all 10 frames
    assert lengths[3:] == [3, 2, 1]


@pytest.mark.parametrize("channels", [(3, 64), (64, 64), (64, 128), (256, 512)])
def test_r2plus1d_factorisation_keeps_the_3d_parameter_count(channels):
    in_channels, out_channels = channels
    conv = Conv2Plus1D(in_channels, out_channels)
    weights = sum(m.weight.numel() for m in conv if isinstance(m, torch.nn.Conv3d))
    full_3d = 27 * in_channels * out_channels
    one_mid_channel = 9 * in_channels + 3 * out_channels  # M is rounded down
    assert full_3d - one_mid_channel < weights <= full_3d


def test_model_meta_counts_parameters_and_per_frame_cost():
    meta = model_meta("single-frame", num_classes=10, clip=(4, 32, 32))
    trunk = Lite0Trunk().eval()
    trunk_parameters = sum(p.numel() for p in trunk.parameters())
    assert trunk_parameters == 3_371_008  # EfficientNet-Lite0's 4.65 M less its 1000-class layer
    assert meta.parameters == trunk_parameters + 1280 * 10 + 10
    one_frame = count_macs(trunk, torch.zeros(1, 3, 32, 32))
    assert meta.gmacs == pytest.approx((4 * one_frame + 4 * 1280 * 10) / 1e9, rel=1e-9)
    assert meta.inputs == ("rgb",)

    framegram = model_meta("late-fusion-framegram", num_classes=10, clip=(8, 64, 64))
    assert framegram.inputs == ("framegram",)
    assert framegram.parameters == 2 * 2560 + (2560 * 512 + 512) + (512 * 10 + 10)


def test_a_frozen_trunk_trains_only_the_head_and_keeps_imagenet_statistics():
    model = get_model("single-frame", num_classes=3, freeze_trunk=True).train()
    assert not model.trunk.training and model.head.training
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.1.weight", "head.1.bias"}
    statistics = model.trunk.stem_bn.running_mean.clone()
    model({"rgb": torch.randn(2, 3, 2, 32, 32)})
    assert torch.equal(model.trunk.stem_bn.running_mean, statistics)


def test_frozen_blocks_keep_the_early_trunk_fixed_and_train_the_rest():
    model = get_model("single-frame", num_classes=3, frozen_blocks=3).train()
    trunk = model.trunk
    frozen = [trunk.stem, trunk.stem_bn, *trunk.blocks[:3]]
    assert not any(m.training for m in frozen) and trunk.blocks[3].training and trunk.head_bn.training
    assert not any(p.requires_grad for m in frozen for p in m.parameters())
    early_statistics = trunk.blocks[2]._bn2.running_mean.clone()
    late_statistics = trunk.blocks[3]._bn2.running_mean.clone()
    loss = model({"rgb": torch.randn(2, 3, 2, 32, 32)}).sum()
    loss.backward()
    assert torch.equal(trunk.blocks[2]._bn2.running_mean, early_statistics)
    assert not torch.equal(trunk.blocks[3]._bn2.running_mean, late_statistics)
    assert trunk.blocks[3]._depthwise_conv.weight.grad.abs().sum() > 0
    # in eval mode the frozen split computes what the whole network computes
    whole = get_model("single-frame", num_classes=3).eval()
    whole.load_state_dict(model.state_dict())
    clip = {"rgb": torch.randn(1, 3, 2, 32, 32)}
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(clip), whole(clip))
    with pytest.raises(ModelConfigError, match="frozen_blocks must be between 0 and 16, got 17"):
        get_model("single-frame", num_classes=3, frozen_blocks=17)
    # the transformer's pretrained tokenizer freezes the same way; the linear stem has nothing to freeze
    tokenizer = get_model("timesformer", num_classes=3, stem="hybrid", tubelet=4, frozen_blocks=5).train().patch_embed
    assert not any(p.requires_grad for p in [*tokenizer.features.stem.parameters(), *tokenizer.features.blocks.parameters()])
    assert not tokenizer.features.blocks[4].training and tokenizer.motion.training
    assert tokenizer.features.proj.weight.requires_grad
    with pytest.raises(ModelConfigError, match="frozen_blocks needs the pretrained stem"):
        get_model("timesformer", num_classes=3, stem="linear", frozen_blocks=2)


def test_unknown_model_names_the_registered_ones():
    with pytest.raises(UnknownModelError) as error:
        get_model("c4d", num_classes=3)
    for name in ("c3d", "i3d", "timesformer", "two-stream"):
        assert name in str(error.value)


def test_wrong_batches_and_settings_are_refused_with_the_model_named():
    early = get_model("early-fusion", num_classes=3, clip_len=8)
    with pytest.raises(ModelInputError, match=r"'early-fusion'.* 8 frames.* got 4"):
        early({"rgb": torch.zeros(1, 3, 4, 64, 64)})
    with pytest.raises(ModelInputError, match=r"'two-stream' needs batch input 'flow'"):
        get_model("two-stream", num_classes=3)({"rgb": torch.zeros(1, 3, 8, 64, 64)})
    with pytest.raises(ModelInputError, match=r"'c3d' needs clips of at least 8x16x16.*got 4x64x64"):
        get_model("c3d", num_classes=3, **SMALL_CFG["c3d"])({"rgb": torch.zeros(1, 3, 4, 64, 64)})
    with pytest.raises(ModelConfigError, match="cnn-lstm-flow"):
        get_model("cnn-lstm", num_classes=3, source="flow")
    with pytest.raises(ModelConfigError, match="conv9"):
        get_model("c3d-nonlocal", num_classes=3, nonlocal_after=("conv9",))


def test_cnn_lstm_reads_frame_differences():
    model = get_model("cnn-lstm", num_classes=3, source="diff").eval()
    steps = []
    model.lstm.register_forward_hook(lambda module, inputs, output: steps.append(inputs[0].shape[1]))
    with torch.no_grad():
        logits = model({"rgb": torch.randn(2, 3, 5, 32, 32)})
    assert logits.shape == (2, 3) and steps == [4]  # T - 1 differences
