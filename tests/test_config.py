"""Settings from the environment and .env, including the documented .env.example."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import BUNDLED_MODEL, DEFAULT_TELEGRAM_API_URL, Settings

from .conftest import ROOT


def test_defaults_without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "TELEGRAM_BOT_TOKEN",
        "STORYBOT_CORPUS_DIR",
        "STORYBOT_INDEX_DIR",
        "STORYBOT_ALLOWED_CHAT_IDS",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.corpus_dir == Path("corpus") and settings.index_dir == Path("index")
    assert settings.embedding_model == BUNDLED_MODEL
    assert settings.telegram_api_url == DEFAULT_TELEGRAM_API_URL
    assert settings.telegram_bot_token is None and settings.allowed_chat_ids is None


def test_env_example_is_a_valid_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    settings = Settings()
    assert settings.telegram_bot_token is None  # an empty token means none
    assert settings.allowed_chat_ids is None and settings.reader_model == "storybot-reader"
    assert settings.rate_limit_per_minute == 10 and settings.top_k == 3


def test_environment_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:ABCdefGhIJKlmnoPQRstuVWxyz012345678")
    monkeypatch.setenv("STORYBOT_ALLOWED_CHAT_IDS", "12, -100345")
    monkeypatch.setenv("STORYBOT_TELEGRAM_API_URL", "http://127.0.0.1:9999/bot")
    monkeypatch.setenv("STORYBOT_LOG_LEVEL", "debug")
    monkeypatch.setenv("STORYBOT_READER_PRECISION", "int8")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.allowed_chat_ids == [12, -100345] and settings.reader_precision == "int8"
    assert settings.telegram_api_url == "http://127.0.0.1:9999/bot"
    assert settings.log_level == "DEBUG"
    assert "ABCdef" not in repr(settings) and settings.telegram_bot_token is not None
    assert settings.telegram_bot_token.get_secret_value().startswith("123456:")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STORYBOT_TOP_K", "0"),
        ("STORYBOT_LOG_LEVEL", "LOUD"),
        ("STORYBOT_ALLOWED_CHAT_IDS", "one,two"),
        ("STORYBOT_READER_PRECISION", "fp16"),
    ],
)
def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]
