"""storybot's exception hierarchy: each error carries a message a user can act on.

StorybotError
├── ConfigError          a setting is missing or wrong
├── CorpusError          no readable article in the corpus directory
├── ModelLoadError       the embedding model or the reader cannot be loaded
├── UnknownStoryError    no story has the key asked for
└── IndexError_          the built index cannot be used
    └── IndexDamagedError  a file of the index is unreadable or inconsistent
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.terminal import printable


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


class UnknownStoryError(StorybotError):
    """No story has this key; `closest` holds the keys most like it, best first."""

    exit_code = 2

    def __init__(self, key: str, closest: list[str]) -> None:
        self.key = key
        self.closest = closest
        shown = printable(key, keep_newlines=False)
        shown = shown if len(shown) <= 70 else shown[:67] + "..."
        message = f'No story "{shown}".' if shown.strip() else "No story key given."
        if closest:
            message += " Closest: " + ", ".join(closest) + "."
        super().__init__(message)


class IndexError_(StorybotError):  # noqa: N801 - avoid shadowing the builtin IndexError
    """The index cannot be used."""

    exit_code = 2


class IndexDamagedError(IndexError_):
    """A file of the built index is truncated, garbage or inconsistent with the rest."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.detail = problem  # in full, for the log
        self.problem = _without_library_text(problem)
        super().__init__(
            f"the index file {path} is damaged ({self.problem}); run `storybot rebuild --full` to rebuild it"
        )


# FAISS reports a bad file with its C++ function and source path: "Error in void faiss::read_xb_vector(...) at
# /project/faiss/...". That is for the log; the user is told the file is damaged and how to fix it.
_LIBRARY_TEXT = re.compile(r"(:\s*)?(Error in |\S*faiss::|\S*/project/).*", re.S)


def _without_library_text(problem: str) -> str:
    """The problem without a library's internal message (C++ signatures, source paths)."""
    return _LIBRARY_TEXT.sub("", problem).strip() or "unreadable"
