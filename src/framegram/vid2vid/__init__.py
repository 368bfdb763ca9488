"""Video-to-video synthesis: a conditional GAN that turns a label-map video into a video consistent in
time (after Wang et al. 2018, vid2vid), trained on CPU.

    from framegram.datasets.label_videos import build_label_videos
    from framegram.vid2vid import Vid2VidConfig, train_vid2vid, load_generator, generate_video
    scenes = build_label_videos(size=64)
    train_vid2vid(Vid2VidConfig(variant="vid2vid"), scenes.train, "runs/v2v")   # resumable
    frames = generate_video(load_generator("runs/v2v"), labels)                # uint8 [T, H, W, 3]

Pieces: `model` (sequential generator with flow, mask and hallucination heads; multi-scale image and
video PatchGAN discriminators), `data` (clips and measured DIS flow), `train` (losses, run folder,
resume), `evaluate` (Fréchet distances on Lite0 features and framegram windows, warping error,
flicker, pixel error), `files` (label-map videos in, video files out).
"""

from framegram.vid2vid.evaluate import generate_video, score_videos
from framegram.vid2vid.train import VARIANTS, Vid2VidConfig, load_generator, train_vid2vid

__all__ = ["VARIANTS", "Vid2VidConfig", "generate_video", "load_generator", "score_videos", "train_vid2vid"]
