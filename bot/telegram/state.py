"""Where chat and user state lives, and the one order of each chat's updates.

Two stores, chosen by STORYBOT_REDIS_URL:
- unset (the default): one process, a JSON file under the data dir, written atomically, never a pickle.
  python-telegram-bot's persistence keeps chat_data and user_data in memory and hands changes to the file.
- set: Redis, shared by every replica. Each update reads its chat's state from Redis and writes it back,
  nothing is kept across updates, and PTB's chat and user data persistence is off. Keys expire (TTL),
  the token buckets are one Lua script each, and a lock per chat (with a timeout) orders a chat's updates
  across replicas.

chat_data holds the conversation (as turns of strings), the chosen story and the answers whose buttons
still work; user_data holds each user's token bucket (in Redis: a key of its own). Everything is JSON:
dicts, lists, strings, numbers. A value that is not ours (an old pickle file, a foreign or damaged
Redis key) is set aside unread, with a warning, and the chat starts afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import math
import os
import secrets
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from telegram import Message, Update
from telegram.ext import Application, BasePersistence, BaseUpdateProcessor, PersistenceInput

from bot.answering.conversation import Session, Turn
from bot.config import Settings
from bot.errors import StorybotError

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

STATE_FILE = "telegram_state.json"
OLD_PICKLE_FILE = "telegram_state.pickle"  # written by storybot before 0.2; never read
STATE_VERSION = 1
ANSWERS_KEPT = 200  # answers per chat whose buttons still work
QUEUE_SECONDS = 20.0  # a question over the rate waits at most this long for its turn, else is refused
MAX_CONCURRENT_UPDATES = 256  # updates in flight at once (of different chats: one chat's wait their turn)

# Redis: how long things live there, and the lock that orders a chat's updates across replicas.
CHAT_TTL_SECONDS = 30 * 24 * 3600  # a chat's state, from its last update; the JSON file keeps it for ever
ASIDE_TTL_SECONDS = CHAT_TTL_SECONDS  # a value set aside is kept as long, for a person to look at
CHAT_LOCK_SECONDS = 10.0  # the lock's timeout: a replica that dies holding it frees its chat this soon
CHAT_LOCK_WAIT_SECONDS = 90.0  # longest wait for a chat's lock (a queued question holds it up to 20 s)
REDIS_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)  # then the update is given up with a message to the user
START_RETRY_DELAYS = (0.5, 1.0, 2.0)  # then `storybot telegram` does not start
PACE_RETRY_DELAYS = (0.2,)  # then a message goes out unpaced: Telegram's flood waits (RetryAfter) still hold
SENDS_PER_SECOND = 30  # Telegram's limit per bot token, over all chats...
GROUP_SENDS_PER_MINUTE = 20  # ...and per group

Data = dict[str, Any]
T = TypeVar("T")


class StateUnavailable(StorybotError):
    """The chat state store (Redis) could not be reached, even after retrying."""


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


def _bucket_ttl(per_minute: float, burst: int) -> int:
    """Seconds after which an untouched bucket is full again, so its key can go (plus a margin)."""
    return math.ceil(burst * 60 / per_minute + QUEUE_SECONDS) + 60


# -- where state lives ---------------------------------------------------------------------------------


class ChatStore(ABC):
    """Where chat and user state lives; the update processor (ChatOrder) and the handlers go through it."""

    shared = False  # True when several processes share the state (Redis)

    @abstractmethod
    def persistence(self) -> BasePersistence | None:
        """The python-telegram-bot persistence for what PTB keeps, or None when nothing is left to it."""

    @abstractmethod
    def chat_lock(self, chat_id: int) -> contextlib.AbstractAsyncContextManager[None]:
        """Held while one update of the chat runs: the chat's next update waits for it."""

    @abstractmethod
    async def load_chat(self, application: Application, chat_id: int) -> None:
        """Put the chat's stored state into application.chat_data[chat_id] before its update runs."""

    @abstractmethod
    async def save_chat(self, application: Application, chat_id: int) -> None:
        """Store what the update left in application.chat_data[chat_id]."""

    @abstractmethod
    async def take_turn(self, user_id: int, user_data: Data, per_minute: int, burst: int, queue: float) -> Admission:
        """take_turn() on the user's bucket, wherever it lives."""

    @abstractmethod
    async def migrate_chat(self, application: Application, message: Message) -> int:
        """A group became a supergroup: move its state to the new chat id; returns the old id."""

    async def send_wait(self, chat_id: int | str) -> float:
        """Seconds a message to this chat must wait for Telegram's limits when they are shared (else 0)."""
        return 0.0

    @abstractmethod
    async def start(self) -> None:
        """Check the store can be reached (called once the event loop runs)."""

    @abstractmethod
    async def close(self) -> None:
        """Let go of connections."""

    @abstractmethod
    def describe(self) -> str:
        """Where the state lives, for log lines (no password)."""


