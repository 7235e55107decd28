"""Headless Chromium for the widget tests: one browser per test session, a fresh context (so
fresh localStorage: a new visitor) per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("OMNIGATE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Product images of the scripted brain point at shop.example; the browser gets this instead of
# reaching for the network.
PRODUCT_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 170 110">'
    '<rect width="170" height="110" fill="#cfe0ee"/>'
    '<path d="M30 80c15-2 28-10 38-22l12 6c8 4 16 5 25 5h25c10 0 18 7 18 16v4H30z" '
    'fill="#1f5f8b"/></svg>'
)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """The async API: the tests share the session's event loop with the other async tests."""
    if not HAVE_CHROMIUM:
        pytest.skip(f"no Chromium at {CHROMIUM}: run `make browser-deps`")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


async def _product_image(route: Any) -> None:
    await route.fulfill(status=200, content_type="image/svg+xml", body=PRODUCT_SVG)


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A page in a fresh context; images from shop.example are answered locally."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    await context.route("https://shop.example/**", _product_image)
    context.set_default_timeout(15_000)
    pg = await context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.js_errors = errors
    yield pg
    await context.close()
