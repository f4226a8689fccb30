"""The console front end: an interactive chat and `ask`, with input and output injected for tests."""

from __future__ import annotations

import json
import logging
import re
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from bot.answering.answer import Answer, Story
from bot.answering.conversation import Session
from bot.answering.intake import NOT_A_QUESTION, NOT_A_QUESTION_TO_ASK, problem_before_loading
from bot.answering.lexical import key_word_spans
from bot.config import Settings
from bot.errors import IndexDamagedError, UnknownStoryError
from bot.feedback import FeedbackLog
from bot.service import StorybotService
from bot.terminal import printable, without_surrogates

log = logging.getLogger(__name__)

ReadLine = Callable[[str], str]  # prompt -> line; raises EOFError at the end of input
Write = Callable[[str], None]

EXIT_WORDS = frozenset({"exit", "quit", ":q", "/exit", "/quit", "bye"})
CANCELLED = "Cancelled that answer; the conversation is kept. (Ctrl-C at the prompt leaves.)"

HELP = """\
Ask anything about the article in plain words, e.g. "What did Biden warn?".
Every answer is the article's own sentence, followed by numbered quotes and where they stand.
Commands:  sources   list the articles
           story     the story questions are about, and the newest stories to pick from
           story WORDS   find a story by its headline (or key) and ask about it alone
           story all     ask about every story again
           reset     forget the conversation (follow-up questions use the last few turns)
           feedback good|bad [note]   record whether the last answer was right
           help      this text
           exit      leave (or press Ctrl-D)
Ctrl-C while an answer is being worked out cancels that answer; at the prompt it leaves."""


@dataclass(frozen=True)
class Style:
    """ANSI styling (or none at all when the terminal has no colour), and the width text is wrapped to."""

    enabled: bool
    width: int = 88

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


_STYLING = re.compile(r"\033\[[0-9;]*m")


def wrap(text: str, width: int, first: str = "", rest: str = "") -> list[str]:
    """`text` in lines of at most `width` columns, broken only between words; `first` and `rest` lead the lines.

    Styling codes take no room; a word longer than a line gets a line of its own rather than being cut.
    """
    lines: list[str] = []
    line, used, empty = first, len(_STYLING.sub("", first)), True
    for word in text.split():
        size = len(_STYLING.sub("", word))
        if not empty and used + 1 + size > width:
            lines.append(line)
            line, used, empty = rest, len(_STYLING.sub("", rest)), True
        line, used, empty = (line + word, used + size, False) if empty else (f"{line} {word}", used + 1 + size, False)
    lines.append(line)
    return lines


