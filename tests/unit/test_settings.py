"""Settings: read once from the environment, with errors that name the variable."""

from __future__ import annotations

import pytest

from gateway.settings import ConfigError, load_settings


def test_defaults_follow_design(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OMNIGATE_HOST", "OMNIGATE_PORT", "OMNIGATE_LLM_MODEL", "OMNIGATE_STORE"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings()
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.store.name == "demo_shop"


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIGATE_PORT", "eighty")
    with pytest.raises(ConfigError, match="OMNIGATE_PORT"):
        load_settings()


def test_a_bad_redis_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIGATE_REDIS_URL", "localhost:6379")
    with pytest.raises(ConfigError, match="OMNIGATE_REDIS_URL"):
        load_settings()


def test_web_chat_refuses_to_sign_without_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNIGATE_WEB_SECRET", raising=False)
    with pytest.raises(ConfigError, match="OMNIGATE_WEB_SECRET is missing"):
        _ = load_settings().effective_web_secret


def test_a_telegram_secret_telegram_would_refuse_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "has spaces!")
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        load_settings()


def test_an_agents_channel_without_slack_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIGATE_AGENT_CHANNEL", "C0AGENTS")
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="OMNIGATE_AGENT_CHANNEL is set, but SLACK_BOT_TOKEN"):
        load_settings()
