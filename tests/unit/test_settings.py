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


def test_a_web_origin_with_a_path_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIGATE_WEB_ORIGINS", "https://shop.example/chat")
    with pytest.raises(ConfigError, match="OMNIGATE_WEB_ORIGINS"):
        load_settings()


def test_a_trusted_proxy_that_is_not_an_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMNIGATE_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal")
    with pytest.raises(ConfigError, match="OMNIGATE_TRUSTED_PROXIES"):
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


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # compose passes ${TELEGRAM_WEBHOOK_SECRET:-} when a deployment has no Telegram.
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "")
    monkeypatch.setenv("OMNIGATE_PORT", "")
    s = load_settings()
    assert s.telegram_webhook_secret is None
    assert s.port == 8080


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "shop.example"])
def test_a_gateway_beyond_loopback_refuses_to_start_without_an_api_token(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.delenv("OMNIGATE_API_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="OMNIGATE_API_TOKEN is missing"):
        load_settings(OMNIGATE_HOST=host).check_exposure()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_a_loopback_gateway_starts_without_an_api_token(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.delenv("OMNIGATE_API_TOKEN", raising=False)
    load_settings(OMNIGATE_HOST=host).check_exposure()


def test_a_gateway_beyond_loopback_starts_with_an_api_token() -> None:
    load_settings(OMNIGATE_HOST="0.0.0.0", OMNIGATE_API_TOKEN="long-random").check_exposure()


@pytest.mark.parametrize(
    ("env", "promised"),
    [
        ({}, False),
        ({"OMNIGATE_AGENT_WEB_CONSOLE": "1"}, True),
        (
            {
                "OMNIGATE_AGENT_CHANNEL": "C0AGENTS",
                "SLACK_BOT_TOKEN": "xoxb-test",
                "SLACK_SIGNING_SECRET": "s",
            },
            True,
        ),
    ],
)
def test_the_brain_promises_a_person_only_with_an_agents_console(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], promised: bool
) -> None:
    for name in ("OMNIGATE_AGENT_CHANNEL", "OMNIGATE_AGENT_WEB_CONSOLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings().brain_config().dialogue.agent_console is promised
