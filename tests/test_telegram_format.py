"""The pure Telegram formatting helpers: escaping, emphasis and splitting, on the nasty cases."""

from __future__ import annotations

import html
import random
import re

import pytest

from bot.answering.answer import Answer, Citation, Shown
from bot.telegram.format import emphasise, escape, render_answer, short_quote, split_html, visible_text

from .helpers import assert_telegram_html


def test_escape_and_emphasis_keep_user_and_corpus_text_inert() -> None:
    assert escape('<b>AT&T</b> "quoted"') == '&lt;b&gt;AT&amp;T&lt;/b&gt; "quoted"'
    emphasised = emphasise("Biden warned <Putin> & co. of sanctions", ["warn", "sanctions"])
    assert emphasised == "Biden <b>warned</b> &lt;Putin&gt; &amp; co. of <b>sanctions</b>"
    assert_telegram_html(emphasised)


def _answer(text: str, quotes: list[str]) -> Answer:
    citations = [Citation(i + 1, "d.txt", "T <&> itle", 1, 0, len(q), q, 1.0) for i, q in enumerate(quotes)]
    return Answer(question="q", answered=True, text=text, citations=citations, shown=Shown(key_terms=("a",)))


def test_render_answer_is_valid_html_whatever_the_text() -> None:
    nasty = 'a <tag> & </b> "x" &amp; <script>alert(1)</script>'
    rendered = render_answer(_answer(nasty, [nasty, nasty]))
    assert_telegram_html(rendered)
    assert "&lt;script&gt;" in rendered


def visible(fragment: str) -> str:
    """The text a reader sees, whitespace dropped."""
    return "".join(visible_text(fragment).split())


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


SENTENCE = "U.S. President Joe Biden last week warned Putin of sanctions should Russian troops attack."


def _cited(text: str, sentence: str, citations: list[Citation]) -> Answer:
    return Answer(question="q", answered=True, text=text, citations=citations, shown=Shown(sentence=sentence))


def test_the_answer_sentence_is_not_repeated_in_full_under_sources() -> None:
    alone = Citation(1, "a.txt", "Talks", 10, 0, len(SENTENCE), SENTENCE, 1.0)
    other = Citation(2, "a.txt", "Talks", 7, 0, 20, "Ryabkov warned Moscow.", 0.5)
    rendered = render_answer(_cited(SENTENCE, SENTENCE, [alone, other]))
    assert rendered.count("sanctions should Russian troops") == 1  # once, in the answer
    assert "<b>[1]</b> “U.S. President Joe Biden last week warned Putin …”" in rendered
    # One article: its title once, beside the heading; paragraphs per quote.
    assert rendered.count("Talks") == 1 and "(paragraph 10)" in rendered and "(paragraph 7)" in rendered

    passage = "Before it came a warning. " + SENTENCE + " After it, a reply."
    around = Citation(1, "a.txt", "Talks", 10, 0, len(passage), passage, 1.0)
    rendered = render_answer(_cited(SENTENCE, SENTENCE, [around]))
    assert "“Before it came a warning. … After it, a reply.”" in rendered


def test_a_narrowed_answer_keeps_its_sentence_as_the_source() -> None:
    citation = Citation(1, "a.txt", "Talks", 10, 0, len(SENTENCE), SENTENCE, 1.0)
    rendered = render_answer(_cited("Joe Biden", SENTENCE, [citation]))
    assert rendered.startswith("<b>Joe Biden</b>") and f"“{SENTENCE}”" in rendered


def test_a_span_answer_stands_in_bold_inside_its_quote_even_past_the_clip() -> None:
    # "delay" was shown above a quote clipped at "...security talks to begin without …".
    from bot.telegram.format import render_inline_answer

    passage = (
        "In a phone call with Finnish President Sauli Niinisto, whose country has traditionally served as a "
        "middle ground between Russia and the West, Putin said he wanted security talks to begin without "
        "delay. He said more & more."
    )
    offset = 1000  # the passage's place in its article: the answer's offsets are the article's
    start = offset + passage.index("delay")
    citation = Citation(1, "a.txt", "Talks", 3, offset, offset + len(passage), passage, 0.9)
    other = Citation(2, "a.txt", "Talks", 4, 0, 20, "Ryabkov warned Moscow.", 0.5)
    shown = Shown(sentence=passage.split(". ")[0] + ".", answer_start=start, answer_end=start + 5)
    answer = Answer("When?", True, "delay", [citation, other], shown)
    for rendered in (render_answer(answer), render_inline_answer(answer, "Talks")):
        assert_telegram_html(rendered)
        quote = next(line for line in rendered.splitlines() if line.startswith("<b>[1]</b>"))
        assert "talks to begin without <b>delay</b>. He said more &amp; more." in quote
        assert quote.startswith("<b>[1]</b> “… ")  # the opening gave way to the words before the answer
    assert "<b>[2]</b> “Ryabkov warned Moscow.”" in render_answer(answer)


