"""Test support: real servers started per session, the scripted brain, background servers."""
