"""Bad input never crashes anything: it gets a clear message, and the rest still works."""

from __future__ import annotations

import json
import random
from pathlib import Path

from bot.service import StorybotService

from .conftest import SEED_ARTICLE, FakeEmbedder, make_settings

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


def _assert_answers_or_refuses(service: StorybotService, questions: list[str]) -> None:
    source = SEED_ARTICLE.read_text(encoding="utf-8")
    for question in questions:
        answer = service.ask(question)
        assert answer.answered or answer.shown.reason
        for citation in answer.citations:
            assert source[citation.start : citation.end] == citation.text
        json.dumps(answer.to_json())


def test_nasty_questions_get_answers_or_clear_refusals(seed_service: StorybotService) -> None:
    _assert_answers_or_refuses(seed_service, NASTY)


def test_random_text_gets_answers_or_clear_refusals(tmp_path: Path) -> None:
    # The plumbing, not the meaning, is under test: the fake embedder keeps the random strings fast, and 40
    # of them (lengths 0 to 200; NASTY has the edge cases) cost the reader 3 s where 100 cost 8 s.
    service = StorybotService.load(make_settings(tmp_path), FakeEmbedder())
    rng = random.Random(3)
    alphabet = "abcdefghijklmnopqrstuvwxyz ABC.,?!'\"-–—é漢字\n\t"
    _assert_answers_or_refuses(
        service, ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(40)]
    )


def test_invalid_utf8_on_stdin_does_not_end_the_batch(tmp_path: Path, cli) -> None:
    settings = make_settings(tmp_path)
    stdin = (
        b'What did Biden warn?\n\xff\xfe bad bytes \xc3\n{"q": 5}\n{broken json\nWho did Putin call later on Tuesday?\n'
    )
    result = cli(["ask", "--json"], settings, stdin=stdin)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 5
    assert answers[0]["answered"] and answers[-1]["answered"] and "Emmanuel Macron" in answers[-1]["answer"]


def test_missing_corpus_directory_is_one_line(tmp_path: Path, cli) -> None:
    settings = make_settings(tmp_path)
    result = cli(["rebuild"], settings.model_copy(update={"corpus_dir": tmp_path / "nowhere"}))
    assert result.returncode == 2
    assert "corpus directory" in result.stderr and "nowhere" in result.stderr and "Traceback" not in result.stderr


def test_index_dir_that_cannot_be_written_is_one_line(tmp_path: Path, cli) -> None:
    settings = make_settings(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = cli(["rebuild"], settings.model_copy(update={"index_dir": blocker}))
    assert result.returncode == 2
    assert "cannot write the index" in result.stderr and "Traceback" not in result.stderr
    assert blocker.read_text() == "not a directory"  # nothing lost
