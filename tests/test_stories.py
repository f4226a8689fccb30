"""Stories: keys from file names, the catalogue (newest first, by key, by words) and questions within one story."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import pytest

from bot.answering.answer import Answer
from bot.answering.stories import Story, StoryCatalogue, parse_date
from bot.cli import main
from bot.console import Style, run_chat
from bot.errors import UnknownStoryError
from bot.indexing.corpus import story_key, story_keys
from bot.service import StorybotService

from .conftest import DEV_QUESTIONS, FIXTURE_CORPUS, SEED_ARTICLE, CliRunner, make_settings, read_jsonl
from .helpers import scripted_input

SEED_KEY = "cgtn-putin-nato-talks"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("cgtn-putin-nato-talks.txt", "cgtn-putin-nato-talks"),
        ("chess_final.md", "chess_final"),
        ("x.txt", "x"),
        ("a" * 64 + ".md", "a" * 64),
        ("a" * 65 + ".md", None),  # over Telegram's 64 characters
        ("my story.txt", None),
        ("a.b.txt", None),  # the dot left in the stem
        (".txt", None),
        (".hidden.txt", None),
        ("café.txt", None),  # Telegram's payload is ASCII letters and digits only
        ("tab\there.txt", None),
        ("new\nline.txt", None),
        ("\x1b[31mred.txt", None),
        ("ключ.txt", None),
    ],
)
def test_a_story_key_is_the_file_name_without_extension_when_telegram_safe(name: str, key: str | None) -> None:
    assert story_key(name) == key


def test_files_sharing_a_key_get_none_and_each_problem_is_one_plain_line() -> None:
    keys, problems = story_keys(["a.txt", "a.md", "b c.txt", "ok.txt", "\x1b[2Jodd name.txt"])
    assert keys == {"ok.txt": "ok"}
    assert len(problems) == 3
    assert all("\n" not in line and "\x1b" not in line for line in problems)
    collision = next(line for line in problems if "a.md" in line)
    assert "a.txt" in collision and "'a'" in collision
    assert any("b c.txt" in line for line in problems)


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("09:01, 15-Dec-2021", datetime.date(2021, 12, 15)),
        ("18 November 2024", datetime.date(2024, 11, 18)),
        ("3 March 2025", datetime.date(2025, 3, 3)),
        ("2024-06-12T10:00", datetime.date(2024, 6, 12)),
        ("December 5, 2026", datetime.date(2026, 12, 5)),
        ("Sept. 9th, 2020", datetime.date(2020, 9, 9)),
        ("31 February 2024", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_header_dates_are_read_when_they_give_a_day(text: str | None, date: datetime.date | None) -> None:
    assert parse_date(text) == date


CATALOGUE = StoryCatalogue(
    [
        ("old.txt", "Old news about the harbour", "Gazette", "1 May 2001"),
        ("new.txt", "New tram line approved", "Herald", "2 May 2024"),
        ("undated.txt", "A story without a date", None, None),
        ("mid.md", "Harbour reopens after the storm", "Coast Gazette", "2010-01-01"),
        ("bad name.txt", "Unkeyed", None, None),
    ]
)


def test_the_catalogue_lists_keyed_stories_newest_first_undated_last() -> None:
    assert [s.key for s in CATALOGUE.stories] == ["new", "mid", "old", "undated"]
    assert CATALOGUE.get("mid") == Story(
        "mid", "Harbour reopens after the storm", "Coast Gazette", "2010-01-01", "mid.md"
    )
    assert CATALOGUE.of_document("bad name.txt") is None and len(CATALOGUE.problems) == 1


@pytest.mark.parametrize("key", ["nwe", "", " ", "bad name", "x" * 500, "\x1b[31m", "NEW"])
def test_an_unknown_key_says_so_in_one_line_with_the_closest_keys(key: str) -> None:
    with pytest.raises(UnknownStoryError) as raised:
        CATALOGUE.get(key)
    message = str(raised.value)
    assert message.startswith("No story") and "\n" not in message and "\x1b" not in message and len(message) < 200
    assert raised.value.exit_code == 2
    assert all(CATALOGUE.get(close) for close in raised.value.closest)
    if key == "nwe":
        assert raised.value.closest[0] == "new" and "Closest: new" in message


def test_story_search_finds_words_of_headline_outlet_and_key() -> None:
    assert [s.key for s in CATALOGUE.search("harbour")] == ["mid", "old"]  # both hold it: newest first
    assert [s.key for s in CATALOGUE.search("harbour storm")][0] == "mid"  # holds both words
    assert [s.key for s in CATALOGUE.search("herald")] == ["new"]
    assert [s.key for s in CATALOGUE.search("trams")] == ["new"]  # by stem
    assert CATALOGUE.search("the of") == [] and CATALOGUE.search("") == [] and CATALOGUE.search("zebra") == []


# -- through the service, over the seed and the fixture articles --------------------------------------------


def test_the_service_lists_every_article_as_a_story_newest_first(fixture_service: StorybotService) -> None:
    stories = fixture_service.stories()
    assert len(stories) == len(fixture_service.documents)
    assert stories[0].key == "harbour-reopens" and stories[-1].key == SEED_KEY
    seed = fixture_service.story(SEED_KEY)
    assert seed.doc == "cgtn-putin-nato-talks.txt" and seed.outlet == "CGTN" and "Putin" in seed.title
    assert fixture_service.search_stories("chess")[0].key == "chess-final"
    with pytest.raises(UnknownStoryError, match="Closest: cgtn-putin-nato-talks"):
        fixture_service.story("putn-nato-talks")


def test_a_scoped_question_is_answered_only_from_its_story(fixture_service: StorybotService) -> None:
    # The harbour has its own story; asked within the chess story, nothing of the harbour's may be quoted.
    for key in ("chess-final", SEED_KEY, "harbour-reopens"):
        doc = fixture_service.story(key).doc
        for question in ("When did the harbour reopen?", "Who won?", "What did Putin say?"):
            answer = fixture_service.ask(question, story=key)
            assert answer.citations and {c.doc for c in answer.citations} == {doc}, (key, question)


def test_a_scoped_refusal_names_this_story(fixture_service: StorybotService) -> None:
    # Putin is in the archive, but not in the chess story.
    answer = fixture_service.ask("What did Putin say about Lev Antonov?", story="harbour-reopens")
    assert not answer.answered
    assert answer.shown.reason is not None and answer.shown.reason.startswith("This story doesn't mention")
    unscoped = fixture_service.ask("What did Zelensky say?")
    assert unscoped.shown.reason == "The article doesn't mention Zelensky."
    assert fixture_service.ask("What did Zelensky say?", story=SEED_KEY).shown.reason == (
        "This story doesn't mention Zelensky."
    )


def test_an_unknown_story_is_an_error_not_an_answer(fixture_service: StorybotService) -> None:
    for key in ("nope", "", "../etc/passwd", "x" * 1000):
        with pytest.raises(UnknownStoryError):
            fixture_service.ask("What did Putin say?", story=key)


def test_stories_appear_in_json_only_when_there_are_some() -> None:
    plain = Answer(question="q", answered=False, text=None, citations=[])
    assert list(plain.to_json()) == ["question", "answered", "answer", "citations"]
    asking = Answer(question="q", answered=False, text=None, citations=[], stories=[CATALOGUE.get("new")])
    assert asking.to_json()["stories"] == [{"key": "new", "title": "New tram line approved"}]


def test_within_its_story_a_question_is_answered_as_by_the_story_alone(
    seed_service: StorybotService, fixture_service: StorybotService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The archive around a story must not change its answers: retrieval, weights and the reader's candidates
    # are the story's own. FAISS's nearest neighbours are also taken away, as in a large archive where all
    # of them can belong to other stories.
    index = fixture_service.index
    monkeypatch.setattr(index.chunk_vectors, "search", lambda query, k: [])
    monkeypatch.setattr(index.sentence_vectors, "search", lambda query, k: [])
    questions = [case["q"] for case in read_jsonl(DEV_QUESTIONS)][::3]  # a spread of kinds, refusals too
    for question in questions:
        alone, scoped = seed_service.ask(question), fixture_service.ask(question, story=SEED_KEY)
        assert (scoped.answered, scoped.text) == (alone.answered, alone.text), question
        assert scoped.trace.confidence == pytest.approx(alone.trace.confidence, abs=1e-5), question
        assert [c.to_json() for c in scoped.citations] == [c.to_json() for c in alone.citations], question
        assert not alone.stories and not scoped.stories  # one story: nothing to ask back


# -- the command line and the console ------------------------------------------------------------------------


def _two_story_corpus(tmp_path: Path) -> Path:
    """The seed, the chess and harbour stories, and two files that get no key."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEED_ARTICLE, corpus)
    for name in ("chess-final.md", "harbour-reopens.md"):
        shutil.copy(FIXTURE_CORPUS / name, corpus)
    (corpus / "bad name.txt").write_text("Odd file\n\nA story whose file name has a space in it.\n", encoding="utf-8")
    return tmp_path


