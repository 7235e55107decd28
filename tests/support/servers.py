"""Real servers for the tests: redis-server on a free port, omnigate gateway and worker
processes, and aiohttp apps run in a background thread (the fake platforms)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import redis
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it is true, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """``wait_for`` for async tests: polls without blocking the test's event loop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


class RedisServer:
    """A private ``redis-server`` for the test session."""

    def __init__(self, workdir: Path, persistent: bool = False) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed: run `make setup`")
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.args = [
            exe,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if persistent else "no",
            "--appendfsync",
            "always",
            "--dir",
            str(workdir),
            "--loglevel",
            "warning",
        ]
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args)
        wait_for(self._answers, 10, "redis-server")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Proc:
    """An omnigate process (``omnigate gateway`` / ``omnigate worker``) with its log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.args, self.env = name, args, env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: no clean shutdown, as in a crash."""
        if self.alive():
            assert self.proc
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            assert self.proc
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Stack:
    """A gateway and a worker sharing one Redis database."""

    def __init__(
        self, name: str, env: dict[str, str], log_dir: Path, port: int, worker_args: list[str]
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = env
        self.redis_url = env["OMNIGATE_REDIS_URL"]
        self.name, self.log_dir = name, log_dir
        self.gateway = Proc(f"{name}-gateway", ["gateway", "--port", str(port)], env, log_dir)
        self.workers = [Proc(f"{name}-worker", ["worker", *worker_args], env, log_dir)]

    @property
    def worker(self) -> Proc:
        return self.workers[0]

    def add_worker(self, worker_args: list[str]) -> None:
        n = len(self.workers)
        self.workers.append(
            Proc(f"{self.name}-worker{n}", ["worker", *worker_args], self.env, self.log_dir)
        )

    def start(self, ready_timeout: float = 300) -> None:
        for w in self.workers:
            w.start()
        self.start_gateway()
        wait_for(
            lambda: self.live_workers() >= len(self.workers) or self._dead(),
            ready_timeout,
            f"{len(self.workers)} live worker(s) in {self.url}/healthz "
            f"(logs: {self.gateway.log_path}, {self.worker.log_path})",
        )
        if self._dead():
            logs = "\n".join(p.log()[-3000:] for p in [*self.workers, self.gateway])
            raise RuntimeError(f"a process died:\n{logs}")

    def start_gateway(self) -> None:
        self.gateway.start()
        wait_for(
            lambda: self._get("/healthz") == 200 or not self.gateway.alive(),
            60,
            f"{self.url}/healthz",
        )
        if not self.gateway.alive():
            raise RuntimeError(f"gateway died:\n{self.gateway.log()[-3000:]}")

    def _dead(self) -> bool:
        return not (all(w.alive() for w in self.workers) and self.gateway.alive())

    def live_workers(self) -> int:
        """How many worker processes the gateway's ``/healthz`` counts (0 when unknown)."""
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                return int(json.load(resp).get("workers") or 0)
        except (OSError, ValueError):
            return 0

    def _get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    def stop(self) -> None:
        self.gateway.stop()
        for w in self.workers:
            w.stop()


class BackgroundServer:
    """An aiohttp app served from its own thread and event loop, so it answers whatever the
    test's own loop is doing (fake platform APIs)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("background server did not start")

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(self.app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        self.loop.run_until_complete(site.start())
        self._started.set()
        self.loop.run_forever()

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the server's loop (to change its state safely)."""
        self.loop.call_soon_threadsafe(fn)

    def stop(self) -> None:
        fut = asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop)
        fut.result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
