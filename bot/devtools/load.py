"""The Telegram load run of `storybot bench`: 20 chats x 10 questions at once through a loopback Bot API.

Three runs: one process (as deployed, then without Telegram's pacing), and two `storybot telegram --webhook`
replicas sharing their state in a redis-server started for the run, each chat's questions handed to
the replicas in turn, as a balancer would.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from bot.config import Settings
from bot.devtools.loopback_api import LoopbackBotAPI
from bot.devtools.redis_server import RedisServer
from bot.devtools.stats import percentile
from bot.service import StorybotService
from bot.telegram.app import build_application, polling
from bot.telegram.format import visible_text

CHATS = 20
QUESTIONS_PER_CHAT = 10
TOKEN = "123456789:LOADloadLOADloadLOADloadLOADload"
# Questions about the bundled article, with a phrase the right passage contains.
LOAD_QUESTIONS = [
    ("What did Biden warn?", "sanctions like he"),
    ("Who did Putin call later on Tuesday?", "Macron"),
    ("Which news agency did Ryabkov talk to?", "RIA Novosti"),
    ("What does Russia want from NATO?", "NATO"),
    ("Who is Sauli Niinisto?", "Finnish President"),
    ("Did Putin deny planning an invasion?", "denied planning an invasion"),
    ("What did the EU and the G7 do?", "unprecedented economic sanctions"),
    ("Where was the cover photo taken?", "Sochi"),
    ("Whom does Putin blame for the rise in tensions?", "Western security alliance"),
    ("When does Putin want talks to begin?", "without delay"),
]


async def _load(service: StorybotService, flood_limits: bool) -> None:
    api = LoopbackBotAPI(TOKEN)
    base_url = await api.start()
    with tempfile.TemporaryDirectory() as data_dir:
        settings = service.settings.model_copy(
            update={
                "telegram_bot_token": SecretStr(TOKEN),
                "telegram_api_url": base_url,
                "data_dir": Path(data_dir),
                "rate_limit_per_minute": 10_000,  # the load run measures answering, not the limiter
            }
        )
        load_service = service.with_settings(settings)
        application = build_application(settings, load_service, flood_limits)
        started = time.perf_counter()
        try:
            async with polling(application):
                figures = await _chats(api, lambda chat_id, turn: None)
        finally:
            await api.stop()
        seconds = time.perf_counter() - started
    pacing = "paced to Telegram's 30 messages/s" if flood_limits else "no pacing (the bot alone)"
    _report(f"one process, {pacing}", figures, seconds)


async def _chats(api: LoopbackBotAPI, via: Callable[[int, int], str | None]) -> tuple[list[float], int, int]:
    """CHATS chats at once, each asking its questions one after another: (reply times, answered, right)."""
    reply_times: list[float] = []
    right = answered = 0

    async def chat(number: int) -> None:
        nonlocal right, answered
        chat_id = 10_000 + number
        for turn in range(QUESTIONS_PER_CHAT):
            question, phrase = LOAD_QUESTIONS[(number + turn) % len(LOAD_QUESTIONS)]
            sent = time.perf_counter()
            await api.send_text(question, chat_id=chat_id, user_id=chat_id, via=via(chat_id, turn))
            reply = (await api.wait_for("sendMessage", turn + 1, chat_id=chat_id, timeout=120))[turn]
            reply_times.append(time.perf_counter() - sent)
            answered += 1
            right += phrase in visible_text(reply.params["text"])

    await asyncio.gather(*(chat(n) for n in range(CHATS)))
    return reply_times, answered, right


def _report(run: str, figures: tuple[list[float], int, int], seconds: float) -> None:
    reply_times, answered, right = figures
    total = CHATS * QUESTIONS_PER_CHAT
    print(
        f"telegram load, {run}: {CHATS} chats x {QUESTIONS_PER_CHAT} questions at once over loopback HTTP: "
        f"{answered}/{total} answered, {right}/{total} with the right passage, {seconds:.1f}s in all"
    )
    print(
        f"  reply time   p50 {percentile(reply_times, 0.5) * 1000:7.1f} ms   "
        f"p95 {percentile(reply_times, 0.95) * 1000:7.1f} ms"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _replicas_load(settings: Settings, folder: Path, redis_url: str) -> None:
    """Two webhook replicas (processes) with their state in Redis; each chat's turns alternate between them."""
    api = LoopbackBotAPI(TOKEN)
    base_url = await api.start()
    urls: list[str] = []
    processes: list[asyncio.subprocess.Process] = []
    try:
        for number in range(2):
            port = _free_port()
            urls.append(f"http://127.0.0.1:{port}/storybot")
            env = {
                **os.environ,
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "STORYBOT_TELEGRAM_API_URL": base_url,
                "STORYBOT_CORPUS_DIR": str(settings.corpus_dir.resolve()),
                "STORYBOT_INDEX_DIR": str(settings.index_dir.resolve()),
                "STORYBOT_DATA_DIR": str(folder / f"replica-{number}"),
                "STORYBOT_EMBEDDING_MODEL": settings.embedding_model,
                "STORYBOT_REDIS_URL": redis_url,
                "STORYBOT_WEBHOOK_PORT": str(port),
                "STORYBOT_WEBHOOK_SECRET": "storybot-bench-replicas",
                "STORYBOT_RATE_LIMIT_PER_MINUTE": "10000",  # measures answering, not the limiter
                "STORYBOT_RATE_LIMIT_BURST": "10000",
                "STORYBOT_CORPUS_CHECK_SECONDS": "0",
            }
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot",
                    "telegram",
                    "--webhook",
                    urls[-1],
                    env=env,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
            )
        await api.wait_for("setWebhook", 2, timeout=300)  # both loaded; each listens right after
        started = time.perf_counter()
        figures = await _chats(api, lambda chat_id, turn: urls[(chat_id + turn) % 2])
        seconds = time.perf_counter() - started
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
                await process.wait()
        await api.stop()
    _report("two webhook replicas with Redis, paced, turns alternating", figures, seconds)


def run_replicas_load(settings: Settings) -> None:
    """The two-replica run, with a redis-server of its own on loopback (skipped, saying why, without one)."""
    if shutil.which("redis-server") is None:
        print("telegram load, two replicas with Redis: skipped (no redis-server on PATH)")
        return
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(Path(folder) / "redis", _free_port())
        server.start()
        try:
            asyncio.run(_replicas_load(settings, Path(folder), server.url))
        finally:
            server.stop()


def run_load(service: StorybotService) -> None:
    """Run the load as deployed (paced to Telegram's limits), without pacing, then as two replicas with Redis."""
    asyncio.run(_load(service, flood_limits=True))
    asyncio.run(_load(service, flood_limits=False))
    run_replicas_load(service.settings)
