"""The HTTP side of a replica: Telegram's webhook, /healthz and /metrics (Starlette + uvicorn,
the pattern of PTB's ``examples/customwebhookbot/starlettebot.py``).

``POST <path of WEBHOOK_URL>`` answers, in this order:

* **403** unless the request carries exactly one ``X-Telegram-Bot-Api-Secret-Token`` header
  equal to ``WEBHOOK_SECRET`` (``hmac.compare_digest``, before the body is read: a forger
  costs us one header comparison);
* **413** when ``Content-Length`` says more than 1 MiB, or the streamed body grows past it
  (a chunked request has no length to check first);
* **400** when the body is not JSON, or not an update (an object with a non-negative integer
  ``update_id``);
* **200** only after ``store_update`` returned, i.e. the update is committed to the inbox.
  If storing fails the answer is **500** and Telegram delivers the update again later; a
  replica killed before storing never answered, so Telegram retries that one too.

``GET /healthz`` reports :class:`bot.health.Health` (200 or 503 with the reason, as JSON) and
``GET /metrics`` the process's :class:`bot.metrics.Metrics` in Prometheus's text format. In
polling mode the same app runs without the webhook route on ``METRICS_PORT``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.health import Health
from bot.metrics import CONTENT_TYPE, Metrics, update_type

log = logging.getLogger(__name__)

StoreUpdate = Callable[[dict[str, Any]], Awaitable[None]]
MAX_BODY_BYTES: Final = 1024 * 1024
SECRET_HEADER: Final = b"x-telegram-bot-api-secret-token"
HEALTH_PATH: Final = "/healthz"
METRICS_PATH: Final = "/metrics"
START_TIMEOUT_S: Final = 10.0


def webhook_path(url: str) -> str:
    """The path the webhook listens on: the path of WEBHOOK_URL ("/" when it has none)."""
    return urlsplit(url).path or "/"


@dataclass(frozen=True)
class Webhook:
    """Where Telegram posts updates, the secret it sends, and the inbox's store call."""

    path: str
    secret: str
    store_update: StoreUpdate

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError("the webhook path must start with /")
        if self.path in (HEALTH_PATH, METRICS_PATH):
            raise ValueError(f"the webhook path cannot be {self.path}: it is served already")
        if not self.secret:
            raise ValueError("a webhook needs a secret")


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _secret_matches(headers: list[tuple[bytes, bytes]], secret: bytes) -> bool:
    given = [value for name, value in headers if name.lower() == SECRET_HEADER]
    # One header, compared in constant time; a second copy is as suspicious as a wrong one.
    return len(given) == 1 and hmac.compare_digest(given[0], secret)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise _Refused(HTTPStatus.BAD_REQUEST, "bad Content-Length") from None
        if length > MAX_BODY_BYTES:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body over 1 MiB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body over 1 MiB")
    return bytes(body)


def _parse_update(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _Refused(HTTPStatus.BAD_REQUEST, "body is not JSON") from None
    if not isinstance(data, dict):
        raise _Refused(HTTPStatus.BAD_REQUEST, "body is not an update object")
    update_id = data.get("update_id")
    if type(update_id) is not int or update_id < 0:
        raise _Refused(HTTPStatus.BAD_REQUEST, "update_id missing or not an integer")
    return data


def create_app(*, metrics: Metrics, health: Health, webhook: Webhook | None = None) -> Starlette:
    """The ASGI app: /healthz and /metrics, plus the webhook route when `webhook` is given."""

    def answer(status: HTTPStatus, text: str = "") -> Response:
        metrics.webhook_answered(status.value)
        return PlainTextResponse(text or status.phrase, status_code=status.value)

    async def receive_update(request: Request) -> Response:
        assert webhook is not None
        if not _secret_matches(request.scope["headers"], webhook.secret.encode()):
            return answer(HTTPStatus.FORBIDDEN)
        try:
            update = _parse_update(await _read_body(request))
        except _Refused as refused:
            return answer(refused.status, str(refused))
        try:
            await webhook.store_update(update)
        except Exception:
            # The update is not stored: a non-2xx answer makes Telegram deliver it again.
            log.exception("could not store update %d; Telegram will retry it", update["update_id"])
            return answer(HTTPStatus.INTERNAL_SERVER_ERROR)
        metrics.update_received(update_type(update))
        return answer(HTTPStatus.OK, "")

    async def healthz(_: Request) -> Response:
        healthy, report = await health.check()
        status = HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE
        return JSONResponse(report, status_code=status.value)

    async def metrics_endpoint(_: Request) -> Response:
        await metrics.refresh()
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    routes = [
        Route(HEALTH_PATH, healthz, methods=["GET"]),
        Route(METRICS_PATH, metrics_endpoint, methods=["GET"]),
    ]
    if webhook is not None:
        routes.append(Route(webhook.path, receive_update, methods=["POST"]))
    return Starlette(routes=routes)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling (the bot process owns SIGTERM and stops us
    in its own order), and with an event for "listening"."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


class WebServer:
    """Serves an ASGI app on host:port inside the bot's event loop."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,  # our logging (bot/logs.py) stays in charge
            access_log=False,  # Telegram posts every update: a line each would drown the log
            server_header=False,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        sockets = self._server.servers[0].sockets if self._server.servers else ()
        if not sockets:
            raise RuntimeError("the server is not listening")
        return int(sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Listen, or raise OSError (e.g. the port is taken) within START_TIMEOUT_S."""
        self._task = asyncio.create_task(self._serve(), name="web-server")
        listening = asyncio.create_task(self._server.listening.wait())
        done, _ = await asyncio.wait(
            {self._task, listening}, timeout=START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        listening.cancel()
        if self._task in done:
            self._task.result()  # raises the start-up failure
            raise OSError("the web server stopped during start-up")
        if not done:
            await self.stop()
            raise OSError(f"the web server did not start within {START_TIMEOUT_S:g} s")

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit as stop:  # uvicorn exits when it cannot bind
            raise OSError(
                f"cannot listen on {self._server.config.host}:{self._server.config.port}"
            ) from stop

    async def stop(self) -> None:
        """Finish the requests in flight, then close the sockets."""
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await self._task
        finally:
            self._task = None


@asynccontextmanager
async def serving(app: Starlette, host: str, port: int) -> AsyncIterator[WebServer]:
    """Run `app` for the duration of the block."""
    server = WebServer(app, host, port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
