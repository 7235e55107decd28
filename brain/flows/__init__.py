"""Dialogue flows: each turns one understood message into a grounded ``Answer``."""
