"""The one object every front end uses: load the model and index once, then ask(question, session)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, replace

from bot import status
from bot.answering.answer import Answer, Shown, ask_which_story, compose_answer
from bot.answering.conversation import Session, agreement, make_turn, resolve
from bot.answering.intake import (
    NOT_A_QUESTION,
    NOT_ENGLISH,
    cleaned_question,
    looks_like_question,
    names_alone,
    problem_before_loading,
    reads_as_english,
)
from bot.answering.passage_reader import PassageReader, is_passage_reader
from bot.answering.reader import CrossEncoderReader, Reader, reader_path
from bot.answering.retrieval import Retriever
from bot.answering.scorer import Scorer, contending_documents, score_candidates
from bot.answering.stories import Story, StoryCatalogue
from bot.config import Settings
from bot.errors import CorpusError, IndexDamagedError, IndexError_, ModelLoadError
from bot.indexing.corpus import CorpusRules, story_keys
from bot.indexing.embedding import Embedder, ProgressCallback, SentenceTransformerEmbedder
from bot.indexing.index import (
    MANIFEST,
    BuildReport,
    DocumentInfo,
    StoredIndex,
    build_index,
    build_lock,
    current_build,
    load_index,
    read_manifest,
    staleness,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Loaded:
    """What is swapped in together when the index changes."""

    retriever: Retriever
    stories: StoryCatalogue


class StorybotService:
    """Loads once; answers any number of questions from any number of sessions."""

    def __init__(
        self, settings: Settings, embedder: Embedder, index: StoredIndex, reader: Reader, scorer: Scorer
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.reader = reader
        self.scorer = scorer
        self.threshold = settings.answer_threshold if settings.answer_threshold is not None else scorer.threshold
        self._set_index(index)

    # -- loading and rebuilding ---------------------------------------------------------------

    @classmethod
    def load(
        cls, settings: Settings, embedder: Embedder | None = None, reader: Reader | None = None
    ) -> StorybotService:
        """Load the index and the model; rebuild first when the index is missing or stale.

        The index is checked before the model loads, so a damaged index is reported at once.
        """
        model_name = embedder.name if embedder else settings.embedding_model
        index, stale = current_index(settings, model_name)
        if index is None and stale is None:
            status.show(f"No index yet in {status.folder(settings.index_dir)}: building it now.")
        elif index is None:
            folder = status.folder(settings.index_dir)
            status.show(f"The index in {folder} is out of date ({stale}): rebuilding it now.")
        if embedder is None:
            status.loading_model()  # the index is checked first, so a damaged one is reported before this wait
            embedder = SentenceTransformerEmbedder(settings.embedding_model)
        reader = reader or load_reader(settings.reader_model, settings.reader_precision)
        scorer = load_scorer(settings.reader_model)
        if index is None:
            report = rebuild_index(settings, embedder)
            index = report.index
            # Closes the "building it now" line: the wait is over, and what was built.
            articles, passages = len(index.documents), len(index.chunks)
            status.show(
                f"Index built: {articles} article{'s' if articles != 1 else ''}, {passages} passages "
                f"({report.seconds:.1f} s)."
            )
        elif index.manifest.dimension != embedder.dimension:
            raise IndexDamagedError(
                index.path / MANIFEST if index.path else settings.index_dir,
                f"dimension {index.manifest.dimension}, the model gives {embedder.dimension}",
            )
        return cls(settings, embedder, index, reader, scorer)

    def with_settings(self, settings: Settings) -> StorybotService:
        """A service with other settings (limits, data dir) sharing this one's models and index."""
        return StorybotService(settings, self.embedder, self.index, self.reader, self.scorer)

    def _set_index(self, index: StoredIndex) -> None:
        # One assignment, so a question in flight sees the old index or the new one, never a mix.
        self._loaded = _Loaded(Retriever(index, self.embedder), StoryCatalogue(index.metadata.document_headers()))

    @property
    def retriever(self) -> Retriever:
        return self._loaded.retriever

    @property
    def index(self) -> StoredIndex:
        return self.retriever.index

    def refresh_if_stale(self) -> str | None:
        """Rebuild when the corpus files changed since the index was built; returns why, or None."""
        manifest = self.index.manifest
        reason = staleness(
            manifest,
            self.settings.corpus_dir,
            self.embedder.name,
            self.settings.chunk_max_chars,
            corpus_rules(self.settings),
            self.settings.vector_store_url,
        )
        if reason:
            status.show(f"The corpus changed ({reason}): rebuilding the index while answering from the old one.")
            self.rebuild()
        return reason

    def rebuild(self, progress: ProgressCallback | None = None) -> BuildReport:
        """Rebuild from the corpus and start answering from the new index."""
        report = rebuild_index(self.settings, self.embedder, progress)
        self._set_index(report.index)
        return report

    # -- asking ---------------------------------------------------------------------------------

    def check(self, question: str) -> str | None:
        """Why this input gets no answer at all (empty, too long, not a question, not English), or None."""
        question = cleaned_question(question)
        problem = problem_before_loading(question, self.settings.max_question_chars)
        if problem is None and not looks_like_question(question, self.retriever.knows):
            problem = NOT_A_QUESTION
        if problem is None and not reads_as_english(question):
            problem = NOT_ENGLISH
        return problem

    def ask(self, question: str, session: Session | None = None, story: str | None = None) -> Answer:
        """Answer one question from the articles (only from the story with key `story`, when given), using
        the session's history for follow-ups.

        Input that is no question (see `check`) is answered with why, and quotes nothing; an unknown story
        key raises UnknownStoryError.
        """
        loaded = self._loaded  # one snapshot: a rebuild may swap in a new index meanwhile
        scope = frozenset({loaded.stories.get(story).doc}) if story is not None else None
        question = cleaned_question(question)
        problem = self.check(question)
        if problem is not None:
            return Answer(question=question, answered=False, text=None, citations=[], shown=Shown(reason=problem))
        resolved = resolve(question, session.last if session else None, agreement(loaded.retriever.passages_mentioning))
        if resolved.text != question:
            log.debug("follow-up %r read as %r", question, resolved.text)
        ask_back = resolved.who_is_meant()
        if ask_back is not None:  # "What did he say then?" with no "he" before it: nothing to look up
            return Answer(question=question, answered=False, text=None, citations=[], shown=Shown(reason=ask_back))
        retriever = loaded.retriever
        retrieval = retriever.search(resolved.text, scope=scope)
        documents = retriever.index.documents
        candidates = score_candidates(retrieval, self.reader, self.scorer, documents, retriever.index.metadata.chunks)
        # Several stories could answer it: ask which one is meant rather than guess. Only stories with a key
        # can be offered, since the choice comes back as a key.
        contending = contending_documents(retrieval.question, candidates, self.threshold)
        offered = [found for doc in contending if (found := loaded.stories.of_document(doc)) is not None]
        if len(offered) >= 2:
            answer = ask_which_story(retrieval, documents, candidates, offered, self.settings.top_k)
        else:
            # A name alone ("putin") asks what the article says about it: its whole sentence, not the span the
            # reader would pick for a question that was never asked.
            lone_name = names_alone(question)
            answer = compose_answer(
                retrieval,
                documents,
                candidates,
                self.threshold,
                self.settings.top_k,
                None if lone_name else self.scorer.span_trust_probability,
            )
            if lone_name:  # the name is emphasised where it stands, not a span nobody asked for
                answer = replace(answer, shown=replace(answer.shown, highlight=None))
        if session is not None:
            # The reader's span is what "him" in the next question may stand for, whether it was shown alone
            # or in bold inside its sentence.
            likely = reader_span_text(answer)
            session.remember(make_turn(resolved.text, likely, likely is not None, retrieval.question.unknown_entities))
        # The user is told what history filled in, the same way as spelling corrections.
        shown = replace(answer.shown, corrections={**resolved.read_as, **answer.shown.corrections})
        return replace(answer, question=question, shown=shown)

    async def ask_async(self, question: str, session: Session | None = None, story: str | None = None) -> Answer:
        """ask() off the event loop: embedding is CPU work and must not block other chats."""
        if story is None:  # the call as it was before stories: wrappers of ask() without a story keep working
            return await asyncio.to_thread(self.ask, question, session)
        return await asyncio.to_thread(self.ask, question, session, story)

    # -- stories --------------------------------------------------------------------------------

    @property
    def catalogue(self) -> StoryCatalogue:
        """Every keyed story of the loaded index, and the corpus files that have no key."""
        return self._loaded.stories

    def stories(self) -> list[Story]:
        """Every story with a key, newest first (by the header's date when it reads as one, then title)."""
        return list(self._loaded.stories.stories)

    def story(self, key: str) -> Story:
        """The story with this key; UnknownStoryError names the closest keys when none has it."""
        return self._loaded.stories.get(key)

    def search_stories(self, words: str) -> list[Story]:
        """Stories whose headline, outlet or key hold the words, best first."""
        return self._loaded.stories.search(words)

    # -- the corpus, for front ends -------------------------------------------------------------

    @property
    def documents(self) -> list[DocumentInfo]:
        return list(self.index.documents.values())

    def surrounding_paragraphs(self, doc: str, paragraph: int, around: int = 1) -> list[tuple[int, str]]:
        """(number, verbatim text) of a paragraph and its neighbours, for "show more context"."""
        info = self.index.documents.get(doc)
        if info is None:
            return []
        numbers = range(paragraph - around, paragraph + around + 1)
        return [(n, info.paragraphs[n][2]) for n in numbers if n in info.paragraphs]


