"""Narrowing an answer to its span: confident cases narrow, ambiguous ones keep the sentence."""

from __future__ import annotations

import pytest

from bot.answering.spans import narrow_span
from bot.indexing.terms import name_runs

NIINISTO = (
    "In a phone call with Finnish President Sauli Niinisto, whose country has traditionally served as a middle "
    "ground between Russia and the West, Putin said he wanted security talks to begin without delay."
)
MACRON = "Putin reiterated the same demands in a phone call with French President Emmanuel Macron later on Tuesday."
CAPTION = (
    "(Cover: Russian President Vladimir Putin attends a session of the annual Valdai Discussion Club in Sochi, "
    "Russia, October 21, 2021. /Reuters)"
)
BLAME = "Putin has denied planning an invasion, blaming the Western security alliance for the rise in tensions."


@pytest.mark.parametrize(
    ("question", "kind", "sentence", "focus", "expected"),
    [
        ("Who did Putin speak with by phone?", "who", NIINISTO, None, "Finnish President Sauli Niinisto"),
        ("Who did Putin call later on Tuesday?", "who", MACRON, None, "French President Emmanuel Macron"),
        ("Who is Sauli Niinisto?", "who", NIINISTO, None, "Finnish President Sauli Niinisto"),
        ("Who is Finland's president?", "who", NIINISTO, None, "Finnish President Sauli Niinisto"),
        ("Which leader did Putin phone?", "which", MACRON, "leader", "French President Emmanuel Macron"),
        ("Where was the cover photo taken?", "where", CAPTION, None, "in Sochi, Russia"),
        ("When did Putin call Macron?", "when", MACRON, None, "later on Tuesday"),
        (
            "Where was the final played?",
            "where",
            "The final was played in the town hall of Bramford before 300 people.",
            None,
            "in the town hall of Bramford",
        ),
        (
            "Which news agency did he talk to?",
            "which",
            "Ryabkov told the RIA Novosti state news agency.",
            "agenc",
            "RIA Novosti state news agency",
        ),
        ("How many troops?", "how_many", "Russia has massed 100,000 troops near the border.", None, "100,000 troops"),
        (
            "How much did it cost?",
            "how_many",
            "Repairs cost 3.5 million euros, officials said.",
            None,
            "3.5 million euros",
        ),
    ],
)
def test_confident_spans(question: str, kind: str, sentence: str, focus: str | None, expected: str) -> None:
    span = narrow_span(question, kind, sentence, focus)
    assert span is not None and sentence[span[0] : span[1]] == expected


@pytest.mark.parametrize(
    ("question", "kind", "sentence"),
    [
        ("Whom does Putin blame for the rise in tensions?", "who", BLAME),  # "Western" alone is no answer
        ("Who took the cover photo?", "who", CAPTION),  # several names: which one is unclear
        ("When does Putin want talks to begin?", "when", NIINISTO),  # "without delay" is not a date
        ("How many were hurt?", "how_many", "12 died and 40 were hurt, 3 badly."),  # which figure is unclear
        ("What did Biden warn?", "what", MACRON),  # what-questions keep the attributed sentence
        ("Who is Putin?", "who", "Putin spoke on Tuesday."),  # no title to add
    ],
)
def test_unsure_cases_keep_the_sentence(question: str, kind: str, sentence: str) -> None:
    assert narrow_span(question, kind, sentence) is None


def test_name_runs_drop_openers_and_possessives() -> None:
    sentence = "In Moscow, Putin's aide met U.S. President Joe Biden."
    assert [sentence[s:e] for s, e in name_runs(sentence)] == ["Moscow", "Putin", "U.S. President Joe Biden"]


def test_titled_names() -> None:
    from bot.indexing.terms import titled_names

    sentence = "Putin's comments came a day after Russia's Deputy Foreign Minister Sergei Ryabkov warned."
    assert titled_names(sentence) == [(("russia",), ("deputy", "foreign", "minister"), "Sergei Ryabkov")]
    assert titled_names("Mayor Ingrid Solberg said so.") == [((), ("mayor",), "Ingrid Solberg")]
    assert titled_names("The President spoke.") == []  # a title without a name names no one
