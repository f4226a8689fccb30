"""Helpers shared by several test modules (test modules never import each other)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from bot.config import Settings
from bot.devtools.redis_server import RedisServer  # noqa: F401 - the tests' Redis, shared with the benchmark
from bot.evaluation import Summary
from bot.indexing.index import INDEX_FILES, MANIFEST

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
# Written out here rather than imported from bot.telegram.format, so the check does not trust the code it checks.
ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
}
_TAG = re.compile(r"<(/?)([a-z-]+)(?:\s[^<>]*)?>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


def assert_telegram_html(text: str) -> None:
    """Only Telegram's tags, balanced and properly nested; every < and & belongs to a tag or an entity."""
    stack: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char == "<":
            match = _TAG.match(text, position)
            assert match, f"stray '<' at {position}: {text[position : position + 30]!r}"
            closing, name = match.group(1), match.group(2)
            assert name in ALLOWED_TAGS, f"tag <{name}> is not Telegram HTML"
            if closing:
                assert stack and stack[-1] == name, f"</{name}> closes {stack[-1:]} in {text!r}"
                stack.pop()
            else:
                stack.append(name)
            position = match.end()
        elif char == "&":
            match = _ENTITY.match(text, position)
            assert match, f"stray '&' at {position}: {text[position : position + 30]!r}"
            position = match.end()
        else:
            assert char != ">", f"stray '>' at {position}"
            position += 1
    assert not stack, f"unclosed tags {stack}"


def run_cli(args: list[str], settings: Settings, stdin: str = "", timeout: int = 240) -> subprocess.CompletedProcess:
    """`python -m bot ARGS` in a real subprocess (for the few smoke tests that need a real process)."""
    env = {
        **os.environ,
        "STORYBOT_CORPUS_DIR": str(settings.corpus_dir),
        "STORYBOT_INDEX_DIR": str(settings.index_dir),
        "STORYBOT_DATA_DIR": str(settings.data_dir),
        "NO_COLOR": "1",
    }
    env.pop("TELEGRAM_BOT_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=settings.corpus_dir.parent,
        timeout=timeout,
    )


def resign_manifest(build_dir: Path) -> None:
    """Record the index files' current sha256 and size in the manifest, as if the damage were built that way.

    Gets damage past the checksums, so the checks behind them (schema, offsets, FAISS) are tested too.
    """
    path = build_dir / MANIFEST
    manifest = json.loads(path.read_text())
    for name in INDEX_FILES:
        file = build_dir / name
        if file.is_file():
            data = file.read_bytes()
            manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    path.write_text(json.dumps(manifest))


def assert_floors(summary: Summary, floors: dict[str, float]) -> None:
    """A held-out set's rates against its floors: right answers (the answer line as a user reads it, and its
    sentence) and right refusals, false refusals."""
    assert summary.answer_right >= floors["right"] * summary.answerable, summary
    assert summary.right >= floors["right"] * summary.answerable, summary
    assert summary.abstained >= floors["abstained"] * summary.unanswerable, summary
    assert summary.false_refusals <= floors["false_refusals"] * summary.answerable, summary


def scripted_input(lines: Iterator[str]) -> Callable[[str], str]:
    """A console's read_line that types these lines, then Ctrl-D (EOFError), as a person ending the chat."""

    def read_line(prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    return read_line


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bot_process_env(settings: Settings, api_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `storybot telegram` process on these settings, talking to the loopback Bot API."""
    return {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "STORYBOT_TELEGRAM_API_URL": api_url,
        "STORYBOT_CORPUS_DIR": str(settings.corpus_dir),
        "STORYBOT_INDEX_DIR": str(settings.index_dir),
        "STORYBOT_DATA_DIR": str(settings.data_dir),
        **extra,
    }


REDIS_MISSING = (
    "redis-server is not installed: the Redis tests start a real one on loopback. `scripts/install test` "
    "installs Debian's redis-server (as root); elsewhere install Redis 5 or later so it is on PATH."
)
