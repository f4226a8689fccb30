"""Narrowing an answer sentence to the span that answers: a name, a day, a place, a figure.

Only done when it can be done confidently (exactly one candidate of the right kind that the question
does not already name); otherwise the whole sentence is the answer. Spans are offsets into the sentence,
so the answer stays verbatim.
"""

from __future__ import annotations

import re

from bot.indexing.terms import (
    CAPITALISED_WORD,
    OPENING_WORDS,
    STOPWORDS,
    TITLES,
    WORD,
    name_runs,
    normalize_word,
    stem,
    words,
)

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"

_TIME = re.compile(
    rf"""\b(?:
        (?:later|earlier)\s+(?:on\s+)?(?:{_DAYS})
      | (?:last|this|next)\s+(?:week|month|year|weekend|{_DAYS})
      | (?:on\s+)?(?:{_DAYS})(?:\s+(?:morning|afternoon|evening|night))?
      | (?:{_MONTHS})\s+\d{{1,2}}(?:,\s*\d{{4}})?
      | \d{{1,2}}\s+(?:{_MONTHS})(?:\s+\d{{4}})?
      | (?:in\s+)?(?:{_MONTHS})(?:\s+\d{{4}})?
      | in\s+\d{{4}}
      | (?:a|one|two|three|four|five|several)\s+(?:days?|weeks?|months?|years?)\s+(?:after|before|ago|earlier|later)
      | yesterday|today|tomorrow|in\s+recent\s+days|overnight
    )\b""",
    re.VERBOSE,
)
_PLACE = re.compile(
    rf"\b(?:in|at|near|outside|inside|across|along|from)\s+(?:the\s+)?"
    rf"(?:(?:[a-z]+\s+){{1,3}}of\s+(?:the\s+)?)?"  # "in the town hall of Bramford"
    rf"({CAPITALISED_WORD}(?:\s+{CAPITALISED_WORD})*(?:,\s+(?!(?:{_MONTHS}|{_DAYS})\b){CAPITALISED_WORD}(?:\s+{CAPITALISED_WORD})*)?)"
    rf"(?:\s+(?:border|region|capital|city|town|area|coast|sea|province|state))?"
)
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|hundred|"
    "hundreds|thousand|thousands|millions|billions|dozen|dozens|twice|half|double|triple|three times"
)
# Words that end the thing counted: "12 people died", "100,000 troops near the border".
_NOT_COUNTED = r"(?:were|was|are|is|have|has|had|will|would|near|in|at|on|from|to|and|or|of|who|that|which|said)"
_FIGURE = re.compile(
    rf"(?:\b(?i:about|around|nearly|almost|more than|at least|some|over)\s+)?"
    rf"(?:\b\d[\d,.]*(?:\s*(?:%|percent|million|billion|thousand))?|\b(?i:{_NUMBER_WORDS})(?:\s+of)?)"
    rf"(?:\s+(?!{_NOT_COUNTED}\b)[a-z][\w-]*(?<!ed)){{0,2}}"  # what is counted: "12 people", "40 fishing families"
)
# "How many people ...", "How much aid ...": the thing counted.
_COUNTED = re.compile(r"\bhow\s+(?:many|much)\s+([A-Za-z][\w-]*)", re.I)
_NOT_A_NOUN = frozenset("did does do is are was were has have had will would can could should of".split())
_PERSON_NOUNS = frozenset(stem(w) for w in "leader president minister official person politician head chief".split())
_PASSIVE_AGENT = re.compile(
    r"\b(?:was|were|is|are|been|being)\s+(\w+)\s+by\s+"
    r"((?:the\s+)?[\w'’-]+(?:\s+(?!(?:at|in|on|from|for|with|after|before|during|and|but|to)\b)[\w'’-]+){0,5})"
)
_WHO_IS = re.compile(r"^\s*who\s+(?:is|was|are|were)\s+(.+?)\s*\??\s*$", re.IGNORECASE)


def _words(text: str) -> set[str]:
    return {normalize_word(w) for w in words(text)} - {""}


def _person_like(text: str) -> bool:
    words = text.split()
    return len(words) >= 2 or any(w.lower() in TITLES for w in words)


_LOCATIVE = re.compile(r"\b(?:in|at|near|from|to|into|across|outside|inside)\s+(?:the\s+)?$", re.IGNORECASE)
_QUOTES = '"“”'


