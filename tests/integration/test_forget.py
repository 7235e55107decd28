"""``omnigate forget USER_OR_EMAIL``: a person's conversations, memory and logs erased on every
channel, and nobody else's."""

from __future__ import annotations

import json
import subprocess
import sys

import aiohttp
import redis

from channels import constants as K
from tests.conftest import chat, uid
from tests.fakes.slack import FakeSlack, dm_event, next_id
from tests.integration.test_slack import send_event
from tests.support.servers import ROOT, Stack, until


def forget(stack: Stack, who: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "forget", who],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


async def test_forget_by_user_erases_that_persons_conversation_only(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    ada, bob = uid("ada"), uid("bob")
    await chat(http, script_stack, ada, "echo: my secret")
    await chat(http, script_stack, bob, "echo: bob's")
    r = redis.Redis.from_url(script_stack.redis_url)
    assert r.exists(f"{K.SESSION}api:{ada}")

    out = forget(script_stack, f"api:{ada}")
    assert out["conversations"] == [f"api:{ada}"]
    assert not r.exists(f"{K.SESSION}api:{ada}", f"{K.SEQ}api:{ada}", f"{K.PERSON}api:{ada}")
    assert r.exists(f"{K.SESSION}api:{bob}")
    # The person can start again, as a stranger.
    [reply] = await chat(http, script_stack, ada, "echo: hello again")
    assert reply["text"] == "echo: hello again"


async def test_forget_by_email_erases_every_channel_that_verified_it(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    email = f"{uid('ada')}@example.com"
    api_user, slack_user, dm = uid("ada"), next_id("U"), next_id("D")
    await chat(http, script_stack, api_user, f"verify: {email}")
    assert await send_event(http, script_stack, dm_event(dm, slack_user, f"verify: {email}")) == 200
    await fake_slack.wait_for(dm)
    r = redis.Redis.from_url(script_stack.redis_url)

    out = forget(script_stack, email.upper())
    assert out["conversations"] == sorted([f"api:{api_user}", f"slack:{dm}"])
    for conv in out["conversations"]:  # type: ignore[attr-defined]
        assert not r.exists(K.SESSION + conv)
    assert not r.exists(K.PERSON_EMAIL + email, f"{K.PERSON}slack:{slack_user}")


async def test_forget_erases_the_persons_conversation_records(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    cy = uid("cy")
    await chat(http, script_stack, cy, "echo: count this conversation")
    r = redis.Redis.from_url(script_stack.redis_url)
    await until(lambda: bool(r.exists(f"{K.RECORDS}api:{cy}")), 10, "the conversation record")

    forget(script_stack, f"api:{cy}")
    assert not r.exists(f"{K.RECORDS}api:{cy}")
    assert r.zscore(K.RECORDS_INDEX, f"api:{cy}") is None
