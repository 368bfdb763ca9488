"""Shot boundaries, keyframes and summaries from a framegram."""

from framegram.keyframes.select import Keyframe, select_keyframes
from framegram.keyframes.shots import Boundary, Shot, ShotDetectorConfig, ShotList, detect_shots

__all__ = ["Boundary", "Keyframe", "Shot", "ShotDetectorConfig", "ShotList", "detect_shots", "select_keyframes"]
