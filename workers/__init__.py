"""Celery workers: the app, the turn task, per-conversation ordering and session memory."""