def reader_span_text(answer: Answer) -> str | None:
    """The reader's likely answer of an answered question: the span shown alone, or the one in bold."""
    if not answer.answered:
        return None
    sentence, highlight = answer.shown.sentence, answer.shown.highlight
    if answer.text != sentence:
        return answer.text
    return sentence[highlight[0] : highlight[1]] if sentence is not None and highlight is not None else None


@functools.cache
def load_reader(model: str, precision: str = "auto") -> Reader:
    """The reader, loaded once per process (tests and benchmarks build many services): a passage reader or a
    sentence reader, as its folder's reader.json says (a sentence reader reads in int8, or fp32 when asked)."""
    if is_passage_reader(reader_path(model)):
        return PassageReader(model, precision)
    return CrossEncoderReader(model, quantize=precision != "fp32")


def current_index(settings: Settings, model_name: str) -> tuple[StoredIndex | None, str | None]:
    """The built index when it matches the corpus files and these settings, else (None, why it is out of
    date); (None, None) when none is built. Checked without the model."""
    configure_vector_store(settings)
    build_dir = current_build(settings.index_dir)
    if build_dir is None:
        return None, None
    rules = corpus_rules(settings)
    manifest = read_manifest(build_dir)
    stale = staleness(
        manifest, settings.corpus_dir, model_name, settings.chunk_max_chars, rules, settings.vector_store_url
    )
    return (None, stale) if stale else (load_index(build_dir, store_url=settings.vector_store_url), None)