def format_answer(answer: Answer, style: Style) -> str:
    """An answer and its citations, readable at a glance (nothing from the text can drive the terminal)."""
    width = style.width
    lines: list[str] = []
    if answer.answered and answer.text:
        if answer.shown.highlight and style.enabled:
            start, end = answer.shown.highlight
            text = answer.text
            shown = printable(text[:start]) + style.bold(printable(text[start:end])) + printable(text[end:])
        else:
            shown = _emphasise(printable(answer.text), answer.shown.key_terms, style)
        label = "Answer: "
        lines += wrap(shown, width, style.green(style.bold(label)), " " * len(label))
        if answer.shown.corrections:
            read_as = ", ".join(f"'{typed}' as '{meant}'" for typed, meant in answer.shown.corrections.items())
            lines.append(style.dim(printable(f"(reading {read_as})")))
        heading = "Sources"
    elif answer.stories:
        # Several stories fit the question about equally: ask which one rather than guess.
        lines.append(style.yellow("Which story do you mean?"))
        lines += format_story_choices(answer.stories, style)
        return "\n".join(lines)
    else:
        lines.append(style.yellow(printable(answer.shown.reason or "The article doesn't say.")))
        heading = "Closest passage (not an answer)"
    # A refusal shows only the closest passage: more unrelated quotes would read like evidence.
    citations = answer.citations if answer.answered else answer.citations[:1]
    if citations:
        lines.append(style.dim(heading + ":"))
    for citation in citations:
        offsets = f"{citation.doc} {citation.start}-{citation.end}"
        where = printable(f"{citation.title}, paragraph {citation.paragraph} ({offsets})", keep_newlines=False)
        quote = textwrap.fill(
            f"\u201c{' '.join(printable(citation.text).split())}\u201d",
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
        line = f"  - {info.title}" + (f" ({details})" if details else "") + f"  [{info.name}]"
        lines.append(printable(line, keep_newlines=False))
    return "\n".join(lines)


STORIES_LISTED = 10  # stories a numbered list shows at once


def format_story(story: Story) -> str:
    """ "Headline (outlet, date) [key]" on one line."""
    details = ", ".join(part for part in (story.outlet, story.date) if part)
    return printable(story.title + (f" ({details})" if details else "") + f"  [{story.key}]", keep_newlines=False)


def format_story_choices(stories: list[Story], style: Style) -> list[str]:
    """ "  1. Headline (outlet, date) [key]", one line per story."""
    return [f"  {style.cyan(f'{n}.')} {format_story(story)}" for n, story in enumerate(stories, start=1)]


@dataclass
class ChatScope:
    """Which story the chat asks about (None: every story), and the numbered choice the user may answer."""

    story: Story | None = None
    choices: list[Story] | None = None
    pending: str | None = None  # the question to ask again within the story picked, after "Which story?"


def run_chat(
    service: StorybotService,
    read_line: ReadLine,
    write: Write,
    style: Style,
    feedback: FeedbackLog | None = None,
    story: Story | None = None,
) -> None:
    """The interactive loop: read a line, answer it, until exit or end of input; within `story` when given.

    Ctrl-C (KeyboardInterrupt) at the prompt is not caught: it ends the chat, and the CLI says so with exit
    code 130. Ctrl-C while an answer is being worked out cancels that answer only: the chat goes on, and
    its conversation is kept as it was before the question.
    """
    session = Session(max_turns=service.settings.history_turns)
    scope = ChatScope(story)
    titles = story.title if story else "; ".join(info.title for info in service.documents)
    write(style.bold("storybot") + f" - ask about: {titles}\nType a question, 'help' for commands, 'exit' to leave.")
    last: Answer | None = None
    while True:
        try:
            line = read_line("\n? ")
        except EOFError:
            write("")
            return
        command = line.strip()
        lowered = command.lower()
        if not command:
            continue
        if lowered in EXIT_WORDS:
            return
        question: str | None = None
        if lowered in {"help", "?", "/help"}:
            write(HELP)
        elif lowered in {"sources", "/sources"}:
            write(format_sources(service))
        elif lowered in {"reset", "/reset"}:
            session.reset()
            write("Forgotten: the next question starts a new conversation.")
        elif lowered.split()[0] in {"feedback", "/feedback"}:
            write(_record_feedback(command, last, feedback))
        elif lowered.split()[0] in {"story", "/story"}:
            write(_story_command(service, command.split(maxsplit=1)[1:], scope, session, style))
        elif scope.choices and command.isdigit() and 1 <= int(command) <= len(scope.choices):
            picked = scope.choices[int(command) - 1]
            _pick(scope, picked, session)
            write(f"Asking about: {format_story(picked)}")
            question, scope.pending = scope.pending, None
        else:
            question = command
        if question is None:
            continue
        try:
            last = service.ask(without_surrogates(question), session, scope.story.key if scope.story else None)
        except KeyboardInterrupt:  # the session remembers a turn only once it is answered: nothing to undo
            write(style.yellow(CANCELLED))
            continue
        except UnknownStoryError as error:  # the story left the corpus since it was picked
            scope.story = None
            write(style.yellow(f"{error} Asking about every story again."))
            continue
        except IndexDamagedError as error:  # found while reading a row: say which file and how to fix it
            log.error("%s", error.detail)
            write(style.yellow(str(error)))
            continue
        except Exception:  # a bug must not end the chat: log it, say so, take the next question
            log.exception("could not answer %r", question[:200])
            write(style.yellow("Sorry, something went wrong answering that. Please try another question."))
            continue
        write(format_answer(last, style))
        if last.stories:
            scope.choices, scope.pending = list(last.stories), question
            write(style.dim("Type its number to ask about that story alone."))


def _pick(scope: ChatScope, story: Story | None, session: Session) -> None:
    """Ask about `story` (None: every story) from now on; the conversation so far was about another one."""
    if story != scope.story:
        session.reset()
    scope.story, scope.choices = story, None


def _story_command(service: StorybotService, words: list[str], scope: ChatScope, session: Session, style: Style) -> str:
    """`story`, `story all` and `story WORDS`: say, leave or pick the story questions are about."""
    wanted = " ".join(words).strip()
    if not wanted:
        newest = service.stories()[:STORIES_LISTED]
        scope.choices, scope.pending = newest, None
        current = f"Asking about: {format_story(scope.story)}" if scope.story else "Asking about every story."
        if not newest:
            return current + "\nNo article has a story key (see the warnings of `storybot rebuild`)."
        return "\n".join([current, "Newest stories:", *format_story_choices(newest, style), _PICK_HINT])
    if wanted.lower() == "all":
        _pick(scope, None, session)
        return "Asking about every story."
    try:
        found = [service.story(wanted)]  # a key picks its story at once
    except UnknownStoryError:
        found = service.search_stories(wanted)
    if len(found) == 1:
        _pick(scope, found[0], session)
        return f"Asking about: {format_story(found[0])}"
    if not found:
        return printable(f"No story's headline holds {wanted!r}. Type 'story' to see the newest.", keep_newlines=False)
    scope.choices, scope.pending = found[:STORIES_LISTED], None
    more = f" (the best {STORIES_LISTED} of {len(found)})" if len(found) > STORIES_LISTED else ""
    return "\n".join([f"Stories that match{more}:", *format_story_choices(scope.choices, style), _PICK_HINT])


_PICK_HINT = "Type a number to ask about that story alone, or 'story all' for every story."


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
    error: str | None = None  # why the line cannot be asked, when it cannot
    story: str | None = None  # the key of the story to answer from (None: every story)


def parse_batch_line(line: str) -> BatchQuestion | None:
    """A stdin line of `ask`: plain text, or {"q": "...", "session": "id", "story": "key"}; None for a blank
    line (skipped)."""
    text = without_surrogates(line).strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return BatchQuestion(text, None)  # not JSON after all: the line is the question
        except RecursionError:
            return BatchQuestion(text, None, error="the line is JSON nested too deeply to read")
        if isinstance(data, dict):
            question, session, story = data.get("q"), data.get("session"), data.get("story")
            if not isinstance(question, str):
                why = 'it has no "q"' if question is None else 'its "q" is not text'
                return BatchQuestion(text, None, error=f'the line has no question ({why}): write {{"q": "..."}}')
            # "\ud800" escapes decode to lone surrogates, which no tokenizer or UTF-8 output accepts.
            question = without_surrogates(question)
            if story is not None and not isinstance(story, str):
                return BatchQuestion(
                    question, None, error='the line\'s "story" is not a story key: write {"q": "...", "story": "key"}'
                )
            return BatchQuestion(
                question,
                None if session is None else without_surrogates(str(session)),
                story=None if story is None else without_surrogates(story),
            )
    return BatchQuestion(text, None)


def _unanswered(question: str, error: str) -> dict[str, object]:
    """The `ask --json` object of a line that got no answer: the usual fields, plus why."""
    return {"question": question, "answered": False, "answer": None, "citations": [], "error": error}


@dataclass(frozen=True)
class BatchTally:
    lines: int  # lines handled: each got exactly one output
    asked: int  # lines that held a question and were asked (answered, refused, or hit a bug)


def answer_batch(
    service: Callable[[], StorybotService],
    settings: Settings,
    lines: Iterable[str | BatchQuestion],
    write: Write,
    as_json: bool,
    style: Style,
    story: str | None = None,
) -> BatchTally:
    """Answer each line in turn with one loaded model: one output per non-blank line, whatever happens.

    A str is a stdin line (see parse_batch_line), a BatchQuestion is asked as it is; a line without its own
    "story" is asked within `story`, when given. Each line is checked before the model is needed: `service()`
    loads it, and is first called for the first line worth asking, so empty or overlong input is refused
    at once.
    """
    sessions: dict[str, Session] = {}
    handled = asked = 0
    for line in lines:
        item = parse_batch_line(line) if isinstance(line, str) else line
        if item is None:
            continue
        handled += 1
        error = item.error or problem_before_loading(item.question, settings.max_question_chars)
        answer = None
        if error is None:
            loaded = service()
            session = None
            if item.session is not None:
                session = sessions.setdefault(item.session, Session(max_turns=settings.history_turns))
            key = item.story if item.story is not None else story
            try:
                error = loaded.check(item.question)  # not a question: said as an error, like the checks above
                if error is None and key is not None:
                    loaded.story(key)  # an unknown key is this line's error, named before anything is asked
                if error is None:
                    asked += 1
                    scoped = {"story": key} if key is not None else {}
                    answer = loaded.ask(item.question, session, **scoped)
            except UnknownStoryError as unknown:
                error = str(unknown)
            except IndexDamagedError:
                raise  # not this line's fault: every line after it would fail the same way
            except Exception as failure:  # one bad line must not cost the lines after it
                log.warning("could not answer line %d: %s: %s", handled, type(failure).__name__, failure)
                log.debug("traceback", exc_info=True)
                error = f"could not answer this line ({type(failure).__name__}); the other lines are unaffected"
        # The chat's hint says "or type 'help'", which `ask` has no use for.
        if error == NOT_A_QUESTION:
            error = NOT_A_QUESTION_TO_ASK
        if answer is not None and answer.shown.reason == NOT_A_QUESTION:
            answer = replace(answer, shown=replace(answer.shown, reason=NOT_A_QUESTION_TO_ASK))
        if as_json:
            data = answer.to_json() if answer is not None else _unanswered(item.question, error or "")
            write(without_surrogates(json.dumps(data, ensure_ascii=False)))
        elif answer is not None:
            write(style.bold(printable(f"Q: {answer.question}")) + "\n" + format_answer(answer, style) + "\n")
        else:
            asked_for = style.bold(printable(f"Q: {_shortened(item.question)}")) + "\n" if item.question.strip() else ""
            write(asked_for + style.yellow(printable(error or "")) + "\n")
    return BatchTally(handled, asked)


def _shortened(question: str, limit: int = 200) -> str:
    return question if len(question) <= limit else question[:limit] + "..."


def history_file(data_dir: Path) -> Path:
    return data_dir / "console_history"
