"""``omnigate learn`` end to end on a tiny intent model (1 tuned layer, a few rows of each
intent, ``OMNIGATE_INTENT_*``) in a cache of its own: the shop's customers write in French,
agents and "Did you mean…?" picks say what they meant, and the retrained model is installed;
feedback that contradicts the base intents makes a model that is refused."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from brain.learning import shipped_held_out
from brain.nlu import learned_model_path, shipped_model_path
from gateway import feedback
from gateway.feedback import Example
from gateway.settings import load_settings
from tests.conftest import stack_env
from tests.support.servers import ROOT, RedisServer

TINY = {
    "OMNIGATE_INTENT_TUNED_LAYERS": "1",
    "OMNIGATE_INTENT_EPOCHS": "3",
    "OMNIGATE_INTENT_PER_INTENT": "6",
}
WHAT = {
    "track_order": ["où est ma commande", "où en est mon colis", "je veux suivre ma commande"],
    "get_refund": [
        "je veux être remboursé pour",
        "remboursez-moi pour",
        "je voudrais un remboursement pour",
    ],
    "cancel_order": [
        "annulez ma commande de",
        "je veux annuler la commande de",
        "annulation de mon achat de",
    ],
}
THINGS = [
    "la bouilloire",
    "mes chaussures",
    "la veste",
    "le sac à dos",
    "les écouteurs",
    "la lampe",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's model cache: its tiny shipped model is trained by the first ``learn``."""
    return tmp_path_factory.mktemp("learn-cache")


def env_for(redis_server: RedisServer, db: int, cache: Path) -> dict[str, str]:
    """A Redis database of the test's own (emptied), the module's cache, the tiny model."""
    redis.Redis.from_url(redis_server.url(db)).flushdb()
    return stack_env(redis_server.url(db), {"OMNIGATE_CACHE_DIR": str(cache), **TINY})


def record(env: dict[str, str], labelled: list[tuple[str, str]]) -> None:
    """Labelled examples as the worker records them (tests/integration/test_feedback.py shows
    the worker doing it), one conversation each."""
    r = redis.Redis.from_url(env["OMNIGATE_REDIS_URL"])
    at = datetime.now(UTC) - timedelta(hours=1)
    for i, (text, intent) in enumerate(labelled):
        conv = f"web:{hashlib.sha256(text.encode()).hexdigest()[:12]}"
        example = Example(
            id=feedback.example_id("rec", at, text),
            text=text,
            predicted="clarification",
            failed=True,
            record=f"rec-{i}",
            at=at,
            label=intent,
            source="pick" if i % 2 else "agent",
        )
        feedback.save(r, conv, [example], 30 * 86400)


def learn(env: dict[str, str], *args: str) -> tuple[int, str, dict[str, Any], str]:
    """``omnigate learn ARGS``: exit status, output, its JSON line, and the error output."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "learn", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    return done.returncode, done.stdout, json.loads(lines[-1]), done.stderr


def paths(env: dict[str, str]) -> tuple[Path, Path]:
    config = load_settings(**{k: v for k, v in env.items() if k.startswith("OMNIGATE_")})
    brain = config.brain_config()
    return shipped_model_path(brain), learned_model_path(brain)


def test_too_few_examples_change_nothing(redis_server: RedisServer, cache: Path) -> None:
    env = env_for(redis_server, 13, cache)
    record(env, [("où est ma commande", "track_order")])
    status, out, result, _ = learn(env)
    assert status == 0
    assert "nothing to learn: fewer than 20 labelled examples" in out
    assert result == {
        "examples": 1,
        "flagged_unlabelled": 0,
        "installed": False,
        "reason": "too few examples",
    }


def test_feedback_in_french_makes_a_better_model_which_is_installed(
    redis_server: RedisServer, cache: Path
) -> None:
    env = env_for(redis_server, 13, cache)
    french = [(f"{w} {t}", intent) for intent, ws in WHAT.items() for w in ws for t in THINGS]
    record(env, french)

    status, out, result, err = learn(env)
    assert status == 0, err
    assert result["installed"] is True
    assert result["examples"] == len(french)
    assert result["held_out_feedback"] + result["trained_on"] == len(french)
    assert result["held_out"] == result["held_out_feedback"] + result["held_out_shipped"]
    # It learnt French, and is not worse on the whole held-out set.
    assert result["after_feedback"] > result["before_feedback"]
    assert result["after"] >= result["before"]
    assert f"installed model: accuracy {result['before']:.4f}" in out
    assert f"new model: accuracy {result['after']:.4f}" in out
    assert "workers load it when they restart" in out
    _, learned = paths(env)
    assert result["path"] == str(learned) and learned.is_file()
    assert json.loads(learned.with_suffix(".json").read_text())["after"] == result["after"]


def test_feedback_that_contradicts_the_base_intents_is_refused(
    redis_server: RedisServer, cache: Path
) -> None:
    env = env_for(redis_server, 14, cache)
    # Every shipped held-out row, said to mean something else: a model that learns it forgets
    # the base intents.
    texts, labels = shipped_held_out()
    wrong = ["review" if lab == "complaint" else "complaint" for lab in labels]
    record(env, list(zip(texts, wrong, strict=True)))
    shipped, learned = paths(env)
    installed = learned if learned.is_file() else shipped
    before = installed.read_bytes() if installed.is_file() else None

    status, _, result, err = learn(env)
    assert status == 1
    assert "the new model is worse on the held-out set" in err
    assert "the installed model stays" in err
    assert result["installed"] is False and result["reason"] == "worse"
    assert result["after"] < result["before"]
    assert result["after_shipped"] < result["before_shipped"]
    # The installed model is untouched.
    now_installed = learned if learned.is_file() else shipped
    assert now_installed == installed
    if before is not None:
        assert now_installed.read_bytes() == before
