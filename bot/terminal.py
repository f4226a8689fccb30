"""Text that is safe to echo to a terminal: no escape sequences, no control characters, no lone surrogates."""

from __future__ import annotations

import re

# Whole escape sequences first (CSI "ESC [ ... m", OSC "ESC ] ... BEL", two-byte "ESC x"), so their
# printable tails ("[31m") do not survive; then any other C0/C1 control, DEL and bidi override.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (window title, hyperlinks)
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # 8-bit CSI
    r"|\x1b[@-Z\\-_]?"  # other two-character escapes, or a lone ESC
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """`text` with lone surrogates (which cannot be written as UTF-8) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def printable(text: str, keep_newlines: bool = True) -> str:
    """`text` without terminal escape sequences and control characters; tabs (and newlines) kept."""
    text = without_surrogates(text)
    text = _ESCAPE_SEQUENCE.sub("", text)
    text = _CONTROL.sub("", text)
    return text if keep_newlines else text.replace("\n", " ")