def test_stories_and_story_keys_on_the_command_line(tmp_path: Path, cli: CliRunner) -> None:
    settings = make_settings(_two_story_corpus(tmp_path))
    listed = cli(["stories", "--json"], settings)
    assert listed.returncode == 0
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["key"] for r in rows] == ["harbour-reopens", "chess-final", SEED_KEY]  # newest first
    assert all(list(r) == ["key", "title", "outlet", "date"] for r in rows)
    assert listed.stderr.count("No story key for bad name.txt") == 1  # named once, as the index was built
    assert "Some corpus files have no story key" in listed.stderr
    plain = cli(["stories"], settings)
    assert plain.returncode == 0 and len(plain.stdout.splitlines()) == 3 and "[chess-final]" in plain.stdout
    # Once the index is built, the stories are read from it alone: no model to wait for.
    assert "Loading the model" in listed.stderr and "Loading the model" not in plain.stderr

    scoped = cli(["ask", "--json", "--story", "chess-final", "Who won?"], settings)
    assert scoped.returncode == 0
    assert {c["doc"] for c in json.loads(scoped.stdout)["citations"]} == {"chess-final.md"}

    unknown = cli(["ask", "--story", "chess-finale", "Who won?"], settings)
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert 'No story "chess-finale". Closest: chess-final' in unknown.stderr
    assert "Loading the model" not in unknown.stderr  # said at once
    as_json = cli(["ask", "--json", "--story", "chess-finale", "Who won?"], settings)
    assert as_json.returncode == 2
    error = json.loads(as_json.stdout)
    assert error["answered"] is False and error["error"].startswith('No story "chess-finale". Closest: chess-final')
    for key in ("", "bad name", "\x1b[31mx"):
        odd = cli(["ask", "--story", key, "Who won?"], settings)
        assert odd.returncode == 2 and "No story" in odd.stderr and "\x1b" not in odd.stderr, key

    lines = [
        {"q": "Who won?", "story": "chess-final"},
        {"q": "Who won?", "story": "nope"},
        {"q": "Who won?", "story": 5},
        {"q": "Who won?", "story": ["chess-final"]},
        {"q": "When did the harbour reopen?", "story": "harbour-reopens"},
    ]
    batch = cli(["ask", "--json"], settings, stdin="\n".join(json.dumps(line) for line in lines))
    assert batch.returncode == 0
    out = [json.loads(line) for line in batch.stdout.splitlines()]
    assert len(out) == len(lines)
    assert {c["doc"] for c in out[0]["citations"]} == {"chess-final.md"} and "error" not in out[0]
    assert out[1]["error"].startswith('No story "nope".') and out[1]["answered"] is False
    assert '"story" is not a story key' in out[2]["error"] and '"story" is not a story key' in out[3]["error"]
    assert {c["doc"] for c in out[4]["citations"]} == {"harbour-reopens.md"}

    chat = cli(["--story", "nope"], settings, stdin="Who won?\n")
    assert chat.returncode == 2 and 'No story "nope"' in chat.stderr and "Loading the model" not in chat.stderr


