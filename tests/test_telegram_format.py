"""The pure Telegram formatting helpers: escaping, emphasis and splitting, on the nasty cases."""

from __future__ import annotations

import html
import random
import re

import pytest

from bot.answering.answer import Answer, Citation
from bot.telegram.format import emphasise, escape, render_answer, split_html

from .test_telegram import assert_telegram_html


def test_escape_and_emphasis_keep_user_and_corpus_text_inert() -> None:
    assert escape('<b>AT&T</b> "quoted"') == '&lt;b&gt;AT&amp;T&lt;/b&gt; "quoted"'
    emphasised = emphasise("Biden warned <Putin> & co. of sanctions", ["warn", "sanctions"])
    assert emphasised == "Biden <b>warned</b> &lt;Putin&gt; &amp; co. of <b>sanctions</b>"
    assert_telegram_html(emphasised)


def _answer(text: str, quotes: list[str]) -> Answer:
    citations = [Citation(i + 1, "d.txt", "T <&> itle", 1, 0, len(q), q, 1.0) for i, q in enumerate(quotes)]
    return Answer(question="q", answered=True, text=text, citations=citations, confidence=1.0, key_terms=("a",))


def test_render_answer_is_valid_html_whatever_the_text() -> None:
    nasty = 'a <tag> & </b> "x" &amp; <script>alert(1)</script>'
    rendered = render_answer(_answer(nasty, [nasty, nasty]))
    assert_telegram_html(rendered)
    assert "&lt;script&gt;" in rendered


def visible(fragment: str) -> str:
    """The text a reader sees, whitespace dropped."""
    return "".join(html.unescape(re.sub(r"<[^<>]*>", "", fragment)).split())


@pytest.mark.parametrize("limit", [50, 120, 500, 4096])
def test_split_html_parts_fit_and_stay_valid(limit: int) -> None:
    rng = random.Random(limit)
    words = ["word", "<b>bold words</b>", "&amp;", "&lt;tag&gt;", "<i>it <b>nested</b></i>", "\n", "\n\n", "x" * 30]
    for _ in range(50):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 400)))
        parts = split_html(text, limit)
        for part in parts:
            assert len(part) <= limit
            assert_telegram_html(part)
        # Nothing is lost but the whitespace at the cuts.
        assert "".join(visible(p) for p in parts) == visible(text)


def test_split_prefers_paragraph_breaks() -> None:
    text = "\n\n".join(["<b>Title</b> " + "a" * 40] * 6)
    parts = split_html(text, 120)
    assert all(p.startswith("<b>Title</b>") for p in parts)


def test_split_reopens_tags_across_a_cut() -> None:
    text = "<i>" + " ".join(["word"] * 100) + "</i>"
    parts = split_html(text, 100)
    assert len(parts) > 3
    assert all(p.startswith("<i>") and p.endswith("</i>") for p in parts)


def test_split_cuts_a_word_without_spaces_and_never_an_entity() -> None:
    text = "&amp;" * 300
    parts = split_html(text, 100)
    assert all(len(p) <= 100 and p.replace("&amp;", "") == "" for p in parts)
    assert sum(p.count("&amp;") for p in parts) == 300


def test_short_text_is_one_part() -> None:
    assert split_html("<b>hi</b>") == ["<b>hi</b>"]
