"""Passages -> Answer: the answering sentence, numbered verbatim citations, or "the article doesn't say"."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.answering.intake import NOT_A_QUESTION
from bot.answering.reader import Span
from bot.answering.retrieval import QuestionAnalysis, Retrieval
from bot.answering.scorer import SHORT_ANSWER_PRECISION, Candidate
from bot.answering.stories import Story
from bot.indexing.index import DocumentInfo

NOT_SAID = "The article doesn't say."
WHICH_STORY = "Which story do you mean?"
STORY_NOT_SAID = "This story doesn't say."


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
class Shown:
    """How the front ends show an answer: not part of the JSON contract."""

    reason: str | None = None  # why not answered, in words a reader understands
    sentence: str | None = None  # the whole sentence the answer comes from
    highlight: tuple[int, int] | None = None  # where in a whole-sentence answer the likely answer stands
    key_terms: tuple[str, ...] = ()  # question words, for emphasis
    corrections: dict[str, str] = field(default_factory=dict)  # "bidn" -> "biden", "he" -> "Putin"
    answer_start: int | None = None  # offsets of the answer text in citations[0].doc
    answer_end: int | None = None


@dataclass(frozen=True)
class Trace:
    """What evaluation reads: how sure storybot was, and what it would have answered."""

    confidence: float = 0.0  # the scorer's probability that the chosen sentence answers right
    candidate: str | None = None  # the chosen sentence, answered or not
    span_trust: float = 0.0  # the fitted probability that the reader's span, shown alone, would be right


@dataclass(frozen=True)
class Answer:
    """The answer as every consumer gets it (the `ask --json` contract); display and eval data beside it."""

    question: str
    answered: bool
    text: str | None  # verbatim, from inside citations[0]; None when not answered
    citations: list[Citation]  # when not answered: the closest passages, not evidence
    shown: Shown = field(default_factory=Shown)
    trace: Trace = field(default_factory=Trace)
    # The stories the question may be about, best first, when storybot asks which one is meant.
    stories: list[Story] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The `ask --json` contract: exactly these fields ("stories" only when there are some)."""
        data = {
            "question": self.question,
            "answered": self.answered,
            "answer": self.text if self.answered else None,
            "citations": [c.to_json() for c in self.citations],
        }
        if self.stories:
            data["stories"] = [{"key": story.key, "title": story.title} for story in self.stories]
        return data


def _citations(
    retrieval: Retrieval, documents: Mapping[str, DocumentInfo], limit: int, first_chunk: int | None
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


def refusal_reason(question: QuestionAnalysis) -> str:
    """Why the article does not answer, in words a reader understands (the decision itself is the scorer's)."""
    # Asked within a story, the reader knows which text is meant: it is "this story".
    subject = "This story" if question.scoped else "The article"
    if question.unknown_entities:
        return f"{subject} doesn't mention {_join_names(question.unknown_entities)}."
    if question.unrelated:
        return f"No single article mentions {_join_names(question.unrelated, 'and')}."
    if question.missing_attribute:
        return f"{subject} doesn't mention {question.missing_attribute}."
    return STORY_NOT_SAID if question.scoped else NOT_SAID


def compose_answer(
    retrieval: Retrieval,
    documents: Mapping[str, DocumentInfo],
    candidates: list[Candidate],
    threshold: float,
    limit: int = 3,
    span_trust: Callable[[Span, str, float], float] | None = None,
) -> Answer:
    """Answer with the scorer's best candidate when its probability clears the threshold, else say why not."""
    question = retrieval.question
    best = candidates[0] if candidates else None
    confidence = best.probability if best else 0.0
    key_terms = tuple(dict.fromkeys(question.terms))

    def not_answered(reason: str) -> Answer:
        return Answer(
            question=question.text,
            answered=False,
            text=None,
            citations=_citations(retrieval, documents, limit, best.scored.chunk_id if best else None),
            shown=Shown(reason=reason, key_terms=key_terms),
            trace=Trace(confidence, best.scored.sentence.text if best else None),
        )

    if not question.terms and not question.entities:
        return not_answered(NOT_A_QUESTION)
    if best is None or confidence < threshold:
        return not_answered(refusal_reason(question))
    chosen = best.scored
    citations = _citations(retrieval, documents, limit, chosen.chunk_id)
    sentence = chosen.sentence
    # The shortest verbatim text that answers: the reader's span where spans like it are right at least 90% of
    # the time (the scorer's fitted trust), else the whole sentence with that span in bold (the first citation
    # always holds the sentence in full). A yes/no question is answered by the sentence that settles it: a
    # fragment of it reads as neither yes nor no.
    learned = best.span
    whole = learned is None or learned.end - learned.start >= len(sentence.text.rstrip(".!?\"'”’ "))
    trust = (
        span_trust(learned, sentence.text[learned.start : learned.end], confidence)
        if learned is not None and not whole and span_trust is not None
        else 0.0
    )
    alone = learned is not None and not whole and question.kind != "yesno" and trust >= SHORT_ANSWER_PRECISION
    if alone:
        assert learned is not None
        span, highlight = (learned.start, learned.end), None
    else:
        span = (0, len(sentence.text))
        highlight = (learned.start, learned.end) if learned is not None and not whole else None
    return Answer(
        question=question.text,
        answered=True,
        text=sentence.text[span[0] : span[1]],
        citations=citations,
        shown=Shown(
            sentence=sentence.text,
            highlight=highlight,
            key_terms=key_terms,
            corrections=dict(question.corrections),
            answer_start=sentence.start + span[0],
            answer_end=sentence.start + span[1],
        ),
        trace=Trace(confidence, sentence.text, trust),
    )


def ask_which_story(
    retrieval: Retrieval,
    documents: Mapping[str, DocumentInfo],
    candidates: list[Candidate],
    stories: list[Story],
    limit: int = 3,
) -> Answer:
    """Not an answer but a question back: the question fits these stories about equally (best first)."""
    question = retrieval.question
    best = candidates[0] if candidates else None
    return Answer(
        question=question.text,
        answered=False,
        text=None,
        citations=_citations(retrieval, documents, limit, None),
        shown=Shown(reason=WHICH_STORY, key_terms=tuple(dict.fromkeys(question.terms))),
        trace=Trace(best.calibrated, best.scored.sentence.text) if best else Trace(),
        stories=stories,
    )


def _join_names(names: tuple[str, ...], conjunction: str = "or") -> str:
    """ "X", "X or Y", "X, Y or Z"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {conjunction} " + names[-1]