def test_the_console_story_command_lists_searches_picks_and_leaves(fixture_service: StorybotService) -> None:
    lines = iter(
        [
            "story",
            "2",  # the second newest story
            "Who won?",
            "story harbour",  # one match: picked at once
            "When did it reopen?",
            "story a",  # no word to search for
            "story zebra",
            "story all",
            "What did Putin say?",
        ]
    )
    said: list[str] = []

    run_chat(fixture_service, scripted_input(lines), said.append, Style(enabled=False))
    text = "\n".join(said)
    assert "Asking about every story." in said[1] and "Newest stories:" in said[1]
    assert "  1. Storm-hit harbour" in said[1] and "  2. Teenager wins national chess final" in said[1]
    assert said[2].startswith("Asking about: Teenager wins") and "[chess-final]" in said[2]
    assert "chess-final.md" in said[3] and "harbour-reopens.md" not in said[3]
    assert said[4].startswith("Asking about: Storm-hit harbour")
    assert "harbour-reopens.md" in said[5] and "chess-final.md" not in said[5]
    assert "No story's headline holds 'a'" in said[6] and "No story's headline holds 'zebra'" in said[7]
    assert said[8] == "Asking about every story."
    assert "cgtn-putin-nato-talks.txt" in said[9]
    assert "Traceback" not in text


