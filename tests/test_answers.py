"""Answers from the real model: the dev-question floors, verbatim citations, abstention, follow-ups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.answering.conversation import Session
from bot.evaluation import format_report, load_cases, run_eval
from bot.service import StorybotService

from .conftest import DATA, DEV_QUESTIONS, SEED_ARTICLE, make_settings, read_jsonl


def test_dev_questions_meet_the_floors(seed_service: StorybotService) -> None:
    results = run_eval(seed_service, load_cases(DEV_QUESTIONS))
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    report = format_report(results, seed_service.settings.answer_threshold)
    assert sum(r.correct for r in answerable) >= 13, report
    assert sum(r.hit_at_3 for r in answerable) == len(answerable), report
    assert sum(r.correct for r in unanswerable) >= 4, report
    assert sum(not r.answer.answered for r in answerable) <= 1, report


def test_every_answer_and_citation_is_verbatim(seed_service: StorybotService) -> None:
    source = SEED_ARTICLE.read_text(encoding="utf-8")
    questions = [c["q"] for c in read_jsonl(DEV_QUESTIONS) + read_jsonl(DATA / "heldout.jsonl")]
    for question in questions:
        answer = seed_service.ask(question)
        assert 1 <= len(answer.citations) <= 3
        for citation in answer.citations:
            assert source[citation.start : citation.end] == citation.text
            assert len(citation.text) <= 500
        if answer.answered:
            assert answer.text and answer.text in answer.citations[0].text
            assert source[answer.answer_start : answer.answer_end] == answer.text


@pytest.mark.parametrize(
    "question",
    [
        "Who won the 2018 World Cup?",
        "What did Angela Merkel say?",
        "How many troops are massed near the Ukrainian border?",
        "What is the population of Ukraine?",
        "what did zelensky say",  # typed in lower case: a rare word the article never uses is a name
        "stoltenberg nato",
        "",
        "???",
    ],
)
def test_questions_the_article_cannot_answer_are_refused(seed_service: StorybotService, question: str) -> None:
    answer = seed_service.ask(question)
    assert not answer.answered and answer.text is None and answer.reason
    assert answer.to_json()["answer"] is None


def test_json_contract_over_the_dev_questions_via_stdin(tmp_path: Path, cli) -> None:
    settings = make_settings(tmp_path)
    questions = [c["q"] for c in read_jsonl(DEV_QUESTIONS)]
    result = cli(["ask", "--json"], settings, stdin="\n".join(questions) + "\n\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(questions)
    source = SEED_ARTICLE.read_text(encoding="utf-8")
    for question, line in zip(questions, lines, strict=True):
        data = json.loads(line)
        assert list(data) == ["question", "answered", "answer", "citations"]
        assert data["question"] == question
        assert isinstance(data["answered"], bool)
        for n, citation in enumerate(data["citations"], start=1):
            assert list(citation) == ["n", "doc", "title", "paragraph", "start", "end", "text", "score"]
            assert citation["n"] == n and citation["doc"] == "cgtn-putin-nato-talks.txt"
            assert citation["title"] == "Putin wants 'immediate' talks with NATO on Russia's security"
            assert isinstance(citation["paragraph"], int) and isinstance(citation["score"], float)
            assert source[citation["start"] : citation["end"]] == citation["text"]
        if data["answered"]:
            assert data["answer"] in data["citations"][0]["text"]
        else:
            assert data["answer"] is None
    # The index was missing, so the first command built it and said so.
    assert "building it now" in result.stderr
    assert result.stderr.splitlines()[:2] == [  # plain status lines, no log format
        f"No index in {settings.index_dir} yet: building it now.",
        "Loading the model...",
    ]


def test_console_driven_through_stdin(tmp_path: Path, cli) -> None:
    settings = make_settings(tmp_path)
    script = "What did Biden warn?\n\nsources\nhelp\nWho won the 2018 World Cup?\nfeedback bad wrong quote\nexit\nnever read\n"
    result = cli([], settings, stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Answer: U.S. President Joe Biden last week warned Putin" in out
    assert "[1] Putin wants 'immediate' talks" in out and "paragraph 10" in out
    assert "Articles in the corpus:" in out and "CGTN" in out
    assert "The article doesn't mention" in out and "Closest passage (not an answer)" in out
    assert "Commands:" in out
    feedback = [json.loads(line) for line in (settings.data_dir / "feedback.jsonl").read_text().splitlines()]
    assert feedback[0]["vote"] == "down" and feedback[0]["question"] == "Who won the 2018 World Cup?"
    assert "\033[" not in out  # no colour when output is not a terminal


def test_ask_one_question_plain_text(tmp_path: Path, cli) -> None:
    result = cli(["ask", "Which news agency did Ryabkov talk to?"], make_settings(tmp_path))
    assert result.returncode == 0
    assert "RIA Novosti" in result.stdout.split("Sources")[0]


def test_eval_command_prints_the_table(tmp_path: Path, cli) -> None:
    result = cli(["eval", str(DEV_QUESTIONS)], make_settings(tmp_path))
    assert result.returncode == 0, result.stderr
    for label in ("answer accuracy", "hit@3", "abstention", "false abstentions", "precision", "<- chosen"):
        assert label in result.stdout


def test_eval_rejects_a_malformed_file(tmp_path: Path, cli) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "fine", "expect": null}\nnot json\n')
    result = cli(["eval", str(bad)], make_settings(tmp_path))
    assert result.returncode == 1 and "line 2" in result.stderr and "Traceback" not in result.stderr


def test_follow_up_uses_the_previous_turn(seed_service: StorybotService) -> None:
    session = Session()
    first = seed_service.ask("Who did Putin call later on Tuesday?", session)
    assert first.answered and "Macron" in (first.text or "")
    follow = seed_service.ask("What did he reiterate to him?", session)
    assert follow.answered and "reiterated the same demands" in (follow.text or "")


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Which agency did the deputy foreign minister speak to?", "RIA Novosti"),
        ("What did the U.S. president warn?", "sanctions like he's never seen"),
        ("Who is the French president?", "Emmanuel Macron"),
        ("What did the American president warn?", "sanctions like he's never seen"),  # "American" is "U.S."
    ],
)
def test_officials_are_found_by_their_title(seed_service: StorybotService, question: str, expected: str) -> None:
    answer = seed_service.ask(question)
    assert answer.answered and expected in (answer.text or "")
    assert answer.corrections  # the reader is told who the title was read as


def test_a_typo_of_a_common_word_is_not_taken_for_a_name(seed_service: StorybotService) -> None:
    answer = seed_service.ask("whta did biden warn")
    assert answer.answered and "sanctions like he's never seen" in (answer.text or "")


def test_an_ambiguous_title_is_not_guessed(seed_service: StorybotService) -> None:
    # Four presidents in the article: "the president" alone names none of them.
    assert not seed_service.ask("What did the president say?").corrections
