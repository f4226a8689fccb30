"""Words against the corpus: spelling correction, "is this name mentioned?", IDF weights and BM25 ranking.

Everything here reads the index's inverted maps (bot.indexing.metadata); nothing scans the corpus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein

from bot.indexing.metadata import MetadataStore
from bot.indexing.terms import STOPWORDS, WORD, is_english_word, is_figure, normalize_word, stem, transpositions


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
        # Some demonyms are lists ("Bosnian, Herzegovinian", "Serbian/Montenegrin"): each is a form.
        demonyms = re.split(r"[,/]", str(data.get("demonym") or ""))
        forms = [data.get("name"), *demonyms, str(data.get("capital") or "").split(" ")[0]]
        forms += [alt for alt in data.get("altSpellings") or [] if isinstance(alt, str) and alt.isascii()]
        words_ = {normalize_word(f.strip()) for f in forms if isinstance(f, str) and f and " " not in f.strip()}
        words_.discard("")
        for word in words_:
            aliases.setdefault(word, set()).update(words_ - {word})
    return {word: frozenset(others) for word, others in aliases.items()}


@lru_cache(maxsize=1)
def demonyms() -> frozenset[str]:
    """The words that name a people or its adjective ("finnish", "french"): never a person a pronoun stands for."""
    import importlib.resources
    import json

    found: set[str] = set()
    for entry in (importlib.resources.files("countryinfo") / "data").iterdir():
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            found.update(normalize_word(d.strip()) for d in re.split(r"[,/]", str(data.get("demonym") or "")))
    found.discard("")
    return frozenset(found)


def spellings(word: str) -> list[str]:
    """The word and the other ways a text may write the same place or people ("finland": "finnish", ...)."""
    return [word, *sorted(place_aliases().get(word, ()))]


def initials(phrase: Sequence[str]) -> str:
    """ "european union" -> "eu"; empty for a single word, which is not its own initial."""
    return "".join(w[0] for w in phrase) if len(phrase) > 1 else ""


class Vocabulary:
    """The words the articles use, for "is this name mentioned?" and spelling correction."""

    def __init__(self, words: Mapping[str, str]) -> None:
        self.words = set(words)  # word -> its stem, as the index stored them
        self.stems = set(words.values())

    def form(self, word: str) -> str | None:
        """How the articles write a word: itself (or its stem), or a country alias ("finland" -> "finnish");
        None if absent. `LexicalIndex.documents_with_form` asks the same per article."""
        if word in self.words or stem(word) in self.stems:
            return word
        return next((a for a in spellings(word) if a in self.words), None)

    def mentions(self, phrase: Sequence[str]) -> bool:
        """True when every word of a name is used, or its initials are ("european union" -> "eu")."""
        if initials(phrase) in self.words:
            return True
        return all(self.form(word) is not None for word in phrase)


class RareWords:
    """Tells rare words that are likely names ("zelensky", "scholz") from common words, their typos ("whta")
    and English words the model's vocabulary holds only in pieces ("plethora", "evacuees")."""

    def __init__(self, common: frozenset[str]) -> None:
        self._common = common
        self._sorted = sorted(common)

    def is_rare(self, word: str) -> bool:
        if not self._common or word in self._common or not word.isalpha() or len(word) < 4:
            return False
        if is_english_word(word):
            return False
        near = process.extractOne(
            word, self._sorted, scorer=DamerauLevenshtein.normalized_similarity, score_cutoff=0.75
        )
        return near is None or near[0][0] != word[0]  # close to a common word: a typo of it


class LexicalIndex:
    """BM25 over chunks, IDF over sentences and the corpus vocabulary, all from the index's metadata."""

    def __init__(self, metadata: MetadataStore, sentence_count: int) -> None:
        self._metadata = metadata
        words = metadata.vocabulary()
        self.vocabulary = Vocabulary(words)
        self._vocabulary_list = sorted(words)
        # Document frequency over sentences: the unit the answer is chosen from.
        self._total = max(sentence_count, 1)

    def idfs(self, stems_: Iterable[str]) -> dict[str, float]:
        """Inverse sentence frequency of each stem; words the corpus never uses weigh the most."""
        wanted = list(dict.fromkeys(stems_))
        return self.inverse_frequencies(wanted, self._metadata.sentence_frequencies(wanted), self._total)

    @staticmethod
    def inverse_frequencies(stems_: Iterable[str], counts: Mapping[str, int], total: int) -> dict[str, float]:
        """BM25's IDF of each stem among `total` sentences, `counts` of them holding it; absent stems weigh most."""
        total = max(total, 1)
        unknown = math.log(1 + (total + 0.5) / 0.5)
        return {
            s: math.log(1 + (total - counts[s] + 0.5) / (counts[s] + 0.5)) if counts.get(s) else unknown
            for s in dict.fromkeys(stems_)
        }

    def correct(self, word: str) -> str:
        """The corpus word a misspelt query word most likely meant ("bidn" -> "biden"), else the word."""
        if word in self.vocabulary.words or len(word) < 4 or is_figure(word):
            return word
        if stem(word) in self.vocabulary.stems:
            return word
        # Two letters swapped ("bidne") is the commonest typo, and a ratio of 80 for a five-letter word.
        swapped = sorted(w for w in transpositions(word) if w in self.vocabulary.words)
        if len(swapped) == 1:
            return swapped[0]
        match = process.extractOne(word, self._vocabulary_list, scorer=fuzz.ratio, score_cutoff=85)
        if match is None:
            return word
        candidate = match[0]
        # A typo changes a letter or two and keeps the first one: "Crimea" must not become "crime",
        # nor "leader" become "lead".
        if candidate[0] != word[0] or abs(len(candidate) - len(word)) > 1:
            return word
        return str(candidate)

    def chunk_ranks(self, query_stems: Sequence[str], limit: int) -> dict[int, int]:
        """1-based BM25 rank of the best `limit` chunks holding any query stem."""
        best = self._metadata.bm25_chunks(query_stems, limit)
        return {chunk_id: rank for rank, (chunk_id, _) in enumerate(best, start=1)}

    def documents_with_form(self, word: str) -> frozenset[str]:
        """Articles that use a word, its stem, or a country alias of it ("finland": those saying "finnish")."""
        return self._metadata.documents_with("words", spellings(word)) | (
            self._metadata.documents_with("stems", [stem(word)])
        )

    def documents_mentioning(self, phrase: Sequence[str]) -> frozenset[str]:
        """Articles that use every word of a name, or its initials ("european union" -> "eu"): the per-article
        form of `Vocabulary.mentions`."""
        found: frozenset[str] | None = None
        for word in phrase:
            with_word = self.documents_with_form(word)
            found = with_word if found is None else found & with_word
        if initials(phrase):
            found = (found or frozenset()) | self._metadata.documents_with("words", [initials(phrase)])
        return found or frozenset()

    def topic_of(self, stem_: str) -> frozenset[str]:
        """The one article a stem is a topic of (in its title or used there often, and in no other), or none."""
        # Two found are enough to know it is not one article's: a common word must not list thousands.
        documents = self._metadata.documents_with("topics", [stem_], limit=2)
        if len(documents) == 1 and self._metadata.documents_with("stems", [stem_], limit=2) == documents:
            return documents
        return frozenset()
