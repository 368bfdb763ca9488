"""framegram: deep learning on video through framegrams."""
