"""Hostile questions and `ask` lines: one line, one answer; nothing reaches the terminal raw; bounded cost."""

from __future__ import annotations

import io
import json
import random
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import cli
from bot.answering import lexical
from bot.answering.intake import EMPTY, problem_before_loading, question_too_long
from bot.answering.retrieval import RARE_WORD_LOOKUPS
from bot.config import BUNDLED_MODEL
from bot.console import Style, answer_batch, parse_batch_line, run_chat
from bot.indexing.terms import normalize_word
from bot.service import StorybotService
from bot.terminal import printable

from .conftest import SEED_ARTICLE, FakeEmbedder, make_settings

SOURCE = SEED_ARTICLE.read_text(encoding="utf-8")


class WordListEmbedder(FakeEmbedder):
    """The fake embedder with a common-word list, so the rare-word check runs as with the real model."""

    common_words = frozenset(
        "".join(random.Random(n).choice(string.ascii_lowercase) for _ in range(6)) for n in range(3000)
    ) | frozenset("what did say warn talks security people week".split())


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> StorybotService:
    return StorybotService.load(make_settings(tmp_path_factory.mktemp("hostile")), WordListEmbedder())


def _batch(service: StorybotService, lines: list[str], as_json: bool = True) -> list[str]:
    out: list[str] = []
    tally = answer_batch(lambda: service, service.settings, lines, out.append, as_json, Style(enabled=False))
    assert tally.lines == len(out) == sum(1 for line in lines if line.strip())
    return out


