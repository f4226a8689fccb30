"""The console's layout: the answer wrapped between words like its sources, with and without colour."""

from __future__ import annotations

import re

import pytest

from bot.answering.answer import Answer, Citation, Shown
from bot.console import Style, format_answer, wrap

SENTENCE = (
    'U.S. President Joe Biden last week warned Putin of "sanctions like he\'s never seen" should Russian troops '
    "massed near the Ukrainian border launch an attack."
)
STYLING = re.compile(r"\033\[[0-9;]*m")


def visible(line: str) -> str:
    return STYLING.sub("", line)


@pytest.mark.parametrize("width", [20, 40, 79, 88])
def test_wrap_breaks_only_between_words(width: int) -> None:
    lines = wrap(SENTENCE, width, "Answer: ", "        ")
    assert all(len(line) <= width for line in lines)
    assert " ".join(line.strip() for line in lines) == "Answer: " + SENTENCE  # no word cut, none lost
    assert all(line.startswith("        ") for line in lines[1:])


def test_wrap_nasty_cases() -> None:
    assert wrap("", 10, "A: ") == ["A: "]
    assert wrap("a\n\tb   c", 80) == ["a b c"]  # any white space is one space
    assert wrap("exactly10! next", 10) == ["exactly10!", "next"]  # a full line is not broken early
    assert wrap("x " + "y" * 30 + " z", 10) == ["x", "y" * 30, "z"]  # a word longer than a line stays whole
    # Styling takes no room: the same breaks with and without it.
    styled = "\033[1mFrench President\033[0m Emmanuel \033[1mMacron\033[0m called"
    assert [visible(line) for line in wrap(styled, 24)] == wrap(visible(styled), 24)


def _answer(text: str) -> Answer:
    citation = Citation(1, "cgtn.txt", "Putin wants talks", 10, 1705, 1705 + len(text), text, 1.3)
    return Answer(question="q", answered=True, text=text, citations=[citation], shown=Shown(key_terms=("warned",)))


@pytest.mark.parametrize("colour", [False, True])
def test_the_answer_line_wraps_at_words_like_the_sources(colour: bool) -> None:
    # The Answer: line was one long line, so the terminal broke it mid-word ("att/ack").
    shown = format_answer(_answer(SENTENCE), Style(enabled=colour, width=80)).splitlines()
    sources = shown.index(next(line for line in shown if "Sources:" in line))
    answer_lines = [visible(line) for line in shown[:sources]]
    assert len(answer_lines) == 3 and all(len(line) <= 80 for line in answer_lines)
    assert answer_lines[0].startswith("Answer: U.S. President") and answer_lines[1].startswith("        ")
    assert " ".join(line.strip() for line in answer_lines) == "Answer: " + SENTENCE
    assert all(len(visible(line)) <= 80 for line in shown)  # the quotes too