class _ChatLocks:
    """asyncio locks by chat id, each dropped once nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, chat_id: int) -> AsyncIterator[None]:
        lock, users = self._locks.get(chat_id, (asyncio.Lock(), 0))
        self._locks[chat_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[chat_id]
            if users == 1:
                del self._locks[chat_id]
            else:
                self._locks[chat_id] = (lock, users - 1)


class FileStore(ChatStore):
    """One process: PTB keeps chat_data and user_data in memory and JsonPersistence writes them to a file."""

    def __init__(self, data_dir: Path) -> None:
        self._persistence = JsonPersistence(data_dir / STATE_FILE)
        self._locks = _ChatLocks()

    def persistence(self) -> BasePersistence:
        return self._persistence

    def chat_lock(self, chat_id: int) -> contextlib.AbstractAsyncContextManager[None]:
        return self._locks.hold(chat_id)

    async def load_chat(self, application: Application, chat_id: int) -> None:
        return None  # PTB holds chat_data in memory, loaded from the file at start

    async def save_chat(self, application: Application, chat_id: int) -> None:
        return None  # PTB hands changes to JsonPersistence

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def describe(self) -> str:
        return f"the JSON file {self._persistence.path}"

    async def take_turn(self, user_id: int, user_data: Data, per_minute: int, burst: int, queue: float) -> Admission:
        return take_turn(user_data, per_minute, burst, queue_seconds=queue)  # no await inside: atomic here

    async def migrate_chat(self, application: Application, message: Message) -> int:
        old = message.migrate_from_chat_id or message.chat.id
        new = message.migrate_to_chat_id or message.chat.id
        # Both chats get a service message; PTB's migrate_chat_data would move the old chat's (by then
        # empty) data over the moved one on the second, so only a chat with data moves, onto one without.
        if application.chat_data.get(old) and not application.chat_data.get(new):
            application.migrate_chat_data(old_chat_id=old, new_chat_id=new)
            application.chat_data[new]["migrated_from"] = old
        return old


# Redis ---------------------------------------------------------------------------------------------

# A token bucket, as take_turn() below: KEYS[1] a hash {tokens, at}; ARGV: rate (tokens a second), burst,
# queue (seconds a turn may wait), ttl, now ("" for the server's clock, which every replica shares).
# Returns {admitted (1/0), wait as a string}: Lua numbers come back as integers, which would cut the wait.
# A key that is not such a hash (foreign, damaged) returns {-1}: the caller sets it aside and asks again.
_BUCKET_SCRIPT = """
local now = tonumber(ARGV[5])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local rate, burst, queue, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local kind = redis.call('TYPE', KEYS[1])['ok']
local tokens, at = burst, now
if kind ~= 'none' then
  if kind ~= 'hash' then return {-1} end
  local stored = redis.call('HMGET', KEYS[1], 'tokens', 'at')
  tokens, at = tonumber(stored[1]), tonumber(stored[2])
  if not tokens or not at then return {-1} end
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = math.max(0, (1 - tokens) / rate)
local admitted = 1
if wait > queue then admitted = 0 else tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], ttl)
return {admitted, tostring(wait)}
"""
# Release or extend a lock only while it still holds our token (it may have timed out and been taken).
_RELEASE_SCRIPT = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_EXTEND_SCRIPT = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
)
_REDIS_SCHEMES = {"redis", "rediss", "unix"}


def safe_redis_url(url: str) -> str:
    """The URL without its password, for log lines and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


