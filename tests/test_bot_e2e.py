"""The article bot end to end: the real Application, over HTTP, against the fake Bot API."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from bot.app import COMMAND_NAMES
from bot.telegram_html import visible_text
from tests.article_fidelity import article_sentences, missing_sentences
from tests.catalogue import SORRY, STALE_BUTTON
from tests.harness import BotHarness, texts

ADA = 4242


async def test_commands_are_registered_at_start_up(bot: BotHarness) -> None:
    registered = bot.api.commands()
    assert [c["command"] for c in registered] == list(COMMAND_NAMES)
    assert {"mechanisms", "foods", "tips", "settings", "about", "help"} <= {
        c["command"] for c in registered
    }


async def test_start_welcomes_with_caveat_and_menu(bot: BotHarness) -> None:
    calls = await bot.send(ADA, "/start")
    [welcome] = texts(calls)
    assert "doctor" in visible_text(welcome).lower()
    labels = [label for label, _ in bot.last(ADA).buttons]
    assert any("B12" in label for label in labels)
    assert any("reminder" in label.lower() for label in labels)


@pytest.mark.parametrize(
    ("payload", "expected"), [("mechanisms", "melatonin"), ("foods", "liver"), ("tips", "light")]
)
async def test_deep_links_open_a_section(bot: BotHarness, payload: str, expected: str) -> None:
    calls = await bot.send(ADA, f"/start {payload}")
    [text] = texts(calls)
    assert expected in visible_text(text).lower()


async def test_mechanisms_buttons_edit_one_message_in_place(bot: BotHarness) -> None:
    await bot.send(ADA, "/mechanisms")
    index = bot.last(ADA)
    assert len(index.buttons) == 5
    circadian = next(data for label, data in index.buttons if "ircadian" in label)

    calls = await bot.press(ADA, index.message_id, circadian)
    assert [c.method for c in calls] == ["answerCallbackQuery", "editMessageText"]
    assert calls[1].params["message_id"] == index.message_id
    page = bot.api.message(ADA, index.message_id)
    assert page is not None and "suprachiasmatic" in (page.text or "")

    forward = next(data for label, data in page.buttons if label == "▶")
    await bot.press(ADA, index.message_id, forward)
    page = bot.api.message(ADA, index.message_id)
    assert page is not None and "anemia" in (page.text or "").lower()

    back_to_index = next(data for label, data in page.buttons if label == "All mechanisms")
    await bot.press(ADA, index.message_id, back_to_index)
    assert len(bot.api.messages(ADA)) == 1  # one bot message, edited in place all along
    assert len(bot.last(ADA).buttons) == 5


async def test_every_article_sentence_is_reachable_through_mechanisms(bot: BotHarness) -> None:
    article = article_sentences()
    if article is None:
        pytest.skip("shared/source-article.txt not found beside the checkout")
    await bot.send(ADA, "/mechanisms")
    message_id = bot.last(ADA).message_id
    seen = [bot.last(ADA).raw_text or ""]
    for _label, data in list(bot.last(ADA).buttons):
        await bot.press(ADA, message_id, data)
        seen.append(bot.last(ADA).raw_text or "")
        back = next(d for lbl, d in bot.last(ADA).buttons if lbl == "All mechanisms")
        await bot.press(ADA, message_id, back)
    assert missing_sentences(article, seen) == []


@pytest.mark.parametrize("argument", ["3", "circadian", "Circadian"])
async def test_mechanisms_argument_opens_a_page_directly(bot: BotHarness, argument: str) -> None:
    [text] = texts(await bot.send(ADA, f"/mechanisms {argument}"))
    assert "suprachiasmatic" in visible_text(text)


async def test_unknown_mechanism_gets_choices_and_an_example(bot: BotHarness) -> None:
    [text] = texts(await bot.send(ADA, "/mechanisms <b>mars"))
    assert "/mechanisms 3" in visible_text(text)
    assert "&lt;b&gt;mars" in text  # what the person typed is escaped, not parsed


async def test_foods_another_idea_edits_in_place(bot: BotHarness) -> None:
    await bot.send(ADA, "/foods")
    first = bot.last(ADA)
    first_text = first.text or ""
    assert "liver" in first_text.lower()
    [(label, data)] = first.buttons
    assert label == "Another idea"
    await bot.press(ADA, first.message_id, data)
    second = bot.api.message(ADA, first.message_id)
    assert second is not None and second.text != first_text
    assert re.search(r"[Mm]eal idea \d+ of \d+", second.text or "")


@pytest.mark.parametrize(
    ("command", "expected"),
    [("/tips", "doctor"), ("/about", "/deletedata"), ("/help", "/mechanisms")],
)
async def test_information_commands(bot: BotHarness, command: str, expected: str) -> None:
    [text] = texts(await bot.send(ADA, command))
    assert expected in visible_text(text)


@pytest.mark.parametrize("typed", ["/frobnicate", "hello there", "/mechanisms@other_bot"])
async def test_unknown_input_gets_a_pointer_to_help(bot: BotHarness, typed: str) -> None:
    [text] = texts(await bot.send(ADA, typed))
    assert "/help" in text


@pytest.mark.parametrize("data", ["evil", "mech:99", "rem:done:1", "set:frobnicate", "food:x"])
async def test_forged_callback_data_is_answered_politely(bot: BotHarness, data: str) -> None:
    await bot.send(ADA, "/mechanisms")
    calls = await bot.press(ADA, bot.last(ADA).message_id, data, check=False)
    answers = [c for c in calls if c.method == "answerCallbackQuery"]
    assert len(answers) == 1 and answers[0].ok
    assert answers[0].params.get("text") in {
        STALE_BUTTON,
        "This reminder isn't available any more.",
        "Send /settings to start.",
    }
    assert not [c for c in calls if c.method == "editMessageText"]
    # and the bot is still fine
    assert texts(await bot.send(ADA, "/help"))


async def test_a_failing_handler_is_logged_and_the_person_gets_an_apology(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    bot.api.fail_next("sendMessage", error_code=500, description="Internal Server Error")
    with caplog.at_level(logging.ERROR):
        calls = await bot.send(ADA, "/tips")
    assert texts(calls)[-1] == SORRY
    assert any("error while handling" in r.message for r in caplog.records)
    assert texts(await bot.send(ADA, "/tips"))  # still running


async def test_the_token_never_reaches_the_logs(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.logs import RedactingFormatter

    formatter = RedactingFormatter("%(name)s %(message)s", [bot.token])
    # configure_logging (run by other tests in this process) holds httpx at WARNING: undo it
    # here, since httpx's request lines are exactly what the formatter must catch.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="httpx"):
        await bot.send(ADA, "/mechanisms 1")
        bot.api.fail_next("sendMessage", error_code=500, description="boom")
        await bot.send(ADA, "/tips")
    # httpx logs every request URL, token included: exactly what the formatter must catch.
    assert any(bot.token in r.getMessage() for r in caplog.records)
    rendered = "\n".join(formatter.format(r) for r in caplog.records)
    assert bot.token not in rendered
    assert "[REDACTED]/sendMessage" in rendered


async def test_content_file_with_broken_html_stops_start_up(tmp_path: Path) -> None:
    import shutil

    from bot.app import build_app
    from bot.config import Settings
    from bot.content import ContentError, default_content_dir

    broken = tmp_path / "content"
    shutil.copytree(default_content_dir(), broken)
    foods = broken / "foods.toml"
    foods.write_text(foods.read_text().replace("</b>", "", 1))
    with pytest.raises(ContentError, match=r"foods\.toml"):
        build_app(Settings(_env_file=None, content_dir=broken), token="1:x")
