"""Follow-up questions on the seed article: pronouns, "And X?", and forgetting."""

from __future__ import annotations

import json
from pathlib import Path

from bot.answering.conversation import (
    Session,
    Turn,
    agreement,
    leans_on_previous,
    make_turn,
    pronoun_counts,
    pronoun_of,
    resolve,
)
from bot.service import StorybotService

from .conftest import make_settings

CONVERSATIONS = [
    ("Who did Putin call later on Tuesday?", "What did he reiterate to him?", "reiterated the same demands"),
    ("What did Ryabkov say?", "Which agency did he tell?", "RIA Novosti"),
    ("What did Biden warn?", "When did he warn?", "last week"),
    ("What did Biden warn?", "And the EU?", "unprecedented economic sanctions regime"),
    ("Who did Putin speak with by phone?", "What role has his country played?", "middle ground"),
    ("What does Russia want from NATO?", "Did Putin deny planning an invasion?", "denied planning an invasion"),
    ("What did the Kremlin say?", "What about Ryabkov?", "militarily"),
    ("What did Ryabkov warn?", "When did he say that?", "a day after"),
]


def test_two_turn_conversations(seed_service: StorybotService) -> None:
    right = 0
    for first, follow_up, expected in CONVERSATIONS:
        session = Session()
        seed_service.ask(first, session)
        answer = seed_service.ask(follow_up, session)
        assert answer.question == follow_up  # the reply names the question as asked
        right += answer.answered and expected in (answer.shown.sentence or "")
    assert right >= len(CONVERSATIONS) - 2, f"{right}/{len(CONVERSATIONS)}"


def test_reset_forgets(seed_service: StorybotService) -> None:
    session = Session()
    seed_service.ask("What did Biden warn?", session)
    session.reset()
    assert session.last is None
    assert resolve("And the EU?", session.last).text == "And the EU?"


def test_resolution_rules() -> None:
    previous = Turn("Who did Putin call later on Tuesday?", "Putin", "French President Emmanuel Macron")
    assert resolve("What did he tell him?", previous).read_as == {"he": "Putin", "him": "Macron"}
    assert resolve("What did he tell him?", previous).text == "What did Putin tell Macron?"
    assert resolve("What did his office say?", previous).text == "What did Macron's office say?"
    assert resolve("And Biden?", previous).text == "Who did Biden call later on Tuesday?"
    assert resolve("What did Biden warn?", previous).text == "What did Biden warn?"  # stands alone
    assert leans_on_previous("And before that?") and not leans_on_previous("What did Biden warn?")
    assert not leans_on_previous("hi") and not leans_on_previous("sanctions")  # short is not a follow-up


def test_ask_batch_sessions_share_history(tmp_path: Path, cli) -> None:
    lines = [
        {"q": "What did Ryabkov say?", "session": "a"},
        {"q": "What did Biden warn?", "session": "b"},
        {"q": "Which agency did he tell?", "session": "a"},
        "When did he warn?",  # a plain line has no history
        {"q": "When did he warn?", "session": "b"},
    ]
    stdin = "\n".join(json.dumps(line) if isinstance(line, dict) else line for line in lines) + "\n"
    result = cli(["ask", "--json"], make_settings(tmp_path), stdin=stdin)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["question"] for a in answers] == [
        "What did Ryabkov say?",
        "What did Biden warn?",
        "Which agency did he tell?",
        "When did he warn?",
        "When did he warn?",
    ]
    # Within a session "he" is the person of that session's last question, whoever asked in between.
    assert "Ryabkov" in answers[2]["citations"][0]["text"]
    assert "Biden" in answers[4]["citations"][0]["text"]


def test_a_pronoun_after_a_name_of_the_question_stands_for_that_name() -> None:
    previous = Turn("What did Ryabkov warn?", "Ryabkov", None)
    standalone = "Has Putin admitted he plans to invade?"
    assert not leans_on_previous(standalone) and resolve(standalone, previous).text == standalone
    # An object pronoun cannot mean the question's own subject: history fills it.
    assert resolve("What did Macron tell him?", previous).text == "What did Macron tell Ryabkov?"
    assert resolve("What did he warn?", previous).text == "What did Ryabkov warn?"


def test_a_pronoun_never_stands_for_a_people() -> None:
    # "Which Finnish leader ...?" leaves "Finnish" as its first name: "he" is the leader the answer named.
    previous = Turn("Which Finnish leader spoke to Putin?", "Finnish", "Sauli Niinisto")
    assert resolve("What did he say?", previous).text == "What did Niinisto say?"
    assert resolve("What did he say?", Turn("What do Finnish officials fear?", "Finnish", None)).read_as == {}


def test_a_refusal_leaves_no_name_for_the_next_question() -> None:
    from bot.answering.conversation import make_turn

    turn = make_turn("What did Zelensky say?", None, False, unknown=("Zelensky",))
    assert turn.subject is None
    assert make_turn("What did Putin say?", None, False).subject == "Putin"


