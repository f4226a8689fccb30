"""Question -> ranked passages and scored sentences: dense (MiniLM + FAISS) and lexical (BM25), fused."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from bot.answering.lexical import LexicalIndex, RareWords
from bot.indexing.chunking import Chunk, Sentence
from bot.indexing.embedding import Embedder
from bot.indexing.index import StoredIndex
from bot.indexing.metadata import MetadataStore, SentenceRow
from bot.indexing.store import VectorStore
from bot.indexing.terms import (
    STOPWORDS,
    WORD,
    content_words,
    is_english_word,
    is_figure,
    normalize_word,
    stem,
    transpositions,
    words,
)

RRF_K = 10  # small corpora: a low constant lets the top ranks of each list count for more
DENSE_CANDIDATES = 50  # chunks FAISS returns for the dense ranking
BM25_CANDIDATES = 100  # chunks the lexical ranking returns
SENTENCE_CANDIDATES = 40  # sentences scored in full: the closest by cosine ...
CHUNK_CANDIDATES = 12  # ... and every sentence of the best fused chunks
LEXICAL_WEIGHT = 0.6  # how much IDF-weighted word overlap adds to a sentence's cosine score
CHUNK_WEIGHT = 0.25  # how much the surrounding chunk's cosine and BM25 rank add
MENTION_DOCUMENTS = 20  # articles read to learn which pronoun the articles use for a name
RARE_WORD_LOOKUPS = 8  # words of one question checked against the model's vocabulary as possible names

_QUESTION_KINDS = (
    ("how_many", re.compile(r"\bhow (many|much)\b|\bwhat (number|percentage|amount)\b", re.I)),
    ("when", re.compile(r"^\s*(when|what (time|day|date|year|month))\b|\bwhen\b", re.I)),
    ("where", re.compile(r"^\s*where\b|\bwhere\b", re.I)),
    ("who", re.compile(r"^\s*(who|whom|whose)\b|\b(who|whom)\b", re.I)),
    ("which", re.compile(r"^\s*which\b", re.I)),
    ("why", re.compile(r"^\s*why\b", re.I)),
    ("yesno", re.compile(r"^\s*(did|does|do|is|are|was|were|has|have|had|will|would|can|could)\b", re.I)),
)


# Questions about the article itself rather than its story: answered from its header lines. The reader saw
# too few of them in training (about 30 of 3,700 questions) to learn that the date line answers "when
# was it published", so the kind is read from the wording, like who/when/where.
_ARTICLE = r"\b(?:article|story|report|piece|news|this|it)\b"
_HEADER_ROLES = (
    (
        "date",
        re.compile(
            rf"\b(?:when|what (?:date|day|time))\b.*{_ARTICLE}.*\b(?:published|posted|updated|written|"
            rf"come out|came out|released|dated)\b|\b(?:publication|published) (?:date|day)\b"
            # "the date of the article", as "the title of the article" asks for the headline
            rf"|\bdate\s+of\s+(?:the|this)\s+(?:article|story|piece|report)\b",
            re.I,
        ),
    ),
    (
        "outlet",
        re.compile(
            rf"\b(?:which|what) (?:outlet|publication|newspaper|paper|site|website|news ?(?:site|outlet|"
            rf"organi[sz]ation|agency|service))\b.*\b(?:publish|ran|run|carr|report|post)|\bwho "
            rf"(?:published|ran|posted|reported)\b.*{_ARTICLE}",
            re.I,
        ),
    ),
    # "the title of the deputy minister" is a person's title; "the title of the article" is the headline.
    (
        "title",
        re.compile(r"\bheadline\b|\btitle\b(?!\s+of\s+(?!(?:the|this)\s+(?:article|story|piece|report)\b))", re.I),
    ),
)


def header_role(question: str) -> str | None:
    """ "date", "outlet" or "title" when the question asks for that fact of the article itself, else None."""
    return next((role for role, pattern in _HEADER_ROLES if pattern.search(question)), None)


def question_kind(question: str) -> str:
    """who / when / where / how_many / which / why / yesno / what."""
    for kind, pattern in _QUESTION_KINDS:
        if pattern.search(question):
            return kind
    return "what"


def question_entities(question: str) -> list[tuple[str, ...]]:
    """Names and figures the question asks about, as phrases of words as written ("European", "Union")."""
    phrases: list[list[str]] = []
    previous_was_name = False
    for position, word in enumerate(words(question)):
        lowered = word.lower().replace("’", "'").removesuffix("'s")  # "What's" is "what"
        figure = is_figure(word)
        # The first word is capitalised anyway; it names something only when it is not an English word
        # ("Approximately how many ...", "Prior to iOS 5 ...", but "Putin said what?").
        is_name = (
            word[0].isupper()
            and lowered not in STOPWORDS
            and (position > 0 or (lowered not in _OPENERS and not is_english_word(lowered)))
        )
        if (figure or is_name) and normalize_word(word):
            if previous_was_name and not figure:
                phrases[-1].append(word)
            else:
                phrases.append([word])
            previous_was_name = not figure
        else:
            previous_was_name = False
    return [tuple(p) for p in phrases]


# "Which agency ...", "What guarantees ...": the noun names the kind of thing the answer is.
_FOCUS = re.compile(
    r"^\s*(?:which|what|whose)\s+((?:[A-Za-z'-]+\s+){0,2}?([A-Za-z'-]+))\s+"
    r"(?:did|does|do|is|are|was|were|has|have|had|will|would|can|could|should)\b",
    re.I,
)
# "What is the population of ...", "Who is the secretary general of ...": an attribute of something.
_ATTRIBUTE = re.compile(
    r"^\s*(?:what|who|which)(?:'s|\s+(?:is|are|was|were))\s+(the|a|an)\s+([\w' -]+?)\s+(?:of|for|in|at)\b",
    re.I,
)
# "... the mayor of Riverton ...": an attribute of a named thing, anywhere in the question.
_ATTRIBUTE_OF_NAME = re.compile(r"\b(the|a|an)\s+([a-z][\w'-]*(?:\s+[a-z][\w'-]*){0,2})\s+of\s+(?:the\s+)?[A-Z]")
_OPENERS = frozenset(["name", "list", "give", "explain", "describe", "summarize", "summarise"])


def _with_article(article: str, phrase: str) -> str:
    """ "the population", "a good recipe", "an official residence": the phrase with the question's article."""
    if article.lower() == "the":
        return f"the {phrase}"
    return f"{'an' if phrase[:1] in 'aeiou' else 'a'} {phrase}"


