"""Passages -> Answer: the answering sentence, numbered verbatim citations, or "the article doesn't say"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.answering.retrieval import Retrieval, ScoredSentence
from bot.answering.spans import answer_candidates, narrow_span
from bot.indexing.index import DocumentInfo

NOT_SAID = "The article doesn't say."
TYPE_CANDIDATES = 5
TYPE_MARGIN = 0.25  # how far below the best a sentence of the right answer type may score and still win
TYPE_BONUS = 0.15
FIGURE_MARGIN = 0.3  # how far below the best a sentence holding the asked-for figure may score and still answer


@dataclass(frozen=True)
class Citation:
    """A verbatim quote: text == <the corpus file's content>[start:end]."""

    n: int
    doc: str
    title: str
    paragraph: int
    start: int
    end: int
    text: str
    score: float

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "doc": self.doc,
            "title": self.title,
            "paragraph": self.paragraph,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class Answer:
    question: str
    answered: bool
    text: str | None  # verbatim, from inside citations[0]; None when not answered
    citations: list[Citation]  # when not answered: the closest passages, not evidence
    confidence: float
    reason: str | None = None  # why not answered, in words a reader understands
    answer_start: int | None = None  # offsets of `text` in citations[0].doc
    answer_end: int | None = None
    key_terms: tuple[str, ...] = field(default_factory=tuple)  # question words, for emphasis
    candidate: str | None = None  # the best sentence, answered or not (for threshold tables)
    sentence: str | None = None  # the whole sentence the answer comes from
    corrections: dict[str, str] = field(default_factory=dict)  # misspelt word -> the corpus word it was read as
    score_refusal: bool = False  # refused only because the confidence was under the threshold

    def to_json(self) -> dict[str, Any]:
        """The `ask --json` contract: exactly these fields."""
        return {
            "question": self.question,
            "answered": self.answered,
            "answer": self.text if self.answered else None,
            "citations": [c.to_json() for c in self.citations],
        }


def _citations(
    retrieval: Retrieval, documents: dict[str, DocumentInfo], limit: int, first_chunk: int | None
) -> list[Citation]:
    passages = list(retrieval.passages)
    if first_chunk is not None:
        passages.sort(key=lambda p: p.chunk.id != first_chunk)  # stable: the answer's chunk first
    citations: list[Citation] = []
    for passage in passages[:limit]:
        chunk = passage.chunk
        citations.append(
            Citation(
                n=len(citations) + 1,
                doc=chunk.doc,
                title=documents[chunk.doc].title,
                paragraph=chunk.paragraph,
                start=chunk.start,
                end=chunk.end,
                text=chunk.text,
                score=passage.score,
            )
        )
    return citations


def _choose_sentence(retrieval: Retrieval) -> ScoredSentence | None:
    sentences = retrieval.sentences
    if not sentences:
        return None
    question = retrieval.question
    best = sentences[0].score
    if question.kind == "how_many":
        # A "how many" answer must hold a figure of the thing asked about; a sentence without one does not answer.
        for candidate in sentences:
            if candidate.score < best - FIGURE_MARGIN:
                break
            if answer_candidates(question.text, question.kind, candidate.sentence.text, question.focus):
                return candidate
        return None
    if question.kind in {"who", "when", "where", "which"}:
        # Among close candidates, one holding an answer of the asked type (a name, a day, a place) wins.
        close = [c for c in sentences[:TYPE_CANDIDATES] if c.score >= best - TYPE_MARGIN]
        return max(
            close,
            key=lambda c: (
                c.score
                + (TYPE_BONUS if narrow_span(question.text, question.kind, c.sentence.text, question.focus) else 0.0)
            ),
        )
    return sentences[0]


def compose_answer(
    retrieval: Retrieval, documents: dict[str, DocumentInfo], threshold: float, limit: int = 3
) -> Answer:
    """Decide whether the article answers, and build the cited answer (or the closest passages)."""
    question = retrieval.question
    best = retrieval.sentences[0] if retrieval.sentences else None
    confidence = best.score if best else 0.0
    key_terms = tuple(dict.fromkeys(question.terms))

    def not_answered(reason: str, score_refusal: bool = False) -> Answer:
        return Answer(
            candidate=best.sentence.text if best else None,
            score_refusal=score_refusal,
            question=question.text,
            answered=False,
            text=None,
            citations=_citations(retrieval, documents, limit, None),
            confidence=confidence,
            reason=reason,
            key_terms=key_terms,
        )

    if not question.terms and not question.entities:
        return not_answered("That doesn't look like a question about the article.")
    if question.unknown_entities:
        names = _join_names(question.unknown_entities)
        return not_answered(f"The article doesn't mention {names}.")
    if question.unrelated:
        return not_answered(f"No single article mentions {_join_names(question.unrelated, 'and')}.")
    if question.missing_attribute:
        return not_answered(f"The article doesn't mention the {question.missing_attribute}.")
    chosen = _choose_sentence(retrieval)
    if chosen is None:
        return not_answered("The article gives no figure for that.")
    if chosen.score < threshold:
        return not_answered(NOT_SAID, score_refusal=True)
    citations = _citations(retrieval, documents, limit, chosen.chunk_id)
    sentence = chosen.sentence
    # The shortest verbatim text that answers: a name, day, place or figure when one stands out,
    # else the whole sentence (the first citation always holds the sentence in full).
    span = narrow_span(question.text, question.kind, sentence.text, question.focus) or (0, len(sentence.text))
    return Answer(
        question=question.text,
        answered=True,
        text=sentence.text[span[0] : span[1]],
        citations=citations,
        confidence=chosen.score,
        answer_start=sentence.start + span[0],
        answer_end=sentence.start + span[1],
        key_terms=key_terms,
        candidate=sentence.text,
        sentence=sentence.text,
        corrections=dict(question.corrections),
    )


def _join_names(names: tuple[str, ...], conjunction: str = "or") -> str:
    """ "X", "X or Y", "X, Y or Z"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {conjunction} " + names[-1]
