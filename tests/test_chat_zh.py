"""`sleepbot chat` in Chinese: /language zh, then the welcome, the article and a reminder."""

from __future__ import annotations

from pathlib import Path

from tests.test_cli import scripted_chat

SCRIPT = [
    "/language zh",
    "/start",
    "/mechanisms",
    "3",
    "/timezone Asia/Shanghai",
    "/bedtime 22:30",
    "5",
    ":wait 1d",
    ":quit",
]


async def test_chat_in_chinese_from_language_to_a_reminder(tmp_path: Path) -> None:
    transcript = await scripted_chat(SCRIPT, tmp_path)
    print(transcript)  # the transcript the report quotes: pytest -s tests/test_chat_zh.py
    assert "✅ 从现在起我会说简体中文。发送 /help 看看我能做什么。" in transcript
    assert "bot> 你好，我是 Sleepbot 🌙" in transcript
    assert "[1] B12 可能如何影响睡眠" in transcript and "[4] 设置每晚提醒" in transcript
    assert "bot> 维生素 B12 可能如何影响睡眠" in transcript
    assert "文章介绍了五种机制。点一个阅读：" in transcript
    assert "bot (edited)> 3. 影响昼夜节律" in transcript and "[4] 全部机制" in transcript
    assert "时区已设为 Asia/Shanghai（UTC+08:00）。" in transcript
    assert "[5] 跳过（我什么都吃）" in transcript
    assert "✅ 设置完成。" in transcript and "就寝前 4 小时" in transcript
    assert "bot> 今晚的餐食建议" in transcript  # a reminder arrived, in Chinese
    assert "[1] 完成 ✅  [2] 15 分钟后再提醒" in transcript
    assert "[3] 为什么？  [4] 关闭这个提醒" in transcript
    assert "Tonight" not in transcript and "Done" not in transcript
