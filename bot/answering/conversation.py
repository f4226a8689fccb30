"""Follow-up questions: what a chat remembers of its last turns, and how "he", "him" and "And X?" resolve."""

from __future__ import annotations

import functools
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bot.answering.lexical import demonyms
from bot.answering.retrieval import question_entities
from bot.indexing.terms import STOPWORDS, TITLES, content_words, is_english_word, is_figure, normalize_word, words

_SUBJECT_PRONOUNS = re.compile(r"\b(he|she)\b", re.I)
_OBJECT_PRONOUNS = re.compile(r"\b(him|her)\b(?!\s+(?:own|country|government|office|comments?|demands?)\b)", re.I)
_POSSESSIVES = re.compile(r"\b(his|her)\b(?=\s+\w)", re.I)
_PERSONAL_PRONOUNS = frozenset("he she him her his hers".split())
# Which names a pronoun can stand for, by the pronouns the articles themselves use after each name.
_PRONOUN_GENDER = {w: "he" for w in ("he", "him", "his", "himself")} | {
    w: "she" for w in ("she", "her", "hers", "herself")
}
_TOKEN = re.compile(r"[A-Za-z][\w'’-]*")

# Does `name` (as a turn remembers it) agree with `pronoun` ("she")? Built by the service from the articles.
Agreement = Callable[[str, str], bool]


def pronoun_counts(texts: Iterable[str]) -> dict[str, Counter[str]]:
    """For each name (its normalised last word), how often the texts refer back to it as "he" and as "she".

    A pronoun is counted for the nearest name before it in the same text ("Haddad advanced a pawn. 'She
    calculated further,' Antonov said": "she" is Haddad's), which is how a reader resolves it most of the time;
    over every passage that mentions a name, the count says which pronoun the article uses for that person.
    """
    counts: dict[str, Counter[str]] = {}
    for text in texts:
        last_name = None
        for match in _TOKEN.finditer(text):
            token = match.group(0)
            lowered = token.lower()
            gender = _PRONOUN_GENDER.get(lowered)
            if gender is not None:
                if last_name is not None:
                    counts.setdefault(last_name, Counter())[gender] += 1
                continue
            normal = normalize_word(token)
            if token[0].isupper() and normal and normal not in STOPWORDS and not is_english_word(normal):
                last_name = normal
    return counts


def agreement(passages_mentioning: Callable[[str], Iterable[str]]) -> Agreement:
    """An Agreement from the articles: a pronoun agrees with a name unless the passages that mention the name
    refer back to it with the other pronoun ("she" is not Putin, whom the article calls "he")."""

    # One question may weigh the same name for several pronouns ("What did he tell him?"): its passages are
    # read once.
    @functools.cache
    def used_for(short: str) -> str | None:
        return pronoun_of(short, pronoun_counts(passages_mentioning(short)))

    def agrees(name: str, pronoun: str) -> bool:
        used = used_for(_short(name))
        return used is None or used == _PRONOUN_GENDER.get(pronoun, used)

    return agrees


def pronoun_of(name: str, counts: dict[str, Counter[str]]) -> str | None:
    """ "he" or "she" when the articles refer to this name mostly so, else None (no evidence, or a tie)."""
    found = counts.get(normalize_word(_short(name)))
    if not found or found["he"] == found["she"]:
        return None
    return "he" if found["he"] > found["she"] else "she"


_SWITCH = re.compile(r"^\s*(?:and|also|what about|how about|and what about|same for)\s+(.+?)\s*\??\s*$", re.I)


@dataclass(frozen=True)
class Turn:
    question: str  # as resolved, so a chain of follow-ups keeps its names
    subject: str | None  # the first name the question asked about: "Putin"
    answer_name: str | None  # the answer when it was a name: "French President Emmanuel Macron"


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
    text: str  # the question to answer: pronouns replaced by the names they stand for
    read_as: dict[str, str]  # what history filled in, shown to the user: {"he": "Putin"}
    unfilled: str | None = None  # a pronoun the question leans on that nothing before stands for: "he"

    def who_is_meant(self) -> str | None:
        """The question back when a pronoun stands for nobody and the question asks about nothing else
        ("What did he say then?" as a first question), else None: such a question has nothing to look up."""
        if self.unfilled is None or content_words(self.text) or question_entities(self.text):
            return None
        return f"Who do you mean by '{self.unfilled}'? Ask with a name."


def leans_on_previous(question: str) -> bool:
    """True for questions that need the one before: a personal pronoun with no name of its own to stand for,
    or an elliptical "And Macron?". "Has Putin admitted he ...?" stands alone: its "he" is Putin."""
    if _SWITCH.match(question):
        return True
    tokens = {w.lower() for w in words(question)}
    if not tokens & _PERSONAL_PRONOUNS:
        return False
    return _needs_history(question)


def _needs_history(question: str) -> bool:
    """A subject pronoun or possessive after a name of the question refers to that name; only an object
    pronoun ("What did Macron tell him?" cannot mean Macron) or a pronoun before any name needs history."""
    first_name = _first_name_at(question)
    for pattern in (_SUBJECT_PRONOUNS, _POSSESSIVES):
        for match in pattern.finditer(question):
            if first_name is None or match.start() < first_name:
                return True
    return bool(_OBJECT_PRONOUNS.search(question))


