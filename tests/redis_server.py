"""Redis tests run when TEST_REDIS_URL is set (e.g. redis://127.0.0.1:6379/0) and are skipped
with that reason otherwise, like PostgreSQL's TEST_DATABASE_URL (tests/pg.py). Each test uses
its own key namespace and deletes its keys afterwards, so tests may share one server."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import pytest
from redis.asyncio import Redis

ENV_VAR: Final = "TEST_REDIS_URL"
SKIP_REASON: Final = f"{ENV_VAR} not set: Redis tests skipped"


def require_redis() -> str:
    """The Redis URL, or skip the calling test with a visible reason."""
    url = os.environ.get(ENV_VAR, "").strip()
    if not url:
        pytest.skip(SKIP_REASON)
    return url


@asynccontextmanager
async def redis_namespace() -> AsyncIterator[tuple[Redis, str]]:
    """A client and a fresh namespace; the namespace's keys are deleted afterwards."""
    client: Redis = Redis.from_url(require_redis())
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    try:
        yield client, namespace
    finally:
        keys = [key async for key in client.scan_iter(match=f"sleepbot:{{{namespace}}}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
