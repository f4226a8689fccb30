"""Two `storybot telegram --webhook` processes sharing chat state through a real Redis, as replicas behind a balancer.

The loopback Bot API posts each update to the replica a test names (what a balancer decides), over HTTP.
One Redis (with a password, append-only so a restart keeps its data) and two replicas serve the whole
module; each test has its own chat. The last test stops Redis and starts it again.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
import redis

from bot.devtools.loopback_api import LoopbackBotAPI
from bot.service import StorybotService
from bot.telegram.format import visible_text

from .conftest import ROOT
from .helpers import REDIS_MISSING, TOKEN, RedisServer, bot_process_env, free_port

on_the_replicas_loop = pytest.mark.asyncio(loop_scope="module")

SECRET = "replicas-share-this-secret_0123456789"
REDIS_PASSWORD = "redis-password-never-logged"
FIRST, FOLLOW_UP = "Who did Putin call first?", "What did he tell him?"  # the conversation
ALONE = "doesn't look like a question"  # what FOLLOW_UP gets without the turn before (test_telegram_order.py)
PER_MINUTE, BURST = 1, 4  # every replica's limit, taken together: a user's fifth question at once is refused


@dataclass
class Replica:
    """One `storybot telegram --webhook` process with its own data folder and port; its log read as it comes."""

    name: str
    env: dict[str, str]
    url: str
    lines: list[str] = field(default_factory=list)
    process: asyncio.subprocess.Process | None = None
    _reader: asyncio.Task | None = None
    _logged: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self, api: LoopbackBotAPI) -> None:
        """Start the process; returns once it has set its webhook (its listener opens right after)."""
        earlier = len([c for c in api.calls_to("setWebhook") if c.params["url"] == self.url])
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "telegram", "--webhook", self.url, env=self.env, cwd=ROOT,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        while len([c for c in api.calls_to("setWebhook") if c.params["url"] == self.url]) == earlier:
            assert self.process.returncode is None, f"replica {self.name} exited: {self.log}"
            await api.wait_for("setWebhook", len(api.calls_to("setWebhook")) + 1, timeout=180)

    async def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        async for line in self.process.stderr:
            async with self._logged:
                self.lines.append(line.decode(errors="replace"))
                self._logged.notify_all()

    async def wait_for_line(self, text: str, timeout: float = 30) -> str:
        """The first log line holding `text`, waiting for it to be written."""

        def found() -> str | None:
            return next((line for line in self.lines if text in line), None)

        async with self._logged:
            await asyncio.wait_for(self._logged.wait_for(lambda: found() is not None), timeout)
        return found() or ""

    @property
    def log(self) -> str:
        return "".join(self.lines)

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, as a crashed machine."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), 60)
            except TimeoutError:
                self.process.kill()
        if self._reader is not None:
            await self._reader


@dataclass
class Replicas:
    api: LoopbackBotAPI
    redis: RedisServer
    a: Replica
    b: Replica
    make: Callable[[str], Replica]  # a new replica on a fresh data folder and port


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def replicas(tmp_path_factory: pytest.TempPathFactory, seed_service: StorybotService) -> AsyncIterator[Replicas]:
    """A Redis, the loopback Bot API and replicas A and B over the seed index, each with its own data folder."""
    import shutil

    if shutil.which("redis-server") is None:
        pytest.fail(REDIS_MISSING, pytrace=False)
    root = tmp_path_factory.mktemp("replicas")
    server = RedisServer(root / "redis", free_port(), password=REDIS_PASSWORD)
    server.start()
    api = LoopbackBotAPI(TOKEN)
    await api.start()

    def make(name: str) -> Replica:
        port = free_port()
        settings = seed_service.settings.model_copy(update={"data_dir": root / f"data-{name}-{port}"})
        env = bot_process_env(
            settings,
            api.base_url,
            STORYBOT_REDIS_URL=server.url,
            STORYBOT_WEBHOOK_PORT=str(port),
            STORYBOT_WEBHOOK_SECRET=SECRET,
            STORYBOT_RATE_LIMIT_PER_MINUTE=str(PER_MINUTE),
            STORYBOT_RATE_LIMIT_BURST=str(BURST),
            STORYBOT_CORPUS_CHECK_SECONDS="0",
            OMP_NUM_THREADS="1",  # two replicas and the tests share two cores
        )
        return Replica(name, env, f"http://127.0.0.1:{port}/storybot")

    started = [make("a"), make("b")]
    try:
        await asyncio.gather(*(replica.start(api) for replica in started))
        yield Replicas(api, server, started[0], started[1], make)
    finally:
        await asyncio.gather(*(replica.stop() for replica in started))
        await api.stop()
        server.stop()
    for replica in started:  # secrets never reach a log, not even a line about Redis being away
        assert (
            REDIS_PASSWORD not in replica.log and SECRET not in replica.log and TOKEN.split(":")[1] not in replica.log
        )


async def reply(replicas: Replicas, chat: int, count: int) -> str:
    """The text of the chat's `count`-th reply, as the user reads it."""
    return visible_text(
        (await replicas.api.wait_for("sendMessage", count, chat_id=chat, timeout=60))[count - 1].params["text"]
    )


