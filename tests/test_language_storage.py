"""people.language and people.telegram_language: migration 0005 on a database of the previous
schema, the store's setters, and the locale each claimed reminder carries (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import text

from bot.storage import create_engine, upgrade_to_head
from tests.pg import TestDatabase, down_and_up, person_at_revision

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ADA, BOB, LI = 4242, 5151, 8888
OFFSETS = {"meal": 240, "exercise": 180, "wind_down": 60}


async def test_migration_0005_adds_the_language_columns_to_existing_people(
    db: TestDatabase,
) -> None:
    engine = create_engine(db.url, schema=db.schema)
    try:
        await person_at_revision(engine, "0003_delivery_claims", ADA, NOW)
        await upgrade_to_head(engine)
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text("SELECT chat_id, timezone, language, telegram_language FROM people")
                )
            ).one()
            assert tuple(row) == (ADA, "Europe/Berlin", None, None)  # everyone follows Telegram
        assert "language" not in await down_and_up(engine, "0003_delivery_claims")
    finally:
        await engine.dispose()


async def test_the_choice_wins_over_telegram_and_claims_carry_the_locale(
    db: TestDatabase,
) -> None:
    store = await db.open_store(OFFSETS)
    try:
        for chat in (ADA, BOB, LI):
            await store.set_timezone(chat, "UTC", NOW)
            await store.set_bedtime(chat, time(22, 30), NOW)
            await store.subscribe(chat, NOW)
        await store.note_telegram_language(ADA, "en")
        await store.set_language(ADA, "zh", NOW)  # chose Chinese in an English Telegram app
        await store.note_telegram_language(LI, "zh")  # never chose: Telegram says Chinese
        await store.note_telegram_language(404, "zh")  # unknown people are not created
        assert await store.get_person(404) is None
        ada, bob, li = [await store.get_person(chat) for chat in (ADA, BOB, LI)]
        assert ada is not None and (ada.language, ada.telegram_language, ada.locale) == (
            "zh",
            "en",
            "zh",
        )
        assert bob is not None and bob.locale is None  # nothing known: the default
        assert li is not None and (li.language, li.locale) == (None, "zh")
        export = await store.export_person(ADA)
        assert export is not None
        assert (export["person"]["language"], export["person"]["telegram_language"]) == (
            "zh",
            "en",
        )

        evening = datetime(2026, 11, 24, 18, 31, tzinfo=UTC)  # the meal reminders are due
        await store.materialize_due(
            evening, grace=timedelta(minutes=30), limit=100, choose_meal=lambda diet, recent: None
        )
        claim = await store.claim_deliveries(
            evening, owner="test", grace=timedelta(minutes=30), limit=10
        )
        locales = {delivery.chat_id: delivery.locale for delivery in claim.claimed}
        assert locales == {ADA: "zh", BOB: None, LI: "zh"}

        await store.set_language(ADA, None, NOW)  # "Follow Telegram" again
        ada = await store.get_person(ADA)
        assert ada is not None and (ada.language, ada.locale) == (None, "en")
    finally:
        await store.close()
