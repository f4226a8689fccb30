"""The reader's training and loading code path, on a tiny set, so it cannot rot between real trainings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bot.answering.reader import BUNDLED_READER_DIR, CONFIG_FILE, WEIGHTS_FILE, CrossEncoderReader, reader_text
from bot.answering.scorer import FEATURES, SCORER_FILE
from bot.devtools.squad import SquadArticle, SquadQuestion
from bot.devtools.train_reader import Recipe, retrieval_groups, train_listwise, write_reader

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


def _groups(tmp_path: Path) -> list:
    return retrieval_groups(
        {ARTICLE.file_name: ARTICLE.document_text()},
        [(q.question, list(q.answers) or None) for q in ARTICLE.questions],
        FakeEmbedder(),
        tmp_path,
        size=4,
        source="squad",
    )


def test_groups_hold_the_retrieved_candidates_labelled_by_the_answer(tmp_path: Path) -> None:
    groups = {g.question: g for g in _groups(tmp_path)}
    reopen = groups["When did the harbour reopen?"]
    assert len(reopen.texts) == 4 and sum(reopen.labels) >= 1
    assert all(("Monday" in t) == bool(label) for t, label in zip(reopen.texts, reopen.labels, strict=True))
    # An unanswerable question's candidates are all negatives.
    assert not any(groups["When was the harbour built?"].labels)


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


def test_the_shipped_reader_has_its_scorer_and_card() -> None:
    assert (BUNDLED_READER_DIR / WEIGHTS_FILE).stat().st_size <= 25 * 1024 * 1024
    scorer = json.loads((BUNDLED_READER_DIR / SCORER_FILE).read_text())
    assert scorer["features"] == list(FEATURES) and 0.0 < scorer["threshold"] < 1.0
    assert (BUNDLED_READER_DIR / "MODEL_CARD.md").exists()


def test_header_lines_read_with_their_label() -> None:
    assert reader_text("CGTN", "outlet").endswith(": CGTN") and reader_text("A sentence.", "body") == "A sentence."
