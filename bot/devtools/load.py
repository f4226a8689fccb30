"""The Telegram load run of `storybot bench`: 20 chats x 10 questions at once through a loopback Bot API."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from bot.devtools.loopback_api import LoopbackBotAPI
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
        reply_times: list[float] = []
        right = answered = 0

        async def chat(number: int) -> None:
            nonlocal right, answered
            chat_id = 10_000 + number
            for turn in range(QUESTIONS_PER_CHAT):
                question, phrase = LOAD_QUESTIONS[(number + turn) % len(LOAD_QUESTIONS)]
                sent = time.perf_counter()
                await api.send_text(question, chat_id=chat_id, user_id=chat_id)
                reply = (await api.wait_for("sendMessage", turn + 1, chat_id=chat_id, timeout=60))[turn]
                reply_times.append(time.perf_counter() - sent)
                answered += 1
                right += phrase in visible_text(reply.params["text"])

        started = time.perf_counter()
        try:
            async with polling(application):
                await asyncio.gather(*(chat(n) for n in range(CHATS)))
        finally:
            await api.stop()
        seconds = time.perf_counter() - started
    total = CHATS * QUESTIONS_PER_CHAT
    pacing = "paced to Telegram's 30 messages/s" if flood_limits else "no pacing (the bot alone)"
    print(
        f"telegram load, {pacing}: {CHATS} chats x {QUESTIONS_PER_CHAT} questions at once over loopback HTTP: "
        f"{answered}/{total} answered, {right}/{total} with the right passage, {seconds:.1f}s in all"
    )
    print(
        f"  reply time   p50 {percentile(reply_times, 0.5) * 1000:7.1f} ms   "
        f"p95 {percentile(reply_times, 0.95) * 1000:7.1f} ms"
    )


def run_load(service: StorybotService) -> None:
    """Run the load as deployed (paced to Telegram's limits), then without pacing, and print the figures."""
    asyncio.run(_load(service, flood_limits=True))
    asyncio.run(_load(service, flood_limits=False))
