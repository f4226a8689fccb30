"""The console front end: an interactive chat and `ask`, with input and output injected for tests."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.answering.answer import Answer
from bot.answering.conversation import Session
from bot.answering.lexical import key_word_spans
from bot.feedback import FeedbackLog
from bot.service import StorybotService

ReadLine = Callable[[str], str]  # prompt -> line; raises EOFError at the end of input
Write = Callable[[str], None]

EXIT_WORDS = frozenset({"exit", "quit", ":q", "/exit", "/quit", "bye"})

HELP = """\
Ask anything about the article in plain words, e.g. "What did Biden warn?".
Every answer is the article's own sentence, followed by numbered quotes and where they stand.
Commands:  sources   list the articles
           reset     forget the conversation (follow-up questions use the last few turns)
           feedback good|bad [note]   record whether the last answer was right
           help      this text
           exit      leave (or press Ctrl-D)"""


@dataclass(frozen=True)
class Style:
    """ANSI styling, or none at all when the terminal has no colour."""

    enabled: bool

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)

    def cyan(self, text: str) -> str:
        return self._wrap("36", text)


def _emphasise(text: str, terms: Iterable[str], style: Style) -> str:
    if not style.enabled:
        return text
    pieces = []
    position = 0
    for start, end in key_word_spans(text, terms):
        pieces += [text[position:start], style.bold(text[start:end])]
        position = end
    return "".join(pieces) + text[position:]


def format_answer(answer: Answer, style: Style, width: int = 88) -> str:
    """An answer and its citations, readable at a glance."""
    lines: list[str] = []
    if answer.answered and answer.text:
        if answer.highlight and style.enabled:
            start, end = answer.highlight
            shown = answer.text[:start] + style.bold(answer.text[start:end]) + answer.text[end:]
        else:
            shown = _emphasise(answer.text, answer.key_terms, style)
        lines.append(style.green(style.bold("Answer: ")) + shown)
        if answer.corrections:
            read_as = ", ".join(f"'{typed}' as '{meant}'" for typed, meant in answer.corrections.items())
            lines.append(style.dim(f"(reading {read_as})"))
        heading = "Sources"
    else:
        lines.append(style.yellow(answer.reason or "The article doesn't say."))
        heading = "Closest passage (not an answer)"
    # A refusal shows only the closest passage: more unrelated quotes would read like evidence.
    citations = answer.citations if answer.answered else answer.citations[:1]
    if citations:
        lines.append(style.dim(heading + ":"))
    for citation in citations:
        offsets = f"{citation.doc} {citation.start}-{citation.end}"
        where = f"{citation.title}, paragraph {citation.paragraph} ({offsets})"
        quote = textwrap.fill(
            f"\u201c{' '.join(citation.text.split())}\u201d",
            width=width,
            initial_indent="      ",
            subsequent_indent="      ",
        )
        lines.append(f"  {style.cyan(f'[{citation.n}]')} {style.dim(where)}")
        lines.append(quote)
    return "\n".join(lines)


def format_sources(service: StorybotService) -> str:
    lines = ["Articles in the corpus:"]
    for info in service.documents:
        details = ", ".join(part for part in (info.outlet, info.date) if part)
        lines.append(f"  - {info.title}" + (f" ({details})" if details else "") + f"  [{info.name}]")
    return "\n".join(lines)


def run_chat(
    service: StorybotService,
    read_line: ReadLine,
    write: Write,
    style: Style,
    feedback: FeedbackLog | None = None,
) -> None:
    """The interactive loop: read a line, answer it, until exit or end of input."""
    session = Session(max_turns=service.settings.history_turns)
    titles = "; ".join(info.title for info in service.documents)
    write(style.bold("storybot") + f" - ask about: {titles}\nType a question, 'help' for commands, 'exit' to leave.")
    last: Answer | None = None
    while True:
        try:
            line = read_line("\n? ")
        except (EOFError, KeyboardInterrupt):
            write("")
            return
        command = line.strip()
        lowered = command.lower()
        if not command:
            continue
        if lowered in EXIT_WORDS:
            return
        if lowered in {"help", "?", "/help"}:
            write(HELP)
        elif lowered in {"sources", "/sources"}:
            write(format_sources(service))
        elif lowered in {"reset", "/reset"}:
            session.reset()
            write("Forgotten: the next question starts a new conversation.")
        elif lowered.split()[0] in {"feedback", "/feedback"}:
            write(_record_feedback(command, last, feedback))
        else:
            last = service.ask(command, session)
            write(format_answer(last, style))


def _record_feedback(command: str, last: Answer | None, feedback: FeedbackLog | None) -> str:
    parts = command.split(maxsplit=2)
    if len(parts) < 2 or parts[1].lower() not in {"good", "bad", "up", "down", "+", "-"}:
        return "Usage: feedback good|bad [note]"
    if last is None:
        return "Ask a question first; feedback is about the last answer."
    if feedback is None:
        return "Feedback is not being recorded in this session."
    good = parts[1].lower() in {"good", "up", "+"}
    feedback.record(last.to_json(), good=good, note=parts[2] if len(parts) > 2 else None, channel="console")
    return f"Thanks, recorded in {feedback.path}."


@dataclass(frozen=True)
class BatchQuestion:
    question: str
    session: str | None


def parse_batch_line(line: str) -> BatchQuestion | None:
    """A stdin line of `ask`: plain text, or {"q": "...", "session": "id"} for follow-up tests."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return BatchQuestion(text, None)
        if isinstance(data, dict) and isinstance(data.get("q"), str):
            session = data.get("session")
            return BatchQuestion(data["q"], None if session is None else str(session))
    return BatchQuestion(text, None)


def answer_batch(service: StorybotService, lines: Iterable[str], write: Write, as_json: bool, style: Style) -> int:
    """Answer each line in turn with one loaded model; returns how many questions were answered."""
    sessions: dict[str, Session] = {}
    count = 0
    for line in lines:
        item = parse_batch_line(line)
        if item is None:
            continue
        session = None
        if item.session is not None:
            session = sessions.setdefault(item.session, Session(max_turns=service.settings.history_turns))
        answer = service.ask(item.question, session)
        count += 1
        if as_json:
            write(json.dumps(answer.to_json(), ensure_ascii=False))
        else:
            write(style.bold(f"Q: {answer.question}") + "\n" + format_answer(answer, style) + "\n")
    return count


def history_file(data_dir: Path) -> Path:
    return data_dir / "console_history"
