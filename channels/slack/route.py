"""The Slack route: ``POST /slack/events`` (Events API and interactivity, through bolt), and
mounting the channel.

Mounted by ``setup`` when the gateway has a Slack config (``SLACK_BOT_TOKEN`` set), with
``SLACK_SIGNING_SECRET`` (the HTTP route; bolt checks each request's v0 signature and 5-minute
window, 401 otherwise) and/or ``SLACK_APP_TOKEN`` (Socket Mode, for development without a
public URL).
"""

from __future__ import annotations

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from channels.base import ChannelHost
from channels.http import json_error, run_with_app
from channels.schema import ChannelName
from channels.slack.adapter import SlackChannel
from channels.slack.config import SlackConfig
from channels.slack.requests import SHAPE_ERRORS, MalformedRequest, answer, check_body, signed

EVENTS_PATH = "/slack/events"

SLACK = web.AppKey("slack", SlackChannel)


def setup(app: web.Application, host: ChannelHost, config: SlackConfig) -> None:
    """Mount the Slack channel: its adapter, and the events route when there is a signing
    secret."""
    channel = SlackChannel(host, config)
    host.adapters[ChannelName.slack] = channel
    app[SLACK] = channel
    if config.signing_secret:
        app.router.add_post(EVENTS_PATH, events)
    run_with_app(app, channel)


async def events(request: web.Request) -> web.Response:
    """Events API and interactivity requests from Slack, through bolt: 401 for a bad or stale
    signature; 400 for a signed body that is not a readable Slack payload; 200 once queued (or
    a duplicate, or ignored); 503 when it could not be queued, so Slack retries
    (``channels.slack.requests``)."""
    channel = request.app[SLACK]
    raw = await request.read()
    secret = channel.signing_secret
    if not signed(secret, request.headers, raw):
        return json_error(401, "invalid or stale request signature")
    try:
        check_body(raw, request.content_type)
        bolt_req = await to_bolt_request(request)
    except MalformedRequest as exc:
        return json_error(400, str(exc))
    except SHAPE_ERRORS:  # bolt reading the context (team, user, channel) out of the body
        return json_error(400, "a Slack payload with fields of the wrong shape")
    try:
        bolt_resp = await channel.bolt.async_dispatch(bolt_req)
    except SHAPE_ERRORS:  # bolt matching listeners against the payload
        return json_error(400, "a Slack payload with fields of the wrong shape")
    failed = answer(bolt_req.context, bolt_resp.status, bolt_resp.body)
    return failed or await to_aiohttp_response(bolt_resp)
