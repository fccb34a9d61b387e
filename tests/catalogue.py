"""The English interface words, for tests that assert what English speakers see."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from bot.i18n import Catalogue, load_catalogue

CONTENT_DIR: Final = Path(__file__).resolve().parent.parent / "content"
EN: Final[Catalogue] = load_catalogue(CONTENT_DIR, "en")
ZH: Final[Catalogue] = load_catalogue(CONTENT_DIR / "zh", "zh")

STALE_BUTTON: Final = EN.text("alert.stale_button")
SORRY: Final = EN.text("error.sorry")
NOT_YOURS: Final = EN.text("reminder.not_yours")
PRIVATE_ONLY: Final = EN.text("error.private_only_html")
PRIVATE_ONLY_ALERT: Final = EN.text("alert.private_only")
OPEN_PRIVATE_CHAT: Final = EN.text("button.open_private_chat")
