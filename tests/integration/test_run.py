"""``omnigate run``: a private Redis when none answers, a gateway and a worker; Ctrl-C stops
every one of them. A broken store pack stops it before anything starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil

from tests.conftest import chat, stack_env, uid
from tests.support.servers import ROOT, Stack, free_port, until


async def test_run_starts_everything_and_ctrl_c_stops_it_all(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    port = free_port()
    env = stack_env(
        f"redis://127.0.0.1:{free_port()}/0",
        {  # nothing answers there
            "OMNIGATE_BRAIN": "tests.support.script_brain:ScriptBrain",
            "OMNIGATE_CACHE_DIR": str(tmp_path / "cache"),
        },
    )
    env.pop("OMNIGATE_WEB_SECRET")
    log = open(tmp_path / "run.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stack = Stack.__new__(Stack)
    stack.url = f"http://127.0.0.1:{port}"
    try:
        await until(
            lambda: stack._get("/readyz") == 200 or proc.poll() is not None,
            120,
            "omnigate run to be ready",
        )
        assert proc.poll() is None, (tmp_path / "run.log").read_text()
        children = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "redis-server" in names and "worker" in names and "gateway" in names

        assert (await chat(http, stack, uid("u"), "echo: hi"))[0]["text"] == "echo: hi"

        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        time.sleep(0.5)
        assert [c.pid for c in children if c.is_running() and c.status() != "zombie"] == []
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        log.close()
    text = (tmp_path / "run.log").read_text()
    assert "starting a private redis-server" in text
    assert "OMNIGATE_WEB_SECRET is not set" in text


def test_run_refuses_a_broken_store_pack(tmp_path: Path) -> None:
    pack = tmp_path / "shop"
    pack.mkdir()
    (pack / "shop.toml").write_text('name = "Broken"\n')
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "run", "--store", str(pack)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=stack_env("redis://127.0.0.1:1/0", {}),
    )
    assert result.returncode == 2
    assert "shop.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_omnigate_chat_talks_to_a_running_gateway(script_stack: Stack) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "chat", "--url", script_stack.url],
        input="echo: from the terminal\nbuttons\n1\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=script_stack.env,
    )
    assert result.returncode == 0, result.stderr
    assert "bot> echo: from the terminal" in result.stdout
    assert "[1] Yes" in result.stdout
    assert "bot> clicked: pay:yes" in result.stdout


def test_run_says_clearly_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "run", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env=stack_env("redis://127.0.0.1:1/0", {}),
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
