"""One module per model family; importing this package registers them all."""

from framegram.video_models.models import (  # noqa: F401  (each module registers its models)
    c3d,
    cnn_lstm,
    early_fusion,
    i3d,
    late_fusion,
    r2plus1d,
    single_frame,
    slow_fusion,
    super_image,
    timesformer,
    two_stream,
)
