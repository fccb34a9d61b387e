"""Turns the scenarios' JSON into one Markdown report, each target next to its number."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

Results = dict[str, dict[str, Any]]

STARTUP_MAX_S: Final = 2.0
RSS_MAX_MB: Final = 150.0
GROWTH_MAX: Final = 1.5  # "neither grows much from 100k to 1M"
EMPTY_TICK_MAX_MS: Final = 10.0
CEILING_MIN: Final = 300.0
LATENESS_MAX_S: Final = 1.0
RATE: Final = 30.0


def get(results: Results, scenario: str, *path: str) -> Any:
    value: Any = results.get(scenario)
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def mark(ok: bool | None) -> str:
    return "–" if ok is None else ("✓" if ok else "✗")


def num(value: Any, spec: str = ",.0f", unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:{spec}}{unit}"


def seconds(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:,.2f} s"


def ratio(a: Any, b: Any) -> str:
    if a is None or b is None or not b:
        return "n/a"
    return f"{a / b:.2f}×"


def at_most(value: Any, limit: float) -> bool | None:
    return None if value is None else bool(value <= limit)


def growth_ok(small: Any, big: Any) -> bool | None:
    if small is None or big is None or not small:
        return None
    return bool(big / small <= GROWTH_MAX)


def both(*checks: bool | None) -> bool | None:
    known = [c for c in checks if c is not None]
    return None if not known else all(known)


def render(meta: dict[str, Any], results: Results) -> str:
    env = meta["environment"]
    lines = [
        f"## sleepbot reminder benchmark ({meta['mode']} run, {meta['started']})",
        "",
        f"Python {env['python']}, SQLite {env['sqlite']}, python-telegram-bot "
        f"{env['python_telegram_bot']}, SQLAlchemy {env['sqlalchemy']}; {env['cpus']} CPUs, "
        f"load average {', '.join(f'{x:.1f}' for x in env['load_average'])}; commit "
        f"{env['commit']}; whole run {meta['total_s']:.0f} s. Each scenario ran in a fresh "
        "process; the fake Telegram server ran in a process of its own.",
        "",
    ]
    errors = {name: r["error"] for name, r in results.items() if "error" in r}
    if errors:
        lines += ["**Failed scenarios:**", ""]
        lines += [f"- `{name}`: {error}" for name, error in errors.items()]
        lines.append("")
    lines += _scale(results)
    lines += _naive(results)
    lines += _sending(results)
    lines += _sql(results)
    return "\n".join(lines) + "\n"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _scale(results: Results) -> list[str]:
    sizes = [s for s in ("100k", "1m") if f"populate-{s}" in results]
    if not sizes:
        return []
    label = {"100k": "100k people", "1m": "1M people"}
    head = ["Metric", *(label[s] for s in sizes)]
    two = len(sizes) == 2
    if two:
        head.append("1M ÷ 100k")
    head += ["Target", ""]
    lines = [
        "### 1. SQLite at scale (3 reminders per person, next_fire_at spread over 24 h)",
        "",
        _row(head),
        _row(["---", *(["--:"] * (len(head) - 3)), "---", ":-:"]),
    ]
    baseline = get(results, "import", "rss_mb")

    def line(
        name: str,
        pick: Callable[[str], Any],
        show: Callable[[Any], str],
        target: str = "",
        check: Callable[[Any, Any], bool | None] | None = None,
        compare: bool = False,
    ) -> None:
        values = [pick(s) for s in sizes]
        cells = [name, *(show(v) for v in values)]
        if two:
            cells.append(ratio(values[1], values[0]) if compare else "")
        small, big = (values[0], values[1]) if two else (None, values[0])
        cells += [target, mark(check(small, big)) if check else ""]
        lines.append(_row(cells))

    def pop(size: str, key: str) -> Any:
        return get(results, f"populate-{size}", key)

    def store(size: str, *path: str) -> Any:
        return get(results, f"store-{size}", *path)

    line(
        "People / scheduled reminders",
        lambda s: (pop(s, "people"), pop(s, "reminders_scheduled")),
        lambda v: f"{num(v[0])} / {num(v[1])}",
    )
    line(
        "Distinct fire minutes / busiest minute",
        lambda s: (pop(s, "minutes_with_reminders"), pop(s, "busiest_minute")),
        lambda v: f"{num(v[0])} / {num(v[1])}",
    )
    line(
        "Busiest minute at 30 msg/s takes (grace period: 30 min)",
        lambda s: None if pop(s, "busiest_minute") is None else pop(s, "busiest_minute") / RATE,
        seconds,
        "≤ 30 min, or reminders expire",
        lambda small, big: at_most(big, 30 * 60),
    )
    line(
        "Population: bulk load (not start-up) / DB file",
        lambda s: (pop(s, "population_s"), pop(s, "db_mb")),
        lambda v: f"{seconds(v[0])} / {num(v[1], ',.0f', ' MB')}",
    )
    line(
        "**Start-up**: build_app → initialize → open_store → Dispatcher → 1st tick",
        lambda s: store(s, "startup", "total_s"),
        seconds,
        f"< {STARTUP_MAX_S:.0f} s at 1M, ≤ {GROWTH_MAX}× growth",
        lambda small, big: both(
            None if big is None else big < STARTUP_MAX_S, growth_ok(small, big)
        ),
        compare=True,
    )
    line(
        "· build_app (content) / initialize (getMe) / open_store (migrations check)",
        lambda s: (
            store(s, "startup", "build_app_s"),
            store(s, "startup", "initialize_s"),
            store(s, "startup", "open_store_s"),
        ),
        lambda v: " / ".join(seconds(x) for x in v),
    )
    line(
        "· first (empty) tick",
        lambda s: store(s, "startup", "first_tick_s"),
        seconds,
        compare=True,
    )
    line(
        "**RSS after start-up**",
        lambda s: store(s, "after_startup", "rss_mb"),
        lambda v: num(v, ",.0f", " MB"),
        f"< {RSS_MAX_MB:.0f} MB at 1M, ≤ {GROWTH_MAX}× growth",
        lambda small, big: both(None if big is None else big < RSS_MAX_MB, growth_ok(small, big)),
        compare=True,
    )
    line(
        f"· over an import-only process ({num(baseline, ',.0f', ' MB')})",
        lambda s: (
            None
            if baseline is None or store(s, "after_startup", "rss_mb") is None
            else store(s, "after_startup", "rss_mb") - baseline
        ),
        lambda v: num(v, "+,.1f", " MB"),
        compare=True,
    )
    line(
        "**Empty tick**, median of 50 (p90)",
        lambda s: (store(s, "empty_tick", "median_ms"), store(s, "empty_tick", "p90_ms")),
        lambda v: f"{num(v[0], '.2f', ' ms')} ({num(v[1], '.2f', ' ms')})",
        f"< {EMPTY_TICK_MAX_MS:.0f} ms at 1M",
        lambda small, big: None if big is None or big[0] is None else big[0] < EMPTY_TICK_MAX_MS,
    )
    line(
        "1% due: reminders due / sent in the tick",
        lambda s: (store(s, "one_percent_tick", "due"), store(s, "one_percent_tick", "tick")),
        lambda v: f"{num(v[0])} / {num((v[1] or {}).get('sent'))}",
    )
    line(
        "**1% tick**, no rate limiter: total (msg/s)",
        lambda s: (
            store(s, "one_percent_tick", "tick_s"),
            store(s, "one_percent_tick", "msg_per_s"),
        ),
        lambda v: f"{seconds(v[0])} ({num(v[1], ',.0f')}/s)",
    )
    line(
        "· store part: materialise + claim + record (+ check, in shared rounds)",
        lambda s: store(s, "one_percent_tick", "store_breakdown_s"),
        lambda v: (
            "n/a"
            if not v
            else " + ".join(
                seconds(v.get(k, 0.0))
                for k in ("materialize_due", "claim_deliveries", "record_outcomes", "settle")
            )
        ),
    )
    line(
        "· store part per due reminder",
        lambda s: (
            None
            if not store(s, "one_percent_tick", "due")
            or store(s, "one_percent_tick", "store_s") is None
            else store(s, "one_percent_tick", "store_s") / store(s, "one_percent_tick", "due")
        ),
        lambda v: num(None if v is None else v * 1e6, ",.0f", " µs"),
        compare=True,
    )
    line(
        "· sending part (tick − store)",
        lambda s: store(s, "one_percent_tick", "send_s"),
        seconds,
    )
    line(
        "Empty tick after the 1% tick, median",
        lambda s: store(s, "empty_tick_after_one_percent", "median_ms"),
        lambda v: num(v, ".2f", " ms"),
        f"< {EMPTY_TICK_MAX_MS:.0f} ms",
        lambda small, big: at_most(big, EMPTY_TICK_MAX_MS),
    )
    line(
        "Peak RSS of the whole scenario (incl. the 1% tick)",
        lambda s: store(s, "end", "peak_rss_mb"),
        lambda v: num(v, ",.0f", " MB"),
        compare=True,
    )
    line(
        "Production start-up: build_app + running() + 1st tick",
        lambda s: get(results, f"app-{s}", "startup_s"),
        seconds,
        f"< {STARTUP_MAX_S:.0f} s",
        lambda small, big: None if big is None else big < STARTUP_MAX_S,
        compare=True,
    )
    line(
        "· its RSS when ready / after the timezone-index preload",
        lambda s: (
            get(results, f"app-{s}", "ready", "rss_mb"),
            get(results, f"app-{s}", "after_timezone_preload", "rss_mb"),
        ),
        lambda v: f"{num(v[0], ',.0f', ' MB')} / {num(v[1], ',.0f', ' MB')}",
        f"< {RSS_MAX_MB:.0f} MB",
        lambda small, big: None if big is None or big[1] is None else big[1] < RSS_MAX_MB,
    )
    lines.append("")
    return lines


def _naive(results: Results) -> list[str]:
    naive = results.get("jobqueue-100k")
    if not naive or "error" in naive:
        return []
    ours_start = get(results, "store-100k", "startup", "total_s")
    ours_rss = get(results, "store-100k", "after_startup", "rss_mb")
    baseline = get(results, "import", "rss_mb")
    ours_delta = None if ours_rss is None or baseline is None else ours_rss - baseline
    naive_delta = naive.get("rss_over_own_imports_mb")
    return [
        "### 2. Versus the naive design: one PTB `run_daily` job per person, 100k people",
        "",
        _row(["Metric", "JobQueue, 100k jobs", "sleepbot, 100k people", "JobQueue ÷ sleepbot"]),
        _row(["---", "--:", "--:", "--:"]),
        _row(
            [
                "Start-up work; event loop blocked while adding jobs",
                f"{seconds(naive.get('blocked_s'))} (+ {seconds(naive.get('read_s'))} to read)",
                seconds(ours_start),
                ratio(naive.get("blocked_s"), ours_start),
            ]
        ),
        _row(
            [
                "RSS added over an import-only process",
                num(naive_delta, "+,.0f", " MB"),
                num(ours_delta, "+,.0f", " MB"),
                ratio(naive_delta, ours_delta),
            ]
        ),
        _row(
            [
                "RSS total",
                num(naive.get("rss_after_jobs_mb"), ",.0f", " MB"),
                num(ours_rss, ",.0f", " MB"),
                ratio(naive.get("rss_after_jobs_mb"), ours_rss),
            ]
        ),
        _row(
            [
                "Reminders due while the loop was blocked, missed (APScheduler warnings)",
                num(naive.get("missed_while_blocked")),
                "0",
                "",
            ]
        ),
        "",
        f"The JobQueue holds one job per person ({num(naive.get('jobs'))} jobs, only one of the "
        "three reminders each; the jobs alone took "
        f"{num(naive.get('jobs_rss_delta_mb'), '+,.0f', ' MB')}); sleepbot holds nothing per "
        "person in memory and its start-up does not depend on the number of people.",
        "",
    ]


def _rates(values: object) -> str:
    if not isinstance(values, list) or not values:
        return "n/a"
    return ", ".join(num(v, ",.0f", "/s") for v in values)


def _sending(results: Results) -> list[str]:
    unlimited = results.get("send-unlimited", {})
    limited = results.get("send-limited", {})
    if not unlimited and not limited:
        return []
    lines = [
        "### 3. Sending through `Dispatcher.tick` to the fake Bot API over HTTP",
        "",
        _row(["Metric", "Value", "Target", ""]),
        _row(["---", "--:", "---", ":-:"]),
    ]
    if unlimited and "error" not in unlimited:
        rate = unlimited.get("msg_per_s")
        lines += [
            _row(
                [
                    f"**Rate limiter off**, {num(unlimited.get('chats'))} chats due at once: "
                    "msg/s over the whole tick",
                    num(rate, ",.0f", "/s"),
                    f"≥ {CEILING_MIN:.0f}/s (10× Telegram)",
                    mark(None if rate is None else rate >= CEILING_MIN),
                ]
            ),
            _row(
                [
                    "· send phase only (first → last sendMessage)",
                    num(unlimited.get("send_phase_msg_per_s"), ",.0f", "/s"),
                    "",
                    "",
                ]
            ),
            _row(
                [
                    "· CPU share of the tick: bot process / fake Telegram process",
                    f"{num(unlimited.get('bot_cpu_share'), '.0%')} / "
                    f"{num(unlimited.get('server_cpu_share'), '.0%')}",
                    "",
                    "",
                ]
            ),
            _row(
                [
                    "· what if `Dispatcher(max_concurrency="
                    f"{get(results, 'send-unlimited', 'what_if_concurrency', 'max_concurrency')})`"
                    f" instead of {unlimited.get('max_concurrency')}",
                    num(
                        get(results, "send-unlimited", "what_if_concurrency", "msg_per_s"),
                        ",.0f",
                        "/s",
                    ),
                    "",
                    "",
                ]
            ),
            _row(
                [
                    "· each round with the last-moment eligibility check / without it "
                    "(same run, alternating)",
                    f"{_rates(unlimited.get('msg_per_s_each_round'))} / "
                    f"{_rates((unlimited.get('without_check') or {}).get('msg_per_s_each_round'))}",
                    "no slower that matters",
                    "",
                ]
            ),
            _row(
                [
                    "· database time per send: last-moment check / recording the outcome",
                    f"{num(unlimited.get('check_us_per_send'), ',.0f', ' µs')} / "
                    f"{num(unlimited.get('record_us_per_send'), ',.0f', ' µs')} "
                    f"({num(unlimited.get('check_calls'))} / "
                    f"{num(unlimited.get('record_calls'))} transactions)",
                    "",
                    "",
                ]
            ),
            _row(
                [
                    "· tick / of which store (materialise + claim + check + record)",
                    f"{seconds(unlimited.get('tick_s'))} / {seconds(unlimited.get('store_s'))}",
                    "",
                    "",
                ]
            ),
            _row(
                [
                    "· per-chat flood violations",
                    num(unlimited.get("per_chat_violations")),
                    "0",
                    mark(unlimited.get("per_chat_violations") == 0),
                ]
            ),
        ]
    if limited and "error" not in limited:
        sustained = limited.get("sustained_msg_per_s")
        late = limited.get("max_lateness_s")
        lines += [
            _row(
                [
                    f"**Rate limiter on** (as bot/app.py builds it; fake answers 429 above "
                    f"30/s), {num(limited.get('chats'))} due at once: sustained msg/s",
                    num(sustained, ".2f", "/s"),
                    "≈ 30/s",
                    mark(None if sustained is None else 27 <= sustained <= RATE + 0.5),
                ]
            ),
            _row(
                [
                    "· steady state (after the first 2 s) / busiest sliding second",
                    f"{num(limited.get('steady_msg_per_s'), '.2f', '/s')} / "
                    f"{num(limited.get('busiest_second'))} msgs",
                    "≤ 30 in any second",
                    mark(at_most(limited.get("busiest_second"), RATE)),
                ]
            ),
            _row(
                [
                    "· 429 answers",
                    num(limited.get("http_429")),
                    "0",
                    mark(limited.get("http_429") == 0),
                ]
            ),
            _row(
                [
                    "· max over k of (sent_k − due − k/30), k-th in arrival order (at k)",
                    f"{seconds(late)} (k = {num(limited.get('max_lateness_k'))})",
                    f"≤ {LATENESS_MAX_S:.0f} s",
                    mark(at_most(late, LATENESS_MAX_S)),
                ]
            ),
            _row(
                [
                    "· the same against k/(achieved rate) instead of k/30",
                    seconds(limited.get("max_lateness_vs_achieved_rate_s")),
                    "",
                    "",
                ]
            ),
            _row(
                [
                    "· first / last message after the due time (tick start)",
                    f"{seconds(limited.get('first_send_after_due_s'))} / "
                    f"{seconds(limited.get('last_send_after_due_s'))}",
                    "",
                    "",
                ]
            ),
            _row(
                [
                    "· store part of the tick",
                    seconds(limited.get("store_s")),
                    "",
                    "",
                ]
            ),
            _row(
                [
                    "· database time per send: last-moment check / recording the outcome",
                    f"{num(limited.get('check_us_per_send'), ',.0f', ' µs')} / "
                    f"{num(limited.get('record_us_per_send'), ',.0f', ' µs')}",
                    "",
                    "",
                ]
            ),
            _row(
                [
                    "· last eligibility check → request at Telegram: p50 / p99 / max "
                    "(the window in which a /stop cannot stop that one message)",
                    f"{num(limited.get('check_to_request_p50_ms'), '.1f', ' ms')} / "
                    f"{num(limited.get('check_to_request_p99_ms'), '.1f', ' ms')} / "
                    f"{num(limited.get('check_to_request_max_ms'), '.1f', ' ms')}",
                    "",
                    "",
                ]
            ),
            _row(
                [
                    "· flood violations per chat / global (>30 in 1 s)",
                    f"{num(limited.get('per_chat_violations'))} / "
                    f"{num(limited.get('global_violations'))}",
                    "0 / 0",
                    mark(
                        limited.get("per_chat_violations") == 0
                        and limited.get("global_violations") == 0
                    ),
                ]
            ),
            _row(
                [
                    "· tick result",
                    ", ".join(f"{k}={v}" for k, v in (limited.get("tick") or {}).items() if v),
                    "",
                    "",
                ]
            ),
        ]
    lines += _limiters_compared(limited, results.get("send-limited-paced", {}))
    lines += [
        "",
        "Lateness is measured from the tick start; in production the JobQueue starts a tick up "
        "to `dispatch_interval_seconds` (5 s) after the due minute, on top of this.",
        "",
    ]
    return lines


def _limiters_compared(after: dict[str, Any], before: dict[str, Any]) -> list[str]:
    """The production limiter next to the previous one, measured in the same run."""
    if not before or "error" in before or not after or "error" in after:
        return []
    rows = [
        ("sustained msg/s", "sustained_msg_per_s", ".2f"),
        ("steady msg/s (after the first 2 s)", "steady_msg_per_s", ".2f"),
        ("429 answers", "http_429", ","),
        ("max lateness beyond k/30 s", "max_lateness_s", ".2f"),
        ("max lateness beyond k/(achieved rate)", "max_lateness_vs_achieved_rate_s", ".2f"),
        ("bot CPU during the tick", "bot_cpu_s", ".2f"),
    ]
    lines = [
        "",
        f"Same run, same {num(after.get('chats'))} due reminders, same fake: "
        f"`{before.get('limiter')}` (before) vs `{after.get('limiter')}` (now):",
        "",
        _row(["", "before", "now", "now / before"]),
        _row(["---", "--:", "--:", "--:"]),
    ]
    for label, key, spec in rows:
        old, new = before.get(key), after.get(key)
        lines.append(_row([label, num(old, spec), num(new, spec), ratio(new, old)]))
    return lines


def _sql(results: Results) -> list[str]:
    lines: list[str] = []
    for size in ("1m", "100k"):
        busy = get(results, f"store-{size}", "sql_one_percent_tick")
        empty = get(results, f"store-{size}", "sql_empty_tick")
        if not busy:
            continue
        lines += [
            f"### 4. Where the SQL time goes at {size.upper()} (SQLAlchemy cursor events)",
            "",
            _row(["Statement (normalised)", "Calls", "Time", "EXPLAIN QUERY PLAN"]),
            _row(["---", "--:", "--:", "---"]),
        ]
        for title, stats in (("1% tick", busy), ("5 empty ticks", empty or [])):
            lines.append(_row([f"*{title}*", "", "", ""]))
            for item in stats:
                sql = item["sql"]
                short = sql if len(sql) <= 160 else sql[:157] + "…"
                plan = "<br>".join(item.get("plan") or [])
                lines.append(
                    _row(
                        [
                            f"`{short}`",
                            num(item["calls"]),
                            seconds(item["seconds"]),
                            plan.replace("|", "/"),
                        ]
                    )
                )
        lines.append("")
        break
    return lines