@on_the_replicas_loop
async def test_a_follow_up_crosses_replicas_and_a_killed_one_loses_nothing(replicas: Replicas) -> None:
    api, chat = replicas.api, 901
    await api.send_text(FIRST, chat_id=chat, user_id=chat, via=replicas.a.url)
    assert "Sauli Niinisto" in await reply(replicas, chat, 1)
    await api.send_text(FOLLOW_UP, chat_id=chat, user_id=chat, via=replicas.b.url)
    crossed = await reply(replicas, chat, 2)
    assert ALONE not in crossed and "negotiations with the United States" in crossed  # read with A's turn
    # A dies mid-conversation: no shutdown, nothing flushed. B goes on with the chat's history.
    await replicas.a.kill()
    await api.send_text(FOLLOW_UP, chat_id=chat, user_id=chat, via=replicas.b.url)
    assert ALONE not in await reply(replicas, chat, 3)
    # A restarted as on a fresh machine (a new, empty data folder) has the history too.
    restarted = replicas.make("a2")
    await restarted.start(api)
    replicas.a = restarted
    await api.send_text(FOLLOW_UP, chat_id=chat, user_id=chat, via=restarted.url)
    assert ALONE not in await reply(replicas, chat, 4)


@on_the_replicas_loop
async def test_a_burst_from_one_user_split_across_replicas_is_limited_as_one(replicas: Replicas) -> None:
    # With a bucket per process each replica let BURST through: 2 x BURST questions at once, all answered.
    chat = 902
    questions = [
        "What did Biden warn?",
        "Who did Putin call later on Tuesday?",
        "Which news agency did Ryabkov talk to?",
    ]
    questions += ["What does Russia want from NATO?", "Who is Sauli Niinisto?", "Where was the cover photo taken?"]
    for number, question in enumerate(questions):
        via = (replicas.a, replicas.b)[number % 2].url
        await replicas.api.send_text(question, chat_id=chat, user_id=chat, via=via)
    texts = [await reply(replicas, chat, n) for n in range(1, len(questions) + 1)]
    refused = [text for text in texts if "faster than I can keep up" in text]
    assert len(refused) == len(questions) - BURST, texts


@on_the_replicas_loop
async def test_a_value_in_redis_that_is_not_ours_is_set_aside_with_a_warning(replicas: Replicas) -> None:
    chat = 903
    bot = TOKEN.partition(":")[0]
    with redis.Redis.from_url(replicas.redis.url) as client:
        client.set(f"storybot:{bot}:chat:{chat}", b'{"turns": [ damaged \xff')
        client.rpush(f"storybot:{bot}:user:{chat}:bucket", "not", "a", "bucket")
        await replicas.api.send_text("What did Biden warn?", chat_id=chat, user_id=chat, via=replicas.b.url)
        assert "sanctions like" in await reply(replicas, chat, 1)  # answered afresh, not stopped
        aside = {key.decode(): key for key in client.scan_iter(f"storybot:{bot}:*:{chat}*unreadable-*")}
        chat_aside = next(key for name, key in aside.items() if ":chat:" in name)
        bucket_aside = next(key for name, key in aside.items() if ":bucket:" in name)
        assert client.get(chat_aside) == b'{"turns": [ damaged \xff' and client.ttl(chat_aside) > 0  # kept as it was
        assert client.lrange(bucket_aside, 0, -1) == [b"not", b"a", b"bucket"]
        # The chat's new state: written once the reply is sent, so it may land a moment after the reply.
        for _ in range(100):
            if client.get(f"storybot:{bot}:chat:{chat}") is not None:
                break
            await asyncio.sleep(0.1)
        assert client.get(f"storybot:{bot}:chat:{chat}") is not None
    for key in (f"chat:{chat}", f"user:{chat}:bucket"):
        line = await replicas.b.wait_for_line(f"{key} in Redis")
        assert "WARNING" in line and "moved it to" in line and "started afresh" in line


@on_the_replicas_loop
async def test_redis_going_away_is_an_error_line_and_a_retry_not_a_crash_nor_a_loss(replicas: Replicas) -> None:
    api, chat = replicas.api, 904
    await api.send_text(FIRST, chat_id=chat, user_id=chat, via=replicas.a.url)
    assert "Sauli Niinisto" in await reply(replicas, chat, 1)
    replicas.redis.stop()
    await api.send_text(FOLLOW_UP, chat_id=chat, user_id=chat, via=replicas.b.url)
    line = await replicas.b.wait_for_line("chat state: cannot")
    assert "ERROR" in line and "Redis at redis://:***@127.0.0.1" in line and "retry 1 of" in line
    replicas.redis.start()  # back, with what it held (append-only file)
    answer = await reply(replicas, chat, 2)
    assert ALONE not in answer and "negotiations with the United States" in answer  # the turn before survived
    assert replicas.b.process is not None and replicas.b.process.returncode is None
    assert "Traceback" not in replicas.b.log
    assert len(api.calls_to("sendMessage", chat)) == 2  # one answer: no apology, no second try's reply