# -- printable: one small pure function --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text", "plain text"),
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b]0;owned title\x07after", "after"),
        ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("bell\x07 back\x08space\r", "bell backspace"),
        ("\x9b31m8-bit csi", "8-bit csi"),
        ("lone \x1b", "lone "),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("\u202eevil\u202c", "evil"),
        ("\ud800 surrogate", "\ufffd surrogate"),
        ("漢字 é 😀", "漢字 é 😀"),
    ],
)
def test_printable(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_printable_on_one_line() -> None:
    assert printable("a\nb\x1b[2Jc", keep_newlines=False) == "a bc"


@given(st.text())
def test_printable_leaves_no_control_characters(text: str) -> None:
    shown = printable(text)
    assert not any(ord(ch) < 32 and ch not in "\t\n" or 0x7F <= ord(ch) <= 0x9F for ch in shown)
    shown.encode("utf-8")
    assert printable(shown) == shown


def test_escape_sequences_are_no_part_of_the_question(service: StorybotService) -> None:
    # A newcomer's colour code came back inside the refusal as a word ("31mRED"), on every front end.
    asked = service.ask("What did \x1b[31mBiden\x1b[0m warn?")
    assert asked.question == "What did Biden warn?"
    assert asked.answered and asked.citations
    refused = service.ask("\x1b[31mRED\x1b[0m zebra quantum?")
    words = " ".join(filter(None, [refused.question, refused.text, refused.shown.reason]))
    assert "\x1b" not in words and "31m" not in words and "[0m" not in words


def test_the_check_sees_the_question_the_answer_reads(service: StorybotService) -> None:
    # `storybot ask` checks each line before asking it: the check must judge the cleaned text the answer
    # reads, not the raw line (an escape-only line is empty, not "not a question").
    colour_only = "\x1b[31m\x1b[0m  \x1b[2J"
    assert service.check(colour_only) == EMPTY == problem_before_loading(colour_only, 500)
    assert service.ask(colour_only).shown.reason == EMPTY
    for raw in ["What did \x1b[31mBiden\x1b[0m warn?", "\x1b[5mQue dit\x1b[0m Poutine sur la France ?"]:
        clean = printable(raw)
        assert service.check(raw) == service.check(clean)
        assert problem_before_loading(raw, 500) == problem_before_loading(clean, 500)


# -- the seven reproductions of issue 8 that concern input -------------------------------------------


def test_lone_surrogate_and_deep_json_do_not_end_the_batch(service: StorybotService) -> None:
    # Issue 8, reproduction 4: both ended a whole `ask` batch with rc 1.
    nested = '{"q": ' + "[" * 100_000 + "]" * 100_000 + "}"
    lines = ["What did Biden warn?", '{"q": "\\ud800 Who?"}', "[" * 100_000, nested, "", "Who did Putin call?"]
    out = _batch(service, lines)
    objects = [json.loads(line) for line in out]
    assert all(line.encode("utf-8") for line in out)
    assert objects[1]["question"] == "\ufffd Who?" and "error" not in objects[1]
    assert objects[3]["error"] == "the line is JSON nested too deeply to read"
    assert objects[3] == {**objects[3], "answered": False, "answer": None, "citations": []}
    assert objects[-1]["question"] == "Who did Putin call?"


def test_an_exception_while_answering_is_an_error_line(service: StorybotService, monkeypatch) -> None:
    real_ask = service.ask

    def ask(question: str, session=None):
        if "boom" in question:
            raise TypeError("simulated bug")
        return real_ask(question, session)

    monkeypatch.setattr(service, "ask", ask)
    out = _batch(service, ["What did boom say?", "What did Biden warn?"])
    first = json.loads(out[0])
    assert set(first) == {"question", "answered", "answer", "citations", "error"}
    assert "TypeError" in first["error"] and not first["answered"]
    assert json.loads(out[1])["citations"]
    plain = _batch(service, ["What did boom \x1b[31m say?", "What did Biden warn?"], as_json=False)
    assert (
        plain[0].startswith("Q: What did boom") and "could not answer this line" in plain[0] and "\x1b" not in plain[0]
    )


def test_question_length_limit_in_ask_and_console(service: StorybotService) -> None:
    # Issue 8, reproduction 5: `ask` and the console had no limit (Telegram had 500).
    long = "What did Biden warn " * 40
    message = question_too_long(long, 500)
    assert message and "please keep it under 500" in message
    out = json.loads(_batch(service, [long])[0])
    assert out["error"] == message and out["answered"] is False
    plain = _batch(service, [long], as_json=False)[0]
    assert message in plain and len(plain) < 400  # the question echoed shortened
    said: list[str] = []
    lines = iter([long, "exit"])
    run_chat(service, lambda prompt: next(lines), said.append, Style(enabled=False))
    assert message in said
    assert question_too_long("x" * 500, 500) is None


def test_escape_sequences_are_not_echoed(service: StorybotService) -> None:
    # Issue 8, reproduction 7: plain `ask` and refusal reasons echoed terminal escapes raw.
    hostile = "What did \x1b]0;pwned\x07Biden \x1b[2J warn about \x1b[31mZelensky\x1b[0m?"
    for line in _batch(service, [hostile, "Who won the 2018 \x1b[5mWorld Cup\x1b[0m?"], as_json=False):
        assert "\x1b" not in line and "\x07" not in line
    said: list[str] = []
    lines = iter([hostile, "exit"])
    run_chat(service, lambda prompt: next(lines), said.append, Style(enabled=True))
    assert all("\x1b]" not in s and "\x1b[2J" not in s and "\x07" not in s for s in said)


def test_cli_ask_batch_exits_0_with_one_line_per_question(tmp_path: Path, monkeypatch, capsys) -> None:
    settings = make_settings(tmp_path)
    for name, value in {
        "CORPUS_DIR": settings.corpus_dir,
        "INDEX_DIR": settings.index_dir,
        "DATA_DIR": settings.data_dir,
    }.items():
        monkeypatch.setenv(f"STORYBOT_{name}", str(value))
    monkeypatch.setattr(
        "bot.service.SentenceTransformerEmbedder", lambda name: FakeEmbedder(dimension=384, name=BUNDLED_MODEL)
    )
    monkeypatch.setattr("bot.logs.configure_logging", lambda *args, **kwargs: None)  # keep other tests' logging
    stdin = (
        'What did Biden warn?\n{"q": "\\ud800 x"}\n'
        + '{"q": '
        + "[" * 50_000
        + "\n\n"
        + "x" * 2000
        + "\nWho did Putin call?\n"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert cli.main(["ask", "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5 and [json.loads(line)["answered"] is False for line in out][2:4] == [True, True]


# -- property-based: any question, any line -----------------------------------------------------------

_questions = st.lists(
    st.text(max_size=20) | st.sampled_from(["\x1b[31m", "\ud800", "Biden", "warn", "U.S.", " ", "\n", "?"]),
    max_size=25,
).map("".join)


# Each example is one real reader pass; 25 keep the sweep's reach at a third of its old cost (issue 19).
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=_questions)
def test_any_question_gets_an_answer_or_a_refusal(service: StorybotService, question: str) -> None:
    item = parse_batch_line(question)
    if item is None:
        assert not question.strip()
        return
    answer = service.ask(item.question)
    assert answer.answered or answer.shown.reason
    for citation in answer.citations:
        assert SOURCE[citation.start : citation.end] == citation.text
    json.dumps(answer.to_json(), ensure_ascii=False).encode("utf-8")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["q", "session", "x"]), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(_json_values, min_size=1, max_size=4))
def test_any_json_lines_get_one_valid_json_object_each(service: StorybotService, values: list[object]) -> None:
    lines = [json.dumps(value) for value in values]
    for line in _batch(service, lines):
        data = json.loads(line.encode("utf-8"))
        assert {"question", "answered", "answer", "citations"} <= set(data)


# -- cost: linear in the question's length, counted rather than timed ---------------------------------


def _work(service: StorybotService, question: str, monkeypatch) -> tuple[int, int]:
    """(choices scanned by fuzzy matching, rare-word lookups) to analyse one question."""
    scanned = 0
    lookups = 0
    real_extract = lexical.process.extractOne
    rare = service.retriever._rare
    real_is_rare = rare.is_rare

    def extract(query, choices, **kwargs):
        nonlocal scanned
        scanned += len(choices)
        return real_extract(query, choices, **kwargs)

    def is_rare(word: str) -> bool:
        nonlocal lookups
        lookups += 1
        return real_is_rare(word)

    monkeypatch.setattr(lexical.process, "extractOne", extract)
    monkeypatch.setattr(rare, "is_rare", is_rare)
    service.retriever.search(question)  # straight to the answering code: no length limit on the way
    monkeypatch.undo()
    return scanned, lookups


def test_question_cost_grows_linearly(service: StorybotService, monkeypatch) -> None:
    # Issue 8, reproduction 5: a 30,000-character line of made-up words took 15 s: every distinct unknown
    # word was matched against the model's 30,000-word vocabulary.
    rng = random.Random(8)

    def made_up(length: int) -> str:
        text = " ".join(
            "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(5, 9))) for _ in range(length // 6)
        )
        return text[:length]

    small, small_lookups = _work(service, made_up(1_000), monkeypatch)
    large, large_lookups = _work(service, made_up(30_000), monkeypatch)
    assert small_lookups <= RARE_WORD_LOOKUPS and large_lookups <= RARE_WORD_LOOKUPS
    assert large <= 35 * small  # 30 times the length, about 30 times the work


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(terms=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=4))
def test_any_term_is_a_valid_index_query(service: StorybotService, terms: list[str]) -> None:
    # A term the index's tokenizer splits ("serbian/montenegrin") once made an FTS5 phrase query, which
    # the index refused: the question was answered "the index is damaged".
    metadata = service.index.metadata
    for column in ("words", "stems", "topics"):
        assert isinstance(metadata.documents_with(column, terms), frozenset)
    assert isinstance(metadata.bm25_chunks(terms, 5), list)