def test_a_standalone_question_gets_the_same_answer_alone_and_after_unrelated_turns(
    seed_service: StorybotService,
) -> None:
    standalone = ["Has Putin admitted he plans an invasion?", "What did Biden warn?", "Who won the 2018 World Cup?"]
    alone = [seed_service.ask(q).to_json() for q in standalone]
    session = Session()
    for warm_up in ("What did Ryabkov say?", "Who is Zelensky?", "Which Finnish leader did Putin call?"):
        seed_service.ask(warm_up, session)
        for question, expected in zip(standalone, alone, strict=True):
            assert seed_service.ask(question, session).to_json() == expected, (warm_up, question)


def test_a_pronoun_is_filled_with_a_name_as_written_never_a_possessive() -> None:
    from bot.answering.conversation import make_turn

    # "Who did she call?" read "she" as "Niinisto's", taken from "What is Niinisto's country?".
    turn = make_turn("What is Niinisto's country?", "Finnish", True)
    assert turn.subject == "Niinisto" and turn.answer_name is None  # "Finnish" is a people's adjective
    assert resolve("Who did she call?", turn).read_as == {"she": "Niinisto"}
    assert resolve("Who did she call?", turn).text == "Who did Niinisto call?"
    # A possessive pronoun puts the possessive in the question, and tells the user the name.
    previous = make_turn("Who did Putin speak with by phone?", "Finnish President Sauli Niinisto's", True)
    assert previous.answer_name is not None and not previous.answer_name.endswith("'s")
    his = resolve("What has his country traditionally been?", previous)
    assert his.text == "What has Niinisto's country traditionally been?" and his.read_as == {"his": "Niinisto"}
    assert make_turn("What did Niinisto’s office say in 2021?", None, False).subject == "Niinisto"


def test_a_pronoun_that_stands_for_nobody_is_asked_about() -> None:
    ask_back = "Who do you mean by 'he'? Ask with a name."
    assert resolve("What did he say then?", None).who_is_meant() == ask_back
    nobody = Turn("What did Zelensky say?", None, None)  # a refusal leaves no name behind
    assert resolve("What did he say then?", nobody).who_is_meant() == ask_back
    assert resolve("Where was she?", None).who_is_meant() == "Who do you mean by 'she'? Ask with a name."
    # The question names or asks about something else: it is looked up as it stands.
    assert resolve("What did he say about NATO?", None).who_is_meant() is None
    assert resolve("What did he warn?", None).who_is_meant() is None
    assert resolve("What did he say then?", Turn("What did Biden warn?", "Biden", None)).who_is_meant() is None


def test_a_pronoun_never_stands_for_a_name_the_question_itself_holds() -> None:
    """ "What did he tell Niinisto?" after a question about Niinisto asks about someone else (a newcomer saw
    "reading 'he' as 'Niinisto'"); "him" in "What did Niinisto tell him?" is not Niinisto either."""
    about_niinisto = Turn("Who is Sauli Niinisto?", "Sauli Niinisto", "Finnish President Sauli Niinisto")
    assert resolve("What did he tell Niinisto?", about_niinisto).read_as == {}
    assert resolve("What did Niinisto tell him?", about_niinisto).read_as == {}
    # Nor for a title without a name: the reader's span for "Who is Sauli Niinisto?" is "Finnish President".
    described = make_turn("Who is Sauli Niinisto?", "Finnish President", True)
    assert described.answer_name is None
    assert resolve("What did he tell Niinisto?", described).read_as == {}
    call = Turn("Who did Putin call?", "Putin", "President Sauli Niinisto")
    assert resolve("What did he tell Niinisto?", call).read_as == {"he": "Putin"}
    assert resolve("What did Niinisto tell him?", call).read_as == {"him": "Putin"}


def test_a_pronoun_stands_only_for_a_name_the_articles_refer_to_with_it(seed_service: StorybotService) -> None:
    """ "she" is never the Putin the article calls "he": the articles' own pronouns after a name decide, each
    counted for the nearest name before it; a name they never refer back to may be either."""
    root = Path(__file__).parent
    chess = (root / "data" / "fixture_corpus" / "chess-final.md").read_text(encoding="utf-8").split("\n\n")
    counts = pronoun_counts(chess)
    # "Haddad, who learned the game from her grandfather"; "'She calculated further than I did,' Antonov said"
    # follows "after Haddad advanced a passed pawn", so it is Haddad's too.
    assert pronoun_of("Sixteen-year-old Amira Haddad", counts) == "she"
    assert pronoun_of("Lev Antonov", counts) is None
    agrees = agreement(lambda name: [p for p in chess if name in p])
    winner = Turn("Who won the chess final?", "Haddad", None)
    assert resolve("Who taught her?", winner, agrees).read_as == {"her": "Haddad"}
    assert resolve("What did he say?", winner, agrees).who_is_meant() == "Who do you mean by 'he'? Ask with a name."
    # With the bundled article: Putin is "he" there, so "she" after a question about him is not Putin.
    session = Session()
    seed_service.ask("What did Putin say?", session)
    assert session.last is not None and session.last.subject == "Putin"
    answer = seed_service.ask("What did she say?", session)
    assert answer.shown.corrections.get("she") != "Putin"
    again = Session()
    seed_service.ask("What did Putin say?", again)
    assert seed_service.ask("What did he want?", again).shown.corrections.get("he") == "Putin"
