"""Two webhook replicas as separate processes on one PostgreSQL, the fake Bot API in its own
process, the test as the load balancer (bench/replicas.py at its smoke size; the full run,
200 people and 2,000 reminders, is ``python -m bench.replicas``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.replicas import QUICK, run
from tests.pg import require_postgres

# What one replica may have on the wire when it is killed: the dispatcher's max_concurrency.
IN_FLIGHT: int = 16
TAKEOVER_S: float = 15.0  # the bound for a standby to lead
# The dead one's claims wait for its heartbeat to be 8 s old, then one more tick of the
# survivor (≤ 8 + 2 + 1 s when the machine is idle); the margin is for a busy machine.
CLAIMS_TAKEN_S: float = 25.0


@pytest.mark.postgres
async def test_two_replicas_answer_once_send_once_and_survive_a_sigkill(tmp_path: Path) -> None:
    redis = os.environ.get("TEST_REDIS_URL") or None
    result = await run(QUICK, require_postgres(), redis, tmp_path)
    print(f"[replicas] {result}")
    assert result["updates_posted"] == {"a:200": QUICK.people // 2, "b:200": QUICK.people // 2}
    assert result["people_answered_once"] == QUICK.people
    assert result["reminders_missing"] == 0
    assert result["reminders_duplicated"] <= IN_FLIGHT
    assert result["standby_leads_after_s"] <= TAKEOVER_S
    assert result["dead_claims_all_sent_after_s"] is not None  # the kill really left claims
    assert result["dead_claims_all_sent_after_s"] <= CLAIMS_TAKEN_S
    assert result["deliveries_by_status"] == {"sent": QUICK.reminders}
    if redis is not None:  # one budget for both: Telegram's limits hold across them
        assert result["max_msgs_in_any_second"] <= 30
    assert result["max_msgs_per_chat_in_any_second"] <= 1