def load_story_catalogue(settings: Settings) -> StoryCatalogue | None:
    """The stories of the current index, read without loading the model (`storybot stories`, a --story key
    checked at once); None when the index is missing or out of date, so that loading the service builds it."""
    index, _ = current_index(settings, settings.embedding_model)
    return StoryCatalogue(index.metadata.document_headers()) if index is not None else None


def load_scorer(reader_model: str) -> Scorer:
    """The scorer fitted with this reader, from scorer.json beside its weights."""
    path = reader_path(reader_model)
    try:
        return Scorer.load(path)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"cannot load the scorer of the reader {reader_model!r} ({error})") from None


def configure_vector_store(settings: Settings) -> None:
    """Hand the vector engine's API key to its client (only when the vectors live in an engine)."""
    if settings.vector_store_url and settings.vector_store_api_key:
        from bot.indexing.qdrant_store import register_api_key

        register_api_key(settings.vector_store_url, settings.vector_store_api_key.get_secret_value())


def corpus_rules(settings: Settings) -> CorpusRules:
    """Which corpus files are read: the same rules for building and for the staleness check."""
    return CorpusRules(follow_symlinks=settings.follow_symlinks, max_file_bytes=settings.max_corpus_file_bytes)


def rebuild_index(
    settings: Settings, embedder: Embedder, progress: ProgressCallback | None = None, full: bool = False
) -> BuildReport:
    """Build and atomically swap in a new index; the old one answers until the swap.

    Only new and changed articles are chunked and embedded, unless `full`.
    """
    if not settings.corpus_dir.is_dir():
        raise CorpusError(f"the corpus directory {settings.corpus_dir} does not exist (STORYBOT_CORPUS_DIR)")
    configure_vector_store(settings)
    try:
        with build_lock(settings.index_dir):
            started = time.perf_counter()
            report = build_index(
                settings.corpus_dir,
                settings.index_dir,
                embedder,
                settings.chunk_max_chars,
                corpus_rules(settings),
                progress,
                full=full,
                store_url=settings.vector_store_url,
            )
            seconds = time.perf_counter() - started
    except OSError as error:
        raise IndexError_(
            f"cannot write the index to {settings.index_dir} ({error.strerror or error}); "
            "check STORYBOT_INDEX_DIR and its permissions"
        ) from error
    log.info(
        "built the index in %s: %d documents (%d unchanged), %d chunks, %d texts embedded, %.1fs",
        settings.index_dir,
        len(report.index.documents),
        report.reused,
        len(report.index.chunks),
        report.embedded,
        seconds,
    )
    # Said once, when the files are read, as skipped files are: a file without a key is still answered from.
    for problem in story_keys(report.index.documents)[1]:
        status.show(problem)
    return replace(report, seconds=seconds)
