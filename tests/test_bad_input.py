"""Bad input never crashes anything: it gets a clear message, and the rest still works."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from bot.service import StorybotService

from .conftest import ROOT, SEED_ARTICLE, make_settings

NASTY = [
    "",
    " ",
    "?",
    "\x00\x01\x02",
    "<b>What</b> did &amp; Biden warn?",
    "😀😀😀 what did biden warn 😀",
    "WHAT DID BIDEN WARN???",
    "what" * 400,
    "Biden " * 300,
    "'; DROP TABLE questions; --",
    "\u202eeman ruoy si tahw",
    "U.S. U.S. U.S.",
    "1234567890",
    "?" * 1000,
]


def test_nasty_questions_get_answers_or_clear_refusals(seed_service: StorybotService) -> None:
    source = SEED_ARTICLE.read_text(encoding="utf-8")
    rng = random.Random(3)
    alphabet = "abcdefghijklmnopqrstuvwxyz ABC.,?!'\"-–—é漢字\n\t"
    questions = NASTY + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(100)]
    for question in questions:
        answer = seed_service.ask(question)
        assert answer.answered or answer.reason
        for citation in answer.citations:
            assert source[citation.start : citation.end] == citation.text
        json.dumps(answer.to_json())


def test_invalid_utf8_on_stdin_does_not_end_the_batch(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    env = {**os.environ, "STORYBOT_CORPUS_DIR": str(settings.corpus_dir), "STORYBOT_INDEX_DIR": str(settings.index_dir)}
    stdin = (
        b'What did Biden warn?\n\xff\xfe bad bytes \xc3\n{"q": 5}\n{broken json\nWho did Putin call later on Tuesday?\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--json"], input=stdin, capture_output=True, env=env, cwd=ROOT, timeout=240
    )
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(answers) == 5
    assert answers[0]["answered"] and answers[-1]["answer"] == "French President Emmanuel Macron"


def test_missing_corpus_directory_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "STORYBOT_CORPUS_DIR": str(tmp_path / "nowhere"), "STORYBOT_INDEX_DIR": str(tmp_path / "i")}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "rebuild"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=240
    )
    assert result.returncode == 2
    assert "corpus directory" in result.stderr and "nowhere" in result.stderr and "Traceback" not in result.stderr


def test_index_dir_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = {**os.environ, "STORYBOT_CORPUS_DIR": str(settings.corpus_dir), "STORYBOT_INDEX_DIR": str(blocker)}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "rebuild"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=240
    )
    assert result.returncode == 2
    assert "cannot write the index" in result.stderr and "Traceback" not in result.stderr
    assert blocker.read_text() == "not a directory"  # nothing lost
