"""How much does reading a message cost? `is_crisis` and `classify` on short and long messages.

Incoming flood control calls `bot.triage.is_crisis` on every message, so its cost on the longest
message Telegram allows (4096 characters) matters as much as on a typical one. The "one branch
per pattern" row compiles the same crisis patterns the naive way (each pattern with its own
word-boundary check), the way the rules were first built, for a ratio within one run.

    python -m bench.triage
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from bot.content import default_content_dir, load_content
from bot.triage import compile_pattern
from tests.triage_phrases import HELD_OUT, LABELLED

REPEATS: Final = 7
LONG_WORDS: Final = " ".join(["sleepless"] * 400)[:4096]
LONG_SENTENCES: Final = ("I have been lying awake every night thinking about work. " * 80)[:4096]
LONG_CHINESE: Final = ("我最近睡不好，每天晚上都醒来很多次。" * 240)[:4096]


def per_call_us(function: Callable[[str], object], texts: list[str]) -> float:
    """Median over REPEATS runs of the mean time per call, in microseconds."""
    runs = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for text in texts:
            function(text)
        runs.append((time.perf_counter() - start) / len(texts) * 1e6)
    return statistics.median(runs)


def main() -> int:
    content = load_content(Path(default_content_dir()))
    rules = content.triage
    spec = content.safety.spec.crisis
    naive = re.compile(
        "|".join(f"(?:{compile_pattern(p, rules.normaliser)})" for p in spec.patterns)
    )

    def naive_is_crisis(text: str) -> bool:
        return naive.search(rules.normaliser(text)) is not None

    typical = [phrase for _, phrase in (*LABELLED, *HELD_OUT)]
    workloads = {
        f"typical ({len(typical)} labelled phrases)": typical,
        "4096 chars, one word repeated": [LONG_WORDS],
        "4096 chars, sentences": [LONG_SENTENCES],
        "4096 chars, Chinese": [LONG_CHINESE],
    }
    functions: dict[str, Callable[[str], object]] = {
        "normalise": rules.normaliser,
        "is_crisis": rules.is_crisis,
        "is_crisis, one branch per pattern": naive_is_crisis,
        "classify": rules.classify,
    }
    print(f"# Triage cost per message (median of {REPEATS} runs, µs)\n")
    print("| message | " + " | ".join(functions) + " |")
    print("| --- |" + " ---: |" * len(functions))
    for name, texts in workloads.items():
        cells = [f"{per_call_us(function, texts):,.0f}" for function in functions.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\n{len(spec.patterns)} crisis patterns; Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
