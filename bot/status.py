"""Status lines for the person at the terminal: plain text on stderr, one line per event.

Logging is for the logs (timestamps, levels, tracebacks); these lines say what storybot is doing
right now: loading the model, building a missing index, where the bot is running.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def show(message: str) -> None:
    """Print one status line to stderr (looked up at call time, so tests can capture it)."""
    print(message, file=sys.stderr, flush=True)


def loading_model() -> None:
    """The line every command that loads the model prints first: the load takes a few silent seconds."""
    show("Loading the model...")


def folder(path: Path) -> str:
    """A directory as a status line names it: "index/", so "No index yet in index/" reads as a place."""
    return f"{path}{os.sep}"
