"""The ``omnigate`` command line (the README lists it, "Running the parts alone")."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from gateway.logs import configure_logging
from gateway.settings import ConfigError, Settings, get_settings, load_settings, use_settings


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings with this command's flags on top; made process-wide."""
    overrides: dict[str, object] = {}
    for flag, name in (
        ("store", "OMNIGATE_STORE"),
        ("host", "OMNIGATE_HOST"),
        ("port", "OMNIGATE_PORT"),
        ("device", "OMNIGATE_DEVICE"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[name] = value
    settings = load_settings(**overrides) if overrides else get_settings()
    use_settings(settings)
    logging.getLogger().setLevel(settings.log_level)
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    from gateway.runner import run_all

    return run_all(_settings(args), with_demo_agent=args.demo_agent)


def cmd_gateway(args: argparse.Namespace) -> int:
    from aiohttp import web

    from gateway.app import create_app
    from gateway.runner import check_port_free

    settings = _settings(args)
    settings.check_exposure()
    check_port_free(settings.host, settings.port)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        print=lambda s: logging.info("%s", s.strip()),
        handle_signals=True,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    service = None
    if settings.llm_model.strip().lower() != "off" and not settings.llm_url:
        # One generation service for the host: every pool child's turns share its batch.
        from gateway.runner import free_port
        from workers.llm_server import start_generation_service

        service = start_generation_service(settings, free_port())
        use_settings(settings.model_copy(update={"llm_url": service.url}))
    from gateway.queue import configure_celery
    from workers.celery_app import app

    configure_celery(app, settings)

    argv = [
        "--quiet",  # no start-up banner: the log is JSON lines
        "worker",
        "--queues",
        args.queues,
        "--pool",
        args.pool,
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if args.concurrency:
        argv += ["--concurrency", str(args.concurrency)]
    if args.hostname:
        argv += ["--hostname", args.hostname]
    try:
        app.worker_main(argv)
    finally:
        if service is not None:
            service.stop()
    return 0


def cmd_llm_server(args: argparse.Namespace) -> int:
    from workers.llm_server import serve

    settings = _settings(args)
    serve(settings, args.host or "127.0.0.1", args.port)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from gateway.chat import chat_loop

    return chat_loop(args.url, args.user, get_settings().api_token)


def cmd_eval_nlu(args: argparse.Namespace) -> int:
    from brain.nlu import eval_nlu

    result = eval_nlu(
        args.data, args.train, args.text_col, args.label_col, _settings(args).brain_config()
    )
    print(json.dumps(result))
    return 0


def cmd_eval_recs(args: argparse.Namespace) -> int:
    from brain.recs_eval import eval_recs

    print(
        json.dumps(
            eval_recs(args.interactions, args.items, _settings(args).brain_config(), seed=args.seed)
        )
    )
    return 0


def cmd_recs_train(args: argparse.Namespace) -> int:
    from brain.recs_bundle import train_recs

    path = train_recs(_settings(args).brain_config(), progress=True)
    print(f"model saved to {path}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from brain.shop import prepare

    settings = _settings(args)
    prepare(
        settings.brain_config(), progress=lambda line: print(f"intent model: {line}", flush=True)
    )
    print(f"models ready in {settings.cache_dir}")
    return 0


def cmd_check_store(args: argparse.Namespace) -> int:
    from brain.store import load_store

    settings = _settings(args)
    store = load_store(settings.store)
    print(f"{settings.store}: {store.info.name}: {len(store.products())} products, ok")
    return 0


def cmd_test_conversations(args: argparse.Namespace) -> int:
    from brain.conversation_tests import format_report, load_suite, run_suite
    from brain.shop import ShopBrain

    suite = load_suite(args.file)
    store = args.store or suite.store
    # The grounded answers are what the checks are about: no LLM rewording, which varies.
    overrides: dict[str, object] = {"OMNIGATE_LLM_MODEL": "off"}
    if store is not None:
        overrides["OMNIGATE_STORE"] = store
    settings = load_settings(**overrides)
    use_settings(settings)
    today = suite.today
    brain = ShopBrain(settings.brain_config(), today=(lambda: today) if today is not None else None)
    results = run_suite(suite, brain, before_each=brain.reload_store)
    print(format_report(suite, results))
    return 0 if all(r.ok for r in results) else 1


def cmd_forget(args: argparse.Namespace) -> int:
    from gateway.redis_clients import sync_client
    from workers.people import forget

    done = forget(sync_client(_settings(args).redis_url), args.who)
    print(
        json.dumps(
            {
                "forgotten": args.who,
                "conversations": done.conversations,
                "keys_deleted": done.keys_deleted,
                "pending_replies_deleted": done.replies_deleted,
            }
        )
    )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    import redis

    from gateway.redis_clients import sync_client
    from gateway.stats import BadPeriod, as_text, parse_since, shop_numbers

    settings = _settings(args)
    try:
        period = parse_since(args.since)
    except BadPeriod as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        figures = shop_numbers(sync_client(settings.redis_url), settings, period)
    except redis.RedisError as exc:
        print(f"cannot read the records from Redis at {settings.redis_url}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(figures) if args.json else as_text(figures))
    return 0


def cmd_learn(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import redis

    from brain.learning import Labelled, install, retrain
    from gateway import feedback
    from gateway.redis_clients import sync_client

    settings = _settings(args)
    config = settings.brain_config()
    overrides = {
        k: v
        for k, v in (
            ("tuned_layers", args.tuned_layers),
            ("epochs", args.epochs),
            ("per_intent", args.per_intent),
        )
        if v is not None
    }
    training = replace(config.intent_training, **overrides)
    try:
        found = feedback.load_all(
            sync_client(settings.redis_url), settings.records_retention_days * 86400
        )
    except redis.RedisError as exc:
        print(
            f"cannot read the feedback from Redis at {settings.redis_url}: {exc}", file=sys.stderr
        )
        return 1
    labelled = [Labelled(e.text, e.label) for e in found if e.label]
    waiting = sum(1 for e in found if e.flagged and not e.label)
    picks = sum(1 for e in found if e.label and e.source == "pick")
    print(
        f'feedback: {len(labelled)} labelled examples ({picks} picks on "Did you mean…?", '
        f"{len(labelled) - picks} from agents); {waiting} thumbs-down examples wait for a label"
    )
    result: dict[str, object] = {"examples": len(labelled), "flagged_unlabelled": waiting}
    if len(labelled) < args.min_examples:
        print(
            f"nothing to learn: fewer than {args.min_examples} labelled examples (--min-examples)"
        )
        print(json.dumps({**result, "installed": False, "reason": "too few examples"}))
        return 0
    outcome = retrain(
        config, labelled, training, progress=lambda line: print(f"intent model: {line}", flush=True)
    )
    result = {**result, **outcome.summary(), "dry_run": args.dry_run}
    print(
        f"held-out set: {outcome.held_out_feedback} feedback examples (never trained on) and "
        f"{outcome.held_out_shipped} rows of the shipped data"
    )
    for name, total, fb, shipped in (
        ("installed model", outcome.before, outcome.before_feedback, outcome.before_shipped),
        ("new model", outcome.after, outcome.after_feedback, outcome.after_shipped),
    ):
        fb_text = "-" if fb is None else f"{fb:.4f}"
        print(f"{name:>15}: accuracy {total:.4f} (feedback {fb_text}, shipped {shipped:.4f})")
    if outcome.worse:
        print(
            f"omnigate learn: the new model is worse on the held-out set ({outcome.after:.4f} < "
            f"{outcome.before:.4f}); it is not installed, and the installed model stays",
            file=sys.stderr,
        )
        print(json.dumps({**result, "installed": False, "reason": "worse"}))
        return 1
    if args.dry_run:
        print("dry run: the new model is not installed")
        print(json.dumps({**result, "installed": False, "reason": "dry run"}))
        return 0
    path = install(config, outcome)
    print(
        f"installed the new model at {path}; workers load it when they restart "
        "(omnigate worker, omnigate run)"
    )
    print(json.dumps({**result, "installed": True, "path": str(path)}))
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    import redis

    from gateway import dead_letters
    from gateway.redis_clients import sync_client

    settings = _settings(args)
    r = sync_client(settings.redis_url)
    try:
        letters = dead_letters.read(r, args.limit)
    except redis.RedisError as exc:
        print(f"omnigate: Redis at {settings.redis_url} does not answer ({exc})", file=sys.stderr)
        return 1
    for letter in letters:
        print(json.dumps(letter) if args.json else dead_letters.describe(letter))
    if not letters and not args.json:
        print("no dead letters")
    return 0


def cmd_telegram_set_webhook(args: argparse.Namespace) -> int:
    from gateway.mounts import set_webhook

    set_webhook(_settings(args), args.url)
    print(f"webhook set to {args.url}")
    return 0


def cmd_agent_add(args: argparse.Namespace) -> int:
    import asyncio
    import getpass

    from gateway.agents.accounts import AccountError, add_account, check_new_account
    from gateway.redis_clients import async_client

    settings = _settings(args)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("omnigate: the two passwords differ", file=sys.stderr)
            return 2
    try:
        check_new_account(args.name, password)
    except AccountError as exc:
        print(f"omnigate: {exc}", file=sys.stderr)
        return 2

    async def add() -> bool:
        r = async_client(settings.redis_url)
        try:
            return await add_account(r, args.name, password)
        finally:
            await r.aclose()

    new = asyncio.run(add())
    print(f"agent {args.name} {'added' if new else 'has a new password'}; sign in at /agent/login")
    if not settings.agent_console:
        print(
            "note: the bot promises a person only with an agents' console on: set "
            "OMNIGATE_AGENT_WEB_CONSOLE=1 (or OMNIGATE_AGENT_CHANNEL for Slack)"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``omnigate`` command."""
    p = argparse.ArgumentParser(prog="omnigate", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="Redis (if needed), a gateway and a worker on this machine")
    run.add_argument("--store", type=Path)
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.add_argument("--device", choices=["auto", "cpu", "cuda"])
    run.add_argument(
        "--demo-agent",
        action="store_true",
        help="turn the web agents' console on, with a demo account (what `make demo` runs)",
    )
    run.set_defaults(func=cmd_run)

    gw = sub.add_parser("gateway", help="the HTTP gateway alone")
    gw.add_argument("--host")
    gw.add_argument("--port", type=int)
    gw.add_argument("--store", type=Path)
    gw.set_defaults(func=cmd_gateway)

    wk = sub.add_parser("worker", help="a Celery worker running the brain")
    wk.add_argument("--queues", default="brain,deliver")
    wk.add_argument("--device", choices=["auto", "cpu", "cuda"])
    wk.add_argument("--store", type=Path)
    wk.add_argument(
        "--pool",
        default="prefork",
        choices=["prefork", "threads", "solo"],
        help="threads lets one process batch concurrent generations (GPU)",
    )
    wk.add_argument("--concurrency", type=int)
    wk.add_argument("--hostname")
    wk.set_defaults(func=cmd_worker)

    ls = sub.add_parser(
        "llm-server",
        help="the generation service alone: an OpenAI-compatible chat-completions server",
    )
    ls.add_argument("--host")
    ls.add_argument("--port", type=int, default=8000)
    ls.add_argument("--device", choices=["auto", "cpu", "cuda"])
    ls.set_defaults(func=cmd_llm_server)

    ch = sub.add_parser("chat", help="a terminal chat against a running gateway")
    ch.add_argument("--url", default="http://127.0.0.1:8080")
    ch.add_argument("--user", default=None)
    ch.set_defaults(func=cmd_chat)

    nlu = sub.add_parser("eval-nlu", help="intent accuracy and macro-F1 on a CSV")
    nlu.add_argument("--data", type=Path, required=True)
    nlu.add_argument("--train", type=Path)
    nlu.add_argument("--text-col")
    nlu.add_argument("--label-col")
    nlu.set_defaults(func=cmd_eval_nlu)

    er = sub.add_parser("eval-recs", help="recall@10 / ndcg@10 of the recommender and baselines")
    er.add_argument("--interactions", type=Path, required=True)
    er.add_argument("--items", type=Path)
    er.add_argument("--seed", type=int, default=0, help="SASRec's and the validation split's")
    er.set_defaults(func=cmd_eval_recs)

    recs = sub.add_parser("recs", help="recommender commands")
    recs_sub = recs.add_subparsers(dest="recs_command", required=True)
    rt = recs_sub.add_parser("train", help="train the next-item model on interactions.csv")
    rt.add_argument("--store", type=Path)
    rt.add_argument("--device", choices=["auto", "cpu", "cuda"])
    rt.set_defaults(func=cmd_recs_train)

    pr = sub.add_parser("prepare", help="build the model caches (run by `make setup`)")
    pr.add_argument("--store", type=Path)
    pr.set_defaults(func=cmd_prepare)

    cs = sub.add_parser("check-store", help="validate a store pack")
    cs.add_argument("--store", type=Path)
    cs.set_defaults(func=cmd_check_store)

    tc = sub.add_parser(
        "test-conversations", help="run a YAML file of conversation tests through the brain"
    )
    tc.add_argument("file", type=Path)
    tc.add_argument("--store", type=Path, help="the store pack (wins over the file's store:)")
    tc.set_defaults(func=cmd_test_conversations)

    fg = sub.add_parser(
        "forget", help="erase a person's conversations, memory and logs on every channel"
    )
    fg.add_argument("who", help="an email, a user id (telegram:42, or 42 on every channel)")
    fg.set_defaults(func=cmd_forget)

    st = sub.add_parser("stats", help="the shop's numbers: conversations, resolution, CSAT…")
    st.add_argument("--since", default="7d", help="the period: 7d, 24h, 30m, 2w (default 7d)")
    st.add_argument("--json", action="store_true", help="one JSON object")
    st.set_defaults(func=cmd_stats)

    le = sub.add_parser(
        "learn",
        help="retrain the intent model with recorded feedback; install it only if not worse",
    )
    le.add_argument("--dry-run", action="store_true", help="train and compare, install nothing")
    le.add_argument(
        "--min-examples",
        type=int,
        default=20,
        help="do nothing with fewer labelled examples than this (default 20)",
    )
    le.add_argument("--tuned-layers", type=int, help="the new model's tuned layers (1-6)")
    le.add_argument("--epochs", type=int, help="the new model's epochs")
    le.add_argument(
        "--per-intent", type=int, help="train the new model on N shipped rows per intent (0: all)"
    )
    le.set_defaults(func=cmd_learn)

    dl = sub.add_parser(
        "dead-letters",
        help="messages and replies given up on (poison, unreadable, undeliverable), oldest first",
    )
    dl.add_argument("--limit", type=int, default=100, help="the newest N (default 100)")
    dl.add_argument("--json", action="store_true", help="one JSON object a line")
    dl.set_defaults(func=cmd_dead_letters)

    ag = sub.add_parser("agent", help="the web agents' console's accounts")
    ag_sub = ag.add_subparsers(dest="agent_command", required=True)
    aa = ag_sub.add_parser("add", help="add agent NAME (or give them a new password)")
    aa.add_argument("name")
    aa.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    aa.set_defaults(func=cmd_agent_add)

    tg = sub.add_parser("telegram", help="Telegram commands")
    tg_sub = tg.add_subparsers(dest="tg_command", required=True)
    sw = tg_sub.add_parser("set-webhook", help="register URL as the bot's webhook, with the secret")
    sw.add_argument("url")
    sw.set_defaults(func=cmd_telegram_set_webhook)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``omnigate`` console script."""
    args = build_parser().parse_args(argv)
    configure_logging()
    from brain.conversation_tests import ConversationFileError
    from brain.store import StorePackError

    try:
        return int(args.func(args) or 0)
    except (ConfigError, StorePackError, ConversationFileError) as exc:
        print(f"omnigate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
