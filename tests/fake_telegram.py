"""A Bot API server on loopback for the tests: enough of Telegram for python-telegram-bot, recording every call."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_USER = {
    "id": 4242,
    "is_bot": True,
    "first_name": "Storybot",
    "username": "storybot_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
# Parameters sent as plain strings; everything else arrives JSON-encoded.
_STRING_PARAMS = {"text", "parse_mode", "action", "callback_query_id", "inline_message_id", "url", "caption"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class FakeBotAPI:
    """Serves /bot<token>/<method>; tests push updates in and read the calls the bot made."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.messages: dict[int, dict[str, Any]] = {}  # every message either side sent, by id
        self.chats: dict[int, dict[str, Any]] = {}
        self.failures: dict[str, list[str]] = {}  # method -> ["retry_after" | "server_error", ...]
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._callback_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- server ----------------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/bot"
        return self.base_url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        raw = dict(await request.post()) if request.can_read_body else {}
        params: dict[str, Any] = {}
        for key, value in raw.items():
            value = str(value)
            if key in _STRING_PARAMS:
                params[key] = value
            else:
                try:
                    params[key] = json.loads(value)
                except json.JSONDecodeError:
                    params[key] = value
        if method != "getUpdates":
            self.calls.append(Call(method, params))
        failures = self.failures.get(method)
        if failures:
            kind = failures.pop(0)
            if kind == "retry_after":
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": "Too Many Requests: retry after 1",
                        "parameters": {"retry_after": 1},
                    },
                    status=429,
                )
            return web.json_response({"ok": False, "error_code": 502, "description": "Bad Gateway"}, status=502)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            result: Any = True
        else:
            result = await handler(params)
        async with self._changed:
            self._changed.notify_all()
        return web.json_response({"ok": True, "result": result})

    # -- Bot API methods ---------------------------------------------------------------------------

    async def _api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return BOT_USER

    async def _api_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 1.0)
        # As Telegram does: an offset confirms every earlier update, which is then forgotten.
        self._updates = [u for u in self._updates if u["update_id"] >= offset]

        def pending() -> list[dict[str, Any]]:
            return [u for u in self._updates if u["update_id"] >= offset]

        async with self._changed:
            if not pending() and timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait_for(lambda: bool(pending())), timeout)
        return pending()[:100]

    def _bot_message(self, chat_id: int, text: str, params: dict[str, Any]) -> dict[str, Any]:
        message_id = next(self._message_ids)
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self.chats.get(chat_id, {"id": chat_id, "type": "private", "first_name": "Tester"}),
            "from": BOT_USER,
            "text": text,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages[message_id] = message
        return message

    async def _api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._bot_message(int(params["chat_id"]), params["text"], params)

    async def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self.messages[int(params["message_id"])]
        message["text"] = params["text"]
        message["reply_markup"] = params.get("reply_markup")
        return message

    # -- what the tests do ------------------------------------------------------------------------

    async def _push(self, update: dict[str, Any]) -> None:
        update["update_id"] = next(self._update_ids)
        self._updates.append(update)
        async with self._changed:
            self._changed.notify_all()

    async def send_text(
        self,
        text: str,
        chat_id: int = 111,
        user_id: int = 111,
        chat_type: str = "private",
        reply_to: int | None = None,
    ) -> int:
        """A user's text message; commands and @mentions get their entities as Telegram would send them."""
        chat = {"id": chat_id, "type": chat_type}
        chat.update({"first_name": "Tester"} if chat_type == "private" else {"title": "Test group"})
        self.chats[chat_id] = chat
        entities = []
        if text.startswith("/"):
            entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
        mention = "@" + BOT_USER["username"]
        start = text.find(mention)
        if start >= 0:
            entities.append({"type": "mention", "offset": start, "length": len(mention)})
        message_id = next(self._message_ids)
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": "Tester"},
            "text": text,
        }
        if entities:
            message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = self.messages[reply_to]
        self.messages[message_id] = message
        await self._push({"message": message})
        return message_id

    async def send_photo(self, chat_id: int = 111, user_id: int = 111) -> None:
        chat = {"id": chat_id, "type": "private", "first_name": "Tester"}
        await self._push(
            {
                "message": {
                    "message_id": next(self._message_ids),
                    "date": int(time.time()),
                    "chat": chat,
                    "from": {"id": user_id, "is_bot": False, "first_name": "Tester"},
                    "photo": [{"file_id": "p1", "file_unique_id": "u1", "width": 10, "height": 10}],
                }
            }
        )

    async def press(self, message_id: int, data: str, user_id: int = 111) -> str:
        """Tap an inline button under one of the bot's messages."""
        query_id = str(next(self._callback_ids))
        await self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": {"id": user_id, "is_bot": False, "first_name": "Tester"},
                    "chat_instance": "instance",
                    "data": data,
                    "message": self.messages[message_id],
                }
            }
        )
        return query_id

    def calls_to(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method and (chat_id is None or int(c.params.get("chat_id", 0)) == chat_id)
        ]

    async def wait_for(
        self, method: str, count: int = 1, chat_id: int | None = None, timeout: float = 20
    ) -> list[Call]:
        """Wait until the bot has made `count` calls to `method` (for `chat_id`), and return them."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while len(self.calls_to(method, chat_id)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    made = [c.method for c in self.calls]
                    raise AssertionError(f"expected {count} {method} call(s); the bot made {made}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        return self.calls_to(method, chat_id)
