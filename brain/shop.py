"""The shop brain: the default ``brain.types.Brain`` of omnigate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from brain.config import BrainConfig
from brain.dialogue import Dialogue
from brain.embeddings import get_embedder
from brain.flows.common import Context
from brain.knowledge import KnowledgeIndex
from brain.llm import SMOLLM2, ensure_smollm2, load_llm
from brain.nlu import Nlu, load_intent_model
from brain.recommender import Recommender
from brain.store import load_store
from brain.types import Turn
from channels.schema import Reply


class ShopBrain:
    """Intent model, dialogue flows, store, knowledge, LLM and recommender of one shop.

    Built once per worker process; ``respond`` is then called for every message. ``today``
    is the brain's clock (the real date unless a test fixes it).
    """

    def __init__(self, config: BrainConfig, today: Callable[[], date] | None = None) -> None:
        self.config = config
        self.store = load_store(config.store)
        embedder = get_embedder(config.device)
        self.nlu = Nlu(
            embedder,
            load_intent_model(config),
            self.store.info.order_id_pattern,
            config.dialogue.intent_threshold,
            config.dialogue.oos_threshold,
        )
        self.knowledge = KnowledgeIndex(self.store.passages(), embedder)
        self.llm = load_llm(config)
        self.recommender = Recommender(self.store, embedder, config)
        ctx = Context(
            self.store,
            self.nlu,
            self.knowledge,
            self.recommender,
            today=today or date.today,
            # Only a Slack agents' channel today; a person answers in the chat only with one.
            agent_console=config.dialogue.agent_console,
        )
        self.dialogue = Dialogue(
            ctx,
            self.llm,
            reword_quotes=config.dialogue.reword_quotes,
        )

    def respond(self, turn: Turn) -> list[Reply]:
        """Answer one customer message (see ``brain.dialogue``)."""
        return self.dialogue.respond(turn)

    def reload_store(self) -> None:
        """Read the store pack again, dropping the in-memory order changes of earlier
        conversations (cancellations, new addresses); conversation tests start each
        conversation from the pack as written."""
        self.store = load_store(self.config.store)
        self.dialogue.ctx.store = self.store


def prepare(config: BrainConfig, progress: Callable[[str], None] | None = None) -> None:
    """Warm every cache so the first turn is fast: the store pack is validated, the intent
    model fine-tuned and saved, the recommender's catalog embeddings and model built, and the
    SmolLM2 weights dequantised and saved. Idempotent, and quick once done; ``progress``
    hears how the intent model's fine-tuning goes."""
    store = load_store(config.store)
    embedder = get_embedder(config.device)
    load_intent_model(config, progress)
    Recommender(store, embedder, config)
    if config.llm.model == SMOLLM2:
        ensure_smollm2(config)
