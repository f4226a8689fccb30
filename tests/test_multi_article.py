"""Many articles in one corpus: answers come from the article the question is about, never a stranger."""

from __future__ import annotations

from pathlib import Path

from bot.console import format_sources
from bot.evaluation import load_jsonl, run_eval, summarise
from bot.indexing.embedding import SentenceTransformerEmbedder
from bot.service import StorybotService

from .conftest import DATA, make_settings, read_jsonl

FIXTURE_QUESTIONS = read_jsonl(DATA / "fixture_questions.jsonl")


def test_answers_come_from_the_article_asked_about(fixture_service: StorybotService) -> None:
    # A tune set: the floors say answers stay with their article among five; which ones pass is not fixed.
    cases = [c for c in FIXTURE_QUESTIONS if c["expect"]]
    from_its_article = sum(
        1
        for case in cases
        if (answer := fixture_service.ask(case["q"])).answered and answer.citations[0].doc == case["doc"]
    )
    assert from_its_article >= 0.85 * len(cases), f"{from_its_article}/{len(cases)}"


def test_fixture_question_floors(fixture_service: StorybotService) -> None:
    summary = summarise(run_eval(fixture_service, load_jsonl(DATA / "fixture_questions.jsonl")))
    assert summary.hits >= 0.9 * summary.answerable, summary
    assert summary.right >= 0.85 * summary.answerable, summary
    assert summary.abstained >= 0.7 * summary.unanswerable, summary


def test_sources_list_every_article(fixture_service: StorybotService) -> None:
    listing = format_sources(fixture_service)
    for title in ("Putin wants", "Storm-hit harbour", "City library", "Teenager wins national chess final"):
        assert title in listing
    assert "Coast Gazette" in listing and "Midland Herald" in listing


def test_names_from_two_stories_are_weighed_not_refused_unread(fixture_service: StorybotService) -> None:
    # "Putin" is only in the seed and "harbour" is the harbour article's title word: no article holds both.
    # The question is still read over every article, and the scorer, not a rule, refuses it, saying why.
    retrieval = fixture_service.retriever.search("What did Putin say about the harbour?")
    assert retrieval.question.documents is None and retrieval.question.unrelated
    assert retrieval.sentences
    answer = fixture_service.ask("What did Putin say about the harbour?")
    assert not answer.answered and answer.shown.reason == "No single article mentions Putin and harbour."


def test_a_word_one_article_uses_often_is_not_its_topic(
    tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    # Only the first article uses "name", many times; the question also names the second article's title.
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "pets.txt").write_text(
        "Family pets\n\nThe name Rex is common. Each name is chosen by the family, and a name can change.\n",
        encoding="utf-8",
    )
    (corpus / "solar.txt").write_text(
        "Solar power\n\nThe Sunfield plant stores solar heat in molten salt for use at night.\n", encoding="utf-8"
    )
    service = StorybotService.load(make_settings(tmp_path, corpus), real_embedder)
    question = service.retriever.analyse("What is the name of the solar plant?")
    assert question.unrelated == () and question.documents == frozenset({"solar.txt"})


def test_a_sentence_republished_in_many_articles_is_read_once(
    tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    wire = "The central bank raised its main interest rate to 5.25 percent on Thursday."
    for n in range(6):
        (corpus / f"copy-{n}.txt").write_text(
            f"Paper {n}\n\n{wire} Local story number {n} follows here with its own details.\n", encoding="utf-8"
        )
    service = StorybotService.load(make_settings(tmp_path, corpus), real_embedder)
    texts = [s.sentence.text for s in service.retriever.search("What rate did the central bank set?").sentences]
    assert texts.count(wire) == 1 and len(texts) == len(set(texts))


def test_a_passage_outside_faiss_nearest_keeps_its_real_cosine(seed_service: StorybotService, monkeypatch) -> None:
    # In a large archive FAISS's nearest chunks can all belong to other articles. Simulate that cut: no chunk
    # comes back from the dense or the BM25 search. Each candidate's passage must still be scored with its
    # real cosine to the question, not as the farthest possible passage.
    from bot.answering import retrieval as retrieval_module

    retriever = seed_service.retriever
    monkeypatch.setattr(retriever.index.chunk_vectors, "search", lambda query, k: [])
    monkeypatch.setattr(retriever.lexical, "chunk_ranks", lambda stems, limit: {})
    question = "Whom does Putin blame for the rise in tensions?"
    query = seed_service.embedder.encode([question])[0]
    found = retriever.search(question)
    assert found.sentences
    chunks = retriever.index.metadata.chunks({s.chunk_id for s in found.sentences})
    cosines = dict(zip(chunks, seed_service.embedder.encode([c.text for c in chunks.values()]) @ query, strict=True))
    for item in found.sentences:
        expected = (
            item.dense
            + retrieval_module.LEXICAL_WEIGHT * item.lexical
            + retrieval_module.CHUNK_WEIGHT * float(cosines[item.chunk_id]) / 2
        )
        assert abs(item.score - expected) < 1e-4
