"""Telegram chat state as plain data: the token bucket, the session's round trip, the JSON file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bot.answering.conversation import Session, Turn
from bot.telegram.state import (
    QUEUE_SECONDS,
    JsonPersistence,
    load_session,
    record_vote,
    save_session,
    take_turn,
)


def test_bucket_allows_a_burst_then_queues_then_refuses() -> None:
    user: dict = {}
    admitted = [take_turn(user, per_minute=6, burst=3, now=100.0) for _ in range(3)]
    assert all(a.admitted and a.wait == 0 for a in admitted)
    queued = take_turn(user, per_minute=6, burst=3, now=100.0)
    assert queued.admitted and queued.wait == 10.0  # one token every 10 s
    assert take_turn(user, per_minute=6, burst=3, now=100.0).wait == 20.0 <= QUEUE_SECONDS
    refused = take_turn(user, per_minute=6, burst=3, now=100.0)
    assert not refused.admitted and refused.wait == 30
    # Time refills the bucket, up to the burst and no further.
    assert take_turn(user, per_minute=6, burst=3, now=1000.0).wait == 0
    assert json.dumps(user)  # plain data


def test_session_round_trips_as_plain_data() -> None:
    session = Session(max_turns=2)
    for n in range(3):
        session.remember(Turn(question=f"q{n}", subject="Putin", answer_name=None))
    chat: dict = {}
    save_session(chat, session)
    restored = load_session(json.loads(json.dumps(chat)), max_turns=2)
    assert list(restored.turns) == list(session.turns)
    # Foreign or hand-edited turns are skipped, not trusted.
    chat["turns"].append({"question": 5, "terms": "x"})
    chat["turns"].append("rm -rf /")
    assert len(load_session(chat, max_turns=4).turns) == 2
    # A turn saved before turns stopped carrying their words still loads.
    chat["turns"] = [{"question": "q", "subject": None, "answer_name": None, "terms": ["q"]}]
    assert list(load_session(chat, max_turns=4).turns) == [Turn(question="q", subject=None, answer_name=None)]


def test_votes_are_idempotent_per_user() -> None:
    record: dict = {}
    assert record_vote(record, 1, "up") and not record_vote(record, 1, "up")
    assert record_vote(record, 2, "up") and record_vote(record, 1, "down")


def test_persistence_writes_json_atomically_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    persistence = JsonPersistence(path)

    async def scenario() -> None:
        await persistence.get_chat_data()
        await persistence.update_chat_data(7, {"turns": [], "answers": {"12": {"short": "<b>x</b>"}}})
        await persistence.update_user_data(9, {"bucket": {"tokens": 2.5, "at": 1.0}})

    asyncio.run(scenario())
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left behind
    again = JsonPersistence(path)
    assert asyncio.run(again.get_chat_data()) == {7: {"turns": [], "answers": {"12": {"short": "<b>x</b>"}}}}
    assert asyncio.run(again.get_user_data())[9]["bucket"]["tokens"] == 2.5


def test_choosing_a_story_is_plain_data_and_a_new_story_starts_a_new_conversation() -> None:
    from bot.telegram.state import choose_story, chosen_story

    chat: dict = {"turns": [{"question": "Who won?", "subject": None, "answer_name": "Haddad"}]}
    assert chosen_story(chat) is None and chosen_story(None) is None
    choose_story(chat, "chess-final")
    assert chosen_story(chat) == "chess-final" and "turns" not in chat
    chat["turns"] = [{"question": "Who won?"}]
    choose_story(chat, "chess-final")  # the same story again keeps the conversation
    assert chat["turns"]
    choose_story(chat, None)
    assert chosen_story(chat) is None and chat == {}
    assert chosen_story({"story": 42}) is None  # a hand-edited file
