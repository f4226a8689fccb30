"""Chat and user state as plain data: a JSON file written atomically, never a pickle.

chat_data holds the conversation (as turns of strings) and the answers whose buttons still work;
user_data holds each user's token bucket. Everything in them is JSON: dicts, lists, strings, numbers.
An old pickle state file is set aside unread, so no state file can ever run code.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
import time
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput

from bot.answering.conversation import Session, Turn

log = logging.getLogger(__name__)

STATE_FILE = "telegram_state.json"
OLD_PICKLE_FILE = "telegram_state.pickle"  # written by storybot before 0.2; never read
STATE_VERSION = 1
ANSWERS_KEPT = 200  # answers per chat whose buttons still work
QUEUE_SECONDS = 20.0  # a question over the rate waits at most this long for its turn, else is refused

Data = dict[str, Any]


# -- the file -----------------------------------------------------------------------------------------


def set_aside(path: Path, why: str) -> Path:
    """Rename a state file storybot will not read to `<name>.unreadable-<time>`; nothing is deleted."""
    aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}")
    path.rename(aside)
    log.warning("chat state %s %s; moved it to %s and started afresh", path, why, aside)
    return aside


def retire_old_pickle(data_dir: Path) -> Path | None:
    """Set an old pickle state file aside without opening it: unpickling can run any code."""
    path = data_dir / OLD_PICKLE_FILE
    if not path.exists():
        return None
    return set_aside(path, "is a pickle from an older storybot (not read: pickles can run code)")


def write_json_atomically(path: Path, data: object) -> None:
    """Write JSON to a temporary file beside `path` (mode 0600), then swap it in with os.replace."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(data, file, ensure_ascii=False, separators=(",", ":"))
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o600)  # mkstemp already does; said again because chat history is private
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_state(path: Path) -> tuple[dict[int, Data], dict[int, Data]]:
    """(user_data, chat_data) from the state file; a file that is not our JSON is set aside."""
    if not path.exists():
        return {}, {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
            raise ValueError("not a storybot state file of this version")
        users, chats = raw.get("user_data", {}), raw.get("chat_data", {})
        if not isinstance(users, dict) or not isinstance(chats, dict):
            raise ValueError("user_data and chat_data must be objects")
        return (
            {int(key): value for key, value in users.items() if isinstance(value, dict)},
            {int(key): value for key, value in chats.items() if isinstance(value, dict)},
        )
    except (OSError, ValueError, RecursionError) as error:  # JSONDecodeError and bad int keys are ValueErrors
        set_aside(path, f"could not be read ({type(error).__name__}: {str(error)[:100]})")
        return {}, {}


class JsonPersistence(BasePersistence[Data, Data, Data]):
    """python-telegram-bot persistence for user_data and chat_data in one JSON file (no bot data, no callbacks).

    The Application hands over each changed dict every `update_interval` seconds and on shutdown; the file
    is rewritten only when a dict's JSON changed. A value that is not JSON is a bug and raises TypeError.
    """

    def __init__(self, path: Path, update_interval: float = 5) -> None:
        super().__init__(
            store_data=PersistenceInput(bot_data=False, callback_data=False, chat_data=True, user_data=True),
            update_interval=update_interval,
        )
        self.path = path
        self._user_data: dict[int, Data] | None = None
        self._chat_data: dict[int, Data] = {}
        self._written: dict[tuple[str, int], str] = {}  # ("chat", id) -> its JSON as last written

    def _load(self) -> None:
        if self._user_data is None:
            self._user_data, self._chat_data = read_state(self.path)
            for kind, store in (("user", self._user_data), ("chat", self._chat_data)):
                for key, value in store.items():
                    self._written[(kind, key)] = json.dumps(value, sort_keys=True)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "version": STATE_VERSION,
            "user_data": {str(key): value for key, value in (self._user_data or {}).items()},
            "chat_data": {str(key): value for key, value in self._chat_data.items()},
        }
        write_json_atomically(self.path, payload)

    def _update(self, kind: str, store: dict[int, Data], key: int, data: Data) -> None:
        text = json.dumps(data, sort_keys=True)
        if self._written.get((kind, key)) == text:
            return
        store[key] = json.loads(text)  # a copy: later changes reach us through the next update
        self._written[(kind, key)] = text
        self._save()

    async def get_user_data(self) -> dict[int, Data]:
        self._load()
        return deepcopy(self._user_data or {})

    async def get_chat_data(self) -> dict[int, Data]:
        self._load()
        return deepcopy(self._chat_data)

    async def get_bot_data(self) -> Data:
        return {}

    async def get_callback_data(self) -> None:
        return None

    async def get_conversations(self, name: str) -> dict[Any, Any]:
        return {}

    async def update_conversation(self, name: str, key: Any, new_state: object | None) -> None:
        return None

    async def update_user_data(self, user_id: int, data: Data) -> None:
        self._load()
        assert self._user_data is not None
        self._update("user", self._user_data, user_id, data)

    async def update_chat_data(self, chat_id: int, data: Data) -> None:
        self._load()
        self._update("chat", self._chat_data, chat_id, data)

    async def update_bot_data(self, data: Data) -> None:
        return None

    async def update_callback_data(self, data: Any) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        self._load()
        if self._chat_data.pop(chat_id, None) is not None:
            self._written.pop(("chat", chat_id), None)
            self._save()

    async def drop_user_data(self, user_id: int) -> None:
        self._load()
        if self._user_data and self._user_data.pop(user_id, None) is not None:
            self._written.pop(("user", user_id), None)
            self._save()

    async def refresh_user_data(self, user_id: int, user_data: Data) -> None:
        return None

    async def refresh_chat_data(self, chat_id: int, chat_data: Data) -> None:
        return None

    async def refresh_bot_data(self, bot_data: Data) -> None:
        return None

    async def flush(self) -> None:
        """Every change is written when it is handed over, so there is nothing left to write."""


