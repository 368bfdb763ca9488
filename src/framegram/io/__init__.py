"""Reading and writing files: video decoding and sampling, atomic writes, content hashes."""

from framegram.io.atomic import atomic_path, atomic_write_bytes
from framegram.io.decode import VIDEO_EXTENSIONS, FrameBatch, VideoInfo, probe_video, sample_frames
from framegram.io.hashing import sha256_file

__all__ = [
    "VIDEO_EXTENSIONS",
    "FrameBatch",
    "VideoInfo",
    "atomic_path",
    "atomic_write_bytes",
    "probe_video",
    "sample_frames",
    "sha256_file",
]