@dataclass(frozen=True)
class QuestionAnalysis:
    text: str
    kind: str
    terms: tuple[str, ...]  # the question's content words, spelling corrected against the corpus
    stems: tuple[str, ...]  # stems of terms
    entities: tuple[str, ...]
    unknown_entities: tuple[str, ...]  # names or figures the corpus never mentions
    focus: str | None = None  # stem of the answer-type noun: "agency" in "Which agency ...?"
    documents: frozenset[str] | None = None  # the articles it can be answered from (None: any)
    unrelated: tuple[str, ...] = ()  # names and topics that no single article mentions together
    # "the population" in "What is the population of X?" when the corpus never names it, with the article the
    # question gave it, so the refusal reads as the question did ("a good recipe", not "the good recipe").
    missing_attribute: str | None = None
    corrections: dict[str, str] = field(default_factory=dict)
    header_role: str | None = None  # "date", "outlet", "title": a fact of the article's header is asked for
    scoped: bool = False  # asked within one story: `documents` is that story, whatever the question names


@dataclass(frozen=True)
class ScoredSentence:
    sentence: Sentence
    sentence_id: int
    chunk_id: int
    dense: float  # cosine(question, sentence)
    lexical: float  # IDF-weighted share of question words the sentence contains
    score: float


@dataclass(frozen=True)
class Passage:
    chunk: Chunk
    score: float  # the best sentence score inside the chunk


@dataclass(frozen=True)
class Retrieval:
    question: QuestionAnalysis
    passages: list[Passage]  # best first
    sentences: list[ScoredSentence]  # best first


