"""Follow-up questions: what a chat remembers of its last turns, and how "he", "him" and "And X?" resolve."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from bot.answering.lexical import content_words
from bot.answering.retrieval import question_entities

_SUBJECT_PRONOUNS = re.compile(r"\b(he|she)\b", re.I)
_OBJECT_PRONOUNS = re.compile(r"\b(him|her)\b(?!\s+(?:own|country|government|office|comments?|demands?)\b)", re.I)
_POSSESSIVES = re.compile(r"\b(his|her)\b(?=\s+\w)", re.I)
_OTHER_PRONOUNS = frozenset("they them their it its that this those these there then".split())
_SWITCH = re.compile(r"^\s*(?:and|also|what about|how about|and what about|same for)\s+(.+?)\s*\??\s*$", re.I)


@dataclass(frozen=True)
class Turn:
    question: str  # as resolved, so a chain of follow-ups keeps its names
    subject: str | None  # the first name the question asked about: "Putin"
    answer_name: str | None  # the answer when it was a name: "French President Emmanuel Macron"
    terms: tuple[str, ...]  # the question's content words


@dataclass
class Session:
    """What one chat remembers: its last few turns."""

    max_turns: int = 4
    turns: deque[Turn] = field(default_factory=deque)

    def remember(self, turn: Turn) -> None:
        self.turns.append(turn)
        while len(self.turns) > self.max_turns:
            self.turns.popleft()

    def reset(self) -> None:
        self.turns.clear()

    @property
    def last(self) -> Turn | None:
        return self.turns[-1] if self.turns else None


@dataclass(frozen=True)
class Resolved:
    text: str  # the question to search with: pronouns replaced by the names they stand for
    carried: tuple[str, ...]  # words of the previous question that may still matter (weighted lower)


def leans_on_previous(question: str) -> bool:
    """True for questions that need the one before: pronouns, "And Macron?", or too short to stand alone."""
    if _SWITCH.match(question):
        return True
    tokens = {w.lower() for w in re.findall(r"[A-Za-z']+", question)}
    if tokens & ({"he", "she", "him", "her", "his", "hers"} | _OTHER_PRONOUNS):
        return True
    return len(content_words(question)) <= 1


def _short(name: str) -> str:
    """The name to put in place of a pronoun: the surname of "French President Emmanuel Macron"."""
    return name.split()[-1]


def resolve(question: str, previous: Turn | None) -> Resolved:
    """Rewrite a follow-up so it stands alone, using the previous turn."""
    if previous is None or not leans_on_previous(question):
        return Resolved(question, ())
    switch = _SWITCH.match(question)
    # Only a name switches the subject ("And the EU?"); "And before that?" leans on the last turn instead.
    if switch and not re.search(r"\b[A-Z]", switch.group(1)):
        switch = None
    if switch and previous.subject and re.search(rf"\b{re.escape(previous.subject)}\b", previous.question):
        # "What did Biden warn?" then "And the EU?" -> "What did the EU warn?"
        replaced = re.sub(rf"\b{re.escape(previous.subject)}\b", switch.group(1), previous.question, count=1)
        return Resolved(replaced, ())
    subject = previous.subject or previous.answer_name
    other = previous.answer_name or previous.subject
    text = question
    if subject:
        text = _SUBJECT_PRONOUNS.sub(_short(subject), text)
    if other:
        text = _OBJECT_PRONOUNS.sub(_short(other), text)
        text = _POSSESSIVES.sub(_short(other) + "'s", text)
    return Resolved(text, previous.terms)


def make_turn(resolved_question: str, answer_text: str | None, answer_is_span: bool) -> Turn:
    """What this turn leaves for the next one."""
    names = [" ".join(p) for p in question_entities(resolved_question)]
    answer_name = None
    if answer_is_span and answer_text and answer_text[:1].isupper():
        answer_name = answer_text
    return Turn(
        question=resolved_question,
        subject=names[0] if names else None,
        answer_name=answer_name,
        terms=tuple(content_words(resolved_question)),
    )