def _in_agent_role(sentence: str, start: int) -> bool:
    """A name that can be the person a who-question asks for: not a place ("in Sochi") and not a name
    quoted inside someone's words (the speaker stands outside the quotation marks)."""
    if _LOCATIVE.search(sentence[:start]):
        return False
    return sum(sentence[:start].count(mark) for mark in _QUOTES) % 2 == 0


def _unnamed_by(question_words: set[str], text: str) -> bool:
    names = {normalize_word(w) for w in text.split() if w.lower() not in TITLES}
    return not (names & question_words)


def _only(candidates: list[tuple[int, int]]) -> tuple[int, int] | None:
    unique = list(dict.fromkeys(candidates))
    return unique[0] if len(unique) == 1 else None


def narrow_span(question: str, kind: str, sentence: str, focus: str | None = None) -> tuple[int, int] | None:
    """(start, end) in `sentence` of the span that answers, or None to answer with the whole sentence."""
    candidates = answer_candidates(question, kind, sentence, focus)
    return _only(candidates) if candidates else None


def answer_candidates(
    question: str, kind: str, sentence: str, focus: str | None = None
) -> list[tuple[int, int]] | None:
    """Spans of `sentence` of the type the question asks for (names for who, days for when...).

    None when the question asks for no particular type (what, why, yes/no); [] when it does and the
    sentence holds nothing of that type.
    """
    question_words = _words(question)
    if kind == "which" and focus in _PERSON_NOUNS:
        kind = "who"  # "Which leader did Putin phone?" asks for a person
    if kind == "who":
        # "Who built the robot?" / "It was built by engineering students at ..." -> the agent.
        question_stems = {stem(w) for w in question_words}
        agents = [
            m.span(2) for m in _PASSIVE_AGENT.finditer(sentence) if stem(normalize_word(m.group(1))) in question_stems
        ]
        if agents:
            return agents
        runs = [(s, e) for s, e in name_runs(sentence) if _person_like(sentence[s:e]) and _in_agent_role(sentence, s)]
        who_is = _WHO_IS.match(question)
        if who_is:
            # "Who is Sauli Niinisto?" -> the run that holds the name with its title, if it adds one.
            subject = _words(who_is.group(1)) - STOPWORDS
            holding = [(s, e) for s, e in runs if subject <= _words(sentence[s:e])]
            if holding:
                return [(s, e) for s, e in holding if _words(sentence[s:e]) - subject]
        return [(s, e) for s, e in runs if _unnamed_by(question_words, sentence[s:e])]
    if kind == "when":
        return [m.span() for m in _TIME.finditer(sentence) if not _words(m.group(0)) <= question_words]
    if kind == "where":
        return [m.span() for m in _PLACE.finditer(sentence) if _unnamed_by(question_words, m.group(1))]
    if kind == "how_many":
        figures = [m for m in _FIGURE.finditer(sentence) if not _words(m.group(0)) <= question_words]
        counted = _COUNTED.search(question)
        if counted and counted.group(1).lower() not in _NOT_A_NOUN:
            # "How much aid ...?": the figure must count aid, in it or just after ("50 million euros in aid").
            thing = stem(normalize_word(counted.group(1)))
            figures = [
                m for m in figures if any(w.startswith(thing) for w in _stems_near(sentence, m.start(), m.end()))
            ]
        return [m.span() for m in figures]
    if kind == "which" and focus:
        phrase = _focus_phrase(sentence, focus)
        return [phrase] if phrase else []
    return None


def _stems_near(sentence: str, start: int, end: int, after: int = 4) -> set[str]:
    """Stems of the words in sentence[start:end] and of the `after` words that follow."""
    following = words(sentence[end:])[:after]
    return {stem(normalize_word(w)) for w in words(sentence[start:end]) + following}


def _focus_phrase(sentence: str, focus: str) -> tuple[int, int] | None:
    """ "Which agency ...?" -> "RIA Novosti state news agency": the named noun phrase ending in the focus noun."""
    tokens = list(WORD.finditer(sentence))
    for index, token in enumerate(tokens):
        if stem(normalize_word(token.group(0))) != focus:
            continue
        first = index
        while first > 0 and index - first < 5:
            previous = tokens[first - 1].group(0).lower()
            if previous in OPENING_WORDS or previous in {"of", "to", "with", "by", "from", "told", "said"}:
                break
            first -= 1
        # The phrase starts at its first name: "the RIA Novosti state news agency" -> "RIA Novosti ... agency".
        while first < index and not tokens[first].group(0)[0].isupper():
            first += 1
        if first < index:
            return tokens[first].start(), token.end()
    return None
