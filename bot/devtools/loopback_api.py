"""A Bot API server on loopback: enough of Telegram for python-telegram-bot, recording every call.

Telegram's servers cannot be reached from tests, CI or a machine without internet, so the tests, the
load benchmark and `python -m bot.devtools.loopback_api` (a chat with the bot in your terminal) talk to this
instead. It runs on aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

BOT_USER: dict[str, Any] = {
    "id": 4242,
    "is_bot": True,
    "first_name": "Storybot",
    "username": "storybot_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": True,  # as after BotFather's /setinline
}
# Parameters sent as plain strings; everything else arrives JSON-encoded.
_STRING_PARAMS = {
    "text",
    "parse_mode",
    "action",
    "callback_query_id",
    "inline_message_id",
    "inline_query_id",
    "url",
    "caption",
    "secret_token",
    "next_offset",
}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


LONG_POLL_SECONDS = 0.2  # an idle bot asks five times a second: nothing on loopback
SLOW_ANSWER_SECONDS = 1.5  # a "slow_answer" failure holds the answer this long


class LoopbackBotAPI:
    """Serves /bot<token>/<method>; tests push updates in and read the calls the bot made."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.messages: dict[int, dict[str, Any]] = {}  # every message either side sent, by id
        self.chats: dict[int, dict[str, Any]] = {}
        # method -> ["retry_after" | "server_error" | "slow_answer", ...]; a slow answer does the call, then
        # holds its answer SLOW_ANSWER_SECONDS (a client that gave up by then cannot know it was done).
        self.failures: dict[str, list[str]] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._callback_ids = itertools.count(1)
        self._inline_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        # While a webhook is set (setWebhook's url and secret_token), updates are POSTed to it, as Telegram
        # does, and getUpdates is refused; webhook_statuses holds the HTTP status of every POST.
        self.webhook: dict[str, Any] | None = None
        self.webhook_statuses: list[int] = []
        self._client: aiohttp.ClientSession | None = None

    # -- server ----------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1 (a free port by default); returns the base_url for python-telegram-bot."""
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/bot"
        return self.base_url

    async def stop(self) -> None:
        if self._client:
            await self._client.close()
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
        elif self.webhook is not None:
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 409,
                    "description": "Conflict: can't use getUpdates method while webhook is active",
                },
                status=409,
            )
        failures = self.failures.get(method)
        if failures and failures[0] == "slow_answer":
            failures.pop(0)
            answer = await self._answer(method, params)
            await asyncio.sleep(SLOW_ANSWER_SECONDS)  # a slow network, by design: the client times out
            return answer
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
        return await self._answer(method, params)

    async def _answer(self, method: str, params: dict[str, Any]) -> web.Response:
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
        # Long polls are held at most LONG_POLL_SECONDS: PTB's updater.stop() awaits the poll in flight, so
        # every test that stops a bot would otherwise wait out a whole poll.
        timeout = min(float(params.get("timeout") or 0), LONG_POLL_SECONDS)
        # As Telegram does: an offset confirms every earlier update, which is then forgotten.
        self._updates = [u for u in self._updates if u["update_id"] >= offset]

        def pending() -> list[dict[str, Any]]:
            return [u for u in self._updates if u["update_id"] >= offset]

        async with self._changed:
            if not pending() and timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait_for(lambda: bool(pending())), timeout)
        return pending()[:100]

    async def _api_setWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {"url": params["url"], "secret_token": params.get("secret_token")}
        return True

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        return True

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

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self.messages[int(params["message_id"])]
        message["reply_markup"] = params.get("reply_markup")
        return message

    # -- what the tests do ------------------------------------------------------------------------

    async def _push(self, update: dict[str, Any], via: str | None = None) -> None:
        update["update_id"] = next(self._update_ids)
        if self.webhook is not None:
            self.webhook_statuses.append(await self._deliver(update, self.webhook["secret_token"], via))
            return
        self._updates.append(update)
        async with self._changed:
            self._changed.notify_all()

    async def _deliver(
        self, update: dict[str, Any], secret_token: str | None, via: str | None = None, patience: float = 10
    ) -> int:
        """POST to the webhook, retrying while nobody listens yet (as Telegram retries); the last status.

        python-telegram-bot calls setWebhook before its listener is up, so the first update may find it closed.
        `via` posts to that URL instead of the webhook's: one replica behind a balancer, chosen by the test.
        """
        deadline = time.monotonic() + patience
        delay = 0.05
        while True:
            status = await self.post_to_webhook(update, secret_token, via)
            if status != 0 or time.monotonic() + delay > deadline:
                return status
            await asyncio.sleep(delay)  # nothing to await here: the bot's port opens in another process
            delay = min(delay * 2, 1.0)

    async def post_to_webhook(self, update: dict[str, Any], secret_token: str | None, via: str | None = None) -> int:
        """POST an update to the webhook (or `via`) as Telegram does, with the given secret header; the HTTP status."""
        assert self.webhook is not None, "no webhook is set"
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        headers = {"Content-Type": "application/json"}
        if secret_token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret_token
        update.setdefault("update_id", next(self._update_ids))
        try:
            url = via or self.webhook["url"]
            async with self._client.post(url, data=json.dumps(update), headers=headers) as response:
                return response.status
        except aiohttp.ClientError:
            return 0  # nobody listening: Telegram would retry later; the tests look at the status

    async def send_text(
        self,
        text: str,
        chat_id: int = 111,
        user_id: int = 111,
        chat_type: str = "private",
        reply_to: int | None = None,
        via: str | None = None,
    ) -> int:
        """A user's text message; commands and @mentions get their entities as Telegram would send them."""
        update = self.text_update(text, chat_id, user_id, chat_type, reply_to)
        await self._push(update, via)
        return int(update["message"]["message_id"])

    def text_update(
        self,
        text: str,
        chat_id: int = 111,
        user_id: int = 111,
        chat_type: str = "private",
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """The update of a user's text message, not yet sent (see send_text)."""
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
        return {"message": message}

    async def migrate_to_supergroup(self, old_chat_id: int, new_chat_id: int, user_id: int = 111) -> None:
        """A group becomes a supergroup, as Telegram tells it: a service message in each chat, old first."""
        self.chats[new_chat_id] = {"id": new_chat_id, "type": "supergroup", "title": "Test group"}
        sender = {"id": user_id, "is_bot": False, "first_name": "Tester"}
        for chat_id, field_name, other in (
            (old_chat_id, "migrate_to_chat_id", new_chat_id),
            (new_chat_id, "migrate_from_chat_id", old_chat_id),
        ):
            chat = self.chats.get(chat_id, {"id": chat_id, "type": "group", "title": "Test group"})
            message = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": chat, "from": sender}
            await self._push({"message": {**message, field_name: other}})

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

    async def inline_query(self, text: str, user_id: int = 111) -> str:
        """Type `@bot text` in some chat: an inline query, as Telegram sends one per pause in typing."""
        query_id = f"iq{next(self._inline_ids)}"
        await self._push(
            {
                "inline_query": {
                    "id": query_id,
                    "from": {"id": user_id, "is_bot": False, "first_name": "Tester"},
                    "query": text,
                    "offset": "",
                    "chat_type": "sender",
                }
            }
        )
        return query_id

    def inline_answer(self, query_id: str) -> Call | None:
        """The bot's answerInlineQuery for this query, if it made one."""
        return next((c for c in self.calls_to("answerInlineQuery") if c.params["inline_query_id"] == query_id), None)

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


# -- a terminal user for trying the bot without Telegram ----------------------------------------------


def _plain(text: str) -> str:
    import html
    import re

    return html.unescape(re.sub(r"<[^<>]+>", "", text))


def _buttons(params: dict[str, Any]) -> list[dict[str, Any]]:
    markup = params.get("reply_markup") or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


def describe_call(call: Call) -> str | None:
    """What a Telegram user would see of a call the bot made, as terminal text; None for what they would not."""
    buttons = [str(b.get("text")) for b in _buttons(call.params)]
    keyboard = f"      buttons: {' | '.join(buttons)}  (type '!press N' to press button N)" if buttons else ""
    if call.method in {"sendMessage", "editMessageText"}:
        return "\n".join(part for part in (f"\n[bot] {_plain(call.params['text'])}\n", keyboard) if part)
    if call.method == "editMessageReplyMarkup":
        return keyboard or None
    if call.method == "answerInlineQuery":
        results = call.params.get("results") or []
        shown = [f"      ({n}) {r.get('title')} — {r.get('description', '')}" for n, r in enumerate(results, start=1)]
        texts = [
            f"\n[inline result {n}, as it would be sent]\n{_plain(r['input_message_content']['message_text'])}\n"
            + "".join(f"      link button: {b.get('text')} -> {b.get('url')}\n" for b in _buttons(r))
            for n, r in enumerate(results, start=1)
        ]
        return "\n".join(["      [inline results]" if results else "      [no inline results]", *shown, *texts])
    if call.method == "answerCallbackQuery" and call.params.get("text"):
        return f"      [notice] {call.params['text']}"  # Telegram shows it briefly over the chat
    return None


async def _chat(token: str, port: int) -> None:
    api = LoopbackBotAPI(token)
    base_url = await api.start(port)
    print(f"Bot API on {base_url} - start the bot with STORYBOT_TELEGRAM_API_URL={base_url}")
    print(f"and TELEGRAM_BOT_TOKEN={token}, then type messages here as a Telegram user (Ctrl-D quits).")
    print("'!press N' taps button N under the last reply; '@bot question' asks inline; '/start KEY' opens a story.")
    seen = 0
    loop = asyncio.get_running_loop()

    async def show_replies() -> None:
        nonlocal seen
        while True:
            await asyncio.sleep(0.2)
            for call in api.calls[seen:]:
                shown = describe_call(call)
                if shown:
                    print(shown, flush=True)
            seen = len(api.calls)

    printer = asyncio.create_task(show_replies())
    try:
        while True:
            line = await loop.run_in_executor(None, input, "")
            if line.startswith("!press "):
                bot_messages = [i for i, m in api.messages.items() if m["from"]["id"] == BOT_USER["id"]]
                buttons = [
                    b["callback_data"]
                    for row in (api.messages[bot_messages[-1]].get("reply_markup") or {}).get("inline_keyboard", [])
                    for b in row
                ]
                number = int(line.split()[1]) if line.split()[1].isdigit() else 0
                if bot_messages and 1 <= number <= len(buttons):
                    await api.press(bot_messages[-1], buttons[number - 1])
            elif line.startswith("@"):  # "@bot question": an inline query, as typed in any chat
                await api.inline_query(line.partition(" ")[2])
            elif line.strip():
                await api.send_text(line)
    except EOFError:
        pass
    finally:
        printer.cancel()
        await api.stop()


def main() -> None:
    """`python -m bot.devtools.loopback_api [--port 8081] [--token T]`: a local Bot API and a terminal user."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456789:LOOPBACKloopbackLOOPBACKloopback")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_chat(args.token, args.port))


if __name__ == "__main__":
    main()
