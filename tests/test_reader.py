"""The reader's training and loading code path, on a tiny set, so it cannot rot between real trainings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.answering.reader import (
    BUNDLED_READER_DIR,
    CONFIG_FILE,
    WEIGHTS_FILE,
    CrossEncoderReader,
    reader_text,
    reader_texts,
)
from bot.answering.scorer import FEATURES, SCORER_FILE, read_candidates
from bot.devtools.squad import SquadArticle, SquadQuestion
from bot.devtools.train_reader import Recipe, retrieval_groups, train_listwise, write_reader
from bot.errors import ModelLoadError

from .conftest import FakeEmbedder

ARTICLE = SquadArticle(
    title="Harbour",
    paragraphs=(
        "The harbour of Port Alder reopened on Monday. Repairs to the sea wall cost 2.4 million euros. "
        "Harbour master Ines Duarte said the northern pier would stay closed.",
        "Fishing families had waited since the storm in January. The regional government paid most of the bill.",
    ),
    questions=(
        SquadQuestion("1", "When did the harbour reopen?", ("on Monday",), (30,), 0),
        SquadQuestion("2", "Who paid for the repairs?", ("The regional government",), (56,), 1),
        SquadQuestion("3", "When was the harbour built?", (), (), 0),
    ),
)


def _groups(tmp_path: Path, context: str = "title", twins: bool = False) -> list:
    return retrieval_groups(
        {ARTICLE.file_name: ARTICLE.document_text()},
        [(q.question, list(q.answers) or None) for q in ARTICLE.questions],
        FakeEmbedder(),
        tmp_path,
        size=4,
        source="squad",
        context=context,
        twins=twins,
    )


def test_groups_hold_the_retrieved_candidates_labelled_by_the_answer(tmp_path: Path) -> None:
    groups = {g.question: g for g in _groups(tmp_path)}
    reopen = groups["When did the harbour reopen?"]
    assert len(reopen.texts) == 4 and sum(reopen.labels) >= 1
    assert all(("Monday" in t) == bool(label) for t, label in zip(reopen.texts, reopen.labels, strict=True))
    # An unanswerable question's candidates are all negatives.
    assert not any(groups["When was the harbour built?"].labels)


def test_a_twin_with_the_answer_cut_out_is_one_more_negative(tmp_path: Path) -> None:
    plain = {g.question: g for g in _groups(tmp_path / "plain")}
    twinned = {g.question: g for g in _groups(tmp_path / "twins", twins=True)}
    reopen = twinned["When did the harbour reopen?"]
    assert reopen.texts[:-1] == plain["When did the harbour reopen?"].texts
    assert reopen.texts[-1] == "Harbour | The harbour of Port Alder reopened." and reopen.labels[-1] == 0.0
    # "The regional government" opens its sentence: cutting it would leave a fragment, so no twin.
    assert twinned["Who paid for the repairs?"] == plain["Who paid for the repairs?"]
    assert twinned["When was the harbour built?"] == plain["When was the harbour built?"]  # nothing to cut


def test_an_epoch_reads_the_news_questions_as_often_as_the_recipe_says() -> None:
    import random

    from bot.devtools.train_reader import Group, epoch_order

    groups = [Group("q", ("t",), (1.0,), source) for source in ("squad", "news", "squad", "news")]
    order = epoch_order(groups, 3, random.Random(0))
    assert sorted(order) == [0, 1, 1, 1, 2, 3, 3, 3]
    assert sorted(epoch_order(groups, 1, random.Random(0))) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("text", "answers", "cut"),
    [
        ("She left the group in 2005, to go solo.", ["2005"], "She left the group, to go solo."),
        ("The talks, held in Geneva, were useful.", ["Geneva"], "The talks, held, were useful."),
        ("Rates rose by 0.5 points (to 6.1 percent) in March.", ["6.1 percent", "0.5"], "Rates rose points in March."),
        ("In 2005 she left the group.", ["2005"], None),  # the answer opens the sentence
        ("It cost 2.4 million euros.", ["2.4 million euros"], None),  # too little left
    ],
)
def test_answerless_cuts_every_answer_and_mends_the_punctuation(text: str, answers: list[str], cut: str | None) -> None:
    from bot.devtools.train_reader import answerless

    assert answerless(text, answers) == cut


def test_a_few_training_steps_write_a_reader_that_loads(tmp_path: Path) -> None:
    recipe = Recipe(steps=2, questions_per_step=2, max_length=32, seed=3)
    model, seconds = train_listwise(_groups(tmp_path / "groups"), recipe, lambda _: None)
    write_reader(model, tmp_path, recipe, {"test": True}, seconds)
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["max_length"] == 32
    # The frozen word embeddings are not shipped: they come from the bundled model at load time.
    assert (tmp_path / WEIGHTS_FILE).stat().st_size < 25_000_000
    reader = CrossEncoderReader(str(tmp_path), quantize=False)
    logits = reader.logits("When did the harbour reopen?", ["It reopened on Monday.", "Nothing here."])
    assert logits.shape == (2,) and np.isfinite(logits).all()
    assert reader.context == "title"  # as it was trained: answer time gives it the same text as training

    # A reader.json from before the title was given reads sentences alone; an unknown context is refused.
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    del config["context"]
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    assert CrossEncoderReader(str(tmp_path), quantize=False).context == "none"
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config | {"context": "paragraph"}))
    with pytest.raises(ModelLoadError, match="context"):
        CrossEncoderReader(str(tmp_path), quantize=False)


def test_training_texts_carry_the_article_title_only_for_a_title_reader(tmp_path: Path) -> None:
    with_title = _groups(tmp_path / "t", "title")
    alone = _groups(tmp_path / "n", "none")
    body = [t for g in with_title for t in g.texts if not t.startswith(("Headline:", "Published"))]
    assert body and all(t.startswith("Harbour | ") for t in body)
    assert not any("Harbour | " in t for g in alone for t in g.texts)


class RecordingReader:
    """A reader that records what it is given (the scorer's side of the contract), scoring by length."""

    name = "recording"

    def __init__(self, context: str) -> None:
        self.context = context
        self.read: list[str] = []

    def logits(self, question: str, texts: Sequence[str]) -> np.ndarray:
        self.read += texts
        return np.asarray([float(len(t)) for t in texts], dtype=np.float32)


@pytest.mark.parametrize("context", ["title", "none"])
def test_answer_time_gives_the_reader_what_training_gave_it(seed_service, context: str) -> None:
    retrieval = seed_service.retriever.search("What did Biden warn?")
    reader = RecordingReader(context)
    documents = seed_service.index.documents
    pool, rows = read_candidates(retrieval, reader, documents)
    title = documents[pool[0].sentence.doc].title
    expected = reader_texts(context, [s.sentence for s in pool], documents)
    assert reader.read == expected and len(rows) == len(pool)
    assert any(t.startswith(f"{title} | ") for t in reader.read) == (context == "title")


def test_the_shipped_reader_has_its_scorer_and_card() -> None:
    assert (BUNDLED_READER_DIR / WEIGHTS_FILE).stat().st_size <= 25 * 1024 * 1024
    scorer = json.loads((BUNDLED_READER_DIR / SCORER_FILE).read_text())
    assert scorer["features"] == list(FEATURES) and 0.0 < scorer["threshold"] < 1.0
    assert (BUNDLED_READER_DIR / "MODEL_CARD.md").exists()


def test_header_lines_read_with_their_label() -> None:
    assert reader_text("CGTN", "outlet").endswith(": CGTN") and reader_text("A sentence.", "body") == "A sentence."
    # A header line is not prefixed with the title: its label says what it is.
    assert reader_text("CGTN", "outlet", "A headline") == reader_text("CGTN", "outlet")


def test_swapped_questions_ask_of_another_name_of_the_same_article() -> None:
    import random

    from bot.devtools.train_reader import swapped_questions

    article = SquadArticle(
        title="Harbour",
        paragraphs=(
            "The harbour of Port Alder reopened on Monday. Repairs were led by Ines Duarte and paid for by "
            "the Regional Council. Offstage, the mayor of Port Alder thanked Ines Duarte.",
        ),
        questions=(
            SquadQuestion("1", "Who led the repairs in Port Alder?", ("Ines Duarte",), (57,), 0),
            SquadQuestion("2", "When was the harbour built?", (), (), 0),
        ),
    )
    made = swapped_questions(article, 1.0, random.Random(0))
    # Only the answerable question is swapped; its name becomes another name of the article, never the
    # answer itself, and a capital that only opens a sentence ("Offstage") is not taken for a name.
    assert len(made) == 1 and made[0].startswith("Who led the repairs in ") and made[0].endswith("?")
    swapped_in = made[0].removeprefix("Who led the repairs in ").removesuffix("?")
    assert swapped_in in article.paragraphs[0] and swapped_in not in {"Port Alder", "Ines Duarte", "Offstage"}
    assert swapped_questions(article, 0.0, random.Random(0)) == []
