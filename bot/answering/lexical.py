"""Words: tokenizing, stop words, stemming, spelling correction against the corpus, and BM25 ranking."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

import bm25s
import numpy as np
import Stemmer
from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein

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


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return str(_stemmer.stemWord(word))


def stems(text: str) -> list[str]:
    return [stem(w) for w in content_words(text)]


def key_word_spans(text: str, key_terms: Iterable[str]) -> list[tuple[int, int]]:
    """(start, end) of the words in `text` that share a stem with a key term, for emphasis."""
    wanted = {stem(normalize_word(t)) for t in key_terms if t}
    return [
        (match.start(), match.end())
        for match in WORD.finditer(text)
        if stem(normalize_word(match.group(0))) in wanted and match.group(0).lower() not in STOPWORDS
    ]


@lru_cache(maxsize=1)
def place_aliases() -> dict[str, frozenset[str]]:
    """Country name, demonym, capital and short forms, each pointing at the others (countryinfo's data).

    "Finland" is written "Finnish", "American" is "U.S.", and "Moscow" often stands for Russia's government.
    Single words only: that is how a question's words are compared with an article's.
    """
    import importlib.resources
    import json

    aliases: dict[str, set[str]] = {}
    for entry in (importlib.resources.files("countryinfo") / "data").iterdir():
        if not entry.name.endswith(".json"):
            continue
        data = json.loads(entry.read_text(encoding="utf-8"))
        forms = [data.get("name"), data.get("demonym"), str(data.get("capital") or "").split(" ")[0]]
        forms += [alt for alt in data.get("altSpellings") or [] if isinstance(alt, str) and alt.isascii()]
        words_ = {normalize_word(f) for f in forms if isinstance(f, str) and f and " " not in f.strip()}
        words_.discard("")
        for word in words_:
            aliases.setdefault(word, set()).update(words_ - {word})
    return {word: frozenset(others) for word, others in aliases.items()}


class Vocabulary:
    """The words a text (a document, or the whole corpus) uses, for "is this name mentioned?"."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.words: set[str] = set()
        for text in texts:
            self.words.update(content_words(text))
        self.stems = {stem(w) for w in self.words}

    def form(self, word: str) -> str | None:
        """How this text writes a word: itself, or a country alias ("finland" -> "finnish"); None if absent."""
        if word in self.words or stem(word) in self.stems:
            return word
        return next((a for a in sorted(place_aliases().get(word, ())) if a in self.words), None)

    def mentions(self, phrase: Sequence[str]) -> bool:
        """True when every word of a name is used, or its initials are ("european union" -> "eu")."""
        if len(phrase) > 1 and "".join(w[0] for w in phrase) in self.words:
            return True
        return all(self.form(word) is not None for word in phrase)


class RareWords:
    """Tells rare words (likely names: "zelensky", "scholz") from common words and their typos ("whta")."""

    def __init__(self, common: frozenset[str]) -> None:
        self._common = common
        self._sorted = sorted(common)

    def is_rare(self, word: str) -> bool:
        if not self._common or word in self._common or not word.isalpha() or len(word) < 4:
            return False
        near = process.extractOne(
            word, self._sorted, scorer=DamerauLevenshtein.normalized_similarity, score_cutoff=0.75
        )
        return near is None or near[0][0] != word[0]  # close to a common word: a typo of it


class LexicalIndex:
    """BM25 over chunks plus the corpus vocabulary, built from the index's texts at load time."""

    def __init__(self, chunk_texts: Sequence[str], sentence_texts: Sequence[str]) -> None:
        chunk_stems = [stems(t) for t in chunk_texts]
        self.vocabulary = Vocabulary(chunk_texts)
        self._vocabulary_list = sorted(self.vocabulary.words)
        self.sentence_stems = [set(stems(t)) for t in sentence_texts]
        # Document frequency over sentences: the unit the answer is chosen from.
        frequency: Counter[str] = Counter()
        for sentence in self.sentence_stems:
            frequency.update(sentence)
        total = max(len(self.sentence_stems), 1)
        self._idf = {s: math.log(1 + (total - n + 0.5) / (n + 0.5)) for s, n in frequency.items()}
        self.unknown_idf = math.log(1 + (total + 0.5) / 0.5)
        self._bm25 = bm25s.BM25()
        self._bm25.index([s or [""] for s in chunk_stems], show_progress=False)
        self._chunk_count = len(chunk_texts)

    def idf(self, stem_: str) -> float:
        """Inverse sentence frequency; words the corpus never uses weigh the most."""
        return self._idf.get(stem_, self.unknown_idf)

    def correct(self, word: str) -> str:
        """The corpus word a misspelt query word most likely meant ("bidn" -> "biden"), else the word."""
        if word in self.vocabulary.words or len(word) < 4 or any(ch.isdigit() for ch in word):
            return word
        if stem(word) in self.vocabulary.stems:
            return word
        match = process.extractOne(word, self._vocabulary_list, scorer=fuzz.ratio, score_cutoff=85)
        if match is None:
            return word
        candidate = match[0]
        # A typo changes a letter or two and keeps the first one: "Crimea" must not become "crime",
        # nor "leader" become "lead".
        if candidate[0] != word[0] or abs(len(candidate) - len(word)) > 1:
            return word
        return str(candidate)

    def chunk_scores(self, query_stems: Iterable[str]) -> np.ndarray:
        """BM25 score of every chunk for the query stems."""
        known = [s for s in query_stems if s in self.vocabulary.stems]
        if not known:
            return np.zeros(self._chunk_count, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)
