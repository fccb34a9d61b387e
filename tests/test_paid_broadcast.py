"""ALLOW_PAID_BROADCAST: reminders carry allow_paid_broadcast; only then may the rate pass 30."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import Settings
from tests.test_dispatch import CHAT, Harness, berlin, content, h, sign_up

__all__ = ["content", "h"]  # the dispatcher harness fixtures, shared with test_dispatch


@pytest.mark.parametrize("paid", [False, True])
async def test_reminders_carry_allow_paid_broadcast_only_when_allowed(
    h: Harness, paid: bool
) -> None:
    await sign_up(h, only=["wind_down"])
    h.dispatcher = h.new_dispatcher(allow_paid_broadcast=paid)
    await h.tick_at(berlin(10, 21, 30, 5))
    [call] = h.sends(CHAT)
    if paid:
        assert call.params["allow_paid_broadcast"] is True
    else:
        assert "allow_paid_broadcast" not in call.params


def test_a_rate_above_30_needs_paid_broadcast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEND_RATE_PER_SECOND", "200")
    with pytest.raises(ValidationError, match="ALLOW_PAID_BROADCAST=true"):
        Settings(_env_file=None)
    monkeypatch.setenv("ALLOW_PAID_BROADCAST", "true")
    assert Settings(_env_file=None).send_rate_per_second == 200
    monkeypatch.setenv("SEND_RATE_PER_SECOND", "1001")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
