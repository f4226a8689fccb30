"""Words and names in text: the tokenizer, stop words, stems, and officials named with their title.

Used when the index is built (its inverted maps of terms -> documents) and when a question is read, so
both sides see the same words.
"""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

# The one word tokenizer of the answering code: letters and digits of any script, with the apostrophes,
# dots and hyphens inside a word ("Russia's", "U.S.", "Niinistö", "sea-wall") kept.
WORD = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*")

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "tell",
        "told",
        "say",
        "said",
        "says",
        "according",
        "also",
        "ever",
        "s",
        "t",
        "don't",
        "doesn't",
        "didn't",
        "isn't",
        "wasn't",
        "won't",
        "can't",
        "shall",
        "may",
        "might",
        "must",
        "let",
        "please",
        "article",
        "story",
        "report",
        "text",
        "news",
        "mention",
        "mentioned",
        "mentions",
    ]
)

_stemmer = Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """Word tokens as written (possessive 's and periods of "U.S." kept inside the token)."""
    return WORD.findall(text)


def normalize_word(word: str) -> str:
    """Lower case, possessive and dots dropped: "Russia's" -> "russia", "U.S." -> "us"."""
    word = word.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    return word.replace(".", "").replace("'", "")


def transpositions(word: str) -> set[str]:
    """Every spelling of a word with two neighbouring letters swapped: the commonest typo ("waht", "bidne")."""
    return {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1) if word[i] != word[i + 1]}


def content_words(text: str) -> list[str]:
    """Normalized words that carry meaning (stop words dropped), in order."""
    result = []
    for word in words(text):
        if word.lower().replace("’", "'") in STOPWORDS:
            continue
        normal = normalize_word(word)
        if normal and normal not in STOPWORDS:
            result.append(normal)
    return result


def is_figure(word: str) -> bool:
    """A figure ("2014", "3rd", "Q2", "mid-2010"): any word with a digit in it."""
    return any(ch.isdigit() for ch in word)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return str(_stemmer.stemWord(word))


def stems(text: str) -> list[str]:
    return [stem(w) for w in content_words(text)]


TITLES = frozenset(
    """president prime minister deputy foreign defence defense secretary chancellor king queen prince mayor
    governor senator general chief spokesman spokeswoman spokesperson ambassador director chairman chair
    ceo leader pope premier envoy commissioner judge justice""".split()
)
_CONNECTORS = r"(?:of|de|da|del|der|van|von|al|bin|la|le)"
CAPITALISED_WORD = r"(?:(?:[A-Z]\.){2,}|[A-Z][\w’'\-]*)"
# A run of capitalised words, with "of"/"de"-style connectors inside: "Valdai Discussion Club".
_NAME_RUN = re.compile(rf"{CAPITALISED_WORD}(?:\s+(?:{_CONNECTORS}\s+)?{CAPITALISED_WORD})*")
OPENING_WORDS = frozenset("the a an in on at for but and as he she it they we his her its their this that".split())


def name_runs(sentence: str) -> list[tuple[int, int]]:
    """Capitalised runs (names with their titles), possessive "'s" and a sentence-opening word dropped."""
    runs = []
    for match in _NAME_RUN.finditer(sentence):
        start, end = match.start(), match.end()
        text = sentence[start:end]
        first = text.split()[0]
        if first.lower() in OPENING_WORDS:
            rest = text[len(first) :].lstrip()
            if not rest:
                continue
            start = end - len(rest)
        if sentence[start:end].endswith(("'s", "’s")):
            end -= 2
        runs.append((start, end))
    return runs


def titled_names(sentence: str) -> list[tuple[tuple[str, ...], tuple[str, ...], str]]:
    """Officials named with their title: "Russia's Deputy Foreign Minister Sergei Ryabkov" ->
    (("russia",), ("deputy", "foreign", "minister"), "Sergei Ryabkov")."""
    found = []
    for start, end in name_runs(sentence):
        words = sentence[start:end].split()
        titles = [i for i, w in enumerate(words) if w.lower() in TITLES]
        if not titles or titles[-1] == len(words) - 1:
            continue
        qualifiers = tuple(normalize_word(w) for w in words[: titles[0]])
        title = tuple(normalize_word(w) for w in words[titles[0] : titles[-1] + 1])
        found.append((qualifiers, title, " ".join(words[titles[-1] + 1 :])))
    return found


# Endings an English word takes that a dictionary's headwords do not: "evacuees" -> "evacuee",
# "revolutionizing" -> "revolutionize" (tried in turn; a dictionary lookup confirms each).
_INFLECTIONS = (("ies", "y"), ("es", ""), ("s", ""), ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("ly", ""))


@lru_cache(maxsize=1)
def _english_words() -> frozenset[str]:
    """Webster's Second and GCIDE headwords (the `english-words` package), lower case: about 300,000 words.

    Loaded on first use: only a question holding a word the articles never use needs it.
    """
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["web2", "gcide"], alpha=True, lower=True))


def is_english_word(word: str) -> bool:
    """Whether a lower-case word is an English dictionary word (or an inflection of one), not a name.

    Tells "plethora" and "evacuees" from "zelensky": all three are rare words to the model's vocabulary.
    """
    dictionary = _english_words()
    if word in dictionary:
        return True
    return any(
        word.endswith(ending) and len(word) - len(ending) >= 3 and word[: -len(ending)] + base in dictionary
        for ending, base in _INFLECTIONS
    )