def test_quotes_around_any_span_fit_and_keep_the_span_whole() -> None:
    from bot.telegram.format import QUOTE_CHARS, quote_around

    rng = random.Random(11)
    words = ["a", "word", "longerword", "&", "<b>", "x" * 40, "\n", "end."]
    for _ in range(300):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 120)))
        start = rng.randrange(len(text))
        end = min(len(text), start + rng.randint(1, 60))
        if not text[start:end].strip():
            continue  # an answer is never blank
        quote = quote_around(text, start, end)
        assert_telegram_html(quote)
        shown = visible_text(quote)
        assert len(shown) <= QUOTE_CHARS, (text, start, end, quote)
        bold = html.unescape(re.search(r"<b>(.*?)</b>", quote, re.S).group(1))  # type: ignore[union-attr]
        assert bold == " ".join(text[start:end].split())
        # Apart from the "…" marking a cut, every piece is the passage's own text.
        flat = " ".join(text.split())
        assert all(piece.strip() in flat for piece in shown.split("…"))


def test_sources_from_several_articles_name_each() -> None:
    one = Citation(1, "a.txt", "Talks", 10, 0, len(SENTENCE), SENTENCE, 1.0)
    two = Citation(2, "b.txt", "Harbour", 3, 0, 10, "Boats left.", 0.5)
    rendered = render_answer(_cited(SENTENCE, SENTENCE, [one, two]))
    assert "— <i>Talks</i>, paragraph 10" in rendered and "— <i>Harbour</i>, paragraph 3" in rendered


def test_short_quote_clips_long_passages_at_a_word() -> None:
    quote = short_quote("word " * 100)
    assert len(quote) <= 200 and quote.endswith(" …") and "wor …" not in quote
    assert short_quote("short one") == "short one"


def test_the_likely_answer_inside_a_whole_sentence_is_bold() -> None:
    sentence = "Putin reiterated the same demands in a call with French President Emmanuel Macron on Tuesday."
    start = sentence.index("French")
    end = sentence.index(" on Tuesday")
    citation = Citation(1, "a.txt", "Title", 3, 0, len(sentence), sentence, 0.9)
    answer = Answer("Who?", True, sentence, [citation], Shown(sentence=sentence, highlight=(start, end)))
    html_text = render_answer(answer)
    assert "<b>French President Emmanuel Macron</b> on Tuesday." in html_text
    assert html_text.startswith("Putin reiterated the same demands in a call with <b>")


def test_a_reply_within_a_story_names_it_once_on_top() -> None:
    from bot.telegram.format import render_inline_answer

    answer = _answer("Macron <said> so.", ["Macron <said> so.", "Another & quote."])
    scoped = render_answer(answer, story="T <&> itle")
    assert_telegram_html(scoped)
    assert scoped.startswith("📰 <b>T &lt;&amp;&gt; itle</b>\n") and scoped.count("itle") == 1
    asked = render_answer(answer, story="T <&> itle", with_question=True)
    assert asked.splitlines()[1] == "❓ <i>q</i>"
    refusal = Answer("q <x>", False, None, answer.citations, Shown(reason="This story doesn't say."))
    scoped_refusal = render_answer(refusal, story="T <&> itle")
    assert scoped_refusal.count("itle") == 1 and "— <i>paragraph 1</i>" in scoped_refusal
    inline = render_inline_answer(refusal, None)
    assert_telegram_html(inline)
    assert inline == "❓ <i>q &lt;x&gt;</i>\n\n🤷 <b>This story doesn't say.</b>"
