"""Logging that never leaks the bot token, and keeps people's data out unless asked to.

The token is part of every Bot API URL, and httpx logs request URLs at INFO, so redaction
happens in the formatter (covering messages, arguments and tracebacks alike) and the HTTP
client loggers are held at WARNING.

People's data: PTB logs whole updates and every Bot API call's parameters and result at DEBUG
(names, usernames, what people typed, shared locations, callback data, the texts we send
them), SQLAlchemy and aiosqlite log SQL parameters, and an exception's message may quote what
someone typed (``invalid literal for int() with base 10: '²'``). Unless LOG_PERSONAL_DATA is
set, :class:`PrivacyFilter` hides the arguments of library log records (numbers stay) and the
message of any exception that is not Telegram's own error, and the database loggers are held at
WARNING. The bot's own log lines carry ids and counts only (chat ids where an operator needs
them, e.g. a chat that blocked the bot).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import sys
import traceback
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, Literal

REDACTED = "[REDACTED]"
HIDDEN: Final = "[hidden]"
# Anything shaped like a bot token, even one we were not told about (e.g. in a pasted URL).
_TOKEN_PATTERN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
# Libraries whose log arguments may carry updates, API parameters or SQL parameters.
_LIBRARIES: Final = ("telegram", "httpx", "httpcore", "sqlalchemy", "aiosqlite", "asyncpg")
# PTB's per-call DEBUG lines: the endpoint name (first argument) is kept, the data is not.
_ENDPOINT_LINES: Final = ("Calling Bot API endpoint", "Call to Bot API endpoint")
_QUIET: Final = ("httpx", "httpcore", "apscheduler", "aiohttp.access")
_DATABASE: Final = ("sqlalchemy", "aiosqlite", "asyncpg")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _TOKEN_PATTERN.sub(REDACTED, text)


# --- LOG_FORMAT=json ------------------------------------------------------------------------
# One object per line: time, level, logger, event (the message), update_id and chat (hashed)
# when known. Chat ids are hashed with a per-deployment salt (derived from the bot token, so
# every replica hashes alike and nobody without the token can reverse the hash by trying
# ids): lines about one chat can be followed without the log naming it. No update text is
# ever added; the token is redacted from the finished line as in text mode.

LogFormat = Literal["text", "json"]
_CURRENT_UPDATE: ContextVar[tuple[int | None, int | None]] = ContextVar(
    "sleepbot_update", default=(None, None)
)
# The bot's own lines say "chat 123" or, for a person in a group, "chat (-100123, 456)".
_CHAT_MENTION = re.compile(r"\bchat (?:(-?\d+)|\((-?\d+), (-?\d+)\))")


def deployment_salt(token: str) -> bytes:
    """The key for chat-id hashes: the same on every replica of one bot, secret as the token."""
    return hashlib.sha256(b"sleepbot log salt\0" + token.encode()).digest()


def hash_chat(chat_id: int | str, salt: bytes) -> str:
    """A short stable pseudonym for a chat (or user) id."""
    return hmac.new(salt, str(chat_id).encode(), hashlib.sha256).hexdigest()[:16]


@contextmanager
def update_context(update_id: int | None, chat_id: int | None) -> Iterator[None]:
    """Log lines written while handling one update carry its id and (hashed) chat."""
    token = _CURRENT_UPDATE.set((update_id, chat_id))
    try:
        yield
    finally:
        _CURRENT_UPDATE.reset(token)


class JsonFormatter(logging.Formatter):
    """LOG_FORMAT=json: see the block comment above."""

    def __init__(self, salt: bytes, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._salt = salt
        self._secrets = tuple(s for s in secrets if s)

    def _pseudonymise(self, message: str, chat_id: int | None) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(1) is not None:
                return f"chat #{hash_chat(match.group(1), self._salt)}"
            chat, user = match.group(2), match.group(3)
            return f"chat (#{hash_chat(chat, self._salt)}, #{hash_chat(user, self._salt)})"

        message = _CHAT_MENTION.sub(replace, message)
        if chat_id is not None:
            pattern = rf"(?<![\w#-]){re.escape(str(chat_id))}(?!\w)"
            message = re.sub(pattern, f"#{hash_chat(chat_id, self._salt)}", message)
        return message

    def format(self, record: logging.LogRecord) -> str:
        update_id, chat_id = _CURRENT_UPDATE.get()
        update_id = getattr(record, "update_id", update_id)
        chat_id = getattr(record, "chat_id", chat_id)
        moment = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, object] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "event": self._pseudonymise(record.getMessage(), chat_id),
        }
        if update_id is not None:
            entry["update_id"] = update_id
        if chat_id is not None:
            entry["chat"] = hash_chat(chat_id, self._salt)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = self._pseudonymise(record.exc_text, chat_id)
        return redact(json.dumps(entry), self._secrets)


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then removes secrets from the whole line, traceback included."""

    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self._secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)


def _hide(value: object) -> object:
    return value if value is None or isinstance(value, bool | int | float) else HIDDEN


class PrivacyFilter(logging.Filter):
    """Rewrites records (on a handler) so that no personal data reaches the output."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".", 1)[0] in _LIBRARIES:
            if not isinstance(record.msg, str):
                record.msg, record.args = HIDDEN, ()
            elif isinstance(record.args, Mapping):
                record.args = {key: _hide(value) for key, value in record.args.items()}
            elif record.args:
                keep_first = record.msg.startswith(_ENDPOINT_LINES)
                record.args = tuple(
                    arg if keep_first and index == 0 else _hide(arg)
                    for index, arg in enumerate(record.args)
                )
        if record.exc_info is not None and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = _traceback_without_messages(*record.exc_info)
        return True


def _traceback_without_messages(
    kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
) -> str:
    """The usual traceback, but each exception's message (which may quote people's input)
    replaced by HIDDEN."""
    text = "".join(traceback.format_exception(kind, error, tb)).rstrip("\n")
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        message = str(error)
        # Telegram's own errors (telegram.error) describe our requests, not people's input.
        if message and not type(error).__module__.startswith("telegram"):
            name = type(error).__qualname__
            text = text.replace(f"{name}: {message}", f"{name}: {HIDDEN}")
        error = error.__cause__ or error.__context__
    return text


def configure_logging(
    level: str,
    secrets: Iterable[str] = (),
    *,
    personal_data: bool = False,
    log_format: LogFormat = "text",
    salt: bytes = b"",
) -> None:
    """One stderr handler for everything; `personal_data` (LOG_PERSONAL_DATA) turns off the
    PrivacyFilter, for debugging only; `log_format` json needs the `salt` for chat ids
    (``deployment_salt(token)``). The filter runs before either formatter."""
    secrets = tuple(secrets)
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        if not salt:
            raise ValueError("JSON logs hash chat ids: give a salt (deployment_salt(token))")
        handler.setFormatter(JsonFormatter(salt, secrets))
    else:
        handler.setFormatter(
            RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets)
        )
    if not personal_data:
        handler.addFilter(PrivacyFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in _QUIET + _DATABASE:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    if personal_data:
        logging.getLogger(__name__).warning(
            "LOG_PERSONAL_DATA is on: the log contains people's names, messages and locations"
        )
