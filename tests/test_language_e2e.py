"""The bot in Chinese and English, end to end against the fake Bot API: the menu per language,
Telegram's language followed until /language chooses, and reminders in the person's language."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.fake_telegram import ApiCall, FakeBotApi
from bot.telegram_html import visible_text
from tests.catalogue import EN, ZH
from tests.conftest import TEST_TOKEN
from tests.harness import BotHarness, bot_harness, texts
from tests.test_reminders_e2e import MEAL_UTC, reminder_sends

ADA = 4242
BOB = 5151
LI = 8888


def _visible(calls: list[ApiCall], method: str = "sendMessage") -> list[str]:
    return [visible_text(text) for text in texts(calls, method)]


async def test_the_menu_is_registered_in_english_and_in_chinese(bot: BotHarness) -> None:
    english = bot.api.commands()
    chinese = bot.api.commands(None, "zh")
    assert [c["command"] for c in english] == [c["command"] for c in chinese]
    assert {"command": "doctor", "description": "When to see a doctor"} in english
    assert {"command": "doctor", "description": "什么时候该去看医生"} in chinese
    assert {"command": "language", "description": ZH.text("command.language")} in chinese
    assert bot.api.commands(None, "de") == []  # everyone else gets the default (English) menu


async def test_telegram_language_is_followed_until_the_person_chooses(bot: BotHarness) -> None:
    bot.api.set_language(LI, "zh-hans")
    [welcome] = _visible(await bot.send(LI, "/start"))
    assert welcome.startswith("你好，我是 Sleepbot")
    assert [label for label, _ in bot.last(LI).buttons] == [
        "B12 可能如何影响睡眠", "富含 B12 的食物", "睡眠建议", "设置每晚提醒",
    ]  # fmt: skip

    calls = await bot.send(LI, "/language en")
    assert _visible(calls) == ["✅ I'll speak English from now on. /help shows what I can do."]
    [welcome] = _visible(await bot.send(LI, "/start"))
    assert welcome.startswith("Hi, I'm Sleepbot")

    calls = await bot.send(LI, "/language")
    [prompt] = _visible(calls)
    assert prompt == "Which language should I use?\nNow: English."
    assert [label for label, _ in bot.last(LI).buttons] == [
        "English",
        "简体中文",
        "Follow Telegram",
    ]
    calls = await bot.press_label(LI, "Follow Telegram")
    assert _visible(calls, "editMessageText") == ["✅ 我会重新跟随你的 Telegram 语言（简体中文）。"]
    [welcome] = _visible(await bot.send(LI, "/start"))
    assert welcome.startswith("你好，我是 Sleepbot")


async def test_language_buttons_and_arguments_and_nonsense(bot: BotHarness) -> None:
    await bot.send(ADA, "/language")
    calls = await bot.press_label(ADA, "简体中文")
    assert _visible(calls, "editMessageText") == [ZH.text("language.saved_html")]
    [page] = _visible(await bot.send(ADA, "/help"))
    assert page.startswith("我能做什么")
    calls = await bot.send(ADA, "/language klingon")
    assert _visible(calls) == [
        "我不会说“klingon”。请在下面选择，或发送 /language en 或 /language zh。"
    ]
    calls = await bot.press(ADA, bot.last(ADA).message_id, "lang:xx", check=False)
    [answer] = [c for c in calls if c.method == "answerCallbackQuery"]
    assert answer.params["text"] == ZH.text("alert.button_invalid")
    await bot.send(ADA, "/language en")
    [page] = _visible(await bot.send(ADA, "/help"))
    assert page.startswith("What I can do")


async def test_settings_prompts_and_errors_speak_chinese(bot: BotHarness) -> None:
    await bot.send(ADA, "/language zh")
    [problem] = _visible(await bot.send(ADA, "/bedtime 25:99"))
    assert problem == "25:99 不是一天中的时间。请用 00:00–23:59，例如 22:30。 例如：/bedtime 22:30"
    [problem] = _visible(await bot.send(ADA, "/timezone Xyzzyville"))
    assert problem.startswith("我不认识时区“Xyzzyville”。")
    [question] = _visible(await bot.send(ADA, "/timezone IST"))
    assert question == "你指的是下面其中一个吗？"
    assert [label for label, _ in bot.last(ADA).buttons] == [
        "印度（Asia/Kolkata）", "爱尔兰（Europe/Dublin）", "以色列（Asia/Jerusalem）",
    ]  # fmt: skip
    said = _visible(await bot.send(ADA, "/timezone Asia/Shanghai"))
    assert said[0] == "时区已设为 Asia/Shanghai（UTC+08:00）。"
    assert said[1].startswith("你通常几点睡觉？")
    await bot.press_label(ADA, "22:30")
    calls = await bot.press_label(ADA, "跳过")
    [summary] = _visible(calls, "editMessageText")
    assert summary.startswith("✅ 设置完成。")
    assert "时区：Asia/Shanghai（UTC+08:00）" in summary
    assert "今晚的餐食建议：就寝前 4 小时" in summary
    assert "接下来的提醒（你的当地时间）：" in summary
    [edit] = [call for call in calls if call.method == "editMessageText"]
    rows = edit.params["reply_markup"]["inline_keyboard"]
    labels = [button["text"] for row in rows for button in row]
    assert "暂停 1 晚" in labels and "暂停 7 晚" in labels and "停止所有提醒" in labels
    # Then the last, optional step: the morning check-in, offered in Chinese too.
    assert [label for label, _ in bot.last(ADA).buttons] == ["好，问我吧", "不用了，谢谢"]


async def test_reminders_go_out_in_the_persons_language_with_the_configured_snooze(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    async with bot_harness(fake_api, tmp_path, TEST_TOKEN, snooze_minutes=20) as bot:
        # Li never chooses: Telegram says zh-CN, which the bot remembers for reminders.
        bot.api.set_language(LI, "zh-CN")
        await bot.send(ADA, "/language zh")  # Ada's Telegram says English; she chose Chinese
        for chat in (ADA, LI):
            await bot.send(chat, "/timezone Europe/Berlin")
            await bot.send(chat, "/bedtime 22:30")
            await bot.press_label(chat, "跳过")
        bot.api.set_language(BOB, "en")
        await bot.send(BOB, "/timezone Europe/Berlin")
        await bot.send(BOB, "/bedtime 22:30")
        await bot.press_label(BOB, "Skip")
        calls = await bot.advance(MEAL_UTC - bot.clock.now() + timedelta(minutes=1))
        for chat in (ADA, LI):
            [meal] = reminder_sends(calls, chat)
            assert visible_text(meal.params["text"]).startswith("今晚的餐食建议")
            labels = [
                b["text"] for row in meal.params["reply_markup"]["inline_keyboard"] for b in row
            ]
            assert labels == ["完成 ✅", "20 分钟后再提醒", "为什么？", "关闭这个提醒"]
        [meal] = reminder_sends(calls, BOB)
        assert visible_text(meal.params["text"]).startswith("Tonight's meal idea")
        labels = [b["text"] for row in meal.params["reply_markup"]["inline_keyboard"] for b in row]
        assert labels == ["Done ✅", "Snooze 20 min", "Why?", "Turn this off"]
        assert EN.plural("button.snooze", 20) in labels

        calls = await bot.press_label(ADA, "20 分钟后再提醒")
        [answer] = [c for c in calls if c.method == "answerCallbackQuery"]
        assert answer.params["text"] == "我会在 18:51 再提醒你。"  # 18:31 local + 20 min