def test_every_country_name_and_demonym_is_one_word_a_question_can_hold() -> None:
    # The alias table is data: checked whole without the model. Each form is one normalised word, and each
    # points only at forms that point back (Finland <-> Finnish), so a question may use any of them.
    aliases = lexical.place_aliases()
    forms = sorted(set(aliases) | {f for v in aliases.values() for f in v})
    assert "serbian" in forms and "montenegrin" in forms  # a demonym list ("Serbian/Montenegrin") is split
    for form in forms:
        assert form and " " not in form and normalize_word(form) == form, form
        assert all(form in aliases.get(other, ()) for other in aliases.get(form, ())), form


def test_a_seeded_sample_of_country_names_and_demonyms_is_answered_or_refused(service: StorybotService) -> None:
    aliases = lexical.place_aliases()
    forms = sorted(set(aliases) | {f for v in aliases.values() for f in v})
    for form in random.Random(19).sample(forms, 20):
        answer = service.ask(f"What did {form.title()} say?")
        assert answer.answered or answer.shown.reason, form


def test_words_the_index_tokenizer_reads_otherwise_are_left_out_not_reported_as_damage(
    service: StorybotService,
) -> None:
    # U+19B0 is a letter to Python's Unicode tables and a separator to SQLite's (Unicode 6.1): the one
    # term FTS5 refuses is left out, the others still find their articles.
    metadata = service.index.metadata
    assert metadata.documents_with("words", ["x\u19b0y", "biden"]) == metadata.documents_with("words", ["biden"])
    assert metadata.bm25_chunks(["x\u19b0y", "biden"], 3) == metadata.bm25_chunks(["biden"], 3)
    assert metadata.documents_with("words", ["x\u19b0y"]) == frozenset()
