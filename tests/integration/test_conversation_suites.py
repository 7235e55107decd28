"""Conversation tests through the ``omnigate test-conversations`` command, with the real brain:
every suite shipped with a store pack passes, and the command's exit status and table say what
a shop owner needs to see."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITES = sorted(
    [
        *(ROOT / "brain" / "demo_shop" / "conversations").glob("*.yaml"),
        *(ROOT / "tests" / "packs").glob("*/conversations/*.yaml"),
    ]
)


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "test-conversations", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
    )


@pytest.mark.parametrize("suite", SUITES, ids=[str(s.relative_to(ROOT)) for s in SUITES])
def test_shipped_suite_passes(suite: Path) -> None:
    done = run_cli(suite)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def test_a_failing_conversation_fails_the_command_and_shows_in_the_table(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        """
conversations:
  - name: a greeting is answered
    turns:
      - user: "hello"
        expect: {products: none, handoff: false}
  - name: a wrong expectation
    turns:
      - user: "hello"
        expect: {contains: ["we are closed forever"]}
""",
        encoding="utf-8",
    )
    done = run_cli(suite)
    assert done.returncode == 1
    assert "PASS    a greeting is answered" in done.stdout
    assert "FAIL    a wrong expectation" in done.stdout
    assert "missing 'we are closed forever'" in done.stdout
    assert "1/2 conversations passed" in done.stdout


def test_a_malformed_file_is_a_clear_error(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("conversations:\n  - name: a\n    turns: hello\n", encoding="utf-8")
    done = run_cli(suite)
    assert done.returncode == 2
    assert f"{suite}: conversation 'a': key 'turns': must be a non-empty list" in done.stderr
