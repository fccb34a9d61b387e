"""The operator's commands: one clear line and exit code 2 on bad configuration; offline chat."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.chat import chat, parse_duration
from bot.config import Settings
from bot.content import default_content_dir
from tests.conftest import TEST_TOKEN


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "CONTENT_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_run_without_a_token_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli("run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "TELEGRAM_BOT_TOKEN" in result.stderr and "@BotFather" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_malformed_token_is_refused_without_echoing_it(tmp_path: Path) -> None:
    result = run_cli("run", cwd=tmp_path, TELEGRAM_BOT_TOKEN="oops-secret-value")
    assert result.returncode == 2
    assert "oops-secret-value" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.fixture
def broken_content(tmp_path: Path) -> Path:
    directory = tmp_path / "content"
    shutil.copytree(default_content_dir().resolve(), directory)
    article = directory / "article.toml"
    article.write_text(article.read_text().replace("</b>", "", 1), encoding="utf-8")
    return directory


def test_broken_content_stops_start_up_naming_the_file(
    tmp_path: Path, broken_content: Path
) -> None:
    result = run_cli(
        "run", cwd=tmp_path, TELEGRAM_BOT_TOKEN=TEST_TOKEN, CONTENT_DIR=str(broken_content)
    )
    assert result.returncode == 2
    assert "article.toml" in result.stderr and "<b>" in result.stderr
    assert "Traceback" not in result.stderr
    assert TEST_TOKEN not in result.stderr


def test_check_content_reports_ok_or_the_problem(tmp_path: Path, broken_content: Path) -> None:
    ok = run_cli("check-content", cwd=tmp_path, CONTENT_DIR=str(default_content_dir().resolve()))
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = run_cli("check-content", cwd=tmp_path, CONTENT_DIR=str(broken_content))
    assert bad.returncode == 2 and "article.toml" in bad.stderr


def test_check_content_covers_the_diary_words(tmp_path: Path) -> None:
    directory = tmp_path / "content"
    shutil.copytree(default_content_dir().resolve(), directory)
    diary = directory / "diary.toml"
    diary.write_text(
        diary.read_text().replace("you {habit}:", "you {habbit}:", 1), encoding="utf-8"
    )
    bad = run_cli("check-content", cwd=tmp_path, CONTENT_DIR=str(directory))
    assert bad.returncode == 2
    assert "diary.toml" in bad.stderr and "unknown placeholder {habbit}" in bad.stderr


def test_check_content_lists_and_checks_the_morning_send_windows(tmp_path: Path) -> None:
    ok = run_cli("check-content", cwd=tmp_path, CONTENT_DIR=str(default_content_dir().resolve()))
    assert "checkin -0/+15 min, weekly -0/+30 min" in ok.stdout
    directory = tmp_path / "content"
    shutil.copytree(default_content_dir().resolve(), directory)
    diary = directory / "diary.toml"
    text = diary.read_text(encoding="utf-8")
    diary.write_text(
        text.replace("window_after_minutes = 15", "window_after_minutes = 45", 1),
        encoding="utf-8",
    )
    bad = run_cli("check-content", cwd=tmp_path, CONTENT_DIR=str(directory))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "diary.toml: checkin window_after_minutes" in bad.stderr


def test_invalid_setting_is_named(tmp_path: Path) -> None:
    result = run_cli("check-content", cwd=tmp_path, DISPATCH_INTERVAL_SECONDS="-1")
    assert result.returncode == 2
    assert "DISPATCH_INTERVAL_SECONDS" in result.stderr


def test_durations_for_the_chat_clock() -> None:
    assert parse_duration("2h30m") is not None
    assert parse_duration("2h30m").total_seconds() == 9000  # type: ignore[union-attr]
    assert parse_duration("1d").total_seconds() == 86400  # type: ignore[union-attr]
    assert parse_duration("soon") is None
    assert parse_duration("") is None


async def scripted_chat(lines: list[str], tmp_path: Path) -> str:
    feed: Iterator[str] = iter(lines)
    output: list[str] = []

    async def read_line() -> str | None:
        line = next(feed, None)
        if line is not None:
            output.append(f"you> {line}")
        return line

    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    assert await chat(settings, read_line=read_line, write=output.append) == 0
    return "\n".join(output)


async def test_chat_walks_mechanisms_and_foods_with_the_real_handlers(tmp_path: Path) -> None:
    transcript = await scripted_chat(
        ["/mechanisms", "3", "3", "4", "/foods", "1", ":quit"], tmp_path
    )
    assert "[3] 3. Circadian rhythm" in transcript
    assert "bot (edited)> 3." in transcript and "suprachiasmatic" in transcript
    assert "bot (edited)> 4." in transcript and "anemia" in transcript
    assert "[1] Another idea" in transcript
    assert transcript.count("Meal idea") >= 2


async def test_chat_onboarding_and_a_reminder_arriving(tmp_path: Path) -> None:
    transcript = await scripted_chat(
        ["/start", "4", "Kathmandu", "4", "5", ":wait 1d", ":quit"], tmp_path
    )
    assert "Which timezone are you in?" in transcript
    assert "Timezone set to Asia/Kathmandu (UTC+05:45)." in transcript
    assert "Last step: what do you eat?" in transcript
    assert "[5] Skip (I eat everything)" in transcript
    assert "You're set up." in transcript
    assert "[1] Done ✅" in transcript  # a reminder arrived, with its buttons


async def test_chat_explains_an_unknown_button_number(tmp_path: Path) -> None:
    transcript = await scripted_chat(["/help", "7", ":quit"], tmp_path)
    assert "(no button 7" in transcript


async def test_chat_survives_pressing_a_button_an_edit_removed(tmp_path: Path) -> None:
    transcript = await scripted_chat(
        # The diet is answered before the wait: reminders start once set-up is complete, and a
        # whole day holds every kind whatever the wall-clock time the test starts at.
        ["/timezone UTC", "/bedtime 22:30", "5", ":wait 1d", "1", "2", ":quit"],
        tmp_path,
    )
    assert "Done." in transcript
    assert "(no button 2" in transcript or "is gone" in transcript


async def test_chat_logs_a_night_and_saves_the_progress_chart(tmp_path: Path) -> None:
    transcript = await scripted_chat(
        ["/timezone UTC", "/checkin", "4", "8", "/progress", ":quit"], tmp_path
    )
    assert "How did you sleep" in transcript
    assert "Saved: night of" in transcript
    match = re.search(r"\[photo saved to (\S+\.png)\]", transcript)
    assert match is not None, transcript
    saved = Path(match.group(1))
    try:
        head = await asyncio.to_thread(saved.read_bytes)
        assert head.startswith(b"\x89PNG\r\n\x1a\n")
        assert "Your last 4 weeks: 1 night logged" in transcript
    finally:
        await asyncio.to_thread(saved.unlink)