# -- the conversation ---------------------------------------------------------------------------------


def turn_to_data(turn: Turn) -> Data:
    return {
        "question": turn.question,
        "subject": turn.subject,
        "answer_name": turn.answer_name,
    }


def turn_from_data(data: object) -> Turn | None:
    """A Turn from its plain form; None for anything else (a hand-edited or foreign file)."""
    if not isinstance(data, dict):
        return None
    # Files written before follow-ups stopped carrying words also hold "terms": read them, ignore it.
    question, subject, name = (data.get(k) for k in ("question", "subject", "answer_name"))
    if not isinstance(question, str):
        return None
    if not all(value is None or isinstance(value, str) for value in (subject, name)):
        return None
    return Turn(question=question, subject=subject, answer_name=name)


def load_session(chat_data: Data, max_turns: int) -> Session:
    """The chat's conversation, rebuilt from the plain turns kept in chat_data."""
    session = Session(max_turns=max_turns)
    stored = chat_data.get("turns")
    for item in stored if isinstance(stored, list) else []:
        turn = turn_from_data(item)
        if turn is not None:
            session.remember(turn)
    return session


def save_session(chat_data: Data, session: Session) -> None:
    chat_data["turns"] = [turn_to_data(turn) for turn in session.turns]


# -- the rate limit: a token bucket per user ---------------------------------------------------------


@dataclass(frozen=True)
class Admission:
    admitted: bool
    wait: float  # admitted: seconds to wait for the question's turn; refused: seconds until one is free


def take_turn(
    user_data: Data, per_minute: int, burst: int, now: float | None = None, queue_seconds: float = QUEUE_SECONDS
) -> Admission:
    """Take a token from the user's bucket (holds `burst`, refills `per_minute`/60 a second).

    With no token left the question queues for the next one (the bucket goes below zero), as long as
    its turn comes within `queue_seconds`; only then is it refused. Wall-clock time, so a restart keeps it.
    """
    now = time.time() if now is None else now
    rate = per_minute / 60.0
    bucket = user_data.get("bucket")
    tokens, then = float(burst), now
    if (
        isinstance(bucket, dict)
        and isinstance(bucket.get("tokens"), int | float)
        and isinstance(bucket.get("at"), int | float)
    ):
        tokens, then = float(bucket["tokens"]), float(bucket["at"])
    tokens = min(float(burst), tokens + max(0.0, now - then) * rate)
    wait = max(0.0, (1.0 - tokens) / rate)
    if wait > queue_seconds:
        user_data["bucket"] = {"tokens": tokens, "at": now}
        return Admission(False, math.ceil(wait))
    user_data["bucket"] = {"tokens": tokens - 1.0, "at": now}
    return Admission(True, wait)


# -- answers shown with buttons -----------------------------------------------------------------------


def remember_answer(chat_data: Data, message_id: int, record: Data) -> None:
    """Keep what the buttons under a message need, for the newest ANSWERS_KEPT answers of the chat."""
    answers: Data = chat_data.setdefault("answers", {})
    answers[str(message_id)] = record
    for old in sorted(answers, key=int)[:-ANSWERS_KEPT]:
        del answers[old]


def stored_answer(chat_data: Data | None, message_id: int) -> Data | None:
    if chat_data is None:
        return None
    record = chat_data.get("answers", {}).get(str(message_id))
    return record if isinstance(record, dict) else None


def record_vote(record: Data, user_id: int, vote: str) -> bool:
    """Note the user's vote on this answer; False when they had already given the same one."""
    votes: Data = record.setdefault("votes", {})
    if votes.get(str(user_id)) == vote:
        return False
    votes[str(user_id)] = vote
    return True


# -- the story a chat is about ------------------------------------------------------------------------


def chosen_story(chat_data: Data | None) -> str | None:
    """The key of the story this chat asks about, or None for the whole archive."""
    key = (chat_data or {}).get("story")
    return key if isinstance(key, str) else None


def choose_story(chat_data: Data, key: str | None) -> None:
    """Ask within this story from now on (None: the whole archive); a new story starts a new conversation."""
    if chosen_story(chat_data) != key:
        chat_data.pop("turns", None)  # "he" in the old story is nobody in the new one
    if key is None:
        chat_data.pop("story", None)
    else:
        chat_data["story"] = key