def _first_name_at(question: str) -> int | None:
    """Where the question's first name stands (a capitalised word after its first word), if it has one."""
    return next((m.start() for m in re.finditer(r"\b[A-Z]\w+", question) if m.start() > 0), None)


def is_referent(name: str | None) -> bool:
    """Can a pronoun stand for this name? A person or thing can; a people's adjective ("Finnish") cannot, nor
    a title without a name ("Finnish President", the answer to "Who is Sauli Niinisto?")."""
    if not name:
        return False
    normal = [normalize_word(w) for w in name.split()]
    if normal[-1] in demonyms():
        return False
    return not all(w in TITLES or w in demonyms() for w in normal)


def _short(name: str) -> str:
    """The name to put in place of a pronoun: the surname of "French President Emmanuel Macron"."""
    return name.split()[-1]


def without_possessive(name: str) -> str:
    """A name as the article writes it on its own: "Niinisto's" -> "Niinisto" (no word ends in "'")."""
    return re.sub(r"['’]s$", "", name)


def _first_pronoun(question: str) -> str | None:
    """The first personal pronoun of a question, as typed in lower case: "he" in "What did he say?"."""
    return next((word.lower() for word in words(question) if word.lower() in _PERSONAL_PRONOUNS), None)


def resolve(question: str, previous: Turn | None, agrees: Agreement | None = None) -> Resolved:
    """Rewrite a follow-up so it stands alone, using the previous turn; a question that stands alone is kept.

    History only fills in a personal pronoun or an elliptical "And X?": carrying more of the last turn
    steers unrelated questions back to it. A pronoun stands only for a name it `agrees` with ("she" is not
    the Putin the article calls "he"); with none, it is left unfilled and storybot asks who is meant.
    """
    if not leans_on_previous(question):
        return Resolved(question, {})
    if previous is None:
        return Resolved(question, {}, unfilled=_first_pronoun(question))
    switch = _SWITCH.match(question)
    # Only a name switches the subject ("And the EU?"); "And before that?" leans on the last turn instead.
    if switch and not re.search(r"\b[A-Z]", switch.group(1)):
        switch = None
    if switch and previous.subject and re.search(rf"\b{re.escape(previous.subject)}\b", previous.question):
        # "What did Biden warn?" then "And the EU?" -> "What did the EU warn?"
        replaced = re.sub(rf"\b{re.escape(previous.subject)}\b", switch.group(1), previous.question, count=1)
        return Resolved(replaced, {question: replaced})
    # The question's subject is what "he" most likely means; the last answer, what "him" and "his" mean. A
    # name the question itself holds is neither: "What did he tell Niinisto?" asks about someone else.
    written = {normalize_word(w) for w in words(question)}
    subjects = [
        n
        for n in (previous.subject, previous.answer_name)
        if n is not None and is_referent(n) and normalize_word(_short(n)) not in written
    ]
    text = question
    read_as: dict[str, str] = {}
    name_at = _first_name_at(question)

    def fill(pattern: re.Pattern[str], names: list[str], text: str, possessive: bool = False) -> str:
        """Put the first of `names` the pronoun agrees with in its place; the user is told the name."""

        def replace(match: re.Match[str]) -> str:
            pronoun = match.group(0)
            name = next((n for n in names if agrees is None or agrees(n, pronoun.lower())), None)
            if name is None:
                return pronoun
            read_as[pronoun] = _short(name)
            return _short(name) + ("'s" if possessive else "")

        return pattern.sub(replace, text)

    if subjects and (name_at is None or _SUBJECT_PRONOUNS.search(question[:name_at])):
        # Only pronouns before the question's own first name lean on history ("Did he say Putin ...?").
        head = question[:name_at] if name_at is not None else question
        text = fill(_SUBJECT_PRONOUNS, subjects, head) + (question[name_at:] if name_at is not None else "")
    if subjects:
        text = fill(_OBJECT_PRONOUNS, subjects[::-1], text)
        if name_at is None:
            text = fill(_POSSESSIVES, subjects[::-1], text, possessive=True)
    return Resolved(text, read_as, unfilled=None if read_as else _first_pronoun(question))


def make_turn(
    resolved_question: str, answer_text: str | None, answer_is_span: bool, unknown: tuple[str, ...] = ()
) -> Turn:
    """What this turn leaves for the next one: the names a pronoun may stand for, each as the article writes
    it on its own (never "Niinisto's", never a people's adjective such as "Finnish"), and never a name the
    articles lack, so that a refusal's reason ("The article doesn't mention Zelensky.") does not come back
    with the next question."""
    names = [n for n in _referents(resolved_question) if n not in unknown]
    answer_names = _referents(answer_text) if answer_is_span and answer_text and answer_text[:1].isupper() else []
    return Turn(
        question=resolved_question,
        subject=names[0] if names else None,
        answer_name=answer_names[0] if answer_names else None,
    )


def _referents(text: str) -> list[str]:
    """The names in a text that a pronoun can stand for, possessives dropped: "Who did Niinisto's office
    call?" -> ["Niinisto"]; "French President Emmanuel Macron" -> ["President Emmanuel Macron"]."""
    phrases = [phrase for phrase in question_entities(text) if not any(map(is_figure, phrase))]  # not "2021"
    names = [without_possessive(" ".join(phrase)) for phrase in phrases]
    return [name for name in names if is_referent(name)]
