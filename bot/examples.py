"""Example questions for a corpus, made from its own sentences and kept only when storybot answers them."""

from __future__ import annotations

import itertools
import re

from bot.service import StorybotService

# "Joe Biden last week warned ..." -> "What did Biden warn?"
_VERBS = {
    "warned": "warn",
    "accused": "accuse",
    "denied": "deny",
    "demanded": "demand",
    "reiterated": "reiterate",
    "announced": "announce",
    "proposed": "propose",
    "promised": "promise",
    "called": "call for",
    "urged": "urge",
    "approved": "approve",
    "rejected": "reject",
    "found": "find",
    "reported": "report",
    "said": "say",
    "told": "tell",
}
_SUBJECT_VERB = re.compile(
    r"\b((?:[A-Z][a-z]+\s){0,3}[A-Z][a-z]+)\s+"  # a capitalised name of up to four words
    r"(?:(?:last|this|on|has|had|have)\s+\w*\s*)?"  # "last week", "on Tuesday"
    r"(" + "|".join(_VERBS) + r")\b"
)
_NAME = re.compile(r"\b(?:President|Minister|Mayor|Chief|Director)\s+((?:[A-Z][a-z]+\s?){2,3})")
_PREPOSITIONS = frozenset("of in at on from to with by for near about into".split())
_SKIP_SUBJECTS = frozenset({"The", "It", "He", "She", "They", "We", "This", "That", "In", "On", "A", "An"})


def candidate_questions(sentences: list[str]) -> list[str]:
    """Questions a reader might ask, from "X warned/said/told ..." and named officials, most telling first."""
    ranked: list[tuple[int, int, str]] = []
    verb_rank = {verb: rank for rank, verb in enumerate(_VERBS)}  # warnings before plain "said"
    # Words capitalised inside a sentence are names; one that is capitalised only when it opens a
    # sentence ("Meteorologists warned ...") is a common noun.
    names = {w.strip(",.;:'’\"") for text in sentences for w in text.split()[1:] if w[:1].isupper()}
    for position, text in enumerate(sentences):
        for match in _SUBJECT_VERB.finditer(text):
            subject = match.group(1).split()
            if subject[0] in _SKIP_SUBJECTS:
                subject = subject[1:]
            if not subject or (match.start() == 0 and len(subject) == 1 and subject[0] not in names):
                continue
            before = text[: match.start()].split()[-1:]
            if before and before[0].lower() in _PREPOSITIONS:
                continue  # "officials in the province of Valeria said": Valeria is not who spoke
            article = "the " if text[: match.start()].endswith(("the ", "The ")) else ""
            question = f"What did {article}{subject[-1]} {_VERBS[match.group(2)]}?"
            ranked.append((verb_rank[match.group(2)], position, question))
        for match in _NAME.finditer(text):
            ranked.append((len(_VERBS), position, f"Who is {match.group(1).strip()}?"))
    return list(dict.fromkeys(question for _, _, question in sorted(ranked)))


EXAMPLE_SENTENCES = 400  # sentences the examples are drawn from
EXAMPLE_ARTICLES = 5  # articles the examples try to cover


def example_questions(service: StorybotService, count: int = 3) -> list[str]:
    """Up to `count` questions that storybot answers, from different sentences and, when it can, articles."""
    answerable: list[tuple[str, str]] = []  # (question, article it is answered from)
    answers_seen: set[str] = set()
    subjects_seen: set[str] = set()
    # The first sentences of the corpus suffice: an archive of thousands of articles must not be read in full.
    sentences = itertools.islice(service.index.sentences, EXAMPLE_SENTENCES)
    for question in candidate_questions([s.text for s in sentences]):
        subject = question.split()[-2]  # one question per person keeps the examples varied
        if subject in subjects_seen:
            continue
        answer = service.ask(question)
        if answer.answered and answer.text and answer.text not in answers_seen and answer.citations:
            answerable.append((question, answer.citations[0].doc))
            answers_seen.add(answer.text)
            subjects_seen.add(subject)
        if len(answerable) >= count * max(1, min(len(service.documents), EXAMPLE_ARTICLES)):
            break
    # One question per article first, in the order found; then fill up from the rest.
    chosen: list[str] = []
    articles_used: set[str] = set()
    for question, doc in answerable:
        if doc not in articles_used and len(chosen) < count:
            chosen.append(question)
            articles_used.add(doc)
    for question, _ in answerable:
        if question not in chosen and len(chosen) < count:
            chosen.append(question)
    return chosen
