"""Shared fixtures: the real bundled model (loaded once per session), a fake embedder, corpora and settings."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bot import cli as cli_module
from bot.config import Settings
from bot.devtools.loopback_api import LoopbackBotAPI
from bot.indexing.embedding import ProgressCallback, SentenceTransformerEmbedder, normalize
from bot.service import StorybotService

from .helpers import REDIS_MISSING, TOKEN, RedisServer, free_port

if os.environ.get("PYTEST_XDIST_WORKER"):
    # scripts/test runs one worker per core: a worker that also spread each model pass over every core
    # would fight the other one for them.
    import torch

    torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
SEED_CORPUS = ROOT / "corpus"
SEED_ARTICLE = SEED_CORPUS / "cgtn-putin-nato-talks.txt"
DATA = Path(__file__).resolve().parent / "data"
FIXTURE_CORPUS = DATA / "fixture_corpus"


# The slowest modules, slowest first (CPU seconds measured with scripts/test's two workers;
# docs/development.md). xdist gives each worker one module at a time in collection order, and scripts/test
# turns off its default reordering by number of tests, which put these few-test modules last: one worker
# then ran 120 s of tests while the other ran 70 s. Started first, the long ones overlap with the rest.
SLOWEST_FIRST = (
    "test_quality_squad.py",  # 40 s: two SQuAD indexes and 273 questions
    "test_telegram_replicas.py",  # 20 s: three bot processes (two replicas and a restart) and a redis-server
    "test_telegram.py",  # 22 s: a bot process and 21 bots over HTTP
    "test_quality.py",  # 19 s
    "test_scale.py",  # 15 s: the scale bench with a cold process
    "test_answers.py",  # 12 s
    "test_telegram_webhook.py",  # 12 s: a bot process
    "test_telegram_order.py",  # 11 s: ten bots over HTTP, half of them on Redis
    "test_cli.py",  # 11 s: a storybot process
    "test_first_use.py",  # 10 s: a chat process, interrupted
    "test_stories.py",  # 9 s: the fixture articles' index
    "test_bad_input.py",  # 9 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def _dev_path() -> Path:
    # The shared dev questions live beside the repository; a copy is kept in tests/data for clean clones.
    shared = ROOT.parent / "shared" / "eval" / "dev.jsonl"
    return shared if shared.exists() else DATA / "dev.jsonl"


DEV_QUESTIONS = _dev_path()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class FakeEmbedder:
    """Deterministic bag-of-words vectors: fast, for tests of plumbing rather than of meaning."""

    def __init__(self, dimension: int = 64, name: str = "fake-embedder", fail_after: int | None = None) -> None:
        self.name = name
        self.dimension = dimension
        self.fail_after = fail_after  # raise after this many texts, to simulate a crash mid-build
        self.calls = 0

    def encode(self, texts: Sequence[str], progress: ProgressCallback | None = None) -> np.ndarray:
        self.calls += 1
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            if self.fail_after is not None and row >= self.fail_after:
                raise RuntimeError("simulated crash while embedding")
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.sha256(word.encode()).digest()
                vectors[row, int.from_bytes(digest[:4], "little") % self.dimension] += 1.0
        if progress:
            progress(len(texts), len(texts))
        return normalize(vectors)


@pytest.fixture(scope="session")
def real_embedder() -> SentenceTransformerEmbedder:
    """The bundled all-MiniLM-L6-v2, loaded once for the whole test session."""
    return SentenceTransformerEmbedder()


def make_settings(tmp_path: Path, corpus: Path | None = None, **overrides: object) -> Settings:
    """Settings isolated from the developer's .env and environment paths."""
    corpus_dir = tmp_path / "corpus"
    if not corpus_dir.exists():
        shutil.copytree(corpus or SEED_CORPUS, corpus_dir, ignore=shutil.ignore_patterns(".*"))
    values: dict[str, object] = {
        "corpus_dir": corpus_dir,
        "index_dir": tmp_path / "index",
        "data_dir": tmp_path / "data",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def seed_service(real_embedder: SentenceTransformerEmbedder, tmp_path_factory: pytest.TempPathFactory):
    """A service over the seed article with the real model; built once, shared by answer tests."""
    settings = make_settings(tmp_path_factory.mktemp("seed"))
    return StorybotService.load(settings, real_embedder)


@contextlib.contextmanager
def built_once(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A folder that every worker of this test run shares, held under a lock while the caller fills or reads it.

    The first worker to get the lock builds what belongs there (an index the tests only read); the others
    find it built and load it, instead of each paying for the same build.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, above each worker's own
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield base / name


@pytest.fixture(scope="session")
def fixture_service(real_embedder: SentenceTransformerEmbedder, tmp_path_factory: pytest.TempPathFactory):
    """The seed article plus the test fixture articles on other stories, with the real model.

    Its index is built once per run and shared by the workers; each worker keeps its own data folder.
    """
    with built_once(tmp_path_factory, "fixture-articles") as root:
        corpus = root / "corpus"
        if not corpus.exists():
            incoming = root / "corpus.incoming"  # a worker killed mid-copy leaves no half corpus behind
            shutil.rmtree(incoming, ignore_errors=True)
            incoming.mkdir(parents=True)
            for article in [SEED_ARTICLE, *FIXTURE_CORPUS.iterdir()]:
                shutil.copy(article, incoming)
            incoming.rename(corpus)
        data_dir = tmp_path_factory.mktemp("fixture-articles-data")
        return StorybotService.load(make_settings(root, data_dir=data_dir), real_embedder)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on loopback, one per test session (per worker); without one the tests fail, not skip."""
    if shutil.which("redis-server") is None:
        pytest.fail(REDIS_MISSING, pytrace=False)
    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    return redis_server.url


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


CliRunner = Callable[..., CliResult]


@pytest.fixture
def cli(
    real_embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> CliRunner:
    """`storybot ARGS` in-process through bot.cli.main(argv), sharing the session's model.

    Call it as cli(args, settings, stdin=""): the settings' directories go in through the environment, as
    a user would set them, and the working directory holds no .env. `stdin` may also be a text stream.
    """
    import bot.indexing.embedding
    import bot.service

    def shared_model(name: str | None = None) -> SentenceTransformerEmbedder:
        assert name in (None, real_embedder.name), f"tests share the bundled model, not {name}"
        return real_embedder

    monkeypatch.setattr(bot.indexing.embedding, "SentenceTransformerEmbedder", shared_model)
    monkeypatch.setattr(bot.service, "SentenceTransformerEmbedder", shared_model, raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }

    def run(args: list[str], settings: Settings, stdin: str | bytes | io.TextIOBase = "") -> CliResult:
        for name, value in (("CORPUS_DIR", settings.corpus_dir), ("INDEX_DIR", settings.index_dir)):
            monkeypatch.setenv(f"STORYBOT_{name}", str(value))
        monkeypatch.setenv("STORYBOT_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("NO_COLOR", "1")
        monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
        monkeypatch.chdir(settings.corpus_dir.parent)
        if isinstance(stdin, io.TextIOBase):
            monkeypatch.setattr(sys, "stdin", stdin)
        else:
            data = stdin.encode() if isinstance(stdin, str) else stdin
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
        capsys.readouterr()
        try:
            code = cli_module.main(args)
        finally:
            root.handlers[:] = handlers  # main() sets up logging for a process; give pytest its own back
            root.setLevel(level)
            for name, logger in logging.root.manager.loggerDict.items():  # main() quietens httpx and friends
                if isinstance(logger, logging.Logger):
                    logger.setLevel(levels.get(name, logging.NOTSET))
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture
async def api() -> AsyncIterator[LoopbackBotAPI]:
    """The loopback Bot API server a test's bot talks to over HTTP (Telegram's servers cannot be reached)."""
    server = LoopbackBotAPI(TOKEN)
    await server.start()
    yield server
    await server.stop()