class RedisStore(ChatStore):
    """Chat state in Redis, shared by every replica: read and written per update, with TTLs and a lock per chat."""

    shared = True

    def __init__(self, url: str, bot_id: str) -> None:
        self.url = url
        self.prefix = f"storybot:{bot_id}:"  # bots sharing one Redis keep apart
        self._client: Redis | None = None
        self._locks = _ChatLocks()  # one replica's own updates of a chat queue here, in order, first

    def describe(self) -> str:
        return f"Redis at {safe_redis_url(self.url)}"

    def persistence(self) -> None:
        return None  # everything PTB would persist lives in Redis (bot_data and callback data are not kept)

    @property
    def client(self) -> Redis:
        if self._client is None:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            self._client = Redis.from_url(
                self.url,
                socket_timeout=5,
                socket_connect_timeout=2,
                retry=Retry(NoBackoff(), 0),  # retried in _call, the one retry layer, which says so in the log
                health_check_interval=30,
            )
        return self._client

    async def start(self) -> None:
        await self._call("reach", lambda: self.client.ping(), delays=START_RETRY_DELAYS)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _call(self, what: str, operation: Callable[[], Awaitable[T]], delays: tuple[float, ...] = ()) -> T:
        """Run a Redis operation; while Redis cannot be reached, say so in one line per try and try again."""
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        delays = delays or REDIS_RETRY_DELAYS  # read at each call: tests shorten it
        for attempt in range(len(delays) + 1):
            try:
                return await operation()
            except (RedisConnectionError, RedisTimeoutError, OSError) as error:
                reason = safe_error(error, self.url)
                if attempt == len(delays):
                    log.error("chat state: cannot %s %s (%s); gave up", what, self.describe(), reason)
                    raise StateUnavailable(f"the chat state store ({self.describe()}) cannot be reached") from None
                log.error(
                    "chat state: cannot %s %s (%s); retry %d of %d in %.1f s",
                    what,
                    self.describe(),
                    reason,
                    attempt + 1,
                    len(delays),
                    delays[attempt],
                )
                await asyncio.sleep(delays[attempt])
        raise AssertionError("unreachable")

    def _chat_key(self, chat_id: int) -> str:
        return f"{self.prefix}chat:{chat_id}"

    async def _set_aside(self, key: str, why: str) -> None:
        aside = f"{key}:unreadable-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(2)}"
        from redis.exceptions import ResponseError

        with contextlib.suppress(ResponseError):  # "no such key": another replica set it aside meanwhile
            await self._call("set aside a value in", lambda: self.client.rename(key, aside))
            await self._call("set aside a value in", lambda: self.client.expire(aside, ASIDE_TTL_SECONDS))
            log.warning("chat state: %s in %s %s; moved it to %s and started afresh", key, self.describe(), why, aside)

    # -- one chat's updates, in order, across replicas ---------------------------------------------

    @contextlib.asynccontextmanager
    async def chat_lock(self, chat_id: int) -> AsyncIterator[None]:
        async with self._locks.hold(chat_id):
            key, token = f"{self.prefix}lock:chat:{chat_id}", secrets.token_hex(16)
            await self._acquire(key, token)
            keeper = asyncio.create_task(self._keep(key, token))
            try:
                yield
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
                with contextlib.suppress(StateUnavailable):  # it times out by itself
                    await self._call(
                        "release a chat's lock in", lambda: self.client.eval(_RELEASE_SCRIPT, 1, key, token)
                    )

    async def _acquire(self, key: str, token: str) -> None:
        """SET NX with the lock's timeout; while another replica holds it, wait for it (polling: Redis has no
        wait-for-delete short of keyspace notifications, which a managed Redis may not allow)."""
        deadline = time.monotonic() + CHAT_LOCK_WAIT_SECONDS
        pause = 0.01
        while True:
            taken = await self._call(
                "take a chat's lock in",
                lambda: self.client.set(key, token, nx=True, px=int(CHAT_LOCK_SECONDS * 1000)),
            )
            if taken:
                return
            if time.monotonic() > deadline:
                log.error(
                    "chat state: a chat's lock (%s) was held for over %.0f s; going ahead", key, CHAT_LOCK_WAIT_SECONDS
                )
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)

    async def _keep(self, key: str, token: str) -> None:
        """Extend the lock while the update runs, so only a dead replica's lock times out."""
        while True:
            await asyncio.sleep(CHAT_LOCK_SECONDS / 3)
            with contextlib.suppress(StateUnavailable):
                await self._call(
                    "extend a chat's lock in",
                    lambda: self.client.eval(_EXTEND_SCRIPT, 1, key, token, int(CHAT_LOCK_SECONDS * 1000)),
                    delays=(0.5,),
                )

    # -- the chat's state, per update ----------------------------------------------------------------

    async def _read_chat(self, chat_id: int) -> Data:
        from redis.exceptions import ResponseError

        key = self._chat_key(chat_id)
        try:
            raw = await self._call("read a chat's state from", lambda: self.client.get(key))
        except ResponseError as error:  # WRONGTYPE: a list, a hash... not ours
            await self._set_aside(key, f"is not storybot's ({str(error)[:60]})")
            return {}
        if raw is None:
            return {}
        try:
            value = json.loads(raw if isinstance(raw, str) else raw.decode("utf-8"))
            if (
                not isinstance(value, dict)
                or value.get("storybot") != STATE_VERSION
                or not isinstance(value.get("chat"), dict)
            ):
                raise ValueError("not storybot chat state of this version")
            return dict(value["chat"])
        except (ValueError, RecursionError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            await self._set_aside(key, f"could not be read ({type(error).__name__}: {str(error)[:100]})")
            return {}

    async def load_chat(self, application: Application, chat_id: int) -> None:
        data = await self._read_chat(chat_id)
        held = application.chat_data[chat_id]  # PTB's dict for this chat (a defaultdict: made on first use)
        held.clear()
        held.update(data)

    async def save_chat(self, application: Application, chat_id: int) -> None:
        data = application.chat_data.get(chat_id) or {}
        key = self._chat_key(chat_id)
        try:
            if data:
                payload = json.dumps(
                    {"storybot": STATE_VERSION, "chat": data}, ensure_ascii=False, separators=(",", ":")
                )
                await self._call("write a chat's state to", lambda: self.client.set(key, payload, ex=CHAT_TTL_SECONDS))
            else:
                await self._call("write a chat's state to", lambda: self.client.delete(key))
        finally:
            application.drop_chat_data(chat_id)  # nothing is kept across updates: the next one reads Redis

    async def take_turn(self, user_id: int, user_data: Data, per_minute: int, burst: int, queue: float) -> Admission:
        key = f"{self.prefix}user:{user_id}:bucket"
        admitted, wait = await self.bucket(key, per_minute / 60.0, burst, queue, _bucket_ttl(per_minute, burst))
        return Admission(admitted, wait if admitted else math.ceil(wait))

    async def bucket(
        self,
        key: str,
        rate: float,
        burst: float,
        queue: float,
        ttl: int,
        now: float | None = None,
        delays: tuple[float, ...] = (),
    ) -> tuple[bool, float]:
        """One turn of the Lua token bucket: (admitted, wait). A key that is no bucket is set aside."""
        args = (rate, burst, queue, ttl, "" if now is None else repr(now))
        for _ in range(2):
            result = await self._call(
                "take a token in", lambda: self.client.eval(_BUCKET_SCRIPT, 1, key, *args), delays
            )
            if int(result[0]) >= 0:
                return bool(int(result[0])), float(result[1])
            await self._set_aside(key, "is not a storybot token bucket")
        raise StateUnavailable(f"the token bucket {key} keeps being replaced")

    async def send_wait(self, chat_id: int | str) -> float:
        """Reserve a place in the bot's shared 30 a second (and a group's 20 a minute); the wait for it."""
        forever = 1e9  # messages queue; none is refused
        try:
            _, wait = await self.bucket(
                f"{self.prefix}sends", SENDS_PER_SECOND, SENDS_PER_SECOND, forever, 60, delays=PACE_RETRY_DELAYS
            )
            if isinstance(chat_id, str) or chat_id < 0:
                _, group_wait = await self.bucket(
                    f"{self.prefix}sends:{chat_id}",
                    GROUP_SENDS_PER_MINUTE / 60,
                    GROUP_SENDS_PER_MINUTE,
                    forever,
                    3600,
                    delays=PACE_RETRY_DELAYS,
                )
                wait = max(wait, group_wait)
        except StateUnavailable:
            return 0.0  # send unpaced rather than not at all (telling a user Redis is away is a send too)
        return wait

    async def migrate_chat(self, application: Application, message: Message) -> int:
        here = message.chat.id
        data = application.chat_data[here]  # loaded for this update
        if message.migrate_to_chat_id is not None:  # the old group's message: its state moves out...
            old, new = here, message.migrate_to_chat_id
            if data:
                payload = json.dumps(
                    {"storybot": STATE_VERSION, "chat": {**data, "migrated_from": old}}, ensure_ascii=False
                )
                new_key = self._chat_key(new)
                await self._call(
                    "write a chat's state to", lambda: self.client.set(new_key, payload, nx=True, ex=CHAT_TTL_SECONDS)
                )
                data.clear()  # ...and is deleted when the update ends
            return old
        old = message.migrate_from_chat_id or here  # the new supergroup's message: take the state in
        if not data:
            moved = await self._read_chat(old)
            if moved:
                data.update(moved, migrated_from=old)
                old_key = self._chat_key(old)
                await self._call("write a chat's state to", lambda: self.client.delete(old_key))
        return old


def safe_error(error: BaseException, url: str) -> str:
    """An error's text with the Redis URL's password taken out."""
    text = f"{type(error).__name__}: {error}"
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text


def open_store(settings: Settings) -> ChatStore:
    """The store STORYBOT_REDIS_URL asks for: Redis when set, else the JSON file under the data dir."""
    if settings.redis_url is None:
        return FileStore(settings.data_dir)
    token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
    return RedisStore(settings.redis_url.get_secret_value(), bot_id=token.partition(":")[0] or "bot")


# -- one chat, one order -------------------------------------------------------------------------------


def chat_of(update: object) -> int | None:
    """The chat whose state an update reads and writes (none for inline queries and inline messages)."""
    if isinstance(update, Update) and update.effective_chat is not None:
        return update.effective_chat.id
    return None


class ChatOrder(BaseUpdateProcessor):
    """Updates of different chats run at once; one chat's run one at a time, in the order they came.

    Around each update it holds the chat's lock (in Redis: across replicas) and has the store load the
    chat's state before and save it after. A store that cannot be reached becomes the error handler's
    business (a message to the user), never a silent loss.
    """

    def __init__(self, store: ChatStore, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self.store = store
        self.application: Application | None = None  # set by build_application, which makes both

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat_id = chat_of(update)
        if chat_id is None or self.application is None:
            await coroutine
            return
        application = self.application
        try:
            async with self.store.chat_lock(chat_id):
                try:
                    await self.store.load_chat(application, chat_id)
                except BaseException:
                    _close(coroutine)
                    raise
                try:
                    await coroutine
                finally:
                    await self.store.save_chat(application, chat_id)
        except StateUnavailable as error:
            _close(coroutine)
            await application.process_error(update, error)

    async def initialize(self) -> None:
        return None  # `storybot telegram` checks the store before it starts (app.check_store); it connects lazily

    async def shutdown(self) -> None:
        await self.store.close()


def _close(coroutine: Awaitable[Any]) -> None:
    """Close an update's coroutine that will not run (so Python does not warn it was never awaited)."""
    if inspect.iscoroutine(coroutine) and inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED:
        coroutine.close()
