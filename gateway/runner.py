"""``omnigate run``: Redis (when none answers), a gateway and a worker on one machine, supervised
together; Ctrl-C or SIGTERM stops all of them, and none is left behind."""

from __future__ import annotations

import logging
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import redis

from gateway.settings import ConfigError, Settings, child_env

log = logging.getLogger("omnigate.run")
# Turns `omnigate run` answers at once.
RUN_TURN_THREADS = 32


def redis_answers(url: str) -> bool:
    """True when a Redis server answers PING at ``url``."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """A private ``redis-server`` on 127.0.0.1:port, with an append-only file in data_dir so a
    restart of ``omnigate run`` keeps what was queued."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise ConfigError(
            "OMNIGATE_REDIS_URL does not answer and redis-server is not installed: "
            "`apt-get install redis-server` (or `make setup`), or point OMNIGATE_REDIS_URL at one"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        if redis_answers(url):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise ConfigError(f"redis-server did not start on port {port}")


def check_port_free(host: str, port: int) -> None:
    """Fail early, and clearly, when the gateway's address is taken."""
    with socket.socket() as s:
        # As the server binds: a port with only closed connections (TIME_WAIT) is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror}): another program (an earlier "
                "`omnigate run`?) uses it; stop it or pass --port"
            ) from None


DEMO_AGENT = "demo"
DEMO_PASSWORD = "kestrel-demo"  # the demo shop's agent only (``omnigate run --demo-agent``)


def demo_agent(redis_url: str) -> bool:
    """Make the demo shop's agent account unless it exists; True when it was made."""
    import asyncio

    from gateway.agents.accounts import add_account, has_account
    from gateway.redis_clients import async_client

    async def make() -> bool:
        r = async_client(redis_url)
        try:
            if await has_account(r, DEMO_AGENT):
                return False
            return await add_account(r, DEMO_AGENT, DEMO_PASSWORD)
        finally:
            await r.aclose()

    return asyncio.run(make())


def run_all(settings: Settings, with_demo_agent: bool = False) -> int:
    """Start everything, wait until one part stops or we are told to stop, stop the rest.
    ``with_demo_agent``: the web agents' console is on, with a demo account."""
    from brain.store import load_store

    settings.check_exposure()
    check_port_free(settings.host, settings.port)

    store = load_store(settings.store)  # a broken pack fails here, before anything starts
    log.info("store %s: %s, %d products", settings.store, store.info.name, len(store.products()))

    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    extra: dict[str, str] = {}
    if not redis_answers(settings.redis_url):
        port = free_port()
        log.info(
            "no Redis at %s; starting a private redis-server on port %d", settings.redis_url, port
        )
        procs.append(("redis", start_redis(settings.cache_dir / "redis", port)))
        extra["OMNIGATE_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    if not settings.web_secret:
        log.warning(
            "OMNIGATE_WEB_SECRET is not set: using a random one for this run "
            "(visitor tokens will not survive a restart)"
        )
        extra["OMNIGATE_WEB_SECRET"] = secrets.token_hex(32)
    console = ""  # the demo's console URL and login, printed once everything is starting
    if with_demo_agent:
        made = demo_agent(extra.get("OMNIGATE_REDIS_URL", settings.redis_url))
        extra["OMNIGATE_AGENT_WEB_CONSOLE"] = "1"
        login = (
            f"{DEMO_AGENT} / {DEMO_PASSWORD}"
            if made
            else f"{DEMO_AGENT} (the account existed: its password is unchanged)"
        )
        console = f"http://{settings.host}:{settings.port}/agent (sign in as {login})"
    env = child_env(settings, **extra)
    exe = [sys.executable, "-m", "gateway.cli"]
    # A threads pool: a turn waiting for the LLM's words holds no CPU, so turns that need no
    # LLM run beside it instead of queueing behind it; the worker starts the host's
    # generation service that batches all of them.
    worker = [*exe, "worker", "--pool", "threads", "--concurrency", str(RUN_TURN_THREADS)]
    procs.append(("worker", subprocess.Popen(worker, env=env)))
    procs.append(("gateway", subprocess.Popen([*exe, "gateway"], env=env)))
    log.info(
        "omnigate is starting: web chat on http://%s:%d (Ctrl-C stops)",
        settings.host,
        settings.port,
    )
    if console:
        # Plain text on the terminal, beside the JSON log lines: what the demo's reader needs.
        print(f"\n  web chat:        http://{settings.host}:{settings.port}/", flush=True)
        print(f"  agents' console: {console}\n", flush=True)

    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for name, proc in procs:
            if proc.poll() is not None:
                log.error("%s exited with code %s; stopping the rest", name, proc.returncode)
                stopping, code = True, 1
        time.sleep(0.2)
    _stop_all(procs)
    return code


def _stop_all(procs: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """Gateway first (no new work), then the worker (finishes its turn), Redis last."""
    for name, proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in 30s; killing it", name)
                proc.kill()
                proc.wait()
        log.info("%s stopped", name)
