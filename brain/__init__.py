"""The shop's brain: understanding, dialogue, store, knowledge, LLM responder, recommender.

The worker talks to it through ``brain.types.Brain``: a turn in, replies out.
"""

from brain.types import Brain, HistoryItem, Session, Turn

__all__ = ["Brain", "HistoryItem", "Session", "Turn"]
