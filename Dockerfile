# sleepbot: the Telegram bot, SQLite data on a volume, running as an unprivileged user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# A CJK font for /progress charts in Chinese (matplotlib ships none; 5 MB). Debian's package
# follows the base image's release, so it is not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*

# Dependencies and code first, content last: editing content/ rebuilds only the final layer.
COPY pyproject.toml README.md ./
COPY bot ./bot
# The image serves compose.yaml's replicas: PostgreSQL and Redis extras (bot/extras.py).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[postgres,redis]" \
    && useradd --create-home --uid 10001 sleepbot \
    && mkdir -p /app/data \
    && chown sleepbot /app/data
COPY content ./content

USER 10001
ENV DATABASE_URL=sqlite+aiosqlite:////app/data/sleepbot.sqlite3 \
    CONTENT_DIR=/app/content
VOLUME ["/app/data"]

CMD ["sleepbot", "run"]
