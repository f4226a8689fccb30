"""Telegram HTML for answers: escaping, emphasis, the short and the wider-context form, safe splitting.

Pure functions, no `telegram` import: every piece of corpus and user text goes through escape().
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from bot.answering.answer import Answer, Citation
from bot.answering.lexical import key_word_spans

TELEGRAM_MESSAGE_LIMIT = 4096
# The tags Telegram's HTML parse mode accepts (https://core.telegram.org/bots/api#html-style).
TELEGRAM_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
_TOKEN = re.compile(r"<[^<>]*>|&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);|[^<&]+|[<&]")


def escape(text: str) -> str:
    """Escape <, > and & (Telegram's HTML needs no more; quotes stay readable)."""
    return html.escape(text, quote=False)


def visible_text(telegram_html: str) -> str:
    """What a reader sees of a message: tags dropped, entities read (an answer in bold inside its quote
    is still one phrase)."""
    return html.unescape(re.sub(r"<[^<>]*>", "", telegram_html))


def emphasise(text: str, key_terms: Iterable[str]) -> str:
    """Escaped text with the question's key words (matched by stem) in <b>."""
    pieces = []
    position = 0
    for start, end in key_word_spans(text, key_terms):
        pieces.append(escape(text[position:start]))
        pieces.append(f"<b>{escape(text[start:end])}</b>")
        position = end
    pieces.append(escape(text[position:]))
    return "".join(pieces)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _read_as(corrections: dict[str, str]) -> str:
    return "(reading " + ", ".join(f"“{typed}” as “{meant}”" for typed, meant in corrections.items()) + ")"


def _source_line(title: str, paragraph: int) -> str:
    return f"— <i>{escape(title)}</i>, paragraph {paragraph}"


QUOTE_CHARS = 200  # a source quote in the short form; "Show context" has the whole paragraphs
_OPENING_WORDS = 8


def clip(text: str, limit: int = QUOTE_CHARS) -> str:
    """Text cut to at most `limit` characters at a word boundary, with "…" where it was cut."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    return text[: cut if cut > 0 else limit - 2].rstrip(" ,;:") + " …"


def short_quote(text: str, shown: str | None = None, limit: int = QUOTE_CHARS) -> str:
    """A citation as a short quote; `shown`, the sentence the reply already printed, is not repeated.

    The rest of the passage stays, with "…" where the shown sentence stood; a passage that is only that
    sentence shrinks to its opening words.
    """
    text = _one_line(text)
    if shown:
        sentence = _one_line(shown)
        before, found, after = text.partition(sentence)
        if found:
            before, after = before.strip(), after.strip()
            if not (before or after):
                words = sentence.split()
                return sentence if len(words) <= _OPENING_WORDS else " ".join(words[:_OPENING_WORDS]) + " …"
            return clip(" ".join(part for part in (before, "…", after) if part), limit)
    return clip(text, limit)


def quote_around(text: str, start: int, end: int, limit: int = QUOTE_CHARS) -> str:
    """A short quote (HTML) of a passage that keeps text[start:end], the answer taken from it, in bold.

    A clip of the passage's opening could cut away the very words a span answer came from ("delay" shown
    above a quote that stops at "...talks to begin without …"). The answer stays whole; the passage
    before it keeps its opening when that fits, else its last words after "…", and the rest is clipped.
    """
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    before, middle, after = (_one_line(part) for part in (text[:start], text[start:end], text[end:]))
    if not middle:
        return escape(clip(_one_line(text), limit))  # no answer to show: the plain short quote
    gap_before = " " if before and text[:start][-1:].isspace() else ""
    gap_after = " " if after and text[end:][:1].isspace() else ""
    room = limit - len(middle) - len(gap_before) - len(gap_after)
    if len(before) + len(after) > room:
        # The words before the answer get at most half the room, or what the words after leave of it.
        keep = max(min(len(before), room - min(len(after), room // 2) - 3), 0)  # 3: "… " and a gap
        if keep < len(before):
            tail = before[len(before) - keep :]
            if keep and before[len(before) - keep - 1] != " ":
                tail = tail.partition(" ")[2]  # start at a whole word
            if tail:
                before = "… " + tail
            else:
                before, gap_before = "…", " "
        after_room = limit - len(middle) - len(before) - len(gap_before) - len(gap_after)
        if len(after) > after_room:
            after = clip(after, after_room) if after_room >= 2 else "…"
    return f"{escape(before)}{gap_before}<b>{escape(middle)}</b>{gap_after}{escape(after)}"


def _bold_span(text: str, start: int, end: int) -> str:
    """Escaped text on one line with text[start:end] in <b>."""
    before, middle, after = text[:start], text[start:end], text[end:]
    pieces = [
        escape(_one_line(before)) + (" " if before[-1:].isspace() else ""),
        f"<b>{escape(_one_line(middle))}</b>",
        (" " if after[:1].isspace() else "") + escape(_one_line(after)),
    ]
    return "".join(pieces)


def _quote(citation: Citation, answer: Answer, whole_sentence: bool) -> str:
    """A citation's short quote (HTML): the answer's own passage shows the span answer it was taken from."""
    if citation.n == 1 and whole_sentence:
        return escape(short_quote(citation.text, answer.text))  # the reply printed that sentence already
    start, end = answer.shown.answer_start, answer.shown.answer_end
    if citation.n == 1 and start is not None and end is not None and citation.start <= start < end <= citation.end:
        return quote_around(citation.text, start - citation.start, end - citation.start)
    return escape(short_quote(citation.text))


def _is_whole_sentence(answer: Answer) -> bool:
    return not answer.shown.sentence or answer.text == answer.shown.sentence


def _answer_line(text: str, answer: Answer) -> str:
    """The answer itself: a sentence with the likely answer or the key words in bold, or a bold span."""
    if _is_whole_sentence(answer) and answer.shown.highlight:
        return _bold_span(text, *answer.shown.highlight)  # the likely answer inside the sentence
    if _is_whole_sentence(answer):
        return emphasise(_one_line(text), answer.shown.key_terms)
    return f"<b>{escape(_one_line(text))}</b>"  # a name, day, place or figure: the answer itself


def render_answer(answer: Answer, story: str | None = None, with_question: bool = False) -> str:
    """The short form: the answer with key words emphasised, then short quotes of the sources.

    Each thing is said once: the answering sentence is not quoted again in full under Sources, and the
    article title is written once when every source comes from the same article. Asked within a story
    (`story`: its title), the reply opens with the story's title, and only there. `with_question` writes
    the question out under it (a question asked by a button has no message to quote).
    """
    heading = [story_line(story)] if story else []
    if with_question:
        heading += [f"❓ <i>{escape(answer.question)}</i>", ""]
    if not answer.answered or not answer.text:
        parts = [*heading, f"🤷 <b>{escape(answer.shown.reason or 'The article does not say.')}</b>"]
        if answer.citations:
            closest = answer.citations[0]
            parts.append("\n<i>Closest passage (not an answer):</i>")
            parts.append(f"<blockquote>{escape(_one_line(closest.text))}</blockquote>")
            paragraph = f"— <i>paragraph {closest.paragraph}</i>"
            parts.append(paragraph if story else _source_line(closest.title, closest.paragraph))
        return "\n".join(parts)
    whole_sentence = _is_whole_sentence(answer)
    parts = [*heading, _answer_line(answer.text, answer)]
    if answer.shown.corrections:
        parts.append(f"<i>{escape(_read_as(answer.shown.corrections))}</i>")
    titles = {citation.title for citation in answer.citations}
    one_article = len(titles) == 1
    named = one_article and not story  # the story's line above already names it
    parts += ["", "<b>Sources</b>" + (f" — <i>{escape(next(iter(titles)))}</i>" if named else "")]
    for citation in answer.citations:
        quote = f"<b>[{citation.n}]</b> “{_quote(citation, answer, whole_sentence)}”"
        if one_article:
            parts.append(f"{quote} <i>(paragraph {citation.paragraph})</i>")
        else:
            parts.append(f"{quote} {_source_line(citation.title, citation.paragraph)}")
    return "\n".join(parts)


def story_line(title: str) -> str:
    """The line that names the story a reply is about."""
    return f"📰 <b>{escape(title)}</b>"


def render_inline_answer(answer: Answer, title: str | None) -> str:
    """The message an inline result sends: the story's title line, the question, the answer and its citation.

    `title` names the story (None: an unscoped refusal, which names none). Short by construction: a
    question of at most 256 characters (Telegram's inline limit), one sentence and one clipped quote.
    """
    lines = [story_line(title)] if title else []
    lines.append(f"❓ <i>{escape(_one_line(answer.question))}</i>")
    lines.append("")
    if not answer.answered or not answer.text:
        lines.append(f"🤷 <b>{escape(answer.shown.reason or 'The story does not say.')}</b>")
    else:
        lines.append(_answer_line(answer.text, answer))
        first = answer.citations[0]
        quote = _quote(first, answer, _is_whole_sentence(answer))
        lines.append(f"<b>[1]</b> “{quote}” <i>(paragraph {first.paragraph})</i>")
    return split_html("\n".join(lines), TELEGRAM_MESSAGE_LIMIT)[0]


def render_context(answer: Answer, paragraphs: list[tuple[int, str]], title: str) -> str:
    """The wide form: the paragraphs around the answer, the answering sentence emphasised."""
    lines = [f"<b>In context</b> — <i>{escape(title)}</i>", ""]
    answering = answer.shown.sentence or answer.text
    for number, text in paragraphs:
        if answering and answering in text:
            before, _, after = text.partition(answering)
            sentence = f"<b>{escape(_one_line(answering))}</b>"
            body = f"{escape(_one_line(before))} {sentence} {escape(_one_line(after))}"
            lines.append(f"¶{number} {body.strip()}")
        else:
            lines.append(f"¶{number} {escape(_one_line(text))}")
        lines.append("")
    return "\n".join(lines).strip()


def _tag_name(tag: str) -> tuple[str, bool]:
    """("b", True) for "<b>", ("b", False) for "</b>"."""
    closing = tag.startswith("</")
    name = re.match(r"</?\s*([a-zA-Z][\w-]*)", tag)
    return (name.group(1).lower() if name else ""), not closing


def split_html(text: str, limit: int = TELEGRAM_MESSAGE_LIMIT) -> list[str]:
    """Split Telegram HTML into messages of at most `limit` characters of raw HTML.

    Cuts fall between paragraphs when possible, then between lines, then between words, never inside a
    tag or an entity; tags open at a cut are closed before it and reopened after it.
    """
    if len(text) <= limit:
        return [text]
    tokens = _TOKEN.findall(text)
    # Atoms: tags and entities whole, text one character at a time (so a cut can land between words).
    atoms: list[str] = []
    for token in tokens:
        if token.startswith("<") and len(token) > 1 or token.startswith("&") and len(token) > 1:
            atoms.append(token)
        else:
            atoms.extend(token)

    messages: list[str] = []
    start = 0
    open_tags: list[str] = []  # the tags open at `start`, as written
    while start < len(atoms):
        prefix = "".join(open_tags)
        stack = list(open_tags)
        length = len(prefix)
        latest_cut: dict[int, int] = {}  # rank (3 paragraph, 2 line, 1 space) -> latest atom index
        stacks_at: dict[int, list[str]] = {}
        length_at: dict[int, int] = {}
        index = start
        while index < len(atoms):
            atom = atoms[index]
            closing_cost = sum(len(_tag_name(t)[0]) + 3 for t in stack)
            if length + len(atom) + closing_cost > limit:
                break
            length += len(atom)
            if atom.startswith("<") and len(atom) > 1:
                _, opening = _tag_name(atom)
                if opening:
                    stack.append(atom)
                elif stack:
                    stack.pop()
            index += 1
            rank = 0
            if atom == "\n":
                rank = 3 if index < len(atoms) and atoms[index] == "\n" else 2
            elif atom == " ":
                rank = 1
            if rank:
                latest_cut[rank] = index
                stacks_at[index], length_at[index] = list(stack), length
        if index >= len(atoms):
            cut, stack_at_cut = len(atoms), stack
        elif latest_cut:
            # The best kind of break that still fills at least half the message; else the latest break.
            filled = [latest_cut[r] for r in (3, 2, 1) if r in latest_cut and length_at[latest_cut[r]] >= limit // 2]
            cut = filled[0] if filled else max(latest_cut.values())
            stack_at_cut = stacks_at[cut]
        else:
            cut, stack_at_cut = max(index, start + 1), stack  # no space at all: cut between characters
        body = prefix + "".join(atoms[start:cut])
        closing = "".join(f"</{_tag_name(t)[0]}>" for t in reversed(stack_at_cut))
        message = (body + closing).strip()
        if message:
            messages.append(message)
        open_tags = stack_at_cut
        start = cut
        while start < len(atoms) and atoms[start] in (" ", "\n"):
            start += 1
    return messages
