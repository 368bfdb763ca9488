"""Video classification: the classic model families in plain torch, their data and their training.

`registry` (get_model, list_models, model_meta), `inputs` (the batch dict every model takes),
`models/` (one file per family, read top-down).
"""

from framegram.video_models.registry import ModelMeta, UnknownModelError, get_model, list_models, model_meta

__all__ = ["ModelMeta", "UnknownModelError", "get_model", "list_models", "model_meta"]