class Retriever:
    """Searches one loaded index; built once, shared by every chat.

    Nothing here grows with the corpus at start-up: words, names and topics are looked up in the index's
    inverted maps per question, and FAISS returns only the nearest vectors.
    """

    def __init__(self, index: StoredIndex, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder
        self.lexical = LexicalIndex(index.metadata, len(index.sentences))
        self.vocabulary = self.lexical.vocabulary
        self._rare = RareWords(getattr(embedder, "common_words", frozenset()))

    def analyse(self, question: str, scope: frozenset[str] | None = None) -> QuestionAnalysis:
        """Words, entities and kind of a question, worked out once for retrieval, the scorer and spans.

        With a `scope` (the articles of one story), the question is read as if they were the whole corpus:
        a name only other stories mention is unknown to it.
        """
        question, corrections = self._common_words_fixed(question)
        terms = []
        for word in content_words(question):
            corrected = self.lexical.correct(word)
            # A typo is shown to the user; an English word read as the corpus's form of it ("meet" as "met")
            # is not one, as "finland" read as "finnish" below is not.
            if corrected != word and not is_english_word(word):
                corrections[word] = corrected
            if corrected not in self.vocabulary.words:
                corrected = self.vocabulary.form(corrected) or corrected  # "finland" is written "finnish"
            terms.append(corrected)
        terms = self._name_officials(terms, corrections, scope)
        written = question_entities(question)
        phrases = [tuple(self.lexical.correct(normalize_word(w)) for w in p) for p in written]
        entities = tuple(" ".join(p) for p in phrases)
        # Unknown names are reported as the user wrote them.
        unknown = tuple(" ".join(w) for w, p in zip(written, phrases, strict=True) if not self._mentions(p, scope))
        # Typed in lower case, a name is only visible as a rare word the articles never use: "what did zelensky say".
        named = {normalize_word(w) for p in written for w in p}
        absent = [
            w
            for w in dict.fromkeys(content_words(question))
            if w not in named and not self._uses(self.lexical.correct(w), scope)
        ]
        # Each rare-word lookup scans the model's 30,000-word vocabulary (about 2 ms): unbounded, a long
        # line of made-up words took seconds. A few suffice to tell that the question names the unknown.
        unknown += tuple(w for w in absent[:RARE_WORD_LOOKUPS] if self._rare.is_rare(w))
        # A story's scope is the fixed set of articles to answer from: what the question names is checked
        # against it above (unknown names) rather than used to pick articles.
        documents, unrelated = (scope, ()) if scope is not None else self._documents_about(written, phrases, terms)
        stems_ = tuple(dict.fromkeys(stem(t) for t in terms))
        focus_match = _FOCUS.match(question)
        focus = None
        # The head of "Which news agency did ...": the last noun before the verb.
        if focus_match and focus_match.group(2).lower() not in STOPWORDS:
            focus = stem(normalize_word(focus_match.group(2)))
        attribute = _ATTRIBUTE.match(question) or _ATTRIBUTE_OF_NAME.search(question)
        missing_attribute = None
        if attribute:
            # Looked up in the articles the question is about: a mayor in another story does not count.
            nouns = content_words(attribute.group(2))
            if nouns and not any(self._uses(self.lexical.correct(n), documents) for n in nouns):
                missing_attribute = _with_article(attribute.group(1), " ".join(nouns))
        return QuestionAnalysis(
            missing_attribute=missing_attribute,
            focus=focus,
            text=question,
            kind=question_kind(question),
            header_role=header_role(question),
            terms=tuple(terms),
            stems=stems_,
            entities=entities,
            unknown_entities=unknown,
            corrections=corrections,
            documents=documents,
            unrelated=unrelated,
            scoped=scope is not None,
        )

    def _common_words_fixed(self, question: str) -> tuple[str, dict[str, str]]:
        """The question with two letters of a small common word swapped back ("Waht did ..." -> "What did ...")
        and what was changed. Left as typed, such a word reads as a name the articles never mention, and the
        question is refused for it ("The article doesn't mention Waht")."""
        fixed: dict[str, str] = {}

        def fix(match: re.Match[str]) -> str:
            word = match.group(0)
            lowered = word.lower()
            # Whole words of three letters or more: not "fo" (nor the "wasn" of "wasn't", one token here).
            if len(word) < 3 or not word.isalpha():
                return word
            if lowered in STOPWORDS or is_english_word(lowered) or self.vocabulary.form(lowered) is not None:
                return word
            # Only the question's own small words ("what", "where", "does"): the English dictionary holds rare
            # words a swap reaches by chance ("lowest" -> "lowset", "waht" -> the dialect "wath"), and a name the
            # articles lack ("Oman") must stay a name, not become "moan". Content words are the corpus's to
            # correct (LexicalIndex.correct).
            common = {w for w in transpositions(lowered) if w in STOPWORDS}
            if len(common) != 1:  # none, or "hwo": "who" or "how"
                return word
            (right,) = common
            fixed[lowered] = right
            return right.capitalize() if word[0].isupper() else right

        return WORD.sub(fix, question), fixed

    def passages_mentioning(self, name: str, max_documents: int = MENTION_DOCUMENTS) -> list[str]:
        """The text of every passage of the articles that mention a name (the first `max_documents` of them
        by name, so a name common across a large archive costs a bounded lookup)."""
        phrase = tuple(self.lexical.correct(normalize_word(w)) for w in name.split())
        documents = sorted(self.lexical.documents_mentioning(phrase))[:max_documents]
        if not documents:
            return []
        chunk_ids, _ = self.index.metadata.passage_ids(documents)
        return [chunk.text for chunk in self.index.metadata.chunks(chunk_ids).values()]

    def knows(self, word: str) -> bool:
        """Whether the articles use a word that carries meaning, in some form or with a typo ("macronn")."""
        normal = normalize_word(word)
        if not normal or normal in STOPWORDS:
            return False
        return self.vocabulary.form(self.lexical.correct(normal)) is not None

    def _mentions(self, phrase: tuple[str, ...], documents: frozenset[str] | None) -> bool:
        """Whether the articles (all of them, or those given) mention a name."""
        if documents is None:
            return self.vocabulary.mentions(phrase)
        return bool(self.lexical.documents_mentioning(phrase) & documents)

    def _uses(self, word: str, documents: frozenset[str] | None) -> bool:
        """Whether the articles (all of them, or those named) use a word in some form."""
        if not documents:
            return self.vocabulary.form(word) is not None
        return bool(self.lexical.documents_with_form(word) & documents)

    def _name_officials(
        self, terms: list[str], corrections: dict[str, str], scope: frozenset[str] | None = None
    ) -> list[str]:
        """ "the deputy foreign minister" -> "ryabkov", when the articles name exactly one such official.

        A qualifier in the question ("Finnish", "U.S.") picks among officials with the same title.
        """
        stems_ = {stem(t) for t in terms}
        matches = [o for o in self.index.metadata.officials(stems_, scope) if o.title <= stems_]
        if not matches:
            return terms
        best = max(len(o.qualifiers & stems_) for o in matches)
        best_matches = [o for o in matches if len(o.qualifiers & stems_) == best]
        surnames = {normalize_word(o.name.split()[-1]) for o in best_matches}
        if len(surnames) != 1:
            return terms  # "the president": which one is not clear
        official, surname = best_matches[0], surnames.pop()
        if surname in terms:
            return terms
        consumed = official.title | (official.qualifiers & stems_)
        phrase = " ".join(t for t in terms if stem(t) in consumed)
        corrections[phrase] = official.name
        return [t for t in terms if stem(t) not in consumed] + [surname]

    def _documents_about(
        self, written: list[tuple[str, ...]], phrases: list[tuple[str, ...]], terms: list[str]
    ) -> tuple[frozenset[str] | None, tuple[str, ...]]:
        """The articles a question can be answered from, and the names no single article connects.

        A question naming someone (or an article's own topic, like "harbour") is answered only from
        articles that mention all of it. When no article holds all of it ("What did Putin say about the
        harbour?" mixes two stories, but so may "the name of the solar facility" when only one of two
        articles happens to use "name"), every article stays a candidate and the names are returned: the
        scorer weighs that evidence (`names_apart`) with the rest instead of refusing unread.
        """
        required: list[tuple[str, frozenset[str]]] = []
        if len(self.index.documents) < 2:
            return None, ()
        for words_as_written, phrase in zip(written, phrases, strict=True):
            docs = self.lexical.documents_mentioning(phrase)
            if docs:
                required.append((" ".join(words_as_written), docs))
        named = {word for phrase in phrases for word in phrase}
        for term in terms:
            topic_docs = self.lexical.topic_of(stem(term)) if term not in named else frozenset()
            if topic_docs:
                required.append((term, topic_docs))
        if not required:
            return None, ()
        allowed = frozenset(self.index.documents)
        for _, docs in required:
            if not allowed & docs:
                return None, tuple(dict.fromkeys(n for n, _ in required))
            allowed &= docs
        return allowed, ()

    def search(self, question: str, limit: int = 8, scope: frozenset[str] | None = None) -> Retrieval:
        """Rank passages and sentences for a question (only from the articles in `scope`, when given)."""
        analysis = self.analyse(question, scope)
        query = self.embedder.encode([question])[0]
        return self.search_vector(analysis, query, limit)

    def search_vector(self, analysis: QuestionAnalysis, query: np.ndarray, limit: int = 8) -> Retrieval:
        """The ranking step, given an already-encoded question."""
        story = self._story(analysis, query) if analysis.scoped and analysis.documents is not None else None
        if story is not None:
            dense_chunk, bm25_rank = dict(story.dense_chunks), story.bm25_rank
        else:
            dense_chunk = dict(self.index.chunk_vectors.search(query, DENSE_CANDIDATES))
            bm25_rank = self.lexical.chunk_ranks(analysis.stems, BM25_CANDIDATES)
        if analysis.documents is not None and story is None:
            # Ranked among the chunks of the articles the question is about, not among every article's:
            # a passage's rank, and the scores built on it, should not depend on how large the archive
            # around its article is.
            owner = self.index.metadata.chunk_documents(dense_chunk.keys() | bm25_rank.keys())
            dense_chunk = {c: s for c, s in dense_chunk.items() if owner.get(c) in analysis.documents}
            kept = sorted((c for c in bm25_rank if owner.get(c) in analysis.documents), key=bm25_rank.__getitem__)
            bm25_rank = {c: rank for rank, c in enumerate(kept, start=1)}
        dense_rank = {chunk_id: rank for rank, chunk_id in enumerate(dense_chunk, start=1)}
        # Reciprocal rank fusion over the chunks either ranking returned; any other chunk scores 0.
        fused = {
            c: (1.0 / (RRF_K + dense_rank[c]) if c in dense_rank else 0.0)
            + (1.0 / (RRF_K + bm25_rank[c]) if c in bm25_rank else 0.0)
            for c in dense_rank.keys() | bm25_rank.keys()
        }
        top_fused = max(fused.values(), default=1.0) or 1.0

        weights = story.idfs(analysis.stems) if story else self.lexical.idfs(analysis.stems)
        known_stems = story.stems if story else self.vocabulary.stems
        if analysis.focus in weights and analysis.focus in known_stems:
            weights[analysis.focus] *= 2  # the answer must be of the kind the question names
        total_weight = sum(weights.values()) or 1.0

        if story is not None:
            rows, sentence_dense = story.candidates(fused)
            dense_chunk = dict(story.chunk_cosines)
        else:
            rows, sentence_dense = self._candidates(query, fused, analysis.documents)
            # Every candidate's chunk gets its real cosine, not -1 for missing FAISS's top DENSE_CANDIDATES: in
            # a large archive, that cut falls between a passage and its neighbours by accident.
            _add_cosines(dense_chunk, self.index.chunk_vectors, {row.chunk_id for row in rows.values()}, query)
        scored = []
        for sentence_id, row in rows.items():
            chunk_id = row.chunk_id
            lexical = sum(w for s, w in weights.items() if s in row.stems) / total_weight
            dense = sentence_dense[sentence_id]
            score = (
                dense
                + LEXICAL_WEIGHT * lexical
                + CHUNK_WEIGHT * (dense_chunk.get(chunk_id, -1.0) + fused.get(chunk_id, 0.0) / top_fused) / 2
            )
            scored.append(ScoredSentence(row.sentence, sentence_id, chunk_id, dense, lexical, score))
        scored.sort(key=lambda s: (-s.score, s.sentence_id))
        scored = _distinct_texts(scored)

        best_in_chunk: dict[int, float] = {}
        for item in scored:
            best_in_chunk.setdefault(item.chunk_id, item.score)
        order = sorted(best_in_chunk, key=lambda c: best_in_chunk[c], reverse=True)[:limit]
        chunks = self.index.metadata.chunks(order)
        passages = [Passage(chunks[c], best_in_chunk[c]) for c in order]
        return Retrieval(analysis, passages, scored[: limit * 3])

    def _story(self, analysis: QuestionAnalysis, query: np.ndarray) -> _Story:
        """Every passage of the story asked within, ranked and weighed as an index of that story alone would.

        A story is small (tens of chunks), so its vectors are read by id and all compared with the question:
        FAISS's nearest neighbours in a large archive may hold none of them.
        """
        assert analysis.documents is not None
        metadata = self.index.metadata
        chunk_ids, sentence_ids = metadata.passage_ids(analysis.documents)
        chunk_cosines = _cosines(self.index.chunk_vectors, chunk_ids, query)
        terms = MetadataStore.of_chunk_terms(metadata.chunk_terms(chunk_ids))
        try:
            bm25 = terms.bm25_chunks(analysis.stems, BM25_CANDIDATES)
        finally:
            terms.close()
        return _Story(
            chunk_cosines=chunk_cosines,
            dense_chunks=sorted(chunk_cosines.items(), key=lambda item: (-item[1], item[0]))[:DENSE_CANDIDATES],
            bm25_rank={chunk_id: rank for rank, (chunk_id, _) in enumerate(bm25, start=1)},
            rows=metadata.sentences(sentence_ids),
            sentence_cosines=_cosines(self.index.sentence_vectors, sentence_ids, query),
        )

    def _candidates(
        self, query: np.ndarray, fused: dict[int, float], documents: frozenset[str] | None
    ) -> tuple[dict[int, SentenceRow], dict[int, float]]:
        """Sentences worth scoring (the closest by cosine and those of the best fused chunks), and their cosines.

        Scoring every sentence of a large corpus would dominate the answer time.
        """
        dense = dict(self.index.sentence_vectors.search(query, SENTENCE_CANDIDATES))
        top_chunks = sorted(fused, key=lambda c: (-fused[c], c))[:CHUNK_CANDIDATES]
        ids = set(dense)
        for chunk in self.index.metadata.chunks(top_chunks).values():
            ids.update(chunk.sentence_ids)
        rows = self.index.metadata.sentences(ids)
        rows = {i: row for i, row in sorted(rows.items()) if documents is None or row.sentence.doc in documents}
        _add_cosines(dense, self.index.sentence_vectors, rows.keys(), query)
        return rows, dense


@dataclass(frozen=True)
class _Story:
    """The passages of the story a question is asked within, with what ranking them needs."""

    chunk_cosines: dict[int, float]  # every chunk of the story
    dense_chunks: list[tuple[int, float]]  # the nearest, best first, as FAISS over the story alone returns them
    bm25_rank: dict[int, int]
    rows: dict[int, SentenceRow]  # every sentence of the story
    sentence_cosines: dict[int, float]

    @property
    def stems(self) -> set[str]:
        return {s for row in self.rows.values() for s in row.stems}

    def idfs(self, stems_: Iterable[str]) -> dict[str, float]:
        """Inverse sentence frequency within the story: the same weights as an index of it alone gives."""
        counts = Counter(s for row in self.rows.values() for s in row.stems)
        return LexicalIndex.inverse_frequencies(stems_, counts, len(self.rows))

    def candidates(self, fused: dict[int, float]) -> tuple[dict[int, SentenceRow], dict[int, float]]:
        """`Retriever._candidates` within the story: the closest sentences and those of the best fused chunks."""
        nearest = sorted(self.sentence_cosines, key=lambda i: (-self.sentence_cosines[i], i))[:SENTENCE_CANDIDATES]
        top_chunks = set(sorted(fused, key=lambda c: (-fused[c], c))[:CHUNK_CANDIDATES])
        ids = set(nearest) | {i for i, row in self.rows.items() if row.chunk_id in top_chunks}
        return {i: self.rows[i] for i in sorted(ids)}, self.sentence_cosines


def _cosines(store: VectorStore, ids: list[int], query: np.ndarray) -> dict[int, float]:
    """The cosine to the query of each id's vector (read by id, not searched)."""
    if not ids:
        return {}
    return {item: float(vector @ query) for item, vector in zip(ids, store.get(ids), strict=True)}


def _add_cosines(cosines: dict[int, float], store: VectorStore, ids: Iterable[int], query: np.ndarray) -> None:
    """Put in the cosine to the query of each id the store's search did not return (read by id, not searched)."""
    missing = sorted(set(ids) - cosines.keys())
    if missing:
        for item, vector in zip(missing, store.get(missing), strict=True):
            cosines[item] = float(vector @ query)


def _distinct_texts(scored: list[ScoredSentence]) -> list[ScoredSentence]:
    """The best-ranked copy of each sentence text.

    An archive republishes: a wire sentence can stand word for word in many articles. Each copy would take
    one of the reader's few places and split the scorer's choice among equal candidates; one copy, the one
    ranked highest (its article matched the question best), stands for all of them.
    """
    seen: set[str] = set()
    distinct = []
    for item in scored:
        key = " ".join(item.sentence.text.split())
        if key not in seen:
            seen.add(key)
            distinct.append(item)
    return distinct
