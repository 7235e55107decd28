"""The one message schema and one adapter per platform."""
