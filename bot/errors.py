"""storybot's exception hierarchy: each error carries a message a user can act on.

StorybotError
├── ConfigError          a setting is missing or wrong
├── CorpusError          no readable article in the corpus directory
├── ModelLoadError       the embedding (or reranker) model cannot be loaded
└── IndexError_          the built index cannot be used
    └── IndexDamagedError  a file of the index is unreadable or inconsistent
"""

from __future__ import annotations

from pathlib import Path


class StorybotError(Exception):
    """Base class: str(error) is a one-line message meant for the user."""

    exit_code = 1


class ConfigError(StorybotError):
    """A setting is missing or has a value storybot cannot use."""

    exit_code = 2


class CorpusError(StorybotError):
    """The corpus directory holds no article storybot can read."""

    exit_code = 2


class ModelLoadError(StorybotError):
    """The embedding model could not be loaded from the configured path or name."""

    exit_code = 2


class IndexError_(StorybotError):  # noqa: N801 - avoid shadowing the builtin IndexError
    """The index cannot be used."""

    exit_code = 2


class IndexDamagedError(IndexError_):
    """A file of the built index is truncated, garbage or inconsistent with the rest."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"the index file {path} is damaged ({problem}); run `storybot rebuild` to rebuild it")
