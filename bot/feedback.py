"""Feedback on answers, appended to a JSON Lines file so bad answers can become new eval questions."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FEEDBACK_FILE = "feedback.jsonl"


class FeedbackLog:
    """Appends one JSON object per vote; safe to share between threads."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FEEDBACK_FILE
        self._lock = threading.Lock()

    def record(
        self,
        answer: dict[str, Any],
        good: bool,
        note: str | None = None,
        channel: str = "console",
        chat: int | None = None,
    ) -> None:
        """Append one vote about an answer, given in its `ask --json` form."""
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "channel": channel,
            "chat": chat,
            "vote": "up" if good else "down",
            "note": note,
            **answer,
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(line)