def test_the_console_opens_within_a_story(fixture_service: StorybotService) -> None:
    said: list[str] = []
    lines = iter(["When did the harbour reopen?", "story"])

    run_chat(
        fixture_service,
        scripted_input(lines),
        said.append,
        Style(enabled=False),
        story=fixture_service.story("chess-final"),
    )
    assert "ask about: Teenager wins national chess final" in said[0] and "Putin" not in said[0]
    assert "harbour-reopens.md" not in said[1]
    assert said[2].startswith("Asking about: Teenager wins")


def test_help_names_the_stories_command_and_the_story_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "    stories " in out and "--story KEY" in out
    with pytest.raises(SystemExit):
        main(["ask", "--help"])
    out = capsys.readouterr().out
    assert "--story KEY" in out and '"story": "key"' in out


# -- asking back when several stories fit -------------------------------------------------------------------


def test_a_question_that_fits_several_stories_is_asked_back(fixture_service: StorybotService) -> None:
    # Every article has a date line: "the article" names none of them.
    answer = fixture_service.ask("When was the article published?")
    assert not answer.answered and answer.text is None and answer.shown.reason == "Which story do you mean?"
    keys = [story.key for story in answer.stories]
    assert 2 <= len(keys) <= 3 and len(set(keys)) == len(keys)
    assert list(answer.to_json()) == ["question", "answered", "answer", "citations", "stories"]
    assert answer.to_json()["stories"][0] == {"key": keys[0], "title": fixture_service.story(keys[0]).title}
    # Picking one answers from it alone, without asking again.
    picked = fixture_service.ask("When was the article published?", story=keys[1])
    assert picked.answered and not picked.stories
    assert {c.doc for c in picked.citations} == {fixture_service.story(keys[1]).doc}


def test_a_question_that_names_its_story_is_answered_as_before(fixture_service: StorybotService) -> None:
    # Names only one article has: the question picks its story itself.
    for question in (
        "When did the harbour in Port Alder reopen?",
        "What did Biden warn?",
        "Who did Amira Haddad beat?",
    ):
        answer = fixture_service.ask(question)
        assert not answer.stories and answer.answered, question


def test_the_console_offers_a_numbered_choice_and_a_number_asks_again_within_it(
    fixture_service: StorybotService,
) -> None:
    said: list[str] = []
    lines = iter(["When was the article published?", "2"])

    run_chat(fixture_service, scripted_input(lines), said.append, Style(enabled=False))
    assert said[1].startswith("Which story do you mean?\n  1. ") and "  2. " in said[1]
    second = said[1].splitlines()[2]
    key = second.rsplit("[", 1)[1].rstrip("]")
    assert said[2] == "Type its number to ask about that story alone."
    assert said[3].startswith("Asking about: ") and f"[{key}]" in said[3]
    assert said[4].startswith("Answer: ") and fixture_service.story(key).doc in said[4]
